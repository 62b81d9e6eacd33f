/* Unit tests for sw_optim: AdamW, clipping and the schedule against torch + transformers
 * (test/golden/optim/adamw.safetensors from test/golden/gen_optim.py), HF's weight-decay rule on
 * every parameter name of real Llama/Qwen2/Qwen3/PEFT models, determinism across thread counts,
 * non-finite detection, list validation, and views over caller-owned moments
 * (sw_adamw_new_view: updated in place, equal to an owning optimizer, never freed). */
#include "sw_err.h"
#include "sw_optim.h"
#include "sw_safetensors.h"
#include "sw_sched.h"
#include "tap.h"

#include <jansson.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN "test/golden/optim/adamw.safetensors"
#define MAXP 16

static const struct sw_st_entry *get(const struct sw_st_file *f, const char *fmt, const char *a,
                                     const char *b) {
    char name[512];
    snprintf(name, sizeof name, fmt, a, b);
    return sw_st_find(f, name);
}

/* Worst |got - want| / max(|want|, rms(want)) over n values: relative error, except that values
 * much smaller than the tensor's typical magnitude (a moment that sums terms of both signs to
 * nearly zero) are measured against that magnitude, since their absolute error is that of the
 * terms they cancel. */
static double max_rel(const float *got, const float *want, int64_t n) {
    double worst = 0, ss = 0;
    for (int64_t i = 0; i < n; i++)
        ss += (double)want[i] * want[i];
    double floor = sqrt(ss / (double)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) {
        double w = want[i], d = fabs((double)got[i] - w);
        double s = fabs(w) > floor ? fabs(w) : floor;
        if (d / s > worst) worst = d / s;
    }
    return worst;
}

static void run_case(const struct sw_st_file *f, const char *cs, json_t *decay) {
    json_error_t jerr;
    json_t *cfg = json_loads(sw_st_metadata(f, cs), 0, &jerr);
    OK(cfg != NULL, "%s: config parses", cs);
    if (!cfg) return;
    struct sw_adamw_config ac = {
        .beta1 = json_real_value(json_array_get(json_object_get(cfg, "betas"), 0)),
        .beta2 = json_real_value(json_array_get(json_object_get(cfg, "betas"), 1)),
        .eps = json_number_value(json_object_get(cfg, "eps")),
        .weight_decay = json_number_value(json_object_get(cfg, "weight_decay")),
    };
    double lr = json_number_value(json_object_get(cfg, "lr"));
    double max_norm = json_number_value(json_object_get(cfg, "max_grad_norm"));
    int steps = (int)json_integer_value(json_object_get(cfg, "steps"));
    int warmup = (int)json_integer_value(json_object_get(cfg, "warmup"));
    enum sw_sched_type st;
    IS_INT(sw_sched_parse_type(json_string_value(json_object_get(cfg, "sched")), &st), 0,
           "%s: schedule name", cs);
    struct sw_sched sched;
    IS_INT(sw_sched_init(&sched, st, lr, steps, warmup, 0.0), 0, "%s: schedule init", cs);

    /* Parameters in the golden's order: the entries "<case>.init.*" in header order. */
    struct sw_optim_param ps[MAXP];
    int n = 0;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s.init.", cs);
    for (int i = 0; i < sw_st_count(f) && n < MAXP; i++) {
        const struct sw_st_entry *e = sw_st_get(f, i);
        if (strncmp(e->name, prefix, strlen(prefix)) != 0) continue;
        const char *pname = e->name + strlen(prefix);
        int64_t numel = (int64_t)(e->nbytes / 4);
        ps[n] = (struct sw_optim_param){strdup(pname), malloc(e->nbytes), malloc(e->nbytes), numel,
                                        sw_param_wants_decay(pname)};
        memcpy(ps[n].data, e->data, e->nbytes);
        json_t *d = json_object_get(decay, pname);
        OK(d && json_is_true(d) == ps[n].decay, "%s: decay flag of %s matches HF", cs, pname);
        n++;
    }
    OK(n >= 6, "%s: %d parameters in the golden", cs, n);

    struct sw_adamw *o = NULL;
    IS_INT(sw_adamw_new(&ac, ps, n, &o), 0, "%s: optimizer created: %s", cs, sw_err_msg());
    const struct sw_st_entry *lre = get(f, "%s.lr%s", cs, "");
    const struct sw_st_entry *gne = get(f, "%s.grad_norm%s", cs, "");
    OK(lre && gne, "%s: lr and grad_norm goldens present", cs);
    const double *lrs = lre->data, *gns = gne->data;
    double worst_norm = 0, worst_lr = 0;
    int clipped = 0;
    for (int s = 0; s < steps && o; s++) {
        char step[32];
        snprintf(step, sizeof step, "grad.%d", s);
        for (int i = 0; i < n; i++) {
            char nm[512];
            snprintf(nm, sizeof nm, "%s.%s.%s", cs, step, ps[i].name);
            const struct sw_st_entry *g = sw_st_find(f, nm);
            if (!g) {
                OK(0, "missing %s", nm);
                return;
            }
            memcpy(ps[i].grad, g->data, g->nbytes);
        }
        double norm = sw_grad_norm(ps, n);
        double rn = fabs(norm - gns[s]) / gns[s];
        if (rn > worst_norm) worst_norm = rn;
        if (sw_grad_clip(ps, n, max_norm, norm) < 1.0) clipped++;
        double l = sw_sched_lr(&sched, s);
        double rl = fabs(l - lrs[s]) / (lrs[s] > 0 ? lrs[s] : 1);
        if (rl > worst_lr) worst_lr = rl;
        IS_INT(sw_adamw_step(o, ps, n, l), 0, "%s: step %d", cs, s);
    }
    OK(worst_norm <= 1e-6, "%s: grad norms match torch (worst rel %.3g)", cs, worst_norm);
    OK(worst_lr <= 1e-15, "%s: LRs match get_scheduler (worst rel %.3g)", cs, worst_lr);
    if (max_norm > 0) OK(clipped > 0, "%s: clipping happened on %d steps", cs, clipped);
    IS_INT(sw_adamw_steps(o), steps, "%s: step count", cs);
    for (int i = 0; i < n && o; i++) {
        const struct sw_st_entry *fin = get(f, "%s.final.%s", cs, ps[i].name);
        const struct sw_st_entry *m = get(f, "%s.exp_avg.%s", cs, ps[i].name);
        const struct sw_st_entry *v = get(f, "%s.exp_avg_sq.%s", cs, ps[i].name);
        float *om, *ov;
        int64_t numel;
        sw_adamw_slot(o, i, &numel, &om, &ov);
        double ep = max_rel(ps[i].data, fin->data, numel);
        double em = max_rel(om, m->data, numel);
        double ev = max_rel(ov, v->data, numel);
        OK(ep <= 1e-6 && em <= 1e-6 && ev <= 1e-6,
           "%s: %s param/exp_avg/exp_avg_sq match torch (rel %.2g %.2g %.2g)", cs, ps[i].name, ep,
           em, ev);
    }
    sw_adamw_free(o);
    for (int i = 0; i < n; i++) {
        free((char *)ps[i].name);
        free(ps[i].data);
        free(ps[i].grad);
    }
    json_decref(cfg);
}

