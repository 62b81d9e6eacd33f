/* sw_io — file helpers shared by every format.
 *
 * Atomic output: a temp file made with mkstemp() next to the final path (same folder, hence the
 * same file system, so rename() is atomic), written, fsync'ed, renamed, and the folder fsync'ed
 * so the new directory entry survives a crash. Readers never see a half-written file.
 * Whole-file reads are gzip-transparent (every member of a multi-member stream, as gzip -d does)
 * and bounded by a caller's maximum, checked while inflating so a small bomb cannot exhaust
 * memory. Full reads/writes turn short counts into SW_ETRUNC / SW_EPIPE with a message. */
#include "sw_io.h"

#include "sw_err.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define SW_IO_CHUNK (64u * 1024u)
#define SW_IO_DEFAULT_MAX ((size_t)4 << 30)

/* ---- atomic output ---------------------------------------------------------------------- */

static mode_t io_umask = 022;
static pthread_once_t io_umask_once = PTHREAD_ONCE_INIT;

/* The process umask without the racy umask(0)/umask(old) dance: Linux reports it in
 * /proc/self/status. mkstemp creates 0600 files; outputs should get the usual 0666 & ~umask. */
static void io_umask_read(void) {
    FILE *fp = fopen("/proc/self/status", "re");
    if (!fp) return;
    char line[256];
    while (fgets(line, sizeof line, fp)) {
        unsigned m;
        if (sscanf(line, "Umask: %o", &m) == 1) {
            io_umask = (mode_t)(m & 0777);
            break;
        }
    }
    fclose(fp);
}

