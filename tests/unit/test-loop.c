/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <check.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "basic/alloc-util.h"
#include "basic/fd-util.h"
#include "shared/loop.h"
#include "shared/socket-util.h"

static Loop *new_loop(void)
{
        Loop *l = NULL;
        ck_assert_int_eq(loop_new(&l), 0);
        return l;
}

/* Runs iterations until *flag or a (generous) number of iterations passed. */
static void run_until(Loop *l, const bool *flag)
{
        for (unsigned i = 0; i < 100000 && !*flag; i++)
                ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);
        ck_assert(*flag);
}

/* ---- timers ---- */

typedef struct TimerLog {
        int order[64];
        unsigned n;
        bool done;
} TimerLog;

static TimerLog tlog;

static void log_timer_cb(LoopSource *s, void *userdata)
{
        tlog.order[tlog.n++] = (int)(intptr_t)userdata;
}

static void exit_timer_cb(LoopSource *s, void *userdata)
{
        loop_exit(loop_source_loop(s), (int)(intptr_t)userdata);
}

START_TEST(test_timer_order)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        LoopSource *t[5], *e;
        usec_t n = now(CLOCK_MONOTONIC);
        static const int ms[5] = {4, 1, 3, 0, 2};

        memset(&tlog, 0, sizeof(tlog));
        for (int i = 0; i < 5; i++)
                ck_assert_int_eq(loop_add_timer(l, n + (usec_t)ms[i] * USEC_PER_MSEC, log_timer_cb,
                                                (void *)(intptr_t)ms[i], &t[i]),
                                 0);
        ck_assert_int_eq(
                loop_add_timer(l, n + 6 * USEC_PER_MSEC, exit_timer_cb, (void *)(intptr_t)7, &e),
                0);
        ck_assert_int_eq(loop_run(l), 7);
        ck_assert_uint_eq(tlog.n, 5);
        for (int i = 0; i < 5; i++)
                ck_assert_int_eq(tlog.order[i], i);
        for (int i = 0; i < 5; i++)
                loop_source_free(t[i]);
        loop_source_free(e);
}
END_TEST

static unsigned rearm_count;

static void rearm_cb(LoopSource *s, void *userdata)
{
        Loop *l = loop_source_loop(s);

        if (++rearm_count < 5)
                ck_assert_int_eq(loop_timer_set(s, loop_now(l) + 100), 0);
        else
                loop_exit(l, 0);
}

START_TEST(test_timer_rearm)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        _cleanup_(loop_source_freep) LoopSource *t = NULL;

        rearm_count = 0;
        ck_assert_int_eq(loop_add_timer(l, 0, rearm_cb, NULL, &t), 0);
        ck_assert_int_eq(loop_run(l), 0);
        ck_assert_uint_eq(rearm_count, 5);

        /* Re-arming into the past from its own callback does not spin within one
         * iteration, but does run again. */
        rearm_count = 0;
        ck_assert_int_eq(loop_timer_set(t, 0), 0);
        ck_assert_int_eq(loop_run_once(l, 0), 0);
        ck_assert_uint_eq(rearm_count, 1);
}
END_TEST

START_TEST(test_timer_earlier)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        _cleanup_(loop_source_freep) LoopSource *late = NULL, *early = NULL, *moved = NULL;
        usec_t n = now(CLOCK_MONOTONIC);

        memset(&tlog, 0, sizeof(tlog));
        /* The ring timeout is armed for an hour from now... */
        ck_assert_int_eq(loop_add_timer(l, n + 3600 * USEC_PER_SEC, log_timer_cb, (void *)1, &late),
                         0);
        ck_assert_int_eq(loop_run_once(l, 0), 0);
        /* ...then a new head must move it earlier, or this would sleep for an hour. */
        ck_assert_int_eq(loop_add_timer(l, n + USEC_PER_MSEC, log_timer_cb, (void *)2, &early), 0);
        while (tlog.n < 1)
                ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);
        ck_assert_int_eq(tlog.order[0], 2);

        /* The same for an armed timer moved earlier. */
        ck_assert_int_eq(
                loop_add_timer(l, n + 7200 * USEC_PER_SEC, log_timer_cb, (void *)3, &moved), 0);
        ck_assert_int_eq(loop_run_once(l, 0), 0);
        ck_assert_int_eq(loop_timer_set(moved, now(CLOCK_MONOTONIC)), 0);
        while (tlog.n < 2)
                ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);
        ck_assert_int_eq(tlog.order[1], 3);
        ck_assert_uint_eq(tlog.n, 2);
}
END_TEST

