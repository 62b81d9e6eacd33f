/* sw_bench_run — one benchmark run: tasks loaded, requests answered by a backend (only those the
 * run cache does not hold), items scored, and the outputs written:
 *
 *   OUT/report.json         {"tasks": {"<task>": {metric, metric_stderr, n, subjects, groups}},
 *                            "config": {...}} (atomically)
 *   OUT/samples_<task>.jsonl one line per item: subject, index (row of the test file from 0),
 *                            prompt, target, pred, per-choice log-likelihoods, score (atomically)
 *   OUT/cache.jsonl          the run cache: one line per answered request, keyed by SHA-256 of
 *                            (backend identity, request); appended and flushed as results
 *                            arrive, so an interrupted run resumes without redoing them
 *   stdout                   a Markdown table
 *
 * Aggregation as lm-eval reports it: a task's metric is the mean over its items (for MMLU,
 * C-Eval, CMMLU: weighted by subject size, i.e. the micro average), stderr is the sample
 * stddev / sqrt(n) per subject and pooled (pooled_sample_stderr) for the whole; the macro
 * average (mean of the subjects) is reported beside it as acc_macro. */
#include "sw_bench.h"

#include "sw_err.h"
#include "sw_io.h"
#include "sw_log.h"
#include "sw_sha256.h"
#include "sw_strmap.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the run cache ------------------------------------------------------------------------- */

struct cache {
    struct sw_strmap *map; /* key hex → index in vals */
    json_t **vals;
    size_t n, cap;
    FILE *fp; /* append */
    char *path;
};

static void key_of(const char *identity, const char *kind, const char *a, const char *b,
                   const char *c, char hex[65]) {
    struct sw_sha256 h;
    uint8_t d[32];
    memset(d, 0, sizeof d);
    const char *parts[5] = {identity, kind, a, b ? b : "", c ? c : ""};
    if (sw_sha256_init(&h) == 0) {
        for (int i = 0; i < 5; i++)
            sw_sha256_update(&h, parts[i], strlen(parts[i]) + 1);
        sw_sha256_final(&h, d);
    }
    sw_sha256_release(&h);
    sw_hex(d, 32, hex);
    hex[64] = '\0';
}

static int cache_put_mem(struct cache *c, const char *k, json_t *v) {
    if (c->n == c->cap) {
        size_t nc = c->cap ? 2 * c->cap : 1024;
        json_t **p = realloc(c->vals, nc * sizeof(*p));
        if (!p) return sw_err_set(SW_ENOMEM, "out of memory");
        c->vals = p, c->cap = nc;
    }
    int64_t old;
    if (sw_strmap_get(c->map, k, 64, &old)) {
        json_decref(c->vals[old]);
        c->vals[old] = v;
        return 0;
    }
    SW_TRY(sw_strmap_put(c->map, k, 64, (int64_t)c->n));
    c->vals[c->n++] = v;
    return 0;
}

static int cache_open(struct cache *c, const char *out_dir, int use) {
    memset(c, 0, sizeof *c);
    c->map = sw_strmap_new(4096);
    if (!c->map) return sw_err_set(SW_ENOMEM, "out of memory");
    if (!use) return 0;
    c->path = sw_path_join(out_dir, "cache.jsonl");
    if (!c->path) return sw_err_set(SW_ENOMEM, "out of memory");
    FILE *in = fopen(c->path, "r");
    size_t loaded = 0;
    if (in) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t l;
        while ((l = getline(&line, &cap, in)) > 0) {
            /* a line cut by a crash does not parse: it is simply recomputed */
            json_t *o = json_loadb(line, (size_t)l, 0, NULL);
            const char *k = json_string_value(json_object_get(o, "k"));
            if (!k || strlen(k) != 64) {
                json_decref(o);
                continue;
            }
            char key[65];
            memcpy(key, k, 65);
            int rc = cache_put_mem(c, key, o);
            if (rc < 0) {
                json_decref(o);
                free(line);
                fclose(in);
                return rc;
            }
            loaded++;
        }
        free(line);
        fclose(in);
    }
    c->fp = fopen(c->path, "a");
    if (!c->fp) return sw_err_errno("cannot open the run cache '%s'", c->path);
    if (loaded) sw_info("run cache %s: %zu results from an earlier run", c->path, loaded);
    return 0;
}

