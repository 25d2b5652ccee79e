/*
** cmd_verify.c -- `attnc verify SPEC [-D NAME=VALUE]... --target T
** [--shape B,H,S,D] [--kv-heads N] [--dtype D] [--seed N] [--input ...]`:
** run a target's kernel on random inputs (and random runtime inputs that
** fit the spec, unless given) against the reference executor; print the
** max abs errors of O and LSE and PASS or FAIL (exit 0 or 1).
**
** The helpers below (vb_*) are shared with cmd_bench.c, which declares
** them: the call both verbs build from --shape, --kv-heads, --dtype and
** --seed, behind an opaque VbCall.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"
#include "runtime/runtime.h"

#define TOL_F32 1e-4
#define TOL_HALF 2e-2

enum { OPT_KVHEADS = OPT_VERB };

/* ------------------------------------------------ the call (shared) */

typedef struct VbCall {
  int64_t B, Hq, Hkv, S, D;
  IrDtype dtype;                 /* of q, k, v, o */
  uint64_t seed;
  void *q, *k, *v, *o;           /* the target's tensors */
  float *qr, *kr, *vr;           /* float32 copies of the same values */
  float *lse;
  int64_t qs[4], ks[4], os[4], ls[3];
  DLTensor tq, tk, tv, to, tl;
  DLTensor rq, rk, rv;           /* the float32 copies */
  /* random runtime inputs (those not given with --input) */
  int nin;
  void *in_data[32];
  int64_t in_shape[32][4];
  DLTensor in_t[32];
  attnc_named_tensor named[32];
} VbCall;

static uint64_t vb_rand(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static double vb_uniform(uint64_t *s) {         /* [-1, 1) */
  return (double)(vb_rand(s) >> 11) / (double)(1ull << 53) * 2 - 1;
}

static uint16_t vb_to_half(float f, IrDtype dt) {
  if (dt == DT_BF16) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
  }
  /* IEEE half, round to nearest even (inputs are small normals) */
  uint32_t u;
  memcpy(&u, &f, 4);
  uint32_t sign = (u >> 16) & 0x8000;
  int32_t e = (int32_t)((u >> 23) & 0xff) - 127 + 15;
  uint32_t m = u & 0x7fffff;
  if (e <= 0) return (uint16_t)sign;                  /* flush tiny values */
  if (e >= 31) return (uint16_t)(sign | 0x7c00);
  uint32_t h = sign | ((uint32_t)e << 10) | (m >> 13);
  uint32_t rest = m & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
  return (uint16_t)h;
}

static float vb_from_half(uint16_t h, IrDtype dt) {
  if (dt == DT_BF16) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
  }
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, u;
  if (e == 0) u = sign;                                /* (no subnormals here) */
  else if (e == 31) u = sign | 0x7f800000 | (m << 13);
  else u = sign | ((e - 15 + 127) << 23) | (m << 13);
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static DLDataType vb_dl(IrDtype dt) {
  switch (dt) {
  case DT_BF16: return (DLDataType){ kDLBfloat, 16, 1 };
  case DT_F16: return (DLDataType){ kDLFloat, 16, 1 };
  default: return (DLDataType){ kDLFloat, 32, 1 };
  }
}

/* n random values into the target's tensor x and its float32 copy r */
static bool vb_fill(VbCall *c, void **x, float **r, size_t n) {
  size_t es = c->dtype == DT_F32 ? 4 : 2;
  *x = malloc(n * es);
  *r = malloc(n * sizeof **r);
  if (!*x || !*r) return false;
  for (size_t i = 0; i < n; i++) {
    float f = (float)vb_uniform(&c->seed);
    if (es == 2) {
      uint16_t h = vb_to_half(f, c->dtype);
      ((uint16_t *)*x)[i] = h;
      (*r)[i] = vb_from_half(h, c->dtype);
    } else {
      ((float *)*x)[i] = f;
      (*r)[i] = f;
    }
  }
  return true;
}

