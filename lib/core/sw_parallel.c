/* sw_parallel — thread count policy for OpenMP and OpenBLAS, and a static-chunk parallel for.
 * See sw_parallel.h for the policy; this file only reads the environment and applies it. */
#include "sw_parallel.h"

#include <cblas.h>
#include <errno.h>
#include <omp.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#define SW_PARALLEL_MAX 1024

static int parallel_override; /* set by sw_parallel_set_threads; 0 = none */

/* A positive integer from the start of s ("8" or OMP's list form "8,4"), else 0. */
static int parse_count(const char *s) {
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || (*end && *end != ',') || v < 1) return 0;
    return v > SW_PARALLEL_MAX ? SW_PARALLEL_MAX : (int)v;
}

/* CPUs we may run on: the affinity mask (what taskset/cgroups cpusets allow), which can be far
 * fewer than the machine's online CPUs in a container. */
static int cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (n > SW_PARALLEL_MAX ? SW_PARALLEL_MAX : (int)n) : 1;
}

int sw_parallel_threads(void) {
    int n = __atomic_load_n(&parallel_override, __ATOMIC_RELAXED);
    if (n > 0) return n;
    if ((n = parse_count(getenv("SW_NUM_THREADS"))) > 0) return n;
    if ((n = parse_count(getenv("OMP_NUM_THREADS"))) > 0) return n;
    return cpu_count();
}

void sw_parallel_set_threads(int n) {
    if (n > SW_PARALLEL_MAX) n = SW_PARALLEL_MAX;
    __atomic_store_n(&parallel_override, n > 0 ? n : 0, __ATOMIC_RELAXED);
    int eff = sw_parallel_threads();
    omp_set_num_threads(eff);
    openblas_set_num_threads(eff);
}

void sw_parallel_thread_init(void) {
    omp_set_num_threads(sw_parallel_threads());
}

void sw_parallel_init(void) {
    sw_parallel_set_threads(sw_parallel_threads());
}

void sw_parallel_for_grain(int64_t n, int64_t grain, sw_parallel_fn fn, void *ctx) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int64_t nt = sw_parallel_threads();
    if (n / grain < nt) nt = n / grain;
    if (nt <= 1 || omp_in_parallel()) {
        fn(ctx, 0, n);
        return;
    }
#pragma omp parallel num_threads((int)nt)
    {
        /* The runtime may give fewer threads than asked (thread limits): split by the team
         * actually running, so every index is covered exactly once. */
        int64_t team = omp_get_num_threads(), id = omp_get_thread_num();
        int64_t chunk = n / team, rem = n % team;
        int64_t begin = id * chunk + (id < rem ? id : rem);
        int64_t end = begin + chunk + (id < rem ? 1 : 0);
        if (begin < end) fn(ctx, begin, end);
    }
}

void sw_parallel_for(int64_t n, sw_parallel_fn fn, void *ctx) {
    sw_parallel_for_grain(n, 1, fn, ctx);
}
