/* SPDX-License-Identifier: GPL-2.0-or-later */
/* engine-tool: a test and benchmark driver for libengine (not installed).
 *
 *   engine-tool run ARGS...            = cluster-ai model run
 *   engine-tool info FILE              = cluster-ai model info
 *   engine-tool logits FILE TOKEN...   JSON: logits of every prompt position
 *   engine-tool greedy FILE N TOKEN... JSON: N greedy tokens after the prompt (EOG ignored)
 *   engine-tool tokenize FILE TEXT     JSON: token ids (add_special, parse_special)
 *   engine-tool bench FILE [-p N] [-n N] [-t N] [-s SEQS] [-r REPS]
 *   engine-tool gen-tensor TYPE NE0 NE1 SEED SCALE OUT   deterministic random weights
 *   engine-tool membw [-t N]           read bandwidth of N threads over 1 GiB (GB/s)
 *
 * Options for logits/greedy/tokenize: --threads N, --kv-f32, --scalar (reference kernels). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "basic/alloc-util.h"
#include "engine/engine.h"
#include "engine/ggml-types.h"
#include "engine/threadpool.h"

static uint32_t opt_threads;
static bool opt_kv_f32;

static int parse_common(int argc, char **argv)
{
        static const struct option options[] = {{"threads", required_argument, NULL, 't'},
                                                {"kv-f32", no_argument, NULL, 'k'},
                                                {"scalar", no_argument, NULL, 's'},
                                                {}};
        int opt;
        optind = 0;
        while ((opt = getopt_long(argc, argv, "+t:", options, NULL)) >= 0) {
                switch (opt) {
                case 't':
                        opt_threads = (uint32_t)atoi(optarg);
                        break;
                case 'k':
                        opt_kv_f32 = true;
                        break;
                case 's':
                        setenv("ENGINE_FORCE_SCALAR", "1", 1);
                        break;
                default:
                        return -EINVAL;
                }
        }
        return optind;
}

static int open_ctx(const char *path, uint32_t n_ctx, uint32_t n_seq, EngineModel **ret_m,
                    EngineContext **ret_c)
{
        EngineContextParams cp;
        char *error = NULL;
        int r;

        r = engine_model_load(path, ret_m, &error);
        if (r < 0) {
                fprintf(stderr, "Failed to load %s: %s\n", path, error ?: strerror(-r));
                free(error);
                return r;
        }
        engine_context_params_default(&cp);
        cp.n_threads = opt_threads;
        cp.kv_f32 = opt_kv_f32;
        cp.n_ctx = n_ctx;
        cp.n_seq_max = n_seq;
        r = engine_context_new(*ret_m, &cp, ret_c);
        if (r < 0) {
                fprintf(stderr, "Failed to create a context: %s\n", strerror(-r));
                *ret_m = engine_model_free(*ret_m);
        }
        return r;
}

static int parse_tokens(char **argv, int n, int32_t **ret)
{
        int32_t *t = new (int32_t, (size_t)n);
        if (!t)
                return -ENOMEM;
        for (int i = 0; i < n; i++)
                t[i] = (int32_t)strtol(argv[i], NULL, 10);
        *ret = t;
        return 0;
}

static int cmd_logits(int argc, char **argv)
{
        EngineModel *m = NULL;
        EngineContext *c = NULL;
        _cleanup_free_ int32_t *toks = NULL;
        int i = parse_common(argc, argv);
        if (i < 0 || argc - i < 2)
                return 2;
        int n = argc - i - 1;
        if (parse_tokens(argv + i + 1, n, &toks) < 0 || open_ctx(argv[i], 0, 1, &m, &c) < 0)
                return 1;
        int r = engine_eval(c, 0, toks, (size_t)n, true);
        if (r < 0) {
                fprintf(stderr, "Evaluation failed: %s\n", strerror(-r));
        } else {
                EngineModelInfo info;
                engine_model_get_info(m, &info);
                printf("{\"n_vocab\":%u,\"logits\":[", info.n_vocab);
                for (int t = 0; t < n; t++) {
                        const float *l = engine_get_logits(c, (size_t)t);
                        printf("%s[", t ? "," : "");
                        for (uint32_t v = 0; v < info.n_vocab; v++)
                                printf("%s%.6g", v ? "," : "", l[v]);
                        printf("]");
                }
                printf("]}\n");
        }
        engine_context_free(c);
        engine_model_free(m);
        return r < 0;
}

static int32_t argmax(const float *l, size_t n)
{
        size_t best = 0;
        for (size_t i = 1; i < n; i++)
                if (l[i] > l[best])
                        best = i;
        return (int32_t)best;
}

static int cmd_greedy(int argc, char **argv)
{
        EngineModel *m = NULL;
        EngineContext *c = NULL;
        _cleanup_free_ int32_t *toks = NULL;
        int i = parse_common(argc, argv);
        if (i < 0 || argc - i < 3)
                return 2;
        int n_gen = atoi(argv[i + 1]);
        int n = argc - i - 2;
        if (parse_tokens(argv + i + 2, n, &toks) < 0 || open_ctx(argv[i], 0, 1, &m, &c) < 0)
                return 1;
        EngineModelInfo info;
        engine_model_get_info(m, &info);
        int r = engine_eval(c, 0, toks, (size_t)n, false);
        printf("{\"tokens\":[");
        for (int g = 0; r >= 0 && g < n_gen; g++) {
                const float *l = engine_get_logits(c, 0);
                int32_t t = argmax(l, info.n_vocab);
                /* top-2 gap, for the comparison's tolerance */
                float best = l[t], second = -INFINITY;
                for (uint32_t v = 0; v < info.n_vocab; v++)
                        if ((int32_t)v != t && l[v] > second)
                                second = l[v];
                printf("%s[%d,%.6g]", g ? "," : "", t, best - second);
                r = engine_eval(c, 0, &t, 1, false);
        }
        printf("]}\n");
        if (r < 0)
                fprintf(stderr, "Evaluation failed: %s\n", strerror(-r));
        engine_context_free(c);
        engine_model_free(m);
        return r < 0;
}

