/* sw_engine_sched — one engine step (see sw_engine_impl.h):
 *
 *  1. intake: queued requests join the waiting queue (their first sequence), aborts are applied
 *     (blocks freed, ABORT finishes and request_done delivered);
 *  2. schedule, under a budget of max_num_batched_tokens new tokens:
 *     - running sequences first, oldest first: each gets its remaining tokens (one when
 *       decoding, the rest of its prompt — or as much of it as the budget allows — when
 *       prefilling); when the blocks for them cannot be had, the youngest running sequence is
 *       preempted (blocks freed, back to the front of the waiting queue, recomputed later);
 *     - then, if nothing was preempted, waiting sequences in order while the budget, the block
 *       pool and max_num_seqs allow: a new sequence first takes the cached blocks of its prompt
 *       prefix (prefix cache), then a chunk of what is left;
 *     a block shared with a sibling (n > 1) that is about to be written is copied first
 *     (copy-on-write);
 *  3. one model forward over every scheduled token (sequences ordered by adapter), logits only
 *     for the rows that are sampled or asked for as prompt logprobs;
 *  4. per sequence: prompt logprobs, full blocks registered in the prefix cache, the next token
 *     sampled (the n > 1 sequences of a request fork from the first when its prompt is done, all
 *     sharing the prompt's blocks), detokenized, checked for stops, and delivered. */
#include "sw_engine_impl.h"

#include "sw_err.h"
#include "sw_log.h"
#include "sw_tokenizer.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- lists -------------------------------------------------------------------------------- */

static int waiting_push(struct sw_engine *e, struct eng_seq *s, int front) {
    if (e->n_waiting == e->waiting_cap) {
        int64_t cap = e->waiting_cap ? 2 * e->waiting_cap : 64;
        struct eng_seq **nw = realloc(e->waiting, (size_t)cap * sizeof(*nw));
        if (!nw) return sw_err_set(SW_ENOMEM, "engine: out of memory");
        e->waiting = nw;
        e->waiting_cap = cap;
    }
    if (front) {
        memmove(e->waiting + 1, e->waiting, (size_t)e->n_waiting * sizeof(*e->waiting));
        e->waiting[0] = s;
    } else {
        e->waiting[e->n_waiting] = s;
    }
    e->n_waiting++;
    s->state = SEQ_WAITING;
    return 0;
}

static void list_remove(struct eng_seq **a, int64_t *n, struct eng_seq *s) {
    for (int64_t i = 0; i < *n; i++)
        if (a[i] == s) {
            memmove(a + i, a + i + 1, (size_t)(*n - i - 1) * sizeof(*a));
            (*n)--;
            return;
        }
}

static void running_remove(struct sw_engine *e, struct eng_seq *s) {
    int64_t n = e->n_running;
    list_remove(e->running, &n, s);
    e->n_running = (int)n;
}

static int running_push(struct sw_engine *e, struct eng_seq *s) {
    if (e->n_running == e->running_cap) {
        int cap = 2 * e->running_cap;
        struct eng_seq **nr = realloc(e->running, (size_t)cap * sizeof(*nr));
        if (!nr) return sw_err_set(SW_ENOMEM, "engine: out of memory");
        e->running = nr;
        e->running_cap = cap;
    }
    e->running[e->n_running++] = s;
    s->state = SEQ_RUNNING;
    return 0;
}

/* ---- blocks ------------------------------------------------------------------------------- */

static int seq_reserve(struct sw_engine *e, struct eng_seq *s) {
    if (s->blocks_cap >= e->max_blocks_per_seq) return 0;
    int64_t cap = e->max_blocks_per_seq;
    int32_t *b = realloc(s->blocks, (size_t)cap * sizeof(int32_t));
    if (b) s->blocks = b;
    uint64_t *h = realloc(s->hashes, (size_t)cap * sizeof(uint64_t));
    if (h) s->hashes = h;
    if (!b || !h) return sw_err_set(SW_ENOMEM, "engine: out of memory for a block table");
    s->blocks_cap = cap;
    return 0;
}

static void seq_free_blocks(struct sw_engine *e, struct eng_seq *s) {
    /* last block first: the free list hands out its head first, so a prompt's first blocks
     * (the ones other prompts are most likely to share) stay cached longest */
    for (int64_t i = s->n_blocks - 1; i >= 0; i--)
        sw_kv_blocks_release(e->bm, s->blocks[i]);
    s->n_blocks = 0;
    s->n_computed = 0;
    s->n_registered = 0;
}

