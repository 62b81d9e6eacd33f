/* sw_obuf — a growable byte buffer, always NUL-terminated after an append, for text that is
 * built piece by piece (HTTP responses, prompts, rendered templates). */
#ifndef SW_OBUF_H
#define SW_OBUF_H

#include <stddef.h>

struct sw_obuf {
    char *p; /* NUL-terminated when len > 0 or after any append */
    size_t len, cap;
};
/* Append n bytes. Returns 0 or SW_ENOMEM. */
int sw_obuf_add(struct sw_obuf *b, const void *s, size_t n);
int sw_obuf_str(struct sw_obuf *b, const char *s);
int sw_obuf_printf(struct sw_obuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drop the first n bytes (what a transport has sent). */
void sw_obuf_consume(struct sw_obuf *b, size_t n);
void sw_obuf_release(struct sw_obuf *b);

#endif
