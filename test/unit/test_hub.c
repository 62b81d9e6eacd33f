/* Unit tests for lib/hub: the pure pieces (repo ids, revisions, safe names, cache folder names
 * and link targets, globs with Python fnmatch's semantics, response header parsing, the listing
 * parsers and their checks, the tree cache round trip), the environment rules (cache root,
 * endpoint, token, offline), the hashing and folder helpers, and sw_hub_resolve_model: a local
 * path, a hand-made offline cache, and — when python3 can run test/hub/mock_hub.py — an online
 * fetch through the mock hub. */
#include "sw_err.h"
#include "sw_hub.h"
#include "sw_hub_impl.h"
#include "sw_io.h"
#include "tap.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmp[256];

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_ids(void) {
    OK(sw_hub_looks_like_id("Qwen/Qwen2.5-0.5B-Instruct"),
       "org/name with dots and dashes is an id");
    OK(sw_hub_looks_like_id("gpt2"), "a legacy id without org");
    OK(!sw_hub_looks_like_id("./models/x"), "./ path is not an id");
    OK(!sw_hub_looks_like_id("/abs/path"), "absolute path is not an id");
    OK(!sw_hub_looks_like_id("a/b/c"), "two slashes: a path");
    OK(!sw_hub_looks_like_id("org/../x"), "'..' is not an id");
    OK(!sw_hub_looks_like_id("org--x/y"), "'--' is not allowed (cache folder separator)");
    OK(!sw_hub_looks_like_id("org/name.git"), "'.git' suffix is not allowed");
    OK(!sw_hub_looks_like_id("~/x"), "'~' is not an id character");
    OK(!sw_hub_looks_like_id(".hidden/x"), "leading '.' is not allowed");
    OK(!sw_hub_looks_like_id(""), "empty is not an id");
    char long_id[120];
    memset(long_id, 'a', 97);
    long_id[97] = '\0';
    OK(!sw_hub_looks_like_id(long_id), "97 characters is too long");
    IS_INT(sw_hub_repo_id_check("a/b/c"), SW_EUSAGE, "repo_id_check: usage error");
    OK(strstr(sw_err_msg(), "'a/b/c' is not a repo id") != NULL, "message names the id");

    IS_INT(sw_hub_revision_check("main"), 0, "revision main");
    IS_INT(sw_hub_revision_check("refs/pr/1"), 0, "revision refs/pr/1");
    IS_INT(sw_hub_revision_check("../x"), SW_EUSAGE, "revision ../x refused");
    IS_INT(sw_hub_revision_check("/abs"), SW_EUSAGE, "absolute revision refused");
    IS_INT(sw_hub_revision_check("a//b"), SW_EUSAGE, "empty component refused");

    static const char *bad[] = {"",   "/etc/passwd", "../x", "a/../../x", "a/./b", "a//b",
                                "a/", "x\\..\\y",    "a\nb", "..",        "."};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        IS_INT(sw_hub_path_check(bad[i]), SW_EFORMAT, "unsafe server name #%zu refused", i);
    IS_INT(sw_hub_path_check("model-00001-of-00002.safetensors"), 0, "plain name accepted");
    IS_INT(sw_hub_path_check("a/b/c..d/.e"), 0, "dots inside names are fine");
    char longc[300];
    memset(longc, 'x', 256);
    longc[256] = '\0';
    IS_INT(sw_hub_path_check(longc), SW_EFORMAT, "a 256-byte component is refused");

    IS_INT(sw_hub_etag_check("9b4fca83c263d86ddd36fe601634c0d42ed1f73c2b1530a2a65602a2391a85e9"), 0,
           "sha256 etag");
    IS_INT(sw_hub_etag_check("../../x"), SW_EFORMAT, "etag with '/' refused");
    IS_INT(sw_hub_etag_check(".hidden"), SW_EFORMAT, "etag starting with '.' refused");
    IS_INT(sw_hub_etag_check(""), SW_EFORMAT, "empty etag refused");
}

static void test_paths(void) {
    char *s = sw_hub_repo_folder_name(SW_HUB_MODEL, "Qwen/Qwen2.5-0.5B");
    IS_STR(s, "models--Qwen--Qwen2.5-0.5B", "model folder name");
    free(s);
    s = sw_hub_repo_folder_name(SW_HUB_DATASET, "org/data");
    IS_STR(s, "datasets--org--data", "dataset folder name");
    free(s);
    s = sw_hub_repo_folder_name(SW_HUB_MODEL, "gpt2");
    IS_STR(s, "models--gpt2", "legacy id folder name");
    free(s);
    s = sw_hub_blob_link("config.json", "abc");
    IS_STR(s, "../../blobs/abc", "link from the snapshot root");
    free(s);
    s = sw_hub_blob_link("a/b/c.txt", "abc");
    IS_STR(s, "../../../../blobs/abc", "link from two folders down");
    free(s);
}

