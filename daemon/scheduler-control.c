/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "basic/alloc-util.h"
#include "basic/string-util.h"
#include "daemon/scheduler-manager.h"
#include "shared/log.h"

static const char *agent_state_name(const Agent *a)
{
        switch (a->state) {
        case AGENT_READY:
                return a->info ? "ready" : "joining";
        case AGENT_DRAINING:
                return "draining";
        case AGENT_LOST:
        default:
                return "lost";
        }
}

void client_handle_status(Peer *p, const Cluster__StatusRequest *req)
{
        Manager *m = p->manager;
        Cluster__StatusReply reply = CLUSTER__STATUS_REPLY__INIT;
        Cluster__Envelope env = CLUSTER__ENVELOPE__INIT;
        _cleanup_free_ Cluster__WorkerStatus *ws = NULL;
        _cleanup_free_ Cluster__WorkerStatus **wsp = NULL;
        _cleanup_free_ Cluster__AgentInfo *lean = NULL;
        size_t n = 0, cap = hashmap_size(m->agents);
        usec_t t = loop_now(m->loop);
        Agent *a;

        ws = new0(Cluster__WorkerStatus, cap ?: 1);
        wsp = new0(Cluster__WorkerStatus *, cap ?: 1);
        if (!ws || !wsp) {
                (void)peer_send_error(p, CLUSTER__ERROR_CODE__ERROR_INTERNAL, req->request_id, 0,
                                      "out of memory");
                return;
        }
        HASHMAP_FOREACH (a, m->agents) {
                if (n >= cap)
                        break;
                Cluster__WorkerStatus *w = &ws[n];
                cluster__worker_status__init(w);
                w->name = a->name;
                w->address = (char *)strempty(a->address);
                w->state = (char *)agent_state_name(a);
                w->info = a->info;
                w->load = a->load;
                w->running_tasks = (uint32_t)hashmap_size(a->tasks);
                w->heartbeat_age_ms = (t - MIN(t, a->last_heartbeat)) / USEC_PER_MSEC;
                w->connected_usec = a->connected_wall;
                w->fingerprint = a->fingerprint;
                wsp[n] = w;
                n++;
        }
        reply.request_id = req->request_id;
        reply.n_workers = n;
        reply.workers = wsp;
        reply.scheduler = m->config.name;
        reply.cluster = m->config.cluster;
        reply.version = (char *)PACKAGE_VERSION;
        reply.uptime_usec = t - m->started;
        reply.running_tasks = m->n_running;
        reply.queued_tasks = m->n_queued;
        reply.tasks_total = m->tasks_total;
        reply.fingerprint = m->fingerprint;
        reply.listen = m->listen_address;
        env.msg_case = CLUSTER__ENVELOPE__MSG_STATUS_REPLY;
        env.status_reply = &reply;
        if (cluster__envelope__get_packed_size(&env) > m->config.max_frame) {
                /* Many agents with long feature and model lists: answer without the
                 * lists rather than not at all (the send would fail, and close the
                 * client). */
                lean = new0(Cluster__AgentInfo, n ?: 1);
                if (!lean) {
                        (void)peer_send_error(p, CLUSTER__ERROR_CODE__ERROR_INTERNAL,
                                              req->request_id, 0, "out of memory");
                        return;
                }
                for (size_t i = 0; i < n; i++) {
                        if (!ws[i].info)
                                continue;
                        lean[i] = *ws[i].info;
                        lean[i].n_features = lean[i].n_models = 0;
                        lean[i].features = lean[i].models = NULL;
                        ws[i].info = &lean[i];
                }
                if (cluster__envelope__get_packed_size(&env) > m->config.max_frame) {
                        (void)peer_send_error(
                                p, CLUSTER__ERROR_CODE__ERROR_TOO_LARGE, req->request_id, 0,
                                "the status of %zu agents does not fit in a frame", n);
                        return;
                }
        }
        (void)peer_send(p, &env);
}

