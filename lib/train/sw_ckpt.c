/* sw_ckpt — writing checkpoints atomically, the checksum manifest, pruning old checkpoints and
 * finding the latest one (the file list and atomicity rules are in sw_ckpt.h). */
#include "sw_ckpt_impl.h"

#include "sw_err.h"
#include "sw_io.h"
#include "sw_json.h"
#include "sw_log.h"
#include "sw_merge.h"
#include "sw_sha256.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Tokenizer and chat-template files, copied from the input model folder (or, when it has no
 * tokenizer, from tokenizer_dir) when present. */
static const char *const copied_files[] = {
    "tokenizer.json",
    "tokenizer.json.gz",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    NULL,
};

/* ---- file-system helpers ------------------------------------------------------------------ */

/* Byte-exact copy of src to dst (created fresh), fsync'ed. */
static int copy_file(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb");
    if (!in) return sw_err_errno("cannot open '%s'", src);
    FILE *out = fopen(dst, "wb");
    if (!out) {
        fclose(in);
        return sw_err_errno("cannot create '%s'", dst);
    }
    char buf[1 << 16];
    size_t n;
    int rc = 0;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) {
            rc = sw_err_errno("cannot write '%s'", dst);
            break;
        }
    if (rc == 0 && ferror(in)) rc = sw_err_errno("cannot read '%s'", src);
    if (rc == 0 && (fflush(out) != 0 || fsync(fileno(out)) != 0))
        rc = sw_err_errno("cannot write '%s'", dst);
    fclose(in);
    if (fclose(out) != 0 && rc == 0) rc = sw_err_errno("cannot close '%s'", dst);
    return rc;
}

static int write_text(const char *dir, const char *name, char *text) {
    if (!text) return sw_err_set(SW_ENOMEM, "out of memory formatting %s", name);
    char *path = sw_path_join(dir, name);
    int rc = path ? sw_write_file_atomic(path, text, strlen(text))
                  : sw_err_set(SW_ENOMEM, "out of memory");
    free(path);
    free(text);
    return rc;
}

/* "checkpoint-<digits>" → step, else -1. */
static int64_t ckpt_step_of(const char *name) {
    if (strncmp(name, "checkpoint-", 11) != 0) return -1;
    const char *p = name + 11;
    if (!*p || strlen(p) > 18) return -1;
    int64_t v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (*p - '0');
    }
    return v;
}

/* ---- manifest ----------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Regular files of dir except the manifest, sorted; *names malloc'ed (free each and the array). */
static int list_files(const char *dir, char ***names, int *n) {
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return sw_err_errno("cannot open folder '%s'", dir);
    int cap = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (strcmp(e->d_name, SW_CKPT_MANIFEST) == 0) continue;
        char *path = sw_path_join(dir, e->d_name);
        struct stat st;
        int ok = path && lstat(path, &st) == 0;
        free(path);
        if (!ok) {
            rc = sw_err_errno("cannot stat '%s/%s'", dir, e->d_name);
            break;
        }
        if (!S_ISREG(st.st_mode)) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **t = realloc(*names, (size_t)cap * sizeof *t);
            if (!t) {
                rc = sw_err_set(SW_ENOMEM, "out of memory");
                break;
            }
            *names = t;
        }
        if (!((*names)[*n] = strdup(e->d_name))) {
            rc = sw_err_set(SW_ENOMEM, "out of memory");
            break;
        }
        (*n)++;
    }
    closedir(d);
    if (rc == 0 && *n) qsort(*names, (size_t)*n, sizeof **names, cmp_str);
    return rc;
}

