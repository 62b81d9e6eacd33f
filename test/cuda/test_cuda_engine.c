/* test_cuda_engine — the inference engine on the CUDA backend against the CPU:
 *   - kv_cache_write and paged_attention_fwd (kernels/cuda/paged_attention.cu) against the CPU
 *     ops on the same inputs: several sequences mixing a long prefill, decode rows, a chunk and
 *     an empty sequence, scattered blocks, GQA (14/2 heads of 64) and MHA (8/8 of 128, blocks of
 *     32); tolerance rel ≤ 1e-4 (float32 cache, fp32 GEMM mode);
 *   - sw_model_infer (chunked prefill, then decode) on the three golden families: CUDA logits
 *     vs CPU logits, rel ≤ 1e-4;
 *   - the engine itself (device cuda) on the generate goldens: greedy ids equal transformers'
 *     (test/golden/generate/), alone and batched, with and without the LoRA adapter; every
 *     block free afterwards.
 * Runs from the repository root on a machine with a GPU (make test-cuda). */
#include "sw_engine.h"
#include "sw_err.h"
#include "sw_hfmodel.h"
#include "sw_log.h"
#include "sw_model_infer.h"
#include "sw_rng.h"
#include "fixtures.h"
#include "tap.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-4
#define GEN "test/golden/generate/"

static struct sw_backend *cpu, *gpu;

static void *up(const void *h, size_t bytes) {
    void *d = gpu->alloc(gpu, bytes ? bytes : 4);
    if (d && bytes) gpu->upload(gpu, d, h, bytes);
    return d;
}

/* ---- the two ops -------------------------------------------------------------------------- */