static void test_glob(void) {
    /* Expected values from Python's fnmatch.fnmatchcase (what huggingface_hub uses). */
    static const struct {
        const char *pat, *name;
        int want;
    } g[] = {
        {"*.json", "config.json", 1},
        {"*.json", "sub/a.json", 1},
        {"*", "a/b/c", 1},
        {"sub/*", "sub/x/y", 1},
        {"?.txt", "a.txt", 1},
        {"?.txt", "ab.txt", 0},
        {"[abc].md", "b.md", 1},
        {"[!abc].md", "b.md", 0},
        {"[!abc].md", "d.md", 1},
        {"[a-c]x", "bx", 1},
        {"[a-c]x", "dx", 0},
        {"[]]x", "]x", 1},
        {"[!]]x", "ax", 1},
        {"[x", "[x", 1},
        {"[x", "x", 0},
        {"a*b*c", "aXbYc", 1},
        {"a*b*c", "aXbY", 0},
        {"*.safetensors", "model-00001-of-00002.safetensors", 1},
        {"model*.bin", "model.bin", 1},
        {"", "", 1},
        {"*", "", 1},
        {"a", "A", 0},
        {"*/*", "a", 0},
        {"[a-]x", "-x", 1},
        {"**", "x/y", 1},
        {"a?c", "a/c", 1},
        {"tokenizer*", "tokenizer_config.json", 1},
    };
    for (size_t i = 0; i < sizeof g / sizeof *g; i++)
        IS_INT(sw_hub_glob_match(g[i].pat, g[i].name), g[i].want, "fnmatch('%s', '%s')", g[i].name,
               g[i].pat);
    IS_INT(sw_hub_glob_match("sub\\*.txt", "sub/a.txt"), 1, "backslash counts as '/'");

    const char *inc[] = {"*.json", "sub/"}, *exc[] = {"tokenizer*"};
    OK(sw_hub_filter("config.json", inc, 2, exc, 1), "filter: included");
    OK(!sw_hub_filter("tokenizer.json", inc, 2, exc, 1), "filter: excluded wins");
    OK(sw_hub_filter("sub/deep/x.bin", inc, 2, exc, 1), "filter: 'sub/' matches below the folder");
    OK(!sw_hub_filter("model.bin", inc, 2, exc, 1), "filter: not included");
    OK(sw_hub_filter("anything", NULL, 0, NULL, 0), "filter: no patterns keeps all");
}

static void feed(struct sw_hub_headers *h, const char *line) {
    sw_hub_headers_feed(h, line, strlen(line), 1.0e9);
}

