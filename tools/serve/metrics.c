/* metrics.c — sw-serve's counters and histograms and their Prometheus text exposition
 * (GET /metrics, text format 0.0.4). Names follow vLLM's metrics where there is one (vllm:X
 * becomes sw_X: Prometheus reserves the colon for recording rules), so dashboards map one to
 * one. The engine's own counters (running/waiting sequences, KV blocks, prefix cache, tokens
 * computed) are read from sw_engine_stats at scrape time; the server's (HTTP statuses, request
 * latencies, per-request token counts) are kept here under one mutex. */
#include "serve.h"

#include "sw_err.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void hist_init(struct serve_hist *h, const double *le, int n) {
    memset(h, 0, sizeof *h);
    h->n = n < SERVE_HIST_MAX ? n : SERVE_HIST_MAX;
    memcpy(h->le, le, (size_t)h->n * sizeof *le);
}

void serve_metrics_init(struct serve_metrics *m) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    /* vLLM's bucket bounds (seconds) */
    static const double ttft[] = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25, 0.5,
                                  0.75,  1.0,   2.5,  5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0};
    static const double itl[] = {0.001, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075,
                                 0.1,   0.15,  0.2,  0.3,   0.4,  0.5,   0.75, 1.0,  2.5,  5.0};
    static const double e2e[] = {0.3,  0.5,  0.8,  1.0,  1.5,  2.0,   2.5,   5.0,   10.0,  15.0,
                                 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0};
    static const double len[] = {1,   2,    5,    10,   20,    50,    100,   200,
                                 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000};
    hist_init(&m->ttft, ttft, sizeof ttft / sizeof *ttft);
    hist_init(&m->itl, itl, sizeof itl / sizeof *itl);
    hist_init(&m->e2e, e2e, sizeof e2e / sizeof *e2e);
    hist_init(&m->prompt_len, len, sizeof len / sizeof *len);
    hist_init(&m->gen_len, len, sizeof len / sizeof *len);
}

void serve_metrics_release(struct serve_metrics *m) {
    pthread_mutex_destroy(&m->mu);
}

/* The caller holds m->mu. */
void serve_hist_observe(struct serve_metrics *m, struct serve_hist *h, double v) {
    (void)m;
    int b = 0;
    while (b < h->n && v > h->le[b])
        b++;
    h->bucket[b]++;
    h->count++;
    h->sum += v;
}

void serve_metrics_http(struct serve_metrics *m, const char *endpoint, int status) {
    pthread_mutex_lock(&m->mu);
    int i;
    for (i = 0; i < m->n_http; i++)
        if (m->http[i].status == status && strcmp(m->http[i].endpoint, endpoint) == 0) break;
    if (i == m->n_http && m->n_http < (int)(sizeof m->http / sizeof *m->http)) {
        snprintf(m->http[i].endpoint, sizeof m->http[i].endpoint, "%s", endpoint);
        m->http[i].status = status;
        m->n_http++;
    }
    if (i < m->n_http) m->http[i].n++;
    pthread_mutex_unlock(&m->mu);
}

static int head(struct sw_obuf *o, const char *name, const char *type, const char *help) {
    return sw_obuf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int hist(struct sw_obuf *o, const char *name, const char *help, const struct serve_hist *h,
                const char *labels) {
    SW_TRY(head(o, name, "histogram", help));
    uint64_t cum = 0;
    for (int i = 0; i < h->n; i++) {
        cum += h->bucket[i];
        SW_TRY(sw_obuf_printf(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels,
                              *labels ? "," : "", h->le[i], (unsigned long long)cum));
    }
    cum += h->bucket[h->n];
    SW_TRY(sw_obuf_printf(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, *labels ? "," : "",
                          (unsigned long long)cum));
    SW_TRY(sw_obuf_printf(o, "%s_sum{%s} %.9g\n", name, labels, h->sum));
    return sw_obuf_printf(o, "%s_count{%s} %llu\n", name, labels, (unsigned long long)h->count);
}

/* Resident set size now (not the peak): /proc/self/statm's second field × the page size. */
static long long rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    long long size = 0, res = 0;
    int ok = fscanf(f, "%lld %lld", &size, &res) == 2;
    fclose(f);
    return ok ? res * sysconf(_SC_PAGESIZE) : -1;
}

