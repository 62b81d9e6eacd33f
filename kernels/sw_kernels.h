/* sw_kernels — the one operation interface between model code and a device.
 *
 * A backend is a table of function pointers (struct sw_backend) plus its private state: memory
 * management (parameters, gradients and a per-step scratch arena, all in the backend's memory)
 * and the forward/backward ops a decoder-only transformer needs. Model code (lib/sw_model*.c)
 * only ever calls through this table, so the same model code drives the CPU reference
 * (kernels/cpu/<op>.c, OpenMP + OpenBLAS) and the CUDA implementation (kernels/cuda/<op>.cu,
 * same op names with the sw_cuda_ prefix instead of sw_cpu_).
 *
 * Conventions for every op below:
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

#include "sw_tensor.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Label value that contributes nothing to the loss (HF's ignore_index). */
#define SW_IGNORE_INDEX (-100)

/* Ops a backend may or may not implement (supports_op). */
enum sw_op {
    SW_OP_MATMUL = 0,
    SW_OP_EMBEDDING,
    SW_OP_RMSNORM,
    SW_OP_ROPE,
    SW_OP_ATTENTION,
    SW_OP_SWIGLU,
    SW_OP_ADD,
    SW_OP_DROPOUT,
    SW_OP_CROSS_ENTROPY,
    SW_OP_OPTIMIZER, /* adamw, sumsq, scale */
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
    const char *name;       /* "cpu", "cuda" */
    enum sw_device device;
    void *ctx;              /* implementation state (scratch arena, streams, handles) */

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

    /* ---- matmul (nn.Linear) ----------------------------------------------------------------
     * matmul_fwd:  y[M,N] = alpha · x[M,K] · w[N,K]ᵀ + beta · y + b[N]   (b may be NULL)
     * matmul_bwd_dx: dx[M,K] = alpha · dy[M,N] · w[N,K] + beta · dx
     * matmul_bwd_dw: dw[N,K] = alpha · dy[M,N]ᵀ · x[M,K] + beta · dw
     * bias_bwd:      db[N]   = Σ_m dy[m,:] + beta · db       (rows summed in order m = 0..M-1) */
    int (*matmul_fwd)(struct sw_backend *be, float *y, const float *x, const float *w,
                      const float *b, int64_t M, int64_t N, int64_t K, float alpha, float beta);
    int (*matmul_bwd_dx)(struct sw_backend *be, float *dx, const float *dy, const float *w,
                         int64_t M, int64_t N, int64_t K, float alpha, float beta);
    int (*matmul_bwd_dw)(struct sw_backend *be, float *dw, const float *dy, const float *x,
                         int64_t M, int64_t N, int64_t K, float alpha, float beta);
    int (*bias_bwd)(struct sw_backend *be, float *db, const float *dy, int64_t M, int64_t N,
                    float beta);

    /* ---- embedding -------------------------------------------------------------------------
     * fwd: out[N,C] = table[ids[n], :]; an id outside [0, V) is SW_ERANGE naming the row.
     * bwd: dtable[V,C] += scatter of dout[N,C] by ids (rows added in order n = 0..N-1). */
    int (*embedding_fwd)(struct sw_backend *be, float *out, const int32_t *ids, const float *table,
                         int64_t N, int64_t V, int64_t C);
    int (*embedding_bwd)(struct sw_backend *be, float *dtable, const float *dout,
                         const int32_t *ids, int64_t N, int64_t V, int64_t C);

    /* ---- RMSNorm (HF LlamaRMSNorm: w · x / sqrt(mean(x²) + eps)) --------------------------
     * fwd: out[N,C], rstd[N] (saved for bwd: 1/sqrt(mean(x²)+eps)) from x[N,C], w[C].
     * bwd: dx[N,C] = beta·dx + ∂; dw[C] += ∂ (NULL skips dw, for a frozen weight). */
    int (*rmsnorm_fwd)(struct sw_backend *be, float *out, float *rstd, const float *x,
                       const float *w, int64_t N, int64_t C, float eps);
    int (*rmsnorm_bwd)(struct sw_backend *be, float *dx, float *dw, const float *dout,
                       const float *x, const float *w, const float *rstd, int64_t N, int64_t C,
                       float beta);

