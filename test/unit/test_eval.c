/* test_eval — lib/sw_eval*.c and lib/sw_generate*.c below the CLI: transformers' logits
 * processors on hand-made logits (argmax ties, repetition penalty, top-k ties, HF's top-p rule,
 * sampling frequencies), the loss-from-logits definition, PEFT adapter parsing and the base
 * check, and the evaluation model on the golden folders (its loss equals the golden's).
 * Run from the repository root (golden paths are relative to it). */
#include "sw_eval.h"

#include "sw_err.h"
#include "sw_log.h"
#include "sw_rng.h"
#include "tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN "test/golden/model/"

static struct sw_generate_params greedy_params(void) {
    struct sw_generate_params p;
    memset(&p, 0, sizeof p);
    p.max_new_tokens = 4;
    p.temperature = 1.0;
    p.top_p = 1.0;
    p.repetition_penalty = 1.0;
    return p;
}

static void test_greedy_and_penalty(void) {
    struct sw_generate_params p = greedy_params();
    float x[5] = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f};
    IS_INT(sw_generate_pick(x, 5, NULL, 0, &p, NULL), 1, "argmax takes the first of two maxima");
    /* penalty 2: positive logits halve, negative double, each id once however often it occurs */
    float y[5] = {0.5f, 2.0f, -1.0f, 1.9f, 1.0f};
    int32_t hist[4] = {1, 1, 2, 1};
    p.repetition_penalty = 2.0;
    IS_INT(sw_generate_pick(y, 5, hist, 4, &p, NULL), 3, "penalised id 1 loses to id 3");
    OK(y[1] == 1.0f && y[2] == -2.0f && y[3] == 1.9f, "penalty applied once per id: %g %g %g", y[1],
       y[2], y[3]);
}

/* Draw n samples from logits l (copied each time) and count ids. */
static void draw(const float *l, int64_t V, const struct sw_generate_params *p, int n,
                 int *counts) {
    struct sw_rng rng;
    sw_rng_init(&rng, 1234, 99);
    float *x = malloc((size_t)V * sizeof(float));
    memset(counts, 0, (size_t)V * sizeof(int));
    for (int i = 0; i < n; i++) {
        memcpy(x, l, (size_t)V * sizeof(float));
        int32_t id = sw_generate_pick(x, V, NULL, 0, p, &rng);
        if (id >= 0 && id < V) counts[id]++;
    }
    free(x);
}

static void test_sampling(void) {
    /* probabilities 0.5, 0.3, 0.15, 0.05 */
    float l[4] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
    int c[4];
    struct sw_generate_params p = greedy_params();
    p.do_sample = 1;
    draw(l, 4, &p, 20000, c);
    int close = 1;
    const double want[4] = {0.5, 0.3, 0.15, 0.05};
    for (int i = 0; i < 4; i++)
        close &= fabs(c[i] / 20000.0 - want[i]) < 0.015;
    OK(close, "plain sampling follows softmax: %d %d %d %d of 20000", c[0], c[1], c[2], c[3]);
    /* HF top-p 0.8: ascending cumulative 0.05, 0.2, 0.5, 1.0; drop cum <= 0.2 -> keep 2 ids */
    p.top_p = 0.8;
    draw(l, 4, &p, 5000, c);
    OK(c[2] == 0 && c[3] == 0 && c[0] > 2900 && c[1] > 1700,
       "top_p 0.8 keeps the two most likely, renormalised: %d %d %d %d", c[0], c[1], c[2], c[3]);
    /* top_p so small that only the best survives */
    p.top_p = 0.1;
    draw(l, 4, &p, 500, c);
    IS_INT(c[0], 500, "top_p 0.1 keeps only the most likely token");
    /* top-k 2 with a tie at the k-th value keeps both tied ids (HF compares with < kth) */
    float t[5] = {3.0f, 1.0f, 2.0f, 2.0f, 0.0f};
    p.top_p = 1.0;
    p.top_k = 2;
    int c5[5];
    draw(t, 5, &p, 5000, c5);
    OK(c5[1] == 0 && c5[4] == 0 && c5[2] > 0 && c5[3] > 0 && c5[0] > 0,
       "top_k 2 keeps the ties at the 2nd value: %d %d %d %d %d", c5[0], c5[1], c5[2], c5[3],
       c5[4]);
    /* low temperature concentrates on the argmax */
    p.top_k = 0;
    p.temperature = 0.05;
    draw(l, 4, &p, 500, c);
    IS_INT(c[0], 500, "temperature 0.05 is practically greedy");
    /* the same seed replays the same draws */
    p.temperature = 1.0;
    int d1[4], d2[4];
    draw(l, 4, &p, 300, d1);
    draw(l, 4, &p, 300, d2);
    OK(memcmp(d1, d2, sizeof d1) == 0, "seeded sampling is deterministic");
}

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
    test_greedy_and_penalty();
    test_sampling();
    test_loss_from_logits();
    test_adapter();
    test_eval_model();
    return tap_done();
}
