/* test_template — chat templates against transformers' apply_chat_template (every id of every
 * case in test/golden/template/golden.json, written by gen_golden.py from conversations.json),
 * the piecewise-vs-whole tokenization check, loss masks (default, last_round, all, per-turn
 * overrides, Qwen3's empty think block), ms-swift's default template text, plain text, the
 * rejected answer, detection from chat_template Jinja, and truncation. Run from the repository
 * root (make test does): it reads data/tokenizers/ and test/golden/template/. */
#include "sw_dataset.h"
#include "sw_err.h"
#include "sw_io.h"
#include "sw_log.h"
#include "sw_template.h"
#include "sw_tokenizer.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

#define GOLD "test/golden/template/"

static struct sw_tokenizer *toks[4];
static const char *tok_names[4] = {"qwen3", "llama3", "llama2", "gemma_synth"};

/* gemma_synth (gen_golden.py's stand-in for Gemma's tokenizer, which is not in the repository):
 * llama2's tokenizer.json with <start_of_turn> and <end_of_turn> appended as special added
 * tokens, and llama2's tokenizer_config.json, written to a temporary folder. */
static int load_gemma_synth(struct sw_tokenizer **out) {
    char *text = NULL, dir[] = "/tmp/sw_gemma_synth_XXXXXX", path[128];
    size_t len = 0;
    int rc = sw_read_file("data/tokenizers/llama2/tokenizer.json.gz", &text, &len, 64u << 20);
    if (rc < 0) return rc;
    json_error_t e;
    json_t *tj = json_loadb(text, len, 0, &e);
    free(text);
    json_t *added = tj ? json_object_get(tj, "added_tokens") : NULL;
    json_t *vocab = tj ? json_object_get(json_object_get(tj, "model"), "vocab") : NULL;
    if (!added || !vocab || !mkdtemp(dir)) {
        json_decref(tj);
        return sw_err_set(SW_EFORMAT, "gemma_synth: cannot build from llama2's tokenizer");
    }
    json_int_t next = (json_int_t)json_object_size(vocab);
    size_t i;
    json_t *t;
    json_array_foreach(added, i, t) {
        json_int_t id = json_integer_value(json_object_get(t, "id"));
        if (id >= next) next = id + 1;
    }
    const char *names[2] = {"<start_of_turn>", "<end_of_turn>"};
    for (int k = 0; k < 2; k++)
        json_array_append_new(added,
                              json_pack("{s:I, s:s, s:b, s:b, s:b, s:b, s:b}", "id", next + k,
                                        "content", names[k], "single_word", 0, "lstrip", 0,
                                        "rstrip", 0, "normalized", 0, "special", 1));
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    rc = json_dump_file(tj, path, 0) == 0 ? 0 : sw_err_set(SW_EIO, "%s: cannot write", path);
    json_decref(tj);
    char *cfg = NULL;
    size_t cl = 0;
    if (rc == 0)
        rc = sw_read_file("data/tokenizers/llama2/tokenizer_config.json", &cfg, &cl, 1 << 20);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    if (rc == 0) rc = sw_write_file_atomic(path, cfg, cl);
    free(cfg);
    if (rc == 0) rc = sw_tokenizer_load(dir, out);
    sw_rm_tree_quiet(dir);
    return rc;
}

static struct sw_tokenizer *tok_get(const char *name) {
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, tok_names[i])) {
            if (!toks[i] && i == 3) {
                if (load_gemma_synth(&toks[i]) < 0) {
                    DIAG("cannot build gemma_synth: %s", sw_err_msg());
                    return NULL;
                }
            } else if (!toks[i]) {
                char path[256];
                snprintf(path, sizeof path, "data/tokenizers/%s", name);
                if (sw_tokenizer_load(path, &toks[i]) < 0) {
                    DIAG("cannot load %s: %s", path, sw_err_msg());
                    return NULL;
                }
            }
            return toks[i];
        }
    return NULL;
}

static json_t *convs;

