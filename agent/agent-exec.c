/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The agent's task executor: one task's process tree, started with clone3() (or fork()
 * on kernels without it), watched through a pidfd, limited by RLIMITs and a cgroup v2,
 * killed as a whole. See agent-exec.h for the contract and docs/internals-exec.md for
 * the reasoning. */

#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <linux/sched.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>

#include "agent/agent-exec.h"
#include "basic/alloc-util.h"
#include "basic/fd-util.h"
#include "basic/string-util.h"
#include "basic/strv.h"
#include "shared/log.h"

#define EXEC_BASE_PATH "/usr/local/bin:/usr/bin:/bin"
#define EXEC_BASE_LANG "C.UTF-8"
/* Leaf that exec_find_cgroup() moves the agent into ("no internal processes" rule). */
#define EXEC_AGENT_LEAF "agent"
/* How long exec_process_done() waits for a killed cgroup to empty before giving up. */
#define EXEC_CGROUP_REMOVE_USEC (200 * 1000)
/* cpu.max period: 100 ms, as systemd's CPUQuota= uses. */
#define EXEC_CPU_PERIOD_USEC UINT64_C(100000)
/* cgroup.procs of one task cgroup is read whole; a task with more pids than this fits
 * is cut off by pids.max long before. */
#define EXEC_PROCS_MAX (4U << 20)

static bool force_fork_fallback;

void exec_force_fork_fallback(bool b)
{
        force_fork_fallback = b;
}

/* What the child reports through the status pipe when a step before (or the) execve()
 * fails. Written in one write() smaller than PIPE_BUF, so it arrives whole. */
typedef struct ChildStatus {
        int32_t error; /* positive errno */
        int32_t step;
} ChildStatus;

enum {
        STEP_SIGNALS,
        STEP_CGROUP,
        STEP_PGID,
        STEP_FDS,
        STEP_CHDIR,
        STEP_RLIMIT,
        STEP_GROUPS,
        STEP_GID,
        STEP_UID,
        STEP_CAPS,
        STEP_PDEATHSIG,
        STEP_EXEC,
};

static const char *const step_names[] = {
        [STEP_SIGNALS] = "reset signals",
        [STEP_CGROUP] = "join cgroup",
        [STEP_PGID] = "setpgid",
        [STEP_FDS] = "set up fds",
        [STEP_CHDIR] = "chdir",
        [STEP_RLIMIT] = "setrlimit",
        [STEP_GROUPS] = "setgroups",
        [STEP_GID] = "setgid",
        [STEP_UID] = "setuid",
        [STEP_CAPS] = "drop ambient capabilities",
        [STEP_PDEATHSIG] = "PR_SET_PDEATHSIG",
        [STEP_EXEC] = "execve",
};

typedef struct ChildRlimit {
        int resource;
        struct rlimit limit;
        struct rlimit fallback; /* min(limit, the agent's own hard limit) */
} ChildRlimit;

/* Everything the child needs, prepared by the parent: after clone the child only makes
 * system calls (no malloc, no stdio, no locks), because the agent has threads and any
 * lock another thread held at clone time stays held forever in the child. */
typedef struct ChildContext {
        char *const *argv;
        char *const *paths; /* execve() candidates in order (PATH lookup) */
        bool path_search; /* argv[0] had no slash: paths come from PATH */
        char *const *envp;
        const char *workdir;
        int stdin_fd, stdout_fd, stderr_fd; /* child ends, all >= 3 */
        int status_fd; /* >= 3, O_CLOEXEC */
        int procs_fd; /* fork path with a cgroup: its cgroup.procs */
        bool change_user;
        uid_t uid;
        gid_t gid;
        ChildRlimit rlimits[3];
        size_t n_rlimits;
        pid_t parent_pid;
} ChildContext;

/* ---- the child (async-signal-safe calls only) ---- */

static int child_write_all(int fd, const void *buf, size_t n)
{
        const char *p = buf;

        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t)k;
        }
        return 0;
}

static _noreturn_ void child_fail(int status_fd, int step, int error)
{
        ChildStatus st = {.error = error > 0 ? error : EIO, .step = step};

        /* If even this write fails, the parent takes the EOF for a successful exec and
         * later sees exit status 127, what a shell answers too. Nothing better is
         * possible here. */
        (void)child_write_all(status_fd, &st, sizeof(st));
        _exit(127);
}

static int child_close_from(int first)
{
#ifdef SYS_close_range
        if (syscall(SYS_close_range, (unsigned)first, ~0U, 0) >= 0)
                return 0;
        if (errno != ENOSYS)
                return -errno;
#endif
        /* Kernels before 5.9 have no close_range(): close every possible fd. An fd can
         * sit above the soft limit if the limit was lowered after it was opened, so
         * walk up to the hard limit (capped: a huge rlimit must not cost seconds). */
        struct rlimit rl;
        rlim_t top = 65536;
        if (getrlimit(RLIMIT_NOFILE, &rl) >= 0 && rl.rlim_max != RLIM_INFINITY)
                top = MAX(rl.rlim_max, (rlim_t)1024);
        top = MIN(top, (rlim_t)(1 << 20));
        for (rlim_t fd = (rlim_t)first; fd < top; fd++)
                (void)close((int)fd);
        return 0;
}

static int child_dup2(int from, int to)
{
        for (;;) {
                if (dup2(from, to) >= 0)
                        return 0;
                if (errno != EINTR && errno != EBUSY)
                        return -errno;
        }
}

