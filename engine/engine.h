/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* libengine: run GGUF llama-family models (llama, qwen2) on the CPU.
 *
 * Objects:
 *   EngineModel    a loaded file: weights (mapped read-only), tokenizer, chat template.
 *                  Immutable after loading; may be shared by several contexts and
 *                  threads.
 *   EngineContext  the mutable state of inference: a KV cache with room for up to
 *                  n_seq_max sequences, scratch buffers, and a thread pool. One thread at
 *                  a time per context.
 *
 * Sequences are small integers in [0, n_seq_max). A sequence's positions are consecutive
 * from 0; engine_decode() appends tokens to one or several sequences in one forward pass
 * (continuous batching: while some sequences are still reading their prompt, others
 * generate, and all share each read of the weights).
 *
 * Errors are negative errno values: -EINVAL (bad argument), -ENOSPC (context full),
 * -ENOMEM, -EBADMSG (malformed file), -EOPNOTSUPP (architecture or type we do not run),
 * -ECANCELED (a callback asked to stop). Nothing here logs above debug. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct EngineModel EngineModel;
typedef struct EngineContext EngineContext;

/* ---- models ---- */

/* On failure, *ret_error (when not NULL) receives an allocated one-line explanation,
 * e.g. "architecture 'gemma' is not supported (supported: llama, qwen2)". */
int engine_model_load(const char *path, EngineModel **ret, char **ret_error);
EngineModel *engine_model_free(EngineModel *m);

typedef struct EngineModelInfo {
        const char *arch; /* "llama" or "qwen2" */
        const char *name; /* general.name or "" */
        uint32_t n_vocab;
        uint32_t n_ctx_train;
        uint32_t n_embd;
        uint32_t n_layer;
        uint32_t n_head;
        uint32_t n_head_kv;
        uint32_t n_ff;
        uint32_t head_dim;
        float rope_freq_base;
        uint64_t n_params;
        uint64_t file_size;
        uint64_t decode_bytes; /* weights one decoded token reads, as the kernels hold them */
        const char *file_type; /* dominant tensor type of the 2-D weights, e.g. "Q4_K" */
        const char *chat_template; /* name of the recognized template or the fallback */
        bool chat_template_recognized;
        bool has_tokenizer;
        const char *kernels; /* "avx2" or "scalar" */
} EngineModelInfo;

void engine_model_get_info(const EngineModel *m, EngineModelInfo *ret);
/* Counts of weights per tensor type: fills up to n entries and returns how many types
 * the file uses. */
typedef struct EngineTypeCount {
        const char *type;
        size_t n_tensors;
        uint64_t bytes;
} EngineTypeCount;
size_t engine_model_type_mix(const EngineModel *m, EngineTypeCount *ret, size_t n);

/* ---- tokens ---- */

/* -EOPNOTSUPP when the file carries no tokenizer. *ret is allocated (caller frees). */
int engine_tokenize(const EngineModel *m, const char *text, size_t len, bool add_special,
                    bool parse_special, int32_t **ret, size_t *ret_n);
/* Bytes of the token's text written to buf (not NUL-terminated); negative on error; the
 * required size if size is too small (like snprintf). */
ssize_t engine_token_to_piece(const EngineModel *m, int32_t token, char *buf, size_t size);
bool engine_token_is_eog(const EngineModel *m, int32_t token);
int32_t engine_token_bos(const EngineModel *m);

/* ---- chat ---- */

typedef struct EngineChatMessage {
        const char *role;
        const char *content;
} EngineChatMessage;

/* Renders messages with the model's chat template (recognized from
 * tokenizer.chat_template, or the documented default). *ret is allocated. */
int engine_chat_format(const EngineModel *m, const EngineChatMessage *msgs, size_t n,
                       bool add_generation_prompt, char **ret);

/* ---- contexts ---- */

typedef struct EngineContextParams {
        uint32_t n_ctx; /* 0: the model's training context, clamped to 4096 */
        uint32_t n_batch; /* most tokens per forward pass; larger inputs are split */
        uint32_t n_seq_max; /* sequences the cache can hold */
        uint32_t n_threads; /* 0: physical cores */
        bool kv_f32; /* F32 cache instead of F16 */
} EngineContextParams;

void engine_context_params_default(EngineContextParams *p);
int engine_context_new(const EngineModel *m, const EngineContextParams *p, EngineContext **ret);
EngineContext *engine_context_free(EngineContext *c);
const EngineModel *engine_context_model(const EngineContext *c);
uint32_t engine_context_n_ctx(const EngineContext *c);
uint32_t engine_context_n_threads(const EngineContext *c);

