/* test_model — parity of lib/sw_model against Hugging Face transformers (and PEFT for LoRA) in
 * float32, on the tiny random models that test/golden/gen_model.py wrote under
 * test/golden/model/: Llama (llama3 rope scaling, untied), Qwen2 (q/k/v biases, tied), Qwen3
 * (q/k norm, head_dim 16 ≠ hidden/heads, tied), Mistral (sliding window 4 < the sequences),
 * Gemma 2 (GeGLU, (1 + w) pre/post norms, scaled embeddings, soft-caps, local/global layers), and
 * Llama, Mistral and Gemma 2 + LoRA r=4 alpha=8 on every linear.
 * Each is checked in two layouts: a right-padded batch (B=2, attention_mask) and one packed row
 * of 3 samples (cu_seqlens, positions restarting at 0).
 *
 * Compared: logits (padded: the valid rows only — HF's rows at pad positions are not used by
 * anything), the loss, and the gradient of every parameter (LoRA: of every lora_A/lora_B).
 * Tolerance: rel(a, b) = max|a − b| / max(max|b|, 1e-6) per tensor must be ≤ 1e-4.
 * Also: loading errors name the tensor, random init, batch validation, determinism, gradient
 * accumulation, BF16/F16 loading, LoRA dropout, and gradient checkpointing (bit-identical
 * gradients, lower scratch peak, the scratch estimate against the measured peak). The configs are
 * written out by hand here (they mirror gen_model.py), and the same models built through
 * sw_model_config_load must give the same loss bit for bit. */
#include "sw_model.h"

#include "sw_err.h"
#include "sw_safetensors.h"
#include "fixtures.h"
#include "tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOL 1e-4
#define GOLDEN "test/golden/model/"

static struct sw_backend *be;

static void base_config(struct sw_model_config *c, enum sw_arch arch) {
    struct sw_test_shape shape = {.vocab = 97,
                                  .hidden = 32,
                                  .intermediate = 64,
                                  .layers = 2,
                                  .heads = 4,
                                  .kv_heads = 2,
                                  .head_dim = 8};
    if (arch == SW_ARCH_QWEN3) shape.head_dim = 16;
    sw_test_config(c, arch, shape);
    if (arch == SW_ARCH_LLAMA) { /* llama3 RoPE scaling, as Llama 3.1 configs carry it */
        c->rope_theta = 10000.0;
        c->rope_type = SW_ROPE_LLAMA3;
        c->rope_factor = 8.0;
        c->rope_low_freq_factor = 1.0;
        c->rope_high_freq_factor = 4.0;
        c->rope_original_max_position = 64;
    }
}

static int64_t entry_numel(const struct sw_st_entry *e) {
    int64_t n = 1;
    for (int d = 0; d < e->ndim; d++)
        n *= e->shape[d];
    return n;
}

/* A golden tensor of the expected dtype, or NULL (with a failing test line). */
static const struct sw_st_entry *gold(const struct sw_st_file *g, const char *name,
                                      enum sw_dtype dt) {
    const struct sw_st_entry *e = sw_st_find(g, name);
    if (!e || e->dtype != dt) {
        OK(0, "golden tensor %s present as %s", name, sw_dtype_name(dt));
        return NULL;
    }
    return e;
}

/* Host copy of a parameter's gradient (NULL if it has none). */
static float *grad_host(struct sw_param *p) {
    if (!p->grad.data) return NULL;
    int64_t n = p->value.ndim == 2 ? p->value.shape[0] * p->value.shape[1] : p->value.shape[0];
    float *h = malloc((size_t)n * sizeof(float));
    be->download(be, h, p->grad.data, (size_t)n * sizeof(float));
    return h;
}

/* Build the batch of a layout ("pad" or "pack") from the golden file. */
static int golden_batch(const struct sw_st_file *g, const char *lay, struct sw_batch *b) {
    char k[64];
    memset(b, 0, sizeof(*b));
    snprintf(k, sizeof k, "%s.input_ids", lay);
    const struct sw_st_entry *ids = gold(g, k, SW_DTYPE_I32);
    snprintf(k, sizeof k, "%s.labels", lay);
    const struct sw_st_entry *lab = gold(g, k, SW_DTYPE_I32);
    snprintf(k, sizeof k, "%s.position_ids", lay);
    const struct sw_st_entry *pos = gold(g, k, SW_DTYPE_I32);
    if (!ids || !lab || !pos || ids->ndim != 2) return -1;
    b->B = ids->shape[0];
    b->T = ids->shape[1];
    b->input_ids = ids->data;
    b->labels = lab->data;
    b->position_ids = pos->data;
    if (strcmp(lay, "pad") == 0) {
        const struct sw_st_entry *mk = gold(g, "pad.attention_mask", SW_DTYPE_I32);
        if (!mk) return -1;
        b->attention_mask = mk->data;
    } else {
        const struct sw_st_entry *cu = gold(g, "pack.cu_seqlens", SW_DTYPE_I32);
        if (!cu) return -1;
        b->cu_seqlens = cu->data;
        b->n_seqs = (int)cu->shape[0] - 1;
    }
    return 0;
}

