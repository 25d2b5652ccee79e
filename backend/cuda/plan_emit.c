/*
** plan_emit.c -- the kernel's token orders and kv iterators, from the
** passes' Plan (passes/passes.h) or, without one, raster order and a dense
** iteration with the mask on every tile.
**
** Emitted interface (used by the fixed kernel text in emit.c):
**   struct QTile; bool q_tile_begin(qt, p, b, h, t)   q tile t's coordinates,
**                                                     variant; false = padding
**   int q_token(qt, pos)        token of a q tile position, -1 for padding
**   int kv_token(u, pos, seq_k) token of a kv tile position, -1 for padding
**   struct KvTile { tile, full }; struct KvIter;
**   void kv_begin(it, p, qt, b, h); bool kv_next(it, p, qt, b, h, &tile)
** Plan expressions print as exact i64 C (plan_c below), with the helpers
** attnc_fdiv / attnc_cdiv / attnc_fmod / attnc_min / attnc_max of emit.c.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda.h"

enum { DATA_PER = 2 };   /* kv tiles a thread tests a fill (kDataPer, see emit_plan_order_iter) */

/* ------------------------------------------------------------ orders */

int64_t cuda_order_ntiles(const CudaOrder *o, int64_t seqlen) {
  int64_t t = 1;
  for (int a = 0; a < o->rank; a++) {
    int64_t n = o->n[a] ? o->n[a] : seqlen, bd = o->box[a] * o->dil[a];
    t *= o->dil[a] * ((n + bd - 1) / bd);
  }
  return t;
}

static attnc_status order_from_plan(const PlanOrder *po, int64_t tile, CudaOrder *o,
                                    const char *side, Diag *d) {
  memset(o, 0, sizeof *o);
  o->rank = po->rank;
  int64_t prod = 1;
  for (int a = 0; a < po->rank; a++) {
    o->n[a] = po->ax[a].n;
    o->box[a] = po->ax[a].box;
    o->dil[a] = po->ax[a].dil > 0 ? po->ax[a].dil : 1;
    prod *= o->box[a];
    if (o->n[a] == 0 && po->rank != 1)
      return diag_error(d, ATTNC_ERR_INTERNAL, (Loc){ NULL, 0 },
                        "cuda backend: %s order of rank %d has a runtime axis (a compiler bug)",
                        side, po->rank);
  }
  if (po->rank < 1 || po->rank > IR_MAXGRID || prod != tile)
    return diag_error(d, ATTNC_ERR_INTERNAL, (Loc){ NULL, 0 },
                      "cuda backend: %s order boxes hold %lld positions, tile is %lld (a compiler bug)",
                      side, (long long)prod, (long long)tile);
  return ATTNC_OK;
}

/*
** Tiles and orders from the plan. Warps are the kernel's choice: one m16
** atom per warp, or two when S and O of D <= 64 fit the registers twice
** (FA2: 128x64 tiles with 4 warps at d=64, 8 warps at d=128).
*/
attnc_status cuda_config_from_plan(const Plan *plan, CudaConfig *cfg, Diag *d) {
  cfg->block_m = (int)plan->sched.bm;
  cfg->block_n = (int)plan->sched.bn;
  if (!cfg->head_dim_v) cfg->head_dim_v = cfg->head_dim;
  int dmax = cfg->head_dim > cfg->head_dim_v ? cfg->head_dim : cfg->head_dim_v;
  int mw = dmax <= 64 && cfg->block_n <= 64 && cfg->block_m >= 128 && cfg->block_m % 32 == 0 ? 2 : 1;
  cfg->warps = cfg->block_m % 16 == 0 ? cfg->block_m / (16 * mw) : 1;
  /* ATTNC_CUDA_WARPS=N: warps per CTA (block_m / (16 N) m16 atoms per warp), for
     benchmark sweeps (bench/gpu/bench.py --sweep); ignored when it does not divide */
  const char *ew = getenv("ATTNC_CUDA_WARPS");
  int w = ew ? atoi(ew) : 0;
  if (w > 0 && cfg->block_m % (16 * w) == 0 && cfg->block_m / (16 * w) <= 4) cfg->warps = w;
  attnc_status st;
  if ((st = order_from_plan(&plan->qord, plan->sched.bm, &cfg->qord, "q", d)) ||
      (st = order_from_plan(&plan->kord, plan->sched.bn, &cfg->kord, "kv", d)))
    return st;
  cfg->persist = cuda_persist_wanted(plan, cfg);
  return cuda_config_finish(plan->pat, cfg, d);
}

/*
** Pins for plan_build: the cuda target, and tiles small enough for shared
** memory at head dim 256. A user's pins are kept.
*/
void cuda_plan_options(const CudaConfig *cfg, PlanOptions *opt) {
  cuda_plan_options_for(NULL, cfg, opt);
}

/*
** The tile table, measured on an H200 with bench/gpu/bench.py --sweep.
** mma.sync (sm_80, or ATTNC_CUDA_WGMMA=0; bench/results/gpu-h200-baseline-
** sweep.md): D <= 64: 128 x 64, 4 warps of two m16 atoms (dense 254 -> 291
** TFLOP/s, swin 133 -> 161); D = 96, 128: 64 x 64, 4 warps of one atom
** (dense 260 -> 272, sliding window 179 -> 201, dilated 107 -> 153).
** wgmma (sm_90a, bench/results/gpu-h200-wgmma-sweep.md): D <= 64: 128 x 64,
** two warpgroups (dense 348 against 322 at 64 x 64), and on sequences
** 192 x 128, three warpgroups with a producer warpgroup (cfg->ws; dense
** 379 against 339, gpu-h200-ws-sweep.md); D = 128: 128 x 128
** (dense 404 against 356 at 64 x 64, causal 357 against 350). D = 256:
** 64 x 64. Patterns with runtime inputs keep the tile pass's choice (a
** list's kv tile must divide its block).
*/
void cuda_plan_options_for(const IrPattern *p, const CudaConfig *cfg, PlanOptions *opt) {
  opt->target = ATTNC_TARGET_CUDA;
  opt->D = cfg->head_dim;
  int dmax = cfg->head_dim > cfg->head_dim_v ? cfg->head_dim : cfg->head_dim_v;
  if (opt->pin.pin_tile) return;
  bool wgmma = cuda_wgmma_allowed(cfg->arch) && dmax <= 128 && dmax % 64 == 0;
  if (dmax > 128) {
    opt->pin.bm = 64;
    opt->pin.bn = 64;
    opt->pin.pin_tile = true;
  } else if (p && p->ninputs == 0) {
    opt->pin.bm = dmax <= 64 || wgmma ? 128 : 64;
    opt->pin.bn = wgmma && dmax > 64 ? 128 : 64;
    if (wgmma && dmax <= 64 && p->grid_rank == 0) {   /* three warpgroups and a producer */
      opt->pin.bm = 192;
      opt->pin.bn = 128;
    }
    opt->pin.pin_tile = true;
  }
}

/* ---------------------------------------------------- plan expressions */

static const char *var_c(PlanVar v, int axis, char *buf, size_t n) {
  switch (v) {
  case PV_B: return "(i64)b";
  case PV_H: return "(i64)h";
  case PV_SQ: return "(i64)seq_q";
  case PV_SK: return "(i64)seq_k";
  case PV_QT: snprintf(buf, n, "qt.u[%d]", axis); return buf;
  case PV_QLO: snprintf(buf, n, "qt.lo[%d]", axis); return buf;
  case PV_QHI: snprintf(buf, n, "qt.hi[%d]", axis); return buf;
  case PV_QRES: snprintf(buf, n, "(i64)qt.res[%d]", axis); return buf;
  default: return "0";
  }
}

/* print e as an i64 C expression */
static void plan_c(Out *o, const PlanExpr *e) {
  if (!e) { out_puts(o, "0LL"); return; }
  static const char *const fn[PE_NOPS] = {
    [PE_FDIV] = "attnc_fdiv", [PE_CDIV] = "attnc_cdiv", [PE_FMOD] = "attnc_fmod",
    [PE_MIN] = "attnc_min", [PE_MAX] = "attnc_max",
  };
  static const char *const bin[PE_NOPS] = {
    [PE_ADD] = " + ", [PE_SUB] = " - ", [PE_MUL] = " * ",
    [PE_LT] = " < ", [PE_LE] = " <= ", [PE_EQ] = " == ", [PE_NE] = " != ",
    [PE_AND] = " && ", [PE_OR] = " || ",
  };
  char buf[32];
  switch ((PlanExprOp)e->op) {
  case PE_CONST: out_printf(o, e->v < 0 ? "(%lldLL)" : "%lldLL", (long long)e->v); return;
  case PE_VAR: out_puts(o, var_c((PlanVar)e->var, e->axis, buf, sizeof buf)); return;
  case PE_NEG: out_puts(o, "(-"); plan_c(o, e->a[0]); out_puts(o, ")"); return;
  case PE_NOT: out_puts(o, "(i64)!("); plan_c(o, e->a[0]); out_puts(o, ")"); return;
  case PE_SELECT:
    out_puts(o, "(("); plan_c(o, e->a[0]); out_puts(o, ") ? ");
    plan_c(o, e->a[1]); out_puts(o, " : "); plan_c(o, e->a[2]); out_puts(o, ")");
    return;
  case PE_FDIV: case PE_CDIV: case PE_FMOD: case PE_MIN: case PE_MAX:
    out_printf(o, "%s(", fn[e->op]);
    plan_c(o, e->a[0]); out_puts(o, ", "); plan_c(o, e->a[1]); out_puts(o, ")");
    return;
  case PE_LT: case PE_LE: case PE_EQ: case PE_NE: case PE_AND: case PE_OR:
    out_puts(o, "(i64)("); plan_c(o, e->a[0]); out_puts(o, bin[e->op]);
    plan_c(o, e->a[1]); out_puts(o, ")");
    return;
  case PE_ADD: case PE_SUB: case PE_MUL:
    out_puts(o, "("); plan_c(o, e->a[0]); out_puts(o, bin[e->op]);
    plan_c(o, e->a[1]); out_puts(o, ")");
    return;
  default: out_puts(o, "0LL"); return;
  }
}

