/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "basic/alloc-util.h"
#include "basic/string-util.h"
#include "engine/tokenizer.h"
#include "engine/unicode.h"

/* U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's visible space. */
#define SPM_SPACE "\xE2\x96\x81"
#define SPM_SPACE_LEN 3
/* "<｜end▁of▁sentence｜>" (fullwidth bars), in octal so that no escape eats a letter */
#define DEEPSEEK_EOS "<\357\275\234end\342\226\201of\342\226\201sentence\357\275\234>"

/* An open-addressing table from byte strings to indexes into a string list. */
typedef struct StrTable {
        int32_t *slots; /* -1 = empty */
        size_t mask;
} StrTable;

struct Tokenizer {
        TokenizerKind kind;
        UnicodePreTokenizer pre;
        bool ignore_merges;

        size_t n_tokens;
        char *tok_text; /* all token texts, back to back */
        size_t *tok_off;
        uint32_t *tok_len;
        float *scores;
        uint8_t *types;
        bool *eog;
        StrTable tok_table;

        size_t n_merges;
        char *merge_text;
        size_t *merge_off;
        uint32_t *merge_len;
        uint32_t *merge_split; /* length of the left side */
        StrTable merge_table;

        int32_t *special; /* cut out of the text, longest first */
        size_t n_special;

        int32_t byte_token[256]; /* SPM byte fallback, -1 when the vocabulary lacks it */

        int32_t bos, eos, unk, pad, eot;
        bool add_bos, add_eos, add_space_prefix;
};

static uint64_t hash_bytes(const char *s, size_t n)
{
        uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

        for (size_t i = 0; i < n; i++) {
                h ^= (uint8_t)s[i];
                h *= 0x100000001b3ULL;
        }
        return h ^ (h >> 29);
}

static int strtable_init(StrTable *st, size_t n)
{
        size_t cap = 16;

        while (cap < n * 2)
                cap <<= 1;
        st->slots = new (int32_t, cap);
        if (!st->slots)
                return -ENOMEM;
        memset(st->slots, 0xff, cap * sizeof(int32_t));
        st->mask = cap - 1;
        return 0;
}

/* Slot of text in st (holding it, or the empty slot where it would go). */
static size_t strtable_slot(const StrTable *st, const char *base, const size_t *off,
                            const uint32_t *len, const char *text, size_t n)
{
        size_t i = hash_bytes(text, n) & st->mask;

        for (;; i = (i + 1) & st->mask) {
                int32_t id = st->slots[i];
                if (id < 0)
                        return i;
                if (len[id] == n && memcmp(base + off[id], text, n) == 0)
                        return i;
        }
}

int32_t tokenizer_find(const Tokenizer *t, const char *text, size_t len)
{
        if (!t || (!text && len > 0))
                return -1;
        return t->tok_table.slots[strtable_slot(&t->tok_table, t->tok_text, t->tok_off, t->tok_len,
                                                text, len)];
}

static int32_t merge_rank(const Tokenizer *t, const char *left, size_t ln, const char *right,
                          size_t rn, char *scratch)
{
        size_t n = ln + 1 + rn;
        int32_t id;

        memcpy(scratch, left, ln);
        scratch[ln] = ' ';
        memcpy(scratch + ln + 1, right, rn);
        id = t->merge_table.slots[strtable_slot(&t->merge_table, t->merge_text, t->merge_off,
                                                t->merge_len, scratch, n)];
        if (id >= 0 && t->merge_split[id] != ln)
                return -1;
        return id;
}

Tokenizer *tokenizer_free(Tokenizer *t)
{
        if (!t)
                return NULL;
        free(t->tok_text);
        free(t->tok_off);
        free(t->tok_len);
        free(t->scores);
        free(t->types);
        free(t->eog);
        free(t->tok_table.slots);
        free(t->merge_text);
        free(t->merge_off);
        free(t->merge_len);
        free(t->merge_split);
        free(t->merge_table.slots);
        free(t->special);
        return mfree(t);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Tokenizer *, tokenizer_free);

/* Texts llama.cpp treats as control tokens whatever their stored type (it recognizes
 * EOT, EOM, fill-in-the-middle and end-of-generation tokens by their text), and the
 * subset that ends generation. */
