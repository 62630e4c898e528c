/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "basic/alloc-util.h"
#include "basic/string-util.h"
#include "basic/time-util.h"
#include "cli/cli.h"
#include "shared/log.h"

static int fetch_status(Cluster__Envelope **ret)
{
        _cleanup_(client_freep) Client *c = NULL;
        Cluster__StatusRequest req = CLUSTER__STATUS_REQUEST__INIT;
        Cluster__Envelope env = CLUSTER__ENVELOPE__INIT;
        int r;

        r = client_connect(&c);
        if (r < 0)
                return r;
        req.request_id = 1;
        env.msg_case = CLUSTER__ENVELOPE__MSG_STATUS_REQUEST;
        env.status_request = &req;
        r = client_request(c, &env, 1, ret);
        if (r == -EREMOTEIO) {
                log_error("%s", strna((*ret)->error->message));
                cluster__envelope__free_unpacked(*ret, NULL);
                *ret = NULL;
        }
        return r;
}

/* JSON integers are signed 64-bit here: larger counts saturate instead of wrapping. */
static json_int_t json_u64(uint64_t v)
{
        return v > (uint64_t)INT64_MAX ? (json_int_t)INT64_MAX : (json_int_t)v;
}

static json_t *load_json(const Cluster__Load *l)
{
        if (!l)
                return json_null();
        return json_pack(
                "{s:f,s:f,s:I,s:I,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:i,s:s}", "cpu_busy",
                (double)l->cpu_busy, "load_avg1", (double)l->load_avg1, "mem_available_bytes",
                (json_int_t)l->mem_available_bytes, "mem_total_bytes",
                (json_int_t)l->mem_total_bytes, "psi_cpu_some_avg10", (double)l->psi_cpu_some_avg10,
                "psi_mem_some_avg10", (double)l->psi_mem_some_avg10, "psi_mem_full_avg10",
                (double)l->psi_mem_full_avg10, "psi_io_some_avg10", (double)l->psi_io_some_avg10,
                "psi_io_full_avg10", (double)l->psi_io_full_avg10, "runq_latency_p50_us",
                (double)l->runq_latency_p50_us, "runq_latency_p99_us",
                (double)l->runq_latency_p99_us, "io_latency_p50_us", (double)l->io_latency_p50_us,
                "io_latency_p99_us", (double)l->io_latency_p99_us, "used_cpus", (int)l->used_cpus,
                "probe_source", strempty(l->probe_source));
}

static json_t *worker_json(const Cluster__WorkerStatus *w)
{
        json_t *o =
                json_pack("{s:s,s:s,s:s,s:i,s:I,s:I,s:s}", "name", strempty(w->name), "address",
                          strempty(w->address), "state", strempty(w->state), "running_tasks",
                          (int)w->running_tasks, "heartbeat_age_ms",
                          (json_int_t)w->heartbeat_age_ms, "connected_usec",
                          (json_int_t)w->connected_usec, "fingerprint", strempty(w->fingerprint));
        if (!o)
                return NULL;
        if (w->info) {
                json_t *f = json_array();
                for (size_t i = 0; i < w->info->n_features; i++)
                        json_array_append_new(f, json_string(w->info->features[i]));
                json_object_set_new(o, "cpus", json_integer(w->info->cpus));
                json_object_set_new(o, "memory_bytes",
                                    json_integer(json_u64(w->info->memory_bytes)));
                json_object_set_new(o, "max_tasks", json_integer(w->info->max_tasks));
                json_object_set_new(o, "arch", json_string(strempty(w->info->arch)));
                json_object_set_new(o, "kernel", json_string(strempty(w->info->kernel)));
                json_object_set_new(o, "hostname", json_string(strempty(w->info->hostname)));
                json_object_set_new(o, "software", json_string(strempty(w->info->software)));
                json_object_set_new(o, "features", f);
        }
        json_object_set_new(o, "load", load_json(w->load));
        return o;
}