/* Forward + backward of one layout; compare loss, logits and every gradient with the golden. */
static void check_layout(struct sw_model *m, const struct sw_st_file *g, const char *what,
                         const char *lay) {
    struct sw_batch b;
    if (golden_batch(g, lay, &b) < 0) return;
    char k[320];
    struct sw_loss loss;
    int rc = sw_model_zero_grad(m);
    if (rc == 0) rc = sw_model_forward(m, &b, &loss);
    if (!OK(rc == 0, "%s %s: forward (%s)", what, lay, rc ? sw_err_msg() : "ok")) return;
    snprintf(k, sizeof k, "%s.loss", lay);
    const struct sw_st_entry *gl = gold(g, k, SW_DTYPE_F32);
    float mean = (float)(loss.sum / (double)loss.count);
    if (gl) {
        double e = sw_test_rel_err(&mean, gl->data, 1);
        if (!OK(e <= TOL, "%s %s: loss %.7f vs HF %.7f (%lld targets)", what, lay, mean,
                *(const float *)gl->data, (long long)loss.count))
            DIAG("relative error %.3g", e);
    }

    /* Logits: full-logits path; padded rows skipped. */
    int64_t N = b.B * b.T, V = sw_model_config_get(m)->vocab_size;
    float *lg = malloc((size_t)(N * V) * sizeof(float));
    snprintf(k, sizeof k, "%s.logits", lay);
    const struct sw_st_entry *gg = gold(g, k, SW_DTYPE_F32);
    if (gg && OK(sw_model_logits(m, lg) == 0 && entry_numel(gg) == N * V,
                 "%s %s: logits [%lld, %lld]", what, lay, (long long)N, (long long)V)) {
        const float *ref = gg->data;
        double worst = 0;
        for (int64_t n = 0; n < N; n++) {
            if (b.attention_mask && !b.attention_mask[n]) continue;
            double e = sw_test_rel_err(lg + n * V, ref + n * V, V);
            if (e > worst) worst = e;
        }
        if (!OK(worst <= TOL, "%s %s: logits match HF", what, lay))
            DIAG("worst row rel %.3g", worst);
    }
    free(lg);

    rc = sw_model_backward(m, 1.0f / (float)loss.count);
    if (!OK(rc == 0, "%s %s: backward (%s)", what, lay, rc ? sw_err_msg() : "ok")) return;
    int n_cmp = 0, n_bad = 0, n_trainable = 0;
    double worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < sw_model_nparams(m); i++) {
        struct sw_param *p = sw_model_param(m, i);
        if (!p->trainable) {
            if (p->grad.data) n_bad++, DIAG("frozen %s has a gradient", p->name);
            continue;
        }
        n_trainable++;
        snprintf(k, sizeof k, "%s.grad.%s", lay, p->name);
        const struct sw_st_entry *e = sw_st_find(g, k);
        float *h = grad_host(p);
        int64_t n = p->value.ndim == 2 ? p->value.shape[0] * p->value.shape[1] : p->value.shape[0];
        if (!e || e->dtype != SW_DTYPE_F32 || entry_numel(e) != n || !h) {
            n_bad++;
            DIAG("no matching golden gradient %s", k);
            free(h);
            continue;
        }
        double err = sw_test_rel_err(h, e->data, n);
        if (err > worst) worst = err, worst_name = p->name;
        if (err > TOL) n_bad++, DIAG("%s: relative error %.3g", p->name, err);
        n_cmp++;
        free(h);
    }
    /* Every golden gradient has a parameter here. */
    int n_golden = 0;
    size_t pl = strlen(lay) + 6;
    for (int i = 0; i < sw_st_count(g); i++) {
        const struct sw_st_entry *e = sw_st_get(g, i);
        snprintf(k, sizeof k, "%s.grad.", lay);
        if (strncmp(e->name, k, pl) == 0) n_golden++;
    }
    OK(n_bad == 0 && n_cmp == n_trainable && n_golden == n_cmp,
       "%s %s: all %d parameter gradients match HF (worst %.2g at %s)", what, lay, n_cmp, worst,
       worst_name);
    if (n_golden != n_cmp) DIAG("golden has %d gradients, compared %d", n_golden, n_cmp);
}

static struct sw_model *open_model(const struct sw_model_config *c, const char *dir) {
    struct sw_model *m = NULL;
    struct sw_st_set *s = NULL;
    int rc = sw_model_new(c, be, &m);
    if (rc == 0) rc = sw_st_set_open(dir, &s);
    if (rc == 0) rc = sw_model_load(m, s);
    sw_st_set_close(s);
    if (!OK(rc == 0, "load %s (%s)", dir, rc ? sw_err_msg() : "ok")) {
        sw_model_free(m);
        return NULL;
    }
    return m;
}

