/* test_cuda_train — sw-train's CUDA path (lib/sw_train*.c with the device-resident optimizer of
 * sw_train_device.c) against its CPU path, through sw_train_run with sw-train's own option
 * parser, on the tiny models of test/fixtures/models/ and their tiny-data streams:
 *
 *  - the device pieces (the backend's sumsq, scale and mem_info members): sumsq against
 *    sw_grad_norm's double sums (≤ 1e-12 relative; its total is the per-tensor sums added in
 *    order; bit-identical run to run; NaN/Inf found per tensor), scale against the host's
 *    float product (bit-exact);
 *  - full training (tiny-qwen2, random init, 12 steps of 2 × 4 packed samples, lr 3e-3,
 *    clipping at 1.0 active) and LoRA with dropout (tiny-llama base written by a CPU run, r 4,
 *    16 steps, lr 1e-2) from the same start on CPU and CUDA: the per-step loss and grad_norm of
 *    logging.jsonl agree — step 1 (same weights, fp32 GEMMs) ≤ 1e-5 relative; every step
 *    ≤ 1e-3 relative for the loss and 1e-2 for the grad norm (the runs drift apart through
 *    float32 rounding that AdamW's normalisation amplifies); in TF32 GEMM mode ≤ 1e-2 for the
 *    loss. Final weights: max |cpu − cuda| reported, bound 5e-2 (gross-error check);
 *  - resume on CUDA is exact: a run resumed from checkpoint-5 (full) / checkpoint-7 (LoRA with
 *    dropout) ends with byte-identical model / adapter and optimizer.safetensors;
 *  - gradient checkpointing on CUDA gives byte-identical checkpoints;
 *  - float16 (--torch_dtype float16, dynamic loss scaling): the full run's loss curve agrees
 *    with the CPU's float32 one (step 1 ≤ 1e-2, every step ≤ 3e-2 relative: 10-bit mantissa
 *    GEMM operands); logging.jsonl carries loss_scale and skipped_steps; a fixed --loss_scale
 *    1e38 overflows every step: all skipped, skipped_steps == steps, no AdamW step, weights
 *    bit-identical to the initial ones; dynamic from 2^40 skips a few steps (each halving the
 *    scale), then trains (loss down, scale ≤ 2^40, AdamW steps = steps − skipped); resuming it
 *    from a checkpoint inside the skipping phase ends byte-identical (weights, moments, both
 *    state files);
 *  - the scratch arena: scratch_reserve makes one chunk (contiguous allocations, not
 *    counted in scratch_peak), a step beyond it spills and is consolidated to what it asked
 *    for, an impossible reservation is SW_ENOMEM and leaves a working arena;
 *  - an over-sized model fails with SW_ENOMEM naming the weights and the sizes.
 *
 * Runs from the repository root on a GPU machine (make test-cuda). SW_CUDA_MATMUL is set per
 * run (fp32 unless stated; --torch_dtype auto then takes it). */
#include "sw_config.h"
#include "sw_err.h"
#include "sw_kernels.h"
#include "sw_optim.h"
#include "sw_safetensors.h"
#include "sw_train.h"
#include "train.h"
#include "tap.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIX "test/fixtures/models/"
#define MAXSTEPS 64

static char tmp[256];

/* ---- device pieces --------------------------------------------------------------------- */

