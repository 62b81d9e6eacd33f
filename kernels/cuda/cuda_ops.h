// cuda_ops.h — what the files of kernels/cuda/ share: the backend's private state (stream,
// cuBLASLt handle, workspaces, device error flag, profiler), launch/error helpers and the
// declarations of the sw_cuda_<op> kernels that kernels/cuda/backend.cu puts into the CUDA
// struct sw_backend, generated from the op list kernels/sw_ops.def (signatures, tensor shapes
// and semantics are written there once). Internal to kernels/cuda/ (C++ only).
#ifndef SW_CUDA_OPS_H
#define SW_CUDA_OPS_H

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

extern "C" {
#include "sw_cuda.h"
#include "sw_err.h"
#include "sw_kernels.h"
}

// ---- device-side error reporting ------------------------------------------------------------
// Kernels cannot return an error, and reading back after every op would serialise the GPU. A
// kernel that meets bad data (a token id outside the vocabulary, a position outside the RoPE
// table, malformed cu_seqlens) skips the bad element and records the first such event in this
// record, which lives in mapped pinned host memory. The host checks it at every sync and
// download (which the model does at the end of each forward), and at the start of every op,
// and turns it into SW_ERANGE / SW_EINVAL naming the op, the row and the value.
enum sw_cuda_fault {
    SW_CUDA_FAULT_NONE = 0,
    SW_CUDA_FAULT_EMBED_FWD,
    SW_CUDA_FAULT_EMBED_BWD,
    SW_CUDA_FAULT_ROPE_FWD,
    SW_CUDA_FAULT_ROPE_BWD,
    SW_CUDA_FAULT_CE_TARGET,
    SW_CUDA_FAULT_ATT_CU,
    SW_CUDA_FAULT_ATT_KVLEN,
    SW_CUDA_FAULT_ATT_MAXLEN,
};
struct sw_cuda_faultrec {
    int code; // enum sw_cuda_fault, first writer wins (atomicCAS from 0)
    int pad;
    long long row;   // row / segment index
    long long value; // offending value
    long long limit; // the bound it broke
};
__device__ inline void sw_cuda_fault_raise(sw_cuda_faultrec *f, int code, long long row,
                                           long long value, long long limit) {
    if (atomicCAS(&f->code, 0, -1) == 0) { // claim, fill, then publish the code
        f->row = row;
        f->value = value;
        f->limit = limit;
        __threadfence_system();
        atomicExch(&f->code, code);
    }
}

// ---- profiler ---------------------------------------------------------------------------------
// With profiling on (sw_cuda_profile_enable), every op records a pair of CUDA events; at report
// time the elapsed times are summed per (op, shape key). Off by default: zero cost then.
struct sw_cuda_prof_rec {
    const char *op;
    long long k0, k1, k2;
    cudaEvent_t e0, e1;
};

// BF16 and FP16 are the two 16-bit modes: GEMM operands, attention tiles and the CE gradient in
// that type, fp32 accumulation ("half" below means whichever of the two the mode uses).
enum sw_cuda_gemm_prec {
    SW_CUDA_GEMM_FP32 = 0,
    SW_CUDA_GEMM_TF32,
    SW_CUDA_GEMM_BF16,
    SW_CUDA_GEMM_FP16
};

struct sw_cuda_gemm_plan; // cached cuBLASLt descriptors + algorithm (matmul.cu)

// One converted GEMM operand (gemm_memo.cu): src[0..n) in 16-bit prec, in buf (cap bytes).
#define SW_CUDA_MEMO_SLOTS 4
struct sw_cuda_memo_slot {
    const float *src;
    int64_t n;
    int prec;
    void *buf;
    size_t cap;
    unsigned long long last_use;
};
// Bumped by every launch, op entry and memory operation outside the GEMM path: a GEMM that sees
// it moved drops every memoised copy (gemm_memo.cu explains the rule).
extern unsigned long long sw_cuda_epoch;

