/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The io_uring event loop. See loop.h for the contract and docs/internals-loop.md for the
 * design: every SQE's user_data is a LoopOp embedded in its owner; owners are reference
 * counted (one reference for the owner's user, one per in-flight op, one while a
 * callback runs), so a source freed from any callback stays allocated until the last
 * CQE that names it has been reaped. */

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "basic/alloc-util.h"
#include "basic/fd-util.h"
#include "basic/prioq.h"
#include "shared/loop-private.h"
#include "shared/loop.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* Submission queue size; a full SQ is submitted early, so this only bounds batching. */
#define LOOP_SQ_ENTRIES 256U
/* Completion queue: one daemon has ~2 ops per connection in flight; the kernel buffers
 * overflow (IORING_FEAT_NODROP) but a roomy CQ avoids that slow path. */
#define LOOP_CQ_ENTRIES 4096U
/* The provided-buffer ring shared by all multishot receives: memory for receiving
 * does not grow with the number of idle connections. */
#define LOOP_BUF_RING_ENTRIES 128U
#define LOOP_BUF_SIZE (64U * 1024)
#define LOOP_BUF_GROUP 0
/* Pause before re-arming accept after EMFILE/ENFILE/ENOBUFS/ENOMEM. */
#define LOOP_ACCEPT_BACKOFF_USEC (100 * USEC_PER_MSEC)

typedef enum SourceType {
        SOURCE_TIMER,
        SOURCE_IO,
        SOURCE_SIGNAL,
        SOURCE_CHILD,
        SOURCE_ACCEPT,
} SourceType;

struct LoopSource {
        Loop *loop;
        SourceType type;
        unsigned n_ref;
        bool dead;
        bool floating; /* added with ret == NULL: the loop frees it at loop_free() */
        void *userdata;
        LoopLink link;
        union {
                struct {
                        loop_timer_cb cb;
                        usec_t when;
                        uint64_t seq;
                        uint64_t dispatched_iteration;
                        unsigned idx;
                } timer;
                struct {
                        loop_io_cb cb;
                        LoopOp op;
                        int fd;
                        uint32_t events;
                        uint32_t armed_events;
                        bool broken; /* poll failed (EBADF...): wait for set_events */
                } io;
                struct {
                        loop_signal_cb cb;
                        int sig;
                } signal;
                struct {
                        loop_child_cb cb;
                        LoopOp op;
                        int pidfd;
                        bool exited;
                } child;
                struct {
                        loop_accept_cb cb;
                        LoopOp op;
                        int fd;
                        bool stopped;
                        bool got_any;
                        bool multishot; /* false after a kernel refused it */
                        LoopSource *backoff;
                } accept;
        };
};

struct Loop {
        struct io_uring ring;
        bool ring_ok;
        bool draining;
        bool exiting;
        int exit_code;
        unsigned n_inflight; /* SQEs handed out whose final CQE was not reaped yet */
        bool prepare_called_back;
        usec_t now;
        uint64_t iteration;

        /* Timers: one heap, one ring timeout armed for its head. */
        Prioq *timers;
        uint64_t timer_seq;
        LoopOp timeout_op;
        bool timeout_armed;
        usec_t timeout_when;
        struct __kernel_timespec timeout_ts, update_ts;

        /* Signals: one signalfd for all of them. */
        int signal_fd;
        sigset_t signal_mask;
        LoopSource *signals[_NSIG];
        LoopOp signal_op;

        /* Provided buffers: 0 not set up yet, 1 ready, < 0 the kernel said no. */
        int buf_ring_state;
        struct io_uring_buf_ring *buf_ring;
        uint8_t *buf_mem;

        LoopPrepare *prep_head, *prep_tail;
        LoopLink *links;
};

static void loop_dispatch_cqes(Loop *l);
static void signal_op_fn(Loop *l, LoopOp *op, const struct io_uring_cqe *cqe);

/* ---- ops and the ring ---- */

struct io_uring_sqe *loop_get_sqe(Loop *l, LoopOp *op)
{
        struct io_uring_sqe *sqe;

        sqe = io_uring_get_sqe(&l->ring);
        if (!sqe) {
                /* SQ full: hand what we have to the kernel and take a fresh slot. */
                (void)io_uring_submit(&l->ring);
                sqe = io_uring_get_sqe(&l->ring);
                if (!sqe)
                        return NULL;
        }
        io_uring_sqe_set_data(sqe, op);
        if (op)
                op->inflight = true;
        l->n_inflight++;
        return sqe;
}

