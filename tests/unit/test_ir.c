/*
** test_ir.c -- the pattern IR's text form and checks: ir_print, ir_parse,
** ir_verify, ir_fold, ir_cse, ir_hash.
*/
#include <dirent.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frontend/frontend.h"
#include "tests/unit/testutil.h"

/* ------------------------------------------------------------ helpers */

static IrPattern *new_pattern(Arena *a, const char *name) {
  char file[128];
  snprintf(file, sizeof file, "specs/%s.lua", name);
  IrPattern *p = ir_pattern_new(a, file);
  ck_assert_ptr_nonnull(p);
  p->name = arena_strdup(a, name);
  return p;
}

/* a node through the builder: N(p, op, imm, line, nargs, args...) */
static int N(IrPattern *p, IrOp op, int64_t imm, int line, int nargs, ...) {
  int args[IR_MAXARGS];
  va_list ap;
  va_start(ap, nargs);
  for (int i = 0; i < nargs; i++) args[i] = va_arg(ap, int);
  va_end(ap);
  Diag d = { 0 };
  int id = ir_node(p, op, args, nargs, imm, line, &d);
  ck_assert_msg(id >= 0, "builder failed: %s", d.msg);
  return id;
}
#define N0(p, op, line)          N(p, op, 0, line, 0)
#define N1(p, op, line, a)       N(p, op, 0, line, 1, a)
#define N2(p, op, line, a, b)    N(p, op, 0, line, 2, a, b)

static void add_param(IrPattern *p, const char *name, IrType t, double v, double def, bool ov, int line) {
  IrParam prm = { .name = name, .type = t, .value = v, .def = def, .overridden = ov, .line = line };
  ck_assert_int_ge(ir_add_param(p, &prm), 0);
}

static int add_input(IrPattern *p, const char *name, IrDtype dt, int rank, const IrDim *dims, int line) {
  IrInput in = { .name = name, .dtype = dt, .rank = rank, .line = line };
  for (int i = 0; i < rank; i++) in.dims[i] = dims[i];
  int ix = ir_add_input(p, &in);
  ck_assert_int_ge(ix, 0);
  return ix;
}

static void assert_verifies(const IrPattern *p) {
  Diag d = { 0 };
  ck_assert_msg(ir_verify(p, &d) == ATTNC_OK, "verify: %s", d.msg);
}

/* print, parse, print again: the two texts must be equal; returns the parse */
static IrPattern *roundtrip(Arena *a, const IrPattern *p) {
  const char *t1 = ir_print(p, a);
  ck_assert_ptr_nonnull(t1);
  Diag d = { 0 };
  IrPattern *q = ir_parse(a, t1, "rt.ir", &d);
  ck_assert_msg(q != NULL, "parse failed: %s\n--- text:\n%s", d.msg, t1);
  assert_verifies(q);
  const char *t2 = ir_print(q, a);
  ck_assert_ptr_nonnull(t2);
  ck_assert_str_eq(t1, t2);
  ck_assert_uint_eq(ir_hash(p), ir_hash(q));
  return q;
}

static uint64_t dbits(double v) {
  uint64_t b;
  memcpy(&b, &v, sizeof b);
  return b;
}

static double bitsd(uint64_t b) {
  double v;
  memcpy(&v, &b, sizeof v);
  return v;
}

/* ------------------------------------------------------- the patterns */

/* the sliding window of ir.h's example: k <= q and q - k < window */
static IrPattern *sliding_window(Arena *a) {
  IrPattern *p = new_pattern(a, "sliding_window");
  add_param(p, "window", IR_INT, 1024, 1024, false, 5);
  int k = N0(p, IR_K, 7), q = N0(p, IR_Q, 7);
  int causal = N2(p, IR_LE, 7, k, q);
  int w = ir_const_int(p, 1024, 8);
  int inwin = N2(p, IR_LT, 8, N2(p, IR_SUB, 8, q, k), w);
  p->mask = N2(p, IR_AND, 8, causal, inwin);
  return p;
}

static const char *sliding_window_text =
  "pattern \"sliding_window\" file \"specs/sliding_window.lua\"\n"
  "param window int 1024 default 1024 line 5\n"
  "%0 = k : int @7\n"
  "%1 = q : int @7\n"
  "%2 = le %0 %1 : bool @7\n"
  "%3 = sub %1 %0 : int @8\n"
  "%4 = const 1024 : int @8\n"
  "%5 = lt %3 %4 : bool @8\n"
  "%6 = and %2 %5 : bool @8\n"
  "mask %6\n";

/*
** A pattern that uses every op and every kind of declaration. Also
** marks in seen[] the ops it used, so the test knows it covers them all.
*/
static IrPattern *every_op(Arena *a) {
  IrPattern *p = new_pattern(a, "every");
  add_param(p, "window", IR_INT, 16, 8, true, 2);
  add_param(p, "softcap", IR_FLOAT, 30.5, 30.5, false, 3);
  p->params[p->nparams - 1].doc = "the \"cap\" \\ in logits\t(tanh)";
  add_param(p, "odd name", IR_FLOAT, -0.0, 1e300, false, 3);
  IrDim d_doc[] = { { DIM_SQ, 1 } };
  IrDim d_route[] = { { DIM_B, 1 }, { DIM_H, 1 }, { DIM_SQ, 64 }, { DIM_CONST, 4 } };
  IrDim d_bias[] = { { DIM_HKV, 1 }, { DIM_SK, 2 }, { DIM_CONST, 33 } };
  int doc = add_input(p, "doc", DT_I32, 1, d_doc, 4);
  int route = add_input(p, "route", DT_I32, 4, d_route, 5);
  int bias = add_input(p, "bias", DT_F32, 3, d_bias, 6);
  p->grid_rank = 2;
  p->grid[0] = 8;
  p->grid[1] = 16;
  p->scale = 0.125;
  p->dtypes = 1u << DT_F16 | 1u << DT_BF16;
  p->head_dims[0] = 64;
  p->head_dims[1] = 128;
  p->nhead_dims = 2;

  int b = N0(p, IR_BATCH, 10), h = N0(p, IR_HEAD, 10), q = N0(p, IR_Q, 10), k = N0(p, IR_K, 10);
  int qy = N(p, IR_QC, 0, 11, 0), kx = N(p, IR_KC, 1, 11, 0);
  int sq = N0(p, IR_SEQQ, 12), sk = N0(p, IR_SEQK, 12);
  int c64 = ir_const_int(p, 64, 13), c3 = ir_const_int(p, -3, 13);
  int d = N2(p, IR_SUB, 14, q, k);
  int win = N2(p, IR_LE, 14, N1(p, IR_ABS, 14, d), ir_const_int(p, 16, 14));
  int causal = N2(p, IR_GE, 15, q, k);
  int samedoc = N2(p, IR_EQ, 16, N(p, IR_LOAD, doc, 16, 1, q), N(p, IR_LOAD, doc, 16, 1, k));
  int routed = N(p, IR_CONTAINS, route, 17, 4, b, h, N2(p, IR_IDIV, 17, q, c64),
                 N2(p, IR_IDIV, 17, k, c64));
  int rel = N2(p, IR_MOD, 18, N2(p, IR_ADD, 18, qy, kx), N2(p, IR_MUL, 18, c3, c3));
  int box = N2(p, IR_LT, 19, N2(p, IR_MIN, 19, rel, sq), N2(p, IR_MAX, 19, N1(p, IR_NEG, 19, rel), sk));
  int gt = N2(p, IR_GT, 20, sq, sk);
  int ne = N2(p, IR_NE, 20, gt, ir_const_bool(p, false, 20));
  int sel = N(p, IR_SELECT, 0, 21, 3, ne, q, k);
  int m = N2(p, IR_OR, 22, N2(p, IR_AND, 22, win, causal), N2(p, IR_AND, 22, samedoc, routed));
  m = N2(p, IR_AND, 23, m, N1(p, IR_NOT, 23, box));
  p->mask = N2(p, IR_OR, 24, m, N2(p, IR_EQ, 24, sel, sq));

  int s = N0(p, IR_SCORE, 30);
  int cap = ir_const_float(p, 30.5, 30);
  int soft = N2(p, IR_MUL, 30, cap, N1(p, IR_TANH, 30, N2(p, IR_DIV, 30, s, cap)));
  int fd = N1(p, IR_TOFLOAT, 31, d);
  int decay = N1(p, IR_EXP, 31, N1(p, IR_NEG, 31, N1(p, IR_LOG, 31, N1(p, IR_SQRT, 31, fd))));
  int pw = N2(p, IR_POW, 32, decay, ir_const_float(p, 2.0, 32));
  int bv = N(p, IR_LOAD, bias, 33, 3, N2(p, IR_MOD, 33, h, ir_const_int(p, 4, 33)), k,
             N2(p, IR_MIN, 33, N1(p, IR_ABS, 33, d), ir_const_int(p, 32, 33)));
  int fsel = N(p, IR_SELECT, 0, 34, 3, causal, bv, ir_const_float(p, -INFINITY, 34));
  p->score = N2(p, IR_ADD, 35, N2(p, IR_SUB, 35, soft, pw), fsel);
  return p;
}

/* ------------------------------------------------------ print / parse */

START_TEST(test_print_format) {
  Arena a;
  arena_init(&a);
  IrPattern *p = sliding_window(&a);
  assert_verifies(p);
  ck_assert_str_eq(ir_print(p, &a), sliding_window_text);
  roundtrip(&a, p);
  arena_free(&a);
}
END_TEST

