// backend.cu — the CUDA struct sw_backend: one device, one non-blocking stream on which every
// op, copy and allocation is ordered, cuBLASLt for the GEMMs, and the memory model of
// kernels/sw_kernels.h on the GPU:
//  - persistent memory (parameters, gradients, optimizer state) from the stream-ordered pool
//    (cudaMallocAsync), zeroed on the stream; the pool keeps freed memory cached;
//  - the per-step scratch arena: chunks bump-allocated in order; scratch_reset rewinds, and when
//    the last step spilled into more than one chunk it replaces them by a single chunk of what
//    that step asked for, so from the second step on a training loop allocates nothing;
//    scratch_reserve sizes that chunk up front (sw-train: the planned activations), so the
//    first step does not spill either;
//  - op workspaces (two, grown on demand) for temporaries inside one op call.
// Copies: upload and download synchronise (the host buffer may be reused or read as soon as
// they return); copy and memset0 are asynchronous. sync waits for the stream and reports any
// deferred device-side data error (see cuda_ops.h).
// Also here: the backend's other members (memory figures, GEMM precision, per-op profiler,
// device information, close) and its options (struct sw_backend_opts, read at open).
#include "cuda_ops.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#define CK(call) SW_CUDA_TRY(call)

// ---- faults ---------------------------------------------------------------------------------

int sw_cuda_fault_check(sw_cuda_ctx *c) {
    volatile sw_cuda_faultrec *f = c->fault_h;
    int code = f->code;
    if (code <= 0) return 0;
    long long row = f->row, val = f->value, lim = f->limit;
    f->code = 0; // report once
    switch (code) {
    case SW_CUDA_FAULT_EMBED_FWD:
    case SW_CUDA_FAULT_EMBED_BWD:
        return sw_err_set(SW_ERANGE, "%s: token id %lld at row %lld outside vocabulary [0, %lld)",
                          code == SW_CUDA_FAULT_EMBED_FWD ? "embedding_fwd" : "embedding_bwd", val,
                          row, lim);
    case SW_CUDA_FAULT_ROPE_FWD:
    case SW_CUDA_FAULT_ROPE_BWD:
        return sw_err_set(SW_ERANGE, "%s: position %lld at row %lld outside the table [0, %lld)",
                          code == SW_CUDA_FAULT_ROPE_FWD ? "rope_fwd" : "rope_bwd", val, row, lim);
    case SW_CUDA_FAULT_CE_TARGET:
        return sw_err_set(SW_ERANGE,
                          "cross_entropy: target %lld at row %lld outside vocabulary "
                          "[0, %lld)",
                          val, row, lim);
    case SW_CUDA_FAULT_ATT_CU:
        return sw_err_set(SW_EINVAL,
                          "attention: cu_seqlens malformed at index %lld (value %lld, "
                          "N = %lld): must start at 0, not decrease and end at N",
                          row, val, lim);
    case SW_CUDA_FAULT_ATT_KVLEN:
        return sw_err_set(SW_EINVAL, "attention: kv_len %lld of segment %lld outside [0, %lld]",
                          val, row, lim);
    case SW_CUDA_FAULT_ATT_MAXLEN:
        return sw_err_set(SW_EINVAL, "attention: segment %lld of %lld tokens exceeds max_len %lld",
                          row, val, lim);
    default: return sw_err_set(SW_EDEVICE, "cuda backend: unknown device fault %d", code);
    }
}

int sw_cuda_launch_check(const char *op) {
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) return 0;
    return sw_err_set(e == cudaErrorMemoryAllocation ? SW_ENOMEM : SW_EDEVICE,
                      "%s: kernel launch failed: %s (%s)", op, cudaGetErrorString(e),
                      cudaGetErrorName(e));
}

// ---- profiler -------------------------------------------------------------------------------

