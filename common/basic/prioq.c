/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "basic/alloc-util.h"
#include "basic/prioq.h"

typedef struct Item {
        void *data;
        unsigned *idx;
} Item;

struct Prioq {
        prioq_compare_fn cmp;
        Item *items;
        size_t n, allocated;
};

Prioq *prioq_new(prioq_compare_fn cmp)
{
        Prioq *q = new0(Prioq, 1);
        if (q)
                q->cmp = cmp;
        return q;
}

Prioq *prioq_free(Prioq *q)
{
        if (!q)
                return NULL;
        for (size_t i = 0; i < q->n; i++)
                *q->items[i].idx = PRIOQ_IDX_NULL;
        free(q->items);
        free(q);
        return NULL;
}

static void swap(Prioq *q, size_t a, size_t b)
{
        Item t = q->items[a];
        q->items[a] = q->items[b];
        q->items[b] = t;
        *q->items[a].idx = (unsigned)a;
        *q->items[b].idx = (unsigned)b;
}

static size_t shuffle_up(Prioq *q, size_t i)
{
        while (i > 0) {
                size_t p = (i - 1) / 2;
                if (q->cmp(q->items[p].data, q->items[i].data) <= 0)
                        break;
                swap(q, p, i);
                i = p;
        }
        return i;
}

static size_t shuffle_down(Prioq *q, size_t i)
{
        for (;;) {
                size_t l = 2 * i + 1, r = l + 1, m = i;
                if (l < q->n && q->cmp(q->items[l].data, q->items[m].data) < 0)
                        m = l;
                if (r < q->n && q->cmp(q->items[r].data, q->items[m].data) < 0)
                        m = r;
                if (m == i)
                        return i;
                swap(q, i, m);
                i = m;
        }
}

int prioq_put(Prioq *q, void *item, unsigned *idx)
{
        if (q->n >= UINT32_MAX - 1)
                return -ENOSPC;
        if (!GREEDY_REALLOC(q->items, q->allocated, q->n + 1))
                return -ENOMEM;
        q->items[q->n] = (Item){item, idx};
        *idx = (unsigned)q->n;
        q->n++;
        shuffle_up(q, q->n - 1);
        return 0;
}

void prioq_remove(Prioq *q, void *item, unsigned *idx)
{
        size_t i = *idx;

        if (i == PRIOQ_IDX_NULL || i >= q->n || q->items[i].data != item)
                return;
        *idx = PRIOQ_IDX_NULL;
        q->n--;
        if (i == q->n)
                return;
        q->items[i] = q->items[q->n];
        *q->items[i].idx = (unsigned)i;
        shuffle_down(q, shuffle_up(q, i));
}

void prioq_reshuffle(Prioq *q, void *item, unsigned *idx)
{
        size_t i = *idx;

        if (i == PRIOQ_IDX_NULL || i >= q->n || q->items[i].data != item)
                return;
        shuffle_down(q, shuffle_up(q, i));
}

void *prioq_peek(const Prioq *q)
{
        return q->n ? q->items[0].data : NULL;
}

size_t prioq_size(const Prioq *q)
{
        return q->n;
}
