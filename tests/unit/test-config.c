/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>

#include "basic/alloc-util.h"
#include "basic/fd-util.h"
#include "basic/string-util.h"
#include "basic/strv.h"
#include "basic/time-util.h"
#include "shared/config.h"

typedef struct Cfg {
        char *name;
        char **list;
        bool flag;
        uint32_t count;
        uint64_t big;
        uint64_t memory;
        uint64_t timeout;
        int log_level;
        uint32_t mode;
        uint32_t workers;
        char *http_listen;
        char *tls_cert;
} Cfg;

static const ConfigItem items[] = {
        {"name", CONFIG_STRING, offsetof(Cfg, name), 0, 0},
        {"list", CONFIG_STRV, offsetof(Cfg, list), 0, 0},
        {"flag", CONFIG_BOOL, offsetof(Cfg, flag), 0, 0},
        {"count", CONFIG_U32, offsetof(Cfg, count), 0, 0},
        {"big", CONFIG_U64, offsetof(Cfg, big), 0, 0},
        {"memory", CONFIG_SIZE, offsetof(Cfg, memory), 0, 0},
        {"timeout", CONFIG_DURATION, offsetof(Cfg, timeout), 100 * USEC_PER_MSEC,
         3600 * USEC_PER_SEC},
        {"log_level", CONFIG_LOG_LEVEL, offsetof(Cfg, log_level), 0, 0},
        {"mode", CONFIG_MODE, offsetof(Cfg, mode), 0, 0},
        {"workers", CONFIG_U32, offsetof(Cfg, workers), 1, 64},
        {"http.listen", CONFIG_STRING, offsetof(Cfg, http_listen), 0, 0},
        {"http.tls.cert", CONFIG_STRING, offsetof(Cfg, tls_cert), 0, 0},
};

static void cfg_init(Cfg *c)
{
        *c = (Cfg){
                .name = strdup("default"),
                .count = 7,
                .big = 8,
                .memory = 9,
                .timeout = 10 * USEC_PER_SEC,
                .log_level = LOG_INFO,
                .mode = 0600,
                .workers = 4,
        };
        ck_assert_ptr_nonnull(c->name);
}

static void cfg_done(Cfg *c)
{
        config_free_fields(items, ELEMENTSOF(items), c);
        ck_assert_ptr_null(c->name);
        ck_assert_ptr_null(c->list);
}

static int load(const char *yaml, Cfg *c, char **ret_error)
{
        return config_load_string("test.yaml", yaml, strlen(yaml), items, ELEMENTSOF(items), c,
                                  ret_error);
}

/* Loads yaml, expects error r with exactly message msg; checks the target is untouched. */
static void expect_error(const char *yaml, int r, const char *msg)
{
        _cleanup_free_ char *err = NULL;
        Cfg c;

        cfg_init(&c);
        ck_assert_int_eq(load(yaml, &c, &err), r);
        ck_assert_ptr_nonnull(err);
        ck_assert_msg(!strchr(err, '\n'), "multi-line message: %s", err);
        if (msg)
                ck_assert_str_eq(err, msg);
        ck_assert_str_eq(c.name, "default");
        ck_assert_uint_eq(c.count, 7);
        ck_assert_ptr_null(c.list);
        cfg_done(&c);
}

/* Same, but only checks that the message contains part. */
static void expect_error_containing(const char *yaml, size_t size, int r, const char *part)
{
        _cleanup_free_ char *err = NULL;
        Cfg c;

        cfg_init(&c);
        ck_assert_int_eq(
                config_load_string("test.yaml", yaml, size, items, ELEMENTSOF(items), &c, &err), r);
        ck_assert_ptr_nonnull(err);
        ck_assert_msg(strstr(err, part), "'%s' does not contain '%s'", err, part);
        ck_assert_msg(!strchr(err, '\n'), "multi-line message: %s", err);
        ck_assert_str_eq(c.name, "default");
        cfg_done(&c);
}

START_TEST(test_empty_files_keep_defaults)
{
        static const char *const inputs[] = {
                "", "\n\n", "# only a comment\n", "# a\n\n   # b\n", "---\n", "---\n...\n", "{}\n",
        };

        for (size_t i = 0; i < ELEMENTSOF(inputs); i++) {
                _cleanup_free_ char *err = NULL;
                Cfg c;

                cfg_init(&c);
                ck_assert_int_eq(load(inputs[i], &c, &err), 0);
                ck_assert_ptr_null(err);
                ck_assert_str_eq(c.name, "default");
                ck_assert_uint_eq(c.count, 7);
                ck_assert_uint_eq(c.timeout, 10 * USEC_PER_SEC);
                ck_assert_ptr_null(c.http_listen);
                cfg_done(&c);
        }
}
END_TEST

