/* sw_gguf_mix — which ggml type each tensor of a GGUF export gets (the rule is spelled out in
 * sw_gguf_export.h; it is llama.cpp's llama_tensor_get_type restricted to the file types sw
 * writes and to dense models), and the importance-matrix reader.
 *
 * llama.cpp counts attn_v / ffn_down tensors in its name order, which sorts by layer number
 * first; for the dense models here the count equals the layer index in the name, so the rule is
 * a pure function of the name. */
#include "sw_gguf_export.h"

#include "sw_err.h"
#include "sw_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    int ftype, base;
} ftypes[] = {
    {"f32", SW_FTYPE_ALL_F32, SW_GGML_F32},    {"f16", SW_FTYPE_F16, SW_GGML_F16},
    {"bf16", SW_FTYPE_BF16, SW_GGML_BF16},     {"q8_0", SW_FTYPE_Q8_0, SW_GGML_Q8_0},
    {"q4_0", SW_FTYPE_Q4_0, SW_GGML_Q4_0},     {"q4_1", SW_FTYPE_Q4_1, SW_GGML_Q4_1},
    {"q5_0", SW_FTYPE_Q5_0, SW_GGML_Q5_0},     {"q5_1", SW_FTYPE_Q5_1, SW_GGML_Q5_1},
    {"q4_k_s", SW_FTYPE_Q4_K_S, SW_GGML_Q4_K}, {"q4_k_m", SW_FTYPE_Q4_K_M, SW_GGML_Q4_K},
    {"q5_k_s", SW_FTYPE_Q5_K_S, SW_GGML_Q5_K}, {"q5_k_m", SW_FTYPE_Q5_K_M, SW_GGML_Q5_K},
    {"q6_k", SW_FTYPE_Q6_K, SW_GGML_Q6_K},
};
#define NFTYPES (sizeof ftypes / sizeof ftypes[0])

const char *sw_gguf_ftype_choices(void) {
    return "f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1|q4_k_s|q4_k_m|q5_k_s|q5_k_m|q6_k";
}

int sw_gguf_ftype_parse(const char *name, int *ftype, int *base_type) {
    for (size_t i = 0; i < NFTYPES; i++)
        if (strcasecmp(name, ftypes[i].name) == 0) {
            *ftype = ftypes[i].ftype, *base_type = ftypes[i].base;
            return 0;
        }
    return sw_err_set(SW_EUSAGE, "unknown --quant_type '%s' (one of %s)", name,
                      sw_gguf_ftype_choices());
}

const char *sw_gguf_ftype_name(int ftype) {
    static char up[NFTYPES][8];
    for (size_t i = 0; i < NFTYPES; i++)
        if (ftypes[i].ftype == ftype) {
            if (!up[i][0])
                for (size_t k = 0; k < 7 && ftypes[i].name[k]; k++)
                    up[i][k] = (char)(ftypes[i].name[k] >= 'a' && ftypes[i].name[k] <= 'z'
                                          ? ftypes[i].name[k] - 32
                                          : ftypes[i].name[k]);
            return up[i];
        }
    return NULL;
}

