/* sw_sampler — the next token from one row of logits, with vLLM's SamplingParams semantics
 * (struct sw_sampling_params, sw_engine.h), and the log-probabilities the API reports.
 *
 * Order of the processors (vLLM's; greedy equals transformers' greedy search with its
 * repetition penalty, which is the only processor both share before the argmax):
 *   1. min_tokens: EOS and stop ids get −inf while fewer than min_tokens ids were generated;
 *   2. penalties: repetition (transformers' CTRL rule: a logit of an id seen in the prompt or the
 *      output is divided by the penalty when > 0, multiplied when ≤ 0), frequency and presence
 *      (OpenAI's: logit −= frequency · count in the output + presence · [count > 0]);
 *   3. temperature 0 → argmax (first index on ties, as torch.argmax); else logits / temperature;
 *   4. min_p: drop ids whose probability is below min_p × the largest;
 *   5. top_k: keep the k largest logits (ties with the k-th kept);
 *   6. top_p: transformers' rule on what is left — sort ascending, drop the ids whose cumulative
 *      probability is ≤ 1 − top_p, always keep the most likely;
 *   7. one draw: u = uniform [0, 1) from Philox block `step` of stream `stream` of `seed`, then
 *      the first id (in id order) whose cumulative probability exceeds u. The draw of a step is a
 *      pure function of (seed, stream, step), so a request's samples do not depend on what else
 *      is in the batch, on preemption, or on the thread that runs it.
 * Ids below exp(−30) of the top probability are treated as 0 (they are never kept by top_p < 1
 * and cannot be drawn in practice); this keeps top_p's sort to the plausible ids. */
#ifndef SW_SAMPLER_H
#define SW_SAMPLER_H

#include "sw_engine.h"

#include <stdint.h>

/* Reusable workspace for vocabularies up to V (one per thread). */
struct sw_sampler {
    int64_t V;
    int32_t *idx;        /* [V] */
    int32_t *counts;     /* [V] output counts (penalties) */
    unsigned char *seen; /* [V] */
};
int sw_sampler_init(struct sw_sampler *s, int64_t V);
void sw_sampler_release(struct sw_sampler *s);

/* What the processors look at for one sequence. */
struct sw_sample_ctx {
    const int32_t *prompt;
    int64_t n_prompt;
    const int32_t *output;
    int64_t n_output;
    const int32_t *banned; /* ids masked by min_tokens (EOS + stop ids) */
    int n_banned;
    uint64_t seed, stream; /* the request's seed and the sequence's index */
};

/* The next id for logits[V] (modified in place: penalties etc.). Returns the id (≥ 0) or a
 * negative error (SW_EINVAL for parameters out of range). */
int32_t sw_sample(struct sw_sampler *s, float *logits, const struct sw_sampling_params *p,
                  const struct sw_sample_ctx *c);

/* Raw log-probabilities of one row: out->id = id, its logprob and rank, and the k most likely
 * (k ≤ cap of top[]) into top (most likely first, lower id first on ties). Also *argmax (may be
 * NULL): the first index of the largest logit. */
void sw_logprobs(const float *logits, int64_t V, int32_t id, int k, struct sw_logprob_entry *top,
                 struct sw_token_logprobs *out, int32_t *argmax);

/* Check p (ranges: temperature ≥ 0, 0 < top_p ≤ 1, top_k ≥ −1, 0 ≤ min_p ≤ 1, repetition > 0,
 * |presence|, |frequency| ≤ 2 as OpenAI, n ≥ 1, logprobs ≤ 20...). SW_EINVAL naming the field. */
int sw_sampling_params_check(const struct sw_sampling_params *p);

#endif
