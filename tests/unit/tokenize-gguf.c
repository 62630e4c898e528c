/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Tokenizes text with the vocabulary of a GGUF file, for the comparison with llama.cpp.
 *
 *   tokenize-gguf FILE.gguf PARSE_SPECIAL ADD_SPECIAL < lines
 *   tokenize-gguf FILE.gguf --pieces
 *
 * Each input line is the text in hex; each output line the ids, space-separated. With
 * --pieces, one line per token id: the hex of tokenizer_token_to_piece(). Only the
 * tokenizer.ggml.* keys are read, by a minimal GGUF reader of its own (the engine's real
 * reader is tested elsewhere). */
#include <stdio.h>
#include <string.h>

#include "basic/alloc-util.h"
#include "basic/fd-util.h"
#include "basic/string-util.h"
#include "engine/tokenizer.h"

enum {
        T_U8,
        T_I8,
        T_U16,
        T_I16,
        T_U32,
        T_I32,
        T_F32,
        T_BOOL,
        T_STR,
        T_ARR,
        T_U64,
        T_I64,
        T_F64
};

typedef struct Reader {
        const uint8_t *p, *end;
        bool bad;
} Reader;

static uint64_t rd(Reader *r, size_t n)
{
        uint64_t v = 0;

        if ((size_t)(r->end - r->p) < n) {
                r->bad = true;
                r->p = r->end;
                return 0;
        }
        for (size_t i = 0; i < n; i++)
                v |= (uint64_t)r->p[i] << (8 * i);
        r->p += n;
        return v;
}

static const char *rd_str(Reader *r, size_t *len)
{
        uint64_t n = rd(r, 8);
        const char *s = (const char *)r->p;

        if (r->bad || (uint64_t)(r->end - r->p) < n) {
                r->bad = true;
                *len = 0;
                return "";
        }
        r->p += n;
        *len = n;
        return s;
}

static size_t scalar_size(uint32_t t)
{
        static const size_t sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
        return t < ELEMENTSOF(sz) ? sz[t] : 0;
}

typedef struct Vocab {
        TokenizerVocab v;
        char pre[64];
        const char **tokens, **merges;
        size_t *token_lens, *merge_lens;
        float *scores;
        int32_t *types;
} Vocab;

static int64_t rd_int(Reader *r, uint32_t t)
{
        switch (t) {
        case T_I8:
                return (int8_t)rd(r, 1);
        case T_I16:
                return (int16_t)rd(r, 2);
        case T_I32:
                return (int32_t)rd(r, 4);
        case T_BOOL:
        case T_U8:
                return rd(r, 1);
        case T_U16:
                return rd(r, 2);
        case T_U32:
                return rd(r, 4);
        case T_F32:
                return (int64_t)rd(r, 4);
        default:
                return (int64_t)rd(r, 8);
        }
}

