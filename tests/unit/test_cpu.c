/*
** test_cpu.c -- the LLVM CPU backend against the reference executor:
** patterns built with the IR builder (dense, causal, windows, score
** modifications, grids, runtime inputs, a fully masked row), every spec
** in specs/, fp32 and bf16, ragged tails, GQA, BSHD strides, LSE, the
** thread pool, and an ahead-of-time object linked into a C program.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include "tests/unit/testutil.h"
#include "backend/backend.h"
#include "backend/cpu/cpu.h"
#include "runtime/pool.h"
#include "runtime/runtime.h"

#define TOL_F32  1e-4
#define TOL_BF16 2e-2

/* ------------------------------------------------------------ tensors */

static uint64_t rng_state = 88172645463325252ull;
static double urand(void) {                   /* xorshift, in [-1, 1) */
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (double)(rng_state >> 11) / (double)(1ull << 53) * 2 - 1;
}

static const DLDataType F32 = { kDLFloat, 32, 1 }, F64 = { kDLFloat, 64, 1 },
                        BF16 = { kDLBfloat, 16, 1 }, I32 = { kDLInt, 32, 1 };

/* a host tensor; perm = memory order of the logical dims (NULL: compact) */
typedef struct T {
  void *data;
  int64_t shape[4], strides[4];
  DLTensor t;
} T;

static T *tmake(int nd, const int64_t *s, DLDataType dt, const int *perm) {
  T *x = calloc(1, sizeof *x);
  int64_t n = 1;
  for (int i = 0; i < nd; i++) { x->shape[i] = s[i]; n *= s[i]; }
  x->data = calloc((size_t)(n ? n : 1), dt.bits / 8);
  int64_t st = 1;
  for (int j = nd - 1; j >= 0; j--) {
    int i = perm ? perm[j] : j;
    x->strides[i] = st;
    st *= s[i];
  }
  x->t = (DLTensor){ .data = x->data, .device = { kDLCPU, 0 }, .ndim = nd, .dtype = dt,
                     .shape = x->shape, .strides = x->strides };
  return x;
}

static void tfree(T *x) {
  if (x) free(x->data);
  free(x);
}

static int64_t toff(const T *x, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
  return i0 * x->strides[0] + i1 * x->strides[1] + i2 * x->strides[2] + (x->t.ndim > 3 ? i3 * x->strides[3] : 0);
}

static uint16_t to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  u += 0x7fff + ((u >> 16) & 1);
  return (uint16_t)(u >> 16);
}

