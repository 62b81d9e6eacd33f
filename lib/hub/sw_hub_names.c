/* sw_hub_names — the pure rules of lib/hub: which strings are repo ids, revisions, safe file
 * names and blob names; the cache's folder names and link targets; huggingface_hub's glob
 * filtering; and where the cache, endpoint, token and offline switch come from in the
 * environment. File names and etags arrive from a server, so every check here is the line
 * between "a name" and "a path that writes somewhere else". */
#include "sw_hub.h"

#include "sw_err.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void sw_hub_opts_init(struct sw_hub_opts *o) {
    memset(o, 0, sizeof *o);
    o->hub = SW_HUB_AUTO;
    o->repo_type = SW_HUB_MODEL;
    o->max_workers = 8;
    o->max_retries = 5;
    o->max_wait_s = 60;
    o->offline = -1;
}

static int id_char(int c) {
    return isalnum(c) || c == '_' || c == '-' || c == '.';
}

/* One part of an id: non-empty run of id characters not starting or ending with '.' or '-'
 * (huggingface_hub's \b boundaries). */
static int id_part_ok(const char *s, size_t n) {
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (!id_char((unsigned char)s[i])) return 0;
    if (s[0] == '.' || s[0] == '-' || s[n - 1] == '.' || s[n - 1] == '-') return 0;
    return 1;
}

int sw_hub_looks_like_id(const char *s) {
    if (!s || !*s) return 0;
    size_t n = strlen(s);
    if (n > 96 || strstr(s, "--") || strstr(s, "..")) return 0;
    if (n >= 4 && strcmp(s + n - 4, ".git") == 0) return 0;
    const char *slash = strchr(s, '/');
    if (!slash) return id_part_ok(s, n);
    if (strchr(slash + 1, '/')) return 0;
    return id_part_ok(s, (size_t)(slash - s)) && id_part_ok(slash + 1, strlen(slash + 1));
}

int sw_hub_repo_id_check(const char *id) {
    if (!sw_hub_looks_like_id(id))
        return sw_err_set(SW_EUSAGE,
                          "'%s' is not a repo id (expected ORG/NAME of letters, digits, '.', '_' "
                          "and '-', at most 96 characters)",
                          id ? id : "");
    return 0;
}

/* Shared by revisions and server file names: '/'-separated, no empty/"."/".." component, no
 * backslash or control byte. */
static int rel_path_ok(const char *p, size_t max_len, size_t max_comp) {
    size_t n = strlen(p);
    if (n == 0 || n > max_len || p[0] == '/') return 0;
    const char *c = p;
    for (;;) {
        const char *e = strchr(c, '/');
        size_t len = e ? (size_t)(e - c) : strlen(c);
        if (len == 0 || len > max_comp) return 0;
        if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.')) return 0;
        for (size_t i = 0; i < len; i++) {
            unsigned char ch = (unsigned char)c[i];
            if (ch < 0x20 || ch == 0x7f || ch == '\\') return 0;
        }
        if (!e) break;
        c = e + 1;
    }
    return 1;
}

int sw_hub_revision_check(const char *rev) {
    if (!rev || !rel_path_ok(rev, 256, 255))
        return sw_err_set(SW_EUSAGE, "'%s' is not a usable revision (branch, tag or commit)",
                          rev ? rev : "");
    return 0;
}

int sw_hub_path_check(const char *path) {
    if (!path || !rel_path_ok(path, 4096, 255))
        return sw_err_set(SW_EFORMAT,
                          "the hub listed an unsafe file name '%.200s' (absolute, '..', empty or "
                          "control characters): refusing to write it",
                          path ? path : "");
    return 0;
}

int sw_hub_etag_check(const char *etag) {
    size_t n = etag ? strlen(etag) : 0;
    int ok = n > 0 && n <= 128 && etag[0] != '.';
    for (size_t i = 0; ok && i < n; i++)
        ok = id_char((unsigned char)etag[i]);
    if (!ok)
        return sw_err_set(SW_EFORMAT, "the hub sent an unusable etag '%.140s' for a blob name",
                          etag ? etag : "");
    return 0;
}