START_TEST(test_every_type)
{
        _cleanup_free_ char *err = NULL;
        Cfg c;

        cfg_init(&c);
        ck_assert_int_eq(load("name: node-1\n"
                              "list: [a, 'b c', \"d\"]\n"
                              "flag: true\n"
                              "count: 4294967295\n"
                              "big: 18446744073709551615\n"
                              "memory: 512M\n"
                              "timeout: 500ms\n"
                              "log_level: debug\n"
                              "mode: \"0660\"\n"
                              "workers: 64\n"
                              "http:\n"
                              "  listen: 127.0.0.1:8787\n"
                              "  tls:\n"
                              "    cert: /etc/cert.pem\n",
                              &c, &err),
                         0);
        ck_assert_ptr_null(err);
        ck_assert_str_eq(c.name, "node-1");
        ck_assert_uint_eq(strv_length(c.list), 3);
        ck_assert_str_eq(c.list[0], "a");
        ck_assert_str_eq(c.list[1], "b c");
        ck_assert_str_eq(c.list[2], "d");
        ck_assert(c.flag);
        ck_assert_uint_eq(c.count, UINT32_MAX);
        ck_assert_uint_eq(c.big, UINT64_MAX);
        ck_assert_uint_eq(c.memory, 512ULL << 20);
        ck_assert_uint_eq(c.timeout, 500 * USEC_PER_MSEC);
        ck_assert_int_eq(c.log_level, LOG_DEBUG);
        ck_assert_uint_eq(c.mode, 0660);
        ck_assert_uint_eq(c.workers, 64);
        ck_assert_str_eq(c.http_listen, "127.0.0.1:8787");
        ck_assert_str_eq(c.tls_cert, "/etc/cert.pem");
        cfg_done(&c);
}
END_TEST

START_TEST(test_scalar_forms)
{
        Cfg c;

        cfg_init(&c);
        /* Bare numbers: bytes for sizes, seconds for durations; plain modes are octal;
         * booleans in YAML 1.1 spellings; an empty string value. */
        ck_assert_int_eq(load("memory: 1024\ntimeout: 2\nmode: 755\nflag: yes\nname:\n"
                              "log_level: warning\n",
                              &c, NULL),
                         0);
        ck_assert_uint_eq(c.memory, 1024);
        ck_assert_uint_eq(c.timeout, 2 * USEC_PER_SEC);
        ck_assert_uint_eq(c.mode, 0755);
        ck_assert(c.flag);
        ck_assert_str_eq(c.name, "");
        ck_assert_int_eq(c.log_level, LOG_WARNING);

        ck_assert_int_eq(load("flag: off\nname: '~'\nmemory: 4G\ntimeout: 1h\n", &c, NULL), 0);
        ck_assert(!c.flag);
        ck_assert_str_eq(c.name, "~"); /* quoted: a string, not null */
        ck_assert_uint_eq(c.memory, 4ULL << 30);
        ck_assert_uint_eq(c.timeout, 3600 * USEC_PER_SEC);

        /* A flat dotted key is the same as the nested form. */
        ck_assert_int_eq(load("http.listen: '[::1]:80'\n", &c, NULL), 0);
        ck_assert_str_eq(c.http_listen, "[::1]:80");
        cfg_done(&c);
}
END_TEST

START_TEST(test_strv_forms)
{
        Cfg c;

        cfg_init(&c);
        ck_assert_int_eq(load("list: single\n", &c, NULL), 0);
        ck_assert_uint_eq(strv_length(c.list), 1);
        ck_assert_str_eq(c.list[0], "single");

        /* Replaces the previous list (the old one is freed: the sanitizer build checks). */
        ck_assert_int_eq(load("list:\n  - one\n  - two\n", &c, NULL), 0);
        ck_assert_uint_eq(strv_length(c.list), 2);
        ck_assert_str_eq(c.list[1], "two");

        ck_assert_int_eq(load("list: []\n", &c, NULL), 0);
        ck_assert_ptr_nonnull(c.list);
        ck_assert_uint_eq(strv_length(c.list), 0);

        ck_assert_int_eq(load("list:\n", &c, NULL), 0);
        ck_assert_uint_eq(strv_length(c.list), 0);
        cfg_done(&c);

        expect_error("list: [a, [b]]\n", -EINVAL,
                     "test.yaml:1:11: key 'list': list items must be scalars, got a list");
        expect_error("list: {a: b}\n", -EINVAL,
                     "test.yaml:1:7: key 'list': expected a list of strings, got a mapping");
}
END_TEST

