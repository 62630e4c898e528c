/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "agent/agent-manager.h"
#include "basic/alloc-util.h"
#include "basic/fd-util.h"
#include "basic/string-util.h"
#include "basic/strv.h"
#include "shared/log.h"
#include "shared/proto-util.h"

/* One task's life on the agent: spawned -> output relayed under credit -> the main
 * process exits -> what is left of its process group is killed -> both output pipes
 * reach EOF (or LINGER passes) -> TaskExit -> cleaned up.
 *
 * Output flow control: the client grants output_window bytes; each TaskOutput spends
 * credit, each TaskAck (relayed by the scheduler from the client) returns it. Without
 * credit, or while the scheduler connection is congested, the pipes are not read, so a
 * chatty command blocks in write() instead of filling our memory. */

#define OUTPUT_CHUNK (64U * 1024)
#define KILL_GRACE_USEC (3 * USEC_PER_SEC)
#define LINGER_USEC (2 * USEC_PER_SEC)

static void task_maybe_finish(AgentTask *t);

static char *task_fields_buf(const AgentTask *t, char *buf, size_t n)
{
        snprintf(buf, n, "CLUSTER_TASK=%" PRIu64, t->id);
        return buf;
}

AgentTask *agent_task_free(AgentTask *t)
{
        Manager *m;

        if (!t)
                return NULL;
        m = t->manager;
        hashmap_remove_u64(m->tasks, t->id);
        if (t->spec) {
                m->used_cpus -= MIN(m->used_cpus, MAX(t->spec->cpus, 1U));
                m->used_memory -= MIN(m->used_memory, t->spec->memory_bytes);
                cluster__task_spec__free_unpacked(t->spec, NULL);
        }
        if (t->proc.pid > 0 && !t->exited) {
                /* Dropped while running (scheduler gone, agent stopping): kill and reap
                 * here, since the loop will not watch it any more. SIGKILL'd processes
                 * go within milliseconds; one stuck in the kernel is left as a zombie
                 * rather than blocking the agent. */
                (void)exec_kill(&t->proc, SIGKILL);
                for (int i = 0; i < 100; i++) {
                        pid_t p = waitpid(t->proc.pid, NULL, WNOHANG);
                        if (p != 0)
                                break;
                        usleep(1000);
                }
        }
        if (t->proc.pid > 0)
                (void)probes_unwatch(m->probes, t->id);
        loop_source_free(t->child);
        loop_source_free(t->timeout_timer);
        loop_source_free(t->kill_timer);
        loop_source_free(t->linger_timer);
        stream_free(t->out);
        stream_free(t->err);
        stream_free(t->in);
        exec_process_done(&t->proc);
        if (t->workdir) {
                (void)rm_rf(t->workdir);
                free(t->workdir);
        }
        free(t);
        return NULL;
}

static void send_exit(Manager *m, uint64_t id, Cluster__ExitKind kind, int code, int sig,
                      const char *error, const AgentTask *t)
{
        Cluster__TaskExit x = CLUSTER__TASK_EXIT__INIT;
        Cluster__Envelope env = CLUSTER__ENVELOPE__INIT;

        x.task_id = id;
        x.kind = kind;
        x.exit_code = code;
        x.signal = sig;
        x.error = (char *)strempty(error);
        if (t) {
                ExecUsage u = {};
                (void)exec_usage(&t->proc, &t->ru, &u);
                x.wall_usec = loop_now(m->loop) - t->started;
                x.user_usec = u.user_usec;
                x.system_usec = u.system_usec;
                x.max_rss_bytes = u.max_rss_bytes;
        }
        env.msg_case = CLUSTER__ENVELOPE__MSG_TASK_EXIT;
        env.task_exit = &x;
        (void)manager_send(m, &env);
}

static void task_pause(AgentTask *t)
{
        if (t->paused)
                return;
        t->paused = true;
        if (t->out)
                stream_pause_read(t->out);
        if (t->err)
                stream_pause_read(t->err);
}

static void task_resume(AgentTask *t)
{
        if (!t->paused || t->credit <= 0)
                return;
        if (t->manager->conn && conn_congested(t->manager->conn))
                return;
        t->paused = false;
        if (t->out)
                stream_resume_read(t->out);
        if (t->err)
                stream_resume_read(t->err);
}

