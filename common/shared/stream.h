/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* A byte stream over a connected socket or pipe, on the loop.
 *
 * Receiving: one recv (multishot with a provided-buffer ring where available) keeps
 * delivering bytes to on_data until the peer closes; stream_pause_read() stops
 * delivering (back-pressure towards the peer) and stream_resume_read() restarts.
 *
 * Sending: stream_write() copies into the output queue; queued bytes are coalesced
 * into as few send SQEs as possible and sent at the next prepare step. The queue has a
 * high-water mark: above it stream_congested() is true, and on_drain fires once when
 * it falls below the low-water mark. Past the hard limit stream_write() fails with
 * -ENOBUFS: the caller is expected to have stopped producing long before.
 *
 * on_close fires exactly once: error 0 for an orderly EOF from the peer after all
 * output was flushed or for stream_close(), -errno otherwise. The Stream stays valid
 * until stream_free(), which may be called from inside any callback. */

#include "basic/macro.h"
#include "shared/loop.h"

typedef struct Stream Stream;

typedef struct StreamOps {
        /* Bytes arrived. The callee must consume all of them (buffer what it can't use
         * yet, or pause). */
        void (*on_data)(Stream *s, const void *data, size_t size, void *userdata);
        void (*on_drain)(Stream *s, void *userdata);
        void (*on_close)(Stream *s, int error, void *userdata);
} StreamOps;

typedef struct StreamLimits {
        size_t high_water; /* default 1 MiB */
        size_t low_water; /* default 256 KiB */
        size_t hard_limit; /* default 64 MiB */
} StreamLimits;

/* Takes ownership of fd (sockets and pipes; set non-blocking by the stream) on success;
 * on failure the fd is still the caller's to close.
 *
 * Sockets are read and written with IORING_OP_RECV/SEND, anything else (pipes, ttys)
 * with IORING_OP_READ/WRITE. The fd's access mode decides the directions: a pipe end
 * opened O_RDONLY is a read-only stream (stream_write() fails with -EBADF), one opened
 * O_WRONLY is write-only (it never delivers data; stream_shutdown_write() closes it and
 * on_close(0) follows once the queue is flushed). A reader that goes away shows as
 * on_close(-EPIPE) on the next write: processes writing to pipes must ignore SIGPIPE. */
int stream_new(Loop *l, int fd, const StreamOps *ops, void *userdata, Stream **ret);
/* Like stream_new() for a socket whose non-blocking connect() is in progress (returned
 * EINPROGRESS): waits until it is writable, checks SO_ERROR, then starts reading and
 * sends what stream_write() queued meanwhile. A failed connect arrives as
 * on_close(-errno), e.g. -ECONNREFUSED. */
int stream_new_connecting(Loop *l, int fd, const StreamOps *ops, void *userdata, Stream **ret);
Stream *stream_free(Stream *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Stream *, stream_free);
void stream_set_limits(Stream *s, const StreamLimits *lim);

/* Queues a copy of data. -ENOBUFS past the hard limit, -ENOTCONN once closing or closed,
 * -EPIPE after stream_shutdown_write(), -EBADF on a read-only stream. */
int stream_write(Stream *s, const void *data, size_t size);
/* Half-close after the queue is flushed (shutdown(SHUT_WR) for sockets, close for
 * pipes). */
int stream_shutdown_write(Stream *s);
/* Flush then close; on_close(0) follows (from the loop, never from inside this call).
 * Bytes that arrive meanwhile are dropped. If the peer keeps sending after that, the
 * kernel resets the connection, which can destroy data the peer has not read yet: for
 * an end the peer must see in full, stream_shutdown_write() and wait for its EOF. */
void stream_close(Stream *s);
void stream_pause_read(Stream *s);
void stream_resume_read(Stream *s);
/* Bytes written but not yet accepted by the kernel; 0 once closed. */
size_t stream_queued(const Stream *s);
/* True from the moment the queue reaches high_water until on_drain. */
bool stream_congested(const Stream *s);
/* The fd, or -EBADF once closed (the fd is closed when on_close fires). */
int stream_fd(const Stream *s);
void stream_set_userdata(Stream *s, void *userdata);
