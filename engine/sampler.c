/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "basic/alloc-util.h"
#include "engine/sampler.h"

typedef struct Candidate {
        float logit;
        int32_t id;
} Candidate;

struct Sampler {
        SamplerParams p;
        size_t n_vocab;
        uint64_t seed; /* the resolved seed */
        uint64_t rng[4];
        int32_t *last; /* ring of accepted tokens */
        size_t last_cap, last_n, last_pos;
        Candidate *cand;
};

void sampler_params_default(SamplerParams *p)
{
        *p = (SamplerParams){
                .temperature = 0.8f,
                .top_k = 40,
                .top_p = 0.9f,
                .min_p = 0.0f,
                .repeat_penalty = 1.1f,
                .repeat_last_n = 64,
                .presence_penalty = 0.0f,
                .frequency_penalty = 0.0f,
                .seed = SAMPLER_SEED_RANDOM,
        };
}

static uint64_t splitmix64(uint64_t *x)
{
        uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
        return (x << k) | (x >> (64 - k));
}

static uint64_t xoshiro_next(uint64_t s[4])
{
        uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = rotl(s[3], 45);
        return result;
}

static void rng_seed(Sampler *s)
{
        uint64_t x = s->seed;

        for (int i = 0; i < 4; i++)
                s->rng[i] = splitmix64(&x);
}

Sampler *sampler_free(Sampler *s)
{
        if (!s)
                return NULL;
        free(s->last);
        free(s->cand);
        return mfree(s);
}

int sampler_new(const SamplerParams *p, size_t n_vocab, Sampler **ret)
{
        Sampler *s;

        if (!p || !ret || n_vocab == 0 || n_vocab > INT32_MAX)
                return -EINVAL;
        if (isnan(p->temperature) || isnan(p->top_p) || isnan(p->min_p) ||
            isnan(p->repeat_penalty) || isnan(p->presence_penalty) || isnan(p->frequency_penalty))
                return -EINVAL;

        s = new0(Sampler, 1);
        if (!s)
                return -ENOMEM;
        s->p = *p;
        s->n_vocab = n_vocab;
        s->last_cap = p->repeat_last_n < 0 ? SAMPLER_MAX_LAST_N
                                           : (size_t)MIN(p->repeat_last_n, SAMPLER_MAX_LAST_N);
        s->last = new (int32_t, s->last_cap);
        s->cand = new (Candidate, n_vocab);
        if (!s->last || !s->cand) {
                sampler_free(s);
                return -ENOMEM;
        }
        s->seed = p->seed;
        if (s->seed == SAMPLER_SEED_RANDOM &&
            getrandom(&s->seed, sizeof(s->seed), GRND_NONBLOCK) != sizeof(s->seed))
                s->seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)s;
        rng_seed(s);
        *ret = s;
        return 0;
}

void sampler_accept(Sampler *s, int32_t token)
{
        if (!s || s->last_cap == 0 || token < 0 || (size_t)token >= s->n_vocab)
                return;
        s->last[s->last_pos] = token;
        s->last_pos = (s->last_pos + 1) % s->last_cap;
        if (s->last_n < s->last_cap)
                s->last_n++;
}

void sampler_reset(Sampler *s)
{
        if (!s)
                return;
        s->last_n = s->last_pos = 0;
        rng_seed(s);
}

static int32_t argmax(const float *logits, size_t n)
{
        size_t best = 0;
        float bv = -INFINITY;
        bool found = false;

        for (size_t i = 0; i < n; i++) {
                if (isnan(logits[i]))
                        continue;
                if (!found || logits[i] > bv) {
                        bv = logits[i];
                        best = i;
                        found = true;
                }
        }
        return (int32_t)best;
}

static void apply_penalties(Sampler *s)
{
        const SamplerParams *p = &s->p;

        if (s->last_n == 0 ||
            (p->repeat_penalty == 1.0f && p->presence_penalty == 0.0f &&
             p->frequency_penalty == 0.0f))
                return;
        /* The window is small (<= SAMPLER_MAX_LAST_N): count each distinct token once,
         * at its first position in the ring. */
        for (size_t i = 0; i < s->last_n; i++) {
                int32_t tok = s->last[i];
                size_t count = 0;
                bool first = true;
                Candidate *c = &s->cand[tok];

                for (size_t j = 0; j < s->last_n; j++)
                        if (s->last[j] == tok) {
                                if (j < i) {
                                        first = false;
                                        break;
                                }
                                count++;
                        }
                if (!first)
                        continue;
                if (p->repeat_penalty != 1.0f && p->repeat_penalty > 0.0f) {
                        if (c->logit <= 0)
                                c->logit *= p->repeat_penalty;
                        else
                                c->logit /= p->repeat_penalty;
                }
                c->logit -= (float)count * p->frequency_penalty + p->presence_penalty;
        }
}

