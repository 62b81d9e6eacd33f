/* sw_train_setup — everything before the first step: the backend and its precision, the model
 * (from an HF folder, from a config with random init, or from a full checkpoint), LoRA adapters,
 * gradient checkpointing, the checks that a checkpoint belongs to this run (tuner, adapter
 * shape, base model), the trainable-parameter list (pointing at the model's own memory, host or
 * device), and the optimizer with its restored moments (sw_train_device.c, in the backend's
 * memory on every device). Allocation failures name their category
 * (sw_train_mem_oom). */
#include "sw_train_impl.h"

#include "sw_err.h"
#include "sw_io.h"
#include "sw_log.h"
#include "sw_loss_scale.h"
#include "sw_sha256.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const lin_names[] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                        "gate_proj", "up_proj", "down_proj"};
#define NLIN 7

/* The sorted, comma-separated module list a target_modules value means ("all-linear" → all). */
static void canonical_targets(const char *spec, char *out, size_t cap) {
    int on[NLIN] = {0};
    int all = !spec || !*spec || strcmp(spec, "all-linear") == 0;
    for (int i = 0; i < NLIN; i++) {
        if (all) {
            on[i] = 1;
            continue;
        }
        size_t n = strlen(lin_names[i]);
        for (const char *p = spec; (p = strstr(p, lin_names[i])); p += n)
            if ((p == spec || p[-1] == ',' || p[-1] == ' ') &&
                (p[n] == ',' || p[n] == ' ' || !p[n]))
                on[i] = 1;
    }
    /* Sorted by name, as adapter_config.json lists them. */
    const char *sorted[NLIN];
    int k = 0;
    for (int i = 0; i < NLIN; i++)
        if (on[i]) sorted[k++] = lin_names[i];
    for (int i = 1; i < k; i++)
        for (int j = i; j > 0 && strcmp(sorted[j - 1], sorted[j]) > 0; j--) {
            const char *t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    out[0] = '\0';
    for (int i = 0; i < k; i++) {
        if (i) strncat(out, ",", cap - strlen(out) - 1);
        strncat(out, sorted[i], cap - strlen(out) - 1);
    }
}

static int file_sha256(const char *dir, const char *name, char hex[65]) {
    hex[0] = '\0';
    char *p = dir ? sw_path_join(dir, name) : strdup(name);
    if (!p) return sw_err_set(SW_ENOMEM, "out of memory");
    int rc = 0;
    if (access(p, F_OK) == 0) {
        uint8_t d[32];
        rc = sw_sha256_file(p, d);
        if (rc == 0) sw_hex(d, 32, hex);
    }
    free(p);
    return rc;
}

/* The backend of --device, opened with the environment's options (bo: what they were, for
 * setup_precision; a CPU backend reads none, so a malformed SW_CUDA_* variable does not stop a
 * CPU run). */
static int open_backend(struct sw_trainer *t, struct sw_backend_opts *bo) {
    const char *dev = t->o->device ? t->o->device : "cpu";
    enum sw_device d;
    sw_backend_opts_init(bo);
    if (strcmp(dev, "cpu") == 0) {
        d = SW_DEVICE_CPU;
    } else if (strcmp(dev, "cuda") == 0) {
        if (!sw_backend_available(SW_DEVICE_CUDA))
            return sw_err_set(SW_EUNSUPPORTED, "device cuda: this sw was built without CUDA "
                                               "(rebuild with make CUDA=1, or use --device cpu)");
        d = SW_DEVICE_CUDA;
        int rc = sw_backend_opts_from_env(bo);
        if (rc < 0) return sw_err_wrap(rc, "cuda backend");
    } else {
        return sw_err_set(SW_EUSAGE, "device: unknown device '%s' (cpu or cuda)", dev);
    }
    return sw_backend_open_opts(d, bo, &t->be);
}

/* ---- precision ----------------------------------------------------------------------------
 * --torch_dtype (ms-swift's name; fp32/bf16/fp16 accepted as spellings) and HF's --bf16 / --fp16
 * booleans name the dtype of the GEMMs and attention; parameters, gradients and AdamW state stay
 * float32 whatever it is (autocast with fp32 master weights). auto is float32 on the CPU and, on
 * CUDA, the mode the backend options name ($SW_CUDA_MATMUL; the tests pin it that way) or else
 * bfloat16. An explicit dtype wins over that mode, which still picks the variant when it names
 * one of that dtype (tf32 for float32, bf16i for bfloat16). */

/* "float32" | "bfloat16" | "float16" for a torch_dtype spelling; NULL for auto. */
static const char *dtype_name(const char *s) {
    if (!s || strcmp(s, "auto") == 0) return NULL;
    if (strcmp(s, "float32") == 0 || strcmp(s, "fp32") == 0) return "float32";
    if (strcmp(s, "bfloat16") == 0 || strcmp(s, "bf16") == 0) return "bfloat16";
    return "float16"; /* float16 | fp16: the option table admits nothing else */
}

/* The dtype the options ask for (NULL: auto), or SW_EUSAGE for contradictory ones. */
static int requested_dtype(const struct sw_train_opts *o, const char **out) {
    const char *want = dtype_name(o->torch_dtype);
    *out = NULL;
    if (o->bf16 && o->fp16)
        return sw_err_set(SW_EUSAGE, "bf16 and fp16 are both true: choose one (or --torch_dtype)");
    const char *flag = o->bf16 ? "bfloat16" : o->fp16 ? "float16" : NULL;
    if (flag && want && strcmp(flag, want) != 0)
        return sw_err_set(SW_EUSAGE, "%s true contradicts torch_dtype %s",
                          o->bf16 ? "bf16" : "fp16", o->torch_dtype);
    *out = want ? want : flag;
    return 0;
}

/* The dtype of a GEMM mode. */
static const char *mode_dtype(int mode) {
    return mode == SW_MATMUL_BF16 || mode == SW_MATMUL_BF16_INLINE ? "bfloat16"
           : mode == SW_MATMUL_FP16                                ? "float16"
                                                                   : "float32";
}

static int setup_precision(struct sw_trainer *t, const struct sw_backend_opts *bo) {
    const char *want;
    SW_TRY(requested_dtype(t->o, &want));
    t->matmul = -1;
    if (t->be->device != SW_DEVICE_CUDA) {
        if (want && strcmp(want, "float32") != 0)
            return sw_err_set(SW_EUSAGE,
                              "torch_dtype %s%s: --device cpu computes in float32 only (use "
                              "--device cuda for %s, or --torch_dtype float32)",
                              want,
                              t->o->bf16   ? " (--bf16 true)"
                              : t->o->fp16 ? " (--fp16 true)"
                                           : "",
                              want);
        t->dtype = "float32";
        return 0;
    }
    int env = bo->matmul; /* -1: the options (the environment) chose no mode */
    int mode;
    if (!want) {
        mode = env >= 0 ? env : SW_MATMUL_BF16;
    } else if (env >= 0 && strcmp(mode_dtype(env), want) == 0) {
        mode = env;
    } else {
        mode = strcmp(want, "bfloat16") == 0  ? SW_MATMUL_BF16
               : strcmp(want, "float16") == 0 ? SW_MATMUL_FP16
                                              : SW_MATMUL_FP32;
        if (env >= 0)
            sw_warn("%s ignored: torch_dtype %s asks for %s GEMMs", bo->matmul_src, want,
                    sw_matmul_precision_name(mode));
    }
    SW_TRY(t->be->set_precision(t->be, (enum sw_matmul_precision)mode));
    t->matmul = mode;
    t->dtype = mode_dtype(mode);
    t->fp16 = mode == SW_MATMUL_FP16;
    return 0;
}

/* --loss_scale: checked whatever the dtype (a typo is an error, not silently ignored); the
 * scaler itself is set up for float16 runs only. */
static int setup_loss_scale(struct sw_trainer *t) {
    double init;
    int dynamic;
    SW_TRY(sw_grad_scaler_parse(t->o->loss_scale, &init, &dynamic));
    if (!t->fp16) {
        if (t->o->loss_scale && strcmp(t->o->loss_scale, "dynamic") != 0)
            sw_warn("loss_scale %s has no effect: the run computes in %s (loss scaling is for "
                    "float16)",
                    t->o->loss_scale, t->dtype);
        return 0;
    }
    sw_grad_scaler_init(&t->scaler, init, dynamic);
    return 0;
}

static int cmp_entry_name(const void *a, const void *b) {
    return strcmp((*(const struct sw_st_entry *const *)a)->name,
                  (*(const struct sw_st_entry *const *)b)->name);
}

/* A fingerprint of the base model that a LoRA checkpoint records and a resume compares: SHA-256
 * over config.json's bytes and, for every tensor in name order, its name, dtype, shape and up to
 * 3 × 256 bytes sampled at the start, middle and end of its data. Two different checkpoints of
 * one architecture differ in practically every tensor, so this tells them apart without
 * hashing gigabytes. */
static int base_fingerprint(struct sw_trainer *t, char hex[65]) {
    const struct sw_st_set *s = t->hf->weights;
    int n = sw_st_set_count(s);
    const struct sw_st_entry **e = malloc((size_t)(n ? n : 1) * sizeof *e);
    if (!e) return sw_err_set(SW_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++)
        e[i] = sw_st_set_get(s, i);
    qsort(e, (size_t)n, sizeof *e, cmp_entry_name);
    struct sw_sha256 h;
    int rc = sw_sha256_init(&h);
    char cfg[65];
    if (rc == 0) rc = file_sha256(t->model_dir, "config.json", cfg);
    if (rc == 0) rc = sw_sha256_update(&h, cfg, 64);
    for (int i = 0; i < n && rc == 0; i++) {
        char head[160];
        int len =
            snprintf(head, sizeof head, "|%s|%d|%d", e[i]->name, (int)e[i]->dtype, e[i]->ndim);
        rc = sw_sha256_update(&h, head, (size_t)len);
        if (rc == 0) rc = sw_sha256_update(&h, e[i]->shape, (size_t)e[i]->ndim * sizeof(int64_t));
        size_t nb = e[i]->nbytes, k = nb < 256 ? nb : 256;
        const uint8_t *d = e[i]->data;
        if (rc == 0 && k) rc = sw_sha256_update(&h, d, k);
        if (rc == 0 && k) rc = sw_sha256_update(&h, d + (nb - k) / 2, k);
        if (rc == 0 && k) rc = sw_sha256_update(&h, d + nb - k, k);
    }
    uint8_t dg[32];
    if (rc == 0)
        rc = sw_sha256_final(&h, dg);
    else
        sw_sha256_release(&h);
    free(e);
    if (rc == 0) sw_hex(dg, 32, hex);
    return rc;
}

/* The configuration and, with --model, the opened and verified folder. */
static int load_config(struct sw_trainer *t) {
    const struct sw_train_opts *o = t->o;
    if (o->model && o->init_from_config)
        return sw_err_set(SW_EUSAGE, "give either model (a pretrained folder) or "
                                     "init_from_config (random init), not both");
    if (o->init_from_config) {
        SW_TRY(sw_model_config_load(o->init_from_config, &t->cfg));
        return file_sha256(NULL, o->init_from_config, t->base_config_sha256);
    }
    if (!o->model)
        return sw_err_set(SW_EUSAGE, "no model: give --model DIR (an HF folder) or "
                                     "--init_from_config config.json");
    SW_TRY(sw_hfmodel_open(o->model, &t->hf));
    SW_TRY(sw_hfmodel_verify(t->hf));
    t->cfg = t->hf->config;
    char abs[PATH_MAX];
    if (!realpath(o->model, abs)) return sw_err_errno("cannot resolve '%s'", o->model);
    if (!(t->model_dir = strdup(abs))) return sw_err_set(SW_ENOMEM, "out of memory");
    SW_TRY(base_fingerprint(t, t->base_config_sha256));
    return file_sha256(t->model_dir, "tokenizer.json", t->tokenizer_sha256);
}

/* --quant_method / --quant_bits (ms-swift's names) into the model config's quantize-at-load
 * request; a base that is quantized (now or by its folder) trains only through LoRA. */
static int setup_quant(struct sw_trainer *t) {
    const struct sw_train_opts *o = t->o;
    struct sw_quant_spec *q = &t->cfg.quant;
    const char *m = o->quant_method;
    int64_t bits = o->quant_bits;
    if (m) {
        if (!strcmp(m, "nf4") && bits == 0) bits = 4;
        if (!strcmp(m, "fp8") && bits == 0) bits = 8;
        int nf4 = (!strcmp(m, "bnb") || !strcmp(m, "nf4")) && bits == 4;
        if (nf4 && o->bnb_4bit_quant_type && strcmp(o->bnb_4bit_quant_type, "nf4") != 0)
            return sw_err_set(SW_EUNSUPPORTED, "--bnb_4bit_quant_type %s is not supported (nf4 is)",
                              o->bnb_4bit_quant_type);
        if (nf4)
            q->load_fmt = SW_QFMT_NF4;
        else if (!strcmp(m, "fp8") && bits == 8)
            q->load_fmt = SW_QFMT_FP8;
        else if ((!strcmp(m, "bnb") || !strcmp(m, "rtn")) && (bits == 4 || bits == 8))
            q->load_fmt = bits == 4 ? SW_QFMT_INT4 : SW_QFMT_INT8;
        else
            return sw_err_set(SW_EUSAGE,
                              "--quant_method %s with --quant_bits %lld: use bnb or rtn with 4 "
                              "or 8, nf4 with 4, fp8 with 8",
                              m, (long long)o->quant_bits);
        q->group_size = o->quant_group_size ? o->quant_group_size : bits == 4 ? 128 : -1;
        if (!strcmp(m, "bnb") && bits == 8) q->group_size = -1; /* LLM.int8: one scale a row */
        q->sym = 1;
        q->double_quant = o->bnb_4bit_use_double_quant;
    }
    if ((q->load_fmt || q->keep) && !t->lora)
        return sw_err_set(SW_EUSAGE,
                          "a quantized base (%s) trains only adapters: use --tuner_type lora",
                          q->load_fmt ? "--quant_method" : "the model's quantization_config");
    return 0;
}

static int check_resume_tuner(struct sw_trainer *t, struct sw_ckpt *ck) {
    if (sw_ckpt_is_lora(ck) != t->lora)
        return sw_err_set(SW_EINVAL, "%s is a %s checkpoint but tuner_type is %s", sw_ckpt_dir(ck),
                          sw_ckpt_is_lora(ck) ? "LoRA" : "full-weight", t->lora ? "lora" : "full");
    if (!t->lora) return 0;
    const struct sw_adapter_config *l = sw_ckpt_get_lora(ck);
    char saved[160];
    canonical_targets(l->target_modules, saved, sizeof saved);
    if (l->r != t->lc.r || l->alpha != t->lc.alpha || l->use_rslora != t->lc.use_rslora ||
        strcmp(saved, t->lora_targets) != 0)
        return sw_err_set(SW_EINVAL,
                          "%s: the adapter (r %d, lora_alpha %g, use_rslora %d, "
                          "target_modules %s) differs from the options (r %d, lora_alpha %g, "
                          "use_rslora %d, target_modules %s)",
                          sw_ckpt_dir(ck), l->r, l->alpha, l->use_rslora, saved, t->lc.r,
                          t->lc.alpha, t->lc.use_rslora, t->lora_targets);
    const struct sw_ckpt_state *st = sw_ckpt_get_state(ck);
    if (st->base_config_sha256[0] && strcmp(st->base_config_sha256, t->base_config_sha256) != 0)
        return sw_err_set(SW_EINVAL,
                          "%s: adapter base mismatch: it was trained on another base "
                          "model than %s (base fingerprint %.12s... vs %.12s...)",
                          sw_ckpt_dir(ck), t->o->model ? t->o->model : t->o->init_from_config,
                          st->base_config_sha256, t->base_config_sha256);
    return 0;
}

static int build_params(struct sw_trainer *t) {
    SW_TRY(sw_train_mem_oom(t, sw_model_zero_grad(t->m), "gradients",
                            (size_t)sw_model_numel(t->m, 1) * sizeof(float)));
    int n = sw_model_nparams(t->m), k = 0;
    for (int i = 0; i < n; i++)
        k += sw_model_param(t->m, i)->trainable;
    t->mp = calloc((size_t)(k ? k : 1), sizeof *t->mp);
    t->op = calloc((size_t)(k ? k : 1), sizeof *t->op);
    if (!t->mp || !t->op) return sw_err_set(SW_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        struct sw_param *p = sw_model_param(t->m, i);
        if (!p->trainable) continue;
        int64_t numel = sw_tensor_numel(&p->value);
        struct sw_optim_param *q = &t->op[t->np];
        t->mp[t->np++] = p;
        q->name = p->name;
        q->numel = numel;
        q->decay = sw_param_wants_decay(p->name);
        if (q->decay != p->decay)
            sw_debug("%s: decay %d (HF's name rule) vs model flag %d", p->name, q->decay, p->decay);
        /* Backend memory: host on the CPU, device pointers on CUDA (only the device optimizer
         * and the checkpoint code, which downloads, touch them there). */
        q->data = p->value.data;
        q->grad = p->grad.data;
    }
    if (t->np == 0) return sw_err_set(SW_EINVAL, "nothing to train: no trainable parameter");
    return 0;
}

int sw_train_setup_model(struct sw_trainer *t, struct sw_ckpt *resume) {
    const struct sw_train_opts *o = t->o;
    t->lora = o->tuner_type && strcmp(o->tuner_type, "lora") == 0;
    struct sw_backend_opts bo;
    SW_TRY(open_backend(t, &bo));
    SW_TRY(setup_precision(t, &bo));
    SW_TRY(setup_loss_scale(t));
    sw_train_mem_start(t);
    SW_TRY(load_config(t));
    SW_TRY(setup_quant(t));
    SW_TRY(sw_train_mem_oom(t, sw_model_new(&t->cfg, t->be, &t->m), "weights", 0));
    sw_model_set_gradient_checkpointing(t->m, o->gradient_checkpointing);
    if (t->lora) {
        if (!o->model)
            return sw_err_set(SW_EUSAGE, "tuner_type lora needs a pretrained --model to adapt "
                                         "(init_from_config starts from random weights)");
        t->lc.r = (int)o->lora_rank;
        t->lc.alpha = o->lora_alpha;
        t->lc.use_rslora = o->use_rslora;
        t->lc.dropout = (float)o->lora_dropout;
        t->lc.target_modules = o->target_modules;
        t->lc.seed = (uint64_t)o->seed;
        canonical_targets(o->target_modules, t->lora_targets, sizeof t->lora_targets);
    }
    if (resume) SW_TRY(check_resume_tuner(t, resume));
    if (resume && !t->lora) {
        SW_TRY(sw_model_load(t->m, sw_ckpt_weights(resume)));
    } else if (t->hf) {
        SW_TRY(sw_model_load(t->m, t->hf->weights));
    } else {
        SW_TRY(sw_model_init_random(t->m, (uint64_t)o->seed, 0.0f));
    }
    if (t->lora) {
        SW_TRY(sw_train_mem_oom(t, sw_model_lora_add(t->m, &t->lc), "LoRA adapters", 0));
        if (resume) SW_TRY(sw_model_lora_load(t->m, sw_ckpt_weights(resume)));
    }
    return build_params(t);
}

int sw_train_setup_optimizer(struct sw_trainer *t, struct sw_ckpt *resume) {
    return sw_train_dev_open(t, resume);
}

void sw_train_teardown(struct sw_trainer *t) {
    sw_train_dev_close(t);
    free(t->op);
    free(t->mp);
    sw_model_free(t->m);
    sw_backend_close(t->be);
    sw_hfmodel_close(t->hf);
    free(t->model_dir);
    sw_ckpt_state_release(&t->st);
    sw_metrics_close(t->metrics);
    sw_train_data_close(&t->data);
    if (t->mbs)
        for (int64_t i = 0; i < t->o->gradient_accumulation_steps; i++)
            sw_mb_release(&t->mbs[i]);
    free(t->mbs);
    for (int i = 0; i < t->n_val; i++)
        sw_mb_release(&t->val[i]);
    free(t->val);
    json_decref(t->args);
    memset(t, 0, sizeof *t);
}