static LoopSource *victim;
static bool victim_fired;

static void victim_cb(LoopSource *s, void *userdata)
{
        victim_fired = true;
}

static void disarmer_cb(LoopSource *s, void *userdata)
{
        loop_timer_disarm(victim);
}

START_TEST(test_timer_disarm)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        _cleanup_(loop_source_freep) LoopSource *d = NULL, *e = NULL, *v = NULL;
        usec_t n = now(CLOCK_MONOTONIC);

        victim_fired = false;
        ck_assert_int_eq(loop_add_timer(l, n + 2 * USEC_PER_MSEC, victim_cb, NULL, &v), 0);
        victim = v;
        ck_assert_int_eq(loop_add_timer(l, n, disarmer_cb, NULL, &d), 0);
        ck_assert_int_eq(loop_add_timer(l, n + 10 * USEC_PER_MSEC, exit_timer_cb, NULL, &e), 0);
        ck_assert_int_eq(loop_run(l), 0);
        ck_assert(!victim_fired);

        /* A disarmed timer can be set again. */
        ck_assert_int_eq(loop_timer_set(v, 0), 0);
        run_until(l, &victim_fired);

        /* Disarm twice is harmless. */
        loop_timer_disarm(v);
        loop_timer_disarm(v);
}
END_TEST

static unsigned self_free_count;

static void self_free_cb(LoopSource *s, void *userdata)
{
        self_free_count++;
        ck_assert_ptr_eq(loop_source_free(s), NULL);
}

START_TEST(test_timer_free_in_callback)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        LoopSource *a, *b;

        self_free_count = 0;
        ck_assert_int_eq(loop_add_timer(l, 0, self_free_cb, NULL, &a), 0);
        ck_assert_int_eq(loop_add_timer(l, 0, self_free_cb, NULL, &b), 0);
        for (int i = 0; i < 10 && self_free_count < 2; i++)
                ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);
        ck_assert_uint_eq(self_free_count, 2);
}
END_TEST

#define N_MANY 20000
static usec_t many_last;
static unsigned many_fired;
static LoopSource *many[N_MANY];

static void many_cb(LoopSource *s, void *userdata)
{
        usec_t when = (usec_t)(uintptr_t)userdata;

        ck_assert(when >= many_last);
        many_last = when;
        many_fired++;
}

START_TEST(test_timer_many)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        usec_t n = now(CLOCK_MONOTONIC);
        unsigned seed = 1;
        bool done = false;

        many_last = 0;
        many_fired = 0;
        for (unsigned i = 0; i < N_MANY; i++) {
                seed = seed * 1103515245 + 12345;
                usec_t when = n + (seed >> 8) % (20 * USEC_PER_MSEC);
                ck_assert_int_eq(
                        loop_add_timer(l, when, many_cb, (void *)(uintptr_t)when, &many[i]), 0);
        }
        /* Remove every third before it fires. */
        for (unsigned i = 0; i < N_MANY; i += 3)
                many[i] = loop_source_free(many[i]);
        while (!done) {
                ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);
                done = many_fired == N_MANY - (N_MANY + 2) / 3;
        }
        for (unsigned i = 0; i < N_MANY; i++)
                loop_source_free(many[i]);
}
END_TEST

#define N_TCHURN 200
static LoopSource *tchurn[N_TCHURN];
static unsigned tchurn_seed = 7, tchurn_calls;

static unsigned tchurn_rand(void)
{
        tchurn_seed = tchurn_seed * 1103515245 + 12345;
        return tchurn_seed >> 16;
}