static void test_ops(int nseq, const int *lens, const int *qlens, int64_t Hq, int64_t Hk, int64_t D,
                     int64_t bs, const char *name) {
    struct sw_rng r;
    sw_rng_init(&r, 3, 0);
    int64_t maxb = 0, N = 0, nb = 0, maxlen = 0;
    for (int s = 0; s < nseq; s++) {
        int64_t b = (lens[s] + bs - 1) / bs;
        if (b > maxb) maxb = b;
        nb += b;
        N += qlens[s];
        if (lens[s] > maxlen) maxlen = lens[s];
    }
    nb += 3; /* unused blocks too */
    int64_t row = Hk * D, slots_n = nb * bs;
    float *kc = calloc((size_t)(slots_n * row), sizeof(float));
    float *vc = calloc((size_t)(slots_n * row), sizeof(float));
    sw_rng_fill_normal(&r, kc, (size_t)(slots_n * row), 0, 1); /* the cached part */
    sw_rng_fill_normal(&r, vc, (size_t)(slots_n * row), 0, 1);
    float *q = malloc((size_t)(N * Hq * D) * sizeof(float));
    float *kn = malloc((size_t)(N * row) * sizeof(float)), *vn = malloc((size_t)(N * row) * 4);
    sw_rng_fill_normal(&r, q, (size_t)(N * Hq * D), 0, 1);
    sw_rng_fill_normal(&r, kn, (size_t)(N * row), 0, 1);
    sw_rng_fill_normal(&r, vn, (size_t)(N * row), 0, 1);
    int32_t *bt = calloc((size_t)(nseq * maxb), sizeof(int32_t));
    int32_t *slots = malloc((size_t)(N ? N : 1) * sizeof(int32_t)),
            *cu = malloc((size_t)(nseq + 1) * 4);
    int32_t *sl = malloc((size_t)nseq * sizeof(int32_t));
    int32_t next = 0, n = 0;
    cu[0] = 0;
    for (int s = 0; s < nseq; s++) {
        int64_t b = (lens[s] + bs - 1) / bs;
        for (int64_t i = 0; i < b; i++)
            bt[s * maxb + i] = (int32_t)((next++ * 5 + 2) % nb);
        for (int t = lens[s] - qlens[s]; t < lens[s]; t++)
            slots[n++] = bt[s * maxb + t / bs] * (int32_t)bs + t % (int32_t)bs;
        cu[s + 1] = n;
        sl[s] = lens[s];
    }
    if (N > 0) slots[0] = -1; /* a skipped token: its K/V stays as it was on both backends */
    float scale = 1.0f / sqrtf((float)D);
    float *out_c = calloc((size_t)(N * Hq * D + 1), sizeof(float));
    float *out_g = calloc((size_t)(N * Hq * D + 1), sizeof(float));
    float *kc2 = malloc((size_t)(slots_n * row) * sizeof(float));
    float *vc2 = malloc((size_t)(slots_n * row) * sizeof(float));
    float *dkc = up(kc, (size_t)(slots_n * row) * 4), *dvc = up(vc, (size_t)(slots_n * row) * 4);
    int rc = cpu->kv_cache_write(cpu, kc, vc, kn, vn, slots, N, Hk, D, slots_n);
    if (rc == 0)
        rc = cpu->paged_attention_fwd(cpu, out_c, q, kc, vc, bt, maxb, cu, sl, nseq, 0, maxlen, N,
                                      Hq, Hk, D, bs, nb, scale);
    float *dq = up(q, (size_t)(N * Hq * D) * 4), *dkn = up(kn, (size_t)(N * row) * 4);
    float *dvn = up(vn, (size_t)(N * row) * 4), *dout = up(NULL, (size_t)(N * Hq * D + 1) * 4);
    int32_t *dbt = up(bt, (size_t)(nseq * maxb) * 4), *dsl = up(sl, (size_t)nseq * 4);
    int32_t *dslots = up(slots, (size_t)N * 4), *dcu = up(cu, (size_t)(nseq + 1) * 4);
    int grc = gpu->kv_cache_write(gpu, dkc, dvc, dkn, dvn, dslots, N, Hk, D, slots_n);
    if (grc == 0)
        grc = gpu->paged_attention_fwd(gpu, dout, dq, dkc, dvc, dbt, maxb, dcu, dsl, nseq, 0,
                                       maxlen, N, Hq, Hk, D, bs, nb, scale);
    if (grc == 0) grc = gpu->download(gpu, out_g, dout, (size_t)(N * Hq * D) * 4);
    if (grc == 0) grc = gpu->download(gpu, kc2, dkc, (size_t)(slots_n * row) * 4);
    if (grc == 0) grc = gpu->download(gpu, vc2, dvc, (size_t)(slots_n * row) * 4);
    if (!OK(rc == 0 && grc == 0, "%s: ops ran (%s)", name, rc || grc ? sw_err_msg() : "ok"))
        goto out;
    OK(memcmp(kc, kc2, (size_t)(slots_n * row) * 4) == 0 &&
           memcmp(vc, vc2, (size_t)(slots_n * row) * 4) == 0,
       "%s: kv_cache_write: the same cache bit for bit (a skipped slot included)", name);
    double e = sw_test_rel_err(out_g, out_c, N * Hq * D);
    OK(e <= TOL, "%s: paged_attention_fwd CUDA vs CPU rel %.2e", name, e);
out:
    gpu->free(gpu, dkc), gpu->free(gpu, dvc), gpu->free(gpu, dq), gpu->free(gpu, dkn);
    gpu->free(gpu, dvn), gpu->free(gpu, dout), gpu->free(gpu, dbt), gpu->free(gpu, dsl);
    gpu->free(gpu, dslots), gpu->free(gpu, dcu);
    free(kc), free(vc), free(kc2), free(vc2), free(q), free(kn), free(vn), free(bt), free(slots);
    free(cu), free(sl), free(out_c), free(out_g);
}

/* ---- the inference forward ---------------------------------------------------------------- */

