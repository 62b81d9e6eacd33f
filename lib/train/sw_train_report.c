/* sw_train_report — TensorBoard scalars, the SVG curves of a run and the HF-style log line (see
 * sw_train_report.h). The curves are drawn from trainer_state's log_history rather than from
 * this process's own records, so a resumed run's pictures include the steps before the resume. */
#include "sw_train_report.h"

#include "sw_err.h"
#include "sw_io.h"
#include "sw_plot.h"
#include "sw_progress.h"
#include "sw_tfevents.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- --report_to -------------------------------------------------------------------------- */

int sw_train_report_parse(const char *report_to, int *tensorboard) {
    *tensorboard = 0;
    if (!report_to) return 0;
    const char *p = report_to;
    while (*p) {
        size_t n = strcspn(p, ", ");
        if (n == 0) {
            p++;
            continue;
        }
        if ((n == 11 && strncmp(p, "tensorboard", 11) == 0) ||
            (n == 3 && strncmp(p, "all", 3) == 0))
            *tensorboard = 1;
        else if (!(n == 4 && strncmp(p, "none", 4) == 0))
            return sw_err_set(SW_EUSAGE,
                              "report_to: '%.*s' is not available in sw (tensorboard, all or "
                              "none; logging.jsonl and the plots in images/ are always written)",
                              (int)(n > 40 ? 40 : n), p);
        p += n;
    }
    return 0;
}

/* ---- TensorBoard -------------------------------------------------------------------------- */

struct sw_train_report {
    char *logging_dir; /* NULL: no event files */
    struct sw_tfevents *tb;
};

int sw_train_report_open(const char *run_dir, const char *report_to, const char *logging_dir,
                         struct sw_train_report **out) {
    *out = NULL;
    int tb;
    SW_TRY(sw_train_report_parse(report_to, &tb));
    struct sw_train_report *r = calloc(1, sizeof *r);
    if (!r) return sw_err_set(SW_ENOMEM, "out of memory");
    if (tb) {
        r->logging_dir = logging_dir ? strdup(logging_dir) : sw_path_join(run_dir, "runs");
        if (!r->logging_dir) {
            free(r);
            return sw_err_set(SW_ENOMEM, "out of memory");
        }
    }
    *out = r;
    return 0;
}

int sw_train_report_scalars(struct sw_train_report *r, int64_t step, const char *const *tags,
                            const double *values, int n) {
    if (!r || !r->logging_dir) return 0;
    if (!r->tb) SW_TRY(sw_tfevents_open(r->logging_dir, &r->tb));
    for (int i = 0; i < n; i++)
        if (isfinite(values[i])) SW_TRY(sw_tfevents_scalar(r->tb, tags[i], values[i], step, 0));
    return 0;
}

const char *sw_train_report_events_path(const struct sw_train_report *r) {
    return r && r->tb ? sw_tfevents_path(r->tb) : NULL;
}

void sw_train_report_close(struct sw_train_report *r) {
    if (!r) return;
    sw_tfevents_close(r->tb);
    free(r->logging_dir);
    free(r);
}

/* ---- plots -------------------------------------------------------------------------------- */

struct curve {
    double *x, *y;
    size_t n, cap;
};

static int curve_push(struct curve *c, double x, double y) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        double *a = realloc(c->x, cap * sizeof *a);
        if (!a) return sw_err_set(SW_ENOMEM, "out of memory");
        c->x = a;
        double *b = realloc(c->y, cap * sizeof *b);
        if (!b) return sw_err_set(SW_ENOMEM, "out of memory");
        c->y = b;
        c->cap = cap;
    }
    c->x[c->n] = x;
    c->y[c->n++] = y;
    return 0;
}

static int write_svg(const char *dir, const char *name, char *svg) {
    if (!svg) return SW_ENOMEM;
    char *path = sw_path_join(dir, name);
    int rc = path ? sw_write_file_atomic(path, svg, strlen(svg))
                  : sw_err_set(SW_ENOMEM, "out of memory");
    free(path);
    free(svg);
    return rc;
}

enum { C_LOSS, C_LR, C_NORM, C_EVAL, NCURVES };

