/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <grp.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "agent/agent-manager.h"
#include "basic/alloc-util.h"
#include "basic/fd-util.h"
#include "basic/string-util.h"
#include "shared/frame.h"
#include "shared/log.h"
#include "shared/sd-util.h"

int manager_new(const char *config_path, Manager **ret)
{
        _cleanup_(manager_freep) Manager *m = new0(Manager, 1);

        if (!m)
                return log_oom();
        if (agent_config_init(&m->config) < 0)
                return log_oom();
        if (config_path && !(m->config_path = strdup(config_path)))
                return log_oom();
        m->tasks = hashmap_new(HASHMAP_U64);
        if (!m->tasks)
                return log_oom();
        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m)
{
        AgentTask *t;

        if (!m)
                return NULL;
        while ((t = hashmap_first(m->tasks)))
                agent_task_free(t);
        hashmap_free(m->tasks);
        conn_free(m->conn);
        loop_source_free(m->reconnect_timer);
        loop_source_free(m->heartbeat_timer);
        loop_source_free(m->drain_timer);
        daemon_signals_done(&m->signals);
        loop_source_free(m->probe_events);
        probes_free(m->probes);
        loop_free(m->loop);
        tls_identity_unref(m->identity);
        agent_config_done(&m->config);
        free(m->config_path);
        free(m->pin_path);
        free(m->task_dir);
        free(m->cgroup);
        if (m->token)
                explicit_bzero(m->token, strlen(m->token));
        free(m->token);
        free(m);
        return NULL;
}

int manager_send(Manager *m, const Cluster__Envelope *msg)
{
        int r;

        if (!m->conn || m->link != LINK_READY)
                return -ENOTCONN;
        r = conn_send(m->conn, msg);
        if (r < 0) {
                log_warning_errno(r, "Failed to send %s to the scheduler: %m",
                                  envelope_type_name(msg));
                conn_close(m->conn, "send failed");
        }
        return r;
}

static void schedule_reconnect(Manager *m);

static void send_heartbeat(Manager *m)
{
        Cluster__Heartbeat hb = CLUSTER__HEARTBEAT__INIT;
        Cluster__Load load = CLUSTER__LOAD__INIT;
        Cluster__Envelope env = CLUSTER__ENVELOPE__INIT;
        ProbeSnapshot snap = {};
        int r;

        r = probes_sample(m->probes, now(CLOCK_MONOTONIC), &snap);
        if (r < 0)
                log_debug_errno(r, "Failed to sample the probes: %m");
        else
                probe_snapshot_to_load(&snap, &load);
        load.running_tasks = (uint32_t)hashmap_size(m->tasks);
        load.used_cpus = m->used_cpus;
        load.used_memory_bytes = m->used_memory;
        hb.seq = ++m->heartbeat_seq;
        hb.load = &load;
        env.msg_case = CLUSTER__ENVELOPE__MSG_HEARTBEAT;
        env.heartbeat = &hb;
        (void)manager_send(m, &env);
        probe_snapshot_done(&snap);
}

static void on_heartbeat(LoopSource *s, void *userdata)
{
        Manager *m = userdata;

        if (m->link != LINK_READY)
                return;
        send_heartbeat(m);
        (void)loop_timer_set(s, loop_now(m->loop) + m->heartbeat_interval);
}

static void send_agent_info(Manager *m)
{
        Cluster__AgentInfo info = CLUSTER__AGENT_INFO__INIT;
        Cluster__Envelope env = CLUSTER__ENVELOPE__INIT;
        char *features[4];
        size_t nf = 0;

        info.hostname = m->host.hostname;
        info.arch = m->host.arch;
        info.kernel = m->host.kernel;
        info.cpus = m->config.cpus ?: m->host.cpus;
        info.memory_bytes = m->config.memory ?: m->host.memory_bytes;
        info.software = (char *)"cluster-ai " PACKAGE_VERSION;
        info.max_tasks = m->max_tasks;
        features[nf++] = (char *)"pidfd";
        if (m->cgroup)
                features[nf++] = (char *)"cgroup";
        if (m->host.has_psi)
                features[nf++] = (char *)"psi";
        if (m->change_user)
                features[nf++] = (char *)"user";
        info.features = features;
        info.n_features = nf;
        env.msg_case = CLUSTER__ENVELOPE__MSG_AGENT_INFO;
        env.agent_info = &info;
        (void)manager_send(m, &env);
}

