/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "basic/alloc-util.h"
#include "basic/fd-util.h"
#include "basic/string-util.h"
#include "daemon/scheduler-manager.h"
#include "shared/frame.h"
#include "shared/log.h"

static const char *peer_label(const Peer *p)
{
        return p->name ?: conn_peer_address(p->conn);
}

static void peer_unpend(Peer *p)
{
        Manager *m = p->manager;

        if (!p->pending)
                return;
        p->pending = false;
        if (p->local)
                m->n_pending_local--;
        else
                m->n_pending_remote--;
}

/* p is an agent or a client now: it no longer counts against the pending bound, and
 * may send frames up to max_frame. */
void peer_admitted(Peer *p)
{
        if (!p->pending)
                return;
        peer_unpend(p);
        conn_set_max_frame(p->conn, p->manager->config.max_frame);
}

void peer_free(Peer *p)
{
        Manager *m;
        Task *t;

        if (!p)
                return;
        m = p->manager;
        if (p->agent) {
                p->agent->peer = NULL;
                agent_disconnected(p->agent, "connection closed");
                p->agent = NULL;
        }
        if (p->tasks) {
                while ((t = hashmap_first(p->tasks)))
                        task_client_gone(t); /* removes t from p->tasks */
                hashmap_free(p->tasks);
        }
        if (p->kind == PEER_CLIENT && m->n_clients > 0)
                m->n_clients--;
        peer_unpend(p);
        LIST_REMOVE(peers, m->peers, p);
        m->n_peers--;
        loop_source_free(p->hello_timer);
        conn_free(p->conn);
        free(p->name);
        free(p);
}

void peer_close(Peer *p, const char *reason)
{
        if (p->closing)
                return;
        p->closing = true;
        conn_close(p->conn, reason);
}

int peer_send(Peer *p, const Cluster__Envelope *msg)
{
        int r;

        if (p->closing)
                return -ENOTCONN;
        r = conn_send(p->conn, msg);
        if (r < 0) {
                log_warning_errno(r, "Failed to send %s to %s, closing: %m",
                                  envelope_type_name(msg), peer_label(p));
                peer_close(p, "send failed");
        }
        return r;
}

int peer_send_error(Peer *p, Cluster__ErrorCode code, uint64_t request_id, uint64_t task_id,
                    const char *format, ...)
{
        Cluster__Error e = CLUSTER__ERROR__INIT;
        Cluster__Envelope env = CLUSTER__ENVELOPE__INIT;
        char text[512];
        va_list ap;

        va_start(ap, format);
        vsnprintf(text, sizeof text, format, ap);
        va_end(ap);
        e.code = code;
        e.message = text;
        e.request_id = request_id;
        e.task_id = task_id;
        env.msg_case = CLUSTER__ENVELOPE__MSG_ERROR;
        env.error = &e;
        return peer_send(p, &env);
}

static void refuse(Peer *p, Cluster__ErrorCode code, const char *text)
{
        log_notice("Refusing %s: %s", conn_peer_address(p->conn), text);
        (void)conn_send_error_and_close(p->conn, code, 0, "%s", text);
        p->closing = true;
}

static int client_hello(Peer *p, const Cluster__Hello *hello)
{
        Manager *m = p->manager;
        Cluster__Welcome w = CLUSTER__WELCOME__INIT;
        Cluster__Envelope env = CLUSTER__ENVELOPE__INIT;
        int r;

        if (!p->local) {
                /* Remote clients prove themselves with a token, like agents. */
                r = store_token_check(m->store, hello->token);
                if (r < 0) {
                        refuse(p, CLUSTER__ERROR_CODE__ERROR_UNAUTHORIZED,
                               "remote clients need a valid token");
                        return 0;
                }
        }
        /* Remote clients fill at most max_clients; the control socket has a few
         * slots more, so that they cannot lock out 'cluster-ai status' on this host. */
        if (m->n_clients >= m->config.max_clients + (p->local ? CLIENT_LOCAL_RESERVE : 0)) {
                refuse(p, CLUSTER__ERROR_CODE__ERROR_BUSY, "too many clients connected");
                return 0;
        }
        p->kind = PEER_CLIENT;
        peer_admitted(p);
        m->n_clients++;
        p->tasks = hashmap_new(HASHMAP_U64);
        if (!p->tasks)
                return log_oom();
        if (!isempty(hello->name) && !p->name)
                p->name = strdup(hello->name);

        w.version = PROTOCOL_VERSION;
        w.scheduler = m->config.name;
        w.cluster = m->config.cluster;
        w.heartbeat_interval_ms = (uint32_t)(m->config.heartbeat_interval / USEC_PER_MSEC);
        w.session_id = p->id;
        env.msg_case = CLUSTER__ENVELOPE__MSG_WELCOME;
        env.welcome = &w;
        return peer_send(p, &env);
}

