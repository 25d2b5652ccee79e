/*
** terms.c -- the terms pass: each variant's mask as a disjunction of
** conjunctions (DNF) of classified atoms.
**
** Boolean structure (and, or, not, select and ==/~= of booleans) is
** expanded; negations are pushed into comparisons. Each comparison or
** contains becomes one of (passes.h, AtomKind):
**   QONLY   no k in it: a condition on the q tile (guards a box)
**   KBOUND  solved for one k coordinate: lo(q) <= k_axis <= hi(q), found by
**           taking the preimage of an interval through + - neg, * and //
**           by constants, abs, and % by constants over a known domain
**           (a preimage may be a union: it then splits the term)
**   CONG    (q - k) % d == 0, or q % d == k % d: residue classes
**   PERIODIC (k + s) % m cmp c: k in every m-th run of keys (1-D k)
**   LIST    contains(X, row(q), k // unit), or X[row(q), k // unit] cmp c
**   DATA    key(q) cmp key(k) with loads on both sides
**   OPAQUE  anything else: restricts nothing, and the term is never full
** A mask that needs more than DNF_MAX terms becomes one opaque term.
** This pass is an analysis: it only adds bound nodes to the plan's copy.
*/
#include <stdio.h>
#include <string.h>

#include "passes/passes.h"

enum { DNF_MAX = 64, PRE_MAX = 8 };

typedef struct TL { int n; Term *t; bool overflow; } TL;

typedef struct Ctx {
  Plan *pl;
  Diag *d;
  const char *why;      /* first reason a term was given up on */
} Ctx;

static IrNode *N(Ctx *c, int n) { return &c->pl->pat->nodes[n]; }
static uint16_t deps(Ctx *c, int n) {
  const uint16_t *dp = plan_deps(c->pl);
  return dp ? dp[n] : 0xffff;
}

/* ---------------------------------------------------------- term lists */

static TL tl_one(Ctx *c, const Atom *a) {
  TL r = { 0 };
  r.t = arena_alloc(c->pl->arena, sizeof *r.t);
  if (!r.t) return r;
  r.n = 1;
  if (a) {
    r.t[0].atoms = arena_alloc(c->pl->arena, sizeof(Atom));
    if (!r.t[0].atoms) { r.n = 0; return r; }
    r.t[0].atoms[0] = *a;
    r.t[0].natoms = 1;
  }
  return r;
}

static TL tl_concat(Ctx *c, TL a, TL b) {
  TL r = { .overflow = a.overflow || b.overflow };
  if (a.n + b.n > DNF_MAX) { r.overflow = true; return r; }
  r.t = arena_alloc(c->pl->arena, sizeof *r.t * (size_t)(a.n + b.n + 1));
  if (!r.t) return r;
  if (a.n) memcpy(r.t, a.t, sizeof *r.t * (size_t)a.n);
  if (b.n) memcpy(r.t + a.n, b.t, sizeof *r.t * (size_t)b.n);
  r.n = a.n + b.n;
  return r;
}

static TL tl_product(Ctx *c, TL a, TL b) {
  TL r = { .overflow = a.overflow || b.overflow };
  if ((int64_t)a.n * b.n > DNF_MAX) { r.overflow = true; return r; }
  r.t = arena_alloc(c->pl->arena, sizeof *r.t * (size_t)(a.n * b.n + 1));
  if (!r.t) return r;
  for (int i = 0; i < a.n; i++)
    for (int j = 0; j < b.n; j++) {
      Term *t = &r.t[r.n++];
      t->natoms = a.t[i].natoms + b.t[j].natoms;
      t->atoms = arena_alloc(c->pl->arena, sizeof(Atom) * (size_t)(t->natoms + 1));
      if (!t->atoms) { r.n = 0; return r; }
      if (a.t[i].natoms) memcpy(t->atoms, a.t[i].atoms, sizeof(Atom) * (size_t)a.t[i].natoms);
      if (b.t[j].natoms)
        memcpy(t->atoms + a.t[i].natoms, b.t[j].atoms, sizeof(Atom) * (size_t)b.t[j].natoms);
    }
  return r;
}

static TL opaque(Ctx *c, int node, bool neg, const char *why) {
  Atom a = { .kind = ATOM_OPAQUE, .node = node, .neg = neg, .lo = -1, .hi = -1, .qkey = -1,
             .kkey = -1, .why = why };
  if (!c->why) c->why = why;
  return tl_one(c, &a);
}