static int64_t vb_dim(IrDim dm, const VbCall *c) {
  int64_t div = dm.value >= 1 ? dm.value : 1;
  switch (dm.sym) {
  case DIM_CONST: return dm.value;
  case DIM_B: return c->B;
  case DIM_H: return c->Hq;
  case DIM_HKV: return c->Hkv;
  case DIM_SQ: case DIM_SK: return (c->S + div - 1) / div;
  }
  return 1;
}

/*
** Build the call: q, k, v random in [-1, 1) (rounded to the dtype), o and
** lse zeroed, and for each runtime input the spec declares and the user
** did not give, random values of its shape: ints in [0, 4) (a few
** documents, clusters, block indices), floats in [-1, 1).
*/
static bool vb_call_init(VbCall *c, const attnc_spec *spec, const CliInputs *given) {
  const IrPattern *p = spec->pat;
  int64_t qs[4] = { c->B, c->Hq, c->S, c->D }, ks[4] = { c->B, c->Hkv, c->S, c->D };
  memcpy(c->qs, qs, sizeof qs);
  memcpy(c->ks, ks, sizeof ks);
  memcpy(c->os, qs, sizeof qs);
  c->ls[0] = c->B, c->ls[1] = c->Hq, c->ls[2] = c->S;
  size_t nq = (size_t)(c->B * c->Hq * c->S * c->D), nk = (size_t)(c->B * c->Hkv * c->S * c->D);
  if (!vb_fill(c, &c->q, &c->qr, nq) || !vb_fill(c, &c->k, &c->kr, nk) || !vb_fill(c, &c->v, &c->vr, nk))
    return false;
  c->o = calloc(nq, 8);
  c->lse = calloc((size_t)(c->B * c->Hq * c->S), sizeof *c->lse);
  if (!c->o || !c->lse) return false;
  DLDataType dt = vb_dl(c->dtype), f32 = { kDLFloat, 32, 1 };
  DLDevice cpu = { kDLCPU, 0 };
  c->tq = (DLTensor){ c->q, cpu, 4, dt, c->qs, NULL, 0 };
  c->tk = (DLTensor){ c->k, cpu, 4, dt, c->ks, NULL, 0 };
  c->tv = (DLTensor){ c->v, cpu, 4, dt, c->ks, NULL, 0 };
  c->to = (DLTensor){ c->o, cpu, 4, dt, c->os, NULL, 0 };
  c->tl = (DLTensor){ c->lse, cpu, 3, f32, c->ls, NULL, 0 };
  c->rq = (DLTensor){ c->qr, cpu, 4, f32, c->qs, NULL, 0 };
  c->rk = (DLTensor){ c->kr, cpu, 4, f32, c->ks, NULL, 0 };
  c->rv = (DLTensor){ c->vr, cpu, 4, f32, c->ks, NULL, 0 };
  c->nin = 0;
  for (int i = 0; i < given->n && c->nin < 32; i++) c->named[c->nin++] = given->named[i];
  for (int i = 0; i < p->ninputs && c->nin < 32; i++) {
    const IrInput *in = &p->inputs[i];
    bool have = false;
    for (int j = 0; j < given->n; j++) have |= strcmp(given->names[j], in->name) == 0;
    if (have) continue;
    int s = c->nin;
    int64_t n = 1;
    for (int d = 0; d < in->rank; d++) n *= (c->in_shape[s][d] = vb_dim(in->dims[d], c));
    c->in_data[s] = malloc((size_t)(n > 0 ? n : 1) * 4);
    if (!c->in_data[s]) return false;
    for (int64_t e = 0; e < n; e++) {
      if (in->dtype == DT_I32) ((int32_t *)c->in_data[s])[e] = (int32_t)(vb_rand(&c->seed) % 4);
      else ((float *)c->in_data[s])[e] = (float)vb_uniform(&c->seed);
    }
    DLDataType idt = in->dtype == DT_I32 ? (DLDataType){ kDLInt, 32, 1 } : f32;
    c->in_t[s] = (DLTensor){ c->in_data[s], cpu, in->rank, idt, c->in_shape[s], NULL, 0 };
    c->named[s] = (attnc_named_tensor){ in->name, &c->in_t[s] };
    c->nin++;
  }
  return true;
}