static void test_family(const char *name, enum sw_arch arch) {
    struct sw_model_config c;
    base_config(&c, arch);
    char dir[256], gpath[300];
    snprintf(dir, sizeof dir, GOLDEN "%s", name);
    snprintf(gpath, sizeof gpath, "%s/golden.safetensors", dir);
    struct sw_model *m = open_model(&c, dir);
    struct sw_st_file *g = NULL;
    if (!m || !OK(sw_st_open(gpath, &g) == 0, "open %s", gpath)) {
        sw_model_free(m);
        return;
    }
    check_layout(m, g, name, "pad");
    check_layout(m, g, name, "pack");

    /* Packed without explicit position_ids: positions restart per sample by default. */
    struct sw_batch b;
    struct sw_loss l1, l2;
    golden_batch(g, "pack", &b);
    sw_model_forward(m, &b, &l1);
    b.position_ids = NULL;
    sw_model_forward(m, &b, &l2);
    OK(l1.sum == l2.sum && l1.count == l2.count,
       "%s: default positions restart at 0 in every packed sample", name);

    /* The same model built from config.json through sw_hfconfig gives the same loss. */
    struct sw_model_config fc;
    char cpath[300];
    snprintf(cpath, sizeof cpath, "%s/config.json", dir);
    struct sw_model *m2 = NULL;
    int rc = sw_model_config_load(cpath, &fc);
    if (rc == 0) m2 = open_model(&fc, dir);
    if (m2) {
        b.position_ids = NULL;
        rc = sw_model_forward(m2, &b, &l2);
    }
    OK(rc == 0 && m2 && l1.sum == l2.sum && fc.rope_type == c.rope_type &&
           fc.tie_word_embeddings == c.tie_word_embeddings && fc.head_dim == c.head_dim,
       "%s: config.json via sw_model_config_load gives the same model (%s)", name,
       rc ? sw_err_msg() : "ok");
    sw_model_free(m2);
    sw_st_close(g);
    sw_model_free(m);
}

static void test_lora(void) {
    struct sw_model_config c;
    base_config(&c, SW_ARCH_LLAMA);
    struct sw_model *m = open_model(&c, GOLDEN "llama");
    if (!m) return;
    struct sw_lora_config lc = {.r = 4, .alpha = 8, .target_modules = "all-linear", .seed = 1};
    struct sw_st_set *s = NULL;
    struct sw_st_file *g = NULL;
    int rc = sw_model_lora_add(m, &lc);
    OK(rc == 0 && sw_model_nparams(m) > 0, "lora_add r=4 alpha=8 all-linear");
    OK(sw_model_numel(m, 1) ==
           2 * 7 * 0 + 2 * (4 * (32 + 32) * 2 + 4 * (32 + 16) * 2 + 4 * (32 + 64) * 3),
       "trainable parameters are the adapters only (%lld)", (long long)sw_model_numel(m, 1));
    OK(sw_model_lora_add(m, &lc) == SW_ESTATE, "a second lora_add is SW_ESTATE");
    if (rc == 0) rc = sw_st_set_open(GOLDEN "llama_lora/adapter_model.safetensors", &s);
    if (rc == 0) rc = sw_model_lora_load(m, s);
    sw_st_set_close(s);
    if (OK(rc == 0, "load the PEFT adapter (%s)", rc ? sw_err_msg() : "ok") &&
        OK(sw_st_open(GOLDEN "llama_lora/golden.safetensors", &g) == 0, "open LoRA golden")) {
        check_layout(m, g, "llama+lora", "pad");
        check_layout(m, g, "llama+lora", "pack");

        /* Dropout: off in eval, on in training, reproducible from (seed, forward count). */
        struct sw_batch b;
        struct sw_loss l0, l1, l2, l3;
        golden_batch(g, "pack", &b);
        sw_model_forward(m, &b, &l0);
        struct sw_model *m2 = NULL;
        struct sw_lora_config ld = lc;
        ld.dropout = 0.3f;
        sw_model_new(&c, be, &m2);
        struct sw_st_set *bs = NULL, *as = NULL;
        sw_st_set_open(GOLDEN "llama", &bs);
        sw_st_set_open(GOLDEN "llama_lora/adapter_model.safetensors", &as);
        rc = sw_model_load(m2, bs);
        if (rc == 0) rc = sw_model_lora_add(m2, &ld);
        if (rc == 0) rc = sw_model_lora_load(m2, as);
        sw_st_set_close(bs);
        sw_st_set_close(as);
        sw_model_forward(m2, &b, &l1);
        OK(rc == 0 && l1.sum == l0.sum, "dropout is off outside training mode");
        sw_model_set_training(m2, 1);
        sw_model_set_seed(m2, 42, 0);
        sw_model_forward(m2, &b, &l2);
        rc = sw_model_zero_grad(m2);
        if (rc == 0) rc = sw_model_backward(m2, 1.0f / (float)l2.count);
        sw_model_set_seed(m2, 42, 0);
        sw_model_forward(m2, &b, &l3);
        OK(l2.sum != l0.sum && l2.sum == l3.sum && rc == 0,
           "training-mode dropout changes the loss, reproducibly from (seed, count); backward "
           "runs");
        sw_model_free(m2);
    }
    sw_st_close(g);
    sw_model_free(m);
}

/* A family whose golden folder's config.json is the model (Mistral, Gemma 2): parity of both
 * layouts, the LoRA case (PEFT) when lora is set, and proof that the family's own features
 * matter — the same weights run without them (off() clears them) do not match HF. */
typedef void (*cfg_off_fn)(struct sw_model_config *c);

