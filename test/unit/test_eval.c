/* test_eval — lib/infer/sw_eval*.c below the CLI: the loss-from-logits definition, PEFT adapter
 * parsing and the base check, and the evaluation model on the golden folders (its loss equals the
 * golden's). Run from the repository root (golden paths are relative to it). */
#include "sw_eval.h"

#include "sw_err.h"
#include "sw_log.h"
#include "sw_rng.h"
#include "tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN "test/golden/model/"

static void test_loss_from_logits(void) {
    /* B 1, T 3, V 2: targets are ids[1], ids[2] */
    float lg[6] = {0, 0, 1, 2, 5, 5};
    int32_t ids[3] = {0, 1, 0};
    double s;
    int64_t n;
    OK(sw_eval_loss_from_logits(lg, 1, 3, 2, ids, &s, &n) == 0, "loss from logits");
    double want = log(2.0) + (log(exp(1.0) + exp(2.0)) - 1.0);
    OK(n == 2 && fabs(s - want) < 1e-12, "sum %g (want %g), count %lld", s, want, (long long)n);
    int32_t lab[3] = {0, -100, 1};
    OK(sw_eval_loss_from_logits(lg, 1, 3, 2, lab, &s, &n) == 0 && n == 1 &&
           fabs(s - (log(exp(1.0) + exp(2.0)) - 2.0)) < 1e-12,
       "-100 labels are skipped");
    int32_t bad[3] = {0, 7, 0};
    IS_INT(sw_eval_loss_from_logits(lg, 1, 3, 2, bad, &s, &n), SW_ERANGE,
           "label outside the vocabulary: %s", sw_err_msg());
}

static void test_adapter(void) {
    struct sw_adapter *a = NULL;
    int rc = sw_adapter_open(GOLDEN "llama_lora", &a);
    if (!OK(rc == 0, "open llama_lora adapter%s%s", rc ? ": " : "", rc ? sw_err_msg() : "")) return;
    IS_INT(a->n_modules, 14, "14 modules");
    OK(a->scale == 2.0 && a->cfg.r == 4, "scale alpha/r = 2");
    OK(a->modules[0].layer == 0 && a->modules[0].kind == SW_ADAPTER_Q &&
           a->modules[13].layer == 1 && a->modules[13].kind == SW_ADAPTER_DOWN,
       "modules sorted by (layer, kind)");
    char buf[128];
    IS_STR(sw_adapter_kinds_str(a, buf, sizeof buf),
           "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj", "kinds");
    OK(sw_adapter_covers_all_layers(a, 2) && !sw_adapter_covers_all_layers(a, 3), "coverage");
    struct sw_model_config c;
    OK(sw_model_config_load(GOLDEN "llama/config.json", &c) == 0 && sw_adapter_check(a, &c) == 0,
       "fits its base");
    OK(sw_model_config_load(GOLDEN "qwen3/config.json", &c) == 0 &&
           sw_adapter_check(a, &c) == SW_EFORMAT && strstr(sw_err_msg(), "another base model"),
       "qwen3 is another base: %s", sw_err_msg());
    c.num_hidden_layers = 1;
    sw_model_config_load(GOLDEN "llama/config.json", &c);
    c.num_hidden_layers = 1;
    OK(sw_adapter_check(a, &c) == SW_EFORMAT && strstr(sw_err_msg(), "layer 1"),
       "a layer the base lacks: %s", sw_err_msg());
    sw_adapter_close(a);
    IS_INT(sw_adapter_open(GOLDEN "llama", &a), SW_ENOTFOUND, "no adapter_config.json");
    OK(a == NULL, "*out stays NULL on error");
    OK(sw_adapter_open("test/golden/merge/partial", &a) == 0 && a->n_modules == 2 &&
           !sw_adapter_covers_all_layers(a, 2) && fabs(a->scale - 3.0 / sqrt(2.0)) < 1e-12,
       "partial rsLoRA adapter: 2 modules, scale 3/sqrt(2)");
    sw_adapter_close(a);
}

static void test_eval_model(void) {
    struct sw_eval_model *em = NULL;
    struct sw_st_file *g = NULL;
    int rc = sw_eval_model_open(GOLDEN "llama", GOLDEN "llama_lora", &em);
    if (!OK(rc == 0, "open llama + llama_lora%s%s", rc ? ": " : "", rc ? sw_err_msg() : "")) return;
    if (!OK(sw_st_open(GOLDEN "llama_lora/golden.safetensors", &g) == 0, "golden")) goto out;
    const struct sw_st_entry *ids = sw_st_find(g, "pad.input_ids"),
                             *mask = sw_st_find(g, "pad.attention_mask"),
                             *lab = sw_st_find(g, "pad.labels"), *loss = sw_st_find(g, "pad.loss");
    int64_t B = ids->shape[0], T = ids->shape[1], V = 97;
    float *lg = malloc((size_t)(B * T * V) * sizeof(float));
    struct sw_eval_batch b = {B, T, ids->data, mask->data, lab->data, NULL};
    double l;
    int64_t n;
    rc = sw_eval_logits(em, &b, 7, lg, &l, &n);
    float want = *(const float *)loss->data;
    OK(rc == 0 && fabs(l - want) <= 1e-4 * fabs(want), "loss %g vs PEFT %g (%s)", l, want,
       rc ? sw_err_msg() : "grouped 1 row per forward");
    free(lg);
out:
    sw_st_close(g);
    sw_eval_model_close(em);
}

int main(void) {
    sw_log_set_level(SW_LOG_WARN);
    test_loss_from_logits();
    test_adapter();
    test_eval_model();
    return tap_done();
}
