/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Connections over real sockets on the loop: plain over socketpairs, TLS over TCP
 * loopback, with real certificates. */
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "basic/alloc-util.h"
#include "basic/buf.h"
#include "basic/fd-util.h"
#include "basic/string-util.h"
#include "shared/conn.h"
#include "shared/frame.h"
#include "shared/socket-util.h"

static char tmpdir[] = "/tmp/test-conn-XXXXXX";
static Loop *loop;
static TlsIdentity *server_id, *client_id, *stranger_id;

static void setup(void)
{
        strcpy(tmpdir, "/tmp/test-conn-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
        ck_assert_int_eq(loop_new(&loop), 0);
        ck_assert_int_eq(tls_identity_load_or_create(tmpdir, "server", "server", &server_id), 0);
        ck_assert_int_eq(tls_identity_load_or_create(tmpdir, "client", "client", &client_id), 0);
        ck_assert_int_eq(tls_identity_load_or_create(tmpdir, "stranger", "stranger", &stranger_id),
                         0);
}

static void teardown(void)
{
        server_id = tls_identity_unref(server_id);
        client_id = tls_identity_unref(client_id);
        stranger_id = tls_identity_unref(stranger_id);
        loop = loop_free(loop);
        (void)rm_rf(tmpdir);
}

/* One side of a test connection and what happened to it. */
typedef struct Peer {
        const char *name;
        Conn *conn;
        /* behaviour */
        bool echo_pings; /* answer each Ping with a Pong */
        const uint8_t *expect_fp; /* on_handshake refuses another fingerprint */
        bool error_on_refuse; /* ... with conn_send_error_and_close */
        unsigned pause_every; /* pause after so many task outputs */
        /* observations */
        unsigned n_messages, n_pongs, n_outputs, n_drains, n_handshakes;
        uint64_t next_nonce;
        size_t output_bytes;
        bool paused;
        LoopSource *resume_timer;
        Cluster__ErrorCode error_code;
        uint64_t error_request_id;
        char *error_message;
        bool closed;
        int close_error;
        char *close_reason;
        char peer_address[SOCKET_ADDRESS_STRING_MAX];
        char hello_name[32];
        uint8_t peer_fp[TLS_FINGERPRINT_SIZE];
        bool have_peer_fp;
} Peer;

static void peer_done(Peer *p)
{
        p->conn = conn_free(p->conn);
        p->resume_timer = loop_source_free(p->resume_timer);
        p->error_message = mfree(p->error_message);
        p->close_reason = mfree(p->close_reason);
}

static void run_until(const bool *flag)
{
        for (unsigned i = 0; i < 200000 && !*flag; i++)
                ck_assert_int_eq(loop_run_once(loop, USEC_INFINITY), 0);
        ck_assert(*flag);
}

static void run_until_both_closed(Peer *a, Peer *b)
{
        for (unsigned i = 0; i < 200000 && !(a->closed && b->closed); i++)
                ck_assert_int_eq(loop_run_once(loop, USEC_INFINITY), 0);
        ck_assert_msg(a->closed && b->closed, "%s closed %d, %s closed %d", a->name, a->closed,
                      b->name, b->closed);
}

static void send_ping(Conn *c, uint64_t nonce)
{
        Cluster__Ping ping = CLUSTER__PING__INIT;
        Cluster__Envelope e = CLUSTER__ENVELOPE__INIT;

        ping.nonce = nonce;
        e.msg_case = CLUSTER__ENVELOPE__MSG_PING;
        e.ping = &ping;
        ck_assert_int_eq(conn_send(c, &e), 0);
}

static void send_hello(Conn *c, const char *name)
{
        Cluster__Hello hello = CLUSTER__HELLO__INIT;
        Cluster__Envelope e = CLUSTER__ENVELOPE__INIT;

        hello.version = 1;
        hello.name = (char *)name;
        e.msg_case = CLUSTER__ENVELOPE__MSG_HELLO;
        e.hello = &hello;
        ck_assert_int_eq(conn_send(c, &e), 0);
}

static int send_output(Conn *c, uint64_t index, size_t size)
{
        Cluster__TaskOutput o = CLUSTER__TASK_OUTPUT__INIT;
        Cluster__Envelope e = CLUSTER__ENVELOPE__INIT;
        _cleanup_free_ uint8_t *data = malloc(size);
        int r;

        ck_assert_ptr_nonnull(data);
        for (size_t i = 0; i < size; i++)
                data[i] = (uint8_t)(index * 31 + i);
        o.task_id = index;
        o.stream = CLUSTER__STREAM__STREAM_STDOUT;
        o.data.data = data;
        o.data.len = size;
        e.msg_case = CLUSTER__ENVELOPE__MSG_TASK_OUTPUT;
        e.task_output = &o;
        r = conn_send(c, &e);
        return r;
}

/* The envelope size send_output() produces. */
static size_t output_frame_size(uint64_t index, size_t size)
{
        Cluster__TaskOutput o = CLUSTER__TASK_OUTPUT__INIT;
        Cluster__Envelope e = CLUSTER__ENVELOPE__INIT;

        o.task_id = index;
        o.stream = CLUSTER__STREAM__STREAM_STDOUT;
        o.data.len = size;
        e.msg_case = CLUSTER__ENVELOPE__MSG_TASK_OUTPUT;
        e.task_output = &o;
        return cluster__envelope__get_packed_size(&e);
}

static void resume_fn(LoopSource *s, void *userdata)
{
        Peer *p = userdata;

        p->paused = false;
        conn_resume_read(p->conn);
}

static void on_message(Conn *c, const Cluster__Envelope *m, void *userdata)
{
        Peer *p = userdata;

        ck_assert_ptr_eq(p->conn, c);
        ck_assert_msg(!p->paused, "%s: message while paused", p->name);
        p->n_messages++;
        switch (m->msg_case) {
        case CLUSTER__ENVELOPE__MSG_PING:
                if (p->echo_pings) {
                        Cluster__Pong pong = CLUSTER__PONG__INIT;
                        Cluster__Envelope e = CLUSTER__ENVELOPE__INIT;
                        pong.nonce = m->ping->nonce;
                        e.msg_case = CLUSTER__ENVELOPE__MSG_PONG;
                        e.pong = &pong;
                        ck_assert_int_eq(conn_send(c, &e), 0);
                }
                break;
        case CLUSTER__ENVELOPE__MSG_PONG:
                ck_assert_uint_eq(m->pong->nonce, p->next_nonce);
                p->next_nonce++;
                p->n_pongs++;
                break;
        case CLUSTER__ENVELOPE__MSG_TASK_OUTPUT: {
                const ProtobufCBinaryData *d = &m->task_output->data;
                ck_assert_uint_eq(m->task_output->task_id, p->n_outputs);
                for (size_t i = 0; i < d->len; i++)
                        if (d->data[i] != (uint8_t)(m->task_output->task_id * 31 + i))
                                ck_abort_msg("output %u corrupt at %zu", p->n_outputs, i);
                p->output_bytes += d->len;
                p->n_outputs++;
                if (p->pause_every && p->n_outputs % p->pause_every == 0) {
                        /* Hold the connection for a moment: the sender must see
                         * congestion and wait for on_drain. */
                        p->paused = true;
                        conn_pause_read(c);
                        if (!p->resume_timer)
                                ck_assert_int_eq(
                                        loop_add_timer(loop, 0, resume_fn, p, &p->resume_timer), 0);
                        ck_assert_int_eq(loop_timer_set(p->resume_timer, loop_now(loop) + 2000), 0);
                }
                break;
        }
        case CLUSTER__ENVELOPE__MSG_HELLO:
                snprintf(p->hello_name, sizeof(p->hello_name), "%s", m->hello->name);
                break;
        case CLUSTER__ENVELOPE__MSG_ERROR:
                p->error_code = m->error->code;
                p->error_request_id = m->error->request_id;
                free(p->error_message);
                p->error_message = strdup(m->error->message);
                break;
        default:
                break;
        }
}

static void on_drain(Conn *c, void *userdata)
{
        Peer *p = userdata;
        p->n_drains++;
}

static void on_close(Conn *c, int error, const char *reason, void *userdata)
{
        Peer *p = userdata;

        ck_assert_msg(!p->closed, "%s: on_close twice", p->name);
        ck_assert_ptr_nonnull(reason);
        ck_assert_ptr_null(strchr(reason, '\n'));
        p->closed = true;
        p->close_error = error;
        p->close_reason = strdup(reason);
        snprintf(p->peer_address, sizeof(p->peer_address), "%s", conn_peer_address(c));
        /* Nothing can be sent any more. */
        ck_assert_int_eq(send_output(c, 0, 1), -ENOTCONN);
}

static int on_handshake(Conn *c, void *userdata)
{
        Peer *p = userdata;

        p->n_handshakes++;
        ck_assert_int_eq(conn_peer_fingerprint(c, p->peer_fp), 0);
        p->have_peer_fp = true;
        if (p->expect_fp && memcmp(p->peer_fp, p->expect_fp, TLS_FINGERPRINT_SIZE) != 0) {
                if (p->error_on_refuse)
                        ck_assert_int_eq(conn_send_error_and_close(
                                                 c, CLUSTER__ERROR_CODE__ERROR_UNAUTHORIZED, 0,
                                                 "unknown key %s", "x"),
                                         0);
                return -EPERM;
        }
        return 0;
}

static const ConnOps peer_ops = {
        .on_message = on_message,
        .on_drain = on_drain,
        .on_close = on_close,
        .on_handshake = on_handshake,
};

static void plain_pair(Peer *a, Peer *b, const ConnConfig *ca, const ConnConfig *cb)
{
        int sv[2];

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        ck_assert_int_eq(conn_new(loop, sv[0], ca, &peer_ops, a, &a->conn), 0);
        ck_assert_int_eq(conn_new(loop, sv[1], cb, &peer_ops, b, &b->conn), 0);
}

/* A TLS server accepting one connection on 127.0.0.1 and a client connecting to it. */
typedef struct Listener {
        int fd;
        LoopSource *accept;
        char address[64];
        Peer *server;
        ConnConfig cfg;
        bool accepted;
} Listener;

static void accept_fn(LoopSource *s, int fd, int error, void *userdata)
{
        Listener *l = userdata;

        ck_assert_int_eq(error, 0);
        ck_assert(!l->accepted);
        l->accepted = true;
        ck_assert_int_eq(conn_new(loop, fd, &l->cfg, &peer_ops, l->server, &l->server->conn), 0);
}

static void listener_start(Listener *l, Peer *server, const ConnConfig *cfg)
{
        struct sockaddr_in sin;
        socklen_t len = sizeof(sin);

        *l = (Listener){.server = server, .cfg = *cfg};
        ck_assert_int_eq(socket_listen("127.0.0.1:0", 16, 0, &l->fd), 0);
        ck_assert_int_eq(getsockname(l->fd, (struct sockaddr *)&sin, &len), 0);
        snprintf(l->address, sizeof(l->address), "127.0.0.1:%u", ntohs(sin.sin_port));
        ck_assert_int_eq(loop_add_accept(loop, l->fd, accept_fn, l, &l->accept), 0);
}

static void listener_stop(Listener *l)
{
        l->accept = loop_source_free(l->accept);
        l->fd = safe_close(l->fd);
}

static void tls_pair(Listener *l, Peer *server, Peer *client, const ConnConfig *scfg,
                     const ConnConfig *ccfg)
{
        listener_start(l, server, scfg);
        ck_assert_int_eq(conn_connect(loop, l->address, ccfg, &peer_ops, client, &client->conn), 0);
}

START_TEST(test_plain_request_response)
{
        Peer a = {.name = "client"}, b = {.name = "server", .echo_pings = true};
        ConnConfig cfg = {};
        struct ucred cred;
        uint8_t fp[32];

        plain_pair(&a, &b, &cfg, &cfg);
        ck_assert_str_eq(conn_peer_address(a.conn), "unix");
        ck_assert_int_eq(conn_peer_cred(b.conn, &cred), 0);
        ck_assert_int_eq(cred.pid, getpid());
        ck_assert_int_eq(conn_peer_fingerprint(a.conn, fp), -ENODATA);
        ck_assert_ptr_eq(conn_get_userdata(a.conn), &a);

        for (uint64_t i = 0; i < 2000; i++)
                send_ping(a.conn, i);
        while (a.n_pongs < 2000 && !a.closed)
                ck_assert_int_eq(loop_run_once(loop, USEC_INFINITY), 0);
        ck_assert_uint_eq(a.n_pongs, 2000);
        ck_assert_uint_eq(b.n_messages, 2000);
        ck_assert_uint_eq(a.n_handshakes + b.n_handshakes, 0);

        conn_close(a.conn, "done here");
        ck_assert(!a.closed); /* from the loop, not from inside conn_close() */
        ck_assert_int_eq(send_output(a.conn, 0, 1), -ENOTCONN);
        run_until_both_closed(&a, &b);
        ck_assert_int_eq(a.close_error, 0);
        ck_assert_str_eq(a.close_reason, "done here");
        ck_assert_int_eq(b.close_error, 0);
        ck_assert_str_eq(b.close_reason, "peer closed the connection");
        peer_done(&a);
        peer_done(&b);
}
END_TEST

START_TEST(test_tls_request_response)
{
        Peer server = {.name = "server",
                       .echo_pings = true,
                       .expect_fp = tls_identity_fingerprint(client_id)};
        Peer client = {.name = "client", .expect_fp = tls_identity_fingerprint(server_id)};
        ConnConfig scfg = {.tls = server_id, .server = true}, ccfg = {.tls = client_id};
        uint8_t fp[32];
        Listener l;

        tls_pair(&l, &server, &client, &scfg, &ccfg);
        /* Queued before the handshake: held, then sent after it. */
        ck_assert_int_eq(conn_peer_fingerprint(client.conn, fp), -ENODATA);
        send_hello(client.conn, "node-1");
        for (uint64_t i = 0; i < 1000; i++)
                send_ping(client.conn, i);
        while (client.n_pongs < 1000 && !client.closed && !server.closed)
                ck_assert_int_eq(loop_run_once(loop, USEC_INFINITY), 0);
        ck_assert_uint_eq(client.n_pongs, 1000);
        ck_assert_uint_eq(server.n_messages, 1001);
        ck_assert_uint_eq(server.n_handshakes, 1);
        ck_assert_uint_eq(client.n_handshakes, 1);

        /* Each side sees the other's certificate. */
        ck_assert(memcmp(server.peer_fp, tls_identity_fingerprint(client_id), 32) == 0);
        ck_assert(memcmp(client.peer_fp, tls_identity_fingerprint(server_id), 32) == 0);
        ck_assert_int_eq(conn_peer_fingerprint(server.conn, fp), 0);
        ck_assert(memcmp(fp, tls_identity_fingerprint(client_id), 32) == 0);

        /* Addresses: the client sees the listener's, the server the client's port. */
        ck_assert_str_eq(conn_peer_address(client.conn), l.address);
        ck_assert(startswith(conn_peer_address(server.conn), "127.0.0.1:"));
        ck_assert_str_ne(conn_peer_address(server.conn), l.address);
        struct ucred cred;
        ck_assert_int_lt(conn_peer_cred(server.conn, &cred), 0);

        conn_close(server.conn, "shutting down");
        run_until_both_closed(&server, &client);
        ck_assert_int_eq(server.close_error, 0);
        ck_assert_str_eq(server.close_reason, "shutting down");
        ck_assert_int_eq(client.close_error, 0);
        ck_assert_str_eq(client.close_reason, "peer closed the connection");
        ck_assert(startswith(server.peer_address, "127.0.0.1:"));
        peer_done(&client);
        peer_done(&server);
        listener_stop(&l);
}
END_TEST

START_TEST(test_tls_ipv6)
{
        Peer server = {.name = "server", .echo_pings = true}, client = {.name = "client"};
        ConnConfig scfg = {.tls = server_id, .server = true}, ccfg = {.tls = client_id};
        Listener l = {.server = &server, .cfg = scfg};
        struct sockaddr_in6 sin6;
        socklen_t len = sizeof(sin6);
        int r;

        r = socket_listen("[::1]:0", 16, 0, &l.fd);
        if (r == -EADDRNOTAVAIL || r == -EAFNOSUPPORT) {
                printf("no IPv6 loopback here, not testing it\n");
                return;
        }
        ck_assert_int_eq(r, 0);
        ck_assert_int_eq(getsockname(l.fd, (struct sockaddr *)&sin6, &len), 0);
        snprintf(l.address, sizeof(l.address), "[::1]:%u", ntohs(sin6.sin6_port));
        ck_assert_int_eq(loop_add_accept(loop, l.fd, accept_fn, &l, &l.accept), 0);
        ck_assert_int_eq(conn_connect(loop, l.address, &ccfg, &peer_ops, &client, &client.conn), 0);
        send_ping(client.conn, 0);
        while (client.n_pongs < 1 && !client.closed)
                ck_assert_int_eq(loop_run_once(loop, USEC_INFINITY), 0);
        ck_assert_uint_eq(client.n_pongs, 1);
        ck_assert_str_eq(conn_peer_address(client.conn), l.address);
        ck_assert(startswith(conn_peer_address(server.conn), "[::1]:"));
        peer_done(&client);
        peer_done(&server);
        listener_stop(&l);
}
END_TEST

/* Sends `total` outputs as fast as back-pressure allows. */
typedef struct Producer {
        Peer *peer;
        unsigned sent, total;
        size_t size;
        unsigned congested;
} Producer;

static void produce(Producer *p)
{
        while (p->sent < p->total && !conn_congested(p->peer->conn)) {
                ck_assert_int_eq(send_output(p->peer->conn, p->sent, p->size), 0);
                p->sent++;
        }
        if (p->sent < p->total)
                p->congested++;
}

static void bulk(bool tls)
{
        Peer sender = {.name = "sender"}, receiver = {.name = "receiver", .pause_every = 3};
        ConnConfig scfg = {.tls = tls ? client_id : NULL},
                   rcfg = {.tls = tls ? server_id : NULL, .server = true};
        Producer prod = {.peer = &sender, .total = 48, .size = 1024 * 1024 - 100};
        Listener l = {.fd = -EBADF};

        if (tls)
                tls_pair(&l, &receiver, &sender, &rcfg, &scfg);
        else
                plain_pair(&sender, &receiver, &scfg, &rcfg);

        produce(&prod);
        ck_assert_uint_gt(prod.congested, 0);
        ck_assert(conn_congested(sender.conn));
        ck_assert_uint_gt(conn_queued(sender.conn), 0);
        while (receiver.n_outputs < prod.total && !sender.closed && !receiver.closed) {
                unsigned drains = sender.n_drains;
                ck_assert_int_eq(loop_run_once(loop, USEC_INFINITY), 0);
                if (sender.n_drains != drains)
                        produce(&prod);
        }
        ck_assert_uint_eq(receiver.n_outputs, prod.total);
        ck_assert_uint_eq(receiver.output_bytes, prod.total * prod.size);
        ck_assert_uint_gt(sender.n_drains, 0);
        ck_assert_uint_gt(prod.congested, 1);

        /* Far beyond the hard limit: refused without closing. */
        for (unsigned i = 0; i < 200; i++) {
                int r = send_output(sender.conn, prod.sent++, 1024 * 1024);
                if (r == -ENOBUFS)
                        break;
                ck_assert_int_eq(r, 0);
                ck_assert_uint_lt(i, 100);
        }
        ck_assert(!sender.closed);

        conn_close(sender.conn, "bye");
        run_until_both_closed(&sender, &receiver);
        ck_assert_int_eq(sender.close_error, 0);
        peer_done(&sender);
        peer_done(&receiver);
        if (tls)
                listener_stop(&l);
}

START_TEST(test_bulk_backpressure_plain)
{
        bulk(false);
}
END_TEST

START_TEST(test_bulk_backpressure_tls)
{
        bulk(true);
}
END_TEST

static void oversize(bool tls)
{
        Peer sender = {.name = "sender"}, receiver = {.name = "receiver"};
        ConnConfig scfg = {.tls = tls ? client_id : NULL},
                   rcfg = {.tls = tls ? server_id : NULL, .server = true, .max_frame = 64 * 1024};
        Listener l = {.fd = -EBADF};
        char expected[128];

        if (tls)
                tls_pair(&l, &receiver, &sender, &rcfg, &scfg);
        else
                plain_pair(&sender, &receiver, &scfg, &rcfg);

        send_ping(sender.conn, 0);
        ck_assert_int_eq(send_output(sender.conn, 0, 100000), 0);
        send_ping(sender.conn, 1); /* never delivered: the stream is out of sync */
        run_until_both_closed(&sender, &receiver);

        ck_assert_uint_eq(receiver.n_messages, 1);
        ck_assert_uint_eq(receiver.n_outputs, 0);
        ck_assert_int_eq(receiver.close_error, -EMSGSIZE);
        snprintf(expected, sizeof(expected), "frame of %zu bytes exceeds the limit of 65536",
                 output_frame_size(0, 100000));
        ck_assert_str_eq(receiver.close_reason, expected);
        /* The sender was told why. */
        ck_assert_int_eq(sender.error_code, CLUSTER__ERROR_CODE__ERROR_TOO_LARGE);
        ck_assert_str_eq(sender.error_message, expected);
        ck_assert_int_eq(sender.close_error, 0);
        ck_assert_str_eq(sender.close_reason, "peer closed the connection");

        peer_done(&sender);
        peer_done(&receiver);
        if (tls)
                listener_stop(&l);
}

START_TEST(test_oversize_plain)
{
        oversize(false);
}
END_TEST

START_TEST(test_oversize_tls)
{
        oversize(true);
}
END_TEST

START_TEST(test_send_limit)
{
        Peer a = {.name = "a"}, b = {.name = "b"};
        ConnConfig cfg = {.max_frame = 1000};

        plain_pair(&a, &b, &cfg, &cfg);
        ck_assert_int_eq(send_output(a.conn, 0, 2000), -EMSGSIZE);
        ck_assert_int_eq(send_output(a.conn, 0, 900), 0);
        while (b.n_outputs < 1 && !b.closed)
                ck_assert_int_eq(loop_run_once(loop, USEC_INFINITY), 0);
        ck_assert_uint_eq(b.n_outputs, 1);

        /* An error as an answer: the peer gets it, then the end. */
        ck_assert_int_eq(conn_send_error_and_close(b.conn, CLUSTER__ERROR_CODE__ERROR_BUSY, 77,
                                                   "busy: %d", 5),
                         0);
        ck_assert_int_eq(conn_send_error_and_close(b.conn, CLUSTER__ERROR_CODE__ERROR_BUSY, 0, "x"),
                         -ENOTCONN);
        run_until_both_closed(&a, &b);
        ck_assert_int_eq(a.error_code, CLUSTER__ERROR_CODE__ERROR_BUSY);
        ck_assert_uint_eq(a.error_request_id, 77);
        ck_assert_str_eq(a.error_message, "busy: 5");
        ck_assert_int_eq(b.close_error, 0);
        ck_assert_str_eq(b.close_reason, "busy: 5");
        ck_assert_str_eq(a.close_reason, "peer closed the connection");
        peer_done(&a);
        peer_done(&b);
}
END_TEST

/* Runs the loop while reading all a raw peer socket gets, until its EOF. */
static void read_raw_until_eof(int fd, Buf *got)
{
        ck_assert_int_eq(fd_nonblock(fd, true), 0);
        for (unsigned i = 0; i < 100000; i++) {
                char buf[4096];
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n == 0)
                        return;
                if (n > 0) {
                        ck_assert_int_eq(buf_append(got, buf, (size_t)n), 0);
                        continue;
                }
                ck_assert_int_eq(errno, EAGAIN);
                ck_assert_int_eq(loop_run_once(loop, 10000), 0);
        }
        ck_abort_msg("no EOF from the connection");
}

