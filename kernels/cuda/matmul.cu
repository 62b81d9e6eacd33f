// matmul.cu — nn.Linear forward and its backward products through cuBLASLt, and the bias
// gradient as a deterministic column sum.
//
// Shapes (row-major, as kernels/sw_kernels.h): x[M,K], w[N,K] (out × in), b[N], y[M,N].
// cuBLASLt is column-major: a row-major C[M,N] is the column-major Cᵀ[N,M], so every product
// C = op(A)·op(B) is issued as Cᵀ = op(B)ᵀ·op(A)ᵀ with the operands swapped (sw_cuda_gemm).
//
// Precision (set_precision / SW_CUDA_MATMUL at open): fp32 (CUBLAS_COMPUTE_32F, exact
// single precision, the parity mode), tf32 (CUBLAS_COMPUTE_32F_FAST_TF32 on the float32
// operands) or bf16 (both operands rounded to bfloat16 into a workspace by one conversion
// kernel each, then a bf16×bf16 → fp32 product with fp32 accumulation: the arithmetic of
// torch.autocast(bfloat16) with fp32 master weights; outputs and accumulated gradients stay
// float32); bf16i leaves that rounding to cuBLASLt (CUBLAS_COMPUTE_32F_FAST_16BF on the float32
// operands, no conversion pass); fp16 is bf16 with IEEE half operands (CUDA_R_16F: 10 mantissa
// bits but a range of ±65504 — larger values become ±inf, which sw-train's loss scaling catches:
// torch.autocast(float16) + GradScaler). Descriptors and the heuristic's algorithm are cached
// per (precision, shape, transposes, bias, beta ≠ 0, pointer alignment) so a training step makes
// no heuristic call after the first. The bias rides the BIAS epilogue where cuBLASLt offers one,
// else a separate broadcast kernel writes beta·y + b first.
#include "cuda_ops.h"

#include <cstdlib>
#include <cstring>

// Plan precisions: the modes of enum sw_cuda_gemm_prec, plus float32 operands with bf16
// tensor-core compute (bf16i).
#define PLAN_F32_FAST16BF 100

struct sw_cuda_gemm_plan {
    int prec, ta, tb, has_bias, beta_nz, align;
    int64_t M, N, K;
    int bias_epilogue; // 0: bias added by a separate kernel
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
};

static int lt_check(cublasStatus_t s, const char *what, const char *call) {
    if (s == CUBLAS_STATUS_SUCCESS) return 0;
    return sw_err_set(s == CUBLAS_STATUS_ALLOC_FAILED ? SW_ENOMEM : SW_EDEVICE, "%s: %s failed: %s",
                      what, call, cublasLtGetStatusString(s));
}
#define LT(call) SW_TRY(lt_check((call), what, #call))

static void plan_release(sw_cuda_gemm_plan *p) {
    if (p->op) cublasLtMatmulDescDestroy(p->op);
    if (p->la) cublasLtMatrixLayoutDestroy(p->la);
    if (p->lb) cublasLtMatrixLayoutDestroy(p->lb);
    if (p->lc) cublasLtMatrixLayoutDestroy(p->lc);
    memset(p, 0, sizeof(*p));
}

void sw_cuda_gemm_plans_free(sw_cuda_ctx *c) {
    for (int i = 0; i < c->nplans; i++)
        plan_release(&c->plans[i]);
    free(c->plans);
    c->plans = NULL;
    c->nplans = c->cap_plans = 0;
}

// The largest power of two ≤ 256 dividing the address (cuBLASLt's alignment preference).
static int ptr_align(const void *p) {
    uintptr_t a = (uintptr_t)p;
    int al = 256;
    while (al > 4 && (a % (uintptr_t)al))
        al >>= 1;
    return al;
}