int sw_train_report_plots(const char *run_dir, const json_t *log_history) {
    static const char *const keys[NCURVES] = {"loss", "learning_rate", "grad_norm", "eval_loss"};
    static const char *const files[NCURVES] = {"train_loss.svg", "train_learning_rate.svg",
                                               "train_grad_norm.svg", "eval_loss.svg"};
    static const char *const titles[NCURVES] = {"train/loss", "train/learning_rate",
                                                "train/grad_norm", "eval/loss"};
    struct curve c[NCURVES];
    memset(c, 0, sizeof c);
    int rc = 0;
    size_t i;
    json_t *e;
    json_array_foreach(log_history, i, e) {
        json_t *st = json_object_get(e, "step");
        if (!json_is_integer(st)) continue;
        double x = (double)json_integer_value(st);
        for (int k = 0; k < NCURVES && rc == 0; k++) {
            json_t *v = json_object_get(e, keys[k]);
            if (json_is_number(v)) rc = curve_push(&c[k], x, json_number_value(v));
        }
    }
    char *dir = rc == 0 ? sw_path_join(run_dir, "images") : NULL;
    if (rc == 0 && !dir) rc = sw_err_set(SW_ENOMEM, "out of memory");
    int any = 0;
    for (int k = 0; k < NCURVES; k++)
        any |= c[k].n > 0;
    if (rc == 0 && any) rc = sw_mkdir_p(dir);
    for (int k = 0; k < NCURVES && rc == 0; k++) {
        if (c[k].n == 0) continue;
        struct sw_plot_series s[2] = {
            {NULL, c[k].x, c[k].y, c[k].n, "#1f77b4", 1.5, 1.0},
        };
        int ns = 1;
        double *sm = NULL;
        if (k == C_LOSS) { /* ms-swift: the raw curve faint, the smoothed one on top */
            if (!(sm = malloc(c[k].n * sizeof *sm))) {
                rc = sw_err_set(SW_ENOMEM, "out of memory");
                break;
            }
            sw_plot_smooth(c[k].y, sm, c[k].n, 0.9);
            s[0] = (struct sw_plot_series){"raw", c[k].x, c[k].y, c[k].n, "#1f77b4", 1.0, 0.35};
            s[1] =
                (struct sw_plot_series){"smoothed (0.9)", c[k].x, sm, c[k].n, "#1f77b4", 2.0, 1.0};
            ns = 2;
        }
        rc = write_svg(dir, files[k], sw_plot_svg(titles[k], "step", s, ns));
        free(sm);
    }
    free(dir);
    for (int k = 0; k < NCURVES; k++) {
        free(c[k].x);
        free(c[k].y);
    }
    return rc < 0 ? sw_err_wrap(rc, "%s: drawing the training curves", run_dir) : 0;
}

/* ---- the log line ------------------------------------------------------------------------- */

/* A number as Python prints a float in a dict (nan for non-finite), with prec significant
 * digits. */
static void py_num(char *out, size_t cap, double v, const char *fmt) {
    if (isnan(v))
        snprintf(out, cap, "nan");
    else if (isinf(v))
        snprintf(out, cap, v > 0 ? "inf" : "-inf");
    else
        snprintf(out, cap, fmt, v);
}

int sw_train_report_line(char *buf, size_t cap, const struct sw_train_line *l) {
    char loss[32], norm[32], lr[32], tps[32], ep[32], el[24], rem[24], mem[48] = "", ls[48] = "";
    py_num(loss, sizeof loss, l->loss, "%.4f");
    py_num(norm, sizeof norm, l->grad_norm, "%.4g");
    py_num(lr, sizeof lr, l->learning_rate, "%.6g");
    py_num(tps, sizeof tps, l->tokens_per_sec, "%.1f");
    py_num(ep, sizeof ep, l->epoch, "%.2f");
    if (l->mem_gib >= 0) snprintf(mem, sizeof mem, "'memory(GiB)': %.2f, ", l->mem_gib);
    if (l->loss_scale > 0) snprintf(ls, sizeof ls, "'loss_scale': %g, ", l->loss_scale);
    sw_progress_format_duration(el, sizeof el, l->elapsed);
    sw_progress_format_duration(rem, sizeof rem, l->remaining);
    double pct = l->max_steps > 0 ? 100.0 * (double)l->step / (double)l->max_steps : NAN;
    char pc[32];
    py_num(pc, sizeof pc, pct, "%.2f%%");
    return snprintf(buf, cap,
                    "{'loss': %s, 'grad_norm': %s, 'learning_rate': %s, 'tokens_per_sec': %s, "
                    "%s%s'epoch': %s, 'global_step/max_steps': '%lld/%lld', 'percentage': '%s', "
                    "'elapsed_time': '%s', 'remaining_time': '%s'}",
                    loss, norm, lr, tps, mem, ls, ep, (long long)l->step, (long long)l->max_steps,
                    pc, el, rem);
}
