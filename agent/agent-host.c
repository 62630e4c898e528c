/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "agent/agent-host.h"
#include "basic/fd-util.h"
#include "basic/string-util.h"

static int meminfo_field(const char *name, uint64_t *ret)
{
        _cleanup_fclose_ FILE *f = fopen("/proc/meminfo", "re");
        char line[256];
        size_t l = strlen(name);

        if (!f)
                return -errno;
        while (fgets(line, sizeof line, f)) {
                unsigned long long kb;
                if (strncmp(line, name, l) == 0 && line[l] == ':' &&
                    sscanf(line + l + 1, "%llu", &kb) == 1) {
                        *ret = (uint64_t)kb * 1024;
                        return 0;
                }
        }
        return -ENOENT;
}

int host_info_read(HostInfo *ret)
{
        struct utsname u;
        cpu_set_t set;
        HostInfo h = {};

        if (uname(&u) < 0)
                return -errno;
        snprintf(h.arch, sizeof h.arch, "%s", u.machine);
        snprintf(h.kernel, sizeof h.kernel, "%s", u.release);
        snprintf(h.hostname, sizeof h.hostname, "%s", u.nodename);
        if (sched_getaffinity(0, sizeof set, &set) >= 0)
                h.cpus = (uint32_t)CPU_COUNT(&set);
        if (h.cpus == 0) {
                long n = sysconf(_SC_NPROCESSORS_ONLN);
                h.cpus = n > 0 ? (uint32_t)n : 1;
        }
        (void)meminfo_field("MemTotal", &h.memory_bytes);
        h.has_psi = access("/proc/pressure/cpu", R_OK) == 0;
        h.has_pidfd = true; /* the loop refuses to start without io_uring, which is newer */
        *ret = h;
        return 0;
}

static float psi_avg10(const char *path, const char *kind)
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char line[256];
        float v;

        if (!f)
                return 0;
        while (fgets(line, sizeof line, f))
                if (startswith(line, kind) && sscanf(line + strlen(kind), " avg10=%f", &v) == 1)
                        return v;
        return 0;
}

int load_sample(LoadSampler *s, Cluster__Load *load)
{
        _cleanup_fclose_ FILE *f = fopen("/proc/stat", "re");
        unsigned long long v[10] = {};
        uint64_t busy, total;
        double la;

        if (f && fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                        &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
                total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
                busy = total - v[3] - v[4]; /* minus idle and iowait */
                if (s->prev_total && total > s->prev_total)
                        load->cpu_busy = (float)(busy - MIN(busy, s->prev_busy)) /
                                         (float)(total - s->prev_total);
                s->prev_busy = busy;
                s->prev_total = total;
        }
        _cleanup_fclose_ FILE *l = fopen("/proc/loadavg", "re");
        if (l && fscanf(l, "%lf", &la) == 1)
                load->load_avg1 = (float)la;
        (void)meminfo_field("MemAvailable", &load->mem_available_bytes);
        (void)meminfo_field("MemTotal", &load->mem_total_bytes);
        load->psi_cpu_some_avg10 = psi_avg10("/proc/pressure/cpu", "some");
        load->psi_mem_some_avg10 = psi_avg10("/proc/pressure/memory", "some");
        load->psi_mem_full_avg10 = psi_avg10("/proc/pressure/memory", "full");
        load->psi_io_some_avg10 = psi_avg10("/proc/pressure/io", "some");
        load->psi_io_full_avg10 = psi_avg10("/proc/pressure/io", "full");
        load->probe_source = (char *)"proc";
        return 0;
}
