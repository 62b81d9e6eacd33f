/* sw_hub_fetch — one repo from a hub into the cache (or a plain folder): list it, check every
 * name, select by globs, plan what is already in place, write the ref and huggingface_hub's tree
 * cache, run the downloads, and report what happened. Offline (HF_HUB_OFFLINE=1), and when the
 * hub cannot be reached at all, the answer comes from the cache alone: refs/<revision> names the
 * commit, snapshots/<commit> must hold the selected files (checked against the tree cache when
 * one is there, as huggingface_hub does).
 *
 * Also sw_hub_resolve_model(), the one call tools make to accept a hub id for --model. */
#include "sw_hub_impl.h"

#include "sw_err.h"
#include "sw_io.h"
#include "sw_log.h"
#include "sw_progress.h"
#include "sw_sha256.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define API_MAX_BYTES ((size_t)256 << 20)
#define MS_PAGE 100

struct fetch {
    const struct sw_hub_opts *o;
    enum sw_hub_kind hub;
    const char *repo_id;
    const char *revision;
    struct sw_hub_net net;
    char *cache_root;  /* NULL with local_dir */
    char *folder_name; /* models--org--name */
    char *repo_dir;
    char what[160]; /* "model org/name" */
    char page[600]; /* the repo's web page, for messages */
};

/* malloc'ed printf. */
static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0) s = NULL;
    va_end(ap);
    return s;
}

void sw_hub_result_release(struct sw_hub_result *r) {
    if (!r) return;
    for (size_t i = 0; i < r->nfiles; i++)
        sw_hub_file_release(&r->files[i]);
    free(r->files);
    free(r->folder);
    free(r->commit);
    free(r->repo_dir);
    memset(r, 0, sizeof *r);
}

void sw_hub_job_release(struct sw_hub_job *j) {
    if (!j) return;
    free(j->url);
    free(j->incomplete);
    free(j->final);
    free(j->blobs_dir);
    free(j->lock);
    free(j->link);
    free(j->link_root);
    free(j->meta);
    free(j->err);
    memset(j, 0, sizeof *j);
}

static int is_commit(const char *s) {
    if (strlen(s) != 40) return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return 0;
    return 1;
}

/* ---- listing over the network ---- */

static int hf_tree(struct fetch *F, void *curl, const char *commit, struct sw_hub_listing *l) {
    const char *type = F->o->repo_type == SW_HUB_DATASET ? "datasets" : "models";
    char *url = fmt("%s/api/%s/%s/tree/%s?recursive=true&expand=false", F->net.endpoint, type,
                    F->repo_id, commit);
    int rc = url ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
    size_t pages = 0;
    while (rc == 0 && url) {
        struct sw_hub_body b;
        if ((rc = sw_hub_get(&F->net, curl, url, API_MAX_BYTES, F->what, &b, NULL)) < 0) break;
        rc = sw_hub_parse_hf_tree(b.data, b.len, url, l);
        free(url);
        url = NULL;
        /* Follow the next page only on the hub's own origin: the token goes with it. */
        size_t el = strlen(F->net.endpoint);
        if (rc == 0 && b.h.link_next[0]) {
            if (strncmp(b.h.link_next, F->net.endpoint, el) != 0 || b.h.link_next[el] != '/')
                rc = sw_err_set(SW_EFORMAT,
                                "%s: the tree listing's next page is on another host (%s)", F->what,
                                b.h.link_next);
            else if (++pages > 100000)
                rc = sw_err_set(SW_ERANGE, "%s: more than 100000 listing pages", F->what);
            else if (!(url = strdup(b.h.link_next)))
                rc = sw_err_set(SW_ENOMEM, "out of memory");
        }
        sw_hub_body_release(&b);
    }
    free(url);
    return rc;
}

static int hf_list(struct fetch *F, void *curl, struct sw_hub_listing *l, int *down) {
    const char *type = F->o->repo_type == SW_HUB_DATASET ? "datasets" : "models";
    char *rev = sw_hub_url_escape(F->revision, 0);
    char *url =
        rev ? fmt("%s/api/%s/%s/revision/%s?blobs=true", F->net.endpoint, type, F->repo_id, rev)
            : NULL;
    free(rev);
    if (!url) return sw_err_set(SW_ENOMEM, "out of memory");
    struct sw_hub_body b;
    int rc = sw_hub_get(&F->net, curl, url, API_MAX_BYTES, F->what, &b, down);
    if (rc == 0) rc = sw_hub_parse_hf_revision(b.data, b.len, url, l);
    sw_hub_body_release(&b);
    free(url);
    if (rc == 0 && !l->complete_meta) {
        /* Some mirrors leave sizes and blob ids out of the revision answer: the tree API has them.
         */
        struct sw_hub_listing t = {0};
        rc = hf_tree(F, curl, l->commit, &t);
        if (rc == 0) {
            t.commit = l->commit;
            l->commit = NULL;
            sw_hub_listing_release(l);
            *l = t;
        } else {
            sw_hub_listing_release(&t);
        }
    }
    return rc;
}

