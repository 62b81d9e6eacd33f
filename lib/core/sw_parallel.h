/* sw_parallel — how many threads CPU work uses, and a static-chunk parallel for.
 *
 * One policy for OpenMP and OpenBLAS together: SW_NUM_THREADS, else OMP_NUM_THREADS, else the
 * CPUs this process may run on. sw_parallel_set_threads() applies a count to both runtimes, so
 * a GEMM in OpenBLAS and an OpenMP loop around it do not each start one thread per core
 * (oversubscription makes both slower). Tools call sw_parallel_init() once at start.
 * OpenBLAS is the pthread build here: call BLAS from outside OpenMP parallel regions (or with
 * one BLAS thread), never from inside sw_parallel_for's callback with several BLAS threads. */
#ifndef SW_PARALLEL_H
#define SW_PARALLEL_H

#include <stdint.h>

/* The thread count in effect: the value given to sw_parallel_set_threads() if any, else
 * SW_NUM_THREADS, else OMP_NUM_THREADS (its first entry), else the number of CPUs in this
 * process's affinity mask (online CPUs where that is unknown). Always >= 1. Invalid
 * environment values are ignored. */
int sw_parallel_threads(void);

/* Use n threads for OpenMP regions started from this thread and for OpenBLAS. n <= 0 drops an
 * earlier override and applies the environment policy again. */
void sw_parallel_set_threads(int n);

/* Apply the policy once: sw_parallel_set_threads(sw_parallel_threads()). */
void sw_parallel_init(void);

/* Apply the count to OpenMP regions started from the calling thread: a thread made with
 * pthread_create starts from libgomp's initial setting (OMP_NUM_THREADS or every CPU), not from
 * what the main thread set, so a worker thread that runs kernels calls this first. */
void sw_parallel_thread_init(void);

/* Body of a parallel loop: handles indices [begin, end) with the caller's ctx. */
typedef void (*sw_parallel_fn)(void *ctx, int64_t begin, int64_t end);

/* Split [0, n) into one contiguous chunk per thread (sizes differ by at most one) and call
 * fn(ctx, begin, end) for each, in parallel. Runs inline when n <= 1, with one thread, or when
 * already inside a parallel region (no nested teams). fn must be safe to run concurrently. */
void sw_parallel_for(int64_t n, sw_parallel_fn fn, void *ctx);

/* Like sw_parallel_for, but with at least grain indices per chunk: small loops use fewer
 * threads (or none) so the fork/join does not cost more than the work. */
void sw_parallel_for_grain(int64_t n, int64_t grain, sw_parallel_fn fn, void *ctx);

#endif
