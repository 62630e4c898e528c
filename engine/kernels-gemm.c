/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Register-tiled matrix-matrix kernels for prompt processing and batched decoding: four
 * weight rows against four activation rows per call, so that every weight block is
 * unpacked once for four tokens and every activation block loaded once for four rows.
 * They use AVX-512 VNNI (vpdpbusd: unsigned x signed bytes summed into 32-bit lanes;
 * vpdpwssd: 16-bit pairs summed into 32-bit lanes), one instruction where the
 * four-row matrix-vector kernels need three or four. Only called when
 * ggml_cpu_has_avx512_vnni() said yes; same results as the reference kernels up to
 * summation order (the integer parts are exact). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ggml-types.h"

bool ggml_cpu_has_avx512_vnni(void)
{
#if defined(__x86_64__)
        __builtin_cpu_init();
        return ggml_cpu_has_avx512() && __builtin_cpu_supports("avx512vnni");
#else
        return false;
#endif
}

#if defined(__x86_64__)

#include <immintrin.h>
#if defined(__clang__)
#pragma clang attribute push(                                                                      \
        __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))),             \
        apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#endif

#define KERNELS_X86_AVX512
#include "engine/kernels-x86.h"

/* An unaligned 32-bit load the compiler may fold into a broadcast operand ({1to16}). */
typedef int32_t __attribute__((aligned(1), may_alias)) i32u;

#define ROW(r, T) ((const T *)((const uint8_t *)vx + (r)*xs))
#define TOK(t, T) ((const T *)((const uint8_t *)vy + (t)*ys))

static inline void store_tile(__m512 acc[4][4], float *out, size_t os)
{
        for (int t = 0; t < 4; t++)
                for (int r = 0; r < 4; r++)
                        out[t * os + r] = _mm512_reduce_add_ps(acc[r][t]);
}

/* Weights of 32-value blocks with one F16 scale (Q8_0, Q4_0) against Q8_0 activations,
 * two blocks (64 values, one 512-bit register) at a time.
 * Q4_0: the nibbles q are unsigned, so dpbusd(q, y) directly, and the offset -8 comes in
 * as a starting value of -8 * sum(y) per four-byte group, computed once per token.
 * Q8_0: weights are signed, so the activations are made unsigned (y + 128, a sign-bit
 * flip) and the start value -128 * sum(w) is computed once per row. */
static inline __attribute__((always_inline)) void q8_tile(size_t n, const void *vx, size_t xs,
                                                          const void *vy, size_t ys, float *out,
                                                          size_t os, const bool q4)
{
        const __m512i c80 = _mm512_set1_epi8((char)0x80), c8 = _mm512_set1_epi8(8);
        const __m512i zero = _mm512_setzero_si512();
        size_t nb = n / QK8_0, i = 0;
        __m512 acc[4][4];

        for (int r = 0; r < 4; r++)
                for (int t = 0; t < 4; t++)
                        acc[r][t] = _mm512_setzero_ps();
        for (; i + 2 <= nb; i += 2) {
                __m512i w[4], base[4];
                __m512 dx[4];
                for (int r = 0; r < 4; r++) {
                        if (q4) {
                                const BlockQ4_0 *x = ROW(r, BlockQ4_0) + i;
                                w[r] = join256(unpack_q4_0(x[0].qs), unpack_q4_0(x[1].qs));
                                dx[r] = scale2(f16(x[0].d), f16(x[1].d));
                        } else {
                                const BlockQ8_0 *x = ROW(r, BlockQ8_0) + i;
                                w[r] = join256(_mm256_loadu_si256((const __m256i *)x[0].qs),
                                               _mm256_loadu_si256((const __m256i *)x[1].qs));
                                base[r] = _mm512_sub_epi32(zero,
                                                           _mm512_dpbusd_epi32(zero, c80, w[r]));
                                dx[r] = scale2(f16(x[0].d), f16(x[1].d));
                        }
                }
                for (int t = 0; t < 4; t++) {
                        const BlockQ8_0 *y = TOK(t, BlockQ8_0) + i;
                        __m512i yv = join256(_mm256_loadu_si256((const __m256i *)y[0].qs),
                                             _mm256_loadu_si256((const __m256i *)y[1].qs));
                        __m512 dy = scale2(f16(y[0].d), f16(y[1].d));
                        if (q4) {
                                __m512i b =
                                        _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, c8, yv));
                                for (int r = 0; r < 4; r++) {
                                        __m512i p = _mm512_dpbusd_epi32(b, w[r], yv);
                                        acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p),
                                                                    _mm512_mul_ps(dx[r], dy),
                                                                    acc[r][t]);
                                }
                        } else {
                                __m512i yu = _mm512_xor_si512(yv, c80);
                                for (int r = 0; r < 4; r++) {
                                        __m512i p = _mm512_dpbusd_epi32(base[r], yu, w[r]);
                                        acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p),
                                                                    _mm512_mul_ps(dx[r], dy),
                                                                    acc[r][t]);
                                }
                        }
                }
        }
        store_tile(acc, out, os);
        if (i < nb) /* an odd block count: the last block row by row */
                for (int r = 0; r < 4; r++) {
                        float tail[4];
                        if (q4)
                                ggml_vec_dot4_q4_0_q8_0_avx2(QK8_0, ROW(r, BlockQ4_0) + i,
                                                             TOK(0, BlockQ8_0) + i, ys, tail);
                        else
                                ggml_vec_dot4_q8_0_q8_0_avx2(QK8_0, ROW(r, BlockQ8_0) + i,
                                                             TOK(0, BlockQ8_0) + i, ys, tail);
                        for (int t = 0; t < 4; t++)
                                out[t * os + r] += tail[t];
                }
}

