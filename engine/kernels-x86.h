/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Helpers the x86 kernel files share (kernels-avx2.c, kernels-avx512.c, kernels-gemm.c).
 * Include it after the file's target pragma, so that the functions take that target;
 * define KERNELS_X86_AVX512 first for the 512-bit ones. */
#include <immintrin.h>
#include <string.h>

#include "engine/ggml-types.h"

static inline float f16(ggml_fp16_t h)
{
        return _cvtsh_ss(h);
}

/* A Q4_0 block's 32 nibbles as bytes 0..15: low nibbles, then high ones. */
static inline __m256i unpack_q4_0(const uint8_t *qs)
{
        __m128i b = _mm_loadu_si128((const __m128i *)qs);
        __m128i lo = _mm_and_si128(b, _mm_set1_epi8(0xF));
        __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(0xF));
        return _mm256_set_m128i(hi, lo);
}

/* The 6-bit scales and minimums of a K-quant block as 8 + 8 bytes (little-endian in the
 * two words), with 32-bit word operations instead of a byte loop. */
static inline void scales_mins_k4(const uint8_t *q, uint64_t *ret_sc, uint64_t *ret_m)
{
        uint32_t u0, u1, u2;
        memcpy(&u0, q, 4);
        memcpy(&u1, q + 4, 4);
        memcpy(&u2, q + 8, 4);
        uint32_t sc_lo = u0 & 0x3f3f3f3fu, m_lo = u1 & 0x3f3f3f3fu;
        uint32_t sc_hi = (u2 & 0x0f0f0f0fu) | ((u0 >> 2) & 0x30303030u);
        uint32_t m_hi = ((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 2) & 0x30303030u);
        *ret_sc = sc_lo | (uint64_t)sc_hi << 32;
        *ret_m = m_lo | (uint64_t)m_hi << 32;
}

#if defined(KERNELS_X86_AVX512)
static inline __m512i join256(__m256i lo, __m256i hi)
{
        return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* a in the lower eight lanes, b in the upper eight */
static inline __m512 scale2(float a, float b)
{
        return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_set1_ps(a)),
                                                   _mm256_castps_pd(_mm256_set1_ps(b)), 1));
}
#endif
