/* CPU backend — fills struct sw_backend with the reference kernels of kernels/cpu/ and host
 * memory: persistent buffers from aligned_alloc (zeroed), per-step scratch from an sw_arena,
 * copies as memcpy. Threads: OpenMP (OMP_NUM_THREADS) for everything, sgemm included (sgemm.c
 * runs one single-threaded OpenBLAS call per thread). Memory figures are the process's (resident
 * set, max RSS) and the machine's (MemAvailable, physical memory); the GEMM precision is fp32
 * only; per-op profiling is not available (SW_EUNSUPPORTED). */
#include "cpu_ops.h"

#include "sw_arena.h"
#include "sw_err.h"
#include "sw_log.h"
#include "sw_metrics.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Scratch blocks: at least this much each (sw_arena_new). */
#define SCRATCH_BLOCK ((size_t)64 << 20)

struct cpu_ctx {
    struct sw_arena *scratch;
    size_t used, peak;         /* scratch bytes handed out since the reset, and their maximum */
    struct sw_cpu_ce_cache ce; /* cross_entropy.c: the last fused forward's softmax gradient */
};

struct sw_cpu_ce_cache *sw_cpu_ce_cache_get(struct sw_backend *be) {
    if (!be || be->device != SW_DEVICE_CPU || !be->ctx) return NULL;
    return &((struct cpu_ctx *)be->ctx)->ce;
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

/* The peak is counted here, not by the arena, so that a reservation (which allocates through
 * the arena) does not count as use. */
static void *cpu_scratch_alloc(struct sw_backend *be, size_t bytes) {
    struct cpu_ctx *c = be->ctx;
    size_t n = bytes ? bytes : 1;
    void *p = sw_arena_alloc(c->scratch, n, 64);
    if (p) {
        c->used += n;
        if (c->used > c->peak) c->peak = c->used;
    }
    return p;
}

static void cpu_scratch_reset(struct sw_backend *be) {
    struct cpu_ctx *c = be->ctx;
    sw_arena_reset(c->scratch);
    c->used = 0;
}

static size_t cpu_scratch_peak(const struct sw_backend *be) {
    const struct cpu_ctx *c = be->ctx;
    return c->peak;
}

/* A fresh arena whose first block holds bytes: one allocation of that size, then a reset, which
 * keeps the block (a single block is reused as it is). */
static int cpu_scratch_reserve(struct sw_backend *be, size_t bytes) {
    struct cpu_ctx *c = be->ctx;
    struct sw_arena *a = sw_arena_new(SCRATCH_BLOCK);
    if (!a) return sw_err_set(SW_ENOMEM, "cpu backend: out of memory for the scratch arena");
    if (bytes && !sw_arena_alloc(a, bytes, 64)) {
        sw_arena_free(a);
        sw_arena_reset(c->scratch);
        c->used = 0;
        return sw_err_wrap(SW_ENOMEM, "reserving %zu bytes of scratch", bytes);
    }
    sw_arena_reset(a);
    sw_arena_free(c->scratch);
    c->scratch = a;
    c->used = 0;
    return 0;
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

/* ---- memory figures, device, precision, profiling ------------------------------------------ */

/* MemAvailable of /proc/meminfo (what the kernel can give without swapping), else free pages. */
static size_t host_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    char line[128];
    unsigned long long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    if (f) fclose(f);
    if (kb) return (size_t)kb * 1024;
    long pages = sysconf(_SC_AVPHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    return pages > 0 && psz > 0 ? (size_t)pages * (size_t)psz : 0;
}

static size_t host_total(void) {
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    return pages > 0 && psz > 0 ? (size_t)pages * (size_t)psz : 0;
}

/* The resident set now (/proc/self/statm's second field), 0 when unknown. */
static size_t host_resident(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, res = 0;
    int ok = f && fscanf(f, "%llu %llu", &size, &res) == 2;
    if (f) fclose(f);
    long psz = sysconf(_SC_PAGESIZE);
    return ok && psz > 0 ? (size_t)res * (size_t)psz : 0;
}

static int cpu_mem_info(struct sw_backend *be, struct sw_mem_info *out) {
    (void)be;
    out->in_use = host_resident();
    out->peak = (size_t)sw_peak_rss_bytes();
    if (out->peak < out->in_use) out->peak = out->in_use;
    out->free = host_available();
    out->total = host_total();
    return 0;
}

static int cpu_device_info(struct sw_backend *be, struct sw_device_info *out) {
    (void)be;
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "cpu");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) != 0 || !colon) continue;
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        v[strcspn(v, "\n")] = '\0';
        if (*v) snprintf(out->name, sizeof out->name, "%s", v);
        break;
    }
    if (f) fclose(f);
    out->total_bytes = host_total();
    out->compute_units = omp_get_max_threads();
    return 0;
}

