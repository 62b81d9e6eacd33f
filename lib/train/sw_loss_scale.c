/* sw_loss_scale — GradScaler's update rule and --loss_scale parsing (see sw_loss_scale.h). */
#include "sw_loss_scale.h"

#include "sw_err.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void sw_grad_scaler_init(struct sw_grad_scaler *s, double init_scale, int dynamic) {
    memset(s, 0, sizeof *s);
    s->scale = (float)init_scale;
    s->dynamic = dynamic;
    s->growth_factor = SW_GRAD_SCALER_GROWTH;
    s->backoff_factor = SW_GRAD_SCALER_BACKOFF;
    s->growth_interval = SW_GRAD_SCALER_INTERVAL;
}

int sw_grad_scaler_update(struct sw_grad_scaler *s, int found_inf) {
    if (found_inf) {
        s->skipped++;
        if (s->dynamic) {
            /* _amp_update_scale_: scale · backoff (a float32 product), tracker reset. Unlike
             * torch, never down to 0 (after ~150 overflows in a row): the caller divides by it. */
            float shrunk = (float)((double)s->scale * s->backoff_factor);
            if (shrunk > 0) s->scale = shrunk;
            s->growth_tracker = 0;
        }
        return 0;
    }
    if (!s->dynamic) return 1;
    int64_t successful = s->growth_tracker + 1;
    if (successful == s->growth_interval) {
        /* Grow only while the result stays a finite float32; the tracker restarts either way. */
        float grown = (float)((double)s->scale * s->growth_factor);
        if (isfinite(grown)) s->scale = grown;
        s->growth_tracker = 0;
    } else {
        s->growth_tracker = successful;
    }
    return 1;
}

/* A scale: a number > 0 that a float32 holds. */
static int parse_scale(const char *text, double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end || errno || !(v > 0) || v > FLT_MAX || (float)v <= 0.0f) return -1;
    *out = v;
    return 0;
}

int sw_grad_scaler_parse(const char *text, double *init_scale, int *dynamic) {
    *init_scale = SW_GRAD_SCALER_INIT;
    *dynamic = 1;
    if (!text || strcmp(text, "dynamic") == 0) return 0;
    if (strncmp(text, "dynamic:", 8) == 0 ? parse_scale(text + 8, init_scale) == 0
                                          : (*dynamic = 0, parse_scale(text, init_scale) == 0))
        return 0;
    if (!strcmp(text, "default") || !strcmp(text, "last_round") || !strcmp(text, "all"))
        return sw_err_set(SW_EUSAGE,
                          "loss_scale '%s': that is ms-swift's per-token loss weighting, which "
                          "sw-pack applies when it tokenizes (sw-pack --loss_scale); sw-train's "
                          "loss_scale is float16 loss scaling: \"dynamic\", \"dynamic:S\" or a "
                          "fixed scale S",
                          text);
    return sw_err_set(SW_EUSAGE,
                      "loss_scale '%s': expected \"dynamic\" (GradScaler from 65536), "
                      "\"dynamic:S\" (from S) or a fixed scale S, where S is a number > 0 that a "
                      "float32 holds",
                      text);
}