static const char *const promoted_control[] = {
        "<|eot_id|>",
        "<|im_end|>",
        "<|end|>",
        "<end_of_turn>",
        "<|endoftext|>",
        "<|end_of_text|>",
        "<EOT>",
        "_<EOT>",
        "[EOT]",
        DEEPSEEK_EOS,
        "<end_of_utterance>",
        "<|eom_id|>",
        "<|return|>",
        "<|call|>",
        "<|flush|>",
        "<|calls|>",
        "</s>",
        "[EOS]",
        "<eos>",
        "<turn|>",
        "<|tool_response>",
        "[e~[",
        "<|fim_prefix|>",
        "<fim-prefix>",
        "<fim_prefix>",
        "<PRE>",
        SPM_SPACE "<PRE>",
        "<|code_prefix|>",
        "<|prefix|>",
        "<|fim_suffix|>",
        "<fim-suffix>",
        "<fim_suffix>",
        "<SUF>",
        SPM_SPACE "<SUF>",
        "<|code_suffix|>",
        "<|suffix|>",
        "<|fim_middle|>",
        "<fim-middle>",
        "<fim_middle>",
        "<MID>",
        SPM_SPACE "<MID>",
        "<|code_middle|>",
        "<|middle|>",
        "<|fim_pad|>",
        "<fim-pad>",
        "<fim_pad>",
        "<PAD>",
        "[PAD]",
        "<|fim_repo|>",
        "<|repo_name|>",
        "<fim-repo>",
        "<REPO>",
        "<reponame>",
        "<|file_sep|>",
};
static const char *const eog_texts[] = {
        "<|eot_id|>",
        "<|im_end|>",
        "<|end|>",
        "<|return|>",
        "<|call|>",
        "<|flush|>",
        "<|calls|>",
        "<end_of_turn>",
        "<|endoftext|>",
        "</s>",
        "<|eom_id|>",
        "<EOT>",
        "_<EOT>",
        "[EOT]",
        "[EOS]",
        "<|end_of_text|>",
        "<end_of_utterance>",
        "<eos>",
        "<turn|>",
        "<|tool_response>",
        DEEPSEEK_EOS,
        "[e~[",
        "<|fim_pad|>",
        "<fim-pad>",
        "<fim_pad>",
        "<PAD>",
        "[PAD]",
        "<|fim_repo|>",
        "<|repo_name|>",
        "<fim-repo>",
        "<REPO>",
        "<reponame>",
        "<|file_sep|>",
};

