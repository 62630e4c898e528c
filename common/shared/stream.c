/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Byte streams on the loop. See stream.h for the contract.
 *
 * Output: stream_write() appends to `pending`. At the prepare step, if no send is in
 * flight, `pending` becomes `out` (a swap, no copy) and one SQE sends all of it; `out`
 * is never touched while the kernel reads from it. A short send re-sends the rest of
 * `out`; whatever was written meanwhile goes out coalesced in the next SQE.
 *
 * Input: one recv (or read) at a time into the stream's own buffer; the completion
 * hands the bytes to on_data and re-arms. Paused streams hold back a completion that
 * arrives after the pause and deliver it on resume.
 *
 * Lifetime: the owner's reference, one per in-flight op, one around each callback. */

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "basic/alloc-util.h"
#include "basic/buf.h"
#include "basic/fd-util.h"
#include "shared/loop-private.h"
#include "shared/stream.h"

#define STREAM_RBUF_SIZE (64U * 1024)
#define STREAM_HIGH_WATER_DEFAULT (1024U * 1024)
#define STREAM_LOW_WATER_DEFAULT (256U * 1024)
#define STREAM_HARD_LIMIT_DEFAULT (64U * 1024 * 1024)
/* One SQE's length is 32 bits; stay well inside. */
#define STREAM_SEND_MAX (1U << 30)

struct Stream {
        Loop *loop;
        LoopLink link;
        LoopPrepare prep;
        unsigned n_ref;

        int fd;
        bool is_socket;
        bool can_read, can_write;

        const StreamOps *ops;
        void *userdata;
        StreamLimits lim;

        LoopOp recv_op, send_op, rpoll_op, wpoll_op;

        bool multishot; /* socket receiving from the loop's provided-buffer ring */
        uint16_t bgid;
        uint8_t *rbuf; /* single-shot receives (pipes, or no buffer ring) */
        Buf held; /* received while paused, not delivered yet */

        Buf out; /* being sent: frozen while send_op is in flight */
        Buf pending; /* written since */

        bool connecting;
        bool paused;
        bool read_eof; /* peer closed its side: close once flushed */
        bool write_shutdown; /* stream_shutdown_write(): half-close once flushed */
        bool write_done; /* ... done */
        bool closing; /* stream_close(): close once flushed */
        bool congested;
        bool closed; /* on_close fired (or stream_free() before it could) */
        bool dead; /* stream_free() */
};

static void stream_destroy(Stream *s)
{
        free(s->rbuf);
        buf_done(&s->held);
        buf_done(&s->out);
        buf_done(&s->pending);
        safe_close(s->fd);
        free(s);
}

static void stream_ref(Stream *s)
{
        s->n_ref++;
}

static void stream_unref(Stream *s)
{
        assert(s->n_ref > 0);
        if (--s->n_ref == 0)
                stream_destroy(s);
}

static void stream_kick(Stream *s)
{
        if (s->loop && !s->closed)
                loop_prepare_queue(s->loop, &s->prep);
}

static bool stream_flushed(const Stream *s)
{
        return !s->send_op.inflight && buf_size(&s->out) == 0 && buf_size(&s->pending) == 0;
}

/* Stops all I/O and closes the fd; in-flight ops are cancelled and release their
 * references when their CQEs arrive. */
static void stream_shut(Stream *s)
{
        s->closed = true;
        if (s->loop) {
                loop_prepare_dequeue(s->loop, &s->prep);
                loop_cancel_op(s->loop, &s->recv_op);
                loop_cancel_op(s->loop, &s->send_op);
                loop_cancel_op(s->loop, &s->rpoll_op);
                loop_cancel_op(s->loop, &s->wpoll_op);
        }
        /* The kernel holds its own file references for in-flight ops. */
        s->fd = safe_close(s->fd);
        buf_clear(&s->pending);
        buf_done(&s->held);
}

static void stream_finish(Stream *s, int error)
{
        if (s->closed)
                return;
        stream_shut(s);
        if (!s->dead && s->ops && s->ops->on_close) {
                if (s->loop)
                        loop_note_callback(s->loop);
                stream_ref(s);
                s->ops->on_close(s, error, s->userdata);
                stream_unref(s);
        }
}

/* ---- sending ---- */

static void stream_arm_poll(Stream *s, LoopOp *op, uint32_t events)
{
        struct io_uring_sqe *sqe;

        if (op->inflight)
                return;
        sqe = loop_get_sqe(s->loop, op);
        if (!sqe) {
                stream_finish(s, -ENOMEM);
                return;
        }
        io_uring_prep_poll_add(sqe, s->fd, events);
        stream_ref(s);
}