static float from_bf16(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* element as double, whatever the dtype */
static double tget(const T *x, int64_t o) {
  switch (x->t.dtype.code) {
  case kDLBfloat: return from_bf16(((uint16_t *)x->data)[o]);
  case kDLInt: return ((int32_t *)x->data)[o];
  default: return x->t.dtype.bits == 64 ? ((double *)x->data)[o] : ((float *)x->data)[o];
  }
}

/*
** Fill a 4-D attention tensor with random values: the kernel's copy in
** its dtype, and a float32 copy of the same (rounded) values for the
** reference.
*/
static void tfill(T *x, T *ref) {
  for (int64_t a = 0; a < x->shape[0]; a++)
    for (int64_t b = 0; b < x->shape[1]; b++)
      for (int64_t c = 0; c < x->shape[2]; c++)
        for (int64_t d = 0; d < x->shape[3]; d++) {
          float v = (float)urand();
          int64_t o = toff(x, a, b, c, d), r = toff(ref, a, b, c, d);
          if (x->t.dtype.code == kDLBfloat) {
            ((uint16_t *)x->data)[o] = to_bf16(v);
            ((float *)ref->data)[r] = from_bf16(to_bf16(v));
          } else {
            ((float *)x->data)[o] = v;
            ((float *)ref->data)[r] = v;
          }
        }
}

/* ------------------------------------------------------------- a call */

typedef struct Case {
  int64_t B, Hq, Hkv, Sq, Sk, D, Dv;
  IrDtype dt;
  bool bshd;                  /* q, k, v, o stored as [B, S, H, D] */
  int threads;                /* 0: no pool */
  bool dense;                 /* no plan: every kv tile through the mask */
} Case;

typedef struct Result { double err_o, err_lse; attnc_status st; char msg[1024]; } Result;

static int64_t dim_size(IrDim dm, const Case *c) {
  int64_t div = dm.value >= 1 ? dm.value : 1;
  switch (dm.sym) {
  case DIM_CONST: return dm.value;
  case DIM_B: return c->B;
  case DIM_H: return c->Hq;
  case DIM_HKV: return c->Hkv;
  case DIM_SQ: return (c->Sq + div - 1) / div;
  case DIM_SK: return (c->Sk + div - 1) / div;
  }
  return 1;
}

/*
** Run pattern p on the cpu target and on the reference with the same
** random inputs; the max abs errors of O and of LSE (where finite on
** either side; an infinite LSE must match exactly).
*/
static Result run_case(const IrPattern *p, const Case *c) {
  Result r = { 0 };
  static const int bshd[4] = { 0, 2, 1, 3 };
  const int *perm = c->bshd ? bshd : NULL;
  DLDataType dt = c->dt == DT_BF16 ? BF16 : F32;
  int64_t qs[4] = { c->B, c->Hq, c->Sq, c->D }, ks[4] = { c->B, c->Hkv, c->Sk, c->D };
  int64_t vs[4] = { c->B, c->Hkv, c->Sk, c->Dv }, os[4] = { c->B, c->Hq, c->Sq, c->Dv };
  int64_t ls[3] = { c->B, c->Hq, c->Sq };
  T *q = tmake(4, qs, dt, perm), *k = tmake(4, ks, dt, perm), *v = tmake(4, vs, dt, perm);
  T *qr = tmake(4, qs, F32, NULL), *kr = tmake(4, ks, F32, NULL), *vr = tmake(4, vs, F32, NULL);
  T *o = tmake(4, os, dt, perm), *or_ = tmake(4, os, F64, NULL);
  T *lse = tmake(3, ls, F32, NULL), *lr = tmake(3, ls, F32, NULL);
  tfill(q, qr);
  tfill(k, kr);
  tfill(v, vr);
  /* runtime inputs: ints in [0, 4), floats in [-1, 1) */
  T *in[8] = { 0 };
  attnc_named_tensor named[8];
  for (int i = 0; i < p->ninputs && i < 8; i++) {
    int64_t s[4];
    for (int j = 0; j < p->inputs[i].rank; j++) s[j] = dim_size(p->inputs[i].dims[j], c);
    in[i] = tmake(p->inputs[i].rank, s, p->inputs[i].dtype == DT_I32 ? I32 : F32, NULL);
    int64_t n = 1;
    for (int j = 0; j < p->inputs[i].rank; j++) n *= s[j];
    for (int64_t e = 0; e < n; e++) {
      double u = urand();
      if (p->inputs[i].dtype == DT_I32) ((int32_t *)in[i]->data)[e] = (int32_t)((u + 1) * 2);
      else ((float *)in[i]->data)[e] = (float)u;
    }
    named[i] = (attnc_named_tensor){ p->inputs[i].name, &in[i]->t };
  }
  attnc_args ra = { .q = &qr->t, .k = &kr->t, .v = &vr->t, .o = &or_->t, .lse = &lr->t,
                    .inputs = named, .ninputs = p->ninputs };
  attnc_args ca = { .q = &q->t, .k = &k->t, .v = &v->t, .o = &o->t, .lse = &lse->t,
                    .inputs = named, .ninputs = p->ninputs };
  Diag d = { 0 };
  CpuKernel *kern = NULL;
  CpuOptions opt = { .dtype = c->dt, .D = (int)c->D, .Dv = (int)c->Dv };
  Arena pa;
  arena_init(&pa);
  Plan *plan = NULL;
  if (!c->dense) {
    if ((r.st = cpu_plan(&pa, p, c->B, c->Hq, c->Sq, c->Sk, c->D, NULL, &plan, &d))) {
      snprintf(r.msg, sizeof r.msg, "plan: %.900s", d.msg);
      arena_free(&pa);
      return r;
    }
    opt.plan = plan;
  }
  Pool *pool = c->threads > 0 ? pool_new(c->threads) : NULL;
  CpuExecutor ex = { pool_parallel_for, pool };
  if ((r.st = ref_run(p, &ra, &d)) || (r.st = cpu_compile(p, &opt, &kern, &d)) ||
      (r.st = cpu_run(kern, p, &ca, pool ? &ex : NULL, &d))) {
    snprintf(r.msg, sizeof r.msg, "%s", d.msg);
  } else {
    for (int64_t b = 0; b < c->B; b++)
      for (int64_t h = 0; h < c->Hq; h++)
        for (int64_t i = 0; i < c->Sq; i++) {
          for (int64_t e = 0; e < c->Dv; e++) {
            double x = tget(o, toff(o, b, h, i, e)), y = tget(or_, toff(or_, b, h, i, e));
            double err = isnan(x) ? INFINITY : fabs(x - y);
            if (err > r.err_o) r.err_o = err;
          }
          double x = tget(lse, toff(lse, b, h, i, 0)), y = tget(lr, toff(lr, b, h, i, 0));
          double err = (isinf(x) || isinf(y)) ? (x == y ? 0 : INFINITY) : isnan(x) ? INFINITY : fabs(x - y);
          if (err > r.err_lse) r.err_lse = err;
        }
  }
  cpu_kernel_free(kern);
  pool_free(pool);
  arena_free(&pa);
  T *all[] = { q, k, v, qr, kr, vr, o, or_, lse, lr };
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) tfree(all[i]);
  for (int i = 0; i < 8; i++) tfree(in[i]);
  return r;
}