void loop_cancel_op(Loop *l, LoopOp *op)
{
        struct io_uring_sqe *sqe;

        if (!l || !op->inflight)
                return;
        sqe = loop_get_sqe(l, NULL);
        if (sqe)
                io_uring_prep_cancel(sqe, op, 0);
}

bool loop_draining(Loop *l)
{
        return l->draining;
}

void loop_prepare_queue(Loop *l, LoopPrepare *p)
{
        if (p->queued)
                return;
        p->queued = true;
        p->next = NULL;
        p->prev = l->prep_tail;
        if (l->prep_tail)
                l->prep_tail->next = p;
        else
                l->prep_head = p;
        l->prep_tail = p;
}

void loop_note_callback(Loop *l)
{
        l->prepare_called_back = true;
}

void loop_prepare_dequeue(Loop *l, LoopPrepare *p)
{
        if (!p->queued)
                return;
        if (p->prev)
                p->prev->next = p->next;
        else
                l->prep_head = p->next;
        if (p->next)
                p->next->prev = p->prev;
        else
                l->prep_tail = p->prev;
        p->next = p->prev = NULL;
        p->queued = false;
}

void loop_link(Loop *l, LoopLink *k)
{
        k->prev = NULL;
        k->next = l->links;
        if (l->links)
                l->links->prev = k;
        l->links = k;
}

void loop_unlink(Loop *l, LoopLink *k)
{
        if (k->prev)
                k->prev->next = k->next;
        else if (l->links == k)
                l->links = k->next;
        if (k->next)
                k->next->prev = k->prev;
        k->next = k->prev = NULL;
}

/* ---- provided buffers ---- */

static size_t buf_ring_bytes(void)
{
        return LOOP_BUF_RING_ENTRIES * sizeof(struct io_uring_buf);
}

/* liburing 2.3 has no io_uring_setup_buf_ring(): map the ring ourselves, register it,
 * then publish every buffer. The buffer memory is touched only as the kernel fills it. */
