/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "basic/alloc-util.h"
#include "basic/string-util.h"
#include "daemon/scheduler-manager.h"
#include "daemon/scheduler-placement.h"
#include "shared/frame.h"
#include "shared/log.h"
#include "shared/proto-util.h"

/* A task's life: QUEUED (in m->queue) -> STARTING (TaskStart sent) -> RUNNING (agent
 * confirmed) -> freed after its TaskExit reached the client. The scheduler only relays
 * output and input; flow control is end to end (credits between agent and client), so
 * a task costs at most its window here however fast it writes. */

#define DISPATCH_MAX_MISSES 256

static void task_unlink(Task *t)
{
        Manager *m = t->manager;

        if (t->state == TASK_QUEUED) {
                LIST_REMOVE_TAIL(queue, m->queue, m->queue_tail, t);
                m->n_queued--;
        }
        if (t->agent) {
                Agent *a = t->agent;
                hashmap_remove_u64(a->tasks, t->id);
                a->used_cpus -= MIN(a->used_cpus, MAX(t->spec->cpus, 1U));
                a->used_memory -= MIN(a->used_memory, t->spec->memory_bytes);
                t->agent = NULL;
                if (m->n_running > 0)
                        m->n_running--;
        }
        if (t->client) {
                hashmap_remove_u64(t->client->tasks, t->id);
                t->client = NULL;
        }
        t->state = TASK_DONE;
}

Task *task_free(Task *t)
{
        if (!t)
                return NULL;
        task_unlink(t);
        hashmap_remove_u64(t->manager->tasks, t->id);
        t->manager->tasks_bytes -= MIN(t->manager->tasks_bytes, t->bytes);
        if (t->spec)
                cluster__task_spec__free_unpacked(t->spec, NULL);
        free(t);
        return NULL;
}

/* The last word to the client about a task (also used for failures before a start). */
static void task_send_exit(Task *t, Cluster__ExitKind kind, int exit_code, const char *error)
{
        Cluster__TaskExit x = CLUSTER__TASK_EXIT__INIT;
        Cluster__Envelope env = CLUSTER__ENVELOPE__INIT;

        if (!t->client)
                return;
        x.task_id = t->id;
        x.kind = kind;
        x.exit_code = exit_code;
        x.error = (char *)strempty(error);
        x.agent = t->agent ? t->agent->name : (char *)"";
        env.msg_case = CLUSTER__ENVELOPE__MSG_TASK_EXIT;
        env.task_exit = &x;
        (void)peer_send(t->client, &env);
}

static void send_to_agent(Task *t, const Cluster__Envelope *env)
{
        if (t->agent && t->agent->peer)
                (void)peer_send(t->agent->peer, env);
}

static void task_cancel_on_agent(Task *t, int sig)
{
        Cluster__TaskCancel c = CLUSTER__TASK_CANCEL__INIT;
        Cluster__Envelope env = CLUSTER__ENVELOPE__INIT;

        c.task_id = t->id;
        c.signal = sig;
        env.msg_case = CLUSTER__ENVELOPE__MSG_TASK_CANCEL;
        env.task_cancel = &c;
        send_to_agent(t, &env);
}

static int build_snapshot(Manager *m, PlacementAgent **ret, Agent ***ret_agents, size_t *ret_n)
{
        size_t n = 0, cap = hashmap_size(m->agents);
        PlacementAgent *pa = new0(PlacementAgent, cap ?: 1);
        Agent **aa = new0(Agent *, cap ?: 1);
        Agent *a;

        if (!pa || !aa) {
                free(pa);
                free(aa);
                return -ENOMEM;
        }
        HASHMAP_FOREACH (a, m->agents) {
                if (n >= cap)
                        break;
                pa[n] = (PlacementAgent){
                        .name = a->name,
                        .ready = a->state == AGENT_READY && a->peer && a->info,
                        .cpus = a->info ? a->info->cpus : 0,
                        .memory_bytes = a->info ? a->info->memory_bytes : 0,
                        .max_tasks = a->info ? a->info->max_tasks : 0,
                        .running_tasks = (uint32_t)hashmap_size(a->tasks),
                        .used_cpus = a->used_cpus,
                        .used_memory_bytes = a->used_memory,
                        .cpu_busy = a->load ? a->load->cpu_busy : 0,
                        .psi_cpu_some_avg10 = a->load ? a->load->psi_cpu_some_avg10 : 0,
                        .runq_latency_p99_us = a->load ? a->load->runq_latency_p99_us : 0,
                };
                aa[n++] = a;
        }
        *ret = pa;
        *ret_agents = aa;
        *ret_n = n;
        return 0;
}