void ggml_gemm4_q4_0_q8_0_vnni(size_t n, const void *vx, size_t xs, const void *vy, size_t ys,
                               float *out, size_t os)
{
        q8_tile(n, vx, xs, vy, ys, out, os, true);
}

void ggml_gemm4_q8_0_q8_0_vnni(size_t n, const void *vx, size_t xs, const void *vy, size_t ys,
                               float *out, size_t os)
{
        q8_tile(n, vx, xs, vy, ys, out, os, false);
}

/* Q4_K against Q8_K. Per 64 values: the 32 bytes of nibbles give sub-blocks 2j (low) and
 * 2j+1 (high) in one register; maddubs makes 16-bit pair sums, and dpwssd multiplies them
 * by the sub-block scales and accumulates, exactly. The minimums' term, sum over
 * sub-blocks of m * sum(y), is done for all four tokens in one register: lanes 4t..4t+3
 * belong to token t. */
void ggml_gemm4_q4_K_q8_K_vnni(size_t n, const void *vx, size_t xs, const void *vy, size_t ys,
                               float *out, size_t os)
{
        const __m512i mask = _mm512_set1_epi8(0xF);
        const __m512i shift = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1);
        const __m512i idx[4] = {
                join256(_mm256_set1_epi16(0), _mm256_set1_epi16(1)),
                join256(_mm256_set1_epi16(2), _mm256_set1_epi16(3)),
                join256(_mm256_set1_epi16(4), _mm256_set1_epi16(5)),
                join256(_mm256_set1_epi16(6), _mm256_set1_epi16(7)),
        };
        __m512 acc[4][4], macc[4];

        for (int r = 0; r < 4; r++) {
                macc[r] = _mm512_setzero_ps();
                for (int t = 0; t < 4; t++)
                        acc[r][t] = _mm512_setzero_ps();
        }
        for (size_t i = 0; i < n / QK_K; i++) {
                __m512i sc16[4];
                float d[4], dy[4];
                /* pair sums of the 16 per-16 activation sums: 8 per token, 4 tokens */
                __m128i bs[4];
                for (int t = 0; t < 4; t++) {
                        const BlockQ8_K *y = TOK(t, BlockQ8_K) + i;
                        bs[t] = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)y->bsums),
                                               _mm_loadu_si128((const __m128i *)(y->bsums + 8)));
                        dy[t] = y->d;
                }
                __m512i bsall = _mm512_inserti32x4(
                        _mm512_inserti32x4(
                                _mm512_inserti32x4(_mm512_castsi128_si512(bs[0]), bs[1], 1), bs[2],
                                2),
                        bs[3], 3);
                __m512 dy4 = _mm512_insertf32x4(
                        _mm512_insertf32x4(
                                _mm512_insertf32x4(_mm512_castps128_ps512(_mm_set1_ps(dy[0])),
                                                   _mm_set1_ps(dy[1]), 1),
                                _mm_set1_ps(dy[2]), 2),
                        _mm_set1_ps(dy[3]), 3);
                for (int r = 0; r < 4; r++) {
                        const BlockQ4_K *x = ROW(r, BlockQ4_K) + i;
                        uint64_t sc8, m8;
                        scales_mins_k4(x->scales, &sc8, &m8);
                        d[r] = f16(x->d);
                        sc16[r] = _mm512_castsi128_si512(
                                _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc8)));
                        __m512i m16 = _mm512_broadcast_i32x4(
                                _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)m8)));
                        __m512i mp = _mm512_madd_epi16(bsall, m16);
                        macc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(mp),
                                                  _mm512_mul_ps(_mm512_set1_ps(f16(x->dmin)), dy4),
                                                  macc[r]);
                }
                __m512i isum[4][4];
                for (int r = 0; r < 4; r++)
                        for (int t = 0; t < 4; t++)
                                isum[r][t] = _mm512_setzero_si512();
                for (int j = 0; j < 4; j++) {
                        __m512i w[4], s[4];
                        for (int r = 0; r < 4; r++) {
                                __m512i q4 = _mm512_broadcast_i64x4(_mm256_loadu_si256(
                                        (const __m256i *)((ROW(r, BlockQ4_K) + i)->qs + 32 * j)));
                                w[r] = _mm512_and_si512(_mm512_srlv_epi16(q4, shift), mask);
                                s[r] = _mm512_permutexvar_epi16(idx[j], sc16[r]);
                        }
                        for (int t = 0; t < 4; t++) {
                                __m512i yv = _mm512_loadu_si512(
                                        (const void *)((TOK(t, BlockQ8_K) + i)->qs + 64 * j));
                                for (int r = 0; r < 4; r++)
                                        isum[r][t] = _mm512_dpwssd_epi32(
                                                isum[r][t], _mm512_maddubs_epi16(w[r], yv), s[r]);
                        }
                }
                for (int r = 0; r < 4; r++)
                        for (int t = 0; t < 4; t++)
                                acc[r][t] =
                                        _mm512_fmadd_ps(_mm512_set1_ps(d[r] * dy[t]),
                                                        _mm512_cvtepi32_ps(isum[r][t]), acc[r][t]);
        }
        for (int r = 0; r < 4; r++) {
                float m[16];
                _mm512_storeu_ps(m, macc[r]);
                for (int t = 0; t < 4; t++)
                        out[t * os + r] = _mm512_reduce_add_ps(acc[r][t]) -
                                (m[4 * t] + m[4 * t + 1] + m[4 * t + 2] + m[4 * t + 3]);
        }
}

