/* test_cuda_model — the whole model (lib/sw_model) on the CUDA backend against the CPU backend
 * and against the Hugging Face goldens of test/golden/model/ (transformers/PEFT, float32):
 * Llama (llama3 rope, untied), Qwen2 (q/k/v biases, tied), Qwen3 (q/k norms, head_dim 16),
 * Llama + LoRA r=4 (with and without dropout), each in the padded and the packed layout;
 * forward + backward compared on the loss, the logits and every gradient.
 * Plus a larger random Qwen2-like model (hidden 128, 3 layers, 4/2 heads of 32, vocab 1000)
 * on a packed batch of 600 tokens with segments of 300, 1, 170 and 129 tokens (several
 * attention tiles, a 1-token sample, masked labels), and the same in bf16, tf32 and fp16 GEMM
 * modes.
 *
 * Tolerance (rel = max|a − b| / max(max|b|, 1e-6) per tensor): CUDA fp32 vs CPU ≤ 1e-4 and vs
 * HF ≤ 1e-4 (the CPU-vs-HF bound of test/unit/test_model.c); bf16 GEMM mode: loss within 2e-2
 * relative of the CPU's, gradients ≤ 1e-1 (a smoke bound: bf16 operands, float32 accumulation);
 * fp16 GEMM mode: loss ≤ 1e-2, gradients ≤ 5e-2 (10-bit mantissa operands), with the backward
 * run on the loss · 1024 on both sides (sw-train's loss scaling: unscaled, this model's
 * per-token loss gradients, ~1e-6, sit in fp16's subnormal range and lose most of their bits).
 * Runs from the repository root on a machine with a GPU (make test-cuda). */
#include "sw_err.h"
#include "sw_model.h"
#include "sw_safetensors.h"
#include "fixtures.h"
#include "tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-4
#define GOLDEN "test/golden/model/"

static struct sw_backend *cpu, *gpu;

static int64_t pnumel(const struct sw_param *p) {
    return p->value.ndim == 2 ? p->value.shape[0] * p->value.shape[1] : p->value.shape[0];
}

static float *grad_host(struct sw_model *m, struct sw_param *p) {
    if (!p->grad.data) return NULL;
    struct sw_backend *be = sw_model_backend(m);
    int64_t n = pnumel(p);
    float *h = malloc((size_t)n * sizeof(float));
    if (be->download(be, h, p->grad.data, (size_t)n * sizeof(float)) < 0) {
        free(h);
        return NULL;
    }
    return h;
}

static int golden_batch(const struct sw_st_file *g, const char *lay, struct sw_batch *b) {
    char k[64];
    memset(b, 0, sizeof(*b));
    snprintf(k, sizeof k, "%s.input_ids", lay);
    const struct sw_st_entry *ids = sw_st_find(g, k);
    snprintf(k, sizeof k, "%s.labels", lay);
    const struct sw_st_entry *lab = sw_st_find(g, k);
    snprintf(k, sizeof k, "%s.position_ids", lay);
    const struct sw_st_entry *pos = sw_st_find(g, k);
    if (!ids || !lab || !pos || ids->ndim != 2) return -1;
    b->B = ids->shape[0];
    b->T = ids->shape[1];
    b->input_ids = ids->data;
    b->labels = lab->data;
    b->position_ids = pos->data;
    if (strcmp(lay, "pad") == 0) {
        const struct sw_st_entry *mk = sw_st_find(g, "pad.attention_mask");
        if (!mk) return -1;
        b->attention_mask = mk->data;
    } else {
        const struct sw_st_entry *cu = sw_st_find(g, "pack.cu_seqlens");
        if (!cu) return -1;
        b->cu_seqlens = cu->data;
        b->n_seqs = (int)cu->shape[0] - 1;
    }
    return 0;
}

/* Loss scale of compare_models' backward on both backends (the relative errors do not depend
 * on it; the fp16 case needs it, see the header). 1 with goldens, which are unscaled. */
static float bwd_scale = 1.0f;

/* Forward + backward of batch b on both models; compare loss, logits and every gradient with
 * the CPU (and with golden g when given). grad_tol / loss_tol bound CUDA vs CPU. */
