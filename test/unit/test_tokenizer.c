/* test_tokenizer — sw_tokenizer against the Python `tokenizers` package.
 *
 * For every tokenizer (the shipped qwen3, llama3 and llama2 under data/tokenizers, and the
 * small synthetic ones under test/golden/tokenizer/synth that exercise the other normalizers,
 * pre-tokenizers, decoders and added-token flags), every line of
 * test/golden/tokenizer/corpus.jsonl is encoded with and without special tokens and decoded
 * three ways, and each result is compared with <name>.ids.jsonl.gz written by gen_golden.py.
 * Mismatches are counted per check and the first differing line is printed. The corpus is
 * also encoded from several threads at once on one tokenizer. Then the API around it: lookups,
 * special ids from tokenizer_config.json, the content hash, invalid UTF-8 repair, appending,
 * and load errors that name the file and field. */
#include <jansson.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sw_err.h"
#include "sw_io.h"
#include "sw_sha256.h"
#include "sw_tokenizer.h"
#include "tap.h"

#define GOLDEN "test/golden/tokenizer/"

struct corpus {
    char **text;
    size_t *len;
    size_t n;
};

static int read_corpus(struct corpus *c) {
    char *data;
    size_t len;
    if (sw_read_file(GOLDEN "corpus.jsonl", &data, &len, 0)) return -1;
    memset(c, 0, sizeof(*c));
    size_t cap = 1024;
    c->text = malloc(cap * sizeof(*c->text));
    c->len = malloc(cap * sizeof(*c->len));
    char *p = data, *end = data + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (ll) {
            json_error_t e;
            json_t *j = json_loadb(p, ll, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
            if (!json_is_string(j)) return -1;
            if (c->n == cap) {
                cap *= 2;
                c->text = realloc(c->text, cap * sizeof(*c->text));
                c->len = realloc(c->len, cap * sizeof(*c->len));
            }
            c->len[c->n] = json_string_length(j);
            c->text[c->n] = malloc(c->len[c->n] + 1);
            memcpy(c->text[c->n], json_string_value(j), c->len[c->n] + 1);
            c->n++;
            json_decref(j);
        }
        p += ll + 1;
    }
    free(data);
    return 0;
}

/* The golden records of one tokenizer, index = corpus line. */
static json_t **read_golden(const char *name, size_t n) {
    char path[256];
    snprintf(path, sizeof(path), GOLDEN "%s.ids.jsonl.gz", name);
    char *data;
    size_t len;
    if (sw_read_file(path, &data, &len, 0)) return NULL;
    json_t **rec = calloc(n + 1, sizeof(*rec));
    char *p = data, *end = data + len;
    size_t k = 0;
    int header = 1;
    while (p < end && k < n) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
        json_error_t e;
        json_t *j = json_loadb(p, ll, JSON_ALLOW_NUL, &e);
        p += ll + 1;
        if (header) {
            json_decref(j);
            header = 0;
            continue;
        }
        rec[k++] = j;
    }
    free(data);
    return rec;
}

static int ids_equal(const json_t *want, const int32_t *got, size_t n, size_t *at) {
    size_t wn = json_array_size(want);
    for (size_t i = 0; i < wn && i < n; i++)
        if (json_integer_value(json_array_get(want, i)) != got[i]) {
            *at = i;
            return 0;
        }
    *at = wn < n ? wn : n;
    return wn == n;
}

static void tokenizer_path(const char *name, char *out, size_t cap) {
    if (!strncmp(name, "synth", 5))
        snprintf(out, cap, GOLDEN "synth/%s.json.gz", name);
    else
        snprintf(out, cap, "data/tokenizers/%s", name);
}

enum { CHK_IDS, CHK_IDS_SP, CHK_DEC, CHK_DEC_SP, CHK_DEC_SKIP, NCHK };
static const char *chk_name[NCHK] = {"ids (add_special_tokens=false)",
                                     "ids (add_special_tokens=true)", "decode(ids)",
                                     "decode(ids_sp)", "decode(ids_sp, skip_special)"};
