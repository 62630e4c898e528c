/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <check.h>
#include <math.h>
#include <string.h>

#include "basic/alloc-util.h"
#include "engine/sampler.h"

static SamplerParams plain(float temperature, uint64_t seed)
{
        SamplerParams p;

        sampler_params_default(&p);
        p.temperature = temperature;
        p.top_k = 0;
        p.top_p = 1.0f;
        p.min_p = 0.0f;
        p.repeat_penalty = 1.0f;
        p.seed = seed;
        return p;
}

START_TEST(test_defaults)
{
        SamplerParams p;

        sampler_params_default(&p);
        ck_assert(fabsf(p.temperature - 0.8f) < 1e-6f);
        ck_assert_int_eq(p.top_k, 40);
        ck_assert(fabsf(p.top_p - 0.9f) < 1e-6f);
        ck_assert(p.min_p == 0.0f);
        ck_assert(fabsf(p.repeat_penalty - 1.1f) < 1e-6f);
        ck_assert_int_eq(p.repeat_last_n, 64);
        ck_assert(p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f);
}
END_TEST

START_TEST(test_greedy)
{
        const float logits[] = {0.5f, 2.0f, -1.0f, 2.0f, NAN, 1.9f};
        SamplerParams p = plain(0.0f, 1);
        Sampler *s;

        p.repeat_penalty = 2.0f; /* penalties do not apply when greedy */
        ck_assert_int_eq(sampler_new(&p, ELEMENTSOF(logits), &s), 0);
        for (int i = 0; i < 5; i++) {
                ck_assert_int_eq(sampler_sample(s, logits), 1); /* first of the tied maxima */
                sampler_accept(s, 1);
        }
        sampler_free(s);
}
END_TEST

static void fill(float *l, size_t n, uint64_t k)
{
        for (size_t i = 0; i < n; i++) {
                k = k * 6364136223846793005ULL + 1442695040888963407ULL;
                l[i] = (float)((k >> 40) % 1000) / 100.0f;
        }
}

START_TEST(test_seed_reproducible)
{
        enum {
                N = 1000,
                STEPS = 64
        };
        _cleanup_free_ float *l = new (float, N);
        int32_t a[STEPS], b[STEPS], c[STEPS];
        SamplerParams p;
        Sampler *s;
        bool differs = false;

        sampler_params_default(&p);
        p.seed = 42;
        p.top_k = 0;
        p.top_p = 0.95f;
        ck_assert_int_eq(sampler_new(&p, N, &s), 0);
        for (int i = 0; i < STEPS; i++) {
                fill(l, N, (uint64_t)i);
                a[i] = sampler_sample(s, l);
                ck_assert(a[i] >= 0 && a[i] < N);
                sampler_accept(s, a[i]);
        }
        sampler_reset(s);
        for (int i = 0; i < STEPS; i++) {
                fill(l, N, (uint64_t)i);
                b[i] = sampler_sample(s, l);
                sampler_accept(s, b[i]);
        }
        sampler_free(s);
        ck_assert(memcmp(a, b, sizeof(a)) == 0);

        p.seed = 43;
        ck_assert_int_eq(sampler_new(&p, N, &s), 0);
        for (int i = 0; i < STEPS; i++) {
                fill(l, N, (uint64_t)i);
                c[i] = sampler_sample(s, l);
                sampler_accept(s, c[i]);
                differs |= c[i] != a[i];
        }
        sampler_free(s);
        ck_assert(differs);
}
END_TEST

START_TEST(test_top_k_top_p_min_p)
{
        const float logits[] = {1.0f, 5.0f, 4.9f, 0.0f, -3.0f};
        SamplerParams p = plain(100.0f, 7); /* nearly uniform after temperature */
        Sampler *s;
        bool seen[5] = {};

        p.top_k = 1;
        ck_assert_int_eq(sampler_new(&p, 5, &s), 0);
        for (int i = 0; i < 200; i++)
                ck_assert_int_eq(sampler_sample(s, logits), 1);
        sampler_free(s);

        /* top_p: token 1 alone holds about half of the mass, 1 and 2 hold > 0.9 */
        p = plain(100.0f, 7);
        p.top_p = 0.5f;
        ck_assert_int_eq(sampler_new(&p, 5, &s), 0);
        for (int i = 0; i < 200; i++) {
                int32_t t = sampler_sample(s, logits);
                ck_assert(t == 1 || t == 2);
                seen[t] = true;
        }
        sampler_free(s);
        ck_assert(seen[1]);

        /* min_p: 0.5 of the best keeps 1 and 2 only (e^-0.1 > 0.5 > e^-4) */
        p = plain(100.0f, 9);
        p.min_p = 0.5f;
        memset(seen, 0, sizeof(seen));
        ck_assert_int_eq(sampler_new(&p, 5, &s), 0);
        for (int i = 0; i < 400; i++) {
                int32_t t = sampler_sample(s, logits);
                ck_assert(t == 1 || t == 2);
                seen[t] = true;
        }
        sampler_free(s);
        ck_assert(seen[1] && seen[2]);

        /* without filters at a high temperature every token shows up */
        p = plain(1000.0f, 11);
        memset(seen, 0, sizeof(seen));
        ck_assert_int_eq(sampler_new(&p, 5, &s), 0);
        for (int i = 0; i < 1000; i++)
                seen[sampler_sample(s, logits)] = true;
        sampler_free(s);
        for (int i = 0; i < 5; i++)
                ck_assert(seen[i]);
}
END_TEST