/* F16 weights against F16 activations, 16 values per step. */
void ggml_gemm4_f16_vnni(size_t n, const void *vx, size_t xs, const void *vy, size_t ys, float *out,
                         size_t os)
{
        __m512 acc[4][4];
        size_t i = 0;

        for (int r = 0; r < 4; r++)
                for (int t = 0; t < 4; t++)
                        acc[r][t] = _mm512_setzero_ps();
        for (; i + 16 <= n; i += 16) {
                __m512 w[4];
                for (int r = 0; r < 4; r++)
                        w[r] = _mm512_cvtph_ps(
                                _mm256_loadu_si256((const __m256i *)(ROW(r, ggml_fp16_t) + i)));
                for (int t = 0; t < 4; t++) {
                        __m512 yv = _mm512_cvtph_ps(
                                _mm256_loadu_si256((const __m256i *)(TOK(t, ggml_fp16_t) + i)));
                        for (int r = 0; r < 4; r++)
                                acc[r][t] = _mm512_fmadd_ps(w[r], yv, acc[r][t]);
                }
        }
        store_tile(acc, out, os);
        if (i < n)
                for (int r = 0; r < 4; r++) {
                        float tail[4];
                        ggml_vec_dot4_f16_avx2(n - i, ROW(r, ggml_fp16_t) + i,
                                               (const uint8_t *)vy + i * sizeof(ggml_fp16_t), ys,
                                               tail);
                        for (int t = 0; t < 4; t++)
                                out[t * os + r] += tail[t];
                }
}

