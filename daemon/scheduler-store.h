/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The scheduler's durable state in SQLite (WAL): join tokens and admitted agents.
 *
 * Tokens are "cat1-<id>-<secret>": id is 8 public hex digits (shown in lists, used to
 * revoke), secret 32 hex digits (128 random bits). Only SHA-256(secret) is stored, and
 * it is compared in constant time. */

#include "basic/macro.h"
#include "basic/time-util.h"

typedef struct Store Store;

typedef struct StoreToken {
        char id[9];
        char *description;
        uint64_t created_usec; /* CLOCK_REALTIME */
        uint64_t expires_usec; /* 0 = never */
        uint32_t uses;
        bool revoked;
} StoreToken;

int store_open(const char *path, Store **ret);
Store *store_close(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_close);

/* Creates a token; ret_secret is the full token text (show once). */
int store_token_create(Store *s, const char *description, uint64_t ttl_usec, char **ret_token,
                       StoreToken *ret_info);
/* 0 valid (and counts a use), -EACCES invalid/revoked/expired (same answer for all:
 * callers must not tell which), -errno on storage errors. */
int store_token_check(Store *s, const char *token);
int store_token_list(Store *s, StoreToken **ret, size_t *ret_n);
/* -ENOENT when no such id. */
int store_token_revoke(Store *s, const char *id);
void store_token_list_free(StoreToken *l, size_t n);

/* Admitted agents, by name and certificate fingerprint (hex). */
int store_agent_admit(Store *s, const char *name, const char *fingerprint_hex, const char *via);
/* 1 admitted with this fingerprint, 0 unknown, -EEXIST known under another fingerprint. */
int store_agent_check(Store *s, const char *name, const char *fingerprint_hex);
