/* test_model_init — sw_model_init_random is drawn in parallel (slices of the Philox stream per
 * thread, sw_rng_fill_normal_at) and must stay the sequential definition bit for bit: one pass
 * over the 2-D parameters in parameter order drawing sw_rng_normal from SW_RNG_STREAM_INIT, the
 * pad row drawn then zeroed, biases 0, other 1-D parameters 1.
 *
 * Checked for 1, 2, 3 and 7 threads: every value equals that sequential reference (computed
 * here with sw_rng_fill_normal), and an FNV-1a hash of all values plus a few single values equal
 * golden numbers produced by the sequential implementation before it was parallelised (so a
 * change to sw_rng itself is caught too). Also: sw_rng_fill_normal_at against restore + fill. */
#include "sw_model.h"

#include "sw_err.h"
#include "sw_parallel.h"
#include "sw_rng.h"
#include "fixtures.h"
#include "tap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct sw_backend *be;

/* Small, but with an embedding of 262,336 values so 7 threads each get a slice of it; pad
 * row 5 (not 0) so the zeroed row sits inside the first thread's slice, not at its start. */
static void config(struct sw_model_config *c, int llama) {
    struct sw_test_shape shape = {.vocab = 4099,
                                  .hidden = 64,
                                  .intermediate = 160,
                                  .layers = 2,
                                  .heads = 4,
                                  .kv_heads = 2,
                                  .head_dim = 16};
    /* qwen2: tied, q/k/v biases; llama: untied lm_head */
    sw_test_config(c, llama ? SW_ARCH_LLAMA : SW_ARCH_QWEN2, shape);
    c->pad_token_id = 5;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t bytes) {
    const unsigned char *b = p;
    for (size_t k = 0; k < bytes; k++)
        h = (h ^ b[k]) * 1099511628211ull;
    return h;
}

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* The definition, sequentially: 1 if every parameter of m holds exactly these values. */
static int equals_reference(struct sw_model *m, uint64_t seed, float std, int64_t pad,
                            int64_t hidden) {
    struct sw_rng r;
    sw_rng_init(&r, seed, SW_RNG_STREAM_INIT);
    int same = 1;
    for (int i = 0; i < sw_model_nparams(m); i++) {
        struct sw_param *p = sw_model_param(m, i);
        int64_t n = sw_tensor_numel(&p->value);
        float *want = malloc((size_t)n * sizeof(float));
        if (!want) return 0;
        size_t len = strlen(p->name);
        if (p->value.ndim == 2) {
            sw_rng_fill_normal(&r, want, (size_t)n, 0.0f, std);
            if (!strcmp(p->name, "model.embed_tokens.weight") && pad >= 0)
                memset(want + pad * hidden, 0, (size_t)hidden * sizeof(float));
        } else {
            float v = len > 5 && !strcmp(p->name + len - 5, ".bias") ? 0.0f : 1.0f;
            for (int64_t k = 0; k < n; k++)
                want[k] = v;
        }
        if (memcmp(want, p->value.data, (size_t)n * sizeof(float))) {
            if (same) DIAG("first difference in '%s'", p->name);
            same = 0;
        }
        free(want);
    }
    return same;
}

struct golden {
    uint64_t hash;               /* FNV-1a of every parameter's bytes, in parameter order */
    const char *name;            /* a matrix after the embedding */
    uint32_t embed0, embed_last; /* bits of embed[0], embed[V*C - 1] */
    uint32_t name0, name_last;   /* bits of name[0], name[last] */
};

static void check_family(int llama, const struct golden *g) {
    struct sw_model_config c;
    config(&c, llama);
    const char *fam = llama ? "llama (untied)" : "qwen2 (tied, biases)";
    static const int threads[] = {1, 2, 3, 7};
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        sw_parallel_set_threads(threads[t]);
        struct sw_model *m = NULL;
        if (!OK(sw_model_new(&c, be, &m) == 0, "%s: build", fam)) continue;
        int rc = sw_model_init_random(m, 1234, 0.02f);
        uint64_t h = 1469598103934665603ull;
        for (int i = 0; i < sw_model_nparams(m); i++) {
            struct sw_param *p = sw_model_param(m, i);
            h = fnv1a(h, p->value.data, (size_t)sw_tensor_numel(&p->value) * sizeof(float));
        }
        const float *e = sw_model_param_find(m, "model.embed_tokens.weight")->value.data;
        struct sw_param *q = sw_model_param_find(m, g->name);
        const float *qv = q->value.data;
        int64_t en = c.vocab_size * c.hidden_size, qn = sw_tensor_numel(&q->value);
        OK(rc == 0 && h == g->hash,
           "%s, %d threads: values hash to the golden 0x%016llx (got 0x%016llx)", fam, threads[t],
           (unsigned long long)g->hash, (unsigned long long)h);
        OK(bits(e[0]) == g->embed0 && bits(e[en - 1]) == g->embed_last && bits(qv[0]) == g->name0 &&
               bits(qv[qn - 1]) == g->name_last,
           "%s, %d threads: golden single values (embed[0] %.9g, %s[last] %.9g)", fam, threads[t],
           e[0], g->name, qv[qn - 1]);
        int pad_zero = 1;
        for (int64_t k = 0; k < c.hidden_size; k++)
            pad_zero &= bits(e[5 * c.hidden_size + k]) == 0;
        OK(pad_zero && e[6 * c.hidden_size] != 0.0f, "%s, %d threads: pad row 5 zero, row 6 not",
           fam, threads[t]);
        OK(equals_reference(m, 1234, 0.02f, 5, c.hidden_size),
           "%s, %d threads: every value equals the sequential sw_rng_fill_normal definition", fam,
           threads[t]);
        sw_model_free(m);
    }
    sw_parallel_set_threads(0);
}

static void test_fill_normal_at(void) {
    static const uint64_t firsts[] = {0, 1, 3, 12345, (1ull << 32) - 2, (1ull << 40) + 3};
    enum { N = 1000 };
    float a[N], b[N];
    int same = 1;
    for (size_t i = 0; i < sizeof firsts / sizeof firsts[0]; i++) {
        struct sw_rng r;
        sw_rng_restore(&r, 0x0123456789abcdefull, 9, 4 * firsts[i]);
        sw_rng_fill_normal(&r, a, N, 0.5f, 3.0f);
        sw_rng_fill_normal_at(0x0123456789abcdefull, 9, firsts[i], b, N, 0.5f, 3.0f);
        same &= memcmp(a, b, sizeof a) == 0 && r.offset == 4 * (firsts[i] + N);
    }
    OK(same, "sw_rng_fill_normal_at(first) = restore at word 4*first + sw_rng_fill_normal "
             "(block counters across 2^32 included)");
}

int main(void) {
    if (!OK(sw_backend_open(SW_DEVICE_CPU, &be) == 0, "open the CPU backend")) return tap_done();
    test_fill_normal_at();
    /* Golden numbers: the sequential implementation of 2026-11-23 (before the parallel fill). */
    static const struct golden qwen2 = {
        0x62f32f767299ebe2ull, "model.layers.0.self_attn.k_proj.weight",
        0x3ce543c7u,           0x3c80db7au,
        0xbc60cdc2u,           0xbc909789u};
    static const struct golden llama = {0x165ed587af43fee1ull, "lm_head.weight", 0x3ce543c7u,
                                        0x3c80db7au,           0x3c315720u,      0x3c9e0241u};
    check_family(0, &qwen2);
    check_family(1, &llama);
    sw_backend_close(be);
    return tap_done();
}
