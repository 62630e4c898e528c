/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <signal.h>

#include "shared/daemon-util.h"
#include "shared/log.h"
#include "shared/sd-util.h"

static void on_watchdog(LoopSource *s, void *userdata)
{
        DaemonSignals *d = userdata;

        (void)notify("WATCHDOG=1");
        (void)loop_timer_set(s, loop_now(loop_source_loop(s)) + d->watchdog_usec / 2);
}

int daemon_signals_setup(DaemonSignals *d, Loop *l, loop_signal_cb on_stop,
                         loop_signal_cb on_reload, void *userdata)
{
        int r;

        r = loop_add_signal(l, SIGTERM, on_stop, userdata, &d->sigterm);
        if (r >= 0)
                r = loop_add_signal(l, SIGINT, on_stop, userdata, &d->sigint);
        if (r >= 0)
                r = loop_add_signal(l, SIGHUP, on_reload, userdata, &d->sighup);
        if (r < 0)
                return log_error_errno(r, "Failed to set up signal handling: %m");
        (void)signal(SIGPIPE, SIG_IGN);

        d->watchdog_usec = watchdog_interval();
        if (d->watchdog_usec > 0) {
                r = loop_add_timer(l, loop_now(l) + d->watchdog_usec / 2, on_watchdog, d,
                                   &d->watchdog);
                if (r < 0)
                        return log_error_errno(r, "Failed to add the watchdog timer: %m");
        }
        return 0;
}

void daemon_signals_done(DaemonSignals *d)
{
        d->sigterm = loop_source_free(d->sigterm);
        d->sigint = loop_source_free(d->sigint);
        d->sighup = loop_source_free(d->sighup);
        d->watchdog = loop_source_free(d->watchdog);
}