static int cpu_set_precision(struct sw_backend *be, enum sw_matmul_precision precision) {
    (void)be;
    if ((int)precision < 0 || (int)precision >= SW_MATMUL_COUNT)
        return sw_err_set(SW_EINVAL, "matmul precision: unknown mode %d", (int)precision);
    if (precision != SW_MATMUL_FP32)
        return sw_err_set(SW_EUNSUPPORTED,
                          "matmul precision %s: the cpu backend computes in "
                          "float32 only",
                          sw_matmul_precision_name(precision));
    return 0;
}

static enum sw_matmul_precision cpu_get_precision(const struct sw_backend *be) {
    (void)be;
    return SW_MATMUL_FP32;
}

static int cpu_profile_enable(struct sw_backend *be, int on) {
    (void)be, (void)on;
    return sw_err_set(SW_EUNSUPPORTED, "per-op profiling: not available on the cpu backend");
}

static int cpu_profile_report(struct sw_backend *be, FILE *out) {
    (void)be, (void)out;
    return sw_err_set(SW_EUNSUPPORTED, "per-op profiling: not available on the cpu backend");
}

static void cpu_close(struct sw_backend *be);

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
                "OPENBLAS_CORETYPE=%s in the environment",
                core, __builtin_cpu_supports("avx512f") ? " and AVX-512" : "",
                __builtin_cpu_supports("avx512f") ? "SkylakeX" : "Haswell");
#endif
}

int sw_cpu_backend_open(struct sw_backend **out) {
    *out = NULL;
    struct sw_backend *be = calloc(1, sizeof(*be));
    struct cpu_ctx *c = calloc(1, sizeof(*c));
    if (c) c->scratch = sw_arena_new(SCRATCH_BLOCK);
    if (!be || !c || !c->scratch) {
        if (c) sw_arena_free(c->scratch);
        free(be), free(c);
        return sw_err_set(SW_ENOMEM, "cpu backend: out of memory");
    }
    *be = (struct sw_backend){
        .name = "cpu",
        .device = SW_DEVICE_CPU,
        .ctx = c,
        .supports_op = sw_backend_supports_op,
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
        .scratch_reserve = cpu_scratch_reserve,
        .mem_info = cpu_mem_info,
        .device_info = cpu_device_info,
        .set_precision = cpu_set_precision,
        .get_precision = cpu_get_precision,
        .profile_enable = cpu_profile_enable,
        .profile_report = cpu_profile_report,
        .close = cpu_close,
/* Every op of kernels/sw_ops.def: .name = sw_cpu_name. */
#define SW_OP(FAM, name, where, params) .name = sw_cpu_##name,
#include "sw_ops.def"
    };
    *out = be;
    check_blas_core();
    return 0;
}

/* be->close (sw_backend_close). */
static void cpu_close(struct sw_backend *be) {
    if (!be) return;
    struct cpu_ctx *c = be->ctx;
    if (c) {
        sw_arena_free(c->scratch);
        free(c->ce.g), free(c->ce.targets), free(c->ce.lse);
    }
    free(c);
    free(be);
}
