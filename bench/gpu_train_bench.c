/* gpu_train_bench — full-parameter training throughput of lib/sw_model on the CUDA backend:
 * a Qwen2.5-0.5B-shaped model (hidden 896, 24 layers, 14 heads, 2 KV heads, intermediate 4864,
 * vocab 151936, tied embeddings, q/k/v biases) from random init, batches of B sequences of T
 * tokens (random ids, labels = ids), each step = zero_grad + forward + backward + AdamW over every
 * parameter on the device (the backend's adamw). Prints, per GEMM precision: median step time,
 * tokens/s, the forward / backward / optimizer split, peak device memory and MFU, then (with
 * --profile) the per-op CUDA-event breakdown of one more step.
 *
 *   gpu_train_bench [--layers 24] [--hidden 896] [--heads 14] [--kv-heads 2] [--inter 4864]
 *                   [--vocab 151936] [--batch 8] [--seq 1024] [--steps 8] [--warmup 2]
 *                   [--precision bf16[,tf32,...]] [--profile]
 *
 * MFU convention: FLOPs per token = 6·(matmul parameters, LM head included) + 6·L·Hq·D·T
 * (causal attention, forward + backward, half the T×T scores), over 989 TFLOP/s (H100 SXM dense
 * bf16) — the same count for every precision, so fp32/tf32 rows read as "fraction of bf16 peak".
 * Build: make CUDA=1 B=build/cuda (→ build/cuda/bench/gpu_train_bench); run on the GPU machine
 * (bench/gpu_train_bench.sh). */
#include "sw_err.h"
#include "sw_kernels.h"
#include "sw_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bench_opts {
    int64_t layers, hidden, heads, kv_heads, inter, vocab, batch, seq;
    int steps, warmup, profile;
    char precision[64];
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct bench_state {
    struct sw_backend *be;
    struct sw_model *m;
    float **mom1, **mom2; /* AdamW moments per parameter (device) */
    int64_t adam_step;
    struct sw_batch batch;
};

static int optimizer_step(struct bench_state *s) {
    s->adam_step++;
    for (int i = 0; i < sw_model_nparams(s->m); i++) {
        struct sw_param *p = sw_model_param(s->m, i);
        if (!p->trainable) continue;
        int64_t n = p->value.ndim == 2 ? p->value.shape[0] * p->value.shape[1] : p->value.shape[0];
        SW_TRY(s->be->adamw(s->be, p->value.data, p->grad.data, s->mom1[i], s->mom2[i], n, 1e-4,
                            0.9, 0.999, 1e-8, 0.1, p->decay, s->adam_step));
    }
    return 0;
}

/* One training step; t_* receive the phase times (s) when non-NULL (phases synchronised). */
static int train_step(struct bench_state *s, double *t_fwd, double *t_bwd, double *t_opt,
                      double *loss_out) {
    double t0 = now_s();
    struct sw_loss l;
    SW_TRY(sw_model_zero_grad(s->m));
    SW_TRY(sw_model_forward(s->m, &s->batch, &l)); /* ends with a loss download: synchronised */
    double t1 = now_s();
    SW_TRY(sw_model_backward(s->m, 1.0f / (float)l.count));
    if (t_bwd) SW_TRY(s->be->sync(s->be));
    double t2 = now_s();
    SW_TRY(optimizer_step(s));
    SW_TRY(s->be->sync(s->be));
    double t3 = now_s();
    if (t_fwd) *t_fwd = t1 - t0;
    if (t_bwd) *t_bwd = t2 - t1;
    if (t_opt) *t_opt = t3 - t2;
    if (loss_out) *loss_out = l.sum / (double)l.count;
    return 0;
}

