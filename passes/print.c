/*
** print.c -- the plan as text: what ATTNC_DUMP shows after a pass and what
** the golden files under tests/golden/passes hold. Deterministic: the same
** pattern and options give the same bytes.
*/
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "passes/passes.h"

typedef struct Out { Arena *A; char *s; size_t n, cap; bool oom; } Out;

static void put(Out *o, const char *s) {
  size_t m = strlen(s);
  if (o->oom) return;
  if (o->n + m + 1 > o->cap) {
    size_t cap = o->cap ? o->cap * 2 : 1024;
    while (cap < o->n + m + 1) cap *= 2;
    char *t = arena_realloc(o->A, o->s, o->cap, cap);
    if (!t) { o->oom = true; return; }
    o->s = t;
    o->cap = cap;
  }
  memcpy(o->s + o->n, s, m + 1);
  o->n += m;
}

static void putf(Out *o, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 2, 3)))
#endif
  ;
static void putf(Out *o, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n >= (int)sizeof buf) {
    char *big = arena_alloc(o->A, (size_t)n + 1);
    if (!big) { o->oom = true; return; }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    put(o, big);
    return;
  }
  put(o, buf);
}

/* ------------------------------------------------------ pattern nodes */

static int node_prec(IrOp op) {
  switch (op) {
  case IR_OR: return 1; case IR_AND: return 2;
  case IR_LT: case IR_LE: case IR_GT: case IR_GE: case IR_EQ: case IR_NE: return 3;
  case IR_ADD: case IR_SUB: return 5;
  case IR_MUL: case IR_DIV: case IR_IDIV: case IR_MOD: return 6;
  case IR_NEG: case IR_NOT: return 7;
  default: return 9;
  }
}

static const char *node_infix(IrOp op) {
  switch (op) {
  case IR_OR: return " | "; case IR_AND: return " & ";
  case IR_LT: return " < "; case IR_LE: return " <= "; case IR_GT: return " > ";
  case IR_GE: return " >= "; case IR_EQ: return " == "; case IR_NE: return " ~= ";
  case IR_ADD: return " + "; case IR_SUB: return " - "; case IR_MUL: return " * ";
  case IR_DIV: return " / "; case IR_IDIV: return " // "; case IR_MOD: return " % ";
  default: return NULL;
  }
}

static void put_node(Out *o, const IrPattern *p, int n, int outer, int depth) {
  const IrNode *nd = &p->nodes[n];
  IrOp op = (IrOp)nd->op;
  int pr = node_prec(op);
  if (depth > 40) { put(o, "..."); return; }
  bool paren = pr < outer;
  if (paren) put(o, "(");
  switch (op) {
  case IR_CONST:
    if (nd->type == IR_FLOAT) putf(o, "%g", nd->imm.f);
    else if (nd->type == IR_BOOL) put(o, nd->imm.i ? "true" : "false");
    else putf(o, "%lld", (long long)nd->imm.i);
    break;
  case IR_BATCH: put(o, "b"); break;
  case IR_HEAD: put(o, "h"); break;
  case IR_Q: put(o, "q"); break;
  case IR_K: put(o, "k"); break;
  case IR_QC: putf(o, "qc%lld", (long long)nd->imm.i); break;
  case IR_KC: putf(o, "kc%lld", (long long)nd->imm.i); break;
  case IR_SEQQ: put(o, "Sq"); break;
  case IR_SEQK: put(o, "Sk"); break;
  case IR_SCORE: put(o, "s"); break;
  case IR_NEG: put(o, "-"); put_node(o, p, nd->args[0], 8, depth + 1); break;
  case IR_NOT: put(o, "~"); put_node(o, p, nd->args[0], 8, depth + 1); break;
  case IR_TOFLOAT: put_node(o, p, nd->args[0], outer, depth + 1); break;
  case IR_LOAD:
  case IR_CONTAINS: {
    const char *name = nd->imm.i >= 0 && nd->imm.i < p->ninputs ? p->inputs[nd->imm.i].name : "?";
    int last = op == IR_CONTAINS ? nd->nargs - 1 : nd->nargs;
    if (op == IR_CONTAINS) put(o, "contains(");
    putf(o, "%s[", name);
    for (int i = 0; i < last; i++) {
      if (i) put(o, ", ");
      put_node(o, p, nd->args[i], 0, depth + 1);
    }
    put(o, op == IR_CONTAINS ? ", :], " : "]");
    if (op == IR_CONTAINS) { put_node(o, p, nd->args[last], 0, depth + 1); put(o, ")"); }
    break;
  }
  default: {
    const char *in = node_infix(op);
    if (in && nd->nargs == 2) {
      put_node(o, p, nd->args[0], pr, depth + 1);
      put(o, in);
      put_node(o, p, nd->args[1], pr + 1, depth + 1);
    } else {
      putf(o, "%s(", ir_op_name(op));
      for (int i = 0; i < nd->nargs; i++) {
        if (i) put(o, ", ");
        put_node(o, p, nd->args[i], 0, depth + 1);
      }
      put(o, ")");
    }
  }
  }
  if (paren) put(o, ")");
}

