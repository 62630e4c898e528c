/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <time.h>

#include "basic/macro.h"

typedef uint64_t usec_t;
#define USEC_INFINITY ((usec_t)UINT64_MAX)
#define USEC_PER_SEC ((usec_t)1000000ULL)
#define USEC_PER_MSEC ((usec_t)1000ULL)
#define NSEC_PER_USEC ((uint64_t)1000ULL)

usec_t now(clockid_t clock);
/* "1.2s", "340ms", "3m12s", "2h5m" into buf (FORMAT_TIMESPAN_MAX). */
const char *format_timespan(char *buf, size_t size, usec_t t);
#define FORMAT_TIMESPAN_MAX 32
