/* sw-fetch — download a model or dataset repo from a Hugging Face- or ModelScope-style hub into
 * huggingface_hub's cache (or a plain folder), resumable and verified; see tools/fetch/README.md
 * and docs/fetch.md. This file is the option table, the command line, and the output: the
 * snapshot folder on stdout (so `$(sw-fetch ORG/NAME)` is a path), or with --dry_run one line per
 * file. The work is sw_hub_fetch (lib/hub).
 *
 * The tool takes its repo id as the first word (`sw-fetch Qwen/Qwen2.5-0.5B`), so main parses
 * with sw_cli_parse directly, as sw-train does, rather than through sw_cli_main's subcommands. */
#include "fetch.h"

#include "sw_config.h"
#include "sw_err.h"
#include "sw_io.h"
#include "sw_log.h"
#include "sw_signal.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fetch_opts {
    char *revision;
    char *repo_type;
    char *include;
    char *exclude;
    char *local_dir;
    char *cache_dir;
    char *hub;
    char *use_hf;
    char *endpoint;
    char *token;
    int64_t max_workers;
    int64_t max_retries;
    double max_wait;
    int offline;
    int dry_run;
    int force_download;
    int verify;
};

static const struct sw_opt fetch_table[] = {
    {"revision", SW_OPT_STRING, offsetof(struct fetch_opts, revision), NULL,
     "branch, tag or commit (default main on HF, master on ModelScope)", 0, 0, NULL, NULL},
    {"repo_type", SW_OPT_CHOICE, offsetof(struct fetch_opts, repo_type), "model", "kind of repo", 0,
     0, "model|dataset", NULL},
    {"include", SW_OPT_LIST, offsetof(struct fetch_opts, include), NULL,
     "only files matching these globs (comma-separated, or repeat the option); '*' matches '/' too",
     0, 0, NULL, "allow_patterns"},
    {"exclude", SW_OPT_LIST, offsetof(struct fetch_opts, exclude), NULL,
     "skip files matching these globs (comma-separated, or repeat the option)", 0, 0, NULL,
     "ignore_patterns"},
    {"local_dir", SW_OPT_STRING, offsetof(struct fetch_opts, local_dir), NULL,
     "put the files in this plain folder instead of the cache", 0, 0, NULL, NULL},
    {"cache_dir", SW_OPT_STRING, offsetof(struct fetch_opts, cache_dir), NULL,
     "hub cache folder (default HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub)", 0, 0, NULL,
     NULL},
    {"hub", SW_OPT_CHOICE, offsetof(struct fetch_opts, hub), NULL,
     "which hub API to speak (default: hf, or modelscope when USE_HF=0)", 0, 0, "hf|modelscope",
     NULL},
    {"use_hf", SW_OPT_CHOICE, offsetof(struct fetch_opts, use_hf), NULL,
     "ms-swift's switch: true = Hugging Face, false = ModelScope (--hub wins)", 0, 0,
     "true|false|1|0", NULL},
    {"endpoint", SW_OPT_STRING, offsetof(struct fetch_opts, endpoint), NULL,
     "hub base URL (default HF_ENDPOINT, MODELSCOPE_DOMAIN, or the public hub)", 0, 0, NULL, NULL},
    {"token", SW_OPT_STRING, offsetof(struct fetch_opts, token), NULL,
     "access token (default HF_TOKEN, the huggingface_hub token file, MODELSCOPE_API_TOKEN)", 0, 0,
     NULL, NULL},
    {"max_workers", SW_OPT_INT, offsetof(struct fetch_opts, max_workers), "8", "parallel downloads",
     1, 64, NULL, NULL},
    {"max_retries", SW_OPT_INT, offsetof(struct fetch_opts, max_retries), "5",
     "retries of a failing request (429, 5xx, dropped connections)", 0, 100, NULL, NULL},
    {"max_wait", SW_OPT_FLOAT, offsetof(struct fetch_opts, max_wait), "60",
     "longest single wait between retries, seconds (caps Retry-After)", 0, 3600, NULL, NULL},
    {"offline", SW_OPT_BOOL, offsetof(struct fetch_opts, offline), "false",
     "use the cache only, as HF_HUB_OFFLINE=1 does", 0, 0, NULL, NULL},
    {"dry_run", SW_OPT_BOOL, offsetof(struct fetch_opts, dry_run), "false",
     "list what would be fetched (size, state, path) and write nothing", 0, 0, NULL, NULL},
    {"force_download", SW_OPT_BOOL, offsetof(struct fetch_opts, force_download), "false",
     "download again even what is already in place", 0, 0, NULL, NULL},
    {"verify", SW_OPT_BOOL, offsetof(struct fetch_opts, verify), "false",
     "re-hash files already in place; corrupt ones are fetched again", 0, 0, NULL, NULL},
    SW_OPT_END,
};