static void free_names(char **names, int n) {
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static int file_digest(const char *dir, const char *name, char hex[65]) {
    char *path = sw_path_join(dir, name);
    if (!path) return sw_err_set(SW_ENOMEM, "out of memory");
    uint8_t d[32];
    int rc = sw_sha256_file(path, d);
    free(path);
    if (rc == 0) sw_hex(d, 32, hex);
    return rc;
}

int sw_ckpt_write_manifest(const char *dir) {
    char **names;
    int n;
    SW_TRY(list_files(dir, &names, &n));
    size_t cap = (size_t)n * 400 + 1, len = 0;
    char *text = malloc(cap);
    int rc = text ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
    for (int i = 0; i < n && rc == 0; i++) {
        char hex[65];
        if (strlen(names[i]) > 300) {
            rc = sw_err_set(SW_EINVAL, "%s: file name '%.40s...' is too long", dir, names[i]);
            break;
        }
        SW_TRY_GOTO(rc, file_digest(dir, names[i], hex), out);
        len += (size_t)snprintf(text + len, cap - len, "%s  %s\n", hex, names[i]);
    }
    if (rc == 0) {
        char *path = sw_path_join(dir, SW_CKPT_MANIFEST);
        rc = path ? sw_write_file_atomic(path, text, len) : sw_err_set(SW_ENOMEM, "out of memory");
        free(path);
    }
out:
    free(text);
    free_names(names, n);
    return rc;
}

int sw_ckpt_verify_manifest(const char *dir) {
    char *mpath = sw_path_join(dir, SW_CKPT_MANIFEST);
    if (!mpath) return sw_err_set(SW_ENOMEM, "out of memory");
    char *text = NULL;
    size_t len = 0;
    int rc = sw_read_file(mpath, &text, &len, 1u << 20);
    if (rc == SW_ENOTFOUND) {
        rc = sw_err_set(SW_ENOTFOUND, "%s: no %s: not a complete sw checkpoint", dir,
                        SW_CKPT_MANIFEST);
        free(mpath);
        return rc;
    }
    if (rc < 0) {
        free(mpath);
        return rc;
    }
    char **listed = NULL;
    int nlisted = 0, cap = 0, lineno = 0;
    char *line = text, *end = text + len;
    while (line < end && rc == 0) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl) {
            rc = sw_err_set(SW_EFORMAT, "%s:%d: last line has no newline (truncated?)", mpath,
                            lineno + 1);
            break;
        }
        *nl = '\0';
        lineno++;
        size_t n = (size_t)(nl - line);
        const char *name = line + 66;
        int ok = n > 66 && line[64] == ' ' && line[65] == ' ' && !strchr(name, '/') &&
                 strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
        for (int i = 0; ok && i < 64; i++)
            ok = (line[i] >= '0' && line[i] <= '9') || (line[i] >= 'a' && line[i] <= 'f');
        if (!ok) {
            rc = sw_err_set(SW_EFORMAT, "%s:%d: malformed line (want '<sha256>  <file>')", mpath,
                            lineno);
            break;
        }
        char hex[65];
        char *fpath = sw_path_join(dir, name);
        if (!fpath) {
            rc = sw_err_set(SW_ENOMEM, "out of memory");
            break;
        }
        if (access(fpath, F_OK) != 0) {
            rc = sw_err_set(SW_ENOTFOUND, "%s: file listed in %s is missing", fpath,
                            SW_CKPT_MANIFEST);
        } else if ((rc = file_digest(dir, name, hex)) == 0 && memcmp(hex, line, 64) != 0) {
            rc = sw_err_set(SW_ECORRUPT,
                            "%s: checksum mismatch (sha256 %.16s..., %s says "
                            "%.16s...): the file was modified or corrupted",
                            fpath, hex, SW_CKPT_MANIFEST, line);
        }
        free(fpath);
        if (rc == 0) {
            if (nlisted == cap) {
                cap = cap ? cap * 2 : 16;
                char **t = realloc(listed, (size_t)cap * sizeof *t);
                if (!t) {
                    rc = sw_err_set(SW_ENOMEM, "out of memory");
                    break;
                }
                listed = t;
            }
            listed[nlisted++] = (char *)name;
        }
        line = nl + 1;
    }
    if (rc == 0) {
        /* Files that are not listed were not part of the save: not fatal (a user may add a
         * README), but worth saying. */
        char **names;
        int n;
        rc = list_files(dir, &names, &n);
        for (int i = 0; i < n && rc == 0; i++) {
            int found = 0;
            for (int j = 0; j < nlisted && !found; j++)
                found = strcmp(names[i], listed[j]) == 0;
            if (!found)
                sw_warn("%s/%s is not listed in %s (ignored)", dir, names[i], SW_CKPT_MANIFEST);
        }
        if (rc == 0) free_names(names, n);
    }
    free(listed);
    free(text);
    free(mpath);
    return rc;
}

/* ---- pruning and discovery ----------------------------------------------------------------- */

struct ckpt_entry {
    int64_t step;
    char *name;
};

static int cmp_entry(const void *a, const void *b) {
    int64_t x = ((const struct ckpt_entry *)a)->step, y = ((const struct ckpt_entry *)b)->step;
    return (x > y) - (x < y);
}

