/*
** eval.c -- the IR interpreter: the value of a mask or score expression at
** one point (b, h, q, k, s). It is the core of the reference executor and
** of every brute-force check, so it favours being obviously right over
** being fast: one switch over the ops, no folding, no short cuts.
**
** Semantics (what every backend must match):
**   int     exact 64-bit two's complement, wrapping on overflow as Lua does;
**           // and % are Lua's floor division and modulo; x // 0 and x % 0
**           are runtime faults
**   float   IEEE double; float // and % are Lua's (floor(a/b), a - floor(a/b)*b)
**   bool    0 or 1; and/or/not evaluate both sides (no short circuit)
**   load    reads one element of a runtime input; an index outside its dim
**           is a runtime fault
**   contains  input[i0, .., i(n-2), j] == v for some j of the last dim
** Every node reachable from the root is evaluated, whatever select or
** and/or would pick, so a fault anywhere in the expression is reported, as
** a branch-free kernel would meet it.
*/
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"

/*
** A slot of vals holds a node's value: a double for float nodes, the bits
** of an int64 for int and bool nodes (so ints stay exact beyond 2^53).
*/
static int64_t geti(const double *vals, int n) {
  int64_t v;
  memcpy(&v, &vals[n], sizeof v);
  return v;
}

static void seti(double *vals, int n, int64_t v) { memcpy(&vals[n], &v, sizeof v); }

/* a node's value as a double, whatever its type */
static double getnum(const IrPattern *p, const double *vals, int n) {
  return p->nodes[n].type == IR_FLOAT ? vals[n] : (double)geti(vals, n);
}

/* wrapping int64 arithmetic (signed overflow is undefined in C) */
static int64_t wrap_add(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static int64_t wrap_sub(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }
static int64_t wrap_mul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }

/* Lua's float floor division and modulo (lvm.c luai_numidiv, luai_nummod) */
static double float_idiv(double a, double b) { return floor(a / b); }
static double float_mod(double a, double b) {
  double m = fmod(a, b);
  if ((m > 0) ? b < 0 : (m < 0 && b != m)) m += b;
  return m;
}

/* append where the fault happened, so a user can find the pair */
static attnc_status fault(const IrPattern *p, int n, const IrEnv *env, Diag *d,
                          const char *what) {
  return diag_error(d, ATTNC_ERR_ARG, ir_node_loc(p, n),
                    "%s (at b=%lld, h=%lld, q=%lld, k=%lld)", what, (long long)env->b,
                    (long long)env->h, (long long)env->q, (long long)env->k);
}

/*
** Offset (in elements) of input element idx[0..nidx-1] in view v, checking
** each index against its dim. Returns false (with a fault in d) when an
** index is out of range.
*/
static bool input_offset(const IrPattern *p, int n, const IrEnv *env, const IrInput *in,
                         const IrTensorView *v, const int64_t *idx, int nidx,
                         int64_t *off, Diag *d) {
  int64_t o = 0;
  for (int i = 0; i < nidx; i++) {
    if (idx[i] < 0 || idx[i] >= v->shape[i]) {
      char what[256];
      snprintf(what, sizeof what, "index %lld out of range for dim %d of input '%s' (size %lld)",
               (long long)idx[i], i, in->name, (long long)v->shape[i]);
      fault(p, n, env, d, what);
      return false;
    }
    o += idx[i] * v->strides[i];
  }
  *off = o;
  return true;
}

/* element off of view v as a double (int32 exact) */
static double view_get(const IrTensorView *v, int64_t off) {
  switch (v->dtype) {
  case DT_I32: return (double)((const int32_t *)v->data)[off];
  case DT_F32: return (double)((const float *)v->data)[off];
  case DT_F64: return ((const double *)v->data)[off];
  default: return NAN;                    /* args_check admits no other */
  }
}

