/* sw_hub_list — repo listings: the JSON of HF's revision and tree APIs, of ModelScope's file
 * APIs and of huggingface_hub's on-disk tree cache, parsed into one list of files with the ids
 * that verify them (sha256 for LFS, git blob sha1 for plain files, sizes), plus the checks that
 * make a listing safe to write to disk and the tree cache sw-fetch leaves for huggingface_hub.
 *
 * All of it reads bytes a server sent: sizes must be non-negative integers, ids lowercase hex of
 * the right length, strings free of NUL (jansson refuses \u0000 by default), and the file names
 * pass sw_hub_path_check before anything is created from them. */
#include "sw_hub_impl.h"

#include "sw_err.h"
#include "sw_strmap.h"

#include <ctype.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sw_hub_file_release(struct sw_hub_file *f) {
    if (!f) return;
    free(f->path);
    free(f->etag);
    free(f->pointer_oid);
    free(f->local);
    memset(f, 0, sizeof *f);
}

void sw_hub_listing_release(struct sw_hub_listing *l) {
    if (!l) return;
    for (size_t i = 0; i < l->n; i++)
        sw_hub_file_release(&l->files[i]);
    free(l->files);
    free(l->commit);
    memset(l, 0, sizeof *l);
}

int sw_hub_listing_add(struct sw_hub_listing *l, const char *path, size_t path_len,
                       struct sw_hub_file **out) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct sw_hub_file *f = realloc(l->files, cap * sizeof *f);
        if (!f) return sw_err_set(SW_ENOMEM, "out of memory");
        l->files = f;
        l->cap = cap;
    }
    struct sw_hub_file *f = &l->files[l->n];
    memset(f, 0, sizeof *f);
    f->size = -1;
    f->path = malloc(path_len + 1);
    if (!f->path) return sw_err_set(SW_ENOMEM, "out of memory");
    memcpy(f->path, path, path_len);
    f->path[path_len] = '\0';
    l->n++;
    *out = f;
    return 0;
}

