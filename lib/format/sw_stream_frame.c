/* sw_stream_frame — finds the extent of one msgpack value in a growing buffer.
 *
 * Why not msgpack_unpacker: (1) the end record's checksum covers the raw bytes of every record,
 * which the unpacker discards as it goes (its buffer moves on expansion), and (2) msgpack-c
 * allocates storage for an array or map from its declared count before any element arrives,
 * so five hostile bytes (an array32 of 2^32-1) ask for ~96 GiB. The framer walks headers only,
 * skipping str/bin payloads by length, keeps a small resumable state, and enforces the limits
 * (size, item count, depth, string keys, no ext types). Once it says a value is complete every
 * declared element is present in the buffer, so the msgpack_unpack_next() that follows
 * allocates at most ~24 bytes per byte of record, bounded by SW_STREAM_MAX_ITEMS.
 *
 * Each value (header plus payload) is consumed atomically: if any of it is missing the scan
 * stops before it and resumes there when more bytes arrive. */
#include "sw_stream_impl.h"

#include "sw_err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void sw_frame_reset(struct sw_frame *f) {
    f->off = 0;
    f->items = 0;
    f->depth = 0;
    f->started = 0;
}

static uint64_t be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Classes of a msgpack lead byte. */
enum { F_SCALAR, F_STR, F_BIN, F_ARRAY, F_MAP, F_BAD, F_EXT };

/* Decode a lead byte: class, header bytes, and how many following bytes hold the length or
 * count (0 when it is inside the lead byte: see *inl). */
static int frame_lead(uint8_t b, int *hdr, int *lenbytes, uint64_t *inl) {
    *lenbytes = 0;
    *inl = 0;
    *hdr = 1;
    if (b <= 0x7f || b >= 0xe0) return F_SCALAR;
    if (b <= 0x8f) {
        *inl = b & 0x0f;
        return F_MAP;
    }
    if (b <= 0x9f) {
        *inl = b & 0x0f;
        return F_ARRAY;
    }
    if (b <= 0xbf) {
        *inl = b & 0x1f;
        return F_STR;
    }
    switch (b) {
    case 0xc0:
    case 0xc2:
    case 0xc3: return F_SCALAR;
    case 0xc4: *lenbytes = 1; return F_BIN;
    case 0xc5: *lenbytes = 2; return F_BIN;
    case 0xc6: *lenbytes = 4; return F_BIN;
    case 0xca: *hdr = 5; return F_SCALAR;
    case 0xcb: *hdr = 9; return F_SCALAR;
    case 0xcc:
    case 0xd0: *hdr = 2; return F_SCALAR;
    case 0xcd:
    case 0xd1: *hdr = 3; return F_SCALAR;
    case 0xce:
    case 0xd2: *hdr = 5; return F_SCALAR;
    case 0xcf:
    case 0xd3: *hdr = 9; return F_SCALAR;
    case 0xd9: *lenbytes = 1; return F_STR;
    case 0xda: *lenbytes = 2; return F_STR;
    case 0xdb: *lenbytes = 4; return F_STR;
    case 0xdc: *lenbytes = 2; return F_ARRAY;
    case 0xdd: *lenbytes = 4; return F_ARRAY;
    case 0xde: *lenbytes = 2; return F_MAP;
    case 0xdf: *lenbytes = 4; return F_MAP;
    case 0xc1: return F_BAD;
    default: return F_EXT; /* 0xc7-0xc9, 0xd4-0xd8 */
    }
}

int sw_frame_scan(struct sw_frame *f, const uint8_t *buf, size_t len, uint64_t max_len) {
    while (!(f->started && f->depth == 0)) {
        size_t at = f->off;
        if (at >= len) return 0;
        uint8_t b = buf[at];
        int hdr, lenbytes;
        uint64_t n;
        int cls = frame_lead(b, &hdr, &lenbytes, &n);
        if (cls == F_BAD)
            return sw_err_set(SW_EFORMAT, "invalid msgpack byte 0xc1 at record offset %zu", at);
        if (cls == F_EXT)
            return sw_err_set(SW_EFORMAT,
                              "msgpack ext type (byte 0x%02x) at record offset %zu: "
                              "ext values are not allowed in sws",
                              b, at);
        hdr += lenbytes;
        if ((uint64_t)at + (uint64_t)hdr > max_len)
            return sw_err_set(SW_ERANGE, "record exceeds the size limit of %llu bytes",
                              (unsigned long long)max_len);
        if (len - at < (size_t)hdr) return 0;
        if (lenbytes) n = be(buf + at + 1, lenbytes);
        uint64_t payload = (cls == F_STR || cls == F_BIN) ? n : 0;
        uint64_t end = (uint64_t)at + (uint64_t)hdr + payload;
        if (end > max_len)
            return sw_err_set(SW_ERANGE,
                              "record exceeds the size limit of %llu bytes (a value "
                              "of %llu bytes at record offset %zu)",
                              (unsigned long long)max_len, (unsigned long long)payload, at);
        if (!f->started) {
            if (cls != F_MAP)
                return sw_err_set(SW_EFORMAT, "a record must be a msgpack map, found byte 0x%02x",
                                  b);
        } else {
            int d = f->depth - 1;
            /* In a map the slots alternate key, value: a key is due when an even count is left. */
            if (f->is_map[d] && (f->left[d] & 1) == 0 && cls != F_STR)
                return sw_err_set(SW_EFORMAT,
                                  "map key at record offset %zu is not a string (byte 0x%02x)", at,
                                  b);
        }
        if (end > len) return 0;
        if (++f->items > SW_STREAM_MAX_ITEMS)
            return sw_err_set(SW_ERANGE, "record holds more than %llu msgpack values",
                              (unsigned long long)SW_STREAM_MAX_ITEMS);
        f->off = (size_t)end;
        if (f->started) f->left[f->depth - 1]--;
        f->started = 1;
        if ((cls == F_MAP || cls == F_ARRAY) && n > 0) {
            if (f->depth == SW_STREAM_MAX_DEPTH)
                return sw_err_set(SW_EFORMAT,
                                  "maps/arrays nested deeper than %d levels at "
                                  "offset %zu",
                                  SW_STREAM_MAX_DEPTH, at);
            f->is_map[f->depth] = cls == F_MAP;
            f->left[f->depth++] = cls == F_MAP ? 2 * n : n;
        }
        while (f->depth > 0 && f->left[f->depth - 1] == 0)
            f->depth--;
    }
    return 1;
}

int sw_buf_reserve(uint8_t **buf, size_t *cap, size_t need, size_t keep) {
    if (need <= *cap) return 0;
    size_t ncap = *cap ? *cap : SW_STREAM_BUF_INITIAL;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            return sw_err_set(SW_ENOMEM, "buffer of %zu bytes too large", need);
        ncap *= 2;
    }
    void *p = NULL;
    if (posix_memalign(&p, 64, ncap) != 0)
        return sw_err_set(SW_ENOMEM, "out of memory for a %zu-byte stream buffer", ncap);
    if (keep) memcpy(p, *buf, keep);
    free(*buf);
    *buf = p;
    *cap = ncap;
    return 0;
}