static uint64_t seq_extra(const struct eng_seq *s) {
    return s->req->ad ? s->req->ad->uid : 0;
}

/* Hash of full block b of s (computed once, blocks in order). */
static uint64_t seq_hash(struct sw_engine *e, struct eng_seq *s, int64_t b) {
    while (s->n_hashed <= b) {
        int64_t k = s->n_hashed;
        s->hashes[k] =
            sw_kv_block_hash(k ? s->hashes[k - 1] : 0, s->tokens + k * e->bs, e->bs, seq_extra(s));
        s->n_hashed++;
    }
    return s->hashes[b];
}

/* Blocks s needs from the pool to hold tokens [0, upto): new blocks plus a copy of a shared
 * partial block it would write into. */
static int64_t blocks_needed(struct sw_engine *e, const struct eng_seq *s, int64_t upto) {
    int64_t want = (upto + e->bs - 1) / e->bs - s->n_blocks;
    if (want < 0) want = 0;
    int64_t b = s->n_computed / e->bs;
    if (s->n_computed % e->bs && b < s->n_blocks && sw_kv_blocks_refs(e->bm, s->blocks[b]) > 1)
        want++;
    return want;
}

/* Give s the blocks for tokens [0, upto) (blocks_needed of them must be free). */
static int seq_grow(struct sw_engine *e, struct eng_seq *s, int64_t upto) {
    SW_TRY(seq_reserve(e, s));
    int64_t b = s->n_computed / e->bs;
    if (s->n_computed % e->bs && b < s->n_blocks && sw_kv_blocks_refs(e->bm, s->blocks[b]) > 1) {
        int32_t dst = sw_kv_blocks_alloc(e->bm), src = s->blocks[b];
        SW_ASSERT(dst >= 0);
        SW_TRY(sw_kv_cache_copy_block(&e->kv, e->be, dst, src));
        sw_kv_blocks_release(e->bm, src);
        s->blocks[b] = dst;
    }
    while (s->n_blocks * e->bs < upto) {
        int32_t id = sw_kv_blocks_alloc(e->bm);
        SW_ASSERT(id >= 0);
        s->blocks[s->n_blocks++] = id;
    }
    return 0;
}

/* Offer the newly full blocks of s to the prefix cache. */
static void seq_register(struct sw_engine *e, struct eng_seq *s) {
    int64_t full = s->n_computed / e->bs;
    for (int64_t b = s->n_registered; b < full; b++) {
        uint64_t h = seq_hash(e, s, b);
        sw_kv_blocks_register(e->bm, s->blocks[b], h, b ? s->hashes[b - 1] : 0,
                              s->tokens + b * e->bs, seq_extra(s));
    }
    if (full > s->n_registered) s->n_registered = full;
}

/* The longest cached prefix of s (full blocks, at least one token left to compute; not past
 * the first prompt-logprob row still to be delivered). */
static int seq_lookup(struct sw_engine *e, struct eng_seq *s) {
    SW_TRY(seq_reserve(e, s));
    struct eng_req *r = s->req;
    int64_t limit = s->n_tokens - 1;
    if (r->want_plp && !r->plp_delivered && r->plp_from < limit) limit = r->plp_from;
    int64_t nfull = limit / e->bs;
    for (int64_t b = 0; b < nfull; b++) {
        uint64_t h = seq_hash(e, s, b);
        int32_t id = sw_kv_blocks_lookup(e->bm, h, b ? s->hashes[b - 1] : 0, s->tokens + b * e->bs,
                                         seq_extra(s));
        if (id < 0) break;
        sw_kv_blocks_retain(e->bm, id);
        s->blocks[s->n_blocks++] = id;
    }
    s->n_computed = s->n_blocks * e->bs;
    s->n_registered = s->n_blocks;
    pthread_mutex_lock(&e->mu);
    e->st.prefix_cache_queries += s->n_tokens;
    e->st.prefix_cache_hits += s->n_computed;
    pthread_mutex_unlock(&e->mu);
    return 0;
}

static void preempt(struct sw_engine *e, struct eng_seq *s) {
    seq_free_blocks(e, s);
    running_remove(e, s);
    /* cannot fail for want of memory: the waiting array held it before (or grows by one) */
    if (waiting_push(e, s, 1) < 0) SW_ASSERT(!"out of memory preempting");
    pthread_mutex_lock(&e->mu);
    e->st.preemptions++;
    pthread_mutex_unlock(&e->mu);
}

/* ---- events and finishing ----------------------------------------------------------------- */

static void deliver(struct eng_req *r, const struct sw_engine_event *ev) {
    if (r->cb(r->user, ev) != 0) r->aborted = 1;
}