/* The named conversation of conversations.json as a struct sw_conv. */
static int conv_get(const char *name, struct sw_conv *c) {
    json_t *row = json_object_get(convs, name);
    if (!row) return sw_err_set(SW_ENOTFOUND, "no conversation '%s'", name);
    return sw_dataset_row_to_conv(row, SW_DSFMT_MESSAGES, name, c);
}

static int conv_from_json(const char *json, struct sw_conv *c) {
    json_t *row = json_loads(json, 0, NULL);
    if (!row) return sw_err_set(SW_EFORMAT, "bad test JSON");
    int rc = sw_dataset_row_to_conv(row, sw_dataset_detect(row), "test", c);
    json_decref(row);
    return rc;
}

/* Encode c; returns 0 or the error. */
static int encode(const char *tpl, const char *tokname, const struct sw_conv *c,
                  const struct sw_template_opts *o, struct sw_template_sample *s,
                  struct sw_template_scratch *scr) {
    struct sw_tokenizer *tok = tok_get(tokname);
    if (!tok) return SW_ENOTFOUND;
    struct sw_template_tokens tk;
    sw_template_tokens_from(tok, &tk);
    return sw_template_encode(tpl ? sw_template_get(tpl) : NULL, tok, c, o, &tk, "test", scr, s);
}

/* Decode of the trained tokens (special tokens kept). */
static char *trained_text(const char *tokname, const struct sw_template_sample *s) {
    int32_t *ids = malloc((s->n + 1) * sizeof *ids);
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->labels[i] != SW_LABEL_IGNORE) ids[k++] = s->labels[i];
    char *out = NULL;
    size_t len;
    sw_tokenizer_decode(tok_get(tokname), ids, k, 0, &out, &len);
    free(ids);
    return out;
}

static void test_golden(void) {
    json_error_t e;
    json_t *g = json_load_file(GOLD "golden.json", 0, &e);
    if (!OK(g != NULL, "golden.json loads")) return;
    json_t *cases = json_object_get(g, "cases");
    size_t i;
    json_t *cs;
    int n_ok = 0, n_text = 0, n_verified = 0, n = 0;
    struct sw_template_scratch scr = {0};
    struct sw_template_sample s = {0};
    json_array_foreach(cases, i, cs) {
        const char *tname = json_string_value(json_object_get(cs, "tokenizer"));
        const char *tpl = json_string_value(json_object_get(cs, "template"));
        const char *cname = json_string_value(json_object_get(cs, "conversation"));
        int agp = json_is_true(json_object_get(cs, "add_generation_prompt"));
        const char *want_text = json_string_value(json_object_get(cs, "text"));
        json_t *want = json_object_get(cs, "ids");
        n++;
        struct sw_conv c;
        if (conv_get(cname, &c) < 0) {
            OK(0, "%s/%s/%s: conversation: %s", tname, tpl, cname, sw_err_msg());
            continue;
        }
        if (agp) { /* the golden renders the prompt for the last answer */
            c.n_turns--;
            struct sw_turn *t = &c.turns[c.n_turns];
            free(t->content);
            free(t->reasoning);
            for (size_t k = 0; k < t->n_tool_calls; k++) {
                free(t->tool_calls[k].name);
                free(t->tool_calls[k].arguments);
            }
            free(t->tool_calls);
        }
        json_t *et = json_object_get(cs, "enable_thinking");
        struct sw_template_opts o = {.add_generation_prompt = agp,
                                     .thinking_off = json_is_false(et)};
        int rc = encode(tpl, tname, &c, &o, &s, &scr);
        sw_conv_release(&c);
        if (rc < 0) {
            OK(0, "%s/%s/%s%s: encode: %s", tname, tpl, cname, agp ? "+gen" : "", sw_err_msg());
            continue;
        }
        int text_same = scr.render.len == strlen(want_text) &&
                        !memcmp(scr.render.text, want_text, scr.render.len);
        size_t nw = json_array_size(want), k = 0;
        while (k < nw && k < s.n && json_integer_value(json_array_get(want, k)) == s.ids[k])
            k++;
        int ids_same = k == nw && k == s.n;
        int verified = sw_template_verify(tok_get(tname), &scr.render, &s, cname) == 0;
        n_text += text_same;
        n_ok += ids_same;
        n_verified += verified;
        if (!text_same || !ids_same || !verified) {
            OK(0,
               "%s/%s/%s%s%s: text %s, ids %s (first difference at %zu of %zu/%zu), whole-text %s",
               tname, tpl, cname, agp ? "+gen" : "", json_is_false(et) ? "-think" : "",
               text_same ? "same" : "DIFFERENT", ids_same ? "same" : "DIFFERENT", k, s.n, nw,
               verified ? "same" : "DIFFERENT");
            if (!text_same) DIAG("sw:   %s\n# want: %s", scr.render.text, want_text);
        }
    }
    OK(n > 40, "%d golden cases", n);
    IS_INT(n_text, n, "rendered text equals apply_chat_template's text in every case");
    IS_INT(n_ok, n, "ids equal apply_chat_template's ids in every case");
    IS_INT(n_verified, n, "piecewise ids equal whole-text tokenization in every case");
    sw_template_sample_release(&s);
    sw_template_scratch_release(&scr);
    json_decref(g);
}