/* the same DAG built in another order, with dead nodes, prints the same */
START_TEST(test_print_canonical_order) {
  Arena a;
  arena_init(&a);
  IrPattern *p = new_pattern(&a, "sliding_window");
  add_param(p, "window", IR_INT, 1024, 1024, false, 5);
  int w = ir_const_int(p, 1024, 8);
  int q = N0(p, IR_Q, 7);
  N2(p, IR_ADD, 3, q, q);                                /* dead */
  int k = N0(p, IR_K, 7);
  int inwin = N2(p, IR_LT, 8, N2(p, IR_SUB, 8, q, k), w);
  int causal = N2(p, IR_LE, 7, k, q);
  p->mask = N2(p, IR_AND, 8, causal, inwin);
  ck_assert_str_eq(ir_print(p, &a), sliding_window_text);
  ck_assert_uint_eq(ir_hash(p), ir_hash(sliding_window(&a)));
  arena_free(&a);
}
END_TEST

START_TEST(test_every_op_roundtrip) {
  Arena a;
  arena_init(&a);
  IrPattern *p = every_op(&a);
  assert_verifies(p);
  bool seen[IR_NOPS] = { false };
  for (int i = 0; i < p->nnodes; i++) seen[p->nodes[i].op] = true;
  for (int op = 0; op < IR_NOPS; op++) ck_assert_msg(seen[op], "op %s not covered", ir_op_name(op));
  IrPattern *q = roundtrip(&a, p);
  ck_assert_str_eq(q->name, "every");
  ck_assert_str_eq(q->file, "specs/every.lua");
  ck_assert_int_eq(q->nparams, 3);
  ck_assert(q->params[0].overridden && !q->params[1].overridden);
  ck_assert(q->params[0].value == 16 && q->params[0].def == 8);
  ck_assert_str_eq(q->params[2].name, "odd name");
  ck_assert_uint_eq(dbits(q->params[2].value), dbits(-0.0));
  ck_assert_int_eq(q->ninputs, 3);
  ck_assert_int_eq(q->inputs[1].rank, 4);
  ck_assert_int_eq(q->inputs[1].dims[2].sym, DIM_SQ);
  ck_assert_int_eq(q->inputs[1].dims[2].value, 64);
  ck_assert_int_eq(q->inputs[2].dtype, DT_F32);
  ck_assert_int_eq(q->grid_rank, 2);
  ck_assert_int_eq(q->grid[1], 16);
  ck_assert(q->scale == 0.125);
  ck_assert_uint_eq(q->dtypes, p->dtypes);
  ck_assert_int_eq(q->nhead_dims, 2);
  ck_assert_int_eq(q->head_dims[1], 128);
  /* every reachable node came back, with its line */
  const char *t = ir_print(p, &a);
  ck_assert_ptr_nonnull(strstr(t, "input route i32 [B, H, Sq/64, 4] line 5\n"));
  ck_assert_ptr_nonnull(strstr(t, "input bias f32 [Hkv, Sk/2, 33] line 6\n"));
  ck_assert_ptr_nonnull(strstr(t, "param \"odd name\" float -0.0 default 1e+300 line 3\n"));
  ck_assert_ptr_nonnull(strstr(t, "param window int 16 default 8 overridden line 2\n"));
  ck_assert_ptr_nonnull(strstr(t, "grid 8 16\nscale 0.125\ndtypes f16 bf16\nhead_dims 64 128\n"));
  ck_assert_ptr_nonnull(strstr(t, " = contains route "));
  ck_assert_ptr_nonnull(strstr(t, " = const -inf : float @34\n"));
  ck_assert_ptr_nonnull(strstr(t, " = kc 1 : int @11\n"));
  /* and parse(print) then fold + cse gives what fold + cse gives */
  Diag d = { 0 };
  ck_assert_int_eq(ir_fold(p, &d), ATTNC_OK);
  ck_assert_int_eq(ir_cse(p, &d), ATTNC_OK);
  ck_assert_int_eq(ir_fold(q, &d), ATTNC_OK);
  ck_assert_int_eq(ir_cse(q, &d), ATTNC_OK);
  ck_assert_str_eq(ir_print(p, &a), ir_print(q, &a));
  assert_verifies(p);
  roundtrip(&a, p);
  arena_free(&a);
}
END_TEST

/* a score that adds up the constants, so each is printed, in order */
static IrPattern *float_consts(Arena *a, const double *v, int n) {
  IrPattern *p = new_pattern(a, "floats");
  int acc = ir_const_float(p, v[0], 1);
  for (int i = 1; i < n; i++) acc = N2(p, IR_ADD, i + 1, acc, ir_const_float(p, v[i], i + 1));
  p->score = acc;
  return p;
}

START_TEST(test_float_roundtrip) {
  Arena a;
  arena_init(&a);
  double v[] = { -0.0, 0.0, INFINITY, -INFINITY, NAN, -NAN,
                 bitsd(UINT64_C(0x7ff0000000000001)), bitsd(UINT64_C(0xfff4000000000abc)),
                 1e300, -1e-300, DBL_MAX, DBL_MIN, 5e-324, 0.1, 1.0 / 3, 1, -2, 0x1p52 + 1,
                 3.141592653589793, 1e16, 123456789012345680.0 };
  int n = (int)(sizeof v / sizeof v[0]);
  IrPattern *p = float_consts(&a, v, n);
  IrPattern *q = roundtrip(&a, p);
  int got = 0;
  for (int i = 0; i < q->nnodes; i++)
    if (q->nodes[i].op == IR_CONST) {
      ck_assert_msg(dbits(q->nodes[i].imm.f) == dbits(v[got]), "const %d: %a became %a", got,
                    v[got], q->nodes[i].imm.f);
      got++;
    }
  ck_assert_int_eq(got, n);
  const char *t = ir_print(p, &a);
  const char *want[] = { "const -0.0 :", "const 0.0 :", "const inf :", "const -inf :",
                         "const nan :", "const -nan :", "const nan(0x7ff0000000000001) :",
                         "const 1e+300 :", "const 0.1 :", "const 1.0 :", "const -2.0 :",
                         "const 5e-324 :", "const 1e+16 :" };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    ck_assert_msg(strstr(t, want[i]), "no '%s' in\n%s", want[i], t);
  arena_free(&a);
}
END_TEST

/* plain notation for exponents 0..15, the shortest digits otherwise */
START_TEST(test_float_format) {
  Arena a;
  arena_init(&a);
  double v[] = { 30, 123.25, 1e15, 0.0001, 1e-5, 1.5e16, 2.5e-7, 1234567.125, 100 };
  const char *want[] = { "30.0", "123.25", "1000000000000000.0", "0.0001", "1e-05", "1.5e+16",
                         "2.5e-07", "1234567.125", "100.0" };
  for (int i = 0; i < 9; i++) {
    IrPattern *p = new_pattern(&a, "f");
    p->score = ir_const_float(p, v[i], 1);
    char line[64];
    snprintf(line, sizeof line, "%%0 = const %s : float @1\n", want[i]);
    ck_assert_msg(strstr(ir_print(p, &a), line), "%g: want %s in\n%s", v[i], line, ir_print(p, &a));
  }
  /* random bit patterns (all exponents, NaN payloads) come back exactly */
  Arena b;
  arena_init(&b);
  uint64_t x = UINT64_C(88172645463325252);
  enum { COUNT = 3000 };
  double *r = arena_alloc(&b, sizeof(double) * COUNT);
  for (int i = 0; i < COUNT; i++) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    r[i] = bitsd(i % 3 ? x : x >> (i % 60));
  }
  IrPattern *q = roundtrip(&b, float_consts(&b, r, COUNT));
  int got = 0;
  for (int i = 0; i < q->nnodes; i++)
    if (q->nodes[i].op == IR_CONST) {
      ck_assert_msg(dbits(q->nodes[i].imm.f) == dbits(r[got]), "%a became %a", r[got], q->nodes[i].imm.f);
      got++;
    }
  ck_assert_int_eq(got, COUNT);
  arena_free(&b);
  arena_free(&a);
}
END_TEST

START_TEST(test_int_and_bool_consts) {
  Arena a;
  arena_init(&a);
  IrPattern *p = new_pattern(&a, "ints");
  int lo = ir_const_int(p, INT64_MIN, 1), hi = ir_const_int(p, INT64_MAX, 2);
  int m = N2(p, IR_LT, 3, lo, hi);
  m = N2(p, IR_AND, 4, m, ir_const_bool(p, true, 4));
  p->mask = N2(p, IR_OR, 5, m, ir_const_bool(p, false, 5));
  const char *t = ir_print(p, &a);
  ck_assert_ptr_nonnull(strstr(t, "%0 = const -9223372036854775808 : int @1\n"));
  ck_assert_ptr_nonnull(strstr(t, "%1 = const 9223372036854775807 : int @2\n"));
  ck_assert_ptr_nonnull(strstr(t, "const true : bool @4\n"));
  ck_assert_ptr_nonnull(strstr(t, "const false : bool @5\n"));
  IrPattern *q = roundtrip(&a, p);
  ck_assert_int_eq(q->nodes[0].imm.i, INT64_MIN);
  ck_assert_int_eq(q->nodes[1].imm.i, INT64_MAX);
  arena_free(&a);
}
END_TEST

START_TEST(test_strings) {
  Arena a;
  arena_init(&a);
  IrPattern *p = new_pattern(&a, "s");
  p->name = "a \"quoted\" \\ name\n\twith\x01 controls \x7f and caf\xc3\xa9";
  p->file = "dir with space/x\r.lua";
  IrDim dim = { DIM_CONST, 7 };
  int in = add_input(p, "in put", DT_I32, 1, &dim, 1);
  add_param(p, "1st", IR_INT, -5, -5, false, 0);
  p->mask = N2(p, IR_GT, 2, N(p, IR_LOAD, in, 2, 1, N0(p, IR_Q, 2)), ir_const_int(p, 0, 2));
  const char *t = ir_print(p, &a);
  ck_assert_ptr_nonnull(strstr(t, "pattern \"a \\\"quoted\\\" \\\\ name\\n\\twith\\x01 controls \\x7f "
                                  "and caf\xc3\xa9\" file \"dir with space/x\\r.lua\"\n"));
  ck_assert_ptr_nonnull(strstr(t, "input \"in put\" i32 [7] line 1\n"));
  ck_assert_ptr_nonnull(strstr(t, "param \"1st\" int -5 default -5 line 0\n"));
  ck_assert_ptr_nonnull(strstr(t, "load \"in put\" %0 : int @2\n"));
  IrPattern *q = roundtrip(&a, p);
  ck_assert_str_eq(q->name, p->name);
  ck_assert_str_eq(q->file, p->file);
  ck_assert_str_eq(q->inputs[0].name, "in put");
  arena_free(&a);
}
END_TEST

