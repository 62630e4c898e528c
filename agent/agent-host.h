/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What this host is, sent once on joining. How loaded it is comes from the probes
 * (agent/probe.h). */

#include "basic/macro.h"
#include "cluster.pb-c.h"

typedef struct HostInfo {
        char arch[65];
        char kernel[65];
        char hostname[65];
        uint32_t cpus; /* CPUs this process may run on */
        uint64_t memory_bytes; /* MemTotal */
        bool has_pidfd, has_cgroup, has_psi;
} HostInfo;

int host_info_read(HostInfo *ret);