/* F16 rows against F32 activations (already rounded to F16, so the products are the
 * reference's), R <= 3 rows by T <= 8 tokens in one pass over the rows: for batched
 * decoding, where the rows stream from memory once per step and every row must meet all
 * the tokens while it is in a register. 24 accumulators, three weight registers and one
 * activation register. The weights are prefetched into L1 a kilobyte ahead and into L2
 * eight kilobytes ahead: eight-sequence decoding of the 110M F16 model ran at 660 tok/s
 * without either, 800-860 with the first, 900-980 with both (1B: 75 -> 88). */
static inline __attribute__((always_inline)) void wide_step(const uint8_t *vx, size_t xs,
                                                            const float *y, size_t ys, size_t i,
                                                            __m512 acc[3][8], const int R,
                                                            const int T)
{
        __m512 w[3];
        for (int r = 0; r < R; r++)
                w[r] = _mm512_cvtph_ps(
                        _mm256_loadu_si256((const __m256i *)(ROW(r, ggml_fp16_t) + i)));
        for (int t = 0; t < T; t++) {
                __m512 yv = _mm512_loadu_ps(y + t * ys + i);
                for (int r = 0; r < R; r++)
                        acc[r][t] = _mm512_fmadd_ps(w[r], yv, acc[r][t]);
        }
}

static inline __attribute__((always_inline)) void wide_f16(size_t n, const uint8_t *vx, size_t xs,
                                                           const float *y, size_t ys, float *out,
                                                           size_t os, const int R, const int T)
{
        __m512 acc[3][8];
        size_t i = 0;

        for (int r = 0; r < R; r++)
                for (int t = 0; t < T; t++)
                        acc[r][t] = _mm512_setzero_ps();
        for (; i + 32 <= n; i += 32) {
                for (int r = 0; r < R; r++) {
                        _mm_prefetch((const char *)(ROW(r, ggml_fp16_t) + i) + 1024, _MM_HINT_T0);
                        _mm_prefetch((const char *)(ROW(r, ggml_fp16_t) + i) + 8192, _MM_HINT_T1);
                }
                wide_step(vx, xs, y, ys, i, acc, R, T);
                wide_step(vx, xs, y, ys, i + 16, acc, R, T);
        }
        if (i + 16 <= n) {
                wide_step(vx, xs, y, ys, i, acc, R, T);
                i += 16;
        }
        for (int r = 0; r < R; r++)
                for (int t = 0; t < T; t++) {
                        float sum = _mm512_reduce_add_ps(acc[r][t]);
                        for (size_t k = i; k < n; k++)
                                sum += f16(ROW(r, ggml_fp16_t)[k]) * y[t * ys + k];
                        out[t * os + r] = sum;
                }
}

#define WIDE_T(R)                                                                                  \
        switch (nt) {                                                                              \
        case 1:                                                                                    \
                return wide_f16(n, vx, xs, y, ys, out, os, R, 1);                                  \
        case 2:                                                                                    \
                return wide_f16(n, vx, xs, y, ys, out, os, R, 2);                                  \
        case 3:                                                                                    \
                return wide_f16(n, vx, xs, y, ys, out, os, R, 3);                                  \
        case 4:                                                                                    \
                return wide_f16(n, vx, xs, y, ys, out, os, R, 4);                                  \
        case 5:                                                                                    \
                return wide_f16(n, vx, xs, y, ys, out, os, R, 5);                                  \
        case 6:                                                                                    \
                return wide_f16(n, vx, xs, y, ys, out, os, R, 6);                                  \
        case 7:                                                                                    \
                return wide_f16(n, vx, xs, y, ys, out, os, R, 7);                                  \
        default:                                                                                   \
                return wide_f16(n, vx, xs, y, ys, out, os, R, 8);                                  \
        }

void ggml_gemm_wide_f16_avx512(size_t n, const void *vx, size_t xs, size_t nr, const float *y,
                               size_t ys, size_t nt, float *out, size_t os)
{
        if (nr >= 3)
                WIDE_T(3)
        else if (nr == 2)
                WIDE_T(2)
        else
                WIDE_T(1)
}

/* ---- 16 rows interleaved (Q4_0, Q8_0): see ggml_pack16() ---- */