/* ------------------------------------------------------------- init */

static const char *iter_kind_name(PlanIterKind k) {
  static const char *const n[] = { "dense", "ranges", "boxes", "list", "data", "empty" };
  return k <= ITER_EMPTY ? n[k] : "?";
}

/* list and data iterators need 1-D kv orders without residue groups */
static bool data_walkable(const Plan *plan) {
  return plan->kord.rank == 1 && plan->kord.ax[0].dil <= 1 && plan->qord.rank == 1 &&
         plan->qord.ax[0].dil <= 1;
}

/* the iterator kinds this emitter walks; the others fall back to dense */
static bool iter_supported(PlanIterKind k) {
  return k == ITER_DENSE || k == ITER_RANGES || k == ITER_BOXES || k == ITER_EMPTY ||
         k == ITER_LIST || k == ITER_DATA;
}

attnc_status emit_plan_init(EmitPlan *ep, const IrPattern *p, const Plan *plan,
                            const CudaConfig *cfg, Diag *d) {
  memset(ep, 0, sizeof *ep);
  ep->plan = plan;
  ep->cfg = cfg;
  ep->pat = plan ? plan->pat : p;
  for (int v = 0; v < EMIT_MAX_VARIANTS; v++) ep->data_qkey[v] = ep->data_kkey[v] = -1;
  ep->edge_lo = ep->edge_hi = -1;
  if (!(ep->dep = calloc(ep->pat->nnodes > 0 ? (size_t)ep->pat->nnodes : 1, sizeof *ep->dep)))
    return diag_error(d, ATTNC_ERR_NOMEM, (Loc){ NULL, 0 }, "out of memory");
  pattern_deps(ep->pat, ep->dep);
  if (!plan) {
    ep->nvariants = 1;
    ep->masks[0] = p->mask;
    snprintf(ep->order_name, sizeof ep->order_name, "raster");
    snprintf(ep->iter_name, sizeof ep->iter_name, "dense (no plan: the mask on every tile)");
    return ATTNC_OK;
  }
  if (plan->nvariants < 1 || plan->nvariants > EMIT_MAX_VARIANTS)
    return diag_error(d, ATTNC_ERR_UNSUPPORTED, (Loc){ NULL, 0 },
                      "the cuda backend handles 1 to %d head variants (the plan has %d)",
                      EMIT_MAX_VARIANTS, plan->nvariants);
  if (cfg->block_m != plan->sched.bm || cfg->block_n != plan->sched.bn ||
      cfg->qord.rank != plan->qord.rank || cfg->kord.rank != plan->kord.rank)
    return diag_error(d, ATTNC_ERR_INTERNAL, (Loc){ NULL, 0 },
                      "cuda backend: config does not match the plan (use cuda_config_from_plan)");
  ep->nvariants = plan->nvariants;
  size_t k = 0;
  for (int v = 0; v < plan->nvariants; v++) {
    ep->masks[v] = plan->variants[v].mask;
    PlanIterKind kind = plan->variants[v].it.kind;
    const PlanData *D = plan->variants[v].it.data;
    if (kind == ITER_DATA && D && data_walkable(plan)) {
      ep->data_qkey[v] = D->qkey;
      ep->data_kkey[v] = D->kkey;
    }
    k += (size_t)snprintf(ep->iter_name + k, k < sizeof ep->iter_name ? sizeof ep->iter_name - k : 0,
                          "%s%s%s", v ? ", " : "", iter_kind_name(kind),
                          iter_supported(kind) ? "" : " (as dense)");
  }
  const PlanBox *eb = plan_edge_box(plan);
  if (eb) {
    ep->edge_lo = eb->edge_lo;
    ep->edge_hi = eb->edge_hi;
  }
  const PlanOrder *q = &plan->qord;
  k = (size_t)snprintf(ep->order_name, sizeof ep->order_name, "%s box",
                       q->rank > 1 ? "grid" : "1-D");
  for (int a = 0; a < q->rank && k < sizeof ep->order_name; a++)
    k += (size_t)snprintf(ep->order_name + k, sizeof ep->order_name - k, "%s%lld",
                          a ? "x" : " ", (long long)q->ax[a].box);
  for (int a = 0; a < q->rank && k < sizeof ep->order_name; a++)
    if (q->ax[a].dil > 1)
      k += (size_t)snprintf(ep->order_name + k, sizeof ep->order_name - k, " dil%d=%lld", a,
                            (long long)q->ax[a].dil);
  return ATTNC_OK;
}

void emit_plan_free(EmitPlan *ep) {
  free(ep->dep);
  ep->dep = NULL;
}

/* ----------------------------------------------------- order sections */

/* the size of axis a as C: a constant or the runtime length */
static void axis_n(char *buf, size_t n, const CudaOrder *o, int a, const char *seq) {
  if (o->n[a]) snprintf(buf, n, "%lld", (long long)o->n[a]);
  else snprintf(buf, n, "%s", seq);
}

static void emit_order_comment(Out *o, const char *side, const CudaOrder *ord) {
  out_printf(o, "// %s order, %d axis%s (slowest first):", side, ord->rank, ord->rank > 1 ? "es" : "");
  for (int a = 0; a < ord->rank; a++) {
    if (ord->n[a]) out_printf(o, " [n %lld", (long long)ord->n[a]);
    else out_printf(o, " [n runtime");
    out_printf(o, ", box %lld, dil %lld]", (long long)ord->box[a], (long long)ord->dil[a]);
  }
  out_puts(o, "\n");
}

/* token strides of a row-major grid (only constant axes past the first) */
static int64_t axis_stride(const CudaOrder *o, int a) {
  int64_t s = 1;
  for (int j = a + 1; j < o->rank; j++) s *= o->n[j];
  return s;
}

static void emit_q_order(Out *o, const CudaOrder *q, const EmitPlan *ep) {
  int R = q->rank;
  out_puts(o, "\n// ---- token order\n");
  emit_order_comment(o, "q", q);
  out_puts(o,
    "// Tile coordinate u on an axis of n positions, box B, dilation d: T = d*ceil(n/(B*d))\n"
    "// tiles; residue class res = u / (T/d), tj = u % (T/d); in-tile position i holds\n"
    "// coordinate res + d*(tj*B + i), valid below n. Tokens are row-major over the axes.\n");
  out_printf(o, "static constexpr int kQRank = %d;\n", R);
  out_puts(o,
    "struct QTile {\n"
    "  int variant;                      // head variant of the mask (0 when one)\n"
    "  int res[kQRank], tj[kQRank];      // residue class, tile within it, per axis\n"
    "  i64 u[kQRank], lo[kQRank], hi[kQRank];   // tile coordinate, first / last valid coordinate\n"
    "  int seq_q;\n"
    "  int t;                            // the tile's index (q_tile_begin's t)\n"
    "};\n");
  out_puts(o, "ATTNC_DEVICE bool q_tile_begin(QTile &qt, const Params &p, int b, int h, int t) {\n"
              "  const int seq_q = (int)p.seq_q, seq_k = (int)p.seq_k;\n"
              "  (void)seq_k;\n"
              "  qt.seq_q = seq_q;\n"
              "  qt.t = t;\n");
  for (int a = R - 1; a >= 0; a--) {
    char n[32];
    axis_n(n, sizeof n, q, a, "seq_q");
    long long B = (long long)q->box[a], D = (long long)q->dil[a];
    out_printf(o, "  {  // axis %d\n", a);
    out_printf(o, "    const int n = %s, tiles = %lld * ((n + %lld - 1) / %lld), per_res = tiles / %lld;\n",
               n, D, B * D, B * D, D);
    if (a > 0) out_printf(o, "    qt.u[%d] = t %% tiles;\n    t /= tiles;\n", a);
    else out_printf(o, "    qt.u[%d] = t;\n", a);
    out_printf(o, "    qt.res[%d] = (int)qt.u[%d] / per_res;\n", a, a);
    out_printf(o, "    qt.tj[%d] = (int)qt.u[%d] %% per_res;\n", a, a);
    out_printf(o, "    qt.lo[%d] = qt.res[%d] + %lldLL * qt.tj[%d] * %lld;\n", a, a, D, a, B);
    out_printf(o, "    qt.hi[%d] = qt.res[%d] + %lldLL * attnc_min((i64)qt.tj[%d] * %lld + %lld, "
                  "attnc_fdiv((i64)n - 1 - qt.res[%d], %lldLL));\n", a, a, D, a, B, B - 1, a, D);
    out_printf(o, "    if (qt.hi[%d] < qt.lo[%d]) return false;\n  }\n", a, a);
  }
  /* variants by head */
  if (ep->nvariants <= 1 || !ep->plan) {
    out_puts(o, "  qt.variant = 0;\n");
  } else {
    /* the first variant whose heads predicate holds; else the last */
    out_printf(o, "  qt.variant = %d;\n", ep->nvariants - 1);
    for (int v = ep->nvariants - 1; v >= 0; v--) {
      const PlanExpr *hp = ep->plan->variants[v].heads;
      if (!hp) { out_printf(o, "  qt.variant = %d;\n", v); continue; }
      out_puts(o, "  if (");
      plan_c(o, hp);
      out_printf(o, ") qt.variant = %d;\n", v);
    }
  }
  out_puts(o, "  return true;\n}\n");

  /* branch-free (a validity flag, not an early return): the mask code
  ** unrolls over a lane's columns, and a branch per column would split it */
  out_puts(o, "ATTNC_DEVICE int q_token(const QTile &qt, int pos) {\n  int tok = 0;\n  bool ok = true;\n");
  for (int a = R - 1; a >= 0; a--) {
    char n[32];
    axis_n(n, sizeof n, q, a, "qt.seq_q");
    long long B = (long long)q->box[a], D = (long long)q->dil[a];
    out_printf(o, "  {  // axis %d\n", a);
    if (a > 0) out_printf(o, "    const int i = pos %% %lld;\n    pos /= %lld;\n", B, B);
    else out_puts(o, "    const int i = pos;\n");
    out_printf(o, "    const int c = qt.res[%d] + %lld * (qt.tj[%d] * %lld + i);\n", a, D, a, B);
    out_printf(o, "    ok = ok && c < %s;\n", n);
    long long st = (long long)axis_stride(q, a);
    if (st == 1) out_puts(o, "    tok += c;\n  }\n");
    else out_printf(o, "    tok += c * %lld;\n  }\n", st);
  }
  out_puts(o, "  return ok ? tok : -1;\n}\n");
}