/* Logits of every position of ids through sw_model_infer in chunks of `chunk`, on be. */
static int infer_logits(struct sw_backend *be, struct sw_hfmodel *hf, const int32_t *ids, int64_t T,
                        int64_t chunk, float *logits) {
    struct sw_model *m;
    SW_TRY(sw_model_new(&hf->config, be, &m));
    int rc = sw_model_load(m, hf->weights);
    struct sw_kv_cache kv;
    int64_t bs = 4, nb = (T + bs - 1) / bs;
    if (rc == 0) rc = sw_kv_cache_init(&kv, be, &hf->config, nb + 1, bs);
    if (rc < 0) {
        sw_model_free(m);
        return rc;
    }
    int32_t bt[128], pos[512], slots[512], rows[512];
    for (int64_t i = 0; i < nb; i++)
        bt[i] = (int32_t)(nb - i);
    int64_t V = hf->config.vocab_size;
    for (int64_t s0 = 0; s0 < T && rc == 0; s0 += chunk) {
        int64_t n = T - s0 < chunk ? T - s0 : chunk;
        for (int64_t j = 0; j < n; j++) {
            pos[j] = (int32_t)(s0 + j);
            slots[j] = bt[(s0 + j) / bs] * (int32_t)bs + (int32_t)((s0 + j) % bs);
            rows[j] = (int32_t)j;
        }
        int32_t cu[2] = {0, (int32_t)n}, len = (int32_t)(s0 + n);
        struct sw_infer_batch b = {.nseq = 1,
                                   .N = n,
                                   .ids = ids + s0,
                                   .pos = pos,
                                   .cu_q = cu,
                                   .seq_lens = &len,
                                   .block_tables = bt,
                                   .max_blocks = nb,
                                   .slot_mapping = slots,
                                   .logit_rows = rows,
                                   .n_logits = n};
        rc = sw_model_infer(m, &kv, &b, logits + s0 * V);
    }
    sw_kv_cache_release(&kv, be);
    sw_model_free(m);
    return rc;
}

static void test_infer(const char *family) {
    char dir[128];
    snprintf(dir, sizeof dir, "test/golden/model/%s", family);
    struct sw_hfmodel *hf;
    if (!OK(sw_hfmodel_open(dir, &hf) == 0, "%s: open", family)) return;
    int64_t V = hf->config.vocab_size, T = 45;
    int32_t ids[64];
    for (int i = 0; i < T; i++)
        ids[i] = (int32_t)((i * 29 + 11) % V);
    float *a = malloc((size_t)(T * V) * 4), *b = malloc((size_t)(T * V) * 4);
    int rc = infer_logits(cpu, hf, ids, T, 13, a);
    int grc = infer_logits(gpu, hf, ids, T, 13, b);
    if (OK(rc == 0 && grc == 0, "%s: infer on both backends (%s)", family,
           rc || grc ? sw_err_msg() : "ok")) {
        double e = sw_test_rel_err(b, a, T * V);
        OK(e <= TOL, "%s: sw_model_infer (chunks of 13, then decode) CUDA vs CPU rel %.2e", family,
           e);
    }
    free(a), free(b);
    sw_hfmodel_close(hf);
}

/* ---- the engine on CUDA ------------------------------------------------------------------- */

struct res {
    int32_t ids[256];
    int n, done;
};

static int cb(void *user, const struct sw_engine_event *ev) {
    struct res *r = user;
    if (ev->token >= 0 && r->n < 256) r->ids[r->n++] = ev->token;
    if (ev->request_done) r->done = 1;
    return 0;
}