/* Tries to start t now. 0 started, -EAGAIN keep queued, other -errno: cannot run. */
static int task_place(Task *t)
{
        Manager *m = t->manager;
        _cleanup_free_ PlacementAgent *pa = NULL;
        _cleanup_free_ Agent **aa = NULL;
        PlacementRequest req = {
                .cpus = t->spec->cpus,
                .memory_bytes = t->spec->memory_bytes,
                .agent = t->spec->agent,
        };
        Cluster__TaskStart ts = CLUSTER__TASK_START__INIT;
        Cluster__Envelope env = CLUSTER__ENVELOPE__INIT;
        size_t n;
        int r, i;

        r = build_snapshot(m, &pa, &aa, &n);
        if (r < 0)
                return r;
        i = placement_choose(pa, n, &req);
        if (i < 0)
                return i;

        Agent *a = aa[i];
        r = hashmap_put_u64(a->tasks, t->id, t);
        if (r < 0)
                return r;
        if (t->state == TASK_QUEUED) {
                LIST_REMOVE_TAIL(queue, m->queue, m->queue_tail, t);
                m->n_queued--;
        }
        t->agent = a;
        t->state = TASK_STARTING;
        a->used_cpus += MAX(t->spec->cpus, 1U);
        a->used_memory += t->spec->memory_bytes;
        m->n_running++;

        ts.spec = t->spec;
        env.msg_case = CLUSTER__ENVELOPE__MSG_TASK_START;
        env.task_start = &ts;
        log_debug("Task %" PRIu64 " (%s) placed on %s.", t->id, t->spec->argv[0], a->name);
        (void)peer_send(a->peer, &env);
        return 0;
}

static const char *placement_error(int r)
{
        switch (r) {
        case -ENOSPC:
                return "no agent has enough CPUs or memory for this task";
        case -ENOENT:
                return "no such agent";
        case -EHOSTDOWN:
                return "no agents are connected";
        case -ENOMEM:
                return "out of memory";
        default:
                return "cannot place the task";
        }
}

void client_handle_run(Peer *p, const Cluster__RunRequest *req)
{
        Manager *m = p->manager;
        Cluster__TaskSpec *spec = req->spec;
        Task *t;
        int r;

        if (m->draining) {
                (void)peer_send_error(p, CLUSTER__ERROR_CODE__ERROR_SHUTTING_DOWN, req->request_id,
                                      0, "the scheduler is shutting down");
                return;
        }
        if (!spec || spec->n_argv == 0 || isempty(spec->argv[0])) {
                (void)peer_send_error(p, CLUSTER__ERROR_CODE__ERROR_INVALID, req->request_id, 0,
                                      "no command given");
                return;
        }
        for (size_t i = 0; i < spec->n_env; i++)
                if (!strchr(spec->env[i], '=') || spec->env[i][0] == '=') {
                        (void)peer_send_error(p, CLUSTER__ERROR_CODE__ERROR_INVALID,
                                              req->request_id, 0,
                                              "environment entries must be KEY=value");
                        return;
                }
        if (m->n_queued >= m->config.max_queued_tasks) {
                (void)peer_send_error(p, CLUSTER__ERROR_CODE__ERROR_BUSY, req->request_id, 0,
                                      "too many queued tasks (%u)", m->n_queued);
                return;
        }
        /* What the unpacked copy will cost: the packed bytes, an allocation per string,
         * and the structures. */
        size_t bytes = cluster__task_spec__get_packed_size(spec) +
                (spec->n_argv + spec->n_env) * 48 + sizeof(Task) + sizeof(Cluster__TaskSpec);
        if (m->tasks_bytes + bytes > TASKS_BYTES_MAX) {
                (void)peer_send_error(p, CLUSTER__ERROR_CODE__ERROR_BUSY, req->request_id, 0,
                                      "too many tasks waiting (%u queued, %zu MiB)", m->n_queued,
                                      m->tasks_bytes >> 20);
                return;
        }

        t = new0(Task, 1);
        if (!t) {
                (void)peer_send_error(p, CLUSTER__ERROR_CODE__ERROR_INTERNAL, req->request_id, 0,
                                      "out of memory");
                return;
        }
        t->manager = m;
        t->id = m->next_task_id++;
        t->spec = PROTO_COPY(spec);
        t->request_id = req->request_id;
        t->submitted = loop_now(m->loop);
        t->state = TASK_QUEUED;
        if (!t->spec || hashmap_put_u64(m->tasks, t->id, t) < 0) {
                if (t->spec)
                        cluster__task_spec__free_unpacked(t->spec, NULL);
                free(t);
                (void)peer_send_error(p, CLUSTER__ERROR_CODE__ERROR_INTERNAL, req->request_id, 0,
                                      "out of memory");
                return;
        }
        t->bytes = bytes;
        m->tasks_bytes += bytes;
        t->spec->task_id = t->id;
        if (t->spec->output_window == 0)
                t->spec->output_window = TASK_OUTPUT_WINDOW_DEFAULT;
        /* The window is what the scheduler may have to hold for a slow client. */
        t->spec->output_window = MIN(t->spec->output_window, TASK_OUTPUT_WINDOW_MAX);
        if (hashmap_put_u64(p->tasks, t->id, t) < 0) {
                task_free(t);
                (void)peer_send_error(p, CLUSTER__ERROR_CODE__ERROR_INTERNAL, req->request_id, 0,
                                      "out of memory");
                return;
        }
        t->client = p;
        m->tasks_total++;
        LIST_APPEND_TAIL(queue, m->queue, m->queue_tail, t);
        m->n_queued++;

        r = task_place(t);
        if (r == -EAGAIN) {
                log_debug("Task %" PRIu64 " queued (%u in the queue).", t->id, m->n_queued);
        } else if (r < 0) {
                (void)peer_send_error(p,
                                      r == -ENOENT ? CLUSTER__ERROR_CODE__ERROR_NOT_FOUND
                                                   : CLUSTER__ERROR_CODE__ERROR_NO_CAPACITY,
                                      req->request_id, t->id, "%s", placement_error(r));
                task_free(t);
        }
        manager_update_status(m);
}

