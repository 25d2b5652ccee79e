/*
** pool.c -- the CPU thread pool (see pool.h).
**
** Workers sleep on a condition variable until a job's generation number
** changes; then every participant (workers and the caller) claims chunks
** of [0, n) from an atomic counter until none are left, and the last one
** to finish signals the caller. A mutex serialises jobs on one pool.
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "runtime/pool.h"

struct Pool {
  pthread_mutex_t run;        /* one pool_for at a time */
  pthread_mutex_t lock;       /* guards gen, stop, active and the job */
  pthread_cond_t wake, done;
  pthread_t *threads;
  int nthreads;               /* workers (the caller is extra) */
  uint64_t gen;
  bool stop;
  int active;                 /* workers still inside the current job */
  /* the job */
  PoolFn fn;
  void *arg;
  int64_t n, chunk;
  _Atomic int64_t next;
};

/* claim chunks until the range is used up */
static void work(Pool *p) {
  for (;;) {
    int64_t b = atomic_fetch_add_explicit(&p->next, p->chunk, memory_order_relaxed);
    if (b >= p->n) return;
    int64_t e = b + p->chunk < p->n ? b + p->chunk : p->n;
    p->fn(p->arg, b, e);
  }
}

static void *worker(void *arg) {
  Pool *p = arg;
  uint64_t seen = 0;
  pthread_mutex_lock(&p->lock);
  for (;;) {
    while (!p->stop && p->gen == seen) pthread_cond_wait(&p->wake, &p->lock);
    if (p->stop) break;
    seen = p->gen;
    pthread_mutex_unlock(&p->lock);
    work(p);
    pthread_mutex_lock(&p->lock);
    if (--p->active == 0) pthread_cond_signal(&p->done);
  }
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

static int default_threads(void) {
  const char *e = getenv("ATTNC_NUM_THREADS");
  if (e && atoi(e) > 0) return atoi(e);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

Pool *pool_new(int nthreads) {
  if (nthreads <= 0) nthreads = default_threads();
  Pool *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  pthread_mutex_init(&p->run, NULL);
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done, NULL);
  atomic_init(&p->next, 0);
  int workers = nthreads - 1;
  p->threads = workers > 0 ? calloc((size_t)workers, sizeof *p->threads) : NULL;
  for (int i = 0; i < workers && p->threads; i++) {
    if (pthread_create(&p->threads[i], NULL, worker, p) != 0) break;
    p->nthreads++;
  }
  return p;
}

void pool_free(Pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->lock);
  p->stop = true;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->lock);
  for (int i = 0; i < p->nthreads; i++) pthread_join(p->threads[i], NULL);
  free(p->threads);
  pthread_mutex_destroy(&p->run);
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->wake);
  pthread_cond_destroy(&p->done);
  free(p);
}

int pool_size(const Pool *p) { return p ? p->nthreads + 1 : 1; }

void pool_for(Pool *p, int64_t n, int64_t chunk, PoolFn fn, void *arg) {
  if (n <= 0) return;
  int threads = pool_size(p);
  if (chunk <= 0) {
    chunk = n / (8 * (int64_t)threads);
    if (chunk < 1) chunk = 1;
  }
  if (!p || p->nthreads == 0 || n <= chunk) {
    fn(arg, 0, n);
    return;
  }
  pthread_mutex_lock(&p->run);
  pthread_mutex_lock(&p->lock);
  p->fn = fn;
  p->arg = arg;
  p->n = n;
  p->chunk = chunk;
  atomic_store(&p->next, 0);
  p->active = p->nthreads;
  p->gen++;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->lock);
  work(p);
  pthread_mutex_lock(&p->lock);
  while (p->active > 0) pthread_cond_wait(&p->done, &p->lock);
  pthread_mutex_unlock(&p->lock);
  pthread_mutex_unlock(&p->run);
}

void pool_parallel_for(void *pool, int64_t n, PoolFn fn, void *arg) {
  pool_for(pool, n, 0, fn, arg);
}
