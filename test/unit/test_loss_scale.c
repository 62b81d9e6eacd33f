/* Unit tests for sw_loss_scale: GradScaler's state machine against sequences computed by hand
 * and checked against torch 2.15's torch.amp.GradScaler (the scale and _growth_tracker after
 * each update, printed by a short script: an SGD step on a parameter whose loss is multiplied
 * by inf where found_inf is 1): growth after exactly growth_interval finite steps, the tracker
 * reset by an overflow, backoff on every overflow, no growth past float32's range; fixed
 * scales; --loss_scale parsing; and the scaler state in training_state.json (written only when
 * present, read back exactly). */
#include "sw_ckpt_impl.h"
#include "sw_err.h"
#include "sw_loss_scale.h"
#include "tap.h"

#include <float.h>
#include <stdlib.h>

/* Run found_inf[i] through s and compare scale / tracker / return value step by step. */
static void check_seq(struct sw_grad_scaler *s, const char *what, int n, const int *found_inf,
                      const double *scale, const int64_t *tracker) {
    int ok = 1, bad = -1;
    int64_t skipped0 = s->skipped, nskip = 0;
    for (int i = 0; i < n; i++) {
        int applied = sw_grad_scaler_update(s, found_inf[i]);
        nskip += found_inf[i];
        if (applied != !found_inf[i] || (double)s->scale != scale[i] ||
            s->growth_tracker != tracker[i]) {
            ok = 0;
            if (bad < 0) bad = i;
        }
    }
    if (!OK(ok && s->skipped - skipped0 == nskip, "%s: %d updates as torch's GradScaler", what, n))
        DIAG("first difference at update %d: scale %.9g tracker %lld", bad, (double)s->scale,
             (long long)s->growth_tracker);
}

static void test_dynamic(void) {
    struct sw_grad_scaler s;
    sw_grad_scaler_init(&s, SW_GRAD_SCALER_INIT, 1);
    OK(s.scale == 65536.0f && s.growth_tracker == 0 && s.skipped == 0 && s.dynamic &&
           s.growth_factor == 2.0 && s.backoff_factor == 0.5 && s.growth_interval == 2000,
       "defaults are GradScaler's: 65536, x2 every 2000 finite steps, x0.5 on overflow");
    /* growth_interval 3 (torch: GradScaler(init_scale=65536, growth_interval=3)). */
    s.growth_interval = 3;
    const int inf[16] = {0, 0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0};
    const double sc[16] = {65536, 65536, 131072, 131072, 65536, 65536, 65536, 32768,
                           16384, 16384, 16384,  32768,  32768, 32768, 65536, 65536};
    const int64_t tr[16] = {1, 2, 0, 1, 0, 1, 2, 0, 0, 1, 2, 0, 1, 2, 0, 1};
    check_seq(&s, "interval 3: growth, overflow mid-count, two overflows in a row", 16, inf, sc,
              tr);
    IS_INT(s.skipped, 3, "three overflows counted as skipped steps");

    /* Default interval: 1999 finite steps do not grow, the 2000th does; an overflow at 1999
     * restarts the count. */
    sw_grad_scaler_init(&s, SW_GRAD_SCALER_INIT, 1);
    for (int i = 0; i < 1999; i++)
        sw_grad_scaler_update(&s, 0);
    OK(s.scale == 65536.0f && s.growth_tracker == 1999, "1999 finite steps: no growth yet");
    sw_grad_scaler_update(&s, 0);
    OK(s.scale == 131072.0f && s.growth_tracker == 0, "the 2000th finite step doubles the scale");
    for (int i = 0; i < 1999; i++)
        sw_grad_scaler_update(&s, 0);
    OK(sw_grad_scaler_update(&s, 1) == 0 && s.scale == 65536.0f && s.growth_tracker == 0,
       "an overflow after 1999 finite steps halves the scale and resets the tracker");
    for (int i = 0; i < 1999; i++)
        sw_grad_scaler_update(&s, 0);
    OK(s.scale == 65536.0f, "the count restarted: 1999 more finite steps do not grow");

    /* No growth past float32's range (torch: init 2^127, interval 2 stays 2^127). */
    sw_grad_scaler_init(&s, 0x1p127, 1);
    s.growth_interval = 2;
    const int inf2[7] = {0, 0, 0, 0, 0, 0, 0};
    const double sc2[7] = {0x1p127, 0x1p127, 0x1p127, 0x1p127, 0x1p127, 0x1p127, 0x1p127};
    const int64_t tr2[7] = {1, 0, 1, 0, 1, 0, 1};
    check_seq(&s, "2^127: growth would overflow float32, the scale stays, the tracker resets", 7,
              inf2, sc2, tr2);

    /* Backoff on every overflow (torch: init 2^40, five overflows). */
    sw_grad_scaler_init(&s, 0x1p40, 1);
    const int inf3[5] = {1, 1, 1, 1, 1};
    const double sc3[5] = {0x1p39, 0x1p38, 0x1p37, 0x1p36, 0x1p35};
    const int64_t tr3[5] = {0, 0, 0, 0, 0};
    check_seq(&s, "2^40 with five overflows: halved each time", 5, inf3, sc3, tr3);
    IS_INT(s.skipped, 5, "five skipped steps");
}

