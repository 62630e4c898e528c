/* SPDX-License-Identifier: GPL-2.0-or-later */
/* AVX2/FMA/F16C kernels. The whole file is compiled for that target (pragma below), and
 * nothing here may be called unless ggml_cpu_has_avx2() said yes: the dispatcher in
 * ggml-types.c makes that choice once. Each kernel computes the same quantity as its
 * reference twin; only the summation order differs. */
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "engine/ggml-types.h"

bool ggml_cpu_has_avx2(void)
{
#if defined(__x86_64__) || defined(__i386__)
        unsigned a, b, c, d;
        __builtin_cpu_init();
        /* FMA and F16C by CPUID: clang's __builtin_cpu_supports() does not know those
         * names; "avx2" also checks that the OS saves the AVX state */
        if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_F16C) || !(c & bit_FMA))
                return false;
        return __builtin_cpu_supports("avx2");
#else
        return false;
#endif
}

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>
/* Every function below is compiled for the target (GCC and clang spell it differently). */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

#include "engine/kernels-x86.h"

static inline float hsum_ps(__m256 v)
{
        __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
        lo = _mm_add_ps(lo, hi);
        lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
        lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
        return _mm_cvtss_f32(lo);
}

static inline __m256i sum_i16_pairs(__m256i x)
{
        return _mm256_madd_epi16(x, _mm256_set1_epi16(1));
}

/* Signed 8-bit dot product of 32 bytes into 8 i32 lanes. */
static inline __m256i dot_i8(__m256i x, __m256i y)
{
        __m256i ax = _mm256_sign_epi8(x, x);
        __m256i sy = _mm256_sign_epi8(y, x);
        return sum_i16_pairs(_mm256_maddubs_epi16(ax, sy));
}

/* The float-like types (F32, F16, BF16) share one dot product: LOAD widens 8 elements
 * to F32, four accumulators hide the FMA latency, CONV converts the scalar tail. */
#define DEFINE_VEC_DOT_FLOAT(name, T, LOAD, CONV)                                                  \
        float name(size_t n, const void *vx, const void *vy)                                       \
        {                                                                                          \
                const T *x = vx, *y = vy;                                                          \
                __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(),                         \
                       a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();                         \
                size_t i = 0;                                                                      \
                for (; i + 32 <= n; i += 32) {                                                     \
                        a0 = _mm256_fmadd_ps(LOAD(x + i), LOAD(y + i), a0);                        \
                        a1 = _mm256_fmadd_ps(LOAD(x + i + 8), LOAD(y + i + 8), a1);                \
                        a2 = _mm256_fmadd_ps(LOAD(x + i + 16), LOAD(y + i + 16), a2);              \
                        a3 = _mm256_fmadd_ps(LOAD(x + i + 24), LOAD(y + i + 24), a3);              \
                }                                                                                  \
                for (; i + 8 <= n; i += 8)                                                         \
                        a0 = _mm256_fmadd_ps(LOAD(x + i), LOAD(y + i), a0);                        \
                float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));  \
                for (; i < n; i++)                                                                 \
                        sum += CONV(x[i]) * CONV(y[i]);                                            \
                return sum;                                                                        \
        }

static inline __m256 load_f32(const float *p)
{
        return _mm256_loadu_ps(p);
}

static inline float f32(float f)
{
        return f;
}

DEFINE_VEC_DOT_FLOAT(ggml_vec_dot_f32_avx2, float, load_f32, f32)

