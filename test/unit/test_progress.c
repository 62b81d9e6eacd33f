/* test_progress — the pure formatting functions, the mode policy (silent off a terminal,
 * SW_PROGRESS=0/1), redraw rate limiting and rate smoothing. */
#include "sw_progress.h"
#include "tap.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *cnt(double v) {
    static char b[32];
    sw_progress_format_count(b, sizeof b, v);
    return b;
}
static const char *dur(double s) {
    static char b[32];
    sw_progress_format_duration(b, sizeof b, s);
    return b;
}

static void test_counts(void) {
    IS_STR(cnt(0), "0", "count 0");
    IS_STR(cnt(9999), "9999", "count 9999 stays exact");
    IS_STR(cnt(10000), "10.0k", "count 10000");
    IS_STR(cnt(12345), "12.3k", "count 12345");
    IS_STR(cnt(99999), "100k", "count 99999 rounds to 100k, not 100.0k");
    IS_STR(cnt(123456), "123k", "count 123456");
    IS_STR(cnt(999499), "999k", "count 999499");
    IS_STR(cnt(999500), "1.00M", "count 999500 moves to the next suffix");
    IS_STR(cnt(1234567), "1.23M", "count 1234567");
    IS_STR(cnt(4.56e9), "4.56G", "count 4.56e9");
    IS_STR(cnt(2.5), "2.50", "fractional rate below 10");
    IS_STR(cnt(12.34), "12.3", "fractional rate below 100");
    IS_STR(cnt(-1), "?", "negative count");
    IS_STR(cnt(NAN), "?", "NaN count");
    IS_STR(cnt(INFINITY), "?", "infinite count");
}

static void test_durations(void) {
    IS_STR(dur(0), "0:00", "duration 0");
    IS_STR(dur(5), "0:05", "duration 5 s");
    IS_STR(dur(59.6), "1:00", "duration 59.6 s rounds");
    IS_STR(dur(754), "12:34", "duration 12:34");
    IS_STR(dur(3723), "1:02:03", "duration with hours");
    IS_STR(dur(103 * 3600.0), "4d07h", "duration over 100 h in days");
    IS_STR(dur(-1), "?", "negative duration");
    IS_STR(dur(NAN), "?", "NaN duration");
    IS_STR(dur(1e12), "?", "absurd duration");
}

static void test_format(void) {
    char b[160];
    sw_progress_format(b, sizeof b, 1234, 10000, 2.0, "rows");
    IS_STR(b, "1234/10.0k rows  12.3%  617 rows/s  elapsed 0:02  ETA 0:14", "known total");
    sw_progress_format(b, sizeof b, 1234, 0, 2.0, "tokens");
    IS_STR(b, "1234 tokens  617 tokens/s  elapsed 0:02", "unknown total: no percent, no ETA");
    sw_progress_format(b, sizeof b, 10000, 10000, 20.0, "rows");
    IS_STR(b, "10.0k/10.0k rows  100.0%  500 rows/s  elapsed 0:20  ETA 0:00", "complete");
    sw_progress_format(b, sizeof b, 0, 100, 0.0, "steps");
    IS_STR(b, "0/100 steps  0.0%  0 steps/s  elapsed 0:00  ETA ?", "nothing done yet");
    sw_progress_format_rate(b, sizeof b, 500, 1000, 10.0, 50.0, "steps");
    IS_STR(b, "500/1000 steps  50.0%  50 steps/s  elapsed 0:10  ETA 0:10",
           "explicit rate (whole numbers print exactly)");
    sw_progress_format_rate(b, sizeof b, 3, 1000, 9.0, 0.333, "steps");
    IS_STR(b, "3/1000 steps  0.3%  0.33 steps/s  elapsed 0:09  ETA 49:54", "slow steps");
    sw_progress_format_rate(b, sizeof b, 2000000, 1000000000, 100.0, 20000.0, "tokens");
    IS_STR(b, "2.00M/1.00G tokens  0.2%  20.0k tokens/s  elapsed 1:40  ETA 13:51:40",
           "large counts");
    sw_progress_format(b, sizeof b, 5, 0, 1.0, "");
    IS_STR(b, "5  5 it/s  elapsed 0:01", "no unit");
    int want = sw_progress_format(b, 10, 1234, 10000, 2.0, "rows");
    OK(want > 10 && strlen(b) == 9, "truncated to cap-1, returns the full length (%d)", want);
}

