/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "basic/alloc-util.h"
#include "basic/fd-util.h"
#include "cluster.pb-c.h"
#include "shared/log.h"
#include "shared/proto-util.h"

/* Runs fn with stderr redirected to a temporary file and returns what it wrote. */
static char *capture_stderr(void (*fn)(void))
{
        char path[] = "/tmp/test-log-XXXXXX";
        int fd = mkstemp(path), saved = dup(STDERR_FILENO);
        char *out = NULL;

        ck_assert_int_ge(fd, 0);
        fflush(stderr);
        ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
        fn();
        fflush(stderr);
        ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
        close(saved);
        close(fd);
        ck_assert_int_eq(read_full_file(path, &out, NULL, 65536), 0);
        unlink(path);
        return out;
}

START_TEST(test_parse_level)
{
        ck_assert_int_eq(log_parse_level("debug"), LOG_DEBUG);
        ck_assert_int_eq(log_parse_level("INFO"), LOG_INFO);
        ck_assert_int_eq(log_parse_level("warn"), LOG_WARNING);
        ck_assert_int_eq(log_parse_level("error"), LOG_ERR);
        ck_assert_int_eq(log_parse_level("3"), 3);
        ck_assert_int_eq(log_parse_level("8"), -EINVAL);
        ck_assert_int_eq(log_parse_level("loud"), -EINVAL);
}
END_TEST

static void emit_console(void)
{
        int r;

        log_set_ident("test");
        log_set_target(LOG_TARGET_CONSOLE);
        log_set_max_level(LOG_INFO);
        r = log_error_errno(-ENOENT, "open %s: %m", "x.yaml");
        ck_assert_int_eq(r, -ENOENT);
        /* Positive errors are accepted too, and 0 still returns an error. */
        ck_assert_int_eq(log_warning_errno(EACCES, "denied: %m"), -EACCES);
        ck_assert_int_eq(log_error_errno(0, "no errno"), -EIO);
        /* Below the level: nothing is formatted, the error still comes back. */
        ck_assert_int_eq(log_debug_errno(-EPERM, "hidden %s", "text"), -EPERM);
}

START_TEST(test_console)
{
        _cleanup_free_ char *out = capture_stderr(emit_console);

        ck_assert_str_eq(out,
                         "test: open x.yaml: No such file or directory\n"
                         "test: denied: Permission denied\n"
                         "test: no errno\n");
}
END_TEST

static void emit_prefixed(void)
{
        log_set_target(LOG_TARGET_KMSG_STDERR);
        log_set_max_level(LOG_DEBUG);
        log_notice("hello %d", 42);
        log_debug("dbg");
}

START_TEST(test_priority_prefix)
{
        _cleanup_free_ char *out = capture_stderr(emit_prefixed);

        ck_assert_str_eq(out, "<5>hello 42\n<7>dbg\n");
}
END_TEST

static void emit_env(void)
{
        setenv("CLUSTER_LOG_TARGET", "stderr", 1);
        setenv("CLUSTER_LOG_LEVEL", "warning", 1);
        log_open();
        log_info("not shown");
        log_warning("shown");
}

START_TEST(test_environment)
{
        _cleanup_free_ char *out = capture_stderr(emit_env);

        ck_assert_str_eq(out, "<4>shown\n");
}
END_TEST

START_TEST(test_proto_copy)
{
        Cluster__TaskSpec spec = CLUSTER__TASK_SPEC__INIT, *copy;
        char *argv[] = {"sh", "-c", "echo hi"};

        spec.task_id = 7;
        spec.argv = argv;
        spec.n_argv = 3;
        spec.memory_bytes = 1ULL << 40;
        copy = PROTO_COPY(&spec);
        ck_assert_ptr_nonnull(copy);
        ck_assert_uint_eq(copy->task_id, 7);
        ck_assert_uint_eq(copy->n_argv, 3);
        ck_assert_str_eq(copy->argv[2], "echo hi");
        ck_assert_ptr_ne(copy->argv[2], argv[2]);
        ck_assert_uint_eq(copy->memory_bytes, 1ULL << 40);
        cluster__task_spec__free_unpacked(copy, NULL);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("log");
        TCase *tc = tcase_create("log");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_parse_level);
        tcase_add_test(tc, test_console);
        tcase_add_test(tc, test_priority_prefix);
        tcase_add_test(tc, test_environment);
        tcase_add_test(tc, test_proto_copy);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
