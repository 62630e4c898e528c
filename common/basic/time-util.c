/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <inttypes.h>
#include <stdio.h>

#include "basic/time-util.h"

usec_t now(clockid_t clock)
{
        struct timespec ts;

        if (clock_gettime(clock, &ts) < 0)
                abort(); /* only on an invalid clock id: a programming error */
        return (usec_t)ts.tv_sec * USEC_PER_SEC + (usec_t)ts.tv_nsec / NSEC_PER_USEC;
}

const char *format_timespan(char *buf, size_t size, usec_t t)
{
        if (t == USEC_INFINITY)
                snprintf(buf, size, "infinity");
        else if (t < USEC_PER_MSEC)
                snprintf(buf, size, "%" PRIu64 "us", t);
        else if (t < USEC_PER_SEC)
                snprintf(buf, size, "%.1fms", (double)t / USEC_PER_MSEC);
        else if (t < 60 * USEC_PER_SEC)
                snprintf(buf, size, "%.1fs", (double)t / USEC_PER_SEC);
        else if (t < 3600 * USEC_PER_SEC)
                snprintf(buf, size, "%" PRIu64 "m%" PRIu64 "s", t / (60 * USEC_PER_SEC),
                         (t / USEC_PER_SEC) % 60);
        else
                snprintf(buf, size, "%" PRIu64 "h%" PRIu64 "m", t / (3600 * USEC_PER_SEC),
                         (t / (60 * USEC_PER_SEC)) % 60);
        return buf;
}
