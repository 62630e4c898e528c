/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* A fixed pool of compute threads for the forward pass. The calling thread is worker 0;
 * threads are created once and wait between jobs by spinning briefly and then sleeping
 * on a futex, so that the many short jobs of one token (a few per layer) do not pay for
 * a thread wake-up each, while an idle engine costs no CPU. */

#include <stddef.h>

typedef struct ThreadPool ThreadPool;

/* Runs on every worker: ith in [0, nth). */
typedef void (*ThreadPoolFn)(void *userdata, unsigned ith, unsigned nth);

/* Physical cores available to this process (hyper-threads counted once). */
unsigned cpu_physical_cores(void);

/* n_threads == 0 picks cpu_physical_cores(). */
int threadpool_new(unsigned n_threads, ThreadPool **ret);
ThreadPool *threadpool_free(ThreadPool *p);
unsigned threadpool_size(const ThreadPool *p);

/* Runs fn on all workers and returns when every one has finished. Not re-entrant:
 * one job at a time per pool. */
void threadpool_run(ThreadPool *p, ThreadPoolFn fn, void *userdata);

/* Splits [0, n) into nth nearly equal parts; part ith is [*ret_lo, *ret_hi). */
static inline void threadpool_split(size_t n, unsigned ith, unsigned nth, size_t *ret_lo,
                                    size_t *ret_hi)
{
        size_t per = n / nth, extra = n % nth;
        *ret_lo = ith * per + (ith < extra ? ith : extra);
        *ret_hi = *ret_lo + per + (ith < extra ? 1 : 0);
}