static const char *chk_key[NCHK] = {"ids", "ids_sp", "dec", "dec_sp", "dec_skip"};

/* Compare every corpus line; returns the number of lines with any mismatch. */
static size_t check_parity(const char *name, const struct sw_tokenizer *tok, const struct corpus *c,
                           json_t **gold, int report) {
    size_t bad[NCHK] = {0}, first[NCHK], total = 0;
    size_t first_at[NCHK];
    struct sw_tok_ids ids = {0}, ids_sp = {0};
    for (size_t i = 0; i < c->n; i++) {
        int line_bad = 0;
        ids.n = ids_sp.n = 0;
        int rc1 = sw_tokenizer_encode_append(tok, c->text[i], c->len[i], 0, &ids);
        int rc2 = sw_tokenizer_encode_append(tok, c->text[i], c->len[i], 1, &ids_sp);
        for (int k = 0; k < NCHK; k++) {
            const json_t *want = json_object_get(gold[i], chk_key[k]);
            int ok;
            size_t at = 0;
            if (k == CHK_IDS)
                ok = !rc1 && ids_equal(want, ids.ids, ids.n, &at);
            else if (k == CHK_IDS_SP)
                ok = !rc2 && ids_equal(want, ids_sp.ids, ids_sp.n, &at);
            else {
                char *s = NULL;
                size_t sl = 0;
                const struct sw_tok_ids *src = k == CHK_DEC ? &ids : &ids_sp;
                int rc = sw_tokenizer_decode(tok, src->ids, src->n, k == CHK_DEC_SKIP, &s, &sl);
                ok = !rc && sl == json_string_length(want) &&
                     !memcmp(s, json_string_value(want), sl);
                free(s);
            }
            if (!ok) {
                if (!bad[k]) {
                    first[k] = i;
                    first_at[k] = at;
                }
                bad[k]++;
                line_bad = 1;
            }
        }
        total += (size_t)line_bad;
    }
    if (report) {
        for (int k = 0; k < NCHK; k++) {
            OK(bad[k] == 0, "%s: %s matches tokenizers on all %zu lines (%zu mismatches)", name,
               chk_name[k], c->n, bad[k]);
            if (bad[k])
                DIAG("first mismatch: corpus line %zu (at position %zu): \"%.60s\"", first[k] + 1,
                     first_at[k], c->text[first[k]]);
        }
    }
    sw_tok_ids_release(&ids);
    sw_tok_ids_release(&ids_sp);
    return total;
}

/* Several threads encode the whole corpus at once; each compares with the goldens. */
static void check_threads(const char *name, const struct sw_tokenizer *tok, const struct corpus *c,
                          json_t **gold) {
    size_t bad = 0;
#pragma omp parallel num_threads(4) reduction(+ : bad)
    {
        struct sw_tok_ids ids = {0};
#pragma omp for schedule(dynamic, 1)
        for (size_t i = 0; i < c->n; i++) {
            ids.n = 0;
            size_t at;
            if (sw_tokenizer_encode_append(tok, c->text[i], c->len[i], 0, &ids) ||
                !ids_equal(json_object_get(gold[i], "ids"), ids.ids, ids.n, &at))
                bad++;
        }
        sw_tok_ids_release(&ids);
    }
    IS_INT(bad, 0, "%s: 4 threads encoding at once give the golden ids", name);
}

