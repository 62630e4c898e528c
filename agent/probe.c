/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Host probes: picks a source per metric (BPF where it loaded, /proc otherwise), keeps
 * the previous reads, and turns cumulative counters into per-interval snapshots. */
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <sys/stat.h>

#include <jansson.h>

#include "basic/alloc-util.h"
#include "basic/string-util.h"
#include "basic/strv.h"
#include "probe-internal.h"
#include "shared/log.h"

/* Most watched tasks; matches what the BPF maps hold (bpf/probe-maps.h). */
#define PROBES_WATCH_MAX 4096

typedef struct ProbeWatch {
        uint64_t id; /* as reported: the cgroup id, or the pid */
        pid_t pid;
        uint64_t cgroup_id;
        uint64_t key; /* in the BPF usage map */
        bool bpf; /* counted by cpuacct */
        char *cgroup_dir; /* /proc fallback for a cgroup */
        uint64_t base_usec, last_usec;
        uint64_t runq_wait_ns, runq_slices; /* previous schedstat sums */
        bool have_runq;
} ProbeWatch;

struct Probes {
        ProbeOptions opts;
        char **disable;
        ProbeProc proc;
        ProbeBpf *bpf;
        ProbeSource sources[_PROBE_METRIC_MAX];

        ProbeWatch *watches;
        size_t n_watches, n_allocated;
        uint64_t next_key;

        ProbeHistogram runq_prev, io_prev;
        usec_t last_sample;
        uint64_t tcp_retransmits; /* since the last sample */
};

static const char *const source_names[_PROBE_SOURCE_MAX] = {
        [PROBE_SOURCE_NONE] = "none",
        [PROBE_SOURCE_PROC] = "proc",
        [PROBE_SOURCE_BPF] = "bpf",
};

static const char *const metric_names[_PROBE_METRIC_MAX] = {
        [PROBE_METRIC_RUNQ_LATENCY] = "runq_latency",
        [PROBE_METRIC_CPU_BUSY] = "cpu_busy",
        [PROBE_METRIC_PSI_CPU] = "psi_cpu",
        [PROBE_METRIC_PSI_MEMORY] = "psi_memory",
        [PROBE_METRIC_PSI_IO] = "psi_io",
        [PROBE_METRIC_IO_LATENCY] = "io_latency",
        [PROBE_METRIC_MEMORY] = "memory",
        [PROBE_METRIC_LOAD_AVG] = "load_avg",
        [PROBE_METRIC_TASK_CPU] = "task_cpu",
        [PROBE_METRIC_TCP_RETRANSMITS] = "tcp_retransmits",
};

const char *probe_source_to_string(ProbeSource s)
{
        return s >= 0 && s < _PROBE_SOURCE_MAX ? source_names[s] : NULL;
}

const char *probe_metric_to_string(ProbeMetric m)
{
        return m >= 0 && m < _PROBE_METRIC_MAX ? metric_names[m] : NULL;
}

void probe_snapshot_done(ProbeSnapshot *s)
{
        free(s->tasks);
        *s = (ProbeSnapshot){};
}

static bool proc_schedstat_works(ProbeProc *pp)
{
        uint64_t wait, slices;

        return probe_proc_pid_runq(pp, getpid(), &wait, &slices) >= 0 && slices > 0;
}

