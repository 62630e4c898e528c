/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Tensor element types as GGUF files number them, their block layouts, and the scalar
 * reference kernels: dequantize, quantize, and dot products of a weight row with an
 * activation row. Weights keep the file's type; activations are converted once per
 * matrix multiplication to the weight type's "dot partner" (F32 for F32, F16 for F16,
 * BF16 for BF16, Q8_0 for Q8_0/Q4_0, Q8_K for the K-quants), as llama.cpp does, so that
 * results match it closely and the inner loops are integer dot products.
 *
 * The block layouts are part of the GGUF format and must stay byte-exact. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum GgmlType {
        GGML_TYPE_F32 = 0,
        GGML_TYPE_F16 = 1,
        GGML_TYPE_Q4_0 = 2,
        GGML_TYPE_Q4_1 = 3,
        GGML_TYPE_Q5_0 = 6,
        GGML_TYPE_Q5_1 = 7,
        GGML_TYPE_Q8_0 = 8,
        GGML_TYPE_Q8_1 = 9,
        GGML_TYPE_Q2_K = 10,
        GGML_TYPE_Q3_K = 11,
        GGML_TYPE_Q4_K = 12,
        GGML_TYPE_Q5_K = 13,
        GGML_TYPE_Q6_K = 14,
        GGML_TYPE_Q8_K = 15,
        GGML_TYPE_BF16 = 30,
        GGML_TYPE_MAX_ID = 64, /* ids past this are refused outright */
} GgmlType;

#define QK4_0 32
#define QK8_0 32
#define QK_K 256
#define K_SCALE_SIZE 12

typedef uint16_t ggml_fp16_t;
typedef uint16_t ggml_bf16_t;

typedef struct BlockQ4_0 {
        ggml_fp16_t d;
        uint8_t qs[QK4_0 / 2];
} BlockQ4_0;

typedef struct BlockQ8_0 {
        ggml_fp16_t d;
        int8_t qs[QK8_0];
} BlockQ8_0;

typedef struct BlockQ4_K {
        ggml_fp16_t d;
        ggml_fp16_t dmin;
        uint8_t scales[K_SCALE_SIZE];
        uint8_t qs[QK_K / 2];
} BlockQ4_K;

typedef struct BlockQ5_K {
        ggml_fp16_t d;
        ggml_fp16_t dmin;
        uint8_t scales[K_SCALE_SIZE];
        uint8_t qh[QK_K / 8];
        uint8_t qs[QK_K / 2];
} BlockQ5_K;

typedef struct BlockQ6_K {
        uint8_t ql[QK_K / 2];
        uint8_t qh[QK_K / 4];
        int8_t scales[QK_K / 16];
        ggml_fp16_t d;
} BlockQ6_K;

typedef struct BlockQ8_K {
        float d;
        int8_t qs[QK_K];
        int16_t bsums[QK_K / 16];
} BlockQ8_K;

_Static_assert(sizeof(BlockQ4_0) == 18, "Q4_0 block layout");
_Static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block layout");
_Static_assert(sizeof(BlockQ4_K) == 144, "Q4_K block layout");
_Static_assert(sizeof(BlockQ5_K) == 176, "Q5_K block layout");
_Static_assert(sizeof(BlockQ6_K) == 210, "Q6_K block layout");
_Static_assert(sizeof(BlockQ8_K) == 292, "Q8_K block layout");

/* Static description of one type. Types we can only size (to skip or report them) have
 * supported = false. */
typedef struct GgmlTypeTraits {
        const char *name;
        size_t block_size; /* elements per block */
        size_t type_size; /* bytes per block */
        bool supported; /* the engine computes with it */
        GgmlType vec_dot_type;
} GgmlTypeTraits;

/* NULL for an id the format does not define. */
const GgmlTypeTraits *ggml_type_traits(uint32_t type);
const char *ggml_type_name(uint32_t type);
/* Bytes of a row of n elements; 0 if n is not a multiple of the block size. */
size_t ggml_row_size(GgmlType type, size_t n);

