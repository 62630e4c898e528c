/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "basic/alloc-util.h"
#include "basic/buf.h"
#include "basic/fd-util.h"
#include "basic/string-util.h"
#include "shared/tls.h"

/* TLS 1.3 only. AES-128-GCM comes first: GnuTLS's NORMAL order may otherwise pick
 * CHACHA20-POLY1305, several times slower than AES-NI on the machines we run on. */
#define TLS_PRIORITY                                                                               \
        "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"                     \
        "+CHACHA20-POLY1305"

/* An empty buffer larger than this is freed rather than kept: after a burst, an idle
 * connection should not hold megabytes (a scheduler has a thousand of them). */
#define TLS_BUF_KEEP_MAX (1024U * 1024)

/* Key and certificate files are small; anything bigger is not ours. */
#define TLS_FILE_MAX (64U * 1024)

struct TlsIdentity {
        unsigned n_ref;
        gnutls_certificate_credentials_t cred;
        uint8_t fingerprint[TLS_FINGERPRINT_SIZE];
};

struct TlsSession {
        gnutls_session_t session;
        TlsIdentity *identity;
        Buf in; /* ciphertext received, not yet pulled by GnuTLS */
        Buf out; /* ciphertext GnuTLS pushed, not yet sent by the caller */
        bool server;
        bool handshake_done;
        bool peer_closed; /* close_notify received */
        bool bye_sent;
        int error; /* sticky fatal error, 0 if none */
        char error_text[256];
};

static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int tls_global_error;
static gnutls_priority_t tls_priority;

static void tls_global_setup(void)
{
        int r;

        r = gnutls_global_init();
        if (r < 0) {
                tls_global_error = -EIO;
                return;
        }
        r = gnutls_priority_init2(&tls_priority, TLS_PRIORITY, NULL, 0);
        if (r < 0)
                tls_global_error = -EINVAL;
}

static int tls_global_init(void)
{
        if (pthread_once(&tls_once, tls_global_setup) != 0)
                return -EIO;
        return tls_global_error;
}

/* GnuTLS errors in -errno terms. The GnuTLS text is kept next to it for people. */
static int errno_from_gnutls(int r)
{
        switch (r) {
        case GNUTLS_E_MEMORY_ERROR:
                return -ENOMEM;
        case GNUTLS_E_PREMATURE_TERMINATION:
        case GNUTLS_E_PUSH_ERROR:
        case GNUTLS_E_PULL_ERROR:
                return -ECONNRESET;
        case GNUTLS_E_FILE_ERROR:
                return -EIO;
        default:
                return -EPROTO;
        }
}

/* ---- identity ---- */

static TlsIdentity *tls_identity_free(TlsIdentity *id)
{
        if (!id)
                return NULL;
        if (id->cred)
                gnutls_certificate_free_credentials(id->cred);
        return mfree(id);
}

TlsIdentity *tls_identity_ref(TlsIdentity *id)
{
        if (id) {
                assert(id->n_ref > 0);
                id->n_ref++;
        }
        return id;
}

TlsIdentity *tls_identity_unref(TlsIdentity *id)
{
        if (!id)
                return NULL;
        assert(id->n_ref > 0);
        if (--id->n_ref == 0)
                tls_identity_free(id);
        return NULL;
}

const uint8_t *tls_identity_fingerprint(const TlsIdentity *id)
{
        return id->fingerprint;
}

const char *tls_fingerprint_to_hex(const uint8_t fp[TLS_FINGERPRINT_SIZE], char *buf)
{
        static const char hex[] = "0123456789abcdef";

        for (size_t i = 0; i < TLS_FINGERPRINT_SIZE; i++) {
                buf[2 * i] = hex[fp[i] >> 4];
                buf[2 * i + 1] = hex[fp[i] & 15];
        }
        buf[TLS_FINGERPRINT_HEX_SIZE - 1] = 0;
        return buf;
}

