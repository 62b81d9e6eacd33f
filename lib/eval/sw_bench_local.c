/* sw_bench_local — the in-process backend of sw-eval bench / worker: an HF model folder (plus a
 * PEFT adapter) answering log-likelihood, rolling log-likelihood and generation requests the way
 * lm-evaluation-harness's HF backend (`--model hf`) answers them:
 *
 *   - tokenization (HFLM._encode_pair): trailing whitespace of the context moves to the front of
 *     the continuation; whole = encode(context + continuation), ctx = encode(context),
 *     cont = whole[len(ctx):]; no special tokens (add_bos_token is off for these models); an
 *     empty context is the prefix token (BOS, else EOS);
 *   - truncation: the model sees (ctx + cont)[-(max_length + 1):][:-1], max_length from
 *     config.json (n_positions, max_position_embeddings, n_ctx), else tokenizer_config's
 *     model_max_length, else 2048 — so a prompt longer than the model's context is cut on the
 *     left exactly as the harness cuts it;
 *   - log-likelihood = Σ log_softmax(logits)[cont tokens], is_greedy = every cont token is the
 *     argmax; requests with the same model input (the 4 choices " A".." D" of one question) share
 *     one forward, as the harness's one-token-continuation grouping does;
 *   - rolling: lm-eval's get_rolling_token_windows + make_disjoint_window (context_len 1:
 *     disjoint windows of max_length tokens, the first after the prefix token), or with a stride
 *     s windows that each predict s new tokens after max_length − s tokens of context;
 *   - generation: greedy, the context cut to its last max_length − max_gen_toks tokens, up to
 *     max_gen_toks tokens or an EOS id, decoded without special tokens and cut before the first
 *     stop string (what the harness's `s.split(term)[0]` over its `until` list gives). Other
 *     generation_config.json settings apply as in transformers' generate() (repetition_penalty).
 *
 * Forwards run on sw_eval_model: distinct inputs sorted by length (longest first, as the harness
 * sorts) and packed into batches of about batch_tokens tokens (cu_seqlens, no padding). The
 * engine (lib/infer/sw_engine.h: prefix cache, continuous batching) is the faster path once its
 * synchronous batch API is implemented; this file's interface stays the same. */
#include "sw_bench.h"

#include "sw_bench_impl.h"
#include "sw_conv.h"
#include "sw_err.h"
#include "sw_eval.h"
#include "sw_log.h"
#include "sw_strmap.h"
#include "sw_template.h"
#include "sw_tokenizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct local {
    struct sw_engine *eng;    /* the engine (CPU default), or NULL: */
    struct sw_eval_model *em; /*   packed forwards on the evaluation model (CUDA, --engine false) */
    const char *adapter_name; /* the engine's name for the adapter, or NULL */
    struct sw_tokenizer *tok;
    const struct sw_template *tpl;
    int64_t max_length, batch_tokens;
    int32_t prefix_token;
    char *model, *adapter, *template_name; /* copies of the options (for a late engine) */
    enum sw_device dev;
};

/* One token-level scoring request: the model input and which of its positions score what. */
struct treq {
    int32_t *inp; /* model input (owned) */
    int64_t n_inp;
    int32_t *cont; /* continuation tokens (owned); the last n_cont positions of inp predict them */
    int64_t n_cont;
    int64_t slot; /* index of the distinct input this request uses */
};

static void treq_release(struct treq *r, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(r[i].inp), free(r[i].cont);
}

/* Build a treq from context and continuation ids (lm-eval's truncation). */
static int treq_make(struct treq *r, const int32_t *ctx, int64_t nctx, const int32_t *cont,
                     int64_t ncont, int64_t max_length) {
    memset(r, 0, sizeof *r);
    if (ncont < 1) return sw_err_set(SW_EINVAL, "a continuation of no tokens");
    int64_t total = nctx + ncont;
    int64_t start = total > max_length + 1 ? total - (max_length + 1) : 0;
    int64_t n = total - 1 - start; /* [:-1] */
    r->inp = malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
    r->cont = malloc((size_t)ncont * sizeof(int32_t));
    if (!r->inp || !r->cont) return sw_err_set(SW_ENOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++) {
        int64_t j = start + i;
        r->inp[i] = j < nctx ? ctx[j] : cont[j - nctx];
    }
    r->n_inp = n;
    /* more continuation than the window holds: only the last max_length tokens are scored */
    int64_t nc = ncont < n ? ncont : n;
    memcpy(r->cont, cont + (ncont - nc), (size_t)nc * sizeof(int32_t));
    r->n_cont = nc;
    return 0;
}

