/* test_sampler — the engine's sampler (lib/infer/sw_sampler.c): each processor on hand-made
 * logits with known answers (greedy ties, repetition / frequency / presence penalties, min_tokens,
 * top-k with ties, top-p by transformers' rule, min-p), the draw's distribution and its
 * determinism in (seed, stream, step), raw log-probabilities and their top-k, parameter checks. */
#include "sw_sampler.h"

#include "sw_err.h"
#include "tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { V = 8 };

static struct sw_sampling_params greedy_params(void) {
    struct sw_sampling_params p;
    sw_sampling_params_init(&p);
    p.temperature = 0;
    return p;
}

static int32_t pick(struct sw_sampler *s, const float *x0, const struct sw_sampling_params *p,
                    const struct sw_sample_ctx *c) {
    float x[V];
    memcpy(x, x0, sizeof x);
    return sw_sample(s, x, p, c);
}

static void test_greedy_and_penalties(struct sw_sampler *s) {
    struct sw_sampling_params p = greedy_params();
    struct sw_sample_ctx c = {0};
    float x[V] = {1, 3, 3, -2, 0.5f, 2.9f, -1, 0};
    IS_INT(pick(s, x, &p, &c), 1, "argmax takes the first of tied maxima");
    /* repetition penalty 2 on id 1 (prompt) and 2 (output): 3/2 = 1.5 each, so 5 (2.9) wins */
    int32_t prompt[] = {1, 1}, out[] = {2};
    c.prompt = prompt, c.n_prompt = 2, c.output = out, c.n_output = 1;
    p.repetition_penalty = 2;
    float y[V];
    memcpy(y, x, sizeof y);
    IS_INT(sw_sample(s, y, &p, &c), 5, "repetition penalty on prompt and output ids");
    OK(y[1] == 1.5f && y[2] == 1.5f && y[5] == 2.9f, "penalised once each (%g %g)", y[1], y[2]);
    /* a negative logit is multiplied */
    int32_t neg[] = {3};
    c.prompt = neg, c.n_prompt = 1, c.n_output = 0;
    memcpy(y, x, sizeof y);
    sw_sample(s, y, &p, &c);
    OK(y[3] == -4.0f, "negative logit × penalty (%g)", y[3]);
    /* frequency and presence: id 1 twice, id 2 once in the output */
    p.repetition_penalty = 1;
    p.frequency_penalty = 0.5;
    p.presence_penalty = 0.25;
    int32_t outs[] = {1, 2, 1};
    c.prompt = NULL, c.n_prompt = 0, c.output = outs, c.n_output = 3;
    memcpy(y, x, sizeof y);
    sw_sample(s, y, &p, &c);
    OK(fabsf(y[1] - (3 - 1.0f - 0.25f)) < 1e-6 && fabsf(y[2] - (3 - 0.5f - 0.25f)) < 1e-6 &&
           y[5] == 2.9f,
       "frequency · count + presence (%g, %g)", y[1], y[2]);
    IS_INT(sw_sample(s, y, &p, &c), 5, "penalties change the argmax");
    /* min_tokens: banned ids (EOS) masked until enough output */
    p = greedy_params();
    p.min_tokens = 2;
    int32_t eos[] = {1, 2};
    c = (struct sw_sample_ctx){.banned = eos, .n_banned = 2, .output = outs, .n_output = 1};
    IS_INT(pick(s, x, &p, &c), 5, "EOS ids banned below min_tokens");
    c.n_output = 2;
    IS_INT(pick(s, x, &p, &c), 1, "allowed at min_tokens");
}

/* Draw `n` times (steps 0..n-1) and count. */
static void histogram(struct sw_sampler *s, const float *x, const struct sw_sampling_params *p,
                      int n, int counts[V]) {
    memset(counts, 0, V * sizeof(int));
    int32_t *out = calloc((size_t)n, sizeof(int32_t));
    for (int i = 0; i < n; i++) {
        struct sw_sample_ctx c = {.seed = 1234, .stream = 0, .output = out, .n_output = i};
        int32_t id = pick(s, x, p, &c);
        if (id >= 0 && id < V) counts[id]++;
    }
    free(out);
}