// Build descriptors and pick an algorithm; with_bias tries the BIAS epilogue.
static int plan_build(sw_cuda_ctx *c, const char *what, sw_cuda_gemm_plan *p, int with_bias, int aA,
                      int aB, int aC) {
    cudaDataType_t ab = p->prec == SW_CUDA_GEMM_BF16   ? CUDA_R_16BF
                        : p->prec == SW_CUDA_GEMM_FP16 ? CUDA_R_16F
                                                       : CUDA_R_32F;
    cublasComputeType_t ct = p->prec == SW_CUDA_GEMM_TF32   ? CUBLAS_COMPUTE_32F_FAST_TF32
                             : p->prec == PLAN_F32_FAST16BF ? CUBLAS_COMPUTE_32F_FAST_16BF
                                                            : CUBLAS_COMPUTE_32F;
    // Column-major view: C'[N,M] = op(B') · op(A') with B' = our B, A' = our A.
    cublasOperation_t opa = p->tb ? CUBLAS_OP_T : CUBLAS_OP_N; // first operand: our B
    cublasOperation_t opb = p->ta ? CUBLAS_OP_T : CUBLAS_OP_N; // second operand: our A
    uint64_t a_rows = p->tb ? p->K : p->N, a_cols = p->tb ? p->N : p->K;
    uint64_t b_rows = p->ta ? p->M : p->K, b_cols = p->ta ? p->K : p->M;
    LT(cublasLtMatmulDescCreate(&p->op, ct, CUDA_R_32F));
    LT(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof(opa)));
    LT(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof(opb)));
    if (with_bias) {
        cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_BIAS;
        cudaDataType_t bt = CUDA_R_32F;
        LT(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof(ep)));
        LT(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt,
                                          sizeof(bt)));
    }
    LT(cublasLtMatrixLayoutCreate(&p->la, ab, a_rows, a_cols, (int64_t)a_rows));
    LT(cublasLtMatrixLayoutCreate(&p->lb, ab, b_rows, b_cols, (int64_t)b_rows));
    LT(cublasLtMatrixLayoutCreate(&p->lc, CUDA_R_32F, (uint64_t)p->N, (uint64_t)p->M, p->N));
    cublasLtMatmulPreference_t pref;
    LT(cublasLtMatmulPreferenceCreate(&pref));
    uint32_t ua = (uint32_t)aA, ub = (uint32_t)aB, uc = (uint32_t)aC;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                         &c->lt_ws_bytes, sizeof(c->lt_ws_bytes));
    // Our A is cuBLASLt's B and vice versa.
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &ub,
                                         sizeof(ub));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &ua,
                                         sizeof(ua));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &uc,
                                         sizeof(uc));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &uc,
                                         sizeof(uc));
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(c->lt, p->op, p->la, p->lb, p->lc, p->lc,
                                                      pref, 1, &res, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (s != CUBLAS_STATUS_SUCCESS || found < 1)
        return sw_err_set(SW_EDEVICE, "%s: no cuBLASLt algorithm for %lldx%lldx%lld (%s)", what,
                          (long long)p->M, (long long)p->N, (long long)p->K,
                          cublasLtGetStatusString(s));
    p->algo = res.algo;
    p->bias_epilogue = with_bias;
    return 0;
}

static int plan_get(sw_cuda_ctx *c, const char *what, int prec, int ta, int tb, int64_t M,
                    int64_t N, int64_t K, int has_bias, int beta_nz, const void *A, const void *B,
                    const void *C, sw_cuda_gemm_plan **out) {
    int aA = ptr_align(A), aB = ptr_align(B), aC = ptr_align(C);
    int align = aA | (aB << 9) | (aC << 18);
    for (int i = 0; i < c->nplans; i++) {
        sw_cuda_gemm_plan *p = &c->plans[i];
        if (p->prec == prec && p->ta == ta && p->tb == tb && p->M == M && p->N == N && p->K == K &&
            p->has_bias == has_bias && p->beta_nz == beta_nz && p->align == align) {
            *out = p;
            return 0;
        }
    }
    if (c->nplans == c->cap_plans) {
        int cap = c->cap_plans ? 2 * c->cap_plans : 64;
        void *np = realloc(c->plans, (size_t)cap * sizeof(*c->plans));
        if (!np) return sw_err_set(SW_ENOMEM, "%s: out of memory for GEMM plans", what);
        c->plans = (sw_cuda_gemm_plan *)np;
        c->cap_plans = cap;
    }
    sw_cuda_gemm_plan *p = &c->plans[c->nplans];
    memset(p, 0, sizeof(*p));
    p->prec = prec, p->ta = ta, p->tb = tb, p->M = M, p->N = N, p->K = K;
    p->has_bias = has_bias, p->beta_nz = beta_nz, p->align = align;
    int rc = plan_build(c, what, p, has_bias, aA, aB, aC);
    if (rc < 0 && has_bias) { // no epilogue variant: add the bias separately
        plan_release(p);
        p->prec = prec, p->ta = ta, p->tb = tb, p->M = M, p->N = N, p->K = K;
        p->has_bias = has_bias, p->beta_nz = beta_nz, p->align = align;
        sw_err_clear();
        rc = plan_build(c, what, p, 0, aA, aB, aC);
    }
    if (rc < 0) {
        plan_release(p);
        return rc;
    }
    c->nplans++;
    *out = p;
    return 0;
}

