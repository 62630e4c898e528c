/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The engine end to end on small random models: batching changes nothing in the
 * results, continuous batching matches sequential runs, stop sequences, limits,
 * embeddings. (Agreement with llama.cpp is the engine-ref suite.) */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basic/macro.h"
#include "engine/engine.h"
#include "test-engine-gguf-writer.h"

static char *write_model(const TestModelShape *s, uint32_t seed)
{
        size_t len;
        uint8_t *buf = test_model_gguf(s, seed, &len);
        char *path = strdup("/tmp/test-engine-model-XXXXXX");
        int fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
        close(fd);
        free(buf);
        return path;
}

static EngineModel *load(const TestModelShape *s, uint32_t seed)
{
        char *path = write_model(s, seed), *error = NULL;
        EngineModel *m = NULL;
        int r = engine_model_load(path, &m, &error);
        ck_assert_msg(r == 0, "load: %s", error ?: strerror(-r));
        unlink(path); /* the mapping stays valid */
        free(path);
        return m;
}

static EngineContext *context(EngineModel *m, uint32_t n_ctx, uint32_t n_seq, uint32_t n_batch,
                              uint32_t threads)
{
        EngineContextParams p;
        EngineContext *c = NULL;
        engine_context_params_default(&p);
        p.n_ctx = n_ctx;
        p.n_seq_max = n_seq;
        p.n_batch = n_batch;
        p.n_threads = threads;
        ck_assert_int_eq(engine_context_new(m, &p, &c), 0);
        return c;
}

static const TestModelShape llama = {"llama", 64, 2, 4, 2, 128, 200, 256, true};
static const TestModelShape qwen2 = {"qwen2", 64, 2, 4, 4, 96, 150, 256, true};
/* F16 matrices, wide enough for the vector kernels' full steps and their tails */
static const TestModelShape llama_f16 = {"llama", 128, 2, 4, 2, 200, 300, 256, true, true};

static float max_diff(const float *a, const float *b, size_t n)
{
        float w = 0.0f;
        for (size_t i = 0; i < n; i++)
                w = fmaxf(w, fabsf(a[i] - b[i]));
        return w;
}

/* Prompt in one pass, in pieces, and token by token: same logits. */
static void check_batch_invariance(const TestModelShape *s)
{
        EngineModel *m = load(s, 11);
        EngineContext *a = context(m, 64, 1, 64, 2), *b = context(m, 64, 1, 3, 1);
        const int32_t toks[] = {1, 5, 17, 99, 4, 120, 33, 7, 8, 140};
        size_t n = ELEMENTSOF(toks);
        EngineModelInfo info;
        engine_model_get_info(m, &info);

        ck_assert_int_eq(engine_eval(a, 0, toks, n, true), 0);
        ck_assert_uint_eq(engine_n_logits(a), n);
        for (size_t i = 0; i < n; i++) {
                ck_assert_int_eq(engine_eval(b, 0, &toks[i], 1, false), 0);
                float d = max_diff(engine_get_logits(a, i), engine_get_logits(b, 0), info.n_vocab);
                ck_assert_msg(d < 1e-4f, "%s position %zu differs by %g", s->arch, i, d);
        }
        ck_assert_uint_eq(engine_seq_length(a, 0), n);
        /* logits are finite and not all equal */
        const float *l = engine_get_logits(b, 0);
        float lo = l[0], hi = l[0];
        for (uint32_t v = 0; v < info.n_vocab; v++) {
                ck_assert(isfinite(l[v]));
                lo = fminf(lo, l[v]);
                hi = fmaxf(hi, l[v]);
        }
        ck_assert(hi - lo > 0.1f);
        engine_context_free(a);
        engine_context_free(b);
        engine_model_free(m);
}

START_TEST(test_batch_invariance_llama)
{
        check_batch_invariance(&llama);
}
END_TEST

START_TEST(test_batch_invariance_qwen2)
{
        check_batch_invariance(&qwen2);
}
END_TEST

/* F16 matrices: every batch size of a decoding step (1..8 tokens, the one-pass kernel,
 * and past it the tile kernels) gives the logits of one token at a time. Activations
 * are rounded to F16 before each product, as llama.cpp does, so a different summation
 * order can move a rounding by one F16 step: logits spread over several units then agree
 * to a few thousandths (the reference and AVX2 kernels differ as much), not exactly. */
