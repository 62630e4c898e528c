/* SPDX-License-Identifier: GPL-2.0-or-later */
/* AVX-512 (F, BW, VL) variants of the four-row kernels used in prompt processing and
 * batched decoding, where the machine is compute-bound and twice the width pays. Only
 * called when ggml_cpu_has_avx512() said yes; same results as the AVX2 kernels up to
 * summation order. */
#include <string.h>

#include "engine/ggml-types.h"

bool ggml_cpu_has_avx512(void)
{
#if defined(__x86_64__)
        __builtin_cpu_init();
        return ggml_cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
                __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#else
        return false;
#endif
}

#if defined(__x86_64__)

#include <immintrin.h>
/* Every function below is compiled for the target (GCC and clang spell it differently). */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl"))),   \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")
#endif

#define KERNELS_X86_AVX512
#include "engine/kernels-x86.h"

#define Y(k, T) ((const T *)((const uint8_t *)vy + (k)*ys))

/* Two Q8_0-partnered blocks at a time: qx holds 64 signed weights. */
static inline __attribute__((always_inline)) void dot_pair(__m512i qx, float dx0, float dx1,
                                                           const void *vy, size_t ys, size_t i,
                                                           __m512 *acc, const int R)
{
        const __m512i ones = _mm512_set1_epi16(1);
        __m512i ax = _mm512_abs_epi8(qx);
        __mmask64 neg = _mm512_movepi8_mask(qx);
        for (int k = 0; k < R; k++) {
                const BlockQ8_0 *y = Y(k, BlockQ8_0) + i;
                __m512i yv = join256(_mm256_loadu_si256((const __m256i *)y[0].qs),
                                     _mm256_loadu_si256((const __m256i *)y[1].qs));
                __m512i sy = _mm512_mask_sub_epi8(yv, neg, _mm512_setzero_si512(), yv);
                __m512i p = _mm512_madd_epi16(_mm512_maddubs_epi16(ax, sy), ones);
                acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p),
                                         scale2(dx0 * f16(y[0].d), dx1 * f16(y[1].d)), acc[k]);
        }
}

static inline __attribute__((always_inline)) void
q4_0_rows(size_t n, const void *vx, const void *vy, size_t ys, float *out, const int R)
{
        const BlockQ4_0 *x = vx;
        const __m512i off = _mm512_set1_epi8(8);
        size_t nb = n / QK4_0, i = 0;
        __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                         _mm512_setzero_ps()};
        for (; i + 2 <= nb; i += 2) {
                __m512i qx = _mm512_sub_epi8(
                        join256(unpack_q4_0(x[i].qs), unpack_q4_0(x[i + 1].qs)), off);
                dot_pair(qx, f16(x[i].d), f16(x[i + 1].d), vy, ys, i, acc, R);
        }
        for (int k = 0; k < R; k++)
                out[k] = _mm512_reduce_add_ps(acc[k]);
        if (i < nb) {
                float tail[4];
                ggml_vec_dot4_q4_0_q8_0_avx2(QK4_0, x + i, Y(0, BlockQ8_0) + i, ys, tail);
                for (int k = 0; k < R; k++)
                        out[k] += tail[k];
        }
}

void ggml_vec_dot4_q4_0_q8_0_avx512(size_t n, const void *vx, const void *vy, size_t ys, float *out)
{
        q4_0_rows(n, vx, vy, ys, out, 4);
}

float ggml_vec_dot_q4_0_q8_0_avx512(size_t n, const void *vx, const void *vy)
{
        float out;
        q4_0_rows(n, vx, vy, 0, &out, 1);
        return out;
}

