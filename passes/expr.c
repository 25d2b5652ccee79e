/*
** expr.c -- PlanExpr: the integer expressions of a plan (kv tile bounds,
** guards, order formulas). Constructors fold constants and keep sums in a
** canonical linear form, so the printed plan stays small and stable.
*/
#include <stdio.h>
#include <string.h>

#include "passes/passes.h"

static const struct { const char *name; int arity; } pe_info[PE_NOPS] = {
#define X(e, n, a) { n, a },
  PLAN_EXPR_OPS(X)
#undef X
};

const char *plan_var_name(PlanVar v) {
  static const char *names[PV_NVARS] = { "b", "h", "Sq", "Sk", "qt", "qlo", "qhi", "qres" };
  return v < PV_NVARS ? names[v] : "?";
}

bool pe_is_const(const PlanExpr *e, int64_t *v) {
  if (!e || e->op != PE_CONST) return false;
  if (v) *v = e->v;
  return true;
}

static PlanExpr *mk(Arena *A, PlanExprOp op) {
  PlanExpr *e = arena_alloc(A, sizeof *e);
  if (e) e->op = (uint8_t)op;
  return e;
}

const PlanExpr *pe_const(Arena *A, int64_t v) {
  PlanExpr *e = mk(A, PE_CONST);
  if (e) e->v = v;
  return e;
}

const PlanExpr *pe_var(Arena *A, PlanVar v, int axis) {
  PlanExpr *e = mk(A, PE_VAR);
  if (e) { e->var = (uint8_t)v; e->axis = (uint8_t)axis; }
  return e;
}

bool pe_same(const PlanExpr *a, const PlanExpr *b) {
  if (a == b) return true;
  if (!a || !b || a->op != b->op) return false;
  if (a->op == PE_CONST) return a->v == b->v;
  if (a->op == PE_VAR) return a->var == b->var && a->axis == b->axis;
  for (int i = 0; i < pe_info[a->op].arity; i++)
    if (!pe_same(a->a[i], b->a[i])) return false;
  return true;
}

/* ------------------------------------------------------- linear forms */

/* sum of coef[i] * term[i] + c; terms are non-linear leaves */
enum { LIN_MAX = 12 };
typedef struct Lin { int n; const PlanExpr *t[LIN_MAX]; int64_t k[LIN_MAX]; int64_t c; bool ok; } Lin;

static void lin_add_term(Lin *L, const PlanExpr *t, int64_t k) {
  if (k == 0) return;
  for (int i = 0; i < L->n; i++)
    if (pe_same(L->t[i], t)) {
      L->k[i] += k;
      return;
    }
  if (L->n == LIN_MAX) { L->ok = false; return; }
  L->t[L->n] = t;
  L->k[L->n++] = k;
}

static void lin_collect(Lin *L, const PlanExpr *e, int64_t k) {
  if (!L->ok) return;
  int64_t c;
  switch (e->op) {
  case PE_CONST: L->c += k * e->v; return;
  case PE_ADD: lin_collect(L, e->a[0], k); lin_collect(L, e->a[1], k); return;
  case PE_SUB: lin_collect(L, e->a[0], k); lin_collect(L, e->a[1], -k); return;
  case PE_NEG: lin_collect(L, e->a[0], -k); return;
  case PE_MUL:
    if (pe_is_const(e->a[0], &c)) { lin_collect(L, e->a[1], k * c); return; }
    if (pe_is_const(e->a[1], &c)) { lin_collect(L, e->a[0], k * c); return; }
    /* fallthrough */
  default: lin_add_term(L, e, k); return;
  }
}

static PlanExpr *raw(Arena *A, PlanExprOp op, const PlanExpr *a, const PlanExpr *b,
                     const PlanExpr *c) {
  int ar = pe_info[op].arity;
  if (!a || (ar > 1 && !b) || (ar > 2 && !c)) return NULL;   /* out of memory below */
  PlanExpr *e = mk(A, op);
  if (e) { e->a[0] = a; e->a[1] = b; e->a[2] = c; }
  return e;
}