struct sw_cuda_ctx {
    int device;
    cudaStream_t stream;
    cublasLtHandle_t lt;
    void *lt_ws; // cuBLASLt workspace
    size_t lt_ws_bytes;
    int sm_count;
    struct sw_cuda_info info;           // the device (device_info)
    enum sw_cuda_gemm_prec prec;        // GEMM precision (set_precision; SW_CUDA_MATMUL at open)
    int bf16_inline;                    // bf16: let cuBLASLt round float32 operands (FAST_16BF)
    enum sw_matmul_precision precision; // the public mode prec/bf16_inline came from
    size_t ce_chunk_bytes;              // logits budget of a fused cross-entropy chunk (options)
    size_t ce_keep_bytes;               // budget of the kept 16-bit CE gradient (options)
    // Scratch arena: chunks bump-allocated in order; reset rewinds and, if the last step needed
    // more than one chunk, replaces them by one chunk of what that step asked for (need).
    struct chunk {
        char *base;
        size_t cap, used;
    } * chunks;
    int nchunks, cur;
    size_t in_use, peak;
    size_t need; // bytes handed out since the last reset (256-byte granules, no chunk tails)
    // Workspaces private to one op call (stream-ordered, grown on demand): ws[0] for an op's
    // own temporaries, ws[1] for GEMM operand conversion (an op may call a GEMM while holding
    // ws[0]).
    void *ws[2];
    size_t ws_bytes[2];
    // Device error record (mapped pinned host memory) and its device alias.
    sw_cuda_faultrec *fault_h, *fault_d;
    // Profiler.
    int prof_on;
    sw_cuda_prof_rec *prof;
    int prof_n, prof_cap;
    struct sw_cuda_gemm_plan *plans;
    int nplans, cap_plans;
    size_t alloc_bytes, alloc_peak; // persistent allocations (alloc/free)
    // 16-bit copies of float32 GEMM operands reused across consecutive GEMMs (gemm_memo.cu).
    sw_cuda_memo_slot memo[SW_CUDA_MEMO_SLOTS];
    unsigned long long memo_epoch, memo_tick;
    // Cross-entropy gradient (softmax − onehot, 16-bit [N, V]) kept by ce_fused_fwd for the
    // ce_fused_bwd of the same (h, w, targets, shape, mode) (cross_entropy.cu).
    void *ce_keep;
    size_t ce_keep_cap;
    struct {
        const float *h, *w;
        const int32_t *t;
        int64_t N, V, C;
        int prec;
    } ce_key;
};

static inline sw_cuda_ctx *sw_cuda_ctx_of(struct sw_backend *be) {
    return (sw_cuda_ctx *)be->ctx;
}

// A 16-bit mode (bf16, bf16i or fp16): GEMM operands and the CE gradient in "half" precision.
static inline int sw_cuda_half_mode(const sw_cuda_ctx *c) {
    return c->prec == SW_CUDA_GEMM_BF16 || c->prec == SW_CUDA_GEMM_FP16;
}

// Check the device error record; 0 or the sw_err it maps to (message set). Non-blocking.
int sw_cuda_fault_check(sw_cuda_ctx *c);
// A workspace of at least bytes (index 0 or 1, see above); NULL with sw_err set.
void *sw_cuda_ws(sw_cuda_ctx *c, int which, size_t bytes);
// After a launch: the launch error (bad configuration) as SW_EDEVICE naming op, else 0.
int sw_cuda_launch_check(const char *op);

// RAII profiler scope: records op's start/end events when profiling is on.
struct sw_cuda_prof_scope {
    sw_cuda_ctx *c;
    int idx;
    sw_cuda_prof_scope(sw_cuda_ctx *ctx, const char *op, long long k0 = 0, long long k1 = 0,
                       long long k2 = 0);
    ~sw_cuda_prof_scope();
};

