/*
** timing.c -- timing kernels on the host and on GPU 0 (see timing.h).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/timing.h"

double timing_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

attnc_status timing_host(attnc_kernel *k, const attnc_args *a, long long warmup,
                         long long iters, double *median_ms, double *min_ms, attnc_error *err) {
  double *ms = malloc((size_t)iters * sizeof *ms);
  if (!ms) {
    err->status = ATTNC_ERR_NOMEM;
    snprintf(err->message, sizeof err->message, "out of memory");
    return err->status;
  }
  attnc_status st = ATTNC_OK;
  for (long long i = 0; i < warmup && !st; i++) st = attnc_kernel_run(k, a, err);
  for (long long i = 0; i < iters && !st; i++) {
    double t0 = timing_now_ms();
    st = attnc_kernel_run(k, a, err);
    ms[i] = timing_now_ms() - t0;
  }
  if (!st) {
    qsort(ms, (size_t)iters, sizeof *ms, cmp_double);
    *median_ms = iters % 2 ? ms[iters / 2] : (ms[iters / 2 - 1] + ms[iters / 2]) / 2;
    if (min_ms) *min_ms = ms[0];
  }
  free(ms);
  return st;
}

#ifdef ATTNC_HAVE_CUDA

/* a compact device copy of host tensor h (uploaded when upload) */
static attnc_status dev_tensor(DevCall *dc, const DLTensor *h, bool upload, DLTensor *out, Diag *d) {
  size_t n = (size_t)(h->dtype.bits / 8);
  for (int i = 0; i < h->ndim; i++) n *= (size_t)h->shape[i];
  void *p = NULL;
  attnc_status st = cuda_mem_alloc(dc->drv, n ? n : 1, &p, d);
  if (st) return st;
  dc->ptr[dc->nptr++] = p;
  *out = *h;
  out->data = p;
  out->byte_offset = 0;
  out->strides = NULL;   /* the copy is compact */
  out->device = (DLDevice){ kDLCUDA, 0 };
  return upload ? cuda_memcpy_htod(dc->drv, p, (const char *)h->data + h->byte_offset, n, d) : ATTNC_OK;
}

attnc_status devcall_setup(DevCall *dc, GenCall *c, Diag *d) {
  memset(dc, 0, sizeof *dc);
  attnc_status st = cuda_driver_open(0, &dc->drv, d);
  const attnc_args h = gen_args(c);
  dc->a = h;
  if (!st) st = dev_tensor(dc, h.q, true, &dc->q, d);
  if (!st) st = dev_tensor(dc, h.k, true, &dc->k, d);
  if (!st) st = dev_tensor(dc, h.v, true, &dc->v, d);
  if (!st) st = dev_tensor(dc, h.o, false, &dc->o, d);
  if (!st) st = dev_tensor(dc, h.lse, false, &dc->lse, d);
  for (int i = 0; i < h.ninputs && !st; i++) {
    dc->named[i] = h.inputs[i];
    dc->named[i].tensor = &dc->in[i];
    st = dev_tensor(dc, h.inputs[i].tensor, true, &dc->in[i], d);
  }
  dc->a.q = &dc->q, dc->a.k = &dc->k, dc->a.v = &dc->v, dc->a.o = &dc->o, dc->a.lse = &dc->lse;
  dc->a.inputs = dc->named;
  return st;
}

typedef struct DevRun { attnc_kernel *k; const attnc_args *a; } DevRun;

static attnc_status run_once(void *arg, Diag *d) {
  DevRun *r = arg;
  attnc_error err;
  attnc_status st = attnc_kernel_run(r->k, r->a, &err);
  if (st) diag_error(d, st, (Loc){ NULL, 0 }, "%s", err.message);
  return st;
}

attnc_status devcall_time(DevCall *dc, attnc_kernel *k, long long warmup, long long iters,
                          double *median_ms, Diag *d) {
  DevRun r = { k, &dc->a };
  attnc_status st = ATTNC_OK;
  for (long long i = 0; i < warmup && !st; i++) st = run_once(&r, d);
  if (!st) st = cuda_sync(dc->drv, NULL, d);
  if (!st) st = cuda_time_ms(dc->drv, NULL, run_once, &r, (int)iters, median_ms, d);
  return st;
}

void devcall_free(DevCall *dc) {
  for (int i = 0; i < dc->nptr; i++) cuda_mem_free(dc->drv, dc->ptr[i]);
  if (dc->drv) cuda_driver_close(dc->drv);
  memset(dc, 0, sizeof *dc);
}
#endif