static void test_headers(void) {
    struct sw_hub_headers h;
    sw_hub_headers_reset(&h);
    /* The hub's 302 to the CDN carries the LFS ids; the CDN's 206 carries the bytes. */
    feed(&h, "HTTP/1.1 302 Found\r\n");
    feed(&h, "X-Repo-Commit: f98ab2bcf94547c32abffc31d5cd34c183849b82\r\n");
    feed(&h,
         "x-linked-etag: \"9b4fca83c263d86ddd36fe601634c0d42ed1f73c2b1530a2a65602a2391a85e9\"\r\n");
    feed(&h, "X-Linked-Size: 100000\r\n");
    feed(&h, "ETag: \"dd81748cbcb4c6c827095492beaabb2855cf38c9\"\r\n");
    feed(&h, "Location: http://cdn/x\r\n");
    feed(&h, "\r\n");
    feed(&h, "HTTP/2 206 \r\n");
    feed(&h, "content-range: bytes 1000-99999/100000\r\n");
    feed(&h, "Content-Length: 99000\r\n");
    feed(&h, "ETag: W/\"cdn-etag\"\r\n");
    IS_INT(h.status, 206, "status of the last response");
    IS_INT(h.nresponses, 2, "two responses");
    IS_STR(h.repo_commit, "f98ab2bcf94547c32abffc31d5cd34c183849b82",
           "X-Repo-Commit kept across the redirect");
    IS_STR(h.linked_etag, "9b4fca83c263d86ddd36fe601634c0d42ed1f73c2b1530a2a65602a2391a85e9",
           "X-Linked-Etag unquoted");
    IS_INT(h.linked_size, 100000, "X-Linked-Size");
    IS_STR(h.etag, "cdn-etag", "ETag of the last response, W/ and quotes stripped");
    IS_INT(h.range_start, 1000, "Content-Range start");
    IS_INT(h.range_end, 99999, "Content-Range end");
    IS_INT(h.range_total, 100000, "Content-Range total");
    IS_INT(h.content_length, 99000, "Content-Length");

    sw_hub_headers_reset(&h);
    feed(&h, "HTTP/1.1 100 Continue");
    IS_INT(h.nresponses, 0, "1xx is not a response");
    feed(&h, "HTTP/1.1 429 Too Many Requests");
    feed(&h, "Retry-After: 7");
    IS_NEAR(h.retry_after, 7, 0, "Retry-After seconds");
    feed(&h, "Retry-After: Sun, 09 Sep 2001 01:46:50 GMT"); /* 1e9 + 10 */
    IS_NEAR(h.retry_after, 10, 0, "Retry-After HTTP date relative to now");
    feed(&h, "Retry-After: soon");
    IS_NEAR(h.retry_after, -1, 0, "unparsable Retry-After is absent");
    feed(&h, "Content-Range: bytes */5");
    IS_INT(h.range_total, 5, "unsatisfiable range total");
    IS_INT(h.range_start, -1, "no start in bytes */t");
    feed(&h, "X-Error-Code: GatedRepo");
    feed(&h, "X-Error-Message: Access to model a/b is restricted.");
    IS_STR(h.error_code, "GatedRepo", "X-Error-Code");
    IS_STR(h.error_message, "Access to model a/b is restricted.", "X-Error-Message");
    feed(&h, "Content-Length: 12x");
    IS_INT(h.content_length, -1, "malformed Content-Length is absent");
    feed(&h, "no colon here");
    feed(&h, "HTTP/1.1 200 OK");
    IS_STR(h.error_code, "", "a new response clears the error fields");

    char out[256];
    const char *link =
        "<https://hub/api/models/a/b/tree/main?cursor=x>; rel=\"next\", <https://hub/p>; rel=prev";
    IS_INT(sw_hub_parse_link_next(link, strlen(link), out, sizeof out), 0, "Link next found");
    IS_STR(out, "https://hub/api/models/a/b/tree/main?cursor=x", "Link next URL");
    const char *prev = "<https://hub/p>; rel=\"prev\"";
    IS_INT(sw_hub_parse_link_next(prev, strlen(prev), out, sizeof out), -1,
           "no next in a prev-only Link");
    const char *second = "<https://a>; rel=\"prev\", <https://b>; rel=next";
    sw_hub_parse_link_next(second, strlen(second), out, sizeof out);
    IS_STR(out, "https://b", "next as the second link, unquoted");
    IS_INT(sw_hub_parse_link_next("<unclosed", 9, out, sizeof out), -1, "unclosed link");
}