static void test_filters(struct sw_sampler *s) {
    /* probabilities 0.5, 0.3, 0.15, 0.05 on ids 4, 1, 6, 2; the rest -inf */
    float x[V];
    for (int i = 0; i < V; i++)
        x[i] = -INFINITY;
    x[4] = logf(0.5f), x[1] = logf(0.3f), x[6] = logf(0.15f), x[2] = logf(0.05f);
    struct sw_sampling_params p;
    sw_sampling_params_init(&p);
    int n = 20000, cnt[V];
    histogram(s, x, &p, n, cnt);
    OK(fabs(cnt[4] / (double)n - 0.5) < 0.02 && fabs(cnt[1] / (double)n - 0.3) < 0.02 &&
           fabs(cnt[6] / (double)n - 0.15) < 0.015 && fabs(cnt[2] / (double)n - 0.05) < 0.01,
       "temperature 1 draws follow the softmax (%d %d %d %d of %d)", cnt[4], cnt[1], cnt[6], cnt[2],
       n);
    p.top_p = 0.8; /* ascending cum: 0.05, 0.2 ≤ 0.2 dropped; 0.5 kept: {4, 1} */
    histogram(s, x, &p, n, cnt);
    OK(cnt[6] == 0 && cnt[2] == 0 && fabs(cnt[4] / (double)n - 0.625) < 0.02,
       "top_p 0.8 keeps the two ids transformers keeps, renormalised (%d %d %d %d)", cnt[4], cnt[1],
       cnt[6], cnt[2]);
    p.top_p = 1;
    p.top_k = 3;
    histogram(s, x, &p, n, cnt);
    OK(cnt[2] == 0 && cnt[6] > 0, "top_k 3 drops the fourth (%d %d)", cnt[6], cnt[2]);
    p.top_k = 0;
    p.min_p = 0.2; /* threshold 0.1: keeps 0.5, 0.3, 0.15 */
    histogram(s, x, &p, n, cnt);
    OK(cnt[2] == 0 && cnt[6] > 0, "min_p 0.2 drops ids below 0.1 (%d %d)", cnt[6], cnt[2]);
    p.min_p = 0;
    p.temperature = 0.25; /* sharpens: 0.5^4 : 0.3^4 ... → id 4 ≈ 0.87 */
    histogram(s, x, &p, n, cnt);
    double z = pow(0.5, 4) + pow(0.3, 4) + pow(0.15, 4) + pow(0.05, 4);
    OK(fabs(cnt[4] / (double)n - pow(0.5, 4) / z) < 0.02, "temperature 0.25 (%d, want %.3f)",
       cnt[4], pow(0.5, 4) / z);
    /* top_k keeps ties with the k-th value */
    float t[V] = {1, 2, 2, 2, 0, 0, 0, 0};
    p.temperature = 1;
    p.top_k = 2;
    histogram(s, t, &p, 3000, cnt);
    OK(cnt[1] > 0 && cnt[2] > 0 && cnt[3] > 0 && cnt[0] == 0, "top_k keeps ties with the k-th");
}

static void test_determinism(struct sw_sampler *s) {
    float x[V] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f};
    struct sw_sampling_params p;
    sw_sampling_params_init(&p);
    int32_t out[64] = {0};
    int same = 1, diff_stream = 0, diff_seed = 0;
    for (int step = 0; step < 64; step++) {
        struct sw_sample_ctx a = {.seed = 7, .stream = 0, .output = out, .n_output = step};
        struct sw_sample_ctx b = a, c2 = a, d = a;
        c2.stream = 1;
        d.seed = 8;
        int32_t ia = pick(s, x, &p, &a), ib = pick(s, x, &p, &b);
        same &= ia == ib;
        diff_stream += ia != pick(s, x, &p, &c2);
        diff_seed += ia != pick(s, x, &p, &d);
    }
    OK(same, "the draw of a step is a function of (seed, stream, step)");
    OK(diff_stream > 20 && diff_seed > 20, "other streams / seeds draw differently (%d, %d of 64)",
       diff_stream, diff_seed);
}

static void test_logprobs(void) {
    float x[V] = {1, 3, 3, -2, 0.5f, 2.9f, -1, 0};
    double z = 0;
    for (int i = 0; i < V; i++)
        z += exp(x[i]);
    struct sw_logprob_entry top[4];
    struct sw_token_logprobs lp;
    int32_t am;
    sw_logprobs(x, V, 5, 4, top, &lp, &am);
    OK(fabs(lp.logprob - (2.9 - log(z))) < 1e-5, "logprob of the chosen id = log softmax");
    IS_INT(lp.rank, 3, "rank: two ids above it");
    IS_INT(am, 1, "argmax");
    OK(lp.n_top == 4 && top[0].id == 1 && top[1].id == 2 && top[2].id == 5 && top[3].id == 0,
       "top 4 most likely first, lower id first on ties");
    OK(fabs(top[0].logprob - (3 - log(z))) < 1e-5, "top logprob value");
    sw_logprobs(x, V, 1, 0, top, &lp, NULL);
    OK(lp.n_top == 0 && lp.rank == 1, "k = 0: no alternatives; tied best has rank 1");
}

static void test_params_check(void) {
    struct sw_sampling_params p;
    sw_sampling_params_init(&p);
    IS_INT(sw_sampling_params_check(&p), 0, "defaults are valid");
    p.n = 0;
    OK(sw_sampling_params_check(&p) == SW_EINVAL && strstr(sw_err_msg(), "n must"), "n = 0");
    sw_sampling_params_init(&p);
    p.top_p = 0;
    OK(sw_sampling_params_check(&p) == SW_EINVAL && strstr(sw_err_msg(), "top_p"), "top_p 0");
    sw_sampling_params_init(&p);
    p.temperature = -1;
    OK(sw_sampling_params_check(&p) == SW_EINVAL, "negative temperature");
    sw_sampling_params_init(&p);
    p.presence_penalty = 3;
    OK(sw_sampling_params_check(&p) == SW_EINVAL, "presence_penalty 3");
    sw_sampling_params_init(&p);
    p.logprobs = 21;
    OK(sw_sampling_params_check(&p) == SW_EINVAL, "logprobs 21");
    sw_sampling_params_init(&p);
    const char *stops[] = {""};
    p.stop = stops, p.n_stop = 1;
    OK(sw_sampling_params_check(&p) == SW_EINVAL, "empty stop string");
    sw_sampling_params_init(&p);
    p.max_tokens = 2, p.min_tokens = 3;
    OK(sw_sampling_params_check(&p) == SW_EINVAL, "min_tokens > max_tokens");
}

int main(void) {
    struct sw_sampler s;
    if (!OK(sw_sampler_init(&s, V) == 0, "sampler")) return tap_done();
    test_greedy_and_penalties(&s);
    test_filters(&s);
    test_determinism(&s);
    test_logprobs();
    test_params_check();
    sw_sampler_release(&s);
    return tap_done();
}