static inline __attribute__((always_inline)) void
q8_0_rows(size_t n, const void *vx, const void *vy, size_t ys, float *out, const int R)
{
        const BlockQ8_0 *x = vx;
        size_t nb = n / QK8_0, i = 0;
        __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                         _mm512_setzero_ps()};
        for (; i + 2 <= nb; i += 2) {
                __m512i qx = join256(_mm256_loadu_si256((const __m256i *)x[i].qs),
                                     _mm256_loadu_si256((const __m256i *)x[i + 1].qs));
                dot_pair(qx, f16(x[i].d), f16(x[i + 1].d), vy, ys, i, acc, R);
        }
        for (int k = 0; k < R; k++)
                out[k] = _mm512_reduce_add_ps(acc[k]);
        if (i < nb) {
                float tail[4];
                ggml_vec_dot4_q8_0_q8_0_avx2(QK8_0, x + i, Y(0, BlockQ8_0) + i, ys, tail);
                for (int k = 0; k < R; k++)
                        out[k] += tail[k];
        }
}

void ggml_vec_dot4_q8_0_q8_0_avx512(size_t n, const void *vx, const void *vy, size_t ys, float *out)
{
        q8_0_rows(n, vx, vy, ys, out, 4);
}

float ggml_vec_dot_q8_0_q8_0_avx512(size_t n, const void *vx, const void *vy)
{
        float out;
        q8_0_rows(n, vx, vy, 0, &out, 1);
        return out;
}

/* The low and high nibbles of 32 bytes are the weights of 64 consecutive values, and the
 * matching 64 activation bytes are contiguous: one 512-bit product per 64 values. */
static inline __attribute__((always_inline)) void
q4_K_rows(size_t n, const void *vx, const void *vy, size_t ys, float *out, const int R)
{
        const BlockQ4_K *x = vx;
        const __m512i mask = _mm512_set1_epi8(0xF);
        /* low nibbles in the lower 256 bits, high nibbles (shifted by 4) in the upper */
        const __m512i shift = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1);
        /* lane indexes broadcasting scale 2j to the lower and 2j+1 to the upper half */
        const __m512i idx[4] = {
                join256(_mm256_set1_epi16(0), _mm256_set1_epi16(1)),
                join256(_mm256_set1_epi16(2), _mm256_set1_epi16(3)),
                join256(_mm256_set1_epi16(4), _mm256_set1_epi16(5)),
                join256(_mm256_set1_epi16(6), _mm256_set1_epi16(7)),
        };
        __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                         _mm512_setzero_ps()};
        float summ[4] = {0};

        for (size_t i = 0; i < n / QK_K; i++) {
                uint64_t sc8, m8;
                scales_mins_k4(x[i].scales, &sc8, &m8);
                float d = f16(x[i].d), dmin = f16(x[i].dmin);
                __m128i m16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)m8));
                __m512i sc16 = _mm512_castsi128_si512(
                        _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc8)));
                __m512i isum[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(),
                                   _mm512_setzero_si512(), _mm512_setzero_si512()};
                for (int k = 0; k < R; k++) {
                        const BlockQ8_K *yb = Y(k, BlockQ8_K) + i;
                        __m128i b0 = _mm_loadu_si128((const __m128i *)yb->bsums);
                        __m128i b1 = _mm_loadu_si128((const __m128i *)(yb->bsums + 8));
                        __m128i p = _mm_madd_epi16(_mm_hadd_epi16(b0, b1), m16);
                        p = _mm_add_epi32(p, _mm_shuffle_epi32(p, _MM_SHUFFLE(1, 0, 3, 2)));
                        p = _mm_add_epi32(p, _mm_shuffle_epi32(p, _MM_SHUFFLE(2, 3, 0, 1)));
                        summ[k] += dmin * yb->d * _mm_cvtsi128_si32(p);
                }
                for (int j = 0; j < 4; j++) {
                        __m512i q4 = _mm512_broadcast_i64x4(
                                _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * j)));
                        __m512i w = _mm512_and_si512(_mm512_srlv_epi16(q4, shift), mask);
                        __m512i s = _mm512_permutexvar_epi16(idx[j], sc16);
                        for (int k = 0; k < R; k++) {
                                __m512i yv = _mm512_loadu_si512(
                                        (const void *)((Y(k, BlockQ8_K) + i)->qs + 64 * j));
                                isum[k] = _mm512_add_epi32(
                                        isum[k], _mm512_madd_epi16(_mm512_maddubs_epi16(w, yv), s));
                        }
                }
                for (int k = 0; k < R; k++)
                        acc[k] = _mm512_fmadd_ps(_mm512_set1_ps(d * (Y(k, BlockQ8_K) + i)->d),
                                                 _mm512_cvtepi32_ps(isum[k]), acc[k]);
        }
        for (int k = 0; k < R; k++)
                out[k] = _mm512_reduce_add_ps(acc[k]) - summ[k];
}

