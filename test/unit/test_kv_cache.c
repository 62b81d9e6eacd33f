/* test_kv_cache — the engine's paged KV cache from the bottom up:
 *   - sw_kv_blocks: allocation, reference counts, LRU order of the free list, prefix-cache
 *     registration/lookup/eviction (identity checked by content, not by hash alone), invariants
 *     after a random workload;
 *   - the CPU kv_cache_write and paged_attention_fwd ops against the dense training attention
 *     (attention_fwd) on the same keys, with scattered blocks, GQA, chunked queries;
 *   - sw_model_infer (prefill in chunks + decode over the cache) against sw_model_forward's
 *     logits on the golden tiny models of the three families, and LoRA through per-sequence
 *     adapters against the model's own LoRA path.
 * Run from the repository root. */
#include "sw_kv_blocks.h"
#include "sw_model_infer.h"

#include "sw_err.h"
#include "sw_hfmodel.h"
#include "sw_kernels.h"
#include "sw_rng.h"
#include "tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* OK on a 0 return, printing the error message when it fails. */
#define OK0(expr, ...)                                                                             \
    do {                                                                                           \
        if (!OK((expr) == 0, __VA_ARGS__)) DIAG("%s", sw_err_msg());                               \
    } while (0)

/* ---- block manager ------------------------------------------------------------------------ */

static void test_blocks_basic(void) {
    struct sw_kv_blocks *bm;
    OK(sw_kv_blocks_new(0, 16, 1, &bm) == SW_EINVAL, "zero blocks refused");
    if (!OK(sw_kv_blocks_new(4, 2, 1, &bm) == 0, "new")) return;
    IS_INT(sw_kv_blocks_num_free(bm), 4, "all free");
    int32_t a = sw_kv_blocks_alloc(bm), b = sw_kv_blocks_alloc(bm);
    IS_INT(a, 0, "first block handed out is the list head");
    IS_INT(b, 1, "then the next");
    IS_INT(sw_kv_blocks_num_used(bm), 2, "2 used");
    sw_kv_blocks_retain(bm, a);
    IS_INT(sw_kv_blocks_refs(bm, a), 2, "retain counts");
    sw_kv_blocks_release(bm, a);
    IS_INT(sw_kv_blocks_num_free(bm), 2, "still referenced once");
    /* register a as cached, release it: it stays findable until reused */
    int32_t toks[2] = {7, 8}, other[2] = {7, 9};
    uint64_t h = sw_kv_block_hash(0, toks, 2, 0);
    IS_INT(sw_kv_blocks_register(bm, a, h, 0, toks, 0), 1, "register");
    IS_INT(sw_kv_blocks_register(bm, b, h, 0, toks, 0), 0,
           "an identical block is not registered twice");
    sw_kv_blocks_release(bm, a);
    IS_INT(sw_kv_blocks_num_cached_free(bm), 1, "a is free and cached");
    IS_INT(sw_kv_blocks_lookup(bm, h, 0, toks, 0), a, "lookup finds a");
    IS_INT(sw_kv_blocks_lookup(bm, h, 0, other, 0), -1, "same hash, other tokens: no hit");
    IS_INT(sw_kv_blocks_lookup(bm, h, 1, toks, 0), -1, "other parent: no hit");
    IS_INT(sw_kv_blocks_lookup(bm, h, 0, toks, 5), -1, "other adapter: no hit");
    sw_kv_blocks_retain(bm, a); /* a prefix hit takes it back off the free list */
    IS_INT(sw_kv_blocks_num_free(bm), 2, "hit leaves the free list");
    sw_kv_blocks_release(bm, a);
    /* free list is LRU: 2, 3 (never used) come before a */
    int32_t c = sw_kv_blocks_alloc(bm), d = sw_kv_blocks_alloc(bm);
    OK(c == 2 && d == 3, "least recently freed first (got %d, %d)", (int)c, (int)d);
    IS_INT(sw_kv_blocks_lookup(bm, h, 0, toks, 0), a, "a still cached");
    int32_t e2 = sw_kv_blocks_alloc(bm);
    IS_INT(e2, a, "a is evicted when needed");
    IS_INT(sw_kv_blocks_lookup(bm, h, 0, toks, 0), -1, "evicted: gone from the cache");
    IS_INT(sw_kv_blocks_alloc(bm), -1, "pool exhausted");
    int64_t q, hit;
    sw_kv_blocks_counters(bm, &q, &hit);
    OK(q == 6 && hit == 2, "counters (queries %lld, hits %lld)", (long long)q, (long long)hit);
    OK0(sw_kv_blocks_check(bm), "invariants");
    sw_kv_blocks_release(bm, b), sw_kv_blocks_release(bm, c), sw_kv_blocks_release(bm, d);
    sw_kv_blocks_release(bm, e2);
    IS_INT(sw_kv_blocks_num_free(bm), 4, "all back");
    sw_kv_blocks_free(bm);

    /* caching off: no lookups, no registrations */
    OK(sw_kv_blocks_new(2, 2, 0, &bm) == 0, "new without caching");
    a = sw_kv_blocks_alloc(bm);
    IS_INT(sw_kv_blocks_register(bm, a, h, 0, toks, 0), 0, "no registration");
    IS_INT(sw_kv_blocks_lookup(bm, h, 0, toks, 0), -1, "no lookup");
    sw_kv_blocks_free(bm);
}

