/*
** target.c -- the cpu target behind attnc_kernel (runtime/runtime.h
** TargetOps): a specialisation per (dtype, D, Dv) is a plan for the
** pattern, a JIT-compiled kernel and a thread pool; running one checks
** the call and splits its work items over the pool.
*/
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "runtime/pool.h"
#include "runtime/runtime.h"

typedef struct CpuImpl {
  CpuKernel *kern;
  Pool *pool;               /* per specialisation until the context owns one */
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
  Arena a;
  arena_init(&a);
  Plan *plan = NULL;
  int64_t hint = k->opts.seq_hint;
  attnc_status st = cpu_plan(&a, p, 0, 0, hint, hint, key->D, user, &plan, d);
  CpuKernel *kern = NULL;
  if (!st) {
    CpuOptions o = { .dtype = key->dtype, .D = (int)key->D, .Dv = (int)key->Dv, .plan = plan };
    st = cpu_compile(p, &o, &kern, d);
  }
  arena_free(&a);
  if (st) return st;
  CpuImpl *ci = calloc(1, sizeof *ci);
  if (!ci) {
    cpu_kernel_free(kern);
    return diag_error(d, ATTNC_ERR_NOMEM, (Loc){ 0 }, "out of memory");
  }
  ci->kern = kern;
  ci->pool = pool_new(0);           /* NULL: run on the calling thread */
  k->info.compile_ms = cpu_kernel_compile_ms(kern);
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
  free(ci);
}

const TargetOps cpu_target_ops = { "cpu", cpu_build, cpu_exec, cpu_release };