static void vb_call_free(VbCall *c) {
  void *all[] = { c->q, c->k, c->v, c->o, c->qr, c->kr, c->vr, c->lse };
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
  for (int i = 0; i < c->nin; i++) free(c->in_data[i]);
}

attnc_args vb_args(VbCall *c) {
  return (attnc_args){ .q = &c->tq, .k = &c->tk, .v = &c->tv, .o = &c->to, .lse = &c->tl,
                       .inputs = c->named, .ninputs = c->nin };
}

/* "B,H,S,D" */
static bool vb_parse_shape(const char *s, VbCall *c) {
  long long v[4];
  char tail;
  if (sscanf(s, "%lld,%lld,%lld,%lld%c", &v[0], &v[1], &v[2], &v[3], &tail) != 4 ||
      v[0] < 1 || v[1] < 1 || v[2] < 1 || v[3] < 1 || v[0] > 4096 || v[1] > 4096 || v[2] > (1 << 24) || v[3] > 1024) {
    cli_error("--shape expects B,H,S,D (positive; got '%s')", s);
    return false;
  }
  c->B = v[0], c->Hq = v[1], c->S = v[2], c->D = v[3];
  return true;
}

static bool vb_parse_dtype(const char *s, IrDtype *dt) {
  if (strcmp(s, "f32") == 0 || strcmp(s, "float32") == 0) *dt = DT_F32;
  else if (strcmp(s, "bf16") == 0 || strcmp(s, "bfloat16") == 0) *dt = DT_BF16;
  else if (strcmp(s, "f16") == 0 || strcmp(s, "float16") == 0) *dt = DT_F16;
  else {
    cli_error("--dtype expects f32, bf16 or f16 (got '%s')", s);
    return false;
  }
  return true;
}

/* defaults from the spec: S = the grid's token count, D its first head dim */
static void vb_defaults(VbCall *c, const attnc_spec *spec, bool shape_given) {
  const IrPattern *p = spec->pat;
  if (!shape_given) {
    c->B = 1, c->Hq = 2, c->S = 200, c->D = p->nhead_dims > 0 ? p->head_dims[0] : 64;
    if (p->grid_rank > 0) {
      int64_t n = 1;
      for (int a = 0; a < p->grid_rank; a++) n *= p->grid[a];
      c->S = n;
    }
  }
  if (c->Hkv < 1 || c->Hq % c->Hkv) c->Hkv = c->Hq;
}

/* the target's output element i as a double */
static double vb_out(const VbCall *c, size_t i) {
  if (c->dtype == DT_F32) return ((float *)c->o)[i];
  return vb_from_half(((uint16_t *)c->o)[i], c->dtype);
}

/* the opaque interface cmd_bench.c uses */
VbCall *vb_new(void) {
  VbCall *c = calloc(1, sizeof *c);
  if (c) { c->seed = 88172645463325252ull + 2654435761u; c->dtype = DT_F32; }
  return c;
}

/* one of --shape, --kv-heads, --dtype, --seed; false after an error */
bool vb_option(VbCall *c, int id, const char *val, bool *shape_given) {
  long long v;
  switch (id) {
  case OPT_SHAPE: *shape_given = true; return vb_parse_shape(val, c);
  case OPT_KVHEADS:
    if (!cli_parse_int("--kv-heads", val, 1, 4096, &v)) return false;
    c->Hkv = v;
    return true;
  case OPT_DTYPE: return vb_parse_dtype(val, &c->dtype);
  case OPT_SEED:
    if (!cli_parse_int("--seed", val, 0, (long long)1 << 62, &v)) return false;
    c->seed = (uint64_t)v * 2654435761u + 88172645463325252ull;
    return true;
  }
  return true;
}

