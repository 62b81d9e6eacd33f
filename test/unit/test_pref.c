/* test_pref — sw's preference losses (lib/train/sw_pref_loss.c) and the per-token weighted
 * backward (lib/train/sw_pref.c over sw_model_backward_weighted) against TRL on the same tiny
 * model and batch: test/golden/pref/golden.safetensors from test/golden/gen_pref.py (TRL's own
 * dpo_loss / cpo_loss / odds_ratio_loss / kto_loss, torch autograd for the gradients). The
 * policy is the tiny Llama with its PEFT LoRA adapter, the reference the same model with the
 * adapters switched off (sw_model_set_lora_enabled). Every loss, metric and LoRA gradient must
 * match to 1e-5 (relative to the tensor's largest value; float32, CPU). Also the parser of
 * rlhf_type / loss_type and a few analytic properties of the losses. */
#include "sw_err.h"
#include "sw_model.h"
#include "sw_pref.h"
#include "sw_pref_loss.h"
#include "sw_safetensors.h"
#include "fixtures.h"
#include "tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN "test/golden/"
#define NPAIR 3
#define NKTO 4
#define TOL 1e-5

static struct sw_backend *be;

static double scalar(const struct sw_st_file *g, const char *name, const char *what) {
    char k[256];
    snprintf(k, sizeof k, "%s.%s", name, what);
    const struct sw_st_entry *e = sw_st_find(g, k);
    if (!e || e->dtype != SW_DTYPE_F64) return NAN;
    double v;
    memcpy(&v, e->data, sizeof v);
    return v;
}

static int ids_of(const struct sw_st_file *g, const char *name, int32_t *out, int cap) {
    const struct sw_st_entry *e = sw_st_find(g, name);
    if (!e || e->dtype != SW_DTYPE_I32 || e->shape[0] > cap) return -1;
    memcpy(out, e->data, (size_t)e->shape[0] * 4);
    return (int)e->shape[0];
}

/* A packed batch of sequences prompt + completion; labels -100 on the prompt. */
struct pbatch {
    int32_t ids[256], labels[256], cu[16];
    int n, nseq;
    struct sw_batch b;
};

static void add_seq(struct pbatch *p, const int32_t *pr, int np, const int32_t *co, int nc) {
    if (p->nseq == 0) p->cu[0] = 0;
    for (int i = 0; i < np; i++)
        p->ids[p->n] = pr[i], p->labels[p->n++] = SW_IGNORE_INDEX;
    for (int i = 0; i < nc; i++)
        p->ids[p->n] = co[i], p->labels[p->n++] = co[i];
    p->cu[++p->nseq] = p->n;
    p->b = (struct sw_batch){.B = 1,
                             .T = p->n,
                             .input_ids = p->ids,
                             .labels = p->labels,
                             .cu_seqlens = p->cu,
                             .n_seqs = p->nseq};
}

static struct sw_model *open_policy(void) {
    struct sw_model *m = sw_test_llama_lora(be);
    if (!OK(m != NULL, "tiny llama + PEFT adapter loaded (%s)", m ? "ok" : sw_err_msg()))
        return NULL;
    sw_model_set_training(m, 0); /* TRL's disable_dropout */
    return m;
}

static double rel(double a, double b) {
    return fabs(a - b) / fmax(1.0, fabs(b));
}