static void req_done(struct sw_engine *e, struct eng_req *r) {
    struct sw_engine_event ev = {
        .request_id = r->id, .index = -1, .token = -1, .stop_token = -1, .request_done = 1};
    ev.usage.prompt_tokens = r->n_prompt;
    ev.usage.cached_tokens = r->cached_tokens;
    for (int i = 0; i < r->n_seqs; i++)
        ev.usage.completion_tokens += r->seqs[i]->n_tokens - r->n_prompt;
    r->cb(r->user, &ev);
    for (int64_t i = 0; i < e->n_reqs; i++)
        if (e->reqs[i] == r) {
            e->reqs[i] = e->reqs[--e->n_reqs];
            break;
        }
    pthread_mutex_lock(&e->mu);
    if (r->ad) r->ad->users--;
    e->n_unfinished_reqs--;
    if (r->aborted)
        e->st.requests_aborted++;
    else
        e->st.requests_finished++;
    pthread_cond_broadcast(&e->done_cv);
    pthread_mutex_unlock(&e->mu);
    sw_engine_req_free(r);
}

/* End sequence s (blocks freed) and deliver its last event; the request's last one also ends
 * the request. token = the id of this event or −1. */
static void seq_finish(struct sw_engine *e, struct eng_seq *s, enum sw_finish_reason why,
                       int32_t token, const struct sw_token_logprobs *lp, const char *msg) {
    struct eng_req *r = s->req;
    if (s->state == SEQ_RUNNING)
        running_remove(e, s);
    else if (s->state == SEQ_WAITING)
        list_remove(e->waiting, &e->n_waiting, s);
    seq_free_blocks(e, s);
    s->state = SEQ_FINISHED;
    s->finish = why;
    const char *delta;
    size_t dlen;
    sw_detok_take(&s->detok, 1, &delta, &dlen);
    if (why == SW_FINISH_ABORT || why == SW_FINISH_ERROR) dlen = 0;
    struct sw_engine_event ev = {.request_id = r->id,
                                 .index = s->index,
                                 .token = token,
                                 .text = delta,
                                 .text_len = dlen,
                                 .logprobs = lp,
                                 .finish = why,
                                 .stop_token = s->stop_token,
                                 .stop_str = s->stop_str >= 0 ? r->p.stop[s->stop_str] : NULL,
                                 .error = msg};
    ev.usage.prompt_tokens = r->n_prompt;
    ev.usage.completion_tokens = s->n_tokens - r->n_prompt;
    ev.usage.cached_tokens = r->cached_tokens;
    deliver(r, &ev);
    /* an unforked request with n > 1 ends through req_end, which creates the siblings first */
    if (++r->n_finished == r->n_seqs && (r->forked || r->p.n == 1)) req_done(e, r);
}

/* End every unfinished sequence of r with why (abort, error). An unforked request with n > 1
 * reports the sequences that never started too. */
static void req_end(struct sw_engine *e, struct eng_req *r, enum sw_finish_reason why,
                    const char *msg) {
    if (!r->forked && r->p.n > 1) {
        /* the siblings were never created: report them as ended too */
        struct eng_seq **ns = realloc(r->seqs, (size_t)r->p.n * sizeof(*ns));
        if (ns) r->seqs = ns;
        for (int i = r->n_seqs; ns && i < r->p.n; i++) {
            struct eng_seq *c = sw_engine_seq_new(e, r, i);
            if (!c) break;
            c->state = SEQ_FINISHED;
            r->seqs[r->n_seqs++] = c;
            struct sw_engine_event ev = {.request_id = r->id,
                                         .index = i,
                                         .token = -1,
                                         .finish = why,
                                         .stop_token = -1,
                                         .error = msg};
            ev.usage.prompt_tokens = r->n_prompt;
            deliver(r, &ev);
            r->n_finished++;
        }
        r->forked = 1;
    }
    int pending = 0;
    for (int i = 0; i < r->n_seqs; i++)
        pending += r->seqs[i]->state != SEQ_FINISHED;
    if (pending == 0) {
        req_done(e, r);
        return;
    }
    for (int i = 0; i < r->n_seqs; i++)
        if (r->seqs[i]->state != SEQ_FINISHED) {
            int last = --pending == 0;
            seq_finish(e, r->seqs[i], why, -1, NULL, msg);
            if (last) return; /* r is freed */
        }
}

