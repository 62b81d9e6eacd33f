/* sw_model_lora — LoRA adapters on the decoder's linear layers (PEFT's LoraConfig semantics):
 * A [r, in] and B [out, r] per targeted module, named as PEFT saves them
 * ("base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight"), scale alpha/r or
 * alpha/sqrt(r) (rsLoRA), optional dropout on the adapter input; the base model is frozen.
 * Init like PEFT: A kaiming-uniform (a = sqrt(5), i.e. U(−1/sqrt(in), 1/sqrt(in))), B zero, so
 * the adapted model starts equal to the base. */
#include "sw_model_impl.h"

#include "sw_err.h"
#include "sw_rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parse target_modules into a mask over enum sw_lin. */
static int parse_targets(const char *spec, int mask[SW_LIN_COUNT]) {
    memset(mask, 0, SW_LIN_COUNT * sizeof(int));
    if (!spec || !*spec || strcmp(spec, "all-linear") == 0) {
        for (int i = 0; i < SW_LIN_COUNT; i++)
            mask[i] = 1;
        return 0;
    }
    const char *p = spec;
    while (*p) {
        while (*p == ',' || *p == ' ')
            p++;
        if (!*p) break;
        size_t n = strcspn(p, ", ");
        int found = 0;
        for (int i = 0; i < SW_LIN_COUNT; i++)
            if (strlen(sw_lin_names[i]) == n && strncmp(p, sw_lin_names[i], n) == 0)
                mask[i] = found = 1;
        if (!found)
            return sw_err_set(SW_EINVAL,
                              "lora: unknown target module '%.*s' in '%s' (known: "
                              "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, "
                              "or all-linear)",
                              (int)n, p, spec);
        p += n;
    }
    return 0;
}

static int init_a(struct sw_model *m, struct sw_param *a, int64_t in, struct sw_rng *rng) {
    int64_t n = a->value.shape[0] * a->value.shape[1];
    float *h = malloc((size_t)n * sizeof(float));
    if (!h) return sw_err_set(SW_ENOMEM, "lora: out of memory for '%s'", a->name);
    float bound = 1.0f / sqrtf((float)in);
    sw_rng_fill_uniform(rng, h, (size_t)n, -bound, bound);
    int rc = m->be->upload(m->be, a->value.data, h, (size_t)n * sizeof(float));
    free(h);
    return rc;
}

int sw_model_lora_add(struct sw_model *m, const struct sw_lora_config *lc) {
    if (m->has_lora) return sw_err_set(SW_ESTATE, "lora: the model already has adapters");
    if (lc->r <= 0 || lc->alpha <= 0 || lc->dropout < 0 || lc->dropout >= 1)
        return sw_err_set(SW_EINVAL,
                          "lora: need r > 0 (got %d), lora_alpha > 0 (got %g), "
                          "0 <= lora_dropout < 1 (got %g)",
                          lc->r, lc->alpha, lc->dropout);
    int mask[SW_LIN_COUNT];
    SW_TRY(parse_targets(lc->target_modules, mask));
    for (int i = 0; i < m->nparams; i++) { /* freeze the base */
        m->params[i]->trainable = 0;
        sw_model_drop_grad(m, m->params[i]);
    }
    float scale = (float)(lc->use_rslora ? lc->alpha / sqrt((double)lc->r) : lc->alpha / lc->r);
    struct sw_rng rng;
    sw_rng_init(&rng, lc->seed, SW_RNG_STREAM_LORA);
    char name[256];
    for (int64_t l = 0; l < m->L; l++)
        for (int i = 0; i < SW_LIN_COUNT; i++) {
            if (!mask[i]) continue;
            struct sw_linear *lin = &m->layers[l].lin[i];
            snprintf(name, sizeof name, "base_model.model.model.layers.%lld.%s.%s.lora_A.weight",
                     (long long)l, sw_lin_parents[i], sw_lin_names[i]);
            SW_TRY(sw_model_add_param(m, name, 2, lc->r, lin->in, 1, 1, &lin->lora_a));
            snprintf(name, sizeof name, "base_model.model.model.layers.%lld.%s.%s.lora_B.weight",
                     (long long)l, sw_lin_parents[i], sw_lin_names[i]);
            SW_TRY(sw_model_add_param(m, name, 2, lin->out, lc->r, 1, 1, &lin->lora_b));
            SW_TRY(init_a(m, lin->lora_a, lin->in, &rng));
            lin->r = lc->r;
            lin->lora_scale = scale;
            lin->lora_dropout = lc->dropout;
        }
    m->has_lora = 1;
    return 0;
}
