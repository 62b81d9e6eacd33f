/* sw_loss_scale — the loss scaler of float16 training (struct sw_grad_scaler, after torch's
 * name; "loss scale" alone is sw_template's per-token loss weighting, ms-swift's loss_scale):
 * torch.cuda.amp.GradScaler's state machine (torch/amp/grad_scaler.py + _amp_update_scale_),
 * with its defaults.
 *
 * The backward runs on loss · scale so that small gradients survive float16's range (smallest
 * subnormal ~6e-8); the trainer then checks the scaled gradients, and calls
 * sw_grad_scaler_update(found_inf) once per optimizer step:
 *   found_inf = 1 (some gradient or the loss is Inf/NaN): the step must be skipped (no optimizer
 *     update — and, as HF Trainer does, no scheduler step), scale ← scale · backoff_factor, the
 *     growth tracker restarts at 0, skipped += 1;
 *   found_inf = 0: the caller unscales (gradients · 1/scale) and steps; the tracker counts the
 *     step, and when it reaches growth_interval consecutive finite steps, scale ← scale ·
 *     growth_factor (kept only if still finite in float32) and the tracker restarts at 0.
 * One deviation: the backoff stops at the smallest float32 above 0 (torch's reaches 0 after ~150
 * overflows in a row, and unscaling then divides by it).
 * A fixed scale (dynamic = 0) never changes; overflowing steps are still skipped and counted.
 * The scale is a float32 as in torch (powers of two stay exact). Pure: no I/O, no allocation. */
#ifndef SW_LOSS_SCALE_H
#define SW_LOSS_SCALE_H

#include <stdint.h>

/* GradScaler's defaults. */
#define SW_GRAD_SCALER_INIT 65536.0
#define SW_GRAD_SCALER_GROWTH 2.0
#define SW_GRAD_SCALER_BACKOFF 0.5
#define SW_GRAD_SCALER_INTERVAL 2000

struct sw_grad_scaler {
    float scale;            /* the current scale (torch's _scale) */
    int64_t growth_tracker; /* consecutive finite steps since the last growth or overflow */
    int64_t skipped;        /* steps skipped for a non-finite value, in total */
    int dynamic;            /* 0: scale fixed */
    double growth_factor, backoff_factor;
    int64_t growth_interval;
};

/* A scaler with GradScaler's factors and interval, starting at init_scale (> 0, finite as a
 * float). dynamic = 0 keeps init_scale fixed. */
void sw_grad_scaler_init(struct sw_grad_scaler *s, double init_scale, int dynamic);
/* One optimizer step's outcome (see above). Returns 1 when the step is to be applied (found_inf
 * = 0), 0 when it is to be skipped. */
int sw_grad_scaler_update(struct sw_grad_scaler *s, int found_inf);
/* Parse a --loss_scale value: "dynamic" (GradScaler starting at 65536), "dynamic:S" (starting
 * at S) or S alone (a fixed scale), S a number > 0 that a float32 holds ("1024", "2e4",
 * "dynamic:1099511627776"). SW_EUSAGE naming the value otherwise. */
int sw_grad_scaler_parse(const char *text, double *init_scale, int *dynamic);

#endif
