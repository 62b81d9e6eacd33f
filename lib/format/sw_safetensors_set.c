/* sw_safetensors_set — several safetensors files read as one model: a single file, a sharded
 * index (model.safetensors.index.json, as transformers writes it), or a folder holding either
 * (the index wins when both exist, as in transformers).
 *
 * The index is untrusted too: "weight_map" must map names to shard file names inside the
 * index's folder (no absolute paths, no ".." components), every shard is opened and validated,
 * a tensor listed in the index must be in its named shard, and every tensor of a shard must be
 * listed for that shard — a name in two shards, or a shard holding tensors the index does not
 * route to it, is SW_EFORMAT: loaders would otherwise disagree about which copy is the weight. */
#include "sw_safetensors.h"

#include "sw_err.h"
#include "sw_io.h"

#include <jansson.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ST_INDEX_MAX (64u << 20) /* index files are a few hundred KB even for 400B models */

struct sw_st_set {
    struct sw_st_file **files;
    int nfiles;
    const struct sw_st_entry **all;    /* shard order, then data offset */
    const struct sw_st_entry **byname; /* sorted by name */
    int n;
};

/* Whether p is an existing regular file (no error message is set either way). */
static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int cmp_entry_name(const void *a, const void *b) {
    const struct sw_st_entry *x = *(const struct sw_st_entry *const *)a;
    const struct sw_st_entry *y = *(const struct sw_st_entry *const *)b;
    return strcmp(x->name, y->name);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int ends_with(const char *s, const char *suffix) {
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

void sw_st_set_close(struct sw_st_set *s) {
    if (!s) return;
    for (int i = 0; i < s->nfiles; i++)
        sw_st_close(s->files[i]);
    free(s->files);
    free(s->all);
    free(s->byname);
    free(s);
}

/* Build the merged views once every file is open; a name in two files is an error. */
static int set_finish(struct sw_st_set *s, const char *what) {
    int n = 0;
    for (int i = 0; i < s->nfiles; i++)
        n += sw_st_count(s->files[i]);
    s->all = malloc(((size_t)n + 1) * sizeof *s->all);
    s->byname = malloc(((size_t)n + 1) * sizeof *s->byname);
    if (!s->all || !s->byname) return sw_err_set(SW_ENOMEM, "%s: out of memory", what);
    s->n = 0;
    for (int i = 0; i < s->nfiles; i++)
        for (int j = 0; j < sw_st_count(s->files[i]); j++)
            s->all[s->n++] = sw_st_get(s->files[i], j);
    memcpy(s->byname, s->all, (size_t)n * sizeof *s->all);
    qsort(s->byname, (size_t)n, sizeof *s->byname, cmp_entry_name);
    for (int i = 1; i < n; i++) {
        if (strcmp(s->byname[i - 1]->name, s->byname[i]->name) == 0) {
            const char *fa = NULL, *fb = NULL;
            for (int f = 0; f < s->nfiles; f++) {
                const struct sw_st_entry *e = sw_st_find(s->files[f], s->byname[i]->name);
                if (e && !fa)
                    fa = sw_st_path(s->files[f]);
                else if (e && !fb)
                    fb = sw_st_path(s->files[f]);
            }
            return sw_err_set(SW_EFORMAT, "%s: tensor '%s' is in both '%s' and '%s'", what,
                              s->byname[i]->name, fa ? fa : "?", fb ? fb : "?");
        }
    }
    return 0;
}

static int set_new(int nfiles, struct sw_st_set **out) {
    struct sw_st_set *s = calloc(1, sizeof *s);
    if (s) s->files = calloc((size_t)nfiles + 1, sizeof *s->files);
    if (!s || !s->files) {
        free(s);
        return sw_err_set(SW_ENOMEM, "safetensors set: out of memory");
    }
    *out = s;
    return 0;
}

static int open_single(const char *path, struct sw_st_set **out) {
    struct sw_st_set *s;
    SW_TRY(set_new(1, &s));
    int rc = sw_st_open(path, &s->files[0]);
    if (rc == 0) {
        s->nfiles = 1;
        rc = set_finish(s, path);
    }
    if (rc < 0) {
        sw_st_set_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* A shard name from the index: relative, no "..", not empty. */
static int shard_name_ok(const char *name) {
    if (!name[0] || name[0] == '/') return 0;
    const char *p = name;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || (len == 2 && p[0] == '.' && p[1] == '.')) return 0;
        if (!slash) break;
        p = slash + 1;
    }
    return !ends_with(name, "/");
}

static int open_index(const char *path, struct sw_st_set **out) {
    char *text = NULL;
    size_t len = 0;
    SW_TRY(sw_read_file(path, &text, &len, ST_INDEX_MAX));
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!root) return sw_err_set(SW_EFORMAT, "%s:%d: %s", path, jerr.line, jerr.text);
    struct sw_st_set *s = NULL;
    char **names = NULL;
    char *dircopy = strdup(path);
    int rc = 0, nnames = 0;
    json_t *map = json_object_get(root, "weight_map");
    if (!dircopy) {
        rc = sw_err_set(SW_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    if (!json_is_object(root) || !json_is_object(map)) {
        rc =
            sw_err_set(SW_EFORMAT, "%s: no \"weight_map\" object (not a safetensors index?)", path);
        goto out;
    }
    /* Unique shard names, sorted: "model-00001-of-00003..." sorts in shard order. */
    size_t nmap = json_object_size(map);
    names = calloc(nmap + 1, sizeof *names);
    if (!names) {
        rc = sw_err_set(SW_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(map, key, v) {
        if (!json_is_string(v)) {
            rc = sw_err_set(SW_EFORMAT, "%s: weight_map '%s' is not a file name string", path, key);
            goto out;
        }
        const char *fn = json_string_value(v);
        if (!shard_name_ok(fn)) {
            rc = sw_err_set(
                SW_EFORMAT,
                "%s: weight_map '%s': shard '%s' is not a file name inside the index's folder",
                path, key, fn);
            goto out;
        }
        int seen = 0;
        for (int i = 0; i < nnames && !seen; i++)
            seen = strcmp(names[i], fn) == 0;
        if (!seen) names[nnames++] = (char *)fn; /* borrowed from root */
    }
    qsort(names, (size_t)nnames, sizeof *names, cmp_str);
    SW_TRY_GOTO(rc, set_new(nnames, &s), out);
    const char *dir = dirname(dircopy);
    for (int i = 0; i < nnames; i++) {
        char *sp = sw_path_join(dir, names[i]);
        if (!sp) {
            rc = sw_err_set(SW_ENOMEM, "%s: out of memory", path);
            goto out;
        }
        rc = sw_st_open(sp, &s->files[i]);
        free(sp);
        if (rc < 0) {
            sw_err_wrap(rc, "%s", path);
            goto out;
        }
        s->nfiles++;
    }
    /* Every index entry must be in its shard, and every shard tensor routed to that shard. */
    json_object_foreach(map, key, v) {
        const char *fn = json_string_value(v);
        int fi = 0;
        while (fi < nnames && strcmp(names[fi], fn) != 0)
            fi++;
        if (!sw_st_find(s->files[fi], key)) {
            rc = sw_err_set(SW_EFORMAT, "%s: tensor '%s' is listed in shard '%s' but is not in it",
                            path, key, fn);
            goto out;
        }
    }
    for (int fi = 0; fi < nnames; fi++) {
        for (int j = 0; j < sw_st_count(s->files[fi]); j++) {
            const char *tn = sw_st_get(s->files[fi], j)->name;
            const json_t *m = json_object_get(map, tn);
            if (!m || strcmp(json_string_value(m), names[fi]) != 0) {
                rc = sw_err_set(
                    SW_EFORMAT, "%s: shard '%s' holds tensor '%s' %s", path, names[fi], tn,
                    m ? "that the index assigns to another shard" : "that the index does not list");
                goto out;
            }
        }
    }
    rc = set_finish(s, path);
out:
    free(names);
    free(dircopy);
    json_decref(root);
    if (rc < 0) {
        sw_st_set_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

int sw_st_set_open(const char *path, struct sw_st_set **out) {
    *out = NULL;
    int isdir = sw_path_is_dir(path);
    if (isdir < 0) return isdir;
    if (!isdir) return ends_with(path, ".json") ? open_index(path, out) : open_single(path, out);
    static const char *const candidates[] = {"model.safetensors.index.json", "model.safetensors"};
    for (int i = 0; i < 2; i++) {
        char *p = sw_path_join(path, candidates[i]);
        if (!p) return sw_err_set(SW_ENOMEM, "%s: out of memory", path);
        int found = is_file(p);
        int rc = 0;
        if (found) rc = i == 0 ? open_index(p, out) : open_single(p, out);
        free(p);
        if (found) return rc;
    }
    return sw_err_set(SW_ENOTFOUND,
                      "%s: no model.safetensors or model.safetensors.index.json in this folder",
                      path);
}

int sw_st_set_count(const struct sw_st_set *s) {
    return s ? s->n : 0;
}

const struct sw_st_entry *sw_st_set_get(const struct sw_st_set *s, int i) {
    return s && i >= 0 && i < s->n ? s->all[i] : NULL;
}

const struct sw_st_entry *sw_st_set_find(const struct sw_st_set *s, const char *name) {
    if (!s || !name) return NULL;
    int lo = 0, hi = s->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(s->byname[mid]->name, name);
        if (c == 0) return s->byname[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

int sw_st_set_nfiles(const struct sw_st_set *s) {
    return s ? s->nfiles : 0;
}

const struct sw_st_file *sw_st_set_file(const struct sw_st_set *s, int i) {
    return s && i >= 0 && i < s->nfiles ? s->files[i] : NULL;
}
