/* sw_hub — models and datasets from Hugging Face- and ModelScope-style hubs into the cache layout
 * of huggingface_hub, resumable and verified.
 *
 * sw_hub_fetch() lists a repo at a revision through the hub's HTTP API, keeps the files the
 * include/exclude globs select, and brings each one into
 *
 *     <cache>/models--<org>--<name>/blobs/<etag>              the bytes, named by sha256 (LFS) or
 *                                                             git blob sha1 (plain files)
 *     <cache>/models--<org>--<name>/snapshots/<commit>/<path> -> ../../blobs/<etag> (relative link)
 *     <cache>/models--<org>--<name>/refs/<revision>           the commit the revision resolved to
 *
 * (datasets--<org>--<name> for datasets), the layout transformers, vLLM and huggingface_hub read
 * and write, or into a plain folder (local_dir, with huggingface_hub's .cache/huggingface/download
 * metadata). A download lands in "<blob>.incomplete" first and continues from there with an HTTP
 * Range request after an interruption (a dropped connection, a killed process); it is moved into
 * place only after its bytes match the sha256 (LFS) or git blob sha1 (plain files) the hub
 * published and its size matches the listing, so nothing unverified is ever at a final path.
 * 429 and 5xx answers are retried with exponential backoff honouring Retry-After. File names
 * from the server are validated before use: nothing escapes the target folder.
 *
 * sw_hub_resolve_model() is what tools with a --model option call: a local folder is returned
 * as is; a hub id ("Qwen/Qwen2.5-0.5B") becomes its snapshot folder in the cache, fetched when
 * needed and allowed (HF_HUB_OFFLINE=1 resolves from the cache only).
 *
 * Thread-safety: one call at a time per sw_hub_opts; calls on different threads are independent
 * (libcurl's global state is initialised once, on first use). */
#ifndef SW_HUB_H
#define SW_HUB_H

#include <stddef.h>
#include <stdint.h>

enum sw_hub_kind {
    SW_HUB_AUTO = 0,       /* from the environment: USE_HF=0|false selects ModelScope, else HF */
    SW_HUB_HF = 1,         /* Hugging Face API (HF_ENDPOINT, mirrors) */
    SW_HUB_MODELSCOPE = 2, /* ModelScope API (MODELSCOPE_DOMAIN) */
};

enum sw_hub_repo_type { SW_HUB_MODEL = 0, SW_HUB_DATASET = 1 };

/* What became of one selected file (or would, in a dry run). */
enum sw_hub_file_state {
    SW_HUB_FILE_FETCH = 0, /* downloaded (dry run: would be) */
    SW_HUB_FILE_CACHED,    /* already in place, nothing transferred */
    SW_HUB_FILE_LINKED, /* blob already in the cache (shared with another revision): linked only */
};

/* One file of a repo listing. Strings are owned by the listing/result that holds the file. */
struct sw_hub_file {
    char *path;      /* repo-relative, '/'-separated, validated (sw_hub_path_check) */
    int64_t size;    /* bytes; -1 when the hub did not say */
    char *etag;      /* blob name in the cache: sha256 (LFS) or git blob sha1; NULL if unknown */
    char sha256[65]; /* lowercase hex, "" when unknown */
    char oid[41]; /* git blob sha1 of the bytes (plain files) or of the LFS pointer; "" unknown */
    char *pointer_oid; /* for LFS files: the pointer's git oid (tree cache blob_id), else NULL */
    int lfs;           /* stored in LFS (verified by sha256) */
    enum sw_hub_file_state state;
    char *local; /* final path: snapshot entry or local_dir file (NULL before planning) */
};

/* Progress, reported from the calling thread about 10 times a second and once at the end. */
struct sw_hub_progress_slot {
    const char *path; /* file being transferred by one worker (NULL: idle) */
    uint64_t done, total;
};
struct sw_hub_progress {
    uint64_t bytes_done, bytes_total; /* over the files to transfer */
    size_t files_done, files_total;
    size_t nslots;
    const struct sw_hub_progress_slot *slots; /* nslots, one per worker */
    double elapsed_s;
    int final; /* 1 on the last call */
};
typedef void (*sw_hub_progress_fn)(void *ctx, const struct sw_hub_progress *p);

/* Options; sw_hub_opts_init() sets the defaults (every pointer NULL = take it from the
 * environment or the hub's default). Borrowed strings: they must outlive the call. */
