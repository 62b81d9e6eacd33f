/* backend — opens the backend for a device. The CPU backend always exists; the CUDA one is
 * linked in only by `make CUDA=1` (kernels/cuda/backend.cu defines sw_cuda_backend_open/free). */
#include "sw_kernels.h"

#include "sw_err.h"

void sw_cpu_backend_free(struct sw_backend *be);
#ifdef SW_CUDA
int sw_cuda_backend_open(struct sw_backend **out);
void sw_cuda_backend_free(struct sw_backend *be);
#endif

int sw_backend_open(enum sw_device device, struct sw_backend **out) {
    *out = NULL;
    if (device == SW_DEVICE_CPU) return sw_cpu_backend_open(out);
#ifdef SW_CUDA
    if (device == SW_DEVICE_CUDA) return sw_cuda_backend_open(out);
#endif
    return sw_err_set(SW_EUNSUPPORTED, "no backend for device %d in this build%s", (int)device,
                      device == SW_DEVICE_CUDA ? " (rebuild with make CUDA=1)" : "");
}

void sw_backend_close(struct sw_backend *be) {
    if (!be) return;
#ifdef SW_CUDA
    if (be->device == SW_DEVICE_CUDA) {
        sw_cuda_backend_free(be);
        return;
    }
#endif
    sw_cpu_backend_free(be);
}