/* Random alloc/retain/release/register/lookup, checking invariants and that reference counts
 * match a shadow count. */
static void test_blocks_random(void) {
    struct sw_kv_blocks *bm;
    enum { NB = 64, BS = 4, HOLD = 256 };
    sw_kv_blocks_new(NB, BS, 1, &bm);
    int32_t held[HOLD];
    int nheld = 0, bad = 0;
    int shadow[NB] = {0};
    struct sw_rng r;
    sw_rng_init(&r, 5, 0);
    for (int it = 0; it < 20000; it++) {
        int op = (int)sw_rng_below(&r, 4);
        if (op == 0 && nheld < HOLD) {
            int32_t id = sw_kv_blocks_alloc(bm);
            if (id >= 0) held[nheld++] = id, shadow[id]++;
        } else if (op == 1 && nheld > 0 && nheld < HOLD) {
            int32_t id = held[sw_rng_below(&r, (uint64_t)nheld)];
            sw_kv_blocks_retain(bm, id);
            held[nheld++] = id, shadow[id]++;
        } else if (op == 2 && nheld > 0) {
            int k = (int)sw_rng_below(&r, (uint64_t)nheld);
            sw_kv_blocks_release(bm, held[k]);
            shadow[held[k]]--;
            held[k] = held[--nheld];
        } else if (nheld > 0) {
            int32_t toks[BS];
            for (int i = 0; i < BS; i++)
                toks[i] = (int32_t)sw_rng_below(&r, 3);
            uint64_t h = sw_kv_block_hash(0, toks, BS, 0);
            int32_t hit = sw_kv_blocks_lookup(bm, h, 0, toks, 0);
            if (hit >= 0 && nheld < HOLD) {
                sw_kv_blocks_retain(bm, hit);
                held[nheld++] = hit, shadow[hit]++;
            } else if (hit < 0) {
                sw_kv_blocks_register(bm, held[sw_rng_below(&r, (uint64_t)nheld)], h, 0, toks, 0);
            }
        }
        if (it % 997 == 0 && sw_kv_blocks_check(bm) != 0) bad++;
    }
    for (int i = 0; i < NB; i++)
        bad += shadow[i] != sw_kv_blocks_refs(bm, i);
    OK(bad == 0, "20000 random operations: invariants and reference counts hold");
    while (nheld > 0)
        sw_kv_blocks_release(bm, held[--nheld]);
    IS_INT(sw_kv_blocks_num_free(bm), NB, "everything free at the end");
    OK(sw_kv_blocks_check(bm) == 0, "invariants at the end");
    sw_kv_blocks_free(bm);
}

/* ---- kernels ------------------------------------------------------------------------------ */

/* Paged attention of nseq sequences with scattered blocks == dense causal attention of each
 * sequence's full keys (the training op), for the rows of the new tokens. */