void ggml_vec_dot4_q4_K_q8_K_avx512(size_t n, const void *vx, const void *vy, size_t ys, float *out)
{
        q4_K_rows(n, vx, vy, ys, out, 4);
}

float ggml_vec_dot_q4_K_q8_K_avx512(size_t n, const void *vx, const void *vy)
{
        float out;
        q4_K_rows(n, vx, vy, 0, &out, 1);
        return out;
}

/* Q6_K: the four 32-value groups of each 128-value half pair up as (0,1) and (2,3), whose
 * activations are contiguous 64-byte runs. */
static inline __attribute__((always_inline)) void
q6_K_rows(size_t n, const void *vx, const void *vy, size_t ys, float *out, const int R)
{
        const BlockQ6_K *x = vx;
        const __m256i m4 = _mm256_set1_epi8(0xF), m2 = _mm256_set1_epi8(3);
        const __m512i m32 = _mm512_set1_epi8(32);
        __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                         _mm512_setzero_ps()};

        for (size_t i = 0; i < n / QK_K; i++) {
                const uint8_t *ql = x[i].ql, *qh = x[i].qh;
                const int8_t *sc = x[i].scales;
                __m512i isum[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(),
                                   _mm512_setzero_si512(), _mm512_setzero_si512()};
                for (int h = 0; h < 2; h++) {
                        __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
                        __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
                        __m256i hb = _mm256_loadu_si256((const __m256i *)qh);
                        __m256i v0 =
                                _mm256_or_si256(_mm256_and_si256(l0, m4),
                                                _mm256_slli_epi16(_mm256_and_si256(hb, m2), 4));
                        __m256i v1 = _mm256_or_si256(
                                _mm256_and_si256(l1, m4),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m2),
                                                  4));
                        __m256i v2 = _mm256_or_si256(
                                _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m2),
                                                  4));
                        __m256i v3 = _mm256_or_si256(
                                _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m2),
                                                  4));
                        __m512i w01 = join256(v0, v1), w23 = join256(v2, v3);
                        __m512i s01 = join256(
                                _mm256_set_m128i(_mm_set1_epi16(sc[1]), _mm_set1_epi16(sc[0])),
                                _mm256_set_m128i(_mm_set1_epi16(sc[3]), _mm_set1_epi16(sc[2])));
                        __m512i s23 = join256(
                                _mm256_set_m128i(_mm_set1_epi16(sc[5]), _mm_set1_epi16(sc[4])),
                                _mm256_set_m128i(_mm_set1_epi16(sc[7]), _mm_set1_epi16(sc[6])));
                        for (int k = 0; k < R; k++) {
                                const int8_t *q8 = (Y(k, BlockQ8_K) + i)->qs + 128 * h;
                                __m512i y01 = _mm512_loadu_si512((const void *)q8);
                                __m512i y23 = _mm512_loadu_si512((const void *)(q8 + 64));
                                __m512i p01 = _mm512_sub_epi16(_mm512_maddubs_epi16(w01, y01),
                                                               _mm512_maddubs_epi16(m32, y01));
                                __m512i p23 = _mm512_sub_epi16(_mm512_maddubs_epi16(w23, y23),
                                                               _mm512_maddubs_epi16(m32, y23));
                                isum[k] = _mm512_add_epi32(
                                        isum[k],
                                        _mm512_add_epi32(_mm512_madd_epi16(p01, s01),
                                                         _mm512_madd_epi16(p23, s23)));
                        }
                        ql += 64;
                        qh += 32;
                        sc += 8;
                }
                float d = f16(x[i].d);
                for (int k = 0; k < R; k++)
                        acc[k] = _mm512_fmadd_ps(_mm512_set1_ps(d * (Y(k, BlockQ8_K) + i)->d),
                                                 _mm512_cvtepi32_ps(isum[k]), acc[k]);
        }
        for (int k = 0; k < R; k++)
                out[k] = _mm512_reduce_add_ps(acc[k]);
}

