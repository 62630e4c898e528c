/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Between probe.c and its two sources, probe-proc.c and probe-bpf.c. Not for the agent. */

#include "probe.h"
#include "probe-config.h"
#include "probe-histogram.h"

/* ---- /proc ---------------------------------------------------------------------- */

typedef struct ProbeProcCpu {
        uint64_t busy; /* jiffies not idle or iowait, all CPUs */
        uint64_t total;
} ProbeProcCpu;

typedef struct ProbeProcDisk {
        uint64_t ios; /* reads + writes completed */
        uint64_t io_msec; /* time spent on them, ms */
} ProbeProcDisk;

/* The parsers take a file's text (NUL-terminated) so that they can be tested and fuzzed
 * on any input; they return -EBADMSG when it does not hold what they need. */
int probe_parse_stat_cpu(const char *text, ProbeProcCpu *ret);
int probe_parse_psi(const char *text, ProbePsi *ret);
int probe_parse_meminfo(const char *text, uint64_t *ret_available, uint64_t *ret_total);
int probe_parse_loadavg(const char *text, double ret[3]);
/* is_disk: NULL (every line counts) or a filter on the device name (whole disks). */
int probe_parse_diskstats(const char *text, bool (*is_disk)(const char *name), ProbeProcDisk *ret);
/* /proc/<pid>/stat: utime + stime + cutime + cstime, in clock ticks. */
int probe_parse_pid_stat(const char *text, uint64_t *ret_ticks);
/* /proc/<pid>/task/<tid>/schedstat: "run_ns wait_ns slices". */
int probe_parse_schedstat(const char *text, uint64_t *ret_wait_ns, uint64_t *ret_slices);
/* cgroup v2 cpu.stat: usage_usec. */
int probe_parse_cgroup_cpu_stat(const char *text, uint64_t *ret_usec);
/* /proc/<pid>/cgroup: the "0::/path" line's path. */
int probe_parse_pid_cgroup(const char *text, char **ret_path);

typedef struct ProbeProc {
        char *proc; /* "/proc", or a copy of it for tests */
        bool have_stat, have_meminfo, have_loadavg, have_diskstats;
        bool have_psi[3]; /* cpu, memory, io */
        char *cgroup2; /* where cgroup v2 is mounted, or NULL */

        ProbeProcCpu cpu;
        bool have_cpu;
        ProbeProcDisk disk;
        bool have_disk;
} ProbeProc;

/* Detects which files exist under proc_root ("/proc"). */
int probe_proc_init(ProbeProc *pp, const char *proc_root);
void probe_proc_done(ProbeProc *pp);
/* Fills cpu busy, PSI, memory, load average, and the IO latency approximation
 * (source PROC) where the files are there, and marks the sources. */
int probe_proc_sample(ProbeProc *pp, ProbeSnapshot *s, bool want_io);
/* CPU time of a process and its reaped children, µs. */
int probe_proc_pid_cpu(ProbeProc *pp, pid_t pid, uint64_t *ret_usec);
/* Sum over the process's threads of schedstat's wait time and time slices. */
int probe_proc_pid_runq(ProbeProc *pp, pid_t pid, uint64_t *ret_wait_ns, uint64_t *ret_slices);
/* The cgroup v2 directory of pid (absolute path below the mount), or -ENOENT. */
int probe_proc_pid_cgroup_dir(ProbeProc *pp, pid_t pid, char **ret);
int probe_proc_cgroup_cpu(const char *dir, uint64_t *ret_usec);

/* ---- BPF ------------------------------------------------------------------------ */

typedef enum ProbeProgram {
        PROBE_PROGRAM_RUNQLAT,
        PROBE_PROGRAM_CPUACCT,
        PROBE_PROGRAM_BIOLAT,
        PROBE_PROGRAM_TCPRETRANS,
        _PROBE_PROGRAM_MAX,
} ProbeProgram;

const char *probe_program_to_string(ProbeProgram p) _const_;

typedef struct ProbeBpf ProbeBpf;

/* Loads and attaches every program set it can. Sets that fail are left out, with a
 * reason in probe_bpf_reason(); returns -errno only when none could be tried at all
 * (no BTF, no privilege), with *ret_reason set (static string). */
int probe_bpf_new(const ProbeOptions *opts, bool track_cgroups, ProbeBpf **ret,
                  const char **ret_reason);
ProbeBpf *probe_bpf_free(ProbeBpf *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(ProbeBpf *, probe_bpf_free);

/* Whether a program set is attached, and if not why (NULL when it is). */
bool probe_bpf_loaded(ProbeBpf *b, ProbeProgram p);
const char *probe_bpf_reason(ProbeBpf *b, ProbeProgram p);
/* "tp_btf" or "raw_tp": what the set was attached with. */
const char *probe_bpf_kind(ProbeBpf *b, ProbeProgram p);

/* The cumulative histograms, summed over CPUs. */
int probe_bpf_read_runq(ProbeBpf *b, ProbeHistogram *ret);
int probe_bpf_read_io(ProbeBpf *b, ProbeHistogram *ret);

/* cgroup_id 0: follow pid per process. key: what usage is kept under. */
int probe_bpf_watch(ProbeBpf *b, pid_t pid, uint64_t cgroup_id, uint64_t key);
int probe_bpf_unwatch(ProbeBpf *b, pid_t pid, uint64_t cgroup_id, uint64_t key);
int probe_bpf_task_cpu(ProbeBpf *b, uint64_t key, uint64_t *ret_ns);

int probe_bpf_event_fd(ProbeBpf *b);
/* Consumes the ring buffer; adds the TCP retransmissions seen to *tcp_retransmits. */
int probe_bpf_handle_events(ProbeBpf *b, uint64_t *tcp_retransmits);
