/* sw_tfevents — CRC-32C, the protobuf encoding of a scalar Event, TFRecord framing and the
 * event file itself (format and names in sw_tfevents.h). Only the wire types these messages use
 * are written: varint (tags, step), 64-bit (wall_time), 32-bit (simple_value) and
 * length-delimited (strings, nested messages). */
#include "sw_tfevents.h"

#include "sw_err.h"
#include "sw_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- CRC-32C ------------------------------------------------------------------------------ */

static uint32_t crc_table[256];
static int crc_ready;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_table[i] = c;
    }
    crc_ready = 1;
}

uint32_t sw_crc32c(uint32_t crc, const void *data, size_t n) {
    if (!crc_ready) crc_init(); /* idempotent: a race writes the same values */
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

uint32_t sw_crc32c_mask(uint32_t crc) {
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

/* ---- protobuf ----------------------------------------------------------------------------- */

struct pb {
    uint8_t *buf;
    size_t cap, len;
    int overflow;
};

static void pb_byte(struct pb *b, uint8_t v) {
    if (b->len < b->cap)
        b->buf[b->len++] = v;
    else
        b->overflow = 1;
}

static void pb_varint(struct pb *b, uint64_t v) {
    while (v >= 0x80) {
        pb_byte(b, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    pb_byte(b, (uint8_t)v);
}

static void pb_le(struct pb *b, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++)
        pb_byte(b, (uint8_t)(v >> (8 * i)));
}

static void pb_bytes(struct pb *b, const void *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        pb_byte(b, ((const uint8_t *)p)[i]);
}

/* Field key: (number << 3) | wire type. */
static void pb_key(struct pb *b, int field, int wire) {
    pb_varint(b, (uint64_t)field << 3 | (uint64_t)wire);
}

static size_t varint_len(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80)
        v >>= 7, n++;
    return n;
}

int sw_tfevents_encode(uint8_t *buf, size_t cap, double wall_time, int64_t step,
                       const char *file_version, const char *tag, float value) {
    struct pb b = {buf, cap, 0, 0};
    uint64_t bits;
    memcpy(&bits, &wall_time, 8);
    pb_key(&b, 1, 1); /* wall_time: double */
    pb_le(&b, bits, 8);
    pb_key(&b, 2, 0); /* step: int64 (two's complement varint) */
    pb_varint(&b, (uint64_t)step);
    if (file_version) {
        size_t n = strlen(file_version);
        pb_key(&b, 3, 2);
        pb_varint(&b, n);
        pb_bytes(&b, file_version, n);
    }
    if (tag) {
        size_t tn = strlen(tag);
        /* Value { tag = 1; simple_value = 2 } */
        size_t value_len = 1 + varint_len(tn) + tn + 1 + 4;
        /* Summary { value = 1 } */
        size_t summary_len = 1 + varint_len(value_len) + value_len;
        uint32_t f;
        memcpy(&f, &value, 4);
        pb_key(&b, 5, 2);
        pb_varint(&b, summary_len);
        pb_key(&b, 1, 2);
        pb_varint(&b, value_len);
        pb_key(&b, 1, 2);
        pb_varint(&b, tn);
        pb_bytes(&b, tag, tn);
        pb_key(&b, 2, 5);
        pb_le(&b, f, 4);
    }
    return b.overflow || b.len > 0x7fffffff ? -1 : (int)b.len;
}

void sw_tfrecord_frame(uint8_t *out, const void *data, size_t n) {
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)((uint64_t)n >> (8 * i));
    uint32_t c1 = sw_crc32c_mask(sw_crc32c(0, len, 8));
    uint32_t c2 = sw_crc32c_mask(sw_crc32c(0, data, n));
    memcpy(out, len, 8);
    for (int i = 0; i < 4; i++)
        out[8 + i] = (uint8_t)(c1 >> (8 * i));
    memcpy(out + 12, data, n);
    for (int i = 0; i < 4; i++)
        out[12 + n + i] = (uint8_t)(c2 >> (8 * i));
}

/* ---- the file ----------------------------------------------------------------------------- */

struct sw_tfevents {
    FILE *fp;
    char *path;
};

static int write_event(struct sw_tfevents *w, double wall_time, int64_t step,
                       const char *file_version, const char *tag, float value) {
    uint8_t ev[512], rec[512 + 16];
    int n = sw_tfevents_encode(ev, sizeof ev, wall_time, step, file_version, tag, value);
    if (n < 0) return sw_err_set(SW_EINVAL, "%s: tag '%.40s...' is too long", w->path, tag);
    sw_tfrecord_frame(rec, ev, (size_t)n);
    if (fwrite(rec, 1, (size_t)n + 16, w->fp) != (size_t)n + 16 || fflush(w->fp) != 0)
        return sw_err_errno("cannot write '%s'", w->path);
    return 0;
}

static double unix_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int sw_tfevents_open(const char *dir, struct sw_tfevents **out) {
    *out = NULL;
    SW_TRY(sw_mkdir_p(dir));
    char host[256] = "localhost";
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    /* A hostname with a '/' would make another folder: keep the name one path component. */
    for (char *p = host; *p; p++)
        if (*p == '/') *p = '_';
    struct sw_tfevents *w = calloc(1, sizeof *w);
    if (!w) return sw_err_set(SW_ENOMEM, "out of memory");
    double now = unix_now();
    int rc = 0;
    /* The counter keeps two writers of one process in one second apart (torch's _global_uid). */
    for (int n = 0; n < 1000 && rc == 0 && !w->fp; n++) {
        char name[400];
        snprintf(name, sizeof name, "events.out.tfevents.%010lld.%s.%ld.%d", (long long)now, host,
                 (long)getpid(), n);
        free(w->path);
        if (!(w->path = sw_path_join(dir, name))) {
            rc = sw_err_set(SW_ENOMEM, "out of memory");
            break;
        }
        if (access(w->path, F_OK) == 0) continue;
        if (!(w->fp = fopen(w->path, "wbx"))) rc = sw_err_errno("cannot create '%s'", w->path);
    }
    if (rc == 0 && !w->fp) rc = sw_err_set(SW_EIO, "%s: no free event file name", dir);
    if (rc == 0) rc = write_event(w, now, 0, "brain.Event:2", NULL, 0);
    if (rc < 0) {
        sw_tfevents_close(w);
        return rc;
    }
    *out = w;
    return 0;
}

int sw_tfevents_scalar(struct sw_tfevents *w, const char *tag, double value, int64_t step,
                       double wall_time) {
    return write_event(w, wall_time > 0 ? wall_time : unix_now(), step, NULL, tag, (float)value);
}

const char *sw_tfevents_path(const struct sw_tfevents *w) {
    return w->path;
}

void sw_tfevents_close(struct sw_tfevents *w) {
    if (!w) return;
    if (w->fp) fclose(w->fp);
    free(w->path);
    free(w);
}
