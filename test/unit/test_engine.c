/* test_engine — the inference engine end to end on the CPU backend (lib/infer/sw_engine*.c):
 *   - greedy parity with transformers' generate() (test/golden/generate/expected.json: raw
 *     prompts, a chat prompt, a repetition penalty; the extra golden cases of
 *     gen_generate.py for the llama/qwen2 families and a LoRA adapter when present), alone, all
 *     in one batch, with chunked prefill, with small blocks, with preemption;
 *   - seeded sampling reproducible alone and in a batch; n > 1 (shared prompt blocks,
 *     copy-on-write, index 0 equal to n = 1);
 *   - the incremental detokenizer and stop strings (deltas never split a UTF-8 character, the
 *     text is cut exactly before a stop string), stop ids, min_tokens, max_tokens;
 *   - logprobs and prompt logprobs against a direct log-softmax of sw-eval's logits; scoring;
 *   - block accounting: nothing leaks after finish, abort (API or callback) and preemption;
 *     prefix-cache hits and counters; errors at submit;
 *   - LoRA: several adapters in one batch against sw-eval's adapter logits;
 *   - a stress run on the loop thread: many concurrent requests with random aborts, then every
 *     block free.
 * Run from the repository root. */
#include "sw_detok.h"
#include "sw_engine.h"
#include "sw_eval.h"

#include "sw_err.h"
#include "sw_log.h"
#include "sw_safetensors.h"
#include "sw_model.h"
#include "sw_hfmodel.h"
#include "sw_rng.h"
#include "sw_tokenizer.h"
#include "fixtures.h"
#include "tap.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GEN "test/golden/generate/"

/* ---- collecting events -------------------------------------------------------------------- */

#define MAXTOK 512
struct seq_out {
    int32_t ids[MAXTOK];
    float lp[MAXTOK];
    int n;
    char text[8192];
    size_t tlen;
    enum sw_finish_reason fin;
    int32_t stop_token;
    char stop_str[64];
    int bad_utf8;     /* a delta that is not whole UTF-8 characters */
    int after_finish; /* events after this index finished */
    int64_t usage_completion;
    int top_ok; /* top alternatives sorted and the argmax among them */
};
struct req_out {
    struct seq_out s[8];
    int done; /* request_done seen */
    int done_twice;
    double plp[MAXTOK];
    int plp_rank[MAXTOK];
    int64_t n_plp;
    int64_t prompt_tokens, completion_tokens, cached_tokens;
    int abort_after; /* return 1 from the callback after this many token events (0 = never) */
    int tokens_seen;
    int bad_index;
};

static int utf8_whole(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t l = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (l == 0 || i + l > n) return 0;
        for (size_t k = 1; k < l; k++)
            if (((unsigned char)s[i + k] & 0xC0) != 0x80) return 0;
        i += l;
    }
    return 1;
}

static int collect(void *user, const struct sw_engine_event *ev) {
    struct req_out *r = user;
    if (ev->request_done) {
        r->done_twice += r->done;
        r->done = 1;
        r->prompt_tokens = ev->usage.prompt_tokens;
        r->completion_tokens = ev->usage.completion_tokens;
        r->cached_tokens = ev->usage.cached_tokens;
        return 0;
    }
    if (ev->prompt_logprobs) {
        for (int64_t i = 0; i < ev->n_prompt_logprobs && i < MAXTOK; i++) {
            r->plp[i] = ev->prompt_logprobs[i].logprob;
            r->plp_rank[i] = ev->prompt_logprobs[i].rank;
        }
        r->n_plp = ev->n_prompt_logprobs;
        return 0;
    }
    if (ev->index < 0 || ev->index >= 8) {
        r->bad_index = 1;
        return 0;
    }
    struct seq_out *s = &r->s[ev->index];
    if (s->fin != SW_FINISH_NONE) s->after_finish = 1;
    if (ev->token >= 0 && s->n < MAXTOK) {
        s->lp[s->n] = ev->logprobs ? ev->logprobs->logprob : NAN;
        if (ev->logprobs) {
            int ok = 1;
            for (int k = 1; k < ev->logprobs->n_top; k++)
                ok &= ev->logprobs->top[k - 1].logprob >= ev->logprobs->top[k].logprob;
            if (ev->logprobs->n_top > 0)
                ok &= ev->logprobs->top[0].logprob >= ev->logprobs->logprob;
            s->top_ok = s->n == 0 ? ok : s->top_ok && ok;
        }
        s->ids[s->n++] = ev->token;
    }
    if (!utf8_whole(ev->text, ev->text_len)) s->bad_utf8 = 1;
    if (ev->text_len && s->tlen + ev->text_len < sizeof s->text) {
        memcpy(s->text + s->tlen, ev->text, ev->text_len);
        s->tlen += ev->text_len;
        s->text[s->tlen] = 0;
    }
    if (ev->finish != SW_FINISH_NONE) {
        s->fin = ev->finish;
        s->stop_token = ev->stop_token;
        if (ev->stop_str) snprintf(s->stop_str, sizeof s->stop_str, "%s", ev->stop_str);
        s->usage_completion = ev->usage.completion_tokens;
    }
    if (ev->token >= 0 && r->abort_after > 0 && ++r->tokens_seen >= r->abort_after) return 1;
    return 0;
}

/* Step until every request in outs is done (or a step fails). */
static int run_all(struct sw_engine *e, struct req_out **outs, int n) {
    for (int guard = 0; guard < 100000; guard++) {
        int pending = 0;
        for (int i = 0; i < n; i++)
            pending += !outs[i]->done;
        if (!pending) return 0;
        int rc = sw_engine_step(e);
        if (rc < 0) return rc;
    }
    return sw_err_set(SW_ESTATE, "requests never finished");
}

static int64_t g_max_model_len; /* for the next open_engine (0: the config's) */
static int g_max_waiting;       /* for the next open_engine (0: the default) */