/* checkpoint-<N> folders of dir sorted by N (ascending). */
static int list_checkpoints(const char *dir, struct ckpt_entry **out, int *n) {
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return sw_err_errno("cannot open output folder '%s'", dir);
    int cap = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t step = ckpt_step_of(e->d_name);
        if (step < 0) continue;
        char *path = sw_path_join(dir, e->d_name);
        int is_dir = path ? sw_path_is_dir(path) : 0;
        free(path);
        if (is_dir != 1) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            struct ckpt_entry *t = realloc(*out, (size_t)cap * sizeof *t);
            if (!t) {
                rc = sw_err_set(SW_ENOMEM, "out of memory");
                break;
            }
            *out = t;
        }
        (*out)[*n].step = step;
        if (!((*out)[*n].name = strdup(e->d_name))) {
            rc = sw_err_set(SW_ENOMEM, "out of memory");
            break;
        }
        (*n)++;
    }
    closedir(d);
    if (*n) qsort(*out, (size_t)*n, sizeof **out, cmp_entry);
    return rc;
}

static void free_entries(struct ckpt_entry *e, int n) {
    for (int i = 0; i < n; i++)
        free(e[i].name);
    free(e);
}

int sw_ckpt_prune(const char *output_dir, int limit, int64_t keep_step) {
    if (limit <= 0) return 0;
    struct ckpt_entry *e;
    int n;
    int rc = list_checkpoints(output_dir, &e, &n);
    int remaining = n;
    /* Oldest first; the newest (index n-1) and the best are never candidates. */
    for (int i = 0; i + 1 < n && remaining > limit && rc == 0; i++) {
        if (e[i].step == keep_step) continue;
        char *path = sw_path_join(output_dir, e[i].name);
        if (!path) {
            rc = sw_err_set(SW_ENOMEM, "out of memory");
            break;
        }
        sw_info("deleting %s (save_total_limit %d)", path, limit);
        rc = sw_rm_tree(path);
        free(path);
        remaining--;
    }
    free_entries(e, n);
    if (rc == 0) rc = sw_fsync_path(output_dir, 1);
    return rc;
}

int sw_ckpt_find_latest(const char *output_dir, char **path) {
    *path = NULL;
    struct ckpt_entry *e;
    int n;
    SW_TRY(list_checkpoints(output_dir, &e, &n));
    int rc = 0;
    if (n == 0)
        rc = sw_err_set(SW_ENOTFOUND, "%s: no checkpoint-<step> folder to resume from", output_dir);
    else if (!(*path = sw_path_join(output_dir, e[n - 1].name)))
        rc = sw_err_set(SW_ENOMEM, "out of memory");
    free_entries(e, n);
    return rc;
}

/* Remove .checkpoint-*.tmp-<pid> / .old-<pid> folders of processes that no longer run (a crash
 * mid-save) or of this process (an earlier failed save). */
static void remove_stale_tmp(const char *output_dir) {
    DIR *d = opendir(output_dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, ".checkpoint-", 12) != 0) continue;
        const char *t = strstr(e->d_name, ".tmp-");
        if (!t) t = strstr(e->d_name, ".old-");
        if (!t) continue;
        char *end;
        long pid = strtol(t + 5, &end, 10);
        if (pid <= 0 || *end) continue;
        if (pid != (long)getpid() && !(kill((pid_t)pid, 0) != 0 && errno == ESRCH)) continue;
        char *path = sw_path_join(output_dir, e->d_name);
        if (path) {
            sw_debug("removing stale %s", path);
            sw_rm_tree_quiet(path);
            free(path);
        }
    }
    closedir(d);
}

/* ---- saving ------------------------------------------------------------------------------- */

static int save_weights(const struct sw_ckpt_save_args *a, const char *tmp) {
    struct sw_st_writer *w = NULL;
    SW_TRY(sw_st_writer_new(&w));
    int rc = 0;
    /* transformers refuses safetensors files without format "pt" metadata. */
    SW_TRY_GOTO(rc, sw_st_writer_set_metadata(w, "format", "pt"), out);
    for (int i = 0; i < a->n_tensors; i++) {
        const struct sw_tensor *t = &a->tensors[i];
        if (!t->name) {
            rc = sw_err_set(SW_EINVAL, "checkpoint: tensor %d has no name", i);
            goto out;
        }
        SW_TRY_GOTO(rc, sw_st_writer_add(w, t->name, t), out);
    }
    if (a->lora) {
        char *path = sw_path_join(tmp, CKPT_ADAPTER_MODEL);
        rc = path ? sw_st_writer_write(w, path) : sw_err_set(SW_ENOMEM, "out of memory");
        free(path);
    } else {
        rc = sw_st_writer_write_sharded(
            w, tmp, "model", a->max_shard_bytes ? a->max_shard_bytes : SW_CKPT_DEFAULT_SHARD);
    }
out:
    sw_st_writer_free(w);
    return rc;
}

