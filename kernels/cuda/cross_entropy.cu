// cross_entropy.cu — next-token loss fused with the LM head, chunked so the [N, V] logits never
// exist at once, and the plain full-logits path.
//
// Shapes: h[N,C] final hidden states, w[V,C] LM head, targets[N] int32 (SW_IGNORE_INDEX skips a
// row), loss[N] and lse[N] per row, dh[N,C], dw[V,C].
// A chunk of R consecutive rows: logits[R,V] = h[r0:r0+R]·wᵀ (one GEMM in the backend's
// precision, into an op workspace), then one block per row takes an online max/Σexp in a single
// pass (each thread a running (max, sum) pair, combined in a fixed tree): lse = m + log Σ, loss =
// lse − logits[target]. The backward recomputes the chunk's logits, turns them into
// g = grad_scale·row_scale[n]·(softmax − onehot) (0 for ignored rows; row_scale NULL = 1), then
// dh[chunk] = g·w + beta·dh (one GEMM; ignored rows get beta·dh since their g is 0) and dw +=
// gᵀ·h[chunk].
//
// Chunk size: unlike the CPU, rows are not gathered (every row of the chunk is computed; an
// ignored row costs its share of the GEMM but needs no host round trip), and R is the larger of
// chunk_rows and what fits a logits budget (1 GiB, or $SW_CUDA_CE_CHUNK_BYTES) — the model's
// chunk_rows (~8 MiB of logits) is far too small to keep an H100's GEMMs efficient. In the 16-bit
// modes (bf16, fp16) w is converted once per call, h once per chunk, and g is written directly in
// the mode's 16-bit type for the two backward GEMMs (in fp16, |g| ≥ 65520 — a loss scale too
// large — becomes ±inf there, and the non-finite gradient is what sw-train's scaler detects).
//
// Keeping the gradient (16-bit modes): the forward also writes softmax − onehot of every row in
// the mode's 16-bit type into a buffer of the context (2·N·V bytes, when that is within
// $SW_CUDA_CE_KEEP_BYTES, default 4 GiB; 0 turns it off), keyed by (h, w, targets, shape, mode).
// A backward with the same key multiplies it directly (grad_scale as the GEMMs' alpha) instead of
// recomputing the logits: one LM-head GEMM and one pass over the logits fewer per step. The
// rounding differs from the recomputing path only in where grad_scale is applied (before or
// after the 16-bit rounding). The key is consumed by the backward; any other backward recomputes.
#include "cuda_ops.h"

#include <cstdlib>

#define CE_THREADS 512

struct ms_pair {
    float m, s;
};

__device__ __forceinline__ ms_pair ms_combine(ms_pair a, ms_pair b) {
    if (a.m < b.m) {
        ms_pair t = a;
        a = b;
        b = t;
    }
    // a.m ≥ b.m (or both −inf)
    if (b.m == -INFINITY) return a;
    return ms_pair{a.m, a.s + b.s * expf(b.m - a.m)};
}

__device__ __forceinline__ void ms_add(ms_pair &p, float x) {
    if (x > p.m) {
        p.s = p.s * expf(p.m - x) + 1.0f;
        p.m = x;
    } else {
        p.s += expf(x - p.m);
    }
}

// Row statistics of one row of V logits by one block; returns lse to every thread.
__device__ float row_lse(const float *x, int64_t V) {
    __shared__ ms_pair sh[CE_THREADS / 32];
    ms_pair p{-INFINITY, 0.0f};
    if ((V & 3) == 0 && ((uintptr_t)x & 15) == 0) {
        const float4 *x4 = (const float4 *)x;
        for (int64_t i = threadIdx.x; i < V / 4; i += blockDim.x) {
            float4 v = x4[i];
            ms_add(p, v.x), ms_add(p, v.y), ms_add(p, v.z), ms_add(p, v.w);
        }
    } else {
        for (int64_t i = threadIdx.x; i < V; i += blockDim.x)
            ms_add(p, x[i]);
    }
    for (int o = 16; o > 0; o >>= 1) {
        ms_pair q{__shfl_xor_sync(0xffffffffu, p.m, o), __shfl_xor_sync(0xffffffffu, p.s, o)};
        p = ms_combine(p, q);
    }
    int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
    if (lane == 0) sh[warp] = p;
    __syncthreads();
    if (warp == 0) {
        int nw = blockDim.x / 32;
        p = lane < nw ? sh[lane] : ms_pair{-INFINITY, 0.0f};
        for (int o = 16; o > 0; o >>= 1) {
            ms_pair q{__shfl_xor_sync(0xffffffffu, p.m, o), __shfl_xor_sync(0xffffffffu, p.s, o)};
            p = ms_combine(p, q);
        }
        if (lane == 0) sh[0] = p;
    }
    __syncthreads();
    ms_pair r = sh[0];
    return r.m + logf(r.s);
}

