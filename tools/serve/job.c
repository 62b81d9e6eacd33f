/* job.c — one API request of sw-serve from the parsed body to the engine and back (serve.h).
 *
 * The transport (HTTP or ZeroMQ) parses the body, makes a job and starts it: the prompts are
 * encoded here (the chat template and tokenizer the engine owns, the same code as training), the
 * model name picks the base model or an adapter, max_tokens follows vLLM's rule and every prompt
 * is submitted. The engine's callback runs on the engine loop thread, so it only deep-copies the
 * event into the job's queue, records token timings and calls the transport's wake hook; the
 * transport's own threads turn queued events into response bytes (sw_openai_resp), so the
 * engine loop never formats JSON. A job is reference counted: the transport holds one
 * reference and each engine request one until its request_done event, so neither side can free
 * it under the other. */
#include "serve.h"

#include "sw_err.h"
#include "sw_log.h"
#include "sw_template.h"
#include "sw_tokenizer.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Per-prompt handles handed to the engine as callback user pointers. */
struct job_sub {
    struct serve_job *job;
    int prompt;
};

struct job_priv {
    struct serve_job j;
    struct job_sub *subs;
    int submitting;
};

double serve_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void serve_new_id(struct serve *s, const char *prefix, char *out, size_t cap) {
    unsigned char r[12];
    if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        uint64_t x = __atomic_add_fetch(&s->next_id, 1, __ATOMIC_RELAXED) * 0x9E3779B97F4A7C15ull ^
                     (uint64_t)time(NULL);
        for (int i = 0; i < 12; i++)
            r[i] = (unsigned char)(x >> (8 * (i % 8))) ^ (unsigned char)i;
    }
    int n = snprintf(out, cap, "%s", prefix);
    for (int i = 0; i < 12 && n + 2 < (int)cap; i++)
        n += snprintf(out + n, cap - (size_t)n, "%02x", r[i]);
}

const char *serve_model_name(const struct serve *s) {
    return s->n_names > 0 ? s->names[0] : sw_engine_model_name(s->engine);
}

int serve_resolve_model(struct serve *s, const char *name, char *adapter, size_t cap) {
    adapter[0] = 0;
    if (!name || !*name) return 1;
    for (int i = 0; i < s->n_names; i++)
        if (strcmp(s->names[i], name) == 0) return 1;
    snprintf(adapter, cap, "%s", name);
    return 0;
}

/* ---- events ---------------------------------------------------------------------------------- */

static size_t align8(size_t n) {
    return (n + 7) & ~(size_t)7;
}

/* A deep copy of ev in one allocation. */
static struct serve_event *event_copy(const struct sw_engine_event *ev, int prompt) {
    size_t n_top = 0, n_plp = ev->prompt_logprobs ? (size_t)ev->n_prompt_logprobs : 0;
    if (ev->logprobs) n_top += (size_t)ev->logprobs->n_top;
    for (size_t i = 0; i < n_plp; i++)
        n_top += (size_t)ev->prompt_logprobs[i].n_top;
    size_t sz = align8(sizeof(struct serve_event));
    size_t off_lp = sz;
    if (ev->logprobs) sz += align8(sizeof(struct sw_token_logprobs));
    size_t off_plp = sz;
    sz += align8(n_plp * sizeof(struct sw_token_logprobs));
    size_t off_top = sz;
    sz += align8(n_top * sizeof(struct sw_logprob_entry));
    size_t off_text = sz;
    sz += ev->text_len + 1;
    size_t off_stop = sz;
    sz += ev->stop_str ? strlen(ev->stop_str) + 1 : 0;
    size_t off_err = sz;
    sz += ev->error ? strlen(ev->error) + 1 : 0;
    char *m = malloc(sz);
    if (!m) return NULL;
    struct serve_event *e = (struct serve_event *)m;
    e->next = NULL;
    e->prompt = prompt;
    e->ev = *ev;
    struct sw_logprob_entry *top = (struct sw_logprob_entry *)(m + off_top);
    if (ev->logprobs) {
        struct sw_token_logprobs *t = (struct sw_token_logprobs *)(m + off_lp);
        *t = *ev->logprobs;
        if (t->n_top > 0) memcpy(top, ev->logprobs->top, (size_t)t->n_top * sizeof *top);
        t->top = top;
        top += t->n_top > 0 ? t->n_top : 0;
        e->ev.logprobs = t;
    }
    if (ev->prompt_logprobs) {
        struct sw_token_logprobs *p = (struct sw_token_logprobs *)(m + off_plp);
        for (size_t i = 0; i < n_plp; i++) {
            p[i] = ev->prompt_logprobs[i];
            if (p[i].n_top > 0)
                memcpy(top, ev->prompt_logprobs[i].top, (size_t)p[i].n_top * sizeof *top);
            p[i].top = top;
            top += p[i].n_top > 0 ? p[i].n_top : 0;
        }
        e->ev.prompt_logprobs = p;
    }
    char *text = m + off_text;
    if (ev->text_len) memcpy(text, ev->text, ev->text_len);
    text[ev->text_len] = 0;
    e->ev.text = text;
    if (ev->stop_str) e->ev.stop_str = strcpy(m + off_stop, ev->stop_str);
    if (ev->error) e->ev.error = strcpy(m + off_err, ev->error);
    return e;
}