sw_cuda_prof_scope::sw_cuda_prof_scope(sw_cuda_ctx *ctx, const char *op, long long k0, long long k1,
                                       long long k2)
    : c(ctx), idx(-1) {
    if (!c->prof_on) return;
    if (c->prof_n == c->prof_cap) {
        int cap = c->prof_cap ? 2 * c->prof_cap : 4096;
        void *p = realloc(c->prof, (size_t)cap * sizeof(*c->prof));
        if (!p) return;
        c->prof = (sw_cuda_prof_rec *)p;
        c->prof_cap = cap;
    }
    sw_cuda_prof_rec *r = &c->prof[c->prof_n];
    if (cudaEventCreate(&r->e0) != cudaSuccess) return;
    if (cudaEventCreate(&r->e1) != cudaSuccess) {
        cudaEventDestroy(r->e0);
        return;
    }
    r->op = op;
    r->k0 = k0, r->k1 = k1, r->k2 = k2;
    cudaEventRecord(r->e0, c->stream);
    idx = c->prof_n++;
}

sw_cuda_prof_scope::~sw_cuda_prof_scope() {
    if (idx >= 0) cudaEventRecord(c->prof[idx].e1, c->stream);
}

static int cu_profile_enable(struct sw_backend *be, int on) {
    sw_cuda_ctx_of(be)->prof_on = on;
    return 0;
}

struct prof_row {
    const char *op;
    long long k0, k1, k2;
    double ms;
    long calls;
};

