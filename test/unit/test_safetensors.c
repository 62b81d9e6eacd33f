/* test_safetensors — the safetensors reader, writer and set reader.
 *
 * Round trips of every dtype, 0-d and empty tensors and metadata; the writer's layout (padded
 * header, aligned offsets, insertion order, determinism); sharded writes read back through the
 * set reader; a battery of malformed headers built in memory, each with its expected error code
 * and a message naming the tensor or field; and, when python3 with `safetensors` is importable,
 * Python's reader loading a file sw wrote (the reference implementation's validation). */
#include "sw_err.h"
#include "sw_io.h"
#include "sw_safetensors.h"
#include "tap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

static char *tmp_path(const char *name) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

static const enum sw_dtype all_dtypes[] = {
    SW_DTYPE_BOOL, SW_DTYPE_U8,  SW_DTYPE_I8,  SW_DTYPE_F8_E5M2, SW_DTYPE_F8_E4M3,
    SW_DTYPE_I16,  SW_DTYPE_U16, SW_DTYPE_F16, SW_DTYPE_BF16,    SW_DTYPE_I32,
    SW_DTYPE_U32,  SW_DTYPE_F32, SW_DTYPE_F64, SW_DTYPE_I64,     SW_DTYPE_U64,
};
#define NDT ((int)(sizeof all_dtypes / sizeof all_dtypes[0]))

/* Deterministic content: byte i of tensor k (the Python check recomputes it). */
static uint8_t pattern(int k, size_t i) {
    return (uint8_t)((k * 31 + (int)i * 7 + 1) & 0xff);
}

/* Odd shapes on purpose ([3, 5] for 1-byte types is 15 bytes): the layout must still tile. */
static void make_tensor(struct sw_tensor *t, int k, enum sw_dtype dt, uint8_t **buf) {
    int64_t shape[2] = {3, 5};
    size_t n = 15 * sw_st_dtype_size(dt);
    *buf = malloc(n);
    for (size_t i = 0; i < n; i++)
        (*buf)[i] = pattern(k, i);
    if (dt == SW_DTYPE_BOOL)
        for (size_t i = 0; i < n; i++)
            (*buf)[i] &= 1;
    sw_tensor_init(t, dt, 2, shape, *buf);
}

/* Write every dtype (+ a 0-d and an empty tensor) to path in insertion order dt0..dt14. */
static int write_all_dtypes(const char *path, uint8_t **bufs) {
    struct sw_st_writer *w;
    if (sw_st_writer_new(&w) < 0) return -1;
    int rc = 0;
    for (int k = 0; k < NDT && rc == 0; k++) {
        struct sw_tensor t;
        char name[32];
        make_tensor(&t, k, all_dtypes[k], &bufs[k]);
        snprintf(name, sizeof name, "t%02d.%s", k, sw_st_dtype_name(all_dtypes[k]));
        rc = sw_st_writer_add(w, name, &t);
    }
    static double scalar = 3.25;
    struct sw_tensor s, e;
    int64_t empty_shape[2] = {0, 4};
    sw_tensor_init(&s, SW_DTYPE_F64, 0, NULL, &scalar);
    sw_tensor_init(&e, SW_DTYPE_F32, 2, empty_shape, NULL);
    if (rc == 0) rc = sw_st_writer_add(w, "scalar", &s);
    if (rc == 0) rc = sw_st_writer_add(w, "empty", &e);
    if (rc == 0) rc = sw_st_writer_set_metadata(w, "format", "pt");
    if (rc == 0) rc = sw_st_writer_set_metadata(w, "a_key", "first");
    if (rc == 0) rc = sw_st_writer_set_metadata(w, "format", "np"); /* replaces */
    if (rc == 0) rc = sw_st_writer_write(w, path);
    sw_st_writer_free(w);
    return rc;
}

static int read_bytes(const char *path, uint8_t **data, size_t *len) {
    char *d;
    int rc = sw_read_file(path, &d, len, 0);
    *data = (uint8_t *)d;
    return rc;
}