char *plan_node_str(const IrPattern *p, int node, Arena *A) {
  Out o = { .A = A };
  put(&o, "");
  if (node < 0) put(&o, "true");
  else put_node(&o, p, node, 0, 0);
  return o.oom ? NULL : o.s;
}

/* ---------------------------------------------------------- the plan */

const char *plan_iter_name(PlanIterKind k) {
  static const char *names[] = { "dense", "ranges", "boxes", "list", "data", "empty" };
  return k <= ITER_EMPTY ? names[k] : "?";
}

static const char *E(Out *o, const PlanExpr *e) { return plan_expr_str(o->A, e); }
static const char *Nd(Out *o, const Plan *pl, int n) { return plan_node_str(pl->pat, n, o->A); }

static const char *cmp_str(int op) {
  switch (op) {
  case IR_LT: return "<"; case IR_LE: return "<="; case IR_GT: return ">";
  case IR_GE: return ">="; case IR_EQ: return "=="; case IR_NE: return "~=";
  default: return "?";
  }
}

static void put_atom(Out *o, const Plan *pl, const Atom *a) {
  const char *kname = a->grid ? "kc" : "k";
  switch (a->kind) {
  case ATOM_QONLY:
    putf(o, "qonly %s%s", a->neg ? "~" : "", Nd(o, pl, a->node));
    break;
  case ATOM_KBOUND:
    putf(o, "kbound %s <= %s%d <= %s", a->lo >= 0 ? Nd(o, pl, a->lo) : "-inf", kname,
         a->axis, a->hi >= 0 ? Nd(o, pl, a->hi) : "inf");
    break;
  case ATOM_CONG:
    putf(o, "cong (q%s%d - %s%d) %% %lld == 0", a->grid ? "c" : "", a->axis, kname, a->axis,
         (long long)a->d);
    break;
  case ATOM_LIST:
    putf(o, "list %s %s dim %d unit %lld", a->lkind == LIST_VALUES ? "values" : "scan",
         pl->pat->inputs[a->input].name, a->dim, (long long)a->unit);
    if (a->lkind == LIST_SCAN) putf(o, " when %s %lld", cmp_str(a->cmp), (long long)a->cmpval);
    break;
  case ATOM_DATA:
    putf(o, "data %s %s %s", Nd(o, pl, a->qkey), cmp_str(a->cmp), Nd(o, pl, a->kkey));
    break;
  case ATOM_PERIODIC:
    putf(o, "periodic (k + %lld) %% %lld in %lld .. %lld", (long long)a->per.off, (long long)a->per.m,
         (long long)a->per.lo, (long long)a->per.hi);
    break;
  case ATOM_OPAQUE:
    putf(o, "opaque %s%s (%s)", a->neg ? "~" : "", a->node >= 0 ? Nd(o, pl, a->node) : "?",
         a->why ? a->why : "?");
    break;
  }
}

static void put_box(Out *o, const Plan *pl, const PlanBox *b, int rank, const char *indent) {
  putf(o, "%smay %s\n%smust %s\n", indent, E(o, b->may), indent, E(o, b->must));
  for (int a = 0; a < rank; a++)
    putf(o, "%saxis %d: visit %s .. %s, full %s .. %s\n", indent, a, E(o, b->ax[a].lo),
         E(o, b->ax[a].hi), E(o, b->ax[a].flo), E(o, b->ax[a].fhi));
  if (b->per.m > 0)
    putf(o, "%sonly tiles holding a k with (k + %lld) %% %lld in %lld .. %lld\n", indent, (long long)b->per.off,
         (long long)b->per.m, (long long)b->per.lo, (long long)b->per.hi);
  if (b->edge_lo >= 0 && b->edge_hi >= 0)
    putf(o, "%sedges: lower %s; upper %s\n", indent, Nd(o, pl, b->edge_lo), Nd(o, pl, b->edge_hi));
}

static void put_order(Out *o, const char *side, const PlanOrder *ord, bool q) {
  putf(o, "order %s: rank %d tile %lld ntiles %s\n", side, ord->rank, (long long)ord->tile,
       E(o, ord->ntiles));
  for (int a = 0; a < ord->rank; a++) {
    const PlanAxis *ax = &ord->ax[a];
    putf(o, "  axis %d: n %s box %lld dil %lld ntiles %s\n", a, E(o, ax->size), (long long)ax->box,
         (long long)ax->dil, E(o, ax->ntiles));
    if (q) putf(o, "    qlo%d = %s\n    qhi%d = %s\n    qres%d = %s\n", a, E(o, ax->qlo), a, E(o, ax->qhi), a,
                E(o, ax->qres));
  }
}

