// SPDX-License-Identifier: GPL-2.0-or-later
/* Run-queue latency: time from a task becoming runnable (wakeup, or preemption while
 * still runnable) to it getting a CPU, in a per-CPU log2 histogram of microseconds.
 *
 * Each hook exists twice: tp_btf (BTF-typed, cheapest) and raw_tp for kernels that can
 * take raw tracepoints but not BTF-typed ones. The loader enables one set. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "probe-maps.h"
#include "probe-bits.bpf.h"

#define TASK_RUNNING 0

/* Only measure tasks of this process (0: every task). */
const volatile __u32 targ_tgid = 0;

/* When a task started waiting for a CPU (ns; 0: not waiting). tp_btf programs get
 * trusted task pointers and keep it in task-local storage (5.11), cheaper than a hash
 * (no hashing, no element to free); raw_tp programs use the hash. The loader creates
 * only the map of the kind it loads: the _btf / _raw suffix says which. */
struct {
        __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
        __uint(map_flags, BPF_F_NO_PREALLOC);
        __type(key, int);
        __type(value, __u64);
} start_btf SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(max_entries, PROBE_MAX_INFLIGHT);
        __type(key, __u32);
        __type(value, __u64);
} start_raw SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
        __uint(max_entries, 1);
        __type(key, __u32);
        __type(value, struct probe_hist);
} hist SEC(".maps");

static __always_inline bool wanted(struct task_struct *p)
{
        return !targ_tgid || BPF_CORE_READ(p, tgid) == targ_tgid;
}

static __always_inline int enqueued_btf(struct task_struct *p)
{
        __u64 *ts;

        if (!BPF_CORE_READ(p, pid) || !wanted(p))
                return 0;
        ts = bpf_task_storage_get(&start_btf, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
        if (ts)
                *ts = bpf_ktime_get_ns();
        return 0;
}

static __always_inline int switched_btf(struct task_struct *prev, struct task_struct *next)
{
        __u64 *ts;

        /* Preempted while runnable: it waits in the run queue again from now. */
        if (probe_task_state(prev) == TASK_RUNNING)
                enqueued_btf(prev);

        ts = bpf_task_storage_get(&start_btf, next, 0, 0);
        if (!ts || !*ts)
                return 0;
        probe_hist_record(&hist, *ts);
        *ts = 0;
        return 0;
}

static __always_inline int enqueued_raw(struct task_struct *p)
{
        __u32 pid = BPF_CORE_READ(p, pid);
        __u64 ts;

        if (!pid || !wanted(p))
                return 0;
        ts = bpf_ktime_get_ns();
        bpf_map_update_elem(&start_raw, &pid, &ts, BPF_ANY);
        return 0;
}

static __always_inline int switched_raw(struct task_struct *prev, struct task_struct *next)
{
        __u32 pid;
        __u64 *tsp;

        if (probe_task_state(prev) == TASK_RUNNING)
                enqueued_raw(prev);

        pid = BPF_CORE_READ(next, pid);
        tsp = bpf_map_lookup_elem(&start_raw, &pid);
        if (!tsp)
                return 0;
        probe_hist_record(&hist, *tsp);
        bpf_map_delete_elem(&start_raw, &pid);
        return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(sched_wakeup_btf, struct task_struct *p)
{
        return enqueued_btf(p);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new_btf, struct task_struct *p)
{
        return enqueued_btf(p);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
        return switched_btf(prev, next);
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(sched_wakeup_raw, struct task_struct *p)
{
        return enqueued_raw(p);
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new_raw, struct task_struct *p)
{
        return enqueued_raw(p);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(sched_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
        return switched_raw(prev, next);
}

char LICENSE[] SEC("license") = "GPL";