START_TEST(test_garbage_frames_plain)
{
        Peer receiver = {.name = "receiver"};
        ConnConfig cfg = {};
        int sv[2];
        Buf got = {};

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        ck_assert_int_eq(conn_new(loop, sv[1], &cfg, &peer_ops, &receiver, &receiver.conn), 0);
        ck_assert_int_eq(write(sv[0], "\0\0\0\5\xff\xff\xff\xff\xff", 9), 9);
        /* The raw peer gets an Error frame, then EOF; once it closes, the conn ends. */
        read_raw_until_eof(sv[0], &got);
        safe_close(sv[0]);
        run_until(&receiver.closed);
        ck_assert_int_eq(receiver.close_error, -EBADMSG);
        ck_assert_str_eq(receiver.close_reason, "malformed frame of 5 bytes");

        FrameDecoder dec;
        Cluster__Envelope *m = NULL;
        frame_decoder_init(&dec, 0);
        ck_assert_int_eq(frame_decoder_feed(&dec, buf_head(&got), buf_size(&got)), 0);
        ck_assert_int_eq(frame_decoder_next(&dec, &m), 1);
        ck_assert_int_eq(m->msg_case, CLUSTER__ENVELOPE__MSG_ERROR);
        ck_assert_int_eq(m->error->code, CLUSTER__ERROR_CODE__ERROR_PROTOCOL);
        ck_assert_str_eq(m->error->message, "malformed frame of 5 bytes");
        cluster__envelope__free_unpacked(m, NULL);
        ck_assert_int_eq(frame_decoder_next(&dec, &m), 0);
        frame_decoder_done(&dec);
        buf_done(&got);
        peer_done(&receiver);
}
END_TEST

