/* sw_train — supervised fine-tuning and pre-training of a decoder (sw-train's engine): reads
 * token samples or packed batches from an sws stream, runs forward/backward through sw_model,
 * AdamW with HF Trainer's schedule, clipping and decay rule, logs metrics, evaluates, and writes
 * HF / PEFT checkpoints that resume exactly.
 *
 * One optimizer step = gradient_accumulation_steps micro-batches. A micro-batch is one "batch"
 * record, or per_device_train_batch_size consecutive "sample" records packed back to back
 * (padding-free, attention kept inside each sample). The loss of a step is the mean over every
 * target token of its micro-batches (transformers' num_items_in_batch normalisation), so
 * accumulation and packing give the same gradient as one big batch. Steps never straddle epochs:
 * the last step of an epoch takes the micro-batches that remain (as HF Trainer does).
 *
 * Exact resume: a checkpoint holds the float32 weights, both AdamW moments, the step counts, the
 * data position (epoch, records consumed), the dropout counter and the seeds; resuming replays
 * the same records into the same micro-batches with the same learning rates, so N steps straight
 * and N/2 + resume + N/2 give bit-identical weights (same machine, same thread count).
 *
 * Signals: SIGINT/SIGTERM stop the loop at the next step boundary, a checkpoint is saved, and
 * sw_train_run returns SW_EINTR (sw-train then exits with 128 + signal: 130 / 143). */
#ifndef SW_TRAIN_H
#define SW_TRAIN_H

#include "sw_config.h"
#include "sw_grpo_opts.h"

#include <stdint.h>

struct sw_train_opts {
    /* model */
    char *model; /* HF model folder (tools resolve a hub id to its snapshot first) */
    char *use_hf, *model_revision, *hub_token; /* hub ids: ms-swift's options (sw_hub.h) */
    char *init_from_config;     /* sw's own: a config.json to build a randomly initialised model */
    char *device;               /* cpu | cuda */
    int gradient_checkpointing; /* recompute layer activations in backward (less memory) */
    /* precision: what the GEMMs and attention compute in (master weights, gradients and AdamW
     * state stay float32, as with torch autocast); bf16/fp16 are HF's boolean spellings */
    char *torch_dtype; /* auto | float32 | bfloat16 | float16 (also fp32 | bf16 | fp16) */
    int bf16, fp16;
    char *loss_scale; /* float16: "dynamic", "dynamic:S" or a fixed scale S (sw_loss_scale.h) */
    /* data */
    char *dataset;     /* "-" (stdin), a .sws file, or a ZeroMQ endpoint */
    char *val_dataset; /* optional, same forms; read once and kept in memory */
    int64_t per_device_train_batch_size;
    int64_t gradient_accumulation_steps;
    int64_t num_train_epochs;
    int64_t max_steps;       /* > 0 overrides num_train_epochs; 0 saves the initial model only */
    int64_t dataset_timeout; /* ZeroMQ: ms to wait for a record (0 = forever) */
    /* tuner */
    char *tuner_type; /* full | lora (alias train_type) */
    int64_t lora_rank;
    double lora_alpha;
    double lora_dropout;
    char *target_modules; /* "all-linear" or a comma list of module names */
    int use_rslora;
    /* QLoRA: the frozen base quantized while loading (ms-swift's QuantizeArguments names) */
    char *quant_method;            /* bnb | nf4 | rtn | fp8; NULL: the base stays as loaded */
    int64_t quant_bits;            /* 4 | 8; 0: the method's only width (nf4 4, fp8 8) */
    char *bnb_4bit_quant_type;     /* nf4 (fp4 is refused) */
    int bnb_4bit_use_double_quant; /* quantize NF4's block absmax too (bitsandbytes) */
    char *bnb_4bit_compute_dtype;  /* recorded; products run in torch_dtype's precision */
    int64_t quant_group_size;      /* rtn: columns per scale; 0: 128 for int4, per channel for 8 */
    /* optimizer and schedule */
    double learning_rate; /* 0 = ms-swift's default for the tuner: 1e-4 (lora) / 1e-5 (full) */
    double weight_decay;
    double adam_beta1, adam_beta2, adam_epsilon;
    double max_grad_norm;
    char *lr_scheduler_type;
    double warmup_ratio;
    double warmup_steps;
    int64_t seed;
    int64_t data_seed;
    char *nan_policy; /* sw's own: stop | skip */
    /* output */
    char *output_dir;
    int add_version;   /* a vN-YYYYMMDD-HHMMSS run folder under output_dir (ms-swift) */
    char *report_to;   /* tensorboard | none | all (event files in logging_dir) */
    char *logging_dir; /* TensorBoard folder; NULL: <run folder>/runs */
    int64_t logging_steps, eval_steps, save_steps, save_total_limit;
    int save_only_model;          /* no optimizer/RNG state: smaller, but cannot resume exactly */
    int64_t max_shard_size;       /* bytes per model.safetensors shard */
    char *resume_from_checkpoint; /* a checkpoint folder, or "latest" for output_dir's newest */
    /* preference training (ms-swift's swift rlhf names; NULL rlhf_type: SFT / pre-training) */
    char *rlhf_type;        /* dpo | kto | cpo | simpo | orpo | grpo */
    char *loss_type;        /* dpo: sigmoid|hinge|ipo|robust; cpo: sigmoid|hinge|ipo|simpo */
    double beta;            /* 0: the type's default (0.1; simpo 2.0) */
    double label_smoothing; /* dpo/cpo sigmoid, robust */
    double rpo_alpha;       /* dpo: > 0 adds rpo_alpha · nll */
    double cpo_alpha;       /* cpo/simpo: weight of nll */
    double simpo_gamma;
    double desirable_weight, undesirable_weight; /* kto */
    char *ref_logps;   /* sw: reference log-prob cache (sws), written when absent, else read */
    int eval_on_start; /* HF's eval_on_start: evaluate val_dataset before the first step */
    struct sw_grpo_opts grpo; /* --rlhf_type grpo (sw_grpo_opts.h) */
    /* Not an option: the table these options were parsed with (sw-train's lives in
     * tools/train/options.c). args.json records every key of it; NULL writes no args.json. */
    const struct sw_opt *option_table;
};

/* Train with o (borrowed). Writes checkpoints, logging.jsonl, images/ (SVG) and (report_to
 * tensorboard) runs/events.out.tfevents.* into the run folder: output_dir/vN-YYYYMMDD-HHMMSS
 * (add_version), or output_dir itself, which must then hold no other run's records; a resumed
 * run continues the run folder of its checkpoint when that lies in output_dir. Progress, one
 * HF-style line per logging step and diagnostics go to stderr through sw_log/sw_progress. A run
 * that fails before recording anything removes the folders it created. Returns 0, SW_EINTR
 * after a signal (a checkpoint was saved), or a negative error with the message naming what and
 * where. */
int sw_train_run(const struct sw_train_opts *o);

#endif
