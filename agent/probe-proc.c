/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The /proc source: what every Linux host has, and what the probes fall back to when BPF
 * is not allowed. Each file is detected once; a missing one leaves its metric at
 * PROBE_SOURCE_NONE (/proc/pressure exists only with CONFIG_PSI and psi=1). */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <sys/stat.h>

#include "basic/alloc-util.h"
#include "basic/fd-util.h"
#include "basic/string-util.h"
#include "probe-internal.h"

static inline void closedirp(DIR **d)
{
        if (*d)
                closedir(*d);
}

/* /proc files are small; a larger one is not what we expect. */
#define PROC_FILE_MAX (1024 * 1024)

static const char *skip_space(const char *p)
{
        while (*p == ' ' || *p == '\t')
                p++;
        return p;
}

/* One unsigned decimal at *p (after blanks), advancing *p. */
static int next_u64(const char **p, uint64_t *ret)
{
        const char *s = skip_space(*p);
        uint64_t v = 0;

        if (!isdigit((unsigned char)*s))
                return -EBADMSG;
        for (; isdigit((unsigned char)*s); s++) {
                if (__builtin_mul_overflow(v, 10, &v) ||
                    __builtin_add_overflow(v, (uint64_t)(*s - '0'), &v))
                        return -EBADMSG;
        }
        *p = s;
        *ret = v;
        return 0;
}

/* The line starting with key (at a line start), or NULL. */
static const char *find_line(const char *text, const char *key)
{
        for (const char *l = text; l && *l;) {
                const char *rest = startswith(l, key);
                if (rest)
                        return rest;
                l = strchr(l, '\n');
                if (l)
                        l++;
        }
        return NULL;
}

int probe_parse_stat_cpu(const char *text, ProbeProcCpu *ret)
{
        uint64_t v[8] = {};
        const char *p;
        int r;

        p = find_line(text, "cpu ");
        if (!p)
                return -EBADMSG;
        /* user nice system idle iowait irq softirq steal (guest is inside user) */
        for (unsigned i = 0; i < ELEMENTSOF(v); i++) {
                r = next_u64(&p, &v[i]);
                if (r < 0) {
                        if (i < 4) /* very old kernels stop after idle */
                                return r;
                        break;
                }
        }
        *ret = (ProbeProcCpu){
                .busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7],
                .total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7],
        };
        return 0;
}

static int parse_psi_line(const char *line, double *ret)
{
        const char *p;
        char *end;
        double v;

        if (!line)
                return -EBADMSG;
        p = skip_space(line);
        p = startswith(p, "avg10=");
        if (!p)
                return -EBADMSG;
        errno = 0;
        v = strtod(p, &end);
        if (errno != 0 || end == p || !(v >= 0 && v <= 100))
                return -EBADMSG;
        *ret = v;
        return 0;
}

int probe_parse_psi(const char *text, ProbePsi *ret)
{
        ProbePsi psi = {};
        const char *full;
        int r;

        r = parse_psi_line(find_line(text, "some "), &psi.some_avg10);
        if (r < 0)
                return r;
        /* "full" for cpu appeared in 5.13; before, cpu has no full line. */
        full = find_line(text, "full ");
        if (full) {
                r = parse_psi_line(full, &psi.full_avg10);
                if (r < 0)
                        return r;
        }
        *ret = psi;
        return 0;
}

static int meminfo_field(const char *text, const char *key, uint64_t *ret)
{
        const char *p = find_line(text, key);
        uint64_t kb;
        int r;

        if (!p)
                return -EBADMSG;
        r = next_u64(&p, &kb);
        if (r < 0)
                return r;
        if (!startswith(skip_space(p), "kB") || kb > UINT64_MAX / 1024)
                return -EBADMSG;
        *ret = kb * 1024;
        return 0;
}

int probe_parse_meminfo(const char *text, uint64_t *ret_available, uint64_t *ret_total)
{
        uint64_t avail, total;
        int r;

        r = meminfo_field(text, "MemTotal:", &total);
        if (r < 0)
                return r;
        /* MemAvailable appeared in 3.14; before it, free memory is the best guess. */
        r = meminfo_field(text, "MemAvailable:", &avail);
        if (r < 0)
                r = meminfo_field(text, "MemFree:", &avail);
        if (r < 0)
                return r;
        *ret_available = avail;
        *ret_total = total;
        return 0;
}