/* Trained text of conversation (by name or JSON) under a template, loss scale. */
static char *trained_of(const char *tpl, const char *tokname, const char *conv_name,
                        const char *json, enum sw_loss_scale loss, int rejected) {
    struct sw_conv c;
    int rc = json ? conv_from_json(json, &c) : conv_get(conv_name, &c);
    if (rc < 0) return strdup("(conversion failed)");
    struct sw_template_opts o = {.loss = loss, .rejected = rejected};
    struct sw_template_scratch scr = {0};
    struct sw_template_sample s = {0};
    rc = encode(tpl, tokname, &c, &o, &s, &scr);
    char *t = rc < 0 ? strdup(sw_err_msg()) : trained_text(tokname, &s);
    sw_conv_release(&c);
    sw_template_sample_release(&s);
    sw_template_scratch_release(&scr);
    return t;
}

#define TRAINED(tpl, tok, name, json, loss, rej, want, ...)                                        \
    do {                                                                                           \
        char *t_ = trained_of(tpl, tok, name, json, loss, rej);                                    \
        IS_STR(t_, want, __VA_ARGS__);                                                             \
        free(t_);                                                                                  \
    } while (0)

static void test_loss(void) {
    TRAINED("qwen3", "qwen3", "single", NULL, SW_LOSS_DEFAULT, 0,
            "I am a helpful assistant.<|im_end|>\n",
            "qwen3: the answer and <|im_end|>\\n are trained, the empty think block is not");
    TRAINED("qwen3", "qwen3", "reasoning", NULL, SW_LOSS_DEFAULT, 0,
            "<think>\n17*3 = 51.\nDouble-check: 50 + 1.\n</think>\n\n51<|im_end|>\n",
            "qwen3: a non-empty think block is trained");
    TRAINED("qwen3", "qwen3", "think_history", NULL, SW_LOSS_DEFAULT, 0,
            "Blue.<|im_end|>\n<think>\nExplain the choice.\n</think>\n\nIt is calm.<|im_end|>\n",
            "qwen3: history turns trained without their reasoning");
    TRAINED(
        "qwen3", "qwen3", "tool", NULL, SW_LOSS_DEFAULT, 0,
        "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": "
        "\"celsius\"}}\n</tool_call><|im_end|>\nIt is 21 °C and clear in Paris.<|im_end|>\n",
        "qwen3: tool calls trained, tool results not");
    TRAINED("qwen", "qwen3", "multi", NULL, SW_LOSS_DEFAULT, 0,
            "4.<|im_end|>\n6.<|im_end|>\nYou're welcome.<|im_end|>\n",
            "qwen: every assistant turn (default)");
    TRAINED("qwen", "qwen3", "multi", NULL, SW_LOSS_LAST_ROUND, 0, "You're welcome.<|im_end|>\n",
            "qwen: last_round trains only the last answer");
    TRAINED("qwen", "qwen3", "single", NULL, SW_LOSS_ALL, 0,
            "system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello, who are you?"
            "<|im_end|>\n<|im_start|>assistant\nI am a helpful assistant.<|im_end|>\n",
            "qwen: all trains every token but the first");
    TRAINED(
        "qwen", "qwen3", NULL,
        "{\"messages\": [{\"role\": \"user\", \"content\": \"First?\"}, {\"role\": \"assistant\", "
        "\"content\": \"One.\", \"loss\": false}, {\"role\": \"user\", \"content\": \"Second?\"}, "
        "{\"role\": \"assistant\", \"content\": \"Two.\"}]}",
        SW_LOSS_DEFAULT, 0, "Two.<|im_end|>\n", "a row's loss: false masks that turn");
    TRAINED(
        "qwen", "qwen3", NULL,
        "{\"messages\": [{\"role\": \"user\", \"content\": \"First?\"}, {\"role\": \"assistant\", "
        "\"content\": \"One.\", \"loss\": true}, {\"role\": \"user\", \"content\": \"Second?\"}, "
        "{\"role\": \"assistant\", \"content\": \"Two.\"}]}",
        SW_LOSS_LAST_ROUND, 0, "One.<|im_end|>\nTwo.<|im_end|>\n",
        "loss: true overrides last_round");
    TRAINED("llama3", "llama3", "multi", NULL, SW_LOSS_DEFAULT, 0,
            "4.<|eot_id|>6.<|eot_id|>You're welcome.<|eot_id|>", "llama3: answers and <|eot_id|>");
    TRAINED("llama", "llama2", "multi", NULL, SW_LOSS_DEFAULT, 0,
            "4. </s> 6. </s> You're welcome. </s>", "llama: ' answer </s>' per turn");
    TRAINED(
        "qwen", "qwen3", NULL,
        "{\"messages\": [{\"role\": \"user\", \"content\": \"Say hi.\"}, {\"role\": \"assistant\", "
        "\"content\": \"Hi!\"}], \"rejected_response\": \"Go away.\"}",
        SW_LOSS_DEFAULT, 1, "Go away.<|im_end|>\n",
        "rejected answer rendered in place of the chosen one");
    /* Qwen's pre-tokenizer makes ".\n\n" one token: it straddles the answer and the untrained
     * separator, so it is trained (a token is trained if any of its bytes is). */
    TRAINED("default", "qwen3", "multi", NULL, SW_LOSS_DEFAULT, 0,
            "4.\n\n6.\n\nYou're welcome.<|im_end|>",
            "default: answers and the final EOS; straddling tokens go to the trained side");
    TRAINED(
        "default", "qwen3", NULL,
        "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", "
        "\"content\": \"b\"}, {\"role\": \"user\", \"content\": \"c\"}, {\"role\": \"assistant\", "
        "\"content\": \"d\"}]}",
        SW_LOSS_DEFAULT, 0, "bd<|im_end|>", "default: the \\n\\n separator itself is not trained");
}