static void test_sumsq_scale(void) {
    struct sw_backend *be = NULL;
    int rc = sw_backend_open(SW_DEVICE_CUDA, &be);
    if (!OK(rc == 0, "open the CUDA backend (%s)", rc ? sw_err_msg() : "ok")) return;
    enum { K = 6 };
    const int64_t sizes[K] = {0, 1, 1000, 33333, (1 << 20) + 7, 5000000};
    float *h[K], *d[K];
    struct sw_optim_param op[K];
    uint64_t s = 12345;
    for (int i = 0; i < K; i++) {
        size_t bytes = (size_t)(sizes[i] ? sizes[i] : 1) * sizeof(float);
        h[i] = malloc(bytes);
        d[i] = be->alloc(be, bytes);
        for (int64_t j = 0; j < sizes[i]; j++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            h[i][j] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5) * (float)(i + 1);
        }
        be->upload(be, d[i], h[i], (size_t)sizes[i] * sizeof(float));
        op[i] = (struct sw_optim_param){.name = "p", .data = h[i], .grad = h[i], .numel = sizes[i]};
    }
    double out[K], out2[K];
    const float *dp[K];
    for (int i = 0; i < K; i++)
        dp[i] = d[i];
    double be_total = -1;
    rc = be->sumsq(be, dp, sizes, K, out, &be_total);
    int rc2 = be->sumsq(be, dp, sizes, K, out2, NULL);
    double total = 0;
    for (int i = 0; i < K; i++)
        total += out[i];
    double ref = sw_grad_norm(op, K), got = sqrt(total);
    OK(rc == 0 && rc2 == 0 && fabs(got - ref) <= 1e-12 * ref,
       "sumsq: device norm %.17g vs sw_grad_norm %.17g (rel %.2g ≤ 1e-12)", got, ref,
       fabs(got - ref) / ref);
    OK(be_total == total, "sumsq: total is the per-tensor sums added in order");
    OK(memcmp(out, out2, sizeof out) == 0, "sumsq: bit-identical run to run");
    int exact_small = out[0] == 0.0 && out[1] == (double)h[1][0] * h[1][0];
    OK(exact_small, "sumsq: empty tensor 0, one element its square");
    /* A NaN in tensor 3 and an Inf in tensor 5: exactly those sums are non-finite. */
    float bad[2] = {NAN, INFINITY};
    be->upload(be, d[3] + 17, &bad[0], 4);
    be->upload(be, d[5] + sizes[5] - 1, &bad[1], 4);
    rc = be->sumsq(be, dp, sizes, K, out, NULL);
    OK(rc == 0 && isfinite(out[0]) && isfinite(out[2]) && isnan(out[3]) && isfinite(out[4]) &&
           isinf(out[5]),
       "sumsq: NaN / Inf elements give non-finite sums of their own tensors only");
    /* Clipping scale: the host's float product, bit for bit. */
    float coef = 0.3183099f;
    rc = be->scale(be, d[4], sizes[4], coef);
    float *back = malloc((size_t)sizes[4] * sizeof(float));
    if (rc == 0) rc = be->download(be, back, d[4], (size_t)sizes[4] * sizeof(float));
    int same = rc == 0;
    for (int64_t j = 0; same && j < sizes[4]; j++)
        same = back[j] == h[4][j] * coef;
    OK(same, "scale: x·f on the device equals the host's float product for %lld elements",
       (long long)sizes[4]);
    struct sw_mem_info mi = {0};
    rc = be->mem_info(be, &mi);
    OK(rc == 0 && mi.free > 0 && mi.free <= mi.total && mi.in_use > 0 && mi.peak >= mi.in_use,
       "mem_info: %zu free of %zu, %zu in use, peak %zu", mi.free, mi.total, mi.in_use, mi.peak);
    free(back);
    for (int i = 0; i < K; i++) {
        free(h[i]);
        be->free(be, d[i]);
    }
    sw_backend_close(be);
}

/* The scratch arena's reservation (what sw-train does with the planned activations). */
static void test_scratch_reserve(void) {
    struct sw_backend *be = NULL;
    int rc = sw_backend_open(SW_DEVICE_CUDA, &be);
    if (!OK(rc == 0, "open the CUDA backend (%s)", rc ? sw_err_msg() : "ok")) return;
    const size_t MiB = (size_t)1 << 20;
    struct sw_mem_info m0 = {0}, m1 = {0};
    be->mem_info(be, &m0);
    rc = be->scratch_reserve(be, 300 * MiB);
    be->mem_info(be, &m1);
    size_t used0 = m0.in_use, used1 = m1.in_use;
    OK(rc == 0 && used1 - used0 >= 300 * MiB && be->scratch_peak(be) == 0,
       "reserve 300 MiB: device use +%zu MiB, scratch_peak still 0 (%s)", (used1 - used0) / MiB,
       rc ? sw_err_msg() : "ok");
    char *a = be->scratch_alloc(be, 100 * MiB), *b = be->scratch_alloc(be, 100 * MiB),
         *c = be->scratch_alloc(be, 100 * MiB);
    OK(a && b == a + 100 * MiB && c == b + 100 * MiB && be->memset0(be, c, 100 * MiB) == 0 &&
           be->sync(be) == 0,
       "three 100 MiB blocks are contiguous in the reserved chunk");
    char *d = be->scratch_alloc(be, 50 * MiB); /* spills into a new chunk */
    OK(d && be->memset0(be, d, 50 * MiB) == 0 && be->sync(be) == 0,
       "a step beyond the reservation spills into a new chunk");
    be->scratch_reset(be); /* consolidated to what the step asked for: 350 MiB */
    a = be->scratch_alloc(be, 350 * MiB);
    OK(a && be->memset0(be, a, 350 * MiB) == 0 && be->sync(be) == 0,
       "after reset the same 350 MiB fit one consolidated chunk");
    be->scratch_reset(be);
    rc = be->scratch_reserve(be, (size_t)1 << 50);
    OK(rc == SW_ENOMEM, "reserving 1 PiB is SW_ENOMEM: %s", sw_err_msg());
    a = be->scratch_alloc(be, 10 * MiB);
    OK(a && be->memset0(be, a, 10 * MiB) == 0 && be->sync(be) == 0,
       "the arena works again after a failed reservation");
    sw_backend_close(be);
}