int probe_parse_loadavg(const char *text, double ret[3])
{
        double v[3];
        const char *p = text;

        for (unsigned i = 0; i < 3; i++) {
                char *end;

                p = skip_space(p);
                errno = 0;
                v[i] = strtod(p, &end);
                if (errno != 0 || end == p || !(v[i] >= 0 && v[i] < 1e9))
                        return -EBADMSG;
                p = end;
        }
        memcpy(ret, v, sizeof(v));
        return 0;
}

int probe_parse_diskstats(const char *text, bool (*is_disk)(const char *name), ProbeProcDisk *ret)
{
        ProbeProcDisk d = {};
        bool any = false;

        for (const char *l = text; l && *l;) {
                const char *p = l, *name;
                uint64_t v[7], major, minor;
                char dev[64];
                size_t n;
                bool ok = true;

                l = strchr(l, '\n');
                if (l)
                        l++;

                if (next_u64(&p, &major) < 0 || next_u64(&p, &minor) < 0)
                        continue;
                name = skip_space(p);
                n = strcspn(name, " \t\n");
                if (n == 0 || n >= sizeof(dev))
                        continue;
                memcpy(dev, name, n);
                dev[n] = 0;
                p = name + n;
                /* reads merged sectors ms_reading writes merged sectors ms_writing */
                for (unsigned i = 0; i < ELEMENTSOF(v) && ok; i++)
                        ok = next_u64(&p, &v[i]) >= 0;
                uint64_t ms_writing;
                if (!ok || next_u64(&p, &ms_writing) < 0)
                        continue;
                if (is_disk && !is_disk(dev))
                        continue;
                d.ios += v[0] + v[4];
                d.io_msec += v[3] + ms_writing;
                any = true;
        }
        if (!any)
                return -EBADMSG;
        *ret = d;
        return 0;
}

int probe_parse_pid_stat(const char *text, uint64_t *ret_ticks)
{
        const char *p = strrchr(text, ')');
        uint64_t sum = 0;

        if (!p)
                return -EBADMSG;
        p++;
        /* after the comm: state is field 3; utime, stime, cutime, cstime are 14..17 */
        for (unsigned field = 3; field <= 17; field++) {
                const char *s = skip_space(p);
                size_t n = strcspn(s, " \n");

                if (n == 0)
                        return -EBADMSG;
                if (field >= 14) {
                        uint64_t v;
                        const char *q = s;

                        /* cutime/cstime are signed in the kernel but never negative */
                        if (next_u64(&q, &v) < 0 || q != s + n)
                                return -EBADMSG;
                        if (__builtin_add_overflow(sum, v, &sum))
                                return -EBADMSG;
                }
                p = s + n;
        }
        *ret_ticks = sum;
        return 0;
}

int probe_parse_schedstat(const char *text, uint64_t *ret_wait_ns, uint64_t *ret_slices)
{
        uint64_t run, wait, slices;
        const char *p = text;

        if (next_u64(&p, &run) < 0 || next_u64(&p, &wait) < 0 || next_u64(&p, &slices) < 0)
                return -EBADMSG;
        *ret_wait_ns = wait;
        *ret_slices = slices;
        return 0;
}

int probe_parse_cgroup_cpu_stat(const char *text, uint64_t *ret_usec)
{
        const char *p = find_line(text, "usage_usec ");

        if (!p)
                return -EBADMSG;
        return next_u64(&p, ret_usec);
}

int probe_parse_pid_cgroup(const char *text, char **ret_path)
{
        const char *p = find_line(text, "0::");
        size_t n;
        char *s;

        if (!p || *p != '/')
                return -ENOENT;
        n = strcspn(p, "\n");
        if (n >= PATH_MAX)
                return -EBADMSG;
        s = strndup(p, n);
        if (!s)
                return -ENOMEM;
        *ret_path = s;
        return 0;
}

static int read_proc(const ProbeProc *pp, const char *name, char **ret)
{
        _cleanup_free_ char *path = strprintf("%s/%s", pp->proc, name);

        if (!path)
                return -ENOMEM;
        return read_full_file(path, ret, NULL, PROC_FILE_MAX);
}

static bool proc_has(const ProbeProc *pp, const char *name)
{
        _cleanup_free_ char *text = NULL;

        /* Reading, not access(): the pressure files exist but fail with EOPNOTSUPP when
         * PSI is compiled in and disabled (psi=0). */
        return read_proc(pp, name, &text) >= 0;
}

