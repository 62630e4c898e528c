/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Small language helpers every file of cluster-ai uses: cleanup attributes, ownership
 * transfer, array sizes, checked arithmetic. libc only. */

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define _unused_ __attribute__((__unused__))
#define _noreturn_ __attribute__((__noreturn__))
#define _printf_(a, b) __attribute__((__format__(printf, a, b)))
#define _pure_ __attribute__((__pure__))
#define _const_ __attribute__((__const__))
#define _malloc_ __attribute__((__malloc__))
#define _sentinel_ __attribute__((__sentinel__))
#define _warn_unused_result_ __attribute__((__warn_unused_result__))
#define _likely_(x) (__builtin_expect(!!(x), 1))
#define _unlikely_(x) (__builtin_expect(!!(x), 0))
#define _cleanup_(f) __attribute__((__cleanup__(f)))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define CLAMP(x, lo, hi) ((x) < (lo) ? (lo) : (x) > (hi) ? (hi) : (x))
#define ALIGN_TO(x, a) (((x) + (a)-1) & ~((size_t)(a)-1))
#define STRINGIFY(x) XSTRINGIFY(x)
#define XSTRINGIFY(x) #x

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Hand an owned pointer or fd to someone else: the local goes NULL / -EBADF, so its
 * cleanup attribute does nothing. */
#define TAKE_PTR(p)                                                                                \
        ({                                                                                         \
                typeof(p) _p_ = (p);                                                               \
                (p) = NULL;                                                                        \
                _p_;                                                                               \
        })
#define TAKE_FD(fd)                                                                                \
        ({                                                                                         \
                int _fd_ = (fd);                                                                   \
                (fd) = -EBADF;                                                                     \
                _fd_;                                                                              \
        })

/* Defines foop(foo **p) for use as _cleanup_(foop). */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                    \
        static inline void func##p(type *p)                                                        \
        {                                                                                          \
                if (*p)                                                                            \
                        *p = func(*p);                                                             \
        }

static inline void freep(void *p)
{
        free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

/* Negative errno from a libc call that set errno; never returns 0 even if errno was
 * left 0 by a sloppy callee. */
static inline int negative_errno(void)
{
        return errno > 0 ? -errno : -EIO;
}

#define RET_NERRNO(expr)                                                                           \
        ({                                                                                         \
                int _r_ = (expr);                                                                  \
                _r_ < 0 ? negative_errno() : _r_;                                                  \
        })

/* Overflow-checked size arithmetic for allocations a peer can influence. */
static inline bool size_mul_overflow(size_t a, size_t b, size_t *ret)
{
        return __builtin_mul_overflow(a, b, ret);
}
static inline bool size_add_overflow(size_t a, size_t b, size_t *ret)
{
        return __builtin_add_overflow(a, b, ret);
}