static int save_config(const struct sw_ckpt_save_args *a, const char *tmp) {
    if (a->lora) return write_text(tmp, CKPT_ADAPTER_CONFIG, sw_adapter_config_json(a->lora_cfg));
    /* The weights are float32 master weights; say so, so loaders do not guess another dtype. */
    struct sw_model_config c = *a->config;
    snprintf(c.torch_dtype, sizeof c.torch_dtype, "float32");
    char *path = sw_path_join(tmp, "config.json");
    int rc = path ? sw_model_config_write(&c, path) : sw_err_set(SW_ENOMEM, "out of memory");
    free(path);
    return rc;
}

static int has_file(const char *dir, const char *name) {
    char *p = dir ? sw_path_join(dir, name) : NULL;
    int ok = p && access(p, F_OK) == 0;
    free(p);
    return ok;
}

/* A checkpoint is a complete HF folder: the tokenizer files (the model folder's, or
 * tokenizer_dir's when the model folder has no tokenizer or there is none) and a
 * generation_config.json (the model folder's, else the one derived from config.json). */
static int copy_model_files(const struct sw_ckpt_save_args *a, const char *tmp) {
    const char *tok = a->model_dir;
    if (!has_file(tok, "tokenizer.json") && !has_file(tok, "tokenizer.json.gz") && a->tokenizer_dir)
        tok = a->tokenizer_dir;
    int rc = 0;
    for (int i = 0; tok && copied_files[i] && rc == 0; i++) {
        char *src = sw_path_join(tok, copied_files[i]);
        char *dst = sw_path_join(tmp, copied_files[i]);
        if (!src || !dst)
            rc = sw_err_set(SW_ENOMEM, "out of memory");
        else if (access(src, F_OK) == 0)
            rc = copy_file(src, dst);
        free(src);
        free(dst);
    }
    if (rc < 0) return rc;
    char *dst = sw_path_join(tmp, "generation_config.json");
    if (!dst) return sw_err_set(SW_ENOMEM, "out of memory");
    if (has_file(a->model_dir, "generation_config.json")) {
        char *src = sw_path_join(a->model_dir, "generation_config.json");
        rc = src ? copy_file(src, dst) : sw_err_set(SW_ENOMEM, "out of memory");
        free(src);
    } else if (a->config) {
        char *text = sw_generation_config_default_json(a->config);
        rc = text ? sw_write_file_atomic(dst, text, strlen(text))
                  : sw_err_set(SW_ENOMEM, "out of memory");
        free(text);
    }
    free(dst);
    return rc;
}

static const struct sw_tensor *find_tensor(const struct sw_ckpt_save_args *a, const char *name) {
    for (int i = 0; i < a->n_tensors; i++)
        if (a->tensors[i].name && strcmp(a->tensors[i].name, name) == 0) return &a->tensors[i];
    return NULL;
}

static int save_optimizer(const struct sw_ckpt_save_args *a, const char *tmp) {
    struct sw_adamw *o = a->optimizer;
    if (!o) return 0;
    struct sw_st_writer *w = NULL;
    SW_TRY(sw_st_writer_new(&w));
    const struct sw_adamw_config *c = sw_adamw_get_config(o);
    char buf[64];
    int rc = 0;
    SW_TRY_GOTO(rc, sw_st_writer_set_metadata(w, "format", "sw-adamw"), out);
    snprintf(buf, sizeof buf, "%" PRId64, sw_adamw_steps(o));
    SW_TRY_GOTO(rc, sw_st_writer_set_metadata(w, "step", buf), out);
    snprintf(buf, sizeof buf, "%.17g,%.17g", c->beta1, c->beta2);
    SW_TRY_GOTO(rc, sw_st_writer_set_metadata(w, "betas", buf), out);
    snprintf(buf, sizeof buf, "%.17g", c->eps);
    SW_TRY_GOTO(rc, sw_st_writer_set_metadata(w, "eps", buf), out);
    snprintf(buf, sizeof buf, "%.17g", c->weight_decay);
    SW_TRY_GOTO(rc, sw_st_writer_set_metadata(w, "weight_decay", buf), out);
    for (int i = 0; i < sw_adamw_count(o); i++) {
        int64_t numel;
        float *m, *v;
        const char *name = sw_adamw_slot(o, i, &numel, &m, &v);
        const struct sw_tensor *p = find_tensor(a, name);
        struct sw_tensor tm, tv;
        /* The parameter's shape when it is among the saved tensors, else flat. */
        if (p && sw_tensor_numel(p) == numel) {
            sw_tensor_init(&tm, SW_DTYPE_F32, p->ndim, p->shape, m);
            sw_tensor_init(&tv, SW_DTYPE_F32, p->ndim, p->shape, v);
        } else {
            sw_tensor_init(&tm, SW_DTYPE_F32, 1, &numel, m);
            sw_tensor_init(&tv, SW_DTYPE_F32, 1, &numel, v);
        }
        char key[600];
        snprintf(key, sizeof key, "%s.exp_avg", name);
        SW_TRY_GOTO(rc, sw_st_writer_add(w, key, &tm), out);
        snprintf(key, sizeof key, "%s.exp_avg_sq", name);
        SW_TRY_GOTO(rc, sw_st_writer_add(w, key, &tv), out);
    }
    char *path = sw_path_join(tmp, CKPT_OPTIMIZER);
    rc = path ? sw_st_writer_write(w, path) : sw_err_set(SW_ENOMEM, "out of memory");
    free(path);
out:
    sw_st_writer_free(w);
    return rc;
}

