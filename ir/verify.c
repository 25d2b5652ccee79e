/*
** verify.c -- structural checks of a pattern, run between passes.
**
** A pattern that fails here is a bug in whatever built or rewrote it, so
** every failure is ATTNC_ERR_INTERNAL, located at the spec line of the
** node or declaration and naming it. The typing rules are the builder's
** (ir.c) with the conversions already made: a node's arguments must have
** exactly the types the builder would have left them with.
*/
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"

/* a failure at node i: "node %i (op): message" */
static attnc_status bad_node(const IrPattern *p, Diag *d, int i, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 4, 5)))
#endif
  ;
static attnc_status bad_node(const IrPattern *p, Diag *d, int i, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return diag_error(d, ATTNC_ERR_INTERNAL, ir_node_loc(p, i), "node %%%d (%s): %s", i,
                    ir_op_name((IrOp)p->nodes[i].op), msg);
}

static bool numeric(IrType t) { return t == IR_INT || t == IR_FLOAT; }

/* ------------------------------------------------------- declarations */

static attnc_status check_params(const IrPattern *p, Diag *d) {
  for (int i = 0; i < p->nparams; i++) {
    const IrParam *prm = &p->params[i];
    Loc at = ir_loc(p, prm->line);
    if (!prm->name || !prm->name[0])
      return diag_error(d, ATTNC_ERR_INTERNAL, at, "param %d has no name", i);
    for (int j = 0; j < i; j++)
      if (strcmp(p->params[j].name, prm->name) == 0)
        return diag_error(d, ATTNC_ERR_INTERNAL, at, "param '%s' declared twice", prm->name);
    if (prm->type != IR_INT && prm->type != IR_FLOAT)
      return diag_error(d, ATTNC_ERR_INTERNAL, at, "param '%s' has type %s", prm->name,
                        ir_type_name(prm->type));
    if (prm->type == IR_INT && !(isfinite(prm->value) && prm->value == floor(prm->value) &&
                                 isfinite(prm->def) && prm->def == floor(prm->def)))
      return diag_error(d, ATTNC_ERR_INTERNAL, at, "int param '%s' has a value that is not an integer",
                        prm->name);
  }
  return ATTNC_OK;
}

static attnc_status check_input(const IrPattern *p, int i, Diag *d) {
  const IrInput *in = &p->inputs[i];
  Loc at = ir_loc(p, in->line);
  if (!in->name || !in->name[0]) return diag_error(d, ATTNC_ERR_INTERNAL, at, "input %d has no name", i);
  for (int j = 0; j < i; j++)
    if (strcmp(p->inputs[j].name, in->name) == 0)
      return diag_error(d, ATTNC_ERR_INTERNAL, at, "input '%s' declared twice", in->name);
  if (in->dtype != DT_I32 && in->dtype != DT_F32)
    return diag_error(d, ATTNC_ERR_INTERNAL, at, "input '%s' has dtype %s (not i32 or f32)", in->name,
                      ir_dtype_name(in->dtype));
  if (in->rank < 0 || in->rank > IR_MAXDIMS)
    return diag_error(d, ATTNC_ERR_INTERNAL, at, "input '%s' has rank %d", in->name, in->rank);
  for (int k = 0; k < in->rank; k++) {
    const IrDim *dm = &in->dims[k];
    if ((unsigned)dm->sym > DIM_SK || dm->value < 1)
      return diag_error(d, ATTNC_ERR_INTERNAL, at, "input '%s' dim %d is %s %lld (%s)", in->name, k,
                        ir_dimsym_name(dm->sym), (long long)dm->value,
                        dm->sym == DIM_CONST ? "sizes are >= 1" : "divisors are >= 1");
  }
  return ATTNC_OK;
}

static attnc_status check_shape(const IrPattern *p, Diag *d) {
  Loc at = ir_loc(p, 0);
  if (p->grid_rank < 0 || p->grid_rank > IR_MAXGRID)
    return diag_error(d, ATTNC_ERR_INTERNAL, at, "grid rank %d", p->grid_rank);
  for (int i = 0; i < p->grid_rank; i++)
    if (p->grid[i] < 1)
      return diag_error(d, ATTNC_ERR_INTERNAL, at, "grid axis %d has size %lld", i,
                        (long long)p->grid[i]);
  if (!isfinite(p->scale) || p->scale < 0)
    return diag_error(d, ATTNC_ERR_INTERNAL, at, "scale %g (must be finite and >= 0)", p->scale);
  if (p->dtypes >> (DT_F64 + 1))
    return diag_error(d, ATTNC_ERR_INTERNAL, at, "dtypes has unknown bits 0x%x", p->dtypes);
  if (p->nhead_dims < 0 || p->nhead_dims > 8)
    return diag_error(d, ATTNC_ERR_INTERNAL, at, "%d head_dims", p->nhead_dims);
  for (int i = 0; i < p->nhead_dims; i++)
    if (p->head_dims[i] < 1)
      return diag_error(d, ATTNC_ERR_INTERNAL, at, "head_dims[%d] is %d", i, p->head_dims[i]);
  return ATTNC_OK;
}