/* Tokens to append: token i goes to sequence seq[i] at position pos[i]; positions of one
 * sequence must continue its cache in order. logits[i] asks for token i's logits; NULL
 * asks for the last token's only. */
typedef struct EngineBatch {
        size_t n;
        const int32_t *tokens;
        const int32_t *pos;
        const int32_t *seq;
        const bool *logits;
} EngineBatch;

/* Evaluates the batch (split into n_batch pieces as needed). On success the logits of
 * the flagged tokens are available through engine_get_logits(c, k) for k in order. On
 * failure the sequences touched by the batch are left at their previous length. */
int engine_decode(EngineContext *c, const EngineBatch *b);
/* Logits (n_vocab floats) of the k-th flagged token of the last engine_decode(), or
 * NULL. Valid until the next call that evaluates. */
const float *engine_get_logits(const EngineContext *c, size_t k);
size_t engine_n_logits(const EngineContext *c);

/* Appends tokens to one sequence at its current end; all_logits asks for every
 * position's logits, else only the last one's. */
int engine_eval(EngineContext *c, int32_t seq, const int32_t *tokens, size_t n, bool all_logits);
size_t engine_seq_length(const EngineContext *c, int32_t seq);
/* Forgets positions >= n of the sequence (0 clears it). */
int engine_seq_truncate(EngineContext *c, int32_t seq, size_t n);

/* ---- generation ---- */

typedef struct EngineSampling {
        float temperature; /* <= 0: greedy */
        int32_t top_k; /* <= 0: off */
        float top_p; /* >= 1: off */
        float min_p; /* <= 0: off */
        float repeat_penalty; /* 1: off */
        int32_t repeat_last_n;
        float presence_penalty;
        float frequency_penalty;
        uint64_t seed;
} EngineSampling;

void engine_sampling_default(EngineSampling *s);

/* Receives generated text as it becomes final (text that might still turn out to be the
 * start of a stop sequence is held back). Return < 0 to stop generating. */
typedef int (*EngineTextCallback)(void *userdata, const char *text, size_t len);

typedef enum EngineStopReason {
        ENGINE_STOP_EOG, /* the model produced an end-of-generation token */
        ENGINE_STOP_LENGTH, /* num_predict reached */
        ENGINE_STOP_SEQUENCE, /* a stop sequence matched (it is not part of the text) */
        ENGINE_STOP_CONTEXT, /* the context is full */
        ENGINE_STOP_CALLBACK, /* the callback returned < 0 */
} EngineStopReason;

typedef struct EngineGenerateRequest {
        const char *prompt; /* raw text (apply a chat template first if wanted) */
        size_t prompt_len;
        const int32_t *prompt_tokens; /* alternatively, already tokenized (then prompt NULL) */
        size_t n_prompt_tokens;
        bool add_special; /* BOS etc. as the tokenizer's metadata says */
        bool parse_special; /* "<|im_start|>" in the prompt becomes the special token */
        int32_t num_predict; /* < 0: until the context is full */
        const char *const *stop;
        size_t n_stop;
        EngineSampling sampling;
        EngineTextCallback callback;
        void *userdata;
        /* results */
        char *text; /* allocated, NUL-terminated, without the stop sequence */
        size_t text_len;
        int32_t *tokens; /* generated tokens (allocated) */
        size_t n_tokens;
        size_t n_prompt; /* prompt tokens evaluated */
        EngineStopReason stop_reason;
        uint64_t prompt_usec, gen_usec;
        int error; /* < 0 when this request failed */
} EngineGenerateRequest;

/* Runs n requests concurrently, each in its own sequence (0..n-1; n <= n_seq_max), with
 * continuous batching: every forward pass carries the next token of every running
 * request, plus prompt tokens of requests still reading theirs. Returns < 0 only when
 * the whole run failed; per-request results and errors are in the requests. The
 * sequences are cleared first and left holding the conversation. */
int engine_generate(EngineContext *c, EngineGenerateRequest *reqs, size_t n);
void engine_generate_request_done(EngineGenerateRequest *r);

/* ---- embeddings ---- */

/* Mean of the final hidden states over the text's tokens, L2-normalized. Uses sequence
 * 0 of the context and clears it. *ret has n_embd floats (allocated). */
int engine_embed(EngineContext *c, const char *text, size_t len, float **ret, size_t *ret_dim);
int engine_embed_tokens(EngineContext *c, const int32_t *tokens, size_t n, float **ret,
                        size_t *ret_dim);

/* ---- command line (wired into `cluster-ai model run|info`) ---- */

int engine_cli_model_run(int argc, char **argv);
int engine_cli_model_info(int argc, char **argv);
