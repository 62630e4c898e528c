// SPDX-License-Identifier: GPL-2.0-or-later
/* CPU time of watched tasks, from sched_switch: whatever ran on a CPU since the previous
 * switch there is charged to the task switched out (which is `current` in the hook).
 *
 * A task is followed by its cgroup v2 id (everything inside the cgroup counts) when
 * track_cgroups is set and the loader put the id into watch_cgroups, else by process:
 * watch_tgids maps a tgid to the key its time is charged to, and a process forked by a
 * watched one inherits the key, so a command's children count too. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "probe-maps.h"
#include "probe-bits.bpf.h"

/* cgroup v2 is the unified hierarchy, so bpf_get_current_cgroup_id() means something. */
const volatile bool track_cgroups = false;

/* How many entries the loader put into watch_cgroups and watch_tgids. While one is 0
 * its lookup is skipped: a host with no task pays a clock read per switch and no more. */
__u32 n_cgroups = 0;
__u32 n_tgids = 0;

struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(max_entries, PROBE_MAX_WATCHED);
        __type(key, __u64); /* cgroup id */
        __type(value, __u64); /* key in usage */
} watch_cgroups SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(max_entries, PROBE_MAX_WATCHED);
        __type(key, __u32); /* tgid */
        __type(value, __u64); /* key in usage */
} watch_tgids SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(max_entries, PROBE_MAX_WATCHED);
        __type(key, __u64); /* the loader's key */
        __type(value, __u64); /* CPU time, ns */
} usage SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
        __uint(max_entries, 1);
        __type(key, __u32);
        __type(value, __u64); /* when the current task got this CPU */
} oncpu SEC(".maps");

static __always_inline int switched(void)
{
        __u64 now = bpf_ktime_get_ns(), delta, *since, *key = NULL, *total;
        __u32 zero = 0, tgid;

        since = bpf_map_lookup_elem(&oncpu, &zero);
        if (!since)
                return 0;
        delta = *since ? now - *since : 0;
        *since = now;
        if (!delta)
                return 0;

        if (track_cgroups && n_cgroups) {
                __u64 cgid = bpf_get_current_cgroup_id();

                key = bpf_map_lookup_elem(&watch_cgroups, &cgid);
        }
        if (!key && n_tgids) {
                tgid = bpf_get_current_pid_tgid() >> 32;
                if (!tgid)
                        return 0;
                key = bpf_map_lookup_elem(&watch_tgids, &tgid);
        }
        if (!key)
                return 0;
        total = bpf_map_lookup_elem(&usage, key);
        if (total)
                __sync_fetch_and_add(total, delta);
        return 0;
}

static __always_inline int forked(struct task_struct *parent, struct task_struct *child)
{
        __u32 ptgid = BPF_CORE_READ(parent, tgid), ctgid = BPF_CORE_READ(child, tgid);
        __u64 *key;

        if (ptgid == ctgid || !n_tgids) /* a new thread: already charged by tgid */
                return 0;
        key = bpf_map_lookup_elem(&watch_tgids, &ptgid);
        if (key)
                bpf_map_update_elem(&watch_tgids, &ctgid, key, BPF_NOEXIST);
        return 0;
}

static __always_inline int exited(struct task_struct *p)
{
        __u32 tgid = BPF_CORE_READ(p, tgid);

        /* The exiting thread is current: charge what it ran since its last switch now,
         * while it is still found (its final switch would come after the entry is gone;
         * a CPU-bound process that is never preempted would be charged nothing). */
        switched();

        /* Once the whole thread group is dead (signal->live dropped to 0 just before
         * this hook) its tgid may be reused by anyone. What it used stays in usage under
         * its key until the loader unwatches that. */
        if (BPF_CORE_READ(p, signal, live.counter) == 0)
                bpf_map_delete_elem(&watch_tgids, &tgid);
        return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
        return switched();
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(sched_process_fork_btf, struct task_struct *parent, struct task_struct *child)
{
        return forked(parent, child);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(sched_process_exit_btf, struct task_struct *p)
{
        return exited(p);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(sched_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
        return switched();
}

SEC("raw_tp/sched_process_fork")
int BPF_PROG(sched_process_fork_raw, struct task_struct *parent, struct task_struct *child)
{
        return forked(parent, child);
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(sched_process_exit_raw, struct task_struct *p)
{
        return exited(p);
}

char LICENSE[] SEC("license") = "GPL";