void tasks_resume_output(Manager *m)
{
        AgentTask *t;

        HASHMAP_FOREACH (t, m->tasks)
                task_resume(t);
}

static void output_data(AgentTask *t, Cluster__Stream which, const void *data, size_t size)
{
        Manager *m = t->manager;
        const uint8_t *p = data;

        while (size > 0) {
                Cluster__TaskOutput o = CLUSTER__TASK_OUTPUT__INIT;
                Cluster__Envelope env = CLUSTER__ENVELOPE__INIT;
                size_t n = MIN(size, (size_t)OUTPUT_CHUNK);

                o.task_id = t->id;
                o.stream = which;
                o.data.data = (uint8_t *)p;
                o.data.len = n;
                env.msg_case = CLUSTER__ENVELOPE__MSG_TASK_OUTPUT;
                env.task_output = &o;
                if (manager_send(m, &env) < 0)
                        return;
                t->credit -= (int64_t)n;
                p += n;
                size -= n;
        }
        if (t->credit <= 0 || (m->conn && conn_congested(m->conn)))
                task_pause(t);
}

static void on_out_data(Stream *s, const void *data, size_t size, void *userdata)
{
        AgentTask *t = userdata;
        output_data(t,
                    s == t->out ? CLUSTER__STREAM__STREAM_STDOUT : CLUSTER__STREAM__STREAM_STDERR,
                    data, size);
}

static void on_out_close(Stream *s, int error, void *userdata)
{
        AgentTask *t = userdata;

        if (s == t->out) {
                t->out_eof = true;
                t->out = stream_free(t->out);
        } else {
                t->err_eof = true;
                t->err = stream_free(t->err);
        }
        task_maybe_finish(t);
}

static const StreamOps out_ops = {
        .on_data = on_out_data,
        .on_close = on_out_close,
};

static void send_input_ack(AgentTask *t)
{
        Cluster__TaskAck ack = CLUSTER__TASK_ACK__INIT;
        Cluster__Envelope env = CLUSTER__ENVELOPE__INIT;

        if (t->input_unacked == 0)
                return;
        ack.task_id = t->id;
        ack.bytes = t->input_unacked;
        t->input_unacked = 0;
        env.msg_case = CLUSTER__ENVELOPE__MSG_TASK_ACK;
        env.task_ack = &ack;
        (void)manager_send(t->manager, &env);
}

static void on_in_drain(Stream *s, void *userdata)
{
        send_input_ack(userdata);
}

static void on_in_close(Stream *s, int error, void *userdata)
{
        AgentTask *t = userdata;

        /* The command closed its stdin (or exited): further input is dropped, and
         * acknowledged so the client never stalls on it. */
        t->in = stream_free(t->in);
        send_input_ack(t);
}

static const StreamOps in_ops = {
        .on_drain = on_in_drain,
        .on_close = on_in_close,
};

static void task_finish(AgentTask *t)
{
        Manager *m = t->manager;
        Cluster__ExitKind kind;
        int code = 0, sig = 0;

        if (t->finished)
                return;
        t->finished = true;
        if (t->si.si_code == CLD_EXITED)
                code = t->si.si_status;
        else
                sig = t->si.si_status;
        if (t->end_reason != CLUSTER__EXIT_KIND__EXIT_NONE)
                kind = t->end_reason;
        else
                kind = t->si.si_code == CLD_EXITED ? CLUSTER__EXIT_KIND__EXIT_EXITED
                                                   : CLUSTER__EXIT_KIND__EXIT_SIGNALED;
        log_debug("Task %" PRIu64 " finished: kind %d, code %d, signal %d.", t->id, kind, code,
                  sig);
        send_exit(m, t->id, kind, code, sig,
                  kind == CLUSTER__EXIT_KIND__EXIT_TIMEOUT ? "timed out" : NULL, t);
        agent_task_free(t);
        if (m->exiting && m->drain_timer && hashmap_size(m->tasks) == 0) {
                log_info("Drained, stopping.");
                manager_drained(m);
        }
}

static void on_linger(LoopSource *s, void *userdata)
{
        AgentTask *t = userdata;

        /* Something still holds the output pipes open (a process that left the process
         * group): stop waiting for it. */
        log_debug("Task %" PRIu64 ": output still open after exit, closing it.", t->id);
        task_finish(t);
}

