/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The service manager interface, with and without systemd: readiness and status
 * notifications, the watchdog, and sockets passed by socket activation. Without
 * libsystemd (or when not started by systemd) everything here is a harmless no-op and
 * the daemon binds its own sockets. */

#include "basic/macro.h"
#include "basic/time-util.h"

/* sd_notify(0, state); returns > 0 if sent, 0 if there is no NOTIFY_SOCKET. */
int notify(const char *state);
int notifyf(const char *format, ...) _printf_(1, 2);
/* Watchdog interval requested by the service manager (WATCHDOG_USEC for this PID), or 0. */
usec_t watchdog_interval(void);

/* Sockets passed by the service manager, by FileDescriptorName=. Call once at start:
 * it takes the fds (clearing LISTEN_* from the environment) and marks them O_CLOEXEC. */
int listen_fds_collect(void);
/* The passed fd named name, removed from the set (ownership passes to the caller), or
 * -ENOENT. */
int listen_fds_take(const char *name);
/* Closes the passed fds nobody took, logging at debug. */
void listen_fds_close_unused(void);