int loop_buf_ring(Loop *l, uint16_t *ret_bgid)
{
        struct io_uring_buf_reg reg = {};
        void *ring, *mem;
        int r;

        if (l->buf_ring_state == 0) {
                ring = mmap(NULL, buf_ring_bytes(), PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (ring == MAP_FAILED)
                        return -errno; /* not final: may work later */
                mem = mmap(NULL, (size_t)LOOP_BUF_RING_ENTRIES * LOOP_BUF_SIZE,
                           PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
                           0);
                if (mem == MAP_FAILED) {
                        r = -errno;
                        munmap(ring, buf_ring_bytes());
                        return r;
                }
                reg.ring_addr = (uintptr_t)ring;
                reg.ring_entries = LOOP_BUF_RING_ENTRIES;
                reg.bgid = LOOP_BUF_GROUP;
                r = io_uring_register_buf_ring(&l->ring, &reg, 0);
                if (r < 0) {
                        munmap(mem, (size_t)LOOP_BUF_RING_ENTRIES * LOOP_BUF_SIZE);
                        munmap(ring, buf_ring_bytes());
                        l->buf_ring_state = r;
                        return r;
                }
                l->buf_ring = ring;
                l->buf_mem = mem;
                (void)madvise(ring, buf_ring_bytes(), MADV_DONTFORK);
                (void)madvise(mem, (size_t)LOOP_BUF_RING_ENTRIES * LOOP_BUF_SIZE, MADV_DONTFORK);
                io_uring_buf_ring_init(l->buf_ring);
                for (unsigned i = 0; i < LOOP_BUF_RING_ENTRIES; i++)
                        io_uring_buf_ring_add(l->buf_ring, l->buf_mem + (size_t)i * LOOP_BUF_SIZE,
                                              LOOP_BUF_SIZE, (unsigned short)i,
                                              io_uring_buf_ring_mask(LOOP_BUF_RING_ENTRIES),
                                              (int)i);
                io_uring_buf_ring_advance(l->buf_ring, LOOP_BUF_RING_ENTRIES);
                l->buf_ring_state = 1;
        }
        if (l->buf_ring_state < 0)
                return l->buf_ring_state;
        *ret_bgid = LOOP_BUF_GROUP;
        return 0;
}

const uint8_t *loop_buf_ring_data(Loop *l, const struct io_uring_cqe *cqe)
{
        unsigned bid;

        if (!(cqe->flags & IORING_CQE_F_BUFFER) || !l->buf_mem)
                return NULL;
        bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        assert(bid < LOOP_BUF_RING_ENTRIES);
        return l->buf_mem + (size_t)bid * LOOP_BUF_SIZE;
}

void loop_buf_ring_recycle(Loop *l, const struct io_uring_cqe *cqe)
{
        unsigned bid;

        if (!(cqe->flags & IORING_CQE_F_BUFFER) || !l->buf_mem)
                return;
        bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        io_uring_buf_ring_add(l->buf_ring, l->buf_mem + (size_t)bid * LOOP_BUF_SIZE, LOOP_BUF_SIZE,
                              (unsigned short)bid, io_uring_buf_ring_mask(LOOP_BUF_RING_ENTRIES),
                              0);
        io_uring_buf_ring_advance(l->buf_ring, 1);
}

/* ---- the loop ---- */

static int timer_compare(const void *a, const void *b)
{
        const LoopSource *x = a, *y = b;

        if (x->timer.when != y->timer.when)
                return x->timer.when < y->timer.when ? -1 : 1;
        if (x->timer.seq != y->timer.seq)
                return x->timer.seq < y->timer.seq ? -1 : 1;
        return 0;
}

static void timeout_op_fn(Loop *l, LoopOp *op, const struct io_uring_cqe *cqe)
{
        /* -ETIME: expired, -ECANCELED: loop_free. Expired timers are dispatched after
         * every batch anyway; all that matters here is that no timeout is armed. */
        l->timeout_armed = false;
}

int loop_new(Loop **ret)
{
        static const unsigned flag_sets[] = {
                IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN,
                IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
                IORING_SETUP_COOP_TASKRUN,
                0,
        };
        _cleanup_(loop_freep) Loop *l = NULL;
        int r = -EINVAL;

        assert(ret);

        l = new0(Loop, 1);
        if (!l)
                return -ENOMEM;
        l->signal_fd = -EBADF;
        l->timeout_op = (LoopOp){.fn = timeout_op_fn, .kind = LOOP_OP_TIMEOUT};
        l->signal_op = (LoopOp){.fn = signal_op_fn, .kind = LOOP_OP_SIGNAL};
        sigemptyset(&l->signal_mask);
        l->timers = prioq_new(timer_compare);
        if (!l->timers)
                return -ENOMEM;

        /* Newer setup flags first; kernels that lack one say -EINVAL. Anything else
         * (ENOSYS: no io_uring or kernel.io_uring_disabled=2; EPERM: disabled for this
         * user or blocked by seccomp; ENOMEM: locked-memory limit) is final. */
        for (size_t i = 0; i < ELEMENTSOF(flag_sets); i++) {
                struct io_uring_params p = {
                        .flags = flag_sets[i] | IORING_SETUP_CQSIZE,
                        .cq_entries = LOOP_CQ_ENTRIES,
                };
                r = io_uring_queue_init_params(LOOP_SQ_ENTRIES, &l->ring, &p);
                if (r != -EINVAL)
                        break;
        }
        if (r < 0)
                return r;
        l->ring_ok = true;
        /* Children forked by the daemon (before exec) need none of the ring's memory. */
        (void)io_uring_ring_dontfork(&l->ring);
        l->now = now(CLOCK_MONOTONIC);

        *ret = TAKE_PTR(l);
        return 0;
}

Loop *loop_free(Loop *l)
{
        if (!l)
                return NULL;

        while (l->prep_head)
                loop_prepare_dequeue(l, l->prep_head);

        if (l->ring_ok) {
                /* Cancel everything in flight and reap until the kernel has given back
                 * every operation: only then may the owners be freed. */
                l->draining = true;
                if (l->n_inflight > 0) {
                        struct io_uring_sqe *sqe = loop_get_sqe(l, NULL);
                        if (sqe)
                                io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
                }
                while (l->n_inflight > 0) {
                        int r = io_uring_submit_and_wait(&l->ring, 1);
                        if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY && r != -ETIME)
                                break;
                        loop_dispatch_cqes(l);
                }
        }

        /* Whatever the owners did not free forgets the loop. */
        while (l->links) {
                LoopLink *k = l->links;
                loop_unlink(l, k);
                k->detach(k);
        }

        if (l->ring_ok)
                io_uring_queue_exit(&l->ring);
        if (l->buf_ring) {
                munmap(l->buf_mem, (size_t)LOOP_BUF_RING_ENTRIES * LOOP_BUF_SIZE);
                munmap(l->buf_ring, buf_ring_bytes());
        }
        safe_close(l->signal_fd);
        prioq_free(l->timers);
        free(l);
        return NULL;
}

