/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Starting and stopping one task's process tree on this host.
 *
 * exec_spawn() starts argv in a new process group (and, when the host delegates a
 * cgroup v2 subtree to the agent, in a cgroup of its own with memory.max / cpu.max set
 * from the reservation), with the given environment (a minimal one is built: PATH,
 * HOME, USER, LANG plus the task's KEY=value pairs), in workdir, as uid/gid when the
 * agent runs as root, under the RLIMITs given. stdin/stdout/stderr are pipes whose
 * parent ends are returned O_CLOEXEC|O_NONBLOCK (stdin is /dev/null when not wanted).
 * A pidfd watches the child. The function never blocks on the child: an exec failure
 * (ENOENT, EACCES, ...) is reported synchronously through a CLOEXEC status pipe and
 * returned as -errno, so the caller can answer 127 / 126 as a shell would.
 *
 * exec_kill() signals the whole process group (and every process of the task's cgroup),
 * so a shell's grandchildren die with it. */

#include <sys/resource.h>
#include <sys/types.h>

#include "basic/macro.h"

typedef struct ExecSpec {
        char *const *argv; /* argv[0] looked up in PATH of env when it has no '/' */
        char *const *env; /* "KEY=value" added to the base environment */
        const char *workdir; /* must exist */
        bool change_user; /* setgroups/setgid/setuid to uid/gid before exec */
        uid_t uid;
        gid_t gid;
        bool want_stdin; /* else stdin is /dev/null */
        uint64_t memory_bytes; /* 0 = no limit; RLIMIT_AS is NOT used (breaks JITs) */
        uint32_t cpus; /* cgroup cpu.max when a cgroup is used; 0 = none */
        uint64_t max_processes; /* RLIMIT_NPROC when change_user; 0 = leave */
        uint64_t max_open_files; /* RLIMIT_NOFILE; 0 = leave */
        uint64_t max_file_size; /* RLIMIT_FSIZE; 0 = leave */
        const char *cgroup; /* absolute path of a delegated cgroup v2 directory under
                               which a child cgroup is made; NULL = none */
        const char *name; /* for the cgroup name and logs, e.g. "task-42" */
} ExecSpec;

typedef struct ExecProcess {
        pid_t pid;
        int pidfd; /* -EBADF once handed to the loop */
        int stdin_fd; /* -EBADF when not wanted */
        int stdout_fd;
        int stderr_fd;
        char *cgroup_path; /* NULL when not in a cgroup */
} ExecProcess;

#define EXEC_PROCESS_NULL                                                                          \
        (ExecProcess)                                                                              \
        {                                                                                          \
                .pid = 0, .pidfd = -EBADF, .stdin_fd = -EBADF, .stdout_fd = -EBADF,                \
                .stderr_fd = -EBADF                                                                \
        }

int exec_spawn(const ExecSpec *spec, ExecProcess *ret);
/* Signals the process group (and cgroup members). -ESRCH when nothing is left. */
int exec_kill(const ExecProcess *p, int sig);
/* After the child was reaped: kill leftovers in the cgroup, remove it, close fds. */
void exec_process_done(ExecProcess *p);

/* Resource usage of the reaped child (and its waited-for descendants), from the cgroup
 * when there is one, else from the rusage of the wait. */
typedef struct ExecUsage {
        uint64_t user_usec, system_usec, max_rss_bytes;
} ExecUsage;
int exec_usage(const ExecProcess *p, const struct rusage *ru, ExecUsage *ret);

/* Whether this host delegates a writable cgroup v2 subtree to us; its path or NULL. */
int exec_find_cgroup(char **ret_path);

/* How many times the kernel's OOM killer struck in the task's cgroup (memory.events
 * oom_kill), so that a task killed by SIGKILL can be reported as "out of memory".
 * -ENODATA without a cgroup or without the memory controller. Call it before
 * exec_process_done(), which removes the cgroup. */
int exec_oom_kills(const ExecProcess *p, uint64_t *ret);

/* For tests: take the fork() + pidfd_open() path that kernels without clone3() (before
 * 5.3) or without CLONE_INTO_CGROUP (before 5.7) take. */
void exec_force_fork_fallback(bool b);

/* exec_find_cgroup() requiring another controller than "memory", or none (NULL); it
 * enables that one and memory, cpu and pids where present. For tests on hosts whose
 * cgroup v2 lacks the memory controller (hybrid hierarchy). */
int exec_find_cgroup_requiring(const char *controller, char **ret_path);
