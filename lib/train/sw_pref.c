/* sw_pref — per-sequence log-probs from one forward and the per-token weighted backward (see
 * sw_pref.h). A sequence s covers tokens [cu[s], cu[s+1]); token t's loss is that of its shifted
 * target (the next token of the same sequence), 0 when it has none, so Σ over the sequence's
 * tokens of −loss is its completion's log-prob. */
#include "sw_pref.h"

#include "sw_err.h"

#include <stdlib.h>

/* Sequences of b: cu_seqlens, or one row per sequence. */
static int seq_count(const struct sw_batch *b) {
    return b->cu_seqlens ? b->n_seqs : (int)b->B;
}

static int64_t seq_start(const struct sw_batch *b, int s) {
    return b->cu_seqlens ? b->cu_seqlens[s] : (int64_t)s * b->T;
}

int sw_pref_forward_logps(struct sw_model *m, const struct sw_batch *b, double *logp,
                          int64_t *ntok) {
    if (!b->labels) return sw_err_set(SW_EINVAL, "preference forward: the batch has no labels");
    int nseq = seq_count(b);
    int64_t N = b->B * b->T;
    float *loss = malloc((size_t)N * sizeof(float));
    if (!loss) return sw_err_set(SW_ENOMEM, "out of memory");
    struct sw_loss l;
    int rc = sw_model_forward(m, b, &l);
    if (rc == 0) rc = sw_model_token_losses(m, loss);
    for (int s = 0; rc == 0 && s < nseq; s++) {
        int64_t a = seq_start(b, s), e = seq_start(b, s + 1);
        double lp = 0;
        int64_t nt = 0;
        for (int64_t t = a; t < e; t++) {
            lp -= loss[t];
            /* the target of t is labels[t + 1] inside the sequence (a padded row's mask is
             * already folded into its labels by the data reader) */
            if (t + 1 < e && b->labels[t + 1] != SW_IGNORE_INDEX &&
                (!b->attention_mask || b->attention_mask[t + 1]))
                nt++;
        }
        logp[s] = lp;
        ntok[s] = nt;
    }
    free(loss);
    return rc;
}

int sw_pref_backward(struct sw_model *m, const struct sw_batch *b, const double *grad,
                     double nll_coef, int n_nll, double scale) {
    int nseq = seq_count(b);
    int64_t N = b->B * b->T;
    float *w = calloc((size_t)N, sizeof(float));
    if (!w) return sw_err_set(SW_ENOMEM, "out of memory");
    for (int s = 0; s < nseq; s++) {
        float v = (float)(-grad[s] + (s < n_nll ? nll_coef : 0.0));
        for (int64_t t = seq_start(b, s); t < seq_start(b, s + 1); t++)
            w[t] = v;
    }
    int rc = sw_model_backward_weighted(m, w, (float)scale);
    free(w);
    return rc;
}