/* Decides each metric's source and says once, at info, why one is not BPF. */
static void probes_pick_sources(Probes *p)
{
        ProbeProc *pp = &p->proc;
        bool bpf_runq = false, bpf_cpu = false, bpf_io = false, bpf_tcp = false;

#if HAVE_BPF
        bpf_runq = probe_bpf_loaded(p->bpf, PROBE_PROGRAM_RUNQLAT);
        bpf_cpu = probe_bpf_loaded(p->bpf, PROBE_PROGRAM_CPUACCT);
        bpf_io = probe_bpf_loaded(p->bpf, PROBE_PROGRAM_BIOLAT);
        bpf_tcp = probe_bpf_loaded(p->bpf, PROBE_PROGRAM_TCPRETRANS);
        if (p->bpf)
                for (ProbeProgram i = 0; i < _PROBE_PROGRAM_MAX; i++) {
                        static const char *const fallback[_PROBE_PROGRAM_MAX] = {
                                [PROBE_PROGRAM_RUNQLAT] =
                                        "run-queue latency approximated from watched "
                                        "tasks' /proc/<pid>/schedstat",
                                [PROBE_PROGRAM_CPUACCT] = "task CPU time from /proc",
                                [PROBE_PROGRAM_BIOLAT] =
                                        "IO latency approximated from /proc/diskstats",
                                [PROBE_PROGRAM_TCPRETRANS] = "TCP retransmissions not counted",
                        };
                        if (probe_bpf_loaded(p->bpf, i))
                                continue;
                        log_info("Host probes: %s unavailable (%s); %s.",
                                 probe_program_to_string(i), probe_bpf_reason(p->bpf, i),
                                 fallback[i]);
                }
#endif

        p->sources[PROBE_METRIC_RUNQ_LATENCY] = bpf_runq ? PROBE_SOURCE_BPF
                : proc_schedstat_works(pp)               ? PROBE_SOURCE_PROC
                                                         : PROBE_SOURCE_NONE;
        p->sources[PROBE_METRIC_CPU_BUSY] = pp->have_stat ? PROBE_SOURCE_PROC : PROBE_SOURCE_NONE;
        p->sources[PROBE_METRIC_PSI_CPU] = pp->have_psi[0] ? PROBE_SOURCE_PROC : PROBE_SOURCE_NONE;
        p->sources[PROBE_METRIC_PSI_MEMORY] =
                pp->have_psi[1] ? PROBE_SOURCE_PROC : PROBE_SOURCE_NONE;
        p->sources[PROBE_METRIC_PSI_IO] = pp->have_psi[2] ? PROBE_SOURCE_PROC : PROBE_SOURCE_NONE;
        p->sources[PROBE_METRIC_IO_LATENCY] = bpf_io ? PROBE_SOURCE_BPF
                : pp->have_diskstats                 ? PROBE_SOURCE_PROC
                                                     : PROBE_SOURCE_NONE;
        p->sources[PROBE_METRIC_MEMORY] = pp->have_meminfo ? PROBE_SOURCE_PROC : PROBE_SOURCE_NONE;
        p->sources[PROBE_METRIC_LOAD_AVG] =
                pp->have_loadavg ? PROBE_SOURCE_PROC : PROBE_SOURCE_NONE;
        p->sources[PROBE_METRIC_TASK_CPU] = bpf_cpu ? PROBE_SOURCE_BPF : PROBE_SOURCE_PROC;
        p->sources[PROBE_METRIC_TCP_RETRANSMITS] = bpf_tcp ? PROBE_SOURCE_BPF : PROBE_SOURCE_NONE;

        if (!pp->have_psi[0] && !pp->have_psi[1] && !pp->have_psi[2])
                log_info("Host probes: no pressure stall information (/proc/pressure; kernel "
                         "without CONFIG_PSI or booted with psi=0).");
}

int probes_new(const ProbeOptions *opts, Probes **ret)
{
        _cleanup_(probes_freep) Probes *p = NULL;
        int r;

        if (!opts || !ret)
                return -EINVAL;

        p = new0(Probes, 1);
        if (!p)
                return -ENOMEM;
        p->opts = *opts;
        if (opts->disable) {
                p->disable = strv_copy(opts->disable);
                if (!p->disable)
                        return -ENOMEM;
        }
        p->opts.disable = p->disable;

        r = probe_proc_init(&p->proc, "/proc");
        if (r < 0)
                return r;

        if (opts->enable_bpf) {
#if HAVE_BPF
                const char *reason = NULL;

                r = probe_bpf_new(&p->opts, p->proc.cgroup2 != NULL, &p->bpf, &reason);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        log_info_errno(r, "Host probes: BPF unavailable, %s: using /proc.",
                                       reason ?: "unknown reason");
#else
                log_info("Host probes: built without BPF support: using /proc.");
#endif
        }

        probes_pick_sources(p);
        *ret = TAKE_PTR(p);
        return 0;
}

Probes *probes_free(Probes *p)
{
        if (!p)
                return NULL;
#if HAVE_BPF
        probe_bpf_free(p->bpf);
#endif
        for (size_t i = 0; i < p->n_watches; i++)
                free(p->watches[i].cgroup_dir);
        free(p->watches);
        probe_proc_done(&p->proc);
        strv_free(p->disable);
        return mfree(p);
}