void manager_dispatch_queue(Manager *m)
{
        unsigned misses = 0;

        LIST_FOREACH_SAFE (queue, t, next, m->queue) {
                int r = task_place(t);
                if (r == -EAGAIN) {
                        /* Don't rescan a million tasks when the cluster is full. */
                        if (++misses >= DISPATCH_MAX_MISSES)
                                break;
                        continue;
                }
                if (r < 0) {
                        /* The cluster changed under it (the named agent is gone for
                         * good, or nothing fits any more). */
                        task_send_exit(t, CLUSTER__EXIT_KIND__EXIT_REJECTED, 125,
                                       placement_error(r));
                        task_free(t);
                }
        }
        manager_update_status(m);
}

static Task *client_task(Peer *p, uint64_t id)
{
        return hashmap_get_u64(p->tasks, id);
}

void client_handle_task_message(Peer *p, const Cluster__Envelope *msg)
{
        uint64_t id = msg->msg_case == CLUSTER__ENVELOPE__MSG_TASK_INPUT ? msg->task_input->task_id
                : msg->msg_case == CLUSTER__ENVELOPE__MSG_TASK_ACK       ? msg->task_ack->task_id
                                                                   : msg->task_cancel->task_id;
        Task *t = client_task(p, id);

        if (!t)
                return; /* finished meanwhile: not an error */
        if (msg->msg_case == CLUSTER__ENVELOPE__MSG_TASK_CANCEL && t->state == TASK_QUEUED) {
                task_send_exit(t, CLUSTER__EXIT_KIND__EXIT_CANCELED, 130,
                               "cancelled before it started");
                task_free(t);
                manager_update_status(p->manager);
                return;
        }
        if (t->state == TASK_QUEUED)
                return; /* input before start: the client waits for TaskStarted first */
        if (msg->msg_case == CLUSTER__ENVELOPE__MSG_TASK_CANCEL) {
                /* The same cancel again tells the agent nothing new; relaying each of
                 * a flood would make it signal and log that many times. */
                if (t->cancel_sent && t->cancel_signal == msg->task_cancel->signal)
                        return;
                t->cancel_sent = true;
                t->cancel_signal = msg->task_cancel->signal;
        }
        if (msg->msg_case == CLUSTER__ENVELOPE__MSG_TASK_INPUT && msg->task_input->data.len == 0 &&
            !msg->task_input->eof)
                return; /* nothing to relay */
        if (msg->msg_case == CLUSTER__ENVELOPE__MSG_TASK_INPUT) {
                /* Stdin runs under the same window as output (docs/protocol.md), 1 MiB
                 * at least, for clients that ask for a smaller output window: a
                 * client that ignores it would make us queue its data towards the
                 * agent until that connection's hard limit cuts the agent off, with
                 * everyone else's tasks on it. */
                uint64_t len = msg->task_input->data.len;
                uint32_t window = MAX(t->spec->output_window, TASK_OUTPUT_WINDOW_DEFAULT);
                if (t->input_unacked + len > window) {
                        log_notice("Client %s sent stdin for task %" PRIu64
                                   " beyond its window, closing it.",
                                   p->name ?: conn_peer_address(p->conn), t->id);
                        (void)conn_send_error_and_close(
                                p->conn, CLUSTER__ERROR_CODE__ERROR_PROTOCOL, 0,
                                "stdin of task %" PRIu64 " sent beyond its window of %u bytes",
                                t->id, window);
                        p->closing = true;
                        return;
                }
                t->input_unacked += len;
        }
        if (msg->msg_case == CLUSTER__ENVELOPE__MSG_TASK_ACK) {
                /* A client can only give back credit for output it was sent: an ack of
                 * 2^63 bytes would let the agent send without bound, and us hold it. */
                Cluster__TaskAck ack = *msg->task_ack;
                Cluster__Envelope env = *msg;

                ack.bytes = MIN(ack.bytes, t->output_unacked);
                t->output_unacked -= ack.bytes;
                if (ack.bytes == 0)
                        return;
                env.task_ack = &ack;
                send_to_agent(t, &env);
                return;
        }
        send_to_agent(t, msg);
}