START_TEST(test_invalid_message)
{
        Peer a = {.name = "a"}, b = {.name = "b"};
        ConnConfig cfg = {};
        Cluster__RunRequest rr = CLUSTER__RUN_REQUEST__INIT;
        Cluster__Envelope e = CLUSTER__ENVELOPE__INIT;

        plain_pair(&a, &b, &cfg, &cfg);
        rr.request_id = 5;
        e.msg_case = CLUSTER__ENVELOPE__MSG_RUN_REQUEST;
        e.run_request = &rr;
        ck_assert_int_eq(conn_send(a.conn, &e), 0);
        run_until_both_closed(&a, &b);
        ck_assert_uint_eq(b.n_messages, 0);
        ck_assert_int_eq(b.close_error, -EBADMSG);
        ck_assert_str_eq(b.close_reason,
                         "invalid run_request message: run_request.spec is missing");
        ck_assert_int_eq(a.error_code, CLUSTER__ERROR_CODE__ERROR_PROTOCOL);
        peer_done(&a);
        peer_done(&b);
}
END_TEST

START_TEST(test_garbage_instead_of_tls)
{
        Peer server = {.name = "server"};
        ConnConfig scfg = {.tls = server_id, .server = true};
        static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        int sv[2];
        Buf got = {};

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        ck_assert_int_eq(conn_new(loop, sv[1], &scfg, &peer_ops, &server, &server.conn), 0);
        ck_assert_int_eq(write(sv[0], http, strlen(http)), (ssize_t)strlen(http));
        /* The server answers with an alert (a TLS record of type 21) and EOF. */
        read_raw_until_eof(sv[0], &got);
        ck_assert_uint_ge(buf_size(&got), 5);
        ck_assert_uint_eq(buf_head(&got)[0], 21);
        buf_done(&got);
        safe_close(sv[0]);
        run_until(&server.closed);
        ck_assert_int_lt(server.close_error, 0);
        ck_assert_msg(startswith(server.close_reason, "TLS handshake failed: "), "%s",
                      server.close_reason);
        ck_assert_uint_eq(server.n_handshakes, 0);
        peer_done(&server);
}
END_TEST