static int is_hex(const char *s, size_t n) {
    if (strlen(s) != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f')) return 0;
    return 1;
}

static json_t *load(const char *json, size_t len, const char *name, int *rc) {
    json_error_t e;
    json_t *root = json_loadb(json, len, 0, &e);
    if (!root)
        *rc = sw_err_set(SW_EFORMAT, "%s: not valid JSON (line %d: %s)", name, e.line, e.text);
    return root;
}

/* An optional non-negative integer member; -1 when absent; SW_EFORMAT when of the wrong kind. */
static int get_size(json_t *obj, const char *key, const char *name, const char *path,
                    int64_t *out) {
    json_t *v = json_object_get(obj, key);
    *out = -1;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return sw_err_set(SW_EFORMAT, "%s: file '%.200s': '%s' is not a non-negative integer", name,
                          path, key);
    *out = json_integer_value(v);
    return 0;
}

/* An optional hex id of n characters (lowercased); "" when absent. */
static int get_hex(json_t *obj, const char *key, size_t n, const char *name, const char *path,
                   char *out) {
    json_t *v = json_object_get(obj, key);
    out[0] = '\0';
    if (!v || json_is_null(v)) return 0;
    const char *s = json_string_value(v);
    char low[80];
    if (s && strlen(s) == n && n < sizeof low) {
        for (size_t i = 0; i <= n; i++)
            low[i] = (char)tolower((unsigned char)s[i]);
        if (is_hex(low, n)) {
            memcpy(out, low, n + 1);
            return 0;
        }
    }
    return sw_err_set(SW_EFORMAT, "%s: file '%.200s': '%s' is not %zu hex digits", name, path, key,
                      n);
}

static int set_etag(struct sw_hub_file *f, const char *etag) {
    if (!etag || !*etag) return 0;
    f->etag = strdup(etag);
    return f->etag ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
}

/* Fill f from an LFS object ({"sha256"|"oid", "size"}) or the plain-file ids. */
static int fill_file(struct sw_hub_file *f, json_t *lfs, const char *sha_key, const char *oid,
                     int64_t size, const char *name) {
    if (lfs && json_is_object(lfs)) {
        int64_t lsize;
        SW_TRY(get_hex(lfs, sha_key, 64, name, f->path, f->sha256));
        SW_TRY(get_size(lfs, "size", name, f->path, &lsize));
        if (!f->sha256[0])
            return sw_err_set(SW_EFORMAT, "%s: file '%.200s': LFS entry without its sha256", name,
                              f->path);
        f->lfs = 1;
        f->size = lsize >= 0 ? lsize : size;
        if (oid[0] && !(f->pointer_oid = strdup(oid)))
            return sw_err_set(SW_ENOMEM, "out of memory");
        return set_etag(f, f->sha256);
    }
    if (lfs && !json_is_null(lfs))
        return sw_err_set(SW_EFORMAT, "%s: file '%.200s': 'lfs' is not an object", name, f->path);
    f->size = size;
    memcpy(f->oid, oid, strlen(oid) + 1);
    return set_etag(f, oid);
}

static void update_meta(struct sw_hub_listing *l) {
    l->complete_meta = 1;
    for (size_t i = 0; i < l->n; i++)
        if (l->files[i].size < 0 || !l->files[i].etag) l->complete_meta = 0;
}

int sw_hub_parse_hf_revision(const char *json, size_t len, const char *name,
                             struct sw_hub_listing *out) {
    int rc = 0;
    json_t *root = load(json, len, name, &rc);
    if (!root) return rc;
    json_t *sha = json_object_get(root, "sha"), *sib = json_object_get(root, "siblings");
    if (!json_is_object(root) || !json_is_string(sha) || !is_hex(json_string_value(sha), 40)) {
        json_decref(root);
        return sw_err_set(SW_EFORMAT, "%s: no 40-hex 'sha' (commit) in the hub's answer", name);
    }
    if (!json_is_array(sib)) {
        json_decref(root);
        return sw_err_set(SW_EFORMAT, "%s: no 'siblings' list in the hub's answer", name);
    }
    free(out->commit);
    if (!(out->commit = strdup(json_string_value(sha))))
        rc = sw_err_set(SW_ENOMEM, "out of memory");
    size_t i;
    json_t *s;
    json_array_foreach(sib, i, s) {
        if (rc < 0) break;
        json_t *fn = json_object_get(s, "rfilename");
        if (!json_is_object(s) || !json_is_string(fn)) {
            rc = sw_err_set(SW_EFORMAT, "%s: siblings[%zu] has no 'rfilename' string", name, i);
            break;
        }
        struct sw_hub_file *f;
        if ((rc = sw_hub_listing_add(out, json_string_value(fn), json_string_length(fn), &f)) < 0)
            break;
        int64_t size;
        char oid[41];
        if ((rc = get_size(s, "size", name, f->path, &size)) < 0) break;
        if ((rc = get_hex(s, "blobId", 40, name, f->path, oid)) < 0) break;
        rc = fill_file(f, json_object_get(s, "lfs"), "sha256", oid, size, name);
    }
    json_decref(root);
    if (rc == 0) update_meta(out);
    return rc;
}

int sw_hub_parse_hf_tree(const char *json, size_t len, const char *name,
                         struct sw_hub_listing *out) {
    int rc = 0;
    json_t *root = load(json, len, name, &rc);
    if (!root) return rc;
    if (!json_is_array(root)) {
        json_decref(root);
        return sw_err_set(SW_EFORMAT, "%s: the tree listing is not a JSON list", name);
    }
    size_t i;
    json_t *e;
    json_array_foreach(root, i, e) {
        json_t *type = json_object_get(e, "type"), *path = json_object_get(e, "path");
        if (!json_is_object(e) || !json_is_string(type) || !json_is_string(path)) {
            rc = sw_err_set(SW_EFORMAT, "%s: entry %zu lacks 'type' or 'path'", name, i);
            break;
        }
        if (strcmp(json_string_value(type), "file") != 0) continue; /* folders */
        struct sw_hub_file *f;
        if ((rc = sw_hub_listing_add(out, json_string_value(path), json_string_length(path), &f)) <
            0)
            break;
        int64_t size;
        char oid[41];
        if ((rc = get_size(e, "size", name, f->path, &size)) < 0) break;
        if ((rc = get_hex(e, "oid", 40, name, f->path, oid)) < 0) break;
        if ((rc = fill_file(f, json_object_get(e, "lfs"), "oid", oid, size, name)) < 0) break;
    }
    json_decref(root);
    if (rc == 0) update_meta(out);
    return rc;
}

/* ModelScope envelopes: {"Code": 200, "Data": ..., "Message": ...}. */
static int ms_data(json_t *root, const char *name, json_t **data) {
    json_t *code = json_object_get(root, "Code");
    if (!json_is_object(root) || !json_is_integer(code))
        return sw_err_set(SW_EFORMAT, "%s: no 'Code' in the hub's answer", name);
    if (json_integer_value(code) != 200) {
        const char *m = json_string_value(json_object_get(root, "Message"));
        return sw_err_set(SW_EIO, "%s: the hub answered Code %lld%s%.300s", name,
                          (long long)json_integer_value(code), m ? ": " : "", m ? m : "");
    }
    *data = json_object_get(root, "Data");
    if (!json_is_object(*data))
        return sw_err_set(SW_EFORMAT, "%s: no 'Data' object in the hub's answer", name);
    return 0;
}

int sw_hub_parse_ms_files(const char *json, size_t len, const char *name,
                          struct sw_hub_listing *out, size_t *count) {
    int rc = 0;
    *count = 0;
    json_t *root = load(json, len, name, &rc), *data;
    if (!root) return rc;
    if ((rc = ms_data(root, name, &data)) < 0) {
        json_decref(root);
        return rc;
    }
    json_t *files = json_object_get(data, "Files");
    if (json_is_null(files) || !files) { /* an empty repo or page */
        json_decref(root);
        update_meta(out);
        return 0;
    }
    if (!json_is_array(files)) {
        json_decref(root);
        return sw_err_set(SW_EFORMAT, "%s: 'Data.Files' is not a list", name);
    }
    *count = json_array_size(files);
    size_t i;
    json_t *e;
    json_array_foreach(files, i, e) {
        json_t *type = json_object_get(e, "Type"), *path = json_object_get(e, "Path");
        if (!json_is_object(e) || !json_is_string(type) || !json_is_string(path)) {
            rc = sw_err_set(SW_EFORMAT, "%s: Files[%zu] lacks 'Type' or 'Path'", name, i);
            break;
        }
        if (strcmp(json_string_value(type), "tree") == 0) continue;
        struct sw_hub_file *f;
        if ((rc = sw_hub_listing_add(out, json_string_value(path), json_string_length(path), &f)) <
            0)
            break;
        if ((rc = get_size(e, "Size", name, f->path, &f->size)) < 0) break;
        json_t *sha = json_object_get(e, "Sha256");
        if (json_is_string(sha) && json_string_length(sha) == 0) sha = NULL; /* unpublished */
        if (sha) {
            json_t *tmp = json_pack("{sO}", "Sha256", sha);
            rc = tmp ? get_hex(tmp, "Sha256", 64, name, f->path, f->sha256)
                     : sw_err_set(SW_ENOMEM, "out of memory");
            json_decref(tmp);
            if (rc < 0) break;
        }
        f->lfs = json_is_true(json_object_get(e, "IsLFS"));
        if ((rc = set_etag(f, f->sha256)) < 0) break;
    }
    json_decref(root);
    /* ModelScope verifies every file by sha256 where it publishes one; the blob is named by it. */
    if (rc == 0) update_meta(out);
    return rc;
}

int sw_hub_parse_ms_dataset_id(const char *json, size_t len, const char *name, int64_t *id) {
    int rc = 0;
    json_t *root = load(json, len, name, &rc), *data;
    if (!root) return rc;
    if ((rc = ms_data(root, name, &data)) == 0) {
        json_t *v = json_object_get(data, "Id");
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            rc = sw_err_set(SW_EFORMAT, "%s: no numeric 'Data.Id' for the dataset", name);
        else
            *id = json_integer_value(v);
    }
    json_decref(root);
    return rc;
}

int sw_hub_listing_check(const struct sw_hub_listing *l, const char *name) {
    struct sw_strmap *m = sw_strmap_new(l->n * 2);
    if (!m) return SW_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < l->n && rc == 0; i++) {
        const struct sw_hub_file *f = &l->files[i];
        if ((rc = sw_hub_path_check(f->path)) < 0) break;
        if (f->etag && (rc = sw_hub_etag_check(f->etag)) < 0) break;
        if (sw_strmap_get(m, f->path, strlen(f->path), NULL)) {
            rc = sw_err_set(SW_EFORMAT, "%s: file '%.200s' is listed twice", name, f->path);
            break;
        }
        rc = sw_strmap_put(m, f->path, strlen(f->path), 0);
    }
    /* A name that is also a folder of another name cannot exist on disk. */
    for (size_t i = 0; i < l->n && rc == 0; i++) {
        const char *p = l->files[i].path;
        for (const char *s = strchr(p, '/'); s; s = strchr(s + 1, '/')) {
            if (sw_strmap_get(m, p, (size_t)(s - p), NULL)) {
                char part[300];
                snprintf(part, sizeof part, "%.*s", (int)(s - p) < 299 ? (int)(s - p) : 299, p);
                rc = sw_err_set(SW_EFORMAT, "%s: '%s' is both a file and the folder of '%.200s'",
                                name, part, p);
                break;
            }
        }
    }
    sw_strmap_free(m);
    return rc;
}

