/* sw_hub_http — HTTP for the hub client: the parser of the response headers the hubs send
 * (status, Content-Range, ETag, X-Repo-Commit, X-Linked-Etag/-Size, X-Error-Code/-Message,
 * Retry-After, Link), libcurl handles set up once per worker (user agent, token, timeouts,
 * http/https only, proxies from the environment as libcurl reads them), API GETs into memory
 * with retries, and the error messages that tell a user what to do about a 401/403/404/429.
 *
 * The token goes in an Authorization header set on the handle; libcurl (>= 7.83) does not send
 * such a header to another host or port after a redirect, so a token never reaches the CDN the
 * hub redirects LFS downloads to (the tests check this against the mock hub). */
#include "sw_hub_impl.h"

#include "sw_err.h"
#include "sw_log.h"
#include "sw_signal.h"

#include <ctype.h>
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- header parsing (pure) ---- */

void sw_hub_headers_reset(struct sw_hub_headers *h) {
    memset(h, 0, sizeof *h);
    h->content_length = -1;
    h->range_start = h->range_end = h->range_total = -1;
    h->linked_size = -1;
    h->retry_after = -1;
}

/* Per-response fields go back to "absent" when a new status line arrives; the hub fields stay. */
static void response_reset(struct sw_hub_headers *h) {
    h->content_length = -1;
    h->range_start = h->range_end = h->range_total = -1;
    h->etag[0] = '\0';
    h->error_code[0] = h->error_message[0] = '\0';
    h->retry_after = -1;
    h->link_next[0] = '\0';
    h->content_encoding[0] = '\0';
}

static void copy_value(char *out, size_t cap, const char *v, size_t n) {
    if (n >= cap) n = cap - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

/* A non-negative decimal of the whole [v, v+n), or -1. */
static int64_t parse_u64(const char *v, size_t n) {
    if (n == 0 || n > 18) return -1;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)v[i])) return -1;
        x = x * 10 + (v[i] - '0');
    }
    return x;
}

void sw_hub_etag_normalize(const char *in, size_t len, char *out, size_t cap) {
    if (len >= 2 && in[0] == 'W' && in[1] == '/') {
        in += 2;
        len -= 2;
    }
    while (len && in[0] == '"') {
        in++;
        len--;
    }
    while (len && in[len - 1] == '"')
        len--;
    copy_value(out, cap, in, len);
}

double sw_hub_parse_retry_after(const char *v, size_t len, double now) {
    while (len && isspace((unsigned char)*v)) {
        v++;
        len--;
    }
    while (len && isspace((unsigned char)v[len - 1]))
        len--;
    if (len == 0) return -1;
    int64_t s = parse_u64(v, len);
    if (s >= 0) return (double)s;
    if (len > 64) return -1;
    char buf[80];
    copy_value(buf, sizeof buf, v, len);
    time_t t = curl_getdate(buf, NULL);
    if (t == (time_t)-1) return -1;
    double d = (double)t - now;
    return d > 0 ? d : 0;
}

int sw_hub_parse_link_next(const char *v, size_t len, char *out, size_t cap) {
    size_t i = 0;
    while (i < len) {
        while (i < len && v[i] != '<')
            i++;
        if (i >= len) return -1;
        size_t u0 = ++i;
        while (i < len && v[i] != '>')
            i++;
        if (i >= len) return -1;
        size_t u1 = i++;
        /* parameters up to the next ',' outside <...> */
        size_t p0 = i;
        while (i < len && v[i] != ',')
            i++;
        size_t p1 = i;
        for (size_t k = p0; k + 3 <= p1; k++) {
            if (strncasecmp(v + k, "rel", 3) != 0) continue;
            size_t m = k + 3;
            while (m < p1 && isspace((unsigned char)v[m]))
                m++;
            if (m >= p1 || v[m] != '=') continue;
            m++;
            while (m < p1 && (isspace((unsigned char)v[m]) || v[m] == '"'))
                m++;
            if (m + 4 <= p1 && strncasecmp(v + m, "next", 4) == 0 &&
                (m + 4 == p1 || v[m + 4] == '"' || v[m + 4] == ';' ||
                 isspace((unsigned char)v[m + 4]))) {
                if (u1 - u0 >= cap) return -1;
                copy_value(out, cap, v + u0, u1 - u0);
                return 0;
            }
        }
        if (i < len) i++; /* skip ',' */
    }
    return -1;
}

static int name_is(const char *line, size_t nlen, const char *name) {
    return strlen(name) == nlen && strncasecmp(line, name, nlen) == 0;
}

