/*
** pool.h -- a thread pool for CPU kernels: a parallel-for over work items
** that threads claim dynamically in small chunks, so that items of unequal
** cost (causal rows, sparse patterns) balance across cores.
**
** A pool belongs to one owner (a context); there is no global state. One
** pool_for runs at a time per pool (concurrent callers queue on a mutex);
** the calling thread takes part in the work.
*/
#ifndef ATTNC_POOL_H
#define ATTNC_POOL_H

#include <stdint.h>

typedef struct Pool Pool;

/*
** nthreads <= 0: $ATTNC_NUM_THREADS if set, else the online CPUs. Returns
** NULL when out of memory or no thread could start (run single-threaded).
*/
Pool *pool_new(int nthreads);
void pool_free(Pool *p);
int pool_size(const Pool *p);      /* threads taking part, caller included */

/*
** Call fn(arg, begin, end) over disjoint ranges covering [0, n), from the
** pool's threads and the caller, and return when all calls have returned.
** chunk <= 0 picks about n / (8 * threads) (at least 1).
*/
typedef void (*PoolFn)(void *arg, int64_t begin, int64_t end);
void pool_for(Pool *p, int64_t n, int64_t chunk, PoolFn fn, void *arg);

/* pool_for with the default chunk, in the shape CpuExecutor wants */
void pool_parallel_for(void *pool, int64_t n, PoolFn fn, void *arg);

#endif
