/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The /proc source: its parsers on known and hostile text, and on this host's /proc the
 * snapshot carries every metric the probes say /proc feeds. */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "basic/alloc-util.h"
#include "probe-internal.h"

START_TEST(test_parse_stat_cpu)
{
        ProbeProcCpu c;

        ck_assert_int_eq(probe_parse_stat_cpu("cpu  100 5 50 1000 20 3 2 1 0 0\n"
                                              "cpu0 50 2 25 500 10 1 1 0 0 0\n",
                                              &c),
                         0);
        ck_assert_uint_eq(c.busy, 100 + 5 + 50 + 3 + 2 + 1);
        ck_assert_uint_eq(c.total, 100 + 5 + 50 + 1000 + 20 + 3 + 2 + 1);
        /* old kernels: 4 fields */
        ck_assert_int_eq(probe_parse_stat_cpu("intr 5\ncpu 1 2 3 4\n", &c), 0);
        ck_assert_uint_eq(c.busy, 6);
        ck_assert_uint_eq(c.total, 10);
        ck_assert_int_eq(probe_parse_stat_cpu("cpu 1 2 3\n", &c), -EBADMSG);
        ck_assert_int_eq(probe_parse_stat_cpu("cpu0 1 2 3 4\n", &c), -EBADMSG);
        ck_assert_int_eq(probe_parse_stat_cpu("", &c), -EBADMSG);
        ck_assert_int_eq(probe_parse_stat_cpu("cpu 99999999999999999999999 1 1 1\n", &c), -EBADMSG);
}
END_TEST

START_TEST(test_parse_psi)
{
        ProbePsi p;

        ck_assert_int_eq(probe_parse_psi("some avg10=1.50 avg60=0.20 avg300=0.00 total=123\n"
                                         "full avg10=0.25 avg60=0.00 avg300=0.00 total=4\n",
                                         &p),
                         0);
        ck_assert(fabs(p.some_avg10 - 1.5) < 1e-9);
        ck_assert(fabs(p.full_avg10 - 0.25) < 1e-9);
        /* cpu before 5.13: no full line */
        ck_assert_int_eq(probe_parse_psi("some avg10=3.00 avg60=0 avg300=0 total=0\n", &p), 0);
        ck_assert(fabs(p.some_avg10 - 3) < 1e-9);
        ck_assert(p.full_avg10 == 0);
        ck_assert_int_eq(probe_parse_psi("full avg10=1.00\n", &p), -EBADMSG);
        ck_assert_int_eq(probe_parse_psi("some avg10=abc\n", &p), -EBADMSG);
        ck_assert_int_eq(probe_parse_psi("some avg10=101.0\n", &p), -EBADMSG);
        ck_assert_int_eq(probe_parse_psi("some avg10=nan\n", &p), -EBADMSG);
        ck_assert_int_eq(probe_parse_psi("some avg10=1\nfull avg10=x\n", &p), -EBADMSG);
}
END_TEST

START_TEST(test_parse_meminfo)
{
        uint64_t avail, total;

        ck_assert_int_eq(probe_parse_meminfo("MemTotal:       24567 kB\nMemFree:  100 kB\n"
                                             "MemAvailable:   12000 kB\n",
                                             &avail, &total),
                         0);
        ck_assert_uint_eq(total, 24567 * 1024ULL);
        ck_assert_uint_eq(avail, 12000 * 1024ULL);
        /* before 3.14 there is no MemAvailable */
        ck_assert_int_eq(probe_parse_meminfo("MemTotal: 10 kB\nMemFree: 4 kB\n", &avail, &total),
                         0);
        ck_assert_uint_eq(avail, 4096);
        ck_assert_int_eq(probe_parse_meminfo("MemFree: 4 kB\n", &avail, &total), -EBADMSG);
        ck_assert_int_eq(probe_parse_meminfo("MemTotal: 10 MB\nMemFree: 4 kB\n", &avail, &total),
                         -EBADMSG);
        ck_assert_int_eq(probe_parse_meminfo("MemTotal: 99999999999999999 kB\nMemFree: 4 kB\n",
                                             &avail, &total),
                         -EBADMSG);
}
END_TEST

