/* test_parallel — thread count policy (SW_NUM_THREADS > OMP_NUM_THREADS > CPUs), that the
 * count reaches both OpenMP and OpenBLAS, and that sw_parallel_for covers every index once. */
#include "sw_parallel.h"
#include "tap.h"

#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

struct cover {
    int *hits;
    int calls;
};

static void mark(void *ctx, int64_t begin, int64_t end) {
    struct cover *c = ctx;
    for (int64_t i = begin; i < end; i++)
        __atomic_add_fetch(&c->hits[i], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&c->calls, 1, __ATOMIC_RELAXED);
}

static int covered_once(int64_t n, int threads, int *calls, int64_t grain) {
    struct cover c = {calloc((size_t)n + 1, sizeof(int)), 0};
    sw_parallel_set_threads(threads);
    sw_parallel_for_grain(n, grain, mark, &c);
    int ok = 1;
    for (int64_t i = 0; i < n; i++)
        ok &= c.hits[i] == 1;
    *calls = c.calls;
    free(c.hits);
    return ok;
}

static void nested_body(void *ctx, int64_t begin, int64_t end) {
    (void)begin, (void)end;
    int *inner_calls = ctx;
    struct cover c = {calloc(100, sizeof(int)), 0};
    sw_parallel_for(100, mark, &c); /* inside a team: must run inline, one call */
    __atomic_add_fetch(inner_calls, c.calls, __ATOMIC_RELAXED);
    free(c.hits);
}

static void *thread_count(void *arg) {
    sw_parallel_thread_init();
    *(int *)arg = omp_get_max_threads();
    return NULL;
}

int main(void) {
    unsetenv("SW_NUM_THREADS");
    unsetenv("OMP_NUM_THREADS");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int def = sw_parallel_threads();
    OK(def >= 1 && def <= cpus, "default is the CPUs we may use (%d of %ld online)", def, cpus);
    setenv("OMP_NUM_THREADS", "3,2", 1);
    IS_INT(sw_parallel_threads(), 3, "OMP_NUM_THREADS (first entry of a list)");
    setenv("SW_NUM_THREADS", "5", 1);
    IS_INT(sw_parallel_threads(), 5, "SW_NUM_THREADS wins over OMP_NUM_THREADS");
    setenv("SW_NUM_THREADS", "zero", 1);
    IS_INT(sw_parallel_threads(), 3, "an invalid SW_NUM_THREADS is ignored");
    setenv("SW_NUM_THREADS", "-2", 1);
    IS_INT(sw_parallel_threads(), 3, "a negative SW_NUM_THREADS is ignored");
    unsetenv("SW_NUM_THREADS");
    unsetenv("OMP_NUM_THREADS");

    sw_parallel_set_threads(4);
    IS_INT(sw_parallel_threads(), 4, "set_threads overrides the environment");
    IS_INT(omp_get_max_threads(), 4, "OpenMP gets the count");
    IS_INT(openblas_get_num_threads(), 4, "OpenBLAS gets the count");
    sw_parallel_set_threads(0);
    IS_INT(sw_parallel_threads(), def, "set_threads(0) returns to the policy");
    setenv("SW_NUM_THREADS", "2", 1);
    sw_parallel_init();
    OK(omp_get_max_threads() == 2 && openblas_get_num_threads() == 2,
       "init applies SW_NUM_THREADS");
    /* a pthread (the engine's loop) starts from libgomp's initial count until it applies ours */
    sw_parallel_set_threads(5);
    pthread_t th;
    int seen = 0;
    int made = pthread_create(&th, NULL, thread_count, &seen) == 0;
    if (made) pthread_join(th, NULL);
    OK(made && seen == 5, "thread_init gives a new thread the count in effect (%d)", seen);
    sw_parallel_set_threads(0);
    unsetenv("SW_NUM_THREADS");

    int calls, ok = 1;
    static const int64_t ns[] = {1, 2, 3, 7, 64, 1000, 100003};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
        for (int t = 1; t <= 5; t++) {
            int c1 = covered_once(ns[i], t, &calls, 1);
            int64_t want = ns[i] < t ? ns[i] : t;
            if (!c1 || calls != want) {
                ok = 0;
                DIAG("n=%lld threads=%d covered=%d calls=%d", (long long)ns[i], t, c1, calls);
            }
        }
    OK(ok, "every index is covered exactly once, one chunk per thread");
    OK(covered_once(1000, 4, &calls, 400) && calls == 2, "grain 400 over 1000 uses 2 chunks (%d)",
       calls);
    OK(covered_once(1000, 4, &calls, 5000) && calls == 1, "grain larger than n runs inline");
    OK(covered_once(0, 4, &calls, 1) && calls == 0, "n = 0 calls nothing");

    sw_parallel_set_threads(2);
    int inner = 0;
    sw_parallel_for(2, nested_body, &inner);
    IS_INT(inner, 2, "nested sw_parallel_for runs inline (one call per outer chunk)");
    return tap_done();
}