/* The folder part of path ("." when there is none), malloc'ed. */
static char *io_dirname(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

int sw_atomic_open(struct sw_atomic_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    size_t plen = strlen(path);
    if (plen == 0 || path[plen - 1] == '/')
        return sw_err_set(SW_EINVAL, "cannot write '%s': not a file name", path);
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dlen = slash ? (size_t)(slash - path) + 1 : 0; /* keeps the slash */

    char pid[24];
    int pn = snprintf(pid, sizeof pid, "%ld", (long)getpid());
    /* "<dir>/.<base>.tmp.<pid>.XXXXXX" */
    size_t cap = dlen + 1 + strlen(base) + 5 + (size_t)pn + 8;
    f->path = strdup(path);
    f->tmp = malloc(cap);
    if (!f->path || !f->tmp) {
        sw_atomic_abort(f);
        return sw_err_set(SW_ENOMEM, "cannot write '%s': out of memory", path);
    }
    snprintf(f->tmp, cap, "%.*s.%s.tmp.%s.XXXXXX", (int)dlen, path, base, pid);

    int fd = mkostemp(f->tmp, O_CLOEXEC);
    if (fd < 0) {
        int rc = sw_err_errno("cannot create a temporary file for '%s'", path);
        free(f->tmp);
        f->tmp = NULL; /* nothing to remove */
        sw_atomic_abort(f);
        return rc;
    }
    pthread_once(&io_umask_once, io_umask_read);
    if (fchmod(fd, 0666 & ~io_umask) != 0) {
        int rc = sw_err_errno("cannot set the mode of '%s'", f->tmp);
        close(fd);
        sw_atomic_abort(f);
        return rc;
    }
    f->fp = fdopen(fd, "wb");
    if (!f->fp) {
        int rc = sw_err_errno("cannot open '%s'", f->tmp);
        close(fd);
        sw_atomic_abort(f);
        return rc;
    }
    return 0;
}

int sw_atomic_commit(struct sw_atomic_file *f) {
    if (!f->fp || !f->tmp || !f->path) {
        sw_atomic_abort(f);
        return sw_err_set(SW_ESTATE, "atomic file: commit without a successful open");
    }
    int rc = 0;
    if (fflush(f->fp) != 0 || ferror(f->fp)) {
        rc = sw_err_errno("cannot write '%s'", f->path);
    } else if (fsync(fileno(f->fp)) != 0) {
        rc = sw_err_errno("cannot sync '%s'", f->path);
    }
    FILE *fp = f->fp;
    f->fp = NULL;
    if (fclose(fp) != 0 && rc == 0) rc = sw_err_errno("cannot close '%s'", f->path);
    if (rc == 0 && rename(f->tmp, f->path) != 0)
        rc = sw_err_errno("cannot rename '%s' to '%s'", f->tmp, f->path);
    if (rc < 0) {
        sw_atomic_abort(f);
        return rc;
    }
    char *dir = io_dirname(f->path);
    rc = dir ? sw_fsync_path(dir, 1) : sw_err_set(SW_ENOMEM, "out of memory");
    free(dir);
    free(f->tmp); /* renamed: nothing left to remove */
    f->tmp = NULL;
    sw_atomic_abort(f);
    return rc;
}

void sw_atomic_abort(struct sw_atomic_file *f) {
    if (!f) return;
    if (f->fp) fclose(f->fp);
    if (f->tmp) unlink(f->tmp);
    free(f->tmp);
    free(f->path);
    memset(f, 0, sizeof *f);
}

int sw_write_file_atomic(const char *path, const void *data, size_t len) {
    struct sw_atomic_file f;
    SW_TRY(sw_atomic_open(&f, path));
    int rc = sw_write_full(f.fp, data, len, path);
    if (rc < 0) {
        sw_atomic_abort(&f);
        return rc;
    }
    return sw_atomic_commit(&f);
}

/* ---- whole-file reads ------------------------------------------------------------------- */

/* read() until n bytes or EOF, retrying on EINTR. Returns the count or -1 with errno. */
static ssize_t io_read_some(int fd, void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* A growable output buffer whose capacity never passes limit + 1, so one byte past the caller's
 * maximum is detected without allocating more than it. */
struct io_buf {
    char *p;
    size_t len, cap, limit;
};

static int io_buf_reserve(struct io_buf *b, size_t want, const char *name) {
    if (want <= b->cap) return 0;
    size_t hard = b->limit + 1;
    size_t cap = b->cap ? b->cap : SW_IO_CHUNK;
    while (cap < want && cap < hard)
        cap = cap > hard / 2 ? hard : cap * 2;
    if (cap > hard) cap = hard;
    if (cap < want) cap = want;
    char *p = realloc(b->p, cap);
    if (!p) return sw_err_set(SW_ENOMEM, "'%s': out of memory reading %zu bytes", name, cap);
    b->p = p;
    b->cap = cap;
    return 0;
}

static int io_too_big(const char *name, size_t limit) {
    return sw_err_set(SW_ERANGE, "'%s': larger than the limit of %zu bytes", name, limit);
}

static int io_read_plain(int fd, const char *name, struct io_buf *b) {
    for (;;) {
        if (b->len > b->limit) return io_too_big(name, b->limit);
        if (b->len == b->cap) SW_TRY(io_buf_reserve(b, b->len + 1, name));
        size_t room = b->cap - b->len;
        ssize_t r =
            io_read_some(fd, b->p + b->len, room < SW_IO_CHUNK * 16 ? room : SW_IO_CHUNK * 16);
        if (r < 0) return sw_err_errno("cannot read '%s'", name);
        if (r == 0) return 0;
        b->len += (size_t)r;
    }
}

static int io_zerr(z_stream *zs, int ret, const char *name) {
    if (ret == Z_MEM_ERROR) return sw_err_set(SW_ENOMEM, "'%s': gzip: out of memory", name);
    return sw_err_set(SW_EFORMAT, "'%s': gzip: %s", name, zs->msg ? zs->msg : "invalid data");
}

/* Inflate every gzip member of the input (the first bytes are already in in[0..have)).
 * Between members only another member or zero padding (as tar/dd leave) is accepted. */
static int io_read_gzip(int fd, const char *name, unsigned char *in, size_t have,
                        struct io_buf *b) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    int ret = inflateInit2(&zs, 15 + 16);
    if (ret != Z_OK) return io_zerr(&zs, ret, name);
    int rc = 0, eof = 0, in_member = 1, padding = 0, member = 1;
    zs.next_in = in;
    zs.avail_in = (uInt)have;
    for (;;) {
        if (zs.avail_in == 0 && !eof) {
            ssize_t r = io_read_some(fd, in, SW_IO_CHUNK);
            if (r < 0) {
                rc = sw_err_errno("cannot read '%s'", name);
                break;
            }
            if (r == 0) eof = 1;
            zs.next_in = in;
            zs.avail_in = (uInt)r;
        }
        if (zs.avail_in == 0 && eof) {
            if (in_member)
                rc = sw_err_set(SW_ETRUNC, "'%s': truncated gzip data (inside member %d)", name,
                                member);
            break;
        }
        if (!in_member) {
            unsigned char c = *zs.next_in;
            if (padding || c == 0) {
                padding = 1;
                while (zs.avail_in && *zs.next_in == 0)
                    zs.next_in++, zs.avail_in--;
                if (zs.avail_in == 0) continue;
                rc =
                    sw_err_set(SW_EFORMAT, "'%s': gzip: trailing garbage after zero padding", name);
                break;
            }
            if (c != 0x1f) {
                rc = sw_err_set(SW_EFORMAT, "'%s': gzip: trailing garbage after member %d", name,
                                member);
                break;
            }
            in_member = 1;
            member++;
        }
        if (b->len == b->cap) {
            if (b->len > b->limit) {
                rc = io_too_big(name, b->limit);
                break;
            }
            if ((rc = io_buf_reserve(b, b->len + 1, name)) < 0) break;
        }
        zs.next_out = (unsigned char *)b->p + b->len;
        size_t room = b->cap - b->len;
        zs.avail_out = room > (1u << 30) ? (1u << 30) : (uInt)room;
        uInt before = zs.avail_out;
        ret = inflate(&zs, Z_NO_FLUSH);
        b->len += before - zs.avail_out;
        if (b->len > b->limit) {
            rc = io_too_big(name, b->limit);
            break;
        }
        if (ret == Z_STREAM_END) {
            in_member = 0;
            inflateReset(&zs);
        } else if (ret == Z_BUF_ERROR) {
            continue; /* needs more input or output space: the loop provides either */
        } else if (ret != Z_OK) {
            rc = io_zerr(&zs, ret, name);
            break;
        }
    }
    inflateEnd(&zs);
    return rc;
}

int sw_read_file(const char *path, char **data, size_t *len, size_t max_len) {
    *data = NULL;
    *len = 0;
    if (max_len == 0) max_len = SW_IO_DEFAULT_MAX;
    int is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "<stdin>" : path;
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sw_err_errno("cannot open '%s'", path);

    struct io_buf b = {NULL, 0, 0, max_len};
    unsigned char *in = malloc(SW_IO_CHUNK);
    int rc = 0;
    if (!in) {
        rc = sw_err_set(SW_ENOMEM, "'%s': out of memory", name);
        goto out;
    }
    /* At least two bytes (or EOF) decide between plain and gzip; a pipe may deliver one. */
    ssize_t have = io_read_some(fd, in, 2);
    if (have < 0) {
        rc = sw_err_errno("cannot read '%s'", name);
        goto out;
    }
    if (have == 2 && in[0] == 0x1f && in[1] == 0x8b) {
        rc = io_read_gzip(fd, name, in, (size_t)have, &b);
    } else {
        struct stat st;
        size_t hint = (size_t)have + 1;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
            if ((uint64_t)st.st_size > max_len) {
                rc = io_too_big(name, max_len);
                goto out;
            }
            hint = (size_t)st.st_size + 1;
        }
        if ((rc = io_buf_reserve(&b, hint, name)) < 0) goto out;
        memcpy(b.p, in, (size_t)have);
        b.len = (size_t)have;
        rc = io_read_plain(fd, name, &b);
    }
    if (rc == 0 && b.len == b.cap) rc = io_buf_reserve(&b, b.len + 1, name);
    if (rc == 0) {
        b.p[b.len] = '\0';
        *data = b.p;
        *len = b.len;
        b.p = NULL;
    }
out:
    free(in);
    free(b.p);
    if (!is_stdin) close(fd);
    return rc;
}

