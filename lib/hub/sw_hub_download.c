/* sw_hub_download — moving files from the hub into place: a pool of worker threads, each with
 * its own libcurl handle (so keep-alive connections are reused file after file), downloading
 * into "<final>.incomplete" files that survive interruptions and continue with a Range request,
 * hashing the bytes as they arrive (sha256 for LFS, git's blob sha1 for plain files), and moving
 * a file to its final name only once its size and hash match what the hub published.
 *
 * The rules that keep the cache trustworthy:
 *   - bytes beyond the announced size are never written; a 206 must start where the partial
 *     file ends, a 200 after a Range request restarts the file;
 *   - a hash mismatch deletes the partial file (it cannot be trusted to resume) and fails the
 *     file with a message naming it; the final name is only ever reached through rename(2)
 *     after fsync(2), so a crash leaves either the old state or the verified file;
 *   - the same lock files as huggingface_hub (<cache>/.locks/<repo>/<etag>.lock, flock) keep two
 *     processes — sw-fetch or Python — from writing one blob at once;
 *   - folders are created below their root without following symlinks (sw_hub_mkdirs_below).
 * Transient failures (connection drops, timeouts, 429, 5xx) are retried with backoff; a retry
 * after an attempt that moved bytes continues at once from where it stopped. */
#include "sw_hub_impl.h"

#include "sw_err.h"
#include "sw_io.h"
#include "sw_log.h"
#include "sw_sha256.h"
#include "sw_signal.h"
#include "sw_strmap.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- hashing ---- */

enum hash_kind { HASH_SHA256, HASH_GIT_SHA1 };

struct hasher {
    enum hash_kind kind;
    struct sw_sha256 s;
    EVP_MD_CTX *c;
};

static int hasher_init(struct hasher *h, enum hash_kind kind, int64_t size) {
    memset(h, 0, sizeof *h);
    h->kind = kind;
    if (kind == HASH_SHA256) return sw_sha256_init(&h->s);
    if (!(h->c = EVP_MD_CTX_new()) || EVP_DigestInit_ex(h->c, EVP_sha1(), NULL) != 1)
        return sw_err_set(SW_ENOMEM, "sha1: cannot initialise");
    char hdr[40];
    int n = snprintf(hdr, sizeof hdr, "blob %lld", (long long)size);
    EVP_DigestUpdate(h->c, hdr, (size_t)n + 1); /* git hashes the header with its NUL */
    return 0;
}

static int hasher_update(struct hasher *h, const void *p, size_t n) {
    if (h->kind == HASH_SHA256) return sw_sha256_update(&h->s, p, n);
    return EVP_DigestUpdate(h->c, p, n) == 1 ? 0 : sw_err_set(SW_EIO, "sha1: update failed");
}

static void hasher_release(struct hasher *h) {
    sw_sha256_release(&h->s);
    EVP_MD_CTX_free(h->c);
    h->c = NULL;
}

static int hasher_final(struct hasher *h, char *hex, size_t cap) {
    uint8_t d[32];
    size_t n = 32;
    int rc = 0;
    if (h->kind == HASH_SHA256) {
        rc = sw_sha256_final(&h->s, d);
    } else {
        unsigned int dn = 0;
        n = 20;
        if (EVP_DigestFinal_ex(h->c, d, &dn) != 1 || dn != 20)
            rc = sw_err_set(SW_EIO, "sha1: final failed");
    }
    hasher_release(h);
    if (rc == 0 && cap > 2 * n) sw_hex(d, n, hex);
    return rc;
}

/* Feed [0, len) of fd into h (the part of a download already on disk). */
static int hash_fd(int fd, uint64_t len, struct hasher *h, const char *what) {
    enum { BUF = 1 << 20 };
    char *buf = malloc(BUF);
    if (!buf) return sw_err_set(SW_ENOMEM, "out of memory");
    uint64_t off = 0;
    int rc = 0;
    while (off < len && rc == 0) {
        size_t want = len - off < BUF ? (size_t)(len - off) : BUF;
        ssize_t r = pread(fd, buf, want, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            rc = r < 0 ? sw_err_errno("read '%s'", what)
                       : sw_err_set(SW_ETRUNC, "'%s' shrank while hashing", what);
            break;
        }
        rc = hasher_update(h, buf, (size_t)r);
        off += (uint64_t)r;
    }
    free(buf);
    return rc;
}

