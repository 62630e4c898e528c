/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* A growable byte buffer with a read offset: data lives in [rpos, len). Used for socket
 * input and output queues. Appends compact the consumed prefix before growing. */

#include "basic/macro.h"

typedef struct Buf {
        uint8_t *data;
        size_t rpos, len, cap;
} Buf;

static inline size_t buf_size(const Buf *b)
{
        return b->len - b->rpos;
}
static inline const uint8_t *buf_head(const Buf *b)
{
        return b->data + b->rpos;
}

/* Makes room for n more bytes and returns the write pointer, or NULL on OOM/overflow.
 * Commit with buf_commit(). */
uint8_t *buf_reserve(Buf *b, size_t n);
void buf_commit(Buf *b, size_t n);
int buf_append(Buf *b, const void *p, size_t n);
void buf_consume(Buf *b, size_t n);
void buf_clear(Buf *b);
void buf_done(Buf *b);
