/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The cluster-ai command: shared state of one invocation and the connection helper. */

#include "basic/macro.h"
#include "cluster.pb-c.h"
#include "shared/conn.h"
#include "shared/loop.h"

/* Exit codes of cluster-ai (documented in docs/cli.md):
 *   0 success, 1 failure, 2 usage error, 3 the scheduler cannot be reached;
 *   run: the command's own exit code, 128+N when it died of signal N, 124 timeout,
 *   125 a cluster error (unreachable scheduler, lost agent, no capacity), 126 not
 *   executable, 127 not found. */
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3
#define EXIT_RUN_TIMEOUT 124
#define EXIT_RUN_CLUSTER 125

extern const char *arg_socket;
extern bool arg_json;

typedef struct Client Client;
typedef void (*client_message_fn)(Client *c, const Cluster__Envelope *msg, void *userdata);

struct Client {
        Loop *loop;
        Conn *conn;
        bool welcomed, closed;
        int close_error;
        char *close_reason;
        Cluster__Envelope *reply; /* client_request's answer */
        uint64_t want_request_id;
        client_message_fn on_message; /* after the welcome, for streaming commands */
        void *userdata;
};

/* Connects to the scheduler's control socket and says hello. Prints why on failure. */
int client_connect(Client **ret);
Client *client_free(Client *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Client *, client_free);
/* Sends req (whose request_id the caller set) and waits for the answer with the same
 * request_id (an Error answer is returned as -EREMOTEIO with *ret_reply set). */
int client_request(Client *c, const Cluster__Envelope *req, uint64_t request_id,
                   Cluster__Envelope **ret_reply);

int verb_status(int argc, char **argv);
int verb_workers(int argc, char **argv);
int verb_run(int argc, char **argv);
int verb_token(int argc, char **argv);
int verb_model(int argc, char **argv);
