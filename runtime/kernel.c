/*
** kernel.c -- attnc_kernel: a spec compiled for a target, specialised per
** (dtype, D, Dv) on demand. The target's TargetOps do the work; this file
** checks arguments, finds or builds the specialisation, and turns Diags
** into attnc_errors.
*/
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/runtime.h"
#include "runtime/tunedb.h"

/* the reference executor as a target: nothing to build */
static attnc_status ref_build(attnc_kernel *k, const KernelKey *key, void **impl, Diag *d) {
  *impl = NULL;
  return ATTNC_OK;
}

static attnc_status ref_exec(attnc_kernel *k, void *impl, const attnc_args *args,
                             const Shape *shape, const IrTensorView *views, Diag *d) {
  return ref_run(k->spec->pat, args, d);
}

static void ref_release(void *impl) {}

const TargetOps ref_target_ops = { "ref", ref_build, ref_exec, ref_release, NULL };

static IrDtype dtype_of(attnc_dtype t) {
  switch (t) {
  case ATTNC_DTYPE_F16: return DT_F16;
  case ATTNC_DTYPE_BF16: return DT_BF16;
  case ATTNC_DTYPE_F64: return DT_F64;
  default: return DT_F32;
  }
}

static IrDtype dtype_of_tensor(const DLTensor *t) {
  if (t->dtype.code == kDLBfloat) return DT_BF16;
  if (t->dtype.code == kDLFloat && t->dtype.bits == 16) return DT_F16;
  if (t->dtype.code == kDLFloat && t->dtype.bits == 64) return DT_F64;
  return DT_F32;
}

int attnc_target_available(attnc_target t) { return target_ops(t) != NULL; }

/* field by field: the struct has padding that memcmp would read */
static bool key_equal(const KernelKey *a, const KernelKey *b) {
  return a->dtype == b->dtype && a->D == b->D && a->Dv == b->Dv;
}

/* find the specialisation for key, building it under the kernel's lock */
static attnc_status specialise(attnc_kernel *k, const KernelKey *key, void **impl, Diag *d) {
  attnc_status st = ATTNC_OK;
  pthread_mutex_lock(&k->lock);
  for (int i = 0; i < k->nspecs; i++)
    if (key_equal(&k->specs[i].key, key)) {
      *impl = k->specs[i].impl;
      pthread_mutex_unlock(&k->lock);
      return ATTNC_OK;
    }
  if (k->nspecs == KERNEL_MAX_SPECS) {
    st = diag_error(d, ATTNC_ERR_UNSUPPORTED, (Loc){ 0 },
                    "kernel already has %d specialisations (dtype, head dim): compile "
                    "another kernel for more", KERNEL_MAX_SPECS);
  } else {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    st = k->ops->build(k, key, impl, d);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* the whole build, cache hits included (plan, emit, lookup, load) */
    k->info.compile_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-6;
    if (st == ATTNC_OK) {
      k->specs[k->nspecs].key = *key;
      k->specs[k->nspecs].impl = *impl;
      k->nspecs++;
      k->info.nspecialisations = k->nspecs;
    }
  }
  pthread_mutex_unlock(&k->lock);
  return st;
}

static attnc_status fail(attnc_error *err, const Diag *d) {
  diag_to_error(d, err);
  return d->status;
}

