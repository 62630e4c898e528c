/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <check.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "basic/alloc-util.h"
#include "basic/buf.h"
#include "basic/fd-util.h"
#include "basic/string-util.h"
#include "shared/tls.h"

static char tmpdir[] = "/tmp/test-tls-XXXXXX";

static void setup(void)
{
        strcpy(tmpdir, "/tmp/test-tls-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
        (void)rm_rf(tmpdir);
}

static TlsIdentity *make_identity(const char *name)
{
        TlsIdentity *id = NULL;

        ck_assert_int_eq(tls_identity_load_or_create(tmpdir, name, name, &id), 0);
        ck_assert_ptr_nonnull(id);
        return id;
}

/* Moves pending ciphertext from one session to the other; true if anything moved. */
static bool move(TlsSession *from, TlsSession *to)
{
        const void *p;
        size_t n = tls_session_pending_output(from, &p);

        if (n == 0)
                return false;
        ck_assert_int_eq(tls_session_feed(to, p, n), 0);
        tls_session_consume_output(from, n);
        return true;
}

/* Reads all available plaintext of s into sink. */
static void drain(TlsSession *s, Buf *sink)
{
        for (;;) {
                uint8_t *w = buf_reserve(sink, 65536);
                ck_assert_ptr_nonnull(w);
                ssize_t n = tls_session_read(s, w, 65536);
                ck_assert_msg(n >= 0, "read: %zd %s", n, strna(tls_session_error(s)));
                if (n == 0)
                        return;
                buf_commit(sink, (size_t)n);
        }
}

/* Shuffles bytes both ways until neither side has anything to send, reading plaintext
 * as it arrives (reads may produce output: key update answers). */
static void pump(TlsSession *a, TlsSession *b, Buf *sink_a, Buf *sink_b)
{
        for (unsigned i = 0; i < 100000; i++) {
                bool moved = move(a, b);
                moved = move(b, a) || moved;
                if (sink_a && tls_session_handshake_done(a))
                        drain(a, sink_a);
                if (sink_b && tls_session_handshake_done(b))
                        drain(b, sink_b);
                if (!moved && tls_session_pending_output(a, NULL) == 0 &&
                    tls_session_pending_output(b, NULL) == 0)
                        return;
        }
        ck_abort_msg("pump did not settle");
}

static void handshake(TlsIdentity *sid, TlsIdentity *cid, TlsSession **ret_server,
                      TlsSession **ret_client)
{
        TlsSession *server = NULL, *client = NULL;

        ck_assert_int_eq(tls_session_new(sid, true, &server), 0);
        ck_assert_int_eq(tls_session_new(cid, false, &client), 0);
        ck_assert(!tls_session_handshake_done(server));
        ck_assert(!tls_session_handshake_done(client));
        /* The client's hello is ready before anything was fed. */
        ck_assert_uint_gt(tls_session_pending_output(client, NULL), 0);
        pump(server, client, NULL, NULL);
        ck_assert(tls_session_handshake_done(server));
        ck_assert(tls_session_handshake_done(client));
        ck_assert_ptr_null(tls_session_error(server));
        ck_assert_ptr_null(tls_session_error(client));
        *ret_server = server;
        *ret_client = client;
}

START_TEST(test_fingerprint_hex)
{
        uint8_t fp[TLS_FINGERPRINT_SIZE], back[TLS_FINGERPRINT_SIZE];
        char hex[TLS_FINGERPRINT_HEX_SIZE];

        for (size_t i = 0; i < sizeof(fp); i++)
                fp[i] = (uint8_t)(i * 7 + 0xa0);
        tls_fingerprint_to_hex(fp, hex);
        ck_assert_uint_eq(strlen(hex), 64);
        ck_assert_str_eq(hex + 60, "7279");
        ck_assert_int_eq(tls_fingerprint_from_hex(hex, back), 0);
        ck_assert(memcmp(fp, back, sizeof(fp)) == 0);
        ck_assert_int_eq(tls_fingerprint_from_hex("abcd", back), -EINVAL);
        hex[3] = 'z';
        ck_assert_int_eq(tls_fingerprint_from_hex(hex, back), -EINVAL);
        ck_assert_int_eq(tls_fingerprint_from_hex(NULL, back), -EINVAL);
}
END_TEST

START_TEST(test_identity_create_reload)
{
        _cleanup_(tls_identity_unrefp) TlsIdentity *a = NULL, *b = NULL, *c = NULL;
        _cleanup_free_ char *key = strprintf("%s/node.key", tmpdir);
        _cleanup_free_ char *crt = strprintf("%s/node.crt", tmpdir);
        _cleanup_free_ char *text = NULL;
        struct stat st;

        a = make_identity("node");
        ck_assert_int_eq(stat(key, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0600);
        ck_assert_int_eq(stat(crt, &st), 0);
        ck_assert_int_eq(read_full_file(crt, &text, NULL, 65536), 0);
        ck_assert_ptr_nonnull(strstr(text, "BEGIN CERTIFICATE"));

        /* Reloading gives the same identity, a new name a new one. */
        b = make_identity("node");
        ck_assert(memcmp(tls_identity_fingerprint(a), tls_identity_fingerprint(b),
                         TLS_FINGERPRINT_SIZE) == 0);
        c = make_identity("other");
        ck_assert(memcmp(tls_identity_fingerprint(a), tls_identity_fingerprint(c),
                         TLS_FINGERPRINT_SIZE) != 0);

        /* No temporary files are left behind. */
        _cleanup_free_ char *cmd = strprintf("ls %s | grep -q tmp", tmpdir);
        ck_assert_int_ne(system(cmd), 0);

        ck_assert_ptr_eq(tls_identity_ref(a), a);
        ck_assert_ptr_null(tls_identity_unref(a));
}
END_TEST

START_TEST(test_identity_refused)
{
        _cleanup_(tls_identity_unrefp) TlsIdentity *a = NULL, *b = NULL;
        _cleanup_free_ char *key = strprintf("%s/node.key", tmpdir);
        _cleanup_free_ char *crt = strprintf("%s/node.crt", tmpdir);
        _cleanup_free_ char *okey = strprintf("%s/other.key", tmpdir);
        _cleanup_free_ char *key_text = NULL, *crt_text = NULL;
        TlsIdentity *x = NULL;

        a = make_identity("node");
        b = make_identity("other");
        ck_assert_int_eq(read_full_file(key, &key_text, NULL, 65536), 0);
        ck_assert_int_eq(read_full_file(crt, &crt_text, NULL, 65536), 0);

        /* Certificate missing: refused, and the key is not replaced. */
        ck_assert_int_eq(unlink(crt), 0);
        ck_assert_int_eq(tls_identity_load_or_create(tmpdir, "node", "node", &x), -EBADMSG);
        ck_assert_ptr_null(x);
        ck_assert_int_eq(access(crt, F_OK), -1);

        /* Key missing. */
        ck_assert_int_eq(write_file_atomic(crt, crt_text, strlen(crt_text), 0644), 0);
        ck_assert_int_eq(unlink(key), 0);
        ck_assert_int_eq(tls_identity_load_or_create(tmpdir, "node", "node", &x), -EBADMSG);
        ck_assert_int_eq(access(key, F_OK), -1);

        /* Corrupt key. */
        ck_assert_int_eq(write_file_atomic(key, "garbage\n", 8, 0600), 0);
        ck_assert_int_eq(tls_identity_load_or_create(tmpdir, "node", "node", &x), -EBADMSG);

        /* Truncated key. */
        ck_assert_int_eq(write_file_atomic(key, key_text, strlen(key_text) / 2, 0600), 0);
        ck_assert_int_eq(tls_identity_load_or_create(tmpdir, "node", "node", &x), -EBADMSG);

        /* Empty certificate. */
        ck_assert_int_eq(write_file_atomic(key, key_text, strlen(key_text), 0600), 0);
        ck_assert_int_eq(write_file_atomic(crt, "", 0, 0644), 0);
        ck_assert_int_eq(tls_identity_load_or_create(tmpdir, "node", "node", &x), -EBADMSG);

        /* A key that is not the certificate's. */
        ck_assert_int_eq(write_file_atomic(crt, crt_text, strlen(crt_text), 0644), 0);
        _cleanup_free_ char *other_key = NULL;
        ck_assert_int_eq(read_full_file(okey, &other_key, NULL, 65536), 0);
        ck_assert_int_eq(write_file_atomic(key, other_key, strlen(other_key), 0600), 0);
        ck_assert_int_eq(tls_identity_load_or_create(tmpdir, "node", "node", &x), -EBADMSG);

        /* Restored, it loads again with its old fingerprint. */
        ck_assert_int_eq(write_file_atomic(key, key_text, strlen(key_text), 0600), 0);
        ck_assert_int_eq(tls_identity_load_or_create(tmpdir, "node", "node", &x), 0);
        ck_assert(memcmp(tls_identity_fingerprint(a), tls_identity_fingerprint(x),
                         TLS_FINGERPRINT_SIZE) == 0);
        tls_identity_unref(x);

        ck_assert_int_eq(tls_identity_load_or_create(tmpdir, "bad", "", &x), -EINVAL);
}
END_TEST

START_TEST(test_handshake_fingerprints)
{
        _cleanup_(tls_identity_unrefp) TlsIdentity *sid = make_identity("server");
        _cleanup_(tls_identity_unrefp) TlsIdentity *cid = make_identity("client");
        _cleanup_(tls_session_freep) TlsSession *server = NULL, *client = NULL;
        uint8_t fp[TLS_FINGERPRINT_SIZE];
        uint8_t buf[16];

        ck_assert_int_eq(tls_session_new(sid, true, &server), 0);
        ck_assert_int_eq(tls_session_peer_fingerprint(server, fp), -ENODATA);
        ck_assert_int_eq(tls_session_write(server, "x", 1), -ENOTCONN);
        ck_assert_int_eq(tls_session_read(server, buf, sizeof(buf)), 0);
        server = tls_session_free(server);

        handshake(sid, cid, &server, &client);
        ck_assert_int_eq(tls_session_peer_fingerprint(server, fp), 0);
        ck_assert(memcmp(fp, tls_identity_fingerprint(cid), sizeof(fp)) == 0);
        ck_assert_int_eq(tls_session_peer_fingerprint(client, fp), 0);
        ck_assert(memcmp(fp, tls_identity_fingerprint(sid), sizeof(fp)) == 0);

        /* Identities outlive the caller's reference through the sessions. */
        sid = tls_identity_unref(sid);
        cid = tls_identity_unref(cid);
        ck_assert_int_eq(tls_session_write(client, "ping", 4), 0);
        pump(server, client, NULL, NULL);
        ck_assert_int_eq(tls_session_read(server, buf, sizeof(buf)), 4);
        ck_assert(memcmp(buf, "ping", 4) == 0);
        ck_assert_int_eq(tls_session_read(server, buf, sizeof(buf)), 0);
}
END_TEST

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
        uint32_t x = seed;
        for (size_t i = 0; i < n; i++) {
                x = x * 1103515245u + 12345u;
                p[i] = (uint8_t)(x >> 16);
        }
}

START_TEST(test_bulk_both_ways)
{
        _cleanup_(tls_identity_unrefp) TlsIdentity *sid = make_identity("server");
        _cleanup_(tls_identity_unrefp) TlsIdentity *cid = make_identity("client");
        _cleanup_(tls_session_freep) TlsSession *server = NULL, *client = NULL;
        const size_t total = 10U * 1024 * 1024;
        _cleanup_free_ uint8_t *up = malloc(total), *down = malloc(total);
        Buf got_server = {}, got_client = {};
        size_t sent = 0;
        unsigned chunk = 1;

        ck_assert_ptr_nonnull(up);
        ck_assert_ptr_nonnull(down);
        fill_pattern(up, total, 1);
        fill_pattern(down, total, 2);
        handshake(sid, cid, &server, &client);

        /* Irregular write sizes, a key update from each side half-way. */
        while (sent < total) {
                size_t n = MIN(total - sent, (size_t)chunk);
                ck_assert_int_eq(tls_session_write(client, up + sent, n), 0);
                ck_assert_int_eq(tls_session_write(server, down + sent, n), 0);
                sent += n;
                chunk = chunk * 3 + 17;
                if (chunk > 300000)
                        chunk = chunk % 1000 + 1;
                if (sent > total / 2 && sent - n <= total / 2) {
                        ck_assert_int_eq(tls_session_key_update(client), 0);
                        ck_assert_int_eq(tls_session_key_update(server), 0);
                }
                pump(server, client, &got_server, &got_client);
        }
        pump(server, client, &got_server, &got_client);
        ck_assert_uint_eq(buf_size(&got_server), total);
        ck_assert_uint_eq(buf_size(&got_client), total);
        ck_assert(memcmp(buf_head(&got_server), up, total) == 0);
        ck_assert(memcmp(buf_head(&got_client), down, total) == 0);
        buf_done(&got_server);
        buf_done(&got_client);
}
END_TEST

START_TEST(test_close_notify)
{
        _cleanup_(tls_identity_unrefp) TlsIdentity *sid = make_identity("server");
        _cleanup_(tls_identity_unrefp) TlsIdentity *cid = make_identity("client");
        _cleanup_(tls_session_freep) TlsSession *server = NULL, *client = NULL;
        uint8_t buf[64];

        handshake(sid, cid, &server, &client);
        ck_assert_int_eq(tls_session_write(client, "last words", 10), 0);
        tls_session_bye(client);
        ck_assert_int_eq(tls_session_write(client, "more", 4), -EPIPE);
        pump(server, client, NULL, NULL);
        /* Data before the close_notify is delivered, then -EPIPE, and it stays so. */
        ck_assert_int_eq(tls_session_read(server, buf, sizeof(buf)), 10);
        ck_assert(memcmp(buf, "last words", 10) == 0);
        ck_assert_int_eq(tls_session_read(server, buf, sizeof(buf)), -EPIPE);
        ck_assert_int_eq(tls_session_read(server, buf, sizeof(buf)), -EPIPE);
        ck_assert_ptr_null(tls_session_error(server));
}
END_TEST

static void feed_garbage(TlsIdentity *sid, const void *garbage, size_t n)
{
        _cleanup_(tls_session_freep) TlsSession *server = NULL;
        uint8_t buf[64];
        int r;

        ck_assert_int_eq(tls_session_new(sid, true, &server), 0);
        r = tls_session_feed(server, garbage, n);
        ck_assert_int_lt(r, 0);
        ck_assert_ptr_nonnull(tls_session_error(server));
        ck_assert_uint_gt(strlen(tls_session_error(server)), 0);
        ck_assert(!tls_session_handshake_done(server));
        /* The error is sticky. */
        ck_assert_int_eq(tls_session_feed(server, "x", 1), r);
        ck_assert_int_eq(tls_session_read(server, buf, sizeof(buf)), r);
        ck_assert_int_eq(tls_session_write(server, "x", 1), r);
}

START_TEST(test_garbage)
{
        _cleanup_(tls_identity_unrefp) TlsIdentity *sid = make_identity("server");
        static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        /* A handshake record header announcing a ClientHello full of junk. */
        static const uint8_t fake_hello[] = {0x16, 0x03, 0x01, 0x00, 0x10, 0x01, 0x00,
                                             0x00, 0x0c, 0xff, 0xff, 0xff, 0xff, 0xff,
                                             0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
        uint8_t random_bytes[4096];

        feed_garbage(sid, http, strlen(http));
        feed_garbage(sid, fake_hello, sizeof(fake_hello));
        fill_pattern(random_bytes, sizeof(random_bytes), 7);
        feed_garbage(sid, random_bytes, sizeof(random_bytes));
}
END_TEST

START_TEST(test_garbage_after_handshake)
{
        _cleanup_(tls_identity_unrefp) TlsIdentity *sid = make_identity("server");
        _cleanup_(tls_identity_unrefp) TlsIdentity *cid = make_identity("client");
        _cleanup_(tls_session_freep) TlsSession *server = NULL, *client = NULL;
        uint8_t junk[100], buf[64];

        handshake(sid, cid, &server, &client);
        /* An application-data record whose contents do not authenticate. */
        fill_pattern(junk, sizeof(junk), 3);
        junk[0] = 0x17;
        junk[1] = 0x03;
        junk[2] = 0x03;
        junk[3] = 0x00;
        junk[4] = sizeof(junk) - 5;
        ck_assert_int_eq(tls_session_feed(server, junk, sizeof(junk)), 0);
        ck_assert_int_lt(tls_session_read(server, buf, sizeof(buf)), 0);
        ck_assert_ptr_nonnull(tls_session_error(server));
}
END_TEST

/* A plain GnuTLS client on memory buffers, without any certificate. */
typedef struct RawClient {
        gnutls_session_t session;
        gnutls_certificate_credentials_t cred;
        Buf in, out;
} RawClient;

static ssize_t raw_push(gnutls_transport_ptr_t p, const void *data, size_t size)
{
        RawClient *c = p;
        ck_assert_int_eq(buf_append(&c->out, data, size), 0);
        return (ssize_t)size;
}

static ssize_t raw_pull(gnutls_transport_ptr_t p, void *data, size_t size)
{
        RawClient *c = p;
        size_t n = MIN(size, buf_size(&c->in));

        if (n == 0) {
                gnutls_transport_set_errno(c->session, EAGAIN);
                return -1;
        }
        memcpy(data, buf_head(&c->in), n);
        buf_consume(&c->in, n);
        return (ssize_t)n;
}

static int raw_pull_timeout(gnutls_transport_ptr_t p, unsigned ms)
{
        RawClient *c = p;

        if (buf_size(&c->in) > 0)
                return 1;
        gnutls_transport_set_errno(c->session, EAGAIN);
        return -1;
}

START_TEST(test_client_without_certificate)
{
        _cleanup_(tls_identity_unrefp) TlsIdentity *sid = make_identity("server");
        _cleanup_(tls_session_freep) TlsSession *server = NULL;
        RawClient c = {};
        int r = 0, hs = GNUTLS_E_AGAIN;

        ck_assert_int_eq(gnutls_certificate_allocate_credentials(&c.cred), 0);
        ck_assert_int_eq(gnutls_init(&c.session, GNUTLS_CLIENT | GNUTLS_NONBLOCK), 0);
        ck_assert_int_eq(
                gnutls_priority_set_direct(c.session, "NORMAL:-VERS-ALL:+VERS-TLS1.3", NULL), 0);
        ck_assert_int_eq(gnutls_credentials_set(c.session, GNUTLS_CRD_CERTIFICATE, c.cred), 0);
        gnutls_transport_set_ptr(c.session, &c);
        gnutls_transport_set_push_function(c.session, raw_push);
        gnutls_transport_set_pull_function(c.session, raw_pull);
        gnutls_transport_set_pull_timeout_function(c.session, raw_pull_timeout);

        ck_assert_int_eq(tls_session_new(sid, true, &server), 0);
        for (unsigned i = 0; i < 100 && r == 0; i++) {
                const void *p;
                size_t n;

                if (hs == GNUTLS_E_AGAIN || hs == GNUTLS_E_INTERRUPTED)
                        hs = gnutls_handshake(c.session);
                if (buf_size(&c.out) > 0) {
                        r = tls_session_feed(server, buf_head(&c.out), buf_size(&c.out));
                        buf_clear(&c.out);
                }
                n = tls_session_pending_output(server, &p);
                ck_assert_int_eq(buf_append(&c.in, p, n), 0);
                tls_session_consume_output(server, n);
        }
        /* The server demands a certificate: no handshake without one. */
        ck_assert_int_lt(r, 0);
        ck_assert(!tls_session_handshake_done(server));
        ck_assert_ptr_nonnull(tls_session_error(server));
        ck_assert_ptr_nonnull(strstr(tls_session_error(server), "ertificate"));

        gnutls_deinit(c.session);
        gnutls_certificate_free_credentials(c.cred);
        buf_done(&c.in);
        buf_done(&c.out);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("tls");
        TCase *tc = tcase_create("tls");
        SRunner *sr;
        int failed;

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_fingerprint_hex);
        tcase_add_test(tc, test_identity_create_reload);
        tcase_add_test(tc, test_identity_refused);
        tcase_add_test(tc, test_handshake_fingerprints);
        tcase_add_test(tc, test_bulk_both_ways);
        tcase_add_test(tc, test_close_notify);
        tcase_add_test(tc, test_garbage);
        tcase_add_test(tc, test_garbage_after_handshake);
        tcase_add_test(tc, test_client_without_certificate);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