START_TEST(test_batch_sizes_f16)
{
        EngineModel *m = load(&llama_f16, 5);
        EngineModelInfo info;
        engine_model_get_info(m, &info);
        const int32_t toks[] = {1, 5, 17, 99, 4, 120, 33, 7, 8, 140, 250, 3};
        size_t n = ELEMENTSOF(toks);
        EngineContext *one = context(m, 64, 1, 1, 2);
        float *want = malloc(sizeof(float) * n * info.n_vocab);
        ck_assert_ptr_nonnull(want);
        for (size_t i = 0; i < n; i++) {
                ck_assert_int_eq(engine_eval(one, 0, &toks[i], 1, false), 0);
                memcpy(want + i * info.n_vocab, engine_get_logits(one, 0),
                       sizeof(float) * info.n_vocab);
                float lo = want[i * info.n_vocab], hi = lo;
                for (uint32_t v = 0; v < info.n_vocab; v++) {
                        lo = fminf(lo, want[i * info.n_vocab + v]);
                        hi = fmaxf(hi, want[i * info.n_vocab + v]);
                }
                ck_assert_msg(hi - lo > 2.0f, "logits spread %g", hi - lo);
        }
        for (size_t k = 2; k <= n; k++) {
                EngineContext *c = context(m, 64, 1, (uint32_t)k, 2);
                ck_assert_int_eq(engine_eval(c, 0, toks, k, true), 0);
                for (size_t i = 0; i < k; i++) {
                        float d = max_diff(engine_get_logits(c, i), want + i * info.n_vocab,
                                           info.n_vocab);
                        ck_assert_msg(d < 1e-2f, "batch of %zu, position %zu differs by %g", k, i,
                                      d);
                }
                engine_context_free(c);
        }
        free(want);
        engine_context_free(one);
        engine_model_free(m);
}
END_TEST

/* More threads than CPUs: the kernel preempts them mid-product, the others take over
 * their rows, and the logits are still bit for bit those of one thread (every output
 * row and every attention item is computed the same way by whichever thread runs it). */
START_TEST(test_threads_oversubscribed)
{
        EngineModel *m = load(&llama_f16, 9);
        EngineModelInfo info;
        engine_model_get_info(m, &info);
        const int32_t toks[] = {1, 5, 17, 99, 4, 120, 33, 7, 8, 140, 250, 3, 9, 11};
        EngineContext *a = context(m, 64, 1, 64, 1), *b = context(m, 64, 1, 64, 7);
        for (int round = 0; round < 3; round++) {
                ck_assert_int_eq(engine_eval(a, 0, toks, ELEMENTSOF(toks), true), 0);
                ck_assert_int_eq(engine_eval(b, 0, toks, ELEMENTSOF(toks), true), 0);
                for (size_t i = 0; i < ELEMENTSOF(toks); i++)
                        ck_assert_msg(memcmp(engine_get_logits(a, i), engine_get_logits(b, i),
                                             sizeof(float) * info.n_vocab) == 0,
                                      "round %d position %zu differs", round, i);
                for (size_t i = 0; i < 4; i++) { /* decoding steps of one token */
                        ck_assert_int_eq(engine_eval(a, 0, &toks[i], 1, false), 0);
                        ck_assert_int_eq(engine_eval(b, 0, &toks[i], 1, false), 0);
                        ck_assert(memcmp(engine_get_logits(a, 0), engine_get_logits(b, 0),
                                         sizeof(float) * info.n_vocab) == 0);
                }
                engine_seq_truncate(a, 0, 0);
                engine_seq_truncate(b, 0, 0);
        }
        engine_context_free(a);
        engine_context_free(b);
        engine_model_free(m);
}
END_TEST

/* Two sequences interleaved in one batch give what each gives alone. */
START_TEST(test_multi_sequence)
{
        EngineModel *m = load(&llama, 12);
        EngineContext *c = context(m, 64, 2, 64, 2), *solo = context(m, 64, 1, 64, 2);
        const int32_t p0[] = {1, 10, 20, 30}, p1[] = {1, 50, 60};
        int32_t tok[] = {1, 1, 10, 50, 20, 60, 30};
        int32_t pos[] = {0, 0, 1, 1, 2, 2, 3};
        int32_t seq[] = {0, 1, 0, 1, 0, 1, 0};
        bool want[] = {false, false, false, false, false, true, true};
        EngineModelInfo info;
        engine_model_get_info(m, &info);

        EngineBatch b = {7, tok, pos, seq, want};
        ck_assert_int_eq(engine_decode(c, &b), 0);
        ck_assert_uint_eq(engine_n_logits(c), 2);
        ck_assert_int_eq(engine_eval(solo, 0, p1, 3, false), 0);
        ck_assert(max_diff(engine_get_logits(c, 0), engine_get_logits(solo, 0), info.n_vocab) <
                  1e-4f);
        ck_assert_int_eq(engine_seq_truncate(solo, 0, 0), 0);
        ck_assert_int_eq(engine_eval(solo, 0, p0, 4, false), 0);
        ck_assert(max_diff(engine_get_logits(c, 1), engine_get_logits(solo, 0), info.n_vocab) <
                  1e-4f);

        /* positions must continue the sequence */
        int32_t bad_pos[] = {9};
        EngineBatch bad = {1, tok, bad_pos, seq, NULL};
        ck_assert_int_eq(engine_decode(c, &bad), -EINVAL);
        int32_t bad_tok[] = {100000}, ok_pos[] = {4};
        EngineBatch bad2 = {1, bad_tok, ok_pos, seq, NULL};
        ck_assert_int_eq(engine_decode(c, &bad2), -EINVAL);
        ck_assert_uint_eq(engine_seq_length(c, 0), 4);
        engine_context_free(c);
        engine_context_free(solo);
        engine_model_free(m);
}
END_TEST