static struct sw_engine *open_engine(const char *dir, int bs, int64_t batched, int64_t kv_bytes,
                                     int max_seqs, const struct sw_engine_adapter *ad, int nad,
                                     const char *tokenizer) {
    struct sw_engine_opts o;
    sw_engine_opts_init(&o);
    o.max_model_len = g_max_model_len;
    if (g_max_waiting) o.max_waiting = g_max_waiting;
    o.model_dir = dir;
    o.tokenizer = tokenizer;
    o.block_size = bs;
    o.max_num_batched_tokens = batched;
    o.kv_cache_bytes = kv_bytes;
    o.max_num_seqs = max_seqs;
    o.adapters = ad;
    o.n_adapters = nad;
    o.seed = 99;
    struct sw_engine *e = NULL;
    if (sw_engine_open(&o, &e) < 0) DIAG("engine open: %s", sw_err_msg());
    return e;
}

static int64_t blocks_used(struct sw_engine *e) {
    struct sw_engine_stats st;
    sw_engine_stats(e, &st);
    return st.kv_blocks_used;
}

/* ---- goldens ------------------------------------------------------------------------------ */

struct gcase {
    char name[32];
    int32_t prompt[256], want[256];
    int n_prompt, n_want;
    double penalty;
};

static int load_cases(const char *path, struct gcase *cs, int max, int *max_new) {
    json_error_t err;
    json_t *root = json_load_file(path, JSON_ALLOW_NUL, &err);
    if (!root) return 0;
    json_t *cases = json_object_get(root, "cases");
    *max_new = (int)json_integer_value(json_object_get(root, "max_new_tokens"));
    const char *k;
    json_t *v;
    int n = 0;
    json_object_foreach(cases, k, v) {
        if (n == max) break;
        struct gcase *c = &cs[n++];
        memset(c, 0, sizeof *c);
        snprintf(c->name, sizeof c->name, "%s", k);
        json_t *p = json_object_get(v, "prompt_ids"), *w = json_object_get(v, "ids");
        for (size_t i = 0; i < json_array_size(p) && i < 256; i++)
            c->prompt[c->n_prompt++] = (int32_t)json_integer_value(json_array_get(p, i));
        for (size_t i = 0; i < json_array_size(w) && i < 256; i++)
            c->want[c->n_want++] = (int32_t)json_integer_value(json_array_get(w, i));
        json_t *pen = json_object_get(v, "repetition_penalty");
        c->penalty = pen ? json_number_value(pen) : 1.0;
    }
    json_decref(root);
    return n;
}

static struct sw_sampling_params greedy(int max_tokens, double penalty) {
    struct sw_sampling_params p;
    sw_sampling_params_init(&p);
    p.temperature = 0;
    p.max_tokens = max_tokens;
    p.repetition_penalty = penalty;
    return p;
}

static int same_ids(const struct seq_out *s, const struct gcase *c) {
    if (s->n != c->n_want) return 0;
    for (int i = 0; i < s->n; i++)
        if (s->ids[i] != c->want[i]) return 0;
    return 1;
}

/* All cases submitted together on e; returns how many match. */
static int run_cases(struct sw_engine *e, const struct gcase *cs, int n, int max_new,
                     const char *adapter, int *leak) {
    struct req_out *o = calloc((size_t)n, sizeof *o);
    struct req_out **po = malloc((size_t)n * sizeof *po);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        po[i] = &o[i];
        struct sw_sampling_params p = greedy(max_new, cs[i].penalty);
        if (sw_engine_submit(e, cs[i].prompt, cs[i].n_prompt, &p, adapter, collect, &o[i], NULL) <
            0)
            DIAG("submit %s: %s", cs[i].name, sw_err_msg());
    }
    if (run_all(e, po, n) < 0) DIAG("run: %s", sw_err_msg());
    for (int i = 0; i < n; i++) {
        int m = same_ids(&o[i].s[0], &cs[i]);
        if (!m) {
            DIAG("%s: got %d ids, want %d", cs[i].name, o[i].s[0].n, cs[i].n_want);
            for (int k = 0; k < o[i].s[0].n && k < 30; k++)
                printf(" %d", o[i].s[0].ids[k]);
            printf("\n");
        }
        ok += m;
    }
    *leak = (int)blocks_used(e);
    free(o), free(po);
    return ok;
}

static void test_golden(const char *dir, const char *expected, const char *family,
                        const char *tokenizer, const char *adapter_path) {
    struct gcase cs[16];
    int max_new = 0;
    int n = load_cases(expected, cs, 16, &max_new);
    if (n == 0) {
        printf("ok %d - # SKIP %s: no goldens at %s (run test/golden/gen_generate.py)\n", ++tap_n,
               family, expected);
        return;
    }
    struct sw_engine_adapter ad = {"ft", adapter_path};
    const char *aname = adapter_path ? "ft" : NULL;
    int leak;
    /* one at a time */
    struct sw_engine *e =
        open_engine(dir, 16, 0, 0, 8, adapter_path ? &ad : NULL, !!adapter_path, tokenizer);
    if (!OK(e != NULL, "%s: engine opens", family)) return;
    int alone = 0;
    for (int i = 0; i < n; i++)
        alone += run_cases(e, &cs[i], 1, max_new, aname, &leak);
    IS_INT(alone, n, "%s: greedy alone == transformers' generate (%d cases)", family, n);
    /* all in one batch, twice (the second run is served from the prefix cache) */
    IS_INT(run_cases(e, cs, n, max_new, aname, &leak), n, "%s: all cases in one batch", family);
    IS_INT(leak, 0, "%s: no block held after the batch", family);
    struct sw_engine_stats st;
    sw_engine_stats(e, &st);
    OK(st.prefix_cache_hits > 0, "%s: repeated prompts hit the prefix cache (%lld tokens)", family,
       (long long)st.prefix_cache_hits);
    sw_engine_close(e);
    /* chunked prefill (7 tokens a step) over blocks of 4 */
    e = open_engine(dir, 4, 7, 0, 8, adapter_path ? &ad : NULL, !!adapter_path, tokenizer);
    IS_INT(run_cases(e, cs, n, max_new, aname, &leak), n,
           "%s: chunked prefill (7 tokens a step), blocks of 4", family);
    sw_engine_close(e);
    /* a cache of 24 blocks of 4 (96 tokens): the batch does not fit, sequences get preempted */
    struct sw_model_config cfg;
    {
        struct sw_hfmodel *hf;
        sw_hfmodel_open(dir, &hf);
        cfg = hf->config;
        sw_hfmodel_close(hf);
    }
    int64_t per_block =
        (int64_t)cfg.num_hidden_layers * 2 * 4 * cfg.num_key_value_heads * cfg.head_dim * 4;
    g_max_model_len = 96;
    e = open_engine(dir, 4, 0, 24 * per_block, 8, adapter_path ? &ad : NULL, !!adapter_path,
                    tokenizer);
    g_max_model_len = 0;
    if (e) {
        /* max_model_len 96 here: drop what no longer fits */
        struct gcase fit[16];
        int nf = 0;
        for (int i = 0; i < n; i++)
            if (cs[i].n_prompt + max_new <= sw_engine_max_model_len(e)) fit[nf++] = cs[i];
        int ok = run_cases(e, fit, nf, max_new, aname, &leak);
        sw_engine_stats(e, &st);
        IS_INT(ok, nf, "%s: under preemption (%lld preemptions)", family,
               (long long)st.preemptions);
        OK(st.preemptions > 0, "%s: the small cache did preempt", family);
        IS_INT(leak, 0, "%s: no block held after preemptions", family);
        sw_engine_close(e);
    }
}

