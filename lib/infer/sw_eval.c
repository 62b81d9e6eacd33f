/* sw_eval — an evaluation model: the CPU backend, an HF model folder loaded into sw_model, and an
 * optional PEFT adapter applied through the model's own LoRA path (so evaluation computes exactly
 * what training computed: y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ, no merge, no rounding of the base). */
#include "sw_eval.h"

#include "sw_err.h"
#include "sw_log.h"

#include <stdlib.h>
#include <string.h>

/* Add LoRA for the adapter's module kinds and fill A and B from its file. */
static int apply_adapter(struct sw_eval_model *em, const char *adapter_dir) {
    const struct sw_model_config *c = &em->hf->config;
    SW_TRY(sw_adapter_open(adapter_dir, &em->adapter));
    struct sw_adapter *a = em->adapter;
    SW_TRY(sw_adapter_check(a, c));
    char kinds[128];
    sw_adapter_kinds_str(a, kinds, sizeof kinds);
    if (!sw_adapter_covers_all_layers(a, c->num_hidden_layers))
        return sw_err_set(SW_EUNSUPPORTED,
                          "%s: the adapter covers %s in only some of the %lld "
                          "layers (PEFT layers_to_transform); sw-eval applies adapters to every "
                          "layer (merge it first: sw-quant merge-lora)",
                          adapter_dir, kinds, (long long)c->num_hidden_layers);
    struct sw_lora_config lc = {
        .r = a->cfg.r,
        .alpha = a->cfg.alpha,
        .use_rslora = a->cfg.use_rslora,
        .dropout = 0.0f, /* inference: dropout is off anyway */
        .target_modules = kinds,
        .seed = 0,
    };
    SW_TRY(sw_model_lora_add(em->model, &lc));
    int rc = sw_model_lora_load(em->model, a->weights);
    if (rc < 0) return sw_err_wrap(rc, "adapter %s", adapter_dir);
    sw_info("adapter %s: r=%d, lora_alpha=%g%s, %d modules (%s)", adapter_dir, a->cfg.r,
            a->cfg.alpha, a->cfg.use_rslora ? ", rsLoRA" : "", a->n_modules, kinds);
    return 0;
}

int sw_eval_model_open(const char *model_dir, const char *adapter_dir, struct sw_eval_model **out) {
    *out = NULL;
    struct sw_eval_model *em = calloc(1, sizeof(*em));
    if (!em) return sw_err_set(SW_ENOMEM, "out of memory");
    int rc;
    SW_TRY_GOTO(rc, sw_hfmodel_open(model_dir, &em->hf), fail);
    SW_TRY_GOTO(rc, sw_backend_open(SW_DEVICE_CPU, &em->be), fail);
    rc = sw_model_new(&em->hf->config, em->be, &em->model);
    if (rc < 0) {
        sw_err_wrap(rc, "%s/config.json", model_dir);
        goto fail;
    }
    SW_TRY_GOTO(rc, sw_model_load(em->model, em->hf->weights), fail);
    if (adapter_dir) SW_TRY_GOTO(rc, apply_adapter(em, adapter_dir), fail);
    sw_model_set_training(em->model, 0);
    *out = em;
    return 0;
fail:
    sw_eval_model_close(em);
    return rc;
}

void sw_eval_model_close(struct sw_eval_model *em) {
    if (!em) return;
    sw_model_free(em->model);
    sw_backend_close(em->be);
    sw_hfmodel_close(em->hf);
    sw_adapter_close(em->adapter);
    free(em);
}
