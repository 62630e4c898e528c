/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "basic/alloc-util.h"
#include "basic/fd-util.h"
#include "basic/string-util.h"
#include "daemon/scheduler-manager.h"
#include "shared/log.h"
#include "shared/sd-util.h"
#include "shared/socket-util.h"

int manager_new(const char *config_path, Manager **ret)
{
        _cleanup_(manager_freep) Manager *m = new0(Manager, 1);
        int r;

        if (!m)
                return log_oom();
        m->cluster_fd = m->control_fd = -EBADF;
        r = scheduler_config_init(&m->config);
        if (r < 0)
                return log_oom();
        if (config_path) {
                m->config_path = strdup(config_path);
                if (!m->config_path)
                        return log_oom();
        }
        m->agents = hashmap_new(HASHMAP_STRING);
        m->tasks = hashmap_new(HASHMAP_U64);
        if (!m->agents || !m->tasks)
                return log_oom();
        m->next_task_id = 1;
        m->next_peer_id = 1;
        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m)
{
        Agent *a;
        Task *t;

        if (!m)
                return NULL;
        while (m->peers)
                peer_free(m->peers);
        HASHMAP_FOREACH (t, m->tasks)
                task_free(t);
        hashmap_free(m->tasks);
        HASHMAP_FOREACH (a, m->agents)
                agent_free(a);
        hashmap_free(m->agents);
        loop_source_free(m->cluster_accept);
        loop_source_free(m->control_accept);
        daemon_signals_done(&m->signals);
        loop_source_free(m->sweep_timer);
        loop_source_free(m->drain_timer);
        loop_source_free(m->exit_timer);
        loop_free(m->loop);
        safe_close(m->cluster_fd);
        safe_close(m->control_fd);
        free(m->listen_address);
        store_close(m->store);
        tls_identity_unref(m->identity);
        scheduler_config_done(&m->config);
        free(m->config_path);
        free(m);
        return NULL;
}

static void on_accept(LoopSource *s, int fd, int error, void *userdata)
{
        Manager *m = userdata;
        bool local = s == m->control_accept;

        if (error < 0) {
                log_warning_errno(error, "Failed to accept a connection on the %s socket: %m",
                                  local ? "control" : "cluster");
                return;
        }
        (void)manager_accept(m, fd, local);
}

static void on_exit_timeout(LoopSource *s, void *userdata)
{
        Manager *m = userdata;

        log_debug("%u connections still flushing, exiting anyway.", m->n_peers);
        loop_exit(m->loop, 0);
}

/* Says goodbye on every connection and exits once their queues are flushed (or after
 * a short bound), so that clients get the last words about their tasks. */
static void drain_done(Manager *m)
{
        Cluster__Goodbye bye = CLUSTER__GOODBYE__INIT;
        Cluster__Envelope env = CLUSTER__ENVELOPE__INIT;

        if (m->exiting)
                return;
        m->exiting = true;
        log_info("Drained, exiting.");
        bye.reason = (char *)"the scheduler is shutting down";
        env.msg_case = CLUSTER__ENVELOPE__MSG_GOODBYE;
        env.goodbye = &bye;
        LIST_FOREACH_SAFE (peers, p, n, m->peers) {
                if (p->kind != PEER_NEW)
                        (void)peer_send(p, &env);
                peer_close(p, "scheduler shutting down");
        }
        if (m->n_peers == 0 ||
            loop_add_timer(m->loop, loop_now(m->loop) + 2 * USEC_PER_SEC, on_exit_timeout, m,
                           &m->exit_timer) < 0)
                loop_exit(m->loop, 0);
}

static void on_drain_timeout(LoopSource *s, void *userdata)
{
        Manager *m = userdata;

        log_notice("Drain timeout reached with %u tasks running: cancelling them.", m->n_running);
        manager_cancel_all_tasks(m, "the scheduler is shutting down");
        m->drain_timer = loop_source_free(m->drain_timer);
        drain_done(m);
}

