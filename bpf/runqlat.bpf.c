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

struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(max_entries, PROBE_MAX_INFLIGHT);
        __type(key, __u32);
        __type(value, __u64);
} start SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
        __uint(max_entries, 1);
        __type(key, __u32);
        __type(value, struct probe_hist);
} hist SEC(".maps");

static __always_inline int enqueued(struct task_struct *p)
{
        __u32 pid = BPF_CORE_READ(p, pid);
        __u64 ts;

        if (!pid)
                return 0;
        if (targ_tgid && BPF_CORE_READ(p, tgid) != targ_tgid)
                return 0;
        ts = bpf_ktime_get_ns();
        bpf_map_update_elem(&start, &pid, &ts, BPF_ANY);
        return 0;
}

static __always_inline int switched(struct task_struct *prev, struct task_struct *next)
{
        struct probe_hist *h;
        __u32 pid, zero = 0;
        __u64 *tsp, delta;

        /* Preempted while runnable: it waits in the run queue again from now. */
        if (probe_task_state(prev) == TASK_RUNNING)
                enqueued(prev);

        pid = BPF_CORE_READ(next, pid);
        tsp = bpf_map_lookup_elem(&start, &pid);
        if (!tsp)
                return 0;
        delta = bpf_ktime_get_ns() - *tsp;
        bpf_map_delete_elem(&start, &pid);
        if ((__s64)delta < 0)
                return 0;

        h = bpf_map_lookup_elem(&hist, &zero);
        if (!h)
                return 0;
        h->slots[probe_hist_slot(delta / 1000)]++;
        return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(sched_wakeup_btf, struct task_struct *p)
{
        return enqueued(p);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new_btf, struct task_struct *p)
{
        return enqueued(p);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
        return switched(prev, next);
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(sched_wakeup_raw, struct task_struct *p)
{
        return enqueued(p);
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new_raw, struct task_struct *p)
{
        return enqueued(p);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(sched_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
        return switched(prev, next);
}

char LICENSE[] SEC("license") = "GPL";