static const struct sw_cli fetch_cli = {
    .tool = "sw-fetch",
    .command = NULL,
    .usage = "sw-fetch [options] ORG/NAME [FILE ...]",
    .summary =
        "Download a model or dataset repo (all of it, the files named, or those "
        "--include/--exclude "
        "select) from a Hugging Face-style hub (HF_ENDPOINT, mirrors) or ModelScope (--hub "
        "modelscope) into huggingface_hub's cache, where transformers, vLLM and sw's tools find "
        "it, "
        "or into --local_dir. Interrupted downloads resume; every file is checked against the "
        "sha256 or git blob id the hub publishes before it is put in place. Prints the folder. "
        "Environment: HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, HF_TOKEN, HF_TOKEN_PATH, HF_HUB_OFFLINE, "
        "HF_HUB_DOWNLOAD_TIMEOUT, USE_HF, MODELSCOPE_DOMAIN, MODELSCOPE_CACHE, "
        "MODELSCOPE_API_TOKEN, "
        "and libcurl's http_proxy/https_proxy/no_proxy. Exit status: 0 done, 1 failed, 2 usage, "
        "130/143 interrupted (partial downloads are kept).",
    .opts = fetch_table,
    .min_pos = 1,
    .max_pos = -1,
};

/* Repeated --include/--exclude accumulate (the option table keeps one value per key): rewrite
 * argv so each appears once, its values joined by commas. Returns a new argv (entries borrowed
 * from argv or owned by *owned) or NULL on ENOMEM. */
static char **merge_lists(int argc, char **argv, int *out_argc, char ***owned, int *nowned) {
    static const char *const keys[] = {"include", "exclude", "allow_patterns", "ignore_patterns"};
    char **out = calloc((size_t)argc + 4, sizeof *out);
    char *joined[2] = {NULL, NULL};
    *owned = calloc(2, sizeof **owned);
    if (!out || !*owned) return NULL;
    int n = 0, only_pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int which = -1;
        const char *val = NULL;
        if (!only_pos && i > 0 && strncmp(a, "--", 2) == 0 && a[2]) {
            for (int k = 0; k < 4 && which < 0; k++) {
                char norm[32];
                size_t len = strcspn(a + 2, "=");
                if (len >= sizeof norm) continue;
                for (size_t c = 0; c < len; c++)
                    norm[c] = a[2 + c] == '-' ? '_' : a[2 + c];
                norm[len] = '\0';
                if (strcmp(norm, keys[k]) == 0) {
                    which = k % 2;
                    if (a[2 + len] == '=')
                        val = a + 3 + len;
                    else if (i + 1 < argc)
                        val = argv[++i];
                }
            }
        }
        if (strcmp(a, "--") == 0) only_pos = 1;
        if (which < 0 || !val) {
            out[n++] = argv[i];
            continue;
        }
        char *old = joined[which];
        size_t len = (old ? strlen(old) + 1 : 0) + strlen(val) + 1;
        char *j = malloc(len);
        if (!j) return NULL;
        snprintf(j, len, "%s%s%s", old ? old : "", old ? "," : "", val);
        free(old);
        joined[which] = j;
    }
    for (int k = 0; k < 2; k++) {
        if (!joined[k]) continue;
        size_t len = strlen(joined[k]) + 16;
        char *opt = malloc(len);
        if (!opt) return NULL;
        snprintf(opt, len, "--%s=%s", k == 0 ? "include" : "exclude", joined[k]);
        free(joined[k]);
        (*owned)[(*nowned)++] = opt;
        /* options go before a "--" so they stay options */
        int at = n;
        for (int i = 1; i < n; i++)
            if (strcmp(out[i], "--") == 0) {
                at = i;
                break;
            }
        memmove(out + at + 1, out + at, (size_t)(n - at) * sizeof *out);
        out[at] = opt;
        n++;
    }
    *out_argc = n;
    return out;
}

/* Split a comma-separated list in place into a NULL-terminated array (entries point into s). */
static const char **split_list(char *s, size_t *n) {
    *n = 0;
    if (!s || !*s) return NULL;
    size_t cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    const char **v = calloc(cap + 1, sizeof *v);
    if (!v) return NULL;
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ","))
        if (*tok) v[(*n)++] = tok;
    return v;
}

static const char *state_name(enum sw_hub_file_state s) {
    return s == SW_HUB_FILE_CACHED ? "cached" : s == SW_HUB_FILE_LINKED ? "link" : "fetch";
}