void loop_exit(Loop *l, int code)
{
        l->exiting = true;
        l->exit_code = code;
}

bool loop_exiting(Loop *l)
{
        return l->exiting;
}

usec_t loop_now(Loop *l)
{
        return l->now;
}

static void usec_to_timespec(usec_t u, struct __kernel_timespec *ts)
{
        ts->tv_sec = (long long)(u / USEC_PER_SEC);
        ts->tv_nsec = (long long)((u % USEC_PER_SEC) * NSEC_PER_USEC);
}

/* Keeps exactly one ring timeout armed for the earliest timer. A later head leaves the
 * armed timeout alone (it wakes us early once, then we re-arm); an earlier head moves
 * it with IORING_TIMEOUT_UPDATE. */
static void loop_arm_timeout(Loop *l)
{
        LoopSource *t = prioq_peek(l->timers);
        struct io_uring_sqe *sqe;

        if (!t)
                return;
        if (l->timeout_armed && l->timeout_when <= t->timer.when)
                return;

        if (l->timeout_armed) {
                sqe = loop_get_sqe(l, NULL);
                if (!sqe)
                        return;
                usec_to_timespec(t->timer.when, &l->update_ts);
                io_uring_prep_timeout_update(sqe, &l->update_ts, (uintptr_t)&l->timeout_op,
                                             IORING_TIMEOUT_ABS);
        } else {
                sqe = loop_get_sqe(l, &l->timeout_op);
                if (!sqe)
                        return;
                usec_to_timespec(t->timer.when, &l->timeout_ts);
                io_uring_prep_timeout(sqe, &l->timeout_ts, 0, IORING_TIMEOUT_ABS);
                l->timeout_armed = true;
        }
        /* If the update finds the timeout already expired (-ENOENT), its CQE is on the
         * way and clears timeout_armed; the next prepare arms again. */
        l->timeout_when = t->timer.when;
}

static void loop_prepare(Loop *l)
{
        while (l->prep_head) {
                LoopPrepare *p = l->prep_head;
                loop_prepare_dequeue(l, p);
                p->fn(p);
        }
        loop_arm_timeout(l);
}

static void loop_dispatch_cqes(Loop *l)
{
        for (;;) {
                struct io_uring_cqe *cqe, c;
                unsigned head;
                bool got = false;

                io_uring_for_each_cqe(&l->ring, head, cqe)
                {
                        c = *cqe;
                        got = true;
                        break;
                }
                if (!got)
                        return;
                /* Consume before dispatching: handlers may submit, and must never see
                 * the same CQE twice. */
                io_uring_cq_advance(&l->ring, 1);

                if (c.user_data == LIBURING_UDATA_TIMEOUT)
                        continue;
                if (!(c.flags & IORING_CQE_F_MORE)) {
                        assert(l->n_inflight > 0);
                        l->n_inflight--;
                }
                LoopOp *op = (LoopOp *)(uintptr_t)c.user_data;
                if (!op)
                        continue;
                if (!(c.flags & IORING_CQE_F_MORE))
                        op->inflight = false;
                op->fn(l, op, &c);
        }
}

static void source_ref(LoopSource *s)
{
        s->n_ref++;
}
static void source_unref(LoopSource *s);

static void loop_dispatch_timers(Loop *l)
{
        LoopSource *t;

        while ((t = prioq_peek(l->timers))) {
                if (t->timer.when > l->now)
                        break;
                /* A timer re-armed into the past from its own callback runs again in
                 * the next iteration, not in a busy loop here. */
                if (t->timer.dispatched_iteration == l->iteration)
                        break;
                prioq_remove(l->timers, t, &t->timer.idx);
                t->timer.dispatched_iteration = l->iteration;
                source_ref(t);
                t->timer.cb(t, t->userdata);
                source_unref(t);
        }
}