static int print_json(json_t *o)
{
        char *s;

        if (!o)
                return log_oom();
        s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
        json_decref(o);
        if (!s)
                return log_oom();
        puts(s);
        free(s);
        return 0;
}

static int cmp_workers(const void *a, const void *b)
{
        const Cluster__WorkerStatus *x = *(Cluster__WorkerStatus *const *)a,
                                    *y = *(Cluster__WorkerStatus *const *)b;
        return strcmp(strempty(x->name), strempty(y->name));
}

static bool arg_probes;

static bool parse_json_flag(int argc, char **argv, const char *usage, bool probes)
{
        static const struct option options[] = {{"json", no_argument, NULL, 'j'},
                                                {"probes", no_argument, NULL, 'p'},
                                                {"help", no_argument, NULL, 'h'},
                                                {}};
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "jph", options, NULL)) >= 0)
                switch (c) {
                case 'j':
                        arg_json = true;
                        break;
                case 'p':
                        if (!probes) {
                                log_error("--probes is an option of 'workers'.");
                                exit(EXIT_USAGE);
                        }
                        arg_probes = true;
                        break;
                case 'h':
                        printf("%s", usage);
                        exit(0);
                default:
                        exit(EXIT_USAGE);
                }
        if (optind < argc) {
                log_error("Unexpected argument '%s'.", argv[optind]);
                exit(EXIT_USAGE);
        }
        return arg_json;
}

int verb_workers(int argc, char **argv)
{
        Cluster__Envelope *reply = NULL;
        Cluster__StatusReply *s;
        int r;

        parse_json_flag(argc, argv,
                        "Usage: cluster-ai workers [--json] [--probes]\n\nLists the agents: "
                        "name, address, CPUs, memory, state, running tasks, heartbeat age.\n"
                        "--probes shows what each host's probes measure instead: run-queue\n"
                        "latency, CPU busy, pressure stall (PSI avg10), block-IO latency,\n"
                        "available memory and the probe source (bpf or proc).\n",
                        true);
        r = fetch_status(&reply);
        if (r < 0)
                return r == -EHOSTUNREACH ? EXIT_UNREACHABLE : 1;
        s = reply->status_reply;
        qsort(s->workers, s->n_workers, sizeof *s->workers, cmp_workers);
        if (arg_json) {
                json_t *a = json_array();
                for (size_t i = 0; i < s->n_workers; i++)
                        json_array_append_new(a, worker_json(s->workers[i]));
                r = print_json(a);
        } else if (arg_probes) {
                printf("%-20s %-8s %10s %10s %6s %8s %8s %8s %10s %10s %6s\n", "NAME", "STATE",
                       "RUNQ-P50", "RUNQ-P99", "BUSY", "PSI-CPU", "PSI-MEM", "PSI-IO", "IO-P99",
                       "MEM-AVAIL", "SOURCE");
                for (size_t i = 0; i < s->n_workers; i++) {
                        const Cluster__WorkerStatus *w = s->workers[i];
                        const Cluster__Load *l = w->load;
                        char mem[FORMAT_BYTES_MAX];
                        if (!l) {
                                printf("%-20s %-8s (no heartbeat yet)\n", strempty(w->name),
                                       strempty(w->state));
                                continue;
                        }
                        printf("%-20s %-8s %8.0fus %8.0fus %5.0f%% %7.2f%% %7.2f%% %7.2f%% "
                               "%8.0fus %10s %6s\n",
                               strempty(w->name), strempty(w->state), l->runq_latency_p50_us,
                               l->runq_latency_p99_us, l->cpu_busy * 100, l->psi_cpu_some_avg10,
                               l->psi_mem_some_avg10, l->psi_io_some_avg10, l->io_latency_p99_us,
                               format_bytes(mem, sizeof mem, l->mem_available_bytes),
                               strempty(l->probe_source));
                }
                r = 0;
        } else {
                printf("%-20s %-22s %-8s %5s %10s %6s %6s %10s\n", "NAME", "ADDRESS", "STATE",
                       "CPUS", "MEMORY", "TASKS", "BUSY", "HEARTBEAT");
                for (size_t i = 0; i < s->n_workers; i++) {
                        const Cluster__WorkerStatus *w = s->workers[i];
                        char mem[FORMAT_BYTES_MAX], hb[FORMAT_TIMESPAN_MAX], busy[16];
                        snprintf(busy, sizeof busy, "%.0f%%",
                                 w->load ? w->load->cpu_busy * 100 : 0.0);
                        printf("%-20s %-22s %-8s %5u %10s %6u %6s %10s\n", strempty(w->name),
                               strempty(w->address), strempty(w->state),
                               w->info ? w->info->cpus : 0,
                               format_bytes(mem, sizeof mem, w->info ? w->info->memory_bytes : 0),
                               w->running_tasks, busy,
                               format_timespan(hb, sizeof hb, w->heartbeat_age_ms * USEC_PER_MSEC));
                }
                if (s->n_workers == 0)
                        printf("(no agents have joined yet)\n");
                r = 0;
        }
        cluster__envelope__free_unpacked(reply, NULL);
        return r < 0 ? 1 : 0;
}

