/* sw_pref_loss — the preference losses of sw-train --rlhf_type dpo|kto|cpo|simpo|orpo, as TRL
 * defines them in the versions ms-swift runs on (trl >= 0.15, < 1.0: DPOTrainer.dpo_loss,
 * KTOTrainer.kto_loss, CPOTrainer.cpo_loss, ORPOTrainer.odds_ratio_loss and the
 * get_batch_loss_metrics around them), with ms-swift's argument names. Pure host math on the
 * per-sequence sums of the target tokens' log-probs: the model computes those (the fused
 * cross-entropy's per-token losses, sw_model_token_losses), this file turns them into the loss,
 * TRL's metrics and dL/d(Σ logp) of every sequence, and the trainer feeds the per-token weights
 * −dL/d(Σ logp) (+ the NLL term's coefficient on chosen tokens) to sw_model_backward_weighted.
 *
 * One call is one micro-batch (TRL's loss is a mean over its pairs / rows):
 *   DPO  (loss_type sigmoid | hinge | ipo | robust): z = (c − r) − (c_ref − r_ref);
 *        sigmoid −logσ(βz)(1−ε) − logσ(−βz)ε; hinge relu(1 − βz); ipo (z − 1/(2β))² on
 *        length-normalised log-probs (policy and reference, as TRL's concatenated_forward);
 *        robust (−logσ(βz)(1−ε) + logσ(−βz)ε)/(1−2ε). rpo_alpha adds α·nll.
 *        rewards β(c − c_ref), β(r − r_ref).
 *   CPO  (sigmoid | hinge | ipo | simpo; --rlhf_type simpo is CPO with loss simpo): no
 *        reference, z = c − r (ipo/simpo: length-averaged), simpo z − γ/β; loss mean +
 * cpo_alpha·nll; rewards βc, βr. ORPO log-probs length-averaged, log_odds = (c − r) − (log(1 − e^c)
 * − log(1 − e^r)); loss = nll − mean(β·logσ(log_odds)); rewards βc, βr. KTO  rows labelled
 * desirable / undesirable; kl = max(0, mean(KL − KL_ref)) over the rows' mismatched (prompt, other
 * completion) pairs, no gradient; desirable 1 − σ(β(lr − kl)), undesirable 1 − σ(β(kl − lr)), lr =
 * logp − logp_ref, weighted by desirable_weight / undesirable_weight; loss = mean over the rows.
 * nll (TRL's chosen cross-entropy) = −Σ chosen-token log-probs / number of chosen tokens. */
#ifndef SW_PREF_LOSS_H
#define SW_PREF_LOSS_H

#include <stdint.h>

enum sw_rlhf_type { SW_RLHF_DPO = 0, SW_RLHF_KTO, SW_RLHF_CPO, SW_RLHF_ORPO };
enum sw_pref_loss_type {
    SW_PREF_SIGMOID = 0,
    SW_PREF_HINGE,
    SW_PREF_IPO,
    SW_PREF_ROBUST,
    SW_PREF_SIMPO,
    SW_PREF_KTO
};

struct sw_pref_cfg {
    enum sw_rlhf_type type;
    enum sw_pref_loss_type loss;
    double beta;
    double label_smoothing;
    int use_rpo; /* DPO: add rpo_alpha · nll */
    double rpo_alpha;
    double cpo_alpha;                            /* CPO/SimPO: weight of nll */
    double simpo_gamma;                          /* SimPO margin γ */
    double desirable_weight, undesirable_weight; /* KTO */
};

/* One sequence: the sum of its target tokens' log-probs under the policy and (DPO, KTO) the
 * reference, its number of target tokens; KTO rows add their label and the log-probs of their
 * mismatched KL pair. */
struct sw_pref_seq {
    double logp, ref_logp;
    int64_t ntok;
    int desirable;               /* KTO: 1 desirable, 0 undesirable */
    double kl_logp, ref_kl_logp; /* KTO: the KL pair's Σ logp under policy / reference */
};

/* TRL's logged values for one micro-batch (means over its pairs / rows; NaN when a KTO batch
 * has no row of a side). */
struct sw_pref_metrics {
    double loss;
    double rewards_chosen, rewards_rejected, rewards_accuracies, rewards_margins;
    double logps_chosen, logps_rejected;
    double nll_loss;                        /* has_nll */
    double kl;                              /* KTO */
    double log_odds_ratio, log_odds_chosen; /* ORPO */
    int has_nll, has_kl, has_odds, has_accuracy;
};

/* Parse ms-swift's names: rlhf_type dpo|kto|cpo|simpo|orpo and loss_type (NULL = the type's
 * default: sigmoid, kto for KTO, simpo for SimPO) into c, every other field set to ms-swift's
 * default (beta 0.1, simpo 2.0; cpo_alpha, simpo_gamma, KTO weights 1; no rpo, no label
 * smoothing). SW_EUSAGE naming the bad value. */
int sw_pref_cfg_parse(const char *rlhf_type, const char *loss_type, struct sw_pref_cfg *c);
/* Whether the type needs reference log-probs (DPO, KTO). */
int sw_pref_needs_ref(const struct sw_pref_cfg *c);

/* The loss of one micro-batch. Pairs (DPO/CPO/ORPO): seq[0..n) chosen, seq[n..2n) rejected, and
 * grad[2n]. KTO: seq[0..n) rows with their labels, grad[n]. grad[s] = dL/d(Σ logp of s) — the
 * length normalisation already applied; *nll_coef = dL/d(loss of one chosen token) from the NLL
 * term (0 without one): the per-token weight of a target token of s is −grad[s] (+ nll_coef when
 * s is chosen). SW_EINVAL for n < 1 or a sequence without target tokens. */
int sw_pref_loss(const struct sw_pref_cfg *c, int n, const struct sw_pref_seq *seq, double *grad,
                 double *nll_coef, struct sw_pref_metrics *mt);

#endif