int sw_hub_hash_file(const char *path, int want_sha256, char *hex, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sw_err_errno("open '%s'", path);
    struct stat st;
    struct hasher h;
    int rc = fstat(fd, &st) < 0 ? sw_err_errno("stat '%s'", path) : 0;
    if (rc == 0)
        rc = hasher_init(&h, want_sha256 ? HASH_SHA256 : HASH_GIT_SHA1, (int64_t)st.st_size);
    if (rc == 0) {
        rc = hash_fd(fd, (uint64_t)st.st_size, &h, path);
        if (rc == 0)
            rc = hasher_final(&h, hex, cap);
        else
            hasher_release(&h);
    }
    close(fd);
    return rc;
}

/* ---- folders ---- */

int sw_hub_mkdirs_below(const char *root, const char *rel_dir) {
    if (!rel_dir || !*rel_dir || strcmp(rel_dir, ".") == 0) return 0;
    size_t n = strlen(root) + strlen(rel_dir) + 2;
    char *p = malloc(n);
    if (!p) return sw_err_set(SW_ENOMEM, "out of memory");
    snprintf(p, n, "%s/%s", root, rel_dir);
    int rc = 0;
    for (char *s = p + strlen(root) + 1;; s++) {
        if (*s != '/' && *s != '\0') continue;
        char c = *s;
        *s = '\0';
        struct stat st;
        if (lstat(p, &st) < 0) {
            if (errno != ENOENT || (mkdir(p, 0777) < 0 && errno != EEXIST) || lstat(p, &st) < 0) {
                rc = sw_err_errno("create folder '%s'", p);
                break;
            }
        }
        if (S_ISLNK(st.st_mode)) {
            rc = sw_err_set(SW_EIO,
                            "'%s' is a symbolic link: refusing to write through it (it could "
                            "point outside '%s')",
                            p, root);
            break;
        }
        if (!S_ISDIR(st.st_mode)) {
            rc = sw_err_set(SW_EIO, "'%s' exists and is not a folder", p);
            break;
        }
        *s = c;
        if (c == '\0') break;
    }
    free(p);
    return rc;
}

/* fsync the folder holding path, so a rename into it survives a crash. */
static void fsync_parent(const char *path) {
    char *d = strdup(path);
    if (!d) return;
    int fd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(d);
}

/* ---- the pool ---- */

struct slot {
    const char *path; /* guarded by pool.mu */
    _Atomic uint64_t done, total;
};

struct pool {
    const struct sw_hub_net *net;
    struct sw_hub_job *jobs;
    size_t njobs;
    atomic_size_t next;
    _Atomic uint64_t bytes_done;
    atomic_size_t files_done;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int running; /* workers not yet finished (mu) */
    struct slot *slots;
};

struct worker {
    struct pool *pool;
    struct slot *slot;
    void *curl;
    char buf[4 << 20]; /* write gathering for the partial file */
};

static void slot_set(struct pool *p, struct slot *s, const char *path, uint64_t done,
                     uint64_t total) {
    pthread_mutex_lock(&p->mu);
    s->path = path;
    atomic_store(&s->done, done);
    atomic_store(&s->total, total);
    pthread_mutex_unlock(&p->mu);
}

/* What one transfer attempt saw. */
enum { XF_OK = 0, XF_RESTART = 1, XF_FATAL = 2 };

struct xfer {
    int fd;
    uint64_t have; /* bytes in the partial file (and hashed) */
    int64_t size;  /* expected, -1 unknown */
    struct hasher *hs;
    enum hash_kind kind;
    struct sw_hub_headers h;
    int checked, discard, fail, fail_code;
    char fail_msg[600];
    uint64_t flushed; /* bytes handed to writeback */
    char *buf; /* libcurl hands over 16 KiB at a time: gathered here, written in big pwrites */
    size_t buffered, cap;
    uint64_t moved;   /* bytes received in this attempt */
    uint64_t fetched; /* payload bytes over all attempts */
    struct pool *pool;
    struct slot *slot;
    const char *path; /* repo path, for messages */
};