/* ---- detokenizer and stop strings --------------------------------------------------------- */

static void test_detok(void) {
    struct sw_tokenizer *tok;
    if (!OK(sw_tokenizer_load(GEN "model", &tok) == 0, "tokenizer")) return;
    const char *text = "Hello, wörld ✓ The quick brown fox jumps. Paris is the capital.";
    int32_t *ids;
    size_t n;
    sw_tokenizer_encode(tok, text, strlen(text), 0, &ids, &n);
    /* the prompt is the first 3 ids; the rest arrive one by one */
    const char *stops[2] = {"fox j", "capital"};
    struct {
        int n_stop, include;
        const char *want;
    } cases[] = {
        {0, 0, NULL},
        {2, 0, "fox j"},
        {2, 1, "fox j"},
    };
    char *pre = NULL;
    size_t plen;
    sw_tokenizer_decode(tok, ids, 3, 1, &pre, &plen);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct sw_detok d;
        sw_detok_init(&d, tok, 1, 3, stops, cases[c].n_stop, cases[c].include);
        char got[512] = "";
        size_t glen = 0;
        int whole = 1, matched = -1, held = 0;
        for (size_t k = 4; k <= n && matched < 0; k++) {
            sw_detok_add(&d, ids, (int64_t)k, &matched);
            const char *delta;
            size_t dl;
            sw_detok_take(&d, matched >= 0 || k == n, &delta, &dl);
            whole &= utf8_whole(delta, dl);
            memcpy(got + glen, delta, dl);
            glen += dl;
            got[glen] = 0;
            /* nothing handed out may contain the start of a stop string that then matches */
            if (cases[c].n_stop && strstr(got, "fox j")) held = 1;
        }
        const char *full = text + plen;
        char want[512];
        if (!cases[c].want) {
            snprintf(want, sizeof want, "%s", full);
        } else {
            const char *at = strstr(full, cases[c].want);
            size_t wl = (size_t)(at - full) + (cases[c].include ? strlen(cases[c].want) : 0);
            memcpy(want, full, wl);
            want[wl] = 0;
        }
        IS_STR(got, want, "detok case %zu: streamed text (stop %s, include %d)", c,
               cases[c].n_stop ? "yes" : "no", cases[c].include);
        OK(whole, "detok case %zu: every delta is whole UTF-8 characters", c);
        if (cases[c].n_stop) {
            IS_INT(matched, 0, "detok case %zu: the earliest stop string matched", c);
            OK(!held || cases[c].include, "detok case %zu: the stop string never left early", c);
        }
        sw_detok_release(&d);
    }
    free(pre);
    free(ids);
    sw_tokenizer_free(tok);
}

/* ---- behaviours on the generate golden model ---------------------------------------------- */

static const int32_t FOX[] = {50, 84, 67, 313, 287, 281, 308, 269};

static void submit1(struct sw_engine *e, const int32_t *ids, int64_t n,
                    const struct sw_sampling_params *p, struct req_out *o, const char *ad) {
    if (sw_engine_submit(e, ids, n, p, ad, collect, o, NULL) < 0) DIAG("submit: %s", sw_err_msg());
}

static void test_sampling_repro(struct sw_engine *e) {
    struct sw_sampling_params p;
    sw_sampling_params_init(&p);
    p.temperature = 0.9, p.top_p = 0.95, p.top_k = 40, p.max_tokens = 20, p.ignore_eos = 1;
    p.has_seed = 1, p.seed = 2024;
    struct req_out a = {0}, b = {0}, c[4];
    memset(c, 0, sizeof c);
    struct req_out *pa[] = {&a}, *pb[5] = {&b, &c[0], &c[1], &c[2], &c[3]};
    submit1(e, FOX, 8, &p, &a, NULL);
    run_all(e, pa, 1);
    /* the same request in a batch of others (different prompts and params) */
    struct sw_sampling_params q = p;
    q.seed = 7;
    int32_t other[] = {1, 85, 91, 85, 86, 71, 79, 201, 59, 266, 264};
    submit1(e, other, 11, &q, &c[0], NULL);
    submit1(e, FOX, 8, &p, &b, NULL);
    submit1(e, other, 5, &q, &c[1], NULL);
    struct sw_sampling_params g = greedy(15, 1.0);
    submit1(e, other, 9, &g, &c[2], NULL);
    submit1(e, FOX, 3, &q, &c[3], NULL);
    run_all(e, pb, 5);
    int same = a.s[0].n == b.s[0].n && a.s[0].n == 20;
    for (int i = 0; same && i < a.s[0].n; i++)
        same = a.s[0].ids[i] == b.s[0].ids[i];
    OK(same, "seeded sampling: alone == in a mixed batch (20 ids)");
    /* n = 3: index 0 is the n = 1 sequence (stream 0), the others differ */
    struct sw_sampling_params p3 = p;
    p3.n = 3;
    struct req_out m = {0}, *pm[] = {&m};
    submit1(e, FOX, 8, &p3, &m, NULL);
    run_all(e, pm, 1);
    same = m.s[0].n == a.s[0].n;
    for (int i = 0; same && i < a.s[0].n; i++)
        same = m.s[0].ids[i] == a.s[0].ids[i];
    OK(same, "n = 3: sequence 0 equals the n = 1 result");
    int differ = 0;
    for (int k = 1; k < 3; k++)
        for (int i = 0; i < m.s[k].n && i < m.s[0].n; i++)
            differ += m.s[k].ids[i] != m.s[0].ids[i];
    OK(differ > 0 && m.s[1].n == 20 && m.s[2].n == 20, "n = 3: the other sequences draw their own");
    OK(m.completion_tokens == 60 && m.prompt_tokens == 8, "n = 3 usage: 8 prompt, 60 completion");
    IS_INT(blocks_used(e), 0, "no block held after sampling");
}

