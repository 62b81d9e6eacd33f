/* sw_train_impl — internals of the trainer shared by its files: micro-batches and the training
 * data source (sw_train_data.c), model/optimizer setup and resume checks (sw_train_setup.c),
 * the backend-resident optimizer (sw_train_device.c), the memory plan and
 * out-of-memory reports (sw_train_memory.c), checkpoint assembly (sw_train_save.c) and the loop
 * (sw_train.c). */
#ifndef SW_TRAIN_IMPL_H
#define SW_TRAIN_IMPL_H

#include "sw_ckpt.h"
#include "sw_hfmodel.h"
#include "sw_loss_scale.h"
#include "sw_metrics.h"
#include "sw_model.h"
#include "sw_optim.h"
#include "sw_sched.h"
#include "sw_stream.h"
#include "sw_train.h"

#include <jansson.h>
#include <stdint.h>

/* One micro-batch in owned host memory (the stream's records are only borrowed until the next
 * read). b points into the arrays below. */
struct sw_mb {
    struct sw_batch b;
    int32_t *ids, *labels, *pos, *mask, *cu;
    int64_t cap_tokens, cap_seqs;
    int64_t input_tokens;  /* real (non-padding) tokens */
    int64_t targets;       /* tokens with a loss after the shift */
    int64_t records;       /* stream records it holds */
    uint64_t first_record; /* stream index of its first record (messages) */
    /* Preference training (sw_data_limits.rlhf): the packed row holds the chosen sequences of
     * its pairs, then their rejected ones (2·pairs sequences); KTO: one sequence per row, and
     * side holds the KL batch (row i's prompt + row i−1's completion, cyclic). */
    int pairs;     /* pairs / KTO rows */
    uint64_t *rec; /* stream index of each pair's record [pairs] */
    int32_t *kto;  /* KTO: 1 desirable, 0 undesirable [pairs] */
    int32_t *plen; /* KTO: prompt tokens of each row [pairs] */
    int cap_pairs;
    struct sw_mb *side; /* rejected sequences while reading (pairs); the KL batch (KTO) */
};
void sw_mb_release(struct sw_mb *mb);

/* The checks a stream must pass against the model. */
struct sw_data_limits {
    int64_t vocab_size;
    int64_t max_positions;        /* position ids must be below this */
    const char *tokenizer_sha256; /* of the model folder's tokenizer.json, or NULL */
    int rlhf; /* 0 SFT / pre-training; SW_TRAIN_PAIRS or SW_TRAIN_KTO (preference records) */
};
#define SW_TRAIN_PAIRS 1
#define SW_TRAIN_KTO 2

/* A training (or validation) source read record by record into micro-batches. */
struct sw_train_data {
    char *src;
    int reopenable; /* a regular file: epochs re-read it */
    struct sw_stream_opts sopts;
    struct sw_stream_reader *r;
    struct sw_data_limits lim;
    int64_t batch_size; /* samples per micro-batch */
    char header_sha256[65];
    int64_t epoch;        /* epochs started before the current one */
    int64_t used;         /* records of this epoch inside returned micro-batches */
    struct sw_mb pending; /* a batch record read while samples were being packed */
    int has_pending;
    int at_end;         /* the reader reached the end record this epoch */
    int samples;        /* stream_kind "samples" (micro-batches are packed samples) */
    int64_t max_length; /* the header's meta max_length, 0 when absent */
};

/* The largest micro-batch of a source (the activation estimate of the memory plan). */
struct sw_data_shape {
    int64_t max_tokens; /* B·T of the largest micro-batch, 0 when unknown */
    int64_t max_seqs;   /* most sequences (segments or rows) in one micro-batch */
    int padded;         /* some micro-batch has an attention_mask */
};

/* Open src and check its header against lim (meta vocab_size, max_length, tokenizer digest).
 * timeout_ms applies to ZeroMQ sources; interrupted (may be NULL) lets a signal stop a blocking
 * read with SW_EINTR (sw_stream_opts.interrupted). */
