/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <check.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "basic/alloc-util.h"
#include "basic/buf.h"
#include "basic/fd-util.h"
#include "shared/loop.h"
#include "shared/socket-util.h"
#include "shared/stream.h"

/* One side of a test connection: what it received and how it ended. */
typedef struct Peer {
        Stream *s;
        Buf in;
        uint64_t n_in;
        uint32_t sum_in; /* rolling checksum for big transfers */
        bool keep; /* store received bytes in `in` */
        bool echo; /* write back what arrives */
        bool closed;
        int close_error;
        unsigned drains;
        bool free_on_close;
        bool pause_after_first;
        unsigned pause_every; /* pause after every n-th delivery */
        unsigned n_data;
        bool paused_now;
} Peer;

static void peer_data(Stream *s, const void *data, size_t size, void *userdata)
{
        Peer *p = userdata;

        ck_assert_uint_gt(size, 0);
        ck_assert(!p->closed);
        p->n_in += size;
        for (size_t i = 0; i < size; i++)
                p->sum_in = p->sum_in * 31 + ((const uint8_t *)data)[i];
        if (p->keep)
                ck_assert_int_eq(buf_append(&p->in, data, size), 0);
        if (p->echo)
                ck_assert_int_eq(stream_write(s, data, size), 0);
        if (p->pause_after_first)
                stream_pause_read(s);
        if (p->pause_every && ++p->n_data % p->pause_every == 0) {
                stream_pause_read(s);
                p->paused_now = true;
        }
}

static void peer_drain(Stream *s, void *userdata)
{
        Peer *p = userdata;

        p->drains++;
}

static void peer_close(Stream *s, int error, void *userdata)
{
        Peer *p = userdata;

        ck_assert(!p->closed);
        p->closed = true;
        p->close_error = error;
        ck_assert_int_lt(stream_fd(s), 0);
        if (p->free_on_close)
                p->s = stream_free(s);
}

static const StreamOps peer_ops = {
        .on_data = peer_data,
        .on_drain = peer_drain,
        .on_close = peer_close,
};

static Loop *new_loop(void)
{
        Loop *l = NULL;
        ck_assert_int_eq(loop_new(&l), 0);
        return l;
}

static void run_until(Loop *l, const bool *flag)
{
        for (unsigned i = 0; i < 1000000 && !*flag; i++)
                ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);
        ck_assert(*flag);
}

static void peer_done(Peer *p)
{
        p->s = stream_free(p->s);
        buf_done(&p->in);
}

static void socketpair_streams(Loop *l, Peer *a, Peer *b)
{
        int sv[2];

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        ck_assert_int_eq(stream_new(l, sv[0], &peer_ops, a, &a->s), 0);
        ck_assert_int_eq(stream_new(l, sv[1], &peer_ops, b, &b->s), 0);
}

static void echo_exchange(Loop *l, Peer *client, Peer *server)
{
        char msg[100];

        server->echo = true;
        client->keep = true;
        for (int i = 0; i < 100; i++) {
                snprintf(msg, sizeof(msg), "message %03d;", i);
                ck_assert_int_eq(stream_write(client->s, msg, strlen(msg)), 0);
        }
        while (client->n_in < 100 * 12)
                ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);
        ck_assert_uint_eq(client->n_in, 1200);
        ck_assert(memcmp(buf_head(&client->in), "message 000;message 001;", 24) == 0);
        ck_assert(memcmp(buf_head(&client->in) + 1188, "message 099;", 12) == 0);

        /* Orderly close: the client's close is the server's EOF. */
        stream_close(client->s);
        ck_assert(!client->closed); /* never from inside stream_close() */
        ck_assert_int_eq(stream_write(client->s, "x", 1), -ENOTCONN);
        run_until(l, &server->closed);
        run_until(l, &client->closed);
        ck_assert_int_eq(client->close_error, 0);
        ck_assert_int_eq(server->close_error, 0);
        ck_assert_int_eq(stream_write(server->s, "x", 1), -ENOTCONN);
}