static int ms_list(struct fetch *F, void *curl, struct sw_hub_listing *l, int *down) {
    char *rev = sw_hub_url_escape(F->revision, 0);
    if (!rev) return sw_err_set(SW_ENOMEM, "out of memory");
    int rc = 0;
    struct sw_hub_body b;
    if (F->o->repo_type == SW_HUB_MODEL) {
        char *url = fmt("%s/api/v1/models/%s/repo/files?Revision=%s&Recursive=True",
                        F->net.endpoint, F->repo_id, rev);
        rc = url ? sw_hub_get(&F->net, curl, url, API_MAX_BYTES, F->what, &b, down) : SW_ENOMEM;
        size_t count;
        if (rc == 0) rc = sw_hub_parse_ms_files(b.data, b.len, url, l, &count);
        if (rc == 0) sw_hub_body_release(&b);
        free(url);
    } else {
        char *url = fmt("%s/api/v1/datasets/%s", F->net.endpoint, F->repo_id);
        int64_t id = 0;
        rc = url ? sw_hub_get(&F->net, curl, url, API_MAX_BYTES, F->what, &b, down) : SW_ENOMEM;
        if (rc == 0) {
            rc = sw_hub_parse_ms_dataset_id(b.data, b.len, url, &id);
            sw_hub_body_release(&b);
        }
        free(url);
        for (int page = 1; rc == 0; page++) {
            url = fmt("%s/api/v1/datasets/%lld/repo/"
                      "tree?Revision=%s&Root=%%2F&Recursive=True&PageNumber=%d&PageSize=%d",
                      F->net.endpoint, (long long)id, rev, page, MS_PAGE);
            size_t count = 0;
            rc = url ? sw_hub_get(&F->net, curl, url, API_MAX_BYTES, F->what, &b, down) : SW_ENOMEM;
            if (rc == 0) {
                rc = sw_hub_parse_ms_files(b.data, b.len, url, l, &count);
                sw_hub_body_release(&b);
            }
            free(url);
            if (count < MS_PAGE) break;
            if (page > 100000)
                rc = sw_err_set(SW_ERANGE, "%s: more than 100000 listing pages", F->what);
        }
    }
    free(rev);
    if (rc == SW_ENOMEM) sw_err_set(SW_ENOMEM, "out of memory");
    if (rc < 0) return rc;
    /* As modelscope's snapshot_download: the git bookkeeping files are not model files. */
    for (size_t i = 0; i < l->n;) {
        if (strcmp(l->files[i].path, ".gitattributes") == 0 ||
            strcmp(l->files[i].path, ".gitignore") == 0) {
            sw_hub_file_release(&l->files[i]);
            memmove(&l->files[i], &l->files[i + 1], (l->n - i - 1) * sizeof *l->files);
            l->n--;
        } else {
            i++;
        }
    }
    char id[41];
    SW_TRY(sw_hub_listing_content_id(l, id));
    free(l->commit);
    return (l->commit = strdup(id)) ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
}

static char *file_url(struct fetch *F, const struct sw_hub_file *f, const char *commit) {
    char *path = sw_hub_url_escape(f->path, F->hub == SW_HUB_HF);
    char *rev = sw_hub_url_escape(F->revision, 0);
    char *url = NULL;
    if (path && rev) {
        if (F->hub == SW_HUB_HF)
            url =
                fmt("%s/%s%s/resolve/%s/%s", F->net.endpoint,
                    F->o->repo_type == SW_HUB_DATASET ? "datasets/" : "", F->repo_id, commit, path);
        else if (F->o->repo_type == SW_HUB_DATASET)
            url = fmt("%s/api/v1/datasets/%s/repo?Source=SDK&Revision=%s&FilePath=%s",
                      F->net.endpoint, F->repo_id, rev, path);
        else
            url = fmt("%s/api/v1/models/%s/repo?Revision=%s&FilePath=%s", F->net.endpoint,
                      F->repo_id, rev, path);
    }
    free(path);
    free(rev);
    return url;
}

/* ---- selection ---- */