static size_t xf_fail(struct xfer *x, int how, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t xf_fail(struct xfer *x, int how, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->fail_msg, sizeof x->fail_msg, fmt, ap);
    va_end(ap);
    x->fail = how;
    x->fail_code = code;
    return 0; /* makes libcurl stop with CURLE_WRITE_ERROR */
}

static void xf_account(struct xfer *x, int64_t delta) {
    atomic_fetch_add(&x->slot->done, (uint64_t)delta);
    atomic_fetch_add(&x->pool->bytes_done, (uint64_t)delta);
}

/* Restart the partial file from byte 0 (the server ignored our Range or the file changed). */
static int xf_truncate(struct xfer *x) {
    if (ftruncate(x->fd, 0) < 0) return -1;
    hasher_release(x->hs);
    if (hasher_init(x->hs, x->kind, x->size) < 0) return -1;
    xf_account(x, -(int64_t)x->have);
    x->have = x->flushed = 0;
    x->buffered = 0;
    return 0;
}

/* Write the gathered bytes at their place in the partial file (they end at have). Returns 0 or
 * -1 with errno. */
static int xf_flush(struct xfer *x) {
    size_t off = 0;
    uint64_t at = x->have - x->buffered;
    while (off < x->buffered) {
        ssize_t w = pwrite(x->fd, x->buf + off, x->buffered - off, (off_t)(at + off));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        off += (size_t)w;
    }
    x->buffered = 0;
#ifdef SYNC_FILE_RANGE_WRITE
    /* Start writeback as we go, so the fsync before the rename has little left to do. */
    if (x->have - x->flushed >= (32u << 20)) {
        (void)sync_file_range(x->fd, (off_t)x->flushed, (off_t)(x->have - x->flushed),
                              SYNC_FILE_RANGE_WRITE);
        x->flushed = x->have;
    }
#endif
    return 0;
}

static size_t xf_write(char *ptr, size_t size, size_t nmemb, void *ud) {
    struct xfer *x = ud;
    size_t n = size * nmemb;
    if (!x->checked) {
        x->checked = 1;
        int st = x->h.status;
        if (st == 206) {
            if (x->h.range_start < 0 || (uint64_t)x->h.range_start != x->have)
                return xf_fail(x, XF_RESTART, 0, "resumed at byte %lld instead of %llu",
                               (long long)x->h.range_start, (unsigned long long)x->have);
            if (x->size >= 0 && x->h.range_total >= 0 && x->h.range_total != x->size)
                return xf_fail(x, XF_FATAL, SW_ECORRUPT,
                               "'%s': the server has %lld bytes, the listing announced %lld",
                               x->path, (long long)x->h.range_total, (long long)x->size);
        } else if (st == 200) {
            if (x->have > 0 && xf_truncate(x) < 0)
                return xf_fail(x, XF_FATAL, SW_EIO, "'%s': cannot restart the partial file: %s",
                               x->path, strerror(errno));
            if (x->size >= 0 && x->h.content_length >= 0 && x->h.content_length != x->size)
                return xf_fail(x, XF_FATAL, SW_ECORRUPT,
                               "'%s': the server sends %lld bytes, the listing announced %lld",
                               x->path, (long long)x->h.content_length, (long long)x->size);
        } else {
            x->discard = 1; /* an error page: its status is handled after the transfer */
        }
    }
    if (x->discard) return n;
    /* Bound what is written by what was announced (listing, else Content-Length/-Range). */
    int64_t bound = x->size >= 0                                     ? x->size
                    : x->h.range_total >= 0                          ? x->h.range_total
                    : x->h.content_length >= 0 && x->h.status == 200 ? x->h.content_length
                                                                     : -1;
    if (bound >= 0 && x->have + n > (uint64_t)bound)
        return xf_fail(x, XF_FATAL, SW_ECORRUPT,
                       "'%s': the server sent more than the %lld bytes announced", x->path,
                       (long long)bound);
    if (x->buffered + n > x->cap && x->buffered > 0 && xf_flush(x) < 0)
        return xf_fail(x, XF_FATAL, SW_EIO, "'%s': write failed: %s", x->path, strerror(errno));
    if (n > x->cap) { /* larger than the buffer: straight to the file */
        x->have += n;
        x->buffered = n;
        char *keep = x->buf;
        x->buf = ptr;
        int bad = xf_flush(x) < 0;
        x->buf = keep;
        if (bad)
            return xf_fail(x, XF_FATAL, SW_EIO, "'%s': write failed: %s", x->path, strerror(errno));
    } else {
        memcpy(x->buf + x->buffered, ptr, n);
        x->buffered += n;
        x->have += n;
    }
    if (hasher_update(x->hs, ptr, n) < 0)
        return xf_fail(x, XF_FATAL, SW_EIO, "'%s': hashing failed", x->path);
    x->moved += n;
    x->fetched += n;
    xf_account(x, (int64_t)n);
    return n;
}

