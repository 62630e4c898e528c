/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Picks the next token from a row of logits.
 *
 * temperature <= 0: greedy, the index of the largest logit (lowest index on ties; no
 * penalties). Otherwise, on a copy of the logits, in this order:
 *   1. penalties over the last repeat_last_n accepted tokens (llama.cpp's formula: a
 *      positive logit is divided by repeat_penalty, a negative one multiplied; then
 *      count * frequency_penalty + (count > 0) * presence_penalty is subtracted);
 *   2. top_k (<= 0: off) by partial selection, never a full sort of the vocabulary;
 *   3. top_p (>= 1: off): the smallest prefix of the sorted candidates whose softmax
 *      mass reaches top_p;
 *   4. min_p (<= 0: off): drop candidates whose probability is below min_p times the
 *      largest one;
 *   5. division by temperature, softmax, and a draw from the seeded PRNG.
 *
 * The PRNG is xoshiro256** seeded through splitmix64 from the seed; the draw is the top 53
 * bits of one output as a double in [0, 1). Same seed, same logits and same accepted
 * tokens give the same tokens on every machine. SAMPLER_SEED_RANDOM takes a seed from
 * the kernel. */

#include <stddef.h>
#include <stdint.h>

#define SAMPLER_SEED_RANDOM UINT64_MAX
/* repeat_last_n < 0 means "the whole context", bounded by this window. */
#define SAMPLER_MAX_LAST_N 4096

typedef struct SamplerParams {
        float temperature;
        int32_t top_k;
        float top_p;
        float min_p;
        float repeat_penalty;
        int32_t repeat_last_n;
        float presence_penalty;
        float frequency_penalty;
        uint64_t seed;
} SamplerParams;

/* Ollama's defaults: temperature 0.8, top_k 40, top_p 0.9, min_p 0, repeat_penalty 1.1,
 * repeat_last_n 64, no presence/frequency penalty, random seed. */
void sampler_params_default(SamplerParams *p);

typedef struct Sampler Sampler;

/* -EINVAL for NULL, n_vocab 0 or above INT32_MAX, NaN parameters; -ENOMEM. */
int sampler_new(const SamplerParams *p, size_t n_vocab, Sampler **ret);
Sampler *sampler_free(Sampler *s);

/* logits has n_vocab entries (NaN counts as -inf). Returns a token id in [0, n_vocab). */
int32_t sampler_sample(Sampler *s, const float *logits);

/* Records a token that was emitted (or fed as prompt), for the penalties. */
void sampler_accept(Sampler *s, int32_t token);

/* Forgets the accepted tokens and restarts the PRNG from the seed. */
void sampler_reset(Sampler *s);
