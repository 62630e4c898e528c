/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The scheduler's state. Everything hangs off Manager; one io_uring loop drives it.
 *
 * Peers are connections (agents and clients, on the TLS cluster port or the local
 * control socket). Agents outlive their connections: an agent that disconnects or
 * stops heartbeating is "lost" and keeps its name until it reconnects with the same
 * certificate. Tasks are owned by the Manager, referenced by the client that asked and
 * the agent that runs them. */

#include "basic/hashmap.h"
#include "basic/list.h"
#include "basic/time-util.h"
#include "cluster.pb-c.h"
#include "daemon/scheduler-config.h"
#include "daemon/scheduler-store.h"
#include "shared/conn.h"
#include "shared/daemon-util.h"
#include "shared/loop.h"
#include "shared/tls.h"

#define PROTOCOL_VERSION 1
#define PROTOCOL_MIN_VERSION 1
#define HELLO_TIMEOUT_USEC (10 * USEC_PER_SEC)
/* Connections that have not been admitted yet (no hello, or refused and closing), per
 * socket: the cluster port's cannot lock out the control socket. */
#define PENDING_REMOTE_MAX 256U
#define PENDING_LOCAL_MAX 512U
/* Clients on the control socket admitted beyond max_clients. */
#define CLIENT_LOCAL_RESERVE 16U
/* The frame limit until a peer is admitted: a Hello is a few hundred bytes. */
#define PENDING_MAX_FRAME (64U * 1024)
/* Sanity bounds on what an agent may claim about itself. */
#define AGENT_MAX_CPUS 65536U
#define AGENT_MAX_MEMORY (UINT64_C(1) << 50) /* 1 PiB */
#define AGENT_MAX_TASKS 100000U
#define TASK_OUTPUT_WINDOW_DEFAULT (1024U * 1024U)
#define TASK_OUTPUT_WINDOW_MAX (16U * 1024U * 1024U)
/* Entries of AgentInfo.features and .models the scheduler keeps. */
#define AGENT_INFO_LIST_MAX 64U
/* Memory all tasks' specs may take (queued or running), whatever max_queued_tasks
 * says: a spec can be over a megabyte (128 KiB of argv, 1 MiB of env). */
#define TASKS_BYTES_MAX (128U * 1024 * 1024)

typedef struct Manager Manager;
typedef struct Peer Peer;
typedef struct Agent Agent;
typedef struct Task Task;

typedef enum PeerKind {
        PEER_NEW,
        PEER_AGENT,
        PEER_CLIENT,
} PeerKind;

struct Peer {
        Manager *manager;
        Conn *conn;
        PeerKind kind;
        bool local; /* control socket */
        bool closing;
        bool pending; /* counted in Manager.n_pending_{local,remote} */
        uint64_t id;
        char *name;
        Agent *agent; /* kind == PEER_AGENT */
        Hashmap *tasks; /* kind == PEER_CLIENT: task_id -> Task it started */
        LoopSource *hello_timer;
        LIST_FIELDS(Peer, peers);
};

typedef enum AgentState {
        AGENT_READY,
        AGENT_LOST,
        AGENT_DRAINING,
} AgentState;

struct Agent {
        Manager *manager;
        char *name;
        char fingerprint[TLS_FINGERPRINT_HEX_SIZE];
        Peer *peer; /* NULL when lost */
        AgentState state;
        char *address;
        Cluster__AgentInfo *info; /* unpacked copy; NULL until it sent one */
        Cluster__Load *load; /* unpacked copy of the last heartbeat's load */
        usec_t last_heartbeat; /* CLOCK_MONOTONIC */
        usec_t connected_wall; /* CLOCK_REALTIME */
        Hashmap *tasks; /* task_id -> Task running there */
        uint32_t used_cpus;
        uint64_t used_memory;
};

typedef enum TaskState {
        TASK_QUEUED,
        TASK_STARTING,
        TASK_RUNNING,
        TASK_DONE,
} TaskState;

struct Task {
        Manager *manager;
        uint64_t id;
        TaskState state;
        Cluster__TaskSpec *spec; /* unpacked copy */
        Peer *client; /* NULL once the client went away */
        uint64_t request_id;
        Agent *agent;
        usec_t submitted; /* CLOCK_MONOTONIC */
        size_t bytes; /* charged to Manager.tasks_bytes */
        uint64_t output_unacked; /* output relayed to the client, not acknowledged yet */
        uint64_t input_unacked; /* stdin relayed to the agent, not acknowledged yet */
        int32_t cancel_signal; /* the last TaskCancel relayed (0 = none yet: SIGTERM) */
        bool cancel_sent;
        LIST_FIELDS(Task, queue);
};

struct Manager {
        SchedulerConfig config;
        char *config_path;
        Loop *loop;
        Store *store;
        TlsIdentity *identity;
        char fingerprint[TLS_FINGERPRINT_HEX_SIZE];

        int cluster_fd, control_fd;
        char *listen_address; /* actual bound address */
        LoopSource *cluster_accept, *control_accept;
        DaemonSignals signals;
        LoopSource *sweep_timer, *drain_timer;

        LIST_HEAD(Peer, peers);
        unsigned n_peers, n_clients, n_agents_connected;
        unsigned n_pending_local, n_pending_remote;
        uint64_t next_peer_id;
        Hashmap *agents; /* name -> Agent */
        Hashmap *tasks; /* task_id -> Task */
        LIST_HEAD(Task, queue);
        Task *queue_tail;
        unsigned n_queued, n_running;
        uint64_t next_task_id;
        uint64_t tasks_total;
        size_t tasks_bytes; /* estimated memory of every Task and its spec */
        usec_t started; /* CLOCK_MONOTONIC */
        bool draining;
        bool exiting; /* closing every connection, then exit */
        LoopSource *exit_timer;
};

int manager_new(const char *config_path, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);
int manager_startup(Manager *m);
int manager_run(Manager *m);
int manager_reload(Manager *m);

/* scheduler-peers.c */
void peer_free(Peer *p);
void peer_close(Peer *p, const char *reason);
void peer_admitted(Peer *p);
int peer_send(Peer *p, const Cluster__Envelope *msg);
int peer_send_error(Peer *p, Cluster__ErrorCode code, uint64_t request_id, uint64_t task_id,
                    const char *format, ...) _printf_(5, 6);
int manager_accept(Manager *m, int fd, bool local);
void manager_update_status(Manager *m);

/* scheduler-agents.c */
int agent_hello(Peer *p, const Cluster__Hello *hello);
void agent_handle_message(Peer *p, const Cluster__Envelope *msg);
void agent_disconnected(Agent *a, const char *reason);
Agent *agent_free(Agent *a);
void manager_sweep(Manager *m);

/* scheduler-tasks.c */
void client_handle_run(Peer *p, const Cluster__RunRequest *req);
void client_handle_task_message(Peer *p, const Cluster__Envelope *msg);
void task_agent_message(Agent *a, const Cluster__Envelope *msg);
void task_client_gone(Task *t);
void task_agent_lost(Task *t, const char *reason);
void manager_dispatch_queue(Manager *m);
Task *task_free(Task *t);
void manager_cancel_all_tasks(Manager *m, const char *reason);

/* scheduler-control.c */
void client_handle_status(Peer *p, const Cluster__StatusRequest *req);
void client_handle_token(Peer *p, const Cluster__TokenRequest *req);