static void test_listings(void) {
    const char *rev =
        "{\"id\":\"org/tiny\",\"sha\":\"f98ab2bcf94547c32abffc31d5cd34c183849b82\",\"siblings\":["
        "{\"rfilename\":\"config.json\",\"size\":8,\"blobId\":"
        "\"0187f3b09d66cef7911083ad49f890f5a6589589\"},"
        "{\"rfilename\":\"model.safetensors\",\"size\":100000,\"blobId\":"
        "\"dd81748cbcb4c6c827095492beaabb2855cf38c9\","
        "\"lfs\":{\"size\":100000,\"sha256\":"
        "\"9B4FCA83C263D86DDD36FE601634C0D42ED1F73C2B1530A2A65602A2391A85E9\",\"pointerSize\":131}}"
        ","
        "{\"rfilename\":\"sub/"
        "readme.txt\",\"size\":3,\"blobId\":\"45b983be36b73c0788dc9cbcb76cbb80fc7bb057\"}]}";
    struct sw_hub_listing l = {0};
    IS_INT(sw_hub_parse_hf_revision(rev, strlen(rev), "rev", &l), 0, "HF revision JSON parses");
    IS_INT(l.n, 3, "three siblings");
    IS_STR(l.commit, "f98ab2bcf94547c32abffc31d5cd34c183849b82", "commit");
    OK(l.complete_meta, "all files have size and etag");
    IS_STR(l.files[0].etag, "0187f3b09d66cef7911083ad49f890f5a6589589",
           "plain file: etag = git blob id");
    OK(!l.files[0].lfs && l.files[1].lfs, "lfs flags");
    IS_STR(l.files[1].etag, "9b4fca83c263d86ddd36fe601634c0d42ed1f73c2b1530a2a65602a2391a85e9",
           "LFS: etag = sha256, lowercased");
    IS_STR(l.files[1].pointer_oid, "dd81748cbcb4c6c827095492beaabb2855cf38c9",
           "LFS pointer oid kept");
    IS_INT(l.files[1].size, 100000, "LFS size");
    IS_INT(sw_hub_listing_check(&l, "rev"), 0, "listing is safe");

    /* The tree cache: byte-identical to what huggingface_hub writes for the same listing. */
    char *json = NULL;
    IS_INT(sw_hub_tree_cache_json(&l, &json), 0, "tree cache JSON");
    const char *want_tree =
        "{\n \"format_version\": 1,\n \"files\": {\n  \"config.json\": {\n   \"size\": 8,\n"
        "   \"blob_id\": \"0187f3b09d66cef7911083ad49f890f5a6589589\"\n  },\n"
        "  \"model.safetensors\": {\n   \"size\": 100000,\n   \"blob_id\": "
        "\"dd81748cbcb4c6c827095492beaabb2855cf38c9\",\n"
        "   \"lfs_sha256\": \"9b4fca83c263d86ddd36fe601634c0d42ed1f73c2b1530a2a65602a2391a85e9\",\n"
        "   \"lfs_size\": 100000\n  },\n  \"sub/readme.txt\": {\n   \"size\": 3,\n"
        "   \"blob_id\": \"45b983be36b73c0788dc9cbcb76cbb80fc7bb057\"\n  }\n }\n}";
    IS_STR(json, want_tree, "tree cache matches huggingface_hub's json.dump(indent=1)");
    struct sw_hub_listing t = {0};
    IS_INT(sw_hub_parse_tree_cache(json, strlen(json), "tree", &t), 0, "tree cache parses back");
    OK(t.n == 3 && strcmp(t.files[1].etag, l.files[1].etag) == 0 && t.files[1].lfs &&
           strcmp(t.files[2].oid, l.files[2].oid) == 0 && t.files[2].size == 3,
       "tree cache round trip keeps ids and sizes");
    sw_hub_listing_release(&t);
    free(json);

    char id1[41], id2[41];
    IS_INT(sw_hub_listing_content_id(&l, id1), 0, "content id");
    struct sw_hub_file f0 = l.files[0];
    l.files[0] = l.files[2];
    l.files[2] = f0;
    sw_hub_listing_content_id(&l, id2);
    IS_STR(id1, id2, "content id does not depend on listing order");
    sw_hub_listing_release(&l);

    const char *tree =
        "[{\"type\":\"directory\",\"oid\":\"x\",\"size\":0,\"path\":\"sub\"},"
        "{\"type\":\"file\",\"oid\":\"45b983be36b73c0788dc9cbcb76cbb80fc7bb057\",\"size\":3,"
        "\"path\":\"sub/readme.txt\"},"
        "{\"type\":\"file\",\"oid\":\"dd81748cbcb4c6c827095492beaabb2855cf38c9\",\"size\":100000,"
        "\"path\":\"m.bin\","
        "\"lfs\":{\"oid\":\"9b4fca83c263d86ddd36fe601634c0d42ed1f73c2b1530a2a65602a2391a85e9\","
        "\"size\":100000,\"pointerSize\":131}}]";
    IS_INT(sw_hub_parse_hf_tree(tree, strlen(tree), "tree", &l), 0, "HF tree page parses");
    OK(l.n == 2 && l.files[1].lfs &&
           strcmp(l.files[1].sha256,
                  "9b4fca83c263d86ddd36fe601634c0d42ed1f73c2b1530a2a65602a2391a85e9") == 0,
       "tree: folders skipped, LFS oid is the sha256");
    sw_hub_listing_release(&l);

    const char *ms =
        "{\"Code\":200,\"Data\":{\"Files\":[{\"Name\":\"sub\",\"Path\":\"sub\",\"Type\":\"tree\","
        "\"Size\":0},"
        "{\"Name\":\"a.txt\",\"Path\":\"sub/a.txt\",\"Type\":\"blob\",\"Size\":3,"
        "\"Sha256\":\"98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4\",\"IsLFS\":"
        "false},"
        "{\"Name\":\"b\",\"Path\":\"b\",\"Type\":\"blob\",\"Size\":5,\"Sha256\":\"\",\"IsLFS\":"
        "true}]},\"Success\":true}";
    size_t count = 0;
    IS_INT(sw_hub_parse_ms_files(ms, strlen(ms), "ms", &l, &count), 0, "ModelScope files parse");
    IS_INT(count, 3, "page count includes folders");
    OK(l.n == 2 && strcmp(l.files[0].etag,
                          "98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4") == 0,
       "ModelScope blob etag = Sha256");
    OK(l.files[1].etag == NULL && l.files[1].lfs && !l.complete_meta,
       "a file without Sha256 has no etag");
    sw_hub_listing_release(&l);
    const char *ms_err = "{\"Code\":10010205001,\"Message\":\"model not found\",\"Data\":null}";
    IS_INT(sw_hub_parse_ms_files(ms_err, strlen(ms_err), "ms", &l, &count), SW_EIO,
           "ModelScope error Code");
    OK(strstr(sw_err_msg(), "model not found") != NULL, "carries the hub's Message");
    sw_hub_listing_release(&l);
    int64_t id = 0;
    const char *dsid = "{\"Code\":200,\"Data\":{\"Id\":1234,\"Type\":0}}";
    IS_INT(sw_hub_parse_ms_dataset_id(dsid, strlen(dsid), "ds", &id), 0, "dataset id parses");
    IS_INT(id, 1234, "dataset id");

    /* Malformed or hostile answers. */
    static const char *bad[] = {
        "{\"sha\":\"nothex\",\"siblings\":[]}",
        "{\"sha\":\"f98ab2bcf94547c32abffc31d5cd34c183849b82\"}",
        "{\"sha\":\"f98ab2bcf94547c32abffc31d5cd34c183849b82\",\"siblings\":[{\"rfilename\":\"a\","
        "\"size\":-1}]}",
        "{\"sha\":\"f98ab2bcf94547c32abffc31d5cd34c183849b82\",\"siblings\":[{\"rfilename\":\"a\","
        "\"blobId\":\"zz\"}]}",
        "{\"sha\":\"f98ab2bcf94547c32abffc31d5cd34c183849b82\",\"siblings\":[{\"rfilename\":"
        "\"a\\u0000b\"}]}",
        "{\"sha\":\"f98ab2bcf94547c32abffc31d5cd34c183849b82\",\"siblings\":[{\"rfilename\":\"a\","
        "\"lfs\":{\"size\":1}}]}",
        "[1,2",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memset(&l, 0, sizeof l);
        IS_INT(sw_hub_parse_hf_revision(bad[i], strlen(bad[i]), "bad", &l), SW_EFORMAT,
               "malformed revision JSON #%zu", i);
        sw_hub_listing_release(&l);
    }
    struct sw_hub_file *f;
    memset(&l, 0, sizeof l);
    sw_hub_listing_add(&l, "a", 1, &f);
    sw_hub_listing_add(&l, "a/b", 3, &f);
    IS_INT(sw_hub_listing_check(&l, "x"), SW_EFORMAT, "file and folder of the same name refused");
    OK(strstr(sw_err_msg(), "'a' is both a file and the folder of 'a/b'") != NULL, "names both");
    sw_hub_listing_add(&l, "a", 1, &f);
    IS_INT(sw_hub_listing_check(&l, "x"), SW_EFORMAT, "duplicate refused");
    sw_hub_listing_release(&l);
    memset(&l, 0, sizeof l);
    sw_hub_listing_add(&l, "../../evil", 10, &f);
    IS_INT(sw_hub_listing_check(&l, "x"), SW_EFORMAT, "traversal refused");
    sw_hub_listing_release(&l);
}