START_TEST(test_echo_socketpair)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        Peer a = {}, b = {};

        socketpair_streams(l, &a, &b);
        echo_exchange(l, &a, &b);
        peer_done(&a);
        peer_done(&b);
}
END_TEST

static Stream *accepted_stream;
static Peer *accept_peer;

static void accept_to_stream(LoopSource *src, int fd, int error, void *userdata)
{
        Loop *l = loop_source_loop(src);

        ck_assert_int_eq(error, 0);
        ck_assert_int_eq(stream_new(l, fd, &peer_ops, accept_peer, &accepted_stream), 0);
        accept_peer->s = accepted_stream;
}

static int listen_loopback(char *addr, size_t size)
{
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd;

        ck_assert_int_eq(socket_listen("127.0.0.1:0", 16, 0, &fd), 0);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
        ck_assert_int_eq(socket_address_to_string((struct sockaddr *)&ss, len, addr, size), 0);
        return fd;
}

START_TEST(test_echo_tcp)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        _cleanup_(loop_source_freep) LoopSource *acc = NULL;
        _cleanup_close_ int lfd = -EBADF;
        char addr[SOCKET_ADDRESS_STRING_MAX];
        Peer client = {}, server = {};
        int fd, r;

        lfd = listen_loopback(addr, sizeof(addr));
        accept_peer = &server;
        accepted_stream = NULL;
        ck_assert_int_eq(loop_add_accept(l, lfd, accept_to_stream, NULL, &acc), 0);

        r = socket_connect_start(addr, &fd);
        ck_assert_int_ge(r, 0);
        if (r == 1)
                ck_assert_int_eq(stream_new_connecting(l, fd, &peer_ops, &client, &client.s), 0);
        else
                ck_assert_int_eq(stream_new(l, fd, &peer_ops, &client, &client.s), 0);
        /* Written before the connection is up: sent once it is. */
        echo_exchange(l, &client, &server);
        ck_assert_ptr_nonnull(accepted_stream);
        peer_done(&client);
        peer_done(&server);
}
END_TEST

/* ---- 50 MB through a pair with back-pressure ---- */

#define BIG_TOTAL (50ULL * 1024 * 1024)
#define BIG_CHUNK (48U * 1024)

typedef struct Producer {
        Peer peer;
        uint64_t sent;
        uint32_t sum_out;
        size_t max_queued;
        unsigned congestions;
        uint8_t chunk[BIG_CHUNK];
        StreamLimits lim;
} Producer;

static void produce(Producer *p)
{
        while (p->sent < BIG_TOTAL && !stream_congested(p->peer.s)) {
                size_t n = (size_t)MIN((uint64_t)BIG_CHUNK, BIG_TOTAL - p->sent);
                for (size_t i = 0; i < n; i++) {
                        p->chunk[i] = (uint8_t)((p->sent + i) * 7 + ((p->sent + i) >> 13));
                        p->sum_out = p->sum_out * 31 + p->chunk[i];
                }
                ck_assert_int_eq(stream_write(p->peer.s, p->chunk, n), 0);
                p->sent += n;
                p->max_queued = MAX(p->max_queued, stream_queued(p->peer.s));
                ck_assert_uint_le(stream_queued(p->peer.s), p->lim.hard_limit);
                if (stream_congested(p->peer.s))
                        p->congestions++;
        }
        if (p->sent == BIG_TOTAL)
                ck_assert_int_eq(stream_shutdown_write(p->peer.s), 0);
}

static void producer_drain(Stream *s, void *userdata)
{
        Producer *p = userdata;

        p->peer.drains++;
        ck_assert(!stream_congested(s));
        ck_assert_uint_le(stream_queued(s), p->lim.low_water);
        produce(p);
}

static const StreamOps producer_ops = {
        .on_data = peer_data,
        .on_drain = producer_drain,
        .on_close = peer_close,
};