static void task_maybe_finish(AgentTask *t)
{
        if (!t->exited)
                return;
        /* Cancelled: nobody wants the rest of its output. */
        if ((t->out_eof && t->err_eof) || t->end_reason == CLUSTER__EXIT_KIND__EXIT_CANCELED) {
                task_finish(t);
                return;
        }
        /* Output still pending without credit: the client will ack and we'll get EOF.
         * Otherwise bound the wait. */
        if (!t->linger_timer && !t->paused)
                (void)loop_add_timer(t->manager->loop, loop_now(t->manager->loop) + LINGER_USEC,
                                     on_linger, t, &t->linger_timer);
}

static void on_child(LoopSource *s, const siginfo_t *si, const struct rusage *ru, void *userdata)
{
        AgentTask *t = userdata;

        t->exited = true;
        t->si = *si;
        t->ru = *ru;
        t->child = loop_source_free(t->child);
        t->timeout_timer = loop_source_free(t->timeout_timer);
        t->kill_timer = loop_source_free(t->kill_timer);
        /* The task is its main process: background leftovers go with it. */
        (void)exec_kill(&t->proc, SIGKILL);
        task_maybe_finish(t);
}

static void on_kill_timer(LoopSource *s, void *userdata)
{
        AgentTask *t = userdata;

        t->kill_timer = loop_source_free(t->kill_timer);
        if (!t->exited)
                (void)exec_kill(&t->proc, SIGKILL);
}

static void task_terminate(AgentTask *t, int sig, Cluster__ExitKind reason)
{
        if (t->exited)
                return;
        if (t->end_reason == CLUSTER__EXIT_KIND__EXIT_NONE)
                t->end_reason = reason;
        (void)exec_kill(&t->proc, sig);
        if (sig != SIGKILL && !t->kill_timer)
                (void)loop_add_timer(t->manager->loop, loop_now(t->manager->loop) + KILL_GRACE_USEC,
                                     on_kill_timer, t, &t->kill_timer);
}

static void on_timeout(LoopSource *s, void *userdata)
{
        AgentTask *t = userdata;
        char f[64];

        t->timeout_timer = loop_source_free(t->timeout_timer);
        log_fields_errno(LOG_INFO, 0, ((char *[]){task_fields_buf(t, f, sizeof f), NULL}),
                         "Task %" PRIu64 " reached its timeout, terminating it.", t->id);
        task_terminate(t, SIGTERM, CLUSTER__EXIT_KIND__EXIT_TIMEOUT);
}

static int make_workdir(Manager *m, AgentTask *t)
{
        int r;

        t->workdir = strprintf("%s/%" PRIu64, m->task_dir, t->id);
        if (!t->workdir)
                return -ENOMEM;
        if (mkdir(t->workdir, 0700) < 0 && errno != EEXIST)
                return -errno;
        if (m->change_user && chown(t->workdir, m->run_uid, m->run_gid) < 0) {
                r = -errno;
                return r;
        }
        return 0;
}

/* The stream owns the fd on success; on failure it stays ours and is closed with the
 * rest of the process by exec_process_done(). */
static int stream_take(Manager *m, int *fd, const StreamOps *ops, AgentTask *t, Stream **ret)
{
        int r = stream_new(m->loop, *fd, ops, t, ret);
        if (r >= 0)
                *fd = -EBADF;
        return r;
}