static attnc_status check_decls(const IrPattern *p, Diag *d) {
  if (!p->file || !p->name)
    return diag_error(d, ATTNC_ERR_INTERNAL, (Loc){ 0 }, "pattern without a file or name");
  if (p->nparams < 0 || p->ninputs < 0 || (p->nparams && !p->params) || (p->ninputs && !p->inputs))
    return diag_error(d, ATTNC_ERR_INTERNAL, ir_loc(p, 0), "bad declaration lists");
  attnc_status st = check_params(p, d);
  for (int i = 0; i < p->ninputs && !st; i++) st = check_input(p, i, d);
  return st ? st : check_shape(p, d);
}

/* ---------------------------------------------------------------- nodes */

/* the load/contains node i: a known input, indexed by one int per dim */
static attnc_status check_access(const IrPattern *p, int i, Diag *d) {
  const IrNode *n = &p->nodes[i];
  if (n->imm.i < 0 || n->imm.i >= p->ninputs)
    return bad_node(p, d, i, "input %lld does not exist", (long long)n->imm.i);
  const IrInput *in = &p->inputs[n->imm.i];
  if (n->nargs != in->rank)
    return bad_node(p, d, i, "input '%s' has %d dims but %d arguments", in->name, in->rank, n->nargs);
  for (int j = 0; j < n->nargs; j++)
    if (p->nodes[n->args[j]].type != IR_INT)
      return bad_node(p, d, i, "argument %d is %s, not int", j,
                      ir_type_name((IrType)p->nodes[n->args[j]].type));
  if (n->op == IR_CONTAINS && (in->dtype != DT_I32 || in->rank < 1))
    return bad_node(p, d, i, "contains needs an i32 input with a dim ('%s')", in->name);
  return ATTNC_OK;
}

/*
** The type the builder gives node i, its arguments' types being what they
** are, or IR_VOID with *why set when the arguments break its rules.
*/
static IrType derive(const IrPattern *p, int i, const char **why) {
  const IrNode *n = &p->nodes[i];
  IrType t[IR_MAXARGS] = { IR_VOID };
  for (int j = 0; j < n->nargs; j++) t[j] = (IrType)p->nodes[n->args[j]].type;
  IrOp op = (IrOp)n->op;
  *why = "argument types";
  switch (ir_op_kind(op)) {
  case IRK_LEAF:
    if (op == IR_CONST) return n->type;
    return op == IR_SCORE ? IR_FLOAT : IR_INT;
  case IRK_ARITH:
    if (!numeric(t[0]) || (n->nargs == 2 && t[1] != t[0])) {
      *why = "arguments must be numbers of one type (int and float need tofloat)";
      return IR_VOID;
    }
    return t[0];
  case IRK_FMATH:
    for (int j = 0; j < n->nargs; j++)
      if (t[j] != IR_FLOAT) { *why = "arguments must be float (ints need tofloat)"; return IR_VOID; }
    return IR_FLOAT;
  case IRK_CMP:
    if (t[0] != t[1] || (!numeric(t[0]) && !(t[0] == IR_BOOL && (op == IR_EQ || op == IR_NE)))) {
      *why = "compares two numbers of one type (or two bools with eq/ne)";
      return IR_VOID;
    }
    return IR_BOOL;
  case IRK_LOGIC:
    for (int j = 0; j < n->nargs; j++)
      if (t[j] != IR_BOOL) { *why = "arguments must be bool"; return IR_VOID; }
    return IR_BOOL;
  case IRK_OTHER:
    if (op == IR_TOFLOAT) {
      if (t[0] != IR_INT) { *why = "converts an int"; return IR_VOID; }
      return IR_FLOAT;
    }
    if (op == IR_SELECT) {
      if (t[0] != IR_BOOL || t[1] != t[2]) {
        *why = "needs a bool condition and two branches of one type";
        return IR_VOID;
      }
      return t[1];
    }
    if (op == IR_CONTAINS) return IR_BOOL;
    return p->inputs[n->imm.i].dtype == DT_I32 ? IR_INT : IR_FLOAT;   /* load */
  }
  return IR_VOID;
}

