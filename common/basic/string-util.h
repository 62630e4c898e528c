/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdarg.h>
#include <string.h>

#include "basic/macro.h"

static inline bool streq(const char *a, const char *b)
{
        return strcmp(a, b) == 0;
}
static inline bool streq_ptr(const char *a, const char *b)
{
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}
static inline bool isempty(const char *s)
{
        return !s || !*s;
}
static inline const char *strempty(const char *s)
{
        return s ?: "";
}
static inline const char *strna(const char *s)
{
        return isempty(s) ? "n/a" : s;
}

/* Returns the rest of s after prefix, or NULL. */
const char *startswith(const char *s, const char *prefix) _pure_;
const char *endswith(const char *s, const char *suffix) _pure_;

/* malloc'ed printf; NULL on OOM. */
char *strprintf(const char *fmt, ...) _printf_(1, 2);

/* Replace *p with a copy of s (NULL allowed). -ENOMEM on failure, *p untouched. */
int free_and_strdup(char **p, const char *s);

/* Constant-time comparison of two byte strings of the same length. */
bool memeq_consttime(const void *a, const void *b, size_t n);

/* Lowercase hex of n bytes into a new string. */
char *hexmem(const void *p, size_t n);
/* Parse exactly 2*n hex digits into out. */
int unhexmem(const char *s, void *out, size_t n);

/* "512", "4K", "1.5G", "2GiB", "100MB" -> bytes (base 1024). */
int parse_size(const char *s, uint64_t *ret);
/* "30", "30s", "500ms", "2m", "1h", "1.5s" -> microseconds. Bare numbers are seconds. */
int parse_duration(const char *s, uint64_t *ret_usec);
/* Plain unsigned integers with range check. */
int safe_atou64(const char *s, uint64_t *ret);
int safe_atou32(const char *s, uint32_t *ret);
int safe_atoi(const char *s, int *ret);
/* "yes/no/true/false/on/off/1/0" */
int parse_boolean(const char *s);

/* "1.5 GiB" into buf (at least 16 bytes). */
const char *format_bytes(char *buf, size_t size, uint64_t bytes);
#define FORMAT_BYTES_MAX 16

/* Validate names used on the wire and in the CLI: 1..63 of [A-Za-z0-9._-], no leading
 * dot or dash. */
bool name_is_valid(const char *s) _pure_;

/* Write a C string escaped for logs (non-printables as \xNN), at most max chars. */
char *cescape_len(const char *s, size_t len, size_t max);