/* SIGTERM: stop accepting work, let running tasks finish for up to drain_timeout,
 * then cancel what is left and exit 0. A second SIGTERM or SIGINT exits at once. */
static void on_sigterm(LoopSource *s, const struct signalfd_siginfo *si, void *userdata)
{
        Manager *m = userdata;
        int r;

        if (m->draining) {
                log_notice("Second termination signal, exiting now.");
                manager_cancel_all_tasks(m, "the scheduler is shutting down");
                if (m->exiting)
                        loop_exit(m->loop, 0);
                else
                        drain_done(m);
                return;
        }
        m->draining = true;
        (void)notify("STOPPING=1");
        log_info("Received %s, draining (%u tasks running, %u queued).",
                 strsignal((int)si->ssi_signo), m->n_running, m->n_queued);
        m->cluster_accept = loop_source_free(m->cluster_accept);
        m->control_accept = loop_source_free(m->control_accept);
        /* Queued tasks never started: tell their clients now. */
        manager_cancel_all_tasks(m, NULL);
        if (m->n_running == 0) {
                drain_done(m);
                return;
        }
        r = loop_add_timer(m->loop, loop_now(m->loop) + m->config.drain_timeout, on_drain_timeout,
                           m, &m->drain_timer);
        if (r < 0)
                drain_done(m);
}

void manager_update_status(Manager *m)
{
        if (m->exiting) {
                if (m->n_peers == 0)
                        loop_exit(m->loop, 0);
                return;
        }
        if (m->draining && m->n_running == 0 && m->drain_timer) {
                drain_done(m);
                return;
        }
        (void)notifyf("STATUS=%u agents, %u tasks running, %u queued", m->n_agents_connected,
                      m->n_running, m->n_queued);
}

static void on_sighup(LoopSource *s, const struct signalfd_siginfo *si, void *userdata)
{
        (void)manager_reload(userdata);
}

int manager_reload(Manager *m)
{
        SchedulerConfig c;
        int r;

        (void)notify("RELOADING=1");
        r = scheduler_config_init(&c);
        if (r < 0)
                return log_oom();
        r = scheduler_config_load(&c, m->config_path ?: PKGSYSCONFDIR "/scheduler.yaml",
                                  m->config_path != NULL);
        if (r < 0) {
                log_warning("Keeping the running configuration.");
                scheduler_config_done(&c);
                (void)notify("READY=1");
                return r;
        }
        /* Sockets and the state directory are bound at start; everything else applies
         * now. */
        if (!streq(c.listen, m->config.listen) ||
            !streq(c.control_socket, m->config.control_socket) ||
            !streq(c.state_dir, m->config.state_dir))
                log_notice("listen, control_socket and state_dir changes take effect at restart.");
        m->config.auto_approve = c.auto_approve;
        m->config.heartbeat_interval = c.heartbeat_interval;
        m->config.agent_timeout = c.agent_timeout;
        m->config.drain_timeout = c.drain_timeout;
        m->config.max_agents = c.max_agents;
        m->config.max_clients = c.max_clients;
        m->config.max_tasks_per_agent = c.max_tasks_per_agent;
        m->config.max_queued_tasks = c.max_queued_tasks;
        m->config.log_level = c.log_level;
        log_set_max_level(c.log_level);
        scheduler_config_done(&c);
        log_info("Configuration reloaded.");
        (void)notify("READY=1");
        return 0;
}

static void on_sweep(LoopSource *s, void *userdata)
{
        Manager *m = userdata;

        manager_sweep(m);
        (void)loop_timer_set(
                s, loop_now(m->loop) + MIN(m->config.agent_timeout / 4, 250 * USEC_PER_MSEC));
}

