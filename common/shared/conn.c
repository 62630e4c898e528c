/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Cluster-protocol connections. See conn.h for the contract.
 *
 * Data path. Receiving: stream bytes -> (TLS: tls_session_feed, then decrypted straight
 * into the frame decoder's buffer) -> frame_decoder_next -> envelope_check ->
 * on_message. Frames are decoded one at a time and only while not paused, so a paused
 * connection holds at most what the stream already delivered. Sending: conn_send packs
 * the envelope straight into `out`; `out` is handed on (encrypted, or written to the
 * stream) at once, or, when conn_send is called from inside our own on_message, once
 * the whole batch of received bytes is handled: answers to a burst of requests then
 * share TLS records and stream writes.
 *
 * Closing. Every way to the end goes through conn_begin_close (flush what may be sent,
 * close_notify, half-close, read until the peer's EOF; on_close follows the stream's)
 * or conn_abort (now, when nothing more can be sent, or when closing took too long).
 * on_close fires once, from the loop, never from inside a call the owner made: ends
 * decided inside such a call go through conn_end_later and a zero timer. A peer's EOF
 * first delivers what is still buffered.
 *
 * Lifetime: the owner's reference plus one around each callback, so conn_free() is
 * safe from any callback; after each callback the code checks whether the Conn died or
 * started closing. */

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "basic/alloc-util.h"
#include "basic/buf.h"
#include "basic/fd-util.h"
#include "basic/string-util.h"
#include "shared/conn.h"
#include "shared/frame.h"
#include "shared/socket-util.h"

/* TLS reaches a connection only through a TlsIdentity, which only tls.c makes. Weak
 * references keep a program that never makes one (cluster-ai, which speaks the local
 * socket) from linking tls.c and with it GnuTLS, whose loading and initialisation cost
 * about 1 ms of every command's start. Programs that call tls_identity_load_or_create()
 * link tls.c and every one of these resolves. */
#pragma weak tls_identity_ref
#pragma weak tls_identity_unref
#pragma weak tls_session_new
#pragma weak tls_session_free
#pragma weak tls_session_feed
#pragma weak tls_session_handshake_done
#pragma weak tls_session_write
#pragma weak tls_session_read
#pragma weak tls_session_pending_output
#pragma weak tls_session_consume_output
#pragma weak tls_session_bye
#pragma weak tls_session_peer_fingerprint
#pragma weak tls_session_error

/* Plain connections never touch tls.c: with it not linked these must not be called. */
static TlsIdentity *identity_ref(TlsIdentity *id)
{
        return id ? tls_identity_ref(id) : NULL;
}

static TlsIdentity *identity_unref(TlsIdentity *id)
{
        return id ? tls_identity_unref(id) : NULL;
}

#define CONN_HANDSHAKE_TIMEOUT_DEFAULT (10 * USEC_PER_SEC)
/* How long a closing connection may take to flush before it is cut. */
#define CONN_CLOSE_TIMEOUT (5 * USEC_PER_SEC)
/* Plaintext taken from TLS per step: a few records. */
#define CONN_TLS_READ_SIZE (64U * 1024)
#define CONN_BUF_KEEP_MAX (1024U * 1024)
#define CONN_HIGH_WATER_DEFAULT (1024U * 1024)
#define CONN_HARD_LIMIT_DEFAULT (64U * 1024 * 1024)

/* A host name resolved off the loop: getaddrinfo() blocks for as long as the resolver
 * takes, seconds when a server does not answer. A detached thread resolves and then
 * signals an eventfd the loop watches. Shared by the Conn and the thread, so either may
 * finish first: conn_free() during resolution just drops its reference. */
typedef struct Resolve {
        int n_ref; /* atomic */
        int done; /* atomic: the result below is written */
        int efd;
        char *address;
        int error;
        struct sockaddr_storage sa;
        socklen_t len;
} Resolve;

struct Conn {
        unsigned n_ref;
        Loop *loop;
        Stream *stream;
        TlsSession *tls;
        FrameDecoder dec;
        ConnOps ops;
        void *userdata;

        Buf out; /* packed frames not yet handed to TLS or the stream */
        size_t high_water, hard_limit;
        usec_t handshake_timeout;
        LoopSource *timer; /* handshake timeout, then the close timeout */
        LoopSource *kick; /* deferred work: resume, connect failures */

        char peer_address[SOCKET_ADDRESS_STRING_MAX];
        char *connect_address; /* conn_connect(): for messages and as a fallback */
        Resolve *resolve; /* conn_connect() to a host name, while resolving */
        LoopSource *resolve_io;
        ConnConfig resolve_cfg; /* its tls holds a reference meanwhile */

        /* An end decided inside a call of the owner (a failed connect, a failed write),
         * delivered from the loop by the kick. */
        bool pending_end;
        int pending_error;
        char *pending_reason;

        bool ready; /* frames may flow: plain, or TLS handshake accepted */
        bool handshake_seen; /* TLS handshake completion was handled */
        bool got_data; /* the peer sent something: the connect worked */
        bool paused;
        bool closing; /* conn_begin_close(): waiting for the stream to flush */
        bool closed; /* on_close fired */
        bool dead; /* conn_free() */
        unsigned dispatching;
        int close_error;
        char *close_reason;

        /* conn_close() during the TLS handshake: close once it completed and what was
         * queued is flushed. */
        bool close_requested;
        char *close_request;

        /* The peer closed its side and the stream is gone, but frames it sent before
         * may still wait in the decoder (we were paused): they are delivered first. */
        bool peer_eof;
};

static void conn_process(Conn *c);
static void conn_flush(Conn *c);

static void conn_ref(Conn *c)
{
        c->n_ref++;
}

static void conn_unref(Conn *c)
{
        assert(c->n_ref > 0);
        if (--c->n_ref > 0)
                return;
        if (c->tls)
                tls_session_free(c->tls);
        frame_decoder_done(&c->dec);
        buf_done(&c->out);
        free(c->close_reason);
        free(c->close_request);
        free(c->pending_reason);
        free(c->connect_address);
        free(c);
}

/* True if the owner is gone or the connection is on its way out: stop working. */
static bool conn_stopped(const Conn *c)
{
        return c->dead || c->closed || c->closing;
}

static void conn_update_peer_address(Conn *c)
{
        struct sockaddr_storage sa;
        socklen_t len = sizeof(sa);
        int fd;

        if (c->peer_address[0] || !c->stream)
                return;
        fd = stream_fd(c->stream);
        if (fd < 0 || getpeername(fd, (struct sockaddr *)&sa, &len) < 0)
                return;
        if (socket_address_to_string((struct sockaddr *)&sa, len, c->peer_address,
                                     sizeof(c->peer_address)) < 0)
                c->peer_address[0] = 0;
}

static void resolve_unref(Resolve *r)
{
        if (!r || __atomic_sub_fetch(&r->n_ref, 1, __ATOMIC_ACQ_REL) > 0)
                return;
        safe_close(r->efd);
        free(r->address);
        free(r);
}

static void *resolve_thread(void *p)
{
        Resolve *r = p;

        r->error = socket_address_parse(r->address, &r->sa, &r->len);
        __atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
        (void)eventfd_write(r->efd, 1);
        resolve_unref(r);
        return NULL;
}

/* Stops waiting for a resolution (the thread finishes on its own). */
static void conn_resolve_drop(Conn *c)
{
        c->resolve_io = loop_source_free(c->resolve_io);
        resolve_unref(TAKE_PTR(c->resolve));
        c->resolve_cfg.tls = identity_unref(c->resolve_cfg.tls);
}

/* The end: stops everything and tells the owner, once. */
static void conn_finish(Conn *c, int error, const char *reason)
{
        if (c->closed)
                return;
        conn_update_peer_address(c);
        c->closed = true;
        c->closing = false;
        c->timer = loop_source_free(c->timer);
        c->kick = loop_source_free(c->kick);
        conn_resolve_drop(c);
        if (c->dead || !c->ops.on_close)
                return;
        conn_ref(c);
        c->ops.on_close(c, error, reason, c->userdata);
        conn_unref(c);
}

/* Cuts the connection now, without flushing. */
static void conn_abort(Conn *c, int error, const char *reason)
{
        _cleanup_free_ char *r = reason ? strdup(reason) : NULL;

        conn_update_peer_address(c);
        c->stream = stream_free(c->stream);
        conn_finish(c, error, r ?: reason);
}

static int conn_kick(Conn *c);

/* Ends the connection from the loop: for failures found inside the owner's calls, where
 * on_close must not run yet. */
static void conn_end_later(Conn *c, int error, const char *reason)
{
        if (c->closed || c->pending_end)
                return;
        c->pending_end = true;
        c->closing = true; /* no more sending or receiving */
        c->pending_error = error;
        if (free_and_strdup(&c->pending_reason, reason) < 0)
                c->pending_reason = NULL;
        if (conn_kick(c) < 0)
                conn_abort(c, error, reason); /* no memory for a timer: now, then */
}

static void timer_fn(LoopSource *s, void *userdata)
{
        Conn *c = userdata;

        if (c->closed || c->dead)
                return;
        if (c->closing) {
                conn_abort(c, c->close_error, c->close_reason);
                return;
        }
        if (!c->ready)
                conn_abort(c, -ETIMEDOUT, "handshake timed out");
}

static int conn_arm_timer(Conn *c, usec_t when)
{
        if (c->timer)
                return loop_timer_set(c->timer, when);
        return loop_add_timer(c->loop, when, timer_fn, c, &c->timer);
}

/* Flush what may still be sent, say goodbye, and close once the stream is flushed; the
 * owner hears (error, reason). */
static void conn_begin_close(Conn *c, int error, const char *reason)
{
        if (c->closed || c->closing)
                return;
        if (!c->stream || c->peer_eof) {
                conn_end_later(c, error, reason); /* nothing left to flush to */
                return;
        }
        c->close_error = error;
        if (free_and_strdup(&c->close_reason, reason) < 0)
                c->close_reason = NULL;
        /* Frames held for a peer we never accepted are never sent. */
        if (!c->ready)
                buf_clear(&c->out);
        conn_flush(c);
        c->closing = true;
        if (c->tls && tls_session_handshake_done(c->tls)) {
                tls_session_bye(c->tls);
                conn_flush(c);
        }
        /* A half-close, not a close: the peer gets everything we sent, then EOF, and we
         * keep reading (and dropping) until its EOF. Closing with its unread bytes in
         * our socket would make the kernel answer with a reset, which can destroy the
         * Error we just sent before the peer read it. The timer bounds the wait. */
        if (c->paused)
                stream_resume_read(c->stream);
        if (stream_shutdown_write(c->stream) < 0)
                stream_close(c->stream);
        if (conn_arm_timer(c, loop_now(c->loop) + CONN_CLOSE_TIMEOUT) < 0)
                conn_abort(c, error, reason);
}

/* Hands `out` on and moves TLS output to the stream. */
static void conn_flush(Conn *c)
{
        int r = 0;

        /* Not gated on `closing`: conn_begin_close flushes its close_notify after
         * setting it; nobody else queues anything once it is set. */
        if (c->closed || !c->stream || c->pending_end || c->peer_eof)
                return;
        if (c->tls && tls_session_error(c->tls))
                buf_clear(&c->out); /* the session is dead; only its alert goes out */
        if (c->ready && buf_size(&c->out) > 0) {
                if (c->tls)
                        r = tls_session_write(c->tls, buf_head(&c->out), buf_size(&c->out));
                else
                        r = stream_write(c->stream, buf_head(&c->out), buf_size(&c->out));
                buf_clear(&c->out);
                if (c->out.cap > CONN_BUF_KEEP_MAX)
                        buf_done(&c->out); /* an idle connection keeps no megabytes */
                if (r < 0) {
                        conn_end_later(c, r, "failed to queue output");
                        return;
                }
        }
        if (c->tls) {
                const void *p;
                size_t n = tls_session_pending_output(c->tls, &p);
                if (n > 0) {
                        r = stream_write(c->stream, p, n);
                        tls_session_consume_output(c->tls, n);
                        if (r < 0)
                                conn_end_later(c, r, "failed to queue output");
                }
        }
}

_printf_(4, 5) static void conn_fail(Conn *c, int error, Cluster__ErrorCode code,
                                     const char *format, ...)
{
        _cleanup_free_ char *reason = NULL;
        va_list ap;

        va_start(ap, format);
        if (vasprintf(&reason, format, ap) < 0)
                reason = NULL;
        va_end(ap);

        /* The peer learns why, if there is a channel to tell it. */
        if (!c->closing && !c->closed && c->stream &&
            (!c->tls || tls_session_handshake_done(c->tls))) {
                Cluster__Error err = CLUSTER__ERROR__INIT;
                Cluster__Envelope e = CLUSTER__ENVELOPE__INIT;

                err.code = code;
                err.message = reason ?: (char *)"error";
                e.msg_case = CLUSTER__ENVELOPE__MSG_ERROR;
                e.error = &err;
                if (!c->ready)
                        buf_clear(&c->out);
                if (frame_encode(&c->out, &e) >= 0)
                        c->ready = true;
        }
        conn_begin_close(c, error, reason ?: "connection error");
}

static void conn_deliver(Conn *c, Cluster__Envelope *m)
{
        _cleanup_free_ char *why = NULL;

        if (envelope_check(m, &why) < 0) {
                conn_fail(c, -EBADMSG, CLUSTER__ERROR_CODE__ERROR_PROTOCOL,
                          "invalid %s message: %s", envelope_type_name(m), why ?: "out of memory");
                return;
        }
        if (c->ops.on_message)
                c->ops.on_message(c, m, c->userdata);
}

static void conn_frame_error(Conn *c, int r)
{
        if (r == -EMSGSIZE)
                conn_fail(c, r, CLUSTER__ERROR_CODE__ERROR_TOO_LARGE,
                          "frame of %zu bytes exceeds the limit of %zu",
                          frame_decoder_next_size(&c->dec), c->dec.max_frame);
        else if (r == -EBADMSG && frame_decoder_next_size(&c->dec) == 0)
                conn_fail(c, r, CLUSTER__ERROR_CODE__ERROR_PROTOCOL, "empty frame");
        else if (r == -EBADMSG)
                conn_fail(c, r, CLUSTER__ERROR_CODE__ERROR_PROTOCOL, "malformed frame of %zu bytes",
                          frame_decoder_next_size(&c->dec));
        else
                conn_abort(c, r, "out of memory");
}

/* Decrypts what TLS has into the decoder: > 0 bytes, 0 nothing, < 0 ended (handled). */
static ssize_t conn_tls_read(Conn *c)
{
        uint8_t *w = frame_decoder_reserve(&c->dec, CONN_TLS_READ_SIZE);
        ssize_t n;

        if (!w) {
                conn_abort(c, -ENOMEM, "out of memory");
                return -ENOMEM;
        }
        n = tls_session_read(c->tls, w, CONN_TLS_READ_SIZE);
        if (n > 0) {
                frame_decoder_commit(&c->dec, (size_t)n);
                return n;
        }
        if (n == 0)
                return 0;
        if (n == -EPIPE)
                conn_begin_close(c, 0, "peer closed the connection");
        else {
                _cleanup_free_ char *reason =
                        strprintf("TLS error: %s", strna(tls_session_error(c->tls)));
                conn_begin_close(c, (int)n, reason ?: "TLS error");
        }
        return n;
}

/* Decodes and delivers frames until paused, stopped, or out of input. */
static void conn_process(Conn *c)
{
        while (!conn_stopped(c) && !c->paused) {
                Cluster__Envelope *m = NULL;
                int r = frame_decoder_next(&c->dec, &m);

                if (r < 0) {
                        conn_frame_error(c, r);
                        return;
                }
                if (r > 0) {
                        conn_deliver(c, m);
                        cluster__envelope__free_unpacked(m, NULL);
                        continue;
                }
                if (c->tls && c->ready) {
                        ssize_t n = conn_tls_read(c);
                        if (n > 0)
                                continue;
                        if (n < 0)
                                return;
                }
                /* All input handled. */
                if (c->peer_eof)
                        conn_finish(c, buf_size(&c->dec.buf) > 0 ? -EPIPE : 0,
                                    buf_size(&c->dec.buf) > 0
                                            ? "peer closed the connection in the middle of a frame"
                                            : "peer closed the connection");
                return;
        }
}

static void conn_handshake_done(Conn *c)
{
        c->handshake_seen = true;
        conn_update_peer_address(c);
        if (c->timer)
                loop_timer_disarm(c->timer);
        if (c->ops.on_handshake) {
                int r = c->ops.on_handshake(c, c->userdata);
                if (conn_stopped(c))
                        return;
                if (r < 0) {
                        conn_begin_close(c, r, "peer refused after the TLS handshake");
                        return;
                }
        }
        c->ready = true;
        conn_flush(c); /* what was queued meanwhile */
        if (c->close_requested)
                conn_begin_close(c, 0, c->close_request);
}

/* End of a batch of work: send what the callbacks queued. */
static void conn_batch_end(Conn *c)
{
        assert(c->dispatching > 0);
        if (--c->dispatching == 0 && !c->closed && !c->dead)
                conn_flush(c);
}

static void stream_data_fn(Stream *s, const void *data, size_t size, void *userdata)
{
        Conn *c = userdata;
        int r;

        if (conn_stopped(c))
                return; /* closing: input is dropped */
        conn_ref(c);
        c->dispatching++;
        c->got_data = true;

        if (c->tls) {
                r = tls_session_feed(c->tls, data, size);
                if (r < 0) {
                        bool hs = tls_session_handshake_done(c->tls);
                        _cleanup_free_ char *reason =
                                strprintf("%s: %s", hs ? "TLS error" : "TLS handshake failed",
                                          strna(tls_session_error(c->tls)));
                        /* Flushes the alert that tells the peer. */
                        conn_begin_close(c, r, reason ?: "TLS error");
                } else if (!c->handshake_seen && tls_session_handshake_done(c->tls))
                        conn_handshake_done(c);
        } else {
                r = frame_decoder_feed(&c->dec, data, size);
                if (r < 0)
                        conn_abort(c, r, "out of memory");
        }
        conn_process(c);
        conn_batch_end(c);
        conn_unref(c);
}

static void stream_drain_fn(Stream *s, void *userdata)
{
        Conn *c = userdata;

        if (conn_stopped(c) || !c->ops.on_drain)
                return;
        conn_ref(c);
        c->ops.on_drain(c, c->userdata);
        conn_unref(c);
}

static void stream_close_fn(Stream *s, int error, void *userdata)
{
        Conn *c = userdata;
        _cleanup_free_ char *reason = NULL;

        if (c->closed)
                return;
        if (c->closing) {
                /* We decided to close: our reason stands, whatever the peer did. */
                conn_finish(c, c->close_error, c->close_reason);
                return;
        }
        if (c->connect_address && !c->got_data && error < 0)
                reason = strprintf("failed to connect to %s: %s", c->connect_address,
                                   strerror(-error));
        else if (error < 0)
                reason = strprintf("connection lost: %s", strerror(-error));
        else if (c->tls && !c->ready) {
                error = -ECONNRESET;
                reason = strdup("peer closed the connection during the TLS handshake");
        } else {
                /* Orderly EOF: deliver what is still buffered (now, or once resumed),
                 * then finish. */
                c->peer_eof = true;
                conn_ref(c);
                c->dispatching++;
                conn_process(c);
                conn_batch_end(c);
                conn_unref(c);
                return;
        }
        conn_finish(c, error, reason ?: "connection closed");
}

static const StreamOps conn_stream_ops = {
        .on_data = stream_data_fn,
        .on_drain = stream_drain_fn,
        .on_close = stream_close_fn,
};

static void kick_fn(LoopSource *s, void *userdata)
{
        Conn *c = userdata;

        if (c->closed || c->dead)
                return;
        if (c->pending_end) {
                conn_abort(c, c->pending_error, c->pending_reason);
                return;
        }
        if (c->closing)
                return;
        conn_ref(c);
        c->dispatching++;
        conn_process(c);
        conn_batch_end(c);
        conn_unref(c);
}

static int conn_kick(Conn *c)
{
        if (!c->loop)
                return -ESTALE;
        if (c->kick)
                return loop_timer_set(c->kick, 0);
        return loop_add_timer(c->loop, 0, kick_fn, c, &c->kick);
}

static int conn_alloc(Loop *l, const ConnConfig *cfg, const ConnOps *ops, void *userdata,
                      Conn **ret)
{
        Conn *c;

        c = new0(Conn, 1);
        if (!c)
                return -ENOMEM;
        c->n_ref = 1;
        c->loop = l;
        c->ops = *ops;
        c->userdata = userdata;
        frame_decoder_init(&c->dec, cfg->max_frame ?: CONN_MAX_FRAME_DEFAULT);
        c->handshake_timeout = cfg->handshake_timeout ?: CONN_HANDSHAKE_TIMEOUT_DEFAULT;
        /* Mirrors the stream's own defaulting of its limits. */
        c->high_water = cfg->limits.high_water ?: CONN_HIGH_WATER_DEFAULT;
        c->hard_limit = cfg->limits.hard_limit
                ?: MAX((size_t)CONN_HARD_LIMIT_DEFAULT, cfg->limits.high_water);
        *ret = c;
        return 0;
}

static int conn_start(Conn *c, int fd, bool connecting, const ConnConfig *cfg)
{
        int r;

        if (connecting)
                r = stream_new_connecting(c->loop, fd, &conn_stream_ops, c, &c->stream);
        else
                r = stream_new(c->loop, fd, &conn_stream_ops, c, &c->stream);
        if (r < 0) {
                safe_close(fd);
                return r;
        }
        stream_set_limits(c->stream, &cfg->limits);
        conn_update_peer_address(c);

        if (!cfg->tls) {
                c->ready = true;
                return 0;
        }
        if (!tls_session_new) /* an identity without tls.c linked: impossible, see above */
                return -EPROTONOSUPPORT;
        r = tls_session_new(cfg->tls, cfg->server, &c->tls);
        if (r < 0)
                return r;
        r = conn_arm_timer(c, loop_now(c->loop) + c->handshake_timeout);
        if (r < 0)
                return r;
        conn_flush(c); /* a client's hello */
        return 0;
}

int conn_new(Loop *l, int fd, const ConnConfig *cfg, const ConnOps *ops, void *userdata, Conn **ret)
{
        _cleanup_(conn_freep) Conn *c = NULL;
        int r;

        assert(l && cfg && ops && ret);

        r = conn_alloc(l, cfg, ops, userdata, &c);
        if (r < 0) {
                safe_close(fd);
                return r;
        }
        r = conn_start(c, fd, false, cfg);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

/* Ends a conn_connect() that failed before there was a stream, from the loop. */
static void conn_connect_failed(Conn *c, int error, const char *what)
{
        _cleanup_free_ char *reason =
                strprintf("%s %s: %s", what, c->connect_address, strerror(-error));
        conn_finish(c, error, reason ?: what);
}

static void resolve_io_fn(LoopSource *s, int fd, uint32_t revents, void *userdata)
{
        Conn *c = userdata;
        Resolve *r = c->resolve;
        char numeric[SOCKET_ADDRESS_STRING_MAX];
        ConnConfig cfg;
        int sfd = -EBADF, k;

        if (!r || !__atomic_load_n(&r->done, __ATOMIC_ACQUIRE))
                return;
        k = r->error;
        if (k >= 0)
                k = socket_address_to_string((struct sockaddr *)&r->sa, r->len, numeric,
                                             sizeof(numeric));
        cfg = c->resolve_cfg;
        cfg.tls = identity_ref(cfg.tls); /* conn_resolve_drop() drops the other */
        conn_resolve_drop(c);
        if (k < 0) {
                identity_unref(cfg.tls);
                conn_connect_failed(c, k, "failed to resolve");
                return;
        }

        conn_ref(c);
        /* The numeric form connects without another lookup. */
        k = socket_connect_start(numeric, &sfd);
        if (k >= 0)
                k = conn_start(c, sfd, k > 0, &cfg);
        identity_unref(cfg.tls);
        if (k < 0)
                conn_connect_failed(c, k, "failed to connect to");
        else {
                conn_flush(c); /* what was queued while resolving */
                if (!c->tls && c->close_requested)
                        conn_begin_close(c, 0, c->close_request);
        }
        conn_unref(c);
}

static int conn_resolve_start(Conn *c, const char *address, const ConnConfig *cfg)
{
        pthread_attr_t attr;
        pthread_t thread;
        Resolve *r;
        int k;

        r = new0(Resolve, 1);
        if (!r)
                return -ENOMEM;
        r->n_ref = 1;
        r->address = strdup(address);
        r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (!r->address || r->efd < 0) {
                k = r->address ? -errno : -ENOMEM;
                resolve_unref(r);
                return k;
        }
        c->resolve = r;
        c->resolve_cfg = *cfg;
        c->resolve_cfg.tls = identity_ref(cfg->tls);
        k = loop_add_io(c->loop, r->efd, POLLIN, resolve_io_fn, c, &c->resolve_io);
        if (k < 0) {
                conn_resolve_drop(c);
                return k;
        }

        /* The thread inherits the caller's signal mask: signals the loop takes through
         * its signalfd stay blocked there too. */
        k = -pthread_attr_init(&attr);
        if (k < 0) {
                conn_resolve_drop(c);
                return k;
        }
        (void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        (void)pthread_attr_setstacksize(&attr, 256 * 1024);
        __atomic_add_fetch(&r->n_ref, 1, __ATOMIC_ACQ_REL);
        k = -pthread_create(&thread, &attr, resolve_thread, r);
        pthread_attr_destroy(&attr);
        if (k < 0) {
                __atomic_sub_fetch(&r->n_ref, 1, __ATOMIC_ACQ_REL);
                conn_resolve_drop(c);
                return k;
        }
        return 0;
}

int conn_connect(Loop *l, const char *address, const ConnConfig *cfg, const ConnOps *ops,
                 void *userdata, Conn **ret)
{
        _cleanup_(conn_freep) Conn *c = NULL;
        int fd = -EBADF, r;

        assert(l && address && cfg && ops && ret);

        r = conn_alloc(l, cfg, ops, userdata, &c);
        if (r < 0)
                return r;
        c->connect_address = strdup(address);
        if (!c->connect_address)
                return -ENOMEM;

        r = socket_address_parse_numeric(address, &(struct sockaddr_storage){}, &(socklen_t){0});
        if (r == -EADDRNOTAVAIL) {
                /* A host name: resolve it off the loop, then connect. */
                r = conn_resolve_start(c, address, cfg);
                if (r < 0)
                        return r;
                *ret = TAKE_PTR(c);
                return 0;
        }
        if (r < 0)
                return r;

        r = socket_connect_start(address, &fd);
        if (r == -EINVAL || r == -ENOMEM)
                return r; /* not an address, or no memory: nothing was tried */
        if (r < 0) {
                /* Refused, unreachable, no such socket: like any later failure, the
                 * owner hears it through on_close, from the loop. */
                _cleanup_free_ char *reason =
                        strprintf("failed to connect to %s: %s", address, strerror(-r));
                c->pending_end = true;
                c->closing = true;
                c->pending_error = r;
                c->pending_reason = TAKE_PTR(reason);
                r = conn_kick(c);
                if (r < 0)
                        return r;
                *ret = TAKE_PTR(c);
                return 0;
        }
        r = conn_start(c, fd, r > 0, cfg);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

Conn *conn_free(Conn *c)
{
        if (!c || c->dead)
                return NULL;
        c->dead = true;
        conn_resolve_drop(c);
        c->timer = loop_source_free(c->timer);
        c->kick = loop_source_free(c->kick);
        c->stream = stream_free(c->stream);
        conn_unref(c);
        return NULL;
}

int conn_send(Conn *c, const Cluster__Envelope *msg)
{
        size_t n, total;
        int r;

        assert(msg);

        if (!c || c->closed || c->closing || c->dead || (!c->stream && !c->resolve) ||
            c->close_requested || c->peer_eof)
                return -ENOTCONN;
        n = cluster__envelope__get_packed_size(msg);
        /* What we would refuse to receive, the peer most likely refuses too. */
        if (n > c->dec.max_frame)
                return -EMSGSIZE;
        n += FRAME_HEADER_SIZE;
        /* The stream will hold ciphertext: 22 bytes more per record of up to 16 KiB.
         * Counting them here keeps the stream's own hard limit from refusing what we
         * accepted (which would end the connection). */
        if (c->tls)
                n += n / 512 + 64;
        if (size_add_overflow(conn_queued(c), n, &total) || total > c->hard_limit)
                return -ENOBUFS;
        r = frame_encode(&c->out, msg);
        if (r < 0)
                return r;
        if (c->dispatching == 0)
                conn_flush(c);
        return 0;
}

int conn_send_error_and_close(Conn *c, Cluster__ErrorCode code, uint64_t request_id,
                              const char *format, ...)
{
        _cleanup_free_ char *text = NULL;
        Cluster__Error err = CLUSTER__ERROR__INIT;
        Cluster__Envelope e = CLUSTER__ENVELOPE__INIT;
        va_list ap;
        int r;

        if (!c || c->closed || c->closing || c->dead || !c->stream || c->peer_eof)
                return -ENOTCONN;

        va_start(ap, format);
        r = vasprintf(&text, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;

        err.code = code;
        err.message = text;
        err.request_id = request_id;
        e.msg_case = CLUSTER__ENVELOPE__MSG_ERROR;
        e.error = &err;

        if (c->tls && !tls_session_handshake_done(c->tls)) {
                /* No channel yet: nothing can be said. */
                conn_begin_close(c, 0, text);
                return 0;
        }
        /* Called before the peer was accepted (from on_handshake): only the Error goes
         * out, nothing queued for the peer before. */
        if (!c->ready) {
                buf_clear(&c->out);
                c->ready = true;
        }
        r = frame_encode(&c->out, &e);
        if (r < 0)
                return r;
        conn_begin_close(c, 0, text);
        return 0;
}

void conn_close(Conn *c, const char *reason)
{
        if (!c || c->closed || c->closing || c->dead || c->close_requested)
                return;
        if ((c->tls && !c->handshake_seen && c->stream && !c->peer_eof) || c->resolve) {
                /* What was queued goes out once the peer is accepted (or, without TLS,
                 * once connected to the resolved address); then we close. */
                c->close_requested = true;
                if (reason && free_and_strdup(&c->close_request, reason) < 0)
                        c->close_request = NULL;
                return;
        }
        conn_begin_close(c, 0, reason);
}

void conn_set_max_frame(Conn *c, size_t max_frame)
{
        c->dec.max_frame = max_frame ?: CONN_MAX_FRAME_DEFAULT;
}

bool conn_congested(const Conn *c)
{
        if (c->closed)
                return false;
        /* Frames held for the handshake (or a host name's resolution) count too: once
         * it completes they all go to the stream at once, which then drains and calls
         * on_drain. */
        return (c->stream && stream_congested(c->stream)) || buf_size(&c->out) >= c->high_water;
}

size_t conn_queued(const Conn *c)
{
        size_t n = buf_size(&c->out);

        if (c->stream)
                n += stream_queued(c->stream);
        if (c->tls)
                n += tls_session_pending_output(c->tls, NULL);
        return n;
}

void conn_pause_read(Conn *c)
{
        if (c->paused)
                return;
        c->paused = true;
        if (c->stream)
                stream_pause_read(c->stream);
}

void conn_resume_read(Conn *c)
{
        if (!c->paused)
                return;
        c->paused = false;
        if (conn_stopped(c) || !c->stream)
                return;
        stream_resume_read(c->stream);
        /* Frames already buffered are delivered from the loop, not from inside this
         * call. */
        if (conn_kick(c) < 0)
                conn_end_later(c, -ENOMEM, "out of memory");
}

void conn_set_userdata(Conn *c, void *userdata)
{
        c->userdata = userdata;
}

void *conn_get_userdata(const Conn *c)
{
        return c->userdata;
}

const char *conn_peer_address(const Conn *c)
{
        conn_update_peer_address((Conn *)c);
        if (c->peer_address[0])
                return c->peer_address;
        return c->connect_address ?: "unknown";
}

int conn_peer_cred(const Conn *c, struct ucred *ret)
{
        int fd;

        if (!c->stream)
                return -ENOTCONN;
        fd = stream_fd(c->stream);
        if (fd < 0)
                return -ENOTCONN;
        return socket_peer_cred(fd, ret);
}

int conn_peer_fingerprint(const Conn *c, uint8_t ret[32])
{
        if (!c->tls)
                return -ENODATA;
        return tls_session_peer_fingerprint(c->tls, ret);
}