static int cmd_tokenize(int argc, char **argv)
{
        EngineModel *m = NULL;
        char *error = NULL;
        int32_t *ids = NULL;
        size_t n = 0;
        int i = parse_common(argc, argv);
        if (i < 0 || argc - i != 2)
                return 2;
        int r = engine_model_load(argv[i], &m, &error);
        if (r < 0) {
                fprintf(stderr, "Failed to load %s: %s\n", argv[i], error ?: strerror(-r));
                free(error);
                return 1;
        }
        r = engine_tokenize(m, argv[i + 1], strlen(argv[i + 1]), true, true, &ids, &n);
        if (r < 0)
                fprintf(stderr, "Tokenization failed: %s\n", strerror(-r));
        else {
                printf("{\"tokens\":[");
                for (size_t k = 0; k < n; k++)
                        printf("%s%d", k ? "," : "", ids[k]);
                printf("]}\n");
        }
        free(ids);
        engine_model_free(m);
        return r < 0;
}

static double now_sec(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmd_bench(int argc, char **argv)
{
        int pp = 128, tg = 64, seqs = 1, reps = 3, opt;
        static const struct option options[] = {
                {"threads", required_argument, NULL, 't'}, {"kv-f32", no_argument, NULL, 'k'}, {}};
        optind = 0;
        while ((opt = getopt_long(argc, argv, "+p:n:t:s:r:", options, NULL)) >= 0) {
                switch (opt) {
                case 'p':
                        pp = atoi(optarg);
                        break;
                case 'n':
                        tg = atoi(optarg);
                        break;
                case 't':
                        opt_threads = (uint32_t)atoi(optarg);
                        break;
                case 's':
                        seqs = atoi(optarg);
                        break;
                case 'r':
                        reps = atoi(optarg);
                        break;
                case 'k':
                        opt_kv_f32 = true;
                        break;
                default:
                        return 2;
                }
        }
        if (argc - optind != 1 || seqs < 1 || seqs > 64 || reps < 1)
                return 2;
        EngineModel *m = NULL;
        EngineContext *c = NULL;
        if (open_ctx(argv[optind], (uint32_t)MAX(pp + tg + 8, 512), (uint32_t)seqs, &m, &c) < 0)
                return 1;
        EngineModelInfo info;
        engine_model_get_info(m, &info);
        _cleanup_free_ int32_t *toks = new (int32_t, (size_t)MAX(pp, 1));
        for (int i = 0; i < pp; i++)
                toks[i] = (int32_t)((i * 7919u + 13) % info.n_vocab);
        printf("model %s type %s threads %u kernels %s\n", argv[optind], info.file_type,
               engine_context_n_threads(c), info.kernels);
        printf("decode reads %.1f MB per token\n", info.decode_bytes / 1e6);

        int r = 0;
        /* warm-up: page the weights in */
        engine_eval(c, 0, toks, 1, false);
        engine_seq_truncate(c, 0, 0);
        if (pp > 0) {
                double best = 0;
                for (int k = 0; k < reps && r >= 0; k++) {
                        engine_seq_truncate(c, 0, 0);
                        double t0 = now_sec();
                        r = engine_eval(c, 0, toks, (size_t)pp, false);
                        double dt = now_sec() - t0;
                        best = MAX(best, pp / dt);
                }
                printf("pp%d: %.2f tok/s\n", pp, best);
        }
        if (tg > 0 && r >= 0) {
                _cleanup_free_ int32_t *bt = new (int32_t, (size_t)seqs);
                _cleanup_free_ int32_t *bp = new (int32_t, (size_t)seqs);
                _cleanup_free_ int32_t *bs = new (int32_t, (size_t)seqs);
                _cleanup_free_ bool *bl = new (bool, (size_t)seqs);
                double best = 0;
                for (int k = 0; k < reps && r >= 0; k++) {
                        for (int s = 0; s < seqs; s++)
                                engine_seq_truncate(c, s, 0);
                        double t0 = now_sec();
                        for (int g = 0; g < tg && r >= 0; g++) {
                                for (int s = 0; s < seqs; s++) {
                                        bt[s] = (int32_t)((g * 31 + s * 17 + 1) % info.n_vocab);
                                        bp[s] = g;
                                        bs[s] = s;
                                        bl[s] = true;
                                }
                                EngineBatch b = {(size_t)seqs, bt, bp, bs, bl};
                                r = engine_decode(c, &b);
                        }
                        double dt = now_sec() - t0;
                        best = MAX(best, (double)tg * seqs / dt);
                }
                printf("tg%d x%d: %.2f tok/s\n", tg, seqs, best);
        }
        if (r < 0)
                fprintf(stderr, "Evaluation failed: %s\n", strerror(-r));
        engine_context_free(c);
        engine_model_free(m);
        return r < 0;
}

static uint64_t splitmix64(uint64_t *s)
{
        uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

/* Deterministic pseudo-random weights: the sum of two uniforms (a triangle
 * distribution) scaled to [-scale, scale], quantized to TYPE, written raw. */
static int cmd_gen_tensor(int argc, char **argv)
{
        if (argc != 7)
                return 2;
        const char *tname = argv[1];
        size_t ne0 = strtoull(argv[2], NULL, 10), ne1 = strtoull(argv[3], NULL, 10);
        uint64_t seed = strtoull(argv[4], NULL, 10);
        float scale = strtof(argv[5], NULL);
        int type = -1;
        for (uint32_t t = 0; t < GGML_TYPE_MAX_ID; t++) {
                const GgmlTypeTraits *tt = ggml_type_traits(t);
                if (tt && tt->supported && strcasecmp(tt->name, tname) == 0)
                        type = (int)t;
        }
        if (type < 0 || ne0 == 0 || ggml_row_size(type, ne0) == 0) {
                fprintf(stderr, "Bad type or row length: %s %zu\n", tname, ne0);
                return 2;
        }
        FILE *f = fopen(argv[6], "we");
        if (!f) {
                fprintf(stderr, "Cannot open %s: %m\n", argv[6]);
                return 1;
        }
        size_t rs = ggml_row_size(type, ne0);
        _cleanup_free_ float *row = new (float, ne0);
        _cleanup_free_ uint8_t *q = malloc(rs);
        uint64_t s = seed * 0x2545f4914f6cdd1dull + 1;
        for (size_t r = 0; r < ne1; r++) {
                for (size_t i = 0; i < ne0; i++) {
                        double a = (splitmix64(&s) >> 11) * (1.0 / 9007199254740992.0);
                        double b = (splitmix64(&s) >> 11) * (1.0 / 9007199254740992.0);
                        row[i] = (float)((a + b - 1.0) * scale);
                }
                ggml_quantize_row(type, row, q, ne0);
                if (fwrite(q, 1, rs, f) != rs) {
                        fclose(f);
                        return 1;
                }
        }
        return fclose(f) == 0 ? 0 : 1;
}

typedef struct BwJob {
        const uint8_t *buf;
        size_t n;
        uint64_t sums[512];
} BwJob;

/* Reads [p, p + n) as the matrix kernels read weights: wide loads, four independent
 * accumulators, and software prefetch ahead of the loads. n is a multiple of 128. */
#if defined(__x86_64__)
__attribute__((target("avx2"))) static uint64_t bw_read(const uint8_t *p, size_t n)
{
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t i = 0; i < n; i += 128) {
                _mm_prefetch((const char *)p + i + 1024, _MM_HINT_T0);
                _mm_prefetch((const char *)p + i + 1024 + 64, _MM_HINT_T0);
                a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(p + i)));
                a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(p + i + 32)));
                a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(p + i + 64)));
                a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(p + i + 96)));
        }
        a0 = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
        return (uint64_t)_mm256_extract_epi64(a0, 0);
}
#else
static uint64_t bw_read(const uint8_t *p, size_t n)
{
        const uint64_t *w = (const uint64_t *)p;
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (size_t i = 0; i < n / 8; i += 4) {
                s0 += w[i];
                s1 += w[i + 1];
                s2 += w[i + 2];
                s3 += w[i + 3];
        }
        return s0 + s1 + s2 + s3;
}
#endif