static int prof_row_cmp(const void *a, const void *b) {
    double x = ((const prof_row *)a)->ms, y = ((const prof_row *)b)->ms;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int cu_profile_report(struct sw_backend *be, FILE *out) {
    sw_cuda_ctx *c = sw_cuda_ctx_of(be);
    CK(cudaStreamSynchronize(c->stream));
    prof_row *rows = (prof_row *)calloc((size_t)(c->prof_n ? c->prof_n : 1), sizeof(prof_row));
    if (!rows) return sw_err_set(SW_ENOMEM, "cuda profile: out of memory");
    int nr = 0;
    double total = 0;
    for (int i = 0; i < c->prof_n; i++) {
        sw_cuda_prof_rec *r = &c->prof[i];
        float ms = 0;
        cudaEventElapsedTime(&ms, r->e0, r->e1);
        cudaEventDestroy(r->e0);
        cudaEventDestroy(r->e1);
        int j = 0;
        while (j < nr && !(strcmp(rows[j].op, r->op) == 0 && rows[j].k0 == r->k0 &&
                           rows[j].k1 == r->k1 && rows[j].k2 == r->k2))
            j++;
        if (j == nr) rows[nr++] = prof_row{r->op, r->k0, r->k1, r->k2, 0, 0};
        rows[j].ms += ms;
        rows[j].calls++;
        total += ms;
    }
    c->prof_n = 0;
    qsort(rows, (size_t)nr, sizeof(*rows), prof_row_cmp);
    if (out) {
        fprintf(out, "%-22s %-26s %10s %7s %6s\n", "op", "shape", "ms", "calls", "share");
        for (int j = 0; j < nr; j++) {
            char shape[64];
            snprintf(shape, sizeof shape, "%lldx%lldx%lld", rows[j].k0, rows[j].k1, rows[j].k2);
            fprintf(out, "%-22s %-26s %10.3f %7ld %5.1f%%\n", rows[j].op, shape, rows[j].ms,
                    rows[j].calls, total > 0 ? 100.0 * rows[j].ms / total : 0.0);
        }
        fprintf(out, "%-22s %-26s %10.3f\n", "total", "", total);
    }
    free(rows);
    return 0;
}

// ---- memory ---------------------------------------------------------------------------------

static void *dev_alloc(sw_cuda_ctx *c, size_t bytes, const char *what) {
    void *p = NULL;
    cudaError_t e = cudaMallocAsync(&p, bytes ? bytes : 256, c->stream);
    if (e != cudaSuccess) {
        cudaGetLastError();
        sw_err_set(e == cudaErrorMemoryAllocation ? SW_ENOMEM : SW_EDEVICE,
                   "cuda backend: cannot allocate %zu bytes for %s: %s", bytes, what,
                   cudaGetErrorString(e));
        return NULL;
    }
    return p;
}

static void *cu_alloc(struct sw_backend *be, size_t bytes) {
    sw_cuda_epoch++; // device memory changes: GEMM operand copies are stale (gemm_memo.cu)
    sw_cuda_ctx *c = sw_cuda_ctx_of(be);
    void *p = dev_alloc(c, bytes, "a persistent buffer");
    if (p && cudaMemsetAsync(p, 0, bytes ? bytes : 256, c->stream) != cudaSuccess) {
        sw_cuda_check((int)cudaGetLastError(), "cudaMemsetAsync", __FILE__, __LINE__);
        cudaFreeAsync(p, c->stream);
        return NULL;
    }
    return p;
}

static void cu_free(struct sw_backend *be, void *p) {
    sw_cuda_epoch++; // device memory changes: GEMM operand copies are stale (gemm_memo.cu)
    if (p) cudaFreeAsync(p, sw_cuda_ctx_of(be)->stream);
}

// A new scratch chunk for an allocation of n bytes that fits no existing chunk. It holds at
// least n, and at least a quarter of the capacity so far (64 MiB at first), so a step that
// overruns its arena adds O(log) chunks rather than one per allocation, and overshoots what it
// needs by at most a quarter; the next scratch_reset consolidates to what the step asked for.
// (It used to be at least the capacity so far — doubling — which, with consolidation to the
// total capacity, left the arena at ~2× the activations from the first step on.)
static size_t chunk_size(const sw_cuda_ctx *c, size_t n) {
    size_t total = 0;
    for (int i = 0; i < c->nchunks; i++)
        total += c->chunks[i].cap;
    size_t cap = total / 4;
    if (cap < ((size_t)64 << 20)) cap = (size_t)64 << 20;
    cap = (cap + 255) & ~(size_t)255;
    return n > cap ? n : cap;
}

static void *cu_scratch_alloc(struct sw_backend *be, size_t bytes) {
    sw_cuda_ctx *c = sw_cuda_ctx_of(be);
    size_t n = (bytes + 255) & ~(size_t)255;
    if (!n) n = 256;
    for (;;) {
        if (c->cur < c->nchunks) {
            sw_cuda_ctx::chunk *k = &c->chunks[c->cur];
            if (k->cap - k->used >= n) {
                void *p = k->base + k->used;
                k->used += n;
                c->in_use += n;
                c->need += n;
                if (c->in_use > c->peak) c->peak = c->in_use;
                return p;
            }
            if (c->cur + 1 < c->nchunks) {
                c->in_use += k->cap - k->used; // the tail left unused counts as in use
                k->used = k->cap;
                c->cur++;
                continue;
            }
        }
        size_t cap = chunk_size(c, n);
        void *np = realloc(c->chunks, (size_t)(c->nchunks + 1) * sizeof(*c->chunks));
        if (!np) {
            sw_err_set(SW_ENOMEM, "cuda backend: out of host memory for the scratch arena");
            return NULL;
        }
        c->chunks = (sw_cuda_ctx::chunk *)np;
        char *base = (char *)dev_alloc(c, cap, "the scratch arena");
        if (!base) {
            // Retry with exactly what is asked: the growth margin may overshoot the card.
            if (cap == n || !(base = (char *)dev_alloc(c, n, "the scratch arena"))) return NULL;
            cap = n;
        }
        if (c->cur < c->nchunks) { // the current chunk's tail is lost
            sw_cuda_ctx::chunk *k = &c->chunks[c->cur];
            c->in_use += k->cap - k->used;
            k->used = k->cap;
        }
        c->chunks[c->nchunks] = sw_cuda_ctx::chunk{base, cap, 0};
        c->cur = c->nchunks++;
    }
}

// Replace every chunk by one of cap bytes (contents are dead: between steps only). On failure
// the arena is left empty with the error set.
static int arena_replace(sw_cuda_ctx *c, size_t cap) {
    for (int i = 0; i < c->nchunks; i++)
        cudaFreeAsync(c->chunks[i].base, c->stream);
    c->nchunks = 0;
    if (!c->chunks) {
        c->chunks = (sw_cuda_ctx::chunk *)malloc(sizeof(*c->chunks));
        if (!c->chunks)
            return sw_err_set(SW_ENOMEM, "cuda backend: out of host memory for the scratch arena");
    }
    char *base = (char *)dev_alloc(c, cap, "the scratch arena");
    if (!base) return SW_ENOMEM;
    c->chunks[0] = sw_cuda_ctx::chunk{base, cap, 0};
    c->nchunks = 1;
    return 0;
}

static void cu_scratch_reset(struct sw_backend *be) {
    sw_cuda_epoch++; // device memory changes: GEMM operand copies are stale (gemm_memo.cu)
    sw_cuda_ctx *c = sw_cuda_ctx_of(be);
    // Consolidate: one chunk of what the last step asked for (its allocations, 256-byte granules;
    // no chunk tails), so the same step fits it exactly. Not the total capacity: the spill
    // chunks' growth margin would stay allocated for the whole run.
    if (c->nchunks > 1 && arena_replace(c, c->need) < 0)
        sw_err_clear(); // the next scratch_alloc grows again and reports a real failure
    for (int i = 0; i < c->nchunks; i++)
        c->chunks[i].used = 0;
    c->cur = 0;
    c->in_use = 0;
    c->need = 0;
}

static int cu_scratch_reserve(struct sw_backend *be, size_t bytes) {
    sw_cuda_ctx *c = sw_cuda_ctx_of(be);
    size_t cap = (bytes + 255) & ~(size_t)255;
    if (c->nchunks == 1 && c->chunks[0].cap >= cap) {
        cu_scratch_reset(be);
        return 0;
    }
    c->cur = 0;
    c->in_use = 0;
    c->need = 0;
    int rc = arena_replace(c, cap);
    return rc < 0 ? sw_err_wrap(rc, "reserving %zu bytes of scratch", cap) : 0;
}

static size_t cu_scratch_peak(const struct sw_backend *be) {
    return ((const sw_cuda_ctx *)be->ctx)->peak;
}

static int cu_upload(struct sw_backend *be, void *dst, const void *src, size_t bytes) {
    sw_cuda_epoch++; // device memory changes: GEMM operand copies are stale (gemm_memo.cu)
    sw_cuda_ctx *c = sw_cuda_ctx_of(be);
    if (!bytes) return 0;
    CK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->stream));
    CK(cudaStreamSynchronize(c->stream)); // the caller may free src on return
    return sw_cuda_fault_check(c);
}

