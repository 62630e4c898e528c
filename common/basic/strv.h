/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* NULL-terminated arrays of malloc'ed strings. */

#include "basic/macro.h"

char **strv_free(char **l);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);
#define _cleanup_strv_free_ _cleanup_(strv_freep)

size_t strv_length(char *const *l) _pure_;
char **strv_copy(char *const *l);
/* Appends a copy of s; -ENOMEM leaves *l as it was. */
int strv_extend(char ***l, const char *s);
/* Appends s itself (takes ownership on success). */
int strv_consume(char ***l, char *s);
bool strv_contains(char *const *l, const char *s) _pure_;
/* "a, b, c" (sep between), malloc'ed. */
char *strv_join(char *const *l, const char *sep);

#define STRV_FOREACH(s, l) for (char *const *s = (l); s && *s; s++)
