/* sw_ckpt — training checkpoints: output_dir/checkpoint-<step>/, written atomically as a whole
 * folder and read back with every file verified, so --resume_from_checkpoint continues a run
 * exactly where it stopped.
 *
 * A checkpoint is a folder other tools can use as is:
 *   full fine-tuning   an HF model folder: config.json, model.safetensors (or shards +
 *                      model.safetensors.index.json above max_shard_bytes), generation_config.json
 *                      (the input model folder's, else the one transformers derives from
 *                      config.json) and the tokenizer files (tokenizer.json or .json.gz,
 *                      tokenizer_config.json, special_tokens_map.json, vocab.json, merges.txt,
 *                      tokenizer.model, added_tokens.json, chat_template.jinja/.json) of the input
 *                      model folder, or of tokenizer_dir when it has none (a model trained from
 *                      a config takes the stream's tokenizer);
 *   LoRA               a PEFT adapter folder: adapter_config.json (the keys PEFT writes, sorted,
 *                      indented by 2) and adapter_model.safetensors with PEFT's names
 *                      (base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight [r, in],
 *                      ...lora_B.weight [out, r]), plus the same tokenizer and generation
 *                      files;
 * and, for resuming:
 *   trainer_state.json   HF TrainerState (global_step, epoch, best metric, log_history, ...)
 *   training_state.json  sw's state: steps, data position, schedule, tuner, base model identity,
 *                        and in float16 runs the loss scaler (scale, growth tracker, skipped)
 *   rng_state.json       seeds and RNG positions
 *   optimizer.safetensors  exp_avg / exp_avg_sq of every trained parameter ("<name>.exp_avg",
 *                        "<name>.exp_avg_sq", float32, the parameter's shape) and the step count
 *   args.json            the options of the run (ms-swift writes the same file)
 *   checkpoint.sha256    "<sha256>  <file>" per file (sha256sum -c format), written last.
 *
 * Atomicity: everything is written into output_dir/.checkpoint-<step>.tmp-<pid>/, each file
 * fsync'ed, the manifest last; then the folder is renamed to checkpoint-<step> and output_dir is
 * fsync'ed. A crash leaves either the previous state or the complete new folder (plus a stale
 * .tmp folder that the next save removes). Loading refuses a folder without a manifest, with a
 * missing, extra-corrupt or modified file, or with unparsable state, naming the file. */
#ifndef SW_CKPT_H
#define SW_CKPT_H

#include "sw_adapter.h"
#include "sw_hfconfig.h"
#include "sw_optim.h"
#include "sw_safetensors.h"
#include "sw_tensor.h"

#include <jansson.h>
#include <stdint.h>

#define SW_CKPT_MANIFEST "checkpoint.sha256"
#define SW_CKPT_DEFAULT_SHARD ((uint64_t)5000000000u) /* HF's max_shard_size "5GB" */

/* Everything a run needs to continue besides tensors. Strings are fixed arrays so the struct can
 * be copied; log_history is owned (released by sw_ckpt_state_release). */
struct sw_ckpt_state {
    /* progress */
    int64_t global_step;     /* completed training steps (skipped non-finite steps included) */
    int64_t optimizer_steps; /* AdamW updates applied (its bias-correction t) */
    int64_t max_steps;       /* steps of the whole run (the schedule's T) */
    double epoch;            /* fractional epoch as logged */
    int64_t num_train_epochs;
    int64_t logging_steps, eval_steps, save_steps;
    int64_t train_batch_size;
    int64_t input_tokens_seen;  /* HF's num_input_tokens_seen */
    int64_t target_tokens_seen; /* tokens that had a loss */
    /* data position */
    int64_t data_epoch;          /* epoch being read, 0-based */
    int64_t data_records;        /* records of data_epoch already consumed */
    int64_t data_records_total;  /* records consumed over every epoch */
    char data_header_sha256[65]; /* SHA-256 of the training stream's header record ("" unknown) */
    /* randomness */
    uint64_t seed;                  /* the run's seed (init, LoRA A, dropout) */
    uint64_t data_seed;             /* data order seed */
    uint64_t dropout_forward_count; /* forwards run so far (dropout masks depend on it) */
    /* schedule and tuner */
    char lr_scheduler_type[32];
    double learning_rate;
    int64_t warmup_steps;
    char tuner_type[8];          /* "full" or "lora" */
    char base_config_sha256[65]; /* fingerprint of the base model (config.json + sampled weight
                                    bytes; see sw_train_setup.c): a LoRA resume compares it */
    /* best evaluation */
    int has_best;
    double best_metric; /* lowest eval_loss */
    int64_t best_step;
    /* the logging window open at save time, so logged means continue exactly after a resume */
    double log_loss_sum; /* sum of the per-step mean losses since the last log line */
    int64_t log_steps;   /* steps in that sum */
    /* float16 runs: the loss scaler (lib/sw_loss_scale.h), training_state.json's "loss_scaler"
     * object — GradScaler's state_dict()'s scale and _growth_tracker, plus the steps it skipped
     * (they do not advance the LR schedule) */
    int has_loss_scaler;
    double loss_scale;
    int64_t loss_scale_growth_tracker;
    int64_t loss_scale_skipped;
    /* HF log_history: array of objects (owned; NULL means empty) */
    json_t *log_history;
};