static void test_env(void) {
    char *s = NULL;
    const char *src = NULL;
    unsetenv("HF_HUB_CACHE");
    unsetenv("HUGGINGFACE_HUB_CACHE");
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", "/home/u", 1);
    unsetenv("HF_HOME");
    sw_hub_cache_root(SW_HUB_HF, NULL, &s);
    IS_STR(s, "/home/u/.cache/huggingface/hub", "default HF cache");
    free(s);
    setenv("HF_HOME", "/h", 1);
    sw_hub_cache_root(SW_HUB_HF, NULL, &s);
    IS_STR(s, "/h/hub", "HF_HOME/hub");
    free(s);
    setenv("HF_HUB_CACHE", "/c", 1);
    sw_hub_cache_root(SW_HUB_HF, NULL, &s);
    IS_STR(s, "/c", "HF_HUB_CACHE wins");
    free(s);
    sw_hub_cache_root(SW_HUB_HF, "/explicit", &s);
    IS_STR(s, "/explicit", "--cache_dir wins");
    free(s);
    unsetenv("HF_HUB_CACHE");
    unsetenv("MODELSCOPE_CACHE");
    sw_hub_cache_root(SW_HUB_MODELSCOPE, NULL, &s);
    IS_STR(s, "/home/u/.cache/modelscope/sw-hub", "default ModelScope cache");
    free(s);

    unsetenv("HF_ENDPOINT");
    sw_hub_endpoint(SW_HUB_HF, NULL, &s);
    IS_STR(s, "https://huggingface.co", "default endpoint");
    free(s);
    setenv("HF_ENDPOINT", "https://hf-mirror.com/", 1);
    sw_hub_endpoint(SW_HUB_HF, NULL, &s);
    IS_STR(s, "https://hf-mirror.com", "HF_ENDPOINT, trailing '/' dropped");
    free(s);
    setenv("MODELSCOPE_DOMAIN", "modelscope.example", 1);
    sw_hub_endpoint(SW_HUB_MODELSCOPE, NULL, &s);
    IS_STR(s, "https://modelscope.example", "MODELSCOPE_DOMAIN host");
    free(s);
    IS_INT(sw_hub_endpoint(SW_HUB_HF, "ftp://x", &s), SW_EUSAGE, "non-http endpoint refused");

    unsetenv("HF_TOKEN");
    unsetenv("HUGGING_FACE_HUB_TOKEN");
    unsetenv("HF_TOKEN_PATH");
    char home[300], path[320];
    snprintf(home, sizeof home, "%s/hfhome", tmp);
    mkdir(home, 0777);
    setenv("HF_HOME", home, 1);
    sw_hub_token(SW_HUB_HF, NULL, &s, &src);
    OK(s == NULL && src == NULL, "no token anywhere: anonymous");
    snprintf(path, sizeof path, "%s/token", home);
    write_file(path, "  hf_from_file\n");
    sw_hub_token(SW_HUB_HF, NULL, &s, &src);
    IS_STR(s, "hf_from_file", "token file under HF_HOME, trimmed");
    IS_STR(src, path, "source is the file");
    free(s);
    setenv("HF_TOKEN", "hf_env", 1);
    sw_hub_token(SW_HUB_HF, NULL, &s, &src);
    IS_STR(s, "hf_env", "HF_TOKEN beats the file");
    free(s);
    sw_hub_token(SW_HUB_HF, "hf_flag", &s, &src);
    IS_STR(src, "--token", "--token beats HF_TOKEN");
    free(s);
    unsetenv("HF_TOKEN");
    setenv("MODELSCOPE_API_TOKEN", "ms_tok", 1);
    sw_hub_token(SW_HUB_MODELSCOPE, NULL, &s, &src);
    IS_STR(s, "ms_tok", "MODELSCOPE_API_TOKEN");
    free(s);
    unsetenv("MODELSCOPE_API_TOKEN");

    setenv("HF_HUB_OFFLINE", "1", 1);
    OK(sw_hub_env_offline(), "HF_HUB_OFFLINE=1");
    setenv("HF_HUB_OFFLINE", "0", 1);
    OK(!sw_hub_env_offline(), "HF_HUB_OFFLINE=0");
    unsetenv("HF_HUB_OFFLINE");
    setenv("TRANSFORMERS_OFFLINE", "true", 1);
    OK(sw_hub_env_offline(), "TRANSFORMERS_OFFLINE=true");
    unsetenv("TRANSFORMERS_OFFLINE");
    setenv("USE_HF", "0", 1);
    IS_INT(sw_hub_kind_resolve(SW_HUB_AUTO), SW_HUB_MODELSCOPE, "USE_HF=0: ModelScope");
    IS_INT(sw_hub_kind_resolve(SW_HUB_HF), SW_HUB_HF, "explicit hub wins over USE_HF");
    unsetenv("USE_HF");
    IS_INT(sw_hub_kind_resolve(SW_HUB_AUTO), SW_HUB_HF, "default: HF");
}