/* handwritten text: comments, blank lines, spaces, dead nodes */
START_TEST(test_parse_lenient) {
  Arena a;
  arena_init(&a);
  const char *text =
    "# a comment\n"
    "\n"
    "  pattern \"sliding_window\"   file \"specs/sliding_window.lua\"  # trailing\n"
    "param window int 1024 default 1.024e3 line 5\r\n"
    "%0 = k : int @7\n"
    "%1 = q : int @7\n"
    "%2 = le %0 %1 : bool @7\n"
    "%3 = sub %1 %0 : int @8\n"
    "%4 = const +1024 : int @8\n"
    "%5 = lt %3 %4 : bool @8\n"
    "%6 = mul %3 %3 : int @9      # dead\n"
    "%7 = and %2 %5 : bool @8\n"
    "\tmask %7\n";
  Diag d = { 0 };
  IrPattern *p = ir_parse(&a, text, "hand.ir", &d);
  ck_assert_msg(p != NULL, "%s", d.msg);
  ck_assert_str_eq(ir_print(p, &a), sliding_window_text);
  arena_free(&a);
}
END_TEST

/* every ``` block of docs/ir.md that starts with "pattern" is canonical text */
START_TEST(test_doc_examples) {
  FILE *f = fopen(tu_path("docs/ir.md"), "rb");
  ck_assert_msg(f != NULL, "cannot open %s", tu_path("docs/ir.md"));
  static char doc[65536];
  size_t n = fread(doc, 1, sizeof doc - 1, f);
  fclose(f);
  doc[n] = '\0';
  int blocks = 0;
  for (char *s = strstr(doc, "```\npattern "); s; s = strstr(s, "```\npattern ")) {
    char *text = s + 4, *end = strstr(text, "```");
    ck_assert_ptr_nonnull(end);
    *end = '\0';
    Arena a;
    arena_init(&a);
    Diag d = { 0 };
    IrPattern *p = ir_parse(&a, text, "docs/ir.md", &d);
    ck_assert_msg(p != NULL, "%s", d.msg);
    ck_assert_str_eq(ir_print(p, &a), text);
    arena_free(&a);
    blocks++;
    s = end + 1;
  }
  ck_assert_int_ge(blocks, 2);
}
END_TEST

/* a body after the standard header, the error's line in the body, a substring */
static const struct { const char *body; int line; const char *msg; } bad_texts[] = {
  { "%0 = q : int @1\n%2 = k : int @1\n", 2, "expected node %1 (nodes are numbered in order), got %2" },
  { "%0 = foo : int @1\n", 1, "unknown op 'foo'" },
  { "%0 = q : float @1\n", 1, "'q' gives int here, but the text says float" },
  { "%0 = q : int @1\n%1 = add %0 : int @1\n", 2, "'add' takes 2 arguments, got 1" },
  { "%0 = q : int @1\n%1 = add %0 %1 : int @1\n", 2, "argument %1 of %1 is not defined before it" },
  { "%0 = q : int @1\n%1 = const 1.5 : float @1\n%2 = add %0 %1 : float @1\n", 3,
    "the arguments of 'add' mix int and float; convert with tofloat first" },
  { "%0 = const true : bool @1\n%1 = neg %0 : bool @1\n", 2, "'neg' expects numbers, got bool" },
  { "%0 = score : float @1\n%1 = tofloat %0 : float @1\n", 2, "'tofloat' expects an int, got float" },
  { "%0 = q : int @1\nmask %0\n", 2, "mask must be bool, but %0 is int" },
  { "%0 = q : int @1\n%1 = k : int @1\n%2 = lt %0 %1 : bool @1\nscore %2\n", 4,
    "score must be float, but %2 is bool" },
  { "%0 = score : float @1\n%1 = const 0.0 : float @1\n%2 = lt %0 %1 : bool @1\nmask %2\n", 4,
    "mask %2 uses the raw score (%0)" },
  { "%0 = q : int @1\n%1 = load doc %0 : int @1\n", 2, "unknown input 'doc'" },
  { "input doc i32 [Sq] line 1\n%0 = q : int @1\n%1 = load doc %0 %0 : int @1\n", 3,
    "input 'doc' has 1 dims but is indexed with 2" },
  { "input doc f32 [Sq] line 1\n%0 = q : int @1\n%1 = contains doc %0 : bool @1\n", 3,
    "contains needs an i32 input" },
  { "input doc i32 [Sq] line 1\n%0 = const 1.0 : float @1\n%1 = load doc %0 : int @1\n", 3,
    "input 'doc' index 1 must be an integer (got float)" },
  { "input doc i32 [Sq] line 1\n%0 = q : int @1\n%1 = load doc %0 %0 %0 %0 %0 %0 %0 : int @1\n", 3,
    "too many arguments (at most 6)" },
  { "%0 = qc 1 : int @1\n", 1, "'qc' axis 1 out of range (the grid has 1 axis)" },
  { "grid 4 4\n%0 = kc 2 : int @1\n", 2, "'kc' axis 2 out of range (the grid has 2 axes)" },
  { "param w int 1 default 1 line 1\nparam w int 2 default 2 line 2\n", 2, "param 'w' declared twice" },
  { "input w i32 [4] line 1\ninput w i32 [4] line 2\n", 2, "input 'w' declared twice" },
  { "param \"\" int 1 default 1 line 1\n", 1, "a param needs a name" },
  { "param w int 1.5 default 1 line 1\n", 1, "int param 'w' has a value that is not an integer" },
  { "param w bool 1 default 1 line 1\n", 1, "expected a param type (int or float), got 'bool'" },
  { "param w int 1 default 1\n", 1, "expected 'line', got end of line" },
  { "param w int 1 dflt 1 line 1\n", 1, "expected 'default', got 'dflt'" },
  { "param 9w int 1 default 1 line 1\n", 1, "expected a param name (an identifier or a quoted string), got '9w'" },
  { "%0 = q : int @1\nparam w int 1 default 1 line 1\n", 2, "'param' after the nodes: declarations come first" },
  { "%0 = q : int @1\n%1 = k : int @1\n%2 = lt %0 %1 : bool @1\nmask %2\n%3 = q : int @1\n", 5,
    "a node after mask/score: nodes come first" },
  { "%0 = const 9223372036854775808 : int @1\n", 1, "int const out of range" },
  { "%0 = const 1.5x : float @1\n", 1, "expected a number for a float const, got '1.5x'" },
  { "%0 = const 1e999 : float @1\n", 1, "expected a number for a float const, got '1e999'" },
  { "%0 = const nan(0x0000000000000001) : float @1\n", 1, "expected a number for a float const" },
  { "%0 = const 1.5 : int @1\n", 1, "expected an integer for an int const, got '1.5'" },
  { "%0 = const yes : bool @1\n", 1, "expected true or false for a bool const, got 'yes'" },
  { "%0 = const : int @1\n", 1, "expected the const's value, got ':'" },
  { "%0 = const 1 %0 : int @1\n", 1, "argument %0 of %0 is not defined before it" },
  { "%0 = q : int\n", 1, "expected '@' and the spec line, got end of line" },
  { "%0 = q : int @x\n", 1, "expected a spec line after '@', got 'x'" },
  { "%0 = q : int @99999999999\n", 1, "spec line out of range" },
  { "%0 = q : int @1 junk\n", 1, "expected the end of the line, got 'junk'" },
  { "%0 = q int @1\n", 1, "expected an argument '%N' or ':' and the type, got 'int'" },
  { "%0 = q : integer @1\n", 1, "expected a type (bool, int or float), got 'integer'" },
  { "%0 q : int @1\n", 1, "expected '=' after the node number, got 'q'" },
  { "% = q : int @1\n", 1, "expected a node number after '%', got '='" },
  { "input x i32 [Sx] line 1\n", 1, "expected a dim (a size, or B, H, Hkv, Sq, Sk), got 'Sx'" },
  { "input x i32 [Sq/0] line 1\n", 1, "a divisor out of range: 0" },
  { "input x i32 [0] line 1\n", 1, "a dim size out of range: 0" },
  { "input x i32 [1, 2, 3, 4, 5] line 1\n", 1, "input 'x' has more than 4 dims" },
  { "input x i32 [1 2] line 1\n", 1, "expected ',' or ']' after a dim, got '2'" },
  { "input x f16 [1] line 1\n", 1, "expected an input dtype (i32 or f32), got 'f16'" },
  { "input x i32 Sq line 1\n", 1, "expected '[' and the input's dims, got 'Sq'" },
  { "grid 0\n", 1, "a grid size out of range: 0" },
  { "grid 1 2 3 4\n", 1, "a grid has at most 3 axes" },
  { "grid\n", 1, "expected a grid size, got end of line" },
  { "grid 2\ngrid 2\n", 2, "'grid' given twice" },
  { "scale -1.0\n", 1, "the scale must be finite and >= 0" },
  { "scale inf\n", 1, "the scale must be finite and >= 0" },
  { "dtypes f8\n", 1, "expected a dtype (i32, f32, f16, bf16, f64), got 'f8'" },
  { "dtypes f16 f16\n", 1, "dtype f16 listed twice" },
  { "head_dims 0\n", 1, "a head dim out of range: 0" },
  { "head_dims 1 2 3 4 5 6 7 8 9\n", 1, "at most 8 head_dims" },
  { "foo\n", 1, "unknown line 'foo': expected a declaration" },
  { "pattern \"x\" file \"y\"\n", 1, "'pattern' given twice" },
  { "%0 = q : int @1\n%1 = k : int @1\n%2 = lt %0 %1 : bool @1\nmask %2\nmask %2\n", 5,
    "'mask' given twice" },
  { "mask %5\n", 1, "mask %5 is not a node (there are 0)" },
  { "mask 5\n", 1, "expected a node '%N', got '5'" },
};

