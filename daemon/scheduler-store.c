/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "basic/alloc-util.h"
#include "basic/string-util.h"
#include "daemon/scheduler-store.h"
#include "shared/log.h"

struct Store {
        sqlite3 *db;
};

static int sqlite_error(Store *s, int rc, const char *what)
{
        log_error("%s: %s", what, sqlite3_errmsg(s->db));
        return rc == SQLITE_FULL ? -ENOSPC : rc == SQLITE_BUSY ? -EBUSY : -EIO;
}

static int exec_sql(Store *s, const char *sql)
{
        char *err = NULL;
        int rc = sqlite3_exec(s->db, sql, NULL, NULL, &err);

        if (rc != SQLITE_OK) {
                log_error("SQL failed: %s", strna(err));
                sqlite3_free(err);
                return rc == SQLITE_FULL ? -ENOSPC : -EIO;
        }
        return 0;
}

int store_open(const char *path, Store **ret)
{
        _cleanup_(store_closep) Store *s = new0(Store, 1);
        int rc, r;

        if (!s)
                return -ENOMEM;
        rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
        if (rc != SQLITE_OK)
                return log_error_errno(EIO, "Failed to open database %s: %s", path,
                                       s->db ? sqlite3_errmsg(s->db) : "out of memory");
        sqlite3_busy_timeout(s->db, 2000);
        r = exec_sql(s,
                     "PRAGMA journal_mode=WAL;"
                     "PRAGMA synchronous=NORMAL;"
                     "PRAGMA foreign_keys=ON;"
                     "CREATE TABLE IF NOT EXISTS tokens ("
                     "  id TEXT PRIMARY KEY,"
                     "  hash BLOB NOT NULL,"
                     "  description TEXT NOT NULL DEFAULT '',"
                     "  created INTEGER NOT NULL,"
                     "  expires INTEGER NOT NULL DEFAULT 0,"
                     "  uses INTEGER NOT NULL DEFAULT 0,"
                     "  revoked INTEGER NOT NULL DEFAULT 0);"
                     "CREATE TABLE IF NOT EXISTS agents ("
                     "  name TEXT PRIMARY KEY,"
                     "  fingerprint TEXT NOT NULL,"
                     "  admitted INTEGER NOT NULL,"
                     "  via TEXT NOT NULL DEFAULT '');");
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

Store *store_close(Store *s)
{
        if (!s)
                return NULL;
        sqlite3_close_v2(s->db);
        free(s);
        return NULL;
}

static int sha256(const void *p, size_t n, uint8_t out[32])
{
        return gnutls_hash_fast(GNUTLS_DIG_SHA256, p, n, out) < 0 ? -EIO : 0;
}

static int random_hex(char *buf, size_t nbytes)
{
        uint8_t raw[32];
        _cleanup_free_ char *h = NULL;

        assert(nbytes <= sizeof raw);
        if (getrandom(raw, nbytes, 0) != (ssize_t)nbytes)
                return -errno ?: -EIO;
        h = hexmem(raw, nbytes);
        if (!h)
                return -ENOMEM;
        memcpy(buf, h, nbytes * 2 + 1);
        explicit_bzero(raw, sizeof raw);
        return 0;
}

int store_token_create(Store *s, const char *description, uint64_t ttl_usec, char **ret_token,
                       StoreToken *ret_info)
{
        char id[9], secret[33];
        uint8_t hash[32];
        sqlite3_stmt *st = NULL;
        usec_t created = now(CLOCK_REALTIME);
        uint64_t expires = ttl_usec ? created + ttl_usec : 0;
        int r, rc;

        r = random_hex(id, 4);
        if (r < 0)
                return r;
        r = random_hex(secret, 16);
        if (r < 0)
                return r;
        r = sha256(secret, 32, hash);
        if (r < 0)
                return r;

        rc = sqlite3_prepare_v2(s->db,
                                "INSERT INTO tokens (id, hash, description, created, expires) "
                                "VALUES (?, ?, ?, ?, ?)",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_error(s, rc, "Failed to prepare token insert");
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, hash, sizeof hash, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, strempty(description), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)created);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)expires);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
                return sqlite_error(s, rc, "Failed to store token");

        char *t = strprintf("cat1-%s-%s", id, secret);
        explicit_bzero(secret, sizeof secret);
        if (!t)
                return -ENOMEM;
        if (ret_info) {
                *ret_info = (StoreToken){.created_usec = created, .expires_usec = expires};
                memcpy(ret_info->id, id, sizeof id);
                ret_info->description = strdup(strempty(description));
                if (!ret_info->description) {
                        free(t);
                        return -ENOMEM;
                }
        }
        *ret_token = t;
        return 0;
}