START_TEST(test_context_full)
{
        EngineModel *m = load(&llama, 13);
        EngineContext *c = context(m, 16, 1, 8, 1);
        int32_t toks[17];
        for (int i = 0; i < 17; i++)
                toks[i] = 3 + i;
        ck_assert_int_eq(engine_eval(c, 0, toks, 17, false), -ENOSPC);
        ck_assert_uint_eq(engine_seq_length(c, 0), 0);
        ck_assert_int_eq(engine_eval(c, 0, toks, 16, false), 0);
        ck_assert_int_eq(engine_eval(c, 0, toks, 1, false), -ENOSPC);
        ck_assert_uint_eq(engine_seq_length(c, 0), 16);
        engine_context_free(c);
        engine_model_free(m);
}
END_TEST

static void greedy(EngineGenerateRequest *r, const int32_t *prompt, size_t n, int32_t num)
{
        memset(r, 0, sizeof(*r));
        r->prompt_tokens = prompt;
        r->n_prompt_tokens = n;
        r->num_predict = num;
        engine_sampling_default(&r->sampling);
        r->sampling.temperature = 0.0f;
}

/* Concurrent requests (continuous batching, prompts of different lengths, a batch size
 * that splits prompts) produce exactly what each produces alone. */
START_TEST(test_generate_batched)
{
        EngineModel *m = load(&llama, 14);
        EngineContext *c = context(m, 128, 4, 5, 2);
        const int32_t p[3][6] = {{1, 40, 41, 42, 43, 44}, {1, 90}, {1, 7, 8, 9}};
        const size_t pn[3] = {6, 2, 4};
        EngineGenerateRequest together[3], alone;

        for (int i = 0; i < 3; i++)
                greedy(&together[i], p[i], pn[i], 12);
        ck_assert_int_eq(engine_generate(c, together, 3), 0);
        for (int i = 0; i < 3; i++) {
                ck_assert_int_eq(together[i].error, 0);
                greedy(&alone, p[i], pn[i], 12);
                ck_assert_int_eq(engine_generate(c, &alone, 1), 0);
                ck_assert_uint_eq(alone.n_tokens, together[i].n_tokens);
                ck_assert(memcmp(alone.tokens, together[i].tokens, alone.n_tokens * 4) == 0);
                ck_assert_str_eq(alone.text, together[i].text);
                if (alone.stop_reason == ENGINE_STOP_LENGTH)
                        ck_assert_uint_eq(alone.n_tokens, 12);
                engine_generate_request_done(&alone);
                engine_generate_request_done(&together[i]);
        }
        engine_context_free(c);
        engine_model_free(m);
}
END_TEST

typedef struct Collect {
        char buf[4096];
        size_t len;
} Collect;

static int collect(void *userdata, const char *text, size_t len)
{
        Collect *c = userdata;
        ck_assert_uint_lt(c->len + len, sizeof(c->buf));
        memcpy(c->buf + c->len, text, len);
        c->len += len;
        return 0;
}

START_TEST(test_stop_sequences)
{
        EngineModel *m = load(&llama, 15);
        EngineContext *c = context(m, 128, 1, 32, 1);
        const int32_t prompt[] = {1, 60, 61};
        EngineGenerateRequest r;
        Collect col = {};

        greedy(&r, prompt, 3, 16);
        r.callback = collect;
        r.userdata = &col;
        ck_assert_int_eq(engine_generate(c, &r, 1), 0);
        ck_assert_uint_eq(col.len, r.text_len);
        ck_assert(memcmp(col.buf, r.text, r.text_len) == 0);
        if (r.stop_reason != ENGINE_STOP_LENGTH || r.text_len < 8) {
                engine_generate_request_done(&r);
                engine_context_free(c);
                engine_model_free(m);
                return; /* the random model ended early: nothing more to check */
        }
        /* stop at a string that straddles two tokens' pieces (they are 2 bytes each) */
        char stop[4] = {r.text[5], r.text[6], r.text[7], 0};
        size_t first = (size_t)(strstr(r.text, stop) - r.text);
        const char *stops[] = {"never-there", stop};
        EngineGenerateRequest r2;
        Collect col2 = {};
        greedy(&r2, prompt, 3, 16);
        r2.stop = stops;
        r2.n_stop = 2;
        r2.callback = collect;
        r2.userdata = &col2;
        ck_assert_int_eq(engine_generate(c, &r2, 1), 0);
        ck_assert_int_eq(r2.stop_reason, ENGINE_STOP_SEQUENCE);
        ck_assert_uint_eq(r2.text_len, first);
        ck_assert(memcmp(r2.text, r.text, first) == 0);
        ck_assert_uint_eq(col2.len, first); /* the held-back prefix never reached the callback */
        engine_generate_request_done(&r);
        engine_generate_request_done(&r2);
        engine_context_free(c);
        engine_model_free(m);
}
END_TEST

