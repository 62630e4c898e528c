/* SPDX-License-Identifier: GPL-2.0-or-later */
/* GGUF reader: a valid file is read back exactly; every truncation and a set of hostile
 * headers are refused with a message. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/model.h"
#include "test-engine-gguf-writer.h"

static const TestModelShape shape = {"llama", 32, 1, 2, 1, 64, 8, 64, true};

START_TEST(test_valid)
{
        size_t len;
        uint8_t *buf = test_model_gguf(&shape, 1, &len);
        GgufFile *f = NULL;
        char *error = NULL;
        const char *s;
        size_t sl;
        uint32_t u;
        float fl;

        ck_assert_int_eq(gguf_parse(buf, len, &f, &error), 0);
        ck_assert_ptr_null(error);
        ck_assert_uint_eq(f->version, 3);
        ck_assert_int_eq(gguf_get_str(f, "general.architecture", &s, &sl), 0);
        ck_assert(sl == 5 && memcmp(s, "llama", 5) == 0);
        ck_assert_int_eq(gguf_get_u32(f, "llama.embedding_length", &u), 0);
        ck_assert_uint_eq(u, 32);
        ck_assert_int_eq(gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &fl), 0);
        ck_assert_float_eq_tol(fl, 1e-5f, 1e-9f);
        /* type checks */
        ck_assert_int_eq(gguf_get_u32(f, "general.architecture", &u), -EBADMSG);
        ck_assert_int_eq(gguf_get_u32(f, "no.such.key", &u), -ENOENT);
        ck_assert_int_eq(gguf_get_str(f, "llama.block_count", &s, &sl), -EBADMSG);
        const char **strs;
        size_t *lens, n;
        ck_assert_int_eq(gguf_get_str_array(f, "tokenizer.ggml.tokens", &strs, &lens, &n), 0);
        ck_assert_uint_eq(n, 8);
        ck_assert(lens[1] == 3 && memcmp(strs[1], "<s>", 3) == 0);
        free(strs);
        free(lens);

        const GgufTensor *t = gguf_find_tensor(f, "blk.0.ffn_down.weight");
        ck_assert_ptr_nonnull(t);
        ck_assert_uint_eq(t->ne[0], 64);
        ck_assert_uint_eq(t->ne[1], 32);
        ck_assert_uint_eq(t->size, 64 * 32 * 4);
        ck_assert((const uint8_t *)t->data + t->size <= buf + len);
        ck_assert_ptr_null(gguf_find_tensor(f, "blk.0.nothing"));
        gguf_free(f);

        /* and from a file, through the model loader */
        char path[] = "/tmp/test-engine-gguf-XXXXXX";
        int fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
        close(fd);
        Model *m = NULL;
        ck_assert_int_eq(model_load(path, &m, &error), 0);
        ck_assert_uint_eq(m->hp.n_head_kv, 1);
        ck_assert_uint_eq(m->hp.head_dim, 16);
        ck_assert_uint_eq(m->hp.n_vocab, 8);
        ck_assert(m->output.data != m->tok_embd.data);
        model_free(m);
        unlink(path);
        ck_assert_int_lt(gguf_open("/nonexistent/x.gguf", &f, &error), 0);
        ck_assert_ptr_nonnull(error);
        free(error);
        free(buf);
}
END_TEST

START_TEST(test_truncations)
{
        size_t len;
        uint8_t *buf = test_model_gguf(&shape, 2, &len);

        /* Every proper prefix is refused, with an explanation. Sampled densely in the
         * header, sparsely in the data. */
        for (size_t cut = 0; cut < len; cut += cut < 4096 ? 1 : 97) {
                GgufFile *f = NULL;
                char *error = NULL;
                uint8_t *copy = malloc(cut ? cut : 1);
                memcpy(copy, buf, cut);
                int r = gguf_parse(copy, cut, &f, &error);
                ck_assert_msg(r < 0, "prefix of %zu bytes accepted", cut);
                ck_assert_ptr_nonnull(error);
                free(error);
                free(copy);
        }
        free(buf);
}
END_TEST