int sw_train_data_open(struct sw_train_data *d, const char *src, const struct sw_data_limits *lim,
                       int64_t batch_size, int timeout_ms, int (*interrupted)(void));
void sw_train_data_close(struct sw_train_data *d);
/* The next micro-batch into mb (reusing its buffers): 1, 0 at the end of the epoch, or an error
 * naming the stream and record. */
int sw_train_data_next(struct sw_train_data *d, struct sw_mb *mb);
/* Start the next epoch (re-open the file). SW_EINVAL for sources that cannot be re-read. */
int sw_train_data_next_epoch(struct sw_train_data *d);
/* Skip the first n records of the current epoch (resume). SW_ETRUNC if the epoch is shorter. */
int sw_train_data_skip(struct sw_train_data *d, int64_t n);
/* Micro-batches and records one epoch of src holds, and the shape of its largest micro-batch
 * (shape may be NULL). A full pass; validates every record. */
int sw_train_data_count(const char *src, const struct sw_data_limits *lim, int64_t batch_size,
                        int64_t *micro_batches, int64_t *records, struct sw_data_shape *shape);

/* The AdamW state of a run, in the backend's memory (sw_train_device.c), on every device:
 * parameters and gradients are the model's own tensors (op[i].data/grad point at them), the
 * moments live next to them, and a step runs on the backend (its sumsq, scale and adamw
 * members) without copying a tensor to the host. */
struct sw_train_dev {
    float **m, **v;  /* exp_avg / exp_avg_sq per trainable parameter (backend memory) */
    const float **g; /* the gradients (backend pointers), for be->sumsq */
    int64_t *n;      /* element counts */
    double *sumsq;   /* per-parameter Σ g² of the last step (host) */
    int64_t steps;   /* AdamW updates applied (torch's state["step"]) */
    struct sw_adamw_config cfg;
};

/* The memory plan (sw_train_memory.c): bytes per category, the micro-batch the activation
 * estimate is for, and the device's memory when the run started. */
struct sw_train_mem {
    size_t weights, grads, optim, acts;
    int64_t act_tokens;   /* 0: no estimate (a stream of unknown micro-batch size) */
    size_t free0, total0; /* device (CUDA) or host memory available at start */
};

/* Everything a run holds. */
struct sw_trainer {
    const struct sw_train_opts *o;
    struct sw_backend *be;
    /* precision (sw_train_setup.c): the dtype the run computes in, the backend's GEMM mode
     * (enum sw_matmul_precision; -1 on the CPU, which has fp32 only), and float16's loss
     * scaler */
    const char *dtype; /* "float32" | "bfloat16" | "float16" */
    int matmul;
    int fp16;
    struct sw_grad_scaler scaler; /* fp16 only; mirrored into st.loss_scale* after every step */
    struct sw_hfmodel *hf;        /* the --model folder (NULL with init_from_config only) */
    struct sw_model_config cfg;
    struct sw_model *m;
    int lora;
    struct sw_lora_config lc;
    char lora_targets[160]; /* modules that carry adapters, comma-separated */
    char *model_dir;        /* absolute --model path (tokenizer files, PEFT base) */
    char base_config_sha256[65];
    char tokenizer_sha256[65];
    /* trainable parameters (op[] holds backend pointers: host memory on the CPU, device
     * memory on CUDA) and their optimizer state, dev, driven through the backend on every
     * device (sw_train_device.c) */
    int np;
    struct sw_param **mp;
    struct sw_optim_param *op;
    struct sw_train_dev *dev;
    struct sw_train_mem mem;
    struct sw_data_shape shape; /* the largest micro-batch of the training data */
    struct sw_sched sched;
    double lr; /* base LR in effect */
    /* progress */
    struct sw_ckpt_state st;
    int64_t total_steps;
    int64_t steps_per_epoch;   /* 0 when unknown (a stream) */
    int64_t records_per_epoch; /* 0 when unknown */
    int64_t last_saved_step;
    struct sw_metrics *metrics;
    struct sw_train_data data;
    struct sw_mb *mbs; /* gradient_accumulation_steps micro-batches */
    struct sw_mb *val;
    int n_val;
    json_t *args;
    double t0;
    /* where this run writes (output_dir/vN-... or output_dir; sw_run_dir.h) and its reports
     * (TensorBoard, plots; sw_train_report.h), set up in sw_train.c */
    char *run_dir;
    struct sw_train_report *report;
    struct sw_train_pref *pref; /* --rlhf_type (sw_train_pref.c), else NULL */
    struct sw_train_grpo *grpo; /* --rlhf_type grpo (sw_train_grpo.c), else NULL */
    char *files_dir; /* where checkpoints take tokenizer files from when model_dir is NULL (the
                        stream's tokenizer, for init_from_config runs); NULL: none */
};

