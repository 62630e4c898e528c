/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the host probes cost the host.
 *
 *  - ping-pong: two threads pinned to one CPU hand a token back and forth over eventfds,
 *    so every hand-off is a wakeup plus a context switch: the events the probes hook;
 *  - fork/exec: fork, exec /bin/true, wait: process creation and exit (cpuacct's fork
 *    and exit hooks, plus the switches around them);
 *  - snapshot: the time probes_sample() takes.
 * Each workload runs with the probes detached and attached, alternating in the same
 * process, --repeat times; medians are printed with the ratio.
 *
 * probe-overhead [--roundtrips N] [--forks N] [--repeat R] [--samples N] [--disable SET]...
 * (--disable as ProbeOptions.disable: measure one program set without the others) */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/wait.h>

#include <bpf/bpf.h>

#include "basic/fd-util.h"
#include "basic/string-util.h"
#include "basic/strv.h"
#include "probe.h"
#include "shared/log.h"

static uint64_t arg_roundtrips = 100000;
static uint64_t arg_forks = 1000;
static uint64_t arg_repeat = 5;
static uint64_t arg_samples = 1000;
static char **arg_disable = NULL;

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int pin(int cpu)
{
        cpu_set_t set;

        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0 ? 0 : -EINVAL;
}

typedef struct PingPong {
        int ping, pong;
        uint64_t n;
} PingPong;

static void *ponger(void *userdata)
{
        PingPong *pp = userdata;
        uint64_t v;

        (void)pin(0);
        for (uint64_t i = 0; i < pp->n; i++) {
                if (read(pp->ping, &v, sizeof(v)) != sizeof(v))
                        break;
                if (write(pp->pong, &v, sizeof(v)) != sizeof(v))
                        break;
        }
        return NULL;
}

/* ns per round trip (two context switches) */
static double pingpong(uint64_t n)
{
        PingPong pp = {.n = n};
        pthread_t t;
        uint64_t v = 1, start, end;

        pp.ping = eventfd(0, EFD_CLOEXEC);
        pp.pong = eventfd(0, EFD_CLOEXEC);
        if (pp.ping < 0 || pp.pong < 0 || pthread_create(&t, NULL, ponger, &pp) != 0) {
                fprintf(stderr, "ping-pong setup failed\n");
                exit(EXIT_FAILURE);
        }
        (void)pin(0);
        start = now_ns();
        for (uint64_t i = 0; i < n; i++) {
                if (write(pp.ping, &v, sizeof(v)) != sizeof(v) ||
                    read(pp.pong, &v, sizeof(v)) != sizeof(v))
                        break;
        }
        end = now_ns();
        pthread_join(t, NULL);
        safe_close(pp.ping);
        safe_close(pp.pong);
        return (double)(end - start) / (double)n;
}

/* ns per fork + exec + wait */
static double forkexec(uint64_t n)
{
        uint64_t start = now_ns(), end;

        for (uint64_t i = 0; i < n; i++) {
                pid_t pid = fork();
                if (pid < 0) {
                        fprintf(stderr, "fork failed\n");
                        exit(EXIT_FAILURE);
                }
                if (pid == 0) {
                        execl("/bin/true", "true", (char *)NULL);
                        _exit(127);
                }
                (void)waitpid(pid, NULL, 0);
        }
        end = now_ns();
        return (double)(end - start) / (double)n;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
        qsort(v, n, sizeof(double), cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static Probes *probes_open(bool bpf)
{
        ProbeOptions opts = PROBE_OPTIONS_DEFAULT;
        Probes *p = NULL;
        int r;

        opts.enable_bpf = bpf;
        opts.disable = arg_disable;
        r = probes_new(&opts, &p);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the probes: %m");
                exit(EXIT_FAILURE);
        }
        if (bpf && probes_source(p, PROBE_METRIC_RUNQ_LATENCY) != PROBE_SOURCE_BPF) {
                log_error("The BPF probes did not load (root or CAP_BPF+CAP_PERFMON needed).");
                exit(77);
        }
        return p;
}

/* The probes live in a holder process, as they live in the agent: the measured process
 * then pays only for the kernel hooks, not for libbpf's memory in its own fork()s. The
 * holder accounts the measured process's CPU, as the agent accounts its tasks. Returns
 * the fd whose closing detaches them. */
static int attach(pid_t *ret_holder)
{
        int ready[2], hold[2];
        pid_t parent = getpid(), pid;
        char c;

        if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(hold, O_CLOEXEC) < 0)
                exit(EXIT_FAILURE);
        pid = fork();
        if (pid < 0)
                exit(EXIT_FAILURE);
        if (pid == 0) {
                Probes *p = probes_open(true);

                (void)probes_watch_pid(p, parent, 0);
                safe_close(hold[1]);
                if (write(ready[1], "x", 1) != 1)
                        _exit(EXIT_FAILURE);
                (void)read(hold[0], &c, 1); /* until the parent closes its end */
                probes_free(p);
                _exit(EXIT_SUCCESS);
        }
        safe_close(ready[1]);
        safe_close(hold[0]);
        if (read(ready[0], &c, 1) != 1) {
                int status;
                waitpid(pid, &status, 0);
                exit(WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_FAILURE);
        }
        safe_close(ready[0]);
        *ret_holder = pid;
        return hold[1];
}