static bool in_list(const char *const *list, size_t n, const char *s, size_t len)
{
        /* every listed text starts with one of these: skip the bulk of a vocabulary */
        if (len == 0 || !strchr("<[_\xE2", s[0]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (strlen(list[i]) == len && memcmp(list[i], s, len) == 0)
                        return true;
        return false;
}

static bool type_is_special(uint8_t type)
{
        return type == TOKENIZER_TYPE_CONTROL || type == TOKENIZER_TYPE_USER_DEFINED ||
                type == TOKENIZER_TYPE_UNKNOWN;
}

/* tokenizer.ggml.pre names, as llama.cpp maps them (llama-vocab.cpp). */
static const struct {
        const char *name;
        UnicodePreTokenizer kind;
        bool ignore_merges;
} pre_names[] = {
        {"llama3", UNICODE_PRE_LLAMA3, true},
        {"llama-v3", UNICODE_PRE_LLAMA3, true},
        {"llama-bpe", UNICODE_PRE_LLAMA3, true},
        {"falcon3", UNICODE_PRE_LLAMA3, true},
        {"falcon-h1", UNICODE_PRE_LLAMA3, true},
        {"pixtral", UNICODE_PRE_LLAMA3, true},
        {"midm-2.0", UNICODE_PRE_LLAMA3, true},
        {"lfm2", UNICODE_PRE_LLAMA3, true},
        {"dbrx", UNICODE_PRE_LLAMA3, false},
        {"smaug-bpe", UNICODE_PRE_LLAMA3, false},
        {"glm4", UNICODE_PRE_LLAMA3, false},
        {"chatglm-bpe", UNICODE_PRE_LLAMA3, false},
        {"qwen2", UNICODE_PRE_QWEN2, false},
        {"deepseek-r1-qwen", UNICODE_PRE_QWEN2, false},
        {"kormo", UNICODE_PRE_QWEN2, false},
        {"f2llmv2", UNICODE_PRE_QWEN2, false},
        {"megrez", UNICODE_PRE_QWEN2, false},
        {"stablelm2", UNICODE_PRE_QWEN2, false},
        {"starcoder", UNICODE_PRE_GPT2_DIGITS, false},
        {"refact", UNICODE_PRE_GPT2_DIGITS, false},
        {"command-r", UNICODE_PRE_GPT2_DIGITS, false},
        {"smollm", UNICODE_PRE_GPT2_DIGITS, false},
        {"codeshell", UNICODE_PRE_GPT2_DIGITS, false},
        {"exaone", UNICODE_PRE_GPT2_DIGITS, false},
        {"minerva-7b", UNICODE_PRE_GPT2_DIGITS, false},
};

static UnicodePreTokenizer pre_from_name(const char *pre, bool *ret_ignore_merges)
{
        *ret_ignore_merges = false;
        if (pre)
                for (size_t i = 0; i < ELEMENTSOF(pre_names); i++)
                        if (streq(pre, pre_names[i].name)) {
                                *ret_ignore_merges = pre_names[i].ignore_merges;
                                return pre_names[i].kind;
                        }
        /* "gpt-2" and kin; also our fallback for unknown and missing names */
        return UNICODE_PRE_GPT2;
}

static int32_t checked_id(int32_t id, size_t n)
{
        return id >= 0 && (size_t)id < n ? id : -1;
}

static int copy_strings(size_t n, const char *const *strs, const size_t *lens, size_t max_len,
                        char **ret_text, size_t **ret_off, uint32_t **ret_len)
{
        _cleanup_free_ char *text = NULL;
        _cleanup_free_ size_t *off = NULL;
        _cleanup_free_ uint32_t *len = NULL;
        size_t total = 0, pos = 0;

        for (size_t i = 0; i < n; i++) {
                if (lens[i] > max_len)
                        return -EINVAL;
                if (!strs[i] && lens[i] > 0)
                        return -EINVAL;
                total += lens[i]; /* n and max_len are bounded: cannot overflow */
        }
        text = malloc(total ?: 1);
        off = new (size_t, n);
        len = new (uint32_t, n);
        if (!text || !off || !len)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (lens[i] > 0)
                        memcpy(text + pos, strs[i], lens[i]);
                off[i] = pos;
                len[i] = (uint32_t)lens[i];
                pos += lens[i];
        }
        *ret_text = TAKE_PTR(text);
        *ret_off = TAKE_PTR(off);
        *ret_len = TAKE_PTR(len);
        return 0;
}

static int cmp_special(const void *a, const void *b, void *userdata)
{
        const Tokenizer *t = userdata;
        int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

        if (t->tok_len[x] != t->tok_len[y])
                return t->tok_len[x] > t->tok_len[y] ? -1 : 1;
        return x < y ? -1 : x > y;
}

int tokenizer_new(const TokenizerVocab *v, Tokenizer **ret)
{
        _cleanup_(tokenizer_freep) Tokenizer *t = NULL;
        int r;

        if (!v || !ret)
                return -EINVAL;
        if (v->kind != TOKENIZER_SPM && v->kind != TOKENIZER_BPE)
                return -EINVAL;
        if (v->n_tokens == 0 || v->n_tokens > TOKENIZER_MAX_TOKENS || !v->tokens || !v->token_lens)
                return -EINVAL;
        if (v->n_merges > TOKENIZER_MAX_MERGES ||
            (v->n_merges > 0 && (!v->merges || !v->merge_lens)))
                return -EINVAL;

        t = new0(Tokenizer, 1);
        if (!t)
                return -ENOMEM;
        t->kind = v->kind;
        t->n_tokens = v->n_tokens;
        t->pre = pre_from_name(v->pre, &t->ignore_merges);
        if (t->kind == TOKENIZER_SPM)
                t->ignore_merges = false;

        r = copy_strings(v->n_tokens, v->tokens, v->token_lens, TOKENIZER_MAX_TOKEN_LEN,
                         &t->tok_text, &t->tok_off, &t->tok_len);
        if (r < 0)
                return r;

        t->scores = new (float, v->n_tokens);
        t->types = new (uint8_t, v->n_tokens);
        t->eog = new0(bool, v->n_tokens);
        if (!t->scores || !t->types || !t->eog)
                return -ENOMEM;
        for (size_t i = 0; i < v->n_tokens; i++) {
                float s = v->scores ? v->scores[i] : 0.0f;
                int32_t ty = v->types ? v->types[i] : TOKENIZER_TYPE_NORMAL;
                if (isnan(s))
                        return -EBADMSG;
                t->scores[i] = s;
                t->types[i] = ty >= 0 && ty <= TOKENIZER_TYPE_BYTE ? (uint8_t)ty
                                                                   : TOKENIZER_TYPE_UNDEFINED;
        }

        /* Text -> id; on duplicate texts the last id wins, as in llama.cpp's map. Empty
         * texts never match anything. */
        r = strtable_init(&t->tok_table, v->n_tokens);
        if (r < 0)
                return r;
        for (size_t i = 0; i < v->n_tokens; i++) {
                size_t slot;
                if (t->tok_len[i] == 0)
                        continue;
                slot = strtable_slot(&t->tok_table, t->tok_text, t->tok_off, t->tok_len,
                                     t->tok_text + t->tok_off[i], t->tok_len[i]);
                t->tok_table.slots[slot] = (int32_t)i;
        }

        /* Merges "left right": split at the first space after the first byte; on
         * duplicates the first (lowest) rank wins. */
        if (v->n_merges > 0) {
                r = copy_strings(v->n_merges, v->merges, v->merge_lens,
                                 2 * TOKENIZER_MAX_TOKEN_LEN + 1, &t->merge_text, &t->merge_off,
                                 &t->merge_len);
                if (r < 0)
                        return r;
                t->n_merges = v->n_merges;
                t->merge_split = new (uint32_t, v->n_merges);
                if (!t->merge_split)
                        return -ENOMEM;
                r = strtable_init(&t->merge_table, v->n_merges);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < v->n_merges; i++) {
                        const char *m = t->merge_text + t->merge_off[i];
                        size_t n = t->merge_len[i], slot;
                        const char *sp = n > 1 ? memchr(m + 1, ' ', n - 1) : NULL;
                        if (!sp || (size_t)(sp - m) + 1 >= n)
                                return -EBADMSG;
                        t->merge_split[i] = (uint32_t)(sp - m);
                        slot = strtable_slot(&t->merge_table, t->merge_text, t->merge_off,
                                             t->merge_len, m, n);
                        if (t->merge_table.slots[slot] < 0)
                                t->merge_table.slots[slot] = (int32_t)i;
                }
        }

        t->bos = checked_id(v->bos_id, v->n_tokens);
        t->eos = checked_id(v->eos_id, v->n_tokens);
        t->unk = checked_id(v->unk_id, v->n_tokens);
        t->pad = checked_id(v->pad_id, v->n_tokens);
        t->eot = checked_id(v->eot_id, v->n_tokens);
        t->add_bos = v->add_bos;
        t->add_eos = v->add_eos;
        t->add_space_prefix = v->kind == TOKENIZER_SPM && v->add_space_prefix;

        for (size_t i = 0; i < v->n_tokens; i++) {
                const char *s = t->tok_text + t->tok_off[i];
                size_t n = t->tok_len[i];
                if (in_list(promoted_control, ELEMENTSOF(promoted_control), s, n))
                        t->types[i] = TOKENIZER_TYPE_CONTROL;
                if (in_list(eog_texts, ELEMENTSOF(eog_texts), s, n))
                        t->eog[i] = true;
        }
        if (t->eot < 0)
                for (size_t i = 0; i < v->n_tokens && t->eot < 0; i++) {
                        static const char *const eot_texts[] = {"<|eot_id|>", "<|im_end|>",
                                                                "<|end|>", "<end_of_turn>",
                                                                "<|endoftext|>"};
                        if (in_list(eot_texts, ELEMENTSOF(eot_texts), t->tok_text + t->tok_off[i],
                                    t->tok_len[i]))
                                t->eot = (int32_t)i;
                }
        if (t->eos >= 0)
                t->eog[t->eos] = true;
        if (t->eot >= 0)
                t->eog[t->eot] = true;

        for (size_t i = 0; i < v->n_tokens; i++)
                if (type_is_special(t->types[i]) && t->tok_len[i] > 0)
                        t->n_special++;
        t->special = new (int32_t, t->n_special);
        if (!t->special)
                return -ENOMEM;
        for (size_t i = 0, k = 0; i < v->n_tokens; i++)
                if (type_is_special(t->types[i]) && t->tok_len[i] > 0)
                        t->special[k++] = (int32_t)i;
        qsort_r(t->special, t->n_special, sizeof(int32_t), cmp_special, t);

        for (unsigned b = 0; b < 256; b++) {
                char hex[7];
                char raw = (char)b;
                int32_t id;
                snprintf(hex, sizeof(hex), "<0x%02X>", b);
                id = tokenizer_find(t, hex, 6);
                if (id < 0)
                        id = tokenizer_find(t, &raw, 1);
                t->byte_token[b] = id;
        }

        *ret = TAKE_PTR(t);
        return 0;
}