static int parse_args(int argc, char **argv, struct bench_opts *o) {
    *o = (struct bench_opts){24, 896, 14, 2, 4864, 151936, 8, 1024, 8, 2, 0, "bf16"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t *dst = !strcmp(a, "--layers")     ? &o->layers
                       : !strcmp(a, "--hidden")   ? &o->hidden
                       : !strcmp(a, "--heads")    ? &o->heads
                       : !strcmp(a, "--kv-heads") ? &o->kv_heads
                       : !strcmp(a, "--inter")    ? &o->inter
                       : !strcmp(a, "--vocab")    ? &o->vocab
                       : !strcmp(a, "--batch")    ? &o->batch
                       : !strcmp(a, "--seq")      ? &o->seq
                                                  : NULL;
        if (!strcmp(a, "--profile")) {
            o->profile = 1;
        } else if (dst && v) {
            *dst = atoll(v), i++;
        } else if (!strcmp(a, "--steps") && v) {
            o->steps = atoi(v), i++;
        } else if (!strcmp(a, "--warmup") && v) {
            o->warmup = atoi(v), i++;
        } else if (!strcmp(a, "--precision") && v) {
            snprintf(o->precision, sizeof o->precision, "%s", v), i++;
        } else {
            return sw_err_set(SW_EUSAGE, "gpu_train_bench: unknown or incomplete option '%s'", a);
        }
    }
    if (o->steps < 1 || o->batch < 1 || o->seq < 2 || o->heads % o->kv_heads)
        return sw_err_set(SW_EUSAGE, "gpu_train_bench: bad sizes");
    return 0;
}

