/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Host probes: what the kernel sees of this host's load, for the agent's heartbeat.
 *
 * Two sources feed one snapshot type:
 *  - eBPF (CO-RE programs in bpf/): run-queue latency and block-IO latency histograms,
 *    CPU time per watched task, TCP retransmissions;
 *  - /proc: CPU busy (/proc/stat), pressure stall information (/proc/pressure/...),
 *    memory (/proc/meminfo), load average (/proc/loadavg), and approximations of what
 *    BPF would measure when it can't (see ProbeSnapshot).
 * Each metric says which source filled it; a metric whose source is PROBE_SOURCE_NONE
 * holds zeros and must not be shown as a measurement.
 *
 * probes_new() loads what the kernel and our privileges allow (it needs CAP_BPF and
 * CAP_PERFMON, or root) and falls back per metric, logging each fallback once at info
 * with its reason. Everything else returns errors and does not log above debug.
 *
 * No threads and no sleeping: the owner's loop calls probes_sample() on its timer (the
 * agent: every heartbeat) and polls probes_event_fd() when there is one. */

#include <stdio.h>
#include <sys/types.h>

#include "basic/macro.h"
#include "basic/time-util.h"
#include "cluster.pb-c.h"

typedef struct Probes Probes;

typedef enum ProbeSource {
        PROBE_SOURCE_NONE,
        PROBE_SOURCE_PROC,
        PROBE_SOURCE_BPF,
        _PROBE_SOURCE_MAX,
} ProbeSource;

typedef enum ProbeMetric {
        PROBE_METRIC_RUNQ_LATENCY,
        PROBE_METRIC_CPU_BUSY,
        PROBE_METRIC_PSI_CPU,
        PROBE_METRIC_PSI_MEMORY,
        PROBE_METRIC_PSI_IO,
        PROBE_METRIC_IO_LATENCY,
        PROBE_METRIC_MEMORY,
        PROBE_METRIC_LOAD_AVG,
        PROBE_METRIC_TASK_CPU,
        PROBE_METRIC_TCP_RETRANSMITS,
        _PROBE_METRIC_MAX,
} ProbeMetric;

/* "none", "proc", "bpf" */
const char *probe_source_to_string(ProbeSource s) _const_;
/* "runq_latency", "cpu_busy", "psi_cpu", ... (the JSON names) */
const char *probe_metric_to_string(ProbeMetric m) _const_;

/* The BPF program sets; each can be disabled on its own (ProbeOptions.disable). */
#define PROBE_PROGRAMS "runqlat", "cpuacct", "biolat", "tcpretrans"

typedef struct ProbeOptions {
        /* Try eBPF at all (false: /proc only). */
        bool enable_bpf;
        /* NULL or a NULL-terminated list of what not to load, to honour configuration
         * or to simulate a kernel without a hook: a program set ("runqlat", "cpuacct",
         * "biolat", "tcpretrans"), an attach kind ("tp_btf", "raw_tp", "tracepoint") or
         * one kind of one set ("runqlat:tp_btf"). */
        char *const *disable;
        /* The owner's sampling interval; only used to size rates and for the CLI. */
        usec_t interval;
        /* Run-queue latency of this process's tasks only (0: every task on the host). */
        pid_t runq_tgid;
} ProbeOptions;

#define PROBE_OPTIONS_DEFAULT ((ProbeOptions){.enable_bpf = true, .interval = USEC_PER_SEC})

typedef struct ProbePsi {
        double some_avg10; /* % of the last 10 s some task stalled */
        double full_avg10; /* % all non-idle tasks stalled (0 for cpu on older kernels) */
} ProbePsi;

typedef struct ProbeTaskCpu {
        uint64_t id; /* as given to probes_watch_pid(), or the pid when that was 0 */
        pid_t pid;
        uint64_t cpu_usec; /* CPU time used since it was watched */
} ProbeTaskCpu;

