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
#include "tools/timing.h"

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

typedef struct Timing {
  double median_ms, min_ms;   /* min_ms < 0: not measured (device events) */
  const char *clock;          /* "wall" or "cuda events" */
} Timing;

/* time calls on the host: warmup, then iters calls, each timed alone */
static int time_host(attnc_kernel *k, const attnc_args *a, attnc_target t, long long warmup,
                     long long iters, Timing *tm) {
  attnc_error err;
  if (timing_host(k, a, warmup, iters, &tm->median_ms, &tm->min_ms, &err))
    return cli_fail_target(&err, t);
  tm->clock = "wall";
  return CLI_EXIT_OK;
}

#ifdef ATTNC_HAVE_CUDA
/* copy the call to device 0, then warmup and iters launches timed with events */
static int time_cuda(attnc_kernel *k, GenCall *c, long long warmup, long long iters, Timing *tm) {
  DevCall dc;
  Diag d = { 0 };
  attnc_status st = devcall_setup(&dc, c, &d);
  if (!st) st = devcall_time(&dc, k, warmup, iters, &tm->median_ms, &d);
  tm->min_ms = -1;
  tm->clock = "cuda events";
  devcall_free(&dc);
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
  const CliCommon common_opts = { .spec = &cs, .inputs = &in, .target = &target, .target_given = &target_given, .call = &cc };
  while ((id = cli_next_own(&ps, verb, &common_opts, &val, &rc)) != CLI_DONE) {
    switch (id) {
    case CLI_HELP: goto done;
    case OPT_WARMUP: if (!cli_parse_int("--warmup", val, 0, 100000, &warmup)) rc = CLI_EXIT_USAGE; break;
    case OPT_ITERS: if (!cli_parse_int("--iters", val, 1, 100000, &iters)) rc = CLI_EXIT_USAGE; break;
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
  double t0 = timing_now_ms();
  if (attnc_kernel_compile(ctx, spec, &co, &kern, &err)) { rc = cli_fail_target(&err, target); goto done; }
  double compile_ms = timing_now_ms() - t0;
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
