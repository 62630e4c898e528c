/* SPDX-License-Identifier: GPL-2.0-or-later */
/* YAML configuration files, read with libyaml's event parser.
 *
 * The file is walked event by event against the caller's table; nothing is built that
 * the table does not ask for, so the memory a hostile file can make us use is bounded
 * by CONFIG_MAX_SIZE and the table, not by the document's shape. Anchors and aliases
 * are refused outright (an alias bomb needs them), as are tags and more than one
 * document.
 *
 * Values are parsed into a list of pending assignments and written into the target
 * only once the whole file was accepted: a file with an error leaves the target exactly
 * as it was, so a daemon reloading a broken file keeps running on its old settings.
 *
 * Error codes: -ENOENT (missing file, no message), -EFBIG (over CONFIG_MAX_SIZE),
 * -ERANGE (a number outside the table's min/max), -ENOMEM, and -EINVAL for everything
 * else (syntax, unknown or duplicate keys, types, encoding, structure). */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "basic/alloc-util.h"
#include "basic/fd-util.h"
#include "basic/string-util.h"
#include "basic/strv.h"
#include "basic/time-util.h"
#include "shared/config.h"
#include "shared/log.h"

/* Longest key or value quoted in an error message, so that messages stay one short line. */
#define QUOTE_MAX 64

typedef struct Pending {
        const ConfigItem *item;
        union {
                char *s;
                char **strv;
                bool b;
                uint32_t u32;
                uint64_t u64;
                int i;
        } v;
} Pending;

typedef struct Seen {
        char *path;
        yaml_mark_t mark;
} Seen;

typedef struct Parser {
        const char *name;
        const char *data;
        size_t size;
        const ConfigItem *table;
        size_t n_items;

        yaml_parser_t yaml;
        bool yaml_initialized;
        unsigned depth;

        /* Keys and sections met so far, for duplicate detection. Only known paths are
         * recorded (an unknown key ends the parse), so this is bounded by the table. */
        Seen *seen;
        size_t n_seen, n_seen_allocated;

        Pending *pending;
        size_t n_pending;

        /* The key whose value is being read, for syntax errors; NULL between keys. */
        const char *current;

        char *error;
} Parser;

static void pending_free(Pending *p)
{
        switch (p->item->type) {
        case CONFIG_STRING:
                free(p->v.s);
                break;
        case CONFIG_STRV:
                strv_free(p->v.strv);
                break;
        default:
                break;
        }
}

static void parser_done(Parser *p)
{
        if (p->yaml_initialized)
                yaml_parser_delete(&p->yaml);
        for (size_t i = 0; i < p->n_seen; i++)
                free(p->seen[i].path);
        free(p->seen);
        for (size_t i = 0; i < p->n_pending; i++)
                pending_free(&p->pending[i]);
        free(p->pending);
        free(p->error);
}

static inline void event_done(yaml_event_t *e)
{
        yaml_event_delete(e);
}

/* A malloc'ed, escaped copy of user text for messages; "?" on OOM so that the caller can
 * always format something. */
static char *quote(const char *s, size_t len)
{
        return cescape_len(s, len, QUOTE_MAX);
}

_printf_(4, 5) static int fail(Parser *p, int r, const yaml_mark_t *mark, const char *fmt, ...)
{
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        int k;

        if (p->error) /* the first error wins: it is the cause */
                return r;

        va_start(ap, fmt);
        k = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;

        if (mark)
                p->error =
                        strprintf("%s:%zu:%zu: %s", p->name, mark->line + 1, mark->column + 1, msg);
        else
                p->error = strprintf("%s: %s", p->name, msg);
        return p->error ? r : -ENOMEM;
}

static const char *type_name(ConfigType t)
{
        switch (t) {
        case CONFIG_STRING:
                return "a string";
        case CONFIG_STRV:
                return "a list of strings";
        case CONFIG_BOOL:
                return "a boolean (true/false)";
        case CONFIG_U32:
        case CONFIG_U64:
                return "an unsigned integer";
        case CONFIG_SIZE:
                return "a size (e.g. 512M, 4G)";
        case CONFIG_DURATION:
                return "a duration (e.g. 500ms, 30s)";
        case CONFIG_LOG_LEVEL:
                return "a log level (debug, info, notice, warning, err)";
        case CONFIG_MODE:
                return "an octal file mode (e.g. 0660)";
        }
        return "a value";
}

