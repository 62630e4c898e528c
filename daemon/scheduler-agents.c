/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "basic/alloc-util.h"
#include "basic/string-util.h"
#include "daemon/scheduler-manager.h"
#include "shared/frame.h"
#include "shared/log.h"
#include "shared/proto-util.h"

Agent *agent_free(Agent *a)
{
        if (!a)
                return NULL;
        if (a->peer)
                a->peer->agent = NULL;
        hashmap_free(a->tasks);
        if (a->info)
                cluster__agent_info__free_unpacked(a->info, NULL);
        if (a->load)
                cluster__load__free_unpacked(a->load, NULL);
        free(a->address);
        free(a->name);
        free(a);
        return NULL;
}

static int agent_get_or_new(Manager *m, const char *name, Agent **ret)
{
        Agent *a = hashmap_get(m->agents, name);
        int r;

        if (a) {
                *ret = a;
                return 0;
        }
        if (hashmap_size(m->agents) >= m->config.max_agents) {
                /* Full: the agent lost for the longest time makes room. Lost agents are
                 * only remembered for `cluster-ai workers`; their admission is in the
                 * store, so they rejoin whenever they come back. Without this, names
                 * that joined once (one auto-approved certificate can claim any
                 * number) would keep every new agent out for the scheduler's life. */
                Agent *oldest = NULL, *i;
                HASHMAP_FOREACH (i, m->agents)
                        if (i->state == AGENT_LOST && !i->peer && hashmap_size(i->tasks) == 0 &&
                            (!oldest || i->last_heartbeat < oldest->last_heartbeat))
                                oldest = i;
                if (!oldest)
                        return -EMFILE;
                log_info("Forgetting lost agent %s to make room for %s.", oldest->name, name);
                hashmap_remove(m->agents, oldest->name);
                agent_free(oldest);
        }
        a = new0(Agent, 1);
        if (!a)
                return -ENOMEM;
        a->manager = m;
        a->state = AGENT_LOST;
        a->name = strdup(name);
        a->tasks = hashmap_new(HASHMAP_U64);
        if (!a->name || !a->tasks) {
                agent_free(a);
                return -ENOMEM;
        }
        r = hashmap_put(m->agents, a->name, a);
        if (r < 0) {
                agent_free(a);
                return r;
        }
        *ret = a;
        return 1;
}

_printf_(3, 4) static void refuse_agent(Peer *p, Cluster__ErrorCode code, const char *fmt, ...)
{
        char text[300];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        log_notice("Refusing agent from %s: %s", conn_peer_address(p->conn), text);
        (void)conn_send_error_and_close(p->conn, code, 0, "%s", text);
        p->closing = true;
}