int verb_status(int argc, char **argv)
{
        Cluster__Envelope *reply = NULL;
        Cluster__StatusReply *s;
        unsigned ready = 0, lost = 0;
        uint64_t cpus = 0;
        uint64_t mem = 0;
        int r;

        parse_json_flag(argc, argv,
                        "Usage: cluster-ai status [--json]\n\nSummarizes the cluster.\n", false);
        r = fetch_status(&reply);
        if (r < 0)
                return r == -EHOSTUNREACH ? EXIT_UNREACHABLE : 1;
        s = reply->status_reply;
        for (size_t i = 0; i < s->n_workers; i++) {
                const Cluster__WorkerStatus *w = s->workers[i];
                if (streq_ptr(w->state, "ready")) {
                        ready++;
                        if (w->info) {
                                cpus += w->info->cpus;
                                mem += w->info->memory_bytes;
                        }
                } else if (streq_ptr(w->state, "lost"))
                        lost++;
        }
        if (arg_json) {
                json_t *o = json_pack(
                        "{s:s,s:s,s:s,s:I,s:s,s:s,s:i,s:i,s:I,s:I,s:i,s:i,s:I}", "scheduler",
                        strempty(s->scheduler), "cluster", strempty(s->cluster), "version",
                        strempty(s->version), "uptime_usec", (json_int_t)s->uptime_usec,
                        "fingerprint", strempty(s->fingerprint), "listen", strempty(s->listen),
                        "agents_ready", (int)ready, "agents_lost", (int)lost, "cpus",
                        (json_int_t)cpus, "memory_bytes", json_u64(mem), "running_tasks",
                        (int)s->running_tasks, "queued_tasks", (int)s->queued_tasks, "tasks_total",
                        (json_int_t)s->tasks_total);
                r = print_json(o);
        } else {
                char m[FORMAT_BYTES_MAX], up[FORMAT_TIMESPAN_MAX];
                printf("Scheduler:   %s (cluster %s, version %s, up %s)\n", strempty(s->scheduler),
                       strempty(s->cluster), strempty(s->version),
                       format_timespan(up, sizeof up, s->uptime_usec));
                printf("Listening:   %s\n", strempty(s->listen));
                printf("Fingerprint: %s\n", strempty(s->fingerprint));
                printf("Agents:      %u ready, %u lost\n", ready, lost);
                printf("Capacity:    %" PRIu64 " CPUs, %s\n", cpus, format_bytes(m, sizeof m, mem));
                printf("Tasks:       %u running, %u queued, %" PRIu64 " submitted\n",
                       s->running_tasks, s->queued_tasks, s->tasks_total);
                r = 0;
        }
        cluster__envelope__free_unpacked(reply, NULL);
        return r < 0 ? 1 : 0;
}