static inline bool cand_before(const Candidate *a, const Candidate *b)
{
        return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static inline void cand_swap(Candidate *a, Candidate *b)
{
        Candidate t = *a;
        *a = *b;
        *b = t;
}

/* Rearranges c[0..n) so that c[0..k) are the k best (in no particular order). Expected
 * O(n): quickselect with a median-of-three pivot. */
static void select_top(Candidate *c, size_t n, size_t k)
{
        size_t lo = 0, hi = n;

        if (k == 0 || k >= n)
                return;
        while (hi - lo > 1) {
                size_t mid = lo + (hi - lo) / 2, store = lo;
                Candidate pivot;

                if (cand_before(&c[hi - 1], &c[lo]))
                        cand_swap(&c[hi - 1], &c[lo]);
                if (cand_before(&c[mid], &c[lo]))
                        cand_swap(&c[mid], &c[lo]);
                if (cand_before(&c[hi - 1], &c[mid]))
                        cand_swap(&c[hi - 1], &c[mid]);
                pivot = c[mid];
                cand_swap(&c[mid], &c[hi - 1]);
                for (size_t i = lo; i < hi - 1; i++)
                        if (cand_before(&c[i], &pivot))
                                cand_swap(&c[i], &c[store++]);
                cand_swap(&c[store], &c[hi - 1]);
                /* c[lo..store) before pivot, c[store] = pivot, rest after */
                if (store == k || store + 1 == k)
                        return;
                if (store > k)
                        hi = store;
                else
                        lo = store + 1;
        }
}

static int cmp_cand(const void *a, const void *b)
{
        return cand_before(a, b) ? -1 : cand_before(b, a) ? 1 : 0;
}

int32_t sampler_sample(Sampler *s, const float *logits)
{
        const SamplerParams *p = &s->p;
        Candidate *c = s->cand;
        size_t n = s->n_vocab, n_sorted = 0;
        double z, r, acc;

        if (!(p->temperature > 0.0f))
                return argmax(logits, n);

        for (size_t i = 0; i < n; i++)
                c[i] = (Candidate){.logit = isnan(logits[i]) ? -INFINITY : logits[i],
                                   .id = (int32_t)i};
        apply_penalties(s);

        if (p->top_k > 0 && (size_t)p->top_k < n) {
                select_top(c, n, (size_t)p->top_k);
                n = (size_t)p->top_k;
                qsort(c, n, sizeof(Candidate), cmp_cand);
                n_sorted = n;
        }

        if (p->top_p < 1.0f) {
                float max = -INFINITY;
                size_t m = 256, keep = 0;

                for (size_t i = 0; i < n; i++)
                        max = MAX(max, c[i].logit);
                z = 0;
                for (size_t i = 0; i < n; i++)
                        z += exp((double)c[i].logit - max);
                /* Sort a growing prefix until it holds top_p of the mass. */
                for (;;) {
                        if (m > n)
                                m = n;
                        if (n_sorted < m) {
                                select_top(c, n, m);
                                qsort(c, m, sizeof(Candidate), cmp_cand);
                                n_sorted = m;
                        }
                        acc = 0;
                        for (size_t i = 0; i < m; i++) {
                                acc += exp((double)c[i].logit - max) / z;
                                if (acc >= p->top_p) {
                                        keep = i + 1;
                                        break;
                                }
                        }
                        if (keep > 0 || m == n)
                                break;
                        m *= 4;
                }
                if (keep > 0)
                        n = keep;
        }

        if (p->min_p > 0.0f) {
                float max = -INFINITY, floor_;
                size_t k = 0;

                for (size_t i = 0; i < n; i++)
                        max = MAX(max, c[i].logit);
                floor_ = max + logf(p->min_p);
                for (size_t i = 0; i < n; i++)
                        if (c[i].logit >= floor_)
                                c[k++] = c[i];
                n = MAX(k, (size_t)1);
        }

        {
                float max = -INFINITY;
                for (size_t i = 0; i < n; i++)
                        max = MAX(max, c[i].logit);
                if (max == -INFINITY)
                        return c[0].id;
                z = 0;
                for (size_t i = 0; i < n; i++)
                        z += exp(((double)c[i].logit - max) / p->temperature);
                r = (double)(xoshiro_next(s->rng) >> 11) * 0x1.0p-53 * z;
                acc = 0;
                for (size_t i = 0; i < n; i++) {
                        acc += exp(((double)c[i].logit - max) / p->temperature);
                        if (r < acc)
                                return c[i].id;
                }
                /* rounding: the last candidate with any mass */
                for (size_t i = n; i > 0; i--)
                        if (c[i - 1].logit > -INFINITY)
                                return c[i - 1].id;
                return c[0].id;
        }
}
