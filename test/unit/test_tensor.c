/* test_tensor — tensor shapes, strides, contiguity, allocation; the arena's alignment, reuse,
 * coalescing and high-water mark. */
#include "sw_arena.h"
#include "sw_err.h"
#include "sw_tensor.h"
#include "tap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void test_init(void) {
    struct sw_tensor t;
    int64_t shape[3] = {2, 3, 4};
    float buf[24];
    IS_INT(sw_tensor_init(&t, SW_DTYPE_F32, 3, shape, buf), 0, "init [2,3,4] F32");
    IS_INT(sw_tensor_numel(&t), 24, "numel 24");
    IS_INT(sw_tensor_nbytes(&t), 96, "nbytes 96");
    OK(t.strides[0] == 48 && t.strides[1] == 16 && t.strides[2] == 4, "byte strides 48,16,4");
    OK(t.data == buf && !t.owns_data && t.name == NULL && t.device == SW_DEVICE_CPU,
       "borrowed data, no name, CPU");
    OK(sw_tensor_is_contiguous(&t), "fresh tensor is contiguous");
    char s[64];
    IS_STR(sw_tensor_shape_str(&t, s, sizeof s), "[2, 3, 4]", "shape_str");
    IS_STR(sw_tensor_shape_str(&t, s, 5), "[2, ", "shape_str truncates to cap-1");
    sw_tensor_release(&t); /* borrowed: must not free buf */

    IS_INT(sw_tensor_init(&t, SW_DTYPE_BF16, 0, NULL, NULL), 0, "0-d tensor");
    IS_INT(sw_tensor_numel(&t), 1, "0-d numel is 1");
    IS_INT(sw_tensor_nbytes(&t), 2, "0-d BF16 is 2 bytes");
    IS_STR(sw_tensor_shape_str(&t, s, sizeof s), "[]", "0-d shape_str");

    int64_t q[2] = {3, 5};
    IS_INT(sw_tensor_init(&t, SW_DTYPE_Q4, 2, q, NULL), 0, "Q4 [3,5]");
    IS_INT(sw_tensor_nbytes(&t), 8, "Q4 15 elements round up to 8 bytes");
    OK(t.strides[0] == 0 && t.strides[1] == 0, "Q4 odd rows: strides recorded as 0");
    int64_t q2[2] = {3, 6};
    sw_tensor_init(&t, SW_DTYPE_Q4, 2, q2, NULL);
    OK(t.strides[0] == 3 && t.strides[1] == 0 && sw_tensor_is_contiguous(&t),
       "Q4 even rows: 3-byte row stride, contiguous");

    int64_t z[3] = {4, 0, 5};
    IS_INT(sw_tensor_init(&t, SW_DTYPE_F16, 3, z, NULL), 0, "zero dimension is valid");
    OK(sw_tensor_numel(&t) == 0 && sw_tensor_nbytes(&t) == 0, "zero dimension holds no bytes");

    int64_t neg[2] = {2, -1};
    IS_INT(sw_tensor_init(&t, SW_DTYPE_F32, 2, neg, NULL), SW_EINVAL, "negative dimension");
    OK(strstr(sw_err_msg(), "dimension 1") != NULL, "message names the dimension: %s",
       sw_err_msg());
    IS_INT(sw_tensor_init(&t, SW_DTYPE_F32, 9, shape, NULL), SW_EINVAL, "ndim 9");
    IS_INT(sw_tensor_init(&t, SW_DTYPE_F32, -1, shape, NULL), SW_EINVAL, "ndim -1");
    IS_INT(sw_tensor_init(&t, SW_DTYPE_COUNT, 1, shape, NULL), SW_EINVAL, "unknown dtype");

    int64_t huge[3] = {1ll << 40, 1ll << 20, 1ll << 10};
    uint64_t n = 7;
    IS_INT(sw_shape_numel(3, huge, &n), SW_ERANGE, "2^70 elements overflow");
    IS_INT(n, 7, "numel output untouched on overflow");
    IS_INT(sw_tensor_init(&t, SW_DTYPE_U8, 3, huge, NULL), SW_ERANGE,
           "init refuses an overflowing shape");
    int64_t big[2] = {1ll << 31, 1ll << 31}; /* 2^62 elements: fits numel, not 8-byte bytes */
    IS_INT(sw_shape_numel(2, big, &n), 0, "2^62 elements fit in int64");
    IS_INT(sw_tensor_init(&t, SW_DTYPE_F64, 2, big, NULL), SW_ERANGE, "but 2^62 doubles do not");
    int64_t hz[3] = {1ll << 40, 0, 1ll << 40};
    IS_INT(sw_shape_numel(3, hz, &n), 0, "a zero dimension wins over overflow");
    IS_INT(n, 0, "numel 0");

    struct sw_tensor h;
    memset(&h, 0, sizeof h); /* hand-built with an overflowing shape */
    h.dtype = SW_DTYPE_F32;
    h.ndim = 3;
    memcpy(h.shape, huge, sizeof huge);
    IS_INT(sw_tensor_numel(&h), -1, "numel -1 on overflow");
    OK(sw_tensor_nbytes(&h) == SIZE_MAX, "nbytes SIZE_MAX on overflow");
}

