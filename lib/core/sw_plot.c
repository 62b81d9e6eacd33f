/* sw_plot — SVG line charts (see sw_plot.h): a frame with nice ticks and grid lines, one
 * polyline per run of finite points of each series, a legend, and XML-escaped text. The text
 * is built in a growing buffer; every number is printed with a fixed precision so the output is
 * deterministic for the same input. */
#include "sw_plot.h"

#include "sw_err.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLOT_W 640
#define PLOT_H 400
#define PLOT_L 72 /* left margin: y tick labels */
#define PLOT_R 20
#define PLOT_T 40 /* title */
#define PLOT_B 56 /* x tick labels and the axis label */

struct buf {
    char *s;
    size_t len, cap;
    int oom;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n + 64;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
}

/* Text content with &, <, > and quotes escaped. */
static void put_text(struct buf *b, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': put(b, "&amp;"); break;
        case '<': put(b, "&lt;"); break;
        case '>': put(b, "&gt;"); break;
        case '"': put(b, "&quot;"); break;
        default: put(b, "%c", *s);
        }
    }
}

void sw_plot_smooth(const double *y, double *out, size_t n, double weight) {
    double last = NAN;
    for (size_t i = 0; i < n; i++) {
        double v = y[i];
        if (!isfinite(v)) {
            out[i] = v;
            continue;
        }
        last = isfinite(last) ? last * weight + (1 - weight) * v : v;
        out[i] = last;
    }
}

int sw_plot_ticks(double lo, double hi, int target, double *ticks, int cap) {
    if (!(hi > lo) || !isfinite(lo) || !isfinite(hi) || target < 1 || cap < 1) return 0;
    double raw = (hi - lo) / target, mag = pow(10, floor(log10(raw))), step = mag;
    double r = raw / mag;
    step = r <= 1 ? mag : r <= 2 ? 2 * mag : r <= 5 ? 5 * mag : 10 * mag;
    double first = ceil(lo / step - 1e-9) * step;
    int n = 0;
    for (double v = first; v <= hi + step * 1e-9 && n < cap; v = first + n * step)
        ticks[n++] = fabs(v) < step * 1e-9 ? 0.0 : v;
    return n;
}

/* A tick label: integers without a decimal point, else 4 significant digits. */
static void fmt_tick(char *out, size_t cap, double v) {
    if (v == floor(v) && fabs(v) < 1e7)
        snprintf(out, cap, "%.0f", v);
    else
        snprintf(out, cap, "%.4g", v);
}

/* The [lo, hi] range of the finite values of every series' x or y. */
static int range_of(const struct sw_plot_series *s, int ns, int want_y, double *lo, double *hi) {
    int any = 0;
    *lo = INFINITY, *hi = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (size_t i = 0; i < s[k].n; i++) {
            double x = s[k].x[i], y = s[k].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            double v = want_y ? y : x;
            if (v < *lo) *lo = v;
            if (v > *hi) *hi = v;
            any = 1;
        }
    return any;
}

/* Widen a degenerate or tight range so the curve does not sit on the frame. */
static void pad_range(double *lo, double *hi, int pad) {
    if (*hi == *lo) {
        double d = fabs(*lo) > 0 ? fabs(*lo) * 0.1 : 1;
        *lo -= d, *hi += d;
    } else if (pad) {
        double d = (*hi - *lo) * 0.05;
        *lo -= d, *hi += d;
    }
}

char *sw_plot_svg(const char *title, const char *xlabel, const struct sw_plot_series *s, int ns) {
    struct buf b = {0};
    const double pw = PLOT_W - PLOT_L - PLOT_R, ph = PLOT_H - PLOT_T - PLOT_B;
    put(&b,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
        "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
        "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
        PLOT_W, PLOT_H, PLOT_W, PLOT_H);
    put(&b, "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">", PLOT_W / 2);
    put_text(&b, title);
    put(&b, "</text>\n");
    double x0, x1, y0, y1;
    int have = range_of(s, ns, 0, &x0, &x1) && range_of(s, ns, 1, &y0, &y1);
    if (!have) {
        put(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#888\">no data</text>\n",
            PLOT_W / 2, PLOT_H / 2);
    } else {
        pad_range(&x0, &x1, 0);
        pad_range(&y0, &y1, 1);
        double sx = pw / (x1 - x0), sy = ph / (y1 - y0);
#define PX(v) (PLOT_L + ((v)-x0) * sx)
#define PY(v) (PLOT_T + ph - ((v)-y0) * sy)
        double t[32];
        char lab[32];
        int nt = sw_plot_ticks(y0, y1, 6, t, 32);
        for (int i = 0; i < nt; i++) {
            fmt_tick(lab, sizeof lab, t[i]);
            put(&b,
                "<line x1=\"%d\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>"
                "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" fill=\"#444\">%s</text>\n",
                PLOT_L, PLOT_L + pw, PY(t[i]), PY(t[i]), PLOT_L - 6, PY(t[i]) + 4, lab);
        }
        nt = sw_plot_ticks(x0, x1, 8, t, 32);
        for (int i = 0; i < nt; i++) {
            fmt_tick(lab, sizeof lab, t[i]);
            put(&b,
                "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>"
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#444\">%s</text>\n",
                PX(t[i]), PX(t[i]), PLOT_T, PLOT_T + ph, PX(t[i]), PLOT_T + ph + 16, lab);
        }
        for (int k = 0; k < ns; k++) {
            const struct sw_plot_series *q = &s[k];
            int open = 0;
            for (size_t i = 0; i < q->n; i++) {
                int ok = isfinite(q->x[i]) && isfinite(q->y[i]);
                if (ok && !open) {
                    put(&b,
                        "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.2f\" "
                        "stroke-opacity=\"%.2f\" stroke-linejoin=\"round\" points=\"",
                        q->color ? q->color : "#1f77b4", q->width > 0 ? q->width : 1.5,
                        q->opacity > 0 ? q->opacity : 1.0);
                    open = 1;
                } else if (!ok && open) {
                    put(&b, "\"/>\n");
                    open = 0;
                }
                if (ok) put(&b, "%.1f,%.1f ", PX(q->x[i]), PY(q->y[i]));
            }
            if (open) put(&b, "\"/>\n");
        }
#undef PX
#undef PY
        /* Legend: top right, one row per named series. */
        int row = 0;
        for (int k = 0; k < ns; k++) {
            if (!s[k].name) continue;
            double y = PLOT_T + 14 + 16 * row++;
            put(&b,
                "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                "stroke-width=\"2\" stroke-opacity=\"%.2f\"/><text x=\"%.1f\" y=\"%.1f\" "
                "fill=\"#222\">",
                PLOT_L + pw - 130, PLOT_L + pw - 110, y - 4, y - 4,
                s[k].color ? s[k].color : "#1f77b4", s[k].opacity > 0 ? s[k].opacity : 1.0,
                PLOT_L + pw - 104, y);
            put_text(&b, s[k].name);
            put(&b, "</text>\n");
        }
    }
    put(&b,
        "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#444\"/>\n",
        PLOT_L, PLOT_T, pw, ph);
    put(&b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", PLOT_L + pw / 2, PLOT_H - 12);
    put_text(&b, xlabel);
    put(&b, "</text>\n</svg>\n");
    if (b.oom) {
        free(b.s);
        sw_err_set(SW_ENOMEM, "out of memory drawing '%s'", title ? title : "a chart");
        return NULL;
    }
    return b.s;
}