static void test_paged_attention(struct sw_backend *be) {
    enum { NSEQ = 3, HQ = 4, HK = 2, D = 8, BSZ = 4, NBLK = 32 };
    int lens[NSEQ] = {13, 5, 9}, qlen[NSEQ] = {13, 1, 3}; /* prefill, decode, chunk */
    struct sw_rng r;
    sw_rng_init(&r, 11, 0);
    size_t row = HK * D;
    float *kc = calloc((size_t)NBLK * BSZ * row, sizeof(float));
    float *vc = calloc((size_t)NBLK * BSZ * row, sizeof(float));
    int32_t bt[NSEQ * 8], cu[NSEQ + 1], sl[NSEQ], slots[64];
    float q[64 * HQ * D], kn[64 * HK * D], vn[64 * HK * D], out[64 * HQ * D];
    /* blocks handed out in a scrambled order */
    int32_t perm[NBLK];
    for (int i = 0; i < NBLK; i++)
        perm[i] = (i * 7 + 3) % NBLK;
    int nextb = 0, N = 0;
    float *fullk[NSEQ], *fullv[NSEQ], *fullq[NSEQ];
    cu[0] = 0;
    for (int s = 0; s < NSEQ; s++) {
        int nb = (lens[s] + BSZ - 1) / BSZ;
        for (int b = 0; b < 8; b++)
            bt[s * 8 + b] = b < nb ? perm[nextb++] : 0;
        fullk[s] = malloc((size_t)lens[s] * row * sizeof(float));
        fullv[s] = malloc((size_t)lens[s] * row * sizeof(float));
        fullq[s] = malloc((size_t)lens[s] * HQ * D * sizeof(float));
        sw_rng_fill_normal(&r, fullk[s], (size_t)lens[s] * row, 0, 1);
        sw_rng_fill_normal(&r, fullv[s], (size_t)lens[s] * row, 0, 1);
        sw_rng_fill_normal(&r, fullq[s], (size_t)lens[s] * HQ * D, 0, 1);
        /* the cached part goes in directly; the new rows through kv_cache_write */
        int first = lens[s] - qlen[s];
        for (int t = 0; t < lens[s]; t++) {
            int slot = bt[s * 8 + t / BSZ] * BSZ + t % BSZ;
            if (t < first) {
                memcpy(kc + (size_t)slot * row, fullk[s] + (size_t)t * row, row * sizeof(float));
                memcpy(vc + (size_t)slot * row, fullv[s] + (size_t)t * row, row * sizeof(float));
            } else {
                int n = N + t - first;
                slots[n] = slot;
                memcpy(kn + (size_t)n * row, fullk[s] + (size_t)t * row, row * sizeof(float));
                memcpy(vn + (size_t)n * row, fullv[s] + (size_t)t * row, row * sizeof(float));
                memcpy(q + (size_t)n * HQ * D, fullq[s] + (size_t)t * HQ * D,
                       HQ * D * sizeof(float));
            }
        }
        N += qlen[s];
        cu[s + 1] = N;
        sl[s] = lens[s];
    }
    OK(be->kv_cache_write(be, kc, vc, kn, vn, slots, N, HK, D, NBLK * BSZ) == 0, "kv_cache_write");
    int32_t badslot = NBLK * BSZ;
    OK(be->kv_cache_write(be, kc, vc, kn, vn, &badslot, 1, HK, D, NBLK * BSZ) == SW_ERANGE,
       "a slot outside the cache is refused");
    float scale = 1.0f / sqrtf((float)D);
    OK(be->paged_attention_fwd(be, out, q, kc, vc, bt, 8, cu, sl, NSEQ, 13, 13, N, HQ, HK, D, BSZ,
                               NBLK, scale) == 0,
       "paged_attention_fwd");
    int32_t badbt[NSEQ * 8];
    memcpy(badbt, bt, sizeof badbt);
    badbt[1] = NBLK;
    OK(be->paged_attention_fwd(be, out + 0, q, kc, vc, badbt, 8, cu, sl, NSEQ, 13, 13, N, HQ, HK, D,
                               BSZ, NBLK, scale) == SW_ERANGE,
       "a block outside the cache is refused");
    be->paged_attention_fwd(be, out, q, kc, vc, bt, 8, cu, sl, NSEQ, 13, 13, N, HQ, HK, D, BSZ,
                            NBLK, scale);
    /* Sliding window 3 and soft-cap 1.5 (Mistral / Gemma 2) against the dense ext kernel. */
    static float out2[64 * HQ * D];
    OK(be->paged_attention_ext_fwd(be, out2, q, kc, vc, bt, 8, cu, sl, NSEQ, 13, 13, N, HQ, HK, D,
                                   BSZ, NBLK, scale, 3, 1.5f) == 0,
       "paged_attention_ext_fwd (window 3, soft-cap 1.5)");
    double maxerr = 0, maxerr2 = 0;
    for (int s = 0; s < NSEQ; s++) {
        int L = lens[s];
        float *ref = malloc((size_t)L * HQ * D * sizeof(float)), *lse = malloc((size_t)L * HQ * 4);
        float *ref2 = malloc((size_t)L * HQ * D * sizeof(float));
        int32_t c2[2] = {0, L};
        be->attention_fwd(be, ref, lse, fullq[s], fullk[s], fullv[s], c2, NULL, 1, L, L, HQ, HK, D,
                          scale);
        be->attention_ext_fwd(be, ref2, lse, fullq[s], fullk[s], fullv[s], c2, NULL, 1, L, L, HQ,
                              HK, D, scale, 3, 1.5f);
        for (int i = 0; i < qlen[s]; i++) {
            int t = L - qlen[s] + i;
            for (int j = 0; j < HQ * D; j++) {
                size_t a = (size_t)t * HQ * D + j, b = (size_t)(cu[s] + i) * HQ * D + j;
                double d = fabs(ref[a] - out[b]), d2 = fabs(ref2[a] - out2[b]);
                if (d > maxerr) maxerr = d;
                if (d2 > maxerr2) maxerr2 = d2;
            }
        }
        free(ref), free(ref2), free(lse), free(fullk[s]), free(fullv[s]), free(fullq[s]);
    }
    OK(maxerr < 1e-5, "paged attention == dense causal attention (max |diff| %.3g)", maxerr);
    OK(memcmp(out, out2, (size_t)N * HQ * D * sizeof(float)) != 0,
       "the window and the cap change the result");
    OK(maxerr2 < 1e-5,
       "paged attention with window and soft-cap == dense attention_ext (max |diff| %.3g)",
       maxerr2);
    free(kc), free(vc);
}

