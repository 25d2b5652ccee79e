/*
** run.c -- running a compiled CPU kernel on host DLTensors: check the
** call (args_check), translate it into the kernel's CpuArgs, and hand the
** work items to an executor (a thread pool) or run them in place.
*/
#define CPU_INTERNAL
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"

static bool is_dtype(const DLTensor *t, IrDtype dt) {
  if (dt == DT_F32) return t->dtype.code == kDLFloat && t->dtype.bits == 32 && t->dtype.lanes == 1;
  if (dt == DT_BF16) return t->dtype.code == kDLBfloat && t->dtype.bits == 16 && t->dtype.lanes == 1;
  return false;
}

/* base pointer (with byte_offset) and (b, h, s) strides of a 4-D tensor */
static attnc_status layout(const char *name, const DLTensor *t, const void **data, int64_t *st, Diag *d) {
  int64_t s[4];
  args_strides(t, s);
  if (s[3] != 1 && t->shape[3] > 1)
    return diag_error(d, ATTNC_ERR_UNSUPPORTED, (Loc){ 0 },
                      "%s has head-dim stride %lld; the cpu target needs it to be 1 (BHSD or BSHD layouts)",
                      name, (long long)s[3]);
  *data = (const char *)t->data + t->byte_offset;
  for (int i = 0; i < 3; i++) st[i] = s[i];
  return ATTNC_OK;
}

attnc_status cpu_args_from(const IrPattern *p, const CpuOptions *o, const attnc_args *args,
                           CpuArgs *ca, CpuInput *inputs, Diag *d) {
  Shape sh;
  IrTensorView *views = calloc((size_t)p->ninputs + 1, sizeof *views);
  if (!views) return diag_error(d, ATTNC_ERR_NOMEM, (Loc){ 0 }, "out of memory");
  attnc_status st = args_check(p, args, false, &sh, views, d);
  if (st) { free(views); return st; }
  memset(ca, 0, sizeof *ca);
  const char *names[4] = { "q", "k", "v", "o" };
  const DLTensor *ts[4] = { args->q, args->k, args->v, args->o };
  for (int i = 0; i < 4; i++)
    if (ts[i]->device.device_type != kDLCPU && ts[i]->device.device_type != kDLCUDAHost) {
      free(views);
      return diag_error(d, ATTNC_ERR_ARG, (Loc){ 0 }, "%s is not in host memory; the cpu target reads host tensors", names[i]);
    }
  if (!is_dtype(args->q, o->dtype)) {
    free(views);
    return diag_error(d, ATTNC_ERR_ARG, (Loc){ 0 }, "q has a dtype other than the kernel's %s", ir_dtype_name(o->dtype));
  }
  if (sh.D != o->D || sh.Dv != o->Dv) {
    free(views);
    return diag_error(d, ATTNC_ERR_ARG, (Loc){ 0 }, "the kernel was compiled for D = %d, Dv = %d (got %lld, %lld)",
                      o->D, o->Dv, (long long)sh.D, (long long)sh.Dv);
  }
  if (sh.Sq >= CPU_MAX_TOKENS || sh.Sk >= CPU_MAX_TOKENS || sh.B >= CPU_MAX_BATCH || sh.Hq >= CPU_MAX_HEADS) {
    free(views);
    return diag_error(d, ATTNC_ERR_UNSUPPORTED, (Loc){ 0 },
                      "the cpu target supports up to 2^28 tokens, 2^20 batches and 2^16 heads");
  }
  const void *data[4];
  int64_t *strides[4] = { ca->q_strides, ca->k_strides, ca->v_strides, ca->o_strides };
  for (int i = 0; i < 4; i++)
    if ((st = layout(names[i], ts[i], &data[i], strides[i], d))) { free(views); return st; }
  ca->q = data[0]; ca->k = data[1]; ca->v = data[2]; ca->o = (void *)data[3];
  if (args->lse) {
    int64_t s[3];
    args_strides(args->lse, s);
    ca->lse = (float *)((char *)args->lse->data + args->lse->byte_offset);
    for (int i = 0; i < 3; i++) ca->lse_strides[i] = s[i];
  }
  ca->B = sh.B; ca->Hq = sh.Hq; ca->Hkv = sh.Hkv; ca->Sq = sh.Sq; ca->Sk = sh.Sk;
  double scale = args->scale != 0 ? args->scale : p->scale != 0 ? p->scale : 1.0 / sqrt((double)sh.D);
  ca->scale = (float)scale;
  for (int i = 0; i < p->ninputs; i++) {
    if (views[i].dtype != p->inputs[i].dtype) {
      free(views);
      return diag_error(d, ATTNC_ERR_ARG, ir_loc(p, p->inputs[i].line), "runtime input '%s' must be %s for the cpu target",
                        p->inputs[i].name, ir_dtype_name(p->inputs[i].dtype));
    }
    inputs[i].data = views[i].data;
    for (int k = 0; k < 4; k++) {
      inputs[i].shape[k] = k < views[i].rank ? views[i].shape[k] : 1;
      inputs[i].strides[k] = k < views[i].rank ? views[i].strides[k] : 0;
    }
  }
  ca->inputs = inputs;
  free(views);
  return ATTNC_OK;
}

