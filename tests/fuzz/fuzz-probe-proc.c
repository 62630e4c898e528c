/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The host probes' /proc and cgroup parsers on arbitrary text: each file they read is
 * the kernel's, but a container's /proc (lxcfs, gVisor) or a future kernel may say
 * anything. */
#include <string.h>

#include "basic/alloc-util.h"
#include "probe-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_free_ char *text = NULL, *path = NULL;
        ProbeProcCpu cpu;
        ProbeProcDisk disk;
        ProbePsi psi;
        uint64_t a, b;
        double load[3];

        if (size > 256 * 1024)
                return 0;
        text = malloc(size + 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = 0;

        (void)probe_parse_stat_cpu(text, &cpu);
        (void)probe_parse_psi(text, &psi);
        (void)probe_parse_meminfo(text, &a, &b);
        (void)probe_parse_loadavg(text, load);
        (void)probe_parse_diskstats(text, NULL, &disk);
        (void)probe_parse_pid_stat(text, &a);
        (void)probe_parse_schedstat(text, &a, &b);
        (void)probe_parse_cgroup_cpu_stat(text, &a);
        (void)probe_parse_pid_cgroup(text, &path);
        return 0;
}
