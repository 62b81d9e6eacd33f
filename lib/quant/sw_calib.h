/* sw_calib — calibration for sw-quant: the calibration rows (an sws stream from sw-pack, or the
 * built-in text), running them through the model with an observer on the decoder's linear inputs
 * (sw_model_set_linear_observer), and the calibrated quantizers GPTQ and AWQ over a whole HF
 * folder (sw_quantize_calibrated).
 *
 * Calibration rows. --dataset CALIB.sws: every "sample" record's input_ids is one row; a "batch"
 * record gives one row per sequence (cu_seqlens boundaries, else each row cut at its
 * attention_mask's last 1, else each row). Rows are cut to max_length tokens; the first
 * calib_rows are used, and a stream with fewer is an error (nothing is written). Without a
 * dataset the built-in text (256 Tiny Shakespeare speeches, sw_calib_text.c) is tokenized with
 * the model folder's tokenizer (special tokens added as `tokenizers` does). Token ids must be
 * below the model's vocab_size (an error names the record).
 *
 * Running. Rows are packed back to back (cu_seqlens: no attention across rows, positions from 0)
 * into forwards of at most 4096 tokens on the CPU backend with gradient checkpointing on (only
 * layer inputs kept). A run may stop after a given layer's linear has been observed, so that
 * calibrating layer l costs the forward of layers 0..l only.
 *
 * GPTQ (sw_gptq.h on each matrix): layer by layer, and inside a layer in GPTQ's true-sequential
 * order (q/k/v, o, gate/up, down): the Hessian H = 2·XᵀX / n of the group's input is collected
 * from a run over every row with the layers before it — and the groups of this layer before it —
 * already replaced by their quantized weights, so each linear is calibrated on the inputs the
 * quantized model will give it, as AutoGPTQ / GPTQModel do. (They cache each layer's inputs and
 * run one layer at a time; sw reruns the prefix of the model instead: the same numbers, about L/2
 * times the forward work.)
 *
 * AWQ (sw_awq.h): per layer, the inputs of q_proj, o_proj, gate_proj and down_proj are captured
 * from the float model (AutoAWQ also feeds every layer the float outputs of the one before);
 * scales are searched for the four groups AutoAWQ's Llama/Qwen2 definition has — q/k/v after
 * input_layernorm (block output: the attention output, from a model run with the candidate
 * q/k/v), o_proj after v_proj (only when their shapes agree: no GQA), gate/up after
 * post_attention_layernorm (block output: the MLP), down_proj after up_proj — then applied
 * (norm weights and the previous linear's rows divided, the group's columns multiplied), the
 * clipping search runs on v/o/gate/up/down (not q/k, as AutoAWQ), and the weights are
 * pseudo-quantized and packed. The folder's norm weights (and v_proj / up_proj biases) carry
 * the scales. */
#ifndef SW_CALIB_H
#define SW_CALIB_H

#include "sw_model.h"

#include <stdint.h>

/* Calibration rows: token ids, one array per row. */
struct sw_calib_rows {
    int64_t n;
    int32_t **ids;
    int64_t *len;
    int64_t tokens; /* Σ len */
};

struct sw_calib_data_opts {
    const char *dataset;   /* sws stream, or NULL for the built-in text */
    const char *tokenizer; /* folder with tokenizer.json (for the built-in text) */
    int64_t rows;          /* rows to use (> 0) */
    int64_t max_length;    /* tokens per row at most (> 0) */
    int64_t vocab_size;    /* ids must be below it */
};

int sw_calib_load(const struct sw_calib_data_opts *o, struct sw_calib_rows *r);
void sw_calib_rows_release(struct sw_calib_rows *r);
/* The built-in text: *n rows of UTF-8. */
const char *const *sw_calib_default_text(int *n);

/* A model on the CPU backend, float32 weights. */
struct sw_calib_model {
    struct sw_backend *be;
    struct sw_hfmodel *hf;
    struct sw_model *m;
};
int sw_calib_model_open(const char *dir, struct sw_calib_model *cm);
void sw_calib_model_close(struct sw_calib_model *cm);

/* Run every row through cm's model with fn observing every decoder linear's input. With
 * stop_layer >= 0, each forward ends right after fn has seen linear stop_kind (0 q_proj .. 6
 * down_proj, struct sw_linear_site's kind) of layer stop_layer. fn's errors end the run. */
int sw_calib_run(struct sw_calib_model *cm, const struct sw_calib_rows *rows,
                 sw_linear_observer_fn fn, void *ctx, int stop_layer, int stop_kind);

/* sw-quant quantize --quant_method gptq|awq. */
struct sw_calib_quant_opts {
    const char *model;      /* HF folder */
    const char *output_dir; /* folder to create */
    const char *method;     /* "gptq" | "awq" */
    int bits;               /* gptq: 4 or 8; awq: 4 */
    int64_t group_size;     /* > 0 (gptq also -1: per row) */
    int sym;                /* gptq: symmetric */
    int desc_act;           /* gptq: act-order */
    double damp_percent;    /* gptq: 0.01 */
    const char *dataset;    /* calibration stream or NULL */
    int64_t calib_rows, max_length;
    int force;
};

struct sw_calib_quant_stats {
    int n_quantized, n_kept;
    int64_t rows, tokens;
    uint64_t bytes_in, bytes_out;
    /* Σ over linears of the calibration output error tr(ΔW H ΔWᵀ) (GPTQ, with the Hessian of each
     * linear's own calibration inputs) for the method and for round-to-nearest at the same bits
     * and group size; AWQ: the clipped-and-scaled weights' block errors are not summed (0). */
    double err_method, err_rtn;
};

int sw_quantize_calibrated(const struct sw_calib_quant_opts *o, struct sw_calib_quant_stats *st);

#endif