static const char *event_kind(const yaml_event_t *e)
{
        switch (e->type) {
        case YAML_MAPPING_START_EVENT:
                return "a mapping";
        case YAML_SEQUENCE_START_EVENT:
                return "a list";
        case YAML_SCALAR_EVENT:
                return "a scalar";
        default:
                return "something else";
        }
}

/* Optimal string alignment distance (Damerau-Levenshtein with adjacent transpositions),
 * capped: returns limit + 1 as soon as the answer is known to exceed limit. */
static size_t edit_distance(const char *a, const char *b, size_t limit)
{
        size_t la = strlen(a), lb = strlen(b);

        if ((la > lb ? la - lb : lb - la) > limit)
                return limit + 1;
        if (la > 256 || lb > 256)
                return limit + 1;

        _cleanup_free_ size_t *d = new (size_t, (la + 1) * (lb + 1));
        if (!d)
                return limit + 1;
#define D(i, j) d[(i) * (lb + 1) + (j)]
        for (size_t i = 0; i <= la; i++)
                D(i, 0) = i;
        for (size_t j = 0; j <= lb; j++)
                D(0, j) = j;
        for (size_t i = 1; i <= la; i++)
                for (size_t j = 1; j <= lb; j++) {
                        size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
                        size_t v = MIN(D(i - 1, j) + 1, D(i, j - 1) + 1);
                        v = MIN(v, D(i - 1, j - 1) + cost);
                        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                                v = MIN(v, D(i - 2, j - 2) + 1);
                        D(i, j) = v;
                }
        size_t r = D(la, lb);
#undef D
        return r;
}

static const ConfigItem *find_item(const Parser *p, const char *path)
{
        for (size_t i = 0; i < p->n_items; i++)
                if (streq(p->table[i].key, path))
                        return &p->table[i];
        return NULL;
}

/* Whether path names a section: some key of the table continues it with ".". */
static bool is_section(const Parser *p, const char *path)
{
        size_t n = strlen(path);

        for (size_t i = 0; i < p->n_items; i++)
                if (strncmp(p->table[i].key, path, n) == 0 && p->table[i].key[n] == '.')
                        return true;
        return false;
}

/* The known key or section closest to path (distance <= 2), else a key with the same
 * last component in another section, or NULL. Candidates are the table's keys and every
 * section prefix of them. */
static char *suggest(const Parser *p, const char *path)
{
        size_t best_d = 3;
        char *best = NULL;

        for (size_t i = 0; i < p->n_items; i++) {
                const char *key = p->table[i].key;

                for (const char *e = key;; e++) {
                        if (*e != '.' && *e != '\0')
                                continue;
                        _cleanup_free_ char *cand = strndup(key, (size_t)(e - key));
                        if (!cand)
                                return mfree(best);
                        size_t d = edit_distance(path, cand, 2);
                        if (d < best_d) {
                                best_d = d;
                                free(best);
                                best = TAKE_PTR(cand);
                        }
                        if (*e == '\0')
                                break;
                }
        }
        if (best)
                return best;

        /* A key written in the wrong section ("max_processes" at the top level for
         * "limits.max_processes"): the same last component elsewhere. */
        const char *last = strrchr(path, '.');
        last = last ? last + 1 : path;
        for (size_t i = 0; i < p->n_items; i++) {
                const char *key = p->table[i].key, *klast = strrchr(key, '.');
                if (streq(klast ? klast + 1 : key, last) && !streq(key, path))
                        return strdup(key);
        }
        return NULL;
}

/* Line and column (in characters, as libyaml counts them) of a byte offset. */
static yaml_mark_t mark_at(const Parser *p, size_t offset)
{
        yaml_mark_t m = {.index = offset};

        for (size_t i = 0; i < offset && i < p->size; i++) {
                if (p->data[i] == '\n')
                        m.line++, m.column = 0;
                else if (((uint8_t)p->data[i] & 0xc0) != 0x80)
                        m.column++;
        }
        return m;
}

/* Fetches the next event and enforces the rules that hold wherever an event appears:
 * no aliases, no anchors, no tags, bounded nesting. */
