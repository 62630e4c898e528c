/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Percentiles from the log2 histograms the BPF programs fill. */
#include <check.h>
#include <math.h>

#include "probe-histogram.h"

#define ck_assert_near(a, b)                                                                       \
        ck_assert_msg(fabs((double)(a) - (double)(b)) < 1e-9, "%.12g != %.12g", (double)(a),       \
                      (double)(b))

START_TEST(test_slot)
{
        ck_assert_uint_eq(probe_histogram_slot(0), 0);
        ck_assert_uint_eq(probe_histogram_slot(1), 0);
        ck_assert_uint_eq(probe_histogram_slot(2), 1);
        ck_assert_uint_eq(probe_histogram_slot(3), 1);
        ck_assert_uint_eq(probe_histogram_slot(4), 2);
        ck_assert_uint_eq(probe_histogram_slot(1023), 9);
        ck_assert_uint_eq(probe_histogram_slot(1024), 10);
        ck_assert_uint_eq(probe_histogram_slot((1ULL << 31) - 1), 30);
        ck_assert_uint_eq(probe_histogram_slot(1ULL << 31), 31);
        /* everything past the last slot lands in it */
        ck_assert_uint_eq(probe_histogram_slot(1ULL << 40), PROBE_HISTOGRAM_SLOTS - 1);
        ck_assert_uint_eq(probe_histogram_slot(UINT64_MAX), PROBE_HISTOGRAM_SLOTS - 1);
}
END_TEST

START_TEST(test_slot_range)
{
        double lo, hi;

        probe_histogram_slot_range(0, &lo, &hi);
        ck_assert_near(lo, 0);
        ck_assert_near(hi, 2);
        probe_histogram_slot_range(1, &lo, &hi);
        ck_assert_near(lo, 2);
        ck_assert_near(hi, 4);
        probe_histogram_slot_range(5, &lo, &hi);
        ck_assert_near(lo, 32);
        ck_assert_near(hi, 64);
        probe_histogram_slot_range(PROBE_HISTOGRAM_SLOTS - 1, &lo, &hi);
        ck_assert_near(lo, ldexp(1, PROBE_HISTOGRAM_SLOTS - 1));
        ck_assert_near(hi, lo);

        /* every value falls inside its slot's range */
        for (uint64_t v = 0; v < 5000; v++) {
                unsigned s = probe_histogram_slot(v);
                probe_histogram_slot_range(s, &lo, &hi);
                ck_assert((double)v >= lo && (double)v < hi);
        }
}
END_TEST

START_TEST(test_empty_and_invalid)
{
        ProbeHistogram h = {};
        double v = -1;

        ck_assert_int_eq(probe_histogram_percentile(&h, 50, &v), -ENODATA);
        ck_assert_near(v, -1); /* untouched */
        h.slots[3] = 1;
        ck_assert_int_eq(probe_histogram_percentile(&h, 0, &v), -EINVAL);
        ck_assert_int_eq(probe_histogram_percentile(&h, -5, &v), -EINVAL);
        ck_assert_int_eq(probe_histogram_percentile(&h, 100.01, &v), -EINVAL);
        ck_assert_int_eq(probe_histogram_percentile(&h, NAN, &v), -EINVAL);
        ck_assert_near(v, -1);
}
END_TEST

START_TEST(test_single_value)
{
        ProbeHistogram h = {};
        double v;

        /* one value in [8, 16): every percentile is the slot's middle */
        h.slots[3] = 1;
        ck_assert_int_eq(probe_histogram_percentile(&h, 0.001, &v), 0);
        ck_assert_near(v, 12);
        ck_assert_int_eq(probe_histogram_percentile(&h, 50, &v), 0);
        ck_assert_near(v, 12);
        ck_assert_int_eq(probe_histogram_percentile(&h, 100, &v), 0);
        ck_assert_near(v, 12);

        /* slot 0 is [0, 2) */
        h = (ProbeHistogram){};
        h.slots[0] = 1;
        ck_assert_int_eq(probe_histogram_percentile(&h, 99, &v), 0);
        ck_assert_near(v, 1);

        /* the open-ended last slot answers its low bound */
        h = (ProbeHistogram){};
        h.slots[PROBE_HISTOGRAM_SLOTS - 1] = 7;
        ck_assert_int_eq(probe_histogram_percentile(&h, 50, &v), 0);
        ck_assert_near(v, ldexp(1, PROBE_HISTOGRAM_SLOTS - 1));
}
END_TEST