static int parse(const char *data, size_t size, Vocab *out)
{
        Reader r = {(const uint8_t *)data, (const uint8_t *)data + size, false};
        uint64_t n_tensors, n_kv;

        if (rd(&r, 4) != 0x46554747U)
                return -EBADMSG;
        if (rd(&r, 4) != 3)
                return -EBADMSG;
        n_tensors = rd(&r, 8);
        n_kv = rd(&r, 8);
        (void)n_tensors;
        *out = (Vocab){.v = {.bos_id = -1, .eos_id = -1, .unk_id = -1, .pad_id = -1, .eot_id = -1}};
        for (uint64_t i = 0; i < n_kv && !r.bad; i++) {
                size_t kl;
                const char *k = rd_str(&r, &kl);
                _cleanup_free_ char *key = strndup(k, kl);
                uint32_t t = (uint32_t)rd(&r, 4);

                if (!key)
                        return -ENOMEM;
                if (t == T_STR) {
                        size_t n;
                        const char *s = rd_str(&r, &n);
                        if (streq(key, "tokenizer.ggml.model"))
                                out->v.kind = n == 4 && memcmp(s, "gpt2", 4) == 0 ? TOKENIZER_BPE
                                                                                  : TOKENIZER_SPM;
                        else if (streq(key, "tokenizer.ggml.pre"))
                                snprintf(out->pre, sizeof(out->pre), "%.*s", (int)n, s);
                } else if (t == T_ARR) {
                        uint32_t et = (uint32_t)rd(&r, 4);
                        uint64_t n = rd(&r, 8);
                        if (n > (1U << 24))
                                return -EBADMSG;
                        if (et == T_STR) {
                                const char **strs = new (const char *, n);
                                size_t *lens = new (size_t, n);
                                if (!strs || !lens)
                                        return -ENOMEM;
                                for (uint64_t j = 0; j < n; j++)
                                        strs[j] = rd_str(&r, &lens[j]);
                                if (streq(key, "tokenizer.ggml.tokens")) {
                                        out->tokens = strs;
                                        out->token_lens = lens;
                                        out->v.n_tokens = n;
                                } else if (streq(key, "tokenizer.ggml.merges")) {
                                        out->merges = strs;
                                        out->merge_lens = lens;
                                        out->v.n_merges = n;
                                } else {
                                        free(strs);
                                        free(lens);
                                }
                        } else if (streq(key, "tokenizer.ggml.scores") && et == T_F32) {
                                out->scores = new (float, n);
                                if (!out->scores)
                                        return -ENOMEM;
                                for (uint64_t j = 0; j < n; j++) {
                                        uint32_t b = (uint32_t)rd(&r, 4);
                                        memcpy(&out->scores[j], &b, 4);
                                }
                        } else if (streq(key, "tokenizer.ggml.token_type") && et == T_I32) {
                                out->types = new (int32_t, n);
                                if (!out->types)
                                        return -ENOMEM;
                                for (uint64_t j = 0; j < n; j++)
                                        out->types[j] = (int32_t)rd(&r, 4);
                        } else {
                                size_t es = scalar_size(et);
                                if (es == 0)
                                        return -EBADMSG;
                                for (uint64_t j = 0; j < n; j++)
                                        rd(&r, es);
                        }
                } else {
                        size_t es = scalar_size(t);
                        int64_t v;
                        if (es == 0)
                                return -EBADMSG;
                        v = rd_int(&r, t);
                        if (streq(key, "tokenizer.ggml.bos_token_id"))
                                out->v.bos_id = (int32_t)v;
                        else if (streq(key, "tokenizer.ggml.eos_token_id"))
                                out->v.eos_id = (int32_t)v;
                        else if (streq(key, "tokenizer.ggml.unknown_token_id"))
                                out->v.unk_id = (int32_t)v;
                        else if (streq(key, "tokenizer.ggml.padding_token_id"))
                                out->v.pad_id = (int32_t)v;
                        else if (streq(key, "tokenizer.ggml.eot_token_id"))
                                out->v.eot_id = (int32_t)v;
                        else if (streq(key, "tokenizer.ggml.add_bos_token"))
                                out->v.add_bos = v != 0;
                        else if (streq(key, "tokenizer.ggml.add_eos_token"))
                                out->v.add_eos = v != 0;
                        else if (streq(key, "tokenizer.ggml.add_space_prefix"))
                                out->v.add_space_prefix = v != 0;
                }
        }
        if (r.bad || !out->tokens)
                return -EBADMSG;
        out->v.pre = out->pre[0] ? out->pre : NULL;
        out->v.tokens = out->tokens;
        out->v.token_lens = out->token_lens;
        out->v.scores = out->scores;
        out->v.types = out->types;
        out->v.merges = out->merges;
        out->v.merge_lens = out->merge_lens;
        return 0;
}

int main(int argc, char **argv)
{
        _cleanup_free_ char *data = NULL, *line = NULL;
        size_t size, cap = 0;
        Tokenizer *t = NULL;
        Vocab v;
        ssize_t n;
        int r;

        if (argc != 4 && !(argc == 3 && streq(argv[2], "--pieces"))) {
                fprintf(stderr, "usage: %s FILE.gguf PARSE_SPECIAL ADD_SPECIAL < hex-lines\n",
                        argv[0]);
                return 2;
        }
        r = read_full_file(argv[1], &data, &size, 256U * 1024 * 1024);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", argv[1], strerror(-r));
                return 1;
        }
        r = parse(data, size, &v);
        if (r < 0) {
                fprintf(stderr, "%s: not a vocabulary GGUF: %s\n", argv[1], strerror(-r));
                return 1;
        }
        r = tokenizer_new(&v.v, &t);
        if (r < 0) {
                fprintf(stderr, "%s: bad vocabulary: %s\n", argv[1], strerror(-r));
                return 1;
        }
        if (argc == 3) {
                for (size_t id = 0; id < tokenizer_n_tokens(t); id++) {
                        char piece[256];
                        ssize_t k = tokenizer_token_to_piece(t, (int32_t)id, piece, sizeof(piece));
                        if (k < 0 || (size_t)k > sizeof(piece))
                                return 1;
                        for (ssize_t i = 0; i < k; i++)
                                printf("%02x", (uint8_t)piece[i]);
                        printf("\n");
                }
        } else
                while ((n = getline(&line, &cap, stdin)) >= 0) {
                        _cleanup_free_ char *text = NULL;
                        _cleanup_free_ int32_t *ids = NULL;
                        size_t len, n_ids;

                        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                                line[--n] = 0;
                        len = (size_t)n / 2;
                        text = malloc(len + 1);
                        if (!text || unhexmem(line, text, len) < 0) {
                                fprintf(stderr, "bad hex line\n");
                                return 1;
                        }
                        r = tokenizer_encode(t, text, len, argv[3][0] == '1', argv[2][0] == '1',
                                             &ids, &n_ids);
                        if (r < 0) {
                                fprintf(stderr, "encode: %s\n", strerror(-r));
                                return 1;
                        }
                        for (size_t i = 0; i < n_ids; i++)
                                printf("%s%d", i ? " " : "", ids[i]);
                        printf("\n");
                }
        tokenizer_free(t);
        free(v.tokens);
        free(v.token_lens);
        free(v.merges);
        free(v.merge_lens);
        free(v.scores);
        free(v.types);
        return 0;
}
