/* sw_merge — sw-quant merge-lora's engine: a PEFT LoRA adapter folded into the base weights,
 * W' = W + scale · B · A, written as a new HF model folder atomically (temp folder + rename).
 *
 * Every base tensor passes through in the base's order; only the adapted linear weights change.
 * The product B·A is one sgemm in float32 per module ([out, r] · [r, in]); the sum is rounded once
 * into the output dtype. PEFT on the CPU does the same for float32 models; for bf16/fp16 models
 * it first rounds the delta to the base dtype and then adds in that dtype, so the two can differ
 * by one unit in the last place of the output dtype. */
#include "sw_merge.h"

#include "sw_err.h"
#include "sw_adapter.h"
#include "sw_hfmodel.h"
#include "sw_io.h"
#include "sw_log.h"

#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Files copied from the base folder (or the adapter folder when the base lacks them). */
static const char *const copied_files[] = {
    "generation_config.json",  "tokenizer.json",      "tokenizer.json.gz", "tokenizer_config.json",
    "special_tokens_map.json", "vocab.json",          "merges.txt",        "tokenizer.model",
    "added_tokens.json",       "chat_template.jinja",
};

/* The folder that holds path ("." when none), malloc'ed. */
static char *parent_dir(const char *path) {
    char *p = strdup(path);
    if (!p) return NULL;
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        p[--n] = 0;
    char *s = strrchr(p, '/');
    if (!s) {
        free(p);
        return strdup(".");
    }
    if (s == p)
        s[1] = 0;
    else
        *s = 0;
    return p;
}

static int file_exists(const char *dir, const char *name) {
    char *p = sw_path_join(dir, name);
    int ok = p && access(p, F_OK) == 0;
    free(p);
    return ok;
}

static int copy_file(const char *dir, const char *name, const char *to) {
    char *src = sw_path_join(dir, name), *dst = sw_path_join(to, name);
    int rc = src && dst ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
    /* Raw bytes: sw_read_file would inflate tokenizer.json.gz, so read through an mmap. */
    struct sw_mmap m = {0};
    if (rc == 0) rc = sw_mmap_open(&m, src);
    if (rc == 0) rc = sw_write_file_atomic(dst, m.data, m.len);
    sw_mmap_close(&m);
    free(src), free(dst);
    return rc;
}

