/* sw_engine — opening the engine (model, tokenizer, template, adapters, KV cache sized from the
 * budget), its getters, run-time adapters, the thread-safe request intake (submit/abort), the
 * counters and the background loop. The step itself is sw_engine_sched.c. */
#include "sw_engine_impl.h"

#include "sw_err.h"
#include "sw_parallel.h"
#include "sw_log.h"
#include "sw_template.h"
#include "sw_tokenizer.h"

#include <errno.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t sw_engine_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sw_engine_opts_init(struct sw_engine_opts *o) {
    memset(o, 0, sizeof(*o));
    o->device = SW_DEVICE_CPU;
    o->enable_prefix_caching = 1;
}

void sw_sampling_params_init(struct sw_sampling_params *p) {
    memset(p, 0, sizeof(*p));
    p->n = 1;
    p->max_tokens = 16;
    p->temperature = 1.0;
    p->top_p = 1.0;
    p->repetition_penalty = 1.0;
    p->skip_special_tokens = 1;
    p->logprobs = -1;
    p->prompt_logprobs = -1;
}

void sw_engine_default_params(const struct sw_engine *e, struct sw_sampling_params *p) {
    sw_sampling_params_init(p);
    if (!e->hf->has_generation_config) return;
    const struct sw_generation_config *g = &e->hf->generation;
    p->temperature = g->do_sample ? (g->temperature > 0 ? g->temperature : 1.0) : 0.0;
    if (g->top_p > 0 && g->top_p <= 1) p->top_p = g->top_p;
    if (g->do_sample && g->top_k > 0) p->top_k = (int)g->top_k;
    if (g->repetition_penalty > 0) p->repetition_penalty = g->repetition_penalty;
    if (g->max_new_tokens > 0) p->max_tokens = g->max_new_tokens;
}

const char *sw_finish_reason_name(enum sw_finish_reason r) {
    switch (r) {
    case SW_FINISH_STOP: return "stop";
    case SW_FINISH_LENGTH: return "length";
    case SW_FINISH_ABORT: return "abort";
    case SW_FINISH_ERROR: return "error";
    default: return "none";
    }
}

/* ---- getters ------------------------------------------------------------------------------ */

const struct sw_tokenizer *sw_engine_tokenizer(const struct sw_engine *e) {
    return e->tok;
}
const struct sw_template *sw_engine_template(const struct sw_engine *e) {
    return e->tpl;
}
const struct sw_model_config *sw_engine_model_config(const struct sw_engine *e) {
    return &e->hf->config;
}
const struct sw_generation_config *sw_engine_generation_config(const struct sw_engine *e) {
    return &e->hf->generation;
}
int sw_engine_has_generation_config(const struct sw_engine *e) {
    return e->hf->has_generation_config;
}
int64_t sw_engine_max_model_len(const struct sw_engine *e) {
    return e->max_model_len;
}
const char *sw_engine_model_name(const struct sw_engine *e) {
    return e->model_name;
}
const int32_t *sw_engine_eos_ids(const struct sw_engine *e, int *n) {
    *n = e->n_eos;
    return e->eos;
}

/* ---- adapters ----------------------------------------------------------------------------- */

int sw_engine_adapter_count(const struct sw_engine *e) {
    struct sw_engine *m = (struct sw_engine *)e;
    pthread_mutex_lock(&m->mu);
    int n = e->n_adapters;
    pthread_mutex_unlock(&m->mu);
    return n;
}

const char *sw_engine_adapter_name(const struct sw_engine *e, int i) {
    struct sw_engine *m = (struct sw_engine *)e;
    pthread_mutex_lock(&m->mu);
    const char *s = i >= 0 && i < e->n_adapters ? e->adapters[i]->name : NULL;
    pthread_mutex_unlock(&m->mu);
    return s;
}

static void adapter_free(struct eng_adapter *a) {
    if (!a) return;
    sw_lora_weights_free(a->w);
    sw_adapter_close(a->a);
    free(a->name);
    free(a);
}

