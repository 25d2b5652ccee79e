/*
** cmd_bench.c -- `attnc bench SPEC [-D NAME=VALUE]... --target T
** [--shape B,H,S,D] [--kv-heads N] [--dtype D] [--reps N] [--json]`: time
** a target's kernel on random inputs. Prints the best and mean time per
** call, the compile time, and the effective GFLOP/s: 4*D FLOPs per
** allowed (q, k) pair per head, with the allowed pairs counted exactly
** (the mask evaluated inside the tiles a plan visits).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/cli.h"
#include "runtime/runtime.h"
#include "passes/passes.h"

enum { OPT_KVHEADS = OPT_VERB, OPT_REPS, OPT_WARMUP };

/* the call cmd_verify.c builds (see there) */
typedef struct VbCall VbCall;
VbCall *vb_new(void);
bool vb_option(VbCall *c, int id, const char *val, bool *shape_given);
int vb_prepare(VbCall *c, const attnc_spec *spec, const CliInputs *given, bool shape_given);
void vb_describe(const VbCall *c, int64_t *B, int64_t *Hq, int64_t *Hkv, int64_t *S, int64_t *D, IrDtype *dt);
attnc_args vb_args(VbCall *c);
void vb_delete(VbCall *c);

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
** Allowed (b, h, q, k) pairs: the plan's iterator, with the mask evaluated
** inside visited partial tiles (exact, since no allowed pair is skipped).
** -1 when no plan can be built.
*/
static int64_t allowed_pairs(const attnc_spec *spec, attnc_target t, int64_t B, int64_t H, int64_t S,
                             int64_t D, const attnc_args *args) {
  Arena a;
  arena_init(&a);
  Diag d = { 0 };
  Plan *pl = NULL;
  PlanOptions po = { .target = t, .B = B, .H = H, .Sq = S, .Sk = S, .D = D };
  int64_t n = -1;
  IrTensorView views[32];
  Shape sh;
  const IrPattern *p = spec->pat;
  if (p->ninputs <= 32 && args_check(p, args, false, &sh, views, &d) == ATTNC_OK &&
      plan_build(&a, p, &po, NULL, &pl, &d) == ATTNC_OK) {
    PlanRun r = { .B = B, .H = H, .Sq = S, .Sk = S, .inputs = views };
    int64_t mb = plan_metadata_bytes(pl, &r);
    int32_t *meta = mb > 0 ? malloc((size_t)mb) : NULL;
    if (mb <= 0 || (meta && plan_prepass(pl, &r, meta, &d) == ATTNC_OK)) {
      r.meta = meta;
      PlanStats st;
      if (plan_stats(pl, &r, COUNT_VISITED, &st, &d) == ATTNC_OK) n = st.pairs_allowed;
    }
    free(meta);
  }
  arena_free(&a);
  return n;
}

static const CliOpt opts[] = {
  CLI_OPT_DEFINE,
  CLI_OPT_TARGET,
  { "shape", 0, "B,H,S,D", "batch, query heads, tokens, head dim (default 1,2,200,64; S = the grid's tokens)", OPT_SHAPE },
  { "kv-heads", 0, "N", "key/value heads (GQA; default H)", OPT_KVHEADS },
  { "dtype", 0, "D", "f32 (default), bf16 or f16", OPT_DTYPE },
  { "seed", 0, "N", "random seed (default 1)", OPT_SEED },
  { "reps", 0, "N", "timed calls (default 10)", OPT_REPS },
  { "warmup", 0, "N", "untimed calls first (default 2)", OPT_WARMUP },
  CLI_OPT_INPUT,
  { "json", 0, NULL, "print one JSON object", OPT_JSON },
  CLI_OPT_END
};