int tls_fingerprint_from_hex(const char *s, uint8_t ret[TLS_FINGERPRINT_SIZE])
{
        uint8_t fp[TLS_FINGERPRINT_SIZE];

        if (!s || strlen(s) != TLS_FINGERPRINT_SIZE * 2)
                return -EINVAL;
        if (unhexmem(s, fp, sizeof(fp)) < 0)
                return -EINVAL;
        memcpy(ret, fp, sizeof(fp));
        return 0;
}

static void x509_privkey_freep(gnutls_x509_privkey_t *k)
{
        if (*k)
                gnutls_x509_privkey_deinit(*k);
}
static void x509_crt_freep(gnutls_x509_crt_t *c)
{
        if (*c)
                gnutls_x509_crt_deinit(*c);
}
static void privkey_freep(gnutls_privkey_t *k)
{
        if (*k)
                gnutls_privkey_deinit(*k);
}
static void datum_freep(gnutls_datum_t *d)
{
        gnutls_free(d->data);
        d->data = NULL;
}
static void datum_secret_freep(gnutls_datum_t *d)
{
        if (d->data) {
                explicit_bzero_safe(d->data, d->size);
                gnutls_free(d->data);
                d->data = NULL;
        }
}

typedef struct SecretText {
        char *data;
        size_t size;
} SecretText;
static void secret_text_freep(SecretText *t)
{
        if (t->data) {
                explicit_bzero_safe(t->data, t->size);
                t->data = mfree(t->data);
        }
}

/* Writes a new file that must not exist yet: the content goes to a temporary file in
 * the same directory (created 0600, then given its mode), is synced, and is linked into
 * place, which fails with -EEXIST instead of replacing anything, like O_EXCL would. A
 * reader never sees a partial file. */
static int write_new_file(const char *path, const void *data, size_t size, mode_t mode)
{
        _cleanup_free_ char *tmp = strprintf("%s.tmpXXXXXX", path);
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (!tmp)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = fchmod(fd, mode) < 0 ? -errno : 0;
        if (r >= 0)
                r = loop_write(fd, data, size);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && link(tmp, path) < 0)
                r = -errno;
        (void)unlink(tmp);
        return r;
}

static int fsync_directory(const char *dir)
{
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0)
                return -errno;
        return fsync(fd) < 0 ? -errno : 0;
}

static int identity_generate(const char *common_name, gnutls_datum_t *ret_key_pem,
                             gnutls_datum_t *ret_crt_pem)
{
        _cleanup_(x509_privkey_freep) gnutls_x509_privkey_t key = NULL;
        _cleanup_(privkey_freep) gnutls_privkey_t signer = NULL;
        _cleanup_(x509_crt_freep) gnutls_x509_crt_t crt = NULL;
        _cleanup_(datum_secret_freep) gnutls_datum_t key_pem = {};
        _cleanup_(datum_freep) gnutls_datum_t crt_pem = {};
        uint8_t serial[16];
        time_t now = time(NULL);
        int r;

        if (gnutls_x509_privkey_init(&key) < 0 || gnutls_x509_crt_init(&crt) < 0 ||
            gnutls_privkey_init(&signer) < 0)
                return -ENOMEM;

        r = gnutls_x509_privkey_generate2(
                key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0, NULL, 0);
        if (r < 0)
                return errno_from_gnutls(r);

        /* A positive 127-bit random serial: peers that cache by issuer+serial never see
         * two of our certificates collide. */
        r = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial));
        if (r < 0)
                return -EIO;
        serial[0] &= 0x7f;
        serial[0] |= 0x01;

        if (gnutls_x509_crt_set_version(crt, 3) < 0 ||
            gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)) < 0 ||
            gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, common_name,
                                          strlen(common_name)) < 0 ||
            gnutls_x509_crt_set_issuer_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, common_name,
                                                 strlen(common_name)) < 0 ||
            /* A day of slack for peers whose clocks are behind. */
            gnutls_x509_crt_set_activation_time(crt, now - 24 * 3600) < 0 ||
            /* Nodes are pinned by fingerprint: the certificate must never expire under a
             * running cluster. (time_t)-1 is RFC 5280's "no well-defined expiration". */
            gnutls_x509_crt_set_expiration_time(crt, (time_t)-1) < 0 ||
            gnutls_x509_crt_set_basic_constraints(crt, 0, -1) < 0 ||
            gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE) < 0 ||
            gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0) < 0 ||
            gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT, 0) < 0)
                return -EINVAL;
        r = gnutls_x509_crt_set_key(crt, key);
        if (r < 0)
                return errno_from_gnutls(r);
        r = gnutls_privkey_import_x509(signer, key, 0);
        if (r < 0)
                return errno_from_gnutls(r);
        r = gnutls_x509_crt_privkey_sign(crt, crt, signer, GNUTLS_DIG_SHA256, 0);
        if (r < 0)
                return errno_from_gnutls(r);

        r = gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &key_pem);
        if (r < 0)
                return errno_from_gnutls(r);
        r = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &crt_pem);
        if (r < 0)
                return errno_from_gnutls(r);

        *ret_key_pem = key_pem;
        *ret_crt_pem = crt_pem;
        key_pem = (gnutls_datum_t){};
        crt_pem = (gnutls_datum_t){};
        return 0;
}