static void test_round_trip(void) {
    uint8_t *bufs[NDT] = {0};
    const char *path = tmp_path("all.safetensors");
    int rc = write_all_dtypes(path, bufs);
    IS_INT(rc, 0, "write every dtype: %s", sw_err_msg());
    struct sw_st_file *f = NULL;
    rc = sw_st_open(path, &f);
    IS_INT(rc, 0, "open what was written: %s", sw_err_msg());
    if (!f) return;
    IS_INT(sw_st_count(f), NDT + 2, "count = 15 dtypes + scalar + empty");
    int all_ok = 1;
    for (int k = 0; k < NDT; k++) {
        char name[32];
        snprintf(name, sizeof name, "t%02d.%s", k, sw_st_dtype_name(all_dtypes[k]));
        const struct sw_st_entry *e = sw_st_find(f, name);
        if (!e || e->dtype != all_dtypes[k] || e->ndim != 2 || e->shape[0] != 3 ||
            e->shape[1] != 5 || e->nbytes != 15 * sw_st_dtype_size(all_dtypes[k]) ||
            memcmp(e->data, bufs[k], e->nbytes) != 0) {
            all_ok = 0;
            DIAG("mismatch for %s", name);
        }
        /* Natural alignment: the data pointer is a multiple of the element size (mmap is
         * page-aligned, the data section 8-aligned, tensors sorted by element size). */
        if (e && ((uintptr_t)e->data % sw_st_dtype_size(e->dtype)) != 0) {
            all_ok = 0;
            DIAG("%s misaligned", name);
        }
    }
    OK(all_ok, "every dtype round-trips with its shape and bytes, naturally aligned");
    const struct sw_st_entry *s = sw_st_find(f, "scalar");
    OK(s && s->ndim == 0 && s->nbytes == 8 && *(const double *)s->data == 3.25,
       "0-d tensor round-trips");
    const struct sw_st_entry *z = sw_st_find(f, "empty");
    OK(z && z->ndim == 2 && z->shape[0] == 0 && z->shape[1] == 4 && z->nbytes == 0 &&
           z->begin == z->end,
       "zero-size tensor round-trips with an empty span");
    OK(sw_st_find(f, "nope") == NULL, "find of an absent name is NULL");
    IS_INT(sw_st_metadata_count(f), 2, "two metadata pairs");
    IS_STR(sw_st_metadata(f, "format"), "np", "metadata value replaced by a later set");
    const char *k0 = NULL, *v0 = NULL;
    sw_st_metadata_get(f, 0, &k0, &v0);
    IS_STR(k0, "a_key", "metadata pairs sorted by key");
    OK(sw_st_metadata(f, "missing") == NULL, "absent metadata key is NULL");
    IS_INT(sw_st_metadata_get(f, 5, &k0, &v0), SW_EINVAL, "metadata index out of range");
    int sorted = 1;
    for (int i = 1; i < sw_st_count(f); i++)
        if (sw_st_get(f, i)->begin < sw_st_get(f, i - 1)->end) sorted = 0;
    OK(sorted, "entries are in data-offset order");
    IS_STR(sw_st_path(f), path, "path kept");

    struct sw_tensor view;
    const struct sw_st_entry *e32 = sw_st_find(f, "t11.F32");
    sw_st_entry_view(e32, &view);
    OK(view.dtype == SW_DTYPE_F32 && view.ndim == 2 && view.strides[0] == 20 &&
           view.strides[1] == 4 && view.data == e32->data && !view.owns_data && view.name == NULL,
       "entry view: contiguous strides, borrowed data");
    sw_st_close(f);

    /* Layout on disk: padded header, insertion order in the JSON, deterministic bytes. */
    uint8_t *d1 = NULL, *d2 = NULL;
    size_t l1 = 0, l2 = 0;
    read_bytes(path, &d1, &l1);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | d1[i];
    OK((8 + hlen) % 8 == 0 && d1[8] == '{', "8 + header length is a multiple of 8 (%llu)",
       (unsigned long long)hlen);
    OK(d1[8 + hlen - 1] == ' ' || d1[8 + hlen - 1] == '}', "header padded with spaces");
    char *hdr = strndup((const char *)d1 + 8, hlen);
    const char *pm = strstr(hdr, "__metadata__"), *p0 = strstr(hdr, "\"t00.BOOL\""),
               *p14 = strstr(hdr, "\"t14.U64\""), *ps = strstr(hdr, "\"scalar\"");
    OK(pm && p0 && p14 && ps && pm < p0 && p0 < p14 && p14 < ps,
       "header lists __metadata__ first, then tensors in insertion order");
    free(hdr);
    const char *path2 = tmp_path("all2.safetensors");
    uint8_t *bufs2[NDT] = {0};
    write_all_dtypes(path2, bufs2);
    read_bytes(path2, &d2, &l2);
    OK(l1 == l2 && memcmp(d1, d2, l1) == 0, "writing the same tensors twice gives identical bytes");

    /* A file cut short anywhere after the header is SW_ETRUNC. */
    const char *cut = tmp_path("cut.safetensors");
    sw_write_file_atomic(cut, d1, l1 - 1);
    rc = sw_st_open(cut, &f);
    IS_INT(rc, SW_ETRUNC, "file one byte short: SW_ETRUNC");
    OK(strstr(sw_err_msg(), "cut.safetensors") && strstr(sw_err_msg(), "tensor '"),
       "truncation message names the file and the tensor: %s", sw_err_msg());
    sw_write_file_atomic(cut, d1, 8 + hlen / 2);
    IS_INT(sw_st_open(cut, &f), SW_ETRUNC, "file cut inside the header: SW_ETRUNC");
    IS_INT(sw_st_open(tmp_path("does-not-exist.safetensors"), &f), SW_ENOTFOUND,
           "missing file: SW_ENOTFOUND");
    IS_INT(sw_st_open(tmpdir, &f), SW_EINVAL, "a folder is not a file");
    free(d1);
    free(d2);
    for (int k = 0; k < NDT; k++)
        free(bufs[k]), free(bufs2[k]);
}

