/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <math.h>

#include "basic/string-util.h"
#include "daemon/scheduler-placement.h"

static bool fits_ever(const PlacementAgent *a, uint32_t cpus, uint64_t mem)
{
        return cpus <= a->cpus && (a->memory_bytes == 0 || mem <= a->memory_bytes) &&
                a->max_tasks > 0;
}

static bool fits_now(const PlacementAgent *a, uint32_t cpus, uint64_t mem)
{
        if (!a->ready || a->running_tasks >= a->max_tasks)
                return false;
        if (a->used_cpus > a->cpus || cpus > a->cpus - a->used_cpus)
                return false;
        if (a->memory_bytes > 0 && mem > 0 &&
            (a->used_memory_bytes > a->memory_bytes ||
             mem > a->memory_bytes - a->used_memory_bytes))
                return false;
        return true;
}

static double score(const PlacementAgent *a, uint32_t cpus)
{
        double s = (double)(a->used_cpus + cpus) / (double)MAX(a->cpus, 1U);
        /* Measured pressure: 1 ms of run-queue p99 weighs like a quarter of the host
         * reserved; full CPU pressure like half of it. NaN or negative probes count 0. */
        if (isfinite(a->runq_latency_p99_us) && a->runq_latency_p99_us > 0)
                s += MIN(a->runq_latency_p99_us / 4000.0, 1.0);
        if (isfinite(a->psi_cpu_some_avg10) && a->psi_cpu_some_avg10 > 0)
                s += MIN(a->psi_cpu_some_avg10 / 200.0, 0.5);
        if (isfinite(a->cpu_busy) && a->cpu_busy > 0)
                s += MIN(a->cpu_busy, 1.0f) * 0.25;
        return s;
}

int placement_choose(const PlacementAgent *agents, size_t n, const PlacementRequest *req)
{
        uint32_t cpus = MAX(req->cpus, 1U);
        uint64_t mem = req->memory_bytes;
        bool any_ready = false, ever = false;
        int best = -1;
        double best_score = 0;

        for (size_t i = 0; i < n; i++) {
                const PlacementAgent *a = &agents[i];

                if (!isempty(req->agent) && !streq(req->agent, a->name))
                        continue;
                if (!isempty(req->agent) && !a->ready)
                        return -EAGAIN; /* named agent known but not connected: wait */
                if (!a->ready)
                        continue;
                any_ready = true;
                if (!fits_ever(a, cpus, mem))
                        continue;
                ever = true;
                if (!fits_now(a, cpus, mem))
                        continue;
                double s = score(a, cpus);
                if (best < 0 || s < best_score) {
                        best = (int)i;
                        best_score = s;
                }
        }
        if (best >= 0)
                return best;
        if (!isempty(req->agent)) {
                for (size_t i = 0; i < n; i++)
                        if (streq(req->agent, agents[i].name))
                                return ever ? -EAGAIN : -ENOSPC;
                return -ENOENT;
        }
        if (!any_ready)
                return -EHOSTDOWN;
        return ever ? -EAGAIN : -ENOSPC;
}