static void test_fork_sharing(struct sw_engine *e) {
    /* a 53-token prompt over blocks of 16: 3 full + 1 partial block. n = 3 greedy. */
    int32_t chat[53];
    for (int i = 0; i < 53; i++)
        chat[i] = (int32_t)(3 + (i * 37) % 300);
    struct sw_sampling_params p = greedy(6, 1.0);
    p.n = 3;
    p.ignore_eos = 1;
    struct req_out o = {0};
    submit1(e, chat, 53, &p, &o, NULL);
    sw_engine_step(e); /* prefill + fork: the siblings share all 4 blocks */
    IS_INT(blocks_used(e), 4, "after the fork the 3 sequences share the prompt's 4 blocks");
    sw_engine_step(e); /* each writes into the shared partial block: 2 copies, 1 in place */
    IS_INT(blocks_used(e), 6, "copy-on-write of the partial block: 3 shared + 3 own");
    struct req_out *po[] = {&o};
    run_all(e, po, 1);
    struct sw_sampling_params p1 = greedy(6, 1.0);
    p1.ignore_eos = 1;
    struct req_out one = {0}, *p1o[] = {&one};
    submit1(e, chat, 53, &p1, &one, NULL);
    run_all(e, p1o, 1);
    int same = 1;
    for (int k = 0; k < 3; k++) {
        same &= o.s[k].n == 6;
        for (int i = 0; i < 6; i++)
            same &= o.s[k].ids[i] == one.s[0].ids[i];
    }
    OK(same, "greedy n = 3: every sequence equals the n = 1 result");
    IS_INT(blocks_used(e), 0, "no block held after n = 3");
}

static void test_stops(struct sw_engine *e) {
    /* prompt_fox of the goldens runs to the limit; its text has a "[" in the middle */
    struct gcase cs[8];
    int max_new;
    int n = load_cases(GEN "expected.json", cs, 8, &max_new), k = -1;
    for (int i = 0; i < n; i++)
        if (strcmp(cs[i].name, "prompt_fox") == 0) k = i;
    if (!OK(k >= 0, "prompt_fox golden")) return;
    struct sw_sampling_params p = greedy(max_new, 1.0);
    struct req_out full = {0}, *pf[] = {&full};
    submit1(e, cs[k].prompt, cs[k].n_prompt, &p, &full, NULL);
    run_all(e, pf, 1);
    const char *at = strstr(full.s[0].text, "[");
    if (!OK(at != NULL, "the fox text has a '[' (%s)", full.s[0].text)) return;
    const char *stops[] = {"zzz", "\x1d["};
    p.stop = stops, p.n_stop = 2;
    struct req_out cut = {0}, inc = {0}, *pc[] = {&cut, &inc};
    submit1(e, cs[k].prompt, cs[k].n_prompt, &p, &cut, NULL);
    p.include_stop_str_in_output = 1;
    submit1(e, cs[k].prompt, cs[k].n_prompt, &p, &inc, NULL);
    run_all(e, pc, 2);
    size_t want = (size_t)(at - full.s[0].text) - 1;
    OK(cut.s[0].tlen == want && memcmp(cut.s[0].text, full.s[0].text, want) == 0,
       "stop string: text ends exactly before it (%zu bytes)", cut.s[0].tlen);
    IS_INT(cut.s[0].fin, SW_FINISH_STOP, "stop string: finish stop");
    IS_STR(cut.s[0].stop_str, "\x1d[", "stop string reported");
    OK(inc.s[0].tlen == want + 2 && memcmp(inc.s[0].text, full.s[0].text, want + 2) == 0,
       "include_stop_str_in_output keeps it");
    OK(!cut.s[0].bad_utf8 && !full.s[0].bad_utf8, "deltas are whole UTF-8 characters");
    /* stop token id: the third generated id */
    int32_t sid = full.s[0].ids[2];
    struct sw_sampling_params q = greedy(max_new, 1.0);
    q.stop_token_ids = &sid, q.n_stop_token_ids = 1;
    struct req_out st = {0}, mt = {0}, *ps[] = {&st, &mt};
    submit1(e, cs[k].prompt, cs[k].n_prompt, &q, &st, NULL);
    q.min_tokens = 4; /* ids[3..] of the fox are the same id again: stops at the 4th */
    submit1(e, cs[k].prompt, cs[k].n_prompt, &q, &mt, NULL);
    run_all(e, ps, 2);
    OK(st.s[0].n == 3 && st.s[0].ids[2] == sid && st.s[0].stop_token == sid &&
           st.s[0].fin == SW_FINISH_STOP,
       "stop_token_ids: stops on it, id kept (%d ids)", st.s[0].n);
    OK(mt.s[0].n >= 4 && mt.s[0].ids[mt.s[0].n - 1] == sid, "min_tokens defers the stop id (%d)",
       mt.s[0].n);
    /* max_tokens */
    struct sw_sampling_params m = greedy(5, 1.0);
    struct req_out ml = {0}, *pm[] = {&ml};
    submit1(e, cs[k].prompt, cs[k].n_prompt, &m, &ml, NULL);
    run_all(e, pm, 1);
    OK(ml.s[0].n == 5 && ml.s[0].fin == SW_FINISH_LENGTH && ml.s[0].usage_completion == 5,
       "max_tokens 5: length");
    OK(!ml.s[0].after_finish && !ml.done_twice && !ml.bad_index, "no event after finish");
}

