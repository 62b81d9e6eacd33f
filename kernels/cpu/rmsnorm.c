/* CPU RMSNorm — HF LlamaRMSNorm: out = w · x · rstd with rstd = 1/sqrt(mean(x²) + eps), the
 * mean taken in double. Shapes: x/out/dout/dx[N,C], w/dw[C], rstd[N]. Also serves Qwen3's
 * per-head q/k norms (N = tokens·heads rows of C = head_dim).
 * Backward: with xh = x·rstd and g = dout·w,
 *   dx = rstd · (g − xh · mean(g·xh)),   dw[c] = Σ_n dout[n,c]·xh[n,c]
 * (dw by column blocks, rows in order: deterministic for any thread count). */
#include "cpu_ops.h"

#include <math.h>

int sw_cpu_rmsnorm_fwd(struct sw_backend *be, float *out, float *rstd, const float *x,
                       const float *w, int64_t N, int64_t C, float eps) {
    (void)be;
#pragma omp parallel for schedule(static) if (N * C > 16384)
    for (int64_t n = 0; n < N; n++) {
        const float *xr = x + n * C;
        double ss = 0;
        for (int64_t c = 0; c < C; c++)
            ss += (double)xr[c] * xr[c];
        float r = (float)(1.0 / sqrt(ss / (double)C + (double)eps));
        rstd[n] = r;
        float *o = out + n * C;
        for (int64_t c = 0; c < C; c++)
            o[c] = w[c] * (xr[c] * r);
    }
    return 0;
}

int sw_cpu_rmsnorm_bwd(struct sw_backend *be, float *dx, float *dw, const float *dout,
                       const float *x, const float *w, const float *rstd, int64_t N, int64_t C,
                       float beta) {
    (void)be;
    if (dx) {
#pragma omp parallel for schedule(static) if (N * C > 16384)
        for (int64_t n = 0; n < N; n++) {
            const float *xr = x + n * C, *g = dout + n * C;
            float r = rstd[n];
            double dot = 0;
            for (int64_t c = 0; c < C; c++)
                dot += (double)g[c] * w[c] * ((double)xr[c] * r);
            double mean = dot / (double)C;
            float *d = dx + n * C;
            for (int64_t c = 0; c < C; c++) {
                double v = r * ((double)g[c] * w[c] - (double)xr[c] * r * mean);
                d[c] = (float)(beta == 0.0f ? v : v + (double)beta * d[c]);
            }
        }
    }
    if (dw) {
        int64_t nblk = (C + SW_CPU_COL_BLOCK - 1) / SW_CPU_COL_BLOCK;
#pragma omp parallel for schedule(static) if (N * C > 16384)
        for (int64_t blk = 0; blk < nblk; blk++) {
            int64_t c0 = blk * SW_CPU_COL_BLOCK;
            int64_t c1 = c0 + SW_CPU_COL_BLOCK < C ? c0 + SW_CPU_COL_BLOCK : C;
            double acc[SW_CPU_COL_BLOCK] = {0};
            for (int64_t n = 0; n < N; n++) {
                const float *xr = x + n * C, *g = dout + n * C;
                double r = rstd[n];
                for (int64_t c = c0; c < c1; c++)
                    acc[c - c0] += (double)g[c] * xr[c] * r;
            }
            for (int64_t c = c0; c < c1; c++)
                dw[c] += (float)acc[c - c0];
        }
    }
    return 0;
}
