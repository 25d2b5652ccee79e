/*
** cmd_run.c -- `attnc run SPEC [-D ...] --target ref --q Q.npy --k K.npy
** --v V.npy [--input NAME=FILE.npy]... -o O.npy [--lse LSE.npy]
** [--scale X]`: run a spec on tensors from .npy files. Q, K, V are
** [B, H, S, D] float32 or float64; O is written in Q's dtype, LSE as
** float32 [B, H, S].
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

static const CliOpt opts[] = {
  CLI_OPT_DEFINE,
  CLI_OPT_TARGET,
  { "q", 0, "Q.npy", "queries [B, Hq, Sq, D], float32 or float64", OPT_Q },
  { "k", 0, "K.npy", "keys [B, Hkv, Sk, D]", OPT_K },
  { "v", 0, "V.npy", "values [B, Hkv, Sk, Dv]", OPT_V },
  CLI_OPT_INPUT,
  { "output", 'o', "O.npy", "write the output [B, Hq, Sq, Dv] (in Q's dtype)", OPT_OUTPUT },
  { "lse", 0, "LSE.npy", "also write the log-sum-exp [B, Hq, Sq], float32", OPT_LSE },
  { "scale", 0, "X", "the score scale (default: the spec's, else 1/sqrt(D))", OPT_SCALE },
  CLI_OPT_END
};

static int run_main(const CliVerb *verb, int argc, char **argv) {
  CliParser ps;
  CliSpec cs = { 0 };
  CliInputs in = { 0 };
  attnc_target target = ATTNC_TARGET_REF;
  const char *qp = NULL, *kp = NULL, *vp = NULL, *op = NULL, *lp = NULL, *val;
  double scale = 0;
  NpyArray Q = { 0 }, K = { 0 }, V = { 0 }, O = { 0 }, L = { 0 };
  attnc_ctx *ctx = NULL;
  attnc_spec *spec = NULL;
  int rc = CLI_EXIT_OK, id;
  cli_init(&ps, verb, argc, argv);
  while (rc == CLI_EXIT_OK && (id = cli_next(&ps, &val, cli_repeatable)) != CLI_DONE) {
    switch (id) {
    case CLI_HELP: goto done;
    case CLI_ERROR: rc = CLI_EXIT_USAGE; break;
    case CLI_POSITIONAL: if (!cli_set_spec(&cs, verb, val)) rc = CLI_EXIT_USAGE; break;
    case OPT_DEFINE: if (!cli_add_define(&cs, val)) rc = CLI_EXIT_USAGE; break;
    case OPT_TARGET: if (!cli_parse_target(val, &target)) rc = CLI_EXIT_USAGE; break;
    case OPT_Q: qp = val; break;
    case OPT_K: kp = val; break;
    case OPT_V: vp = val; break;
    case OPT_INPUT: if (!cli_add_input(&in, val)) rc = CLI_EXIT_USAGE; break;
    case OPT_OUTPUT: op = val; break;
    case OPT_LSE: lp = val; break;
    case OPT_SCALE:
      if (!cli_parse_double("--scale", val, &scale)) rc = CLI_EXIT_USAGE;
      else if (scale == 0) rc = cli_error("--scale must not be 0");
      break;
    }
  }
  if (rc) goto done;
  if (!cs.path) { rc = cli_error("missing SPEC (see 'attnc run --help')"); goto done; }
  const char *missing = !qp ? "--q Q.npy" : !kp ? "--k K.npy" : !vp ? "--v V.npy" : !op ? "-o O.npy" : NULL;
  if (missing) { rc = cli_error("missing %s (see 'attnc run --help')", missing); goto done; }

  if (!(ctx = attnc_ctx_new())) { rc = cli_error("out of memory"); goto done; }
  if ((rc = cli_load_spec(ctx, &cs, verb, &spec))) goto done;
  unsigned fl = (1u << NPY_F32) | (1u << NPY_F64);
  if ((rc = cli_read_npy(qp, fl, &Q)) || (rc = cli_read_npy(kp, fl, &K)) ||
      (rc = cli_read_npy(vp, fl, &V)) || (rc = cli_load_inputs(&in)))
    goto done;

  /* O [B, Hq, Sq, Dv] and LSE [B, Hq, Sq]; misshaped inputs are reported
     by the library, so size them only from 4-dim q and v */
  int64_t oshape[4] = { 0, 0, 0, 0 };
  if (Q.ndim == 4 && V.ndim == 4)
    oshape[0] = Q.shape[0], oshape[1] = Q.shape[1], oshape[2] = Q.shape[2], oshape[3] = V.shape[3];
  if (!npy_alloc(&O, Q.dtype, 4, oshape) || (lp && !npy_alloc(&L, NPY_F32, 3, oshape))) {
    rc = cli_error("out of memory for the output [%lld, %lld, %lld, %lld]", (long long)oshape[0],
                   (long long)oshape[1], (long long)oshape[2], (long long)oshape[3]);
    goto done;
  }
  DLTensor tq, tk, tv, to, tl;
  cli_tensor(&Q, &tq);
  cli_tensor(&K, &tk);
  cli_tensor(&V, &tv);
  cli_tensor(&O, &to);
  cli_tensor(&L, &tl);
  attnc_args args = { .q = &tq, .k = &tk, .v = &tv, .o = &to, .lse = lp ? &tl : NULL,
                      .inputs = in.named, .ninputs = in.n, .scale = scale };
  attnc_error err;
  attnc_status st = ATTNC_ERR_UNSUPPORTED;
  switch (target) {              /* cli_parse_target admits only what this build has */
  case ATTNC_TARGET_REF: st = attnc_run_reference(spec, &args, &err); break;
  default:
    snprintf(err.message, sizeof err.message, "target '%s' cannot run yet", attnc_target_name(target));
    err.status = st;
    break;
  }
  if (st != ATTNC_OK) { rc = cli_fail(&err); goto done; }
  char msg[512];
  if (!npy_write(op, &O, msg, sizeof msg) || (lp && !npy_write(lp, &L, msg, sizeof msg)))
    rc = cli_error("%s", msg);
done:
  npy_free(&Q), npy_free(&K), npy_free(&V), npy_free(&O), npy_free(&L);
  cli_free_inputs(&in);
  attnc_spec_free(spec);
  attnc_ctx_free(ctx);
  cli_free_spec(&cs);
  return rc;
}

const CliVerb cli_verb_run = {
  "run", "run a spec on tensors from .npy files",
  "SPEC [-D NAME=VALUE]... --target ref --q Q.npy --k K.npy --v V.npy\n"
  "                 [--input NAME=FILE.npy]... -o O.npy [--lse LSE.npy] [--scale X]",
  "Run the attention pattern SPEC on Q, K and V read from .npy files (C order,\n"
  "float32 or float64, [B, H, S, D]; Hq a multiple of Hkv) and write O.\n"
  "Runtime inputs the spec declares (int32 or float32) are given by name with\n"
  "--input. --target ref is the reference executor (double precision).",
  opts, run_main
};