static void refuse(bool with_error)
{
        /* The server only knows the stranger: it refuses our client. */
        Peer server = {.name = "server",
                       .echo_pings = true,
                       .expect_fp = tls_identity_fingerprint(stranger_id),
                       .error_on_refuse = with_error};
        Peer client = {.name = "client"};
        ConnConfig scfg = {.tls = server_id, .server = true}, ccfg = {.tls = client_id};
        Listener l;

        tls_pair(&l, &server, &client, &scfg, &ccfg);
        send_hello(client.conn, "node-1");
        run_until_both_closed(&server, &client);
        ck_assert_uint_eq(server.n_handshakes, 1);
        ck_assert_uint_eq(server.n_messages, 0);
        if (with_error) {
                ck_assert_int_eq(server.close_error, 0);
                ck_assert_str_eq(server.close_reason, "unknown key x");
                ck_assert_int_eq(client.error_code, CLUSTER__ERROR_CODE__ERROR_UNAUTHORIZED);
                ck_assert_str_eq(client.error_message, "unknown key x");
        } else {
                ck_assert_int_eq(server.close_error, -EPERM);
                ck_assert_str_eq(server.close_reason, "peer refused after the TLS handshake");
                ck_assert_uint_eq(client.n_messages, 0);
        }
        ck_assert_str_eq(client.close_reason, "peer closed the connection");
        peer_done(&client);
        peer_done(&server);
        listener_stop(&l);
}