/* bad headers: the whole text, the line, the message */
static const struct { const char *text; int line; const char *msg; } bad_headers[] = {
  { "", 1, "expected 'pattern \"NAME\" file \"FILE\"', got an empty text" },
  { "# only a comment\n\n", 3, "got an empty text" },
  { "pattern x file \"y\"\n", 1, "expected the pattern name in quotes, got 'x'" },
  { "pattern \"x\" \"y\"\n", 1, "expected 'file', got '\"'" },
  { "pattern \"abc\n", 1, "unterminated string" },
  { "pattern \"a\\q\" file \"b\"\n", 1, "unknown escape '\\q' in string" },
  { "pattern \"a\\x00\" file \"b\"\n", 1, "\\x00 is not allowed in a string" },
  { "pattern \"a\\x4\" file \"b\"\n", 1, "expected two hex digits after \\x" },
  { "pattern \"a\\", 1, "unterminated string" },
  { "\n\nparam w int 1 default 1 line 1\n", 3, "expected 'pattern', got 'param'" },
};

static void expect_error(const char *text, int line, const char *msg) {
  Arena a;
  arena_init(&a);
  Diag d = { 0 };
  IrPattern *p = ir_parse(&a, text, "bad.ir", &d);
  ck_assert_msg(p == NULL, "parsed:\n%s", text);
  ck_assert_int_eq(d.status, ATTNC_ERR_SPEC);
  char where[32];
  snprintf(where, sizeof where, "bad.ir:%d: ", line);
  ck_assert_msg(strncmp(d.msg, where, strlen(where)) == 0 && strstr(d.msg, msg),
                "for\n%s\nwant \"%s...%s\", got \"%s\"", text, where, msg, d.msg);
  arena_free(&a);
}

static const char *HEADER = "pattern \"t\" file \"t.lua\"\n";

START_TEST(test_parse_errors) {
  for (size_t i = 0; i < sizeof bad_texts / sizeof bad_texts[0]; i++) {
    char text[1024];
    snprintf(text, sizeof text, "%s%s", HEADER, bad_texts[i].body);
    expect_error(text, bad_texts[i].line + 1, bad_texts[i].msg);
  }
  for (size_t i = 0; i < sizeof bad_headers / sizeof bad_headers[0]; i++)
    expect_error(bad_headers[i].text, bad_headers[i].line, bad_headers[i].msg);
}
END_TEST

START_TEST(test_parse_null_and_name) {
  Arena a;
  arena_init(&a);
  Diag d = { 0 };
  ck_assert_ptr_null(ir_parse(&a, NULL, NULL, &d));
  ck_assert_int_eq(d.status, ATTNC_ERR_SPEC);
  Diag d2 = { 0 };
  ck_assert_ptr_null(ir_parse(&a, "junk", NULL, &d2));
  ck_assert_ptr_nonnull(strstr(d2.msg, "<ir>:1: "));
  arena_free(&a);
}
END_TEST

/* ------------------------------------------------------------- fold */

/* fold p and return the value of its last node, which must be a const */
static IrNode fold_last(IrPattern *p) {
  Diag d = { 0 };
  ck_assert_msg(ir_fold(p, &d) == ATTNC_OK, "fold: %s", d.msg);
  assert_verifies(p);
  IrNode n = p->nodes[p->nnodes - 1];
  ck_assert_msg(n.op == IR_CONST, "last node is %s, not const", ir_op_name(n.op));
  return n;
}

static int64_t fold_int(IrOp op, int64_t x, int64_t y) {
  Arena a;
  arena_init(&a);
  IrPattern *p = new_pattern(&a, "f");
  int cx = ir_const_int(p, x, 1), cy = ir_const_int(p, y, 1);
  if (ir_op_arity(op) == 1) N1(p, op, 1, cx);
  else N2(p, op, 1, cx, cy);
  IrNode n = fold_last(p);
  ck_assert_int_eq(n.type, IR_INT);
  arena_free(&a);
  return n.imm.i;
}

static double fold_float(IrOp op, double x, double y) {
  Arena a;
  arena_init(&a);
  IrPattern *p = new_pattern(&a, "f");
  int cx = ir_const_float(p, x, 1), cy = ir_const_float(p, y, 1);
  if (ir_op_arity(op) == 1) N1(p, op, 1, cx);
  else N2(p, op, 1, cx, cy);
  IrNode n = fold_last(p);
  ck_assert_int_eq(n.type, IR_FLOAT);
  arena_free(&a);
  return n.imm.f;
}

static bool fold_cmp_float(IrOp op, double x, double y) {
  Arena a;
  arena_init(&a);
  IrPattern *p = new_pattern(&a, "f");
  N2(p, op, 1, ir_const_float(p, x, 1), ir_const_float(p, y, 1));
  IrNode n = fold_last(p);
  ck_assert_int_eq(n.type, IR_BOOL);
  arena_free(&a);
  return n.imm.i != 0;
}

#define ck_assert_bits(x, y) ck_assert_msg(dbits(x) == dbits(y), "%a != %a", (double)(x), (double)(y))

START_TEST(test_fold_int) {
  ck_assert_int_eq(fold_int(IR_IDIV, -7, 2), -4);
  ck_assert_int_eq(fold_int(IR_MOD, -7, 2), 1);
  ck_assert_int_eq(fold_int(IR_IDIV, 7, -2), -4);
  ck_assert_int_eq(fold_int(IR_MOD, 7, -2), -1);
  ck_assert_int_eq(fold_int(IR_IDIV, -7, -2), 3);
  ck_assert_int_eq(fold_int(IR_MOD, -7, -2), -1);
  ck_assert_int_eq(fold_int(IR_IDIV, 6, 3), 2);
  ck_assert_int_eq(fold_int(IR_MOD, -6, 3), 0);
  ck_assert_int_eq(fold_int(IR_IDIV, INT64_MIN, -1), INT64_MIN);    /* wraps, as in Lua */
  ck_assert_int_eq(fold_int(IR_MOD, INT64_MIN, -1), 0);
  ck_assert_int_eq(fold_int(IR_IDIV, INT64_MIN, 2), INT64_MIN / 2);
  ck_assert_int_eq(fold_int(IR_ADD, INT64_MAX, 1), INT64_MIN);
  ck_assert_int_eq(fold_int(IR_SUB, INT64_MIN, 1), INT64_MAX);
  ck_assert_int_eq(fold_int(IR_MUL, INT64_MAX, 2), -2);
  ck_assert_int_eq(fold_int(IR_MUL, -6, 7), -42);
  ck_assert_int_eq(fold_int(IR_NEG, INT64_MIN, 0), INT64_MIN);
  ck_assert_int_eq(fold_int(IR_NEG, 5, 0), -5);
  ck_assert_int_eq(fold_int(IR_ABS, -5, 0), 5);
  ck_assert_int_eq(fold_int(IR_ABS, INT64_MIN, 0), INT64_MIN);
  ck_assert_int_eq(fold_int(IR_MIN, -3, 2), -3);
  ck_assert_int_eq(fold_int(IR_MAX, -3, 2), 2);
}
END_TEST

START_TEST(test_fold_float) {
  ck_assert_bits(fold_float(IR_IDIV, -7, 2), -4.0);
  ck_assert_bits(fold_float(IR_MOD, -7, 2), 1.0);
  ck_assert_bits(fold_float(IR_MOD, 5.5, -2), -0.5);
  ck_assert_bits(fold_float(IR_MOD, -5, INFINITY), INFINITY);      /* Lua: -5 % math.huge */
  ck_assert_bits(fold_float(IR_MOD, 5, INFINITY), 5.0);
  ck_assert_bits(fold_float(IR_IDIV, 1, 0.0), INFINITY);           /* no error for floats */
  ck_assert_bits(fold_float(IR_DIV, -1, 0.0), -INFINITY);
  ck_assert(isnan(fold_float(IR_DIV, 0.0, 0.0)));
  ck_assert_bits(fold_float(IR_ADD, 0.1, 0.2), 0.1 + 0.2);
  ck_assert_bits(fold_float(IR_ADD, -0.0, -0.0), -0.0);
  ck_assert_bits(fold_float(IR_MUL, 1e300, 1e300), INFINITY);
  ck_assert_bits(fold_float(IR_SUB, 1, 1), 0.0);
  ck_assert_bits(fold_float(IR_NEG, 0.0, 0), -0.0);
  ck_assert_bits(fold_float(IR_ABS, -0.0, 0), 0.0);
  ck_assert_bits(fold_float(IR_POW, 2, 10), 1024.0);
  ck_assert_bits(fold_float(IR_SQRT, 2, 0), sqrt(2.0));
  ck_assert_bits(fold_float(IR_EXP, 1, 0), exp(1.0));
  ck_assert_bits(fold_float(IR_LOG, 0, 0), -INFINITY);
  ck_assert_bits(fold_float(IR_TANH, 0.5, 0), tanh(0.5));
  /* Lua's math.min/max: the first argument wins ties and NaN comparisons */
  ck_assert(isnan(fold_float(IR_MIN, NAN, 1)));
  ck_assert_bits(fold_float(IR_MIN, 1, NAN), 1.0);
  ck_assert_bits(fold_float(IR_MAX, -0.0, 0.0), -0.0);
  ck_assert_bits(fold_float(IR_MIN, 2, -3), -3.0);
  ck_assert(!fold_cmp_float(IR_EQ, NAN, NAN));
  ck_assert(fold_cmp_float(IR_NE, NAN, NAN));
  ck_assert(!fold_cmp_float(IR_LE, NAN, 1));
  ck_assert(!fold_cmp_float(IR_GE, NAN, 1));
  ck_assert(fold_cmp_float(IR_EQ, 0.0, -0.0));
  ck_assert(fold_cmp_float(IR_LT, -INFINITY, -DBL_MAX));
}
END_TEST