static void test_family_json(const char *name, int lora, const cfg_off_fn *off,
                             const char *const *off_what) {
    char dir[256], path[320];
    snprintf(dir, sizeof dir, GOLDEN "%s", name);
    snprintf(path, sizeof path, "%s/config.json", dir);
    struct sw_model_config c;
    int rc = sw_model_config_load(path, &c);
    if (!OK(rc == 0, "%s: config.json (%s)", name, rc ? sw_err_msg() : "ok")) return;
    struct sw_model *m = open_model(&c, dir);
    struct sw_st_file *g = NULL;
    snprintf(path, sizeof path, "%s/golden.safetensors", dir);
    if (!m || !OK(sw_st_open(path, &g) == 0, "open %s", path)) {
        sw_model_free(m);
        return;
    }
    check_layout(m, g, name, "pad");
    check_layout(m, g, name, "pack");

    /* Without the family's feature the same weights give another loss. */
    for (int k = 0; off && off[k]; k++) {
        struct sw_model_config c2 = c;
        off[k](&c2);
        struct sw_model *m2 = open_model(&c2, dir);
        struct sw_batch b;
        struct sw_loss l1 = {0, 0}, l2 = {0, 0};
        golden_batch(g, "pack", &b);
        rc = m2 ? sw_model_forward(m, &b, &l1) : -1;
        if (rc == 0) rc = sw_model_forward(m2, &b, &l2);
        OK(rc == 0 && fabs(l1.sum - l2.sum) > 1e-4 * fabs(l1.sum),
           "%s: %s changes the loss (%.6f vs %.6f): the goldens exercise it", name, off_what[k],
           l1.sum / (l1.count ? l1.count : 1), l2.sum / (l2.count ? l2.count : 1));
        sw_model_free(m2);
    }
    sw_st_close(g);
    g = NULL;

    if (lora) {
        struct sw_lora_config lc = {.r = 4, .alpha = 8, .target_modules = "all-linear", .seed = 1};
        struct sw_st_set *s = NULL;
        rc = sw_model_lora_add(m, &lc);
        snprintf(path, sizeof path, "%s_lora/adapter_model.safetensors", dir);
        if (rc == 0) rc = sw_st_set_open(path, &s);
        if (rc == 0) rc = sw_model_lora_load(m, s);
        sw_st_set_close(s);
        snprintf(path, sizeof path, "%s_lora/golden.safetensors", dir);
        char what[64];
        snprintf(what, sizeof what, "%s+lora", name);
        if (OK(rc == 0, "%s: load the PEFT adapter (%s)", what, rc ? sw_err_msg() : "ok") &&
            OK(sw_st_open(path, &g) == 0, "open %s", path)) {
            check_layout(m, g, what, "pad");
            check_layout(m, g, what, "pack");
        }
        sw_st_close(g);
    }
    sw_model_free(m);
}

static void window_off(struct sw_model_config *c) {
    c->sliding_window = 0;
}
static void attn_cap_off(struct sw_model_config *c) {
    c->attn_softcap = 0;
}
static void final_cap_off(struct sw_model_config *c) {
    c->final_softcap = 0;
}
static void qscale_off(struct sw_model_config *c) {
    c->query_pre_attn_scalar = 0;
}
static const cfg_off_fn mistral_off[] = {window_off, NULL};
static const char *const mistral_off_what[] = {"full attention instead of the window of 4"};
static const cfg_off_fn gemma2_off[] = {window_off, attn_cap_off, final_cap_off, qscale_off, NULL};
static const char *const gemma2_off_what[] = {
    "full attention on layer 0 instead of the window of 4", "no attention soft-cap",
    "no final soft-cap", "1/sqrt(head_dim) instead of query_pre_attn_scalar"};

/* Finite-difference check of the whole model with LoRA dropout on (no HF reference can cover
 * dropout): d loss / d lora_B[0] against a central difference of the loss. */