/* Move the selected files of l into r->files (l keeps the rest). */
static int select_files(struct fetch *F, struct sw_hub_listing *l, struct sw_hub_result *r) {
    const struct sw_hub_opts *o = F->o;
    r->files = calloc(l->n ? l->n : 1, sizeof *r->files);
    if (!r->files) return sw_err_set(SW_ENOMEM, "out of memory");
    if (o->nfiles) {
        if (o->ninclude || o->nexclude)
            sw_log(SW_LOG_WARN, "file names given: --include/--exclude are ignored");
        for (size_t k = 0; k < o->nfiles; k++) {
            size_t i = 0;
            while (i < l->n && !(l->files[i].path && strcmp(l->files[i].path, o->files[k]) == 0))
                i++;
            if (i == l->n) {
                /* already selected (named twice)? */
                int dup = 0;
                for (size_t m = 0; m < r->nfiles; m++)
                    dup |= strcmp(r->files[m].path, o->files[k]) == 0;
                if (dup) continue;
                return sw_err_set(SW_ENOTFOUND, "%s has no file '%s' at revision %s", F->what,
                                  o->files[k], F->revision);
            }
            r->files[r->nfiles++] = l->files[i];
            memset(&l->files[i], 0, sizeof l->files[i]);
        }
        return 0;
    }
    for (size_t i = 0; i < l->n; i++) {
        if (!sw_hub_filter(l->files[i].path, o->include, o->ninclude, o->exclude, o->nexclude))
            continue;
        r->files[r->nfiles++] = l->files[i];
        memset(&l->files[i], 0, sizeof l->files[i]);
    }
    if (r->nfiles == 0 && l->n && (o->ninclude || o->nexclude))
        sw_log(SW_LOG_WARN, "no file of %s matched the --include/--exclude patterns", F->what);
    return 0;
}

/* ---- offline: the cache alone ---- */

static int walk(const char *root, const char *rel, struct sw_hub_listing *l, int depth) {
    char *dir = rel[0] ? fmt("%s/%s", root, rel) : strdup(root);
    if (!dir) return sw_err_set(SW_ENOMEM, "out of memory");
    DIR *d = opendir(dir);
    if (!d) {
        int rc = sw_err_errno("open folder '%s'", dir);
        free(dir);
        return rc;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char *r = rel[0] ? fmt("%s/%s", rel, e->d_name) : strdup(e->d_name);
        char *full = r ? fmt("%s/%s", root, r) : NULL;
        struct stat st;
        if (!r || !full)
            rc = sw_err_set(SW_ENOMEM, "out of memory");
        else if (stat(full, &st) == 0 && S_ISDIR(st.st_mode) && depth < 64)
            rc = walk(root, r, l, depth + 1);
        else if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
            struct sw_hub_file *f;
            rc = sw_hub_listing_add(l, r, strlen(r), &f);
            if (rc == 0) f->size = st.st_size;
        }
        free(r);
        free(full);
    }
    closedir(d);
    free(dir);
    return rc;
}