START_TEST(test_fold_mixed_and_bool) {
  Arena a;
  arena_init(&a);
  IrPattern *p = new_pattern(&a, "f");
  /* 7 < 7.5 promotes 7 to float through tofloat; everything folds */
  N2(p, IR_LT, 1, ir_const_int(p, 7, 1), ir_const_float(p, 7.5, 1));
  IrNode n = fold_last(p);
  ck_assert_int_eq(n.type, IR_BOOL);
  ck_assert_int_eq(n.imm.i, 1);
  p = new_pattern(&a, "f");
  N1(p, IR_TOFLOAT, 1, ir_const_int(p, (INT64_C(1) << 53) + 1, 1));
  ck_assert_bits(fold_last(p).imm.f, 9007199254740992.0);
  p = new_pattern(&a, "f");
  int t = ir_const_bool(p, true, 1), f = ir_const_bool(p, false, 1);
  N2(p, IR_NE, 1, N2(p, IR_AND, 1, t, N1(p, IR_NOT, 1, f)), N2(p, IR_OR, 1, f, f));
  ck_assert_int_eq(fold_last(p).imm.i, 1);
  p = new_pattern(&a, "f");
  N2(p, IR_GE, 1, N2(p, IR_MOD, 1, ir_const_int(p, -1, 1), ir_const_int(p, 3, 1)), ir_const_int(p, 2, 1));
  ck_assert_int_eq(fold_last(p).imm.i, 1);
  arena_free(&a);
}
END_TEST

/* fold and cse p, then compare its text with want (a node section) */
static void check_simplified(Arena *a, IrPattern *p, const char *want) {
  Diag d = { 0 };
  ck_assert_msg(ir_fold(p, &d) == ATTNC_OK, "%s", d.msg);
  assert_verifies(p);
  ck_assert_msg(ir_cse(p, &d) == ATTNC_OK, "%s", d.msg);
  assert_verifies(p);
  const char *t = ir_print(p, a);
  const char *body = strchr(t, '\n') + 1;
  ck_assert_str_eq(body, want);
}

START_TEST(test_fold_identities) {
  Arena a;
  arena_init(&a);
  IrPattern *p;
  int q, k, x;
#define LEQK(p) (q = N0(p, IR_Q, 2), k = N0(p, IR_K, 2), N2(p, IR_LE, 3, k, q))
  const char *leqk = "%0 = k : int @2\n%1 = q : int @2\n%2 = le %0 %1 : bool @3\nmask %2\n";

  p = new_pattern(&a, "t"); x = LEQK(p);               /* x & true -> x */
  p->mask = N2(p, IR_AND, 4, x, ir_const_bool(p, true, 4));
  check_simplified(&a, p, leqk);
  p = new_pattern(&a, "t"); x = LEQK(p);               /* true & x -> x */
  p->mask = N2(p, IR_AND, 4, ir_const_bool(p, true, 4), x);
  check_simplified(&a, p, leqk);
  p = new_pattern(&a, "t"); x = LEQK(p);               /* x | false -> x */
  p->mask = N2(p, IR_OR, 4, x, ir_const_bool(p, false, 4));
  check_simplified(&a, p, leqk);
  p = new_pattern(&a, "t"); x = LEQK(p);               /* ~~x -> x */
  p->mask = N1(p, IR_NOT, 5, N1(p, IR_NOT, 4, x));
  check_simplified(&a, p, leqk);
  p = new_pattern(&a, "t"); x = LEQK(p);               /* x & x -> x */
  p->mask = N2(p, IR_AND, 4, x, x);
  check_simplified(&a, p, leqk);
  p = new_pattern(&a, "t"); x = LEQK(p);               /* x & false -> false */
  p->mask = N2(p, IR_AND, 4, x, ir_const_bool(p, false, 6));
  check_simplified(&a, p, "%0 = const false : bool @6\nmask %0\n");
  p = new_pattern(&a, "t"); x = LEQK(p);               /* true | x -> true */
  p->mask = N2(p, IR_OR, 4, ir_const_bool(p, true, 6), x);
  check_simplified(&a, p, "%0 = const true : bool @6\nmask %0\n");
  p = new_pattern(&a, "t"); x = LEQK(p);               /* ~x stays */
  p->mask = N1(p, IR_NOT, 4, x);
  check_simplified(&a, p, "%0 = k : int @2\n%1 = q : int @2\n%2 = le %0 %1 : bool @3\n"
                          "%3 = not %2 : bool @4\nmask %3\n");

  /* select with a constant condition, or equal branches */
  p = new_pattern(&a, "t"); LEQK(p);
  p->mask = N2(p, IR_LE, 3, N(p, IR_SELECT, 0, 4, 3, ir_const_bool(p, true, 4), k, q), q);
  check_simplified(&a, p, leqk);
  p = new_pattern(&a, "t"); LEQK(p);
  p->mask = N2(p, IR_LE, 3, N(p, IR_SELECT, 0, 4, 3, ir_const_bool(p, false, 4), q, k), q);
  check_simplified(&a, p, leqk);
  p = new_pattern(&a, "t"); x = LEQK(p);
  p->mask = N2(p, IR_LE, 3, N(p, IR_SELECT, 0, 4, 3, x, k, k), q);
  check_simplified(&a, p, leqk);

  /* int x + 0, 0 + x, x - 0, x * 1, 1 * x, x // 1 */
  IrOp ops[] = { IR_ADD, IR_ADD, IR_SUB, IR_MUL, IR_MUL, IR_IDIV };
  int64_t unit[] = { 0, 0, 0, 1, 1, 1 };
  bool left[] = { false, true, false, false, true, false };
  for (int i = 0; i < 6; i++) {
    p = new_pattern(&a, "t");
    k = N0(p, IR_K, 2);
    q = N0(p, IR_Q, 2);
    int c = ir_const_int(p, unit[i], 9);
    int e = left[i] ? N2(p, ops[i], 9, c, k) : N2(p, ops[i], 9, k, c);
    p->mask = N2(p, IR_LE, 3, e, q);
    check_simplified(&a, p, leqk);
  }
  /* int x * 0 -> 0, x % 1 -> 0 (the const 0 keeps the mul's or mod's line) */
  p = new_pattern(&a, "t");
  q = N0(p, IR_Q, 2);
  p->mask = N2(p, IR_LE, 3, N2(p, IR_MUL, 9, q, ir_const_int(p, 0, 8)), q);
  check_simplified(&a, p, "%0 = const 0 : int @8\n%1 = q : int @2\n%2 = le %0 %1 : bool @3\nmask %2\n");
  p = new_pattern(&a, "t");
  q = N0(p, IR_Q, 2);
  p->mask = N2(p, IR_LE, 3, N2(p, IR_MOD, 9, q, ir_const_int(p, 1, 8)), q);
  check_simplified(&a, p, "%0 = const 0 : int @9\n%1 = q : int @2\n%2 = le %0 %1 : bool @3\nmask %2\n");
  /* but not for floats: x + 0.0 and x * 0.0 stay (-0.0, inf, nan) */
  p = new_pattern(&a, "t");
  int s = N0(p, IR_SCORE, 2);
  p->score = N2(p, IR_ADD, 3, N2(p, IR_MUL, 3, s, ir_const_float(p, 0.0, 3)), ir_const_float(p, 0.0, 3));
  check_simplified(&a, p, "%0 = score : float @2\n%1 = const 0.0 : float @3\n%2 = mul %0 %1 : float @3\n"
                          "%3 = add %2 %1 : float @3\nscore %3\n");
  /* constants cascade: (2 + 3) * 4 - 20 == 0 is true, and & true goes */
  p = new_pattern(&a, "t"); x = LEQK(p);
  int sum = N2(p, IR_MUL, 4, N2(p, IR_ADD, 4, ir_const_int(p, 2, 4), ir_const_int(p, 3, 4)),
               ir_const_int(p, 4, 4));
  int z = N2(p, IR_EQ, 4, N2(p, IR_SUB, 4, sum, ir_const_int(p, 20, 4)), ir_const_int(p, 0, 4));
  p->mask = N2(p, IR_AND, 4, z, x);
  check_simplified(&a, p, leqk);
#undef LEQK
  arena_free(&a);
}
END_TEST

START_TEST(test_fold_division_by_zero) {
  Arena a;
  arena_init(&a);
  for (int mod = 0; mod < 2; mod++) {
    IrPattern *p = new_pattern(&a, "dz");
    int q = N0(p, IR_Q, 3);
    int zero = N2(p, IR_SUB, 11, ir_const_int(p, 5, 11), ir_const_int(p, 5, 11));   /* folds to 0 */
    int e = N2(p, mod ? IR_MOD : IR_IDIV, 12, q, zero);
    p->mask = N2(p, IR_LT, 13, e, q);
    const char *before = ir_print(p, &a);
    Diag d = { 0 };
    ck_assert_int_eq(ir_fold(p, &d), ATTNC_ERR_SPEC);
    ck_assert_str_eq(d.msg, mod ? "specs/dz.lua:12: modulo by zero" : "specs/dz.lua:12: division by zero");
    ck_assert_str_eq(ir_print(p, &a), before);          /* unchanged on error */
  }
  /* float division by zero is IEEE, not an error */
  IrPattern *p = new_pattern(&a, "dz");
  p->score = N2(p, IR_IDIV, 1, N0(p, IR_SCORE, 1), ir_const_float(p, 0.0, 1));
  Diag d = { 0 };
  ck_assert_int_eq(ir_fold(p, &d), ATTNC_OK);
  arena_free(&a);
}
END_TEST