static int next_event(Parser *p, yaml_event_t *ret)
{
        yaml_event_t e;
        const char *anchor = NULL, *tag = NULL;

        if (!yaml_parser_parse(&p->yaml, &e)) {
                if (p->yaml.error == YAML_MEMORY_ERROR)
                        return -ENOMEM;
                const yaml_mark_t *m = &p->yaml.problem_mark;
                /* The reader (bad characters) gives an offset, not a mark. */
                yaml_mark_t rm = mark_at(p, p->yaml.problem_offset);
                if (p->yaml.error == YAML_READER_ERROR)
                        m = &rm;
                /* Name the key whose value was being read, if any. */
                _cleanup_free_ char *q = p->current ? quote(p->current, strlen(p->current)) : NULL;
                _cleanup_free_ char *in = q ? strprintf(" (in key '%s')", q) : NULL;
                return fail(p, -EINVAL, m, "invalid YAML: %s%s%s%s", strna(p->yaml.problem),
                            p->yaml.context ? " " : "", strempty(p->yaml.context), strempty(in));
        }

        switch (e.type) {
        case YAML_ALIAS_EVENT:
                fail(p, -EINVAL, &e.start_mark, "aliases (*name) are not allowed");
                event_done(&e);
                return -EINVAL;
        case YAML_SCALAR_EVENT:
                anchor = (const char *)e.data.scalar.anchor;
                tag = (const char *)e.data.scalar.tag;
                break;
        case YAML_SEQUENCE_START_EVENT:
                anchor = (const char *)e.data.sequence_start.anchor;
                tag = (const char *)e.data.sequence_start.tag;
                break;
        case YAML_MAPPING_START_EVENT:
                anchor = (const char *)e.data.mapping_start.anchor;
                tag = (const char *)e.data.mapping_start.tag;
                break;
        default:
                break;
        }
        if (anchor) {
                fail(p, -EINVAL, &e.start_mark, "anchors (&name) are not allowed");
                event_done(&e);
                return -EINVAL;
        }
        if (tag) {
                _cleanup_free_ char *q = quote(tag, strlen(tag));
                fail(p, -EINVAL, &e.start_mark, "tags are not allowed (found '%s')", strna(q));
                event_done(&e);
                return -EINVAL;
        }

        if (e.type == YAML_SEQUENCE_START_EVENT || e.type == YAML_MAPPING_START_EVENT) {
                if (++p->depth > CONFIG_MAX_DEPTH) {
                        fail(p, -EINVAL, &e.start_mark, "nesting deeper than %u levels",
                             (unsigned)CONFIG_MAX_DEPTH);
                        event_done(&e);
                        return -EINVAL;
                }
        } else if (e.type == YAML_SEQUENCE_END_EVENT || e.type == YAML_MAPPING_END_EVENT)
                p->depth--;

        *ret = e;
        return 0;
}

/* A plain empty value ("key:") or "~": YAML's null. */
static bool scalar_is_null(const yaml_event_t *e)
{
        if (e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        return e->data.scalar.length == 0 ||
                (e->data.scalar.length == 1 && e->data.scalar.value[0] == '~');
}

static int record_seen(Parser *p, const char *path, const yaml_mark_t *mark)
{
        for (size_t i = 0; i < p->n_seen; i++)
                if (streq(p->seen[i].path, path)) {
                        _cleanup_free_ char *q = quote(path, strlen(path));
                        return fail(p, -EINVAL, mark, "duplicate key '%s' (first at line %zu)",
                                    strna(q), p->seen[i].mark.line + 1);
                }
        if (!GREEDY_REALLOC(p->seen, p->n_seen_allocated, p->n_seen + 1))
                return -ENOMEM;
        p->seen[p->n_seen].path = strdup(path);
        if (!p->seen[p->n_seen].path)
                return -ENOMEM;
        p->seen[p->n_seen++].mark = *mark;
        return 0;
}

static int check_range(Parser *p, const ConfigItem *item, const yaml_event_t *e, uint64_t v,
                       uint64_t type_max)
{
        uint64_t min = item->min, max = item->max;

        if (min == 0 && max == 0)
                max = type_max;
        max = MIN(max, type_max);
        if (v >= min && v <= max)
                return 0;

        _cleanup_free_ char *q = quote((const char *)e->data.scalar.value, e->data.scalar.length);
        char a[FORMAT_TIMESPAN_MAX > FORMAT_BYTES_MAX ? FORMAT_TIMESPAN_MAX : FORMAT_BYTES_MAX];
        char b[sizeof a];

        switch (item->type) {
        case CONFIG_SIZE:
                format_bytes(a, sizeof a, min);
                format_bytes(b, sizeof b, max);
                break;
        case CONFIG_DURATION:
                format_timespan(a, sizeof a, min);
                format_timespan(b, sizeof b, max);
                break;
        case CONFIG_MODE:
                snprintf(a, sizeof a, "%04" PRIo64, min);
                snprintf(b, sizeof b, "%04" PRIo64, max);
                break;
        default:
                snprintf(a, sizeof a, "%" PRIu64, min);
                snprintf(b, sizeof b, "%" PRIu64, max);
                break;
        }
        return fail(p, -ERANGE, &e->start_mark, "key '%s': '%s' is out of range (%s...%s)",
                    item->key, strna(q), a, b);
}

static int parse_mode(const char *s, uint64_t *ret)
{
        uint64_t v = 0;

        if (isempty(s))
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '7')
                        return -EINVAL;
                v = v * 8 + (uint64_t)(*s - '0');
                if (v > 07777)
                        return -ERANGE;
        }
        *ret = v;
        return 0;
}