ProbeSource probes_source(Probes *p, ProbeMetric m)
{
        if (!p || m < 0 || m >= _PROBE_METRIC_MAX)
                return PROBE_SOURCE_NONE;
        return p->sources[m];
}

const char *probes_program_kind(Probes *p, const char *set, const char **ret_reason)
{
        const char *reason = "BPF is not in use";

#if HAVE_BPF
        for (ProbeProgram i = 0; p && p->bpf && i < _PROBE_PROGRAM_MAX; i++) {
                if (!streq(probe_program_to_string(i), set))
                        continue;
                if (probe_bpf_loaded(p->bpf, i))
                        return probe_bpf_kind(p->bpf, i);
                reason = probe_bpf_reason(p->bpf, i);
                break;
        }
        if (p && p->bpf && streq(reason, "BPF is not in use"))
                reason = "no such program set";
#endif
        if (ret_reason)
                *ret_reason = reason;
        return NULL;
}

static ProbeWatch *find_watch(Probes *p, uint64_t id)
{
        for (size_t i = 0; i < p->n_watches; i++)
                if (p->watches[i].id == id)
                        return &p->watches[i];
        return NULL;
}

/* CPU time the /proc way: the cgroup's usage, or the process's with reaped children. */
static int watch_proc_cpu(Probes *p, ProbeWatch *w, uint64_t *ret_usec)
{
        if (w->cgroup_dir)
                return probe_proc_cgroup_cpu(w->cgroup_dir, ret_usec);
        return probe_proc_pid_cpu(&p->proc, w->pid, ret_usec);
}

/* The cgroup v2 directory of pid when it is a cgroup of its own: not the root and not
 * ours (a task left in the agent's cgroup must not be charged the agent's time). Then
 * *ret_id is its cgroup id, the directory's inode number. 0 when per process. */
static int watch_find_cgroup(Probes *p, pid_t pid, char **ret_dir, uint64_t *ret_id)
{
        _cleanup_free_ char *dir = NULL, *own = NULL;
        struct stat st;
        int r;

        r = probe_proc_pid_cgroup_dir(&p->proc, pid, &dir);
        if (r == -ENOENT || r == -EBADMSG)
                return 0; /* no cgroup v2, or the process is not in its hierarchy */
        if (r < 0)
                return r;
        if (probe_proc_pid_cgroup_dir(&p->proc, getpid(), &own) >= 0 && streq(own, dir))
                return 0;
        if (streq(dir, p->proc.cgroup2) || endswith(dir, "/"))
                return 0; /* the root cgroup: everyone without one of their own */
        if (stat(dir, &st) < 0)
                return 0; /* moved or gone since: follow the process */
        *ret_dir = TAKE_PTR(dir);
        *ret_id = (uint64_t)st.st_ino;
        return 1;
}

int probes_watch_pid(Probes *p, pid_t pid, uint64_t id)
{
        ProbeWatch w = {.pid = pid, .id = id ?: (uint64_t)pid};
        int r;

        if (!p || pid <= 0)
                return -EINVAL;
        if (find_watch(p, w.id))
                return -EEXIST;
        if (p->n_watches >= PROBES_WATCH_MAX)
                return -E2BIG;
        if (kill(pid, 0) < 0 && errno == ESRCH)
                return -ESRCH;
        if (!GREEDY_REALLOC(p->watches, p->n_allocated, p->n_watches + 1))
                return -ENOMEM;
        w.key = ++p->next_key;

        r = watch_find_cgroup(p, pid, &w.cgroup_dir, &w.cgroup_id);
        if (r < 0)
                return r;

#if HAVE_BPF
        if (p->sources[PROBE_METRIC_TASK_CPU] == PROBE_SOURCE_BPF) {
                r = probe_bpf_watch(p->bpf, pid, w.cgroup_id, w.key);
                if (r < 0) {
                        free(w.cgroup_dir);
                        return r;
                }
                w.bpf = true;
        }
#endif
        if (!w.bpf) {
                r = watch_proc_cpu(p, &w, &w.base_usec);
                if (r < 0) {
                        free(w.cgroup_dir);
                        return r == -ENOENT ? -ESRCH : r;
                }
        }
        if (p->sources[PROBE_METRIC_RUNQ_LATENCY] == PROBE_SOURCE_PROC)
                w.have_runq =
                        probe_proc_pid_runq(&p->proc, pid, &w.runq_wait_ns, &w.runq_slices) >= 0;

        p->watches[p->n_watches++] = w;
        return 0;
}

