/* sw_io — file helpers shared by every format: atomic output (temp file in the same folder,
 * fsync, rename, fsync of the folder), whole-file reads (gzip-transparent), read-only mmap,
 * and full reads/writes that treat a short read as truncation. */
#ifndef SW_IO_H
#define SW_IO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* An output file that appears at its final path only on commit. */
struct sw_atomic_file {
    char *path; /* final path */
    char *tmp;  /* "<dir>/.<base>.tmp.<pid>.XXXXXX" (mkstemp) */
    FILE *fp;   /* write through this */
};

/* Create the temp file next to path. Returns 0 or SW_EIO/SW_ENOTFOUND with the message set. */
int sw_atomic_open(struct sw_atomic_file *f, const char *path);
/* Flush, fsync, close, rename onto path, fsync the folder. On failure the temp file is removed.
 * Either way f is released. */
int sw_atomic_commit(struct sw_atomic_file *f);
/* Remove the temp file and release f (for error paths). Accepts a zeroed or released f. */
void sw_atomic_abort(struct sw_atomic_file *f);

/* Write a whole buffer atomically to path. */
int sw_write_file_atomic(const char *path, const void *data, size_t len);

/* Read a whole file into a malloc'ed, NUL-terminated buffer (len excludes the NUL). A file
 * starting with the gzip magic is inflated (multi-member aware). max_len bounds the result
 * (0 = 4 GiB); bigger input is SW_ERANGE. "-" reads stdin. */
int sw_read_file(const char *path, char **data, size_t *len, size_t max_len);

/* Read-only private mapping of a whole file. */
struct sw_mmap {
    void *data;
    size_t len;
};
int sw_mmap_open(struct sw_mmap *m, const char *path);
void sw_mmap_close(struct sw_mmap *m);

/* fread/fwrite of exactly n bytes. A short read is SW_ETRUNC naming what; EPIPE is SW_EPIPE. */
int sw_read_full(FILE *fp, void *buf, size_t n, const char *what);
int sw_write_full(FILE *fp, const void *buf, size_t n, const char *what);

/* 1 if path is a directory, 0 if not, negative error if it cannot be stat'ed. */
int sw_path_is_dir(const char *path);
/* mkdir -p. */
int sw_mkdir_p(const char *path);
/* rm -rf path (a missing path is fine): 0 or an error naming it. sw_rm_tree_quiet is the
 * best-effort form for clean-up after another error: it leaves sw_err's message alone. */
int sw_rm_tree(const char *path);
void sw_rm_tree_quiet(const char *path);
/* fsync a file, or a folder (is_dir) so a rename inside it is durable; filesystems that cannot
 * sync a folder (EINVAL) count as success. */
int sw_fsync_path(const char *path, int is_dir);
/* Join a folder and a file name into a malloc'ed string (NULL on ENOMEM). */
char *sw_path_join(const char *dir, const char *name);

/* Check that path is a model folder before anything is loaded from it, so a user gets the
 * reason rather than the first file that happened to be missing: a missing path that looks like
 * a hub id ("Qwen/Qwen2.5-0.5B") says to fetch it with sw-fetch first; a file or a folder
 * without config.json is "not a model folder". what ("model", "--adapter") prefixes the
 * message. Returns 0 or SW_ENOTFOUND / SW_EINVAL. */
int sw_model_dir_check(const char *what, const char *path);

/* Ignore SIGPIPE so writes to a closed pipe return EPIPE (reported as SW_EPIPE). */
void sw_io_ignore_sigpipe(void);

#endif
