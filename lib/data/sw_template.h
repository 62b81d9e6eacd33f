/* sw_template — chat templates: a conversation (sw_conv.h) to token ids plus a loss flag per token.
 *
 * Built-in templates carry ms-swift's `--template` names and render what the model family's own
 * Jinja chat_template renders (apply_chat_template), checked id for id against transformers by
 * test/unit/test_template.c:
 *   chatml   ChatML, no default system
 *   qwen     ChatML, default system "You are a helpful assistant."
 *   qwen2_5  ChatML, default system "You are Qwen, created by Alibaba Cloud. You are a helpful
 *            assistant."
 *   qwen3    ChatML as Qwen3's template renders it: no default system; the assistant turns after
 *            the last user query open with "<think>\n{reasoning}\n</think>\n\n" (the final one
 *            always, an empty block when there is no reasoning); earlier turns lose their
 *            reasoning
 *   llama3   <|begin_of_text|>,
 * <|start_header_id|>role<|end_header_id|>\n\n{content|trim}<|eot_id|> llama    Llama-2 chat:
 * <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{query} [/INST] {answer} </s>, with ms-swift's default
 * Llama-2 system prompt default  ms-swift's default template: [BOS]{system}\n\n###
 * Human:\n{query}\n\n### Assistant:\n {answer}\n\n... [EOS], default system "You are a helpful
 * assistant." The system prompt is, in order of priority (as in ms-swift): the row's, --system, the
 * template's default; an empty --system means none.
 *
 * Rendering happens in two steps. sw_template_render() writes the conversation as text pieces,
 * each flagged "trained" or not and "special" when it is one of the template's special tokens.
 * sw_template_encode() tokenizes it: special pieces map to their id; the text between two special
 * pieces is tokenized as one run (exactly as tokenizing the whole text would, since tokenizers
 * split at special tokens first); where the trained flag changes inside a run, the boundary token
 * is found by tokenizing the run's prefix and taking the longest common prefix of the two id lists.
 * A token that straddles a boundary is trained if any of its bytes is.
 *
 * Loss (ms-swift's loss_scale): "default" trains every assistant turn plus the turn's end token(s)
 * (ChatML "<|im_end|>\n", Llama-3 "<|eot_id|>", Llama-2 " </s>", default EOS) — the header
 * before the content and every system/user/tool token are not trained; "last_round" trains only
 * the assistant turns after the last user or tool turn; "all" trains every token. For qwen3 the
 * empty think block "<think>\n\n</think>\n\n" is never trained (ms-swift's ignore_empty_think,
 * which ms-swift switches on for hybrid thinking models). A turn's "loss" field from the data
 * overrides the choice for that assistant turn. Labels follow transformers: labels[i] is
 * input_ids[i] when trained and -100 otherwise, and labels[0] is always -100. */
#ifndef SW_TEMPLATE_H
#define SW_TEMPLATE_H

#include "sw_conv.h"
#include "sw_tokenizer.h"

#include <stddef.h>
#include <stdint.h>

#define SW_LABEL_IGNORE (-100)

struct sw_template;

/* A built-in template by ms-swift name, or NULL. */
const struct sw_template *sw_template_get(const char *name);
/* "chatml|default|llama|llama3|qwen|qwen2_5|qwen3" (for --help and choice lists). */
const char *sw_template_names(void);
/* The template a tokenizer_config.json chat_template (Jinja text) corresponds to, by
 * fingerprint: "<|im_start|>" with "<think>" -> qwen3, "<|im_start|>" with "You are Qwen" ->
 * qwen2_5, other "<|im_start|>" -> qwen when it has a default system else chatml,
 * "<|start_header_id|>" -> llama3, "[INST]" -> llama. NULL when unrecognised or jinja is NULL. */
const struct sw_template *sw_template_detect(const char *jinja);
const char *sw_template_name(const struct sw_template *t);
/* The default system prompt, or NULL. */
const char *sw_template_default_system(const struct sw_template *t);

enum sw_loss_scale { SW_LOSS_DEFAULT = 0, SW_LOSS_LAST_ROUND, SW_LOSS_ALL };
/* Parse "default", "last_round", "all". Returns 0 or SW_EINVAL. */
int sw_loss_scale_parse(const char *s, enum sw_loss_scale *out);
const char *sw_loss_scale_name(enum sw_loss_scale l);