/* Load an adapter (step_mu held, so no forward runs meanwhile); adds it under mu. */
static int adapter_load(struct sw_engine *e, const char *name, const char *path) {
    if (e->model_borrowed)
        return sw_err_set(SW_EINVAL, "adapter '%s': a borrowed model serves its own LoRA",
                          name ? name : "");
    if (!name || !*name || !path)
        return sw_err_set(SW_EINVAL, "adapter: need name=path (got '%s')", name ? name : "");
    if (strcmp(name, e->model_name) == 0)
        return sw_err_set(SW_EINVAL, "adapter '%s': the name is the base model's", name);
    pthread_mutex_lock(&e->mu);
    int dup = 0;
    for (int i = 0; i < e->n_adapters; i++)
        dup |= strcmp(e->adapters[i]->name, name) == 0;
    int full = e->n_adapters >= e->max_loras;
    pthread_mutex_unlock(&e->mu);
    if (dup) return sw_err_set(SW_EINVAL, "adapter '%s' is already loaded", name);
    if (full)
        return sw_err_set(SW_ERANGE, "adapter '%s': %d adapters are loaded already (max_loras)",
                          name, e->max_loras);
    struct eng_adapter *a = calloc(1, sizeof(*a));
    if (!a || !(a->name = strdup(name))) {
        free(a);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    int rc;
    SW_TRY_GOTO(rc, sw_adapter_open(path, &a->a), fail);
    SW_TRY_GOTO(rc, sw_lora_weights_load(e->model, a->a, &a->w), fail);
    pthread_mutex_lock(&e->mu);
    a->uid = ++e->next_uid;
    struct eng_adapter **na = realloc(e->adapters, (size_t)(e->n_adapters + 1) * sizeof(*na));
    if (na) {
        e->adapters = na;
        e->adapters[e->n_adapters++] = a;
    }
    pthread_mutex_unlock(&e->mu);
    if (!na) {
        rc = sw_err_set(SW_ENOMEM, "out of memory");
        goto fail;
    }
    sw_info("adapter '%s' from %s: r=%d, lora_alpha=%g, %d modules", name, path, a->a->cfg.r,
            a->a->cfg.alpha, a->a->n_modules);
    return 0;
fail:
    adapter_free(a);
    return sw_err_wrap(rc, "adapter '%s'", name);
}

int sw_engine_adapter_add(struct sw_engine *e, const char *name, const char *path) {
    pthread_mutex_lock(&e->step_mu);
    int rc = adapter_load(e, name, path);
    pthread_mutex_unlock(&e->step_mu);
    return rc;
}

int sw_engine_adapter_remove(struct sw_engine *e, const char *name) {
    pthread_mutex_lock(&e->step_mu);
    pthread_mutex_lock(&e->mu);
    int rc = sw_err_set(SW_ENOTFOUND, "no adapter '%s'", name);
    struct eng_adapter *gone = NULL;
    for (int i = 0; i < e->n_adapters; i++) {
        if (strcmp(e->adapters[i]->name, name) != 0) continue;
        if (e->adapters[i]->users > 0) {
            rc = sw_err_set(SW_ESTATE, "adapter '%s' is in use by %d requests", name,
                            e->adapters[i]->users);
            break;
        }
        gone = e->adapters[i];
        memmove(e->adapters + i, e->adapters + i + 1,
                (size_t)(e->n_adapters - i - 1) * sizeof(*e->adapters));
        e->n_adapters--;
        rc = 0;
        break;
    }
    pthread_mutex_unlock(&e->mu);
    /* its cached blocks can never match again (uids are not reused); they age out as usual */
    adapter_free(gone);
    pthread_mutex_unlock(&e->step_mu);
    return rc;
}

/* ---- open / close ------------------------------------------------------------------------- */

static void resolve_eos(struct sw_engine *e) {
    const struct sw_hfmodel *hf = e->hf;
    const int64_t *ids = NULL;
    int n = 0;
    if (hf->has_generation_config && hf->generation.n_eos > 0)
        ids = hf->generation.eos_token_ids, n = hf->generation.n_eos;
    else if (hf->config.n_eos > 0)
        ids = hf->config.eos_token_ids, n = hf->config.n_eos;
    for (int i = 0; i < n && e->n_eos < 16; i++)
        if (ids[i] >= 0 && ids[i] < e->V) e->eos[e->n_eos++] = (int32_t)ids[i];
    int32_t t = sw_tokenizer_special_id(e->tok, SW_TOK_EOS);
    if (e->n_eos == 0 && t >= 0) e->eos[e->n_eos++] = t;
}

/* Number of KV blocks from the budget, and max_model_len. */
static int size_cache(struct sw_engine *e, int64_t *num_blocks) {
    const struct sw_engine_opts *o = &e->opts;
    const struct sw_model_config *c = &e->hf->config;
    size_t blk = sw_kv_cache_block_bytes(c, e->bs);
    int64_t per_seq = (e->max_model_len + e->bs - 1) / e->bs;
    int64_t want;
    if (o->kv_cache_bytes > 0) {
        want = (int64_t)((size_t)o->kv_cache_bytes / blk);
    } else if (e->be->device != SW_DEVICE_CPU) {
        /* vLLM's rule: gpu_memory_utilization of the device's memory for everything, minus what
         * is in use now (weights, adapters, workspaces) and the activations of the largest step
         * (upper bound from the forward's buffer list), is the cache; never more than is free */
        struct sw_mem_info mi;
        SW_TRY(e->be->mem_info(e->be, &mi));
        double util = o->gpu_memory_utilization > 0 ? o->gpu_memory_utilization : 0.9;
        int64_t max_r = 0;
        for (int i = 0; i < e->n_adapters; i++)
            if (e->adapters[i]->a->cfg.r > max_r) max_r = e->adapters[i]->a->cfg.r;
        double act = (double)sw_model_infer_scratch_bytes(
            e->model, e->max_batched, e->max_num_seqs + 1 + e->plp_cap, max_r > 0 ? max_r : 64);
        double budget = util * (double)mi.total - (double)mi.in_use - act;
        if (budget > (double)mi.free - act) budget = (double)mi.free - act;
        want = budget > 0 ? (int64_t)(budget / (double)blk) : 0;
        sw_info("kv cache: %.2f GiB on %s (gpu_memory_utilization %.2f of %.1f GiB; %.2f GiB in "
                "use, %.2f GiB for activations)",
                (double)want * (double)blk / 1073741824.0, e->be->name, util,
                mi.total / 1073741824.0, mi.in_use / 1073741824.0, act / 1073741824.0);
    } else {
        want = per_seq * e->max_num_seqs;
        int64_t cap = (int64_t)(((size_t)1 << 30) / blk);
        if (want > cap) want = cap;
    }
    if (want < per_seq)
        return sw_err_set(SW_ERANGE,
                          "kv cache: %lld blocks of %d tokens (%.1f MiB) cannot hold "
                          "one sequence of max_model_len %lld tokens: raise the cache budget or "
                          "lower max_model_len",
                          (long long)want, e->bs, (double)want * (double)blk / 1048576.0,
                          (long long)e->max_model_len);
    *num_blocks = want;
    return 0;
}

static int alloc_step_arrays(struct sw_engine *e) {
    int64_t T = e->max_batched, S = e->max_num_seqs + 1;
    e->ids = malloc((size_t)T * sizeof(int32_t));
    e->pos = malloc((size_t)T * sizeof(int32_t));
    e->slots = malloc((size_t)T * sizeof(int32_t));
    e->lrows = malloc((size_t)(S + e->plp_cap) * sizeof(int32_t));
    e->cu = malloc((size_t)(S + 1) * sizeof(int32_t));
    e->lens = malloc((size_t)S * sizeof(int32_t));
    e->bt = malloc((size_t)(S * e->max_blocks_per_seq) * sizeof(int32_t));
    e->lora = malloc((size_t)S * sizeof(*e->lora));
    e->sched = malloc((size_t)S * sizeof(*e->sched));
    e->logits_rows = S + e->plp_cap;
    e->logits = malloc((size_t)(e->logits_rows * e->V) * sizeof(float));
    e->n_samplers = omp_get_max_threads();
    if (e->n_samplers < 1) e->n_samplers = 1;
    e->rows = malloc((size_t)e->n_samplers * (size_t)e->V * sizeof(float));
    e->samplers = calloc((size_t)e->n_samplers, sizeof(*e->samplers));
    e->running = malloc((size_t)S * sizeof(*e->running));
    e->running_cap = (int)S;
    if (!e->ids || !e->pos || !e->slots || !e->lrows || !e->cu || !e->lens || !e->bt || !e->lora ||
        !e->sched || !e->logits || !e->rows || !e->samplers || !e->running)
        return sw_err_set(SW_ENOMEM, "engine: out of memory for the step buffers");
    for (int i = 0; i < e->n_samplers; i++)
        SW_TRY(sw_sampler_init(&e->samplers[i], e->V));
    return 0;
}

static char *basename_dup(const char *dir) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    size_t b = n;
    while (b > 0 && dir[b - 1] != '/')
        b--;
    char *s = malloc(n - b + 1);
    if (s) memcpy(s, dir + b, n - b), s[n - b] = 0;
    return s;
}

