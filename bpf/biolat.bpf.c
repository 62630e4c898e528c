// SPDX-License-Identifier: GPL-2.0-or-later
/* Block-IO latency: from a request's issue to the device to its completion, in a
 * per-CPU log2 histogram of microseconds. tp_btf hooks, with raw_tp variants, and
 * classic tracepoint variants for kernels that take neither (these attach only where
 * tracefs is mounted, and see a device and sector instead of the request). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "probe-maps.h"
#include "probe-bits.bpf.h"

/* Only requests on this device (dev_t as the kernel encodes it; 0: every device). */
const volatile __u32 targ_dev = 0;

struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(max_entries, PROBE_MAX_INFLIGHT);
        __type(key, struct request *);
        __type(value, __u64);
} start SEC(".maps");

/* The tracepoint variant's in-flight requests, by device and first sector. */
struct rq_key {
        __u32 dev;
        __u32 pad;
        __u64 sector;
};

struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(max_entries, PROBE_MAX_INFLIGHT);
        __type(key, struct rq_key);
        __type(value, __u64);
} start_tp SEC(".maps");

struct {
        __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
        __uint(max_entries, 1);
        __type(key, __u32);
        __type(value, struct probe_hist);
} hist SEC(".maps");

static __always_inline __u32 request_dev(struct request *rq)
{
        struct gendisk *disk = BPF_CORE_READ(rq, q, disk);

        if (!disk)
                return 0;
        return (__u32)BPF_CORE_READ(disk, major) << 20 | BPF_CORE_READ(disk, first_minor);
}

static __always_inline int issued(struct request *rq)
{
        __u64 ts;

        if (targ_dev && request_dev(rq) != targ_dev)
                return 0;
        ts = bpf_ktime_get_ns();
        bpf_map_update_elem(&start, &rq, &ts, BPF_ANY);
        return 0;
}

static __always_inline int completed(struct request *rq)
{
        __u64 *tsp;

        tsp = bpf_map_lookup_elem(&start, &rq);
        if (!tsp)
                return 0;
        probe_hist_record(&hist, *tsp);
        bpf_map_delete_elem(&start, &rq);
        return 0;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(block_rq_issue_btf, struct request *rq)
{
        return issued(rq);
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(block_rq_complete_btf, struct request *rq, int error, unsigned int nr_bytes)
{
        return completed(rq);
}

SEC("raw_tp/block_rq_issue")
int BPF_PROG(block_rq_issue_raw, struct request *rq)
{
        return issued(rq);
}

SEC("raw_tp/block_rq_complete")
int BPF_PROG(block_rq_complete_raw, struct request *rq, int error, unsigned int nr_bytes)
{
        return completed(rq);
}

/* The tracepoints' dev is the kernel's dev_t (major << 20 | minor), as targ_dev. */
SEC("tracepoint/block/block_rq_issue")
int block_rq_issue_tp(struct trace_event_raw_block_rq *ctx)
{
        struct rq_key key = {.dev = BPF_CORE_READ(ctx, dev), .sector = BPF_CORE_READ(ctx, sector)};
        __u64 ts;

        if (targ_dev && key.dev != targ_dev)
                return 0;
        ts = bpf_ktime_get_ns();
        bpf_map_update_elem(&start_tp, &key, &ts, BPF_ANY);
        return 0;
}

SEC("tracepoint/block/block_rq_complete")
int block_rq_complete_tp(struct trace_event_raw_block_rq_completion *ctx)
{
        struct rq_key key = {.dev = BPF_CORE_READ(ctx, dev), .sector = BPF_CORE_READ(ctx, sector)};
        __u64 *tsp;

        tsp = bpf_map_lookup_elem(&start_tp, &key);
        if (!tsp)
                return 0;
        probe_hist_record(&hist, *tsp);
        bpf_map_delete_elem(&start_tp, &key);
        return 0;
}

char LICENSE[] SEC("license") = "GPL";