static int offline_resolve(struct fetch *F, struct sw_hub_result *r, int quiet_missing) {
    const struct sw_hub_opts *o = F->o;
    const char *why = F->net.endpoint
                          ? "the hub cannot be reached"
                          : "offline mode (HF_HUB_OFFLINE=1 or --offline) allows no download";
    if (o->local_dir) {
        /* As huggingface_hub: a non-empty local_dir is taken as it is. */
        DIR *d = opendir(o->local_dir);
        int any = 0;
        struct dirent *e;
        while (d && (e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, ".cache"))
                any = 1;
        if (d) closedir(d);
        if (!any)
            return sw_err_set(SW_ENOTFOUND, "%s: '%s' is empty and %s", F->what, o->local_dir, why);
        for (size_t k = 0; k < o->nfiles; k++) {
            char *p = fmt("%s/%s", o->local_dir, o->files[k]);
            struct stat st;
            int ok = p && stat(p, &st) == 0;
            free(p);
            if (!ok)
                return sw_err_set(SW_ENOTFOUND, "%s: '%s' is not in '%s' and %s", F->what,
                                  o->files[k], o->local_dir, why);
        }
        r->folder = strdup(o->local_dir);
        r->from_cache = 1;
        return r->folder ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
    }
    char commit[72] = "";
    if (is_commit(F->revision)) {
        snprintf(commit, sizeof commit, "%s", F->revision);
    } else {
        char *ref = fmt("%s/refs/%s", F->repo_dir, F->revision), *data = NULL;
        size_t len = 0;
        int rc = ref ? sw_read_file(ref, &data, &len, 4096) : SW_ENOMEM;
        free(ref);
        if (rc == 0) {
            while (len && (data[len - 1] == '\n' || data[len - 1] == '\r' || data[len - 1] == ' '))
                data[--len] = '\0';
            if (is_commit(data)) snprintf(commit, sizeof commit, "%s", data);
        }
        free(data);
        sw_err_clear();
    }
    char *snap = commit[0] ? fmt("%s/snapshots/%s", F->repo_dir, commit) : NULL;
    if (!commit[0] || !snap || sw_path_is_dir(snap) != 1) {
        free(snap);
        sw_err_clear();
        if (quiet_missing) return SW_ENOTFOUND;
        return sw_err_set(
            SW_ENOTFOUND,
            "%s (revision %s) is not in the cache '%s', and %s; fetch it once with access "
            "to the hub (without HF_HUB_OFFLINE)",
            F->what, F->revision, F->cache_root, why);
    }
    /* What the snapshot should hold: the tree cache when there is one, else what is there. */
    struct sw_hub_listing l = {0};
    char *tree = fmt("%s/trees/%s.json", F->repo_dir, commit), *data = NULL;
    size_t len = 0;
    int have_tree = 0, rc = 0;
    if (tree && sw_read_file(tree, &data, &len, API_MAX_BYTES) == 0) {
        if (sw_hub_parse_tree_cache(data, len, tree, &l) == 0 &&
            sw_hub_listing_check(&l, tree) == 0) {
            have_tree = 1;
        } else {
            sw_hub_listing_release(&l);
            memset(&l, 0, sizeof l);
        }
    }
    sw_err_clear();
    free(data);
    free(tree);
    if (!have_tree) rc = walk(snap, "", &l, 0);
    if (rc == 0) rc = select_files(F, &l, r);
    sw_hub_listing_release(&l);
    size_t missing = 0;
    char names[600] = "";
    for (size_t i = 0; rc == 0 && i < r->nfiles; i++) {
        struct sw_hub_file *f = &r->files[i];
        f->state = SW_HUB_FILE_CACHED;
        f->local = fmt("%s/%s", snap, f->path);
        struct stat st;
        if (!f->local)
            rc = sw_err_set(SW_ENOMEM, "out of memory");
        else if (stat(f->local, &st) != 0 || !S_ISREG(st.st_mode)) {
            if (missing++ < 3)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s'%.150s'",
                         missing > 1 ? ", " : "", f->path);
        } else {
            r->bytes_total += (uint64_t)st.st_size;
            r->ncached++;
        }
    }
    if (rc == 0 && missing)
        rc = sw_err_set(
            SW_ENOTFOUND,
            "%s (revision %s): the cached snapshot misses %zu of the requested files (%s%s) and "
            "%s; fetch it again with access to the hub",
            F->what, F->revision, missing, names, missing > 3 ? ", ..." : "", why);
    if (rc == 0) {
        r->folder = snap;
        snap = NULL;
        r->commit = strdup(commit);
        r->repo_dir = strdup(F->repo_dir);
        r->from_cache = 1;
        if (!r->commit || !r->repo_dir) rc = sw_err_set(SW_ENOMEM, "out of memory");
    }
    free(snap);
    return rc;
}

/* ---- planning ---- */

static int exists_regular(const char *p, int64_t size) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && (size < 0 || st.st_size == size);
}

/* Where the cached pointer leads is what the listing says (same blob name). */
static int link_is(const char *link, const char *target) {
    char cur[4096];
    ssize_t k = readlink(link, cur, sizeof cur - 1);
    if (k < 0) return 0;
    cur[k] = '\0';
    return strcmp(cur, target) == 0;
}

static int plan_cache(struct fetch *F, struct sw_hub_result *r, const char *commit,
                      struct sw_hub_job *jobs) {
    const struct sw_hub_opts *o = F->o;
    char *snap = fmt("%s/snapshots/%s", F->repo_dir, commit);
    if (!snap) return sw_err_set(SW_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < r->nfiles && rc == 0; i++) {
        struct sw_hub_file *f = &r->files[i];
        struct sw_hub_job *j = &jobs[i];
        j->file = f;
        j->commit = r->commit;
        j->force = o->force;
        j->url = file_url(F, f, commit);
        j->link = fmt("%s/%s", snap, f->path);
        j->link_root = strdup(snap);
        j->blobs_dir = fmt("%s/blobs", F->repo_dir);
        f->local = fmt("%s/%s", snap, f->path);
        if (f->etag) {
            j->final = fmt("%s/blobs/%s", F->repo_dir, f->etag);
            j->incomplete = fmt("%s/blobs/%s.incomplete", F->repo_dir, f->etag);
            j->lock = fmt("%s/.locks/%s/%s.lock", F->cache_root, F->folder_name, f->etag);
        } else {
            /* No id from the hub: a partial file per commit and path. */
            unsigned char d[20];
            unsigned int dn = 0;
            char hex[41], *key = fmt("%s%c%s", commit, 0, f->path);
            EVP_Digest(key, key ? strlen(commit) + 1 + strlen(f->path) : 0, d, &dn, EVP_sha1(),
                       NULL);
            free(key);
            sw_hex(d, 20, hex);
            j->incomplete = fmt("%s/blobs/.sw-%s.incomplete", F->repo_dir, hex);
        }
        if (!j->url || !j->link || !j->link_root || !j->blobs_dir || !f->local || !j->incomplete ||
            (f->etag && (!j->final || !j->lock))) {
            rc = sw_err_set(SW_ENOMEM, "out of memory");
            break;
        }
        char *target = f->etag ? sw_hub_blob_link(f->path, f->etag) : NULL;
        if (o->force) {
            f->state = SW_HUB_FILE_FETCH;
            j->need_download = 1;
        } else if (exists_regular(j->link, f->size) && (!target || link_is(j->link, target))) {
            f->state = SW_HUB_FILE_CACHED;
            j->verify_existing = o->verify && j->final;
        } else if (j->final && exists_regular(j->final, f->size)) {
            f->state = SW_HUB_FILE_LINKED;
            j->verify_existing = o->verify;
        } else {
            f->state = SW_HUB_FILE_FETCH;
            j->need_download = 1;
        }
        free(target);
    }
    free(snap);
    return rc;
}

