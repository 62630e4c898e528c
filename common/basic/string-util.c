/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "basic/alloc-util.h"
#include "basic/string-util.h"

const char *startswith(const char *s, const char *prefix)
{
        size_t l = strlen(prefix);
        return strncmp(s, prefix, l) == 0 ? s + l : NULL;
}

const char *endswith(const char *s, const char *suffix)
{
        size_t sl = strlen(s), xl = strlen(suffix);
        if (xl > sl)
                return NULL;
        return streq(s + sl - xl, suffix) ? s + sl - xl : NULL;
}

char *strprintf(const char *fmt, ...)
{
        va_list ap;
        char *s;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        return r < 0 ? NULL : s;
}

int free_and_strdup(char **p, const char *s)
{
        char *t = NULL;

        if (s) {
                t = strdup(s);
                if (!t)
                        return -ENOMEM;
        }
        free(*p);
        *p = t;
        return 0;
}

bool memeq_consttime(const void *a, const void *b, size_t n)
{
        const volatile uint8_t *x = a, *y = b;
        uint8_t d = 0;

        for (size_t i = 0; i < n; i++)
                d |= x[i] ^ y[i];
        return d == 0;
}

char *hexmem(const void *p, size_t n)
{
        static const char digits[] = "0123456789abcdef";
        const uint8_t *b = p;
        char *s = new (char, n * 2 + 1);

        if (!s)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                s[2 * i] = digits[b[i] >> 4];
                s[2 * i + 1] = digits[b[i] & 15];
        }
        s[n * 2] = 0;
        return s;
}

static int unhexchar(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -EINVAL;
}

int unhexmem(const char *s, void *out, size_t n)
{
        uint8_t *o = out;

        if (strlen(s) != n * 2)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                int a = unhexchar(s[2 * i]), b = unhexchar(s[2 * i + 1]);
                if (a < 0 || b < 0)
                        return -EINVAL;
                o[i] = (uint8_t)(a << 4 | b);
        }
        return 0;
}

int safe_atou64(const char *s, uint64_t *ret)
{
        char *end;
        unsigned long long v;

        if (isempty(s) || !isdigit((unsigned char)s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (*end)
                return -EINVAL;
        *ret = v;
        return 0;
}

int safe_atou32(const char *s, uint32_t *ret)
{
        uint64_t v;
        int r = safe_atou64(s, &v);
        if (r < 0)
                return r;
        if (v > UINT32_MAX)
                return -ERANGE;
        *ret = (uint32_t)v;
        return 0;
}

int safe_atoi(const char *s, int *ret)
{
        char *end;
        long v;

        if (isempty(s))
                return -EINVAL;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno == ERANGE || v < INT32_MIN || v > INT32_MAX)
                return -ERANGE;
        if (*end)
                return -EINVAL;
        *ret = (int)v;
        return 0;
}

int parse_boolean(const char *s)
{
        static const char *const yes[] = {"1", "yes", "y", "true", "t", "on"};
        static const char *const no[] = {"0", "no", "n", "false", "f", "off"};

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(s, yes[i]) == 0)
                        return 1;
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(s, no[i]) == 0)
                        return 0;
        return -EINVAL;
}

/* Parses "<number>[.<fraction>]<unit>" with the given unit table; the number must be
 * finite and the product must fit in 64 bits. */
struct unit {
        const char *suffix;
        uint64_t factor;
};

static int parse_with_units(const char *s, const struct unit *units, size_t n_units,
                            uint64_t default_factor, uint64_t *ret)
{
        char *end;
        double v;

        if (isempty(s))
                return -EINVAL;
        while (isspace((unsigned char)*s))
                s++;
        if (!isdigit((unsigned char)*s) && *s != '.')
                return -EINVAL;
        errno = 0;
        v = strtod(s, &end);
        if (errno == ERANGE || !isfinite(v) || v < 0)
                return -ERANGE;
        while (isspace((unsigned char)*end))
                end++;
        uint64_t factor = default_factor;
        if (*end) {
                size_t i;
                for (i = 0; i < n_units; i++)
                        if (strcasecmp(end, units[i].suffix) == 0)
                                break;
                if (i == n_units)
                        return -EINVAL;
                factor = units[i].factor;
        }
        double r = v * (double)factor;
        if (r >= 18446744073709551615.0)
                return -ERANGE;
        *ret = (uint64_t)r;
        return 0;
}

int parse_size(const char *s, uint64_t *ret)
{
        static const struct unit units[] = {
                {"B", 1},
                {"K", 1ULL << 10},
                {"KB", 1ULL << 10},
                {"KiB", 1ULL << 10},
                {"M", 1ULL << 20},
                {"MB", 1ULL << 20},
                {"MiB", 1ULL << 20},
                {"G", 1ULL << 30},
                {"GB", 1ULL << 30},
                {"GiB", 1ULL << 30},
                {"T", 1ULL << 40},
                {"TB", 1ULL << 40},
                {"TiB", 1ULL << 40},
        };
        return parse_with_units(s, units, ELEMENTSOF(units), 1, ret);
}

int parse_duration(const char *s, uint64_t *ret_usec)
{
        static const struct unit units[] = {
                {"us", 1},
                {"usec", 1},
                {"ms", 1000},
                {"msec", 1000},
                {"s", 1000000},
                {"sec", 1000000},
                {"second", 1000000},
                {"seconds", 1000000},
                {"m", 60000000},
                {"min", 60000000},
                {"minutes", 60000000},
                {"h", 3600000000ULL},
                {"hour", 3600000000ULL},
                {"hours", 3600000000ULL},
                {"d", 86400000000ULL},
                {"day", 86400000000ULL},
                {"days", 86400000000ULL},
        };
        return parse_with_units(s, units, ELEMENTSOF(units), 1000000, ret_usec);
}

const char *format_bytes(char *buf, size_t size, uint64_t bytes)
{
        static const char *const suffix[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
        double v = (double)bytes;
        size_t i = 0;

        while (v >= 1024 && i + 1 < ELEMENTSOF(suffix)) {
                v /= 1024;
                i++;
        }
        if (i == 0)
                snprintf(buf, size, "%" PRIu64 " B", bytes);
        else
                snprintf(buf, size, "%.1f %s", v, suffix[i]);
        return buf;
}

bool name_is_valid(const char *s)
{
        size_t n;

        if (isempty(s))
                return false;
        n = strlen(s);
        if (n > 63 || s[0] == '.' || s[0] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
                        return false;
        return true;
}

char *cescape_len(const char *s, size_t len, size_t max)
{
        size_t n = MIN(len, max), o = 0;
        char *out = new (char, n * 4 + 4);

        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c >= 0x20 && c < 0x7f && c != '\\')
                        out[o++] = (char)c;
                else
                        o += (size_t)sprintf(out + o, "\\x%02x", c);
        }
        if (len > max)
                out[o++] = '.', out[o++] = '.', out[o++] = '.';
        out[o] = 0;
        return out;
}
