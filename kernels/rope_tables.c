/* rope_tables — the host-side cos/sin tables every backend's RoPE reads, computed the way
 * transformers computes them so positions match HF to float rounding: inv_freq in float32
 * (1 / theta^(2i/D)), Llama-3 band scaling or linear scaling applied in float32, the angle as
 * one float32 product pos·inv_freq, then cos/sin of that float angle. Tables are [P, D/2]: the
 * second half of HF's [P, D] cat((freqs, freqs)) table repeats the first, so it is not stored. */
#include "sw_kernels.h"

#include "sw_err.h"

#include <math.h>

/* HF _compute_llama3_parameters on one frequency (float32 arithmetic like the tensor ops). */
static float llama3_scale(float inv, const struct sw_rope_params *rp) {
    float factor = (float)rp->factor, lo = (float)rp->low_freq_factor;
    float hi = (float)rp->high_freq_factor, old = (float)rp->original_max_position;
    float low_wavelen = old / lo, high_wavelen = old / hi;
    float wavelen = (float)(2.0 * M_PI) / inv;
    float v = wavelen > low_wavelen ? inv / factor : inv;
    if (!(wavelen < high_wavelen) && !(wavelen > low_wavelen)) {
        float smooth = (old / wavelen - lo) / (hi - lo);
        v = (1.0f - smooth) * v / factor + smooth * v;
    }
    return v;
}

int sw_rope_tables(const struct sw_rope_params *rp, int64_t P, int64_t D, float *cos_t,
                   float *sin_t) {
    if (D <= 0 || D % 2 || P < 0 || rp->theta <= 0)
        return sw_err_set(SW_EINVAL,
                          "rope tables: head_dim %lld must be even and positive, "
                          "rope_theta %g positive",
                          (long long)D, rp->theta);
    if (rp->type == 1 && (rp->factor <= 0 || rp->high_freq_factor == rp->low_freq_factor ||
                          rp->low_freq_factor <= 0 || rp->original_max_position <= 0))
        return sw_err_set(SW_EINVAL, "rope tables: llama3 scaling needs factor > 0, "
                                     "low_freq_factor > 0, high_freq_factor != low_freq_factor and "
                                     "original_max_position_embeddings > 0");
    if (rp->type == 2 && rp->factor <= 0)
        return sw_err_set(SW_EINVAL, "rope tables: linear scaling needs factor > 0");
    int64_t half = D / 2;
    for (int64_t i = 0; i < half; i++) {
        float e = (float)(2 * i) / (float)D;
        float p = (float)pow((double)(float)rp->theta, (double)e);
        float inv = 1.0f / p;
        if (rp->type == 1)
            inv = llama3_scale(inv, rp);
        else if (rp->type == 2)
            inv = inv / (float)rp->factor;
        for (int64_t pos = 0; pos < P; pos++) {
            float ang = (float)pos * inv;
            cos_t[pos * half + i] = (float)cos((double)ang);
            sin_t[pos * half + i] = (float)sin((double)ang);
        }
    }
    return 0;
}