// ---- small kernels ----------------------------------------------------------------------------

// float → 16-bit conversions, round to nearest even (fp16: overflow to ±inf, as torch's .half()).
struct cvt_bf16 {
    typedef __nv_bfloat16 T;
    typedef __nv_bfloat162 T2;
    static __device__ T one(float x) { return __float2bfloat16_rn(x); }
    static __device__ T2 two(float x, float y) { return __floats2bfloat162_rn(x, y); }
};
struct cvt_f16 {
    typedef __half T;
    typedef __half2 T2;
    static __device__ T one(float x) { return __float2half_rn(x); }
    static __device__ T2 two(float x, float y) { return __floats2half2_rn(x, y); }
};

template <typename Cvt>
__global__ void k_f32_to_half(typename Cvt::T *dst, const float *src, int64_t n) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if ((n & 3) == 0 && ((uintptr_t)src & 15) == 0 && ((uintptr_t)dst & 7) == 0) {
        const float4 *s4 = (const float4 *)src;
        typename Cvt::T2 *d2 = (typename Cvt::T2 *)dst;
        for (int64_t j = i; j < n / 4; j += stride) {
            float4 v = s4[j];
            d2[2 * j] = Cvt::two(v.x, v.y);
            d2[2 * j + 1] = Cvt::two(v.z, v.w);
        }
        return;
    }
    for (int64_t j = i; j < n; j += stride)
        dst[j] = Cvt::one(src[j]);
}

// y[M,N] = beta·y + b[n] (beta 0 never reads y).
__global__ void k_bias_init(float *y, const float *b, int64_t M, int64_t N, float beta) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < M * N; i += stride) {
        float v = b[i % N];
        y[i] = beta == 0.0f ? v : beta * y[i] + v;
    }
}

// y = beta·y over n elements (beta 0 writes zeros).
__global__ void k_scale(float *y, int64_t n, float beta) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = beta == 0.0f ? 0.0f : beta * y[i];
}

static int scale_out(sw_cuda_ctx *c, const char *what, float *y, int64_t n, float beta) {
    if (beta == 1.0f || n == 0) return 0;
    k_scale<<<sw_cuda_blocks(n, 256), 256, 0, c->stream>>>(y, n, beta);
    SW_CUDA_LAUNCHED(what);
    return 0;
}

int sw_cuda_gemm(sw_cuda_ctx *c, const char *what, float *C, const float *A, const float *B,
                 const float *bias, int64_t M, int64_t N, int64_t K, int ta, int tb, float alpha,
                 float beta) {
    return sw_cuda_gemm_mixed(c, what, C, A, 0, B, 0, bias, M, N, K, ta, tb, alpha, beta);
}

int sw_cuda_to_bf16(sw_cuda_ctx *c, const char *what, __nv_bfloat16 *dst, const float *src,
                    int64_t n) {
    if (n <= 0) return 0;
    k_f32_to_half<cvt_bf16><<<sw_cuda_blocks(n / 4 + 1, 256), 256, 0, c->stream>>>(dst, src, n);
    SW_CUDA_LAUNCHED(what);
    return 0;
}

int sw_cuda_to_half(sw_cuda_ctx *c, const char *what, void *dst, const float *src, int64_t n) {
    if (c->prec == SW_CUDA_GEMM_BF16) return sw_cuda_to_bf16(c, what, (__nv_bfloat16 *)dst, src, n);
    if (c->prec != SW_CUDA_GEMM_FP16)
        return sw_err_set(SW_EINVAL, "%s: 16-bit conversion outside the bf16/fp16 modes", what);
    if (n <= 0) return 0;
    k_f32_to_half<cvt_f16>
        <<<sw_cuda_blocks(n / 4 + 1, 256), 256, 0, c->stream>>>((__half *)dst, src, n);
    SW_CUDA_LAUNCHED(what);
    return 0;
}