/*
** Evaluate one node whose arguments are already in vals. Returns false
** on a runtime fault (recorded in d).
*/
static bool eval_node(const IrPattern *p, int n, const IrEnv *env, double *vals, Diag *d) {
  const IrNode *nd = &p->nodes[n];
  const int32_t *a = nd->args;
  bool isf = nd->type == IR_FLOAT;
  /* arithmetic ops: integer when the node is int, else double */
  int64_t x = 0, y = 0;
  double fx = 0, fy = 0;
  if (nd->nargs >= 1 && nd->op != IR_LOAD && nd->op != IR_CONTAINS) {
    if (isf || p->nodes[a[0]].type == IR_FLOAT) fx = getnum(p, vals, a[0]);
    else x = geti(vals, a[0]);
    if (nd->nargs >= 2) {
      if (isf || p->nodes[a[1]].type == IR_FLOAT) fy = getnum(p, vals, a[1]);
      else y = geti(vals, a[1]);
    }
  }
  switch ((IrOp)nd->op) {
  case IR_CONST:
    if (isf) vals[n] = nd->imm.f;
    else seti(vals, n, nd->type == IR_BOOL ? nd->imm.i != 0 : nd->imm.i);
    return true;
  case IR_BATCH: seti(vals, n, env->b); return true;
  case IR_HEAD:  seti(vals, n, env->h); return true;
  case IR_Q:     seti(vals, n, env->q); return true;
  case IR_K:     seti(vals, n, env->k); return true;
  case IR_SEQQ:  seti(vals, n, env->sq); return true;
  case IR_SEQK:  seti(vals, n, env->sk); return true;
  case IR_QC:
  case IR_KC: {
    int64_t axis = nd->imm.i;
    if (axis < 0 || axis >= IR_MAXGRID) {
      diag_error(d, ATTNC_ERR_INTERNAL, ir_node_loc(p, n), "'%s' of axis %lld",
                 ir_op_name((IrOp)nd->op), (long long)axis);
      return false;
    }
    seti(vals, n, nd->op == IR_QC ? env->qc[axis] : env->kc[axis]);
    return true;
  }
  case IR_SCORE: vals[n] = env->s; return true;

  case IR_ADD: if (isf) vals[n] = fx + fy; else seti(vals, n, wrap_add(x, y)); return true;
  case IR_SUB: if (isf) vals[n] = fx - fy; else seti(vals, n, wrap_sub(x, y)); return true;
  case IR_MUL: if (isf) vals[n] = fx * fy; else seti(vals, n, wrap_mul(x, y)); return true;
  case IR_DIV: vals[n] = fx / fy; return true;
  case IR_POW: vals[n] = pow(fx, fy); return true;
  case IR_IDIV:
  case IR_MOD:
    if (isf) {
      vals[n] = nd->op == IR_IDIV ? float_idiv(fx, fy) : float_mod(fx, fy);
      return true;
    }
    if (y == 0) {
      fault(p, n, env, d, nd->op == IR_IDIV ? "integer division by zero" : "integer modulo by zero");
      return false;
    }
    if (y == -1)            /* INT64_MIN // -1 wraps in Lua; C would trap */
      seti(vals, n, nd->op == IR_IDIV ? wrap_sub(0, x) : 0);
    else
      seti(vals, n, nd->op == IR_IDIV ? ir_floordiv(x, y) : ir_floormod(x, y));
    return true;
  case IR_NEG: if (isf) vals[n] = -fx; else seti(vals, n, wrap_sub(0, x)); return true;
  case IR_ABS: if (isf) vals[n] = fabs(fx); else seti(vals, n, x < 0 ? wrap_sub(0, x) : x); return true;
  case IR_MIN:
    if (isf) vals[n] = fy < fx ? fy : fx;        /* Lua's math.min: first wins on ties */
    else seti(vals, n, y < x ? y : x);
    return true;
  case IR_MAX:
    if (isf) vals[n] = fy > fx ? fy : fx;
    else seti(vals, n, y > x ? y : x);
    return true;
  case IR_EXP:  vals[n] = exp(fx); return true;
  case IR_LOG:  vals[n] = log(fx); return true;
  case IR_TANH: vals[n] = tanh(fx); return true;
  case IR_SQRT: vals[n] = sqrt(fx); return true;
  case IR_TOFLOAT: vals[n] = getnum(p, vals, a[0]); return true;

  case IR_LT: case IR_LE: case IR_GT: case IR_GE: case IR_EQ: case IR_NE: {
    bool fl = p->nodes[a[0]].type == IR_FLOAT || p->nodes[a[1]].type == IR_FLOAT;
    int c;                                       /* -1, 0, 1; 2 = unordered */
    if (fl) {
      double u = getnum(p, vals, a[0]), w = getnum(p, vals, a[1]);
      c = u < w ? -1 : u > w ? 1 : u == w ? 0 : 2;
    } else {
      int64_t u = geti(vals, a[0]), w = geti(vals, a[1]);
      c = u < w ? -1 : u > w ? 1 : 0;
    }
    bool r;
    switch ((IrOp)nd->op) {
    case IR_LT: r = c == -1; break;
    case IR_LE: r = c == -1 || c == 0; break;
    case IR_GT: r = c == 1; break;
    case IR_GE: r = c == 1 || c == 0; break;
    case IR_EQ: r = c == 0; break;
    default:    r = c != 0; break;               /* NE: NaN ~= NaN */
    }
    seti(vals, n, r);
    return true;
  }
  case IR_AND: seti(vals, n, geti(vals, a[0]) && geti(vals, a[1])); return true;
  case IR_OR:  seti(vals, n, geti(vals, a[0]) || geti(vals, a[1])); return true;
  case IR_NOT: seti(vals, n, !geti(vals, a[0])); return true;
  case IR_SELECT: {
    int pick = geti(vals, a[0]) ? a[1] : a[2];
    if (isf) vals[n] = getnum(p, vals, pick);
    else seti(vals, n, geti(vals, pick));
    return true;
  }

  case IR_LOAD:
  case IR_CONTAINS: {
    int64_t in_ix = nd->imm.i;
    if (in_ix < 0 || in_ix >= p->ninputs || !env->inputs || !env->inputs[in_ix].data) {
      diag_error(d, ATTNC_ERR_INTERNAL, ir_node_loc(p, n), "'%s' of input %lld with no tensor bound",
                 ir_op_name((IrOp)nd->op), (long long)in_ix);
      return false;
    }
    const IrInput *in = &p->inputs[in_ix];
    const IrTensorView *v = &env->inputs[in_ix];
    /* load: one index a dim; contains: all dims but the last, then the value */
    if (nd->nargs != v->rank || v->rank < 1 || v->rank > IR_MAXDIMS ||
        (nd->op == IR_CONTAINS && v->dtype != DT_I32)) {
      diag_error(d, ATTNC_ERR_INTERNAL, ir_node_loc(p, n), "'%s' of input '%s' does not fit its view",
                 ir_op_name((IrOp)nd->op), in->name);
      return false;
    }
    int64_t idx[IR_MAXDIMS] = {0}, off;
    int lead = nd->op == IR_LOAD ? v->rank : v->rank - 1;    /* indices given */
    for (int i = 0; i < lead; i++) idx[i] = geti(vals, a[i]);
    if (nd->op == IR_LOAD) {
      if (!input_offset(p, n, env, in, v, idx, lead, &off, d)) return false;
      double e = view_get(v, off);
      if (isf) vals[n] = e;
      else seti(vals, n, (int64_t)e);
      return true;
    }
    /* contains: scan the last dim */
    if (!input_offset(p, n, env, in, v, idx, lead, &off, d)) return false;
    int64_t want = geti(vals, a[nd->nargs - 1]);
    const int32_t *base = (const int32_t *)v->data + off;
    bool found = false;
    for (int64_t j = 0; j < v->shape[lead] && !found; j++)
      found = base[j * v->strides[lead]] == want;
    seti(vals, n, found);
    return true;
  }
  default:
    diag_error(d, ATTNC_ERR_INTERNAL, ir_node_loc(p, n), "cannot evaluate op %d", nd->op);
    return false;
  }
}

