/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "basic/alloc-util.h"
#include "basic/fd-util.h"
#include "basic/string-util.h"
#include "basic/strv.h"
#include "cli/cli.h"
#include "shared/log.h"

/* `cluster-ai run`: one command on the cluster, with its stdout and stderr streamed
 * back live and our stdin forwarded.
 *
 * Output is written to our stdout/stderr with plain blocking writes: if the terminal or
 * pipe is slow we stop reading the connection, stop acknowledging, and the agent stops
 * reading the command's pipes — back-pressure end to end. Input is read only while the
 * agent has granted credit for it. */

#define WINDOW (1024U * 1024U)
#define INPUT_CHUNK (64U * 1024U)

typedef struct Run {
        Client *client;
        uint64_t task_id;
        bool started, done, stdin_eof, forward_stdin;
        int exit_code;
        uint64_t unacked_output;
        int64_t input_credit;
        LoopSource *stdin_watch;
        LoopSource *sigint, *sigterm, *sighup;
        int cancels;
        int cancel_signal;
} Run;

static const char run_usage[] =
        "Usage: cluster-ai run [OPTIONS] -- COMMAND [ARGS...]\n\n"
        "Runs COMMAND on an agent of the cluster, streams its output, forwards stdin, and\n"
        "exits with its exit code. Ctrl-C cancels it (the whole remote process group).\n\n"
        "  -c --cpus N          CPUs to reserve (default 1)\n"
        "  -m --mem SIZE        memory to reserve and limit, e.g. 512M, 2G\n"
        "  -a --agent NAME      run on this agent\n"
        "  -t --timeout DUR     kill it after DUR (e.g. 30, 5m); exit code 124\n"
        "  -e --env K=V         set an environment variable (repeatable)\n"
        "  -n --no-stdin        don't forward stdin (the command reads /dev/null)\n"
        "  -h --help            this help\n\n"
        "Exit codes: the command's; 128+N if it died of signal N; 124 timeout; 125 cluster\n"
        "error; 126 not executable; 127 not found.\n";

static void send_ack(Run *run, bool force)
{
        Cluster__TaskAck ack = CLUSTER__TASK_ACK__INIT;
        Cluster__Envelope env = CLUSTER__ENVELOPE__INIT;

        if (run->unacked_output == 0 || (!force && run->unacked_output < WINDOW / 4))
                return;
        ack.task_id = run->task_id;
        ack.bytes = run->unacked_output;
        run->unacked_output = 0;
        env.msg_case = CLUSTER__ENVELOPE__MSG_TASK_ACK;
        env.task_ack = &ack;
        (void)conn_send(run->client->conn, &env);
}

static void send_input(Run *run, const void *data, size_t n, bool eof)
{
        Cluster__TaskInput in = CLUSTER__TASK_INPUT__INIT;
        Cluster__Envelope env = CLUSTER__ENVELOPE__INIT;

        in.task_id = run->task_id;
        in.data.data = (uint8_t *)data;
        in.data.len = n;
        in.eof = eof;
        env.msg_case = CLUSTER__ENVELOPE__MSG_TASK_INPUT;
        env.task_input = &in;
        (void)conn_send(run->client->conn, &env);
        run->input_credit -= (int64_t)n;
}

static void update_stdin_watch(Run *run)
{
        if (!run->stdin_watch)
                return;
        (void)loop_io_set_events(run->stdin_watch,
                                 run->stdin_eof || run->input_credit <= 0 ? 0 : POLLIN);
}

static void on_stdin(LoopSource *s, int fd, uint32_t revents, void *userdata)
{
        Run *run = userdata;
        static uint8_t buf[INPUT_CHUNK];
        size_t want = (size_t)MIN((int64_t)sizeof buf, run->input_credit);
        ssize_t n;

        if (want == 0) {
                update_stdin_watch(run);
                return;
        }
        /* poll said readable, so this read does not block (regular files never do). */
        n = read(fd, buf, want);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        if (n <= 0) {
                if (n < 0)
                        log_debug_errno(errno, "Reading stdin failed, closing it: %m");
                run->stdin_eof = true;
                send_input(run, NULL, 0, true);
                run->stdin_watch = loop_source_free(run->stdin_watch);
                return;
        }
        send_input(run, buf, (size_t)n, false);
        update_stdin_watch(run);
}

static int exit_code_for(const Cluster__TaskExit *x, const Run *run)
{
        switch (x->kind) {
        case CLUSTER__EXIT_KIND__EXIT_EXITED:
                return x->exit_code & 0xff;
        case CLUSTER__EXIT_KIND__EXIT_SIGNALED:
                return 128 + (x->signal & 0x7f);
        case CLUSTER__EXIT_KIND__EXIT_TIMEOUT:
                return EXIT_RUN_TIMEOUT;
        case CLUSTER__EXIT_KIND__EXIT_CANCELED:
                return 128 + (run->cancel_signal ?: SIGINT);
        case CLUSTER__EXIT_KIND__EXIT_SPAWN_FAILED:
                return x->exit_code == 127 || x->exit_code == 126 ? x->exit_code : EXIT_RUN_CLUSTER;
        default:
                return EXIT_RUN_CLUSTER;
        }
}

