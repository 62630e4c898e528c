/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The service manager interface, against a stand-in for the manager's side: our own
 * AF_UNIX datagram NOTIFY_SOCKET (with SO_PASSCRED, as systemd binds it), and fds placed
 * at 3.. with LISTEN_* set, as systemd passes them. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "basic/alloc-util.h"
#include "basic/fd-util.h"
#include "basic/string-util.h"
#include "shared/sd-util.h"

typedef struct Manager {
        char dir[64];
        char path[128];
        int fd;
} Manager;

static void manager_start(Manager *m)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int one = 1;

        strcpy(m->dir, "/tmp/test-sd-util-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(m->dir));
        snprintf(m->path, sizeof m->path, "%s/notify", m->dir);
        m->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(m->fd, 0);
        ck_assert_int_eq(setsockopt(m->fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one), 0);
        strcpy(sa.sun_path, m->path);
        ck_assert_int_eq(bind(m->fd, (struct sockaddr *)&sa, sizeof sa), 0);
        ck_assert_int_eq(setenv("NOTIFY_SOCKET", m->path, 1), 0);
}

static void manager_stop(Manager *m)
{
        unsetenv("NOTIFY_SOCKET");
        safe_close(m->fd);
        unlink(m->path);
        rmdir(m->dir);
}

/* Receives one datagram and checks its text and that the kernel says it came from us. */
_unused_ static void manager_expect(Manager *m, const char *text)
{
        char buf[512];
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(struct ucred))];
        } control;
        struct iovec iov = {buf, sizeof buf - 1};
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = sizeof control,
        };
        ssize_t n;
        bool got_creds = false;

        n = recvmsg(m->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        ck_assert_int_gt(n, 0);
        buf[n] = 0;
        ck_assert_str_eq(buf, text);
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
                        struct ucred uc;
                        memcpy(&uc, CMSG_DATA(c), sizeof uc);
                        ck_assert_int_eq(uc.pid, getpid());
                        got_creds = true;
                }
        ck_assert(got_creds);
}

static void manager_expect_nothing(Manager *m)
{
        char buf[64];
        ck_assert_int_lt(recv(m->fd, buf, sizeof buf, MSG_DONTWAIT), 0);
        ck_assert_int_eq(errno, EAGAIN);
}

#if HAVE_SYSTEMD

START_TEST(test_notify)
{
        Manager m;

        manager_start(&m);
        ck_assert_int_gt(notify("READY=1"), 0);
        manager_expect(&m, "READY=1");
        ck_assert_int_gt(notifyf("STATUS=%u agents, %u tasks queued", 3U, 12U), 0);
        manager_expect(&m, "STATUS=3 agents, 12 tasks queued");
        ck_assert_int_gt(notify("WATCHDOG=1"), 0);
        manager_expect(&m, "WATCHDOG=1");
        ck_assert_int_gt(notify("STOPPING=1"), 0);
        manager_expect(&m, "STOPPING=1");
        manager_expect_nothing(&m);
        manager_stop(&m);

        /* Not started by a service manager: nothing to send, no error. */
        ck_assert_int_eq(notify("READY=1"), 0);
        ck_assert_int_eq(notifyf("STATUS=%s", "x"), 0);

        /* A manager that went away is an error the caller may log. */
        ck_assert_int_eq(setenv("NOTIFY_SOCKET", "/nonexistent/notify", 1), 0);
        ck_assert_int_lt(notify("READY=1"), 0);
        unsetenv("NOTIFY_SOCKET");
}
END_TEST

START_TEST(test_watchdog)
{
        char pid[32];

        unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");
        ck_assert_uint_eq(watchdog_interval(), 0);

        snprintf(pid, sizeof pid, "%d", (int)getpid());
        ck_assert_int_eq(setenv("WATCHDOG_USEC", "30000000", 1), 0);
        ck_assert_int_eq(setenv("WATCHDOG_PID", pid, 1), 0);
        ck_assert_uint_eq(watchdog_interval(), 30 * USEC_PER_SEC);
        /* Asking again gives the same answer: the environment is left alone. */
        ck_assert_uint_eq(watchdog_interval(), 30 * USEC_PER_SEC);

        /* Without WATCHDOG_PID the interval is for whoever reads it. */
        unsetenv("WATCHDOG_PID");
        ck_assert_uint_eq(watchdog_interval(), 30 * USEC_PER_SEC);

        /* Meant for another process (our parent): not ours. */
        snprintf(pid, sizeof pid, "%d", (int)getppid());
        ck_assert_int_eq(setenv("WATCHDOG_PID", pid, 1), 0);
        ck_assert_uint_eq(watchdog_interval(), 0);

        ck_assert_int_eq(setenv("WATCHDOG_USEC", "soon", 1), 0);
        unsetenv("WATCHDOG_PID");
        ck_assert_uint_eq(watchdog_interval(), 0);
        unsetenv("WATCHDOG_USEC");
}
END_TEST

