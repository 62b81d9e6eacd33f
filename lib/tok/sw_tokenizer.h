/* sw_tokenizer — Hugging Face `tokenizer.json` tokenizers in C, id-for-id with the Python
 * `tokenizers` package.
 *
 * Loads a tokenizer.json (plain or gzip) and the optional tokenizer_config.json next to it, and
 * runs the same pipeline as `tokenizers`: added/special tokens split off first, then the
 * normalizer, the pre-tokenizer, the model (BPE: byte-level or SentencePiece-style with byte
 * fallback), and the post-processor; decoding runs the decoder chain. docs/tokenizer.md lists
 * the supported components and the parity status.
 *
 * Input text: `tokenizers` takes Rust &str, so it never sees invalid UTF-8. sw defines that
 * case: each maximal invalid subsequence is replaced by U+FFFD (the rule of Rust's
 * String::from_utf8_lossy) before encoding, so the ids are those of the repaired text.
 *
 * Threads: a loaded tokenizer is read-only; sw_tokenizer_encode/decode may be called from any
 * number of threads at once on one tokenizer. Each thread gets its own scratch space and word
 * cache on first use (freed at thread exit or by sw_tokenizer_free). */
#ifndef SW_TOKENIZER_H
#define SW_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

struct sw_tokenizer;

/* A caller-owned growable id buffer: encode appends to it, so a caller can reuse one buffer for
 * millions of calls without allocating. Zero-initialise it; release with sw_tok_ids_release. */
struct sw_tok_ids {
    int32_t *ids;
    size_t n;   /* ids in use */
    size_t cap; /* ids allocated */
};

/* Free the buffer's memory and zero it. Accepts a zeroed buffer. */
void sw_tok_ids_release(struct sw_tok_ids *b);

/* The special tokens named by tokenizer_config.json. */
enum sw_tok_special { SW_TOK_BOS = 0, SW_TOK_EOS, SW_TOK_PAD, SW_TOK_UNK, SW_TOK_NSPECIAL };

/* Load a tokenizer. path is a folder holding tokenizer.json or tokenizer.json.gz (plus an
 * optional tokenizer_config.json), or the path of a tokenizer.json[.gz] file (then a
 * tokenizer_config.json in the same folder is read if present). On success *out owns a new
 * tokenizer; on failure *out is NULL and the message names the file and the JSON field.
 * Returns 0, SW_ENOTFOUND, SW_EIO, SW_EFORMAT (malformed JSON or fields), SW_EUNSUPPORTED (a
 * model/normalizer/pre-tokenizer/decoder type sw does not implement), SW_ENOMEM. */
int sw_tokenizer_load(const char *path, struct sw_tokenizer **out);

/* Load a tokenizer from the tokenizer.json bytes json[0..len) (not gzip; no
 * tokenizer_config.json, so no special ids or chat template). name is used in messages (NULL:
 * "tokenizer.json"). Same returns as sw_tokenizer_load. */
int sw_tokenizer_load_mem(const char *name, const char *json, size_t len,
                          struct sw_tokenizer **out);

/* Free a tokenizer and every thread's scratch for it. No thread may be using it. Accepts NULL. */
void sw_tokenizer_free(struct sw_tokenizer *tok);

/* Encode len bytes of text (need not be NUL-terminated; invalid UTF-8 is repaired as above,
 * except that the overlong pair C0 80 is U+0000 — how sw's NUL-terminated strings carry it) and
 * append the ids to *out. add_special_tokens != 0 applies the post-processor's template (BOS
 * etc.), like `tokenizers`' add_special_tokens=True. Added/special token strings in the text are
 * always matched (as `tokenizers` does). On error out->n is unchanged.
 * Returns 0, SW_ENOMEM, SW_ERANGE (text over 2 GiB), SW_EFORMAT (a model error, e.g. an
 * unk_token missing from the vocabulary). */
