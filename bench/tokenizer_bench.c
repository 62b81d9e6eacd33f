/* tokenizer_bench — encode throughput of sw_tokenizer on a JSONL file of strings.
 *
 * Usage: tokenizer_bench TOKENIZER_DIR TEXTS.jsonl [REPEAT]
 * Each line of TEXTS.jsonl is one JSON string (one document). The texts are encoded REPEAT
 * times (default 3; the best time is kept) on one thread, then with 2, 4, ... threads up to
 * OMP_NUM_THREADS with OpenMP over lines (dynamic schedule, each thread with its own id
 * buffer). Prints MB/s of UTF-8 input by wall clock (and, for one thread, by the thread's CPU
 * time, which a busy machine disturbs less), tokens/s, the id count and a checksum so runs can
 * be compared with the Python `tokenizers` numbers printed by tokenizer_bench.sh. */
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sw_err.h"
#include "sw_tokenizer.h"

static double sw_clock(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
static double sw_now(void) {
    return sw_clock(CLOCK_MONOTONIC);
}
static double sw_cpu(void) {
    return sw_clock(CLOCK_THREAD_CPUTIME_ID);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s TOKENIZER_DIR TEXTS.jsonl [REPEAT]\n", argv[0]);
        return 2;
    }
    int repeat = argc > 3 ? atoi(argv[3]) : 3;
    double t0 = sw_now();
    struct sw_tokenizer *tok;
    if (sw_tokenizer_load(argv[1], &tok)) {
        fprintf(stderr, "tokenizer_bench: error: %s\n", sw_err_msg());
        return 1;
    }
    double t_load = sw_now() - t0;
    FILE *fp = fopen(argv[2], "r");
    if (!fp) {
        perror(argv[2]);
        return 1;
    }
    size_t n = 0, cap = 1024, bytes = 0;
    char **text = malloc(cap * sizeof(*text));
    size_t *len = malloc(cap * sizeof(*len));
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    while ((got = getline(&line, &lcap, fp)) > 0) {
        json_error_t e;
        json_t *j = json_loadb(line, (size_t)got, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
        if (!json_is_string(j)) {
            fprintf(stderr, "tokenizer_bench: %s:%zu: not a JSON string\n", argv[2], n + 1);
            return 1;
        }
        if (n == cap) {
            cap *= 2;
            text = realloc(text, cap * sizeof(*text));
            len = realloc(len, cap * sizeof(*len));
        }
        len[n] = json_string_length(j);
        text[n] = malloc(len[n] + 1);
        memcpy(text[n], json_string_value(j), len[n] + 1);
        bytes += len[n];
        n++;
        json_decref(j);
    }
    free(line);
    fclose(fp);

    /* single thread: best of `repeat` (the first pass also warms the word cache) */
    struct sw_tok_ids ids = {0};
    double best = 1e30, best_cpu = 1e30;
    size_t ntok = 0;
    unsigned long long sum = 0;
    for (int r = 0; r < repeat; r++) {
        ntok = 0;
        sum = 0;
        double a = sw_now(), ac = sw_cpu();
        for (size_t i = 0; i < n; i++) {
            ids.n = 0;
            if (sw_tokenizer_encode_append(tok, text[i], len[i], 0, &ids)) {
                fprintf(stderr, "tokenizer_bench: line %zu: %s\n", i + 1, sw_err_msg());
                return 1;
            }
            ntok += ids.n;
            for (size_t k = 0; k < ids.n; k++)
                sum += (unsigned)ids.ids[k] * (k + 1);
        }
        double t = sw_now() - a, tc = sw_cpu() - ac;
        if (t < best) best = t;
        if (tc < best_cpu) best_cpu = tc;
    }
    printf("sw     load %.2f s, %zu texts, %.2f MB, %zu tokens, checksum %llu\n", t_load, n,
           bytes / 1e6, ntok, sum);
    printf("sw     1 thread : %8.2f MB/s  %10.0f tokens/s  (%.2f MB/s of CPU time)\n",
           bytes / 1e6 / best, ntok / best, bytes / 1e6 / best_cpu);

    int maxt = omp_get_max_threads();
    for (int th = 2; th <= maxt; th *= 2) {
        double bt = 1e30;
        for (int r = 0; r < repeat; r++) {
            double a = sw_now();
            int fail = 0;
#pragma omp parallel num_threads(th) reduction(| : fail)
            {
                struct sw_tok_ids mine = {0};
#pragma omp for schedule(dynamic, 16)
                for (size_t i = 0; i < n; i++) {
                    mine.n = 0;
                    if (sw_tokenizer_encode_append(tok, text[i], len[i], 0, &mine)) fail = 1;
                }
                sw_tok_ids_release(&mine);
            }
            double t = sw_now() - a;
            if (fail) {
                fprintf(stderr, "tokenizer_bench: a threaded encode failed\n");
                return 1;
            }
            if (t < bt) bt = t;
        }
        printf("sw     %d threads: %8.2f MB/s  %10.0f tokens/s\n", th, bytes / 1e6 / bt, ntok / bt);
    }
    sw_tok_ids_release(&ids);
    for (size_t i = 0; i < n; i++)
        free(text[i]);
    free(text);
    free(len);
    sw_tokenizer_free(tok);
    return 0;
}