static void stream_check_drain(Stream *s)
{
        if (!s->congested || stream_queued(s) > s->lim.low_water)
                return;
        s->congested = false;
        if (!s->dead && !s->closed && s->ops && s->ops->on_drain) {
                loop_note_callback(s->loop);
                stream_ref(s);
                s->ops->on_drain(s, s->userdata);
                stream_unref(s);
        }
}

/* Closing a socket that still has unread input makes the kernel answer with a reset,
 * which can destroy what we just sent before the peer read it. Drop what is there
 * (bounded: a peer that keeps sending gets its reset). */
static void stream_discard_input(Stream *s)
{
        uint8_t scratch[4096];

        for (unsigned i = 0; i < 64; i++) {
                ssize_t n = recv(s->fd, scratch, sizeof(scratch), MSG_DONTWAIT);
                if (n <= 0 && !(n < 0 && errno == EINTR))
                        break;
        }
}

/* Everything flushed: carry out a pending half-close or close. */
static void stream_after_flush(Stream *s)
{
        if (s->closed || !stream_flushed(s))
                return;
        if (s->closing || s->read_eof) {
                if (s->closing && s->is_socket && !s->read_eof)
                        stream_discard_input(s);
                stream_finish(s, 0);
                return;
        }
        if (s->write_shutdown && !s->write_done) {
                s->write_done = true;
                if (s->is_socket) {
                        if (shutdown(s->fd, SHUT_WR) < 0 && errno != ENOTCONN)
                                stream_finish(s, -errno);
                } else if (!s->can_read)
                        stream_finish(s, 0); /* write-only pipe: closing it is all */
        }
}

static void stream_send(Stream *s)
{
        struct io_uring_sqe *sqe;
        size_t n;

        if (s->closed || s->connecting || s->send_op.inflight || s->wpoll_op.inflight ||
            !s->can_write)
                return;
        if (buf_size(&s->out) == 0 && buf_size(&s->pending) > 0) {
                Buf t = s->out;
                s->out = s->pending;
                s->pending = t;
        }
        n = MIN(buf_size(&s->out), (size_t)STREAM_SEND_MAX);
        if (n == 0) {
                stream_after_flush(s);
                return;
        }
        sqe = loop_get_sqe(s->loop, &s->send_op);
        if (!sqe) {
                stream_finish(s, -ENOMEM);
                return;
        }
        if (s->is_socket)
                io_uring_prep_send(sqe, s->fd, buf_head(&s->out), n, MSG_NOSIGNAL);
        else
                io_uring_prep_write(sqe, s->fd, buf_head(&s->out), (unsigned)n, (uint64_t)-1);
        stream_ref(s);
}

static void send_op_fn(Loop *l, LoopOp *op, const struct io_uring_cqe *cqe)
{
        Stream *s = container_of(op, Stream, send_op);
        int res = cqe->res;

        if (s->closed || loop_draining(l)) {
                stream_unref(s);
                return;
        }
        if (res > 0) {
                buf_consume(&s->out, (size_t)res);
                stream_check_drain(s);
                stream_send(s);
        } else if (res == 0 || res == -EINTR || res == -ECANCELED) {
                stream_send(s);
        } else if (res == -EAGAIN) {
                /* Non-blocking pipe: the kernel does not wait for us. */
                stream_arm_poll(s, &s->wpoll_op, POLLOUT);
        } else
                stream_finish(s, res);
        stream_unref(s);
}

static void wpoll_op_fn(Loop *l, LoopOp *op, const struct io_uring_cqe *cqe)
{
        Stream *s = container_of(op, Stream, wpoll_op);

        if (s->closed || loop_draining(l)) {
                stream_unref(s);
                return;
        }
        if (s->connecting) {
                int error = 0;
                socklen_t len = sizeof(error);

                if (cqe->res == -ECANCELED || cqe->res == -EINTR) {
                        stream_arm_poll(s, &s->wpoll_op, POLLOUT);
                        stream_unref(s);
                        return;
                }
                if (cqe->res < 0)
                        error = -cqe->res;
                else if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
                        error = errno;
                if (error != 0) {
                        stream_finish(s, -error);
                        stream_unref(s);
                        return;
                }
                s->connecting = false;
                stream_kick(s);
                stream_unref(s);
                return;
        }
        stream_send(s);
        stream_unref(s);
}

/* ---- receiving ---- */

static void stream_recv(Stream *s)
{
        struct io_uring_sqe *sqe;

        if (s->closed || s->connecting || s->closing || s->read_eof || s->paused ||
            buf_size(&s->held) > 0 || !s->can_read || s->recv_op.inflight || s->rpoll_op.inflight)
                return;
        sqe = loop_get_sqe(s->loop, &s->recv_op);
        if (!sqe) {
                stream_finish(s, -ENOMEM);
                return;
        }
        if (s->multishot) {
                /* One SQE delivers until EOF, error, pause or an empty ring. */
                io_uring_prep_recv_multishot(sqe, s->fd, NULL, 0, 0);
                sqe->flags |= IOSQE_BUFFER_SELECT;
                sqe->buf_group = s->bgid;
        } else if (s->is_socket)
                io_uring_prep_recv(sqe, s->fd, s->rbuf, STREAM_RBUF_SIZE, 0);
        else
                io_uring_prep_read(sqe, s->fd, s->rbuf, STREAM_RBUF_SIZE, (uint64_t)-1);
        stream_ref(s);
}

