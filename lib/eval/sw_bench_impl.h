/* sw_bench_impl.h — private to lib/eval: the in-process backend's calls into the inference
 * engine, kept in sw_bench_engine.c because sw_engine.h and sw_eval.h (the evaluation model's
 * header) cannot be included in one file (both name a SW_FINISH_STOP). */
#ifndef SW_BENCH_IMPL_H
#define SW_BENCH_IMPL_H

#include "sw_tensor.h" /* enum sw_device */

#include <stddef.h>
#include <stdint.h>

struct sw_engine;
struct sw_tokenizer;

/* lm-eval's tokenization of a (context, continuation) pair and its left truncation, as one
 * window: ids[0..n) = (ctx + cont)[-window:], the last ncont of them the continuation's
 * (sw_bench_local.c). The HTTP backend sends such windows as token prompts with window =
 * max_length, lm-eval's API-model rule (its HF backend's window is max_length + 1). */
int sw_bench_tokenize_pair(const struct sw_tokenizer *tok, int64_t window, const char *ctx,
                           const char *cont, int32_t **ids, int64_t *n, int64_t *ncont);

/* Open the engine on dev for model (+ adapter, served under the name "eval"), able to hold
 * max_model_len tokens per sequence, batch_tokens new tokens per step. */
int sw_bench_engine_open(const char *model, const char *adapter, const char *template_name,
                         enum sw_device dev, int64_t max_model_len, int64_t batch_tokens,
                         struct sw_engine **out);
void sw_bench_engine_close(struct sw_engine *e);
/* sw_engine_score over n (context, continuation) token pairs: ll[i], greedy[i]. */
int sw_bench_engine_score(struct sw_engine *e, const char *adapter, const int32_t *const *ctx,
                          const int64_t *nctx, const int32_t *const *cont, const int64_t *ncont,
                          size_t n, double *ll, int *greedy);
/* Greedy generation of n prompts with the model's generation_config.json defaults otherwise
 * (repetition_penalty, as transformers' generate() applies them), at most max_gen_toks tokens,
 * the text cut before the first stop string; out[i] malloc'ed. */
int sw_bench_engine_generate(struct sw_engine *e, const char *adapter, const int32_t *const *ids,
                             const int64_t *lens, size_t n, int64_t max_gen_toks,
                             const char *const *until, int nuntil, char **out);

#endif