static size_t xf_header(char *p, size_t size, size_t nmemb, void *ud) {
    struct xfer *x = ud;
    sw_hub_headers_feed(&x->h, p, size * nmemb, (double)time(NULL));
    return size * nmemb;
}

static int xf_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
    (void)ud, (void)a, (void)b, (void)c, (void)d;
    return sw_signal_pending() ? 1 : 0;
}

/* Take the cross-process lock (huggingface_hub's .lock file), waiting while another process
 * holds it; returns the fd (or -1 when there is no lock to take) or a negative sw_err. */
static int lock_take(const char *path, const char *what) {
    if (!path) return -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return sw_err_errno("open lock file '%s'", path);
    int said = 0;
    while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            close(fd);
            return sw_err_errno("lock '%s'", path);
        }
        if (!said++)
            sw_log(SW_LOG_INFO, "waiting for another process that is downloading '%s'", what);
        if (sw_signal_pending()) {
            close(fd);
            return sw_err_set(SW_EINTR, "interrupted");
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return fd;
}

static int file_size_is(const char *path, int64_t size) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && (size < 0 || st.st_size == size);
}

/* The hash kind that verifies f, and the expected value ("" when there is none). */
static enum hash_kind hash_for(const struct sw_hub_file *f, const char **want) {
    if (f->sha256[0]) {
        *want = f->sha256;
        return HASH_SHA256;
    }
    if (f->oid[0] && f->size >= 0) {
        *want = f->oid;
        return HASH_GIT_SHA1;
    }
    *want = "";
    return HASH_SHA256; /* nothing published: the sha256 only names the blob */
}

