/* sw_train_pref — the preference-training part of the trainer (sw_train_pref.c says how): its
 * state, the reference pass (with the --ref_logps cache), one step, evaluation and the metrics
 * TRL logs (rewards/chosen, rewards/rejected, rewards/accuracies, rewards/margins, logps/chosen,
 * logps/rejected, nll_loss, kl, log_odds_ratio, log_odds_chosen: the ones that apply). */
#ifndef SW_TRAIN_PREF_H
#define SW_TRAIN_PREF_H

#include "sw_pref_loss.h"
#include "sw_train_impl.h"

#define SW_PREF_NMETRICS 10
extern const char *const sw_train_pref_metric_names[SW_PREF_NMETRICS];

struct sw_train_pref {
    struct sw_pref_cfg cfg;
    int kind;      /* SW_TRAIN_PAIRS or SW_TRAIN_KTO */
    double *ref;   /* [nref][2] reference log-probs by stream record index */
    uint8_t *have; /* [nref] */
    int64_t nref;
    double **vref; /* per validation micro-batch [2·pairs] */
    int n_vref;
    double win_sum[SW_PREF_NMETRICS]; /* the logging window's sums and counts */
    int64_t win_n[SW_PREF_NMETRICS];
};

/* Parse the options into t->pref (allocated). */
int sw_train_pref_open(struct sw_trainer *t);
void sw_train_pref_close(struct sw_trainer *t);
/* Reference log-probs of the training and validation data (or from --ref_logps); turns dropout
 * off. Call after the data and the validation set are open, before the first step. */
int sw_train_pref_reference(struct sw_trainer *t);
/* Forward, loss and backward of the step's n micro-batches (t->mbs); gradients of
 * gscale · mean of their losses; *loss the mean. Adds to the logging window. */
int sw_train_pref_step(struct sw_trainer *t, int n, double gscale, double *loss);
/* The validation set's mean loss and metrics[SW_PREF_NMETRICS] (NaN: does not apply). */
int sw_train_pref_eval(struct sw_trainer *t, double *eval_loss, double *metrics);
/* The logging window's means into metrics (NaN: none), and a new window. */
void sw_train_pref_window(struct sw_trainer *t, double *metrics);

#endif