void sw_engine_abort_all_locked(struct sw_engine *e, enum sw_finish_reason why, const char *msg) {
    /* take the intake too, so every submitted request gets its request_done */
    pthread_mutex_lock(&e->mu);
    struct eng_req *q = e->intake_head;
    e->intake_head = e->intake_tail = NULL;
    e->n_intake = 0;
    e->n_aborts = 0;
    pthread_mutex_unlock(&e->mu);
    while (q) {
        struct eng_req *next = q->next;
        q->aborted = 1;
        struct eng_req **nr = e->n_reqs == e->reqs_cap
                                  ? realloc(e->reqs, (size_t)(e->reqs_cap * 2 + 16) * sizeof(*nr))
                                  : e->reqs;
        if (nr) {
            if (e->n_reqs == e->reqs_cap) e->reqs_cap = e->reqs_cap * 2 + 16;
            e->reqs = nr;
            e->reqs[e->n_reqs++] = q;
            if (waiting_push(e, q->seqs[0], 0) < 0) q->seqs[0]->state = SEQ_FINISHED;
        }
        q = next;
    }
    while (e->n_reqs > 0) {
        struct eng_req *r = e->reqs[e->n_reqs - 1];
        r->aborted = why == SW_FINISH_ABORT;
        req_end(e, r, why, msg);
    }
    pthread_mutex_lock(&e->mu);
    e->st.running = e->n_running;
    e->st.waiting = (int)e->n_waiting;
    e->st.kv_blocks_used = sw_kv_blocks_num_used(e->bm);
    e->st.kv_blocks_cached = sw_kv_blocks_num_cached_free(e->bm);
    pthread_mutex_unlock(&e->mu);
}

/* ---- intake ------------------------------------------------------------------------------- */

static int intake(struct sw_engine *e) {
    pthread_mutex_lock(&e->mu);
    struct eng_req *q = e->intake_head;
    e->intake_head = e->intake_tail = NULL;
    int nq = e->n_intake;
    e->n_intake = 0;
    int na = e->n_aborts;
    uint64_t *ab = NULL;
    if (na > 0 && (ab = malloc((size_t)na * sizeof(*ab))))
        memcpy(ab, e->aborts, (size_t)na * sizeof(*ab));
    e->n_aborts = 0;
    pthread_mutex_unlock(&e->mu);
    int rc = 0;
    if (e->n_reqs + nq > e->reqs_cap) {
        int64_t cap = (e->n_reqs + nq) * 2 + 16;
        struct eng_req **nr = realloc(e->reqs, (size_t)cap * sizeof(*nr));
        if (!nr)
            rc = sw_err_set(SW_ENOMEM, "engine: out of memory");
        else
            e->reqs = nr, e->reqs_cap = cap;
    }
    while (q) {
        struct eng_req *next = q->next;
        q->next = NULL;
        if (rc == 0 && (rc = waiting_push(e, q->seqs[0], 0)) == 0) {
            e->reqs[e->n_reqs++] = q;
        } else {
            /* cannot queue it: end it at once so its user still hears back */
            struct sw_engine_event ev = {.request_id = q->id,
                                         .index = -1,
                                         .token = -1,
                                         .finish = SW_FINISH_ERROR,
                                         .stop_token = -1,
                                         .error = "out of memory",
                                         .request_done = 1};
            q->cb(q->user, &ev);
            pthread_mutex_lock(&e->mu);
            if (q->ad) q->ad->users--;
            e->n_unfinished_reqs--;
            pthread_cond_broadcast(&e->done_cv);
            pthread_mutex_unlock(&e->mu);
            sw_engine_req_free(q);
        }
        q = next;
    }
    for (int i = 0; ab && i < na; i++)
        for (int64_t j = 0; j < e->n_reqs; j++)
            if (e->reqs[j]->id == ab[i]) e->reqs[j]->aborted = 1;
    free(ab);
    return rc;
}

/* End the requests marked aborted (by sw_engine_abort or a callback's return value). */
static void apply_aborts(struct sw_engine *e) {
    for (int64_t j = 0; j < e->n_reqs;) {
        struct eng_req *r = e->reqs[j];
        if (r->aborted)
            req_end(e, r, SW_FINISH_ABORT, NULL); /* removes r from reqs */
        else
            j++;
    }
}

/* ---- scheduling --------------------------------------------------------------------------- */

/* Rows of prompt logprobs s would produce computing tokens [n_computed, n_computed + n). */
static int64_t plp_rows(const struct eng_seq *s, int64_t n) {
    const struct eng_req *r = s->req;
    if (!r->want_plp || r->plp_delivered) return 0;
    int64_t lo = s->n_computed > r->plp_from ? s->n_computed : r->plp_from;
    int64_t hi = s->n_computed + n < r->n_prompt - 1 ? s->n_computed + n : r->n_prompt - 1;
    return hi > lo ? hi - lo : 0;
}