static void stream_deliver(Stream *s, const uint8_t *data, size_t n)
{
        loop_note_callback(s->loop);
        stream_ref(s);
        s->ops->on_data(s, data, n, s->userdata);
        stream_unref(s);
}

static void recv_op_fn(Loop *l, LoopOp *op, const struct io_uring_cqe *cqe)
{
        Stream *s = container_of(op, Stream, recv_op);
        bool final = !op->inflight;
        int res = cqe->res;
        const uint8_t *data;

        data = s->multishot ? loop_buf_ring_data(l, cqe) : s->rbuf;
        if (s->closed || loop_draining(l)) {
                loop_buf_ring_recycle(l, cqe);
                if (final)
                        stream_unref(s);
                return;
        }
        stream_ref(s); /* across the callback, whatever happens to the op */
        if (res > 0 && data) {
                if (s->closing)
                        ; /* closing: input is dropped */
                else if (s->paused || buf_size(&s->held) > 0) {
                        /* Already on its way when the owner paused: keep it. */
                        if (buf_append(&s->held, data, (size_t)res) < 0)
                                stream_finish(s, -ENOMEM);
                } else
                        stream_deliver(s, data, (size_t)res);
                loop_buf_ring_recycle(l, cqe);
                if (final)
                        stream_recv(s);
        } else if (res == 0) {
                s->read_eof = true;
                stream_after_flush(s); /* if output remains, its completion closes */
        } else if (res == -EINTR || res == -ECANCELED || res == -ENOBUFS || (res > 0 && !data)) {
                /* ENOBUFS: the ring ran dry and the multishot receive ended; buffers
                 * come back as their CQEs are consumed, so just ask again. */
                loop_buf_ring_recycle(l, cqe);
                if (final)
                        stream_recv(s);
        } else if (res == -EAGAIN) {
                if (final)
                        stream_arm_poll(s, &s->rpoll_op, POLLIN);
        } else
                stream_finish(s, res);
        if (final)
                stream_unref(s); /* the op's */
        stream_unref(s);
}

static void rpoll_op_fn(Loop *l, LoopOp *op, const struct io_uring_cqe *cqe)
{
        Stream *s = container_of(op, Stream, rpoll_op);

        if (!s->closed && !loop_draining(l))
                stream_recv(s);
        stream_unref(s);
}

/* ---- prepare step ---- */

static void stream_prepare_fn(LoopPrepare *p)
{
        Stream *s = container_of(p, Stream, prep);

        if (s->closed)
                return;
        stream_ref(s);
        if (buf_size(&s->held) > 0 && !s->paused && !s->closing) {
                /* Delivered in one piece, like any receive; the owner may pause again
                 * or free the stream inside. */
                Buf h = s->held;
                s->held = (Buf){};
                stream_deliver(s, buf_head(&h), buf_size(&h));
                if (!s->closed && buf_size(&s->held) == 0) {
                        buf_clear(&h);
                        s->held = h; /* keep the allocation */
                } else
                        buf_done(&h);
        }
        stream_send(s);
        stream_recv(s);
        stream_after_flush(s);
        stream_unref(s);
}

/* ---- public ---- */

static void stream_detach(LoopLink *k)
{
        Stream *s = container_of(k, Stream, link);

        s->loop = NULL;
        s->recv_op.inflight = s->send_op.inflight = false;
        s->rpoll_op.inflight = s->wpoll_op.inflight = false;
}