static int identity_create_files(const char *dir, const char *key_path, const char *crt_path,
                                 const char *common_name)
{
        _cleanup_(datum_secret_freep) gnutls_datum_t key_pem = {};
        _cleanup_(datum_freep) gnutls_datum_t crt_pem = {};
        int r;

        r = identity_generate(common_name, &key_pem, &crt_pem);
        if (r < 0)
                return r;

        /* The key goes first: it is the file whose exclusive creation decides who won if
         * two processes start at once. Whoever loses loads the winner's files. */
        r = write_new_file(key_path, key_pem.data, key_pem.size, 0600);
        if (r == -EEXIST)
                return 0;
        if (r < 0)
                return r;
        r = write_new_file(crt_path, crt_pem.data, crt_pem.size, 0644);
        if (r < 0) {
                (void)unlink(key_path);
                return r;
        }
        return fsync_directory(dir);
}

static int identity_load_files(const char *key_path, const char *crt_path, TlsIdentity *id)
{
        _cleanup_(secret_text_freep) SecretText key_text = {};
        _cleanup_free_ char *crt_text = NULL;
        _cleanup_(x509_privkey_freep) gnutls_x509_privkey_t key = NULL;
        _cleanup_(x509_crt_freep) gnutls_x509_crt_t crt = NULL;
        size_t crt_size, fp_size = TLS_FINGERPRINT_SIZE;
        int r;

        r = read_full_file(key_path, &key_text.data, &key_text.size, TLS_FILE_MAX);
        if (r == -EFBIG)
                return -EBADMSG;
        if (r < 0)
                return r;
        r = read_full_file(crt_path, &crt_text, &crt_size, TLS_FILE_MAX);
        if (r == -EFBIG)
                return -EBADMSG;
        if (r < 0)
                return r;

        if (gnutls_x509_privkey_init(&key) < 0 || gnutls_x509_crt_init(&crt) < 0)
                return -ENOMEM;
        r = gnutls_x509_privkey_import(
                key, &(gnutls_datum_t){(unsigned char *)key_text.data, (unsigned)key_text.size},
                GNUTLS_X509_FMT_PEM);
        if (r < 0)
                return r == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EBADMSG;
        r = gnutls_x509_crt_import(crt,
                                   &(gnutls_datum_t){(unsigned char *)crt_text, (unsigned)crt_size},
                                   GNUTLS_X509_FMT_PEM);
        if (r < 0)
                return r == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EBADMSG;

        r = gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, id->fingerprint, &fp_size);
        if (r < 0 || fp_size != TLS_FINGERPRINT_SIZE)
                return -EBADMSG;

        r = gnutls_certificate_allocate_credentials(&id->cred);
        if (r < 0)
                return -ENOMEM;
        /* Also checks that the key belongs to the certificate. */
        r = gnutls_certificate_set_x509_key(id->cred, &crt, 1, key);
        if (r < 0)
                return r == GNUTLS_E_MEMORY_ERROR ? -ENOMEM : -EBADMSG;
        return 0;
}