static int save_state(const struct sw_ckpt_save_args *a, const char *tmp) {
    SW_TRY(write_text(tmp, CKPT_TRAINER_STATE, sw_ckpt_trainer_state_json(a->state)));
    SW_TRY(write_text(tmp, CKPT_TRAINING_STATE, sw_ckpt_training_state_json(a->state)));
    SW_TRY(write_text(tmp, CKPT_RNG_STATE, sw_ckpt_rng_state_json(a->state)));
    if (a->args) SW_TRY(write_text(tmp, CKPT_ARGS, sw_json_dump(a->args)));
    return 0;
}

/* Put the finished tmp folder in place of final (which may exist: same step saved twice). */
static int install(const char *output_dir, const char *tmp, const char *final, int64_t step) {
    SW_TRY(sw_fsync_path(tmp, 1));
    char old[4096];
    int had_old = 0;
    if (access(final, F_OK) == 0) {
        snprintf(old, sizeof old, "%s/.checkpoint-%" PRId64 ".old-%ld", output_dir, step,
                 (long)getpid());
        SW_TRY(sw_rm_tree(old));
        if (rename(final, old) != 0) return sw_err_errno("cannot move '%s' aside", final);
        had_old = 1;
    }
    if (rename(tmp, final) != 0) {
        int rc = sw_err_errno("cannot rename '%s' to '%s'", tmp, final);
        if (had_old) rename(old, final);
        return rc;
    }
    SW_TRY(sw_fsync_path(output_dir, 1));
    if (had_old) SW_TRY(sw_rm_tree(old));
    return 0;
}

int sw_ckpt_save(const struct sw_ckpt_save_args *a, char **out_path) {
    if (out_path) *out_path = NULL;
    if (!a->output_dir || !*a->output_dir || a->step < 0 || !a->state ||
        (a->lora ? !a->lora_cfg : !a->config) || a->n_tensors < 0)
        return sw_err_set(SW_EINVAL, "checkpoint: incomplete save arguments");
    SW_TRY(sw_mkdir_p(a->output_dir));
    remove_stale_tmp(a->output_dir);
    char tmp[4096], final[4096];
    int n1 = snprintf(tmp, sizeof tmp, "%s/.checkpoint-%" PRId64 ".tmp-%ld", a->output_dir, a->step,
                      (long)getpid());
    int n2 = snprintf(final, sizeof final, "%s/checkpoint-%" PRId64, a->output_dir, a->step);
    if (n1 >= (int)sizeof tmp || n2 >= (int)sizeof final)
        return sw_err_set(SW_EINVAL, "checkpoint: output_dir path is too long");
    SW_TRY(sw_rm_tree(tmp));
    if (mkdir(tmp, 0755) != 0) return sw_err_errno("cannot create '%s'", tmp);
    int rc = 0;
    SW_TRY_GOTO(rc, save_weights(a, tmp), fail);
    SW_TRY_GOTO(rc, save_config(a, tmp), fail);
    SW_TRY_GOTO(rc, copy_model_files(a, tmp), fail);
    SW_TRY_GOTO(rc, save_optimizer(a, tmp), fail);
    SW_TRY_GOTO(rc, save_state(a, tmp), fail);
    SW_TRY_GOTO(rc, sw_ckpt_write_manifest(tmp), fail);
    SW_TRY_GOTO(rc, install(a->output_dir, tmp, final, a->step), fail);
    if (a->save_total_limit > 0)
        SW_TRY(sw_ckpt_prune(a->output_dir, a->save_total_limit,
                             a->state->has_best ? a->state->best_step : -1));
    if (out_path && !(*out_path = strdup(final))) return sw_err_set(SW_ENOMEM, "out of memory");
    return 0;
fail:
    sw_rm_tree_quiet(tmp);
    return sw_err_wrap(rc, "saving checkpoint-%" PRId64, a->step);
}