static inline __m256 load_f16(const ggml_fp16_t *p)
{
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

DEFINE_VEC_DOT_FLOAT(ggml_vec_dot_f16_avx2, ggml_fp16_t, load_f16, f16)

/* BF16 is the top half of an F32: widen to 32 bits and shift into place. */
static inline __m256 load_bf16(const ggml_bf16_t *p)
{
        __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
        return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

static inline float bf16(ggml_bf16_t h)
{
        uint32_t u = (uint32_t)h << 16;
        float f;
        memcpy(&f, &u, sizeof(f));
        return f;
}

DEFINE_VEC_DOT_FLOAT(ggml_vec_dot_bf16_avx2, ggml_bf16_t, load_bf16, bf16)

void ggml_vec_mad_f16_avx2(size_t n, float *y, const ggml_fp16_t *x, float s)
{
        __m256 vs = _mm256_set1_ps(s);
        size_t i = 0;
        for (; i + 8 <= n; i += 8)
                _mm256_storeu_ps(y + i,
                                 _mm256_fmadd_ps(load_f16(x + i), vs, _mm256_loadu_ps(y + i)));
        for (; i < n; i++)
                y[i] += s * f16(x[i]);
}

void ggml_fp32_to_fp16_row_avx2(const float *src, void *dst, size_t n)
{
        ggml_fp16_t *y = dst;
        size_t i = 0;
        for (; i + 8 <= n; i += 8)
                _mm_storeu_si128(
                        (__m128i *)(y + i),
                        _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
        for (; i < n; i++)
                y[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}

/* Same rounding as ggml_fp32_to_bf16() (to nearest even; NaN kept quiet), bit-identical. */
void ggml_fp32_to_bf16_row_avx2(const float *src, void *dst, size_t n)
{
        ggml_bf16_t *y = dst;
        const __m256i abs = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
        const __m256i half = _mm256_set1_epi32(0x7fff), one = _mm256_set1_epi32(1),
                      quiet = _mm256_set1_epi32(64);
        size_t i = 0;
        for (; i + 16 <= n; i += 16) {
                __m256i r[2];
                for (int h = 0; h < 2; h++) {
                        __m256i u = _mm256_castps_si256(_mm256_loadu_ps(src + i + 8 * h));
                        __m256i hi = _mm256_srli_epi32(u, 16);
                        __m256i rounded = _mm256_srli_epi32(
                                _mm256_add_epi32(u,
                                                 _mm256_add_epi32(half, _mm256_and_si256(hi, one))),
                                16);
                        __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs), inf);
                        r[h] = _mm256_blendv_epi8(rounded, _mm256_or_si256(hi, quiet), nan);
                }
                /* 0..0xffff in 32-bit lanes: unsigned saturation keeps them; undo the
                 * per-lane interleave of the pack */
                __m256i p = _mm256_packus_epi32(r[0], r[1]);
                p = _mm256_permute4x64_epi64(p, _MM_SHUFFLE(3, 1, 2, 0));
                _mm256_storeu_si256((__m256i *)(y + i), p);
        }
        for (; i < n; i++)
                y[i] = ggml_fp32_to_bf16(src[i]);
}

void ggml_fp16_to_fp32_row_avx2(const ggml_fp16_t *src, float *dst, size_t n)
{
        size_t i = 0;
        for (; i + 8 <= n; i += 8)
                _mm256_storeu_ps(dst + i, load_f16(src + i));
        for (; i < n; i++)
                dst[i] = f16(src[i]);
}

void ggml_quantize_row_q8_0_avx2(const float *x, void *dst, size_t n)
{
        BlockQ8_0 *y = dst;
        const __m256 sign = _mm256_set1_ps(-0.0f);
        for (size_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
                __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8),
                       v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
                __m256 m = _mm256_max_ps(
                        _mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                        _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
                __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
                m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
                m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
                float amax = _mm_cvtss_f32(m4);
                float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
                y[i].d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
                __m256 mul = _mm256_set1_ps(id);
                __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(
                        _mm256_mul_ps(v0, mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
                __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(
                        _mm256_mul_ps(v1, mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
                __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(
                        _mm256_mul_ps(v2, mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
                __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(
                        _mm256_mul_ps(v3, mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
                /* pack 32-bit -> 16-bit -> 8-bit, then undo the lane interleave */
                i0 = _mm256_packs_epi32(i0, i1);
                i2 = _mm256_packs_epi32(i2, i3);
                i0 = _mm256_packs_epi16(i0, i2);
                i0 = _mm256_permutevar8x32_epi32(i0, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
                _mm256_storeu_si256((__m256i *)y[i].qs, i0);
        }
}

void ggml_quantize_row_q8_K_avx2(const float *src, void *dst, size_t n)
{
        /* Same rounding as the reference (round half to even, -127/max with max the
         * first element of largest magnitude), so results are bit-identical. */
        BlockQ8_K *y = dst;
        const __m256 sign = _mm256_set1_ps(-0.0f);
        for (size_t i = 0; i < n / QK_K; i++, src += QK_K) {
                __m256 m = _mm256_setzero_ps();
                for (int j = 0; j < QK_K; j += 8)
                        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(src + j)));
                __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
                m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
                m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
                float amax = _mm_cvtss_f32(m4), max = 0.0f;
                if (amax == 0.0f) {
                        memset(&y[i], 0, sizeof(y[i]));
                        continue;
                }
                for (int j = 0; j < QK_K; j++)
                        if (__builtin_fabsf(src[j]) == amax) {
                                max = src[j];
                                break;
                        }
                float iscale = -127.0f / max;
                __m256 vs = _mm256_set1_ps(iscale);
                const __m256i lim = _mm256_set1_epi32(127);
                for (int g = 0; g < QK_K / 16; g++) {
                        __m256i a = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(
                                                             _mm256_loadu_ps(src + 16 * g), vs)),
                                                     lim);
                        __m256i b =
                                _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(
                                                         _mm256_loadu_ps(src + 16 * g + 8), vs)),
                                                 lim);
                        __m256i sum = _mm256_add_epi32(a, b);
                        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum),
                                                   _mm256_extracti128_si256(sum, 1));
                        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(1, 0, 3, 2)));
                        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(2, 3, 0, 1)));
                        y[i].bsums[g] = (int16_t)_mm_cvtsi128_si32(s4);
                        __m256i p16 = _mm256_packs_epi32(a, b); /* lanes: a0-3 b0-3 | a4-7 b4-7 */
                        p16 = _mm256_permute4x64_epi64(p16, _MM_SHUFFLE(3, 1, 2, 0));
                        __m128i p8 = _mm_packs_epi16(_mm256_castsi256_si128(p16),
                                                     _mm256_extracti128_si256(p16, 1));
                        _mm_storeu_si128((__m128i *)(y[i].qs + 16 * g), p8);
                }
                y[i].d = 1.0f / iscale;
        }
}

