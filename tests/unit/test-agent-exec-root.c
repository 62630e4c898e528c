/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The task executor with privileges: changing user, RLIMIT_NPROC, parent-death signal
 * after the credential change, and cgroup v2 (placement, kill, usage, removal, memory
 * limit and OOM). Needs root; exits 77 with the reason otherwise. Cases that need a
 * kernel or host feature this machine lacks say so and pass without asserting. */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>

#include "agent/agent-exec.h"
#include "basic/alloc-util.h"
#include "basic/fd-util.h"
#include "basic/string-util.h"
#include "exec-test-util.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static uid_t nobody_uid;
static gid_t nobody_gid;

static ExecSpec spec_nobody(char *const *argv)
{
        ExecSpec s = spec_for(argv);
        s.change_user = true;
        s.uid = nobody_uid;
        s.gid = nobody_gid;
        return s;
}

static void wait_child(ExecProcess *p, siginfo_t *si, struct rusage *ru)
{
        struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
        long k;

        while (poll(&pfd, 1, -1) < 0)
                ck_assert_int_eq(errno, EINTR);
        *si = (siginfo_t){};
        do
                k = syscall(SYS_waitid, P_PIDFD, p->pidfd, si, WEXITED, ru);
        while (k < 0 && errno == EINTR);
        ck_assert_int_eq(k, 0);
}