static void test_writer_errors(void) {
    struct sw_st_writer *w;
    sw_st_writer_new(&w);
    float x[4] = {1, 2, 3, 4};
    int64_t shape[1] = {4};
    struct sw_tensor t;
    sw_tensor_init(&t, SW_DTYPE_F32, 1, shape, x);
    IS_INT(sw_st_writer_add(w, "a", &t), 0, "add a");
    IS_INT(sw_st_writer_add(w, "a", &t), SW_EINVAL, "duplicate name: SW_EINVAL");
    OK(strstr(sw_err_msg(), "'a'") != NULL, "duplicate message names the tensor: %s", sw_err_msg());
    IS_INT(sw_st_writer_add(w, "__metadata__", &t), SW_EINVAL, "reserved name refused");
    IS_INT(sw_st_writer_add(w, "bad\xff", &t), SW_EINVAL, "invalid UTF-8 name refused");
    uint8_t q[2] = {0};
    struct sw_tensor tq;
    sw_tensor_init(&tq, SW_DTYPE_Q4, 1, shape, q);
    IS_INT(sw_st_writer_add(w, "q4", &tq), SW_EUNSUPPORTED,
           "Q4 has no safetensors name: SW_EUNSUPPORTED");
    struct sw_tensor nc;
    int64_t s2[2] = {2, 2};
    sw_tensor_init(&nc, SW_DTYPE_F32, 2, s2, x);
    nc.strides[0] = 4;
    nc.strides[1] = 8; /* a transposed view */
    IS_INT(sw_st_writer_add(w, "transposed", &nc), SW_EINVAL, "non-contiguous tensor refused");
    struct sw_tensor nodata;
    sw_tensor_init(&nodata, SW_DTYPE_F32, 1, shape, NULL);
    IS_INT(sw_st_writer_add(w, "nodata", &nodata), SW_EINVAL, "tensor without data refused");
    IS_INT(sw_st_writer_write(w, tmp_path("no-such-dir/x.safetensors")) < 0, 1,
           "write into a missing folder fails");
    sw_st_writer_free(w);
    sw_st_writer_free(NULL);
}

/* ---- sharding and sets ------------------------------------------------------------------- */

