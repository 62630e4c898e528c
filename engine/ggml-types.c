/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Block formats and the portable reference kernels. The quantizers for weights are
 * simple (min/max per sub-block, no search for the best scale): they are used by the
 * test-model generator, where only a valid, deterministic encoding matters. The
 * activation quantizers (Q8_0, Q8_K) follow llama.cpp's rounding so that the dot
 * products match it. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "engine/ggml-types.h"

static const GgmlTypeTraits type_traits[GGML_TYPE_MAX_ID] = {
        [GGML_TYPE_F32] = {"F32", 1, 4, true, GGML_TYPE_F32},
        [GGML_TYPE_F16] = {"F16", 1, 2, true, GGML_TYPE_F16},
        [GGML_TYPE_Q4_0] = {"Q4_0", QK4_0, sizeof(BlockQ4_0), true, GGML_TYPE_Q8_0},
        [GGML_TYPE_Q4_1] = {"Q4_1", 32, 20, false, GGML_TYPE_Q8_1},
        [GGML_TYPE_Q5_0] = {"Q5_0", 32, 22, false, GGML_TYPE_Q8_0},
        [GGML_TYPE_Q5_1] = {"Q5_1", 32, 24, false, GGML_TYPE_Q8_1},
        [GGML_TYPE_Q8_0] = {"Q8_0", QK8_0, sizeof(BlockQ8_0), true, GGML_TYPE_Q8_0},
        [GGML_TYPE_Q8_1] = {"Q8_1", 32, 36, false, GGML_TYPE_Q8_1},
        [GGML_TYPE_Q2_K] = {"Q2_K", QK_K, 84, false, GGML_TYPE_Q8_K},
        [GGML_TYPE_Q3_K] = {"Q3_K", QK_K, 110, false, GGML_TYPE_Q8_K},
        [GGML_TYPE_Q4_K] = {"Q4_K", QK_K, sizeof(BlockQ4_K), true, GGML_TYPE_Q8_K},
        [GGML_TYPE_Q5_K] = {"Q5_K", QK_K, sizeof(BlockQ5_K), true, GGML_TYPE_Q8_K},
        [GGML_TYPE_Q6_K] = {"Q6_K", QK_K, sizeof(BlockQ6_K), true, GGML_TYPE_Q8_K},
        [GGML_TYPE_Q8_K] = {"Q8_K", QK_K, sizeof(BlockQ8_K), false, GGML_TYPE_Q8_K},
        [16] = {"IQ2_XXS", QK_K, 66, false, GGML_TYPE_Q8_K},
        [17] = {"IQ2_XS", QK_K, 74, false, GGML_TYPE_Q8_K},
        [18] = {"IQ3_XXS", QK_K, 98, false, GGML_TYPE_Q8_K},
        [19] = {"IQ1_S", QK_K, 50, false, GGML_TYPE_Q8_K},
        [20] = {"IQ4_NL", 32, 18, false, GGML_TYPE_Q8_0},
        [21] = {"IQ3_S", QK_K, 110, false, GGML_TYPE_Q8_K},
        [22] = {"IQ2_S", QK_K, 82, false, GGML_TYPE_Q8_K},
        [23] = {"IQ4_XS", QK_K, 136, false, GGML_TYPE_Q8_K},
        [24] = {"I8", 1, 1, false, GGML_TYPE_F32},
        [25] = {"I16", 1, 2, false, GGML_TYPE_F32},
        [26] = {"I32", 1, 4, false, GGML_TYPE_F32},
        [27] = {"I64", 1, 8, false, GGML_TYPE_F32},
        [28] = {"F64", 1, 8, false, GGML_TYPE_F32},
        [29] = {"IQ1_M", QK_K, 56, false, GGML_TYPE_Q8_K},
        [GGML_TYPE_BF16] = {"BF16", 1, 2, true, GGML_TYPE_BF16},
        [34] = {"TQ1_0", QK_K, 54, false, GGML_TYPE_Q8_K},
        [35] = {"TQ2_0", QK_K, 66, false, GGML_TYPE_Q8_K},
};

const GgmlTypeTraits *ggml_type_traits(uint32_t type)
{
        if (type >= GGML_TYPE_MAX_ID || !type_traits[type].name)
                return NULL;
        return &type_traits[type];
}

const char *ggml_type_name(uint32_t type)
{
        const GgmlTypeTraits *t = ggml_type_traits(type);
        return t ? t->name : "unknown";
}

size_t ggml_row_size(GgmlType type, size_t n)
{
        const GgmlTypeTraits *t = ggml_type_traits(type);
        if (!t || n % t->block_size != 0)
                return 0;
        return n / t->block_size * t->type_size;
}

/* ---- half precision ---- */

static float fp16_table[1 << 16];

static inline float f32_from_bits(uint32_t u)
{
        float f;
        memcpy(&f, &u, sizeof(f));
        return f;
}