static int open_socket(Manager *m, const char *fdname, const char *address, mode_t mode,
                       int *ret_fd)
{
        int fd, r;

        fd = listen_fds_take(fdname);
        if (fd >= 0) {
                log_debug("Using socket '%s' passed by the service manager.", fdname);
                *ret_fd = fd;
                return 0;
        }
        const char *path = startswith(address, "unix:") ?: address;
        if (path[0] == '/') {
                /* A Unix socket's directory may not exist when started by hand. */
                _cleanup_free_ char *dir = strdup(path);
                char *slash;
                if (!dir)
                        return log_oom();
                slash = strrchr(dir, '/');
                if (slash && slash != dir) {
                        *slash = 0;
                        (void)mkdir_p(dir, 0755);
                }
        }
        r = socket_listen(address, 512, mode, &fd);
        if (r < 0)
                return log_error_errno(r, "Failed to listen on %s (%s socket): %m", address,
                                       fdname);
        *ret_fd = fd;
        return 0;
}

int manager_startup(Manager *m)
{
        _cleanup_free_ char *db = NULL;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        char buf[128];
        int r;

        r = loop_new(&m->loop);
        if (r < 0)
                return log_error_errno(r,
                                       "Failed to set up io_uring (is it disabled by "
                                       "kernel.io_uring_disabled or a seccomp filter?): %m");

        r = mkdir_p(m->config.state_dir, 0700);
        if (r < 0)
                return log_error_errno(r, "Failed to create state directory %s: %m",
                                       m->config.state_dir);
        r = tls_identity_load_or_create(m->config.state_dir, "scheduler", m->config.name,
                                        &m->identity);
        if (r < 0)
                return log_error_errno(r,
                                       "Failed to load or create the scheduler's TLS key "
                                       "and certificate in %s: %m",
                                       m->config.state_dir);
        tls_fingerprint_to_hex(tls_identity_fingerprint(m->identity), m->fingerprint);

        db = strprintf("%s/scheduler.db", m->config.state_dir);
        if (!db)
                return log_oom();
        r = store_open(db, &m->store);
        if (r < 0)
                return r;

        (void)listen_fds_collect();
        r = open_socket(m, "cluster", m->config.listen, 0, &m->cluster_fd);
        if (r < 0)
                return r;
        r = open_socket(m, "control", m->config.control_socket, m->config.control_socket_mode,
                        &m->control_fd);
        if (r < 0)
                return r;
        listen_fds_close_unused();

        if (getsockname(m->cluster_fd, (struct sockaddr *)&ss, &sl) >= 0 &&
            socket_address_to_string((struct sockaddr *)&ss, sl, buf, sizeof buf) >= 0)
                m->listen_address = strdup(buf);
        else
                m->listen_address = strdup(m->config.listen);
        if (!m->listen_address)
                return log_oom();

        r = loop_add_accept(m->loop, m->cluster_fd, on_accept, m, &m->cluster_accept);
        if (r < 0)
                return log_error_errno(r, "Failed to accept on the cluster socket: %m");
        r = loop_add_accept(m->loop, m->control_fd, on_accept, m, &m->control_accept);
        if (r < 0)
                return log_error_errno(r, "Failed to accept on the control socket: %m");

        r = daemon_signals_setup(&m->signals, m->loop, on_sigterm, on_sighup, m);
        if (r < 0)
                return r;

        r = loop_add_timer(m->loop, loop_now(m->loop) + 250 * USEC_PER_MSEC, on_sweep, m,
                           &m->sweep_timer);
        if (r < 0)
                return log_error_errno(r, "Failed to add timer: %m");

        m->started = loop_now(m->loop);
        log_info("Scheduler %s of cluster '%s' listening on %s (control socket %s), "
                 "certificate fingerprint %s.",
                 m->config.name, m->config.cluster, m->listen_address, m->config.control_socket,
                 m->fingerprint);
        return 0;
}

int manager_run(Manager *m)
{
        manager_update_status(m);
        return loop_run(m->loop);
}
