/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What every cluster-ai daemon does with the service manager's signals: SIGTERM and
 * SIGINT stop it, SIGHUP reloads it, SIGPIPE is ignored (a peer closing under a write
 * is an error return, not a death), and the watchdog is fed at half the interval the
 * service manager asked for. All through the daemon's loop. */

#include "basic/macro.h"
#include "shared/loop.h"

typedef struct DaemonSignals {
        LoopSource *sigterm, *sigint, *sighup, *watchdog;
        usec_t watchdog_usec;
} DaemonSignals;

/* Logs and returns -errno on failure. */
int daemon_signals_setup(DaemonSignals *d, Loop *l, loop_signal_cb on_stop,
                         loop_signal_cb on_reload, void *userdata);
void daemon_signals_done(DaemonSignals *d);
