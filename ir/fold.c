/*
** fold.c -- constant folding and algebraic identities, in place.
**
** One forward sweep over the nodes (arguments come first, so folds
** cascade): each node is either kept (its arguments renamed), rewritten
** into a constant, or replaced by a node that already computes its value.
** Semantics are exactly those of ir_eval (eval.c): ints wrap as Lua's do,
** // and % are Lua's floor division and modulo, floats are IEEE double,
** min/max are Lua's math.min/math.max (the first argument wins ties and
** NaN comparisons). Identities may drop a subexpression (x & false ->
** false); that only removes work, never an allowed pair. Nodes keep their
** spec line; unreachable nodes stay until ir_cse removes them.
*/
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"

typedef struct Folder {
  IrPattern *p;
  IrNode *out;    /* the new node array */
  int nout;
  int *map;       /* old index -> new index */
  Diag *d;
} Folder;

enum { KEEP = -1, FAIL = -2 };   /* simplify's answers besides a node index */

/* --------------------------------------------------------- helpers */

static bool isconst(const Folder *F, int a) { return F->out[a].op == IR_CONST; }
static int64_t ci(const Folder *F, int a) { return F->out[a].imm.i; }
static double cf(const Folder *F, int a) { return F->out[a].imm.f; }
static bool is_int(const Folder *F, int a, int64_t v) {
  return isconst(F, a) && F->out[a].type == IR_INT && ci(F, a) == v;
}

static void make_const(IrNode *n) {
  n->op = IR_CONST;
  n->nargs = 0;
  memset(n->args, 0, sizeof n->args);
}
static void make_int(IrNode *n, int64_t v) { make_const(n); n->imm.i = v; }
static void make_float(IrNode *n, double v) { make_const(n); n->imm.f = v; }

/* wrapping int64 arithmetic, as Lua's (signed overflow is undefined in C) */
static int64_t wadd(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static int64_t wsub(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }
static int64_t wmul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }

/* Lua's float modulo (lvm.c luai_nummod) */
static double float_mod(double a, double b) {
  double m = fmod(a, b);
  if ((m > 0) ? b < 0 : (m < 0 && b != m)) m += b;
  return m;
}

/* ------------------------------------------------------- constants */

/* an int op of constants x, y (y != 0 for // and %) */
static int64_t int_op(IrOp op, int64_t x, int64_t y) {
  switch (op) {
  case IR_ADD: return wadd(x, y);
  case IR_SUB: return wsub(x, y);
  case IR_MUL: return wmul(x, y);
  case IR_IDIV: return y == -1 ? wsub(0, x) : ir_floordiv(x, y);  /* minint // -1 wraps */
  case IR_MOD: return y == -1 ? 0 : ir_floormod(x, y);
  case IR_NEG: return wsub(0, x);
  case IR_ABS: return x < 0 ? wsub(0, x) : x;
  case IR_MIN: return y < x ? y : x;
  case IR_MAX: return y > x ? y : x;
  default: return 0;
  }
}

/* a float op of constants x, y */
static double float_op(IrOp op, double x, double y) {
  switch (op) {
  case IR_ADD: return x + y;
  case IR_SUB: return x - y;
  case IR_MUL: return x * y;
  case IR_DIV: return x / y;
  case IR_IDIV: return floor(x / y);
  case IR_MOD: return float_mod(x, y);
  case IR_POW: return pow(x, y);
  case IR_NEG: return -x;
  case IR_ABS: return fabs(x);
  case IR_MIN: return y < x ? y : x;          /* Lua's math.min: x on ties and NaN */
  case IR_MAX: return y > x ? y : x;
  case IR_EXP: return exp(x);
  case IR_LOG: return log(x);
  case IR_TANH: return tanh(x);
  case IR_SQRT: return sqrt(x);
  default: return 0;
  }
}

/* a comparison of constants a, b (both int, both float or both bool) */
static bool compare(const Folder *F, IrOp op, int a, int b) {
  int c;                                       /* -1, 0, 1; 2 = unordered */
  if (F->out[a].type == IR_FLOAT) {
    double x = cf(F, a), y = cf(F, b);
    c = x < y ? -1 : x > y ? 1 : x == y ? 0 : 2;
  } else {
    int64_t x = ci(F, a), y = ci(F, b);
    c = x < y ? -1 : x > y ? 1 : 0;
  }
  switch (op) {
  case IR_LT: return c == -1;
  case IR_LE: return c == -1 || c == 0;
  case IR_GT: return c == 1;
  case IR_GE: return c == 1 || c == 0;
  case IR_EQ: return c == 0;
  default:    return c != 0;                   /* NE: NaN ~= NaN */
  }
}

/* node n (all of whose arguments are constants) becomes a constant */
static void fold_const(const Folder *F, IrNode *n) {
  IrOp op = (IrOp)n->op;
  int a = n->args[0], b = n->nargs > 1 ? n->args[1] : a;
  switch (ir_op_kind(op)) {
  case IRK_ARITH:
    if (n->type == IR_FLOAT) make_float(n, float_op(op, cf(F, a), cf(F, b)));
    else make_int(n, int_op(op, ci(F, a), ci(F, b)));
    break;
  case IRK_FMATH: make_float(n, float_op(op, cf(F, a), cf(F, b))); break;
  case IRK_CMP:   make_int(n, compare(F, op, a, b)); break;
  case IRK_LOGIC:
    make_int(n, op == IR_NOT ? !ci(F, a) : op == IR_AND ? ci(F, a) && ci(F, b) : ci(F, a) || ci(F, b));
    break;
  default:        make_float(n, (double)ci(F, a)); break;      /* tofloat */
  }
}

