/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>

#if HAVE_SYSTEMD
/* We send CODE_FILE/CODE_LINE/CODE_FUNC of the caller ourselves. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
/* Weak: a program that links nothing else of libsystemd (cluster-ai) does not load it
 * (and its dependencies) just for a journal it only writes to when run by systemd; it
 * then logs to stderr, which systemd puts into the journal all the same. */
#pragma weak sd_journal_sendv
#endif

#include "basic/string-util.h"
#include "shared/log.h"

static int max_level = LOG_INFO;
static LogTarget target = LOG_TARGET_CONSOLE;
static const char *ident = "cluster-ai";

void log_set_ident(const char *s)
{
        ident = s;
}

void log_set_max_level(int level)
{
        max_level = CLAMP(level, LOG_EMERG, LOG_DEBUG);
}

int log_get_max_level(void)
{
        return max_level;
}

int log_parse_level(const char *s)
{
        static const char *const names[] = {"emerg",   "alert",  "crit", "err",
                                            "warning", "notice", "info", "debug"};
        int n;

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strcasecmp(s, names[i]) == 0)
                        return (int)i;
        if (strcasecmp(s, "error") == 0)
                return LOG_ERR;
        if (strcasecmp(s, "warn") == 0)
                return LOG_WARNING;
        if (safe_atoi(s, &n) >= 0 && n >= 0 && n <= 7)
                return n;
        return -EINVAL;
}

void log_set_target(LogTarget t)
{
        target = t;
}

/* systemd sets JOURNAL_STREAM=dev:ino for the stream it connected to stdout/stderr;
 * if fd 2 is still that stream, journald parses "<N>" prefixes. */
static bool stderr_is_journal(void)
{
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return st.st_dev == dev && st.st_ino == ino;
}

static bool journal_available(void)
{
#if HAVE_SYSTEMD
        /* sd_journal_send() returns success and drops the message when journald is not
         * there: check for its socket ourselves. */
        return sd_journal_sendv && access("/run/systemd/journal/socket", W_OK) == 0;
#else
        return false;
#endif
}

void log_open(void)
{
        const char *e;
        int l;

        e = getenv("CLUSTER_LOG_LEVEL");
        if (e && (l = log_parse_level(e)) >= 0)
                max_level = l;

        e = getenv("CLUSTER_LOG_TARGET");
        if (e && streq(e, "journal") && journal_available())
                target = LOG_TARGET_JOURNAL;
        else if (e && streq(e, "stderr"))
                target = LOG_TARGET_KMSG_STDERR;
        else if (e && streq(e, "console"))
                target = LOG_TARGET_CONSOLE;
        else if (stderr_is_journal())
                /* Started by systemd: prefer native journal fields when we can. */
                target = journal_available() ? LOG_TARGET_JOURNAL : LOG_TARGET_KMSG_STDERR;
        else
                target = LOG_TARGET_CONSOLE;
}

int log_internalv(int level, int error, const char *file, int line, const char *func,
                  char *const *fields, const char *format, va_list ap)
{
        char msg[2048];
        int saved_errno = errno;

        if (error < 0)
                error = -error;
        /* %m refers to the error we were given, not to whatever errno happens to be. */
        errno = error;
        vsnprintf(msg, sizeof msg, format, ap);
        errno = saved_errno;
        /* Messages quote what peers sent (names, reasons): a newline in one must not
         * start a line of its own, which on stderr could pose as another message, with
         * a priority prefix of its choosing. */
        for (char *p = msg; *p; p++)
                if ((unsigned char)*p < ' ' && *p != '\t')
                        *p = ' ';

        switch (target) {
#if HAVE_SYSTEMD
        case LOG_TARGET_JOURNAL: {
                struct iovec iov[16];
                char fmsg[sizeof msg + 16], fprio[16], ferr[32], fident[80], ffile[256], fline[32],
                        ffunc[128];
                size_t n = 0;

                snprintf(fmsg, sizeof fmsg, "MESSAGE=%s", msg);
                snprintf(fprio, sizeof fprio, "PRIORITY=%d", level);
                snprintf(fident, sizeof fident, "SYSLOG_IDENTIFIER=%s", ident);
                snprintf(ffile, sizeof ffile, "CODE_FILE=%s", file);
                snprintf(fline, sizeof fline, "CODE_LINE=%d", line);
                snprintf(ffunc, sizeof ffunc, "CODE_FUNC=%s", func);
                iov[n++] = (struct iovec){fmsg, strlen(fmsg)};
                iov[n++] = (struct iovec){fprio, strlen(fprio)};
                iov[n++] = (struct iovec){fident, strlen(fident)};
                iov[n++] = (struct iovec){ffile, strlen(ffile)};
                iov[n++] = (struct iovec){fline, strlen(fline)};
                iov[n++] = (struct iovec){ffunc, strlen(ffunc)};
                if (error > 0) {
                        snprintf(ferr, sizeof ferr, "ERRNO=%d", error);
                        iov[n++] = (struct iovec){ferr, strlen(ferr)};
                }
                for (char *const *f = fields; f && *f && n < ELEMENTSOF(iov); f++)
                        iov[n++] = (struct iovec){*f, strlen(*f)};
                if (sd_journal_sendv(iov, (int)n) >= 0)
                        break;
                __attribute__((fallthrough));
        }
#endif
        case LOG_TARGET_KMSG_STDERR:
                fprintf(stderr, "<%d>%s\n", level, msg);
                break;
        case LOG_TARGET_AUTO:
        case LOG_TARGET_CONSOLE:
        default:
                fprintf(stderr, "%s: %s\n", ident, msg);
                break;
        }

        return -(error ?: EIO);
}

int log_internal(int level, int error, const char *file, int line, const char *func,
                 char *const *fields, const char *format, ...)
{
        va_list ap;
        int r;

        va_start(ap, format);
        r = log_internalv(level, error, file, line, func, fields, format, ap);
        va_end(ap);
        return r;
}
