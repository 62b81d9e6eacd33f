/* sw_progress — a progress line on stderr for long work (packing rows, training steps).
 *
 *   struct sw_progress p;
 *   sw_progress_init(&p, "pack", total_rows, "rows");   // total 0 = unknown
 *   for (...) { ...; sw_progress_add(&p, 1); }
 *   sw_progress_finish(&p);
 *
 * Shows "label: [#####.....] 1.23k/10.0k rows  12.3%  456 rows/s  elapsed 0:02  ETA 0:19 | extra".
 * On a terminal the line is redrawn in place (\r) at most 10 times a second. When stderr is not
 * a terminal it is silent, so logs and pipes stay clean; SW_PROGRESS=1 forces plain lines (one
 * every 5 seconds plus a final one, newline-terminated, for log files) and SW_PROGRESS=0
 * silences it everywhere. A quiet log level (-q) also silences it unless SW_PROGRESS=1.
 * Rates are smoothed (exponential, ~3 s time constant) so the ETA does not jump around.
 * One progress object is driven from one thread. */
#ifndef SW_PROGRESS_H
#define SW_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

enum sw_progress_mode { SW_PROGRESS_OFF = 0, SW_PROGRESS_TTY, SW_PROGRESS_LINES };

struct sw_progress {
    char label[48];
    char unit[16];
    char extra[128];
    uint64_t total, done;
    enum sw_progress_mode mode;
    double t_start, t_draw; /* CLOCK_MONOTONIC seconds: start and last output */
    double t_rate;          /* time of the last rate sample */
    uint64_t done_rate;     /* done at t_rate */
    double rate;            /* smoothed units per second; < 0 before the first sample */
    int finished;
};

/* Start a progress display. label and unit are copied (truncated); total 0 means unknown.
 * The mode comes from SW_PROGRESS, the log level and isatty(stderr). */
void sw_progress_init(struct sw_progress *p, const char *label, uint64_t total, const char *unit);
/* Set the absolute count done / add to it; redraws when due. */
void sw_progress_update(struct sw_progress *p, uint64_t done);
void sw_progress_add(struct sw_progress *p, uint64_t n);
/* Change the total (0 = unknown), e.g. once a count becomes known. */
void sw_progress_set_total(struct sw_progress *p, uint64_t total);
/* Free text shown after the numbers ("loss 2.31 lr 1e-4"); copied, NULL clears. */
void sw_progress_set_extra(struct sw_progress *p, const char *text);
/* Final output (a newline on a terminal, a summary line in line mode). Idempotent. */
void sw_progress_finish(struct sw_progress *p);
/* Force a mode (tests, or tools with their own flag). */
void sw_progress_set_mode(struct sw_progress *p, enum sw_progress_mode mode);

/* The numbers part of the line, from plain numbers (no clock, no terminal): testable.
 * rate < 0 means "use done / elapsed_s". Writes at most cap bytes including the NUL and
 * returns the length it wanted (as snprintf). Unknown total (0): no percentage and no ETA. */
int sw_progress_format_rate(char *buf, size_t cap, uint64_t done, uint64_t total, double elapsed_s,
                            double rate, const char *unit);
/* Same with the average rate done / elapsed_s. */
int sw_progress_format(char *buf, size_t cap, uint64_t done, uint64_t total, double elapsed_s,
                       const char *unit);
/* A count in at most 4 significant characters plus a suffix: 9999, 12.3k, 123k, 1.23M, 4.56G. */
int sw_progress_format_count(char *buf, size_t cap, double v);
/* A duration: 0:05, 12:34, 1:02:03; "?" for negative, NaN or absurd values; ≥ 100 h as 5d03h. */
int sw_progress_format_duration(char *buf, size_t cap, double seconds);

#endif