void job_events_free(struct serve_event *e) {
    while (e) {
        struct serve_event *n = e->next;
        free(e);
        e = n;
    }
}

/* The engine callback (engine loop thread). */
static int job_engine_cb(void *user, const struct sw_engine_event *ev) {
    struct job_sub *sub = user;
    struct serve_job *j = sub->job;
    struct serve *s = j->srv;
    double now = serve_now();
    struct serve_event *e = event_copy(ev, sub->prompt);
    int nseq = j->req.params.n > 0 ? j->req.params.n : 1;
    if (ev->token >= 0 && ev->index >= 0 && ev->index < nseq) {
        int c = sub->prompt * nseq + ev->index;
        pthread_mutex_lock(&s->metrics.mu);
        if (j->t_first == 0) {
            j->t_first = now;
            serve_hist_observe(&s->metrics, &s->metrics.ttft, now - j->t_arrival);
        }
        if (j->t_last[c] > 0) serve_hist_observe(&s->metrics, &s->metrics.itl, now - j->t_last[c]);
        pthread_mutex_unlock(&s->metrics.mu);
        j->t_last[c] = now;
    }
    pthread_mutex_lock(&j->mu);
    if (ev->index >= 0 && ev->index < nseq) {
        int c = sub->prompt * nseq + ev->index;
        if (ev->token >= 0) j->n_completion++;
        if (ev->finish != SW_FINISH_NONE) j->finish[c] = (unsigned char)ev->finish;
    }
    if (ev->request_done) j->n_cached += ev->usage.cached_tokens;
    if (e) {
        *j->tail = e;
        j->tail = &e->next;
    } else {
        j->client_gone = 1; /* out of memory: give up on this request rather than lie */
    }
    int done = ev->request_done;
    if (done) j->n_done++;
    struct job_priv *jp = (struct job_priv *)j;
    int wake = j->stream || (!jp->submitting && j->n_done == j->n_submitted);
    int gone = j->client_gone;
    pthread_mutex_unlock(&j->mu);
    if (wake && j->wake) j->wake(j);
    if (done) job_unref(j);
    return gone && !done;
}

struct serve_event *job_take_events(struct serve_job *j) {
    pthread_mutex_lock(&j->mu);
    struct serve_event *e = j->head;
    j->head = NULL;
    j->tail = &j->head;
    pthread_mutex_unlock(&j->mu);
    return e;
}

int job_assemble(struct serve_job *j, struct serve_event *e, struct sw_obuf *out) {
    for (; e; e = e->next)
        SW_TRY(sw_openai_resp_event(j->resp, e->prompt, &e->ev, out));
    return 0;
}

int job_finished(struct serve_job *j) {
    struct job_priv *jp = (struct job_priv *)j;
    pthread_mutex_lock(&j->mu);
    int f = !jp->submitting && j->n_done == j->n_submitted;
    pthread_mutex_unlock(&j->mu);
    return f;
}

void job_abort(struct serve_job *j) {
    pthread_mutex_lock(&j->mu);
    j->client_gone = 1;
    int n = j->n_prompts;
    uint64_t ids[64], *idp = n <= 64 ? ids : malloc((size_t)n * sizeof *idp);
    if (idp) memcpy(idp, j->engine_ids, (size_t)n * sizeof *idp);
    pthread_mutex_unlock(&j->mu);
    /* never call into the engine with mu held: the engine thread takes mu in the callback */
    for (int i = 0; idp && i < n; i++)
        if (idp[i]) (void)sw_engine_abort(j->srv->engine, idp[i]);
    if (idp != ids) free(idp);
}