int sw_cuda_gemm_mixed(sw_cuda_ctx *c, const char *what, float *C, const void *A, int a_half,
                       const void *B, int b_half, const float *bias, int64_t M, int64_t N,
                       int64_t K, int ta, int tb, float alpha, float beta) {
    if (M < 0 || N < 0 || K < 0)
        return sw_err_set(SW_EINVAL, "%s: negative dimensions %lldx%lldx%lld", what, (long long)M,
                          (long long)N, (long long)K);
    if (M == 0 || N == 0) return 0;
    if (K == 0) { // empty sum: C = beta·C (+ bias)
        if (bias) {
            k_bias_init<<<sw_cuda_blocks(M * N, 256), 256, 0, c->stream>>>(C, bias, M, N, beta);
            SW_CUDA_LAUNCHED(what);
            return 0;
        }
        return scale_out(c, what, C, M * N, beta);
    }
    int half = sw_cuda_half_mode(c);
    if ((a_half || b_half) && !half)
        return sw_err_set(SW_EINVAL, "%s: 16-bit operands outside the bf16/fp16 modes", what);
    const void *pa = A, *pb = B;
    int pprec = c->prec;
    if (half) sw_cuda_memo_begin(c);
    if (c->prec == SW_CUDA_GEMM_BF16 && c->bf16_inline && !a_half && !b_half)
        pprec = PLAN_F32_FAST16BF;           // cuBLASLt rounds the float32 operands itself
    else if (half && (!a_half || !b_half)) { // float32 operands: their (memoised) 16-bit copies
        if (!a_half && !(pa = sw_cuda_memo_half(c, what, (const float *)A, M * K)))
            return SW_ENOMEM;
        if (!b_half && !(pb = sw_cuda_memo_half(c, what, (const float *)B, N * K)))
            return SW_ENOMEM;
    }
    sw_cuda_gemm_plan *p = NULL;
    SW_TRY(plan_get(c, what, pprec, ta, tb, M, N, K, bias != NULL, beta != 0.0f, pa, pb, C, &p));
    if (bias && !p->bias_epilogue) {
        k_bias_init<<<sw_cuda_blocks(M * N, 256), 256, 0, c->stream>>>(C, bias, M, N, beta);
        SW_CUDA_LAUNCHED(what);
        beta = 1.0f;
    } else if (bias) {
        LT(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                          sizeof(bias)));
    }
    // cuBLASLt reads C when beta ≠ 0 only; a NaN in uninitialised C is harmless with beta 0.
    LT(cublasLtMatmul(c->lt, p->op, &alpha, pb, p->la, pa, p->lb, &beta, C, p->lc, C, p->lc,
                      &p->algo, c->lt_ws, c->lt_ws_bytes, c->stream));
    if (half) sw_cuda_memo_end(c, C, (size_t)(M * N) * sizeof(float));
    return 0;
}

// ---- ops ------------------------------------------------------------------------------------

int sw_cuda_matmul_fwd(struct sw_backend *be, float *y, const float *x, const float *w,
                       const float *b, int64_t M, int64_t N, int64_t K, float alpha, float beta) {
    SW_CUDA_GEMM_OP(be, "matmul_fwd", M, N, K);
    return sw_cuda_gemm(c, "matmul_fwd", y, x, w, b, M, N, K, 0, 1, alpha, beta);
}

int sw_cuda_matmul_bwd_dx(struct sw_backend *be, float *dx, const float *dy, const float *w,
                          int64_t M, int64_t N, int64_t K, float alpha, float beta) {
    SW_CUDA_GEMM_OP(be, "matmul_bwd_dx", M, N, K);
    // dx[M,K] = dy[M,N] · w[N,K]
    return sw_cuda_gemm(c, "matmul_bwd_dx", dx, dy, w, NULL, M, K, N, 0, 0, alpha, beta);
}

int sw_cuda_matmul_bwd_dw(struct sw_backend *be, float *dw, const float *dy, const float *x,
                          int64_t M, int64_t N, int64_t K, float alpha, float beta) {
    SW_CUDA_GEMM_OP(be, "matmul_bwd_dw", M, N, K);
    // dw[N,K] = dyᵀ · x: A = dy stored [M,N] (transposed), B = x stored [M,K]
    return sw_cuda_gemm(c, "matmul_bwd_dw", dw, dy, x, NULL, N, K, M, 1, 0, alpha, beta);
}

int sw_cuda_bias_bwd(struct sw_backend *be, float *db, const float *dy, int64_t M, int64_t N,
                     float beta) {
    SW_CUDA_OP(be, "bias_bwd", M, N);
    return sw_cuda_colsum(c, "bias_bwd", db, dy, NULL, NULL, M, N, beta);
}
