/* sw_engine_batch — the synchronous API for batch users (evaluation, RL rollouts): submit a whole
 * batch, let continuous batching run it (the loop thread if one runs, else steps in the calling
 * thread), collect the results. Scoring (lm-evaluation-harness loglikelihood) is a prompt-only
 * request whose prompt logprobs start at the continuation; contexts that share a prefix share
 * its cached blocks, since the prefix-cache lookup may use everything before the first scored
 * row. */
#include "sw_engine_impl.h"

#include "sw_err.h"

#include <stdlib.h>
#include <string.h>

struct batch_ctx {
    struct sw_engine *e;
    int n, done;
};

/* Wait until every request of c finished: on the loop thread, or stepping here. */
static int batch_wait(struct sw_engine *e, struct batch_ctx *c) {
    int rc = 0;
    for (;;) {
        pthread_mutex_lock(&e->mu);
        int threaded = e->thread_running;
        while (threaded && c->done < c->n)
            pthread_cond_wait(&e->done_cv, &e->mu);
        int finished = c->done >= c->n;
        pthread_mutex_unlock(&e->mu);
        if (finished) return rc;
        int r = sw_engine_step(e);
        if (r < 0) rc = r; /* the failed requests ended with SW_FINISH_ERROR; go on */
    }
}

static void batch_done(struct batch_ctx *c) {
    pthread_mutex_lock(&c->e->mu);
    c->done++;
    pthread_mutex_unlock(&c->e->mu);
}

/* ---- generate ----------------------------------------------------------------------------- */

struct gen_one {
    struct batch_ctx *c;
    struct sw_generation *g;
    int64_t *caps; /* ids capacity per sequence */
    size_t *tcaps; /* text capacity */
    int want_lp;
    int failed;
};

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q) return -1;
    *p = q;
    *cap = n;
    return 0;
}

static int gen_cb(void *user, const struct sw_engine_event *ev) {
    struct gen_one *o = user;
    if (ev->request_done) {
        o->g->prompt_tokens = ev->usage.prompt_tokens;
        o->g->cached_tokens = ev->usage.cached_tokens;
        batch_done(o->c);
        return 0;
    }
    if (ev->index < 0 || ev->index >= o->g->n) return 0;
    struct sw_completion *s = &o->g->seqs[ev->index];
    if (ev->token >= 0) {
        int64_t cap = o->caps[ev->index];
        if (s->n_ids + 1 > cap) {
            int64_t ncap = cap ? 2 * cap : 16;
            int32_t *ni = realloc(s->ids, (size_t)ncap * sizeof(int32_t));
            if (ni) s->ids = ni;
            float *nl = o->want_lp ? realloc(s->logprobs, (size_t)ncap * sizeof(float)) : NULL;
            if (nl) s->logprobs = nl;
            if (!ni || (o->want_lp && !nl)) {
                o->failed = 1;
                return 1;
            }
            o->caps[ev->index] = ncap;
        }
        if (o->want_lp) s->logprobs[s->n_ids] = ev->logprobs ? ev->logprobs->logprob : 0.0f;
        s->ids[s->n_ids++] = ev->token;
    }
    if (ev->text_len > 0) {
        if (grow((void **)&s->text, &o->tcaps[ev->index], s->text_len + ev->text_len + 1, 1) < 0) {
            o->failed = 1;
            return 1;
        }
        memcpy(s->text + s->text_len, ev->text, ev->text_len);
        s->text_len += ev->text_len;
        s->text[s->text_len] = 0;
    }
    if (ev->finish != SW_FINISH_NONE) s->finish = ev->finish;
    return 0;
}

void sw_generation_release(struct sw_generation *g) {
    if (!g) return;
    for (int i = 0; g->seqs && i < g->n; i++) {
        free(g->seqs[i].ids);
        free(g->seqs[i].text);
        free(g->seqs[i].logprobs);
    }
    free(g->seqs);
    memset(g, 0, sizeof(*g));
}