/* Parses one scalar for a non-list item into pending. */
static int parse_scalar(Parser *p, const ConfigItem *item, const yaml_event_t *e, Pending *pending)
{
        const char *s = (const char *)e->data.scalar.value;
        size_t len = e->data.scalar.length;
        uint64_t v = 0, type_max = UINT64_MAX;
        int r;

        if (memchr(s, 0, len))
                return fail(p, -EINVAL, &e->start_mark, "key '%s': value contains a NUL byte",
                            item->key);

        if (item->type == CONFIG_STRING) {
                pending->v.s = strndup(scalar_is_null(e) ? "" : s, scalar_is_null(e) ? 0 : len);
                return pending->v.s ? 0 : -ENOMEM;
        }

        _cleanup_free_ char *q = quote(s, len);
        if (scalar_is_null(e))
                return fail(p, -EINVAL, &e->start_mark, "key '%s': expected %s, got an empty value",
                            item->key, type_name(item->type));

        switch (item->type) {
        case CONFIG_BOOL:
                r = parse_boolean(s);
                if (r < 0)
                        break;
                pending->v.b = r;
                return 0;
        case CONFIG_LOG_LEVEL:
                r = log_parse_level(s);
                if (r < 0)
                        break;
                pending->v.i = r;
                return 0;
        case CONFIG_U32:
                type_max = UINT32_MAX;
                __attribute__((fallthrough));
        case CONFIG_U64:
                r = safe_atou64(s, &v);
                break;
        case CONFIG_SIZE:
                r = parse_size(s, &v);
                break;
        case CONFIG_DURATION:
                r = parse_duration(s, &v);
                break;
        case CONFIG_MODE:
                type_max = 07777;
                r = parse_mode(s, &v);
                break;
        default:
                r = -EINVAL;
                break;
        }

        if (r < 0) {
                const char *t = s;
                while (*t == ' ' || *t == '\t')
                        t++;
                if (*t == '-' && item->type != CONFIG_BOOL && item->type != CONFIG_LOG_LEVEL)
                        return fail(p, -EINVAL, &e->start_mark,
                                    "key '%s': expected %s, got negative value '%s'", item->key,
                                    type_name(item->type), strna(q));
                if (r == -ERANGE)
                        return fail(p, -ERANGE, &e->start_mark,
                                    "key '%s': '%s' is too large for %s", item->key, strna(q),
                                    type_name(item->type));
                return fail(p, -EINVAL, &e->start_mark, "key '%s': expected %s, got '%s'",
                            item->key, type_name(item->type), strna(q));
        }

        r = check_range(p, item, e, v, type_max);
        if (r < 0)
                return r;
        if (item->type == CONFIG_U32 || item->type == CONFIG_MODE)
                pending->v.u32 = (uint32_t)v;
        else
                pending->v.u64 = v;
        return 0;
}

static int strv_append_scalar(Parser *p, const ConfigItem *item, const yaml_event_t *e, char ***l)
{
        const char *s = (const char *)e->data.scalar.value;
        size_t len = e->data.scalar.length;

        if (memchr(s, 0, len))
                return fail(p, -EINVAL, &e->start_mark, "key '%s': value contains a NUL byte",
                            item->key);
        char *c = strndup(s, len);
        if (!c)
                return -ENOMEM;
        if (strv_consume(l, c) < 0) {
                free(c);
                return -ENOMEM;
        }
        return 0;
}

