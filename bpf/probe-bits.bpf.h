/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Helpers shared by the BPF programs. Include after vmlinux.h and the libbpf headers. */

/* floor(log2(v)) without loops or branches on the value: clang 14 does not unroll a
 * 64-step loop, and the verifier counts every branch. log2(0) is 0. */
static __always_inline __u32 probe_log2_u32(__u32 v)
{
        __u32 r, shift;

        r = (v > 0xffff) << 4;
        v >>= r;
        shift = (v > 0xff) << 3;
        v >>= shift;
        r |= shift;
        shift = (v > 0xf) << 2;
        v >>= shift;
        r |= shift;
        shift = (v > 0x3) << 1;
        v >>= shift;
        r |= shift;
        r |= (v >> 1);
        return r;
}

static __always_inline __u32 probe_log2_u64(__u64 v)
{
        __u32 hi = v >> 32;

        return hi ? probe_log2_u32(hi) + 32 : probe_log2_u32((__u32)v);
}

static __always_inline __u32 probe_hist_slot(__u64 v)
{
        __u32 slot = probe_log2_u64(v);

        return slot < PROBE_HIST_SLOTS ? slot : PROBE_HIST_SLOTS - 1;
}

/* The time since start_ns, in microseconds, into slot log2 of the one-entry per-CPU
 * histogram map (a struct probe_hist value); a start in the future is dropped. */
static __always_inline void probe_hist_record(void *hist_map, __u64 start_ns)
{
        struct probe_hist *h;
        __u64 delta = bpf_ktime_get_ns() - start_ns;
        __u32 zero = 0;

        if ((__s64)delta < 0)
                return;
        h = bpf_map_lookup_elem(hist_map, &zero);
        if (h)
                h->slots[probe_hist_slot(delta / 1000)]++;
}

/* Before 5.14 the field was `long state`; it became `unsigned int __state`. */
struct task_struct___pre514 {
        long state;
} __attribute__((preserve_access_index));

static __always_inline long probe_task_state(struct task_struct *t)
{
        struct task_struct___pre514 *old = (void *)t;

        if (bpf_core_field_exists(t->__state))
                return BPF_CORE_READ(t, __state);
        return BPF_CORE_READ(old, state);
}