/* defaults, checks and random tensors; 0 or the exit status */
int vb_prepare(VbCall *c, const attnc_spec *spec, const CliInputs *given, bool shape_given) {
  int64_t hkv = c->Hkv;
  vb_defaults(c, spec, shape_given);
  if (hkv && c->Hkv != hkv)
    return cli_error("--kv-heads %lld must divide the %lld query heads", (long long)hkv, (long long)c->Hq);
  if (!vb_call_init(c, spec, given)) return cli_error("out of memory for the inputs");
  return 0;
}

void vb_describe(const VbCall *c, int64_t *B, int64_t *Hq, int64_t *Hkv, int64_t *S, int64_t *D, IrDtype *dt) {
  *B = c->B, *Hq = c->Hq, *Hkv = c->Hkv, *S = c->S, *D = c->D, *dt = c->dtype;
}

void vb_delete(VbCall *c) {
  if (!c) return;
  vb_call_free(c);
  free(c);
}

/* -------------------------------------------------------------- verify */

static const CliOpt opts[] = {
  CLI_OPT_DEFINE,
  CLI_OPT_TARGET,
  { "shape", 0, "B,H,S,D", "batch, query heads, tokens, head dim (default 1,2,200,64; S = the grid's tokens)", OPT_SHAPE },
  { "kv-heads", 0, "N", "key/value heads (GQA; default H)", OPT_KVHEADS },
  { "dtype", 0, "D", "f32 (default), bf16 or f16", OPT_DTYPE },
  { "seed", 0, "N", "random seed (default 1)", OPT_SEED },
  CLI_OPT_INPUT,
  { "json", 0, NULL, "print one JSON object", OPT_JSON },
  CLI_OPT_END
};