static void drain_fd(int *fd, char **buf, size_t *n, size_t *cap)
{
        char tmp[4096];
        ssize_t k = read(*fd, tmp, sizeof(tmp));

        if (k < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        ck_assert_int_ge(k, 0);
        if (k == 0) {
                *fd = safe_close(*fd);
                return;
        }
        ck_assert(GREEDY_REALLOC(*buf, *cap, *n + (size_t)k + 1));
        memcpy(*buf + *n, tmp, (size_t)k);
        *n += (size_t)k;
        (*buf)[*n] = 0;
}

/* Reads stdout and stderr to their ends, then reaps the child. */
static void collect(ExecProcess *p, Result *res)
{
        *res = (Result){};
        ck_assert(GREEDY_REALLOC(res->out, res->out_cap, 1));
        ck_assert(GREEDY_REALLOC(res->err, res->err_cap, 1));
        res->out[0] = res->err[0] = 0;
        p->stdin_fd = safe_close(p->stdin_fd);
        while (p->stdout_fd >= 0 || p->stderr_fd >= 0) {
                struct pollfd pfd[2] = {{.fd = p->stdout_fd, .events = POLLIN},
                                        {.fd = p->stderr_fd, .events = POLLIN}};
                if (poll(pfd, 2, -1) < 0) {
                        ck_assert_int_eq(errno, EINTR);
                        continue;
                }
                if (pfd[0].revents)
                        drain_fd(&p->stdout_fd, &res->out, &res->out_n, &res->out_cap);
                if (pfd[1].revents)
                        drain_fd(&p->stderr_fd, &res->err, &res->err_n, &res->err_cap);
        }
        wait_child(p, &res->si, &res->ru);
}

static int run(const ExecSpec *spec, Result *res)
{
        ExecProcess p = EXEC_PROCESS_NULL;
        int r = exec_spawn(spec, &p);
        if (r < 0)
                return r;
        collect(&p, res);
        exec_process_done(&p);
        return 0;
}

START_TEST(test_change_user)
{
        char *argv[] = {"sh", "-c", "id -u; id -g; id -G; echo $USER", NULL};
        ExecSpec s = spec_nobody(argv);
        struct passwd *pw = getpwuid(nobody_uid);
        Result r;

        ck_assert_int_eq(run(&s, &r), 0);
        ck_assert_int_eq(r.si.si_code, CLD_EXITED);
        _cleanup_free_ char *expect =
                strprintf("%u\n%u\n%u\n%s\n", (unsigned)nobody_uid, (unsigned)nobody_gid,
                          (unsigned)nobody_gid, pw ? pw->pw_name : "");
        ck_assert_str_eq(r.out, expect);
        result_clear(&r);
}
END_TEST

START_TEST(test_change_user_cannot_write_root_file)
{
        _cleanup_free_ char *secret = strprintf("%s/secret", workdir);
        char *argv[] = {"sh", "-c", "echo pwned > secret", NULL};
        ExecSpec s = spec_nobody(argv);
        _cleanup_free_ char *content = NULL;
        Result r;

        ck_assert_int_eq(write_file_atomic(secret, "root only\n", 10, 0600), 0);
        ck_assert_int_eq(run(&s, &r), 0);
        ck_assert_int_eq(r.si.si_code, CLD_EXITED);
        ck_assert_int_ne(r.si.si_status, 0);
        ck_assert_ptr_nonnull(strstr(r.err, "ermission denied"));
        ck_assert_int_eq(read_full_file(secret, &content, NULL, 4096), 0);
        ck_assert_str_eq(content, "root only\n");
        result_clear(&r);

        /* exec permission is checked as the new user: a root-only program is EACCES. */
        _cleanup_free_ char *prog = strprintf("%s/rootonly", workdir);
        ck_assert_int_eq(write_file_atomic(prog, "#!/bin/sh\necho x\n", 17, 0700), 0);
        char *argv_prog[] = {prog, NULL};
        ExecProcess p = EXEC_PROCESS_NULL;
        s.argv = argv_prog;
        ck_assert_int_eq(exec_spawn(&s, &p), -EACCES);
        s.change_user = false; /* root may */
        ck_assert_int_eq(run(&s, &r), 0);
        ck_assert_str_eq(r.out, "x\n");
        result_clear(&r);
}
END_TEST

START_TEST(test_setgroups_cleared)
{
        char *argv[] = {"grep", "-E", "^(Uid|Gid|Groups):", "/proc/self/status", NULL};
        ExecSpec s = spec_nobody(argv);
        const gid_t groups[] = {4, 27, 100};
        Result r;

        /* The agent holds supplementary groups; the task must not. */
        ck_assert_int_eq(setgroups(ELEMENTSOF(groups), groups), 0);
        ck_assert_int_eq(run(&s, &r), 0);
        _cleanup_free_ char *expect =
                strprintf("Uid:\t%1$u\t%1$u\t%1$u\t%1$u\nGid:\t%2$u\t%2$u\t%2$u\t%2$u\nGroups:",
                          (unsigned)nobody_uid, (unsigned)nobody_gid);
        ck_assert_ptr_nonnull(startswith(r.out, expect));
        /* No group at all after "Groups:", only blanks (the kernel adds a space). */
        const char *rest = r.out + strlen(expect);
        ck_assert_uint_eq(strspn(rest, " \t\n"), strlen(rest));
        result_clear(&r);
}
END_TEST

START_TEST(test_nproc_limit)
{
        /* RLIMIT_NPROC counts every process of the uid: with 1, the task's shell cannot
         * fork. If the uid already has processes elsewhere, the kernel refuses the
         * execve() itself (EAGAIN) - also a correct answer. */
        char *argv[] = {"sh", "-c", "/bin/true && echo forked", NULL};
        ExecSpec s = spec_nobody(argv);
        Result r;

        s.max_processes = 1;
        int k = run(&s, &r);
        if (k == -EAGAIN)
                return;
        ck_assert_int_eq(k, 0);
        ck_assert_ptr_null(strstr(r.out, "forked"));
        result_clear(&r);
}
END_TEST

START_TEST(test_pdeathsig_after_change_user)
{
        /* The kernel clears the parent-death signal when the credentials change: it
         * must be set after setuid(). */
        assert_task_dies_with_spawner(spec_nobody);
}
END_TEST

/* ---- cgroups ---- */

/* A scratch cgroup v2 directory of our own (no controllers needed) next to us in the
 * hierarchy, or NULL with the reason printed. ret_own: the directory we are in. */
/* The unit runs the agent as its own user with ambient CAP_SETUID, CAP_BPF, ...: a task
 * must not inherit any of them. Reproduce that here: a non-root caller with ambient
 * capabilities spawns a task as nobody, and the task has no capability at all. */
START_TEST(test_ambient_caps_not_inherited)
{
        char *argv[] = {"sh", "-c", "grep -E '^Cap(Inh|Prm|Eff|Amb)' /proc/self/status", NULL};
        struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct d[2] = {};
        uint32_t caps = (1U << CAP_SETUID) | (1U << CAP_SETGID) | (1U << CAP_KILL);
        ExecSpec sp = spec_nobody(argv);
        Result r;

        ck_assert_int_eq(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), 0);
        ck_assert_int_eq(syscall(SYS_setresgid, 1, 1, 1), 0);
        ck_assert_int_eq(syscall(SYS_setresuid, 1, 1, 1), 0);
        d[0].permitted = d[0].effective = d[0].inheritable = caps;
        ck_assert_int_eq(syscall(SYS_capset, &h, d), 0);
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0) < 0 && errno == EINVAL)
                return; /* no ambient capabilities on this kernel: nothing to leak */
        ck_assert_int_eq(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_KILL, 0, 0), 1);

        ck_assert_int_eq(run(&sp, &r), 0);
        ck_assert_int_eq(r.si.si_code, CLD_EXITED);
        ck_assert_int_eq(r.si.si_status, 0);
        ck_assert_str_eq(r.out,
                         "CapInh:\t0000000000000000\n"
                         "CapPrm:\t0000000000000000\n"
                         "CapEff:\t0000000000000000\n"
                         "CapAmb:\t0000000000000000\n");
        result_clear(&r);
}
END_TEST

