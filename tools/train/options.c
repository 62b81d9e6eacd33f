/* options — sw-train's option table. Names and defaults are ms-swift's where ms-swift has
 * the knob (its TrainArguments / HF TrainingArguments); sw's own additions say so in their help.
 * --help, YAML configs and args.json all come from this one table. */
#include "train.h"

#include "sw_hub.h"
#include "sw_train.h"

#include <stddef.h>

#define F(x) offsetof(struct sw_train_opts, x)

const struct sw_opt sw_train_options[] = {
    {"model", SW_OPT_STRING, F(model), NULL,
     "HF model folder to train (config.json + safetensors), or a hub id (org/name: fetched into "
     "the hub cache as sw-fetch does)",
     0, 0, NULL, NULL},
    {"init_from_config", SW_OPT_STRING, F(init_from_config), NULL,
     "sw: config.json to build a randomly initialised model from (pre-training)", 0, 0, NULL, NULL},
    {"dataset", SW_OPT_STRING, F(dataset), "-",
     "training stream: - (stdin), a .sws file, or a ZeroMQ endpoint tcp://...", 0, 0, NULL, NULL},
    {"val_dataset", SW_OPT_STRING, F(val_dataset), NULL,
     "validation stream (same forms), evaluated every eval_steps", 0, 0, NULL, NULL},
    {"tuner_type", SW_OPT_CHOICE, F(tuner_type), "lora", "full fine-tuning or LoRA adapters", 0, 0,
     "full|lora", "train_type"},
    {"lora_rank", SW_OPT_INT, F(lora_rank), "8", "LoRA rank r", 1, 65536, NULL, NULL},
    {"lora_alpha", SW_OPT_FLOAT, F(lora_alpha), "32", "LoRA alpha (scale alpha/r)", 1e-9, 1e9, NULL,
     NULL},
    {"lora_dropout", SW_OPT_FLOAT, F(lora_dropout), "0.05", "dropout on the LoRA input", 0, 0.999,
     NULL, NULL},
    {"target_modules", SW_OPT_LIST, F(target_modules), "all-linear",
     "all-linear or module names (q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj)", 0, 0,
     NULL, NULL},
    {"use_rslora", SW_OPT_BOOL, F(use_rslora), "false",
     "rank-stabilised LoRA (scale alpha/sqrt(r))", 0, 0, NULL, NULL},
    {"quant_method", SW_OPT_CHOICE, F(quant_method), NULL,
     "QLoRA: quantize the frozen base while loading (bnb: --quant_bits 4 NF4 / 8 int8 per "
     "channel; nf4; rtn: int4 g128 / int8 per channel; fp8 e4m3 per channel); a quantized "
     "--model folder (GPTQ, bnb, fp8) stays quantized without it",
     0, 0, "bnb|nf4|rtn|fp8", NULL},
    {"quant_bits", SW_OPT_INT, F(quant_bits), "0",
     "bits of --quant_method (4 or 8; 0: nf4 4, fp8 8)", 0, 8, NULL, NULL},
    {"bnb_4bit_quant_type", SW_OPT_CHOICE, F(bnb_4bit_quant_type), "nf4",
     "bnb 4-bit code (fp4 is not supported)", 0, 0, "nf4|fp4", NULL},
    {"bnb_4bit_use_double_quant", SW_OPT_BOOL, F(bnb_4bit_use_double_quant), "true",
     "NF4: quantize the blocks' absmax too (bitsandbytes' double quantization)", 0, 0, NULL, NULL},
    {"bnb_4bit_compute_dtype", SW_OPT_CHOICE, F(bnb_4bit_compute_dtype), NULL,
     "recorded for ms-swift compatibility; the products run in --torch_dtype's precision", 0, 0,
     "float16|bfloat16|float32", NULL},
    {"quant_group_size", SW_OPT_INT, F(quant_group_size), "0",
     "sw: rtn columns per scale (0: 128 for int4, per channel for int8; -1 per channel)", -1,
     1 << 20, NULL, NULL},
    {"learning_rate", SW_OPT_FLOAT, F(learning_rate), NULL,
     "peak learning rate (unset: 1e-4 for lora, 1e-5 for full)", 0, 10, NULL, NULL},
    {"weight_decay", SW_OPT_FLOAT, F(weight_decay), "0.1",
     "AdamW decoupled weight decay (not on biases and norm weights)", 0, 10, NULL, NULL},
    {"adam_beta1", SW_OPT_FLOAT, F(adam_beta1), "0.9", "AdamW beta1", 0, 0.999999, NULL, NULL},
    {"adam_beta2", SW_OPT_FLOAT, F(adam_beta2), "0.95", "AdamW beta2", 0, 0.999999999, NULL, NULL},
    {"adam_epsilon", SW_OPT_FLOAT, F(adam_epsilon), "1e-8", "AdamW epsilon", 0, 1, NULL, NULL},
    {"max_grad_norm", SW_OPT_FLOAT, F(max_grad_norm), "1.0",
     "clip the global gradient norm to this (0 = no clipping)", 0, 1e9, NULL, NULL},
    {"lr_scheduler_type", SW_OPT_CHOICE, F(lr_scheduler_type), "cosine", "learning-rate schedule",
     0, 0, "cosine|linear|constant|constant_with_warmup", NULL},
    {"warmup_ratio", SW_OPT_FLOAT, F(warmup_ratio), "0.05",
     "warmup as a fraction of the total steps (used when warmup_steps is 0)", 0, 1, NULL, NULL},
    {"warmup_steps", SW_OPT_FLOAT, F(warmup_steps), "0",
     "warmup steps (>= 1), or a fraction of the total (< 1)", 0, 1e12, NULL, NULL},
    {"per_device_train_batch_size", SW_OPT_INT, F(per_device_train_batch_size), "1",
     "samples per micro-batch of a stream of samples (packed back to back); a stream of "
     "batches (sw-pack --packing / --per_device_train_batch_size) is read one batch record per "
     "micro-batch and sw-pack's options set its size",
     1, 1 << 20, NULL, NULL},
    {"gradient_accumulation_steps", SW_OPT_INT, F(gradient_accumulation_steps), "1",
     "micro-batches per optimizer step", 1, 1 << 20, NULL, NULL},
    {"num_train_epochs", SW_OPT_INT, F(num_train_epochs), "3",
     "passes over the dataset (a file; streams are read once)", 1, 1000000, NULL, NULL},
    {"max_steps", SW_OPT_INT, F(max_steps), "-1",
     "total optimizer steps (> 0 overrides num_train_epochs; 0 saves the initial model)", -1, 1e15,
     NULL, NULL},
    {"seed", SW_OPT_INT, F(seed), "42", "seed of init, LoRA A and dropout (Philox streams)", 0,
     9.2e18, NULL, NULL},
    {"data_seed", SW_OPT_INT, F(data_seed), "42", "data order seed (recorded; sw-pack shuffles)", 0,
     9.2e18, NULL, NULL},
    {"logging_steps", SW_OPT_INT, F(logging_steps), "5",
     "log metrics every N steps (output_dir/logging.jsonl)", 1, 1e15, NULL, NULL},
    {"eval_steps", SW_OPT_INT, F(eval_steps), "500",
     "evaluate val_dataset every N steps (and at the end)", 1, 1e15, NULL, NULL},
    {"save_steps", SW_OPT_INT, F(save_steps), "500",
     "save a checkpoint every N steps (and at the end)", 1, 1e15, NULL, NULL},
    {"save_total_limit", SW_OPT_INT, F(save_total_limit), "0",
     "keep at most N checkpoints, never the newest nor the best (0 = all)", 0, 1e9, NULL, NULL},
    {"save_only_model", SW_OPT_BOOL, F(save_only_model), "false",
     "omit the optimizer state (smaller; such checkpoints cannot be resumed)", 0, 0, NULL, NULL},
    {"max_shard_size", SW_OPT_INT, F(max_shard_size), "5000000000",
     "bytes per model.safetensors shard", 1, 1e15, NULL, NULL},
    {"output_dir", SW_OPT_STRING, F(output_dir), "output",
     "where runs go: each run writes checkpoint-<step>/, logging.jsonl, images/ and runs/ into "
     "its own output_dir/vN-YYYYMMDD-HHMMSS/ (see add_version)",
     0, 0, NULL, NULL},
    {"add_version", SW_OPT_BOOL, F(add_version), "true",
     "a vN-YYYYMMDD-HHMMSS folder per run under output_dir (ms-swift); false writes into "
     "output_dir itself and refuses a folder that already holds a run's records",
     0, 0, NULL, NULL},
    {"resume_from_checkpoint", SW_OPT_STRING, F(resume_from_checkpoint), NULL,
     "continue exactly from a checkpoint folder (\"latest\": the newest checkpoint of "
     "output_dir's newest run); a checkpoint inside output_dir continues its run folder",
     0, 0, NULL, NULL},
    {"report_to", SW_OPT_LIST, F(report_to), "tensorboard",
     "tensorboard (event files in logging_dir, ms-swift's default), all, or none", 0, 0, NULL,
     NULL},
    {"logging_dir", SW_OPT_STRING, F(logging_dir), NULL,
     "TensorBoard folder (unset: <run folder>/runs)", 0, 0, NULL, NULL},
    {"device", SW_OPT_CHOICE, F(device), "cpu",
     "where to train (cuda: parameters, gradients and AdamW state stay on the GPU)", 0, 0,
     "cpu|cuda", NULL},
    {"torch_dtype", SW_OPT_CHOICE, F(torch_dtype), "auto",
     "compute dtype of the GEMMs and attention (weights, gradients and AdamW state stay float32, "
     "as with autocast); auto: float32 on cpu, the CUDA backend's default on cuda (bfloat16; "
     "docs/cuda.md)",
     0, 0, "auto|float32|bfloat16|float16|fp32|bf16|fp16", NULL},
    {"bf16", SW_OPT_BOOL, F(bf16), "false", "same as --torch_dtype bfloat16 (HF's flag)", 0, 0,
     NULL, NULL},
    {"fp16", SW_OPT_BOOL, F(fp16), "false", "same as --torch_dtype float16 (HF's flag)", 0, 0, NULL,
     NULL},
    {"loss_scale", SW_OPT_STRING, F(loss_scale), "dynamic",
     "float16 loss scaling: dynamic (torch GradScaler: from 65536, x2 after 2000 finite steps, "
     "x0.5 and the step skipped on overflow), dynamic:S (from S), or a fixed scale S",
     0, 0, NULL, NULL},
    {"gradient_checkpointing", SW_OPT_BOOL, F(gradient_checkpointing), "false",
     "keep only each layer's input and recompute its activations in backward (less activation "
     "memory, ~1/3 more compute; same gradients bit for bit)",
     0, 0, NULL, NULL},
    {"nan_policy", SW_OPT_CHOICE, F(nan_policy), "stop",
     "sw: on a NaN/Inf loss or gradient, stop with an error or skip the step", 0, 0, "stop|skip",
     NULL},
    {"dataset_timeout", SW_OPT_INT, F(dataset_timeout), "0",
     "sw: ZeroMQ dataset: ms to wait for a record (0 = forever)", 0, 1e12, NULL, NULL},
    /* preference training (ms-swift's swift rlhf arguments; docs/train.md) */
    {"rlhf_type", SW_OPT_CHOICE, F(rlhf_type), NULL,
     "preference training on sw-pack's preference (dpo, cpo, simpo, orpo) or KTO (kto) "
     "streams; unset: supervised training",
     0, 0, "dpo|kto|cpo|simpo|orpo", NULL},
    {"loss_type", SW_OPT_STRING, F(loss_type), NULL,
     "dpo: sigmoid (default), hinge, ipo, robust; cpo: sigmoid, hinge, ipo, simpo", 0, 0, NULL,
     NULL},
    {"beta", SW_OPT_FLOAT, F(beta), NULL, "deviation from the reference (unset: 0.1, simpo 2.0)", 0,
     1e6, NULL, NULL},
    {"label_smoothing", SW_OPT_FLOAT, F(label_smoothing), "0",
     "conservative DPO/CPO: probability that a pair's labels are flipped", 0, 0.5, NULL, NULL},
    {"rpo_alpha", SW_OPT_FLOAT, F(rpo_alpha), NULL,
     "dpo: add rpo_alpha x the chosen answers' NLL (RPO); unset: no NLL term", 0, 1e6, NULL, NULL},
    {"cpo_alpha", SW_OPT_FLOAT, F(cpo_alpha), "1", "cpo/simpo: weight of the NLL term", 0, 1e6,
     NULL, NULL},
    {"simpo_gamma", SW_OPT_FLOAT, F(simpo_gamma), "1", "simpo: the reward margin gamma", 0, 1e6,
     NULL, NULL},
    {"desirable_weight", SW_OPT_FLOAT, F(desirable_weight), "1",
     "kto: weight of the desirable rows' loss", 0, 1e6, NULL, NULL},
    {"undesirable_weight", SW_OPT_FLOAT, F(undesirable_weight), "1",
     "kto: weight of the undesirable rows' loss", 0, 1e6, NULL, NULL},
    {"eval_on_start", SW_OPT_BOOL, F(eval_on_start), "false",
     "evaluate val_dataset once before the first step (HF's eval_on_start)", 0, 0, NULL, NULL},
    {"ref_logps", SW_OPT_STRING, F(ref_logps), NULL,
     "sw: reference log-prob cache (an sws file): written by the reference pass when absent, "
     "read (and checked against the dataset) when present",
     0, 0, NULL, NULL},
    SW_HUB_OPT_ROWS(struct sw_train_opts),
    SW_OPT_END,
};

const struct sw_cli sw_train_cli = {
    "sw-train",
    NULL,
    "sw-train [options]",
    "Train a decoder (Llama, Qwen2, Qwen3) on an sws stream of token samples or packed batches: "
    "full fine-tuning or LoRA, AdamW with HF's schedules, clipping and decay rule. Each run "
    "writes into output_dir/vN-YYYYMMDD-HHMMSS/: HF / PEFT checkpoints (checkpoint-<step>/, "
    "complete model folders, resumable exactly), metrics (logging.jsonl), plots (images/*.svg) "
    "and TensorBoard event files (runs/). Exit status: 0 done, 1 error, 2 usage, 130/143 "
    "stopped by SIGINT/SIGTERM after saving a checkpoint.",
    sw_train_options,
    0,
    0,
};
