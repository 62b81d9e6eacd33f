/* sw_imatrix — llama.cpp's importance matrix computed by sw (sw-quant imatrix), written in the
 * GGUF format of current llama-imatrix (tools/imatrix/imatrix.cpp save_imatrix), which
 * llama-quantize, sw-quant gguf --imatrix (sw_gguf_export.h's reader) and llama.cpp's loaders
 * read:
 *   general.type          "imatrix"
 *   imatrix.datasets      [string] the calibration source
 *   imatrix.chunk_count   u32 calibration rows
 *   imatrix.chunk_size    u32 tokens per row at most (--max_length)
 *   <name>.in_sum2        F32 ne = [in, 1]  Σ over tokens of x[i]² of the linear's input
 *   <name>.counts         F32 ne = [1, 1]   the number of tokens
 * for every decoder linear under llama.cpp's GGUF tensor name (blk.N.attn_q.weight, attn_k,
 * attn_v, attn_output, ffn_gate, ffn_up, ffn_down; llama-imatrix also records each of q/k/v and
 * gate/up separately although they share an input), in sorted name order. The output matrix is
 * left out, as llama-imatrix does without --process-output. Importance = in_sum2 / counts, the
 * mean squared input per column, which the quantizers weight their fits with (sw_ggml_quant.h).
 * The calibration rows and runs are sw_calib.h's (an sws stream, or the built-in text). */
#ifndef SW_IMATRIX_H
#define SW_IMATRIX_H

#include <stdint.h>

struct sw_imatrix_opts {
    const char *model;   /* HF folder */
    const char *output;  /* FILE.gguf (written atomically) */
    const char *dataset; /* sws stream or NULL: built-in text */
    int64_t calib_rows, max_length;
    int force;
};

struct sw_imatrix_stats {
    int n_entries;
    int64_t rows, tokens;
};

int sw_imatrix_compute(const struct sw_imatrix_opts *o, struct sw_imatrix_stats *st);

/* llama.cpp's GGUF name of decoder linear kind (0 q_proj .. 6 down_proj) of layer l into buf. */
void sw_imatrix_tensor_name(int layer, int kind, char *buf, int n);

#endif