/* rebuild a linear form: positive terms first in order, then negatives, then c */
static const PlanExpr *lin_build(Arena *A, const Lin *L) {
  const PlanExpr *acc = NULL;
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < L->n; i++) {
      int64_t k = L->k[i];
      if (k == 0 || (pass == 0) != (k > 0)) continue;
      int64_t mag = k > 0 ? k : -k;
      const PlanExpr *t = L->t[i];
      if (mag != 1) t = raw(A, PE_MUL, pe_const(A, mag), t, NULL);
      if (!acc) acc = k > 0 ? t : raw(A, PE_NEG, t, NULL, NULL);
      else acc = raw(A, k > 0 ? PE_ADD : PE_SUB, acc, t, NULL);
      if (!acc) return NULL;
    }
  if (!acc) return pe_const(A, L->c);
  if (L->c > 0) acc = raw(A, PE_ADD, acc, pe_const(A, L->c), NULL);
  if (L->c < 0) acc = raw(A, PE_SUB, acc, pe_const(A, -L->c), NULL);
  return acc;
}

static bool is_linear_op(PlanExprOp op) {
  return op == PE_ADD || op == PE_SUB || op == PE_NEG || op == PE_MUL;
}

static int64_t fdiv64(int64_t a, int64_t b) { return ir_floordiv(a, b); }
static int64_t cdiv64(int64_t a, int64_t b) { return -ir_floordiv(-a, b); }

/* ------------------------------------------------------- constructors */

/*
** Build op(a, b, c), folding constants, canonicalising sums, and using
** a few identities that hold for all int64 values (no overflow assumed):
** min/max of equal terms, fdiv of a sum whose terms the divisor divides,
** select with a constant condition. NULL propagates (out of memory).
*/
const PlanExpr *pe_op(Arena *A, PlanExprOp op, const PlanExpr *a, const PlanExpr *b,
                      const PlanExpr *c) {
  int ar = pe_info[op].arity;
  if (!a || (ar > 1 && !b) || (ar > 2 && !c)) return NULL;
  int64_t x, y;
  bool ca = pe_is_const(a, &x), cb = ar > 1 && pe_is_const(b, &y);
  switch (op) {
  case PE_NEG: if (ca) return pe_const(A, -x); break;
  case PE_FDIV:
  case PE_CDIV:
    if (ca && cb && y > 0) return pe_const(A, op == PE_FDIV ? fdiv64(x, y) : cdiv64(x, y));
    if (cb && y == 1) return a;
    if (cb && y > 1) {
      /* (sum k_i t_i + c) / y with y | k_i  ->  sum (k_i/y) t_i + (c / y) */
      Lin L = { .ok = true };
      lin_collect(&L, a, 1);
      bool all = L.ok && L.n > 0;
      for (int i = 0; all && i < L.n; i++) all = L.k[i] % y == 0;
      if (all) {
        for (int i = 0; i < L.n; i++) L.k[i] /= y;
        L.c = op == PE_FDIV ? fdiv64(L.c, y) : cdiv64(L.c, y);
        return lin_build(A, &L);
      }
      /* fdiv(min(u, v), y) = min(fdiv(u, y), fdiv(v, y)): monotone */
      if (a->op == PE_MIN || a->op == PE_MAX)
        return pe_op(A, a->op, pe_op(A, op, a->a[0], b, NULL), pe_op(A, op, a->a[1], b, NULL), NULL);
    }
    break;
  case PE_FMOD:
    if (ca && cb && y > 0) return pe_const(A, ir_floormod(x, y));
    if (cb && y == 1) return pe_const(A, 0);
    break;
  case PE_MIN:
  case PE_MAX:
    if (ca && cb) return pe_const(A, op == PE_MIN ? (x < y ? x : y) : (x > y ? x : y));
    if (pe_same(a, b)) return a;
    /* min(min(u, K1), K2) = min(u, min(K1, K2)) */
    if (cb && a->op == op && pe_is_const(a->a[1], &x))
      return pe_op(A, op, a->a[0], pe_const(A, op == PE_MIN ? (x < y ? x : y) : (x > y ? x : y)), NULL);
    if (ca && !cb) return pe_op(A, op, b, a, NULL);   /* constant second */
    /* min(u, v) where v - u is a constant */
    {
      Lin L = { .ok = true };
      lin_collect(&L, a, 1);
      lin_collect(&L, b, -1);
      bool zero = L.ok;
      for (int i = 0; zero && i < L.n; i++) zero = L.k[i] == 0;
      if (zero) return (op == PE_MIN) == (L.c <= 0) ? a : b;
    }
    break;
  case PE_SELECT:
    if (ca) return x ? b : c;
    if (pe_same(b, c)) return b;
    break;
  case PE_LT: case PE_LE: case PE_EQ: case PE_NE: {
    Lin L = { .ok = true };
    lin_collect(&L, a, 1);
    lin_collect(&L, b, -1);
    bool cst = L.ok;
    for (int i = 0; cst && i < L.n; i++) cst = L.k[i] == 0;
    if (cst) {
      int64_t dlt = L.c;
      bool r = op == PE_LT ? dlt < 0 : op == PE_LE ? dlt <= 0 : op == PE_EQ ? dlt == 0 : dlt != 0;
      return pe_const(A, r);
    }
    break;
  }
  case PE_AND:
    if (ca) return x ? b : a;
    if (cb) return y ? a : b;
    if (pe_same(a, b)) return a;
    break;
  case PE_OR:
    if (ca) return x ? a : b;
    if (cb) return y ? b : a;
    if (pe_same(a, b)) return a;
    break;
  case PE_NOT:
    if (ca) return pe_const(A, !x);
    if (a->op == PE_NOT) return a->a[0];
    break;
  default:
    break;
  }
  if (is_linear_op(op)) {
    PlanExpr tmp = { .op = (uint8_t)op, .a = { a, b, c } };
    Lin L = { .ok = true };
    lin_collect(&L, &tmp, 1);
    if (L.ok) {
      /* keep the operands' own nodes (tmp is on the stack) */
      for (int i = 0; i < L.n; i++)
        if (L.t[i] == &tmp) { L.ok = false; break; }
      if (L.ok) return lin_build(A, &L);
    }
  }
  return raw(A, op, a, b, c);
}