/* ------------------------------------------------------------ preimage */

typedef struct KB { int axis; bool grid; int lo, hi; } KB;
typedef struct KBs { int n; KB v[PRE_MAX]; bool fail; } KBs;

static void kbs_add(KBs *r, KB kb) {
  if (r->n == PRE_MAX) { r->fail = true; return; }
  r->v[r->n++] = kb;
}

/* the static domain [0, n-1] of a k leaf, or false when runtime */
static bool leaf_domain(Ctx *c, int n, int64_t *size) {
  const IrPattern *p = c->pl->pat;
  const IrNode *nd = N(c, n);
  if (p->grid_rank <= 0) return false;
  if (nd->op == IR_KC) {
    if (nd->imm.i < 0 || nd->imm.i >= p->grid_rank) return false;
    *size = p->grid[nd->imm.i];
    return true;
  }
  int64_t s = 1;
  for (int i = 0; i < p->grid_rank; i++) s *= p->grid[i];
  *size = s;
  return true;
}

/* node as leaf + s with a constant s (x + c, c + x, x - c; else s = 0) */
static int leaf_shift(Ctx *c, int node, int64_t *s) {
  const IrNode *x = N(c, node);
  *s = 0;
  if (x->op == IR_ADD && pn_is_const(c->pl, x->args[1], s)) return x->args[0];
  if (x->op == IR_ADD && pn_is_const(c->pl, x->args[0], s)) return x->args[1];
  if (x->op == IR_SUB && pn_is_const(c->pl, x->args[1], s)) { *s = -*s; return x->args[0]; }
  *s = 0;
  return node;
}

