/*
** cmd_bench.c -- `attnc bench SPEC [-D NAME=VALUE]... --target T
** [--shape B,H,S,D] [--hkv N] [--dtype D] [--seed N] [--input ...]
** [--warmup N] [--iters N] [--json]`: time a target's kernel on random
** inputs (made as verify makes them, tools/gen.h). Prints the median time
** per call, the effective GFLOP/s -- 4*D FLOPs per allowed (q, k) pair per
** head, the pairs counted exactly from the mask (gen_allowed_pairs) -- and
** the compile time.
**
** The cpu and ref targets are timed with the wall clock around each call.
** For cuda the tensors are copied to the GPU once (the target would
** otherwise stage host tensors on every call) and each call is timed with
** device events (cuda_time_ms).
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/cli.h"
#include "tools/gen.h"
#include "runtime/runtime.h"
#ifdef ATTNC_HAVE_CUDA
#include "backend/cuda/cuda.h"
#endif

enum { OPT_WARMUP = OPT_VERB, OPT_ITERS };

static const CliOpt opts[] = {
  CLI_OPT_DEFINE,
  CLI_OPT_TARGET,
  CLI_OPT_SHAPE,
  CLI_OPT_HKV,
  CLI_OPT_KVHEADS,
  CLI_OPT_DTYPE,
  CLI_OPT_SEED,
  CLI_OPT_INPUT,
  { "warmup", 0, "N", "untimed calls first (default 2)", OPT_WARMUP },
  { "iters", 0, "N", "timed calls; the median is reported (default 10)", OPT_ITERS },
  { "json", 0, NULL, "print one JSON object instead of a line", OPT_JSON },
  CLI_OPT_END
};

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef struct Timing {
  double median_ms, min_ms;   /* min_ms < 0: not measured (device events) */
  const char *clock;          /* "wall" or "cuda events" */
} Timing;

/* time calls on the host: warmup, then iters calls, each timed alone */
static int time_host(attnc_kernel *k, const attnc_args *a, attnc_target t, long long warmup,
                     long long iters, Timing *tm) {
  attnc_error err;
  double *ms = malloc((size_t)iters * sizeof *ms);
  if (!ms) return cli_error("out of memory");
  for (long long i = 0; i < warmup; i++)
    if (attnc_kernel_run(k, a, &err)) { free(ms); return cli_fail_target(&err, t); }
  for (long long i = 0; i < iters; i++) {
    double t0 = now_ms();
    if (attnc_kernel_run(k, a, &err)) { free(ms); return cli_fail_target(&err, t); }
    ms[i] = now_ms() - t0;
  }
  qsort(ms, (size_t)iters, sizeof *ms, cmp_double);
  tm->median_ms = iters % 2 ? ms[iters / 2] : (ms[iters / 2 - 1] + ms[iters / 2]) / 2;
  tm->min_ms = ms[0];
  tm->clock = "wall";
  free(ms);
  return CLI_EXIT_OK;
}

#ifdef ATTNC_HAVE_CUDA
/* ------------------------------------------------ device tensors (cuda) */

enum { DEV_MAX = 5 + GEN_MAX_INPUTS };

typedef struct DevCall {
  CudaDriver *drv;
  void *ptr[DEV_MAX];
  int nptr;
  DLTensor q, k, v, o, lse, in[GEN_MAX_INPUTS];
  attnc_named_tensor named[GEN_MAX_INPUTS];
} DevCall;

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
  out->device = (DLDevice){ kDLCUDA, 0 };
  return upload ? cuda_memcpy_htod(dc->drv, p, (const char *)h->data + h->byte_offset, n, d) : ATTNC_OK;
}

static void dev_free(DevCall *dc) {
  for (int i = 0; i < dc->nptr; i++) cuda_mem_free(dc->drv, dc->ptr[i]);
  cuda_driver_close(dc->drv);
}

typedef struct DevRun { attnc_kernel *k; const attnc_args *a; } DevRun;

static attnc_status dev_run_once(void *arg, Diag *d) {
  DevRun *r = arg;
  attnc_error err;
  attnc_status st = attnc_kernel_run(r->k, r->a, &err);
  if (st) diag_error(d, st, (Loc){ NULL, 0 }, "%s", err.message);
  return st;
}

