/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* A cluster-protocol connection: a Stream carrying length-prefixed frames of
 * Cluster__Envelope (see proto/cluster.proto), optionally inside TLS 1.3.
 *
 * With a TlsIdentity the connection runs TLS (server or client side) over the stream's
 * buffers: GnuTLS is driven through push/pull callbacks on memory, never on the fd.
 * on_handshake runs once the handshake completed; it checks the peer (fingerprint
 * pinning) and returns < 0 to refuse, which closes the connection.
 *
 * Frames above max_frame close the connection after an Error(ERROR_TOO_LARGE) is sent;
 * frames that do not unpack close it after Error(ERROR_PROTOCOL). Neither reaches
 * on_message. */

#include <sys/socket.h>

#include "basic/macro.h"
#include "cluster.pb-c.h"
#include "shared/loop.h"
#include "shared/stream.h"
#include "shared/tls.h"

typedef struct Conn Conn;

typedef struct ConnOps {
        /* msg is freed after the callback returns. */
        void (*on_message)(Conn *c, const Cluster__Envelope *msg, void *userdata);
        /* The output queue fell below the low-water mark after being congested. */
        void (*on_drain)(Conn *c, void *userdata);
        /* Exactly once. error 0 = orderly close; reason: one human line or NULL. The
         * owner frees the Conn (here or later). */
        void (*on_close)(Conn *c, int error, const char *reason, void *userdata);
        /* TLS only. */
        int (*on_handshake)(Conn *c, void *userdata);
} ConnOps;

typedef struct ConnConfig {
        TlsIdentity *tls; /* NULL: plain (local Unix socket) */
        bool server; /* TLS role */
        size_t max_frame; /* 0 = CONN_MAX_FRAME_DEFAULT */
        usec_t handshake_timeout; /* 0 = 10 s */
        StreamLimits limits; /* zeros = stream defaults */
} ConnConfig;

#define CONN_MAX_FRAME_DEFAULT (16U * 1024 * 1024)

/* Takes ownership of fd, which is connected (or connecting: a non-blocking connect in
 * progress completes before the first byte is sent). */
int conn_new(Loop *l, int fd, const ConnConfig *cfg, const ConnOps *ops, void *userdata,
             Conn **ret);
/* Resolves address ("host:port", "[v6]:port", "unix:/path" or "/path"), connects
 * without blocking the loop, then behaves as conn_new(). Connection failures arrive
 * through on_close with -errno. */
int conn_connect(Loop *l, const char *address, const ConnConfig *cfg, const ConnOps *ops,
                 void *userdata, Conn **ret);
Conn *conn_free(Conn *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Conn *, conn_free);

/* Packs and queues one message. -ENOBUFS when the stream's hard limit is hit, -ENOTCONN
 * after close. Messages queued before the TLS handshake completes are sent after it. */
int conn_send(Conn *c, const Cluster__Envelope *msg);
/* Queues Error{code, message} and closes once it is flushed. */
int conn_send_error_and_close(Conn *c, Cluster__ErrorCode code, uint64_t request_id,
                              const char *format, ...) _printf_(4, 5);
/* Flush, then close; on_close(0, reason) follows. */
void conn_close(Conn *c, const char *reason);

/* Changes the frame limit from now on (both directions), e.g. raised once the peer is
 * authenticated: a peer not yet known should not make us buffer megabytes. */
void conn_set_max_frame(Conn *c, size_t max_frame);

bool conn_congested(const Conn *c);
size_t conn_queued(const Conn *c);
void conn_pause_read(Conn *c);
void conn_resume_read(Conn *c);
void conn_set_userdata(Conn *c, void *userdata);
void *conn_get_userdata(const Conn *c);

/* "127.0.0.1:40112", "[::1]:40112", "unix" */
const char *conn_peer_address(const Conn *c);
/* SO_PEERCRED of a Unix socket peer; -ENOTSOCK/-EAFNOSUPPORT otherwise. */
int conn_peer_cred(const Conn *c, struct ucred *ret);
/* SHA-256 of the peer certificate's DER; -ENODATA without TLS or before the handshake. */
int conn_peer_fingerprint(const Conn *c, uint8_t ret[32]);
