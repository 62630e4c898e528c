/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The task executor, unprivileged: real processes, real pipes, no mocks. Nothing here
 * sleeps or measures time: every wait is a poll() or a blocking waitid(). */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "agent/agent-exec.h"
#include "basic/alloc-util.h"
#include "basic/fd-util.h"
#include "basic/string-util.h"
#include "basic/strv.h"
#include "exec-test-util.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static void append(char **buf, size_t *n, size_t *cap, const char *data, size_t k)
{
        ck_assert(GREEDY_REALLOC(*buf, *cap, *n + k + 1));
        memcpy(*buf + *n, data, k);
        *n += k;
        (*buf)[*n] = 0;
}

/* Reaps the child through its pidfd, with the rusage (the fifth argument of waitid). */
static void wait_child(ExecProcess *p, siginfo_t *si, struct rusage *ru)
{
        struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
        long k;

        ck_assert_int_ge(p->pidfd, 0);
        while (poll(&pfd, 1, -1) < 0)
                ck_assert_int_eq(errno, EINTR);
        *si = (siginfo_t){};
        do
                k = syscall(SYS_waitid, P_PIDFD, p->pidfd, si, WEXITED, ru);
        while (k < 0 && errno == EINTR);
        ck_assert_int_eq(k, 0);
        ck_assert_int_eq(si->si_pid, p->pid);
}

/* Feeds input to stdin, reads stdout and stderr (chunk bytes at a time) until both end,
 * then reaps the child. */
static void collect(ExecProcess *p, const char *input, size_t chunk, Result *res)
{
        size_t in_n = input ? strlen(input) : 0, in_off = 0;
        char *buf = malloc(chunk);

        ck_assert_ptr_nonnull(buf);
        *res = (Result){};
        append(&res->out, &res->out_n, &res->out_cap, "", 0);
        append(&res->err, &res->err_n, &res->err_cap, "", 0);
        if (p->stdin_fd >= 0 && in_n == 0)
                p->stdin_fd = safe_close(p->stdin_fd);

        while (p->stdout_fd >= 0 || p->stderr_fd >= 0 || p->stdin_fd >= 0) {
                struct pollfd pfd[3];
                int *fds[3], n = 0;

                if (p->stdout_fd >= 0) {
                        pfd[n] = (struct pollfd){.fd = p->stdout_fd, .events = POLLIN};
                        fds[n++] = &p->stdout_fd;
                }
                if (p->stderr_fd >= 0) {
                        pfd[n] = (struct pollfd){.fd = p->stderr_fd, .events = POLLIN};
                        fds[n++] = &p->stderr_fd;
                }
                if (p->stdin_fd >= 0) {
                        pfd[n] = (struct pollfd){.fd = p->stdin_fd, .events = POLLOUT};
                        fds[n++] = &p->stdin_fd;
                }
                if (poll(pfd, (nfds_t)n, -1) < 0) {
                        ck_assert_int_eq(errno, EINTR);
                        continue;
                }
                for (int i = 0; i < n; i++) {
                        if (!pfd[i].revents)
                                continue;
                        if (fds[i] == &p->stdin_fd) {
                                ssize_t k = write(p->stdin_fd, input + in_off, in_n - in_off);
                                if (k < 0 && errno == EAGAIN)
                                        continue;
                                if (k > 0)
                                        in_off += (size_t)k;
                                if (k < 0 || in_off == in_n)
                                        p->stdin_fd = safe_close(p->stdin_fd);
                                continue;
                        }
                        ssize_t k = read(*fds[i], buf, chunk);
                        if (k < 0 && (errno == EAGAIN || errno == EINTR))
                                continue;
                        ck_assert_int_ge(k, 0);
                        if (k == 0) {
                                *fds[i] = safe_close(*fds[i]);
                                continue;
                        }
                        if (fds[i] == &p->stdout_fd)
                                append(&res->out, &res->out_n, &res->out_cap, buf, (size_t)k);
                        else
                                append(&res->err, &res->err_n, &res->err_cap, buf, (size_t)k);
                }
        }
        free(buf);
        wait_child(p, &res->si, &res->ru);
}

static int run(const ExecSpec *spec, const char *input, Result *res)
{
        ExecProcess p = EXEC_PROCESS_NULL;
        int r = exec_spawn(spec, &p);
        if (r < 0)
                return r;
        collect(&p, input, 4096, res);
        exec_process_done(&p);
        return 0;
}

