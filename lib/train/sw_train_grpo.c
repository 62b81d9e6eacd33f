/* sw_train_grpo — sw-train --rlhf_type grpo: Group Relative Policy Optimization with rollouts on
 * the inference engine over the trainer's own model (no copy of the weights, nothing to sync).
 *
 * Data: a JSON/JSONL dataset of prompts (ms-swift's GRPO datasets: messages ending with the user
 * turn, or query/problem rows; a final assistant turn is dropped) with any extra fields the rewards
 * use (`solution` for accuracy). Prompts are rendered with the model's chat template and the
 * generation prompt (the same template code as sw-pack), read once at start.
 *
 * A generation batch is per_device_train_batch_size × gradient_accumulation_steps completions:
 * that over num_generations (G) prompts, each sampled G times on the engine (the G sequences
 * share the prompt's KV blocks). Rewards are scored per completion (accuracy, format, a plugin
 * process), summed with reward_weights, and turned into group-normalised advantages. With
 * dynamic_sample (DAPO), groups whose rewards are all equal are dropped and new prompts drawn, up
 * to max_resample_times rounds (then, as ms-swift, the original batch is used). The batch then
 * serves num_iterations optimizer steps: each step runs gradient_accumulation_steps micro-batches
 * of per_device_train_batch_size completions packed back to back (prompt + completion, loss only
 * on completion tokens); one forward gives every completion token's log-prob (the fused
 * cross-entropy, never the [tokens, vocab] logits), sw_grpo_loss gives TRL's loss and
 * dL/dlogp, one weighted backward. Old log-probs (num_iterations > 1) come from one forward per
 * micro-batch right after the rollout; the reference log-probs (beta > 0) from the same model with
 * its LoRA adapters off. After every update the engine is told the weights changed, so the next
 * rollout never reuses K/V the old weights computed. Dropout is off for the whole run.
 *
 * Metrics (TRL's names) are averaged over the logging window: reward, reward_std,
 * rewards/<f>/mean, rewards/<f>/std, frac_reward_zero_std, completions/mean_length, min_length,
 * max_length, clipped_ratio, kl, clip_ratio/low_mean, low_min, high_mean, high_max, region_mean,
 * plus sw's time/generation, time/scoring, time/training (seconds per step). */
#include "sw_train_grpo.h"

#include "sw_conv.h"
#include "sw_dataset.h"
#include "sw_engine.h"
#include "sw_err.h"
#include "sw_grpo_loss.h"
#include "sw_io.h"
#include "sw_log.h"
#include "sw_metrics.h"
#include "sw_model_infer.h"
#include "sw_reward.h"
#include "sw_sha256.h"
#include "sw_template.h"
#include "sw_tokenizer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { REW_ACCURACY, REW_FORMAT, REW_PLUGIN };
#define MAX_FUNCS 8
#define MAX_METRICS 48

struct prompt {
    int32_t *ids;
    int64_t n;
    char *text;     /* the rendered prompt */
    char *solution; /* the row's solution as text, or NULL */
    json_t *row;
    char where[160]; /* file:line */
};

/* One completion of the current generation batch. */
struct comp {
    int p; /* prompt index (into the set it was drawn from) */
    int32_t *ids;
    int64_t n;
    char *text;
    int truncated; /* stopped by max_completion_length (no EOS) */
    double r[MAX_FUNCS], reward, adv;
    double *old, *ref; /* [n] per token, or NULL */
};

struct metric {
    char name[64];
    double sum;
    int64_t n;
};

struct sw_train_grpo {
    struct sw_grpo_cfg cfg;
    enum sw_grpo_scale scale;
    int G, K, P, nc, B; /* generations, iterations, prompts / batch, completions / batch, mb size */
    int nf, func[MAX_FUNCS];
    char fname[MAX_FUNCS][24];
    double weight[MAX_FUNCS];
    struct sw_reward_plugin *plugin;
    struct sw_tokenizer *tok;
    struct prompt *pr, *val;
    int64_t npr, nval, max_prompt;
    struct sw_engine *e;
    struct comp *c; /* [nc] the current batch */
    int have_batch, iters_done, dirty;
    int64_t drawn; /* prompts the last rollout drew (dynamic_sample may draw more than P) */
    double top_p, temperature;
    int top_k;
    /* temperature ≠ 1: the final norm's weight divided by it for the step (see temp_scale) */
    struct sw_param *norm;
    float *norm_keep;
    int scaled;
    struct metric m[MAX_METRICS];
    int nm;
};

/* ---- small helpers ----------------------------------------------------------------------------
 */

static void metric_add(struct sw_train_grpo *g, const char *name, double v) {
    if (!isfinite(v)) return;
    for (int i = 0; i < g->nm; i++)
        if (strcmp(g->m[i].name, name) == 0) {
            g->m[i].sum += v, g->m[i].n++;
            return;
        }
    if (g->nm == MAX_METRICS) return;
    struct metric *m = &g->m[g->nm++];
    snprintf(m->name, sizeof m->name, "%s", name);
    m->sum = v, m->n = 1;
}

static void comp_release(struct comp *c) {
    free(c->ids), free(c->text), free(c->old), free(c->ref);
    memset(c, 0, sizeof *c);
}

static void prompts_free(struct prompt *p, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        free(p[i].ids), free(p[i].text), free(p[i].solution);
        json_decref(p[i].row);
    }
    free(p);
}

/* ---- prompts ----------------------------------------------------------------------------------
 */

