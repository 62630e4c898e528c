/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <math.h>

#include "probe-histogram.h"

void probe_histogram_slot_range(unsigned slot, double *ret_low, double *ret_high)
{
        assert(slot < PROBE_HISTOGRAM_SLOTS);

        if (slot == 0) {
                *ret_low = 0;
                *ret_high = 2;
        } else if (slot == PROBE_HISTOGRAM_SLOTS - 1) {
                *ret_low = *ret_high = ldexp(1, (int)slot);
        } else {
                *ret_low = ldexp(1, (int)slot);
                *ret_high = ldexp(1, (int)slot + 1);
        }
}

unsigned probe_histogram_slot(uint64_t v)
{
        unsigned slot = v ? 63 - (unsigned)__builtin_clzll(v) : 0;

        return MIN(slot, PROBE_HISTOGRAM_SLOTS - 1u);
}

uint64_t probe_histogram_total(const ProbeHistogram *h)
{
        uint64_t total = 0;

        for (unsigned i = 0; i < PROBE_HISTOGRAM_SLOTS; i++)
                total += h->slots[i];
        return total;
}

void probe_histogram_delta(const ProbeHistogram *now, const ProbeHistogram *before,
                           ProbeHistogram *ret)
{
        for (unsigned i = 0; i < PROBE_HISTOGRAM_SLOTS; i++)
                ret->slots[i] = now->slots[i] >= before->slots[i] ? now->slots[i] - before->slots[i]
                                                                  : now->slots[i];
}

int probe_histogram_percentile(const ProbeHistogram *h, double p, double *ret)
{
        uint64_t total, rank, before = 0;

        if (!(p > 0 && p <= 100))
                return -EINVAL;
        total = probe_histogram_total(h);
        if (total == 0)
                return -ENODATA;

        /* p * total is exact for integral p, so an exact rank is not rounded up. */
        rank = (uint64_t)ceil(p * (double)total / 100.0);
        rank = CLAMP(rank, (uint64_t)1, total);

        for (unsigned i = 0; i < PROBE_HISTOGRAM_SLOTS; i++) {
                double low, high;

                if (before + h->slots[i] < rank) {
                        before += h->slots[i];
                        continue;
                }
                probe_histogram_slot_range(i, &low, &high);
                *ret = low + (high - low) * ((double)(rank - before) - 0.5) / (double)h->slots[i];
                return 0;
        }
        assert(false); /* rank <= total: some slot holds it */
        return -EIO;
}