static char *scratch_cgroup_full(char **ret_own)
{
        static const char *const mounts[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};
        _cleanup_free_ char *self = NULL;
        const char *mount = NULL, *own = NULL;
        struct statfs fs;

        for (size_t i = 0; i < ELEMENTSOF(mounts); i++)
                if (statfs(mounts[i], &fs) >= 0 && fs.f_type == CGROUP2_SUPER_MAGIC) {
                        mount = mounts[i];
                        break;
                }
        if (!mount) {
                printf("SKIP cgroup cases: no cgroup v2 hierarchy mounted\n");
                return NULL;
        }
        ck_assert_int_eq(read_full_file("/proc/self/cgroup", &self, NULL, 65536), 0);
        for (char *l = strtok(self, "\n"); l; l = strtok(NULL, "\n"))
                if ((own = startswith(l, "0::")))
                        break;
        if (!own) {
                printf("SKIP cgroup cases: not in a cgroup v2 hierarchy\n");
                return NULL;
        }
        char *dir = strprintf("%s%s/cluster-ai-exec-test-%d", mount, streq(own, "/") ? "" : own,
                              (int)getpid());
        ck_assert_ptr_nonnull(dir);
        if (ret_own) {
                *ret_own = strprintf("%s%s", mount, streq(own, "/") ? "" : own);
                ck_assert_ptr_nonnull(*ret_own);
        }
        if (mkdir(dir, 0755) < 0) {
                printf("SKIP cgroup cases: cannot create %s: %s\n", dir, strerror(errno));
                free(dir);
                if (ret_own)
                        *ret_own = mfree(*ret_own);
                return NULL;
        }
        return dir;
}

static char *scratch_cgroup(void)
{
        return scratch_cgroup_full(NULL);
}