static int plan_local(struct fetch *F, struct sw_hub_result *r, const char *commit,
                      struct sw_hub_job *jobs) {
    const struct sw_hub_opts *o = F->o;
    const char *root = o->local_dir;
    int rc = 0;
    for (size_t i = 0; i < r->nfiles && rc == 0; i++) {
        struct sw_hub_file *f = &r->files[i];
        struct sw_hub_job *j = &jobs[i];
        j->file = f;
        j->commit = r->commit;
        j->force = o->force;
        j->url = file_url(F, f, commit);
        j->final = fmt("%s/%s", root, f->path);
        j->meta = fmt("%s/.cache/huggingface/download/%s.metadata", root, f->path);
        j->lock = fmt("%s/.cache/huggingface/download/%s.lock", root, f->path);
        j->incomplete = fmt("%s/.cache/huggingface/download/%s.%s.incomplete", root, f->path,
                            f->etag ? f->etag : "sw");
        f->local = j->final ? strdup(j->final) : NULL;
        if (!j->url || !j->final || !j->meta || !j->lock || !j->incomplete || !f->local) {
            rc = sw_err_set(SW_ENOMEM, "out of memory");
            break;
        }
        f->state = SW_HUB_FILE_FETCH;
        j->need_download = 1;
        if (o->force || !exists_regular(j->final, f->size)) continue;
        /* In place: the metadata huggingface_hub (or we) wrote names the etag it was fetched for.
         */
        char *data = NULL;
        size_t len = 0;
        int meta_ok = 0;
        if (f->etag && sw_read_file(j->meta, &data, &len, 4096) == 0) {
            char *nl = strchr(data, '\n');
            char *etag = nl ? nl + 1 : NULL, *end = etag ? strchr(etag, '\n') : NULL;
            if (end) *end = '\0';
            meta_ok = etag && strcmp(etag, f->etag) == 0;
        }
        free(data);
        sw_err_clear();
        if (meta_ok) {
            f->state = SW_HUB_FILE_CACHED;
            j->need_download = 0;
            j->verify_existing = o->verify;
            continue;
        }
        /* No (matching) metadata: the file counts when its bytes hash to the published id. */
        if (f->sha256[0] || (f->oid[0] && f->size >= 0)) {
            char got[72];
            if (sw_hub_hash_file(j->final, f->sha256[0] != 0, got, sizeof got) == 0 &&
                strcmp(got, f->sha256[0] ? f->sha256 : f->oid) == 0) {
                f->state = SW_HUB_FILE_CACHED;
                j->need_download = 0;
            }
            sw_err_clear();
        }
    }
    return rc;
}