static void test_contiguity(void) {
    struct sw_tensor t;
    int64_t shape[3] = {2, 3, 4};
    sw_tensor_init(&t, SW_DTYPE_F16, 3, shape, NULL);
    /* transpose the last two dims: shape [2,4,3], strides [24, 2, 8] */
    struct sw_tensor tr = t;
    tr.shape[1] = 4, tr.shape[2] = 3;
    tr.strides[1] = 2, tr.strides[2] = 8;
    OK(!sw_tensor_is_contiguous(&tr), "transposed view is not contiguous");
    struct sw_tensor sl = t; /* a slice along dim 0 keeping a padded stride */
    sl.strides[0] = 48;
    OK(!sw_tensor_is_contiguous(&sl), "padded outer stride is not contiguous");
    struct sw_tensor one = t;
    one.shape[0] = 1;
    one.strides[0] = 12345; /* size-1 dim: stride irrelevant */
    OK(sw_tensor_is_contiguous(&one), "a size-1 dimension may have any stride");
    struct sw_tensor e = t;
    e.shape[1] = 0;
    e.strides[2] = 99;
    OK(sw_tensor_is_contiguous(&e), "an empty tensor is contiguous");
}

static void test_alloc(void) {
    struct sw_tensor t;
    int64_t shape[2] = {3, 7};
    IS_INT(sw_tensor_alloc(&t, SW_DTYPE_F32, 2, shape), 0, "alloc [3,7] F32");
    OK(t.owns_data && ((uintptr_t)t.data & 63) == 0, "owned, 64-byte aligned");
    int zero = 1;
    for (int i = 0; i < 21; i++)
        zero &= ((float *)t.data)[i] == 0.0f;
    OK(zero, "zero-filled");
    ((float *)t.data)[20] = 1.0f; /* last element writable (ASan checks the bounds) */
    IS_INT(sw_tensor_set_name(&t, "model.layers.0.w"), 0, "set_name");
    IS_STR(t.name, "model.layers.0.w", "name copied");
    IS_INT(sw_tensor_set_name(&t, "renamed"), 0, "rename frees the old name");
    sw_tensor_release(&t);
    OK(t.data == NULL && t.name == NULL && t.ndim == 0 && !t.owns_data,
       "release zeroes the struct");
    sw_tensor_release(&t);
    sw_tensor_release(NULL);
    OK(1, "release twice and release(NULL) are harmless");

    int64_t z[1] = {0};
    IS_INT(sw_tensor_alloc(&t, SW_DTYPE_F32, 1, z), 0, "alloc of an empty tensor");
    OK(t.data != NULL && ((uintptr_t)t.data & 63) == 0, "empty tensor still gets a pointer");
    sw_tensor_release(&t);
}