static void test_golden(void) {
    struct sw_st_file *f = NULL;
    int rc = sw_st_open(GOLDEN, &f);
    IS_INT(rc, 0, "open %s: %s", GOLDEN, sw_err_msg());
    if (rc) return;
    json_error_t jerr;
    json_t *cases = json_loads(sw_st_metadata(f, "cases"), 0, &jerr);
    json_t *decay = json_loads(sw_st_metadata(f, "decay"), 0, &jerr);
    OK(cases && decay, "golden metadata parses");
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) run_case(f, json_string_value(c), decay);

    /* HF's rule on every name of the real models. */
    const char *k;
    json_t *v;
    int bad = 0, total = 0;
    json_object_foreach(decay, k, v) {
        total++;
        if (sw_param_wants_decay(k) != json_is_true(v)) {
            bad++;
            DIAG("decay mismatch: %s (HF %d)", k, json_is_true(v));
        }
    }
    OK(bad == 0 && total > 40, "decay rule matches HF on %d names", total);
    json_decref(cases);
    json_decref(decay);
    sw_st_close(f);
}

static void test_decay_rule(void) {
    OK(!sw_param_wants_decay("model.norm.weight"), "model.norm.weight: no decay");
    OK(!sw_param_wants_decay("norm.weight"), "^norm: no decay");
    OK(!sw_param_wants_decay("x.q_norm.weight"), "_norm.: no decay");
    OK(!sw_param_wants_decay("x.Q_NORM"), "upper case _NORM at end: no decay");
    OK(!sw_param_wants_decay("x.LayerNorm.weight"), "LayerNorm: no decay");
    OK(!sw_param_wants_decay("a.b.bias"), "bias: no decay");
    OK(sw_param_wants_decay("x.normal.weight"), "'normal' is not a norm");
    OK(sw_param_wants_decay("x.abnorm.weight"), "'abnorm' is not a norm");
    OK(sw_param_wants_decay("lm_head.weight"), "lm_head decays");
}

