/* sw_engine_impl — the inside of struct sw_engine, shared by lib/infer/sw_engine*.c only:
 *   sw_engine.c        open/close, getters, adapters, submit/abort, stats, the loop thread
 *   sw_engine_sched.c  one step: intake, scheduling (blocks, prefix cache, chunked prefill,
 *                      preemption), the model forward, sampling, detokenization, callbacks
 *   sw_engine_batch.c  the synchronous generate/score API
 * Locks: step_mu is held by whoever runs a step (and by adapter changes, which must not overlap
 * a forward); mu guards what other threads touch (the intake queue, aborts, counters, flags).
 * Lock order: step_mu before mu. Callbacks run with step_mu held and mu free. */
#ifndef SW_ENGINE_IMPL_H
#define SW_ENGINE_IMPL_H

#include "sw_detok.h"
#include "sw_engine.h"
#include "sw_hfmodel.h"
#include "sw_kv_blocks.h"
#include "sw_model_infer.h"
#include "sw_sampler.h"

#include <pthread.h>
#include <stdint.h>

struct eng_adapter {
    char *name;
    uint64_t uid; /* unique per load (mixed into prefix-cache hashes) */
    struct sw_adapter *a;
    struct sw_lora_weights *w;
    int users; /* requests queued or running with it */
};

enum eng_seq_state { SEQ_WAITING = 0, SEQ_RUNNING, SEQ_FINISHED };

struct eng_req;

struct eng_seq {
    struct eng_req *req;
    int index; /* 0..n-1 */
    enum eng_seq_state state;
    int32_t *tokens; /* prompt + output */
    int64_t n_tokens, cap;
    int64_t n_computed; /* tokens whose K/V is in the cache */
    int32_t *blocks;    /* block table */
    int64_t n_blocks, blocks_cap;
    uint64_t *hashes; /* hashes of the first n_hashed full blocks */
    int64_t n_hashed;
    int64_t n_registered; /* full blocks offered to the prefix cache */
    struct sw_detok detok;
    enum sw_finish_reason finish;
    int32_t stop_token;
    int stop_str;
    uint64_t admitted;       /* admission counter value (preemption: youngest first) */
    int64_t n_new;           /* tokens scheduled in the current step */
    int want_sample;         /* this step's last row is sampled */
    int64_t plp_row0, plp_n; /* this step's prompt-logprob rows (first row index, count) */
    int64_t sample_row;
    /* the step's sampled id and its logprobs, computed for all sequences in parallel */
    int32_t pre_id;
    int has_pre;
    struct sw_token_logprobs pre_lp;
    struct sw_logprob_entry pre_top[20];
};

struct eng_req {
    uint64_t id;
    struct sw_sampling_params p; /* deep copy: stop / stop_token_ids point below */
    char **stop;
    int32_t *stop_ids;
    int32_t *banned; /* EOS + stop ids (min_tokens) */
    int n_banned;
    int32_t *prompt;
    int64_t n_prompt;
    int64_t max_tokens; /* resolved (max_tokens, max_model_len) */
    struct eng_adapter *ad;
    sw_engine_cb cb;
    void *user;
    uint64_t seed;
    struct eng_seq **seqs; /* [p.n]; seqs[1..] created at the fork */
    int n_seqs, n_finished;
    int forked;
    int aborted;
    int64_t cached_tokens;
    /* prompt logprobs for prompt tokens plp_from+1 .. n_prompt−1 (row t predicts token t+1) */
    int want_plp;
    int64_t plp_from;
    struct sw_token_logprobs *plp;
    struct sw_logprob_entry *plp_top;
    int64_t plp_done; /* entries filled */
    int plp_delivered;
    struct eng_req *next; /* intake queue link */
};

struct sw_engine {
    struct sw_engine_opts opts;
    char *model_dir, *model_name;
    struct sw_hfmodel *hf;
    struct sw_backend *be;
    struct sw_model *model;
    int model_borrowed; /* opts.model: neither the model nor its backend is the engine's */
    struct sw_tokenizer *tok;
    const struct sw_template *tpl;
    int32_t eos[16];
    int n_eos;
    int64_t V, max_model_len, max_blocks_per_seq, max_batched, plp_cap;
    int max_num_seqs, max_loras;
    /* cache */
    struct sw_kv_cache kv;
    struct sw_kv_blocks *bm;
    int bs;
    /* adapters */
    struct eng_adapter **adapters;
    int n_adapters;
    uint64_t next_uid;
    /* step-thread state */
    struct eng_seq **waiting; /* FIFO, front = next; preempted seqs go to the front */
    int64_t n_waiting, waiting_cap;
    struct eng_seq **running; /* admission order */
    int n_running, running_cap;
    uint64_t admit_counter;
    struct sw_sampler *samplers; /* one per OpenMP thread: sampling runs in parallel */
    float *logits, *rows;        /* host [rows, V]; [threads, V] scratch rows */
    int n_samplers;
    int64_t logits_rows;
    /* per-step host arrays (capacity max_batched tokens / max_num_seqs sequences) */
    int32_t *ids, *pos, *slots, *cu, *lens, *bt, *lrows;
    const struct sw_lora_weights **lora;
    struct eng_seq **sched;
    int n_sched;
    /* shared with other threads (mu) */
    pthread_mutex_t mu, step_mu;
    pthread_cond_t work_cv, done_cv;
    struct eng_req *intake_head, *intake_tail;
    int n_intake;
    uint64_t *aborts;
    int n_aborts, aborts_cap;
    uint64_t next_id;
    int64_t n_unfinished_reqs; /* submitted and not yet request_done */
    int stopping;              /* submit refuses */
    int thread_running, thread_quit;
    int64_t drain_deadline_ms; /* < 0: none */
    pthread_t thread;
    int thread_rc;
    struct sw_engine_stats st; /* counters (mu) */
    struct eng_req **reqs;     /* live requests (step thread), for aborts by id */
    int64_t n_reqs, reqs_cap;
};

/* sw_engine_sched.c */
int sw_engine_step_locked(struct sw_engine *e); /* with step_mu held */
void sw_engine_abort_all_locked(struct sw_engine *e, enum sw_finish_reason why, const char *msg);
void sw_engine_req_free(struct eng_req *r);
/* A sequence of r holding its prompt (sw_engine.c). NULL on ENOMEM. */
struct eng_seq *sw_engine_seq_new(struct sw_engine *e, struct eng_req *r, int index);
/* Queue a request: sw_engine_submit plus the first prompt position whose next-token logprob is
 * wanted (plp_from ≥ 0; −1: from params.prompt_logprobs) and a bypass of max_waiting (the
 * batch API throttles itself). */
int sw_engine_submit_ex(struct sw_engine *e, const int32_t *prompt, int64_t n_prompt,
                        const struct sw_sampling_params *p, const char *adapter, sw_engine_cb cb,
                        void *user, int64_t plp_from, int no_queue_limit, uint64_t *id);
int64_t sw_engine_now_ms(void);

#endif