static void test_files(void) {
    char p[300], hex[72];
    snprintf(p, sizeof p, "%s/hello.txt", tmp);
    write_file(p, "hello\n");
    IS_INT(sw_hub_hash_file(p, 0, hex, sizeof hex), 0, "git blob sha1 of a file");
    IS_STR(hex, "ce013625030ba8dba906f756967f9e9ca394464a", "equals `git hash-object`");
    sw_hub_hash_file(p, 1, hex, sizeof hex);
    IS_STR(hex, "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
           "sha256 of a file");

    char root[300], outside[300], link[320], probe[400];
    snprintf(root, sizeof root, "%s/root", tmp);
    snprintf(outside, sizeof outside, "%s/outside", tmp);
    mkdir(root, 0777);
    mkdir(outside, 0777);
    IS_INT(sw_hub_mkdirs_below(root, "a/b/c"), 0, "mkdirs below root");
    snprintf(probe, sizeof probe, "%s/a/b/c", root);
    struct stat st;
    OK(stat(probe, &st) == 0 && S_ISDIR(st.st_mode), "folders made");
    snprintf(link, sizeof link, "%s/ln", root);
    if (symlink(outside, link) != 0) DIAG("symlink failed");
    IS_INT(sw_hub_mkdirs_below(root, "ln/x"), SW_EIO, "a symlink below root is refused");
    snprintf(probe, sizeof probe, "%s/x", outside);
    OK(stat(probe, &st) != 0, "nothing created through it");
}