/* ---- runs ------------------------------------------------------------------------------- */

/* sw-train with the given options (space-separated, no quoting), as the tool would parse them. */
static int train(const char *matmul, const char *fmt, ...) {
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    char *argv[96];
    int argc = 0;
    argv[argc++] = "sw-train";
    /* Fixed checkpoint paths (no vN-YYYYMMDD-HHMMSS run folder; every run has its own folder). */
    argv[argc++] = "--add_version";
    argv[argc++] = "false";
    for (char *t = strtok(line, " "); t && argc < 95; t = strtok(NULL, " "))
        argv[argc++] = t;
    argv[argc] = NULL;
    setenv("SW_CUDA_MATMUL", matmul, 1);
    struct sw_train_opts o;
    char **pos = NULL;
    int npos = 0;
    int rc = sw_cli_parse(&sw_train_cli, &o, argc, argv, &pos, &npos);
    free(pos);
    if (rc != 0) return rc < 0 ? rc : SW_EUSAGE;
    o.option_table = sw_train_options;
    rc = sw_train_run(&o);
    sw_config_release(sw_train_options, &o);
    return rc;
}

struct curve {
    int n;
    int64_t step[MAXSTEPS];
    double loss[MAXSTEPS], norm[MAXSTEPS];
    double scale[MAXSTEPS];    /* loss_scale (float16 runs; NAN when absent) */
    int64_t skipped[MAXSTEPS]; /* skipped_steps (float16 runs; -1 when absent) */
};

static int read_curve(const char *dir, struct curve *c) {
    char path[512], line[4096];
    snprintf(path, sizeof path, "%s/%s/logging.jsonl", tmp, dir);
    memset(c, 0, sizeof *c);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f) && c->n < MAXSTEPS) {
        json_t *j = json_loads(line, 0, NULL);
        json_t *l = j ? json_object_get(j, "loss") : NULL,
               *g = j ? json_object_get(j, "grad_norm") : NULL;
        if (l && g) {
            json_t *sc = json_object_get(j, "loss_scale");
            json_t *sk = json_object_get(j, "skipped_steps");
            c->step[c->n] = json_integer_value(json_object_get(j, "step"));
            c->loss[c->n] = json_number_value(l);
            c->norm[c->n] = json_is_number(g) ? json_number_value(g) : NAN;
            c->scale[c->n] = sc ? json_number_value(sc) : NAN;
            c->skipped[c->n] = sk ? json_integer_value(sk) : -1;
            c->n++;
        }
        json_decref(j);
    }
    fclose(f);
    return 0;
}

static double rel(double a, double b) {
    return fabs(a - b) / fmax(fabs(b), 1e-12);
}

/* Loss curves of two runs: same steps; step 1 within tol1, every step within tol (loss) and
 * ntol (grad norm). */
