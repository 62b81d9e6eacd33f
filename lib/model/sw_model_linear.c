/* sw_model_linear — one nn.Linear of the decoder with its optional LoRA branch (PEFT's
 * lora.Linear):  y = x·Wᵀ + b + s · (dropout(x)·Aᵀ)·Bᵀ,  s = alpha/r (or alpha/sqrt(r)).
 * Shapes: x [N, in], W [out, in], b [out], A [r, in], B [out, r], y [N, out]; the branch keeps
 * xd = dropout(x) (only when dropout is on) and t = xd·Aᵀ [N, r] for the backward:
 *   dB += s · dyᵀ·t,   dt = s · dy·B,   dA += dtᵀ·xd,   dx += dropout_bwd(dt·A)
 * and the base path dx = dy·W, dW += dyᵀ·x, db += Σ dy only for trainable parameters, so a
 * LoRA step never computes a frozen weight's gradient. A base W held quantized (QLoRA, a
 * quantized folder: lin->w->quant) runs through the backend's qmatmul ops, which dequantize
 * tiles of W inside the product; W is never float in memory. */
#include "sw_model_impl.h"

#include "sw_err.h"

static uint64_t dropout_seed(const struct sw_model *m, const struct sw_linear *lin) {
    return m->step.dropout_seed ^ (0x9E3779B97F4A7C15ull * (lin->site + 1));
}

static int lora_dropout_on(const struct sw_model *m, const struct sw_linear *lin) {
    return m->training && lin->lora_dropout > 0.0f;
}

int sw_linear_base_forward(struct sw_model *m, const struct sw_linear *lin, float *y,
                           const float *x, int64_t N) {
    struct sw_backend *be = m->be;
    if (m->observer) {
        struct sw_linear_site site = {.layer = (int)(lin->site / SW_LIN_COUNT),
                                      .kind = (int)(lin->site % SW_LIN_COUNT),
                                      .name = sw_lin_names[lin->site % SW_LIN_COUNT],
                                      .in = lin->in,
                                      .out = lin->out};
        SW_TRY(m->observer(m->observer_ctx, &site, x, N));
    }
    const float *b = lin->b ? lin->b->value.data : NULL;
    if (lin->w->quant) /* a quantized base: dequantize-in-GEMM on the backend */
        return be->qmatmul_fwd(be, y, x, lin->w->quant, b, N, 1.0f, 0.0f);
    return be->matmul_fwd(be, y, x, lin->w->value.data, b, N, lin->out, lin->in, 1.0f, 0.0f);
}

int sw_linear_base_backward_dx(struct sw_model *m, const struct sw_linear *lin, float *dx,
                               float dx_beta, const float *dy, int64_t N) {
    struct sw_backend *be = m->be;
    if (lin->w->quant) return be->qmatmul_bwd_dx(be, dx, dy, lin->w->quant, N, 1.0f, dx_beta);
    return be->matmul_bwd_dx(be, dx, dy, lin->w->value.data, N, lin->out, lin->in, 1.0f, dx_beta);
}

int sw_linear_forward(struct sw_model *m, const struct sw_linear *lin, float *y, const float *x,
                      int64_t N, struct sw_lora_act *la) {
    struct sw_backend *be = m->be;
    SW_TRY(sw_linear_base_forward(m, lin, y, x, N));
    if (!lin->lora_a || m->lora_off) return 0; /* adapters off: the frozen base alone */
    const float *xd = x;
    la->xd = NULL;
    /* Buffers already in la (a reused activation set) are overwritten in place. */
    if (lora_dropout_on(m, lin)) {
        if (!la->xd_buf && !(la->xd_buf = sw_model_scratch_f(m, N * lin->in))) return SW_ENOMEM;
        la->xd = la->xd_buf;
        SW_TRY(
            be->dropout_fwd(be, la->xd, x, N * lin->in, lin->lora_dropout, dropout_seed(m, lin)));
        xd = la->xd;
    }
    if (!la->t && !(la->t = sw_model_scratch_f(m, N * lin->r))) return SW_ENOMEM;
    SW_TRY(be->matmul_fwd(be, la->t, xd, lin->lora_a->value.data, NULL, N, lin->r, lin->in, 1.0f,
                          0.0f));
    return be->matmul_fwd(be, y, la->t, lin->lora_b->value.data, NULL, N, lin->out, lin->r,
                          lin->lora_scale, 1.0f);
}

int sw_linear_backward(struct sw_model *m, const struct sw_linear *lin, float *dx, float dx_beta,
                       const float *dy, const float *x, int64_t N, const struct sw_lora_act *la) {
    struct sw_backend *be = m->be;
    if (lin->w->trainable)
        SW_TRY(be->matmul_bwd_dw(be, lin->w->grad.data, dy, x, N, lin->out, lin->in, 1.0f, 1.0f));
    if (lin->b && lin->b->trainable)
        SW_TRY(be->bias_bwd(be, lin->b->grad.data, dy, N, lin->out, 1.0f));
    if (dx) SW_TRY(sw_linear_base_backward_dx(m, lin, dx, dx_beta, dy, N));
    if (!lin->lora_a) return 0;

    const float *xd = la->xd ? la->xd : x;
    float *dt = m->step.g_lora_t; /* backward workspace, [N, r] */
    if (lin->lora_b->trainable)
        SW_TRY(be->matmul_bwd_dw(be, lin->lora_b->grad.data, dy, la->t, N, lin->out, lin->r,
                                 lin->lora_scale, 1.0f));
    SW_TRY(be->matmul_bwd_dx(be, dt, dy, lin->lora_b->value.data, N, lin->out, lin->r,
                             lin->lora_scale, 0.0f));
    if (lin->lora_a->trainable)
        SW_TRY(
            be->matmul_bwd_dw(be, lin->lora_a->grad.data, dt, xd, N, lin->r, lin->in, 1.0f, 1.0f));
    if (!dx) return 0;
    if (!la->xd) /* no dropout: the branch's input gradient adds straight onto dx */
        return be->matmul_bwd_dx(be, dx, dt, lin->lora_a->value.data, N, lin->r, lin->in, 1.0f,
                                 1.0f);
    float *dxd = m->step.g_lora_x; /* [N, in] */
    SW_TRY(be->matmul_bwd_dx(be, dxd, dt, lin->lora_a->value.data, N, lin->r, lin->in, 1.0f, 0.0f));
    SW_TRY(be->dropout_bwd(be, dxd, dxd, N * lin->in, lin->lora_dropout, dropout_seed(m, lin)));
    return be->axpy(be, dx, dxd, 1.0f, N * lin->in);
}