START_TEST(test_server_refuses_fingerprint)
{
        refuse(false);
}
END_TEST

START_TEST(test_server_refuses_with_error)
{
        refuse(true);
}
END_TEST

START_TEST(test_client_pins_server)
{
        /* The client expects another server: it must not send what it queued (a hello
         * with a join token would leak to an impostor). */
        Peer server = {.name = "server", .echo_pings = true};
        Peer client = {.name = "client", .expect_fp = tls_identity_fingerprint(stranger_id)};
        ConnConfig scfg = {.tls = server_id, .server = true}, ccfg = {.tls = client_id};
        Listener l;

        tls_pair(&l, &server, &client, &scfg, &ccfg);
        send_hello(client.conn, "node-1");
        send_ping(client.conn, 0);
        run_until_both_closed(&server, &client);
        ck_assert_uint_eq(client.n_handshakes, 1);
        ck_assert_int_eq(client.close_error, -EPERM);
        ck_assert_uint_eq(server.n_messages, 0);
        ck_assert_int_eq(server.close_error, 0);
        peer_done(&client);
        peer_done(&server);
        listener_stop(&l);
}
END_TEST

START_TEST(test_handshake_timeout)
{
        Peer server = {.name = "server"}, client = {.name = "client"};
        ConnConfig scfg = {.tls = server_id, .server = true, .handshake_timeout = 50000};
        ConnConfig ccfg = {.tls = client_id, .handshake_timeout = 50000};
        int sv[2], silent[2];

        /* A server whose client never speaks, a client whose server never answers. */
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, silent), 0);
        ck_assert_int_eq(conn_new(loop, sv[1], &scfg, &peer_ops, &server, &server.conn), 0);
        ck_assert_int_eq(conn_new(loop, silent[1], &ccfg, &peer_ops, &client, &client.conn), 0);
        run_until_both_closed(&server, &client);
        ck_assert_int_eq(server.close_error, -ETIMEDOUT);
        ck_assert_str_eq(server.close_reason, "handshake timed out");
        ck_assert_int_eq(client.close_error, -ETIMEDOUT);
        ck_assert_str_eq(client.close_reason, "handshake timed out");
        safe_close(sv[0]);
        safe_close(silent[0]);
        peer_done(&server);
        peer_done(&client);
}
END_TEST

