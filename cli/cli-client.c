/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <string.h>

#include "basic/alloc-util.h"
#include "basic/string-util.h"
#include "cli/cli.h"
#include "shared/log.h"
#include "shared/proto-util.h"

#define PROTOCOL_VERSION 1

static void on_message(Conn *conn, const Cluster__Envelope *msg, void *userdata)
{
        Client *c = userdata;

        if (!c->welcomed) {
                if (msg->msg_case == CLUSTER__ENVELOPE__MSG_WELCOME) {
                        c->welcomed = true;
                        return;
                }
                if (msg->msg_case == CLUSTER__ENVELOPE__MSG_ERROR) {
                        log_error("The scheduler refused the connection: %s",
                                  strna(msg->error->message));
                        conn_close(conn, "refused");
                        c->close_error = -EACCES;
                        return;
                }
        }
        if (c->want_request_id && !c->reply) {
                uint64_t id = 0;
                switch (msg->msg_case) {
                case CLUSTER__ENVELOPE__MSG_ERROR:
                        id = msg->error->request_id;
                        break;
                case CLUSTER__ENVELOPE__MSG_STATUS_REPLY:
                        id = msg->status_reply->request_id;
                        break;
                case CLUSTER__ENVELOPE__MSG_TOKEN_REPLY:
                        id = msg->token_reply->request_id;
                        break;
                default:
                        break;
                }
                if (id == c->want_request_id) {
                        c->reply = PROTO_COPY(msg);
                        if (!c->reply) {
                                log_oom();
                                conn_close(conn, "out of memory");
                        }
                }
        }
        if (c->on_message)
                c->on_message(c, msg, c->userdata);
}

static void on_close(Conn *conn, int error, const char *reason, void *userdata)
{
        Client *c = userdata;

        c->closed = true;
        if (c->close_error == 0)
                c->close_error = error < 0 ? error : -ECONNRESET;
        free(c->close_reason);
        c->close_reason = reason ? strdup(reason) : NULL;
}

static const ConnOps client_ops = {
        .on_message = on_message,
        .on_close = on_close,
};

Client *client_free(Client *c)
{
        if (!c)
                return NULL;
        conn_free(c->conn);
        loop_free(c->loop);
        if (c->reply)
                cluster__envelope__free_unpacked(c->reply, NULL);
        free(c->close_reason);
        free(c);
        return NULL;
}

static const char *socket_address(void)
{
        const char *e = getenv("CLUSTER_AI_SOCKET");
        if (arg_socket)
                return arg_socket;
        return isempty(e) ? RUNDIR "/scheduler.sock" : e;
}

int client_connect(Client **ret)
{
        _cleanup_(client_freep) Client *c = new0(Client, 1);
        Cluster__Hello hello = CLUSTER__HELLO__INIT;
        Cluster__Envelope env = CLUSTER__ENVELOPE__INIT;
        ConnConfig cfg = {.tls = NULL};
        const char *addr = socket_address();
        int r;

        if (!c)
                return log_oom();
        r = loop_new(&c->loop);
        if (r < 0)
                return log_error_errno(r, "Failed to set up io_uring: %m");
        r = conn_connect(c->loop, addr, &cfg, &client_ops, c, &c->conn);
        if (r < 0) {
                log_error_errno(r, "Cannot reach the scheduler at %s: %m", addr);
                return -EHOSTUNREACH;
        }
        hello.version = PROTOCOL_VERSION;
        hello.min_version = PROTOCOL_VERSION;
        hello.role = CLUSTER__ROLE__ROLE_CLIENT;
        hello.name = (char *)"cluster-ai";
        hello.software = (char *)"cluster-ai " PACKAGE_VERSION;
        env.msg_case = CLUSTER__ENVELOPE__MSG_HELLO;
        env.hello = &hello;
        r = conn_send(c->conn, &env);
        /* -ENOTCONN: the connect failed; on_close brings the reason from the loop. */
        if (r < 0 && r != -ENOTCONN)
                return log_error_errno(r, "Failed to talk to the scheduler: %m");
        while (!c->welcomed && !c->closed) {
                r = loop_run_once(c->loop, USEC_INFINITY);
                if (r < 0)
                        return log_error_errno(r, "Event loop failed: %m");
        }
        if (!c->welcomed) {
                if (c->close_error != -EACCES)
                        log_error("Cannot reach the scheduler at %s: %s%s", addr,
                                  c->close_reason ?: strerror(-c->close_error),
                                  c->close_error == -ENOENT || c->close_error == -ECONNREFUSED
                                          ? " (is cluster-scheduler running?)"
                                          : "");
                return -EHOSTUNREACH;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

int client_request(Client *c, const Cluster__Envelope *req, uint64_t request_id,
                   Cluster__Envelope **ret_reply)
{
        int r;

        c->want_request_id = request_id;
        r = conn_send(c->conn, req);
        if (r < 0)
                return log_error_errno(r, "Failed to send the request: %m");
        while (!c->reply && !c->closed) {
                r = loop_run_once(c->loop, USEC_INFINITY);
                if (r < 0)
                        return log_error_errno(r, "Event loop failed: %m");
        }
        if (!c->reply) {
                log_error("The scheduler closed the connection: %s",
                          c->close_reason ?: strerror(-c->close_error));
                return -ECONNRESET;
        }
        *ret_reply = TAKE_PTR(c->reply);
        c->want_request_id = 0;
        return (*ret_reply)->msg_case == CLUSTER__ENVELOPE__MSG_ERROR ? -EREMOTEIO : 0;
}