static int run_argv(char *const *argv, Result *res)
{
        ExecSpec s = spec_for(argv);
        return run(&s, NULL, res);
}

static void assert_exited(const Result *r, int code)
{
        ck_assert_int_eq(r->si.si_code, CLD_EXITED);
        ck_assert_int_eq(r->si.si_status, code);
}

/* No child of ours is left unreaped. */
static void assert_no_children(void)
{
        ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
        ck_assert_int_eq(errno, ECHILD);
}

static void write_file(const char *name, const char *content, mode_t mode, char **ret_path)
{
        char *path = strprintf("%s/%s", workdir, name);
        ck_assert_ptr_nonnull(path);
        ck_assert_int_eq(write_file_atomic(path, content, strlen(content), mode), 0);
        *ret_path = path;
}

START_TEST(test_stdout_stderr_separate)
{
        char *argv[] = {"sh", "-c", "echo out; echo err >&2; echo more", NULL};
        Result r;

        ck_assert_int_eq(run_argv(argv, &r), 0);
        ck_assert_str_eq(r.out, "out\nmore\n");
        ck_assert_str_eq(r.err, "err\n");
        assert_exited(&r, 0);
        result_clear(&r);
}
END_TEST

START_TEST(test_exit_codes)
{
        static const int codes[] = {0, 3, 255};

        for (size_t i = 0; i < ELEMENTSOF(codes); i++) {
                char cmd[32];
                char *argv[] = {"sh", "-c", cmd, NULL};
                Result r;

                snprintf(cmd, sizeof(cmd), "exit %d", codes[i]);
                ck_assert_int_eq(run_argv(argv, &r), 0);
                assert_exited(&r, codes[i]);
                result_clear(&r);
        }
}
END_TEST

START_TEST(test_death_by_signal_resets_mask_and_dispositions)
{
        char *argv[] = {"sh", "-c", "kill -TERM $$; echo survived", NULL};
        sigset_t ss;
        Result r;

        /* The agent may ignore or block signals; its tasks must not inherit that. */
        ck_assert_ptr_ne(signal(SIGTERM, SIG_IGN), SIG_ERR);
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        ck_assert_int_eq(sigprocmask(SIG_BLOCK, &ss, NULL), 0);

        ck_assert_int_eq(run_argv(argv, &r), 0);
        ck_assert_int_eq(r.si.si_code, CLD_KILLED);
        ck_assert_int_eq(r.si.si_status, SIGTERM);
        ck_assert_str_eq(r.out, "");
        result_clear(&r);
}
END_TEST

START_TEST(test_sigpipe_default)
{
        char *argv[] = {"yes", NULL};
        ExecSpec s = spec_for(argv);
        ExecProcess p = EXEC_PROCESS_NULL;
        siginfo_t si;
        struct rusage ru;

        ck_assert_ptr_ne(signal(SIGPIPE, SIG_IGN), SIG_ERR);
        ck_assert_int_eq(exec_spawn(&s, &p), 0);
        p.stdout_fd = safe_close(p.stdout_fd);
        wait_child(&p, &si, &ru);
        ck_assert_int_eq(si.si_code, CLD_KILLED);
        ck_assert_int_eq(si.si_status, SIGPIPE);
        exec_process_done(&p);
}
END_TEST

START_TEST(test_stdin_forwarding)
{
        char *argv[] = {"cat", NULL};
        ExecSpec s = spec_for(argv);
        Result r;

        s.want_stdin = true;
        ck_assert_int_eq(run(&s, "hello\nworld\n", &r), 0);
        ck_assert_str_eq(r.out, "hello\nworld\n");
        assert_exited(&r, 0);
        result_clear(&r);
}
END_TEST

START_TEST(test_stdin_dev_null)
{
        char *argv_cat[] = {"cat", NULL};
        char *argv_link[] = {"readlink", "/proc/self/fd/0", NULL};
        ExecSpec s = spec_for(argv_cat);
        ExecProcess p = EXEC_PROCESS_NULL;
        Result r;

        ck_assert_int_eq(exec_spawn(&s, &p), 0);
        ck_assert_int_eq(p.stdin_fd, -EBADF);
        collect(&p, NULL, 4096, &r);
        exec_process_done(&p);
        ck_assert_str_eq(r.out, "");
        assert_exited(&r, 0);
        result_clear(&r);

        ck_assert_int_eq(run_argv(argv_link, &r), 0);
        ck_assert_str_eq(r.out, "/dev/null\n");
        result_clear(&r);
}
END_TEST