/* opts.model: generate with the caller's model. Its shape must be model_dir's (the tokenizer,
 * generation_config and cache sizing come from there). */
static int borrow_model(struct sw_engine *e, const struct sw_engine_opts *o) {
    const struct sw_model_config *a = sw_model_config_get(o->model), *c = &e->hf->config;
    if (a->arch != c->arch || a->vocab_size != c->vocab_size || a->hidden_size != c->hidden_size ||
        a->num_hidden_layers != c->num_hidden_layers ||
        a->num_key_value_heads != c->num_key_value_heads || a->head_dim != c->head_dim)
        return sw_err_set(SW_EINVAL,
                          "engine: the given model does not match %s/config.json (%s, vocab %lld, "
                          "hidden %lld, %lld layers)",
                          o->model_dir, c->model_type, (long long)c->vocab_size,
                          (long long)c->hidden_size, (long long)c->num_hidden_layers);
    if (o->n_adapters > 0)
        return sw_err_set(SW_EINVAL, "engine: a borrowed model serves its own LoRA; no adapters");
    e->model = o->model;
    e->be = sw_model_backend(o->model);
    e->model_borrowed = 1;
    return 0;
}

int sw_engine_open(const struct sw_engine_opts *o, struct sw_engine **out) {
    *out = NULL;
    if (!o->model_dir) return sw_err_set(SW_EINVAL, "engine: model_dir is required");
    if (o->block_size < 0 || o->max_num_seqs < 0 || o->max_model_len < 0 ||
        o->max_num_batched_tokens < 0 || o->kv_cache_bytes < 0 || o->gpu_memory_utilization < 0 ||
        o->gpu_memory_utilization > 1)
        return sw_err_set(SW_EINVAL, "engine: negative size option (or gpu_memory_utilization "
                                     "outside [0, 1])");
    struct sw_engine *e = calloc(1, sizeof(*e));
    if (!e) return sw_err_set(SW_ENOMEM, "out of memory");
    e->opts = *o;
    pthread_mutex_init(&e->mu, NULL);
    pthread_mutex_init(&e->step_mu, NULL);
    pthread_cond_init(&e->work_cv, NULL);
    pthread_cond_init(&e->done_cv, NULL);
    e->drain_deadline_ms = -1;
    int rc = 0;
    e->model_dir = strdup(o->model_dir);
    e->model_name = basename_dup(o->model_dir);
    if (!e->model_dir || !e->model_name) {
        rc = sw_err_set(SW_ENOMEM, "out of memory");
        goto fail;
    }
    e->opts.model_dir = e->model_dir;
    e->opts.adapters = NULL;
    e->opts.tokenizer = e->opts.template_name = NULL;
    SW_TRY_GOTO(rc, sw_hfmodel_open(o->model_dir, &e->hf), fail);
    rc = sw_tokenizer_load(o->tokenizer ? o->tokenizer : o->model_dir, &e->tok);
    if (rc < 0) {
        sw_err_wrap(rc, "tokenizer");
        goto fail;
    }
    if (o->template_name) {
        if (!(e->tpl = sw_template_get(o->template_name))) {
            rc = sw_err_set(SW_EINVAL, "unknown chat template '%s' (%s)", o->template_name,
                            sw_template_names());
            goto fail;
        }
    } else {
        e->tpl = sw_template_detect(sw_tokenizer_chat_template(e->tok));
    }
    if (o->model) {
        SW_TRY_GOTO(rc, borrow_model(e, o), fail);
    } else {
        SW_TRY_GOTO(rc, sw_backend_open(o->device, &e->be), fail);
        rc = sw_model_new(&e->hf->config, e->be, &e->model);
        if (rc < 0) {
            sw_err_wrap(rc, "%s/config.json", o->model_dir);
            goto fail;
        }
        SW_TRY_GOTO(rc, sw_model_load(e->model, e->hf->weights), fail);
        sw_model_set_training(e->model, 0);
    }
    const struct sw_model_config *c = &e->hf->config;
    e->V = c->vocab_size;
    e->bs = o->block_size > 0 ? o->block_size : 16;
    e->max_num_seqs = o->max_num_seqs > 0 ? o->max_num_seqs : 256;
    e->max_loras = o->max_loras > 0 ? o->max_loras : 8;
    if (e->max_loras < o->n_adapters) e->max_loras = o->n_adapters;
    e->max_model_len = o->max_model_len > 0             ? o->max_model_len
                       : c->max_position_embeddings > 0 ? c->max_position_embeddings
                                                        : 2048;
    e->max_batched = o->max_num_batched_tokens > 0
                         ? o->max_num_batched_tokens
                         : (e->max_num_seqs > 2048 ? e->max_num_seqs : 2048);
    if (e->max_batched < e->max_num_seqs) e->max_batched = e->max_num_seqs;
    /* prompt-logprob rows per step: ~64 MiB of host logits */
    e->plp_cap = ((int64_t)64 << 20) / (4 * e->V);
    if (e->plp_cap < 16) e->plp_cap = 16;
    if (e->plp_cap > e->max_batched) e->plp_cap = e->max_batched;
    e->max_blocks_per_seq = (e->max_model_len + e->bs - 1) / e->bs;
    resolve_eos(e);
    int64_t nb = 0;
    /* adapters first: their memory comes out of the cache's budget */
    for (int i = 0; i < o->n_adapters; i++)
        SW_TRY_GOTO(rc, adapter_load(e, o->adapters[i].name, o->adapters[i].path), fail);
    SW_TRY_GOTO(rc, size_cache(e, &nb), fail);
    SW_TRY_GOTO(rc, sw_kv_cache_init(&e->kv, e->be, c, nb, e->bs), fail);
    SW_TRY_GOTO(rc, sw_kv_blocks_new(nb, e->bs, o->enable_prefix_caching, &e->bm), fail);
    SW_TRY_GOTO(rc, alloc_step_arrays(e), fail);
    pthread_mutex_lock(&e->mu);
    e->st.kv_blocks_total = nb;
    e->st.block_size = e->bs;
    pthread_mutex_unlock(&e->mu);
    sw_debug("engine: %s on %s, %lld KV blocks of %d tokens (%.1f MiB), max_model_len %lld, "
             "max_num_seqs %d, max_num_batched_tokens %lld, prefix caching %s",
             e->model_name, e->be->name, (long long)nb, e->bs,
             (double)nb * (double)sw_kv_cache_block_bytes(c, e->bs) / 1048576.0,
             (long long)e->max_model_len, e->max_num_seqs, (long long)e->max_batched,
             o->enable_prefix_caching ? "on" : "off");
    *out = e;
    return 0;
fail:
    sw_engine_close(e);
    return rc;
}