/* Folders, CACHEDIR.TAG, .gitignore: what must exist before the workers start. */
static int prepare_dirs(struct fetch *F, struct sw_hub_result *r) {
    const struct sw_hub_opts *o = F->o;
    static const char tag[] = "Signature: 8a477f597d28d172789f06886806bc55\n"
                              "# This file is a cache directory tag created by sw-fetch.\n"
                              "# For information about cache directory tags, see:\n"
                              "#\thttps://bford.info/cachedir/\n";
    if (o->local_dir) {
        SW_TRY(sw_mkdir_p(o->local_dir));
        SW_TRY(sw_hub_mkdirs_below(o->local_dir, ".cache/huggingface/download"));
        char *gi = fmt("%s/.cache/huggingface/.gitignore", o->local_dir);
        char *ct = fmt("%s/.cache/huggingface/CACHEDIR.TAG", o->local_dir);
        if (gi && !exists_regular(gi, -1)) (void)sw_write_file_atomic(gi, "*", 1);
        if (ct && !exists_regular(ct, -1)) (void)sw_write_file_atomic(ct, tag, sizeof tag - 1);
        free(gi);
        free(ct);
        for (size_t i = 0; i < r->nfiles; i++) {
            char *dir = strdup(r->files[i].path);
            if (!dir) return sw_err_set(SW_ENOMEM, "out of memory");
            char *slash = strrchr(dir, '/');
            int rc = 0;
            if (slash) {
                *slash = '\0';
                rc = sw_hub_mkdirs_below(o->local_dir, dir);
                char *meta = rc == 0 ? fmt(".cache/huggingface/download/%s", dir) : NULL;
                if (rc == 0)
                    rc = meta ? sw_hub_mkdirs_below(o->local_dir, meta)
                              : sw_err_set(SW_ENOMEM, "out of memory");
                free(meta);
            }
            free(dir);
            SW_TRY(rc);
        }
        sw_err_clear();
        return 0;
    }
    SW_TRY(sw_mkdir_p(F->cache_root));
    char *ct = fmt("%s/CACHEDIR.TAG", F->cache_root);
    if (ct && !exists_regular(ct, -1)) (void)sw_write_file_atomic(ct, tag, sizeof tag - 1);
    free(ct);
    sw_err_clear();
    SW_TRY(sw_hub_mkdirs_below(F->cache_root, F->folder_name));
    char *rel = fmt("%s/.locks/%s", "", F->folder_name);
    int rc =
        rel ? sw_hub_mkdirs_below(F->cache_root, rel + 1) : sw_err_set(SW_ENOMEM, "out of memory");
    free(rel);
    SW_TRY(rc);
    SW_TRY(sw_hub_mkdirs_below(F->repo_dir, "blobs"));
    char *snap = fmt("snapshots/%s", r->commit);
    rc = snap ? sw_hub_mkdirs_below(F->repo_dir, snap) : sw_err_set(SW_ENOMEM, "out of memory");
    free(snap);
    return rc;
}

/* refs/<revision> and trees/<commit>.json, written before the downloads as huggingface_hub does
 * (an interrupted fetch then still tells an offline reader what is missing). tree_json may be
 * NULL (ModelScope, or a listing without every id). */
static int write_ref_and_tree(struct fetch *F, const char *tree_json, const char *commit) {
    const char *base = F->o->local_dir ? F->o->local_dir : F->repo_dir;
    const char *trees = F->o->local_dir ? ".cache/huggingface/trees" : "trees";
    if (!F->o->local_dir && strcmp(F->revision, commit) != 0) {
        char *rel = fmt("refs/%s", F->revision);
        char *path = fmt("%s/refs/%s", F->repo_dir, F->revision);
        int rc = rel && path ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
        if (rc == 0) {
            *strrchr(rel, '/') = '\0'; /* the folder of the ref ("refs", or "refs/pr" for "pr/1") */
            rc = sw_hub_mkdirs_below(F->repo_dir, rel);
        }
        if (rc == 0) rc = sw_write_file_atomic(path, commit, strlen(commit));
        free(rel);
        free(path);
        SW_TRY(rc);
    }
    if (tree_json) {
        char *p = fmt("%s/%s/%s.json", base, trees, commit);
        /* Best effort, as in huggingface_hub: the tree cache only saves listing calls later. */
        if (p && sw_hub_mkdirs_below(base, trees) == 0)
            (void)sw_write_file_atomic(p, tree_json, strlen(tree_json));
        free(p);
        sw_err_clear();
    }
    return 0;
}

/* ---- the fetch ---- */

static void fetch_release(struct fetch *F) {
    free(F->net.endpoint);
    if (F->net.token) {
        memset(F->net.token, 0, strlen(F->net.token));
        free(F->net.token);
    }
    free(F->cache_root);
    free(F->folder_name);
    free(F->repo_dir);
}