static void test_sharded(void) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/sharded", tmpdir);
    struct sw_st_writer *w;
    sw_st_writer_new(&w);
    static uint8_t data[5][100];
    const char *names[5] = {"z.weight", "a.weight", "m.bias", "b.x", "c.y"};
    for (int k = 0; k < 5; k++) {
        int64_t shape[1] = {100};
        struct sw_tensor t;
        for (int i = 0; i < 100; i++)
            data[k][i] = (uint8_t)(k * 100 + i);
        sw_tensor_init(&t, SW_DTYPE_U8, 1, shape, data[k]);
        sw_st_writer_add(w, names[k], &t);
    }
    sw_st_writer_set_metadata(w, "format", "pt");
    int rc = sw_st_writer_write_sharded(w, dir, "model", 250);
    IS_INT(rc, 0, "sharded write: %s", sw_err_msg());
    char p[600];
    struct stat st;
    snprintf(p, sizeof p, "%s/model-00003-of-00003.safetensors", dir);
    OK(stat(p, &st) == 0, "three shards of <= 250 bytes for 5 x 100 bytes");
    snprintf(p, sizeof p, "%s/model-00004-of-00003.safetensors", dir);
    OK(stat(p, &st) != 0, "no fourth shard");
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    char *idx = NULL;
    size_t ilen = 0;
    sw_read_file(p, &idx, &ilen, 0);
    OK(idx && strstr(idx, "\"total_size\": 500"), "index total_size is the sum of tensor bytes");
    OK(idx && strstr(idx, "\"a.weight\": \"model-00001-of-00003.safetensors\"") &&
           strstr(idx, "\"c.y\": \"model-00003-of-00003.safetensors\""),
       "weight_map routes each tensor to its shard");
    OK(idx && strstr(idx, "\"a.weight\"") < strstr(idx, "\"b.x\"") &&
           strstr(idx, "\"b.x\"") < strstr(idx, "\"z.weight\""),
       "weight_map keys sorted");
    free(idx);

    /* Read back three ways: folder, index, and one shard alone. */
    const char *opens[2] = {dir, p};
    for (int i = 0; i < 2; i++) {
        struct sw_st_set *s = NULL;
        rc = sw_st_set_open(opens[i], &s);
        IS_INT(rc, 0, "set open %s: %s", i ? "index" : "folder", sw_err_msg());
        if (!s) continue;
        IS_INT(sw_st_set_nfiles(s), 3, "three files");
        IS_INT(sw_st_set_count(s), 5, "five tensors");
        const struct sw_st_entry *e = sw_st_set_find(s, "m.bias");
        OK(e && e->nbytes == 100 && ((const uint8_t *)e->data)[99] == (uint8_t)(200 + 99),
           "find across shards gives the right bytes");
        IS_STR(sw_st_set_get(s, 0)->name, "z.weight", "set order: shard order, then offset");
        IS_STR(sw_st_set_get(s, 4)->name, "c.y", "last tensor is in the last shard");
        OK(sw_st_set_get(s, 5) == NULL && sw_st_set_find(s, "nope") == NULL,
           "out of range / absent");
        IS_STR(sw_st_metadata(sw_st_set_file(s, 1), "format"), "pt",
               "metadata written in every shard");
        sw_st_set_close(s);
    }
    snprintf(p, sizeof p, "%s/model-00002-of-00003.safetensors", dir);
    struct sw_st_set *one = NULL;
    IS_INT(sw_st_set_open(p, &one), 0, "a single shard opens as a set of one");
    IS_INT(sw_st_set_count(one), 2, "shard 2 holds two tensors");
    sw_st_set_close(one);

    /* Everything fits: one model.safetensors, and the stale index goes. */
    rc = sw_st_writer_write_sharded(w, dir, "model", 1 << 20);
    IS_INT(rc, 0, "unsharded write into the same folder");
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    OK(stat(p, &st) != 0, "stale index removed when the model fits one file");
    struct sw_st_set *s = NULL;
    IS_INT(sw_st_set_open(dir, &s), 0, "folder opens model.safetensors");
    IS_INT(sw_st_set_nfiles(s), 1, "one file");
    IS_INT(sw_st_set_count(s), 5, "five tensors");
    sw_st_set_close(s);
    IS_INT(sw_st_writer_write_sharded(w, dir, "a/b", 100), SW_EINVAL, "base with a slash refused");
    sw_st_writer_free(w);
}

static void write_text(const char *path, const char *text) {
    sw_write_file_atomic(path, text, strlen(text));
}

static void write_small(const char *path, const char *const *names, int n) {
    struct sw_st_writer *w;
    sw_st_writer_new(&w);
    static float v[2] = {1, 2};
    int64_t shape[1] = {2};
    for (int i = 0; i < n; i++) {
        struct sw_tensor t;
        sw_tensor_init(&t, SW_DTYPE_F32, 1, shape, v);
        sw_st_writer_add(w, names[i], &t);
    }
    sw_st_writer_write(w, path);
    sw_st_writer_free(w);
}