static int cmp_path(const void *a, const void *b) {
    return strcmp((*(struct sw_hub_file *const *)a)->path, (*(struct sw_hub_file *const *)b)->path);
}

int sw_hub_listing_content_id(struct sw_hub_listing *l, char out[41]) {
    struct sw_hub_file **v = malloc((l->n ? l->n : 1) * sizeof *v);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!v || !ctx) {
        free(v);
        EVP_MD_CTX_free(ctx);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < l->n; i++)
        v[i] = &l->files[i];
    qsort(v, l->n, sizeof *v, cmp_path);
    EVP_DigestInit_ex(ctx, EVP_sha1(), NULL);
    for (size_t i = 0; i < l->n; i++) {
        char line[96];
        int k = v[i]->sha256[0] ? snprintf(line, sizeof line, "%s\n", v[i]->sha256)
                                : snprintf(line, sizeof line, "size %lld\n", (long long)v[i]->size);
        EVP_DigestUpdate(ctx, v[i]->path, strlen(v[i]->path) + 1); /* with its NUL separator */
        EVP_DigestUpdate(ctx, line, (size_t)k);
    }
    unsigned char d[20];
    unsigned int dn = 0;
    EVP_DigestFinal_ex(ctx, d, &dn);
    EVP_MD_CTX_free(ctx);
    free(v);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 20; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[40] = '\0';
    return 0;
}