void sw_hub_headers_feed(struct sw_hub_headers *h, const char *line, size_t len, double now) {
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        size_t i = 5;
        while (i < len && line[i] != ' ')
            i++;
        while (i < len && line[i] == ' ')
            i++;
        size_t d = i;
        while (i < len && isdigit((unsigned char)line[i]))
            i++;
        int64_t code = i - d == 3 ? parse_u64(line + d, 3) : -1;
        if (code >= 100) {
            /* 1xx interim answers (100 Continue) are not responses of their own. */
            if (code >= 200) {
                response_reset(h);
                h->status = (int)code;
                h->nresponses++;
            }
        }
        return;
    }
    const char *colon = memchr(line, ':', len);
    if (!colon) return;
    size_t nlen = (size_t)(colon - line);
    const char *v = colon + 1;
    size_t vlen = len - nlen - 1;
    while (vlen && isspace((unsigned char)*v)) {
        v++;
        vlen--;
    }
    while (vlen && isspace((unsigned char)v[vlen - 1]))
        vlen--;
    if (name_is(line, nlen, "content-length")) {
        h->content_length = parse_u64(v, vlen);
    } else if (name_is(line, nlen, "content-range")) {
        /* "bytes a-b/t", or "bytes *\/t" for an unsatisfiable range */
        if (vlen > 6 && strncasecmp(v, "bytes ", 6) == 0) {
            const char *r = v + 6, *end = v + vlen;
            const char *slash = memchr(r, '/', (size_t)(end - r));
            if (slash) {
                h->range_total = parse_u64(slash + 1, (size_t)(end - slash - 1));
                const char *dash = memchr(r, '-', (size_t)(slash - r));
                if (dash) {
                    h->range_start = parse_u64(r, (size_t)(dash - r));
                    h->range_end = parse_u64(dash + 1, (size_t)(slash - dash - 1));
                }
            }
        }
    } else if (name_is(line, nlen, "etag")) {
        sw_hub_etag_normalize(v, vlen, h->etag, sizeof h->etag);
    } else if (name_is(line, nlen, "x-linked-etag")) {
        sw_hub_etag_normalize(v, vlen, h->linked_etag, sizeof h->linked_etag);
    } else if (name_is(line, nlen, "x-linked-size")) {
        h->linked_size = parse_u64(v, vlen);
    } else if (name_is(line, nlen, "x-repo-commit")) {
        copy_value(h->repo_commit, sizeof h->repo_commit, v, vlen);
    } else if (name_is(line, nlen, "x-error-code")) {
        copy_value(h->error_code, sizeof h->error_code, v, vlen);
    } else if (name_is(line, nlen, "x-error-message")) {
        copy_value(h->error_message, sizeof h->error_message, v, vlen);
    } else if (name_is(line, nlen, "retry-after")) {
        h->retry_after = sw_hub_parse_retry_after(v, vlen, now);
    } else if (name_is(line, nlen, "link")) {
        if (sw_hub_parse_link_next(v, vlen, h->link_next, sizeof h->link_next) < 0)
            h->link_next[0] = '\0';
    } else if (name_is(line, nlen, "content-encoding")) {
        copy_value(h->content_encoding, sizeof h->content_encoding, v, vlen);
    }
}

/* ---- libcurl handles ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_init_rc;
static void curl_init(void) {
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

struct hub_curl {
    CURL *c;
    struct curl_slist *hdrs;
};

void *sw_hub_curl_new(const struct sw_hub_net *n) {
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc < 0) {
        sw_err_set(SW_EIO, "libcurl failed to initialise");
        return NULL;
    }
    struct hub_curl *h = calloc(1, sizeof *h);
    if (!h || !(h->c = curl_easy_init())) {
        free(h);
        sw_err_set(SW_ENOMEM, "out of memory (libcurl handle)");
        return NULL;
    }
    char ua[160];
    snprintf(ua, sizeof ua, "sw-fetch/%s; curl/%s", SW_VERSION,
             curl_version_info(CURLVERSION_NOW)->version);
    CURL *c = h->c;
    curl_easy_setopt(c, CURLOPT_USERAGENT, ua);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT,
                     n->connect_timeout_s > 0 ? n->connect_timeout_s : 10L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, n->stall_timeout_s > 0 ? n->stall_timeout_s : 30L);
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    if (n->token) {
        size_t len = strlen(n->token) + 32;
        char *line = malloc(len);
        if (line) {
            snprintf(line, len, "Authorization: Bearer %s", n->token);
            h->hdrs = curl_slist_append(NULL, line);
            /* The header text holds the token: wipe our copy (curl keeps its own). */
            memset(line, 0, len);
            free(line);
        }
        if (!h->hdrs) {
            sw_hub_curl_free(h);
            sw_err_set(SW_ENOMEM, "out of memory");
            return NULL;
        }
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->hdrs);
    }
    return h;
}

