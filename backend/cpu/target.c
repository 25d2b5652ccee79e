/*
** target.c -- the cpu target behind attnc_kernel (runtime/runtime.h
** TargetOps): a specialisation per (dtype, D, Dv) is a plan for the
** pattern, a JIT-compiled kernel and a thread pool; running one checks
** the call and splits its work items over the pool.
*/
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "runtime/cache.h"
#include "runtime/pool.h"
#include "runtime/runtime.h"

/* the context's kernel cache as a CpuCache (objects by cpu_cache_key) */
static bool cache_get(void *ud, const void *key, size_t keylen, void **data, size_t *len) {
  return kcache_get(ud, key, keylen, data, len) != KCACHE_MISS;
}

static void cache_put(void *ud, const void *key, size_t keylen, const void *data, size_t len) {
  kcache_put(ud, key, keylen, data, len);
}


typedef struct CpuImpl {
  CpuKernel *kern;
  Pool *pool;               /* per specialisation until the context owns one */
  KCache *cache;            /* memory + disk ($ATTNC_CACHE_DIR), as the cuda target */
  const IrPattern *pat;     /* for artifacts: the pattern, the plan (in arena) */
  Arena arena;
  CpuOptions o;
} CpuImpl;

static attnc_status cpu_build(attnc_kernel *k, const KernelKey *key, void **impl, Diag *d) {
  const IrPattern *p = k->spec->pat;
  const attnc_schedule *us = &k->opts.schedule;
  Schedule pin = { 0 }, *user = NULL;
  if (us->block_m > 0 || us->block_n > 0) {
    cpu_plan_pin(&pin, key->D);
    if (us->block_m > 0) pin.bm = us->block_m;
    if (us->block_n > 0) pin.bn = us->block_n;
    if (us->order == 1) { pin.pin_order = true; pin.raster = true; }
    user = &pin;
  }
  CpuImpl *ci = calloc(1, sizeof *ci);
  if (!ci) return diag_error(d, ATTNC_ERR_NOMEM, (Loc){ 0 }, "out of memory");
  arena_init(&ci->arena);
  Plan *plan = NULL;
  int64_t hint = k->opts.seq_hint;
  attnc_status st = cpu_plan(&ci->arena, p, 0, 0, hint, hint, key->D, user, &plan, d);
  if (!st) {
    ci->cache = kcache_new(NULL);       /* NULL (no memory): compile without */
    CpuCache cc = { cache_get, cache_put, ci->cache };
    ci->o = (CpuOptions){ .dtype = key->dtype, .D = (int)key->D, .Dv = (int)key->Dv, .plan = plan,
                          .cache = ci->cache ? &cc : NULL };
    st = cpu_compile(p, &ci->o, &ci->kern, d);
    ci->o.cache = NULL;
  }
  if (st) {
    kcache_free(ci->cache);
    arena_free(&ci->arena);
    free(ci);
    return st;
  }
  ci->pat = p;
  CpuKernel *kern = ci->kern;
  ci->pool = pool_new(0);           /* NULL: run on the calling thread */
  k->info.cached = cpu_kernel_cached(kern);
  *impl = ci;
  return ATTNC_OK;
}

static attnc_status cpu_exec(attnc_kernel *k, void *impl, const attnc_args *args, const Shape *shape,
                             const IrTensorView *views, Diag *d) {
  CpuImpl *ci = impl;
  CpuExecutor ex = { pool_parallel_for, ci->pool };
  return cpu_run(ci->kern, k->spec->pat, args, ci->pool ? &ex : NULL, d);
}

static void cpu_release(void *impl) {
  CpuImpl *ci = impl;
  if (!ci) return;
  cpu_kernel_free(ci->kern);
  pool_free(ci->pool);
  kcache_free(ci->cache);
  arena_free(&ci->arena);
  free(ci);
}

/* `attnc compile --target cpu --emit obj|asm|llvm|h`: the same kernel as a file */
static attnc_status cpu_artifact(void *impl, const char *kind, void **data, size_t *len, Diag *d) {
  CpuImpl *ci = impl;
  return cpu_emit_mem(ci->pat, &ci->o, kind, data, len, d);
}

const TargetOps cpu_target_ops = { "cpu", cpu_build, cpu_exec, cpu_release, cpu_artifact };