static int load_prompts(struct sw_train_grpo *g, const char *path, int need_solution,
                        struct prompt **out, int64_t *n_out) {
    const struct sw_template *tpl = sw_template_detect(sw_tokenizer_chat_template(g->tok));
    if (!tpl)
        return sw_err_set(SW_EUNSUPPORTED,
                          "GRPO renders prompts with the model's chat template, and the "
                          "tokenizer's chat_template is not one sw knows (%s)",
                          sw_template_names());
    struct sw_template_tokens tk;
    SW_TRY(sw_template_tokens_from(g->tok, &tk));
    struct sw_dataset_reader *r = NULL;
    SW_TRY(sw_dataset_reader_open(&r, path));
    struct sw_template_scratch sc = {0};
    struct sw_template_sample s = {0};
    struct sw_template_opts to = {.add_generation_prompt = 1};
    struct prompt *pr = NULL;
    int64_t n = 0, cap = 0;
    json_t *row = NULL;
    long line;
    int rc;
    while ((rc = sw_dataset_reader_next(r, &row, &line)) == 1) {
        char where[160];
        snprintf(where, sizeof where, "%s:%ld", sw_dataset_reader_name(r), line);
        struct sw_conv conv;
        enum sw_dataset_format f = sw_dataset_detect(row);
        if (f != SW_DSFMT_MESSAGES && f != SW_DSFMT_SHAREGPT && f != SW_DSFMT_QUERY &&
            f != SW_DSFMT_ALPACA) {
            rc = sw_err_set(SW_EFORMAT,
                            "%s: a GRPO row needs 'messages' (ending with the user's turn) or a "
                            "query/problem with its solution",
                            where);
            break;
        }
        /* a prompt row ends with the user's turn, and the dataset reader wants an answer to
         * train on: give it an empty one (dropped below) */
        json_t *conv_row = json_incref(row);
        if (f == SW_DSFMT_MESSAGES || f == SW_DSFMT_SHAREGPT) {
            const char *mk = json_object_get(row, "messages") ? "messages" : "conversations";
            json_t *msgs = json_object_get(row, mk);
            json_t *last =
                json_is_array(msgs) ? json_array_get(msgs, json_array_size(msgs) - 1) : NULL;
            const char *role = json_string_value(json_object_get(last, "role"));
            const char *from = json_string_value(json_object_get(last, "from"));
            int answered = (role && strcmp(role, "assistant") == 0) ||
                           (from && (strcmp(from, "gpt") == 0 || strcmp(from, "assistant") == 0));
            if (last && !answered) {
                json_decref(conv_row);
                conv_row = json_deep_copy(row);
                json_t *m2 = json_object_get(conv_row, mk);
                json_array_append_new(
                    m2, f == SW_DSFMT_MESSAGES || role
                            ? json_pack("{s:s,s:s}", "role", "assistant", "content", "")
                            : json_pack("{s:s,s:s}", "from", "gpt", "value", ""));
            }
        }
        rc = conv_row ? sw_dataset_row_to_conv(conv_row, f, where, &conv)
                      : sw_err_set(SW_ENOMEM, "out of memory");
        json_decref(conv_row);
        if (rc < 0) break;
        /* the prompt is everything before the answer: drop a final assistant turn */
        if (conv.n_turns && conv.turns[conv.n_turns - 1].role == SW_ROLE_ASSISTANT) {
            struct sw_turn *last = &conv.turns[--conv.n_turns];
            free(last->content), free(last->reasoning);
            for (size_t k = 0; k < last->n_tool_calls; k++)
                free(last->tool_calls[k].name), free(last->tool_calls[k].arguments);
            free(last->tool_calls);
            memset(last, 0, sizeof *last);
        }
        if (conv.n_turns == 0)
            rc = sw_err_set(SW_EFORMAT, "%s: no prompt left once the answer is dropped", where);
        if (rc == 0) rc = sw_template_encode(tpl, g->tok, &conv, &to, &tk, where, &sc, &s);
        sw_conv_release(&conv);
        if (rc < 0) break;
        json_t *sol = json_object_get(row, "solution");
        if (need_solution && !json_is_string(sol) && !json_is_number(sol)) {
            rc = sw_err_set(SW_EFORMAT,
                            "%s: field 'solution': missing (the accuracy reward compares the "
                            "completion's answer with it)",
                            where);
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            struct prompt *np = realloc(pr, (size_t)cap * sizeof *np);
            if (!np) {
                rc = sw_err_set(SW_ENOMEM, "out of memory");
                break;
            }
            pr = np;
        }
        struct prompt *p = &pr[n];
        memset(p, 0, sizeof *p);
        snprintf(p->where, sizeof p->where, "%s", where);
        p->n = (int64_t)s.n;
        p->ids = malloc(s.n * sizeof *p->ids);
        p->text = strdup(sc.render.text ? sc.render.text : "");
        if (json_is_string(sol)) {
            p->solution = strdup(json_string_value(sol));
        } else if (json_is_number(sol)) {
            char b[64];
            snprintf(b, sizeof b, "%.17g", json_number_value(sol));
            p->solution = strdup(b);
        }
        p->row = row;
        row = NULL;
        n++;
        if (!p->ids || !p->text || (sol && !p->solution)) {
            rc = sw_err_set(SW_ENOMEM, "out of memory");
            break;
        }
        memcpy(p->ids, s.ids, s.n * sizeof *p->ids);
        if (p->n > g->max_prompt) g->max_prompt = p->n;
    }
    json_decref(row);
    sw_template_scratch_release(&sc);
    sw_template_sample_release(&s);
    sw_dataset_reader_free(r);
    if (rc == 0 && n == 0) rc = sw_err_set(SW_EINVAL, "%s: holds no prompts", path);
    if (rc < 0) {
        prompts_free(pr, n);
        return rc;
    }
    *out = pr;
    *n_out = n;
    return 0;
}

/* ---- options ----------------------------------------------------------------------------------
 */