static void emit_kv_order(Out *o, const CudaOrder *k) {
  int R = k->rank;
  emit_order_comment(o, "kv", k);
  out_printf(o, "static constexpr int kKvRank = %d;\n", R);
  out_printf(o, "static constexpr int kKvDil = %lld;   // a 1-D order's dilation (TMA: tokens / d x d)\n",
             R == 1 ? (long long)k->dil[0] : 1LL);
  /* tiles per axis */
  out_puts(o, "ATTNC_DEVICE int kv_axis_tiles(int a, int seq_k) {\n  switch (a) {\n");
  for (int a = 0; a < R; a++) {
    char n[32];
    axis_n(n, sizeof n, k, a, "seq_k");
    long long B = (long long)k->box[a], D = (long long)k->dil[a];
    out_printf(o, "  case %d: return %lld * ((%s + %lld - 1) / %lld);\n", a, D, n, B * D, B * D);
  }
  out_puts(o, "  default: return 1;\n  }\n}\n");
  out_puts(o, "ATTNC_DEVICE int kv_tiles(int seq_k) {\n  int t = 1;\n"
              "#pragma unroll\n  for (int a = 0; a < kKvRank; ++a) t *= kv_axis_tiles(a, seq_k);\n"
              "  return t;\n}\n");
  out_puts(o, "// the kv tile index of per-axis tile coordinates (row-major)\n"
              "ATTNC_DEVICE int kv_tile_index(const int (&u)[kKvRank], int seq_k) {\n  int t = 0;\n"
              "#pragma unroll\n  for (int a = 0; a < kKvRank; ++a) t = t * kv_axis_tiles(a, seq_k) + u[a];\n"
              "  return t;\n}\n");
  /* kWhole: the caller knows the tile has no padding (kv_tile_whole), so
  ** the bounds checks fold away */
  out_puts(o, "// the token at position pos of kv tile u, and whether it exists (else padding)\n"
              "template <bool kWhole = false>\n"
              "ATTNC_DEVICE bool kv_place(int u, int pos, int seq_k, int &tok, int (&cs)[kKvRank]) {\n"
              "  tok = 0;\n  bool ok = true;\n");
  for (int a = R - 1; a >= 0; a--) {
    char n[32];
    axis_n(n, sizeof n, k, a, "seq_k");
    long long B = (long long)k->box[a], D = (long long)k->dil[a];
    out_printf(o, "  {  // axis %d\n", a);
    if (a > 0) out_printf(o, "    const int tiles = kv_axis_tiles(%d, seq_k), ua = u %% tiles;\n"
                             "    u /= tiles;\n", a);
    else out_puts(o, "    const int ua = u;\n");
    if (a > 0) out_printf(o, "    const int i = pos %% %lld;\n    pos /= %lld;\n", B, B);
    else out_puts(o, "    const int i = pos;\n");
    if (D == 1)
      out_printf(o, "    const int c = ua * %lld + i;\n", B);
    else {
      if (a == 0) out_printf(o, "    const int tiles = kv_axis_tiles(%d, seq_k);\n", a);
      out_printf(o, "    const int per_res = tiles / %lld;\n"
                    "    const int c = ua / per_res + %lld * ((ua %% per_res) * %lld + i);\n", D, D, B);
    }
    out_printf(o, "    ok = ok && (kWhole || c < %s);\n    cs[%d] = c;\n", n, a);
    long long st = (long long)axis_stride(k, a);
    if (st == 1) out_puts(o, "    tok += c;\n  }\n");
    else out_printf(o, "    tok += c * %lld;\n  }\n", st);
  }
  out_puts(o, "  return ok;\n}\n"
              "template <bool kWhole = false>\n"
              "ATTNC_DEVICE bool kv_place(int u, int pos, int seq_k, int &tok) {\n"
              "  int cs[kKvRank];\n  return kv_place<kWhole>(u, pos, seq_k, tok, cs);\n}\n");
  /* a TMA box starts at the coordinates of the tile's position 0, padding or not */
  out_puts(o, "// the first coordinate of kv tile u on each axis (a TMA box's origin)\n"
              "ATTNC_DEVICE void kv_origin(int u, int seq_k, int (&c)[kKvRank]) {\n"
              "  int tok;\n  kv_place(u, 0, seq_k, tok, c);\n");
  out_puts(o, "}\n"
              "template <bool kWhole = false>\n"
              "ATTNC_DEVICE int kv_token(int u, int pos, int seq_k) {\n"
              "  int tok;\n  return kv_place<kWhole>(u, pos, seq_k, tok) ? tok : -1;\n}\n");
  /* a tile is whole when its last position exists: position kBlockN - 1 is
  ** the last on every axis (the box's product), and c grows with the
  ** position along each axis */
  long long box = 1;
  for (int a = 0; a < R; a++) box *= (long long)k->box[a];
  out_printf(o, "static_assert(%lld == kBlockN, \"a kv tile is one box\");\n", box);
  out_puts(o, "// whether every position of kv tile u is a token (no padding)\n"
              "ATTNC_DEVICE bool kv_tile_whole(int u, int seq_k) {\n  int tok;\n  return kv_place(u, kBlockN - 1, seq_k, tok);\n}\n");
}

/* --------------------------------------------------------- iterators */

static void emit_dense_iter(Out *o, int v, bool no_plan) {
  out_printf(o, "struct KvIter%d { int next, count; };\n", v);
  out_printf(o, "ATTNC_DEVICE void kv_begin%d(KvIter%d &it, const Params &p, const QTile &qt, int b, int h) {\n"
                "  it.next = 0;\n  it.count = kv_tiles((int)p.seq_k);\n}\n", v, v);
  out_printf(o, "ATTNC_DEVICE bool kv_next%d(KvIter%d &it, const Params &p, const QTile &qt, int b, int h, KvTile &t) {\n"
                "  if (it.next >= it.count) return false;\n"
                "  t.tile = it.next++;\n", v, v);
  if (no_plan)
    out_printf(o, "  t.full = %s && (t.tile + 1) * kBlockN <= (int)p.seq_k;   // no mask: only a ragged tile is partial\n",
               "kNoMask");
  else
    out_puts(o, "  t.full = false;\n");
  out_puts(o, "  return true;\n}\n");
}

static void emit_empty_iter(Out *o, int v) {
  out_printf(o, "struct KvIter%d { int unused; };\n", v);
  out_printf(o, "ATTNC_DEVICE void kv_begin%d(KvIter%d &it, const Params &p, const QTile &qt, int b, int h) { it.unused = 0; }\n", v, v);
  out_printf(o, "ATTNC_DEVICE bool kv_next%d(KvIter%d &it, const Params &p, const QTile &qt, int b, int h, KvTile &t) { return false; }\n", v, v);
}

/* "(expr) != 0" for an optional boolean plan expression (NULL = true) */
static void plan_bool(Out *o, const PlanExpr *e) {
  if (!e) { out_puts(o, "true"); return; }
  out_puts(o, "(");
  plan_c(o, e);
  out_puts(o, ") != 0");
}