static void tchurn_cb(LoopSource *s, void *userdata)
{
        unsigned i = (unsigned)(uintptr_t)userdata, j = tchurn_rand() % N_TCHURN;
        Loop *l = loop_source_loop(s);

        ck_assert_ptr_eq(tchurn[i], s); /* never called after its free */
        tchurn_calls++;
        switch (tchurn_rand() % 5) {
        case 0:
                tchurn[i] = loop_source_free(s);
                break;
        case 1:
                tchurn[j] = loop_source_free(tchurn[j]);
                break;
        case 2:
                if (tchurn[j])
                        loop_timer_disarm(tchurn[j]);
                break;
        case 3:
                if (!tchurn[j])
                        ck_assert_int_eq(loop_add_timer(l, loop_now(l) + tchurn_rand() % 500,
                                                        tchurn_cb, (void *)(uintptr_t)j,
                                                        &tchurn[j]),
                                         0);
                break;
        }
        if (tchurn[i] && tchurn_rand() % 3)
                ck_assert_int_eq(loop_timer_set(s, loop_now(l) + tchurn_rand() % 1000), 0);
        if (tchurn[j] && tchurn_rand() % 4 == 0)
                ck_assert_int_eq(loop_timer_set(tchurn[j], loop_now(l) + tchurn_rand() % 300), 0);
}

START_TEST(test_timer_churn)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        usec_t n = now(CLOCK_MONOTONIC);

        tchurn_calls = 0;
        for (unsigned i = 0; i < N_TCHURN; i++)
                ck_assert_int_eq(loop_add_timer(l, n + tchurn_rand() % 1000, tchurn_cb,
                                                (void *)(uintptr_t)i, &tchurn[i]),
                                 0);
        while (tchurn_calls < 5000) {
                /* Keep the population up: empty slots refill, disarmed ones re-arm. */
                unsigned j = tchurn_rand() % N_TCHURN;
                if (!tchurn[j])
                        ck_assert_int_eq(loop_add_timer(l, loop_now(l) + tchurn_rand() % 1000,
                                                        tchurn_cb, (void *)(uintptr_t)j,
                                                        &tchurn[j]),
                                         0);
                else if (tchurn_rand() % 8 == 0)
                        ck_assert_int_eq(loop_timer_set(tchurn[j], loop_now(l)), 0);
                ck_assert_int_eq(loop_run_once(l, 2000), 0);
        }
        for (unsigned i = 0; i < N_TCHURN; i++)
                tchurn[i] = loop_source_free(tchurn[i]);
}
END_TEST

/* ---- io watches ---- */

static unsigned io_calls;
static bool io_consume;

static void eventfd_cb(LoopSource *s, int fd, uint32_t revents, void *userdata)
{
        uint64_t v;

        ck_assert(revents & POLLIN);
        io_calls++;
        if (io_consume)
                ck_assert_int_eq(read(fd, &v, sizeof(v)), (int)sizeof(v));
}

START_TEST(test_io_eventfd)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        _cleanup_(loop_source_freep) LoopSource *s = NULL;
        _cleanup_close_ int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        uint64_t one = 1;

        ck_assert_int_ge(efd, 0);
        io_calls = 0;
        io_consume = true;
        ck_assert_int_eq(loop_add_io(l, efd, POLLIN, eventfd_cb, NULL, &s), 0);
        ck_assert_int_eq(loop_run_once(l, 0), 0);
        ck_assert_uint_eq(io_calls, 0);

        ck_assert_int_eq(write(efd, &one, sizeof(one)), (int)sizeof(one));
        ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);
        ck_assert_uint_eq(io_calls, 1);

        /* Level-triggered: left unread, it is reported again. */
        io_consume = false;
        ck_assert_int_eq(write(efd, &one, sizeof(one)), (int)sizeof(one));
        ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);
        ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);
        ck_assert_uint_eq(io_calls, 3);

        /* events 0: kept, not polled. */
        ck_assert_int_eq(loop_io_set_events(s, 0), 0);
        for (int i = 0; i < 5; i++)
                ck_assert_int_eq(loop_run_once(l, 1000), 0);
        ck_assert_uint_eq(io_calls, 3);

        io_consume = true;
        ck_assert_int_eq(loop_io_set_events(s, POLLIN), 0);
        ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);
        ck_assert_int_eq(loop_run_once(l, 0), 0);
        ck_assert_uint_eq(io_calls, 4);
}
END_TEST

static uint32_t pipe_revents;