int sw_hub_tree_cache_json(const struct sw_hub_listing *l, char **json) {
    json_t *files = json_object(), *root = json_object();
    struct sw_hub_file **v = malloc((l->n ? l->n : 1) * sizeof *v);
    int rc = files && root && v ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
    if (rc == 0) {
        json_object_set_new(root, "format_version", json_integer(1));
        json_object_set(root, "files", files);
        for (size_t i = 0; i < l->n; i++)
            v[i] = &l->files[i];
        qsort(v, l->n, sizeof *v, cmp_path); /* huggingface_hub writes the paths sorted */
    }
    for (size_t i = 0; i < l->n && rc == 0; i++) {
        const struct sw_hub_file *f = v[i];
        const char *blob_id = f->lfs ? f->pointer_oid : f->oid;
        if (f->size < 0 || !blob_id || !*blob_id) {
            rc = sw_err_set(SW_EINVAL, "listing lacks blob ids");
            break;
        }
        json_t *e = json_pack("{sIss}", "size", (json_int_t)f->size, "blob_id", blob_id);
        if (e && f->lfs) {
            json_object_set_new(e, "lfs_sha256", json_string(f->sha256));
            json_object_set_new(e, "lfs_size", json_integer(f->size));
        }
        if (!e || json_object_set_new(files, f->path, e) < 0)
            rc = sw_err_set(SW_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        /* Byte for byte what huggingface_hub's json.dump(indent=1) writes (keys in its order). */
        *json = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        if (!*json) rc = sw_err_set(SW_ENOMEM, "out of memory");
    }
    json_decref(files);
    json_decref(root);
    free(v);
    return rc;
}

int sw_hub_parse_tree_cache(const char *json, size_t len, const char *name,
                            struct sw_hub_listing *out) {
    int rc = 0;
    json_t *root = load(json, len, name, &rc);
    if (!root) return rc;
    json_t *files = json_object_get(root, "files");
    if (!json_is_object(root) || json_integer_value(json_object_get(root, "format_version")) != 1 ||
        !json_is_object(files)) {
        json_decref(root);
        return sw_err_set(SW_EFORMAT, "%s: not a version-1 tree cache", name);
    }
    const char *key;
    json_t *e;
    json_object_foreach(files, key, e) {
        struct sw_hub_file *f;
        if ((rc = sw_hub_listing_add(out, key, strlen(key), &f)) < 0) break;
        char oid[41];
        int64_t size;
        if (!json_is_object(e)) {
            rc = sw_err_set(SW_EFORMAT, "%s: entry '%.200s' is not an object", name, key);
            break;
        }
        if ((rc = get_size(e, "size", name, key, &size)) < 0) break;
        if ((rc = get_hex(e, "blob_id", 40, name, key, oid)) < 0) break;
        if ((rc = get_hex(e, "lfs_sha256", 64, name, key, f->sha256)) < 0) break;
        if (f->sha256[0]) {
            f->lfs = 1;
            f->size = size;
            if (!(f->pointer_oid = strdup(oid))) rc = sw_err_set(SW_ENOMEM, "out of memory");
            if (rc == 0) rc = set_etag(f, f->sha256);
        } else {
            f->size = size;
            memcpy(f->oid, oid, sizeof oid);
            rc = set_etag(f, oid);
        }
        if (rc < 0) break;
    }
    json_decref(root);
    if (rc == 0) update_meta(out);
    return rc;
}
