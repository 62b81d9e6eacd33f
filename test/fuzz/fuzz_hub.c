/* libFuzzer target: everything in lib/hub that reads bytes a hub server sent. The first input
 * byte picks the parser, the rest is its input:
 *   0 response header lines (split on '\n', fed as libcurl delivers them)
 *   1 HF revision JSON, 2 HF tree page, 3 ModelScope files, 4 tree cache, 5 ModelScope dataset id
 *     (each listing is then checked, given a content id and turned back into a tree cache)
 *   6 glob: pattern '\0' name;  7 names: path / id / revision / etag checks;  8 Link header;
 *   9 Retry-After. */
#include "sw_err.h"
#include "sw_hub.h"
#include "sw_hub_impl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void listing(int which, const char *s, size_t n) {
    struct sw_hub_listing l = {0};
    size_t count = 0;
    int64_t id;
    int rc = which == 1   ? sw_hub_parse_hf_revision(s, n, "fuzz", &l)
             : which == 2 ? sw_hub_parse_hf_tree(s, n, "fuzz", &l)
             : which == 3 ? sw_hub_parse_ms_files(s, n, "fuzz", &l, &count)
             : which == 4 ? sw_hub_parse_tree_cache(s, n, "fuzz", &l)
                          : sw_hub_parse_ms_dataset_id(s, n, "fuzz", &id);
    if (rc == 0 && which != 5) {
        char cid[41];
        (void)sw_hub_listing_content_id(&l, cid);
        if (sw_hub_listing_check(&l, "fuzz") == 0) {
            /* a checked listing's names are safe to join under a root */
            for (size_t i = 0; i < l.n; i++) {
                if (sw_hub_path_check(l.files[i].path) != 0) abort();
                char *link =
                    l.files[i].etag ? sw_hub_blob_link(l.files[i].path, l.files[i].etag) : NULL;
                free(link);
            }
            /* and its tree cache reads back to the same files */
            char *json = NULL;
            if (sw_hub_tree_cache_json(&l, &json) == 0) {
                struct sw_hub_listing back = {0};
                if (sw_hub_parse_tree_cache(json, strlen(json), "fuzz", &back) != 0 ||
                    back.n != l.n)
                    abort();
                sw_hub_listing_release(&back);
            }
            free(json);
        }
    }
    sw_hub_listing_release(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int which = data[0] % 10;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    char *z = malloc(n + 1); /* NUL-terminated copy for the string APIs */
    if (!z) return 0;
    memcpy(z, s, n);
    z[n] = '\0';
    switch (which) {
    case 0: {
        struct sw_hub_headers h;
        sw_hub_headers_reset(&h);
        size_t i = 0;
        while (i < n) {
            const char *nl = memchr(s + i, '\n', n - i);
            size_t len = nl ? (size_t)(nl - (s + i)) + 1 : n - i;
            sw_hub_headers_feed(&h, s + i, len, 1.0e9);
            i += len;
        }
        if (strlen(h.etag) >= sizeof h.etag || strlen(h.link_next) >= sizeof h.link_next) abort();
        (void)sw_hub_etag_check(h.linked_etag);
        break;
    }
    case 1:
    case 2:
    case 3:
    case 4:
    case 5: listing(which, s, n); break;
    case 6: {
        const char *name = z + strlen(z) + (strlen(z) < n ? 1 : 0);
        (void)sw_hub_glob_match(z, name);
        const char *pats[] = {z};
        (void)sw_hub_filter(name, pats, 1, pats, 1);
        break;
    }
    case 7:
        if (sw_hub_path_check(z) == 0 &&
            (z[0] == '/' || strstr(z, "/../") || strncmp(z, "../", 3) == 0))
            abort(); /* an accepted name never climbs out */
        (void)sw_hub_looks_like_id(z);
        (void)sw_hub_revision_check(z);
        (void)sw_hub_etag_check(z);
        if (sw_hub_looks_like_id(z)) {
            char *f = sw_hub_repo_folder_name(SW_HUB_MODEL, z);
            if (f && strchr(f, '/')) abort(); /* a cache folder name is one component */
            free(f);
        }
        break;
    case 8: {
        char out[2048];
        (void)sw_hub_parse_link_next(s, n, out, sizeof out);
        break;
    }
    default: (void)sw_hub_parse_retry_after(s, n, 1.0e9); break;
    }
    free(z);
    sw_err_clear();
    return 0;
}