/* log softmax of sw-eval's logits at position t for token id */
static double ref_logprob(const float *logits, int64_t V, int64_t t, int32_t id, int *is_max) {
    const float *x = logits + t * V;
    double mx = -INFINITY, z = 0;
    int32_t am = 0;
    for (int64_t v = 0; v < V; v++)
        if (x[v] > mx) mx = x[v], am = (int32_t)v;
    for (int64_t v = 0; v < V; v++)
        z += exp(x[v] - mx);
    if (is_max) *is_max = am == id;
    return x[id] - mx - log(z);
}

static void test_logprobs(struct sw_engine *e) {
    struct sw_eval_model *em;
    if (sw_eval_model_open(GEN "model", NULL, &em) < 0) {
        OK(0, "eval model: %s", sw_err_msg());
        return;
    }
    struct sw_sampling_params p;
    sw_sampling_params_init(&p);
    p.temperature = 0.8, p.max_tokens = 12, p.ignore_eos = 1, p.has_seed = 1, p.seed = 5;
    p.logprobs = 5, p.prompt_logprobs = 2;
    struct req_out o = {0}, *po[] = {&o};
    submit1(e, FOX, 8, &p, &o, NULL);
    run_all(e, po, 1);
    int64_t T = 8 + o.s[0].n, V = sw_engine_model_config(e)->vocab_size;
    int32_t ids[64];
    memcpy(ids, FOX, sizeof FOX);
    memcpy(ids + 8, o.s[0].ids, (size_t)o.s[0].n * sizeof(int32_t));
    float *lg = malloc((size_t)(T * V) * sizeof(float));
    struct sw_eval_batch b = {.B = 1, .T = T, .input_ids = ids};
    sw_eval_logits(em, &b, 0, lg, NULL, NULL);
    double err = 0, perr = 0;
    for (int i = 0; i < o.s[0].n; i++)
        err = fmax(err, fabs(o.s[0].lp[i] - ref_logprob(lg, V, 7 + i, ids[8 + i], NULL)));
    OK(o.s[0].n == 12 && err < 1e-4, "logprobs == log softmax of sw-eval logits (max |diff| %.3g)",
       err);
    OK(o.s[0].top_ok, "top alternatives sorted, most likely first");
    int rank_ok = 1;
    for (int t = 0; t < 7; t++) {
        int ismax;
        perr = fmax(perr, fabs(o.plp[t] - ref_logprob(lg, V, t, FOX[t + 1], &ismax)));
        rank_ok &= (o.plp_rank[t] == 1) == ismax;
    }
    OK(o.n_plp == 7 && perr < 1e-4, "prompt logprobs (7) == log softmax (max |diff| %.3g)", perr);
    OK(rank_ok, "prompt logprob rank 1 exactly where the token is the argmax");
    /* echo: max_tokens 0 with prompt logprobs */
    struct sw_sampling_params q = greedy(0, 1.0);
    q.prompt_logprobs = 0;
    struct req_out echo = {0}, *pe[] = {&echo};
    submit1(e, FOX, 8, &q, &echo, NULL);
    run_all(e, pe, 1);
    OK(echo.n_plp == 7 && echo.s[0].n == 0 && echo.s[0].fin == SW_FINISH_LENGTH &&
           fabs(echo.plp[3] - o.plp[3]) < 1e-5,
       "max_tokens 0: prompt logprobs only");
    /* scoring: contexts sharing a prefix */
    /* the second call's contexts share the first's 16-token block */
    struct sw_score_request rq[3] = {
        {ids, 17, ids + 17, 3}, {ids, 18, ids + 18, 2}, {ids, 16, ids + 16, 4}};
    struct sw_score_result res[3];
    struct sw_engine_stats s0, s1;
    int rc = sw_engine_score(e, rq, 1, NULL, res);
    sw_engine_stats(e, &s0);
    if (rc == 0) rc = sw_engine_score(e, rq + 1, 2, NULL, res + 1);
    sw_engine_stats(e, &s1);
    double serr = rc < 0 ? INFINITY : 0;
    int greedy_ok = 1;
    for (int i = 0; i < 3 && rc == 0; i++) {
        double want = 0;
        int g = 1, ism;
        for (int64_t j = 0; j < rq[i].n_cont; j++) {
            want += ref_logprob(lg, V, rq[i].n_context - 1 + j, rq[i].cont[j], &ism);
            g &= ism;
        }
        serr = fmax(serr, fabs(res[i].logprob - want));
        greedy_ok &= res[i].is_greedy == g;
    }
    OK(serr < 1e-4, "score: log-likelihoods == sums of log softmax (max |diff| %.3g)", serr);
    OK(greedy_ok, "score: is_greedy");
    OK(s1.prefix_cache_hits > s0.prefix_cache_hits, "score requests reuse cached prefix blocks");
    free(lg);
    sw_eval_model_close(em);
    IS_INT(blocks_used(e), 0, "no block held after logprobs and scoring");
}

static void test_abort_and_errors(struct sw_engine *e) {
    struct sw_sampling_params p = greedy(200, 1.0);
    p.ignore_eos = 1;
    struct req_out a = {0}, b = {0}, c = {0};
    uint64_t ida;
    sw_engine_submit(e, FOX, 8, &p, NULL, collect, &a, &ida);
    submit1(e, FOX, 6, &p, &b, NULL);
    c.abort_after = 3; /* the callback asks to stop */
    submit1(e, FOX, 7, &p, &c, NULL);
    for (int i = 0; i < 5; i++)
        sw_engine_step(e);
    OK(blocks_used(e) > 0, "blocks in use while running");
    OK(sw_engine_abort(e, ida) == 0, "abort");
    sw_engine_step(e);
    OK(a.done && a.s[0].fin == SW_FINISH_ABORT && a.s[0].n < 200,
       "aborted: finish abort and "
       "request_done (%d ids)",
       a.s[0].n);
    OK(c.done && c.s[0].fin == SW_FINISH_ABORT && c.s[0].n == 3,
       "a callback returning non-zero aborts its request (%d ids)", c.s[0].n);
    struct sw_engine_stats st;
    sw_engine_stats(e, &st);
    IS_INT(st.running, 1, "one left running");
    sw_engine_abort(e, 99999);
    struct req_out *pb[] = {&b};
    run_all(e, pb, 1);
    IS_INT(blocks_used(e), 0, "every block free after finish and aborts");
    OK(a.s[0].n > 0 && !a.done_twice && !c.done_twice, "one request_done per request");
    /* errors at submit */
    int32_t bad[] = {1, 100000};
    OK(sw_engine_submit(e, bad, 2, &p, NULL, collect, &a, NULL) == SW_EINVAL,
       "a token outside the vocabulary is refused");
    OK(sw_engine_submit(e, FOX, 0, &p, NULL, collect, &a, NULL) == SW_EINVAL, "empty prompt");
    int32_t *longp = calloc(300, sizeof(int32_t));
    OK(sw_engine_submit(e, longp, 300, &p, NULL, collect, &a, NULL) == SW_ERANGE,
       "prompt longer than max_model_len: %s", sw_err_msg());
    free(longp);
    OK(sw_engine_submit(e, FOX, 8, &p, "nope", collect, &a, NULL) == SW_ENOTFOUND,
       "unknown adapter: %s", sw_err_msg());
    struct sw_sampling_params q = p;
    q.top_p = 2;
    OK(sw_engine_submit(e, FOX, 8, &q, NULL, collect, &a, NULL) == SW_EINVAL, "bad params");
}