void sw_hub_curl_free(void *p) {
    struct hub_curl *h = p;
    if (!h) return;
    if (h->c) curl_easy_cleanup(h->c);
    curl_slist_free_all(h->hdrs);
    free(h);
}

CURL *sw_hub_curl_handle(void *p) {
    return ((struct hub_curl *)p)->c;
}

char *sw_hub_url_escape(const char *s, int keep_slash) {
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(n * 3 + 1), *w = out;
    if (!out) return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~' ||
            (keep_slash && *p == '/')) {
            *w++ = (char)*p;
        } else {
            *w++ = '%';
            *w++ = hex[*p >> 4];
            *w++ = hex[*p & 15];
        }
    }
    *w = '\0';
    return out;
}

/* ---- errors and backoff ---- */

int sw_hub_http_error(const struct sw_hub_net *n, const struct sw_hub_headers *h, const char *what,
                      const char *url) {
    const char *code = h->error_code;
    const char *msg = h->error_message[0] ? h->error_message : NULL;
    const char *tok = n->token_source;
    const char *how = n->hub == SW_HUB_MODELSCOPE
                          ? "pass a ModelScope access token (--token or MODELSCOPE_API_TOKEN)"
                          : "pass a token with read access (--token, HF_TOKEN, or `hf auth login`)";
    int st = h->status;
    if (n->page) url = n->page;
    if (strcmp(code, "GatedRepo") == 0 ||
        ((st == 401 || st == 403) && msg && strstr(msg, "restricted"))) {
        if (!n->token)
            return sw_err_set(
                SW_EIO,
                "%s is gated (HTTP %d): accept its conditions on the hub's page for it "
                "(%s), then %s",
                what, st, url, how);
        return sw_err_set(SW_EIO,
                          "%s is gated and the token from %s is not granted access (HTTP %d): "
                          "request access on the hub's page for it (%s) with the account of that "
                          "token, or use a token of an account that has access%s%s",
                          what, tok, st, url, msg ? "; the hub said: " : "", msg ? msg : "");
    }
    if (strcmp(code, "RevisionNotFound") == 0)
        return sw_err_set(SW_ENOTFOUND, "%s: revision not found (HTTP %d)%s%s", what, st,
                          msg ? ": " : "", msg ? msg : "");
    if (strcmp(code, "EntryNotFound") == 0)
        return sw_err_set(SW_ENOTFOUND, "%s: file not found (HTTP %d): %s", what, st, url);
    if (st == 401) {
        if (n->token)
            return sw_err_set(SW_EIO,
                              "%s: not found, or the token from %s may not read it (HTTP 401)%s%s",
                              what, tok, msg ? "; the hub said: " : "", msg ? msg : "");
        return sw_err_set(SW_EIO,
                          "%s: not found, or private and needs authentication (HTTP 401): if it "
                          "exists, %s",
                          what, how);
    }
    if (st == 403)
        return sw_err_set(SW_EIO, "%s: access denied (HTTP 403)%s%s%s%s", what,
                          n->token ? " for the token from " : "; ", n->token ? tok : how,
                          msg ? "; the hub said: " : "", msg ? msg : "");
    if (st == 404)
        return sw_err_set(SW_ENOTFOUND, "%s: not found on %s (HTTP 404)%s%s", what, n->endpoint,
                          msg ? ": " : "", msg ? msg : "");
    if (st == 429)
        return sw_err_set(SW_EIO,
                          "%s: the hub kept answering 429 Too Many Requests after %d retries", what,
                          n->max_retries);
    if (st >= 500)
        return sw_err_set(SW_EIO, "%s: the hub kept failing with HTTP %d after %d retries", what,
                          st, n->max_retries);
    return sw_err_set(SW_EIO, "%s: unexpected HTTP %d from %s%s%s", what, st, url, msg ? ": " : "",
                      msg ? msg : "");
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int sw_hub_backoff(const struct sw_hub_net *n, int attempt, double retry_after) {
    double cap = n->max_wait_s > 0 ? n->max_wait_s : 60;
    double w = retry_after >= 0 ? retry_after : ldexp(1.0, attempt < 20 ? attempt : 20);
    if (w > cap) w = cap;
    double end = now_s() + w;
    for (;;) {
        if (sw_signal_pending()) return sw_err_set(SW_EINTR, "interrupted");
        double left = end - now_s();
        if (left <= 0) return 0;
        struct timespec ts = {0, (long)((left < 0.05 ? left : 0.05) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/* ---- API GETs into memory ---- */

struct mem_sink {
    char *data;
    size_t len, cap, max;
    int too_big;
    struct sw_hub_headers *h;
};

static size_t mem_write(char *p, size_t size, size_t nmemb, void *ud) {
    struct mem_sink *m = ud;
    size_t n = size * nmemb;
    if (m->len + n > m->max) {
        m->too_big = 1;
        return 0;
    }
    if (m->len + n + 1 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16384;
        while (cap < m->len + n + 1)
            cap *= 2;
        char *d = realloc(m->data, cap);
        if (!d) return 0;
        m->data = d;
        m->cap = cap;
    }
    memcpy(m->data + m->len, p, n);
    m->len += n;
    m->data[m->len] = '\0';
    return n;
}

static size_t hdr_write(char *p, size_t size, size_t nmemb, void *ud) {
    size_t n = size * nmemb;
    sw_hub_headers_feed(ud, p, n, (double)time(NULL));
    return n;
}

static int abort_on_signal(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
    (void)ud, (void)a, (void)b, (void)c, (void)d;
    return sw_signal_pending() ? 1 : 0;
}

/* Errors where the request may go through on a later try (the network or the server hiccuped). */
int sw_hub_curl_transient(int code) {
    switch (code) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3: return 1;
    default: return 0;
    }
}

void sw_hub_body_release(struct sw_hub_body *b) {
    if (!b) return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

int sw_hub_get(const struct sw_hub_net *n, void *hc, const char *url, size_t max_len,
               const char *what, struct sw_hub_body *b, int *network_down) {
    CURL *c = sw_hub_curl_handle(hc);
    memset(b, 0, sizeof *b);
    if (network_down) *network_down = 0;
    int attempt = 0;
    for (;;) {
        struct mem_sink m = {0};
        m.max = max_len;
        sw_hub_headers_reset(&b->h);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c, CURLOPT_RANGE, NULL);
        curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, ""); /* API JSON may come compressed */
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mem_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &m);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, hdr_write);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &b->h);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, abort_on_signal);
        CURLcode cc = curl_easy_perform(c);
        curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, NULL);
        int st = b->h.status;
        if (cc == CURLE_OK && st >= 200 && st < 300) {
            b->data = m.data ? m.data : calloc(1, 1);
            b->len = m.len;
            if (!b->data) return sw_err_set(SW_ENOMEM, "out of memory");
            return 0;
        }
        free(m.data);
        if (cc == CURLE_ABORTED_BY_CALLBACK) return sw_err_set(SW_EINTR, "interrupted");
        if (m.too_big)
            return sw_err_set(SW_ERANGE, "%s: the hub's answer from %s is larger than %zu bytes",
                              what, url, max_len);
        int retry = 0;
        if (cc != CURLE_OK) {
            retry = sw_hub_curl_transient(cc);
            /* An unresolvable host or a refused connection rarely heals within seconds: two
             * tries, then fall back (to the cache, when the caller can). */
            int limit = (cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_COULDNT_CONNECT ||
                         cc == CURLE_COULDNT_RESOLVE_PROXY)
                            ? (n->max_retries < 1 ? n->max_retries : 1)
                            : n->max_retries;
            if (!retry || attempt >= limit) {
                if (network_down && retry) *network_down = 1;
                return sw_err_set(SW_EIO, "%s: cannot reach %s: %s", what, url,
                                  curl_easy_strerror(cc));
            }
        } else if (st == 429 || st == 500 || st == 502 || st == 503 || st == 504) {
            if (attempt >= n->max_retries) {
                if (network_down) *network_down = 1;
                return sw_hub_http_error(n, &b->h, what, url);
            }
            retry = 1;
        } else {
            return sw_hub_http_error(n, &b->h, what, url);
        }
        sw_log(SW_LOG_DEBUG, "%s: %s; retry %d of %d", url,
               cc != CURLE_OK ? curl_easy_strerror(cc) : "server busy", attempt + 1,
               n->max_retries);
        SW_TRY(sw_hub_backoff(n, attempt, cc == CURLE_OK ? b->h.retry_after : -1));
        attempt++;
    }
}