/*
** The set of values of the k leaf inside `node` for which node's value
** lies in [lo, hi] (nodes over the q side, -1 = open), as a union of
** intervals appended to out. Sets out->fail when the shape is not one we
** can invert exactly.
*/
static void preimage(Ctx *c, int node, int lo, int hi, KBs *out) {
  Plan *pl = c->pl;
  const IrNode *nd = N(c, node);
  int line = nd->line;
  Diag *d = c->d;
  if (out->fail) return;
  if (lo == -2 || hi == -2) { out->fail = true; return; }
  if (nd->type != IR_INT) { out->fail = true; return; }
  int a0 = nd->nargs > 0 ? nd->args[0] : -1, a1 = nd->nargs > 1 ? nd->args[1] : -1;
  bool k0 = a0 >= 0 && (deps(c, a0) & DEP_K), k1 = a1 >= 0 && (deps(c, a1) & DEP_K);
  int64_t cv;
  switch (nd->op) {
  case IR_K:
    kbs_add(out, (KB){ 0, false, lo, hi });
    return;
  case IR_KC:
    kbs_add(out, (KB){ (int)nd->imm.i, true, lo, hi });
    return;
  case IR_ADD:
    if (k0 && !k1) preimage(c, a0, pn_op(pl, IR_SUB, lo, a1, line, d), pn_op(pl, IR_SUB, hi, a1, line, d), out);
    else if (k1 && !k0) preimage(c, a1, pn_op(pl, IR_SUB, lo, a0, line, d), pn_op(pl, IR_SUB, hi, a0, line, d), out);
    else out->fail = true;
    return;
  case IR_SUB:   /* x - y in [lo, hi] */
    if (k0 && !k1) preimage(c, a0, pn_op(pl, IR_ADD, lo, a1, line, d), pn_op(pl, IR_ADD, hi, a1, line, d), out);
    else if (k1 && !k0) preimage(c, a1, pn_op(pl, IR_SUB, a0, hi, line, d), pn_op(pl, IR_SUB, a0, lo, line, d), out);
    else out->fail = true;
    return;
  case IR_NEG:
    preimage(c, a0, pn_op(pl, IR_NEG, hi, -1, line, d), pn_op(pl, IR_NEG, lo, -1, line, d), out);
    return;
  case IR_MUL: {
    int x = k0 ? a0 : a1, f = k0 ? a1 : a0;
    if ((k0 && k1) || !pn_is_const(pl, f, &cv) || cv == 0) { out->fail = true; return; }
    if (cv < 0) {   /* x * cv in [lo, hi]  <=>  x * |cv| in [-hi, -lo] */
      int t = lo;
      lo = pn_op(pl, IR_NEG, hi, -1, line, d);
      hi = pn_op(pl, IR_NEG, t, -1, line, d);
      cv = -cv;
    }
    int ccv = pn_const(pl, cv, line);
    /* ceil(lo / cv) = -((-lo) // cv) */
    int l2 = pn_op(pl, IR_NEG, pn_op(pl, IR_IDIV, pn_op(pl, IR_NEG, lo, -1, line, d), ccv, line, d), -1, line, d);
    int h2 = pn_op(pl, IR_IDIV, hi, ccv, line, d);
    preimage(c, x, l2, h2, out);
    return;
  }
  case IR_IDIV:   /* x // cv in [lo, hi]  <=>  x in [lo*cv, hi*cv + cv - 1] */
    if (k1 || !pn_is_const(pl, a1, &cv) || cv <= 0) { out->fail = true; return; }
    preimage(c, a0, pn_op(pl, IR_MUL, lo, pn_const(pl, cv, line), line, d),
             pn_op(pl, IR_ADD, pn_op(pl, IR_MUL, hi, pn_const(pl, cv, line), line, d),
                   pn_const(pl, cv - 1, line), line, d), out);
    return;
  case IR_ABS: {
    int64_t lv;
    if (lo == -1 || (pn_is_const(pl, lo, &lv) && lv <= 0)) {
      preimage(c, a0, pn_op(pl, IR_NEG, hi, -1, line, d), hi, out);
    } else {
      preimage(c, a0, lo, hi, out);
      preimage(c, a0, pn_op(pl, IR_NEG, hi, -1, line, d), pn_op(pl, IR_NEG, lo, -1, line, d), out);
    }
    return;
  }
  case IR_MOD: {
    /* (leaf + s) % m in [lo, hi], over the leaf's static domain */
    if (k1 || !pn_is_const(pl, a1, &cv) || cv <= 0) { out->fail = true; return; }
    int64_t s, size;
    int leaf = leaf_shift(c, a0, &s);
    if ((N(c, leaf)->op != IR_K && N(c, leaf)->op != IR_KC) || !leaf_domain(c, leaf, &size)) {
      out->fail = true;
      return;
    }
    int64_t j0 = ir_floordiv(s, cv), j1 = ir_floordiv(size - 1 + s, cv);
    if (j1 - j0 + 1 > 4) { out->fail = true; return; }
    int l = lo == -1 ? pn_const(pl, 0, line) : pn_op(pl, IR_MAX, lo, pn_const(pl, 0, line), line, d);
    int h = hi == -1 ? pn_const(pl, cv - 1, line)
                     : pn_op(pl, IR_MIN, hi, pn_const(pl, cv - 1, line), line, d);
    for (int64_t j = j0; j <= j1; j++) {
      int off = pn_const(pl, j * cv - s, line);
      preimage(c, leaf, pn_op(pl, IR_ADD, l, off, line, d), pn_op(pl, IR_ADD, h, off, line, d), out);
    }
    return;
  }
  default:
    out->fail = true;
    return;
  }
}

/* ------------------------------------------------------------ the atoms */

/* k // unit or k: the needle of a list atom (-> unit), over K (1-D) only */
static bool needle_unit(Ctx *c, int n, int64_t *unit) {
  const IrNode *nd = N(c, n);
  if (nd->op == IR_K) { *unit = 1; return true; }
  if (nd->op == IR_IDIV && N(c, nd->args[0])->op == IR_K && pn_is_const(c->pl, nd->args[1], unit) &&
      *unit > 0)
    return true;
  return false;
}

/* a leaf of q or k on some axis: (is_k, grid, axis) */
static bool coord_leaf(Ctx *c, int n, bool *isk, bool *grid, int *axis) {
  const IrNode *nd = N(c, n);
  switch (nd->op) {
  case IR_Q: *isk = false; *grid = false; *axis = 0; return true;
  case IR_K: *isk = true; *grid = false; *axis = 0; return true;
  case IR_QC: *isk = false; *grid = true; *axis = (int)nd->imm.i; return true;
  case IR_KC: *isk = true; *grid = true; *axis = (int)nd->imm.i; return true;
  default: return false;
  }
}