static void fill(float *x, int64_t n, unsigned seed) {
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * 3.0f;
    }
}

static void test_determinism(void) {
    /* Big enough for several chunks of the norm and of the update. */
    int64_t n0 = 300001, n1 = 70000;
    float *d0 = malloc(n0 * 4), *g0 = malloc(n0 * 4), *d1 = malloc(n1 * 4), *g1 = malloc(n1 * 4);
    fill(g0, n0, 1);
    fill(g1, n1, 2);
    struct sw_optim_param ps[2] = {{"a.weight", d0, g0, n0, 1}, {"b.bias", d1, g1, n1, 0}};
    omp_set_num_threads(1);
    double n_1 = sw_grad_norm(ps, 2);
    omp_set_num_threads(2);
    double n_2 = sw_grad_norm(ps, 2);
    omp_set_num_threads(7);
    double n_7 = sw_grad_norm(ps, 2);
    OK(memcmp(&n_1, &n_2, 8) == 0 && memcmp(&n_1, &n_7, 8) == 0,
       "grad norm bit-identical for 1, 2, 7 threads (%.17g)", n_1);
    double want = 0;
    for (int64_t i = 0; i < n0; i++)
        want += (double)g0[i] * g0[i];
    for (int64_t i = 0; i < n1; i++)
        want += (double)g1[i] * g1[i];
    IS_NEAR(n_1, sqrt(want), 1e-12, "grad norm value");

    /* Same updates with 1 and 3 threads. */
    float *r1 = malloc(n0 * 4), *r3 = malloc(n0 * 4);
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t == 0 ? 1 : 3);
        fill(d0, n0, 3);
        fill(d1, n1, 4);
        struct sw_adamw_config c = {0.9, 0.999, 1e-8, 0.01};
        struct sw_adamw *o;
        sw_adamw_new(&c, ps, 2, &o);
        for (int s = 0; s < 3; s++)
            sw_adamw_step(o, ps, 2, 1e-3);
        memcpy(t == 0 ? r1 : r3, d0, n0 * 4);
        sw_adamw_free(o);
    }
    OK(memcmp(r1, r3, n0 * 4) == 0, "AdamW update bit-identical for 1 and 3 threads");
    omp_set_num_threads(2);

    /* Clip scales exactly by the float coefficient. */
    float before = g0[5];
    double coef = sw_grad_clip(ps, 2, 1.0, n_1);
    IS_NEAR(coef, 1.0 / (n_1 + 1e-6), 1e-6, "clip coefficient");
    OK(g0[5] == before * (float)coef, "gradient scaled by coef");
    OK(sw_grad_clip(ps, 2, 1e9, 1.0) == 1.0, "no clip below the threshold");
    OK(sw_grad_clip(ps, 2, 0.0, 1e9) == 1.0, "max_grad_norm 0 disables clipping");

    IS_INT(sw_grad_find_nonfinite(ps, 2), -1, "all gradients finite");
    g1[n1 - 1] = NAN;
    IS_INT(sw_grad_find_nonfinite(ps, 2), 1, "NaN found in the second parameter");
    OK(isnan(sw_grad_norm(ps, 2)), "norm is NaN with a NaN gradient");
    g1[n1 - 1] = INFINITY;
    IS_INT(sw_grad_find_nonfinite(ps, 2), 1, "Inf found");
    sw_grad_zero(ps, 2);
    OK(sw_grad_norm(ps, 2) == 0.0, "zeroed gradients have norm 0");
    free(d0), free(g0), free(d1), free(g1), free(r1), free(r3);
}

