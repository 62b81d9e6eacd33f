/* Unit tests for sw_ckpt: full and LoRA checkpoints round-trip (weights, optimizer moments,
 * state, RNG, log history), the folder is complete and atomic (no .tmp left, same step replaced),
 * tokenizer files are copied byte for byte, sharding, save_total_limit keeps the newest and the
 * best, and every kind of damage on load (missing manifest, missing file, modified byte,
 * malformed JSON, missing key, wrong optimizer parameters) fails with the file named. Also the
 * run folders (sw_run_dir: vN-YYYYMMDD-HHMMSS numbering, latest across runs, refusing a used
 * folder, cleanup after a failed run) and the complete-HF-folder files of a checkpoint
 * (tokenizer.json.gz, tokenizer_dir, a generation_config.json derived from config.json). */
#include "sw_ckpt.h"
#include "sw_err.h"
#include "sw_io.h"
#include "sw_log.h"
#include "sw_run_dir.h"
#include "tap.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static char root[256];

/* root/<fmt % a> in one of 16 rotating buffers (copy a result that must live longer). */
static char *pathf(const char *fmt, const char *a) {
    static char buf[16][1024];
    static int k;
    char *b = buf[k++ & 15];
    char rel[512];
    snprintf(rel, sizeof rel, fmt, a);
    snprintf(b, 1024, "%s/%s", root, rel);
    return b;
}

static int file_exists(const char *p) {
    return access(p, F_OK) == 0;
}

static void write_str(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    fputs(s, f);
    fclose(f);
}

static int count_prefix(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) n++;
    if (d) closedir(d);
    return n;
}

/* Two parameters with recognisable values, their optimizer, and a state. */
struct fixture {
    float w[12], b[4], gw[12], gb[4];
    struct sw_tensor t[2];
    struct sw_optim_param p[2];
    struct sw_adamw *opt;
    struct sw_ckpt_state st;
    struct sw_model_config cfg;
};

static void fixture_init(struct fixture *fx, int lora) {
    memset(fx, 0, sizeof *fx);
    for (int i = 0; i < 12; i++)
        fx->w[i] = 0.25f * (float)i - 1.0f, fx->gw[i] = 0.01f * (float)i;
    for (int i = 0; i < 4; i++)
        fx->b[i] = (float)i, fx->gb[i] = -0.5f;
    const char *n0 = lora ? "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
                          : "model.layers.0.self_attn.q_proj.weight";
    const char *n1 = lora ? "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"
                          : "model.layers.0.self_attn.q_proj.bias";
    int64_t s0[2] = {3, 4}, s1[2] = {4, 1};
    sw_tensor_init(&fx->t[0], SW_DTYPE_F32, 2, s0, fx->w);
    sw_tensor_init(&fx->t[1], SW_DTYPE_F32, lora ? 2 : 1, s1, fx->b);
    sw_tensor_set_name(&fx->t[0], n0);
    sw_tensor_set_name(&fx->t[1], n1);
    fx->p[0] = (struct sw_optim_param){n0, fx->w, fx->gw, 12, 1};
    fx->p[1] = (struct sw_optim_param){n1, fx->b, fx->gb, 4, 0};
    struct sw_adamw_config c = {0.9, 0.95, 1e-8, 0.1};
    sw_adamw_new(&c, fx->p, 2, &fx->opt);
    sw_adamw_step(fx->opt, fx->p, 2, 1e-2);
    sw_adamw_step(fx->opt, fx->p, 2, 1e-2);
    struct sw_ckpt_state *st = &fx->st;
    st->global_step = 3;
    st->optimizer_steps = 2;
    st->max_steps = 10;
    st->epoch = 0.3;
    st->num_train_epochs = 1;
    st->logging_steps = 1, st->eval_steps = 5, st->save_steps = 3, st->train_batch_size = 2;
    st->input_tokens_seen = 1234;
    st->target_tokens_seen = 1000;
    st->data_epoch = 0, st->data_records = 6, st->data_records_total = 6;
    strcpy(st->data_header_sha256, "ab12");
    st->seed = 0xfedcba9876543210ull; /* above INT64_MAX: stored as a string */
    st->data_seed = 42;
    st->dropout_forward_count = 6;
    strcpy(st->lr_scheduler_type, "cosine");
    st->learning_rate = 1e-4;
    st->warmup_steps = 1;
    strcpy(st->tuner_type, lora ? "lora" : "full");
    st->has_best = 1, st->best_metric = 2.5, st->best_step = 3;
    json_t *row = json_pack("{s:f,s:i,s:f}", "loss", 3.25, "step", 1, "learning_rate", 1e-4);
    sw_ckpt_state_log(st, row);
    json_decref(row);
    sw_model_config_load("test/fixtures/models/tiny-qwen2/config.json", &fx->cfg);
}