/* Output vector of ids. */
typedef struct Ids {
        int32_t *v;
        size_t n, allocated;
} Ids;

static int ids_push(Ids *ids, int32_t id)
{
        if (!GREEDY_REALLOC(ids->v, ids->allocated, ids->n + 1))
                return -ENOMEM;
        ids->v[ids->n++] = id;
        return 0;
}

/* Symbols being merged: a doubly linked list over a contiguous text. */
typedef struct Symbol {
        int32_t prev, next;
        size_t off, n;
} Symbol;

/* Candidate merge of symbols left and left's successor; valid while both still span
 * exactly size bytes together. Ordered by key (SPM: -score, BPE: rank), then by left. */
typedef struct Bigram {
        double key;
        int32_t left, right;
        size_t size;
} Bigram;

typedef struct Heap {
        Bigram *v;
        size_t n, allocated;
} Heap;

static bool bigram_before(const Bigram *a, const Bigram *b)
{
        return a->key < b->key || (a->key == b->key && a->left < b->left);
}

static int heap_push(Heap *h, Bigram b)
{
        size_t i;

        if (!GREEDY_REALLOC(h->v, h->allocated, h->n + 1))
                return -ENOMEM;
        i = h->n++;
        while (i > 0) {
                size_t p = (i - 1) / 2;
                if (!bigram_before(&b, &h->v[p]))
                        break;
                h->v[i] = h->v[p];
                i = p;
        }
        h->v[i] = b;
        return 0;
}