static void test_prefix_cache(struct sw_engine *e) {
    int32_t pr[40];
    for (int i = 0; i < 40; i++)
        pr[i] = (int32_t)(10 + (i * 7) % 250);
    struct sw_sampling_params p = greedy(5, 1.0);
    struct req_out a = {0}, b = {0}, *pa[] = {&a}, *pb[] = {&b};
    submit1(e, pr, 40, &p, &a, NULL);
    run_all(e, pa, 1);
    submit1(e, pr, 40, &p, &b, NULL);
    run_all(e, pb, 1);
    IS_INT(b.cached_tokens, 32, "the same 40-token prompt again: 2 full blocks of 16 cached");
    int same = a.s[0].n == b.s[0].n;
    for (int i = 0; same && i < a.s[0].n; i++)
        same = a.s[0].ids[i] == b.s[0].ids[i];
    OK(same, "prefix-cache hit gives the same output");
    struct sw_engine_stats st;
    sw_engine_stats(e, &st);
    OK(st.kv_blocks_cached > 0 && st.kv_blocks_used == 0, "free blocks stay cached (%lld)",
       (long long)st.kv_blocks_cached);
}

/* ---- LoRA --------------------------------------------------------------------------------- */

/* Greedy by sw-eval (full recompute per token, the model's own LoRA path). */
static int eval_greedy(const char *dir, const char *adapter, const int32_t *prompt, int n,
                       int max_new, int32_t *out) {
    struct sw_eval_model *em;
    if (sw_eval_model_open(dir, adapter, &em) < 0) return -1;
    int64_t V = em->hf->config.vocab_size;
    int32_t ids[128];
    memcpy(ids, prompt, (size_t)n * sizeof(int32_t));
    float *lg = malloc((size_t)((n + max_new) * V) * sizeof(float));
    for (int k = 0; k < max_new; k++) {
        struct sw_eval_batch b = {.B = 1, .T = n + k, .input_ids = ids};
        sw_eval_logits(em, &b, 0, lg, NULL, NULL);
        const float *x = lg + (n + k - 1) * V;
        int32_t am = 0;
        for (int64_t v = 1; v < V; v++)
            if (x[v] > x[am]) am = (int32_t)v;
        ids[n + k] = out[k] = am;
    }
    free(lg);
    sw_eval_model_close(em);
    return 0;
}

static void test_lora(void) {
    const char *dir = "test/golden/model/llama", *adp = "test/golden/model/llama_lora";
    struct sw_engine_adapter ads[2] = {{"ft", adp}, {"ft2", adp}};
    struct sw_engine *e = open_engine(dir, 4, 0, 0, 8, ads, 1, GEN "model");
    if (!OK(e != NULL, "engine with an adapter")) return;
    OK(sw_engine_adapter_count(e) == 1 && strcmp(sw_engine_adapter_name(e, 0), "ft") == 0,
       "adapter listed");
    OK(sw_engine_adapter_add(e, "ft2", adp) == 0, "adapter added at run time");
    OK(sw_engine_adapter_add(e, "ft2", adp) == SW_EINVAL, "duplicate name refused");
    int64_t V = sw_engine_model_config(e)->vocab_size;
    int32_t pr[12];
    for (int i = 0; i < 12; i++)
        pr[i] = (int32_t)((i * 11 + 3) % V);
    int32_t want_base[8], want_ft[8];
    eval_greedy(dir, NULL, pr, 12, 8, want_base);
    eval_greedy(dir, adp, pr, 12, 8, want_ft);
    int differ = memcmp(want_base, want_ft, sizeof want_base) != 0;
    struct sw_sampling_params p = greedy(8, 1.0);
    p.ignore_eos = 1;
    struct req_out o[4], *po[] = {&o[0], &o[1], &o[2], &o[3]};
    memset(o, 0, sizeof o);
    submit1(e, pr, 12, &p, &o[0], "ft");
    submit1(e, pr, 12, &p, &o[1], NULL);
    submit1(e, pr, 12, &p, &o[2], "ft2");
    submit1(e, pr, 12, &p, &o[3], sw_engine_model_name(e));
    OK(sw_engine_adapter_remove(e, "ft2") == SW_ESTATE, "an adapter in use cannot be removed");
    run_all(e, po, 4);
    int ok_ft = 1, ok_base = 1;
    for (int i = 0; i < 8; i++) {
        ok_ft &= o[0].s[0].ids[i] == want_ft[i] && o[2].s[0].ids[i] == want_ft[i];
        ok_base &= o[1].s[0].ids[i] == want_base[i] && o[3].s[0].ids[i] == want_base[i];
    }
    OK(differ, "the adapter changes the greedy output (so the check below means something)");
    OK(ok_ft, "adapter requests in a mixed batch == sw-eval with the adapter");
    OK(ok_base, "base requests in the same batch == sw-eval without it");
    OK(sw_engine_adapter_remove(e, "ft2") == 0 && sw_engine_adapter_count(e) == 1,
       "adapter removed");
    IS_INT(blocks_used(e), 0, "no block held after the LoRA batch");
    sw_engine_close(e);
}