START_TEST(test_big_transfer)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        _cleanup_free_ Producer *p = new0(Producer, 1);
        Peer sink = {};
        uint8_t big[300 * 1024] = {};
        int sv[2];

        ck_assert_ptr_nonnull(p);
        p->lim = (StreamLimits){
                .high_water = 256 * 1024, .low_water = 64 * 1024, .hard_limit = 512 * 1024};
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        ck_assert_int_eq(stream_new(l, sv[0], &producer_ops, p, &p->peer.s), 0);
        ck_assert_int_eq(stream_new(l, sv[1], &peer_ops, &sink, &sink.s), 0);
        stream_set_limits(p->peer.s, &p->lim);

        /* Past the hard limit a write is refused whole. */
        ck_assert_int_eq(stream_write(p->peer.s, big, sizeof(big)), 0);
        ck_assert_int_eq(stream_write(p->peer.s, big, sizeof(big)), -ENOBUFS);
        ck_assert_uint_eq(stream_queued(p->peer.s), sizeof(big));
        ck_assert(stream_congested(p->peer.s));
        for (size_t i = 0; i < sizeof(big); i++)
                p->sum_out = p->sum_out * 31;
        p->sent = 0;

        /* The sink pauses now and then, as a slow consumer would. */
        sink.pause_every = 7;
        while (!sink.closed) {
                ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);
                if (sink.paused_now) {
                        sink.paused_now = false;
                        stream_resume_read(sink.s);
                }
        }
        ck_assert_int_eq(sink.close_error, 0);
        ck_assert_uint_eq(sink.n_in, BIG_TOTAL + sizeof(big));
        ck_assert_uint_gt(sink.n_data, 100);
        ck_assert_uint_eq(sink.sum_in, p->sum_out);
        ck_assert_uint_ge(p->peer.drains, 10);
        ck_assert_uint_ge(p->congestions, 10);
        ck_assert_uint_le(p->max_queued, p->lim.hard_limit);
        ck_assert_uint_eq(stream_queued(p->peer.s), 0);
        /* The producer sees the sink's EOF once its side is flushed. */
        run_until(l, &p->peer.closed);
        ck_assert_int_eq(p->peer.close_error, 0);
        peer_done(&p->peer);
        peer_done(&sink);
}
END_TEST

/* ---- pause / resume ---- */

START_TEST(test_pause_resume)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        Peer a = {}, b = {};

        socketpair_streams(l, &a, &b);
        b.pause_after_first = true;
        ck_assert_int_eq(stream_write(a.s, "first", 5), 0);
        while (b.n_in == 0)
                ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);
        ck_assert_uint_eq(b.n_in, 5);

        b.pause_after_first = false;
        ck_assert_int_eq(stream_write(a.s, "second", 6), 0);
        while (stream_queued(a.s) > 0)
                ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);
        for (int i = 0; i < 5; i++)
                ck_assert_int_eq(loop_run_once(l, 1000), 0);
        ck_assert_uint_eq(b.n_in, 5); /* paused: nothing delivered */

        stream_resume_read(b.s);
        while (b.n_in < 11)
                ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);
        ck_assert_uint_eq(b.n_in, 11);

        /* Pausing while a receive is in flight holds what it brings. */
        stream_pause_read(b.s);
        ck_assert_int_eq(stream_write(a.s, "third", 5), 0);
        for (int i = 0; i < 5; i++)
                ck_assert_int_eq(loop_run_once(l, 1000), 0);
        ck_assert_uint_eq(b.n_in, 11);
        stream_resume_read(b.s);
        stream_resume_read(b.s);
        while (b.n_in < 16)
                ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);
        ck_assert_uint_eq(b.n_in, 16);
        peer_done(&a);
        peer_done(&b);
}
END_TEST

/* ---- errors and close ---- */

