/*
** test_ref.c -- the reference executor and the IR interpreter against
** direct formulas, on patterns built with the IR builder: dense, causal,
** a fully masked row, GQA, score modifications, BSHD strides, grids,
** runtime inputs (load and contains), argument checks and runtime faults.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/testutil.h"
#include "backend/backend.h"

/* ------------------------------------------------------------ tensors */

/* a host tensor of up to 4 dims, float32 or float64 (or int32 for inputs) */
typedef struct T {
  void *data;
  int64_t shape[4], strides[4];
  DLTensor t;
} T;

static uint64_t rng = 88172645463325252ull;
static double urand(void) {                   /* xorshift, in [-1, 1) */
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (double)(rng >> 11) / (double)(1ull << 53) * 2 - 1;
}

/*
** A tensor with the logical shape s[0..nd-1]; perm gives the memory
** order of the logical dims (NULL = compact row-major), e.g. {0,2,1,3}
** stores [B, H, S, D] as BSHD. Filled with random values.
*/
static T *tmake(int nd, const int64_t *s, DLDataType dt, const int *perm) {
  T *x = calloc(1, sizeof *x);
  int64_t n = 1;
  for (int i = 0; i < nd; i++) { x->shape[i] = s[i]; n *= s[i]; }
  size_t es = dt.bits / 8;
  x->data = calloc((size_t)(n ? n : 1), es);
  int64_t st = 1;
  for (int j = nd - 1; j >= 0; j--) {
    int i = perm ? perm[j] : j;
    x->strides[i] = st;
    st *= s[i];
  }
  for (int64_t i = 0; i < n; i++) {
    double v = urand();
    if (dt.code == kDLInt) ((int32_t *)x->data)[i] = (int32_t)(v * 4);
    else if (dt.bits == 64) ((double *)x->data)[i] = v;
    else ((float *)x->data)[i] = (float)v;
  }
  x->t = (DLTensor){ .data = x->data, .device = { kDLCPU, 0 }, .ndim = nd, .dtype = dt,
                     .shape = x->shape, .strides = perm ? x->strides : NULL };
  return x;
}

static const DLDataType F32 = { kDLFloat, 32, 1 }, F64 = { kDLFloat, 64, 1 }, I32 = { kDLInt, 32, 1 };

static double tget(const T *x, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
  int64_t o = i0 * x->strides[0] + i1 * x->strides[1] + i2 * x->strides[2] +
              (x->t.ndim > 3 ? i3 * x->strides[3] : 0);
  if (x->t.dtype.bits == 64) return ((double *)x->data)[o];
  return ((float *)x->data)[o];
}

static void tfree(T *x) {
  if (!x) return;
  free(x->data);
  free(x);
}

/* ------------------------------------------------------------ the oracle's oracle */

typedef bool (*MaskFn)(int64_t b, int64_t h, int64_t q, int64_t k, void *ud);
typedef double (*ScoreFn)(double s, int64_t b, int64_t h, int64_t q, int64_t k, void *ud);

/* a call: q, k, v, o, lse with B, Hq, Hkv, S(q), S(k), D, Dv */
typedef struct Call {
  int64_t B, Hq, Hkv, Sq, Sk, D, Dv;
  T *q, *k, *v, *o, *lse;
  attnc_args args;
} Call;

static Call *call_make(int64_t B, int64_t Hq, int64_t Hkv, int64_t Sq, int64_t Sk, int64_t D,
                       int64_t Dv, DLDataType dt, const int *perm) {
  Call *c = calloc(1, sizeof *c);
  c->B = B, c->Hq = Hq, c->Hkv = Hkv, c->Sq = Sq, c->Sk = Sk, c->D = D, c->Dv = Dv;
  c->q = tmake(4, (int64_t[]){ B, Hq, Sq, D }, dt, perm);
  c->k = tmake(4, (int64_t[]){ B, Hkv, Sk, D }, dt, perm);
  c->v = tmake(4, (int64_t[]){ B, Hkv, Sk, Dv }, dt, perm);
  c->o = tmake(4, (int64_t[]){ B, Hq, Sq, Dv }, dt, perm);
  c->lse = tmake(3, (int64_t[]){ B, Hq, Sq }, F32, NULL);
  c->args = (attnc_args){ .q = &c->q->t, .k = &c->k->t, .v = &c->v->t, .o = &c->o->t,
                          .lse = &c->lse->t };
  return c;
}