static int stream_new_internal(Loop *l, int fd, bool connecting, const StreamOps *ops,
                               void *userdata, Stream **ret)
{
        Stream *s;
        struct stat st;
        int flags, r;

        assert(l);
        assert(ops);
        assert(ret);
        if (fd < 0)
                return -EBADF;
        if (fstat(fd, &st) < 0)
                return -errno;
        flags = fcntl(fd, F_GETFL);
        if (flags < 0)
                return -errno;
        r = fd_nonblock(fd, true);
        if (r < 0)
                return r;

        s = new0(Stream, 1);
        if (!s)
                return -ENOMEM;
        s->loop = l;
        s->n_ref = 1;
        s->fd = fd;
        s->is_socket = S_ISSOCK(st.st_mode);
        s->can_read = (flags & O_ACCMODE) != O_WRONLY;
        s->can_write = (flags & O_ACCMODE) != O_RDONLY;
        s->ops = ops;
        s->userdata = userdata;
        s->connecting = connecting;
        stream_set_limits(s, NULL);
        s->recv_op = (LoopOp){.fn = recv_op_fn, .kind = LOOP_OP_STREAM_RECV};
        s->send_op = (LoopOp){.fn = send_op_fn, .kind = LOOP_OP_STREAM_SEND};
        s->rpoll_op = (LoopOp){.fn = rpoll_op_fn, .kind = LOOP_OP_STREAM_POLL};
        s->wpoll_op = (LoopOp){.fn = wpoll_op_fn, .kind = LOOP_OP_STREAM_POLL};
        s->prep.fn = stream_prepare_fn;
        if (s->can_read && s->is_socket && loop_buf_ring(l, &s->bgid) >= 0)
                s->multishot = true;
        else if (s->can_read) {
                s->rbuf = malloc(STREAM_RBUF_SIZE);
                if (!s->rbuf) {
                        free(s);
                        return -ENOMEM;
                }
        }
        s->link.detach = stream_detach;
        loop_link(l, &s->link);

        if (connecting)
                stream_arm_poll(s, &s->wpoll_op, POLLOUT);
        else
                stream_kick(s);
        *ret = s;
        return 0;
}

int stream_new(Loop *l, int fd, const StreamOps *ops, void *userdata, Stream **ret)
{
        return stream_new_internal(l, fd, false, ops, userdata, ret);
}

int stream_new_connecting(Loop *l, int fd, const StreamOps *ops, void *userdata, Stream **ret)
{
        return stream_new_internal(l, fd, true, ops, userdata, ret);
}

Stream *stream_free(Stream *s)
{
        if (!s || s->dead)
                return NULL;
        s->dead = true;
        if (!s->closed)
                stream_shut(s);
        if (s->loop) {
                loop_prepare_dequeue(s->loop, &s->prep);
                loop_unlink(s->loop, &s->link);
        }
        stream_unref(s);
        return NULL;
}

void stream_set_limits(Stream *s, const StreamLimits *lim)
{
        StreamLimits l = lim ? *lim : (StreamLimits){};

        if (l.high_water == 0)
                l.high_water = STREAM_HIGH_WATER_DEFAULT;
        if (l.low_water == 0)
                l.low_water = MIN((size_t)STREAM_LOW_WATER_DEFAULT, l.high_water / 4);
        if (l.hard_limit == 0)
                l.hard_limit = MAX((size_t)STREAM_HARD_LIMIT_DEFAULT, l.high_water);
        l.low_water = MIN(l.low_water, l.high_water);
        l.hard_limit = MAX(l.hard_limit, l.high_water);
        s->lim = l;
}

int stream_write(Stream *s, const void *data, size_t size)
{
        size_t total;
        int r;

        if (s->closed || s->closing || !s->loop)
                return -ENOTCONN;
        if (!s->can_write)
                return -EBADF;
        if (s->write_shutdown)
                return -EPIPE;
        if (size == 0)
                return 0;
        if (size_add_overflow(stream_queued(s), size, &total) || total > s->lim.hard_limit)
                return -ENOBUFS;
        r = buf_append(&s->pending, data, size);
        if (r < 0)
                return r;
        if (total >= s->lim.high_water)
                s->congested = true;
        if (!s->send_op.inflight)
                stream_kick(s);
        return 0;
}

int stream_shutdown_write(Stream *s)
{
        if (s->closed || !s->loop)
                return -ENOTCONN;
        if (!s->can_write)
                return -EBADF;
        s->write_shutdown = true;
        stream_kick(s);
        return 0;
}

void stream_close(Stream *s)
{
        if (s->closed || s->closing)
                return;
        s->closing = true;
        buf_clear(&s->held);
        if (s->loop)
                loop_cancel_op(s->loop, &s->recv_op);
        if (!s->loop) {
                stream_finish(s, 0);
                return;
        }
        stream_kick(s);
}

void stream_pause_read(Stream *s)
{
        if (s->paused)
                return;
        s->paused = true;
        /* A multishot receive would keep delivering: stop it so that unread bytes stay
         * in the kernel and the peer feels the back-pressure. */
        if (s->multishot && s->loop)
                loop_cancel_op(s->loop, &s->recv_op);
}

void stream_resume_read(Stream *s)
{
        if (!s->paused)
                return;
        s->paused = false;
        stream_kick(s);
}

size_t stream_queued(const Stream *s)
{
        if (s->closed)
                return 0;
        return buf_size(&s->out) + buf_size(&s->pending);
}

bool stream_congested(const Stream *s)
{
        /* From crossing the high-water mark until on_drain. */
        return !s->closed && s->congested;
}

int stream_fd(const Stream *s)
{
        return s->fd;
}

void stream_set_userdata(Stream *s, void *userdata)
{
        s->userdata = userdata;
}