/* copy the call to device 0, then warmup and iters launches timed with events */
static int time_cuda(attnc_kernel *k, GenCall *c, long long warmup, long long iters, Timing *tm) {
  DevCall dc;
  memset(&dc, 0, sizeof dc);
  Diag d = { 0 };
  attnc_status st = cuda_driver_open(0, &dc.drv, &d);
  const attnc_args h = gen_args(c);
  attnc_args a = h;
  if (!st) st = dev_tensor(&dc, h.q, true, &dc.q, &d);
  if (!st) st = dev_tensor(&dc, h.k, true, &dc.k, &d);
  if (!st) st = dev_tensor(&dc, h.v, true, &dc.v, &d);
  if (!st) st = dev_tensor(&dc, h.o, false, &dc.o, &d);
  if (!st) st = dev_tensor(&dc, h.lse, false, &dc.lse, &d);
  for (int i = 0; i < h.ninputs && !st; i++) {
    dc.named[i] = h.inputs[i];
    dc.named[i].tensor = &dc.in[i];
    st = dev_tensor(&dc, h.inputs[i].tensor, true, &dc.in[i], &d);
  }
  a.q = &dc.q, a.k = &dc.k, a.v = &dc.v, a.o = &dc.o, a.lse = &dc.lse, a.inputs = dc.named;
  DevRun r = { k, &a };
  for (long long i = 0; i < warmup && !st; i++) st = dev_run_once(&r, &d);
  if (!st) st = cuda_sync(dc.drv, NULL, &d);
  if (!st) st = cuda_time_ms(dc.drv, NULL, dev_run_once, &r, (int)iters, &tm->median_ms, &d);
  tm->min_ms = -1;
  tm->clock = "cuda events";
  if (dc.drv) dev_free(&dc);
  if (!st) return CLI_EXIT_OK;
  attnc_error err = { .status = st };
  snprintf(err.message, sizeof err.message, "%s", d.msg);
  return cli_fail_target(&err, ATTNC_TARGET_CUDA);
}
#endif

/* ------------------------------------------------------------- bench */