static void test_engine(const char *dir, const char *expected, const char *adapter,
                        const char *name) {
    json_error_t jerr;
    json_t *root = json_load_file(expected, 0, &jerr);
    if (!OK(root != NULL, "%s: goldens %s", name, expected)) return;
    struct sw_engine_opts o;
    sw_engine_opts_init(&o);
    o.model_dir = dir;
    o.tokenizer = GEN "model";
    o.device = SW_DEVICE_CUDA;
    o.kv_cache_bytes = (int64_t)64 << 20;
    o.block_size = 16;
    o.max_num_batched_tokens = 32; /* chunked prefill of the longer prompts */
    struct sw_engine_adapter ad = {"ft", adapter};
    if (adapter) o.adapters = &ad, o.n_adapters = 1;
    struct sw_engine *e;
    if (sw_engine_open(&o, &e) < 0) {
        OK(0, "%s: engine on cuda: %s", name, sw_err_msg());
        json_decref(root);
        return;
    }
    json_t *cases = json_object_get(root, "cases");
    int max_new = (int)json_integer_value(json_object_get(root, "max_new_tokens"));
    struct res out[16];
    memset(out, 0, sizeof out);
    const char *k;
    json_t *v;
    int n = 0;
    json_object_foreach(cases, k, v) {
        if (n == 16) break;
        int32_t p[256];
        json_t *pi = json_object_get(v, "prompt_ids");
        size_t np = json_array_size(pi);
        for (size_t i = 0; i < np && i < 256; i++)
            p[i] = (int32_t)json_integer_value(json_array_get(pi, i));
        struct sw_sampling_params sp;
        sw_sampling_params_init(&sp);
        sp.temperature = 0;
        sp.max_tokens = max_new;
        json_t *pen = json_object_get(v, "repetition_penalty");
        if (pen) sp.repetition_penalty = json_number_value(pen);
        if (sw_engine_submit(e, p, (int64_t)np, &sp, adapter ? "ft" : NULL, cb, &out[n], NULL) < 0)
            DIAG("%s: submit: %s", name, sw_err_msg());
        n++;
    }
    for (int guard = 0; guard < 10000; guard++) {
        int pending = 0;
        for (int i = 0; i < n; i++)
            pending += !out[i].done;
        if (!pending || sw_engine_step(e) < 0) break;
    }
    int ok = 0, i = 0;
    json_object_foreach(cases, k, v) {
        if (i == n) break;
        json_t *w = json_object_get(v, "ids");
        int same = (size_t)out[i].n == json_array_size(w);
        for (int j = 0; same && j < out[i].n; j++)
            same = out[i].ids[j] == json_integer_value(json_array_get(w, j));
        if (!same) DIAG("%s: case %s differs", name, k);
        ok += same;
        i++;
    }
    IS_INT(ok, n, "%s: the engine on CUDA, all cases batched: greedy == transformers", name);
    struct sw_engine_stats st;
    sw_engine_stats(e, &st);
    IS_INT(st.kv_blocks_used, 0, "%s: every block free afterwards", name);
    sw_engine_close(e);
    json_decref(root);
}

int main(void) {
    sw_log_set_level(SW_LOG_WARN);
    if (!OK(sw_backend_open(SW_DEVICE_CPU, &cpu) == 0, "open cpu backend")) return tap_done();
    int rc = sw_backend_open(SW_DEVICE_CUDA, &gpu);
    if (!OK(rc == 0, "open cuda backend (%s)", rc ? sw_err_msg() : "ok")) {
        sw_backend_close(cpu);
        return tap_done();
    }
    OK(gpu->supports_op(gpu, SW_OP_PAGED_ATTENTION) && gpu->supports_op(gpu, SW_OP_KV_CACHE_WRITE),
       "the CUDA backend has the engine's ops");
    int lens1[5] = {300, 17, 64, 40, 9}, q1[5] = {300, 1, 1, 9, 0};
    test_ops(5, lens1, q1, 14, 2, 64, 16, "gqa 14/2 d64 bs16");
    int lens2[3] = {130, 33, 1}, q2[3] = {1, 33, 1};
    test_ops(3, lens2, q2, 8, 8, 128, 32, "mha 8/8 d128 bs32");
    int lens3[2] = {1000, 5}, q3[2] = {1, 5};
    test_ops(2, lens3, q3, 4, 1, 16, 16, "mqa 4/1 d16, a 1000-token context");
    test_infer("llama");
    test_infer("qwen2");
    test_infer("qwen3");
    test_engine(GEN "model", GEN "expected.json", NULL, "qwen3");
    test_engine(GEN "llama/model", GEN "llama/expected.json", NULL, "llama");
    test_engine(GEN "qwen2/model", GEN "qwen2/expected.json", NULL, "qwen2");
    test_engine(GEN "llama/model", GEN "llama/expected_lora.json", GEN "llama/adapter",
                "llama+lora");
    sw_backend_close(gpu);
    sw_backend_close(cpu);
    return tap_done();
}