START_TEST(test_connect_refused)
{
        Peer client = {.name = "client"};
        ConnConfig ccfg = {.tls = client_id};
        char address[64], expected[128];
        struct sockaddr_in sin;
        socklen_t len = sizeof(sin);
        int fd;
        Conn *c = NULL;

        /* A port that was just free. */
        ck_assert_int_eq(socket_listen("127.0.0.1:0", 1, 0, &fd), 0);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
        snprintf(address, sizeof(address), "127.0.0.1:%u", ntohs(sin.sin_port));
        safe_close(fd);

        ck_assert_int_eq(conn_connect(loop, address, &ccfg, &peer_ops, &client, &client.conn), 0);
        run_until(&client.closed);
        ck_assert_int_eq(client.close_error, -ECONNREFUSED);
        snprintf(expected, sizeof(expected), "failed to connect to %s: %s", address,
                 strerror(ECONNREFUSED));
        ck_assert_str_eq(client.close_reason, expected);
        peer_done(&client);

        /* A Unix socket that does not exist fails at once, but is reported the same way. */
        Peer unix_client = {.name = "unix"};
        _cleanup_free_ char *path = strprintf("unix:%s/nothing.sock", tmpdir);
        ck_assert_int_eq(
                conn_connect(loop, path, &ccfg, &peer_ops, &unix_client, &unix_client.conn), 0);
        ck_assert(!unix_client.closed);
        run_until(&unix_client.closed);
        ck_assert_int_eq(unix_client.close_error, -ENOENT);
        peer_done(&unix_client);

        ck_assert_int_eq(conn_connect(loop, "not an address", &ccfg, &peer_ops, NULL, &c), -EINVAL);
}
END_TEST

static void connect_hostname(bool tls)
{
        Peer server = {.name = "server"}, client = {.name = "client"};
        ConnConfig scfg = {.tls = tls ? server_id : NULL, .server = true},
                   ccfg = {.tls = tls ? client_id : NULL};
        struct sockaddr_storage sa;
        socklen_t len;
        char probe[16], address[64];
        Listener l;

        /* Listen where "localhost" points here (127.0.0.1 or ::1). */
        ck_assert_int_eq(socket_address_parse("localhost:1", &sa, &len), 0);
        listener_start(&l, &server, &scfg);
        if (sa.ss_family == AF_INET6) {
                struct sockaddr_in6 sin6;
                socklen_t n = sizeof(sin6);
                listener_stop(&l);
                l = (Listener){.server = &server, .cfg = scfg};
                ck_assert_int_eq(socket_listen("[::1]:0", 16, 0, &l.fd), 0);
                ck_assert_int_eq(getsockname(l.fd, (struct sockaddr *)&sin6, &n), 0);
                snprintf(l.address, sizeof(l.address), "[::1]:%u", ntohs(sin6.sin6_port));
                ck_assert_int_eq(loop_add_accept(loop, l.fd, accept_fn, &l, &l.accept), 0);
        }
        snprintf(probe, sizeof(probe), "%s", strrchr(l.address, ':') + 1);
        snprintf(address, sizeof(address), "localhost:%s", probe);

        /* Resolved off the loop; what is sent meanwhile, and the close, wait for it. */
        ck_assert_int_eq(conn_connect(loop, address, &ccfg, &peer_ops, &client, &client.conn), 0);
        send_hello(client.conn, "node-1");
        for (uint64_t i = 0; i < 5; i++)
                send_ping(client.conn, i);
        conn_close(client.conn, "done");
        ck_assert_int_eq(send_output(client.conn, 0, 1), -ENOTCONN);
        run_until_both_closed(&client, &server);
        ck_assert_uint_eq(server.n_messages, 6);
        ck_assert_str_eq(server.hello_name, "node-1");
        ck_assert_int_eq(client.close_error, 0);
        ck_assert_str_eq(client.close_reason, "done");
        ck_assert_int_eq(server.close_error, 0);
        ck_assert_str_eq(server.close_reason, "peer closed the connection");
        ck_assert_str_eq(client.peer_address, l.address);
        peer_done(&client);
        peer_done(&server);
        listener_stop(&l);
}