static int run(struct fetch_opts *fo, char **pos, int npos) {
    struct sw_hub_opts o;
    sw_hub_opts_init(&o);
    const char *repo = pos[0];
    for (int i = 1; i < npos; i++)
        if (strpbrk(pos[i], "*?[")) /* a glob given as a file name: a common slip */
            return sw_err_set(SW_EUSAGE,
                              "'%s' looks like a pattern: use --include '%s' (file names "
                              "after the repo id are taken literally)",
                              pos[i], pos[i]);
    if (fo->hub)
        o.hub = strcmp(fo->hub, "modelscope") == 0 ? SW_HUB_MODELSCOPE : SW_HUB_HF;
    else if (fo->use_hf)
        o.hub = strcmp(fo->use_hf, "true") == 0 || strcmp(fo->use_hf, "1") == 0 ? SW_HUB_HF
                                                                                : SW_HUB_MODELSCOPE;
    o.repo_type = strcmp(fo->repo_type, "dataset") == 0 ? SW_HUB_DATASET : SW_HUB_MODEL;
    o.revision = fo->revision;
    o.endpoint = fo->endpoint;
    o.token = fo->token;
    o.cache_dir = fo->cache_dir;
    o.local_dir = fo->local_dir;
    o.max_workers = (int)fo->max_workers;
    o.max_retries = (int)fo->max_retries;
    o.max_wait_s = fo->max_wait;
    o.offline = fo->offline ? 1 : -1;
    o.dry_run = fo->dry_run;
    o.force = fo->force_download;
    o.verify = fo->verify;
    o.files = (const char *const *)(pos + 1);
    o.nfiles = (size_t)(npos - 1);
    const char **inc = split_list(fo->include, &o.ninclude);
    const char **exc = split_list(fo->exclude, &o.nexclude);
    o.include = inc;
    o.exclude = exc;
    struct fetch_display disp;
    fetch_display_init(&disp, repo);
    o.progress = fetch_display_update;
    o.progress_ctx = &disp;

    struct sw_hub_result r;
    int rc = sw_hub_fetch(repo, &o, &r);
    free(inc);
    free(exc);
    if (rc == 0 && o.dry_run) {
        for (size_t i = 0; i < r.nfiles && rc == 0; i++) {
            const struct sw_hub_file *f = &r.files[i];
            if (printf("%lld\t%s\t%s\n", (long long)f->size, state_name(f->state), f->path) < 0)
                rc = sw_err_errno("write to stdout");
        }
        uint64_t want = 0;
        for (size_t i = 0; i < r.nfiles; i++)
            if (r.files[i].state == SW_HUB_FILE_FETCH && r.files[i].size > 0)
                want += (uint64_t)r.files[i].size;
        sw_log(
            SW_LOG_INFO,
            "dry run: %zu files would be fetched (%llu bytes), %zu linked, %zu already in place%s",
            r.nfetched, (unsigned long long)want, r.nlinked, r.ncached,
            r.from_cache ? " (listed from the cache)" : "");
    } else if (rc == 0) {
        if (r.from_cache)
            sw_log(SW_LOG_DEBUG, "%s resolved from the cache", repo);
        else
            sw_log(SW_LOG_INFO,
                   "%s: %zu files fetched (%llu bytes), %zu linked, %zu already in place", repo,
                   r.nfetched, (unsigned long long)r.bytes_fetched, r.nlinked, r.ncached);
        if (printf("%s\n", r.folder) < 0) rc = sw_err_errno("write to stdout");
    }
    if (rc == 0 && fflush(stdout) != 0) rc = sw_err_errno("write to stdout");
    sw_hub_result_release(&r);
    return rc;
}

int main(int argc, char **argv) {
    sw_log_init("sw-fetch");
    sw_io_ignore_sigpipe();
    char **owned = NULL;
    int nowned = 0, margc = 0;
    char **margv = merge_lists(argc, argv, &margc, &owned, &nowned);
    if (!margv) return sw_log_report(sw_err_set(SW_ENOMEM, "out of memory"));
    struct fetch_opts fo;
    char **pos = NULL;
    int npos = 0;
    int rc = sw_cli_parse(&fetch_cli, &fo, margc, margv, &pos, &npos);
    if (rc == 1)
        rc = 0; /* --help / --version */
    else if (rc == 0) {
        sw_signal_install();
        rc = run(&fo, pos, npos);
        free(pos);
        sw_config_release(fetch_table, &fo);
    }
    for (int i = 0; i < nowned; i++)
        free(owned[i]);
    free(owned);
    free(margv);
    if (rc == SW_EINTR) {
        sw_log(SW_LOG_WARN, "%s", sw_err_msg());
        return sw_signal_exit_code(sw_signal_pending());
    }
    return rc < 0 ? sw_log_report(rc) : 0;
}
