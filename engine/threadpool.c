/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "basic/alloc-util.h"
#include "engine/threadpool.h"

/* Spin this long before sleeping: long enough to cover the gap between two jobs of one
 * forward pass (waking a sleeping thread costs tens of microseconds, more in a VM), and
 * short, because a thread that spins while the one it waits for is preempted takes the
 * CPU that one needs. With a busy process beside a two-thread pool on two vCPUs, 2 ms
 * of spinning cut decoding of the 110M Q4_0 model to 30-80 tok/s, 50 us gave 160-200
 * (llama.cpp: 200); on a quiet host both gave the same speed. */
#define SPIN_NSEC (50 * 1000)

struct ThreadPool {
        unsigned n_threads;
        pthread_t *threads;
        _Atomic uint32_t generation; /* bumped per job; futex word for idle workers */
        _Atomic uint32_t pending; /* workers still running the current job */
        _Atomic uint32_t done_seq; /* futex word for the caller */
        _Atomic int stop;
        _Atomic uint32_t sleepers; /* workers in (or about to enter) FUTEX_WAIT */
        _Atomic uint32_t caller_sleeps; /* the caller is (about to be) in FUTEX_WAIT */
        uint32_t jobs; /* jobs dispatched (caller only) */
        ThreadPoolFn fn;
        void *userdata;
};

typedef struct Worker {
        ThreadPool *pool;
        unsigned ith;
} Worker;

static long futex(_Atomic uint32_t *addr, int op, uint32_t val)
{
        return syscall(SYS_futex, (uint32_t *)addr, op, val, NULL, NULL, 0);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield");
#endif
}

static uint64_t now_nsec(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Waits until *word != old: spins for SPIN_NSEC, then sleeps on the futex with *count
 * raised so that the other side knows a wake-up is needed. The count is raised before
 * the last check of the word and the other side changes the word before reading the
 * count (both sequentially consistent), so a wake-up is never missed. */
static uint32_t wait_change(_Atomic uint32_t *word, uint32_t old, _Atomic uint32_t *count)
{
        uint32_t v;
        uint64_t start = 0;
        for (unsigned spins = 0;; spins++) {
                v = atomic_load_explicit(word, memory_order_acquire);
                if (v != old)
                        return v;
                if ((spins & 255) == 255) {
                        uint64_t t = now_nsec();
                        if (!start)
                                start = t;
                        else if (t - start > SPIN_NSEC)
                                break;
                }
                cpu_relax();
        }
        for (;;) {
                atomic_fetch_add(count, 1);
                v = atomic_load(word);
                if (v == old)
                        futex(word, FUTEX_WAIT_PRIVATE, old);
                atomic_fetch_sub(count, 1);
                v = atomic_load_explicit(word, memory_order_acquire);
                if (v != old)
                        return v;
        }
}

static void *worker_main(void *arg)
{
        Worker *w = arg;
        ThreadPool *p = w->pool;
        uint32_t seen = 0;

        for (;;) {
                seen = wait_change(&p->generation, seen, &p->sleepers);
                if (atomic_load(&p->stop))
                        break;
                p->fn(p->userdata, w->ith, p->n_threads);
                if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
                        atomic_fetch_add(&p->done_seq, 1);
                        if (atomic_load(&p->caller_sleeps))
                                futex(&p->done_seq, FUTEX_WAKE_PRIVATE, 1);
                }
        }
        free(w);
        return NULL;
}

static unsigned count_physical_cores(void)
{
        cpu_set_t set;
        unsigned n = 0;
        char seen_keys[1024][32];
        unsigned n_keys = 0;

        if (sched_getaffinity(0, sizeof(set), &set) < 0)
                return 0;
        for (int cpu = 0; cpu < CPU_SETSIZE && n_keys < ELEMENTSOF(seen_keys); cpu++) {
                char path[128], key[32] = "";
                FILE *f;
                int core = -1, pkg = -1;

                if (!CPU_ISSET(cpu, &set))
                        continue;
                n++;
                snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/topology/core_id", cpu);
                f = fopen(path, "re");
                if (f) {
                        if (fscanf(f, "%d", &core) != 1)
                                core = -1;
                        fclose(f);
                }
                snprintf(path, sizeof(path),
                         "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", cpu);
                f = fopen(path, "re");
                if (f) {
                        if (fscanf(f, "%d", &pkg) != 1)
                                pkg = -1;
                        fclose(f);
                }
                if (core < 0)
                        snprintf(key, sizeof(key), "cpu%d", cpu);
                else
                        snprintf(key, sizeof(key), "%d/%d", pkg, core);
                bool dup = false;
                for (unsigned i = 0; i < n_keys && !dup; i++)
                        dup = strcmp(seen_keys[i], key) == 0;
                if (!dup)
                        strcpy(seen_keys[n_keys++], key);
        }
        return n_keys > 0 ? n_keys : n;
}

unsigned cpu_physical_cores(void)
{
        unsigned n = count_physical_cores();
        if (n == 0) {
                long c = sysconf(_SC_NPROCESSORS_ONLN);
                n = c > 0 ? (unsigned)c : 1;
        }
        return n;
}

ThreadPool *threadpool_free(ThreadPool *p)
{
        if (!p)
                return NULL;
        if (p->threads) {
                atomic_store(&p->stop, 1);
                atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
                futex(&p->generation, FUTEX_WAKE_PRIVATE, INT_MAX);
                for (unsigned i = 1; i < p->n_threads; i++)
                        if (p->threads[i])
                                pthread_join(p->threads[i], NULL);
                free(p->threads);
        }
        return mfree(p);
}

int threadpool_new(unsigned n_threads, ThreadPool **ret)
{
        ThreadPool *p;

        if (n_threads == 0)
                n_threads = cpu_physical_cores();
        if (n_threads > 512)
                return -EINVAL;
        p = new0(ThreadPool, 1);
        if (!p)
                return -ENOMEM;
        p->n_threads = n_threads;
        p->threads = new0(pthread_t, n_threads);
        if (!p->threads) {
                free(p);
                return -ENOMEM;
        }
        for (unsigned i = 1; i < n_threads; i++) {
                Worker *w = new0(Worker, 1);
                int r;
                if (!w) {
                        p->n_threads = i;
                        threadpool_free(p);
                        return -ENOMEM;
                }
                w->pool = p;
                w->ith = i;
                r = pthread_create(&p->threads[i], NULL, worker_main, w);
                if (r != 0) {
                        free(w);
                        p->threads[i] = 0;
                        p->n_threads = i;
                        threadpool_free(p);
                        return -r;
                }
        }
        *ret = p;
        return 0;
}

unsigned threadpool_size(const ThreadPool *p)
{
        return p->n_threads;
}

void threadpool_run(ThreadPool *p, ThreadPoolFn fn, void *userdata)
{
        if (p->n_threads == 1) {
                fn(userdata, 0, 1);
                return;
        }
        p->fn = fn;
        p->userdata = userdata;
        /* The last worker of a job bumps done_seq once, possibly after we saw pending
         * reach 0 and went on: so wait for a count, not for a change. */
        uint32_t target = ++p->jobs;
        atomic_store_explicit(&p->pending, p->n_threads - 1, memory_order_relaxed);
        atomic_fetch_add(&p->generation, 1);
        if (atomic_load(&p->sleepers))
                futex(&p->generation, FUTEX_WAKE_PRIVATE, INT_MAX);

        fn(userdata, 0, p->n_threads);

        uint32_t v;
        while ((v = atomic_load_explicit(&p->done_seq, memory_order_acquire)) != target)
                (void)wait_change(&p->done_seq, v, &p->caller_sleeps);
}