/* ---- lifetime -------------------------------------------------------------------------------- */

int job_new(struct serve *s, struct sw_openai_request *req, struct serve_job **out) {
    *out = NULL;
    struct job_priv *jp = calloc(1, sizeof *jp);
    if (!jp) return sw_err_set(SW_ENOMEM, "out of memory");
    struct serve_job *j = &jp->j;
    pthread_mutex_init(&j->mu, NULL);
    j->refs = 1;
    j->srv = s;
    j->req = *req;
    memset(req, 0, sizeof *req);
    sw_conv_init(&req->conv);
    j->stream = j->req.stream;
    j->tail = &j->head;
    j->t_arrival = serve_now();
    j->n_prompts = j->req.kind == SW_OPENAI_CHAT ? 1 : j->req.n_prompts;
    int nseq = j->req.params.n > 0 ? j->req.params.n : 1;
    j->ids = calloc((size_t)j->n_prompts, sizeof *j->ids);
    j->n_ids = calloc((size_t)j->n_prompts, sizeof *j->n_ids);
    j->engine_ids = calloc((size_t)j->n_prompts, sizeof *j->engine_ids);
    j->t_last = calloc((size_t)j->n_prompts * (size_t)nseq, sizeof *j->t_last);
    j->finish = calloc((size_t)j->n_prompts * (size_t)nseq, 1);
    jp->subs = calloc((size_t)j->n_prompts, sizeof *jp->subs);
    pthread_mutex_lock(&s->jobs_mu);
    s->jobs++;
    s->jobs_started++;
    pthread_mutex_unlock(&s->jobs_mu);
    if (!j->ids || !j->n_ids || !j->engine_ids || !j->t_last || !j->finish || !jp->subs) {
        job_unref(j);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    for (int i = 0; i < j->n_prompts; i++)
        jp->subs[i] = (struct job_sub){j, i};
    *out = j;
    return 0;
}

void job_ref(struct serve_job *j) {
    pthread_mutex_lock(&j->mu);
    j->refs++;
    pthread_mutex_unlock(&j->mu);
}

void job_unref(struct serve_job *j) {
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left > 0) return;
    struct job_priv *jp = (struct job_priv *)j;
    struct serve *s = j->srv;
    job_events_free(j->head);
    sw_openai_resp_free(j->resp);
    for (int i = 0; j->ids && i < j->n_prompts; i++)
        free(j->ids[i]);
    free(j->ids), free(j->n_ids), free(j->engine_ids), free(j->t_last), free(j->finish),
        free(jp->subs);
    sw_openai_request_release(&j->req);
    pthread_mutex_destroy(&j->mu);
    free(jp);
    pthread_mutex_lock(&s->jobs_mu);
    s->jobs--;
    pthread_cond_broadcast(&s->jobs_cv);
    pthread_mutex_unlock(&s->jobs_mu);
}

/* ---- start: encode, check, submit -------------------------------------------------------------
 */

static int encode_chat(struct serve_job *j, struct sw_openai_error *err) {
    struct serve *s = j->srv;
    const struct sw_template *t = sw_engine_template(s->engine);
    const struct sw_tokenizer *tok = sw_engine_tokenizer(s->engine);
    if (!t)
        return sw_openai_error_set(err, 400, "messages",
                                   "this model has no chat template sw "
                                   "recognises: use /v1/completions, or start sw-serve with "
                                   "--template NAME (%s)",
                                   sw_template_names());
    struct sw_template_tokens tk;
    struct sw_template_scratch scr;
    struct sw_template_sample smp;
    memset(&scr, 0, sizeof scr);
    memset(&smp, 0, sizeof smp);
    struct sw_template_opts o = {.system = NULL,
                                 .loss = SW_LOSS_DEFAULT,
                                 .add_generation_prompt = j->req.add_generation_prompt,
                                 .thinking_off = j->req.enable_thinking == 0};
    int rc = sw_template_tokens_from(tok, &tk);
    if (rc == 0) rc = sw_template_encode(t, tok, &j->req.conv, &o, &tk, "messages", &scr, &smp);
    if (rc == 0) {
        size_t n = smp.n;
        j->ids[0] = malloc((n ? n : 1) * sizeof(int32_t));
        if (!j->ids[0]) rc = sw_err_set(SW_ENOMEM, "out of memory");
        if (rc == 0) {
            memcpy(j->ids[0], smp.ids, n * sizeof(int32_t));
            j->n_ids[0] = (int64_t)n;
        }
    }
    sw_template_sample_release(&smp);
    sw_template_scratch_release(&scr);
    if (rc == SW_ENOMEM) return sw_openai_error_set(err, 500, NULL, "out of memory");
    if (rc < 0) return sw_openai_error_set(err, 400, "messages", "%s", sw_err_msg());
    return 0;
}