static void compare_curves(const char *what, const char *a, const char *b, double tol1, double tol,
                           double ntol) {
    struct curve x = {0}, y = {0};
    int ra = read_curve(a, &x), rb = read_curve(b, &y);
    if (!OK(ra == 0 && rb == 0 && x.n > 1 && x.n == y.n,
            "%s: both runs logged every step (%d and %d lines)", what, x.n, y.n))
        return;
    double wl = 0, wn = 0;
    int steps_ok = 1;
    for (int i = 0; i < x.n; i++) {
        steps_ok &= x.step[i] == y.step[i];
        if (rel(y.loss[i], x.loss[i]) > wl) wl = rel(y.loss[i], x.loss[i]);
        if (rel(y.norm[i], x.norm[i]) > wn) wn = rel(y.norm[i], x.norm[i]);
    }
    double l1 = rel(y.loss[0], x.loss[0]), n1 = rel(y.norm[0], x.norm[0]);
    OK(steps_ok && l1 <= tol1 && n1 <= tol1,
       "%s: step 1 loss %.7f vs %.7f (rel %.2g), grad_norm %.6g vs %.6g (rel %.2g), ≤ %g", what,
       y.loss[0], x.loss[0], l1, y.norm[0], x.norm[0], n1, tol1);
    OK(wl <= tol && wn <= ntol,
       "%s: %d steps, worst loss rel %.2g ≤ %g, worst grad_norm rel %.2g ≤ %g; last loss %.5f vs "
       "%.5f (first %.5f)",
       what, x.n, wl, tol, wn, ntol, y.loss[x.n - 1], x.loss[x.n - 1], x.loss[0]);
}

/* Max |a − b| over every tensor of two safetensors files (same names and shapes). */
static double weights_diff(const char *fa, const char *fb) {
    char pa[512], pb[512];
    snprintf(pa, sizeof pa, "%s/%s", tmp, fa);
    snprintf(pb, sizeof pb, "%s/%s", tmp, fb);
    struct sw_st_file *a = NULL, *b = NULL;
    double worst = -1;
    if (sw_st_open(pa, &a) == 0 && sw_st_open(pb, &b) == 0 && sw_st_count(a) == sw_st_count(b)) {
        worst = 0;
        for (int i = 0; i < sw_st_count(a); i++) {
            const struct sw_st_entry *ea = sw_st_get(a, i), *eb = sw_st_find(b, ea->name);
            if (!eb || eb->nbytes != ea->nbytes || ea->dtype != SW_DTYPE_F32) return -1;
            const float *x = ea->data, *y = eb->data;
            for (size_t j = 0; j < ea->nbytes / 4; j++)
                if (fabs((double)x[j] - y[j]) > worst || isnan(y[j]))
                    worst = isnan(y[j]) ? INFINITY : fabs((double)x[j] - y[j]);
        }
    }
    sw_st_close(a);
    sw_st_close(b);
    return worst;
}

static int same_bytes(const char *fa, const char *fb) {
    char pa[512], pb[512];
    snprintf(pa, sizeof pa, "%s/%s", tmp, fa);
    snprintf(pb, sizeof pb, "%s/%s", tmp, fb);
    FILE *a = fopen(pa, "rb"), *b = fopen(pb, "rb");
    int same = a && b, ca, cb;
    while (same && ((ca = getc(a)) != EOF) | ((cb = getc(b)) != EOF))
        same = ca == cb;
    if (a) fclose(a);
    if (b) fclose(b);
    return same;
}