static inline uint32_t f32_to_bits(float f)
{
        uint32_t u;
        memcpy(&u, &f, sizeof(u));
        return u;
}

static float fp16_to_fp32_slow(uint16_t h)
{
        uint32_t sign = (uint32_t)(h & 0x8000) << 16;
        uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;

        if (exp == 0) {
                float f = (float)mant * (1.0f / 16777216.0f);
                return sign ? -f : f;
        }
        if (exp == 31)
                return f32_from_bits(sign | 0x7f800000u | (mant << 13));
        return f32_from_bits(sign | ((exp + 112) << 23) | (mant << 13));
}

__attribute__((constructor)) static void fp16_table_init(void)
{
        for (uint32_t i = 0; i < (1u << 16); i++)
                fp16_table[i] = fp16_to_fp32_slow((uint16_t)i);
}

float ggml_fp16_to_fp32(ggml_fp16_t h)
{
        return fp16_table[h];
}

/* Round to nearest even, like the F16C instruction with its default rounding. */
ggml_fp16_t ggml_fp32_to_fp16(float f)
{
        uint32_t x = f32_to_bits(f);
        uint16_t sign = (uint16_t)((x >> 16) & 0x8000);

        x &= 0x7fffffffu;
        if (x > 0x7f800000u)
                return sign | 0x7e00; /* NaN */
        if (x >= 0x477ff000u)
                return sign | 0x7c00; /* rounds to infinity */
        if (x < 0x38800000u) {
                /* Below the smallest normal half: adding 0.5 makes the float's ulp equal
                 * to the half subnormal step, so the FPU does the rounding. */
                float a = f32_from_bits(x) + 0.5f;
                return sign | (uint16_t)(f32_to_bits(a) - 0x3f000000u);
        }
        x = x - 0x38000000u + 0xfffu + ((x >> 13) & 1);
        return sign | (uint16_t)(x >> 13);
}

float ggml_bf16_to_fp32(ggml_bf16_t h)
{
        return f32_from_bits((uint32_t)h << 16);
}