int loop_run_once(Loop *l, usec_t timeout)
{
        int r;

        if (!l->ring_ok)
                return -ENXIO;

        l->prepare_called_back = false;
        loop_prepare(l);
        if (l->prepare_called_back || l->exiting)
                timeout = 0;

        if (timeout == USEC_INFINITY) {
                r = io_uring_submit_and_wait(&l->ring, 1);
        } else {
                struct __kernel_timespec ts;
                struct io_uring_cqe *cqe;
                usec_to_timespec(timeout, &ts);
                r = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, &ts, NULL);
        }
        /* Woken without completions (timeout, signal, CQ overflow being flushed):
         * nothing to report, dispatch what there is. */
        if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY)
                return r;

        l->iteration++;
        l->now = now(CLOCK_MONOTONIC);
        loop_dispatch_cqes(l);
        loop_dispatch_timers(l);
        return 0;
}

int loop_run(Loop *l)
{
        while (!l->exiting) {
                int r = loop_run_once(l, USEC_INFINITY);
                if (r < 0)
                        return r;
        }
        return l->exit_code;
}

/* ---- sources ---- */

static void source_destroy(LoopSource *s)
{
        switch (s->type) {
        case SOURCE_CHILD:
                safe_close(s->child.pidfd);
                break;
        default:
                break;
        }
        free(s);
}

static void source_unref(LoopSource *s)
{
        assert(s->n_ref > 0);
        if (--s->n_ref == 0)
                source_destroy(s);
}

static void source_detach(LoopLink *k)
{
        LoopSource *s = container_of(k, LoopSource, link);

        if (s->type == SOURCE_TIMER && s->timer.idx != PRIOQ_IDX_NULL)
                prioq_remove(s->loop->timers, s, &s->timer.idx);
        if (s->type == SOURCE_ACCEPT)
                s->accept.backoff = loop_source_free(s->accept.backoff);
        s->loop = NULL;
        if (s->floating)
                loop_source_free(s);
}

static LoopSource *source_new(Loop *l, SourceType type, void *userdata)
{
        LoopSource *s = new0(LoopSource, 1);

        if (!s)
                return NULL;
        s->loop = l;
        s->type = type;
        s->n_ref = 1;
        s->userdata = userdata;
        s->link.detach = source_detach;
        loop_link(l, &s->link);
        return s;
}

static void signal_disable(LoopSource *s);

LoopSource *loop_source_free(LoopSource *s)
{
        Loop *l;

        if (!s || s->dead)
                return NULL;
        s->dead = true;
        l = s->loop;
        if (l) {
                switch (s->type) {
                case SOURCE_TIMER:
                        if (s->timer.idx != PRIOQ_IDX_NULL)
                                prioq_remove(l->timers, s, &s->timer.idx);
                        break;
                case SOURCE_IO:
                        loop_cancel_op(l, &s->io.op);
                        break;
                case SOURCE_SIGNAL:
                        signal_disable(s);
                        break;
                case SOURCE_CHILD:
                        loop_cancel_op(l, &s->child.op);
                        break;
                case SOURCE_ACCEPT:
                        loop_cancel_op(l, &s->accept.op);
                        s->accept.backoff = loop_source_free(s->accept.backoff);
                        break;
                }
                loop_unlink(l, &s->link);
        } else if (s->type == SOURCE_ACCEPT) {
                s->accept.backoff = loop_source_free(s->accept.backoff);
        }
        source_unref(s);
        return NULL;
}

void *loop_source_userdata(LoopSource *s)
{
        return s->userdata;
}

Loop *loop_source_loop(LoopSource *s)
{
        return s->loop;
}

/* ---- timers ---- */

int loop_add_timer(Loop *l, usec_t when, loop_timer_cb cb, void *userdata, LoopSource **ret)
{
        LoopSource *s;
        int r;

        assert(cb);
        s = source_new(l, SOURCE_TIMER, userdata);
        if (!s)
                return -ENOMEM;
        s->timer.cb = cb;
        s->timer.idx = PRIOQ_IDX_NULL;
        s->timer.dispatched_iteration = UINT64_MAX;
        r = loop_timer_set(s, when);
        if (r < 0) {
                loop_source_free(s);
                return r;
        }
        if (ret)
                *ret = s;
        else
                s->floating = true;
        return 0;
}