/* Sixteen rows (one 32-bit lane each) against nt <= 8 tokens, one block at a time: the
 * weight register k holds bytes 4k..4k+3 of the block of every row, the activations'
 * bytes 4k..4k+3 are broadcast, and vpdpbusd accumulates each row's dot product in its
 * own lane. Weights are the unsigned operand (Q4_0 nibbles, Q8_0 bytes + 128); the start
 * value -off * sum(y) of each token's block removes the offset. One scale multiply per
 * block serves sixteen rows, and the sixteen results of a token are one store. */
static inline __attribute__((always_inline)) void
gemm16_q8(size_t nb, const uint8_t *px, const uint8_t *vy, size_t ys, const int32_t *ysum,
          size_t yss, float *out, size_t os, const int T, const bool q4)
{
        const size_t bs = q4 ? 32 + 4 * 64 : 32 + 8 * 64;
        const int32_t off = q4 ? -8 : -128;
        const __m512i m4 = _mm512_set1_epi8(0xF);
        __m512 acc[16];

        for (int t = 0; t < T; t++)
                acc[t] = _mm512_setzero_ps();
        for (size_t i = 0; i < nb; i++) {
                const uint8_t *b = px + i * bs;
                /* decoding streams the weights from memory: ask for them four blocks
                 * ahead into L1 and, for four tokens or more, sixteen blocks ahead into
                 * L2 (eight sequences: Q4_0 +17% on the 110M model, +38% on the 1B; Q8_0
                 * +20%, +13%; for one token or two or three it did not pay, and the same
                 * in the Q4_K kernel cost 8-29%). Past the end it is harmless:
                 * prefetches do not fault. */
                for (size_t l = 0; l < bs; l += 64) {
                        _mm_prefetch((const char *)(b + 4 * bs + l), _MM_HINT_T0);
                        if (T >= 4)
                                _mm_prefetch((const char *)(b + 16 * bs + l), _MM_HINT_T1);
                }
                __m512 dx = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)b));
                __m512i w[8];
                if (q4)
                        for (int k = 0; k < 4; k++) {
                                __m512i p = _mm512_loadu_si512((const void *)(b + 32 + 64 * k));
                                w[k] = _mm512_and_si512(p, m4);
                                w[k + 4] = _mm512_and_si512(_mm512_srli_epi16(p, 4), m4);
                        }
                else
                        for (int k = 0; k < 8; k++)
                                w[k] = _mm512_loadu_si512((const void *)(b + 32 + 64 * k));
                for (int t = 0; t < T; t++) {
                        const BlockQ8_0 *y = (const BlockQ8_0 *)(vy + t * ys) + i;
                        const i32u *q = (const i32u *)y->qs;
                        __m512i p0 = _mm512_set1_epi32(off * ysum[t * yss + i]);
                        __m512i p1 = _mm512_setzero_si512();
                        for (int k = 0; k < 4; k++) {
                                p0 = _mm512_dpbusd_epi32(p0, w[k], _mm512_set1_epi32(q[k]));
                                p1 = _mm512_dpbusd_epi32(p1, w[k + 4], _mm512_set1_epi32(q[k + 4]));
                        }
                        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(p0, p1)),
                                                 _mm512_mul_ps(dx, _mm512_set1_ps(f16(y->d))),
                                                 acc[t]);
                }
        }
        for (int t = 0; t < T; t++)
                _mm512_storeu_ps(out + t * os, acc[t]);
}