/* the default cases: ragged tails, GQA, both layouts, both dtypes */
/* the cases every pattern runs: ragged tails, GQA, BSHD, Sq != Sk, bf16, threads */
static const Case CASES[] = {
  { 2, 4, 2, 70, 133, 32, 48, DT_F32, true, 2, false },
  { 1, 4, 2, 45, 45, 16, 16, DT_BF16, false, 0, false },
};
/* and builder patterns also without a plan */
static const Case DENSE_CASE = { 1, 2, 2, 77, 77, 32, 32, DT_F32, false, 0, true };

static void check_pattern(const IrPattern *p, const char *what, bool dense_too) {
  size_t ncases = sizeof CASES / sizeof *CASES;
  for (size_t i = 0; i < ncases + dense_too; i++) {
    Case c = i < ncases ? CASES[i] : DENSE_CASE;
    if (p->grid_rank > 0) {                   /* the grid fixes the token count */
      int64_t n = 1;
      for (int a = 0; a < p->grid_rank; a++) n *= p->grid[a];
      if (n > 4096) continue;
      c.Sq = c.Sk = n;
    }
    if (p->ninputs > 0) c.Sk = c.Sq;          /* inputs may index q and k alike */
    Result r = run_case(p, &c);
    double tol = c.dt == DT_BF16 ? TOL_BF16 : TOL_F32;
    ck_assert_msg(r.st == ATTNC_OK, "%s case %zu: %s", what, i, r.msg);
    if (getenv("ATTNC_TEST_VERBOSE"))
      fprintf(stderr, "%s case %zu: O %.3g LSE %.3g\n", what, i, r.err_o, r.err_lse);
    ck_assert_msg(r.err_o <= tol && r.err_lse <= tol * 10, "%s case %zu (%s): max abs error O %.3g LSE %.3g",
                  what, i, ir_dtype_name(c.dt), r.err_o, r.err_lse);
  }
}

/* ------------------------------------------------- patterns by builder */

typedef struct PB { Arena a; IrPattern *p; Diag d; } PB;

static PB *pb_new(const char *name) {
  PB *b = calloc(1, sizeof *b);
  arena_init(&b->a);
  b->p = ir_pattern_new(&b->a, "test.lua");
  b->p->name = name;
  return b;
}

static void pb_free(PB *b) {
  arena_free(&b->a);
  free(b);
}

static int n2(PB *b, IrOp op, int x, int y) {
  int a[2] = { x, y };
  int n = ir_node(b->p, op, a, 2, 0, 1, &b->d);
  ck_assert_msg(n >= 0, "%s", b->d.msg);
  return n;
}

