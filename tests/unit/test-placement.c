/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <check.h>
#include <math.h>

#include "daemon/scheduler-placement.h"

static PlacementAgent agent(const char *name, uint32_t cpus, uint32_t used, uint32_t running)
{
        return (PlacementAgent){
                .name = name,
                .ready = true,
                .cpus = cpus,
                .memory_bytes = 8ULL << 30,
                .max_tasks = cpus,
                .running_tasks = running,
                .used_cpus = used,
        };
}

START_TEST(test_least_reserved_wins)
{
        PlacementAgent a[] = {agent("a", 4, 3, 3), agent("b", 4, 1, 1), agent("c", 4, 2, 2)};
        PlacementRequest req = {.cpus = 1};

        ck_assert_int_eq(placement_choose(a, 3, &req), 1);
}
END_TEST

START_TEST(test_pressure_breaks_ties)
{
        PlacementAgent a[] = {agent("a", 4, 0, 0), agent("b", 4, 0, 0)};
        PlacementRequest req = {.cpus = 1};

        /* Same reservations, but a's run queue is deep: b wins. */
        a[0].runq_latency_p99_us = 5000;
        ck_assert_int_eq(placement_choose(a, 2, &req), 1);
        /* Equal in every way: the lower index, so placement is stable. */
        a[0].runq_latency_p99_us = 0;
        ck_assert_int_eq(placement_choose(a, 2, &req), 0);
        /* NaN from a broken probe counts as nothing. */
        a[0].cpu_busy = NAN;
        ck_assert_int_eq(placement_choose(a, 2, &req), 0);
}
END_TEST

START_TEST(test_capacity)
{
        PlacementAgent a[] = {agent("a", 2, 2, 2), agent("b", 2, 1, 1)};
        PlacementRequest req = {.cpus = 2};

        /* Fits on either once they drain, on neither now. */
        ck_assert_int_eq(placement_choose(a, 2, &req), -EAGAIN);
        req.cpus = 3;
        ck_assert_int_eq(placement_choose(a, 2, &req), -ENOSPC);
        req.cpus = 1;
        ck_assert_int_eq(placement_choose(a, 2, &req), 1);
        /* Memory counts too. */
        req.memory_bytes = 16ULL << 30;
        ck_assert_int_eq(placement_choose(a, 2, &req), -ENOSPC);
        /* Task slots count too. */
        a[1].max_tasks = 1;
        req.memory_bytes = 0;
        ck_assert_int_eq(placement_choose(a, 2, &req), -EAGAIN);
}
END_TEST

START_TEST(test_named_agent)
{
        PlacementAgent a[] = {agent("a", 4, 0, 0), agent("b", 4, 0, 0)};
        PlacementRequest req = {.cpus = 1, .agent = "b"};

        ck_assert_int_eq(placement_choose(a, 2, &req), 1);
        req.agent = "zz";
        ck_assert_int_eq(placement_choose(a, 2, &req), -ENOENT);
        req.agent = "b";
        a[1].ready = false;
        ck_assert_int_eq(placement_choose(a, 2, &req), -EAGAIN);
        req.agent = "a";
        req.cpus = 8;
        ck_assert_int_eq(placement_choose(a, 2, &req), -ENOSPC);
}
END_TEST

START_TEST(test_nobody_ready)
{
        PlacementAgent a[] = {agent("a", 4, 0, 0)};
        PlacementRequest req = {.cpus = 1};

        ck_assert_int_eq(placement_choose(a, 0, &req), -EHOSTDOWN);
        a[0].ready = false;
        ck_assert_int_eq(placement_choose(a, 1, &req), -EHOSTDOWN);
}
END_TEST

START_TEST(test_overcommitted_agent_is_not_chosen)
{
        /* used above total (after a config change): never underflow into "free". */
        PlacementAgent a[] = {agent("a", 2, 5, 1)};
        PlacementRequest req = {.cpus = 1};

        ck_assert_int_eq(placement_choose(a, 1, &req), -EAGAIN);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("placement");
        TCase *tc = tcase_create("placement");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_least_reserved_wins);
        tcase_add_test(tc, test_pressure_breaks_ties);
        tcase_add_test(tc, test_capacity);
        tcase_add_test(tc, test_named_agent);
        tcase_add_test(tc, test_nobody_ready);
        tcase_add_test(tc, test_overcommitted_agent_is_not_chosen);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