/* Parses the value of item (the next events) into a new pending assignment. */
static int parse_value(Parser *p, const ConfigItem *item)
{
        Pending *pending = &p->pending[p->n_pending];
        yaml_event_t e;
        int r;

        /* Duplicates were refused before, so each item is pending at most once. */
        assert(p->n_pending < p->n_items);

        r = next_event(p, &e);
        if (r < 0)
                return r;

        *pending = (Pending){.item = item};

        if (item->type == CONFIG_STRV) {
                _cleanup_strv_free_ char **l = new0(char *, 1);
                if (!l) {
                        event_done(&e);
                        return -ENOMEM;
                }
                if (e.type == YAML_SCALAR_EVENT) {
                        if (!scalar_is_null(&e))
                                r = strv_append_scalar(p, item, &e, &l);
                        event_done(&e);
                        if (r < 0)
                                return r;
                } else if (e.type == YAML_SEQUENCE_START_EVENT) {
                        event_done(&e);
                        for (;;) {
                                r = next_event(p, &e);
                                if (r < 0)
                                        return r;
                                if (e.type == YAML_SEQUENCE_END_EVENT) {
                                        event_done(&e);
                                        break;
                                }
                                if (e.type != YAML_SCALAR_EVENT) {
                                        r = fail(p, -EINVAL, &e.start_mark,
                                                 "key '%s': list items must be scalars, got %s",
                                                 item->key, event_kind(&e));
                                        event_done(&e);
                                        return r;
                                }
                                r = strv_append_scalar(p, item, &e, &l);
                                event_done(&e);
                                if (r < 0)
                                        return r;
                        }
                } else {
                        r = fail(p, -EINVAL, &e.start_mark, "key '%s': expected %s, got %s",
                                 item->key, type_name(item->type), event_kind(&e));
                        event_done(&e);
                        return r;
                }
                pending->v.strv = TAKE_PTR(l);
                p->n_pending++;
                return 0;
        }

        if (e.type != YAML_SCALAR_EVENT) {
                r = fail(p, -EINVAL, &e.start_mark, "key '%s': expected %s, got %s", item->key,
                         type_name(item->type), event_kind(&e));
                event_done(&e);
                return r;
        }
        r = parse_scalar(p, item, &e, pending);
        event_done(&e);
        if (r < 0)
                return r;
        p->n_pending++;
        return 0;
}

static int parse_mapping(Parser *p, const char *prefix);

/* Parses the value of a section key: a mapping, or nothing at all ("http:" with every
 * sub-key commented out). */
static int parse_section(Parser *p, const char *path)
{
        yaml_event_t e;
        int r;

        r = next_event(p, &e);
        if (r < 0)
                return r;
        if (e.type == YAML_MAPPING_START_EVENT) {
                event_done(&e);
                return parse_mapping(p, path);
        }
        if (e.type == YAML_SCALAR_EVENT && scalar_is_null(&e)) {
                event_done(&e);
                return 0;
        }
        _cleanup_free_ char *q = quote(path, strlen(path));
        r = fail(p, -EINVAL, &e.start_mark, "key '%s': expected a mapping of keys, got %s",
                 strna(q), event_kind(&e));
        event_done(&e);
        return r;
}

/* Parses the entries of a mapping whose MAPPING_START was consumed. prefix is "" at the
 * top level, else the section path. */