static void handle_hello(Peer *p, const Cluster__Hello *hello)
{
        Manager *m = p->manager;
        char text[256];

        p->hello_timer = loop_source_free(p->hello_timer);
        if (hello->version < PROTOCOL_MIN_VERSION || hello->min_version > PROTOCOL_VERSION) {
                snprintf(text, sizeof text,
                         "incompatible protocol: peer speaks versions %u..%u, this scheduler "
                         "%u..%u",
                         hello->min_version, hello->version, PROTOCOL_MIN_VERSION,
                         PROTOCOL_VERSION);
                refuse(p, CLUSTER__ERROR_CODE__ERROR_VERSION, text);
                return;
        }
        if (!isempty(hello->cluster) && !streq(hello->cluster, m->config.cluster)) {
                snprintf(text, sizeof text, "this scheduler serves cluster '%s', not '%s'",
                         m->config.cluster, hello->cluster);
                refuse(p, CLUSTER__ERROR_CODE__ERROR_UNAUTHORIZED, text);
                return;
        }
        if (m->draining) {
                refuse(p, CLUSTER__ERROR_CODE__ERROR_SHUTTING_DOWN,
                       "the scheduler is shutting down");
                return;
        }
        switch (hello->role) {
        case CLUSTER__ROLE__ROLE_AGENT:
                if (p->local) {
                        refuse(p, CLUSTER__ERROR_CODE__ERROR_PROTOCOL,
                               "agents connect to the cluster port, not the control socket");
                        return;
                }
                (void)agent_hello(p, hello);
                return;
        case CLUSTER__ROLE__ROLE_CLIENT:
                (void)client_hello(p, hello);
                return;
        default:
                refuse(p, CLUSTER__ERROR_CODE__ERROR_PROTOCOL, "unknown role in hello");
                return;
        }
}

static void handle_client_message(Peer *p, const Cluster__Envelope *msg)
{
        switch (msg->msg_case) {
        case CLUSTER__ENVELOPE__MSG_RUN_REQUEST:
                client_handle_run(p, msg->run_request);
                break;
        case CLUSTER__ENVELOPE__MSG_TASK_INPUT:
        case CLUSTER__ENVELOPE__MSG_TASK_ACK:
        case CLUSTER__ENVELOPE__MSG_TASK_CANCEL:
                client_handle_task_message(p, msg);
                break;
        case CLUSTER__ENVELOPE__MSG_STATUS_REQUEST:
                client_handle_status(p, msg->status_request);
                break;
        case CLUSTER__ENVELOPE__MSG_TOKEN_REQUEST:
                client_handle_token(p, msg->token_request);
                break;
        case CLUSTER__ENVELOPE__MSG_PING: {
                Cluster__Pong pong = CLUSTER__PONG__INIT;
                Cluster__Envelope env = CLUSTER__ENVELOPE__INIT;
                pong.nonce = msg->ping->nonce;
                pong.sent_usec = msg->ping->sent_usec;
                env.msg_case = CLUSTER__ENVELOPE__MSG_PONG;
                env.pong = &pong;
                (void)peer_send(p, &env);
                break;
        }
        case CLUSTER__ENVELOPE__MSG_GOODBYE:
                peer_close(p, "client said goodbye");
                break;
        default:
                (void)peer_send_error(p, CLUSTER__ERROR_CODE__ERROR_PROTOCOL, 0, 0,
                                      "unexpected %s from a client", envelope_type_name(msg));
                break;
        }
}