static void call_free(Call *c) {
  tfree(c->q), tfree(c->k), tfree(c->v), tfree(c->o), tfree(c->lse);
  free(c);
}

/*
** The textbook formula, written apart from ref.c: O = sum_k e^{s_k} V_k /
** sum_k e^{s_k} over allowed k (no max subtraction: inputs are small),
** LSE = log sum e^{s_k}. Checks c->o and c->lse within tol.
*/
static void check_direct(const Call *c, double scale, MaskFn mask, ScoreFn score, void *ud, double tol) {
  for (int64_t b = 0; b < c->B; b++)
    for (int64_t h = 0; h < c->Hq; h++)
      for (int64_t q = 0; q < c->Sq; q++) {
        int64_t hk = h * c->Hkv / c->Hq;
        double den = 0, num[16] = { 0 };
        for (int64_t k = 0; k < c->Sk; k++) {
          if (mask && !mask(b, h, q, k, ud)) continue;
          double s = 0;
          for (int64_t i = 0; i < c->D; i++) s += tget(c->q, b, h, q, i) * tget(c->k, b, hk, k, i);
          s *= scale;
          if (score) s = score(s, b, h, q, k, ud);
          double w = exp(s);
          den += w;
          for (int64_t j = 0; j < c->Dv; j++) num[j] += w * tget(c->v, b, hk, k, j);
        }
        for (int64_t j = 0; j < c->Dv; j++) {
          double want = den > 0 ? num[j] / den : 0;
          ck_assert_msg(fabs(tget(c->o, b, h, q, j) - want) <= tol,
                        "O[%lld,%lld,%lld,%lld] = %.9g, want %.9g", (long long)b, (long long)h,
                        (long long)q, (long long)j, tget(c->o, b, h, q, j), want);
        }
        double lse = tget(c->lse, b, h, q, 0), want = den > 0 ? log(den) : -INFINITY;
        if (den > 0) ck_assert_msg(fabs(lse - want) <= 1e-5, "LSE %g want %g", lse, want);
        else ck_assert_msg(isinf(lse) && lse < 0, "LSE of a masked row is %g, want -inf", lse);
      }
}

/* ------------------------------------------------------------ patterns */

static Arena arena;
static Diag diag;

static IrPattern *pat(void) {
  arena_init(&arena);
  memset(&diag, 0, sizeof diag);
  return ir_pattern_new(&arena, "t.lua");
}

static int node(IrPattern *p, IrOp op, int a, int b) {
  int args[2] = { a, b };
  int n = ir_node(p, op, args, ir_op_arity(op), 0, 3, &diag);
  ck_assert_msg(n >= 0, "%s", diag.msg);
  return n;
}

static int leaf(IrPattern *p, IrOp op) { return ir_leaf(p, op, 0, 2); }

static bool m_causal(int64_t b, int64_t h, int64_t q, int64_t k, void *ud) { return k <= q; }
static bool m_before(int64_t b, int64_t h, int64_t q, int64_t k, void *ud) { return k < q; }

START_TEST(dense) {
  IrPattern *p = pat();
  Call *c = call_make(2, 2, 2, 7, 9, 5, 3, F64, NULL);
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_OK);
  check_direct(c, 1 / sqrt(5.0), NULL, NULL, NULL, 1e-12);
  call_free(c);
  arena_free(&arena);
}
END_TEST

START_TEST(causal_f32) {
  IrPattern *p = pat();
  p->mask = node(p, IR_LE, leaf(p, IR_K), leaf(p, IR_Q));
  Call *c = call_make(1, 3, 3, 11, 11, 8, 8, F32, NULL);
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_OK);
  check_direct(c, 1 / sqrt(8.0), m_causal, NULL, NULL, 1e-6);
  call_free(c);
  arena_free(&arena);
}
END_TEST