float ggml_vec_dot_q8_0_q8_0_avx2(size_t n, const void *vx, const void *vy)
{
        const BlockQ8_0 *x = vx, *y = vy;
        __m256 acc = _mm256_setzero_ps();
        for (size_t i = 0; i < n / QK8_0; i++) {
                __m256i qx = _mm256_loadu_si256((const __m256i *)x[i].qs);
                __m256i qy = _mm256_loadu_si256((const __m256i *)y[i].qs);
                __m256 d = _mm256_set1_ps(f16(x[i].d) * f16(y[i].d));
                acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8(qx, qy)), acc);
        }
        return hsum_ps(acc);
}

float ggml_vec_dot_q4_0_q8_0_avx2(size_t n, const void *vx, const void *vy)
{
        const BlockQ4_0 *x = vx;
        const BlockQ8_0 *y = vy;
        __m256 acc = _mm256_setzero_ps();
        const __m256i off = _mm256_set1_epi8(8);
        for (size_t i = 0; i < n / QK4_0; i++) {
                __m256i qx = _mm256_sub_epi8(unpack_q4_0(x[i].qs), off);
                __m256i qy = _mm256_loadu_si256((const __m256i *)y[i].qs);
                __m256 d = _mm256_set1_ps(f16(x[i].d) * f16(y[i].d));
                acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8(qx, qy)), acc);
        }
        return hsum_ps(acc);
}

/* sum_j m[j] * (bsums[2j] + bsums[2j+1]) with the pair sums formed first. */
static inline int mins_dot_pairs(__m128i m16, const int16_t *bsums)
{
        __m128i b0 = _mm_loadu_si128((const __m128i *)bsums);
        __m128i b1 = _mm_loadu_si128((const __m128i *)(bsums + 8));
        __m128i p = _mm_madd_epi16(_mm_hadd_epi16(b0, b1), m16);
        p = _mm_add_epi32(p, _mm_shuffle_epi32(p, _MM_SHUFFLE(1, 0, 3, 2)));
        p = _mm_add_epi32(p, _mm_shuffle_epi32(p, _MM_SHUFFLE(2, 3, 0, 1)));
        return _mm_cvtsi128_si32(p);
}

static inline __m128i widen8(const uint8_t *b)
{
        uint64_t v;
        memcpy(&v, b, 8);
        return _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)v));
}

/* Q5_K: Q4_K's nibbles plus a fifth bit from qh (bit 2j for the low nibbles of the
 * j-th 32-byte group, bit 2j+1 for the high ones), values 0..31. */
static inline void unpack_q5_K(const BlockQ5_K *b, int j, __m256i hb, __m256i *lo, __m256i *hi)
{
        const __m256i mask = _mm256_set1_epi8(0xF), one = _mm256_set1_epi8(1);
        __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * j));
        /* hb is qh shifted right by 2j (16-bit lanes: the mask keeps each byte's own bit) */
        __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(hb, one), 4);
        __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 1), one), 4);
        *lo = _mm256_or_si256(_mm256_and_si256(q, mask), h0);
        *hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), mask), h1);
}