static void on_run_message(Client *c, const Cluster__Envelope *msg, void *userdata)
{
        Run *run = userdata;

        switch (msg->msg_case) {
        case CLUSTER__ENVELOPE__MSG_ERROR:
                if (msg->error->request_id == 1 || msg->error->task_id == run->task_id) {
                        log_error("%s", strna(msg->error->message));
                        run->exit_code = EXIT_RUN_CLUSTER;
                        run->done = true;
                }
                break;
        case CLUSTER__ENVELOPE__MSG_TASK_STARTED:
                if (msg->task_started->request_id != 1)
                        break;
                run->task_id = msg->task_started->task_id;
                run->started = true;
                log_debug("Task %" PRIu64 " started on %s (pid %u).", run->task_id,
                          strna(msg->task_started->agent), msg->task_started->pid);
                if (run->cancels > 0) {
                        /* Ctrl-C came before the start: cancel now. */
                        Cluster__TaskCancel cc = CLUSTER__TASK_CANCEL__INIT;
                        Cluster__Envelope env = CLUSTER__ENVELOPE__INIT;
                        cc.task_id = run->task_id;
                        env.msg_case = CLUSTER__ENVELOPE__MSG_TASK_CANCEL;
                        env.task_cancel = &cc;
                        (void)conn_send(c->conn, &env);
                }
                if (run->forward_stdin) {
                        if (loop_add_io(c->loop, STDIN_FILENO, POLLIN, on_stdin, run,
                                        &run->stdin_watch) < 0) {
                                /* stdin cannot be polled (e.g. closed): send EOF. */
                                run->stdin_eof = true;
                                send_input(run, NULL, 0, true);
                        }
                }
                break;
        case CLUSTER__ENVELOPE__MSG_TASK_OUTPUT: {
                const Cluster__TaskOutput *o = msg->task_output;
                int fd =
                        o->stream == CLUSTER__STREAM__STREAM_STDERR ? STDERR_FILENO : STDOUT_FILENO;
                if (o->task_id != run->task_id)
                        break;
                if (loop_write(fd, o->data.data, o->data.len) < 0 && fd == STDOUT_FILENO) {
                        /* stdout is gone (a closed pipe): like a local command, stop. */
                        log_debug("stdout closed, cancelling the task.");
                        run->cancel_signal = SIGPIPE;
                }
                run->unacked_output += o->data.len;
                send_ack(run, false);
                break;
        }
        case CLUSTER__ENVELOPE__MSG_TASK_ACK:
                if (msg->task_ack->task_id != run->task_id)
                        break;
                run->input_credit += (int64_t)MIN(msg->task_ack->bytes, (uint64_t)WINDOW);
                update_stdin_watch(run);
                break;
        case CLUSTER__ENVELOPE__MSG_TASK_EXIT: {
                const Cluster__TaskExit *x = msg->task_exit;
                if (run->started && x->task_id != run->task_id)
                        break;
                run->exit_code = exit_code_for(x, run);
                if (!isempty(x->error) &&
                    (x->kind != CLUSTER__EXIT_KIND__EXIT_CANCELED || run->cancels == 0))
                        log_error("%s", x->error);
                run->done = true;
                break;
        }
        default:
                break;
        }
}

static void on_signal(LoopSource *s, const struct signalfd_siginfo *si, void *userdata)
{
        Run *run = userdata;
        Cluster__TaskCancel cc = CLUSTER__TASK_CANCEL__INIT;
        Cluster__Envelope env = CLUSTER__ENVELOPE__INIT;

        run->cancels++;
        run->cancel_signal = (int)si->ssi_signo;
        if (run->cancels >= 3) {
                log_error("Giving up waiting for the task to end.");
                run->exit_code = 128 + (int)si->ssi_signo;
                run->done = true;
                return;
        }
        if (!run->started && run->task_id == 0)
                return; /* cancelled on TaskStarted, or when the scheduler answers */
        /* First: SIGTERM to the process group, SIGKILL after a grace period; second:
         * SIGKILL now. */
        cc.task_id = run->task_id;
        cc.signal = run->cancels >= 2 ? SIGKILL : 0;
        env.msg_case = CLUSTER__ENVELOPE__MSG_TASK_CANCEL;
        env.task_cancel = &cc;
        (void)conn_send(run->client->conn, &env);
}

