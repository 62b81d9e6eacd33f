/* sw_dataset — dataset arguments (PATH[#N], folders, '-', lists), the row iterator over them and
 * whole-dataset loading with ms-swift's sampling, validation split and shuffle (see sw_dataset.h).
 *
 * The iterator is the only place rows are read, so streaming and in-memory runs see the same rows,
 * the same format detection (per file, from its first row) and the same bad-row handling. */
#include "sw_dataset.h"

#include "sw_err.h"
#include "sw_io.h"
#include "sw_log.h"
#include "sw_rng.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Bad rows logged as warnings before the rest go to the debug level (the count is always shown). */
#define BAD_ROWS_SHOWN 10

/* ---- dataset arguments ---------------------------------------------------------------------- */

static int has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int is_data_file(const char *name) {
    return has_suffix(name, ".json") || has_suffix(name, ".jsonl") ||
           has_suffix(name, ".json.gz") || has_suffix(name, ".jsonl.gz");
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int spec_add_file(struct sw_dataset_spec *s, char *path) {
    char **f = realloc(s->files, (s->n_files + 1) * sizeof *f);
    if (!f) {
        free(path);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    s->files = f;
    s->files[s->n_files++] = path;
    return 0;
}

static int list_folder(struct sw_dataset_spec *s) {
    DIR *d = opendir(s->path);
    if (!d) return sw_err_errno("dataset '%s'", s->arg);
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.' || !is_data_file(e->d_name)) continue;
        char *p = sw_path_join(s->path, e->d_name);
        if (!p)
            rc = sw_err_set(SW_ENOMEM, "out of memory");
        else
            rc = spec_add_file(s, p);
    }
    closedir(d);
    if (rc < 0) return rc;
    if (s->n_files == 0)
        return sw_err_set(SW_ENOTFOUND,
                          "dataset '%s': the folder has no *.json, *.jsonl, *.json.gz or "
                          "*.jsonl.gz files",
                          s->arg);
    qsort(s->files, s->n_files, sizeof *s->files, cmp_str);
    return 0;
}

/* Fill one spec from its argument text. */
static int spec_parse_one(const char *arg, size_t len, struct sw_dataset_spec *s) {
    memset(s, 0, sizeof *s);
    s->sample = -1;
    if (!(s->arg = strndup(arg, len)) || !(s->path = strndup(arg, len)))
        return sw_err_set(SW_ENOMEM, "out of memory");
    /* ms-swift's "#N": a trailing '#' followed by digits only. */
    char *hash = strrchr(s->path, '#');
    if (hash && hash[1]) {
        char *p = hash + 1;
        while (isdigit((unsigned char)*p))
            p++;
        if (!*p) {
            char *end;
            errno = 0;
            long long n = strtoll(hash + 1, &end, 10);
            if (errno || n <= 0)
                return sw_err_set(SW_EUSAGE,
                                  "dataset '%s': the sample count after '#' must be a "
                                  "positive integer",
                                  s->arg);
            s->sample = n;
            *hash = '\0';
        }
    }
    if (!*s->path) return sw_err_set(SW_EUSAGE, "dataset '%s': empty path", s->arg);
    if (strcmp(s->path, "-") == 0) {
        char *p = strdup("-");
        return p ? spec_add_file(s, p) : sw_err_set(SW_ENOMEM, "out of memory");
    }
    struct stat st;
    if (stat(s->path, &st) < 0) return sw_err_errno("dataset '%s'", s->arg);
    if (S_ISDIR(st.st_mode)) return list_folder(s);
    char *p = strdup(s->path);
    return p ? spec_add_file(s, p) : sw_err_set(SW_ENOMEM, "out of memory");
}

int sw_dataset_specs_parse(const char *list, struct sw_dataset_spec **specs, size_t *n) {
    *specs = NULL;
    *n = 0;
    if (!list || !*list) return sw_err_set(SW_EUSAGE, "no dataset given");
    size_t cap = 1;
    for (const char *p = list; *p; p++)
        cap += *p == ',';
    struct sw_dataset_spec *s = calloc(cap, sizeof *s);
    if (!s) return sw_err_set(SW_ENOMEM, "out of memory");
    size_t k = 0;
    int stdin_seen = 0, rc = 0;
    for (const char *p = list; rc == 0;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && isspace((unsigned char)*p))
            p++, len--;
        while (len && isspace((unsigned char)p[len - 1]))
            len--;
        if (len) {
            rc = spec_parse_one(p, len, &s[k]);
            k++;
            if (rc == 0 && strcmp(s[k - 1].path, "-") == 0 && stdin_seen++)
                rc = sw_err_set(SW_EUSAGE, "'-' (stdin) can be given only once");
        }
        if (!comma) break;
        p = comma + 1;
    }
    if (rc == 0 && k == 0) rc = sw_err_set(SW_EUSAGE, "no dataset given");
    if (rc < 0) {
        sw_dataset_specs_free(s, k);
        return rc;
    }
    *specs = s;
    *n = k;
    return 0;
}