/* Q4_K and Q5_K share the block head (d, dmin, scales) and everything but the fifth
 * bit, so one kernel serves both; q5 is a constant, and each instance compiles to its
 * own loop. */
_Static_assert(offsetof(BlockQ5_K, d) == offsetof(BlockQ4_K, d) &&
                       offsetof(BlockQ5_K, dmin) == offsetof(BlockQ4_K, dmin) &&
                       offsetof(BlockQ5_K, scales) == offsetof(BlockQ4_K, scales),
               "Q4_K and Q5_K blocks start alike");

static inline const BlockQ4_K *k_head(const void *vx, size_t i, const bool q5)
{
        return q5 ? (const BlockQ4_K *)(const void *)((const BlockQ5_K *)vx + i)
                  : (const BlockQ4_K *)vx + i;
}

static inline __m256i k_high_bits(const void *vx, size_t i, const bool q5)
{
        return q5 ? _mm256_loadu_si256((const __m256i *)((const BlockQ5_K *)vx)[i].qh)
                  : _mm256_setzero_si256();
}

/* The j-th 32-byte group of block i as low and high values (unsigned bytes); hb (Q5_K's
 * qh) moves on to the next group's bits. */
static inline __attribute__((always_inline)) void
k_values(const void *vx, size_t i, int j, __m256i *hb, __m256i *lo, __m256i *hi, const bool q5)
{
        if (q5) {
                unpack_q5_K((const BlockQ5_K *)vx + i, j, *hb, lo, hi);
                *hb = _mm256_srli_epi16(*hb, 2);
                return;
        }
        const __m256i mask = _mm256_set1_epi8(0xF);
        __m256i q4 = _mm256_loadu_si256((const __m256i *)(((const BlockQ4_K *)vx)[i].qs + 32 * j));
        *lo = _mm256_and_si256(q4, mask);
        *hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), mask);
}

static inline __attribute__((always_inline)) float dot_k(size_t n, const void *vx, const void *vy,
                                                         const bool q5)
{
        const BlockQ8_K *y = vy;
        __m256 acc = _mm256_setzero_ps();
        float summ = 0.0f;

        for (size_t i = 0; i < n / QK_K; i++) {
                const BlockQ4_K *h = k_head(vx, i, q5);
                uint64_t sc8, m8;
                scales_mins_k4(h->scales, &sc8, &m8);
                const uint8_t *sc = (const uint8_t *)&sc8, *m = (const uint8_t *)&m8;
                float yd = y[i].d;
                summ += f16(h->dmin) * yd * mins_dot_pairs(widen8(m), y[i].bsums);

                __m256i hb = k_high_bits(vx, i, q5);
                __m256i isum = _mm256_setzero_si256();
                for (int j = 0; j < 4; j++) {
                        __m256i lo, hi;
                        k_values(vx, i, j, &hb, &lo, &hi, q5);
                        __m256i y0 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * j));
                        __m256i y1 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * j + 32));
                        /* Q5_K: 31 * 127 * 2 fits in 16 bits */
                        __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0),
                                                       _mm256_set1_epi16(sc[2 * j]));
                        __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1),
                                                       _mm256_set1_epi16(sc[2 * j + 1]));
                        isum = _mm256_add_epi32(isum, _mm256_add_epi32(p0, p1));
                }
                acc = _mm256_fmadd_ps(_mm256_set1_ps(f16(h->d) * yd), _mm256_cvtepi32_ps(isum),
                                      acc);
        }
        return hsum_ps(acc) - summ;
}

float ggml_vec_dot_q4_K_q8_K_avx2(size_t n, const void *vx, const void *vy)
{
        return dot_k(n, vx, vy, false);
}

float ggml_vec_dot_q5_K_q8_K_avx2(size_t n, const void *vx, const void *vy)
{
        return dot_k(n, vx, vy, true);
}

/* One half of a Q6_K block, 128 six-bit values as four registers of 32 unsigned bytes
 * (0..63; the -32 comes in with the products): low nibbles from ql, two high bits each
 * from qh. */
