/* sw_engine — the inference engine every generating tool stands on (sw-serve, sw-eval generate,
 * benchmarks, RL rollouts): one base model (HF folder) plus any number of PEFT LoRA adapters,
 * its tokenizer and chat template (the same code as training: lib/tok, lib/data/sw_template.h),
 * a paged KV cache with prefix caching, a continuous-batching scheduler and the sampler.
 *
 *   - KV cache: fixed-size blocks (block_size tokens of every layer's K and V) from one budget;
 *     each sequence has a block table. Full blocks are hashed (their token ids chained with the
 *     parent block's hash, plus the adapter) so a later prompt with the same prefix reuses them
 *     (reference counted; free cached blocks are evicted least recently used first). The n > 1
 *     sequences of one request share the prompt's blocks.
 *   - Scheduler: every step builds one batch of at most max_num_batched_tokens new tokens from
 *     the running sequences' decode tokens and chunks of waiting prompts (chunked prefill),
 *     admits requests as blocks allow, and when the cache is full preempts the youngest running
 *     sequence (its blocks are freed and it is recomputed later). A sequence's result does not
 *     depend on what else is in the batch beyond float summation noise.
 *   - Sampling: vLLM's SamplingParams semantics (see struct sw_sampling_params), per-request
 *     seeds that give the same draws whatever the batch.
 *
 * Threads: one engine loop (sw_engine_start) runs the steps; sw_engine_submit, sw_engine_abort,
 * sw_engine_stats and the read-only getters may be called from any thread at any time. Without
 * a loop thread a caller can drive the engine itself with sw_engine_step (tests) or use the
 * synchronous batch API (sw_engine_generate, sw_engine_score), which works either way.
 * Callbacks run on the thread that runs the step. See docs/engine.md. */
#ifndef SW_ENGINE_H
#define SW_ENGINE_H

#include "sw_hfconfig.h"
#include "sw_tensor.h"

#include <stddef.h>
#include <stdint.h>

struct sw_engine;
struct sw_tokenizer;
struct sw_template;

/* ---- opening ------------------------------------------------------------------------------ */

/* A LoRA adapter to serve under a name (vLLM's --lora-modules name=path). */
struct sw_engine_adapter {
    const char *name; /* what a request's model field says */
    const char *path; /* PEFT folder: adapter_config.json + adapter_model.safetensors */
};

struct sw_engine_opts {
    const char *model_dir;     /* HF folder (config.json, weights, tokenizer.json); required */
    const char *tokenizer;     /* tokenizer folder or file; NULL: model_dir */
    const char *template_name; /* chat template (sw_template_get); NULL: detected from the
                                  tokenizer's chat_template; none found: sw_engine_template
                                  returns NULL */
    const struct sw_engine_adapter *adapters; /* n_adapters of them, loaded at open */
    int n_adapters;
    int max_loras;                  /* adapters that may be loaded at once, run-time ones
                                       included (0: 8) */
    enum sw_device device;          /* SW_DEVICE_CPU (default) or SW_DEVICE_CUDA */
    int64_t max_model_len;          /* prompt + output tokens of one sequence (0: the config's
                                       max_position_embeddings, capped by the cache) */
    int max_num_seqs;               /* running sequences at once (0: 256) */
    int max_waiting;                /* queued requests before submit refuses with SW_EBUSY
                                       (0: unlimited) */
    double gpu_memory_utilization;  /* CUDA: fraction of the device's memory for weights,
                                       adapters, activations and the KV cache (0: 0.9); the cache
                                       gets what is left (never more than is free). Adapters added
                                       at run time are not counted in advance */
    int64_t kv_cache_bytes;         /* > 0: the KV cache budget in bytes (wins over the above);
                                       0: CUDA from gpu_memory_utilization, CPU what max_num_seqs
                                       sequences of max_model_len need, at most 1 GiB */
    int block_size;                 /* tokens per KV block (0: 16) */
    int64_t max_num_batched_tokens; /* new tokens per step (0: max(2048, max_num_seqs)) */
    int enable_prefix_caching;      /* 1: on (what sw_engine_opts_init sets) */
    uint64_t seed;                  /* seed of requests that give none (each request still gets
                                       its own stream: seed + request id) */
    struct sw_model *model;         /* borrowed: generate with this model (a trainer's, its
                                       backend included) instead of loading model_dir's weights;
                                       model_dir still gives config (which must match), tokenizer
                                       and generation_config. Its own LoRA applies to every
                                       request (sw_model_set_lora_enabled switches it off), so
                                       no adapters may be loaded. It must outlive the engine;
                                       after changing its weights call sw_engine_weights_changed.
                                       The engine's steps use the model's scratch memory: never
                                       step between a training forward and its backward */
};