START_TEST(test_unknown_keys)
{
        expect_error("nmae: x\n", -EINVAL,
                     "test.yaml:1:1: unknown key 'nmae' (did you mean 'name'?)");
        expect_error("name: x\ncuont: 3\n", -EINVAL,
                     "test.yaml:2:1: unknown key 'cuont' (did you mean 'count'?)");
        expect_error("http:\n  lisen: x\n", -EINVAL,
                     "test.yaml:2:3: unknown key 'http.lisen' (did you mean 'http.listen'?)");
        expect_error("htp:\n  listen: x\n", -EINVAL,
                     "test.yaml:1:1: unknown key 'htp' (did you mean 'http'?)");
        expect_error("http:\n  tls:\n    cret: x\n", -EINVAL,
                     "test.yaml:3:5: unknown key 'http.tls.cret' (did you mean 'http.tls.cert'?)");
        /* Right key, wrong section. */
        expect_error("cert: x\n", -EINVAL,
                     "test.yaml:1:1: unknown key 'cert' (did you mean 'http.tls.cert'?)");
        expect_error("http:\n  name: x\n", -EINVAL,
                     "test.yaml:2:3: unknown key 'http.name' (did you mean 'name'?)");
        expect_error("completely_unrelated: 1\n", -EINVAL,
                     "test.yaml:1:1: unknown key 'completely_unrelated'");
        expect_error("name:\n  sub: 1\n", -EINVAL,
                     "test.yaml:2:3: key 'name': expected a string, got a mapping");
        /* A key is text, never a structure. */
        expect_error("? [a, b]\n: 1\n", -EINVAL, "test.yaml:1:3: keys must be scalars, got a list");
        /* A key with control characters is escaped: messages stay on one line. */
        expect_error("\"a\\nb\": 1\n", -EINVAL, "test.yaml:1:1: unknown key 'a\\x0ab'");
        expect_error("\"a\\0b\": 1\n", -EINVAL, "test.yaml:1:1: key 'a\\x00b' contains a NUL byte");
}
END_TEST

START_TEST(test_wrong_types)
{
        expect_error("count: many\n", -EINVAL,
                     "test.yaml:1:8: key 'count': expected an unsigned integer, got 'many'");
        expect_error("big: 1.5\n", -EINVAL,
                     "test.yaml:1:6: key 'big': expected an unsigned integer, got '1.5'");
        expect_error("flag: maybe\n", -EINVAL,
                     "test.yaml:1:7: key 'flag': expected a boolean (true/false), got 'maybe'");
        expect_error("memory: lots\n", -EINVAL,
                     "test.yaml:1:9: key 'memory': expected a size (e.g. 512M, 4G), got 'lots'");
        expect_error("timeout: 3 fortnights\n", -EINVAL,
                     "test.yaml:1:10: key 'timeout': expected a duration (e.g. 500ms, 30s), got '3 "
                     "fortnights'");
        expect_error("log_level: loud\n", -EINVAL,
                     "test.yaml:1:12: key 'log_level': expected a log level (debug, info, notice, "
                     "warning, err), got 'loud'");
        expect_error("mode: 0968\n", -EINVAL,
                     "test.yaml:1:7: key 'mode': expected an octal file mode (e.g. 0660), got "
                     "'0968'");
        expect_error("count: [1]\n", -EINVAL,
                     "test.yaml:1:8: key 'count': expected an unsigned integer, got a list");
        expect_error("name: {a: 1}\n", -EINVAL,
                     "test.yaml:1:7: key 'name': expected a string, got a mapping");
        expect_error(
                "count:\n", -EINVAL,
                "test.yaml:1:7: key 'count': expected an unsigned integer, got an empty value");
        expect_error("http: 5\n", -EINVAL,
                     "test.yaml:1:7: key 'http': expected a mapping of keys, got a scalar");
        expect_error("http: [a]\n", -EINVAL,
                     "test.yaml:1:7: key 'http': expected a mapping of keys, got a list");
        expect_error("name: \"a\\0b\"\n", -EINVAL,
                     "test.yaml:1:7: key 'name': value contains a NUL byte");
}
END_TEST

START_TEST(test_ranges_and_negatives)
{
        expect_error("workers: 0\n", -ERANGE,
                     "test.yaml:1:10: key 'workers': '0' is out of range (1...64)");
        expect_error("workers: 65\n", -ERANGE,
                     "test.yaml:1:10: key 'workers': '65' is out of range (1...64)");
        expect_error("count: 4294967296\n", -ERANGE,
                     "test.yaml:1:8: key 'count': '4294967296' is out of range (0...4294967295)");
        expect_error("big: 18446744073709551616\n", -ERANGE,
                     "test.yaml:1:6: key 'big': '18446744073709551616' is too large for an "
                     "unsigned integer");
        expect_error("timeout: 50ms\n", -ERANGE,
                     "test.yaml:1:10: key 'timeout': '50ms' is out of range (100.0ms...1h0m)");
        expect_error("timeout: 2h\n", -ERANGE, NULL);
        expect_error("mode: 17777\n", -ERANGE, NULL);
        expect_error("memory: 99999999999T\n", -ERANGE, NULL);

        expect_error("count: -1\n", -EINVAL,
                     "test.yaml:1:8: key 'count': expected an unsigned integer, got negative value "
                     "'-1'");
        expect_error("big: -0\n", -EINVAL, NULL);
        expect_error("memory: -5M\n", -EINVAL,
                     "test.yaml:1:9: key 'memory': expected a size (e.g. 512M, 4G), got negative "
                     "value '-5M'");
        expect_error("timeout: -1s\n", -EINVAL, NULL);
        expect_error("mode: -0660\n", -EINVAL, NULL);
}
END_TEST