typedef struct ProbeSnapshot {
        usec_t timestamp; /* the `now` passed to probes_sample() */
        usec_t interval; /* since the previous sample (0 on the first) */

        /* Run-queue latency over the interval. bpf: percentiles of every wait for a CPU.
         * proc: the mean wait per time slice of the watched tasks' threads
         * (/proc/<pid>/task/<tid>/schedstat), put in both p50 and p99; none when no
         * task is watched. */
        double runq_latency_p50_us;
        double runq_latency_p99_us;
        uint64_t runq_events; /* waits measured in the interval */

        double cpu_busy; /* 0..1 over the interval, all CPUs (/proc/stat) */

        ProbePsi psi_cpu, psi_memory, psi_io;

        /* Block-IO latency (issue -> complete) over the interval. bpf: percentiles.
         * proc: the mean time per completed request from /proc/diskstats, in both. */
        double io_latency_p50_us;
        double io_latency_p99_us;
        uint64_t io_events;

        uint64_t mem_available_bytes;
        uint64_t mem_total_bytes;

        double load_avg[3];

        uint64_t tcp_retransmits; /* in the interval (bpf only) */

        ProbeTaskCpu *tasks; /* owned; probe_snapshot_done() frees it */
        size_t n_tasks;

        ProbeSource source[_PROBE_METRIC_MAX];
} ProbeSnapshot;

/* Frees what the snapshot owns and zeroes it. */
void probe_snapshot_done(ProbeSnapshot *s);

/* Never fails for lack of BPF: a host with nothing but /proc gets a Probes that reports
 * what /proc has. Fails with -errno only for OOM or invalid options. */
int probes_new(const ProbeOptions *opts, Probes **ret);
/* Detaches and unloads every program. Accepts NULL, returns NULL. */
Probes *probes_free(Probes *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Probes *, probes_free);

/* The source that feeds a metric in this Probes (what probes_new() managed to set up). */
ProbeSource probes_source(Probes *p, ProbeMetric m);

/* How a BPF program set ("runqlat", "cpuacct", "biolat", "tcpretrans") is attached:
 * "tp_btf", "raw_tp" or "tracepoint"; NULL when it is not, and then *ret_reason (if
 * ret_reason is not NULL) says why, e.g. "tp_btf: loading failed: ...; raw_tp: ...". */
const char *probes_program_kind(Probes *p, const char *set, const char **ret_reason);

/* Account the CPU time of a task from now on. pid: its main process. id: the caller's
 * key for it (the agent's task id), reported in ProbeTaskCpu.id; 0 means "use pid".
 * How it is followed is found here: when pid sits in a cgroup v2 cgroup of its own
 * (not the root, not the caller's), everything in that cgroup counts (BPF: by cgroup
 * id; /proc: its cpu.stat); otherwise per process: pid and, with BPF, every process it
 * forks afterwards, or without BPF pid plus its reaped children (/proc/<pid>/stat).
 * -EEXIST when id is watched already, -ESRCH when pid is gone, -E2BIG past the limit
 * (4096). */
int probes_watch_pid(Probes *p, pid_t pid, uint64_t id);
/* id as reported in ProbeTaskCpu.id. -ENOENT when not watched. */
int probes_unwatch(Probes *p, uint64_t id);

/* Reads the maps and /proc and fills ret with what changed since the previous call
 * (the first call has interval 0 and latency percentiles over everything seen so far).
 * now: CLOCK_MONOTONIC. On failure ret is untouched. */
int probes_sample(Probes *p, usec_t now, ProbeSnapshot *ret);

/* An fd that becomes readable when events (TCP retransmissions) wait: poll it and call
 * probes_handle_events(). -EBADF when no program produces events. */
int probes_event_fd(Probes *p);
/* Consumes pending events without blocking; returns how many, or -errno. */
int probes_handle_events(Probes *p);

/* {"timestamp_usec":..,"runq_latency_p50_us":..,...,"sources":{"runq_latency":"bpf",..},
 * "tasks":[{"id":..,"pid":..,"cpu_usec":..}]} (a NUL-terminated string, owned by the
 * caller). Metrics whose source is none are null. */
int probe_snapshot_to_json(const ProbeSnapshot *s, char **ret);
/* A few human-readable lines. */
void probe_snapshot_print(const ProbeSnapshot *s, FILE *f);

/* The heartbeat's Load fields that the probes know (cpu_busy, load_avg1, memory, PSI,
 * latencies, probe_source); the agent fills the rest (tasks, reservations, spill). */
void probe_snapshot_to_load(const ProbeSnapshot *s, Cluster__Load *load);

/* The view behind `cluster-agent --probe [--interval S] [--count N] [--json] [--no-bpf]
 * [--disable NAME]...`: prints one snapshot per interval until --count or SIGINT/SIGTERM.
 * argv[0] is the program name. Returns an exit status. */
int probe_cli_main(int argc, char **argv);