void ggml_vec_dot4_q6_K_q8_K_avx512(size_t n, const void *vx, const void *vy, size_t ys, float *out)
{
        q6_K_rows(n, vx, vy, ys, out, 4);
}

float ggml_vec_dot_q6_K_q8_K_avx512(size_t n, const void *vx, const void *vy)
{
        float out;
        q6_K_rows(n, vx, vy, 0, &out, 1);
        return out;
}

/* ---- F16 ---- */

float ggml_vec_dot_f16_avx512(size_t n, const void *vx, const void *vy)
{
        const ggml_fp16_t *x = vx, *y = vy;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        size_t i = 0;
        for (; i + 32 <= n; i += 32) {
                /* into L2 well ahead: decoding streams F16 rows from memory one at a
                 * time, and this brought the 1B F16 model 7% closer to the bandwidth
                 * bound (a kilobyte ahead into L1 changed nothing) */
                _mm_prefetch((const char *)(x + i) + 8192, _MM_HINT_T1);
                a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))),
                                     _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(y + i))),
                                     a0);
                a1 = _mm512_fmadd_ps(
                        _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i + 16))),
                        _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(y + i + 16))), a1);
        }
        float sum = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
        if (i < n)
                sum += ggml_vec_dot_f16_avx2(n - i, x + i, y + i);
        return sum;
}

void ggml_vec_dot4_f16_avx512(size_t n, const void *vx, const void *vy, size_t ys, float *out)
{
        const ggml_fp16_t *x = vx;
        __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                         _mm512_setzero_ps()};
        size_t i = 0;
        for (; i + 16 <= n; i += 16) {
                __m512 w = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i)));
                for (int k = 0; k < 4; k++)
                        acc[k] = _mm512_fmadd_ps(w,
                                                 _mm512_cvtph_ps(_mm256_loadu_si256(
                                                         (const __m256i *)(Y(k, ggml_fp16_t) + i))),
                                                 acc[k]);
        }
        for (int k = 0; k < 4; k++)
                out[k] = _mm512_reduce_add_ps(acc[k]);
        if (i < n) {
                float tail[4];
                ggml_vec_dot4_f16_avx2(n - i, x + i, (const uint8_t *)vy + i * sizeof(ggml_fp16_t),
                                       ys, tail);
                for (int k = 0; k < 4; k++)
                        out[k] += tail[k];
        }
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else /* the dispatcher never calls these elsewhere */

#define NOT_X86_4(name)                                                                            \
        void name(size_t n, const void *x, const void *y, size_t ys, float *out)                   \
        {                                                                                          \
        }
NOT_X86_4(ggml_vec_dot4_q4_0_q8_0_avx512)
NOT_X86_4(ggml_vec_dot4_q8_0_q8_0_avx512)
NOT_X86_4(ggml_vec_dot4_q4_K_q8_K_avx512)
NOT_X86_4(ggml_vec_dot4_q6_K_q8_K_avx512)
#define NOT_X86_1(name)                                                                            \
        float name(size_t n, const void *x, const void *y)                                         \
        {                                                                                          \
                return 0.0f;                                                                       \
        }
NOT_X86_1(ggml_vec_dot_q4_0_q8_0_avx512)
NOT_X86_1(ggml_vec_dot_q8_0_q8_0_avx512)
NOT_X86_1(ggml_vec_dot_q4_K_q8_K_avx512)
NOT_X86_1(ggml_vec_dot_q6_K_q8_K_avx512)
NOT_X86_1(ggml_vec_dot_f16_avx512)
NOT_X86_4(ggml_vec_dot4_f16_avx512)
#endif
