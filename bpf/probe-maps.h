/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Layouts shared by the BPF programs and their loader (agent/probe-bpf.c). Included by
 * both sides: in BPF after vmlinux.h, in user space after <linux/types.h>. */

/* log2 histograms: slot k counts values v (µs) with floor(log2(v)) == k, slot 0 also
 * counts 0; the last slot is open-ended (everything >= 2^(SLOTS-1) µs, ~36 min). */
#define PROBE_HIST_SLOTS 32

struct probe_hist {
        __u64 slots[PROBE_HIST_SLOTS];
};

/* Most in-flight entries a start-time map keeps (wakeups waiting for a CPU, block
 * requests waiting for completion); past that new ones are not measured. */
#define PROBE_MAX_INFLIGHT 16384

/* Most tasks (cgroups or processes) cpuacct follows at once, forked children included. */
#define PROBE_MAX_WATCHED 4096

/* One TCP retransmission, as tcpretrans sends it through its ring buffer. */
struct probe_tcp_event {
        __u64 ts_ns;
        __u32 saddr_v4;
        __u32 daddr_v4;
        __u16 family;
        __u16 sport;
        __u16 dport;
        __u16 state;
};