static void check_metrics(const struct sw_st_file *g, const char *name,
                          const struct sw_pref_metrics *mt) {
    struct {
        const char *k;
        double v;
        int on;
    } ms[] = {{"loss", mt->loss, 1},
              {"rewards/chosen", mt->rewards_chosen, 1},
              {"rewards/rejected", mt->rewards_rejected, 1},
              {"rewards/margins", mt->rewards_margins, 1},
              {"rewards/accuracies", mt->rewards_accuracies, mt->has_accuracy},
              {"logps/chosen", mt->logps_chosen, 1},
              {"logps/rejected", mt->logps_rejected, 1},
              {"nll_loss", mt->nll_loss, mt->has_nll},
              {"kl", mt->kl, mt->has_kl},
              {"log_odds_ratio", mt->log_odds_ratio, mt->has_odds},
              {"log_odds_chosen", mt->log_odds_chosen, mt->has_odds}};
    int bad = 0, n = 0;
    char k[128];
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        snprintf(k, sizeof k, "metric.%s", ms[i].k);
        double want = scalar(g, name, k);
        if (isnan(want) != !ms[i].on) {
            DIAG("%s: metric %s present in golden %d, in sw %d", name, ms[i].k, !isnan(want),
                 ms[i].on);
            bad++;
            continue;
        }
        if (!ms[i].on) continue;
        n++;
        if (rel(ms[i].v, want) > TOL) {
            DIAG("%s %s: sw %.9g TRL %.9g", name, ms[i].k, ms[i].v, want);
            bad++;
        }
    }
    OK(bad == 0, "%s: loss and %d metrics equal TRL's to 1e-5 (loss %.6f)", name, n - 1, mt->loss);
}

struct gcase {
    const char *name, *rlhf, *loss;
};

static void run_pair_case(struct sw_model *m, const struct sw_st_file *g, const struct gcase *gc) {
    struct sw_pref_cfg c = {0};
    if (!OK(sw_pref_cfg_parse(gc->rlhf, gc->loss, &c) == 0, "%s: parse %s/%s", gc->name, gc->rlhf,
            gc->loss ? gc->loss : "-"))
        return;
    c.beta = scalar(g, gc->name, "param.beta");
    c.label_smoothing = scalar(g, gc->name, "param.label_smoothing");
    c.rpo_alpha = scalar(g, gc->name, "param.rpo_alpha");
    c.use_rpo = !isnan(c.rpo_alpha);
    c.cpo_alpha = scalar(g, gc->name, "param.cpo_alpha");
    c.simpo_gamma = scalar(g, gc->name, "param.simpo_gamma");
    /* chosen sequences first, then the rejected ones: one packed row */
    struct pbatch pb = {0};
    int32_t pr[NPAIR][32], ch[NPAIR][32], rj[NPAIR][32];
    int np[NPAIR], nc[NPAIR], nr[NPAIR];
    char k[64];
    for (int i = 0; i < NPAIR; i++) {
        snprintf(k, sizeof k, "pair%d.prompt", i);
        np[i] = ids_of(g, k, pr[i], 32);
        snprintf(k, sizeof k, "pair%d.chosen", i);
        nc[i] = ids_of(g, k, ch[i], 32);
        snprintf(k, sizeof k, "pair%d.rejected", i);
        nr[i] = ids_of(g, k, rj[i], 32);
    }
    for (int i = 0; i < NPAIR; i++)
        add_seq(&pb, pr[i], np[i], ch[i], nc[i]);
    for (int i = 0; i < NPAIR; i++)
        add_seq(&pb, pr[i], np[i], rj[i], nr[i]);
    double lp[2 * NPAIR], ref[2 * NPAIR], grad[2 * NPAIR], nll;
    int64_t nt[2 * NPAIR];
    int rc = 0;
    if (sw_pref_needs_ref(&c)) { /* the reference first: the policy forward's activations stay */
        sw_model_set_lora_enabled(m, 0);
        rc = sw_pref_forward_logps(m, &pb.b, ref, nt);
        sw_model_set_lora_enabled(m, 1);
    }
    if (rc == 0) rc = sw_pref_forward_logps(m, &pb.b, lp, nt);
    struct sw_pref_seq seq[2 * NPAIR];
    for (int s = 0; s < 2 * NPAIR; s++)
        seq[s] = (struct sw_pref_seq){.logp = lp[s], .ref_logp = ref[s], .ntok = nt[s]};
    struct sw_pref_metrics mt;
    if (rc == 0) rc = sw_pref_loss(&c, NPAIR, seq, grad, &nll, &mt);
    if (rc == 0) rc = sw_model_zero_grad(m);
    if (rc == 0) rc = sw_pref_backward(m, &pb.b, grad, nll, NPAIR, 1.0);
    if (!OK(rc == 0, "%s: forward, loss and backward run (%s)", gc->name, rc ? sw_err_msg() : "ok"))
        return;
    check_metrics(g, gc->name, &mt);
    int n_cmp;
    double worst = sw_test_lora_grads_err(m, g, gc->name, &n_cmp);
    OK(worst < TOL && n_cmp > 0, "%s: %d LoRA gradients equal TRL's (worst rel %.2g)", gc->name,
       n_cmp, worst);
}