static int parse_rewards(struct sw_train_grpo *g, const struct sw_train_opts *o) {
    const struct sw_grpo_opts *q = &o->grpo;
    if (q->reward_funcs) {
        char *s = strdup(q->reward_funcs), *save = NULL;
        if (!s) return sw_err_set(SW_ENOMEM, "out of memory");
        for (char *tkn = strtok_r(s, ", ", &save); tkn; tkn = strtok_r(NULL, ", ", &save)) {
            int f = strcmp(tkn, "accuracy") == 0 ? REW_ACCURACY
                    : strcmp(tkn, "format") == 0 ? REW_FORMAT
                                                 : -1;
            if (f < 0 || g->nf == MAX_FUNCS - 1) {
                int rc = sw_err_set(SW_EUSAGE,
                                    "reward_funcs: '%s' is not a built-in reward (accuracy, "
                                    "format; other rewards: --reward_plugin CMD)",
                                    tkn);
                free(s);
                return rc;
            }
            g->func[g->nf] = f;
            snprintf(g->fname[g->nf++], sizeof g->fname[0], "%s", tkn);
        }
        free(s);
    }
    if (q->reward_plugin) {
        g->func[g->nf] = REW_PLUGIN;
        snprintf(g->fname[g->nf++], sizeof g->fname[0], "plugin");
    }
    if (g->nf == 0)
        return sw_err_set(SW_EUSAGE, "--rlhf_type grpo needs a reward: --reward_funcs "
                                     "accuracy,format and/or --reward_plugin CMD");
    for (int i = 0; i < g->nf; i++)
        g->weight[i] = 1.0;
    if (q->reward_weights) {
        const char *s = q->reward_weights;
        int k = 0;
        while (*s) {
            char *end;
            double w = strtod(s, &end);
            if (end == s || !isfinite(w) || k >= g->nf)
                return sw_err_set(SW_EUSAGE,
                                  "reward_weights '%s': needs %d numbers, one per reward (%s%s)",
                                  q->reward_weights, g->nf, q->reward_funcs ? q->reward_funcs : "",
                                  q->reward_plugin ? (q->reward_funcs ? ",plugin" : "plugin") : "");
            g->weight[k++] = w;
            s = end;
            while (*s == ',' || *s == ' ')
                s++;
        }
        if (k != g->nf)
            return sw_err_set(SW_EUSAGE, "reward_weights '%s': %d numbers for %d rewards",
                              q->reward_weights, k, g->nf);
    }
    return 0;
}

int sw_train_grpo_open(struct sw_trainer *t) {
    const struct sw_train_opts *o = t->o;
    const struct sw_grpo_opts *q = &o->grpo;
    struct sw_train_grpo *g = calloc(1, sizeof *g);
    if (!g) return sw_err_set(SW_ENOMEM, "out of memory");
    t->grpo = g;
    SW_TRY(sw_grpo_loss_type_parse(o->loss_type, &g->cfg.loss));
    SW_TRY(sw_grpo_scale_parse(q->scale_rewards, &g->scale));
    g->cfg.beta = o->beta;
    g->cfg.epsilon_low = q->epsilon;
    g->cfg.epsilon_high = q->epsilon_high > 0 ? q->epsilon_high : q->epsilon;
    g->cfg.max_completion_length = q->max_completion_length;
    g->cfg.grad_accum = o->gradient_accumulation_steps;
    g->G = (int)q->num_generations;
    g->K = (int)q->num_iterations;
    g->B = (int)o->per_device_train_batch_size;
    g->top_p = q->top_p;
    g->temperature = q->temperature;
    g->top_k = (int)q->top_k;
    int64_t nc = o->per_device_train_batch_size * o->gradient_accumulation_steps;
    if (g->G < 2)
        return sw_err_set(SW_EUSAGE,
                          "num_generations %d: GRPO compares at least 2 completions "
                          "of each prompt",
                          g->G);
    if (nc % g->G != 0 || nc > 1 << 20)
        return sw_err_set(SW_EUSAGE,
                          "per_device_train_batch_size x gradient_accumulation_steps = %lld "
                          "completions per generation batch: must be a multiple of "
                          "num_generations %d",
                          (long long)nc, g->G);
    g->nc = (int)nc;
    g->P = g->nc / g->G;
    if (!t->lora && g->cfg.beta != 0)
        return sw_err_set(SW_EUSAGE,
                          "--beta %g with full fine-tuning needs a second copy of the model as "
                          "the reference (not supported yet): use --tuner_type lora (the "
                          "reference is the base, adapters off) or --beta 0",
                          g->cfg.beta);
    if (!t->model_dir)
        return sw_err_set(SW_EUSAGE, "--rlhf_type grpo generates with the engine and needs "
                                     "--model (a folder with its tokenizer)");
    SW_TRY(parse_rewards(g, o));
    int need_sol = 0;
    for (int i = 0; i < g->nf; i++)
        need_sol |= g->func[i] == REW_ACCURACY;
    SW_TRY(sw_tokenizer_load(t->model_dir, &g->tok));
    const char *src = o->dataset && strcmp(o->dataset, "-") != 0 ? o->dataset : NULL;
    if (!src)
        return sw_err_set(SW_EUSAGE, "--rlhf_type grpo reads its prompts from a JSON/JSONL file: "
                                     "give --dataset FILE");
    SW_TRY(load_prompts(g, src, need_sol, &g->pr, &g->npr));
    if (o->val_dataset) SW_TRY(load_prompts(g, o->val_dataset, need_sol, &g->val, &g->nval));
    /* the loop evaluates when n_val is set; GRPO's validation prompts are its own (t->val stays
     * NULL, and sw_train_grpo_close sets n_val back to 0 before the trainer's teardown) */
    t->n_val = g->nval > 0;
    /* a prompt and its longest completion must fit the model's positions (ms-swift would
     * truncate or drop the prompt; sw names it) */
    int64_t maxpos = t->cfg.max_position_embeddings > 0 ? t->cfg.max_position_embeddings : 2048;
    for (int set = 0; set < 2; set++) {
        const struct prompt *pp = set ? g->val : g->pr;
        for (int64_t i = 0, n = set ? g->nval : g->npr; i < n; i++)
            if (pp[i].n + q->max_completion_length > maxpos)
                return sw_err_set(SW_EINVAL,
                                  "%s: a prompt of %lld tokens + max_completion_length %lld is "
                                  "longer than the model's max_position_embeddings %lld",
                                  pp[i].where, (long long)pp[i].n,
                                  (long long)q->max_completion_length, (long long)maxpos);
    }
    if (!(g->c = calloc((size_t)g->nc, sizeof *g->c)))
        return sw_err_set(SW_ENOMEM, "out of memory");
    /* the data position lives in t->data (epoch, used) as for the other kinds of training */
    if (!(t->data.src = strdup(src))) return sw_err_set(SW_ENOMEM, "out of memory");
    t->data.reopenable = 1;
    uint8_t dg[32];
    SW_TRY(sw_sha256_file(src, dg));
    sw_hex(dg, 32, t->data.header_sha256);
    t->records_per_epoch = g->npr;
    t->steps_per_epoch = (g->npr + g->P - 1) / g->P * g->K;
    t->total_steps = o->max_steps > 0 ? o->max_steps : t->steps_per_epoch * o->num_train_epochs;
    t->shape.max_tokens = (int64_t)g->B * (g->max_prompt + q->max_completion_length);
    t->shape.max_seqs = g->B;
    struct sw_ckpt_state *st = &t->st;
    if (st->global_step > 0) {
        if (st->data_header_sha256[0] && strcmp(st->data_header_sha256, t->data.header_sha256))
            return sw_err_set(SW_EINVAL, "%s: not the dataset the checkpoint was trained on", src);
        t->data.epoch = st->data_epoch;
        t->data.used = st->data_records;
    }
    snprintf(st->data_header_sha256, sizeof st->data_header_sha256, "%s", t->data.header_sha256);
    st->max_steps = t->total_steps;
    sw_info("GRPO: %lld prompts (longest %lld tokens), %d per generation batch x %d "
            "generations, %d micro-batches of %d completions, %d update(s) per batch",
            (long long)g->npr, (long long)g->max_prompt, g->P, g->G,
            (int)o->gradient_accumulation_steps, g->B, g->K);
    return 0;
}

