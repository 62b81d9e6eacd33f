/* tap.h — a tiny TAP producer for the C unit tests.
 *
 * Each test file calls the checks below and ends main() with `return tap_done();`, which prints
 * the plan "1..N". scripts/run-tests.sh counts "ok"/"not ok" lines across every test binary. */
#ifndef SW_TAP_H
#define SW_TAP_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

static inline int tap_ok(int cond, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#include <stdarg.h>
static inline int tap_ok(int cond, const char *file, int line, const char *fmt, ...) {
    va_list ap;
    tap_n++;
    printf("%s %d - ", cond ? "ok" : "not ok", tap_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!cond) {
        tap_failed++;
        printf("#   failed at %s:%d\n", file, line);
    }
    fflush(stdout);
    return cond;
}

#define OK(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define IS_INT(got, want, ...)                                                                     \
    do {                                                                                           \
        long long g_ = (long long)(got), w_ = (long long)(want);                                   \
        if (!OK(g_ == w_, __VA_ARGS__)) printf("#   got %lld, want %lld\n", g_, w_);               \
    } while (0)
#define IS_STR(got, want, ...)                                                                     \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        if (!OK(g_ && w_ && strcmp(g_, w_) == 0, __VA_ARGS__))                                     \
            printf("#   got '%s', want '%s'\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)");           \
    } while (0)
/* |got - want| <= tol * max(1, |want|) */
#define IS_NEAR(got, want, tol, ...)                                                               \
    do {                                                                                           \
        double g_ = (got), w_ = (want);                                                            \
        double s_ = fabs(w_) > 1 ? fabs(w_) : 1;                                                   \
        if (!OK(fabs(g_ - w_) <= (tol)*s_, __VA_ARGS__))                                           \
            printf("#   got %.9g, want %.9g\n", g_, w_);                                           \
    } while (0)
#define DIAG(...) (printf("# "), printf(__VA_ARGS__), printf("\n"))

static inline int tap_done(void) {
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}

#endif
