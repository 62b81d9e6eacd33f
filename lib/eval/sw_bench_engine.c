/* sw_bench_engine — the in-process backend's use of the inference engine (lib/infer/sw_engine.h):
 * log-likelihoods through its synchronous sw_engine_score (contexts that share a few-shot prefix
 * share cached KV blocks) and greedy generation through sw_engine_generate (continuous batching,
 * KV cache, stop strings). See sw_bench_impl.h. */
#include "sw_bench_impl.h"

#include "sw_engine.h"
#include "sw_err.h"
#include "sw_tokenizer.h"

#include <stdlib.h>
#include <string.h>

int sw_bench_engine_open(const char *model, const char *adapter, const char *template_name,
                         enum sw_device dev, int64_t max_model_len, int64_t batch_tokens,
                         struct sw_engine **out) {
    struct sw_engine_opts eo;
    sw_engine_opts_init(&eo);
    struct sw_engine_adapter ad = {"eval", adapter};
    eo.model_dir = model;
    eo.template_name = template_name;
    eo.adapters = adapter ? &ad : NULL;
    eo.n_adapters = adapter ? 1 : 0;
    eo.device = dev;
    eo.max_model_len = max_model_len;
    eo.max_num_batched_tokens = batch_tokens;
    return sw_engine_open(&eo, out);
}

void sw_bench_engine_close(struct sw_engine *e) {
    sw_engine_close(e);
}

int sw_bench_engine_score(struct sw_engine *e, const char *adapter, const int32_t *const *ctx,
                          const int64_t *nctx, const int32_t *const *cont, const int64_t *ncont,
                          size_t n, double *ll, int *greedy) {
    if (n == 0) return 0;
    struct sw_score_request *q = malloc(n * sizeof(*q));
    struct sw_score_result *r = malloc(n * sizeof(*r));
    int rc = (!q || !r) ? sw_err_set(SW_ENOMEM, "out of memory") : 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        q[i] = (struct sw_score_request){ctx[i], nctx[i], cont[i], ncont[i]};
    if (rc == 0) rc = sw_engine_score(e, q, (int)n, adapter, r);
    for (size_t i = 0; rc == 0 && i < n; i++)
        ll[i] = r[i].logprob, greedy[i] = r[i].is_greedy;
    free(q), free(r);
    return rc;
}

int sw_bench_engine_generate(struct sw_engine *e, const char *adapter, const int32_t *const *ids,
                             const int64_t *lens, size_t n, int64_t max_gen_toks,
                             const char *const *until, int nuntil, char **out) {
    if (n == 0) return 0;
    struct sw_generation *g = calloc(n, sizeof(*g));
    if (!g) return sw_err_set(SW_ENOMEM, "out of memory");
    struct sw_sampling_params p;
    sw_engine_default_params(e, &p);
    p.n = 1;
    p.temperature = 0; /* greedy, as the harness asks (do_sample false) */
    p.max_tokens = max_gen_toks;
    p.stop = until;
    p.n_stop = nuntil;
    p.skip_special_tokens = 1;
    p.logprobs = -1;
    p.prompt_logprobs = -1;
    int rc = sw_engine_generate(e, ids, lens, (int)n, &p, adapter, g);
    /* The text is decoded from the ids as transformers decodes them (the harness calls
     * tokenizer.decode(ids, skip_special_tokens=True)): a trailing incomplete UTF-8 sequence
     * becomes U+FFFD there, where the engine's streaming text holds it back. The caller cuts
     * at the stop strings. */
    const struct sw_tokenizer *tok = sw_engine_tokenizer(e);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        size_t len = 0;
        if (g[i].n > 0)
            rc = sw_tokenizer_decode(tok, g[i].seqs[0].ids, (size_t)g[i].seqs[0].n_ids, 1, &out[i],
                                     &len);
        else if (!(out[i] = strdup("")))
            rc = sw_err_set(SW_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        sw_generation_release(&g[i]);
    free(g);
    return rc;
}