int serve_metrics_render(struct serve *s, struct sw_obuf *o) {
    struct sw_engine_stats es;
    memset(&es, 0, sizeof es);
    sw_engine_stats(s->engine, &es);
    struct serve_metrics *m = &s->metrics;
    int64_t jobs;
    pthread_mutex_lock(&s->jobs_mu);
    jobs = s->jobs;
    pthread_mutex_unlock(&s->jobs_mu);
    char lab[160];
    snprintf(lab, sizeof lab, "model_name=\"%s\"", serve_model_name(s));

    SW_TRY(head(o, "sw_num_requests_running", "gauge", "Sequences in the running batch."));
    SW_TRY(sw_obuf_printf(o, "sw_num_requests_running{%s} %d\n", lab, es.running));
    SW_TRY(head(o, "sw_num_requests_waiting", "gauge", "Sequences waiting to be scheduled."));
    SW_TRY(sw_obuf_printf(o, "sw_num_requests_waiting{%s} %d\n", lab, es.waiting));
    SW_TRY(head(o, "sw_server_requests_in_flight", "gauge",
                "API requests accepted and not yet answered (HTTP and ZeroMQ)."));
    SW_TRY(sw_obuf_printf(o, "sw_server_requests_in_flight{%s} %lld\n", lab, (long long)jobs));
    SW_TRY(head(o, "sw_kv_cache_usage_perc", "gauge",
                "Fraction of KV-cache blocks referenced by sequences (1 = full)."));
    SW_TRY(sw_obuf_printf(
        o, "sw_kv_cache_usage_perc{%s} %.6g\n", lab,
        es.kv_blocks_total ? (double)es.kv_blocks_used / (double)es.kv_blocks_total : 0.0));
    SW_TRY(head(o, "sw_kv_cache_blocks", "gauge",
                "KV-cache blocks by state (block_size tokens each)."));
    SW_TRY(sw_obuf_printf(o, "sw_kv_cache_blocks{%s,state=\"total\"} %lld\n", lab,
                          (long long)es.kv_blocks_total));
    SW_TRY(sw_obuf_printf(o, "sw_kv_cache_blocks{%s,state=\"used\"} %lld\n", lab,
                          (long long)es.kv_blocks_used));
    SW_TRY(sw_obuf_printf(o, "sw_kv_cache_blocks{%s,state=\"cached\"} %lld\n", lab,
                          (long long)es.kv_blocks_cached));
    SW_TRY(head(o, "sw_prefix_cache_queries_total", "counter",
                "Prompt tokens looked up in the prefix cache."));
    SW_TRY(sw_obuf_printf(o, "sw_prefix_cache_queries_total{%s} %lld\n", lab,
                          (long long)es.prefix_cache_queries));
    SW_TRY(head(o, "sw_prefix_cache_hits_total", "counter",
                "Prompt tokens found in the prefix cache."));
    SW_TRY(sw_obuf_printf(o, "sw_prefix_cache_hits_total{%s} %lld\n", lab,
                          (long long)es.prefix_cache_hits));
    SW_TRY(head(o, "sw_num_preemptions_total", "counter",
                "Sequences preempted (recomputed later) for lack of KV blocks."));
    SW_TRY(
        sw_obuf_printf(o, "sw_num_preemptions_total{%s} %lld\n", lab, (long long)es.preemptions));
    SW_TRY(head(o, "sw_engine_steps_total", "counter", "Engine scheduler steps."));
    SW_TRY(sw_obuf_printf(o, "sw_engine_steps_total{%s} %lld\n", lab, (long long)es.steps));
    SW_TRY(head(o, "sw_prompt_tokens_total", "counter",
                "Prompt tokens prefilled (computed) by the engine."));
    SW_TRY(
        sw_obuf_printf(o, "sw_prompt_tokens_total{%s} %lld\n", lab, (long long)es.prompt_tokens));
    SW_TRY(head(o, "sw_generation_tokens_total", "counter", "Tokens generated by the engine."));
    SW_TRY(sw_obuf_printf(o, "sw_generation_tokens_total{%s} %lld\n", lab,
                          (long long)es.generation_tokens));
    SW_TRY(head(o, "sw_engine_requests_total", "counter", "Engine requests by outcome."));
    SW_TRY(sw_obuf_printf(o, "sw_engine_requests_total{%s,state=\"submitted\"} %lld\n", lab,
                          (long long)es.requests_submitted));
    SW_TRY(sw_obuf_printf(o, "sw_engine_requests_total{%s,state=\"finished\"} %lld\n", lab,
                          (long long)es.requests_finished));
    SW_TRY(sw_obuf_printf(o, "sw_engine_requests_total{%s,state=\"aborted\"} %lld\n", lab,
                          (long long)es.requests_aborted));

    pthread_mutex_lock(&m->mu);
    int rc = head(o, "sw_http_requests_total", "counter",
                  "HTTP requests answered, by endpoint and status.");
    for (int i = 0; rc == 0 && i < m->n_http; i++)
        rc = sw_obuf_printf(o, "sw_http_requests_total{%s,endpoint=\"%s\",status=\"%d\"} %llu\n",
                            lab, m->http[i].endpoint, m->http[i].status,
                            (unsigned long long)m->http[i].n);
    static const char *const reasons[] = {"none", "stop", "length", "abort", "error"};
    if (rc == 0)
        rc = head(o, "sw_request_success_total", "counter",
                  "Finished sequences (choices) by finish_reason.");
    for (int i = 1; rc == 0 && i < 5; i++)
        rc = sw_obuf_printf(o, "sw_request_success_total{%s,finished_reason=\"%s\"} %llu\n", lab,
                            reasons[i], (unsigned long long)m->finished[i]);
    if (rc == 0)
        rc = head(o, "sw_request_prompt_tokens_total", "counter",
                  "Prompt tokens of finished API requests (usage.prompt_tokens).");
    if (rc == 0)
        rc = sw_obuf_printf(o, "sw_request_prompt_tokens_total{%s} %llu\n", lab,
                            (unsigned long long)m->prompt_tokens);
    if (rc == 0)
        rc = head(o, "sw_request_generation_tokens_total", "counter",
                  "Completion tokens of finished API requests (usage.completion_tokens).");
    if (rc == 0)
        rc = sw_obuf_printf(o, "sw_request_generation_tokens_total{%s} %llu\n", lab,
                            (unsigned long long)m->generation_tokens);
    if (rc == 0)
        rc = head(o, "sw_request_cached_tokens_total", "counter",
                  "Prompt tokens of finished API requests served from the prefix cache.");
    if (rc == 0)
        rc = sw_obuf_printf(o, "sw_request_cached_tokens_total{%s} %llu\n", lab,
                            (unsigned long long)m->cached_tokens);
    if (rc == 0)
        rc = head(o, "sw_zmq_requests_total", "counter",
                  "Requests received on the ZeroMQ endpoint.");
    if (rc == 0)
        rc = sw_obuf_printf(o, "sw_zmq_requests_total{%s} %llu\n", lab,
                            (unsigned long long)m->zmq_requests);
    if (rc == 0)
        rc = hist(o, "sw_time_to_first_token_seconds",
                  "Time from request arrival to its first token.", &m->ttft, lab);
    if (rc == 0)
        rc = hist(o, "sw_inter_token_latency_seconds",
                  "Time between consecutive tokens of a sequence.", &m->itl, lab);
    if (rc == 0)
        rc = hist(o, "sw_e2e_request_latency_seconds",
                  "Time from request arrival to its last token.", &m->e2e, lab);
    if (rc == 0)
        rc = hist(o, "sw_request_prompt_tokens", "Prompt tokens per request.", &m->prompt_len, lab);
    if (rc == 0)
        rc = hist(o, "sw_request_generation_tokens", "Generated tokens per request.", &m->gen_len,
                  lab);
    double ready = m->ready_seconds;
    pthread_mutex_unlock(&m->mu);
    SW_TRY(rc);
    SW_TRY(head(o, "sw_server_ready_seconds", "gauge",
                "Seconds from process start to ready (model loaded, port open)."));
    SW_TRY(sw_obuf_printf(o, "sw_server_ready_seconds{%s} %.6g\n", lab, ready));
    SW_TRY(head(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes."));
    return sw_obuf_printf(o, "process_resident_memory_bytes %lld\n", rss_bytes());
}