char *plan_print(const Plan *pl, Arena *A) {
  Out o = { .A = A };
  const IrPattern *p = pl->pat;
  const Schedule *s = &pl->sched;
  putf(&o, "plan \"%s\"\n", p->name ? p->name : "?");
  if (p->grid_rank > 0) {
    put(&o, "grid");
    for (int a = 0; a < p->grid_rank; a++) putf(&o, " %lld", (long long)p->grid[a]);
    put(&o, "\n");
  }
  putf(&o, "mask %s\n", Nd(&o, pl, p->mask));
  if (pl->notes) putf(&o, "note %s\n", pl->notes);
  if (s->bm > 0) {
    putf(&o, "schedule bm %lld bn %lld order %s warps %d stages %d\n", (long long)s->bm,
         (long long)s->bn, s->grid ? "grid" : "raster", s->warps, s->stages);
    if (s->grid || s->dil[0] > 1) {
      put(&o, "  qbox");
      for (int a = 0; a < s->rank; a++) putf(&o, " %lld", (long long)s->qbox[a]);
      put(&o, " kbox");
      for (int a = 0; a < s->rank; a++) putf(&o, " %lld", (long long)s->kbox[a]);
      put(&o, " dil");
      for (int a = 0; a < s->rank; a++) putf(&o, " %lld", (long long)s->dil[a]);
      put(&o, "\n");
    }
  } else if (s->rank > 0) {
    putf(&o, "order %s rank %d dil", s->grid ? "grid" : "raster", s->rank);
    for (int a = 0; a < s->rank; a++) putf(&o, " %lld", (long long)s->dil[a]);
    put(&o, "\n");
  }
  if (pl->qord.rank > 0 && s->bm > 0) {
    put_order(&o, "q", &pl->qord, true);
    put_order(&o, "kv", &pl->kord, false);
  }
  for (int v = 0; v < pl->nvariants; v++) {
    const PlanVariant *var = &pl->variants[v];
    putf(&o, "variant %d heads %s\n", v, var->heads ? E(&o, var->heads) : "rest");
    putf(&o, "  mask %s\n", Nd(&o, pl, var->mask));
    if (pl->dnf) {
      const Dnf *f = &pl->dnf[v];
      putf(&o, "  dnf %d term%s%s%s\n", f->nterms, f->nterms == 1 ? "" : "s",
           f->why ? ": " : "", f->why ? f->why : "");
      for (int t = 0; t < f->nterms; t++) {
        putf(&o, "  term %d:%s\n", t, f->terms[t].natoms ? "" : " true");
        for (int i = 0; i < f->terms[t].natoms; i++) {
          put(&o, "    ");
          put_atom(&o, pl, &f->terms[t].atoms[i]);
          put(&o, "\n");
        }
      }
    }
    if (!pl->iterated) continue;
    const PlanIter *it = &var->it;
    putf(&o, "  iterator %s%s%s\n", plan_iter_name(it->kind), it->reason ? ": " : "",
         it->reason ? it->reason : "");
    for (int i = 0; i < it->nboxes; i++) {
      putf(&o, "  box %d (term %d)\n", i, it->boxes[i].term);
      put_box(&o, pl, &it->boxes[i], pl->kord.rank, "    ");
    }
    if (it->list) {
      const PlanList *L = it->list;
      putf(&o, "  list %s %s dim %d len %s unit %lld nvals %s%s\n",
           L->kind == LIST_VALUES ? "values" : "scan", p->inputs[L->input].name, L->dim, E(&o, L->len),
           (long long)L->unit, E(&o, L->nvals), L->full ? " full" : "");
      if (L->kind == LIST_SCAN) putf(&o, "    when element %s %lld\n", cmp_str(L->cmp), (long long)L->cmpval);
      for (int i = 0; i < p->inputs[L->input].rank; i++)
        if (i != L->dim)
          putf(&o, "    row[%d] = %s%s%s\n", i, E(&o, L->row[i]), i == L->vdim ? " .. " : "",
               i == L->vdim ? E(&o, L->row_hi) : "");
      put(&o, "    clip\n");
      put_box(&o, pl, &L->clip, 1, "      ");
    }
    if (it->data) {
      const PlanData *D = it->data;
      putf(&o, "  data %s %s %s%s%s\n", Nd(&o, pl, D->qkey), cmp_str(D->cmp), Nd(&o, pl, D->kkey),
           D->per_b ? " per-b" : "", D->per_h ? " per-h" : "");
      put(&o, "    clip\n");
      put_box(&o, pl, &D->clip, 1, "      ");
    }
  }
  return o.oom ? NULL : o.s;
}
