// gemm_memo.cu — 16-bit copies of float32 GEMM operands, reused by the GEMMs that follow.
//
// In the 16-bit modes every GEMM operand that arrives as float32 is rounded into the mode's
// 16-bit type first. The model reads one tensor in several consecutive products — the q, k and
// v projections share their input, and every linear's backward multiplies the same dY twice (dX
// and dW), with the same X as its forward — so converting once per run of GEMMs removes about a
// third of the conversion traffic (the [tokens, intermediate] gradients of gate/up most of all).
//
// Correctness rule: a copy is reused only while nothing but GEMMs has run since it was made.
//  - Every launch outside the GEMM path (SW_CUDA_LAUNCHED), every op entry (SW_CUDA_OP) and
//    every memory operation of the backend (upload, copy, memset0, free, scratch reset) bumps
//    sw_cuda_epoch; a GEMM that finds the epoch moved since the last GEMM drops every copy.
//  - A GEMM's output range drops the copies whose source it overlaps (dX accumulated into a
//    buffer another product reads next).
// Lookup is by (source pointer, element count, mode); a copy lives in one of a few slots, each
// its own device buffer grown on demand, the least recently used one reused.
#include "cuda_ops.h"

unsigned long long sw_cuda_epoch = 1;

void sw_cuda_memo_clear(sw_cuda_ctx *c) {
    for (int i = 0; i < SW_CUDA_MEMO_SLOTS; i++)
        c->memo[i].src = NULL;
}

void sw_cuda_memo_begin(sw_cuda_ctx *c) {
    if (c->memo_epoch != sw_cuda_epoch) sw_cuda_memo_clear(c);
}

void sw_cuda_memo_end(sw_cuda_ctx *c, const void *written, size_t bytes) {
    uintptr_t w0 = (uintptr_t)written, w1 = w0 + bytes;
    for (int i = 0; i < SW_CUDA_MEMO_SLOTS; i++) {
        sw_cuda_memo_slot *s = &c->memo[i];
        if (!s->src) continue;
        uintptr_t s0 = (uintptr_t)s->src, s1 = s0 + (uintptr_t)s->n * sizeof(float);
        if (s0 < w1 && w0 < s1) s->src = NULL;
    }
    c->memo_epoch = sw_cuda_epoch; // our own conversion launches do not count
}

const void *sw_cuda_memo_half(sw_cuda_ctx *c, const char *what, const float *src, int64_t n) {
    int victim = 0; // an empty slot (key 0) first, else the least recently used
    for (int i = 0; i < SW_CUDA_MEMO_SLOTS; i++) {
        sw_cuda_memo_slot *s = &c->memo[i];
        if (s->src == src && s->n == n && s->prec == (int)c->prec) {
            s->last_use = ++c->memo_tick;
            return s->buf;
        }
        unsigned long long key = s->src ? s->last_use : 0,
                           best = c->memo[victim].src ? c->memo[victim].last_use : 0;
        if (key < best) victim = i;
    }
    sw_cuda_memo_slot *s = &c->memo[victim];
    size_t bytes = (size_t)n * 2;
    if (bytes > s->cap) {
        if (s->buf) cudaFreeAsync(s->buf, c->stream);
        s->buf = NULL;
        s->cap = 0;
        s->src = NULL;
        size_t cap = bytes + bytes / 8;
        cudaError_t e = cudaMallocAsync(&s->buf, cap, c->stream);
        if (e != cudaSuccess) {
            cudaGetLastError();
            s->buf = NULL;
            sw_err_set(e == cudaErrorMemoryAllocation ? SW_ENOMEM : SW_EDEVICE,
                       "%s: no device memory for a 16-bit operand copy of %zu bytes (%s)", what,
                       cap, cudaGetErrorString(e));
            return NULL;
        }
        s->cap = cap;
    }
    s->src = NULL; // invalid until the conversion is queued
    if (sw_cuda_to_half(c, what, s->buf, src, n) < 0) return NULL;
    s->src = src;
    s->n = n;
    s->prec = (int)c->prec;
    s->last_use = ++c->memo_tick;
    return s->buf;
}