static int n1(PB *b, IrOp op, int x) {
  int n = ir_node(b->p, op, &x, 1, 0, 1, &b->d);
  ck_assert_msg(n >= 0, "%s", b->d.msg);
  return n;
}

static int leaf(PB *b, IrOp op) { return ir_leaf(b->p, op, 0, 1); }
static int ci(PB *b, int64_t v) { return ir_const_int(b->p, v, 1); }
static int cf(PB *b, double v) { return ir_const_float(b->p, v, 1); }

START_TEST(dense) {
  PB *b = pb_new("dense");
  b->p->mask = b->p->score = -1;
  check_pattern(b->p, "dense", true);
  pb_free(b);
}
END_TEST

START_TEST(causal) {
  PB *b = pb_new("causal");
  b->p->score = -1;
  b->p->mask = n2(b, IR_LE, leaf(b, IR_K), leaf(b, IR_Q));
  check_pattern(b->p, "causal", true);
  pb_free(b);
}
END_TEST

/* window + alibi with a head-dependent slope, and floor div/mod of negatives */
START_TEST(window_alibi) {
  PB *b = pb_new("window_alibi");
  int q = leaf(b, IR_Q), k = leaf(b, IR_K);
  int diff = n2(b, IR_SUB, q, k);
  b->p->mask = n2(b, IR_AND, n2(b, IR_LE, n1(b, IR_ABS, diff), ci(b, 20)),
                  n2(b, IR_NE, n2(b, IR_MOD, diff, ci(b, 3)), ci(b, 1)));
  int slope = n2(b, IR_DIV, cf(b, 1.0), n1(b, IR_TOFLOAT, n2(b, IR_ADD, leaf(b, IR_HEAD), ci(b, 1))));
  int bias = n2(b, IR_MUL, slope, n1(b, IR_TOFLOAT, n2(b, IR_IDIV, n2(b, IR_SUB, k, q), ci(b, 4))));
  b->p->score = n2(b, IR_ADD, leaf(b, IR_SCORE), bias);
  check_pattern(b->p, "window_alibi", true);
  pb_free(b);
}
END_TEST

/* softcap c * tanh(s / c), a score mod applied before the mask */
START_TEST(softcap_prefix) {
  PB *b = pb_new("softcap");
  int q = leaf(b, IR_Q), k = leaf(b, IR_K);
  b->p->mask = n2(b, IR_OR, n2(b, IR_LT, k, ci(b, 9)), n2(b, IR_LE, k, q));
  int c = cf(b, 0.5);
  b->p->score = n2(b, IR_MUL, c, n1(b, IR_TANH, n2(b, IR_DIV, leaf(b, IR_SCORE), c)));
  check_pattern(b->p, "softcap", true);
  pb_free(b);
}
END_TEST

/* rows 0..4 allowed nothing: O = 0, LSE = -inf */
START_TEST(empty_rows) {
  PB *b = pb_new("empty_rows");
  int q = leaf(b, IR_Q), k = leaf(b, IR_K);
  b->p->mask = n2(b, IR_AND, n2(b, IR_GE, q, ci(b, 5)), n2(b, IR_LT, k, n2(b, IR_SUB, q, ci(b, 4))));
  b->p->score = -1;
  check_pattern(b->p, "empty_rows", true);
  pb_free(b);
}
END_TEST

/* 2-D neighborhood on a 9 x 8 grid (NATTEN-style clamped window) */
START_TEST(neighborhood2d) {
  PB *b = pb_new("nb2d");
  b->p->grid_rank = 2;
  b->p->grid[0] = 9;
  b->p->grid[1] = 8;
  int r = 1, m = -1;
  for (int ax = 0; ax < 2; ax++) {
    int qc = ir_leaf(b->p, IR_QC, ax, 1), kc = ir_leaf(b->p, IR_KC, ax, 1);
    int cl = n2(b, IR_MIN, n2(b, IR_MAX, qc, ci(b, r)), ci(b, b->p->grid[ax] - 1 - r));
    int t = n2(b, IR_LE, n1(b, IR_ABS, n2(b, IR_SUB, kc, cl)), ci(b, r));
    m = m < 0 ? t : n2(b, IR_AND, m, t);
  }
  b->p->mask = m;
  b->p->score = -1;
  check_pattern(b->p, "neighborhood2d", true);
  pb_free(b);
}
END_TEST