static void fixture_release(struct fixture *fx) {
    sw_tensor_release(&fx->t[0]);
    sw_tensor_release(&fx->t[1]);
    sw_adamw_free(fx->opt);
    sw_ckpt_state_release(&fx->st);
}

static int save(struct fixture *fx, const char *out, int64_t step, int lora, const char *model_dir,
                uint64_t shard, int limit, char **path) {
    struct sw_adapter_config lc = {4, 8, 0.05, 0, "q_proj,v_proj,k_proj", "/models/base"};
    fx->st.global_step = step;
    struct sw_ckpt_save_args a = {
        .output_dir = out,
        .step = step,
        .lora = lora,
        .tensors = fx->t,
        .n_tensors = 2,
        .config = &fx->cfg,
        .lora_cfg = &lc,
        .model_dir = model_dir,
        .max_shard_bytes = shard,
        .optimizer = fx->opt,
        .state = &fx->st,
        .save_total_limit = limit,
    };
    return sw_ckpt_save(&a, path);
}

static void test_full_roundtrip(void) {
    struct fixture fx;
    fixture_init(&fx, 0);
    /* A fake input model folder with tokenizer files to copy. */
    char *mdir = pathf("%s", "model");
    mkdir(mdir, 0755);
    write_str(pathf("%s", "model/tokenizer.json"), "{\"version\": \"1.0\", \"x\": \"\xc3\xa9\"}\n");
    write_str(pathf("%s", "model/generation_config.json"), "{\"do_sample\": false}\n");
    char *out = pathf("%s", "full");
    char *ck = NULL;
    int rc = save(&fx, out, 3, 0, mdir, 0, 0, &ck);
    IS_INT(rc, 0, "full checkpoint saved: %s", sw_err_msg());
    IS_STR(ck, pathf("%s", "full/checkpoint-3"), "returned path");
    const char *files[] = {"config.json",
                           "model.safetensors",
                           "optimizer.safetensors",
                           "trainer_state.json",
                           "training_state.json",
                           "rng_state.json",
                           "checkpoint.sha256",
                           "tokenizer.json",
                           "generation_config.json",
                           NULL};
    int all = 1;
    for (int i = 0; files[i]; i++) {
        char p[1100];
        snprintf(p, sizeof p, "%s/%s", ck, files[i]);
        if (!file_exists(p)) {
            all = 0;
            DIAG("missing %s", p);
        }
    }
    OK(all, "every file of a full checkpoint is there");
    OK(count_prefix(out, ".checkpoint-") == 0, "no temporary folder left behind");
    char *a = NULL, *b = NULL;
    size_t la, lb;
    char p[1100];
    snprintf(p, sizeof p, "%s/tokenizer.json", ck);
    sw_read_file(p, &a, &la, 0);
    sw_read_file(pathf("%s", "model/tokenizer.json"), &b, &lb, 0);
    OK(a && b && la == lb && memcmp(a, b, la) == 0, "tokenizer.json copied byte for byte");
    free(a), free(b);
    snprintf(p, sizeof p, "%s/config.json", ck);
    struct sw_model_config back;
    IS_INT(sw_model_config_load(p, &back), 0, "config.json loads");
    IS_STR(back.torch_dtype, "float32", "config says float32 (master weights)");
    IS_INT(back.hidden_size, fx.cfg.hidden_size, "config hidden_size");

    struct sw_ckpt *c = NULL;
    rc = sw_ckpt_open(ck, &c);
    IS_INT(rc, 0, "open: %s", sw_err_msg());
    if (!c) return;
    OK(!sw_ckpt_is_lora(c) && !sw_ckpt_get_lora(c), "full checkpoint");
    const struct sw_ckpt_state *s = sw_ckpt_get_state(c);
    IS_INT(s->global_step, 3, "global_step");
    IS_INT(s->optimizer_steps, 2, "optimizer_steps");
    IS_INT(s->data_records, 6, "data position");
    OK(s->seed == 0xfedcba9876543210ull, "64-bit seed round-trips");
    IS_INT(s->dropout_forward_count, 6, "forward count");
    IS_STR(s->lr_scheduler_type, "cosine", "schedule type");
    IS_STR(s->data_header_sha256, "ab12", "stream header digest");
    OK(s->has_best && s->best_metric == 2.5 && s->best_step == 3, "best metric");
    OK(s->epoch == 0.3, "epoch exact");
    OK(json_array_size(s->log_history) == 1 &&
           json_real_value(json_object_get(json_array_get(s->log_history, 0), "loss")) == 3.25,
       "log_history round-trips");
    const struct sw_st_entry *e = sw_st_set_find(sw_ckpt_weights(c), fx.t[0].name);
    OK(e && e->nbytes == sizeof fx.w && memcmp(e->data, fx.w, sizeof fx.w) == 0,
       "weights bit-exact");
    /* Optimizer into a fresh one. */
    struct sw_adamw_config oc = {0.9, 0.95, 1e-8, 0.1};
    struct sw_adamw *o2;
    sw_adamw_new(&oc, fx.p, 2, &o2);
    IS_INT(sw_ckpt_load_optimizer(c, o2), 0, "optimizer loads: %s", sw_err_msg());
    IS_INT(sw_adamw_steps(o2), 2, "optimizer step count restored");
    float *m1, *m2, *v1, *v2;
    sw_adamw_slot(fx.opt, 0, NULL, &m1, &v1);
    sw_adamw_slot(o2, 0, NULL, &m2, &v2);
    OK(memcmp(m1, m2, 48) == 0 && memcmp(v1, v2, 48) == 0, "moments bit-exact");
    sw_adamw_free(o2);
    /* Wrong parameter list. */
    struct sw_optim_param other[2] = {fx.p[0], {"model.other.bias", fx.b, fx.gb, 4, 0}};
    sw_adamw_new(&oc, other, 2, &o2);
    IS_INT(sw_ckpt_load_optimizer(c, o2), SW_ENOTFOUND, "optimizer for other parameters refused");
    OK(strstr(sw_err_msg(), "model.other.bias.exp_avg") &&
           strstr(sw_err_msg(), "optimizer.safetensors"),
       "message names file and tensor: %s", sw_err_msg());
    sw_adamw_free(o2);
    sw_ckpt_close(c);

    /* Same step again: replaced, still one folder. */
    fx.st.data_records = 7;
    fx.st.data_records_total = 7;
    IS_INT(save(&fx, out, 3, 0, mdir, 0, 0, NULL), 0, "save of the same step again");
    IS_INT(count_prefix(out, "checkpoint-"), 1, "one folder for the step");
    IS_INT(count_prefix(out, ".checkpoint-"), 0, "no .old or .tmp folder left");
    sw_ckpt_open(ck, &c);
    OK(c && sw_ckpt_get_state(c)->data_records == 7, "the new content replaced the old");
    sw_ckpt_close(c);
    free(ck);
    fixture_release(&fx);
}