/* Free log_history and zero the struct. Accepts NULL. */
void sw_ckpt_state_release(struct sw_ckpt_state *st);
/* Append a copy of obj (an object) to st->log_history. Returns 0 or SW_ENOMEM. */
int sw_ckpt_state_log(struct sw_ckpt_state *st, const json_t *obj);

/* What to save. Tensors are host float32 (or any dtype safetensors names), contiguous, named
 * with HF names (full) or PEFT names (LoRA); borrowed for the call. */
struct sw_ckpt_save_args {
    const char *output_dir;
    int64_t step;
    int lora; /* 0: full HF folder; 1: PEFT adapter folder */
    const struct sw_tensor *tensors;
    int n_tensors;
    const struct sw_model_config *config;     /* full: written as config.json (required) */
    const struct sw_adapter_config *lora_cfg; /* LoRA: adapter_config.json (required) */
    const char *model_dir;                    /* input model folder for tokenizer and generation
                                                 config files (NULL: none copied) */
    const char *tokenizer_dir;                /* tokenizer files from here when model_dir has no
                                                 tokenizer (NULL: none) */
    uint64_t max_shard_bytes;                 /* 0 = SW_CKPT_DEFAULT_SHARD */
    struct sw_adamw *optimizer;               /* moments to save (NULL: no optimizer.safetensors) */
    const struct sw_ckpt_state *state;        /* required */
    const json_t *args;                       /* args.json (NULL: not written) */
    int save_total_limit;                     /* > 0: afterwards keep at most this many checkpoints
                                                 (never the new one nor the best one) */
};

/* Write checkpoint-<step> atomically (replacing an existing folder of that step), then apply
 * save_total_limit. *out_path (may be NULL) receives the malloc'ed folder path. Returns 0 or a
 * negative error naming the file; on error nothing but a .tmp folder (removed) was touched. */
int sw_ckpt_save(const struct sw_ckpt_save_args *a, char **out_path);

/* Delete the oldest checkpoint-<N> folders of output_dir until at most limit remain, never
 * deleting the newest one nor checkpoint-<keep_step> (the best; < 0 for none). Only folders
 * named exactly checkpoint-<digits> are considered. Returns 0 or an error. */
int sw_ckpt_prune(const char *output_dir, int limit, int64_t keep_step);

/* The checkpoint-<N> folder of output_dir with the largest N: *path malloc'ed. SW_ENOTFOUND with
 * a message naming output_dir when there is none. */
int sw_ckpt_find_latest(const char *output_dir, char **path);

/* Write dir/checkpoint.sha256 for every regular file in dir (sorted by name). */
int sw_ckpt_write_manifest(const char *dir);
/* Check dir against its manifest: SW_ENOTFOUND (no manifest, or a listed file missing),
 * SW_ECORRUPT (a digest differs, or a file present but not listed), SW_EFORMAT (a malformed
 * manifest line) — the message names the file. */
int sw_ckpt_verify_manifest(const char *dir);

/* ---- loading ------------------------------------------------------------------------------ */

struct sw_ckpt;

/* Open and verify a checkpoint folder: manifest, trainer_state.json, training_state.json,
 * rng_state.json (all required), the weights (model.safetensors / shards, or
 * adapter_model.safetensors + adapter_config.json) and optimizer.safetensors when present.
 * Every failure names the file (and key). *out is freed with sw_ckpt_close. */
int sw_ckpt_open(const char *dir, struct sw_ckpt **out);
void sw_ckpt_close(struct sw_ckpt *ck);

const char *sw_ckpt_dir(const struct sw_ckpt *ck);
const struct sw_ckpt_state *sw_ckpt_get_state(const struct sw_ckpt *ck);
int sw_ckpt_is_lora(const struct sw_ckpt *ck);
/* The adapter description (LoRA checkpoints; NULL for full ones). */
const struct sw_adapter_config *sw_ckpt_get_lora(const struct sw_ckpt *ck);
/* The weights: the folder's model.safetensors (or shards) or adapter_model.safetensors. */
const struct sw_st_set *sw_ckpt_weights(const struct sw_ckpt *ck);
/* Copy the saved moments and step count into o, whose parameters must be exactly the saved ones
 * (every "<name>.exp_avg"/".exp_avg_sq" present with the slot's element count, float32, and
 * nothing else): SW_ENOTFOUND (no optimizer.safetensors, or a missing tensor) or SW_EFORMAT,
 * naming the file and tensor. */
int sw_ckpt_load_optimizer(const struct sw_ckpt *ck, struct sw_adamw *o);

/* ---- JSON forms (exposed for tests) ------------------------------------------------------ */

#endif