/* -------------------------------------------------------------- cse */

START_TEST(test_cse) {
  Arena a;
  arena_init(&a);
  IrPattern *p = new_pattern(&a, "c");
  int q1 = N0(p, IR_Q, 1), k1 = N0(p, IR_K, 1);
  int d1 = N2(p, IR_SUB, 2, q1, k1);
  N2(p, IR_MUL, 3, d1, d1);                                    /* dead */
  int q2 = N0(p, IR_Q, 4), k2 = N0(p, IR_K, 4);
  int d2 = N2(p, IR_SUB, 5, q2, k2);                           /* same as d1 */
  int d3 = N2(p, IR_SUB, 5, k2, q2);                           /* not the same */
  int c1 = ir_const_float(p, 0.0, 6), c2 = ir_const_float(p, -0.0, 6), c3 = ir_const_float(p, 0.0, 7);
  int qc0 = N(p, IR_QC, 0, 6, 0), qc0b = N(p, IR_QC, 0, 7, 0);
  int m = N2(p, IR_AND, 6, N2(p, IR_LE, 6, d1, d3), N2(p, IR_GE, 6, d2, N0(p, IR_SEQQ, 6)));
  m = N2(p, IR_AND, 7, m, N2(p, IR_EQ, 7, qc0, qc0b));
  p->mask = m;
  int s = N0(p, IR_SCORE, 8);
  p->score = N2(p, IR_ADD, 8, N2(p, IR_ADD, 8, s, c1), N2(p, IR_ADD, 8, N2(p, IR_ADD, 8, s, c2),
                                                        N2(p, IR_ADD, 8, s, c3)));
  Diag d = { 0 };
  ck_assert_int_eq(ir_cse(p, &d), ATTNC_OK);
  assert_verifies(p);
  /* order kept; the first of equal nodes (and its line) stays */
  ck_assert_int_eq(p->nnodes, 18);
  /* in array order: q k sub sub' c0 c-0 qc seqq le ge and eq and score add add add add */
  ck_assert_int_eq(p->nodes[0].op, IR_Q);
  ck_assert_int_eq(p->nodes[1].op, IR_K);
  ck_assert_int_eq(p->nodes[2].line, 2);
  ck_assert_int_eq(p->nodes[3].args[0], 1);
  ck_assert_int_eq(p->nodes[4].op, IR_CONST);
  ck_assert_uint_eq(dbits(p->nodes[5].imm.f), dbits(-0.0));  /* -0.0 is not 0.0 */
  ck_assert_int_eq(p->nodes[6].op, IR_QC);
  ck_assert_int_eq(p->mask, 12);
  ck_assert_int_eq(p->score, 17);
  for (int i = 0; i < p->nnodes; i++)
    for (int j = 0; j < i; j++) {
      IrNode x = p->nodes[i], y = p->nodes[j];
      bool eq = x.op == y.op && x.type == y.type && x.nargs == y.nargs && x.imm.i == y.imm.i &&
                memcmp(x.args, y.args, sizeof x.args) == 0;
      ck_assert_msg(!eq, "nodes %d and %d are equal", j, i);
    }
  /* cse is idempotent, and the printed form of the result is stable */
  const char *t = ir_print(p, &a);
  ck_assert_int_eq(ir_cse(p, &d), ATTNC_OK);
  ck_assert_str_eq(ir_print(p, &a), t);
  roundtrip(&a, p);
  /* nothing reachable: everything goes */
  p->mask = p->score = -1;
  ck_assert_int_eq(ir_cse(p, &d), ATTNC_OK);
  ck_assert_int_eq(p->nnodes, 0);
  assert_verifies(p);
  arena_free(&a);
}
END_TEST

START_TEST(test_cse_loads) {
  Arena a;
  arena_init(&a);
  IrPattern *p = new_pattern(&a, "c");
  IrDim dim = { DIM_SQ, 1 };
  int i0 = add_input(p, "a", DT_I32, 1, &dim, 1), i1 = add_input(p, "b", DT_I32, 1, &dim, 1);
  int q = N0(p, IR_Q, 2);
  int la = N(p, IR_LOAD, i0, 2, 1, q), lb = N(p, IR_LOAD, i1, 2, 1, q), la2 = N(p, IR_LOAD, i0, 3, 1, q);
  p->mask = N2(p, IR_AND, 3, N2(p, IR_EQ, 3, la, lb), N2(p, IR_EQ, 3, la2, lb));
  Diag d = { 0 };
  ck_assert_int_eq(ir_cse(p, &d), ATTNC_OK);
  /* load a and load b differ only in the immediate; the two load a are one */
  ck_assert_int_eq(p->nnodes, 5);
  ck_assert_str_eq(ir_print(p, &a) + strlen("pattern \"c\" file \"specs/c.lua\"\n"
                                            "input a i32 [Sq] line 1\ninput b i32 [Sq] line 1\n"),
                   "%0 = q : int @2\n%1 = load a %0 : int @2\n%2 = load b %0 : int @2\n"
                   "%3 = eq %1 %2 : bool @3\n%4 = and %3 %3 : bool @3\nmask %4\n");
  arena_free(&a);
}
END_TEST

/* ----------------------------------------------------------- verify */

/* build a good pattern, break it with f, expect an internal error naming want */
static void expect_broken(void (*f)(IrPattern *), const char *want) {
  Arena a;
  arena_init(&a);
  IrPattern *p = every_op(&a);
  assert_verifies(p);
  f(p);
  Diag d = { 0 };
  ck_assert_int_eq(ir_verify(p, &d), ATTNC_ERR_INTERNAL);
  ck_assert_msg(strstr(d.msg, want) && strstr(d.msg, "internal compiler error"),
                "want '%s', got '%s'", want, d.msg);
  char *t = ir_print(p, &a);                   /* broken IR still prints */
  ck_assert_ptr_nonnull(t);
  arena_free(&a);
}

/* the index of the first node with op */
static int find(IrPattern *p, IrOp op) {
  for (int i = 0; i < p->nnodes; i++)
    if (p->nodes[i].op == op) return i;
  ck_abort_msg("no %s", ir_op_name(op));
  return -1;
}

static void br_forward(IrPattern *p) { p->nodes[find(p, IR_SUB)].args[1] = p->nnodes - 1; }
static void br_self(IrPattern *p) { int i = find(p, IR_SUB); p->nodes[i].args[0] = i; }
static void br_negative(IrPattern *p) { p->nodes[find(p, IR_SUB)].args[0] = -1; }
static void br_arity(IrPattern *p) { p->nodes[find(p, IR_NOT)].nargs = 2; }
static void br_op(IrPattern *p) { p->nodes[3].op = IR_NOPS; }
static void br_type(IrPattern *p) { p->nodes[find(p, IR_SUB)].type = IR_FLOAT; }
static void br_mixed(IrPattern *p) { p->nodes[p->score].args[1] = find(p, IR_Q); }  /* float + int */
static void br_fmath(IrPattern *p) { p->nodes[find(p, IR_SQRT)].args[0] = find(p, IR_Q); }
static void br_logic(IrPattern *p) { p->nodes[find(p, IR_NOT)].args[0] = find(p, IR_Q); }
static void br_cmp(IrPattern *p) { p->nodes[find(p, IR_LT)].args[1] = find(p, IR_LE); }
static void br_tofloat(IrPattern *p) { p->nodes[find(p, IR_TOFLOAT)].args[0] = find(p, IR_SCORE); }
static void br_select(IrPattern *p) { p->nodes[find(p, IR_SELECT)].args[0] = find(p, IR_Q); }
static void br_mask_int(IrPattern *p) { p->mask = find(p, IR_Q); }
static void br_score_bool(IrPattern *p) { p->score = p->mask; }
static void br_root_range(IrPattern *p) { p->score = p->nnodes; }
static void br_score_in_mask(IrPattern *p) {
  int s = find(p, IR_SCORE);
  p->mask = N2(p, IR_AND, 40, p->mask, N2(p, IR_LT, 40, s, s));
}
static void br_axis(IrPattern *p) { p->nodes[find(p, IR_KC)].imm.i = 2; }
static void br_axis_1d(IrPattern *p) { p->grid_rank = 0; }
static void br_input(IrPattern *p) { p->nodes[find(p, IR_LOAD)].imm.i = 7; }
static void br_load_arity(IrPattern *p) { p->nodes[find(p, IR_LOAD)].nargs = 2; }
static void br_contains_f32(IrPattern *p) { p->inputs[1].dtype = DT_F32; }
static void br_load_bool_index(IrPattern *p) { p->nodes[find(p, IR_LOAD)].args[0] = find(p, IR_LE); }
static void br_dup_param(IrPattern *p) { p->params[1].name = "window"; }
static void br_empty_input(IrPattern *p) { p->inputs[2].name = ""; }
static void br_dup_input(IrPattern *p) { p->inputs[2].name = "doc"; }
static void br_grid(IrPattern *p) { p->grid[1] = 0; }
static void br_grid_rank(IrPattern *p) { p->grid_rank = 4; }
static void br_divisor(IrPattern *p) { p->inputs[1].dims[2].value = 0; }
static void br_bool_const(IrPattern *p) {
  for (int i = 0; i < p->nnodes; i++)
    if (p->nodes[i].op == IR_CONST && p->nodes[i].type == IR_BOOL) p->nodes[i].imm.i = 2;
}
static void br_int_param(IrPattern *p) { p->params[0].value = 1.5; }
static void br_nnodes(IrPattern *p) { p->nnodes = p->cap + 1; }