static void test_sharded(void) {
    struct fixture fx;
    fixture_init(&fx, 0);
    char *out = pathf("%s", "sharded");
    char *ck = NULL;
    IS_INT(save(&fx, out, 3, 0, NULL, 40, 0, &ck), 0, "sharded save: %s", sw_err_msg());
    char p[1100];
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", ck);
    OK(file_exists(p), "index written for a small shard size");
    struct sw_ckpt *c = NULL;
    IS_INT(sw_ckpt_open(ck, &c), 0, "sharded checkpoint opens: %s", sw_err_msg());
    OK(c && sw_st_set_nfiles(sw_ckpt_weights(c)) == 2, "two shards");
    sw_ckpt_close(c);
    free(ck);
    fixture_release(&fx);
}

static void test_lora(void) {
    struct fixture fx;
    fixture_init(&fx, 1);
    char *out = pathf("%s", "lora");
    char *ck = NULL;
    IS_INT(save(&fx, out, 2, 1, NULL, 0, 0, &ck), 0, "LoRA checkpoint saved: %s", sw_err_msg());
    char p[1100];
    snprintf(p, sizeof p, "%s/model.safetensors", ck);
    OK(!file_exists(p), "no full weights in a LoRA checkpoint");
    snprintf(p, sizeof p, "%s/adapter_config.json", ck);
    json_error_t jerr;
    json_t *ac = json_load_file(p, 0, &jerr);
    OK(ac != NULL, "adapter_config.json is JSON");
    IS_STR(json_string_value(json_object_get(ac, "peft_type")), "LORA", "peft_type");
    IS_STR(json_string_value(json_object_get(ac, "task_type")), "CAUSAL_LM", "task_type");
    IS_INT(json_integer_value(json_object_get(ac, "r")), 4, "r");
    IS_INT(json_integer_value(json_object_get(ac, "lora_alpha")), 8, "lora_alpha as integer");
    IS_STR(json_string_value(json_object_get(ac, "bias")), "none", "bias none");
    OK(json_is_true(json_object_get(ac, "inference_mode")), "inference_mode true");
    OK(json_is_false(json_object_get(ac, "fan_in_fan_out")), "fan_in_fan_out false");
    json_t *tm = json_object_get(ac, "target_modules");
    OK(json_array_size(tm) == 3 && strcmp(json_string_value(json_array_get(tm, 0)), "k_proj") == 0,
       "target_modules sorted list");
    IS_STR(json_string_value(json_object_get(ac, "base_model_name_or_path")), "/models/base",
           "base model");
    json_decref(ac);
    struct sw_ckpt *c = NULL;
    IS_INT(sw_ckpt_open(ck, &c), 0, "LoRA checkpoint opens: %s", sw_err_msg());
    if (c) {
        const struct sw_adapter_config *l = sw_ckpt_get_lora(c);
        OK(sw_ckpt_is_lora(c) && l && l->r == 4 && l->alpha == 8 && l->dropout == 0.05,
           "adapter config parsed");
        IS_STR(l ? l->target_modules : NULL, "k_proj,q_proj,v_proj", "targets parsed");
        OK(sw_st_set_find(sw_ckpt_weights(c), fx.t[0].name) != NULL, "lora_A under PEFT's name");
    }
    sw_ckpt_close(c);
    free(ck);
    fixture_release(&fx);

    struct sw_adapter_config lc;
    const char *bad = "{\"peft_type\": \"PREFIX_TUNING\", \"r\": 4}";
    IS_INT(sw_adapter_config_parse(bad, strlen(bad), "x.json", &lc), SW_EUNSUPPORTED,
           "non-LoRA PEFT config refused");
    const char *nor = "{\"peft_type\": \"LORA\", \"lora_alpha\": 4, \"target_modules\": []}";
    IS_INT(sw_adapter_config_parse(nor, strlen(nor), "x.json", &lc), SW_EFORMAT, "no r");
    OK(strstr(sw_err_msg(), "x.json") && strstr(sw_err_msg(), "'r'"), "names file and key: %s",
       sw_err_msg());
}

