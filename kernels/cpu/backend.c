/* CPU backend — fills struct sw_backend with the reference kernels of kernels/cpu/ and host
 * memory: persistent buffers from aligned_alloc (zeroed), per-step scratch from an sw_arena,
 * copies as memcpy. Threads: OpenMP (OMP_NUM_THREADS) for everything, sgemm included (sgemm.c
 * runs one single-threaded OpenBLAS call per thread). */
#include "cpu_ops.h"
#include "paged_ops.h"

#include "sw_arena.h"
#include "sw_err.h"
#include "sw_log.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct cpu_ctx {
    struct sw_arena *scratch;
    struct sw_cpu_ce_cache ce; /* cross_entropy.c: the last fused forward's softmax gradient */
};

struct sw_cpu_ce_cache *sw_cpu_ce_cache_get(struct sw_backend *be) {
    if (!be || be->device != SW_DEVICE_CPU || !be->ctx) return NULL;
    return &((struct cpu_ctx *)be->ctx)->ce;
}

static int cpu_supports_op(const struct sw_backend *be, enum sw_op op) {
    (void)be;
    return op >= 0 && op < SW_OP_COUNT;
}

static void *cpu_alloc(struct sw_backend *be, size_t bytes) {
    (void)be;
    size_t n = (bytes + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, n ? n : 64);
    if (!p) {
        sw_err_set(SW_ENOMEM, "cpu backend: cannot allocate %zu bytes", bytes);
        return NULL;
    }
    memset(p, 0, n ? n : 64);
    return p;
}

static void cpu_free(struct sw_backend *be, void *p) {
    (void)be;
    free(p);
}

static void *cpu_scratch_alloc(struct sw_backend *be, size_t bytes) {
    struct cpu_ctx *c = be->ctx;
    return sw_arena_alloc(c->scratch, bytes ? bytes : 1, 64);
}

static void cpu_scratch_reset(struct sw_backend *be) {
    struct cpu_ctx *c = be->ctx;
    sw_arena_reset(c->scratch);
}

static size_t cpu_scratch_peak(const struct sw_backend *be) {
    const struct cpu_ctx *c = be->ctx;
    return sw_arena_peak(c->scratch);
}

static int cpu_copy(struct sw_backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (bytes) memmove(dst, src, bytes);
    return 0;
}

static int cpu_memset0(struct sw_backend *be, void *dst, size_t bytes) {
    (void)be;
    if (bytes) memset(dst, 0, bytes);
    return 0;
}

static int cpu_sync(struct sw_backend *be) {
    (void)be;
    return 0;
}

/* OpenBLAS (DYNAMIC_ARCH builds such as Debian's) picks its kernels from the CPU model number at
 * load time; on a CPU model it does not know — common in VMs that hide the model — it falls back
 * to its SSE3 "Prescott" kernels even when AVX2 or AVX-512 is there, and every matrix product
 * runs about 5x slower (seen on a Sapphire Rapids VM). It cannot be switched from inside the
 * process, so say once how to fix it. */
static void check_blas_core(void) {
    static int checked;
    if (__atomic_exchange_n(&checked, 1, __ATOMIC_RELAXED)) return;
#if defined(__x86_64__) || defined(__i386__)
    const char *core = openblas_get_corename();
    if (!core) return;
    int generic = strcasecmp(core, "prescott") == 0 || strcasecmp(core, "core2") == 0 ||
                  strcasecmp(core, "nehalem") == 0 || strcasecmp(core, "katmai") == 0 ||
                  strcasecmp(core, "generic") == 0;
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (generic && avx2 && !getenv("OPENBLAS_CORETYPE"))
        sw_warn("OpenBLAS chose its generic '%s' kernels on a CPU with AVX2%s (a CPU model it does "
                "not recognise): matrix products run several times slower; set "
                "OPENBLAS_CORETYPE=%s in the environment", core,
                __builtin_cpu_supports("avx512f") ? " and AVX-512" : "",
                __builtin_cpu_supports("avx512f") ? "SkylakeX" : "Haswell");
#endif
}

int sw_cpu_backend_open(struct sw_backend **out) {
    *out = NULL;
    struct sw_backend *be = calloc(1, sizeof(*be));
    struct cpu_ctx *c = calloc(1, sizeof(*c));
    if (c) c->scratch = sw_arena_new(64u << 20);
    if (!be || !c || !c->scratch) {
        if (c) sw_arena_free(c->scratch);
        free(be), free(c);
        return sw_err_set(SW_ENOMEM, "cpu backend: out of memory");
    }
    *be = (struct sw_backend){
        .name = "cpu",
        .device = SW_DEVICE_CPU,
        .ctx = c,
        .supports_op = cpu_supports_op,
        .alloc = cpu_alloc,
        .free = cpu_free,
        .scratch_alloc = cpu_scratch_alloc,
        .scratch_reset = cpu_scratch_reset,
        .scratch_peak = cpu_scratch_peak,
        .upload = cpu_copy,
        .download = cpu_copy,
        .copy = cpu_copy,
        .memset0 = cpu_memset0,
        .sync = cpu_sync,
        .matmul_fwd = sw_cpu_matmul_fwd,
        .matmul_bwd_dx = sw_cpu_matmul_bwd_dx,
        .matmul_bwd_dw = sw_cpu_matmul_bwd_dw,
        .bias_bwd = sw_cpu_bias_bwd,
        .embedding_fwd = sw_cpu_embedding_fwd,
        .embedding_bwd = sw_cpu_embedding_bwd,
        .rmsnorm_fwd = sw_cpu_rmsnorm_fwd,
        .rmsnorm_bwd = sw_cpu_rmsnorm_bwd,
        .rope_fwd = sw_cpu_rope_fwd,
        .rope_bwd = sw_cpu_rope_bwd,
        .attention_fwd = sw_cpu_attention_fwd,
        .attention_bwd = sw_cpu_attention_bwd,
        .swiglu_fwd = sw_cpu_swiglu_fwd,
        .swiglu_bwd = sw_cpu_swiglu_bwd,
        .add = sw_cpu_add,
        .axpy = sw_cpu_axpy,
        .dropout_fwd = sw_cpu_dropout_fwd,
        .dropout_bwd = sw_cpu_dropout_bwd,
        .ce_fused_fwd = sw_cpu_ce_fused_fwd,
        .ce_fused_bwd = sw_cpu_ce_fused_bwd,
        .ce_logits_fwd = sw_cpu_ce_logits_fwd,
        .kv_cache_write = sw_cpu_kv_cache_write,
        .paged_attention_fwd = sw_cpu_paged_attention_fwd,
    };
    *out = be;
    check_blas_core();
    return 0;
}

/* Called through sw_backend_close. */
void sw_cpu_backend_free(struct sw_backend *be);
void sw_cpu_backend_free(struct sw_backend *be) {
    if (!be) return;
    struct cpu_ctx *c = be->ctx;
    if (c) {
        sw_arena_free(c->scratch);
        free(c->ce.g), free(c->ce.targets), free(c->ce.lse);
    }
    free(c);
    free(be);
}