START_TEST(test_parse_loadavg)
{
        double l[3] = {-1, -1, -1};

        ck_assert_int_eq(probe_parse_loadavg("0.52 1.00 12.25 2/345 6789\n", l), 0);
        ck_assert(fabs(l[0] - 0.52) < 1e-9 && fabs(l[1] - 1) < 1e-9 && fabs(l[2] - 12.25) < 1e-9);
        ck_assert_int_eq(probe_parse_loadavg("0.52 1.00\n", l), -EBADMSG);
        ck_assert_int_eq(probe_parse_loadavg("-1 1 1\n", l), -EBADMSG);
        ck_assert_int_eq(probe_parse_loadavg("", l), -EBADMSG);
}
END_TEST

static bool only_sda(const char *name)
{
        return strcmp(name, "sda") == 0;
}

START_TEST(test_parse_diskstats)
{
        static const char text[] =
                "   8       0 sda 100 0 800 50 200 0 1600 150 0 300 200 0 0 0 0\n"
                "   8       1 sda1 90 0 700 45 190 0 1500 140 0 280 185\n"
                "   7       0 loop0 5 0 10 1 0 0 0 0 0 1 1\n"
                "garbage line\n"
                "   8      16 sdb 1 2\n";
        ProbeProcDisk d;

        ck_assert_int_eq(probe_parse_diskstats(text, only_sda, &d), 0);
        ck_assert_uint_eq(d.ios, 300);
        ck_assert_uint_eq(d.io_msec, 200);
        ck_assert_int_eq(probe_parse_diskstats(text, NULL, &d), 0);
        ck_assert_uint_eq(d.ios, 300 + 280 + 5);
        ck_assert_uint_eq(d.io_msec, 200 + 185 + 1);
        ck_assert_int_eq(probe_parse_diskstats("   8 16 sdb 1 2\n", NULL, &d), -EBADMSG);
        ck_assert_int_eq(probe_parse_diskstats("", NULL, &d), -EBADMSG);
}
END_TEST

START_TEST(test_parse_pid_stat)
{
        uint64_t t;

        /* fields 14..17: utime stime cutime cstime; comm may hold ") (" */
        ck_assert_int_eq(probe_parse_pid_stat("42 (a) (b c) S 1 42 42 0 -1 4194560 100 0 0 0 "
                                              "7 3 11 13 20 0 1 0 100 0 0\n",
                                              &t),
                         0);
        ck_assert_uint_eq(t, 7 + 3 + 11 + 13);
        ck_assert_int_eq(probe_parse_pid_stat("42 (x) S 1 2 3\n", &t), -EBADMSG);
        ck_assert_int_eq(probe_parse_pid_stat("42 x S 1\n", &t), -EBADMSG);
        ck_assert_int_eq(probe_parse_pid_stat("42 (x) S 1 42 42 0 -1 0 0 0 0 0 7x 3 1 1\n", &t),
                         -EBADMSG);
}
END_TEST

START_TEST(test_parse_small)
{
        uint64_t a, b;
        _cleanup_free_ char *path = NULL;

        ck_assert_int_eq(probe_parse_schedstat("123 456 789\n", &a, &b), 0);
        ck_assert_uint_eq(a, 456);
        ck_assert_uint_eq(b, 789);
        ck_assert_int_eq(probe_parse_schedstat("123 456\n", &a, &b), -EBADMSG);

        ck_assert_int_eq(probe_parse_cgroup_cpu_stat("usage_usec 5000\nuser_usec 1\n", &a), 0);
        ck_assert_uint_eq(a, 5000);
        ck_assert_int_eq(probe_parse_cgroup_cpu_stat("user_usec 1\n", &a), -EBADMSG);

        ck_assert_int_eq(probe_parse_pid_cgroup("12:cpu:/x\n0::/cluster/task-7\n", &path), 0);
        ck_assert_str_eq(path, "/cluster/task-7");
        ck_assert_int_eq(probe_parse_pid_cgroup("12:cpu:/x\n", &path), -ENOENT);
}
END_TEST

