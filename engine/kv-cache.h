/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Key/value cache: per sequence and per layer, the keys and values of every position
 * seen so far, F16 by default (half the memory of F32, and what llama.cpp keeps) or F32.
 * A sequence's storage grows by doubling up to the context length, so that many short
 * sequences cost little; it is freed when the sequence is cleared. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/ggml-types.h"

typedef struct KvSeq {
        size_t n_past; /* positions held */
        size_t cap; /* positions allocated */
        uint8_t **k; /* per layer: cap rows of kv_dim elements */
        uint8_t **v;
} KvSeq;

typedef struct KvCache {
        GgmlType type; /* F16 or F32 */
        size_t n_layer, kv_dim, n_ctx, n_seq;
        size_t elem_size;
        KvSeq *seqs;
} KvCache;

int kv_cache_new(GgmlType type, size_t n_layer, size_t kv_dim, size_t n_ctx, size_t n_seq,
                 KvCache **ret);
KvCache *kv_cache_free(KvCache *c);
/* Makes room for positions [0, n) of seq; -ENOSPC past the context length. */
int kv_cache_reserve(KvCache *c, size_t seq, size_t n);
/* Forgets positions >= n (n = 0 frees the sequence's storage). */
void kv_cache_truncate(KvCache *c, size_t seq, size_t n);
size_t kv_cache_bytes(const KvCache *c);

static inline void *kv_cache_k(const KvCache *c, size_t seq, size_t layer, size_t pos)
{
        return c->seqs[seq].k[layer] + pos * c->kv_dim * c->elem_size;
}

static inline void *kv_cache_v(const KvCache *c, size_t seq, size_t layer, size_t pos)
{
        return c->seqs[seq].v[layer] + pos * c->kv_dim * c->elem_size;
}
