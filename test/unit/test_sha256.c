/* test_sha256 — the NIST FIPS 180-2 example vectors, streaming in odd pieces, files, hex. */
#include "sw_err.h"
#include "sw_sha256.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *hexdigest(const void *data, size_t len) {
    static char hex[65];
    uint8_t d[32];
    if (sw_sha256(data, len, d) != 0) return "(error)";
    sw_hex(d, 32, hex);
    return hex;
}

int main(void) {
    IS_STR(hexdigest("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
           "sha256(\"\")");
    IS_STR(hexdigest("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
           "sha256(\"abc\")");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    IS_STR(hexdigest(m448, strlen(m448)),
           "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
           "sha256 of the 448-bit message");

    /* one million 'a', fed in uneven pieces to exercise the streaming interface */
    size_t n = 1000000;
    char *a = malloc(n);
    memset(a, 'a', n);
    struct sw_sha256 h;
    int rc = sw_sha256_init(&h);
    size_t off = 0, step = 1;
    while (rc == 0 && off < n) {
        size_t k = n - off < step ? n - off : step;
        rc = sw_sha256_update(&h, a + off, k);
        off += k;
        step = step * 3 + 1;
    }
    uint8_t d[32];
    char hex[65];
    if (rc == 0) rc = sw_sha256_final(&h, d);
    IS_INT(rc, 0, "streaming digest of 10^6 'a'");
    sw_hex(d, 32, hex);
    IS_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
           "sha256 of one million 'a' (streamed)");
    IS_STR(hexdigest(a, n), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
           "sha256 of one million 'a' (one shot)");
    OK(h.ctx == NULL, "final releases the context");
    IS_INT(sw_sha256_update(&h, "x", 1), SW_ESTATE, "update after final is SW_ESTATE");
    sw_sha256_release(&h);
    OK(1, "release after final is harmless");

    char path[] = "/tmp/sw_test_sha256.XXXXXX";
    int fd = mkstemp(path);
    FILE *fp = fdopen(fd, "wb");
    fwrite(a, 1, n, fp);
    fclose(fp);
    IS_INT(sw_sha256_file(path, d), 0, "sha256 of a file");
    sw_hex(d, 32, hex);
    IS_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
           "file digest equals buffer digest");
    unlink(path);
    IS_INT(sw_sha256_file(path, d), SW_ENOTFOUND, "missing file is SW_ENOTFOUND");
    OK(strstr(sw_err_msg(), path) != NULL, "message names the file: %s", sw_err_msg());
    free(a);

    uint8_t b[3] = {0x00, 0xab, 0xff};
    sw_hex(b, 3, hex);
    IS_STR(hex, "00abff", "hex is lowercase, two digits per byte");
    return tap_done();
}
