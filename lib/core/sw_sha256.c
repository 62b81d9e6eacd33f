/* sw_sha256 — SHA-256 through OpenSSL's EVP interface (libcrypto picks the fastest
 * implementation: SHA-NI or AVX2), streamed so files of any size hash in constant memory. */
#include "sw_sha256.h"

#include "sw_err.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sw_sha256_init(struct sw_sha256 *h) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    h->ctx = NULL;
    if (!ctx) return sw_err_set(SW_ENOMEM, "sha256: out of memory");
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return sw_err_set(SW_EUNSUPPORTED, "sha256: libcrypto refused to initialise SHA-256");
    }
    h->ctx = ctx;
    return 0;
}

int sw_sha256_update(struct sw_sha256 *h, const void *data, size_t len) {
    if (!h->ctx) return sw_err_set(SW_ESTATE, "sha256: update after final or release");
    if (len == 0) return 0;
    if (EVP_DigestUpdate((EVP_MD_CTX *)h->ctx, data, len) != 1)
        return sw_err_set(SW_EIO, "sha256: digest update failed");
    return 0;
}

int sw_sha256_final(struct sw_sha256 *h, uint8_t out[32]) {
    if (!h->ctx) return sw_err_set(SW_ESTATE, "sha256: final after final or release");
    unsigned int n = 0;
    int ok = EVP_DigestFinal_ex((EVP_MD_CTX *)h->ctx, out, &n);
    sw_sha256_release(h);
    if (ok != 1 || n != 32) return sw_err_set(SW_EIO, "sha256: digest final failed");
    return 0;
}

void sw_sha256_release(struct sw_sha256 *h) {
    if (!h) return;
    EVP_MD_CTX_free((EVP_MD_CTX *)h->ctx);
    h->ctx = NULL;
}

int sw_sha256(const void *data, size_t len, uint8_t out[32]) {
    struct sw_sha256 h;
    SW_TRY(sw_sha256_init(&h));
    int rc = sw_sha256_update(&h, data, len);
    if (rc < 0) {
        sw_sha256_release(&h);
        return rc;
    }
    return sw_sha256_final(&h, out);
}

int sw_sha256_file(const char *path, uint8_t out[32]) {
    FILE *fp = fopen(path, "rbe");
    if (!fp) return sw_err_errno("cannot open '%s'", path);
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = malloc(CHUNK);
    struct sw_sha256 h = {NULL};
    int rc = buf ? sw_sha256_init(&h) : sw_err_set(SW_ENOMEM, "'%s': out of memory", path);
    while (rc == 0) {
        size_t n = fread(buf, 1, CHUNK, fp);
        if (n > 0) rc = sw_sha256_update(&h, buf, n);
        if (n < CHUNK) {
            if (ferror(fp)) rc = sw_err_errno("cannot read '%s'", path);
            break;
        }
    }
    if (rc == 0) rc = sw_sha256_final(&h, out);
    sw_sha256_release(&h);
    free(buf);
    fclose(fp);
    return rc;
}

void sw_hex(const uint8_t *bytes, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}