static void pipe_cb(LoopSource *s, int fd, uint32_t revents, void *userdata)
{
        pipe_revents |= revents;
        ck_assert_int_eq(loop_io_set_events(s, 0), 0);
}

START_TEST(test_io_pipe)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        _cleanup_(loop_source_freep) LoopSource *r = NULL, *w = NULL;
        int p[2];

        ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
        pipe_revents = 0;
        ck_assert_int_eq(loop_add_io(l, p[1], POLLOUT, pipe_cb, NULL, &w), 0);
        ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);
        ck_assert(pipe_revents & POLLOUT);

        /* Closing the write end: the read end sees POLLHUP. */
        pipe_revents = 0;
        ck_assert_int_eq(loop_add_io(l, p[0], POLLIN, pipe_cb, NULL, &r), 0);
        w = loop_source_free(w);
        safe_close(p[1]);
        ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);
        ck_assert(pipe_revents & POLLHUP);

        /* An fd closed under its watch: POLLNVAL once, then quiet until new events. */
        safe_close(p[0]);
        pipe_revents = 0;
        ck_assert_int_eq(loop_io_set_events(r, POLLIN), 0);
        ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);
        ck_assert(pipe_revents & POLLNVAL);
        r = loop_source_free(r);
}
END_TEST

/* ---- signals ---- */

static unsigned sig_seen[3];

static void signal_cb(LoopSource *s, const struct signalfd_siginfo *si, void *userdata)
{
        if (si->ssi_signo == SIGUSR1)
                sig_seen[0]++;
        else if (si->ssi_signo == SIGUSR2)
                sig_seen[1]++;
        else
                sig_seen[2]++;
}

START_TEST(test_signal)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        _cleanup_(loop_source_freep) LoopSource *a = NULL, *b = NULL;
        LoopSource *dup = NULL;

        memset(sig_seen, 0, sizeof(sig_seen));
        ck_assert_int_eq(loop_add_signal(l, SIGUSR1, signal_cb, NULL, &a), 0);
        ck_assert_int_eq(loop_add_signal(l, SIGUSR2, signal_cb, NULL, &b), 0);
        ck_assert_int_eq(loop_add_signal(l, SIGUSR1, signal_cb, NULL, &dup), -EBUSY);
        ck_assert_int_eq(loop_add_signal(l, 0, signal_cb, NULL, &dup), -EINVAL);

        ck_assert_int_eq(raise(SIGUSR1), 0);
        ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);
        ck_assert_uint_eq(sig_seen[0], 1);

        ck_assert_int_eq(raise(SIGUSR2), 0);
        ck_assert_int_eq(raise(SIGUSR1), 0);
        while (sig_seen[0] + sig_seen[1] < 3)
                ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);
        ck_assert_uint_eq(sig_seen[0], 2);
        ck_assert_uint_eq(sig_seen[1], 1);
        ck_assert_uint_eq(sig_seen[2], 0);

        /* Freed: the signal is no longer ours, and can be added again. */
        a = loop_source_free(a);
        ck_assert_int_eq(loop_add_signal(l, SIGUSR1, signal_cb, NULL, &a), 0);
}
END_TEST

/* ---- children ---- */

static siginfo_t child_si;
static struct rusage child_ru;
static bool child_done;

static void child_cb(LoopSource *s, const siginfo_t *si, const struct rusage *ru, void *userdata)
{
        child_si = *si;
        child_ru = *ru;
        child_done = true;
}

static int spawn(bool wait_forever, int *ret_pidfd)
{
        pid_t pid = fork();

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                if (wait_forever)
                        for (;;)
                                pause();
                /* Touch some memory so the rusage has something in it. */
                char *m = malloc(1 << 20);
                if (m)
                        memset(m, 1, 1 << 20);
                _exit(7);
        }
        *ret_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        ck_assert_int_ge(*ret_pidfd, 0);
        return pid;
}

