/* sw_sha256 — SHA-256 (through OpenSSL's libcrypto) for integrity checks and reproducibility
 * stamps (dataset/tokenizer hashes in stream headers, checkpoint manifests). */
#ifndef SW_SHA256_H
#define SW_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sw_sha256 {
    void *ctx; /* EVP_MD_CTX */
};

int sw_sha256_init(struct sw_sha256 *h);
int sw_sha256_update(struct sw_sha256 *h, const void *data, size_t len);
/* Writes 32 bytes and releases the context. */
int sw_sha256_final(struct sw_sha256 *h, uint8_t out[32]);
/* Releases without a digest (error paths). Accepts a released h. */
void sw_sha256_release(struct sw_sha256 *h);

/* One-shot digest of a buffer. */
int sw_sha256(const void *data, size_t len, uint8_t out[32]);
/* Digest of a file's bytes. */
int sw_sha256_file(const char *path, uint8_t out[32]);
/* 64 lowercase hex characters + NUL. */
void sw_hex(const uint8_t *bytes, size_t n, char *out);

#endif