static void test_damage(void) {
    struct fixture fx;
    fixture_init(&fx, 0);
    char *out = pathf("%s", "damage");
    char *ck = NULL;
    save(&fx, out, 5, 0, NULL, 0, 0, &ck);
    struct sw_ckpt *c = NULL;
    char p[1100], q[1100];

    /* One flipped byte in the weights. */
    snprintf(p, sizeof p, "%s/model.safetensors", ck);
    FILE *f = fopen(p, "r+b");
    fseek(f, -3, SEEK_END);
    int ch = fgetc(f);
    fseek(f, -3, SEEK_END);
    fputc(ch ^ 1, f);
    fclose(f);
    IS_INT(sw_ckpt_open(ck, &c), SW_ECORRUPT, "modified weights detected");
    OK(strstr(sw_err_msg(), "model.safetensors") && strstr(sw_err_msg(), "checksum"),
       "message names the file: %s", sw_err_msg());
    f = fopen(p, "r+b");
    fseek(f, -3, SEEK_END);
    fputc(ch, f);
    fclose(f);
    IS_INT(sw_ckpt_open(ck, &c), 0, "restored byte: opens again");
    sw_ckpt_close(c);
    c = NULL;

    /* A listed file missing. */
    snprintf(p, sizeof p, "%s/rng_state.json", ck);
    snprintf(q, sizeof q, "%s/../rng.bak", ck);
    rename(p, q);
    IS_INT(sw_ckpt_open(ck, &c), SW_ENOTFOUND, "missing file detected");
    OK(strstr(sw_err_msg(), "rng_state.json") != NULL, "names it: %s", sw_err_msg());
    rename(q, p);

    /* No manifest: an incomplete checkpoint. */
    snprintf(p, sizeof p, "%s/checkpoint.sha256", ck);
    snprintf(q, sizeof q, "%s/../manifest.bak", ck);
    rename(p, q);
    IS_INT(sw_ckpt_open(ck, &c), SW_ENOTFOUND, "missing manifest detected");
    OK(strstr(sw_err_msg(), "checkpoint.sha256") != NULL, "names it: %s", sw_err_msg());
    rename(q, p);

    /* Malformed manifest line. */
    char *orig = NULL;
    size_t olen;
    sw_read_file(p, &orig, &olen, 0);
    write_str(p, "zz  config.json\n");
    IS_INT(sw_ckpt_open(ck, &c), SW_EFORMAT, "malformed manifest detected");
    OK(strstr(sw_err_msg(), "checkpoint.sha256:1") != NULL, "names file:line: %s", sw_err_msg());
    sw_write_file_atomic(p, orig, olen);
    free(orig);

    /* State JSON with a missing key (manifest recomputed, so only the parser can catch it). */
    snprintf(p, sizeof p, "%s/training_state.json", ck);
    write_str(p, "{\"format\": \"sw-train-state\", \"version\": 1, \"global_step\": 5}\n");
    sw_ckpt_write_manifest(ck);
    IS_INT(sw_ckpt_open(ck, &c), SW_EFORMAT, "incomplete state refused");
    OK(strstr(sw_err_msg(), "training_state.json") && strstr(sw_err_msg(), "optimizer_steps"),
       "names file and key: %s", sw_err_msg());
    write_str(p, "{\"format\": \"sw-train-state\", \"version\": 1, \"global_step\": 5,,}\n");
    sw_ckpt_write_manifest(ck);
    IS_INT(sw_ckpt_open(ck, &c), SW_EFORMAT, "invalid JSON refused");
    OK(strstr(sw_err_msg(), "training_state.json:1") != NULL, "names file:line: %s", sw_err_msg());

    IS_INT(sw_ckpt_open(pathf("%s", "damage/checkpoint-77"), &c), SW_ENOTFOUND,
           "nonexistent checkpoint");
    OK(c == NULL, "nothing returned on error");
    free(ck);
    fixture_release(&fx);
}