void sw_engine_close(struct sw_engine *e) {
    if (!e) return;
    if (e->thread_running) sw_engine_stop(e, 0);
    pthread_mutex_lock(&e->step_mu);
    if (e->bm) sw_engine_abort_all_locked(e, SW_FINISH_ABORT, NULL);
    pthread_mutex_unlock(&e->step_mu);
    for (int i = 0; i < e->n_adapters; i++)
        adapter_free(e->adapters[i]);
    free(e->adapters);
    free(e->waiting), free(e->running), free(e->reqs), free(e->aborts);
    free(e->ids), free(e->pos), free(e->slots), free(e->lrows), free(e->cu), free(e->lens);
    free(e->bt), free(e->lora), free(e->sched), free(e->logits), free(e->rows);
    for (int i = 0; e->samplers && i < e->n_samplers; i++)
        sw_sampler_release(&e->samplers[i]);
    free(e->samplers);
    sw_kv_blocks_free(e->bm);
    if (e->be) sw_kv_cache_release(&e->kv, e->be);
    if (!e->model_borrowed) {
        sw_model_free(e->model);
        sw_backend_close(e->be);
    }
    sw_tokenizer_free(e->tok);
    sw_hfmodel_close(e->hf);
    free(e->model_dir), free(e->model_name);
    pthread_mutex_destroy(&e->mu);
    pthread_mutex_destroy(&e->step_mu);
    pthread_cond_destroy(&e->work_cv);
    pthread_cond_destroy(&e->done_cv);
    free(e);
}