/* -------------------------------------------------------------- eval */

unsigned plan_expr_axes(const PlanExpr *e) {
  if (!e || e->op == PE_CONST) return 0;
  if (e->op == PE_VAR) return e->var >= PV_QT ? 1u << e->axis : 0;
  unsigned m = 0;
  for (int i = 0; i < pe_info[e->op].arity; i++) m |= plan_expr_axes(e->a[i]);
  return m;
}


int64_t plan_expr_eval(const PlanExpr *e, const PlanEnv *env) {
  int64_t x = 0, y = 0;
  int ar = pe_info[e->op].arity;
  if (e->op == PE_CONST) return e->v;
  if (e->op == PE_VAR) return env->v[e->var][e->axis];
  if (e->op == PE_SELECT)
    return plan_expr_eval(e->a[0], env) ? plan_expr_eval(e->a[1], env) : plan_expr_eval(e->a[2], env);
  if (ar >= 1) x = plan_expr_eval(e->a[0], env);
  if (ar >= 2) y = plan_expr_eval(e->a[1], env);
  switch (e->op) {
  case PE_ADD: return x + y;
  case PE_SUB: return x - y;
  case PE_MUL: return x * y;
  case PE_NEG: return -x;
  case PE_FDIV: return y > 0 ? fdiv64(x, y) : 0;
  case PE_CDIV: return y > 0 ? cdiv64(x, y) : 0;
  case PE_FMOD: return y > 0 ? ir_floormod(x, y) : 0;
  case PE_MIN: return x < y ? x : y;
  case PE_MAX: return x > y ? x : y;
  case PE_LT: return x < y;
  case PE_LE: return x <= y;
  case PE_EQ: return x == y;
  case PE_NE: return x != y;
  case PE_AND: return x && y;
  case PE_OR: return x || y;
  case PE_NOT: return !x;
  default: return 0;
  }
}

/* ------------------------------------------------------------ printing */

typedef struct Buf { Arena *A; char *s; size_t n, cap; bool oom; } Buf;

static void put(Buf *b, const char *s) {
  size_t m = strlen(s);
  if (b->oom) return;
  if (b->n + m + 1 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 128;
    while (cap < b->n + m + 1) cap *= 2;
    char *t = arena_realloc(b->A, b->s, b->cap, cap);
    if (!t) { b->oom = true; return; }
    b->s = t;
    b->cap = cap;
  }
  memcpy(b->s + b->n, s, m + 1);
  b->n += m;
}