static bool is_whole_disk(const char *name)
{
        _cleanup_free_ char *path = NULL;
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;

        /* Partitions would count their IOs twice, and loop/ram/zram devices are not
         * disks the host waits on. */
        if (startswith(name, "loop") || startswith(name, "ram") || startswith(name, "zram"))
                return false;
        path = strprintf("/sys/block/%s/slaves", name);
        if (!path)
                return false;
        d = opendir(path);
        if (!d) /* not in /sys/block: a partition */
                return false;
        /* Stacked devices (device mapper, md) pass their IOs on to the disks below,
         * which count them already. */
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        return false;
        return true;
}

static char *find_cgroup2(void)
{
        static const char *const candidates[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};
        struct statfs sfs;

        for (size_t i = 0; i < ELEMENTSOF(candidates); i++)
                if (statfs(candidates[i], &sfs) >= 0 && sfs.f_type == CGROUP2_SUPER_MAGIC)
                        return strdup(candidates[i]);
        return NULL;
}

int probe_proc_init(ProbeProc *pp, const char *proc_root)
{
        static const char *const psi[3] = {"pressure/cpu", "pressure/memory", "pressure/io"};

        *pp = (ProbeProc){};
        pp->proc = strdup(proc_root ?: "/proc");
        if (!pp->proc)
                return -ENOMEM;
        pp->have_stat = proc_has(pp, "stat");
        pp->have_meminfo = proc_has(pp, "meminfo");
        pp->have_loadavg = proc_has(pp, "loadavg");
        pp->have_diskstats = proc_has(pp, "diskstats");
        for (unsigned i = 0; i < 3; i++)
                pp->have_psi[i] = proc_has(pp, psi[i]);
        pp->cgroup2 = find_cgroup2();
        return 0;
}

void probe_proc_done(ProbeProc *pp)
{
        pp->proc = mfree(pp->proc);
        pp->cgroup2 = mfree(pp->cgroup2);
}

int probe_proc_sample(ProbeProc *pp, ProbeSnapshot *s, bool want_io)
{
        static const char *const psi_files[3] = {"pressure/cpu", "pressure/memory", "pressure/io"};
        static const ProbeMetric psi_metric[3] = {PROBE_METRIC_PSI_CPU, PROBE_METRIC_PSI_MEMORY,
                                                  PROBE_METRIC_PSI_IO};
        ProbePsi *psi_out[3] = {&s->psi_cpu, &s->psi_memory, &s->psi_io};
        int r;

        /* A file that fails now after working at start (a read error, a kernel that
         * changed its format) leaves its metric at none for this sample only. */
        if (pp->have_stat) {
                _cleanup_free_ char *text = NULL;
                ProbeProcCpu cpu;

                r = read_proc(pp, "stat", &text);
                if (r >= 0)
                        r = probe_parse_stat_cpu(text, &cpu);
                if (r >= 0) {
                        if (pp->have_cpu && cpu.total > pp->cpu.total && cpu.busy >= pp->cpu.busy) {
                                double busy = (double)(cpu.busy - pp->cpu.busy) /
                                        (double)(cpu.total - pp->cpu.total);
                                s->cpu_busy = CLAMP(busy, 0.0, 1.0);
                        } else {
                                /* first sample: the average since boot */
                                s->cpu_busy = cpu.total ? (double)cpu.busy / (double)cpu.total : 0;
                        }
                        pp->cpu = cpu;
                        pp->have_cpu = true;
                        s->source[PROBE_METRIC_CPU_BUSY] = PROBE_SOURCE_PROC;
                }
        }

        for (unsigned i = 0; i < 3; i++) {
                _cleanup_free_ char *text = NULL;

                if (!pp->have_psi[i])
                        continue;
                r = read_proc(pp, psi_files[i], &text);
                if (r >= 0)
                        r = probe_parse_psi(text, psi_out[i]);
                if (r >= 0)
                        s->source[psi_metric[i]] = PROBE_SOURCE_PROC;
        }

        if (pp->have_meminfo) {
                _cleanup_free_ char *text = NULL;

                r = read_proc(pp, "meminfo", &text);
                if (r >= 0)
                        r = probe_parse_meminfo(text, &s->mem_available_bytes, &s->mem_total_bytes);
                if (r >= 0)
                        s->source[PROBE_METRIC_MEMORY] = PROBE_SOURCE_PROC;
        }

        if (pp->have_loadavg) {
                _cleanup_free_ char *text = NULL;

                r = read_proc(pp, "loadavg", &text);
                if (r >= 0)
                        r = probe_parse_loadavg(text, s->load_avg);
                if (r >= 0)
                        s->source[PROBE_METRIC_LOAD_AVG] = PROBE_SOURCE_PROC;
        }

        if (want_io && pp->have_diskstats) {
                _cleanup_free_ char *text = NULL;
                ProbeProcDisk disk;

                r = read_proc(pp, "diskstats", &text);
                if (r >= 0)
                        r = probe_parse_diskstats(text, is_whole_disk, &disk);
                if (r >= 0) {
                        if (pp->have_disk && disk.ios > pp->disk.ios &&
                            disk.io_msec >= pp->disk.io_msec) {
                                double mean = (double)(disk.io_msec - pp->disk.io_msec) * 1000.0 /
                                        (double)(disk.ios - pp->disk.ios);
                                s->io_latency_p50_us = s->io_latency_p99_us = mean;
                                s->io_events = disk.ios - pp->disk.ios;
                        }
                        pp->disk = disk;
                        pp->have_disk = true;
                        s->source[PROBE_METRIC_IO_LATENCY] = PROBE_SOURCE_PROC;
                }
        }
        return 0;
}