START_TEST(test_parent_ends_nonblocking_cloexec)
{
        char *argv[] = {"cat", NULL};
        ExecSpec s = spec_for(argv);
        ExecProcess p = EXEC_PROCESS_NULL;
        Result r;

        s.want_stdin = true;
        ck_assert_int_eq(exec_spawn(&s, &p), 0);
        int fds[] = {p.stdin_fd, p.stdout_fd, p.stderr_fd, p.pidfd};
        for (size_t i = 0; i < ELEMENTSOF(fds); i++) {
                ck_assert_int_ge(fds[i], 0);
                ck_assert(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
                if (i < 3)
                        ck_assert(fcntl(fds[i], F_GETFL) & O_NONBLOCK);
        }
        ck_assert_ptr_null(p.cgroup_path);
        collect(&p, NULL, 4096, &r);
        exec_process_done(&p);
        result_clear(&r);
}
END_TEST

static bool env_has(char *const *l, const char *entry)
{
        return strv_contains(l, entry);
}

static char **split_lines(char *s)
{
        char **l = NULL;
        for (char *tok = strtok(s, "\n"); tok; tok = strtok(NULL, "\n"))
                ck_assert_int_eq(strv_extend(&l, tok), 0);
        return l;
}

START_TEST(test_env_minimal)
{
        char *argv[] = {"env", NULL};
        char *env[] = {"FOO=bar", "EMPTY=", "LANG=de_DE.UTF-8", "FOO=baz", NULL};
        ExecSpec s = spec_for(argv);
        _cleanup_free_ char *home = strprintf("HOME=%s", workdir);
        struct passwd *pw = getpwuid(geteuid());
        Result r;

        ck_assert_int_eq(setenv("CLUSTER_EXEC_TEST_LEAK", "secret", 1), 0);
        s.env = env;
        ck_assert_int_eq(run(&s, NULL, &r), 0);
        assert_exited(&r, 0);
        _cleanup_strv_free_ char **l = split_lines(r.out);

        ck_assert(env_has(l, "PATH=/usr/local/bin:/usr/bin:/bin"));
        ck_assert(env_has(l, home));
        ck_assert(env_has(l, "FOO=baz")); /* the last of a key wins */
        ck_assert(env_has(l, "EMPTY="));
        ck_assert(env_has(l, "LANG=de_DE.UTF-8")); /* the task overrides the base */
        size_t expected = 5;
        if (pw) {
                _cleanup_free_ char *user = strprintf("USER=%s", pw->pw_name);
                _cleanup_free_ char *logname = strprintf("LOGNAME=%s", pw->pw_name);
                ck_assert(env_has(l, user));
                ck_assert(env_has(l, logname));
                expected += 2;
        }
        STRV_FOREACH (e, l)
                ck_assert_msg(!startswith(*e, "CLUSTER_EXEC_TEST_LEAK"), "leaked: %s", *e);
        ck_assert_uint_eq(strv_length(l), expected);
        result_clear(&r);
}
END_TEST

START_TEST(test_env_invalid)
{
        char *argv[] = {"true", NULL};
        char *bad1[] = {"NOEQUALS", NULL};
        char *bad2[] = {"=value", NULL};
        ExecSpec s = spec_for(argv);
        ExecProcess p = EXEC_PROCESS_NULL;
        unsigned before = count_fds();

        s.env = bad1;
        ck_assert_int_eq(exec_spawn(&s, &p), -EINVAL);
        s.env = bad2;
        ck_assert_int_eq(exec_spawn(&s, &p), -EINVAL);
        ck_assert_int_eq(p.pid, 0); /* ret untouched on failure */
        ck_assert_int_eq(p.pidfd, -EBADF);
        ck_assert_uint_eq(count_fds(), before);
}
END_TEST

START_TEST(test_path_lookup_uses_task_path)
{
        _cleanup_free_ char *script = NULL, *path_env = NULL, *sub = NULL, *noexec = NULL;
        char *argv[] = {"hello-exec", NULL};
        char *env[2] = {NULL, NULL};
        ExecSpec s = spec_for(argv);
        Result r;

        /* dir "a" holds a non-executable hello-exec, the workdir an executable one: the
         * search goes on past EACCES, as execvp does. */
        sub = strprintf("%s/a", workdir);
        ck_assert_int_eq(mkdir(sub, 0755), 0);
        write_file("a/hello-exec", "#!/bin/sh\necho wrong\n", 0644, &noexec);
        write_file("hello-exec", "#!/bin/sh\necho hi \"$0\"\n", 0755, &script);
        path_env = strprintf("PATH=%s::%s", sub, workdir);
        env[0] = path_env;
        s.env = env;
        ck_assert_int_eq(run(&s, NULL, &r), 0);
        _cleanup_free_ char *expect = strprintf("hi %s\n", script);
        ck_assert_str_eq(r.out, expect);
        assert_exited(&r, 0);
        result_clear(&r);

        /* Only the non-executable one: EACCES. */
        free(path_env);
        path_env = strprintf("PATH=/nonexistent-dir:%s", sub);
        env[0] = path_env;
        ExecProcess p = EXEC_PROCESS_NULL;
        ck_assert_int_eq(exec_spawn(&s, &p), -EACCES);
        assert_no_children();

        /* A PATH without it: ENOENT, even for a command the base PATH has. */
        char *argv_true[] = {"true", NULL};
        char *env_nopath[] = {"PATH=/nonexistent-dir", NULL};
        s.argv = argv_true;
        s.env = env_nopath;
        ck_assert_int_eq(exec_spawn(&s, &p), -ENOENT);
        assert_no_children();
}
END_TEST

START_TEST(test_workdir)
{
        char *argv[] = {"pwd", NULL};
        Result r;

        ck_assert_int_eq(run_argv(argv, &r), 0);
        _cleanup_free_ char *expect = strprintf("%s\n", workdir);
        ck_assert_str_eq(r.out, expect);
        result_clear(&r);
}
END_TEST

START_TEST(test_spawn_errors)
{
        _cleanup_free_ char *noexec = NULL, *garbage = NULL;
        char *argv_missing[] = {"no-such-command-cluster-ai", NULL};
        char *argv_abs_missing[] = {"/nonexistent/bin/x", NULL};
        char *argv_true[] = {"true", NULL};
        ExecProcess p = EXEC_PROCESS_NULL;
        ExecSpec s = spec_for(argv_missing);
        unsigned before = count_fds();

        ck_assert_int_eq(exec_spawn(&s, &p), -ENOENT);
        assert_no_children();
        s.argv = argv_abs_missing;
        ck_assert_int_eq(exec_spawn(&s, &p), -ENOENT);
        assert_no_children();
        char *argv_notdir[] = {"/etc/passwd/x", NULL};
        s.argv = argv_notdir;
        ck_assert_int_eq(exec_spawn(&s, &p), -ENOTDIR);
        assert_no_children();

        write_file("noexec", "#!/bin/sh\necho x\n", 0644, &noexec);
        char *argv_noexec[] = {noexec, NULL};
        s.argv = argv_noexec;
        ck_assert_int_eq(exec_spawn(&s, &p), -EACCES);
        assert_no_children();

        /* Neither ELF nor #!: not handed to a shell, reported. */
        write_file("garbage", "\x01\x02\x03 not a program\n", 0755, &garbage);
        char *argv_garbage[] = {garbage, NULL};
        s.argv = argv_garbage;
        ck_assert_int_eq(exec_spawn(&s, &p), -ENOEXEC);
        assert_no_children();

        /* A workdir that does not exist. */
        s.argv = argv_true;
        s.workdir = "/nonexistent-workdir-cluster-ai";
        ck_assert_int_eq(exec_spawn(&s, &p), -ENOENT);
        assert_no_children();
        s.workdir = workdir;

        /* Bad arguments. */
        char *argv_empty[] = {"", NULL};
        char *argv_none[] = {NULL};
        s.argv = argv_empty;
        ck_assert_int_eq(exec_spawn(&s, &p), -EINVAL);
        s.argv = argv_none;
        ck_assert_int_eq(exec_spawn(&s, &p), -EINVAL);
        s.argv = NULL;
        ck_assert_int_eq(exec_spawn(&s, &p), -EINVAL);
        s.argv = argv_true;
        s.workdir = NULL;
        ck_assert_int_eq(exec_spawn(&s, &p), -EINVAL);
        s.workdir = workdir;
        s.cgroup = "relative/cgroup";
        ck_assert_int_eq(exec_spawn(&s, &p), -EINVAL);
        s.cgroup = "/nonexistent-cgroup-cluster-ai";
        ck_assert_int_eq(exec_spawn(&s, &p), -ENOENT);
        s.cgroup = workdir;
        s.name = "../escape";
        ck_assert_int_eq(exec_spawn(&s, &p), -EINVAL);
        ck_assert_int_eq(exec_spawn(NULL, &p), -EINVAL);
        s.cgroup = NULL;
        s.name = NULL;
        ck_assert_int_eq(exec_spawn(&s, NULL), -EINVAL);

        ck_assert_int_eq(p.pid, 0);
        ck_assert_uint_eq(count_fds(), before);
}
END_TEST

/* `sh -c 'sleep 100 & sleep 100 & ...; wait'`: killing the task kills the
 * grandchildren too. We are the subreaper, so the orphaned sleeps come to us and can
 * be reaped: then nothing of the group is left, not even a zombie. */
static void kill_group(bool fallback)
{
        char *argv[] = {"sh", "-c", "sleep 100 & sleep 100 & echo ready; wait", NULL};
        ExecSpec s = spec_for(argv);
        ExecProcess p = EXEC_PROCESS_NULL;
        char buf[16];
        siginfo_t si;
        struct rusage ru;
        ssize_t k;

        exec_force_fork_fallback(fallback);
        ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
        ck_assert_int_eq(exec_spawn(&s, &p), 0);

        /* "ready" comes after both sleeps were started. */
        struct pollfd pfd = {.fd = p.stdout_fd, .events = POLLIN};
        ck_assert_int_eq(poll(&pfd, 1, -1), 1);
        k = read(p.stdout_fd, buf, sizeof(buf));
        ck_assert_int_eq(k, 6);
        ck_assert(memcmp(buf, "ready\n", 6) == 0);
        ck_assert_int_eq(kill(-p.pid, 0), 0);

        ck_assert_int_eq(exec_kill(&p, SIGKILL), 0);
        wait_child(&p, &si, &ru);
        ck_assert_int_eq(si.si_code, CLD_KILLED);
        ck_assert_int_eq(si.si_status, SIGKILL);
        int reaped = 0;
        for (;;) {
                int status;
                pid_t pid = waitpid(-p.pid, &status, 0);
                if (pid < 0) {
                        if (errno == EINTR)
                                continue;
                        ck_assert_int_eq(errno, ECHILD);
                        break;
                }
                ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
                reaped++;
        }
        ck_assert_int_eq(reaped, 2);
        ck_assert_int_eq(kill(-p.pid, 0), -1);
        ck_assert_int_eq(errno, ESRCH);
        ck_assert_int_eq(exec_kill(&p, SIGKILL), -ESRCH);
        exec_process_done(&p);
        ck_assert_int_eq(exec_kill(&p, SIGKILL), -ESRCH);
}

START_TEST(test_kill_group)
{
        kill_group(false);
}
END_TEST

START_TEST(test_kill_group_fork_fallback)
{
        kill_group(true);
}
END_TEST

START_TEST(test_kill_sigterm)
{
        char *argv[] = {"sleep", "100", NULL};
        ExecSpec s = spec_for(argv);
        ExecProcess p = EXEC_PROCESS_NULL;
        siginfo_t si;
        struct rusage ru;

        ck_assert_int_eq(exec_spawn(&s, &p), 0);
        ck_assert_int_eq(exec_kill(&p, SIGTERM), 0);
        wait_child(&p, &si, &ru);
        ck_assert_int_eq(si.si_code, CLD_KILLED);
        ck_assert_int_eq(si.si_status, SIGTERM);
        ck_assert_int_eq(exec_kill(&p, SIGTERM), -ESRCH);
        exec_process_done(&p);
        ck_assert_int_eq(exec_kill(NULL, SIGTERM), -ESRCH);
}
END_TEST

START_TEST(test_rlimits)
{
        char *argv[] = {"cat", "/proc/self/limits", NULL};
        ExecSpec s = spec_for(argv);
        Result r;
        bool seen = false;

        s.max_open_files = 77;
        ck_assert_int_eq(run(&s, NULL, &r), 0);
        for (char *l = strtok(r.out, "\n"); l; l = strtok(NULL, "\n")) {
                unsigned long soft, hard;
                if (sscanf(l, "Max open files %lu %lu", &soft, &hard) == 2) {
                        ck_assert_uint_eq(soft, 77);
                        ck_assert_uint_eq(hard, 77);
                        seen = true;
                }
        }
        ck_assert(seen);
        result_clear(&r);

        /* Above what the agent may grant (past fs.nr_open, which not even
         * CAP_SYS_RESOURCE passes): the task gets the agent's own hard limit. The
         * limit is a ceiling, never a reason to refuse the task. */
        struct rlimit own;
        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &own), 0);
        s.max_open_files = UINT64_C(1) << 40;
        ck_assert_int_eq(run(&s, NULL, &r), 0);
        seen = false;
        for (char *l = strtok(r.out, "\n"); l; l = strtok(NULL, "\n")) {
                unsigned long soft, hard;
                if (sscanf(l, "Max open files %lu %lu", &soft, &hard) == 2) {
                        ck_assert_uint_eq(soft, own.rlim_max);
                        ck_assert_uint_eq(hard, own.rlim_max);
                        seen = true;
                }
        }
        ck_assert(seen);
        result_clear(&r);

        /* RLIMIT_FSIZE: the writer dies of SIGXFSZ at the limit (default disposition). */
        char *argv_fsize[] = {"sh", "-c", "exec head -c 10000 /dev/zero > big", NULL};
        s = spec_for(argv_fsize);
        s.max_file_size = 4096;
        ck_assert_int_eq(run(&s, NULL, &r), 0);
        ck_assert(r.si.si_code == CLD_KILLED || r.si.si_code == CLD_DUMPED);
        ck_assert_int_eq(r.si.si_status, SIGXFSZ);
        _cleanup_free_ char *big = strprintf("%s/big", workdir);
        struct stat st;
        ck_assert_int_eq(stat(big, &st), 0);
        ck_assert_int_eq(st.st_size, 4096);
        result_clear(&r);
}
END_TEST