static void cache_close(struct cache *c) {
    if (c->fp) fclose(c->fp);
    for (size_t i = 0; i < c->n; i++)
        json_decref(c->vals[i]);
    free(c->vals);
    sw_strmap_free(c->map);
    free(c->path);
}

static json_t *cache_get(struct cache *c, const char *k) {
    int64_t i;
    return sw_strmap_get(c->map, k, 64, &i) ? c->vals[i] : NULL;
}

/* Add v (reference stolen) under k, and append it to the file when the cache is on. */
static int cache_add(struct cache *c, const char *k, json_t *v) {
    if (!v) return sw_err_set(SW_ENOMEM, "out of memory");
    json_object_set_new(v, "k", json_stringn(k, 64));
    if (c->fp) {
        char *s = json_dumps(v, JSON_COMPACT);
        if (!s || fprintf(c->fp, "%s\n", s) < 0) {
            free(s);
            json_decref(v);
            return sw_err_errno("cannot write the run cache '%s'", c->path);
        }
        free(s);
    }
    return cache_put_mem(c, k, v);
}

static int cache_sync(struct cache *c) {
    if (!c->fp) return 0;
    if (fflush(c->fp) != 0) return sw_err_errno("cannot write the run cache '%s'", c->path);
    fdatasync(fileno(c->fp));
    return 0;
}

/* ---- requests ------------------------------------------------------------------------------ */

struct pending {
    struct cache *cache;
    char (*keys)[65];
    /* one of: */
    struct sw_bench_ll_res *ll;
    char **text;
    struct sw_bench_roll_res *roll;
};

static int on_done(void *ctx, size_t b, size_t e) {
    struct pending *p = ctx;
    for (size_t i = b; i < e; i++) {
        json_t *v;
        if (p->ll)
            v = json_pack("{s:f,s:b,s:i}", "ll", p->ll[i].ll, "g", p->ll[i].greedy, "t",
                          p->ll[i].ntok);
        else if (p->text)
            v = json_pack("{s:s}", "text", p->text[i] ? p->text[i] : "");
        else
            v = json_pack("{s:f,s:I}", "ll", p->roll[i].ll, "n", (json_int_t)p->roll[i].ntok);
        SW_TRY(cache_add(p->cache, p->keys[i], v));
    }
    return cache_sync(p->cache);
}

/* What every item of a task needs asked: keys of its requests, in item order. */
struct task_run {
    struct sw_bench_task *t;
    char **ctx;       /* per item: the context actually sent (chat-rendered or plain) */
    char (*keys)[65]; /* MC: nitems × nchoices (offsets in koff); GEN/PPL: one per item */
    size_t *koff;
};

static void task_run_release(struct task_run *r) {
    if (r->ctx)
        for (size_t i = 0; i < r->t->nitems; i++)
            free(r->ctx[i]);
    free(r->ctx), free(r->keys), free(r->koff);
    sw_bench_task_free(r->t);
}

static char *gen_params(const struct sw_bench_task *t) {
    json_t *u = json_array();
    for (int i = 0; i < t->nuntil; i++)
        json_array_append_new(u, json_string(t->until[i]));
    json_t *o = json_pack("{s:o,s:I}", "until", u, "max_gen_toks", (json_int_t)t->max_gen_toks);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    return s;
}