START_TEST(test_peer_reset)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        _cleanup_(loop_source_freep) LoopSource *acc = NULL;
        _cleanup_close_ int lfd = -EBADF, fd = -EBADF;
        char addr[SOCKET_ADDRESS_STRING_MAX];
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        Peer server = {};
        int r;

        lfd = listen_loopback(addr, sizeof(addr));
        accept_peer = &server;
        accepted_stream = NULL;
        ck_assert_int_eq(loop_add_accept(l, lfd, accept_to_stream, NULL, &acc), 0);
        r = socket_connect_start(addr, &fd);
        ck_assert_int_ge(r, 0);
        while (!accepted_stream)
                ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);
        ck_assert_int_eq(loop_run_once(l, 0), 0); /* the recv is in flight */

        /* An abortive close sends RST. */
        ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
        fd = safe_close(fd);
        server.free_on_close = true;
        run_until(l, &server.closed);
        ck_assert_int_eq(server.close_error, -ECONNRESET);
        ck_assert_ptr_null(server.s);
        buf_done(&server.in);
}
END_TEST

START_TEST(test_peer_gone_while_sending)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        _cleanup_free_ uint8_t *data = calloc(1, 4 << 20);
        Peer a = {}, b = {};

        ck_assert_ptr_nonnull(data);
        socketpair_streams(l, &a, &b);
        ck_assert_int_eq(stream_write(a.s, data, 4 << 20), 0);
        ck_assert_int_eq(loop_run_once(l, 0), 0); /* the send is in flight */
        b.s = stream_free(b.s);
        run_until(l, &a.closed);
        ck_assert_msg(a.close_error == -EPIPE || a.close_error == -ECONNRESET, "%d", a.close_error);
        ck_assert_uint_eq(stream_queued(a.s), 0);
        ck_assert_int_eq(stream_write(a.s, "x", 1), -ENOTCONN);
        peer_done(&a);
        peer_done(&b);
}
END_TEST

START_TEST(test_close_with_unread_input)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        _cleanup_free_ uint8_t *data = calloc(1, 100000);
        Peer a = {}, b = {};

        ck_assert_ptr_nonnull(data);
        socketpair_streams(l, &a, &b);
        /* a does not read what b sent, then closes after sending 100 kB: b must get
         * all of it and an orderly EOF, not a reset. */
        stream_pause_read(a.s);
        ck_assert_int_eq(stream_write(b.s, data, 1000), 0);
        while (stream_queued(b.s) > 0)
                ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);
        ck_assert_int_eq(stream_write(a.s, data, 100000), 0);
        stream_close(a.s);
        run_until(l, &b.closed);
        ck_assert_int_eq(b.close_error, 0);
        ck_assert_uint_eq(b.n_in, 100000);
        run_until(l, &a.closed);
        ck_assert_int_eq(a.close_error, 0);
        ck_assert_uint_eq(a.n_in, 0);
        peer_done(&a);
        peer_done(&b);
}
END_TEST

START_TEST(test_eof_after_flush)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        _cleanup_free_ uint8_t *data = malloc(4 << 20);
        Peer a = {}, b = {};

        ck_assert_ptr_nonnull(data);
        memset(data, 'z', 4 << 20);
        socketpair_streams(l, &a, &b);
        /* a has 4 MiB queued when b half-closes; a's on_close(0) waits for the flush. */
        ck_assert_int_eq(stream_write(a.s, data, 4 << 20), 0);
        ck_assert_int_eq(stream_shutdown_write(b.s), 0);
        ck_assert_int_eq(stream_write(b.s, "x", 1), -EPIPE);
        run_until(l, &a.closed);
        ck_assert_int_eq(a.close_error, 0);
        run_until(l, &b.closed);
        ck_assert_int_eq(b.close_error, 0);
        ck_assert_uint_eq(b.n_in, 4 << 20);
        peer_done(&a);
        peer_done(&b);
}
END_TEST

