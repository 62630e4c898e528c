/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Llama-family transformer: hyper-parameters and weights read from a GGUF file, and the
 * batched forward pass. Architectures: "llama" (Llama 2/3, TinyLlama, SmolLM, Mistral)
 * and "qwen2" (attention biases, NeoX-style RoPE); anything else is refused by name.
 *
 * Weights stay in the file's mapping in their stored type; only the small 1-D tensors
 * (norms, biases, RoPE factors) are converted to F32 copies. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/ggml-types.h"
#include "engine/gguf.h"
#include "engine/kv-cache.h"
#include "engine/threadpool.h"

typedef enum ModelArch {
        MODEL_ARCH_LLAMA,
        MODEL_ARCH_QWEN2,
} ModelArch;

typedef struct ModelHParams {
        ModelArch arch;
        uint32_t n_ctx_train;
        uint32_t n_embd;
        uint32_t n_layer;
        uint32_t n_ff;
        uint32_t n_head;
        uint32_t n_head_kv;
        uint32_t head_dim;
        uint32_t n_rot;
        uint32_t n_vocab;
        float rms_eps;
        float rope_freq_base;
        float rope_freq_scale; /* 1 / linear scaling factor */
        bool rope_neox; /* rotate (i, i + n_rot/2) pairs instead of (2i, 2i+1) */
} ModelHParams;

/* A 2-D weight matrix: ne1 rows of ne0 elements. */
typedef struct Weight {
        const char *name;
        const void *data;
        GgmlType type;
        size_t ne0, ne1;
        size_t row_size;
        GgmlKernels k;
        void *packed; /* owned: ggml_pack16() of data when k.gemm16 is set, else NULL */
} Weight;

typedef struct LayerWeights {
        float *attn_norm;
        Weight wq, wk, wv, wo;
        float *bq, *bk, *bv; /* qwen2; NULL for llama */
        float *ffn_norm;
        Weight w_gate, w_up, w_down;
} LayerWeights;

typedef struct Model {
        GgufFile *gguf;
        ModelHParams hp;
        Weight tok_embd;
        float *output_norm;
        Weight output; /* token_embd when the file ties them */
        float *rope_freqs; /* n_rot/2 divisors of theta, or NULL */
        LayerWeights *layers;
        char *name;
        char *arch_name;
        uint32_t file_type;
        size_t n_params;
} Model;

/* On failure *ret_error (if not NULL) gets an allocated message. */
int model_load(const char *path, Model **ret, char **ret_error);
/* Same over an already parsed file; takes ownership of f on success. */
int model_load_gguf(GgufFile *f, Model **ret, char **ret_error);
Model *model_free(Model *m);
const char *model_arch_name(ModelArch a);
/* Bytes one decoded token reads: every matrix as the kernels read it (packed or not),
 * the norms, and one embedding row. Decode speed is bounded by memory bandwidth over
 * this. */
uint64_t model_decode_bytes(const Model *m);

/* One forward pass over a batch of tokens that may belong to several sequences. Token i
 * is at position pos[i] of sequence seq[i]; positions of one sequence must be
 * consecutive and continue its cache (pos == n_past for the first one). */
typedef struct ModelBatch {
        size_t n;
        const int32_t *tokens;
        const int32_t *pos;
        const int32_t *seq;
        const bool *want_logits; /* NULL: only the last token */
} ModelBatch;

typedef struct ForwardState ForwardState;

int forward_state_new(const Model *m, size_t n_batch_max, size_t n_ctx, ForwardState **ret);
ForwardState *forward_state_free(ForwardState *s);

/* Writes n_vocab logits for each token whose want_logits is set, in batch order, to
 * logits; if embd is not NULL, also writes the final-normalized hidden state of every
 * token (n * n_embd). */
int model_forward(const Model *m, ForwardState *s, ThreadPool *pool, KvCache *kv,
                  const ModelBatch *b, float *logits, float *embd);