static void write_str(const char *dir, const char *file, const char *value)
{
        _cleanup_free_ char *p = strprintf("%s/%s", dir, file);
        _cleanup_close_ int fd = open(p, O_WRONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(loop_write(fd, value, strlen(value)), 0);
}

static char *cgroup_of(pid_t pid)
{
        _cleanup_free_ char *p = strprintf("/proc/%d/cgroup", (int)pid), *text = NULL;
        ck_assert_int_eq(read_full_file(p, &text, NULL, 65536), 0);
        for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n"))
                if (startswith(l, "0::"))
                        return strdup(l + 3);
        return NULL;
}

static bool dir_exists(const char *p)
{
        struct stat st;
        return stat(p, &st) >= 0 && S_ISDIR(st.st_mode);
}

/* Reaps the orphans that came to us (the subreaper); each must have died of sig. */
static int reap_orphans(int sig)
{
        int n = 0, status;
        pid_t pid;

        while ((pid = waitpid(-1, &status, 0)) > 0 || errno == EINTR) {
                if (pid < 0)
                        continue;
                ck_assert(WIFSIGNALED(status));
                ck_assert_int_eq(WTERMSIG(status), sig);
                n++;
        }
        ck_assert_int_eq(errno, ECHILD);
        return n;
}

/* The task's grandchild leaves the process group with setsid(): only the cgroup still
 * holds it, and exec_kill() must find it there. */
static void cgroup_kill_escaped(const char *cg, int sig, bool fallback)
{
        char *argv[] = {"sh", "-c",
                        "cat /proc/self/cgroup; setsid sleep 100 >/dev/null 2>&1 & "
                        "echo ready; wait",
                        NULL};
        ExecSpec s = spec_for(argv);
        ExecProcess p = EXEC_PROCESS_NULL;
        siginfo_t si;
        struct rusage ru;
        ExecUsage u;
        char buf[512];
        ssize_t k;

        exec_force_fork_fallback(fallback);
        s.cgroup = cg;
        s.name = "t1";
        s.memory_bytes = 64 << 20; /* skipped where the controller is missing */
        s.cpus = 1;
        s.max_processes = 100;
        ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
        ck_assert_int_eq(exec_spawn(&s, &p), 0);
        _cleanup_free_ char *path = strprintf("%s/t1", cg);
        ck_assert_str_eq(p.cgroup_path, path);

        /* The first line: the task's cgroup, as the kernel sees it. */
        size_t n = 0;
        while (!memmem(buf, n, "ready\n", 6)) {
                struct pollfd pfd = {.fd = p.stdout_fd, .events = POLLIN};
                ck_assert_int_eq(poll(&pfd, 1, -1), 1);
                k = read(p.stdout_fd, buf + n, sizeof(buf) - 1 - n);
                if (k < 0 && errno == EAGAIN)
                        continue;
                ck_assert_int_gt(k, 0);
                n += (size_t)k;
        }
        buf[n] = 0;
        ck_assert_ptr_nonnull(strstr(buf, "/t1\n"));
        ck_assert_ptr_nonnull(strstr(buf, "0::"));

        ck_assert_int_eq(exec_kill(&p, sig), 0);
        wait_child(&p, &si, &ru);
        ck_assert_int_eq(si.si_code, CLD_KILLED);
        ck_assert_int_eq(si.si_status, sig);
        ck_assert_int_eq(reap_orphans(sig), 1);

        /* Usage from the cgroup's cpu.stat: present on every cgroup v2. */
        ck_assert_int_eq(exec_usage(&p, &ru, &u), 0);
        ck_assert_int_eq(exec_usage(&p, NULL, &u), 0);

        exec_process_done(&p);
        ck_assert(!dir_exists(path));
        ck_assert_ptr_null(p.cgroup_path);
        exec_process_done(&p);
}

START_TEST(test_cgroup_kill)
{
        _cleanup_free_ char *cg = scratch_cgroup();
        if (!cg)
                return;
        cgroup_kill_escaped(cg, SIGKILL, false);
        cgroup_kill_escaped(cg, SIGTERM, false);
        cgroup_kill_escaped(cg, SIGKILL, true);
        cgroup_kill_escaped(cg, SIGTERM, true);
        ck_assert_int_eq(rmdir(cg), 0);
}
END_TEST

START_TEST(test_cgroup_done_kills_leftovers)
{
        _cleanup_free_ char *cg = scratch_cgroup();
        char *argv[] = {"sh", "-c", "setsid sleep 100 >/dev/null 2>&1 & echo started", NULL};
        ExecSpec s = spec_for(argv);
        ExecProcess p = EXEC_PROCESS_NULL;
        Result r;

        if (!cg)
                return;
        ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
        s.cgroup = cg;
        ck_assert_int_eq(exec_spawn(&s, &p), 0); /* no name: one is made up */
        ck_assert_ptr_nonnull(startswith(p.cgroup_path, cg));
        _cleanup_free_ char *path = strdup(p.cgroup_path);
        collect(&p, &r);
        ck_assert_str_eq(r.out, "started\n");
        ck_assert_int_eq(r.si.si_code, CLD_EXITED);
        result_clear(&r);

        /* The task exited, its daemon lives on in the cgroup until done. */
        _cleanup_free_ char *procs = NULL;
        _cleanup_free_ char *procs_path = strprintf("%s/cgroup.procs", path);
        ck_assert_int_eq(read_full_file(procs_path, &procs, NULL, 65536), 0);
        ck_assert_str_ne(procs, "");
        exec_process_done(&p);
        ck_assert(!dir_exists(path));
        ck_assert_int_eq(reap_orphans(SIGKILL), 1);
        ck_assert_int_eq(rmdir(cg), 0);
}
END_TEST

START_TEST(test_cgroup_names)
{
        _cleanup_free_ char *cg = scratch_cgroup();
        char *argv[] = {"sleep", "100", NULL};
        ExecSpec s = spec_for(argv);
        ExecProcess p = EXEC_PROCESS_NULL, q = EXEC_PROCESS_NULL;
        siginfo_t si;
        struct rusage ru;

        if (!cg)
                return;
        s.cgroup = cg;
        s.name = "busy";
        /* An empty leftover of the same name (an agent that died) is reused. */
        _cleanup_free_ char *busy = strprintf("%s/busy", cg);
        ck_assert_int_eq(mkdir(busy, 0755), 0);
        ck_assert_int_eq(exec_spawn(&s, &p), 0);
        /* A live one is never touched. */
        ck_assert_int_eq(exec_spawn(&s, &q), -EEXIST);
        s.name = "cgroup.procs";
        ck_assert_int_eq(exec_spawn(&s, &q), -EINVAL);
        s.name = "a/b";
        ck_assert_int_eq(exec_spawn(&s, &q), -EINVAL);
        uint64_t oom;
        int k = exec_oom_kills(&p, &oom);
        ck_assert(k == -ENODATA || (k == 0 && oom == 0));

        ck_assert_int_eq(exec_kill(&p, SIGKILL), 0);
        wait_child(&p, &si, &ru);
        exec_process_done(&p);
        ck_assert(!dir_exists(busy));
        ck_assert_int_eq(rmdir(cg), 0);
}
END_TEST

START_TEST(test_find_cgroup_and_oom)
{
        _cleanup_free_ char *cg = NULL;
        int r = exec_find_cgroup(&cg);

        if (r < 0) {
                printf("SKIP memory limit / OOM case: exec_find_cgroup: %s (on a hybrid "
                       "host the memory controller lives in cgroup v1)\n",
                       strerror(-r));
                /* Whatever the host lacks, never an internal error. */
                ck_assert(r != -EINVAL && r != -ENOMEM && r != -EBADMSG && r != -EIO);
                ck_assert_ptr_null(cg);
                return;
        }
        ck_assert(dir_exists(cg));
        /* A second call (the agent already moved into its leaf) finds the same. */
        _cleanup_free_ char *again = NULL;
        ck_assert_int_eq(exec_find_cgroup(&again), 0);
        ck_assert_str_eq(again, cg);

        char *argv[] = {"dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1", NULL};
        ExecSpec s = spec_for(argv);
        ExecProcess p = EXEC_PROCESS_NULL;
        Result res;
        uint64_t oom;
        s.cgroup = cg;
        s.name = "oom-test";
        s.memory_bytes = 64 << 20;
        s.cpus = 1;
        ck_assert_int_eq(exec_spawn(&s, &p), 0);

        _cleanup_free_ char *max = NULL, *max_path = strprintf("%s/memory.max", p.cgroup_path);
        ck_assert_int_eq(read_full_file(max_path, &max, NULL, 64), 0);
        ck_assert_str_eq(max, "67108864\n");
        _cleanup_free_ char *cpu = NULL, *cpu_path = strprintf("%s/cpu.max", p.cgroup_path);
        if (read_full_file(cpu_path, &cpu, NULL, 64) >= 0)
                ck_assert_str_eq(cpu, "100000 100000\n");

        collect(&p, &res);
        ck_assert_int_eq(res.si.si_code, CLD_KILLED);
        ck_assert_int_eq(res.si.si_status, SIGKILL);
        ck_assert_int_eq(exec_oom_kills(&p, &oom), 0);
        ck_assert_uint_ge(oom, 1);
        exec_process_done(&p);
        result_clear(&res);
}
END_TEST

static unsigned count_subdirs(const char *dir)
{
        DIR *d = opendir(dir);
        unsigned n = 0;
        struct dirent *de;

        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d)))
                if (de->d_type == DT_DIR && de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

START_TEST(test_cgroup_fd_exhaustion)
{
        /* EMFILE at every step of a spawn into a cgroup (the cgroup's directory fd,
         * the fork path's cgroup.procs): no fd, no child and no task cgroup is left. */
        _cleanup_free_ char *cg = scratch_cgroup();
        char *argv[] = {"true", NULL};
        ExecSpec s = spec_for(argv);
        struct rlimit saved, rl;
        int failures = 0, successes = 0;

        if (!cg)
                return;
        s.cgroup = cg;
        s.name = "fds";
        unsigned before = count_fds();
        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
        for (int fallback = 0; fallback < 2; fallback++)
                for (unsigned extra = 0; extra < 16; extra++) {
                        ExecProcess p = EXEC_PROCESS_NULL;
                        rl = saved;
                        rl.rlim_cur = (rlim_t)count_fds() + extra;
                        exec_force_fork_fallback(fallback);
                        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
                        int r = exec_spawn(&s, &p);
                        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);
                        if (r < 0) {
                                ck_assert_int_eq(r, -EMFILE);
                                failures++;
                        } else {
                                Result res;
                                collect(&p, &res);
                                exec_process_done(&p);
                                result_clear(&res);
                                successes++;
                        }
                        ck_assert_uint_eq(count_fds(), before);
                        ck_assert_uint_eq(count_subdirs(cg), 0);
                        ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
                }
        ck_assert_int_gt(failures, 10);
        ck_assert_int_gt(successes, 0);
        ck_assert_int_eq(rmdir(cg), 0);
}
END_TEST