/* Download j into j->incomplete and verify it; on success the verified bytes are at j->final. */
static int job_transfer(struct worker *w, struct sw_hub_job *j) {
    struct pool *p = w->pool;
    const struct sw_hub_net *n = p->net;
    struct sw_hub_file *f = j->file;
    CURL *c = sw_hub_curl_handle(w->curl);
    const char *want;
    enum hash_kind kind = hash_for(f, &want);
    struct hasher hs;
    int fd = open(j->incomplete, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return sw_err_errno("open '%s'", j->incomplete);
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? sw_err_errno("stat '%s'", j->incomplete) : 0;
    uint64_t have = rc == 0 ? (uint64_t)st.st_size : 0;
    if (rc == 0 && (j->force || (f->size >= 0 && have > (uint64_t)f->size))) {
        if (ftruncate(fd, 0) < 0) rc = sw_err_errno("truncate '%s'", j->incomplete);
        have = 0;
    }
    if (rc == 0) rc = hasher_init(&hs, kind, f->size);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    if (have > 0) {
        sw_log(SW_LOG_DEBUG, "'%s': resuming at byte %llu", f->path, (unsigned long long)have);
        rc = hash_fd(fd, have, &hs, j->incomplete);
    }
    struct xfer x = {.fd = fd,
                     .have = have,
                     .size = f->size,
                     .hs = &hs,
                     .kind = kind,
                     .flushed = have,
                     .pool = p,
                     .slot = w->slot,
                     .path = f->path,
                     .buf = w->buf,
                     .cap = sizeof w->buf};
    slot_set(p, w->slot, f->path, 0, f->size > 0 ? (uint64_t)f->size : 0);
    xf_account(&x, (int64_t)have);
    int attempt = 0;
    while (rc == 0) {
        if (f->size >= 0 && x.have == (uint64_t)f->size && x.have > 0)
            break; /* all on disk already */
        char range[48];
        snprintf(range, sizeof range, "%llu-", (unsigned long long)x.have);
        sw_hub_headers_reset(&x.h);
        x.checked = x.discard = x.fail = 0;
        x.moved = 0;
        curl_easy_setopt(c, CURLOPT_URL, j->url);
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c, CURLOPT_RANGE, x.have > 0 ? range : NULL);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, xf_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, xf_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, xf_progress);
        CURLcode cc = curl_easy_perform(c);
        int st_code = x.h.status;
        /* What arrived is on disk before anything looks at the file or resumes from it. */
        if (x.fail != XF_FATAL && x.buffered && xf_flush(&x) < 0) {
            rc = sw_err_errno("write '%s'", j->incomplete);
            break;
        }
        if (cc == CURLE_ABORTED_BY_CALLBACK) {
            rc = sw_err_set(SW_EINTR, "interrupted");
            break;
        }
        if (x.fail == XF_FATAL) {
            rc = sw_err_set(x.fail_code, "%s", x.fail_msg);
            if (x.fail_code == SW_ECORRUPT)
                (void)ftruncate(fd, 0); /* nothing of it can be trusted */
            break;
        }
        if (x.fail == XF_RESTART) {
            sw_log(SW_LOG_DEBUG, "'%s': %s; starting over", f->path, x.fail_msg);
            if (xf_truncate(&x) < 0) {
                rc = sw_err_errno("truncate '%s'", j->incomplete);
                break;
            }
            if (attempt++ >= n->max_retries) {
                rc = sw_err_set(SW_EIO, "'%s': the server keeps resuming at the wrong offset",
                                f->path);
                break;
            }
            continue;
        }
        if (cc == CURLE_OK && (st_code == 200 || st_code == 206)) {
            if (f->size < 0 || x.have == (uint64_t)f->size) break;
            /* A body shorter than announced without an error: go on from where it stopped. */
        } else if (cc == CURLE_OK && st_code == 416) {
            if (f->size >= 0 && x.have == (uint64_t)f->size) break;
            if (xf_truncate(&x) < 0) {
                rc = sw_err_errno("truncate '%s'", j->incomplete);
                break;
            }
        } else if (cc == CURLE_OK && !(st_code == 429 || st_code >= 500)) {
            char what[300];
            snprintf(what, sizeof what, "file '%.200s'", f->path);
            rc = sw_hub_http_error(n, &x.h, what, j->url);
            break;
        } else if (cc != CURLE_OK && !sw_hub_curl_transient(cc)) {
            rc = sw_err_set(SW_EIO, "'%s': download failed: %s", f->path, curl_easy_strerror(cc));
            break;
        }
        /* Transient: continue at once when this attempt moved bytes, else back off. */
        if (x.moved > 0) {
            attempt = 0;
            sw_log(SW_LOG_DEBUG, "'%s': transfer stopped at byte %llu (%s); resuming", f->path,
                   (unsigned long long)x.have,
                   cc != CURLE_OK ? curl_easy_strerror(cc) : "short body");
            continue;
        }
        if (attempt >= n->max_retries) {
            if (cc != CURLE_OK)
                rc = sw_err_set(SW_EIO, "'%s': download failed after %d retries: %s", f->path,
                                n->max_retries, curl_easy_strerror(cc));
            else {
                char what[300];
                snprintf(what, sizeof what, "file '%.200s'", f->path);
                rc = sw_hub_http_error(n, &x.h, what, j->url);
            }
            break;
        }
        sw_log(SW_LOG_DEBUG, "'%s': %s; retry %d of %d", f->path,
               cc != CURLE_OK ? curl_easy_strerror(cc) : "server busy", attempt + 1,
               n->max_retries);
        rc = sw_hub_backoff(n, attempt, cc == CURLE_OK ? x.h.retry_after : -1);
        attempt++;
    }
    j->fetched += x.fetched;
    char got[72] = "";
    if (rc == 0)
        rc = hasher_final(&hs, got, sizeof got);
    else
        hasher_release(&hs);
    if (rc == 0 && f->size >= 0 && x.have != (uint64_t)f->size)
        rc = sw_err_set(SW_ECORRUPT, "'%s': got %llu bytes, the listing announced %lld", f->path,
                        (unsigned long long)x.have, (long long)f->size);
    if (rc == 0 && want[0] && strcmp(got, want) != 0) {
        rc = sw_err_set(SW_ECORRUPT,
                        "'%s': the downloaded bytes do not match the %s the hub published (got %s, "
                        "want %s); the download was discarded",
                        f->path, kind == HASH_SHA256 ? "sha256" : "git blob sha1", got, want);
    }
    /* The hub's own ids for what it sent must agree with the listing. */
    if (rc == 0 && f->lfs && x.h.linked_etag[0] && f->etag && strcmp(x.h.linked_etag, f->etag) != 0)
        rc = sw_err_set(SW_ECORRUPT,
                        "'%s': the hub's X-Linked-Etag %s differs from the listing's %s", f->path,
                        x.h.linked_etag, f->etag);
    if (rc == 0 && !f->lfs && f->oid[0] && x.h.etag[0] && strlen(x.h.etag) == 40 &&
        strcmp(x.h.etag, f->oid) != 0)
        rc = sw_err_set(SW_ECORRUPT, "'%s': the hub's ETag %s differs from the listing's %s",
                        f->path, x.h.etag, f->oid);
    if (rc == 0 && j->commit && x.h.repo_commit[0] && strcmp(x.h.repo_commit, j->commit) != 0)
        rc = sw_err_set(SW_ECORRUPT, "'%s': served from commit %s, not the listed %s", f->path,
                        x.h.repo_commit, j->commit);
    if (rc == 0 && fsync(fd) < 0) rc = sw_err_errno("fsync '%s'", j->incomplete);
    close(fd);
    if (rc == SW_ECORRUPT) {
        unlink(j->incomplete); /* keep nothing corrupt */
        return rc;
    }
    if (rc < 0) return rc;
    if (!j->final) { /* no published id: the blob is named by the sha256 just computed */
        size_t len = strlen(j->blobs_dir) + strlen(got) + 2;
        if (!(j->final = malloc(len)) || !(f->etag = strdup(got)))
            return sw_err_set(SW_ENOMEM, "out of memory");
        snprintf(j->final, len, "%s/%s", j->blobs_dir, got);
    }
    if (rename(j->incomplete, j->final) < 0)
        return sw_err_errno("rename '%s' to '%s'", j->incomplete, j->final);
    j->renamed = 1; /* its folder is fsynced once, after all the jobs (sw_hub_download_jobs) */
    f->state = SW_HUB_FILE_FETCH;
    return 0;
}