static void on_message(Conn *c, const Cluster__Envelope *msg, void *userdata)
{
        Manager *m = userdata;

        if (m->link == LINK_CONNECTING) {
                if (msg->msg_case == CLUSTER__ENVELOPE__MSG_ERROR) {
                        log_error("The scheduler refused this agent: %s",
                                  strna(msg->error->message));
                        conn_close(c, "refused");
                        return;
                }
                if (msg->msg_case != CLUSTER__ENVELOPE__MSG_WELCOME) {
                        log_warning("Expected welcome from the scheduler, got %s.",
                                    envelope_type_name(msg));
                        conn_close(c, "protocol error");
                        return;
                }
                m->link = LINK_READY;
                m->backoff = 0;
                m->heartbeat_interval =
                        CLAMP((usec_t)msg->welcome->heartbeat_interval_ms * USEC_PER_MSEC,
                              100 * USEC_PER_MSEC, 60 * USEC_PER_SEC);
                log_info("Joined cluster '%s' at scheduler %s (%s).", strna(msg->welcome->cluster),
                         strna(msg->welcome->scheduler), conn_peer_address(c));
                (void)notifyf("STATUS=Connected to %s", conn_peer_address(c));
                send_agent_info(m);
                send_heartbeat(m);
                if (m->heartbeat_timer)
                        (void)loop_timer_set(m->heartbeat_timer,
                                             loop_now(m->loop) + m->heartbeat_interval);
                else
                        (void)loop_add_timer(m->loop, loop_now(m->loop) + m->heartbeat_interval,
                                             on_heartbeat, m, &m->heartbeat_timer);
                return;
        }

        switch (msg->msg_case) {
        case CLUSTER__ENVELOPE__MSG_TASK_START:
                task_handle_start(m, msg->task_start);
                break;
        case CLUSTER__ENVELOPE__MSG_TASK_INPUT:
        case CLUSTER__ENVELOPE__MSG_TASK_ACK:
        case CLUSTER__ENVELOPE__MSG_TASK_CANCEL:
                task_handle_message(m, msg);
                break;
        case CLUSTER__ENVELOPE__MSG_PING: {
                Cluster__Pong pong = CLUSTER__PONG__INIT;
                Cluster__Envelope env = CLUSTER__ENVELOPE__INIT;
                pong.nonce = msg->ping->nonce;
                pong.sent_usec = msg->ping->sent_usec;
                env.msg_case = CLUSTER__ENVELOPE__MSG_PONG;
                env.pong = &pong;
                (void)manager_send(m, &env);
                break;
        }
        case CLUSTER__ENVELOPE__MSG_GOODBYE:
                log_info("The scheduler is going away: %s", strna(msg->goodbye->reason));
                break;
        case CLUSTER__ENVELOPE__MSG_ERROR:
                log_warning("The scheduler reported: %s", strna(msg->error->message));
                break;
        default:
                log_debug("Ignoring %s from the scheduler.", envelope_type_name(msg));
                break;
        }
}

static void on_drain(Conn *c, void *userdata)
{
        tasks_resume_output(userdata);
}

static void on_close(Conn *c, int error, const char *reason, void *userdata)
{
        Manager *m = userdata;
        bool was_ready = m->link == LINK_READY;

        if (was_ready)
                log_warning("Lost the connection to the scheduler: %s", strna(reason));
        else
                log_info("Could not join the scheduler at %s: %s", m->config.scheduler,
                         strna(reason));
        m->link = LINK_DISCONNECTED;
        m->conn = conn_free(m->conn);
        /* Nobody can receive these tasks' output any more. */
        tasks_kill_all(m);
        (void)notify("STATUS=Disconnected, reconnecting");
        if (!m->exiting)
                schedule_reconnect(m);
        else
                loop_exit(m->loop, 0);
}

