/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The event loop: one io_uring per process, single-threaded.
 *
 * Each iteration: prepare (flush queued sends, arm the ring timeout for the earliest
 * timer) -> one io_uring_submit_and_wait() -> dispatch the batch of CQEs. Every
 * in-flight SQE's user_data points at a typed operation; the object it belongs to
 * stays allocated until the CQE arrives (freeing a source while an SQE is in flight
 * cancels it and defers the free). Callbacks never block.
 *
 * Sources:
 *  - timers: all in one priority queue behind a single ring timeout;
 *  - io watches: readiness of any fd (IORING_OP_POLL_ADD, multishot where the kernel
 *    has it) for code that owns its own I/O: Avahi, D-Bus, microhttpd, eventfds;
 *  - signals: through a signalfd (the signal is blocked in the process);
 *  - children: pidfd readiness, then waitid(P_PIDFD) for the status;
 *  - accept: multishot accept on a listening socket;
 *  - streams (stream.h): recv into a buffer and send with write coalescing.
 *
 * Any source may be freed from within any callback, including its own.
 * All functions return >= 0 or -errno. */

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "basic/macro.h"
#include "basic/time-util.h"

typedef struct Loop Loop;
typedef struct LoopSource LoopSource;

/* Fails with a clear -errno (-ENOSYS, -EPERM) where io_uring is disabled by sysctl or
 * seccomp; callers report that in words. The ring belongs to the thread that created
 * it (IORING_SETUP_SINGLE_ISSUER where the kernel has it): create the loop in the thread
 * that runs it, after any fork(). Not for use from inside its own callbacks: loop_free()
 * must be called outside loop_run(). */
int loop_new(Loop **ret);
Loop *loop_free(Loop *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(Loop *, loop_free);

/* Runs until loop_exit(); returns its code. */
int loop_run(Loop *l);
/* Runs one iteration, waiting at most timeout (USEC_INFINITY = until something
 * happens). For tests and for clients with their own flow. Returns 0, or -errno. */
int loop_run_once(Loop *l, usec_t timeout);
void loop_exit(Loop *l, int code);
bool loop_exiting(Loop *l);
/* CLOCK_MONOTONIC, cached for the current iteration. */
usec_t loop_now(Loop *l);

typedef void (*loop_timer_cb)(LoopSource *s, void *userdata);
/* One-shot timer at absolute CLOCK_MONOTONIC time `when`. Re-arm with
 * loop_timer_set() (also from inside its callback). */
int loop_add_timer(Loop *l, usec_t when, loop_timer_cb cb, void *userdata, LoopSource **ret);
int loop_timer_set(LoopSource *s, usec_t when);
/* Disarms without freeing. */
void loop_timer_disarm(LoopSource *s);

/* revents are poll bits (POLLIN, POLLOUT, POLLERR, POLLHUP). A watch with events 0 is
 * kept but not polled. Watches are level-triggered like poll(2): readiness the callback
 * leaves (unread input) is reported again. An fd that cannot be polled (closed under
 * the watch) is reported once as POLLNVAL, then polling stops until
 * loop_io_set_events(). */
typedef void (*loop_io_cb)(LoopSource *s, int fd, uint32_t revents, void *userdata);
int loop_add_io(Loop *l, int fd, uint32_t events, loop_io_cb cb, void *userdata, LoopSource **ret);
int loop_io_set_events(LoopSource *s, uint32_t events);

typedef void (*loop_signal_cb)(LoopSource *s, const struct signalfd_siginfo *si, void *userdata);
/* Blocks sig in the calling thread and delivers it here. */
int loop_add_signal(Loop *l, int sig, loop_signal_cb cb, void *userdata, LoopSource **ret);

/* Called once when the child exits; si and ru come from the waitid(P_PIDFD, WEXITED)
 * system call (its fifth argument gives the child's rusage) and the child is reaped.
 * The loop takes ownership of pidfd on success (on failure it stays the caller's).
 * If the child was reaped by someone else, si has si_pid 0 and si_errno set (ECHILD)
 * and ru is zero. */
typedef void (*loop_child_cb)(LoopSource *s, const siginfo_t *si, const struct rusage *ru,
                              void *userdata);
int loop_add_child(Loop *l, int pidfd, loop_child_cb cb, void *userdata, LoopSource **ret);

/* Multishot accept. fd is a new connected socket, O_CLOEXEC|O_NONBLOCK, owned by the
 * callback. error < 0 reports a failed accept (EMFILE, ...); the loop keeps accepting
 * after a short back-off. The listening fd stays owned by the caller. */
typedef void (*loop_accept_cb)(LoopSource *s, int fd, int error, void *userdata);
int loop_add_accept(Loop *l, int listen_fd, loop_accept_cb cb, void *userdata, LoopSource **ret);

/* Frees the source; safe from any callback. Returns NULL. Sources still alive at
 * loop_free() are detached from the loop; they must still be freed. A source added
 * with ret == NULL belongs to the loop (freed by loop_free()). */
LoopSource *loop_source_free(LoopSource *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(LoopSource *, loop_source_free);
void *loop_source_userdata(LoopSource *s);
Loop *loop_source_loop(LoopSource *s);
