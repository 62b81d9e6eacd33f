/* sw_eval — local evaluation and inference over an HF model folder (plus an optional PEFT LoRA
 * adapter), the engine of sw-eval:
 *
 *   - PEFT adapters are opened by lib/model/sw_adapter.h;
 *   - an evaluation model (lib/sw_eval.c): backend + model + weights + adapter, ready to run;
 *   - logits (lib/infer/sw_eval_logits.c): full logits and HF's causal-LM loss of a batch of token
 *     ids;
 *   - generation (lib/sw_generate.c): greedy or sampled decoding with HF's logits processors.
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

/* ---- generation (lib/sw_generate.c) ---------------------------------------------------------- */

/* Decoding parameters after defaults are resolved (see sw_generate_params_resolve). */
struct sw_generate_params {
    int64_t max_new_tokens;
    int do_sample;             /* 0: greedy (argmax; the first index on ties, like torch) */
    double temperature;        /* > 0 when sampling */
    int64_t top_k;             /* 0 = off */
    double top_p;              /* 1 = off */
    double repetition_penalty; /* 1 = off (HF's CTRL-style penalty, applied in greedy too) */
    uint64_t seed;
    int64_t eos_ids[16]; /* generation stops after emitting one of them */
    int n_eos;
};

/* Command-line values: negative means "not given, take generation_config.json" (and for
 * temperature, 0 means greedy whatever the config says). */
struct sw_generate_request {
    int64_t max_new_tokens;    /* < 0: generation_config max_new_tokens, else 128 */
    double temperature;        /* < 0: config (sampling only when its do_sample is true); 0: greedy;
                                  > 0: sample with this temperature */
    int64_t top_k;             /* < 0: config (50 when sampling without one) */
    double top_p;              /* < 0: config (1.0) */
    double repetition_penalty; /* < 0: config (1.0) */
    uint64_t seed;
};

/* Resolve rq against the model folder's generation_config.json / config.json: EOS ids from
 * generation_config.json when it names some, else config.json, else tok_eos (≥ 0) when given. */
void sw_generate_params_resolve(const struct sw_generate_request *rq, const struct sw_hfmodel *hf,
                                int32_t tok_eos, struct sw_generate_params *p);

/* Why a generation ended. (The old path: sw-eval generate and sw-serve use lib/infer/sw_engine.h;
 * this stays until lib/eval's local backend moves onto the engine too.) */
enum sw_finish { SW_GEN_STOP = 0, SW_GEN_LENGTH };

/* Generate up to p->max_new_tokens ids after prompt[0..n_prompt) into *out (malloc'ed; *n_out
 * ids, the EOS id included when it stopped on one). Decoding recomputes the whole prefix at every
 * step (sw_model has no KV cache yet): cost O(new · prefix) forwards. on_token (may be NULL) is
 * called after each new id with user; a non-zero return stops generation early (SW_GEN_STOP).
 * Returns 0 or a negative error. */
int sw_generate(struct sw_eval_model *em, const int32_t *prompt, int64_t n_prompt,
                const struct sw_generate_params *p, int32_t **out, int64_t *n_out,
                enum sw_finish *finish, int (*on_token)(void *user, int32_t id), void *user);

/* The next id from one row of logits[V] (modified in place by the processors), in HF's order:
 * repetition penalty over history[0..n_hist), then for sampling temperature, top-k, top-p and a
 * draw from rng; greedy takes the argmax. */
struct sw_rng;
int32_t sw_generate_pick(float *logits, int64_t V, const int32_t *history, int64_t n_hist,
                         const struct sw_generate_params *p, struct sw_rng *rng);

#endif