/* ---- requests ----------------------------------------------------------------------------- */

void sw_engine_req_free(struct eng_req *r) {
    if (!r) return;
    for (int i = 0; i < r->n_seqs; i++) {
        struct eng_seq *s = r->seqs[i];
        if (!s) continue;
        sw_detok_release(&s->detok);
        free(s->tokens), free(s->blocks), free(s->hashes), free(s);
    }
    for (int i = 0; r->stop && i < r->p.n_stop; i++)
        free(r->stop[i]);
    free(r->stop), free(r->stop_ids), free(r->banned), free(r->prompt), free(r->seqs);
    free(r->plp), free(r->plp_top);
    free(r);
}

struct eng_seq *sw_engine_seq_new(struct sw_engine *e, struct eng_req *r, int index) {
    struct eng_seq *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->req = r;
    s->index = index;
    s->cap = r->n_prompt + 16;
    s->tokens = malloc((size_t)s->cap * sizeof(int32_t));
    if (!s->tokens) {
        free(s);
        return NULL;
    }
    memcpy(s->tokens, r->prompt, (size_t)r->n_prompt * sizeof(int32_t));
    s->n_tokens = r->n_prompt;
    s->stop_token = -1;
    s->stop_str = -1;
    sw_detok_init(&s->detok, e->tok, r->p.skip_special_tokens, r->n_prompt, r->p.stop, r->p.n_stop,
                  r->p.include_stop_str_in_output);
    return s;
}