struct sw_hub_opts {
    enum sw_hub_kind hub;
    enum sw_hub_repo_type repo_type;
    const char *revision;  /* branch, tag or commit; NULL: "main" (HF), "master" (ModelScope) */
    const char *endpoint;  /* base URL; NULL: HF_ENDPOINT / MODELSCOPE_DOMAIN / the public hub */
    const char *token;     /* NULL: HF_TOKEN, the token file (HF) or MODELSCOPE_API_TOKEN */
    const char *cache_dir; /* hub cache root; NULL: HF_HUB_CACHE, HF_HOME/hub, ~/.cache/... */
    const char *local_dir; /* non-NULL: a plain folder instead of the cache */
    const char *const *include; /* fnmatch globs (huggingface_hub's allow_patterns) */
    size_t ninclude;
    const char *const *exclude; /* ignore_patterns */
    size_t nexclude;
    const char *const *files; /* exact repo paths to fetch (all must exist), in addition to globs */
    size_t nfiles;
    int max_workers;   /* parallel downloads; default 8 */
    int max_retries;   /* per file and per API call; default 5 */
    double max_wait_s; /* cap on one backoff or Retry-After wait; default 60 */
    int offline;       /* -1: HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE; 0 online; 1 cache only */
    int dry_run;       /* list what would be fetched; writes nothing */
    int force;         /* download again even what is cached */
    int verify;        /* re-hash files already in place; corrupt ones are fetched again */
    int quiet;         /* no progress bar from sw_hub_resolve_model's default display */
    sw_hub_progress_fn progress;
    void *progress_ctx;
};

void sw_hub_opts_init(struct sw_hub_opts *o);

/* The outcome of a fetch. */
struct sw_hub_result {
    char *folder;              /* snapshot folder in the cache, or the local_dir */
    char *commit;              /* the revision's commit (ModelScope: a content id, docs/fetch.md) */
    char *repo_dir;            /* <cache>/models--org--name (NULL with local_dir) */
    struct sw_hub_file *files; /* the selected files, in listing order */
    size_t nfiles;
    size_t nfetched, ncached, nlinked;
    uint64_t bytes_fetched; /* payload bytes transferred by this call */
    uint64_t bytes_total;   /* size of the selected files */
    int from_cache;         /* 1: resolved from the cache without the hub (offline or hub down) */
};
void sw_hub_result_release(struct sw_hub_result *r);

/* Fetch repo_id ("org/name", or "name" for HF's legacy ids) as o says and fill *res (release
 * it with sw_hub_result_release, also on error). Returns 0; SW_ENOTFOUND (repo, revision or an
 * explicit file missing, or offline and not cached); SW_ECORRUPT (bytes not matching the hub's
 * sha256/etag/size; the bad download is deleted); SW_EIO (network, HTTP and authentication
 * errors, gated repos: the message says what to do); SW_EFORMAT (unsafe file names or malformed
 * API answers); SW_EINTR (SIGINT/SIGTERM when sw_signal_install() is active; partial downloads
 * are kept for resumption); SW_EUSAGE (bad repo id or revision). */
int sw_hub_fetch(const char *repo_id, const struct sw_hub_opts *o, struct sw_hub_result *res);

/* For tools with --model: turn model (a local path or a hub id) into a folder (*folder,
 * malloc'ed). An existing path is returned unchanged. Otherwise, when model looks like a hub id
 * (sw_hub_looks_like_id), the whole repo at o->revision is fetched into the cache (or only
 * checked there when offline) and its snapshot folder returned; o may be NULL (defaults: hub
 * from USE_HF, everything from the environment, a progress line on a terminal). Errors as
 * sw_hub_fetch; a missing local path that is no hub id is SW_ENOTFOUND. */
int sw_hub_resolve_model(const char *model, const struct sw_hub_opts *o, char **folder);

/* What a tool needs from a repo named on its command line (the files sw_hub_resolve_arg fetches).
 */
enum sw_hub_need {
    SW_HUB_NEED_MODEL = 0, /* everything but weight formats sw does not read (*.bin, *.pth, *.pt,
                            * *.msgpack, *.h5, *.ot, *.onnx, onnx/, *.gguf, original/,
                            * consolidated*): config, tokenizer, safetensors (PEFT adapters too) */
    SW_HUB_NEED_TOKENIZER, /* config and tokenizer files only (*.json, *.model, *.txt, *.tiktoken,
                            * *.jinja): for --tokenizer */
    SW_HUB_NEED_ALL,       /* every file */
};

/* The one call for a tool option that takes a folder or a hub id (--model, --adapters,
 * --tokenizer): *arg (malloc'ed, e.g. owned by an sw_config options struct) is replaced by the
 * resolved folder (malloc'ed; the old string freed) when it is a hub id, and left alone when it
 * is an existing path or NULL. use_hf is ms-swift's option value ("true"/"1": HF, "false"/"0":
 * ModelScope, NULL: USE_HF), revision and token may be NULL (defaults, environment). Errors as
 * sw_hub_resolve_model. */
int sw_hub_resolve_arg(char **arg, enum sw_hub_need need, const char *use_hf, const char *revision,
                       const char *token);

/* The three sw_config option rows (struct sw_opt, sw_config.h) that go with sw_hub_resolve_arg,
 * under ms-swift's names: use_hf, model_revision, hub_token. T is the options struct; it needs
 * char *use_hf, *model_revision, *hub_token. */