int sw_train_grpo_start(struct sw_trainer *t) {
    struct sw_train_grpo *g = t->grpo;
    const struct sw_grpo_opts *q = &t->o->grpo;
    sw_model_set_training(t->m, 0);
    if (g->temperature > 0 && g->temperature != 1.0) {
        const char *mt = t->cfg.model_type;
        if (strcmp(mt, "llama") != 0 && strcmp(mt, "qwen2") != 0 && strcmp(mt, "qwen3") != 0 &&
            strcmp(mt, "mistral") != 0)
            return sw_err_set(SW_EUNSUPPORTED,
                              "--temperature %g: GRPO trains on temperature-scaled log-probs "
                              "through the final norm's weight, which sw does for llama, qwen2, "
                              "qwen3 and mistral, not %s (use --temperature 1)",
                              g->temperature, mt);
        g->norm = sw_model_param_find(t->m, "model.norm.weight");
        if (!g->norm || g->norm->quant || g->norm->value.ndim != 1)
            return sw_err_set(SW_ESTATE, "model.norm.weight: not a float vector");
        if (!(g->norm_keep = malloc((size_t)g->norm->value.shape[0] * sizeof(float))))
            return sw_err_set(SW_ENOMEM, "out of memory");
    }
    struct sw_engine_opts eo;
    sw_engine_opts_init(&eo);
    eo.model_dir = t->model_dir;
    eo.model = t->m;
    eo.device = sw_model_backend(t->m)->device;
    eo.max_model_len = g->max_prompt + q->max_completion_length + 1;
    int nseq = g->nc > g->nval ? g->nc : (int)g->nval;
    eo.max_num_seqs = nseq;
    eo.seed = (uint64_t)t->o->seed;
    /* the cache holds every sequence of a batch at full length (+1 block each) */
    int64_t per_seq = (eo.max_model_len + 15) / 16 + 1;
    eo.kv_cache_bytes =
        (int64_t)(sw_kv_cache_block_bytes(&t->cfg, 16) * (size_t)per_seq * (size_t)(nseq + 1));
    SW_TRY(sw_engine_open(&eo, &g->e));
    if (t->o->grpo.reward_plugin)
        SW_TRY(
            sw_reward_plugin_open(t->o->grpo.reward_plugin, t->o->grpo.reward_timeout, &g->plugin));
    return 0;
}

static int temp_scale(struct sw_trainer *t, int on);

void sw_train_grpo_close(struct sw_trainer *t) {
    struct sw_train_grpo *g = t->grpo;
    if (!g) return;
    sw_engine_close(g->e);
    sw_reward_plugin_close(g->plugin);
    if (g->scaled) temp_scale(t, 0); /* never leave the weight scaled (error paths) */
    free(g->norm_keep);
    sw_tokenizer_free(g->tok);
    prompts_free(g->pr, g->npr);
    prompts_free(g->val, g->nval);
    for (int i = 0; g->c && i < g->nc; i++)
        comp_release(&g->c[i]);
    free(g->c);
    free(g);
    t->grpo = NULL;
    t->n_val = 0;
}

/* ---- temperature ------------------------------------------------------------------------------
 * TRL trains on the log-probs of the temperature-scaled logits (logits / T, its fused LM head).
 * logits / T = (h / T) · Wᵀ and h = rmsnorm(x) · w, so dividing the final norm's weight w by T
 * for the step gives exactly those log-probs to the fused cross-entropy, and sampling the
 * rollouts at temperature 1 from that model is sampling at T from the unscaled one (top-k / top-p
 * apply after the temperature, as in vLLM). The weight is restored bit for bit from a copy after
 * the step's backward, before the update, evaluation or a checkpoint sees it; a trainable norm
 * weight's gradient is multiplied by 1 / T (d/dw of L(w / T)). */
static int temp_scale(struct sw_trainer *t, int on) {
    struct sw_train_grpo *g = t->grpo;
    if (!g->norm || on == g->scaled) return 0;
    struct sw_backend *be = sw_model_backend(t->m);
    struct sw_param *p = g->norm;
    int64_t n = p->value.shape[0];
    size_t bytes = (size_t)n * sizeof(float);
    float *tmp = malloc(bytes);
    if (!tmp) return sw_err_set(SW_ENOMEM, "out of memory");
    int rc = 0;
    if (on) {
        rc = be->download(be, g->norm_keep, p->value.data, bytes);
        for (int64_t i = 0; rc == 0 && i < n; i++)
            tmp[i] = (float)(g->norm_keep[i] / g->temperature);
        if (rc == 0) rc = be->upload(be, p->value.data, tmp, bytes);
    } else {
        rc = be->upload(be, p->value.data, g->norm_keep, bytes);
        if (rc == 0 && p->trainable && p->grad.data) {
            rc = be->download(be, tmp, p->grad.data, bytes);
            for (int64_t i = 0; rc == 0 && i < n; i++)
                tmp[i] = (float)(tmp[i] / g->temperature);
            if (rc == 0) rc = be->upload(be, p->grad.data, tmp, bytes);
        }
    }
    free(tmp);
    if (rc == 0) g->scaled = on;
    return rc;
}

/* ---- rollouts and rewards ------------------------------------------------------------------- */