/* (q - k) % d == 0, (k - q) % d == 0, q % d == k % d */
static bool congruence(Ctx *c, IrOp op, int lhs, int rhs, Atom *a) {
  int64_t z, dv, dv2;
  bool ik1, g1, ik2, g2;
  int ax1, ax2;
  if (op != IR_EQ) return false;
  const IrNode *l = N(c, lhs), *r = N(c, rhs);
  if (l->op == IR_MOD && pn_is_const(c->pl, rhs, &z) && z == 0 && pn_is_const(c->pl, l->args[1], &dv)) {
    const IrNode *e = N(c, l->args[0]);
    if (e->op != IR_SUB || !coord_leaf(c, e->args[0], &ik1, &g1, &ax1) ||
        !coord_leaf(c, e->args[1], &ik2, &g2, &ax2))
      return false;
  } else if (l->op == IR_MOD && r->op == IR_MOD && pn_is_const(c->pl, l->args[1], &dv) &&
             pn_is_const(c->pl, r->args[1], &dv2) && dv == dv2) {
    if (!coord_leaf(c, l->args[0], &ik1, &g1, &ax1) || !coord_leaf(c, r->args[0], &ik2, &g2, &ax2))
      return false;
  } else
    return false;
  if (ik1 == ik2 || g1 != g2 || ax1 != ax2 || dv <= 1) return false;
  *a = (Atom){ .kind = ATOM_CONG, .axis = ax1, .grid = g1, .d = dv, .lo = -1, .hi = -1,
               .qkey = -1, .kkey = -1 };
  return true;
}

/*
** (k + s) % m cmp c with constants (k the 1-D token, whose domain is known
** only at run time): the residues as one or two PERIODIC atoms, or no term
** (never) or the empty term (always). False when the shape is another.
*/
static bool periodic(Ctx *c, IrOp op, int lhs, int rhs, const Atom *base, TL *out) {
  Plan *pl = c->pl;
  const IrNode *l = N(c, lhs);
  int64_t m, cv, s;
  if (l->op != IR_MOD || !pn_is_const(pl, l->args[1], &m) || m <= 1 || !pn_is_const(pl, rhs, &cv))
    return false;
  if (N(c, leaf_shift(c, l->args[0], &s))->op != IR_K) return false;
  int64_t lo[2], hi[2];
  int n = 1;
  lo[0] = 0; hi[0] = m - 1;
  switch (op) {
  case IR_LT: hi[0] = cv - 1; break;
  case IR_LE: hi[0] = cv; break;
  case IR_GT: lo[0] = cv + 1; break;
  case IR_GE: lo[0] = cv; break;
  case IR_EQ: lo[0] = hi[0] = cv; break;
  case IR_NE: n = 2; hi[0] = cv - 1; lo[1] = cv + 1; hi[1] = m - 1; break;
  default: return false;
  }
  *out = (TL){ 0 };
  for (int i = 0; i < n; i++) {
    if (lo[i] < 0) lo[i] = 0;
    if (hi[i] > m - 1) hi[i] = m - 1;
    if (lo[i] > hi[i]) continue;                        /* no residue: never */
    if (lo[i] == 0 && hi[i] == m - 1) { *out = tl_one(c, NULL); return true; }   /* always */
    Atom a = *base;
    a.kind = ATOM_PERIODIC;
    a.per = (PlanPeriod){ m, ir_floormod(s, m), lo[i], hi[i] };
    *out = out->n ? tl_concat(c, *out, tl_one(c, &a)) : tl_one(c, &a);
  }
  return true;
}