char *sw_hub_repo_folder_name(enum sw_hub_repo_type type, const char *repo_id) {
    const char *prefix = type == SW_HUB_DATASET ? "datasets" : "models";
    size_t n = strlen(prefix) + 2 + strlen(repo_id) * 2 + 1;
    char *out = malloc(n);
    if (!out) return NULL;
    char *w = out + sprintf(out, "%s--", prefix);
    for (const char *r = repo_id; *r; r++) {
        if (*r == '/') {
            *w++ = '-';
            *w++ = '-';
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return out;
}

char *sw_hub_blob_link(const char *path, const char *etag) {
    size_t depth = 0;
    for (const char *p = path; *p; p++)
        depth += *p == '/';
    size_t n = depth * 3 + strlen("../../blobs/") + strlen(etag) + 1;
    char *out = malloc(n);
    if (!out) return NULL;
    char *w = out;
    for (size_t i = 0; i < depth; i++)
        w += sprintf(w, "../");
    sprintf(w, "../../blobs/%s", etag);
    return out;
}

/* ---- globs ---- */

static int norm(int c) {
    return c == '\\' ? '/' : c;
}

/* Match one character against the class starting after '[' at p; *end receives the position
 * after the closing ']'. Returns -1 when the class is unclosed (then '[' is a literal). */
static int class_match(const char *p, int c, const char **end) {
    const char *q = p;
    int negate = 0;
    if (*q == '!') {
        negate = 1;
        q++;
    }
    const char *start = q;
    if (*q == ']') q++; /* a leading ']' is a member */
    while (*q && *q != ']')
        q++;
    if (!*q) return -1;
    *end = q + 1;
    int hit = 0;
    for (const char *r = start; r < q; r++) {
        int lo = norm((unsigned char)*r);
        if (r + 2 < q && r[1] == '-') {
            int hi = norm((unsigned char)r[2]);
            if (lo <= c && c <= hi) hit = 1;
            r += 2;
        } else if (lo == c) {
            hit = 1;
        }
    }
    return hit != negate;
}

int sw_hub_glob_match(const char *pattern, const char *name) {
    const char *p = pattern, *s = name;
    const char *star_p = NULL, *star_s = NULL;
    while (*s) {
        int c = norm((unsigned char)*s);
        if (*p == '*') {
            while (*p == '*')
                p++;
            star_p = p;
            star_s = s;
            continue;
        }
        if (*p) {
            if (*p == '?') {
                p++;
                s++;
                continue;
            }
            if (*p == '[') {
                const char *end = NULL;
                int m = class_match(p + 1, c, &end);
                if (m == 1) {
                    p = end;
                    s++;
                    continue;
                }
                if (m < 0 && c == '[') { /* unclosed: a literal '[' */
                    p++;
                    s++;
                    continue;
                }
            } else if (norm((unsigned char)*p) == c) {
                p++;
                s++;
                continue;
            }
        }
        if (!star_p) return 0;
        p = star_p;
        s = ++star_s;
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

static int glob_any(const char *path, const char *const *pats, size_t n) {
    char buf[4200];
    for (size_t i = 0; i < n; i++) {
        const char *pat = pats[i];
        size_t len = strlen(pat);
        /* huggingface_hub: a pattern naming a folder ("sub/") matches what is under it. */
        if (len > 0 && (pat[len - 1] == '/' || pat[len - 1] == '\\') && len + 2 < sizeof buf) {
            memcpy(buf, pat, len);
            buf[len] = '*';
            buf[len + 1] = '\0';
            pat = buf;
        }
        if (sw_hub_glob_match(pat, path)) return 1;
    }
    return 0;
}

int sw_hub_filter(const char *path, const char *const *include, size_t ninclude,
                  const char *const *exclude, size_t nexclude) {
    if (ninclude && !glob_any(path, include, ninclude)) return 0;
    if (nexclude && glob_any(path, exclude, nexclude)) return 0;
    return 1;
}

/* ---- environment ---- */

static const char *env(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int env_true(const char *name) {
    const char *v = env(name);
    if (!v) return 0;
    return strcasecmp(v, "1") == 0 || strcasecmp(v, "on") == 0 || strcasecmp(v, "yes") == 0 ||
           strcasecmp(v, "true") == 0;
}

int sw_hub_env_offline(void) {
    return env_true("HF_HUB_OFFLINE") || env_true("TRANSFORMERS_OFFLINE");
}

enum sw_hub_kind sw_hub_kind_resolve(enum sw_hub_kind k) {
    if (k != SW_HUB_AUTO) return k;
    const char *v = env("USE_HF");
    if (v && (strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0))
        return SW_HUB_MODELSCOPE;
    return SW_HUB_HF;
}

static int dup_out(char **out, const char *a, const char *b) {
    size_t n = strlen(a) + (b ? strlen(b) : 0) + 1;
    *out = malloc(n);
    if (!*out) return sw_err_set(SW_ENOMEM, "out of memory");
    snprintf(*out, n, "%s%s", a, b ? b : "");
    return 0;
}

/* ~/.cache (XDG_CACHE_HOME) + rest, or an error when neither HOME nor XDG_CACHE_HOME is set. */
static int home_cache(char **out, const char *rest) {
    const char *xdg = env("XDG_CACHE_HOME");
    if (xdg) return dup_out(out, xdg, rest);
    const char *home = env("HOME");
    if (!home)
        return sw_err_set(SW_EINVAL, "no cache folder: set HF_HOME (or HOME) or pass --cache_dir");
    size_t n = strlen(home) + strlen("/.cache") + strlen(rest) + 1;
    *out = malloc(n);
    if (!*out) return sw_err_set(SW_ENOMEM, "out of memory");
    snprintf(*out, n, "%s/.cache%s", home, rest);
    return 0;
}

int sw_hub_cache_root(enum sw_hub_kind k, const char *explicit_dir, char **out) {
    *out = NULL;
    if (explicit_dir && *explicit_dir) return dup_out(out, explicit_dir, NULL);
    if (sw_hub_kind_resolve(k) == SW_HUB_MODELSCOPE) {
        const char *v = env("MODELSCOPE_CACHE");
        if (v) return dup_out(out, v, "/sw-hub");
        return home_cache(out, "/modelscope/sw-hub");
    }
    const char *v = env("HF_HUB_CACHE");
    if (!v) v = env("HUGGINGFACE_HUB_CACHE");
    if (v) return dup_out(out, v, NULL);
    if ((v = env("HF_HOME"))) return dup_out(out, v, "/hub");
    return home_cache(out, "/huggingface/hub");
}

int sw_hub_endpoint(enum sw_hub_kind k, const char *explicit_url, char **out) {
    const char *v = explicit_url && *explicit_url ? explicit_url : NULL;
    int rc;
    if (!v && sw_hub_kind_resolve(k) == SW_HUB_MODELSCOPE) {
        const char *d = env("MODELSCOPE_DOMAIN");
        if (d && !strstr(d, "://"))
            rc = dup_out(out, "https://", d);
        else
            rc = dup_out(out, d ? d : "https://www.modelscope.cn", NULL);
    } else {
        if (!v) v = env("HF_ENDPOINT");
        rc = dup_out(out, v ? v : "https://huggingface.co", NULL);
    }
    if (rc < 0) return rc;
    size_t n = strlen(*out);
    while (n > 0 && (*out)[n - 1] == '/')
        (*out)[--n] = '\0';
    if (strncmp(*out, "http://", 7) != 0 && strncmp(*out, "https://", 8) != 0) {
        rc = sw_err_set(SW_EUSAGE, "hub endpoint '%s' is not an http:// or https:// URL", *out);
        free(*out);
        *out = NULL;
        return rc;
    }
    return 0;
}

/* First line of a small file, trimmed; NULL when missing or empty. */
static char *read_token_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char buf[1024];
    char *line = fgets(buf, sizeof buf, f);
    fclose(f);
    if (!line) return NULL;
    size_t n = strlen(line);
    while (n && isspace((unsigned char)line[n - 1]))
        line[--n] = '\0';
    while (*line && isspace((unsigned char)*line))
        line++;
    return *line ? strdup(line) : NULL;
}

int sw_hub_token(enum sw_hub_kind k, const char *explicit_token, char **out, const char **source) {
    static __thread char file_source[512];
    *out = NULL;
    *source = NULL;
    const char *v = NULL;
    if (explicit_token && *explicit_token) {
        v = explicit_token;
        *source = "--token";
    } else if (sw_hub_kind_resolve(k) == SW_HUB_MODELSCOPE) {
        if ((v = env("MODELSCOPE_API_TOKEN"))) *source = "MODELSCOPE_API_TOKEN";
    } else if ((v = env("HF_TOKEN"))) {
        *source = "HF_TOKEN";
    } else if ((v = env("HUGGING_FACE_HUB_TOKEN"))) {
        *source = "HUGGING_FACE_HUB_TOKEN";
    } else {
        const char *path = env("HF_TOKEN_PATH");
        char *tmp = NULL;
        if (!path) {
            const char *home = env("HF_HOME");
            int rc = home ? dup_out(&tmp, home, "/token") : home_cache(&tmp, "/huggingface/token");
            if (rc < 0) {
                sw_err_clear();
                return 0; /* no home at all: anonymous */
            }
            path = tmp;
        }
        *out = read_token_file(path);
        if (*out) {
            snprintf(file_source, sizeof file_source, "%s", path);
            *source = file_source;
        }
        free(tmp);
        return 0;
    }
    if (v && !(*out = strdup(v))) return sw_err_set(SW_ENOMEM, "out of memory");
    return 0;
}