static int cu_download(struct sw_backend *be, void *dst, const void *src, size_t bytes) {
    sw_cuda_ctx *c = sw_cuda_ctx_of(be);
    if (bytes) CK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream));
    CK(cudaStreamSynchronize(c->stream));
    return sw_cuda_fault_check(c);
}

static int cu_copy(struct sw_backend *be, void *dst, const void *src, size_t bytes) {
    sw_cuda_epoch++; // device memory changes: GEMM operand copies are stale (gemm_memo.cu)
    sw_cuda_ctx *c = sw_cuda_ctx_of(be);
    if (bytes && dst != src)
        CK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream));
    return 0;
}

static int cu_memset0(struct sw_backend *be, void *dst, size_t bytes) {
    sw_cuda_epoch++; // device memory changes: GEMM operand copies are stale (gemm_memo.cu)
    sw_cuda_ctx *c = sw_cuda_ctx_of(be);
    if (bytes) CK(cudaMemsetAsync(dst, 0, bytes, c->stream));
    return 0;
}

static int cu_sync(struct sw_backend *be) {
    sw_cuda_ctx *c = sw_cuda_ctx_of(be);
    CK(cudaStreamSynchronize(c->stream));
    return sw_cuda_fault_check(c);
}

void *sw_cuda_ws(sw_cuda_ctx *c, int which, size_t bytes) {
    if (bytes <= c->ws_bytes[which]) return c->ws[which];
    if (c->ws[which]) cudaFreeAsync(c->ws[which], c->stream);
    c->ws[which] = NULL;
    c->ws_bytes[which] = 0;
    size_t cap = bytes + bytes / 4; // some headroom: sizes creep up across shapes
    void *p = dev_alloc(c, cap, "an op workspace");
    if (!p) return NULL;
    c->ws[which] = p;
    c->ws_bytes[which] = cap;
    return p;
}