struct sw_template_opts {
    const char *system; /* --system: NULL = not given; "" = no system prompt */
    enum sw_loss_scale loss;
    int add_generation_prompt; /* end with the assistant header (inference); the conversation may
                                  then end with a user or tool turn */
    int rejected;              /* render the rejected answer (c->rejected) in place of the last
                                  assistant turn's content */
    int thinking_off; /* Qwen3's enable_thinking=False: the generation prompt gets an empty think
                         block, so the model answers without reasoning (other templates: no-op) */
};

/* One piece of rendered text: bytes [off, off + len) of the render's text. */
struct sw_template_piece {
    size_t off, len;
    unsigned char trained; /* 1: the tokens of this piece get labels */
    unsigned char special; /* 1: the piece is exactly one special token of the template */
};

/* A rendering (reusable: render resets it, release frees it). Zero-initialise. */
struct sw_template_render {
    char *text; /* NUL-terminated */
    size_t len, cap;
    struct sw_template_piece *pieces;
    size_t n_pieces, cap_pieces;
};
void sw_template_render_release(struct sw_template_render *r);

/* Special token strings of the tokenizer in use, needed by templates whose markers are the
 * tokenizer's own BOS/EOS (default, plain text). NULL members mean "none". */
struct sw_template_tokens {
    const char
        *bos; /* the text the tokenizer's post-processor puts before a text ("<s>"), or NULL */
    const char *eos; /* eos_token, or NULL */
};

/* Render c as text pieces into *out. where ("file:line") prefixes errors: SW_EFORMAT for a
 * conversation the template cannot express (e.g. roles that do not alternate for llama), or
 * SW_ENOMEM. Plain-text conversations (c->text) render as [bos] text [eos], all trained. */
int sw_template_render(const struct sw_template *t, const struct sw_conv *c,
                       const struct sw_template_opts *o, const struct sw_template_tokens *tk,
                       const char *where, struct sw_template_render *out);

/* Scratch for sw_template_encode (one per thread; zero-initialise, release when done). */
struct sw_template_scratch {
    struct sw_template_render render;
    struct sw_tok_ids run, prefix;
    char *buf;
    size_t cap;
};
void sw_template_scratch_release(struct sw_template_scratch *s);

/* A tokenized sample: ids and labels (SW_LABEL_IGNORE where not trained), n of each. */
struct sw_template_sample {
    int32_t *ids, *labels;
    size_t n, cap;
};
void sw_template_sample_release(struct sw_template_sample *s);

/* Fill tk from a tokenizer: bos = the tokens its post-processor adds before "a" (as text; NULL
 * when none), eos = eos_token. The strings are borrowed from tok. */
int sw_template_tokens_from(const struct sw_tokenizer *tok, struct sw_template_tokens *tk);

/* Render and tokenize c into *out (overwritten). Returns 0, SW_EFORMAT (where-prefixed), or
 * SW_ENOMEM; SW_ENOTFOUND when a template special token is not in the tokenizer's vocabulary. */
int sw_template_encode(const struct sw_template *t, const struct sw_tokenizer *tok,
                       const struct sw_conv *c, const struct sw_template_opts *o,
                       const struct sw_template_tokens *tk, const char *where,
                       struct sw_template_scratch *scratch, struct sw_template_sample *out);

/* Tokenize the rendering as one text (add_special_tokens off, as apply_chat_template does) and
 * compare with the pieces' ids: returns 0 when equal, SW_ECORRUPT naming the first differing
 * position otherwise. The check behind "segments split only where whole-text tokenization
 * would". */
int sw_template_verify(const struct sw_tokenizer *tok, const struct sw_template_render *r,
                       const struct sw_template_sample *s, const char *where);

/* Truncation of a sample longer than max_length: delete, left (keep the last max_length
 * tokens) or right (keep the first). */
enum sw_truncation { SW_TRUNC_DELETE = 0, SW_TRUNC_LEFT, SW_TRUNC_RIGHT };
int sw_truncation_parse(const char *s, enum sw_truncation *out);
/* Apply strategy: returns 1 when s was shortened, 2 when it must be deleted, 0 when it fits.
 * Shortened samples get labels[0] = -100 again (as ms-swift does). */
int sw_template_truncate(struct sw_template_sample *s, size_t max_length, enum sw_truncation how);
/* Number of trained labels. */
size_t sw_template_sample_trained(const struct sw_template_sample *s);

#endif
