/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* TLS 1.3 for the cluster port, with GnuTLS.
 *
 * Identity: each node has an ECDSA P-256 key and a self-signed certificate in its state
 * directory (<dir>/<name>.key mode 0600, <dir>/<name>.crt), created on first start.
 * Nodes recognise each other by the SHA-256 of the certificate's DER ("fingerprint"),
 * not by a CA: the agent pins the scheduler's fingerprint on first use, the scheduler
 * records each admitted agent's.
 *
 * Session: a TlsSession runs entirely on memory buffers, so the caller decides how
 * bytes move (the io_uring stream in production, a direct pump in tests):
 *   tls_session_feed() gives it ciphertext that arrived,
 *   tls_session_write() queues plaintext,
 *   tls_session_read() takes decrypted plaintext,
 *   tls_session_pending_output() / tls_session_consume_output() expose ciphertext to
 *   send.
 * Both sides request and require a certificate (mutual TLS); verification is by
 * fingerprint in the caller, GnuTLS's chain check is not used. */

#include "basic/macro.h"

typedef struct TlsIdentity TlsIdentity;
typedef struct TlsSession TlsSession;

#define TLS_FINGERPRINT_SIZE 32
#define TLS_FINGERPRINT_HEX_SIZE (TLS_FINGERPRINT_SIZE * 2 + 1)

/* Loads <dir>/<name>.key and .crt, creating both (CN = common_name) when neither
 * exists. One without the other, unreadable, or corrupt files are errors (-EBADMSG),
 * never silently replaced. */
int tls_identity_load_or_create(const char *dir, const char *name, const char *common_name,
                                TlsIdentity **ret);
TlsIdentity *tls_identity_ref(TlsIdentity *id);
TlsIdentity *tls_identity_unref(TlsIdentity *id);
DEFINE_TRIVIAL_CLEANUP_FUNC(TlsIdentity *, tls_identity_unref);
const uint8_t *tls_identity_fingerprint(const TlsIdentity *id);
/* Lowercase hex into buf (TLS_FINGERPRINT_HEX_SIZE). */
const char *tls_fingerprint_to_hex(const uint8_t fp[TLS_FINGERPRINT_SIZE], char *buf);
int tls_fingerprint_from_hex(const char *s, uint8_t ret[TLS_FINGERPRINT_SIZE]);

int tls_session_new(TlsIdentity *id, bool server, TlsSession **ret);
TlsSession *tls_session_free(TlsSession *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(TlsSession *, tls_session_free);

/* Feed received ciphertext; advances the handshake. Returns 0, or -errno on a fatal
 * TLS error (tls_session_error() then has GnuTLS's words). */
int tls_session_feed(TlsSession *s, const void *data, size_t size);
bool tls_session_handshake_done(const TlsSession *s);
/* Queue plaintext (only after the handshake). */
int tls_session_write(TlsSession *s, const void *data, size_t size);
/* Decrypted plaintext: returns bytes read (0 when nothing is available), -errno on
 * fatal error, -EPIPE after the peer's close_notify. */
ssize_t tls_session_read(TlsSession *s, void *buf, size_t size);
/* Ciphertext to send. Reads can produce some too (the answer to the peer's key update):
 * check after reading, not only after writing. */
size_t tls_session_pending_output(const TlsSession *s, const void **ret_data);
void tls_session_consume_output(TlsSession *s, size_t n);
/* Queues close_notify. */
void tls_session_bye(TlsSession *s);
/* Rotates our sending keys (TLS 1.3 KeyUpdate, without asking the peer to rotate its
 * own: each side rotates its direction). Long connections may call it after many
 * gigabytes; both sides may do it at the same time; reads go on unaffected. */
int tls_session_key_update(TlsSession *s);
int tls_session_peer_fingerprint(const TlsSession *s, uint8_t ret[TLS_FINGERPRINT_SIZE]);
const char *tls_session_error(const TlsSession *s);