START_TEST(test_pipes)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        Peer r = {}, w = {};
        int p[2];

        signal(SIGPIPE, SIG_IGN);
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        ck_assert_int_eq(stream_new(l, p[0], &peer_ops, &r, &r.s), 0);
        ck_assert_int_eq(stream_new(l, p[1], &peer_ops, &w, &w.s), 0);
        r.keep = true;
        ck_assert_int_eq(stream_write(r.s, "x", 1), -EBADF);

        for (int i = 0; i < 1000; i++)
                ck_assert_int_eq(stream_write(w.s, "0123456789abcdef", 16), 0);
        ck_assert_int_eq(stream_shutdown_write(w.s), 0);
        run_until(l, &w.closed); /* a write-only pipe is done once flushed and closed */
        ck_assert_int_eq(w.close_error, 0);
        run_until(l, &r.closed);
        ck_assert_int_eq(r.close_error, 0);
        ck_assert_uint_eq(r.n_in, 16000);
        ck_assert(memcmp(buf_head(&r.in) + 15984, "0123456789abcdef", 16) == 0);
        peer_done(&r);
        peer_done(&w);

        /* The reader goes away: the writer learns it as -EPIPE. */
        Peer w2 = {};
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        safe_close(p[0]);
        ck_assert_int_eq(stream_new(l, p[1], &peer_ops, &w2, &w2.s), 0);
        ck_assert_int_eq(stream_write(w2.s, "lost", 4), 0);
        run_until(l, &w2.closed);
        ck_assert_int_eq(w2.close_error, -EPIPE);
        peer_done(&w2);
}
END_TEST

START_TEST(test_connect_refused)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        _cleanup_close_ int probe = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sin);
        char addr[SOCKET_ADDRESS_STRING_MAX];
        Peer c = {};
        int fd, r;

        /* A port that was just bound and nobody listens on. */
        ck_assert_int_ge(probe, 0);
        ck_assert_int_eq(bind(probe, (struct sockaddr *)&sin, sizeof(sin)), 0);
        ck_assert_int_eq(getsockname(probe, (struct sockaddr *)&sin, &len), 0);
        ck_assert_int_eq(socket_address_to_string((struct sockaddr *)&sin, len, addr, sizeof(addr)),
                         0);
        probe = safe_close(probe);

        r = socket_connect_start(addr, &fd);
        if (r == -ECONNREFUSED)
                return; /* refused synchronously: nothing left for the stream to do */
        ck_assert_int_eq(r, 1);
        ck_assert_int_eq(stream_new_connecting(l, fd, &peer_ops, &c, &c.s), 0);
        ck_assert_int_eq(stream_write(c.s, "hello", 5), 0);
        run_until(l, &c.closed);
        ck_assert_int_eq(c.close_error, -ECONNREFUSED);
        ck_assert_uint_eq(stream_queued(c.s), 0);
        peer_done(&c);
}
END_TEST

static void free_in_data(Stream *s, const void *data, size_t size, void *userdata)
{
        Peer *p = userdata;

        p->n_in += size;
        p->s = stream_free(s);
}

static const StreamOps free_in_data_ops = {
        .on_data = free_in_data,
        .on_close = peer_close,
};

START_TEST(test_free_from_callbacks)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        Peer a = {}, b = {};
        int sv[2];

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        ck_assert_int_eq(stream_new(l, sv[0], &peer_ops, &a, &a.s), 0);
        ck_assert_int_eq(stream_new(l, sv[1], &free_in_data_ops, &b, &b.s), 0);
        ck_assert_int_eq(stream_write(a.s, "ping", 4), 0);
        while (b.n_in == 0)
                ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);
        ck_assert_ptr_null(b.s);
        ck_assert(!b.closed); /* freed streams don't call back */
        /* a sees the EOF of b's closed fd. */
        a.free_on_close = true;
        run_until(l, &a.closed);
        ck_assert_int_eq(a.close_error, 0);

        /* Freed with output queued and ops in flight, then the loop goes. */
        Peer c = {}, d = {};
        socketpair_streams(l, &c, &d);
        ck_assert_int_eq(stream_write(c.s, "data", 4), 0);
        ck_assert_int_eq(loop_run_once(l, 0), 0);
        c.s = stream_free(c.s);
        ck_assert_int_eq(loop_run_once(l, 0), 0);

        /* A stream outliving its loop can still be freed. */
        Loop *l2 = new_loop();
        Peer e = {}, f = {};
        socketpair_streams(l2, &e, &f);
        ck_assert_int_eq(loop_run_once(l2, 0), 0);
        loop_free(l2);
        ck_assert_int_eq(stream_write(e.s, "x", 1), -ENOTCONN);
        peer_done(&e);
        peer_done(&f);
        peer_done(&d);
}
END_TEST