/* ---- the inference forward ---------------------------------------------------------------- */

/* Run prompt through sw_model_infer in chunks of `chunk` tokens over a cache with block size
 * bs (blocks in reverse order), then compare the logits of every position with
 * sw_model_forward + sw_model_logits. */
static double infer_vs_forward(struct sw_model *m, const int32_t *ids, int64_t T, int64_t chunk,
                               int64_t bs, const struct sw_lora_weights *lw) {
    struct sw_backend *be = sw_model_backend(m);
    const struct sw_model_config *c = sw_model_config_get(m);
    int64_t V = c->vocab_size;
    float *ref = malloc((size_t)(T * V) * sizeof(float));
    float *got = malloc((size_t)(T * V) * sizeof(float));
    struct sw_batch b = {.B = 1, .T = T, .input_ids = ids};
    if (sw_model_forward(m, &b, NULL) < 0 || sw_model_logits(m, ref) < 0) {
        free(ref), free(got);
        return INFINITY;
    }
    struct sw_kv_cache kv;
    int64_t nb = (T + bs - 1) / bs;
    sw_kv_cache_init(&kv, be, c, nb + 2, bs);
    int32_t *bt = malloc((size_t)nb * sizeof(int32_t));
    for (int64_t i = 0; i < nb; i++)
        bt[i] = (int32_t)(nb + 1 - i); /* scattered */
    int32_t pos[512], slots[512], rows[512];
    const struct sw_lora_weights *lora[1] = {lw};
    double err = 0;
    for (int64_t s0 = 0; s0 < T; s0 += chunk) {
        int64_t n = T - s0 < chunk ? T - s0 : chunk;
        for (int64_t j = 0; j < n; j++) {
            pos[j] = (int32_t)(s0 + j);
            slots[j] = bt[(s0 + j) / bs] * (int32_t)bs + (int32_t)((s0 + j) % bs);
            rows[j] = (int32_t)j;
        }
        int32_t cu[2] = {0, (int32_t)n}, len = (int32_t)(s0 + n);
        struct sw_infer_batch ib = {.nseq = 1,
                                    .N = n,
                                    .ids = ids + s0,
                                    .pos = pos,
                                    .cu_q = cu,
                                    .seq_lens = &len,
                                    .block_tables = bt,
                                    .max_blocks = nb,
                                    .slot_mapping = slots,
                                    .lora = lw ? lora : NULL,
                                    .logit_rows = rows,
                                    .n_logits = n};
        if (sw_model_infer(m, &kv, &ib, got + s0 * V) < 0) {
            err = INFINITY;
            break;
        }
    }
    for (int64_t i = 0; i < T * V && isfinite(err); i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (d > err) err = d;
    }
    sw_kv_cache_release(&kv, be);
    free(bt), free(ref), free(got);
    return err;
}