/* Deep copy of params and the per-request arrays. */
static int req_build(struct sw_engine *e, struct eng_req *r, const int32_t *prompt, int64_t n,
                     const struct sw_sampling_params *p) {
    r->p = *p;
    r->prompt = malloc((size_t)n * sizeof(int32_t));
    r->seqs = calloc((size_t)p->n, sizeof(*r->seqs));
    if (!r->prompt || !r->seqs) return sw_err_set(SW_ENOMEM, "out of memory");
    memcpy(r->prompt, prompt, (size_t)n * sizeof(int32_t));
    r->n_prompt = n;
    r->p.stop = NULL;
    r->p.stop_token_ids = NULL;
    if (p->n_stop > 0) {
        r->stop = calloc((size_t)p->n_stop, sizeof(char *));
        if (!r->stop) return sw_err_set(SW_ENOMEM, "out of memory");
        for (int i = 0; i < p->n_stop; i++)
            if (!(r->stop[i] = strdup(p->stop[i]))) return sw_err_set(SW_ENOMEM, "out of memory");
        r->p.stop = (const char *const *)r->stop;
    }
    r->banned = malloc((size_t)(p->n_stop_token_ids + e->n_eos + 1) * sizeof(int32_t));
    if (!r->banned) return sw_err_set(SW_ENOMEM, "out of memory");
    if (p->n_stop_token_ids > 0) {
        r->stop_ids = malloc((size_t)p->n_stop_token_ids * sizeof(int32_t));
        if (!r->stop_ids) return sw_err_set(SW_ENOMEM, "out of memory");
        memcpy(r->stop_ids, p->stop_token_ids, (size_t)p->n_stop_token_ids * sizeof(int32_t));
        r->p.stop_token_ids = r->stop_ids;
        memcpy(r->banned, r->stop_ids, (size_t)p->n_stop_token_ids * sizeof(int32_t));
        r->n_banned = p->n_stop_token_ids;
    }
    if (!p->ignore_eos)
        for (int i = 0; i < e->n_eos; i++)
            r->banned[r->n_banned++] = e->eos[i];
    int64_t room = e->max_model_len - n;
    r->max_tokens = p->max_tokens < 0 || p->max_tokens > room ? room : p->max_tokens;
    if (!(r->seqs[0] = sw_engine_seq_new(e, r, 0))) return sw_err_set(SW_ENOMEM, "out of memory");
    r->n_seqs = 1;
    return 0;
}