START_TEST(test_large_output_slow_reader)
{
        /* 10 MiB of a 16-byte pattern, read 1000 bytes at a time: far slower than the
         * writer, which blocks on the full pipe again and again. Nothing may be lost. */
        char *argv[] = {"sh", "-c", "yes 0123456789abcde | head -c 10485760", NULL};
        ExecSpec s = spec_for(argv);
        ExecProcess p = EXEC_PROCESS_NULL;
        Result r;

        ck_assert_int_eq(exec_spawn(&s, &p), 0);
        collect(&p, NULL, 1000, &r);
        exec_process_done(&p);
        assert_exited(&r, 0);
        ck_assert_uint_eq(r.out_n, 10485760);
        for (size_t i = 0; i < r.out_n; i += 16)
                ck_assert_msg(memcmp(r.out + i, "0123456789abcde\n", 16) == 0, "corrupt at %zu", i);
        result_clear(&r);
}
END_TEST

START_TEST(test_fds_not_inherited)
{
        /* Deliberately without O_CLOEXEC: the executor must close them anyway. */
        int fd = open("/etc/passwd", O_RDONLY);
        int pipefd[2];
        char *argv[] = {"ls", "/proc/self/fd", NULL};
        Result r;

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(pipe(pipefd), 0);
        ck_assert_int_eq(run_argv(argv, &r), 0);
        assert_exited(&r, 0);
        /* 0-2 and the directory ls reads. */
        ck_assert_str_eq(r.out, "0\n1\n2\n3\n");
        result_clear(&r);
        close(fd);
        close(pipefd[0]);
        close(pipefd[1]);
}
END_TEST