static void run_kto_case(struct sw_model *m, const struct sw_st_file *g, const char *name) {
    struct sw_pref_cfg c = {0};
    sw_pref_cfg_parse("kto", NULL, &c);
    c.beta = scalar(g, name, "param.beta");
    c.desirable_weight = scalar(g, name, "param.desirable_weight");
    c.undesirable_weight = scalar(g, name, "param.undesirable_weight");
    int32_t pr[NKTO][32], co[NKTO][32], lab[NKTO][1];
    int np[NKTO], nc[NKTO];
    char k[64];
    for (int i = 0; i < NKTO; i++) {
        snprintf(k, sizeof k, "kto%d.prompt", i);
        np[i] = ids_of(g, k, pr[i], 32);
        snprintf(k, sizeof k, "kto%d.completion", i);
        nc[i] = ids_of(g, k, co[i], 32);
        snprintf(k, sizeof k, "kto%d.label", i);
        ids_of(g, k, lab[i], 1);
    }
    /* rows, and the KL pairs: prompt of row i with the completion of row i - 1 (cyclic) */
    struct pbatch rows = {0}, kl = {0};
    for (int i = 0; i < NKTO; i++) {
        int j = (i + NKTO - 1) % NKTO;
        add_seq(&rows, pr[i], np[i], co[i], nc[i]);
        add_seq(&kl, pr[i], np[i], co[j], nc[j]);
    }
    double lp[NKTO], ref[NKTO], klp[NKTO], klr[NKTO], grad[NKTO], nll;
    int64_t nt[NKTO], knt[NKTO];
    sw_model_set_lora_enabled(m, 0);
    int rc = sw_pref_forward_logps(m, &rows.b, ref, nt);
    if (rc == 0) rc = sw_pref_forward_logps(m, &kl.b, klr, knt);
    sw_model_set_lora_enabled(m, 1);
    if (rc == 0) rc = sw_pref_forward_logps(m, &kl.b, klp, knt); /* no gradient */
    if (rc == 0) rc = sw_pref_forward_logps(m, &rows.b, lp, nt);
    struct sw_pref_seq seq[NKTO];
    for (int i = 0; i < NKTO; i++)
        seq[i] = (struct sw_pref_seq){.logp = lp[i],
                                      .ref_logp = ref[i],
                                      .ntok = nt[i],
                                      .desirable = lab[i][0] != 0,
                                      .kl_logp = klp[i],
                                      .ref_kl_logp = klr[i]};
    struct sw_pref_metrics mt;
    if (rc == 0) rc = sw_pref_loss(&c, NKTO, seq, grad, &nll, &mt);
    if (rc == 0) rc = sw_model_zero_grad(m);
    if (rc == 0) rc = sw_pref_backward(m, &rows.b, grad, nll, 0, 1.0);
    if (!OK(rc == 0, "%s: forward, loss and backward run (%s)", name, rc ? sw_err_msg() : "ok"))
        return;
    check_metrics(g, name, &mt);
    int n_cmp;
    double worst = sw_test_lora_grads_err(m, g, name, &n_cmp);
    OK(worst < TOL && n_cmp > 0, "%s: %d LoRA gradients equal TRL's (worst rel %.2g)", name, n_cmp,
       worst);
}

