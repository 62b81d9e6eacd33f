/* test_grpo — GRPO's advantages, loss and per-token gradient (lib/train/sw_grpo_loss.c) through
 * the model's weighted backward against TRL's GRPOTrainer._compute_loss on the same tiny model
 * and batch: test/golden/grpo/golden.safetensors from test/golden/gen_grpo.py (TRL's own loss
 * code, torch autograd for the gradients). The policy is the tiny Llama with its PEFT LoRA
 * adapter, the reference the same model with the adapters off. The completions are packed back
 * to back as sw-train packs them (prompt + completion, labels on the completion only). Loss,
 * metrics and all LoRA gradients must match to 1e-5 (relative to the tensor's largest value;
 * float32, CPU) for loss_type grpo (on-policy, and with gradient accumulation 2), bnpo, dr_grpo
 * and dapo with off-policy old log-probs that exercise both clipping sides, and grpo at
 * temperature 0.7 (TRL's logits / T, by the final norm's weight / T). Also the built-in
 * rewards (accuracy's answer extraction, format) and the reward plugin's failure modes. */
#include "sw_err.h"
#include "sw_grpo_loss.h"
#include "sw_model.h"
#include "sw_reward.h"
#include "sw_safetensors.h"
#include "fixtures.h"
#include "tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN "test/golden/"
#define TOL 1e-5

static struct sw_backend *be;
static const int32_t PROMPTS[2][4] = {{11, 42, 7, 93}, {5, 77, 31, 64}};
static const int32_t C0[] = {23, 8, 56, 12, 2}, C1[] = {61, 19, 2}, C2[] = {34, 9, 88, 45, 70, 2},
                     C3[] = {15, 2};
static const int32_t *const COMP[4] = {C0, C1, C2, C3};
static const int CLEN[4] = {5, 3, 6, 2};
#define NTOK 16

static const double *f64(const struct sw_st_file *g, const char *k, int64_t n) {
    const struct sw_st_entry *e = sw_st_find(g, k);
    if (!e || e->dtype != SW_DTYPE_F64 || (int64_t)(e->nbytes / 8) != n) return NULL;
    return e->data;
}

static double scalar(const struct sw_st_file *g, const char *name, const char *what) {
    char k[256];
    snprintf(k, sizeof k, "%s.%s", name, what);
    const double *v = f64(g, k, 1);
    return v ? *v : NAN;
}

static struct sw_model *open_policy(void) {
    struct sw_model *m = sw_test_llama_lora(be);
    if (!OK(m != NULL, "tiny llama + PEFT adapter loaded (%s)", m ? "ok" : sw_err_msg()))
        return NULL;
    sw_model_set_training(m, 0);
    return m;
}

/* The packed batch: 4 sequences prompt + completion; starts[s] = the token whose loss entry is
 * completion s's first token. */
static int32_t ids[64], labels[64], cu[5];
static int64_t starts[4], off[5];
static struct sw_batch batch(void) {
    int k = 0;
    cu[0] = 0, off[0] = 0;
    for (int s = 0; s < 4; s++) {
        for (int i = 0; i < 4; i++)
            ids[k] = PROMPTS[s / 2][i], labels[k++] = SW_IGNORE_INDEX;
        starts[s] = k - 1;
        for (int i = 0; i < CLEN[s]; i++)
            ids[k] = COMP[s][i], labels[k++] = COMP[s][i];
        cu[s + 1] = k;
        off[s + 1] = off[s] + CLEN[s];
    }
    return (struct sw_batch){
        .B = 1, .T = k, .input_ids = ids, .labels = labels, .cu_seqlens = cu, .n_seqs = 4};
}

static int logps(struct sw_model *m, const struct sw_batch *b, double *lp) {
    float loss[64];
    int rc = sw_model_forward(m, b, NULL);
    if (rc == 0) rc = sw_model_token_losses(m, loss);
    for (int s = 0; rc == 0 && s < 4; s++)
        for (int j = 0; j < CLEN[s]; j++)
            lp[off[s] + j] = -(double)loss[starts[s] + j];
    return rc;
}

struct gcase {
    const char *name;
    enum sw_grpo_loss_type loss;
    double beta, eps, eps_high;
    int off_policy, ga;
    double temperature; /* 1: none; else model.norm.weight / T, as sw-train does */
};