static const char *cmp_c(IrOp op) {
  switch (op) {
  case IR_LT: return "<"; case IR_LE: return "<="; case IR_GT: return ">";
  case IR_GE: return ">="; case IR_EQ: return "=="; case IR_NE: return "!=";
  default: return "!=";
  }
}

/* The data iterator's tests of a kv tile (or a group of tiles) whose key_k
   lie in kmin .. kmax against the q tile's key_q range it.qmin .. it.qmax:
   may any pair meet (dvis), must every pair (dfull)? passes/visit.c is the
   reference. A group's range holds its tiles', so dvis on it is true where
   it is for any of them. */
static void data_tests(const PlanData *D, const char **dvis, const char **dfull) {
  switch (D->cmp) {
  case IR_EQ: *dvis = "kmin <= it.qmax && kmax >= it.qmin";
              *dfull = "it.qmin == it.qmax && kmin == kmax && it.qmin == kmin"; break;
  case IR_GE: *dvis = "kmin <= it.qmax"; *dfull = "kmax <= it.qmin"; break;
  case IR_GT: *dvis = "kmin < it.qmax"; *dfull = "kmax < it.qmin"; break;
  case IR_LE: *dvis = "kmax >= it.qmin"; *dfull = "kmin >= it.qmax"; break;
  case IR_LT: *dvis = "kmax > it.qmin"; *dfull = "kmin > it.qmax"; break;
  default: *dvis = "true"; *dfull = "false"; break;
  }
}

