/* sw_err — thread-local error messages; see sw_err.h for the convention. */
#include "sw_err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SW_ERR_MSG_MAX 1024

static _Thread_local char err_msg[SW_ERR_MSG_MAX];

int sw_err_setv(int code, const char *fmt, va_list ap) {
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    return code;
}

int sw_err_set(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sw_err_setv(code, fmt, ap);
    va_end(ap);
    return code;
}

int sw_err_errno(const char *fmt, ...) {
    int saved = errno;
    char what[SW_ERR_MSG_MAX / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    int code = saved == ENOENT ? SW_ENOTFOUND : saved == EPIPE ? SW_EPIPE : SW_EIO;
    return sw_err_set(code, "%s: %s", what, strerror(saved));
}

int sw_err_wrap(int code, const char *fmt, ...) {
    char buf[SW_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
    const char *tail = err_msg[0] ? err_msg : sw_strerror(code);
    /* Build "<context>: <old message>" by hand: both halves may be long, truncation is fine. */
    if (len + 2 < sizeof buf) {
        buf[len++] = ':';
        buf[len++] = ' ';
        size_t t = strlen(tail);
        if (t > sizeof buf - 1 - len) t = sizeof buf - 1 - len;
        memcpy(buf + len, tail, t);
        len += t;
    }
    buf[len] = '\0';
    memcpy(err_msg, buf, len + 1);
    return code;
}

const char *sw_err_msg(void) {
    return err_msg;
}

void sw_err_clear(void) {
    err_msg[0] = '\0';
}

const char *sw_strerror(int code) {
    switch (code) {
    case SW_OK: return "success";
    case SW_ENOMEM: return "out of memory";
    case SW_EIO: return "input/output error";
    case SW_EFORMAT: return "malformed input";
    case SW_EINVAL: return "invalid argument";
    case SW_ETRUNC: return "truncated input";
    case SW_ECORRUPT: return "corrupted input";
    case SW_EUSAGE: return "usage error";
    case SW_EUNSUPPORTED: return "not supported";
    case SW_ERANGE: return "value out of range";
    case SW_ENOTFOUND: return "not found";
    case SW_EPIPE: return "broken pipe";
    case SW_EDEVICE: return "device error";
    case SW_EINTR: return "interrupted";
    case SW_ESTATE: return "invalid state";
    case SW_EBUSY: return "busy";
    default: return "unknown error";
    }
}

int sw_err_exit_code(int code) {
    if (code == SW_OK || code == SW_EPIPE) return 0;
    if (code == SW_EUSAGE) return 2;
    return 1;
}

void sw_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "sw: internal error: assertion '%s' failed at %s:%d\n", expr, file, line);
    abort();
}
