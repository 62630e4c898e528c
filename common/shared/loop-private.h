/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The loop's internal interface for the objects built on it (stream.c): typed
 * operations, the prepare queue and detaching at loop_free(). Not for daemons.
 *
 * An operation (LoopOp) is embedded in the object that owns it; its address is the
 * SQE's user_data. The loop counts every SQE it hands out and clears op->inflight when
 * the last CQE of the operation arrives (no IORING_CQE_F_MORE), before calling op->fn,
 * so the handler may re-arm the same op. The owner keeps itself allocated while any of
 * its ops is in flight. */

#include <liburing.h>

#include "shared/loop.h"

typedef struct LoopOp LoopOp;
typedef void (*loop_op_fn)(Loop *l, LoopOp *op, const struct io_uring_cqe *cqe);

typedef enum LoopOpKind {
        LOOP_OP_TIMEOUT,
        LOOP_OP_POLL,
        LOOP_OP_SIGNAL,
        LOOP_OP_CHILD,
        LOOP_OP_ACCEPT,
        LOOP_OP_STREAM_RECV,
        LOOP_OP_STREAM_SEND,
        LOOP_OP_STREAM_POLL,
} LoopOpKind;

struct LoopOp {
        loop_op_fn fn;
        uint8_t kind; /* LoopOpKind, for debugging */
        bool inflight;
};

/* Returns an SQE whose user_data is op (op->inflight set), submitting the queue first
 * if it is full; NULL only if the ring is broken. */
struct io_uring_sqe *loop_get_sqe(Loop *l, LoopOp *op);
/* Asks the kernel to cancel op; its final CQE (-ECANCELED or its real result) still
 * arrives. No-op if op is not in flight. */
void loop_cancel_op(Loop *l, LoopOp *op);
/* True while loop_free() drains the ring: handlers release their objects and call no
 * user callbacks. */
bool loop_draining(Loop *l);

/* The loop's provided-buffer ring (buffer group returned in *ret_bgid) for multishot
 * receives, set up on first use; -EINVAL/-ENOSYS etc. if the kernel cannot (then
 * callers use single-shot receives into their own buffers). A CQE with
 * IORING_CQE_F_BUFFER lends the buffer loop_buf_ring_data() names; give it back with
 * loop_buf_ring_recycle() as soon as its bytes were consumed. */
int loop_buf_ring(Loop *l, uint16_t *ret_bgid);
const uint8_t *loop_buf_ring_data(Loop *l, const struct io_uring_cqe *cqe);
void loop_buf_ring_recycle(Loop *l, const struct io_uring_cqe *cqe);

/* Work queued for the next prepare step (flushing a stream's output, deferred
 * callbacks). Intrusive, O(1) to queue and dequeue; the loop runs each entry once per
 * queueing, in order. */
typedef struct LoopPrepare LoopPrepare;
struct LoopPrepare {
        LoopPrepare *next, *prev;
        void (*fn)(LoopPrepare *p);
        bool queued;
};
void loop_prepare_queue(Loop *l, LoopPrepare *p);
/* A prepare entry that called user code says so: the iteration then does not block in
 * the kernel, since that code may have changed what the caller waits for. */
void loop_note_callback(Loop *l);
void loop_prepare_dequeue(Loop *l, LoopPrepare *p);

/* Objects that live on the loop register here so that loop_free() can detach the ones
 * the owner did not free: fn is called after the ring was drained, and the object must
 * forget the loop (its later *_free() only releases memory and fds). */
typedef struct LoopLink LoopLink;
struct LoopLink {
        LoopLink *next, *prev;
        void (*detach)(LoopLink *k);
};
void loop_link(Loop *l, LoopLink *k);
void loop_unlink(Loop *l, LoopLink *k);