static int run(const struct bench_opts *o) {
    struct sw_model_config c;
    memset(&c, 0, sizeof c);
    c.arch = SW_ARCH_QWEN2;
    strcpy(c.model_type, "qwen2");
    strcpy(c.hidden_act, "silu");
    c.vocab_size = o->vocab;
    c.hidden_size = o->hidden;
    c.intermediate_size = o->inter;
    c.num_hidden_layers = o->layers;
    c.num_attention_heads = o->heads;
    c.num_key_value_heads = o->kv_heads;
    c.head_dim = o->hidden / o->heads;
    c.max_position_embeddings = 32768;
    c.rms_norm_eps = 1e-6;
    c.rope_theta = 1e6;
    c.tie_word_embeddings = 1;
    c.attention_bias = 1;
    c.bos_token_id = -1;
    c.pad_token_id = -1;

    struct bench_state s = {0};
    struct sw_device_info info;
    SW_TRY(sw_backend_open(SW_DEVICE_CUDA, &s.be));
    int rc = s.be->device_info(s.be, &info);
    if (rc < 0) {
        sw_backend_close(s.be);
        return rc;
    }
    rc = sw_model_new(&c, s.be, &s.m);
    double t0 = now_s();
    if (rc == 0) rc = sw_model_init_random(s.m, 1234, 0.02f);
    if (rc == 0) rc = sw_model_zero_grad(s.m);
    int np = rc == 0 ? sw_model_nparams(s.m) : 0;
    s.mom1 = calloc((size_t)np + 1, sizeof(float *));
    s.mom2 = calloc((size_t)np + 1, sizeof(float *));
    for (int i = 0; rc == 0 && i < np; i++) {
        struct sw_param *p = sw_model_param(s.m, i);
        size_t bytes = (size_t)sw_tensor_numel(&p->value) * sizeof(float);
        if (!(s.mom1[i] = s.be->alloc(s.be, bytes)) || !(s.mom2[i] = s.be->alloc(s.be, bytes)))
            rc = SW_ENOMEM;
    }
    int64_t N = o->batch * o->seq;
    int32_t *ids = malloc((size_t)N * sizeof(int32_t));
    uint64_t st = 42;
    for (int64_t i = 0; ids && i < N; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((st >> 33) % (uint64_t)o->vocab);
    }
    s.batch = (struct sw_batch){.B = o->batch, .T = o->seq, .input_ids = ids, .labels = ids};
    int64_t nparam = sw_model_numel(s.m, 0);
    double D = (double)(o->hidden / o->heads);
    double flops_tok = 6.0 * (double)(nparam - o->hidden * (2 * o->layers + 1) -
                                      o->layers * (o->heads + 2 * o->kv_heads) * (int64_t)D) +
                       6.0 * (double)o->layers * (double)o->heads * D * (double)o->seq;
    printf("# device: %s (%d SMs, %.1f GiB)\n", info.name, info.compute_units,
           (double)info.total_bytes / (1 << 30));
    printf("# model: %lld params, %lld layers, hidden %lld, heads %lld/%lld, inter %lld, vocab "
           "%lld; batch %lld x %lld = %lld tokens/step; init %.1f s\n",
           (long long)nparam, (long long)o->layers, (long long)o->hidden, (long long)o->heads,
           (long long)o->kv_heads, (long long)o->inter, (long long)o->vocab, (long long)o->batch,
           (long long)o->seq, (long long)N, now_s() - t0);
    printf("# MFU: %.3f GFLOP/token over 989 TFLOP/s\n", flops_tok / 1e9);
    printf("%-6s %10s %9s %8s %8s %8s %9s %6s %8s\n", "prec", "tokens/s", "step_ms", "fwd_ms",
           "bwd_ms", "opt_ms", "peak_GiB", "MFU%", "loss");

    char list[64];
    snprintf(list, sizeof list, "%s", o->precision);
    for (char *tok = strtok(list, ","); rc == 0 && tok; tok = strtok(NULL, ",")) {
        enum sw_matmul_precision prec;
        rc = sw_matmul_precision_parse(tok, &prec);
        if (rc == 0) rc = s.be->set_precision(s.be, prec);
        double loss = 0;
        for (int i = 0; rc == 0 && i < o->warmup; i++)
            rc = train_step(&s, NULL, NULL, NULL, &loss);
        double *ts = calloc((size_t)o->steps, sizeof(double));
        for (int i = 0; rc == 0 && i < o->steps; i++) {
            double a = now_s();
            rc = train_step(&s, NULL, NULL, NULL, &loss);
            ts[i] = now_s() - a;
        }
        double tf = 0, tb = 0, to = 0;
        if (rc == 0) rc = train_step(&s, &tf, &tb, &to, &loss);
        if (rc == 0) {
            qsort(ts, (size_t)o->steps, sizeof(double), cmp_double);
            double med = ts[o->steps / 2];
            struct sw_mem_info mi = {0};
            if (s.be->mem_info(s.be, &mi) < 0) sw_err_clear();
            size_t peak = mi.peak;
            double tps = (double)N / med;
            printf("%-6s %10.0f %9.1f %8.1f %8.1f %8.1f %9.2f %6.1f %8.4f\n", tok, tps, med * 1e3,
                   tf * 1e3, tb * 1e3, to * 1e3, (double)peak / (1 << 30),
                   100.0 * tps * flops_tok / 989e12, loss);
            fflush(stdout);
        }
        free(ts);
        if (rc == 0 && o->profile) {
            printf("# per-op breakdown of one step (%s, CUDA events; ops synchronised only by the "
                   "stream)\n",
                   tok);
            rc = s.be->profile_enable(s.be, 1);
            if (rc == 0) rc = train_step(&s, NULL, NULL, NULL, &loss);
            if (rc == 0) rc = s.be->profile_enable(s.be, 0);
            if (rc == 0) rc = s.be->profile_report(s.be, stdout);
        }
    }
    printf("# scratch peak %.2f GiB\n", (double)sw_model_scratch_peak(s.m) / (1 << 30));
    for (int i = 0; i < np; i++) {
        s.be->free(s.be, s.mom1[i]);
        s.be->free(s.be, s.mom2[i]);
    }
    free(s.mom1), free(s.mom2), free(ids);
    sw_model_free(s.m);
    sw_backend_close(s.be);
    return rc;
}

int main(int argc, char **argv) {
    struct bench_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc == 0) rc = run(&o);
    if (rc < 0) fprintf(stderr, "gpu_train_bench: error: %s\n", sw_err_msg());
    return rc < 0 ? 1 : 0;
}