int probes_unwatch(Probes *p, uint64_t id)
{
        ProbeWatch *w;

        if (!p)
                return -EINVAL;
        w = find_watch(p, id);
        if (!w)
                return -ENOENT;
#if HAVE_BPF
        if (w->bpf)
                (void)probe_bpf_unwatch(p->bpf, w->pid, w->cgroup_id, w->key);
#endif
        free(w->cgroup_dir);
        *w = p->watches[--p->n_watches];
        return 0;
}

#if HAVE_BPF
static void fill_percentiles(const ProbeHistogram *h, double *p50, double *p99, uint64_t *events)
{
        double v;

        *events = probe_histogram_total(h);
        *p50 = probe_histogram_percentile(h, 50, &v) >= 0 ? v : 0;
        *p99 = probe_histogram_percentile(h, 99, &v) >= 0 ? v : 0;
}

/* Reads a cumulative map histogram and leaves the interval's percentiles in s. */
static int sample_hist(ProbeHistogram *prev, int (*read)(ProbeBpf *, ProbeHistogram *), ProbeBpf *b,
                       double *p50, double *p99, uint64_t *events)
{
        ProbeHistogram now, delta;
        int r;

        r = read(b, &now);
        if (r < 0)
                return r;
        probe_histogram_delta(&now, prev, &delta);
        *prev = now;
        fill_percentiles(&delta, p50, p99, events);
        return 0;
}
#endif

static void sample_runq_proc(Probes *p, ProbeSnapshot *s)
{
        uint64_t wait = 0, slices = 0;
        bool any = false;

        for (size_t i = 0; i < p->n_watches; i++) {
                ProbeWatch *w = &p->watches[i];
                uint64_t wn, sn;

                if (probe_proc_pid_runq(&p->proc, w->pid, &wn, &sn) < 0)
                        continue; /* gone: nothing more to learn from it */
                if (w->have_runq && wn >= w->runq_wait_ns && sn >= w->runq_slices) {
                        wait += wn - w->runq_wait_ns;
                        slices += sn - w->runq_slices;
                        any = true;
                }
                w->runq_wait_ns = wn;
                w->runq_slices = sn;
                w->have_runq = true;
        }
        if (!any)
                return;
        s->runq_latency_p50_us = s->runq_latency_p99_us =
                slices ? (double)wait / (double)slices / 1000.0 : 0;
        s->runq_events = slices;
        s->source[PROBE_METRIC_RUNQ_LATENCY] = PROBE_SOURCE_PROC;
}

static int sample_tasks(Probes *p, ProbeSnapshot *s)
{
        if (p->n_watches == 0)
                return 0;
        s->tasks = new0(ProbeTaskCpu, p->n_watches);
        if (!s->tasks)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_watches; i++) {
                ProbeWatch *w = &p->watches[i];
                uint64_t usec = 0;
                int r = -ENODEV;

#if HAVE_BPF
                if (w->bpf) {
                        uint64_t ns;
                        r = probe_bpf_task_cpu(p->bpf, w->key, &ns);
                        if (r >= 0)
                                usec = ns / 1000;
                }
#endif
                if (!w->bpf) {
                        r = watch_proc_cpu(p, w, &usec);
                        if (r >= 0)
                                usec = usec >= w->base_usec ? usec - w->base_usec : 0;
                }
                /* A task that is gone keeps what it had used. */
                if (r >= 0)
                        w->last_usec = MAX(w->last_usec, usec);
                s->tasks[s->n_tasks++] = (ProbeTaskCpu){
                        .id = w->id,
                        .pid = w->pid,
                        .cpu_usec = w->last_usec,
                };
        }
        s->source[PROBE_METRIC_TASK_CPU] = p->sources[PROBE_METRIC_TASK_CPU];
        return 0;
}