int loop_timer_set(LoopSource *s, usec_t when)
{
        Loop *l = s->loop;

        assert(s->type == SOURCE_TIMER);
        if (!l || s->dead)
                return -ESTALE;
        s->timer.when = when;
        s->timer.seq = l->timer_seq++;
        if (s->timer.idx != PRIOQ_IDX_NULL) {
                prioq_reshuffle(l->timers, s, &s->timer.idx);
                return 0;
        }
        return prioq_put(l->timers, s, &s->timer.idx);
}

void loop_timer_disarm(LoopSource *s)
{
        assert(s->type == SOURCE_TIMER);
        if (s->loop && s->timer.idx != PRIOQ_IDX_NULL)
                prioq_remove(s->loop->timers, s, &s->timer.idx);
}

/* ---- io watches ---- */

/* Watches are level-triggered like poll(2): each POLL_ADD is one-shot and re-armed
 * after the callback, and arming checks the current state, so input the callback left
 * unread is reported again. Multishot poll would be edge-triggered, which loses
 * wake-ups with users such as libdbus that read a bounded amount per callback. */
static void io_arm(LoopSource *s)
{
        Loop *l = s->loop;
        struct io_uring_sqe *sqe;

        if (s->io.op.inflight || s->io.events == 0 || s->io.broken)
                return;
        sqe = loop_get_sqe(l, &s->io.op);
        if (!sqe)
                return;
        io_uring_prep_poll_add(sqe, s->io.fd, s->io.events);
        s->io.armed_events = s->io.events;
        source_ref(s);
}

static void io_op_fn(Loop *l, LoopOp *op, const struct io_uring_cqe *cqe)
{
        LoopSource *s = container_of(op, LoopSource, io.op);

        if (!s->dead && !l->draining && cqe->res != -ECANCELED) {
                uint32_t revents;

                if (cqe->res < 0) {
                        /* The fd is unusable (EBADF...): report once, then wait until
                         * the owner sets new events. */
                        s->io.broken = true;
                        revents = POLLNVAL;
                } else
                        revents =
                                (uint32_t)cqe->res & (s->io.events | POLLERR | POLLHUP | POLLNVAL);
                if (revents)
                        s->io.cb(s, s->io.fd, revents, s->userdata);
                /* The op's reference keeps s valid through the callback. */
                if (!s->dead && !l->draining && !op->inflight)
                        io_arm(s);
        } else if (!s->dead && !l->draining && !op->inflight)
                io_arm(s); /* cancelled to change the events */

        /* The completed op's reference; a re-armed op took its own. */
        source_unref(s);
}

int loop_add_io(Loop *l, int fd, uint32_t events, loop_io_cb cb, void *userdata, LoopSource **ret)
{
        LoopSource *s;

        assert(cb);
        if (fd < 0)
                return -EBADF;
        s = source_new(l, SOURCE_IO, userdata);
        if (!s)
                return -ENOMEM;
        s->io.cb = cb;
        s->io.fd = fd;
        s->io.events = events;
        s->io.op = (LoopOp){.fn = io_op_fn, .kind = LOOP_OP_POLL};
        io_arm(s);
        if (events && !s->io.op.inflight) {
                loop_source_free(s);
                return -ENOMEM;
        }
        if (ret)
                *ret = s;
        else
                s->floating = true;
        return 0;
}

int loop_io_set_events(LoopSource *s, uint32_t events)
{
        assert(s->type == SOURCE_IO);
        if (!s->loop || s->dead)
                return -ESTALE;
        s->io.events = events;
        s->io.broken = false;
        if (s->io.op.inflight) {
                /* A poll for other events is armed: cancel it, its completion re-arms
                 * with the new set. Stale readiness is filtered by io.events. */
                if (s->io.armed_events != events)
                        loop_cancel_op(s->loop, &s->io.op);
                return 0;
        }
        io_arm(s);
        if (events && !s->io.op.inflight)
                return -ENOMEM;
        return 0;
}

/* ---- signals ---- */

static void signal_arm(Loop *l)
{
        struct io_uring_sqe *sqe;

        if (l->signal_op.inflight || l->signal_fd < 0)
                return;
        sqe = loop_get_sqe(l, &l->signal_op);
        if (sqe)
                io_uring_prep_poll_multishot(sqe, l->signal_fd, POLLIN);
}