/* Generate n completions for each of np prompts (indices idx into set) into c[np·n]. */
static int generate(struct sw_train_grpo *g, const struct prompt *set, const int *idx, int np,
                    int n, double temperature, struct comp *c) {
    const int32_t **ids = malloc((size_t)np * sizeof *ids);
    int64_t *lens = malloc((size_t)np * sizeof *lens);
    struct sw_generation *out = calloc((size_t)np, sizeof *out);
    int rc = ids && lens && out ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
    for (int i = 0; rc == 0 && i < np; i++)
        ids[i] = set[idx[i]].ids, lens[i] = set[idx[i]].n;
    struct sw_sampling_params sp;
    sw_sampling_params_init(&sp);
    sp.n = n;
    sp.max_tokens = g->cfg.max_completion_length;
    sp.temperature = temperature;
    sp.top_p = g->top_p;
    sp.top_k = g->top_k;
    sp.logprobs = -1;
    if (rc == 0) rc = sw_engine_generate(g->e, ids, lens, np, &sp, NULL, out);
    for (int i = 0; rc == 0 && i < np; i++) {
        if (out[i].n != n) {
            rc = sw_err_set(SW_ESTATE, "engine: %d completions for %s, asked for %d", out[i].n,
                            set[idx[i]].where, n);
            break;
        }
        for (int k = 0; k < n; k++) {
            struct sw_completion *s = &out[i].seqs[k];
            struct comp *d = &c[i * n + k];
            comp_release(d);
            d->p = idx[i];
            if (s->finish == SW_FINISH_ERROR || s->finish == SW_FINISH_ABORT) {
                rc = sw_err_set(SW_EIO, "engine: generation for %s ended with '%s'",
                                set[idx[i]].where, sw_finish_reason_name(s->finish));
                break;
            }
            d->n = s->n_ids;
            d->truncated = s->finish == SW_FINISH_LENGTH;
            d->ids = malloc((size_t)(s->n_ids ? s->n_ids : 1) * sizeof *d->ids);
            d->text = strdup(s->text ? s->text : "");
            if (!d->ids || !d->text) {
                rc = sw_err_set(SW_ENOMEM, "out of memory");
                break;
            }
            memcpy(d->ids, s->ids, (size_t)s->n_ids * sizeof *d->ids);
        }
    }
    for (int i = 0; out && i < np; i++)
        sw_generation_release(&out[i]);
    free(out), free(lens), free(ids);
    return rc;
}

/* Score c[0..n) (prompts from set) with every reward function; fills r[] and reward. */
static int score(struct sw_train_grpo *g, const struct prompt *set, struct comp *c, int n) {
    for (int f = 0; f < g->nf; f++) {
        if (g->func[f] == REW_PLUGIN) {
            struct sw_reward_item *it = calloc((size_t)n, sizeof *it);
            double *v = malloc((size_t)n * sizeof *v);
            int rc = it && v ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
            for (int i = 0; rc == 0 && i < n; i++) {
                const struct prompt *p = &set[c[i].p];
                it[i] = (struct sw_reward_item){p->text, c[i].text, p->row, p->where};
            }
            if (rc == 0) rc = sw_reward_plugin_score(g->plugin, it, n, v);
            for (int i = 0; rc == 0 && i < n; i++)
                c[i].r[f] = v[i];
            free(it), free(v);
            SW_TRY(rc);
            continue;
        }
        for (int i = 0; i < n; i++)
            c[i].r[f] = g->func[f] == REW_ACCURACY
                            ? sw_reward_accuracy(c[i].text, set[c[i].p].solution)
                            : sw_reward_format(c[i].text);
    }
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int f = 0; f < g->nf; f++)
            s += g->weight[f] * c[i].r[f];
        c[i].reward = s;
    }
    return 0;
}

/* The next P prompt indices of the training data (epochs wrap). */
static void next_prompts(struct sw_trainer *t, int *idx, int P) {
    struct sw_train_grpo *g = t->grpo;
    for (int i = 0; i < P; i++) {
        if (t->data.used >= g->npr) t->data.epoch++, t->data.used = 0;
        idx[i] = (int)t->data.used++;
    }
}

static int group_has_spread(const struct comp *c, int G) {
    for (int k = 1; k < G; k++)
        if (fabs(c[k].reward - c[0].reward) > 1e-12) return 1;
    return 0;
}

/* Log-probs of the batch's completion tokens under the model now (lora_off: the reference) into
 * c[].old or c[].ref, one forward per micro-batch, no backward. */
static int batch_logps(struct sw_trainer *t, int ref);

/* --log_completions (ms-swift's): one JSON line per completion of the batch just scored into
 * <run folder>/completions.jsonl: the step it trains, the prompt (rendered) and its row's place,
 * the completion, every reward, the weighted reward and the advantage. */
static int log_completions(struct sw_trainer *t) {
    struct sw_train_grpo *g = t->grpo;
    char *path = sw_path_join(t->run_dir, "completions.jsonl");
    FILE *f = path ? fopen(path, "a") : NULL;
    int rc = f ? 0
               : sw_err_set(SW_EIO, "%s: %s", path ? path : "completions.jsonl",
                            path ? strerror(errno) : "out of memory");
    for (int i = 0; rc == 0 && i < g->nc; i++) {
        const struct comp *c = &g->c[i];
        json_t *o = json_object(), *r = json_object();
        if (!o || !r) {
            json_decref(o), json_decref(r);
            rc = sw_err_set(SW_ENOMEM, "out of memory");
            break;
        }
        for (int k = 0; k < g->nf; k++)
            json_object_set_new(r, g->fname[k], json_real(c->r[k]));
        json_object_set_new(o, "step", json_integer(t->st.global_step + 1));
        json_object_set_new(o, "row", json_string(g->pr[c->p].where));
        json_object_set_new(o, "prompt", json_string(g->pr[c->p].text));
        json_object_set_new(o, "completion", json_string(c->text));
        json_object_set_new(o, "rewards", r);
        json_object_set_new(o, "reward", json_real(c->reward));
        json_object_set_new(o, "advantage", json_real(c->adv));
        json_object_set_new(o, "truncated", json_boolean(c->truncated));
        if (json_dumpf(o, f, JSON_COMPACT) != 0 || fputc('\n', f) == EOF)
            rc = sw_err_set(SW_EIO, "%s: write failed", path);
        json_decref(o);
    }
    if (f && fclose(f) != 0 && rc == 0) rc = sw_err_set(SW_EIO, "%s: write failed", path);
    free(path);
    return rc;
}

