/* sw_kernels — the one operation interface between model code and a device.
 *
 * A backend is a table of function pointers (struct sw_backend) plus its private state: memory
 * management (parameters, gradients and a per-step scratch arena, all in the backend's memory)
 * and the forward/backward ops a decoder-only transformer needs. Model code (lib/model/)
 * only ever calls through this table, so the same model code drives the CPU reference
 * (kernels/cpu/<op>.c, OpenMP + OpenBLAS) and the CUDA implementation (kernels/cuda/<op>.cu,
 * same op names with the sw_cuda_ prefix instead of sw_cpu_). The ops are listed, with their
 * shapes and semantics, once, in kernels/sw_ops.def; the members below, both backends'
 * declarations and tables follow from that list.
 *
 * Conventions for every op:
 *  - Pointers are device pointers of the backend (host pointers for the CPU backend); float is
 *    IEEE float32; tensors are contiguous, row-major, shapes written outermost first as
 *    [rows, cols]. Integer index arrays (token ids, positions, targets, cu_seqlens) are int32
 *    and also live in backend memory.
 *  - Token-major layout: the activations of a batch are N = B·T token rows. Attention tensors are
 *    [N, H, D] (token, head, head_dim), exactly the layout a [N, H·D] projection writes.
 *  - "beta" arguments select overwrite (0) or accumulate (1): out = beta·out + result. Gradients of
 *    parameters are always accumulated (+=) so micro-batches add up; the caller zeros them.
 *  - Ops return 0 or a negative enum sw_err with the message set (bad index, device error).
 *  - Determinism: for the same inputs and thread count every op is bit-identical from run to run:
 *    no atomics, every reduction in a fixed order. The CPU ops split reductions by output column
 *    (never by thread), so they are even independent of the thread count, except matmul, whose
 *    summation order is OpenBLAS's (fixed for a fixed thread count).
 *
 * Besides the ops, the table carries everything a driver (sw-train, the benchmarks) needs from a
 * device, so nothing above kernels/ includes a backend's own header: the optimizer pieces (AdamW,
 * sums of squares, scaling), memory figures, the scratch reservation, the GEMM precision, per-op
 * profiling, device information and close. The backend's knobs (the SW_CUDA_* environment
 * variables, docs/cuda.md) are read in one place, sw_backend_opts_from_env, into struct
 * sw_backend_opts, which sw_backend_open_opts takes.
 */
#ifndef SW_KERNELS_H
#define SW_KERNELS_H

#include "sw_qformat.h"
#include "sw_tensor.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Label value that contributes nothing to the loss (HF's ignore_index). */
#define SW_IGNORE_INDEX (-100)

/* Families of ops a backend may or may not implement (supports_op): SW_OP_MATMUL,
 * SW_OP_EMBEDDING, SW_OP_RMSNORM, SW_OP_ROPE, SW_OP_ATTENTION, SW_OP_SWIGLU, SW_OP_ADD (add,
 * axpy), SW_OP_DROPOUT, SW_OP_CROSS_ENTROPY, SW_OP_OPTIMIZER (adamw, sumsq, scale), ... — one
 * per SW_FAMILY line of kernels/sw_ops.def, in its order. */
enum sw_op {
#define SW_FAMILY(FAM) SW_OP_##FAM,
#include "sw_ops.def"
    SW_OP_COUNT
};

/* GEMM precision of a backend's matmuls (also the LM-head products of cross-entropy and, in the
 * 16-bit modes, attention's tiles). FP32: exact float32 (parity tests; every backend's default,
 * the only mode of the CPU). TF32: tensor cores on float32 operands (10-bit mantissa products,
 * fp32 accumulation). BF16: operands rounded to bfloat16, fp32 accumulation and fp32 outputs —
 * the arithmetic of PyTorch's bf16 autocast with fp32 master weights; parameters, gradients and
 * activations stay float32. BF16_INLINE ("bf16i"): BF16 with the float32 → bfloat16 rounding
 * left to the GEMM library (cuBLASLt's CUBLAS_COMPUTE_32F_FAST_16BF) instead of a conversion pass
 * per operand. FP16: BF16 with IEEE half operands (10 mantissa bits, range ±65504: a larger
 * operand becomes ±inf) — fp16 autocast's arithmetic; training in it needs loss scaling. */
enum sw_matmul_precision {
    SW_MATMUL_FP32 = 0,
    SW_MATMUL_TF32 = 1,
    SW_MATMUL_BF16 = 2,
    SW_MATMUL_BF16_INLINE = 3,
    SW_MATMUL_FP16 = 4,
};
#define SW_MATMUL_COUNT 5
/* Parse "fp32" | "tf32" | "bf16" | "bf16i" | "fp16" into *out; SW_EINVAL (message naming the
 * accepted values) otherwise. */