static int on_handshake(Conn *c, void *userdata)
{
        Manager *m = userdata;
        uint8_t fp[TLS_FINGERPRINT_SIZE], pinned[TLS_FINGERPRINT_SIZE];
        char hex[TLS_FINGERPRINT_HEX_SIZE];
        _cleanup_free_ char *text = NULL;
        int r;

        r = conn_peer_fingerprint(c, fp);
        if (r < 0)
                return log_error_errno(r, "The scheduler presented no certificate.");
        tls_fingerprint_to_hex(fp, hex);

        r = read_full_file(m->pin_path, &text, NULL, 4096);
        if (r == -ENOENT) {
                /* Trust on first use, as ssh does: from now on only this key. */
                char line[TLS_FINGERPRINT_HEX_SIZE + 1];
                snprintf(line, sizeof line, "%s\n", hex);
                r = write_file_atomic(m->pin_path, line, strlen(line), 0644);
                if (r < 0)
                        return log_error_errno(r,
                                               "Failed to save the scheduler's fingerprint to "
                                               "%s: %m",
                                               m->pin_path);
                log_notice("Pinned the scheduler's certificate %s (first use) in %s.", hex,
                           m->pin_path);
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", m->pin_path);
        text[strcspn(text, " \t\r\n")] = 0;
        r = tls_fingerprint_from_hex(text, pinned);
        if (r < 0)
                return log_error_errno(r,
                                       "%s does not hold a valid fingerprint; remove it to "
                                       "pin the scheduler again.",
                                       m->pin_path);
        if (!memeq_consttime(fp, pinned, sizeof fp)) {
                log_error("The scheduler at %s presented certificate %s, but %s is pinned in %s. "
                          "Refusing to join: if the scheduler was really reinstalled, remove "
                          "that file.",
                          conn_peer_address(c), hex, text, m->pin_path);
                return -EPERM;
        }
        return 0;
}

static const ConnOps agent_conn_ops = {
        .on_message = on_message,
        .on_drain = on_drain,
        .on_close = on_close,
        .on_handshake = on_handshake,
};

static int connect_scheduler(Manager *m)
{
        ConnConfig cfg = {.tls = m->identity, .server = false};
        Cluster__Hello hello = CLUSTER__HELLO__INIT;
        Cluster__Envelope env = CLUSTER__ENVELOPE__INIT;
        int r;

        if (isempty(m->config.scheduler))
                return log_error_errno(EDESTADDRREQ,
                                       "No scheduler address configured (--scheduler HOST:PORT "
                                       "or 'scheduler:' in agent.yaml).");
        log_debug("Connecting to the scheduler at %s.", m->config.scheduler);
        r = conn_connect(m->loop, m->config.scheduler, &cfg, &agent_conn_ops, m, &m->conn);
        if (r < 0) {
                log_warning_errno(r, "Failed to connect to %s: %m", m->config.scheduler);
                schedule_reconnect(m);
                return 0;
        }
        m->link = LINK_CONNECTING;
        hello.version = PROTOCOL_VERSION;
        hello.min_version = PROTOCOL_MIN_VERSION;
        hello.role = CLUSTER__ROLE__ROLE_AGENT;
        hello.name = m->config.name;
        hello.software = (char *)"cluster-ai " PACKAGE_VERSION;
        hello.token = m->token ?: (char *)"";
        hello.cluster = m->config.cluster;
        env.msg_case = CLUSTER__ENVELOPE__MSG_HELLO;
        env.hello = &hello;
        /* Queued until the handshake and pin check are done. */
        r = conn_send(m->conn, &env);
        if (r < 0)
                conn_close(m->conn, "cannot send hello");
        return 0;
}

static void on_reconnect(LoopSource *s, void *userdata)
{
        (void)connect_scheduler(userdata);
}

/* Exponential back-off from reconnect_min to reconnect_max, each delay drawn from
 * [d/2, 3d/2) so that agents restarted together don't reconnect in lockstep. */
static void schedule_reconnect(Manager *m)
{
        uint32_t rnd = 0;
        usec_t d;

        m->backoff =
                m->backoff ? MIN(m->backoff * 2, m->config.reconnect_max) : m->config.reconnect_min;
        (void)getrandom(&rnd, sizeof rnd, GRND_NONBLOCK);
        d = m->backoff / 2 + (usec_t)((double)m->backoff * ((double)rnd / 4294967296.0));
        log_debug("Reconnecting in %" PRIu64 " ms.", d / USEC_PER_MSEC);
        if (m->reconnect_timer)
                (void)loop_timer_set(m->reconnect_timer, loop_now(m->loop) + d);
        else
                (void)loop_add_timer(m->loop, loop_now(m->loop) + d, on_reconnect, m,
                                     &m->reconnect_timer);
}

void manager_drained(Manager *m)
{
        m->drain_timer = loop_source_free(m->drain_timer);
        tasks_kill_all(m);
        if (m->conn && m->link == LINK_READY)
                conn_close(m->conn, "agent stopping"); /* on_close exits the loop */
        else
                loop_exit(m->loop, 0);
}

static void on_drain_timeout(LoopSource *s, void *userdata)
{
        Manager *m = userdata;

        log_notice("Drain timeout: killing the %u tasks still running.",
                   (unsigned)hashmap_size(m->tasks));
        manager_drained(m);
}

/* SIGTERM: tell the scheduler we are draining (it places nothing new here), let the
 * running tasks finish for up to DRAIN_TIMEOUT_USEC, then leave. A second SIGTERM
 * kills them and leaves at once. */
static void on_sigterm(LoopSource *s, const struct signalfd_siginfo *si, void *userdata)
{
        Manager *m = userdata;
        Cluster__Goodbye bye = CLUSTER__GOODBYE__INIT;
        Cluster__Envelope env = CLUSTER__ENVELOPE__INIT;

        if (m->exiting) {
                manager_drained(m);
                return;
        }
        m->exiting = true;
        (void)notify("STOPPING=1");
        if (m->conn && m->link == LINK_READY) {
                bye.reason = (char *)"agent stopping";
                env.msg_case = CLUSTER__ENVELOPE__MSG_GOODBYE;
                env.goodbye = &bye;
                (void)conn_send(m->conn, &env);
        }
        if (hashmap_size(m->tasks) == 0 || !m->conn || m->link != LINK_READY) {
                log_info("Received %s, stopping.", strsignal((int)si->ssi_signo));
                manager_drained(m);
                return;
        }
        log_info("Received %s, draining: waiting for %u running tasks.",
                 strsignal((int)si->ssi_signo), (unsigned)hashmap_size(m->tasks));
        if (loop_add_timer(m->loop, loop_now(m->loop) + DRAIN_TIMEOUT_USEC, on_drain_timeout, m,
                           &m->drain_timer) < 0)
                manager_drained(m);
}

static void on_sighup(LoopSource *s, const struct signalfd_siginfo *si, void *userdata)
{
        Manager *m = userdata;
        AgentConfig c;

        if (agent_config_init(&c) < 0)
                return;
        if (agent_config_load(&c, m->config_path ?: PKGSYSCONFDIR "/agent.yaml",
                              m->config_path != NULL) >= 0) {
                m->config.log_level = c.log_level;
                log_set_max_level(c.log_level);
                m->config.reconnect_min = c.reconnect_min;
                m->config.reconnect_max = c.reconnect_max;
                log_info("Configuration reloaded (scheduler, name, state and limits apply at "
                         "restart).");
        }
        agent_config_done(&c);
}

static int load_token(Manager *m)
{
        _cleanup_free_ char *t = NULL;
        int r;

        if (!isempty(m->config.token_file)) {
                r = read_full_file(m->config.token_file, &t, NULL, 4096);
                if (r < 0)
                        return log_error_errno(r, "Failed to read token file %s: %m",
                                               m->config.token_file);
                t[strcspn(t, " \t\r\n")] = 0;
        } else if (!isempty(m->config.token)) {
                t = strdup(m->config.token);
                if (!t)
                        return log_oom();
        }
        m->token = TAKE_PTR(t);
        return 0;
}

static void on_probe_events(LoopSource *s, int fd, uint32_t revents, void *userdata)
{
        Manager *m = userdata;

        (void)probes_handle_events(m->probes);
}

/* eBPF where the kernel and our capabilities allow it, /proc and PSI otherwise; the
 * probes say which source each metric has (and why) themselves. */
static int setup_probes(Manager *m)
{
        ProbeOptions opts = {
                .enable_bpf = m->config.probes_bpf,
                .disable = m->config.probes_disable,
                .interval = USEC_PER_SEC,
        };
        ProbeSnapshot warm = {};
        int fd, r;

        r = probes_new(&opts, &m->probes);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the host probes: %m");
        fd = probes_event_fd(m->probes);
        if (fd >= 0) {
                r = loop_add_io(m->loop, fd, POLLIN, on_probe_events, m, &m->probe_events);
                if (r < 0)
                        return log_error_errno(r, "Failed to watch the probes' ring buffer: %m");
        }
        /* Rates need a previous sample: take one now so the first heartbeat has them. */
        if (probes_sample(m->probes, now(CLOCK_MONOTONIC), &warm) >= 0)
                probe_snapshot_done(&warm);
        return 0;
}

/* The systemd unit runs the agent as its own user with CAP_SETUID/CAP_SETGID (and
 * CAP_CHOWN) instead of root. */
static bool have_capability(int cap)
{
        struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct d[2] = {};

        if (syscall(SYS_capget, &h, d) < 0)
                return false;
        return d[cap / 32].effective & (1U << (cap % 32));
}

static int setup_user(Manager *m)
{
        struct passwd pw, *res = NULL;
        char buf[4096];
        int r;

        if (geteuid() != 0 && !(have_capability(CAP_SETUID) && have_capability(CAP_SETGID))) {
                /* An unprivileged agent (a developer's, a phone's) runs tasks as itself. */
                log_debug("Neither root nor CAP_SETUID+CAP_SETGID: tasks run as uid %u.",
                          (unsigned)geteuid());
                return 0;
        }
        r = getpwnam_r(m->config.run_as, &pw, buf, sizeof buf, &res);
        if (r != 0 || !res)
                return log_error_errno(r ?: ENOENT,
                                       "Task user '%s' does not exist (run_as in agent.yaml); "
                                       "refusing to run tasks as root.",
                                       m->config.run_as);
        if (pw.pw_uid == 0)
                return log_error_errno(EPERM, "run_as must not be root.");
        m->change_user = true;
        m->run_uid = pw.pw_uid;
        m->run_gid = pw.pw_gid;
        return 0;
}

int manager_startup(Manager *m)
{
        int r;

        r = loop_new(&m->loop);
        if (r < 0)
                return log_error_errno(r,
                                       "Failed to set up io_uring (is it disabled by "
                                       "kernel.io_uring_disabled or a seccomp filter?): %m");
        if (!name_is_valid(m->config.name))
                return log_error_errno(EINVAL, "Invalid agent name '%s'.", m->config.name);
        r = host_info_read(&m->host);
        if (r < 0)
                return log_error_errno(r, "Failed to read host information: %m");
        m->max_tasks = m->config.max_tasks ?: (m->config.cpus ?: m->host.cpus);

        /* 0711: tasks running as run_as must reach their directories below it; the key
         * inside is 0600. */
        r = mkdir_p(m->config.state_dir, 0711);
        if (r < 0)
                return log_error_errno(r, "Failed to create state directory %s: %m",
                                       m->config.state_dir);
        r = tls_identity_load_or_create(m->config.state_dir, "agent", m->config.name, &m->identity);
        if (r < 0)
                return log_error_errno(r,
                                       "Failed to load or create the agent's TLS key and "
                                       "certificate in %s: %m",
                                       m->config.state_dir);
        m->pin_path = strprintf("%s/scheduler.pin", m->config.state_dir);
        m->task_dir = isempty(m->config.task_dir) ? strprintf("%s/tasks", m->config.state_dir)
                                                  : strdup(m->config.task_dir);
        if (!m->pin_path || !m->task_dir)
                return log_oom();
        /* Work directories of a previous run are garbage now. */
        (void)rm_rf(m->task_dir);
        r = mkdir_p(m->task_dir, 0711);
        if (r < 0)
                return log_error_errno(r, "Failed to create task directory %s: %m", m->task_dir);
        r = load_token(m);
        if (r < 0)
                return r;
        r = setup_user(m);
        if (r < 0)
                return r;
        r = exec_find_cgroup(&m->cgroup);
        if (r < 0)
                log_info_errno(r, "No delegated cgroup, tasks run without cgroup limits: %m");
        else
                log_info("Tasks run in cgroups under %s.", m->cgroup);

        r = daemon_signals_setup(&m->signals, m->loop, on_sigterm, on_sighup, m);
        if (r < 0)
                return r;
        r = setup_probes(m);
        if (r < 0)
                return r;

        log_info("Agent %s starting: %u CPUs, %" PRIu64 " MiB, up to %u tasks, scheduler %s.",
                 m->config.name, m->config.cpus ?: m->host.cpus,
                 (m->config.memory ?: m->host.memory_bytes) >> 20, m->max_tasks,
                 strna(m->config.scheduler));
        return connect_scheduler(m);
}

int manager_run(Manager *m)
{
        return loop_run(m->loop);
}