START_TEST(test_cgroup_usage)
{
        /* CPU time from the cgroup's cpu.stat covers the whole task, also what nobody
         * waited for: here a CPU-bound shell loop. Only "more than nothing" is
         * asserted; the split between user and system depends on tick sampling. */
        _cleanup_free_ char *cg = scratch_cgroup();
        char *argv[] = {"sh", "-c", "i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done", NULL};
        ExecSpec s = spec_for(argv);
        ExecProcess p = EXEC_PROCESS_NULL;
        ExecUsage with_ru, without_ru;
        Result r;

        if (!cg)
                return;
        s.cgroup = cg;
        ck_assert_int_eq(exec_spawn(&s, &p), 0);
        collect(&p, &r);
        ck_assert_int_eq(exec_usage(&p, &r.ru, &with_ru), 0);
        ck_assert_int_eq(exec_usage(&p, NULL, &without_ru), 0);
        ck_assert_uint_gt(with_ru.user_usec + with_ru.system_usec, 0);
        ck_assert_uint_eq(with_ru.user_usec, without_ru.user_usec);
        ck_assert_uint_eq(with_ru.system_usec, without_ru.system_usec);
        /* No memory.peak without the memory controller: the rusage fills in. */
        _cleanup_free_ char *peak = strprintf("%s/memory.peak", p.cgroup_path);
        if (access(peak, F_OK) < 0)
                ck_assert_uint_eq(with_ru.max_rss_bytes, (uint64_t)r.ru.ru_maxrss * 1024);
        exec_process_done(&p);
        result_clear(&r);
        ck_assert_int_eq(rmdir(cg), 0);
}
END_TEST