static void test_set_errors(void) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/badset", tmpdir);
    sw_mkdir_p(dir);
    char *s1 = sw_path_join(dir, "s1.safetensors"), *s2 = sw_path_join(dir, "s2.safetensors");
    char *ix = sw_path_join(dir, "model.safetensors.index.json");
    const char *n1[] = {"a", "b"}, *n2[] = {"c"};
    write_small(s1, n1, 2);
    write_small(s2, n2, 1);
    struct sw_st_set *s = NULL;

    write_text(ix, "{\"weight_map\": {\"a\": \"s1.safetensors\", \"b\": \"s1.safetensors\", \"c\": "
                   "\"s2.safetensors\"}}");
    IS_INT(sw_st_set_open(dir, &s), 0, "consistent hand-written index opens: %s", sw_err_msg());
    sw_st_set_close(s);

    write_text(ix, "{\"weight_map\": {\"a\": \"s1.safetensors\", \"b\": \"s1.safetensors\", \"c\": "
                   "\"s3.safetensors\"}}");
    IS_INT(sw_st_set_open(ix, &s), SW_ENOTFOUND, "index naming a missing shard: SW_ENOTFOUND");
    OK(strstr(sw_err_msg(), "s3.safetensors") != NULL, "message names the shard: %s", sw_err_msg());

    write_text(ix, "{\"weight_map\": {\"a\": \"s1.safetensors\", \"b\": \"s1.safetensors\", \"c\": "
                   "\"s1.safetensors\"}}");
    IS_INT(sw_st_set_open(ix, &s), SW_EFORMAT, "tensor listed in a shard that lacks it");
    OK(strstr(sw_err_msg(), "'c'") != NULL, "message names the tensor: %s", sw_err_msg());

    write_text(ix, "{\"weight_map\": {\"a\": \"s1.safetensors\", \"c\": \"s2.safetensors\"}}");
    IS_INT(sw_st_set_open(ix, &s), SW_EFORMAT, "shard holding a tensor the index does not list");
    OK(strstr(sw_err_msg(), "'b'") != NULL, "message names the tensor: %s", sw_err_msg());

    write_text(ix, "{\"weight_map\": {\"a\": \"../s1.safetensors\"}}");
    IS_INT(sw_st_set_open(ix, &s), SW_EFORMAT, "shard path escaping the folder refused");
    write_text(ix, "{\"weight_map\": {\"a\": \"/etc/passwd\"}}");
    IS_INT(sw_st_set_open(ix, &s), SW_EFORMAT, "absolute shard path refused");
    write_text(ix, "{\"weight_map\": {\"a\": 3}}");
    IS_INT(sw_st_set_open(ix, &s), SW_EFORMAT, "non-string shard name refused");
    write_text(ix, "{\"metadata\": {}}");
    IS_INT(sw_st_set_open(ix, &s), SW_EFORMAT, "index without weight_map refused");
    write_text(ix, "{\"weight_map\": ");
    IS_INT(sw_st_set_open(ix, &s), SW_EFORMAT, "index that is not JSON refused");
    OK(s == NULL, "no set handed out on error");

    /* Two files holding the same name (a hand-made index routing both to one shard each). */
    const char *n3[] = {"a"};
    char *s3 = sw_path_join(dir, "s3.safetensors");
    write_small(s3, n3, 1);
    write_text(ix, "{\"weight_map\": {\"a\": \"s3.safetensors\", \"b\": \"s1.safetensors\"}}");
    IS_INT(sw_st_set_open(ix, &s), SW_EFORMAT, "shard s1 holds 'a' which the index puts in s3");

    char empty[512];
    snprintf(empty, sizeof empty, "%s/empty", tmpdir);
    sw_mkdir_p(empty);
    IS_INT(sw_st_set_open(empty, &s), SW_ENOTFOUND, "folder without weights: SW_ENOTFOUND");
    IS_INT(sw_st_set_open(tmp_path("nothing-here"), &s), SW_ENOTFOUND,
           "missing path: SW_ENOTFOUND");
    free(s1);
    free(s2);
    free(s3);
    free(ix);
}

/* ---- malformed inputs, in memory ---------------------------------------------------------- */

/* header length (little-endian) + header + data_len zero bytes. */
static uint8_t *mk(uint64_t hlen_field, const char *header, size_t data_len, size_t *len) {
    size_t hl = strlen(header);
    *len = 8 + hl + data_len;
    uint8_t *b = calloc(1, *len + 1);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(hlen_field >> (8 * i));
    memcpy(b + 8, header, hl);
    return b;
}

