/* sw_ckpt_load — opening a checkpoint folder for resume: verify the manifest first (so nothing
 * below ever parses a modified or truncated file), then the state files, the weights and the
 * optimizer moments, each failure naming the file. */
#include "sw_ckpt_impl.h"

#include "sw_err.h"
#include "sw_io.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sw_ckpt {
    char *dir;
    struct sw_ckpt_state state;
    int lora;
    struct sw_adapter_config lora_cfg;
    struct sw_st_set *weights;
    struct sw_st_file *optimizer; /* NULL when the checkpoint has none */
};

void sw_ckpt_close(struct sw_ckpt *ck) {
    if (!ck) return;
    sw_ckpt_state_release(&ck->state);
    sw_adapter_config_release(&ck->lora_cfg);
    sw_st_set_close(ck->weights);
    sw_st_close(ck->optimizer);
    free(ck->dir);
    free(ck);
}

static int exists_in(const char *dir, const char *name) {
    char *p = sw_path_join(dir, name);
    int ok = p && access(p, F_OK) == 0;
    free(p);
    return ok;
}

static int open_lora(struct sw_ckpt *ck) {
    char *path = sw_path_join(ck->dir, CKPT_ADAPTER_CONFIG);
    char *text = NULL;
    size_t len = 0;
    int rc = path ? sw_read_file(path, &text, &len, 16u << 20) : sw_err_set(SW_ENOMEM, "oom");
    if (rc == 0) rc = sw_adapter_config_parse(text, len, path, &ck->lora_cfg);
    free(text);
    free(path);
    SW_TRY(rc);
    path = sw_path_join(ck->dir, CKPT_ADAPTER_MODEL);
    if (!path) return sw_err_set(SW_ENOMEM, "out of memory");
    rc = sw_st_set_open(path, &ck->weights);
    free(path);
    return rc;
}

int sw_ckpt_open(const char *dir, struct sw_ckpt **out) {
    *out = NULL;
    int isdir = sw_path_is_dir(dir);
    if (isdir < 0) return isdir;
    if (isdir == 0) return sw_err_set(SW_EINVAL, "%s: not a checkpoint folder", dir);
    struct sw_ckpt *ck = calloc(1, sizeof *ck);
    if (!ck || !(ck->dir = strdup(dir))) {
        free(ck);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    int rc = 0;
    SW_TRY_GOTO(rc, sw_ckpt_verify_manifest(dir), fail);
    SW_TRY_GOTO(rc, sw_ckpt_state_load(dir, &ck->state), fail);
    ck->lora = exists_in(dir, CKPT_ADAPTER_CONFIG);
    if (ck->lora != (strcmp(ck->state.tuner_type, "lora") == 0)) {
        rc = sw_err_set(SW_EFORMAT, "%s: %s says tuner_type '%s' but %s is %s", dir,
                        CKPT_TRAINING_STATE, ck->state.tuner_type, CKPT_ADAPTER_CONFIG,
                        ck->lora ? "present" : "missing");
        goto fail;
    }
    if (ck->lora) {
        SW_TRY_GOTO(rc, open_lora(ck), fail);
    } else {
        if (!exists_in(dir, "config.json")) {
            rc = sw_err_set(SW_ENOTFOUND, "%s/config.json: missing from a full checkpoint", dir);
            goto fail;
        }
        SW_TRY_GOTO(rc, sw_st_set_open(dir, &ck->weights), fail);
    }
    if (exists_in(dir, CKPT_OPTIMIZER)) {
        char *p = sw_path_join(dir, CKPT_OPTIMIZER);
        rc = p ? sw_st_open(p, &ck->optimizer) : sw_err_set(SW_ENOMEM, "out of memory");
        free(p);
        if (rc < 0) goto fail;
    }
    *out = ck;
    return 0;
fail:
    sw_ckpt_close(ck);
    return rc;
}

const char *sw_ckpt_dir(const struct sw_ckpt *ck) {
    return ck->dir;
}
const struct sw_ckpt_state *sw_ckpt_get_state(const struct sw_ckpt *ck) {
    return &ck->state;
}
int sw_ckpt_is_lora(const struct sw_ckpt *ck) {
    return ck->lora;
}
const struct sw_adapter_config *sw_ckpt_get_lora(const struct sw_ckpt *ck) {
    return ck->lora ? &ck->lora_cfg : NULL;
}
const struct sw_st_set *sw_ckpt_weights(const struct sw_ckpt *ck) {
    return ck->weights;
}

static int copy_moment(const struct sw_st_file *f, const char *name, const char *suffix,
                       int64_t numel, float *dst) {
    char key[600];
    snprintf(key, sizeof key, "%s.%s", name, suffix);
    const struct sw_st_entry *e = sw_st_find(f, key);
    if (!e)
        return sw_err_set(SW_ENOTFOUND,
                          "%s: missing tensor '%s' (the checkpoint was saved for "
                          "other parameters)",
                          sw_st_path(f), key);
    if (e->dtype != SW_DTYPE_F32 || e->nbytes != (size_t)numel * sizeof(float))
        return sw_err_set(SW_EFORMAT,
                          "%s: tensor '%s' is %s with %zu bytes, expected F32 with "
                          "%lld values",
                          sw_st_path(f), key, sw_dtype_name(e->dtype), e->nbytes, (long long)numel);
    memcpy(dst, e->data, e->nbytes);
    return 0;
}

int sw_ckpt_load_optimizer(const struct sw_ckpt *ck, struct sw_adamw *o) {
    const struct sw_st_file *f = ck->optimizer;
    if (!f)
        return sw_err_set(SW_ENOTFOUND, "%s/%s: missing (cannot restore the optimizer)", ck->dir,
                          CKPT_OPTIMIZER);
    const char *fmt = sw_st_metadata(f, "format");
    const char *step = sw_st_metadata(f, "step");
    if (!fmt || strcmp(fmt, "sw-adamw") != 0 || !step)
        return sw_err_set(SW_EFORMAT, "%s: not an sw AdamW state (metadata format/step)",
                          sw_st_path(f));
    char *end;
    errno = 0;
    long long steps = strtoll(step, &end, 10);
    if (*end || errno || steps < 0)
        return sw_err_set(SW_EFORMAT, "%s: metadata step '%s' is not a count", sw_st_path(f), step);
    if (steps != ck->state.optimizer_steps)
        return sw_err_set(SW_ECORRUPT, "%s: step %lld disagrees with %s optimizer_steps %lld",
                          sw_st_path(f), steps, CKPT_TRAINING_STATE,
                          (long long)ck->state.optimizer_steps);
    int n = sw_adamw_count(o);
    if (sw_st_count(f) != 2 * n)
        return sw_err_set(SW_EFORMAT,
                          "%s: holds %d tensors, expected %d (exp_avg and exp_avg_sq "
                          "of %d parameters)",
                          sw_st_path(f), sw_st_count(f), 2 * n, n);
    for (int i = 0; i < n; i++) {
        int64_t numel;
        float *m, *v;
        const char *name = sw_adamw_slot(o, i, &numel, &m, &v);
        SW_TRY(copy_moment(f, name, "exp_avg", numel, m));
        SW_TRY(copy_moment(f, name, "exp_avg_sq", numel, v));
    }
    sw_adamw_set_steps(o, steps);
    return 0;
}