void sw_dataset_specs_free(struct sw_dataset_spec *specs, size_t n) {
    if (!specs) return;
    for (size_t i = 0; i < n; i++) {
        free(specs[i].arg);
        free(specs[i].path);
        for (size_t j = 0; j < specs[i].n_files; j++)
            free(specs[i].files[j]);
        free(specs[i].files);
    }
    free(specs);
}

/* ---- the row iterator ---------------------------------------------------------------------- */

struct sw_dataset_iter {
    const struct sw_dataset_spec *specs;
    size_t n_specs;
    struct sw_dataset_opts opts;
    int apply_sample;             /* stop a spec after #N rows (streaming) */
    int defer;                    /* #N specs yield rows as bytes (sw_dataset_load) */
    size_t spec, file;            /* position: next file to open is specs[spec].files[file] */
    struct sw_dataset_reader *rd; /* open reader or NULL */
    uint32_t cur_file;            /* file-table index of rd */
    enum sw_dataset_format fmt;   /* format of the open file (AUTO until its first good row) */
    uint64_t rows_in_file, taken_in_spec;
    const char **table; /* file names in order of opening (borrowed from specs) */
    size_t n_table;
    struct sw_dataset_stats stats;
};

static int iter_open(struct sw_dataset_iter **out, const struct sw_dataset_spec *specs, size_t n,
                     const struct sw_dataset_opts *o, int apply_sample) {
    struct sw_dataset_iter *it = calloc(1, sizeof *it);
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += specs[i].n_files;
    if (!it || !(it->table = calloc(total ? total : 1, sizeof *it->table))) {
        free(it);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < specs[i].n_files; j++)
            it->table[it->n_table++] =
                strcmp(specs[i].files[j], "-") ? specs[i].files[j] : "<stdin>";
    it->specs = specs;
    it->n_specs = n;
    it->opts = *o;
    it->apply_sample = apply_sample;
    *out = it;
    return 0;
}

int sw_dataset_iter_open(struct sw_dataset_iter **it, const struct sw_dataset_spec *specs,
                         size_t n_specs, const struct sw_dataset_opts *o) {
    return iter_open(it, specs, n_specs, o, 1);
}

const char *sw_dataset_iter_file(const struct sw_dataset_iter *it, uint32_t i) {
    return i < it->n_table ? it->table[i] : "?";
}
size_t sw_dataset_iter_n_files(const struct sw_dataset_iter *it) {
    return it->n_table;
}
const struct sw_dataset_stats *sw_dataset_iter_stats(const struct sw_dataset_iter *it) {
    return &it->stats;
}

void sw_dataset_iter_free(struct sw_dataset_iter *it) {
    if (!it) return;
    sw_dataset_reader_free(it->rd);
    free(it->table);
    free(it);
}

static uint32_t table_index(const struct sw_dataset_iter *it) {
    size_t k = 0;
    for (size_t i = 0; i < it->spec; i++)
        k += it->specs[i].n_files;
    return (uint32_t)(k + it->file);
}

/* Count and log one skipped row (the error message is in sw_err_msg()). */
static void bad_row(struct sw_dataset_iter *it) {
    it->stats.rows_bad++;
    if (it->stats.rows_bad <= BAD_ROWS_SHOWN)
        sw_warn("skipping bad row: %s", sw_err_msg());
    else
        sw_debug("skipping bad row: %s", sw_err_msg());
    if (it->stats.rows_bad == BAD_ROWS_SHOWN)
        sw_warn("more bad rows are counted but not shown (-v shows them)");
    sw_err_clear();
}