int verb_run(int argc, char **argv)
{
        static const struct option options[] = {
                {"cpus", required_argument, NULL, 'c'},  {"mem", required_argument, NULL, 'm'},
                {"agent", required_argument, NULL, 'a'}, {"timeout", required_argument, NULL, 't'},
                {"env", required_argument, NULL, 'e'},   {"no-stdin", no_argument, NULL, 'n'},
                {"help", no_argument, NULL, 'h'},        {}};
        _cleanup_(client_freep) Client *cl = NULL;
        _cleanup_strv_free_ char **env_list = NULL;
        Cluster__TaskSpec spec = CLUSTER__TASK_SPEC__INIT;
        Cluster__RunRequest req = CLUSTER__RUN_REQUEST__INIT;
        Cluster__Envelope env = CLUSTER__ENVELOPE__INIT;
        Run run = {.forward_stdin = true, .input_credit = WINDOW};
        uint64_t v;
        uint32_t u;
        int c, r;

        optind = 0;
        /* '+': stop at the first non-option, so the command's own options are its own. */
        while ((c = getopt_long(argc, argv, "+c:m:a:t:e:nh", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        if (safe_atou32(optarg, &u) < 0 || u == 0 || u > 65536) {
                                log_error("Invalid --cpus '%s'.", optarg);
                                return EXIT_USAGE;
                        }
                        spec.cpus = u;
                        break;
                case 'm':
                        if (parse_size(optarg, &v) < 0) {
                                log_error("Invalid --mem '%s' (e.g. 512M, 2G).", optarg);
                                return EXIT_USAGE;
                        }
                        spec.memory_bytes = v;
                        break;
                case 'a':
                        if (!name_is_valid(optarg)) {
                                log_error("Invalid agent name '%s'.", optarg);
                                return EXIT_USAGE;
                        }
                        spec.agent = optarg;
                        break;
                case 't':
                        if (parse_duration(optarg, &v) < 0 || v == 0 ||
                            v / USEC_PER_MSEC > UINT32_MAX) {
                                log_error("Invalid --timeout '%s' (e.g. 30, 500ms, 5m).", optarg);
                                return EXIT_USAGE;
                        }
                        spec.timeout_ms = (uint32_t)MAX(v / USEC_PER_MSEC, (uint64_t)1);
                        break;
                case 'e':
                        if (!strchr(optarg, '=') || optarg[0] == '=') {
                                log_error("Invalid --env '%s' (KEY=value).", optarg);
                                return EXIT_USAGE;
                        }
                        if (strv_extend(&env_list, optarg) < 0)
                                return log_oom(), 1;
                        break;
                case 'n':
                        run.forward_stdin = false;
                        break;
                case 'h':
                        printf("%s", run_usage);
                        return 0;
                default:
                        return EXIT_USAGE;
                }
        if (optind >= argc) {
                fprintf(stderr, "%s", run_usage);
                return EXIT_USAGE;
        }
        spec.argv = argv + optind;
        spec.n_argv = (size_t)(argc - optind);
        spec.env = env_list;
        spec.n_env = strv_length(env_list);
        spec.stdin = run.forward_stdin;
        spec.output_window = WINDOW;

        r = client_connect(&cl);
        if (r < 0)
                return EXIT_RUN_CLUSTER;
        run.client = cl;
        cl->on_message = on_run_message;
        cl->userdata = &run;
        if (loop_add_signal(cl->loop, SIGINT, on_signal, &run, &run.sigint) < 0 ||
            loop_add_signal(cl->loop, SIGTERM, on_signal, &run, &run.sigterm) < 0 ||
            loop_add_signal(cl->loop, SIGHUP, on_signal, &run, &run.sighup) < 0)
                return log_error("Failed to set up signal handling."), EXIT_RUN_CLUSTER;
        (void)signal(SIGPIPE, SIG_IGN);

        req.request_id = 1;
        req.spec = &spec;
        env.msg_case = CLUSTER__ENVELOPE__MSG_RUN_REQUEST;
        env.run_request = &req;
        r = conn_send(cl->conn, &env);
        if (r < 0)
                return log_error_errno(r, "Failed to send the request: %m"), EXIT_RUN_CLUSTER;

        while (!run.done && !cl->closed) {
                r = loop_run_once(cl->loop, USEC_INFINITY);
                if (r < 0) {
                        log_error_errno(r, "Event loop failed: %m");
                        break;
                }
                /* A broken stdout ends the task like SIGPIPE would end a local one. */
                if (run.cancel_signal == SIGPIPE && run.cancels == 0 && run.started) {
                        struct signalfd_siginfo si = {.ssi_signo = SIGPIPE};
                        on_signal(NULL, &si, &run);
                }
                send_ack(&run, true);
        }
        run.stdin_watch = loop_source_free(run.stdin_watch);
        run.sigint = loop_source_free(run.sigint);
        run.sigterm = loop_source_free(run.sigterm);
        run.sighup = loop_source_free(run.sighup);
        if (!run.done) {
                log_error("Lost the connection to the scheduler: %s",
                          cl->close_reason ?: strerror(-cl->close_error));
                return EXIT_RUN_CLUSTER;
        }
        return run.exit_code;
}