// In use and peak: the stream-ordered pool (parameters, gradients, scratch arena, op
// workspaces) plus cuBLASLt's workspace. Free and total: cudaMemGetInfo (optim.cu).
static int cu_mem_info(struct sw_backend *be, struct sw_mem_info *out) {
    sw_cuda_ctx *c = sw_cuda_ctx_of(be);
    cudaMemPool_t pool;
    CK(cudaDeviceGetDefaultMemPool(&pool, c->device));
    unsigned long long used = 0, high = 0;
    CK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &used));
    CK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &high));
    size_t fr = 0, tot = 0;
    SW_TRY(sw_cuda_mem_free_total(c, &fr, &tot));
    out->in_use = (size_t)used + c->lt_ws_bytes;
    out->peak = (size_t)high + c->lt_ws_bytes;
    out->free = fr;
    out->total = tot;
    return 0;
}

static int cu_device_info(struct sw_backend *be, struct sw_device_info *out) {
    const sw_cuda_ctx *c = sw_cuda_ctx_of(be);
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", c->info.name);
    out->total_bytes = c->info.total_bytes;
    out->compute_units = c->info.sm_count;
    out->cc_major = c->info.cc_major;
    out->cc_minor = c->info.cc_minor;
    return 0;
}

// The context's GEMM mode for a public precision (already range-checked).
static void apply_precision(sw_cuda_ctx *c, int precision) {
    static const sw_cuda_gemm_prec map[] = {SW_CUDA_GEMM_FP32, SW_CUDA_GEMM_TF32, SW_CUDA_GEMM_BF16,
                                            SW_CUDA_GEMM_BF16, SW_CUDA_GEMM_FP16};
    c->bf16_inline = precision == SW_MATMUL_BF16_INLINE;
    c->prec = map[precision];
    c->precision = (enum sw_matmul_precision)precision;
}

static int cu_set_precision(struct sw_backend *be, enum sw_matmul_precision precision) {
    if ((int)precision < 0 || (int)precision >= SW_MATMUL_COUNT)
        return sw_err_set(SW_EINVAL, "matmul precision: unknown mode %d", (int)precision);
    apply_precision(sw_cuda_ctx_of(be), (int)precision);
    return 0;
}

static enum sw_matmul_precision cu_get_precision(const struct sw_backend *be) {
    return ((const sw_cuda_ctx *)be->ctx)->precision;
}

// ---- lifecycle ------------------------------------------------------------------------------

static void ctx_free(sw_cuda_ctx *c) {
    if (!c) return;
    if (c->stream) cudaStreamSynchronize(c->stream);
    for (int i = 0; i < c->nchunks; i++)
        cudaFree(c->chunks[i].base);
    free(c->chunks);
    for (int i = 0; i < 2; i++)
        if (c->ws[i]) cudaFree(c->ws[i]);
    sw_cuda_gemm_plans_free(c);
    for (int i = 0; i < SW_CUDA_MEMO_SLOTS; i++)
        if (c->memo[i].buf) cudaFree(c->memo[i].buf);
    if (c->ce_keep) cudaFree(c->ce_keep);
    if (c->lt_ws) cudaFree(c->lt_ws);
    if (c->lt) cublasLtDestroy(c->lt);
    for (int i = 0; i < c->prof_n; i++) {
        cudaEventDestroy(c->prof[i].e0);
        cudaEventDestroy(c->prof[i].e1);
    }
    free(c->prof);
    if (c->fault_h) cudaFreeHost(c->fault_h);
    if (c->stream) cudaStreamDestroy(c->stream);
    free(c);
}

