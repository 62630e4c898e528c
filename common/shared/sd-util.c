/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The service manager interface. With libsystemd this wraps sd_notify(),
 * sd_watchdog_enabled() and sd_listen_fds_with_names(); without it every call is a
 * no-op that reports "not started by a service manager", and the daemons bind their own
 * sockets.
 *
 * The passed fds are process-wide state by nature (they arrive once, at exec), so they
 * live in this file's statics rather than in a handle. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#if HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "basic/alloc-util.h"
#include "basic/fd-util.h"
#include "basic/string-util.h"
#include "basic/strv.h"
#include "shared/log.h"
#include "shared/sd-util.h"

typedef struct PassedFd {
        int fd; /* -EBADF once taken */
        char *name;
} PassedFd;

static PassedFd *passed;
static size_t n_passed;
static bool collected;

int notify(const char *state)
{
#if HAVE_SYSTEMD
        return sd_notify(0, state);
#else
        (void)state;
        return 0;
#endif
}

int notifyf(const char *format, ...)
{
        _cleanup_free_ char *s = NULL;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&s, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        return notify(s);
}

usec_t watchdog_interval(void)
{
#if HAVE_SYSTEMD
        uint64_t usec = 0;

        /* unset_environment = 0: a daemon may ask again (after a re-exec, say). */
        if (sd_watchdog_enabled(0, &usec) > 0)
                return usec;
#endif
        return 0;
}

int listen_fds_collect(void)
{
#if HAVE_SYSTEMD
        _cleanup_strv_free_ char **names = NULL;
        int n;

        if (collected) {
                size_t left = 0;
                for (size_t i = 0; i < n_passed; i++)
                        if (passed[i].fd >= 0)
                                left++;
                return (int)left;
        }

        /* unset_environment = 1: the fds are ours now, and children (tasks, helpers)
         * must not believe they were passed to them. sd_listen_fds also sets
         * FD_CLOEXEC on each. */
        n = sd_listen_fds_with_names(1, &names);
        if (n < 0)
                return n;
        collected = true;
        if (n == 0)
                return 0;

        passed = new0(PassedFd, (size_t)n);
        if (!passed) {
                /* Don't leak them into children either way. */
                for (int i = 0; i < n; i++)
                        safe_close(SD_LISTEN_FDS_START + i);
                return -ENOMEM;
        }
        for (int i = 0; i < n; i++) {
                passed[i].fd = SD_LISTEN_FDS_START + i;
                /* sd_listen_fds_with_names() gives "unknown" for unnamed fds. */
                passed[i].name = names && names[i] ? TAKE_PTR(names[i]) : NULL;
                (void)fd_cloexec(passed[i].fd, true);
                log_debug("Received fd %d named '%s' from the service manager.", passed[i].fd,
                          strna(passed[i].name));
        }
        n_passed = (size_t)n;
        return n;
#else
        collected = true;
        return 0;
#endif
}

int listen_fds_take(const char *name)
{
        for (size_t i = 0; i < n_passed; i++)
                if (passed[i].fd >= 0 && streq_ptr(passed[i].name, name))
                        return TAKE_FD(passed[i].fd);
        return -ENOENT;
}

void listen_fds_close_unused(void)
{
        for (size_t i = 0; i < n_passed; i++) {
                if (passed[i].fd >= 0) {
                        log_debug("Closing unused fd %d named '%s' from the service manager.",
                                  passed[i].fd, strna(passed[i].name));
                        passed[i].fd = safe_close(passed[i].fd);
                }
                free(passed[i].name);
        }
        passed = mfree(passed);
        n_passed = 0;
}