static void test_infer(struct sw_backend *be, const char *dir, const char *name) {
    struct sw_hfmodel *hf;
    struct sw_model *m;
    if (sw_hfmodel_open(dir, &hf) < 0) {
        OK(0, "%s: open: %s", name, sw_err_msg());
        return;
    }
    if (sw_model_new(&hf->config, be, &m) < 0 || sw_model_load(m, hf->weights) < 0) {
        OK(0, "%s: load: %s", name, sw_err_msg());
        sw_hfmodel_close(hf);
        return;
    }
    int64_t V = hf->config.vocab_size, T = 37;
    int32_t ids[64];
    for (int i = 0; i < T; i++)
        ids[i] = (int32_t)((i * 31 + 7) % V);
    double e1 = infer_vs_forward(m, ids, T, T, 16, NULL);
    double e2 = infer_vs_forward(m, ids, T, 5, 4, NULL);
    double e3 = infer_vs_forward(m, ids, T, 1, 3, NULL);
    OK(e1 < 2e-4, "%s: one-chunk prefill logits == forward (max |diff| %.3g)", name, e1);
    OK(e2 < 2e-4, "%s: chunks of 5 over blocks of 4 == forward (max |diff| %.3g)", name, e2);
    OK(e3 < 2e-4, "%s: token-by-token decode over blocks of 3 == forward (max |diff| %.3g)", name,
       e3);
    sw_model_free(m);
    sw_hfmodel_close(hf);
}

/* A LoRA adapter applied per sequence == the model's own LoRA path on the same weights. */
static void test_infer_lora(struct sw_backend *be) {
    const char *dir = "test/golden/model/llama", *ad = "test/golden/model/llama_lora";
    struct sw_hfmodel *hf;
    struct sw_adapter *a;
    if (sw_hfmodel_open(dir, &hf) < 0 || sw_adapter_open(ad, &a) < 0) {
        OK(0, "lora: open: %s", sw_err_msg());
        return;
    }
    struct sw_model *base, *tuned;
    sw_model_new(&hf->config, be, &base);
    sw_model_load(base, hf->weights);
    sw_model_new(&hf->config, be, &tuned);
    sw_model_load(tuned, hf->weights);
    char kinds[128];
    sw_adapter_kinds_str(a, kinds, sizeof kinds);
    struct sw_lora_config lc = {.r = a->cfg.r,
                                .alpha = a->cfg.alpha,
                                .use_rslora = a->cfg.use_rslora,
                                .target_modules = kinds};
    OK(sw_model_lora_add(tuned, &lc) == 0 && sw_model_lora_load(tuned, a->weights) == 0,
       "lora: model's own LoRA loaded");
    struct sw_lora_weights *lw;
    if (sw_lora_weights_load(base, a, &lw) < 0) {
        OK(0, "lora weights: %s", sw_err_msg());
        goto out;
    }
    OK(sw_lora_weights_bytes(lw) > 0, "lora weights take memory");
    int64_t V = hf->config.vocab_size, T = 21;
    int32_t ids[32];
    for (int i = 0; i < T; i++)
        ids[i] = (int32_t)((i * 13 + 5) % V);
    /* reference: the tuned model's forward; engine path: base model + per-sequence adapter */
    float *ref = malloc((size_t)(T * V) * sizeof(float)), *got = malloc((size_t)(T * V) * 4);
    struct sw_batch b = {.B = 1, .T = T, .input_ids = ids};
    sw_model_forward(tuned, &b, NULL);
    sw_model_logits(tuned, ref);
    struct sw_kv_cache kv;
    sw_kv_cache_init(&kv, be, &hf->config, 8, 4);
    int32_t bt[8] = {3, 1, 7, 0, 2, 4, 5, 6}, pos[32], slots[32], rows[32];
    for (int i = 0; i < T; i++)
        pos[i] = i, slots[i] = bt[i / 4] * 4 + i % 4, rows[i] = i;
    /* two sequences in one batch: the same tokens without and with the adapter */
    int32_t ids2[64], pos2[64], slots2[64], rows2[64], bt2[16];
    int32_t *bt_b = bt2 + 8;
    for (int i = 0; i < 8; i++)
        bt2[i] = bt[i];
    struct sw_kv_cache kv2;
    sw_kv_cache_init(&kv2, be, &hf->config, 16, 4);
    for (int i = 0; i < 8; i++)
        bt_b[i] = 8 + i;
    for (int i = 0; i < T; i++) {
        ids2[i] = ids2[T + i] = ids[i];
        pos2[i] = pos2[T + i] = i;
        slots2[i] = bt2[i / 4] * 4 + i % 4;
        slots2[T + i] = bt_b[i / 4] * 4 + i % 4;
        rows2[i] = T + i;
    }
    int32_t cu2[3] = {0, (int32_t)T, (int32_t)(2 * T)}, lens2[2] = {(int32_t)T, (int32_t)T};
    const struct sw_lora_weights *lora2[2] = {NULL, lw};
    struct sw_infer_batch ib = {.nseq = 2,
                                .N = 2 * T,
                                .ids = ids2,
                                .pos = pos2,
                                .cu_q = cu2,
                                .seq_lens = lens2,
                                .block_tables = bt2,
                                .max_blocks = 8,
                                .slot_mapping = slots2,
                                .lora = lora2,
                                .logit_rows = rows2,
                                .n_logits = T};
    int rc = sw_model_infer(base, &kv2, &ib, got);
    double err = rc < 0 ? INFINITY : 0;
    for (int64_t i = 0; i < T * V && rc == 0; i++)
        if (fabs((double)got[i] - ref[i]) > err) err = fabs((double)got[i] - ref[i]);
    OK(err < 2e-4, "adapter rows of a mixed batch == the model's LoRA forward (max |diff| %.3g)",
       err);
    /* and the base rows of the same batch are the base model's */
    for (int i = 0; i < T; i++)
        rows2[i] = i;
    sw_model_forward(base, &b, NULL);
    sw_model_logits(base, ref);
    rc = sw_model_infer(base, &kv2, &ib, got);
    err = rc < 0 ? INFINITY : 0;
    for (int64_t i = 0; i < T * V && rc == 0; i++)
        if (fabs((double)got[i] - ref[i]) > err) err = fabs((double)got[i] - ref[i]);
    OK(err < 2e-4, "base rows of the mixed batch == the base forward (max |diff| %.3g)", err);
    sw_kv_cache_release(&kv, be);
    sw_kv_cache_release(&kv2, be);
    free(ref), free(got);
    sw_lora_weights_free(lw);
    (void)pos, (void)slots, (void)rows;
out:
    sw_model_free(base), sw_model_free(tuned);
    sw_adapter_close(a);
    sw_hfmodel_close(hf);
}