float ggml_fp16_to_fp32(ggml_fp16_t h);
ggml_fp16_t ggml_fp32_to_fp16(float f);
float ggml_bf16_to_fp32(ggml_bf16_t h);
ggml_bf16_t ggml_fp32_to_bf16(float f);

/* Reference (portable C) kernels. n is a multiple of the type's block size. */
int ggml_dequantize_row(GgmlType type, const void *src, float *dst, size_t n);
int ggml_quantize_row(GgmlType type, const float *src, void *dst, size_t n);

/* dot(x, y) where x is a row of type `type` and y a row of its vec_dot_type. */
typedef float (*GgmlVecDotFn)(size_t n, const void *x, const void *y);
/* Converts an f32 row into a vec_dot_type row. */
typedef void (*GgmlFromFloatFn)(const float *src, void *dst, size_t n);

/* out[k] = dot(x, y + k * y_stride) for k < 4: one weight row against four activation
 * rows, so that the weights are unpacked once for four products (prompt processing). */
typedef void (*GgmlVecDot4Fn)(size_t n, const void *x, const void *y, size_t y_stride, float *out);

/* out[t * os + r] = dot(x + r * xs, y + t * ys) for r < 4 and t < 4: a 4x4 tile of a
 * matrix product (four weight rows against four activation rows; strides in bytes for x
 * and y, in floats for out), for prompt processing and batched decoding. */
typedef void (*GgmlGemm4Fn)(size_t n, const void *x, size_t xs, const void *y, size_t ys,
                            float *out, size_t os);

/* out[t * os + r] = dot(packed row r, y + t * ys) for r < 16 and t < nt (1..16); x points
 * at a packed group of 16 rows, ysum at ggml_q8_0_sums() of each token (stride yss). */
typedef void (*GgmlGemm16Fn)(size_t n, const void *x, const void *y, size_t ys, const int32_t *ysum,
                             size_t yss, size_t nt, float *out, size_t os);

/* out[t * os + r] = dot(x + r * xs, y + t * ys) for r < nr (1..3) and t < nt (1..8), with
 * F32 activations (ys in floats) already rounded to the vec_dot type: one pass over the
 * rows for all tokens of a decoding step. */
typedef void (*GgmlGemmWideFn)(size_t n, const void *x, size_t xs, size_t nr, const float *y,
                               size_t ys, size_t nt, float *out, size_t os);
#define GGML_GEMM_WIDE_ROWS 3
#define GGML_GEMM_WIDE_TOKENS 8

typedef struct GgmlKernels {
        GgmlVecDotFn vec_dot;
        GgmlVecDot4Fn vec_dot4; /* NULL: call vec_dot four times */
        GgmlFromFloatFn from_float; /* of the vec_dot_type */
        GgmlGemm4Fn gemm4; /* NULL: call vec_dot4 (or vec_dot) row by row */
        GgmlGemm16Fn gemm16; /* over ggml_pack16() rows; NULL: none */
        GgmlGemmWideFn gemm_wide; /* F16 weights, batched decoding; NULL: none */
} GgmlKernels;

/* The fastest kernels for this CPU (AVX2/FMA when available) or the reference ones. */
int ggml_kernels_get(GgmlType type, GgmlKernels *ret);
int ggml_kernels_get_reference(GgmlType type, GgmlKernels *ret);
/* Name of the instruction set the dispatcher picked: "avx512", "avx2" or "scalar".
 * ENGINE_FORCE_SCALAR=1 in the environment forces the reference kernels,
 * ENGINE_FORCE_AVX2=1 the AVX2 ones on an AVX-512 machine, ENGINE_NO_GEMM=1 leaves out
 * the VNNI tile kernels (gemm4, gemm16) and with them the packed weights. */
const char *ggml_kernels_isa(void);