START_TEST(test_connect_hostname_plain)
{
        connect_hostname(false);
}
END_TEST

START_TEST(test_connect_hostname_tls)
{
        connect_hostname(true);
}
END_TEST

START_TEST(test_connect_hostname_freed)
{
        Peer client = {.name = "client"};
        ConnConfig ccfg = {.tls = client_id};

        /* Freed while the resolver thread runs: nothing is called, nothing leaks. */
        ck_assert_int_eq(conn_connect(loop, "localhost:9", &ccfg, &peer_ops, &client, &client.conn),
                         0);
        send_ping(client.conn, 1);
        client.conn = conn_free(client.conn);
        for (unsigned i = 0; i < 5; i++)
                ck_assert_int_eq(loop_run_once(loop, 1000), 0);
        ck_assert(!client.closed);
        peer_done(&client);
}
END_TEST

START_TEST(test_plain_unix_connect)
{
        Peer server = {.name = "server", .echo_pings = true}, client = {.name = "client"};
        ConnConfig cfg = {};
        _cleanup_free_ char *path = strprintf("%s/control.sock", tmpdir);
        _cleanup_free_ char *address = strprintf("unix:%s", path);
        Listener l = {.server = &server, .cfg = cfg};

        ck_assert_int_eq(socket_listen(address, 16, 0600, &l.fd), 0);
        ck_assert_int_eq(loop_add_accept(loop, l.fd, accept_fn, &l, &l.accept), 0);
        ck_assert_int_eq(conn_connect(loop, path, &cfg, &peer_ops, &client, &client.conn), 0);
        for (uint64_t i = 0; i < 10; i++)
                send_ping(client.conn, i);
        while (client.n_pongs < 10 && !client.closed)
                ck_assert_int_eq(loop_run_once(loop, USEC_INFINITY), 0);
        ck_assert_uint_eq(client.n_pongs, 10);
        struct ucred cred;
        ck_assert_int_eq(conn_peer_cred(server.conn, &cred), 0);
        ck_assert_int_eq(cred.uid, getuid());
        ck_assert_str_eq(conn_peer_address(server.conn), "unix");

        /* Freeing without closing: no callback, the peer sees EOF. */
        client.conn = conn_free(client.conn);
        run_until(&server.closed);
        ck_assert_int_eq(server.close_error, 0);
        ck_assert(!client.closed);
        peer_done(&client);
        peer_done(&server);
        listener_stop(&l);
}
END_TEST

/* A peer that sends and closes at once: a receiver that pauses on the way still gets
 * every frame before on_close. */
static void close_after_burst(bool tls)
{
        Peer sender = {.name = "sender"}, receiver = {.name = "receiver", .pause_every = 3};
        ConnConfig scfg = {.tls = tls ? client_id : NULL},
                   rcfg = {.tls = tls ? server_id : NULL, .server = true};
        Listener l = {.fd = -EBADF};

        if (tls)
                tls_pair(&l, &receiver, &sender, &rcfg, &scfg);
        else
                plain_pair(&sender, &receiver, &scfg, &rcfg);
        for (unsigned i = 0; i < 30; i++)
                ck_assert_int_eq(send_output(sender.conn, i, 1000 + i), 0);
        conn_close(sender.conn, "all sent");
        run_until_both_closed(&sender, &receiver);
        ck_assert_uint_eq(receiver.n_outputs, 30);
        ck_assert_int_eq(receiver.close_error, 0);
        ck_assert_str_eq(receiver.close_reason, "peer closed the connection");
        ck_assert_str_eq(sender.close_reason, "all sent");
        peer_done(&sender);
        peer_done(&receiver);
        if (tls)
                listener_stop(&l);
}

START_TEST(test_eof_while_paused)
{
        Peer receiver = {.name = "receiver", .pause_every = 3};
        ConnConfig cfg = {};
        Cluster__TaskOutput o = CLUSTER__TASK_OUTPUT__INIT;
        Cluster__Envelope e = CLUSTER__ENVELOPE__INIT;
        uint8_t data[100];
        Buf out = {};
        int sv[2];

        /* A raw peer writes ten frames and half of an eleventh, then is gone. */
        e.msg_case = CLUSTER__ENVELOPE__MSG_TASK_OUTPUT;
        e.task_output = &o;
        o.stream = CLUSTER__STREAM__STREAM_STDOUT;
        o.data.data = data;
        o.data.len = sizeof(data);
        for (unsigned i = 0; i < 11; i++) {
                o.task_id = i;
                for (size_t k = 0; k < sizeof(data); k++)
                        data[k] = (uint8_t)(i * 31 + k);
                ck_assert_int_eq(frame_encode(&out, &e), 0);
        }
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        ck_assert_int_eq(loop_write(sv[0], buf_head(&out), buf_size(&out) - 50), 0);
        safe_close(sv[0]);
        buf_done(&out);

        /* The receiver pauses every third frame; it still gets all ten, then learns
         * that the eleventh was cut. */
        ck_assert_int_eq(conn_new(loop, sv[1], &cfg, &peer_ops, &receiver, &receiver.conn), 0);
        run_until(&receiver.closed);
        ck_assert_uint_eq(receiver.n_outputs, 10);
        ck_assert_int_eq(receiver.close_error, -EPIPE);
        ck_assert_str_eq(receiver.close_reason,
                         "peer closed the connection in the middle of a frame");
        peer_done(&receiver);
}
END_TEST