START_TEST(test_child)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        _cleanup_(loop_source_freep) LoopSource *s = NULL, *k = NULL;
        int pidfd;
        pid_t pid;

        child_done = false;
        pid = spawn(false, &pidfd);
        ck_assert_int_eq(loop_add_child(l, pidfd, child_cb, NULL, &s), 0);
        run_until(l, &child_done);
        ck_assert_int_eq(child_si.si_pid, pid);
        ck_assert_int_eq(child_si.si_code, CLD_EXITED);
        ck_assert_int_eq(child_si.si_status, 7);
        ck_assert_int_gt(child_ru.ru_maxrss, 0);
        /* Reaped: */
        ck_assert_int_eq(waitpid(pid, NULL, WNOHANG), -1);
        ck_assert_int_eq(errno, ECHILD);

        child_done = false;
        pid = spawn(true, &pidfd);
        ck_assert_int_eq(loop_add_child(l, pidfd, child_cb, NULL, &k), 0);
        ck_assert_int_eq(loop_run_once(l, 0), 0);
        ck_assert(!child_done);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        run_until(l, &child_done);
        ck_assert_int_eq(child_si.si_pid, pid);
        ck_assert_int_eq(child_si.si_code, CLD_KILLED);
        ck_assert_int_eq(child_si.si_status, SIGKILL);
}
END_TEST

/* ---- accept ---- */

#define N_CLIENTS 8
static int accepted[N_CLIENTS];
static unsigned n_accepted;

static void accept_cb(LoopSource *s, int fd, int error, void *userdata)
{
        ck_assert_int_eq(error, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_uint_lt(n_accepted, N_CLIENTS);
        accepted[n_accepted++] = fd;
}

static int listen_loopback(uint16_t *ret_port)
{
        struct sockaddr_in sin;
        socklen_t len = sizeof(sin);
        int fd;

        ck_assert_int_eq(socket_listen("127.0.0.1:0", 16, 0, &fd), 0);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
        *ret_port = ntohs(sin.sin_port);
        return fd;
}

START_TEST(test_accept)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        _cleanup_(loop_source_freep) LoopSource *s = NULL;
        _cleanup_close_ int lfd = -EBADF;
        int clients[N_CLIENTS];
        char addr[64];
        uint16_t port;

        lfd = listen_loopback(&port);
        snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
        n_accepted = 0;
        ck_assert_int_eq(loop_add_accept(l, lfd, accept_cb, NULL, &s), 0);

        for (int i = 0; i < N_CLIENTS; i++) {
                ck_assert_int_ge(socket_connect_start(addr, &clients[i]), 0);
                if (i == N_CLIENTS / 2)
                        ck_assert_int_eq(loop_run_once(l, 0), 0);
        }
        while (n_accepted < N_CLIENTS)
                ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);

        for (int i = 0; i < N_CLIENTS; i++) {
                int fl = fcntl(accepted[i], F_GETFL), fdfl = fcntl(accepted[i], F_GETFD);
                ck_assert(fl & O_NONBLOCK);
                ck_assert(fdfl & FD_CLOEXEC);
                safe_close(accepted[i]);
                safe_close(clients[i]);
        }
}
END_TEST

static unsigned emfile_reports, emfile_accepted;
static struct rlimit emfile_saved;

static void emfile_accept_cb(LoopSource *s, int fd, int error, void *userdata)
{
        if (error < 0) {
                ck_assert_int_eq(error, -EMFILE);
                ck_assert_int_lt(fd, 0);
                /* Room again: the loop retries after its back-off. */
                if (emfile_reports++ == 0)
                        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &emfile_saved), 0);
                return;
        }
        emfile_accepted++;
        safe_close(fd);
}

START_TEST(test_accept_emfile)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        _cleanup_(loop_source_freep) LoopSource *s = NULL;
        _cleanup_close_ int lfd = -EBADF;
        struct rlimit rl;
        int clients[3], lowest;
        char addr[64];
        uint16_t port;

        lfd = listen_loopback(&port);
        snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
        for (int i = 0; i < 3; i++)
                ck_assert_int_ge(socket_connect_start(addr, &clients[i]), 0);

        /* No fd left: the lowest free one is the limit. */
        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &emfile_saved), 0);
        lowest = dup(0);
        ck_assert_int_ge(lowest, 0);
        safe_close(lowest);
        rl = emfile_saved;
        rl.rlim_cur = (rlim_t)lowest;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);

        emfile_reports = emfile_accepted = 0;
        ck_assert_int_eq(loop_add_accept(l, lfd, emfile_accept_cb, NULL, &s), 0);
        while (emfile_accepted < 3)
                ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);
        ck_assert_uint_ge(emfile_reports, 1);
        for (int i = 0; i < 3; i++)
                safe_close(clients[i]);
}
END_TEST