START_TEST(test_ranks)
{
        ProbeHistogram h = {};
        double v;

        /* one value in each of slots 1..10: p50 is rank 5 (slot 5, [32, 64)) */
        for (unsigned i = 1; i <= 10; i++)
                h.slots[i] = 1;
        ck_assert_int_eq(probe_histogram_percentile(&h, 50, &v), 0);
        ck_assert_near(v, 48);
        /* p50.1 is rank ceil(5.01) = 6 */
        ck_assert_int_eq(probe_histogram_percentile(&h, 50.1, &v), 0);
        ck_assert_near(v, 96);
        ck_assert_int_eq(probe_histogram_percentile(&h, 100, &v), 0);
        ck_assert_near(v, 1536);
        /* p10 is rank 1, not rank 2 */
        ck_assert_int_eq(probe_histogram_percentile(&h, 10, &v), 0);
        ck_assert_near(v, 3);

        /* 99 fast, 1 slow: p99 is exactly rank 99 (no float round-up to 100) */
        h = (ProbeHistogram){};
        h.slots[0] = 99;
        h.slots[10] = 1;
        ck_assert_uint_eq(probe_histogram_total(&h), 100);
        ck_assert_int_eq(probe_histogram_percentile(&h, 99, &v), 0);
        ck_assert_near(v, 0 + 2 * (99 - 0.5) / 99);
        ck_assert_int_eq(probe_histogram_percentile(&h, 99.5, &v), 0);
        ck_assert_near(v, 1536);

        /* within one slot, ranks spread evenly: 4 values in [16, 32) */
        h = (ProbeHistogram){};
        h.slots[4] = 4;
        ck_assert_int_eq(probe_histogram_percentile(&h, 25, &v), 0);
        ck_assert_near(v, 16 + 16 * 0.5 / 4);
        ck_assert_int_eq(probe_histogram_percentile(&h, 100, &v), 0);
        ck_assert_near(v, 16 + 16 * 3.5 / 4);
}
END_TEST

START_TEST(test_monotonic)
{
        ProbeHistogram h = {};
        double prev = -1, v;

        for (unsigned i = 0; i < PROBE_HISTOGRAM_SLOTS; i++)
                h.slots[i] = (i * 7919) % 13;
        for (double p = 0.5; p <= 100; p += 0.5) {
                ck_assert_int_eq(probe_histogram_percentile(&h, p, &v), 0);
                ck_assert(v >= prev);
                prev = v;
        }
}
END_TEST

START_TEST(test_delta)
{
        ProbeHistogram a = {}, b = {}, d;

        a.slots[2] = 10;
        a.slots[5] = 3;
        b.slots[2] = 4;
        b.slots[5] = 7; /* went backwards: the map was recreated */
        probe_histogram_delta(&a, &b, &d);
        ck_assert_uint_eq(d.slots[2], 6);
        ck_assert_uint_eq(d.slots[5], 3);
        ck_assert_uint_eq(probe_histogram_total(&d), 9);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("probe-histogram");
        TCase *tc = tcase_create("probe-histogram");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_slot);
        tcase_add_test(tc, test_slot_range);
        tcase_add_test(tc, test_empty_and_invalid);
        tcase_add_test(tc, test_single_value);
        tcase_add_test(tc, test_ranks);
        tcase_add_test(tc, test_monotonic);
        tcase_add_test(tc, test_delta);
        suite_add_tcase(s, tc);

        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
