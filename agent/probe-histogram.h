/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* log2 histograms as the BPF programs keep them (bpf/probe-maps.h): slot k counts values
 * v with floor(log2(v)) == k, i.e. [2^k, 2^(k+1)), except that slot 0 holds [0, 2) and
 * the last slot is open-ended. The maps are cumulative; the probes diff two reads. */

#include "basic/macro.h"

#define PROBE_HISTOGRAM_SLOTS 32

typedef struct ProbeHistogram {
        uint64_t slots[PROBE_HISTOGRAM_SLOTS];
} ProbeHistogram;

/* The value range a slot stands for: [*ret_low, *ret_high). The last slot's high is its
 * low (nothing is known above it). */
void probe_histogram_slot_range(unsigned slot, double *ret_low, double *ret_high);

/* The slot a value falls into (what the BPF side computes). */
unsigned probe_histogram_slot(uint64_t v) _const_;

uint64_t probe_histogram_total(const ProbeHistogram *h) _pure_;

/* ret = now - before, slot by slot. A slot that went backwards (the map was recreated)
 * counts as now's value. */
void probe_histogram_delta(const ProbeHistogram *now, const ProbeHistogram *before,
                           ProbeHistogram *ret);

/* The p-th percentile (0 < p <= 100) of the values counted. The rank is ceil(p% of the
 * total) (at least 1); within the slot that holds it, the rank's position is taken as
 * evenly spread: low + (high - low) * (rank - before - 0.5) / count, so one value alone
 * in slot [8, 16) reads 12. In the open-ended last slot the answer is its low bound.
 * -ENODATA when the histogram is empty, -EINVAL for p outside (0, 100]. */
int probe_histogram_percentile(const ProbeHistogram *h, double p, double *ret);