void task_agent_message(Agent *a, const Cluster__Envelope *msg)
{
        Manager *m = a->manager;
        Cluster__Envelope env = *msg;
        uint64_t id;
        Task *t;

        switch (msg->msg_case) {
        case CLUSTER__ENVELOPE__MSG_TASK_STARTED:
                id = msg->task_started->task_id;
                break;
        case CLUSTER__ENVELOPE__MSG_TASK_OUTPUT:
                id = msg->task_output->task_id;
                break;
        case CLUSTER__ENVELOPE__MSG_TASK_ACK:
                id = msg->task_ack->task_id;
                break;
        case CLUSTER__ENVELOPE__MSG_TASK_EXIT:
                id = msg->task_exit->task_id;
                break;
        default:
                return;
        }
        t = hashmap_get_u64(a->tasks, id);
        if (!t) {
                log_debug("Agent %s sent %s for unknown task %" PRIu64 ".", a->name,
                          envelope_type_name(msg), id);
                return;
        }

        switch (msg->msg_case) {
        case CLUSTER__ENVELOPE__MSG_TASK_STARTED: {
                Cluster__TaskStarted s = *msg->task_started;
                t->state = TASK_RUNNING;
                s.request_id = t->request_id;
                s.agent = a->name;
                env.task_started = &s;
                if (t->client)
                        (void)peer_send(t->client, &env);
                else
                        task_cancel_on_agent(t, SIGKILL);
                break;
        }
        case CLUSTER__ENVELOPE__MSG_TASK_OUTPUT:
                t->output_unacked += msg->task_output->data.len;
                if (t->client)
                        (void)peer_send(t->client, msg);
                break;
        case CLUSTER__ENVELOPE__MSG_TASK_ACK:
                t->input_unacked -= MIN(t->input_unacked, msg->task_ack->bytes);
                if (t->client)
                        (void)peer_send(t->client, msg);
                break;
        case CLUSTER__ENVELOPE__MSG_TASK_EXIT: {
                Cluster__TaskExit x = *msg->task_exit;
                x.agent = a->name;
                env.task_exit = &x;
                if (t->client)
                        (void)peer_send(t->client, &env);
                log_debug("Task %" PRIu64 " on %s finished (kind %d, code %d).", t->id, a->name,
                          x.kind, x.exit_code);
                task_free(t);
                manager_dispatch_queue(m);
                break;
        }
        default:
                break;
        }
}

void task_client_gone(Task *t)
{
        /* Whoever asked is gone: nobody reads the output, stop the work. */
        if (t->client) {
                hashmap_remove_u64(t->client->tasks, t->id);
                t->client = NULL;
        }
        if (t->state == TASK_QUEUED) {
                task_free(t);
                return;
        }
        log_info("Client of task %" PRIu64 " went away, cancelling it.", t->id);
        task_cancel_on_agent(t, 0);
}

void task_agent_lost(Task *t, const char *reason)
{
        char text[256];

        snprintf(text, sizeof text, "agent %s was lost (%s)", t->agent ? t->agent->name : "?",
                 strna(reason));
        task_send_exit(t, CLUSTER__EXIT_KIND__EXIT_LOST, 125, text);
        task_free(t);
}

void manager_cancel_all_tasks(Manager *m, const char *reason)
{
        Task *t;

        /* Queued tasks never started: they end now, whatever the reason. */
        while ((t = m->queue)) {
                task_send_exit(t, CLUSTER__EXIT_KIND__EXIT_REJECTED, 125,
                               "the scheduler is shutting down");
                task_free(t);
        }
        if (!reason)
                return;
        while ((t = hashmap_first(m->tasks))) {
                task_cancel_on_agent(t, SIGKILL);
                task_send_exit(t, CLUSTER__EXIT_KIND__EXIT_CANCELED, 125, reason);
                task_free(t);
        }
}