static void signal_op_fn(Loop *l, LoopOp *op, const struct io_uring_cqe *cqe)
{
        struct signalfd_siginfo si[16];

        if (l->draining)
                return;

        /* Drain the signalfd: multishot poll only reports new arrivals. */
        for (;;) {
                ssize_t n = read(l->signal_fd, si, sizeof(si));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (n == 0)
                        break;
                for (size_t i = 0; i < (size_t)n / sizeof(si[0]); i++) {
                        unsigned sig = si[i].ssi_signo;
                        if (sig >= _NSIG || !l->signals[sig])
                                continue;
                        LoopSource *s = l->signals[sig];
                        source_ref(s);
                        s->signal.cb(s, &si[i], s->userdata);
                        source_unref(s);
                }
                if ((size_t)n < sizeof(si))
                        break;
        }
        if (!op->inflight)
                signal_arm(l);
}

static void signal_disable(LoopSource *s)
{
        Loop *l = s->loop;

        if (l->signals[s->signal.sig] != s)
                return;
        l->signals[s->signal.sig] = NULL;
        sigdelset(&l->signal_mask, s->signal.sig);
        /* The signal stays blocked: unblocking would let a pending one kill us. */
        (void)signalfd(l->signal_fd, &l->signal_mask, SFD_NONBLOCK | SFD_CLOEXEC);
}

