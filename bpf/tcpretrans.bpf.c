// SPDX-License-Identifier: GPL-2.0-or-later
/* TCP retransmissions: one event per retransmitted segment into a ring buffer that the
 * agent's loop polls. tp_btf with a raw_tp variant. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "probe-maps.h"

#define PROBE_AF_INET 2

struct {
        __uint(type, BPF_MAP_TYPE_RINGBUF);
        __uint(max_entries, 64 * 1024);
} events SEC(".maps");

static __always_inline int retransmitted(const struct sock *sk)
{
        struct probe_tcp_event *e;

        e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
        if (!e)
                return 0;
        e->ts_ns = bpf_ktime_get_ns();
        e->family = BPF_CORE_READ(sk, __sk_common.skc_family);
        e->state = BPF_CORE_READ(sk, __sk_common.skc_state);
        e->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
        e->dport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
        if (e->family == PROBE_AF_INET) {
                e->saddr_v4 = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
                e->daddr_v4 = BPF_CORE_READ(sk, __sk_common.skc_daddr);
        } else {
                e->saddr_v4 = e->daddr_v4 = 0;
        }
        bpf_ringbuf_submit(e, 0);
        return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcp_retransmit_skb_btf, const struct sock *sk, const struct sk_buff *skb)
{
        return retransmitted(sk);
}

SEC("raw_tp/tcp_retransmit_skb")
int BPF_PROG(tcp_retransmit_skb_raw, const struct sock *sk, const struct sk_buff *skb)
{
        return retransmitted(sk);
}

char LICENSE[] SEC("license") = "GPL";