/* classify one comparison / contains (with polarity) into alternatives */
static TL classify(Ctx *c, int node, bool neg) {
  Plan *pl = c->pl;
  const IrNode *nd = N(c, node);
  uint16_t dp = deps(c, node);
  Atom a = { .node = node, .neg = neg, .lo = -1, .hi = -1, .qkey = -1, .kkey = -1 };
  if (!(dp & DEP_K)) {
    a.kind = ATOM_QONLY;
    return tl_one(c, &a);
  }
  if (nd->op == IR_CONTAINS) {
    int n = nd->nargs;
    if (neg) return opaque(c, node, neg, "a negated contains");
    for (int i = 0; i < n - 1; i++)
      if (deps(c, nd->args[i]) & DEP_K) return opaque(c, node, neg, "contains with k in a row index");
    if (!needle_unit(c, nd->args[n - 1], &a.unit))
      return opaque(c, node, neg, "contains whose needle is not k // constant");
    a.kind = ATOM_LIST;
    a.lkind = LIST_VALUES;
    a.input = (int)nd->imm.i;
    a.dim = n - 1;
    for (int i = 0; i < n - 1; i++) a.row[i] = nd->args[i];
    return tl_one(c, &a);
  }
  if (ir_op_kind((IrOp)nd->op) != IRK_CMP) return opaque(c, node, neg, "a boolean that is not a comparison");
  IrOp op = (IrOp)nd->op;
  if (neg) op = ir_cmp_negate(op);
  int lhs = nd->args[0], rhs = nd->args[1];
  if (N(c, lhs)->type == IR_BOOL) return opaque(c, node, neg, "a comparison of booleans");
  if (!(deps(c, lhs) & DEP_K)) {
    int t = lhs; lhs = rhs; rhs = t;
    op = ir_cmp_swap(op);
  }
  uint16_t dl = deps(c, lhs), dr = deps(c, rhs);
  if (congruence(c, op, lhs, rhs, &a)) return tl_one(c, &a);
  if (congruence(c, op, rhs, lhs, &a)) return tl_one(c, &a);
  /* bitmap: X[row(q).., k // unit, ..] cmp const (a float input compares as float) */
  const IrNode *l = N(c, lhs), *r = N(c, rhs);
  int64_t cv = 0;
  bool cst = pn_is_const(pl, rhs, &cv);
  if (l->op == IR_TOFLOAT && N(c, l->args[0])->op == IR_LOAD && r->op == IR_CONST &&
      r->type == IR_FLOAT && r->imm.f == (double)(int64_t)r->imm.f) {
    l = N(c, l->args[0]);
    cv = (int64_t)r->imm.f;
    cst = true;
  }
  if (l->op == IR_LOAD && !(dr & DEP_K) && cst) {
    int kdim = -1;
    for (int i = 0; i < l->nargs; i++)
      if (deps(c, l->args[i]) & DEP_K) {
        if (kdim >= 0) return opaque(c, node, neg, "a load indexed by k in two dims");
        kdim = i;
      }
    if (!needle_unit(c, l->args[kdim], &a.unit))
      return opaque(c, node, neg, "a load indexed by k other than k // constant");
    a.kind = ATOM_LIST;
    a.lkind = LIST_SCAN;
    a.input = (int)l->imm.i;
    a.dim = kdim;
    a.cmp = (uint8_t)op;
    a.cmpval = cv;
    for (int i = 0; i < l->nargs; i++) a.row[i] = i == kdim ? -1 : l->args[i];
    return tl_one(c, &a);
  }
  if ((dl & DEP_FLOAT) || (dr & DEP_FLOAT)) return opaque(c, node, neg, "a comparison of floats with k");
  /* data: key(k) op key(q) with loads on both sides */
  if ((dl & DEP_LOAD) && !(dr & DEP_K) && (dr & DEP_LOAD) && !(dl & (DEP_Q | DEP_QC))) {
    if (op == IR_NE) return opaque(c, node, neg, "keys compared with ~=");
    a.kind = ATOM_DATA;
    a.kkey = lhs;
    a.qkey = rhs;
    a.cmp = (uint8_t)ir_cmp_swap(op);   /* key(q) cmp key(k) */
    return tl_one(c, &a);
  }
  if (dl & DEP_LOAD) return opaque(c, node, neg, "k inside a load");

  /* solve for one k coordinate */
  int line = nd->line;
  int one = pn_const(pl, 1, line);
  KBs kb = { 0 };
  switch (op) {
  case IR_LT: preimage(c, lhs, -1, pn_op(pl, IR_SUB, rhs, one, line, c->d), &kb); break;
  case IR_LE: preimage(c, lhs, -1, rhs, &kb); break;
  case IR_GT: preimage(c, lhs, pn_op(pl, IR_ADD, rhs, one, line, c->d), -1, &kb); break;
  case IR_GE: preimage(c, lhs, rhs, -1, &kb); break;
  case IR_EQ: preimage(c, lhs, rhs, rhs, &kb); break;
  case IR_NE:
    preimage(c, lhs, -1, pn_op(pl, IR_SUB, rhs, one, line, c->d), &kb);
    preimage(c, lhs, pn_op(pl, IR_ADD, rhs, one, line, c->d), -1, &kb);
    break;
  default: kb.fail = true;
  }
  if (!diag_ok(c->d)) return (TL){ 0 };
  TL per;
  if (kb.fail && periodic(c, op, lhs, rhs, &a, &per)) return per;
  if (kb.fail) return opaque(c, node, neg, "a comparison that could not be solved for k");
  TL res = { 0 };
  for (int i = 0; i < kb.n; i++) {
    Atom b = a;
    b.kind = ATOM_KBOUND;
    b.axis = kb.v[i].axis;
    b.grid = kb.v[i].grid;
    b.lo = kb.v[i].lo;
    b.hi = kb.v[i].hi;
    res = i == 0 ? tl_one(c, &b) : tl_concat(c, res, tl_one(c, &b));
  }
  return res;
}

