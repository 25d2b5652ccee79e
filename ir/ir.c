/*
** ir.c -- the op table, declarations and the typed node builder.
*/
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"

static const struct { const char *name; int arity; IrKind kind; } op_info[IR_NOPS] = {
#define X(e, n, a, k) { n, a, IRK_##k },
  IR_OPS(X)
#undef X
};

const char *ir_op_name(IrOp op) { return op < IR_NOPS ? op_info[op].name : "?"; }
int ir_op_arity(IrOp op) { return op_info[op].arity; }
IrKind ir_op_kind(IrOp op) { return op_info[op].kind; }

IrOp ir_cmp_negate(IrOp op) {
  switch (op) {
  case IR_LT: return IR_GE; case IR_LE: return IR_GT; case IR_GT: return IR_LE;
  case IR_GE: return IR_LT; case IR_EQ: return IR_NE; case IR_NE: return IR_EQ;
  default: return op;
  }
}

IrOp ir_cmp_swap(IrOp op) {
  switch (op) {
  case IR_LT: return IR_GT; case IR_LE: return IR_GE; case IR_GT: return IR_LT;
  case IR_GE: return IR_LE; default: return op;
  }
}

bool ir_op_from_name(const char *name, IrOp *out) {
  for (int i = 0; i < IR_NOPS; i++)
    if (strcmp(op_info[i].name, name) == 0) { *out = (IrOp)i; return true; }
  return false;
}

const char *ir_type_name(IrType t) {
  static const char *names[] = { "void", "bool", "int", "float" };
  return t <= IR_FLOAT ? names[t] : "?";
}

const char *ir_dimsym_name(IrDimSym s) {
  static const char *names[] = { "const", "B", "H", "Hkv", "Sq", "Sk" };
  return s <= DIM_SK ? names[s] : "?";
}

static const char *dtype_names[] = { "i32", "f32", "f16", "bf16", "f64" };
const char *ir_dtype_name(IrDtype t) { return t <= DT_F64 ? dtype_names[t] : "?"; }
bool ir_dtype_from_name(const char *name, IrDtype *out) {
  for (int i = 0; i <= DT_F64; i++)
    if (strcmp(dtype_names[i], name) == 0) { *out = (IrDtype)i; return true; }
  return false;
}

IrPattern *ir_pattern_new(Arena *a, const char *file) {
  IrPattern *p = arena_alloc(a, sizeof *p);
  if (!p) return NULL;
  p->arena = a;
  p->file = arena_strdup(a, file ? file : "?");
  p->name = p->file;
  p->mask = p->score = -1;
  return p;
}

Loc ir_loc(const IrPattern *p, int line) { return (Loc){ p->file, line }; }
Loc ir_node_loc(const IrPattern *p, int node) {
  return ir_loc(p, node >= 0 && node < p->nnodes ? p->nodes[node].line : 0);
}

/* append a node, growing the array in the arena; -1 when out of memory */
static int push(IrPattern *p, IrNode n) {
  if (p->nnodes == p->cap) {
    int cap = p->cap ? p->cap * 2 : 64;
    IrNode *nodes = arena_realloc(p->arena, p->nodes, sizeof(IrNode) * (size_t)p->cap,
                                  sizeof(IrNode) * (size_t)cap);
    if (!nodes) return -1;
    p->nodes = nodes;
    p->cap = cap;
  }
  p->nodes[p->nnodes] = n;
  return p->nnodes++;
}

int ir_const_int(IrPattern *p, int64_t v, int line) {
  IrNode n = { .op = IR_CONST, .type = IR_INT, .imm.i = v, .line = line };
  return push(p, n);
}

int ir_const_float(IrPattern *p, double v, int line) {
  IrNode n = { .op = IR_CONST, .type = IR_FLOAT, .imm.f = v, .line = line };
  return push(p, n);
}

int ir_const_bool(IrPattern *p, bool v, int line) {
  IrNode n = { .op = IR_CONST, .type = IR_BOOL, .imm.i = v, .line = line };
  return push(p, n);
}

int ir_leaf(IrPattern *p, IrOp op, int64_t imm, int line) {
  IrNode n = { .op = (uint8_t)op, .type = op == IR_SCORE ? IR_FLOAT : IR_INT,
               .imm.i = imm, .line = line };
  return push(p, n);
}

static bool numeric(IrType t) { return t == IR_INT || t == IR_FLOAT; }