static void on_message(Conn *c, const Cluster__Envelope *msg, void *userdata)
{
        Peer *p = userdata;
        _cleanup_free_ char *why = NULL;

        if (p->closing)
                return;
        if (envelope_check(msg, &why) < 0) {
                log_notice("Invalid %s from %s: %s", envelope_type_name(msg), peer_label(p),
                           strna(why));
                (void)conn_send_error_and_close(p->conn, CLUSTER__ERROR_CODE__ERROR_PROTOCOL, 0,
                                                "invalid %s: %s", envelope_type_name(msg),
                                                strna(why));
                p->closing = true;
                return;
        }
        switch (p->kind) {
        case PEER_NEW:
                if (msg->msg_case != CLUSTER__ENVELOPE__MSG_HELLO) {
                        refuse(p, CLUSTER__ERROR_CODE__ERROR_PROTOCOL,
                               "expected hello as the first message");
                        return;
                }
                handle_hello(p, msg->hello);
                break;
        case PEER_AGENT:
                agent_handle_message(p, msg);
                break;
        case PEER_CLIENT:
                handle_client_message(p, msg);
                /* A client that sends requests without reading the answers: stop
                 * reading it until it catches up, rather than queueing answers up to
                 * the connection's hard limit (64 MiB each). on_drain resumes. Task
                 * control (acks, input, cancels) gets no answer: a client behind on a
                 * task's output can still cancel it. */
                if (!p->closing && conn_congested(p->conn) &&
                    msg->msg_case != CLUSTER__ENVELOPE__MSG_TASK_ACK &&
                    msg->msg_case != CLUSTER__ENVELOPE__MSG_TASK_INPUT &&
                    msg->msg_case != CLUSTER__ENVELOPE__MSG_TASK_CANCEL)
                        conn_pause_read(p->conn);
                break;
        }
}

static void on_drain(Conn *c, void *userdata)
{
        Peer *p = userdata;

        if (p->kind == PEER_CLIENT && !p->closing)
                conn_resume_read(p->conn);
}

static void on_close(Conn *c, int error, const char *reason, void *userdata)
{
        Peer *p = userdata;
        Manager *m = p->manager;

        if (error < 0)
                log_full(p->kind == PEER_NEW ? LOG_INFO : LOG_NOTICE,
                         "Connection from %s closed: %s", peer_label(p), strna(reason));
        else
                log_debug("Connection from %s closed: %s", peer_label(p), strna(reason));
        peer_free(p);
        manager_update_status(m);
}

static void on_hello_timeout(LoopSource *s, void *userdata)
{
        Peer *p = userdata;

        p->hello_timer = loop_source_free(p->hello_timer);
        refuse(p, CLUSTER__ERROR_CODE__ERROR_PROTOCOL, "no hello within 10 s");
}

static const ConnOps peer_conn_ops = {
        .on_message = on_message,
        .on_drain = on_drain,
        .on_close = on_close,
};

int manager_accept(Manager *m, int fd, bool local)
{
        _cleanup_close_ int fd_close = fd;
        ConnConfig cfg = {
                .tls = local ? NULL : m->identity,
                .server = true,
                .max_frame = MIN(m->config.max_frame, (uint64_t)PENDING_MAX_FRAME),
        };
        Peer *p;
        int r;

        /* Bound what unauthenticated peers can make us hold. Agents and clients are
         * bounded when they say hello; before that, each socket has its own bound, so
         * that silent connections to the cluster port never lock out the local control
         * socket (they used to share one limit of max_agents + max_clients + 64). */
        if (local ? m->n_pending_local >= PENDING_LOCAL_MAX
                  : m->n_pending_remote >= PENDING_REMOTE_MAX) {
                log_warning("Too many connections on the %s socket that did not say hello "
                            "(%u), refusing a new one.",
                            local ? "control" : "cluster",
                            local ? m->n_pending_local : m->n_pending_remote);
                return -EMFILE;
        }
        p = new0(Peer, 1);
        if (!p)
                return log_oom();
        p->manager = m;
        p->local = local;
        p->id = m->next_peer_id++;
        r = conn_new(m->loop, TAKE_FD(fd_close), &cfg, &peer_conn_ops, p, &p->conn);
        if (r < 0) {
                free(p);
                return log_error_errno(r, "Failed to set up connection: %m");
        }
        LIST_PREPEND(peers, m->peers, p);
        m->n_peers++;
        p->pending = true;
        if (local)
                m->n_pending_local++;
        else
                m->n_pending_remote++;
        r = loop_add_timer(m->loop, loop_now(m->loop) + HELLO_TIMEOUT_USEC, on_hello_timeout, p,
                           &p->hello_timer);
        if (r < 0) {
                peer_free(p);
                return log_error_errno(r, "Failed to add timer: %m");
        }
        log_debug("New %s connection from %s.", local ? "control" : "cluster",
                  conn_peer_address(p->conn));
        return 0;
}