static void detach(int fd, pid_t holder)
{
        safe_close(fd);
        (void)waitpid(holder, NULL, 0);
}

/* ---- per-program cost, from the kernel's BPF run-time statistics ---------------- */

typedef struct ProgStat {
        char label[48]; /* "runqlat sched_switch_btf" */
        uint64_t ns, runs;
} ProgStat;

static uint32_t last_prog_id(void)
{
        uint32_t id = 0, next;

        while (bpf_prog_get_next_id(id, &next) == 0)
                id = next;
        return id;
}

/* Which set a program belongs to: by its name, and for sched_switch (in two sets) by
 * whether it uses runqlat's histogram. */
static const char *prog_set(const struct bpf_prog_info *info)
{
        uint32_t map_ids[8] = {};
        struct bpf_prog_info again = {.nr_map_ids = 8, .map_ids = (uintptr_t)map_ids};
        uint32_t len = sizeof(again);
        int fd;

        if (startswith(info->name, "sched_wakeup"))
                return "runqlat";
        if (startswith(info->name, "sched_process"))
                return "cpuacct";
        if (startswith(info->name, "block_rq"))
                return "biolat";
        if (startswith(info->name, "tcp_"))
                return "tcpretrans";
        if (!startswith(info->name, "sched_switch"))
                return NULL;
        fd = bpf_prog_get_fd_by_id(info->id);
        if (fd < 0)
                return NULL;
        if (bpf_obj_get_info_by_fd(fd, &again, &len) < 0) {
                safe_close(fd);
                return NULL;
        }
        safe_close(fd);
        for (uint32_t i = 0; i < MIN(again.nr_map_ids, 8u); i++) {
                struct bpf_map_info m = {};
                uint32_t mlen = sizeof(m);
                int mfd = bpf_map_get_fd_by_id(map_ids[i]);
                bool oncpu;

                if (mfd < 0)
                        continue;
                oncpu = bpf_obj_get_info_by_fd(mfd, &m, &mlen) == 0 && streq(m.name, "oncpu");
                safe_close(mfd);
                if (oncpu)
                        return "cpuacct";
        }
        return "runqlat";
}

/* Adds the statistics of the programs loaded after after_id into stats. */
static size_t prog_stats(uint32_t after_id, ProgStat *stats, size_t n, size_t max)
{
        uint32_t id = after_id, next;

        while (bpf_prog_get_next_id(id, &next) == 0) {
                struct bpf_prog_info info = {};
                uint32_t len = sizeof(info);
                char label[48];
                const char *set;
                size_t i;
                int fd;

                id = next;
                fd = bpf_prog_get_fd_by_id(id);
                if (fd < 0)
                        continue;
                if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0) {
                        safe_close(fd);
                        continue;
                }
                safe_close(fd);
                set = prog_set(&info);
                if (!set)
                        continue;
                snprintf(label, sizeof(label), "%s %s", set, info.name);
                for (i = 0; i < n; i++)
                        if (streq(stats[i].label, label))
                                break;
                if (i == n) {
                        if (n == max)
                                continue;
                        memcpy(stats[n].label, label, sizeof(label));
                        stats[n].ns = stats[n].runs = 0;
                        n++;
                }
                stats[i].ns += info.run_time_ns;
                stats[i].runs += info.run_cnt;
        }
        return n;
}

/* One more attached round of each workload with BPF statistics on (they cost a clock
 * read per run themselves, so the ratio rounds run without them). */