int probes_sample(Probes *p, usec_t now, ProbeSnapshot *ret)
{
        ProbeSnapshot s = {.timestamp = now};
        int r;

        if (!p || !ret)
                return -EINVAL;
        if (p->last_sample != 0 && now >= p->last_sample)
                s.interval = now - p->last_sample;

        r = probe_proc_sample(&p->proc, &s,
                              p->sources[PROBE_METRIC_IO_LATENCY] == PROBE_SOURCE_PROC);
        if (r < 0)
                return r;

#if HAVE_BPF
        if (p->sources[PROBE_METRIC_RUNQ_LATENCY] == PROBE_SOURCE_BPF &&
            sample_hist(&p->runq_prev, probe_bpf_read_runq, p->bpf, &s.runq_latency_p50_us,
                        &s.runq_latency_p99_us, &s.runq_events) >= 0)
                s.source[PROBE_METRIC_RUNQ_LATENCY] = PROBE_SOURCE_BPF;
        if (p->sources[PROBE_METRIC_IO_LATENCY] == PROBE_SOURCE_BPF &&
            sample_hist(&p->io_prev, probe_bpf_read_io, p->bpf, &s.io_latency_p50_us,
                        &s.io_latency_p99_us, &s.io_events) >= 0)
                s.source[PROBE_METRIC_IO_LATENCY] = PROBE_SOURCE_BPF;
        if (p->sources[PROBE_METRIC_TCP_RETRANSMITS] == PROBE_SOURCE_BPF) {
                /* whatever the loop has not handled yet belongs to this interval too */
                (void)probe_bpf_handle_events(p->bpf, &p->tcp_retransmits);
                s.tcp_retransmits = p->tcp_retransmits;
                p->tcp_retransmits = 0;
                s.source[PROBE_METRIC_TCP_RETRANSMITS] = PROBE_SOURCE_BPF;
        }
#endif
        if (p->sources[PROBE_METRIC_RUNQ_LATENCY] == PROBE_SOURCE_PROC)
                sample_runq_proc(p, &s);

        r = sample_tasks(p, &s);
        if (r < 0)
                return r;

        p->last_sample = now;
        *ret = s;
        return 0;
}

int probes_event_fd(Probes *p)
{
#if HAVE_BPF
        if (p)
                return probe_bpf_event_fd(p->bpf);
#endif
        return -EBADF;
}

int probes_handle_events(Probes *p)
{
#if HAVE_BPF
        if (p)
                return probe_bpf_handle_events(p->bpf, &p->tcp_retransmits);
#endif
        return 0;
}

/* ---- output --------------------------------------------------------------------- */

static bool has(const ProbeSnapshot *s, ProbeMetric m)
{
        return s->source[m] != PROBE_SOURCE_NONE;
}

static int json_set_real(json_t *o, const char *key, bool known, double v)
{
        return json_object_set_new(o, key, known && isfinite(v) ? json_real(v) : json_null());
}

static int json_set_uint(json_t *o, const char *key, bool known, uint64_t v)
{
        /* jansson integers are signed 64-bit: clamp rather than wrap */
        return json_object_set_new(o, key,
                                   known ? json_integer((json_int_t)MIN(v, (uint64_t)INT64_MAX))
                                         : json_null());
}