int sw_hub_fetch(const char *repo_id, const struct sw_hub_opts *o, struct sw_hub_result *r) {
    memset(r, 0, sizeof *r);
    struct sw_hub_opts defaults;
    if (!o) {
        sw_hub_opts_init(&defaults);
        o = &defaults;
    }
    SW_TRY(sw_hub_repo_id_check(repo_id));
    struct fetch F = {.o = o, .repo_id = repo_id};
    F.hub = sw_hub_kind_resolve(o->hub);
    F.revision = o->revision && *o->revision  ? o->revision
                 : F.hub == SW_HUB_MODELSCOPE ? "master"
                                              : "main";
    SW_TRY(sw_hub_revision_check(F.revision));
    int offline = o->offline < 0 ? sw_hub_env_offline() : o->offline;
    const char *type = o->repo_type == SW_HUB_DATASET ? "dataset" : "model";
    snprintf(F.what, sizeof F.what, "%s %s", type, repo_id);
    F.net.hub = F.hub;
    F.net.max_retries = o->max_retries >= 0 ? o->max_retries : 5;
    F.net.max_wait_s = o->max_wait_s > 0 ? o->max_wait_s : 60;
    F.net.connect_timeout_s = 10;
    F.net.stall_timeout_s = 30;
    const char *dt = getenv("HF_HUB_DOWNLOAD_TIMEOUT");
    if (dt && atol(dt) > 0) F.net.stall_timeout_s = atol(dt);
    int rc = 0;
    if (!o->local_dir) {
        SW_TRY_GOTO(rc, sw_hub_cache_root(F.hub, o->cache_dir, &F.cache_root), out);
        F.folder_name = sw_hub_repo_folder_name(o->repo_type, repo_id);
        F.repo_dir = F.folder_name ? fmt("%s/%s", F.cache_root, F.folder_name) : NULL;
        if (!F.repo_dir) {
            rc = sw_err_set(SW_ENOMEM, "out of memory");
            goto out;
        }
    }
    if (offline) {
        rc = offline_resolve(&F, r, 0);
        goto out;
    }
    SW_TRY_GOTO(rc, sw_hub_endpoint(F.hub, o->endpoint, &F.net.endpoint), out);
    SW_TRY_GOTO(rc, sw_hub_token(F.hub, o->token, &F.net.token, &F.net.token_source), out);
    if (F.hub == SW_HUB_HF)
        snprintf(F.page, sizeof F.page, "%s/%s%s", F.net.endpoint,
                 o->repo_type == SW_HUB_DATASET ? "datasets/" : "", repo_id);
    else
        snprintf(F.page, sizeof F.page, "%s/%s/%s", F.net.endpoint,
                 o->repo_type == SW_HUB_DATASET ? "datasets" : "models", repo_id);
    F.net.page = F.page;
    if (F.net.token) sw_log(SW_LOG_DEBUG, "using the token from %s", F.net.token_source);

    void *curl = sw_hub_curl_new(&F.net);
    if (!curl) {
        rc = SW_ENOMEM;
        goto out;
    }
    struct sw_hub_listing l = {0};
    int down = 0;
    rc = F.hub == SW_HUB_HF ? hf_list(&F, curl, &l, &down) : ms_list(&F, curl, &l, &down);
    sw_hub_curl_free(curl);
    if (rc < 0 && down && !o->dry_run) {
        /* As huggingface_hub: with the hub out of reach, a cached snapshot will do. */
        char *msg = strdup(sw_err_msg());
        struct sw_hub_result alt;
        memset(&alt, 0, sizeof alt);
        if (offline_resolve(&F, &alt, 1) == 0) {
            sw_log(SW_LOG_WARN, "%s; using the cached snapshot %s", msg ? msg : "hub unreachable",
                   alt.commit);
            *r = alt;
            rc = 0;
        } else {
            sw_hub_result_release(&alt);
            sw_err_set(rc, "%s (and no usable cached copy)", msg ? msg : "hub unreachable");
        }
        free(msg);
        sw_hub_listing_release(&l);
        goto out;
    }
    if (rc == 0) rc = sw_hub_listing_check(&l, F.what);
    if (rc == 0 && !(r->commit = strdup(l.commit))) rc = sw_err_set(SW_ENOMEM, "out of memory");
    if (rc == 0 && !o->local_dir && !(r->repo_dir = strdup(F.repo_dir)))
        rc = sw_err_set(SW_ENOMEM, "out of memory");
    /* The tree cache describes the whole listing: made before selection moves files out. */
    char *tree_json = NULL;
    if (rc == 0 && !o->dry_run && F.hub == SW_HUB_HF && l.complete_meta &&
        sw_hub_tree_cache_json(&l, &tree_json) < 0) {
        tree_json = NULL;
        sw_err_clear();
    }
    if (rc == 0) rc = select_files(&F, &l, r);
    sw_hub_listing_release(&l);
    struct sw_hub_job *jobs = NULL;
    if (rc == 0) {
        jobs = calloc(r->nfiles ? r->nfiles : 1, sizeof *jobs);
        if (!jobs) rc = sw_err_set(SW_ENOMEM, "out of memory");
    }
    if (rc == 0)
        rc = o->local_dir ? plan_local(&F, r, r->commit, jobs) : plan_cache(&F, r, r->commit, jobs);
    for (size_t i = 0; rc == 0 && i < r->nfiles; i++)
        if (r->files[i].size > 0) r->bytes_total += (uint64_t)r->files[i].size;
    if (rc == 0) {
        r->folder =
            o->local_dir ? strdup(o->local_dir) : fmt("%s/snapshots/%s", F.repo_dir, r->commit);
        if (!r->folder) rc = sw_err_set(SW_ENOMEM, "out of memory");
    }
    if (rc == 0 && !o->dry_run) {
        rc = prepare_dirs(&F, r);
        if (rc == 0) rc = write_ref_and_tree(&F, tree_json, r->commit);
        if (rc == 0)
            rc = sw_hub_download_jobs(&F.net, jobs, r->nfiles, o->max_workers, o->progress,
                                      o->progress_ctx);
    }
    free(tree_json);
    for (size_t i = 0; jobs && i < r->nfiles; i++) {
        struct sw_hub_file *f = &r->files[i];
        if (!o->dry_run) {
            if (jobs[i].rc == 0 && f->state == SW_HUB_FILE_FETCH && jobs[i].need_download)
                r->nfetched++;
            else if (jobs[i].rc == 0 && f->state == SW_HUB_FILE_LINKED)
                r->nlinked++;
            else if (jobs[i].rc == 0)
                r->ncached++;
        } else {
            r->nfetched += f->state == SW_HUB_FILE_FETCH;
            r->nlinked += f->state == SW_HUB_FILE_LINKED;
            r->ncached += f->state == SW_HUB_FILE_CACHED;
        }
        r->bytes_fetched += jobs[i].fetched;
        sw_hub_job_release(&jobs[i]);
    }
    free(jobs);
out:
    fetch_release(&F);
    return rc;
}