/* documents from a runtime input (doc[q] == doc[k]) and a bias table */
START_TEST(inputs) {
  PB *b = pb_new("docs_bias");
  IrInput doc = { .name = "doc", .dtype = DT_I32, .rank = 1, .dims = { { DIM_SQ, 1 } }, .line = 1 };
  IrInput bias = { .name = "bias", .dtype = DT_F32, .rank = 2, .dims = { { DIM_H, 1 }, { DIM_CONST, 4 } }, .line = 1 };
  int di = ir_add_input(b->p, &doc), bi = ir_add_input(b->p, &bias);
  int q = leaf(b, IR_Q), k = leaf(b, IR_K);
  int dq = ir_node(b->p, IR_LOAD, &q, 1, di, 1, &b->d), dk = ir_node(b->p, IR_LOAD, &k, 1, di, 1, &b->d);
  b->p->mask = n2(b, IR_EQ, dq, dk);
  int ix[2] = { leaf(b, IR_HEAD), n2(b, IR_MOD, n2(b, IR_SUB, q, k), ci(b, 4)) };
  int bl = ir_node(b->p, IR_LOAD, ix, 2, bi, 1, &b->d);
  ck_assert_int_ge(bl, 0);
  b->p->score = n2(b, IR_ADD, leaf(b, IR_SCORE), bl);
  check_pattern(b->p, "docs_bias", true);
  pb_free(b);
}
END_TEST

/* contains: k's block is one of route[h, q's block, 0..2] */
START_TEST(routed) {
  PB *b = pb_new("routed");
  IrInput route = { .name = "route", .dtype = DT_I32, .rank = 3,
                    .dims = { { DIM_H, 1 }, { DIM_SQ, 16 }, { DIM_CONST, 3 } }, .line = 1 };
  int ri = ir_add_input(b->p, &route);
  int args[3] = { leaf(b, IR_HEAD), n2(b, IR_IDIV, leaf(b, IR_Q), ci(b, 16)), n2(b, IR_IDIV, leaf(b, IR_K), ci(b, 16)) };
  b->p->mask = ir_node(b->p, IR_CONTAINS, args, 3, ri, 1, &b->d);
  ck_assert_msg(b->p->mask >= 0, "%s", b->d.msg);
  b->p->score = -1;
  check_pattern(b->p, "routed", true);
  pb_free(b);
}
END_TEST

/* ------------------------------------------------------------ specs */

START_TEST(specs) {
  DIR *dir = opendir(tu_path("specs"));
  if (!dir) return;                         /* no specs yet */
  attnc_ctx *ctx = attnc_ctx_new();
  struct dirent *e;
  int n = 0;
  while ((e = readdir(dir))) {
    size_t len = strlen(e->d_name);
    if (len < 5 || strcmp(e->d_name + len - 4, ".lua") != 0) continue;
    char rel[512];
    snprintf(rel, sizeof rel, "specs/%s", e->d_name);
    attnc_spec *spec = NULL;
    attnc_error err = { 0 };
    attnc_status st = attnc_spec_load_file(ctx, tu_path(rel), NULL, 0, &spec, &err);
    ck_assert_msg(st == ATTNC_OK, "%s: %s", rel, err.message);
    check_pattern(spec->pat, rel, false);
    attnc_spec_free(spec);
    n++;
  }
  closedir(dir);
  attnc_ctx_free(ctx);
  fprintf(stderr, "test_cpu: %d specs checked\n", n);
}
END_TEST

/* a periodic filter (fixed_sparse's summary columns, blocks wider than a kv
   tile) visits only the tiles holding summary keys; the output must match */
START_TEST(fixed_sparse_periodic) {
  attnc_ctx *ctx = attnc_ctx_new();
  const attnc_define defs[] = { { "block", "256" }, { "summary", "24" } };
  attnc_spec *spec = NULL;
  attnc_error err = { 0 };
  ck_assert_msg(attnc_spec_load_file(ctx, tu_path("specs/fixed_sparse.lua"), defs, 2, &spec, &err) == ATTNC_OK,
                "%s", err.message);
  Case c = { 1, 2, 2, 700, 700, 32, 32, DT_F32, false, 2, false };
  Result r = run_case(spec->pat, &c);
  ck_assert_msg(r.st == ATTNC_OK, "%s", r.msg);
  ck_assert_msg(r.err_o <= TOL_F32 && r.err_lse <= TOL_F32 * 10, "max abs error O %.3g LSE %.3g", r.err_o, r.err_lse);
  attnc_spec_free(spec);
  attnc_ctx_free(ctx);
}
END_TEST