static int accept_error;

static void accept_error_cb(LoopSource *s, int fd, int error, void *userdata)
{
        ck_assert_int_lt(fd, 0);
        ck_assert_int_eq(accept_error, 0);
        accept_error = error;
}

START_TEST(test_accept_not_listening)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        _cleanup_(loop_source_freep) LoopSource *s = NULL;
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        /* Reported once, then the source stays quiet (the test would see a second). */
        accept_error = 0;
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(loop_add_accept(l, fd, accept_error_cb, NULL, &s), 0);
        while (accept_error == 0)
                ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);
        ck_assert_int_eq(accept_error, -EINVAL);
        for (int i = 0; i < 3; i++)
                ck_assert_int_eq(loop_run_once(l, 1000), 0);
}
END_TEST

/* ---- freeing with SQEs in flight ---- */

static void never_io_cb(LoopSource *s, int fd, uint32_t revents, void *userdata)
{
        ck_abort_msg("io callback of a freed source");
}
static void never_child_cb(LoopSource *s, const siginfo_t *si, const struct rusage *ru,
                           void *userdata)
{
        ck_abort_msg("child callback of a freed source");
}
static void never_accept_cb(LoopSource *s, int fd, int error, void *userdata)
{
        ck_abort_msg("accept callback of a freed source");
}

static LoopSource *pair[2];
static unsigned pair_calls;

/* Both watches are ready in the same batch; whichever runs first frees the other. */
static void pair_cb(LoopSource *s, int fd, uint32_t revents, void *userdata)
{
        int other = (int)(intptr_t)userdata ^ 1;

        pair_calls++;
        pair[other] = loop_source_free(pair[other]);
        pair[other ^ 1] = loop_source_free(s);
}

START_TEST(test_free_inflight)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        LoopSource *io, *child, *acc;
        _cleanup_close_ int lfd = -EBADF, efd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
        int p[2], pidfd;
        uint16_t port;
        pid_t pid;

        ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
        lfd = listen_loopback(&port);
        pid = spawn(true, &pidfd);

        ck_assert_int_eq(loop_add_io(l, p[0], POLLIN, never_io_cb, NULL, &io), 0);
        ck_assert_int_eq(loop_add_child(l, pidfd, never_child_cb, NULL, &child), 0);
        ck_assert_int_eq(loop_add_accept(l, lfd, never_accept_cb, NULL, &acc), 0);
        ck_assert_int_eq(loop_run_once(l, 0), 0); /* submitted, nothing ready */

        loop_source_free(io);
        loop_source_free(child);
        loop_source_free(acc);
        /* Make them all ready: the cancelled ops must not call back. */
        ck_assert_int_eq(write(p[1], "x", 1), 1);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
        for (int i = 0; i < 5; i++)
                ck_assert_int_eq(loop_run_once(l, 1000), 0);

        /* Two ready watches freeing each other from their callbacks. */
        pair_calls = 0;
        ck_assert_int_eq(loop_add_io(l, efd, POLLIN, pair_cb, (void *)0, &pair[0]), 0);
        ck_assert_int_eq(loop_add_io(l, efd, POLLIN, pair_cb, (void *)1, &pair[1]), 0);
        for (int i = 0; i < 5; i++)
                ck_assert_int_eq(loop_run_once(l, 1000), 0);
        ck_assert_uint_eq(pair_calls, 1);
        ck_assert_ptr_null(pair[0]);
        ck_assert_ptr_null(pair[1]);

        safe_close(p[0]);
        safe_close(p[1]);
}
END_TEST

