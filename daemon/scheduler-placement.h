/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Placement policy: a pure function of snapshots, so it is tested without sockets.
 *
 * An agent can take a task when it is ready, has a free task slot, and its unreserved
 * CPUs and memory cover the task's request. Among those, the one with the lowest score
 * wins: reserved share of CPUs after placing, plus measured pressure (run-queue latency,
 * CPU pressure, CPU busy), so an agent with a deep run queue loses to an idle one with
 * the same reservations. Ties go to the lower index, which keeps placement stable. */

#include "basic/macro.h"

typedef struct PlacementAgent {
        const char *name;
        bool ready;
        uint32_t cpus;
        uint64_t memory_bytes;
        uint32_t max_tasks;
        uint32_t running_tasks;
        uint32_t used_cpus;
        uint64_t used_memory_bytes;
        float cpu_busy; /* 0..1 */
        float psi_cpu_some_avg10; /* 0..100 */
        float runq_latency_p99_us;
} PlacementAgent;

typedef struct PlacementRequest {
        uint32_t cpus; /* 0 counts as 1 */
        uint64_t memory_bytes;
        const char *agent; /* NULL or "": any */
} PlacementRequest;

/* Returns the index of the chosen agent, or
 *   -EAGAIN  some agent could take it once its running tasks finish (queue it),
 *   -ENOSPC  no agent could ever take it (larger than every agent),
 *   -ENOENT  the named agent is unknown,
 *   -EHOSTDOWN no agent is ready (none connected). */
int placement_choose(const PlacementAgent *agents, size_t n, const PlacementRequest *req);
