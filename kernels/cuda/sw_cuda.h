/* sw_cuda — the C-callable pieces of the CUDA backend, private to kernels/cuda/ (drivers reach the
 * backend only through struct sw_backend, kernels/sw_kernels.h): the constructor that
 * kernels/backend.c calls, CUDA error mapping and the device query. Defined only in CUDA builds
 * (make CUDA=1, where SW_CUDA is 1). */
#ifndef SW_CUDA_H
#define SW_CUDA_H

#include <stddef.h>
#include <stdint.h>

struct sw_backend;
struct sw_backend_opts;

struct sw_cuda_info {
    char name[256];
    size_t total_bytes;
    int sm_count, cc_major, cc_minor;
};

/* A CUDA status (cudaError_t as int) as 0 or SW_EDEVICE / SW_ENOMEM with the error text and the
 * call site. (test/cli/train.bats looks for this symbol to tell a CUDA build.) */
int sw_cuda_check(int status, const char *what, const char *file, int line);
#define SW_CUDA_TRY(call) SW_TRY(sw_cuda_check((int)(call), #call, __FILE__, __LINE__))
/* Name, memory, SM count and compute capability of GPU device. 0 or SW_EDEVICE. */
int sw_cuda_device_info(int device, struct sw_cuda_info *info);

/* The CUDA backend's constructor (kernels/cuda/backend.cu); sw_backend_open_opts calls it with
 * the options (device index, initial GEMM precision, cross-entropy budgets). One stream,
 * cuBLASLt. Returns 0, SW_EDEVICE (no GPU, driver error), SW_EUNSUPPORTED (too old a GPU),
 * SW_EINVAL (a bad option) or SW_ENOMEM. The backend's close member frees it. */
int sw_cuda_backend_open(const struct sw_backend_opts *o, struct sw_backend **out);

/* Partial sums per array of the sums of squares (optim.cu): the grid of its first stage. */
#define SW_CUDA_SUMSQ_BLOCKS 256

#endif
