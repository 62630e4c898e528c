/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <check.h>
#include <string.h>

#include "basic/alloc-util.h"
#include "basic/buf.h"
#include "basic/hashmap.h"
#include "basic/prioq.h"
#include "basic/string-util.h"
#include "basic/strv.h"

START_TEST(test_parse_size)
{
        uint64_t v;

        ck_assert_int_eq(parse_size("512", &v), 0);
        ck_assert_uint_eq(v, 512);
        ck_assert_int_eq(parse_size("4K", &v), 0);
        ck_assert_uint_eq(v, 4096);
        ck_assert_int_eq(parse_size("1.5G", &v), 0);
        ck_assert_uint_eq(v, 1536ULL << 20);
        ck_assert_int_eq(parse_size("2GiB", &v), 0);
        ck_assert_uint_eq(v, 2ULL << 30);
        ck_assert_int_eq(parse_size("12X", &v), -EINVAL);
        ck_assert_int_eq(parse_size("-1", &v), -EINVAL);
        ck_assert_int_eq(parse_size("", &v), -EINVAL);
        ck_assert_int_eq(parse_size("99999999999T", &v), -ERANGE);
}
END_TEST

START_TEST(test_parse_duration)
{
        uint64_t v;

        ck_assert_int_eq(parse_duration("30", &v), 0);
        ck_assert_uint_eq(v, 30000000);
        ck_assert_int_eq(parse_duration("500ms", &v), 0);
        ck_assert_uint_eq(v, 500000);
        ck_assert_int_eq(parse_duration("1.5s", &v), 0);
        ck_assert_uint_eq(v, 1500000);
        ck_assert_int_eq(parse_duration("2m", &v), 0);
        ck_assert_uint_eq(v, 120000000);
        ck_assert_int_eq(parse_duration("soon", &v), -EINVAL);
}
END_TEST

START_TEST(test_hex_and_consttime)
{
        uint8_t b[4] = {0xde, 0xad, 0xbe, 0xef}, c[4];
        _cleanup_free_ char *h = hexmem(b, 4);

        ck_assert_str_eq(h, "deadbeef");
        ck_assert_int_eq(unhexmem(h, c, 4), 0);
        ck_assert(memcmp(b, c, 4) == 0);
        ck_assert_int_eq(unhexmem("deadbee", c, 4), -EINVAL);
        ck_assert_int_eq(unhexmem("deadbeeg", c, 4), -EINVAL);
        ck_assert(memeq_consttime(b, c, 4));
        c[3] ^= 1;
        ck_assert(!memeq_consttime(b, c, 4));
}
END_TEST

START_TEST(test_names)
{
        ck_assert(name_is_valid("node-1.lan"));
        ck_assert(!name_is_valid(""));
        ck_assert(!name_is_valid("-x"));
        ck_assert(!name_is_valid("a b"));
        ck_assert(!name_is_valid("a/b"));
}
END_TEST

START_TEST(test_strv)
{
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ char *j = NULL;

        ck_assert_int_eq(strv_extend(&l, "a"), 0);
        ck_assert_int_eq(strv_extend(&l, "bc"), 0);
        ck_assert_uint_eq(strv_length(l), 2);
        ck_assert(strv_contains(l, "bc"));
        j = strv_join(l, ", ");
        ck_assert_str_eq(j, "a, bc");
}
END_TEST

START_TEST(test_buf)
{
        Buf b = {};

        for (int i = 0; i < 1000; i++)
                ck_assert_int_eq(buf_append(&b, "0123456789", 10), 0);
        ck_assert_uint_eq(buf_size(&b), 10000);
        buf_consume(&b, 9995);
        ck_assert_uint_eq(buf_size(&b), 5);
        ck_assert(memcmp(buf_head(&b), "56789", 5) == 0);
        ck_assert_int_eq(buf_append(&b, "x", 1), 0);
        ck_assert(memcmp(buf_head(&b), "56789x", 6) == 0);
        buf_done(&b);
}
END_TEST

START_TEST(test_hashmap)
{
        _cleanup_(hashmap_freep) Hashmap *h = hashmap_new(HASHMAP_U64);
        _cleanup_(hashmap_freep) Hashmap *s = hashmap_new(HASHMAP_STRING);
        void *v;
        size_t n = 0;

        for (uint64_t i = 1; i <= 5000; i++)
                ck_assert_int_eq(hashmap_put_u64(h, i, (void *)(uintptr_t)i), 0);
        ck_assert_int_eq(hashmap_put_u64(h, 7, NULL), -EEXIST);
        ck_assert_uint_eq(hashmap_size(h), 5000);
        for (uint64_t i = 1; i <= 5000; i += 2)
                ck_assert_ptr_eq(hashmap_remove_u64(h, i), (void *)(uintptr_t)i);
        for (uint64_t i = 1; i <= 5000; i++)
                ck_assert_ptr_eq(hashmap_get_u64(h, i), i % 2 ? NULL : (void *)(uintptr_t)i);
        HASHMAP_FOREACH (v, h)
                n++;
        ck_assert_uint_eq(n, 2500);

        ck_assert_int_eq(hashmap_put(s, "alpha", (void *)1), 0);
        ck_assert_int_eq(hashmap_put(s, "beta", (void *)2), 0);
        ck_assert_ptr_eq(hashmap_get(s, "beta"), (void *)2);
        ck_assert_ptr_eq(hashmap_remove(s, "alpha"), (void *)1);
        ck_assert_ptr_null(hashmap_get(s, "alpha"));
}
END_TEST

typedef struct T {
        int prio;
        unsigned idx;
} T;

static int t_cmp(const void *a, const void *b)
{
        const T *x = a, *y = b;
        return (x->prio > y->prio) - (x->prio < y->prio);
}

START_TEST(test_prioq)
{
        _cleanup_(prioq_freep) Prioq *q = prioq_new(t_cmp);
        T t[100];
        int last = -1000;

        for (int i = 0; i < 100; i++) {
                t[i].prio = (i * 37) % 100;
                ck_assert_int_eq(prioq_put(q, &t[i], &t[i].idx), 0);
        }
        prioq_remove(q, &t[5], &t[5].idx);
        t[6].prio = -5;
        prioq_reshuffle(q, &t[6], &t[6].idx);
        ck_assert_ptr_eq(prioq_peek(q), &t[6]);
        while (prioq_size(q) > 0) {
                T *x = prioq_peek(q);
                ck_assert_int_ge(x->prio, last);
                last = x->prio;
                prioq_remove(q, x, &x->idx);
                ck_assert_uint_eq(x->idx, PRIOQ_IDX_NULL);
        }
}
END_TEST

int main(void)
{
        Suite *s = suite_create("basic");
        TCase *tc = tcase_create("basic");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_parse_size);
        tcase_add_test(tc, test_parse_duration);
        tcase_add_test(tc, test_hex_and_consttime);
        tcase_add_test(tc, test_names);
        tcase_add_test(tc, test_strv);
        tcase_add_test(tc, test_buf);
        tcase_add_test(tc, test_hashmap);
        tcase_add_test(tc, test_prioq);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