static int verify_main(const CliVerb *verb, int argc, char **argv) {
  CliParser ps;
  CliSpec cs = { 0 };
  CliInputs in = { 0 };
  VbCall c;
  memset(&c, 0, sizeof c);
  attnc_target target = ATTNC_TARGET_CPU;
  bool shape = false, json = false, target_given = false;
  const char *val;
  attnc_ctx *ctx = NULL;
  attnc_spec *spec = NULL;
  attnc_kernel *kern = NULL;
  int rc = CLI_EXIT_OK, id;
  c.seed = 88172645463325252ull + 2654435761u;
  c.dtype = DT_F32;
  cli_init(&ps, verb, argc, argv);
  while (rc == CLI_EXIT_OK && (id = cli_next(&ps, &val, cli_repeatable)) != CLI_DONE) {
    switch (id) {
    case CLI_HELP: goto done;
    case CLI_ERROR: rc = CLI_EXIT_USAGE; break;
    case CLI_POSITIONAL: if (!cli_set_spec(&cs, verb, val)) rc = CLI_EXIT_USAGE; break;
    case OPT_DEFINE: if (!cli_add_define(&cs, val)) rc = CLI_EXIT_USAGE; break;
    case OPT_TARGET: if (!cli_parse_target(val, &target)) rc = CLI_EXIT_USAGE; target_given = true; break;
    case OPT_SHAPE: case OPT_KVHEADS: case OPT_DTYPE: case OPT_SEED:
      if (!vb_option(&c, id, val, &shape)) rc = CLI_EXIT_USAGE;
      break;
    case OPT_INPUT: if (!cli_add_input(&in, val)) rc = CLI_EXIT_USAGE; break;
    case OPT_JSON: json = true; break;
    }
  }
  if (rc) goto done;
  if (!cs.path) { rc = cli_error("missing SPEC (see 'attnc verify --help')"); goto done; }
  if (!target_given) { rc = cli_error("missing --target (cpu or cuda)"); goto done; }
  if (!(ctx = attnc_ctx_new())) { rc = cli_error("out of memory"); goto done; }
  if ((rc = cli_load_spec(ctx, &cs, verb, &spec)) || (rc = cli_load_inputs(&in))) goto done;
  if ((rc = vb_prepare(&c, spec, &in, shape))) goto done;

  /* the reference: float32 copies in, float64 out */
  size_t no = (size_t)(c.B * c.Hq * c.S * c.D), nl = (size_t)(c.B * c.Hq * c.S);
  double *oref = calloc(no, sizeof *oref);
  float *lref = calloc(nl, sizeof *lref);
  if (!oref || !lref) { free(oref); free(lref); rc = cli_error("out of memory"); goto done; }
  DLTensor to = { oref, { kDLCPU, 0 }, 4, { kDLFloat, 64, 1 }, c.os, NULL, 0 };
  DLTensor tl = { lref, { kDLCPU, 0 }, 3, { kDLFloat, 32, 1 }, c.ls, NULL, 0 };
  attnc_args ra = vb_args(&c);
  ra.q = &c.rq, ra.k = &c.rk, ra.v = &c.rv, ra.o = &to, ra.lse = &tl;
  attnc_error err;
  attnc_args ta = vb_args(&c);
  attnc_compile_options co = { .target = target };
  if (attnc_run_reference(spec, &ra, &err) || attnc_kernel_compile(ctx, spec, &co, &kern, &err) ||
      attnc_kernel_run(kern, &ta, &err)) {
    free(oref);
    free(lref);
    rc = cli_fail(&err);
    goto done;
  }
  double eo = 0, el = 0;
  for (size_t i = 0; i < no; i++) {
    double x = vb_out(&c, i), e = isnan(x) ? INFINITY : fabs(x - oref[i]);
    if (e > eo) eo = e;
  }
  for (size_t i = 0; i < nl; i++) {
    double x = c.lse[i], y = lref[i];
    double e = (isinf(x) || isinf(y)) ? (x == y ? 0 : INFINITY) : isnan(x) ? INFINITY : fabs(x - y);
    if (e > el) el = e;
  }
  free(oref);
  free(lref);
  double tol = c.dtype == DT_F32 ? TOL_F32 : TOL_HALF;
  bool pass = eo <= tol && el <= tol * 10;
  if (json)
    printf("{\"spec\": \"%s\", \"target\": \"%s\", \"dtype\": \"%s\", \"shape\": [%lld, %lld, %lld, %lld], "
           "\"kv_heads\": %lld, \"max_abs_err\": %.3g, \"max_abs_err_lse\": %.3g, \"tolerance\": %g, \"pass\": %s}\n",
           cs.path, attnc_target_name(target), ir_dtype_name(c.dtype), (long long)c.B, (long long)c.Hq,
           (long long)c.S, (long long)c.D, (long long)c.Hkv, eo, el, tol, pass ? "true" : "false");
  else
    printf("%s --target %s %s [%lld, %lld, %lld, %lld] kv-heads %lld: max abs error %.3g (LSE %.3g), tolerance %g: %s\n",
           cs.path, attnc_target_name(target), ir_dtype_name(c.dtype), (long long)c.B, (long long)c.Hq,
           (long long)c.S, (long long)c.D, (long long)c.Hkv, eo, el, tol, pass ? "PASS" : "FAIL");
  rc = pass ? CLI_EXIT_OK : CLI_EXIT_FAIL;
done:
  attnc_kernel_free(kern);
  vb_call_free(&c);
  attnc_spec_free(spec);
  attnc_ctx_free(ctx);
  cli_free_inputs(&in);
  cli_free_spec(&cs);
  return rc;
}

const CliVerb cli_verb_verify = {
  "verify", "check a target's kernel against the reference on random inputs",
  "SPEC [-D NAME=VALUE]... --target T [--shape B,H,S,D] [--kv-heads N] [--dtype D] [--seed N]",
  "Compile SPEC for target T, run it on random inputs (q, k, v in [-1, 1),\n"
  "rounded to --dtype; runtime inputs the spec declares get random values of\n"
  "their shape unless given with --input) and compare with the reference\n"
  "executor. Prints the max abs error of O (and of the LSE) and PASS when it\n"
  "is within 1e-4 (float32) or 2e-2 (bf16, f16); exit 0 on PASS, 1 on FAIL.",
  opts, verify_main
};