int sw_gguf_use_more_bits(int i, int n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static int layer_of(const char *name) {
    int l = -1;
    if (sscanf(name, "blk.%d.", &l) != 1) return -1;
    return l;
}

int sw_gguf_pick_type(const struct sw_gguf_mix *m, const char *name, int n_dims, const int64_t *ne,
                      int *fallback) {
    if (fallback) *fallback = 0;
    /* llama.cpp quantizes only 2-D (and 3-D) tensors whose name ends in "weight" and that are
     * not norms; the rest keep the converter's type, which is F32 for 1-D tensors. */
    int quantizable = n_dims >= 2 && ends_with(name, "weight") && !strstr(name, "_norm.weight");
    if (!quantizable) return SW_GGML_F32;
    if (!sw_ggml_is_quantized(m->base_type)) return m->base_type;
    int t = m->base_type, ft = m->ftype;
    int i = layer_of(name), n = m->n_layer;
    int is_output = !strcmp(name, "output.weight");
    int is_embd = !strcmp(name, "token_embd.weight");
    if (is_output || (m->tied && is_embd)) {
        if (ne[0] % sw_ggml_blck_size(t) != 0)
            t = SW_GGML_Q8_0;
        else if (t != SW_GGML_Q8_0)
            t = SW_GGML_Q6_K;
    } else if (is_embd) {
        /* no change for the file types sw writes */
    } else if (strstr(name, "attn_v.weight")) {
        if ((ft == SW_FTYPE_Q4_K_M || ft == SW_FTYPE_Q5_K_M) && sw_gguf_use_more_bits(i, n))
            t = SW_GGML_Q6_K;
        else if (ft == SW_FTYPE_Q4_K_S && i < 4)
            t = SW_GGML_Q5_K;
    } else if (strstr(name, "ffn_down")) {
        if (ft == SW_FTYPE_Q4_K_M && sw_gguf_use_more_bits(i, n))
            t = SW_GGML_Q6_K;
        else if (ft == SW_FTYPE_Q5_K_M && sw_gguf_use_more_bits(i, n))
            t = SW_GGML_Q6_K;
        else if (ft == SW_FTYPE_Q4_K_S && i < n / 8)
            t = SW_GGML_Q5_K;
        else if ((ft == SW_FTYPE_Q4_0 || ft == SW_FTYPE_Q5_0) && m->has_imatrix && i < n / 8)
            t = ft == SW_FTYPE_Q4_0 ? SW_GGML_Q4_1 : SW_GGML_Q5_1;
    }
    if (ne[0] % sw_ggml_blck_size(t) != 0) {
        int fb;
        switch (t) {
        case SW_GGML_Q4_K: fb = SW_GGML_Q5_0; break;
        case SW_GGML_Q5_K: fb = SW_GGML_Q5_1; break;
        case SW_GGML_Q6_K: fb = SW_GGML_Q8_0; break;
        default:
            return sw_err_set(SW_EUNSUPPORTED,
                              "tensor '%s': rows of %lld elements are not a "
                              "multiple of the %s block size %lld (llama.cpp has no fallback "
                              "for %s either; choose f16, bf16 or a K-quant)",
                              name, (long long)ne[0], sw_ggml_type_name(t),
                              (long long)sw_ggml_blck_size(t), sw_ggml_type_name(t));
        }
        if (ne[0] % sw_ggml_blck_size(fb) != 0) fb = SW_GGML_F16;
        if (fallback) *fallback = 1;
        t = fb;
    }
    return t;
}

/* ---- importance matrix ---- */

struct im_entry {
    char *name;
    float *v;
    int64_t n;
};

struct sw_imatrix {
    struct im_entry *e;
    int n, cap;
};

void sw_imatrix_free(struct sw_imatrix *im) {
    if (!im) return;
    for (int i = 0; i < im->n; i++)
        free(im->e[i].name), free(im->e[i].v);
    free(im->e);
    free(im);
}

static int im_add(struct sw_imatrix *im, const char *name, size_t name_len, float *v, int64_t n) {
    if (im->n == im->cap) {
        int cap = im->cap ? 2 * im->cap : 64;
        struct im_entry *ne = realloc(im->e, (size_t)cap * sizeof *ne);
        if (!ne) return sw_err_set(SW_ENOMEM, "out of memory");
        im->e = ne, im->cap = cap;
    }
    char *nm = malloc(name_len + 1);
    if (!nm) return sw_err_set(SW_ENOMEM, "out of memory");
    memcpy(nm, name, name_len);
    nm[name_len] = 0;
    /* Field by field (not a compound literal), so cppcheck sees nm owned by the entry. */
    struct im_entry *e = &im->e[im->n++];
    e->name = nm;
    e->v = v;
    e->n = n;
    return 0;
}

static int load_gguf_imatrix(const char *path, struct sw_imatrix *im) {
    struct sw_gguf *g = NULL;
    SW_TRY(sw_gguf_open(path, &g));
    int rc = 0;
    for (int i = 0; i < sw_gguf_tensor_count(g) && rc == 0; i++) {
        const struct sw_gguf_tensor *t = sw_gguf_tensor_get(g, i);
        size_t len = strlen(t->name);
        if (!ends_with(t->name, ".in_sum2")) continue;
        char cname[80];
        snprintf(cname, sizeof cname, "%.*s.counts", (int)(len - 8), t->name);
        const struct sw_gguf_tensor *c = sw_gguf_find_tensor(g, cname);
        if (!c || c->type != SW_GGML_F32 || t->type != SW_GGML_F32) {
            rc = sw_err_set(SW_EFORMAT, "%s: '%s' needs an F32 '%s'", path, t->name, cname);
            break;
        }
        int64_t nsum = sw_gguf_tensor_numel(t), ncnt = sw_gguf_tensor_numel(c);
        if (ncnt < 1 || nsum % ncnt != 0) {
            rc = sw_err_set(SW_EFORMAT, "%s: '%s' has %lld sums for %lld counts", path, t->name,
                            (long long)nsum, (long long)ncnt);
            break;
        }
        int64_t ne0 = nsum / ncnt;
        float *v = malloc((size_t)(nsum ? nsum : 1) * sizeof *v);
        if (!v) {
            rc = sw_err_set(SW_ENOMEM, "out of memory");
            break;
        }
        const float *s = t->data, *cnt = c->data;
        for (int64_t j = 0; j < ncnt; j++)
            for (int64_t k = 0; k < ne0; k++)
                v[j * ne0 + k] = cnt[j] > 0 ? s[j * ne0 + k] / cnt[j] : 1.0f;
        rc = im_add(im, t->name, len - 8, v, nsum);
        if (rc < 0) free(v);
    }
    sw_gguf_close(g);
    return rc;
}

/* The legacy binary format, bounds-checked like every reader of untrusted bytes. */
static int load_legacy_imatrix(const char *path, const uint8_t *p, size_t len,
                               struct sw_imatrix *im) {
    size_t off = 0;
#define NEED(n, what)                                                                              \
    do {                                                                                           \
        if ((n) > len - off)                                                                       \
            return sw_err_set(SW_ETRUNC, "%s: truncated at byte %zu reading %s", path, off, what); \
    } while (0)
    int32_t count;
    NEED(4, "the entry count");
    memcpy(&count, p + off, 4), off += 4;
    if (count < 0 || (size_t)count > len / 12)
        return sw_err_set(SW_EFORMAT, "%s: entry count %d does not fit the file", path, count);
    for (int32_t e = 0; e < count; e++) {
        int32_t nlen, ncall, nval;
        NEED(4, "a name length");
        memcpy(&nlen, p + off, 4), off += 4;
        if (nlen <= 0 || nlen > 256)
            return sw_err_set(SW_EFORMAT, "%s: entry %d: name length %d", path, e, nlen);
        NEED((size_t)nlen, "a name");
        const char *name = (const char *)p + off;
        off += (size_t)nlen;
        NEED(8, "ncall and nval");
        memcpy(&ncall, p + off, 4), memcpy(&nval, p + off + 4, 4), off += 8;
        if (nval <= 0 || (size_t)nval > (len - off) / 4)
            return sw_err_set(SW_ETRUNC, "%s: entry '%.*s': %d values do not fit the file", path,
                              nlen, name, nval);
        float *v = malloc((size_t)nval * sizeof *v);
        if (!v) return sw_err_set(SW_ENOMEM, "out of memory");
        memcpy(v, p + off, (size_t)nval * 4), off += (size_t)nval * 4;
        if (ncall > 0)
            for (int32_t k = 0; k < nval; k++)
                v[k] /= (float)ncall;
        int rc = im_add(im, name, (size_t)nlen, v, nval);
        if (rc < 0) {
            free(v);
            return rc;
        }
    }
#undef NEED
    return 0;
}

int sw_imatrix_load(const char *path, struct sw_imatrix **out) {
    *out = NULL;
    struct sw_imatrix *im = calloc(1, sizeof *im);
    if (!im) return sw_err_set(SW_ENOMEM, "out of memory");
    struct sw_mmap m = {0};
    int rc = sw_mmap_open(&m, path);
    if (rc == 0) {
        if (m.len >= 4 && memcmp(m.data, "GGUF", 4) == 0)
            rc = load_gguf_imatrix(path, im);
        else
            rc = load_legacy_imatrix(path, m.data, m.len, im);
    }
    sw_mmap_close(&m);
    for (int i = 0; rc == 0 && i < im->n; i++)
        for (int64_t k = 0; k < im->e[i].n; k++)
            if (!(im->e[i].v[k] >= 0 && im->e[i].v[k] < 3.4e38f)) {
                rc = sw_err_set(SW_EFORMAT, "%s: '%s' holds a negative or non-finite value", path,
                                im->e[i].name);
                break;
            }
    if (rc == 0 && im->n == 0) rc = sw_err_set(SW_EFORMAT, "%s: no importance entries", path);
    if (rc < 0) {
        sw_imatrix_free(im);
        return rc;
    }
    *out = im;
    return 0;
}

const float *sw_imatrix_get(const struct sw_imatrix *im, const char *name, int64_t *n) {
    for (int i = 0; im && i < im->n; i++)
        if (!strcmp(im->e[i].name, name)) {
            *n = im->e[i].n;
            return im->e[i].v;
        }
    return NULL;
}

int sw_imatrix_count(const struct sw_imatrix *im) {
    return im ? im->n : 0;
}