/* Dispatched helpers for attention (rows of any length). */
float ggml_vec_dot_f16(size_t n, const ggml_fp16_t *x, const ggml_fp16_t *y);
float ggml_vec_dot_f32(size_t n, const float *x, const float *y);
/* Row conversions, dispatched (AVX2/F16C when available). */
void ggml_fp32_to_fp16_row_fast(const float *src, ggml_fp16_t *dst, size_t n);
void ggml_fp16_to_fp32_row_fast(const ggml_fp16_t *src, float *dst, size_t n);
void ggml_fp16_to_fp32_row_avx2(const ggml_fp16_t *src, float *dst, size_t n);
/* y += s * x */
void ggml_vec_mad_f16(size_t n, float *y, const ggml_fp16_t *x, float s);
void ggml_vec_mad_f16_ref(size_t n, float *y, const ggml_fp16_t *x, float s);
void ggml_vec_mad_f16_avx2(size_t n, float *y, const ggml_fp16_t *x, float s);

/* Reference converters and dot products, exported for the tests. */
void ggml_quantize_row_q8_0_ref(const float *src, void *dst, size_t n);
void ggml_quantize_row_q8_K_ref(const float *src, void *dst, size_t n);
void ggml_fp32_to_fp16_row(const float *src, void *dst, size_t n);
void ggml_fp32_to_bf16_row(const float *src, void *dst, size_t n);
void ggml_fp32_to_fp32_row(const float *src, void *dst, size_t n);
float ggml_vec_dot_f32_ref(size_t n, const void *x, const void *y);
float ggml_vec_dot_f16_ref(size_t n, const void *x, const void *y);
float ggml_vec_dot_bf16_ref(size_t n, const void *x, const void *y);
float ggml_vec_dot_q8_0_q8_0_ref(size_t n, const void *x, const void *y);
float ggml_vec_dot_q4_0_q8_0_ref(size_t n, const void *x, const void *y);
float ggml_vec_dot_q4_K_q8_K_ref(size_t n, const void *x, const void *y);
float ggml_vec_dot_q5_K_q8_K_ref(size_t n, const void *x, const void *y);
float ggml_vec_dot_q6_K_q8_K_ref(size_t n, const void *x, const void *y);

/* AVX2/FMA kernels (kernels-avx2.c); only call when the CPU has avx2, fma and f16c. */
void ggml_quantize_row_q8_0_avx2(const float *src, void *dst, size_t n);
void ggml_quantize_row_q8_K_avx2(const float *src, void *dst, size_t n);
void ggml_fp32_to_fp16_row_avx2(const float *src, void *dst, size_t n);
void ggml_fp32_to_bf16_row_avx2(const float *src, void *dst, size_t n);
float ggml_vec_dot_f32_avx2(size_t n, const void *x, const void *y);
float ggml_vec_dot_f16_avx2(size_t n, const void *x, const void *y);
float ggml_vec_dot_q8_0_q8_0_avx2(size_t n, const void *x, const void *y);
float ggml_vec_dot_q4_0_q8_0_avx2(size_t n, const void *x, const void *y);
float ggml_vec_dot_q4_K_q8_K_avx2(size_t n, const void *x, const void *y);
float ggml_vec_dot_q6_K_q8_K_avx2(size_t n, const void *x, const void *y);
float ggml_vec_dot_bf16_avx2(size_t n, const void *x, const void *y);
float ggml_vec_dot_q5_K_q8_K_avx2(size_t n, const void *x, const void *y);
void ggml_vec_dot4_f16_avx2(size_t n, const void *x, const void *y, size_t ys, float *out);
void ggml_vec_dot4_q8_0_q8_0_avx2(size_t n, const void *x, const void *y, size_t ys, float *out);
void ggml_vec_dot4_q4_0_q8_0_avx2(size_t n, const void *x, const void *y, size_t ys, float *out);
void ggml_vec_dot4_q4_K_q8_K_avx2(size_t n, const void *x, const void *y, size_t ys, float *out);
void ggml_vec_dot4_q6_K_q8_K_avx2(size_t n, const void *x, const void *y, size_t ys, float *out);
void ggml_vec_dot4_bf16_avx2(size_t n, const void *x, const void *y, size_t ys, float *out);
void ggml_vec_dot4_q5_K_q8_K_avx2(size_t n, const void *x, const void *y, size_t ys, float *out);
bool ggml_cpu_has_avx2(void);