/* Open the next file, moving to the next spec as needed. Returns 1, 0 when all are done, or error.
 */
static int iter_advance(struct sw_dataset_iter *it) {
    while (it->spec < it->n_specs) {
        const struct sw_dataset_spec *s = &it->specs[it->spec];
        int spec_full =
            it->apply_sample && s->sample >= 0 && it->taken_in_spec >= (uint64_t)s->sample;
        if (it->file >= s->n_files || spec_full) {
            it->spec++;
            it->file = 0;
            it->taken_in_spec = 0;
            continue;
        }
        it->cur_file = table_index(it);
        SW_TRY(sw_dataset_reader_open(&it->rd, s->files[it->file]));
        it->fmt = it->opts.format;
        it->rows_in_file = 0;
        return 1;
    }
    return 0;
}

static void iter_close_file(struct sw_dataset_iter *it) {
    if (it->rows_in_file == 0 && it->rd) sw_warn("%s: no rows", sw_dataset_reader_name(it->rd));
    sw_dataset_reader_free(it->rd);
    it->rd = NULL;
    it->file++;
}

/* A row kept as its bytes until #N sampling has chosen it, so that rows never chosen are never
 * parsed (a bad row beyond the sample does not stop the load, and nothing is converted twice). */
struct raw_row {
    char *text;
    size_t len;
    uint32_t file;
    long line;
    enum sw_dataset_format fmt; /* its file's format */
    int in_array;
};

struct raw_vec {
    struct raw_row *v;
    size_t n, cap;
};

static void raw_vec_release(struct raw_vec *x) {
    for (size_t i = 0; i < x->n; i++)
        free(x->v[i].text);
    free(x->v);
    memset(x, 0, sizeof *x);
}

static int deferred(const struct sw_dataset_iter *it, size_t spec) {
    return it->defer && spec < it->n_specs && it->specs[spec].sample >= 0;
}

/* Detect the open file's format from row (the first row of the file that parses). Returns 0, or
 * SW_EFORMAT naming the keys. */
static int detect_format(struct sw_dataset_iter *it, const json_t *row, const char *where) {
    it->fmt = sw_dataset_detect(row);
    if (it->fmt != SW_DSFMT_AUTO) {
        sw_debug("%s: format '%s'", sw_dataset_reader_name(it->rd),
                 sw_dataset_format_name(it->fmt));
        return 0;
    }
    char keys[256] = "";
    const char *k;
    json_t *v;
    size_t used = 0;
    json_object_foreach((json_t *)row, k, v) {
        int w = snprintf(keys + used, sizeof keys - used, "%s%s", used ? ", " : "", k);
        if (w < 0 || (size_t)w >= sizeof keys - used) break;
        used += (size_t)w;
    }
    (void)v;
    return sw_err_set(SW_EFORMAT,
                      "%s: cannot tell the dataset format from the keys (%s); "
                      "use --dataset_format",
                      where, keys);
}

/* The next row of a deferred (#N) spec as bytes into *raw. Rows are parsed only until their
 * file's format is known. Same return values and bad-row handling as sw_dataset_iter_next. */
static int iter_next_raw(struct sw_dataset_iter *it, struct raw_row *raw) {
    const char *text;
    size_t len;
    long line;
    int rc = sw_dataset_reader_next_raw(it->rd, &text, &len, &line);
    if (rc <= 0) return rc;
    it->stats.rows_read++;
    it->rows_in_file++;
    if (it->fmt == SW_DSFMT_AUTO) {
        char where[512];
        snprintf(where, sizeof where, "%s:%ld", sw_dataset_reader_name(it->rd), line);
        json_t *row = NULL;
        rc = sw_dataset_row_parse(sw_dataset_reader_name(it->rd), line, text, len,
                                  sw_dataset_reader_in_array(it->rd), &row);
        if (rc > 0) rc = detect_format(it, row, where);
        json_decref(row);
        if (rc == SW_EFORMAT && it->opts.skip_bad_rows) {
            bad_row(it);
            return 2; /* nothing kept: read on */
        }
        if (rc < 0) return rc;
    }
    raw->text = malloc(len ? len : 1);
    if (!raw->text) return sw_err_set(SW_ENOMEM, "out of memory");
    memcpy(raw->text, text, len);
    raw->len = len;
    raw->file = it->cur_file;
    raw->line = line;
    raw->fmt = it->fmt;
    raw->in_array = sw_dataset_reader_in_array(it->rd);
    return 1;
}