/* Burns at least usec of CPU time (its own CPU clock), not wall time. */
static void burn_cpu(usec_t usec)
{
        struct timespec ts;
        volatile uint64_t x = 0;

        for (;;) {
                for (int i = 0; i < 100000; i++)
                        x += (uint64_t)i;
                clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
                if ((usec_t)ts.tv_sec * USEC_PER_SEC + (usec_t)ts.tv_nsec / 1000 >= usec)
                        return;
        }
}

START_TEST(test_proc_snapshot_fields)
{
        _cleanup_(probes_freep) Probes *p = NULL;
        ProbeOptions opts = PROBE_OPTIONS_DEFAULT;
        ProbeSnapshot s;
        siginfo_t si;
        pid_t child;

        opts.enable_bpf = false;
        ck_assert_int_eq(probes_new(&opts, &p), 0);
        for (ProbeMetric m = 0; m < _PROBE_METRIC_MAX; m++)
                ck_assert_int_ne(probes_source(p, m), PROBE_SOURCE_BPF);
        /* every Linux host has these */
        ck_assert_int_eq(probes_source(p, PROBE_METRIC_CPU_BUSY), PROBE_SOURCE_PROC);
        ck_assert_int_eq(probes_source(p, PROBE_METRIC_MEMORY), PROBE_SOURCE_PROC);
        ck_assert_int_eq(probes_source(p, PROBE_METRIC_LOAD_AVG), PROBE_SOURCE_PROC);
        ck_assert_int_eq(probes_source(p, PROBE_METRIC_TASK_CPU), PROBE_SOURCE_PROC);
        ck_assert_int_eq(probes_source(p, PROBE_METRIC_TCP_RETRANSMITS), PROBE_SOURCE_NONE);
        ck_assert_int_eq(probes_event_fd(p), -EBADF);
        {
                const char *reason = NULL;
                ck_assert_ptr_null(probes_program_kind(p, "runqlat", &reason));
                ck_assert_str_eq(reason, "BPF is not in use");
        }

        /* A child that uses CPU, then stays a zombie so its /proc entry remains. */
        child = fork();
        ck_assert_int_ge(child, 0);
        if (child == 0) {
                burn_cpu(150 * USEC_PER_MSEC);
                _exit(0);
        }
        ck_assert_int_eq(probes_watch_pid(p, child, 0), 0);
        ck_assert_int_eq(probes_watch_pid(p, child, 0), -EEXIST);
        ck_assert_int_eq(probes_sample(p, now(CLOCK_MONOTONIC), &s), 0);
        probe_snapshot_done(&s);
        ck_assert_int_eq(waitid(P_PID, (id_t)child, &si, WEXITED | WNOWAIT), 0);

        ck_assert_int_eq(probes_sample(p, now(CLOCK_MONOTONIC), &s), 0);
        ck_assert_uint_gt(s.interval, 0);
        for (ProbeMetric m = 0; m < _PROBE_METRIC_MAX; m++)
                ck_assert_msg(s.source[m] == probes_source(p, m), "%s: %s, claimed %s",
                              probe_metric_to_string(m), probe_source_to_string(s.source[m]),
                              probe_source_to_string(probes_source(p, m)));
        ck_assert(s.cpu_busy >= 0 && s.cpu_busy <= 1);
        ck_assert_uint_gt(s.mem_total_bytes, 0);
        ck_assert_uint_le(s.mem_available_bytes, s.mem_total_bytes);
        for (int i = 0; i < 3; i++)
                ck_assert(s.load_avg[i] >= 0);
        if (s.source[PROBE_METRIC_PSI_CPU] == PROBE_SOURCE_PROC)
                ck_assert(s.psi_cpu.some_avg10 >= 0 && s.psi_cpu.some_avg10 <= 100);
        if (s.source[PROBE_METRIC_RUNQ_LATENCY] == PROBE_SOURCE_PROC) {
                ck_assert(s.runq_latency_p50_us >= 0);
                ck_assert(s.runq_latency_p99_us == s.runq_latency_p50_us);
        }
        ck_assert_uint_eq(s.n_tasks, 1);
        ck_assert_uint_eq(s.tasks[0].id, (uint64_t)child);
        ck_assert_int_eq(s.tasks[0].pid, child);
        /* 150 ms of CPU; /proc/<pid>/stat counts in clock ticks */
        ck_assert_uint_ge(s.tasks[0].cpu_usec, 100 * USEC_PER_MSEC);

        {
                _cleanup_free_ char *text = NULL;
                json_error_t err;
                json_t *o, *sources;

                ck_assert_int_eq(probe_snapshot_to_json(&s, &text), 0);
                o = json_loads(text, 0, &err);
                ck_assert_ptr_nonnull(o);
                sources = json_object_get(o, "sources");
                ck_assert_str_eq(json_string_value(json_object_get(sources, "cpu_busy")), "proc");
                ck_assert(json_is_real(json_object_get(o, "cpu_busy")));
                ck_assert(json_is_integer(json_object_get(o, "mem_total_bytes")));
                ck_assert(json_is_null(json_object_get(o, "tcp_retransmits")));
                ck_assert_uint_eq(json_array_size(json_object_get(o, "tasks")), 1);
                json_decref(o);
        }
        {
                Cluster__Load load = CLUSTER__LOAD__INIT;

                probe_snapshot_to_load(&s, &load);
                ck_assert_str_eq(load.probe_source, "proc");
                ck_assert_uint_eq(load.mem_total_bytes, s.mem_total_bytes);
                ck_assert(fabsf(load.cpu_busy - (float)s.cpu_busy) < 1e-6f);
        }
        probe_snapshot_done(&s);
        ck_assert_ptr_null(s.tasks);

        ck_assert_int_eq(probes_unwatch(p, (uint64_t)child), 0);
        ck_assert_int_eq(probes_unwatch(p, (uint64_t)child), -ENOENT);
        ck_assert_int_eq(waitid(P_PID, (id_t)child, &si, WEXITED), 0);
        /* reaped: gone */
        ck_assert_int_eq(probes_watch_pid(p, child, 0), -ESRCH);
}
END_TEST

START_TEST(test_proc_init_missing_root)
{
        ProbeProc pp;
        ProbeSnapshot s = {};

        /* A /proc without any of the files: every metric stays none. */
        ck_assert_int_eq(probe_proc_init(&pp, "/nonexistent"), 0);
        ck_assert_int_eq(probe_proc_sample(&pp, &s, true), 0);
        for (ProbeMetric m = 0; m < _PROBE_METRIC_MAX; m++)
                ck_assert_int_eq(s.source[m], PROBE_SOURCE_NONE);
        probe_proc_done(&pp);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("probe-proc");
        TCase *tc = tcase_create("probe-proc");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_parse_stat_cpu);
        tcase_add_test(tc, test_parse_psi);
        tcase_add_test(tc, test_parse_meminfo);
        tcase_add_test(tc, test_parse_loadavg);
        tcase_add_test(tc, test_parse_diskstats);
        tcase_add_test(tc, test_parse_pid_stat);
        tcase_add_test(tc, test_parse_small);
        tcase_add_test(tc, test_proc_snapshot_fields);
        tcase_add_test(tc, test_proc_init_missing_root);
        suite_add_tcase(s, tc);

        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
