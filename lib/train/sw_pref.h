/* sw_pref — the model side of preference training: the per-sequence sums of the target tokens'
 * log-probs of a packed micro-batch (one forward; the fused cross-entropy's per-token losses,
 * never the [N, vocab] logits), and the backward that weights every token's loss by its
 * sequence's −dL/d(Σ logp) (sw_pref_loss.h computes those). Used by sw-train's preference loop
 * (sw_train_pref.c) and by test/unit/test_pref.c against TRL. */
#ifndef SW_PREF_H
#define SW_PREF_H

#include "sw_model.h"

#include <stdint.h>

/* Forward b (packed: cu_seqlens with n_seqs sequences, or plain/padded rows: one sequence per
 * row) with its labels and fill logp[s] = Σ log p(target) and ntok[s] = number of targets of
 * every sequence s. The activations stay for sw_pref_backward. */
int sw_pref_forward_logps(struct sw_model *m, const struct sw_batch *b, double *logp,
                          int64_t *ntok);
/* Backward of the last forward (on b) for a loss L whose gradient is grad[s] = dL/d(logp[s]):
 * each target token of s gets the weight −grad[s], plus nll_coef when s < n_nll (the chosen
 * sequences that an NLL term averages over), times scale. */
int sw_pref_backward(struct sw_model *m, const struct sw_batch *b, const double *grad,
                     double nll_coef, int n_nll, double scale);

#endif