struct slot {
    int64_t first; /* the treq that owns the input */
    int64_t n;
};

static int cmp_slot_desc(const void *a, const void *b, void *ctx) {
    const struct treq *r = ctx;
    const struct slot *x = a, *y = b;
    if (x->n != y->n) return x->n > y->n ? -1 : 1;
    int c = memcmp(r[x->first].inp, r[y->first].inp, (size_t)x->n * sizeof(int32_t));
    if (c) return c;
    return (x->first > y->first) - (x->first < y->first);
}

/* Score on the engine: context = the model input without the positions that predict the
 * continuation, i.e. (ctx + cont)[-(max_length + 1):][: -n_cont]; shared few-shot prefixes hit
 * its prefix cache. */
static int score_engine(struct local *L, struct treq *r, size_t n, double *ll, int *greedy) {
    const int32_t **c = malloc((n ? n : 1) * sizeof(*c)), **t = malloc((n ? n : 1) * sizeof(*t));
    int64_t *nc = malloc((n ? n : 1) * sizeof(int64_t)),
            *nt = malloc((n ? n : 1) * sizeof(int64_t));
    int rc = (!c || !t || !nc || !nt) ? sw_err_set(SW_ENOMEM, "out of memory") : 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        c[i] = r[i].inp, nc[i] = r[i].n_inp + 1 - r[i].n_cont, t[i] = r[i].cont,
        nt[i] = r[i].n_cont;
    if (rc == 0) rc = sw_bench_engine_score(L->eng, L->adapter_name, c, nc, t, nt, n, ll, greedy);
    free(c), free(t), free(nc), free(nt);
    return rc;
}