static void test_arena(void) {
    struct sw_arena *a = sw_arena_new(4096);
    OK(a != NULL, "arena_new");
    IS_INT(sw_arena_used(a), 0, "fresh arena: used 0");
    void *p1 = sw_arena_alloc(a, 10, 0);
    void *p2 = sw_arena_alloc(a, 10, 0);
    OK(p1 && p2 && ((uintptr_t)p1 & 63) == 0 && ((uintptr_t)p2 & 63) == 0, "default alignment 64");
    OK((char *)p2 >= (char *)p1 + 10, "allocations do not overlap");
    int bad = 0;
    for (size_t al = 1; al <= 4096; al <<= 1) {
        void *p = sw_arena_alloc(a, 3, al);
        if (!p || ((uintptr_t)p & (al - 1))) bad++;
        memset(p, 0xab, 3);
    }
    IS_INT(bad, 0, "every power-of-two alignment up to 4096 is honoured");
    OK(sw_arena_alloc(a, 8, 3) == NULL, "alignment 3 is refused");
    OK(sw_arena_alloc(a, 8, 8192) == NULL, "alignment 8192 is refused");
    IS_INT(sw_arena_used(a), 20 + 13 * 3, "used counts requested bytes");

    unsigned char *c = sw_arena_calloc(a, 100, 8);
    int zero = 1;
    for (int i = 0; i < 100; i++)
        zero &= c[i] == 0;
    OK(zero, "calloc zero-fills");
    char *s = sw_arena_strdup(a, "tokenizer.json");
    IS_STR(s, "tokenizer.json", "strdup");

    /* a request bigger than the block gets its own block; the head keeps serving small ones */
    unsigned char *big = sw_arena_alloc(a, 100000, 4096);
    OK(big && ((uintptr_t)big & 4095) == 0, "oversized request, 4096-aligned");
    memset(big, 1, 100000);
    unsigned char *small = sw_arena_alloc(a, 16, 16);
    OK(small && (small < big || small >= big + 100000), "small request after a big one");

    size_t peak = sw_arena_peak(a);
    OK(peak == sw_arena_used(a) && peak > 100000, "peak tracks used (%zu)", peak);
    sw_arena_reset(a);
    IS_INT(sw_arena_used(a), 0, "reset: used 0");
    IS_INT(sw_arena_peak(a), peak, "reset keeps the peak");
    /* after the coalescing reset the whole previous cycle fits without a new block */
    unsigned char *r1 = sw_arena_alloc(a, 100000, 64);
    unsigned char *r2 = sw_arena_alloc(a, 2000, 64);
    OK(r1 && r2 && r2 == r1 + 100032, "after reset one block serves the whole cycle");
    sw_arena_reset(a);
    unsigned char *r3 = sw_arena_alloc(a, 8, 64);
    OK(r3 == r1, "memory is reused after reset");

    struct sw_tensor t;
    int64_t shape[2] = {5, 3};
    IS_INT(sw_tensor_alloc_arena(&t, a, SW_DTYPE_BF16, 2, shape), 0, "tensor from the arena");
    OK(t.data && ((uintptr_t)t.data & 63) == 0 && !t.owns_data, "arena tensor: aligned, not owned");
    sw_tensor_release(&t); /* must not free arena memory */
    OK(sw_arena_alloc(a, 0, 0) != NULL, "size 0 gives a pointer");
    sw_arena_free(a);
    sw_arena_free(NULL);
    OK(1, "arena_free(NULL) is harmless");

    struct sw_arena *d = sw_arena_new(0);
    void *p = sw_arena_alloc(d, (1u << 20) - 64, 64);
    OK(p != NULL, "a request just under 1 MiB on a default arena");
    sw_arena_reset(d);
    sw_arena_reset(NULL);
    sw_arena_free(d);
}

int main(void) {
    test_init();
    test_contiguity();
    test_alloc();
    test_arena();
    return tap_done();
}