int tls_identity_load_or_create(const char *dir, const char *name, const char *common_name,
                                TlsIdentity **ret)
{
        _cleanup_free_ char *key_path = NULL, *crt_path = NULL;
        _cleanup_(tls_identity_unrefp) TlsIdentity *id = NULL;
        bool have_key, have_crt;
        int r;

        assert(dir && name && ret);

        if (isempty(common_name) || strlen(common_name) > 64)
                return -EINVAL;
        r = tls_global_init();
        if (r < 0)
                return r;

        key_path = strprintf("%s/%s.key", dir, name);
        crt_path = strprintf("%s/%s.crt", dir, name);
        if (!key_path || !crt_path)
                return -ENOMEM;

        have_key = access(key_path, F_OK) >= 0;
        if (!have_key && errno != ENOENT)
                return -errno;
        have_crt = access(crt_path, F_OK) >= 0;
        if (!have_crt && errno != ENOENT)
                return -errno;
        if (have_key != have_crt)
                return -EBADMSG;
        if (!have_key) {
                r = mkdir_p(dir, 0700);
                if (r < 0)
                        return r;
                r = identity_create_files(dir, key_path, crt_path, common_name);
                if (r < 0)
                        return r;
        }

        id = new0(TlsIdentity, 1);
        if (!id)
                return -ENOMEM;
        id->n_ref = 1;
        r = identity_load_files(key_path, crt_path, id);
        if (r == -ENOENT) /* lost a creation race half-way: treat as half-present */
                return -EBADMSG;
        if (r < 0)
                return r;

        *ret = TAKE_PTR(id);
        return 0;
}

/* ---- session ---- */

static ssize_t session_vec_push(gnutls_transport_ptr_t p, const giovec_t *iov, int iovcnt)
{
        TlsSession *s = p;
        size_t total = 0;
        uint8_t *w;

        for (int i = 0; i < iovcnt; i++)
                if (size_add_overflow(total, iov[i].iov_len, &total)) {
                        gnutls_transport_set_errno(s->session, EMSGSIZE);
                        return -1;
                }
        w = buf_reserve(&s->out, total);
        if (!w) {
                gnutls_transport_set_errno(s->session, ENOMEM);
                return -1;
        }
        for (int i = 0; i < iovcnt; i++) {
                memcpy(w, iov[i].iov_base, iov[i].iov_len);
                w += iov[i].iov_len;
        }
        buf_commit(&s->out, total);
        return (ssize_t)total;
}

static ssize_t session_pull(gnutls_transport_ptr_t p, void *data, size_t size)
{
        TlsSession *s = p;
        size_t n = MIN(size, buf_size(&s->in));

        if (n == 0) {
                gnutls_transport_set_errno(s->session, EAGAIN);
                return -1;
        }
        memcpy(data, buf_head(&s->in), n);
        buf_consume(&s->in, n);
        if (buf_size(&s->in) == 0 && s->in.cap > TLS_BUF_KEEP_MAX)
                buf_done(&s->in);
        return (ssize_t)n;
}

/* In non-blocking use GnuTLS asks whether data is there; 0 would mean "timed out" and
 * fail the handshake, so "nothing yet" is -1/EAGAIN. */
static int session_pull_timeout(gnutls_transport_ptr_t p, unsigned ms)
{
        TlsSession *s = p;

        if (buf_size(&s->in) > 0)
                return 1;
        gnutls_transport_set_errno(s->session, EAGAIN);
        return -1;
}

