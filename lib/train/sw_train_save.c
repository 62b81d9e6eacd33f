/* sw_train_save — assembling a checkpoint from the trainer: the tensors to save (every weight for
 * full training, the LoRA A/B matrices for LoRA; downloaded first when they live on a device),
 * the optimizer moments (a host copy of the device-resident ones on CUDA, so the files are the
 * same), the adapter description, the state (steps, data position, RNG), and args.json built
 * from the option table the options were parsed with; after each save the curves in
 * <run>/images/ are redrawn. */
#include "sw_train_impl.h"

#include "sw_err.h"
#include "sw_log.h"
#include "sw_train_report.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

json_t *sw_train_args_json(const struct sw_train_opts *o) {
    return o->option_table ? sw_config_to_json(o->option_table, o) : json_object();
}

/* Host view of parameter p: its own memory on the CPU, NULL on a device (download a copy). */
static float *host_data(struct sw_trainer *t, struct sw_param *p) {
    return t->be->device == SW_DEVICE_CPU ? p->value.data : NULL;
}

int sw_train_save(struct sw_trainer *t) {
    const struct sw_train_opts *o = t->o;
    int n = sw_model_nparams(t->m), k = 0, rc = 0;
    struct sw_tensor *ts = calloc((size_t)n, sizeof *ts);
    float **owned = calloc((size_t)n, sizeof *owned);
    if (!ts || !owned) {
        free(ts);
        free(owned);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n && rc == 0; i++) {
        struct sw_param *p = sw_model_param(t->m, i);
        if (t->lora != p->is_lora) continue;
        float *h = host_data(t, p);
        if (!h) { /* a tensor on the device: fetch a copy */
            size_t bytes = sw_tensor_nbytes(&p->value);
            if (!(owned[k] = h = malloc(bytes ? bytes : 1))) {
                rc = sw_err_set(SW_ENOMEM, "out of memory saving '%s'", p->name);
                break;
            }
            rc = t->be->download(t->be, h, p->value.data, bytes);
        }
        if (rc == 0) rc = sw_tensor_init(&ts[k], SW_DTYPE_F32, p->value.ndim, p->value.shape, h);
        if (rc == 0) rc = sw_tensor_set_name(&ts[k], p->name);
        k++;
    }
    struct sw_ckpt_state *st = &t->st;
    /* The data position (st->data_*) is the one of the last completed step, kept by the loop:
     * a gather cut short by a signal may have read further. */
    struct sw_adamw *opt = NULL;
    st->optimizer_steps = t->dev->steps;
    if (rc == 0 && !o->save_only_model) rc = sw_train_dev_host_optimizer(t, &opt);
    struct sw_adapter_config lc = {
        .r = t->lc.r,
        .alpha = t->lc.alpha,
        .dropout = o->lora_dropout,
        .use_rslora = t->lc.use_rslora,
        .target_modules = t->lora_targets,
        .base_model = t->model_dir,
    };
    struct sw_ckpt_save_args a = {
        .output_dir = t->run_dir,
        .step = st->global_step,
        .lora = t->lora,
        .tensors = ts,
        .n_tensors = k,
        .config = &t->cfg,
        .lora_cfg = &lc,
        .model_dir = t->model_dir,
        .tokenizer_dir = t->files_dir,
        .max_shard_bytes = o->max_shard_size > 0 ? (uint64_t)o->max_shard_size : 0,
        .optimizer = o->save_only_model ? NULL : opt,
        .state = st,
        .args = t->args,
        .save_total_limit = (int)o->save_total_limit,
    };
    char *path = NULL;
    if (rc == 0) rc = sw_ckpt_save(&a, &path);
    if (rc == 0) {
        sw_info("saved %s", path);
        t->last_saved_step = st->global_step;
        /* ms-swift redraws its images/ at every save: the curves so far, from log_history. */
        if (sw_train_report_plots(t->run_dir, st->log_history) < 0) {
            sw_warn("%s", sw_err_msg());
            sw_err_clear();
        }
    }
    free(path);
    sw_adamw_free(opt);
    for (int i = 0; i < n; i++) {
        sw_tensor_release(&ts[i]);
        free(owned[i]);
    }
    free(ts);
    free(owned);
    return rc;
}