/* AVX-512 (F, BW, VL) four-row kernels (kernels-avx512.c). */
void ggml_vec_dot4_q8_0_q8_0_avx512(size_t n, const void *x, const void *y, size_t ys, float *out);
void ggml_vec_dot4_q4_0_q8_0_avx512(size_t n, const void *x, const void *y, size_t ys, float *out);
void ggml_vec_dot4_q4_K_q8_K_avx512(size_t n, const void *x, const void *y, size_t ys, float *out);
void ggml_vec_dot4_q6_K_q8_K_avx512(size_t n, const void *x, const void *y, size_t ys, float *out);
float ggml_vec_dot_q8_0_q8_0_avx512(size_t n, const void *x, const void *y);
float ggml_vec_dot_q4_0_q8_0_avx512(size_t n, const void *x, const void *y);
float ggml_vec_dot_q4_K_q8_K_avx512(size_t n, const void *x, const void *y);
float ggml_vec_dot_q6_K_q8_K_avx512(size_t n, const void *x, const void *y);
float ggml_vec_dot_f16_avx512(size_t n, const void *x, const void *y);
void ggml_vec_dot4_f16_avx512(size_t n, const void *x, const void *y, size_t ys, float *out);
bool ggml_cpu_has_avx512(void);

/* AVX-512 VNNI 4x4 tile kernels (kernels-gemm.c). */
void ggml_gemm4_q8_0_q8_0_vnni(size_t n, const void *x, size_t xs, const void *y, size_t ys,
                               float *out, size_t os);
void ggml_gemm4_q4_0_q8_0_vnni(size_t n, const void *x, size_t xs, const void *y, size_t ys,
                               float *out, size_t os);
void ggml_gemm4_q4_K_q8_K_vnni(size_t n, const void *x, size_t xs, const void *y, size_t ys,
                               float *out, size_t os);
void ggml_gemm4_f16_vnni(size_t n, const void *x, size_t xs, const void *y, size_t ys, float *out,
                         size_t os);
bool ggml_cpu_has_avx512_vnni(void);
void ggml_gemm_wide_f16_avx512(size_t n, const void *x, size_t xs, size_t nr, const float *y,
                               size_t ys, size_t nt, float *out, size_t os);

/* Sixteen weight rows interleaved block by block (Q4_0, Q8_0, Q4_K), the layout of the
 * gemm16 kernels: for each group of 16 rows and each block, the 16 F16 scales, then for
 * k = 0..3 (Q4_0) or 0..7 (Q8_0) bytes 4k..4k+3 of the block of each of the 16 rows
 * (Q8_0 bytes stored + 128, i.e. unsigned); same size as the rows it is made from.
 * Q4_K: 16 d, 16 dmin (F16), the 8 six-bit scales and 8 minimums as bytes [j][row],
 * then for k = 0..31 bytes 4k..4k+3 of each row's nibbles (3% more than the rows). */
size_t ggml_pack16_block_size(GgmlType type); /* 0: the type has no packed layout */
/* An allocated (free()) packed copy of ne1 rows (a multiple of 16) of ne0 elements. */
int ggml_pack16(GgmlType type, const void *src, size_t ne0, size_t ne1, void **ret);
/* out[i] = sum of the 32 quants of Q8_0 block i of a row of n elements. */
void ggml_q8_0_sums(const void *y, size_t n, int32_t *out);
/* Per Q8_K block i, four words q: the sums of the 32-value sub-blocks 2q (low 16 bits)
 * and 2q+1 (high 16 bits), for the Q4_K gemm16 kernel's minimums. */
void ggml_q8_K_pair_sums(const void *y, size_t n, int32_t *out);
void ggml_gemm16_q4_0_q8_0_vnni(size_t n, const void *x, const void *y, size_t ys,
                                const int32_t *ysum, size_t yss, size_t nt, float *out, size_t os);
void ggml_gemm16_q8_0_q8_0_vnni(size_t n, const void *x, const void *y, size_t ys,
                                const int32_t *ysum, size_t yss, size_t nt, float *out, size_t os);
void ggml_gemm16_q4_K_q8_K_vnni(size_t n, const void *x, const void *y, size_t ys,
                                const int32_t *ysum, size_t yss, size_t nt, float *out, size_t os);