static void test_lora_dropout_fd(void) {
    struct sw_model_config c;
    base_config(&c, SW_ARCH_QWEN2);
    struct sw_model *m = open_model(&c, GOLDEN "qwen2");
    struct sw_st_file *g = NULL;
    if (!m || sw_st_open(GOLDEN "qwen2/golden.safetensors", &g) != 0) {
        sw_model_free(m);
        return;
    }
    struct sw_lora_config lc = {.r = 2,
                                .alpha = 4,
                                .dropout = 0.25f,
                                .use_rslora = 1,
                                .target_modules = "q_proj,down_proj",
                                .seed = 3};
    sw_model_lora_add(m, &lc);
    sw_model_set_training(m, 1);
    struct sw_batch b;
    golden_batch(g, "pack", &b);
    /* B starts at zero like PEFT: set it to small values so every path matters. */
    for (int i = 0; i < sw_model_nparams(m); i++) {
        struct sw_param *p = sw_model_param(m, i);
        if (!p->is_lora) continue;
        float *v = p->value.data;
        for (int64_t j = 0; j < p->value.shape[0] * p->value.shape[1]; j++)
            v[j] = 0.05f * (float)sin((double)(j + 1) * (i + 1));
    }
    struct sw_param *pb =
        sw_model_param_find(m, "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight");
    struct sw_param *pa =
        sw_model_param_find(m, "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
    OK(pb && pa &&
           !sw_model_param_find(m,
                                "base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight"),
       "target_modules list picks q_proj and down_proj only");
    if (!pb || !pa) goto done;
    struct sw_loss l;
    sw_model_set_seed(m, 7, 0);
    sw_model_forward(m, &b, &l);
    sw_model_zero_grad(m);
    sw_model_backward(m, 1.0f);
    double worst = 0;
    struct sw_param *ps[2] = {pa, pb};
    for (int w = 0; w < 2; w++) {
        float *v = ps[w]->value.data, *gr = ps[w]->grad.data;
        for (int j = 0; j < 3; j++) {
            float h = 1e-2f, v0 = v[j];
            struct sw_loss lp, lm;
            v[j] = v0 + h;
            sw_model_set_seed(m, 7, 0);
            sw_model_forward(m, &b, &lp);
            v[j] = v0 - h;
            sw_model_set_seed(m, 7, 0);
            sw_model_forward(m, &b, &lm);
            v[j] = v0;
            double fd = (lp.sum - lm.sum) / (2.0 * h);
            double e = fabs(fd - gr[j]) / fmax(fabs(fd), 1e-3);
            if (e > worst) worst = e;
        }
    }
    OK(worst < 2e-2,
       "LoRA (rsLoRA, dropout 0.25) gradients match finite differences of the "
       "float32 loss (rel %.2g < 2e-2)",
       worst);
done:
    sw_st_close(g);
    sw_model_free(m);
}

/* Loading converts BF16 (and F16) checkpoints: write the llama weights as BF16 (embeddings) and
 * F16 (the rest) to a temporary file, load it, compare with the rounded originals exactly. */
static void test_load_half(void) {
    struct sw_model_config c;
    base_config(&c, SW_ARCH_LLAMA);
    struct sw_model *m = open_model(&c, GOLDEN "llama"), *h = NULL;
    struct sw_st_writer *w = NULL;
    if (!m || sw_st_writer_new(&w) != 0) {
        sw_model_free(m);
        return;
    }
    char path[128];
    snprintf(path, sizeof path, "/tmp/sw_test_model_half_%d.safetensors", (int)getpid());
    int np = sw_model_nparams(m), rc = 0;
    uint16_t **bufs = calloc((size_t)np, sizeof(*bufs));
    for (int i = 0; i < np && rc == 0; i++) {
        struct sw_param *p = sw_model_param(m, i);
        int64_t n = p->value.ndim == 2 ? p->value.shape[0] * p->value.shape[1] : p->value.shape[0];
        enum sw_dtype dt = strstr(p->name, "embed") ? SW_DTYPE_BF16 : SW_DTYPE_F16;
        bufs[i] = malloc((size_t)n * 2);
        rc = sw_dtype_convert(dt, bufs[i], SW_DTYPE_F32, p->value.data, (size_t)n);
        struct sw_tensor t;
        if (rc == 0) rc = sw_tensor_init(&t, dt, p->value.ndim, p->value.shape, bufs[i]);
        if (rc == 0) rc = sw_st_writer_add(w, p->name, &t);
    }
    if (rc == 0) rc = sw_st_writer_write(w, path);
    struct sw_st_set *s = NULL;
    if (rc == 0) rc = sw_st_set_open(path, &s);
    if (rc == 0) rc = sw_model_new(&c, be, &h);
    if (rc == 0) rc = sw_model_load(h, s);
    int exact = rc == 0;
    for (int i = 0; i < np && exact; i++) {
        struct sw_param *p = sw_model_param(m, i), *q = sw_model_param(h, i);
        int64_t n = p->value.ndim == 2 ? p->value.shape[0] * p->value.shape[1] : p->value.shape[0];
        int bf = strstr(p->name, "embed") != NULL;
        const float *a = p->value.data, *b = q->value.data;
        for (int64_t j = 0; j < n && exact; j++) {
            float want =
                bf ? sw_bf16_to_f32(sw_f32_to_bf16(a[j])) : sw_f16_to_f32(sw_f32_to_f16(a[j]));
            exact = b[j] == want;
        }
    }
    OK(exact, "BF16 and F16 checkpoints load as their exact float32 values (%s)",
       rc ? sw_err_msg() : "ok");
    sw_st_set_close(s);
    unlink(path);
    for (int i = 0; i < np; i++)
        free(bufs[i]);
    free(bufs);
    sw_st_writer_free(w);
    sw_model_free(h);
    sw_model_free(m);
}

static void test_errors_and_init(void) {
    struct sw_model_config c;
    base_config(&c, SW_ARCH_LLAMA);
    struct sw_st_set *s = NULL;
    struct sw_model *m = NULL;
    if (sw_st_set_open(GOLDEN "llama", &s) != 0) return;
    c.num_hidden_layers = 3;
    sw_model_new(&c, be, &m);
    int rc = sw_model_load(m, s);
    OK(rc == SW_ENOTFOUND && strstr(sw_err_msg(), "'model.layers.2.self_attn.q_proj.weight'"),
       "a missing tensor is SW_ENOTFOUND naming it: %s", sw_err_msg());
    sw_model_free(m);
    base_config(&c, SW_ARCH_LLAMA);
    c.intermediate_size = 48;
    sw_model_new(&c, be, &m);
    rc = sw_model_load(m, s);
    OK(rc == SW_EFORMAT && strstr(sw_err_msg(), "model.layers.0.mlp.gate_proj.weight") &&
           strstr(sw_err_msg(), "[64, 32]") && strstr(sw_err_msg(), "[48, 32]"),
       "a mis-shaped tensor is SW_EFORMAT naming it and both shapes: %s", sw_err_msg());
    sw_model_free(m);
    base_config(&c, SW_ARCH_LLAMA);
    c.attention_bias = 1;
    sw_model_new(&c, be, &m);
    OK(sw_model_param_find(m, "model.layers.0.self_attn.o_proj.bias") &&
           sw_model_load(m, s) == SW_ENOTFOUND,
       "llama attention_bias adds q/k/v/o biases, required on load");
    sw_model_free(m);
    sw_st_set_close(s);

    /* Random init: deterministic, HF-like statistics. */
    base_config(&c, SW_ARCH_QWEN3);
    struct sw_model *a = NULL, *b2 = NULL;
    sw_model_new(&c, be, &a);
    sw_model_new(&c, be, &b2);
    sw_model_init_random(a, 5, 0);
    sw_model_init_random(b2, 5, 0);
    int same = 1;
    for (int i = 0; i < sw_model_nparams(a); i++) {
        struct sw_param *p = sw_model_param(a, i), *q = sw_model_param(b2, i);
        same &= memcmp(p->value.data, q->value.data,
                       (size_t)(p->value.ndim == 2 ? p->value.shape[0] * p->value.shape[1]
                                                   : p->value.shape[0]) *
                           4) == 0;
    }
    OK(same, "random init with one seed is bit-identical");
    struct sw_param *e = sw_model_param_find(a, "model.embed_tokens.weight");
    struct sw_param *qn = sw_model_param_find(a, "model.layers.1.self_attn.q_norm.weight");
    const float *ev = e->value.data;
    double ss = 0;
    int pad_zero = 1;
    for (int64_t j = 0; j < 97 * 32; j++)
        ss += (double)ev[j] * ev[j];
    for (int64_t j = 0; j < 32; j++)
        pad_zero &= ev[j] == 0.0f; /* pad_token_id 0 */
    double sd = sqrt(ss / (96 * 32));
    OK(fabs(sd - 0.02) < 0.002 && pad_zero && ((float *)qn->value.data)[3] == 1.0f,
       "init: std %.4f ≈ 0.02, pad row zero, norms 1", sd);
    OK(sw_model_param_find(a, "lm_head.weight") == NULL && sw_model_nparams(a) == 1 + 2 * 11 + 1,
       "qwen3 tied: no lm_head parameter, %d parameters", sw_model_nparams(a));

    /* Batch validation. */
    int32_t ids[6] = {5, 6, 7, 8, 9, 10}, mask[6] = {1, 1, 1, 0, 1, 1},
            lab[6] = {5, 6, 7, 8, 9, 10};
    struct sw_batch bt = {.B = 2, .T = 3, .input_ids = ids, .labels = lab, .attention_mask = mask};
    struct sw_loss l;
    OK(sw_model_forward(a, &bt, &l) == SW_EINVAL && strstr(sw_err_msg(), "row 1"),
       "left padding is refused naming the row: %s", sw_err_msg());
    ids[4] = 97;
    bt.attention_mask = NULL;
    OK(sw_model_forward(a, &bt, &l) == SW_ERANGE && strstr(sw_err_msg(), "97"),
       "a token id past the vocabulary is SW_ERANGE: %s", sw_err_msg());
    ids[4] = 9;
    OK(sw_model_backward(a, 1.0f) == SW_ESTATE, "backward without a good forward is SW_ESTATE");
    int32_t cu[3] = {0, 2, 6};
    bt.cu_seqlens = cu;
    bt.n_seqs = 2;
    OK(sw_model_forward(a, &bt, &l) == 0 && l.count == 4 && sw_batch_count_targets(&bt) == 4,
       "packed 2+4 tokens give 1+3 targets");
    bt.cu_seqlens = NULL;
    OK(sw_model_forward(a, &bt, &l) == 0 && l.count == 4, "two rows of 3 give 2+2 targets");

    /* Determinism of a whole step and gradient accumulation (+= over backward calls). */
    sw_model_zero_grad(a);
    sw_model_forward(a, &bt, &l);
    sw_model_backward(a, 1.0f);
    struct sw_param *wq = sw_model_param_find(a, "model.layers.0.self_attn.q_proj.weight");
    int64_t n = wq->value.shape[0] * wq->value.shape[1];
    float *g1 = grad_host(wq);
    sw_model_forward(a, &bt, &l);
    sw_model_backward(a, 1.0f);
    float *g2 = grad_host(wq);
    int twice = 1;
    for (int64_t j = 0; j < n; j++)
        twice &= g2[j] == 2 * g1[j];
    OK(twice, "a second backward adds the same gradient again (bit-exact)");
    sw_model_zero_grad(b2);
    sw_model_forward(b2, &bt, &l);
    sw_model_backward(b2, 1.0f);
    float *g3 = grad_host(sw_model_param_find(b2, "model.layers.0.self_attn.q_proj.weight"));
    OK(memcmp(g1, g3, (size_t)n * 4) == 0, "two models, same seed and batch: identical gradients");
    free(g1), free(g2), free(g3);
    sw_model_free(a);
    sw_model_free(b2);
}

/* ---- gradient checkpointing --------------------------------------------------------------- */

/* A golden model (plus LoRA when lc is given) on its own CPU backend: scratch peaks are
 * per backend, so each run of the comparison below gets a fresh one. */
static struct sw_model *model_on(struct sw_backend **bo, const struct sw_model_config *c,
                                 const char *dir, const struct sw_lora_config *lc) {
    struct sw_model *m = NULL;
    struct sw_st_set *s = NULL;
    int rc = sw_backend_open(SW_DEVICE_CPU, bo);
    if (rc == 0) rc = sw_model_new(c, *bo, &m);
    if (rc == 0) rc = sw_st_set_open(dir, &s);
    if (rc == 0) rc = sw_model_load(m, s);
    if (rc == 0 && lc) rc = sw_model_lora_add(m, lc);
    sw_st_set_close(s);
    if (rc == 0 && lc) { /* B = 0 at init: give it values so every LoRA path carries gradient */
        for (int i = 0; i < sw_model_nparams(m); i++) {
            struct sw_param *p = sw_model_param(m, i);
            float *v = p->value.data;
            if (p->is_lora)
                for (int64_t j = 0; j < p->value.shape[0] * p->value.shape[1]; j++)
                    v[j] = 0.05f * (float)cos((double)(j + 3) * (i + 1));
        }
    }
    if (!OK(rc == 0, "build %s on a fresh CPU backend (%s)", dir, rc ? sw_err_msg() : "ok")) {
        sw_model_free(m);
        sw_backend_close(*bo);
        *bo = NULL;
        return NULL;
    }
    return m;
}

/* Forward + backward of two micro-batches (accumulated) with and without checkpointing:
 * the loss and every trainable gradient must be bit-identical, the scratch peak lower, and
 * sw_model_scratch_estimate must match each measured peak (the estimate rounds every
 * allocation up to 256 bytes; with N = 640 every buffer but cu_seqlens is a multiple of 256
 * already, so the two differ by less than 1 KiB). */
static void check_ckpt(const char *what, enum sw_arch arch, const char *dir,
                       const struct sw_lora_config *lc) {
    struct sw_model_config c;
    base_config(&c, arch);
    enum { N = 640, NSEQ = 5 };
    int32_t ids[N], labels[N], cu[NSEQ + 1];
    for (int i = 0; i < N; i++) {
        ids[i] = (int32_t)((i * 37 + 11) % 97);
        labels[i] = i % 7 == 3 ? SW_IGNORE_INDEX : (int32_t)((i * 53 + 5) % 97);
    }
    for (int s = 0; s <= NSEQ; s++)
        cu[s] = s * (N / NSEQ); /* 128 tokens each */
    struct sw_batch b1 = {
        .B = 1, .T = N, .input_ids = ids, .labels = labels, .cu_seqlens = cu, .n_seqs = NSEQ};
    struct sw_batch b2 = b1;
    b2.B = 2, b2.T = N / 2, b2.cu_seqlens = NULL, b2.n_seqs = 0; /* plain rows of 320 */
    c.max_position_embeddings = N;
    struct sw_backend *bk[2] = {NULL, NULL};
    struct sw_model *m[2] = {NULL, NULL};
    struct sw_loss l[2][2];
    size_t peak[2] = {0, 0}, est[2] = {0, 0};
    int rc = 0;
    for (int k = 0; k < 2 && rc == 0; k++) {
        if (!(m[k] = model_on(&bk[k], &c, dir, lc))) {
            rc = -1;
            break;
        }
        sw_model_set_gradient_checkpointing(m[k], k);
        sw_model_set_training(m[k], 1);
        sw_model_set_seed(m[k], 11, 0);
        est[k] = sw_model_scratch_estimate(m[k], N, NSEQ, 0);
        rc = sw_model_zero_grad(m[k]);
        if (rc == 0) rc = sw_model_forward(m[k], &b1, &l[k][0]);
        if (rc == 0) rc = sw_model_backward(m[k], 1.0f / 1000.0f);
        peak[k] = sw_model_scratch_peak(m[k]);
        if (rc == 0) rc = sw_model_forward(m[k], &b2, &l[k][1]);
        if (rc == 0) rc = sw_model_backward(m[k], 1.0f / 1000.0f);
    }
    if (OK(rc == 0, "%s: forward/backward with and without gradient checkpointing (%s)", what,
           rc ? sw_err_msg() : "ok")) {
        OK(l[0][0].sum == l[1][0].sum && l[0][1].sum == l[1][1].sum,
           "%s: checkpointing gives the same loss bit for bit", what);
        int n = 0, same = 0;
        for (int i = 0; i < sw_model_nparams(m[0]); i++) {
            struct sw_param *p = sw_model_param(m[0], i), *q = sw_model_param(m[1], i);
            if (!p->trainable) continue;
            size_t bytes = sw_tensor_nbytes(&p->value);
            n++;
            same += q->trainable && memcmp(p->grad.data, q->grad.data, bytes) == 0;
        }
        OK(n > 0 && same == n, "%s: all %d trainable gradients bit-identical with checkpointing",
           what, n);
        OK(peak[1] < peak[0], "%s: scratch peak %zu bytes with checkpointing < %zu without", what,
           peak[1], peak[0]);
        for (int k = 0; k < 2; k++)
            OK(est[k] >= peak[k] && est[k] - peak[k] < 1024,
               "%s: scratch estimate %zu matches the measured peak %zu (%s checkpointing)", what,
               est[k], peak[k], k ? "with" : "without");
        /* Eval forward (no labels) with checkpointing, then training again. */
        struct sw_batch e = b1;
        e.labels = NULL;
        struct sw_loss le, lt;
        rc = sw_model_forward(m[1], &e, &le);
        OK(rc == 0 && sw_model_backward(m[1], 1.0f) == SW_ESTATE,
           "%s: a forward without labels under checkpointing runs; backward then is SW_ESTATE",
           what);
        sw_model_set_seed(m[1], 11, 0);
        rc = sw_model_forward(m[1], &b1, &lt);
        OK(rc == 0 && lt.sum == l[0][0].sum, "%s: and the next training forward is unchanged",
           what);
    }
    for (int k = 0; k < 2; k++) {
        sw_model_free(m[k]);
        sw_backend_close(bk[k]);
    }
}

static void test_gradient_checkpointing(void) {
    check_ckpt("qwen3 (q/k norm)", SW_ARCH_QWEN3, GOLDEN "qwen3", NULL);
    check_ckpt("qwen2 (biases)", SW_ARCH_QWEN2, GOLDEN "qwen2", NULL);
    check_ckpt("gemma2 (post norms, soft-caps, window)", SW_ARCH_GEMMA2, GOLDEN "gemma2", NULL);
    check_ckpt("mistral (window)", SW_ARCH_MISTRAL, GOLDEN "mistral", NULL);
    struct sw_lora_config lc = {
        .r = 4, .alpha = 8, .dropout = 0.2f, .target_modules = "all-linear", .seed = 5};
    check_ckpt("llama + LoRA dropout 0.2", SW_ARCH_LLAMA, GOLDEN "llama", &lc);
}

/* The linear observer sees every decoder linear's input, in forward order, with its site; the
 * first call's input is input_layernorm's output (so a calibration pass sees what W multiplies),
 * and a non-zero return aborts the forward with that code. */
struct observed {
    int calls, in_order, sizes_ok, abort_at;
    double first_sum;
};

static int observe(void *ctx, const struct sw_linear_site *s, const float *x, int64_t N) {
    struct observed *o = ctx;
    int want_layer = o->calls / 7, want_kind = o->calls % 7;
    if (s->layer != want_layer || s->kind != want_kind) o->in_order = 0;
    static const char *const names[7] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                         "gate_proj", "up_proj", "down_proj"};
    if (strcmp(s->name, names[s->kind]) || s->in <= 0 || s->out <= 0 || N != 12) o->sizes_ok = 0;
    if (o->calls == 0)
        for (int64_t i = 0; i < N * s->in; i++)
            o->first_sum += x[i];
    if (++o->calls == o->abort_at) return SW_EINTR;
    return 0;
}