static inline void unpack_q6_K(const uint8_t *ql, const uint8_t *qh, __m256i v[4])
{
        const __m256i m4 = _mm256_set1_epi8(0xF), m2 = _mm256_set1_epi8(3);
        __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
        __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
        __m256i hb = _mm256_loadu_si256((const __m256i *)qh);
        v[0] = _mm256_or_si256(_mm256_and_si256(l0, m4),
                               _mm256_slli_epi16(_mm256_and_si256(hb, m2), 4));
        v[1] = _mm256_or_si256(
                _mm256_and_si256(l1, m4),
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m2), 4));
        v[2] = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m2), 4));
        v[3] = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m2), 4));
}

float ggml_vec_dot_q6_K_q8_K_avx2(size_t n, const void *vx, const void *vy)
{
        const BlockQ6_K *x = vx;
        const BlockQ8_K *y = vy;
        const __m256i m32 = _mm256_set1_epi8(32);
        __m256 acc = _mm256_setzero_ps();

        for (size_t i = 0; i < n / QK_K; i++) {
                const uint8_t *ql = x[i].ql, *qh = x[i].qh;
                const int8_t *q8 = y[i].qs, *sc = x[i].scales;
                __m256i isum = _mm256_setzero_si256();

                for (int h = 0; h < 2; h++) {
                        __m256i v[4];
                        unpack_q6_K(ql, qh, v);
                        for (int k = 0; k < 4; k++) {
                                __m256i yv = _mm256_loadu_si256((const __m256i *)(q8 + 32 * k));
                                __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(v[k], yv),
                                                             _mm256_maddubs_epi16(m32, yv));
                                __m256i s = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1]),
                                                             _mm_set1_epi16(sc[2 * k]));
                                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, s));
                        }
                        ql += 64;
                        qh += 32;
                        q8 += 128;
                        sc += 8;
                }
                acc = _mm256_fmadd_ps(_mm256_set1_ps(f16(x[i].d) * y[i].d),
                                      _mm256_cvtepi32_ps(isum), acc);
        }
        return hsum_ps(acc);
}

/* ---- one weight row against four activation rows ---- */

#define Y(k, T) ((const T *)((const uint8_t *)vy + (k)*ys))

/* One weight row against four activation rows, for the float-like types. */
#define DEFINE_VEC_DOT4_FLOAT(name, T, LOAD, CONV)                                                 \
        void name(size_t n, const void *vx, const void *vy, size_t ys, float *out)                 \
        {                                                                                          \
                const T *x = vx;                                                                   \
                const T *y0 = Y(0, T), *y1 = Y(1, T), *y2 = Y(2, T), *y3 = Y(3, T);                \
                __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(),                         \
                       a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();                         \
                size_t i = 0;                                                                      \
                for (; i + 8 <= n; i += 8) {                                                       \
                        __m256 w = LOAD(x + i);                                                    \
                        a0 = _mm256_fmadd_ps(w, LOAD(y0 + i), a0);                                 \
                        a1 = _mm256_fmadd_ps(w, LOAD(y1 + i), a1);                                 \
                        a2 = _mm256_fmadd_ps(w, LOAD(y2 + i), a2);                                 \
                        a3 = _mm256_fmadd_ps(w, LOAD(y3 + i), a3);                                 \
                }                                                                                  \
                out[0] = hsum_ps(a0);                                                              \
                out[1] = hsum_ps(a1);                                                              \
                out[2] = hsum_ps(a2);                                                              \
                out[3] = hsum_ps(a3);                                                              \
                for (; i < n; i++) {                                                               \
                        float w = CONV(x[i]);                                                      \
                        out[0] += w * CONV(y0[i]);                                                 \
                        out[1] += w * CONV(y1[i]);                                                 \
                        out[2] += w * CONV(y2[i]);                                                 \
                        out[3] += w * CONV(y3[i]);                                                 \
                }                                                                                  \
        }

DEFINE_VEC_DOT4_FLOAT(ggml_vec_dot4_f16_avx2, ggml_fp16_t, load_f16, f16)

DEFINE_VEC_DOT4_FLOAT(ggml_vec_dot4_bf16_avx2, ggml_bf16_t, load_bf16, bf16)

