/* sw_pref_loss — TRL's preference losses and their gradients with respect to each sequence's
 * Σ log-prob (sw_pref_loss.h states the formulas). Everything in double; logσ and σ are written
 * so large arguments neither overflow nor lose the small side (log1p(exp(−|x|)) form). */
#include "sw_pref_loss.h"

#include "sw_err.h"

#include <math.h>
#include <string.h>

static double sigmoid(double x) {
    return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
}

/* log σ(x) = −softplus(−x) */
static double logsigmoid(double x) {
    return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x));
}

int sw_pref_cfg_parse(const char *rlhf_type, const char *loss_type, struct sw_pref_cfg *c) {
    static const struct {
        const char *name;
        enum sw_rlhf_type type;
        enum sw_pref_loss_type def;
    } types[] = {{"dpo", SW_RLHF_DPO, SW_PREF_SIGMOID},
                 {"kto", SW_RLHF_KTO, SW_PREF_KTO},
                 {"cpo", SW_RLHF_CPO, SW_PREF_SIGMOID},
                 {"simpo", SW_RLHF_CPO, SW_PREF_SIMPO},
                 {"orpo", SW_RLHF_ORPO, SW_PREF_SIGMOID}};
    static const char *const losses[] = {"sigmoid", "hinge", "ipo", "robust", "simpo", "kto"};
    int t = -1;
    for (int i = 0; i < (int)(sizeof types / sizeof types[0]); i++)
        if (rlhf_type && strcmp(rlhf_type, types[i].name) == 0) t = i;
    if (t < 0)
        return sw_err_set(SW_EUSAGE, "rlhf_type '%s': expected dpo, kto, cpo, simpo or orpo",
                          rlhf_type ? rlhf_type : "");
    /* ms-swift's defaults: beta 0.1 (2.0 for simpo), cpo_alpha 1, simpo_gamma 1, weights 1 */
    memset(c, 0, sizeof *c);
    c->type = types[t].type;
    c->loss = types[t].def;
    c->beta = strcmp(rlhf_type, "simpo") == 0 ? 2.0 : 0.1;
    c->cpo_alpha = c->simpo_gamma = c->desirable_weight = c->undesirable_weight = 1.0;
    if (!loss_type || !*loss_type) return 0;
    int l = -1;
    for (int i = 0; i < (int)(sizeof losses / sizeof losses[0]); i++)
        if (strcmp(loss_type, losses[i]) == 0) l = i;
    int ok = l >= 0;
    if (ok && c->type == SW_RLHF_DPO) ok = l <= SW_PREF_ROBUST;
    if (ok && c->type == SW_RLHF_CPO) ok = l != SW_PREF_ROBUST && l != SW_PREF_KTO;
    if (ok && c->type == SW_RLHF_KTO) ok = l == SW_PREF_KTO;
    if (ok && c->type == SW_RLHF_ORPO) ok = l == SW_PREF_SIGMOID;
    if (!ok)
        return sw_err_set(SW_EUSAGE,
                          "loss_type '%s' does not apply to rlhf_type %s (dpo: sigmoid, hinge, "
                          "ipo, robust; cpo/simpo: sigmoid, hinge, ipo, simpo; kto: kto; orpo: "
                          "none)",
                          loss_type, rlhf_type);
    c->loss = (enum sw_pref_loss_type)l;
    return 0;
}

int sw_pref_needs_ref(const struct sw_pref_cfg *c) {
    return c->type == SW_RLHF_DPO || c->type == SW_RLHF_KTO;
}

/* A pairwise loss of z and its derivative dL/dz (DPO and CPO share them). */
static double pair_loss(const struct sw_pref_cfg *c, double z, double *dz) {
    double b = c->beta, e = c->label_smoothing;
    switch (c->loss) {
    case SW_PREF_HINGE: *dz = 1.0 - b * z > 0 ? -b : 0.0; return fmax(0.0, 1.0 - b * z);
    case SW_PREF_IPO: {
        double d = z - 1.0 / (2.0 * b);
        *dz = 2.0 * d;
        return d * d;
    }
    case SW_PREF_ROBUST:
        *dz = (-b * (1 - e) * sigmoid(-b * z) - b * e * sigmoid(b * z)) / (1 - 2 * e);
        return (-logsigmoid(b * z) * (1 - e) + logsigmoid(-b * z) * e) / (1 - 2 * e);
    case SW_PREF_SIMPO:
        z -= c->simpo_gamma / b; /* then sigmoid with label smoothing */
        /* fall through */
    default: /* sigmoid */
        *dz = -b * (1 - e) * sigmoid(-b * z) + b * e * sigmoid(b * z);
        return -logsigmoid(b * z) * (1 - e) - logsigmoid(-b * z) * e;
    }
}

/* nll over the chosen sides: −Σ logp / Σ tokens, and its coefficient per chosen token. */
static double chosen_nll(int n, const struct sw_pref_seq *seq, double weight, double *coef) {
    double lp = 0;
    int64_t nt = 0;
    for (int i = 0; i < n; i++)
        lp += seq[i].logp, nt += seq[i].ntok;
    *coef = weight / (double)nt;
    return -lp / (double)nt;
}