static int prepare(struct task_run *r, struct sw_bench_backend *be, int chat) {
    struct sw_bench_task *t = r->t;
    r->ctx = calloc(t->nitems, sizeof(char *));
    r->koff = calloc(t->nitems + 1, sizeof(size_t));
    if (!r->ctx || !r->koff) return sw_err_set(SW_ENOMEM, "out of memory");
    size_t nk = 0;
    for (size_t i = 0; i < t->nitems; i++) {
        r->koff[i] = nk;
        nk += t->kind == SW_BENCH_MC ? (size_t)t->items[i].nchoices : 1;
    }
    r->koff[t->nitems] = nk;
    r->keys = malloc((nk ? nk : 1) * sizeof(*r->keys));
    if (!r->keys) return sw_err_set(SW_ENOMEM, "out of memory");
    char *gp = t->kind == SW_BENCH_GEN ? gen_params(t) : NULL;
    char pp[64];
    snprintf(pp, sizeof pp, "%lld/%lld", (long long)t->ppl_max_length, (long long)t->ppl_stride);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < t->nitems; i++) {
        struct sw_bench_item *it = &t->items[i];
        if (t->kind == SW_BENCH_PPL) {
            r->ctx[i] = strdup("");
            key_of(be->identity, "rolling", it->target, pp, NULL, r->keys[r->koff[i]]);
        } else if (chat && be->chat_render) {
            rc = be->chat_render(be, it->system, it->user, &r->ctx[i]);
        } else if (chat && t->kind == SW_BENCH_MC) {
            rc = sw_err_set(SW_EUNSUPPORTED,
                            "%s: --apply_chat_template with log-likelihood "
                            "tasks needs the template on this side (give the tokenizer's model "
                            "folder, or run without it)",
                            t->name);
        } else {
            r->ctx[i] = strdup(it->prompt);
        }
        if (rc == 0 && !r->ctx[i]) rc = sw_err_set(SW_ENOMEM, "out of memory");
        if (rc < 0) break;
        if (t->kind == SW_BENCH_MC) {
            for (int c = 0; c < it->nchoices; c++) {
                /* lm-eval: no target delimiter after a chat template's generation prompt */
                const char *cont = chat ? it->choices[c] : it->conts[c];
                key_of(be->identity, "loglik", r->ctx[i], cont, NULL, r->keys[r->koff[i] + c]);
            }
        } else if (t->kind == SW_BENCH_GEN) {
            char chatkey[16];
            snprintf(chatkey, sizeof chatkey, "chat=%d", chat && !be->chat_render);
            key_of(be->identity, "generate", r->ctx[i], gp, chatkey, r->keys[r->koff[i]]);
        }
    }
    free(gp);
    return rc;
}