/* ------------------------------------------------------- ahead of time */

static void write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(data, 1, n, f), n);
  fclose(f);
}

/* the program an AOT user writes: read q, k, v, run, write o and lse */
static const char *AOT_MAIN =
  "#include <stdio.h>\n#include <stdlib.h>\n#include \"kern.h\"\n"
  "static void *rd(const char *p, size_t n) { void *b = malloc(n); FILE *f = fopen(p, \"rb\");\n"
  "  if (!f || fread(b, 1, n, f) != n) exit(2); fclose(f); return b; }\n"
  "int main(void) {\n"
  "  const int64_t B = 1, H = 2, S = 50, D = KERN_D;\n"
  "  size_t n = (size_t)(B * H * S * D) * sizeof(float);\n"
  "  float *q = rd(\"q.bin\", n), *k = rd(\"k.bin\", n), *v = rd(\"v.bin\", n);\n"
  "  float *o = calloc(1, n), *lse = calloc((size_t)(B * H * S), sizeof(float));\n"
  "  attnc_cpu_args a = { .q = q, .k = k, .v = v, .o = o, .lse = lse, .B = B, .Hq = H, .Hkv = H,\n"
  "    .Sq = S, .Sk = S, .scale = 0.25f };\n"
  "  int64_t st[3] = { H * S * D, S * D, D }, ls[3] = { H * S, S, 1 };\n"
  "  for (int i = 0; i < 3; i++) { a.q_strides[i] = a.k_strides[i] = a.v_strides[i] = a.o_strides[i] = st[i];\n"
  "    a.lse_strides[i] = ls[i]; }\n"
  "  int64_t nw = kern_nwork(&a);\n"
  "  kern_work(&a, 0, nw / 2); kern_work(&a, nw / 2, nw);\n"
  "  FILE *f = fopen(\"o.bin\", \"wb\"); fwrite(o, 1, n, f); fwrite(lse, sizeof(float), (size_t)(B * H * S), f);\n"
  "  fclose(f); return 0;\n}\n";

