/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Vectorized pieces of the forward pass other than the matrix products: SiLU gating and
 * one query's attention over an F16 cache. AVX-512 when the CPU has it (and neither
 * ENGINE_FORCE_SCALAR nor ENGINE_FORCE_AVX2 is set), plain C otherwise. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "engine/ggml-types.h"

/* g[i] = g[i] / (1 + e^-g[i]) * u[i] */
void vm_silu_mul(float *g, const float *u, size_t n);

/* One query against n_kv cached positions of one KV head, F16 keys and values rows
 * `stride` elements apart: scores = softmax(scale * q·k), the weights rounded to F16,
 * out = sum of weight * v. `scores` holds n_kv floats. Returns false (and does nothing)
 * when no vector path fits this machine or head size; the caller then does it itself. */
bool vm_attn_f16(const ggml_fp16_t *q16, const ggml_fp16_t *k, const ggml_fp16_t *v, size_t stride,
                 size_t n_kv, size_t hd, float scale, float *scores, float *out);

/* The same for nq <= 16 queries of one KV head at once (q[r], F32, is rounded to F16
 * here; query r sees n_kv[r] positions; out[r] gets hd floats): the keys and values are
 * converted once for all of them, and each query's result is bit-identical to
 * vm_attn_f16()'s. `scores` holds nq rows of sc_stride >= max n_kv floats. */
bool vm_attn_f16_rows(const float *const *q, float *const *out, const size_t *n_kv, size_t nq,
                      const ggml_fp16_t *k, const ggml_fp16_t *v, size_t stride, size_t hd,
                      float scale, float *scores, size_t sc_stride);

/* Whether vm_attn_f16_rows() takes this head size on this machine. */
bool vm_attn_f16_rows_supported(size_t hd);
