/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A stand-in for cluster-scheduler and cluster-agent under a real systemd
 * (nspawn-units.sh): started by the shipped units, it reports what the unit gave it —
 * the named listening sockets (through sd-util), the watchdog, its user, capabilities
 * and cgroup, what the sandbox lets it do — as "key value" lines in
 * $STATE_DIRECTORY/report, then signals READY=1, pings the watchdog and exits cleanly
 * on SIGTERM. Installed under the daemons' names; it acts as the agent when its name
 * ends in "agent". */
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/bpf.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include "basic/alloc-util.h"
#include "basic/fd-util.h"
#include "basic/string-util.h"
#include "shared/log.h"
#include "shared/sd-util.h"

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
        stop = 1;
}

static void report_address(FILE *out, const char *name, int fd)
{
        struct sockaddr_storage ss;
        socklen_t l = sizeof ss;
        char a[sizeof(struct sockaddr_un) + 16] = "?";

        if (fd < 0) {
                fprintf(out, "fd.%s none\n", name);
                return;
        }
        if (getsockname(fd, (struct sockaddr *)&ss, &l) == 0) {
                if (ss.ss_family == AF_INET) {
                        const struct sockaddr_in *s = (const struct sockaddr_in *)&ss;
                        inet_ntop(AF_INET, &s->sin_addr, a, sizeof a);
                        snprintf(a + strlen(a), 8, ":%u", ntohs(s->sin_port));
                } else if (ss.ss_family == AF_INET6) {
                        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&ss;
                        inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof a);
                        snprintf(a + strlen(a), 8, ":%u", ntohs(s->sin6_port));
                } else if (ss.ss_family == AF_UNIX)
                        snprintf(a, sizeof a, "%s", ((const struct sockaddr_un *)&ss)->sun_path);
        }
        fprintf(out, "fd.%s %s\n", name, a);
}

/* "CapEff:\t000..." lines of /proc/self/status as "CapEff 000...". */
static void report_status(FILE *out)
{
        _cleanup_fclose_ FILE *f = fopen("/proc/self/status", "re");
        char line[256];

        while (f && fgets(line, sizeof line, f)) {
                char key[64], value[128];
                if (sscanf(line, "%63[^:]:%*[ \t]%127s", key, value) != 2)
                        continue;
                if (startswith(key, "Cap") || streq(key, "NoNewPrivs"))
                        fprintf(out, "%s %s\n", key, value);
        }
}

/* The cgroup v2 path of this process ("0::/x/y"), under the v2 mount: /sys/fs/cgroup, or
 * /sys/fs/cgroup/unified on a hybrid host. */
static char *own_cgroup(void)
{
        _cleanup_fclose_ FILE *f = fopen("/proc/self/cgroup", "re");
        char line[512];

        while (f && fgets(line, sizeof line, f))
                if (startswith(line, "0::")) {
                        line[strcspn(line, "\n")] = 0;
                        struct stat st;
                        if (stat("/sys/fs/cgroup/unified", &st) == 0)
                                return strprintf("/sys/fs/cgroup/unified%s", line + 3);
                        return strprintf("/sys/fs/cgroup%s", line + 3);
                }
        return NULL;
}

static void report_agent(FILE *out)
{
        union bpf_attr attr = {
                .map_type = BPF_MAP_TYPE_ARRAY,
                .key_size = 4,
                .value_size = 8,
                .max_entries = 1,
        };
        _cleanup_free_ char *cg = own_cgroup(), *child = NULL;
        long fd;

        /* CAP_BPF alone must be enough to create a map (unprivileged BPF is off). */
        fd = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr);
        fprintf(out, "bpf %s\n", fd >= 0 ? "ok" : strerror(errno));
        if (fd >= 0)
                close((int)fd);

        /* Delegate=yes: the subtree is ours to make task cgroups in. */
        child = cg ? strprintf("%s/probe", cg) : NULL;
        fprintf(out, "cgroup.mkdir %s\n",
                !child                            ? "no-cgroup"
                        : mkdir(child, 0755) == 0 ? "ok"
                                                  : strerror(errno));
        if (child)
                (void)rmdir(child);

        /* CAP_CHOWN: a task directory handed to the task user. */
        const char *sd = getenv("STATE_DIRECTORY");
        struct passwd *pw = getpwnam("cluster-ai-task");
        _cleanup_free_ char *tdir = sd ? strprintf("%s/task", sd) : NULL;
        int r = -ENOENT;
        if (tdir && pw && (mkdir(tdir, 0700) == 0 || errno == EEXIST))
                r = chown(tdir, pw->pw_uid, pw->pw_gid) < 0 ? -errno : 0;
        fprintf(out, "chown %s\n", r == 0 ? "ok" : strerror(-r));

        /* ProtectSystem=full: /etc is read-only even with CAP_FOWNER/CAP_CHOWN. */
        int e = open("/etc/cluster-ai-probe", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        fprintf(out, "write.etc %s\n", e >= 0 ? "ok" : strerror(errno));
        if (e >= 0) {
                close(e);
                unlink("/etc/cluster-ai-probe");
        }
}

int main(int argc, char **argv)
{
        static const char *const names[] = {"cluster", "control", "http", "ollama", "chat"};
        const char *sd = getenv("STATE_DIRECTORY");
        _cleanup_free_ char *path = NULL;
        _cleanup_fclose_ FILE *out = NULL;
        usec_t wd;
        int n;

        log_open();
        signal(SIGTERM, on_term);
        path = strprintf("%s/report", sd ?: "/tmp");
        if (!path)
                return log_oom(), 1;
        out = fopen(path, "we");
        if (!out)
                return log_error_errno(errno, "Failed to open %s: %m", path), 1;

        n = listen_fds_collect();
        fprintf(out, "fds %d\n", n);
        fprintf(out, "listen_fds_env %s\n", getenv("LISTEN_FDS") ? "set" : "unset");
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                int fd = listen_fds_take(names[i]);
                report_address(out, names[i], fd);
                if (fd >= 0)
                        fprintf(out, "cloexec.%s %d\n", names[i],
                                (fcntl(fd, F_GETFD) & FD_CLOEXEC) ? 1 : 0);
        }
        listen_fds_close_unused();

        wd = watchdog_interval();
        fprintf(out, "watchdog %llu\n", (unsigned long long)wd);
        fprintf(out, "uid %d\n", (int)getuid());
        report_status(out);
        if (endswith(argv[0], "agent"))
                report_agent(out);
        fprintf(out, "end\n");
        fflush(out);

        notify("READY=1");
        notifyf("STATUS=probe up with %d sockets", n);
        while (!stop) {
                usleep(wd > 0 ? (useconds_t)MIN(wd / 2, (usec_t)USEC_PER_SEC) : 200000);
                if (wd > 0)
                        notify("WATCHDOG=1");
        }
        notify("STOPPING=1");
        return 0;
}