static void test_copy_block(struct sw_backend *be) {
    struct sw_model_config c = {0};
    c.num_hidden_layers = 2, c.num_key_value_heads = 1, c.head_dim = 2;
    struct sw_kv_cache kv;
    if (!OK(sw_kv_cache_init(&kv, be, &c, 3, 2) == 0, "cache init")) return;
    IS_INT(sw_kv_cache_block_bytes(&c, 2), 2 * 2 * 2 * 1 * 2 * 4, "block bytes");
    for (int l = 0; l < 2; l++)
        for (int i = 0; i < 4; i++) {
            sw_kv_cache_k(&kv, l)[2 * 2 + i] = (float)(10 * l + i + 1);
            sw_kv_cache_v(&kv, l)[2 * 2 + i] = (float)(-10 * l - i - 1);
        }
    OK(sw_kv_cache_copy_block(&kv, be, 0, 1) == 0, "copy block 1 → 0");
    int same = 1;
    for (int l = 0; l < 2; l++)
        for (int i = 0; i < 4; i++)
            same &= sw_kv_cache_k(&kv, l)[i] == (float)(10 * l + i + 1) &&
                    sw_kv_cache_v(&kv, l)[i] == (float)(-10 * l - i - 1);
    OK(same, "K and V of every layer copied");
    OK(sw_kv_cache_copy_block(&kv, be, 3, 0) == SW_ERANGE, "copy outside the cache refused");
    sw_kv_cache_release(&kv, be);
}

int main(void) {
    test_blocks_basic();
    test_blocks_random();
    struct sw_backend *be;
    if (!OK(sw_backend_open(SW_DEVICE_CPU, &be) == 0, "cpu backend")) return tap_done();
    test_paged_attention(be);
    test_copy_block(be);
    test_infer(be, "test/golden/model/llama", "llama");
    test_infer(be, "test/golden/model/qwen2", "qwen2");
    test_infer(be, "test/golden/model/qwen3", "qwen3");
    test_infer_lora(be);
    sw_backend_close(be);
    return tap_done();
}