/* ---- for tools: --model ORG/NAME ---- */

struct bar {
    struct sw_progress p;
    int started;
    char label[120];
};

static void bar_update(void *ctx, const struct sw_hub_progress *pr) {
    struct bar *b = ctx;
    if (!b->started) {
        if (pr->bytes_total == 0) return;
        sw_progress_init(&b->p, b->label, pr->bytes_total, "B");
        b->started = 1;
    }
    sw_progress_update(&b->p, pr->bytes_done);
    if (pr->final) sw_progress_finish(&b->p);
}

int sw_hub_resolve_model(const char *model, const struct sw_hub_opts *o, char **folder) {
    *folder = NULL;
    if (!model || !*model) return sw_err_set(SW_EUSAGE, "empty model path or hub id");
    struct stat st;
    if (stat(model, &st) == 0) {
        *folder = strdup(model);
        return *folder ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
    }
    if (!sw_hub_looks_like_id(model))
        return sw_err_set(SW_ENOTFOUND, "'%s': no such file or folder (and not a hub id)", model);
    struct sw_hub_opts opts;
    if (o)
        opts = *o;
    else
        sw_hub_opts_init(&opts);
    struct bar bar;
    memset(&bar, 0, sizeof bar);
    if (!opts.progress && !opts.quiet) {
        snprintf(bar.label, sizeof bar.label, "fetch %s", model);
        opts.progress = bar_update;
        opts.progress_ctx = &bar;
    }
    opts.dry_run = 0;
    opts.local_dir = NULL;
    struct sw_hub_result r;
    int rc = sw_hub_fetch(model, &opts, &r);
    if (bar.started) sw_progress_finish(&bar.p);
    if (rc < 0) {
        sw_hub_result_release(&r);
        return sw_err_wrap(rc, "'%s' is not a local path and could not be had from the hub", model);
    }
    if (r.nfetched)
        sw_log(SW_LOG_INFO, "fetched %s: %zu files, %llu bytes, into %s", model, r.nfetched,
               (unsigned long long)r.bytes_fetched, r.folder);
    *folder = r.folder;
    r.folder = NULL;
    sw_hub_result_release(&r);
    return 0;
}

int sw_hub_resolve_arg(char **arg, enum sw_hub_need need, const char *use_hf, const char *revision,
                       const char *token) {
    static const char *const not_read[] = {"*.bin",  "*.pth",     "*.pt",         "*.msgpack",
                                           "*.h5",   "*.ot",      "*.onnx",       "onnx/",
                                           "*.gguf", "original/", "consolidated*"};
    static const char *const tokenizer[] = {"*.json", "*.model", "*.txt", "*.tiktoken", "*.jinja"};
    if (!arg || !*arg) return 0;
    struct stat st;
    if (stat(*arg, &st) == 0) return 0; /* a local path: nothing to do, no network */
    struct sw_hub_opts o;
    sw_hub_opts_init(&o);
    if (use_hf && *use_hf)
        o.hub =
            strcmp(use_hf, "true") == 0 || strcmp(use_hf, "1") == 0 ? SW_HUB_HF : SW_HUB_MODELSCOPE;
    o.revision = revision;
    o.token = token;
    if (need == SW_HUB_NEED_MODEL) {
        o.exclude = not_read;
        o.nexclude = sizeof not_read / sizeof *not_read;
    } else if (need == SW_HUB_NEED_TOKENIZER) {
        o.include = tokenizer;
        o.ninclude = sizeof tokenizer / sizeof *tokenizer;
    }
    char *folder = NULL;
    SW_TRY(sw_hub_resolve_model(*arg, &o, &folder));
    free(*arg);
    *arg = folder;
    return 0;
}