static void run_case(struct sw_model *m, const struct sw_st_file *g, const struct gcase *gc,
                     const double *ref, const double *adv) {
    struct sw_batch b = batch();
    double lp[NTOK], dl[NTOK], tref[NTOK];
    const double *old = f64(g, "old", NTOK);
    struct sw_param *nw = sw_model_param_find(m, "model.norm.weight");
    float keep[256];
    int64_t nn = nw ? nw->value.shape[0] : 0;
    if (gc->temperature != 1.0) {
        /* TRL's log_softmax(logits / T): the final norm's weight divided by T (sw_train_grpo.c's
         * temp_scale); the reference and old log-probs at T too */
        char k[96];
        snprintf(k, sizeof k, "%s.old", gc->name);
        old = f64(g, k, NTOK);
        snprintf(k, sizeof k, "%s.ref", gc->name);
        const double *want_ref = f64(g, k, NTOK);
        float *v = nw ? nw->value.data : NULL; /* CPU backend: host memory */
        if (!OK(v && nn <= 256 && old && want_ref, "%s: golden and norm weight", gc->name)) return;
        memcpy(keep, v, (size_t)nn * sizeof *v);
        for (int64_t i = 0; i < nn; i++)
            v[i] = (float)(keep[i] / gc->temperature);
        sw_model_set_lora_enabled(m, 0);
        int rc0 = logps(m, &b, tref);
        sw_model_set_lora_enabled(m, 1);
        double wr = 0;
        for (int i = 0; i < NTOK; i++)
            wr = fmax(wr, fabs(tref[i] - want_ref[i]));
        OK(rc0 == 0 && wr < TOL, "%s: reference log-probs at T = TRL's (%.2g)", gc->name, wr);
        ref = tref;
    }
    struct sw_grpo_cfg c = {.loss = gc->loss,
                            .beta = gc->beta,
                            .epsilon_low = gc->eps,
                            .epsilon_high = gc->eps_high,
                            .max_completion_length = 8,
                            .grad_accum = gc->ga};
    struct sw_grpo_metrics mt;
    int rc = sw_model_zero_grad(m);
    if (rc == 0) rc = logps(m, &b, lp);
    if (rc == 0)
        rc = sw_grpo_loss(&c, 4, off, lp, gc->off_policy ? old : NULL, ref, adv, NTOK, dl, &mt);
    float w[64] = {0};
    for (int s = 0; s < 4; s++)
        for (int j = 0; j < CLEN[s]; j++)
            w[starts[s] + j] = (float)-dl[off[s] + j];
    if (rc == 0) rc = sw_model_backward_weighted(m, w, 1.0f);
    if (gc->temperature != 1.0) memcpy(nw->value.data, keep, (size_t)nn * sizeof(float));
    if (!OK(rc == 0, "%s: forward, loss, weighted backward (%s)", gc->name,
            rc ? sw_err_msg() : "ok"))
        return;
    double want = scalar(g, gc->name, "loss");
    OK(fabs(mt.loss - want) <= TOL * fmax(1.0, fabs(want)), "%s: loss %.9g = TRL's %.9g", gc->name,
       mt.loss, want);
    struct {
        const char *k;
        double v;
    } ms[] = {{"kl", mt.kl},
              {"clip_ratio/low_mean", mt.clip_low_mean},
              {"clip_ratio/high_mean", mt.clip_high_mean},
              {"clip_ratio/region_mean", mt.clip_region_mean},
              {"clip_ratio/low_min", mt.clip_low_min},
              {"clip_ratio/high_max", mt.clip_high_max}};
    int bad = 0;
    char k[96];
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        snprintf(k, sizeof k, "metric.%s", ms[i].k);
        double v = scalar(g, gc->name, k);
        if (isnan(v) != isnan(ms[i].v) || (!isnan(v) && fabs(v - ms[i].v) > TOL)) {
            DIAG("%s %s: %g, TRL %g", gc->name, ms[i].k, ms[i].v, v);
            bad++;
        }
    }
    OK(bad == 0, "%s: kl and clip_ratio metrics = TRL's", gc->name);
    int n;
    double worst = sw_test_lora_grads_err(m, g, gc->name, &n);
    OK(worst <= TOL && n == 28, "%s: %d LoRA gradients = TRL's (worst relative %.2g)", gc->name, n,
       worst);
}