void task_handle_start(Manager *m, const Cluster__TaskStart *ts)
{
        const Cluster__TaskSpec *spec = ts->spec;
        _cleanup_strv_free_ char **argv = NULL;
        AgentTask *t;
        char f[64];
        int r;

        if (hashmap_get_u64(m->tasks, spec->task_id)) {
                log_warning("Task %" PRIu64 " is already running here, ignoring the duplicate.",
                            spec->task_id);
                return;
        }
        if (m->exiting) {
                send_exit(m, spec->task_id, CLUSTER__EXIT_KIND__EXIT_REJECTED, 125, 0,
                          "the agent is stopping", NULL);
                return;
        }
        if (hashmap_size(m->tasks) >= m->max_tasks) {
                send_exit(m, spec->task_id, CLUSTER__EXIT_KIND__EXIT_REJECTED, 125, 0,
                          "the agent is running its maximum number of tasks", NULL);
                return;
        }
        t = new0(AgentTask, 1);
        if (!t) {
                send_exit(m, spec->task_id, CLUSTER__EXIT_KIND__EXIT_REJECTED, 125, 0,
                          "out of memory", NULL);
                return;
        }
        t->manager = m;
        t->id = spec->task_id;
        t->proc = EXEC_PROCESS_NULL;
        t->spec = PROTO_COPY(spec);
        t->credit = spec->output_window ?: (int64_t)m->config.output_window;
        t->started = loop_now(m->loop);
        if (!t->spec || hashmap_put_u64(m->tasks, t->id, t) < 0) {
                if (t->spec)
                        cluster__task_spec__free_unpacked(t->spec, NULL);
                free(t);
                send_exit(m, spec->task_id, CLUSTER__EXIT_KIND__EXIT_REJECTED, 125, 0,
                          "out of memory", NULL);
                return;
        }
        m->used_cpus += MAX(spec->cpus, 1U);
        m->used_memory += spec->memory_bytes;

        r = make_workdir(m, t);
        if (r < 0) {
                log_error_errno(r, "Failed to create work directory for task %" PRIu64 ": %m",
                                t->id);
                send_exit(m, t->id, CLUSTER__EXIT_KIND__EXIT_SPAWN_FAILED, 125, 0,
                          "cannot create the task's work directory", NULL);
                agent_task_free(t);
                return;
        }

        /* argv and env come as repeated strings; the executor wants NULL-terminated
         * arrays (the generated arrays are not). */
        argv = new0(char *, spec->n_argv + 1);
        char **env = new0(char *, spec->n_env + 1);
        if (!argv || !env) {
                free(env);
                send_exit(m, t->id, CLUSTER__EXIT_KIND__EXIT_REJECTED, 125, 0, "out of memory",
                          NULL);
                agent_task_free(t);
                return;
        }
        for (size_t i = 0; i < spec->n_argv; i++)
                argv[i] = t->spec->argv[i];
        for (size_t i = 0; i < spec->n_env; i++)
                env[i] = t->spec->env[i];

        ExecSpec es = {
                .argv = argv,
                .env = env,
                .workdir = t->workdir,
                .change_user = m->change_user,
                .uid = m->run_uid,
                .gid = m->run_gid,
                .want_stdin = spec->stdin,
                .memory_bytes = spec->memory_bytes,
                .cpus = spec->cpus,
                .max_processes = m->config.max_processes,
                .max_open_files = m->config.max_open_files,
                .max_file_size = m->config.max_file_size,
                .cgroup = m->cgroup,
                .name = NULL,
        };
        char name[32];
        snprintf(name, sizeof name, "task-%" PRIu64, t->id);
        es.name = name;
        r = exec_spawn(&es, &t->proc);
        /* argv/env point into t->spec: only the arrays are ours. */
        free(env);
        free(TAKE_PTR(argv));
        if (r < 0) {
                char text[512];
                int code = r == -ENOENT ? 127 : 126;
                snprintf(text, sizeof text, "%s: %s", spec->argv[0],
                         r == -ENOENT ? "command not found" : strerror(-r));
                log_fields_errno(LOG_INFO, r, ((char *[]){task_fields_buf(t, f, sizeof f), NULL}),
                                 "Task %" PRIu64 " could not start: %s", t->id, text);
                send_exit(m, t->id, CLUSTER__EXIT_KIND__EXIT_SPAWN_FAILED, code, 0, text, NULL);
                agent_task_free(t);
                return;
        }

        /* The loop gets its own copy of the pidfd: exec_kill() keeps using ours to reach
         * a leader that left its process group (setsid). */
        int child_fd = fcntl(t->proc.pidfd, F_DUPFD_CLOEXEC, 3);
        r = child_fd < 0 ? -errno : loop_add_child(m->loop, child_fd, on_child, t, &t->child);
        if (r < 0)
                safe_close(child_fd);
        if (r >= 0)
                r = stream_take(m, &t->proc.stdout_fd, &out_ops, t, &t->out);
        if (r >= 0)
                r = stream_take(m, &t->proc.stderr_fd, &out_ops, t, &t->err);
        if (r >= 0 && t->proc.stdin_fd >= 0)
                r = stream_take(m, &t->proc.stdin_fd, &in_ops, t, &t->in);
        if (r >= 0 && spec->timeout_ms > 0)
                r = loop_add_timer(m->loop, t->started + spec->timeout_ms * USEC_PER_MSEC,
                                   on_timeout, t, &t->timeout_timer);
        if (r < 0) {
                log_error_errno(r, "Failed to watch task %" PRIu64 ": %m", t->id);
                send_exit(m, t->id, CLUSTER__EXIT_KIND__EXIT_SPAWN_FAILED, 125, 0,
                          "the agent could not watch the process", NULL);
                agent_task_free(t);
                return;
        }

        r = probes_watch_pid(m->probes, t->proc.pid, t->id);
        if (r < 0)
                log_debug_errno(r, "Cannot account the CPU time of task %" PRIu64 ": %m", t->id);

        Cluster__TaskStarted st = CLUSTER__TASK_STARTED__INIT;
        Cluster__Envelope env2 = CLUSTER__ENVELOPE__INIT;
        st.task_id = t->id;
        st.pid = (uint32_t)t->proc.pid;
        env2.msg_case = CLUSTER__ENVELOPE__MSG_TASK_STARTED;
        env2.task_started = &st;
        (void)manager_send(m, &env2);
        log_fields_errno(LOG_INFO, 0, ((char *[]){task_fields_buf(t, f, sizeof f), NULL}),
                         "Task %" PRIu64 " started: %s (pid %d).", t->id, spec->argv[0],
                         (int)t->proc.pid);
}