static int parse_mapping(Parser *p, const char *prefix)
{
        for (;;) {
                yaml_event_t e;
                int r;

                r = next_event(p, &e);
                if (r < 0)
                        return r;
                if (e.type == YAML_MAPPING_END_EVENT) {
                        event_done(&e);
                        return 0;
                }
                if (e.type != YAML_SCALAR_EVENT) {
                        r = fail(p, -EINVAL, &e.start_mark, "keys must be scalars, got %s",
                                 event_kind(&e));
                        event_done(&e);
                        return r;
                }

                const char *k = (const char *)e.data.scalar.value;
                size_t klen = e.data.scalar.length;
                yaml_mark_t mark = e.start_mark;
                _cleanup_free_ char *path = NULL;

                if (memchr(k, 0, klen)) {
                        _cleanup_free_ char *q = quote(k, klen);
                        r = fail(p, -EINVAL, &mark, "key '%s' contains a NUL byte", strna(q));
                        event_done(&e);
                        return r;
                }
                if (isempty(prefix))
                        path = strndup(k, klen);
                else
                        path = strprintf("%s.%.*s", prefix, (int)MIN(klen, (size_t)INT_MAX), k);
                if (!path) {
                        event_done(&e);
                        return -ENOMEM;
                }

                const ConfigItem *item = find_item(p, path);
                bool section = !item && is_section(p, path);

                if (!item && !section) {
                        _cleanup_free_ char *q = quote(path, strlen(path)), *s = suggest(p, path);

                        if (s)
                                r = fail(p, -EINVAL, &mark, "unknown key '%s' (did you mean '%s'?)",
                                         strna(q), s);
                        else
                                r = fail(p, -EINVAL, &mark, "unknown key '%s'", strna(q));
                        event_done(&e);
                        return r;
                }
                event_done(&e);

                r = record_seen(p, path, &mark);
                if (r < 0)
                        return r;
                const char *saved = p->current;
                p->current = path;
                r = item ? parse_value(p, item) : parse_section(p, path);
                p->current = saved;
                if (r < 0)
                        return r;
        }
}

static int parse_document(Parser *p)
{
        yaml_event_t e;
        int r;

        r = next_event(p, &e);
        if (r < 0)
                return r;
        assert(e.type == YAML_STREAM_START_EVENT);
        event_done(&e);

        r = next_event(p, &e);
        if (r < 0)
                return r;
        if (e.type == YAML_STREAM_END_EVENT) { /* empty, or only comments */
                event_done(&e);
                return 0;
        }
        assert(e.type == YAML_DOCUMENT_START_EVENT);
        event_done(&e);

        r = next_event(p, &e);
        if (r < 0)
                return r;
        if (e.type == YAML_MAPPING_START_EVENT) {
                event_done(&e);
                r = parse_mapping(p, "");
                if (r < 0)
                        return r;
        } else if (e.type == YAML_SCALAR_EVENT && scalar_is_null(&e))
                event_done(&e); /* "---" alone: an empty document */
        else {
                r = fail(p, -EINVAL, &e.start_mark,
                         "the top level must be a mapping of keys, got %s", event_kind(&e));
                event_done(&e);
                return r;
        }

        r = next_event(p, &e); /* DOCUMENT_END */
        if (r < 0)
                return r;
        event_done(&e);

        r = next_event(p, &e);
        if (r < 0)
                return r;
        if (e.type != YAML_STREAM_END_EVENT) {
                r = fail(p, -EINVAL, &e.start_mark,
                         "more than one YAML document ('---') in one file");
                event_done(&e);
                return r;
        }
        event_done(&e);
        return 0;
}

/* Returns the offset of the first byte that is not part of valid UTF-8 (overlong forms,
 * surrogates and code points past U+10FFFF are invalid), or size if all is valid. */
static size_t utf8_invalid_offset(const uint8_t *s, size_t size)
{
        size_t i = 0;

        while (i < size) {
                uint8_t c = s[i];
                size_t n;
                uint32_t cp, min;

                if (c < 0x80) {
                        i++;
                        continue;
                } else if ((c & 0xe0) == 0xc0)
                        n = 1, cp = c & 0x1f, min = 0x80;
                else if ((c & 0xf0) == 0xe0)
                        n = 2, cp = c & 0x0f, min = 0x800;
                else if ((c & 0xf8) == 0xf0)
                        n = 3, cp = c & 0x07, min = 0x10000;
                else
                        return i;
                if (size - i <= n)
                        return i;
                for (size_t k = 1; k <= n; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                return i;
                        cp = (cp << 6) | (s[i + k] & 0x3f);
                }
                if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return i;
                i += n + 1;
        }
        return size;
}

static int check_encoding(Parser *p, const char *data, size_t size)
{
        size_t off = utf8_invalid_offset((const uint8_t *)data, size);

        if (off == size)
                return 0;

        yaml_mark_t m = mark_at(p, off);
        return fail(p, -EINVAL, &m, "not valid UTF-8 (byte 0x%02x)", (unsigned)(uint8_t)data[off]);
}