/* Point the snapshot entry at the blob (cache), or record huggingface_hub's download metadata
 * next to a local_dir file. */
static int job_finish(struct sw_hub_job *j) {
    struct sw_hub_file *f = j->file;
    if (j->link) {
        char *dir = strdup(f->path);
        if (!dir) return sw_err_set(SW_ENOMEM, "out of memory");
        char *slash = strrchr(dir, '/');
        int rc = 0;
        if (slash) {
            *slash = '\0';
            rc = sw_hub_mkdirs_below(j->link_root, dir);
        }
        free(dir);
        SW_TRY(rc);
        char *target = sw_hub_blob_link(f->path, f->etag);
        if (!target) return sw_err_set(SW_ENOMEM, "out of memory");
        char cur[4096];
        ssize_t k = readlink(j->link, cur, sizeof cur - 1);
        if (k >= 0) {
            cur[k] = '\0';
            if (strcmp(cur, target) == 0) {
                free(target);
                return 0;
            }
        }
        size_t len = strlen(j->link) + 40;
        char *tmp = malloc(len);
        if (!tmp) {
            free(target);
            return sw_err_set(SW_ENOMEM, "out of memory");
        }
        snprintf(tmp, len, "%s.sw-tmp.%d.%lx", j->link, (int)getpid(),
                 (unsigned long)pthread_self());
        unlink(tmp);
        if (symlink(target, tmp) < 0)
            rc = sw_err_errno("symlink '%s'", tmp);
        else if (rename(tmp, j->link) < 0) {
            rc = sw_err_errno("rename '%s' to '%s'", tmp, j->link);
            unlink(tmp);
        }
        free(tmp);
        free(target);
        return rc;
    }
    if (j->meta) {
        char buf[512];
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int len = snprintf(buf, sizeof buf, "%s\n%s\n%.6f\n", j->commit ? j->commit : "",
                           f->etag ? f->etag : "", (double)ts.tv_sec + ts.tv_nsec * 1e-9);
        return sw_write_file_atomic(j->meta, buf, (size_t)len);
    }
    return 0;
}

