/* backend — opens the backend for a device, and what every backend shares: its options (the one
 * place the SW_CUDA_* environment variables are read) and the names of the GEMM precisions. The
 * CPU backend always exists; the CUDA one is linked in only by `make CUDA=1`
 * (kernels/cuda/backend.cu defines sw_cuda_backend_open). */
#include "sw_kernels.h"

#include "sw_err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SW_CUDA
int sw_cuda_backend_open(const struct sw_backend_opts *o, struct sw_backend **out);
#endif

/* ---- GEMM precision names ------------------------------------------------------------------ */

/* The names of enum sw_matmul_precision, by value. */
static const char *const prec_names[SW_MATMUL_COUNT] = {"fp32", "tf32", "bf16", "bf16i", "fp16"};

int sw_matmul_precision_parse(const char *s, enum sw_matmul_precision *out) {
    for (int i = 0; s && i < SW_MATMUL_COUNT; i++)
        if (strcmp(s, prec_names[i]) == 0) {
            *out = (enum sw_matmul_precision)i;
            return 0;
        }
    return sw_err_set(SW_EINVAL, "matmul precision '%s': expected fp32, tf32, bf16, bf16i or fp16",
                      s ? s : "(null)");
}

const char *sw_matmul_precision_name(int precision) {
    return precision >= 0 && precision < SW_MATMUL_COUNT ? prec_names[precision] : "?";
}

/* ---- options ------------------------------------------------------------------------------- */

void sw_backend_opts_init(struct sw_backend_opts *o) {
    memset(o, 0, sizeof *o);
    o->device_index = 0;
    o->matmul = -1;
    o->ce_chunk_bytes = (size_t)1 << 30;
    o->ce_keep_bytes = (size_t)4 << 30;
}

/* A non-negative decimal integer of environment variable name into *v (unchanged when the
 * variable is unset or empty). SW_EINVAL naming the variable otherwise. */
static int env_size(const char *name, unsigned long long max, unsigned long long *v) {
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (*s == '-' || *s == '+' || errno || *end || x > max)
        return sw_err_set(SW_EINVAL, "%s=%s: expected a non-negative integer (at most %llu)", name,
                          s, max);
    *v = x;
    return 0;
}

int sw_backend_opts_from_env(struct sw_backend_opts *o) {
    sw_backend_opts_init(o);
    unsigned long long v = (unsigned long long)o->device_index;
    SW_TRY(env_size("SW_CUDA_DEVICE", 1023, &v));
    o->device_index = (int)v;
    const char *m = getenv("SW_CUDA_MATMUL");
    if (m && *m) {
        enum sw_matmul_precision p;
        int rc = sw_matmul_precision_parse(m, &p);
        if (rc < 0) return sw_err_wrap(rc, "SW_CUDA_MATMUL");
        o->matmul = (int)p;
        snprintf(o->matmul_src, sizeof o->matmul_src, "SW_CUDA_MATMUL=%s", m);
    }
    /* 0 kept the built-in budget before this variable was read here; it still does. */
    v = 0;
    SW_TRY(env_size("SW_CUDA_CE_CHUNK_BYTES", (unsigned long long)SIZE_MAX, &v));
    if (v > 0) o->ce_chunk_bytes = (size_t)v;
    v = o->ce_keep_bytes;
    SW_TRY(env_size("SW_CUDA_CE_KEEP_BYTES", (unsigned long long)SIZE_MAX, &v));
    o->ce_keep_bytes = (size_t)v;
    return 0;
}

/* ---- open / close -------------------------------------------------------------------------- */

int sw_backend_available(enum sw_device device) {
#ifdef SW_CUDA
    if (device == SW_DEVICE_CUDA) return 1;
#endif
    return device == SW_DEVICE_CPU;
}

int sw_backend_supports_op(const struct sw_backend *be, enum sw_op op) {
    if ((int)op < 0 || op >= SW_OP_COUNT) return 0;
#define SW_OP(FAM, name, where, params)                                                            \
    if (op == SW_OP_##FAM && !be->name) return 0;
#include "sw_ops.def"
    return 1;
}

int sw_backend_open_opts(enum sw_device device, const struct sw_backend_opts *o,
                         struct sw_backend **out) {
    *out = NULL;
    if (device == SW_DEVICE_CPU) return sw_cpu_backend_open(out);
#ifdef SW_CUDA
    if (device == SW_DEVICE_CUDA) {
        struct sw_backend_opts env;
        if (!o) {
            int rc = sw_backend_opts_from_env(&env);
            if (rc < 0) return sw_err_wrap(rc, "cuda backend");
            o = &env;
        }
        return sw_cuda_backend_open(o, out);
    }
#else
    (void)o;
#endif
    return sw_err_set(SW_EUNSUPPORTED, "no backend for device %d in this build%s", (int)device,
                      device == SW_DEVICE_CUDA ? " (rebuild with make CUDA=1)" : "");
}

int sw_backend_open(enum sw_device device, struct sw_backend **out) {
    return sw_backend_open_opts(device, NULL, out);
}

void sw_backend_close(struct sw_backend *be) {
    if (be) be->close(be);
}