static int bench_main(const CliVerb *verb, int argc, char **argv) {
  CliParser ps;
  CliSpec cs = { 0 };
  CliInputs in = { 0 };
  VbCall *c = vb_new();
  attnc_target target = ATTNC_TARGET_CPU;
  bool shape = false, json = false, target_given = false;
  long long reps = 10, warmup = 2;
  const char *val;
  attnc_ctx *ctx = NULL;
  attnc_spec *spec = NULL;
  attnc_kernel *kern = NULL;
  int rc = c ? CLI_EXIT_OK : cli_error("out of memory"), id;
  cli_init(&ps, verb, argc, argv);
  while (rc == CLI_EXIT_OK && (id = cli_next(&ps, &val, cli_repeatable)) != CLI_DONE) {
    switch (id) {
    case CLI_HELP: goto done;
    case CLI_ERROR: rc = CLI_EXIT_USAGE; break;
    case CLI_POSITIONAL: if (!cli_set_spec(&cs, verb, val)) rc = CLI_EXIT_USAGE; break;
    case OPT_DEFINE: if (!cli_add_define(&cs, val)) rc = CLI_EXIT_USAGE; break;
    case OPT_TARGET: if (!cli_parse_target(val, &target)) rc = CLI_EXIT_USAGE; target_given = true; break;
    case OPT_SHAPE: case OPT_KVHEADS: case OPT_DTYPE: case OPT_SEED:
      if (!vb_option(c, id, val, &shape)) rc = CLI_EXIT_USAGE;
      break;
    case OPT_REPS: if (!cli_parse_int("--reps", val, 1, 1000000, &reps)) rc = CLI_EXIT_USAGE; break;
    case OPT_WARMUP: if (!cli_parse_int("--warmup", val, 0, 1000000, &warmup)) rc = CLI_EXIT_USAGE; break;
    case OPT_INPUT: if (!cli_add_input(&in, val)) rc = CLI_EXIT_USAGE; break;
    case OPT_JSON: json = true; break;
    }
  }
  if (rc) goto done;
  if (!cs.path) { rc = cli_error("missing SPEC (see 'attnc bench --help')"); goto done; }
  if (!target_given) { rc = cli_error("missing --target (cpu or cuda)"); goto done; }
  if (!(ctx = attnc_ctx_new())) { rc = cli_error("out of memory"); goto done; }
  if ((rc = cli_load_spec(ctx, &cs, verb, &spec)) || (rc = cli_load_inputs(&in)) ||
      (rc = vb_prepare(c, spec, &in, shape)))
    goto done;
  int64_t B, Hq, Hkv, S, D;
  IrDtype dt;
  vb_describe(c, &B, &Hq, &Hkv, &S, &D, &dt);
  attnc_args args = vb_args(c);
  attnc_error err;
  attnc_compile_options co = { .target = target, .seq_hint = S };
  double t0 = now();
  if (attnc_kernel_compile(ctx, spec, &co, &kern, &err) || attnc_kernel_run(kern, &args, &err)) {
    rc = cli_fail(&err);
    goto done;
  }
  double first = now() - t0;
  attnc_kernel_info info;
  attnc_kernel_info_get(kern, &info);
  for (long long i = 1; i < warmup; i++) attnc_kernel_run(kern, &args, &err);
  double best = 1e30, total = 0;
  for (long long i = 0; i < reps; i++) {
    double t = now();
    if (attnc_kernel_run(kern, &args, &err)) { rc = cli_fail(&err); goto done; }
    t = now() - t;
    total += t;
    if (t < best) best = t;
  }
  int64_t pairs = allowed_pairs(spec, target, B, Hq, S, D, &args);
  double gflops = pairs >= 0 ? 4.0 * (double)D * (double)pairs / best * 1e-9 : -1;
  if (json)
    printf("{\"spec\": \"%s\", \"target\": \"%s\", \"dtype\": \"%s\", \"shape\": [%lld, %lld, %lld, %lld], "
           "\"kv_heads\": %lld, \"best_ms\": %.4f, \"mean_ms\": %.4f, \"first_call_ms\": %.2f, "
           "\"compile_ms\": %.2f, \"cached\": %s, \"allowed_pairs\": %lld, \"gflops\": %.2f, \"reps\": %lld}\n",
           cs.path, attnc_target_name(target), ir_dtype_name(dt), (long long)B, (long long)Hq, (long long)S,
           (long long)D, (long long)Hkv, best * 1e3, total / (double)reps * 1e3, first * 1e3, info.compile_ms,
           info.cached ? "true" : "false", (long long)pairs, gflops, reps);
  else
    printf("%s --target %s %s [%lld, %lld, %lld, %lld] kv-heads %lld: %.3f ms best, %.3f ms mean of %lld; "
           "%.1f GFLOP/s (%lld allowed pairs); compile %.1f ms%s\n",
           cs.path, attnc_target_name(target), ir_dtype_name(dt), (long long)B, (long long)Hq, (long long)S,
           (long long)D, (long long)Hkv, best * 1e3, total / (double)reps * 1e3, reps, gflops, (long long)pairs,
           info.compile_ms, info.cached ? " (cached)" : "");
done:
  attnc_kernel_free(kern);
  vb_delete(c);
  attnc_spec_free(spec);
  attnc_ctx_free(ctx);
  cli_free_inputs(&in);
  cli_free_spec(&cs);
  return rc;
}

const CliVerb cli_verb_bench = {
  "bench", "time a target's kernel on random inputs",
  "SPEC [-D NAME=VALUE]... --target T [--shape B,H,S,D] [--kv-heads N] [--dtype D] [--reps N] [--json]",
  "Compile SPEC for target T and time it on random inputs (as verify makes\n"
  "them). Prints the best and mean time per call, the compile time, and the\n"
  "effective GFLOP/s: 4*D FLOPs per allowed (q, k) pair per head, the pairs\n"
  "counted exactly from the mask.",
  opts, bench_main
};
