/* sw_eval_logits — full logits and transformers' causal-LM loss of a batch of token ids,.
 *
 * The loss is computed from the logits themselves on the host (double accumulation), not with
 * the model's fused training loss, because HF's definition with labels = input_ids also counts
 * the positions that the attention mask marks as padding (see sw_eval.h), which the model's batch
 * rules never target. */
#include "sw_eval.h"

#include "sw_err.h"
#include "sw_log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sw_eval_loss_from_logits(const float *logits, int64_t B, int64_t T, int64_t V,
                             const int32_t *labels, double *sum, int64_t *count) {
    double s = 0;
    int64_t n = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t + 1 < T; t++) {
            int32_t y = labels[b * T + t + 1];
            if (y == SW_IGNORE_INDEX) continue;
            if (y < 0 || y >= V)
                return sw_err_set(SW_ERANGE,
                                  "label %d at row %lld, column %lld is outside the "
                                  "vocabulary [0, %lld) (use -100 to ignore a position)",
                                  (int)y, (long long)b, (long long)(t + 1), (long long)V);
            const float *row = logits + (b * T + t) * V;
            double mx = row[0];
            for (int64_t v = 1; v < V; v++)
                if (row[v] > mx) mx = row[v];
            double z = exp((double)row[0] - mx); /* the sum holds exp(0) for the max: ≥ 1 */
            for (int64_t v = 1; v < V; v++)
                z += exp((double)row[v] - mx);
            s += mx + log(z) - (double)row[y];
            n++;
        }
    *sum = s;
    *count = n;
    return 0;
}

int sw_eval_logits(struct sw_eval_model *em, const struct sw_eval_batch *b, int64_t max_tokens,
                   float *logits, double *loss, int64_t *count) {
    int64_t V = em->hf->config.vocab_size, B = b->B, T = b->T;
    if (B < 1 || T < 1 || !b->input_ids)
        return sw_err_set(SW_EINVAL, "eval: need input_ids with B >= 1 and T >= 1 (B %lld, T %lld)",
                          (long long)B, (long long)T);
    if (max_tokens <= 0) max_tokens = 2048;
    int64_t rows = max_tokens / T > 0 ? max_tokens / T : 1;
    for (int64_t r0 = 0; r0 < B; r0 += rows) {
        int64_t nr = B - r0 < rows ? B - r0 : rows;
        int64_t off = r0 * T;
        struct sw_batch mb = {
            .B = nr,
            .T = T,
            .input_ids = b->input_ids + off,
            .attention_mask = b->attention_mask ? b->attention_mask + off : NULL,
            .position_ids = b->position_ids ? b->position_ids + off : NULL,
        };
        int rc = sw_model_forward(em->model, &mb, NULL);
        if (rc == 0) rc = sw_model_logits(em->model, logits + off * V);
        if (rc < 0) {
            if (r0 > 0 || nr < B)
                sw_err_wrap(rc, "rows %lld..%lld", (long long)r0, (long long)(r0 + nr - 1));
            return rc;
        }
    }
    if (!loss) return 0;
    double sum;
    int64_t n;
    SW_TRY(
        sw_eval_loss_from_logits(logits, B, T, V, b->labels ? b->labels : b->input_ids, &sum, &n));
    *loss = n > 0 ? sum / (double)n : NAN;
    if (count) *count = n;
    return 0;
}
