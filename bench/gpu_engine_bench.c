/* gpu_engine_bench — the inference engine's throughput and latency, measured in-process (no
 * HTTP): N requests of random prompt ids, all submitted at once to an engine limited to
 * --concurrency running sequences (max_num_seqs), each generating exactly --max-tokens ids
 * (ignore_eos, greedy). Reports what `vllm bench serve` reports at fixed concurrency: request
 * throughput, output tokens/s, TTFT (submit → first token) and TPOT (mean time per output token
 * after the first) as mean / median / p99. With --batch1-tokens it also times one request alone
 * (batch-1 decode tokens/s).
 *
 *   gpu_engine_bench --model DIR [--tokenizer DIR] [--device cpu|cuda] [--requests 64]
 *       [--concurrency 16] [--prompt-len 128] [--max-tokens 128] [--block-size 16]
 *       [--kv-gib 8] [--batched-tokens 4096] [--batch1-tokens 0] [--adapters N --adapter DIR]
 *
 * With --adapters N and --adapter DIR the requests cycle over N copies of the adapter (names
 * a0..a{N-1}) plus the base, to measure grouped per-adapter LoRA batches.
 * Output: one JSON object on stdout. Built with the CUDA benchmarks (make CUDA=1); it runs on
 * either device. */
#include "sw_engine.h"
#include "sw_err.h"
#include "sw_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct req {
    double t_submit, t_first, t_last;
    int n, done;
};

static int cb(void *user, const struct sw_engine_event *ev) {
    struct req *r = user;
    if (ev->token >= 0) {
        double t = now_s();
        if (r->n == 0) r->t_first = t;
        r->t_last = t;
        r->n++;
    }
    if (ev->request_done) r->done = 1;
    return 0;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void stats(double *v, int n, double *mean, double *med, double *p99) {
    qsort(v, (size_t)n, sizeof(double), cmp_d);
    double s = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    *mean = n ? s / n : 0;
    *med = n ? (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2])) : 0;
    int k = (int)(0.99 * n + 0.999999) - 1; /* nearest-rank percentile */
    *p99 = n ? v[k < 0 ? 0 : k] : 0;
}