static void apply(const Pending *pending, void *target)
{
        void *field = (uint8_t *)target + pending->item->offset;

        switch (pending->item->type) {
        case CONFIG_STRING:
                free(*(char **)field);
                *(char **)field = pending->v.s;
                break;
        case CONFIG_STRV:
                strv_free(*(char ***)field);
                *(char ***)field = pending->v.strv;
                break;
        case CONFIG_BOOL:
                *(bool *)field = pending->v.b;
                break;
        case CONFIG_U32:
        case CONFIG_MODE:
                *(uint32_t *)field = pending->v.u32;
                break;
        case CONFIG_U64:
        case CONFIG_SIZE:
        case CONFIG_DURATION:
                *(uint64_t *)field = pending->v.u64;
                break;
        case CONFIG_LOG_LEVEL:
                *(int *)field = pending->v.i;
                break;
        }
}

int config_load_string(const char *name, const char *data, size_t size, const ConfigItem *table,
                       size_t n_items, void *target, char **ret_error)
{
        Parser p = {
                .name = name ?: "(string)",
                .data = data,
                .size = size,
                .table = table,
                .n_items = n_items,
        };
        int r;

        assert(data || size == 0);
        assert(table || n_items == 0);
        assert(target || n_items == 0);

        if (size > CONFIG_MAX_SIZE) {
                r = fail(&p, -EFBIG, NULL, "file is larger than %u bytes", CONFIG_MAX_SIZE);
                goto finish;
        }

        r = check_encoding(&p, data, size);
        if (r < 0)
                goto finish;

        p.pending = new (Pending, MAX(n_items, (size_t)1));
        if (!p.pending) {
                r = -ENOMEM;
                goto finish;
        }

        if (!yaml_parser_initialize(&p.yaml)) {
                r = -ENOMEM;
                goto finish;
        }
        p.yaml_initialized = true;
        yaml_parser_set_input_string(&p.yaml, (const unsigned char *)(data ?: ""), size);

        r = parse_document(&p);
        if (r < 0)
                goto finish;

        for (size_t i = 0; i < p.n_pending; i++)
                apply(&p.pending[i], target);
        p.n_pending = 0; /* ownership moved into target */
        r = 0;

finish:
        if (r < 0 && r != -ENOMEM && !p.error)
                fail(&p, r, NULL, "%s", strerror(-r));
        if (ret_error)
                *ret_error = r < 0 ? TAKE_PTR(p.error) : NULL;
        parser_done(&p);
        return r;
}

int config_load_file(const char *path, const ConfigItem *table, size_t n_items, void *target,
                     char **ret_error)
{
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t size = 0;
        int r;

        if (ret_error)
                *ret_error = NULL;

        /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below, and
         * for a regular file the flag changes nothing. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                r = -errno;
                if (r == -ENOENT)
                        return r;
                goto fail;
        }
        if (fstat(fd, &st) < 0) {
                r = -errno;
                goto fail;
        }
        if (S_ISDIR(st.st_mode)) {
                r = -EISDIR;
                goto fail;
        }
        if (!S_ISREG(st.st_mode)) {
                r = -EINVAL;
                if (ret_error)
                        *ret_error = strprintf("%s: not a regular file", path);
                return r;
        }

        /* Read at most one byte past the limit: that is enough to know it is too big,
         * whatever st_size claims (procfs-like files say 0). */
        buf = malloc(CONFIG_MAX_SIZE + 2);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(fd, buf + size, CONFIG_MAX_SIZE + 1 - size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto fail;
                }
                if (n == 0)
                        break;
                size += (size_t)n;
                if (size > CONFIG_MAX_SIZE)
                        break;
        }
        buf[size] = 0;

        return config_load_string(path, buf, size, table, n_items, target, ret_error);

fail:
        if (ret_error)
                *ret_error = strprintf("%s: %s", path, strerror(-r));
        return r;
}

void config_free_fields(const ConfigItem *table, size_t n_items, void *target)
{
        if (!target)
                return;
        for (size_t i = 0; i < n_items; i++) {
                void *field = (uint8_t *)target + table[i].offset;

                if (table[i].type == CONFIG_STRING)
                        *(char **)field = mfree(*(char **)field);
                else if (table[i].type == CONFIG_STRV)
                        *(char ***)field = strv_free(*(char ***)field);
        }
}