START_TEST(test_close_after_burst_plain)
{
        close_after_burst(false);
}
END_TEST

START_TEST(test_close_after_burst_tls)
{
        close_after_burst(true);
}
END_TEST

/* Many TLS clients at once on one loop, served by one listener. */
#define N_CLIENTS 16

typedef struct Many {
        Peer servers[N_CLIENTS];
        unsigned n_accepted;
        ConnConfig cfg;
} Many;

static void many_accept_fn(LoopSource *s, int fd, int error, void *userdata)
{
        Many *m = userdata;
        Peer *p;

        ck_assert_int_eq(error, 0);
        ck_assert_uint_lt(m->n_accepted, N_CLIENTS);
        p = &m->servers[m->n_accepted++];
        *p = (Peer){.name = "server", .echo_pings = true};
        ck_assert_int_eq(conn_new(loop, fd, &m->cfg, &peer_ops, p, &p->conn), 0);
}

START_TEST(test_many_clients)
{
        Many m = {.cfg = {.tls = server_id, .server = true}};
        Peer clients[N_CLIENTS];
        ConnConfig ccfg = {.tls = client_id};
        struct sockaddr_in sin;
        socklen_t len = sizeof(sin);
        LoopSource *acc = NULL;
        char address[64];
        Peer *server_of[N_CLIENTS] = {};
        char name[32];
        unsigned done;
        int fd;

        ck_assert_int_eq(socket_listen("127.0.0.1:0", 64, 0, &fd), 0);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
        snprintf(address, sizeof(address), "127.0.0.1:%u", ntohs(sin.sin_port));
        ck_assert_int_eq(loop_add_accept(loop, fd, many_accept_fn, &m, &acc), 0);

        for (unsigned i = 0; i < N_CLIENTS; i++) {
                clients[i] = (Peer){.name = "client"};
                ck_assert_int_eq(conn_connect(loop, address, &ccfg, &peer_ops, &clients[i],
                                              &clients[i].conn),
                                 0);
                snprintf(name, sizeof(name), "client-%u", i);
                send_hello(clients[i].conn, name);
                for (uint64_t k = 0; k < 50; k++)
                        send_ping(clients[i].conn, k);
        }
        do {
                ck_assert_int_eq(loop_run_once(loop, USEC_INFINITY), 0);
                done = 0;
                for (unsigned i = 0; i < N_CLIENTS; i++) {
                        ck_assert(!clients[i].closed);
                        done += clients[i].n_pongs == 50;
                }
        } while (done < N_CLIENTS);
        ck_assert_uint_eq(m.n_accepted, N_CLIENTS);

        /* Which server conn talks to which client: the hello says. */
        for (unsigned i = 0; i < N_CLIENTS; i++) {
                unsigned k;
                ck_assert_int_eq(sscanf(m.servers[i].hello_name, "client-%u", &k), 1);
                ck_assert_uint_lt(k, N_CLIENTS);
                ck_assert_ptr_null(server_of[k]);
                server_of[k] = &m.servers[i];
                ck_assert_uint_eq(m.servers[i].n_messages, 51);
        }

        /* Half of them close, the others are closed by the server side. */
        for (unsigned i = 0; i < N_CLIENTS; i++) {
                if (i % 2 == 0)
                        conn_close(clients[i].conn, "client done");
                else
                        conn_close(server_of[i]->conn, "server done");
        }
        for (unsigned i = 0; i < N_CLIENTS; i++) {
                Peer *closer = i % 2 == 0 ? &clients[i] : server_of[i];
                Peer *other = i % 2 == 0 ? server_of[i] : &clients[i];

                run_until_both_closed(&clients[i], server_of[i]);
                ck_assert_int_eq(closer->close_error, 0);
                ck_assert_str_eq(closer->close_reason, i % 2 == 0 ? "client done" : "server done");
                ck_assert_int_eq(other->close_error, 0);
                ck_assert_str_eq(other->close_reason, "peer closed the connection");
        }
        for (unsigned i = 0; i < N_CLIENTS; i++) {
                peer_done(&clients[i]);
                peer_done(&m.servers[i]);
        }
        loop_source_free(acc);
        safe_close(fd);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("conn");
        TCase *tc = tcase_create("conn");
        SRunner *sr;
        Loop *probe = NULL;
        int failed, r;

        signal(SIGPIPE, SIG_IGN);
        r = loop_new(&probe);
        if (r < 0) {
                printf("io_uring is not available (%s), skipping\n", strerror(-r));
                return 77;
        }
        loop_free(probe);

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_plain_request_response);
        tcase_add_test(tc, test_tls_request_response);
        tcase_add_test(tc, test_tls_ipv6);
        tcase_add_test(tc, test_bulk_backpressure_plain);
        tcase_add_test(tc, test_bulk_backpressure_tls);
        tcase_add_test(tc, test_oversize_plain);
        tcase_add_test(tc, test_oversize_tls);
        tcase_add_test(tc, test_send_limit);
        tcase_add_test(tc, test_garbage_frames_plain);
        tcase_add_test(tc, test_invalid_message);
        tcase_add_test(tc, test_garbage_instead_of_tls);
        tcase_add_test(tc, test_server_refuses_fingerprint);
        tcase_add_test(tc, test_server_refuses_with_error);
        tcase_add_test(tc, test_client_pins_server);
        tcase_add_test(tc, test_handshake_timeout);
        tcase_add_test(tc, test_connect_refused);
        tcase_add_test(tc, test_plain_unix_connect);
        tcase_add_test(tc, test_connect_hostname_plain);
        tcase_add_test(tc, test_connect_hostname_tls);
        tcase_add_test(tc, test_connect_hostname_freed);
        tcase_add_test(tc, test_many_clients);
        tcase_add_test(tc, test_eof_while_paused);
        tcase_add_test(tc, test_close_after_burst_plain);
        tcase_add_test(tc, test_close_after_burst_tls);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