#define SW_HUB_OPT_ROWS(T)                                                                         \
    {"use_hf",                                                                                     \
     SW_OPT_CHOICE,                                                                                \
     offsetof(T, use_hf),                                                                          \
     NULL,                                                                                         \
     "hub ids (org/name): true = Hugging Face, false = ModelScope (default: $USE_HF, else "        \
     "Hugging Face)",                                                                              \
     0,                                                                                            \
     0,                                                                                            \
     "true|false|1|0",                                                                             \
     NULL},                                                                                        \
        {"model_revision",                                                                         \
         SW_OPT_STRING,                                                                            \
         offsetof(T, model_revision),                                                              \
         NULL,                                                                                     \
         "hub revision of the model (default main / master)",                                      \
         0,                                                                                        \
         0,                                                                                        \
         NULL,                                                                                     \
         NULL},                                                                                    \
    {                                                                                              \
        "hub_token", SW_OPT_STRING, offsetof(T, hub_token), NULL,                                  \
            "hub access token (default: HF_TOKEN, the huggingface_hub token file, "                \
            "MODELSCOPE_API_TOKEN)",                                                               \
            0, 0, NULL, NULL                                                                       \
    }

/* ---- pure helpers (no I/O; exposed for tools and tests) ---- */

/* Whether s is shaped like a hub id rather than a local path: "org/name" or "name" made of
 * [A-Za-z0-9._-], no "--" or "..", not starting or ending with '.' or '-', at most 96
 * characters, and not starting with "./", "../", "/" or "~". */
int sw_hub_looks_like_id(const char *s);
/* 0 when id is a valid repo id, else SW_EUSAGE with the message set. */
int sw_hub_repo_id_check(const char *id);
/* 0 when rev is usable as a revision (and as the refs/<rev> file name): no "..", no empty,
 * "." or absolute components, no control characters or backslashes, at most 256 bytes. */
int sw_hub_revision_check(const char *rev);
/* 0 when path (a file name from the server) is a safe relative path: not empty, not absolute,
 * no "", "." or ".." components, no backslash or control character, components of at most 255
 * bytes, at most 4096 bytes in all. Else SW_EFORMAT naming the path. */
int sw_hub_path_check(const char *path);
/* 0 when an etag is usable as a blob file name: 1..128 of [A-Za-z0-9._-], not starting with
 * '.'. */
int sw_hub_etag_check(const char *etag);
/* "models--org--name" / "datasets--org--name" (malloc'ed; NULL on ENOMEM). */
char *sw_hub_repo_folder_name(enum sw_hub_repo_type type, const char *repo_id);
/* Python fnmatch.fnmatchcase semantics (what huggingface_hub's allow/ignore patterns use):
 * '*' matches any run of characters including '/', '?' one character, [abc], [a-z], [!abc];
 * an unclosed '[' is literal; '\' in either string counts as '/'. Returns 1 on a match. */
int sw_hub_glob_match(const char *pattern, const char *name);
/* huggingface_hub's filter_repo_objects: kept when it matches one include (or there are none)
 * and no exclude; a pattern ending in '/' matches everything under that folder. */
int sw_hub_filter(const char *path, const char *const *include, size_t ninclude,
                  const char *const *exclude, size_t nexclude);
/* Relative symlink target from snapshots/<commit>/<path> to blobs/<etag>:
 * "../" x (depth of path) + "../../blobs/<etag>" (malloc'ed). */
char *sw_hub_blob_link(const char *path, const char *etag);

/* ---- environment ---- */

/* The hub a SW_HUB_AUTO request means (USE_HF). */
enum sw_hub_kind sw_hub_kind_resolve(enum sw_hub_kind k);
/* Cache root for a hub (malloc'ed): explicit, else for HF HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE,
 * HF_HOME/hub, XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub; for ModelScope
 * MODELSCOPE_CACHE/sw-hub, ~/.cache/modelscope/sw-hub. */
int sw_hub_cache_root(enum sw_hub_kind k, const char *explicit_dir, char **out);
/* API base URL without a trailing '/' (malloc'ed): explicit, else HF_ENDPOINT or
 * https://huggingface.co; MODELSCOPE_DOMAIN ("host" means https://host; a value with "://" is
 * used as is) or https://www.modelscope.cn. */
int sw_hub_endpoint(enum sw_hub_kind k, const char *explicit_url, char **out);
/* The token to send (malloc'ed, NULL when none) and where it came from ("--token", "HF_TOKEN",
 * a file path, ...; a static or borrowed string, never the token). HF: explicit, HF_TOKEN,
 * HUGGING_FACE_HUB_TOKEN, then the file HF_TOKEN_PATH or HF_HOME/token (what `hf auth login`
 * writes); ModelScope: explicit, MODELSCOPE_API_TOKEN. */
int sw_hub_token(enum sw_hub_kind k, const char *explicit_token, char **out, const char **source);
/* 1 when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set to a true value (1, ON, YES, TRUE). */
int sw_hub_env_offline(void);

#endif
