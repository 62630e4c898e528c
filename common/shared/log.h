/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Logging for the daemons and the CLI.
 *
 * Where it goes is decided once by log_open(): to the journal (sd_journal_send with
 * structured fields) when journald is reachable, to stderr with "<N>" priority prefixes
 * when stderr is connected to the journal by systemd (JOURNAL_STREAM matches fd 2), and
 * to plain stderr otherwise ("cluster-ai: message", for the CLI and tests). The level is
 * checked before anything is formatted.
 *
 * Library code (common/, engine/) returns errors and logs at debug at most; the caller
 * logs once: return log_error_errno(r, "Failed to open %s: %m", path);
 *
 * %m in formats is the strerror of the error passed to the *_errno() variants. */

#include <stdarg.h>
#include <syslog.h>

#include "basic/macro.h"

typedef enum LogTarget {
        LOG_TARGET_AUTO, /* journal, else journal-stream stderr, else console */
        LOG_TARGET_JOURNAL,
        LOG_TARGET_KMSG_STDERR, /* "<N>message" on stderr */
        LOG_TARGET_CONSOLE, /* "ident: message" on stderr */
} LogTarget;

void log_set_ident(const char *ident);
void log_set_max_level(int level);
int log_get_max_level(void);
int log_parse_level(const char *s); /* "debug", "info", ... or "0".."7"; -EINVAL */
void log_set_target(LogTarget t);
/* Picks the target per LOG_TARGET_AUTO rules (honours $CLUSTER_LOG_LEVEL and
 * $CLUSTER_LOG_TARGET=journal|stderr|console). */
void log_open(void);

/* fields: NULL or a NULL-terminated list of "KEY=value" strings added to the journal
 * entry (CLUSTER_AGENT=, CLUSTER_TASK=, ...); on stderr they are not printed. Returns -abs(error)
 * (or -EIO when error is 0), so callers can `return log_error_errno(r, ...)`. */
int log_internal(int level, int error, const char *file, int line, const char *func,
                 char *const *fields, const char *format, ...) _printf_(7, 8);
int log_internalv(int level, int error, const char *file, int line, const char *func,
                  char *const *fields, const char *format, va_list ap) _printf_(7, 0);

#define log_full_errno(level, error, ...)                                                          \
        ({                                                                                         \
                int _l_ = (level), _e_ = (error);                                                  \
                _l_ <= log_get_max_level()                                                         \
                        ? log_internal(_l_, _e_, __FILE__, __LINE__, __func__, NULL, __VA_ARGS__)  \
                        : -(_e_ < 0 ? -_e_ : (_e_ ?: EIO));                                        \
        })
#define log_full(level, ...) (void)log_full_errno(level, 0, __VA_ARGS__)

/* Same, with structured journal fields. */
#define log_fields_errno(level, error, fields, ...)                                                \
        ({                                                                                         \
                int _l_ = (level), _e_ = (error);                                                  \
                _l_ <= log_get_max_level() ? log_internal(_l_, _e_, __FILE__, __LINE__, __func__,  \
                                                          (fields), __VA_ARGS__)                   \
                                           : -(_e_ < 0 ? -_e_ : (_e_ ?: EIO));                     \
        })

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, e, __VA_ARGS__)
#define log_notice_errno(e, ...) log_full_errno(LOG_NOTICE, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)

#define log_oom() log_error_errno(ENOMEM, "Out of memory.")
