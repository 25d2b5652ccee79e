/*
** normalize.c -- the normalize pass: the plan's own copy of the pattern.
**
** The pattern given to plan_build is the spec's and stays untouched; the
** passes add nodes (per-head masks, bounds) to this copy. Declarations
** (params, inputs, names) are shared with the original, which must
** outlive the plan.
*/
#include <string.h>

#include "passes/passes.h"

attnc_status pass_normalize(PassCtx *pc) {
  Plan *pl = pc->plan;
  const IrPattern *src = pl->pat;
  IrPattern *p = arena_alloc(pl->arena, sizeof *p);
  IrNode *nodes = arena_alloc(pl->arena, sizeof(IrNode) * (size_t)(src->nnodes + 1));
  if (!p || !nodes) return diag_error(pc->d, ATTNC_ERR_NOMEM, ir_loc(src, 0), "out of memory");
  *p = *src;
  if (src->nnodes) memcpy(nodes, src->nodes, sizeof(IrNode) * (size_t)src->nnodes);
  p->nodes = nodes;
  p->cap = src->nnodes + 1;
  p->arena = pl->arena;
  pl->pat = p;
  pl->deps = NULL;
  if (p->mask >= p->nnodes || p->score >= p->nnodes)
    return diag_error(pc->d, ATTNC_ERR_INTERNAL, ir_loc(p, 0), "mask or score root out of range");
  if (p->mask >= 0 && p->nodes[p->mask].type != IR_BOOL)
    return diag_error(pc->d, ATTNC_ERR_INTERNAL, ir_node_loc(p, p->mask), "the mask is not boolean");
  return ATTNC_OK;
}