static void test_golden(void) {
    struct sw_model *m = open_policy();
    struct sw_st_file *g = NULL;
    if (!m || !OK(sw_st_open(GOLDEN "grpo/golden.safetensors", &g) == 0, "open grpo golden")) {
        sw_model_free(m);
        return;
    }
    const double *rw = f64(g, "rewards", 4), *want_adv = f64(g, "advantages", 4),
                 *want_lp = f64(g, "logp", NTOK), *want_ref = f64(g, "ref", NTOK);
    if (!OK(rw && want_adv && want_lp && want_ref && f64(g, "old", NTOK), "golden inputs present"))
        goto out;
    double adv[4], gstd[2];
    sw_grpo_advantages(rw, 4, 2, SW_GRPO_SCALE_GROUP, adv, gstd);
    double worst = 0;
    for (int i = 0; i < 4; i++)
        worst = fmax(worst, fabs(adv[i] - want_adv[i]));
    OK(worst < 1e-12, "advantages = ms-swift's (group std + 1e-4), worst %.2g", worst);
    struct sw_batch b = batch();
    double lp[NTOK], ref[NTOK];
    sw_model_set_lora_enabled(m, 0);
    int rc = logps(m, &b, ref);
    sw_model_set_lora_enabled(m, 1);
    if (rc == 0) rc = logps(m, &b, lp);
    double wl = 0, wr = 0;
    for (int i = 0; i < NTOK; i++)
        wl = fmax(wl, fabs(lp[i] - want_lp[i])), wr = fmax(wr, fabs(ref[i] - want_ref[i]));
    OK(rc == 0 && wl < TOL && wr < TOL,
       "completion log-probs from the packed batch = torch's (policy %.2g, reference %.2g)", wl,
       wr);
    static const struct gcase cases[] = {
        {"grpo", SW_GRPO_GRPO, 0.04, 0.2, 0.2, 0, 1, 1.0},
        {"grpo_ga2", SW_GRPO_GRPO, 0.04, 0.2, 0.2, 0, 2, 1.0},
        {"bnpo_old", SW_GRPO_BNPO, 0.04, 0.2, 0.28, 1, 1, 1.0},
        {"dr_grpo_old", SW_GRPO_DR_GRPO, 0.0, 0.2, 0.2, 1, 1, 1.0},
        {"dapo_old", SW_GRPO_DAPO, 0.1, 0.2, 0.28, 1, 1, 1.0},
        {"grpo_temp", SW_GRPO_GRPO, 0.04, 0.2, 0.2, 1, 1, 0.7},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(m, g, &cases[i], ref, adv);
out:
    sw_st_close(g);
    sw_model_free(m);
}

/* Analytic properties that do not need TRL. */
static void test_math(void) {
    double r[6] = {1, 1, 1, 0, 1, 2}, a[6], s[3];
    sw_grpo_advantages(r, 6, 3, SW_GRPO_SCALE_GROUP, a, s);
    OK(a[0] == 0 && a[1] == 0 && a[2] == 0 && s[0] == 0, "a group of equal rewards: advantage 0");
    OK(fabs(a[3] + a[5]) < 1e-12 && a[4] == 0 && fabs(a[5] - 1 / (1 + 1e-4)) < 1e-12,
       "rewards 0,1,2: advantages -1, 0, 1 over (std 1 + 1e-4)");
    sw_grpo_advantages(r, 6, 3, SW_GRPO_SCALE_NONE, a, NULL);
    OK(a[3] == -1 && a[5] == 1, "scale_rewards none: reward minus the group mean");
    /* on-policy, beta 0: dL/dlogp = -A / (T · S) per token (grpo) */
    struct sw_grpo_cfg c = {.loss = SW_GRPO_GRPO, .epsilon_low = 0.2, .epsilon_high = 0.2};
    int64_t o[3] = {0, 2, 5};
    double lp[5] = {-1, -2, -0.5, -0.1, -3}, adv[2] = {1.5, -0.5}, d[5];
    struct sw_grpo_metrics mt;
    OK(sw_grpo_loss(&c, 2, o, lp, NULL, NULL, adv, 5, d, &mt) == 0 &&
           fabs(d[0] + 1.5 / 4) < 1e-15 && fabs(d[2] - 0.5 / 6) < 1e-15 &&
           fabs(mt.loss - (-(1.5) - (-0.5)) / 2) < 1e-15 && isnan(mt.kl),
       "on-policy grpo: loss = -mean(A), gradient -A/(T·S), no kl without beta");
    enum sw_grpo_loss_type lt;
    OK(sw_grpo_loss_type_parse("dapo", &lt) == 0 && lt == SW_GRPO_DAPO &&
           sw_grpo_loss_type_parse("sigmoid", &lt) == SW_EUSAGE &&
           strstr(sw_err_msg(), "'sigmoid'") != NULL,
       "loss_type parse: dapo ok, sigmoid named in the error");
}

static void test_rewards(void) {
    char a[64];
    sw_reward_extract_answer("so the answer is \\boxed{1,234} done", a, sizeof a);
    OK(strcmp(a, "1234") == 0, "boxed answer, commas removed: '%s'", a);
    sw_reward_extract_answer("blah 3 + 4 = 7\n#### 7", a, sizeof a);
    OK(strcmp(a, "7") == 0, "#### answer: '%s'", a);
    sw_reward_extract_answer("12 apples and 30 pears", a, sizeof a);
    OK(strcmp(a, "30") == 0, "no marker: the last number '%s'", a);
    sw_reward_extract_answer("no digits", a, sizeof a);
    OK(a[0] == 0, "no answer: empty");
    OK(sw_reward_accuracy("it is #### 42.0", "42") == 1.0 &&
           sw_reward_accuracy("it is 41", "#### 42") == 0.0 &&
           sw_reward_accuracy("-3", "-3") == 1.0 && sw_reward_accuracy("x", "") == 0.0,
       "accuracy: numeric equality, wrong answers 0, empty solution 0");
    OK(sw_reward_format("<think>a</think>\n<answer>b</answer>") == 1.0 &&
           sw_reward_format("<think>a</think>x<answer>b</answer>") == 0.0 &&
           sw_reward_format("<think>a</think><answer>b</answer> ") == 0.0 &&
           sw_reward_format("<answer>b</answer>") == 0.0,
       "format: ms-swift's <think>..</think> <answer>..</answer> shape");

    struct sw_reward_item it[3] = {{"p", "one", NULL, "d.jsonl:1"},
                                   {"p", "two", NULL, "d.jsonl:2"},
                                   {"p", "three", NULL, "d.jsonl:3"}};
    double v[3];
    struct sw_reward_plugin *p = NULL;
    /* a plugin that scores the completion's length */
    int rc = sw_reward_plugin_open("python3 -u -c \"import sys,json\nfor l in sys.stdin: "
                                   "print(len(json.loads(l)['completion']))\"",
                                   10, &p);
    rc = rc ? rc : sw_reward_plugin_score(p, it, 3, v);
    OK(rc == 0 && v[0] == 3 && v[1] == 3 && v[2] == 5, "plugin: one number per JSON line (%s)",
       rc ? sw_err_msg() : "ok");
    rc = sw_reward_plugin_score(p, it, 2, v);
    OK(rc == 0 && v[1] == 3, "plugin: kept running for the next batch");
    sw_reward_plugin_close(p);

    rc = sw_reward_plugin_open("read x; exit 3", 10, &p);
    rc = rc ? rc : sw_reward_plugin_score(p, it, 3, v);
    OK(rc == SW_EIO && strstr(sw_err_msg(), "exited with status 3") &&
           strstr(sw_err_msg(), "d.jsonl:1") && strstr(sw_err_msg(), "read x; exit 3"),
       "plugin that exits: named with its status and the row: %s", sw_err_msg());
    sw_reward_plugin_close(p);

    rc = sw_reward_plugin_open("while read x; do echo nan; done", 10, &p);
    rc = rc ? rc : sw_reward_plugin_score(p, it, 3, v);
    OK(rc == SW_EIO && strstr(sw_err_msg(), "not a finite number") && strstr(sw_err_msg(), "'nan'"),
       "plugin printing nan: %s", sw_err_msg());
    sw_reward_plugin_close(p);

    rc = sw_reward_plugin_open("read x; echo 1; sleep 5", 0.3, &p);
    rc = rc ? rc : sw_reward_plugin_score(p, it, 3, v);
    OK(rc == SW_EIO && strstr(sw_err_msg(), "no answer within 0.3 s") &&
           strstr(sw_err_msg(), "d.jsonl:2"),
       "plugin that hangs: a timeout naming the row: %s", sw_err_msg());
    sw_reward_plugin_close(p);
}

int main(void) {
    if (!OK(sw_backend_open(SW_DEVICE_CPU, &be) == 0, "open the CPU backend")) return tap_done();
    test_math();
    test_rewards();
    test_golden();
    sw_backend_close(be);
    return tap_done();
}