/* does some variant walk every kv tile (nothing derived)? */
static bool plan_has_dense(const Plan *pl) {
  for (int v = 0; v < pl->nvariants; v++)
    if (pl->variants[v].it.kind == ITER_DENSE) return true;
  return false;
}

attnc_status cpu_plan(Arena *a, const IrPattern *p, int64_t B, int64_t H, int64_t Sq, int64_t Sk,
                      int64_t D, const Schedule *user, Plan **out, Diag *d) {
  PlanOptions po = { .target = ATTNC_TARGET_CPU, .B = B, .H = H, .Sq = Sq, .Sk = Sk, .D = D };
  cpu_plan_pin(&po.pin, D);
  if (user) po.pin = *user;
  Diag first = { 0 };
  if (plan_build(a, p, &po, NULL, out, &first) == ATTNC_OK) {
    /* the cpu's tiles may hide structure the passes' own tiles expose (an
       index list over 16-token regions needs kv tiles of 16): prefer the
       passes' choice where it derives an iterator the pinned plan could not */
    if (user || !plan_has_dense(*out)) return ATTNC_OK;
    Plan *pinned = *out, *own = NULL;
    PlanOptions po2 = po;
    memset(&po2.pin, 0, sizeof po2.pin);
    Diag ignore = { 0 };
    *out = plan_build(a, p, &po2, NULL, &own, &ignore) == ATTNC_OK && !plan_has_dense(own) ? own : pinned;
    return ATTNC_OK;
  }
  memset(&po.pin, 0, sizeof po.pin);
  Diag second = { 0 };
  if (plan_build(a, p, &po, NULL, out, &second) == ATTNC_OK) return ATTNC_OK;
  /* no schedule: the kernel walks every kv tile through the mask (correct,
     not sparse); a spec error is still an error */
  if (second.status == ATTNC_ERR_SPEC || second.status == ATTNC_ERR_NOMEM) {
    *d = second;
    return second.status;
  }
  *out = NULL;
  return ATTNC_OK;
}

typedef struct Job { CpuWorkFn work; const CpuArgs *a; } Job;

static void job_run(void *arg, int64_t begin, int64_t end) {
  Job *j = arg;
  j->work(j->a, begin, end);
}

attnc_status cpu_run(const CpuKernel *k, const IrPattern *p, const attnc_args *args,
                     const CpuExecutor *ex, Diag *d) {
  CpuArgs ca;
  CpuInput *inputs = calloc((size_t)p->ninputs + 1, sizeof *inputs);
  if (!inputs) return diag_error(d, ATTNC_ERR_NOMEM, (Loc){ 0 }, "out of memory");
  attnc_status st = cpu_args_from(p, cpu_kernel_options(k), args, &ca, inputs, d);
  if (!st) {
    int64_t n = cpu_kernel_nwork(k)(&ca);
    Job j = { cpu_kernel_work(k), &ca };
    if (ex && ex->parallel_for && n > 1) ex->parallel_for(ex->self, n, job_run, &j);
    else if (n > 0) j.work(&ca, 0, n);
  }
  free(inputs);
  return st;
}