START_TEST(test_embeddings)
{
        EngineModel *m = load(&qwen2, 16);
        EngineContext *c = context(m, 64, 1, 4, 2);
        const int32_t a[] = {1, 20, 21, 22, 23, 24}, b[] = {1, 70, 71};
        float *ea, *ea2, *eb;
        size_t dim;

        ck_assert_int_eq(engine_embed_tokens(c, a, 6, &ea, &dim), 0);
        ck_assert_uint_eq(dim, 64);
        double norm = 0.0;
        for (size_t i = 0; i < dim; i++)
                norm += (double)ea[i] * ea[i];
        ck_assert(fabs(norm - 1.0) < 1e-5);
        ck_assert_int_eq(engine_embed_tokens(c, a, 6, &ea2, &dim), 0);
        ck_assert(max_diff(ea, ea2, dim) < 1e-6f);
        ck_assert_int_eq(engine_embed_tokens(c, b, 3, &eb, &dim), 0);
        ck_assert(max_diff(ea, eb, dim) > 1e-3f);
        ck_assert_uint_eq(engine_seq_length(c, 0), 0);
        free(ea);
        free(ea2);
        free(eb);
        engine_context_free(c);
        engine_model_free(m);
}
END_TEST

START_TEST(test_info_and_f32_cache)
{
        EngineModel *m = load(&llama, 17);
        EngineModelInfo info;
        EngineTypeCount mix[4];
        engine_model_get_info(m, &info);
        ck_assert_str_eq(info.arch, "llama");
        ck_assert_uint_eq(info.n_layer, 2);
        ck_assert_uint_eq(info.n_head_kv, 2);
        ck_assert_str_eq(info.file_type, "F32");
        ck_assert_uint_eq(engine_model_type_mix(m, mix, 4), 1);
        ck_assert_uint_eq(mix[0].n_tensors, 2 + 2 * 9 + 1);
        /* what a decoded token reads: per layer q, k, v, o, gate, up, down; the output
         * matrix; one embedding row; the norms (F32 throughout) */
        uint64_t layer = 64 * 64 + 64 * 32 + 64 * 32 + 64 * 64 + 3 * 64 * 128;
        ck_assert_uint_eq(info.decode_bytes, 4 * (2 * layer + 64 * 200 + 64 + 64 * (1 + 2 * 2)));

        EngineContextParams p;
        EngineContext *c16, *c32;
        engine_context_params_default(&p);
        p.n_ctx = 32;
        ck_assert_int_eq(engine_context_new(m, &p, &c16), 0);
        p.kv_f32 = true;
        ck_assert_int_eq(engine_context_new(m, &p, &c32), 0);
        const int32_t toks[] = {1, 2, 3, 4, 5, 6};
        ck_assert_int_eq(engine_eval(c16, 0, toks, 6, false), 0);
        ck_assert_int_eq(engine_eval(c32, 0, toks, 6, false), 0);
        /* F16 rounding of the cache moves logits a little, not a lot */
        float d = max_diff(engine_get_logits(c16, 0), engine_get_logits(c32, 0), info.n_vocab);
        ck_assert_msg(d < 0.05f, "F16 vs F32 cache: %g", d);
        engine_context_free(c16);
        engine_context_free(c32);
        engine_model_free(m);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("engine-model");
        TCase *tc = tcase_create("engine-model");
        SRunner *sr;
        int failed;

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_batch_invariance_llama);
        tcase_add_test(tc, test_batch_invariance_qwen2);
        tcase_add_test(tc, test_batch_sizes_f16);
        tcase_add_test(tc, test_threads_oversubscribed);
        tcase_add_test(tc, test_multi_sequence);
        tcase_add_test(tc, test_context_full);
        tcase_add_test(tc, test_generate_batched);
        tcase_add_test(tc, test_stop_sequences);
        tcase_add_test(tc, test_embeddings);
        tcase_add_test(tc, test_info_and_f32_cache);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