START_TEST(masked_row) {
  IrPattern *p = pat();
  p->mask = node(p, IR_LT, leaf(p, IR_K), leaf(p, IR_Q));     /* q = 0 sees nothing */
  Call *c = call_make(1, 2, 1, 5, 5, 4, 4, F64, NULL);
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_OK);
  for (int h = 0; h < 2; h++) {
    for (int j = 0; j < 4; j++) ck_assert(tget(c->o, 0, h, 0, j) == 0.0);
    double l = tget(c->lse, 0, h, 0, 0);
    ck_assert(isinf(l) && l < 0);
  }
  check_direct(c, 0.5, m_before, NULL, NULL, 1e-12);
  call_free(c);
  arena_free(&arena);
}
END_TEST

START_TEST(no_keys) {
  IrPattern *p = pat();
  Call *c = call_make(1, 1, 1, 3, 0, 4, 2, F32, NULL);       /* Sk = 0 */
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_OK);
  check_direct(c, 0.5, NULL, NULL, NULL, 0);
  call_free(c);
  c = call_make(0, 2, 1, 3, 3, 4, 2, F32, NULL);             /* B = 0 */
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_OK);
  call_free(c);
  arena_free(&arena);
}
END_TEST

START_TEST(gqa) {
  IrPattern *p = pat();
  p->mask = node(p, IR_LE, leaf(p, IR_K), leaf(p, IR_Q));
  Call *c = call_make(2, 4, 2, 6, 6, 4, 5, F64, NULL);
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_OK);
  check_direct(c, 0.5, m_causal, NULL, NULL, 1e-12);
  call_free(c);
  arena_free(&arena);
}
END_TEST

/* softcap 2 tanh(s / 2) + alibi-like (h + 1) / 4 * (k - q) */
static double sc_mod(double s, int64_t b, int64_t h, int64_t q, int64_t k, void *ud) {
  return 2 * tanh(s / 2) + (double)(h + 1) / 4 * (double)(k - q);
}

START_TEST(score_mod) {
  IrPattern *p = pat();
  int cap = ir_const_float(p, 2.0, 4);
  int soft = node(p, IR_MUL, cap, node(p, IR_TANH, node(p, IR_DIV, leaf(p, IR_SCORE), cap), -1));
  int slope = node(p, IR_DIV, node(p, IR_ADD, leaf(p, IR_HEAD), ir_const_int(p, 1, 5)),
                   ir_const_int(p, 4, 5));
  int bias = node(p, IR_MUL, slope, node(p, IR_SUB, leaf(p, IR_K), leaf(p, IR_Q)));
  p->score = node(p, IR_ADD, soft, bias);
  p->mask = node(p, IR_LE, leaf(p, IR_K), leaf(p, IR_Q));
  Call *c = call_make(1, 2, 2, 6, 6, 3, 2, F64, NULL);
  c->args.scale = 0.7;                                       /* explicit scale wins */
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_OK);
  check_direct(c, 0.7, m_causal, sc_mod, NULL, 1e-12);
  c->args.scale = 0;
  p->scale = 0.3;                                            /* then the spec's */
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_OK);
  check_direct(c, 0.3, m_causal, sc_mod, NULL, 1e-12);
  call_free(c);
  arena_free(&arena);
}
END_TEST

/* a score of -inf on every allowed key is a masked row too */
START_TEST(score_neg_inf) {
  IrPattern *p = pat();
  p->score = ir_const_float(p, -INFINITY, 4);
  Call *c = call_make(1, 1, 1, 2, 3, 2, 2, F64, NULL);
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_OK);
  for (int q = 0; q < 2; q++) {
    ck_assert(tget(c->o, 0, 0, q, 0) == 0 && tget(c->o, 0, 0, q, 1) == 0);
    ck_assert(isinf(tget(c->lse, 0, 0, q, 0)));
  }
  call_free(c);
  arena_free(&arena);
}
END_TEST

START_TEST(bshd) {
  IrPattern *p = pat();
  p->mask = node(p, IR_LE, leaf(p, IR_K), leaf(p, IR_Q));
  static const int bshd[4] = { 0, 2, 1, 3 };
  Call *c = call_make(2, 4, 2, 5, 5, 3, 3, F32, bshd);
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_OK);
  check_direct(c, 1 / sqrt(3.0), m_causal, NULL, NULL, 1e-6);
  call_free(c);
  arena_free(&arena);
}
END_TEST

