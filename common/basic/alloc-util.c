/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "basic/alloc-util.h"

bool greedy_realloc(void **p, size_t *allocated, size_t need, size_t size)
{
        size_t n, bytes;
        void *q;

        if (need <= *allocated)
                return true;
        n = MAX(need, *allocated * 2);
        n = MAX(n, (size_t)8);
        if (size_mul_overflow(n, size, &bytes)) {
                n = need;
                if (size_mul_overflow(n, size, &bytes))
                        return false;
        }
        q = realloc(*p, bytes);
        if (!q)
                return false;
        *p = q;
        *allocated = n;
        return true;
}

void explicit_bzero_safe(void *p, size_t n)
{
        if (p && n)
                explicit_bzero(p, n);
}