/* How many new tokens s may take now: what it has left, within the budget and the prompt-logprob
 * rows left this step. */
static int64_t want_tokens(const struct eng_seq *s, int64_t budget, int64_t plp_left) {
    int64_t n = s->n_tokens - s->n_computed;
    if (n > budget) n = budget;
    while (n > 0 && plp_rows(s, n) > plp_left) {
        const struct eng_req *r = s->req;
        int64_t lo = s->n_computed > r->plp_from ? s->n_computed : r->plp_from;
        n = lo + plp_left - s->n_computed;
    }
    return n > 0 ? n : 0;
}

static void sched_add(struct sw_engine *e, struct eng_seq *s, int64_t n, int64_t *budget,
                      int64_t *plp_left) {
    SW_ASSERT(e->n_sched < e->max_num_seqs + 1); /* sched holds max_num_seqs + 1 */
    s->n_new = n;
    *budget -= n;
    *plp_left -= plp_rows(s, n);
    e->sched[e->n_sched++] = s;
}

static int schedule(struct sw_engine *e) {
    e->n_sched = 0;
    int64_t budget = e->max_batched, plp_left = e->plp_cap;
    int preempted = 0;
    for (int i = 0; i < e->n_running && budget > 0; i++) {
        struct eng_seq *s = e->running[i];
        int64_t n = want_tokens(s, budget, plp_left);
        if (n == 0) continue;
        int self = 0;
        while (blocks_needed(e, s, s->n_computed + n) > sw_kv_blocks_num_free(e->bm)) {
            struct eng_seq *victim = e->running[e->n_running - 1];
            preempt(e, victim);
            preempted = 1;
            if (victim == s) {
                self = 1;
                break;
            }
        }
        if (self) break;
        SW_TRY(seq_grow(e, s, s->n_computed + n));
        sched_add(e, s, n, &budget, &plp_left);
    }
    if (preempted) return 0;
    /* seats: running sequences plus the siblings an unforked n > 1 request will add */
    int taken = e->n_running;
    for (int i = 0; i < e->n_running; i++)
        if (!e->running[i]->req->forked) taken += e->running[i]->req->p.n - 1;
    while (e->n_waiting > 0 && budget > 0) {
        struct eng_seq *s = e->waiting[0];
        struct eng_req *r = s->req;
        int seats = !r->forked && r->p.n > 1 ? r->p.n : 1;
        if (taken + seats > e->max_num_seqs) break;
        int first = s->n_blocks == 0;
        if (first) SW_TRY(seq_lookup(e, s));
        int64_t n = want_tokens(s, budget, plp_left);
        if (n == 0 || blocks_needed(e, s, s->n_computed + n) > sw_kv_blocks_num_free(e->bm)) {
            if (first) seq_free_blocks(e, s); /* give the prefix hits back */
            break;
        }
        if (first && s->index == 0 && r->cached_tokens == 0 && !r->forked)
            r->cached_tokens = s->n_computed;
        SW_TRY(seq_grow(e, s, s->n_computed + n));
        memmove(e->waiting, e->waiting + 1, (size_t)(e->n_waiting - 1) * sizeof(*e->waiting));
        e->n_waiting--;
        s->admitted = ++e->admit_counter;
        SW_TRY(running_push(e, s));
        taken += seats;
        sched_add(e, s, n, &budget, &plp_left);
    }
    return 0;
}

/* ---- forward ------------------------------------------------------------------------------ */

static uint64_t sched_key(const struct eng_seq *s) {
    return s->req->ad ? s->req->ad->uid : 0;
}

/* Stable order by adapter, so each adapter's rows form one slab (insertion sort: the step's
 * sequences are few and mostly in order already). */
static void order_by_adapter(struct sw_engine *e) {
    for (int i = 1; i < e->n_sched; i++) {
        struct eng_seq *s = e->sched[i];
        int j = i;
        while (j > 0 && sched_key(e->sched[j - 1]) > sched_key(s)) {
            e->sched[j] = e->sched[j - 1];
            j--;
        }
        e->sched[j] = s;
    }
}