START_TEST(aot) {
  PB *b = pb_new("aot");
  b->p->mask = n2(b, IR_LE, leaf(b, IR_K), leaf(b, IR_Q));
  b->p->score = n2(b, IR_MUL, cf(b, 2.0), n1(b, IR_TANH, n2(b, IR_DIV, leaf(b, IR_SCORE), cf(b, 2.0))));
  char dir[] = "/tmp/attnc_aot_XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char path[600], cmd[2048];
  CpuOptions opt = { .dtype = DT_F32, .D = 16, .Dv = 16, .symbol = "kern" };
  Diag d = { 0 };
  snprintf(path, sizeof path, "%s/kern.o", dir);        /* and kern.h beside it */
  ck_assert_msg(cpu_aot(b->p, DT_F32, 16, 16, "kern", CPU_EMIT_OBJ, path, NULL, &d) == ATTNC_OK, "%s", d.msg);
  snprintf(path, sizeof path, "%s/main.c", dir);
  write_file(path, AOT_MAIN, strlen(AOT_MAIN));
  char *ll = cpu_emit_llvm(b->p, &opt, true, &d);
  ck_assert_msg(ll && strstr(ll, "define void @kern_work"), "no LLVM IR: %s", d.msg);
  free(ll);

  /* inputs, and the reference */
  int64_t s[4] = { 1, 2, 50, 16 }, ls[3] = { 1, 2, 50 };
  T *q = tmake(4, s, F32, NULL), *k = tmake(4, s, F32, NULL), *v = tmake(4, s, F32, NULL);
  T *o = tmake(4, s, F64, NULL), *lse = tmake(3, ls, F32, NULL);
  T *qq = tmake(4, s, F32, NULL), *kk = tmake(4, s, F32, NULL), *vv = tmake(4, s, F32, NULL);
  tfill(q, qq);
  tfill(k, kk);
  tfill(v, vv);
  size_t nb = 1 * 2 * 50 * 16 * sizeof(float);
  const char *names[3] = { "q", "k", "v" };
  T *ts[3] = { q, k, v };
  for (int i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s.bin", dir, names[i]);
    write_file(path, ts[i]->data, nb);
  }
  attnc_args ra = { .q = &q->t, .k = &k->t, .v = &v->t, .o = &o->t, .lse = &lse->t, .scale = 0.25 };
  ck_assert_msg(ref_run(b->p, &ra, &d) == ATTNC_OK, "%s", d.msg);

  /* link the object into the program with the system compiler, and run it */
  snprintf(cmd, sizeof cmd, "cd %s && cc -std=c11 -O1 -o main main.c kern.o -lm 2>&1 && ./main", dir);
  ck_assert_msg(system(cmd) == 0, "building or running the AOT program failed: %s", cmd);
  snprintf(path, sizeof path, "%s/o.bin", dir);
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  float *out = malloc(nb + 100 * sizeof(float));
  ck_assert_uint_eq(fread(out, 1, nb + 100 * sizeof(float), f), nb + 100 * sizeof(float));
  fclose(f);
  double err = 0;
  for (int64_t i = 0; i < 1 * 2 * 50 * 16; i++) err = fmax(err, fabs(out[i] - ((double *)o->data)[i]));
  for (int64_t i = 0; i < 100; i++) err = fmax(err, fabs(out[1600 + i] - ((float *)lse->data)[i]));
  ck_assert_msg(err <= TOL_F32, "AOT kernel: max abs error %.3g", err);
  free(out);
  T *all[] = { q, k, v, o, lse, qq, kk, vv };
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) tfree(all[i]);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  ck_assert_int_eq(system(cmd), 0);
  pb_free(b);
}
END_TEST

/* ------------------------------------------------------------- cache */

/* a one-entry cache */
typedef struct OneCache { char *key; size_t keylen; void *data; size_t len; int gets, hits, puts; } OneCache;

static bool one_get(void *ud, const void *key, size_t keylen, void **data, size_t *len) {
  OneCache *c = ud;
  c->gets++;
  if (!c->key || c->keylen != keylen || memcmp(c->key, key, keylen) != 0) return false;
  *data = malloc(c->len);
  memcpy(*data, c->data, c->len);
  *len = c->len;
  c->hits++;
  return true;
}

static void one_put(void *ud, const void *key, size_t keylen, const void *data, size_t len) {
  OneCache *c = ud;
  free(c->key);
  free(c->data);
  c->key = malloc(keylen);
  memcpy(c->key, key, keylen);
  c->keylen = keylen;
  c->data = malloc(len);
  memcpy(c->data, data, len);
  c->len = len;
  c->puts++;
}

/* the second compile of the same kernel links the cached object; another
   pattern misses; both still compute the right thing */
