/*
** util.c -- helpers the pass files share: node dependencies, int node
** builders on the plan's pattern copy, and translation of h-only nodes.
*/
#include <string.h>

#include "passes/passes.h"

/* one forward sweep over the (topologically ordered) nodes */
void pattern_deps(const IrPattern *p, uint16_t *dep) {
  for (int i = 0; i < p->nnodes; i++) {
    const IrNode *n = &p->nodes[i];
    uint16_t m = n->type == IR_FLOAT ? DEP_FLOAT : 0;
    switch (n->op) {
    case IR_Q: m |= DEP_Q; break;
    case IR_K: m |= DEP_K; break;
    case IR_QC: m |= DEP_Q | DEP_QC; break;
    case IR_KC: m |= DEP_K | DEP_KC; break;
    case IR_BATCH: m |= DEP_B; break;
    case IR_HEAD: m |= DEP_H; break;
    case IR_SEQQ: case IR_SEQK: m |= DEP_SEQ; break;
    case IR_SCORE: m |= DEP_SCORE; break;
    case IR_LOAD: case IR_CONTAINS: m |= DEP_LOAD; break;
    default: break;
    }
    for (int j = 0; j < n->nargs; j++)
      if (n->args[j] >= 0 && n->args[j] < i) m |= dep[n->args[j]];
    dep[i] = m;
  }
}

const uint16_t *plan_deps(Plan *pl) {
  IrPattern *p = pl->pat;
  if (pl->deps && pl->ndeps == p->nnodes) return pl->deps;
  uint16_t *dep = arena_alloc(pl->arena, sizeof *dep * (size_t)(p->nnodes + 1));
  if (!dep) return NULL;
  pattern_deps(p, dep);
  pl->deps = dep;
  pl->ndeps = p->nnodes;
  return dep;
}

bool pn_is_const(const Plan *pl, int n, int64_t *v) {
  if (n < 0) return false;
  const IrNode *nd = &pl->pat->nodes[n];
  if (nd->op != IR_CONST || nd->type != IR_INT) return false;
  if (v) *v = nd->imm.i;
  return true;
}

int pn_const(Plan *pl, int64_t v, int line) {
  int n = ir_const_int(pl->pat, v, line);
  return n < 0 ? -2 : n;
}

/*
** Build an int node, folding constants (so bounds stay readable in the
** printed plan). -1 (an open bound) propagates; -2 means an error.
*/
int pn_op(Plan *pl, IrOp op, int a, int b, int line, Diag *d) {
  int ar = ir_op_arity(op);
  if (a == -2 || (ar > 1 && b == -2)) return -2;
  if (a == -1 || (ar > 1 && b == -1)) return -1;
  int64_t x, y;
  bool ca = pn_is_const(pl, a, &x), cb = ar > 1 && pn_is_const(pl, b, &y);
  if (ca && (ar == 1 || cb)) {
    switch (op) {
    case IR_ADD: return pn_const(pl, x + y, line);
    case IR_SUB: return pn_const(pl, x - y, line);
    case IR_MUL: return pn_const(pl, x * y, line);
    case IR_NEG: return pn_const(pl, -x, line);
    case IR_IDIV: if (y != 0) return pn_const(pl, ir_floordiv(x, y), line); break;
    case IR_MOD: if (y != 0) return pn_const(pl, ir_floormod(x, y), line); break;
    case IR_MIN: return pn_const(pl, x < y ? x : y, line);
    case IR_MAX: return pn_const(pl, x > y ? x : y, line);
    default: break;
    }
  }
  if ((op == IR_ADD || op == IR_SUB) && cb && y == 0) return a;
  if (op == IR_ADD && ca && x == 0) return b;
  if ((op == IR_MUL || op == IR_IDIV) && cb && y == 1) return a;
  int args[2] = { a, b };
  int n = ir_node(pl->pat, op, args, ar, 0, line, d);
  return n < 0 ? -2 : n;
}

/* h-only int/bool expressions as PlanExprs (for head predicates) */
const PlanExpr *plan_ir_to_expr(Plan *pl, int node) {
  const IrNode *n = &pl->pat->nodes[node];
  Arena *A = pl->arena;
  const PlanExpr *a = NULL, *b = NULL, *c = NULL;
  if (n->type == IR_FLOAT) return NULL;
  if (n->op == IR_CONST) return pe_const(A, n->imm.i);
  if (n->op == IR_HEAD) return pe_var(A, PV_H, 0);
  if (n->op == IR_BATCH) return pe_var(A, PV_B, 0);
  if (n->op == IR_SEQQ) return pe_var(A, PV_SQ, 0);
  if (n->op == IR_SEQK) return pe_var(A, PV_SK, 0);
  if (n->nargs >= 1 && !(a = plan_ir_to_expr(pl, n->args[0]))) return NULL;
  if (n->nargs >= 2 && !(b = plan_ir_to_expr(pl, n->args[1]))) return NULL;
  if (n->nargs >= 3 && !(c = plan_ir_to_expr(pl, n->args[2]))) return NULL;
  int64_t y;
  switch (n->op) {
  case IR_ADD: return pe_op(A, PE_ADD, a, b, NULL);
  case IR_SUB: return pe_op(A, PE_SUB, a, b, NULL);
  case IR_MUL: return pe_op(A, PE_MUL, a, b, NULL);
  case IR_NEG: return pe_op(A, PE_NEG, a, NULL, NULL);
  case IR_IDIV: return pe_is_const(b, &y) && y > 0 ? pe_op(A, PE_FDIV, a, b, NULL) : NULL;
  case IR_MOD: return pe_is_const(b, &y) && y > 0 ? pe_op(A, PE_FMOD, a, b, NULL) : NULL;
  case IR_MIN: return pe_op(A, PE_MIN, a, b, NULL);
  case IR_MAX: return pe_op(A, PE_MAX, a, b, NULL);
  case IR_ABS: return pe_op(A, PE_MAX, a, pe_op(A, PE_NEG, a, NULL, NULL), NULL);
  case IR_LT: return pe_op(A, PE_LT, a, b, NULL);
  case IR_LE: return pe_op(A, PE_LE, a, b, NULL);
  case IR_GT: return pe_op(A, PE_LT, b, a, NULL);
  case IR_GE: return pe_op(A, PE_LE, b, a, NULL);
  case IR_EQ: return pe_op(A, PE_EQ, a, b, NULL);
  case IR_NE: return pe_op(A, PE_NE, a, b, NULL);
  case IR_AND: return pe_op(A, PE_AND, a, b, NULL);
  case IR_OR: return pe_op(A, PE_OR, a, b, NULL);
  case IR_NOT: return pe_op(A, PE_NOT, a, NULL, NULL);
  case IR_SELECT: return pe_op(A, PE_SELECT, a, b, c);
  default: return NULL;
  }
}