static void test_parity(const struct corpus *c) {
    static const char *names[] = {"qwen3",      "llama3",      "llama2",         "synth_sp",
                                  "synth_bert", "synth_split", "synth_split2",   "synth_bytelevel",
                                  "synth_ws",   "synth_meta",  "synth_sp_trunc", "synth_bl_trunc"};
    for (size_t t = 0; t < sizeof(names) / sizeof(*names); t++) {
        char path[256];
        tokenizer_path(names[t], path, sizeof(path));
        struct sw_tokenizer *tok = NULL;
        int rc = sw_tokenizer_load(path, &tok);
        if (!OK(rc == 0, "%s: load %s", names[t], path)) {
            DIAG("%s", sw_err_msg());
            continue;
        }
        json_t **gold = read_golden(names[t], c->n);
        if (OK(gold != NULL, "%s: read goldens", names[t])) {
            check_parity(names[t], tok, c, gold, 1);
            if (t < 3) check_threads(names[t], tok, c, gold);
            for (size_t i = 0; i < c->n; i++)
                json_decref(gold[i]);
            free(gold);
        }
        sw_tokenizer_free(tok);
    }
}

static int32_t id_of(const struct sw_tokenizer *tok, const char *s) {
    return sw_tokenizer_token_to_id(tok, s, strlen(s));
}