static int forward(struct sw_engine *e) {
    int64_t N = 0, nl = 0, mb = e->max_blocks_per_seq;
    e->cu[0] = 0;
    int any_lora = 0;
    for (int i = 0; i < e->n_sched; i++) {
        struct eng_seq *s = e->sched[i];
        for (int64_t j = 0; j < s->n_new; j++) {
            int64_t p = s->n_computed + j;
            e->ids[N + j] = s->tokens[p];
            e->pos[N + j] = (int32_t)p;
            e->slots[N + j] = s->blocks[p / e->bs] * e->bs + (int32_t)(p % e->bs);
        }
        s->plp_n = plp_rows(s, s->n_new);
        s->plp_row0 = nl;
        if (s->plp_n > 0) {
            int64_t lo = s->n_computed > s->req->plp_from ? s->n_computed : s->req->plp_from;
            for (int64_t j = 0; j < s->plp_n; j++)
                e->lrows[nl++] = (int32_t)(N + (lo - s->n_computed) + j);
        }
        int64_t end = s->n_computed + s->n_new;
        s->want_sample = end == s->n_tokens && s->req->max_tokens > 0;
        s->sample_row = -1;
        if (s->want_sample) {
            s->sample_row = nl;
            e->lrows[nl++] = (int32_t)(N + s->n_new - 1);
        }
        N += s->n_new;
        e->cu[i + 1] = (int32_t)N;
        e->lens[i] = (int32_t)end;
        memcpy(e->bt + i * mb, s->blocks, (size_t)s->n_blocks * sizeof(int32_t));
        for (int64_t b = s->n_blocks; b < mb; b++)
            e->bt[i * mb + b] = 0;
        e->lora[i] = s->req->ad ? s->req->ad->w : NULL;
        any_lora |= e->lora[i] != NULL;
    }
    struct sw_infer_batch b = {
        .nseq = e->n_sched,
        .N = N,
        .ids = e->ids,
        .pos = e->pos,
        .cu_q = e->cu,
        .seq_lens = e->lens,
        .block_tables = e->bt,
        .max_blocks = mb,
        .slot_mapping = e->slots,
        .lora = any_lora ? e->lora : NULL,
        .logit_rows = e->lrows,
        .n_logits = nl,
    };
    return sw_model_infer(e->model, &e->kv, &b, e->logits);
}

/* ---- after the forward -------------------------------------------------------------------- */

static int is_in(const int32_t *a, int n, int32_t id) {
    for (int i = 0; i < n; i++)
        if (a[i] == id) return 1;
    return 0;
}

static int seq_append(struct eng_seq *s, int32_t id) {
    if (s->n_tokens == s->cap) {
        int64_t cap = s->cap * 2;
        int32_t *t = realloc(s->tokens, (size_t)cap * sizeof(int32_t));
        if (!t) return sw_err_set(SW_ENOMEM, "engine: out of memory");
        s->tokens = t;
        s->cap = cap;
    }
    s->tokens[s->n_tokens++] = id;
    return 0;
}

/* The next id of s from the raw logits row (a copy is processed in rows[thread]) and, when
 * asked for, its logprobs into s->pre_lp / pre_top. Touches only s and the thread's scratch, so
 * the step's sequences are sampled in parallel. */
static int32_t seq_sample(struct sw_engine *e, struct eng_seq *s, const float *raw, int th) {
    struct eng_req *r = s->req;
    float *row = e->rows + (size_t)th * (size_t)e->V;
    memcpy(row, raw, (size_t)e->V * sizeof(float));
    struct sw_sample_ctx c = {.prompt = r->prompt,
                              .n_prompt = r->n_prompt,
                              .output = s->tokens + r->n_prompt,
                              .n_output = s->n_tokens - r->n_prompt,
                              .banned = r->banned,
                              .n_banned = r->n_banned,
                              .seed = r->seed,
                              .stream = (uint64_t)s->index};
    int32_t id = sw_sample(&e->samplers[th], row, &r->p, &c);
    if (id >= 0 && r->p.logprobs >= 0)
        sw_logprobs(raw, e->V, id, r->p.logprobs, s->pre_top, &s->pre_lp, NULL);
    return id;
}