START_TEST(test_no_fd_leaks)
{
        char *argv[] = {"true", NULL};
        char *argv_missing[] = {"no-such-command-cluster-ai", NULL};
        ExecSpec s = spec_for(argv);
        unsigned before = count_fds();

        for (int i = 0; i < 200; i++) {
                Result r;
                exec_force_fork_fallback(i % 4 == 3);
                s.want_stdin = i % 2;
                ck_assert_int_eq(run(&s, NULL, &r), 0);
                assert_exited(&r, 0);
                result_clear(&r);
        }
        s.argv = argv_missing;
        for (int i = 0; i < 20; i++) {
                ExecProcess p = EXEC_PROCESS_NULL;
                exec_force_fork_fallback(i % 2);
                ck_assert_int_eq(exec_spawn(&s, &p), -ENOENT);
        }
        ck_assert_uint_eq(count_fds(), before);
        assert_no_children();
}
END_TEST

START_TEST(test_fd_exhaustion)
{
        /* Every fd the spawn needs can be the one that fails (EMFILE): each soft limit
         * from "nothing free" upwards fails at a different step. None may leak an fd or
         * leave a child behind, and with enough room the spawn works. */
        char *argv[] = {"sh", "-c", "echo ok", NULL};
        ExecSpec s = spec_for(argv);
        struct rlimit saved, rl;
        unsigned before = count_fds();
        int successes = 0, failures = 0;

        s.want_stdin = true;
        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
        for (int fallback = 0; fallback < 2; fallback++)
                for (unsigned extra = 0; extra < 14; extra++) {
                        ExecProcess p = EXEC_PROCESS_NULL;
                        int fds_now = (int)count_fds();
                        rl = saved;
                        /* fds are numbered from 0: the limit is one past the highest */
                        rl.rlim_cur = (rlim_t)fds_now + extra;
                        exec_force_fork_fallback(fallback);
                        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
                        int r = exec_spawn(&s, &p);
                        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);
                        if (r < 0) {
                                ck_assert_int_eq(r, -EMFILE);
                                ck_assert_int_eq(p.pid, 0);
                                failures++;
                        } else {
                                Result res;
                                collect(&p, NULL, 4096, &res);
                                exec_process_done(&p);
                                ck_assert_str_eq(res.out, "ok\n");
                                result_clear(&res);
                                successes++;
                        }
                        ck_assert_uint_eq(count_fds(), before);
                        assert_no_children();
                }
        ck_assert_int_gt(failures, 8);
        ck_assert_int_gt(successes, 0);
}
END_TEST