static int ctx_open(sw_cuda_ctx *c, const struct sw_backend_opts *o) {
    if (o->matmul < -1 || o->matmul >= SW_MATMUL_COUNT)
        return sw_err_set(SW_EINVAL, "matmul precision: unknown mode %d", o->matmul);
    c->device = o->device_index;
    // The cross-entropy budgets (0 chunk bytes: the built-in 1 GiB, as the variable always read).
    c->ce_chunk_bytes = o->ce_chunk_bytes ? o->ce_chunk_bytes : (size_t)1 << 30;
    c->ce_keep_bytes = o->ce_keep_bytes;
    struct sw_cuda_info &info = c->info;
    SW_TRY(sw_cuda_device_info(c->device, &info));
    if (info.cc_major < 8)
        return sw_err_set(SW_EUNSUPPORTED,
                          "cuda backend: %s (compute capability %d.%d) is too "
                          "old: sw is built for Hopper (9.0)",
                          info.name, info.cc_major, info.cc_minor);
    c->sm_count = info.sm_count;
    CK(cudaSetDevice(c->device));
    CK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    // Keep freed pool memory cached: scratch consolidation and workspace growth reuse it.
    cudaMemPool_t pool;
    CK(cudaDeviceGetDefaultMemPool(&pool, c->device));
    unsigned long long keep = ~(unsigned long long)0;
    CK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
    CK(cudaHostAlloc((void **)&c->fault_h, sizeof(*c->fault_h), cudaHostAllocMapped));
    memset(c->fault_h, 0, sizeof(*c->fault_h));
    CK(cudaHostGetDevicePointer((void **)&c->fault_d, c->fault_h, 0));
    if (cublasLtCreate(&c->lt) != CUBLAS_STATUS_SUCCESS)
        return sw_err_set(SW_EDEVICE, "cuda backend: cublasLtCreate failed");
    c->lt_ws_bytes = (size_t)64 << 20;
    CK(cudaMalloc(&c->lt_ws, c->lt_ws_bytes));
    apply_precision(c, o->matmul >= 0 ? o->matmul : (int)SW_MATMUL_FP32);
    return 0;
}

static void cu_close(struct sw_backend *be);

extern "C" int sw_cuda_backend_open(const struct sw_backend_opts *o, struct sw_backend **out) {
    *out = NULL;
    struct sw_backend *be = (struct sw_backend *)calloc(1, sizeof(*be));
    sw_cuda_ctx *c = (sw_cuda_ctx *)calloc(1, sizeof(*c));
    if (!be || !c) {
        free(be), free(c);
        return sw_err_set(SW_ENOMEM, "cuda backend: out of memory");
    }
    int rc = ctx_open(c, o);
    if (rc < 0) {
        ctx_free(c);
        free(be);
        return sw_err_wrap(rc, "cuda backend");
    }
    be->name = "cuda";
    be->device = SW_DEVICE_CUDA;
    be->ctx = c;
    be->supports_op = sw_backend_supports_op;
    be->alloc = cu_alloc;
    be->free = cu_free;
    be->scratch_alloc = cu_scratch_alloc;
    be->scratch_reset = cu_scratch_reset;
    be->scratch_peak = cu_scratch_peak;
    be->upload = cu_upload;
    be->download = cu_download;
    be->copy = cu_copy;
    be->memset0 = cu_memset0;
    be->sync = cu_sync;
    be->scratch_reserve = cu_scratch_reserve;
    be->mem_info = cu_mem_info;
    be->device_info = cu_device_info;
    be->set_precision = cu_set_precision;
    be->get_precision = cu_get_precision;
    be->profile_enable = cu_profile_enable;
    be->profile_report = cu_profile_report;
    be->close = cu_close;
    // Every op of kernels/sw_ops.def that CUDA implements (where ALL); CPU-only ones stay NULL.
#define SW_CUDA_OP_WIRE_ALL(name) be->name = sw_cuda_##name;
#define SW_CUDA_OP_WIRE_CPU(name)
#define SW_OP(FAM, name, where, params) SW_CUDA_OP_WIRE_##where(name)
#include "sw_ops.def"
    *out = be;
    return 0;
}

// be->close (sw_backend_close).
static void cu_close(struct sw_backend *be) {
    if (!be) return;
    ctx_free((sw_cuda_ctx *)be->ctx);
    free(be);
}