static const char *infix(PlanExprOp op) {
  switch (op) {
  case PE_ADD: return " + "; case PE_SUB: return " - "; case PE_MUL: return " * ";
  case PE_LT: return " < "; case PE_LE: return " <= "; case PE_EQ: return " == ";
  case PE_NE: return " != "; case PE_AND: return " && "; case PE_OR: return " || ";
  default: return NULL;
  }
}

/* C precedence levels, higher binds tighter */
static int prec(PlanExprOp op) {
  switch (op) {
  case PE_OR: return 1; case PE_AND: return 2;
  case PE_EQ: case PE_NE: return 3;
  case PE_LT: case PE_LE: return 4;
  case PE_ADD: case PE_SUB: return 5;
  case PE_MUL: return 6;
  case PE_SELECT: return 0;
  case PE_NEG: case PE_NOT: return 7;
  default: return 9;
  }
}

typedef struct Namer { PlanVarName fn; void *ud; bool c; } Namer;

static void put_expr(Buf *b, const PlanExpr *e, const Namer *nm, int outer) {
  char tmp[64];
  PlanExprOp op = (PlanExprOp)e->op;
  int p = prec(op);
  bool paren = p < outer;
  if (paren) put(b, "(");
  switch (op) {
  case PE_CONST:
    snprintf(tmp, sizeof tmp, e->v < 0 && nm->c ? "(%lld)" : "%lld", (long long)e->v);
    if (e->v == INT64_MIN && nm->c) snprintf(tmp, sizeof tmp, "INT64_MIN");
    put(b, tmp);
    break;
  case PE_VAR:
    if (nm->fn) put(b, nm->fn(nm->ud, (PlanVar)e->var, e->axis));
    else {
      bool axis = e->var >= PV_QT;
      snprintf(tmp, sizeof tmp, axis ? "%s%d" : "%s", plan_var_name((PlanVar)e->var), e->axis);
      put(b, tmp);
    }
    break;
  case PE_NEG: put(b, "-"); put_expr(b, e->a[0], nm, 8); break;
  case PE_NOT: put(b, "!"); put_expr(b, e->a[0], nm, 8); break;
  case PE_SELECT:
    put_expr(b, e->a[0], nm, 1); put(b, " ? ");
    put_expr(b, e->a[1], nm, 1); put(b, " : ");
    put_expr(b, e->a[2], nm, 0);
    break;
  default: {
    const char *in = infix(op);
    if (in) {
      put_expr(b, e->a[0], nm, p);
      put(b, in);
      put_expr(b, e->a[1], nm, p + 1);
    } else {
      put(b, nm->c ? "attnc_" : "");
      put(b, pe_info[op].name);
      put(b, "(");
      put_expr(b, e->a[0], nm, 0);
      put(b, ", ");
      put_expr(b, e->a[1], nm, 0);
      put(b, ")");
    }
  }
  }
  if (paren) put(b, ")");
}

char *plan_expr_c(Arena *A, const PlanExpr *e, PlanVarName var, void *ud) {
  Buf b = { .A = A };
  Namer nm = { var, ud, true };
  if (!e) return NULL;
  put(&b, "");
  put_expr(&b, e, &nm, 0);
  return b.oom ? NULL : b.s;
}

char *plan_expr_str(Arena *A, const PlanExpr *e) {
  Buf b = { .A = A };
  Namer nm = { NULL, NULL, false };
  if (!e) return arena_strdup(A, "-");
  put(&b, "");
  put_expr(&b, e, &nm, 0);
  return b.oom ? NULL : b.s;
}

const char *plan_c_helpers(void) {
  return
    "/* attnc plan helpers: int64 floor/ceil division and modulo (divisor > 0) */\n"
    "ATTNC_INLINE long long attnc_fdiv(long long a, long long b) {\n"
    "  long long q = a / b; return (a % b != 0 && a < 0) ? q - 1 : q;\n"
    "}\n"
    "ATTNC_INLINE long long attnc_cdiv(long long a, long long b) {\n"
    "  long long q = a / b; return (a % b != 0 && a > 0) ? q + 1 : q;\n"
    "}\n"
    "ATTNC_INLINE long long attnc_fmod(long long a, long long b) {\n"
    "  long long m = a % b; return m < 0 ? m + b : m;\n"
    "}\n"
    "ATTNC_INLINE long long attnc_min(long long a, long long b) { return a < b ? a : b; }\n"
    "ATTNC_INLINE long long attnc_max(long long a, long long b) { return a > b ? a : b; }\n";
}