START_TEST(test_change_user_unprivileged)
{
        char *argv[] = {"true", NULL};
        ExecSpec s = spec_for(argv);
        ExecProcess p = EXEC_PROCESS_NULL;

        if (geteuid() == 0)
                return; /* the root suite changes user for real */
        /* Without the privilege setgroups() fails in the child: a hard error, never a
         * task that silently runs as the agent's user. */
        s.change_user = true;
        s.uid = 65534;
        s.gid = 65534;
        ck_assert_int_eq(exec_spawn(&s, &p), -EPERM);
        assert_no_children();
}
END_TEST

START_TEST(test_fork_fallback_basics)
{
        char *argv[] = {"sh", "-c", "echo out; echo err >&2; exit 7", NULL};
        char *argv_missing[] = {"no-such-command-cluster-ai", NULL};
        ExecSpec s = spec_for(argv);
        ExecProcess p = EXEC_PROCESS_NULL;
        Result r;

        exec_force_fork_fallback(true);
        ck_assert_int_eq(run(&s, NULL, &r), 0);
        ck_assert_str_eq(r.out, "out\n");
        ck_assert_str_eq(r.err, "err\n");
        assert_exited(&r, 7);
        result_clear(&r);
        s.argv = argv_missing;
        ck_assert_int_eq(exec_spawn(&s, &p), -ENOENT);
        assert_no_children();
}
END_TEST

