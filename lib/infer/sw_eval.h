/* sw_eval — local evaluation and inference over an HF model folder (plus an optional PEFT LoRA
 * adapter), the engine of sw-eval:
 *
 *   - PEFT adapters are opened by lib/model/sw_adapter.h;
 *   - an evaluation model (lib/sw_eval.c): backend + model + weights + adapter, ready to run;
 *   - logits (lib/infer/sw_eval_logits.c): full logits and HF's causal-LM loss of a batch of token
 *     ids;
 *
 * The loss of `sw_eval_logits` is exactly what transformers computes for
 * model(input_ids, attention_mask, labels=labels) with the default labels = input_ids: the mean
 * over every row b and position t < T−1 whose label labels[b, t+1] is not −100 of
 * −log softmax(logits[b, t])[labels[b, t+1]]. Padding is NOT excluded by the attention mask (HF
 * does not exclude it either: its labels at pad positions are the pad token id unless set to
 * −100); pass labels with −100 at the pad positions to leave them out. With no target at all
 * the loss is NaN (HF's 0/0). */
#ifndef SW_EVAL_H
#define SW_EVAL_H

#include "sw_adapter.h"
#include "sw_hfconfig.h"
#include "sw_hfmodel.h"
#include "sw_kernels.h"
#include "sw_model.h"
#include "sw_safetensors.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- an evaluation model ------------------------------------------------------------------- */

struct sw_eval_model {
    struct sw_backend *be;      /* owned */
    struct sw_hfmodel *hf;      /* owned: config, generation config, base weights */
    struct sw_model *model;     /* owned */
    struct sw_adapter *adapter; /* owned, NULL without --adapter */
};

/* Open model_dir (sw_hfmodel_open + sw_model_load on the CPU backend) and, when adapter_dir is
 * not NULL, apply its adapter (sw_adapter_open + sw_adapter_check + sw_model_lora_add with the
 * adapter's r, alpha, rsLoRA and module kinds + sw_model_lora_load). An adapter that does not
 * cover every layer for its module kinds is SW_EUNSUPPORTED here (sw-quant merge-lora handles
 * it). *out is freed with sw_eval_model_close. */
int sw_eval_model_open(const char *model_dir, const char *adapter_dir, struct sw_eval_model **out);
void sw_eval_model_close(struct sw_eval_model *em);

/* ---- logits and loss ----------------------------------------------------------------------- */

/* A batch of B rows of T tokens (host int32, row-major). attention_mask (right padding only),
 * labels (HF's unshifted labels, −100 ignored; NULL = input_ids) and position_ids (NULL = 0..T−1)
 * are optional. */
struct sw_eval_batch {
    int64_t B, T;
    const int32_t *input_ids;
    const int32_t *attention_mask;
    const int32_t *labels;
    const int32_t *position_ids;
};

/* Logits [B, T, vocab] into logits (caller-owned, B·T·vocab floats) and, when loss is not NULL,
 * HF's causal-LM loss as defined at the top of this file (*count = the number of targets).
 * Rows run through the model in groups of about max_tokens tokens (0 = 2048) to bound activation
 * memory; every row is independent, so grouping does not change the result beyond float
 * summation order in sgemm. Returns 0 or a negative error (bad ids, bad mask, ...). */
int sw_eval_logits(struct sw_eval_model *em, const struct sw_eval_batch *b, int64_t max_tokens,
                   float *logits, double *loss, int64_t *count);

/* HF's loss from logits [B, T, V] (double accumulation): sum and count of the targets. Labels
 * outside [0, V) other than −100 are SW_ERANGE naming row and column. */
int sw_eval_loss_from_logits(const float *logits, int64_t B, int64_t T, int64_t V,
                             const int32_t *labels, double *sum, int64_t *count);

#endif