int probe_snapshot_to_json(const ProbeSnapshot *s, char **ret)
{
        json_t *o = NULL, *sources = NULL, *tasks = NULL, *psi = NULL, *load = NULL;
        static const char *const psi_names[3] = {"psi_cpu", "psi_memory", "psi_io"};
        const ProbePsi *psi_vals[3] = {&s->psi_cpu, &s->psi_memory, &s->psi_io};
        int r = -ENOMEM;
        char *text;

        o = json_object();
        sources = json_object();
        tasks = json_array();
        if (!o || !sources || !tasks)
                goto finish;

        if (json_set_uint(o, "timestamp_usec", true, s->timestamp) < 0 ||
            json_set_uint(o, "interval_usec", true, s->interval) < 0 ||
            json_set_real(o, "runq_latency_p50_us", has(s, PROBE_METRIC_RUNQ_LATENCY),
                          s->runq_latency_p50_us) < 0 ||
            json_set_real(o, "runq_latency_p99_us", has(s, PROBE_METRIC_RUNQ_LATENCY),
                          s->runq_latency_p99_us) < 0 ||
            json_set_uint(o, "runq_events", has(s, PROBE_METRIC_RUNQ_LATENCY), s->runq_events) <
                    0 ||
            json_set_real(o, "cpu_busy", has(s, PROBE_METRIC_CPU_BUSY), s->cpu_busy) < 0 ||
            json_set_real(o, "io_latency_p50_us", has(s, PROBE_METRIC_IO_LATENCY),
                          s->io_latency_p50_us) < 0 ||
            json_set_real(o, "io_latency_p99_us", has(s, PROBE_METRIC_IO_LATENCY),
                          s->io_latency_p99_us) < 0 ||
            json_set_uint(o, "io_events", has(s, PROBE_METRIC_IO_LATENCY), s->io_events) < 0 ||
            json_set_uint(o, "mem_available_bytes", has(s, PROBE_METRIC_MEMORY),
                          s->mem_available_bytes) < 0 ||
            json_set_uint(o, "mem_total_bytes", has(s, PROBE_METRIC_MEMORY), s->mem_total_bytes) <
                    0 ||
            json_set_uint(o, "tcp_retransmits", has(s, PROBE_METRIC_TCP_RETRANSMITS),
                          s->tcp_retransmits) < 0)
                goto finish;

        for (unsigned i = 0; i < 3; i++) {
                bool known = has(s, PROBE_METRIC_PSI_CPU + i);

                psi = json_object();
                if (!psi || json_set_real(psi, "some_avg10", known, psi_vals[i]->some_avg10) < 0 ||
                    json_set_real(psi, "full_avg10", known, psi_vals[i]->full_avg10) < 0 ||
                    json_object_set_new(o, psi_names[i], psi) < 0)
                        goto finish;
                psi = NULL;
        }

        if (has(s, PROBE_METRIC_LOAD_AVG)) {
                load = json_pack("[fff]", s->load_avg[0], s->load_avg[1], s->load_avg[2]);
                if (!load)
                        goto finish;
        } else
                load = json_null();
        if (json_object_set_new(o, "load_avg", load) < 0) {
                load = NULL;
                goto finish;
        }
        load = NULL;

        for (size_t i = 0; i < s->n_tasks; i++) {
                json_t *t = json_pack("{sIsisI}", "id",
                                      (json_int_t)MIN(s->tasks[i].id, (uint64_t)INT64_MAX), "pid",
                                      (int)s->tasks[i].pid, "cpu_usec",
                                      (json_int_t)MIN(s->tasks[i].cpu_usec, (uint64_t)INT64_MAX));
                if (!t || json_array_append_new(tasks, t) < 0)
                        goto finish;
        }
        if (json_object_set_new(o, "tasks", tasks) < 0) {
                tasks = NULL;
                goto finish;
        }
        tasks = NULL;

        for (ProbeMetric m = 0; m < _PROBE_METRIC_MAX; m++)
                if (json_object_set_new(sources, probe_metric_to_string(m),
                                        json_string(probe_source_to_string(s->source[m]))) < 0)
                        goto finish;
        if (json_object_set_new(o, "sources", sources) < 0) {
                sources = NULL;
                goto finish;
        }
        sources = NULL;

        text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!text)
                goto finish;
        *ret = text;
        r = 0;
finish:
        json_decref(psi);
        json_decref(load);
        json_decref(tasks);
        json_decref(sources);
        json_decref(o);
        return r;
}

static const char *src(const ProbeSnapshot *s, ProbeMetric m)
{
        return probe_source_to_string(s->source[m]);
}