// loss/lse of rows [0, R) of logits[R,V]; row0 = global index of row 0 (fault messages).
// lse_all: ce_logits_fwd's rule (lse of every row); else 0 for ignored rows (fused).
__global__ void k_ce_rows(float *loss, float *lse, const float *logits, const int32_t *targets,
                          int64_t R, int64_t V, int64_t row0, int lse_all,
                          sw_cuda_faultrec *fault) {
    int64_t r = blockIdx.x;
    int32_t t = targets[r];
    bool ignored = t == SW_IGNORE_INDEX;
    bool bad = !ignored && (t < 0 || t >= V);
    if (bad && threadIdx.x == 0)
        sw_cuda_fault_raise(fault, SW_CUDA_FAULT_CE_TARGET, row0 + r, t, V);
    if ((ignored || bad) && !lse_all) {
        if (threadIdx.x == 0) loss[r] = 0.0f, lse[r] = 0.0f;
        return;
    }
    const float *x = logits + r * V;
    float l = row_lse(x, V);
    if (threadIdx.x == 0) {
        lse[r] = l;
        loss[r] = ignored || bad ? 0.0f : l - x[t];
    }
}

// g = scale·rs[r]·(softmax − onehot) of rows [0, R) in place (float) or into g16 (16-bit
// modes); rs NULL means 1 (per-row loss weights).
template <typename T>
__global__ void k_ce_grad(T *g, const float *logits, const int32_t *targets, const float *lse,
                          const float *rs, int64_t R, int64_t V, float scale) {
    int64_t r = blockIdx.x;
    int32_t t = targets[r];
    bool skip = t == SW_IGNORE_INDEX || t < 0 || t >= V;
    const float *x = logits + r * V;
    T *o = g + r * V;
    float l = lse[r];
    if (rs) scale *= rs[r];
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
        float v = skip ? 0.0f : scale * expf(x[i] - l) - (i == t ? scale : 0.0f);
        o[i] = (T)v;
    }
}

static int64_t ce_chunk(const sw_cuda_ctx *c, int64_t N, int64_t V, int64_t chunk_rows) {
    size_t budget = c->ce_chunk_bytes; // SW_CUDA_CE_CHUNK_BYTES (struct sw_backend_opts)
    int64_t R = (int64_t)(budget / ((size_t)V * sizeof(float)));
    if (R < chunk_rows) R = chunk_rows;
    if (R < 1) R = 1;
    if (R > N) R = N;
    return R;
}

// The operands of the chunk GEMMs: f32 pointers, or 16-bit copies (bf16 or fp16, by mode).
struct ce_ws {
    int64_t R;
    float *logits; // [R, V]
    void *g16;     // [R, V] (16-bit modes, backward)
    void *w16;     // [V, C] (16-bit modes)
    void *h16;     // [R, C] (16-bit modes)
    int half;      // sw_cuda_half_mode: the three above are in use
};

static size_t al256(size_t n) {
    return (n + 255) & ~(size_t)255;
}

static int ce_ws_open(sw_cuda_ctx *c, const char *op, ce_ws *ws, const float *w, int64_t N,
                      int64_t V, int64_t C, int64_t chunk_rows, int want_g16) {
    ws->R = ce_chunk(c, N, V, chunk_rows);
    ws->half = sw_cuda_half_mode(c);
    size_t R = (size_t)ws->R;
    size_t off_g = al256(R * (size_t)V * 4);
    size_t off_w = off_g + (ws->half && want_g16 ? al256(R * (size_t)V * 2) : 0);
    size_t off_h = off_w + (ws->half ? al256((size_t)(V * C) * 2) : 0);
    size_t total = off_h + (ws->half ? al256(R * (size_t)C * 2) : 0);
    char *base = (char *)sw_cuda_ws(c, 0, total);
    if (!base)
        return sw_err_wrap(SW_ENOMEM, "%s: chunk of %zu rows × %lld classes", op, R, (long long)V);
    ws->logits = (float *)base;
    ws->g16 = base + off_g;
    ws->w16 = base + off_w;
    ws->h16 = base + off_h;
    if (ws->half) SW_TRY(sw_cuda_to_half(c, op, ws->w16, w, V * C));
    return 0;
}

// logits[R,V] of rows [r0, r0+R): h[r0:]·wᵀ.
static int ce_logits(sw_cuda_ctx *c, const char *op, ce_ws *ws, const float *h, const float *w,
                     int64_t r0, int64_t R, int64_t V, int64_t C) {
    const float *hc = h + r0 * C;
    if (ws->half) {
        SW_TRY(sw_cuda_to_half(c, op, ws->h16, hc, R * C));
        return sw_cuda_gemm_mixed(c, op, ws->logits, ws->h16, 1, ws->w16, 1, NULL, R, V, C, 0, 1,
                                  1.0f, 0.0f);
    }
    return sw_cuda_gemm(c, op, ws->logits, hc, w, NULL, R, V, C, 0, 1, 1.0f, 0.0f);
}