static void token_reply(Peer *p, uint64_t request_id, StoreToken *l, size_t n, const char *secret)
{
        Cluster__TokenReply reply = CLUSTER__TOKEN_REPLY__INIT;
        Cluster__Envelope env = CLUSTER__ENVELOPE__INIT;
        _cleanup_free_ Cluster__Token *tk = new0(Cluster__Token, n ?: 1);
        _cleanup_free_ Cluster__Token **tkp = new0(Cluster__Token *, n ?: 1);

        if (!tk || !tkp) {
                (void)peer_send_error(p, CLUSTER__ERROR_CODE__ERROR_INTERNAL, request_id, 0,
                                      "out of memory");
                return;
        }
        for (size_t i = 0; i < n; i++) {
                cluster__token__init(&tk[i]);
                tk[i].id = l[i].id;
                tk[i].secret = (char *)(secret ?: "");
                tk[i].description = l[i].description;
                tk[i].created_usec = l[i].created_usec;
                tk[i].expires_usec = l[i].expires_usec;
                tk[i].uses = l[i].uses;
                tk[i].revoked = l[i].revoked;
                tkp[i] = &tk[i];
        }
        reply.request_id = request_id;
        reply.n_tokens = n;
        reply.tokens = tkp;
        env.msg_case = CLUSTER__ENVELOPE__MSG_TOKEN_REPLY;
        env.token_reply = &reply;
        (void)peer_send(p, &env);
}

void client_handle_token(Peer *p, const Cluster__TokenRequest *req)
{
        Manager *m = p->manager;
        int r;

        if (!p->local) {
                (void)peer_send_error(p, CLUSTER__ERROR_CODE__ERROR_UNAUTHORIZED, req->request_id,
                                      0,
                                      "tokens are managed through the local control socket only");
                return;
        }
        switch (req->op) {
        case CLUSTER__TOKEN_OP__TOKEN_OP_CREATE: {
                _cleanup_free_ char *secret = NULL;
                StoreToken info;

                if (strlen(strempty(req->description)) > 200) {
                        (void)peer_send_error(p, CLUSTER__ERROR_CODE__ERROR_INVALID,
                                              req->request_id, 0, "description too long");
                        return;
                }
                r = store_token_create(m->store, req->description, req->ttl_usec, &secret, &info);
                if (r < 0) {
                        (void)peer_send_error(p, CLUSTER__ERROR_CODE__ERROR_INTERNAL,
                                              req->request_id, 0, "cannot create token: %s",
                                              strerror(-r));
                        return;
                }
                log_info("Join token %s created.", info.id);
                token_reply(p, req->request_id, &info, 1, secret);
                explicit_bzero(secret, strlen(secret));
                free(info.description);
                return;
        }
        case CLUSTER__TOKEN_OP__TOKEN_OP_LIST: {
                StoreToken *l = NULL;
                size_t n = 0;

                r = store_token_list(m->store, &l, &n);
                if (r < 0) {
                        (void)peer_send_error(p, CLUSTER__ERROR_CODE__ERROR_INTERNAL,
                                              req->request_id, 0, "cannot list tokens: %s",
                                              strerror(-r));
                        return;
                }
                token_reply(p, req->request_id, l, n, NULL);
                store_token_list_free(l, n);
                return;
        }
        case CLUSTER__TOKEN_OP__TOKEN_OP_REVOKE:
                r = store_token_revoke(m->store, strempty(req->id));
                if (r == -ENOENT) {
                        (void)peer_send_error(p, CLUSTER__ERROR_CODE__ERROR_NOT_FOUND,
                                              req->request_id, 0, "no token with id '%s'",
                                              strempty(req->id));
                        return;
                }
                if (r < 0) {
                        (void)peer_send_error(p, CLUSTER__ERROR_CODE__ERROR_INTERNAL,
                                              req->request_id, 0, "cannot revoke token: %s",
                                              strerror(-r));
                        return;
                }
                log_info("Join token %s revoked.", req->id);
                token_reply(p, req->request_id, NULL, 0, NULL);
                return;
        default:
                (void)peer_send_error(p, CLUSTER__ERROR_CODE__ERROR_INVALID, req->request_id, 0,
                                      "unknown token operation");
                return;
        }
}