static int job_run(struct worker *w, struct sw_hub_job *j) {
    struct sw_hub_file *f = j->file;
    if (j->verify_existing && j->final && !j->force) {
        const char *want;
        enum hash_kind kind = hash_for(f, &want);
        char got[72];
        slot_set(w->pool, w->slot, f->path, 0, 0);
        SW_TRY(sw_hub_hash_file(j->final, kind == HASH_SHA256, got, sizeof got));
        if (want[0] && strcmp(got, want) != 0) {
            sw_log(SW_LOG_WARN,
                   "'%s': the copy in place (%s) does not match its %s; fetching it again", f->path,
                   j->final, kind == HASH_SHA256 ? "sha256" : "git blob sha1");
            if (unlink(j->final) < 0) return sw_err_errno("remove corrupt '%s'", j->final);
            j->need_download = 1;
        }
    }
    int lockfd = -1;
    if (j->need_download) {
        lockfd = lock_take(j->lock, f->path);
        if (lockfd < -1) return lockfd;
        int rc = 0;
        if (!j->force && j->final && file_size_is(j->final, f->size)) {
            /* Another process brought it while we waited for the lock. */
        } else {
            rc = job_transfer(w, j);
        }
        if (lockfd >= 0) close(lockfd); /* releases the flock */
        SW_TRY(rc);
    }
    return job_finish(j);
}

static void *worker_main(void *arg) {
    struct worker *w = arg;
    struct pool *p = w->pool;
    for (;;) {
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->njobs || sw_signal_pending()) break;
        struct sw_hub_job *j = &p->jobs[i];
        sw_err_clear();
        j->rc = job_run(w, j);
        if (j->rc < 0 && !(j->err = strdup(sw_err_msg()))) j->rc = SW_ENOMEM;
        slot_set(p, w->slot, NULL, 0, 0);
        atomic_fetch_add(&p->files_done, 1);
    }
    pthread_mutex_lock(&p->mu);
    p->running--;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void report(struct pool *p, struct sw_hub_progress_slot *snap, size_t nw, uint64_t total,
                   double t0, int final, sw_hub_progress_fn fn, void *ctx) {
    if (!fn) return;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < nw; i++) {
        snap[i].path = p->slots[i].path;
        snap[i].done = atomic_load(&p->slots[i].done);
        snap[i].total = atomic_load(&p->slots[i].total);
    }
    pthread_mutex_unlock(&p->mu);
    struct sw_hub_progress pr = {
        .bytes_done = atomic_load(&p->bytes_done),
        .bytes_total = total,
        .files_done = atomic_load(&p->files_done),
        .files_total = p->njobs,
        .nslots = nw,
        .slots = snap,
        .elapsed_s = mono() - t0,
        .final = final,
    };
    fn(ctx, &pr);
}