static Bigram heap_pop(Heap *h)
{
        Bigram top = h->v[0], last = h->v[--h->n];
        size_t i = 0;

        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= h->n)
                        break;
                if (c + 1 < h->n && bigram_before(&h->v[c + 1], &h->v[c]))
                        c++;
                if (!bigram_before(&h->v[c], &last))
                        break;
                h->v[i] = h->v[c];
                i = c;
        }
        if (h->n > 0)
                h->v[i] = last;
        return top;
}

typedef struct Session {
        const Tokenizer *t;
        Ids *out;
        Symbol *sym;
        size_t n_sym, sym_allocated;
        Heap heap;
        char *buf; /* the text being merged */
        size_t buf_n, buf_allocated;
        char *scratch; /* merge lookup key */
        size_t scratch_allocated;
} Session;

static void session_done(Session *s)
{
        free(s->sym);
        free(s->heap.v);
        free(s->buf);
        free(s->scratch);
}

static int buf_put(Session *s, const char *p, size_t n)
{
        if (!GREEDY_REALLOC(s->buf, s->buf_allocated, s->buf_n + n))
                return -ENOMEM;
        memcpy(s->buf + s->buf_n, p, n);
        s->buf_n += n;
        return 0;
}

/* Splits s->buf into UTF-8 characters (by lead byte only, as llama.cpp does). */
static int symbols_from_buf(Session *s, size_t start)
{
        size_t need = s->buf_n - start;
        size_t idx = 0;

        if (!GREEDY_REALLOC(s->sym, s->sym_allocated, need))
                return -ENOMEM;
        for (size_t off = start; off < s->buf_n; idx++) {
                size_t n = MIN(unicode_utf8_len((uint8_t)s->buf[off]), s->buf_n - off);
                s->sym[idx] = (Symbol){
                        .prev = (int32_t)idx - 1,
                        .off = off,
                        .n = n,
                };
                off += n;
                s->sym[idx].next = off == s->buf_n ? -1 : (int32_t)idx + 1;
        }
        s->n_sym = idx;
        return 0;
}

/* Merges the session's symbols pair by pair, best first: try_bigram offers the pair
 * (left, right) to the heap when the vocabulary can merge it (SentencePiece by score,
 * BPE by merge rank), and each merge offers the new symbol with its neighbours. */