START_TEST(test_verify) {
  expect_broken(br_forward, "argument 1 is %");
  expect_broken(br_self, "not an earlier node");
  expect_broken(br_negative, "argument 0 is %-1, not an earlier node");
  expect_broken(br_arity, "(not): 2 arguments");
  expect_broken(br_op, "has op 38");
  expect_broken(br_type, "(sub): is float, but its arguments make it int");
  expect_broken(br_mixed, "(add): arguments must be numbers of one type");
  expect_broken(br_fmath, "(sqrt): arguments must be float");
  expect_broken(br_logic, "(not): arguments must be bool");
  expect_broken(br_cmp, "(lt): compares two numbers of one type");
  expect_broken(br_tofloat, "(tofloat): converts an int");
  expect_broken(br_select, "(select): needs a bool condition");
  expect_broken(br_mask_int, "mask must be bool, is int");
  expect_broken(br_score_bool, "score must be float, is bool");
  expect_broken(br_root_range, "score is node");
  expect_broken(br_score_in_mask, "(score): the raw score is used by the mask");
  expect_broken(br_axis, "(kc): axis 2 of a 2-D grid");
  expect_broken(br_axis_1d, "(kc): axis 1 of a 1-D grid");
  expect_broken(br_input, "(load): input 7 does not exist");
  expect_broken(br_load_arity, "(load): input 'doc' has 1 dims but 2 arguments");
  expect_broken(br_contains_f32, "(contains): contains needs an i32 input");
  expect_broken(br_load_bool_index, "(load): argument 0 is bool, not int");
  expect_broken(br_dup_param, "param 'window' declared twice");
  expect_broken(br_empty_input, "input 2 has no name");
  expect_broken(br_dup_input, "input 'doc' declared twice");
  expect_broken(br_grid, "grid axis 1 has size 0");
  expect_broken(br_grid_rank, "grid rank 4");
  expect_broken(br_divisor, "input 'route' dim 2 is Sq 0 (divisors are >= 1)");
  expect_broken(br_bool_const, "(const): bool const 2");
  expect_broken(br_int_param, "int param 'window' has a value that is not an integer");
  expect_broken(br_nnodes, "nodes in an array of");
}
END_TEST

START_TEST(test_verify_names_node_line) {
  Arena a;
  arena_init(&a);
  IrPattern *p = sliding_window(&a);
  p->nodes[p->mask].args[1] = p->mask;
  Diag d = { 0 };
  ck_assert_int_eq(ir_verify(p, &d), ATTNC_ERR_INTERNAL);
  ck_assert_str_eq(d.msg, "specs/sliding_window.lua:8: internal compiler error (a bug in attnc): "
                          "node %6 (and): argument 1 is %6, not an earlier node");
  arena_free(&a);
}
END_TEST

/* ------------------------------------------------------------- hash */

START_TEST(test_hash) {
  Arena a;
  arena_init(&a);
  IrPattern *p = sliding_window(&a);
  uint64_t h = UINT64_C(0xcbf29ce484222325);
  for (const char *s = sliding_window_text; *s; s++) h = (h ^ (unsigned char)*s) * UINT64_C(0x100000001b3);
  ck_assert_uint_eq(ir_hash(p), h);
  p->params[0].overridden = true;
  ck_assert_uint_ne(ir_hash(p), h);
  ck_assert_uint_ne(ir_hash(every_op(&a)), h);
  arena_free(&a);
}
END_TEST

/* ------------------------------------------------- allocation failures */

/* every function fails cleanly (NULL or NOMEM) at each allocation */
START_TEST(test_alloc_failures) {
  for (long n = 0;; n++) {
    Arena a;
    arena_init(&a);
    arena_fail_after(-1);
    IrPattern *p = every_op(&a);
    const char *text = ir_print(p, &a);
    ck_assert_ptr_nonnull(text);
    arena_fail_after(n);
    bool done = true;
    char *t = ir_print(p, &a);
    done = done && t;
    Diag d = { 0 };
    IrPattern *q = ir_parse(&a, text, "x", &d);
    ck_assert(q || d.status == ATTNC_ERR_NOMEM);
    done = done && q;
    Diag d2 = { 0 };
    attnc_status st = ir_fold(p, &d2);
    ck_assert(st == ATTNC_OK || st == ATTNC_ERR_NOMEM);
    done = done && st == ATTNC_OK;
    Diag d3 = { 0 };
    st = ir_cse(p, &d3);
    ck_assert(st == ATTNC_OK || st == ATTNC_ERR_NOMEM);
    done = done && st == ATTNC_OK;
    arena_fail_after(-1);
    arena_free(&a);
    if (done) break;
    ck_assert_int_lt(n, 100000);
  }
}
END_TEST

/* ------------------------------------------------------------- fuzz */

typedef struct Rng { uint64_t s; } Rng;
static uint64_t rnd(Rng *r) {          /* xorshift64* */
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return r->s * UINT64_C(2685821657736338717);
}
static int rndn(Rng *r, int n) { return (int)(rnd(r) % (uint64_t)n); }

static const char *fuzz_tokens[] = {
  "%0", "%1", "%99", "%2147483647", "%-1", " ", "\n", "\t", "#", "\"", "\\", "\\x", "\\x00", "[", "]", ",",
  "/", ":", "=", "@", "@0", "const", "load", "contains", "qc", "kc", "tofloat", "select", "score", "mask",
  "nan", "-nan", "nan(0x7ff0000000000001)", "inf", "-0.0", "1e999", "1e-400", "0x1p3",
  "9223372036854775808", "-9223372036854775808", "true", "false", "int", "float", "bool", "Sq/",
  "Hkv", "B", "param w int 1 default 1 line 1\n", "input z i32 [4] line 1\n", "grid 3 3\n",
  "mask %0\n", "score %0\n", "%0 = q : int @1\n", "pattern \"p\" file \"f\"\n", "\xff", "\x01",
};

/* change text in one of a few ways: bytes, tokens, spans, lines */
static size_t mutate(Rng *r, char *buf, size_t n, size_t cap) {
  size_t at = n ? (size_t)rndn(r, (int)n) : 0;
  switch (rndn(r, 6)) {
  case 0:                                                   /* a byte */
    if (n) buf[at] = (char)(rndn(r, 255) + 1);
    break;
  case 1: {                                                 /* delete a span */
    size_t len = (size_t)rndn(r, 16) + 1;
    if (at + len > n) len = n - at;
    memmove(buf + at, buf + at + len, n - at - len);
    n -= len;
    break;
  }
  case 2: case 3: {                                         /* insert a token */
    const char *tok = fuzz_tokens[rndn(r, (int)(sizeof fuzz_tokens / sizeof fuzz_tokens[0]))];
    size_t len = strlen(tok);
    if (n + len >= cap) break;
    memmove(buf + at + len, buf + at, n - at);
    memcpy(buf + at, tok, len);
    n += len;
    break;
  }
  case 4: {                                                 /* duplicate a span */
    size_t len = (size_t)rndn(r, 64) + 1, from = n ? (size_t)rndn(r, (int)n) : 0;
    if (from + len > n) len = n - from;
    if (n + len >= cap) break;
    char tmp[64];
    memcpy(tmp, buf + from, len);
    memmove(buf + at + len, buf + at, n - at);
    memcpy(buf + at, tmp, len);
    n += len;
    break;
  }
  default:                                                  /* truncate */
    n = at;
  }
  buf[n] = '\0';
  return n;
}

/*
** Mutate printed IR and parse it: never a crash; a failure is a located
** ATTNC_ERR_SPEC; a success verifies and round-trips. Fixed seeds, and a
** time bound so sanitizer builds stay quick.
*/
START_TEST(test_fuzz_parse) {
  Arena base;
  arena_init(&base);
  const char *seeds[3] = { ir_print(every_op(&base), &base), sliding_window_text, NULL };
  IrPattern *fl = float_consts(&base, (double[]){ -0.0, NAN, 1e300, 0.1 }, 4);
  seeds[2] = ir_print(fl, &base);
  enum { CAP = 8192 };
  char *buf = malloc(CAP);
  Rng r = { UINT64_C(0x9e3779b97f4a7c15) };
  clock_t start = clock();
  int parsed = 0, iters = 0;
  for (; iters < 40000 && clock() - start < CLOCKS_PER_SEC * 3 / 2; iters++) {
    const char *seed = seeds[iters % 3];
    size_t n = strlen(seed);
    memcpy(buf, seed, n + 1);
    int muts = 1 + rndn(&r, 3);
    for (int m = 0; m < muts; m++) n = mutate(&r, buf, n, CAP);
    Arena a;
    arena_init(&a);
    Diag d = { 0 };
    IrPattern *p = ir_parse(&a, buf, "fuzz", &d);
    if (!p) {
      ck_assert_msg(d.status == ATTNC_ERR_SPEC && strncmp(d.msg, "fuzz:", 5) == 0, "%s", d.msg);
      ck_assert_msg(!strstr(d.msg, "does not verify"), "parse let through bad IR: %s\n%s", d.msg, buf);
    } else {
      parsed++;
      assert_verifies(p);
      const char *t = ir_print(p, &a);
      Diag d2 = { 0 };
      IrPattern *p2 = ir_parse(&a, t, "again", &d2);
      ck_assert_msg(p2 != NULL, "reprint does not parse: %s\n%s", d2.msg, t);
      ck_assert_str_eq(ir_print(p2, &a), t);
      Diag d3 = { 0 };
      if (ir_fold(p2, &d3) == ATTNC_OK && ir_cse(p2, &d3) == ATTNC_OK) assert_verifies(p2);
    }
    arena_free(&a);
  }
  ck_assert_int_gt(iters, 1000);
  ck_assert_int_gt(parsed, 10);
  free(buf);
  arena_free(&base);
}
END_TEST