/* Run f with stderr redirected to a temp file; return what was written (static buffer). */
static const char *capture(void (*f)(void)) {
    static char out[4096];
    char path[] = "/tmp/sw_test_progress.XXXXXX";
    int fd = mkstemp(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    f();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, out, sizeof out - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    return out;
}

static enum sw_progress_mode seen_mode;

static void run_default(void) {
    struct sw_progress p;
    sw_progress_init(&p, "pack", 100, "rows");
    seen_mode = p.mode;
    for (int i = 0; i < 100; i++)
        sw_progress_add(&p, 1);
    sw_progress_finish(&p);
}

static void run_tty_burst(void) {
    struct sw_progress p;
    sw_progress_init(&p, "train", 1000, "steps");
    sw_progress_set_mode(&p, SW_PROGRESS_TTY);
    sw_progress_set_extra(&p, "loss 2.31 lr 1e-4");
    for (int i = 0; i < 100000; i++)
        sw_progress_add(&p, 0);
    sw_progress_update(&p, 1000);
    sw_progress_finish(&p);
    sw_progress_finish(&p); /* idempotent */
}

static void test_modes(void) {
    unsetenv("SW_PROGRESS");
    const char *out = capture(run_default);
    OK(seen_mode == SW_PROGRESS_OFF && out[0] == '\0', "silent when stderr is not a terminal");

    setenv("SW_PROGRESS", "1", 1);
    out = capture(run_default);
    OK(seen_mode == SW_PROGRESS_LINES, "SW_PROGRESS=1 forces line mode");
    OK(strstr(out, "pack: 100/100 rows  100.0%") != NULL, "line mode prints a final line: %s", out);
    OK(strchr(out, '\r') == NULL && out[0] && out[strlen(out) - 1] == '\n',
       "line mode: newline-terminated, no carriage returns");
    int lines = 0;
    for (const char *c = out; *c; c++)
        lines += *c == '\n';
    IS_INT(lines, 1, "a fast job prints only the final line");

    setenv("SW_PROGRESS", "0", 1);
    out = capture(run_default);
    OK(seen_mode == SW_PROGRESS_OFF && out[0] == '\0', "SW_PROGRESS=0 silences");
    unsetenv("SW_PROGRESS");

    out = capture(run_tty_burst);
    int cr = 0;
    for (const char *c = out; *c; c++)
        cr += *c == '\r';
    OK(cr >= 1 && cr <= 3, "terminal mode: 100000 updates in a burst give %d redraws", cr);
    OK(strstr(out, "\033[K") && strstr(out, "[####################] 1000/1000 steps") &&
           strstr(out, "| loss 2.31 lr 1e-4\033[K\n"),
       "terminal mode: bar, counts, extra text, final newline");
}

static void test_smoothing(void) {
    struct sw_progress p;
    sw_progress_init(&p, "x", 0, "rows");
    sw_progress_set_mode(&p, SW_PROGRESS_LINES);
    p.t_draw = 1e18; /* never due: nothing printed */
    p.t_rate -= 1.0; /* pretend a second passed */
    sw_progress_update(&p, 100);
    IS_NEAR(p.rate, 100, 0.05, "first sample sets the rate (~100/s)");
    p.t_rate -= 1.0;
    sw_progress_update(&p, 400); /* 300/s over the last second */
    double want = 100 + (1 - exp(-1.0 / 3.0)) * 200;
    IS_NEAR(p.rate, want, 0.05, "rate moves toward the new speed, smoothed (want ~%.0f)", want);
    OK(p.rate > 100 && p.rate < 300, "smoothed rate lies between old and new speeds");
    double r = p.rate;
    sw_progress_update(&p, 500); /* too soon for another sample */
    IS_NEAR(p.rate, r, 1e-12, "no sample within 0.5 s");
}

int main(void) {
    test_counts();
    test_durations();
    test_format();
    test_modes();
    test_smoothing();
    return tap_done();
}