static void test_default_and_text(void) {
    struct sw_conv c;
    struct sw_template_scratch scr = {0};
    struct sw_template_sample s = {0};
    struct sw_template_opts o = {0};
    conv_get("multi", &c);
    int rc = encode("default", "llama2", &c, &o, &s, &scr);
    IS_STR(
        rc == 0 ? scr.render.text : sw_err_msg(),
        "<s>Be brief.\n\n### Human:\nWhat is 2+2?\n\n### Assistant:\n4.\n\n### Human:\nAnd 3+3?\n\n"
        "### Assistant:\n6.\n\n### Human:\nThanks!\n\n### Assistant:\nYou're welcome.</s>",
        "default template text (ms-swift's TemplateMeta) with the tokenizer's BOS/EOS");
    OK(sw_template_verify(tok_get("llama2"), &scr.render, &s, "default") == 0,
       "default + SentencePiece: loss boundaries inside runs keep whole-text ids (%s)",
       sw_err_msg());
    char *t = trained_text("llama2", &s);
    OK(t && strstr(t, "4.") && strstr(t, "You're welcome.</s>") && !strstr(t, "Assistant"),
       "default + SentencePiece: the answers are trained, the prompt is not (%s)", t);
    free(t);
    sw_conv_release(&c);

    /* --system overrides the default; the row's system wins over --system; "" removes it. */
    conv_get("single", &c);
    o.system = "Custom.";
    encode("qwen", "qwen3", &c, &o, &s, &scr);
    OK(strncmp(scr.render.text, "<|im_start|>system\nCustom.<|im_end|>", 36) == 0,
       "--system replaces the default");
    o.system = "";
    encode("qwen", "qwen3", &c, &o, &s, &scr);
    OK(strncmp(scr.render.text, "<|im_start|>user", 16) == 0, "--system '' removes it");
    sw_conv_release(&c);
    conv_get("system", &c);
    o.system = "Custom.";
    encode("qwen", "qwen3", &c, &o, &s, &scr);
    OK(strstr(scr.render.text, "pirate") && !strstr(scr.render.text, "Custom."),
       "the row's system wins");
    sw_conv_release(&c);
    o.system = NULL;

    /* Plain text: [BOS] text EOS, all trained but the first token. */
    conv_from_json("{\"text\": \"Call me Ishmael.\"}", &c);
    encode(NULL, "llama2", &c, &o, &s, &scr);
    IS_STR(scr.render.text, "<s>Call me Ishmael.</s>", "text with llama2: BOS and EOS");
    OK(s.n > 3 && s.ids[0] == 1 && s.labels[0] == SW_LABEL_IGNORE &&
           sw_template_sample_trained(&s) == s.n - 1,
       "text: every token trained but the first");
    encode(NULL, "qwen3", &c, &o, &s, &scr);
    IS_STR(scr.render.text, "Call me Ishmael.<|im_end|>",
           "text with qwen3: no BOS, EOS <|im_end|>");
    sw_conv_release(&c);

    /* Errors that name the row. */
    conv_get("tool_result", &c);
    rc = encode("llama", "llama2", &c, &o, &s, &scr);
    OK(rc == SW_EFORMAT && strstr(sw_err_msg(), "alternating"), "llama refuses a tool turn: %s",
       sw_err_msg());
    rc = encode("llama3", "qwen3", &c, &o, &s, &scr);
    OK(rc == SW_ENOTFOUND && strstr(sw_err_msg(), "<|begin_of_text|>"),
       "wrong template for the tokenizer: %s", sw_err_msg());
    sw_conv_release(&c);

    sw_template_sample_release(&s);
    sw_template_scratch_release(&scr);
}

