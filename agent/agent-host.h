/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What this host is (sent once on joining) and how loaded it is (sent in every
 * heartbeat), read from the kernel's files. */

#include "basic/macro.h"
#include "cluster.pb-c.h"

typedef struct HostInfo {
        char arch[65];
        char kernel[65];
        char hostname[65];
        uint32_t cpus;          /* CPUs this process may run on */
        uint64_t memory_bytes;  /* MemTotal */
        bool has_pidfd, has_cgroup, has_psi;
} HostInfo;

int host_info_read(HostInfo *ret);

/* CPU busy needs two samples: keep the previous one here. */
typedef struct LoadSampler {
        uint64_t prev_busy, prev_total;
} LoadSampler;

/* Fills the scalar fields of load (probe_source is a static string). */
int load_sample(LoadSampler *s, Cluster__Load *load);
