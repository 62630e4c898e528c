/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What the executor's two test programs (test-agent-exec, unprivileged, and
 * test-agent-exec-root) share: a work directory per test, the spec of a plain task,
 * the result of a run, and the parent-death check. */
#include <check.h>
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent-exec.h"
#include "basic/fd-util.h"

static char workdir[] = "/tmp/test-agent-exec-XXXXXX";

static inline void setup(void)
{
        ck_assert_ptr_nonnull(mkdtemp(workdir));
        ck_assert_int_eq(chmod(workdir, 0755), 0);
}

static inline void teardown(void)
{
        (void)rm_rf(workdir);
}

static inline ExecSpec spec_for(char *const *argv)
{
        return (ExecSpec){.argv = argv, .workdir = workdir};
}

typedef struct Result {
        char *out, *err;
        size_t out_n, err_n, out_cap, err_cap;
        siginfo_t si;
        struct rusage ru;
} Result;

static inline void result_clear(Result *r)
{
        free(r->out);
        free(r->err);
        *r = (Result){};
}

static inline unsigned count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        unsigned n = 0;
        struct dirent *de;

        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

/* An intermediate process spawns a task (its spec from make) and dies: the task gets
 * SIGKILL. We are the subreaper, so the orphan comes to us and we see how it ended. */
static inline void assert_task_dies_with_spawner(ExecSpec (*make)(char *const *argv))
{
        int fds[2], status;
        pid_t mid, task;

        ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
        ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
        mid = fork();
        ck_assert_int_ge(mid, 0);
        if (mid == 0) {
                char *argv[] = {"sleep", "100", NULL};
                ExecSpec s = make(argv);
                ExecProcess p = EXEC_PROCESS_NULL;
                if (exec_spawn(&s, &p) < 0)
                        _exit(1);
                if (write(fds[1], &p.pid, sizeof(p.pid)) != sizeof(p.pid))
                        _exit(2);
                _exit(0);
        }
        close(fds[1]);
        ck_assert_int_eq(read(fds[0], &task, sizeof(task)), sizeof(task));
        close(fds[0]);
        ck_assert_int_eq(waitpid(mid, &status, 0), mid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        ck_assert_int_eq(waitpid(task, &status, 0), task);
        ck_assert(WIFSIGNALED(status));
        ck_assert_int_eq(WTERMSIG(status), SIGKILL);
}