int sw_engine_submit_ex(struct sw_engine *e, const int32_t *prompt, int64_t n_prompt,
                        const struct sw_sampling_params *p, const char *adapter, sw_engine_cb cb,
                        void *user, int64_t plp_from, int no_queue_limit, uint64_t *id) {
    if (id) *id = 0;
    if (!p || !cb) return sw_err_set(SW_EINVAL, "submit: params and a callback are required");
    if (n_prompt < 1 || !prompt) return sw_err_set(SW_EINVAL, "submit: the prompt is empty");
    SW_TRY(sw_sampling_params_check(p));
    if (n_prompt + (p->max_tokens == 0 ? 0 : 1) > e->max_model_len)
        return sw_err_set(SW_ERANGE,
                          "submit: the prompt has %lld tokens; with the output that "
                          "exceeds max_model_len %lld",
                          (long long)n_prompt, (long long)e->max_model_len);
    for (int64_t i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= e->V)
            return sw_err_set(SW_EINVAL,
                              "submit: prompt token %lld is %d, outside the "
                              "vocabulary [0, %lld)",
                              (long long)i, (int)prompt[i], (long long)e->V);
    for (int i = 0; i < p->n_stop_token_ids; i++)
        if (p->stop_token_ids[i] < 0 || p->stop_token_ids[i] >= e->V)
            return sw_err_set(SW_EINVAL, "submit: stop_token_ids[%d] = %d outside the vocabulary",
                              i, (int)p->stop_token_ids[i]);
    if (p->n > e->max_num_seqs)
        return sw_err_set(SW_EINVAL, "submit: n = %d exceeds max_num_seqs %d", p->n,
                          e->max_num_seqs);
    struct eng_req *r = calloc(1, sizeof(*r));
    if (!r) return sw_err_set(SW_ENOMEM, "out of memory");
    int rc = req_build(e, r, prompt, n_prompt, p);
    if (rc < 0) {
        sw_engine_req_free(r);
        return rc;
    }
    r->cb = cb;
    r->user = user;
    if (plp_from >= 0) {
        r->want_plp = 1;
        r->plp_from = plp_from < n_prompt - 1 ? plp_from : n_prompt - 1;
    } else if (p->prompt_logprobs >= 0) {
        r->want_plp = 1;
        r->plp_from = 0;
    }
    if (r->want_plp) {
        int64_t ne = n_prompt - 1 - r->plp_from;
        int k = p->prompt_logprobs > 0 ? p->prompt_logprobs : 0;
        r->plp = calloc((size_t)(ne > 0 ? ne : 1), sizeof(*r->plp));
        r->plp_top = calloc((size_t)((ne > 0 ? ne : 1) * (k > 0 ? k : 1)), sizeof(*r->plp_top));
        if (!r->plp || !r->plp_top) {
            sw_engine_req_free(r);
            return sw_err_set(SW_ENOMEM, "out of memory for prompt logprobs");
        }
    }
    pthread_mutex_lock(&e->mu);
    if (e->stopping)
        rc = sw_err_set(SW_ESTATE, "submit: the engine is shutting down");
    else if (!no_queue_limit && e->opts.max_waiting > 0 &&
             e->n_intake + e->st.waiting >= e->opts.max_waiting)
        rc = sw_err_set(SW_EBUSY, "submit: %d requests are waiting already (max_waiting)",
                        e->opts.max_waiting);
    if (rc == 0 && adapter && *adapter && strcmp(adapter, e->model_name) != 0) {
        for (int i = 0; i < e->n_adapters && !r->ad; i++)
            if (strcmp(e->adapters[i]->name, adapter) == 0) r->ad = e->adapters[i];
        if (!r->ad) rc = sw_err_set(SW_ENOTFOUND, "submit: no adapter '%s'", adapter);
    }
    if (rc == 0) {
        if (r->ad) r->ad->users++;
        r->id = ++e->next_id;
        r->seed = p->has_seed ? p->seed : e->opts.seed + r->id;
        if (e->intake_tail)
            e->intake_tail->next = r;
        else
            e->intake_head = r;
        e->intake_tail = r;
        e->n_intake++;
        e->n_unfinished_reqs++;
        e->st.requests_submitted++;
        if (id) *id = r->id;
        pthread_cond_broadcast(&e->work_cv);
    }
    pthread_mutex_unlock(&e->mu);
    if (rc < 0) sw_engine_req_free(r);
    return rc;
}

int sw_engine_submit(struct sw_engine *e, const int32_t *prompt, int64_t n_prompt,
                     const struct sw_sampling_params *p, const char *adapter, sw_engine_cb cb,
                     void *user, uint64_t *id) {
    return sw_engine_submit_ex(e, prompt, n_prompt, p, adapter, cb, user, -1, 0, id);
}

int sw_engine_abort(struct sw_engine *e, uint64_t id) {
    pthread_mutex_lock(&e->mu);
    int rc = 0;
    if (id == 0 || id > e->next_id) {
        rc = sw_err_set(SW_ENOTFOUND, "abort: no request %llu", (unsigned long long)id);
    } else {
        if (e->n_aborts == e->aborts_cap) {
            int cap = e->aborts_cap ? 2 * e->aborts_cap : 16;
            uint64_t *na = realloc(e->aborts, (size_t)cap * sizeof(*na));
            if (!na)
                rc = sw_err_set(SW_ENOMEM, "out of memory");
            else
                e->aborts = na, e->aborts_cap = cap;
        }
        if (rc == 0) {
            e->aborts[e->n_aborts++] = id;
            pthread_cond_broadcast(&e->work_cv);
        }
    }
    pthread_mutex_unlock(&e->mu);
    return rc;
}