static void test_fixed(void) {
    struct sw_grad_scaler s;
    sw_grad_scaler_init(&s, 1e38, 0);
    int applied = 0;
    for (int i = 0; i < 10; i++)
        applied += sw_grad_scaler_update(&s, 1);
    OK(applied == 0 && s.scale == (float)1e38 && s.skipped == 10 && s.growth_tracker == 0,
       "fixed 1e38: every overflow skipped and counted, the scale never moves");
    sw_grad_scaler_init(&s, 1024, 0);
    for (int i = 0; i < 5000; i++)
        applied += sw_grad_scaler_update(&s, 0);
    OK(applied == 5000 && s.scale == 1024.0f && s.skipped == 0,
       "fixed 1024: 5000 finite steps applied, no growth");
}

static void test_parse(void) {
    double v = 0;
    int dyn = -1;
    OK(sw_grad_scaler_parse("dynamic", &v, &dyn) == 0 && v == 65536.0 && dyn == 1,
       "'dynamic': GradScaler from 65536");
    OK(sw_grad_scaler_parse(NULL, &v, &dyn) == 0 && v == 65536.0 && dyn == 1, "unset: dynamic");
    OK(sw_grad_scaler_parse("dynamic:1099511627776", &v, &dyn) == 0 && v == 0x1p40 && dyn == 1,
       "'dynamic:2^40': dynamic from 2^40");
    OK(sw_grad_scaler_parse("1024", &v, &dyn) == 0 && v == 1024.0 && dyn == 0, "'1024': fixed");
    OK(sw_grad_scaler_parse("1e38", &v, &dyn) == 0 && v == 1e38 && dyn == 0, "'1e38': fixed");
    const char *bad[] = {"",    "0",        "-2",        "1e39",    "abc",   "12x",       "nan",
                         "inf", "dynamic:", "dynamic:0", "Dynamic", "1e-50", "last_round"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = sw_grad_scaler_parse(bad[i], &v, &dyn);
        OK(rc == SW_EUSAGE && strstr(sw_err_msg(), "loss_scale") && strstr(sw_err_msg(), bad[i]),
           "'%s' is a usage error naming the value: %s", bad[i], sw_err_msg());
    }
}

/* The scaler's state in training_state.json: absent unless the run scales, exact round trip. */
static void test_ckpt_state(void) {
    char dir[] = "/tmp/sw_test_loss_scale.XXXXXX";
    if (!OK(mkdtemp(dir) != NULL, "temporary folder")) return;
    struct sw_ckpt_state st;
    memset(&st, 0, sizeof st);
    st.global_step = 7;
    st.optimizer_steps = 4;
    st.max_steps = 10;
    snprintf(st.tuner_type, sizeof st.tuner_type, "full");
    snprintf(st.lr_scheduler_type, sizeof st.lr_scheduler_type, "cosine");
    char *plain = sw_ckpt_training_state_json(&st);
    OK(plain && !strstr(plain, "loss_scaler"), "no scaler: no loss_scaler key");
    st.has_loss_scaler = 1;
    st.loss_scale = 0x1p37;
    st.loss_scale_growth_tracker = 123;
    st.loss_scale_skipped = 3;
    char *text = sw_ckpt_training_state_json(&st);
    char *trainer = sw_ckpt_trainer_state_json(&st);
    char *rng = sw_ckpt_rng_state_json(&st);
    OK(text && strstr(text, "\"loss_scaler\""), "with a scaler: a loss_scaler object");
    const char *names[3] = {"training_state.json", "trainer_state.json", "rng_state.json"};
    char *texts[3] = {text, trainer, rng};
    int wrote = 1;
    for (int i = 0; i < 3; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "w");
        wrote &= f && texts[i] && fputs(texts[i], f) >= 0;
        if (f) fclose(f);
    }
    struct sw_ckpt_state back;
    int rc = wrote ? sw_ckpt_state_load(dir, &back) : -1;
    OK(rc == 0 && back.has_loss_scaler && back.loss_scale == 0x1p37 &&
           back.loss_scale_growth_tracker == 123 && back.loss_scale_skipped == 3,
       "scale, growth tracker and skipped count read back exactly (%s)", rc ? sw_err_msg() : "ok");
    if (rc == 0) sw_ckpt_state_release(&back);
    /* A file without the key (any run before this one, or bf16/fp32) loads without a scaler. */
    char path[128];
    snprintf(path, sizeof path, "%s/training_state.json", dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(plain, f);
        fclose(f);
    }
    rc = sw_ckpt_state_load(dir, &back);
    OK(rc == 0 && !back.has_loss_scaler, "no loss_scaler key: no scaler state (%s)",
       rc ? sw_err_msg() : "ok");
    if (rc == 0) sw_ckpt_state_release(&back);
    free(plain), free(text), free(trainer), free(rng);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) DIAG("could not remove %s", dir);
}

int main(void) {
    test_dynamic();
    test_fixed();
    test_parse();
    test_ckpt_state();
    return tap_done();
}
