/* libFuzzer target: sw_tokenizer encode/decode over arbitrary bytes, and tokenizer.json loading.
 *
 * The first input byte picks what to do with the rest:
 *   0-5  encode it (with and without special tokens) with one of six tokenizers loaded once
 *        (qwen3, llama3, llama2 and three synthetic ones covering other components); every id
 *        must be below the vocabulary size, encode must succeed on any bytes (invalid UTF-8 is
 *        repaired to U+FFFD), and for llama3 (byte-level, no normalizer, so lossless)
 *        decode(encode(x)) must equal the repaired x exactly
 *   6    decode it as little-endian int32 ids (unknown ids are skipped; output is valid UTF-8)
 *   7    load it as a tokenizer.json (must fail cleanly or load) and encode a probe with it
 * Tokenizers are read relative to the repository root (or $SW_FUZZ_ROOT). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sw_tok_internal.h"
#include "sw_tokenizer.h"

static const char *const sw_fuzz_paths[6] = {
    "data/tokenizers/qwen3",
    "data/tokenizers/llama3",
    "data/tokenizers/llama2",
    "test/golden/tokenizer/synth/synth_sp.json.gz",
    "test/golden/tokenizer/synth/synth_split.json.gz",
    "test/golden/tokenizer/synth/synth_bytelevel.json.gz",
};
static struct sw_tokenizer *sw_fuzz_tok[6];

static struct sw_tokenizer *sw_fuzz_get(int k) {
    if (!sw_fuzz_tok[k]) {
        char path[512];
        const char *root = getenv("SW_FUZZ_ROOT");
        snprintf(path, sizeof(path), "%s%s%s", root ? root : "", root ? "/" : "", sw_fuzz_paths[k]);
        if (sw_tokenizer_load(path, &sw_fuzz_tok[k]) != 0) {
            fprintf(stderr, "fuzz_tokenizer: cannot load %s (run from the repository root)\n",
                    path);
            abort();
        }
    }
    return sw_fuzz_tok[k];
}

static void sw_fuzz_check(int cond) {
    if (!cond) __builtin_trap();
}

static void sw_fuzz_encode(int k, const char *s, size_t n) {
    struct sw_tokenizer *tok = sw_fuzz_get(k);
    size_t vs = sw_tokenizer_vocab_size(tok);
    for (int add = 0; add < 2; add++) {
        int32_t *ids;
        size_t m;
        sw_fuzz_check(sw_tokenizer_encode(tok, s, n, add, &ids, &m) == 0);
        for (size_t i = 0; i < m; i++)
            sw_fuzz_check(ids[i] >= 0 && (size_t)ids[i] < vs);
        char *out;
        size_t ol;
        sw_fuzz_check(sw_tokenizer_decode(tok, ids, m, add, &out, &ol) == 0);
        sw_fuzz_check(sw_tok_utf8_valid(out, ol) == ol);
        if (k == 1 && !add) { /* llama3 round trip */
            struct sw_tok_buf fixed = {0};
            sw_fuzz_check(sw_tok_utf8_repair_text(s, n, &fixed) == 0);
            sw_fuzz_check(fixed.n == ol && (ol == 0 || memcmp(fixed.p, out, ol) == 0));
            sw_tok_buf_release(&fixed);
        }
        free(out);
        free(ids);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    int mode = data[0] % 8;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    if (mode < 6) {
        sw_fuzz_encode(mode, s, n);
    } else if (mode == 6) {
        size_t m = n / 4;
        int32_t *ids = malloc((m ? m : 1) * sizeof(*ids));
        if (m) memcpy(ids, s, m * 4);
        for (int k = 0; k < 3; k += 2) {
            char *out;
            size_t ol;
            sw_fuzz_check(sw_tokenizer_decode(sw_fuzz_get(k), ids, m, (int)(n & 1), &out, &ol) ==
                          0);
            sw_fuzz_check(sw_tok_utf8_valid(out, ol) == ol);
            free(out);
        }
        free(ids);
    } else {
        struct sw_tokenizer *tok;
        if (sw_tokenizer_load_mem("fuzz/tokenizer.json", s, n, &tok) == 0) {
            static const char probe[] =
                "Hello, world! 123 \xE4\xBD\xA0\xE5\xA5\xBD <s> \xF0\x9F\x98\x80";
            int32_t *ids;
            size_t m;
            if (sw_tokenizer_encode(tok, probe, sizeof(probe) - 1, 1, &ids, &m) == 0) {
                char *out;
                size_t ol;
                if (sw_tokenizer_decode(tok, ids, m, 0, &out, &ol) == 0) free(out);
                free(ids);
            }
            sw_tokenizer_free(tok);
        }
    }
    return 0;
}