/* The next row: converted into *ex, or, for a deferred spec (is_raw set), as bytes into *raw. */
static int iter_next(struct sw_dataset_iter *it, struct sw_example *ex, struct raw_row *raw,
                     int *is_raw, size_t *spec_index);

int sw_dataset_iter_next(struct sw_dataset_iter *it, struct sw_example *ex, size_t *spec_index) {
    int is_raw = 0;
    return iter_next(it, ex, NULL, &is_raw, spec_index);
}

static int iter_next(struct sw_dataset_iter *it, struct sw_example *ex, struct raw_row *raw,
                     int *is_raw, size_t *spec_index) {
    sw_conv_init(&ex->conv);
    *is_raw = 0;
    for (;;) {
        if (!it->rd) {
            int rc = iter_advance(it);
            if (rc <= 0) return rc;
        }
        const struct sw_dataset_spec *s = &it->specs[it->spec];
        if (it->apply_sample && s->sample >= 0 && it->taken_in_spec >= (uint64_t)s->sample) {
            sw_dataset_reader_free(it->rd);
            it->rd = NULL;
            it->file = s->n_files;
            continue;
        }
        if (raw && deferred(it, it->spec)) {
            int rc = iter_next_raw(it, raw);
            if (rc == 0) {
                iter_close_file(it);
                continue;
            }
            if (rc == 2) continue;
            if (rc < 0) return rc;
            *is_raw = 1;
            if (spec_index) *spec_index = it->spec;
            return 1;
        }
        json_t *row;
        long line;
        int rc = sw_dataset_reader_next(it->rd, &row, &line);
        if (rc == 0) {
            iter_close_file(it);
            continue;
        }
        if (rc < 0) {
            if (it->opts.skip_bad_rows && sw_dataset_reader_recoverable(it->rd)) {
                it->stats.rows_read++;
                it->rows_in_file++;
                bad_row(it);
                continue;
            }
            return rc;
        }
        it->stats.rows_read++;
        it->rows_in_file++;
        char where[512];
        snprintf(where, sizeof where, "%s:%ld", sw_dataset_reader_name(it->rd), line);
        if (it->fmt == SW_DSFMT_AUTO) rc = detect_format(it, row, where);
        if (rc >= 0) rc = sw_dataset_row_to_conv(row, it->fmt, where, &ex->conv);
        json_decref(row);
        if (rc == SW_EFORMAT && it->opts.skip_bad_rows) {
            bad_row(it);
            continue;
        }
        if (rc < 0) return rc;
        ex->file = it->cur_file;
        ex->line = line;
        it->taken_in_spec++;
        if (spec_index) *spec_index = it->spec;
        return 1;
    }
}

/* ---- whole-dataset loading ----------------------------------------------------------------- */

void sw_examples_free(struct sw_example *ex, size_t n) {
    if (!ex) return;
    for (size_t i = 0; i < n; i++)
        sw_conv_release(&ex[i].conv);
    free(ex);
}

void sw_dataset_release(struct sw_dataset *ds) {
    if (!ds) return;
    sw_examples_free(ds->train, ds->n_train);
    sw_examples_free(ds->val, ds->n_val);
    for (size_t i = 0; i < ds->n_files; i++)
        free(ds->files[i]);
    free(ds->files);
    memset(ds, 0, sizeof *ds);
}

struct ex_vec {
    struct sw_example *v;
    size_t n, cap;
};

static int vec_push(struct ex_vec *x, const struct sw_example *e) {
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 1024;
        struct sw_example *p = realloc(x->v, cap * sizeof *p);
        if (!p) return sw_err_set(SW_ENOMEM, "out of memory");
        x->v = p;
        x->cap = cap;
    }
    x->v[x->n++] = *e;
    return 0;
}

/* Move src[idx[k]] into out in order; an index seen again is deep-copied. Sources never taken are
 * released; src itself is freed. */