static void test_detect_and_truncate(void) {
    const struct sw_template *t = sw_template_detect(sw_tokenizer_chat_template(tok_get("qwen3")));
    IS_STR(t ? sw_template_name(t) : "(none)", "qwen3", "Qwen3's chat_template detected as qwen3");
    t = sw_template_detect(sw_tokenizer_chat_template(tok_get("llama3")));
    IS_STR(t ? sw_template_name(t) : "(none)", "llama3",
           "Llama-3's chat_template detected as llama3");
    OK(sw_template_detect(sw_tokenizer_chat_template(tok_get("llama2"))) == NULL,
       "no chat_template (llama2 folder): nothing detected");
    t = sw_template_detect("{% set system_message = messages[0]['content'] %}{% set content = "
                           "'<<SYS>>\\n' + system_message %}{{ bos_token + '[INST] ' + "
                           "content.strip() + ' [/INST]' }}");
    IS_STR(t ? sw_template_name(t) : "(none)", "llama", "[INST] with <<SYS>> -> llama");
    t = sw_template_detect("{{ bos_token }}{% if message['role'] == 'user' %}{{ '[INST] ' + "
                           "message['content'] + ' [/INST]' }}{% endif %}");
    IS_STR(t ? sw_template_name(t) : "(none)", "mistral",
           "[INST] without a system role -> mistral");
    t = sw_template_detect("{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim }}");
    IS_STR(t ? sw_template_name(t) : "(none)", "gemma", "<start_of_turn> -> gemma");
    /* Mistral and Gemma have no system role: a system prompt is refused. */
    struct sw_conv sc;
    struct sw_template_sample smp = {0};
    struct sw_template_scratch scr = {0};
    struct sw_template_opts so = {.system = "Be brief."};
    if (conv_get("single", &sc) == 0) {
        IS_INT(encode("gemma", "gemma_synth", &sc, &so, &smp, &scr), SW_EFORMAT,
               "gemma: a system prompt is SW_EFORMAT (%s)", sw_err_msg());
        IS_INT(encode("mistral", "llama2", &sc, &so, &smp, &scr), SW_EFORMAT,
               "mistral: a system prompt is SW_EFORMAT (%s)", sw_err_msg());
        sw_conv_release(&sc);
    }
    sw_template_sample_release(&smp);
    sw_template_scratch_release(&scr);
    t = sw_template_detect(
        "{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud.");
    IS_STR(t ? sw_template_name(t) : "(none)", "qwen2_5", "Qwen2.5's default system -> qwen2_5");
    t = sw_template_detect("{{'<|im_start|>' + message['role'] + '\\n' + message['content']}}");
    IS_STR(t ? sw_template_name(t) : "(none)", "chatml", "plain ChatML -> chatml");
    OK(sw_template_get("nope") == NULL, "unknown template name");

    int32_t ids[] = {10, 11, 12, 13, 14, 15};
    int32_t lab[] = {-100, -100, 12, 13, 14, 15};
    struct sw_template_sample s = {0};
    s.ids = malloc(sizeof ids), s.labels = malloc(sizeof lab), s.n = s.cap = 6;
    memcpy(s.ids, ids, sizeof ids), memcpy(s.labels, lab, sizeof lab);
    IS_INT(sw_template_truncate(&s, 6, SW_TRUNC_DELETE), 0, "fits: untouched");
    IS_INT(sw_template_truncate(&s, 4, SW_TRUNC_DELETE), 2, "delete: flagged for deletion");
    IS_INT(sw_template_truncate(&s, 4, SW_TRUNC_LEFT), 1, "left: shortened");
    OK(s.n == 4 && s.ids[0] == 12 && s.ids[3] == 15 && s.labels[0] == -100 && s.labels[1] == 13,
       "left keeps the last 4 tokens and masks the new first label");
    memcpy(s.ids, ids, sizeof ids), memcpy(s.labels, lab, sizeof lab), s.n = 6;
    IS_INT(sw_template_truncate(&s, 3, SW_TRUNC_RIGHT), 1, "right: shortened");
    OK(s.n == 3 && s.ids[2] == 12 && sw_template_sample_trained(&s) == 1,
       "right keeps the first 3 tokens");
    sw_template_sample_release(&s);
    enum sw_truncation tr;
    OK(sw_truncation_parse("split", &tr) == SW_EINVAL, "'split' is not supported");
}

int main(void) {
    sw_log_init("test_template");
    json_error_t e;
    json_t *root = json_load_file(GOLD "conversations.json", 0, &e);
    if (!root) {
        OK(0, "conversations.json: %s", e.text);
        return tap_done();
    }
    convs = json_object_get(root, "conversations");
    if (!tok_get("qwen3") || !tok_get("llama3") || !tok_get("llama2")) {
        OK(0, "tokenizers load from data/tokenizers/");
        return tap_done();
    }
    test_golden();
    test_loss();
    test_default_and_text();
    test_detect_and_truncate();
    for (int i = 0; i < 4; i++)
        sw_tokenizer_free(toks[i]);
    json_decref(root);
    return tap_done();
}