// Room for a kept gradient of N × V 16-bit values: 1 when c->ce_keep holds it, 0 when it is over
// budget or the allocation fails (the backward then recomputes; not an error).
static int ce_keep_reserve(sw_cuda_ctx *c, int64_t N, int64_t V) {
    size_t budget = c->ce_keep_bytes; // SW_CUDA_CE_KEEP_BYTES (struct sw_backend_opts)
    size_t bytes = (size_t)N * (size_t)V * 2;
    if (bytes == 0 || bytes > budget) return 0;
    if (bytes <= c->ce_keep_cap) return 1;
    if (c->ce_keep) cudaFreeAsync(c->ce_keep, c->stream);
    c->ce_keep = NULL;
    c->ce_keep_cap = 0;
    if (cudaMallocAsync(&c->ce_keep, bytes, c->stream) != cudaSuccess) {
        cudaGetLastError();
        c->ce_keep = NULL;
        return 0;
    }
    c->ce_keep_cap = bytes;
    return 1;
}

static bool ce_key_match(const sw_cuda_ctx *c, const float *h, const float *w, const int32_t *t,
                         int64_t N, int64_t V, int64_t C) {
    return c->ce_key.h == h && c->ce_key.w == w && c->ce_key.t == t && c->ce_key.N == N &&
           c->ce_key.V == V && c->ce_key.C == C && c->ce_key.prec == (int)c->prec;
}

int sw_cuda_ce_fused_fwd(struct sw_backend *be, float *loss, float *lse, const float *h,
                         const float *w, const int32_t *targets, int64_t N, int64_t V, int64_t C,
                         int64_t chunk_rows) {
    SW_CUDA_OP(be, "ce_fused_fwd", N, V, C);
    if (V <= 0) return sw_err_set(SW_ERANGE, "ce_fused_fwd: need at least one class");
    if (N <= 0) return 0;
    ce_ws ws;
    SW_TRY(ce_ws_open(c, "ce_fused_fwd", &ws, w, N, V, C, chunk_rows, 0));
    c->ce_key.h = NULL;
    int keep = ws.half && ce_keep_reserve(c, N, V);
    for (int64_t r0 = 0; r0 < N; r0 += ws.R) {
        int64_t R = N - r0 < ws.R ? N - r0 : ws.R;
        SW_TRY(ce_logits(c, "ce_fused_fwd", &ws, h, w, r0, R, V, C));
        k_ce_rows<<<(unsigned)R, CE_THREADS, 0, c->stream>>>(loss + r0, lse + r0, ws.logits,
                                                             targets + r0, R, V, r0, 0, c->fault_d);
        SW_CUDA_LAUNCHED("ce_fused_fwd");
        if (keep && c->prec == SW_CUDA_GEMM_FP16)
            k_ce_grad<__half><<<(unsigned)R, CE_THREADS, 0, c->stream>>>(
                (__half *)c->ce_keep + r0 * V, ws.logits, targets + r0, lse + r0, NULL, R, V, 1.0f);
        else if (keep)
            k_ce_grad<__nv_bfloat16><<<(unsigned)R, CE_THREADS, 0, c->stream>>>(
                (__nv_bfloat16 *)c->ce_keep + r0 * V, ws.logits, targets + r0, lse + r0, NULL, R, V,
                1.0f);
        if (keep) SW_CUDA_LAUNCHED("ce_fused_fwd");
    }
    if (keep) {
        c->ce_key.h = h, c->ce_key.w = w, c->ce_key.t = targets;
        c->ce_key.N = N, c->ce_key.V = V, c->ce_key.C = C, c->ce_key.prec = (int)c->prec;
    }
    return 0;
}

// The backward from the kept gradient: per chunk dh = grad_scale·G·w + beta·dh and
// dw += grad_scale·Gᵀ·h, G read from c->ce_keep.
static int ce_bwd_kept(sw_cuda_ctx *c, float *dh, float *dw, const float *h, const float *w,
                       int64_t N, int64_t V, int64_t C, int64_t chunk_rows, float grad_scale,
                       float beta) {
    ce_ws ws;
    SW_TRY(ce_ws_open(c, "ce_fused_bwd", &ws, w, N, V, C, chunk_rows, 0));
    for (int64_t r0 = 0; r0 < N; r0 += ws.R) {
        int64_t R = N - r0 < ws.R ? N - r0 : ws.R;
        const char *g = (const char *)c->ce_keep + (size_t)r0 * (size_t)V * 2;
        if (dh)
            SW_TRY(sw_cuda_gemm_mixed(c, "ce_fused_bwd", dh + r0 * C, g, 1, ws.w16, 1, NULL, R, C,
                                      V, 0, 0, grad_scale, beta));
        if (dw) {
            SW_TRY(sw_cuda_to_half(c, "ce_fused_bwd", ws.h16, h + r0 * C, R * C));
            SW_TRY(sw_cuda_gemm_mixed(c, "ce_fused_bwd", dw, g, 1, ws.h16, 1, NULL, V, C, R, 1, 0,
                                      grad_scale, 1.0f));
        }
    }
    return 0;
}