// Common entry of every op: the profiler scope plus the fault check.
#define SW_CUDA_OP(be, opname, ...)                                                                \
    sw_cuda_ctx *c = sw_cuda_ctx_of(be);                                                           \
    sw_cuda_prof_scope prof_scope_(c, opname, ##__VA_ARGS__);                                      \
    sw_cuda_epoch++;                                                                               \
    SW_TRY(sw_cuda_fault_check(c))
// The same for the GEMM ops (matmul.cu), which keep the operand memo.
#define SW_CUDA_GEMM_OP(be, opname, ...)                                                           \
    sw_cuda_ctx *c = sw_cuda_ctx_of(be);                                                           \
    sw_cuda_prof_scope prof_scope_(c, opname, ##__VA_ARGS__);                                      \
    SW_TRY(sw_cuda_fault_check(c))

#define SW_CUDA_LAUNCHED(opname)                                                                   \
    do {                                                                                           \
        sw_cuda_epoch++;                                                                           \
        SW_TRY(sw_cuda_launch_check(opname));                                                      \
    } while (0)

// Blocks for a grid-stride elementwise kernel over n items.
static inline unsigned sw_cuda_blocks(int64_t n, int threads) {
    int64_t b = (n + threads - 1) / threads;
    if (b < 1) b = 1;
    if (b > 65535LL * 16) b = 65535LL * 16;
    return (unsigned)b;
}

// ---- GEMM core (matmul.cu), row-major operands as in sw_kernels.h ----------------------------
// C[M,N] = alpha · op(A) · op(B) + beta · C (+ bias[N] when bias != NULL), where op(A) is
// A[M,K] (ta = 0) or A stored [K,M] (ta = 1), op(B) is B[K,N] (tb = 0) or B stored [N,K]
// (tb = 1). Precision: the context's mode (fp32 exact, tf32, or bf16 / fp16 operands with fp32
// accumulation and fp32 C). what names the caller in errors.
int sw_cuda_gemm(sw_cuda_ctx *c, const char *what, float *C, const float *A, const float *B,
                 const float *bias, int64_t M, int64_t N, int64_t K, int ta, int tb, float alpha,
                 float beta);
// The same with operands that may already be in the mode's 16-bit type (a_half / b_half = 1:
// __nv_bfloat16 in bf16 mode, __half in fp16 mode; 16-bit modes only, as written by
// sw_cuda_to_half), so a caller that reuses one operand across several products converts it once.
int sw_cuda_gemm_mixed(sw_cuda_ctx *c, const char *what, float *C, const void *A, int a_half,
                       const void *B, int b_half, const float *bias, int64_t M, int64_t N,
                       int64_t K, int ta, int tb, float alpha, float beta);
// dst[n] = bf16(src[n]) (round to nearest even), on the stream.
int sw_cuda_to_bf16(sw_cuda_ctx *c, const char *what, __nv_bfloat16 *dst, const float *src,
                    int64_t n);
// dst[n] = src[n] in the mode's 16-bit type (2 bytes each, round to nearest even): bf16 in bf16
// mode, fp16 in fp16 mode, where |x| beyond fp16's range (≥ 65520) becomes ±inf — what loss
// scaling detects as an overflow. SW_EINVAL outside the 16-bit modes.
int sw_cuda_to_half(sw_cuda_ctx *c, const char *what, void *dst, const float *src, int64_t n);
void sw_cuda_gemm_plans_free(sw_cuda_ctx *c);
// Operand memo (gemm_memo.cu): begin drops every copy if anything but a GEMM ran since the last
// end; memo_half returns the 16-bit copy of src[0..n) (converting it if needed; NULL with
// sw_err set); end drops the copies whose source overlaps the GEMM output [written, +bytes).
void sw_cuda_memo_begin(sw_cuda_ctx *c);
const void *sw_cuda_memo_half(sw_cuda_ctx *c, const char *what, const float *src, int64_t n);
void sw_cuda_memo_end(sw_cuda_ctx *c, const void *written, size_t bytes);
void sw_cuda_memo_clear(sw_cuda_ctx *c);

// ---- ops: sw_cuda_<name> for every line of kernels/sw_ops.def that CUDA implements ------------
// (where ALL; a line marked CPU has no CUDA kernel yet and its member stays NULL).
#define SW_CUDA_OP_DECL_ALL(name, params) int sw_cuda_##name params;
#define SW_CUDA_OP_DECL_CPU(name, params)
#define SW_OP(FAM, name, where, params) SW_CUDA_OP_DECL_##where(name, params)
#include "sw_ops.def"

// ---- helpers of the ops ------------------------------------------------------------------------
// Deterministic column sums used by rmsnorm dw and bias_bwd: out[C] = beta·out + Σ_n f(n, c)
// over rows in two fixed-order stages (see rmsnorm.cu).
int sw_cuda_colsum(sw_cuda_ctx *c, const char *what, float *out, const float *a, const float *b,
                   const float *rowscale, int64_t N, int64_t C, float beta);

// FlashAttention-2-style kernels of attention_mma.cu (mma.sync, register-resident scores), used
// by attention_fwd / attention_bwd (attention.cu) in the 16-bit modes; bf16 or fp16 tiles by
// c->prec. dp is head_dim rounded up to 16/32/64/128, ntiles from max_len, delta the
// Σ dout·out of the backward. Arguments checked by the callers.
int sw_cuda_attention_fwd_mma(sw_cuda_ctx *c, int dp, float *out, float *lse, const float *q,
                              const float *k, const float *v, const int32_t *cu,
                              const int32_t *kv_len, int nseq, int ntiles, int64_t N, int Hq,
                              int Hk, int D, float scale);
int sw_cuda_attention_bwd_mma(sw_cuda_ctx *c, int dp, float *dq, float *dk, float *dv,
                              const float *dout, const float *q, const float *k, const float *v,
                              const float *lse, const float *delta, const int32_t *cu,
                              const int32_t *kv_len, int nseq, int ntiles, int64_t N, int Hq,
                              int Hk, int D, float scale);

// Backend services defined outside backend.cu (optim.cu): free/total device memory.
int sw_cuda_mem_free_total(sw_cuda_ctx *c, size_t *free_bytes, size_t *total_bytes);

#endif
