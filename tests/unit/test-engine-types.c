/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Block formats and kernels: conversions, quantization error bounds, and the AVX2
 * kernels against the reference ones. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "engine/ggml-types.h"
#include "engine/threadpool.h"

static float frand(unsigned *s)
{
        *s = *s * 1103515245u + 12345u;
        return ((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

START_TEST(test_fp16)
{
        ck_assert_uint_eq(ggml_fp32_to_fp16(1.0f), 0x3c00);
        ck_assert_uint_eq(ggml_fp32_to_fp16(-2.0f), 0xc000);
        ck_assert_uint_eq(ggml_fp32_to_fp16(65504.0f), 0x7bff);
        ck_assert_uint_eq(ggml_fp32_to_fp16(1e6f), 0x7c00);
        ck_assert_uint_eq(ggml_fp32_to_fp16(0.0f), 0);
        /* smallest subnormal and round-to-nearest-even at a tie */
        ck_assert_uint_eq(ggml_fp32_to_fp16(5.9604645e-8f), 1);
        ck_assert_uint_eq(ggml_fp32_to_fp16(1.0f + 1.0f / 2048), 0x3c00);
        ck_assert_uint_eq(ggml_fp32_to_fp16(1.0f + 3.0f / 2048), 0x3c02);
        ck_assert(isnan(ggml_fp16_to_fp32(ggml_fp32_to_fp16(NAN))));
        for (uint32_t h = 0; h < 0x7c00; h++) {
                /* every finite half survives the round trip */
                ck_assert_uint_eq(ggml_fp32_to_fp16(ggml_fp16_to_fp32((uint16_t)h)), h);
                ck_assert_uint_eq(ggml_fp32_to_fp16(ggml_fp16_to_fp32((uint16_t)(h | 0x8000))),
                                  h | 0x8000);
        }
        ck_assert_float_eq(ggml_bf16_to_fp32(ggml_fp32_to_bf16(1.5f)), 1.5f);
        ck_assert_uint_eq(ggml_fp32_to_bf16(1.0f), 0x3f80);
}
END_TEST

START_TEST(test_traits)
{
        ck_assert_ptr_null(ggml_type_traits(4)); /* removed Q4_2 */
        ck_assert_ptr_null(ggml_type_traits(1000));
        ck_assert_str_eq(ggml_type_name(GGML_TYPE_Q4_K), "Q4_K");
        ck_assert_uint_eq(ggml_row_size(GGML_TYPE_Q4_K, 512), 288);
        ck_assert_uint_eq(ggml_row_size(GGML_TYPE_Q8_0, 33), 0);
        ck_assert_uint_eq(ggml_row_size(GGML_TYPE_F16, 3), 6);
        ck_assert(!ggml_type_traits(GGML_TYPE_Q2_K)->supported);
}
END_TEST

static const GgmlType all_types[] = {GGML_TYPE_F32,  GGML_TYPE_F16,  GGML_TYPE_BF16,
                                     GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q4_K,
                                     GGML_TYPE_Q5_K, GGML_TYPE_Q6_K};

/* Round trip error relative to the block's range, per type. */
START_TEST(test_quantize_roundtrip)
{
        static const float tol[] = {0.0f, 1e-3f, 8e-3f, 1e-2f, 0.15f, 0.1f, 0.05f, 0.05f};
        enum {
                N = 1024
        };
        float x[N], y[N];
        uint8_t q[N * 4];
        unsigned s = 1;

        for (int i = 0; i < N; i++)
                x[i] = frand(&s);
        for (size_t t = 0; t < ELEMENTSOF(all_types); t++) {
                ck_assert_int_eq(ggml_quantize_row(all_types[t], x, q, N), 0);
                ck_assert_int_eq(ggml_dequantize_row(all_types[t], q, y, N), 0);
                float worst = 0.0f;
                for (int i = 0; i < N; i++)
                        worst = fmaxf(worst, fabsf(x[i] - y[i]));
                ck_assert_msg(worst <= tol[t], "%s: error %g > %g", ggml_type_name(all_types[t]),
                              worst, tol[t]);
        }
        /* all-zero blocks stay zero (no division by a zero scale) */
        memset(x, 0, sizeof(x));
        for (size_t t = 0; t < ELEMENTSOF(all_types); t++) {
                ggml_quantize_row(all_types[t], x, q, N);
                ggml_dequantize_row(all_types[t], q, y, N);
                for (int i = 0; i < N; i++)
                        ck_assert_float_eq(y[i], 0.0f);
        }
        ck_assert_int_eq(ggml_quantize_row(GGML_TYPE_Q4_K, x, q, 100), -EINVAL);
        ck_assert_int_eq(ggml_dequantize_row(GGML_TYPE_Q2_K, q, y, 256), -EOPNOTSUPP);
}
END_TEST

START_TEST(test_q8_K)
{
        enum {
                N = 512
        };
        float x[N], y[N];
        BlockQ8_K b[N / QK_K];
        unsigned s = 7;

        for (int i = 0; i < N; i++)
                x[i] = frand(&s) * 3.0f;
        ggml_quantize_row_q8_K_ref(x, b, N);
        for (int k = 0; k < N / QK_K; k++)
                for (int j = 0; j < 16; j++) {
                        int sum = 0;
                        for (int i = 0; i < 16; i++)
                                sum += b[k].qs[16 * j + i];
                        ck_assert_int_eq(b[k].bsums[j], sum);
                }
        if (ggml_cpu_has_avx2()) {
                BlockQ8_K b2[N / QK_K];
                ggml_quantize_row_q8_K_avx2(x, b2, N);
                ck_assert(memcmp(b, b2, sizeof(b)) == 0);
        }
        ggml_dequantize_row(GGML_TYPE_Q8_K, b, y, N);
        for (int i = 0; i < N; i++)
                ck_assert(fabsf(x[i] - y[i]) <= 3.0f / 127 * 0.51f);
}
END_TEST

/* The dot product of the quantized pair equals the dot of their dequantized values, for
 * both kernel sets; and it approximates the exact product. */
START_TEST(test_dot_kernels)
{
        enum {
                N = 2048
        };
        float x[N], y[N], dx[N], dy[N];
        uint8_t qx[N * 4], qy[N * 4];
        unsigned s = 3;

        for (int i = 0; i < N; i++) {
                x[i] = frand(&s);
                y[i] = frand(&s) * 2.0f;
        }
        for (size_t t = 0; t < ELEMENTSOF(all_types); t++) {
                GgmlType type = all_types[t];
                GgmlKernels ref, fast;
                ck_assert_int_eq(ggml_kernels_get_reference(type, &ref), 0);
                ck_assert_int_eq(ggml_kernels_get(type, &fast), 0);
                for (size_t n = ggml_type_traits(type)->block_size == 1 ? 37 : 256; n <= N;
                     n *= 2) {
                        GgmlType vt = ggml_type_traits(type)->vec_dot_type;
                        if (ggml_row_size(type, n) == 0)
                                continue;
                        ggml_quantize_row(type, x, qx, n);
                        ggml_dequantize_row(type, qx, dx, n);
                        ref.from_float(y, qy, n);
                        ggml_dequantize_row(vt, qy, dy, n);
                        double exact = 0.0, mag = 0.0;
                        for (size_t i = 0; i < n; i++) {
                                exact += (double)dx[i] * dy[i];
                                mag += fabs((double)dx[i] * dy[i]);
                        }
                        float r = ref.vec_dot(n, qx, qy), f = fast.vec_dot(n, qx, qy);
                        ck_assert_msg(fabs(r - exact) <= 1e-5 * mag + 1e-5,
                                      "%s ref n=%zu: %g vs %g", ggml_type_name(type), n, r, exact);
                        ck_assert_msg(fabs(f - exact) <= 1e-5 * mag + 1e-5, "%s %s n=%zu: %g vs %g",
                                      ggml_type_name(type), ggml_kernels_isa(), n, f, exact);
                        /* four rows at once: each equal to the single-row kernel */
                        if (fast.vec_dot4) {
                                size_t rs = ggml_row_size(vt, n);
                                uint8_t q4[4 * N * 4];
                                float v[4];
                                for (int k = 0; k < 4; k++) {
                                        for (size_t i = 0; i < n; i++)
                                                dy[i] = y[(i + 17 * k) % n] * (k + 1);
                                        fast.from_float(dy, q4 + k * rs, n);
                                }
                                fast.vec_dot4(n, qx, q4, rs, v);
                                for (int k = 0; k < 4; k++) {
                                        float one = fast.vec_dot(n, qx, q4 + k * rs);
                                        ck_assert_msg(fabsf(v[k] - one) <=
                                                              1e-5f * fabsf(one) + 1e-4f,
                                                      "%s dot4 row %d n=%zu: %g vs %g",
                                                      ggml_type_name(type), k, n, v[k], one);
                                }
                        }
                        /* the fast converter gives an equivalent partner row */
                        uint8_t qy2[N * 4];
                        fast.from_float(y, qy2, n);
                        float f2 = fast.vec_dot(n, qx, qy2);
                        ck_assert_msg(fabs(f2 - exact) <= 2e-3 * mag + 1e-4,
                                      "%s converter: %g vs %g", ggml_type_name(type), f2, exact);
                }
        }
}
END_TEST

START_TEST(test_f16_helpers)
{
        enum {
                N = 67
        };
        float x[N], acc[N], acc2[N];
        ggml_fp16_t h[N], h2[N];
        unsigned s = 9;
        for (int i = 0; i < N; i++) {
                x[i] = frand(&s);
                acc[i] = acc2[i] = frand(&s);
        }
        ggml_fp32_to_fp16_row(x, h, N);
        if (ggml_cpu_has_avx2()) {
                ggml_fp32_to_fp16_row_avx2(x, h2, N);
                ck_assert(memcmp(h, h2, sizeof(h)) == 0);
        }
        ggml_vec_mad_f16_ref(N, acc, h, 0.5f);
        ggml_vec_mad_f16(N, acc2, h, 0.5f);
        for (int i = 0; i < N; i++)
                ck_assert(fabsf(acc[i] - acc2[i]) < 1e-6f);
        ck_assert(fabsf(ggml_vec_dot_f16(N, h, h) - ggml_vec_dot_f16_ref(N, h, h)) < 1e-4f);
        ck_assert(fabsf(ggml_vec_dot_f32(N, x, x) - ggml_vec_dot_f32_ref(N, x, x)) < 1e-4f);
}
END_TEST

/* The AVX2 and AVX-512 four-row kernels directly (the dispatcher hands out only one). */
START_TEST(test_dot4_isas)
{
        enum {
                N = 1024
        };
        static const struct {
                GgmlType type;
                GgmlVecDot4Fn avx2, avx512;
        } k[] = {
                {GGML_TYPE_Q8_0, ggml_vec_dot4_q8_0_q8_0_avx2, ggml_vec_dot4_q8_0_q8_0_avx512},
                {GGML_TYPE_Q4_0, ggml_vec_dot4_q4_0_q8_0_avx2, ggml_vec_dot4_q4_0_q8_0_avx512},
                {GGML_TYPE_Q4_K, ggml_vec_dot4_q4_K_q8_K_avx2, ggml_vec_dot4_q4_K_q8_K_avx512},
                {GGML_TYPE_Q6_K, ggml_vec_dot4_q6_K_q8_K_avx2, ggml_vec_dot4_q6_K_q8_K_avx512},
                {GGML_TYPE_F16, ggml_vec_dot4_f16_avx2, ggml_vec_dot4_f16_avx512},
        };
        float x[N], y[N];
        static uint8_t qx[N * 2], qy[4 * N * 2];
        unsigned s = 5;

        if (!ggml_cpu_has_avx2())
                return;
        for (int i = 0; i < N; i++)
                x[i] = frand(&s);
        for (size_t t = 0; t < ELEMENTSOF(k); t++) {
                GgmlKernels ref;
                ggml_kernels_get_reference(k[t].type, &ref);
                GgmlType vt = ggml_type_traits(k[t].type)->vec_dot_type;
                /* 7 Q8_0 blocks: an odd count exercises the AVX-512 tail */
                size_t n = ggml_type_traits(k[t].type)->block_size == 32 ? 224
                        : ggml_type_traits(k[t].type)->block_size == 1   ? 1000 + 7
                                                                         : N;
                size_t rs = ggml_row_size(vt, n);
                ggml_quantize_row(k[t].type, x, qx, n);
                for (int r = 0; r < 4; r++) {
                        for (int i = 0; i < N; i++)
                                y[i] = frand(&s) * (r + 1);
                        ref.from_float(y, qy + r * rs, n);
                }
                float a[4], b[4];
                k[t].avx2(n, qx, qy, rs, a);
                if (ggml_cpu_has_avx512())
                        k[t].avx512(n, qx, qy, rs, b);
                for (int r = 0; r < 4; r++) {
                        float one = ref.vec_dot(n, qx, qy + r * rs);
                        ck_assert_msg(fabsf(a[r] - one) <= 1e-4f * (1 + fabsf(one)),
                                      "%s avx2 %g vs %g", ggml_type_name(k[t].type), a[r], one);
                        if (ggml_cpu_has_avx512())
                                ck_assert_msg(fabsf(b[r] - one) <= 1e-4f * (1 + fabsf(one)),
                                              "%s avx512 %g vs %g", ggml_type_name(k[t].type), b[r],
                                              one);
                }
        }
}
END_TEST

/* The BF16 and Q5_K AVX2 kernels directly against the reference, row by row: odd block
 * counts (and for BF16 lengths that leave a scalar tail), several weight rows, one and
 * four activation rows, activations that hit the extremes of Q8_K. */
START_TEST(test_avx2_bf16_q5_K)
{
        enum {
                ROWS = 5,
                NMAX = 7 * QK_K
        };
        static const struct {
                GgmlType type;
                GgmlVecDotFn dot;
                GgmlVecDot4Fn dot4;
                size_t n[4];
        } k[] = {
                {GGML_TYPE_BF16,
                 ggml_vec_dot_bf16_avx2,
                 ggml_vec_dot4_bf16_avx2,
                 {7, 37, 1007, 1792}},
                {GGML_TYPE_Q5_K,
                 ggml_vec_dot_q5_K_q8_K_avx2,
                 ggml_vec_dot4_q5_K_q8_K_avx2,
                 {QK_K, 3 * QK_K, 5 * QK_K, 7 * QK_K}},
        };
        static float x[NMAX], y[NMAX];
        static uint8_t qx[ROWS][NMAX * 2], qy[4 * NMAX * 2];
        unsigned s = 11;

        if (!ggml_cpu_has_avx2())
                return;
        for (size_t t = 0; t < ELEMENTSOF(k); t++) {
                GgmlKernels ref;
                ck_assert_int_eq(ggml_kernels_get_reference(k[t].type, &ref), 0);
                GgmlType vt = ggml_type_traits(k[t].type)->vec_dot_type;
                for (size_t c = 0; c < ELEMENTSOF(k[t].n); c++) {
                        size_t n = k[t].n[c], rs = ggml_row_size(vt, n);
                        ck_assert_uint_gt(rs, 0);
                        for (int r = 0; r < ROWS; r++) {
                                /* row 0: all quants high (the fifth bit set), others random */
                                for (size_t i = 0; i < n; i++)
                                        x[i] = r == 0 ? 1.0f + 0.01f * (i % 7)
                                                      : frand(&s) * (1 + r);
                                ck_assert_int_eq(ggml_quantize_row(k[t].type, x, qx[r], n), 0);
                        }
                        for (int a = 0; a < 4; a++) {
                                for (size_t i = 0; i < n; i++)
                                        y[i] = a == 3 ? (i % 2 ? -3.0f : 3.0f)
                                                      : frand(&s) * (a + 1);
                                ref.from_float(y, qy + a * rs, n);
                        }
                        for (int r = 0; r < ROWS; r++) {
                                float four[4];
                                k[t].dot4(n, qx[r], qy, rs, four);
                                for (int a = 0; a < 4; a++) {
                                        float want = ref.vec_dot(n, qx[r], qy + a * rs);
                                        float got = k[t].dot(n, qx[r], qy + a * rs);
                                        float tol = 1e-5f * (1 + fabsf(want));
                                        ck_assert_msg(fabsf(got - want) <= tol,
                                                      "%s n=%zu row %d act %d: %g vs %g",
                                                      ggml_type_name(k[t].type), n, r, a, got,
                                                      want);
                                        ck_assert_msg(fabsf(four[a] - want) <= tol,
                                                      "%s dot4 n=%zu row %d act %d: %g vs %g",
                                                      ggml_type_name(k[t].type), n, r, a, four[a],
                                                      want);
                                }
                        }
                }
        }
}
END_TEST

/* The AVX2 BF16 row converter is bit-identical to the reference: ties, NaN, infinities,
 * subnormals, values that round up to infinity, and a tail. */
START_TEST(test_bf16_row_avx2)
{
        enum {
                N = 16 * 40 + 5
        };
        static const uint32_t special[] = {0x7fc00000u, 0xffc00001u, 0x7f800001u, 0x7f800000u,
                                           0xff800000u, 0x7f7fffffu, 0x00000001u, 0x80008000u,
                                           0x3f808000u, 0x3f818000u, 0x3f807fffu, 0x00000000u};
        float x[N];
        ggml_bf16_t a[N], b[N];
        unsigned s = 13;

        if (!ggml_cpu_has_avx2())
                return;
        for (int i = 0; i < N; i++) {
                uint32_t u;
                if (i % 3 == 0)
                        u = special[(i / 3) % ELEMENTSOF(special)];
                else {
                        float f = frand(&s) * 1000.0f;
                        memcpy(&u, &f, sizeof(u));
                        u ^= (uint32_t)(i & 1) << 15; /* hit the rounding boundary */
                }
                memcpy(&x[i], &u, sizeof(u));
        }
        ggml_fp32_to_bf16_row(x, a, N);
        ggml_fp32_to_bf16_row_avx2(x, b, N);
        for (int i = 0; i < N; i++) {
                uint32_t u;
                memcpy(&u, &x[i], sizeof(u));
                ck_assert_msg(a[i] == b[i], "%d: %08x -> %04x vs %04x", i, u, a[i], b[i]);
        }
}
END_TEST

/* The 4x4 tile kernels against the reference dot products, with row and output strides
 * larger than a row, and (for 32-value blocks) an odd block count. */
START_TEST(test_gemm4)
{
        enum {
                N = 1024,
                OS = 7,
        };
        static const struct {
                GgmlType type;
                GgmlGemm4Fn fn;
        } k[] = {
                {GGML_TYPE_Q8_0, ggml_gemm4_q8_0_q8_0_vnni},
                {GGML_TYPE_Q4_0, ggml_gemm4_q4_0_q8_0_vnni},
                {GGML_TYPE_Q4_K, ggml_gemm4_q4_K_q8_K_vnni},
                {GGML_TYPE_F16, ggml_gemm4_f16_vnni},
        };
        static const size_t sizes[] = {256, 224, 1024};
        float x[N], y[N];
        static uint8_t qx[4 * N * 2 + 64], qy[4 * N * 2 + 64];
        unsigned s = 11;

        if (!ggml_cpu_has_avx512_vnni())
                return;
        for (size_t t = 0; t < ELEMENTSOF(k); t++)
                for (size_t z = 0; z < ELEMENTSOF(sizes); z++) {
                        GgmlKernels ref;
                        ggml_kernels_get_reference(k[t].type, &ref);
                        GgmlType vt = ggml_type_traits(k[t].type)->vec_dot_type;
                        size_t n = sizes[z];
                        if (n % ggml_type_traits(k[t].type)->block_size)
                                continue;
                        size_t xs = ggml_row_size(k[t].type, n) + 16;
                        size_t ys = ggml_row_size(vt, n) + 8;
                        for (int r = 0; r < 4; r++) {
                                for (size_t i = 0; i < n; i++)
                                        x[i] = frand(&s) * (r + 1);
                                ggml_quantize_row(k[t].type, x, qx + r * xs, n);
                                for (size_t i = 0; i < n; i++)
                                        y[i] = frand(&s) * (4 - r);
                                ref.from_float(y, qy + r * ys, n);
                        }
                        float out[4 * OS];
                        for (size_t i = 0; i < ELEMENTSOF(out); i++)
                                out[i] = -1234.0f;
                        k[t].fn(n, qx, xs, qy, ys, out, OS);
                        for (int tok = 0; tok < 4; tok++)
                                for (int r = 0; r < OS; r++) {
                                        float got = out[tok * OS + r];
                                        if (r >= 4) {
                                                ck_assert_float_eq(got, -1234.0f);
                                                continue;
                                        }
                                        float one = ref.vec_dot(n, qx + r * xs, qy + tok * ys);
                                        ck_assert_msg(fabsf(got - one) <= 1e-4f * (1 + fabsf(one)),
                                                      "%s n=%zu row %d token %d: %g vs %g",
                                                      ggml_type_name(k[t].type), n, r, tok, got,
                                                      one);
                                }
                }
}
END_TEST

/* The one-pass F16 kernel of batched decoding against the reference F16 dot product, for
 * every row count 1..3 and token count 1..8, with lengths that leave a tail of 16 and of
 * fewer than 16 values; nothing outside the tile is written. */
START_TEST(test_gemm_wide_f16)
{
        enum {
                N = 1040,
                OS = 5,
                YS = N + 3,
        };
        static const size_t sizes[] = {1024, 1040, 784, 775, 8};
        static ggml_fp16_t x[3][N];
        static float y[8 * YS];
        static ggml_fp16_t y16[8][N];
        unsigned s = 23;

        if (!ggml_cpu_has_avx512_vnni())
                return;
        for (size_t z = 0; z < ELEMENTSOF(sizes); z++) {
                size_t n = sizes[z];
                for (int r = 0; r < 3; r++)
                        for (size_t i = 0; i < n; i++)
                                x[r][i] = ggml_fp32_to_fp16(frand(&s) * (r + 1));
                for (int t = 0; t < 8; t++)
                        for (size_t i = 0; i < n; i++) {
                                y16[t][i] = ggml_fp32_to_fp16(frand(&s) * (8 - t));
                                y[t * YS + i] = ggml_fp16_to_fp32(y16[t][i]);
                        }
                for (size_t nr = 1; nr <= GGML_GEMM_WIDE_ROWS; nr++)
                        for (size_t nt = 1; nt <= GGML_GEMM_WIDE_TOKENS; nt++) {
                                float out[8 * OS];
                                for (size_t i = 0; i < ELEMENTSOF(out); i++)
                                        out[i] = -1234.0f;
                                ggml_gemm_wide_f16_avx512(n, x, sizeof(x[0]), nr, y, YS, nt, out,
                                                          OS);
                                for (size_t t = 0; t < 8; t++)
                                        for (size_t r = 0; r < OS; r++) {
                                                float got = out[t * OS + r];
                                                if (r >= nr || t >= nt) {
                                                        ck_assert_float_eq(got, -1234.0f);
                                                        continue;
                                                }
                                                float one = ggml_vec_dot_f16_ref(n, x[r], y16[t]);
                                                ck_assert_msg(fabsf(got - one) <=
                                                                      1e-4f * (1 + fabsf(one)),
                                                              "n=%zu nr=%zu nt=%zu row %zu "
                                                              "token %zu: %g vs %g",
                                                              n, nr, nt, r, t, got, one);
                                        }
                        }
        }
}
END_TEST

/* Packed 16-row layout and its kernels against the reference dot products on the
 * original rows, for every token count 1..16 and an odd block count. */
START_TEST(test_gemm16)
{
        enum {
                ROWS = 32,
                OS = 40,
        };
        static const struct {
                GgmlType type;
                GgmlGemm16Fn fn;
                size_t n; /* an odd number of blocks */
        } k[] = {
                {GGML_TYPE_Q8_0, ggml_gemm16_q8_0_q8_0_vnni, 224},
                {GGML_TYPE_Q4_0, ggml_gemm16_q4_0_q8_0_vnni, 224},
                {GGML_TYPE_Q4_K, ggml_gemm16_q4_K_q8_K_vnni, 768},
        };
        static float x3[768];
        static uint8_t qx[ROWS * 768 * 2], qy[16 * 768 * 2];
        static int32_t sums[16 * 768];
        unsigned s = 23;

        ck_assert_uint_eq(ggml_pack16_block_size(GGML_TYPE_Q4_0), 16 * sizeof(BlockQ4_0));
        ck_assert_uint_eq(ggml_pack16_block_size(GGML_TYPE_Q8_0), 16 * sizeof(BlockQ8_0));
        ck_assert_uint_eq(ggml_pack16_block_size(GGML_TYPE_F16), 0);
        if (!ggml_cpu_has_avx512_vnni())
                return;
        for (size_t t = 0; t < ELEMENTSOF(k); t++) {
                size_t N = k[t].n,
                       yss = ggml_type_traits(k[t].type)->block_size == QK_K ? N / QK_K * 4
                                                                             : N / 32;
                GgmlType vt = ggml_type_traits(k[t].type)->vec_dot_type;
                GgmlKernels ref;
                ggml_kernels_get_reference(k[t].type, &ref);
                size_t xs = ggml_row_size(k[t].type, N), ys = ggml_row_size(vt, N);
                for (int r = 0; r < ROWS; r++) {
                        for (size_t i = 0; i < N; i++)
                                x3[i] = frand(&s) * (1 + r % 5);
                        ggml_quantize_row(k[t].type, x3, qx + r * xs, N);
                }
                for (int tok = 0; tok < 16; tok++) {
                        for (size_t i = 0; i < N; i++)
                                x3[i] = frand(&s) * (1 + tok % 8);
                        ref.from_float(x3, qy + tok * ys, N);
                        if (vt == GGML_TYPE_Q8_K)
                                ggml_q8_K_pair_sums(qy + tok * ys, N, sums + tok * yss);
                        else
                                ggml_q8_0_sums(qy + tok * ys, N, sums + tok * yss);
                }
                void *packed = NULL;
                ck_assert_int_eq(ggml_pack16(k[t].type, qx, N, 17, &packed), -EINVAL);
                ck_assert_int_eq(ggml_pack16(k[t].type, qx, N, ROWS, &packed), 0);
                size_t gs = (N / ggml_type_traits(k[t].type)->block_size) *
                        ggml_pack16_block_size(k[t].type);
                for (size_t nt = 1; nt <= 16; nt++) {
                        float out[16 * OS];
                        for (size_t i = 0; i < ELEMENTSOF(out); i++)
                                out[i] = -1234.0f;
                        for (int g = 0; g < ROWS / 16; g++)
                                k[t].fn(N, (uint8_t *)packed + g * gs, qy, ys, sums, yss, nt,
                                        out + 16 * g, OS);
                        for (size_t tok = 0; tok < 16; tok++)
                                for (int r = 0; r < OS; r++) {
                                        float got = out[tok * OS + r];
                                        if (tok >= nt || r >= ROWS) {
                                                ck_assert_float_eq(got, -1234.0f);
                                                continue;
                                        }
                                        float one = ref.vec_dot(N, qx + r * xs, qy + tok * ys);
                                        ck_assert_msg(fabsf(got - one) <= 1e-4f * (1 + fabsf(one)),
                                                      "%s nt=%zu row %d token %zu: %g vs %g",
                                                      ggml_type_name(k[t].type), nt, r, tok, got,
                                                      one);
                                }
                }
                free(packed);
        }
}
END_TEST

typedef struct SumJob {
        const uint64_t *v;
        size_t n;
        uint64_t partial[64];
} SumJob;

static void sum_job(void *userdata, unsigned ith, unsigned nth)
{
        SumJob *j = userdata;
        size_t lo, hi;
        threadpool_split(j->n, ith, nth, &lo, &hi);
        uint64_t s = 0;
        for (size_t i = lo; i < hi; i++)
                s += j->v[i];
        j->partial[ith] = s;
}

START_TEST(test_threadpool)
{
        enum {
                N = 10007
        };
        static uint64_t v[N];
        ThreadPool *p;

        for (size_t i = 0; i < N; i++)
                v[i] = i;
        ck_assert_uint_ge(cpu_physical_cores(), 1);
        for (unsigned nth = 1; nth <= 4; nth++) {
                ck_assert_int_eq(threadpool_new(nth, &p), 0);
                ck_assert_uint_eq(threadpool_size(p), nth);
                for (int round = 0; round < 200; round++) {
                        SumJob j = {.v = v, .n = N};
                        threadpool_run(p, sum_job, &j);
                        uint64_t s = 0;
                        for (unsigned k = 0; k < nth; k++)
                                s += j.partial[k];
                        ck_assert_uint_eq(s, (uint64_t)N * (N - 1) / 2);
                }
                p = threadpool_free(p);
                ck_assert_ptr_null(p);
        }
        size_t lo, hi, covered = 0;
        for (unsigned i = 0; i < 3; i++) {
                threadpool_split(10, i, 3, &lo, &hi);
                ck_assert_uint_eq(lo, covered);
                covered = hi;
        }
        ck_assert_uint_eq(covered, 10);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("engine-types");
        TCase *tc = tcase_create("engine-types");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_fp16);
        tcase_add_test(tc, test_traits);
        tcase_add_test(tc, test_quantize_roundtrip);
        tcase_add_test(tc, test_q8_K);
        tcase_add_test(tc, test_dot_kernels);
        tcase_add_test(tc, test_f16_helpers);
        tcase_add_test(tc, test_dot4_isas);
        tcase_add_test(tc, test_avx2_bf16_q5_K);
        tcase_add_test(tc, test_bf16_row_avx2);
        tcase_add_test(tc, test_gemm4);
        tcase_add_test(tc, test_gemm16);
        tcase_add_test(tc, test_gemm_wide_f16);
        tcase_add_test(tc, test_threadpool);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
