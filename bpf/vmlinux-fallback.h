/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The kernel types the probes use, for building on a host without /sys/kernel/btf/vmlinux.
 * Only the members read are declared; preserve_access_index makes every access a CO-RE
 * relocation that libbpf resolves against the running kernel's BTF at load time, so
 * neither the layout nor the nesting here has to match any kernel (a member inside an
 * anonymous union on the kernel side is found by name). */

typedef signed char __s8;
typedef unsigned char __u8;
typedef short __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s32 s32;
typedef __s64 s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
enum {
        false = 0,
        true = 1,
};
typedef int pid_t;

typedef struct {
        int counter;
} atomic_t;

enum bpf_map_type {
        BPF_MAP_TYPE_HASH = 1,
        BPF_MAP_TYPE_ARRAY = 2,
        BPF_MAP_TYPE_PERCPU_ARRAY = 6,
        BPF_MAP_TYPE_RINGBUF = 27,
        BPF_MAP_TYPE_TASK_STORAGE = 29,
};

enum {
        BPF_F_NO_PREALLOC = 1,
};

enum {
        BPF_LOCAL_STORAGE_GET_F_CREATE = 1,
};

enum {
        BPF_ANY = 0,
        BPF_NOEXIST = 1,
        BPF_EXIST = 2,
};

#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)
#endif

struct signal_struct {
        atomic_t live;
};

struct task_struct {
        unsigned int __state;
        pid_t pid;
        pid_t tgid;
        struct signal_struct *signal;
};

struct gendisk {
        int major;
        int first_minor;
};

struct request_queue {
        struct gendisk *disk;
};

struct request {
        struct request_queue *q;
};

struct sock_common {
        __be32 skc_daddr;
        __be32 skc_rcv_saddr;
        __be16 skc_dport;
        __u16 skc_num;
        unsigned short skc_family;
        volatile unsigned char skc_state;
};

struct sock {
        struct sock_common __sk_common;
};

struct sk_buff {
        unsigned int len;
};

typedef __u32 dev_t;
typedef __u64 sector_t;

struct trace_event_raw_block_rq {
        dev_t dev;
        sector_t sector;
};

struct trace_event_raw_block_rq_completion {
        dev_t dev;
        sector_t sector;
};

#ifndef BPF_NO_PRESERVE_ACCESS_INDEX
#pragma clang attribute pop
#endif