/* Ask the backend for everything missing from the cache, kind by kind. */
static int answer(struct task_run *runs, size_t nr, struct sw_bench_backend *be, int chat,
                  struct cache *cache) {
    size_t nll = 0, ngen = 0, nroll = 0;
    for (size_t k = 0; k < nr; k++) {
        struct sw_bench_task *t = runs[k].t;
        for (size_t i = 0; i < t->nitems; i++)
            for (size_t j = runs[k].koff[i]; j < runs[k].koff[i + 1]; j++) {
                if (cache_get(cache, runs[k].keys[j])) continue;
                if (t->kind == SW_BENCH_MC)
                    nll++;
                else if (t->kind == SW_BENCH_GEN)
                    ngen++;
                else
                    nroll++;
            }
    }
    size_t tot = nll + ngen + nroll;
    if (tot == 0) return 0;
    sw_info("%zu log-likelihood, %zu generation, %zu perplexity requests to answer (%s)", nll, ngen,
            nroll, be->kind);
    struct sw_bench_ll_req *llq = calloc(nll ? nll : 1, sizeof(*llq));
    struct sw_bench_ll_res *llr = calloc(nll ? nll : 1, sizeof(*llr));
    struct sw_bench_gen_req *gq = calloc(ngen ? ngen : 1, sizeof(*gq));
    char **gt = calloc(ngen ? ngen : 1, sizeof(char *));
    const char **rq = calloc(nroll ? nroll : 1, sizeof(char *));
    struct sw_bench_roll_res *rr = calloc(nroll ? nroll : 1, sizeof(*rr));
    char(*kll)[65] = malloc((nll ? nll : 1) * 65), (*kg)[65] = malloc((ngen ? ngen : 1) * 65),
    (*kr)[65] = malloc((nroll ? nroll : 1) * 65);
    int64_t roll_ml = 0, roll_stride = 0;
    int rc = 0;
    if (!llq || !llr || !gq || !gt || !rq || !rr || !kll || !kg || !kr) {
        rc = sw_err_set(SW_ENOMEM, "out of memory");
        goto out;
    }
    size_t a = 0, g = 0, p = 0;
    /* identical requests (the same few-shot question asked twice) are asked once */
    struct sw_strmap *seen = sw_strmap_new(tot * 2 + 16);
    if (!seen) {
        rc = sw_err_set(SW_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t k = 0; k < nr; k++) {
        struct sw_bench_task *t = runs[k].t;
        for (size_t i = 0; i < t->nitems; i++)
            for (size_t j = runs[k].koff[i]; j < runs[k].koff[i + 1]; j++) {
                const char *key = runs[k].keys[j];
                int64_t dummy;
                if (cache_get(cache, key) || sw_strmap_get(seen, key, 64, &dummy)) continue;
                sw_strmap_put(seen, key, 64, 1);
                struct sw_bench_item *it = &t->items[i];
                if (t->kind == SW_BENCH_MC) {
                    int c = (int)(j - runs[k].koff[i]);
                    llq[a] = (struct sw_bench_ll_req){runs[k].ctx[i],
                                                      chat ? it->choices[c] : it->conts[c]};
                    memcpy(kll[a++], key, 65);
                } else if (t->kind == SW_BENCH_GEN) {
                    gq[g] = (struct sw_bench_gen_req){runs[k].ctx[i], it->system,
                                                      it->user,       (const char *const *)t->until,
                                                      t->nuntil,      t->max_gen_toks};
                    memcpy(kg[g++], key, 65);
                } else {
                    rq[p] = it->target;
                    roll_ml = t->ppl_max_length, roll_stride = t->ppl_stride;
                    memcpy(kr[p++], key, 65);
                }
            }
    }
    sw_strmap_free(seen);
    if (a) {
        struct pending pd = {cache, kll, llr, NULL, NULL};
        rc = be->loglik(be, llq, a, llr, on_done, &pd);
    }
    if (rc == 0 && g) {
        if (!be->generate)
            rc = sw_err_set(SW_EUNSUPPORTED, "%s backend cannot generate", be->kind);
        else {
            struct pending pd = {cache, kg, NULL, gt, NULL};
            rc = be->generate(be, gq, g, gt, on_done, &pd);
        }
    }
    if (rc == 0 && p) {
        if (!be->rolling)
            rc = sw_err_set(SW_EUNSUPPORTED,
                            "perplexity needs token-level log-likelihoods: the "
                            "%s backend cannot give them",
                            be->kind);
        else {
            struct pending pd = {cache, kr, NULL, NULL, rr};
            rc = be->rolling(be, rq, p, roll_ml, roll_stride, rr, on_done, &pd);
        }
    }
out:
    for (size_t i = 0; gt && i < ngen; i++)
        free(gt[i]);
    free(llq), free(llr), free(gq), free(gt), free(rq), free(rr), free(kll), free(kg), free(kr);
    return rc;
}

/* ---- scoring ------------------------------------------------------------------------------- */

/* Characters of a UTF-8 string (Python's len()). */
static size_t u8len(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

static size_t count_words(const char *s) {
    /* len(re.split(r"\s+", doc)) */
    size_t n = 1;
    const char *p = s;
    while (*p) {
        if (*p == ' ' || (*p >= 9 && *p <= 13)) {
            n++;
            while (*p == ' ' || (*p >= 9 && *p <= 13))
                p++;
        } else
            p++;
    }
    return n;
}

struct metric {
    const char *name;
    double *x; /* per item */
};

struct agg {
    double mean, se, n;
};

static void agg_of(const double *x, const int *subj, size_t n, int s, struct agg *a) {
    double *tmp = malloc((n ? n : 1) * sizeof(double));
    size_t k = 0;
    for (size_t i = 0; tmp && i < n; i++)
        if (s < 0 || subj[i] == s) tmp[k++] = x[i];
    sw_bench_mean_stderr(tmp, k, &a->mean, &a->se);
    a->n = (double)k;
    free(tmp);
}

static json_t *num(double x) {
    return isfinite(x) ? json_real(x) : json_null();
}

/* Score one task: writes OUT/samples_<task>.jsonl and fills *report. */
static int score_task(struct task_run *r, struct cache *cache, int chat, const char *out_dir,
                      json_t *report, FILE *md) {
    struct sw_bench_task *t = r->t;
    size_t n = t->nitems;
    int nm = t->kind == SW_BENCH_MC ? 1 + t->has_acc_norm : t->kind == SW_BENCH_GEN ? 2 : 0;
    if (t->kind == SW_BENCH_GEN && t->gen_metric == SW_GEN_EXACT) nm = 1;
    double *mx[2] = {calloc(n ? n : 1, sizeof(double)), calloc(n ? n : 1, sizeof(double))};
    int *subj = calloc(n ? n : 1, sizeof(int));
    const char *mname[2];
    if (t->kind == SW_BENCH_MC)
        mname[0] = "acc", mname[1] = "acc_norm";
    else if (t->gen_metric == SW_GEN_GSM8K)
        mname[0] = "strict_match", mname[1] = "flexible_extract";
    else
        mname[0] = "exact_match", mname[1] = NULL;
    char fname[512];
    snprintf(fname, sizeof fname, "samples_%s.jsonl", t->name);
    for (char *c = fname; *c; c++)
        if (*c == '/') *c = '_';
    char *path = sw_path_join(out_dir, fname);
    struct sw_atomic_file af = {0};
    int rc = (!mx[0] || !mx[1] || !subj || !path) ? sw_err_set(SW_ENOMEM, "out of memory") : 0;
    if (rc == 0) rc = sw_atomic_open(&af, path);
    double ppl_ll = 0, ppl_tok = 0, ppl_bytes = 0, ppl_words = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct sw_bench_item *it = &t->items[i];
        subj[i] = it->subject;
        json_t *s = json_pack("{s:s,s:s,s:I}", "task", t->name, "subject",
                              t->subjects[it->subject].name, "index", (json_int_t)it->index);
        if (t->kind != SW_BENCH_PPL) json_object_set_new(s, "prompt", json_string(r->ctx[i]));
        json_object_set_new(s, "target", json_string(it->target ? it->target : ""));
        if (t->kind == SW_BENCH_MC) {
            json_t *lls = json_array(), *gr = json_array();
            int best = 0, bestn = 0;
            double bl = -INFINITY, bn = -INFINITY;
            for (int c = 0; c < it->nchoices; c++) {
                json_t *v = cache_get(cache, r->keys[r->koff[i] + c]);
                if (!v) {
                    rc =
                        sw_err_set(SW_ESTATE, "no result for %s item %zu choice %d", t->name, i, c);
                    break;
                }
                double ll = json_real_value(json_object_get(v, "ll"));
                json_array_append_new(lls, json_real(ll));
                json_array_append_new(gr, json_boolean(json_is_true(json_object_get(v, "g"))));
                /* np.argmax: the first maximum; acc_norm divides by the choice's length in
                 * characters (lm-eval's completion_len) */
                if (ll > bl) bl = ll, best = c;
                double ln = ll / (double)u8len(it->choices[c]);
                if (ln > bn) bn = ln, bestn = c;
            }
            mx[0][i] = best == it->gold;
            mx[1][i] = bestn == it->gold;
            json_object_set_new(s, "pred", json_string(it->choices[best]));
            json_object_set_new(s, "loglikelihoods", lls);
            json_object_set_new(s, "is_greedy", gr);
            json_object_set_new(s, "acc", json_real(mx[0][i]));
            if (t->has_acc_norm) json_object_set_new(s, "acc_norm", json_real(mx[1][i]));
        } else if (t->kind == SW_BENCH_GEN) {
            json_t *v = cache_get(cache, r->keys[r->koff[i]]);
            const char *resp = json_string_value(json_object_get(v, "text"));
            if (!resp) {
                rc = sw_err_set(SW_ESTATE, "no result for %s item %zu", t->name, i);
                json_decref(s);
                break;
            }
            json_object_set_new(s, "response", json_string(resp));
            if (t->gen_metric == SW_GEN_GSM8K) {
                char *a = NULL, *b = NULL;
                rc = sw_bench_extract_strict(resp, t->strict_regex, &a);
                if (rc == 0) rc = sw_bench_extract_flexible(resp, &b);
                if (rc == 0) {
                    mx[0][i] = sw_bench_gsm8k_match(a, it->target);
                    mx[1][i] = sw_bench_gsm8k_match(b, it->target);
                    json_object_set_new(s, "pred", json_string(a));
                    json_object_set_new(s, "pred_flexible", json_string(b));
                    json_object_set_new(s, "strict_match", json_real(mx[0][i]));
                    json_object_set_new(s, "flexible_extract", json_real(mx[1][i]));
                }
                free(a), free(b);
            } else {
                char *x = sw_bench_strip_thinking(resp);
                const char *p = x ? x : resp, *q = it->target;
                size_t pl = strlen(p), ql = strlen(q);
                sw_bench_strip(&p, &pl);
                sw_bench_strip(&q, &ql);
                mx[0][i] = pl == ql && memcmp(p, q, pl) == 0;
                json_object_set_new(s, "pred", json_stringn(p, pl));
                json_object_set_new(s, "exact_match", json_real(mx[0][i]));
                free(x);
            }
        } else {
            json_t *v = cache_get(cache, r->keys[r->koff[i]]);
            if (!v) {
                rc = sw_err_set(SW_ESTATE, "no result for %s item %zu", t->name, i);
                json_decref(s);
                break;
            }
            double ll = json_real_value(json_object_get(v, "ll"));
            double nt = (double)json_integer_value(json_object_get(v, "n"));
            double nb = (double)strlen(it->target), nw = (double)count_words(it->target);
            ppl_ll += ll, ppl_tok += nt, ppl_bytes += nb, ppl_words += nw;
            json_object_set_new(s, "loglikelihood", json_real(ll));
            json_object_set_new(s, "tokens", json_real(nt));
            json_object_set_new(s, "bytes", json_real(nb));
            json_object_set_new(s, "words", json_real(nw));
            json_object_del(s, "target");
        }
        if (rc < 0) {
            json_decref(s);
            break;
        }
        char *line = json_dumps(s, JSON_COMPACT);
        json_decref(s);
        if (!line || fprintf(af.fp, "%s\n", line) < 0) rc = sw_err_errno("cannot write '%s'", path);
        free(line);
    }
    if (rc == 0)
        rc = sw_atomic_commit(&af);
    else
        sw_atomic_abort(&af);
    json_t *tr = json_object();
    if (rc == 0 && t->kind == SW_BENCH_PPL) {
        json_object_set_new(tr, "n", json_integer((json_int_t)n));
        json_object_set_new(tr, "tokens", json_real(ppl_tok));
        json_object_set_new(tr, "token_perplexity", num(exp(-ppl_ll / ppl_tok)));
        json_object_set_new(tr, "word_perplexity", num(exp(-ppl_ll / ppl_words)));
        json_object_set_new(tr, "byte_perplexity", num(exp(-ppl_ll / ppl_bytes)));
        json_object_set_new(tr, "bits_per_byte", num(-ppl_ll / ppl_bytes / log(2.0)));
        if (md) {
            fprintf(md, "| %s | | %zu | token_perplexity | %.4f | |\n", t->name, n,
                    exp(-ppl_ll / ppl_tok));
            fprintf(md, "| %s | | %zu | byte_perplexity | %.4f | |\n", t->name, n,
                    exp(-ppl_ll / ppl_bytes));
            fprintf(md, "| %s | | %zu | bits_per_byte | %.4f | |\n", t->name, n,
                    -ppl_ll / ppl_bytes / log(2.0));
        }
    } else if (rc == 0) {
        json_object_set_new(tr, "n", json_integer((json_int_t)n));
        json_object_set_new(tr, "num_fewshot", json_integer((json_int_t)t->num_fewshot));
        json_t *subs = json_object();
        for (int m = 0; m < nm; m++) {
            struct agg all;
            double *se = malloc((t->nsubjects + 1) * sizeof(double));
            double *sn = malloc((t->nsubjects + 1) * sizeof(double));
            double macro = 0;
            for (size_t s = 0; s < t->nsubjects; s++) {
                struct agg a;
                agg_of(mx[m], subj, n, (int)s, &a);
                se[s] = a.se, sn[s] = a.n;
                macro += a.mean;
                json_t *so = json_object_get(subs, t->subjects[s].name);
                if (!so) {
                    so = json_object();
                    json_object_set_new(subs, t->subjects[s].name, so);
                    json_object_set_new(so, "n", json_integer((json_int_t)a.n));
                    if (t->subjects[s].group)
                        json_object_set_new(so, "group", json_string(t->subjects[s].group));
                }
                char k[64];
                json_object_set_new(so, mname[m], num(a.mean));
                snprintf(k, sizeof k, "%s_stderr", mname[m]);
                json_object_set_new(so, k, num(a.se));
            }
            agg_of(mx[m], subj, n, -1, &all);
            double pooled =
                t->nsubjects > 1 ? sw_bench_pooled_stderr(se, sn, t->nsubjects) : all.se;
            char k[64];
            json_object_set_new(tr, mname[m], num(all.mean));
            snprintf(k, sizeof k, "%s_stderr", mname[m]);
            json_object_set_new(tr, k, num(pooled));
            if (t->nsubjects > 1) {
                snprintf(k, sizeof k, "%s_macro", mname[m]);
                json_object_set_new(tr, k, num(macro / (double)t->nsubjects));
            }
            if (md)
                fprintf(md, "| %s | | %zu | %s | %.4f | %.4f |\n", t->name, n, mname[m], all.mean,
                        pooled);
            /* groups (MMLU categories), micro averages with pooled stderr */
            json_t *groups = json_object_get(tr, "groups");
            for (size_t s = 0; s < t->nsubjects; s++) {
                const char *gname = t->subjects[s].group;
                if (!gname) continue;
                int first = 1;
                for (size_t u = 0; u < s; u++)
                    if (t->subjects[u].group && !strcmp(t->subjects[u].group, gname)) first = 0;
                if (!first) continue;
                double gs = 0, gn = 0, gse[128], gsn[128];
                size_t gk = 0;
                for (size_t u = s; u < t->nsubjects && gk < 128; u++)
                    if (t->subjects[u].group && !strcmp(t->subjects[u].group, gname)) {
                        struct agg a;
                        agg_of(mx[m], subj, n, (int)u, &a);
                        gs += a.mean * a.n, gn += a.n;
                        gse[gk] = a.se, gsn[gk++] = a.n;
                    }
                if (!groups) {
                    groups = json_object();
                    json_object_set_new(tr, "groups", groups);
                }
                json_t *go = json_object_get(groups, gname);
                if (!go) {
                    go = json_object();
                    json_object_set_new(groups, gname, go);
                    json_object_set_new(go, "n", json_integer((json_int_t)gn));
                }
                double gp = gk > 1 ? sw_bench_pooled_stderr(gse, gsn, gk) : gse[0];
                json_object_set_new(go, mname[m], num(gn > 0 ? gs / gn : NAN));
                snprintf(k, sizeof k, "%s_stderr", mname[m]);
                json_object_set_new(go, k, num(gp));
                if (md)
                    fprintf(md, "| %s | %s | %.0f | %s | %.4f | %.4f |\n", t->name, gname, gn,
                            mname[m], gn > 0 ? gs / gn : NAN, gp);
            }
            free(se), free(sn);
        }
        if (md && t->nsubjects > 1)
            for (size_t s = 0; s < t->nsubjects; s++) {
                json_t *so = json_object_get(subs, t->subjects[s].name);
                for (int m = 0; m < nm; m++) {
                    char k[64];
                    snprintf(k, sizeof k, "%s_stderr", mname[m]);
                    double v = json_number_value(json_object_get(so, mname[m]));
                    json_t *e = json_object_get(so, k);
                    fprintf(md, "| %s | %s | %lld | %s | %.4f | ", t->name, t->subjects[s].name,
                            (long long)json_integer_value(json_object_get(so, "n")), mname[m], v);
                    if (json_is_number(e))
                        fprintf(md, "%.4f |\n", json_number_value(e));
                    else
                        fprintf(md, "N/A |\n");
                }
            }
        json_object_set_new(tr, "subjects", subs);
    }
    (void)chat;
    if (rc == 0)
        json_object_set_new(report, t->name, tr);
    else
        json_decref(tr);
    free(mx[0]), free(mx[1]), free(subj), free(path);
    return rc;
}

/* ---- entry --------------------------------------------------------------------------------- */

int sw_bench_run(const struct sw_bench_run_opts *o, struct sw_bench_backend *be, FILE *md) {
    if (!o->tasks || !*o->tasks) return sw_err_set(SW_EUSAGE, "--eval_dataset is required");
    if (!o->out_dir) return sw_err_set(SW_EUSAGE, "--eval_output_dir is required");
    SW_TRY(sw_mkdir_p(o->out_dir));
    struct task_run *runs = NULL;
    size_t nr = 0;
    int rc = 0;
    struct cache cache;
    memset(&cache, 0, sizeof cache);
    char *list = strdup(o->tasks);
    if (!list) return sw_err_set(SW_ENOMEM, "out of memory");
    for (char *save = NULL, *name = strtok_r(list, ",", &save); rc == 0 && name;
         name = strtok_r(NULL, ",", &save)) {
        struct task_run *p = realloc(runs, (nr + 1) * sizeof(*p));
        if (!p) {
            rc = sw_err_set(SW_ENOMEM, "out of memory");
            break;
        }
        runs = p;
        memset(&runs[nr], 0, sizeof runs[nr]);
        struct sw_bench_task_opts to = {name,     o->dataset_dir,    o->subjects,  o->num_fewshot,
                                        o->limit, o->ppl_max_length, o->ppl_stride};
        rc = sw_bench_task_load(&to, &runs[nr].t);
        if (rc == 0 && o->max_gen_toks > 0) runs[nr].t->max_gen_toks = o->max_gen_toks;
        if (rc == 0) nr++;
    }
    free(list);
    for (size_t k = 0; rc == 0 && k < nr; k++)
        rc = prepare(&runs[k], be, o->apply_chat_template);
    if (rc == 0) rc = cache_open(&cache, o->out_dir, !o->no_cache);
    if (rc == 0) rc = answer(runs, nr, be, o->apply_chat_template, &cache);
    json_t *report = json_object(), *tasks = json_object();
    json_object_set_new(report, "tasks", tasks);
    if (rc == 0 && md) {
        fprintf(md, "| task | subject | n | metric | value | stderr |\n");
        fprintf(md, "|---|---|---:|---|---:|---:|\n");
    }
    for (size_t k = 0; rc == 0 && k < nr; k++)
        rc = score_task(&runs[k], &cache, o->apply_chat_template, o->out_dir, tasks, md);
    if (rc == 0) {
        json_object_set_new(report, "config",
                            json_pack("{s:s,s:s?,s:I,s:I,s:b,s:s}", "backend", be->identity,
                                      "dataset_dir", o->dataset_dir, "num_fewshot",
                                      (json_int_t)o->num_fewshot, "limit", (json_int_t)o->limit,
                                      "apply_chat_template", o->apply_chat_template, "tasks",
                                      o->tasks));
        char *txt = json_dumps(report, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(10));
        char *path = sw_path_join(o->out_dir, "report.json");
        if (!txt || !path)
            rc = sw_err_set(SW_ENOMEM, "out of memory");
        else {
            size_t l = strlen(txt);
            txt[l] = '\n';
            rc = sw_write_file_atomic(path, txt, l + 1);
        }
        free(txt), free(path);
    }
    json_decref(report);
    cache_close(&cache);
    for (size_t k = 0; k < nr; k++)
        task_run_release(&runs[k]);
    free(runs);
    return rc;
}