ggml_bf16_t ggml_fp32_to_bf16(float f)
{
        uint32_t u = f32_to_bits(f);
        if ((u & 0x7fffffffu) > 0x7f800000u)
                return (uint16_t)((u >> 16) | 64);
        return (uint16_t)((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
}

static inline int nearest_int(float f)
{
        return (int)lrintf(f);
}

/* ---- dequantize ---- */

static inline void get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
        if (j < 4) {
                *d = q[j] & 63;
                *m = q[j + 4] & 63;
        } else {
                *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
                *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
        }
}

static void dequantize_q4_0(const BlockQ4_0 *x, float *y, size_t n)
{
        for (size_t i = 0; i < n / QK4_0; i++) {
                float d = ggml_fp16_to_fp32(x[i].d);
                for (int j = 0; j < QK4_0 / 2; j++) {
                        y[i * QK4_0 + j] = ((x[i].qs[j] & 0xF) - 8) * d;
                        y[i * QK4_0 + j + QK4_0 / 2] = ((x[i].qs[j] >> 4) - 8) * d;
                }
        }
}

static void dequantize_q8_0(const BlockQ8_0 *x, float *y, size_t n)
{
        for (size_t i = 0; i < n / QK8_0; i++) {
                float d = ggml_fp16_to_fp32(x[i].d);
                for (int j = 0; j < QK8_0; j++)
                        y[i * QK8_0 + j] = x[i].qs[j] * d;
        }
}

static void dequantize_q4_K(const BlockQ4_K *x, float *y, size_t n)
{
        for (size_t i = 0; i < n / QK_K; i++) {
                const uint8_t *q = x[i].qs;
                float d = ggml_fp16_to_fp32(x[i].d), min = ggml_fp16_to_fp32(x[i].dmin);
                int is = 0;
                for (int j = 0; j < QK_K; j += 64) {
                        uint8_t sc, m;
                        get_scale_min_k4(is + 0, x[i].scales, &sc, &m);
                        float d1 = d * sc, m1 = min * m;
                        get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
                        float d2 = d * sc, m2 = min * m;
                        for (int l = 0; l < 32; l++)
                                *y++ = d1 * (q[l] & 0xF) - m1;
                        for (int l = 0; l < 32; l++)
                                *y++ = d2 * (q[l] >> 4) - m2;
                        q += 32;
                        is += 2;
                }
        }
}

static void dequantize_q5_K(const BlockQ5_K *x, float *y, size_t n)
{
        for (size_t i = 0; i < n / QK_K; i++) {
                const uint8_t *ql = x[i].qs, *qh = x[i].qh;
                float d = ggml_fp16_to_fp32(x[i].d), min = ggml_fp16_to_fp32(x[i].dmin);
                int is = 0;
                uint8_t u1 = 1, u2 = 2;
                for (int j = 0; j < QK_K; j += 64) {
                        uint8_t sc, m;
                        get_scale_min_k4(is + 0, x[i].scales, &sc, &m);
                        float d1 = d * sc, m1 = min * m;
                        get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
                        float d2 = d * sc, m2 = min * m;
                        for (int l = 0; l < 32; l++)
                                *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
                        for (int l = 0; l < 32; l++)
                                *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
                        ql += 32;
                        is += 2;
                        u1 <<= 2;
                        u2 <<= 2;
                }
        }
}

/* Unpacks a Q6_K block into 256 signed values in [-32, 31]. */
static void unpack_q6_K(const BlockQ6_K *x, int8_t *L)
{
        const uint8_t *ql = x->ql, *qh = x->qh;
        for (int n = 0; n < QK_K; n += 128) {
                for (int l = 0; l < 32; l++) {
                        L[n + l + 0] =
                                (int8_t)(((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                        L[n + l + 32] =
                                (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                        L[n + l + 64] =
                                (int8_t)(((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                        L[n + l + 96] =
                                (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
                }
                ql += 64;
                qh += 32;
        }
}

static void dequantize_q6_K(const BlockQ6_K *x, float *y, size_t n)
{
        int8_t L[QK_K];
        for (size_t i = 0; i < n / QK_K; i++) {
                float d = ggml_fp16_to_fp32(x[i].d);
                unpack_q6_K(&x[i], L);
                for (int j = 0; j < QK_K; j++)
                        y[i * QK_K + j] = d * x[i].scales[j / 16] * L[j];
        }
}

int ggml_dequantize_row(GgmlType type, const void *src, float *dst, size_t n)
{
        const GgmlTypeTraits *t = ggml_type_traits(type);
        if (!t || n % t->block_size != 0)
                return -EINVAL;

        switch (type) {
        case GGML_TYPE_F32:
                memcpy(dst, src, n * sizeof(float));
                return 0;
        case GGML_TYPE_F16:
                for (size_t i = 0; i < n; i++)
                        dst[i] = ggml_fp16_to_fp32(((const ggml_fp16_t *)src)[i]);
                return 0;
        case GGML_TYPE_BF16:
                for (size_t i = 0; i < n; i++)
                        dst[i] = ggml_bf16_to_fp32(((const ggml_bf16_t *)src)[i]);
                return 0;
        case GGML_TYPE_Q4_0:
                dequantize_q4_0(src, dst, n);
                return 0;
        case GGML_TYPE_Q8_0:
                dequantize_q8_0(src, dst, n);
                return 0;
        case GGML_TYPE_Q4_K:
                dequantize_q4_K(src, dst, n);
                return 0;
        case GGML_TYPE_Q5_K:
                dequantize_q5_K(src, dst, n);
                return 0;
        case GGML_TYPE_Q6_K:
                dequantize_q6_K(src, dst, n);
                return 0;
        case GGML_TYPE_Q8_K: {
                const BlockQ8_K *x = src;
                for (size_t i = 0; i < n / QK_K; i++)
                        for (int j = 0; j < QK_K; j++)
                                dst[i * QK_K + j] = x[i].d * x[i].qs[j];
                return 0;
        }
        default:
                return -EOPNOTSUPP;
        }
}

/* ---- quantize ---- */

void ggml_fp32_to_fp32_row(const float *src, void *dst, size_t n)
{
        memcpy(dst, src, n * sizeof(float));
}

void ggml_fp32_to_fp16_row(const float *src, void *dst, size_t n)
{
        ggml_fp16_t *y = dst;
        for (size_t i = 0; i < n; i++)
                y[i] = ggml_fp32_to_fp16(src[i]);
}

void ggml_fp32_to_bf16_row(const float *src, void *dst, size_t n)
{
        ggml_bf16_t *y = dst;
        for (size_t i = 0; i < n; i++)
                y[i] = ggml_fp32_to_bf16(src[i]);
}

void ggml_quantize_row_q8_0_ref(const float *x, void *dst, size_t n)
{
        BlockQ8_0 *y = dst;
        for (size_t i = 0; i < n / QK8_0; i++) {
                float amax = 0.0f;
                for (int j = 0; j < QK8_0; j++)
                        amax = fmaxf(amax, fabsf(x[i * QK8_0 + j]));
                float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
                y[i].d = ggml_fp32_to_fp16(d);
                for (int j = 0; j < QK8_0; j++)
                        y[i].qs[j] = (int8_t)roundf(x[i * QK8_0 + j] * id);
        }
}

void ggml_quantize_row_q8_K_ref(const float *x, void *dst, size_t n)
{
        BlockQ8_K *y = dst;
        for (size_t i = 0; i < n / QK_K; i++, x += QK_K) {
                float max = 0.0f, amax = 0.0f;
                for (int j = 0; j < QK_K; j++)
                        if (fabsf(x[j]) > amax) {
                                amax = fabsf(x[j]);
                                max = x[j];
                        }
                if (amax == 0.0f) {
                        memset(&y[i], 0, sizeof(y[i]));
                        continue;
                }
                float iscale = -127.0f / max;
                for (int j = 0; j < QK_K; j++) {
                        int v = nearest_int(iscale * x[j]);
                        y[i].qs[j] = (int8_t)(v < 127 ? v : 127);
                }
                for (int j = 0; j < QK_K / 16; j++) {
                        int sum = 0;
                        for (int k = 0; k < 16; k++)
                                sum += y[i].qs[j * 16 + k];
                        y[i].bsums[j] = (int16_t)sum;
                }
                y[i].d = 1.0f / iscale;
        }
}

static void quantize_q4_0(const float *x, BlockQ4_0 *y, size_t n)
{
        for (size_t i = 0; i < n / QK4_0; i++, x += QK4_0) {
                float amax = 0.0f, max = 0.0f;
                for (int j = 0; j < QK4_0; j++)
                        if (fabsf(x[j]) > amax) {
                                amax = fabsf(x[j]);
                                max = x[j];
                        }
                float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
                y[i].d = ggml_fp32_to_fp16(d);
                for (int j = 0; j < QK4_0 / 2; j++) {
                        int a = (int)(x[j] * id + 8.5f), b = (int)(x[j + QK4_0 / 2] * id + 8.5f);
                        a = a < 0 ? 0 : a > 15 ? 15 : a;
                        b = b < 0 ? 0 : b > 15 ? 15 : b;
                        y[i].qs[j] = (uint8_t)(a | (b << 4));
                }
        }
}

/* Shared by Q4_K and Q5_K: per 32-element sub-block an affine map x = d*l - m with
 * 6-bit quantized d and m relative to the block's d and dmin. */
static void quantize_kx(const float *x, int nmax, uint8_t *L, ggml_fp16_t *ret_d,
                        ggml_fp16_t *ret_dmin, uint8_t *scales)
{
        float sub_scale[8], sub_min[8], max_scale = 0.0f, max_min = 0.0f;

        for (int j = 0; j < 8; j++) {
                float lo = 0.0f, hi = 0.0f;
                for (int l = 0; l < 32; l++) {
                        lo = fminf(lo, x[32 * j + l]);
                        hi = fmaxf(hi, x[32 * j + l]);
                }
                sub_scale[j] = (hi - lo) / nmax;
                sub_min[j] = -lo;
                max_scale = fmaxf(max_scale, sub_scale[j]);
                max_min = fmaxf(max_min, sub_min[j]);
        }
        float d = max_scale / 63.0f, dmin = max_min / 63.0f;
        *ret_d = ggml_fp32_to_fp16(d);
        *ret_dmin = ggml_fp32_to_fp16(dmin);
        d = ggml_fp16_to_fp32(*ret_d);
        dmin = ggml_fp16_to_fp32(*ret_dmin);

        memset(scales, 0, K_SCALE_SIZE);
        for (int j = 0; j < 8; j++) {
                int ls = d > 0.0f ? nearest_int(sub_scale[j] / d) : 0;
                int lm = dmin > 0.0f ? nearest_int(sub_min[j] / dmin) : 0;
                ls = ls < 0 ? 0 : ls > 63 ? 63 : ls;
                lm = lm < 0 ? 0 : lm > 63 ? 63 : lm;
                if (j < 4) {
                        scales[j] |= (uint8_t)ls;
                        scales[j + 4] |= (uint8_t)lm;
                } else {
                        scales[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
                        scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
                        scales[j] |= (uint8_t)((lm >> 4) << 6);
                }
        }
        for (int j = 0; j < 8; j++) {
                uint8_t sc, m;
                get_scale_min_k4(j, scales, &sc, &m);
                float ds = d * sc, dm = dmin * m;
                for (int l = 0; l < 32; l++) {
                        int q = ds > 0.0f ? nearest_int((x[32 * j + l] + dm) / ds) : 0;
                        L[32 * j + l] = (uint8_t)(q < 0 ? 0 : q > nmax ? nmax : q);
                }
        }
}

static void quantize_q4_K(const float *x, BlockQ4_K *y, size_t n)
{
        uint8_t L[QK_K];
        for (size_t i = 0; i < n / QK_K; i++, x += QK_K) {
                quantize_kx(x, 15, L, &y[i].d, &y[i].dmin, y[i].scales);
                uint8_t *q = y[i].qs;
                for (int j = 0; j < QK_K; j += 64) {
                        for (int l = 0; l < 32; l++)
                                q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
                        q += 32;
                }
        }
}

static void quantize_q5_K(const float *x, BlockQ5_K *y, size_t n)
{
        uint8_t L[QK_K];
        for (size_t i = 0; i < n / QK_K; i++, x += QK_K) {
                quantize_kx(x, 31, L, &y[i].d, &y[i].dmin, y[i].scales);
                uint8_t *ql = y[i].qs, *qh = y[i].qh;
                uint8_t m1 = 1, m2 = 2;
                memset(qh, 0, QK_K / 8);
                for (int j = 0; j < QK_K; j += 64) {
                        for (int l = 0; l < 32; l++) {
                                int l1 = L[j + l], l2 = L[j + l + 32];
                                if (l1 > 15) {
                                        l1 -= 16;
                                        qh[l] |= m1;
                                }
                                if (l2 > 15) {
                                        l2 -= 16;
                                        qh[l] |= m2;
                                }
                                ql[l] = (uint8_t)(l1 | (l2 << 4));
                        }
                        ql += 32;
                        m1 <<= 2;
                        m2 <<= 2;
                }
        }
}

static void quantize_q6_K(const float *x, BlockQ6_K *y, size_t n)
{
        uint8_t L[QK_K];
        for (size_t i = 0; i < n / QK_K; i++, x += QK_K) {
                float sub[16], max_sub = 0.0f;
                for (int g = 0; g < 16; g++) {
                        float amax = 0.0f;
                        for (int l = 0; l < 16; l++)
                                amax = fmaxf(amax, fabsf(x[16 * g + l]));
                        sub[g] = amax / 31.0f;
                        max_sub = fmaxf(max_sub, sub[g]);
                }
                y[i].d = ggml_fp32_to_fp16(max_sub / 127.0f);
                float d = ggml_fp16_to_fp32(y[i].d);
                for (int g = 0; g < 16; g++) {
                        int ls = d > 0.0f ? nearest_int(sub[g] / d) : 0;
                        ls = ls > 127 ? 127 : ls;
                        y[i].scales[g] = (int8_t)ls;
                        float ds = d * ls;
                        for (int l = 0; l < 16; l++) {
                                int q = ds > 0.0f ? nearest_int(x[16 * g + l] / ds) : 0;
                                q = q < -32 ? -32 : q > 31 ? 31 : q;
                                L[16 * g + l] = (uint8_t)(q + 32);
                        }
                }
                uint8_t *ql = y[i].ql, *qh = y[i].qh;
                for (int j = 0; j < QK_K; j += 128) {
                        for (int l = 0; l < 32; l++) {
                                uint8_t q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64],
                                        q4 = L[j + l + 96];
                                ql[l] = (uint8_t)((q1 & 0xF) | ((q3 & 0xF) << 4));
                                ql[l + 32] = (uint8_t)((q2 & 0xF) | ((q4 & 0xF) << 4));
                                qh[l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) |
                                                  ((q4 >> 4) << 6));
                        }
                        ql += 64;
                        qh += 32;
                }
        }
}

int ggml_quantize_row(GgmlType type, const float *src, void *dst, size_t n)
{
        const GgmlTypeTraits *t = ggml_type_traits(type);
        if (!t || n % t->block_size != 0)
                return -EINVAL;

        switch (type) {
        case GGML_TYPE_F32:
                ggml_fp32_to_fp32_row(src, dst, n);
                return 0;
        case GGML_TYPE_F16:
                ggml_fp32_to_fp16_row(src, dst, n);
                return 0;
        case GGML_TYPE_BF16:
                ggml_fp32_to_bf16_row(src, dst, n);
                return 0;
        case GGML_TYPE_Q4_0:
                quantize_q4_0(src, dst, n);
                return 0;
        case GGML_TYPE_Q8_0:
                ggml_quantize_row_q8_0_ref(src, dst, n);
                return 0;
        case GGML_TYPE_Q4_K:
                quantize_q4_K(src, dst, n);
                return 0;
        case GGML_TYPE_Q5_K:
                quantize_q5_K(src, dst, n);
                return 0;
        case GGML_TYPE_Q6_K:
                quantize_q6_K(src, dst, n);
                return 0;
        case GGML_TYPE_Q8_K:
                ggml_quantize_row_q8_K_ref(src, dst, n);
                return 0;
        default:
                return -EOPNOTSUPP;
        }
}

/* ---- reference dot products ---- */

float ggml_vec_dot_f32_ref(size_t n, const void *vx, const void *vy)
{
        const float *x = vx, *y = vy;
        double sum = 0.0;
        for (size_t i = 0; i < n; i++)
                sum += (double)(x[i] * y[i]);
        return (float)sum;
}

float ggml_vec_dot_f16_ref(size_t n, const void *vx, const void *vy)
{
        const ggml_fp16_t *x = vx, *y = vy;
        double sum = 0.0;
        for (size_t i = 0; i < n; i++)
                sum += (double)(ggml_fp16_to_fp32(x[i]) * ggml_fp16_to_fp32(y[i]));
        return (float)sum;
}

float ggml_vec_dot_bf16_ref(size_t n, const void *vx, const void *vy)
{
        const ggml_bf16_t *x = vx, *y = vy;
        double sum = 0.0;
        for (size_t i = 0; i < n; i++)
                sum += (double)(ggml_bf16_to_fp32(x[i]) * ggml_bf16_to_fp32(y[i]));
        return (float)sum;
}

float ggml_vec_dot_q8_0_q8_0_ref(size_t n, const void *vx, const void *vy)
{
        const BlockQ8_0 *x = vx, *y = vy;
        float sum = 0.0f;
        for (size_t i = 0; i < n / QK8_0; i++) {
                int s = 0;
                for (int j = 0; j < QK8_0; j++)
                        s += x[i].qs[j] * y[i].qs[j];
                sum += s * (ggml_fp16_to_fp32(x[i].d) * ggml_fp16_to_fp32(y[i].d));
        }
        return sum;
}

float ggml_vec_dot_q4_0_q8_0_ref(size_t n, const void *vx, const void *vy)
{
        const BlockQ4_0 *x = vx;
        const BlockQ8_0 *y = vy;
        float sum = 0.0f;
        for (size_t i = 0; i < n / QK4_0; i++) {
                int s = 0;
                for (int j = 0; j < QK4_0 / 2; j++) {
                        s += ((x[i].qs[j] & 0xF) - 8) * y[i].qs[j];
                        s += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + QK4_0 / 2];
                }
                sum += s * (ggml_fp16_to_fp32(x[i].d) * ggml_fp16_to_fp32(y[i].d));
        }
        return sum;
}

float ggml_vec_dot_q4_K_q8_K_ref(size_t n, const void *vx, const void *vy)
{
        const BlockQ4_K *x = vx;
        const BlockQ8_K *y = vy;
        float sum = 0.0f;
        for (size_t i = 0; i < n / QK_K; i++) {
                uint8_t sc[8], m[8];
                for (int j = 0; j < 8; j++)
                        get_scale_min_k4(j, x[i].scales, &sc[j], &m[j]);
                int summs = 0;
                for (int j = 0; j < 8; j++)
                        summs += m[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
                const uint8_t *q4 = x[i].qs;
                const int8_t *q8 = y[i].qs;
                int isum = 0;
                for (int j = 0; j < 4; j++) {
                        int s1 = 0, s2 = 0;
                        for (int l = 0; l < 32; l++) {
                                s1 += (q4[l] & 0xF) * q8[l];
                                s2 += (q4[l] >> 4) * q8[l + 32];
                        }
                        isum += s1 * sc[2 * j] + s2 * sc[2 * j + 1];
                        q4 += 32;
                        q8 += 64;
                }
                float d = ggml_fp16_to_fp32(x[i].d) * y[i].d;
                float dmin = ggml_fp16_to_fp32(x[i].dmin) * y[i].d;
                sum += d * isum - dmin * summs;
        }
        return sum;
}

float ggml_vec_dot_q5_K_q8_K_ref(size_t n, const void *vx, const void *vy)
{
        const BlockQ5_K *x = vx;
        const BlockQ8_K *y = vy;
        float sum = 0.0f;
        for (size_t i = 0; i < n / QK_K; i++) {
                uint8_t sc[8], m[8];
                for (int j = 0; j < 8; j++)
                        get_scale_min_k4(j, x[i].scales, &sc[j], &m[j]);
                int summs = 0;
                for (int j = 0; j < 8; j++)
                        summs += m[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
                const uint8_t *ql = x[i].qs, *qh = x[i].qh;
                const int8_t *q8 = y[i].qs;
                int isum = 0;
                uint8_t u1 = 1, u2 = 2;
                for (int j = 0; j < 4; j++) {
                        int s1 = 0, s2 = 0;
                        for (int l = 0; l < 32; l++) {
                                s1 += ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) * q8[l];
                                s2 += ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) * q8[l + 32];
                        }
                        isum += s1 * sc[2 * j] + s2 * sc[2 * j + 1];
                        ql += 32;
                        q8 += 64;
                        u1 <<= 2;
                        u2 <<= 2;
                }
                float d = ggml_fp16_to_fp32(x[i].d) * y[i].d;
                float dmin = ggml_fp16_to_fp32(x[i].dmin) * y[i].d;
                sum += d * isum - dmin * summs;
        }
        return sum;
}

float ggml_vec_dot_q6_K_q8_K_ref(size_t n, const void *vx, const void *vy)
{
        const BlockQ6_K *x = vx;
        const BlockQ8_K *y = vy;
        int8_t L[QK_K];
        float sum = 0.0f;
        for (size_t i = 0; i < n / QK_K; i++) {
                unpack_q6_K(&x[i], L);
                int isum = 0;
                for (int g = 0; g < 16; g++) {
                        int s = 0;
                        for (int l = 0; l < 16; l++)
                                s += L[16 * g + l] * y[i].qs[16 * g + l];
                        isum += s * x[i].scales[g];
                }
                sum += ggml_fp16_to_fp32(x[i].d) * y[i].d * isum;
        }
        return sum;
}

/* ---- dispatch ---- */

int ggml_kernels_get_reference(GgmlType type, GgmlKernels *ret)
{
        GgmlKernels k = {};

        switch (type) {
        case GGML_TYPE_F32:
                k = (GgmlKernels){ggml_vec_dot_f32_ref, NULL, ggml_fp32_to_fp32_row};
                break;
        case GGML_TYPE_F16:
                k = (GgmlKernels){ggml_vec_dot_f16_ref, NULL, ggml_fp32_to_fp16_row};
                break;
        case GGML_TYPE_BF16:
                k = (GgmlKernels){ggml_vec_dot_bf16_ref, NULL, ggml_fp32_to_bf16_row};
                break;
        case GGML_TYPE_Q8_0:
                k = (GgmlKernels){ggml_vec_dot_q8_0_q8_0_ref, NULL, ggml_quantize_row_q8_0_ref};
                break;
        case GGML_TYPE_Q4_0:
                k = (GgmlKernels){ggml_vec_dot_q4_0_q8_0_ref, NULL, ggml_quantize_row_q8_0_ref};
                break;
        case GGML_TYPE_Q4_K:
                k = (GgmlKernels){ggml_vec_dot_q4_K_q8_K_ref, NULL, ggml_quantize_row_q8_K_ref};
                break;
        case GGML_TYPE_Q5_K:
                k = (GgmlKernels){ggml_vec_dot_q5_K_q8_K_ref, NULL, ggml_quantize_row_q8_K_ref};
                break;
        case GGML_TYPE_Q6_K:
                k = (GgmlKernels){ggml_vec_dot_q6_K_q8_K_ref, NULL, ggml_quantize_row_q8_K_ref};
                break;
        default:
                return -EOPNOTSUPP;
        }
        *ret = k;
        return 0;
}

static int use_avx2 = -1, use_avx512 = -1, use_vnni = -1;

static bool env_is_1(const char *name)
{
        const char *e = getenv(name);
        return e && strcmp(e, "1") == 0;
}

static bool want_avx2(void)
{
        if (use_avx2 < 0)
                use_avx2 = !env_is_1("ENGINE_FORCE_SCALAR") && ggml_cpu_has_avx2();
        return use_avx2;
}

static bool want_avx512(void)
{
        if (use_avx512 < 0)
                use_avx512 = want_avx2() && !env_is_1("ENGINE_FORCE_AVX2") && ggml_cpu_has_avx512();
        return use_avx512;
}

static bool want_vnni(void)
{
        if (use_vnni < 0)
                use_vnni =
                        want_avx512() && !env_is_1("ENGINE_NO_GEMM") && ggml_cpu_has_avx512_vnni();
        return use_vnni;
}

const char *ggml_kernels_isa(void)
{
        return want_avx512() ? "avx512" : want_avx2() ? "avx2" : "scalar";
}

/* The kernels each instruction set adds, one row per type; a field left NULL keeps what
 * the set below it (or the reference) gave. */
typedef struct KernelRow {
        GgmlType type;
        GgmlKernels k;
} KernelRow;

static const KernelRow avx2_rows[] = {
        {GGML_TYPE_F32, {.vec_dot = ggml_vec_dot_f32_avx2}},
        {GGML_TYPE_F16,
         {.vec_dot = ggml_vec_dot_f16_avx2,
          .vec_dot4 = ggml_vec_dot4_f16_avx2,
          .from_float = ggml_fp32_to_fp16_row_avx2}},
        {GGML_TYPE_Q8_0,
         {.vec_dot = ggml_vec_dot_q8_0_q8_0_avx2,
          .vec_dot4 = ggml_vec_dot4_q8_0_q8_0_avx2,
          .from_float = ggml_quantize_row_q8_0_avx2}},
        {GGML_TYPE_Q4_0,
         {.vec_dot = ggml_vec_dot_q4_0_q8_0_avx2,
          .vec_dot4 = ggml_vec_dot4_q4_0_q8_0_avx2,
          .from_float = ggml_quantize_row_q8_0_avx2}},
        {GGML_TYPE_Q4_K,
         {.vec_dot = ggml_vec_dot_q4_K_q8_K_avx2,
          .vec_dot4 = ggml_vec_dot4_q4_K_q8_K_avx2,
          .from_float = ggml_quantize_row_q8_K_avx2}},
        {GGML_TYPE_Q6_K,
         {.vec_dot = ggml_vec_dot_q6_K_q8_K_avx2,
          .vec_dot4 = ggml_vec_dot4_q6_K_q8_K_avx2,
          .from_float = ggml_quantize_row_q8_K_avx2}},
        {GGML_TYPE_Q5_K,
         {.vec_dot = ggml_vec_dot_q5_K_q8_K_avx2,
          .vec_dot4 = ggml_vec_dot4_q5_K_q8_K_avx2,
          .from_float = ggml_quantize_row_q8_K_avx2}},
        {GGML_TYPE_BF16,
         {.vec_dot = ggml_vec_dot_bf16_avx2,
          .vec_dot4 = ggml_vec_dot4_bf16_avx2,
          .from_float = ggml_fp32_to_bf16_row_avx2}},
};

static const KernelRow avx512_rows[] = {
        {GGML_TYPE_F16, {.vec_dot = ggml_vec_dot_f16_avx512, .vec_dot4 = ggml_vec_dot4_f16_avx512}},
        {GGML_TYPE_Q8_0,
         {.vec_dot = ggml_vec_dot_q8_0_q8_0_avx512, .vec_dot4 = ggml_vec_dot4_q8_0_q8_0_avx512}},
        {GGML_TYPE_Q4_0,
         {.vec_dot = ggml_vec_dot_q4_0_q8_0_avx512, .vec_dot4 = ggml_vec_dot4_q4_0_q8_0_avx512}},
        {GGML_TYPE_Q4_K,
         {.vec_dot = ggml_vec_dot_q4_K_q8_K_avx512, .vec_dot4 = ggml_vec_dot4_q4_K_q8_K_avx512}},
        {GGML_TYPE_Q6_K,
         {.vec_dot = ggml_vec_dot_q6_K_q8_K_avx512, .vec_dot4 = ggml_vec_dot4_q6_K_q8_K_avx512}},
};

static const KernelRow vnni_rows[] = {
        {GGML_TYPE_F16, {.gemm4 = ggml_gemm4_f16_vnni, .gemm_wide = ggml_gemm_wide_f16_avx512}},
        {GGML_TYPE_Q8_0,
         {.gemm4 = ggml_gemm4_q8_0_q8_0_vnni, .gemm16 = ggml_gemm16_q8_0_q8_0_vnni}},
        {GGML_TYPE_Q4_0,
         {.gemm4 = ggml_gemm4_q4_0_q8_0_vnni, .gemm16 = ggml_gemm16_q4_0_q8_0_vnni}},
        {GGML_TYPE_Q4_K,
         {.gemm4 = ggml_gemm4_q4_K_q8_K_vnni, .gemm16 = ggml_gemm16_q4_K_q8_K_vnni}},
};

static void kernels_add(GgmlKernels *k, GgmlType type, const KernelRow *rows, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                const GgmlKernels *a = &rows[i].k;
                if (rows[i].type != type)
                        continue;
#define TAKE(f)                                                                                    \
        if (a->f)                                                                                  \
        k->f = a->f
                TAKE(vec_dot);
                TAKE(vec_dot4);
                TAKE(from_float);
                TAKE(gemm4);
                TAKE(gemm16);
                TAKE(gemm_wide);
#undef TAKE
        }
}

int ggml_kernels_get(GgmlType type, GgmlKernels *ret)
{
        GgmlKernels k;
        int r;

        r = ggml_kernels_get_reference(type, &k);
        if (r < 0)
                return r;
        if (want_avx2())
                kernels_add(&k, type, avx2_rows, ELEMENTSOF(avx2_rows));
        if (want_avx512())
                kernels_add(&k, type, avx512_rows, ELEMENTSOF(avx512_rows));
        if (want_vnni())
                kernels_add(&k, type, vnni_rows, ELEMENTSOF(vnni_rows));
        *ret = k;
        return 0;
}

void ggml_vec_mad_f16_ref(size_t n, float *y, const ggml_fp16_t *x, float s)
{
        for (size_t i = 0; i < n; i++)
                y[i] += s * ggml_fp16_to_fp32(x[i]);
}

float ggml_vec_dot_f16(size_t n, const ggml_fp16_t *x, const ggml_fp16_t *y)
{
        return want_avx2() ? ggml_vec_dot_f16_avx2(n, x, y) : ggml_vec_dot_f16_ref(n, x, y);
}

float ggml_vec_dot_f32(size_t n, const float *x, const float *y)
{
        return want_avx2() ? ggml_vec_dot_f32_avx2(n, x, y) : ggml_vec_dot_f32_ref(n, x, y);
}

void ggml_vec_mad_f16(size_t n, float *y, const ggml_fp16_t *x, float s)
{
        if (want_avx2())
                ggml_vec_mad_f16_avx2(n, y, x, s);
        else
                ggml_vec_mad_f16_ref(n, y, x, s);
}

void ggml_fp32_to_fp16_row_fast(const float *src, ggml_fp16_t *dst, size_t n)
{
        if (want_avx2())
                ggml_fp32_to_fp16_row_avx2(src, dst, n);
        else
                ggml_fp32_to_fp16_row(src, dst, n);
}

void ggml_fp16_to_fp32_row_fast(const ggml_fp16_t *src, float *dst, size_t n)
{
        if (want_avx2()) {
                ggml_fp16_to_fp32_row_avx2(src, dst, n);
                return;
        }
        for (size_t i = 0; i < n; i++)
                dst[i] = ggml_fp16_to_fp32(src[i]);
}