/* Open header+data in memory and expect code; when want_in_msg is set the message must hold it. */
static void expect(const char *what, const char *header, size_t data_len, int code,
                   const char *want_in_msg) {
    size_t len;
    uint8_t *b = mk(strlen(header), header, data_len, &len);
    struct sw_st_file *f = (struct sw_st_file *)1;
    sw_err_clear();
    int rc = sw_st_open_mem(b, len, "bad.safetensors", &f);
    IS_INT(rc, code, "%s: %s", what, sw_strerror(code));
    if (code != 0) {
        OK(f == NULL, "%s: no file handed out", what);
        const char *m = sw_err_msg();
        OK(strncmp(m, "bad.safetensors: ", 17) == 0 && (!want_in_msg || strstr(m, want_in_msg)) &&
               !strchr(m, '\n'),
           "%s: one-line message names the file%s%s: %s", what, want_in_msg ? " and " : "",
           want_in_msg ? want_in_msg : "", m);
    }
    sw_st_close(code == 0 ? f : NULL);
    free(b);
}

static void test_malformed(void) {
    struct sw_st_file *f = NULL;
    size_t len;
    uint8_t *b;

    IS_INT(sw_st_open_mem("", 0, "bad.safetensors", &f), SW_ETRUNC, "empty file: SW_ETRUNC");
    IS_INT(sw_st_open_mem("\x10\0\0", 3, "bad.safetensors", &f), SW_ETRUNC,
           "3-byte file: SW_ETRUNC");
    b = mk((uint64_t)1 << 40, "{}", 0, &len);
    IS_INT(sw_st_open_mem(b, len, "bad.safetensors", &f), SW_EFORMAT,
           "header length 2^40: SW_EFORMAT");
    OK(strstr(sw_err_msg(), "exceeds") != NULL, "huge header length message: %s", sw_err_msg());
    free(b);
    b = mk(UINT64_MAX, "{}", 0, &len);
    IS_INT(sw_st_open_mem(b, len, "bad.safetensors", &f), SW_EFORMAT,
           "header length 2^64-1: SW_EFORMAT");
    free(b);
    b = mk(1000, "{\"a\":{}}", 10, &len);
    IS_INT(sw_st_open_mem(b, len, "bad.safetensors", &f), SW_ETRUNC,
           "header length past the end: SW_ETRUNC");
    free(b);
    b = mk(0, "", 0, &len);
    IS_INT(sw_st_open_mem(b, len, "bad.safetensors", &f), SW_EFORMAT,
           "zero header length: SW_EFORMAT");
    free(b);

    expect("valid empty header", "{}", 0, 0, NULL);
    expect("valid with trailing spaces",
           "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}   ", 2, 0, NULL);
    expect("metadata null accepted", "{\"__metadata__\":null}", 0, 0, NULL);
    expect("empty tensors may share an offset",
           "{\"e1\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
           "\"e2\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]},"
           "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
           1, 0, NULL);
    expect("unknown extra entry keys are ignored (as the reference does)",
           "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"extra\":1}}", 1, 0,
           NULL);

    expect("header not an object", "[1, 2]", 0, SW_EFORMAT, "'{'");
    expect("bad JSON", "{\"a\": {\"dtype\": ", 0, SW_EFORMAT, "header JSON");
    expect("trailing garbage after the object", "{} x", 0, SW_EFORMAT, "header JSON");
    expect("duplicate tensor names",
           "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
           "\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
           2, SW_EFORMAT, "\"w\"");
    expect("invalid UTF-8 name",
           "{\"w\xff\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, SW_EFORMAT,
           "header JSON");
    expect("entry not an object", "{\"w\": 3}", 0, SW_EFORMAT, "'w'");
    expect("missing dtype", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 1, SW_EFORMAT,
           "'w': missing \"dtype\"");
    expect("missing shape", "{\"w\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", 1, SW_EFORMAT,
           "'w': missing \"shape\"");
    expect("missing data_offsets", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1, SW_EFORMAT,
           "'w': missing \"data_offsets\"");
    expect("dtype not a string", "{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
           SW_EFORMAT, "'w'");
    expect("unknown dtype", "{\"w\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
           SW_EFORMAT, "'w': unknown dtype 'F33'");
    expect("lower-case dtype is not a safetensors name",
           "{\"w\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, SW_EFORMAT,
           "'w'");
    expect("newer dtype sw lacks",
           "{\"w\":{\"dtype\":\"C64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, SW_EUNSUPPORTED,
           "'w': dtype C64");
    expect("shape not an array", "{\"w\":{\"dtype\":\"U8\",\"shape\":1,\"data_offsets\":[0,1]}}", 1,
           SW_EFORMAT, "'w'");
    expect("negative dim", "{\"w\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", 1,
           SW_EFORMAT, "'w': shape[0] is -1");
    expect("float dim", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1.0],\"data_offsets\":[0,1]}}", 1,
           SW_EFORMAT, "'w': shape[0]");
    expect("string dim", "{\"w\":{\"dtype\":\"U8\",\"shape\":[\"1\"],\"data_offsets\":[0,1]}}", 1,
           SW_EFORMAT, "'w'");
    expect("dim past 2^53",
           "{\"w\":{\"dtype\":\"U8\",\"shape\":[9007199254740993],\"data_offsets\":[0,1]}}", 1,
           SW_EFORMAT, "'w'");
    expect(
        "numel overflow",
        "{\"w\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,8]}}",
        8, SW_EFORMAT, "'w'");
    expect("numel x size overflow",
           "{\"w\":{\"dtype\":\"F64\",\"shape\":[4503599627370496,4096],\"data_offsets\":[0,8]}}",
           8, SW_EFORMAT, "overflows");
    expect("zero dim next to huge dims is empty, not overflow",
           "{\"w\":{\"dtype\":\"F64\",\"shape\":[9007199254740992,9007199254740992,0],\"data_"
           "offsets\":[0,0]}}",
           0, 0, NULL);
    expect("ndim 9",
           "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
           SW_EUNSUPPORTED, "'w': 9 dimensions");
    expect("ndim 8 is fine",
           "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1, 0,
           NULL);
    expect("wrong size",
           "{\"lm_head.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,10]}}", 10,
           SW_EFORMAT,
           "tensor 'lm_head.weight': data_offsets [0, 10] hold 10 bytes but F32 [3, 4] needs 48");
    expect("data_offsets not a pair",
           "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", 1, SW_EFORMAT,
           "'w': data_offsets");
    expect("data_offsets negative",
           "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]}}", 1, SW_EFORMAT,
           "'w': data_offsets[0]");
    expect("data_offsets float",
           "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1.5]}}", 1, SW_EFORMAT,
           "'w': data_offsets[1]");
    expect("begin > end", "{\"w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,2]}}", 4,
           SW_EFORMAT, "'w': data_offsets [4, 2]");
    expect("offsets out of range",
           "{\"w\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[6,10]}}", 8, SW_ETRUNC, "'w'");
    expect("offsets past 2^53",
           "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[9007199254740993,"
           "9007199254740994]}}",
           1, SW_EFORMAT, "'w'");
    expect("overlapping spans",
           "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
           "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}",
           6, SW_EFORMAT, "'b'");
    OK(strstr(sw_err_msg(), "overlap tensor 'a'") != NULL, "overlap message names both tensors");
    expect("identical spans",
           "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
           "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}",
           4, SW_EFORMAT, "overlap");
    expect("gap between spans",
           "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
           "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[8,12]}}",
           12, SW_EFORMAT, "'b'");
    OK(strstr(sw_err_msg(), "gap of 4 bytes") != NULL, "gap message gives the size");
    expect("gap at the start", "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}", 8,
           SW_EFORMAT, "'a'");
    expect("trailing bytes not covered",
           "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 9, SW_EFORMAT,
           "5 bytes at the end");
    expect("metadata not an object", "{\"__metadata__\":[1]}", 0, SW_EFORMAT, "__metadata__");
    expect("metadata value not a string", "{\"__metadata__\":{\"format\":1}}", 0, SW_EFORMAT,
           "__metadata__ 'format'");
    expect("control characters in a name are cleaned from the message",
           "{\"a\\nb\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,2]}}", 2, SW_EFORMAT,
           "'a?b'");
}