/* node i on its own: op, arity, argument order, immediates, type */
static attnc_status check_node(const IrPattern *p, int i, Diag *d) {
  const IrNode *n = &p->nodes[i];
  if (n->op >= IR_NOPS)
    return diag_error(d, ATTNC_ERR_INTERNAL, ir_node_loc(p, i), "node %%%d has op %d", i, n->op);
  IrOp op = (IrOp)n->op;
  int arity = ir_op_arity(op);
  if ((arity >= 0 && n->nargs != arity) || n->nargs > IR_MAXARGS)
    return bad_node(p, d, i, "%d arguments", n->nargs);
  for (int j = 0; j < n->nargs; j++)
    if (n->args[j] < 0 || n->args[j] >= i)
      return bad_node(p, d, i, "argument %d is %%%d, not an earlier node", j, n->args[j]);
  if (n->type != IR_BOOL && n->type != IR_INT && n->type != IR_FLOAT)
    return bad_node(p, d, i, "type %s", ir_type_name((IrType)n->type));
  if (op == IR_CONST && n->type == IR_BOOL && n->imm.i != 0 && n->imm.i != 1)
    return bad_node(p, d, i, "bool const %lld", (long long)n->imm.i);
  if (op == IR_QC || op == IR_KC) {
    int rank = p->grid_rank > 0 ? p->grid_rank : 1;
    if (n->imm.i < 0 || n->imm.i >= rank)
      return bad_node(p, d, i, "axis %lld of a %d-D grid", (long long)n->imm.i, rank);
  }
  attnc_status st = op == IR_LOAD || op == IR_CONTAINS ? check_access(p, i, d) : ATTNC_OK;
  if (st) return st;
  const char *why;
  IrType want = derive(p, i, &why);
  if (want == IR_VOID) return bad_node(p, d, i, "%s", why);
  if (want != n->type)
    return bad_node(p, d, i, "is %s, but its arguments make it %s", ir_type_name((IrType)n->type),
                    ir_type_name(want));
  return ATTNC_OK;
}

static attnc_status check_root(const IrPattern *p, Diag *d, const char *what, int root,
                               IrType want) {
  if (root == -1) return ATTNC_OK;
  if (root < 0 || root >= p->nnodes)
    return diag_error(d, ATTNC_ERR_INTERNAL, ir_loc(p, 0), "%s is node %d of %d", what, root, p->nnodes);
  if (p->nodes[root].type != want)
    return bad_node(p, d, root, "%s must be %s, is %s", what, ir_type_name(want),
                    ir_type_name((IrType)p->nodes[root].type));
  return ATTNC_OK;
}

/* the raw score leaf may be reached from score, never from mask */
static attnc_status check_mask_score(const IrPattern *p, Diag *d) {
  if (p->mask < 0) return ATTNC_OK;
  Arena a;
  arena_init(&a);
  char *live = arena_alloc(&a, (size_t)p->nnodes);
  if (!live) { arena_free(&a); return diag_error(d, ATTNC_ERR_NOMEM, ir_loc(p, 0), "out of memory"); }
  live[p->mask] = 1;
  int bad = -1;
  for (int i = p->mask; i >= 0 && bad < 0; i--) {
    if (!live[i]) continue;
    if (p->nodes[i].op == IR_SCORE) bad = i;
    for (int j = 0; j < p->nodes[i].nargs; j++) live[p->nodes[i].args[j]] = 1;
  }
  arena_free(&a);
  return bad < 0 ? ATTNC_OK : bad_node(p, d, bad, "the raw score is used by the mask %%%d", p->mask);
}

/*
** Check p's declarations, then every node (each only after the nodes it
** uses), then the roots. Returns ATTNC_OK, or ATTNC_ERR_INTERNAL with d
** naming the first thing wrong.
*/
attnc_status ir_verify(const IrPattern *p, Diag *d) {
  if (!p) return diag_error(d, ATTNC_ERR_INTERNAL, (Loc){ 0 }, "no pattern");
  attnc_status st = check_decls(p, d);
  if (st) return st;
  if (p->nnodes < 0 || (p->nnodes > 0 && !p->nodes) || p->nnodes > p->cap)
    return diag_error(d, ATTNC_ERR_INTERNAL, ir_loc(p, 0), "%d nodes in an array of %d", p->nnodes,
                      p->cap);
  for (int i = 0; i < p->nnodes && !st; i++) st = check_node(p, i, d);
  if (!st) st = check_root(p, d, "mask", p->mask, IR_BOOL);
  if (!st) st = check_root(p, d, "score", p->score, IR_FLOAT);
  return st ? st : check_mask_score(p, d);
}
