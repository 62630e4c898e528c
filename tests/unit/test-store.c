/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "basic/alloc-util.h"
#include "basic/fd-util.h"
#include "basic/string-util.h"
#include "daemon/scheduler-store.h"

static char dir[] = "/tmp/test-store-XXXXXX";
static char *db;

static void setup(void)
{
        ck_assert_ptr_nonnull(mkdtemp(dir));
        db = strprintf("%s/scheduler.db", dir);
}

static void teardown(void)
{
        rm_rf(dir);
        free(db);
        strcpy(dir, "/tmp/test-store-XXXXXX");
}

START_TEST(test_tokens)
{
        _cleanup_(store_closep) Store *s = NULL;
        _cleanup_free_ char *tok = NULL;
        StoreToken info, *l = NULL;
        size_t n = 0;

        ck_assert_int_eq(store_open(db, &s), 0);
        ck_assert_int_eq(store_token_create(s, "lab", 0, &tok, &info), 0);
        ck_assert_ptr_nonnull(startswith(tok, "cat1-"));
        ck_assert_uint_eq(strlen(tok), 5 + 8 + 1 + 32);
        ck_assert_str_eq(info.description, "lab");
        ck_assert_int_eq(store_token_check(s, tok), 0);
        ck_assert_int_eq(store_token_check(s, tok), 0);

        /* Wrong in every part: the same answer. */
        char bad[64];
        strcpy(bad, tok);
        bad[strlen(bad) - 1] ^= 1;
        ck_assert_int_eq(store_token_check(s, bad), -EACCES);
        ck_assert_int_eq(store_token_check(s, ""), -EACCES);
        ck_assert_int_eq(store_token_check(s, NULL), -EACCES);
        ck_assert_int_eq(store_token_check(s, "cat1-"), -EACCES);
        ck_assert_int_eq(store_token_check(s, "cat1-zzzzzzzz-zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"),
                         -EACCES);

        ck_assert_int_eq(store_token_list(s, &l, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_uint_eq(l[0].uses, 2);
        ck_assert(!l[0].revoked);
        ck_assert_str_eq(l[0].id, info.id);
        store_token_list_free(l, n);

        ck_assert_int_eq(store_token_revoke(s, info.id), 0);
        ck_assert_int_eq(store_token_check(s, tok), -EACCES);
        ck_assert_int_eq(store_token_revoke(s, "00000000"), -ENOENT);
        free(info.description);
}
END_TEST

START_TEST(test_token_expiry_and_persistence)
{
        _cleanup_free_ char *tok = NULL, *tok2 = NULL;
        StoreToken info;
        Store *s = NULL;

        ck_assert_int_eq(store_open(db, &s), 0);
        ck_assert_int_eq(store_token_create(s, NULL, 1, &tok, &info), 0); /* 1 us TTL */
        free(info.description);
        ck_assert_int_eq(store_token_create(s, "", 3600 * USEC_PER_SEC, &tok2, &info), 0);
        free(info.description);
        usleep(1000);
        ck_assert_int_eq(store_token_check(s, tok), -EACCES);
        s = store_close(s);

        /* Survives a restart; the database file is private. */
        struct stat st;
        ck_assert_int_eq(stat(db, &st), 0);
        ck_assert_int_eq(store_open(db, &s), 0);
        ck_assert_int_eq(store_token_check(s, tok2), 0);
        store_close(s);
}
END_TEST

START_TEST(test_agents)
{
        _cleanup_(store_closep) Store *s = NULL;
        const char *fp1 = "aa11", *fp2 = "bb22";

        ck_assert_int_eq(store_open(db, &s), 0);
        ck_assert_int_eq(store_agent_check(s, "node1", fp1), 0);
        ck_assert_int_eq(store_agent_admit(s, "node1", fp1, "token"), 0);
        ck_assert_int_eq(store_agent_check(s, "node1", fp1), 1);
        ck_assert_int_eq(store_agent_check(s, "node1", fp2), -EEXIST);
        /* Re-admission (a new key with a fresh token) replaces the old key. */
        ck_assert_int_eq(store_agent_admit(s, "node1", fp2, "token"), 0);
        ck_assert_int_eq(store_agent_check(s, "node1", fp2), 1);
        ck_assert_int_eq(store_agent_check(s, "node1", fp1), -EEXIST);
}
END_TEST

START_TEST(test_unwritable)
{
        Store *s = NULL;

        ck_assert_int_lt(store_open("/proc/version/nope.db", &s), 0);
        ck_assert_ptr_null(s);
}
END_TEST

int main(void)
{
        Suite *su = suite_create("store");
        TCase *tc = tcase_create("store");
        SRunner *sr;
        int failed;

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_tokens);
        tcase_add_test(tc, test_token_expiry_and_persistence);
        tcase_add_test(tc, test_agents);
        tcase_add_test(tc, test_unwritable);
        suite_add_tcase(su, tc);
        sr = srunner_create(su);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