/*
** Evaluate the nodes that root depends on, in index order (which is
** topological), and return root's value as a double (bools as 0/1).
** First a backward sweep marks the nodes root needs (the mark lives in
** vals until the node is evaluated); then a forward sweep evaluates them,
** so nodes of the other DAG (score vs mask) are never touched. On a fault
** returns NAN with the error in d.
*/
double ir_eval(const IrPattern *p, int root, const IrEnv *env, double *vals, Diag *d) {
  if (root < 0 || root >= p->nnodes) {
    diag_error(d, ATTNC_ERR_INTERNAL, ir_loc(p, 0), "evaluating node %d of %d", root, p->nnodes);
    return NAN;
  }
  for (int i = 0; i <= root; i++) vals[i] = 0;
  vals[root] = 1;
  for (int i = root; i >= 0; i--) {
    if (vals[i] == 0) continue;
    const IrNode *nd = &p->nodes[i];
    if (nd->nargs > IR_MAXARGS) {
      diag_error(d, ATTNC_ERR_INTERNAL, ir_node_loc(p, i), "node %d has %d arguments", i, nd->nargs);
      return NAN;
    }
    for (int j = 0; j < nd->nargs; j++) {
      int a = nd->args[j];
      if (a < 0 || a >= i) {
        diag_error(d, ATTNC_ERR_INTERNAL, ir_node_loc(p, i), "node %d has argument %d out of order",
                   i, a);
        return NAN;
      }
      vals[a] = 1;
    }
  }
  for (int i = 0; i <= root; i++)
    if (vals[i] != 0 && !eval_node(p, i, env, vals, d)) return NAN;
  return getnum(p, vals, root);
}

/*
** Grid coordinates of q and k: row-major over p->grid, slowest axis
** first (axis 0). Without a grid, axis 0 is the token index itself.
*/
void ir_env_coords(const IrPattern *p, IrEnv *env) {
  int64_t q = env->q, k = env->k;
  for (int i = 0; i < IR_MAXGRID; i++) env->qc[i] = env->kc[i] = 0;
  if (p->grid_rank <= 0) {
    env->qc[0] = q;
    env->kc[0] = k;
    return;
  }
  for (int i = p->grid_rank - 1; i >= 0; i--) {
    int64_t g = p->grid[i] > 0 ? p->grid[i] : 1;
    env->qc[i] = ir_floormod(q, g);
    env->kc[i] = ir_floormod(k, g);
    q = ir_floordiv(q, g);
    k = ir_floordiv(k, g);
  }
}