void task_handle_message(Manager *m, const Cluster__Envelope *msg)
{
        AgentTask *t;

        switch (msg->msg_case) {
        case CLUSTER__ENVELOPE__MSG_TASK_ACK:
                t = hashmap_get_u64(m->tasks, msg->task_ack->task_id);
                if (!t)
                        return;
                t->credit += (int64_t)MIN(msg->task_ack->bytes, (uint64_t)INT32_MAX);
                /* Never more than the window, whatever the acks claim. */
                t->credit = MIN(t->credit,
                                (int64_t)(t->spec->output_window ?: m->config.output_window));
                task_resume(t);
                if (t->exited && !t->paused)
                        task_maybe_finish(t);
                return;
        case CLUSTER__ENVELOPE__MSG_TASK_INPUT: {
                const Cluster__TaskInput *in = msg->task_input;
                t = hashmap_get_u64(m->tasks, in->task_id);
                if (!t)
                        return;
                if (!t->in) {
                        /* stdin already closed: drop, but keep the client's credit flowing */
                        t->input_unacked += in->data.len;
                        send_input_ack(t);
                        return;
                }
                if (in->data.len > 0) {
                        if (stream_write(t->in, in->data.data, in->data.len) < 0) {
                                t->in = stream_free(t->in);
                                return;
                        }
                        t->input_unacked += in->data.len;
                        if (!stream_congested(t->in))
                                send_input_ack(t);
                }
                if (in->eof)
                        (void)stream_shutdown_write(t->in);
                return;
        }
        case CLUSTER__ENVELOPE__MSG_TASK_CANCEL: {
                int sig = msg->task_cancel->signal;
                t = hashmap_get_u64(m->tasks, msg->task_cancel->task_id);
                if (!t)
                        return;
                if (sig <= 0 || sig >= NSIG)
                        sig = SIGTERM;
                log_info("Task %" PRIu64 " cancelled (signal %d).", t->id, sig);
                if (t->exited) {
                        /* Already over, only its output was waiting for credit that
                         * will not come (the client went away): drop it and finish. */
                        task_finish(t);
                        return;
                }
                task_terminate(t, sig, CLUSTER__EXIT_KIND__EXIT_CANCELED);
                return;
        }
        default:
                return;
        }
}

void tasks_kill_all(Manager *m)
{
        AgentTask *t;

        while ((t = hashmap_first(m->tasks))) {
                if (t->proc.pid > 0 && !t->exited)
                        log_info("Killing task %" PRIu64 ": the scheduler connection is gone.",
                                 t->id);
                agent_task_free(t);
        }
        m->used_cpus = 0;
        m->used_memory = 0;
}
