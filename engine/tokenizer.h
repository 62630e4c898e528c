/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Text <-> token ids for GGUF llama-family models, bit-for-bit as llama.cpp does it.
 *
 * Two vocabulary kinds (tokenizer.ggml.model):
 *   "llama" -> TOKENIZER_SPM: SentencePiece-style. Spaces become U+2581 "▁", an optional
 *              space is prefixed to each text run, then UTF-8 characters are merged
 *              pairwise, highest token score first; characters that never form a token
 *              fall back to byte tokens <0xNN>.
 *   "gpt2"  -> TOKENIZER_BPE: byte-level BPE. The text is split into words by the
 *              pre-tokenizer named in tokenizer.ggml.pre ("llama-bpe"/"llama3" and kin:
 *              Llama 3; "qwen2" and kin: Qwen2; "smollm"/"starcoder" and kin: digits
 *              alone, then GPT-2's; anything else: GPT-2's expression),
 *              every byte is mapped to GPT-2's printable alphabet, then symbols are
 *              merged by merge rank, lowest first.
 *
 * Special tokens (control, user-defined, unknown) are cut out of the text before that,
 * longest text first, when parse_special is true; user-defined tokens are cut out even
 * when it is false, as llama.cpp does. BOS/EOS are added per add_bos/add_eos when
 * add_special is true.
 *
 * A Tokenizer is immutable after tokenizer_new() and may be shared between threads. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum {
        TOKENIZER_SPM,
        TOKENIZER_BPE
} TokenizerKind;

/* Token types as GGUF stores them in tokenizer.ggml.token_type. */
enum {
        TOKENIZER_TYPE_UNDEFINED = 0,
        TOKENIZER_TYPE_NORMAL = 1,
        TOKENIZER_TYPE_UNKNOWN = 2,
        TOKENIZER_TYPE_CONTROL = 3,
        TOKENIZER_TYPE_USER_DEFINED = 4,
        TOKENIZER_TYPE_UNUSED = 5,
        TOKENIZER_TYPE_BYTE = 6,
};

/* Limits past which tokenizer_new() refuses a vocabulary as absurd (-EINVAL). */
#define TOKENIZER_MAX_TOKENS (1U << 22)
#define TOKENIZER_MAX_MERGES (1U << 22)
#define TOKENIZER_MAX_TOKEN_LEN 65536U

/* A borrowed view of the tokenizer.ggml.* metadata. Strings are NOT NUL-terminated (they
 * point into the GGUF mapping) and are copied by tokenizer_new(). */
typedef struct TokenizerVocab {
        TokenizerKind kind;
        const char *pre; /* tokenizer.ggml.pre, NUL-terminated, may be NULL */
        size_t n_tokens;
        const char *const *tokens;
        const size_t *token_lens;
        const float *scores; /* may be NULL: all 0 */
        const int32_t *types; /* may be NULL: all normal */
        size_t n_merges;
        const char *const *merges; /* "left right" */
        const size_t *merge_lens;
        int32_t bos_id, eos_id, unk_id, pad_id, eot_id; /* -1 when absent */
        bool add_bos, add_eos, add_space_prefix;
} TokenizerVocab;

typedef struct Tokenizer Tokenizer;

/* Copies what it keeps from v. -EINVAL on NULL arguments, an unknown kind, no tokens or
 * sizes past the limits above; -EBADMSG on a NaN score or a merge that is not
 * "left right" with both sides non-empty; -ENOMEM. Special ids outside the vocabulary
 * are treated as absent (-1), as llama.cpp does. */
int tokenizer_new(const TokenizerVocab *v, Tokenizer **ret);
Tokenizer *tokenizer_free(Tokenizer *t);

/* Encodes text[0..len) (any bytes; invalid UTF-8 is tolerated) into a new array of ids,
 * freed by the caller (never NULL on success, even for 0 ids). */
int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, bool add_special,
                     bool parse_special, int32_t **ret_ids, size_t *ret_n);

/* Writes the bytes token id stands for into buf (up to size bytes, no NUL) and returns
 * their full length, which may exceed size. Byte tokens <0xNN> give the raw byte, SPM
 * "▁" gives a space, byte-level BPE symbols give their bytes, control/user-defined/
 * unknown tokens give their text (as llama.cpp with special=true); unused and
 * undefined tokens give nothing. -EINVAL for an id outside the vocabulary. */
ssize_t tokenizer_token_to_piece(const Tokenizer *t, int32_t id, char *buf, size_t size);

/* End of generation: EOS, EOT, and the tokens llama.cpp recognizes by their text
 * (<|eot_id|>, <|im_end|>, <|endoftext|>, <end_of_turn>, ...). */
bool tokenizer_is_eog(const Tokenizer *t, int32_t id);

size_t tokenizer_n_tokens(const Tokenizer *t);
int32_t tokenizer_bos(const Tokenizer *t);
int32_t tokenizer_eos(const Tokenizer *t);
int32_t tokenizer_eot(const Tokenizer *t);

/* The stored text of a token (not NUL-terminated) and its type (after llama.cpp's
 * promotion of control-looking tokens); NULL / -EINVAL for a bad id. */
const char *tokenizer_token_text(const Tokenizer *t, int32_t id, size_t *ret_len);
int tokenizer_token_type(const Tokenizer *t, int32_t id);

/* The id of the token whose text is exactly text[0..len), or -1. */
int32_t tokenizer_find(const Tokenizer *t, const char *text, size_t len);