/* ax = |x| and the signs of x moved onto each y: maddubs needs an unsigned operand. */
#define DOT4_Q8_BLOCKS(UNPACK, DX)                                                                 \
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),            \
                         _mm256_setzero_ps()};                                                     \
        for (size_t i = 0; i < n / 32; i++) {                                                      \
                __m256i qx = UNPACK;                                                               \
                __m256i ax = _mm256_sign_epi8(qx, qx);                                             \
                float dx = DX;                                                                     \
                for (int k = 0; k < 4; k++) {                                                      \
                        const BlockQ8_0 *yb = Y(k, BlockQ8_0) + i;                                 \
                        __m256i sy =                                                               \
                                _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)yb->qs), qx); \
                        __m256i p = sum_i16_pairs(_mm256_maddubs_epi16(ax, sy));                   \
                        acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(dx * f16(yb->d)),                  \
                                                 _mm256_cvtepi32_ps(p), acc[k]);                   \
                }                                                                                  \
        }                                                                                          \
        for (int k = 0; k < 4; k++)                                                                \
                out[k] = hsum_ps(acc[k]);

void ggml_vec_dot4_q8_0_q8_0_avx2(size_t n, const void *vx, const void *vy, size_t ys, float *out)
{
        const BlockQ8_0 *x = vx;
        DOT4_Q8_BLOCKS(_mm256_loadu_si256((const __m256i *)x[i].qs), f16(x[i].d))
}

void ggml_vec_dot4_q4_0_q8_0_avx2(size_t n, const void *vx, const void *vy, size_t ys, float *out)
{
        const BlockQ4_0 *x = vx;
        const __m256i off = _mm256_set1_epi8(8);
        DOT4_Q8_BLOCKS(_mm256_sub_epi8(unpack_q4_0(x[i].qs), off), f16(x[i].d))
}

static inline __attribute__((always_inline)) void dot4_k(size_t n, const void *vx, const void *vy,
                                                         size_t ys, float *out, const bool q5)
{
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                         _mm256_setzero_ps()};
        float summ[4] = {};

        for (size_t i = 0; i < n / QK_K; i++) {
                const BlockQ4_K *h = k_head(vx, i, q5);
                uint64_t sc8, m8;
                scales_mins_k4(h->scales, &sc8, &m8);
                const uint8_t *sc = (const uint8_t *)&sc8, *m = (const uint8_t *)&m8;
                float d = f16(h->d), dmin = f16(h->dmin);
                __m256i isum[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(),
                                   _mm256_setzero_si256(), _mm256_setzero_si256()};
                __m128i m16 = widen8(m);
                for (int k = 0; k < 4; k++) {
                        const BlockQ8_K *yb = Y(k, BlockQ8_K) + i;
                        summ[k] += dmin * yb->d * mins_dot_pairs(m16, yb->bsums);
                }
                __m256i hb = k_high_bits(vx, i, q5);
                for (int j = 0; j < 4; j++) {
                        __m256i lo, hi;
                        k_values(vx, i, j, &hb, &lo, &hi, q5);
                        __m256i s0 = _mm256_set1_epi16(sc[2 * j]),
                                s1 = _mm256_set1_epi16(sc[2 * j + 1]);
                        for (int k = 0; k < 4; k++) {
                                const int8_t *q8 = (Y(k, BlockQ8_K) + i)->qs + 64 * j;
                                __m256i p0 = _mm256_madd_epi16(
                                        _mm256_maddubs_epi16(
                                                lo, _mm256_loadu_si256((const __m256i *)q8)),
                                        s0);
                                __m256i p1 = _mm256_madd_epi16(
                                        _mm256_maddubs_epi16(
                                                hi, _mm256_loadu_si256((const __m256i *)(q8 + 32))),
                                        s1);
                                isum[k] = _mm256_add_epi32(isum[k], _mm256_add_epi32(p0, p1));
                        }
                }
                for (int k = 0; k < 4; k++)
                        acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(d * (Y(k, BlockQ8_K) + i)->d),
                                                 _mm256_cvtepi32_ps(isum[k]), acc[k]);
        }
        for (int k = 0; k < 4; k++)
                out[k] = hsum_ps(acc[k]) - summ[k];
}

void ggml_vec_dot4_q4_K_q8_K_avx2(size_t n, const void *vx, const void *vy, size_t ys, float *out)
{
        dot4_k(n, vx, vy, ys, out, false);
}

void ggml_vec_dot4_q5_K_q8_K_avx2(size_t n, const void *vx, const void *vy, size_t ys, float *out)
{
        dot4_k(n, vx, vy, ys, out, true);
}