/* A hand-made cache: refs/main -> commit, the snapshot with one file. */
static void test_resolve_offline(void) {
    char *folder = NULL;
    IS_INT(sw_hub_resolve_model(tmp, NULL, &folder), 0, "an existing path is returned as is");
    IS_STR(folder, tmp, "same path");
    free(folder);
    IS_INT(sw_hub_resolve_model("./no/such/dir", NULL, &folder), SW_ENOTFOUND,
           "a missing path that is no id");
    OK(strstr(sw_err_msg(), "no such file or folder") != NULL, "says so");

    const char *commit = "0123456789abcdef0123456789abcdef01234567";
    char cache[300], p[600];
    snprintf(cache, sizeof cache, "%s/cache", tmp);
    snprintf(p, sizeof p, "%s/models--org--m/snapshots/%s", cache, commit);
    IS_INT(sw_mkdir_p(p), 0, "snapshot folder");
    snprintf(p, sizeof p, "%s/models--org--m/snapshots/%s/config.json", cache, commit);
    write_file(p, "{}");
    snprintf(p, sizeof p, "%s/models--org--m/refs", cache);
    mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/models--org--m/refs/main", cache);
    write_file(p, commit);
    struct sw_hub_opts o;
    sw_hub_opts_init(&o);
    o.cache_dir = cache;
    o.offline = 1;
    o.quiet = 1;
    IS_INT(sw_hub_resolve_model("org/m", &o, &folder), 0, "offline: resolved from the cache");
    snprintf(p, sizeof p, "%s/models--org--m/snapshots/%s", cache, commit);
    IS_STR(folder, p, "the snapshot folder");
    free(folder);
    IS_INT(sw_hub_resolve_model("org/other", &o, &folder), SW_ENOTFOUND, "offline: not cached");
    OK(strstr(sw_err_msg(), "not in the cache") != NULL, "message says not in the cache");
    setenv("HF_HUB_OFFLINE", "1", 1);
    o.offline = -1;
    IS_INT(sw_hub_resolve_model("org/m", &o, &folder), 0, "HF_HUB_OFFLINE=1 from the environment");
    free(folder);

    /* sw_hub_resolve_arg: an option string replaced in place (or left alone). */
    setenv("HF_HUB_CACHE", cache, 1);
    char *arg = strdup("org/m");
    IS_INT(sw_hub_resolve_arg(&arg, SW_HUB_NEED_TOKENIZER, NULL, NULL, NULL), 0,
           "resolve_arg: hub id, offline");
    snprintf(p, sizeof p, "%s/models--org--m/snapshots/%s", cache, commit);
    IS_STR(arg, p, "resolve_arg: replaced by the snapshot folder");
    char *same = arg;
    IS_INT(sw_hub_resolve_arg(&arg, SW_HUB_NEED_MODEL, "true", NULL, NULL), 0,
           "resolve_arg: a path is left alone");
    OK(arg == same, "resolve_arg: same string, untouched");
    free(arg);
    char *none = NULL;
    IS_INT(sw_hub_resolve_arg(&none, SW_HUB_NEED_MODEL, NULL, NULL, NULL), 0, "resolve_arg: NULL");
    arg = strdup("org/absent");
    IS_INT(sw_hub_resolve_arg(&arg, SW_HUB_NEED_MODEL, NULL, NULL, NULL), SW_ENOTFOUND,
           "resolve_arg: offline and not cached");
    IS_STR(arg, "org/absent", "resolve_arg: left alone on error");
    free(arg);
    unsetenv("HF_HUB_CACHE");
    unsetenv("HF_HUB_OFFLINE");
}

