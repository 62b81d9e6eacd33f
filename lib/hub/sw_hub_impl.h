/* sw_hub_impl.h — private pieces of lib/hub shared by its files and its white-box tests:
 * the parser of the HTTP response headers the hubs send, the libcurl wrapper with retries, the
 * parsers of the listing APIs (HF revision and tree, ModelScope files), and the downloader.
 * Everything that reads server bytes here is bounds-checked and fuzzed (test/fuzz/fuzz_hub.c). */
#ifndef SW_HUB_IMPL_H
#define SW_HUB_IMPL_H

#include "sw_hub.h"

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

/* ---- response headers ---- */

/* What one HTTP exchange (possibly a chain of redirects) said. The hub fields (repo_commit,
 * linked_*) are kept across the redirect chain, since the hub puts them on its 302 to the CDN;
 * the others describe the last response. */
struct sw_hub_headers {
    int status;                                  /* of the last status line; 0 before one */
    int nresponses;                              /* status lines seen */
    int64_t content_length;                      /* -1 when absent */
    int64_t range_start, range_end, range_total; /* Content-Range "bytes a-b/t"; -1 absent */
    char etag[136];          /* ETag of the last response, normalized (no W/, no quotes) */
    char linked_etag[136];   /* X-Linked-Etag (normalized) */
    int64_t linked_size;     /* X-Linked-Size, -1 when absent */
    char repo_commit[72];    /* X-Repo-Commit */
    char error_code[64];     /* X-Error-Code (RepoNotFound, GatedRepo, RevisionNotFound, ...) */
    char error_message[320]; /* X-Error-Message */
    double retry_after;      /* seconds, from Retry-After (delta or HTTP date); -1 absent */
    char link_next[2048];    /* URL of Link: <...>; rel="next", "" when absent */
    char content_encoding[32];
};

void sw_hub_headers_reset(struct sw_hub_headers *h);
/* Feed one raw header line (as libcurl delivers it, with or without the CRLF). A status line
 * ("HTTP/1.1 206 Partial Content", "HTTP/2 200") starts a new response. Malformed lines are
 * ignored; values longer than their field are truncated (an over-long etag then fails
 * sw_hub_etag_check). now is the current time (for HTTP-date Retry-After). */
void sw_hub_headers_feed(struct sw_hub_headers *h, const char *line, size_t len, double now);
/* ETag normalization as huggingface_hub's _normalize_etag: strip a leading "W/" and quotes. */
void sw_hub_etag_normalize(const char *in, size_t len, char *out, size_t cap);
/* Retry-After: delta-seconds or an HTTP date (relative to now). Returns seconds >= 0, or -1. */
double sw_hub_parse_retry_after(const char *v, size_t len, double now);
/* From a Link header value, the URL of rel="next" into out (NUL-terminated); 0 if found. */
int sw_hub_parse_link_next(const char *v, size_t len, char *out, size_t cap);

/* ---- listings ---- */

struct sw_hub_listing {
    char *commit; /* 40 hex (HF sha; ModelScope: the content id computed here) */
    struct sw_hub_file *files;
    size_t n, cap;
    int complete_meta; /* every file has size and etag (a tree cache can be written) */
};
void sw_hub_listing_release(struct sw_hub_listing *l);
void sw_hub_file_release(struct sw_hub_file *f);
/* Append one file (path copied); returns 0 or SW_ENOMEM. */
int sw_hub_listing_add(struct sw_hub_listing *l, const char *path, size_t path_len,
                       struct sw_hub_file **out);

/* GET /api/{models,datasets}/{id}/revision/{rev}?blobs=true: {"sha", "siblings": [{"rfilename",
 * "size", "blobId", "lfs": {"sha256", "size"}}]}. Fills commit and files; name is for messages. */
int sw_hub_parse_hf_revision(const char *json, size_t len, const char *name,
                             struct sw_hub_listing *out);
/* One page of GET /api/{type}s/{id}/tree/{rev}?recursive=true: [{"type": "file"|"directory",
 * "path", "size", "oid", "lfs": {"oid", "size"}}]. Files are appended (directories skipped). */
int sw_hub_parse_hf_tree(const char *json, size_t len, const char *name,
                         struct sw_hub_listing *out);
/* ModelScope {"Code": 200, "Data": {"Files": [{"Path", "Type": "blob"|"tree", "Size",
 * "Sha256", "IsLFS"}]}}: blobs are appended; *count receives the number of entries of the page
 * (blobs and trees, for pagination). A Code other than 200 is an error with the Message. */
int sw_hub_parse_ms_files(const char *json, size_t len, const char *name,
                          struct sw_hub_listing *out, size_t *count);
/* ModelScope {"Code": 200, "Data": {"Id": N}} of GET /api/v1/datasets/{org}/{name}. */
int sw_hub_parse_ms_dataset_id(const char *json, size_t len, const char *name, int64_t *id);
/* Check every path (sw_hub_path_check) and etag, refuse duplicates and a path that is also a
 * folder of another ("a" and "a/b"). Returns 0 or SW_EFORMAT naming the first offender. */
