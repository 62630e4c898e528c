/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <string.h>

#include "basic/alloc-util.h"
#include "engine/kv-cache.h"

int kv_cache_new(GgmlType type, size_t n_layer, size_t kv_dim, size_t n_ctx, size_t n_seq,
                 KvCache **ret)
{
        KvCache *c;

        if (type != GGML_TYPE_F16 && type != GGML_TYPE_F32)
                return -EINVAL;
        if (n_layer == 0 || kv_dim == 0 || n_ctx == 0 || n_seq == 0)
                return -EINVAL;
        c = new0(KvCache, 1);
        if (!c)
                return -ENOMEM;
        c->type = type;
        c->elem_size = type == GGML_TYPE_F16 ? 2 : 4;
        c->n_layer = n_layer;
        c->kv_dim = kv_dim;
        c->n_ctx = n_ctx;
        c->n_seq = n_seq;
        c->seqs = new0(KvSeq, n_seq);
        if (!c->seqs)
                return free(c), -ENOMEM;
        *ret = c;
        return 0;
}

static void seq_release(KvCache *c, KvSeq *s)
{
        if (s->k)
                for (size_t l = 0; l < c->n_layer; l++)
                        free(s->k[l]);
        if (s->v)
                for (size_t l = 0; l < c->n_layer; l++)
                        free(s->v[l]);
        s->k = mfree(s->k);
        s->v = mfree(s->v);
        s->cap = s->n_past = 0;
}

KvCache *kv_cache_free(KvCache *c)
{
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_seq; i++)
                seq_release(c, &c->seqs[i]);
        free(c->seqs);
        return mfree(c);
}

int kv_cache_reserve(KvCache *c, size_t seq, size_t n)
{
        KvSeq *s;

        if (seq >= c->n_seq)
                return -EINVAL;
        if (n > c->n_ctx)
                return -ENOSPC;
        s = &c->seqs[seq];
        if (n <= s->cap)
                return 0;
        if (!s->k) {
                s->k = new0(uint8_t *, c->n_layer);
                s->v = new0(uint8_t *, c->n_layer);
                if (!s->k || !s->v) {
                        seq_release(c, s);
                        return -ENOMEM;
                }
        }
        size_t cap = MAX(s->cap * 2, (size_t)256);
        cap = MAX(cap, n);
        cap = MIN(cap, c->n_ctx);
        size_t row = c->kv_dim * c->elem_size;
        for (size_t l = 0; l < c->n_layer; l++) {
                uint8_t *k = realloc(s->k[l], cap * row);
                if (!k)
                        return -ENOMEM;
                s->k[l] = k;
                uint8_t *v = realloc(s->v[l], cap * row);
                if (!v)
                        return -ENOMEM;
                s->v[l] = v;
        }
        s->cap = cap;
        return 0;
}

void kv_cache_truncate(KvCache *c, size_t seq, size_t n)
{
        if (seq >= c->n_seq)
                return;
        if (n == 0)
                seq_release(c, &c->seqs[seq]);
        else if (n < c->seqs[seq].n_past)
                c->seqs[seq].n_past = n;
}

size_t kv_cache_bytes(const KvCache *c)
{
        size_t total = 0;
        for (size_t i = 0; i < c->n_seq; i++)
                total += c->seqs[i].cap * c->kv_dim * c->elem_size * 2 * c->n_layer;
        return total;
}