static _noreturn_ void child_run(const ChildContext *c)
{
        struct sigaction sa = {.sa_handler = SIG_DFL};
        sigset_t none;
        int status_fd = c->status_fd;
        int last_error = ENOENT;
        bool saw_eacces = false;

        /* The parent blocked every signal around the clone, so no handler of the agent
         * runs here. Reset dispositions first (an ignored SIGPIPE or SIGCHLD must not be
         * inherited by the task), unblock only right before execve(). */
        for (int sig = 1; sig < _NSIG; sig++) {
                if (sig == SIGKILL || sig == SIGSTOP)
                        continue;
                /* EINVAL: the signals libc reserves for itself. */
                if (sigaction(sig, &sa, NULL) < 0 && errno != EINVAL)
                        child_fail(status_fd, STEP_SIGNALS, errno);
        }

        /* fork() path only: clone3() put us into the cgroup atomically. "0" moves the
         * writing process. */
        if (c->procs_fd >= 0) {
                int r = child_write_all(c->procs_fd, "0", 1);
                if (r < 0)
                        child_fail(status_fd, STEP_CGROUP, -r);
        }

        if (setpgid(0, 0) < 0)
                child_fail(status_fd, STEP_PGID, errno);

        /* All sources are >= 3 (the parent made sure), so none is clobbered here. */
        if (child_dup2(c->stdin_fd, STDIN_FILENO) < 0 ||
            child_dup2(c->stdout_fd, STDOUT_FILENO) < 0 ||
            child_dup2(c->stderr_fd, STDERR_FILENO) < 0)
                child_fail(status_fd, STEP_FDS, errno);
        if (status_fd != 3) {
                if (child_dup2(status_fd, 3) < 0)
                        child_fail(status_fd, STEP_FDS, errno);
                status_fd = 3;
                if (fcntl(status_fd, F_SETFD, FD_CLOEXEC) < 0)
                        child_fail(status_fd, STEP_FDS, errno);
        }
        int r = child_close_from(4);
        if (r < 0)
                child_fail(status_fd, STEP_FDS, -r);

        /* The limits are ceilings. Raising one above the agent's own hard limit needs
         * CAP_SYS_RESOURCE (and RLIMIT_NOFILE can never pass fs.nr_open): without it
         * the task gets the agent's hard limit, which is still below what was asked. */
        for (size_t i = 0; i < c->n_rlimits; i++) {
                const ChildRlimit *l = &c->rlimits[i];
                if (setrlimit(l->resource, &l->limit) >= 0)
                        continue;
                if (errno != EPERM || setrlimit(l->resource, &l->fallback) < 0)
                        child_fail(status_fd, STEP_RLIMIT, errno);
        }

        if (c->change_user) {
                /* Raw system calls: glibc's wrappers broadcast the change to every thread
                 * it knows of, and after a raw clone3() it still believes the agent's
                 * threads live here. Order matters: groups and gid while still root. */
                if (syscall(SYS_setgroups, 0, NULL) < 0)
                        child_fail(status_fd, STEP_GROUPS, errno);
                if (syscall(SYS_setresgid, c->gid, c->gid, c->gid) < 0)
                        child_fail(status_fd, STEP_GID, errno);
                if (syscall(SYS_setresuid, c->uid, c->uid, c->uid) < 0)
                        child_fail(status_fd, STEP_UID, errno);
        }

        /* An agent running as a user with ambient capabilities (the systemd unit gives
         * it CAP_SETUID, CAP_BPF, ...) would pass them through execve() to the task:
         * the task gets none. EINVAL: a kernel without ambient capabilities (< 4.3). */
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                child_fail(status_fd, STEP_CAPS, errno);
        /* Nor an inheritable set, which a program with file capabilities could use. */
        {
                struct __user_cap_header_struct ch = {.version = _LINUX_CAPABILITY_VERSION_3};
                struct __user_cap_data_struct cd[2];
                if (syscall(SYS_capget, &ch, cd) >= 0 && (cd[0].inheritable || cd[1].inheritable)) {
                        cd[0].inheritable = cd[1].inheritable = 0;
                        if (syscall(SYS_capset, &ch, cd) < 0)
                                child_fail(status_fd, STEP_CAPS, errno);
                }
        }

        /* As the task's user: an agent that is not root (the unit's, with CAP_SETUID
         * but no CAP_DAC_OVERRIDE) cannot enter the task's 0700 directory itself. */
        if (chdir(c->workdir) < 0)
                child_fail(status_fd, STEP_CHDIR, errno);

        /* After the credential change: the kernel clears the parent-death signal when
         * the euid/egid change. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
                child_fail(status_fd, STEP_PDEATHSIG, errno);
        /* The agent may have died before the prctl(): then nobody would kill us. */
        if (getppid() != c->parent_pid)
                _exit(127);

        sigemptyset(&none);
        if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
                child_fail(status_fd, STEP_SIGNALS, errno);

        /* PATH lookup as execvpe() does it, on candidates the parent built: go on after
         * "not there", remember EACCES, stop at anything else. Unlike execvpe() a file
         * without a #! line is not handed to /bin/sh: ENOEXEC is reported. */
        for (char *const *p = c->paths; *p; p++) {
                execve(*p, c->argv, c->envp);
                last_error = errno;
                switch (errno) {
                case EACCES:
                        saw_eacces = true;
                        __attribute__((fallthrough));
                case ENOENT:
                case ENOTDIR:
                case ESTALE:
                case ENODEV:
                case ETIMEDOUT:
                        continue;
                default:
                        child_fail(status_fd, STEP_EXEC, errno);
                }
        }
        if (!c->path_search) /* a path with a slash: its own error */
                child_fail(status_fd, STEP_EXEC, last_error);
        child_fail(status_fd, STEP_EXEC, saw_eacces ? EACCES : ENOENT);
}