/* ---- Python's safetensors reads what sw wrote ---------------------------------------------- */

static const char *py_check =
    "import sys, numpy as np\n"
    "from safetensors import deserialize, safe_open\n"
    "path = sys.argv[1]\n"
    "raw = open(path, 'rb').read()\n"
    "ts = dict(deserialize(raw))\n" /* Rust validation of the whole file */
    "dts = "
    "['BOOL','U8','I8','F8_E5M2','F8_E4M3','I16','U16','F16','BF16','I32','U32','F32','F64','I64','"
    "U64']\n"
    "size = "
    "{'BOOL':1,'U8':1,'I8':1,'F8_E5M2':1,'F8_E4M3':1,'I16':2,'U16':2,'F16':2,'BF16':2,'I32':4,'U32'"
    ":4,'F32':4,'F64':8,'I64':8,'U64':8}\n"
    "for k, dt in enumerate(dts):\n"
    "    t = ts['t%02d.%s' % (k, dt)]\n"
    "    want = bytes(((k*31 + i*7 + 1) & 0xff) & (1 if dt == 'BOOL' else 0xff) for i in "
    "range(15*size[dt]))\n"
    "    assert t['dtype'] == dt, (dt, t['dtype'])\n"
    "    assert list(t['shape']) == [3, 5], (dt, t['shape'])\n"
    "    assert bytes(t['data']) == want, dt\n"
    "assert list(ts['scalar']['shape']) == [] and list(ts['empty']['shape']) == [0, 4]\n"
    "with safe_open(path, framework='numpy') as f:\n"
    "    assert f.metadata() == {'format': 'np', 'a_key': 'first'}, f.metadata()\n"
    "    assert float(f.get_tensor('scalar')) == 3.25\n"
    "    a = f.get_tensor('t11.F32')\n"
    "    want = np.frombuffer(bytes((11*31 + i*7 + 1) & 0xff for i in range(60)), "
    "'<f4').reshape(3, 5)\n"
    "    assert a.tobytes() == want.tobytes()\n"
    "print('python safetensors: ok')\n";

