/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <string.h>

#include "basic/macro.h"

/* clang-format reads 'new' as the C++ keyword. */
// clang-format off
#define new(t, n) ((t *)malloc_multiply(sizeof(t), (n)))
// clang-format on
#define new0(t, n) ((t *)calloc((n) ?: 1, sizeof(t)))
#define mfree(p)                                                                                   \
        ({                                                                                         \
                free(p);                                                                           \
                (typeof(p))NULL;                                                                   \
        })

static inline void *malloc_multiply(size_t size, size_t n)
{
        size_t total;
        if (size_mul_overflow(size, n, &total))
                return NULL;
        return malloc(total ?: 1);
}

static inline void *memdup(const void *p, size_t n)
{
        void *q = malloc(n ?: 1);
        if (q && n)
                memcpy(q, p, n);
        return q;
}

/* Grow *p (holding *allocated elements of size) to hold at least need elements,
 * doubling. Returns false on overflow or OOM, leaving *p untouched. */
bool greedy_realloc(void **p, size_t *allocated, size_t need, size_t size);
#define GREEDY_REALLOC(array, allocated, need)                                                     \
        greedy_realloc((void **)&(array), &(allocated), (need), sizeof((array)[0]))

/* Zero memory that held secrets in a way the compiler cannot drop. */
void explicit_bzero_safe(void *p, size_t n);
