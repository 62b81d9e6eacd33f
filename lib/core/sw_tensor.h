/* sw_tensor — a typed n-dimensional view: dtype, shape (outermost first, like numpy), byte
 * strides, device, data pointer and an optional name.
 *
 * A tensor does not own its data unless it was made by sw_tensor_alloc() (then
 * sw_tensor_release() frees it) or taken from an arena (the arena owns it). Q4 tensors must be
 * contiguous. Shapes with a zero dimension are valid and hold no bytes. */
#ifndef SW_TENSOR_H
#define SW_TENSOR_H

#include "sw_dtype.h"

#include <stddef.h>
#include <stdint.h>

#define SW_TENSOR_MAX_DIMS 8

enum sw_device { SW_DEVICE_CPU = 0, SW_DEVICE_CUDA = 1 };

struct sw_arena;

struct sw_tensor {
    enum sw_dtype dtype;
    enum sw_device device;
    int ndim;
    int64_t shape[SW_TENSOR_MAX_DIMS];
    int64_t strides[SW_TENSOR_MAX_DIMS]; /* bytes; for Q4 only the contiguous layout is valid,
                                             and a stride that is not a whole number of bytes
                                             (always the innermost) is recorded as 0 */
    void *data;
    char *name;    /* owned copy or NULL */
    int owns_data; /* data was malloc'ed by sw_tensor_alloc */
};

/* Describe a contiguous tensor over borrowed data (may be NULL for a shape-only tensor).
 * Returns 0, or SW_EINVAL for ndim outside 0..8, a negative dimension or an unknown dtype, or
 * SW_ERANGE when the byte size overflows int64. */
int sw_tensor_init(struct sw_tensor *t, enum sw_dtype dtype, int ndim, const int64_t *shape,
                   void *data);
/* Like init, and allocate zeroed, 64-byte-aligned data owned by the tensor. */
int sw_tensor_alloc(struct sw_tensor *t, enum sw_dtype dtype, int ndim, const int64_t *shape);
/* Like init, with data from the arena (not zeroed; freed with the arena). */
int sw_tensor_alloc_arena(struct sw_tensor *t, struct sw_arena *a, enum sw_dtype dtype, int ndim,
                          const int64_t *shape);
/* Free owned data and the name; the struct is left zeroed. Accepts NULL. */
void sw_tensor_release(struct sw_tensor *t);
/* Replace the name (copied). Returns 0 or SW_ENOMEM. */
int sw_tensor_set_name(struct sw_tensor *t, const char *name);

/* Number of elements; 1 for a 0-d tensor. Returns -1 on int64 overflow. */
int64_t sw_tensor_numel(const struct sw_tensor *t);
/* Bytes of the contiguous data (numel × element size, Q4 rounded up); SIZE_MAX if numel overflows.
 */
size_t sw_tensor_nbytes(const struct sw_tensor *t);
/* 1 if the strides are the row-major packed layout (dimensions of size 1 may have any stride;
 * a tensor with no elements is contiguous), else 0. */
int sw_tensor_is_contiguous(const struct sw_tensor *t);
/* "[2, 3, 4]" ("[]" for 0-d) into buf, truncated to cap - 1 characters; returns buf. */
char *sw_tensor_shape_str(const struct sw_tensor *t, char *buf, size_t cap);

/* Multiply shape dimensions with overflow checks (result <= INT64_MAX; a zero dimension gives 0
 * whatever the others are): 0, SW_ERANGE on overflow, SW_EINVAL for a bad ndim or a negative
 * dimension. */
int sw_shape_numel(int ndim, const int64_t *shape, uint64_t *out);

#endif
