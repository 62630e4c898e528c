/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Glue: the public API over the model, the cache, the thread pool, and the text side
 * (tokenizer, sampler, chat templates). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "basic/alloc-util.h"
#include "engine/engine.h"
#include "engine/model.h"

#if ENGINE_HAVE_TEXT
#include "engine/chat-template.h"
#include "engine/sampler.h"
#include "engine/tokenizer.h"
#endif

struct EngineModel {
        Model *model;
#if ENGINE_HAVE_TEXT
        Tokenizer *tok;
        ChatTemplateKind tmpl;
#endif
        bool tmpl_recognized;
        const char *tmpl_name;
        char *bos_text, *eos_text;
        uint64_t file_size;
        const char *file_type;
        /* raw vocabulary, kept for pieces when there is no tokenizer */
        const char **tokens;
        size_t *token_lens;
        size_t n_tokens;
        int32_t bos_id, eos_id, eot_id;
};

struct EngineContext {
        const EngineModel *m;
        EngineContextParams p;
        ForwardState *fs;
        KvCache *kv;
        ThreadPool *pool;
        float *logits;
        size_t n_logits, logits_cap;
};

static uint64_t now_usec(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

EngineModel *engine_model_free(EngineModel *m)
{
        if (!m)
                return NULL;
#if ENGINE_HAVE_TEXT
        tokenizer_free(m->tok);
#endif
        free(m->bos_text);
        free(m->eos_text);
        free(m->tokens);
        free(m->token_lens);
        model_free(m->model);
        return mfree(m);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(EngineModel *, engine_model_free);

static int32_t meta_id(const GgufFile *f, const char *key, int32_t def)
{
        uint32_t v;
        if (gguf_get_u32(f, key, &v) < 0 || v > INT32_MAX)
                return def;
        return (int32_t)v;
}

_unused_ static bool meta_bool(const GgufFile *f, const char *key, bool def)
{
        bool v;
        return gguf_get_bool(f, key, &v) < 0 ? def : v;
}

/* Builds the tokenizer from tokenizer.ggml.*; a file without one still loads (it can be
 * driven with token ids). */
static int load_vocab(EngineModel *m, char **error)
{
        const GgufFile *f = m->model->gguf;
        const char *kind = "";
        size_t kind_len;
        bool spm;
        int r;

        /* The raw token texts serve as pieces even when we cannot tokenize. */
        r = gguf_get_str_array(f, "tokenizer.ggml.tokens", &m->tokens, &m->token_lens,
                               &m->n_tokens);
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                if (error)
                        *error = strdup("tokenizer.ggml.tokens is not a string array");
                return -EBADMSG;
        }
        if (gguf_get_str(f, "tokenizer.ggml.model", &kind, &kind_len) < 0)
                kind_len = 0;
        spm = !(kind_len == 4 && memcmp(kind, "gpt2", 4) == 0);
        m->bos_id = meta_id(f, "tokenizer.ggml.bos_token_id", spm ? 1 : -1);
        m->eos_id = meta_id(f, "tokenizer.ggml.eos_token_id", spm ? 2 : -1);
        m->eot_id = meta_id(f, "tokenizer.ggml.eot_token_id", -1);
        if (m->bos_id >= (int32_t)m->n_tokens)
                m->bos_id = -1;
        if (m->eos_id >= (int32_t)m->n_tokens)
                m->eos_id = -1;
        if (m->eot_id >= (int32_t)m->n_tokens)
                m->eot_id = -1;
        if (m->bos_id >= 0)
                m->bos_text = strndup(m->tokens[m->bos_id], m->token_lens[m->bos_id]);
        if (m->eos_id >= 0)
                m->eos_text = strndup(m->tokens[m->eos_id], m->token_lens[m->eos_id]);

#if ENGINE_HAVE_TEXT
        if (!(kind_len == 5 && memcmp(kind, "llama", 5) == 0) &&
            !(kind_len == 4 && memcmp(kind, "gpt2", 4) == 0))
                return 0; /* "no_vocab" and the kinds we do not tokenize */
        _cleanup_free_ char *pre = NULL;
        _cleanup_free_ const char **merges = NULL;
        _cleanup_free_ size_t *merge_lens = NULL;
        size_t n_merges = 0;
        const float *scores = NULL;
        const int32_t *types = NULL;
        GgufType t;
        uint64_t n;
        const void *data;

        (void)gguf_get_strdup(f, "tokenizer.ggml.pre", &pre);
        if (gguf_get_array(f, "tokenizer.ggml.scores", &t, &n, &data) >= 0 &&
            t == GGUF_TYPE_FLOAT32 && n == m->n_tokens)
                scores = data;
        if (gguf_get_array(f, "tokenizer.ggml.token_type", &t, &n, &data) >= 0 &&
            t == GGUF_TYPE_INT32 && n == m->n_tokens)
                types = data;
        r = gguf_get_str_array(f, "tokenizer.ggml.merges", &merges, &merge_lens, &n_merges);
        if (r < 0 && r != -ENOENT)
                return r;
        /* GGUF arrays are not aligned: copy the fixed-size ones. */
        _cleanup_free_ float *scores_copy = NULL;
        _cleanup_free_ int32_t *types_copy = NULL;
        if (scores) {
                scores_copy = memdup(scores, m->n_tokens * sizeof(float));
                if (!scores_copy)
                        return -ENOMEM;
        }
        if (types) {
                types_copy = memdup(types, m->n_tokens * sizeof(int32_t));
                if (!types_copy)
                        return -ENOMEM;
        }
        bool llama3 = pre && (strcmp(pre, "llama-bpe") == 0 || strcmp(pre, "llama3") == 0);
        TokenizerVocab v = {
                .kind = spm ? TOKENIZER_SPM : TOKENIZER_BPE,
                .pre = pre,
                .n_tokens = m->n_tokens,
                .tokens = m->tokens,
                .token_lens = m->token_lens,
                .scores = scores_copy,
                .types = types_copy,
                .n_merges = n_merges,
                .merges = merges,
                .merge_lens = merge_lens,
                .bos_id = m->bos_id,
                .eos_id = m->eos_id,
                .unk_id = meta_id(f, "tokenizer.ggml.unknown_token_id", spm ? 0 : -1),
                .pad_id = meta_id(f, "tokenizer.ggml.padding_token_id", -1),
                .eot_id = m->eot_id,
                .add_bos = meta_bool(f, "tokenizer.ggml.add_bos_token", spm || llama3),
                .add_eos = meta_bool(f, "tokenizer.ggml.add_eos_token", false),
                .add_space_prefix = meta_bool(f, "tokenizer.ggml.add_space_prefix", spm),
        };
        if (v.unk_id >= (int32_t)m->n_tokens)
                v.unk_id = -1;
        if (v.pad_id >= (int32_t)m->n_tokens)
                v.pad_id = -1;
        r = tokenizer_new(&v, &m->tok);
        if (r < 0) {
                if (error)
                        *error = strdup("the tokenizer metadata is not usable");
                return r;
        }
#endif
        return 0;
}

static void load_template(EngineModel *m)
{
#if ENGINE_HAVE_TEXT
        _cleanup_free_ char *src = NULL;
        (void)gguf_get_strdup(m->model->gguf, "tokenizer.chat_template", &src);
        int r = chat_template_detect(src ? src : "", &m->tmpl);
        m->tmpl_recognized = src && r > 0;
        m->tmpl_name = chat_template_name(m->tmpl);
#else
        m->tmpl_name = "none";
#endif
}

/* The type that holds most weight bytes names the file, as "Q4_K" for a Q4_K_M mix. */
static void compute_file_type(EngineModel *m)
{
        uint64_t bytes[GGML_TYPE_MAX_ID] = {};
        const GgufFile *f = m->model->gguf;
        for (size_t i = 0; i < f->n_tensors; i++)
                if (f->tensors[i].n_dims >= 2)
                        bytes[f->tensors[i].type] += f->tensors[i].size;
        size_t best = 0;
        for (size_t t = 0; t < GGML_TYPE_MAX_ID; t++)
                if (bytes[t] > bytes[best])
                        best = t;
        m->file_type = ggml_type_name((uint32_t)best);
}

int engine_model_load(const char *path, EngineModel **ret, char **ret_error)
{
        _cleanup_(engine_model_freep) EngineModel *m = NULL;
        struct stat st;
        int r;

        m = new0(EngineModel, 1);
        if (!m)
                return -ENOMEM;
        r = model_load(path, &m->model, ret_error);
        if (r < 0)
                return r;
        if (stat(path, &st) >= 0)
                m->file_size = (uint64_t)st.st_size;
        m->bos_id = m->eos_id = m->eot_id = -1;
        r = load_vocab(m, ret_error);
        if (r < 0)
                return r;
        load_template(m);
        compute_file_type(m);
        *ret = TAKE_PTR(m);
        return 0;
}

void engine_model_get_info(const EngineModel *m, EngineModelInfo *ret)
{
        const ModelHParams *hp = &m->model->hp;
        *ret = (EngineModelInfo)
        {
                .arch = m->model->arch_name, .name = m->model->name ?: "", .n_vocab = hp->n_vocab,
                .n_ctx_train = hp->n_ctx_train, .n_embd = hp->n_embd, .n_layer = hp->n_layer,
                .n_head = hp->n_head, .n_head_kv = hp->n_head_kv, .n_ff = hp->n_ff,
                .head_dim = hp->head_dim, .rope_freq_base = hp->rope_freq_base,
                .n_params = m->model->n_params, .file_size = m->file_size,
                .decode_bytes = model_decode_bytes(m->model), .file_type = m->file_type,
                .chat_template = m->tmpl_name, .chat_template_recognized = m->tmpl_recognized,
#if ENGINE_HAVE_TEXT
                .has_tokenizer = m->tok != NULL,
#endif
                .kernels = ggml_kernels_isa(),
        };
}

size_t engine_model_type_mix(const EngineModel *m, EngineTypeCount *ret, size_t n)
{
        size_t count[GGML_TYPE_MAX_ID] = {};
        uint64_t bytes[GGML_TYPE_MAX_ID] = {};
        const GgufFile *f = m->model->gguf;
        size_t k = 0;

        for (size_t i = 0; i < f->n_tensors; i++) {
                count[f->tensors[i].type]++;
                bytes[f->tensors[i].type] += f->tensors[i].size;
        }
        for (size_t t = 0; t < GGML_TYPE_MAX_ID; t++) {
                if (!count[t])
                        continue;
                if (k < n)
                        ret[k] = (EngineTypeCount){ggml_type_name((uint32_t)t), count[t], bytes[t]};
                k++;
        }
        return k;
}

int engine_tokenize(const EngineModel *m, const char *text, size_t len, bool add_special,
                    bool parse_special, int32_t **ret, size_t *ret_n)
{
#if ENGINE_HAVE_TEXT
        if (!m->tok)
                return -EOPNOTSUPP;
        return tokenizer_encode(m->tok, text, len, add_special, parse_special, ret, ret_n);
#else
        return -EOPNOTSUPP;
#endif
}

ssize_t engine_token_to_piece(const EngineModel *m, int32_t token, char *buf, size_t size)
{
#if ENGINE_HAVE_TEXT
        if (m->tok)
                return tokenizer_token_to_piece(m->tok, token, buf, size);
#endif
        if (token < 0 || (size_t)token >= m->n_tokens)
                return -EINVAL;
        size_t len = m->token_lens[token];
        if (len <= size)
                memcpy(buf, m->tokens[token], len);
        return (ssize_t)len;
}

bool engine_token_is_eog(const EngineModel *m, int32_t token)
{
#if ENGINE_HAVE_TEXT
        if (m->tok)
                return tokenizer_is_eog(m->tok, token);
#endif
        return token >= 0 && (token == m->eos_id || token == m->eot_id);
}

int32_t engine_token_bos(const EngineModel *m)
{
        return m->bos_id;
}

int engine_chat_format(const EngineModel *m, const EngineChatMessage *msgs, size_t n,
                       bool add_generation_prompt, char **ret)
{
#if ENGINE_HAVE_TEXT
        _cleanup_free_ ChatMessage *cm = new (ChatMessage, n);
        if (!cm)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                cm[i] = (ChatMessage){msgs[i].role, msgs[i].content};
        return chat_template_apply(m->tmpl, cm, n, add_generation_prompt, m->bos_text ?: "",
                                   m->eos_text ?: "", ret);
#else
        return -EOPNOTSUPP;
#endif
}

/* ---- contexts ---- */

void engine_context_params_default(EngineContextParams *p)
{
        *p = (EngineContextParams){
                .n_ctx = 0,
                .n_batch = 512,
                .n_seq_max = 8,
                .n_threads = 0,
                .kv_f32 = false,
        };
}

EngineContext *engine_context_free(EngineContext *c)
{
        if (!c)
                return NULL;
        forward_state_free(c->fs);
        kv_cache_free(c->kv);
        threadpool_free(c->pool);
        free(c->logits);
        return mfree(c);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(EngineContext *, engine_context_free);

int engine_context_new(const EngineModel *m, const EngineContextParams *p, EngineContext **ret)
{
        _cleanup_(engine_context_freep) EngineContext *c = NULL;
        const ModelHParams *hp = &m->model->hp;
        int r;

        c = new0(EngineContext, 1);
        if (!c)
                return -ENOMEM;
        c->m = m;
        if (p)
                c->p = *p;
        else
                engine_context_params_default(&c->p);
        if (c->p.n_ctx == 0)
                c->p.n_ctx = MIN(hp->n_ctx_train, 4096u);
        c->p.n_ctx = MIN(c->p.n_ctx, hp->n_ctx_train);
        if (c->p.n_batch == 0)
                c->p.n_batch = 512;
        c->p.n_batch = MIN(c->p.n_batch, c->p.n_ctx * MAX(c->p.n_seq_max, 1u));
        if (c->p.n_seq_max == 0 || c->p.n_seq_max > 256 || c->p.n_ctx == 0)
                return -EINVAL;

        r = threadpool_new(c->p.n_threads, &c->pool);
        if (r < 0)
                return r;
        c->p.n_threads = threadpool_size(c->pool);
        r = kv_cache_new(c->p.kv_f32 ? GGML_TYPE_F32 : GGML_TYPE_F16, hp->n_layer,
                         (size_t)hp->n_head_kv * hp->head_dim, c->p.n_ctx, c->p.n_seq_max, &c->kv);
        if (r < 0)
                return r;
        r = forward_state_new(m->model, c->p.n_batch, c->p.n_ctx, &c->fs);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

const EngineModel *engine_context_model(const EngineContext *c)
{
        return c->m;
}

uint32_t engine_context_n_ctx(const EngineContext *c)
{
        return c->p.n_ctx;
}

uint32_t engine_context_n_threads(const EngineContext *c)
{
        return c->p.n_threads;
}

static int logits_reserve(EngineContext *c, size_t n_out)
{
        size_t n_vocab = c->m->model->hp.n_vocab, need;
        if (size_mul_overflow(n_out, n_vocab, &need))
                return -ENOMEM;
        if (need > c->logits_cap) {
                float *l = realloc(c->logits, need * sizeof(float));
                if (!l)
                        return -ENOMEM;
                c->logits = l;
                c->logits_cap = need;
        }
        return 0;
}

static int decode_internal(EngineContext *c, const EngineBatch *b, float *embd)
{
        size_t n_vocab = c->m->model->hp.n_vocab;
        size_t n_out = 0, saved_n[256];
        int r;

        if (!b || b->n == 0 || !b->tokens || !b->pos || !b->seq)
                return -EINVAL;
        for (size_t i = 0; i < b->n; i++)
                if (b->seq[i] < 0 || (uint32_t)b->seq[i] >= c->p.n_seq_max)
                        return -EINVAL;
        for (size_t i = 0; i < b->n; i++)
                n_out += b->logits ? b->logits[i] : i == b->n - 1;
        r = logits_reserve(c, n_out);
        if (r < 0)
                return r;
        for (size_t s = 0; s < c->p.n_seq_max; s++)
                saved_n[s] = c->kv->seqs[s].n_past;

        c->n_logits = 0;
        size_t done_out = 0;
        _cleanup_free_ bool *want = new (bool, MIN((size_t)c->p.n_batch, b->n));
        if (!want)
                return -ENOMEM;
        for (size_t off = 0; off < b->n; off += c->p.n_batch) {
                size_t cnt = MIN((size_t)c->p.n_batch, b->n - off);
                for (size_t i = 0; i < cnt; i++)
                        want[i] = b->logits ? b->logits[off + i] : off + i == b->n - 1;
                ModelBatch mb = {
                        .n = cnt,
                        .tokens = b->tokens + off,
                        .pos = b->pos + off,
                        .seq = b->seq + off,
                        .want_logits = want,
                };
                r = model_forward(c->m->model, c->fs, c->pool, c->kv, &mb,
                                  c->logits + done_out * n_vocab,
                                  embd ? embd + off * c->m->model->hp.n_embd : NULL);
                if (r < 0) {
                        for (size_t s = 0; s < c->p.n_seq_max; s++)
                                if (c->kv->seqs[s].n_past > saved_n[s])
                                        c->kv->seqs[s].n_past = saved_n[s];
                        return r;
                }
                for (size_t i = 0; i < cnt; i++)
                        done_out += want[i];
        }
        c->n_logits = done_out;
        return 0;
}

int engine_decode(EngineContext *c, const EngineBatch *b)
{
        return decode_internal(c, b, NULL);
}

const float *engine_get_logits(const EngineContext *c, size_t k)
{
        if (k >= c->n_logits)
                return NULL;
        return c->logits + k * c->m->model->hp.n_vocab;
}

size_t engine_n_logits(const EngineContext *c)
{
        return c->n_logits;
}

static int eval_seq(EngineContext *c, int32_t seq, const int32_t *tokens, size_t n, bool all_logits,
                    float *embd)
{
        if (seq < 0 || (uint32_t)seq >= c->p.n_seq_max || n == 0)
                return -EINVAL;
        _cleanup_free_ int32_t *pos = new (int32_t, n);
        _cleanup_free_ int32_t *seqs = new (int32_t, n);
        _cleanup_free_ bool *want = new (bool, n);
        if (!pos || !seqs || !want)
                return -ENOMEM;
        size_t base = c->kv->seqs[seq].n_past;
        if (base + n > c->p.n_ctx)
                return -ENOSPC;
        for (size_t i = 0; i < n; i++) {
                pos[i] = (int32_t)(base + i);
                seqs[i] = seq;
                want[i] = all_logits || i == n - 1;
        }
        EngineBatch b = {.n = n, .tokens = tokens, .pos = pos, .seq = seqs, .logits = want};
        return decode_internal(c, &b, embd);
}

int engine_eval(EngineContext *c, int32_t seq, const int32_t *tokens, size_t n, bool all_logits)
{
        return eval_seq(c, seq, tokens, n, all_logits, NULL);
}

size_t engine_seq_length(const EngineContext *c, int32_t seq)
{
        if (seq < 0 || (uint32_t)seq >= c->p.n_seq_max)
                return 0;
        return c->kv->seqs[seq].n_past;
}

int engine_seq_truncate(EngineContext *c, int32_t seq, size_t n)
{
        if (seq < 0 || (uint32_t)seq >= c->p.n_seq_max)
                return -EINVAL;
        kv_cache_truncate(c->kv, (size_t)seq, n);
        return 0;
}

/* ---- embeddings ---- */

int engine_embed_tokens(EngineContext *c, const int32_t *tokens, size_t n, float **ret,
                        size_t *ret_dim)
{
        size_t dim = c->m->model->hp.n_embd;
        int r;

        if (n == 0)
                return -EINVAL;
        _cleanup_free_ float *h = new (float, n *dim);
        _cleanup_free_ float *out = new0(float, dim);
        if (!h || !out)
                return -ENOMEM;
        kv_cache_truncate(c->kv, 0, 0);
        r = eval_seq(c, 0, tokens, n, false, h);
        kv_cache_truncate(c->kv, 0, 0);
        if (r < 0)
                return r;
        double norm = 0.0;
        for (size_t d = 0; d < dim; d++) {
                double sum = 0.0;
                for (size_t t = 0; t < n; t++)
                        sum += h[t * dim + d];
                out[d] = (float)(sum / (double)n);
                norm += (double)out[d] * out[d];
        }
        norm = sqrt(norm);
        if (norm > 0.0)
                for (size_t d = 0; d < dim; d++)
                        out[d] = (float)(out[d] / norm);
        *ret = TAKE_PTR(out);
        *ret_dim = dim;
        return 0;
}

int engine_embed(EngineContext *c, const char *text, size_t len, float **ret, size_t *ret_dim)
{
        _cleanup_free_ int32_t *toks = NULL;
        size_t n;
        int r;

        r = engine_tokenize(c->m, text, len, true, false, &toks, &n);
        if (r < 0)
                return r;
        return engine_embed_tokens(c, toks, n, ret, ret_dim);
}

/* ---- generation ---- */

void engine_sampling_default(EngineSampling *s)
{
        *s = (EngineSampling){
                .temperature = 0.8f,
                .top_k = 40,
                .top_p = 0.95f,
                .min_p = 0.05f,
                .repeat_penalty = 1.0f,
                .repeat_last_n = 64,
                .presence_penalty = 0.0f,
                .frequency_penalty = 0.0f,
                .seed = 0,
        };
}

void engine_generate_request_done(EngineGenerateRequest *r)
{
        r->text = mfree(r->text);
        r->tokens = mfree(r->tokens);
        r->text_len = r->n_tokens = 0;
}

typedef enum GenState {
        GEN_PROMPT,
        GEN_RUNNING,
        GEN_DONE,
} GenState;

typedef struct GenSlot {
        EngineGenerateRequest *req;
        GenState state;
        int32_t *prompt;
        size_t n_prompt, n_fed;
        int32_t next; /* token to feed in the next pass */
        size_t emitted; /* bytes of text handed to the callback */
        size_t text_cap, tokens_cap;
        size_t max_stop;
        uint64_t t_start, t_first;
#if ENGINE_HAVE_TEXT
        Sampler *sampler;
#endif
} GenSlot;

static int32_t argmax(const float *l, size_t n)
{
        size_t best = 0;
        for (size_t i = 1; i < n; i++)
                if (l[i] > l[best])
                        best = i;
        return (int32_t)best;
}

static int slot_append_text(GenSlot *s, const char *p, size_t len)
{
        EngineGenerateRequest *r = s->req;
        size_t need = r->text_len + len + 1;
        if (need > s->text_cap) {
                size_t cap = MAX(need, s->text_cap * 2);
                char *t = realloc(r->text, cap);
                if (!t)
                        return -ENOMEM;
                r->text = t;
                s->text_cap = cap;
        }
        memcpy(r->text + r->text_len, p, len);
        r->text_len += len;
        r->text[r->text_len] = 0;
        return 0;
}

/* Length of the longest suffix of text that is a proper prefix of a stop string: that
 * much must be held back from the callback. */
static size_t stop_holdback(const EngineGenerateRequest *r)
{
        size_t hold = 0;
        for (size_t i = 0; i < r->n_stop; i++) {
                size_t sl = strlen(r->stop[i]);
                for (size_t k = MIN(sl - (sl > 0), r->text_len); k > hold; k--)
                        if (memcmp(r->text + r->text_len - k, r->stop[i], k) == 0) {
                                hold = k;
                                break;
                        }
        }
        return hold;
}

static void slot_finish(GenSlot *s, EngineStopReason why)
{
        s->state = GEN_DONE;
        s->req->stop_reason = why;
        s->req->gen_usec = now_usec() - (s->t_first ?: s->t_start);
}

/* Feeds the callback whatever text is final. */
static void slot_flush(GenSlot *s, size_t upto)
{
        EngineGenerateRequest *r = s->req;
        if (upto <= s->emitted)
                return;
        if (r->callback && r->callback(r->userdata, r->text + s->emitted, upto - s->emitted) < 0) {
                s->emitted = upto;
                slot_finish(s, ENGINE_STOP_CALLBACK);
                return;
        }
        s->emitted = upto;
}

static int slot_accept(EngineContext *c, GenSlot *s, const float *logits)
{
        EngineGenerateRequest *r = s->req;
        const EngineModel *m = c->m;
        size_t n_vocab = m->model->hp.n_vocab;
        int32_t tok;
        int ret;

        if (!s->t_first) {
                s->t_first = now_usec();
                r->prompt_usec = s->t_first - s->t_start;
        }
#if ENGINE_HAVE_TEXT
        tok = sampler_sample(s->sampler, logits);
        sampler_accept(s->sampler, tok);
#else
        tok = argmax(logits, n_vocab);
#endif
        if (tok < 0 || (size_t)tok >= n_vocab)
                tok = argmax(logits, n_vocab);

        if (engine_token_is_eog(m, tok)) {
                slot_flush(s, r->text_len);
                if (s->state != GEN_DONE)
                        slot_finish(s, ENGINE_STOP_EOG);
                return 0;
        }
        if (r->n_tokens + 1 > s->tokens_cap) {
                size_t cap = MAX(s->tokens_cap * 2, (size_t)64);
                int32_t *t = realloc(r->tokens, cap * sizeof(int32_t));
                if (!t)
                        return -ENOMEM;
                r->tokens = t;
                s->tokens_cap = cap;
        }
        r->tokens[r->n_tokens++] = tok;

        char buf[256];
        ssize_t len = engine_token_to_piece(m, tok, buf, sizeof(buf));
        if (len > (ssize_t)sizeof(buf))
                len = 0; /* absurdly long piece: the tokenizer caps tokens below this */
        if (len > 0) {
                size_t before = r->text_len;
                ret = slot_append_text(s, buf, (size_t)len);
                if (ret < 0)
                        return ret;
                /* A stop string may straddle the previous text. */
                size_t from = before > s->max_stop ? before - s->max_stop : 0;
                for (size_t i = 0; i < r->n_stop; i++) {
                        size_t sl = strlen(r->stop[i]);
                        if (sl == 0)
                                continue;
                        char *hit = memmem(r->text + from, r->text_len - from, r->stop[i], sl);
                        if (hit) {
                                r->text_len = (size_t)(hit - r->text);
                                r->text[r->text_len] = 0;
                                slot_flush(s, r->text_len);
                                if (s->state != GEN_DONE)
                                        slot_finish(s, ENGINE_STOP_SEQUENCE);
                                return 0;
                        }
                }
        }
        slot_flush(s, r->text_len - stop_holdback(r));
        if (s->state == GEN_DONE)
                return 0;
        if (r->num_predict >= 0 && r->n_tokens >= (size_t)r->num_predict) {
                slot_flush(s, r->text_len);
                if (s->state != GEN_DONE)
                        slot_finish(s, ENGINE_STOP_LENGTH);
                return 0;
        }
        s->next = tok;
        s->state = GEN_RUNNING;
        return 0;
}

static void slots_free(GenSlot *slots, size_t n)
{
        if (!slots)
                return;
        for (size_t i = 0; i < n; i++) {
                free(slots[i].prompt);
#if ENGINE_HAVE_TEXT
                sampler_free(slots[i].sampler);
#endif
        }
        free(slots);
}

static int slot_setup(EngineContext *c, GenSlot *s, EngineGenerateRequest *r)
{
        int ret;

        s->req = r;
        s->t_start = now_usec();
        if (r->prompt_tokens) {
                if (r->n_prompt_tokens == 0)
                        return -EINVAL;
                s->prompt = memdup(r->prompt_tokens, r->n_prompt_tokens * sizeof(int32_t));
                if (!s->prompt)
                        return -ENOMEM;
                s->n_prompt = r->n_prompt_tokens;
        } else {
                if (!r->prompt)
                        return -EINVAL;
                ret = engine_tokenize(c->m, r->prompt, r->prompt_len, r->add_special,
                                      r->parse_special, &s->prompt, &s->n_prompt);
                if (ret < 0)
                        return ret;
                if (s->n_prompt == 0) {
                        /* Nothing to condition on: start from BOS like llama.cpp does. */
                        if (c->m->bos_id < 0)
                                return -EINVAL;
                        free(s->prompt);
                        s->prompt = new (int32_t, 1);
                        if (!s->prompt)
                                return -ENOMEM;
                        s->prompt[0] = c->m->bos_id;
                        s->n_prompt = 1;
                }
        }
        for (size_t i = 0; i < s->n_prompt; i++)
                if (s->prompt[i] < 0 || (uint32_t)s->prompt[i] >= c->m->model->hp.n_vocab)
                        return -EINVAL;
        if (s->n_prompt >= c->p.n_ctx)
                return -ENOSPC;
        for (size_t i = 0; i < r->n_stop; i++)
                s->max_stop = MAX(s->max_stop, strlen(r->stop[i]));
        r->n_prompt = s->n_prompt;
        ret = slot_append_text(s, "", 0);
        if (ret < 0)
                return ret;
#if ENGINE_HAVE_TEXT
        SamplerParams sp = {
                .temperature = r->sampling.temperature,
                .top_k = r->sampling.top_k,
                .top_p = r->sampling.top_p,
                .min_p = r->sampling.min_p,
                .repeat_penalty = r->sampling.repeat_penalty,
                .repeat_last_n = r->sampling.repeat_last_n,
                .presence_penalty = r->sampling.presence_penalty,
                .frequency_penalty = r->sampling.frequency_penalty,
                .seed = r->sampling.seed,
        };
        ret = sampler_new(&sp, c->m->model->hp.n_vocab, &s->sampler);
        if (ret < 0)
                return ret;
        /* Penalties look at the prompt too, as llama.cpp's do. */
        for (size_t i = 0; i < s->n_prompt; i++)
                sampler_accept(s->sampler, s->prompt[i]);
#endif
        s->state = GEN_PROMPT;
        return 0;
}

int engine_generate(EngineContext *c, EngineGenerateRequest *reqs, size_t n)
{
        GenSlot *slots = NULL;
        int32_t *tok = NULL, *pos = NULL, *seq = NULL;
        bool *want = NULL;
        size_t *owner = NULL;
        size_t n_batch = c->p.n_batch;
        int r = 0;

        if (n == 0 || n > c->p.n_seq_max)
                return -EINVAL;
        slots = new0(GenSlot, n);
        tok = new (int32_t, n_batch);
        pos = new (int32_t, n_batch);
        seq = new (int32_t, n_batch);
        want = new (bool, n_batch);
        owner = new (size_t, n_batch);
        if (!slots || !tok || !pos || !seq || !want || !owner) {
                r = -ENOMEM;
                goto finish;
        }
        for (size_t i = 0; i < n; i++) {
                EngineGenerateRequest *q = &reqs[i];
                q->text = NULL;
                q->tokens = NULL;
                q->text_len = q->n_tokens = q->n_prompt = 0;
                q->error = 0;
                q->prompt_usec = q->gen_usec = 0;
                kv_cache_truncate(c->kv, i, 0);
                int e = slot_setup(c, &slots[i], q);
                if (e < 0) {
                        q->error = e;
                        slots[i].state = GEN_DONE;
                }
        }

        for (;;) {
                size_t nb = 0;
                /* Running sequences first: one token each keeps their latency flat. */
                for (size_t i = 0; i < n && nb < n_batch; i++) {
                        GenSlot *s = &slots[i];
                        if (s->state != GEN_RUNNING)
                                continue;
                        size_t p = c->kv->seqs[i].n_past;
                        if (p >= c->p.n_ctx) {
                                slot_flush(s, s->req->text_len);
                                if (s->state != GEN_DONE)
                                        slot_finish(s, ENGINE_STOP_CONTEXT);
                                continue;
                        }
                        tok[nb] = s->next;
                        pos[nb] = (int32_t)p;
                        seq[nb] = (int32_t)i;
                        want[nb] = true;
                        owner[nb] = i;
                        nb++;
                }
                /* Then prompt tokens with the room left. */
                for (size_t i = 0; i < n && nb < n_batch; i++) {
                        GenSlot *s = &slots[i];
                        if (s->state != GEN_PROMPT)
                                continue;
                        size_t take = MIN(n_batch - nb, s->n_prompt - s->n_fed);
                        for (size_t k = 0; k < take; k++) {
                                tok[nb] = s->prompt[s->n_fed + k];
                                pos[nb] = (int32_t)(s->n_fed + k);
                                seq[nb] = (int32_t)i;
                                want[nb] = s->n_fed + k == s->n_prompt - 1;
                                owner[nb] = i;
                                nb++;
                        }
                        s->n_fed += take;
                }
                if (nb == 0)
                        break;

                EngineBatch b = {.n = nb, .tokens = tok, .pos = pos, .seq = seq, .logits = want};
                r = decode_internal(c, &b, NULL);
                if (r < 0)
                        goto finish;
                size_t k = 0;
                for (size_t t = 0; t < nb; t++) {
                        if (!want[t])
                                continue;
                        GenSlot *s = &slots[owner[t]];
                        const float *l = c->logits + k * c->m->model->hp.n_vocab;
                        k++;
                        if (s->state == GEN_DONE)
                                continue;
                        int e = slot_accept(c, s, l);
                        if (e < 0) {
                                s->req->error = e;
                                s->state = GEN_DONE;
                        }
                }
        }

finish:
        for (size_t i = 0; slots && i < n; i++) {
                if (slots[i].state != GEN_DONE && r < 0)
                        reqs[i].error = r;
                if (!reqs[i].text && !reqs[i].error) {
                        reqs[i].text = strdup("");
                        if (!reqs[i].text)
                                reqs[i].error = -ENOMEM;
                }
        }
        slots_free(slots, n);
        free(tok);
        free(pos);
        free(seq);
        free(want);
        free(owner);
        return r;
}