static void print_prog_costs(void)
{
        _cleanup_close_ int stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
        ProgStat stats[32];
        size_t n = 0;
        uint32_t base;
        pid_t holder;
        int fd;

        if (stats_fd < 0) {
                printf("per-program cost: BPF statistics unavailable (%s)\n", strerror(-stats_fd));
                return;
        }
        base = last_prog_id();
        fd = attach(&holder);
        (void)pingpong(arg_roundtrips);
        (void)forkexec(arg_forks / 4 + 1);
        n = prog_stats(base, stats, n, ELEMENTSOF(stats));
        detach(fd, holder);

        printf("per-program cost (kernel BPF run-time statistics, during one attached round):\n");
        for (size_t i = 0; i < n; i++)
                if (stats[i].runs > 0)
                        printf("  %-36s %10" PRIu64 " runs %7.0f ns/run\n", stats[i].label,
                               stats[i].runs, (double)stats[i].ns / (double)stats[i].runs);
}

/* median ns per probes_sample() */
static double snapshot_cost(bool bpf, uint64_t n)
{
        _cleanup_(probes_freep) Probes *p = probes_open(bpf);
        double *v = calloc(n, sizeof(double)), m;

        if (!v)
                exit(EXIT_FAILURE);
        for (uint64_t i = 0; i < n; i++) {
                ProbeSnapshot s;
                uint64_t t0 = now_ns();
                if (probes_sample(p, now(CLOCK_MONOTONIC), &s) < 0)
                        exit(EXIT_FAILURE);
                v[i] = (double)(now_ns() - t0);
                probe_snapshot_done(&s);
        }
        m = median(v, n);
        free(v);
        return m;
}

static void run(const char *name, double (*fn)(uint64_t), uint64_t n, double per_event_divisor)
{
        double off[64], on[64], m_off, m_on;
        uint64_t reps = MIN(arg_repeat, (uint64_t)ELEMENTSOF(off));

        (void)fn(n / 10 + 1); /* warm up */
        for (uint64_t r = 0; r < reps; r++) {
                pid_t holder;
                int fd;

                off[r] = fn(n);
                fd = attach(&holder);
                on[r] = fn(n);
                detach(fd, holder);
        }
        m_off = median(off, reps);
        m_on = median(on, reps);
        printf("%-10s detached %9.1f ns  attached %9.1f ns  ratio %.3f", name, m_off, m_on,
               m_on / m_off);
        if (per_event_divisor > 0) {
                double added = (m_on - m_off) / per_event_divisor;
                printf("  (+%.0f ns per switch: %.2f %% of a CPU at 10k switches/s)", added,
                       added * 10000 / 1e9 * 100);
        }
        printf("\n");
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                {"roundtrips", required_argument, NULL, 'r'},
                {"forks", required_argument, NULL, 'f'},
                {"repeat", required_argument, NULL, 'n'},
                {"samples", required_argument, NULL, 's'},
                {"disable", required_argument, NULL, 'd'},
                {},
        };
        int c;

        log_set_max_level(LOG_WARNING);
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                if (c == 'd') {
                        if (strv_extend(&arg_disable, optarg) < 0)
                                return EXIT_FAILURE;
                        continue;
                }
                uint64_t *dst = c == 'r' ? &arg_roundtrips
                        : c == 'f'       ? &arg_forks
                        : c == 'n'       ? &arg_repeat
                        : c == 's'       ? &arg_samples
                                         : NULL;
                if (!dst || safe_atou64(optarg, dst) < 0 || *dst == 0) {
                        fprintf(stderr,
                                "usage: %s [--roundtrips N] [--forks N] [--repeat R] "
                                "[--samples N] [--disable SET]...\n",
                                argv[0]);
                        return EXIT_FAILURE;
                }
        }

        printf("medians of %" PRIu64 " runs; %" PRIu64 " round trips, %" PRIu64
               " fork/exec per run\n",
               arg_repeat, arg_roundtrips, arg_forks);
        run("ping-pong", pingpong, arg_roundtrips, 2);
        run("fork/exec", forkexec, arg_forks, 0);
        print_prog_costs();
        printf("snapshot   bpf %.1f us  proc-only %.1f us  (median of %" PRIu64 ")\n",
               snapshot_cost(true, arg_samples) / 1000, snapshot_cost(false, arg_samples) / 1000,
               arg_samples);
        return EXIT_SUCCESS;
}