START_TEST(test_duplicates)
{
        expect_error("name: a\nname: b\n", -EINVAL,
                     "test.yaml:2:1: duplicate key 'name' (first at line 1)");
        expect_error("http:\n  listen: a\nhttp:\n  tls: {cert: x}\n", -EINVAL,
                     "test.yaml:3:1: duplicate key 'http' (first at line 1)");
        expect_error("http.listen: a\nhttp:\n  listen: b\n", -EINVAL,
                     "test.yaml:3:3: duplicate key 'http.listen' (first at line 1)");
        expect_error("{count: 1, count: 1}\n", -EINVAL, NULL);
}
END_TEST

START_TEST(test_anchors_aliases_tags)
{
        expect_error("name: &n x\n", -EINVAL, "test.yaml:1:7: anchors (&name) are not allowed");
        expect_error("list: &l [a]\n", -EINVAL, NULL);
        expect_error("http: &h {listen: x}\n", -EINVAL, NULL);
        expect_error("name: *n\n", -EINVAL, "test.yaml:1:7: aliases (*name) are not allowed");
        /* The billion laughs, cut short at the first anchor. */
        expect_error(
                "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
                "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                "list: *c\n",
                -EINVAL, "test.yaml:1:1: unknown key 'a'");
        expect_error("list: &a [x]\nname: *a\n", -EINVAL,
                     "test.yaml:1:7: anchors (&name) are not allowed");
        expect_error("name: !!str x\n", -EINVAL,
                     "test.yaml:1:7: tags are not allowed (found 'tag:yaml.org,2002:str')");
        expect_error("name: !custom x\n", -EINVAL, NULL);
        expect_error("list: !!seq [x]\n", -EINVAL, NULL);
        expect_error("--- !!map\nname: x\n", -EINVAL, NULL);
}
END_TEST

START_TEST(test_structure)
{
        expect_error("- a\n- b\n", -EINVAL,
                     "test.yaml:1:1: the top level must be a mapping of keys, got a list");
        expect_error("just text\n", -EINVAL,
                     "test.yaml:1:1: the top level must be a mapping of keys, got a scalar");
        expect_error("name: a\n---\nname: b\n", -EINVAL,
                     "test.yaml:2:1: more than one YAML document ('---') in one file");
        expect_error("---\n---\n", -EINVAL, NULL);
        expect_error_containing("list: [unclosed\n", strlen("list: [unclosed\n"), -EINVAL,
                                "test.yaml:2:1: invalid YAML: did not find expected ',' or ']' "
                                "while parsing a flow sequence (in key 'list')");
        expect_error_containing("name: a\n  bad indent: b\n", strlen("name: a\n  bad indent: b\n"),
                                -EINVAL, "invalid YAML: mapping values are not allowed");
        expect_error_containing("name: \"a\tb\x01\"\n", 13, -EINVAL, "invalid YAML");
        expect_error_containing("\tname: a\n", 9, -EINVAL, "test.yaml:1:1: invalid YAML");
}
END_TEST

START_TEST(test_depth)
{
        /* A table whose keys nest 20 levels, so only the depth limit can stop the file. */
        static const ConfigItem deep[] = {
                {"a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a", CONFIG_STRING, 0, 0, 0},
                {"a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.b", CONFIG_STRING, 0, 0, 0},
        };
        char yaml[2048], *p = yaml;
        _cleanup_free_ char *err = NULL;
        char *value = NULL;

        /* CONFIG_MAX_DEPTH nested mappings (the top level counts as one) are fine. */
        for (unsigned i = 0; i + 1 < CONFIG_MAX_DEPTH; i++)
                p += sprintf(p, "%*sa:\n", (int)(2 * i), "");
        sprintf(p, "%*sb: ok\n", (int)(2 * (CONFIG_MAX_DEPTH - 1)), "");
        ck_assert_int_eq(config_load_string("deep.yaml", yaml, strlen(yaml), deep, ELEMENTSOF(deep),
                                            &value, &err),
                         0);
        ck_assert_str_eq(value, "ok");
        value = mfree(value);

        p = yaml;
        for (unsigned i = 0; i < CONFIG_MAX_DEPTH; i++)
                p += sprintf(p, "%*sa:\n", (int)(2 * i), "");
        sprintf(p, "%*sa: x\n", (int)(2 * CONFIG_MAX_DEPTH), "");
        ck_assert_int_eq(config_load_string("deep.yaml", yaml, strlen(yaml), deep, ELEMENTSOF(deep),
                                            &value, &err),
                         -EINVAL);
        ck_assert_str_eq(err, "deep.yaml:17:33: nesting deeper than 16 levels");
        ck_assert_ptr_null(value);

        /* Deep flow nesting anywhere is refused without recursion or a crash. */
        size_t n = 100000;
        _cleanup_free_ char *flow = malloc(2 * n + 16);
        ck_assert_ptr_nonnull(flow);
        memcpy(flow, "list: ", 6);
        memset(flow + 6, '[', n);
        memset(flow + 6 + n, ']', n);
        expect_error_containing(flow, 6 + 2 * n, -EINVAL, "test.yaml:1:8: key 'list'");
        memset(flow, '[', n);
        memset(flow + n, ']', n);
        expect_error_containing(flow, 2 * n, -EINVAL, "test.yaml:1:1: the top level");
}
END_TEST

