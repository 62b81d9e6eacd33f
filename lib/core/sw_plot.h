/* sw_plot — line charts as self-contained SVG text (no dependency; any browser, image viewer
 * or Markdown renderer shows them). sw-train draws its loss, learning-rate and gradient-norm
 * curves with it (output_dir/images/, as ms-swift's plot_images does with matplotlib).
 *
 * A chart has a title, an x-axis label, and one or more series of (x, y) points drawn as
 * polylines in a shared frame. Axis ranges come from the finite points of every series, with
 * "nice" ticks (1, 2 or 5 × 10^k); a non-finite y breaks a line (a gap, not a drop to zero). */
#ifndef SW_PLOT_H
#define SW_PLOT_H

#include <stddef.h>

struct sw_plot_series {
    const char *name; /* legend text (NULL: not in the legend) */
    const double *x, *y;
    size_t n;
    const char *color; /* an SVG colour, e.g. "#1f77b4" */
    double width;      /* stroke width in pixels (0: 1.5) */
    double opacity;    /* 0: 1 */
};

/* The chart as a malloc'ed NUL-terminated SVG document (640 x 400), or NULL when out of memory
 * (sw_err set). Text is XML-escaped. A chart without any finite point says "no data". */
char *sw_plot_svg(const char *title, const char *xlabel, const struct sw_plot_series *s, int ns);

/* ms-swift's smoothing of a curve (tensorboard's, without the debias): out[0] = y[0],
 * out[i] = weight · out[i-1] + (1 - weight) · y[i]; non-finite y[i] are passed through and do
 * not move the average. out may be y. */
void sw_plot_smooth(const double *y, double *out, size_t n, double weight);

/* "Nice" tick positions covering [lo, hi]: about target of them, spaced 1, 2 or 5 × 10^k.
 * Writes at most cap values into ticks and returns how many. Pure: exposed for tests. */
int sw_plot_ticks(double lo, double hi, int target, double *ticks, int cap);

#endif