    /* ---- RoPE (rotate-half, as HF Llama) ---------------------------------------------------
     * In place on x[N,H,D] (D even): with c = cos[pos[n], i], s = sin[pos[n], i], i < D/2,
     *   fwd: (x1, x2) ← (x1·c − x2·s, x2·c + x1·s)  for x1 = x[..., i], x2 = x[..., i + D/2]
     *   bwd: the transpose (rotation by −θ), applied to the gradient in place.
     * cos/sin are [P, D/2] tables (sw_rope_tables); pos[N] in [0, P) else SW_ERANGE. */
    int (*rope_fwd)(struct sw_backend *be, float *x, const int32_t *pos, const float *cos,
                    const float *sin, int64_t N, int64_t H, int64_t D, int64_t P);
    int (*rope_bwd)(struct sw_backend *be, float *dx, const int32_t *pos, const float *cos,
                    const float *sin, int64_t N, int64_t H, int64_t D, int64_t P);

    /* ---- attention (causal, GQA, packed variable-length) -----------------------------------
     * q[N,Hq,D], k[N,Hk,D], v[N,Hk,D] → out[N,Hq,D], lse[N,Hq] (natural-log logsumexp of the
     * scaled scores of each query row, saved for the backward). Hq is a multiple of Hk: query
     * head h reads kv head h / (Hq/Hk). The N tokens are nseq segments: segment s covers rows
     * [cu_seqlens[s], cu_seqlens[s+1]) (cu_seqlens[0] = 0, cu_seqlens[nseq] = N, non-decreasing).
     * max_len is the longest segment (a host value so a device kernel can size its grid
     * without reading cu_seqlens back; 0 = not given); a longer segment is SW_EINVAL.
     * kv_len[nseq] (NULL = full segments) is the number of valid leading tokens of a segment
     * (right padding): query i (0-based inside its segment) attends to keys j with
     * j ≤ i and j < kv_len — so padded query rows see every valid key, as HF's padded masks
     * give, and no row ever sees another segment. kv_len[s] = 0 (a fully padded row) gives
     * zero outputs, lse 0 and zero gradients.
     * scale is usually 1/sqrt(D). The CPU version works one query row of one head at a time
     * (O(T) scratch per thread), never a T×T matrix.
     * bwd: dq[N,Hq,D], dk[N,Hk,D], dv[N,Hk,D] (overwritten) from dout[N,Hq,D] and the saved
     * out and lse; recomputes probabilities flash-style. */
    int (*attention_fwd)(struct sw_backend *be, float *out, float *lse, const float *q,
                         const float *k, const float *v, const int32_t *cu_seqlens,
                         const int32_t *kv_len, int nseq, int64_t max_len, int64_t N,
                         int64_t Hq, int64_t Hk, int64_t D, float scale);
    int (*attention_bwd)(struct sw_backend *be, float *dq, float *dk, float *dv,
                         const float *dout, const float *q, const float *k, const float *v,
                         const float *out, const float *lse, const int32_t *cu_seqlens,
                         const int32_t *kv_len, int nseq, int64_t max_len, int64_t N,
                         int64_t Hq, int64_t Hk, int64_t D, float scale);

    /* ---- SwiGLU: out[n] = silu(gate[n]) · up[n] over n elements --------------------------
     * bwd: dgate[n], dup[n] (overwritten) from dout[n], gate[n], up[n]. */
    int (*swiglu_fwd)(struct sw_backend *be, float *out, const float *gate, const float *up,
                      int64_t n);
    int (*swiglu_bwd)(struct sw_backend *be, float *dgate, float *dup, const float *dout,
                      const float *gate, const float *up, int64_t n);

    /* ---- elementwise -----------------------------------------------------------------------
     * add:  out[n] = a[n] + b[n]   (out may alias a or b; residual connections)
     * axpy: y[n] += alpha · x[n]   (gradient accumulation) */
    int (*add)(struct sw_backend *be, float *out, const float *a, const float *b, int64_t n);
    int (*axpy)(struct sw_backend *be, float *y, const float *x, float alpha, int64_t n);

