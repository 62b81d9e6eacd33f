/* sw_progress — the progress line: formatting from numbers (pure, tested), and the drawing
 * policy (terminal redraws, periodic log lines, or nothing). See sw_progress.h. */
#include "sw_progress.h"

#include "sw_log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define PROGRESS_TTY_INTERVAL 0.1  /* at most 10 redraws a second */
#define PROGRESS_LINE_INTERVAL 5.0 /* one log line every 5 s */
#define PROGRESS_RATE_SAMPLE 0.5   /* seconds between rate samples */
#define PROGRESS_RATE_TAU 3.0      /* smoothing time constant */
#define PROGRESS_BAR 20

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void copy_str(char *dst, size_t cap, const char *src) {
    snprintf(dst, cap, "%s", src ? src : "");
}

/* ---- formatting ------------------------------------------------------------------------- */

int sw_progress_format_count(char *buf, size_t cap, double v) {
    if (!(v >= 0) || isinf(v)) return snprintf(buf, cap, "?");
    if (v < 10000) {
        if (v == floor(v)) return snprintf(buf, cap, "%.0f", v);
        return snprintf(buf, cap, v < 10 ? "%.2f" : v < 100 ? "%.1f" : "%.0f", v);
    }
    static const char suffix[] = "kMGTPE";
    int k = -1;
    while (v >= 999.5 && k < 5)
        v /= 1000, k++;
    return snprintf(buf, cap, v < 9.995 ? "%.2f%c" : v < 99.95 ? "%.1f%c" : "%.0f%c", v, suffix[k]);
}

int sw_progress_format_duration(char *buf, size_t cap, double s) {
    if (!(s >= 0) || s > 1e9) return snprintf(buf, cap, "?");
    unsigned long t = (unsigned long)(s + 0.5);
    unsigned long h = t / 3600, m = t / 60 % 60, sec = t % 60;
    if (h >= 100) return snprintf(buf, cap, "%lud%02luh", h / 24, h % 24);
    if (h > 0) return snprintf(buf, cap, "%lu:%02lu:%02lu", h, m, sec);
    return snprintf(buf, cap, "%lu:%02lu", m, sec);
}

int sw_progress_format_rate(char *buf, size_t cap, uint64_t done, uint64_t total, double elapsed_s,
                            double rate, const char *unit) {
    char d[16], t[16], r[16], el[24], eta[24];
    if (!unit) unit = "";
    if (rate < 0) rate = elapsed_s > 0 ? (double)done / elapsed_s : 0;
    sw_progress_format_count(d, sizeof d, (double)done);
    sw_progress_format_count(r, sizeof r, rate);
    sw_progress_format_duration(el, sizeof el, elapsed_s);
    const char *sp = *unit ? " " : "";
    if (total == 0)
        return snprintf(buf, cap, "%s%s%s  %s %s/s  elapsed %s", d, sp, unit, r,
                        *unit ? unit : "it", el);
    sw_progress_format_count(t, sizeof t, (double)total);
    double pct = 100.0 * (double)done / (double)total;
    if (done >= total)
        snprintf(eta, sizeof eta, "0:00");
    else if (rate > 0)
        sw_progress_format_duration(eta, sizeof eta, (double)(total - done) / rate);
    else
        snprintf(eta, sizeof eta, "?");
    return snprintf(buf, cap, "%s/%s%s%s  %.1f%%  %s %s/s  elapsed %s  ETA %s", d, t, sp, unit, pct,
                    r, *unit ? unit : "it", el, eta);
}

int sw_progress_format(char *buf, size_t cap, uint64_t done, uint64_t total, double elapsed_s,
                       const char *unit) {
    return sw_progress_format_rate(buf, cap, done, total, elapsed_s, -1, unit);
}

/* ---- drawing ---------------------------------------------------------------------------- */

static enum sw_progress_mode mode_from_env(void) {
    const char *env = getenv("SW_PROGRESS");
    if (env && *env) {
        if (strcmp(env, "0") == 0) return SW_PROGRESS_OFF;
        if (strcmp(env, "1") == 0) return SW_PROGRESS_LINES;
    }
    if (sw_log_get_level() < SW_LOG_INFO) return SW_PROGRESS_OFF;
    return isatty(STDERR_FILENO) ? SW_PROGRESS_TTY : SW_PROGRESS_OFF;
}