static void test_prune_and_latest(void) {
    struct fixture fx;
    fixture_init(&fx, 0);
    char out[1024];
    snprintf(out, sizeof out, "%s", pathf("%s", "prune"));
    char *latest = NULL;
    mkdir(out, 0755);
    IS_INT(sw_ckpt_find_latest(out, &latest), SW_ENOTFOUND, "no checkpoint yet");
    /* A stale temp folder of a dead process. */
    mkdir(pathf("%s", "prune/.checkpoint-9.tmp-999999999"), 0755);
    mkdir(pathf("%s", "prune/checkpoint-x"), 0755); /* not a checkpoint name: left alone */
    fx.st.best_step = 2;
    for (int s = 1; s <= 5; s++)
        IS_INT(save(&fx, out, s * 1, 0, NULL, 0, 2, NULL), 0, "save %d", s);
    OK(!file_exists(pathf("%s", "prune/.checkpoint-9.tmp-999999999")), "stale tmp removed");
    OK(file_exists(pathf("%s", "prune/checkpoint-x")), "unrelated folder kept");
    OK(file_exists(pathf("%s", "prune/checkpoint-2")) &&
           file_exists(pathf("%s", "prune/checkpoint-5")),
       "best (2) and newest (5) kept");
    OK(!file_exists(pathf("%s", "prune/checkpoint-1")) &&
           !file_exists(pathf("%s", "prune/checkpoint-3")) &&
           !file_exists(pathf("%s", "prune/checkpoint-4")),
       "older ones deleted");
    /* Step 10 sorts after 5 numerically, not as text. */
    IS_INT(save(&fx, out, 10, 0, NULL, 0, 0, NULL), 0, "save 10");
    IS_INT(sw_ckpt_find_latest(out, &latest), 0, "latest found");
    IS_STR(latest, pathf("%s", "prune/checkpoint-10"), "latest is numeric maximum");
    free(latest);
    IS_INT(sw_ckpt_prune(out, 1, -1), 0, "prune to 1 without a best");
    IS_INT(count_prefix(out, "checkpoint-"), 2, "the newest and the non-checkpoint folder remain");
    fixture_release(&fx);
}