/* ---- mmap ------------------------------------------------------------------------------- */

int sw_mmap_open(struct sw_mmap *m, const char *path) {
    m->data = NULL;
    m->len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sw_err_errno("cannot open '%s'", path);
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = sw_err_errno("cannot stat '%s'", path);
    } else if (!S_ISREG(st.st_mode)) {
        rc = sw_err_set(SW_EINVAL, "cannot map '%s': not a regular file", path);
    } else if ((uint64_t)st.st_size > SIZE_MAX) {
        rc = sw_err_set(SW_ERANGE, "cannot map '%s': too large", path);
    } else if (st.st_size > 0) { /* mmap of length 0 is EINVAL: an empty file maps to NULL/0 */
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            rc = sw_err_errno("cannot map '%s'", path);
        } else {
            m->data = p;
            m->len = (size_t)st.st_size;
        }
    }
    close(fd);
    return rc;
}

void sw_mmap_close(struct sw_mmap *m) {
    if (!m) return;
    if (m->data && m->len) munmap(m->data, m->len);
    m->data = NULL;
    m->len = 0;
}

/* ---- full reads and writes -------------------------------------------------------------- */

int sw_read_full(FILE *fp, void *buf, size_t n, const char *what) {
    if (n == 0) return 0;
    size_t got = fread(buf, 1, n, fp);
    if (got == n) return 0;
    if (ferror(fp)) return sw_err_errno("%s: read failed", what);
    return sw_err_set(SW_ETRUNC, "%s: truncated: expected %zu bytes, got %zu", what, n, got);
}

int sw_write_full(FILE *fp, const void *buf, size_t n, const char *what) {
    if (n == 0) return 0;
    errno = 0;
    if (fwrite(buf, 1, n, fp) == n) return 0;
    if (errno == 0) errno = EIO;
    return sw_err_errno("cannot write '%s'", what);
}

/* ---- paths ------------------------------------------------------------------------------ */