static void test_parse(void) {
    struct sw_pref_cfg c;
    OK(sw_pref_cfg_parse("dpo", NULL, &c) == 0 && c.type == SW_RLHF_DPO &&
           c.loss == SW_PREF_SIGMOID,
       "dpo defaults to sigmoid");
    OK(sw_pref_cfg_parse("simpo", NULL, &c) == 0 && c.type == SW_RLHF_CPO &&
           c.loss == SW_PREF_SIMPO,
       "simpo is CPO with the simpo loss (ms-swift)");
    OK(sw_pref_cfg_parse("kto", NULL, &c) == 0 && c.loss == SW_PREF_KTO, "kto defaults to kto");
    OK(sw_pref_cfg_parse("dpo", "simpo", &c) == SW_EUSAGE, "dpo with loss simpo is a usage error");
    OK(sw_pref_cfg_parse("ppo", NULL, &c) == SW_EUSAGE && strstr(sw_err_msg(), "ppo"),
       "an unknown rlhf_type is named (%s)", sw_err_msg());
    OK(sw_pref_needs_ref(&(struct sw_pref_cfg){.type = SW_RLHF_DPO}) &&
           !sw_pref_needs_ref(&(struct sw_pref_cfg){.type = SW_RLHF_ORPO}),
       "DPO needs the reference, ORPO does not");
    /* sigmoid DPO at z = 0: loss log 2, gradient −β/2 per pair (mean over n) */
    sw_pref_cfg_parse("dpo", NULL, &c);
    c.beta = 0.1;
    struct sw_pref_seq s[2] = {{.logp = -3, .ref_logp = -3, .ntok = 2},
                               {.logp = -5, .ref_logp = -5, .ntok = 3}};
    double gr[2], nll;
    struct sw_pref_metrics mt;
    OK(sw_pref_loss(&c, 1, s, gr, &nll, &mt) == 0 && fabs(mt.loss - log(2.0)) < 1e-12 &&
           fabs(gr[0] + 0.05) < 1e-12 && fabs(gr[1] - 0.05) < 1e-12 && nll == 0,
       "DPO at the reference: loss log 2, dL/dlogp ∓β/2");
    s[1].ntok = 0;
    OK(sw_pref_loss(&c, 1, s, gr, &nll, &mt) == SW_EINVAL, "a sequence without targets is refused");
}

int main(void) {
    if (!OK(sw_backend_open(SW_DEVICE_CPU, &be) == 0, "open the CPU backend")) return tap_done();
    test_parse();
    struct sw_st_file *g = NULL;
    struct sw_model *m = open_policy();
    if (m && OK(sw_st_open(GOLDEN "pref/golden.safetensors", &g) == 0, "open pref golden")) {
        static const struct gcase cases[] = {
            {"dpo_sigmoid", "dpo", "sigmoid"}, {"dpo_sigmoid_ls", "dpo", "sigmoid"},
            {"dpo_hinge", "dpo", "hinge"},     {"dpo_ipo", "dpo", "ipo"},
            {"dpo_robust", "dpo", "robust"},   {"dpo_rpo", "dpo", NULL},
            {"cpo_sigmoid", "cpo", NULL},      {"cpo_hinge", "cpo", "hinge"},
            {"simpo", "simpo", NULL},          {"orpo", "orpo", NULL},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            run_pair_case(m, g, &cases[i]);
        run_kto_case(m, g, "kto");
        run_kto_case(m, g, "kto_weighted");
        /* the adapters switched off are the base model: no backward through them */
        struct pbatch pb = {0};
        int32_t p[2] = {5, 6}, c2[2] = {7, 8};
        add_seq(&pb, p, 2, c2, 2);
        double lp;
        int64_t nt;
        sw_model_set_lora_enabled(m, 0);
        sw_pref_forward_logps(m, &pb.b, &lp, &nt);
        OK(sw_model_backward(m, 1.0f) == SW_ESTATE,
           "backward after a reference forward is refused");
        sw_model_set_lora_enabled(m, 1);
    }
    sw_st_close(g);
    sw_model_free(m);
    sw_backend_close(be);
    return tap_done();
}