/* Issue 10, defect 2: tokenizer.json.gz is copied, a model folder without a tokenizer takes
 * tokenizer_dir's, and a generation_config.json is always there (the model folder's, else the
 * one derived from config.json). */
static void test_hf_folder_files(void) {
    struct fixture fx;
    fixture_init(&fx, 0);
    char *tdir = pathf("%s", "tokdir");
    mkdir(tdir, 0755);
    write_str(pathf("%s", "tokdir/tokenizer.json.gz"), "not really gzip, copied byte for byte");
    write_str(pathf("%s", "tokdir/tokenizer_config.json"), "{\"chat_template\": \"x\"}\n");
    char *ndir = pathf("%s", "notok");
    mkdir(ndir, 0755);
    char out[1024];
    snprintf(out, sizeof out, "%s", pathf("%s", "hf"));
    struct sw_adapter_config lc = {4, 8, 0.05, 0, "q_proj", "/models/base"};
    struct sw_ckpt_save_args a = {
        .output_dir = out,
        .step = 1,
        .tensors = fx.t,
        .n_tensors = 2,
        .config = &fx.cfg,
        .lora_cfg = &lc,
        .model_dir = ndir,
        .tokenizer_dir = tdir,
        .state = &fx.st,
    };
    IS_INT(sw_ckpt_save(&a, NULL), 0, "save with a tokenizer_dir (%s)", sw_err_msg());
    OK(file_exists(pathf("%s", "hf/checkpoint-1/tokenizer.json.gz")) &&
           file_exists(pathf("%s", "hf/checkpoint-1/tokenizer_config.json")),
       "tokenizer.json.gz and tokenizer_config.json come from tokenizer_dir");
    char *g = NULL;
    size_t n = 0;
    IS_INT(sw_read_file(pathf("%s", "hf/checkpoint-1/generation_config.json"), &g, &n, 0), 0,
           "generation_config.json written without one in the model folder");
    IS_STR(g,
           "{\n  \"_from_model_config\": true,\n  \"bos_token_id\": 1,\n  \"eos_token_id\": 2\n}\n",
           "derived from config.json as transformers does (bos 1, eos 2, no pad)");
    free(g);
    IS_INT(sw_ckpt_verify_manifest(pathf("%s", "hf/checkpoint-1")), 0, "listed in the manifest");
    /* A model folder with its own generation config wins. */
    write_str(pathf("%s", "notok/generation_config.json"), "{\"do_sample\": true}\n");
    a.step = 2;
    IS_INT(sw_ckpt_save(&a, NULL), 0, "save 2");
    IS_INT(sw_read_file(pathf("%s", "hf/checkpoint-2/generation_config.json"), &g, &n, 0), 0,
           "read");
    IS_STR(g, "{\"do_sample\": true}\n", "the model folder's generation_config.json is copied");
    free(g);
    fixture_release(&fx);
}