/* Sample s's next id (or take the one sampled in parallel), append it, check stops, deliver. */
static int seq_emit(struct sw_engine *e, struct eng_seq *s, const float *raw) {
    struct eng_req *r = s->req;
    int32_t id = s->has_pre ? s->pre_id : seq_sample(e, s, raw, 0);
    s->has_pre = 0;
    if (id < 0) return id;
    struct sw_token_logprobs *lpp = NULL;
    if (r->p.logprobs >= 0) {
        s->pre_lp.top = s->pre_top;
        lpp = &s->pre_lp;
    }
    SW_TRY(seq_append(s, id));
    pthread_mutex_lock(&e->mu);
    e->st.generation_tokens++;
    pthread_mutex_unlock(&e->mu);
    int64_t n_out = s->n_tokens - r->n_prompt;
    enum sw_finish_reason fin = SW_FINISH_NONE;
    int allowed = n_out >= r->p.min_tokens;
    if (allowed && !r->p.ignore_eos && is_in(e->eos, e->n_eos, id)) {
        fin = SW_FINISH_STOP;
        s->stop_token = id;
    } else if (allowed && is_in(r->stop_ids, r->p.n_stop_token_ids, id)) {
        fin = SW_FINISH_STOP;
        s->stop_token = id;
    } else {
        int matched;
        SW_TRY(sw_detok_add(&s->detok, s->tokens, s->n_tokens, &matched));
        if (matched >= 0) {
            fin = SW_FINISH_STOP;
            s->stop_str = matched;
        }
    }
    if (fin == SW_FINISH_NONE && (n_out >= r->max_tokens || s->n_tokens >= e->max_model_len))
        fin = SW_FINISH_LENGTH;
    if (fin != SW_FINISH_NONE) {
        seq_finish(e, s, fin, id, lpp, NULL);
        return 0;
    }
    const char *delta;
    size_t dlen;
    sw_detok_take(&s->detok, 0, &delta, &dlen);
    struct sw_engine_event ev = {.request_id = r->id,
                                 .index = s->index,
                                 .token = id,
                                 .text = delta,
                                 .text_len = dlen,
                                 .logprobs = lpp,
                                 .stop_token = -1};
    deliver(r, &ev);
    return 0;
}

/* The n > 1 sequences of r start: siblings share every block of s (the prompt), and each
 * samples its first id from the same logits with its own random stream. */
static int fork_seqs(struct sw_engine *e, struct eng_seq *s, const float *raw) {
    struct eng_req *r = s->req;
    struct eng_seq **ns = realloc(r->seqs, (size_t)r->p.n * sizeof(*ns));
    if (!ns) return sw_err_set(SW_ENOMEM, "engine: out of memory");
    r->seqs = ns;
    for (int i = 1; i < r->p.n; i++) {
        struct eng_seq *c = sw_engine_seq_new(e, r, i);
        if (!c) return sw_err_set(SW_ENOMEM, "engine: out of memory");
        r->seqs[r->n_seqs++] = c;
        if (seq_reserve(e, c) < 0) return SW_ENOMEM;
        memcpy(c->blocks, s->blocks, (size_t)s->n_blocks * sizeof(int32_t));
        for (int64_t b = 0; b < s->n_blocks; b++)
            sw_kv_blocks_retain(e->bm, s->blocks[b]);
        c->n_blocks = s->n_blocks;
        memcpy(c->hashes, s->hashes, (size_t)s->n_hashed * sizeof(uint64_t));
        c->n_hashed = s->n_hashed;
        c->n_registered = s->n_registered;
        c->n_computed = s->n_computed;
        c->admitted = ++e->admit_counter;
        SW_TRY(running_push(e, c));
    }
    r->forked = 1;
    int n = r->n_seqs;
    struct eng_seq *all[256];
    for (int i = 0; i < n; i++)
        all[i] = r->seqs[i];
    for (int i = 0; i < n; i++) {
        int last = r->n_finished + 1 == r->n_seqs && all[i]->state != SEQ_FINISHED;
        SW_TRY(seq_emit(e, all[i], raw));
        if (last) break; /* the request may be gone */
    }
    return 0;
}

static void plp_store(struct sw_engine *e, struct eng_req *r, int64_t pos, const float *raw) {
    int64_t i = pos - r->plp_from;
    int k = r->p.prompt_logprobs > 0 ? r->p.prompt_logprobs : 0;
    struct sw_logprob_entry *top = r->plp_top + i * (k > 0 ? k : 1);
    sw_logprobs(raw, e->V, r->prompt[pos + 1], k, top, &r->plp[i], NULL);
}