/* Defaults: everything 0/NULL except enable_prefix_caching = 1, device CPU. */
void sw_engine_opts_init(struct sw_engine_opts *o);

/* Load the model, tokenizer, template and adapters and size the KV cache. *out is freed with
 * sw_engine_close. Errors name the file (config.json, adapter folder, ...) or the option. */
int sw_engine_open(const struct sw_engine_opts *o, struct sw_engine **out);
/* Stop the loop if running (aborting what runs, each callback told), free everything. NULL ok. */
void sw_engine_close(struct sw_engine *e);

/* Borrowed views, valid until sw_engine_close. */
const struct sw_tokenizer *sw_engine_tokenizer(const struct sw_engine *e);
const struct sw_template *sw_engine_template(const struct sw_engine *e); /* NULL: none */
const struct sw_model_config *sw_engine_model_config(const struct sw_engine *e);
const struct sw_generation_config *sw_engine_generation_config(const struct sw_engine *e);
/* 1 when the folder has a generation_config.json (else the config above holds defaults). */
int sw_engine_has_generation_config(const struct sw_engine *e);
int64_t sw_engine_max_model_len(const struct sw_engine *e);
/* The EOS ids generation stops on (generation_config.json, else config.json, else the
 * tokenizer's eos_token); *n of them. */
const int32_t *sw_engine_eos_ids(const struct sw_engine *e, int *n);
/* The model's name for /v1/models: the basename of model_dir. */
const char *sw_engine_model_name(const struct sw_engine *e);

/* Adapters: the number loaded and the name of the i-th (for /v1/models). Adding one at run time
 * is thread-safe; a name already used is SW_EINVAL, more than max_loras is SW_ERANGE. Removing
 * one that a running or waiting request uses is SW_ESTATE. */
/* A borrowed model's weights changed (an optimizer step): forget the cached prefixes, whose K/V
 * the old weights computed, so the next requests see the new weights. Waits for a step in flight;
 * call it when no request is running (their K/V stays as computed). */
void sw_engine_weights_changed(struct sw_engine *e);

int sw_engine_adapter_count(const struct sw_engine *e);
const char *sw_engine_adapter_name(const struct sw_engine *e, int i);
int sw_engine_adapter_add(struct sw_engine *e, const char *name, const char *path);
int sw_engine_adapter_remove(struct sw_engine *e, const char *name);

/* ---- sampling parameters (vLLM's SamplingParams) ------------------------------------------ */

struct sw_sampling_params {
    int n;                     /* completions per prompt (1); they share the prompt's blocks */
    int64_t max_tokens;        /* new tokens at most (-1: up to max_model_len) */
    int64_t min_tokens;        /* EOS and stop ids are not picked before this many (0) */
    double temperature;        /* 0: greedy (argmax, first index on ties); > 0 sample */
    double top_p;              /* nucleus (1 = off) */
    int top_k;                 /* keep the k most likely (0 or -1 = off) */
    double min_p;              /* drop tokens below min_p × the top probability (0 = off) */
    double repetition_penalty; /* 1 = off; transformers' CTRL rule on prompt + output ids */
    double presence_penalty;   /* 0 = off; OpenAI: logit −= p for every id in the output */
    double frequency_penalty;  /* 0 = off; OpenAI: logit −= f · count in the output */
    int has_seed;              /* 1: seed below; 0: the engine's seed + the request id */
    uint64_t seed;
    const char *const *stop; /* n_stop strings; the output text ends before the first
                                match (include_stop_str_in_output keeps it) */
    int n_stop;
    const int32_t *stop_token_ids; /* n_stop_token_ids ids that end a sequence (kept in ids) */
    int n_stop_token_ids;
    int ignore_eos; /* 1: do not stop on the EOS ids */
    int include_stop_str_in_output;
    int skip_special_tokens; /* 1 (default): text deltas leave special tokens out */
    int logprobs;            /* -1: none; k ≥ 0: the chosen token's logprob + k top ones */
    int prompt_logprobs;     /* -1: none; k ≥ 0: every prompt token's logprob (+ k top) */
};