START_TEST(test_loop_free_with_live_sources)
{
        Loop *l = new_loop();
        LoopSource *io, *t, *acc, *sig;
        _cleanup_close_ int lfd = -EBADF;
        int p[2];
        uint16_t port;

        ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
        lfd = listen_loopback(&port);
        ck_assert_int_eq(loop_add_io(l, p[0], POLLIN, never_io_cb, NULL, &io), 0);
        ck_assert_int_eq(loop_add_timer(l, USEC_INFINITY - 1, log_timer_cb, NULL, &t), 0);
        ck_assert_int_eq(loop_add_accept(l, lfd, never_accept_cb, NULL, &acc), 0);
        ck_assert_int_eq(loop_add_signal(l, SIGUSR1, signal_cb, NULL, &sig), 0);
        /* Floating: owned by the loop, freed with it (the leak checker watches). */
        ck_assert_int_eq(loop_add_timer(l, USEC_INFINITY - 1, log_timer_cb, NULL, NULL), 0);
        ck_assert_int_eq(loop_add_io(l, p[0], POLLIN, never_io_cb, NULL, NULL), 0);
        ck_assert_int_eq(loop_add_accept(l, lfd, never_accept_cb, NULL, NULL), 0);
        ck_assert_int_eq(loop_run_once(l, 0), 0);

        /* The loop goes first: it cancels and drains, the sources forget it. */
        ck_assert_ptr_null(loop_free(l));
        ck_assert_ptr_null(loop_source_loop(io));
        ck_assert_int_eq(loop_timer_set(t, 0), -ESTALE);
        loop_source_free(io);
        loop_source_free(t);
        loop_source_free(acc);
        loop_source_free(sig);
        safe_close(p[0]);
        safe_close(p[1]);
}
END_TEST

/* In a child, make io_uring_setup fail with `error` the way seccomp or
 * kernel.io_uring_disabled do, and return what loop_new() says (as exit status). */
static int loop_new_with_io_uring_failing(int error)
{
        struct sock_filter filter[] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (uint32_t)error),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {.len = ELEMENTSOF(filter), .filter = filter};
        int status;
        pid_t pid;

        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                Loop *l = NULL;
                int r;

                if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
                    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
                        _exit(255);
                r = loop_new(&l);
                _exit(r < 0 && !l ? -r : 254);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        return WEXITSTATUS(status);
}

START_TEST(test_io_uring_unavailable)
{
        /* The architecture check of a real filter is left out: the filter lives only
         * in this test's child. */
        ck_assert_int_eq(loop_new_with_io_uring_failing(EPERM), EPERM);
        ck_assert_int_eq(loop_new_with_io_uring_failing(ENOSYS), ENOSYS);
}
END_TEST

START_TEST(test_exit_code)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        _cleanup_(loop_source_freep) LoopSource *t = NULL;

        ck_assert(!loop_exiting(l));
        ck_assert_int_eq(loop_add_timer(l, 0, exit_timer_cb, (void *)(intptr_t)42, &t), 0);
        ck_assert_int_eq(loop_run(l), 42);
        ck_assert(loop_exiting(l));
        ck_assert_uint_gt(loop_now(l), 0);
}
END_TEST

int main(void)
{
        Loop *l = NULL;
        Suite *s;
        TCase *tc;
        SRunner *sr;
        int r, failed;

        r = loop_new(&l);
        if (r < 0) {
                printf("io_uring is not available (%s), skipping\n", strerror(-r));
                return 77;
        }
        loop_free(l);

        s = suite_create("loop");
        tc = tcase_create("loop");
        tcase_add_test(tc, test_timer_order);
        tcase_add_test(tc, test_timer_rearm);
        tcase_add_test(tc, test_timer_earlier);
        tcase_add_test(tc, test_timer_disarm);
        tcase_add_test(tc, test_timer_free_in_callback);
        tcase_add_test(tc, test_timer_many);
        tcase_add_test(tc, test_timer_churn);
        tcase_add_test(tc, test_io_eventfd);
        tcase_add_test(tc, test_io_pipe);
        tcase_add_test(tc, test_signal);
        tcase_add_test(tc, test_child);
        tcase_add_test(tc, test_accept);
        tcase_add_test(tc, test_accept_emfile);
        tcase_add_test(tc, test_accept_not_listening);
        tcase_add_test(tc, test_free_inflight);
        tcase_add_test(tc, test_loop_free_with_live_sources);
        tcase_add_test(tc, test_exit_code);
        tcase_add_test(tc, test_io_uring_unavailable);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? 0 : 1;
}
