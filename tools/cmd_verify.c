/*
** cmd_verify.c -- `attnc verify SPEC [-D NAME=VALUE]... --target T
** [--shape B,H,S,D] [--hkv N] [--dtype f32|bf16|f16] [--seed N]
** [--input NAME=FILE.npy]... [--tol X] [--json]`: run a target's kernel
** on random inputs (tools/gen.h: q, k, v in [-1, 1) rounded to the dtype,
** and every runtime input the spec declares made from its declaration
** unless given) and compare it with the reference executor on the same
** values. Prints the max abs errors of O and LSE, and PASS (exit 0) or
** FAIL (exit 1). Unwritten outputs count: O and LSE start as NaN.
**
** --target ref runs the reference through the kernel API (float32 in
** and out) against the reference called directly (float64 out): a check
** of the API path, not of a second implementation.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/cli.h"
#include "tools/gen.h"
#include "tools/timing.h"
#include "runtime/runtime.h"

#define TOL_F32 1e-4
#define TOL_HALF 2e-2

enum { OPT_TOL = OPT_VERB };

static const CliOpt opts[] = {
  CLI_OPT_DEFINE,
  CLI_OPT_TARGET,
  CLI_OPT_SHAPE,
  CLI_OPT_HKV,
  CLI_OPT_KVHEADS,
  CLI_OPT_DTYPE,
  CLI_OPT_SEED,
  CLI_OPT_INPUT,
  { "tol", 0, "X", "max abs error allowed in O and LSE (default 1e-4 for f32, 2e-2 for bf16, f16)", OPT_TOL },
  { "json", 0, NULL, "print one JSON object instead of a line", OPT_JSON },
  CLI_OPT_END
};

/* |x - y| with NaN as infinitely wrong and two equal infinities as right */
static double abs_err(double x, double y) {
  if (isnan(x) || isnan(y)) return INFINITY;
  if (isinf(x) || isinf(y)) return x == y ? 0 : INFINITY;
  return fabs(x - y);
}

/* what the reference computed, for the summary */
typedef struct RefSummary {
  int64_t pairs;          /* allowed (b, h, q, k), -1 unknown */
  double density;         /* pairs / all pairs, -1 unknown */
  int64_t empty_rows;     /* queries with no allowed key (LSE = -inf) */
  double mean_abs_o;
} RefSummary;

/* a JSON number, or null for an infinite error (NaN or a wrong infinity) */
static void json_number(double x) {
  if (isfinite(x)) printf("%.6g", x);
  else printf("null");
}

static void print_json(const char *path, attnc_target t, const GenCall *c, double eo, double el,
                       double tol, bool pass, double compile_ms, const RefSummary *rs) {
  const GenShape *s = &c->s;
  printf("{\"spec\": ");
  cli_json_string(stdout, path);
  printf(", \"target\": \"%s\", \"dtype\": \"%s\", \"shape\": [%lld, %lld, %lld, %lld], \"hkv\": %lld, "
         "\"inputs\": {", attnc_target_name(t), gen_dtype_name(s->dtype), (long long)s->B,
         (long long)s->Hq, (long long)s->S, (long long)s->D, (long long)s->Hkv);
  for (int i = 0; i < c->ninputs; i++) {
    printf("%s", i ? ", " : "");
    cli_json_string(stdout, c->named[i].name);
    printf(": \"%s\"", gen_rule_name(c->rule[i]));
  }
  printf("}, \"max_abs_err\": ");
  json_number(eo);
  printf(", \"max_abs_err_lse\": ");
  json_number(el);
  printf(", \"tol\": %g, \"pass\": %s, \"compile_ms\": %.2f, \"ref\": {\"allowed_pairs\": %lld, "
         "\"density\": %.6g, \"empty_rows\": %lld, \"mean_abs_o\": %.6g}}\n",
         tol, pass ? "true" : "false", compile_ms, (long long)rs->pairs, rs->density,
         (long long)rs->empty_rows, rs->mean_abs_o);
}