/* Neutral defaults: n 1, max_tokens 16 (vLLM's), temperature 1, top_p 1, top_k 0, min_p 0,
 * penalties off (repetition 1), no stops, logprobs -1, prompt_logprobs -1, skip_special 1. */
void sw_sampling_params_init(struct sw_sampling_params *p);
/* The model's defaults from generation_config.json over sw_sampling_params_init (vLLM's
 * --generation-config auto): temperature (0 when do_sample is false), top_p, top_k,
 * repetition_penalty, max_tokens (max_new_tokens when set). What a server starts from before
 * applying the request's fields. */
void sw_engine_default_params(const struct sw_engine *e, struct sw_sampling_params *p);

/* ---- requests ----------------------------------------------------------------------------- */

enum sw_finish_reason {
    SW_FINISH_NONE = 0, /* still running */
    SW_FINISH_STOP,     /* EOS, a stop id or a stop string */
    SW_FINISH_LENGTH,   /* max_tokens or max_model_len */
    SW_FINISH_ABORT,    /* sw_engine_abort, a callback asking to stop, or engine shutdown */
    SW_FINISH_ERROR,    /* the step failed (device error); event.error says why */
};
const char *sw_finish_reason_name(enum sw_finish_reason r); /* "stop", "length", "abort", ... */

/* One token's log-probability (natural log of the softmax of the raw model logits, before
 * penalties and temperature: vLLM's default raw_logprobs mode) and the top alternatives, most
 * likely first (ties: lower id first). rank = 1 + the number of ids with a higher logprob. */
struct sw_logprob_entry {
    int32_t id;
    float logprob;
};
struct sw_token_logprobs {
    int32_t id;
    float logprob;
    int32_t rank;
    int n_top;
    const struct sw_logprob_entry *top;
};

struct sw_engine_usage {
    int64_t prompt_tokens;     /* prompt length (once per request) */
    int64_t completion_tokens; /* generated ids (one sequence, or all n at request_done) */
    int64_t cached_tokens;     /* prompt tokens served from the prefix cache */
};

/* What a callback receives. Pointers are valid during the call only. */
struct sw_engine_event {
    uint64_t request_id;
    int index;        /* which of the n sequences (0..n-1); -1 on a request-level
                         event (prompt logprobs, request_done without a sequence) */
    int32_t token;    /* the new id, or -1 (an event without a new token) */
    const char *text; /* text delta since the previous event of this index: whole
                         UTF-8 characters only, held back while it could be the start
                         of a stop string, cut exactly before a matched stop string */
    size_t text_len;
    const struct sw_token_logprobs *logprobs;        /* of token; NULL unless requested */
    const struct sw_token_logprobs *prompt_logprobs; /* once, before any token: n_prompt − 1
                                   entries for prompt tokens 1.. (the first has none) */
    int64_t n_prompt_logprobs;
    enum sw_finish_reason finish; /* != NONE on the last event of this index */
    int32_t stop_token;           /* finish STOP on an id: that id, else -1 */
    const char *stop_str;         /* finish STOP on a string: the string matched, else NULL */
    const char *error;            /* finish ERROR: the message */
    struct sw_engine_usage usage; /* with finish: this sequence's counts; with request_done: the
                                     request's (completion_tokens summed over the n) */
    int request_done;             /* 1 on the request's very last event (every index finished):
                                     the user pointer is not used again after it */
};

/* Called on the engine's step thread, in order per request. Return 0 to go on; non-zero aborts
 * the request (as sw_engine_abort). It may call sw_engine_submit/abort/stats, never
 * sw_engine_step/stop/close. */
typedef int (*sw_engine_cb)(void *user, const struct sw_engine_event *ev);