char *sw_generation_config_default_json(const struct sw_model_config *c) {
    json_t *g = json_object();
    if (!g) return NULL;
    /* GenerationConfig.from_model_config keeps the token ids and marks its origin; what
     * transformers writes with use_diff leaves out the unset (None) ids. */
    json_object_set_new(g, "_from_model_config", json_true());
    if (c->bos_token_id >= 0) json_object_set_new(g, "bos_token_id", json_integer(c->bos_token_id));
    if (c->n_eos == 1) {
        json_object_set_new(g, "eos_token_id", json_integer(c->eos_token_ids[0]));
    } else if (c->n_eos > 1) {
        json_t *a = json_array();
        for (int i = 0; a && i < c->n_eos; i++)
            json_array_append_new(a, json_integer(c->eos_token_ids[i]));
        json_object_set_new(g, "eos_token_id", a);
    }
    if (c->pad_token_id >= 0) json_object_set_new(g, "pad_token_id", json_integer(c->pad_token_id));
    char *text = json_dumps(g, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(g);
    if (!text) return NULL;
    size_t n = strlen(text);
    char *t2 = realloc(text, n + 2);
    if (!t2) {
        free(text);
        return NULL;
    }
    t2[n] = '\n';
    t2[n + 1] = '\0';
    return t2;
}

/* config.json of the base, with the dtype keys replaced when the output dtype changed. */
static int write_config(const struct sw_merge_opts *o, const char *tmp, const char *dtype_name) {
    if (!dtype_name) return copy_file(o->model, "config.json", tmp);
    char *src = sw_path_join(o->model, "config.json"), *dst = sw_path_join(tmp, "config.json");
    json_error_t jerr;
    json_t *j = src ? json_load_file(src, JSON_DECODE_ANY, &jerr) : NULL;
    char *text = NULL;
    int rc = 0;
    if (!src || !dst)
        rc = sw_err_set(SW_ENOMEM, "out of memory");
    else if (!json_is_object(j))
        rc = sw_err_set(SW_EFORMAT, "%s:%d: %s", src, jerr.line,
                        j ? "not a JSON object" : jerr.text);
    if (rc == 0) {
        /* transformers 4 writes torch_dtype, 5 writes dtype: update whichever is there. */
        int any = 0;
        if (json_object_get(j, "torch_dtype"))
            json_object_set_new(j, "torch_dtype", json_string(dtype_name)), any = 1;
        if (json_object_get(j, "dtype") || !any)
            json_object_set_new(j, "dtype", json_string(dtype_name));
        text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (!text) rc = sw_err_set(SW_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        size_t n = strlen(text);
        char *t2 = realloc(text, n + 2);
        if (!t2)
            rc = sw_err_set(SW_ENOMEM, "out of memory");
        else
            text = t2, text[n] = '\n', text[n + 1] = 0, rc = sw_write_file_atomic(dst, text, n + 1);
    }
    free(text), free(src), free(dst);
    json_decref(j);
    return rc;
}

/* The adapter module whose base weight is called name, or NULL. */
static const struct sw_adapter_module *module_for(const struct sw_adapter *a, const char *name) {
    char want[256];
    for (int i = 0; i < a->n_modules; i++) {
        const struct sw_adapter_module *m = &a->modules[i];
        snprintf(want, sizeof want, "model.layers.%lld.%s.%s.weight", (long long)m->layer,
                 sw_adapter_kind_parent(m->kind), sw_adapter_kind_name(m->kind));
        if (strcmp(want, name) == 0) return m;
    }
    return NULL;
}

/* Buffers handed to the writer, which borrows tensor data until it writes: freed after. */
struct keep {
    void **p;
    int n, cap;
};

static int keep_push(struct keep *k, void *buf) {
    if (k->n == k->cap) {
        int cap = k->cap ? 2 * k->cap : 64;
        void **np = realloc(k->p, (size_t)cap * sizeof *np);
        if (!np) {
            free(buf);
            return sw_err_set(SW_ENOMEM, "out of memory");
        }
        k->p = np, k->cap = cap;
    }
    k->p[k->n++] = buf;
    return 0;
}

static void keep_release(struct keep *k) {
    for (int i = 0; i < k->n; i++)
        free(k->p[i]);
    free(k->p);
    memset(k, 0, sizeof *k);
}

/* A float32 copy of entry e (malloc'ed). */
static float *to_f32(const struct sw_st_entry *e, int64_t n) {
    float *x = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!x) {
        sw_err_set(SW_ENOMEM, "out of memory for '%s'", e->name);
        return NULL;
    }
    if (sw_dtype_convert(SW_DTYPE_F32, x, e->dtype, e->data, (size_t)n) < 0) {
        free(x);
        sw_err_set(SW_EUNSUPPORTED, "tensor '%s': cannot convert %s to float32", e->name,
                   sw_dtype_name(e->dtype));
        return NULL;
    }
    return x;
}

/* W + scale · B · A for module m over base entry w, converted to dt, added to the writer (the
 * buffer kept in k until the write). */
static int add_merged(struct sw_st_writer *wr, struct keep *k, const struct sw_st_entry *w,
                      const struct sw_adapter_module *m, double scale, enum sw_dtype dt) {
    int64_t out = m->b->shape[0], in = m->a->shape[1], r = m->a->shape[0];
    if (w->ndim != 2 || w->shape[0] != out || w->shape[1] != in)
        return sw_err_set(SW_EFORMAT,
                          "base tensor '%s' has shape [%lld, %lld] but the adapter's "
                          "'%s' needs [%lld, %lld]",
                          w->name, (long long)w->shape[0],
                          (long long)(w->ndim > 1 ? w->shape[1] : 0), m->a->name, (long long)out,
                          (long long)in);
    float *W = to_f32(w, out * in), *A = to_f32(m->a, r * in), *B = to_f32(m->b, out * r);
    void *conv = NULL;
    int rc = W && A && B ? 0 : SW_ENOMEM;
    if (rc == 0) {
        /* W[out, in] += scale · B[out, r] · A[r, in] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)out, (int)in, (int)r,
                    (float)scale, B, (int)r, A, (int)in, 1.0f, W, (int)in);
        conv = dt == SW_DTYPE_F32 ? (void *)W : malloc(sw_dtype_nbytes(dt, (uint64_t)(out * in)));
        if (!conv)
            rc = sw_err_set(SW_ENOMEM, "out of memory for '%s'", w->name);
        else if (conv != W)
            rc = sw_dtype_convert(dt, conv, SW_DTYPE_F32, W, (size_t)(out * in));
    }
    if (rc == 0) {
        struct sw_tensor t;
        int64_t shape[2] = {out, in};
        rc = sw_tensor_init(&t, dt, 2, shape, conv);
        if (rc == 0) rc = sw_st_writer_add(wr, w->name, &t);
    }
    if (conv != W) free(W);
    if (rc == 0)
        rc = keep_push(k, conv);
    else
        free(conv);
    free(A), free(B);
    return rc;
}

/* A base tensor passed through, converted when a float and the output dtype differs. */
static int add_plain(struct sw_st_writer *wr, struct keep *k, const struct sw_st_entry *e,
                     int has_dt, enum sw_dtype dt) {
    struct sw_tensor t;
    if (!has_dt || !sw_dtype_is_float(e->dtype) || e->dtype == dt) {
        sw_st_entry_view(e, &t);
        return sw_st_writer_add(wr, e->name, &t);
    }
    uint64_t n;
    SW_TRY(sw_shape_numel(e->ndim, e->shape, &n));
    void *buf = malloc(sw_dtype_nbytes(dt, n) + 1);
    if (!buf) return sw_err_set(SW_ENOMEM, "out of memory for '%s'", e->name);
    int rc = sw_dtype_convert(dt, buf, e->dtype, e->data, (size_t)n);
    if (rc == 0) rc = sw_tensor_init(&t, dt, e->ndim, e->shape, buf);
    if (rc == 0) rc = sw_st_writer_add(wr, e->name, &t);
    if (rc == 0) return keep_push(k, buf);
    free(buf);
    return rc;
}

/* Every base tensor into the writer, adapted ones merged; checks that every module was used. */
static int build_weights(const struct sw_hfmodel *hf, const struct sw_adapter *a, int has_dt,
                         enum sw_dtype dt, struct sw_st_writer *wr, struct keep *k) {
    int n = sw_st_set_count(hf->weights), used = 0;
    for (int i = 0; i < n; i++) {
        const struct sw_st_entry *e = sw_st_set_get(hf->weights, i);
        const struct sw_adapter_module *m = module_for(a, e->name);
        if (!m) {
            SW_TRY(add_plain(wr, k, e, has_dt, dt));
            continue;
        }
        if (!sw_dtype_is_float(e->dtype))
            return sw_err_set(SW_EUNSUPPORTED,
                              "base tensor '%s' is %s: only float weights can be "
                              "merged (dequantize first)",
                              e->name, sw_dtype_name(e->dtype));
        SW_TRY(add_merged(wr, k, e, m, a->scale, has_dt ? dt : e->dtype));
        used++;
    }
    if (used != a->n_modules)
        for (int j = 0; j < a->n_modules; j++) {
            const struct sw_adapter_module *m = &a->modules[j];
            char want[256];
            snprintf(want, sizeof want, "model.layers.%lld.%s.%s.weight", (long long)m->layer,
                     sw_adapter_kind_parent(m->kind), sw_adapter_kind_name(m->kind));
            if (!sw_st_set_find(hf->weights, want))
                return sw_err_set(SW_ENOTFOUND,
                                  "%s: the base model has no tensor '%s' for "
                                  "adapter tensor '%s'",
                                  hf->dir, want, m->a->name);
        }
    return 0;
}

static int parse_dtype(const char *s, enum sw_dtype *dt, const char **hf_name) {
    if (strcmp(s, "float32") == 0 || strcmp(s, "fp32") == 0 || strcmp(s, "F32") == 0)
        *dt = SW_DTYPE_F32, *hf_name = "float32";
    else if (strcmp(s, "bfloat16") == 0 || strcmp(s, "bf16") == 0 || strcmp(s, "BF16") == 0)
        *dt = SW_DTYPE_BF16, *hf_name = "bfloat16";
    else if (strcmp(s, "float16") == 0 || strcmp(s, "fp16") == 0 || strcmp(s, "F16") == 0)
        *dt = SW_DTYPE_F16, *hf_name = "float16";
    else
        return sw_err_set(SW_EUSAGE, "--dtype '%s': expected float32, bfloat16 or float16", s);
    return 0;
}

/* Write everything into tmp. */
static int write_folder(const struct sw_merge_opts *o, const struct sw_hfmodel *hf,
                        const struct sw_adapter *a, const char *tmp) {
    enum sw_dtype dt = SW_DTYPE_F32;
    const char *dtype_name = NULL;
    if (o->dtype) SW_TRY(parse_dtype(o->dtype, &dt, &dtype_name));
    struct sw_st_writer *wr = NULL;
    struct keep k = {0};
    SW_TRY(sw_st_writer_new(&wr));
    int rc = build_weights(hf, a, o->dtype != NULL, dt, wr, &k);
    if (rc == 0) rc = sw_st_writer_set_metadata(wr, "format", "pt");
    if (rc == 0)
        rc = sw_st_writer_write_sharded(wr, tmp, "model",
                                        o->max_shard_bytes ? o->max_shard_bytes : 5000000000ull);
    sw_st_writer_free(wr);
    keep_release(&k);
    if (rc == 0) rc = write_config(o, tmp, dtype_name);
    for (size_t i = 0; rc == 0 && i < sizeof copied_files / sizeof copied_files[0]; i++) {
        const char *f = copied_files[i];
        if (file_exists(o->model, f))
            rc = copy_file(o->model, f, tmp);
        else if (file_exists(o->adapter, f))
            rc = copy_file(o->adapter, f, tmp);
    }
    /* Neither folder has one: the default transformers derives from config.json. */
    if (rc == 0 && !file_exists(o->model, "generation_config.json") &&
        !file_exists(o->adapter, "generation_config.json")) {
        char *text = sw_generation_config_default_json(&hf->config);
        char *dst = sw_path_join(tmp, "generation_config.json");
        rc = text && dst ? sw_write_file_atomic(dst, text, strlen(text))
                         : sw_err_set(SW_ENOMEM, "out of memory");
        free(text), free(dst);
    }
    if (rc == 0) rc = sw_fsync_path(tmp, 1);
    return rc;
}

/* Move tmp to o->output (replacing it with --force), then sync the parent folder. */
static int install(const struct sw_merge_opts *o, const char *tmp, const char *parent) {
    char *old = NULL;
    int rc = 0;
    if (access(o->output, F_OK) == 0) {
        if (!o->force)
            return sw_err_set(SW_EINVAL, "'%s' exists (remove it or pass --force)", o->output);
        size_t n = strlen(o->output) + 64;
        if (!(old = malloc(n))) return sw_err_set(SW_ENOMEM, "out of memory");
        snprintf(old, n, "%s.old-%ld", o->output, (long)getpid());
        if (rename(o->output, old) != 0) {
            rc = sw_err_errno("cannot move '%s' aside", o->output);
            free(old);
            return rc;
        }
    }
    if (rename(tmp, o->output) != 0) {
        rc = sw_err_errno("cannot rename '%s' to '%s'", tmp, o->output);
        if (old && rename(old, o->output) != 0) sw_warn("left the old output at '%s'", old);
    }
    if (rc == 0) rc = sw_fsync_path(parent, 1);
    if (rc == 0 && old) rc = sw_rm_tree(old);
    free(old);
    return rc;
}

int sw_merge_lora(const struct sw_merge_opts *o) {
    struct sw_hfmodel *hf = NULL;
    struct sw_adapter *a = NULL;
    char *parent = NULL, *tmp = NULL;
    int rc;
    if (!o->force && access(o->output, F_OK) == 0)
        return sw_err_set(SW_EINVAL, "'%s' exists (remove it or pass --force)", o->output);
    SW_TRY_GOTO(rc, sw_hfmodel_open(o->model, &hf), out);
    SW_TRY_GOTO(rc, sw_adapter_open(o->adapter, &a), out);
    SW_TRY_GOTO(rc, sw_adapter_check(a, &hf->config), out);
    size_t n = strlen(o->output) + 64;
    parent = parent_dir(o->output);
    tmp = malloc(n);
    if (!parent || !tmp) {
        rc = sw_err_set(SW_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(tmp, n, "%s.tmp-%ld", o->output, (long)getpid());
    SW_TRY_GOTO(rc, sw_rm_tree(tmp), out);
    if (mkdir(tmp, 0755) != 0) {
        rc = sw_err_errno("cannot create '%s'", tmp);
        goto out;
    }
    rc = write_folder(o, hf, a, tmp);
    if (rc == 0) rc = install(o, tmp, parent);
    if (rc < 0) {
        int keep = rc;
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", sw_err_msg());
        sw_rm_tree_quiet(tmp);
        rc = sw_err_set(keep, "%s", msg);
        goto out;
    }
    sw_info("merged %d LoRA modules (scale %g) into %s", a->n_modules, a->scale, o->output);
out:
    free(parent), free(tmp);
    sw_adapter_close(a);
    sw_hfmodel_close(hf);
    return rc;
}