/* More connections with input at once than the loop has provided buffers (128): each
 * gets all of its bytes, in order, whether the kernel spreads the completions over
 * several waits (it does with DEFER_TASKRUN) or ends receives that find the ring empty
 * with ENOBUFS (which the stream re-arms). */
#define N_MANY 300

START_TEST(test_many_streams_share_buffers)
{
        _cleanup_(loop_freep) Loop *l = new_loop();
        _cleanup_free_ Peer *peers = new0(Peer, N_MANY);
        int raw[N_MANY];
        char msg[1000];
        unsigned done = 0;

        ck_assert_ptr_nonnull(peers);
        for (int i = 0; i < N_MANY; i++) {
                int sv[2];
                ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
                raw[i] = sv[0];
                peers[i].keep = true;
                ck_assert_int_eq(stream_new(l, sv[1], &peer_ops, &peers[i], &peers[i].s), 0);
        }
        ck_assert_int_eq(loop_run_once(l, 0), 0); /* all receives armed */
        for (int round = 0; round < 3; round++) {
                for (int i = 0; i < N_MANY; i++) {
                        memset(msg, 'a' + (i + round) % 26, sizeof(msg));
                        ck_assert_int_eq(write(raw[i], msg, sizeof(msg)), (int)sizeof(msg));
                }
                done = 0;
                while (done < N_MANY) {
                        ck_assert_int_eq(loop_run_once(l, USEC_INFINITY), 0);
                        done = 0;
                        for (int i = 0; i < N_MANY; i++)
                                done += peers[i].n_in == (uint64_t)(round + 1) * sizeof(msg);
                }
        }
        for (int i = 0; i < N_MANY; i++) {
                const uint8_t *b = buf_head(&peers[i].in);
                ck_assert_uint_eq(buf_size(&peers[i].in), 3 * sizeof(msg));
                for (int round = 0; round < 3; round++)
                        ck_assert_int_eq(b[round * sizeof(msg) + 999], 'a' + (i + round) % 26);
                safe_close(raw[i]);
        }
        for (int i = 0; i < N_MANY; i++) {
                run_until(l, &peers[i].closed);
                ck_assert_int_eq(peers[i].close_error, 0);
                peer_done(&peers[i]);
        }
}
END_TEST

/* ---- lifetimes under random churn ---- */

#define N_CHURN 64

typedef struct Churn {
        Stream *s;
        unsigned closes;
        bool freed;
        bool paused;
        int partner;
} Churn;

static Churn churn[N_CHURN];
static unsigned churn_seed = 12345;
static uint8_t churn_big[64 * 1024];

static unsigned churn_rand(void)
{
        churn_seed = churn_seed * 1103515245 + 12345;
        return churn_seed >> 16;
}

static void churn_free(int i)
{
        churn[i].s = stream_free(churn[i].s);
        churn[i].freed = true;
}