int agent_hello(Peer *p, const Cluster__Hello *hello)
{
        Manager *m = p->manager;
        Cluster__Welcome w = CLUSTER__WELCOME__INIT;
        Cluster__Envelope env = CLUSTER__ENVELOPE__INIT;
        uint8_t fp[TLS_FINGERPRINT_SIZE];
        char fphex[TLS_FINGERPRINT_HEX_SIZE];
        const char *via = NULL;
        Agent *a;
        int r, known;

        if (!name_is_valid(hello->name)) {
                refuse_agent(p, CLUSTER__ERROR_CODE__ERROR_INVALID,
                             "invalid agent name (1-63 of A-Z a-z 0-9 . _ -)");
                return 0;
        }
        r = conn_peer_fingerprint(p->conn, fp);
        if (r < 0) {
                refuse_agent(p, CLUSTER__ERROR_CODE__ERROR_UNAUTHORIZED,
                             "agent '%s' presented no certificate", hello->name);
                return 0;
        }
        tls_fingerprint_to_hex(fp, fphex);

        /* Admission: a known agent comes back with the certificate it was admitted
         * with; a new one (or one whose key changed) needs a join token, unless this is
         * a trusted lab with auto_approve. */
        known = store_agent_check(m->store, hello->name, fphex);
        if (known < 0 && known != -EEXIST) {
                refuse_agent(p, CLUSTER__ERROR_CODE__ERROR_INTERNAL,
                             "cannot check admission of agent '%s'", hello->name);
                return known;
        }
        if (known <= 0) {
                if (!isempty(hello->token) && store_token_check(m->store, hello->token) >= 0)
                        via = "token";
                else if (m->config.auto_approve && known == 0)
                        via = "auto_approve";
                else if (known == -EEXIST) {
                        refuse_agent(p, CLUSTER__ERROR_CODE__ERROR_CONFLICT,
                                     "agent '%s' was admitted with another certificate; "
                                     "rejoin it with a join token",
                                     hello->name);
                        return 0;
                } else {
                        if (isempty(hello->token))
                                refuse_agent(p, CLUSTER__ERROR_CODE__ERROR_UNAUTHORIZED,
                                             "agent '%s' is not admitted: give it a join token "
                                             "(cluster-ai token create)",
                                             hello->name);
                        else
                                refuse_agent(p, CLUSTER__ERROR_CODE__ERROR_UNAUTHORIZED,
                                             "agent '%s' is not admitted: the join token is "
                                             "invalid, expired or revoked",
                                             hello->name);
                        return 0;
                }
                r = store_agent_admit(m->store, hello->name, fphex, via);
                if (r < 0) {
                        refuse_agent(p, CLUSTER__ERROR_CODE__ERROR_INTERNAL,
                                     "cannot record admission of agent '%s'", hello->name);
                        return r;
                }
        }

        r = agent_get_or_new(m, hello->name, &a);
        if (r == -EMFILE) {
                refuse_agent(p, CLUSTER__ERROR_CODE__ERROR_BUSY,
                             "too many agents, '%s' cannot join", hello->name);
                return 0;
        }
        if (r < 0)
                return log_oom();
        if (a->peer) {
                /* The same agent reconnected before we noticed its old connection die. */
                log_info("Agent %s reconnected, dropping its previous connection.", a->name);
                agent_disconnected(a, "replaced by a new connection");
        }
        if (a->info) {
                cluster__agent_info__free_unpacked(a->info, NULL);
                a->info = NULL;
        }
        memcpy(a->fingerprint, fphex, sizeof fphex);
        a->peer = p;
        p->agent = a;
        p->kind = PEER_AGENT;
        peer_admitted(p);
        free(p->name);
        p->name = strdup(a->name);
        a->state = AGENT_READY;
        free(a->address);
        a->address = strdup(conn_peer_address(p->conn));
        a->connected_wall = now(CLOCK_REALTIME);
        a->last_heartbeat = loop_now(m->loop);
        a->used_cpus = 0;
        a->used_memory = 0;
        m->n_agents_connected++;

        w.version = PROTOCOL_VERSION;
        w.scheduler = m->config.name;
        w.cluster = m->config.cluster;
        w.heartbeat_interval_ms = (uint32_t)(m->config.heartbeat_interval / USEC_PER_MSEC);
        w.session_id = p->id;
        env.msg_case = CLUSTER__ENVELOPE__MSG_WELCOME;
        env.welcome = &w;
        r = peer_send(p, &env);
        if (r < 0)
                return r;
        log_info("Agent %s joined from %s%s%s.", a->name, strna(a->address), via ? " via " : "",
                 strempty(via));
        manager_update_status(m);
        return 0;
}

/* Loads are measurements: NaN, infinities and negative values from a broken or lying
 * agent become 0, so that placement, `cluster-ai workers` and its JSON (which cannot
 * hold NaN) see numbers. */
static void load_sanitize(Cluster__Load *l)
{
        float *f[] = {
                &l->cpu_busy,
                &l->load_avg1,
                &l->psi_cpu_some_avg10,
                &l->psi_mem_some_avg10,
                &l->psi_io_some_avg10,
                &l->runq_latency_p50_us,
                &l->runq_latency_p99_us,
                &l->psi_mem_full_avg10,
                &l->psi_io_full_avg10,
                &l->io_latency_p50_us,
                &l->io_latency_p99_us,
        };

        for (size_t i = 0; i < ELEMENTSOF(f); i++)
                if (!isfinite(*f[i]) || *f[i] < 0)
                        *f[i] = 0;
}

/* Drops the entries of an unpacked repeated string field beyond max (the strings are
 * the message's own allocations, freed here). */
static void proto_strv_truncate(char ***v, size_t *n, size_t max)
{
        for (size_t i = max; i < *n; i++)
                free((*v)[i]);
        *n = MIN(*n, max);
}