    /* ---- dropout (inverted; mask from a counter-based hash, never stored) ----------------
     * fwd: out[n] = x[n] · keep(seed, i) / (1 − p); bwd: dx[n] = dout[n] · the same factor.
     * keep(seed, i) = sw_dropout_keep(seed, i, p): identical on every backend. */
    int (*dropout_fwd)(struct sw_backend *be, float *out, const float *x, int64_t n, float p,
                       uint64_t seed);
    int (*dropout_bwd)(struct sw_backend *be, float *dx, const float *dout, int64_t n, float p,
                       uint64_t seed);

    /* ---- cross-entropy ---------------------------------------------------------------------
     * targets[N]: class index in [0, V) or SW_IGNORE_INDEX (already shifted: the target of row
     * n is the token that follows n). Loss of a row: lse(logits) − logits[target].
     *
     * Fused with the LM head, chunked (training): logits = h[N,C] · w[V,C]ᵀ are formed
     * chunk_rows rows at a time in scratch ([chunk_rows, V]), never all at once.
     *   ce_fused_fwd: loss[N] (0 for ignored rows), lse[N].
     *   ce_fused_bwd: with g = grad_scale · (softmax(logits) − onehot(target)) per valid row
     *     (0 for ignored rows): dh[N,C] = g · w + beta·dh; dw[V,C] += gᵀ · h (dw NULL skips).
     * Full logits (eval / parity): ce_logits_fwd: loss[N], lse[N] from logits[N,V]. */
    int (*ce_fused_fwd)(struct sw_backend *be, float *loss, float *lse, const float *h,
                        const float *w, const int32_t *targets, int64_t N, int64_t V, int64_t C,
                        int64_t chunk_rows);
    int (*ce_fused_bwd)(struct sw_backend *be, float *dh, float *dw, const float *h,
                        const float *w, const int32_t *targets, const float *lse, int64_t N,
                        int64_t V, int64_t C, int64_t chunk_rows, float grad_scale, float beta);
    int (*ce_logits_fwd)(struct sw_backend *be, float *loss, float *lse, const float *logits,
                         const int32_t *targets, int64_t N, int64_t V);

    /* ---- optimizer (the device-resident step of sw-train; lib/train/sw_optim.h) ------------
     * adamw: one torch.optim.AdamW update of n float32 elements: p, exp_avg m and exp_avg_sq v
     *   updated in place from grad g, in torch's order (sw_optim.h gives the formula): step is
     *   the step count after increment (≥ 1, else SW_EINVAL); weight decay wd applies only when
     *   decay is 1. The scalars (bias corrections, 1 − lr·wd, ...) are computed in double on the
     *   host and rounded to float once, each element rounds as sw_optim's host update does, so
     *   every backend takes the same step bit for bit (the CPU's is sw_adamw_step's arithmetic).
     * sumsq: the sums of squares of count float32 arrays x[i] of n[i] elements (host arrays of
     *   backend pointers and sizes) in double, into the HOST arrays out[count]; *total (may be
     *   NULL) is their sum. Both in a fixed order that depends only on the sizes — the same bits
     *   on every run (CUDA: every GPU); out[i] is non-finite exactly when x[i] holds a NaN or
     *   ±Inf. The CPU sums chunks of 2^15 elements in order, as sw_grad_norm (whose result is
     *   sqrt(*total) bit for bit); CUDA sums each array over a fixed grid, *total the out[i] in
     *   order. Synchronises (the sums are on the host).
     * scale: x[n] ← x[n] · f, one float32 rounding (sw_grad_clip's product, bit for bit). */
    int (*adamw)(struct sw_backend *be, float *p, const float *g, float *m, float *v, int64_t n,
                 double lr, double beta1, double beta2, double eps, double wd, int decay,
                 int64_t step);
    int (*sumsq)(struct sw_backend *be, const float *const *x, const int64_t *n, int count,
                 double *out, double *total);
    int (*scale)(struct sw_backend *be, float *x, int64_t n, float f);
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

/* The CPU backend's constructor (kernels/cpu/backend.c); sw_backend_open calls it. */
int sw_cpu_backend_open(struct sw_backend **out);

/* ---- host-side helpers shared by every backend -------------------------------------------- */

/* RoPE frequency parameters (from sw_model_config). */
struct sw_rope_params {
    double theta;          /* rope_theta */
    int type;              /* enum sw_rope_type: 0 default, 1 llama3, 2 linear */
    double factor;         /* llama3 / linear */
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