static int session_fail(TlsSession *s, int gr)
{
        if (s->error == 0) {
                s->error = errno_from_gnutls(gr);
                snprintf(s->error_text, sizeof(s->error_text), "%s", gnutls_strerror(gr));
                /* Tell the peer why, unless it was the peer that told us. */
                if (gr != GNUTLS_E_FATAL_ALERT_RECEIVED && gr != GNUTLS_E_PREMATURE_TERMINATION)
                        (void)gnutls_alert_send_appropriate(s->session, gr);
        }
        return s->error;
}

/* Non-fatal returns that consumed no input, in a row, before we call it a failure
 * rather than spin. */
#define TLS_STUCK_MAX 8

static int session_handshake(TlsSession *s)
{
        for (unsigned stuck = 0;;) {
                size_t before = buf_size(&s->in);
                int r = gnutls_handshake(s->session);

                if (r == GNUTLS_E_SUCCESS) {
                        s->handshake_done = true;
                        return 0;
                }
                if (r == GNUTLS_E_AGAIN)
                        return 0;
                if (r == GNUTLS_E_INTERRUPTED || !gnutls_error_is_fatal(r)) {
                        /* Warning alerts: keep going, as long as input is consumed. */
                        stuck = buf_size(&s->in) == before ? stuck + 1 : 0;
                        if (stuck < TLS_STUCK_MAX)
                                continue;
                }
                return session_fail(s, r);
        }
}

