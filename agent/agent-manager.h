/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The agent's state: one connection to the scheduler (re-made with back-off and jitter
 * whenever it drops), the tasks it runs, and its heartbeat. */

#include "agent/agent-config.h"
#include "agent/agent-exec.h"
#include "agent/agent-host.h"
#include "agent/probe.h"
#include "basic/hashmap.h"
#include "basic/time-util.h"
#include "cluster.pb-c.h"
#include "shared/conn.h"
#include "shared/daemon-util.h"
#include "shared/loop.h"
#include "shared/stream.h"
#include "shared/tls.h"

#define PROTOCOL_VERSION 1
#define PROTOCOL_MIN_VERSION 1
/* SIGTERM lets running tasks finish this long (below the unit's TimeoutStopSec=30s). */
#define DRAIN_TIMEOUT_USEC (25 * USEC_PER_SEC)

typedef struct Manager Manager;
typedef struct AgentTask AgentTask;

typedef enum LinkState {
        LINK_DISCONNECTED,
        LINK_CONNECTING, /* TCP + TLS + hello sent */
        LINK_READY, /* welcomed */
} LinkState;

struct AgentTask {
        Manager *manager;
        uint64_t id;
        Cluster__TaskSpec *spec;
        ExecProcess proc;
        LoopSource *child;
        Stream *out, *err, *in;
        char *workdir;
        int64_t credit; /* output bytes we may still send */
        uint64_t input_unacked; /* stdin bytes written but not yet acknowledged */
        bool exited, out_eof, err_eof, paused, finished;
        siginfo_t si;
        struct rusage ru;
        Cluster__ExitKind end_reason; /* TIMEOUT / CANCELED when we killed it */
        LoopSource *timeout_timer, *kill_timer, *linger_timer;
        usec_t started;
};

struct Manager {
        AgentConfig config;
        char *config_path;
        Loop *loop;
        TlsIdentity *identity;
        HostInfo host;
        Probes *probes;
        LoopSource *probe_events;

        Conn *conn;
        LinkState link;
        char *pin_path;
        usec_t backoff;
        usec_t heartbeat_interval;
        uint64_t heartbeat_seq;
        LoopSource *reconnect_timer, *heartbeat_timer, *drain_timer;
        DaemonSignals signals;
        bool exiting;

        Hashmap *tasks; /* id -> AgentTask */
        uint32_t used_cpus;
        uint64_t used_memory;
        uint32_t max_tasks;

        bool change_user;
        uid_t run_uid;
        gid_t run_gid;
        char *task_dir;
        char *cgroup;
        char *token; /* from token or token_file */
};

int manager_new(const char *config_path, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);
int manager_startup(Manager *m);
int manager_run(Manager *m);
int manager_send(Manager *m, const Cluster__Envelope *msg);
/* Draining is over (or cut short): kill what is left, leave the scheduler, exit. */
void manager_drained(Manager *m);

/* agent-tasks.c */
void task_handle_start(Manager *m, const Cluster__TaskStart *ts);
void task_handle_message(Manager *m, const Cluster__Envelope *msg);
void tasks_kill_all(Manager *m);
void tasks_resume_output(Manager *m);
AgentTask *agent_task_free(AgentTask *t);