/* sw_train_setup.c — setup_model opens the backend and resolves the precision
 * (--torch_dtype / --bf16 / --fp16 against the device and the backend options' matmul mode,
 * i.e. $SW_CUDA_MATMUL; see docs/train.md), applying it to the backend before the model exists.
 * setup_optimizer opens sw_train_dev (below) on every backend. */
int sw_train_setup_model(struct sw_trainer *t, struct sw_ckpt *resume);
int sw_train_setup_optimizer(struct sw_trainer *t, struct sw_ckpt *resume);
void sw_train_teardown(struct sw_trainer *t);

/* sw_train_device.c — the optimizer, through the backend (the one optimizer path: the CPU
 * backend's adamw/sumsq/scale are sw_optim's arithmetic bit for bit).
 * open: moments allocated zeroed in backend memory, or filled from resume's
 * optimizer.safetensors (read through a host sw_adamw — on the CPU a view of the moments
 * themselves, elsewhere a copy that is uploaded — so the files are the same everywhere).
 * norm: the global L2 norm of every gradient (be->sumsq's total: sw_grad_norm's bits on the CPU,
 * per-tensor device sums added in parameter order on CUDA) and the index of the first parameter
 * whose gradient is non-finite (-1 if none).
 * update: multiply the gradients by unscale (1/loss scale in float16 runs, else 1) and the clip
 * coefficient of the true norm (coef as sw_grad_clip) in one pass, then AdamW with learning rate
 * lr, all on the backend.
 * host_optimizer: a host sw_adamw with the moments and step count (for a checkpoint; the caller
 * frees it): a view of them on the CPU, a downloaded copy elsewhere. close frees the state. */
int sw_train_dev_open(struct sw_trainer *t, struct sw_ckpt *resume);
int sw_train_dev_norm(struct sw_trainer *t, double *norm, int *first_bad);
int sw_train_dev_update(struct sw_trainer *t, double norm, double lr, double unscale);
int sw_train_dev_host_optimizer(struct sw_trainer *t, struct sw_adamw **out);
void sw_train_dev_close(struct sw_trainer *t);

/* sw_train_memory.c — mem_start records the memory available right after the backend opened;
 * mem_plan computes the plan (weights, gradients, optimizer state, activation estimate for the
 * largest micro-batch), prints it, and fails with SW_ENOMEM when the activations cannot fit in
 * what is free now; mem_report prints the measured peaks at the end. mem_oom turns an SW_ENOMEM
 * of one category ("weights", "gradients", "optimizer state", "activations") into a message
 * naming the category, the bytes it needs and what was free; other codes pass through. On CUDA,
 * mem_plan also reserves the planned activations (+3%) as the scratch arena's one chunk, so the
 * first step does not grow it piecemeal (an SW_ENOMEM there is reported as "activations"). */
void sw_train_mem_start(struct sw_trainer *t);
int sw_train_mem_plan(struct sw_trainer *t);
void sw_train_mem_report(struct sw_trainer *t);
int sw_train_mem_oom(struct sw_trainer *t, int rc, const char *category, size_t need);
/* "1.84 GiB" / "512.0 MiB" / "300 KiB" into buf (cap ≥ 16); returns buf. */
char *sw_train_fmt_bytes(char *buf, size_t cap, double bytes);

/* sw_train_save.c */
int sw_train_save(struct sw_trainer *t);
json_t *sw_train_args_json(const struct sw_train_opts *o);

#endif