/* The rollout of a generation batch: prompts, completions, rewards, dynamic sampling,
 * advantages, and the old / reference log-probs the loss needs. */
static int rollout(struct sw_trainer *t, double *t_gen, double *t_score) {
    struct sw_train_grpo *g = t->grpo;
    const struct sw_grpo_opts *q = &t->o->grpo;
    int P = g->P, G = g->G, rc = 0;
    if (g->dirty) sw_engine_weights_changed(g->e), g->dirty = 0;
    int *idx = malloc((size_t)P * sizeof *idx);
    struct comp *tmp = calloc((size_t)g->nc, sizeof *tmp);
    if (!idx || !tmp) {
        free(idx), free(tmp);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    int rounds = q->dynamic_sample ? (int)q->max_resample_times + 1 : 1, kept = 0;
    g->drawn = 0;
    for (int round = 0; round < rounds && rc == 0; round++) {
        next_prompts(t, idx, P);
        g->drawn += P;
        struct comp *dst = round == 0 ? g->c : tmp;
        double a = sw_now_seconds();
        rc = generate(g, g->pr, idx, P, G, g->scaled ? 1.0 : q->temperature, dst);
        double b = sw_now_seconds();
        if (rc == 0) rc = score(g, g->pr, dst, g->nc);
        *t_gen += b - a;
        *t_score += sw_now_seconds() - b;
        if (rc < 0 || !q->dynamic_sample) break;
        /* DAPO: keep the groups whose rewards differ, in g->c's front; the first round's
         * groups stay behind them for the fallback */
        for (int i = 0; i < P && kept < P; i++) {
            struct comp *grp = dst + i * G;
            if (!group_has_spread(grp, G)) continue;
            if (round == 0) {
                if (kept != i)
                    for (int k = 0; k < G; k++) {
                        struct comp x = g->c[kept * G + k];
                        g->c[kept * G + k] = grp[k];
                        grp[k] = x;
                    }
            } else {
                for (int k = 0; k < G; k++) {
                    struct comp x = g->c[kept * G + k];
                    g->c[kept * G + k] = grp[k];
                    grp[k] = x;
                }
            }
            kept++;
        }
        if (kept == P) break;
        if (round + 1 == rounds)
            sw_warn("dynamic_sample: only %d of %d groups have rewards that differ after %d "
                    "resampling rounds: training on the batch as it is",
                    kept, P, rounds - 1);
    }
    for (int i = 0; i < g->nc; i++)
        comp_release(&tmp[i]);
    free(tmp), free(idx);
    SW_TRY(rc);
    /* advantages and the reward metrics (on the batch trained on) */
    double *rw = malloc((size_t)g->nc * sizeof *rw), *adv = malloc((size_t)g->nc * sizeof *adv),
           *gstd = malloc((size_t)P * sizeof *gstd);
    if (!rw || !adv || !gstd) {
        free(rw), free(adv), free(gstd);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    for (int i = 0; i < g->nc; i++)
        rw[i] = g->c[i].reward;
    sw_grpo_advantages(rw, g->nc, G, g->scale, adv, gstd);
    double mean = 0, sstd = 0, zero = 0, len = 0, lmin = INFINITY, lmax = 0, trunc = 0;
    for (int i = 0; i < g->nc; i++) {
        g->c[i].adv = adv[i];
        mean += rw[i];
        len += (double)g->c[i].n;
        lmin = fmin(lmin, (double)g->c[i].n);
        lmax = fmax(lmax, (double)g->c[i].n);
        trunc += g->c[i].truncated;
    }
    for (int i = 0; i < P; i++)
        sstd += gstd[i], zero += gstd[i] < 1e-8;
    if (g->scale == SW_GRPO_SCALE_BATCH) {
        double m = mean / g->nc, s = 0;
        for (int i = 0; i < g->nc; i++)
            s += (rw[i] - m) * (rw[i] - m);
        sstd = g->nc > 1 ? sqrt(s / (g->nc - 1)) * P : 0;
    }
    metric_add(g, "reward", mean / g->nc);
    metric_add(g, "reward_std", sstd / P);
    metric_add(g, "frac_reward_zero_std", zero / P);
    metric_add(g, "completions/mean_length", len / g->nc);
    metric_add(g, "completions/min_length", lmin);
    metric_add(g, "completions/max_length", lmax);
    metric_add(g, "completions/clipped_ratio", trunc / g->nc);
    for (int f = 0; f < g->nf; f++) {
        double m = 0, s = 0;
        for (int i = 0; i < g->nc; i++)
            m += g->c[i].r[f];
        m /= g->nc;
        for (int i = 0; i < g->nc; i++)
            s += (g->c[i].r[f] - m) * (g->c[i].r[f] - m);
        char k[64];
        snprintf(k, sizeof k, "rewards/%s/mean", g->fname[f]);
        metric_add(g, k, m);
        snprintf(k, sizeof k, "rewards/%s/std", g->fname[f]);
        metric_add(g, k, g->nc > 1 ? sqrt(s / (g->nc - 1)) : 0);
    }
    free(rw), free(adv), free(gstd);
    if (q->log_completions) SW_TRY(log_completions(t));
    if (g->K > 1) SW_TRY(batch_logps(t, 0));
    if (g->cfg.beta != 0) SW_TRY(batch_logps(t, 1));
    g->have_batch = 1;
    g->iters_done = 0;
    return 0;
}

/* ---- micro-batches ----------------------------------------------------------------------------
 */

struct packed {
    int32_t *ids, *labels, *cu;
    int64_t n, cap;
    struct sw_batch b;
};

static void packed_release(struct packed *p) {
    free(p->ids), free(p->labels), free(p->cu);
    memset(p, 0, sizeof *p);
}

/* Pack completions c[0..S) (prompt + completion) into p; starts[s] = the index of the token
 * whose loss entry is the completion's first token (prompt length − 1 into the sequence). */
static int pack(struct sw_train_grpo *g, const struct comp *c, int S, struct packed *p,
                int64_t *starts) {
    int64_t need = 0;
    for (int s = 0; s < S; s++)
        need += g->pr[c[s].p].n + c[s].n;
    if (need > p->cap) {
        free(p->ids), free(p->labels), free(p->cu);
        p->ids = malloc((size_t)need * sizeof *p->ids);
        p->labels = malloc((size_t)need * sizeof *p->labels);
        p->cu = malloc((size_t)(S + 1) * sizeof *p->cu);
        p->cap = p->ids && p->labels && p->cu ? need : 0;
        if (!p->cap) return sw_err_set(SW_ENOMEM, "out of memory");
    } else {
        int32_t *cu = realloc(p->cu, (size_t)(S + 1) * sizeof *cu);
        if (!cu) return sw_err_set(SW_ENOMEM, "out of memory");
        p->cu = cu;
    }
    int64_t k = 0;
    p->cu[0] = 0;
    for (int s = 0; s < S; s++) {
        const struct prompt *pr = &g->pr[c[s].p];
        for (int64_t i = 0; i < pr->n; i++)
            p->ids[k] = pr->ids[i], p->labels[k++] = SW_IGNORE_INDEX;
        starts[s] = k - 1;
        for (int64_t i = 0; i < c[s].n; i++)
            p->ids[k] = c[s].ids[i], p->labels[k++] = c[s].ids[i];
        p->cu[s + 1] = (int32_t)k;
    }
    p->n = k;
    p->b = (struct sw_batch){
        .B = 1, .T = k, .input_ids = p->ids, .labels = p->labels, .cu_seqlens = p->cu, .n_seqs = S};
    return 0;
}

/* Forward micro-batch c[0..S) and the log-probs of its completion tokens into lp (offsets off). */
static int mb_forward(struct sw_trainer *t, const struct comp *c, int S, struct packed *p,
                      int64_t *starts, int64_t *off, double *lp, float **loss_buf,
                      int64_t *loss_cap) {
    struct sw_train_grpo *g = t->grpo;
    SW_TRY(pack(g, c, S, p, starts));
    if (p->n > *loss_cap) {
        float *l = realloc(*loss_buf, (size_t)p->n * sizeof *l);
        if (!l) return sw_err_set(SW_ENOMEM, "out of memory");
        *loss_buf = l, *loss_cap = p->n;
    }
    SW_TRY(sw_train_mem_oom(t, sw_model_forward(t->m, &p->b, NULL), "activations", t->mem.acts));
    SW_TRY(sw_model_token_losses(t->m, *loss_buf));
    off[0] = 0;
    for (int s = 0; s < S; s++) {
        off[s + 1] = off[s] + c[s].n;
        for (int64_t j = 0; j < c[s].n; j++)
            lp[off[s] + j] = -(double)(*loss_buf)[starts[s] + j];
    }
    return 0;
}

static int batch_logps(struct sw_trainer *t, int ref) {
    struct sw_train_grpo *g = t->grpo;
    struct packed p = {0};
    int64_t *starts = malloc((size_t)(g->B + 1) * sizeof *starts),
            *off = malloc((size_t)(g->B + 1) * sizeof *off), cap = 0;
    double *lp = NULL;
    float *lb = NULL;
    int64_t lbcap = 0;
    int rc = starts && off ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
    if (ref && t->lora) sw_model_set_lora_enabled(t->m, 0);
    for (int a = 0; rc == 0 && a < g->nc; a += g->B) {
        int S = g->nc - a < g->B ? g->nc - a : g->B;
        int64_t tok = 0;
        for (int s = 0; s < S; s++)
            tok += g->c[a + s].n;
        if (tok > cap) {
            double *x = realloc(lp, (size_t)tok * sizeof *x);
            if (!x) {
                rc = sw_err_set(SW_ENOMEM, "out of memory");
                break;
            }
            lp = x, cap = tok;
        }
        rc = mb_forward(t, g->c + a, S, &p, starts, off, lp, &lb, &lbcap);
        for (int s = 0; rc == 0 && s < S; s++) {
            struct comp *c = &g->c[a + s];
            double **dst = ref ? &c->ref : &c->old;
            free(*dst);
            if (!(*dst = malloc((size_t)(c->n ? c->n : 1) * sizeof **dst))) {
                rc = sw_err_set(SW_ENOMEM, "out of memory");
                break;
            }
            memcpy(*dst, lp + off[s], (size_t)c->n * sizeof **dst);
        }
    }
    if (ref && t->lora) sw_model_set_lora_enabled(t->m, 1);
    packed_release(&p);
    free(starts), free(off), free(lp), free(lb);
    return rc;
}

int sw_train_grpo_step(struct sw_trainer *t, double gscale, double *loss) {
    struct sw_train_grpo *g = t->grpo;
    double t_gen = 0, t_score = 0, t0;
    SW_TRY(temp_scale(t, 1));
    if (!g->have_batch || g->iters_done >= g->K) {
        int rc = rollout(t, &t_gen, &t_score);
        if (rc < 0) {
            temp_scale(t, 0);
            return rc;
        }
    }
    t0 = sw_now_seconds();
    int64_t num_items = 0;
    for (int i = 0; i < g->nc; i++)
        num_items += g->c[i].n;
    struct packed p = {0};
    int64_t *starts = malloc((size_t)(g->B + 1) * sizeof *starts),
            *off = malloc((size_t)(g->B + 1) * sizeof *off), cap = 0, lbcap = 0;
    double *lp = NULL, *dl = NULL, *old = NULL, *ref = NULL, *adv = NULL, sum = 0;
    float *lb = NULL, *w = NULL;
    int rc = starts && off ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
    if (rc == 0 && !(adv = malloc((size_t)g->B * sizeof *adv)))
        rc = sw_err_set(SW_ENOMEM, "out of memory");
    int mb = 0;
    for (int a = 0; rc == 0 && a < g->nc; a += g->B, mb++) {
        int S = g->nc - a < g->B ? g->nc - a : g->B;
        const struct comp *c = g->c + a;
        int64_t tok = 0;
        for (int s = 0; s < S; s++)
            tok += c[s].n;
        if (tok > cap) {
            free(lp), free(dl), free(old), free(ref);
            lp = malloc((size_t)tok * sizeof *lp), dl = malloc((size_t)tok * sizeof *dl);
            old = malloc((size_t)tok * sizeof *old), ref = malloc((size_t)tok * sizeof *ref);
            cap = lp && dl && old && ref ? tok : 0;
            if (!cap) {
                rc = sw_err_set(SW_ENOMEM, "out of memory");
                break;
            }
        }
        rc = mb_forward(t, c, S, &p, starts, off, lp, &lb, &lbcap);
        if (rc < 0) break;
        for (int s = 0; s < S; s++) {
            adv[s] = c[s].adv;
            if (c[s].old) memcpy(old + off[s], c[s].old, (size_t)c[s].n * sizeof *old);
            if (c[s].ref) memcpy(ref + off[s], c[s].ref, (size_t)c[s].n * sizeof *ref);
        }
        struct sw_grpo_metrics mt;
        rc = sw_grpo_loss(&g->cfg, S, off, lp, g->K > 1 ? old : NULL, g->cfg.beta != 0 ? ref : NULL,
                          adv, (double)num_items, dl, &mt);
        if (rc < 0) break;
        sum += mt.loss;
        float *nw = realloc(w, (size_t)p.n * sizeof *nw);
        if (!nw) {
            rc = sw_err_set(SW_ENOMEM, "out of memory");
            break;
        }
        w = nw;
        memset(w, 0, (size_t)p.n * sizeof *w);
        for (int s = 0; s < S; s++)
            for (int64_t j = 0; j < c[s].n; j++)
                w[starts[s] + j] = (float)-dl[off[s] + j]; /* token loss = −logp */
        rc = sw_train_mem_oom(t, sw_model_backward_weighted(t->m, w, (float)gscale), "activations",
                              t->mem.acts);
        if (mb < t->o->gradient_accumulation_steps) {
            t->mbs[mb].input_tokens = p.n;
            t->mbs[mb].targets = tok;
            t->mbs[mb].records = g->iters_done == 0 && mb == 0 ? g->drawn : 0;
        }
        metric_add(g, "kl", mt.kl);
        metric_add(g, "clip_ratio/low_mean", mt.clip_low_mean);
        metric_add(g, "clip_ratio/low_min", mt.clip_low_min);
        metric_add(g, "clip_ratio/high_mean", mt.clip_high_mean);
        metric_add(g, "clip_ratio/high_max", mt.clip_high_max);
        metric_add(g, "clip_ratio/region_mean", mt.clip_region_mean);
    }
    packed_release(&p);
    free(starts), free(off), free(lp), free(dl), free(old), free(ref), free(adv), free(lb), free(w);
    int rc2 = temp_scale(t, 0);
    SW_TRY(rc);
    SW_TRY(rc2);
    g->iters_done++;
    g->dirty = 1; /* the update follows: the engine's cached prefixes go stale */
    metric_add(g, "time/generation", t_gen);
    metric_add(g, "time/scoring", t_score);
    metric_add(g, "time/training", sw_now_seconds() - t0);
    *loss = sum;
    return 0;
}

void sw_train_grpo_log(struct sw_trainer *t, json_t *o) {
    struct sw_train_grpo *g = t->grpo;
    for (int i = 0; i < g->nm; i++) {
        if (g->m[i].n) json_object_set_new(o, g->m[i].name, json_real(g->m[i].sum / g->m[i].n));
        g->m[i].sum = 0, g->m[i].n = 0;
    }
}

int sw_train_grpo_eval(struct sw_trainer *t) {
    struct sw_train_grpo *g = t->grpo;
    if (!g->nval) return 0;
    if (g->dirty) sw_engine_weights_changed(g->e), g->dirty = 0;
    int n = (int)g->nval;
    int *idx = calloc((size_t)n, sizeof *idx);
    struct comp *c = calloc((size_t)n, sizeof *c);
    int rc = idx && c ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
    for (int i = 0; rc == 0 && i < n; i++)
        idx[i] = i;
    double t0 = sw_now_seconds();
    if (rc == 0) rc = generate(g, g->val, idx, n, 1, 0.0, c);
    if (rc == 0) rc = score(g, g->val, c, n);
    double rsum = 0, lsum = 0, fsum[MAX_FUNCS] = {0};
    for (int i = 0; rc == 0 && i < n; i++) {
        rsum += c[i].reward, lsum += (double)c[i].n;
        for (int f = 0; f < g->nf; f++)
            fsum[f] += c[i].r[f];
    }
    json_t *o = rc == 0 ? json_object() : NULL;
    if (rc == 0 && !o) rc = sw_err_set(SW_ENOMEM, "out of memory");
    if (rc == 0) {
        json_object_set_new(o, "step", json_integer(t->st.global_step));
        json_object_set_new(o, "epoch", json_real(t->st.epoch));
        json_object_set_new(o, "eval_reward", json_real(rsum / n));
        char k[64];
        for (int f = 0; f < g->nf; f++) {
            snprintf(k, sizeof k, "eval_rewards/%s/mean", g->fname[f]);
            json_object_set_new(o, k, json_real(fsum[f] / n));
        }
        json_object_set_new(o, "eval_completions/mean_length", json_real(lsum / n));
        json_object_set_new(o, "eval_prompts", json_integer(n));
        json_object_set_new(o, "time/eval", json_real(sw_now_seconds() - t0));
        rc = sw_metrics_log_json(t->metrics, o);
        if (rc == 0) rc = sw_ckpt_state_log(&t->st, o);
        sw_info("step %lld: eval_reward %.4g over %d prompts (greedy)",
                (long long)t->st.global_step, rsum / n, n);
    }
    json_decref(o);
    for (int i = 0; c && i < n; i++)
        comp_release(&c[i]);
    free(c), free(idx);
    if (g->norm) g->dirty = 1; /* the prefixes it cached saw the unscaled norm (see temp_scale) */
    return rc;
}

int sw_train_grpo_failed(struct sw_trainer *t, int rc) {
    if (!t->grpo || t->st.global_step == 0 || t->last_saved_step == t->st.global_step) return rc;
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", sw_err_msg());
    if (sw_train_save(t) == 0) {
        sw_err_set(rc, "%s; checkpoint-%lld saved (resume with --resume_from_checkpoint)", msg,
                   (long long)t->st.global_step);
    } else {
        sw_err_set(rc, "%s (and saving a checkpoint failed: %s)", msg, sw_err_msg());
    }
    return rc;
}