static void bw_job(void *userdata, unsigned ith, unsigned nth)
{
        BwJob *j = userdata;
        size_t lo, hi;
        threadpool_split(j->n / 128, ith, nth, &lo, &hi);
        j->sums[ith] = bw_read(j->buf + lo * 128, (hi - lo) * 128);
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

/* The bound decode speed is measured against: bytes of weights per token (engine-tool
 * bench prints them) over this. 1 GiB, far past any cache, read by N threads nine
 * times; the median pass is the figure, the best one is shown beside it. */
static int cmd_membw(int argc, char **argv)
{
        int i = parse_common(argc, argv);
        if (i < 0)
                return 2;
        size_t n = (size_t)1 << 30;
        uint8_t *buf = aligned_alloc(4096, n);
        ThreadPool *p = NULL;
        if (!buf || threadpool_new(opt_threads, &p) < 0) {
                free(buf);
                return 1;
        }
        memset(buf, 1, n);
        BwJob *j = new0(BwJob, 1);
        if (!j) {
                free(buf);
                threadpool_free(p);
                return 1;
        }
        j->buf = buf;
        j->n = n;
        double pass[9];
        for (size_t rep = 0; rep < ELEMENTSOF(pass); rep++) {
                double t0 = now_sec();
                threadpool_run(p, bw_job, j);
                pass[rep] = n / (now_sec() - t0) / 1e9;
        }
        qsort(pass, ELEMENTSOF(pass), sizeof(double), cmp_double);
        printf("read bandwidth, %u threads: %.1f GB/s (median of %zu passes; best %.1f)\n",
               threadpool_size(p), pass[ELEMENTSOF(pass) / 2], ELEMENTSOF(pass),
               pass[ELEMENTSOF(pass) - 1]);
        free(j);
        free(buf);
        threadpool_free(p);
        return 0;
}

int main(int argc, char **argv)
{
        if (argc < 2) {
                fprintf(stderr,
                        "Usage: engine-tool run|info|logits|greedy|tokenize|bench|gen-tensor "
                        "...\n");
                return 2;
        }
        const char *cmd = argv[1];
        argc--;
        argv++;
        if (strcmp(cmd, "run") == 0)
                return engine_cli_model_run(argc, argv);
        if (strcmp(cmd, "info") == 0)
                return engine_cli_model_info(argc, argv);
        if (strcmp(cmd, "logits") == 0)
                return cmd_logits(argc, argv);
        if (strcmp(cmd, "greedy") == 0)
                return cmd_greedy(argc, argv);
        if (strcmp(cmd, "tokenize") == 0)
                return cmd_tokenize(argc, argv);
        if (strcmp(cmd, "bench") == 0)
                return cmd_bench(argc, argv);
        if (strcmp(cmd, "gen-tensor") == 0)
                return cmd_gen_tensor(argc, argv);
        if (strcmp(cmd, "membw") == 0)
                return cmd_membw(argc, argv);
        fprintf(stderr, "Unknown command %s\n", cmd);
        return 2;
}