/*
** Boxes (1-D ranges are boxes of rank 1), then an index list. Box bounds
** are computed once per CTA; kv_next walks box after box row-major
** (clamped to existing tiles), skips tiles an earlier box visited, and
** calls a tile full when any box's full range holds it. The list part
** (ITER_LIST) reads the q tile's rows of the input element by element:
** each in-range value not seen earlier in the rows names kv tiles
** v*unit/bn .. (v*unit+unit-1)/bn, visited unless a box holds them or the
** clip excludes them (passes/visit.c is the reference).
*/
static void emit_box_iter(Out *o, int v, const PlanIter *it, int rank, const EmitPlan *ep) {
  int nb = it->nboxes;
  const PlanList *L = it->kind == ITER_LIST ? it->list : NULL;
  const PlanData *D = it->kind == ITER_DATA ? it->data : NULL;
  const IrPattern *pat = ep->pat;
  char id[64] = "";
  int irank = 0;
  if (L) {
    c_ident(pat->inputs[L->input].name, id, sizeof id);
    irank = pat->inputs[L->input].rank;
  }
  int nbs = nb > 0 ? nb : 1;            /* arrays of at least one */
  out_printf(o, "static constexpr int kBoxes%d = %d;\n", v, nb);
  out_printf(o, "struct KvIter%d {\n"
                "  int box;                              // the box being walked (kBoxes: the list)\n"
                "  bool fresh;                           // box not started yet\n"
                "  int u[kKvRank];                       // current tile coordinates\n"
                "  int lo[%d][kKvRank], hi[%d][kKvRank];     // visited tiles per box\n"
                "  int wlo[%d][kKvRank], whi[%d][kKvRank];   // the same clamped to existing tiles\n"
                "  int flo[%d][kKvRank], fhi[%d][kKvRank];   // full tiles per box\n"
                "  bool may[%d], full_ok[%d];\n",
             v, nbs, nbs, nbs, nbs, nbs, nbs, nbs, nbs);
  if (L)
    out_printf(o, "  // the list: input \"%s\", rows row[] with row[%d] in rlo..rhi, elements along dim %d\n"
                  "  i64 row[%d], rlo, rhi, len, nvals, lrow, lj;\n"
                  "  int lt, lt1;                          // tiles of the current value left to visit\n"
                  "  bool clip_may, clip_full, list_full;\n"
                  "  int clip_lo, clip_hi, clip_flo, clip_fhi;\n",
               pat->inputs[L->input].name, L->vdim, L->dim, irank > 0 ? irank : 1);
  if (D)
    out_puts(o, "  // data ranges: key_q over this q tile; kv tiles du..dhi left to walk; the\n"
                "  // chunk cbase..cend-1 of the clip tested (bits in shared memory)\n"
                "  i64 qmin, qmax;\n"
                "  int du, dhi, cbase, cend;\n"
                "  bool clip_may, clip_full;\n"
                "  int clip_lo, clip_hi, clip_flo, clip_fhi;\n");
  out_puts(o, "};\n");
  /* the periodic filters (PlanPeriod): box j holds only the tiles with such a k */
  out_printf(o, "// whether box j admits kv tile u (a periodic filter: a key of (k + off) %% m in lo..hi)\n"
                "ATTNC_DEVICE bool kv_period%d(int j, const int (&u)[kKvRank]) {\n"
                "  switch (j) {\n", v);
  for (int j = 0; j < nb; j++) {
    const PlanPeriod *pp = &it->boxes[j].per;
    if (pp->m <= 0) continue;
    out_printf(o, "  case %d: {   // (k + %lld) %% %lld in %lld .. %lld\n"
                  "    const i64 x = ((i64)u[0] * kBlockN + %lldLL) %% %lldLL, e = x + kBlockN - 1;\n"
                  "    return kBlockN >= %lldLL || (x <= %lldLL && e >= %lldLL) || e - %lldLL >= %lldLL;\n"
                  "  }\n", j, (long long)pp->off, (long long)pp->m, (long long)pp->lo, (long long)pp->hi,
               (long long)pp->off, (long long)pp->m, (long long)pp->m, (long long)pp->hi, (long long)pp->lo,
               (long long)pp->m, (long long)pp->lo);
  }
  out_puts(o, "  default: return true;\n  }\n}\n");
  if (L || D)
    out_printf(o,
      "// kv tile u of the 1-D order lies in a box (which visits it already)\n"
      "ATTNC_DEVICE bool in_boxes%d(const KvIter%d &it, int u) {\n"
      "  const int uu[1] = { u };\n"
      "  bool in = false;\n"
      "#pragma unroll\n"
      "  for (int j = 0; j < kBoxes%d; ++j) in = in || (it.may[j] && in_box(uu, it.lo[j], it.hi[j]) && kv_period%d(j, uu));\n"
      "  return in;\n"
      "}\n", v, v, v, v);
  if (D) {
    out_printf(o, "// the bits of the chunk of kv tiles the iterator walks (data_fill, data_load)\n"
                  "__shared__ u32 data_vis%d[kDataChunk / 32], data_full%d[kDataChunk / 32];\n", v, v);
    /* warp-wide min / max of the keys of a tile (every warp computes the same) */
    out_printf(o,
      "// min and max of key_q over the valid tokens of the q tile, of key_k over kv\n"
      "// tile u (INT32_MAX / INT32_MIN when none): each warp reduces over its lanes\n"
      "ATTNC_DEVICE void data_qrange%d(const Params &p, const QTile &qt, int b, int h, i64 &mn, i64 &mx) {\n"
      "  const int lane = threadIdx.x %% 32, seq_q = (int)p.seq_q, seq_k = (int)p.seq_k;\n"
      "  mn = 2147483647LL;\n  mx = -2147483648LL;\n"
      "  for (int pos = lane; pos < kBlockM; pos += 32) {\n"
      "    const int q = q_token(qt, pos);\n"
      "    if (q < 0) continue;\n"
      "    const i64 key = data_qkey%d(p, b, h, q, 0, seq_q, seq_k);\n"
      "    mn = attnc_min(mn, key);\n    mx = attnc_max(mx, key);\n"
      "  }\n"
      "#pragma unroll\n"
      "  for (int off = 16; off > 0; off >>= 1) {\n"
      "    mn = attnc_min(mn, (i64)__shfl_xor_sync(0xffffffffu, mn, off));\n"
      "    mx = attnc_max(mx, (i64)__shfl_xor_sync(0xffffffffu, mx, off));\n"
      "  }\n"
      "}\n"
      "ATTNC_DEVICE void data_krange%d(const Params &p, int u, int b, int h, i64 &mn, i64 &mx) {\n"
      "  const int lane = threadIdx.x %% 32, seq_q = (int)p.seq_q, seq_k = (int)p.seq_k;\n"
      "  mn = 2147483647LL;\n  mx = -2147483648LL;\n"
      "  for (int pos = lane; pos < kBlockN; pos += 32) {\n"
      "    const int k = kv_token(u, pos, seq_k);\n"
      "    if (k < 0) continue;\n"
      "    const i64 key = data_kkey%d(p, b, h, 0, k, seq_q, seq_k);\n"
      "    mn = attnc_min(mn, key);\n    mx = attnc_max(mx, key);\n"
      "  }\n"
      "#pragma unroll\n"
      "  for (int off = 16; off > 0; off >>= 1) {\n"
      "    mn = attnc_min(mn, (i64)__shfl_xor_sync(0xffffffffu, mn, off));\n"
      "    mx = attnc_max(mx, (i64)__shfl_xor_sync(0xffffffffu, mx, off));\n"
      "  }\n"
      "}\n", v, v, v, v);
    /* Before any chunk is tested: the groups' ranges from attnc_prep narrow
       du .. dhi to the first through the last group that may meet the q
       tile, so the tiles before a document (at 65536 tokens up to 1024 of
       64, four chunks of tests with their barriers and round trips before
       the first load) are never tested. */
    const char *dvis, *dfull;
    data_tests(D, &dvis, &dfull);
    out_printf(o,
      "// with attnc_prep's group ranges: du .. dhi narrowed to the groups of kDataGroup kv\n"
      "// tiles that may meet this q tile's keys (each warp alike, 32 groups a round)\n"
      "ATTNC_DEVICE void data_narrow%d(KvIter%d &it, const Params &p, int b, int h) {\n"
      "  const int lane = threadIdx.x %% 32, tiles = kv_tiles((int)p.seq_k);\n"
      "  const int glast = it.dhi / kDataGroup;\n"
      "  const i64 *meta = data_meta_groups(p, b, h, tiles);\n"
      "  grid_dep_wait();                      // attnc_prep's ranges (attnc_prep_q runs this)\n"
      "  int first = -1, last = -1;\n"
      "  for (int g0 = it.du / kDataGroup; g0 <= glast; g0 += 32) {\n"
      "    const int g = g0 + lane;\n"
      "    bool may = false;\n"
      "    if (g <= glast) {\n"
      "      const i64 kmin = meta[2 * g], kmax = meta[2 * g + 1];\n"
      "      may = %s;\n"
      "    }\n"
      "    const u32 hit = __ballot_sync(0xffffffffu, may);\n"
      "    if (hit && first < 0) first = g0 + __ffs(hit) - 1;\n"
      "    if (hit) last = g0 + 31 - __clz(hit);\n"
      "  }\n"
      "  if (first < 0) { it.dhi = it.du - 1; return; }\n"
      "  it.du = attnc_max(it.du, first * kDataGroup);\n"
      "  it.dhi = attnc_min(it.dhi, last * kDataGroup + kDataGroup - 1);\n"
      "  it.cbase = it.cend = it.du;\n"
      "}\n", v, v, dvis);
    /* The q tile's tests before its first kv tile (its key_q range, the
       groups, the first chunk's tiles) are three dependent round trips to
       memory; attnc_prep_q ran them for every q tile, so the producer's
       first load waits for one. */
    out_printf(o,
      "// attnc_prep_q's record of this q tile: its key_q range, its kv tiles narrowed to\n"
      "// the groups that may meet it, and the bits of their first chunk (no fill for it);\n"
      "// every thread that iterates calls it (it synchronises them)\n"
      "ATTNC_DEVICE void data_load%d(KvIter%d &it, const Params &p, const QTile &qt, int b, int h) {\n"
      "  const int tid = iter_tid();\n"
      "  const i64 *m = data_meta_q(p, b, h, qt.t, kv_tiles((int)p.seq_k));\n"
      "  const u32 *bits = (const u32 *)(m + 3);\n"
      "  grid_dep_wait();                      // attnc_prep_q's record\n"
      "  iter_sync();                          // every thread is done with the last bits\n"
      "  for (int i = tid; i < kDataChunk / 32; i += 32 * kIterWarps) {\n"
      "    data_vis%d[i] = bits[i];\n"
      "    data_full%d[i] = bits[kDataChunk / 32 + i];\n"
      "  }\n"
      "  it.qmin = m[0];\n  it.qmax = m[1];\n"
      "  it.du = ((const int *)(m + 2))[0];\n  it.dhi = ((const int *)(m + 2))[1];\n"
      "  it.cbase = it.du;\n  it.cend = it.du + kDataChunk;   // the first chunk's bits are in\n"
      "  iter_sync();\n"
      "}\n", v, v, v, v);
  }

  /* tests: run the data iterator's tests here (attnc_prep_q does) rather
     than read attnc_prep_q's record of them */
  out_printf(o, "ATTNC_DEVICE void kv_begin%d(KvIter%d &it, const Params &p, const QTile &qt, int b, int h,\n"
                "                            bool tests = false) {\n"
                "  const int seq_q = (int)p.seq_q, seq_k = (int)p.seq_k;\n"
                "  (void)seq_q; (void)seq_k;\n"
                "  it.box = 0;\n  it.fresh = true;\n", v, v);
  for (int j = 0; j < nb; j++) {
    const PlanBox *bx = &it->boxes[j];
    out_printf(o, "  {  // box %d (term %d)\n    it.may[%d] = ", j, bx->term, j);
    plan_bool(o, bx->may);
    out_puts(o, ";\n    const bool must = ");
    plan_bool(o, bx->must);
    out_puts(o, ";\n");
    for (int a = 0; a < rank; a++) {
      const PlanRange *r = &bx->ax[a];
      out_printf(o, "    it.lo[%d][%d] = (int)", j, a); plan_c(o, r->lo); out_puts(o, ";\n");
      out_printf(o, "    it.hi[%d][%d] = (int)", j, a); plan_c(o, r->hi); out_puts(o, ";\n");
      out_printf(o, "    it.flo[%d][%d] = (int)", j, a);
      if (r->flo) plan_c(o, r->flo); else out_puts(o, "1LL");
      out_puts(o, ";\n");
      out_printf(o, "    it.fhi[%d][%d] = (int)", j, a);
      if (r->fhi) plan_c(o, r->fhi); else out_puts(o, "0LL");
      out_puts(o, ";\n");
      out_printf(o, "    it.wlo[%d][%d] = attnc_max(it.lo[%d][%d], 0);\n", j, a, j, a);
      out_printf(o, "    it.whi[%d][%d] = it.may[%d] ? attnc_min(it.hi[%d][%d], kv_axis_tiles(%d, seq_k) - 1) : -1;\n",
                 j, a, j, j, a, a);
    }
    out_printf(o, "    it.full_ok[%d] = it.may[%d] && must;\n  }\n", j, j);
  }
  if (L) {
    out_puts(o, "  {  // the list\n");
    for (int d = 0; d < irank; d++) {
      out_printf(o, "    it.row[%d] = ", d);
      if (d != L->dim && L->row[d]) plan_c(o, L->row[d]); else out_puts(o, "0LL");
      out_puts(o, ";\n");
    }
    if (L->vdim >= 0) {
      out_printf(o, "    it.rlo = it.row[%d];\n    it.rhi = ", L->vdim);
      plan_c(o, L->row_hi);
      out_puts(o, ";\n");
    } else
      out_puts(o, "    it.rlo = it.rhi = 0;\n");
    out_puts(o, "    it.len = "); plan_c(o, L->len); out_puts(o, ";\n");
    out_puts(o, "    it.nvals = "); plan_c(o, L->nvals); out_puts(o, ";\n");
    out_puts(o, "    it.lrow = it.rlo;\n    it.lj = 0;\n    it.lt = 1;\n    it.lt1 = 0;\n");
    out_puts(o, "    it.clip_may = "); plan_bool(o, L->clip.may); out_puts(o, ";\n");
    out_puts(o, "    it.clip_full = it.clip_may && "); plan_bool(o, L->clip.must); out_puts(o, ";\n");
    out_puts(o, "    it.clip_lo = (int)"); plan_c(o, L->clip.ax[0].lo); out_puts(o, ";\n");
    out_puts(o, "    it.clip_hi = (int)"); plan_c(o, L->clip.ax[0].hi); out_puts(o, ";\n");
    out_puts(o, "    it.clip_flo = (int)");
    if (L->clip.ax[0].flo) plan_c(o, L->clip.ax[0].flo); else out_puts(o, "1LL");
    out_puts(o, ";\n    it.clip_fhi = (int)");
    if (L->clip.ax[0].fhi) plan_c(o, L->clip.ax[0].fhi); else out_puts(o, "0LL");
    out_printf(o, ";\n    it.list_full = %s && it.rlo == it.rhi;\n  }\n", L->full ? "true" : "false");
  }
  if (D) {
    const PlanBox *c = &D->clip;
    out_puts(o, "  {  // the data ranges\n");
    out_puts(o, "    it.clip_may = "); plan_bool(o, c->may); out_puts(o, ";\n");
    out_puts(o, "    it.clip_full = it.clip_may && "); plan_bool(o, c->must); out_puts(o, ";\n");
    out_puts(o, "    it.clip_lo = (int)"); plan_c(o, c->ax[0].lo); out_puts(o, ";\n");
    out_puts(o, "    it.clip_hi = (int)"); plan_c(o, c->ax[0].hi); out_puts(o, ";\n");
    out_puts(o, "    it.clip_flo = (int)");
    if (c->ax[0].flo) plan_c(o, c->ax[0].flo); else out_puts(o, "1LL");
    out_puts(o, ";\n    it.clip_fhi = (int)");
    if (c->ax[0].fhi) plan_c(o, c->ax[0].fhi); else out_puts(o, "0LL");
    out_puts(o, ";\n    it.du = attnc_max(it.clip_lo, 0);\n"
                "    it.dhi = it.clip_may ? attnc_min(it.clip_hi, kv_tiles(seq_k) - 1) : -1;\n"
                "    it.cbase = it.cend = it.du;          // no chunk tested yet\n");
    out_printf(o, "    if (kDataMeta && !tests) {\n"
                  "      if (it.du <= it.dhi) data_load%d(it, p, qt, b, h);\n"
                  "    } else {\n"
                  "      data_qrange%d(p, qt, b, h, it.qmin, it.qmax);\n"
                  "      if (kDataMeta && it.du <= it.dhi) data_narrow%d(it, p, b, h);\n"
                  "    }\n  }\n", v, v, v);
  }
  out_puts(o, "}\n");

  if (L) {
    /* element (row, j) of the list input, false when out of range */
    out_printf(o, "// element j of row `row` (dim %d) of input \"%s\"; false when out of range\n",
               L->vdim, pat->inputs[L->input].name);
    out_printf(o, "ATTNC_DEVICE bool list_elem%d(const Params &p, const KvIter%d &it, i64 row, i64 j, i64 &x) {\n", v, v);
    out_printf(o, "  i64 idx[%d];\n", irank);
    out_printf(o, "#pragma unroll\n  for (int d = 0; d < %d; ++d) idx[d] = it.row[d];\n", irank);
    if (L->vdim >= 0) out_printf(o, "  idx[%d] = row;\n", L->vdim);
    out_printf(o, "  idx[%d] = j;\n", L->dim);
    out_puts(o, "  if (");
    for (int d = 0; d < irank; d++)
      out_printf(o, "%s(u64)idx[%d] >= (u64)p.in%d_shape[%d]", d ? " || " : "", d, L->input, d);
    out_printf(o, ") return false;\n  x = (i64)input%d_%s(p", L->input, id);
    for (int d = 0; d < irank; d++) out_printf(o, ", idx[%d]", d);
    out_puts(o, ");\n  return true;\n}\n");
  }

  if (D) {
    const char *dvis, *dfull;
    data_tests(D, &dvis, &dfull);
    /* The kv tiles of the clip are tested in chunks of 32 * kIterWarps, in
    ** parallel (warp w tests tiles w, w + kIterWarps, ...; each a warp
    ** reduction of key_k), into bit sets in shared memory; kv_next then walks
    ** the set bits with no global loads. Every thread that iterates (the CTA,
    ** or the producer warpgroup) calls kv_next alike, so the fill may
    ** synchronise them (iter_sync). */
    out_printf(o,
      "// kv tile u (bit i of the chunk) with key_k in kmin .. kmax: visited? full?\n"
      "ATTNC_DEVICE void data_mark%d(const KvIter%d &it, int u, int i, i64 kmin, i64 kmax, int seq_k,\n"
      "                             u32 *vis, u32 *full) {\n"
      "  if (!(%s)) return;\n"
      "  atomicOr(&vis[i >> 5], 1u << (i & 31));\n"
      "  if ((%s) && it.clip_full && it.clip_flo <= u && u <= it.clip_fhi && (u + 1) * kBlockN <= seq_k)\n"
      "    atomicOr(&full[i >> 5], 1u << (i & 31));\n"
      "}\n", v, v, dvis, dfull);
    out_printf(o,
      "// test kv tiles cbase .. min(cbase + kDataChunk, dhi + 1) - 1 against this q tile's keys:\n"
      "// bit i of vis: tile cbase + i is visited; of full: visited and full. Called by every\n"
      "// thread that iterates (it synchronises them).\n"
      "ATTNC_DEVICE void data_fill%d(const KvIter%d &it, const Params &p, int b, int h, u32 *vis, u32 *full) {\n"
      "  const int tid = iter_tid(), warp = tid / 32, lane = tid %% 32, seq_k = (int)p.seq_k;\n"
      "  iter_sync();                          // every thread is done with the last chunk's bits\n"
      "  for (int i = tid; i < kDataChunk / 32; i += 32 * kIterWarps) { vis[i] = 0u; full[i] = 0u; }\n"
      "  iter_sync();\n"
      "  const int n = attnc_min(it.dhi - it.cbase + 1, kDataChunk);\n"
      "  // with attnc_prep's key_k ranges in p.meta (cuda_launch fails without them):\n"
      "  // kDataPer tiles a thread, their loads in flight together\n"
      "  if (kDataMeta) {\n"
      "    const i64 *meta = data_meta_tiles(p, b, h, kv_tiles(seq_k));\n"
      "    i64 kmin[kDataPer], kmax[kDataPer];\n"
      "#pragma unroll\n"
      "    for (int r = 0; r < kDataPer; ++r) {\n"
      "      const int i = tid + r * 32 * kIterWarps, u = it.cbase + i;\n"
      "      kmin[r] = i < n ? meta[2 * u] : 0;\n"
      "      kmax[r] = i < n ? meta[2 * u + 1] : 0;\n"
      "    }\n"
      "#pragma unroll\n"
      "    for (int r = 0; r < kDataPer; ++r) {\n"
      "      const int i = tid + r * 32 * kIterWarps, u = it.cbase + i;\n"
      "      if (i < n && !in_boxes%d(it, u)) data_mark%d(it, u, i, kmin[r], kmax[r], seq_k, vis, full);\n"
      "    }\n"
      "    iter_sync();\n"
      "    return;\n"
      "  }\n"
      "  for (int i = warp; i < n; i += kIterWarps) {\n"
      "    const int u = it.cbase + i;\n"
      "    if (in_boxes%d(it, u)) continue;\n"
      "    i64 kmin, kmax;\n"
      "    data_krange%d(p, u, b, h, kmin, kmax);\n"
      "    if (lane == 0) data_mark%d(it, u, i, kmin, kmax, seq_k, vis, full);\n"
      "  }\n"
      "  iter_sync();\n"
      "}\n", v, v, v, v, v, v, v);
  }

  out_printf(o, "ATTNC_DEVICE bool kv_next%d(KvIter%d &it, const Params &p, const QTile &qt, int b, int h, KvTile &t) {\n"
                "  const int seq_k = (int)p.seq_k;\n"
                "  while (it.box < kBoxes%d) {\n"
                "    bool ok = false;\n"
                "    switch (it.box) {\n", v, v, v);
  for (int j = 0; j < nb; j++)
    out_printf(o, "    case %d: ok = box_step(it.u, it.wlo[%d], it.whi[%d], it.fresh); break;\n", j, j, j);
  out_printf(o, "    default: break;\n"
                "    }\n"
                "    if (!ok) { ++it.box; it.fresh = true; continue; }\n"
                "    bool seen = !kv_period%d(it.box, it.u);   // not this box's, or visited in an earlier box?\n"
                "#pragma unroll\n"
                "    for (int j = 0; j < kBoxes%d; ++j)\n"
                "      if (j < it.box && it.may[j] && in_box(it.u, it.lo[j], it.hi[j]) && kv_period%d(j, it.u)) seen = true;\n"
                "    if (seen) continue;\n"
                "    t.tile = kv_tile_index(it.u, seq_k);\n"
                "    t.full = false;\n"
                "#pragma unroll\n"
                "    for (int j = 0; j < kBoxes%d; ++j)\n"
                "      if (it.full_ok[j] && in_box(it.u, it.flo[j], it.fhi[j])) t.full = true;\n", v, v, v, v);
  if (ep->edge_lo >= 0)
    out_puts(o, "    t.edge = 0;\n"
                "#pragma unroll\n"
                "    for (int a = 0; a < kKvRank; ++a)\n"
                "      t.edge |= (it.u[a] < it.flo[0][a] ? 1 : 0) | (it.u[a] > it.fhi[0][a] ? 2 : 0);\n");
  out_puts(o, "    return true;\n"
              "  }\n");
  if (D) {
    out_printf(o,
      "  // data ranges: the set bits of the tested chunks, in order\n"
      "  while (it.du <= it.dhi) {\n"
      "    if (it.du >= it.cend) {\n"
      "      it.cbase = it.du;\n"
      "      it.cend = it.du + kDataChunk;\n"
      "      data_fill%d(it, p, b, h, data_vis%d, data_full%d);\n"
      "    }\n"
      "    const int i = it.du - it.cbase;\n"
      "    const u32 w = data_vis%d[i >> 5] >> (i & 31);\n"
      "    if (!w) { it.du = it.cbase + ((i >> 5) + 1) * 32; continue; }\n"
      "    const int u = it.du + __ffs(w) - 1, iu = u - it.cbase;\n"
      "    it.du = u + 1;\n"
      "    t.tile = u;\n"
      "    t.full = (data_full%d[iu >> 5] >> (iu & 31)) & 1u;\n"
      "    return true;\n"
      "  }\n"
      "  return false;\n}\n", v, v, v, v, v);
    return;
  }
  if (!L) {
    out_puts(o, "  return false;\n}\n");
    return;
  }
  out_printf(o,
    "  // the list: values in row order, each once\n"
    "  for (;;) {\n"
    "    if (it.lt <= it.lt1) {\n"
    "      const int u = it.lt++;\n"
    "      if (in_boxes%d(it, u) || !it.clip_may || u < it.clip_lo || u > it.clip_hi) continue;\n"
    "      t.tile = u;\n"
    "      t.full = it.list_full && it.clip_full && it.clip_flo <= u && u <= it.clip_fhi &&\n"
    "               (u + 1) * kBlockN <= seq_k;\n"
    "      return true;\n"
    "    }\n"
    "    if (!it.clip_may || it.lrow > it.rhi || it.len <= 0) return false;\n"
    "    const i64 row = it.lrow, j = it.lj;\n"
    "    if (++it.lj >= it.len) { it.lj = 0; ++it.lrow; }\n"
    "    i64 x, v;\n"
    "    if (!list_elem%d(p, it, row, j, x)) continue;\n", v, v);
  if (L->kind == LIST_VALUES) {
    out_printf(o,
      "    v = x;\n"
      "    if (v < 0 || v >= it.nvals) continue;\n"
      "    bool dup = false;                   // the same value earlier in the rows?\n"
      "    for (i64 r2 = it.rlo; r2 <= row && !dup; ++r2)\n"
      "      for (i64 j2 = 0; j2 < (r2 == row ? j : it.len) && !dup; ++j2) {\n"
      "        i64 y;\n"
      "        if (list_elem%d(p, it, r2, j2, y) && y == v) dup = true;\n"
      "      }\n"
      "    if (dup) continue;\n", v);
  } else {
    out_printf(o,
      "    if (!(x %s %lldLL)) continue;\n"
      "    v = j;\n"
      "    if (v < 0 || v >= it.nvals) continue;\n"
      "    bool dup = false;                   // index j selected by an earlier row?\n"
      "    for (i64 r2 = it.rlo; r2 < row && !dup; ++r2) {\n"
      "      i64 y;\n"
      "      if (list_elem%d(p, it, r2, j, y) && y %s %lldLL) dup = true;\n"
      "    }\n"
      "    if (dup) continue;\n",
      cmp_c((IrOp)L->cmp), (long long)L->cmpval, v, cmp_c((IrOp)L->cmp), (long long)L->cmpval);
  }
  out_printf(o,
    "    it.lt = (int)(v * %lldLL / kBlockN);\n"
    "    it.lt1 = (int)attnc_min((v * %lldLL + %lldLL) / kBlockN, (i64)kv_tiles(seq_k) - 1);\n"
    "  }\n"
    "}\n", (long long)L->unit, (long long)L->unit, (long long)L->unit - 1);
}