static int bench_main(const CliVerb *verb, int argc, char **argv) {
  CliParser ps;
  CliSpec cs = { 0 };
  CliInputs in = { 0 };
  CliCall cc = { .seed = 1 };
  GenCall c;
  memset(&c, 0, sizeof c);
  attnc_target target = ATTNC_TARGET_REF;
  bool json = false, target_given = false;
  long long iters = 10, warmup = 2;
  const char *val;
  attnc_ctx *ctx = NULL;
  attnc_spec *spec = NULL;
  attnc_kernel *kern = NULL;
  int rc = CLI_EXIT_OK, id;
  cli_init(&ps, verb, argc, argv);
  while (rc == CLI_EXIT_OK && (id = cli_next(&ps, &val, cli_repeatable)) != CLI_DONE) {
    switch (id) {
    case CLI_HELP: goto done;
    case CLI_ERROR: rc = CLI_EXIT_USAGE; break;
    case CLI_POSITIONAL: if (!cli_set_spec(&cs, verb, val)) rc = CLI_EXIT_USAGE; break;
    case OPT_DEFINE: if (!cli_add_define(&cs, val)) rc = CLI_EXIT_USAGE; break;
    case OPT_TARGET:
      if (!cli_parse_target(val, &target)) rc = CLI_EXIT_USAGE;
      target_given = true;
      break;
    case OPT_SHAPE: case OPT_HKV: case OPT_DTYPE: case OPT_SEED:
      if (!cli_call_option(&cc, id, val)) rc = CLI_EXIT_USAGE;
      break;
    case OPT_WARMUP: if (!cli_parse_int("--warmup", val, 0, 100000, &warmup)) rc = CLI_EXIT_USAGE; break;
    case OPT_ITERS: if (!cli_parse_int("--iters", val, 1, 100000, &iters)) rc = CLI_EXIT_USAGE; break;
    case OPT_INPUT: if (!cli_add_input(&in, val)) rc = CLI_EXIT_USAGE; break;
    case OPT_JSON: json = true; break;
    }
  }
  if (rc) goto done;
  if (!cs.path) { rc = cli_error("missing SPEC (see 'attnc bench --help')"); goto done; }
  if (!target_given) { rc = cli_error("missing --target (ref, cpu or cuda)"); goto done; }
  if (!(ctx = attnc_ctx_new())) { rc = cli_error("out of memory"); goto done; }
  if ((rc = cli_load_spec(ctx, &cs, verb, &spec)) || (rc = cli_load_inputs(&in))) goto done;
  const IrPattern *p = spec->pat;
  GenShape gs;
  if ((rc = cli_call_shape(&cc, p, target, &gs))) goto done;
  char msg[256];
  if (!gen_call_init(&c, p, &gs, in.named, in.n, msg, sizeof msg)) { rc = cli_error("%s", msg); goto done; }

  attnc_error err;
  attnc_compile_options co = {
    .target = target, .head_dim = (int)gs.D, .seq_hint = gs.S,
    .dtype = gen_api_dtype(&gs),
  };
  double t0 = now_ms();
  if (attnc_kernel_compile(ctx, spec, &co, &kern, &err)) { rc = cli_fail_target(&err, target); goto done; }
  double compile_ms = now_ms() - t0;
  attnc_kernel_info info;
  attnc_kernel_info_get(kern, &info);

  attnc_args args = gen_args(&c);
  Timing tm = { 0, -1, "wall" };
#ifdef ATTNC_HAVE_CUDA
  if (target == ATTNC_TARGET_CUDA) rc = time_cuda(kern, &c, warmup, iters, &tm);
  else
#endif
    rc = time_host(kern, &args, target, warmup, iters, &tm);
  if (rc) goto done;

  int64_t pairs = gen_allowed_pairs(p, target, &args);
  double all = (double)gs.B * (double)gs.Hq * (double)gs.S * (double)gs.S;
  double gflops = pairs >= 0 ? 4.0 * (double)gs.D * (double)pairs / (tm.median_ms * 1e-3) * 1e-9 : -1;
  if (json) {
    printf("{\"spec\": ");
    cli_json_string(stdout, cs.path);
    printf(", \"target\": \"%s\", \"dtype\": \"%s\", \"shape\": [%lld, %lld, %lld, %lld], \"hkv\": %lld, "
           "\"median_ms\": %.6g, \"min_ms\": ", attnc_target_name(target), gen_dtype_name(gs.dtype),
           (long long)gs.B, (long long)gs.Hq, (long long)gs.S, (long long)gs.D, (long long)gs.Hkv,
           tm.median_ms);
    if (tm.min_ms >= 0) printf("%.6g", tm.min_ms);
    else printf("null");
    printf(", \"iters\": %lld, \"warmup\": %lld, \"clock\": \"%s\", \"allowed_pairs\": %lld, "
           "\"density\": %.6g, \"gflops\": ", iters, warmup, tm.clock, (long long)pairs,
           pairs >= 0 ? (double)pairs / all : -1);
    if (gflops >= 0) printf("%.6g", gflops);
    else printf("null");
    printf(", \"compile_ms\": %.3f, \"backend_compile_ms\": %.3f, \"cached\": %s}\n", compile_ms,
           info.compile_ms, info.cached ? "true" : "false");
  } else {
    printf("%s: %s %s B=%lld H=%lld Hkv=%lld S=%lld D=%lld: median %.4g ms", cs.path,
           attnc_target_name(target), gen_dtype_name(gs.dtype), (long long)gs.B, (long long)gs.Hq,
           (long long)gs.Hkv, (long long)gs.S, (long long)gs.D, tm.median_ms);
    if (tm.min_ms >= 0) printf(" (min %.4g", tm.min_ms);
    else printf(" (%s", tm.clock);
    printf(", %lld iters)", iters);
    if (pairs >= 0)
      printf(", %.1f GFLOP/s effective (density %.3g)", gflops, (double)pairs / all);
    else
      printf(", GFLOP/s unknown (allowed pairs not counted)");
    printf(", compile %.1f ms%s\n", compile_ms, info.cached ? " (cached)" : "");
  }
done:
  attnc_kernel_free(kern);
  gen_call_free(&c);
  attnc_spec_free(spec);
  attnc_ctx_free(ctx);
  cli_free_inputs(&in);
  cli_free_spec(&cs);
  return rc;
}

const CliVerb cli_verb_bench = {
  "bench", "time a target's kernel on random inputs",
  "SPEC [-D NAME=VALUE]... --target T [--shape B,H,S,D] [--hkv N] [--dtype D]\n"
  "                   [--seed N] [--input NAME=FILE.npy]... [--warmup N] [--iters N] [--json]",
  "Compile SPEC for target T and time it on random inputs (made as verify makes\n"
  "them). Prints the median time per call, the effective GFLOP/s -- 4*D FLOPs\n"
  "per allowed (q, k) pair per head, the pairs counted exactly from the mask --\n"
  "and the compile time (\"cached\" when the kernel came from the cache). cpu\n"
  "and ref calls are timed with the wall clock; cuda calls with device events,\n"
  "on tensors copied to the GPU once.",
  opts, bench_main
};