#else

START_TEST(test_notify_noop)
{
        Manager m;

        /* Built without libsystemd: even with a manager listening nothing is sent. */
        manager_start(&m);
        ck_assert_int_eq(notify("READY=1"), 0);
        ck_assert_int_eq(notifyf("STATUS=%d", 1), 0);
        manager_expect_nothing(&m);
        manager_stop(&m);

        ck_assert_int_eq(setenv("WATCHDOG_USEC", "30000000", 1), 0);
        ck_assert_uint_eq(watchdog_interval(), 0);
        unsetenv("WATCHDOG_USEC");
}
END_TEST

#endif

/* The listen-fd scenarios need fds 3.. to themselves, which Check's own fds may occupy:
 * each runs in a child of its own that reports the first failed step as its exit code. */
#define STEP(n, cond)                                                                              \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "step %d failed: %s\n", n, #cond);                         \
                        _exit(n);                                                                  \
                }                                                                                  \
        } while (0)

static bool fd_is_open(int fd)
{
        return fcntl(fd, F_GETFD) >= 0;
}

_unused_ static bool fd_has_cloexec(int fd)
{
        int f = fcntl(fd, F_GETFD);
        return f >= 0 && (f & FD_CLOEXEC);
}

/* Places n fresh sockets at 3..3+n-1 without FD_CLOEXEC, as a service manager passes
 * them. Returns their inode numbers in ino[] to recognize them later. */
static void place_fds(unsigned n, ino_t *ino)
{
        int tmp[8];

        for (unsigned i = 0; i < n; i++) {
                int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                STEP(100, s >= 0);
                tmp[i] = fcntl(s, F_DUPFD_CLOEXEC, 100);
                STEP(101, tmp[i] >= 0);
                close(s);
        }
        for (unsigned i = 0; i < n; i++) {
                struct stat st;
                STEP(102, dup2(tmp[i], 3 + (int)i) == 3 + (int)i);
                close(tmp[i]);
                STEP(103, fstat(3 + (int)i, &st) == 0);
                ino[i] = st.st_ino;
        }
}

static void set_listen_env(pid_t pid, unsigned n, const char *names)
{
        char buf[32];

        snprintf(buf, sizeof buf, "%d", (int)pid);
        STEP(110, setenv("LISTEN_PID", buf, 1) == 0);
        snprintf(buf, sizeof buf, "%u", n);
        STEP(111, setenv("LISTEN_FDS", buf, 1) == 0);
        if (names)
                STEP(112, setenv("LISTEN_FDNAMES", names, 1) == 0);
        else
                unsetenv("LISTEN_FDNAMES");
}

_unused_ static bool fd_is(int fd, ino_t ino)
{
        struct stat st;
        return fd >= 0 && fstat(fd, &st) == 0 && st.st_ino == ino;
}

static void run_in_child(void (*f)(void))
{
        pid_t pid = fork();
        int status;

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                f();
                _exit(0);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status), "child died by a signal");
        ck_assert_msg(WEXITSTATUS(status) == 0, "child failed at step %d", WEXITSTATUS(status));
}

#if HAVE_SYSTEMD

