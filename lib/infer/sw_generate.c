/* sw_generate — greedy and sampled decoding on an evaluation model, with transformers'
 * generate() semantics so that greedy output is id-for-id what HF produces for the same model:
 *
 *   logits of the last position → repetition penalty (every id of prompt + output so far, once
 *   each) → greedy argmax (first index on ties, as torch.argmax), or for sampling temperature →
 *   top-k (ties with the k-th value kept) → top-p (HF's rule: drop the ascending-sorted tokens
 *   whose cumulative probability is ≤ 1 − top_p, always keeping the most likely) → softmax →
 *   one draw from sw_rng (Philox; deterministic for a seed, not torch's stream).
 *   Generation stops after an EOS id (which is part of the output) or max_new_tokens.
 *
 * There is no KV cache in sw_model yet: each step runs the model over the whole prefix and takes
 * the logits of the last row only (sw_model_logits_rows). That is O(new · prefix) work — fine for
 * the short demo and test generations this serves; sw-serve is the fast path. */
#include "sw_eval.h"

#include "sw_err.h"
#include "sw_rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void sw_generate_params_resolve(const struct sw_generate_request *rq, const struct sw_hfmodel *hf,
                                int32_t tok_eos, struct sw_generate_params *p) {
    const struct sw_generation_config *g = &hf->generation;
    memset(p, 0, sizeof(*p));
    p->max_new_tokens = rq->max_new_tokens >= 0 ? rq->max_new_tokens
                        : g->max_new_tokens > 0 ? g->max_new_tokens
                                                : 128;
    if (rq->temperature > 0) {
        p->do_sample = 1;
        p->temperature = rq->temperature;
    } else if (rq->temperature < 0 && g->do_sample) {
        p->do_sample = 1;
        p->temperature = g->temperature > 0 ? g->temperature : 1.0;
    }
    p->top_k = rq->top_k >= 0 ? rq->top_k : g->top_k >= 0 ? g->top_k : 50;
    p->top_p = rq->top_p >= 0 ? rq->top_p : g->top_p > 0 ? g->top_p : 1.0;
    p->repetition_penalty = rq->repetition_penalty > 0  ? rq->repetition_penalty
                            : g->repetition_penalty > 0 ? g->repetition_penalty
                                                        : 1.0;
    p->seed = rq->seed;
    /* EOS: generation_config.json, else config.json, else the tokenizer's eos_token. */
    const int64_t *ids = NULL;
    int n = 0;
    if (hf->has_generation_config && g->n_eos > 0)
        ids = g->eos_token_ids, n = g->n_eos;
    else if (hf->config.n_eos > 0)
        ids = hf->config.eos_token_ids, n = hf->config.n_eos;
    for (int i = 0; i < n && p->n_eos < 16; i++)
        p->eos_ids[p->n_eos++] = ids[i];
    if (p->n_eos == 0 && tok_eos >= 0) p->eos_ids[p->n_eos++] = tok_eos;
}

static void repetition_penalty(float *x, int64_t V, const int32_t *hist, int64_t n, double pen,
                               unsigned char *seen) {
    memset(seen, 0, (size_t)V);
    for (int64_t i = 0; i < n; i++) {
        int32_t id = hist[i];
        if (id < 0 || id >= V || seen[id]) continue;
        seen[id] = 1;
        x[id] = x[id] < 0 ? (float)(x[id] * pen) : (float)(x[id] / pen);
    }
}

static int cmp_float_asc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

struct idx_val {
    float v;
    int32_t i;
};