static int merge_symbols(Session *s, int (*try_bigram)(Session *s, int32_t left, int32_t right))
{
        int r;

        s->heap.n = 0;
        for (size_t i = 1; i < s->n_sym; i++) {
                r = try_bigram(s, (int32_t)i - 1, (int32_t)i);
                if (r < 0)
                        return r;
        }
        while (s->heap.n > 0) {
                Bigram b = heap_pop(&s->heap);
                Symbol *l = &s->sym[b.left], *rt = &s->sym[b.right];
                if (l->n == 0 || rt->n == 0 || l->n + rt->n != b.size)
                        continue;
                l->n += rt->n;
                rt->n = 0;
                l->next = rt->next;
                if (rt->next >= 0)
                        s->sym[rt->next].prev = b.left;
                r = try_bigram(s, l->prev, b.left);
                if (r < 0)
                        return r;
                r = try_bigram(s, b.left, s->sym[b.left].next);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int spm_try_bigram(Session *s, int32_t left, int32_t right)
{
        const Tokenizer *t = s->t;
        int32_t id;
        size_t n;

        if (left < 0 || right < 0)
                return 0;
        n = s->sym[left].n + s->sym[right].n;
        id = tokenizer_find(t, s->buf + s->sym[left].off, n);
        if (id < 0)
                return 0;
        return heap_push(
                &s->heap,
                (Bigram){.key = -(double)t->scores[id], .left = left, .right = right, .size = n});
}

static int spm_tokenize(Session *s)
{
        const Tokenizer *t = s->t;
        int r;

        r = symbols_from_buf(s, 0);
        if (r < 0)
                return r;
        r = merge_symbols(s, spm_try_bigram);
        if (r < 0)
                return r;
        /* Every merged symbol is a token; single characters that are not fall back to
         * byte tokens (or <unk> when the vocabulary has no such byte). */
        for (int32_t i = s->n_sym > 0 ? 0 : -1; i >= 0; i = s->sym[i].next) {
                const Symbol *sy = &s->sym[i];
                int32_t id = tokenizer_find(t, s->buf + sy->off, sy->n);
                if (id >= 0) {
                        r = ids_push(s->out, id);
                        if (r < 0)
                                return r;
                        continue;
                }
                for (size_t j = 0; j < sy->n; j++) {
                        id = t->byte_token[(uint8_t)s->buf[sy->off + j]];
                        if (id < 0)
                                id = t->unk;
                        if (id < 0)
                                continue;
                        r = ids_push(s->out, id);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int spm_fragment(Session *s, const char *text, size_t len, bool prefix_space)
{
        s->buf_n = 0;
        if (prefix_space && buf_put(s, SPM_SPACE, SPM_SPACE_LEN) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                int r = text[i] == ' ' ? buf_put(s, SPM_SPACE, SPM_SPACE_LEN)
                                       : buf_put(s, text + i, 1);
                if (r < 0)
                        return r;
        }
        return spm_tokenize(s);
}

static int bpe_try_bigram(Session *s, int32_t left, int32_t right)
{
        const Symbol *l, *rt;
        int32_t rank;

        if (left < 0 || right < 0)
                return 0;
        l = &s->sym[left];
        rt = &s->sym[right];
        rank = merge_rank(s->t, s->buf + l->off, l->n, s->buf + rt->off, rt->n, s->scratch);
        if (rank < 0)
                return 0;
        return heap_push(&s->heap,
                         (Bigram){.key = rank, .left = left, .right = right, .size = l->n + rt->n});
}

/* Merges one byte-encoded word, s->buf[0..buf_n). */
static int bpe_word(Session *s)
{
        const Tokenizer *t = s->t;
        int32_t id;
        int r;

        if (t->ignore_merges) {
                id = tokenizer_find(t, s->buf, s->buf_n);
                if (id >= 0)
                        return ids_push(s->out, id);
        }
        /* A merge key is at most two adjacent symbols plus a space. */
        if (!GREEDY_REALLOC(s->scratch, s->scratch_allocated, s->buf_n + 1))
                return -ENOMEM;
        r = symbols_from_buf(s, 0);
        if (r < 0)
                return r;
        r = merge_symbols(s, bpe_try_bigram);
        if (r < 0)
                return r;
        for (size_t i = 0; i < s->n_sym; i++) {
                const Symbol *sy = &s->sym[i];
                if (sy->n == 0)
                        continue;
                id = tokenizer_find(t, s->buf + sy->off, sy->n);
                if (id >= 0) {
                        r = ids_push(s->out, id);
                        if (r < 0)
                                return r;
                        continue;
                }
                /* llama.cpp's fallback: single bytes of the encoded symbol, when they
                 * happen to be tokens; others are dropped. */
                for (size_t j = 0; j < sy->n; j++) {
                        id = tokenizer_find(t, s->buf + sy->off + j, 1);
                        if (id >= 0) {
                                r = ids_push(s->out, id);
                                if (r < 0)
                                        return r;
                        }
                }
        }
        return 0;
}

static int bpe_fragment(Session *s, const char *text, size_t len)
{
        _cleanup_free_ uint32_t *cpts = NULL;
        _cleanup_free_ size_t *lens = NULL;
        size_t n = 0, n_words, pos = 0;
        int r;

        cpts = new (uint32_t, len);
        lens = new (size_t, len);
        if (!cpts || !lens)
                return -ENOMEM;
        for (size_t off = 0; off < len;)
                cpts[n++] = unicode_cpt_from_utf8(text, len, &off);

        n_words = unicode_pretokenize(s->t->pre, cpts, n, lens);
        for (size_t w = 0; w < n_words; w++) {
                s->buf_n = 0;
                for (size_t i = pos; i < pos + lens[w]; i++) {
                        char u[4];
                        size_t k = unicode_cpt_to_utf8(cpts[i], u);
                        for (size_t j = 0; j < k; j++) {
                                char e[4];
                                size_t m =
                                        unicode_cpt_to_utf8(unicode_byte_to_gpt2((uint8_t)u[j]), e);
                                r = buf_put(s, e, m);
                                if (r < 0)
                                        return r;
                        }
                }
                pos += lens[w];
                r = bpe_word(s);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A piece of the input: raw text, or a special token cut out of it. */
typedef struct Fragment {
        size_t off, len;
        int32_t token; /* -1 for text */
} Fragment;

static int partition(const Tokenizer *t, const char *text, size_t len, bool parse_special,
                     Fragment **ret, size_t *ret_n)
{
        _cleanup_free_ Fragment *frags = NULL, *next = NULL;
        size_t n = 0, allocated = 0, next_allocated = 0;

        if (len > 0) {
                if (!GREEDY_REALLOC(frags, allocated, 1))
                        return -ENOMEM;
                frags[n++] = (Fragment){.off = 0, .len = len, .token = -1};
        }

        /* One pass per special token, longest first: each pass cuts every occurrence out
         * of the text fragments left by the previous passes, left to right. */
        for (size_t k = 0; k < t->n_special && n > 0; k++) {
                int32_t id = t->special[k];
                const char *stext = t->tok_text + t->tok_off[id];
                size_t slen = t->tok_len[id], m = 0;

                if (!parse_special && t->types[id] != TOKENIZER_TYPE_USER_DEFINED)
                        continue;
                for (size_t i = 0; i < n; i++) {
                        Fragment f = frags[i];
                        if (f.token >= 0 || f.len < slen) {
                                if (!GREEDY_REALLOC(next, next_allocated, m + 1))
                                        return -ENOMEM;
                                next[m++] = f;
                                continue;
                        }
                        for (;;) {
                                const char *hit = memmem(text + f.off, f.len, stext, slen);
                                size_t left;
                                if (!GREEDY_REALLOC(next, next_allocated, m + 3))
                                        return -ENOMEM;
                                if (!hit) {
                                        if (f.len > 0)
                                                next[m++] = f;
                                        break;
                                }
                                left = (size_t)(hit - (text + f.off));
                                if (left > 0)
                                        next[m++] =
                                                (Fragment){.off = f.off, .len = left, .token = -1};
                                next[m++] = (Fragment){.token = id};
                                f.off += left + slen;
                                f.len -= left + slen;
                        }
                }
                {
                        Fragment *tf = frags;
                        size_t ta = allocated;
                        frags = next;
                        allocated = next_allocated;
                        next = tf;
                        next_allocated = ta;
                }
                n = m;
        }
        *ret = TAKE_PTR(frags);
        *ret_n = n;
        return 0;
}

int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, bool add_special,
                     bool parse_special, int32_t **ret_ids, size_t *ret_n)
{
        _cleanup_free_ Fragment *frags = NULL;
        Ids ids = {};
        Session s = {.t = t, .out = &ids};
        size_t n_frags = 0;
        bool prev_special = true;
        int r;

        if (!t || (!text && len > 0) || !ret_ids || !ret_n)
                return -EINVAL;

        r = partition(t, text, len, parse_special, &frags, &n_frags);
        if (r < 0)
                return r;

        if (add_special && t->add_bos && t->bos >= 0) {
                r = ids_push(&ids, t->bos);
                if (r < 0)
                        goto finish;
        }
        for (size_t i = 0; i < n_frags; i++) {
                const Fragment *f = &frags[i];
                if (f->token >= 0) {
                        r = ids_push(&ids, f->token);
                        prev_special = true;
                } else if (t->kind == TOKENIZER_SPM) {
                        /* A space goes before the first text and after each special token. */
                        r = spm_fragment(&s, text + f->off, f->len,
                                         t->add_space_prefix && prev_special);
                        prev_special = false;
                } else
                        r = bpe_fragment(&s, text + f->off, f->len);
                if (r < 0)
                        goto finish;
        }
        if (add_special && t->add_eos && t->eos >= 0) {
                r = ids_push(&ids, t->eos);
                if (r < 0)
                        goto finish;
        }
        if (!ids.v) {
                ids.v = new (int32_t, 1);
                if (!ids.v) {
                        r = -ENOMEM;
                        goto finish;
                }
        }
        *ret_ids = TAKE_PTR(ids.v);
        *ret_n = ids.n;
        r = 0;
finish:
        free(ids.v);
        session_done(&s);
        return r;
}

static int hex_digit(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

ssize_t tokenizer_token_to_piece(const Tokenizer *t, int32_t id, char *buf, size_t size)
{
        const char *s;
        size_t n, out = 0;

        if (!t || id < 0 || (size_t)id >= t->n_tokens || (!buf && size > 0))
                return -EINVAL;
        s = t->tok_text + t->tok_off[id];
        n = t->tok_len[id];

#define EMIT(p, k)                                                                                 \
        do {                                                                                       \
                size_t _k = (k);                                                                   \
                if (out < size)                                                                    \
                        memcpy(buf + out, (p), MIN(_k, size - out));                               \
                out += _k;                                                                         \
        } while (0)

        switch (t->types[id]) {
        case TOKENIZER_TYPE_CONTROL:
        case TOKENIZER_TYPE_UNKNOWN:
        case TOKENIZER_TYPE_USER_DEFINED:
                EMIT(s, n);
                break;
        case TOKENIZER_TYPE_NORMAL:
                if (t->kind == TOKENIZER_SPM) {
                        for (size_t i = 0; i < n;) {
                                if (n - i >= SPM_SPACE_LEN &&
                                    memcmp(s + i, SPM_SPACE, SPM_SPACE_LEN) == 0) {
                                        EMIT(" ", 1);
                                        i += SPM_SPACE_LEN;
                                } else {
                                        EMIT(s + i, 1);
                                        i++;
                                }
                        }
                } else {
                        for (size_t i = 0; i < n;) {
                                size_t start = i;
                                uint32_t c = unicode_cpt_from_utf8(s, n, &i);
                                int b = unicode_gpt2_to_byte(c);
                                if (b >= 0) {
                                        char ch = (char)b;
                                        EMIT(&ch, 1);
                                } else
                                        EMIT(s + start, i - start);
                        }
                }
                break;
        case TOKENIZER_TYPE_BYTE:
                if (t->kind == TOKENIZER_SPM) {
                        int hi, lo;
                        char ch;
                        if (n == 6 && memcmp(s, "<0x", 3) == 0 && s[5] == '>' &&
                            (hi = hex_digit(s[3])) >= 0 && (lo = hex_digit(s[4])) >= 0) {
                                ch = (char)(hi << 4 | lo);
                                EMIT(&ch, 1);
                        } else if (n == 1)
                                EMIT(s, 1);
                }
                break;
        default:
                break;
        }
#undef EMIT
        return (ssize_t)out;
}

bool tokenizer_is_eog(const Tokenizer *t, int32_t id)
{
        return t && id >= 0 && (size_t)id < t->n_tokens && t->eog[id];
}

size_t tokenizer_n_tokens(const Tokenizer *t)
{
        return t ? t->n_tokens : 0;
}

int32_t tokenizer_bos(const Tokenizer *t)
{
        return t ? t->bos : -1;
}

int32_t tokenizer_eos(const Tokenizer *t)
{
        return t ? t->eos : -1;
}

int32_t tokenizer_eot(const Tokenizer *t)
{
        return t ? t->eot : -1;
}

const char *tokenizer_token_text(const Tokenizer *t, int32_t id, size_t *ret_len)
{
        if (!t || id < 0 || (size_t)id >= t->n_tokens)
                return NULL;
        if (ret_len)
                *ret_len = t->tok_len[id];
        return t->tok_text + t->tok_off[id];
}

int tokenizer_token_type(const Tokenizer *t, int32_t id)
{
        if (!t || id < 0 || (size_t)id >= t->n_tokens)
                return -EINVAL;
        return t->types[id];
}