static int parse_bytes(const void *p, size_t n, char **error)
{
        GgufFile *f = NULL;
        int r = gguf_parse(p, n, &f, error);
        gguf_free(f);
        return r;
}

START_TEST(test_hostile)
{
        uint8_t b[256];
        char *error = NULL;
        uint64_t v;

        memset(b, 0, sizeof(b));
        memcpy(b, "GGML", 4);
        ck_assert_int_eq(parse_bytes(b, 24, &error), -EBADMSG);
        ck_assert(strstr(error, "magic"));
        error = (free(error), NULL);

        memcpy(b, "GGUF", 4);
        b[4] = 1;
        ck_assert_int_eq(parse_bytes(b, 24, &error), -EOPNOTSUPP);
        error = (free(error), NULL);
        b[4] = 3;
        ck_assert_int_eq(parse_bytes(b, 24, NULL), 0);

        v = 1ull << 40; /* tensors */
        memcpy(b + 8, &v, 8);
        ck_assert_int_eq(parse_bytes(b, 24, &error), -E2BIG);
        error = (free(error), NULL);
        v = 0;
        memcpy(b + 8, &v, 8);
        v = 5; /* kv entries claimed, no bytes for them */
        memcpy(b + 16, &v, 8);
        ck_assert_int_eq(parse_bytes(b, 24, &error), -EBADMSG);
        ck_assert(strstr(error, "truncated"));
        error = (free(error), NULL);

        /* one kv: key "k", type 77 */
        v = 1;
        memcpy(b + 16, &v, 8);
        memcpy(b + 24, &v, 8);
        b[32] = 'k';
        uint32_t t = 77;
        memcpy(b + 33, &t, 4);
        ck_assert_int_eq(parse_bytes(b, 37, &error), -EBADMSG);
        ck_assert(strstr(error, "unknown value type"));
        error = (free(error), NULL);
        /* string value with an absurd length */
        t = 8;
        memcpy(b + 33, &t, 4);
        v = 1ull << 62;
        memcpy(b + 37, &v, 8);
        ck_assert_int_eq(parse_bytes(b, 64, &error), -E2BIG);
        error = (free(error), NULL);
        /* key with an absurd length */
        memcpy(b + 24, &v, 8);
        ck_assert_int_eq(parse_bytes(b, 64, &error), -E2BIG);
        free(error);
}
END_TEST

START_TEST(test_model_refusals)
{
        TestModelShape s = shape;
        size_t len;
        char *error = NULL;
        GgufFile *f = NULL;
        Model *m = NULL;

        /* a tensor of the wrong shape */
        s.n_ff = 48;
        uint8_t *buf = test_model_gguf(&s, 3, &len);
        /* patch feed_forward_length back to 64 so the metadata disagrees with tensors */
        uint8_t *p = memmem(buf, len, "llama.feed_forward_length", 25);
        ck_assert_ptr_nonnull(p);
        uint32_t ff = 64;
        memcpy(p + 25 + 4, &ff, 4);
        ck_assert_int_eq(gguf_parse(buf, len, &f, &error), 0);
        ck_assert_int_eq(model_load_gguf(f, &m, &error), -EBADMSG);
        ck_assert(strstr(error, "shape"));
        error = (free(error), NULL);
        gguf_free(f);
        free(buf);

        /* an architecture we do not run, refused by name */
        buf = test_model_gguf(&shape, 3, &len);
        p = memmem(buf, len, "llama", 5);
        memcpy(p, "gemma", 5);
        ck_assert_int_eq(gguf_parse(buf, len, &f, &error), 0);
        ck_assert_int_eq(model_load_gguf(f, &m, &error), -EOPNOTSUPP);
        ck_assert(strstr(error, "'gemma'"));
        free(error);
        gguf_free(f);
        free(buf);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("engine-gguf");
        TCase *tc = tcase_create("engine-gguf");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_valid);
        tcase_add_test(tc, test_truncations);
        tcase_add_test(tc, test_hostile);
        tcase_add_test(tc, test_model_refusals);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
