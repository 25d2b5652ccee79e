/*
** gen.c -- random calls for verify and bench (see gen.h for the rules).
** Deterministic: the same seed and shape give the same tensors.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/gen.h"
#include "backend/backend.h"
#include "passes/passes.h"

#define BRUTE_FORCE_MAX ((int64_t)1 << 26)   /* pairs a brute-force count may visit */

/* ------------------------------------------------------------ numbers */

static uint64_t rnd(uint64_t *s) {                /* xorshift64 */
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static double uniform(uint64_t *s) {              /* [0, 1) */
  return (double)(rnd(s) >> 11) / (double)(1ull << 53);
}

static int64_t below(uint64_t *s, int64_t n) {    /* [0, n), n >= 1 */
  return (int64_t)(rnd(s) % (uint64_t)n);
}

uint64_t gen_seed(uint64_t user_seed) {
  return user_seed * 0x9e3779b97f4a7c15ull + 88172645463325252ull;   /* never 0 */
}

uint16_t gen_to_half(float f, IrDtype dt) {
  uint32_t u;
  memcpy(&u, &f, 4);
  uint32_t sign = (u >> 16) & 0x8000, a = u & 0x7fffffff;
  if (dt == DT_BF16) {
    if (a > 0x7f800000) return (uint16_t)(sign | 0x7fc0);           /* NaN */
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
  }
  if (a >= 0x7f800000) return (uint16_t)(sign | (a > 0x7f800000 ? 0x7e00 : 0x7c00));
  if (a >= 0x477ff000) return (uint16_t)(sign | 0x7c00);            /* rounds past 65504 */
  if (a < 0x38800000) {                                             /* below 2^-14: subnormal */
    float v;
    memcpy(&v, &a, 4);
    return (uint16_t)(sign | (uint32_t)nearbyintf(v * 16777216.0f)); /* units of 2^-24 */
  }
  uint32_t h = (a - 0x38000000) >> 13, rest = a & 0x1fff;           /* rebias 127 -> 15 */
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
  return (uint16_t)(sign | h);
}

float gen_from_half(uint16_t h, IrDtype dt) {
  uint32_t u;
  float f;
  if (dt == DT_BF16) {
    u = (uint32_t)h << 16;
    memcpy(&f, &u, 4);
    return f;
  }
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e == 0) {
    f = ldexpf((float)m, -24);
    return sign ? -f : f;
  }
  u = e == 31 ? sign | 0x7f800000 | (m << 13) : sign | ((e + 112) << 23) | (m << 13);
  memcpy(&f, &u, 4);
  return f;
}

bool gen_parse_dtype(const char *s, IrDtype *dt) {
  if (strcmp(s, "f32") == 0 || strcmp(s, "float32") == 0) *dt = DT_F32;
  else if (strcmp(s, "bf16") == 0 || strcmp(s, "bfloat16") == 0) *dt = DT_BF16;
  else if (strcmp(s, "f16") == 0 || strcmp(s, "float16") == 0) *dt = DT_F16;
  else return false;
  return true;
}

attnc_dtype gen_api_dtype(const GenShape *s) {
  if (s->store_f32 || s->dtype == DT_F32) return ATTNC_DTYPE_F32;
  return s->dtype == DT_BF16 ? ATTNC_DTYPE_BF16 : ATTNC_DTYPE_F16;
}

const char *gen_dtype_name(IrDtype dt) {
  return dt == DT_BF16 ? "bf16" : dt == DT_F16 ? "f16" : dt == DT_F64 ? "f64" : "f32";
}

const char *gen_rule_name(GenRule r) {
  switch (r) {
  case GEN_UNIFORM: return "uniform";
  case GEN_SMALL_INT: return "small ints";
  case GEN_SEGMENTS: return "segment ids";
  case GEN_INDICES: return "distinct indices";
  case GEN_BITMAP: return "bitmap";
  case GEN_GIVEN: return "given";
  }
  return "?";
}

/* ------------------------------------------------------------ shapes */

void gen_default_shape(const IrPattern *p, GenShape *s) {
  memset(s, 0, sizeof *s);
  s->B = 1, s->Hq = 2, s->Hkv = 2, s->S = 200, s->D = 64;
  if (p->nhead_dims > 0) s->D = p->head_dims[0];
  if (p->grid_rank > 0) {
    s->S = 1;
    for (int a = 0; a < p->grid_rank; a++) s->S *= p->grid[a];
  }
  s->dtype = DT_F32;
  s->seed = gen_seed(1);
}

