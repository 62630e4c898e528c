/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* A minimal in-memory GGUF v3 writer for the engine's unit tests: F32 tensors (F16 for
 * the matrices on request), deterministic pseudo-random contents. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>
#include <stdbool.h>

#include "engine/ggml-types.h"

typedef struct TestGguf {
        uint8_t *kv;
        size_t kv_len, n_kv;
        uint8_t *ti;
        size_t ti_len, n_t;
        uint8_t *data;
        size_t data_len;
        uint32_t seed;
        bool f16; /* 2-D tensors as F16 */
} TestGguf;

/* Buffers grow by doubling: their capacity is implied by their length (the smallest
 * power of two >= len, at least 64). */
static inline void tg_put(uint8_t **p, size_t *len, const void *d, size_t n)
{
        size_t cap = 64, need = *len + n;
        while (cap < *len)
                cap <<= 1;
        if (!*p || need > cap) {
                while (cap < need)
                        cap <<= 1;
                *p = realloc(*p, cap);
        }
        memcpy(*p + *len, d, n);
        *len += n;
}

static inline void tg_str(uint8_t **p, size_t *len, const char *s)
{
        uint64_t n = strlen(s);
        tg_put(p, len, &n, 8);
        tg_put(p, len, s, n);
}

static inline void tg_kv_u32(TestGguf *g, const char *k, uint32_t v)
{
        uint32_t t = 4;
        tg_str(&g->kv, &g->kv_len, k);
        tg_put(&g->kv, &g->kv_len, &t, 4);
        tg_put(&g->kv, &g->kv_len, &v, 4);
        g->n_kv++;
}

static inline void tg_kv_f32(TestGguf *g, const char *k, float v)
{
        uint32_t t = 6;
        tg_str(&g->kv, &g->kv_len, k);
        tg_put(&g->kv, &g->kv_len, &t, 4);
        tg_put(&g->kv, &g->kv_len, &v, 4);
        g->n_kv++;
}

static inline void tg_kv_str(TestGguf *g, const char *k, const char *v)
{
        uint32_t t = 8;
        tg_str(&g->kv, &g->kv_len, k);
        tg_put(&g->kv, &g->kv_len, &t, 4);
        tg_str(&g->kv, &g->kv_len, v);
        g->n_kv++;
}

static inline void tg_kv_strs(TestGguf *g, const char *k, const char *const *v, size_t n)
{
        uint32_t t = 9, et = 8;
        uint64_t nn = n;
        tg_str(&g->kv, &g->kv_len, k);
        tg_put(&g->kv, &g->kv_len, &t, 4);
        tg_put(&g->kv, &g->kv_len, &et, 4);
        tg_put(&g->kv, &g->kv_len, &nn, 8);
        for (size_t i = 0; i < n; i++)
                tg_str(&g->kv, &g->kv_len, v[i]);
        g->n_kv++;
}

/* F32 tensor of ne0 x ne1 (ne1 = 0: 1-D; F16 when 2-D and g->f16); values center +
 * spread * uniform(-1, 1). */
static inline void tg_tensor(TestGguf *g, const char *name, uint64_t ne0, uint64_t ne1,
                             float center, float spread)
{
        bool f16 = g->f16 && ne1;
        uint32_t nd = ne1 ? 2 : 1, type = f16 ? GGML_TYPE_F16 : GGML_TYPE_F32;
        uint64_t off = g->data_len;
        tg_str(&g->ti, &g->ti_len, name);
        tg_put(&g->ti, &g->ti_len, &nd, 4);
        tg_put(&g->ti, &g->ti_len, &ne0, 8);
        if (ne1)
                tg_put(&g->ti, &g->ti_len, &ne1, 8);
        tg_put(&g->ti, &g->ti_len, &type, 4);
        tg_put(&g->ti, &g->ti_len, &off, 8);
        g->n_t++;
        uint64_t n = ne0 * (ne1 ? ne1 : 1);
        for (uint64_t i = 0; i < n; i++) {
                g->seed = g->seed * 1664525u + 1013904223u;
                float v = center + spread * (((g->seed >> 8) & 0xffff) / 32768.0f - 1.0f);
                if (f16) {
                        ggml_fp16_t h = ggml_fp32_to_fp16(v);
                        tg_put(&g->data, &g->data_len, &h, 2);
                } else
                        tg_put(&g->data, &g->data_len, &v, 4);
        }
        while (g->data_len % 32)
                tg_put(&g->data, &g->data_len, "", 1);
}