int sw_hub_download_jobs(const struct sw_hub_net *n, struct sw_hub_job *jobs, size_t njobs,
                         int max_workers, sw_hub_progress_fn progress, void *ctx) {
    if (njobs == 0) return 0;
    size_t nw = max_workers > 0 ? (size_t)max_workers : 8;
    if (nw > njobs) nw = njobs;
    struct pool p = {.net = n, .jobs = jobs, .njobs = njobs};
    uint64_t total = 0;
    for (size_t i = 0; i < njobs; i++)
        if (jobs[i].need_download && jobs[i].file->size > 0) total += (uint64_t)jobs[i].file->size;
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    p.slots = calloc(nw, sizeof *p.slots);
    struct worker *ws = calloc(nw, sizeof *ws);
    pthread_t *th = calloc(nw, sizeof *th);
    struct sw_hub_progress_slot *snap = calloc(nw, sizeof *snap);
    int rc = p.slots && ws && th && snap ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
    size_t started = 0;
    for (size_t i = 0; i < nw && rc == 0; i++) {
        ws[i].pool = &p;
        ws[i].slot = &p.slots[i];
        if (!(ws[i].curl = sw_hub_curl_new(n))) {
            rc = SW_ENOMEM;
            break;
        }
    }
    double t0 = mono();
    if (rc == 0) {
        pthread_mutex_lock(&p.mu);
        for (size_t i = 0; i < nw; i++) {
            if (pthread_create(&th[i], NULL, worker_main, &ws[i]) != 0) break;
            started++;
            p.running++;
        }
        pthread_mutex_unlock(&p.mu);
        if (started == 0) rc = sw_err_set(SW_EIO, "cannot start download threads");
    }
    if (started) {
        pthread_mutex_lock(&p.mu);
        while (p.running > 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&p.cv, &p.mu, &ts);
            if (p.running > 0) {
                pthread_mutex_unlock(&p.mu);
                report(&p, snap, nw, total, t0, 0, progress, ctx);
                pthread_mutex_lock(&p.mu);
            }
        }
        pthread_mutex_unlock(&p.mu);
        for (size_t i = 0; i < started; i++)
            pthread_join(th[i], NULL);
        report(&p, snap, nw, total, t0, 1, progress, ctx);
    }
    /* Make the renames durable: one fsync per folder that received files. */
    struct sw_strmap *dirs = sw_strmap_new(16);
    for (size_t i = 0; i < njobs && dirs; i++) {
        if (!jobs[i].renamed) continue;
        const char *slash = strrchr(jobs[i].final, '/');
        size_t len = slash ? (size_t)(slash - jobs[i].final) : 0;
        if (!len || sw_strmap_get(dirs, jobs[i].final, len, NULL)) continue;
        if (sw_strmap_put(dirs, jobs[i].final, len, 0) < 0) break;
        fsync_parent(jobs[i].final);
    }
    sw_strmap_free(dirs);
    sw_err_clear();
    for (size_t i = 0; i < nw && ws; i++)
        sw_hub_curl_free(ws[i].curl);
    free(ws);
    free(th);
    free(snap);
    free(p.slots);
    pthread_mutex_destroy(&p.mu);
    pthread_cond_destroy(&p.cv);
    if (rc < 0) return rc;
    /* Failures: an interruption wins; otherwise every message is logged, the first returned. */
    size_t nfail = 0, first = njobs;
    for (size_t i = 0; i < njobs; i++) {
        if (jobs[i].rc == SW_EINTR ||
            (jobs[i].rc == 0 && i >= atomic_load(&p.next) && sw_signal_pending()))
            return sw_err_set(SW_EINTR,
                              "interrupted; partial downloads are kept and resume on the next run");
        if (jobs[i].rc < 0) {
            if (first == njobs) first = i;
            nfail++;
        }
    }
    if (sw_signal_pending())
        return sw_err_set(SW_EINTR,
                          "interrupted; partial downloads are kept and resume on the next run");
    if (!nfail) return 0;
    for (size_t i = first + 1; i < njobs; i++)
        if (jobs[i].rc < 0)
            sw_log(SW_LOG_ERROR, "%s", jobs[i].err ? jobs[i].err : sw_strerror(jobs[i].rc));
    if (nfail > 1)
        return sw_err_set(jobs[first].rc, "%s (and %zu more files failed, see above)",
                          jobs[first].err ? jobs[first].err : sw_strerror(jobs[first].rc),
                          nfail - 1);
    return sw_err_set(jobs[first].rc, "%s",
                      jobs[first].err ? jobs[first].err : sw_strerror(jobs[first].rc));
}
