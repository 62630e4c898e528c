/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Loading llama-family weights and the forward pass.
 *
 * The numerics follow llama.cpp's CPU path where it matters for agreement: activations
 * are converted to the weight type's dot partner before each matrix product, RMSNorm
 * sums in double, RoPE angles are built by the same repeated multiplication, and with an
 * F16 cache the query and the attention weights are rounded to F16 before they meet the
 * cached keys and values. */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "basic/alloc-util.h"
#include "engine/model.h"
#include "engine/vecmath.h"

_printf_(3, 4) static int fail(char **error, int r, const char *fmt, ...)
{
        if (error && !*error) {
                va_list ap;
                va_start(ap, fmt);
                if (vasprintf(error, fmt, ap) < 0)
                        *error = NULL;
                va_end(ap);
        }
        return r;
}

const char *model_arch_name(ModelArch a)
{
        return a == MODEL_ARCH_QWEN2 ? "qwen2" : "llama";
}

Model *model_free(Model *m)
{
        if (!m)
                return NULL;
        if (m->layers)
                for (uint32_t i = 0; i < m->hp.n_layer; i++) {
                        LayerWeights *l = &m->layers[i];
                        free(l->attn_norm);
                        free(l->ffn_norm);
                        free(l->bq);
                        free(l->bk);
                        free(l->bv);
                        free(l->wq.packed);
                        free(l->wk.packed);
                        free(l->wv.packed);
                        free(l->wo.packed);
                        free(l->w_gate.packed);
                        free(l->w_up.packed);
                        free(l->w_down.packed);
                }
        free(m->output.packed);
        free(m->layers);
        free(m->output_norm);
        free(m->rope_freqs);
        free(m->name);
        free(m->arch_name);
        gguf_free(m->gguf);
        return mfree(m);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(Model *, model_free);

static uint64_t weight_bytes(const Weight *w)
{
        if (w->packed)
                return (uint64_t)(w->ne1 / 16) * (w->ne0 / ggml_type_traits(w->type)->block_size) *
                        ggml_pack16_block_size(w->type);
        return (uint64_t)w->ne1 * w->row_size;
}

uint64_t model_decode_bytes(const Model *m)
{
        const ModelHParams *hp = &m->hp;
        uint64_t n = m->tok_embd.row_size + weight_bytes(&m->output) +
                (uint64_t)hp->n_embd * sizeof(float) * (1 + 2 * hp->n_layer);
        for (uint32_t il = 0; il < hp->n_layer; il++) {
                const LayerWeights *l = &m->layers[il];
                const Weight *ws[] = {&l->wq,     &l->wk,   &l->wv,    &l->wo,
                                      &l->w_gate, &l->w_up, &l->w_down};
                for (size_t i = 0; i < ELEMENTSOF(ws); i++)
                        n += weight_bytes(ws[i]);
        }
        return n;
}

/* The interleaved copy the tile kernels read, when the type has one. The matrix products
 * then never touch the file's rows: when they are mapped from the file (and not also
 * needed as the token embedding), their pages, read once for packing, are let go so that
 * they do not count twice in memory. */
static int weight_pack(const Model *m, Weight *w, bool keep_rows)
{
        int r;

        if (!w->k.gemm16 || w->ne1 % 16 != 0)
                return 0;
        r = ggml_pack16(w->type, w->data, w->ne0, w->ne1, &w->packed);
        if (r < 0)
                return r;
        if (m->gguf->mapped && !keep_rows) {
                size_t page = (size_t)sysconf(_SC_PAGESIZE);
                uintptr_t a = ALIGN_TO((uintptr_t)w->data, page);
                uintptr_t e = ((uintptr_t)w->data + w->ne1 * w->row_size) & ~(uintptr_t)(page - 1);
                if (e > a)
                        (void)madvise((void *)a, e - a, MADV_DONTNEED);
        }
        return 0;
}

static int get_weight(Model *m, const char *name, size_t ne0, size_t ne1, bool optional,
                      Weight *ret, char **error)
{
        const GgufTensor *t = gguf_find_tensor(m->gguf, name);
        const GgmlTypeTraits *tt;
        int r;

        if (!t) {
                if (optional)
                        return 0;
                return fail(error, -EBADMSG, "tensor '%s' is missing", name);
        }
        if (t->n_dims != 2 || t->ne[0] != ne0 || t->ne[1] != ne1)
                return fail(error, -EBADMSG,
                            "tensor '%s' has shape [%llu, %llu] (%u dims), expected [%zu, %zu]",
                            name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                            t->n_dims, ne0, ne1);
        tt = ggml_type_traits(t->type);
        if (!tt || !tt->supported)
                return fail(error, -EOPNOTSUPP, "tensor '%s' has type %s, which is not supported",
                            name, ggml_type_name(t->type));
        r = ggml_kernels_get(t->type, &ret->k);
        if (r < 0)
                return fail(error, r, "tensor '%s': no kernel for type %s", name,
                            ggml_type_name(t->type));
        ret->name = t->name;
        ret->data = t->data;
        ret->type = t->type;
        ret->ne0 = ne0;
        ret->ne1 = ne1;
        ret->row_size = ggml_row_size(t->type, ne0);
        return 1;
}

/* 1-D tensors are small: convert them to F32 copies whatever their stored type. */
static int get_vector(Model *m, const char *name, size_t n, bool optional, float **ret,
                      char **error)
{
        const GgufTensor *t = gguf_find_tensor(m->gguf, name);
        const GgmlTypeTraits *tt;
        float *v;
        int r;

        if (!t) {
                if (optional)
                        return 0;
                return fail(error, -EBADMSG, "tensor '%s' is missing", name);
        }
        if (t->n_dims != 1 || t->ne[0] != n)
                return fail(error, -EBADMSG, "tensor '%s' has %llu elements, expected %zu", name,
                            (unsigned long long)t->ne[0], n);
        tt = ggml_type_traits(t->type);
        if (!tt || !tt->supported)
                return fail(error, -EOPNOTSUPP, "tensor '%s' has unsupported type %s", name,
                            ggml_type_name(t->type));
        v = new (float, n);
        if (!v)
                return -ENOMEM;
        r = ggml_dequantize_row(t->type, t->data, v, n);
        if (r < 0) {
                free(v);
                return fail(error, r, "tensor '%s': cannot convert %s", name,
                            ggml_type_name(t->type));
        }
        *ret = v;
        return 1;
}

static int get_hparam_u32(Model *m, const char *suffix, bool optional, uint32_t def, uint32_t *ret,
                          char **error)
{
        char key[128];
        int r;

        snprintf(key, sizeof(key), "%s.%s", m->arch_name, suffix);
        r = gguf_get_u32(m->gguf, key, ret);
        if (r == -ENOENT && optional) {
                *ret = def;
                return 0;
        }
        if (r < 0)
                return fail(error, -EBADMSG, "metadata %s is %s", key,
                            r == -ENOENT ? "missing" : "not a valid u32");
        return 0;
}

static int get_hparam_f32(Model *m, const char *suffix, float def, float *ret, char **error)
{
        char key[128];
        int r;

        snprintf(key, sizeof(key), "%s.%s", m->arch_name, suffix);
        r = gguf_get_f32(m->gguf, key, ret);
        if (r == -ENOENT) {
                *ret = def;
                return 0;
        }
        if (r < 0 || !isfinite(*ret))
                return fail(error, -EBADMSG, "metadata %s is not a valid float", key);
        return 0;
}

static int load_hparams(Model *m, char **error)
{
        ModelHParams *hp = &m->hp;
        int r;

        r = gguf_get_strdup(m->gguf, "general.architecture", &m->arch_name);
        if (r < 0)
                return fail(error, -EBADMSG, "metadata general.architecture is %s",
                            r == -ENOENT ? "missing" : "not a string");
        if (strcmp(m->arch_name, "llama") == 0)
                hp->arch = MODEL_ARCH_LLAMA;
        else if (strcmp(m->arch_name, "qwen2") == 0)
                hp->arch = MODEL_ARCH_QWEN2;
        else
                return fail(error, -EOPNOTSUPP,
                            "architecture '%s' is not supported (supported: llama, qwen2)",
                            m->arch_name);
        (void)gguf_get_strdup(m->gguf, "general.name", &m->name);
        if (gguf_get_u32(m->gguf, "general.file_type", &m->file_type) < 0)
                m->file_type = UINT32_MAX;

        if ((r = get_hparam_u32(m, "context_length", true, 2048, &hp->n_ctx_train, error)) < 0 ||
            (r = get_hparam_u32(m, "embedding_length", false, 0, &hp->n_embd, error)) < 0 ||
            (r = get_hparam_u32(m, "block_count", false, 0, &hp->n_layer, error)) < 0 ||
            (r = get_hparam_u32(m, "feed_forward_length", false, 0, &hp->n_ff, error)) < 0 ||
            (r = get_hparam_u32(m, "attention.head_count", false, 0, &hp->n_head, error)) < 0)
                return r;
        if ((r = get_hparam_u32(m, "attention.head_count_kv", true, hp->n_head, &hp->n_head_kv,
                                error)) < 0)
                return r;
        if (hp->n_embd == 0 || hp->n_embd > 65536 || hp->n_layer == 0 || hp->n_layer > 1024 ||
            hp->n_ff == 0 || hp->n_ff > 1u << 20 || hp->n_head == 0 || hp->n_head > 1024 ||
            hp->n_head_kv == 0 || hp->n_head % hp->n_head_kv != 0 || hp->n_ctx_train == 0)
                return fail(error, -EBADMSG,
                            "inconsistent hyper-parameters: n_embd=%u n_layer=%u n_ff=%u n_head=%u "
                            "n_head_kv=%u",
                            hp->n_embd, hp->n_layer, hp->n_ff, hp->n_head, hp->n_head_kv);
        if ((r = get_hparam_u32(m, "attention.key_length", true, hp->n_embd / hp->n_head,
                                &hp->head_dim, error)) < 0)
                return r;
        if (hp->head_dim == 0 || hp->head_dim % 2 != 0 || hp->head_dim > 1024)
                return fail(error, -EBADMSG, "head dimension %u is not usable", hp->head_dim);
        if ((r = get_hparam_u32(m, "rope.dimension_count", true, hp->head_dim, &hp->n_rot, error)) <
            0)
                return r;
        if (hp->n_rot == 0 || hp->n_rot > hp->head_dim || hp->n_rot % 2 != 0)
                return fail(error, -EBADMSG, "rope.dimension_count %u is not usable", hp->n_rot);
        if ((r = get_hparam_f32(m, "attention.layer_norm_rms_epsilon", 1e-5f, &hp->rms_eps,
                                error)) < 0 ||
            (r = get_hparam_f32(m, "rope.freq_base", 10000.0f, &hp->rope_freq_base, error)) < 0)
                return r;
        if (hp->rms_eps <= 0.0f || hp->rope_freq_base <= 0.0f)
                return fail(error, -EBADMSG, "rms epsilon and rope.freq_base must be positive");

        hp->rope_freq_scale = 1.0f;
        char key[128];
        const char *stype = NULL;
        size_t stype_len = 0;
        snprintf(key, sizeof(key), "%s.rope.scaling.type", m->arch_name);
        if (gguf_get_str(m->gguf, key, &stype, &stype_len) >= 0 &&
            !(stype_len == 4 && memcmp(stype, "none", 4) == 0)) {
                if (!(stype_len == 6 && memcmp(stype, "linear", 6) == 0))
                        return fail(error, -EOPNOTSUPP, "RoPE scaling '%.*s' is not supported",
                                    (int)MIN(stype_len, (size_t)32), stype);
                float factor = 0.0f;
                if ((r = get_hparam_f32(m, "rope.scaling.factor", 0.0f, &factor, error)) < 0)
                        return r;
                if (factor > 0.0f)
                        hp->rope_freq_scale = 1.0f / factor;
        } else {
                /* Older files give only the factor. */
                float factor = 0.0f;
                snprintf(key, sizeof(key), "%s.rope.scale_linear", m->arch_name);
                if (gguf_get_f32(m->gguf, key, &factor) >= 0 && factor > 0.0f)
                        hp->rope_freq_scale = 1.0f / factor;
        }
        hp->rope_neox = hp->arch == MODEL_ARCH_QWEN2;

        const GgufTensor *emb = gguf_find_tensor(m->gguf, "token_embd.weight");
        if (!emb || emb->n_dims != 2)
                return fail(error, -EBADMSG, "tensor 'token_embd.weight' is missing or not 2-D");
        if (emb->ne[1] > (1u << 24))
                return fail(error, -EBADMSG, "vocabulary of %llu tokens is absurd",
                            (unsigned long long)emb->ne[1]);
        hp->n_vocab = (uint32_t)emb->ne[1];
        return 0;
}

int model_load_gguf(GgufFile *f, Model **ret, char **error)
{
        _cleanup_(model_freep) Model *m = NULL;
        char name[96];
        int r;

        m = new0(Model, 1);
        if (!m)
                return -ENOMEM;
        m->gguf = f;
        r = load_hparams(m, error);
        if (r < 0)
                goto fail;

        const ModelHParams *hp = &m->hp;
        size_t q_dim = (size_t)hp->n_head * hp->head_dim;
        size_t kv_dim = (size_t)hp->n_head_kv * hp->head_dim;

        r = get_weight(m, "token_embd.weight", hp->n_embd, hp->n_vocab, false, &m->tok_embd, error);
        if (r < 0)
                goto fail;
        r = get_vector(m, "output_norm.weight", hp->n_embd, false, &m->output_norm, error);
        if (r < 0)
                goto fail;
        r = get_weight(m, "output.weight", hp->n_embd, hp->n_vocab, true, &m->output, error);
        if (r < 0)
                goto fail;
        bool tied = r == 0;
        if (tied)
                m->output = m->tok_embd;
        r = weight_pack(m, &m->output, tied);
        if (r < 0)
                goto fail;
        r = get_vector(m, "rope_freqs.weight", hp->n_rot / 2, true, &m->rope_freqs, error);
        if (r < 0)
                goto fail;

        m->layers = new0(LayerWeights, hp->n_layer);
        if (!m->layers) {
                r = -ENOMEM;
                goto fail;
        }
        for (uint32_t i = 0; i < hp->n_layer; i++) {
                LayerWeights *l = &m->layers[i];
#define W(field, tname, ne0, ne1)                                                                  \
        snprintf(name, sizeof(name), "blk.%u." tname ".weight", i);                                \
        if ((r = get_weight(m, name, ne0, ne1, false, &l->field, error)) < 0 ||                    \
            (r = weight_pack(m, &l->field, false)) < 0)                                            \
                goto fail;
#define V(field, tname, suffix, n, opt)                                                            \
        snprintf(name, sizeof(name), "blk.%u." tname "." suffix, i);                               \
        if ((r = get_vector(m, name, n, opt, &l->field, error)) < 0)                               \
                goto fail;
                V(attn_norm, "attn_norm", "weight", hp->n_embd, false);
                W(wq, "attn_q", hp->n_embd, q_dim);
                W(wk, "attn_k", hp->n_embd, kv_dim);
                W(wv, "attn_v", hp->n_embd, kv_dim);
                W(wo, "attn_output", q_dim, hp->n_embd);
                bool need_bias = hp->arch == MODEL_ARCH_QWEN2;
                V(bq, "attn_q", "bias", q_dim, !need_bias);
                V(bk, "attn_k", "bias", kv_dim, !need_bias);
                V(bv, "attn_v", "bias", kv_dim, !need_bias);
                V(ffn_norm, "ffn_norm", "weight", hp->n_embd, false);
                W(w_gate, "ffn_gate", hp->n_embd, hp->n_ff);
                W(w_up, "ffn_up", hp->n_embd, hp->n_ff);
                W(w_down, "ffn_down", hp->n_ff, hp->n_embd);
#undef W
#undef V
        }

        for (size_t i = 0; i < f->n_tensors; i++) {
                const GgufTensor *t = &f->tensors[i];
                m->n_params += t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        }
        *ret = TAKE_PTR(m);
        return 0;
fail:
        m->gguf = NULL; /* the caller still owns f on failure */
        return r;
}

int model_load(const char *path, Model **ret, char **error)
{
        GgufFile *f = NULL;
        int r;

        r = gguf_open(path, &f, error);
        if (r < 0)
                return r;
        r = model_load_gguf(f, ret, error);
        if (r < 0)
                gguf_free(f);
        return r;
}

/* ---- forward pass ---- */

/* Activations converted for one group of weights that share a dot partner type. */
typedef struct QuantBuf {
        uint8_t *data;
        size_t size;
} QuantBuf;

/* One thread's share of a matrix product: how many of its chunks have been taken. */
typedef struct WorkCursor {
        _Alignas(64) _Atomic size_t next;
} WorkCursor;

struct ForwardState {
        size_t n_batch_max, n_ctx;
        WorkCursor *cursors; /* att_scratch_threads of them */
        float *x, *xb, *xb2, *q, *k, *v, *att, *hb, *hb2, *rope_cs;
        QuantBuf qbuf;
        float *att_scratch; /* per thread: n_ctx scores + head_dim accumulators */
        size_t att_scratch_threads;
        ggml_fp16_t *q16; /* per thread head_dim */
        int32_t *seq_start; /* per token: first cached position it may attend to (0) */
        float *xo;
};

ForwardState *forward_state_free(ForwardState *s)
{
        if (!s)
                return NULL;
        free(s->x);
        free(s->xb);
        free(s->xb2);
        free(s->q);
        free(s->k);
        free(s->v);
        free(s->att);
        free(s->hb);
        free(s->hb2);
        free(s->rope_cs);
        free(s->qbuf.data);
        free(s->att_scratch);
        free(s->cursors);
        free(s->q16);
        free(s->seq_start);
        free(s->xo);
        return mfree(s);
}

int forward_state_new(const Model *m, size_t n_batch_max, size_t n_ctx, ForwardState **ret)
{
        const ModelHParams *hp = &m->hp;
        ForwardState *s;
        size_t n = n_batch_max;
        size_t q_dim = (size_t)hp->n_head * hp->head_dim;
        size_t kv_dim = (size_t)hp->n_head_kv * hp->head_dim;
        size_t wide = MAX(MAX((size_t)hp->n_embd, (size_t)hp->n_ff), q_dim);

        if (n == 0 || n_ctx == 0)
                return -EINVAL;
        s = new0(ForwardState, 1);
        if (!s)
                return -ENOMEM;
        s->n_batch_max = n;
        s->n_ctx = n_ctx;
        s->x = new (float, n * hp->n_embd);
        s->xb = new (float, n *wide);
        s->xb2 = new (float, n * hp->n_embd);
        s->q = new (float, n *q_dim);
        s->k = new (float, n *kv_dim);
        s->v = new (float, n *kv_dim);
        s->att = new (float, n *q_dim);
        s->hb = new (float, n * hp->n_ff);
        s->hb2 = new (float, n * hp->n_ff);
        s->rope_cs = new (float, n * hp->n_rot);
        s->seq_start = new (int32_t, n);
        s->xo = new (float, n * hp->n_embd);
        /* Largest converted row: F32 partner of the widest row, 4 bytes per element. */
        s->qbuf.size = n * wide * sizeof(float) + 1024;
        s->qbuf.data = malloc(s->qbuf.size);
        if (!s->x || !s->xb || !s->xb2 || !s->q || !s->k || !s->v || !s->att || !s->hb || !s->hb2 ||
            !s->rope_cs || !s->qbuf.data || !s->seq_start || !s->xo) {
                forward_state_free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

/* The sum of squares is taken in double as ggml does, in eight partial sums: one chain
 * of dependent double additions cost four cycles an element (3% of an eight-sequence
 * decoding step of the 110M model); eight independent ones vectorize. Reordering
 * double additions of float squares moves the sum by about 1e-16 of itself. */
static void rms_norm(float *out, const float *x, const float *w, size_t n, float eps)
{
        double part[8] = {};
        size_t i = 0;
        for (; i + 8 <= n; i += 8)
                for (size_t k = 0; k < 8; k++)
                        part[k] += (double)(x[i + k] * x[i + k]);
        double sum = 0.0;
        for (size_t k = 0; k < 8; k++)
                sum += part[k];
        for (; i < n; i++)
                sum += (double)(x[i] * x[i]);
        float scale = 1.0f / sqrtf((float)(sum / n) + eps);
        for (i = 0; i < n; i++)
                out[i] = x[i] * scale * w[i];
}

typedef struct MatmulJob {
        const Weight *w[4];
        float *out[4];
        size_t n_w;
        const uint8_t *xq;
        size_t xq_row; /* bytes per converted token row */
        size_t n_tok;
        size_t out_stride[4];
        /* conversion phase */
        const float *x;
        size_t x_row;
        GgmlFromFloatFn from_float;
        /* per-block sums of the converted rows for gemm16, or NULL */
        void (*sums)(const void *y, size_t n, int32_t *out);
        int32_t *ysum;
        size_t yss; /* words per token row */
        /* gemm_wide: xq holds F32 rows rounded through the vec_dot type */
        bool wide;
        WorkCursor *cursors; /* one per thread, reset to 0 */
        /* makes token t's input row just before it is converted (the norm or SwiGLU
         * before the product), in the same job: one pass and one barrier fewer */
        void (*before)(void *userdata, size_t t);
        void *before_data;
} MatmulJob;

#define MATMUL_CHUNKS_PER_THREAD 4

/* x rounded to F16 and back, so that F32 products equal the F16 reference's */
static void round_f16_row(const float *x, float *y, size_t n)
{
        ggml_fp16_t tmp[256];
        for (size_t i = 0; i < n; i += ELEMENTSOF(tmp)) {
                size_t c = MIN(ELEMENTSOF(tmp), n - i);
                ggml_fp32_to_fp16_row_fast(x + i, tmp, c);
                ggml_fp16_to_fp32_row_fast(tmp, y + i, c);
        }
}

static void convert_job(void *userdata, unsigned ith, unsigned nth)
{
        MatmulJob *j = userdata;
        size_t lo, hi;
        threadpool_split(j->n_tok, ith, nth, &lo, &hi);
        for (size_t t = lo; t < hi; t++) {
                if (j->before)
                        j->before(j->before_data, t);
                if (j->wide) {
                        round_f16_row(j->x + t * j->x_row, (float *)j->xq + t * j->x_row, j->x_row);
                        continue;
                }
                j->from_float(j->x + t * j->x_row, (uint8_t *)j->xq + t * j->xq_row, j->x_row);
                if (j->sums)
                        j->sums(j->xq + t * j->xq_row, j->x_row, j->ysum + t * j->yss);
        }
}

/* Rows of one weight, [a, e), against all tokens: 4x4 tiles where the type has a tile
 * kernel, then the four-token and one-token kernels for what is left over. */
static void matmul_rows(const MatmulJob *j, const Weight *w, float *out, size_t os, size_t a,
                        size_t e)
{
        const uint8_t *data = w->data;
        size_t r = a;

        if (j->wide) {
                for (; r < e; r += GGML_GEMM_WIDE_ROWS)
                        w->k.gemm_wide(w->ne0, data + r * w->row_size, w->row_size,
                                       MIN((size_t)GGML_GEMM_WIDE_ROWS, e - r),
                                       (const float *)j->xq, j->x_row, j->n_tok, out + r, os);
                return;
        }
        if (w->packed) {
                size_t gs = (w->ne0 / ggml_type_traits(w->type)->block_size) *
                        ggml_pack16_block_size(w->type);
                for (; r + 16 <= e && r % 16 == 0; r += 16)
                        for (size_t t = 0; t < j->n_tok; t += 16)
                                w->k.gemm16(w->ne0, (const uint8_t *)w->packed + (r / 16) * gs,
                                            j->xq + t * j->xq_row, j->xq_row, j->ysum + t * j->yss,
                                            j->yss, MIN(j->n_tok - t, (size_t)16), out + t * os + r,
                                            os);
        }
        if (w->k.gemm4 && j->n_tok >= 4) {
                size_t nt = j->n_tok & ~(size_t)3;
                for (; r + 4 <= e; r += 4) {
                        for (size_t t = 0; t < nt; t += 4)
                                w->k.gemm4(w->ne0, data + r * w->row_size, w->row_size,
                                           j->xq + t * j->xq_row, j->xq_row, out + t * os + r, os);
                        for (size_t t = nt; t < j->n_tok; t++)
                                for (size_t k = r; k < r + 4; k++)
                                        out[t * os + k] =
                                                w->k.vec_dot(w->ne0, data + k * w->row_size,
                                                             j->xq + t * j->xq_row);
                }
        }
        for (; r < e; r++) {
                const uint8_t *row = data + r * w->row_size;
                size_t t = 0;
                if (w->k.vec_dot4)
                        for (; t + 4 <= j->n_tok; t += 4) {
                                float v[4];
                                w->k.vec_dot4(w->ne0, row, j->xq + t * j->xq_row, j->xq_row, v);
                                for (int k = 0; k < 4; k++)
                                        out[(t + k) * os + r] = v[k];
                        }
                for (; t < j->n_tok; t++)
                        out[t * os + r] = w->k.vec_dot(w->ne0, row, j->xq + t * j->xq_row);
        }
}

static void matmul_range(const MatmulJob *j, size_t lo, size_t hi)
{
        size_t base = 0;
        for (size_t i = 0; i < j->n_w; i++) {
                const Weight *w = j->w[i];
                size_t a = MAX(lo, base), e = MIN(hi, base + w->ne1);
                if (a < e)
                        matmul_rows(j, w, j->out[i], j->out_stride[i], a - base, e - base);
                base += w->ne1;
        }
}

/* Each thread owns a contiguous share of the rows, in whole 16-row groups (the tile
 * kernels see whole tiles), and walks whole weight rows against all tokens of the batch,
 * so a weight row is read from memory once per batch. A share is taken chunk by chunk
 * from its cursor; a thread done with its own share takes the chunks left in the
 * others'. On a quiet machine every thread runs exactly its share; when the kernel
 * preempts one (a busy host, other tasks on an agent), the others finish its work
 * instead of waiting for it. */
static void matmul_job(void *userdata, unsigned ith, unsigned nth)
{
        MatmulJob *j = userdata;
        size_t total = 0;
        for (size_t i = 0; i < j->n_w; i++)
                total += j->w[i]->ne1;
        size_t units = (total + 15) / 16;

        for (unsigned k = 0; k < nth; k++) {
                unsigned i = (ith + k) % nth;
                size_t u0 = units * i / nth, u1 = units * (i + 1) / nth;
                size_t per =
                        MAX((u1 - u0 + MATMUL_CHUNKS_PER_THREAD - 1) / MATMUL_CHUNKS_PER_THREAD,
                            (size_t)1);
                for (;;) {
                        size_t c = atomic_fetch_add_explicit(&j->cursors[i].next, 1,
                                                             memory_order_relaxed);
                        size_t a = u0 + c * per;
                        if (a >= u1)
                                break;
                        matmul_range(j, a * 16, MIN(MIN(a + per, u1) * 16, total));
                }
        }
}

/* out_i = x · w_i^T for weights sharing one input; weights are grouped by their dot
 * partner type so the input is converted once per group. */
static void matmul(ForwardState *s, ThreadPool *pool, const float *x, size_t n_tok,
                   const Weight **ws, float **outs, size_t n_w,
                   void (*before)(void *userdata, size_t t), void *before_data)
{
        bool done[4] = {};
        for (size_t i = 0; i < n_w; i++) {
                if (done[i])
                        continue;
                /* the first group's conversion makes the rows for all of them */
                MatmulJob j = {.n_tok = n_tok,
                               .x = x,
                               .x_row = ws[i]->ne0,
                               .before = i == 0 ? before : NULL,
                               .before_data = before_data};
                GgmlType vt = ggml_type_traits(ws[i]->type)->vec_dot_type;
                for (size_t k = i; k < n_w; k++)
                        if (!done[k] && ggml_type_traits(ws[k]->type)->vec_dot_type == vt) {
                                j.w[j.n_w] = ws[k];
                                j.out[j.n_w] = outs[k];
                                j.out_stride[j.n_w] = ws[k]->ne1;
                                j.n_w++;
                                done[k] = true;
                        }
                j.from_float = ws[i]->k.from_float;
                j.xq_row = ggml_row_size(vt, ws[i]->ne0);
                /* a decoding step's few tokens: one pass over the rows for all of them */
                j.wide = vt == GGML_TYPE_F16 && n_tok >= 2 && n_tok <= GGML_GEMM_WIDE_TOKENS;
                for (size_t k = 0; k < j.n_w; k++)
                        j.wide = j.wide && j.w[k]->k.gemm_wide;
                j.xq = s->qbuf.data;
                for (size_t k = 0; k < j.n_w; k++)
                        if (j.w[k]->packed && (vt == GGML_TYPE_Q8_0 || vt == GGML_TYPE_Q8_K)) {
                                /* after the converted rows, which are smaller than the F32
                                 * rows the buffer is sized for */
                                size_t off = ALIGN_TO(n_tok * j.xq_row, 64);
                                j.ysum = (int32_t *)((uint8_t *)s->qbuf.data + off);
                                j.sums =
                                        vt == GGML_TYPE_Q8_0 ? ggml_q8_0_sums : ggml_q8_K_pair_sums;
                                j.yss = vt == GGML_TYPE_Q8_0 ? ws[i]->ne0 / QK8_0
                                                             : ws[i]->ne0 / QK_K * 4;
                                assert(off + n_tok * j.yss * sizeof(int32_t) <= s->qbuf.size);
                                break;
                        }
                if (n_tok >= 4)
                        threadpool_run(pool, convert_job, &j);
                else
                        convert_job(&j, 0, 1);
                j.cursors = s->cursors;
                for (unsigned t = 0; t < threadpool_size(pool); t++)
                        atomic_store_explicit(&j.cursors[t].next, 0, memory_order_relaxed);
                threadpool_run(pool, matmul_job, &j);
        }
}

typedef struct SwigluRows {
        float *g;
        const float *u;
        size_t n; /* per token */
} SwigluRows;

/* g = silu(g) * u for token t, before the down projection converts it */
static void swiglu_row(void *userdata, size_t t)
{
        SwigluRows *j = userdata;
        vm_silu_mul(j->g + t * j->n, j->u + t * j->n, j->n);
}

typedef struct AttnJob {
        const Model *m;
        ForwardState *s;
        const KvCache *kv;
        const ModelBatch *b;
        size_t layer;
} AttnJob;

static void attn_job(void *userdata, unsigned ith, unsigned nth)
{
        AttnJob *j = userdata;
        const ModelHParams *hp = &j->m->hp;
        ForwardState *s = j->s;
        const KvCache *kv = j->kv;
        size_t hd = hp->head_dim, q_dim = (size_t)hp->n_head * hd;
        size_t group = hp->n_head / hp->n_head_kv;
        float scale = 1.0f / sqrtf((float)hd);
        float *scores = s->att_scratch + (size_t)ith * (16 * s->n_ctx + hd);
        float *acc = scores + s->n_ctx;
        ggml_fp16_t *q16 = s->q16 + (size_t)ith * hd;
        bool f16 = kv->type == GGML_TYPE_F16;

        /* F16 cache: the heads sharing a KV head, for up to 16 / group consecutive tokens
         * of one sequence, go through the cache together, each K/V block converted once
         * for all of them. Chunks x KV heads are dealt round-robin. */
        if (f16 && group <= 16 && vm_attn_f16_rows_supported(hd)) {
                size_t tb = 16 / group, item = 0;
                for (size_t t0 = 0; t0 < j->b->n;) {
                        size_t seq = (size_t)j->b->seq[t0], t1 = t0 + 1;
                        while (t1 < j->b->n && t1 - t0 < tb && (size_t)j->b->seq[t1] == seq)
                                t1++;
                        for (size_t kvh = 0; kvh < hp->n_head_kv; kvh++, item++) {
                                if (item % nth != ith)
                                        continue;
                                const float *qr[16];
                                float *orow[16];
                                size_t nkv[16], nq = 0;
                                for (size_t t = t0; t < t1; t++)
                                        for (size_t g = 0; g < group; g++, nq++) {
                                                size_t h = kvh * group + g;
                                                qr[nq] = s->q + t * q_dim + h * hd;
                                                orow[nq] = s->att + t * q_dim + h * hd;
                                                nkv[nq] = (size_t)j->b->pos[t] + 1;
                                        }
                                bool ok = vm_attn_f16_rows(
                                        qr, orow, nkv, nq,
                                        (const ggml_fp16_t *)kv_cache_k(kv, seq, j->layer, 0) +
                                                kvh * hd,
                                        (const ggml_fp16_t *)kv_cache_v(kv, seq, j->layer, 0) +
                                                kvh * hd,
                                        kv->kv_dim, hd, scale,
                                        s->att_scratch + (size_t)ith * (16 * s->n_ctx + hd),
                                        s->n_ctx);
                                assert(ok);
                                (void)ok;
                        }
                        t0 = t1;
                }
                return;
        }
        /* Items are dealt round-robin: later tokens attend to more positions, so
         * contiguous ranges would load the last thread most. */
        for (size_t item = ith; item < j->b->n * hp->n_head; item += nth) {
                size_t t = item / hp->n_head, h = item % hp->n_head;
                size_t seq = (size_t)j->b->seq[t], n_kv = (size_t)j->b->pos[t] + 1;
                size_t kvh = h / group;
                const float *q = s->q + t * q_dim + h * hd;
                float max = -INFINITY;

                if (f16) {
                        ggml_fp32_to_fp16_row_fast(q, q16, hd);
                        if (vm_attn_f16(q16,
                                        (const ggml_fp16_t *)kv_cache_k(kv, seq, j->layer, 0) +
                                                kvh * hd,
                                        (const ggml_fp16_t *)kv_cache_v(kv, seq, j->layer, 0) +
                                                kvh * hd,
                                        kv->kv_dim, n_kv, hd, scale, scores,
                                        s->att + t * q_dim + h * hd))
                                continue;
                        for (size_t p = 0; p < n_kv; p++) {
                                const ggml_fp16_t *kr =
                                        (const ggml_fp16_t *)kv_cache_k(kv, seq, j->layer, p) +
                                        kvh * hd;
                                scores[p] = ggml_vec_dot_f16(hd, kr, q16) * scale;
                                max = fmaxf(max, scores[p]);
                        }
                } else {
                        for (size_t p = 0; p < n_kv; p++) {
                                const float *kr =
                                        (const float *)kv_cache_k(kv, seq, j->layer, p) + kvh * hd;
                                scores[p] = ggml_vec_dot_f32(hd, kr, q) * scale;
                                max = fmaxf(max, scores[p]);
                        }
                }
                double sum = 0.0;
                for (size_t p = 0; p < n_kv; p++) {
                        scores[p] = expf(scores[p] - max);
                        sum += scores[p];
                }
                float inv = (float)(1.0 / sum);
                for (size_t p = 0; p < n_kv; p++)
                        scores[p] *= inv;
                if (f16) {
                        /* the weights meet F16 values as F16, like ggml's product */
                        for (size_t p0 = 0; p0 < n_kv; p0 += 64) {
                                ggml_fp16_t tmp[64];
                                size_t cnt = MIN((size_t)64, n_kv - p0);
                                ggml_fp32_to_fp16_row_fast(scores + p0, tmp, cnt);
                                ggml_fp16_to_fp32_row_fast(tmp, scores + p0, cnt);
                        }
                }
                memset(acc, 0, hd * sizeof(float));
                for (size_t p = 0; p < n_kv; p++) {
                        float w = scores[p];
                        if (f16) {
                                const ggml_fp16_t *vr =
                                        (const ggml_fp16_t *)kv_cache_v(kv, seq, j->layer, p) +
                                        kvh * hd;
                                ggml_vec_mad_f16(hd, acc, vr, w);
                        } else {
                                const float *vr =
                                        (const float *)kv_cache_v(kv, seq, j->layer, p) + kvh * hd;
                                for (size_t d = 0; d < hd; d++)
                                        acc[d] += w * vr[d];
                        }
                }
                memcpy(s->att + t * q_dim + h * hd, acc, hd * sizeof(float));
        }
}

/* cos/sin pairs for each rotated dimension pair at each token's position. */
static void rope_prepare(const Model *m, ForwardState *s, const ModelBatch *b)
{
        const ModelHParams *hp = &m->hp;
        float theta_scale = powf(hp->rope_freq_base, -2.0f / (float)hp->n_rot);

        for (size_t t = 0; t < b->n; t++) {
                float *cs = s->rope_cs + t * hp->n_rot;
                float theta_base = (float)b->pos[t];
                for (size_t i = 0; i < hp->n_rot / 2; i++) {
                        float ff = m->rope_freqs ? m->rope_freqs[i] : 1.0f;
                        float theta = hp->rope_freq_scale * (theta_base / ff);
                        cs[2 * i] = cosf(theta);
                        cs[2 * i + 1] = sinf(theta);
                        theta_base *= theta_scale;
                }
        }
}

static void rope_apply(const ModelHParams *hp, const float *cs, float *x, size_t n_heads)
{
        size_t hd = hp->head_dim, half = hp->n_rot / 2;
        for (size_t h = 0; h < n_heads; h++, x += hd)
                for (size_t i = 0; i < half; i++) {
                        size_t a = hp->rope_neox ? i : 2 * i;
                        size_t bb = hp->rope_neox ? i + half : 2 * i + 1;
                        float c = cs[2 * i], sn = cs[2 * i + 1];
                        float x0 = x[a], x1 = x[bb];
                        x[a] = x0 * c - x1 * sn;
                        x[bb] = x0 * sn + x1 * c;
                }
}

typedef struct NormRows {
        float *x; /* residual stream, n x dim */
        const float *add; /* added to x first, or NULL */
        float *out; /* rms_norm(x) * w */
        const float *w;
        size_t dim;
        float eps;
} NormRows;

/* x += add; out = rms_norm(x) * w for token t, before the product that follows converts
 * it */
static void norm_row(void *userdata, size_t t)
{
        NormRows *j = userdata;
        float *x = j->x + t * j->dim;
        if (j->add) {
                const float *a = j->add + t * j->dim;
                for (size_t i = 0; i < j->dim; i++)
                        x[i] += a[i];
        }
        rms_norm(j->out + t * j->dim, x, j->w, j->dim, j->eps);
}

typedef struct QkvJob {
        const Model *m;
        const LayerWeights *l;
        ForwardState *s;
        KvCache *kv;
        const ModelBatch *b;
        uint32_t il;
} QkvJob;

/* Biases, RoPE and the store of K and V into the cache, token by token across threads. */
static void qkv_job(void *userdata, unsigned ith, unsigned nth)
{
        QkvJob *j = userdata;
        const ModelHParams *hp = &j->m->hp;
        const LayerWeights *l = j->l;
        ForwardState *s = j->s;
        KvCache *kv = j->kv;
        size_t q_dim = (size_t)hp->n_head * hp->head_dim;
        size_t kv_dim = (size_t)hp->n_head_kv * hp->head_dim;
        size_t lo, hi;
        threadpool_split(j->b->n, ith, nth, &lo, &hi);
        for (size_t t = lo; t < hi; t++) {
                float *q = s->q + t * q_dim, *k = s->k + t * kv_dim, *v = s->v + t * kv_dim;
                if (l->bq)
                        for (size_t i = 0; i < q_dim; i++)
                                q[i] += l->bq[i];
                if (l->bk)
                        for (size_t i = 0; i < kv_dim; i++)
                                k[i] += l->bk[i];
                if (l->bv)
                        for (size_t i = 0; i < kv_dim; i++)
                                v[i] += l->bv[i];
                rope_apply(hp, s->rope_cs + t * hp->n_rot, q, hp->n_head);
                rope_apply(hp, s->rope_cs + t * hp->n_rot, k, hp->n_head_kv);
                void *kd = kv_cache_k(kv, j->b->seq[t], j->il, j->b->pos[t]);
                void *vd = kv_cache_v(kv, j->b->seq[t], j->il, j->b->pos[t]);
                if (kv->type == GGML_TYPE_F16) {
                        ggml_fp32_to_fp16_row_fast(k, kd, kv_dim);
                        ggml_fp32_to_fp16_row_fast(v, vd, kv_dim);
                } else {
                        memcpy(kd, k, kv_dim * sizeof(float));
                        memcpy(vd, v, kv_dim * sizeof(float));
                }
        }
}

int model_forward(const Model *m, ForwardState *s, ThreadPool *pool, KvCache *kv,
                  const ModelBatch *b, float *logits, float *embd)
{
        const ModelHParams *hp = &m->hp;
        size_t n = b->n, dim = hp->n_embd;
        size_t kv_dim = (size_t)hp->n_head_kv * hp->head_dim;
        size_t n_seq_new[64];
        int r;

        if (n == 0 || n > s->n_batch_max)
                return -EINVAL;
        if (kv->kv_dim != kv_dim || kv->n_layer != hp->n_layer)
                return -EINVAL;

        /* Validate the batch before touching anything. */
        for (size_t t = 0; t < n; t++) {
                if (b->tokens[t] < 0 || (uint32_t)b->tokens[t] >= hp->n_vocab)
                        return -EINVAL;
                if (b->seq[t] < 0 || (size_t)b->seq[t] >= kv->n_seq)
                        return -EINVAL;
                size_t expect = kv->seqs[b->seq[t]].n_past;
                for (size_t u = 0; u < t; u++)
                        if (b->seq[u] == b->seq[t])
                                expect++;
                if (b->pos[t] < 0 || (size_t)b->pos[t] != expect)
                        return -EINVAL;
                if ((size_t)b->pos[t] >= kv->n_ctx || (size_t)b->pos[t] >= s->n_ctx)
                        return -ENOSPC;
        }
        for (size_t t = 0; t < n; t++) {
                r = kv_cache_reserve(kv, b->seq[t], b->pos[t] + 1);
                if (r < 0)
                        return r;
        }
        (void)n_seq_new;

        unsigned nth = threadpool_size(pool);
        if (s->att_scratch_threads < nth) {
                float *a = realloc(s->att_scratch,
                                   sizeof(float) * nth * (16 * s->n_ctx + hp->head_dim));
                if (!a)
                        return -ENOMEM;
                s->att_scratch = a;
                ggml_fp16_t *q16 = realloc(s->q16, sizeof(ggml_fp16_t) * nth * hp->head_dim);
                if (!q16)
                        return -ENOMEM;
                s->q16 = q16;
                WorkCursor *cur = aligned_alloc(_Alignof(WorkCursor), sizeof(WorkCursor) * nth);
                if (!cur)
                        return -ENOMEM;
                free(s->cursors);
                s->cursors = cur;
                s->att_scratch_threads = nth;
        }

        for (size_t t = 0; t < n; t++) {
                const uint8_t *row = (const uint8_t *)m->tok_embd.data +
                        (size_t)b->tokens[t] * m->tok_embd.row_size;
                r = ggml_dequantize_row(m->tok_embd.type, row, s->x + t * dim, dim);
                if (r < 0)
                        return r;
        }
        rope_prepare(m, s, b);

        for (uint32_t il = 0; il < hp->n_layer; il++) {
                const LayerWeights *l = &m->layers[il];

                {
                        /* the previous layer's feed-forward output joins the stream here */
                        NormRows nr = {.x = s->x,
                                       .add = il > 0 ? s->xb2 : NULL,
                                       .out = s->xb,
                                       .w = l->attn_norm,
                                       .dim = dim,
                                       .eps = hp->rms_eps};
                        const Weight *ws[3] = {&l->wq, &l->wk, &l->wv};
                        float *outs[3] = {s->q, s->k, s->v};
                        matmul(s, pool, s->xb, n, ws, outs, 3, norm_row, &nr);
                }
                {
                        QkvJob qj = {.m = m, .l = l, .s = s, .kv = kv, .b = b, .il = il};
                        if (n >= 4)
                                threadpool_run(pool, qkv_job, &qj);
                        else
                                qkv_job(&qj, 0, 1);
                }
                AttnJob aj = {.m = m, .s = s, .kv = kv, .b = b, .layer = il};
                threadpool_run(pool, attn_job, &aj);
                {
                        const Weight *ws[1] = {&l->wo};
                        float *outs[1] = {s->xb2};
                        matmul(s, pool, s->att, n, ws, outs, 1, NULL, NULL);
                }
                {
                        NormRows nr = {.x = s->x,
                                       .add = s->xb2,
                                       .out = s->xb,
                                       .w = l->ffn_norm,
                                       .dim = dim,
                                       .eps = hp->rms_eps};
                        const Weight *ws[2] = {&l->w_gate, &l->w_up};
                        float *outs[2] = {s->hb, s->hb2};
                        matmul(s, pool, s->xb, n, ws, outs, 2, norm_row, &nr);
                }
                {
                        SwigluRows sr = {.g = s->hb, .u = s->hb2, .n = hp->n_ff};
                        const Weight *ws[1] = {&l->w_down};
                        float *outs[1] = {s->xb2};
                        matmul(s, pool, s->hb, n, ws, outs, 1, swiglu_row, &sr);
                }
        }
        /* the last layer's feed-forward output */
        for (size_t i = 0; i < n * dim; i++)
                s->x[i] += s->xb2[i];

        /* The cache now holds the batch. */
        for (size_t t = 0; t < n; t++) {
                KvSeq *sq = &kv->seqs[b->seq[t]];
                if ((size_t)b->pos[t] + 1 > sq->n_past)
                        sq->n_past = (size_t)b->pos[t] + 1;
        }

        if (embd)
                for (size_t t = 0; t < n; t++)
                        rms_norm(embd + t * dim, s->x + t * dim, m->output_norm, dim, hp->rms_eps);

        if (logits) {
                size_t n_out = 0;
                for (size_t t = 0; t < n; t++) {
                        bool want = b->want_logits ? b->want_logits[t] : t == n - 1;
                        if (!want)
                                continue;
                        rms_norm(s->xo + n_out * dim, s->x + t * dim, m->output_norm, dim,
                                 hp->rms_eps);
                        n_out++;
                }
                if (n_out > 0) {
                        const Weight *ws[1] = {&m->output};
                        float *outs[1] = {logits};
                        matmul(s, pool, s->xo, n_out, ws, outs, 1, NULL, NULL);
                }
        }
        return 0;
}
