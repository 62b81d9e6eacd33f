/* sw_cuda — what the C side knows of the CUDA backend. Declared always; defined only in
 * CUDA builds (make CUDA=1), where SW_CUDA is 1. Callers test sw_cuda_available() first. */
#ifndef SW_CUDA_H
#define SW_CUDA_H

#include <stddef.h>

struct sw_cuda_info {
    char name[256];
    size_t total_bytes;
    int sm_count, cc_major, cc_minor;
};

#ifdef SW_CUDA
int sw_cuda_check(int status, const char *what, const char *file, int line);
int sw_cuda_device_info(int device, struct sw_cuda_info *info);
#define SW_CUDA_TRY(call) SW_TRY(sw_cuda_check((int)(call), #call, __FILE__, __LINE__))
static inline int sw_cuda_available(void) { return 1; }
#else
static inline int sw_cuda_available(void) { return 0; }
#endif

#endif
