/* sw_run_dir — the run folder of a training run (see sw_run_dir.h): versioned folders as
 * ms-swift names them, the refusal to mix two runs in one folder, finding the newest checkpoint
 * across runs, and undoing the folders of a run that failed before it recorded anything. */
#include "sw_run_dir.h"

#include "sw_ckpt.h"
#include "sw_err.h"
#include "sw_io.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ms-swift's re.match(r'v(\d+)', name): the number after a leading 'v', or -1. */
static long long version_of(const char *name) {
    if (name[0] != 'v' || name[1] < '0' || name[1] > '9') return -1;
    long long v = 0;
    for (const char *p = name + 1; *p >= '0' && *p <= '9'; p++) {
        if (v > (LLONG_MAX - 9) / 10) return -1;
        v = v * 10 + (*p - '0');
    }
    return v;
}

static long long next_version(const char *dir) {
    long long best = -1;
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long long v = version_of(e->d_name);
        if (v > best) best = v;
    }
    closedir(d);
    return best + 1;
}

int sw_run_dir_create(const char *output_dir, char **run_dir, int *made_parent) {
    *run_dir = NULL;
    struct stat st;
    int existed = stat(output_dir, &st) == 0;
    if (existed && !S_ISDIR(st.st_mode))
        return sw_err_set(SW_EINVAL, "output_dir '%s' is a file, not a folder", output_dir);
    SW_TRY(sw_mkdir_p(output_dir));
    if (made_parent) *made_parent = !existed;
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    long long v = next_version(output_dir);
    for (int tries = 0; tries < 1000; tries++, v++) {
        char name[64];
        snprintf(name, sizeof name, "v%lld-%s", v, stamp);
        char *path = sw_path_join(output_dir, name);
        if (!path) return sw_err_set(SW_ENOMEM, "out of memory");
        if (mkdir(path, 0777) == 0) {
            *run_dir = path;
            return 0;
        }
        int e = errno;
        free(path);
        if (e != EEXIST) {
            errno = e;
            return sw_err_errno("cannot create a run folder in '%s'", output_dir);
        }
    }
    return sw_err_set(SW_EIO, "%s: no free vN-%s run folder name", output_dir, stamp);
}

/* mtime of path in nanoseconds, or -1. */
static long long mtime_ns(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    return (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
}

int sw_run_dir_latest_checkpoint(const char *output_dir, char **path) {
    *path = NULL;
    DIR *d = opendir(output_dir);
    if (!d)
        return sw_err_errno("resume_from_checkpoint latest: cannot open output_dir '%s'",
                            output_dir);
    /* The versioned run with the highest N that holds a checkpoint. */
    char *best = NULL;
    long long best_v = -1;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) && rc == 0) {
        long long v = version_of(e->d_name);
        if (v <= best_v) continue;
        char *run = sw_path_join(output_dir, e->d_name);
        if (!run) {
            rc = sw_err_set(SW_ENOMEM, "out of memory");
            break;
        }
        char *ck = NULL;
        if (sw_path_is_dir(run) == 1 && sw_ckpt_find_latest(run, &ck) == 0) {
            free(best);
            best = ck;
            best_v = v;
        }
        sw_err_clear();
        free(run);
    }
    closedir(d);
    if (rc < 0) {
        free(best);
        return rc;
    }
    /* Checkpoints of add_version-false runs directly in output_dir. */
    char *own = NULL;
    if (sw_ckpt_find_latest(output_dir, &own) < 0) own = NULL;
    sw_err_clear();
    if (own && (!best || mtime_ns(own) > mtime_ns(best))) {
        free(best);
        best = own;
    } else {
        free(own);
    }
    if (!best)
        return sw_err_set(SW_ENOTFOUND,
                          "%s: no checkpoint-<step> folder to resume from (in it or in its "
                          "vN-* run folders)",
                          output_dir);
    *path = best;
    return 0;
}

int sw_run_dir_check_unused(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0; /* absent (or unreadable: mkdir will say) */
    char found[200] = "";
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        int hit = 0;
        if (strcmp(n, "logging.jsonl") == 0) {
            char *p = sw_path_join(dir, n);
            struct stat st;
            hit = p && stat(p, &st) == 0 && st.st_size > 0;
            free(p);
        } else if (strncmp(n, "checkpoint-", 11) == 0 && n[11] >= '0' && n[11] <= '9') {
            hit = 1;
        }
        if (hit && strlen(found) + strlen(n) + 8 < sizeof found)
            snprintf(found + strlen(found), sizeof found - strlen(found), "%s%s",
                     *found ? ", " : "", n);
    }
    closedir(d);
    if (!*found) return 0;
    return sw_err_set(SW_EINVAL,
                      "output_dir '%s' already holds a run (%s) and --add_version is false: "
                      "continue it with --resume_from_checkpoint latest, choose another "
                      "output_dir, or drop --add_version false (each run then gets its own "
                      "vN-YYYYMMDD-HHMMSS folder)",
                      dir, found);
}

int sw_run_dir_of_checkpoint(const char *output_dir, const char *ckpt, char **run_dir) {
    *run_dir = NULL;
    char ck[PATH_MAX], out[PATH_MAX];
    if (!realpath(ckpt, ck) || !realpath(output_dir, out)) return 0; /* output_dir is new */
    char *slash = strrchr(ck, '/');
    if (!slash || slash == ck) return 0;
    *slash = '\0'; /* ck is now the checkpoint's parent */
    if (strcmp(ck, out) == 0)
        return (*run_dir = strdup(output_dir)) ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
    char *s2 = strrchr(ck, '/');
    if (!s2) return 0;
    *s2 = '\0';
    if (strcmp(s2 == ck ? "/" : ck, out) != 0) return 0;
    return (*run_dir = sw_path_join(output_dir, s2 + 1)) ? 0
                                                         : sw_err_set(SW_ENOMEM, "out of memory");
}

/* Remove path when it is an empty file or an empty folder. */
static void remove_if_empty(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode))
        rmdir(path); /* fails, harmlessly, when not empty */
    else if (S_ISREG(st.st_mode) && st.st_size == 0)
        unlink(path);
}

void sw_run_dir_cleanup(const char *output_dir, const char *run_dir, int remove_run_dir,
                        int made_parent, const char *const *fresh_files) {
    if (run_dir) {
        for (int i = 0; fresh_files && fresh_files[i]; i++) {
            char *p = sw_path_join(run_dir, fresh_files[i]);
            if (p) remove_if_empty(p);
            free(p);
        }
        if (remove_run_dir) rmdir(run_dir);
    }
    if (made_parent && output_dir) rmdir(output_dir);
}