/*
** Fold and cse preserve meaning: random int/bool/float expressions over
** q, k, b, h and small constants, evaluated with ir_eval before and after
** at a few points (points where the original faults are skipped).
*/
typedef struct Gen { IrPattern *p; Rng *r; int ints[64], nints, bools[64], nbools, flts[64], nflts; } Gen;

static int pick(Gen *g, const int *v, int n) { return v[n - 1 - rndn(g->r, n < 6 ? n : 6)]; }

static void gen_step(Gen *g) {
  static const IrOp iops[] = { IR_ADD, IR_SUB, IR_MUL, IR_IDIV, IR_MOD, IR_MIN, IR_MAX };
  static const IrOp cmps[] = { IR_LT, IR_LE, IR_GT, IR_GE, IR_EQ, IR_NE };
  static const IrOp fops[] = { IR_ADD, IR_SUB, IR_MUL, IR_DIV, IR_MIN, IR_MAX, IR_IDIV, IR_MOD };
  IrPattern *p = g->p;
  int x = pick(g, g->ints, g->nints), y = pick(g, g->ints, g->nints), line = g->p->nnodes;
  int n = -1;
  switch (rndn(g->r, 10)) {
  case 0: case 1: case 2: n = N2(p, iops[rndn(g->r, 7)], line, x, y); break;
  case 3: n = N1(p, rndn(g->r, 2) ? IR_NEG : IR_ABS, line, x); break;
  case 4: n = ir_const_int(p, rndn(g->r, 7) - 3, line); break;
  case 5: g->bools[g->nbools++] = N2(p, cmps[rndn(g->r, 6)], line, x, y); return;
  case 6: {
    int a = pick(g, g->bools, g->nbools), b = pick(g, g->bools, g->nbools);
    int op = rndn(g->r, 4);
    g->bools[g->nbools++] = op == 3 ? N1(p, IR_NOT, line, a) : op == 2 ? ir_const_bool(p, rndn(g->r, 2), line)
                          : N2(p, op ? IR_OR : IR_AND, line, a, b);
    return;
  }
  case 7: n = N(p, IR_SELECT, 0, line, 3, pick(g, g->bools, g->nbools), x, y); break;
  case 8: g->flts[g->nflts++] = N1(p, IR_TOFLOAT, line, x); return;
  default: {
    int a = pick(g, g->flts, g->nflts), b = pick(g, g->flts, g->nflts);
    g->flts[g->nflts++] = N2(p, fops[rndn(g->r, 8)], line, a, b);
    return;
  }
  }
  g->ints[g->nints++] = n;
}

static bool same_value(double x, double y) { return dbits(x) == dbits(y) || (isnan(x) && isnan(y)); }

START_TEST(test_fuzz_fold_meaning) {
  Rng r = { 12345 };
  int compared = 0;
  for (int iter = 0; iter < 300; iter++) {
    Arena a;
    arena_init(&a);
    Gen g = { .p = new_pattern(&a, "g"), .r = &r };
    IrPattern *p = g.p;
    g.ints[g.nints++] = N0(p, IR_Q, 1);
    g.ints[g.nints++] = N0(p, IR_K, 1);
    g.ints[g.nints++] = N0(p, IR_HEAD, 1);
    g.ints[g.nints++] = ir_const_int(p, rndn(&r, 9) - 4, 1);
    g.bools[g.nbools++] = N2(p, IR_LE, 1, g.ints[1], g.ints[0]);
    g.flts[g.nflts++] = N0(p, IR_SCORE, 1);
    g.flts[g.nflts++] = ir_const_float(p, (rndn(&r, 9) - 4) * 0.5, 1);
    while (g.nints < 60 && g.nbools < 60 && g.nflts < 60) gen_step(&g);
    p->mask = g.bools[g.nbools - 1];
    p->score = N2(p, IR_ADD, 99, g.flts[g.nflts - 1],
                  N1(p, IR_TOFLOAT, 99, g.ints[g.nints - 1]));
    IrPattern *orig = ir_parse(&a, ir_print(p, &a), "orig", &(Diag){ 0 });
    ck_assert_ptr_nonnull(orig);
    Diag d = { 0 };
    attnc_status st = ir_fold(p, &d);
    if (st == ATTNC_OK) st = ir_cse(p, &d);
    if (st != ATTNC_OK) {
      ck_assert_msg(st == ATTNC_ERR_SPEC && strstr(d.msg, "by zero"), "%s", d.msg);
      arena_free(&a);
      continue;
    }
    assert_verifies(p);
    roundtrip(&a, p);
    double *v1 = arena_alloc(&a, sizeof(double) * (size_t)(orig->nnodes + 1));
    double *v2 = arena_alloc(&a, sizeof(double) * (size_t)(p->nnodes + 1));
    for (int pt = 0; pt < 6; pt++) {
      IrEnv env = { .b = rndn(&r, 2), .h = rndn(&r, 4), .q = rndn(&r, 9) - 1, .k = rndn(&r, 9) - 1,
                    .sq = 8, .sk = 8, .s = (rndn(&r, 9) - 4) * 0.75 };
      ir_env_coords(orig, &env);
      int roots1[2] = { orig->mask, orig->score }, roots2[2] = { p->mask, p->score };
      for (int k = 0; k < 2; k++) {
        Diag e1 = { 0 }, e2 = { 0 };
        double x = ir_eval(orig, roots1[k], &env, v1, &e1);
        if (!diag_ok(&e1)) continue;                    /* the original faults here */
        double y = ir_eval(p, roots2[k], &env, v2, &e2);
        ck_assert_msg(diag_ok(&e2), "folded faults: %s", e2.msg);
        ck_assert_msg(same_value(x, y), "iter %d: %a became %a\n%s", iter, x, y, ir_print(orig, &a));
        compared++;
      }
    }
    arena_free(&a);
  }
  ck_assert_int_gt(compared, 500);
}
END_TEST

/* ------------------------------------------------------------ specs */

static int cmp_names(const void *x, const void *y) {
  return strcmp(*(char *const *)x, *(char *const *)y);
}

/* trace one spec, twice, and check its text round trip before and after fold + cse */
static void check_spec(const char *rel) {
  Arena a;
  arena_init(&a);
  Diag d = { 0 };
  size_t len;
  char *src = fe_read_file(&a, tu_path(rel), &len, &d);
  ck_assert_msg(src != NULL, "%s", d.msg);
  IrPattern *p = NULL, *p2 = NULL;
  ck_assert_msg(fe_trace(&a, rel, src, len, NULL, 0, NULL, &p, &d) == ATTNC_OK, "%s", d.msg);
  ck_assert_msg(fe_trace(&a, rel, src, len, NULL, 0, NULL, &p2, &d) == ATTNC_OK, "%s", d.msg);
  assert_verifies(p);
  ck_assert_str_eq(ir_print(p, &a), ir_print(p2, &a));          /* tracing is deterministic */
  roundtrip(&a, p);
  ck_assert_msg(ir_fold(p, &d) == ATTNC_OK && ir_cse(p, &d) == ATTNC_OK, "%s: %s", rel, d.msg);
  assert_verifies(p);
  IrPattern *q = roundtrip(&a, p);
  ck_assert_int_eq(q->nnodes, p->nnodes);                       /* cse left no dead nodes */
  arena_free(&a);
}

START_TEST(test_specs_roundtrip) {
  DIR *dir = opendir(tu_path("specs"));
  ck_assert_msg(dir != NULL, "no specs/ directory");
  char *names[512];
  int n = 0;
  for (struct dirent *e; (e = readdir(dir)) && n < 512;) {
    size_t len = strlen(e->d_name);
    if (len > 4 && strcmp(e->d_name + len - 4, ".lua") == 0) names[n++] = strdup(e->d_name);
  }
  closedir(dir);
  qsort(names, (size_t)n, sizeof names[0], cmp_names);
  if (n == 0) fprintf(stderr, "test_specs_roundtrip: no specs/*.lua yet\n");
  for (int i = 0; i < n; i++) {
    char rel[600];
    snprintf(rel, sizeof rel, "specs/%s", names[i]);
    check_spec(rel);
    free(names[i]);
  }
}
END_TEST

/* ---------------------------------------------------------------- suite */

static Suite *ir_suite(void) {
  Suite *s = suite_create("ir");
  TCase *tc = tcase_create("text");
  tcase_add_test(tc, test_print_format);
  tcase_add_test(tc, test_print_canonical_order);
  tcase_add_test(tc, test_every_op_roundtrip);
  tcase_add_test(tc, test_float_roundtrip);
  tcase_add_test(tc, test_float_format);
  tcase_add_test(tc, test_int_and_bool_consts);
  tcase_add_test(tc, test_strings);
  tcase_add_test(tc, test_parse_lenient);
  tcase_add_test(tc, test_doc_examples);
  tcase_add_test(tc, test_parse_errors);
  tcase_add_test(tc, test_parse_null_and_name);
  tcase_add_test(tc, test_hash);
  suite_add_tcase(s, tc);
  tc = tcase_create("passes");
  tcase_add_test(tc, test_fold_int);
  tcase_add_test(tc, test_fold_float);
  tcase_add_test(tc, test_fold_mixed_and_bool);
  tcase_add_test(tc, test_fold_identities);
  tcase_add_test(tc, test_fold_division_by_zero);
  tcase_add_test(tc, test_cse);
  tcase_add_test(tc, test_cse_loads);
  tcase_add_test(tc, test_verify);
  tcase_add_test(tc, test_verify_names_node_line);
  tcase_add_test(tc, test_alloc_failures);
  suite_add_tcase(s, tc);
  tc = tcase_create("specs");
  tcase_add_test(tc, test_specs_roundtrip);
  suite_add_tcase(s, tc);
  tc = tcase_create("fuzz");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_fuzz_parse);
  tcase_add_test(tc, test_fuzz_fold_meaning);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run(ir_suite()); }