static void test_python_reads_sw(void) {
    if (system("python3 -c 'import safetensors, numpy' >/dev/null 2>&1") != 0) {
        printf("ok %d - # SKIP python3 with safetensors+numpy not importable (pip install "
               "safetensors numpy)\n",
               ++tap_n);
        return;
    }
    uint8_t *bufs[NDT] = {0};
    const char *path = tmp_path("forpython.safetensors");
    write_all_dtypes(path, bufs);
    for (int k = 0; k < NDT; k++)
        free(bufs[k]);
    const char *script = tmp_path("check.py");
    write_text(script, py_check);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "python3 %s %s", script, path);
    int rc = system(cmd);
    IS_INT(rc, 0, "Python's safetensors (Rust validation) loads the file sw wrote, bytes equal");

    /* The sharded folder too, through transformers' index format. */
    char dir[512];
    snprintf(dir, sizeof dir, "%s/sharded", tmpdir);
    struct sw_st_writer *w;
    sw_st_writer_new(&w);
    static uint16_t h[3][7];
    for (int k = 0; k < 3; k++) {
        int64_t shape[1] = {7};
        char name[16];
        struct sw_tensor t;
        for (int i = 0; i < 7; i++)
            h[k][i] = (uint16_t)(k * 1000 + i);
        sw_tensor_init(&t, SW_DTYPE_I16, 1, shape, h[k]);
        snprintf(name, sizeof name, "w%d", k);
        sw_st_writer_add(w, name, &t);
    }
    sw_st_writer_write_sharded(w, dir, "model", 14);
    sw_st_writer_free(w);
    snprintf(
        cmd, sizeof cmd,
        "python3 -c \"import json, numpy as np; from safetensors.numpy import load_file\n"
        "d='%s'; ix=json.load(open(d+'/model.safetensors.index.json'))\n"
        "assert ix['metadata']['total_size'] == 42, ix\n"
        "for name, fn in ix['weight_map'].items():\n"
        "    a = load_file(d+'/'+fn)[name]; k = int(name[1:])\n"
        "    assert a.dtype == np.int16 and list(a) == [k*1000+i for i in range(7)], (name, a)\n"
        "print('python sharded: ok')\"",
        dir);
    rc = system(cmd);
    IS_INT(rc, 0, "Python loads every shard named by sw's index");
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sw_test_st.XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    test_round_trip();
    test_writer_errors();
    test_sharded();
    test_set_errors();
    test_malformed();
    test_python_reads_sw();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) DIAG("could not remove %s", tmpdir);
    return tap_done();
}