static int verify_main(const CliVerb *verb, int argc, char **argv) {
  CliParser ps;
  CliSpec cs = { 0 };
  CliInputs in = { 0 };
  CliCall cc = { .seed = 1 };
  GenCall c;
  memset(&c, 0, sizeof c);
  attnc_target target = ATTNC_TARGET_REF;
  bool json = false, target_given = false;
  double tol = -1;
  const char *val;
  attnc_ctx *ctx = NULL;
  attnc_spec *spec = NULL;
  attnc_kernel *kern = NULL;
  double *oref = NULL;
  float *lref = NULL;
  int rc = CLI_EXIT_OK, id;
  cli_init(&ps, verb, argc, argv);
  const CliCommon common_opts = { .spec = &cs, .inputs = &in, .target = &target, .target_given = &target_given, .call = &cc };
  while ((id = cli_next_own(&ps, verb, &common_opts, &val, &rc)) != CLI_DONE) {
    switch (id) {
    case CLI_HELP: goto done;
    case OPT_TOL:
      if (!cli_parse_double("--tol", val, &tol)) rc = CLI_EXIT_USAGE;
      else if (tol < 0) rc = cli_error("--tol must not be negative (got %s)", val);
      break;
    case OPT_JSON: json = true; break;
    }
  }
  if (rc) goto done;
  if (!cs.path) { rc = cli_error("missing SPEC (see 'attnc verify --help')"); goto done; }
  if (!target_given) { rc = cli_error("missing --target (ref, cpu or cuda)"); goto done; }
  if (!(ctx = attnc_ctx_new())) { rc = cli_error("out of memory"); goto done; }
  if ((rc = cli_load_spec(ctx, &cs, verb, &spec)) || (rc = cli_load_inputs(&in))) goto done;
  const IrPattern *p = spec->pat;
  GenShape gs;
  if ((rc = cli_call_shape(&cc, p, target, &gs))) goto done;
  char msg[256];
  if (!gen_call_init(&c, p, &gs, in.named, in.n, msg, sizeof msg)) { rc = cli_error("%s", msg); goto done; }
  if (tol < 0) tol = gs.dtype == DT_F32 ? TOL_F32 : TOL_HALF;

  /* the reference: the float32 copies in, float64 out */
  size_t no = (size_t)(gs.B * gs.Hq * gs.S * gs.D), nl = (size_t)(gs.B * gs.Hq * gs.S);
  oref = calloc(no ? no : 1, sizeof *oref);
  lref = calloc(nl ? nl : 1, sizeof *lref);
  if (!oref || !lref) { rc = cli_error("out of memory for the reference output"); goto done; }
  DLTensor to, tl;
  attnc_args ra = gen_ref_args(&c, &to, oref, &tl, lref);
  attnc_error err;
  if (attnc_run_reference(spec, &ra, &err)) { rc = cli_fail(&err); goto done; }

  /* the target: compiled for this dtype and head dim now, then run */
  attnc_compile_options co = {
    .target = target, .head_dim = (int)gs.D, .seq_hint = gs.S,
    .dtype = gen_api_dtype(&gs),
  };
  double t0 = timing_now_ms();
  attnc_args ta = gen_args(&c);
  if (attnc_kernel_compile(ctx, spec, &co, &kern, &err)) { rc = cli_fail_target(&err, target); goto done; }
  double compile_ms = timing_now_ms() - t0;
  if (attnc_kernel_run(kern, &ta, &err)) { rc = cli_fail_target(&err, target); goto done; }

  double eo = 0, el = 0, so = 0;
  for (size_t i = 0; i < no; i++) {
    double e = abs_err(gen_out(&c, i), oref[i]);
    if (e > eo) eo = e;
    so += fabs(oref[i]);
  }
  RefSummary rs = { .empty_rows = 0, .mean_abs_o = no ? so / (double)no : 0 };
  for (size_t i = 0; i < nl; i++) {
    double e = abs_err(c.lse[i], lref[i]);
    if (e > el) el = e;
    rs.empty_rows += isinf(lref[i]) && lref[i] < 0;
  }
  rs.pairs = gen_allowed_pairs(p, target, &ta);
  double all = (double)gs.B * (double)gs.Hq * (double)gs.S * (double)gs.S;
  rs.density = rs.pairs >= 0 && all > 0 ? (double)rs.pairs / all : -1;
  bool pass = eo <= tol && el <= tol;
  if (json)
    print_json(cs.path, target, &c, eo, el, tol, pass, compile_ms, &rs);
  else
    printf("%s: %s %s B=%lld H=%lld Hkv=%lld S=%lld D=%lld: max abs error %.3g (LSE %.3g), "
           "tolerance %.3g: %s%s\n",
           cs.path, attnc_target_name(target), gen_dtype_name(gs.dtype), (long long)gs.B,
           (long long)gs.Hq, (long long)gs.Hkv, (long long)gs.S, (long long)gs.D, eo, el, tol,
           pass ? "PASS" : "FAIL",
           target == ATTNC_TARGET_REF ? " (ref against itself through the kernel API)" : "");
  rc = pass ? CLI_EXIT_OK : CLI_EXIT_FAIL;
done:
  free(oref);
  free(lref);
  attnc_kernel_free(kern);
  gen_call_free(&c);
  attnc_spec_free(spec);
  attnc_ctx_free(ctx);
  cli_free_inputs(&in);
  cli_free_spec(&cs);
  return rc;
}

const CliVerb cli_verb_verify = {
  "verify", "check a target's kernel against the reference on random inputs",
  "SPEC [-D NAME=VALUE]... --target T [--shape B,H,S,D] [--hkv N]\n"
  "                    [--dtype f32|bf16|f16] [--seed N] [--input NAME=FILE.npy]... [--tol X] [--json]",
  "Compile SPEC for target T and run it on random inputs: q, k, v uniform in\n"
  "[-1, 1) rounded to --dtype, and each runtime input the spec declares made\n"
  "from its declaration (segment ids, distinct indices, a bitmap with its\n"
  "diagonal set, small values; see docs/cli.md) unless given with --input.\n"
  "The reference executor runs on the same values in double precision.\n"
  "Prints the max abs error of O and of the LSE and PASS when both are within\n"
  "the tolerance (1e-4 for f32, 2e-2 for bf16 and f16): exit 0 on PASS, 1 on\n"
  "FAIL. --target ref checks the kernel API path against the reference itself.",
  opts, verify_main
};