void agent_handle_message(Peer *p, const Cluster__Envelope *msg)
{
        Agent *a = p->agent;
        Manager *m = p->manager;

        if (!a)
                return;
        switch (msg->msg_case) {
        case CLUSTER__ENVELOPE__MSG_AGENT_INFO: {
                Cluster__AgentInfo *info = PROTO_COPY(msg->agent_info);
                if (!info) {
                        log_oom();
                        return;
                }
                /* Every worker's info goes into each StatusReply: 4096 features and
                 * 4096 models of 255 bytes from a few agents would make it larger than
                 * a frame, and status fail for everyone. Keep what a real host has. */
                proto_strv_truncate(&info->features, &info->n_features, AGENT_INFO_LIST_MAX);
                proto_strv_truncate(&info->models, &info->n_models, AGENT_INFO_LIST_MAX);
                if (a->info)
                        cluster__agent_info__free_unpacked(a->info, NULL);
                a->info = info;
                /* What an agent claims is believed within what a host can be: a
                 * lying or broken agent must not attract every task of the cluster. */
                info->cpus = MIN(info->cpus, AGENT_MAX_CPUS);
                info->memory_bytes = MIN(info->memory_bytes, AGENT_MAX_MEMORY);
                info->max_tasks = MIN(info->max_tasks, AGENT_MAX_TASKS);
                if (info->max_tasks == 0)
                        info->max_tasks = MAX(info->cpus, 1U);
                if (m->config.max_tasks_per_agent > 0)
                        info->max_tasks = MIN(info->max_tasks, m->config.max_tasks_per_agent);
                log_debug("Agent %s: %u CPUs, %" PRIu64 " bytes, %s %s.", a->name, info->cpus,
                          info->memory_bytes, strna(info->arch), strna(info->kernel));
                manager_dispatch_queue(m);
                break;
        }
        case CLUSTER__ENVELOPE__MSG_HEARTBEAT:
                a->last_heartbeat = loop_now(m->loop);
                if (msg->heartbeat->load) {
                        Cluster__Load *load = PROTO_COPY(msg->heartbeat->load);
                        if (load) {
                                load_sanitize(load);
                                if (a->load)
                                        cluster__load__free_unpacked(a->load, NULL);
                                a->load = load;
                        }
                }
                break;
        case CLUSTER__ENVELOPE__MSG_TASK_STARTED:
        case CLUSTER__ENVELOPE__MSG_TASK_OUTPUT:
        case CLUSTER__ENVELOPE__MSG_TASK_EXIT:
        case CLUSTER__ENVELOPE__MSG_TASK_ACK:
                a->last_heartbeat = loop_now(m->loop);
                task_agent_message(a, msg);
                break;
        case CLUSTER__ENVELOPE__MSG_PONG:
                break;
        case CLUSTER__ENVELOPE__MSG_GOODBYE:
                /* It finishes what it runs, takes nothing new, then disconnects. */
                log_info("Agent %s is draining: %s", a->name, strna(msg->goodbye->reason));
                if (a->state == AGENT_READY)
                        a->state = AGENT_DRAINING;
                manager_dispatch_queue(m);
                break;
        case CLUSTER__ENVELOPE__MSG_ERROR:
                log_notice("Agent %s reported: %s", a->name, strna(msg->error->message));
                break;
        default:
                /* Not something an agent says: a broken or hostile peer. Answering
                 * each one let it flood our log and its send queue; end it instead. */
                log_notice("Unexpected %s from agent %s, closing its connection.",
                           envelope_type_name(msg), a->name);
                (void)conn_send_error_and_close(p->conn, CLUSTER__ERROR_CODE__ERROR_PROTOCOL, 0,
                                                "unexpected %s from an agent",
                                                envelope_type_name(msg));
                p->closing = true;
                agent_disconnected(a, "protocol error");
                break;
        }
}

void agent_disconnected(Agent *a, const char *reason)
{
        Manager *m = a->manager;
        Task *t;

        if (a->peer) {
                Peer *p = a->peer;
                a->peer = NULL;
                p->agent = NULL;
                peer_close(p, reason);
        }
        if (a->state != AGENT_LOST) {
                a->state = AGENT_LOST;
                if (m->n_agents_connected > 0)
                        m->n_agents_connected--;
                log_warning("Agent %s lost: %s.", a->name, reason);
        }
        while ((t = hashmap_first(a->tasks)))
                task_agent_lost(t, reason); /* removes t from a->tasks */
        a->used_cpus = 0;
        a->used_memory = 0;
        manager_update_status(m);
}

void manager_sweep(Manager *m)
{
        usec_t n = loop_now(m->loop);
        Agent *a;

        HASHMAP_FOREACH (a, m->agents) {
                if (a->state == AGENT_LOST || !a->peer)
                        continue;
                if (n - a->last_heartbeat > m->config.agent_timeout) {
                        char buf[FORMAT_TIMESPAN_MAX], why[64];
                        snprintf(why, sizeof why, "no heartbeat for %s",
                                 format_timespan(buf, sizeof buf, n - a->last_heartbeat));
                        agent_disconnected(a, why);
                }
        }
}
