/* Unit tests for sw_sched: every schedule type against transformers' get_scheduler + LambdaLR
 * (test/golden/optim/sched.json from test/golden/gen_optim.py), the warmup-step rule of
 * TrainingArguments (steps, ratio as a fraction, ms-swift's warmup_ratio) and bad values. */
#include "sw_err.h"
#include "sw_sched.h"
#include "tap.h"

#include <jansson.h>

#define GOLDEN "test/golden/optim/sched.json"

static void test_golden(void) {
    json_error_t jerr;
    json_t *root = json_load_file(GOLDEN, 0, &jerr);
    OK(root && json_is_array(root), "load %s (%s)", GOLDEN, root ? "ok" : jerr.text);
    if (!root) return;
    size_t i;
    json_t *c;
    int ncases = 0;
    json_array_foreach(root, i, c) {
        const char *type = json_string_value(json_object_get(c, "type"));
        int64_t total = json_integer_value(json_object_get(c, "total"));
        double wopt = json_number_value(json_object_get(c, "warmup_option"));
        int64_t want_w = json_integer_value(json_object_get(c, "warmup"));
        double base = json_number_value(json_object_get(c, "base_lr"));
        int64_t w = sw_sched_warmup_steps(total, wopt, 0.0);
        IS_INT(w, want_w, "%s T=%lld warmup option %g -> %lld steps", type, (long long)total, wopt,
               (long long)want_w);
        if (wopt > 0 && wopt < 1)
            IS_INT(sw_sched_warmup_steps(total, 0.0, wopt), want_w,
                   "warmup_ratio %g gives the same count", wopt);
        enum sw_sched_type st;
        struct sw_sched s;
        IS_INT(sw_sched_parse_type(type, &st), 0, "parse '%s'", type);
        IS_STR(sw_sched_type_name(st), type, "name round trip");
        IS_INT(sw_sched_init(&s, st, base, total, w, 0.0), 0, "init");
        json_t *lrs = json_object_get(c, "lrs");
        size_t k;
        json_t *v;
        double worst = 0;
        json_array_foreach(lrs, k, v) {
            double want = json_number_value(v), got = sw_sched_lr(&s, (int64_t)k);
            double d = fabs(got - want) / base;
            if (d > worst) worst = d;
        }
        OK(worst <= 1e-15 && json_array_size(lrs) == (size_t)total + 2,
           "%s T=%lld W=%lld: %zu LRs match (worst %.3g)", type, (long long)total, (long long)w,
           json_array_size(lrs), worst);
        ncases++;
    }
    OK(ncases >= 20, "%d golden schedules", ncases);
    json_decref(root);
}

static void test_shapes(void) {
    struct sw_sched s;
    sw_sched_init(&s, SW_SCHED_COSINE, 1.0, 100, 10, 0.0);
    IS_NEAR(sw_sched_lr(&s, 0), 0.0, 1e-15, "cosine starts at 0 with warmup");
    IS_NEAR(sw_sched_lr(&s, 5), 0.5, 1e-15, "half way through warmup");
    IS_NEAR(sw_sched_lr(&s, 10), 1.0, 1e-15, "peak after warmup");
    IS_NEAR(sw_sched_lr(&s, 55), 0.5, 1e-12, "cosine midpoint");
    IS_NEAR(sw_sched_lr(&s, 100), 0.0, 1e-15, "cosine end");
    IS_NEAR(sw_sched_lr(&s, 145), 0.5, 1e-12, "past the end cosine rises again, as HF's does");
    sw_sched_init(&s, SW_SCHED_COSINE, 1.0, 100, 0, 0.1);
    IS_NEAR(sw_sched_lr(&s, 100), 0.1, 1e-12, "min_lr_rate floor");
    sw_sched_init(&s, SW_SCHED_LINEAR, 2.0, 10, 0, 0.0);
    IS_NEAR(sw_sched_lr(&s, 20), 0.0, 1e-15, "linear clamps at 0 past the end");
    sw_sched_init(&s, SW_SCHED_CONSTANT, 2.0, 10, 5, 0.0);
    IS_NEAR(sw_sched_lr(&s, 0), 2.0, 1e-15, "constant ignores warmup (as HF)");
    IS_INT(sw_sched_warmup_steps(100, 0, 0.05), 5, "warmup_ratio 0.05 of 100");
    IS_INT(sw_sched_warmup_steps(101, 0, 0.05), 6, "warmup_ratio rounds up");
    IS_INT(sw_sched_warmup_steps(100, 7, 0.5), 7, "warmup_steps wins over warmup_ratio");
    IS_INT(sw_sched_warmup_steps(100, -1, -1), 0, "negative means none");
}

static void test_errors(void) {
    enum sw_sched_type st;
    struct sw_sched s;
    IS_INT(sw_sched_parse_type("cosin", &st), SW_EINVAL, "unknown type");
    OK(strstr(sw_err_msg(), "cosin") && strstr(sw_err_msg(), "lr_scheduler_type"),
       "message names the value and key: %s", sw_err_msg());
    IS_INT(sw_sched_init(&s, SW_SCHED_LINEAR, -1, 10, 0, 0), SW_EINVAL, "negative lr");
    IS_INT(sw_sched_init(&s, SW_SCHED_LINEAR, NAN, 10, 0, 0), SW_EINVAL, "NaN lr");
    IS_INT(sw_sched_init(&s, SW_SCHED_LINEAR, 1, -1, 0, 0), SW_EINVAL, "negative total");
    IS_INT(sw_sched_init(&s, SW_SCHED_LINEAR, 1, 10, -2, 0), SW_EINVAL, "negative warmup");
    IS_INT(sw_sched_init(&s, SW_SCHED_COSINE, 1, 10, 0, 2), SW_EINVAL, "min_lr_rate > 1");
    IS_INT(sw_sched_init(&s, (enum sw_sched_type)9, 1, 10, 0, 0), SW_EINVAL, "bad type value");
}

int main(void) {
    test_golden();
    test_shapes();
    test_errors();
    return tap_done();
}