static void test_linear_observer(void) {
    struct sw_model_config c;
    base_config(&c, SW_ARCH_QWEN2);
    struct sw_model *m = NULL;
    if (!OK(sw_model_new(&c, be, &m) == 0 && sw_model_init_random(m, 3, 0.1f) == 0,
            "observer: model"))
        return;
    int32_t ids[12];
    for (int i = 0; i < 12; i++)
        ids[i] = (i * 7 + 3) % 97;
    struct sw_batch b = {.B = 2, .T = 6, .input_ids = ids};
    struct observed o = {.in_order = 1, .sizes_ok = 1};
    sw_model_set_linear_observer(m, observe, &o);
    int rc = sw_model_forward(m, &b, NULL);
    OK(rc == 0 && o.calls == 2 * 7 && o.in_order && o.sizes_ok,
       "observer: 14 calls, layer by layer in module order, sizes and N (rc %d, %d calls)", rc,
       o.calls);
    OK(isfinite(o.first_sum) && o.first_sum != 0.0, "observer: sees the q_proj input");
    struct observed a = {.in_order = 1, .sizes_ok = 1, .abort_at = 3};
    sw_model_set_linear_observer(m, observe, &a);
    IS_INT(sw_model_forward(m, &b, NULL), SW_EINTR, "observer: its error aborts the forward");
    IS_INT(a.calls, 3, "observer: nothing after the aborting call");
    struct observed z = {.in_order = 1, .sizes_ok = 1};
    sw_model_set_linear_observer(m, NULL, &z);
    OK(sw_model_forward(m, &b, NULL) == 0 && z.calls == 0, "observer: removed, not called");
    sw_model_free(m);
}

int main(void) {
    if (!OK(sw_backend_open(SW_DEVICE_CPU, &be) == 0, "open the CPU backend")) return tap_done();
    test_family("llama", SW_ARCH_LLAMA);
    test_family("qwen2", SW_ARCH_QWEN2);
    test_family("qwen3", SW_ARCH_QWEN3);
    test_family_json("mistral", 1, mistral_off, mistral_off_what);
    test_family_json("gemma2", 1, gemma2_off, gemma2_off_what);
    test_lora();
    test_lora_dropout_fd();
    test_load_half();
    test_errors_and_init();
    test_gradient_checkpointing();
    test_linear_observer();
    sw_backend_close(be);
    return tap_done();
}
