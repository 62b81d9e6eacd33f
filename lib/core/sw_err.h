/* sw_err — the error convention of all of sw.
 *
 * Every fallible function returns int: 0 on success or a negative enum sw_err. The failing
 * function records a human message naming what and where (file, line of input, field) in a
 * thread-local buffer through sw_err_set(); callers either handle it or forward the code with
 * SW_TRY(). Outer layers may prepend context with sw_err_wrap(). Tools print the message once,
 * as "sw-<tool>: error: <message>", and map the code to an exit status (sw_err_exit_code). */
#ifndef SW_ERR_H
#define SW_ERR_H

#include <stdarg.h>

enum sw_err {
    SW_OK = 0,
    SW_ENOMEM = -1,       /* allocation failed */
    SW_EIO = -2,          /* read/write/open failed (errno text in the message) */
    SW_EFORMAT = -3,      /* malformed input: parse error, bad field, bad value */
    SW_EINVAL = -4,       /* invalid argument or configuration value */
    SW_ETRUNC = -5,       /* input ended early (truncated file or stream) */
    SW_ECORRUPT = -6,     /* checksum mismatch or inconsistent content */
    SW_EUSAGE = -7,       /* command-line usage error (exit status 2) */
    SW_EUNSUPPORTED = -8, /* valid but not supported (dtype, architecture, device) */
    SW_ERANGE = -9,       /* value out of range, size limit exceeded */
    SW_ENOTFOUND = -10,   /* missing file, key or tensor */
    SW_EPIPE = -11,       /* the downstream reader went away (quiet exit) */
    SW_EDEVICE = -12,     /* accelerator error (CUDA, cuBLAS, NCCL) */
    SW_EINTR = -13,       /* interrupted by a signal (SIGINT/SIGTERM) */
    SW_ESTATE = -14,      /* operation not valid in the object's current state */
    SW_EBUSY = -15,       /* temporarily out of capacity (a full queue): retry later */
};

/* Record a formatted message for code and return code (so `return sw_err_set(...)` works).
 * The message replaces any earlier one on this thread. */
int sw_err_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sw_err_setv(int code, const char *fmt, va_list ap);

/* Record "<what>: <strerror(errno)>" with code SW_EIO (or SW_ENOTFOUND for ENOENT). */
int sw_err_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prepend context to the current message ("<context>: <old message>") and return code. */
int sw_err_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The current thread's message; never NULL (empty string when none was set). */
const char *sw_err_msg(void);
void sw_err_clear(void);

/* A fixed description of a code ("out of memory", "truncated input", ...). */
const char *sw_strerror(int code);

/* Process exit status for a code: 0 ok, 2 usage, 1 anything else (SW_EPIPE maps to 0). */
int sw_err_exit_code(int code);

/* Forward a negative return value to the caller. */
#define SW_TRY(expr)                                                                               \
    do {                                                                                           \
        int sw_try_rc_ = (expr);                                                                   \
        if (sw_try_rc_ < 0) return sw_try_rc_;                                                     \
    } while (0)

/* Jump to a cleanup label with rc set when expr fails (for functions that own resources). */
#define SW_TRY_GOTO(rc, expr, label)                                                               \
    do {                                                                                           \
        (rc) = (expr);                                                                             \
        if ((rc) < 0) goto label;                                                                  \
    } while (0)

/* Broken invariant: a bug in sw, not bad input. Aborts with file:line. */
#define SW_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) sw_assert_fail(#cond, __FILE__, __LINE__);                                    \
    } while (0)
void sw_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));

#endif