int sw_cuda_ce_fused_bwd(struct sw_backend *be, float *dh, float *dw, const float *h,
                         const float *w, const int32_t *targets, const float *lse,
                         const float *row_scale, int64_t N, int64_t V, int64_t C,
                         int64_t chunk_rows, float grad_scale, float beta) {
    SW_CUDA_OP(be, "ce_fused_bwd", N, V, C);
    if (V <= 0) return sw_err_set(SW_ERANGE, "ce_fused_bwd: need at least one class");
    if (N <= 0) return 0;
    // The kept gradient has no per-row weights: with row_scale the chunks are recomputed.
    if (ce_key_match(c, h, w, targets, N, V, C) && sw_cuda_half_mode(c) && !row_scale) {
        c->ce_key.h = NULL; // consumed
        return ce_bwd_kept(c, dh, dw, h, w, N, V, C, chunk_rows, grad_scale, beta);
    }
    c->ce_key.h = NULL;
    const float *rs = row_scale;
    ce_ws ws;
    SW_TRY(ce_ws_open(c, "ce_fused_bwd", &ws, w, N, V, C, chunk_rows, 1));
    for (int64_t r0 = 0; r0 < N; r0 += ws.R) {
        int64_t R = N - r0 < ws.R ? N - r0 : ws.R;
        SW_TRY(ce_logits(c, "ce_fused_bwd", &ws, h, w, r0, R, V, C));
        const void *g;
        if (ws.half && c->prec == SW_CUDA_GEMM_FP16) {
            k_ce_grad<__half><<<(unsigned)R, CE_THREADS, 0, c->stream>>>(
                (__half *)ws.g16, ws.logits, targets + r0, lse + r0, rs ? rs + r0 : NULL, R, V,
                grad_scale);
            g = ws.g16;
        } else if (ws.half) {
            k_ce_grad<__nv_bfloat16><<<(unsigned)R, CE_THREADS, 0, c->stream>>>(
                (__nv_bfloat16 *)ws.g16, ws.logits, targets + r0, lse + r0, rs ? rs + r0 : NULL, R,
                V, grad_scale);
            g = ws.g16;
        } else {
            k_ce_grad<float><<<(unsigned)R, CE_THREADS, 0, c->stream>>>(
                ws.logits, ws.logits, targets + r0, lse + r0, rs ? rs + r0 : NULL, R, V,
                grad_scale);
            g = ws.logits;
        }
        SW_CUDA_LAUNCHED("ce_fused_bwd");
        if (dh) // dh[r0:r0+R] = g[R,V] · w[V,C] + beta·dh
            SW_TRY(sw_cuda_gemm_mixed(c, "ce_fused_bwd", dh + r0 * C, g, ws.half,
                                      ws.half ? (const void *)ws.w16 : (const void *)w, ws.half,
                                      NULL, R, C, V, 0, 0, 1.0f, beta));
        if (dw) // dw[V,C] += gᵀ · h[r0:r0+R]   (h16 still holds this chunk in the 16-bit modes)
            SW_TRY(sw_cuda_gemm_mixed(c, "ce_fused_bwd", dw, g, ws.half,
                                      ws.half ? (const void *)ws.h16 : (const void *)(h + r0 * C),
                                      ws.half, NULL, V, C, R, 1, 0, 1.0f, 1.0f));
    }
    return 0;
}

int sw_cuda_ce_logits_fwd(struct sw_backend *be, float *loss, float *lse, const float *logits,
                          const int32_t *targets, int64_t N, int64_t V) {
    SW_CUDA_OP(be, "ce_logits_fwd", N, V);
    if (V <= 0) return sw_err_set(SW_ERANGE, "ce_logits_fwd: need at least one class");
    if (N <= 0) return 0;
    if (N > 0x7fffffff) return sw_err_set(SW_ERANGE, "ce_logits_fwd: too many rows");
    k_ce_rows<<<(unsigned)N, CE_THREADS, 0, c->stream>>>(loss, lse, logits, targets, N, V, 0, 1,
                                                         c->fault_d);
    SW_CUDA_LAUNCHED("ce_logits_fwd");
    return 0;
}