/* Queue a request: prompt ids (copied), params (deep-copied, stop strings included), adapter
 * name (NULL or "" = the base model). Every request ends with exactly one request_done event,
 * even when aborted. *id (may be NULL) receives its id (> 0). Errors, with nothing queued and no
 * callback: SW_EINVAL (empty prompt, ids outside the vocabulary, bad params), SW_ERANGE (prompt +
 * 1 longer than max_model_len), SW_EBUSY (max_waiting requests queued already), SW_ENOTFOUND
 * (unknown adapter), SW_ESTATE (stopping).
 */
int sw_engine_submit(struct sw_engine *e, const int32_t *prompt, int64_t n_prompt,
                     const struct sw_sampling_params *p, const char *adapter, sw_engine_cb cb,
                     void *user, uint64_t *id);
/* Abort a request (client gone): its blocks are freed at the next step and its callback gets the
 * ABORT finishes and request_done. SW_ENOTFOUND when it already finished (harmless). */
int sw_engine_abort(struct sw_engine *e, uint64_t id);

/* ---- driving ------------------------------------------------------------------------------ */

/* Start / stop the background loop. stop: no new requests (submit → SW_ESTATE), the running and
 * waiting ones go on for up to drain_ms milliseconds (< 0: until done; 0: abort at once), then
 * what remains is aborted and the thread joined. Returns 0 or the loop's fatal error. */
int sw_engine_start(struct sw_engine *e);
int sw_engine_stop(struct sw_engine *e, int64_t drain_ms);
/* One scheduler step in the calling thread (when no loop runs): schedule, forward, sample,
 * callbacks. Returns the number of sequences still unfinished (0: idle) or a negative error. */
int sw_engine_step(struct sw_engine *e);

/* ---- counters (Prometheus) ---------------------------------------------------------------- */

struct sw_engine_stats {
    int running, waiting;                    /* sequences now */
    int64_t kv_blocks_total, kv_blocks_used; /* used: referenced by a sequence */
    int64_t kv_blocks_cached;                /* free but holding a reusable cached prefix */
    int64_t block_size;
    int64_t prefix_cache_queries; /* prompt tokens looked up */
    int64_t prefix_cache_hits;    /* of those, tokens found cached */
    int64_t prompt_tokens;        /* prefilled (computed) prompt tokens, all time */
    int64_t generation_tokens;    /* sampled tokens, all time */
    int64_t requests_submitted, requests_finished, requests_aborted;
    int64_t preemptions;
    int64_t steps;
};
void sw_engine_stats(struct sw_engine *e, struct sw_engine_stats *s);

/* ---- synchronous batch API (eval, RL) ----------------------------------------------------- */

/* One generated sequence. */
struct sw_completion {
    int32_t *ids; /* generated ids (a stop id / EOS included), n_ids of them */
    int64_t n_ids;
    char *text; /* decoded, stop strings cut; NUL-terminated */
    size_t text_len;
    float *logprobs; /* [n_ids] chosen-token logprobs when params.logprobs ≥ 0 */
    enum sw_finish_reason finish;
};
/* The n completions of one prompt. */
struct sw_generation {
    struct sw_completion *seqs;
    int n;
    int64_t prompt_tokens, cached_tokens;
};
void sw_generation_release(struct sw_generation *g);

/* Generate for n_prompts prompts (ids[i], lens[i]) with one params and adapter; out[n_prompts]
 * (caller-allocated, filled; release each). All prompts are in flight together (continuous
 * batching). Works with or without the loop thread. */
int sw_engine_generate(struct sw_engine *e, const int32_t *const *ids, const int64_t *lens,
                       int n_prompts, const struct sw_sampling_params *p, const char *adapter,
                       struct sw_generation *out);

/* Log-likelihood of continuation given context (lm-evaluation-harness loglikelihood): sum of
 * log p(cont[j] | context, cont[<j]) and whether every cont[j] is the argmax (is_greedy).
 * Contexts sharing a prefix share cached blocks. */
struct sw_score_request {
    const int32_t *context;
    int64_t n_context; /* ≥ 1 */
    const int32_t *cont;
    int64_t n_cont; /* ≥ 1 */
};
struct sw_score_result {
    double logprob;
    int is_greedy;
};
int sw_engine_score(struct sw_engine *e, const struct sw_score_request *reqs, int n,
                    const char *adapter, struct sw_score_result *out);

#endif