static int take_indices(struct sw_example *src, size_t n_src, const uint64_t *idx, size_t n_idx,
                        struct ex_vec *out) {
    unsigned char *used = calloc(n_src ? n_src : 1, 1);
    int rc = used ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
    for (size_t k = 0; rc == 0 && k < n_idx; k++) {
        uint64_t i = idx[k];
        if (!used[i]) {
            used[i] = 1;
            rc = vec_push(out, &src[i]);
            if (rc < 0) used[i] = 0;
        } else {
            struct sw_example e = src[i];
            rc = sw_conv_copy(&e.conv, &src[i].conv);
            if (rc == 0 && (rc = vec_push(out, &e)) < 0) sw_conv_release(&e.conv);
        }
    }
    for (size_t i = 0; i < n_src; i++)
        if (!used || !used[i]) sw_conv_release(&src[i].conv);
    free(used);
    free(src);
    return rc;
}

/* ms-swift's sample_dataset: n below len -> a random subset (or the first n); above -> the whole
 * dataset n / len times, then n % len random rows. Writes n indices into a new *idx. */
static int sample_indices(size_t len, uint64_t n, int shuffle, struct sw_rng *rng, uint64_t **idx) {
    uint64_t *v = malloc((n ? n : 1) * sizeof *v);
    uint64_t *perm = malloc((len ? len : 1) * sizeof *perm);
    if (!v || !perm) {
        free(v);
        free(perm);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    uint64_t reps = len ? n / len : 0, rem = len ? n % len : 0, k = 0;
    for (uint64_t r = 0; r < reps; r++)
        for (size_t i = 0; i < len; i++)
            v[k++] = i;
    for (size_t i = 0; i < len; i++)
        perm[i] = i;
    if (rem && shuffle) sw_rng_shuffle_u64(rng, perm, len);
    for (uint64_t i = 0; i < rem; i++)
        v[k++] = perm[i];
    free(perm);
    *idx = v;
    return 0;
}

/* The rows of one spec that go to validation and to training, as indices into its len rows, in
 * ms-swift's order: the validation split first (split_ratio > 0: max(1, floor(min(len, N) *
 * ratio)) rows, the first of a permutation when shuffle, else the last ones; *val in file
 * order), then #N sampling of the rest (sample_indices; repeats when N is above it). *n_train is
 * N minus the validation rows. Consumes rng exactly as the selection always has. */
static int select_indices(const struct sw_dataset_spec *s, size_t len,
                          const struct sw_dataset_opts *o, struct sw_rng *rng, uint64_t **val,
                          uint64_t *n_val_out, uint64_t **train, uint64_t *n_train_out) {
    *val = *train = NULL;
    *n_val_out = *n_train_out = 0;
    uint64_t n = s->sample >= 0 ? (uint64_t)s->sample : len;
    if (len == 0) return sw_err_set(SW_EFORMAT, "dataset '%s': no rows", s->arg);
    if (len < n)
        sw_info("dataset '%s': %llu rows sampled from %zu: repeating it %llu times and "
                "adding %llu random rows",
                s->arg, (unsigned long long)n, len, (unsigned long long)(n / len),
                (unsigned long long)(n % len));
    uint64_t n_val = 0;
    if (o->split_ratio > 0) {
        uint64_t base = len < n ? len : n;
        n_val = (uint64_t)((double)base * o->split_ratio);
        if (n_val < 1) n_val = 1;
        if (n_val >= n || n_val >= len)
            return sw_err_set(SW_EUSAGE,
                              "dataset '%s': split_dataset_ratio %g leaves no training rows",
                              s->arg, o->split_ratio);
    }
    /* train_test_split: shuffled -> the first n_val of a permutation are validation; else the last.
     */
    uint64_t *perm = malloc(len * sizeof *perm);
    uint64_t *v = malloc((n_val ? n_val : 1) * sizeof *v);
    if (!perm || !v) {
        free(perm), free(v);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < len; i++)
        perm[i] = i;
    const uint64_t *tidx = perm;
    size_t n_rest = len;
    if (n_val) {
        if (o->shuffle) sw_rng_shuffle_u64(rng, perm, len);
        const uint64_t *vidx = o->shuffle ? perm : perm + (len - n_val);
        tidx = o->shuffle ? perm + n_val : perm;
        n_rest = len - n_val;
        /* Validation rows keep file order. */
        unsigned char *is_val = calloc(len, 1);
        if (!is_val) {
            free(perm), free(v);
            return sw_err_set(SW_ENOMEM, "out of memory");
        }
        for (uint64_t i = 0; i < n_val; i++)
            is_val[vidx[i]] = 1;
        uint64_t k = 0;
        for (size_t i = 0; i < len; i++)
            if (is_val[i]) v[k++] = i;
        free(is_val);
        n -= n_val;
    }
    /* #N over the training part, in split order (as train_test_split returns it). */
    uint64_t *idx = NULL;
    int rc = sample_indices(n_rest, n, o->shuffle, rng, &idx);
    if (rc == 0)
        for (uint64_t k = 0; k < n; k++)
            idx[k] = tidx[idx[k]];
    free(perm);
    if (rc < 0) {
        free(v);
        return rc;
    }
    *val = v, *n_val_out = n_val;
    *train = idx, *n_train_out = n;
    return 0;
}

/* Split and sample one spec's converted rows (all in `rows`) into train and val. */
static int spec_select(const struct sw_dataset_spec *s, struct ex_vec *rows,
                       const struct sw_dataset_opts *o, struct sw_rng *rng, struct ex_vec *train,
                       struct ex_vec *val, struct sw_dataset_stats *st) {
    size_t len = rows->n;
    struct sw_example *src = rows->v;
    rows->v = NULL;
    rows->n = rows->cap = 0;
    uint64_t *vi, *ti, nv, nt;
    int rc = select_indices(s, len, o, rng, &vi, &nv, &ti, &nt);
    if (rc < 0) {
        sw_examples_free(src, len);
        return rc;
    }
    /* Validation rows are moved out (they are never repeated); take_indices moves the training
     * rows, deep-copies repeats and releases the rest. */
    for (uint64_t k = 0; k < nv && rc == 0; k++) {
        rc = vec_push(val, &src[vi[k]]);
        if (rc == 0) sw_conv_init(&src[vi[k]].conv);
    }
    if (rc == 0) {
        rc = take_indices(src, len, ti, nt, train);
    } else {
        sw_examples_free(src, len);
    }
    free(vi), free(ti);
    st->rows_sampled += nt + nv;
    st->rows_repeated += nt + nv > len ? nt + nv - len : 0;
    return rc;
}

/* Parse and convert one deferred row. */
static int raw_convert(struct sw_dataset_iter *it, const struct raw_row *r, struct sw_example *ex) {
    const char *name = sw_dataset_iter_file(it, r->file);
    char where[512];
    snprintf(where, sizeof where, "%s:%ld", name, r->line);
    json_t *row = NULL;
    int rc = sw_dataset_row_parse(name, r->line, r->text, r->len, r->in_array, &row);
    if (rc > 0) rc = sw_dataset_row_to_conv(row, r->fmt, where, &ex->conv);
    json_decref(row);
    if (rc < 0) return rc;
    ex->file = r->file;
    ex->line = r->line;
    return 0;
}

/* Split and sample one #N spec's rows, still bytes, and convert only the rows chosen: a row
 * chosen twice (N above the row count) is converted twice; a bad one is an error, or with
 * skip_bad_rows counted (once per time it was chosen) and left out. */
static int spec_select_raw(struct sw_dataset_iter *it, const struct sw_dataset_spec *s,
                           struct raw_vec *rows, const struct sw_dataset_opts *o,
                           struct sw_rng *rng, struct ex_vec *train, struct ex_vec *val,
                           struct sw_dataset_stats *st) {
    size_t len = rows->n;
    uint64_t *vi, *ti, nv, nt;
    int rc = select_indices(s, len, o, rng, &vi, &nv, &ti, &nt);
    unsigned char *chosen = rc == 0 ? calloc(len ? len : 1, 1) : NULL;
    if (rc == 0 && !chosen) rc = sw_err_set(SW_ENOMEM, "out of memory");
    uint64_t unique = 0;
    for (uint64_t k = 0; rc == 0 && k < nv + nt; k++) {
        uint64_t i = k < nv ? vi[k] : ti[k - nv];
        struct sw_example ex;
        sw_conv_init(&ex.conv);
        unique += !chosen[i];
        chosen[i] = 1;
        rc = raw_convert(it, &rows->v[i], &ex);
        if (rc == SW_EFORMAT && o->skip_bad_rows) {
            bad_row(it);
            rc = 0;
            continue;
        }
        if (rc == 0 && (rc = vec_push(k < nv ? val : train, &ex)) < 0) sw_conv_release(&ex.conv);
    }
    if (rc == 0) {
        st->rows_sampled += nt + nv;
        st->rows_repeated += nt + nv - unique;
        st->rows_unsampled += len - unique;
    }
    free(chosen), free(vi), free(ti);
    raw_vec_release(rows);
    return rc;
}

int sw_dataset_load(struct sw_dataset *ds, const struct sw_dataset_spec *specs, size_t n_specs,
                    const struct sw_dataset_opts *o) {
    memset(ds, 0, sizeof *ds);
    struct sw_rng rng;
    sw_rng_init(&rng, o->seed, SW_RNG_STREAM_SHUFFLE);
    struct ex_vec train = {0}, val = {0}, rows = {0};
    struct raw_vec raws = {0};
    struct sw_dataset_iter *it = NULL;
    int rc = iter_open(&it, specs, n_specs, o, 0);
    if (rc < 0) return rc;
    it->defer = 1;
    size_t cur = 0;
    for (;;) {
        struct sw_example ex;
        struct raw_row raw;
        size_t si = 0;
        int is_raw = 0;
        int got = iter_next(it, &ex, &raw, &is_raw, &si);
        if (got < 0) {
            rc = got;
            break;
        }
        /* Rows arrive spec by spec: every spec before si (all of them at the end) is complete. */
        size_t upto = got ? si : n_specs;
        while (rc == 0 && cur < upto) {
            rc = deferred(it, cur)
                     ? spec_select_raw(it, &specs[cur], &raws, o, &rng, &train, &val, &ds->stats)
                     : spec_select(&specs[cur], &rows, o, &rng, &train, &val, &ds->stats);
            cur++;
        }
        if (rc < 0) {
            if (got && is_raw)
                free(raw.text);
            else if (got)
                sw_conv_release(&ex.conv);
            break;
        }
        if (!got) break;
        if (is_raw) {
            if (raws.n == raws.cap) {
                size_t cap = raws.cap ? raws.cap * 2 : 1024;
                struct raw_row *v = realloc(raws.v, cap * sizeof *v);
                if (!v) {
                    free(raw.text);
                    rc = sw_err_set(SW_ENOMEM, "out of memory");
                    break;
                }
                raws.v = v, raws.cap = cap;
            }
            raws.v[raws.n++] = raw;
        } else if ((rc = vec_push(&rows, &ex)) < 0) {
            sw_conv_release(&ex.conv);
            break;
        }
    }
    raw_vec_release(&raws);
    ds->stats.rows_read = it->stats.rows_read;
    ds->stats.rows_bad = it->stats.rows_bad;
    if (rc == 0) {
        ds->n_files = sw_dataset_iter_n_files(it);
        ds->files = calloc(ds->n_files ? ds->n_files : 1, sizeof *ds->files);
        if (!ds->files) rc = sw_err_set(SW_ENOMEM, "out of memory");
        for (size_t i = 0; rc == 0 && i < ds->n_files; i++)
            if (!(ds->files[i] = strdup(sw_dataset_iter_file(it, (uint32_t)i))))
                rc = sw_err_set(SW_ENOMEM, "out of memory");
    }
    sw_dataset_iter_free(it);
    sw_examples_free(rows.v, rows.n);
    ds->train = train.v, ds->n_train = train.n;
    ds->val = val.v, ds->n_val = val.n;
    if (rc < 0) {
        sw_dataset_release(ds);
        return rc;
    }
    if (o->shuffle && ds->n_train > 1) {
        uint64_t *perm = malloc(ds->n_train * sizeof *perm);
        struct sw_example *sh = malloc(ds->n_train * sizeof *sh);
        if (!perm || !sh) {
            free(perm), free(sh);
            sw_dataset_release(ds);
            return sw_err_set(SW_ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < ds->n_train; i++)
            perm[i] = i;
        sw_rng_shuffle_u64(&rng, perm, ds->n_train);
        for (size_t i = 0; i < ds->n_train; i++)
            sh[i] = ds->train[perm[i]];
        free(ds->train);
        ds->train = sh;
        free(perm);
    }
    ds->stats.rows_train = ds->n_train;
    ds->stats.rows_val = ds->n_val;
    return 0;
}