static void test_api_qwen3(void) {
    struct sw_tokenizer *tok;
    if (!OK(sw_tokenizer_load("data/tokenizers/qwen3", &tok) == 0, "qwen3: load folder")) return;
    IS_INT(sw_tokenizer_vocab_size(tok), 151669, "qwen3: vocab size includes added tokens");
    IS_INT(id_of(tok, "<|im_end|>"), 151645, "qwen3: token_to_id of an added token");
    IS_INT(id_of(tok, "hello"), 14990, "qwen3: token_to_id of a vocabulary token");
    IS_INT(id_of(tok, "no such token here"), -1, "qwen3: token_to_id of an unknown string");
    size_t len;
    const char *s = sw_tokenizer_id_to_token(tok, 1879, &len);
    IS_STR(s, "\xC4\xA0world", "qwen3: id_to_token gives the byte-level spelling");
    IS_INT(len, 7, "qwen3: id_to_token length");
    OK(sw_tokenizer_id_to_token(tok, 151669, NULL) == NULL, "qwen3: id past the end is unknown");
    OK(sw_tokenizer_id_to_token(tok, -1, NULL) == NULL, "qwen3: negative id is unknown");
    IS_INT(sw_tokenizer_special_id(tok, SW_TOK_EOS), 151645, "qwen3: eos from tokenizer_config");
    IS_INT(sw_tokenizer_special_id(tok, SW_TOK_PAD), 151643, "qwen3: pad from tokenizer_config");
    IS_INT(sw_tokenizer_special_id(tok, SW_TOK_BOS), -1, "qwen3: bos_token null gives -1");
    IS_STR(sw_tokenizer_special_token(tok, SW_TOK_EOS), "<|im_end|>", "qwen3: eos string");
    IS_INT(sw_tokenizer_add_bos(tok), 0, "qwen3: add_bos_token false");
    IS_INT(sw_tokenizer_add_eos(tok), -1, "qwen3: add_eos_token absent");
    IS_INT(sw_tokenizer_model_max_length(tok), 131072, "qwen3: model_max_length");
    const char *tmpl = sw_tokenizer_chat_template(tok);
    OK(tmpl && strstr(tmpl, "<|im_start|>") != NULL, "qwen3: chat_template kept");
    OK(sw_tokenizer_is_special(tok, 151644), "qwen3: <|im_start|> is special");
    OK(!sw_tokenizer_is_special(tok, 151667), "qwen3: <think> is not special");
    OK(!sw_tokenizer_is_special(tok, 14990), "qwen3: a vocabulary token is not special");

    /* content hash = sha256 of the decompressed tokenizer.json */
    char *data;
    size_t dl;
    uint8_t want[32];
    char hex[65];
    if (sw_read_file("data/tokenizers/qwen3/tokenizer.json.gz", &data, &dl, 0) == 0) {
        sw_sha256(data, dl, want);
        sw_hex(want, 32, hex);
        IS_STR(sw_tokenizer_hash_hex(tok), hex,
               "qwen3: hash is sha256 of the tokenizer.json bytes");
        OK(!memcmp(sw_tokenizer_hash(tok), want, 32), "qwen3: raw hash bytes");
        /* the same JSON loaded uncompressed from a file path gives the same ids and hash */
        char tmpdir[] = "/tmp/sw_tok_testXXXXXX";
        if (mkdtemp(tmpdir)) {
            char path[256];
            snprintf(path, sizeof(path), "%s/tokenizer.json", tmpdir);
            sw_write_file_atomic(path, data, dl);
            struct sw_tokenizer *t2 = NULL;
            OK(sw_tokenizer_load(path, &t2) == 0, "qwen3: load a plain tokenizer.json file path");
            if (t2) {
                IS_STR(sw_tokenizer_hash_hex(t2), hex, "qwen3: plain and gzip copies hash alike");
                IS_INT(sw_tokenizer_special_id(t2, SW_TOK_EOS), -1,
                       "qwen3: no tokenizer_config.json next to the file: no eos");
                sw_tokenizer_free(t2);
            }
            unlink(path);
            rmdir(tmpdir);
        }
        free(data);
    }

    /* invalid UTF-8 is repaired to U+FFFD before encoding (Rust from_utf8_lossy rule) */
    int32_t *a, *b;
    size_t na, nb;
    const char bad[] = "caf\xC3 \xE2\x82 x\xF0\x9F\x98 \xFF\xFE end\xC3";
    const char fixed[] = "caf\xEF\xBF\xBD \xEF\xBF\xBD x\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD end"
                         "\xEF\xBF\xBD";
    OK(sw_tokenizer_encode(tok, bad, sizeof(bad) - 1, 0, &a, &na) == 0,
       "qwen3: invalid UTF-8 encodes");
    OK(sw_tokenizer_encode(tok, fixed, sizeof(fixed) - 1, 0, &b, &nb) == 0,
       "qwen3: repaired text encodes");
    OK(na == nb && !memcmp(a, b, na * sizeof(*a)), "qwen3: invalid bytes encode as U+FFFD");
    free(a);
    free(b);

    /* encode_append appends; decode skips unknown ids */
    struct sw_tok_ids ids = {0};
    sw_tokenizer_encode_append(tok, "hello", 5, 0, &ids);
    sw_tokenizer_encode_append(tok, " world", 6, 0, &ids);
    IS_INT(ids.n, 2, "qwen3: two appends");
    OK(ids.n == 2 && ids.ids[0] == 14990 && ids.ids[1] == 1879, "qwen3: appended ids in order");
    int32_t mixed[] = {14990, -5, 999999999, 1879, 151645};
    char *out;
    size_t ol;
    OK(sw_tokenizer_decode(tok, mixed, 5, 0, &out, &ol) == 0, "qwen3: decode with unknown ids");
    IS_STR(out, "hello world<|im_end|>", "qwen3: unknown ids are skipped");
    free(out);
    OK(sw_tokenizer_decode(tok, mixed, 5, 1, &out, &ol) == 0, "qwen3: decode skipping specials");
    IS_STR(out, "hello world", "qwen3: skip_special drops <|im_end|>");
    free(out);
    OK(sw_tokenizer_decode(tok, NULL, 0, 0, &out, &ol) == 0 && ol == 0 && out && !out[0],
       "qwen3: decoding no ids gives an empty string");
    free(out);
    int32_t *none;
    size_t nn = 9;
    OK(sw_tokenizer_encode(tok, "", 0, 1, &none, &nn) == 0 && none && nn == 0,
       "qwen3: empty text gives no ids and a non-NULL array");
    free(none);
    sw_tok_ids_release(&ids);
    sw_tokenizer_free(tok);
}