int sw_matmul_precision_parse(const char *s, enum sw_matmul_precision *out);
/* The name sw_matmul_precision_parse reads for a mode ("?" for an unknown value). */
const char *sw_matmul_precision_name(int precision);

/* Memory of a backend's device, in bytes (mem_info). */
struct sw_mem_info {
    size_t in_use; /* held now: CUDA, the stream-ordered pool (parameters, gradients, scratch,
                      workspaces) plus cuBLASLt's workspace; CPU, the process's resident set */
    size_t peak;   /* the high-water mark of in_use (CPU: the process's max RSS) */
    size_t free;   /* what the device can still give: CUDA, cudaMemGetInfo's free (memory the
                      pool caches for reuse is not counted); CPU, MemAvailable */
    size_t total;  /* the device's memory (CPU: physical memory) */
};

/* What a backend runs on (device_info). */
struct sw_device_info {
    char name[256];         /* "NVIDIA H100 80GB HBM3", or the CPU's model name */
    size_t total_bytes;     /* device memory (CPU: physical memory) */
    int compute_units;      /* streaming multiprocessors (CUDA) or OpenMP threads (CPU) */
    int cc_major, cc_minor; /* CUDA compute capability; 0 on the CPU */
};

/* Options of a backend, fixed when it opens. sw_backend_opts_init fills the built-in defaults;
 * sw_backend_opts_from_env the defaults overridden by the environment (the SW_CUDA_* variables
 * named below, documented in docs/cuda.md) — the one place they are read. The CPU backend has
 * no options and ignores the struct. */
struct sw_backend_opts {
    int device_index;      /* SW_CUDA_DEVICE: which GPU (default 0) */
    int matmul;            /* SW_CUDA_MATMUL: enum sw_matmul_precision at open; -1 (default) for
                              the backend's default, fp32 */
    char matmul_src[64];   /* "SW_CUDA_MATMUL=<value>" when the environment chose matmul (for
                              messages that say what overrode what), else "" */
    size_t ce_chunk_bytes; /* SW_CUDA_CE_CHUNK_BYTES: logits bytes per chunk of the fused
                              cross-entropy (default 1 GiB) */
    size_t ce_keep_bytes;  /* SW_CUDA_CE_KEEP_BYTES: most bytes the 16-bit modes' cross-entropy
                              keeps its softmax gradient in from forward to backward (default
                              4 GiB; 0 = always recompute) */
};
void sw_backend_opts_init(struct sw_backend_opts *o);
/* Returns 0, or SW_EINVAL naming the variable and its value when one is malformed. */
int sw_backend_opts_from_env(struct sw_backend_opts *o);

struct sw_backend {
    const char *name; /* "cpu", "cuda" */
    enum sw_device device;
    void *ctx; /* implementation state (scratch arena, streams, handles) */

    /* 1 when every op of the family is there (sw_backend_supports_op: the members are set). */
    int (*supports_op)(const struct sw_backend *be, enum sw_op op);

    /* ---- memory ---------------------------------------------------------------------------
     * alloc: zero-filled persistent memory of bytes (parameters, gradients, optimizer state),
     * 64-byte aligned; NULL with sw_err set on failure. free accepts NULL. */
    void *(*alloc)(struct sw_backend *be, size_t bytes);
    void (*free)(struct sw_backend *be, void *p);
    /* Per-step scratch: bump allocation freed all at once by scratch_reset (activations kept
     * from forward to backward, temporaries). Not zeroed. scratch_peak = high-water mark. */
    void *(*scratch_alloc)(struct sw_backend *be, size_t bytes);
    void (*scratch_reset)(struct sw_backend *be);
    size_t (*scratch_peak)(const struct sw_backend *be);
    /* Copies: host → device, device → host, device → device; memset0 zeroes device memory. */
    int (*upload)(struct sw_backend *be, void *dst, const void *src, size_t bytes);
    int (*download)(struct sw_backend *be, void *dst, const void *src, size_t bytes);
    int (*copy)(struct sw_backend *be, void *dst, const void *src, size_t bytes);
    int (*memset0)(struct sw_backend *be, void *dst, size_t bytes);
    /* Wait until every queued op finished (no-op on CPU). */
    int (*sync)(struct sw_backend *be);
    /* Make the scratch arena one chunk of at least bytes, so a step that needs up to that much
     * allocates nothing (without it the first step grows the arena piece by piece). Like
     * scratch_reset it discards the arena's contents: call it between steps. Not counted in
     * scratch_peak. Returns 0 or SW_ENOMEM (the arena is then empty and grows on demand). */
    int (*scratch_reserve)(struct sw_backend *be, size_t bytes);
    /* The device's memory now (struct sw_mem_info). Returns 0 or SW_EDEVICE. */
    int (*mem_info)(struct sw_backend *be, struct sw_mem_info *out);