/* --------------------------------------------------------- the boolean */

static TL dnf(Ctx *c, int node, bool neg) {
  const IrNode *nd = N(c, node);
  if (!diag_ok(c->d)) return (TL){ 0 };
  switch (nd->op) {
  case IR_CONST:
    if ((nd->imm.i != 0) != neg) return tl_one(c, NULL);
    return (TL){ 0 };
  case IR_AND:
  case IR_OR: {
    TL a = dnf(c, nd->args[0], neg), b = dnf(c, nd->args[1], neg);
    return (nd->op == IR_AND) != neg ? tl_product(c, a, b) : tl_concat(c, a, b);
  }
  case IR_NOT:
    return dnf(c, nd->args[0], !neg);
  case IR_SELECT:
    if (nd->type == IR_BOOL) {   /* (c & x) | (!c & y) */
      TL t = tl_product(c, dnf(c, nd->args[0], false), dnf(c, nd->args[1], neg));
      TL f = tl_product(c, dnf(c, nd->args[0], true), dnf(c, nd->args[2], neg));
      return tl_concat(c, t, f);
    }
    break;
  case IR_EQ:
  case IR_NE:
    if (N(c, nd->args[0])->type == IR_BOOL) {
      bool eq = (nd->op == IR_EQ) != neg;   /* eq: (a & b) | (!a & !b) */
      TL t = tl_product(c, dnf(c, nd->args[0], false), dnf(c, nd->args[1], !eq));
      TL f = tl_product(c, dnf(c, nd->args[0], true), dnf(c, nd->args[1], eq));
      return tl_concat(c, t, f);
    }
    break;
  default:
    break;
  }
  return classify(c, node, neg);
}

/* the DNF of one mask root (-1 = all pairs) */
static attnc_status build(Plan *pl, int mask, Dnf *out, Diag *d) {
  Ctx c = { .pl = pl, .d = d };
  memset(out, 0, sizeof *out);
  if (mask < 0) {
    TL one = tl_one(&c, NULL);
    out->nterms = one.n;
    out->terms = one.t;
    return diag_ok(d) ? ATTNC_OK : d->status;
  }
  TL t = dnf(&c, mask, false);
  if (!diag_ok(d)) return d->status;
  if (t.overflow) {
    char *why = arena_printf(pl->arena, "the mask needs more than %d terms", DNF_MAX);
    Atom a = { .kind = ATOM_OPAQUE, .node = mask, .lo = -1, .hi = -1, .qkey = -1, .kkey = -1,
               .why = why };
    t = tl_one(&c, &a);
    c.why = why;
  }
  if (pl->arena->failed) return diag_error(d, ATTNC_ERR_NOMEM, ir_loc(pl->pat, 0), "out of memory");
  out->nterms = t.n;
  out->terms = t.t;
  out->why = c.why;
  for (int i = 0; i < t.n; i++)
    for (int j = 0; j < t.t[i].natoms; j++) {
      const Atom *a = &t.t[i].atoms[j];
      if ((a->kind == ATOM_KBOUND || a->kind == ATOM_CONG) && !a->grid) out->kspace_1d = true;
    }
  return ATTNC_OK;
}

attnc_status pass_terms(PassCtx *pc) {
  Plan *pl = pc->plan;
  pl->dnf = arena_alloc(pl->arena, sizeof *pl->dnf * (size_t)(pl->nvariants + 1));
  if (!pl->dnf) return diag_error(pc->d, ATTNC_ERR_NOMEM, ir_loc(pl->pat, 0), "out of memory");
  for (int v = 0; v < pl->nvariants; v++)
    if (build(pl, pl->variants[v].mask, &pl->dnf[v], pc->d) != ATTNC_OK) return pc->d->status;
  return ATTNC_OK;
}