static void test_api_llama(void) {
    struct sw_tokenizer *tok;
    if (OK(sw_tokenizer_load("data/tokenizers/llama3", &tok) == 0, "llama3: load")) {
        IS_INT(sw_tokenizer_vocab_size(tok), 128256, "llama3: vocab size");
        IS_INT(sw_tokenizer_special_id(tok, SW_TOK_BOS), 128000, "llama3: bos");
        IS_INT(sw_tokenizer_special_id(tok, SW_TOK_EOS), 128001, "llama3: eos");
        OK(sw_tokenizer_model_max_length(tok) == INT64_MAX, "llama3: 1e30 saturates");
        sw_tokenizer_free(tok);
    }
    if (OK(sw_tokenizer_load("data/tokenizers/llama2", &tok) == 0, "llama2: load")) {
        IS_INT(sw_tokenizer_vocab_size(tok), 32000, "llama2: added tokens reuse vocabulary ids");
        IS_INT(sw_tokenizer_special_id(tok, SW_TOK_BOS), 1, "llama2: bos");
        IS_INT(sw_tokenizer_special_id(tok, SW_TOK_EOS), 2, "llama2: eos");
        IS_INT(sw_tokenizer_special_id(tok, SW_TOK_UNK), 0, "llama2: unk");
        IS_INT(sw_tokenizer_add_bos(tok), 1, "llama2: add_bos_token");
        int32_t *ids;
        size_t n;
        OK(sw_tokenizer_encode(tok, "hi", 2, 1, &ids, &n) == 0 && n >= 2 && ids[0] == 1,
           "llama2: the template prepends <s>");
        free(ids);
        sw_tokenizer_free(tok);
    }
}

/* Write a small tokenizer.json variant into a temp folder and try to load it. */
static int load_text(const char *json, struct sw_tokenizer **tok) {
    char tmpdir[] = "/tmp/sw_tok_badXXXXXX";
    if (!mkdtemp(tmpdir)) return -100;
    char path[256];
    snprintf(path, sizeof(path), "%s/tokenizer.json", tmpdir);
    sw_write_file_atomic(path, json, strlen(json));
    int rc = sw_tokenizer_load(tmpdir, tok);
    unlink(path);
    rmdir(tmpdir);
    return rc;
}

struct thread_arg {
    const struct sw_tokenizer *tok;
    int ok;
};

static void *encode_and_exit(void *p) {
    struct thread_arg *a = p;
    int32_t *ids;
    size_t n;
    a->ok = sw_tokenizer_encode(a->tok, "thread scratch", 14, 0, &ids, &n) == 0 && n > 0;
    free(ids);
    return NULL; /* the thread's scratch is freed by the key destructor */
}

/* Scratches of exited threads are released at thread exit, those of live threads (OpenMP's
 * workers, this thread) by sw_tokenizer_free; ASan runs of this test check for leaks. */