int sw_tokenizer_encode_append(const struct sw_tokenizer *tok, const char *text, size_t len,
                               int add_special_tokens, struct sw_tok_ids *out);

/* Like sw_tokenizer_encode_append into a new malloc'ed array: *ids (free() it; non-NULL even
 * when *n is 0) and *n. */
int sw_tokenizer_encode(const struct sw_tokenizer *tok, const char *text, size_t len,
                        int add_special_tokens, int32_t **ids, size_t *n);

/* Decode ids to text, as `tokenizers`' decode(ids, skip_special_tokens): ids that are not in the
 * vocabulary are skipped; skip_special != 0 also drops special added tokens. *out is a malloc'ed
 * NUL-terminated UTF-8 string (free() it) and *len its length. Returns 0, SW_ENOMEM. */
int sw_tokenizer_decode(const struct sw_tokenizer *tok, const int32_t *ids, size_t n,
                        int skip_special, char **out, size_t *len);

/* The id of a token string (added tokens first, then the model vocabulary), or -1. */
int32_t sw_tokenizer_token_to_id(const struct sw_tokenizer *tok, const char *token, size_t len);

/* The string of an id (borrowed, NUL-terminated, valid while tok lives) and its length in *len
 * (may be NULL), or NULL when the id is unknown. Byte-level vocabularies return the byte-level
 * spelling ("Ġthe"), like `tokenizers`' id_to_token. */
const char *sw_tokenizer_id_to_token(const struct sw_tokenizer *tok, int32_t id, size_t *len);

/* Number of ids: one more than the largest id of the model vocabulary and the added tokens
 * (the embedding rows a model needs). Equals `tokenizers`' get_vocab_size(True) for vocabularies
 * without gaps. */
size_t sw_tokenizer_vocab_size(const struct sw_tokenizer *tok);

/* 1 if id is a special added token (dropped by decode with skip_special), else 0. */
int sw_tokenizer_is_special(const struct sw_tokenizer *tok, int32_t id);

/* The id of a special token named in tokenizer_config.json (bos_token, eos_token, pad_token,
 * unk_token), or -1 when absent or not in the vocabulary. */
int32_t sw_tokenizer_special_id(const struct sw_tokenizer *tok, enum sw_tok_special which);
/* Its string (borrowed), or NULL when absent. */
const char *sw_tokenizer_special_token(const struct sw_tokenizer *tok, enum sw_tok_special which);

/* tokenizer_config.json's add_bos_token / add_eos_token: 1, 0, or -1 when not given. These are
 * informational: encode follows tokenizer.json's post-processor, as `tokenizers` does. */
int sw_tokenizer_add_bos(const struct sw_tokenizer *tok);
int sw_tokenizer_add_eos(const struct sw_tokenizer *tok);

/* tokenizer_config.json's chat_template (borrowed Jinja text), or NULL. A list of named
 * templates yields the one named "default" (or the first). */
const char *sw_tokenizer_chat_template(const struct sw_tokenizer *tok);

/* tokenizer_config.json's model_max_length, saturated to INT64_MAX; -1 when not given. */
int64_t sw_tokenizer_model_max_length(const struct sw_tokenizer *tok);

/* SHA-256 of the (decompressed) tokenizer.json bytes: 32 raw bytes, and as 64 lowercase hex
 * characters. Both borrowed. Stream headers record it so data and tokenizer stay matched. */
const uint8_t *sw_tokenizer_hash(const struct sw_tokenizer *tok);
const char *sw_tokenizer_hash_hex(const struct sw_tokenizer *tok);
/* The same digest for the tokenizer a folder holds (tokenizer.json, else tokenizer.json.gz,
 * inflated), without loading it: 1 with hex filled (and *file, when file is not NULL, the
 * malloc'ed path it read), 0 when dir holds neither file (hex ""), or a negative error. */
int sw_tokenizer_dir_sha256(const char *dir, char hex[65], char **file);

#endif