static const char *const box_helpers =
  "// step u through the box lo..hi row-major (last axis fastest); false when done\n"
  "ATTNC_DEVICE bool box_step(int (&u)[kKvRank], const int (&lo)[kKvRank], const int (&hi)[kKvRank], bool &fresh) {\n"
  "  if (fresh) {\n"
  "    fresh = false;\n"
  "#pragma unroll\n"
  "    for (int a = 0; a < kKvRank; ++a) if (lo[a] > hi[a]) return false;\n"
  "#pragma unroll\n"
  "    for (int a = 0; a < kKvRank; ++a) u[a] = lo[a];\n"
  "    return true;\n"
  "  }\n"
  "  if constexpr (kKvRank == 1) {     // (the odometer below made the routed producer spill)\n"
  "    if (u[0] < hi[0]) { ++u[0]; return true; }\n"
  "    u[0] = lo[0];\n"
  "    return false;\n"
  "  }\n"
  "  // more axes: an odometer without early exits (with them, the compiler kept\n"
  "  // u in local memory to increment u[a] through a pointer)\n"
  "  bool carry = true;\n"
  "#pragma unroll\n"
  "  for (int a = kKvRank - 1; a >= 0; --a) {\n"
  "    const bool inc = carry && u[a] < hi[a];\n"
  "    u[a] = inc ? u[a] + 1 : carry ? lo[a] : u[a];\n"
  "    carry = carry && !inc;\n"
  "  }\n"
  "  return !carry;\n"
  "}\n"
  "ATTNC_DEVICE bool in_box(const int (&u)[kKvRank], const int (&lo)[kKvRank], const int (&hi)[kKvRank]) {\n"
  "  bool in = true;\n"
  "#pragma unroll\n"
  "  for (int a = 0; a < kKvRank; ++a) in = in && lo[a] <= u[a] && u[a] <= hi[a];\n"
  "  return in;\n"
  "}\n";