attnc_status attnc_kernel_compile(attnc_ctx *ctx, const attnc_spec *spec,
                                  const attnc_compile_options *opts, attnc_kernel **out,
                                  attnc_error *err) {
  Diag d = { 0 };
  if (out) *out = NULL;
  if (!ctx || !spec || !opts || !out) {
    diag_error(&d, ATTNC_ERR_ARG, (Loc){ 0 },
               "attnc_kernel_compile: ctx, spec, opts and out must not be NULL");
    return fail(err, &d);
  }
  const TargetOps *ops = target_ops(opts->target);
  if (!ops) {
    diag_error(&d, ATTNC_ERR_UNSUPPORTED, (Loc){ 0 },
               "target '%s' is not available in this build", attnc_target_name(opts->target));
    return fail(err, &d);
  }
  attnc_kernel *k = calloc(1, sizeof *k);
  if (!k) {
    diag_error(&d, ATTNC_ERR_NOMEM, (Loc){ 0 }, "out of memory");
    return fail(err, &d);
  }
  k->ctx = ctx;
  k->spec = spec;
  k->opts = *opts;
  if (opts->arch) {
    if (strlen(opts->arch) >= sizeof k->arch_buf) {
      free(k);
      diag_error(&d, ATTNC_ERR_ARG, (Loc){ 0 }, "arch name too long: '%.40s'", opts->arch);
      return fail(err, &d);
    }
    strcpy(k->arch_buf, opts->arch);
    k->opts.arch = k->arch_buf;
  }
  k->ops = ops;
  pthread_mutex_init(&k->lock, NULL);
  /* no schedule given: the tuning database's for this pattern, if any */
  const attnc_schedule *us = &opts->schedule;
  if (us->block_m || us->block_n || us->warps || us->stages || us->order)
    k->info.schedule_source = ATTNC_SCHEDULE_CALLER;
  else if (opts->target != ATTNC_TARGET_REF &&
           tunedb_lookup(ir_hash(spec->pat), opts->target, k->opts.arch, 0, opts->seq_hint,
                         opts->head_dim, &k->opts.schedule, k->info.tune_db, sizeof k->info.tune_db,
                         NULL))
    k->info.schedule_source = ATTNC_SCHEDULE_TUNED;
  k->info.schedule = k->opts.schedule;
  if (opts->dtype != ATTNC_DTYPE_AUTO && opts->head_dim > 0) {
    KernelKey key = { dtype_of(opts->dtype), opts->head_dim,
                      opts->head_dim_v > 0 ? opts->head_dim_v : opts->head_dim };
    void *impl;
    if (specialise(k, &key, &impl, &d) != ATTNC_OK) {
      attnc_kernel_free(k);
      return fail(err, &d);
    }
  }
  *out = k;
  if (err) { err->status = ATTNC_OK; err->message[0] = 0; }
  return ATTNC_OK;
}

attnc_status attnc_kernel_run(attnc_kernel *k, const attnc_args *args, attnc_error *err) {
  Diag d = { 0 };
  if (!k || !args) {
    diag_error(&d, ATTNC_ERR_ARG, (Loc){ 0 }, "attnc_kernel_run: kernel and args must not be NULL");
    return fail(err, &d);
  }
  const IrPattern *p = k->spec->pat;
  Shape shape;
  IrTensorView views[32];
  if (p->ninputs > 32) {
    diag_error(&d, ATTNC_ERR_UNSUPPORTED, ir_loc(p, 0), "more than 32 runtime inputs");
    return fail(err, &d);
  }
  bool host_only = k->ops == &ref_target_ops;
  if (args_check(p, args, host_only, &shape, views, &d) != ATTNC_OK) return fail(err, &d);
  KernelKey key = { dtype_of_tensor(args->q), shape.D, shape.Dv };
  void *impl;
  if (specialise(k, &key, &impl, &d) != ATTNC_OK) return fail(err, &d);
  if (k->ops->run(k, impl, args, &shape, views, &d) != ATTNC_OK) return fail(err, &d);
  if (err) { err->status = ATTNC_OK; err->message[0] = 0; }
  return ATTNC_OK;
}

attnc_status attnc_kernel_artifact(attnc_kernel *k, const char *kind, void **data, size_t *len,
                                   attnc_error *err) {
  Diag d = { 0 };
  if (data) *data = NULL;
  if (len) *len = 0;
  if (!k || !kind || !data || !len) {
    diag_error(&d, ATTNC_ERR_ARG, (Loc){ 0 }, "attnc_kernel_artifact: NULL argument");
    return fail(err, &d);
  }
  if (!k->ops->artifact) {
    diag_error(&d, ATTNC_ERR_UNSUPPORTED, (Loc){ 0 }, "target '%s' emits no '%s'", k->ops->name, kind);
    return fail(err, &d);
  }
  if (k->nspecs == 0) {
    diag_error(&d, ATTNC_ERR_ARG, (Loc){ 0 },
               "the kernel has no specialisation yet: compile with dtype and head_dim");
    return fail(err, &d);
  }
  if (k->ops->artifact(k->specs[0].impl, kind, data, len, &d) != ATTNC_OK) return fail(err, &d);
  if (err) { err->status = ATTNC_OK; err->message[0] = 0; }
  return ATTNC_OK;
}

void attnc_kernel_info_get(const attnc_kernel *k, attnc_kernel_info *info) {
  if (!k || !info) return;
  pthread_mutex_lock((pthread_mutex_t *)&k->lock);
  *info = k->info;
  pthread_mutex_unlock((pthread_mutex_t *)&k->lock);
}

void attnc_kernel_free(attnc_kernel *k) {
  if (!k) return;
  for (int i = 0; i < k->nspecs; i++) k->ops->release(k->specs[i].impl);
  pthread_mutex_destroy(&k->lock);
  free(k);
}