/* the size a declared dim takes for the generator's call (Sq = Sk = S) */
static int64_t dim_size(IrDim dm, const GenShape *g) {
  Shape s = { .B = g->B, .Hq = g->Hq, .Hkv = g->Hkv, .Sq = g->S, .Sk = g->S, .D = g->D, .Dv = g->D };
  return args_dim_size(dm, &s);
}

static bool token_dim(IrDim dm) { return dm.sym == DIM_SQ || dm.sym == DIM_SK; }

/* the rule for a declared input; *range: the index range of GEN_INDICES */
static GenRule rule_of(const IrInput *in, const GenShape *s, int64_t *range) {
  if (in->dtype != DT_I32) return GEN_UNIFORM;
  int r = in->rank;
  if (r == 0) return GEN_SMALL_INT;
  IrDim last = in->dims[r - 1];
  if (r >= 2 && token_dim(last) && in->dims[r - 2].sym == last.sym &&
      in->dims[r - 2].value == last.value)
    return GEN_BITMAP;
  if (token_dim(last) && last.value <= 1) return GEN_SEGMENTS;
  if (last.sym == DIM_CONST)
    for (int i = r - 2; i >= 0; i--)
      if (token_dim(in->dims[i])) {
        *range = dim_size(in->dims[i], s);
        return GEN_INDICES;
      }
  return GEN_SMALL_INT;
}

/* fill n = rows * row values of one input by its rule */
static void fill_input(GenRule rule, int32_t *x, int64_t rows, int64_t row, int64_t range,
                       uint64_t *seed) {
  for (int64_t r = 0; r < rows; r++) {
    int32_t *y = x + r * row;
    switch (rule) {
    case GEN_SEGMENTS: {         /* runs of 1 .. row/3 tokens: a few documents, some short */
      int64_t maxlen = row / 3 > 1 ? row / 3 : 1, left = 0;
      int32_t id = -1;
      for (int64_t i = 0; i < row; i++) {
        if (left == 0) { id++; left = 1 + below(seed, maxlen); }
        y[i] = id;
        left--;
      }
      break;
    }
    case GEN_INDICES: {          /* a partial shuffle of 0 .. range-1 */
      int64_t n = range > 0 ? range : 1;
      for (int64_t i = 0; i < row; i++) {
        if (i >= n) { y[i] = y[i % n]; continue; }
        int32_t v = (int32_t)below(seed, n);
        for (bool dup = true; dup;) {           /* redraw until new: n >= row here */
          dup = false;
          for (int64_t j = 0; j < i && !dup; j++) dup = y[j] == v;
          if (dup) v = (int32_t)((v + 1) % n);
        }
        y[i] = v;
      }
      break;
    }
    case GEN_BITMAP:             /* one row of a square [n, n] block: r % n is its index */
      for (int64_t i = 0; i < row; i++) y[i] = i == r % row || uniform(seed) < 0.25;
      break;
    default:
      for (int64_t i = 0; i < row; i++) y[i] = (int32_t)below(seed, 4);
      break;
    }
  }
}

/* ------------------------------------------------------------ the call */

/* n random values in [-1, 1) into the target's buffer *x and the float32 copy *r */
static bool fill_qkv(const GenShape *s, uint64_t *seed, void **x, float **r, size_t n) {
  *r = malloc((n ? n : 1) * sizeof **r);
  if (!*r) return false;
  bool half = s->dtype != DT_F32 && !s->store_f32;
  *x = half ? malloc((n ? n : 1) * 2) : *r;
  if (!*x) return false;
  for (size_t i = 0; i < n; i++) {
    float f = (float)(uniform(seed) * 2 - 1);
    if (s->dtype != DT_F32) {
      uint16_t h = gen_to_half(f, s->dtype);
      f = gen_from_half(h, s->dtype);
      if (half) ((uint16_t *)*x)[i] = h;
    }
    (*r)[i] = f;
  }
  return true;
}

static DLDataType dl_of(IrDtype dt) {
  switch (dt) {
  case DT_BF16: return (DLDataType){ kDLBfloat, 16, 1 };
  case DT_F16: return (DLDataType){ kDLFloat, 16, 1 };
  case DT_F64: return (DLDataType){ kDLFloat, 64, 1 };
  case DT_I32: return (DLDataType){ kDLInt, 32, 1 };
  default: return (DLDataType){ kDLFloat, 32, 1 };
  }
}

static bool half_storage(const GenCall *c) { return c->s.dtype != DT_F32 && !c->s.store_f32; }