attnc_status emit_plan_order_iter(Out *o, const EmitPlan *ep, Diag *d) {
  const CudaConfig *cfg = ep->cfg;
  emit_q_order(o, &cfg->qord, ep);
  emit_kv_order(o, &cfg->kord);

  out_puts(o, "\n// ---- kv iteration: the kv tiles each q tile visits, each full (no mask code) or partial\n");
  out_printf(o, "static constexpr bool kNoMask = %s;\n",
             ep->nvariants == 1 && ep->masks[0] < 0 ? "true" : "false");
  out_puts(o, "// edge (partial tiles of one box): bit 0, the tile lies below the box's full\n"
              "// range on some axis (its lower bounds can fail); bit 1, above it (upper bounds)\n"
              "struct KvTile { int tile; bool full; unsigned char edge; };\n");
  out_printf(o, "static constexpr bool kDataMeta = %s;   // attnc_prep writes key_k ranges to p.meta\n",
             cuda_data_prep(ep) ? "true" : "false");
  out_printf(o, "// attnc_prep_q starts while attnc_prep ends, attnc_fwd while attnc_prep_q does\n"
                "// (programmatic dependent launch): a thread reads what the pass before wrote\n"
                "// only after grid_dep_wait, which waits for that pass and its writes\n"
                "static constexpr bool kPrepOverlap = kDataMeta && %s;\n"
                "ATTNC_DEVICE void grid_dep_wait() {\n"
                "  if constexpr (kPrepOverlap) asm volatile(\"griddepcontrol.wait;\\n\" ::: \"memory\");\n"
                "}\n"
                "ATTNC_DEVICE void grid_dep_launch() {\n"
                "  if constexpr (kPrepOverlap) asm volatile(\"griddepcontrol.launch_dependents;\\n\" ::: \"memory\");\n"
                "}\n", cuda_prep_overlap(cfg) ? "true" : "false");
  /* the data iterator tests kDataChunk kv tiles a fill, kDataPer a thread
     with their loads in flight together: fewer fills, each with its
     barriers and a round trip to memory (H200, session 10, TFLOP/s 2 / 1 a
     thread: documents 316 / 314, at 65536 tokens 317 / 308); 4 made the
     producer spill */
  out_printf(o, "static constexpr int kDataPer = %d;\n"
                "static constexpr int kDataChunk = 32 * kIterWarps * kDataPer;\n", DATA_PER);
  out_printf(o, "static constexpr int kDataGroup = %d;   // kv tiles a range of attnc_prep's summaries\n",
             CUDA_DATA_GROUP);
  out_printf(o, "static constexpr int kDataQRec = %d;   // i64 words of attnc_prep_q's record\n"
                "static_assert(kDataQRec == 3 + kDataChunk / 32, \"cuda_data_qrec\");\n",
             cuda_data_qrec(cfg));
  out_puts(o, "// p.meta, written by attnc_prep (cuda_launch sizes it): the key_k min, max of each\n"
              "// kv tile of (b, h), then, after every (b, h)'s tiles, those of each group of\n"
              "// kDataGroup tiles, then attnc_prep_q's record of each q tile t (t outermost)\n"
              "ATTNC_DEVICE i64 *data_meta_tiles(const Params &p, int b, int h, int tiles) {\n"
              "  return (i64 *)p.meta + ((i64)b * p.heads_q + h) * tiles * 2;\n"
              "}\n"
              "ATTNC_DEVICE i64 *data_meta_groups(const Params &p, int b, int h, int tiles) {\n"
              "  const int groups = (tiles + kDataGroup - 1) / kDataGroup;\n"
              "  return (i64 *)p.meta + (p.batch * p.heads_q * tiles + ((i64)b * p.heads_q + h) * groups) * 2;\n"
              "}\n"
              "ATTNC_DEVICE i64 *data_meta_q(const Params &p, int b, int h, int t, int tiles) {\n"
              "  const int groups = (tiles + kDataGroup - 1) / kDataGroup;\n"
              "  return (i64 *)p.meta + p.batch * p.heads_q * (tiles + groups) * 2 +\n"
              "         (((i64)t * p.batch + b) * p.heads_q + h) * kDataQRec;\n"
              "}\n");
  out_puts(o, box_helpers);
  for (int v = 0; v < ep->nvariants; v++) {
    if (!ep->plan) {
      out_puts(o, "// variant 0: dense, every kv tile (no plan)\n");
      emit_dense_iter(o, v, true);
      continue;
    }
    const PlanIter *it = &ep->plan->variants[v].it;
    out_printf(o, "// variant %d: %s", v, iter_kind_name(it->kind));
    if (it->reason) out_printf(o, " (%s)", it->reason);
    out_puts(o, "\n");
    switch (it->kind) {
    case ITER_RANGES: case ITER_BOXES:
      emit_box_iter(o, v, it, cfg->kord.rank, ep);
      break;
    case ITER_LIST:
      if (it->list && data_walkable(ep->plan)) {
        emit_box_iter(o, v, it, 1, ep);
        break;
      }
      goto dense;
    case ITER_DATA:
      if (it->data && ep->data_qkey[v] >= 0) {
        emit_box_iter(o, v, it, 1, ep);
        break;
      }
      goto dense;
    case ITER_EMPTY:
      emit_empty_iter(o, v);
      break;
    default:
    dense:     /* dense, and lists / data on orders they cannot walk: every tile, masked */
      if (it->kind != ITER_DENSE)
        out_puts(o, "// (walked densely by this backend for now: every kv tile, the mask on each)\n");
      emit_dense_iter(o, v, false);
      break;
    }
  }
  /* dispatch over variants */
  out_puts(o, "struct KvIter {\n");
  for (int v = 0; v < ep->nvariants; v++) out_printf(o, "  KvIter%d v%d;\n", v, v);
  out_puts(o, "};\n");
  out_puts(o, "ATTNC_DEVICE void kv_begin(KvIter &it, const Params &p, const QTile &qt, int b, int h) {\n");
  if (ep->nvariants == 1) out_puts(o, "  kv_begin0(it.v0, p, qt, b, h);\n");
  else
    for (int v = 0; v < ep->nvariants; v++)
      out_printf(o, "  if (qt.variant == %d) kv_begin%d(it.v%d, p, qt, b, h);\n", v, v, v);
  out_puts(o, "}\n");
  out_puts(o, "ATTNC_DEVICE bool kv_next(KvIter &it, const Params &p, const QTile &qt, int b, int h, KvTile &t) {\n");
  if (ep->nvariants == 1) out_puts(o, "  return kv_next0(it.v0, p, qt, b, h, t);\n");
  else {
    for (int v = 0; v < ep->nvariants; v++)
      out_printf(o, "  if (qt.variant == %d) return kv_next%d(it.v%d, p, qt, b, h, t);\n", v, v, v);
    out_puts(o, "  return false;\n");
  }
  out_puts(o, "}\n");
  (void)d;
  return ATTNC_OK;
}