START_TEST(cache) {
  PB *b = pb_new("cached");
  b->p->mask = n2(b, IR_LE, leaf(b, IR_K), leaf(b, IR_Q));
  b->p->score = -1;
  OneCache oc = { 0 };
  CpuCache cc = { one_get, one_put, &oc };
  CpuOptions opt = { .dtype = DT_F32, .D = 16, .Dv = 16, .cache = &cc };
  Diag d = { 0 };
  CpuKernel *k1 = NULL, *k2 = NULL, *k3 = NULL;
  ck_assert_msg(cpu_compile(b->p, &opt, &k1, &d) == ATTNC_OK, "%s", d.msg);
  ck_assert(!cpu_kernel_cached(k1));
  ck_assert_int_eq(oc.puts, 1);
  ck_assert_msg(cpu_compile(b->p, &opt, &k2, &d) == ATTNC_OK, "%s", d.msg);
  ck_assert(cpu_kernel_cached(k2));
  ck_assert_int_eq(oc.hits, 1);
  opt.Dv = 8;                                   /* other code: a miss */
  ck_assert_msg(cpu_compile(b->p, &opt, &k3, &d) == ATTNC_OK, "%s", d.msg);
  ck_assert(!cpu_kernel_cached(k3));
  ck_assert_int_eq(oc.hits, 1);
  /* the cached kernel runs like the compiled one */
  int64_t s[4] = { 1, 2, 37, 16 };
  T *q = tmake(4, s, F32, NULL), *o1 = tmake(4, s, F32, NULL), *o2 = tmake(4, s, F32, NULL);
  T *qr = tmake(4, s, F32, NULL);
  tfill(q, qr);
  attnc_args a1 = { .q = &q->t, .k = &q->t, .v = &q->t, .o = &o1->t }, a2 = a1;
  a2.o = &o2->t;
  ck_assert_int_eq(cpu_run(k1, b->p, &a1, NULL, &d), ATTNC_OK);
  ck_assert_int_eq(cpu_run(k2, b->p, &a2, NULL, &d), ATTNC_OK);
  ck_assert_int_eq(memcmp(o1->data, o2->data, 2 * 37 * 16 * sizeof(float)), 0);
  cpu_kernel_free(k1);
  cpu_kernel_free(k2);
  cpu_kernel_free(k3);
  tfree(q); tfree(qr); tfree(o1); tfree(o2);
  free(oc.key);
  free(oc.data);
  pb_free(b);
}
END_TEST

/* ------------------------------------------------------------- errors */

START_TEST(bad_args) {
  PB *b = pb_new("causal");
  b->p->mask = n2(b, IR_LE, leaf(b, IR_K), leaf(b, IR_Q));
  b->p->score = -1;
  Diag d = { 0 };
  CpuKernel *k = NULL;
  CpuOptions opt = { .dtype = DT_F16, .D = 16, .Dv = 16 };
  ck_assert_int_eq(cpu_compile(b->p, &opt, &k, &d), ATTNC_ERR_UNSUPPORTED);
  ck_assert_ptr_null(k);
  /* a kernel for D = 16 refuses D = 32 */
  opt.dtype = DT_F32;
  memset(&d, 0, sizeof d);
  ck_assert_int_eq(cpu_compile(b->p, &opt, &k, &d), ATTNC_OK);
  int64_t s[4] = { 1, 1, 8, 32 };
  T *q = tmake(4, s, F32, NULL), *o = tmake(4, s, F32, NULL);
  attnc_args a = { .q = &q->t, .k = &q->t, .v = &q->t, .o = &o->t };
  ck_assert_int_eq(cpu_run(k, b->p, &a, NULL, &d), ATTNC_ERR_ARG);
  ck_assert_msg(strstr(d.msg, "D = 16"), "%s", d.msg);
  cpu_kernel_free(k);
  tfree(q);
  tfree(o);
  pb_free(b);
}
END_TEST

/* the pool covers every item exactly once, from several threads */
static void count_items(void *arg, int64_t b, int64_t e) {
  int *hits = arg;
  for (int64_t i = b; i < e; i++) __atomic_add_fetch(&hits[i], 1, __ATOMIC_RELAXED);
}

START_TEST(pool) {
  Pool *p = pool_new(3);
  ck_assert_int_eq(pool_size(p), 3);
  for (int round = 0; round < 20; round++) {
    int n = 1 + round * 37;
    int *hits = calloc((size_t)n, sizeof *hits);
    pool_for(p, n, round % 3, count_items, hits);
    for (int i = 0; i < n; i++) ck_assert_int_eq(hits[i], 1);
    free(hits);
  }
  pool_free(p);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("cpu");
  TCase *tc = tcase_create("cpu");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, pool);
  tcase_add_test(tc, dense);
  tcase_add_test(tc, causal);
  tcase_add_test(tc, window_alibi);
  tcase_add_test(tc, softcap_prefix);
  tcase_add_test(tc, empty_rows);
  tcase_add_test(tc, neighborhood2d);
  tcase_add_test(tc, inputs);
  tcase_add_test(tc, routed);
  tcase_add_test(tc, fixed_sparse_periodic);
  tcase_add_test(tc, bad_args);
  tcase_add_test(tc, aot);
  tcase_add_test(tc, cache);
  tcase_add_test(tc, specs);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run(suite()); }