START_TEST(test_closed_stdio_in_parent)
{
        /* A daemon started with 0-2 closed: the executor's own pipes then land on 0-2
         * and must still reach the child's 0-2 correctly. */
        char *argv[] = {"sh", "-c", "cat; echo err >&2", NULL};
        ExecSpec s = spec_for(argv);
        int saved[3];
        Result r;

        for (int i = 0; i < 3; i++) {
                saved[i] = fcntl(i, F_DUPFD_CLOEXEC, 10);
                ck_assert_int_ge(saved[i], 0);
        }
        close(0);
        close(1);
        close(2);
        s.want_stdin = true;
        int k = run(&s, "in\n", &r);
        for (int i = 0; i < 3; i++)
                ck_assert_int_eq(dup2(saved[i], i), i);
        ck_assert_int_eq(k, 0);
        ck_assert_str_eq(r.out, "in\n");
        ck_assert_str_eq(r.err, "err\n");
        assert_exited(&r, 0);
        result_clear(&r);
}
END_TEST

START_TEST(test_usage_from_rusage)
{
        char *argv[] = {"sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done", NULL};
        ExecSpec s = spec_for(argv);
        ExecProcess p = EXEC_PROCESS_NULL;
        ExecUsage u;
        Result r;

        ck_assert_int_eq(exec_spawn(&s, &p), 0);
        collect(&p, NULL, 4096, &r);
        ck_assert_int_eq(exec_usage(&p, &r.ru, &u), 0);
        ck_assert_uint_eq(u.user_usec,
                          (uint64_t)r.ru.ru_utime.tv_sec * 1000000 +
                                  (uint64_t)r.ru.ru_utime.tv_usec);
        ck_assert_uint_eq(u.system_usec,
                          (uint64_t)r.ru.ru_stime.tv_sec * 1000000 +
                                  (uint64_t)r.ru.ru_stime.tv_usec);
        ck_assert_uint_gt(r.ru.ru_maxrss, 0);
        ck_assert_uint_eq(u.max_rss_bytes, (uint64_t)r.ru.ru_maxrss * 1024);
        ck_assert_int_eq(exec_usage(&p, NULL, &u), -ENODATA);
        ck_assert_int_eq(exec_usage(&p, &r.ru, NULL), -EINVAL);
        uint64_t n;
        ck_assert_int_eq(exec_oom_kills(&p, &n), -ENODATA);
        exec_process_done(&p);
        result_clear(&r);
}
END_TEST

