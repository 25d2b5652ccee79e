/*
** heads.c -- the heads pass: one variant per distinct head behaviour.
**
** Boolean subexpressions over h and constants only (h < 8, h % 2 == 0)
** are the head atoms. For each assignment of true/false to them (at most
** MAX_ATOMS atoms) the mask is specialised by substitution and folding;
** assignments giving the same mask share a variant. A variant's `heads`
** predicate is the disjunction of its assignments, over PV_H; the last
** variant gets none (it catches every remaining head). A mask without
** head atoms gives one variant that applies to every head.
*/
#include <string.h>

#include "passes/passes.h"

enum { MAX_ATOMS = 4 };

typedef struct Ctx {
  Plan *pl;
  Diag *d;
  int atoms[MAX_ATOMS], natoms;
  bool too_many;
  int *memo;            /* substitution memo, per node */
  int cfalse, ctrue;
} Ctx;

static void collect(Ctx *c, int n, char *seen) {
  const uint16_t *dep = plan_deps(c->pl);
  const IrNode *nd = &c->pl->pat->nodes[n];
  if (seen[n]) return;
  seen[n] = 1;
  if (nd->type == IR_BOOL && nd->op != IR_CONST && dep[n] == DEP_H &&
      plan_ir_to_expr(c->pl, n)) {
    for (int i = 0; i < c->natoms; i++)
      if (c->atoms[i] == n) return;
    if (c->natoms == MAX_ATOMS) { c->too_many = true; return; }
    c->atoms[c->natoms++] = n;
    return;
  }
  for (int i = 0; i < nd->nargs; i++) collect(c, nd->args[i], seen);
}

static bool cbool(const IrPattern *p, int n, bool *v) {
  if (p->nodes[n].op != IR_CONST || p->nodes[n].type != IR_BOOL) return false;
  *v = p->nodes[n].imm.i != 0;
  return true;
}

/* substitute the atoms by constants (assignment bits) and fold logic */
static int subst(Ctx *c, int n, unsigned bits) {
  IrPattern *p = c->pl->pat;
  if (c->memo[n] != -1) return c->memo[n];
  for (int i = 0; i < c->natoms; i++)
    if (c->atoms[i] == n) return c->memo[n] = (bits >> i) & 1 ? c->ctrue : c->cfalse;
  IrNode nd = p->nodes[n];
  if (nd.nargs == 0) return c->memo[n] = n;
  int args[IR_MAXARGS];
  bool same = true;
  for (int i = 0; i < nd.nargs; i++) {
    args[i] = subst(c, nd.args[i], bits);
    if (args[i] < 0) return -1;
    same = same && args[i] == nd.args[i];
  }
  if (same) return c->memo[n] = n;
  bool x = false, y = false;
  bool cx = nd.nargs > 0 && cbool(p, args[0], &x), cy = nd.nargs > 1 && cbool(p, args[1], &y);
  switch (nd.op) {
  case IR_AND:
    if (cx) return c->memo[n] = x ? args[1] : c->cfalse;
    if (cy) return c->memo[n] = y ? args[0] : c->cfalse;
    break;
  case IR_OR:
    if (cx) return c->memo[n] = x ? c->ctrue : args[1];
    if (cy) return c->memo[n] = y ? c->ctrue : args[0];
    break;
  case IR_NOT:
    if (cx) return c->memo[n] = x ? c->cfalse : c->ctrue;
    break;
  case IR_SELECT:
    if (cx) return c->memo[n] = x ? args[1] : args[2];
    break;
  default:
    break;
  }
  int r = ir_node(p, (IrOp)nd.op, args, nd.nargs, nd.imm.i, nd.line, c->d);
  return c->memo[n] = r;
}

static bool same_expr(const IrPattern *p, int a, int b, int depth) {
  if (a == b) return true;
  if (depth > 64) return false;
  const IrNode *x = &p->nodes[a], *y = &p->nodes[b];
  if (x->op != y->op || x->type != y->type || x->nargs != y->nargs || x->imm.i != y->imm.i)
    return false;
  for (int i = 0; i < x->nargs; i++)
    if (!same_expr(p, x->args[i], y->args[i], depth + 1)) return false;
  return true;
}

attnc_status pass_heads(PassCtx *pc) {
  Plan *pl = pc->plan;
  IrPattern *p = pl->pat;
  Arena *A = pl->arena;
  Ctx c = { .pl = pl, .d = pc->d };
  int mask = p->mask;
  if (mask >= 0) {
    char *seen = arena_alloc(A, (size_t)p->nnodes + 1);
    if (!seen || !plan_deps(pl)) goto oom;
    collect(&c, mask, seen);
  }
  if (c.too_many)
    pl->notes = arena_printf(A, "more than %d head conditions: one variant for all heads", MAX_ATOMS);
  if (c.natoms == 0 || c.too_many) {
    pl->variants = arena_alloc(A, sizeof *pl->variants);
    if (!pl->variants) goto oom;
    pl->nvariants = 1;
    pl->variants[0].mask = mask;
    return ATTNC_OK;
  }
  c.cfalse = ir_const_bool(p, false, 0);
  c.ctrue = ir_const_bool(p, true, 0);
  if (c.cfalse < 0 || c.ctrue < 0) goto oom;
  unsigned nas = 1u << c.natoms;
  int owner[1 << MAX_ATOMS], nv = 0;
  int vroot[1 << MAX_ATOMS];
  for (unsigned bits = 0; bits < nas; bits++) {
    int base = p->nnodes;
    c.memo = arena_alloc(A, sizeof(int) * (size_t)(base + 1));
    if (!c.memo) goto oom;
    for (int i = 0; i < base; i++) c.memo[i] = -1;
    int r = subst(&c, mask, bits);
    if (r < 0) {
      if (diag_ok(pc->d)) goto oom;
      return pc->d->status;
    }
    owner[bits] = -1;
    for (int v = 0; v < nv; v++)
      if (same_expr(p, vroot[v], r, 0)) { owner[bits] = v; break; }
    if (owner[bits] < 0) { vroot[nv] = r; owner[bits] = nv++; }
  }
  pl->variants = arena_alloc(A, sizeof *pl->variants * (size_t)nv);
  if (!pl->variants) goto oom;
  pl->nvariants = nv;
  for (int v = 0; v < nv; v++) {
    PlanVariant *var = &pl->variants[v];
    int64_t cv;
    var->mask = vroot[v];
    if (p->nodes[var->mask].op == IR_CONST && p->nodes[var->mask].type == IR_BOOL &&
        (cv = p->nodes[var->mask].imm.i) != 0)
      var->mask = -1;            /* all pairs */
    if (v == nv - 1) break;      /* the last variant catches the rest */
    const PlanExpr *any = pe_const(A, 0);
    for (unsigned bits = 0; bits < nas; bits++) {
      if (owner[bits] != v) continue;
      const PlanExpr *all = pe_const(A, 1);
      for (int i = 0; i < c.natoms; i++) {
        const PlanExpr *e = plan_ir_to_expr(pl, c.atoms[i]);
        if ((bits >> i & 1) == 0) e = pe_op(A, PE_NOT, e, NULL, NULL);
        all = pe_op(A, PE_AND, all, e, NULL);
      }
      any = pe_op(A, PE_OR, any, all, NULL);
    }
    if (!any) goto oom;
    var->heads = any;
  }
  if (nv == 1) pl->variants[0].heads = NULL;
  pl->deps = NULL;
  return ATTNC_OK;
oom:
  return diag_error(pc->d, ATTNC_ERR_NOMEM, ir_loc(p, 0), "out of memory");
}