static void compare_models(struct sw_model *mc, struct sw_model *mg, const struct sw_batch *b,
                           const struct sw_st_file *g, const char *lay, const char *what,
                           double loss_tol, double grad_tol) {
    struct sw_loss lc, lg;
    int rc = sw_model_zero_grad(mc), rg = sw_model_zero_grad(mg);
    if (rc == 0) rc = sw_model_forward(mc, b, &lc);
    if (rg == 0) rg = sw_model_forward(mg, b, &lg);
    if (!OK(rc == 0 && rg == 0, "%s %s: forward on cpu and cuda (%s)", what, lay,
            rc || rg ? sw_err_msg() : "ok"))
        return;
    float mean_c = (float)(lc.sum / (double)lc.count), mean_g = (float)(lg.sum / (double)lg.count);
    double e = sw_test_rel_err(&mean_g, &mean_c, 1);
    OK(e <= loss_tol && lc.count == lg.count, "%s %s: loss cuda %.7f vs cpu %.7f (rel %.2g)", what,
       lay, mean_g, mean_c, e);
    char k[320];
    if (g) {
        snprintf(k, sizeof k, "%s.loss", lay);
        const struct sw_st_entry *gl = sw_st_find(g, k);
        if (gl) {
            e = sw_test_rel_err(&mean_g, gl->data, 1);
            OK(e <= TOL, "%s %s: loss cuda vs HF (rel %.2g)", what, lay, e);
        }
    }
    int64_t N = b->B * b->T, V = sw_model_config_get(mc)->vocab_size;
    float *l1 = malloc((size_t)(N * V) * 4), *l2 = malloc((size_t)(N * V) * 4);
    if (sw_model_logits(mc, l1) == 0 && sw_model_logits(mg, l2) == 0) {
        double worst = 0, worst_hf = 0;
        const struct sw_st_entry *gg = NULL;
        if (g) {
            snprintf(k, sizeof k, "%s.logits", lay);
            gg = sw_st_find(g, k);
        }
        for (int64_t n = 0; n < N; n++) {
            if (b->attention_mask && !b->attention_mask[n]) continue;
            double r = sw_test_rel_err(l2 + n * V, l1 + n * V, V);
            if (r > worst) worst = r;
            if (gg) {
                r = sw_test_rel_err(l2 + n * V, (const float *)gg->data + n * V, V);
                if (r > worst_hf) worst_hf = r;
            }
        }
        OK(worst <= (loss_tol <= TOL ? TOL : 5 * loss_tol),
           "%s %s: logits cuda vs cpu (worst row rel %.2g)", what, lay, worst);
        if (gg)
            OK(worst_hf <= TOL, "%s %s: logits cuda vs HF (worst row rel %.2g)", what, lay,
               worst_hf);
    } else {
        OK(0, "%s %s: logits (%s)", what, lay, sw_err_msg());
    }
    free(l1), free(l2);

    rc = sw_model_backward(mc, bwd_scale / (float)lc.count);
    rg = sw_model_backward(mg, bwd_scale / (float)lg.count);
    if (!OK(rc == 0 && rg == 0, "%s %s: backward on cpu and cuda (%s)", what, lay,
            rc || rg ? sw_err_msg() : "ok"))
        return;
    int n_cmp = 0, n_bad = 0, n_hf = 0;
    double worst = 0, worst_hf = 0;
    const char *worst_name = "";
    for (int i = 0; i < sw_model_nparams(mc); i++) {
        struct sw_param *pc = sw_model_param(mc, i), *pg = sw_model_param(mg, i);
        if (!pc->trainable) continue;
        float *hc = grad_host(mc, pc), *hg = grad_host(mg, pg);
        int64_t n = pnumel(pc);
        if (!hc || !hg || strcmp(pc->name, pg->name) != 0) {
            n_bad++;
            DIAG("no gradient for %s", pc->name);
        } else {
            double r = sw_test_rel_err(hg, hc, n);
            if (r > worst) worst = r, worst_name = pc->name;
            if (r > grad_tol) n_bad++, DIAG("%s: cuda vs cpu rel %.3g", pc->name, r);
            n_cmp++;
            if (g) {
                snprintf(k, sizeof k, "%s.grad.%s", lay, pc->name);
                const struct sw_st_entry *ge = sw_st_find(g, k);
                if (ge) {
                    r = sw_test_rel_err(hg, ge->data, n);
                    if (r > worst_hf) worst_hf = r;
                    if (r > TOL) n_bad++, DIAG("%s: cuda vs HF rel %.3g", pc->name, r);
                    n_hf++;
                }
            }
        }
        free(hc), free(hg);
    }
    OK(n_bad == 0 && n_cmp > 0, "%s %s: %d gradients match the cpu (worst %.2g at %s)", what, lay,
       n_cmp, worst, worst_name);
    if (g)
        OK(n_hf == n_cmp, "%s %s: %d gradients compared with HF (worst %.2g)", what, lay, n_hf,
           worst_hf);
}