START_TEST(test_size_limit)
{
        _cleanup_free_ char *big = malloc(CONFIG_MAX_SIZE + 1);
        Cfg c;

        ck_assert_ptr_nonnull(big);
        /* Exactly the limit: one long comment line is a valid, empty file. */
        big[0] = '#';
        memset(big + 1, 'x', CONFIG_MAX_SIZE - 2);
        big[CONFIG_MAX_SIZE - 1] = '\n';
        cfg_init(&c);
        ck_assert_int_eq(config_load_string("big.yaml", big, CONFIG_MAX_SIZE, items,
                                            ELEMENTSOF(items), &c, NULL),
                         0);
        cfg_done(&c);
        big[CONFIG_MAX_SIZE] = '\n';
        expect_error_containing(big, CONFIG_MAX_SIZE + 1, -EFBIG,
                                "test.yaml: file is larger than 1048576 bytes");
}
END_TEST

START_TEST(test_encoding)
{
        expect_error_containing("name: \xff\n", 8, -EINVAL,
                                "test.yaml:1:7: not valid UTF-8 (byte 0xff)");
        expect_error_containing("# ok\nname: \xc3\xa9\xc0\xaf\n", 14, -EINVAL,
                                "test.yaml:2:8: not valid UTF-8 (byte 0xc0)"); /* overlong '/' */
        expect_error_containing("name: \xed\xa0\x80\n", 10, -EINVAL,
                                "not valid UTF-8"); /* surrogate */
        expect_error_containing("name: \xf4\x90\x80\x80\n", 11, -EINVAL, "not valid UTF-8");
        expect_error_containing("name: \xe2\x82\n", 9, -EINVAL, "not valid UTF-8"); /* truncated */
        /* UTF-16 with a BOM is not UTF-8. */
        expect_error_containing("\xff\xfen\0a\0", 6, -EINVAL, "test.yaml:1:1: not valid UTF-8");
        expect_error_containing("name: a\0b\n", 10, -EINVAL,
                                "test.yaml:1:8: invalid YAML: control characters are not allowed");
        expect_error_containing("# x\nname: \"\x01\"\n", 14, -EINVAL,
                                "test.yaml:2:8: invalid YAML");

        /* Real UTF-8 (and a BOM) is fine. */
        Cfg c;
        cfg_init(&c);
        ck_assert_int_eq(load("\xef\xbb\xbfname: caf\xc3\xa9 \xf0\x9f\x90\xa7\n", &c, NULL), 0);
        ck_assert_str_eq(c.name, "caf\xc3\xa9 \xf0\x9f\x90\xa7");
        cfg_done(&c);
}
END_TEST

START_TEST(test_error_leaves_target_untouched)
{
        _cleanup_free_ char *err = NULL;
        Cfg c;

        cfg_init(&c);
        ck_assert_int_eq(
                load("name: changed\nlist: [x]\ncount: 1\nflag: true\nworkers: 99\n", &c, &err),
                -ERANGE);
        ck_assert_str_eq(c.name, "default");
        ck_assert_ptr_null(c.list);
        ck_assert_uint_eq(c.count, 7);
        ck_assert(!c.flag);
        ck_assert_uint_eq(c.workers, 4);
        cfg_done(&c);

        /* Without ret_error the code alone is returned. */
        cfg_init(&c);
        ck_assert_int_eq(load("bogus: 1\n", &c, NULL), -EINVAL);
        cfg_done(&c);
}
END_TEST