static void scenario_named(void)
{
        ino_t ino[5];
        int fd;

        place_fds(5, ino);
        set_listen_env(getpid(), 5, "cluster:control:http:ollama:chat");

        STEP(1, listen_fds_collect() == 5);
        /* Taken: children must not see LISTEN_* meant for us, nor inherit the fds. */
        STEP(2, !getenv("LISTEN_FDS") && !getenv("LISTEN_PID") && !getenv("LISTEN_FDNAMES"));
        for (int i = 3; i < 8; i++)
                STEP(3, fd_has_cloexec(i));
        /* Collecting again changes nothing and says how many are left. */
        STEP(4, listen_fds_collect() == 5);

        fd = listen_fds_take("control");
        STEP(5, fd == 4 && fd_is(fd, ino[1]));
        STEP(6, listen_fds_take("control") == -ENOENT); /* taken once only */
        STEP(7, listen_fds_take("nope") == -ENOENT);
        STEP(8, listen_fds_take("") == -ENOENT);
        STEP(9, listen_fds_collect() == 4);
        fd = listen_fds_take("chat");
        STEP(10, fd == 7 && fd_is(fd, ino[4]));
        fd = listen_fds_take("cluster");
        STEP(11, fd == 3 && fd_is(fd, ino[0]));

        /* Unused ones (http, ollama) are closed; taken ones are the caller's. */
        listen_fds_close_unused();
        STEP(12, !fd_is_open(5) && !fd_is_open(6));
        STEP(13, fd_is_open(3) && fd_is_open(4) && fd_is_open(7));
        STEP(14, listen_fds_take("http") == -ENOENT);
}

static void scenario_unnamed(void)
{
        ino_t ino[2];

        place_fds(2, ino);
        set_listen_env(getpid(), 2, NULL);
        STEP(20, listen_fds_collect() == 2);
        /* Without LISTEN_FDNAMES every fd is called "unknown", in order. */
        STEP(21, fd_is(listen_fds_take("unknown"), ino[0]));
        STEP(22, fd_is(listen_fds_take("unknown"), ino[1]));
        STEP(23, listen_fds_take("unknown") == -ENOENT);
}

static void scenario_other_pid(void)
{
        ino_t ino[2];

        place_fds(2, ino);
        /* Meant for our parent: not ours, and not touched. */
        set_listen_env(getppid(), 2, "cluster:control");
        STEP(30, listen_fds_collect() == 0);
        STEP(31, listen_fds_take("cluster") == -ENOENT);
        STEP(32, fd_is_open(3) && fd_is_open(4) && !fd_has_cloexec(3));
        listen_fds_close_unused();
        STEP(33, fd_is_open(3) && fd_is_open(4));
}

static void scenario_nothing(void)
{
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
        STEP(40, listen_fds_collect() == 0);
        STEP(41, listen_fds_take("cluster") == -ENOENT);
        listen_fds_close_unused();
}

START_TEST(test_listen_fds_named)
{
        run_in_child(scenario_named);
}
END_TEST

START_TEST(test_listen_fds_unnamed)
{
        run_in_child(scenario_unnamed);
}
END_TEST

START_TEST(test_listen_fds_other_pid)
{
        run_in_child(scenario_other_pid);
}
END_TEST

START_TEST(test_listen_fds_none)
{
        run_in_child(scenario_nothing);
}
END_TEST

#else

static void scenario_noop(void)
{
        ino_t ino[2];

        /* Built without libsystemd: passed fds are not looked at; the daemon binds its own. */
        place_fds(2, ino);
        set_listen_env(getpid(), 2, "cluster:control");
        STEP(50, listen_fds_collect() == 0);
        STEP(51, listen_fds_take("cluster") == -ENOENT);
        listen_fds_close_unused();
        STEP(52, fd_is_open(3) && fd_is_open(4));
}

START_TEST(test_listen_fds_noop)
{
        run_in_child(scenario_noop);
}
END_TEST

#endif

static Suite *sd_util_suite(void)
{
        Suite *s = suite_create("sd-util");
        TCase *tc = tcase_create("core");

#if HAVE_SYSTEMD
        tcase_add_test(tc, test_notify);
        tcase_add_test(tc, test_watchdog);
        tcase_add_test(tc, test_listen_fds_named);
        tcase_add_test(tc, test_listen_fds_unnamed);
        tcase_add_test(tc, test_listen_fds_other_pid);
        tcase_add_test(tc, test_listen_fds_none);
#else
        tcase_add_test(tc, test_notify_noop);
        tcase_add_test(tc, test_listen_fds_noop);
#endif
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(sd_util_suite());
        int failed;

        srunner_run_all(sr, CK_ENV);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