/* Score n token requests: ll[i], greedy[i]. */
static int score_tokens(struct local *L, struct treq *r, size_t n, double *ll, int *greedy) {
    if (L->eng) return score_engine(L, r, n, ll, greedy);
    int64_t V = L->em->hf->config.vocab_size;
    /* distinct inputs */
    struct sw_strmap *m = sw_strmap_new(n * 2 + 16);
    struct slot *slots = malloc((n ? n : 1) * sizeof(*slots));
    float *rows = NULL;
    int32_t *ids = NULL, *cu = NULL;
    int64_t *slot_off = NULL;
    size_t ns = 0;
    int rc = 0;
    if (!m || !slots) {
        rc = sw_err_set(SW_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (r[i].n_inp < 1) {
            rc = sw_err_set(SW_EINVAL, "request %zu: empty model input", i);
            goto out;
        }
        int64_t v;
        size_t kl = (size_t)r[i].n_inp * sizeof(int32_t);
        if (sw_strmap_get(m, r[i].inp, kl, &v)) {
            r[i].slot = v;
            continue;
        }
        if ((rc = sw_strmap_put(m, r[i].inp, kl, (int64_t)ns)) < 0) goto out;
        r[i].slot = (int64_t)ns;
        slots[ns++] = (struct slot){(int64_t)i, r[i].n_inp};
    }
    /* order: longest first; remember where each slot lands */
    int64_t *order = malloc((ns ? ns : 1) * sizeof(int64_t));
    struct slot *sorted = malloc((ns ? ns : 1) * sizeof(*sorted));
    slot_off = malloc((ns ? ns : 1) * sizeof(int64_t));
    if (!order || !sorted || !slot_off) {
        free(order), free(sorted);
        rc = sw_err_set(SW_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(sorted, slots, ns * sizeof(*sorted));
    qsort_r(sorted, ns, sizeof(*sorted), cmp_slot_desc, r);
    for (size_t s = 0; s < ns; s++)
        order[s] = r[sorted[s].first].slot;
    free(sorted);
    int64_t maxrows = 0;
    for (size_t i = 0; i < n; i++)
        maxrows = r[i].n_cont > maxrows ? r[i].n_cont : maxrows;
    rows = malloc((size_t)(maxrows > 0 ? maxrows : 1) * (size_t)V * sizeof(float));
    if (!rows) {
        free(order);
        rc = sw_err_set(SW_ENOMEM, "out of memory for logits");
        goto out;
    }
    /* requests by slot, to visit each batch's users */
    int64_t *head = malloc((ns ? ns : 1) * sizeof(int64_t)),
            *next = malloc((n ? n : 1) * sizeof(int64_t));
    if (!head || !next) {
        free(order), free(head), free(next);
        rc = sw_err_set(SW_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t s = 0; s < ns; s++)
        head[s] = -1;
    for (size_t i = n; i-- > 0;)
        next[i] = head[r[i].slot], head[r[i].slot] = (int64_t)i;
    for (size_t b0 = 0; rc == 0 && b0 < ns;) {
        int64_t tokens = 0;
        size_t b1 = b0;
        while (b1 < ns && (b1 == b0 || tokens + slots[order[b1]].n <= L->batch_tokens))
            tokens += slots[order[b1]].n, b1++;
        free(ids), free(cu);
        ids = malloc((size_t)tokens * sizeof(int32_t));
        cu = malloc((b1 - b0 + 1) * sizeof(int32_t));
        if (!ids || !cu) {
            rc = sw_err_set(SW_ENOMEM, "out of memory");
            break;
        }
        int64_t off = 0;
        cu[0] = 0;
        for (size_t s = b0; s < b1; s++) {
            const struct slot *sl = &slots[order[s]];
            memcpy(ids + off, r[sl->first].inp, (size_t)sl->n * sizeof(int32_t));
            slot_off[order[s]] = off;
            off += sl->n;
            cu[s - b0 + 1] = (int32_t)off;
        }
        struct sw_batch mb = {
            .B = 1, .T = tokens, .input_ids = ids, .cu_seqlens = cu, .n_seqs = (int)(b1 - b0)};
        rc = sw_model_forward(L->em->model, &mb, NULL);
        for (size_t s = b0; rc == 0 && s < b1; s++) {
            int64_t sl = order[s];
            for (int64_t i = head[sl]; rc == 0 && i >= 0; i = next[i]) {
                int64_t nc = r[i].n_cont;
                int64_t row0 = slot_off[sl] + r[i].n_inp - nc;
                rc = sw_model_logits_rows(L->em->model, row0, nc, rows);
                double sum = 0;
                int g = 1;
                for (int64_t j = 0; rc == 0 && j < nc; j++) {
                    const float *x = rows + j * V;
                    int32_t y = r[i].cont[j];
                    if (y < 0 || y >= V) {
                        rc = sw_err_set(SW_ERANGE, "token id %d outside the vocabulary", (int)y);
                        break;
                    }
                    int64_t am = 0;
                    double mx = x[0];
                    for (int64_t v = 1; v < V; v++)
                        if (x[v] > x[am]) am = v;
                    mx = x[am];
                    /* Σ exp(x − mx) in index order, from the first term (V >= 1): >= 1, since
                     * the argmax's term is exp(0) */
                    double z = exp((double)x[0] - mx);
                    for (int64_t v = 1; v < V; v++)
                        z += exp((double)x[v] - mx);
                    sum += (double)x[y] - mx - log(z);
                    if (am != y) g = 0;
                }
                ll[i] = sum;
                greedy[i] = g;
            }
        }
        b0 = b1;
    }
    free(order), free(head), free(next);
out:
    sw_strmap_free(m);
    free(slots), free(rows), free(ids), free(cu), free(slot_off);
    return rc;
}

static int encode(struct local *L, const char *s, size_t n, struct sw_tok_ids *out) {
    out->n = 0;
    return sw_tokenizer_encode_append(L->tok, s, n, 0, out);
}

/* Bytes of trailing whitespace of s (what Python's rstrip() removes). */
static size_t trailing_space(const char *s) {
    const char *p = s;
    size_t n = strlen(s), kept = n;
    sw_bench_strip(&p, &kept); /* trims both ends: what is left after the kept part is the tail */
    return n - (size_t)(p - s) - kept;
}

/* lm-eval's _encode_pair (+ the empty-context rule) into a treq. */
/* lm-eval's _encode_pair (+ the empty-context rule) into a treq, with tokenizer tok. */
static int encode_pair_tok(const struct sw_tokenizer *tok, int32_t prefix, int64_t max_length,
                           const char *ctx, const char *cont, struct treq *r) {
    struct sw_tok_ids w = {0}, c = {0};
    int rc = 0;
    if (!*ctx) {
        rc = sw_tokenizer_encode_append(tok, cont, strlen(cont), 0, &w);
        if (rc == 0 && w.n == 0) rc = sw_err_set(SW_EINVAL, "empty continuation");
        if (rc == 0) {
            int32_t p = prefix;
            if (w.ids[0] == p && w.n > 1) /* the harness drops a duplicated prefix token */
                rc = treq_make(r, &p, 1, w.ids + 1, (int64_t)w.n - 1, max_length);
            else
                rc = treq_make(r, &p, 1, w.ids, (int64_t)w.n, max_length);
        }
        goto out;
    }
    size_t lc = strlen(ctx), sp = trailing_space(ctx);
    if (sp == lc) sp = 0; /* an all-space context: Python keeps context[:-n] = "" ... rare */
    size_t lcont = strlen(cont);
    char *whole = malloc(lc + lcont + 1);
    if (!whole) return sw_err_set(SW_ENOMEM, "out of memory");
    memcpy(whole, ctx, lc);
    memcpy(whole + lc, cont, lcont + 1);
    rc = sw_tokenizer_encode_append(tok, whole, lc + lcont, 0, &w);
    if (rc == 0) rc = sw_tokenizer_encode_append(tok, ctx, lc - sp, 0, &c);
    free(whole);
    if (rc == 0 && w.n <= c.n)
        rc = sw_err_set(SW_EINVAL, "the continuation '%s' adds no token after its context", cont);
    if (rc == 0)
        rc = treq_make(r, c.ids, (int64_t)c.n, w.ids + c.n, (int64_t)(w.n - c.n), max_length);
out:
    sw_tok_ids_release(&w), sw_tok_ids_release(&c);
    return rc;
}

static int encode_pair(struct local *L, const char *ctx, const char *cont, struct treq *r) {
    return encode_pair_tok(L->tok, L->prefix_token, L->max_length, ctx, cont, r);
}

int sw_bench_tokenize_pair(const struct sw_tokenizer *tok, int64_t window, const char *ctx,
                           const char *cont, int32_t **ids, int64_t *n, int64_t *ncont) {
    int64_t max_length = window - 1; /* treq's model input is one shorter than the window */
    int32_t bos = sw_tokenizer_special_id(tok, SW_TOK_BOS),
            eos = sw_tokenizer_special_id(tok, SW_TOK_EOS);
    struct treq r;
    memset(&r, 0, sizeof r);
    *ids = NULL;
    int rc = encode_pair_tok(tok, bos >= 0 ? bos : eos >= 0 ? eos : 0, max_length, ctx, cont, &r);
    if (rc == 0) {
        /* the whole window: the model input plus the last continuation token */
        int32_t *v = realloc(r.inp, (size_t)(r.n_inp + 1) * sizeof(int32_t));
        if (!v)
            rc = sw_err_set(SW_ENOMEM, "out of memory");
        else {
            v[r.n_inp] = r.cont[r.n_cont - 1];
            r.inp = NULL;
            *ids = v, *n = r.n_inp + 1, *ncont = r.n_cont;
        }
    }
    free(r.inp), free(r.cont);
    return rc;
}

static int local_loglik(struct sw_bench_backend *b, const struct sw_bench_ll_req *q, size_t n,
                        struct sw_bench_ll_res *out, sw_bench_done_fn done, void *ctx) {
    struct local *L = b->impl;
    size_t step = b->shard > 0 ? (size_t)b->shard : 256;
    for (size_t s0 = 0; s0 < n; s0 += step) {
        size_t s1 = s0 + step < n ? s0 + step : n;
        struct treq *r = calloc(s1 - s0, sizeof(*r));
        double *ll = malloc((s1 - s0) * sizeof(double));
        int *g = malloc((s1 - s0) * sizeof(int));
        int rc = (!r || !ll || !g) ? sw_err_set(SW_ENOMEM, "out of memory") : 0;
        for (size_t i = s0; rc == 0 && i < s1; i++)
            rc = encode_pair(L, q[i].context, q[i].continuation, &r[i - s0]);
        if (rc == 0) rc = score_tokens(L, r, s1 - s0, ll, g);
        for (size_t i = s0; rc == 0 && i < s1; i++)
            out[i] = (struct sw_bench_ll_res){ll[i - s0], g[i - s0], (int)r[i - s0].n_cont};
        if (r) treq_release(r, s1 - s0);
        free(r), free(ll), free(g);
        if (rc == 0 && done) rc = done(ctx, s0, s1);
        if (rc < 0) return rc;
    }
    return 0;
}

/* lm-eval's rolling windows of one token list into treqs appended to *r. */
static int windows(const int32_t *t, int64_t n, int32_t prefix, int64_t max_len, int64_t stride,
                   struct treq **r, size_t *nr, size_t *cap) {
    if (n == 0) return 0;
    int64_t context_len = stride > 0 && stride < max_len ? max_len - stride + 1 : 1;
    int64_t pred_len = max_len - context_len + 1;
    int32_t *buf = malloc((size_t)(max_len + 1) * sizeof(int32_t));
    if (!buf) return sw_err_set(SW_ENOMEM, "out of memory");
    int rc = 0;
    int64_t predicted = 0;
    while (rc == 0 && predicted < n) {
        int64_t wl, ctx_n;
        const int32_t *cont;
        int64_t cont_n;
        if (predicted == 0) {
            int64_t first = max_len < n ? max_len : n;
            buf[0] = prefix;
            memcpy(buf + 1, t, (size_t)(first - 1) * sizeof(int32_t));
            wl = first; /* input [prefix] + t[:first-1] */
            cont = t, cont_n = first;
            predicted = first;
            /* disjoint: context = input[: len - (len(cont) - 1)] = [prefix] */
            ctx_n = wl - (cont_n - 1);
        } else {
            int64_t wpl = n - predicted < pred_len ? n - predicted : pred_len;
            int64_t end = predicted + wpl;
            int64_t s = end - max_len - 1;
            if (s < 0) s = 0;
            wl = (end - 1) - s;
            memcpy(buf, t + s, (size_t)wl * sizeof(int32_t));
            cont = t + end - wpl, cont_n = wpl;
            predicted += wpl;
            ctx_n = wl - (cont_n - 1);
        }
        if (*nr == *cap) {
            *cap = *cap ? *cap * 2 : 16;
            struct treq *p = realloc(*r, *cap * sizeof(**r));
            if (!p) {
                rc = sw_err_set(SW_ENOMEM, "out of memory");
                break;
            }
            *r = p;
        }
        rc = treq_make(&(*r)[(*nr)++], buf, ctx_n, cont, cont_n, max_len);
    }
    free(buf);
    return rc;
}

static int local_rolling(struct sw_bench_backend *b, const char *const *texts, size_t n,
                         int64_t max_length, int64_t stride, struct sw_bench_roll_res *out,
                         sw_bench_done_fn done, void *ctx) {
    struct local *L = b->impl;
    int64_t ml = max_length > 0 ? max_length : L->max_length;
    for (size_t i = 0; i < n; i++) {
        struct sw_tok_ids t = {0};
        struct treq *r = NULL;
        size_t nr = 0, cap = 0;
        int rc = encode(L, texts[i], strlen(texts[i]), &t);
        if (rc == 0) rc = windows(t.ids, (int64_t)t.n, L->prefix_token, ml, stride, &r, &nr, &cap);
        double *ll = malloc((nr ? nr : 1) * sizeof(double));
        int *g = malloc((nr ? nr : 1) * sizeof(int));
        if (rc == 0 && (!ll || !g)) rc = sw_err_set(SW_ENOMEM, "out of memory");
        if (rc == 0 && nr) rc = score_tokens(L, r, nr, ll, g);
        double sum = 0;
        for (size_t w = 0; rc == 0 && w < nr; w++)
            sum += ll[w];
        out[i] = (struct sw_bench_roll_res){sum, (int64_t)t.n};
        treq_release(r, nr);
        free(r), free(ll), free(g);
        sw_tok_ids_release(&t);
        if (rc == 0 && done) rc = done(ctx, i, i + 1);
        if (rc < 0) return rc;
    }
    return 0;
}

static int cut_at_stops(char *text, const char *const *until, int nuntil) {
    for (int u = 0; u < nuntil; u++) {
        if (!*until[u]) continue;
        char *p = strstr(text, until[u]);
        if (p) *p = '\0';
    }
    return 0;
}

/* Generate on the engine: the prompts of one shard in flight together (continuous batching);
 * the context cut to its last max_length - max_gen_toks tokens. */
static int generate_engine(struct local *L, const struct sw_bench_gen_req *q, size_t n,
                           char **out) {
    int32_t **ids = calloc(n ? n : 1, sizeof(int32_t *));
    int64_t *lens = calloc(n ? n : 1, sizeof(int64_t));
    int rc = (!ids || !lens) ? sw_err_set(SW_ENOMEM, "out of memory") : 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct sw_tok_ids t = {0};
        rc = encode(L, q[i].context, strlen(q[i].context), &t);
        int64_t max_ctx = L->max_length - q[i].max_gen_toks;
        if (rc == 0 && max_ctx < 1)
            rc = sw_err_set(SW_EINVAL,
                            "max_gen_toks %lld leaves no room for a context in %lld "
                            "tokens",
                            (long long)q[i].max_gen_toks, (long long)L->max_length);
        if (rc == 0 && t.n == 0) rc = sw_err_set(SW_EINVAL, "an empty generation prompt");
        if (rc == 0) {
            int64_t skip = (int64_t)t.n > max_ctx ? (int64_t)t.n - max_ctx : 0;
            lens[i] = (int64_t)t.n - skip;
            ids[i] = malloc((size_t)lens[i] * sizeof(int32_t));
            if (!ids[i])
                rc = sw_err_set(SW_ENOMEM, "out of memory");
            else
                memcpy(ids[i], t.ids + skip, (size_t)lens[i] * sizeof(int32_t));
        }
        sw_tok_ids_release(&t);
    }
    /* groups of equal settings, in order */
    for (size_t a = 0; rc == 0 && a < n;) {
        size_t b = a + 1;
        while (b < n && q[b].max_gen_toks == q[a].max_gen_toks && q[b].nuntil == q[a].nuntil &&
               q[b].until == q[a].until)
            b++;
        rc = sw_bench_engine_generate(L->eng, L->adapter_name, (const int32_t *const *)ids + a,
                                      lens + a, b - a, q[a].max_gen_toks, q[a].until, q[a].nuntil,
                                      out + a);
        for (size_t i = a; rc == 0 && i < b; i++)
            cut_at_stops(out[i], q[i].until, q[i].nuntil);
        a = b;
    }
    for (size_t i = 0; ids && i < n; i++)
        free(ids[i]);
    free(ids), free(lens);
    return rc;
}

/* Generation always runs on the engine (KV cache, continuous batching): with --engine false
 * (packed forwards for log-likelihoods) it is opened on the same device at the first generation
 * request, so the weights are in memory twice from then on. */
static int local_generate(struct sw_bench_backend *b, const struct sw_bench_gen_req *q, size_t n,
                          char **out, sw_bench_done_fn done, void *ctx) {
    struct local *L = b->impl;
    if (!L->eng) {
        sw_info("generation runs on the inference engine: opening it beside the evaluation model");
        SW_TRY(sw_bench_engine_open(L->model, L->adapter, L->template_name, L->dev,
                                    L->max_length + 1, L->batch_tokens, &L->eng));
        L->adapter_name = L->adapter ? "eval" : NULL;
    }
    size_t step = b->shard > 0 ? (size_t)b->shard : 64;
    for (size_t s0 = 0; s0 < n; s0 += step) {
        size_t s1 = s0 + step < n ? s0 + step : n;
        SW_TRY(generate_engine(L, q + s0, s1 - s0, out + s0));
        if (done) SW_TRY(done(ctx, s0, s1));
    }
    return 0;
}

static int local_chat(struct sw_bench_backend *b, const char *system, const char *user,
                      char **out) {
    struct local *L = b->impl;
    *out = NULL;
    if (!L->tpl)
        return sw_err_set(SW_EINVAL, "--apply_chat_template: the model folder has no chat template "
                                     "sw recognises (give --template)");
    struct sw_conv c;
    sw_conv_init(&c);
    struct sw_template_opts o = {
        .system = system ? system : "", .loss = SW_LOSS_DEFAULT, .add_generation_prompt = 1};
    struct sw_template_tokens tk;
    struct sw_template_render r;
    memset(&r, 0, sizeof r);
    int rc = sw_conv_add(&c, SW_ROLE_USER, user);
    if (rc == 0) rc = sw_template_tokens_from(L->tok, &tk);
    if (rc == 0) rc = sw_template_render(L->tpl, &c, &o, &tk, "chat", &r);
    if (rc == 0) {
        *out = strdup(r.text);
        if (!*out) rc = sw_err_set(SW_ENOMEM, "out of memory");
    }
    sw_template_render_release(&r);
    sw_conv_release(&c);
    return rc;
}

/* sw_eval_model_open on a chosen device (lib/infer's opens the CPU): the same steps, the
 * adapter applied through the model's LoRA path to every layer. */
static int open_model(const char *dir, const char *adapter_dir, enum sw_device dev,
                      struct sw_eval_model **out) {
    if (dev == SW_DEVICE_CPU) return sw_eval_model_open(dir, adapter_dir, out);
    *out = NULL;
    struct sw_eval_model *em = calloc(1, sizeof(*em));
    if (!em) return sw_err_set(SW_ENOMEM, "out of memory");
    int rc;
    SW_TRY_GOTO(rc, sw_hfmodel_open(dir, &em->hf), fail);
    SW_TRY_GOTO(rc, sw_backend_open(dev, &em->be), fail);
    if ((rc = sw_model_new(&em->hf->config, em->be, &em->model)) < 0) {
        sw_err_wrap(rc, "%s/config.json", dir);
        goto fail;
    }
    SW_TRY_GOTO(rc, sw_model_load(em->model, em->hf->weights), fail);
    if (adapter_dir) {
        const struct sw_model_config *c = &em->hf->config;
        SW_TRY_GOTO(rc, sw_adapter_open(adapter_dir, &em->adapter), fail);
        SW_TRY_GOTO(rc, sw_adapter_check(em->adapter, c), fail);
        char kinds[128];
        sw_adapter_kinds_str(em->adapter, kinds, sizeof kinds);
        if (!sw_adapter_covers_all_layers(em->adapter, c->num_hidden_layers)) {
            rc = sw_err_set(SW_EUNSUPPORTED,
                            "%s: the adapter covers %s in only some layers "
                            "(merge it first: sw-quant merge-lora)",
                            adapter_dir, kinds);
            goto fail;
        }
        struct sw_lora_config lc = {.r = em->adapter->cfg.r,
                                    .alpha = em->adapter->cfg.alpha,
                                    .use_rslora = em->adapter->cfg.use_rslora,
                                    .target_modules = kinds};
        SW_TRY_GOTO(rc, sw_model_lora_add(em->model, &lc), fail);
        SW_TRY_GOTO(rc, sw_model_lora_load(em->model, em->adapter->weights), fail);
    }
    sw_model_set_training(em->model, 0);
    *out = em;
    return 0;
fail:
    sw_eval_model_close(em);
    return rc;
}

static void local_free(struct sw_bench_backend *b) {
    struct local *L = b->impl;
    if (L) {
        sw_bench_engine_close(L->eng);
        sw_eval_model_close(L->em);
        sw_tokenizer_free(L->tok);
        free(L->model), free(L->adapter), free(L->template_name);
        free(L);
    }
}

int sw_bench_local_new(const struct sw_bench_local_opts *o, struct sw_bench_backend **out) {
    *out = NULL;
    struct sw_bench_backend *b = calloc(1, sizeof(*b));
    struct local *L = calloc(1, sizeof(*L));
    if (!b || !L) {
        free(b), free(L);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    b->impl = L;
    b->kind = "local";
    b->free = local_free;
    b->loglik = local_loglik;
    b->rolling = local_rolling;
    b->generate = local_generate;
    b->chat_render = local_chat;
    b->shard = o->shard > 0 ? o->shard : 256;
    enum sw_device dev = SW_DEVICE_CPU;
    if (o->device && strcmp(o->device, "cuda") == 0)
        dev = SW_DEVICE_CUDA;
    else if (o->device && strcmp(o->device, "cpu") != 0) {
        sw_bench_backend_free(b);
        return sw_err_set(SW_EUSAGE, "--device '%s': cpu or cuda", o->device);
    }
    int use_engine = !o->no_engine;
    L->dev = dev;
    if (!(L->model = strdup(o->model)) || (o->adapter && !(L->adapter = strdup(o->adapter))) ||
        (o->template_name && !(L->template_name = strdup(o->template_name)))) {
        sw_bench_backend_free(b);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    int rc = 0;
    if (use_engine) {
        L->adapter_name = o->adapter ? "eval" : NULL;
        /* the context length first (config.json), so that the engine holds it + 1 token */
        struct sw_hfmodel *hf = NULL;
        rc = sw_hfmodel_open(o->model, &hf);
        if (rc == 0) {
            int64_t mpe = hf->config.max_position_embeddings;
            sw_hfmodel_close(hf);
            rc = sw_tokenizer_load(o->model, &L->tok);
            if (rc == 0) {
                int64_t tmax = sw_tokenizer_model_max_length(L->tok);
                L->max_length = o->max_length > 0                       ? o->max_length
                                : mpe > 0                               ? mpe
                                : tmax > 0 && tmax < ((int64_t)1 << 40) ? tmax
                                                                        : 2048;
                rc = sw_bench_engine_open(o->model, o->adapter, o->template_name, dev,
                                          L->max_length + 1,
                                          o->batch_tokens > 0 ? o->batch_tokens : 4096, &L->eng);
            }
        }
    } else {
        rc = open_model(o->model, o->adapter, dev, &L->em);
        if (rc == 0) rc = sw_tokenizer_load(o->model, &L->tok);
    }
    if (rc < 0) {
        sw_bench_backend_free(b);
        return rc;
    }
    if (!use_engine) {
        const struct sw_model_config *c = &L->em->hf->config;
        int64_t tmax = sw_tokenizer_model_max_length(L->tok);
        L->max_length = o->max_length > 0                       ? o->max_length
                        : c->max_position_embeddings > 0        ? c->max_position_embeddings
                        : tmax > 0 && tmax < ((int64_t)1 << 40) ? tmax
                                                                : 2048;
    }
    L->batch_tokens = o->batch_tokens > 0 ? o->batch_tokens : 4096;
    int32_t bos = sw_tokenizer_special_id(L->tok, SW_TOK_BOS);
    int32_t eos = sw_tokenizer_special_id(L->tok, SW_TOK_EOS);
    L->prefix_token = bos >= 0 ? bos : eos >= 0 ? eos : 0;
    L->tpl = o->template_name ? sw_template_get(o->template_name)
                              : sw_template_detect(sw_tokenizer_chat_template(L->tok));
    if (o->template_name && !L->tpl) {
        rc = sw_err_set(SW_EUSAGE, "unknown chat template '%s' (known: %s)", o->template_name,
                        sw_template_names());
        sw_bench_backend_free(b);
        return rc;
    }
    b->max_length = L->max_length;
    char id[8192];
    snprintf(id, sizeof id, "local:%s%s%s", o->model, o->adapter ? "+" : "",
             o->adapter ? o->adapter : "");
    b->identity = strdup(id);
    if (!b->identity) {
        sw_bench_backend_free(b);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    sw_info("model %s: max_length %lld, %lld tokens per %s", o->model, (long long)L->max_length,
            (long long)L->batch_tokens, L->eng ? "engine step" : "forward");
    *out = b;
    return 0;
}

void sw_bench_backend_free(struct sw_bench_backend *b) {
    if (!b) return;
    if (b->free) b->free(b);
    free(b->identity);
    free(b);
}