/* ---- preparation in the parent ---- */

static bool env_entry_valid(const char *e)
{
        const char *eq = strchr(e, '=');
        return eq && eq != e;
}

/* Sets "KEY=value" in *l, replacing an entry with the same key. Takes ownership of s. */
static int env_put(char ***l, char *s)
{
        size_t k = (size_t)(strchr(s, '=') - s) + 1;

        for (char **i = *l; i && *i; i++)
                if (strncmp(*i, s, k) == 0) {
                        free(*i);
                        *i = s;
                        return 0;
                }
        return strv_consume(l, s);
}

static int env_put_printf(char ***l, const char *key, const char *value)
{
        char *s = strprintf("%s=%s", key, value);
        int r;

        if (!s)
                return -ENOMEM;
        r = env_put(l, s);
        if (r < 0)
                free(s);
        return r;
}

static int user_name(uid_t uid, char **ret)
{
        _cleanup_free_ char *buf = NULL;
        size_t size = 1024;
        struct passwd pw, *res = NULL;

        for (;;) {
                free(buf);
                buf = malloc(size);
                if (!buf)
                        return -ENOMEM;
                int r = getpwuid_r(uid, &pw, buf, size, &res);
                if (r == 0)
                        break;
                if (r == EINTR)
                        continue;
                if (r != ERANGE || size >= (1U << 20))
                        return -r;
                size *= 2;
        }
        if (!res)
                return -ESRCH;
        char *s = strdup(res->pw_name);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int build_env(const ExecSpec *spec, char ***ret)
{
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ char *user = NULL;
        uid_t uid = spec->change_user ? spec->uid : geteuid();
        int r;

        r = env_put_printf(&l, "PATH", EXEC_BASE_PATH);
        if (r >= 0)
                r = env_put_printf(&l, "HOME", spec->workdir);
        if (r >= 0)
                r = env_put_printf(&l, "LANG", EXEC_BASE_LANG);
        if (r < 0)
                return r;

        /* A uid without a passwd entry (a container's dynamic user) simply gets no
         * USER/LOGNAME. */
        r = user_name(uid, &user);
        if (r == -ENOMEM)
                return r;
        if (r >= 0) {
                r = env_put_printf(&l, "USER", user);
                if (r >= 0)
                        r = env_put_printf(&l, "LOGNAME", user);
                if (r < 0)
                        return r;
        }

        STRV_FOREACH (e, spec->env) {
                if (!env_entry_valid(*e))
                        return -EINVAL;
                char *s = strdup(*e);
                if (!s)
                        return -ENOMEM;
                r = env_put(&l, s);
                if (r < 0) {
                        free(s);
                        return r;
                }
        }
        *ret = TAKE_PTR(l);
        return 0;
}

static const char *env_get(char *const *l, const char *key)
{
        size_t k = strlen(key);

        STRV_FOREACH (e, l)
                if (strncmp(*e, key, k) == 0 && (*e)[k] == '=')
                        return *e + k + 1;
        return NULL;
}

/* The execve() candidates for argv[0]: itself when it has a slash, else every
 * directory of PATH (of the task's environment) joined with it. Empty PATH elements
 * ("current directory") are skipped on purpose: a task's cwd is not a search path. */
static int build_paths(const char *name, char *const *envp, char ***ret)
{
        _cleanup_strv_free_ char **l = NULL;
        const char *path = env_get(envp, "PATH");
        int r;

        if (strchr(name, '/')) {
                r = strv_extend(&l, name);
                if (r < 0)
                        return r;
                *ret = TAKE_PTR(l);
                return 0;
        }

        if (!l) {
                l = new0(char *, 1);
                if (!l)
                        return -ENOMEM;
        }
        for (const char *p = path; p && *p;) {
                size_t n = strcspn(p, ":");
                if (n > 0) {
                        char *s = strprintf("%.*s/%s", (int)n, p, name);
                        if (!s)
                                return -ENOMEM;
                        r = strv_consume(&l, s);
                        if (r < 0) {
                                free(s);
                                return r;
                        }
                }
                p += n;
                if (*p == ':')
                        p++;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

/* The child expects its ends at fd >= 3 so that dup2() onto 0..2 never overwrites a
 * source; a daemon started with closed stdio would otherwise hand out 0..2 here. */
static int fd_move_above_stdio(int *fd)
{
        if (*fd < 0 || *fd > STDERR_FILENO)
                return 0;
        int n = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
        if (n < 0)
                return -errno;
        safe_close(*fd);
        *fd = n;
        return 0;
}

static int pipe_cloexec(int fds[2])
{
        return pipe2(fds, O_CLOEXEC) < 0 ? -errno : 0;
}

/* ---- cgroup files ---- */

static int cgroup_write(const char *dir, const char *file, const char *value)
{
        _cleanup_free_ char *p = strprintf("%s/%s", dir, file);
        _cleanup_close_ int fd = -EBADF;

        if (!p)
                return -ENOMEM;
        fd = open(p, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        return loop_write(fd, value, strlen(value));
}

static int cgroup_read(const char *dir, const char *file, char **ret)
{
        _cleanup_free_ char *p = strprintf("%s/%s", dir, file);

        if (!p)
                return -ENOMEM;
        return read_full_file(p, ret, NULL, EXEC_PROCS_MAX);
}

/* "key value" lines (cpu.stat, memory.events): the value of key. */
static int keyed_value(const char *text, const char *key, uint64_t *ret)
{
        size_t k = strlen(key);

        for (const char *l = text; l && *l;) {
                const char *nl = strchr(l, '\n');
                if (strncmp(l, key, k) == 0 && l[k] == ' ') {
                        char buf[32];
                        size_t n = (nl ? (size_t)(nl - l) : strlen(l)) - k - 1;
                        if (n == 0 || n >= sizeof(buf))
                                return -EBADMSG;
                        memcpy(buf, l + k + 1, n);
                        buf[n] = 0;
                        return safe_atou64(buf, ret) < 0 ? -EBADMSG : 0;
                }
                l = nl ? nl + 1 : NULL;
        }
        return -ENODATA;
}

static bool word_in_list(const char *list, const char *word)
{
        size_t k = strlen(word);

        for (const char *p = list; p && *p;) {
                p += strspn(p, " \n");
                size_t n = strcspn(p, " \n");
                if (n == k && strncmp(p, word, k) == 0)
                        return true;
                p += n;
        }
        return false;
}

/* One pass over cgroup.procs: signals each process (sig 0: only counts). Returns the
 * number of processes listed. */
static int cgroup_procs_signal(const char *path, int sig)
{
        _cleanup_free_ char *procs = NULL;
        int r, n = 0;

        r = cgroup_read(path, "cgroup.procs", &procs);
        if (r < 0)
                return r;
        for (char *p = procs, *end; *p; p = end) {
                uint64_t pid;
                end = p + strcspn(p, "\n");
                if (*end)
                        *end++ = 0;
                if (safe_atou64(p, &pid) < 0 || pid == 0 || pid > INT32_MAX)
                        continue;
                n++;
                if (sig != 0 && kill((pid_t)pid, sig) < 0 && errno != ESRCH)
                        return -errno;
        }
        return n;
}

/* Signals every process of the cgroup. Returns how many were there (>= 0). SIGKILL
 * goes through cgroup.kill (5.14), which also catches processes forked meanwhile; on
 * older kernels and for other signals cgroup.procs is walked, a few rounds for SIGKILL
 * so that a forking task cannot outrun us. */
static int cgroup_signal(const char *path, int sig)
{
        int found, r;

        if (sig != SIGKILL)
                return cgroup_procs_signal(path, sig);

        found = cgroup_procs_signal(path, 0);
        if (found <= 0)
                return found;
        r = cgroup_write(path, "cgroup.kill", "1");
        if (r >= 0)
                return found;
        if (r != -ENOENT)
                return r;
        for (int round = 0; round < 8; round++) {
                r = cgroup_procs_signal(path, SIGKILL);
                if (r <= 0)
                        return r < 0 ? r : found;
        }
        return found;
}

/* Removes a task cgroup: kill what is left, wait (bounded) for it to empty. */
static int cgroup_remove(const char *path)
{
        _cleanup_free_ char *events_path = strprintf("%s/cgroup.events", path);
        _cleanup_close_ int events_fd = -EBADF;
        struct timespec ts;
        uint64_t deadline;
        int r;

        if (!events_path)
                return -ENOMEM;
        if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
                return -errno;
        deadline = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000 +
                EXEC_CGROUP_REMOVE_USEC;

        for (;;) {
                if (rmdir(path) >= 0 || errno == ENOENT)
                        return 0;
                if (errno != EBUSY)
                        return -errno;

                r = cgroup_signal(path, SIGKILL);
                if (r < 0 && r != -ENOENT)
                        return r;

                /* cgroup.events raises POLLPRI when "populated" changes; reading it
                 * re-arms the notification, so this sleeps, it does not spin. */
                if (events_fd < 0) {
                        events_fd = open(events_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                        if (events_fd < 0)
                                return errno == ENOENT ? 0 : -errno;
                }
                char buf[256];
                ssize_t k = pread(events_fd, buf, sizeof(buf) - 1, 0);
                if (k < 0 && errno != EINTR)
                        return -errno;
                if (k > 0) {
                        uint64_t populated;
                        buf[k] = 0;
                        if (keyed_value(buf, "populated", &populated) >= 0 && populated == 0)
                                continue; /* empty now: rmdir again */
                }

                if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
                        return -errno;
                uint64_t now = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
                if (now >= deadline)
                        return -EBUSY;
                struct pollfd pfd = {.fd = events_fd, .events = POLLPRI};
                int timeout_ms = (int)((deadline - now + 999) / 1000);
                if (poll(&pfd, 1, timeout_ms) < 0 && errno != EINTR)
                        return -errno;
        }
}

static int task_cgroup_name(const ExecSpec *spec, char **ret)
{
        static unsigned counter;
        char *s;

        if (spec->name) {
                if (!name_is_valid(spec->name) || startswith(spec->name, "cgroup."))
                        return -EINVAL;
                s = strdup(spec->name);
        } else
                s = strprintf("task-%d-%u", (int)getpid(),
                              __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* Creates <spec->cgroup>/<name> and sets its limits. A limit whose controller is not
 * enabled for the cgroup (its file is missing) is skipped: exec_find_cgroup() only
 * returns cgroups with memory enabled, so that happens only with a cgroup the caller
 * picked by hand. */
static int task_cgroup_create(const ExecSpec *spec, char **ret)
{
        _cleanup_free_ char *name = NULL, *path = NULL;
        char buf[64];
        int r;

        r = task_cgroup_name(spec, &name);
        if (r < 0)
                return r;
        path = strprintf("%s/%s", spec->cgroup, name);
        if (!path)
                return -ENOMEM;
        if (mkdir(path, 0755) < 0) {
                if (errno != EEXIST)
                        return -errno;
                /* Left over by an agent that died: reuse the name only if it is empty.
                 * A populated one may be a live task of the same name; never kill it. */
                if (rmdir(path) < 0)
                        return -EEXIST;
                if (mkdir(path, 0755) < 0)
                        return -errno;
        }

        struct {
                const char *file;
                bool set;
                uint64_t value;
        } limits[] = {
                {"memory.max", spec->memory_bytes > 0, spec->memory_bytes},
                /* A reservation is RAM: swapping past it would slow the whole host. */
                {"memory.swap.max", spec->memory_bytes > 0, 0},
                /* An OOM kill takes the whole task, not one random worker of it. */
                {"memory.oom.group", spec->memory_bytes > 0, 1},
                {"pids.max", spec->max_processes > 0, spec->max_processes},
        };
        for (size_t i = 0; i < ELEMENTSOF(limits); i++) {
                if (!limits[i].set)
                        continue;
                snprintf(buf, sizeof(buf), "%" PRIu64, limits[i].value);
                r = cgroup_write(path, limits[i].file, buf);
                if (r == -ENOENT) {
                        log_debug("cgroup %s has no %s, limit not applied", path, limits[i].file);
                        continue;
                }
                if (r < 0)
                        goto fail;
        }
        if (spec->cpus > 0) {
                snprintf(buf, sizeof(buf), "%" PRIu64 " %" PRIu64,
                         (uint64_t)spec->cpus * EXEC_CPU_PERIOD_USEC, EXEC_CPU_PERIOD_USEC);
                r = cgroup_write(path, "cpu.max", buf);
                if (r == -ENOENT)
                        log_debug("cgroup %s has no cpu.max, limit not applied", path);
                else if (r < 0)
                        goto fail;
        }
        *ret = TAKE_PTR(path);
        return 0;

fail:
        (void)rmdir(path);
        return r;
}

/* ---- spawning ---- */

/* Queues a limit (soft = hard, so the task cannot raise it) and its fallback for an
 * agent that may not raise its own hard limit. */
static int child_rlimit(ChildContext *c, int resource, uint64_t value)
{
        struct rlimit cur;
        rlim_t v = value >= (uint64_t)RLIM_INFINITY ? RLIM_INFINITY : (rlim_t)value;

        assert(c->n_rlimits < ELEMENTSOF(c->rlimits));
        if (getrlimit(resource, &cur) < 0)
                return -errno;
        ChildRlimit *l = &c->rlimits[c->n_rlimits++];
        l->resource = resource;
        l->limit = (struct rlimit){v, v};
        v = MIN(v, cur.rlim_max);
        l->fallback = (struct rlimit){v, v};
        return 0;
}

static pid_t clone3_pidfd(int cgroup_fd, int *ret_pidfd)
{
#ifdef SYS_clone3
        struct clone_args args = {
                .flags = CLONE_PIDFD,
                .pidfd = (uint64_t)(uintptr_t)ret_pidfd,
                .exit_signal = SIGCHLD,
        };
        size_t size = CLONE_ARGS_SIZE_VER0;

        if (cgroup_fd >= 0) {
                args.flags |= CLONE_INTO_CGROUP;
                args.cgroup = (uint64_t)cgroup_fd;
                size = CLONE_ARGS_SIZE_VER2;
        }
        /* Without CLONE_VM and with no stack given this returns twice, like fork(). */
        return (pid_t)syscall(SYS_clone3, &args, size);
#else
        errno = ENOSYS;
        return -1;
#endif
}

static int pidfd_open_compat(pid_t pid)
{
#ifdef SYS_pidfd_open
        int fd = (int)syscall(SYS_pidfd_open, pid, 0);
        return fd < 0 ? -errno : fd;
#else
        return -ENOSYS;
#endif
}

static void reap(pid_t pid)
{
        /* ECHILD: SIGCHLD is ignored and the kernel reaped it already. */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
}

int exec_spawn(const ExecSpec *spec, ExecProcess *ret)
{
        _cleanup_strv_free_ char **envp = NULL, **paths = NULL;
        _cleanup_free_ char *cg_path = NULL;
        _cleanup_close_ int in_r = -EBADF, in_w = -EBADF, out_r = -EBADF, out_w = -EBADF,
                            err_r = -EBADF, err_w = -EBADF, st_r = -EBADF, st_w = -EBADF,
                            cg_fd = -EBADF, procs_fd = -EBADF, pidfd = -EBADF;
        ChildContext c = {.procs_fd = -EBADF};
        sigset_t all, saved;
        int fds[2], r;
        pid_t pid;

        if (!spec || !ret || !spec->argv || isempty(spec->argv[0]) || isempty(spec->workdir))
                return -EINVAL;
        if (spec->cgroup && spec->cgroup[0] != '/')
                return -EINVAL;

        r = build_env(spec, &envp);
        if (r < 0)
                return r;
        r = build_paths(spec->argv[0], envp, &paths);
        if (r < 0)
                return r;

        if (spec->max_open_files > 0) {
                r = child_rlimit(&c, RLIMIT_NOFILE, spec->max_open_files);
                if (r < 0)
                        return r;
        }
        if (spec->max_file_size > 0) {
                r = child_rlimit(&c, RLIMIT_FSIZE, spec->max_file_size);
                if (r < 0)
                        return r;
        }
        /* RLIMIT_NPROC counts every process of the real uid: only meaningful for a uid
         * of the task's own, never for the agent's. */
        if (spec->change_user && spec->max_processes > 0) {
                r = child_rlimit(&c, RLIMIT_NPROC, spec->max_processes);
                if (r < 0)
                        return r;
        }

        if (spec->want_stdin) {
                if ((r = pipe_cloexec(fds)) < 0)
                        return r;
                in_r = fds[0], in_w = fds[1];
                if ((r = fd_nonblock(in_w, true)) < 0)
                        return r;
        } else {
                in_r = open("/dev/null", O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (in_r < 0)
                        return -errno;
        }
        if ((r = pipe_cloexec(fds)) < 0)
                return r;
        out_r = fds[0], out_w = fds[1];
        if ((r = pipe_cloexec(fds)) < 0)
                return r;
        err_r = fds[0], err_w = fds[1];
        if ((r = pipe_cloexec(fds)) < 0)
                return r;
        st_r = fds[0], st_w = fds[1];
        if ((r = fd_nonblock(out_r, true)) < 0 || (r = fd_nonblock(err_r, true)) < 0)
                return r;
        if ((r = fd_move_above_stdio(&in_r)) < 0 || (r = fd_move_above_stdio(&out_w)) < 0 ||
            (r = fd_move_above_stdio(&err_w)) < 0 || (r = fd_move_above_stdio(&st_w)) < 0)
                return r;

        if (spec->cgroup) {
                r = task_cgroup_create(spec, &cg_path);
                if (r < 0)
                        return r;
                cg_fd = open(cg_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (cg_fd < 0) {
                        r = -errno;
                        goto fail;
                }
        }

        c.argv = spec->argv;
        c.paths = paths;
        c.path_search = !strchr(spec->argv[0], '/');
        c.envp = envp;
        c.workdir = spec->workdir;
        c.stdin_fd = in_r;
        c.stdout_fd = out_w;
        c.stderr_fd = err_w;
        c.status_fd = st_w;
        c.change_user = spec->change_user;
        c.uid = spec->uid;
        c.gid = spec->gid;
        c.parent_pid = getpid();

        /* No handler of ours may run in the child before it has reset them. */
        sigfillset(&all);
        r = pthread_sigmask(SIG_SETMASK, &all, &saved);
        if (r != 0) {
                r = -r;
                goto fail;
        }

        pid = -1;
        errno = ENOSYS;
        if (!force_fork_fallback)
                pid = clone3_pidfd(cg_fd, &pidfd);
        if (pid == 0)
                child_run(&c);
        /* clone3() is missing (before 5.3), refused by a seccomp filter, or it lacks
         * CLONE_INTO_CGROUP (before 5.7: E2BIG / EINVAL): fork() and pidfd_open(). */
        if (pid < 0 &&
            (errno == ENOSYS || errno == EPERM ||
             (cg_fd >= 0 && (errno == E2BIG || errno == EINVAL)))) {
                if (cg_path) {
                        _cleanup_free_ char *procs = strprintf("%s/cgroup.procs", cg_path);
                        if (!procs) {
                                errno = ENOMEM;
                                goto fork_failed;
                        }
                        procs_fd = open(procs, O_WRONLY | O_CLOEXEC | O_NOCTTY);
                        if (procs_fd < 0)
                                goto fork_failed;
                        r = fd_move_above_stdio(&procs_fd);
                        if (r < 0) {
                                errno = -r;
                                goto fork_failed;
                        }
                        c.procs_fd = procs_fd;
                }
                pid = fork();
                if (pid == 0)
                        child_run(&c);
        }
fork_failed:
        r = pid < 0 ? negative_errno() : 0;
        (void)pthread_sigmask(SIG_SETMASK, &saved, NULL);
        if (r < 0)
                goto fail;

        /* From here a child exists: every failure must kill and reap it. */
        in_r = safe_close(in_r);
        out_w = safe_close(out_w);
        err_w = safe_close(err_w);
        st_w = safe_close(st_w);
        procs_fd = safe_close(procs_fd);

        if (pidfd < 0) {
                r = pidfd_open_compat(pid);
                if (r < 0) {
                        (void)kill(pid, SIGKILL);
                        reap(pid);
                        goto fail;
                }
                pidfd = r;
        }

        /* EOF: execve() succeeded and closed the O_CLOEXEC write end. */
        ChildStatus st;
        ssize_t k;
        do
                k = read(st_r, &st, sizeof(st));
        while (k < 0 && errno == EINTR);
        if (k != 0) {
                if (k == (ssize_t)sizeof(st) && st.error > 0) {
                        r = -st.error;
                        log_debug_errno(r, "Task %s: %s failed in the child: %m", strna(spec->name),
                                        (size_t)st.step < ELEMENTSOF(step_names)
                                                ? step_names[st.step]
                                                : "?");
                } else
                        r = k < 0 ? -errno : -EIO;
                (void)kill(pid, SIGKILL);
                reap(pid);
                goto fail;
        }

        *ret = (ExecProcess){
                .pid = pid,
                .pidfd = TAKE_FD(pidfd),
                .stdin_fd = TAKE_FD(in_w),
                .stdout_fd = TAKE_FD(out_r),
                .stderr_fd = TAKE_FD(err_r),
                .cgroup_path = TAKE_PTR(cg_path),
        };
        return 0;

fail:
        if (cg_path)
                (void)cgroup_remove(cg_path);
        return r;
}

int exec_kill(const ExecProcess *p, int sig)
{
        bool any = false;
        int r = 0;

        if (!p || p->pid <= 0)
                return -ESRCH;

        /* The leader itself through its pidfd (immune to pid reuse; it may have left the
         * group with setsid()), then the group, then the cgroup. */
        if (p->pidfd >= 0) {
#ifdef SYS_pidfd_send_signal
                if (syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0) >= 0)
                        any = true;
                else if (errno != ESRCH && errno != ENOSYS)
                        r = -errno;
#endif
        }
        if (kill(-p->pid, sig) >= 0)
                any = true;
        else if (errno != ESRCH && r == 0)
                r = -errno;
        if (p->cgroup_path) {
                int k = cgroup_signal(p->cgroup_path, sig);
                if (k > 0)
                        any = true;
                else if (k < 0 && k != -ENOENT && r == 0)
                        r = k;
        }
        if (any)
                return 0;
        return r < 0 ? r : -ESRCH;
}

void exec_process_done(ExecProcess *p)
{
        if (!p)
                return;
        /* pid 0: never spawned (a zeroed struct); its fds are not ours to close. */
        if (p->pid > 0)
                (void)kill(-p->pid, SIGKILL);
        if (p->cgroup_path) {
                int r = cgroup_remove(p->cgroup_path);
                if (r < 0)
                        log_debug_errno(r, "Failed to remove cgroup %s: %m", p->cgroup_path);
                free(p->cgroup_path);
        }
        if (p->pid > 0) {
                safe_close(p->pidfd);
                safe_close(p->stdin_fd);
                safe_close(p->stdout_fd);
                safe_close(p->stderr_fd);
        }
        *p = EXEC_PROCESS_NULL;
}

static uint64_t timeval_usec(const struct timeval *tv)
{
        return (uint64_t)tv->tv_sec * 1000000 + (uint64_t)tv->tv_usec;
}

int exec_usage(const ExecProcess *p, const struct rusage *ru, ExecUsage *ret)
{
        ExecUsage u = {};
        bool have_cpu = false, have_mem = false;

        if (!ret)
                return -EINVAL;

        if (p && p->cgroup_path) {
                _cleanup_free_ char *stat = NULL, *peak = NULL;

                if (cgroup_read(p->cgroup_path, "cpu.stat", &stat) >= 0 &&
                    keyed_value(stat, "user_usec", &u.user_usec) >= 0 &&
                    keyed_value(stat, "system_usec", &u.system_usec) >= 0)
                        have_cpu = true;
                /* memory.peak: 5.19 and the memory controller. */
                if (cgroup_read(p->cgroup_path, "memory.peak", &peak) >= 0) {
                        peak[strcspn(peak, "\n")] = 0;
                        if (safe_atou64(peak, &u.max_rss_bytes) >= 0)
                                have_mem = true;
                }
        }
        if (!have_cpu) {
                if (!ru)
                        return -ENODATA;
                u.user_usec = timeval_usec(&ru->ru_utime);
                u.system_usec = timeval_usec(&ru->ru_stime);
        }
        if (!have_mem && ru && ru->ru_maxrss > 0)
                u.max_rss_bytes = (uint64_t)ru->ru_maxrss * 1024; /* KiB */
        *ret = u;
        return 0;
}

int exec_oom_kills(const ExecProcess *p, uint64_t *ret)
{
        _cleanup_free_ char *events = NULL;
        uint64_t n;
        int r;

        if (!p || !ret)
                return -EINVAL;
        if (!p->cgroup_path)
                return -ENODATA;
        r = cgroup_read(p->cgroup_path, "memory.events", &events);
        if (r == -ENOENT)
                return -ENODATA;
        if (r < 0)
                return r;
        r = keyed_value(events, "oom_kill", &n);
        if (r < 0)
                return r;
        *ret = n;
        return 0;
}

/* ---- finding a delegated cgroup ---- */

/* Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup (unified) or
 * /sys/fs/cgroup/unified (hybrid: v1 controllers beside an empty-handed v2). */
static int cgroup2_mount(const char **ret)
{
        static const char *const candidates[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};

        for (size_t i = 0; i < ELEMENTSOF(candidates); i++) {
                struct statfs fs;
                if (statfs(candidates[i], &fs) < 0) {
                        if (errno == ENOENT)
                                continue;
                        return -errno;
                }
                if (fs.f_type == CGROUP2_SUPER_MAGIC) {
                        *ret = candidates[i];
                        return 0;
                }
        }
        return -ENOMEDIUM;
}

/* Our cgroup v2 path from /proc/self/cgroup ("0::/path"). */
static int own_cgroup(char **ret)
{
        _cleanup_free_ char *text = NULL;
        int r;

        r = read_full_file("/proc/self/cgroup", &text, NULL, 1 << 20);
        if (r < 0)
                return r;
        for (char *l = text, *nl; l && *l; l = nl) {
                nl = strchr(l, '\n');
                if (nl)
                        *nl++ = 0;
                const char *path = startswith(l, "0::");
                if (!path)
                        continue;
                if (path[0] != '/' || endswith(path, " (deleted)"))
                        return -ENOMEDIUM;
                char *s = strdup(path);
                if (!s)
                        return -ENOMEM;
                *ret = s;
                return 0;
        }
        return -ENOMEDIUM;
}

static int cgroup_has_controller(const char *dir, const char *file, const char *controller)
{
        _cleanup_free_ char *text = NULL;
        int r = cgroup_read(dir, file, &text);
        if (r < 0)
                return r;
        return word_in_list(text, controller);
}

static int cgroup_writable(const char *dir)
{
        static const char *const files[] = {"cgroup.procs", "cgroup.subtree_control"};

        if (faccessat(AT_FDCWD, dir, W_OK, AT_EACCESS) < 0)
                return -errno;
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *p = strprintf("%s/%s", dir, files[i]);
                if (!p)
                        return -ENOMEM;
                if (faccessat(AT_FDCWD, p, W_OK, AT_EACCESS) < 0)
                        return -errno;
        }
        return 0;
}

/* Moves every process of dir into dir/leaf. A few rounds: a process may fork while we
 * walk the list. */
static int cgroup_move_all(const char *dir, const char *leaf)
{
        for (int round = 0; round < 16; round++) {
                _cleanup_free_ char *procs = NULL;
                bool moved = false;
                int r = cgroup_read(dir, "cgroup.procs", &procs);
                if (r < 0)
                        return r;
                for (char *p = procs, *end; *p; p = end) {
                        end = p + strcspn(p, "\n");
                        if (*end)
                                *end++ = 0;
                        if (!*p)
                                continue;
                        r = cgroup_write(leaf, "cgroup.procs", p);
                        if (r < 0 && r != -ESRCH)
                                return r;
                        moved = true;
                }
                if (!moved)
                        return 0;
        }
        return -EBUSY;
}

/* Whether dir (own: its path in the hierarchy) was handed to us to manage. A root agent
 * can write any cgroup, so writability proves nothing for it: systemd marks a unit's
 * cgroup with the trusted.delegate (and, since v251, user.delegate) xattr when the unit
 * has Delegate=yes. A non-root agent can only write a cgroup someone delegated to it.
 * The root of a cgroup namespace (a container) is the container's own; the host's root
 * cgroup never is ours. The two look alike in /proc/self/cgroup ("0::/"), but only a
 * non-root cgroup has a cgroup.type file. */
static int cgroup_is_delegated(const char *dir, const char *own)
{
        static const char *const xattrs[] = {"trusted.delegate", "user.delegate"};

        if (streq(own, "/")) {
                _cleanup_free_ char *type = strprintf("%s/cgroup.type", dir);
                if (!type)
                        return -ENOMEM;
                if (access(type, F_OK) >= 0)
                        return true;
                return errno == ENOENT ? false : -errno;
        }
        for (size_t i = 0; i < ELEMENTSOF(xattrs); i++) {
                char v[8];
                ssize_t k = getxattr(dir, xattrs[i], v, sizeof(v));
                if (k > 0 && v[0] == '1')
                        return true;
        }
        return geteuid() != 0;
}

/* The delegated cgroup that holds dir/own as its agent leaf, if that is what they are:
 * a second call after an earlier one moved us into <delegated>/agent. */
static int cgroup_already_set_up(const char *mount, const char *own, const char *required,
                                 char **ret)
{
        _cleanup_free_ char *parent_own = NULL, *parent = NULL;
        const char *base = strrchr(own, '/');

        if (!base || !streq(base + 1, EXEC_AGENT_LEAF))
                return 0;
        parent_own = base == own ? strdup("/") : strndup(own, (size_t)(base - own));
        if (!parent_own)
                return -ENOMEM;
        parent = strprintf("%s%s", mount, streq(parent_own, "/") ? "" : parent_own);
        if (!parent)
                return -ENOMEM;
        if ((required && cgroup_has_controller(parent, "cgroup.subtree_control", required) <= 0) ||
            cgroup_is_delegated(parent, parent_own) <= 0 || cgroup_writable(parent) < 0)
                return 0;
        *ret = TAKE_PTR(parent);
        return 1;
}

int exec_find_cgroup_requiring(const char *required, char **ret_path)
{
        _cleanup_free_ char *own = NULL, *dir = NULL, *leaf = NULL;
        const char *mount = NULL;
        int r;

        if ((required && !*required) || !ret_path)
                return -EINVAL;
        r = cgroup2_mount(&mount);
        if (r < 0)
                return r;
        r = own_cgroup(&own);
        if (r < 0)
                return r;
        dir = strprintf("%s%s", mount, streq(own, "/") ? "" : own);
        if (!dir)
                return -ENOMEM;

        r = cgroup_already_set_up(mount, own, required, ret_path);
        if (r != 0)
                return r < 0 ? r : 0;

        /* On a hybrid host the controllers live in v1 and cgroup2 has none of them. */
        if (required) {
                r = cgroup_has_controller(dir, "cgroup.controllers", required);
                if (r < 0)
                        return r;
                if (r == 0)
                        return -EOPNOTSUPP;
        }
        r = cgroup_is_delegated(dir, own);
        if (r < 0)
                return r;
        if (r == 0)
                return -EPERM;
        r = cgroup_writable(dir);
        if (r < 0)
                return r;

        /* "No internal processes": controllers can be enabled for the children only
         * once no process sits in dir itself, so the agent (and whatever else runs in
         * its cgroup) moves into a leaf first. */
        leaf = strprintf("%s/%s", dir, EXEC_AGENT_LEAF);
        if (!leaf)
                return -ENOMEM;
        if (mkdir(leaf, 0755) < 0 && errno != EEXIST)
                return -errno;
        r = cgroup_move_all(dir, leaf);
        if (r < 0)
                return r;

        const char *const controllers[] = {required, "memory", "cpu", "pids"};
        for (size_t i = 0; i < ELEMENTSOF(controllers); i++) {
                char buf[64];
                if (!controllers[i] || (i > 0 && streq_ptr(controllers[i], required)))
                        continue;
                r = cgroup_has_controller(dir, "cgroup.controllers", controllers[i]);
                if (r <= 0)
                        continue;
                snprintf(buf, sizeof(buf), "+%s", controllers[i]);
                r = cgroup_write(dir, "cgroup.subtree_control", buf);
                if (r < 0) {
                        if (i == 0)
                                return r;
                        log_debug_errno(r, "Cannot enable %s in %s: %m", controllers[i], dir);
                }
        }
        *ret_path = TAKE_PTR(dir);
        return 0;
}

int exec_find_cgroup(char **ret_path)
{
        /* memory is what a reservation is about; cpu and pids come along if there. */
        return exec_find_cgroup_requiring("memory", ret_path);
}
