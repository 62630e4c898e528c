/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Vectorized SiLU gating and single-query attention (see vecmath.h).
 *
 * e^x is computed as 2^n * e^r with n = round(x / ln 2), r = x - n ln 2 (two-part
 * constant) and a degree-6 Taylor polynomial for e^r, |r| <= ln 2 / 2: relative error
 * about 1e-7, the same order as libm's expf rounding. Arguments are clamped to
 * [-104, 89] so that the result underflows to 0 or overflows to infinity as expf does. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "engine/vecmath.h"

#if defined(__x86_64__)
static bool env_is_1(const char *name)
{
        const char *e = getenv(name);
        return e && strcmp(e, "1") == 0;
}

static bool use_avx512(void)
{
        static int cached = -1;
        int c = __atomic_load_n(&cached, __ATOMIC_RELAXED);
        if (c < 0) {
                c = !env_is_1("ENGINE_FORCE_SCALAR") && !env_is_1("ENGINE_FORCE_AVX2") &&
                        ggml_cpu_has_avx512();
                __atomic_store_n(&cached, c, __ATOMIC_RELAXED);
        }
        return c;
}
#endif

static void silu_mul_ref(float *g, const float *u, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                float x = g[i];
                g[i] = x / (1.0f + expf(-x)) * u[i];
        }
}

#if defined(__x86_64__)

#include <immintrin.h>
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl"))),   \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")
#endif

static inline __m512 exp512(__m512 x)
{
        x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(89.0f)), _mm512_set1_ps(-104.0f));
        __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
        r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
        __m512 p = _mm512_set1_ps(1.0f / 720);
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
        return _mm512_scalef_ps(p, n);
}

static void silu_mul_avx512(float *g, const float *u, size_t n)
{
        size_t i = 0;
        for (; i + 16 <= n; i += 16) {
                __m512 x = _mm512_loadu_ps(g + i);
                __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), x));
                __m512 s = _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
                _mm512_storeu_ps(g + i, _mm512_mul_ps(s, _mm512_loadu_ps(u + i)));
        }
        if (i < n) {
                __mmask16 mk = (__mmask16)((1u << (n - i)) - 1);
                __m512 x = _mm512_maskz_loadu_ps(mk, g + i);
                __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), x));
                __m512 s = _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
                _mm512_mask_storeu_ps(g + i, mk,
                                      _mm512_mul_ps(s, _mm512_maskz_loadu_ps(mk, u + i)));
        }
}

/* scores = softmax(scores) given their maximum, the sum in double, each weight rounded
 * to F16 (the weights meet F16 values as F16, like ggml's product). */
static void softmax_f16w(float *scores, size_t n_kv, float max)
{
        /* softmax: exponentials, the sum in double */
        __m512 vm = _mm512_set1_ps(max);
        __m512d sum = _mm512_setzero_pd();
        for (size_t p = 0; p < n_kv; p += 16) {
                __mmask16 mk =
                        n_kv - p >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n_kv - p)) - 1);
                __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, scores + p), vm));
                e = _mm512_maskz_mov_ps(mk, e);
                _mm512_mask_storeu_ps(scores + p, mk, e);
                sum = _mm512_add_pd(sum, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
                sum = _mm512_add_pd(sum,
                                    _mm512_cvtps_pd(_mm256_castpd_ps(
                                            _mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
        }
        __m512 inv = _mm512_set1_ps((float)(1.0 / _mm512_reduce_add_pd(sum)));
        /* the weights meet F16 values as F16, like ggml's product */
        for (size_t p = 0; p < n_kv; p += 16) {
                __mmask16 mk =
                        n_kv - p >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n_kv - p)) - 1);
                __m512 w = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, scores + p), inv);
                w = _mm512_cvtph_ps(
                        _mm512_cvtps_ph(w, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
                _mm512_mask_storeu_ps(scores + p, mk, w);
        }
}

/* Sixteen vectors of partial sums in, their sixteen totals out (element m = sum of a[m]). */
static inline __m512 reduce16(const __m512 *a)
{
        __m512 b[8], c[4];
        for (int i = 0; i < 8; i++)
                b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x44),
                                     _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xEE));
        for (int i = 0; i < 4; i++)
                c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0x88),
                                     _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0xDD));
        /* c[i], 128-bit lane j: four partials of a[4i + j] */
        __m512 d0 = _mm512_add_ps(_mm512_unpacklo_ps(c[0], c[1]), _mm512_unpackhi_ps(c[0], c[1]));
        __m512 d1 = _mm512_add_ps(_mm512_unpacklo_ps(c[2], c[3]), _mm512_unpackhi_ps(c[2], c[3]));
        __m512 e = _mm512_add_ps(
                _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(d0), _mm512_castps_pd(d1))),
                _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(d0), _mm512_castps_pd(d1))));
        /* e[4j + i] = total of a[4i + j] */
        const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
        return _mm512_permutexvar_ps(idx, e);
}

