/* SPDX-License-Identifier: GPL-2.0-or-later */
/* `cluster-agent --probe`: the host probes without a cluster, one snapshot per interval.
 * A foreground tool with its own small poll() loop over the probes' event fd and a
 * signalfd; the agent proper drives the probes from its io_uring loop instead. */
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>

#include "basic/fd-util.h"
#include "basic/string-util.h"
#include "basic/strv.h"
#include "probe.h"
#include "shared/log.h"

static void help(const char *prog)
{
        printf("%s --probe [OPTIONS]\n\n"
               "Show what the host probes measure on this machine.\n\n"
               "  --interval S     seconds between snapshots (default 1; \"500ms\" works)\n"
               "  --count N        stop after N snapshots (default: until interrupted)\n"
               "  --json           one JSON object per line\n"
               "  --no-bpf         /proc only\n"
               "  --disable NAME   do not load a BPF program set or kind (runqlat, cpuacct,\n"
               "                   biolat, tcpretrans, tp_btf, raw_tp, tracepoint,\n"
               "                   runqlat:tp_btf, ...)\n"
               "  --watch PID      account the CPU time of this process (repeatable)\n"
               "  --runq-pid PID   run-queue latency of this process's threads only\n",
               prog);
}

static int show(Probes *p, bool json)
{
        _cleanup_free_ char *text = NULL;
        ProbeSnapshot s;
        int r;

        r = probes_sample(p, now(CLOCK_MONOTONIC), &s);
        if (r < 0)
                return log_error_errno(r, "Failed to sample the host probes: %m");
        if (json) {
                r = probe_snapshot_to_json(&s, &text);
                if (r >= 0)
                        printf("%s\n", text);
        } else {
                probe_snapshot_print(&s, stdout);
                printf("\n");
        }
        probe_snapshot_done(&s);
        if (r < 0)
                return log_error_errno(r, "Failed to format the snapshot: %m");
        fflush(stdout);
        return 0;
}

int probe_cli_main(int argc, char **argv)
{
        enum {
                ARG_PROBE = 0x100,
                ARG_INTERVAL,
                ARG_COUNT,
                ARG_JSON,
                ARG_NO_BPF,
                ARG_DISABLE,
                ARG_WATCH,
                ARG_RUNQ_PID,
        };
        static const struct option options[] = {
                {"help", no_argument, NULL, 'h'},
                {"probe", no_argument, NULL, ARG_PROBE},
                {"interval", required_argument, NULL, ARG_INTERVAL},
                {"count", required_argument, NULL, ARG_COUNT},
                {"json", no_argument, NULL, ARG_JSON},
                {"no-bpf", no_argument, NULL, ARG_NO_BPF},
                {"disable", required_argument, NULL, ARG_DISABLE},
                {"watch", required_argument, NULL, ARG_WATCH},
                {"runq-pid", required_argument, NULL, ARG_RUNQ_PID},
                {},
        };
        _cleanup_(probes_freep) Probes *p = NULL;
        _cleanup_close_ int sfd = -EBADF;
        _cleanup_(strv_freep) char **disable = NULL;
        ProbeOptions opts = PROBE_OPTIONS_DEFAULT;
        pid_t watch[64];
        size_t n_watch = 0;
        uint64_t count = 0, shown = 0;
        bool json = false;
        sigset_t mask;
        usec_t next;
        int c, r;

        optind = 0; /* argv may have been scanned by the caller's own getopt */
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help(argv[0]);
                        return EXIT_SUCCESS;
                case ARG_PROBE:
                        break;
                case ARG_INTERVAL:
                        if (parse_duration(optarg, &opts.interval) < 0 || opts.interval == 0) {
                                log_error("Invalid --interval: %s", optarg);
                                return EXIT_FAILURE;
                        }
                        break;
                case ARG_COUNT:
                        if (safe_atou64(optarg, &count) < 0) {
                                log_error("Invalid --count: %s", optarg);
                                return EXIT_FAILURE;
                        }
                        break;
                case ARG_JSON:
                        json = true;
                        break;
                case ARG_NO_BPF:
                        opts.enable_bpf = false;
                        break;
                case ARG_DISABLE:
                        if (strv_extend(&disable, optarg) < 0)
                                return log_oom(), EXIT_FAILURE;
                        break;
                case ARG_WATCH:
                case ARG_RUNQ_PID: {
                        int pid;
                        if (safe_atoi(optarg, &pid) < 0 || pid <= 0) {
                                log_error("Invalid process id: %s", optarg);
                                return EXIT_FAILURE;
                        }
                        if (c == ARG_RUNQ_PID)
                                opts.runq_tgid = pid;
                        else if (n_watch < ELEMENTSOF(watch))
                                watch[n_watch++] = pid;
                        else {
                                log_error("Too many --watch, at most %zu.", ELEMENTSOF(watch));
                                return EXIT_FAILURE;
                        }
                        break;
                }
                default:
                        return EXIT_FAILURE;
                }
        }
        if (optind < argc) {
                log_error("Unexpected argument: %s", argv[optind]);
                return EXIT_FAILURE;
        }
        opts.disable = disable;

        r = probes_new(&opts, &p);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the host probes: %m");
                return EXIT_FAILURE;
        }
        for (size_t i = 0; i < n_watch; i++) {
                r = probes_watch_pid(p, watch[i], 0);
                if (r < 0) {
                        log_error_errno(r, "Failed to watch process %d: %m", (int)watch[i]);
                        return EXIT_FAILURE;
                }
        }

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
            (sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
                log_error_errno(errno, "Failed to set up signal handling: %m");
                return EXIT_FAILURE;
        }

        if (!json) {
                static const char *const sets[] = {PROBE_PROGRAMS};

                printf("bpf programs:");
                for (size_t i = 0; i < ELEMENTSOF(sets); i++) {
                        const char *kind = probes_program_kind(p, sets[i], NULL);
                        printf(" %s %s%s", sets[i], kind ?: "off",
                               i + 1 < ELEMENTSOF(sets) ? "," : "\n\n");
                }
        }

        /* The first sample is the baseline: counters and histograms since boot. */
        {
                ProbeSnapshot s;
                r = probes_sample(p, now(CLOCK_MONOTONIC), &s);
                if (r < 0) {
                        log_error_errno(r, "Failed to sample the host probes: %m");
                        return EXIT_FAILURE;
                }
                probe_snapshot_done(&s);
        }
        next = now(CLOCK_MONOTONIC) + opts.interval;

        for (;;) {
                struct pollfd fds[2] = {
                        {.fd = sfd, .events = POLLIN},
                        {.fd = probes_event_fd(p), .events = POLLIN},
                };
                usec_t t = now(CLOCK_MONOTONIC);
                int timeout = t >= next ? 0 : (int)MIN((next - t + 999) / 1000, (usec_t)INT32_MAX);

                r = poll(fds, fds[1].fd >= 0 ? 2 : 1, timeout);
                if (r < 0 && errno != EINTR) {
                        log_error_errno(errno, "poll() failed: %m");
                        return EXIT_FAILURE;
                }
                if (r > 0 && (fds[0].revents & POLLIN))
                        return EXIT_SUCCESS;
                if (r > 0 && fds[1].fd >= 0 && (fds[1].revents & POLLIN))
                        (void)probes_handle_events(p);

                if (now(CLOCK_MONOTONIC) < next)
                        continue;
                if (show(p, json) < 0)
                        return EXIT_FAILURE;
                if (count > 0 && ++shown >= count)
                        return EXIT_SUCCESS;
                next += opts.interval;
        }
}