void sw_engine_stats(struct sw_engine *e, struct sw_engine_stats *s) {
    pthread_mutex_lock(&e->mu);
    *s = e->st;
    pthread_mutex_unlock(&e->mu);
}

/* ---- driving ------------------------------------------------------------------------------ */

int sw_engine_step(struct sw_engine *e) {
    pthread_mutex_lock(&e->step_mu);
    int rc = sw_engine_step_locked(e);
    pthread_mutex_unlock(&e->step_mu);
    return rc;
}

static int has_work_locked(const struct sw_engine *e) {
    return e->n_unfinished_reqs > 0 || e->n_aborts > 0;
}

static void *loop_main(void *arg) {
    struct sw_engine *e = arg;
    int rc = 0;
    sw_parallel_thread_init(); /* the kernels this thread runs take SW_NUM_THREADS */
    for (;;) {
        pthread_mutex_lock(&e->mu);
        while (!e->thread_quit && !has_work_locked(e))
            pthread_cond_wait(&e->work_cv, &e->mu);
        int quit = e->thread_quit;
        int expired = e->drain_deadline_ms >= 0 && sw_engine_now_ms() >= e->drain_deadline_ms;
        int work = has_work_locked(e);
        pthread_mutex_unlock(&e->mu);
        if (quit && (!work || expired)) break;
        int r = sw_engine_step(e);
        if (r < 0) {
            sw_warn("engine step failed: %s", sw_err_msg());
            rc = r;
        }
    }
    pthread_mutex_lock(&e->step_mu);
    sw_engine_abort_all_locked(e, SW_FINISH_ABORT, NULL);
    pthread_mutex_unlock(&e->step_mu);
    pthread_mutex_lock(&e->mu);
    e->thread_rc = rc;
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

int sw_engine_start(struct sw_engine *e) {
    pthread_mutex_lock(&e->mu);
    int rc = 0;
    if (e->thread_running)
        rc = sw_err_set(SW_ESTATE, "engine: the loop is already running");
    else {
        e->thread_quit = 0;
        e->stopping = 0;
        e->drain_deadline_ms = -1;
        int err = pthread_create(&e->thread, NULL, loop_main, e);
        if (err)
            rc = sw_err_set(SW_ENOMEM, "engine: cannot start the loop thread: %s", strerror(err));
        else
            e->thread_running = 1;
    }
    pthread_mutex_unlock(&e->mu);
    return rc;
}

int sw_engine_stop(struct sw_engine *e, int64_t drain_ms) {
    pthread_mutex_lock(&e->mu);
    e->stopping = 1;
    e->drain_deadline_ms = drain_ms < 0 ? -1 : sw_engine_now_ms() + drain_ms;
    int running = e->thread_running;
    if (running) {
        e->thread_quit = 1;
        pthread_cond_broadcast(&e->work_cv);
    }
    pthread_mutex_unlock(&e->mu);
    if (running) {
        pthread_join(e->thread, NULL);
        pthread_mutex_lock(&e->mu);
        e->thread_running = 0;
        int rc = e->thread_rc;
        pthread_mutex_unlock(&e->mu);
        return rc;
    }
    /* no loop: drain here */
    int rc = 0;
    for (;;) {
        pthread_mutex_lock(&e->mu);
        int work = has_work_locked(e);
        int expired = e->drain_deadline_ms >= 0 && sw_engine_now_ms() >= e->drain_deadline_ms;
        pthread_mutex_unlock(&e->mu);
        if (!work || expired) break;
        if ((rc = sw_engine_step(e)) < 0) break;
    }
    pthread_mutex_lock(&e->step_mu);
    sw_engine_abort_all_locked(e, SW_FINISH_ABORT, NULL);
    pthread_mutex_unlock(&e->step_mu);
    return rc < 0 ? rc : 0;
}

void sw_engine_weights_changed(struct sw_engine *e) {
    pthread_mutex_lock(&e->step_mu);
    sw_kv_blocks_reset_cache(e->bm);
    pthread_mutex_unlock(&e->step_mu);
}