static struct sw_model *open_model(struct sw_backend *be, const struct sw_model_config *c,
                                   const char *dir) {
    struct sw_model *m = NULL;
    struct sw_st_set *s = NULL;
    int rc = sw_model_new(c, be, &m);
    if (rc == 0) rc = sw_st_set_open(dir, &s);
    if (rc == 0) rc = sw_model_load(m, s);
    sw_st_set_close(s);
    if (!OK(rc == 0, "load %s on %s (%s)", dir, be->name, rc ? sw_err_msg() : "ok")) {
        sw_model_free(m);
        return NULL;
    }
    return m;
}

static void test_family(const char *name) {
    char dir[256], path[300];
    snprintf(dir, sizeof dir, GOLDEN "%s", name);
    snprintf(path, sizeof path, "%s/config.json", dir);
    struct sw_model_config c;
    if (!OK(sw_model_config_load(path, &c) == 0, "%s: config (%s)", name, sw_err_msg())) return;
    struct sw_model *mc = open_model(cpu, &c, dir), *mg = open_model(gpu, &c, dir);
    struct sw_st_file *g = NULL;
    snprintf(path, sizeof path, "%s/golden.safetensors", dir);
    if (mc && mg && OK(sw_st_open(path, &g) == 0, "open %s", path)) {
        struct sw_batch b;
        if (golden_batch(g, "pad", &b) == 0) compare_models(mc, mg, &b, g, "pad", name, TOL, TOL);
        if (golden_batch(g, "pack", &b) == 0) compare_models(mc, mg, &b, g, "pack", name, TOL, TOL);
    }
    sw_st_close(g);
    sw_model_free(mc);
    sw_model_free(mg);
}

static struct sw_model *open_lora(struct sw_backend *be, const struct sw_model_config *c,
                                  float dropout) {
    struct sw_model *m = open_model(be, c, GOLDEN "llama");
    if (!m) return NULL;
    struct sw_lora_config lc = {
        .r = 4, .alpha = 8, .target_modules = "all-linear", .seed = 1, .dropout = dropout};
    struct sw_st_set *s = NULL;
    int rc = sw_model_lora_add(m, &lc);
    if (rc == 0) rc = sw_st_set_open(GOLDEN "llama_lora/adapter_model.safetensors", &s);
    if (rc == 0) rc = sw_model_lora_load(m, s);
    sw_st_set_close(s);
    if (!OK(rc == 0, "llama+lora on %s (%s)", be->name, rc ? sw_err_msg() : "ok")) {
        sw_model_free(m);
        return NULL;
    }
    return m;
}

static void test_lora(void) {
    struct sw_model_config c;
    if (!OK(sw_model_config_load(GOLDEN "llama/config.json", &c) == 0, "llama config")) return;
    struct sw_model *mc = open_lora(cpu, &c, 0.0f), *mg = open_lora(gpu, &c, 0.0f);
    struct sw_st_file *g = NULL;
    if (mc && mg &&
        OK(sw_st_open(GOLDEN "llama_lora/golden.safetensors", &g) == 0, "LoRA golden")) {
        struct sw_batch b;
        if (golden_batch(g, "pad", &b) == 0)
            compare_models(mc, mg, &b, g, "pad", "llama+lora", TOL, TOL);
        if (golden_batch(g, "pack", &b) == 0)
            compare_models(mc, mg, &b, g, "pack", "llama+lora", TOL, TOL);
    }
    sw_model_free(mc);
    sw_model_free(mg);
    /* Dropout 0.3 in training mode: both backends draw the same masks. */
    mc = open_lora(cpu, &c, 0.3f), mg = open_lora(gpu, &c, 0.3f);
    if (mc && mg && g) {
        sw_model_set_training(mc, 1), sw_model_set_training(mg, 1);
        sw_model_set_seed(mc, 42, 0), sw_model_set_seed(mg, 42, 0);
        struct sw_batch b;
        if (golden_batch(g, "pack", &b) == 0)
            compare_models(mc, mg, &b, NULL, "pack", "llama+lora dropout 0.3", TOL, TOL);
    }
    sw_st_close(g);
    sw_model_free(mc);
    sw_model_free(mg);
}