static void test_full(void) {
    const char *args = "--init_from_config " FIX "tiny-qwen2/config.json --tuner_type full "
                       "--dataset " FIX "tiny-data/train.sws --num_train_epochs 2 "
                       "--per_device_train_batch_size 4 --gradient_accumulation_steps 2 "
                       "--learning_rate 3e-3 --logging_steps 1 --save_steps 5 --output_dir";
    int rc = train("fp32", "%s %s/cpu_full --device cpu", args, tmp);
    OK(rc == 0, "full: CPU run (%s)", rc ? sw_err_msg() : "ok");
    rc = train("fp32", "%s %s/gpu_full --device cuda", args, tmp);
    if (!OK(rc == 0, "full: CUDA run (%s)", rc ? sw_err_msg() : "ok")) return;
    compare_curves("full fp32", "cpu_full", "gpu_full", 1e-5, 1e-3, 1e-2);
    double w = weights_diff("cpu_full/checkpoint-12/model.safetensors",
                            "gpu_full/checkpoint-12/model.safetensors");
    OK(w >= 0 && w <= 5e-2, "full: final weights max |cpu − cuda| = %.3g (≤ 5e-2)", w);

    rc = train("fp32",
               "%s %s/gpu_resume --device cuda --resume_from_checkpoint %s/gpu_full/checkpoint-5",
               args, tmp, tmp);
    OK(rc == 0 &&
           same_bytes("gpu_full/checkpoint-12/model.safetensors",
                      "gpu_resume/checkpoint-12/model.safetensors") &&
           same_bytes("gpu_full/checkpoint-12/optimizer.safetensors",
                      "gpu_resume/checkpoint-12/optimizer.safetensors") &&
           same_bytes("gpu_full/checkpoint-12/trainer_state.json",
                      "gpu_resume/checkpoint-12/trainer_state.json"),
       "full: CUDA resume from checkpoint-5 ends byte-identical (model, optimizer, state) (%s)",
       rc ? sw_err_msg() : "ok");

    rc = train("fp32", "%s %s/gpu_ckpt --device cuda --gradient_checkpointing true", args, tmp);
    OK(rc == 0 &&
           same_bytes("gpu_full/checkpoint-12/model.safetensors",
                      "gpu_ckpt/checkpoint-12/model.safetensors") &&
           same_bytes("gpu_full/checkpoint-12/optimizer.safetensors",
                      "gpu_ckpt/checkpoint-12/optimizer.safetensors"),
       "full: gradient checkpointing on CUDA gives byte-identical checkpoints (%s)",
       rc ? sw_err_msg() : "ok");
    if (rc == 0) compare_curves("full ckpt vs plain (CUDA)", "gpu_full", "gpu_ckpt", 0, 0, 0);

    /* The CPU resumes what CUDA saved (same files): the run finishes. */
    rc = train("fp32",
               "%s %s/cpu_from_gpu --device cpu --resume_from_checkpoint %s/gpu_full/checkpoint-10",
               args, tmp, tmp);
    OK(rc == 0, "full: a CUDA checkpoint resumes on the CPU (%s)", rc ? sw_err_msg() : "ok");

    rc = train("tf32", "%s %s/gpu_tf32 --device cuda", args, tmp);
    if (OK(rc == 0, "full: CUDA run with TF32 GEMMs (%s)", rc ? sw_err_msg() : "ok"))
        compare_curves("full tf32", "cpu_full", "gpu_tf32", 1e-2, 1e-2, 5e-2);

    /* bf16 mixed precision (the CUDA default) against the CPU's float32: bf16 tolerance (8-bit
     * mantissa operands, float32 accumulation and master weights). */
    rc = train("bf16", "%s %s/gpu_bf16 --device cuda --torch_dtype bfloat16", args, tmp);
    if (OK(rc == 0, "full: CUDA run in bf16 (%s)", rc ? sw_err_msg() : "ok"))
        compare_curves("full bf16 vs cpu fp32", "cpu_full", "gpu_bf16", 3e-2, 5e-2, 2e-1);
}

static void test_lora(void) {
    int rc = train("fp32",
                   "-q --init_from_config " FIX "tiny-llama/config.json --tuner_type full "
                   "--max_steps 0 --output_dir %s/base",
                   tmp);
    if (!OK(rc == 0, "lora: base model written (%s)", rc ? sw_err_msg() : "ok")) return;
    char args[1024];
    snprintf(args, sizeof args,
             "--model %s/base/checkpoint-0 --tuner_type lora --lora_rank 4 "
             "--lora_alpha 8 --lora_dropout 0.1 --dataset " FIX "tiny-data/train.sws "
             "--num_train_epochs 1 --per_device_train_batch_size 3 --learning_rate 1e-2 "
             "--logging_steps 1 --save_steps 7 --output_dir",
             tmp);
    rc = train("fp32", "%s %s/cpu_lora --device cpu", args, tmp);
    OK(rc == 0, "lora: CPU run (%s)", rc ? sw_err_msg() : "ok");
    rc = train("fp32", "%s %s/gpu_lora --device cuda", args, tmp);
    if (!OK(rc == 0, "lora: CUDA run (%s)", rc ? sw_err_msg() : "ok")) return;
    compare_curves("lora fp32 (dropout 0.1)", "cpu_lora", "gpu_lora", 1e-5, 1e-3, 1e-2);
    double w = weights_diff("cpu_lora/checkpoint-16/adapter_model.safetensors",
                            "gpu_lora/checkpoint-16/adapter_model.safetensors");
    OK(w >= 0 && w <= 5e-2, "lora: final adapter max |cpu − cuda| = %.3g (≤ 5e-2)", w);
    rc = train("fp32",
               "%s %s/gpu_lora_r --device cuda --resume_from_checkpoint %s/gpu_lora/checkpoint-7",
               args, tmp, tmp);
    OK(rc == 0 &&
           same_bytes("gpu_lora/checkpoint-16/adapter_model.safetensors",
                      "gpu_lora_r/checkpoint-16/adapter_model.safetensors") &&
           same_bytes("gpu_lora/checkpoint-16/optimizer.safetensors",
                      "gpu_lora_r/checkpoint-16/optimizer.safetensors"),
       "lora: CUDA resume from checkpoint-7 (dropout on) ends byte-identical (%s)",
       rc ? sw_err_msg() : "ok");
}