static void attn_f16_avx512(const ggml_fp16_t *q16, const ggml_fp16_t *k, const ggml_fp16_t *v,
                            size_t stride, size_t n_kv, size_t hd, float scale, float *scores,
                            float *out)
{
        size_t nc = hd / 16;
        __m512 q[8], acc[8];
        for (size_t c = 0; c < nc; c++)
                q[c] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(q16 + 16 * c)));

        /* scores, sixteen positions at a time */
        __m512 vscale = _mm512_set1_ps(scale), vmax = _mm512_set1_ps(-INFINITY);
        size_t p = 0;
        for (; p + 16 <= n_kv; p += 16) {
                __m512 a[16];
                for (int i = 0; i < 16; i++) {
                        const ggml_fp16_t *kr = k + (p + i) * stride;
                        __m512 s = _mm512_mul_ps(
                                q[0], _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)kr)));
                        for (size_t c = 1; c < nc; c++)
                                s = _mm512_fmadd_ps(q[c],
                                                    _mm512_cvtph_ps(_mm256_loadu_si256(
                                                            (const __m256i *)(kr + 16 * c))),
                                                    s);
                        a[i] = s;
                }
                __m512 sc = _mm512_mul_ps(reduce16(a), vscale);
                vmax = _mm512_max_ps(vmax, sc);
                _mm512_storeu_ps(scores + p, sc);
        }
        float max = _mm512_reduce_max_ps(vmax);
        for (; p < n_kv; p++) {
                const ggml_fp16_t *kr = k + p * stride;
                __m512 s = _mm512_mul_ps(q[0],
                                         _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)kr)));
                for (size_t c = 1; c < nc; c++)
                        s = _mm512_fmadd_ps(
                                q[c],
                                _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(kr + 16 * c))),
                                s);
                scores[p] = _mm512_reduce_add_ps(s) * scale;
                max = fmaxf(max, scores[p]);
        }

        softmax_f16w(scores, n_kv, max);

        for (size_t c = 0; c < nc; c++)
                acc[c] = _mm512_setzero_ps();
        for (p = 0; p < n_kv; p++) {
                const ggml_fp16_t *vr = v + p * stride;
                __m512 w = _mm512_set1_ps(scores[p]);
                for (size_t c = 0; c < nc; c++)
                        acc[c] = _mm512_fmadd_ps(
                                w,
                                _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(vr + 16 * c))),
                                acc[c]);
        }
        for (size_t c = 0; c < nc; c++)
                _mm512_storeu_ps(out + 16 * c, acc[c]);
}

/* Up to sixteen queries of one KV head against the same cache: K and V are converted
 * once per block of sixteen positions for all of them. Each query's arithmetic is the
 * same, operation for operation, as attn_f16_avx512's, so results do not depend on how
 * queries are grouped. */
