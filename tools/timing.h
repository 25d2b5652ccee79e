/*
** timing.h -- how bench and tune time a kernel: on the host, wall-clock
** per call; on the GPU, a generated call (tools/gen.h) copied to device 0
** once and launches timed with CUDA events.
*/
#ifndef ATTNC_TIMING_H
#define ATTNC_TIMING_H

#include "attnc.h"

double timing_now_ms(void);   /* a monotonic clock */

/*
** warmup calls, then iters calls each timed alone: the median (and the
** minimum, when min_ms is not NULL). A failed run returns its status with
** err filled.
*/
attnc_status timing_host(attnc_kernel *k, const attnc_args *a, long long warmup,
                         long long iters, double *median_ms, double *min_ms, attnc_error *err);

#ifdef ATTNC_HAVE_CUDA
#include "tools/gen.h"
#include "backend/cuda/cuda.h"

enum { DEV_MAX = 5 + GEN_MAX_INPUTS };

typedef struct DevCall {
  CudaDriver *drv;
  void *ptr[DEV_MAX];
  int nptr;
  DLTensor q, k, v, o, lse, in[GEN_MAX_INPUTS];
  attnc_named_tensor named[GEN_MAX_INPUTS];
  attnc_args a;          /* the call, pointing at the device copies */
} DevCall;

/* open the driver and upload c (outputs allocated, not copied) */
attnc_status devcall_setup(DevCall *dc, GenCall *c, Diag *d);
/* warmup launches, then the median of iters launches timed with events */
attnc_status devcall_time(DevCall *dc, attnc_kernel *k, long long warmup, long long iters,
                          double *median_ms, Diag *d);
void devcall_free(DevCall *dc);
#endif

#endif