/* 2-D grid 3x4: |qy - ky| <= 1 and |qx - kx| <= 1 */
static bool m_box(int64_t b, int64_t h, int64_t q, int64_t k, void *ud) {
  return llabs(q / 4 - k / 4) <= 1 && llabs(q % 4 - k % 4) <= 1;
}

START_TEST(grid2d) {
  IrPattern *p = pat();
  p->grid_rank = 2, p->grid[0] = 3, p->grid[1] = 4;
  int one = ir_const_int(p, 1, 2);
  int dy = node(p, IR_ABS, node(p, IR_SUB, ir_leaf(p, IR_QC, 0, 2), ir_leaf(p, IR_KC, 0, 2)), -1);
  int dx = node(p, IR_ABS, node(p, IR_SUB, ir_leaf(p, IR_QC, 1, 2), ir_leaf(p, IR_KC, 1, 2)), -1);
  p->mask = node(p, IR_AND, node(p, IR_LE, dy, one), node(p, IR_LE, dx, one));
  Call *c = call_make(1, 2, 2, 12, 12, 4, 4, F64, NULL);
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_OK);
  check_direct(c, 0.5, m_box, NULL, NULL, 1e-12);
  call_free(c);
  /* the grid must hold Sq and Sk tokens */
  c = call_make(1, 1, 1, 10, 10, 4, 4, F64, NULL);
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_ERR_ARG);
  ck_assert_str_eq(diag.msg, "t.lua: spec grid 3x4 has 12 tokens but Sq = 10");
  call_free(c);
  arena_free(&arena);
}
END_TEST

/* documents: doc[q] == doc[k] with doc = 0 0 0 1 1 2 2 2 */
static const int32_t docs[8] = { 0, 0, 0, 1, 1, 2, 2, 2 };
static bool m_doc(int64_t b, int64_t h, int64_t q, int64_t k, void *ud) { return docs[q] == docs[k]; }

static IrPattern *doc_pattern(void) {
  IrPattern *p = pat();
  IrInput in = { .name = "doc", .dtype = DT_I32, .rank = 1, .dims = { { DIM_SQ, 1 } }, .line = 7 };
  ck_assert_int_eq(ir_add_input(p, &in), 0);
  int lq = ir_node(p, IR_LOAD, (int[]){ leaf(p, IR_Q) }, 1, 0, 8, &diag);
  int lk = ir_node(p, IR_LOAD, (int[]){ leaf(p, IR_K) }, 1, 0, 8, &diag);
  p->mask = node(p, IR_EQ, lq, lk);
  return p;
}

START_TEST(input_load) {
  IrPattern *p = doc_pattern();
  Call *c = call_make(1, 2, 1, 8, 8, 4, 4, F64, NULL);
  DLTensor doc = { .data = (void *)docs, .device = { kDLCPU, 0 }, .ndim = 1, .dtype = I32,
                   .shape = (int64_t[]){ 8 } };
  attnc_named_tensor nt = { "doc", &doc };
  c->args.inputs = &nt, c->args.ninputs = 1;
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_OK);
  check_direct(c, 0.5, m_doc, NULL, NULL, 1e-12);

  /* missing, misshaped, mistyped and unknown inputs */
  c->args.ninputs = 0;
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_ERR_ARG);
  ck_assert_str_eq(diag.msg, "t.lua:7: missing runtime input 'doc' (i32 [Sq]): pass --input doc=FILE.npy");
  memset(&diag, 0, sizeof diag);
  c->args.ninputs = 1;
  doc.shape = (int64_t[]){ 7 };
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_ERR_ARG);
  ck_assert_str_eq(diag.msg, "t.lua:7: runtime input 'doc' has shape [7] but the spec declares i32 [Sq] = [8] here");
  memset(&diag, 0, sizeof diag);
  doc.shape = (int64_t[]){ 8 };
  doc.dtype = F32;
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_ERR_ARG);
  ck_assert_str_eq(diag.msg, "t.lua:7: runtime input 'doc' has dtype float32 but the spec declares i32 [Sq]");
  memset(&diag, 0, sizeof diag);
  doc.dtype = I32;
  attnc_named_tensor two[2] = { { "doc", &doc }, { "route", &doc } };
  c->args.inputs = two, c->args.ninputs = 2;
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_ERR_ARG);
  ck_assert_str_eq(diag.msg, "unknown runtime input 'route' (the spec declares 'doc')");
  call_free(c);
  arena_free(&arena);
}
END_TEST

