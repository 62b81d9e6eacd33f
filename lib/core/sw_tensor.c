/* sw_tensor — shape bookkeeping for typed n-d views: contiguous strides, element counts with
 * overflow checks, contiguity, and the three ways to get data (borrowed, owned, arena).
 *
 * Every size is computed with checked multiplication: shapes come from untrusted files
 * (safetensors headers, GGUF), and a wrapped element count would turn into a short allocation
 * and an out-of-bounds write later. */
#include "sw_tensor.h"

#include "sw_arena.h"
#include "sw_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sw_shape_numel(int ndim, const int64_t *shape, uint64_t *out) {
    if (ndim < 0 || ndim > SW_TENSOR_MAX_DIMS)
        return sw_err_set(SW_EINVAL, "shape: ndim %d outside 0..%d", ndim, SW_TENSOR_MAX_DIMS);
    int64_t n = 1;
    int overflow = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return sw_err_set(SW_EINVAL, "shape: dimension %d is negative (%lld)", i,
                              (long long)shape[i]);
        if (__builtin_mul_overflow(n, shape[i], &n)) overflow = 1;
    }
    /* A zero dimension makes the product 0 even if a partial product overflowed. */
    for (int i = 0; i < ndim; i++)
        if (shape[i] == 0) n = 0, overflow = 0;
    if (overflow) return sw_err_set(SW_ERANGE, "shape: element count overflows 64 bits");
    *out = (uint64_t)n;
    return 0;
}

/* Contiguous strides into t->strides. Q4 packs two elements per byte, so a dimension's stride
 * is a whole number of bytes only when the elements inside it are even in count; otherwise
 * (and always for the innermost dimension) it is recorded as 0. */
static void tensor_set_strides(struct sw_tensor *t) {
    int64_t inner = 1; /* elements inside dimension d */
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->dtype == SW_DTYPE_Q4)
            t->strides[d] = (inner % 2 == 0) ? inner / 2 : 0;
        else
            t->strides[d] = inner * (sw_dtype_bits(t->dtype) / 8);
        inner *= t->shape[d];
    }
}

int sw_tensor_init(struct sw_tensor *t, enum sw_dtype dtype, int ndim, const int64_t *shape,
                   void *data) {
    memset(t, 0, sizeof *t);
    if ((unsigned)dtype >= SW_DTYPE_COUNT)
        return sw_err_set(SW_EINVAL, "tensor: unknown dtype %d", (int)dtype);
    uint64_t numel;
    SW_TRY(sw_shape_numel(ndim, shape, &numel));
    /* Byte sizes and strides are int64 too: the whole extent must fit. */
    int64_t esize = dtype == SW_DTYPE_Q4 ? 1 : sw_dtype_bits(dtype) / 8;
    int64_t bytes;
    if (__builtin_mul_overflow((int64_t)numel, esize, &bytes) || (uint64_t)bytes > SIZE_MAX)
        return sw_err_set(SW_ERANGE, "tensor: %llu elements of %s overflow the address space",
                          (unsigned long long)numel, sw_dtype_name(dtype));
    t->dtype = dtype;
    t->device = SW_DEVICE_CPU;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    tensor_set_strides(t);
    t->data = data;
    return 0;
}

int sw_tensor_alloc(struct sw_tensor *t, enum sw_dtype dtype, int ndim, const int64_t *shape) {
    SW_TRY(sw_tensor_init(t, dtype, ndim, shape, NULL));
    size_t n = sw_tensor_nbytes(t);
    /* Round up to the alignment (aligned_alloc wants a multiple) and never ask for 0 bytes, so
     * an empty tensor still has a unique non-NULL pointer. */
    size_t cap = n == 0 ? 64 : (n + 63) & ~(size_t)63;
    if (cap < n) return sw_err_set(SW_ENOMEM, "tensor: cannot allocate %zu bytes", n);
    void *p = aligned_alloc(64, cap);
    if (!p) return sw_err_set(SW_ENOMEM, "tensor: cannot allocate %zu bytes", n);
    memset(p, 0, cap);
    t->data = p;
    t->owns_data = 1;
    return 0;
}

int sw_tensor_alloc_arena(struct sw_tensor *t, struct sw_arena *a, enum sw_dtype dtype, int ndim,
                          const int64_t *shape) {
    SW_TRY(sw_tensor_init(t, dtype, ndim, shape, NULL));
    void *p = sw_arena_alloc(a, sw_tensor_nbytes(t), 64);
    if (!p) return SW_ENOMEM; /* the arena set the message */
    t->data = p;
    return 0;
}

void sw_tensor_release(struct sw_tensor *t) {
    if (!t) return;
    if (t->owns_data) free(t->data);
    free(t->name);
    memset(t, 0, sizeof *t);
}

int sw_tensor_set_name(struct sw_tensor *t, const char *name) {
    char *copy = NULL;
    if (name && !(copy = strdup(name)))
        return sw_err_set(SW_ENOMEM, "tensor: out of memory naming '%s'", name);
    free(t->name);
    t->name = copy;
    return 0;
}

int64_t sw_tensor_numel(const struct sw_tensor *t) {
    if (t->ndim < 0 || t->ndim > SW_TENSOR_MAX_DIMS) return -1;
    int64_t p = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0) return -1;
        if (t->shape[i] == 0) return 0;
    }
    for (int i = 0; i < t->ndim; i++)
        if (__builtin_mul_overflow(p, t->shape[i], &p)) return -1;
    return p;
}

size_t sw_tensor_nbytes(const struct sw_tensor *t) {
    int64_t n = sw_tensor_numel(t);
    if (n < 0) return SIZE_MAX; /* an impossible size: any allocation of it fails loudly */
    return sw_dtype_nbytes(t->dtype, (uint64_t)n);
}

int sw_tensor_is_contiguous(const struct sw_tensor *t) {
    if (sw_tensor_numel(t) == 0) return 1; /* no element: any strides describe it */
    struct sw_tensor want = *t;
    tensor_set_strides(&want);
    /* A dimension of size 1 is never stepped over, so its stride does not matter (numpy's rule). */
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] != 1 && t->strides[d] != want.strides[d]) return 0;
    return 1;
}

char *sw_tensor_shape_str(const struct sw_tensor *t, char *buf, size_t cap) {
    if (cap == 0) return buf;
    size_t len = 0;
    buf[0] = '\0';
    int n = snprintf(buf, cap, "[");
    len = n > 0 ? (size_t)n : 0;
    for (int i = 0; i < t->ndim && len < cap; i++) {
        n = snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        if (n < 0) break;
        len += (size_t)n;
    }
    if (len < cap) snprintf(buf + len, cap - len, "]");
    return buf;
}