/* Ascending by value, then by index (a fixed order for ties). */
static int cmp_iv_asc(const void *a, const void *b) {
    const struct idx_val *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* HF TopKLogitsWarper: everything below the k-th largest value becomes -inf. */
static int top_k_filter(float *x, int64_t V, int64_t k) {
    if (k <= 0 || k >= V) return 0;
    float *tmp = malloc((size_t)V * sizeof(float));
    if (!tmp) return sw_err_set(SW_ENOMEM, "generate: out of memory");
    memcpy(tmp, x, (size_t)V * sizeof(float));
    qsort(tmp, (size_t)V, sizeof(float), cmp_float_asc);
    float kth = tmp[V - k];
    free(tmp);
    for (int64_t v = 0; v < V; v++)
        if (x[v] < kth) x[v] = -INFINITY;
    return 0;
}

/* HF TopPLogitsWarper: sort ascending, cumulative softmax, drop where cum <= 1 - top_p, keep the
 * last (most likely) token always. */
static int top_p_filter(float *x, int64_t V, double top_p) {
    if (top_p >= 1.0) return 0;
    struct idx_val *s = malloc((size_t)V * sizeof(*s));
    if (!s) return sw_err_set(SW_ENOMEM, "generate: out of memory");
    for (int64_t v = 0; v < V; v++)
        s[v] = (struct idx_val){x[v], (int32_t)v};
    qsort(s, (size_t)V, sizeof(*s), cmp_iv_asc);
    double mx = s[V - 1].v, z = 0;
    for (int64_t v = 0; v < V; v++)
        z += isinf(s[v].v) ? 0 : exp((double)s[v].v - mx);
    double cum = 0;
    for (int64_t v = 0; v < V - 1; v++) {
        cum += (isinf(s[v].v) ? 0 : exp((double)s[v].v - mx)) / z;
        if (cum <= 1.0 - top_p) x[s[v].i] = -INFINITY;
    }
    free(s);
    return 0;
}

/* One draw from softmax(x) (−inf entries have probability 0). */
static int32_t sample(const float *x, int64_t V, struct sw_rng *rng) {
    float mx = -INFINITY;
    int64_t arg = 0;
    for (int64_t v = 0; v < V; v++)
        if (x[v] > mx) mx = x[v], arg = v;
    if (!isfinite(mx)) return (int32_t)arg;
    double z = 0;
    for (int64_t v = 0; v < V; v++)
        z += isinf(x[v]) ? 0 : exp((double)x[v] - mx);
    double u = sw_rng_uniform_f64(rng) * z, acc = 0;
    int64_t last = arg;
    for (int64_t v = 0; v < V; v++) {
        if (isinf(x[v])) continue;
        acc += exp((double)x[v] - mx);
        last = v;
        if (u < acc) return (int32_t)v;
    }
    return (int32_t)last; /* u at the very top of the range (rounding) */
}

static int32_t argmax(const float *x, int64_t V) {
    int64_t arg = 0;
    for (int64_t v = 1; v < V; v++)
        if (x[v] > x[arg] || (isnan(x[v]) && !isnan(x[arg]))) arg = v; /* torch: NaN wins */
    return (int32_t)arg;
}

int32_t sw_generate_pick(float *logits, int64_t V, const int32_t *history, int64_t n_hist,
                         const struct sw_generate_params *p, struct sw_rng *rng) {
    if (p->repetition_penalty != 1.0 && n_hist > 0) {
        unsigned char *seen = malloc((size_t)V);
        if (!seen) return sw_err_set(SW_ENOMEM, "generate: out of memory");
        repetition_penalty(logits, V, history, n_hist, p->repetition_penalty, seen);
        free(seen);
    }
    if (!p->do_sample) return argmax(logits, V);
    float t = (float)p->temperature;
    for (int64_t v = 0; v < V; v++)
        logits[v] /= t;
    SW_TRY(top_k_filter(logits, V, p->top_k));
    SW_TRY(top_p_filter(logits, V, p->top_p));
    return sample(logits, V, rng);
}

static int is_eos(const struct sw_generate_params *p, int32_t id) {
    for (int i = 0; i < p->n_eos; i++)
        if (p->eos_ids[i] == id) return 1;
    return 0;
}

int sw_generate(struct sw_eval_model *em, const int32_t *prompt, int64_t n_prompt,
                const struct sw_generate_params *p, int32_t **out, int64_t *n_out,
                enum sw_finish *finish, int (*on_token)(void *user, int32_t id), void *user) {
    *out = NULL;
    *n_out = 0;
    *finish = SW_GEN_LENGTH;
    int64_t V = em->hf->config.vocab_size;
    if (n_prompt < 1)
        return sw_err_set(SW_EINVAL, "generate: empty prompt (at least one token is needed)");
    if (p->do_sample && !(p->temperature > 0))
        return sw_err_set(SW_EINVAL, "generate: sampling needs temperature > 0");
    int64_t cap = n_prompt + (p->max_new_tokens > 0 ? p->max_new_tokens : 0);
    int32_t *seq = malloc((size_t)cap * sizeof(int32_t));
    float *row = malloc((size_t)V * sizeof(float));
    int rc = 0;
    if (!seq || !row) {
        rc = sw_err_set(SW_ENOMEM, "generate: out of memory");
        goto fail;
    }
    memcpy(seq, prompt, (size_t)n_prompt * sizeof(int32_t));
    struct sw_rng rng;
    sw_rng_init(&rng, p->seed, 0x67656e65ull); /* "gene": a stream of its own */
    int64_t n = n_prompt;
    while (n < cap) {
        struct sw_batch b = {.B = 1, .T = n, .input_ids = seq};
        SW_TRY_GOTO(rc, sw_model_forward(em->model, &b, NULL), fail);
        SW_TRY_GOTO(rc, sw_model_logits_rows(em->model, n - 1, 1, row), fail);
        int32_t id = sw_generate_pick(row, V, seq, n, p, &rng);
        if (id < 0) {
            rc = id;
            goto fail;
        }
        seq[n++] = id;
        int stop = on_token ? on_token(user, id) : 0;
        if (stop < 0) {
            rc = stop;
            goto fail;
        }
        if (is_eos(p, id) || stop) {
            *finish = SW_GEN_STOP;
            break;
        }
    }
    *n_out = n - n_prompt;
    *out = malloc((size_t)(*n_out ? *n_out : 1) * sizeof(int32_t));
    if (!*out) {
        rc = sw_err_set(SW_ENOMEM, "generate: out of memory");
        goto fail;
    }
    memcpy(*out, seq + n_prompt, (size_t)*n_out * sizeof(int32_t));
    free(seq), free(row);
    return 0;
fail:
    free(seq), free(row);
    *n_out = 0;
    return rc;
}