int store_token_check(Store *s, const char *token)
{
        char id[9];
        uint8_t hash[32];
        sqlite3_stmt *st = NULL;
        int rc, r, ok = 0;
        const char *p;

        /* Parse "cat1-<8 hex>-<32 hex>" without revealing which part was wrong. */
        p = startswith(strempty(token), "cat1-");
        if (!p || strlen(p) != 8 + 1 + 32 || p[8] != '-')
                return -EACCES;
        memcpy(id, p, 8);
        id[8] = 0;
        r = sha256(p + 9, 32, hash);
        if (r < 0)
                return r;

        rc = sqlite3_prepare_v2(s->db, "SELECT hash, expires, revoked FROM tokens WHERE id = ?", -1,
                                &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_error(s, rc, "Failed to prepare token lookup");
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                const void *h = sqlite3_column_blob(st, 0);
                int hl = sqlite3_column_bytes(st, 0);
                uint64_t expires = (uint64_t)sqlite3_column_int64(st, 1);
                bool revoked = sqlite3_column_int(st, 2) != 0;
                ok = h && hl == (int)sizeof hash && memeq_consttime(h, hash, sizeof hash) &&
                        !revoked && (expires == 0 || expires > now(CLOCK_REALTIME));
        } else if (rc != SQLITE_DONE) {
                sqlite3_finalize(st);
                return sqlite_error(s, rc, "Failed to look up token");
        }
        sqlite3_finalize(st);
        if (!ok)
                return -EACCES;

        rc = sqlite3_prepare_v2(s->db, "UPDATE tokens SET uses = uses + 1 WHERE id = ?", -1, &st,
                                NULL);
        if (rc == SQLITE_OK) {
                sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
                rc = sqlite3_step(st);
                sqlite3_finalize(st);
        }
        if (rc != SQLITE_DONE)
                log_warning("Failed to count use of token %s: %s", id, sqlite3_errmsg(s->db));
        return 0;
}

void store_token_list_free(StoreToken *l, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(l[i].description);
        free(l);
}

int store_token_list(Store *s, StoreToken **ret, size_t *ret_n)
{
        sqlite3_stmt *st = NULL;
        StoreToken *l = NULL;
        size_t n = 0, cap = 0;
        int rc;

        rc = sqlite3_prepare_v2(s->db,
                                "SELECT id, description, created, expires, uses, revoked "
                                "FROM tokens ORDER BY created",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_error(s, rc, "Failed to prepare token list");
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (!GREEDY_REALLOC(l, cap, n + 1))
                        goto oom;
                StoreToken *t = &l[n];
                *t = (StoreToken){};
                snprintf(t->id, sizeof t->id, "%s", (const char *)sqlite3_column_text(st, 0));
                t->description = strdup(strempty((const char *)sqlite3_column_text(st, 1)));
                if (!t->description)
                        goto oom;
                t->created_usec = (uint64_t)sqlite3_column_int64(st, 2);
                t->expires_usec = (uint64_t)sqlite3_column_int64(st, 3);
                t->uses = (uint32_t)sqlite3_column_int64(st, 4);
                t->revoked = sqlite3_column_int(st, 5) != 0;
                n++;
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
                store_token_list_free(l, n);
                return sqlite_error(s, rc, "Failed to list tokens");
        }
        *ret = l;
        *ret_n = n;
        return 0;
oom:
        sqlite3_finalize(st);
        store_token_list_free(l, n);
        return -ENOMEM;
}

int store_token_revoke(Store *s, const char *id)
{
        sqlite3_stmt *st = NULL;
        int rc;

        rc = sqlite3_prepare_v2(s->db, "UPDATE tokens SET revoked = 1 WHERE id = ?", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_error(s, rc, "Failed to prepare token revoke");
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
                return sqlite_error(s, rc, "Failed to revoke token");
        return sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
}

int store_agent_admit(Store *s, const char *name, const char *fingerprint_hex, const char *via)
{
        sqlite3_stmt *st = NULL;
        int rc;

        rc = sqlite3_prepare_v2(s->db,
                                "INSERT INTO agents (name, fingerprint, admitted, via) "
                                "VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                                "fingerprint = excluded.fingerprint, admitted = excluded.admitted, "
                                "via = excluded.via",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_error(s, rc, "Failed to prepare agent insert");
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, fingerprint_hex, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)now(CLOCK_REALTIME));
        sqlite3_bind_text(st, 4, strempty(via), -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
                return sqlite_error(s, rc, "Failed to record admitted agent");
        return 0;
}

int store_agent_check(Store *s, const char *name, const char *fingerprint_hex)
{
        sqlite3_stmt *st = NULL;
        int rc, r = 0;

        rc = sqlite3_prepare_v2(s->db, "SELECT fingerprint FROM agents WHERE name = ?", -1, &st,
                                NULL);
        if (rc != SQLITE_OK)
                return sqlite_error(s, rc, "Failed to prepare agent lookup");
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                const char *fp = (const char *)sqlite3_column_text(st, 0);
                r = fp && strlen(fp) == strlen(fingerprint_hex) &&
                                memeq_consttime(fp, fingerprint_hex, strlen(fp))
                        ? 1
                        : -EEXIST;
        } else if (rc != SQLITE_DONE)
                r = sqlite_error(s, rc, "Failed to look up agent");
        sqlite3_finalize(st);
        return r;
}