int sw_hub_listing_check(const struct sw_hub_listing *l, const char *name);
/* The ModelScope content id: sha1 over "path\0sha256-or-size\n" of the files sorted by path,
 * as 40 hex characters (stands in for a commit: same files, same snapshot folder). */
int sw_hub_listing_content_id(struct sw_hub_listing *l, char out[41]);
/* huggingface_hub's tree cache (trees/<commit>.json, format_version 1) for the listing. */
int sw_hub_tree_cache_json(const struct sw_hub_listing *l, char **json);
/* Parse a tree cache file into a listing (paths, sizes, blob ids, lfs sha256). */
int sw_hub_parse_tree_cache(const char *json, size_t len, const char *name,
                            struct sw_hub_listing *out);

/* ---- HTTP ---- */

struct sw_hub_net {
    enum sw_hub_kind hub;
    char *endpoint;
    char *token; /* NULL: anonymous */
    const char *token_source;
    const char *page; /* the repo's web page (where gated repos are accepted), or NULL */
    int max_retries;
    double max_wait_s;
    long connect_timeout_s; /* 10 */
    long stall_timeout_s;   /* abort a transfer that moved no byte for this long (30) */
};

/* A fetched API answer. */
struct sw_hub_body {
    char *data;
    size_t len;
    struct sw_hub_headers h;
};
void sw_hub_body_release(struct sw_hub_body *b);

/* GET url into memory (at most max_len bytes), retrying 429/5xx and transient network errors.
 * 2xx returns 0 with *b filled; other statuses become errors whose message explains the hub's
 * answer (gated repos, missing repos/revisions, bad tokens) using what (e.g. "model org/name").
 * *network_down is set to 1 when the hub could not be reached at all (or kept failing with
 * 5xx/429), so callers may fall back to the cache. */
int sw_hub_get(const struct sw_hub_net *n, void *curl, const char *url, size_t max_len,
               const char *what, struct sw_hub_body *b, int *network_down);
/* A new libcurl easy handle set up for n (user agent, token, timeouts, protocols), or NULL. */
void *sw_hub_curl_new(const struct sw_hub_net *n);
void sw_hub_curl_free(void *curl);
/* The libcurl easy handle inside one of those. */
CURL *sw_hub_curl_handle(void *curl);
/* Whether a libcurl error may go away on a later try (timeouts, resets, refused connections). */
int sw_hub_curl_transient(int code);
/* Percent-encode s (RFC 3986 unreserved kept; keep_slash keeps '/') into a malloc'ed string. */
char *sw_hub_url_escape(const char *s, int keep_slash);
/* The message for a failed HTTP answer (gated, not found, auth, rate limit) and its code. */
int sw_hub_http_error(const struct sw_hub_net *n, const struct sw_hub_headers *h, const char *what,
                      const char *url);
/* Sleep for an attempt's backoff: Retry-After when given, else 1, 2, 4, ... seconds, capped at
 * max_wait_s; returns SW_EINTR when a signal arrives meanwhile. */
int sw_hub_backoff(const struct sw_hub_net *n, int attempt, double retry_after);

/* ---- downloads ---- */

/* One file to bring into place. */
struct sw_hub_job {
    struct sw_hub_file *file;
    char *url;        /* resolve / FilePath URL */
    char *incomplete; /* partial download, kept between runs */
    char *final;      /* blob (cache) or local file; NULL when the hub published no id for the
                       * file: then the blob is named by the sha256 computed while downloading */
    char *blobs_dir;  /* cache mode: where such a blob goes */
    char *lock;       /* flock file shared with huggingface_hub (NULL: none) */
    char *link;       /* cache mode: snapshot entry to point at final; NULL for local_dir */
    char *link_root;  /* cache mode: snapshots/<commit> (folders are made below it) */
    char *meta;       /* local_dir mode: .cache/huggingface/download/<path>.metadata */
    const char *commit;
    int need_download;   /* 0: final is in place (only link/metadata, or verification) */
    int verify_existing; /* hash final first; a mismatch removes it and downloads again */
    int force;           /* discard a partial file and download again */
    int renamed;         /* a download was moved to final (its folder needs an fsync) */
    int rc;              /* outcome */
    char *err;           /* its message */
    uint64_t fetched;    /* bytes transferred */
};
void sw_hub_job_release(struct sw_hub_job *j);

/* Run the jobs over max_workers threads, reporting progress; continue past failures. Returns 0
 * when all succeeded, else the first failure's code (each failure's message logged as an
 * error, the last one left as the current message). */
int sw_hub_download_jobs(const struct sw_hub_net *n, struct sw_hub_job *jobs, size_t njobs,
                         int max_workers, sw_hub_progress_fn progress, void *ctx);
/* Hash a file: sha256 (want_sha256) or git blob sha1 (else) into hex; 0 or an I/O error. */
int sw_hub_hash_file(const char *path, int want_sha256, char *hex, size_t cap);
/* mkdir -p of root/rel_dir refusing to pass through a symlink or a non-folder below root. */
int sw_hub_mkdirs_below(const char *root, const char *rel_dir);

#endif