#define GEMM16_CASES(q4)                                                                           \
        if (nt >= 16)                                                                              \
                return gemm16_q8(nb, vx, vy, ys, ysum, yss, out, os, 16, q4);                      \
        if (nt > 8) {                                                                              \
                gemm16_q8(nb, vx, vy, ys, ysum, yss, out, os, 8, q4);                              \
                vy = (const uint8_t *)vy + 8 * ys;                                                 \
                ysum += 8 * yss;                                                                   \
                out += 8 * os;                                                                     \
                nt -= 8;                                                                           \
        }                                                                                          \
        switch (nt) {                                                                              \
        case 1:                                                                                    \
                return gemm16_q8(nb, vx, vy, ys, ysum, yss, out, os, 1, q4);                       \
        case 2:                                                                                    \
                return gemm16_q8(nb, vx, vy, ys, ysum, yss, out, os, 2, q4);                       \
        case 3:                                                                                    \
                return gemm16_q8(nb, vx, vy, ys, ysum, yss, out, os, 3, q4);                       \
        case 4:                                                                                    \
                return gemm16_q8(nb, vx, vy, ys, ysum, yss, out, os, 4, q4);                       \
        case 5:                                                                                    \
                return gemm16_q8(nb, vx, vy, ys, ysum, yss, out, os, 5, q4);                       \
        case 6:                                                                                    \
                return gemm16_q8(nb, vx, vy, ys, ysum, yss, out, os, 6, q4);                       \
        case 7:                                                                                    \
                return gemm16_q8(nb, vx, vy, ys, ysum, yss, out, os, 7, q4);                       \
        default:                                                                                   \
                return gemm16_q8(nb, vx, vy, ys, ysum, yss, out, os, 8, q4);                       \
        }

void ggml_gemm16_q4_0_q8_0_vnni(size_t n, const void *vx, const void *vy, size_t ys,
                                const int32_t *ysum, size_t yss, size_t nt, float *out, size_t os)
{
        size_t nb = n / QK8_0;
        GEMM16_CASES(true)
}

void ggml_gemm16_q8_0_q8_0_vnni(size_t n, const void *vx, const void *vy, size_t ys,
                                const int32_t *ysum, size_t yss, size_t nt, float *out, size_t os)
{
        size_t nb = n / QK8_0;
        GEMM16_CASES(false)
}

/* Q4_K, 16 rows interleaved (see ggml_pack16()): per 256-value block, each row's 32-value
 * sub-block dot product comes from eight vpdpbusd in its lane, then is scaled in float by
 * d * scale (exact products, float sums); the minimums' term uses 16-bit pairs of
 * minimums against the activations' pair sums (ggml_q8_K_pair_sums()), two vpdpwssd. */
static inline __attribute__((always_inline)) void gemm16_q4k(size_t nsb, const uint8_t *px,
                                                             const uint8_t *vy, size_t ys,
                                                             const int32_t *ysum, size_t yss,
                                                             float *out, size_t os, const int T)
{
        const size_t bs = 32 + 32 + 128 + 128 + 2048;
        const __m512i m4 = _mm512_set1_epi8(0xF);
        __m512 acc[8];

        for (int t = 0; t < T; t++)
                acc[t] = _mm512_setzero_ps();
        for (size_t i = 0; i < nsb; i++) {
                const uint8_t *b = px + i * bs;
                const uint8_t *sc = b + 64, *mn = b + 192, *qs = b + 320;
                /* decoding streams the weights from memory: ask for them two blocks
                 * ahead (past the end it is harmless, prefetches do not fault) */
                for (size_t l = 0; l < bs; l += 64)
                        _mm_prefetch((const char *)(b + 2 * bs + l), _MM_HINT_T0);
                __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)b));
                __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(b + 32)));
                __m512i mp[4];
                for (int q = 0; q < 4; q++)
                        mp[q] = _mm512_or_si512(
                                _mm512_cvtepu8_epi32(
                                        _mm_loadu_si128((const __m128i *)(mn + 32 * q))),
                                _mm512_slli_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128(
                                                          (const __m128i *)(mn + 32 * q + 16))),
                                                  16));
                for (int t = 0; t < T; t++) {
                        const BlockQ8_K *y = (const BlockQ8_K *)(vy + t * ys) + i;
                        const int32_t *bp = ysum + t * yss + 4 * i;
                        __m512i ms = _mm512_setzero_si512();
                        for (int q = 0; q < 4; q++)
                                ms = _mm512_dpwssd_epi32(ms, mp[q], _mm512_set1_epi32(bp[q]));
                        acc[t] =
                                _mm512_fnmadd_ps(_mm512_cvtepi32_ps(ms),
                                                 _mm512_mul_ps(dmin, _mm512_set1_ps(y->d)), acc[t]);
                }
                for (int jj = 0; jj < 4; jj++) {
                        __m512i wl[8], wh[8];
                        for (int k = 0; k < 8; k++) {
                                __m512i p =
                                        _mm512_loadu_si512((const void *)(qs + (8 * jj + k) * 64));
                                wl[k] = _mm512_and_si512(p, m4);
                                wh[k] = _mm512_and_si512(_mm512_srli_epi16(p, 4), m4);
                        }
                        __m512 s0 = _mm512_mul_ps(
                                _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(
                                        _mm_loadu_si128((const __m128i *)(sc + 32 * jj)))),
                                d);
                        __m512 s1 = _mm512_mul_ps(
                                _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(
                                        _mm_loadu_si128((const __m128i *)(sc + 32 * jj + 16)))),
                                d);
                        for (int t = 0; t < T; t++) {
                                const BlockQ8_K *y = (const BlockQ8_K *)(vy + t * ys) + i;
                                const i32u *q = (const i32u *)(y->qs + 64 * jj);
                                __m512i p0 = _mm512_setzero_si512(), p1 = _mm512_setzero_si512();
                                for (int k = 0; k < 8; k++) {
                                        p0 = _mm512_dpbusd_epi32(p0, wl[k],
                                                                 _mm512_set1_epi32(q[k]));
                                        p1 = _mm512_dpbusd_epi32(p1, wh[k],
                                                                 _mm512_set1_epi32(q[8 + k]));
                                }
                                __m512 dy = _mm512_set1_ps(y->d);
                                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0),
                                                         _mm512_mul_ps(s0, dy), acc[t]);
                                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p1),
                                                         _mm512_mul_ps(s1, dy), acc[t]);
                        }
                }
        }
        for (int t = 0; t < T; t++)
                _mm512_storeu_ps(out + t * os, acc[t]);
}