/* An integer of a checkpoint's training_state.json (key, or "loss_scaler.<key>"); -1 if absent. */
static int64_t state_int(const char *ckpt, const char *key) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/training_state.json", tmp, ckpt);
    json_t *j = json_load_file(path, 0, NULL), *o = j;
    if (o && strncmp(key, "loss_scaler.", 12) == 0) {
        o = json_object_get(o, "loss_scaler");
        key += 12;
    }
    json_t *v = o ? json_object_get(o, key) : NULL;
    int64_t r = json_is_integer(v) ? json_integer_value(v) : -1;
    json_decref(j);
    return r;
}

/* logging.jsonl writes 10 significant digits. */
static int near(double a, double b) {
    return fabs(a - b) <= 1e-9 * fabs(b);
}

/* float16 with loss scaling (GradScaler semantics): agreement with float32, forced overflows,
 * dynamic backoff, exact resume. */
static void test_fp16(void) {
    const char *args = "--init_from_config " FIX "tiny-qwen2/config.json --tuner_type full "
                       "--dataset " FIX "tiny-data/train.sws --num_train_epochs 2 "
                       "--per_device_train_batch_size 4 --gradient_accumulation_steps 2 "
                       "--learning_rate 3e-3 --logging_steps 1 --save_steps 5 --device cuda "
                       "--output_dir";
    /* The CPU float32 run of test_full (cpu_full) is the reference. */
    int rc = train("fp16", "%s %s/gpu_fp16 --torch_dtype float16", args, tmp);
    if (OK(rc == 0, "fp16: CUDA run, dynamic loss scale (%s)", rc ? sw_err_msg() : "ok")) {
        compare_curves("full fp16 vs cpu fp32", "cpu_full", "gpu_fp16", 1e-2, 3e-2, 1e-1);
        struct curve c;
        read_curve("gpu_fp16", &c);
        OK(c.n == 12 && near(c.scale[11], 65536.0) && c.skipped[11] == 0,
           "fp16: logging.jsonl has loss_scale %g and skipped_steps %lld (no overflow here)",
           c.n ? c.scale[c.n - 1] : NAN, (long long)(c.n ? c.skipped[c.n - 1] : -1));
        OK(state_int("gpu_fp16/checkpoint-12", "optimizer_steps") == 12 &&
               state_int("gpu_fp16/checkpoint-12", "loss_scaler.skipped_steps") == 0 &&
               state_int("gpu_fp16/checkpoint-12", "loss_scaler.growth_tracker") == 12,
           "fp16: training_state.json holds the scaler (growth_tracker 12, skipped 0)");
    }
    /* A scale that overflows every step: nothing trains, every step is counted as skipped. */
    rc = train("fp32",
               "-q --init_from_config " FIX "tiny-qwen2/config.json --tuner_type full "
               "--max_steps 0 --device cuda --output_dir %s/init",
               tmp);
    rc |= train("fp16", "%s %s/fp16_fixed --fp16 true --loss_scale 1e38", args, tmp);
    struct curve f;
    read_curve("fp16_fixed", &f);
    double w = weights_diff("init/checkpoint-0/model.safetensors",
                            "fp16_fixed/checkpoint-12/model.safetensors");
    OK(rc == 0 && f.n == 12 && f.skipped[11] == 12 && near(f.scale[11], 1e38f) && w == 0 &&
           state_int("fp16_fixed/checkpoint-12", "optimizer_steps") == 0,
       "fp16, fixed loss_scale 1e38: %lld of %d steps skipped, no AdamW step, weights unchanged "
       "(max diff %g) (%s)",
       (long long)(f.n ? f.skipped[f.n - 1] : -1), f.n, w, rc ? sw_err_msg() : "ok");
    /* Dynamic from 2^40: overflows back the scale off until the gradients fit, then it trains. */
    const char *dyn = "--init_from_config " FIX "tiny-qwen2/config.json --tuner_type full "
                      "--dataset " FIX "tiny-data/train.sws --max_steps 40 "
                      "--per_device_train_batch_size 4 --gradient_accumulation_steps 2 "
                      "--learning_rate 3e-3 --logging_steps 1 --save_steps 10 --device cuda "
                      "--torch_dtype fp16 --loss_scale dynamic:1099511627776 --output_dir";
    rc = train("fp32", "%s %s/fp16_dyn", dyn, tmp);
    struct curve d;
    read_curve("fp16_dyn", &d);
    int64_t sk = d.n ? d.skipped[d.n - 1] : -1;
    int halving = 1; /* each skipped step halves the scale */
    for (int i = 1; i < d.n; i++)
        if (d.skipped[i] == d.skipped[i - 1] + 1) halving &= near(d.scale[i], d.scale[i - 1] / 2);
    OK(rc == 0 && d.n == 40 && sk >= 1 && sk < 30 && halving && d.scale[d.n - 1] < 0x1p40 &&
           d.loss[d.n - 1] < d.loss[0] &&
           state_int("fp16_dyn/checkpoint-40", "optimizer_steps") == 40 - sk,
       "fp16, dynamic from 2^40: %lld steps skipped (scale halved each time, now %g), then "
       "trained: loss %.4f -> %.4f (%s)",
       (long long)sk, d.n ? d.scale[d.n - 1] : NAN, d.n ? d.loss[0] : NAN,
       d.n ? d.loss[d.n - 1] : NAN, rc ? sw_err_msg() : "ok");
    /* Resume from checkpoint-10 (inside or right after the skipping phase) is exact. */
    int64_t sk10 = state_int("fp16_dyn/checkpoint-10", "loss_scaler.skipped_steps");
    rc = train("fp32", "%s %s/fp16_dyn_r --resume_from_checkpoint %s/fp16_dyn/checkpoint-10", dyn,
               tmp, tmp);
    OK(rc == 0 &&
           same_bytes("fp16_dyn/checkpoint-40/model.safetensors",
                      "fp16_dyn_r/checkpoint-40/model.safetensors") &&
           same_bytes("fp16_dyn/checkpoint-40/optimizer.safetensors",
                      "fp16_dyn_r/checkpoint-40/optimizer.safetensors") &&
           same_bytes("fp16_dyn/checkpoint-40/trainer_state.json",
                      "fp16_dyn_r/checkpoint-40/trainer_state.json") &&
           same_bytes("fp16_dyn/checkpoint-40/training_state.json",
                      "fp16_dyn_r/checkpoint-40/training_state.json"),
       "fp16: resume from checkpoint-10 (%lld skipped by then) ends byte-identical (%s)",
       (long long)sk10, rc ? sw_err_msg() : "ok");
}

