/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "basic/alloc-util.h"
#include "basic/string-util.h"
#include "basic/strv.h"

char **strv_free(char **l)
{
        STRV_FOREACH (s, l)
                free(*s);
        free(l);
        return NULL;
}

size_t strv_length(char *const *l)
{
        size_t n = 0;
        STRV_FOREACH (s, l)
                n++;
        return n;
}

char **strv_copy(char *const *l)
{
        size_t n = strv_length(l);
        char **c = new0(char *, n + 1);

        if (!c)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                c[i] = strdup(l[i]);
                if (!c[i])
                        return strv_free(c);
        }
        return c;
}

int strv_consume(char ***l, char *s)
{
        size_t n = strv_length(*l);
        char **c = realloc(*l, sizeof(char *) * (n + 2));

        if (!c)
                return -ENOMEM;
        c[n] = s;
        c[n + 1] = NULL;
        *l = c;
        return 0;
}

int strv_extend(char ***l, const char *s)
{
        char *t = strdup(s);
        int r;

        if (!t)
                return -ENOMEM;
        r = strv_consume(l, t);
        if (r < 0)
                free(t);
        return r;
}

bool strv_contains(char *const *l, const char *s)
{
        STRV_FOREACH (i, l)
                if (streq(*i, s))
                        return true;
        return false;
}

char *strv_join(char *const *l, const char *sep)
{
        size_t n = 0, k = strlen(sep);
        char *r, *p;

        STRV_FOREACH (s, l)
                n += strlen(*s) + k;
        r = p = malloc(n + 1);
        if (!r)
                return NULL;
        STRV_FOREACH (s, l) {
                if (s != l)
                        p = stpcpy(p, sep);
                p = stpcpy(p, *s);
        }
        *p = 0;
        return r;
}