void ggml_gemm16_q4_K_q8_K_vnni(size_t n, const void *vx, const void *vy, size_t ys,
                                const int32_t *ysum, size_t yss, size_t nt, float *out, size_t os)
{
        size_t nsb = n / QK_K;
        if (nt > 8) { /* two calls: sixteen accumulators do not fit with the weights */
                gemm16_q4k(nsb, vx, vy, ys, ysum, yss, out, os, 8);
                vy = (const uint8_t *)vy + 8 * ys;
                ysum += 8 * yss;
                out += 8 * os;
                nt -= 8;
        }
        switch (nt) {
        case 1:
                return gemm16_q4k(nsb, vx, vy, ys, ysum, yss, out, os, 1);
        case 2:
                return gemm16_q4k(nsb, vx, vy, ys, ysum, yss, out, os, 2);
        case 3:
                return gemm16_q4k(nsb, vx, vy, ys, ysum, yss, out, os, 3);
        case 4:
                return gemm16_q4k(nsb, vx, vy, ys, ysum, yss, out, os, 4);
        case 5:
                return gemm16_q4k(nsb, vx, vy, ys, ysum, yss, out, os, 5);
        case 6:
                return gemm16_q4k(nsb, vx, vy, ys, ysum, yss, out, os, 6);
        case 7:
                return gemm16_q4k(nsb, vx, vy, ys, ysum, yss, out, os, 7);
        default:
                return gemm16_q4k(nsb, vx, vy, ys, ysum, yss, out, os, 8);
        }
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else /* the dispatcher never calls these elsewhere */

#define NOT_X86(name)                                                                              \
        void name(size_t n, const void *x, size_t xs, const void *y, size_t ys, float *out,        \
                  size_t os)                                                                       \
        {                                                                                          \
        }
NOT_X86(ggml_gemm4_q4_0_q8_0_vnni)
NOT_X86(ggml_gemm4_q8_0_q8_0_vnni)
NOT_X86(ggml_gemm4_q4_K_q8_K_vnni)
NOT_X86(ggml_gemm4_f16_vnni)
#define NOT_X86_16(name)                                                                           \
        void name(size_t n, const void *x, const void *y, size_t ys, const int32_t *ysum,          \
                  size_t yss, size_t nt, float *out, size_t os)                                    \
        {                                                                                          \
        }
NOT_X86_16(ggml_gemm16_q4_0_q8_0_vnni)
NOT_X86_16(ggml_gemm16_q8_0_q8_0_vnni)
NOT_X86_16(ggml_gemm16_q4_K_q8_K_vnni)
void ggml_gemm_wide_f16_avx512(size_t n, const void *vx, size_t xs, size_t nr, const float *y,
                               size_t ys, size_t nt, float *out, size_t os)
{
}
#endif

/* ---- packing (portable) ---- */

size_t ggml_pack16_block_size(GgmlType type)
{
        switch (type) {
        case GGML_TYPE_Q4_0:
                return 16 * sizeof(ggml_fp16_t) + 4 * 64;
        case GGML_TYPE_Q8_0:
                return 16 * sizeof(ggml_fp16_t) + 8 * 64;
        case GGML_TYPE_Q4_K:
                return 2 * 16 * sizeof(ggml_fp16_t) + 2 * 8 * 16 + 16 * QK_K / 2;
        default:
                return 0;
        }
}

int ggml_pack16(GgmlType type, const void *src, size_t ne0, size_t ne1, void **ret)
{
        size_t bs = ggml_pack16_block_size(type);
        size_t nb = ne0 / (type == GGML_TYPE_Q4_K ? QK_K : QK8_0);
        size_t row_size = ggml_row_size(type, ne0);
        uint8_t *p;

        if (bs == 0 || row_size == 0 || ne1 % 16 != 0)
                return -EINVAL;
        p = aligned_alloc(64, (ne1 / 16) * nb * bs);
        if (!p)
                return -ENOMEM;
        for (size_t g = 0; g < ne1 / 16; g++)
                for (size_t i = 0; i < nb; i++) {
                        uint8_t *b = p + (g * nb + i) * bs;
                        for (size_t r = 0; r < 16; r++) {
                                const uint8_t *row = (const uint8_t *)src + (g * 16 + r) * row_size;
                                if (type == GGML_TYPE_Q4_K) {
                                        const BlockQ4_K *x = (const BlockQ4_K *)row + i;
                                        const uint8_t *q = x->scales;
                                        memcpy(b + 2 * r, &x->d, 2);
                                        memcpy(b + 32 + 2 * r, &x->dmin, 2);
                                        for (size_t j = 0; j < 8; j++) {
                                                uint8_t sc, m;
                                                if (j < 4) {
                                                        sc = q[j] & 63;
                                                        m = q[j + 4] & 63;
                                                } else {
                                                        sc = (q[j + 4] & 0xF) |
                                                                ((q[j - 4] >> 6) << 4);
                                                        m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
                                                }
                                                b[64 + 16 * j + r] = sc;
                                                b[192 + 16 * j + r] = m;
                                        }
                                        for (size_t k = 0; k < 32; k++)
                                                memcpy(b + 320 + 64 * k + 4 * r, x->qs + 4 * k, 4);
                                } else if (type == GGML_TYPE_Q4_0) {
                                        const BlockQ4_0 *x = (const BlockQ4_0 *)row + i;
                                        memcpy(b + 2 * r, &x->d, 2);
                                        for (size_t k = 0; k < 4; k++)
                                                memcpy(b + 32 + 64 * k + 4 * r, x->qs + 4 * k, 4);
                                } else {
                                        const BlockQ8_0 *x = (const BlockQ8_0 *)row + i;
                                        memcpy(b + 2 * r, &x->d, 2);
                                        for (size_t k = 0; k < 8; k++)
                                                for (size_t c = 0; c < 4; c++)
                                                        b[32 + 64 * k + 4 * r + c] =
                                                                (uint8_t)x->qs[4 * k + c] ^ 0x80u;
                                }
                        }
                }
        *ret = p;
        return 0;
}

void ggml_q8_K_pair_sums(const void *y, size_t n, int32_t *out)
{
        const BlockQ8_K *b = y;
        for (size_t i = 0; i < n / QK_K; i++)
                for (size_t q = 0; q < 4; q++) {
                        const int16_t *s = b[i].bsums + 4 * q;
                        uint16_t even = (uint16_t)(s[0] + s[1]), odd = (uint16_t)(s[2] + s[3]);
                        out[4 * i + q] = (int32_t)((uint32_t)even | (uint32_t)odd << 16);
                }
}

void ggml_q8_0_sums(const void *y, size_t n, int32_t *out)
{
        const BlockQ8_0 *b = y;
        for (size_t i = 0; i < n / QK8_0; i++) {
                int32_t s = 0;
                for (size_t k = 0; k < QK8_0; k++)
                        s += b[i].qs[k];
                out[i] = s;
        }
}