int sw_engine_generate(struct sw_engine *e, const int32_t *const *ids, const int64_t *lens,
                       int n_prompts, const struct sw_sampling_params *p, const char *adapter,
                       struct sw_generation *out) {
    memset(out, 0, (size_t)(n_prompts > 0 ? n_prompts : 0) * sizeof(*out));
    if (n_prompts < 0 || !p) return sw_err_set(SW_EINVAL, "generate: bad arguments");
    struct batch_ctx c = {.e = e};
    struct gen_one *one = calloc((size_t)(n_prompts ? n_prompts : 1), sizeof(*one));
    if (!one) return sw_err_set(SW_ENOMEM, "out of memory");
    int rc = 0, i;
    for (i = 0; i < n_prompts && rc == 0; i++) {
        struct sw_generation *g = &out[i];
        g->n = p->n;
        g->seqs = calloc((size_t)p->n, sizeof(*g->seqs));
        one[i].caps = calloc((size_t)p->n, sizeof(int64_t));
        one[i].tcaps = calloc((size_t)p->n, sizeof(size_t));
        if (!g->seqs || !one[i].caps || !one[i].tcaps) {
            rc = sw_err_set(SW_ENOMEM, "out of memory");
            break;
        }
        for (int k = 0; k < p->n; k++) {
            g->seqs[k].text = calloc(1, 1);
            if (!g->seqs[k].text) rc = sw_err_set(SW_ENOMEM, "out of memory");
        }
        one[i].c = &c;
        one[i].g = g;
        one[i].want_lp = p->logprobs >= 0;
        if (rc == 0)
            rc = sw_engine_submit_ex(e, ids[i], lens[i], p, adapter, gen_cb, &one[i], -1, 1, NULL);
        if (rc < 0) {
            sw_err_wrap(rc, "prompt %d", i);
            break;
        }
        pthread_mutex_lock(&e->mu);
        c.n++;
        pthread_mutex_unlock(&e->mu);
    }
    int wrc = batch_wait(e, &c);
    for (int k = 0; k < n_prompts; k++) {
        if (one[k].failed && rc == 0) rc = sw_err_set(SW_ENOMEM, "generate: out of memory");
        free(one[k].caps), free(one[k].tcaps);
    }
    free(one);
    if (rc == 0) rc = wrc;
    for (int k = 0; rc == 0 && k < n_prompts; k++)
        for (int j = 0; j < out[k].n; j++)
            if (out[k].seqs[j].finish == SW_FINISH_ERROR)
                rc = sw_err_set(SW_EDEVICE, "generate: prompt %d failed in the engine", k);
    if (rc < 0)
        for (int k = 0; k < n_prompts; k++)
            sw_generation_release(&out[k]);
    return rc;
}

/* ---- score -------------------------------------------------------------------------------- */

struct score_one {
    struct batch_ctx *c;
    struct sw_score_result *res;
    int64_t n_cont;
    int got, error;
};

static int score_cb(void *user, const struct sw_engine_event *ev) {
    struct score_one *o = user;
    if (ev->prompt_logprobs) {
        /* entries predict prompt tokens plp_from+1.. = the continuation */
        double s = 0;
        int greedy = 1;
        for (int64_t j = 0; j < o->n_cont && j < ev->n_prompt_logprobs; j++) {
            s += ev->prompt_logprobs[j].logprob;
            greedy &= ev->prompt_logprobs[j].rank == 1;
        }
        o->res->logprob = s;
        o->res->is_greedy = greedy;
        o->got = ev->n_prompt_logprobs >= o->n_cont;
    }
    if (ev->finish == SW_FINISH_ERROR || ev->finish == SW_FINISH_ABORT) o->error = 1;
    if (ev->request_done) batch_done(o->c);
    return 0;
}

int sw_engine_score(struct sw_engine *e, const struct sw_score_request *reqs, int n,
                    const char *adapter, struct sw_score_result *out) {
    if (n < 0) return sw_err_set(SW_EINVAL, "score: bad arguments");
    struct batch_ctx c = {.e = e};
    struct score_one *one = calloc((size_t)(n ? n : 1), sizeof(*one));
    if (!one) return sw_err_set(SW_ENOMEM, "out of memory");
    struct sw_sampling_params p;
    sw_sampling_params_init(&p);
    p.max_tokens = 0;
    p.temperature = 0;
    p.prompt_logprobs = 0;
    int rc = 0;
    int32_t *buf = NULL;
    for (int i = 0; i < n && rc == 0; i++) {
        const struct sw_score_request *q = &reqs[i];
        memset(&out[i], 0, sizeof(out[i]));
        if (q->n_context < 1 || q->n_cont < 1) {
            rc = sw_err_set(SW_EINVAL, "score: request %d needs a context and a continuation", i);
            break;
        }
        int32_t *nb = realloc(buf, (size_t)(q->n_context + q->n_cont) * sizeof(int32_t));
        if (!nb) {
            rc = sw_err_set(SW_ENOMEM, "out of memory");
            break;
        }
        buf = nb;
        memcpy(buf, q->context, (size_t)q->n_context * sizeof(int32_t));
        memcpy(buf + q->n_context, q->cont, (size_t)q->n_cont * sizeof(int32_t));
        one[i] = (struct score_one){.c = &c, .res = &out[i], .n_cont = q->n_cont};
        rc = sw_engine_submit_ex(e, buf, q->n_context + q->n_cont, &p, adapter, score_cb, &one[i],
                                 q->n_context - 1, 1, NULL);
        if (rc < 0) {
            sw_err_wrap(rc, "score request %d", i);
            break;
        }
        pthread_mutex_lock(&e->mu);
        c.n++;
        pthread_mutex_unlock(&e->mu);
    }
    free(buf);
    int wrc = batch_wait(e, &c);
    if (rc == 0) rc = wrc;
    for (int i = 0; rc == 0 && i < n; i++)
        if (one[i].error || !one[i].got)
            rc = sw_err_set(SW_EDEVICE, "score: request %d failed in the engine", i);
    free(one);
    return rc;
}
