/* sw_sampler — logits processors, the seeded draw and log-probabilities (see sw_sampler.h). */
#include "sw_sampler.h"

#include "sw_err.h"
#include "sw_rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SW_SAMPLE_CUT 30.0f /* logits more than this below the top are treated as probability 0 */

int sw_sampler_init(struct sw_sampler *s, int64_t V) {
    memset(s, 0, sizeof(*s));
    s->V = V;
    s->idx = malloc((size_t)V * sizeof(int32_t));
    s->counts = calloc((size_t)V, sizeof(int32_t));
    s->seen = calloc((size_t)V, 1);
    if (!s->idx || !s->counts || !s->seen) {
        sw_sampler_release(s);
        return sw_err_set(SW_ENOMEM, "sampler: out of memory for a vocabulary of %lld",
                          (long long)V);
    }
    return 0;
}

void sw_sampler_release(struct sw_sampler *s) {
    if (!s) return;
    free(s->idx), free(s->counts), free(s->seen);
    memset(s, 0, sizeof(*s));
}

int sw_sampling_params_check(const struct sw_sampling_params *p) {
#define BAD(...) return sw_err_set(SW_EINVAL, __VA_ARGS__)
    if (p->n < 1 || p->n > 256) BAD("n must be in [1, 256] (got %d)", p->n);
    if (!(p->temperature >= 0) || p->temperature > 1e6)
        BAD("temperature must be >= 0 (got %g)", p->temperature);
    if (!(p->top_p > 0 && p->top_p <= 1)) BAD("top_p must be in (0, 1] (got %g)", p->top_p);
    if (p->top_k < -1) BAD("top_k must be -1, 0 (off) or > 0 (got %d)", p->top_k);
    if (!(p->min_p >= 0 && p->min_p <= 1)) BAD("min_p must be in [0, 1] (got %g)", p->min_p);
    if (!(p->repetition_penalty > 0) || p->repetition_penalty > 1e6)
        BAD("repetition_penalty must be > 0 (got %g)", p->repetition_penalty);
    if (!(p->presence_penalty >= -2 && p->presence_penalty <= 2))
        BAD("presence_penalty must be in [-2, 2] (got %g)", p->presence_penalty);
    if (!(p->frequency_penalty >= -2 && p->frequency_penalty <= 2))
        BAD("frequency_penalty must be in [-2, 2] (got %g)", p->frequency_penalty);
    if (p->max_tokens < -1) BAD("max_tokens must be >= 0 (got %lld)", (long long)p->max_tokens);
    if (p->min_tokens < 0 || (p->max_tokens >= 0 && p->min_tokens > p->max_tokens))
        BAD("min_tokens must be in [0, max_tokens] (got %lld)", (long long)p->min_tokens);
    if (p->logprobs < -1 || p->logprobs > 20)
        BAD("logprobs must be in [0, 20] (got %d)", p->logprobs);
    if (p->prompt_logprobs < -1 || p->prompt_logprobs > 20)
        BAD("prompt_logprobs must be in [0, 20] (got %d)", p->prompt_logprobs);
    if (p->n_stop < 0 || (p->n_stop > 0 && !p->stop)) BAD("stop: bad list");
    for (int i = 0; i < p->n_stop; i++)
        if (!p->stop[i] || !p->stop[i][0]) BAD("stop[%d] is empty", i);
    if (p->n_stop_token_ids < 0 || (p->n_stop_token_ids > 0 && !p->stop_token_ids))
        BAD("stop_token_ids: bad list");
#undef BAD
    return 0;
}

static int32_t argmax(const float *x, int64_t V) {
    int64_t arg = 0;
    for (int64_t v = 1; v < V; v++)
        if (x[v] > x[arg] || (isnan(x[v]) && !isnan(x[arg]))) arg = v; /* torch: NaN wins */
    return (int32_t)arg;
}

static void penalties(struct sw_sampler *s, float *x, const struct sw_sampling_params *p,
                      const struct sw_sample_ctx *c) {
    int64_t V = s->V;
    if (p->repetition_penalty != 1.0) {
        float pen = (float)p->repetition_penalty;
        for (int pass = 0; pass < 2; pass++) {
            const int32_t *ids = pass ? c->output : c->prompt;
            int64_t n = pass ? c->n_output : c->n_prompt;
            for (int64_t i = 0; i < n; i++) {
                int32_t id = ids[i];
                if (id < 0 || id >= V || s->seen[id]) continue;
                s->seen[id] = 1;
                x[id] = x[id] > 0 ? x[id] / pen : x[id] * pen;
            }
        }
        for (int pass = 0; pass < 2; pass++) { /* reset only what was touched */
            const int32_t *ids = pass ? c->output : c->prompt;
            int64_t n = pass ? c->n_output : c->n_prompt;
            for (int64_t i = 0; i < n; i++)
                if (ids[i] >= 0 && ids[i] < V) s->seen[ids[i]] = 0;
        }
    }
    if (p->frequency_penalty != 0 || p->presence_penalty != 0) {
        for (int64_t i = 0; i < c->n_output; i++)
            if (c->output[i] >= 0 && c->output[i] < V) s->counts[c->output[i]]++;
        for (int64_t i = 0; i < c->n_output; i++) {
            int32_t id = c->output[i];
            if (id < 0 || id >= V || s->counts[id] == 0) continue;
            x[id] -= (float)(p->frequency_penalty * s->counts[id] +
                             p->presence_penalty * (s->counts[id] > 0));
            s->counts[id] = 0; /* once per id */
        }
    }
}