/* Online, through the mock hub (python3 needed). */
static void test_resolve_online(void) {
    char cmd[2000], portfile[300], repos[300], log[300];
    snprintf(repos, sizeof repos, "%s/repos", tmp);
    snprintf(portfile, sizeof portfile, "%s/port.json", tmp);
    snprintf(log, sizeof log, "%s/mock.log", tmp);
    snprintf(cmd, sizeof cmd,
             "python3 test/hub/hubtool.py make-repos %s && python3 test/hub/hubtool.py start %s %s "
             "%s %d",
             repos, repos, portfile, log, (int)getpid());
    FILE *pp = popen(cmd, "r");
    int pid = 0;
    if (!pp || fscanf(pp, "%d", &pid) != 1) {
        if (pp) pclose(pp);
        OK(1, "resolve online # SKIP python3 or the mock hub unavailable");
        return;
    }
    pclose(pp);
    FILE *pf = fopen(portfile, "r");
    int port = 0;
    if (!pf || fscanf(pf, "{\"port\": %d", &port) != 1) port = 0;
    if (pf) fclose(pf);
    char ep[64], cache[300];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", port);
    snprintf(cache, sizeof cache, "%s/online-cache", tmp);
    struct sw_hub_opts o;
    sw_hub_opts_init(&o);
    o.hub = SW_HUB_HF;
    o.endpoint = ep;
    o.cache_dir = cache;
    o.offline = 0;
    o.quiet = 1;
    char *folder = NULL;
    IS_INT(sw_hub_resolve_model("org/tiny", &o, &folder), 0,
           "online: org/tiny fetched through the cache");
    char p[600];
    snprintf(p, sizeof p, "%s/models--org--tiny/snapshots/", cache);
    OK(folder && strncmp(folder, p, strlen(p)) == 0, "into the snapshot folder");
    char *data = NULL;
    size_t len = 0;
    snprintf(p, sizeof p, "%s/config.json", folder ? folder : "");
    FILE *f = fopen(p, "r");
    char buf[128] = "";
    if (f) {
        len = fread(buf, 1, sizeof buf - 1, f);
        buf[len] = '\0';
        fclose(f);
    }
    IS_STR(buf, "{\"model_type\": \"llama\", \"hidden_size\": 8}\n", "config.json content");
    free(data);
    free(folder);
    /* resolve_arg for a tokenizer: config and tokenizer files, not the weights. */
    char tcache[300];
    snprintf(tcache, sizeof tcache, "%s/tok-cache", tmp);
    setenv("HF_ENDPOINT", ep, 1);
    setenv("HF_HUB_CACHE", tcache, 1);
    unsetenv("USE_HF");
    char *arg = strdup("org/tiny");
    IS_INT(sw_hub_resolve_arg(&arg, SW_HUB_NEED_TOKENIZER, NULL, NULL, NULL), 0,
           "resolve_arg: tokenizer files fetched");
    snprintf(p, sizeof p, "%s/tokenizer.json", arg);
    struct stat st;
    OK(stat(p, &st) == 0, "tokenizer.json is there");
    snprintf(p, sizeof p, "%s/model.safetensors", arg);
    OK(stat(p, &st) != 0, "the weights are not");
    free(arg);
    unsetenv("HF_ENDPOINT");
    unsetenv("HF_HUB_CACHE");
    o.revision = "v9";
    IS_INT(sw_hub_resolve_model("org/tiny", &o, &folder), SW_ENOTFOUND, "unknown revision");
    OK(strstr(sw_err_msg(), "'org/tiny' is not a local path") != NULL,
       "message says what --model was");
    o.revision = NULL;
    /* The hub gone: the cached snapshot still resolves (with a warning). */
    kill(pid, 15);
    waitpid(pid, NULL, WNOHANG);
    o.max_retries = 0;
    IS_INT(sw_hub_resolve_model("org/tiny", &o, &folder), 0, "hub down: the cache answers");
    free(folder);
}

int main(void) {
    snprintf(tmp, sizeof tmp, "/tmp/sw-test-hub.%d", (int)getpid());
    mkdir(tmp, 0777);
    test_ids();
    test_paths();
    test_glob();
    test_headers();
    test_listings();
    test_env();
    test_files();
    test_resolve_offline();
    test_resolve_online();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) DIAG("cleanup failed");
    return tap_done();
}