int tls_session_new(TlsIdentity *id, bool server, TlsSession **ret)
{
        _cleanup_(tls_session_freep) TlsSession *s = NULL;
        int r;

        assert(id && ret);

        r = tls_global_init();
        if (r < 0)
                return r;

        s = new0(TlsSession, 1);
        if (!s)
                return -ENOMEM;
        s->server = server;
        s->identity = tls_identity_ref(id);

        /* No tickets: nodes keep long-lived connections and never resume. */
        r = gnutls_init(&s->session,
                        (server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NONBLOCK |
                                GNUTLS_NO_TICKETS);
        if (r < 0) {
                s->session = NULL;
                return errno_from_gnutls(r);
        }
        r = gnutls_priority_set(s->session, tls_priority);
        if (r < 0)
                return errno_from_gnutls(r);
        r = gnutls_credentials_set(s->session, GNUTLS_CRD_CERTIFICATE, id->cred);
        if (r < 0)
                return errno_from_gnutls(r);
        /* Mutual TLS: the server demands a certificate. No chain verification is set up
         * (gnutls_session_set_verify_cert is never called): peers are checked by
         * fingerprint by the caller once the handshake completed. */
        if (server)
                gnutls_certificate_server_set_request(s->session, GNUTLS_CERT_REQUIRE);

        gnutls_transport_set_ptr(s->session, s);
        gnutls_transport_set_vec_push_function(s->session, session_vec_push);
        gnutls_transport_set_pull_function(s->session, session_pull);
        gnutls_transport_set_pull_timeout_function(s->session, session_pull_timeout);

        /* The client speaks first: its ClientHello is output right away. */
        if (!server) {
                r = session_handshake(s);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(s);
        return 0;
}

TlsSession *tls_session_free(TlsSession *s)
{
        if (!s)
                return NULL;
        if (s->session)
                gnutls_deinit(s->session);
        tls_identity_unref(s->identity);
        buf_done(&s->in);
        buf_done(&s->out);
        return mfree(s);
}

int tls_session_feed(TlsSession *s, const void *data, size_t size)
{
        if (s->error)
                return s->error;
        if (buf_append(&s->in, data, size) < 0)
                return -ENOMEM;
        if (!s->handshake_done)
                return session_handshake(s);
        /* After the handshake the records stay buffered until tls_session_read(). */
        return 0;
}

bool tls_session_handshake_done(const TlsSession *s)
{
        return s->handshake_done;
}

int tls_session_write(TlsSession *s, const void *data, size_t size)
{
        const uint8_t *p = data;
        unsigned again = 0;

        if (s->error)
                return s->error;
        if (!s->handshake_done)
                return -ENOTCONN;
        if (s->bye_sent)
                return -EPIPE;

        while (size > 0) {
                /* GnuTLS cuts the data into records itself; each call sends at most one. */
                ssize_t n = gnutls_record_send(s->session, p, size);
                if (n > 0) {
                        p += n;
                        size -= (size_t)n;
                        again = 0;
                        continue;
                }
                if ((n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) && ++again < 16)
                        continue; /* our push never blocks; retry the same call */
                return session_fail(s, n == 0 ? GNUTLS_E_INTERNAL_ERROR : (int)n);
        }
        return 0;
}

ssize_t tls_session_read(TlsSession *s, void *buf, size_t size)
{
        if (s->error)
                return s->error;
        if (s->peer_closed)
                return -EPIPE;
        if (!s->handshake_done || size == 0)
                return 0;

        for (unsigned stuck = 0;;) {
                size_t before = buf_size(&s->in);
                ssize_t n = gnutls_record_recv(s->session, buf, size);

                if (n > 0)
                        return n;
                if (n == 0) {
                        s->peer_closed = true;
                        return -EPIPE;
                }
                if (n == GNUTLS_E_AGAIN) {
                        /* A post-handshake message (key update, ticket) was handled
                         * without application data: more records may be waiting. */
                        if (buf_size(&s->in) > 0 && buf_size(&s->in) != before)
                                continue;
                        if (gnutls_record_check_pending(s->session) > 0 && ++stuck < TLS_STUCK_MAX)
                                continue;
                        return 0;
                }
                if (n == GNUTLS_E_INTERRUPTED || !gnutls_error_is_fatal((int)n)) {
                        stuck = buf_size(&s->in) == before ? stuck + 1 : 0;
                        if (stuck < TLS_STUCK_MAX)
                                continue;
                }
                return session_fail(s, (int)n);
        }
}

size_t tls_session_pending_output(const TlsSession *s, const void **ret_data)
{
        if (ret_data)
                *ret_data = buf_head(&s->out);
        return buf_size(&s->out);
}

void tls_session_consume_output(TlsSession *s, size_t n)
{
        buf_consume(&s->out, MIN(n, buf_size(&s->out)));
        if (buf_size(&s->out) == 0 && s->out.cap > TLS_BUF_KEEP_MAX)
                buf_done(&s->out);
}

void tls_session_bye(TlsSession *s)
{
        if (s->bye_sent || s->error || !s->handshake_done)
                return;
        s->bye_sent = true;
        /* With a memory push this completes at once: the alert is in the output. */
        (void)gnutls_bye(s->session, GNUTLS_SHUT_WR);
}

int tls_session_key_update(TlsSession *s)
{
        int r;

        if (s->error)
                return s->error;
        if (!s->handshake_done)
                return -ENOTCONN;
        /* Only our own direction: GnuTLS refuses a peer's update_requested that crosses
         * one of ours, so asking the peer would break when both sides rotate at once. */
        r = gnutls_session_key_update(s->session, 0);
        if (r < 0)
                return session_fail(s, r);
        return 0;
}

int tls_session_peer_fingerprint(const TlsSession *s, uint8_t ret[TLS_FINGERPRINT_SIZE])
{
        const gnutls_datum_t *certs;
        unsigned n = 0;

        if (!s->handshake_done)
                return -ENODATA;
        certs = gnutls_certificate_get_peers(s->session, &n);
        if (!certs || n == 0)
                return -ENODATA;
        if (gnutls_hash_fast(GNUTLS_DIG_SHA256, certs[0].data, certs[0].size, ret) < 0)
                return -EIO;
        return 0;
}

const char *tls_session_error(const TlsSession *s)
{
        return s->error ? s->error_text : NULL;
}