void gen_poison(GenCall *c) {
  size_t no = (size_t)(c->s.B * c->s.Hq * c->s.S * c->s.D), nl = (size_t)(c->s.B * c->s.Hq * c->s.S);
  if (half_storage(c)) {
    uint16_t nan = c->s.dtype == DT_BF16 ? 0x7fc0 : 0x7e00;
    for (size_t i = 0; i < no; i++) ((uint16_t *)c->o)[i] = nan;
  } else
    for (size_t i = 0; i < no; i++) ((float *)c->o)[i] = NAN;
  for (size_t i = 0; i < nl; i++) c->lse[i] = NAN;
}

static bool fail(char *err, size_t n, const char *msg) {
  snprintf(err, n, "%s", msg);
  return false;
}

bool gen_call_init(GenCall *c, const IrPattern *p, const GenShape *s,
                   const attnc_named_tensor *given, int ngiven, char *err, size_t errlen) {
  memset(c, 0, sizeof *c);
  c->s = *s;
  if (c->s.dtype == DT_F32) c->s.store_f32 = true;
  uint64_t seed = s->seed ? s->seed : gen_seed(1);
  int64_t qs[4] = { s->B, s->Hq, s->S, s->D }, ks[4] = { s->B, s->Hkv, s->S, s->D };
  memcpy(c->qshape, qs, sizeof qs);
  memcpy(c->kshape, ks, sizeof ks);
  c->lshape[0] = s->B, c->lshape[1] = s->Hq, c->lshape[2] = s->S;
  size_t nq = (size_t)(s->B * s->Hq * s->S * s->D), nk = (size_t)(s->B * s->Hkv * s->S * s->D);
  size_t nl = (size_t)(s->B * s->Hq * s->S);
  if (!fill_qkv(&c->s, &seed, &c->q, &c->qr, nq) || !fill_qkv(&c->s, &seed, &c->k, &c->kr, nk) ||
      !fill_qkv(&c->s, &seed, &c->v, &c->vr, nk))
    return fail(err, errlen, "out of memory for q, k and v");
  c->o = malloc((nq ? nq : 1) * (half_storage(c) ? 2 : 4));
  c->lse = malloc((nl ? nl : 1) * sizeof *c->lse);
  if (!c->o || !c->lse) return fail(err, errlen, "out of memory for the output");
  gen_poison(c);

  DLDataType dt = dl_of(half_storage(c) ? c->s.dtype : DT_F32), f32 = dl_of(DT_F32);
  DLDevice cpu = { kDLCPU, 0 };
  c->tq = (DLTensor){ c->q, cpu, 4, dt, c->qshape, NULL, 0 };
  c->tk = (DLTensor){ c->k, cpu, 4, dt, c->kshape, NULL, 0 };
  c->tv = (DLTensor){ c->v, cpu, 4, dt, c->kshape, NULL, 0 };
  c->to = (DLTensor){ c->o, cpu, 4, dt, c->qshape, NULL, 0 };
  c->tl = (DLTensor){ c->lse, cpu, 3, f32, c->lshape, NULL, 0 };
  c->rq = (DLTensor){ c->qr, cpu, 4, f32, c->qshape, NULL, 0 };
  c->rk = (DLTensor){ c->kr, cpu, 4, f32, c->kshape, NULL, 0 };
  c->rv = (DLTensor){ c->vr, cpu, 4, f32, c->kshape, NULL, 0 };

  if (ngiven > GEN_MAX_INPUTS) return fail(err, errlen, "too many runtime inputs");
  for (int i = 0; i < ngiven; i++) {
    c->named[c->ninputs] = given[i];
    c->rule[c->ninputs++] = GEN_GIVEN;
  }
  for (int i = 0; i < p->ninputs; i++) {
    const IrInput *in = &p->inputs[i];
    bool have = false;
    for (int j = 0; j < ngiven; j++) have |= strcmp(given[j].name, in->name) == 0;
    if (have) continue;
    if (c->ninputs == GEN_MAX_INPUTS) return fail(err, errlen, "too many runtime inputs");
    int slot = c->ninputs;
    int64_t range = 1, n = 1, *shape = c->in_shape[slot];
    for (int d = 0; d < in->rank; d++) n *= (shape[d] = dim_size(in->dims[d], s));
    GenRule rule = rule_of(in, s, &range);
    void *data = malloc((size_t)(n > 0 ? n : 1) * 4);
    if (!data) return fail(err, errlen, "out of memory for the runtime inputs");
    c->in_data[slot] = data;
    if (in->dtype == DT_I32) {
      int64_t row = in->rank ? shape[in->rank - 1] : 1;
      fill_input(rule, data, row > 0 ? n / row : 0, row, range, &seed);
    } else
      for (int64_t e = 0; e < n; e++) ((float *)data)[e] = (float)(uniform(&seed) - 0.5);
    c->in_t[slot] = (DLTensor){ data, cpu, in->rank, dl_of(in->dtype), shape, NULL, 0 };
    c->named[slot] = (attnc_named_tensor){ in->name, &c->in_t[slot] };
    c->rule[slot] = rule;
    c->ninputs++;
  }
  if (ngiven > 0) {   /* the given inputs against the spec now, not at the first run */
    DLTensor o64, lse;
    double o1;             /* args_check reads shapes, never the data */
    float l1;
    attnc_args a = gen_ref_args(c, &o64, &o1, &lse, &l1);
    IrTensorView views[GEN_MAX_INPUTS];
    Shape sh;
    Diag d = { 0 };
    if (args_check(p, &a, true, &sh, views, &d) != ATTNC_OK) return fail(err, errlen, d.msg);
  }
  return true;
}