void probe_snapshot_print(const ProbeSnapshot *s, FILE *f)
{
        static const char *const psi_names[3] = {"cpu", "memory", "io"};
        const ProbePsi *psi[3] = {&s->psi_cpu, &s->psi_memory, &s->psi_io};

        if (has(s, PROBE_METRIC_RUNQ_LATENCY))
                fprintf(f, "run-queue latency  p50 %.1f us  p99 %.1f us  (%" PRIu64 " waits, %s)\n",
                        s->runq_latency_p50_us, s->runq_latency_p99_us, s->runq_events,
                        src(s, PROBE_METRIC_RUNQ_LATENCY));
        else
                fprintf(f, "run-queue latency  n/a\n");
        if (has(s, PROBE_METRIC_CPU_BUSY))
                fprintf(f, "cpu busy           %.1f %%  (%s)\n", s->cpu_busy * 100.0,
                        src(s, PROBE_METRIC_CPU_BUSY));
        else
                fprintf(f, "cpu busy           n/a\n");
        for (unsigned i = 0; i < 3; i++) {
                if (has(s, PROBE_METRIC_PSI_CPU + i))
                        fprintf(f, "pressure %-9s some %.2f %%  full %.2f %%  (%s)\n", psi_names[i],
                                psi[i]->some_avg10, psi[i]->full_avg10,
                                src(s, PROBE_METRIC_PSI_CPU + i));
                else
                        fprintf(f, "pressure %-9s n/a\n", psi_names[i]);
        }
        if (has(s, PROBE_METRIC_IO_LATENCY))
                fprintf(f,
                        "io latency         p50 %.1f us  p99 %.1f us  (%" PRIu64 " requests, %s)\n",
                        s->io_latency_p50_us, s->io_latency_p99_us, s->io_events,
                        src(s, PROBE_METRIC_IO_LATENCY));
        else
                fprintf(f, "io latency         n/a\n");
        if (has(s, PROBE_METRIC_MEMORY))
                fprintf(f, "memory             %.2f GiB available of %.2f GiB  (%s)\n",
                        (double)s->mem_available_bytes / (1024.0 * 1024 * 1024),
                        (double)s->mem_total_bytes / (1024.0 * 1024 * 1024),
                        src(s, PROBE_METRIC_MEMORY));
        if (has(s, PROBE_METRIC_LOAD_AVG))
                fprintf(f, "load average       %.2f %.2f %.2f  (%s)\n", s->load_avg[0],
                        s->load_avg[1], s->load_avg[2], src(s, PROBE_METRIC_LOAD_AVG));
        if (has(s, PROBE_METRIC_TCP_RETRANSMITS))
                fprintf(f, "tcp retransmits    %" PRIu64 "  (%s)\n", s->tcp_retransmits,
                        src(s, PROBE_METRIC_TCP_RETRANSMITS));
        for (size_t i = 0; i < s->n_tasks; i++)
                fprintf(f, "task %-13" PRIu64 " pid %d  cpu %.3f s  (%s)\n", s->tasks[i].id,
                        (int)s->tasks[i].pid, (double)s->tasks[i].cpu_usec / 1e6,
                        src(s, PROBE_METRIC_TASK_CPU));
}

void probe_snapshot_to_load(const ProbeSnapshot *s, Cluster__Load *load)
{
        bool any_bpf = false, any_proc = false;

        if (has(s, PROBE_METRIC_CPU_BUSY))
                load->cpu_busy = (float)s->cpu_busy;
        if (has(s, PROBE_METRIC_LOAD_AVG))
                load->load_avg1 = (float)s->load_avg[0];
        if (has(s, PROBE_METRIC_MEMORY)) {
                load->mem_available_bytes = s->mem_available_bytes;
                load->mem_total_bytes = s->mem_total_bytes;
        }
        if (has(s, PROBE_METRIC_PSI_CPU))
                load->psi_cpu_some_avg10 = (float)s->psi_cpu.some_avg10;
        if (has(s, PROBE_METRIC_PSI_MEMORY)) {
                load->psi_mem_some_avg10 = (float)s->psi_memory.some_avg10;
                load->psi_mem_full_avg10 = (float)s->psi_memory.full_avg10;
        }
        if (has(s, PROBE_METRIC_PSI_IO)) {
                load->psi_io_some_avg10 = (float)s->psi_io.some_avg10;
                load->psi_io_full_avg10 = (float)s->psi_io.full_avg10;
        }
        if (has(s, PROBE_METRIC_RUNQ_LATENCY)) {
                load->runq_latency_p50_us = (float)s->runq_latency_p50_us;
                load->runq_latency_p99_us = (float)s->runq_latency_p99_us;
        }
        if (has(s, PROBE_METRIC_IO_LATENCY)) {
                load->io_latency_p50_us = (float)s->io_latency_p50_us;
                load->io_latency_p99_us = (float)s->io_latency_p99_us;
        }
        for (ProbeMetric m = 0; m < _PROBE_METRIC_MAX; m++) {
                any_bpf |= s->source[m] == PROBE_SOURCE_BPF;
                any_proc |= s->source[m] == PROBE_SOURCE_PROC;
        }
        /* A static string: Load is packed, never freed with protobuf_c_message_free_unpacked
         * while it points here. */
        load->probe_source = (char *)(any_bpf ? "bpf" : any_proc ? "proc" : "");
}