static void churn_data(Stream *s, const void *data, size_t size, void *userdata)
{
        int i = (int)(intptr_t)userdata;
        Churn *c = &churn[i];

        ck_assert(!c->freed);
        ck_assert_ptr_eq(c->s, s);
        ck_assert_uint_eq(c->closes, 0);
        switch (churn_rand() % 16) {
        case 0:
                churn_free(i);
                break;
        case 1:
                stream_close(s);
                break;
        case 2:
                stream_pause_read(s);
                c->paused = true;
                break;
        case 3:
                if (!churn[c->partner].freed)
                        churn_free(c->partner);
                break;
        case 4:
                (void)stream_shutdown_write(s);
                break;
        case 5:
                (void)stream_write(s, churn_big, sizeof(churn_big));
                break;
        default:
                (void)stream_write(s, data, MIN(size, (size_t)100));
                break;
        }
        if (!c->freed)
                ck_assert_uint_le(stream_queued(s), 1024 * 1024);
}

static void churn_close(Stream *s, int error, void *userdata)
{
        int i = (int)(intptr_t)userdata;
        Churn *c = &churn[i];

        ck_assert(!c->freed);
        ck_assert_uint_eq(c->closes, 0);
        c->closes++;
        if (churn_rand() % 2)
                churn_free(i);
}

static const StreamOps churn_ops = {
        .on_data = churn_data,
        .on_close = churn_close,
};

START_TEST(test_churn)
{
        Loop *l = new_loop();
        StreamLimits lim = {.high_water = 256 * 1024, .hard_limit = 1024 * 1024};

        memset(churn, 0, sizeof(churn));
        /* Fixed by default; CHURN_SEED=n explores other interleavings. */
        if (getenv("CHURN_SEED"))
                churn_seed = (unsigned)strtoul(getenv("CHURN_SEED"), NULL, 0);
        for (int i = 0; i < N_CHURN; i += 2) {
                int sv[2];
                ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
                for (int k = 0; k < 2; k++) {
                        ck_assert_int_eq(stream_new(l, sv[k], &churn_ops, (void *)(intptr_t)(i + k),
                                                    &churn[i + k].s),
                                         0);
                        stream_set_limits(churn[i + k].s, &lim);
                        churn[i + k].partner = i + (k ^ 1);
                }
        }
        for (int iter = 0; iter < 3000; iter++) {
                int i = (int)(churn_rand() % N_CHURN);
                Churn *c = &churn[i];

                if (!c->freed && c->closes == 0) {
                        if (c->paused && churn_rand() % 2) {
                                stream_resume_read(c->s);
                                c->paused = false;
                        }
                        (void)stream_write(c->s, "tick", 4);
                }
                ck_assert_int_eq(loop_run_once(l, churn_rand() % 4 ? 0 : 1000), 0);
        }
        unsigned n_closed = 0, n_freed = 0;
        for (int i = 0; i < N_CHURN; i++) {
                n_closed += churn[i].closes;
                n_freed += churn[i].freed;
        }
        /* The churn did churn. */
        ck_assert_uint_gt(n_closed, N_CHURN / 4);
        ck_assert_uint_gt(n_freed, N_CHURN / 8);
        for (int i = 0; i < N_CHURN; i++) {
                ck_assert_uint_le(churn[i].closes, 1);
                /* Half are freed before the loop, half after it (detached). */
                if (i % 2 && !churn[i].freed)
                        churn_free(i);
        }
        loop_free(l);
        for (int i = 0; i < N_CHURN; i++)
                if (!churn[i].freed)
                        churn_free(i);
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

        s = suite_create("stream");
        tc = tcase_create("stream");
        tcase_add_test(tc, test_echo_socketpair);
        tcase_add_test(tc, test_echo_tcp);
        tcase_add_test(tc, test_big_transfer);
        tcase_add_test(tc, test_pause_resume);
        tcase_add_test(tc, test_peer_reset);
        tcase_add_test(tc, test_peer_gone_while_sending);
        tcase_add_test(tc, test_close_with_unread_input);
        tcase_add_test(tc, test_eof_after_flush);
        tcase_add_test(tc, test_pipes);
        tcase_add_test(tc, test_connect_refused);
        tcase_add_test(tc, test_free_from_callbacks);
        tcase_add_test(tc, test_many_streams_share_buffers);
        tcase_add_test(tc, test_churn);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? 0 : 1;
}