START_TEST(test_done_safe_and_idempotent)
{
        ExecProcess z;
        char *argv[] = {"sleep", "100", NULL};
        ExecSpec s = spec_for(argv);
        ExecProcess p = EXEC_PROCESS_NULL;
        siginfo_t si;
        struct rusage ru;

        /* A zeroed struct has fds 0: they are not its to close. */
        memset(&z, 0, sizeof(z));
        exec_process_done(&z);
        ck_assert_int_ge(fcntl(0, F_GETFD), 0);
        ck_assert_int_eq(z.pidfd, -EBADF);
        exec_process_done(&z);
        z = EXEC_PROCESS_NULL;
        exec_process_done(&z);
        exec_process_done(NULL);

        /* done on a live task kills it; the pidfd handed away first sees it die. */
        ck_assert_int_eq(exec_spawn(&s, &p), 0);
        ExecProcess q = p;
        q.pidfd = fcntl(p.pidfd, F_DUPFD_CLOEXEC, 3);
        ck_assert_int_ge(q.pidfd, 0);
        exec_process_done(&p);
        ck_assert_int_eq(p.pid, 0);
        ck_assert_int_eq(p.stdout_fd, -EBADF);
        exec_process_done(&p);
        wait_child(&q, &si, &ru);
        ck_assert_int_eq(si.si_code, CLD_KILLED);
        ck_assert_int_eq(si.si_status, SIGKILL);
        safe_close(q.pidfd);
}
END_TEST

START_TEST(test_pdeathsig)
{
        assert_task_dies_with_spawner(spec_for);
}
END_TEST

static Suite *exec_suite(void)
{
        Suite *s = suite_create("agent-exec");
        TCase *tc = tcase_create("exec");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_stdout_stderr_separate);
        tcase_add_test(tc, test_exit_codes);
        tcase_add_test(tc, test_death_by_signal_resets_mask_and_dispositions);
        tcase_add_test(tc, test_sigpipe_default);
        tcase_add_test(tc, test_stdin_forwarding);
        tcase_add_test(tc, test_stdin_dev_null);
        tcase_add_test(tc, test_parent_ends_nonblocking_cloexec);
        tcase_add_test(tc, test_env_minimal);
        tcase_add_test(tc, test_env_invalid);
        tcase_add_test(tc, test_path_lookup_uses_task_path);
        tcase_add_test(tc, test_workdir);
        tcase_add_test(tc, test_spawn_errors);
        tcase_add_test(tc, test_kill_group);
        tcase_add_test(tc, test_kill_group_fork_fallback);
        tcase_add_test(tc, test_kill_sigterm);
        tcase_add_test(tc, test_rlimits);
        tcase_add_test(tc, test_large_output_slow_reader);
        tcase_add_test(tc, test_fds_not_inherited);
        tcase_add_test(tc, test_no_fd_leaks);
        tcase_add_test(tc, test_fd_exhaustion);
        tcase_add_test(tc, test_change_user_unprivileged);
        tcase_add_test(tc, test_fork_fallback_basics);
        tcase_add_test(tc, test_closed_stdio_in_parent);
        tcase_add_test(tc, test_usage_from_rusage);
        tcase_add_test(tc, test_done_safe_and_idempotent);
        tcase_add_test(tc, test_pdeathsig);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(exec_suite());
        int failed;

        srunner_run_all(sr, CK_ENV);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