static int cmp_id(const void *a, const void *b) {
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    return (i > j) - (i < j);
}

static int cmp_desc(const void *a, const void *b, void *ctx) {
    const float *x = ctx;
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    if (x[i] != x[j]) return x[i] > x[j] ? -1 : 1;
    return (i > j) - (i < j);
}

int32_t sw_sample(struct sw_sampler *s, float *x, const struct sw_sampling_params *p,
                  const struct sw_sample_ctx *c) {
    int64_t V = s->V;
    if (c->n_banned > 0 && c->n_output < p->min_tokens)
        for (int i = 0; i < c->n_banned; i++)
            if (c->banned[i] >= 0 && c->banned[i] < V) x[c->banned[i]] = -INFINITY;
    penalties(s, x, p, c);
    if (p->temperature <= 0) return argmax(x, V);

    /* candidates: finite logits within SW_SAMPLE_CUT of the top, after temperature */
    float inv_t = (float)(1.0 / p->temperature);
    float mx = -INFINITY;
    for (int64_t v = 0; v < V; v++) {
        x[v] *= inv_t;
        if (x[v] > mx) mx = x[v];
    }
    if (!isfinite(mx)) return argmax(x, V);
    float floor = mx - SW_SAMPLE_CUT;
    if (p->min_p > 0) { /* p_v / p_max = exp(x_v − max) */
        float f = mx + logf((float)p->min_p);
        if (f > floor) floor = f;
    }
    int64_t n = 0;
    for (int64_t v = 0; v < V; v++)
        if (x[v] >= floor) s->idx[n++] = (int32_t)v;
    int64_t k = p->top_k > 0 && p->top_k < n ? p->top_k : n;
    if (k < n || p->top_p < 1.0) {
        qsort_r(s->idx, (size_t)n, sizeof(int32_t), cmp_desc, x);
        if (k < n) { /* keep ties with the k-th value */
            float kth = x[s->idx[k - 1]];
            while (k < n && x[s->idx[k]] == kth)
                k++;
            n = k;
        }
        if (p->top_p < 1.0) {
            /* transformers: ascending cumulative softmax, drop where cum ≤ 1 − top_p; walking
             * descending, keep the smallest prefix whose remaining tail has mass ≤ 1 − top_p */
            double z = 0;
            for (int64_t i = 0; i < n; i++)
                z += exp((double)x[s->idx[i]] - mx);
            double tail = 0;
            int64_t keep = n;
            for (int64_t i = n - 1; i > 0; i--) {
                tail += exp((double)x[s->idx[i]] - mx) / z;
                if (tail <= 1.0 - p->top_p)
                    keep = i;
                else
                    break;
            }
            n = keep;
        }
        /* back to id order so the draw does not depend on the sort */
        qsort(s->idx, (size_t)n, sizeof(int32_t), cmp_id);
    }
    double z = 0;
    for (int64_t i = 0; i < n; i++)
        z += exp((double)x[s->idx[i]] - mx);
    struct sw_rng r;
    sw_rng_restore(&r, c->seed, c->stream, 4 * (uint64_t)c->n_output);
    double u = sw_rng_uniform_f64(&r) * z, acc = 0;
    for (int64_t i = 0; i < n; i++) {
        acc += exp((double)x[s->idx[i]] - mx);
        if (u < acc) return s->idx[i];
    }
    return s->idx[n - 1]; /* u at the very top of the range (rounding) */
}

void sw_logprobs(const float *x, int64_t V, int32_t id, int k, struct sw_logprob_entry *top,
                 struct sw_token_logprobs *out, int32_t *amax) {
    int32_t a = argmax(x, V);
    float mx = x[a];
    double z = 0;
    for (int64_t v = 0; v < V; v++)
        z += exp((double)x[v] - mx);
    float lse = (float)(mx + log(z > 0 ? z : 1.0)); /* z ≥ 1: the max term is exp(0) */
    int32_t rank = 1;
    for (int64_t v = 0; v < V; v++)
        rank += x[v] > x[id];
    /* the k largest by insertion (k ≤ 20): descending value, ascending id on ties */
    int n = 0;
    for (int64_t v = 0; v < V && k > 0; v++) {
        if (n == k && !(x[v] > top[n - 1].logprob)) continue;
        int j = n < k ? n++ : k - 1;
        while (j > 0 && x[v] > top[j - 1].logprob) {
            top[j] = top[j - 1];
            j--;
        }
        top[j] = (struct sw_logprob_entry){(int32_t)v, x[v]};
    }
    for (int i = 0; i < n; i++)
        top[i].logprob -= lse;
    *out = (struct sw_token_logprobs){id, x[id] - lse, rank, n, top};
    if (amax) *amax = a;
}