static void test_errors(void) {
    float d[4] = {0}, g[4] = {0};
    struct sw_optim_param ps[2] = {{"w", d, g, 4, 1}, {"w", d, g, 4, 1}};
    struct sw_adamw *o = NULL;
    struct sw_adamw_config c = {0.9, 0.999, 1e-8, 0.0};
    IS_INT(sw_adamw_new(&c, ps, 2, &o), SW_EINVAL, "duplicate name rejected");
    OK(strstr(sw_err_msg(), "'w'") != NULL, "message names it: %s", sw_err_msg());
    struct sw_adamw_config bad = {1.0, 0.999, 1e-8, 0.0};
    IS_INT(sw_adamw_new(&bad, ps, 1, &o), SW_EINVAL, "beta1 = 1 rejected");
    OK(strstr(sw_err_msg(), "adam_beta1") != NULL, "message names adam_beta1");
    IS_INT(sw_adamw_new(&c, ps, 1, &o), 0, "one parameter ok");
    struct sw_optim_param other = {"v", d, g, 4, 1};
    IS_INT(sw_adamw_step(o, &other, 1, 1e-3), SW_EINVAL, "step with another list rejected");
    OK(strstr(sw_err_msg(), "'v'") && strstr(sw_err_msg(), "'w'"), "message: %s", sw_err_msg());
    IS_INT(sw_adamw_step(o, ps, 2, 1e-3), SW_EINVAL, "step with more parameters rejected");
    IS_INT(sw_adamw_steps(o), 0, "failed steps do not count");
    /* A zero gradient with zero moments leaves the parameter alone (no NaN from 0/0). */
    d[0] = 1.5f;
    IS_INT(sw_adamw_step(o, ps, 1, 1e-3), 0, "step");
    OK(d[0] == 1.5f, "zero gradient: no change, no NaN");
    sw_adamw_free(o);
    sw_adamw_free(NULL);
}

/* A view over the caller's moment buffers steps exactly as an owning optimizer, in place. */
static void test_view(void) {
    enum { N0 = 40000, N1 = 33 };
    float *da = malloc(N0 * 4), *db = malloc(N0 * 4), *g = malloc(N0 * 4);
    float *ea = malloc(N1 * 4), *eb = malloc(N1 * 4), *h = malloc(N1 * 4);
    float *m[2] = {calloc(N0, 4), calloc(N1, 4)}, *v[2] = {calloc(N0, 4), calloc(N1, 4)};
    fill(da, N0, 5), fill(g, N0, 6), fill(ea, N1, 7), fill(h, N1, 8);
    memcpy(db, da, N0 * 4), memcpy(eb, ea, N1 * 4);
    struct sw_optim_param pa[2] = {{"a.weight", da, g, N0, 1}, {"a.bias", ea, h, N1, 0}};
    struct sw_optim_param pb[2] = {{"a.weight", db, g, N0, 1}, {"a.bias", eb, h, N1, 0}};
    struct sw_adamw_config c = {0.9, 0.99, 1e-8, 0.05};
    struct sw_adamw *own = NULL, *view = NULL;
    int rc = sw_adamw_new(&c, pa, 2, &own);
    if (rc == 0) rc = sw_adamw_new_view(&c, pb, 2, m, v, &view);
    for (int s = 0; s < 3 && rc == 0; s++) {
        rc = sw_adamw_step(own, pa, 2, 1e-2);
        if (rc == 0) rc = sw_adamw_step(view, pb, 2, 1e-2);
    }
    float *om, *ov, *vm, *vv;
    int64_t numel = 0;
    sw_adamw_slot(own, 0, NULL, &om, &ov);
    sw_adamw_slot(view, 0, &numel, &vm, &vv);
    OK(rc == 0 && !memcmp(da, db, N0 * 4) && !memcmp(ea, eb, N1 * 4) && !memcmp(om, m[0], N0 * 4) &&
           !memcmp(ov, v[0], N0 * 4),
       "a view steps as an owning optimizer, bit for bit");
    OK(vm == m[0] && vv == v[0] && numel == N0 && sw_adamw_steps(view) == 3,
       "the view's slots are the caller's buffers");
    sw_adamw_free(view); /* must not free m/v: they are read (and freed) below */
    OK(m[0][0] == om[0] && v[1][N1 - 1] != 0.0f, "the buffers outlive the view");
    float *none[2] = {m[0], NULL};
    OK(sw_adamw_new_view(&c, pb, 2, none, v, &view) == SW_EINVAL && view == NULL,
       "a view without a moment buffer is SW_EINVAL");
    struct sw_adamw_config bad = {0.9, 1.5, 1e-8, 0.0};
    OK(sw_adamw_new_view(&bad, pb, 2, m, v, &view) == SW_EINVAL &&
           strstr(sw_err_msg(), "adam_beta2"),
       "a view checks the hyperparameters too");
    sw_adamw_free(own);
    free(da), free(db), free(g), free(ea), free(eb), free(h);
    for (int i = 0; i < 2; i++)
        free(m[i]), free(v[i]);
}

int main(void) {
    test_decay_rule();
    test_golden();
    test_determinism();
    test_errors();
    test_view();
    return tap_done();
}