static void test_thread_lifecycle(void) {
    struct sw_tokenizer *tok;
    if (!OK(sw_tokenizer_load("data/tokenizers/llama2", &tok) == 0, "llama2: load for threads"))
        return;
    struct thread_arg a[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        a[i] = (struct thread_arg){tok, 0};
        pthread_create(&th[i], NULL, encode_and_exit, &a[i]);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    OK(a[0].ok && a[1].ok && a[2].ok, "threads that exit after encoding");
    sw_tokenizer_free(tok);
}

static void test_errors(void) {
    struct sw_tokenizer *tok = (void *)1;
    IS_INT(sw_tokenizer_load("/nonexistent/tokenizer", &tok), SW_ENOTFOUND, "missing path");
    OK(tok == NULL, "failed load leaves NULL");
    IS_INT(load_text("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}", &tok), SW_EFORMAT,
           "truncated JSON is a format error");
    OK(strstr(sw_err_msg(), "tokenizer.json") != NULL, "message names the file: %s", sw_err_msg());
    IS_INT(load_text("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", &tok),
           SW_EUNSUPPORTED, "WordPiece model is unsupported");
    IS_INT(load_text("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, "
                     "\"merges\": [\"a b\"]}}",
                     &tok),
           SW_EFORMAT, "a merge whose result is not in the vocabulary");
    OK(strstr(sw_err_msg(), "model.merges[0]") != NULL, "message names the merge: %s",
       sw_err_msg());
    IS_INT(load_text("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -3}}}", &tok), SW_EFORMAT,
           "negative id");
    IS_INT(load_text("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}, \"pre_tokenizer\": "
                     "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": "
                     "\"Isolated\"}}",
                     &tok),
           SW_EUNSUPPORTED, "a regex that does not compile");
    OK(strstr(sw_err_msg(), "pre_tokenizer") != NULL, "message names the field: %s", sw_err_msg());
    IS_INT(load_text("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}, \"normalizer\": "
                     "{\"type\": \"Precompiled\"}}",
                     &tok),
           SW_EUNSUPPORTED, "Precompiled normalizer is unsupported");
    /* A minimal valid tokenizer with merges in pair form, unk and a template. */
    int rc =
        load_text("{\"model\": {\"type\": \"BPE\", \"unk_token\": \"?\", \"vocab\": {\"?\": 0, "
                  "\"a\": 1, \"b\": 2, \"ab\": 3, \"<s>\": 4}, \"merges\": [[\"a\", \"b\"]]},"
                  "\"added_tokens\": [{\"id\": 4, \"content\": \"<s>\", \"special\": true}],"
                  "\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": "
                  "[{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}}, {\"Sequence\": "
                  "{\"id\": \"A\", \"type_id\": 0}}], \"special_tokens\": {\"<s>\": "
                  "{\"id\": \"<s>\", \"ids\": [4], \"tokens\": [\"<s>\"]}}}}",
                  &tok);
    static const char mini[] = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, "
                               "\"ab\": 2, \"\\u0000\": 3}, \"merges\": [\"a b\"]}}";
    struct sw_tokenizer *mt = NULL;
    if (OK(sw_tokenizer_load_mem("mini.json", mini, sizeof(mini) - 1, &mt) == 0,
           "load_mem of a tokenizer.json with a NUL vocabulary key")) {
        int32_t *ids;
        size_t n;
        sw_tokenizer_encode(mt, "ab\0a", 4, 0, &ids, &n);
        OK(n == 3 && ids[0] == 2 && ids[1] == 3 && ids[2] == 0, "NUL is a token like any other");
        IS_INT(sw_tokenizer_token_to_id(mt, "\0", 1), 3, "token_to_id of the NUL token");
        free(ids);
        sw_tokenizer_free(mt);
    } else {
        DIAG("%s", sw_err_msg());
    }
    static const char frac[] = "{\"model\": {\"vocab\": {\"a\": 1.5}}}";
    IS_INT(sw_tokenizer_load_mem("bad.json", frac, sizeof(frac) - 1, &mt), SW_EFORMAT,
           "load_mem: a fractional id");
    OK(strstr(sw_err_msg(), "bad.json") && strstr(sw_err_msg(), "model.vocab"),
       "message names the buffer and the field: %s", sw_err_msg());
    if (OK(rc == 0, "minimal tokenizer loads")) {
        int32_t *ids;
        size_t n;
        sw_tokenizer_encode(tok, "abxa", 4, 1, &ids, &n);
        OK(n == 4 && ids[0] == 4 && ids[1] == 3 && ids[2] == 0 && ids[3] == 1,
           "pair-form merges, unk for an unknown character, template bos");
        free(ids);
        sw_tokenizer_free(tok);
    } else {
        DIAG("%s", sw_err_msg());
    }
}

int main(void) {
    struct corpus c;
    if (!OK(read_corpus(&c) == 0, "read %scorpus.jsonl", GOLDEN)) return tap_done();
    OK(c.n >= 300, "corpus has %zu lines", c.n);
    test_parity(&c);
    test_api_qwen3();
    test_api_llama();
    test_errors();
    test_thread_lifecycle();
    for (size_t i = 0; i < c.n; i++)
        free(c.text[i]);
    free(c.text);
    free(c.len);
    return tap_done();
}