static char *write_temp(const char *content, size_t size)
{
        char *path = strdup("/tmp/test-config-XXXXXX");
        int fd;

        ck_assert_ptr_nonnull(path);
        fd = mkostemp(path, O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(loop_write(fd, content, size), 0);
        safe_close(fd);
        return path;
}

START_TEST(test_files)
{
        _cleanup_free_ char *err = NULL, *path = NULL;
        Cfg c;

        cfg_init(&c);
        char *stale = (char *)"stale";
        ck_assert_int_eq(config_load_file("/nonexistent/cluster-ai.yaml", items, ELEMENTSOF(items),
                                          &c, &stale),
                         -ENOENT);
        ck_assert_ptr_null(stale); /* a missing file means "defaults", without a message */

        path = write_temp("name: from-file\nbig: 3\n", 22);
        ck_assert_int_eq(config_load_file(path, items, ELEMENTSOF(items), &c, &err), 0);
        ck_assert_ptr_null(err);
        ck_assert_str_eq(c.name, "from-file");
        ck_assert_uint_eq(c.big, 3);
        unlink(path);
        path = mfree(path);

        path = write_temp("name: x\nbgi: 3\n", 15);
        ck_assert_int_eq(config_load_file(path, items, ELEMENTSOF(items), &c, &err), -EINVAL);
        _cleanup_free_ char *expect =
                strprintf("%s:2:1: unknown key 'bgi' (did you mean 'big'?)", path);
        ck_assert_str_eq(err, expect);
        ck_assert_str_eq(c.name, "from-file");
        unlink(path);
        path = mfree(path);
        err = mfree(err);

        _cleanup_free_ char *big = malloc(CONFIG_MAX_SIZE + 100);
        ck_assert_ptr_nonnull(big);
        memset(big, '#', CONFIG_MAX_SIZE + 100);
        path = write_temp(big, CONFIG_MAX_SIZE + 100);
        ck_assert_int_eq(config_load_file(path, items, ELEMENTSOF(items), &c, &err), -EFBIG);
        ck_assert_ptr_nonnull(strstr(err, "file is larger than"));
        unlink(path);
        err = mfree(err);

        ck_assert_int_lt(config_load_file("/tmp", items, ELEMENTSOF(items), &c, &err), 0);
        ck_assert_ptr_nonnull(err);
        err = mfree(err);
        ck_assert_int_eq(config_load_file("/dev/null", items, ELEMENTSOF(items), &c, &err),
                         -EINVAL);
        ck_assert_str_eq(err, "/dev/null: not a regular file");
        err = mfree(err);

        /* A FIFO is refused at once, not read until some writer comes along. */
        char dir[] = "/tmp/test-config-XXXXXX";
        ck_assert_ptr_nonnull(mkdtemp(dir));
        _cleanup_free_ char *fifo = strprintf("%s/fifo", dir);
        ck_assert_int_eq(mkfifo(fifo, 0600), 0);
        ck_assert_int_eq(config_load_file(fifo, items, ELEMENTSOF(items), &c, &err), -EINVAL);
        unlink(fifo);
        rmdir(dir);
        ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
        cfg_done(&c);
}
END_TEST

/* The example files installed to /etc/cluster-ai, read with tables that have the
 * daemons' keys, types and ranges (daemon/scheduler-config.c, agent/agent-config.c), so
 * that every documented default is also one the daemons accept. */
typedef struct SchedulerCfg {
        char *cluster, *name, *listen, *control_socket, *state_dir;
        uint32_t control_socket_mode;
        uint64_t heartbeat_interval, agent_timeout, drain_timeout;
        bool auto_approve;
        uint32_t max_agents, max_clients, max_tasks_per_agent, max_queued_tasks;
        uint64_t max_frame;
        int log_level;
        char *http_listen, *ollama_listen, *chat_listen;
} SchedulerCfg;

#define S(field) offsetof(SchedulerCfg, field)
static const ConfigItem scheduler_items[] = {
        {"cluster", CONFIG_STRING, S(cluster), 0, 0},
        {"name", CONFIG_STRING, S(name), 0, 0},
        {"listen", CONFIG_STRING, S(listen), 0, 0},
        {"control_socket", CONFIG_STRING, S(control_socket), 0, 0},
        {"control_socket_mode", CONFIG_MODE, S(control_socket_mode), 0, 07777},
        {"state_dir", CONFIG_STRING, S(state_dir), 0, 0},
        {"heartbeat_interval", CONFIG_DURATION, S(heartbeat_interval), 100 * USEC_PER_MSEC,
         60 * USEC_PER_SEC},
        {"agent_timeout", CONFIG_DURATION, S(agent_timeout), 500 * USEC_PER_MSEC,
         3600 * USEC_PER_SEC},
        {"drain_timeout", CONFIG_DURATION, S(drain_timeout), 0, 3600 * USEC_PER_SEC},
        {"auto_approve", CONFIG_BOOL, S(auto_approve), 0, 0},
        {"max_agents", CONFIG_U32, S(max_agents), 1, 100000},
        {"max_clients", CONFIG_U32, S(max_clients), 1, 100000},
        {"max_frame", CONFIG_SIZE, S(max_frame), 64 * 1024, 1024 * 1024 * 1024},
        {"max_tasks_per_agent", CONFIG_U32, S(max_tasks_per_agent), 0, 1000000},
        {"max_queued_tasks", CONFIG_U32, S(max_queued_tasks), 1, 10000000},
        {"log_level", CONFIG_LOG_LEVEL, S(log_level), 0, 0},
        {"http.listen", CONFIG_STRING, S(http_listen), 0, 0},
        {"ollama.listen", CONFIG_STRING, S(ollama_listen), 0, 0},
        {"chat.listen", CONFIG_STRING, S(chat_listen), 0, 0},
};
#undef S

typedef struct AgentCfg {
        char *scheduler, *name, *cluster, *token, *token_file, *state_dir, *run_as, *task_dir;
        uint32_t cpus, max_tasks;
        uint64_t memory, output_window, reconnect_min, reconnect_max;
        uint64_t max_processes, max_open_files, max_file_size;
        int log_level;
} AgentCfg;

#define A(field) offsetof(AgentCfg, field)
static const ConfigItem agent_items[] = {
        {"scheduler", CONFIG_STRING, A(scheduler), 0, 0},
        {"name", CONFIG_STRING, A(name), 0, 0},
        {"cluster", CONFIG_STRING, A(cluster), 0, 0},
        {"token", CONFIG_STRING, A(token), 0, 0},
        {"token_file", CONFIG_STRING, A(token_file), 0, 0},
        {"state_dir", CONFIG_STRING, A(state_dir), 0, 0},
        {"cpus", CONFIG_U32, A(cpus), 0, 65536},
        {"memory", CONFIG_SIZE, A(memory), 0, 0},
        {"max_tasks", CONFIG_U32, A(max_tasks), 0, 100000},
        {"run_as", CONFIG_STRING, A(run_as), 0, 0},
        {"task_dir", CONFIG_STRING, A(task_dir), 0, 0},
        {"output_window", CONFIG_SIZE, A(output_window), 4096, 256 * 1024 * 1024},
        {"reconnect_min", CONFIG_DURATION, A(reconnect_min), 10 * USEC_PER_MSEC,
         600 * USEC_PER_SEC},
        {"reconnect_max", CONFIG_DURATION, A(reconnect_max), 10 * USEC_PER_MSEC,
         3600 * USEC_PER_SEC},
        {"limits.max_processes", CONFIG_U64, A(max_processes), 0, 0},
        {"limits.max_open_files", CONFIG_U64, A(max_open_files), 0, 0},
        {"limits.max_file_size", CONFIG_SIZE, A(max_file_size), 0, 0},
        {"log_level", CONFIG_LOG_LEVEL, A(log_level), 0, 0},
};
#undef A

/* Sentinels that no documented default equals, so that we see every key being set. */
static void scheduler_sentinels(SchedulerCfg *c)
{
        *c = (SchedulerCfg){
                .cluster = strdup("?"),
                .name = strdup("?"),
                .listen = strdup("?"),
                .control_socket = strdup("?"),
                .state_dir = strdup("?"),
                .control_socket_mode = 01,
                .heartbeat_interval = 1,
                .agent_timeout = 1,
                .auto_approve = true,
                .max_agents = 1,
                .max_clients = 1,
                .max_tasks_per_agent = 1,
                .drain_timeout = 1,
                .max_queued_tasks = 2,
                .max_frame = 1,
                .log_level = LOG_EMERG,
                .http_listen = strdup("?"),
                .ollama_listen = strdup("?"),
                .chat_listen = strdup("?"),
        };
}

static void agent_sentinels(AgentCfg *c)
{
        *c = (AgentCfg){
                .scheduler = strdup("?"),
                .name = strdup("?"),
                .cluster = strdup("?"),
                .token = strdup("?"),
                .token_file = strdup("?"),
                .state_dir = strdup("?"),
                .run_as = strdup("?"),
                .task_dir = strdup("?"),
                .cpus = 1,
                .max_tasks = 1,
                .memory = 1,
                .output_window = 1,
                .reconnect_min = 1,
                .reconnect_max = 1,
                .max_processes = 1,
                .max_open_files = 1,
                .max_file_size = 1,
                .log_level = LOG_EMERG,
        };
}

/* Uncomments the settings of an example file: a line "#key: value" or "#  key: value"
 * (after the '#', optional spaces, then a lowercase key and a colon) is a commented
 * setting; anything else ("# Prose.") stays a comment. */
static bool is_commented_setting(const char *l, const char *e)
{
        const char *k;

        if (l[0] != '#')
                return false;
        for (l++; l < e && *l == ' '; l++)
                ;
        for (k = l; k < e && ((*k >= 'a' && *k <= 'z') || *k == '_'); k++)
                ;
        return k > l && k < e && *k == ':' && (k + 1 == e || k[1] == ' ');
}

static char *uncomment(const char *text)
{
        size_t n = strlen(text);
        char *out = malloc(n + 1), *o = out;

        ck_assert_ptr_nonnull(out);
        for (const char *l = text; *l;) {
                const char *e = strchrnul(l, '\n');
                if (is_commented_setting(l, e))
                        l++;
                memcpy(o, l, (size_t)(e - l));
                o += e - l;
                if (*e == '\n')
                        *o++ = '\n', e++;
                l = e;
        }
        *o = 0;
        return out;
}

static void load_example(const char *file, const ConfigItem *table, size_t n, void *target,
                         bool uncommented)
{
        _cleanup_free_ char *path = strprintf("%s/%s", CONFIG_EXAMPLES_DIR, file), *err = NULL,
                            *text = NULL, *u = NULL;
        size_t size;

        ck_assert_ptr_nonnull(path);
        if (!uncommented) {
                ck_assert_msg(config_load_file(path, table, n, target, &err) == 0, "%s", err);
                return;
        }
        ck_assert_int_eq(read_full_file(path, &text, &size, CONFIG_MAX_SIZE), 0);
        u = uncomment(text);
        ck_assert_msg(config_load_string(path, u, strlen(u), table, n, target, &err) == 0, "%s",
                      err);
}

START_TEST(test_example_scheduler)
{
        SchedulerCfg c;

        /* As installed: everything commented out, so nothing changes. */
        scheduler_sentinels(&c);
        load_example("scheduler.yaml", scheduler_items, ELEMENTSOF(scheduler_items), &c, false);
        ck_assert_str_eq(c.cluster, "?");
        ck_assert_uint_eq(c.max_agents, 1);
        config_free_fields(scheduler_items, ELEMENTSOF(scheduler_items), &c);

        /* Uncommented: every key is there, with its documented default. */
        scheduler_sentinels(&c);
        load_example("scheduler.yaml", scheduler_items, ELEMENTSOF(scheduler_items), &c, true);
        ck_assert_str_eq(c.cluster, "default");
        ck_assert_str_eq(c.name, "");
        ck_assert_str_eq(c.listen, "0.0.0.0:8786");
        ck_assert_str_eq(c.control_socket, RUNDIR "/scheduler.sock");
        ck_assert_uint_eq(c.control_socket_mode, 0660);
        ck_assert_str_eq(c.state_dir, STATEDIR "/scheduler");
        ck_assert_uint_eq(c.heartbeat_interval, USEC_PER_SEC);
        ck_assert_uint_eq(c.agent_timeout, 3 * USEC_PER_SEC);
        ck_assert(!c.auto_approve);
        ck_assert_uint_eq(c.max_agents, 1024);
        ck_assert_uint_eq(c.max_clients, 256);
        ck_assert_uint_eq(c.max_frame, 16ULL << 20);
        ck_assert_uint_eq(c.max_tasks_per_agent, 0);
        ck_assert_uint_eq(c.drain_timeout, 10 * USEC_PER_SEC);
        ck_assert_uint_eq(c.max_queued_tasks, 1000000);
        ck_assert_int_eq(c.log_level, LOG_INFO);
        ck_assert_str_eq(c.http_listen, "127.0.0.1:8787");
        ck_assert_str_eq(c.ollama_listen, "127.0.0.1:11434");
        ck_assert_str_eq(c.chat_listen, "127.0.0.1:3000");
        config_free_fields(scheduler_items, ELEMENTSOF(scheduler_items), &c);
}
END_TEST

START_TEST(test_example_agent)
{
        AgentCfg c;

        agent_sentinels(&c);
        load_example("agent.yaml", agent_items, ELEMENTSOF(agent_items), &c, false);
        ck_assert_str_eq(c.scheduler, "?");
        ck_assert_uint_eq(c.cpus, 1);
        config_free_fields(agent_items, ELEMENTSOF(agent_items), &c);

        agent_sentinels(&c);
        load_example("agent.yaml", agent_items, ELEMENTSOF(agent_items), &c, true);
        ck_assert_str_eq(c.scheduler, "");
        ck_assert_str_eq(c.name, "");
        ck_assert_str_eq(c.cluster, "default");
        ck_assert_str_eq(c.token, "");
        ck_assert_str_eq(c.token_file, "");
        ck_assert_str_eq(c.state_dir, STATEDIR "/agent");
        ck_assert_uint_eq(c.cpus, 0);
        ck_assert_uint_eq(c.memory, 0);
        ck_assert_uint_eq(c.max_tasks, 0);
        ck_assert_str_eq(c.run_as, "cluster-ai-task");
        ck_assert_str_eq(c.task_dir, "");
        ck_assert_uint_eq(c.output_window, 1ULL << 20);
        ck_assert_uint_eq(c.reconnect_min, 500 * USEC_PER_MSEC);
        ck_assert_uint_eq(c.reconnect_max, 30 * USEC_PER_SEC);
        ck_assert_uint_eq(c.max_processes, 4096);
        ck_assert_uint_eq(c.max_open_files, 65536);
        ck_assert_uint_eq(c.max_file_size, 0);
        ck_assert_int_eq(c.log_level, LOG_INFO);
        config_free_fields(agent_items, ELEMENTSOF(agent_items), &c);
}
END_TEST

static Suite *config_suite(void)
{
        Suite *s = suite_create("config");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_empty_files_keep_defaults);
        tcase_add_test(tc, test_every_type);
        tcase_add_test(tc, test_scalar_forms);
        tcase_add_test(tc, test_strv_forms);
        tcase_add_test(tc, test_unknown_keys);
        tcase_add_test(tc, test_wrong_types);
        tcase_add_test(tc, test_ranges_and_negatives);
        tcase_add_test(tc, test_duplicates);
        tcase_add_test(tc, test_anchors_aliases_tags);
        tcase_add_test(tc, test_structure);
        tcase_add_test(tc, test_depth);
        tcase_add_test(tc, test_size_limit);
        tcase_add_test(tc, test_encoding);
        tcase_add_test(tc, test_error_leaves_target_untouched);
        tcase_add_test(tc, test_files);
        suite_add_tcase(s, tc);

        tc = tcase_create("examples");
        tcase_add_test(tc, test_example_scheduler);
        tcase_add_test(tc, test_example_agent);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(config_suite());
        int failed;

        srunner_run_all(sr, CK_ENV);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
