/* sw-fetch's progress display: a bar per file being downloaded and one for the whole fetch,
 * drawn on stderr only when it is a terminal (the same policy as sw_progress: SW_PROGRESS=1
 * gives plain periodic lines for logs, SW_PROGRESS=0 or -q silences it). The numbers come from
 * sw_progress_format_* so every sw tool reads the same way. */
#include "fetch.h"

#include "sw_log.h"
#include "sw_progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BAR 20

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void fetch_display_init(struct fetch_display *d, const char *label) {
    memset(d, 0, sizeof *d);
    snprintf(d->label, sizeof d->label, "%s", label);
    const char *env = getenv("SW_PROGRESS");
    if (env && strcmp(env, "0") == 0)
        d->mode = SW_PROGRESS_OFF;
    else if (env && strcmp(env, "1") == 0)
        d->mode = SW_PROGRESS_LINES;
    else if (sw_log_get_level() < SW_LOG_INFO || !isatty(STDERR_FILENO))
        d->mode = SW_PROGRESS_OFF;
    else
        d->mode = SW_PROGRESS_TTY;
    d->rate = -1;
}

static void bar(char *out, uint64_t done, uint64_t total) {
    int fill = total ? (int)(BAR * (double)done / (double)total) : 0;
    if (fill > BAR) fill = BAR;
    out[0] = '[';
    for (int i = 0; i < BAR; i++)
        out[1 + i] = i < fill ? '#' : '.';
    out[BAR + 1] = ']';
    out[BAR + 2] = '\0';
}

/* A file name shortened from the left to at most w columns ("...ors-00001-of-00004.safetensors").
 */
static const char *shorten(const char *path, size_t w, char *buf, size_t cap) {
    size_t n = strlen(path);
    if (n <= w) return path;
    snprintf(buf, cap, "...%s", path + n - (w - 3));
    return buf;
}

void fetch_display_update(void *ctx, const struct sw_hub_progress *p) {
    struct fetch_display *d = ctx;
    if (d->mode == SW_PROGRESS_OFF) return;
    double t = now_s();
    /* Rate smoothed over about 3 s, sampled every half second, as sw_progress does. */
    if (d->rate < 0 && p->elapsed_s > 0.5) {
        d->rate = p->bytes_done / p->elapsed_s;
        d->t_rate = t;
        d->done_rate = p->bytes_done;
    } else if (d->rate >= 0 && t - d->t_rate >= 0.5) {
        double inst = (double)(p->bytes_done - d->done_rate) / (t - d->t_rate);
        double a = (t - d->t_rate) / 3.0;
        d->rate += (a > 1 ? 1 : a) * (inst - d->rate);
        d->t_rate = t;
        d->done_rate = p->bytes_done;
    }
    double rate = p->final || d->rate < 0 ? -1 : d->rate;
    char nums[200], b[BAR + 3];
    sw_progress_format_rate(nums, sizeof nums, p->bytes_done, p->bytes_total, p->elapsed_s, rate,
                            "B");
    bar(b, p->bytes_done, p->bytes_total);
    if (d->mode == SW_PROGRESS_LINES) {
        if (!p->final && t - d->t_last < 5.0) return;
        d->t_last = t;
        fprintf(stderr, "%s: %s: %s  %zu/%zu files\n", sw_log_tool(), d->label, nums, p->files_done,
                p->files_total);
        return;
    }
    /* Terminal: go back over the previous drawing, clear it, then one line per busy worker and
     * the overall line (the cursor stays at its end, so log lines can clear it first). */
    if (d->lines_drawn > 1) fprintf(stderr, "\033[%dA", d->lines_drawn - 1);
    fprintf(stderr, "\r\033[J");
    int lines = 0;
    if (!p->final) {
        for (size_t i = 0; i < p->nslots; i++) {
            const struct sw_hub_progress_slot *s = &p->slots[i];
            if (!s->path) continue;
            char name[64], fb[BAR + 3], dn[16], tt[16];
            bar(fb, s->done, s->total);
            sw_progress_format_count(dn, sizeof dn, (double)s->done);
            sw_progress_format_count(tt, sizeof tt, (double)s->total);
            fprintf(stderr, "  %-40s %s %s/%s B\n", shorten(s->path, 40, name, sizeof name), fb, dn,
                    tt);
            lines++;
        }
    }
    fprintf(stderr, "%s %s %s  %zu/%zu files%s", d->label, b, nums, p->files_done, p->files_total,
            p->final ? "\n" : "");
    d->lines_drawn = p->final ? 0 : lines + 1;
    sw_log_set_partial_line(!p->final);
    fflush(stderr);
}