static int to_float(IrPattern *p, int a, int line) {
  if (p->nodes[a].type == IR_FLOAT) return a;
  IrNode n = { .op = IR_TOFLOAT, .type = IR_FLOAT, .nargs = 1, .args = { a }, .line = line };
  return push(p, n);
}

static attnc_status type_error(IrPattern *p, Diag *d, int line, IrOp op, const char *want,
                               IrType got) {
  const char *hint = "";
  if (got == IR_BOOL && (ir_op_kind(op) == IRK_ARITH || ir_op_kind(op) == IRK_FMATH))
    hint = " (combine masks with & and |, or turn one into a number with select)";
  if (want[0] == 'b' && got != IR_BOOL)
    hint = " (compare first, e.g. q:le(k))";
  return diag_error(d, ATTNC_ERR_SPEC, ir_loc(p, line), "'%s' expects %s, got %s%s",
                    ir_op_name(op), want, ir_type_name(got), hint);
}

/*
** Build a typed node. Checks arity and argument types, promotes int
** arguments to float where an op mixes them, and fixes the result type.
*/
int ir_node(IrPattern *p, IrOp op, const int *args, int nargs, int64_t imm, int line, Diag *d) {
  if (op >= IR_NOPS) {
    diag_error(d, ATTNC_ERR_INTERNAL, ir_loc(p, line), "bad op %d", (int)op);
    return -1;
  }
  int arity = ir_op_arity(op);
  if ((arity >= 0 && nargs != arity) || nargs > IR_MAXARGS || nargs < 0) {
    diag_error(d, ATTNC_ERR_INTERNAL, ir_loc(p, line), "'%s' given %d arguments",
               ir_op_name(op), nargs);
    return -1;
  }
  if (arity == 0) return ir_leaf(p, op, imm, line);
  IrNode n = { .op = (uint8_t)op, .nargs = (uint8_t)nargs, .imm.i = imm, .line = line };
  int a[IR_MAXARGS];
  for (int i = 0; i < nargs; i++) {
    if (args[i] < 0 || args[i] >= p->nnodes) {
      diag_error(d, ATTNC_ERR_INTERNAL, ir_loc(p, line), "'%s' argument %d out of range",
                 ir_op_name(op), i);
      return -1;
    }
    a[i] = args[i];
  }
  IrType t0 = nargs > 0 ? p->nodes[a[0]].type : IR_VOID;
  IrType t1 = nargs > 1 ? p->nodes[a[1]].type : IR_VOID;

  switch (ir_op_kind(op)) {
  case IRK_ARITH:
    for (int i = 0; i < nargs; i++)
      if (!numeric(p->nodes[a[i]].type)) {
        type_error(p, d, line, op, "numbers", p->nodes[a[i]].type);
        return -1;
      }
    if (nargs == 2 && (t0 == IR_FLOAT || t1 == IR_FLOAT)) {
      if ((a[0] = to_float(p, a[0], line)) < 0 || (a[1] = to_float(p, a[1], line)) < 0) return -1;
      n.type = IR_FLOAT;
    } else
      n.type = t0;
    break;
  case IRK_FMATH:
    for (int i = 0; i < nargs; i++) {
      if (!numeric(p->nodes[a[i]].type)) {
        type_error(p, d, line, op, "numbers", p->nodes[a[i]].type);
        return -1;
      }
      if ((a[i] = to_float(p, a[i], line)) < 0) return -1;
    }
    n.type = IR_FLOAT;
    break;
  case IRK_CMP:
    if (t0 == IR_BOOL && t1 == IR_BOOL && (op == IR_EQ || op == IR_NE)) {
      n.type = IR_BOOL;
      break;
    }
    for (int i = 0; i < 2; i++)
      if (!numeric(p->nodes[a[i]].type)) {
        type_error(p, d, line, op, "numbers", p->nodes[a[i]].type);
        return -1;
      }
    if (t0 != t1)
      if ((a[0] = to_float(p, a[0], line)) < 0 || (a[1] = to_float(p, a[1], line)) < 0) return -1;
    n.type = IR_BOOL;
    break;
  case IRK_LOGIC:
    for (int i = 0; i < nargs; i++)
      if (p->nodes[a[i]].type != IR_BOOL) {
        type_error(p, d, line, op, "booleans", p->nodes[a[i]].type);
        return -1;
      }
    n.type = IR_BOOL;
    break;
  case IRK_OTHER:
    if (op == IR_TOFLOAT) {
      if (!numeric(t0)) { type_error(p, d, line, op, "a number", t0); return -1; }
      return to_float(p, a[0], line);
    }
    if (op == IR_SELECT) {
      IrType t2 = p->nodes[a[2]].type;
      if (t0 != IR_BOOL) { type_error(p, d, line, op, "a boolean condition", t0); return -1; }
      if (t1 == IR_BOOL && t2 == IR_BOOL) { n.type = IR_BOOL; break; }
      if (!numeric(t1) || !numeric(t2)) {
        diag_error(d, ATTNC_ERR_SPEC, ir_loc(p, line),
                   "'select' branches must both be numbers or both booleans (got %s and %s)",
                   ir_type_name(t1), ir_type_name(t2));
        return -1;
      }
      if (t1 != t2) {
        if ((a[1] = to_float(p, a[1], line)) < 0 || (a[2] = to_float(p, a[2], line)) < 0) return -1;
        n.type = IR_FLOAT;
      } else
        n.type = t1;
      break;
    }
    if (op == IR_LOAD || op == IR_CONTAINS) {
      if (imm < 0 || imm >= p->ninputs) {
        diag_error(d, ATTNC_ERR_INTERNAL, ir_loc(p, line), "'%s' of unknown input %lld",
                   ir_op_name(op), (long long)imm);
        return -1;
      }
      const IrInput *in = &p->inputs[imm];
      if (nargs != in->rank) {
        diag_error(d, ATTNC_ERR_SPEC, ir_loc(p, line),
                   "input '%s' has %d dims but is indexed with %d%s", in->name, in->rank,
                   op == IR_CONTAINS ? nargs - 1 : nargs,
                   op == IR_CONTAINS ? " (contains searches the last dim)" : "");
        return -1;
      }
      for (int i = 0; i < nargs; i++)
        if (p->nodes[a[i]].type != IR_INT) {
          diag_error(d, ATTNC_ERR_SPEC, ir_loc(p, line),
                     "input '%s' index %d must be an integer (got %s)", in->name, i + 1,
                     ir_type_name(p->nodes[a[i]].type));
          return -1;
        }
      if (op == IR_CONTAINS && in->dtype != DT_I32) {
        diag_error(d, ATTNC_ERR_SPEC, ir_loc(p, line),
                   "contains needs an i32 input ('%s' is %s)", in->name, ir_dtype_name(in->dtype));
        return -1;
      }
      n.type = op == IR_CONTAINS ? IR_BOOL : in->dtype == DT_I32 ? IR_INT : IR_FLOAT;
      break;
    }
    /* fallthrough */
  default:
    diag_error(d, ATTNC_ERR_INTERNAL, ir_loc(p, line), "no typing rule for '%s'", ir_op_name(op));
    return -1;
  }
  for (int i = 0; i < nargs; i++) n.args[i] = a[i];
  int id = push(p, n);
  if (id < 0) diag_error(d, ATTNC_ERR_NOMEM, ir_loc(p, line), "out of memory");
  return id;
}