/* A larger random model: several attention tiles, multi-row chunks. */
static void test_random_model(void) {
    struct sw_model_config c;
    struct sw_test_shape shape = {.vocab = 1000,
                                  .hidden = 128,
                                  .intermediate = 352,
                                  .layers = 3,
                                  .heads = 4,
                                  .kv_heads = 2,
                                  .head_dim = 32};
    sw_test_config(&c, SW_ARCH_QWEN2, shape);
    c.max_position_embeddings = 1024;
    c.bos_token_id = -1;
    c.pad_token_id = -1;
    struct sw_model *mc = NULL, *mg = NULL;
    int rc = sw_model_new(&c, cpu, &mc);
    if (rc == 0) rc = sw_model_new(&c, gpu, &mg);
    if (rc == 0) rc = sw_model_init_random(mc, 7, 0.05f);
    if (rc == 0) rc = sw_model_init_random(mg, 7, 0.05f);
    if (!OK(rc == 0, "random qwen2-like model on both backends (%s)", rc ? sw_err_msg() : "ok")) {
        sw_model_free(mc), sw_model_free(mg);
        return;
    }
    enum { T = 600 };
    int32_t ids[T], labels[T], cu[5] = {0, 300, 301, 471, 600};
    uint64_t st = 99;
    for (int i = 0; i < T; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((st >> 33) % 1000);
        labels[i] = (i % 7 == 3) ? -100 : ids[i];
    }
    struct sw_batch b = {
        .B = 1, .T = T, .input_ids = ids, .labels = labels, .cu_seqlens = cu, .n_seqs = 4};
    compare_models(mc, mg, &b, NULL, "pack", "random 128x3 (600 tokens)", TOL, TOL);
    gpu->set_precision(gpu, SW_MATMUL_BF16);
    compare_models(mc, mg, &b, NULL, "pack", "random 128x3 bf16 GEMMs", 2e-2, 1e-1);
    gpu->set_precision(gpu, SW_MATMUL_TF32);
    compare_models(mc, mg, &b, NULL, "pack", "random 128x3 tf32 GEMMs", 5e-3, 5e-2);
    gpu->set_precision(gpu, SW_MATMUL_FP16);
    bwd_scale = 1024.0f;
    compare_models(mc, mg, &b, NULL, "pack", "random 128x3 fp16 GEMMs (loss scale 1024)", 1e-2,
                   5e-2);
    bwd_scale = 1.0f;
    gpu->set_precision(gpu, SW_MATMUL_FP32);
    /* Determinism: two CUDA steps give bit-identical gradients. */
    struct sw_loss l;
    struct sw_param *p = sw_model_param_find(mg, "model.layers.0.self_attn.k_proj.weight");
    float *g1 = NULL, *g2 = NULL;
    if (p && sw_model_zero_grad(mg) == 0 && sw_model_forward(mg, &b, &l) == 0 &&
        sw_model_backward(mg, 1.0f) == 0)
        g1 = grad_host(mg, p);
    if (p && sw_model_zero_grad(mg) == 0 && sw_model_forward(mg, &b, &l) == 0 &&
        sw_model_backward(mg, 1.0f) == 0)
        g2 = grad_host(mg, p);
    OK(g1 && g2 && memcmp(g1, g2, (size_t)pnumel(p) * 4) == 0,
       "cuda forward+backward is deterministic (k_proj gradient bit-identical)");
    free(g1), free(g2);
    DIAG("cuda scratch peak %zu bytes", sw_model_scratch_peak(mg));
    sw_model_free(mc);
    sw_model_free(mg);
}

int main(void) {
    if (!OK(sw_backend_open(SW_DEVICE_CPU, &cpu) == 0, "open cpu backend")) return tap_done();
    int rc = sw_backend_open(SW_DEVICE_CUDA, &gpu);
    if (!OK(rc == 0, "open cuda backend (%s)", rc ? sw_err_msg() : "ok")) {
        sw_backend_close(cpu);
        return tap_done();
    }
    gpu->set_precision(gpu, SW_MATMUL_FP32);
    test_family("llama");
    test_family("qwen2");
    test_family("qwen3");
    test_lora();
    test_random_model();
    sw_backend_close(gpu);
    sw_backend_close(cpu);
    return tap_done();
}
