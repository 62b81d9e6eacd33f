/* test_cuda_init — sw_model_init_random on the CUDA backend fills a host staging buffer of
 * 16 Mi floats in parallel and uploads it piece by piece; the device values must be the CPU
 * backend's (filled in place) bit for bit. The model's embedding (180,000 × 96 = 17.28 M values)
 * spans two pieces and its pad row 174,762 straddles the piece boundary (2^24 / 96 = 174,762.7),
 * so the piece offsets and the partial zeroing of the pad row are both exercised.
 * Runs on a machine with a GPU (make test-cuda). */
#include "sw_err.h"
#include "sw_model.h"
#include "sw_parallel.h"
#include "fixtures.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void config(struct sw_model_config *c) {
    struct sw_test_shape shape = {.vocab = 180000,
                                  .hidden = 96,
                                  .intermediate = 256,
                                  .layers = 2,
                                  .heads = 6,
                                  .kv_heads = 2,
                                  .head_dim = 16};
    sw_test_config(c, SW_ARCH_QWEN2, shape);
    c->bos_token_id = -1;
    c->pad_token_id = 174762;
}

int main(void) {
    sw_parallel_init();
    struct sw_backend *cpu = NULL, *gpu = NULL;
    if (!OK(sw_backend_open(SW_DEVICE_CPU, &cpu) == 0, "open cpu backend")) return tap_done();
    int rc = sw_backend_open(SW_DEVICE_CUDA, &gpu);
    if (!OK(rc == 0, "open cuda backend (%s)", rc ? sw_err_msg() : "ok")) {
        sw_backend_close(cpu);
        return tap_done();
    }
    struct sw_model_config c;
    config(&c);
    struct sw_model *mc = NULL, *mg = NULL;
    rc = sw_model_new(&c, cpu, &mc);
    if (rc == 0) rc = sw_model_new(&c, gpu, &mg);
    if (rc == 0) rc = sw_model_init_random(mc, 99, 0.02f);
    if (rc == 0) rc = sw_model_init_random(mg, 99, 0.02f);
    if (OK(rc == 0, "init a %lld-parameter model on both backends (%s)",
           rc == 0 ? (long long)sw_model_numel(mc, 0) : 0LL, rc ? sw_err_msg() : "ok")) {
        int same = 1, np = sw_model_nparams(mc);
        for (int i = 0; i < np && rc == 0; i++) {
            struct sw_param *p = sw_model_param(mc, i), *q = sw_model_param(mg, i);
            size_t bytes = (size_t)sw_tensor_numel(&p->value) * sizeof(float);
            float *h = malloc(bytes ? bytes : 1);
            rc = h ? gpu->download(gpu, h, q->value.data, bytes) : SW_ENOMEM;
            if (rc == 0 && memcmp(h, p->value.data, bytes)) {
                if (same) DIAG("first difference in '%s'", p->name);
                same = 0;
            }
            free(h);
        }
        OK(rc == 0 && same, "every device value equals the CPU backend's, bit for bit (%d tensors)",
           np);
        const float *e = sw_model_param_find(mc, "model.embed_tokens.weight")->value.data;
        int zero = 1;
        for (int64_t k = 0; k < c.hidden_size; k++)
            zero &= e[c.pad_token_id * c.hidden_size + k] == 0;
        OK(zero, "the pad row across the staging boundary is zero");
    }
    sw_model_free(mg);
    sw_model_free(mc);
    sw_backend_close(gpu);
    sw_backend_close(cpu);
    return tap_done();
}