void ggml_vec_dot4_q6_K_q8_K_avx2(size_t n, const void *vx, const void *vy, size_t ys, float *out)
{
        const BlockQ6_K *x = vx;
        const __m256i m32 = _mm256_set1_epi8(32);
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                         _mm256_setzero_ps()};

        for (size_t i = 0; i < n / QK_K; i++) {
                const uint8_t *ql = x[i].ql, *qh = x[i].qh;
                const int8_t *sc = x[i].scales;
                __m256i isum[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(),
                                   _mm256_setzero_si256(), _mm256_setzero_si256()};
                for (int h = 0; h < 2; h++) {
                        __m256i v[4], s[4];
                        unpack_q6_K(ql, qh, v);
                        for (int q = 0; q < 4; q++)
                                s[q] = _mm256_set_m128i(_mm_set1_epi16(sc[2 * q + 1]),
                                                        _mm_set1_epi16(sc[2 * q]));
                        for (int k = 0; k < 4; k++) {
                                const int8_t *q8 = (Y(k, BlockQ8_K) + i)->qs + 128 * h;
                                for (int q = 0; q < 4; q++) {
                                        __m256i yv =
                                                _mm256_loadu_si256((const __m256i *)(q8 + 32 * q));
                                        __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(v[q], yv),
                                                                     _mm256_maddubs_epi16(m32, yv));
                                        isum[k] = _mm256_add_epi32(isum[k],
                                                                   _mm256_madd_epi16(p, s[q]));
                                }
                        }
                        ql += 64;
                        qh += 32;
                        sc += 8;
                }
                float d = f16(x[i].d);
                for (int k = 0; k < 4; k++)
                        acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(d * (Y(k, BlockQ8_K) + i)->d),
                                                 _mm256_cvtepi32_ps(isum[k]), acc[k]);
        }
        for (int k = 0; k < 4; k++)
                out[k] = hsum_ps(acc[k]);
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else /* not x86: the dispatcher never calls these */

#define NOT_X86(name, ...)                                                                         \
        float name(size_t n, const void *x, const void *y)                                         \
        {                                                                                          \
                return 0.0f;                                                                       \
        }
NOT_X86(ggml_vec_dot_f32_avx2)
NOT_X86(ggml_vec_dot_f16_avx2)
NOT_X86(ggml_vec_dot_q8_0_q8_0_avx2)
NOT_X86(ggml_vec_dot_q4_0_q8_0_avx2)
NOT_X86(ggml_vec_dot_q4_K_q8_K_avx2)
NOT_X86(ggml_vec_dot_q6_K_q8_K_avx2)
NOT_X86(ggml_vec_dot_bf16_avx2)
NOT_X86(ggml_vec_dot_q5_K_q8_K_avx2)
void ggml_vec_mad_f16_avx2(size_t n, float *y, const ggml_fp16_t *x, float s)
{
        ggml_vec_mad_f16_ref(n, y, x, s);
}
#define NOT_X86_4(name)                                                                            \
        void name(size_t n, const void *x, const void *y, size_t ys, float *out)                   \
        {                                                                                          \
        }
NOT_X86_4(ggml_vec_dot4_f16_avx2)
NOT_X86_4(ggml_vec_dot4_q8_0_q8_0_avx2)
NOT_X86_4(ggml_vec_dot4_q4_0_q8_0_avx2)
NOT_X86_4(ggml_vec_dot4_q4_K_q8_K_avx2)
NOT_X86_4(ggml_vec_dot4_q6_K_q8_K_avx2)
NOT_X86_4(ggml_vec_dot4_bf16_avx2)
NOT_X86_4(ggml_vec_dot4_q5_K_q8_K_avx2)
void ggml_fp32_to_fp16_row_avx2(const float *src, void *dst, size_t n)
{
        ggml_fp32_to_fp16_row(src, dst, n);
}
void ggml_quantize_row_q8_0_avx2(const float *src, void *dst, size_t n)
{
        ggml_quantize_row_q8_0_ref(src, dst, n);
}
void ggml_fp32_to_bf16_row_avx2(const float *src, void *dst, size_t n)
{
        ggml_fp32_to_bf16_row(src, dst, n);
}
void ggml_fp16_to_fp32_row_avx2(const ggml_fp16_t *src, float *dst, size_t n)
{
        for (size_t i = 0; i < n; i++)
                dst[i] = ggml_fp16_to_fp32(src[i]);
}
void ggml_quantize_row_q8_K_avx2(const float *src, void *dst, size_t n)
{
        ggml_quantize_row_q8_K_ref(src, dst, n);
}
#endif