void gen_call_free(GenCall *c) {
  if (c->q != c->qr) free(c->q);
  if (c->k != c->kr) free(c->k);
  if (c->v != c->vr) free(c->v);
  free(c->qr), free(c->kr), free(c->vr), free(c->o), free(c->lse);
  for (int i = 0; i < c->ninputs; i++) free(c->in_data[i]);
  memset(c, 0, sizeof *c);
}

attnc_args gen_args(GenCall *c) {
  return (attnc_args){ .q = &c->tq, .k = &c->tk, .v = &c->tv, .o = &c->to, .lse = &c->tl,
                       .inputs = c->named, .ninputs = c->ninputs };
}

attnc_args gen_ref_args(GenCall *c, DLTensor *o64, double *o, DLTensor *lse, float *l) {
  *o64 = (DLTensor){ o, { kDLCPU, 0 }, 4, dl_of(DT_F64), c->qshape, NULL, 0 };
  *lse = (DLTensor){ l, { kDLCPU, 0 }, 3, dl_of(DT_F32), c->lshape, NULL, 0 };
  return (attnc_args){ .q = &c->rq, .k = &c->rk, .v = &c->rv, .o = o64, .lse = lse,
                       .inputs = c->named, .ninputs = c->ninputs };
}

double gen_out(const GenCall *c, size_t i) {
  if (half_storage(c)) return gen_from_half(((const uint16_t *)c->o)[i], c->s.dtype);
  return ((const float *)c->o)[i];
}

/* ------------------------------------------------------------ pairs */

static int64_t brute_force(const IrPattern *p, const Shape *sh, const IrTensorView *views) {
  if (p->mask < 0) return sh->B * sh->Hq * sh->Sq * sh->Sk;
  double *vals = malloc((size_t)(p->nnodes > 0 ? p->nnodes : 1) * sizeof *vals);
  if (!vals) return -1;
  Diag d = { 0 };
  int64_t n = 0;
  IrEnv env = { .sq = sh->Sq, .sk = sh->Sk, .inputs = views };
  for (env.b = 0; env.b < sh->B; env.b++)
    for (env.h = 0; env.h < sh->Hq; env.h++)
      for (env.q = 0; env.q < sh->Sq; env.q++)
        for (env.k = 0; env.k < sh->Sk; env.k++) {
          ir_env_coords(p, &env);
          n += ir_eval(p, p->mask, &env, vals, &d) != 0;
          if (!diag_ok(&d)) { free(vals); return -1; }
        }
  free(vals);
  return n;
}

int64_t gen_allowed_pairs(const IrPattern *p, attnc_target t, const attnc_args *args) {
  IrTensorView views[GEN_MAX_INPUTS];
  Shape sh;
  Diag d = { 0 };
  if (p->ninputs > GEN_MAX_INPUTS || args_check(p, args, false, &sh, views, &d) != ATTNC_OK) return -1;
  Arena a;
  arena_init(&a);
  Plan *pl = NULL;
  PlanOptions po = { .target = t, .B = sh.B, .H = sh.Hq, .Sq = sh.Sq, .Sk = sh.Sk, .D = sh.D };
  int64_t n = -1;
  if (plan_build(&a, p, &po, NULL, &pl, &d) == ATTNC_OK) {
    PlanRun r = { .B = sh.B, .H = sh.Hq, .Sq = sh.Sq, .Sk = sh.Sk, .inputs = views };
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
  if (n < 0 && sh.B * sh.Hq <= BRUTE_FORCE_MAX / (sh.Sq * sh.Sk > 0 ? sh.Sq * sh.Sk : 1))
    n = brute_force(p, &sh, views);
  return n;
}