int sw_path_is_dir(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return sw_err_errno("cannot stat '%s'", path);
    return S_ISDIR(st.st_mode) ? 1 : 0;
}

/* "ORG/NAME" with hub-legal characters ([A-Za-z0-9._-], not starting with '.' or '-'): what a
 * user copies from a model page. */
static int looks_like_hub_id(const char *s) {
    const char *slash = strchr(s, '/');
    if (!slash || strchr(slash + 1, '/') || slash == s || !slash[1]) return 0;
    for (const char *p = s; *p; p++) {
        if (p == slash) continue;
        int ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                 *p == '.' || *p == '_' || *p == '-';
        if (!ok) return 0;
    }
    return s[0] != '.' && s[0] != '-' && slash[1] != '.' && slash[1] != '-';
}

int sw_model_dir_check(const char *what, const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno != ENOENT) return sw_err_errno("%s: cannot stat '%s'", what, path);
        if (looks_like_hub_id(path))
            return sw_err_set(SW_ENOTFOUND,
                              "%s: no folder '%s' here; it looks like a hub id: download it with "
                              "`sw-fetch %s`, then pass the folder it prints",
                              what, path, path);
        return sw_err_set(SW_ENOTFOUND, "%s: no such folder '%s'", what, path);
    }
    if (!S_ISDIR(st.st_mode))
        return sw_err_set(SW_EINVAL,
                          "%s: '%s' is a file, not a model folder (a Hugging Face model folder "
                          "holds config.json and *.safetensors)",
                          what, path);
    char *cfg = sw_path_join(path, "config.json");
    if (!cfg) return sw_err_set(SW_ENOMEM, "out of memory");
    int rc = access(cfg, F_OK) == 0
                 ? 0
                 : sw_err_set(SW_ENOTFOUND,
                              "%s: '%s' is not a model folder: it has no config.json (a Hugging "
                              "Face model folder holds config.json and *.safetensors)",
                              what, path);
    free(cfg);
    return rc;
}

/* mkdir one component; an existing folder is success, an existing file is not. */
static int io_mkdir_one(const char *p) {
    if (mkdir(p, 0777) == 0) return 0;
    int e = errno;
    struct stat st;
    if (e == EEXIST || e == EISDIR || e == EROFS || e == EACCES) {
        if (stat(p, &st) == 0) {
            if (S_ISDIR(st.st_mode)) return 0;
            return sw_err_set(SW_EIO, "cannot create folder '%s': a file is in the way", p);
        }
    }
    errno = e;
    return sw_err_errno("cannot create folder '%s'", p);
}

int sw_mkdir_p(const char *path) {
    if (!path || !*path) return sw_err_set(SW_EINVAL, "cannot create a folder with an empty name");
    char *p = strdup(path);
    if (!p) return sw_err_set(SW_ENOMEM, "out of memory");
    int rc = 0;
    for (char *s = p + 1; *s && rc == 0; s++) {
        if (*s != '/' || s[-1] == '/') continue;
        *s = '\0';
        rc = io_mkdir_one(p);
        *s = '/';
    }
    if (rc == 0) rc = io_mkdir_one(p);
    free(p);
    return rc;
}

char *sw_path_join(const char *dir, const char *name) {
    size_t dl = strlen(dir), nl = strlen(name);
    if (dl == 0) return strdup(name);
    int sep = dir[dl - 1] != '/';
    char *s = malloc(dl + (size_t)sep + nl + 1);
    if (!s) return NULL;
    memcpy(s, dir, dl);
    if (sep) s[dl] = '/';
    memcpy(s + dl + sep, name, nl + 1);
    return s;
}

void sw_io_ignore_sigpipe(void) {
    signal(SIGPIPE, SIG_IGN);
}

/* ---- folders: remove a tree, sync a path -------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* rm -rf path without touching sw_err: 0, or the errno of the first failure. */
static int rm_tree_errno(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : errno;
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : (errno ? errno : EIO);
}

int sw_rm_tree(const char *path) {
    int e = rm_tree_errno(path);
    if (!e) return 0;
    errno = e;
    return sw_err_errno("cannot remove '%s'", path);
}

void sw_rm_tree_quiet(const char *path) {
    (void)rm_tree_errno(path);
}

int sw_fsync_path(const char *path, int is_dir) {
    int fd = open(path, (is_dir ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sw_err_errno("cannot open '%s' to sync it", path);
    /* a folder on a file system that cannot sync one (EINVAL, EROFS) is fine */
    int ok = fsync(fd) == 0 || errno == EINVAL || (is_dir && errno == EROFS);
    int rc = ok ? 0 : sw_err_errno("cannot fsync '%s'", path);
    close(fd);
    return rc;
}