/* routed: k's block (k // 2) is one of route[b, h, q // 2, 0..1] */
static int32_t routes[1][2][3][2] = { { { { 0, 2 }, { 1, 1 }, { 2, 0 } },
                                        { { 1, 2 }, { 0, 0 }, { 9, 9 } } } };
static bool m_route(int64_t b, int64_t h, int64_t q, int64_t k, void *ud) {
  const int32_t *r = routes[b][h][q / 2];
  return r[0] == k / 2 || r[1] == k / 2;
}

START_TEST(input_contains) {
  IrPattern *p = pat();
  IrInput in = { .name = "route", .dtype = DT_I32, .rank = 4,
                 .dims = { { DIM_B, 1 }, { DIM_H, 1 }, { DIM_SQ, 2 }, { DIM_CONST, 2 } }, .line = 9 };
  ck_assert_int_eq(ir_add_input(p, &in), 0);
  int two = ir_const_int(p, 2, 10);
  int qb = node(p, IR_IDIV, leaf(p, IR_Q), two), kb = node(p, IR_IDIV, leaf(p, IR_K), two);
  p->mask = ir_node(p, IR_CONTAINS, (int[]){ leaf(p, IR_BATCH), leaf(p, IR_HEAD), qb, kb }, 4, 0, 10, &diag);
  ck_assert_int_ge(p->mask, 0);
  Call *c = call_make(1, 2, 2, 6, 6, 3, 3, F64, NULL);
  DLTensor rt = { .data = routes, .device = { kDLCPU, 0 }, .ndim = 4, .dtype = I32,
                  .shape = (int64_t[]){ 1, 2, 3, 2 } };
  attnc_named_tensor nt = { "route", &rt };
  c->args.inputs = &nt, c->args.ninputs = 1;
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_OK);
  check_direct(c, 1 / sqrt(3.0), m_route, NULL, NULL, 1e-12);

  /* Sq = 5: ceil(5 / 2) = 3 blocks, the same tensor fits */
  call_free(c);
  c = call_make(1, 2, 2, 5, 5, 3, 3, F64, NULL);
  c->args.inputs = &nt, c->args.ninputs = 1;
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_OK);
  check_direct(c, 1 / sqrt(3.0), m_route, NULL, NULL, 1e-12);
  call_free(c);
  arena_free(&arena);
}
END_TEST

START_TEST(faults) {
  /* doc[q + 1] reads past the end at q = 7 */
  IrPattern *p = pat();
  IrInput in = { .name = "doc", .dtype = DT_I32, .rank = 1, .dims = { { DIM_SQ, 1 } }, .line = 7 };
  ir_add_input(p, &in);
  int q1 = node(p, IR_ADD, leaf(p, IR_Q), ir_const_int(p, 1, 12));
  int l = ir_node(p, IR_LOAD, (int[]){ q1 }, 1, 0, 12, &diag);
  p->mask = node(p, IR_GE, l, ir_const_int(p, 0, 12));
  Call *c = call_make(1, 1, 1, 8, 8, 2, 2, F64, NULL);
  DLTensor doc = { .data = (void *)docs, .device = { kDLCPU, 0 }, .ndim = 1, .dtype = I32,
                   .shape = (int64_t[]){ 8 } };
  attnc_named_tensor nt = { "doc", &doc };
  c->args.inputs = &nt, c->args.ninputs = 1;
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_ERR_ARG);
  ck_assert_str_eq(diag.msg, "t.lua:12: index 8 out of range for dim 0 of input 'doc' (size 8) "
                             "(at b=0, h=0, q=7, k=0)");
  call_free(c);
  arena_free(&arena);

  /* q // (k - k) divides by zero */
  p = pat();
  int zero = node(p, IR_SUB, leaf(p, IR_K), leaf(p, IR_K));
  int dq = ir_node(p, IR_IDIV, (int[]){ leaf(p, IR_Q), zero }, 2, 0, 14, &diag);
  p->mask = node(p, IR_EQ, dq, ir_const_int(p, 0, 14));
  c = call_make(1, 1, 1, 2, 2, 2, 2, F64, NULL);
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_ERR_ARG);
  ck_assert_str_eq(diag.msg, "t.lua:14: integer division by zero (at b=0, h=0, q=0, k=0)");
  call_free(c);
  arena_free(&arena);
}
END_TEST