int main(int argc, char **argv) {
    const char *model = NULL, *tok = NULL, *device = "cuda", *adapter = NULL;
    int requests = 64, conc = 16, plen = 128, maxt = 128, bs = 16, nad = 0;
    int64_t batched = 4096, b1 = 0;
    double kv_gib = 8;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--model"))
            model = v;
        else if (!strcmp(k, "--tokenizer"))
            tok = v;
        else if (!strcmp(k, "--device"))
            device = v;
        else if (!strcmp(k, "--requests"))
            requests = atoi(v);
        else if (!strcmp(k, "--concurrency"))
            conc = atoi(v);
        else if (!strcmp(k, "--prompt-len"))
            plen = atoi(v);
        else if (!strcmp(k, "--max-tokens"))
            maxt = atoi(v);
        else if (!strcmp(k, "--block-size"))
            bs = atoi(v);
        else if (!strcmp(k, "--kv-gib"))
            kv_gib = atof(v);
        else if (!strcmp(k, "--batched-tokens"))
            batched = atoll(v);
        else if (!strcmp(k, "--batch1-tokens"))
            b1 = atoll(v);
        else if (!strcmp(k, "--adapters"))
            nad = atoi(v);
        else if (!strcmp(k, "--adapter"))
            adapter = v;
        else {
            fprintf(stderr, "gpu_engine_bench: unknown option %s\n", k);
            return 2;
        }
    }
    if (!model || requests < 1 || conc < 1 || plen < 1 || maxt < 1 || (nad > 0 && !adapter)) {
        fprintf(stderr, "usage: gpu_engine_bench --model DIR [options] (see the source)\n");
        return 2;
    }
    sw_log_init("gpu_engine_bench");
    struct sw_engine_opts o;
    sw_engine_opts_init(&o);
    o.model_dir = model;
    o.tokenizer = tok;
    o.device = strcmp(device, "cpu") == 0 ? SW_DEVICE_CPU : SW_DEVICE_CUDA;
    o.max_num_seqs = conc;
    o.block_size = bs;
    o.kv_cache_bytes = (int64_t)(kv_gib * 1073741824.0);
    o.max_num_batched_tokens = batched;
    o.max_model_len = plen + maxt + 1;
    o.enable_prefix_caching = 0; /* random prompts: nothing to share; measure the compute */
    struct sw_engine_adapter ads[16];
    char names[16][8];
    for (int i = 0; i < nad && i < 16; i++) {
        snprintf(names[i], sizeof names[i], "a%d", i);
        ads[i] = (struct sw_engine_adapter){names[i], adapter};
    }
    o.adapters = ads;
    o.n_adapters = nad < 16 ? nad : 16;
    double t0 = now_s();
    struct sw_engine *e;
    if (sw_engine_open(&o, &e) < 0) {
        fprintf(stderr, "gpu_engine_bench: %s\n", sw_err_msg());
        return 1;
    }
    double t_open = now_s() - t0;
    int64_t V = sw_engine_model_config(e)->vocab_size;
    struct sw_sampling_params p;
    sw_sampling_params_init(&p);
    p.temperature = 0;
    p.max_tokens = maxt;
    p.ignore_eos = 1;
    int32_t *ids = malloc((size_t)plen * sizeof(int32_t));
    uint64_t x = 88172645463325252ull;
    /* warm-up (kernels, arena growth) */
    {
        struct req w = {0};
        for (int k = 0; k < plen; k++)
            ids[k] = (int32_t)(k % V);
        struct sw_sampling_params q = p;
        q.max_tokens = 4;
        sw_engine_submit(e, ids, plen, &q, NULL, cb, &w, NULL);
        while (!w.done && sw_engine_step(e) >= 0) {
        }
    }
    double b1_tps = 0;
    if (b1 > 0) {
        struct req r = {0};
        struct sw_sampling_params q = p;
        q.max_tokens = b1;
        sw_engine_submit(e, ids, plen, &q, NULL, cb, &r, NULL);
        while (!r.done && sw_engine_step(e) >= 0) {
        }
        b1_tps = r.n > 1 ? (r.n - 1) / (r.t_last - r.t_first) : 0;
    }
    struct req *rs = calloc((size_t)requests, sizeof(*rs));
    double start = now_s();
    for (int i = 0; i < requests; i++) {
        for (int k = 0; k < plen; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            ids[k] = (int32_t)(x % (uint64_t)V);
        }
        rs[i].t_submit = now_s();
        const char *ad = nad > 0 && i % (nad + 1) < nad ? names[i % (nad + 1)] : NULL;
        if (sw_engine_submit(e, ids, plen, &p, ad, cb, &rs[i], NULL) < 0) {
            fprintf(stderr, "gpu_engine_bench: submit: %s\n", sw_err_msg());
            return 1;
        }
    }
    for (;;) {
        int left = sw_engine_step(e);
        if (left <= 0) break;
    }
    double wall = now_s() - start;
    double *ttft = malloc((size_t)requests * sizeof(double)),
           *tpot = malloc((size_t)requests * sizeof(double));
    int64_t out = 0;
    for (int i = 0; i < requests; i++) {
        out += rs[i].n;
        ttft[i] = (rs[i].t_first - rs[i].t_submit) * 1e3;
        tpot[i] = rs[i].n > 1 ? (rs[i].t_last - rs[i].t_first) * 1e3 / (rs[i].n - 1) : 0;
    }
    double tm, tmed, t99, pm, pmed, p99;
    stats(ttft, requests, &tm, &tmed, &t99);
    stats(tpot, requests, &pm, &pmed, &p99);
    struct sw_engine_stats st;
    sw_engine_stats(e, &st);
    printf(
        "{\"device\":\"%s\",\"requests\":%d,\"concurrency\":%d,\"prompt_len\":%d,"
        "\"max_tokens\":%d,\"adapters\":%d,\"open_s\":%.3f,\"wall_s\":%.3f,"
        "\"req_per_s\":%.3f,\"output_tok_per_s\":%.1f,\"total_tok_per_s\":%.1f,"
        "\"ttft_ms\":{\"mean\":%.2f,\"median\":%.2f,\"p99\":%.2f},"
        "\"tpot_ms\":{\"mean\":%.3f,\"median\":%.3f,\"p99\":%.3f},\"batch1_decode_tok_per_s\":%.1f,"
        "\"steps\":%lld,\"preemptions\":%lld,\"kv_blocks\":%lld}\n",
        device, requests, conc, plen, maxt, nad, t_open, wall, requests / wall, out / wall,
        (out + (double)requests * plen) / wall, tm, tmed, t99, pm, pmed, p99, b1_tps,
        (long long)st.steps, (long long)st.preemptions, (long long)st.kv_blocks_total);
    free(ids), free(rs), free(ttft), free(tpot);
    sw_engine_close(e);
    return 0;
}