int loop_add_signal(Loop *l, int sig, loop_signal_cb cb, void *userdata, LoopSource **ret)
{
        sigset_t mask, block;
        LoopSource *s;
        int fd, r;

        assert(cb);
        if (sig <= 0 || sig >= _NSIG)
                return -EINVAL;
        if (l->signals[sig])
                return -EBUSY;

        mask = l->signal_mask;
        sigaddset(&mask, sig);
        sigemptyset(&block);
        sigaddset(&block, sig);
        r = pthread_sigmask(SIG_BLOCK, &block, NULL);
        if (r != 0)
                return -r;
        fd = signalfd(l->signal_fd >= 0 ? l->signal_fd : -1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        l->signal_fd = fd;
        l->signal_mask = mask;

        s = source_new(l, SOURCE_SIGNAL, userdata);
        if (!s) {
                sigdelset(&l->signal_mask, sig);
                (void)signalfd(l->signal_fd, &l->signal_mask, SFD_NONBLOCK | SFD_CLOEXEC);
                return -ENOMEM;
        }
        s->signal.cb = cb;
        s->signal.sig = sig;
        l->signals[sig] = s;
        signal_arm(l);
        if (ret)
                *ret = s;
        else
                s->floating = true;
        return 0;
}

/* ---- children ---- */

static void child_arm(LoopSource *s)
{
        struct io_uring_sqe *sqe = loop_get_sqe(s->loop, &s->child.op);

        if (!sqe)
                return;
        io_uring_prep_poll_add(sqe, s->child.pidfd, POLLIN);
        source_ref(s);
}

static void child_op_fn(Loop *l, LoopOp *op, const struct io_uring_cqe *cqe)
{
        LoopSource *s = container_of(op, LoopSource, child.op);
        siginfo_t si = {};
        struct rusage ru = {};

        if (s->dead || l->draining || s->child.exited) {
                source_unref(s);
                return;
        }
        if (cqe->res == -ECANCELED || cqe->res == -EINTR || cqe->res == -EAGAIN) {
                child_arm(s);
                source_unref(s);
                return;
        }

        /* glibc's waitid() has no rusage argument; the system call does. */
        if (syscall(SYS_waitid, P_PIDFD, s->child.pidfd, &si, WEXITED | WNOHANG, &ru) < 0) {
                /* ECHILD: someone else reaped it. Report a lost child rather than
                 * waiting forever. */
                si = (siginfo_t){.si_signo = SIGCHLD};
                si.si_code = 0;
                si.si_errno = errno;
        } else if (si.si_pid == 0) {
                child_arm(s); /* spurious wake-up: not exited yet */
                source_unref(s);
                return;
        }
        s->child.exited = true;
        s->child.cb(s, &si, &ru, s->userdata);
        source_unref(s);
}

int loop_add_child(Loop *l, int pidfd, loop_child_cb cb, void *userdata, LoopSource **ret)
{
        LoopSource *s;

        assert(cb);
        if (pidfd < 0)
                return -EBADF;
        s = source_new(l, SOURCE_CHILD, userdata);
        if (!s)
                return -ENOMEM;
        s->child.cb = cb;
        s->child.pidfd = pidfd;
        s->child.op = (LoopOp){.fn = child_op_fn, .kind = LOOP_OP_CHILD};
        child_arm(s);
        if (!s->child.op.inflight) {
                s->child.pidfd = -EBADF; /* not taken on failure */
                loop_source_free(s);
                return -ENOMEM;
        }
        if (ret)
                *ret = s;
        else
                s->floating = true;
        return 0;
}

/* ---- accept ---- */

static void accept_arm(LoopSource *s)
{
        Loop *l = s->loop;
        struct io_uring_sqe *sqe;

        if (s->accept.op.inflight || s->accept.stopped)
                return;
        sqe = loop_get_sqe(l, &s->accept.op);
        if (!sqe)
                return;
        if (s->accept.multishot)
                io_uring_prep_multishot_accept(sqe, s->accept.fd, NULL, NULL,
                                               SOCK_CLOEXEC | SOCK_NONBLOCK);
        else
                io_uring_prep_accept(sqe, s->accept.fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        source_ref(s);
}

static void accept_backoff_cb(LoopSource *t, void *userdata)
{
        LoopSource *s = userdata;

        accept_arm(s);
}

static void accept_op_fn(Loop *l, LoopOp *op, const struct io_uring_cqe *cqe)
{
        LoopSource *s = container_of(op, LoopSource, accept.op);
        bool final = !op->inflight;
        int res = cqe->res;

        if (s->dead || l->draining) {
                if (res >= 0)
                        safe_close(res);
                if (final)
                        source_unref(s);
                return;
        }

        source_ref(s);
        if (res >= 0) {
                s->accept.got_any = true;
                s->accept.cb(s, res, 0, s->userdata);
        } else {
                switch (res) {
                case -ECANCELED:
                case -EINTR:
                case -EAGAIN:
                case -ECONNABORTED:
                case -EPROTO:
                        break; /* transient: accept again */
                case -EINVAL:
                        if (s->accept.multishot && !s->accept.got_any) {
                                /* Kernel without multishot accept (< 5.19). */
                                s->accept.multishot = false;
                                break;
                        }
                        s->accept.stopped = true;
                        s->accept.cb(s, -EBADF, res, s->userdata);
                        break;
                case -EMFILE:
                case -ENFILE:
                case -ENOBUFS:
                case -ENOMEM:
                        s->accept.cb(s, -EBADF, res, s->userdata);
                        if (s->dead)
                                break;
                        /* Out of fds or memory: retrying at once would spin. */
                        if (!s->accept.backoff) {
                                if (loop_add_timer(l, l->now + LOOP_ACCEPT_BACKOFF_USEC,
                                                   accept_backoff_cb, s, &s->accept.backoff) < 0)
                                        break;
                        } else
                                (void)loop_timer_set(s->accept.backoff,
                                                     l->now + LOOP_ACCEPT_BACKOFF_USEC);
                        if (final) {
                                source_unref(s); /* dispatch */
                                source_unref(s); /* op */
                                return;
                        }
                        break;
                default:
                        s->accept.stopped = true;
                        s->accept.cb(s, -EBADF, res, s->userdata);
                        break;
                }
        }
        if (final && !s->dead)
                accept_arm(s);
        source_unref(s);
        if (final)
                source_unref(s);
}

int loop_add_accept(Loop *l, int listen_fd, loop_accept_cb cb, void *userdata, LoopSource **ret)
{
        LoopSource *s;

        assert(cb);
        if (listen_fd < 0)
                return -EBADF;
        s = source_new(l, SOURCE_ACCEPT, userdata);
        if (!s)
                return -ENOMEM;
        s->accept.cb = cb;
        s->accept.fd = listen_fd;
        s->accept.op = (LoopOp){.fn = accept_op_fn, .kind = LOOP_OP_ACCEPT};
        s->accept.multishot = true;
        accept_arm(s);
        if (!s->accept.op.inflight) {
                loop_source_free(s);
                return -ENOMEM;
        }
        if (ret)
                *ret = s;
        else
                s->floating = true;
        return 0;
}