START_TEST(test_find_cgroup_delegation)
{
        /* A delegated cgroup, as systemd's Delegate=yes makes it: the trusted.delegate
         * mark, the agent and a helper process inside. exec_find_cgroup moves both into
         * the agent leaf so that controllers could be enabled for the tasks' cgroups. No
         * controller is required here: this host has none in cgroup v2. */
        _cleanup_free_ char *own = NULL, *cg = scratch_cgroup_full(&own), *path = NULL,
                            *again = NULL;
        int status;

        if (!cg)
                return;
        pid_t helper = fork();
        ck_assert_int_ge(helper, 0);
        if (helper == 0) {
                (void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
                for (;;)
                        pause();
        }
        _cleanup_free_ char *helper_pid = strprintf("%d", (int)helper);
        write_str(cg, "cgroup.procs", helper_pid);
        write_str(cg, "cgroup.procs", "0");

        /* Not marked: a root agent may write any cgroup, that proves nothing. */
        ck_assert_int_eq(exec_find_cgroup_requiring(NULL, &path), -EPERM);
        ck_assert_ptr_null(path);
        if (setxattr(cg, "trusted.delegate", "1", 1, 0) < 0) {
                printf("SKIP delegation case: cannot set trusted.delegate on %s: %s\n", cg,
                       strerror(errno));
        } else {
                ck_assert_int_eq(exec_find_cgroup_requiring(NULL, &path), 0);
                ck_assert_str_eq(path, cg);
                const char *rel = strstr(cg, "/cluster-ai-exec-test-");
                _cleanup_free_ char *leaf_rel = strprintf("%s/agent", rel);
                _cleanup_free_ char *mine = cgroup_of(getpid()), *its = cgroup_of(helper);
                ck_assert_ptr_nonnull(endswith(mine, leaf_rel));
                ck_assert_ptr_nonnull(endswith(its, leaf_rel));
                _cleanup_free_ char *procs = NULL, *procs_path = strprintf("%s/cgroup.procs", cg);
                ck_assert_int_eq(read_full_file(procs_path, &procs, NULL, 4096), 0);
                ck_assert_str_eq(procs, "");

                /* Again, from inside the leaf: the same cgroup, nothing moves. */
                ck_assert_int_eq(exec_find_cgroup_requiring(NULL, &again), 0);
                ck_assert_str_eq(again, cg);
                /* A controller the host lacks: refused, not half set up. */
                free(again);
                again = NULL;
                ck_assert_int_eq(exec_find_cgroup_requiring("no-such-controller", &again),
                                 -EOPNOTSUPP);

                /* A task placed below it. */
                char *argv[] = {"cat", "/proc/self/cgroup", NULL};
                ExecSpec s = spec_for(argv);
                Result r;
                s.cgroup = path;
                s.name = "task-1";
                ck_assert_int_eq(run(&s, &r), 0);
                _cleanup_free_ char *line = strprintf("0::%s/task-1\n", rel);
                ck_assert_ptr_nonnull(strstr(r.out, line));
                result_clear(&r);
        }

        write_str(own, "cgroup.procs", "0");
        ck_assert_int_eq(kill(helper, SIGKILL), 0);
        ck_assert_int_eq(waitpid(helper, &status, 0), helper);
        _cleanup_free_ char *leaf = strprintf("%s/agent", cg);
        (void)rmdir(leaf);
        ck_assert_int_eq(rmdir(cg), 0);
}
END_TEST

static Suite *exec_root_suite(void)
{
        Suite *s = suite_create("agent-exec-root");
        TCase *tc = tcase_create("root");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_change_user);
        tcase_add_test(tc, test_change_user_cannot_write_root_file);
        tcase_add_test(tc, test_setgroups_cleared);
        tcase_add_test(tc, test_nproc_limit);
        tcase_add_test(tc, test_pdeathsig_after_change_user);
        tcase_add_test(tc, test_ambient_caps_not_inherited);
        tcase_add_test(tc, test_cgroup_kill);
        tcase_add_test(tc, test_cgroup_done_kills_leftovers);
        tcase_add_test(tc, test_cgroup_names);
        tcase_add_test(tc, test_cgroup_fd_exhaustion);
        tcase_add_test(tc, test_cgroup_usage);
        tcase_add_test(tc, test_find_cgroup_delegation);
        tcase_add_test(tc, test_find_cgroup_and_oom);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        struct passwd *pw;
        SRunner *sr;
        int failed;

        if (geteuid() != 0) {
                printf("SKIP: needs root (changing user, cgroups)\n");
                return 77;
        }
        pw = getpwnam("nobody");
        nobody_uid = pw ? pw->pw_uid : 65534;
        nobody_gid = pw ? pw->pw_gid : 65534;
        setvbuf(stdout, NULL, _IONBF, 0);

        sr = srunner_create(exec_root_suite());
        srunner_run_all(sr, CK_ENV);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
