/*
** cmd_run.c -- `attnc run SPEC [-D ...] [--target T] [--dtype D] --q Q.npy
** --k K.npy --v V.npy [--input NAME=FILE.npy]... -o O.npy [--lse LSE.npy]
** [--scale X]`: run a spec on tensors from .npy files through the kernel
** API (attnc_kernel_compile + attnc_kernel_run), for every target alike.
**
** Q, K, V are [B, H, S, D] float32 or float64 on the host. The reference
** takes them as they are (or rounded to --dtype, still float32). Compiled
** targets take one dtype for q, k, v and o: float32 by default on the cpu,
** bfloat16 by default for cuda (which runs only bf16 and f16); the values
** are converted before the call and O is converted back. O is written in
** Q's dtype, LSE as float32 [B, H, S].
**
** Device memory: the tensors stay on the host. The cuda target copies host
** tensors to the GPU and back itself (synchronously), so no device helper
** is needed here; an application passes kDLCUDA tensors and a stream
** instead (docs/api.md), and `attnc bench` copies once for timing.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"
#include "tools/gen.h"

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
  { "dtype", 0, "D", "compute on q, k, v rounded to f32, bf16 or f16 (default f32; cuda: bf16)", OPT_DTYPE },
  CLI_OPT_END
};

/* element i of a float32 or float64 array */
static float elem(const NpyArray *a, size_t i) {
  return a->dtype == NPY_F64 ? (float)((const double *)a->data)[i] : ((const float *)a->data)[i];
}

static size_t numel(const NpyArray *a) {
  size_t n = 1;
  for (int i = 0; i < a->ndim; i++) n *= (size_t)a->shape[i];
  return n;
}

/*
** The tensor the target reads for array a: a itself when it already has
** the dtype (f32 for a compiled target, f32 or f64 for ref, no rounding),
** else a converted copy in *buf (half: 16-bit elements of dt; otherwise
** float32 holding values rounded to dt). 0 or the exit status.
*/
static int tensor_for(NpyArray *a, IrDtype dt, bool half, bool ref, void **buf, DLTensor *t) {
  cli_tensor(a, t);
  if ((ref && dt == DT_F32) || (a->dtype == NPY_F32 && dt == DT_F32)) return CLI_EXIT_OK;
  size_t n = numel(a);
  *buf = malloc((n ? n : 1) * (half ? 2 : 4));
  if (!*buf) return cli_error("out of memory converting a tensor to %s", gen_dtype_name(dt));
  for (size_t i = 0; i < n; i++) {
    float f = elem(a, i);
    if (half) ((uint16_t *)*buf)[i] = gen_to_half(f, dt);
    else ((float *)*buf)[i] = dt == DT_F32 ? f : gen_from_half(gen_to_half(f, dt), dt);
  }
  t->data = *buf;
  t->dtype = half ? (dt == DT_BF16 ? (DLDataType){ kDLBfloat, 16, 1 } : (DLDataType){ kDLFloat, 16, 1 })
                  : (DLDataType){ kDLFloat, 32, 1 };
  return CLI_EXIT_OK;
}

static int run_main(const CliVerb *verb, int argc, char **argv) {
  CliParser ps;
  CliSpec cs = { 0 };
  CliInputs in = { 0 };
  attnc_target target = ATTNC_TARGET_REF;
  attnc_dtype adt = ATTNC_DTYPE_AUTO;
  const char *qp = NULL, *kp = NULL, *vp = NULL, *op = NULL, *lp = NULL, *val;
  double scale = 0;
  NpyArray Q = { 0 }, K = { 0 }, V = { 0 }, O = { 0 }, L = { 0 };
  void *qb = NULL, *kb = NULL, *vb = NULL, *ob = NULL;
  attnc_ctx *ctx = NULL;
  attnc_spec *spec = NULL;
  attnc_kernel *kern = NULL;
  int rc = CLI_EXIT_OK, id;
  cli_init(&ps, verb, argc, argv);
  const CliCommon common_opts = { .spec = &cs, .inputs = &in, .target = &target };
  while ((id = cli_next_own(&ps, verb, &common_opts, &val, &rc)) != CLI_DONE) {
    switch (id) {
    case CLI_HELP: goto done;
    case OPT_DTYPE: if (!cli_parse_dtype(val, &adt)) rc = CLI_EXIT_USAGE; break;
    case OPT_Q: qp = val; break;
    case OPT_K: kp = val; break;
    case OPT_V: vp = val; break;
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

  /* the dtype the target computes in, and how its tensors are stored */
  bool ref = target == ATTNC_TARGET_REF;
  IrDtype dt = adt == ATTNC_DTYPE_BF16 ? DT_BF16 : adt == ATTNC_DTYPE_F16 ? DT_F16
             : adt == ATTNC_DTYPE_F32 || target != ATTNC_TARGET_CUDA ? DT_F32 : DT_BF16;
  bool half = !ref && dt != DT_F32;

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
  if ((rc = tensor_for(&Q, dt, half, ref, &qb, &tq)) || (rc = tensor_for(&K, dt, half, ref, &kb, &tk)) ||
      (rc = tensor_for(&V, dt, half, ref, &vb, &tv)) || (rc = tensor_for(&O, ref ? DT_F32 : dt, half, ref, &ob, &to)))
    goto done;
  cli_tensor(&L, &tl);
  attnc_args args = { .q = &tq, .k = &tk, .v = &tv, .o = &to, .lse = lp ? &tl : NULL,
                      .inputs = in.named, .ninputs = in.n, .scale = scale };
  attnc_compile_options co = { .target = target };
  attnc_error err;
  if (attnc_kernel_compile(ctx, spec, &co, &kern, &err) || attnc_kernel_run(kern, &args, &err)) {
    rc = cli_fail_target(&err, target);
    goto done;
  }
  if (ob) {                       /* back into Q's dtype */
    size_t n = numel(&O);
    for (size_t i = 0; i < n; i++) {
      float f = half ? gen_from_half(((uint16_t *)ob)[i], dt) : ((float *)ob)[i];
      if (O.dtype == NPY_F64) ((double *)O.data)[i] = f;
      else ((float *)O.data)[i] = f;
    }
  }
  char msg[512];
  if (!npy_write(op, &O, msg, sizeof msg) || (lp && !npy_write(lp, &L, msg, sizeof msg)))
    rc = cli_error("%s", msg);
done:
  attnc_kernel_free(kern);
  free(qb), free(kb), free(vb), free(ob);
  npy_free(&Q), npy_free(&K), npy_free(&V), npy_free(&O), npy_free(&L);
  cli_free_inputs(&in);
  attnc_spec_free(spec);
  attnc_ctx_free(ctx);
  cli_free_spec(&cs);
  return rc;
}

const CliVerb cli_verb_run = {
  "run", "run a spec on tensors from .npy files",
  "SPEC [-D NAME=VALUE]... [--target T] [--dtype D] --q Q.npy --k K.npy --v V.npy\n"
  "                 [--input NAME=FILE.npy]... -o O.npy [--lse LSE.npy] [--scale X]",
  "Run the attention pattern SPEC on Q, K and V read from .npy files (C order,\n"
  "float32 or float64, [B, H, S, D]; Hq a multiple of Hkv) and write O in Q's\n"
  "dtype. Runtime inputs the spec declares (int32 or float32) are given by name\n"
  "with --input. --target ref (the default) is the reference executor (double\n"
  "precision); cpu and cuda compile the spec first and compute in --dtype\n"
  "(cpu: f32 or bf16, default f32; cuda: bf16 or f16, default bf16), with the\n"
  "values converted on the way in and O converted back.",
  opts, run_main
};
