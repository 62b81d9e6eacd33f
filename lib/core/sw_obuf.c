/* sw_obuf — a growable byte buffer (see sw_obuf.h). */
#include "sw_obuf.h"

#include "sw_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sw_obuf_add(struct sw_obuf *b, const void *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return sw_err_set(SW_ENOMEM, "out of memory");
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

int sw_obuf_str(struct sw_obuf *b, const char *s) {
    return sw_obuf_add(b, s, strlen(s));
}

int sw_obuf_printf(struct sw_obuf *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return sw_err_set(SW_EINVAL, "bad format");
    if ((size_t)n < sizeof small) return sw_obuf_add(b, small, (size_t)n);
    SW_TRY(sw_obuf_add(b, NULL, 0));
    char *big = malloc((size_t)n + 1);
    if (!big) return sw_err_set(SW_ENOMEM, "out of memory");
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = sw_obuf_add(b, big, (size_t)n);
    free(big);
    return rc;
}

void sw_obuf_consume(struct sw_obuf *b, size_t n) {
    if (n >= b->len) {
        b->len = 0;
        if (b->p) b->p[0] = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
    b->p[b->len] = 0;
}

void sw_obuf_release(struct sw_obuf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}