START_TEST(test_distribution)
{
        /* softmax of {0, ln 2, ln 4} at temperature 1: 1/7, 2/7, 4/7 */
        const float logits[] = {0.0f, 0.6931472f, 1.3862944f};
        SamplerParams p = plain(1.0f, 2024);
        unsigned count[3] = {};
        Sampler *s;

        ck_assert_int_eq(sampler_new(&p, 3, &s), 0);
        for (int i = 0; i < 7000; i++)
                count[sampler_sample(s, logits)]++;
        sampler_free(s);
        /* a fixed seed: the counts are fixed too; the bounds are ~4 sigma */
        ck_assert(count[0] > 1000 - 120 && count[0] < 1000 + 120);
        ck_assert(count[1] > 2000 - 160 && count[1] < 2000 + 160);
        ck_assert(count[2] > 4000 - 170 && count[2] < 4000 + 170);

        /* temperature 2 flattens: weights 1, 2^0.5, 2 */
        p = plain(2.0f, 2024);
        memset(count, 0, sizeof(count));
        ck_assert_int_eq(sampler_new(&p, 3, &s), 0);
        for (int i = 0; i < 7000; i++)
                count[sampler_sample(s, logits)]++;
        sampler_free(s);
        ck_assert(count[0] > 1587 - 160 && count[0] < 1587 + 160);
        ck_assert(count[2] > 3175 - 170 && count[2] < 3175 + 170);
}
END_TEST

START_TEST(test_penalties)
{
        const float logits[] = {2.0f, 1.9f, -1.0f, -1.05f};
        SamplerParams p = plain(0.001f, 3); /* almost greedy, through the full chain */
        Sampler *s;

        p.repeat_penalty = 1.1f;
        p.repeat_last_n = 2;
        ck_assert_int_eq(sampler_new(&p, 4, &s), 0);
        ck_assert_int_eq(sampler_sample(s, logits), 0);
        sampler_accept(s, 0); /* 2.0 / 1.1 = 1.82 < 1.9 */
        ck_assert_int_eq(sampler_sample(s, logits), 1);
        sampler_accept(s, 1);
        sampler_accept(s, 3); /* window of 2: token 0 is forgotten, 1 and 3 penalized */
        ck_assert_int_eq(sampler_sample(s, logits), 0);
        sampler_free(s);

        /* a negative logit is multiplied */
        p = plain(0.001f, 3);
        p.repeat_penalty = 1.1f;
        {
                const float neg[] = {-1.0f, -1.05f};
                ck_assert_int_eq(sampler_new(&p, 2, &s), 0);
                sampler_accept(s, 0); /* -1.1 < -1.05 */
                ck_assert_int_eq(sampler_sample(s, neg), 1);
                sampler_free(s);
        }

        /* frequency and presence penalties */
        p = plain(0.001f, 3);
        p.frequency_penalty = 0.06f;
        ck_assert_int_eq(sampler_new(&p, 4, &s), 0);
        sampler_accept(s, 0);
        ck_assert_int_eq(sampler_sample(s, logits), 0); /* 1.94 > 1.9 */
        sampler_accept(s, 0);
        ck_assert_int_eq(sampler_sample(s, logits), 1); /* 1.88 < 1.9 */
        sampler_free(s);

        p = plain(0.001f, 3);
        p.presence_penalty = 0.2f;
        ck_assert_int_eq(sampler_new(&p, 4, &s), 0);
        sampler_accept(s, 0);
        ck_assert_int_eq(sampler_sample(s, logits), 1);
        sampler_reset(s);
        ck_assert_int_eq(sampler_sample(s, logits), 0);
        sampler_free(s);
}
END_TEST

START_TEST(test_large_vocab)
{
        enum {
                N = 152064
        };
        _cleanup_free_ float *l = new (float, N);
        SamplerParams p;
        Sampler *s;

        /* no top_k: top_p must cope without sorting everything */
        sampler_params_default(&p);
        p.top_k = 0;
        p.seed = 5;
        fill(l, N, 99);
        l[12345] = 40.0f;
        ck_assert_int_eq(sampler_new(&p, N, &s), 0);
        ck_assert_int_eq(sampler_sample(s, l), 12345);
        l[12345] = 0.0f;
        for (int i = 0; i < 8; i++) {
                int32_t t = sampler_sample(s, l);
                ck_assert(t >= 0 && t < N);
                ck_assert(l[t] >= 7.0f); /* 90 % of the mass lies above ln(0.1) + 10 */
        }
        sampler_free(s);
}
END_TEST

START_TEST(test_invalid)
{
        SamplerParams p = plain(1.0f, 1);
        Sampler *s = NULL;

        ck_assert_int_eq(sampler_new(NULL, 10, &s), -EINVAL);
        ck_assert_int_eq(sampler_new(&p, 0, &s), -EINVAL);
        p.top_p = NAN;
        ck_assert_int_eq(sampler_new(&p, 10, &s), -EINVAL);
        ck_assert_ptr_null(sampler_free(NULL));
        p = plain(1.0f, 1);
        ck_assert_int_eq(sampler_new(&p, 3, &s), 0);
        sampler_accept(s, -1); /* ignored */
        sampler_accept(s, 3); /* ignored */
        {
                const float inf[] = {-INFINITY, -INFINITY, -INFINITY};
                int32_t t = sampler_sample(s, inf);
                ck_assert(t >= 0 && t < 3);
        }
        sampler_free(s);
}
END_TEST

static Suite *sampler_suite(void)
{
        Suite *s = suite_create("sampler");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_defaults);
        tcase_add_test(tc, test_greedy);
        tcase_add_test(tc, test_seed_reproducible);
        tcase_add_test(tc, test_top_k_top_p_min_p);
        tcase_add_test(tc, test_distribution);
        tcase_add_test(tc, test_penalties);
        tcase_add_test(tc, test_large_vocab);
        tcase_add_test(tc, test_invalid);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(sampler_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