/* Everything after the forward for sequence s. */
static int seq_after(struct sw_engine *e, struct eng_seq *s) {
    struct eng_req *r = s->req;
    int64_t prompt_new = 0;
    if (s->n_computed < r->n_prompt)
        prompt_new =
            (s->n_computed + s->n_new < r->n_prompt ? s->n_computed + s->n_new : r->n_prompt) -
            s->n_computed;
    if (s->plp_n > 0) {
        int64_t lo = s->n_computed > r->plp_from ? s->n_computed : r->plp_from;
        for (int64_t j = 0; j < s->plp_n; j++)
            plp_store(e, r, lo + j, e->logits + (s->plp_row0 + j) * e->V);
        r->plp_done += s->plp_n;
    }
    s->n_computed += s->n_new;
    s->n_new = 0;
    pthread_mutex_lock(&e->mu);
    e->st.prompt_tokens += prompt_new;
    pthread_mutex_unlock(&e->mu);
    seq_register(e, s);
    if (r->want_plp && !r->plp_delivered && r->plp_done >= r->n_prompt - 1 - r->plp_from) {
        r->plp_delivered = 1;
        struct sw_engine_event ev = {.request_id = r->id,
                                     .index = -1,
                                     .token = -1,
                                     .prompt_logprobs = r->plp,
                                     .n_prompt_logprobs = r->n_prompt - 1 - r->plp_from,
                                     .stop_token = -1};
        deliver(r, &ev);
    }
    if (s->n_computed == s->n_tokens && r->max_tokens == 0) {
        req_end(e, r, SW_FINISH_LENGTH, NULL); /* prompt only (scoring, echo) */
        return 0;
    }
    if (!s->want_sample) return 0;
    const float *raw = e->logits + s->sample_row * e->V;
    if (!r->forked && r->p.n > 1) return fork_seqs(e, s, raw);
    return seq_emit(e, s, raw);
}

/* Sample every sequence of the step that samples one id (not a fork) in parallel: over a large
 * vocabulary the argmax / filters of hundreds of rows are the host's biggest cost per step. */
static void presample(struct sw_engine *e) {
    int n = 0;
    for (int i = 0; i < e->n_sched; i++) {
        struct eng_seq *s = e->sched[i];
        s->has_pre = 0;
        if (s->want_sample && (s->req->forked || s->req->p.n == 1)) n++;
    }
    int par = (int64_t)n * e->V >= ((int64_t)1 << 21) && e->n_samplers > 1;
#pragma omp parallel for schedule(dynamic, 1) num_threads(e->n_samplers) if (par)
    for (int i = 0; i < e->n_sched; i++) {
        struct eng_seq *s = e->sched[i];
        if (!s->want_sample || !(s->req->forked || s->req->p.n == 1)) continue;
        s->pre_id = seq_sample(e, s, e->logits + s->sample_row * e->V, omp_get_thread_num());
        s->has_pre = 1;
    }
}

static void update_gauges(struct sw_engine *e) {
    pthread_mutex_lock(&e->mu);
    e->st.running = e->n_running;
    e->st.waiting = (int)e->n_waiting;
    e->st.kv_blocks_used = sw_kv_blocks_num_used(e->bm);
    e->st.kv_blocks_cached = sw_kv_blocks_num_cached_free(e->bm);
    pthread_mutex_unlock(&e->mu);
}

int sw_engine_step_locked(struct sw_engine *e) {
    int rc = intake(e);
    apply_aborts(e);
    if (rc == 0) rc = schedule(e);
    if (rc == 0 && e->n_sched > 0) {
        order_by_adapter(e);
        rc = forward(e);
        int failed_at = 0;
        if (rc == 0) {
            /* A sequence ends (and its request may be freed) only while it is processed
             * itself: callbacks merely mark aborts, applied below. So every later entry of
             * sched is still alive. */
            presample(e);
            for (failed_at = 0; failed_at < e->n_sched; failed_at++)
                if ((rc = seq_after(e, e->sched[failed_at])) < 0) break;
        }
        if (rc < 0) {
            /* the step failed: end the requests it had not finished with the error */
            char msg[512];
            snprintf(msg, sizeof msg, "%s", sw_err_msg());
            sw_warn("engine: step failed: %s", msg);
            for (int i = failed_at; i < e->n_sched; i++)
                e->sched[i]->req->aborted = 2;
            for (int64_t j = 0; j < e->n_reqs;) {
                struct eng_req *r = e->reqs[j];
                if (r->aborted == 2) {
                    r->aborted = 0;
                    req_end(e, r, SW_FINISH_ERROR, msg);
                } else {
                    j++;
                }
            }
        }
        pthread_mutex_lock(&e->mu);
        e->st.steps++;
        pthread_mutex_unlock(&e->mu);
    }
    apply_aborts(e);
    update_gauges(e);
    if (rc < 0) return rc;
    pthread_mutex_lock(&e->mu);
    int64_t left = e->n_unfinished_reqs;
    pthread_mutex_unlock(&e->mu);
    return left > INT32_MAX ? INT32_MAX : (int)left;
}