START_TEST(arg_errors) {
  IrPattern *p = pat();
  Call *c = call_make(1, 3, 2, 4, 4, 2, 2, F64, NULL);
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_ERR_ARG);
  ck_assert_str_eq(diag.msg, "q has 3 heads, not a multiple of the 2 heads of k and v "
                             "(Hq must be a multiple of Hkv)");
  call_free(c);

  c = call_make(1, 2, 2, 4, 4, 2, 2, F64, NULL);
  memset(&diag, 0, sizeof diag);
  c->k->shape[3] = 1;
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_ERR_ARG);
  ck_assert_str_eq(diag.msg, "k has D = 1 (dim 3) but q has D = 2");
  c->k->shape[3] = 2;

  memset(&diag, 0, sizeof diag);
  c->args.q = NULL;
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_ERR_ARG);
  ck_assert_str_eq(diag.msg, "missing tensor q");
  c->args.q = &c->q->t;

  memset(&diag, 0, sizeof diag);
  c->v->t.ndim = 3;
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_ERR_ARG);
  ck_assert_str_eq(diag.msg, "v must have 4 dims [B, Hkv, Sk, Dv] (got 3: [1, 2, 4])");
  c->v->t.ndim = 4;

  memset(&diag, 0, sizeof diag);
  c->q->t.dtype = (DLDataType){ kDLFloat, 16, 1 };
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_ERR_ARG);
  ck_assert_str_eq(diag.msg, "q has dtype float16 (need float32 or float64)");
  c->q->t.dtype = F64;

  memset(&diag, 0, sizeof diag);
  c->lse->t.dtype = F64;
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_ERR_ARG);
  ck_assert_str_eq(diag.msg, "lse has dtype float64 (need float32)");
  c->lse->t.dtype = F32;

  memset(&diag, 0, sizeof diag);
  c->o->t.device.device_type = kDLCUDA;
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_ERR_ARG);
  ck_assert_ptr_nonnull(strstr(diag.msg, "o is not in host memory"));
  c->o->t.device.device_type = kDLCPU;

  memset(&diag, 0, sizeof diag);
  c->q->shape[2] = -1;
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_ERR_ARG);
  ck_assert_str_eq(diag.msg, "q has a negative size in dim 2 (Sq = -1)");
  c->q->shape[2] = 4;

  memset(&diag, 0, sizeof diag);
  c->o->t.strides = (int64_t[]){ 16, 8, 0, 1 };
  ck_assert_int_eq(ref_run(p, &c->args, &diag), ATTNC_ERR_ARG);
  ck_assert_str_eq(diag.msg, "o has stride 0 in dim 2 (Sq = 4): output elements would overlap");
  c->o->t.strides = NULL;

  /* the same tensors pass on a compiled target only when dtypes agree */
  memset(&diag, 0, sizeof diag);
  Shape sh;
  c->lse->t.dtype = F32;
  ck_assert_int_eq(args_check(p, &c->args, false, &sh, NULL, &diag), ATTNC_OK);
  ck_assert_int_eq(sh.Hq, 2);
  c->o->t.dtype = F32;
  ck_assert_int_eq(args_check(p, &c->args, false, &sh, NULL, &diag), ATTNC_ERR_ARG);
  ck_assert_str_eq(diag.msg, "o has dtype float32 but q has float64 (this target needs one dtype)");
  call_free(c);
  arena_free(&arena);
}
END_TEST

/* ------------------------------------------------------------ ir_eval */

static double eval2(IrOp op, IrType t, double x, double y) {
  IrPattern *p = pat();
  int a = t == IR_INT ? ir_const_int(p, (int64_t)x, 1) : ir_const_float(p, x, 1);
  int b = t == IR_INT ? ir_const_int(p, (int64_t)y, 1) : ir_const_float(p, y, 1);
  int n = node(p, op, a, b);
  IrEnv env = { 0 };
  double vals[8];
  double r = ir_eval(p, n, &env, vals, &diag);
  arena_free(&arena);
  return r;
}