/* ---- stress on the loop thread ------------------------------------------------------------ */

static void test_stress(void) {
    struct sw_engine *e =
        open_engine(GEN "model", 4, 64, 66 * 2 * 2 * 4 * 2 * 16 * 4, 16, NULL, 0, NULL);
    if (!OK(e != NULL, "stress engine")) return;
    OK(sw_engine_start(e) == 0, "loop thread started");
    enum { NR = 80 };
    struct req_out *o = calloc(NR, sizeof *o);
    uint64_t ids[NR];
    struct sw_rng r;
    sw_rng_init(&r, 77, 0);
    int submitted = 0;
    for (int i = 0; i < NR; i++) {
        int32_t pr[48];
        int n = 1 + (int)sw_rng_below(&r, 40);
        for (int k = 0; k < n; k++)
            pr[k] = (int32_t)(3 + sw_rng_below(&r, 20)); /* shared bits */
        struct sw_sampling_params p;
        sw_sampling_params_init(&p);
        p.max_tokens = 1 + (int64_t)sw_rng_below(&r, 30);
        p.temperature = sw_rng_below(&r, 2) ? 0.0 : 0.7;
        p.n = 1 + (int)sw_rng_below(&r, 3);
        p.logprobs = sw_rng_below(&r, 4) == 0 ? 2 : -1;
        if (sw_engine_submit(e, pr, n, &p, NULL, collect, &o[i], &ids[i]) == 0) submitted++;
        if (i % 7 == 3) sw_engine_abort(e, ids[sw_rng_below(&r, (uint64_t)i + 1)]);
        if (i % 10 == 0) usleep(2000);
    }
    IS_INT(submitted, NR, "80 requests submitted while the loop runs");
    for (int i = 0; i < NR; i += 5)
        sw_engine_abort(e, ids[i]);
    /* wait for every request_done */
    int done = 0;
    for (int t = 0; t < 3000 && done < NR; t++) {
        usleep(10000);
        done = 0;
        for (int i = 0; i < NR; i++)
            done += __atomic_load_n(&o[i].done, __ATOMIC_ACQUIRE);
    }
    IS_INT(done, NR, "every request got its request_done");
    OK(sw_engine_stop(e, 1000) == 0, "stop");
    int twice = 0, bad = 0, unfinished = 0;
    for (int i = 0; i < NR; i++) {
        twice += o[i].done_twice;
        bad += o[i].bad_index;
        for (int k = 0; k < 3; k++)
            bad += o[i].s[k].bad_utf8 + o[i].s[k].after_finish;
    }
    OK(!twice && !bad, "no duplicate request_done, no event after a finish, whole UTF-8");
    (void)unfinished;
    struct sw_engine_stats st;
    sw_engine_stats(e, &st);
    OK(st.kv_blocks_used == 0 && st.running == 0 && st.waiting == 0,
       "all blocks free after the stress run (used %lld, running %d, waiting %d)",
       (long long)st.kv_blocks_used, st.running, st.waiting);
    OK(st.requests_finished + st.requests_aborted == NR && st.requests_aborted > 0,
       "counters: %lld finished, %lld aborted, %lld preemptions", (long long)st.requests_finished,
       (long long)st.requests_aborted, (long long)st.preemptions);
    /* submit after stop is refused; the synchronous API runs on the caller's thread */
    struct sw_sampling_params p = greedy(4, 1.0);
    OK(sw_engine_submit(e, FOX, 8, &p, NULL, collect, &o[0], NULL) == SW_ESTATE,
       "submit after stop refused");
    free(o);
    sw_engine_close(e);
}

static void test_sync_api(struct sw_engine *e) {
    const int32_t *ids[2] = {FOX, FOX + 2};
    int64_t lens[2] = {8, 6};
    struct sw_sampling_params p = greedy(6, 1.0);
    p.logprobs = 0;
    struct sw_generation g[2];
    int rc = sw_engine_generate(e, ids, lens, 2, &p, NULL, g);
    OK(rc == 0 && g[0].n == 1 && g[0].seqs[0].n_ids > 0 && g[1].seqs[0].n_ids > 0 &&
           g[0].prompt_tokens == 8 && g[0].seqs[0].logprobs != NULL,
       "sw_engine_generate: results for both prompts");
    struct req_out o = {0}, *po[] = {&o};
    submit1(e, FOX, 8, &p, &o, NULL);
    run_all(e, po, 1);
    int same = rc == 0 && g[0].seqs[0].n_ids == o.s[0].n;
    for (int i = 0; same && i < o.s[0].n; i++)
        same = g[0].seqs[0].ids[i] == o.s[0].ids[i];
    OK(same && rc == 0 && strcmp(g[0].seqs[0].text, o.s[0].text) == 0,
       "sw_engine_generate == the streaming API");
    if (rc == 0) sw_generation_release(&g[0]), sw_generation_release(&g[1]);
    /* on the loop thread */
    sw_engine_start(e);
    rc = sw_engine_generate(e, ids, lens, 2, &p, NULL, g);
    same = rc == 0 && g[0].seqs[0].n_ids == o.s[0].n;
    for (int i = 0; same && i < o.s[0].n; i++)
        same = g[0].seqs[0].ids[i] == o.s[0].ids[i];
    OK(same, "sw_engine_generate while the loop thread runs");
    if (rc == 0) sw_generation_release(&g[0]), sw_generation_release(&g[1]);
    sw_engine_stop(e, -1);
}

/* The engine over a borrowed model (a trainer's, generating its own rollouts): the model's LoRA
 * applies to every request and equals the same adapter served from its folder; switching the
 * adapter off (a weights change, announced with sw_engine_weights_changed) gives the base's
 * tokens although the prompt's blocks were cached with the adapter on. */
static int greedy_on(struct sw_engine *e, const int32_t *pr, int n, int32_t *got, int64_t *cached) {
    struct sw_sampling_params p = greedy(8, 1.0);
    p.ignore_eos = 1;
    struct req_out o = {0}, *po[] = {&o};
    submit1(e, pr, n, &p, &o, NULL);
    if (run_all(e, po, 1) < 0 || o.s[0].n != 8) return -1;
    for (int i = 0; i < 8; i++)
        got[i] = o.s[0].ids[i];
    if (cached) *cached = o.cached_tokens;
    return 0;
}