/*
** The data iterator's pre-pass: with one head variant whose kv tiles are
** found from data (documents), a kernel before the attention kernel
** writes each kv tile's key_k range, min and max over its tokens, for
** every (batch, query head), into p.meta; data_fill then tests a tile with
** two loads instead of a warp reduction over its tokens, which every q
** tile repeated (documents at 8 % density spent most of their time there).
** It also writes each group of CUDA_DATA_GROUP tiles' range, by which
** data_narrow skips the groups before and after those that may meet a q
** tile before any tile is tested. A second kernel, attnc_prep_q, runs
** the iterator's first tests for every q tile as kv_begin did (its key_q
** range, the groups, the first chunk of tiles) and writes them after the
** groups: the attention kernel's producer then reads one record before
** its first load instead of waiting on three dependent round trips to
** memory (documents of 32-512 tokens visit 1-5 kv tiles a q tile). Later
** chunks are tested in the kernel, from the tiles' ranges. cuda_launch
** allocates p.meta (stream-ordered) and runs both first.
*/
/* the warps that run the kv iterator (the kernel's kIterWarps): the
   producer warpgroup of a warp-specialised kernel, else every warp */
static int iter_warps(const CudaConfig *cfg) { return cfg->ws ? 4 : cfg->warps; }

/* i64 words of attnc_prep_q's record of a q tile: key_q's min and max, du
   and dhi (two ints), then the bits (visited, full) of the first chunk of
   kDataChunk = 32 kIterWarps kDataPer kv tiles, kDataChunk / 64 words each */
int cuda_data_qrec(const CudaConfig *cfg) { return 3 + iter_warps(cfg) * DATA_PER; }

/* only the warps that iterate in attnc_fwd: the producer warpgroup of a
   warp-specialised kernel, not the whole CTA, whose compute warps returned
   at once (H200, session 17, one call, without the overlap below:
   documents 32-512 181-182 -> 183 TFLOP/s, 64-2048 383-384 -> 384-386,
   within the noise; its 9 us a call are its dependent round trips, not
   its waves) */
int cuda_prep_q_threads(const CudaConfig *cfg) { return 32 * iter_warps(cfg); }

bool cuda_prep_overlap(const CudaConfig *cfg) { return cfg->arch >= 90; }

bool cuda_plan_prep(const Plan *plan) {
  return plan && plan->nvariants == 1 && plan->variants[0].it.kind == ITER_DATA &&
         plan->variants[0].it.data && data_walkable(plan);
}

bool cuda_data_prep(const EmitPlan *ep) {
  return cuda_plan_prep(ep->plan);   /* emit_plan_init set data_qkey[0] from the same tests */
}

int64_t cuda_data_groups(const CudaConfig *cfg, int64_t Sk) {
  return (cuda_order_ntiles(&cfg->kord, Sk) + CUDA_DATA_GROUP - 1) / CUDA_DATA_GROUP;
}

/* the layout of the kernel's data_meta_tiles, _groups and _q */
int64_t cuda_meta_bytes(const CudaConfig *cfg, int64_t B, int64_t Hq, int64_t Sq, int64_t Sk) {
  int64_t kv_tiles = cuda_order_ntiles(&cfg->kord, Sk), qtiles = cuda_order_ntiles(&cfg->qord, Sq);
  if (kv_tiles <= 0) return 0;     /* no kv tiles: no pre-pass */
  int64_t groups = cuda_data_groups(cfg, Sk);
  return B * Hq * ((kv_tiles + groups) * 2 + qtiles * cuda_data_qrec(cfg)) * (int64_t)sizeof(int64_t);
}

void emit_data_prep(Out *o, const EmitPlan *ep) {
  if (!cuda_data_prep(ep)) return;
  out_puts(o, "\n#if " CUDA_PART_MACRO " != 1\n");
  out_puts(o,
    "\n// ---- the pre-pass of the data iterator: grid (kv tile groups, query heads, batch),\n"
    "// a warp per kv tile u of group g writes its key_k min, max (data_meta_tiles), and warp\n"
    "// 0 those over group g's tiles (data_meta_groups)\n"
    "extern \"C\" __global__ void __launch_bounds__(32 * kDataGroup) " CUDA_PREP_NAME "(const __grid_constant__ Params p) {\n"
    "  __shared__ i64 smin[kDataGroup], smax[kDataGroup];\n"
    "  const int g = blockIdx.x, warp = threadIdx.x / 32, lane = threadIdx.x % 32, h = blockIdx.y, b = blockIdx.z;\n"
    "  const int seq_k = (int)p.seq_k, tiles = kv_tiles(seq_k);\n"
    "  const int u = g * kDataGroup + warp;\n"
    "  grid_dep_launch();                    // attnc_prep_q may start (it waits for these)\n"
    "  if (!p.meta) return;\n"
    "  i64 mn = 2147483647LL, mx = -2147483648LL;   // no tokens: meets nothing\n"
    "  if (u < tiles) {\n"
    "    data_krange0(p, u, b, h, mn, mx);\n"
    "    if (lane == 0) {\n"
    "      i64 *m = data_meta_tiles(p, b, h, tiles) + 2 * u;\n"
    "      m[0] = mn;\n"
    "      m[1] = mx;\n"
    "    }\n"
    "  }\n"
    "  if (lane == 0) { smin[warp] = mn; smax[warp] = mx; }\n"
    "  __syncthreads();\n"
    "  if (warp) return;\n"
    "  mn = smin[lane];\n"
    "  mx = smax[lane];\n"
    "#pragma unroll\n"
    "  for (int off = 16; off > 0; off >>= 1) {\n"
    "    mn = attnc_min(mn, (i64)__shfl_xor_sync(0xffffffffu, mn, off));\n"
    "    mx = attnc_max(mx, (i64)__shfl_xor_sync(0xffffffffu, mx, off));\n"
    "  }\n"
    "  if (lane == 0) {\n"
    "    i64 *m = data_meta_groups(p, b, h, tiles) + 2 * g;\n"
    "    m[0] = mn;\n"
    "    m[1] = mx;\n"
    "  }\n"
    "}\n"
    "\n// ---- its second pass, after attnc_prep: grid (q tiles, query heads, batch); the\n"
    "// threads that iterate in attnc_fwd run kv_begin's tests for q tile t and write its\n"
    "// record (data_meta_q) for data_load; a block is those threads alone (iter_tid)\n"
    "extern \"C\" __global__ void __launch_bounds__(32 * kIterWarps) " CUDA_PREPQ_NAME "(const __grid_constant__ Params p) {\n"
    "  const int t = blockIdx.x, h = blockIdx.y, b = blockIdx.z, tid = iter_tid();\n"
    "  grid_dep_launch();                    // attnc_fwd may start (it waits for the records)\n"
    "  if (!p.meta) return;\n"
    "  QTile qt;\n"
    "  if (!q_tile_begin(qt, p, b, h, t)) return;   // all padding: attnc_fwd skips it too\n"
    "  KvIter0 it;\n"
    "  kv_begin0(it, p, qt, b, h, true);\n"
    "  i64 *m = data_meta_q(p, b, h, t, kv_tiles((int)p.seq_k));\n"
    "  u32 *bits = (u32 *)(m + 3);\n"
    "  const bool some = it.du <= it.dhi;\n"
    "  if (some) {\n"
    "    it.cbase = it.du;\n"
    "    it.cend = it.du + kDataChunk;\n"
    "    data_fill0(it, p, b, h, data_vis0, data_full0);\n"
    "  }\n"
    "  for (int i = tid; i < kDataChunk / 32; i += 32 * kIterWarps) {\n"
    "    bits[i] = some ? data_vis0[i] : 0u;\n"
    "    bits[kDataChunk / 32 + i] = some ? data_full0[i] : 0u;\n"
    "  }\n"
    "  if (tid == 0) {\n"
    "    m[0] = it.qmin;\n"
    "    m[1] = it.qmax;\n"
    "    ((int *)(m + 2))[0] = it.du;\n"
    "    ((int *)(m + 2))[1] = it.dhi;\n"
    "  }\n"
    "}\n"
    "#endif\n");
}