static int pairwise(const struct sw_pref_cfg *c, int n, const struct sw_pref_seq *seq, double *grad,
                    double *nll_coef, struct sw_pref_metrics *mt) {
    /* Length-averaged log-probs: DPO's ipo; CPO's ipo and simpo; ORPO always. */
    int avg = (c->type == SW_RLHF_DPO && c->loss == SW_PREF_IPO) ||
              (c->type == SW_RLHF_CPO && (c->loss == SW_PREF_IPO || c->loss == SW_PREF_SIMPO)) ||
              c->type == SW_RLHF_ORPO;
    double loss = 0, acc = 0, rc_s = 0, rr_s = 0, lc_s = 0, lr_s = 0, odds_s = 0, ratio_s = 0;
    for (int i = 0; i < n; i++) {
        const struct sw_pref_seq *C = &seq[i], *R = &seq[n + i];
        double nc = avg ? (double)C->ntok : 1.0, nr = avg ? (double)R->ntok : 1.0;
        double lc = C->logp / nc, lr = R->logp / nr, dc, dr, rc, rr;
        if (c->type == SW_RLHF_ORPO) {
            /* log_odds = (lc − lr) − (log1p(−e^lc) − log1p(−e^lr)); d/dlc = 1/(1 − e^lc) */
            double lo = (lc - lr) - (log1p(-exp(lc)) - log1p(-exp(lr)));
            double ratio = logsigmoid(lo);
            loss += -c->beta * ratio;
            double dlo = -c->beta * sigmoid(-lo) / n; /* d(−mean β·logσ(lo))/dlo */
            dc = dlo / (-expm1(lc));
            dr = -dlo / (-expm1(lr));
            odds_s += lo, ratio_s += ratio;
            rc = c->beta * lc, rr = c->beta * lr;
        } else {
            double z = lc - lr, dz;
            if (c->type == SW_RLHF_DPO) z -= C->ref_logp / nc - R->ref_logp / nr;
            loss += pair_loss(c, z, &dz);
            dc = dz / n;
            dr = -dz / n;
            rc = c->beta * (c->type == SW_RLHF_DPO ? lc - C->ref_logp / nc : lc);
            rr = c->beta * (c->type == SW_RLHF_DPO ? lr - R->ref_logp / nr : lr);
        }
        grad[i] = dc / nc;
        grad[n + i] = dr / nr;
        acc += rc > rr;
        rc_s += rc, rr_s += rr, lc_s += lc, lr_s += lr;
    }
    mt->loss = loss / n;
    mt->rewards_chosen = rc_s / n;
    mt->rewards_rejected = rr_s / n;
    mt->rewards_accuracies = acc / n;
    mt->rewards_margins = (rc_s - rr_s) / n;
    mt->logps_chosen = lc_s / n;
    mt->logps_rejected = lr_s / n;
    mt->has_accuracy = 1;
    double w = c->type == SW_RLHF_DPO   ? (c->use_rpo ? c->rpo_alpha : 0)
               : c->type == SW_RLHF_CPO ? c->cpo_alpha
                                        : 1.0; /* ORPO: nll − mean(β·ratio) */
    int with_nll = c->type == SW_RLHF_DPO ? c->use_rpo : c->type == SW_RLHF_CPO ? w != 0 : 1;
    if (with_nll) {
        mt->nll_loss = chosen_nll(n, seq, w, nll_coef);
        mt->loss += w * mt->nll_loss;
        mt->has_nll = 1;
    }
    if (c->type == SW_RLHF_ORPO) {
        mt->log_odds_chosen = odds_s / n;
        mt->log_odds_ratio = ratio_s / n;
        mt->has_odds = 1;
    }
    return 0;
}

static int kto(const struct sw_pref_cfg *c, int n, const struct sw_pref_seq *seq, double *grad,
               struct sw_pref_metrics *mt) {
    double kl = 0;
    for (int i = 0; i < n; i++)
        kl += seq[i].kl_logp - seq[i].ref_kl_logp;
    kl = fmax(kl / n, 0.0);
    double loss = 0, rc = 0, rr = 0, lc = 0, lr = 0, b = c->beta;
    int nc = 0, nr = 0;
    for (int i = 0; i < n; i++) {
        double r = seq[i].logp - seq[i].ref_logp;
        if (seq[i].desirable) {
            double s = sigmoid(b * (r - kl));
            loss += c->desirable_weight * (1 - s);
            grad[i] = -c->desirable_weight * b * s * (1 - s) / n;
            rc += b * r, lc += seq[i].logp, nc++;
        } else {
            double s = sigmoid(b * (kl - r));
            loss += c->undesirable_weight * (1 - s);
            grad[i] = c->undesirable_weight * b * s * (1 - s) / n;
            rr += b * r, lr += seq[i].logp, nr++;
        }
    }
    mt->loss = loss / n;
    mt->kl = kl;
    mt->has_kl = 1;
    mt->rewards_chosen = nc ? rc / nc : NAN;
    mt->rewards_rejected = nr ? rr / nr : NAN;
    mt->rewards_margins = mt->rewards_chosen - mt->rewards_rejected;
    mt->logps_chosen = nc ? lc / nc : NAN;
    mt->logps_rejected = nr ? lr / nr : NAN;
    mt->rewards_accuracies = NAN; /* unpaired: TRL logs none */
    return 0;
}

int sw_pref_loss(const struct sw_pref_cfg *c, int n, const struct sw_pref_seq *seq, double *grad,
                 double *nll_coef, struct sw_pref_metrics *mt) {
    memset(mt, 0, sizeof *mt);
    *nll_coef = 0;
    if (n < 1) return sw_err_set(SW_EINVAL, "preference loss: empty batch");
    int ns = c->type == SW_RLHF_KTO ? n : 2 * n;
    for (int i = 0; i < ns; i++)
        if (seq[i].ntok < 1)
            return sw_err_set(SW_EINVAL, "preference loss: sequence %d has no target tokens", i);
    return c->type == SW_RLHF_KTO ? kto(c, n, seq, grad, mt)
                                  : pairwise(c, n, seq, grad, nll_coef, mt);
}