int ir_add_param(IrPattern *p, const IrParam *prm) {
  IrParam *ps = arena_realloc(p->arena, p->params, sizeof *ps * (size_t)p->nparams,
                              sizeof *ps * (size_t)(p->nparams + 1));
  if (!ps) return -1;
  p->params = ps;
  ps[p->nparams] = *prm;
  ps[p->nparams].name = arena_strdup(p->arena, prm->name);
  if (prm->doc && !(ps[p->nparams].doc = arena_strdup(p->arena, prm->doc))) return -1;
  return p->nparams++;
}

int ir_add_input(IrPattern *p, const IrInput *in) {
  IrInput *is = arena_realloc(p->arena, p->inputs, sizeof *is * (size_t)p->ninputs,
                              sizeof *is * (size_t)(p->ninputs + 1));
  if (!is) return -1;
  p->inputs = is;
  is[p->ninputs] = *in;
  is[p->ninputs].name = arena_strdup(p->arena, in->name);
  return p->ninputs++;
}

int ir_find_param(const IrPattern *p, const char *name) {
  for (int i = 0; i < p->nparams; i++)
    if (strcmp(p->params[i].name, name) == 0) return i;
  return -1;
}

int ir_find_input(const IrPattern *p, const char *name) {
  for (int i = 0; i < p->ninputs; i++)
    if (strcmp(p->inputs[i].name, name) == 0) return i;
  return -1;
}