/* Serializes and frees the builder's parts. */
static inline uint8_t *tg_finish(TestGguf *g, size_t *ret_len)
{
        uint8_t *out = NULL;
        size_t len = 0;
        uint32_t magic = 0x46554747u, version = 3;
        uint64_t nt = g->n_t, nkv = g->n_kv;
        tg_put(&out, &len, &magic, 4);
        tg_put(&out, &len, &version, 4);
        tg_put(&out, &len, &nt, 8);
        tg_put(&out, &len, &nkv, 8);
        tg_put(&out, &len, g->kv, g->kv_len);
        tg_put(&out, &len, g->ti, g->ti_len);
        while (len % 32)
                tg_put(&out, &len, "", 1);
        tg_put(&out, &len, g->data, g->data_len);
        free(g->kv);
        free(g->ti);
        free(g->data);
        *ret_len = len;
        return out;
}

typedef struct TestModelShape {
        const char *arch;
        uint32_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
        bool tokens;
        bool f16; /* matrices in F16 */
} TestModelShape;

/* A small random llama/qwen2 model. With tokens, the vocabulary is "<unk>", "<s>",
 * "</s>" and then two-letter pieces "aa", "ab", ... (no tokenizer kind: pieces only). */
static inline uint8_t *test_model_gguf(const TestModelShape *s, uint32_t seed, size_t *ret_len)
{
        TestGguf g = {.seed = seed, .f16 = s->f16};
        char key[128];
        uint32_t hd = s->n_embd / s->n_head, kvd = hd * s->n_head_kv;
        bool qwen = strcmp(s->arch, "qwen2") == 0;

        tg_kv_str(&g, "general.architecture", s->arch);
#define U(k, v)                                                                                    \
        snprintf(key, sizeof(key), "%s." k, s->arch);                                              \
        tg_kv_u32(&g, key, v)
        U("context_length", s->n_ctx);
        U("embedding_length", s->n_embd);
        U("block_count", s->n_layer);
        U("feed_forward_length", s->n_ff);
        U("attention.head_count", s->n_head);
        U("attention.head_count_kv", s->n_head_kv);
#undef U
        snprintf(key, sizeof(key), "%s.attention.layer_norm_rms_epsilon", s->arch);
        tg_kv_f32(&g, key, 1e-5f);
        if (s->tokens) {
                char **toks = calloc(s->n_vocab, sizeof(char *));
                for (uint32_t i = 0; i < s->n_vocab; i++) {
                        toks[i] = malloc(8);
                        if (i < 3)
                                strcpy(toks[i], i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
                        else
                                snprintf(toks[i], 8, "%c%c", 'a' + (i - 3) / 26 % 26,
                                         'a' + (i - 3) % 26);
                }
                tg_kv_strs(&g, "tokenizer.ggml.tokens", (const char *const *)toks, s->n_vocab);
                tg_kv_u32(&g, "tokenizer.ggml.eos_token_id", 2);
                tg_kv_u32(&g, "tokenizer.ggml.bos_token_id", 1);
                tg_kv_str(&g, "tokenizer.ggml.model", "none");
                for (uint32_t i = 0; i < s->n_vocab; i++)
                        free(toks[i]);
                free(toks);
        }
        tg_tensor(&g, "token_embd.weight", s->n_embd, s->n_vocab, 0.0f, 1.0f);
        for (uint32_t l = 0; l < s->n_layer; l++) {
                char n[64];
                float sc = 1.7f / sqrtf((float)s->n_embd);
#define T(name, a, b, c, sp)                                                                       \
        snprintf(n, sizeof(n), "blk.%u." name, l);                                                 \
        tg_tensor(&g, n, a, b, c, sp)
                T("attn_norm.weight", s->n_embd, 0, 1.0f, 0.2f);
                T("attn_q.weight", s->n_embd, s->n_embd, 0.0f, sc);
                T("attn_k.weight", s->n_embd, kvd, 0.0f, sc);
                T("attn_v.weight", s->n_embd, kvd, 0.0f, sc);
                T("attn_output.weight", s->n_embd, s->n_embd, 0.0f, sc);
                if (qwen) {
                        T("attn_q.bias", s->n_embd, 0, 0.0f, 0.3f);
                        T("attn_k.bias", kvd, 0, 0.0f, 0.3f);
                        T("attn_v.bias", kvd, 0, 0.0f, 0.3f);
                }
                T("ffn_norm.weight", s->n_embd, 0, 1.0f, 0.2f);
                T("ffn_gate.weight", s->n_embd, s->n_ff, 0.0f, sc);
                T("ffn_up.weight", s->n_embd, s->n_ff, 0.0f, sc);
                T("ffn_down.weight", s->n_ff, s->n_embd, 0.0f, 1.7f / sqrtf((float)s->n_ff));
#undef T
        }
        tg_tensor(&g, "output_norm.weight", s->n_embd, 0, 1.0f, 0.2f);
        tg_tensor(&g, "output.weight", s->n_embd, s->n_vocab, 0.0f, 3.0f / sqrtf((float)s->n_embd));
        return tg_finish(&g, ret_len);
}