int probe_proc_pid_cpu(ProbeProc *pp, pid_t pid, uint64_t *ret_usec)
{
        _cleanup_free_ char *text = NULL, *name = strprintf("%d/stat", (int)pid);
        static long hz = 0;
        uint64_t ticks;
        int r;

        if (!name)
                return -ENOMEM;
        r = read_proc(pp, name, &text);
        if (r == -ENOENT)
                return -ESRCH;
        if (r < 0)
                return r;
        r = probe_parse_pid_stat(text, &ticks);
        if (r < 0)
                return r;
        if (hz <= 0)
                hz = sysconf(_SC_CLK_TCK);
        if (hz <= 0)
                hz = 100;
        *ret_usec = ticks * (USEC_PER_SEC / (uint64_t)hz);
        return 0;
}

int probe_proc_pid_runq(ProbeProc *pp, pid_t pid, uint64_t *ret_wait_ns, uint64_t *ret_slices)
{
        _cleanup_free_ char *dir = strprintf("%s/%d/task", pp->proc, (int)pid);
        _cleanup_(closedirp) DIR *d = NULL;
        uint64_t wait = 0, slices = 0;
        struct dirent *de;

        if (!dir)
                return -ENOMEM;
        d = opendir(dir);
        if (!d)
                return errno == ENOENT ? -ESRCH : -errno;
        while ((de = readdir(d))) {
                _cleanup_free_ char *path = NULL, *text = NULL;
                uint64_t w, n;

                if (de->d_name[0] == '.')
                        continue;
                path = strprintf("%s/%s/schedstat", dir, de->d_name);
                if (!path)
                        return -ENOMEM;
                /* threads come and go while we read: skip the ones that went */
                if (read_full_file(path, &text, NULL, 4096) < 0 ||
                    probe_parse_schedstat(text, &w, &n) < 0)
                        continue;
                wait += w;
                slices += n;
        }
        *ret_wait_ns = wait;
        *ret_slices = slices;
        return 0;
}

int probe_proc_pid_cgroup_dir(ProbeProc *pp, pid_t pid, char **ret)
{
        _cleanup_free_ char *text = NULL, *rel = NULL, *name = strprintf("%d/cgroup", (int)pid);
        char *dir;
        int r;

        if (!name)
                return -ENOMEM;
        if (!pp->cgroup2)
                return -ENOENT;
        r = read_proc(pp, name, &text);
        if (r == -ENOENT)
                return -ESRCH;
        if (r < 0)
                return r;
        r = probe_parse_pid_cgroup(text, &rel);
        if (r < 0)
                return r;
        dir = strprintf("%s%s", pp->cgroup2, rel);
        if (!dir)
                return -ENOMEM;
        *ret = dir;
        return 0;
}

int probe_proc_cgroup_cpu(const char *dir, uint64_t *ret_usec)
{
        _cleanup_free_ char *path = strprintf("%s/cpu.stat", dir), *text = NULL;
        int r;

        if (!path)
                return -ENOMEM;
        r = read_full_file(path, &text, NULL, PROC_FILE_MAX);
        if (r < 0)
                return r;
        return probe_parse_cgroup_cpu_stat(text, ret_usec);
}
