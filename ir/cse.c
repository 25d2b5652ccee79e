/*
** cse.c -- common subexpression elimination and dead-node removal.
**
** Hash-consing: in one forward sweep, a node equal to an earlier one
** (same op, type, arguments after renaming, and immediate where the op has
** one; floats compared by bits) becomes that earlier node, which keeps
** its line. Then the nodes mask and score do not reach are dropped and the
** rest renumbered in their old relative order, so the result is still
** topological and does not depend on hash table details.
*/
#include <string.h>

#include "ir/ir.h"

static bool has_imm(IrOp op) {
  return op == IR_CONST || op == IR_QC || op == IR_KC || op == IR_LOAD || op == IR_CONTAINS;
}

/* the node's identity: everything but its line; unused fields zeroed */
static IrNode key_of(const IrNode *n) {
  IrNode k;
  memset(&k, 0, sizeof k);
  k.op = n->op;
  k.type = n->type;
  k.nargs = n->nargs;
  for (int j = 0; j < n->nargs && j < IR_MAXARGS; j++) k.args[j] = n->args[j];
  if (n->op < IR_NOPS && has_imm((IrOp)n->op)) k.imm.i = n->imm.i;   /* a double's bits too */
  return k;
}

static bool same(const IrNode *a, const IrNode *b) {
  if (a->op != b->op || a->type != b->type || a->nargs != b->nargs || a->imm.i != b->imm.i)
    return false;
  for (int j = 0; j < a->nargs; j++)
    if (a->args[j] != b->args[j]) return false;
  return true;
}

static uint64_t hash_of(const IrNode *k) {
  uint64_t h = UINT64_C(0xcbf29ce484222325);
  uint64_t words[3 + IR_MAXARGS] = { k->op, k->type, (uint64_t)k->imm.i };
  for (int j = 0; j < k->nargs; j++) words[3 + j] = (uint32_t)k->args[j];
  for (int w = 0; w < 3 + IR_MAXARGS; w++) {
    h ^= words[w];
    h *= UINT64_C(0x100000001b3);
    h ^= h >> 29;
  }
  return h;
}

/*
** Share equal nodes: out gets one node per distinct identity, map[old]
** its index there. The table (open addressing, a power of two at least
** twice n) holds out indices + 1. Returns the count of out.
*/
static int share(const IrPattern *p, IrNode *out, int *map, int *table, size_t size) {
  int nout = 0;
  for (int i = 0; i < p->nnodes; i++) {
    IrNode k = key_of(&p->nodes[i]);
    for (int j = 0; j < k.nargs; j++) k.args[j] = map[k.args[j]];
    size_t h = (size_t)hash_of(&k) & (size_t)(size - 1);
    while (table[h] && !same(&out[table[h] - 1], &k)) h = (h + 1) & (size - 1);
    if (!table[h]) {
      k.line = p->nodes[i].line;
      out[nout] = k;
      table[h] = ++nout;
    }
    map[i] = table[h] - 1;
  }
  return nout;
}

/* drop what mask and score do not reach; renumber in order; new count */
static int sweep(IrNode *out, int nout, int *mask, int *score, char *live, int *newid) {
  if (*mask >= 0) live[*mask] = 1;
  if (*score >= 0) live[*score] = 1;
  for (int i = nout - 1; i >= 0; i--)
    if (live[i])
      for (int j = 0; j < out[i].nargs; j++) live[out[i].args[j]] = 1;
  int n = 0;
  for (int i = 0; i < nout; i++) {
    if (!live[i]) continue;
    newid[i] = n;
    out[n] = out[i];
    for (int j = 0; j < out[n].nargs; j++) out[n].args[j] = newid[out[n].args[j]];
    n++;
  }
  if (*mask >= 0) *mask = newid[*mask];
  if (*score >= 0) *score = newid[*score];
  return n;
}

/*
** CSE and dead-node removal on p (which must verify). The new node array
** comes from p's arena; the temporaries from a scratch arena.
*/
attnc_status ir_cse(IrPattern *p, Diag *d) {
  int n = p->nnodes;
  for (int i = 0; i < n; i++) {
    if (p->nodes[i].nargs > IR_MAXARGS)
      return diag_error(d, ATTNC_ERR_INTERNAL, ir_node_loc(p, i), "cse: node %d has %d arguments",
                        i, p->nodes[i].nargs);
    for (int j = 0; j < p->nodes[i].nargs; j++)
      if (p->nodes[i].args[j] < 0 || p->nodes[i].args[j] >= i)
        return diag_error(d, ATTNC_ERR_INTERNAL, ir_node_loc(p, i),
                          "cse: node %d has argument %d out of order", i, p->nodes[i].args[j]);
  }
  if (p->mask >= n || p->score >= n)
    return diag_error(d, ATTNC_ERR_INTERNAL, ir_loc(p, 0), "cse: root out of range");
  if (n <= 0) return ATTNC_OK;
  size_t size = 16;
  while (size < 2 * (size_t)n) size *= 2;
  Arena scratch;
  arena_init(&scratch);
  IrNode *out = arena_alloc(p->arena, sizeof(IrNode) * (size_t)n);
  int *map = arena_alloc(&scratch, sizeof(int) * (size_t)n);
  int *newid = arena_alloc(&scratch, sizeof(int) * (size_t)n);
  int *table = arena_alloc(&scratch, sizeof(int) * size);
  char *live = arena_alloc(&scratch, (size_t)n);
  if (!out || !map || !newid || !table || !live) {
    arena_free(&scratch);
    return diag_error(d, ATTNC_ERR_NOMEM, ir_loc(p, 0), "out of memory");
  }
  int nout = share(p, out, map, table, size);
  int mask = p->mask >= 0 ? map[p->mask] : p->mask;
  int score = p->score >= 0 ? map[p->score] : p->score;
  nout = sweep(out, nout, &mask, &score, live, newid);
  arena_free(&scratch);
  p->nodes = out;
  p->cap = n;
  p->nnodes = nout;
  p->mask = mask;
  p->score = score;
  return ATTNC_OK;
}
