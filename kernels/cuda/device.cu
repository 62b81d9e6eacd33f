// device.cu — CUDA runtime helpers behind kernels/: device query and error mapping.
//
// Every CUDA call in sw goes through sw_cuda_check() so a failure becomes an sw_err
// (SW_EDEVICE with the CUDA error text and the call site), never an abort.
#include <cuda_runtime.h>

#include <cstdio>

extern "C" {
#include "sw_err.h"
#include "sw_cuda.h"
}

extern "C" int sw_cuda_check(int status, const char *what, const char *file, int line) {
    cudaError_t e = (cudaError_t)status;
    if (e == cudaSuccess) return 0;
    return sw_err_set(e == cudaErrorMemoryAllocation ? SW_ENOMEM : SW_EDEVICE,
                      "%s failed at %s:%d: %s (%s)", what, file, line, cudaGetErrorString(e),
                      cudaGetErrorName(e));
}

extern "C" int sw_cuda_device_info(int device, struct sw_cuda_info *info) {
    int count = 0;
    int rc = sw_cuda_check(cudaGetDeviceCount(&count), "cudaGetDeviceCount", __FILE__, __LINE__);
    if (rc < 0) return rc;
    if (device < 0 || device >= count)
        return sw_err_set(SW_EDEVICE, "CUDA device %d not present (%d found)", device, count);
    cudaDeviceProp p;
    rc = sw_cuda_check(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties", __FILE__,
                       __LINE__);
    if (rc < 0) return rc;
    snprintf(info->name, sizeof info->name, "%s", p.name);
    info->total_bytes = p.totalGlobalMem;
    info->sm_count = p.multiProcessorCount;
    info->cc_major = p.major;
    info->cc_minor = p.minor;
    return 0;
}