/* Weights far beyond the card: SW_ENOMEM naming the category and the sizes. */
static void test_oom(void) {
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s/huge.json", tmp);
    FILE *f = fopen(cfg, "w");
    if (!f) return;
    fputs("{\"model_type\": \"llama\", \"vocab_size\": 64, \"hidden_size\": 16384, "
          "\"intermediate_size\": 65536, \"num_hidden_layers\": 8, \"num_attention_heads\": 128, "
          "\"num_key_value_heads\": 128, \"max_position_embeddings\": 128, \"rms_norm_eps\": 1e-6, "
          "\"hidden_act\": \"silu\", \"tie_word_embeddings\": false}\n",
          f);
    fclose(f);
    int rc = train("fp32",
                   "--init_from_config %s --tuner_type full --dataset " FIX
                   "tiny-data/train.sws --max_steps 1 --device cuda --output_dir %s/huge",
                   cfg, tmp);
    const char *msg = sw_err_msg();
    OK(rc == SW_ENOMEM && strstr(msg, "out of device memory for the weights") &&
           strstr(msg, "GiB needed") && strstr(msg, "free of"),
       "a model beyond the card fails with SW_ENOMEM naming the weights and sizes: %s", msg);
}

int main(void) {
    snprintf(tmp, sizeof tmp, "/tmp/sw_cuda_train.XXXXXX");
    if (!OK(mkdtemp(tmp) != NULL, "temporary folder")) return tap_done();
    setenv("SW_PROGRESS", "0", 1);
    test_sumsq_scale();
    test_scratch_reserve();
    test_full();
    test_fp16();
    test_lora();
    test_oom();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) DIAG("could not remove %s", tmp);
    return tap_done();
}