static void test_borrowed_model(void) {
    const char *dir = "test/golden/model/llama", *adp = "test/golden/model/llama_lora";
    struct sw_backend *be = NULL;
    if (!OK(sw_backend_open(SW_DEVICE_CPU, &be) == 0, "borrowed: backend")) return;
    struct sw_model *m = sw_test_llama_lora(be); /* dir + adp */
    struct sw_engine_opts o;
    sw_engine_opts_init(&o);
    o.model_dir = dir, o.tokenizer = GEN "model", o.block_size = 4, o.model = m;
    struct sw_engine *e = NULL;
    int rc = m ? sw_engine_open(&o, &e) : SW_EINVAL;
    if (!OK(rc == 0, "engine over a borrowed LoRA model")) {
        DIAG("%s", sw_err_msg());
        sw_model_free(m), sw_backend_close(be);
        return;
    }
    int64_t V = sw_engine_model_config(e)->vocab_size;
    int32_t pr[12], want_base[8], want_ft[8], got[8];
    for (int i = 0; i < 12; i++)
        pr[i] = (int32_t)((i * 11 + 3) % V);
    eval_greedy(dir, NULL, pr, 12, 8, want_base);
    eval_greedy(dir, adp, pr, 12, 8, want_ft);
    OK(memcmp(want_base, want_ft, sizeof want_ft) != 0, "borrowed: the adapter changes the tokens");
    OK(greedy_on(e, pr, 12, got, NULL) == 0 && memcmp(got, want_ft, sizeof got) == 0,
       "borrowed: the model's own LoRA = the adapter served from its folder");
    int64_t cached = 0;
    rc = greedy_on(e, pr, 12, got, &cached);
    OK(rc == 0 && cached > 0 && memcmp(got, want_ft, sizeof got) == 0,
       "borrowed: again, from cached prefix blocks (%lld cached tokens)", (long long)cached);
    sw_model_set_lora_enabled(m, 0);
    sw_engine_weights_changed(e);
    rc = greedy_on(e, pr, 12, got, &cached);
    OK(rc == 0 && cached == 0 && memcmp(got, want_base, sizeof got) == 0,
       "borrowed: adapter off + weights_changed: the base's tokens, no stale cached blocks");
    IS_INT(sw_engine_adapter_add(e, "x", adp), SW_EINVAL, "borrowed: no extra adapters");
    sw_engine_close(e);
    OK(sw_model_param_find(m, "model.embed_tokens.weight") != NULL,
       "borrowed: closing the engine leaves the model to its owner");
    o.model_dir = "test/golden/model/qwen2";
    rc = sw_engine_open(&o, &e);
    OK(rc == SW_EINVAL && strstr(sw_err_msg(), "does not match"),
       "borrowed: a model_dir of another architecture is refused");
    if (rc != SW_EINVAL) sw_engine_close(e);
    sw_model_free(m);
    sw_backend_close(be);
}

/* A full queue is SW_EBUSY (retry later: sw-serve's 429), apart from SW_ERANGE (a prompt too
 * long: 400); the queued request still runs. */
static void test_queue_full(void) {
    g_max_waiting = 2;
    struct sw_engine *e = open_engine(GEN "model", 16, 0, 0, 8, NULL, 0, NULL);
    g_max_waiting = 0;
    if (!OK(e != NULL, "engine with max_waiting 2")) return;
    struct sw_sampling_params p = greedy(4, 1.0);
    struct req_out a = {0}, b = {0}, c = {0};
    OK(sw_engine_submit(e, FOX, 8, &p, NULL, collect, &a, NULL) == 0 &&
           sw_engine_submit(e, FOX, 8, &p, NULL, collect, &b, NULL) == 0,
       "two requests queue");
    IS_INT(sw_engine_submit(e, FOX, 8, &p, NULL, collect, &c, NULL), SW_EBUSY,
           "the third is SW_EBUSY: %s", sw_err_msg());
    struct req_out *pa[] = {&a, &b};
    OK(run_all(e, pa, 2) == 0 && a.s[0].n == 4 && b.s[0].n == 4, "the queued ones finish");
    sw_engine_close(e);
}

int main(void) {
    sw_log_set_level(SW_LOG_WARN);
    test_detok();
    test_golden(GEN "model", GEN "expected.json", "qwen3", NULL, NULL);
    test_golden(GEN "llama/model", GEN "llama/expected.json", "llama", GEN "model", NULL);
    test_golden(GEN "qwen2/model", GEN "qwen2/expected.json", "qwen2", GEN "model", NULL);
    test_golden(GEN "mistral/model", GEN "mistral/expected.json", "mistral (window 6)", GEN "model",
                NULL);
    test_golden(GEN "gemma2/model", GEN "gemma2/expected.json", "gemma2 (local/global, soft-caps)",
                GEN "model", NULL);
    test_golden(GEN "llama/model", GEN "llama/expected_lora.json", "llama+lora", GEN "model",
                GEN "llama/adapter");
    struct sw_engine *e = open_engine(GEN "model", 16, 0, 0, 8, NULL, 0, NULL);
    if (!OK(e != NULL, "engine on the generate golden model")) return tap_done();
    int n_eos;
    const int32_t *eos = sw_engine_eos_ids(e, &n_eos);
    OK(n_eos == 2 && eos[0] == 2 && eos[1] == 293, "EOS ids from generation_config.json");
    OK(sw_engine_template(e) != NULL && sw_engine_tokenizer(e) != NULL, "template and tokenizer");
    struct sw_sampling_params d;
    sw_engine_default_params(e, &d);
    OK(d.temperature == 0 && d.max_tokens == 24, "defaults from generation_config.json "
                                                 "(greedy, max_new_tokens 24)");
    test_sampling_repro(e);
    test_fork_sharing(e);
    test_stops(e);
    test_logprobs(e);
    test_abort_and_errors(e);
    test_prefix_cache(e);
    test_sync_api(e);
    sw_engine_close(e);
    test_lora();
    test_queue_full();
    test_borrowed_model();
    test_stress();
    return tap_done();
}