START_TEST(eval_ops) {
  /* Lua's floor division and modulo */
  ck_assert(eval2(IR_IDIV, IR_INT, -7, 2) == -4);
  ck_assert(eval2(IR_MOD, IR_INT, -7, 2) == 1);
  ck_assert(eval2(IR_MOD, IR_INT, 7, -2) == -1);
  ck_assert(eval2(IR_IDIV, IR_INT, 7, -2) == -4);
  ck_assert(eval2(IR_IDIV, IR_FLOAT, -7, 2) == -4);
  ck_assert(eval2(IR_MOD, IR_FLOAT, -7.5, 2) == 0.5);
  ck_assert(eval2(IR_MOD, IR_FLOAT, 5.5, -2) == -0.5);
  ck_assert(eval2(IR_DIV, IR_INT, 7, 2) == 3.5);
  ck_assert(eval2(IR_POW, IR_INT, 2, 10) == 1024);
  ck_assert(eval2(IR_MIN, IR_INT, -3, 2) == -3);
  ck_assert(eval2(IR_MAX, IR_FLOAT, -3, 2) == 2);
  ck_assert(eval2(IR_LT, IR_FLOAT, NAN, 1) == 0);
  ck_assert(eval2(IR_NE, IR_FLOAT, NAN, NAN) == 1);

  /* ints stay exact beyond 2^53 */
  IrPattern *p = pat();
  int big = ir_const_int(p, (INT64_C(1) << 53) + 1, 1);
  int eq = node(p, IR_EQ, node(p, IR_SUB, big, ir_const_int(p, INT64_C(1) << 53, 1)),
                ir_const_int(p, 1, 1));
  IrEnv env = { 0 };
  double vals[16];
  ck_assert(ir_eval(p, eq, &env, vals, &diag) == 1);
  arena_free(&arena);

  /* select, and env leaves */
  p = pat();
  int c = node(p, IR_GT, leaf(p, IR_Q), leaf(p, IR_K));
  int sel = ir_node(p, IR_SELECT, (int[]){ c, leaf(p, IR_SEQQ), ir_const_float(p, 0.5, 1) }, 3, 0, 1, &diag);
  env = (IrEnv){ .q = 3, .k = 1, .sq = 40 };
  ck_assert(ir_eval(p, sel, &env, vals, &diag) == 40);
  env.q = 0;
  ck_assert(ir_eval(p, sel, &env, vals, &diag) == 0.5);
  ck_assert(diag_ok(&diag));
  arena_free(&arena);
}
END_TEST

START_TEST(env_coords) {
  IrPattern *p = pat();
  p->grid_rank = 3, p->grid[0] = 2, p->grid[1] = 3, p->grid[2] = 4;
  IrEnv env = { .q = 23, .k = 13 };
  ir_env_coords(p, &env);
  ck_assert(env.qc[0] == 1 && env.qc[1] == 2 && env.qc[2] == 3);
  ck_assert(env.kc[0] == 1 && env.kc[1] == 0 && env.kc[2] == 1);
  p->grid_rank = 0;
  ir_env_coords(p, &env);
  ck_assert(env.qc[0] == 23 && env.kc[0] == 13);
  arena_free(&arena);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("ref");
  TCase *tc = tcase_create("ref");
  tcase_add_test(tc, dense);
  tcase_add_test(tc, causal_f32);
  tcase_add_test(tc, masked_row);
  tcase_add_test(tc, no_keys);
  tcase_add_test(tc, gqa);
  tcase_add_test(tc, score_mod);
  tcase_add_test(tc, score_neg_inf);
  tcase_add_test(tc, bshd);
  tcase_add_test(tc, grid2d);
  tcase_add_test(tc, input_load);
  tcase_add_test(tc, input_contains);
  tcase_add_test(tc, faults);
  tcase_add_test(tc, arg_errors);
  tcase_add_test(tc, eval_ops);
  tcase_add_test(tc, env_coords);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run(suite()); }