static void attn_f16_rows_avx512(const float *const *q, float *const *out, const size_t *nkv,
                                 size_t nq, const ggml_fp16_t *k, const ggml_fp16_t *v,
                                 size_t stride, size_t hd, float scale, float *scores,
                                 size_t sc_stride)
{
        size_t nc = hd / 16, max_kv = 0;
        float qf[16 * 128], buf[16 * 128], maxs[16];
        for (size_t r = 0; r < nq; r++) {
                for (size_t c = 0; c < nc; c++)
                        _mm512_storeu_ps(qf + r * hd + 16 * c,
                                         _mm512_cvtph_ps(_mm512_cvtps_ph(
                                                 _mm512_loadu_ps(q[r] + 16 * c),
                                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
                max_kv = MAX(max_kv, nkv[r]);
                maxs[r] = -INFINITY;
        }
        __m512 vscale = _mm512_set1_ps(scale);
        for (size_t p0 = 0; p0 + 16 <= max_kv; p0 += 16) {
                for (size_t i = 0; i < 16; i++)
                        for (size_t c = 0; c < nc; c++)
                                _mm512_storeu_ps(
                                        buf + i * hd + 16 * c,
                                        _mm512_cvtph_ps(_mm256_loadu_si256((
                                                const __m256i *)(k + (p0 + i) * stride + 16 * c))));
                for (size_t r = 0; r < nq; r++) {
                        if (p0 + 16 > nkv[r])
                                continue;
                        __m512 qv[8], a[16];
                        for (size_t c = 0; c < nc; c++)
                                qv[c] = _mm512_loadu_ps(qf + r * hd + 16 * c);
                        for (int i = 0; i < 16; i++) {
                                const float *kr = buf + i * hd;
                                __m512 sacc = _mm512_mul_ps(qv[0], _mm512_loadu_ps(kr));
                                for (size_t c = 1; c < nc; c++)
                                        sacc = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(kr + 16 * c),
                                                               sacc);
                                a[i] = sacc;
                        }
                        __m512 sc = _mm512_mul_ps(reduce16(a), vscale);
                        maxs[r] = fmaxf(maxs[r], _mm512_reduce_max_ps(sc));
                        _mm512_storeu_ps(scores + r * sc_stride + p0, sc);
                }
        }
        for (size_t r = 0; r < nq; r++) {
                const float *qr = qf + r * hd;
                float *sr = scores + r * sc_stride;
                size_t n = nkv[r];
                for (size_t p = n & ~(size_t)15; p < n; p++) {
                        const ggml_fp16_t *kr = k + p * stride;
                        __m512 sacc = _mm512_mul_ps(
                                _mm512_loadu_ps(qr),
                                _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)kr)));
                        for (size_t c = 1; c < nc; c++)
                                sacc = _mm512_fmadd_ps(_mm512_loadu_ps(qr + 16 * c),
                                                       _mm512_cvtph_ps(_mm256_loadu_si256(
                                                               (const __m256i *)(kr + 16 * c))),
                                                       sacc);
                        sr[p] = _mm512_reduce_add_ps(sacc) * scale;
                        maxs[r] = fmaxf(maxs[r], sr[p]);
                }
                softmax_f16w(sr, n, maxs[r]);
                for (size_t c = 0; c < nc; c++)
                        _mm512_storeu_ps(out[r] + 16 * c, _mm512_setzero_ps());
        }
        for (size_t p0 = 0; p0 < max_kv; p0 += 16) {
                size_t cnt = MIN((size_t)16, max_kv - p0);
                for (size_t i = 0; i < cnt; i++)
                        for (size_t c = 0; c < nc; c++)
                                _mm512_storeu_ps(
                                        buf + i * hd + 16 * c,
                                        _mm512_cvtph_ps(_mm256_loadu_si256((
                                                const __m256i *)(v + (p0 + i) * stride + 16 * c))));
                for (size_t r = 0; r < nq; r++) {
                        if (nkv[r] <= p0)
                                continue;
                        size_t e = MIN(cnt, nkv[r] - p0);
                        const float *w = scores + r * sc_stride + p0;
                        for (size_t c = 0; c < nc; c++) {
                                __m512 acc = _mm512_loadu_ps(out[r] + 16 * c);
                                for (size_t i = 0; i < e; i++)
                                        acc = _mm512_fmadd_ps(
                                                _mm512_set1_ps(w[i]),
                                                _mm512_loadu_ps(buf + i * hd + 16 * c), acc);
                                _mm512_storeu_ps(out[r] + 16 * c, acc);
                        }
                }
        }
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#endif /* __x86_64__ */

void vm_silu_mul(float *g, const float *u, size_t n)
{
#if defined(__x86_64__)
        if (use_avx512()) {
                silu_mul_avx512(g, u, n);
                return;
        }
#endif
        silu_mul_ref(g, u, n);
}

bool vm_attn_f16(const ggml_fp16_t *q16, const ggml_fp16_t *k, const ggml_fp16_t *v, size_t stride,
                 size_t n_kv, size_t hd, float scale, float *scores, float *out)
{
#if defined(__x86_64__)
        if (n_kv > 0 && hd % 16 == 0 && hd > 0 && hd <= 128 && use_avx512()) {
                attn_f16_avx512(q16, k, v, stride, n_kv, hd, scale, scores, out);
                return true;
        }
#endif
        (void)q16, (void)k, (void)v, (void)stride, (void)n_kv, (void)hd, (void)scale;
        (void)scores, (void)out;
        return false;
}

bool vm_attn_f16_rows(const float *const *q, float *const *out, const size_t *n_kv, size_t nq,
                      const ggml_fp16_t *k, const ggml_fp16_t *v, size_t stride, size_t hd,
                      float scale, float *scores, size_t sc_stride)
{
#if defined(__x86_64__)
        if (nq > 0 && nq <= 16 && hd % 16 == 0 && hd > 0 && hd <= 128 && use_avx512()) {
                attn_f16_rows_avx512(q, out, n_kv, nq, k, v, stride, hd, scale, scores, sc_stride);
                return true;
        }
#endif
        (void)q, (void)out, (void)n_kv, (void)k, (void)v, (void)stride, (void)hd, (void)scale;
        (void)scores, (void)sc_stride;
        return false;
}

bool vm_attn_f16_rows_supported(size_t hd)
{
#if defined(__x86_64__)
        return hd % 16 == 0 && hd > 0 && hd <= 128 && use_avx512();
#else
        (void)hd;
        return false;
#endif
}
