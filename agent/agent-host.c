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