static int encode_prompts(struct serve_job *j, struct sw_openai_error *err) {
    const struct sw_tokenizer *tok = sw_engine_tokenizer(j->srv->engine);
    for (int i = 0; i < j->n_prompts; i++) {
        struct sw_openai_prompt *p = &j->req.prompts[i];
        char param[32];
        snprintf(param, sizeof param, j->n_prompts > 1 ? "prompt[%d]" : "prompt", i);
        if (p->text) {
            size_t n = 0;
            int rc = sw_tokenizer_encode(tok, p->text, strlen(p->text), j->req.add_special_tokens,
                                         &j->ids[i], &n);
            if (rc < 0)
                return sw_openai_error_set(err, rc == SW_ENOMEM ? 500 : 400, param, "%s",
                                           sw_err_msg());
            j->n_ids[i] = (int64_t)n;
        } else {
            j->ids[i] = malloc((size_t)p->n_ids * sizeof(int32_t));
            if (!j->ids[i]) return sw_openai_error_set(err, 500, NULL, "out of memory");
            memcpy(j->ids[i], p->ids, (size_t)p->n_ids * sizeof(int32_t));
            j->n_ids[i] = p->n_ids;
        }
    }
    return 0;
}

int job_start(struct serve_job *j, struct sw_openai_error *err) {
    struct serve *s = j->srv;
    struct job_priv *jp = (struct job_priv *)j;
    const int chat = j->req.kind == SW_OPENAI_CHAT;
    /* the model: a served name of the base, else an adapter the engine must know */
    if (serve_resolve_model(s, j->req.model, j->adapter, sizeof j->adapter)) {
        snprintf(j->model, sizeof j->model, "%s",
                 j->req.model && *j->req.model ? j->req.model : serve_model_name(s));
    } else {
        int found = 0;
        for (int i = 0; i < sw_engine_adapter_count(s->engine); i++) {
            const char *nm = sw_engine_adapter_name(s->engine, i);
            if (nm && strcmp(nm, j->adapter) == 0) found = 1;
        }
        if (!found)
            return sw_openai_error_set(err, 404, "model", "The model `%s` does not exist.",
                                       j->req.model);
        snprintf(j->model, sizeof j->model, "%s", j->req.model);
    }
    SW_TRY(chat ? encode_chat(j, err) : encode_prompts(j, err));
    serve_new_id(s, chat ? "chatcmpl-" : "cmpl-", j->id, sizeof j->id);
    struct sw_openai_resp_opts ro = {.id = j->id,
                                     .model = j->model,
                                     .created = (int64_t)time(NULL),
                                     .reasoning = chat ? s->reasoning : SW_REASONING_NONE,
                                     .tok = sw_engine_tokenizer(s->engine)};
    if (sw_openai_resp_new(&j->req, &ro, &j->resp) < 0)
        return sw_openai_error_set(err, 500, NULL, "out of memory");
    /* every prompt is checked before any is submitted: a bad one fails the whole request */
    int64_t *max_tokens = calloc((size_t)j->n_prompts, sizeof *max_tokens);
    if (!max_tokens) return sw_openai_error_set(err, 500, NULL, "out of memory");
    int rc = 0;
    for (int i = 0; rc == 0 && i < j->n_prompts; i++) {
        char param[32];
        snprintf(param, sizeof param,
                 chat               ? "messages"
                 : j->n_prompts > 1 ? "prompt[%d]"
                                    : "prompt",
                 i);
        if (j->req.truncate_prompt_tokens > 0 && j->n_ids[i] > j->req.truncate_prompt_tokens) {
            int64_t k = j->req.truncate_prompt_tokens;
            memmove(j->ids[i], j->ids[i] + j->n_ids[i] - k, (size_t)k * sizeof(int32_t));
            j->n_ids[i] = k;
        }
        if (j->n_ids[i] == 0) {
            rc = sw_openai_error_set(err, 400, param, "the prompt is empty (no tokens)");
            break;
        }
        rc = sw_openai_resolve_max_tokens(&j->req, j->n_ids[i], s->max_model_len, s->gen_cap,
                                          &max_tokens[i], err);
        if (rc == 0 && sw_openai_resp_set_prompt(j->resp, i, j->ids[i], j->n_ids[i],
                                                 chat ? NULL : j->req.prompts[i].text) < 0)
            rc = sw_openai_error_set(err, 500, NULL, "%s", sw_err_msg());
    }
    if (rc < 0) {
        free(max_tokens);
        return rc;
    }
    pthread_mutex_lock(&j->mu);
    jp->submitting = 1;
    pthread_mutex_unlock(&j->mu);
    for (int i = 0; i < j->n_prompts; i++) {
        struct sw_sampling_params p = j->req.params;
        p.max_tokens = max_tokens[i];
        pthread_mutex_lock(&j->mu);
        j->refs++, j->n_submitted++; /* the engine request's reference, before it can call back */
        pthread_mutex_unlock(&j->mu);
        uint64_t id = 0;
        rc = sw_engine_submit(s->engine, j->ids[i], j->n_ids[i], &p,
                              j->adapter[0] ? j->adapter : NULL, job_engine_cb, &jp->subs[i], &id);
        if (rc < 0) {
            char param[32];
            snprintf(param, sizeof param,
                     chat               ? "messages"
                     : j->n_prompts > 1 ? "prompt[%d]"
                                        : "prompt",
                     i);
            switch (rc) {
            case SW_EINVAL: sw_openai_error_set(err, 400, param, "%s", sw_err_msg()); break;
            case SW_ENOTFOUND:
                sw_openai_error_set(err, 404, "model", "The model `%s` does not exist.", j->model);
                break;
            case SW_ERANGE: sw_openai_error_set(err, 400, param, "%s", sw_err_msg()); break;
            case SW_EBUSY:
                sw_openai_error_set(err, 429, NULL,
                                    "the server is busy: too many requests are "
                                    "waiting (%s); retry later",
                                    sw_err_msg());
                break;
            case SW_ESTATE:
                sw_openai_error_set(err, 503, NULL, "the server is shutting down");
                break;
            default: sw_openai_error_set(err, 500, NULL, "%s", sw_err_msg()); break;
            }
            pthread_mutex_lock(&j->mu);
            j->refs--, j->n_submitted--;
            pthread_mutex_unlock(&j->mu);
            break;
        }
        pthread_mutex_lock(&j->mu);
        j->engine_ids[i] = id;
        pthread_mutex_unlock(&j->mu);
    }
    free(max_tokens);
    if (rc < 0) job_abort(j); /* the prompts already queued: stop them */
    pthread_mutex_lock(&j->mu);
    jp->submitting = 0;
    int wake = !j->stream && j->n_done == j->n_submitted && j->n_submitted > 0;
    pthread_mutex_unlock(&j->mu);
    if (rc == 0 && wake && j->wake) j->wake(j);
    return rc;
}

void job_account(struct serve_job *j) {
    struct serve *s = j->srv;
    struct serve_metrics *m = &s->metrics;
    int nseq = j->req.params.n > 0 ? j->req.params.n : 1;
    double now = serve_now();
    int64_t p = 0;
    for (int i = 0; i < j->n_prompts; i++)
        p += j->n_ids[i];
    pthread_mutex_lock(&j->mu);
    int64_t c = j->n_completion, k = j->n_cached;
    int started = j->n_submitted > 0;
    pthread_mutex_lock(&m->mu);
    if (started) {
        m->prompt_tokens += (uint64_t)p;
        m->generation_tokens += (uint64_t)c;
        m->cached_tokens += (uint64_t)k;
        for (int i = 0; i < j->n_prompts * nseq; i++)
            m->finished[j->finish[i] ? j->finish[i] : SW_FINISH_ABORT]++;
        serve_hist_observe(m, &m->e2e, now - j->t_arrival);
        serve_hist_observe(m, &m->prompt_len, (double)p);
        serve_hist_observe(m, &m->gen_len, (double)c);
    }
    pthread_mutex_unlock(&m->mu);
    pthread_mutex_unlock(&j->mu);
}