/* Issue 10, defect 3: ms-swift's run folders. */
static void test_run_dirs(void) {
    struct fixture fx;
    fixture_init(&fx, 0);
    char out[1024], *r0 = NULL, *r1 = NULL, *r2 = NULL, *p = NULL;
    snprintf(out, sizeof out, "%s", pathf("%s", "runs/deeper"));
    int made = 0;
    IS_INT(sw_run_dir_create(out, &r0, &made), 0, "first run folder (%s)", sw_err_msg());
    OK(made == 1, "output_dir did not exist: made_parent");
    const char *base = r0 ? strrchr(r0, '/') + 1 : "";
    OK(strncmp(base, "v0-", 3) == 0 && strlen(base) == 3 + 15 && base[11] == '-',
       "v0-YYYYMMDD-HHMMSS: %s", base);
    mkdir(pathf("%s", "runs/deeper/v7-old"), 0755);
    mkdir(pathf("%s", "runs/deeper/vx"), 0755); /* not a version */
    IS_INT(sw_run_dir_create(out, &r1, &made), 0, "second run folder");
    OK(made == 0, "output_dir existed");
    OK(r1 && strncmp(strrchr(r1, '/') + 1, "v8-", 3) == 0, "next version after v7: %s", r1);
    IS_INT(sw_run_dir_create(out, &r2, NULL), 0, "third, same second");
    OK(r2 && strncmp(strrchr(r2, '/') + 1, "v9-", 3) == 0, "v9, never the same folder: %s", r2);
    IS_INT(sw_run_dir_latest_checkpoint(out, &p), SW_ENOTFOUND, "no checkpoint anywhere yet");
    OK(strstr(sw_err_msg(), "vN-*"), "the message says where it looked: %s", sw_err_msg());
    IS_INT(save(&fx, r0, 7, 0, NULL, 0, 0, NULL), 0, "v0/checkpoint-7");
    IS_INT(save(&fx, r1, 2, 0, NULL, 0, 0, NULL), 0, "v8/checkpoint-2");
    IS_INT(save(&fx, r1, 3, 0, NULL, 0, 0, NULL), 0, "v8/checkpoint-3");
    IS_INT(sw_run_dir_latest_checkpoint(out, &p), 0, "latest found");
    OK(p && r1 && strncmp(p, r1, strlen(r1)) == 0 && strstr(p, "/checkpoint-3"),
       "the newest run's newest checkpoint (v8, not v9 without one nor v0's higher step): %s", p);
    char *of = NULL;
    IS_INT(sw_run_dir_of_checkpoint(out, p, &of), 0, "run folder of the checkpoint");
    OK(of && strcmp(strrchr(of, '/'), strrchr(r1, '/')) == 0 && strncmp(of, out, strlen(out)) == 0,
       "continues output_dir/v8-...: %s", of);
    free(of), of = NULL;
    IS_INT(sw_run_dir_of_checkpoint(pathf("%s", "runs"), p, &of), 0, "from another output_dir");
    OK(of == NULL, "a checkpoint two levels down is not continued in place");
    free(p), p = NULL;
    /* add_version false: output_dir's own checkpoints count when newer (the versioned one is
     * made an hour older rather than sleeping). */
    IS_INT(save(&fx, out, 1, 0, NULL, 0, 0, NULL), 0, "output_dir/checkpoint-1 (unversioned)");
    struct timeval old[2];
    gettimeofday(&old[0], NULL);
    old[0].tv_sec -= 3600;
    old[1] = old[0];
    char v8ck[1100];
    snprintf(v8ck, sizeof v8ck, "%s/checkpoint-3", r1);
    OK(utimes(v8ck, old) == 0, "backdate v8/checkpoint-3");
    IS_INT(sw_run_dir_latest_checkpoint(out, &p), 0, "latest with an unversioned run");
    IS_STR(p, pathf("%s", "runs/deeper/checkpoint-1"), "the newer, unversioned checkpoint");
    free(p);
    /* A folder holding a run is refused; empty or absent ones are not. */
    IS_INT(sw_run_dir_check_unused(pathf("%s", "runs/nothing-here")), 0, "absent folder is fine");
    IS_INT(sw_run_dir_check_unused(r2), 0, "empty folder is fine");
    write_str(pathf("%s", "runs/empty.jsonl"), "");
    IS_INT(sw_run_dir_check_unused(r0), SW_EINVAL, "a folder with checkpoint-7 is refused");
    OK(strstr(sw_err_msg(), "checkpoint-7") && strstr(sw_err_msg(), "add_version"),
       "names what it holds and how to go on: %s", sw_err_msg());
    /* Cleanup after a failed run: empty things go, anything with data stays. */
    char fresh[1024];
    snprintf(fresh, sizeof fresh, "%s", pathf("%s", "fail/v0-x"));
    mkdir(pathf("%s", "fail"), 0755);
    mkdir(fresh, 0755);
    write_str(pathf("%s", "fail/v0-x/logging.jsonl"), "");
    mkdir(pathf("%s", "fail/v0-x/images"), 0755);
    static const char *const made_files[] = {"logging.jsonl", "images", "runs", NULL};
    sw_run_dir_cleanup(pathf("%s", "fail"), fresh, 1, 1, made_files);
    OK(!file_exists(pathf("%s", "fail")),
       "empty log, empty images/, run folder and output_dir removed");
    mkdir(pathf("%s", "fail"), 0755);
    mkdir(fresh, 0755);
    write_str(pathf("%s", "fail/v0-x/logging.jsonl"), "{\"step\": 5}\n");
    sw_run_dir_cleanup(pathf("%s", "fail"), fresh, 1, 1, made_files);
    OK(file_exists(pathf("%s", "fail/v0-x/logging.jsonl")), "a log with a line is kept");
    free(r0), free(r1), free(r2);
    fixture_release(&fx);
}

int main(void) {
    sw_log_set_level(SW_LOG_ERROR);
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(root, sizeof root, "%s/sw-test-ckpt-XXXXXX", tmp);
    if (!mkdtemp(root)) return 1;
    test_full_roundtrip();
    test_sharded();
    test_lora();
    test_damage();
    test_prune_and_latest();
    test_hf_folder_files();
    test_run_dirs();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) DIAG("could not remove %s", root);
    return tap_done();
}
