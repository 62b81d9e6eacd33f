/* test_strmap — sw_strmap: insert/overwrite/lookup, keys with NUL bytes and empty keys,
 * growth from a tiny hint to 200k keys checked against the values written, insertion-order
 * iteration, and that absent keys (including prefixes of present ones) are absent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sw_strmap.h"
#include "tap.h"

int main(void) {
    struct sw_strmap *m = sw_strmap_new(0);
    OK(m != NULL, "new with hint 0");
    int64_t v = -1;
    OK(!sw_strmap_get(m, "a", 1, &v), "empty map has no 'a'");
    IS_INT(sw_strmap_put(m, "", 0, 7), 0, "put empty key");
    IS_INT(sw_strmap_put(m, "a\0b", 3, 8), 0, "put key with NUL");
    IS_INT(sw_strmap_put(m, "a", 1, 9), 0, "put 'a'");
    OK(sw_strmap_get(m, "", 0, &v) && v == 7, "empty key found");
    OK(sw_strmap_get(m, "a\0b", 3, &v) && v == 8, "NUL key found");
    OK(sw_strmap_get(m, "a", 1, &v) && v == 9, "'a' found");
    OK(!sw_strmap_get(m, "a\0", 2, NULL), "prefix of NUL key absent");
    IS_INT(sw_strmap_put(m, "a", 1, -5), 0, "overwrite 'a'");
    OK(sw_strmap_get(m, "a", 1, &v) && v == -5, "overwritten value read back");
    IS_INT(sw_strmap_size(m), 3, "size counts distinct keys");

    /* Growth: 200k keys from a hint of 0 on a second map. */
    struct sw_strmap *g = sw_strmap_new(0);
    char key[32];
    int bad = 0;
    for (int i = 0; i < 200000; i++) {
        int n = snprintf(key, sizeof(key), "k%d", i * 7919);
        if (sw_strmap_put(g, key, (size_t)n, (int64_t)i * 3) != 0) bad++;
    }
    IS_INT(bad, 0, "200k puts succeed");
    IS_INT(sw_strmap_size(g), 200000, "200k keys stored");
    int miss = 0, wrong = 0;
    for (int i = 0; i < 200000; i++) {
        int n = snprintf(key, sizeof(key), "k%d", i * 7919);
        int64_t got;
        if (!sw_strmap_get(g, key, (size_t)n, &got))
            miss++;
        else if (got != (int64_t)i * 3)
            wrong++;
    }
    IS_INT(miss, 0, "every key found after growth");
    IS_INT(wrong, 0, "every value intact after growth");
    int phantom = 0;
    for (int i = 0; i < 20000; i++) {
        int n = snprintf(key, sizeof(key), "x%d", i);
        if (sw_strmap_get(g, key, (size_t)n, NULL)) phantom++;
    }
    IS_INT(phantom, 0, "absent keys are not found");

    /* Iteration order = insertion order. */
    size_t it = 0, count = 0;
    const char *k;
    size_t kl;
    int64_t val;
    int order_ok = 1;
    while (sw_strmap_next(g, &it, &k, &kl, &val)) {
        int n = snprintf(key, sizeof(key), "k%zu", count * 7919);
        if ((size_t)n != kl || memcmp(key, k, kl) != 0 || val != (int64_t)count * 3 || k[kl] != 0)
            order_ok = 0;
        count++;
    }
    IS_INT(count, 200000, "iteration visits every key once");
    OK(order_ok, "iteration is in insertion order with NUL-terminated keys");

    /* Hash: same input same hash, different lengths of zero bytes differ. */
    char z[16] = {0};
    OK(sw_hash_bytes(z, 3, 0) != sw_hash_bytes(z, 4, 0), "hash depends on length");
    OK(sw_hash_bytes("abc", 3, 1) == sw_hash_bytes("abc", 3, 1), "hash is deterministic");

    sw_strmap_free(m);
    sw_strmap_free(g);
    sw_strmap_free(NULL);
    return tap_done();
}