/* ------------------------------------------------------- identities */

/* and/or with a constant side: x & true = x, x & false = false, ... */
static int logic_identity(const Folder *F, const IrNode *n) {
  int a = n->args[0], b = n->args[1];
  bool unit = n->op == IR_AND;                 /* the side that leaves x */
  if (a == b) return a;
  if (isconst(F, a)) return (ci(F, a) != 0) == unit ? b : a;
  if (isconst(F, b)) return (ci(F, b) != 0) == unit ? a : b;
  return KEEP;
}

/* int x + 0, x - 0, x * 1, x * 0, x // 1; x % 1 and x % -1 become 0 */
static int int_identity(const Folder *F, IrNode *n) {
  int a = n->args[0], b = n->args[1];
  switch (n->op) {
  case IR_ADD:
    if (is_int(F, a, 0)) return b;
    if (is_int(F, b, 0)) return a;
    break;
  case IR_SUB: if (is_int(F, b, 0)) return a; break;
  case IR_MUL:
    if (is_int(F, a, 1) || is_int(F, b, 0)) return b;
    if (is_int(F, b, 1) || is_int(F, a, 0)) return a;
    break;
  case IR_IDIV: if (is_int(F, b, 1)) return a; break;
  case IR_MOD:
    if (is_int(F, b, 1) || is_int(F, b, -1)) make_int(n, 0);
    break;
  }
  return KEEP;
}

/*
** Simplify node n (arguments already renamed): KEEP to emit n as it now
** is (perhaps rewritten into a constant), an index of out that computes
** the same value, or FAIL on an integer division by a constant zero.
*/
static int simplify(Folder *F, IrNode *n) {
  IrOp op = (IrOp)n->op;
  if (n->nargs == 0 || op == IR_LOAD || op == IR_CONTAINS) return KEEP;
  if ((op == IR_IDIV || op == IR_MOD) && n->type == IR_INT && is_int(F, n->args[1], 0)) {
    diag_error(F->d, ATTNC_ERR_SPEC, ir_loc(F->p, n->line), op == IR_IDIV ? "division by zero"
                                                                          : "modulo by zero");
    return FAIL;
  }
  if (op == IR_SELECT) {
    int c = n->args[0];
    if (isconst(F, c)) return ci(F, c) ? n->args[1] : n->args[2];
    return n->args[1] == n->args[2] ? n->args[1] : KEEP;
  }
  bool all = true;
  for (int j = 0; j < n->nargs; j++) all = all && isconst(F, n->args[j]);
  if (all) { fold_const(F, n); return KEEP; }
  if (op == IR_NOT) {
    const IrNode *x = &F->out[n->args[0]];
    return x->op == IR_NOT ? x->args[0] : KEEP;
  }
  if (op == IR_AND || op == IR_OR) return logic_identity(F, n);
  if (ir_op_kind(op) == IRK_ARITH && n->type == IR_INT && n->nargs == 2) return int_identity(F, n);
  return KEEP;
}

/*
** Fold p in place: a new node array (in p's arena) in which each old
** node has at most one image, earlier ones first, so the order stays
** topological. mask and score follow their images. On a division by a
** constant zero returns ATTNC_ERR_SPEC at that node's spec line and
** leaves p unchanged.
*/
attnc_status ir_fold(IrPattern *p, Diag *d) {
  int n = p->nnodes;
  if (n <= 0) return ATTNC_OK;
  Folder F = { .p = p, .d = d };
  F.out = arena_alloc(p->arena, sizeof(IrNode) * (size_t)n);
  F.map = arena_alloc(p->arena, sizeof(int) * (size_t)n);
  if (!F.out || !F.map) return diag_error(d, ATTNC_ERR_NOMEM, ir_loc(p, 0), "out of memory");
  for (int i = 0; i < n; i++) {
    IrNode nd = p->nodes[i];
    for (int j = 0; j < nd.nargs && j < IR_MAXARGS; j++) {
      if (nd.args[j] < 0 || nd.args[j] >= i)
        return diag_error(d, ATTNC_ERR_INTERNAL, ir_node_loc(p, i),
                          "fold: node %d has argument %d out of order", i, nd.args[j]);
      nd.args[j] = F.map[nd.args[j]];
    }
    int r = simplify(&F, &nd);
    if (r == FAIL) return d ? d->status : ATTNC_ERR_SPEC;
    if (r == KEEP) { F.out[F.nout] = nd; r = F.nout++; }
    F.map[i] = r;
  }
  if (p->mask >= n || p->score >= n)
    return diag_error(d, ATTNC_ERR_INTERNAL, ir_loc(p, 0), "fold: root out of range");
  p->nodes = F.out;
  p->cap = n;
  p->nnodes = F.nout;
  if (p->mask >= 0) p->mask = F.map[p->mask];
  if (p->score >= 0) p->score = F.map[p->score];
  return ATTNC_OK;
}
