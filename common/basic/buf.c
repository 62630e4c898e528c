/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "basic/alloc-util.h"
#include "basic/buf.h"

uint8_t *buf_reserve(Buf *b, size_t n)
{
        size_t need;

        if (b->rpos > 0 && (b->rpos == b->len || b->cap - b->len < n)) {
                memmove(b->data, b->data + b->rpos, b->len - b->rpos);
                b->len -= b->rpos;
                b->rpos = 0;
        }
        if (size_add_overflow(b->len, n, &need))
                return NULL;
        if (need > b->cap) {
                size_t cap = MAX(need, b->cap * 2);
                cap = MAX(cap, (size_t)4096);
                uint8_t *d = realloc(b->data, cap);
                if (!d)
                        return NULL;
                b->data = d;
                b->cap = cap;
        }
        return b->data + b->len;
}

void buf_commit(Buf *b, size_t n)
{
        assert(b->len + n <= b->cap);
        b->len += n;
}

int buf_append(Buf *b, const void *p, size_t n)
{
        uint8_t *w;

        if (n == 0)
                return 0;
        w = buf_reserve(b, n);
        if (!w)
                return -ENOMEM;
        memcpy(w, p, n);
        buf_commit(b, n);
        return 0;
}

void buf_consume(Buf *b, size_t n)
{
        assert(n <= buf_size(b));
        b->rpos += n;
        if (b->rpos == b->len)
                b->rpos = b->len = 0;
}

void buf_clear(Buf *b)
{
        b->rpos = b->len = 0;
}

void buf_done(Buf *b)
{
        free(b->data);
        *b = (Buf){};
}
