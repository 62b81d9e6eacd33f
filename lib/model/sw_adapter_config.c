/* sw_adapter_config — PEFT's adapter_config.json for a LoRA adapter: the text sw-train writes (the
 * keys PEFT itself writes, so PEFT loads sw's adapters) and a strict parser that refuses what sw
 * cannot apply (other PEFT types, bias, DoRA, fan_in_fan_out). */
#include "sw_adapter.h"

#include "sw_err.h"
#include "sw_json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- adapter_config.json ------------------------------------------------------------------ */

char *sw_adapter_config_json(const struct sw_adapter_config *lc) {
    json_t *o = json_object();
    json_t *targets = json_array();
    if (!o || !targets) {
        json_decref(o);
        json_decref(targets);
        return NULL;
    }
    /* target_modules: the module names, sorted (PEFT keeps a set). */
    char *list = strdup(lc->target_modules ? lc->target_modules : "");
    if (!list) {
        json_decref(o);
        json_decref(targets);
        return NULL;
    }
    char *names[64];
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok && n < 64;
         tok = strtok_r(NULL, ",", &save))
        if (*tok) names[n++] = tok;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    for (int i = 0; i < n; i++)
        json_array_append_new(targets, json_string(names[i]));
    free(list);
    /* The keys PEFT has written since 0.10 (newer PEFT accepts all of them; older PEFT rejects
     * keys it does not know, so newer-only keys are left out). */
    json_object_set_new(o, "alpha_pattern", json_object());
    json_object_set_new(o, "auto_mapping", json_null());
    json_object_set_new(o, "base_model_name_or_path",
                        lc->base_model ? json_string(lc->base_model) : json_null());
    json_object_set_new(o, "bias", json_string("none"));
    json_object_set_new(o, "fan_in_fan_out", json_false());
    json_object_set_new(o, "inference_mode", json_true());
    json_object_set_new(o, "init_lora_weights", json_true());
    json_object_set_new(o, "layer_replication", json_null());
    json_object_set_new(o, "layers_pattern", json_null());
    json_object_set_new(o, "layers_to_transform", json_null());
    json_object_set_new(o, "loftq_config", json_object());
    /* PEFT writes an integer alpha as an integer. */
    if (lc->alpha == floor(lc->alpha) && fabs(lc->alpha) < 1e15)
        json_object_set_new(o, "lora_alpha", json_integer((json_int_t)lc->alpha));
    else
        json_object_set_new(o, "lora_alpha", json_real(lc->alpha));
    json_object_set_new(o, "lora_dropout", json_real(lc->dropout));
    json_object_set_new(o, "megatron_config", json_null());
    json_object_set_new(o, "megatron_core", json_string("megatron.core"));
    json_object_set_new(o, "modules_to_save", json_null());
    json_object_set_new(o, "peft_type", json_string("LORA"));
    json_object_set_new(o, "r", json_integer(lc->r));
    json_object_set_new(o, "rank_pattern", json_object());
    json_object_set_new(o, "revision", json_null());
    json_object_set_new(o, "target_modules", targets);
    json_object_set_new(o, "task_type", json_string("CAUSAL_LM"));
    json_object_set_new(o, "use_dora", json_false());
    json_object_set_new(o, "use_rslora", lc->use_rslora ? json_true() : json_false());
    char *s = sw_json_dump(o);
    json_decref(o);
    return s;
}

void sw_adapter_config_release(struct sw_adapter_config *lc) {
    if (!lc) return;
    free(lc->target_modules);
    free(lc->base_model);
    memset(lc, 0, sizeof *lc);
}

int sw_adapter_config_parse(const char *text, size_t len, const char *name,
                            struct sw_adapter_config *lc) {
    memset(lc, 0, sizeof *lc);
    json_error_t jerr;
    json_t *o = json_loadb(text, len, 0, &jerr);
    if (!o) return sw_err_set(SW_EFORMAT, "%s:%d: %s", name, jerr.line, jerr.text);
    int rc = 0;
    char peft_type[16];
    int64_t r;
    SW_TRY_GOTO(rc, sw_json_get_str(o, "peft_type", name, peft_type, sizeof peft_type), out);
    if (strcmp(peft_type, "LORA") != 0) {
        rc = sw_err_set(SW_EUNSUPPORTED, "%s: peft_type '%s' is not supported (only LORA)", name,
                        peft_type);
        goto out;
    }
    SW_TRY_GOTO(rc, sw_json_get_i64(o, "r", name, &r), out);
    if (r <= 0 || r > 65536) {
        rc = sw_err_set(SW_EFORMAT, "%s: r = %lld is out of range", name, (long long)r);
        goto out;
    }
    lc->r = (int)r;
    SW_TRY_GOTO(rc, sw_json_get_real(o, "lora_alpha", name, &lc->alpha), out);
    json_t *d = json_object_get(o, "lora_dropout");
    lc->dropout = json_is_number(d) ? json_number_value(d) : 0.0;
    lc->use_rslora = json_is_true(json_object_get(o, "use_rslora"));
    json_t *b = json_object_get(o, "bias");
    if (b && !(json_is_string(b) && strcmp(json_string_value(b), "none") == 0)) {
        rc = sw_err_set(SW_EUNSUPPORTED, "%s: bias other than \"none\" is not supported", name);
        goto out;
    }
    if (json_is_true(json_object_get(o, "use_dora")) ||
        json_is_true(json_object_get(o, "fan_in_fan_out"))) {
        rc = sw_err_set(SW_EUNSUPPORTED, "%s: use_dora / fan_in_fan_out are not supported", name);
        goto out;
    }
    json_t *bm = json_object_get(o, "base_model_name_or_path");
    if (json_is_string(bm) && !(lc->base_model = strdup(json_string_value(bm)))) {
        rc = sw_err_set(SW_ENOMEM, "out of memory");
        goto out;
    }
    /* target_modules: a list of names, or one string (a regex in PEFT; kept as given). */
    json_t *tm = json_object_get(o, "target_modules");
    size_t cap = 1;
    size_t i;
    json_t *v;
    if (json_is_array(tm)) {
        json_array_foreach(tm, i, v) {
            if (!json_is_string(v)) {
                rc = sw_err_set(SW_EFORMAT, "%s: target_modules[%zu] is not a string", name, i);
                goto out;
            }
            cap += json_string_length(v) + 1;
        }
        lc->target_modules = calloc(1, cap);
        if (!lc->target_modules) {
            rc = sw_err_set(SW_ENOMEM, "out of memory");
            goto out;
        }
        json_array_foreach(tm, i, v) {
            if (i) strcat(lc->target_modules, ",");
            strcat(lc->target_modules, json_string_value(v));
        }
    } else if (json_is_string(tm)) {
        lc->target_modules = strdup(json_string_value(tm));
    } else {
        rc = sw_err_set(SW_EFORMAT, "%s: missing key 'target_modules' (a list of module names)",
                        name);
        goto out;
    }
out:
    json_decref(o);
    if (rc < 0) sw_adapter_config_release(lc);
    return rc;
}
