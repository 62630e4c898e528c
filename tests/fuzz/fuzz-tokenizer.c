/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Encodes arbitrary bytes with a small built-in vocabulary of each kind. The first byte
 * picks the options: bit 0 add_special, bit 1 parse_special, bits 2-3 the BPE
 * pre-tokenizer. Every id must be in range and render as a piece; for BPE the pieces
 * of valid UTF-8 input must give the input back. */
#include <stdio.h>
#include <string.h>

#include "basic/alloc-util.h"
#include "engine/tokenizer.h"
#include "engine/unicode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SP "\xE2\x96\x81"

static Tokenizer *make(TokenizerKind kind, const char *pre)
{
        static char store[600][16];
        static const char *tokens[600];
        static size_t lens[600];
        static float scores[600];
        static int32_t types[600];
        static const char *const merges[] = {
                "l l", "h e",  "he ll",      "hell o",      "\xC4\xA0 hello",
                "1 2", "12 3", "\xC4\xA0 t", "\xC4\xA0t h", "\xC4\xA0th e"};
        static size_t merge_lens[ELEMENTSOF(merges)];
        static const char *const extra[] = {
                "ll",         "he",           "hell",      "hello",      "\xC4\xA0hello",
                "12",         "123",          "\xC4\xA0t", "\xC4\xA0th", "\xC4\xA0the",
                SP,           SP "the",       SP "hello",  "th",         "e",
                "<|eot_id|>", "<|im_start|>", "<tool>",    "<s>",        "</s>",
                "<unk>"};
        size_t n = 0;
        TokenizerVocab v;
        Tokenizer *t = NULL;

        if (kind == TOKENIZER_BPE)
                for (int b = 0; b < 256; b++) {
                        lens[n] = unicode_cpt_to_utf8(unicode_byte_to_gpt2((uint8_t)b), store[n]);
                        types[n] = TOKENIZER_TYPE_NORMAL;
                        tokens[n] = store[n];
                        n++;
                }
        else
                for (int b = 0; b < 256; b++) {
                        lens[n] = (size_t)snprintf(store[n], sizeof(store[n]), "<0x%02X>", b);
                        types[n] = TOKENIZER_TYPE_BYTE;
                        tokens[n] = store[n];
                        n++;
                }
        for (size_t i = 0; i < ELEMENTSOF(extra); i++) {
                tokens[n] = extra[i];
                lens[n] = strlen(extra[i]);
                scores[n] = -(float)i;
                types[n] = extra[i][0] == '<' ? TOKENIZER_TYPE_CONTROL : TOKENIZER_TYPE_NORMAL;
                if (strcmp(extra[i], "<tool>") == 0)
                        types[n] = TOKENIZER_TYPE_USER_DEFINED;
                n++;
        }
        for (size_t i = 0; i < ELEMENTSOF(merges); i++)
                merge_lens[i] = strlen(merges[i]);
        v = (TokenizerVocab){
                .kind = kind,
                .pre = pre,
                .n_tokens = n,
                .tokens = tokens,
                .token_lens = lens,
                .scores = scores,
                .types = types,
                .n_merges = kind == TOKENIZER_BPE ? ELEMENTSOF(merges) : 0,
                .merges = merges,
                .merge_lens = merge_lens,
                .bos_id = (int32_t)n - 3,
                .eos_id = (int32_t)n - 2,
                .unk_id = (int32_t)n - 1,
                .pad_id = -1,
                .eot_id = -1,
                .add_bos = true,
                .add_eos = true,
                .add_space_prefix = true,
        };
        if (tokenizer_new(&v, &t) < 0)
                abort();
        return t;
}

static bool valid_utf8(const uint8_t *s, size_t n)
{
        for (size_t off = 0; off < n;) {
                size_t o = off;
                uint32_t c = unicode_cpt_from_utf8((const char *)s, n, &off);
                char u[4];
                if (c == 0xFFFD && off - o == 1)
                        return false;
                if (c > 0x10FFFF || unicode_cpt_to_utf8(c, u) != off - o ||
                    memcmp(u, s + o, off - o) != 0)
                        return false;
        }
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static Tokenizer *spm, *bpe[3];
        static const char *const pres[3] = {"llama-bpe", "qwen2", "gpt-2"};
        const Tokenizer *tokenizers[2];
        uint8_t opt;

        if (!spm) {
                spm = make(TOKENIZER_SPM, NULL);
                for (int i = 0; i < 3; i++)
                        bpe[i] = make(TOKENIZER_BPE, pres[i]);
        }
        if (size == 0)
                return 0;
        opt = data[0];
        data++;
        size--;
        tokenizers[0] = spm;
        tokenizers[1] = bpe[(opt >> 2) % 3];

        for (int k = 0; k < 2; k++) {
                const Tokenizer *t = tokenizers[k];
                _cleanup_free_ int32_t *ids = NULL;
                _cleanup_free_ char *out = NULL;
                size_t n, out_n = 0;

                if (tokenizer_encode(t, (const char *)data, size, opt & 1, opt & 2, &ids, &n) < 0)
                        abort();
                out = malloc(size * 4 + 64);
                if (!out)
                        abort();
                for (size_t i = 0; i < n; i++) {
                        char piece[64];
                        ssize_t m;
                        if (ids[i] < 0 || (size_t)ids[i] >= tokenizer_n_tokens(t))
                                abort();
                        m = tokenizer_token_to_piece(t, ids[i], piece, sizeof(piece));
                        if (m < 0 || (size_t)m > sizeof(piece))
                                abort();
                        if (out_n + (size_t)m <= size * 4 + 64)
                                memcpy(out + out_n, piece, (size_t)m);
                        out_n += (size_t)m;
                }
                /* byte-level BPE loses nothing of valid UTF-8 without specials */
                if (k == 1 && !(opt & 3) && valid_utf8(data, size) &&
                    (out_n != size || memcmp(out, data, size) != 0) &&
                    !memmem(data, size, "<tool>", 6))
                        abort();
        }
        return 0;
}