void sw_progress_init(struct sw_progress *p, const char *label, uint64_t total, const char *unit) {
    memset(p, 0, sizeof *p);
    copy_str(p->label, sizeof p->label, label);
    copy_str(p->unit, sizeof p->unit, unit);
    p->total = total;
    p->mode = mode_from_env();
    p->t_start = p->t_draw = p->t_rate = now_s();
    p->rate = -1;
}

void sw_progress_set_mode(struct sw_progress *p, enum sw_progress_mode mode) {
    p->mode = mode;
}

/* Fold the rate since the last sample into the smoothed rate. The weight depends on the time
 * elapsed, so the smoothing is the same whatever the sampling pattern. */
static void progress_sample(struct sw_progress *p, double t) {
    double dt = t - p->t_rate;
    if (dt < PROGRESS_RATE_SAMPLE) return;
    double inst = (double)(p->done - p->done_rate) / dt;
    if (p->rate < 0) {
        p->rate = inst;
    } else {
        double alpha = 1.0 - exp(-dt / PROGRESS_RATE_TAU);
        p->rate += alpha * (inst - p->rate);
    }
    p->t_rate = t;
    p->done_rate = p->done;
}

/* Terminal width, or 0 when unknown (then nothing is cut). */
static size_t term_columns(void) {
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 0;
}

/* Build "label: [bar] numbers | extra" into line. */
static void progress_line(const struct sw_progress *p, char *line, size_t cap, double t,
                          int with_bar, int final) {
    char nums[160];
    double elapsed = t - p->t_start;
    double rate = final || p->rate < 0 ? -1 : p->rate; /* the summary uses the average */
    sw_progress_format_rate(nums, sizeof nums, p->done, p->total, elapsed, rate, p->unit);
    char bar[PROGRESS_BAR + 4] = "";
    if (with_bar && p->total > 0) {
        uint64_t fill = p->done >= p->total
                            ? PROGRESS_BAR
                            : (uint64_t)((double)p->done / (double)p->total * PROGRESS_BAR);
        bar[0] = '[';
        for (int i = 0; i < PROGRESS_BAR; i++)
            bar[1 + i] = (uint64_t)i < fill ? '#' : '.';
        bar[PROGRESS_BAR + 1] = ']';
        bar[PROGRESS_BAR + 2] = ' ';
        bar[PROGRESS_BAR + 3] = '\0';
    }
    snprintf(line, cap, "%s%s%s%s%s%s", p->label, *p->label ? ": " : "", bar, nums,
             *p->extra ? " | " : "", p->extra);
}

static void progress_draw(struct sw_progress *p, double t, int final) {
    char line[512];
    if (p->mode == SW_PROGRESS_TTY) {
        /* A wrapped line cannot be redrawn with \r: drop the bar first, then cut the end. */
        size_t cols = term_columns();
        progress_line(p, line, sizeof line, t, 1, final);
        if (cols > 1 && strlen(line) > cols - 1) progress_line(p, line, sizeof line, t, 0, final);
        if (cols > 1 && strlen(line) > cols - 1) line[cols - 1] = '\0';
        fprintf(stderr, "\r%s\033[K%s", line, final ? "\n" : "");
        sw_log_set_partial_line(!final);
    } else if (p->mode == SW_PROGRESS_LINES) {
        progress_line(p, line, sizeof line, t, 0, final);
        fprintf(stderr, "%s%s\n", line, final ? " (done)" : "");
    }
    fflush(stderr);
    p->t_draw = t;
}

void sw_progress_update(struct sw_progress *p, uint64_t done) {
    p->done = done;
    if (p->mode == SW_PROGRESS_OFF || p->finished) return;
    double t = now_s();
    progress_sample(p, t);
    double every = p->mode == SW_PROGRESS_TTY ? PROGRESS_TTY_INTERVAL : PROGRESS_LINE_INTERVAL;
    if (t - p->t_draw >= every) progress_draw(p, t, 0);
}

void sw_progress_add(struct sw_progress *p, uint64_t n) {
    sw_progress_update(p, p->done + n);
}

void sw_progress_set_total(struct sw_progress *p, uint64_t total) {
    p->total = total;
}

void sw_progress_set_extra(struct sw_progress *p, const char *text) {
    copy_str(p->extra, sizeof p->extra, text);
}

void sw_progress_finish(struct sw_progress *p) {
    if (p->finished) return;
    p->finished = 1;
    if (p->mode != SW_PROGRESS_OFF) progress_draw(p, now_s(), 1);
}