    /* ---- device, precision, profiling, lifetime -------------------------------------------
     * device_info: what the backend runs on. 0 or SW_EDEVICE.
     * set_precision: the GEMM precision of the ops that follow (enum sw_matmul_precision);
     *   SW_EINVAL for an unknown mode, SW_EUNSUPPORTED for one the backend lacks (the CPU has
     *   fp32 only). get_precision: the mode in effect.
     * profile_enable: on = 1 starts timing every op (a pair of device events around each; it
     *   costs a little per launch), 0 stops. profile_report synchronises, prints to out a table
     *   of total milliseconds, calls and share per op and shape (sorted by time), then clears
     *   the records. SW_EUNSUPPORTED where the backend cannot time ops (the CPU).
     * close: free the backend, its memory and the table itself (sw_backend_close calls it). */
    int (*device_info)(struct sw_backend *be, struct sw_device_info *out);
    int (*set_precision)(struct sw_backend *be, enum sw_matmul_precision precision);
    enum sw_matmul_precision (*get_precision)(const struct sw_backend *be);
    int (*profile_enable)(struct sw_backend *be, int on);
    int (*profile_report)(struct sw_backend *be, FILE *out);
    void (*close)(struct sw_backend *be);

    /* ---- the ops: one member per line of kernels/sw_ops.def, where each is documented -------
     * (matmul, embedding, RMSNorm, RoPE, attention, SwiGLU, elementwise, dropout,
     * cross-entropy, the optimizer's adamw/sumsq/scale, ...). NULL where the line says the
     * backend lacks the op (supports_op of its family is then 0). */
#define SW_OP(FAM, name, where, params) int(*name) params;
#include "sw_ops.def"
};

/* Open a backend for device (SW_DEVICE_CPU always; SW_DEVICE_CUDA when built with CUDA=1,
 * else SW_EUNSUPPORTED) with options o (NULL: sw_backend_opts_from_env's). The caller owns *out
 * and frees it with sw_backend_close. CUDA: SW_EDEVICE (no GPU, driver error), SW_EUNSUPPORTED
 * (a GPU older than compute capability 8.0), SW_EINVAL (a bad option) or SW_ENOMEM. */
int sw_backend_open_opts(enum sw_device device, const struct sw_backend_opts *o,
                         struct sw_backend **out);
/* sw_backend_open_opts with the environment's options. */
int sw_backend_open(enum sw_device device, struct sw_backend **out);
/* Free a backend and all its memory (be->close). Accepts NULL. */
void sw_backend_close(struct sw_backend *be);
/* Whether this build has a backend for device (the CPU always; CUDA with make CUDA=1). */
int sw_backend_available(enum sw_device device);
/* The supports_op member of every backend: op is a family (0 ≤ op < SW_OP_COUNT) whose ops are
 * all set in be's table. */
int sw_backend_supports_op(const struct sw_backend *be, enum sw_op op);

/* The CPU backend's constructor (kernels/cpu/backend.c); sw_backend_open calls it. */
int sw_cpu_backend_open(struct sw_backend **out);

/* ---- host-side helpers shared by every backend -------------------------------------------- */

/* RoPE frequency parameters (from sw_model_config). */
struct sw_rope_params {
    double theta;                             /* rope_theta */
    int type;                                 /* enum sw_rope_type: 0 default, 1 llama3, 2 linear */
    double factor;                            /* llama3 / linear */
    double low_freq_factor, high_freq_factor; /* llama3 */
    double original_max_position;             /* llama3 */
};

/* Fill host tables cos[P, D/2] and sin[P, D/2] for positions 0..P-1 the way transformers does
 * (inv_freq in float32 from theta^(2i/D), scaled for llama3/linear, angle = float(pos·inv_freq)).
 * D must be even. Returns 0 or SW_EINVAL. */
int sw_rope_tables(const struct sw_rope_params *rp, int64_t P, int64_t D, float *cos, float *sin);

/* The dropout mask bit shared by every backend: 1 keeps element i. Deterministic in (seed, i). */
static inline int sw_dropout_keep(uint64_t seed, uint64_t i, float p) {
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (i + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    /* 24 random bits → a uniform in [0, 1) exactly representable in float. */
    return (float)(z >> 40) * (1.0f / 16777216.0f) >= p;
}

#endif
