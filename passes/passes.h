/*
** passes.h -- the scheduled kernel IR (a Plan) and the passes that build it.
**
** The pattern IR (ir/ir.h) says WHAT is computed: mask(b,h,q,k), score mod.
** A Plan says HOW: the schedule (tile sizes, warps, stages, token order)
** and, for every q tile, a kv iterator that names the kv tiles to visit and
** tags each one full (no mask code) or partial (mask every pair). Backends
** (backend/cuda, backend/cpu) turn a Plan into code directly:
**
**   for each q tile t (grid dim = plan->qord.ntiles), each b, each h:
**     v = the first variant whose `heads` predicate holds for h
**     compute the q-tile vars (QT/QLO/QHI/QRES per axis, PlanOrder formulas)
**     if any axis has QHI < QLO: the tile is all padding, write nothing
**     for each kv tile u the variant's iterator yields (PlanIter rules):
**       load K/V at the tokens of u (PlanOrder formula; padding -> zeros)
**       S = scale * Q K^T;  S = score(S)           (pattern->score)
**       if !full(u): S[i][j] = -inf where !valid(i) || !valid(j) ||
**                    !mask(b,h,q_i,k_j)             (variant->mask)
**       online softmax, O += P V
**
** Conventions
** - Plans live in the compile's Arena; nothing is freed on its own.
** - Passes return attnc_status and fill a Diag (user errors carry the spec
**   location; internal errors say they are compiler bugs).
** - All integer expressions (PlanExpr) are exact int64 with FLOOR division
**   and modulo (Lua semantics, like the pattern IR). Divisors are > 0.
** - "full" (normative): every VALID q position of the q tile paired with
**   EVERY position of the kv tile is a valid token pair that the mask
**   allows. So a ragged or padded kv tile is never full; q padding rows are
**   ignored (their output is never stored). A partial tile must evaluate the
**   mask only at valid positions (the mask may read inputs indexed by q, k).
** - Conservative: no kv tile holding an allowed pair is skipped.
**
** Pipeline (passes/pipeline.c, one file per pass, see docs/passes.md):
**   normalize  copy the pattern into the plan, fold, share
**   heads      split per-head variants (masks that select on h)
**   terms      each variant's mask as a disjunction of conjunctions of atoms
**   order      token order: raster, tiled grid boxes, residue grouping
**   tile       tile sizes / boxes, warps, stages (heuristics or user pins)
**   iterate    per variant the kv iterator and full/partial tests
**   check      plan verifier
** ATTNC_DUMP=name,name (or "all") prints the plan after those passes.
*/
#ifndef ATTNC_PASSES_H
#define ATTNC_PASSES_H

#include "ir/ir.h"

/* ------------------------------------------------------------ PlanExpr */

/*
** A small integer expression over per-CTA variables, printed as C by
** plan_expr_c or walked by a backend. Trees (subtrees may be shared).
** Booleans are 0/1. X(ENUM, "name", arity).
**   const   v                     var   a PlanVar (axis in .axis)
**   fdiv    floor(a / b), b > 0   cdiv  ceil(a / b), b > 0
**   fmod    a - b*fdiv(a, b)      select  a ? b : c
*/
#define PLAN_EXPR_OPS(X) \
  X(CONST, "const", 0) X(VAR, "var", 0) \
  X(ADD, "add", 2) X(SUB, "sub", 2) X(MUL, "mul", 2) X(NEG, "neg", 1) \
  X(FDIV, "fdiv", 2) X(CDIV, "cdiv", 2) X(FMOD, "fmod", 2) \
  X(MIN, "min", 2) X(MAX, "max", 2) X(SELECT, "select", 3) \
  X(LT, "lt", 2) X(LE, "le", 2) X(EQ, "eq", 2) X(NE, "ne", 2) \
  X(AND, "and", 2) X(OR, "or", 2) X(NOT, "not", 1)

typedef enum PlanExprOp {
#define X(e, n, a) PE_##e,
  PLAN_EXPR_OPS(X)
#undef X
  PE_NOPS
} PlanExprOp;

/*
** Variables a kernel knows per CTA. Axis-indexed ones refer to the q
** order's axis (PlanOrder): for 1-D sequences axis 0 is the token index.
**   B H       batch index, query head          SQ SK  runtime lengths
**   QT(a)     q tile coordinate along axis a  (0 .. qord.ax[a].ntiles-1)
**   QLO(a)    first valid coordinate of the q tile on axis a
**   QHI(a)    last valid coordinate (QHI < QLO: the tile is all padding)
**   QRES(a)   residue class of the q tile on axis a (0 when dil == 1)
** QLO/QHI/QRES are defined by plan->qord.ax[a].{qlo,qhi,qres} over QT/SQ.
*/
typedef enum PlanVar { PV_B, PV_H, PV_SQ, PV_SK, PV_QT, PV_QLO, PV_QHI, PV_QRES, PV_NVARS } PlanVar;
const char *plan_var_name(PlanVar v);   /* "b", "h", "Sq", "Sk", "qt", "qlo", ... */

typedef struct PlanExpr PlanExpr;
struct PlanExpr {
  uint8_t op;          /* PlanExprOp */
  uint8_t var;         /* PlanVar, for PE_VAR */
  uint8_t axis;        /* axis, for the axis-indexed vars */
  int64_t v;           /* PE_CONST */
  const PlanExpr *a[3];
};

/* constructors: fold constants and trivial identities; NULL when out of memory */
const PlanExpr *pe_const(Arena *A, int64_t v);
const PlanExpr *pe_var(Arena *A, PlanVar v, int axis);
const PlanExpr *pe_op(Arena *A, PlanExprOp op, const PlanExpr *a, const PlanExpr *b,
                      const PlanExpr *c);
bool pe_is_const(const PlanExpr *e, int64_t *v);
bool pe_same(const PlanExpr *a, const PlanExpr *b);      /* structurally equal */

/* host evaluation: vals indexed [PlanVar][axis] */
typedef struct PlanEnv { int64_t v[PV_NVARS][IR_MAXGRID]; } PlanEnv;
int64_t plan_expr_eval(const PlanExpr *e, const PlanEnv *env);
/* the q tile axes e reads (bit a: QT, QLO, QHI or QRES of axis a) */
unsigned plan_expr_axes(const PlanExpr *e);

/*
** Print e as a C expression. var(ud, var, axis) names a variable. Helper
** functions used: attnc_fdiv, attnc_cdiv, attnc_fmod, attnc_min, attnc_max
** (int64 args), whose definitions plan_c_helpers() returns, each declared
** with ATTNC_INLINE (a backend defines it, e.g. "__device__ __forceinline__").
*/
typedef const char *(*PlanVarName)(void *ud, PlanVar v, int axis);
char *plan_expr_c(Arena *A, const PlanExpr *e, PlanVarName var, void *ud);
const char *plan_c_helpers(void);
/* the plan's text notation, e.g. "max(0, fdiv(qlo0 - 1023, 128))" */
char *plan_expr_str(Arena *A, const PlanExpr *e);

/* ------------------------------------------------------------ schedule */

/*
** The schedule: how, kept apart from what. rank = 1 for 1-D sequences
** (token order raster), the grid rank for tiled grids. Boxes are per axis
** (slowest first); bm = product of qbox, bn = product of kbox. dil[a] > 1
** groups tokens by residue mod dil[a] along axis a (dilated patterns).
** A field set by the user (pinned) is kept by the tile pass.
*/
typedef struct Schedule {
  int64_t bm, bn;                     /* q / kv tile, in token positions */
  int rank;                           /* axes of the token order */
  int64_t qbox[IR_MAXGRID], kbox[IR_MAXGRID];
  int64_t dil[IR_MAXGRID];            /* 1 = no grouping */
  int warps, stages;
  bool grid;                          /* tiled grid order (rank = grid rank) */
  bool pin_tile, pin_box, pin_order, pin_warps, pin_stages;
  bool raster;                        /* pin_order: plain 1-D raster even on grids */
} Schedule;

/* ---------------------------------------------------------- token order */

/*
** One axis of a token order (q and kv sides have one each).
**   n      positions along the axis (the grid size; 1-D: Sq or Sk at run
**          time, given as the expression `size`)
**   box    tile extent; dil residue grouping d (1 = none)
**   ntiles T = d * ceil(n / (box * d))       (tile coordinates on the axis)
** Tile coordinate u in [0, T), in-tile position i in [0, box):
**   P = T / d (tiles per residue); r = u / P; tj = u % P
**   j = tj*box + i;  coordinate c = r + d*j;  valid iff c < n
** so a tile holds one residue class r; with d == 1: c = u*box + i.
** For a q tile: qres = r, qlo = r + d*tj*box,
**   qhi = r + d*min(tj*box + box - 1, fdiv(n - 1 - r, d))  (may be < qlo).
*/
typedef struct PlanAxis {
  int64_t n;                  /* 0: runtime (size) */
  int64_t box, dil;
  const PlanExpr *size;       /* n as an expression (const or SQ / SK) */
  const PlanExpr *ntiles;     /* T */
  const PlanExpr *qlo, *qhi, *qres;   /* q side only: over QT(a), SQ */
} PlanAxis;

/*
** A whole order. Tile index t in [0, ntiles) decomposes row-major over
** (T_0 .. T_{rank-1}) into u_a (last axis fastest); position p in
** [0, tile) row-major over the boxes into i_a. The token is row-major over
** the sizes: token = sum_a c_a * prod_{b>a} n_b; valid iff every c_a < n_a.
*/
typedef struct PlanOrder {
  int rank;
  int64_t tile;               /* positions per tile = prod box */
  PlanAxis ax[IR_MAXGRID];
  const PlanExpr *ntiles;     /* prod T_a */
} PlanOrder;

/* host helpers for the formulas above (sizes: the runtime n of 1-D axes) */
int64_t plan_order_ntiles(const PlanOrder *o, int64_t seqlen);
/* token of (tile, pos), or -1 for a padding position */
int64_t plan_order_token(const PlanOrder *o, int64_t seqlen, int64_t tile, int64_t pos);

/* ------------------------------------------------------------- iterator */

/*
** One kv axis of a box: visit kv tile coordinates lo..hi (empty if
** lo > hi); coordinates in flo..fhi are full on this axis. Both already
** clamped to existing, not-all-padding tiles.
*/
typedef struct PlanRange { const PlanExpr *lo, *hi, *flo, *fhi; } PlanRange;

/*
** A periodic set of kv tokens, (k + off) mod m in [lo, hi] (0 <= off < m,
** 0 <= lo <= hi < m; m = 0: every token): the summary columns of a fixed
** sparse pattern (k % 128 >= 112), every other block. A kv tile of bn
** tokens from u*bn holds one when bn >= m or, with x = (u*bn + off) mod m
** and e = x + bn - 1, when (x <= hi && e >= lo) || e - m >= lo
** (plan_period_hit).
*/
typedef struct PlanPeriod { int64_t m, off, lo, hi; } PlanPeriod;
bool plan_period_hit(const PlanPeriod *p, int64_t bn, int64_t u);

/*
** A box of kv tiles for one conjunction of the mask (a DNF term).
**   may   the box is empty for this q tile when 0
**   must  when 0 no tile of this box is full (q-only conditions not known
**         to hold on the whole q tile, or a conjunct that isn't analysable)
** The tile with coordinates (u_0..u_{rank-1}) lies in the box when every
** lo_a <= u_a <= hi_a (and may); it is full by this box when may && must
** and every flo_a <= u_a <= fhi_a. All expressions are over the q tile
** vars (and B, H, SQ, SK). With per.m > 0 (a periodic atom on a 1-D kv
** order) the box holds only the tiles plan_period_hit admits, and no tile
** is full by it (must is 0).
*/
typedef struct PlanBox {
  const PlanExpr *may, *must;
  PlanPeriod per;             /* m > 0: only tiles holding such a k (1-D kv order) */
  PlanRange ax[IR_MAXGRID];
  int term;                   /* the DNF term it came from (explain) */
  /* Edges (iterate pass; -1 = none): the term's lower bounds on the kv
     coordinates (with its q-only atoms) as one node, and its upper bounds.
     A tile of the box with u_a >= flo_a on every axis meets every lower
     bound, so there the mask is edge_hi; with u_a <= fhi_a everywhere it is
     edge_lo. Set when the term is only q-only and bound atoms (congruences
     the order keeps), every axis can be full, and it has bounds both ways. */
  bool edges_ok;              /* term_box: the split above is exact */
  int edge_lo, edge_hi;
} PlanBox;

typedef enum PlanIterKind {
  ITER_DENSE,     /* every kv tile, all partial (nothing could be derived) */
  ITER_RANGES,    /* 1-D: union of kv tile ranges, closed form */
  ITER_BOXES,     /* grids: union of boxes of kv tiles, closed form */
  ITER_LIST,      /* kv tiles from a runtime index list / bitmap (+ boxes) */
  ITER_DATA,      /* kv tile range from runtime data, by a pre-pass (+ boxes) */
  ITER_EMPTY      /* the mask is never true */
} PlanIterKind;
const char *plan_iter_name(PlanIterKind k);   /* "dense", "ranges", ... */

/*
** Index list (ITER_LIST), 1-D kv order without residue grouping.
** Rows: the input `input` indexed by row[0..rank-1] at every dim except
** `dim`; row[dim] is unused. kind LIST_VALUES: each element e of the row
** along `dim` is a value; kind LIST_SCAN: each index j along `dim` whose
** element satisfies (element cmp cmpval) is a value. A value v (ignored
** unless 0 <= v < nvals) names kv tokens [v*unit, v*unit + unit - 1], i.e.
** kv tiles [v*unit/bn, (v*unit + unit - 1)/bn] (unit % bn == 0, so values
** never share a tile). Each distinct value is visited once: skip a value
** equal to an earlier one of the row, and skip tiles already visited by a
** static box. Tiles outside `clip` are skipped; a tile is full when `full`,
** only one row is read (vdim < 0 or row[vdim] == row_hi), clip's full
** test holds and the kv tile has no padding ((u + 1) * bn <= Sk).
*/
typedef enum PlanListKind { LIST_VALUES, LIST_SCAN } PlanListKind;
typedef struct PlanList {
  PlanListKind kind;
  int input;                        /* pattern input index */
  int dim;                          /* the listed / scanned dim */
  const PlanExpr *row[IR_MAXDIMS];  /* the other indices for the q tile ... */
  int vdim;                         /* ... except dim vdim (-1: none), which */
  const PlanExpr *row_hi;           /* runs row[vdim]..row_hi (rows unioned) */
  const PlanExpr *len;              /* extent of dim */
  uint8_t cmp;                      /* LIST_SCAN: IrOp (IR_NE, IR_EQ, IR_GT, ...) */
  int64_t cmpval;
  int64_t unit;                     /* kv tokens per value */
  const PlanExpr *nvals;            /* number of valid values: cdiv(SK, unit) */
  bool full;                        /* listed tiles are full (modulo clip) */
  PlanBox clip;                     /* the static conjuncts of the same term */
} PlanList;

/*
** Data ranges (ITER_DATA), 1-D orders without residue grouping: the term
** holds key_q(q) CMP key_k(k) with integer keys read from inputs
** (documents: doc[q] == doc[k]). A pre-pass (one per b, and per h when
** per_h) writes int32 metadata, laid out per (b[,h]) slice as
**   qmin[nqt] qmax[nqt]  (min/max of key_q over the valid q of each q tile)
**   kmin[nkt] kmax[nkt]  (min/max of key_k over each kv tile's valid k)
**   first[nqt] last[nqt] (hull of kv tiles that pass the test below)
** (first > last: none). Kernel: for u in first..last (clipped by clip's
** range, skipping tiles of the static boxes): visit u when
**   EQ: kmin <= qmax && kmax >= qmin    GE (key_q >= key_k): kmin <= qmax
**   GT: kmin < qmax    LE (key_q <= key_k): kmax >= qmin    LT: kmax > qmin
** and tag it full when clip says full, the kv tile has no padding
** ((u + 1) * bn <= Sk) and EQ: qmin == qmax == kmin == kmax; GE: kmax <=
** qmin; GT: kmax < qmin; LE: kmin >= qmax; LT: kmin > qmax. qkey/kkey are
** pattern nodes over (b, h, q) / (b, h, k); plan_prepass is the reference.
*/
typedef struct PlanData {
  int qkey, kkey;
  uint8_t cmp;                      /* IrOp: IR_EQ, IR_LE, IR_LT, IR_GE, IR_GT */
  bool per_b, per_h;
  PlanBox clip;
} PlanData;

/*
** The kv iterator of one variant. Tiles visited = union of the static
** boxes, plus the dynamic part (list or data) for ITER_LIST / ITER_DATA.
** Visiting rule: boxes in order; a tile of box i that lies in some box
** j < i is skipped (it was visited there); then the dynamic part, skipping
** tiles inside any box. A tile is full when any box says full (or the
** dynamic part does, for its tiles). ITER_DENSE: all tiles, none full
** (boxes unused, reason says why). ITER_EMPTY: nothing.
*/
typedef struct PlanIter {
  PlanIterKind kind;
  int nboxes;
  PlanBox *boxes;
  PlanList *list;                   /* ITER_LIST */
  PlanData *data;                   /* ITER_DATA */
  const char *reason;               /* why dense, or notes (explain) */
} PlanIter;

/*
** A variant: the mask specialised for the heads where `heads` holds
** (NULL = every head). Variants are tried in order; the first match wins.
*/
typedef struct PlanVariant {
  const PlanExpr *heads;            /* over PV_H only */
  int mask;                         /* node in plan->pat; -1 = all pairs */
  PlanIter it;
} PlanVariant;

/* -------------------------------------------------------- analysis side */

/* atoms of the DNF (filled by the terms pass; read by order/tile/iterate) */
typedef enum AtomKind {
  ATOM_QONLY,      /* depends on q side only (b, h, q, qc, Sq, Sk, loads of those) */
  ATOM_KBOUND,     /* lo(q) <= kcoord[axis] <= hi(q) (either side may be open) */
  ATOM_CONG,       /* (q_axis - k_axis) mod d == 0 */
  ATOM_LIST,       /* contains(input, row(q), needle(k)) / bitmap load(..) cmp c */
  ATOM_DATA,       /* key(q) cmp key(k) with loads on both sides */
  ATOM_PERIODIC,   /* (k + off) mod m in [lo, hi], constants: every m-th run of keys */
  ATOM_OPAQUE      /* not analysable: restricts nothing, never full */
} AtomKind;

typedef struct Atom {
  AtomKind kind;
  int node;                 /* the pattern node (a comparison), or -1 */
  bool neg;                 /* the atom is the negation of node */
  int axis;                 /* KBOUND, CONG: grid axis (grid) or 0 (token) */
  bool grid;                /* KBOUND, CONG: speaks of kc[axis] (else of k) */
  int lo, hi;               /* KBOUND: pattern nodes over the q side, -1 = open
                               (may be nodes the pass added) */
  int64_t d;                /* CONG: modulus */
  PlanPeriod per;           /* PERIODIC */
  /* LIST */
  PlanListKind lkind; int input, dim; int row[IR_MAXDIMS];  /* row: q-side nodes */
  uint8_t cmp; int64_t cmpval, unit;   /* value v <-> k in [v*unit, v*unit+unit-1] */
  /* DATA */
  int qkey, kkey;
  const char *why;          /* OPAQUE: what was not understood */
} Atom;

typedef struct Term { int natoms; Atom *atoms; } Term;   /* a conjunction */
typedef struct Dnf {
  int nterms; Term *terms;  /* nterms == 0: never true; a term with 0 atoms: always */
  bool kspace_1d;           /* atoms speak of q/k tokens (1-D order) */
  const char *why;          /* set when the DNF could not be built */
} Dnf;

/* ----------------------------------------------------------------- plan */

/* what the caller knows when compiling (0 / false = unknown / not pinned) */
typedef struct PlanOptions {
  attnc_target target;
  int64_t B, H, Sq, Sk, D;  /* shape hint for the tile choice (0 = unknown) */
  Schedule pin;             /* fields with pin_* set are kept */
} PlanOptions;

typedef struct Plan {
  Arena *arena;
  IrPattern *pat;           /* the plan's own copy of the pattern */
  PlanOptions opt;
  Schedule sched;
  PlanOrder qord, kord;     /* token orders (same formulas, kv side for K/V) */
  int nvariants;
  PlanVariant *variants;
  Dnf *dnf;                 /* per variant, from the terms pass */
  uint32_t inputs_mask;     /* bit i: input i is read by some variant's mask */
  uint32_t inputs_score;    /* ... by the score modification */
  uint32_t inputs_iter;     /* ... by the iterator (list / data pre-pass) */
  const char *notes;        /* free text for explain */
  bool iterated;            /* the iterate pass has run */
  uint16_t *deps; int ndeps;  /* internal: plan_deps cache */
  void *ivals; int nivals;    /* internal: plan_interval cache */
} Plan;

/* ---------------------------------------------------------- the passes */

typedef struct PassCtx {
  Plan *plan;
  Diag *d;
} PassCtx;

typedef attnc_status (*PassFn)(PassCtx *pc);
typedef struct Pass { const char *name; PassFn run; const char *what; } Pass;

attnc_status pass_normalize(PassCtx *pc);
attnc_status pass_heads(PassCtx *pc);
attnc_status pass_terms(PassCtx *pc);
attnc_status pass_order(PassCtx *pc);
attnc_status pass_tile(PassCtx *pc);
attnc_status pass_iterate(PassCtx *pc);
attnc_status pass_check(PassCtx *pc);

/* the pipeline table (NULL-terminated) */
extern const Pass plan_pipeline[];

/*
** Build a plan for pattern p (not modified; copied into arena a). Runs
** every pass, dumping after those named in $ATTNC_DUMP. *out is NULL on
** error. stop_after: run passes up to and including this one (NULL = all),
** for golden tests.
*/
attnc_status plan_build(Arena *a, const IrPattern *p, const PlanOptions *opt,
                        const char *stop_after, Plan **out, Diag *d);

/* the plan as text (after any pass; deterministic; used by golden tests) */
char *plan_print(const Plan *pl, Arena *out);
/* a pattern node as an infix expression, e.g. "q - k < 1024" */
char *plan_node_str(const IrPattern *p, int node, Arena *out);

/* the order/iterator builder the tile pass uses to compare candidates */
attnc_status plan_make_orders(Plan *pl, Diag *d);
attnc_status plan_make_iter(Plan *pl, int variant, PlanIter *it, Diag *d);

/* --------------------------------------------- host iteration and stats */

/*
** The reference iterator: what a backend must visit for (b, h, q tile qt).
** Calls fn(ud, kv tile index, full) once per visited kv tile, in visiting
** order. meta is the pre-pass metadata (plan_prepass) or NULL when the
** iterator needs none. inputs: views of the runtime inputs (may be NULL
** when the plan reads none).
*/
typedef void (*PlanVisitFn)(void *ud, int64_t kvtile, bool full);
typedef struct PlanRun {
  int64_t B, H, Sq, Sk;
  const IrTensorView *inputs;
  const int32_t *meta;              /* plan_prepass output */
  int64_t qstride;                  /* stats: only every qstride-th q tile (0, 1: all) */
} PlanRun;
int plan_variant_of(const Plan *pl, int64_t h);
/*
** The sides of a visited partial tile's full range it lies past, as a
** kernel tags it (PlanBox edges): bit 0 below flo on some axis (the lower
** bounds must be checked), bit 1 above fhi; 3 where the kernel does not
** tag edges (plan_edge_box). 1: the mask is edge_lo on the tile; 2: edge_hi.
*/
int plan_tile_edge(const Plan *pl, const PlanRun *r, int64_t b, int64_t h, int64_t qt, int64_t kvtile);
/* the box whose edges kernels tag (one variant walking one static box with
   both edge nodes), or NULL */
const PlanBox *plan_edge_box(const Plan *pl);
attnc_status plan_visit(const Plan *pl, const PlanRun *r, int64_t b, int64_t h, int64_t qt,
                        PlanVisitFn fn, void *ud, Diag *d);

/*
** The kv tiles plan_visit visits for (b, h), and how many of them it tags
** full, summed over every q tile. In closed form where the iterator
** allows it (no list or data part, at most a few boxes, and every bound
** of a box on kv axis a, every conjunct of its may / must and the q
** order's formulas reading q tile axis a at most): then a q tile's counts
** are sums of products over the axes (inclusion-exclusion over the boxes),
** and their sum over the q tiles a product of sums over each axis's tile
** coordinates, so the cost grows with the sum of the tiles per axis, not
** with their product. Otherwise it walks plan_visit over every q tile.
*/
attnc_status plan_count_tiles(const Plan *pl, const PlanRun *r, int64_t b, int64_t h,
                              int64_t *visited, int64_t *full, Diag *d);
/* the same for q tile qt alone (one plan_visit) */
attnc_status plan_count_q_tile(const Plan *pl, const PlanRun *r, int64_t b, int64_t h, int64_t qt,
                               int64_t *visited, int64_t *full, Diag *d);

/* metadata of ITER_DATA variants: size in bytes, and the host pre-pass */
int64_t plan_metadata_bytes(const Plan *pl, const PlanRun *r);
attnc_status plan_prepass(const Plan *pl, const PlanRun *r, int32_t *meta, Diag *d);

/* what explain prints; density/visited_allowed need brute force (slow) */
typedef struct PlanStats {
  int64_t tiles_total, tiles_visited, tiles_full, tiles_partial;  /* over b, h, q tile, kv tile */
  int64_t pairs_total;              /* valid (b, h, q, k) */
  int64_t pairs_allowed;            /* -1 when not counted */
  int64_t pairs_visited;            /* valid pairs inside visited tiles */
  int64_t kv_tiles_per_q_tile_max;
  int64_t metadata_bytes;
  double density, visited_allowed_fraction;   /* -1 when not counted */
  /* brute-force checks (when counted): should all be 0 */
  int64_t skipped_allowed;          /* allowed pairs in unvisited tiles */
  int64_t full_violations;          /* tiles tagged full holding a masked or invalid pair */
  int64_t tiles_with_allowed;       /* tiles holding an allowed pair */
  int64_t tiles_edge;               /* COUNT_ALL: partial tiles past one edge of the full range */
  int64_t edge_violations;          /* ... where that edge's bounds differ from the mask */
} PlanStats;

typedef enum PlanCount {
  COUNT_TILES,      /* iterator only: no mask evaluation */
  COUNT_VISITED,    /* + evaluate the mask inside visited partial tiles (density exact, no skip check) */
  COUNT_ALL         /* + every pair of every tile: the full brute-force check */
} PlanCount;

/* bitmap: optional [Sq x Sk] out-param per (b=0,h=0) tile class for pictures */
attnc_status plan_stats(const Plan *pl, const PlanRun *r, PlanCount how, PlanStats *st,
                        Diag *d);

/* per-tile class for (b, h): 0 = skipped, 1 = partial, 2 = full, into
   cls[qt * nkt + kt] (caller allocates plan ntiles(q) * ntiles(kv)) */
attnc_status plan_tile_map(const Plan *pl, const PlanRun *r, int64_t b, int64_t h,
                           uint8_t *cls, Diag *d);

/* ------------------------------------- internal helpers of the passes */

/* what a pattern node depends on (bit set) */
enum {
  DEP_Q = 1, DEP_K = 2, DEP_B = 4, DEP_H = 8, DEP_SEQ = 16, DEP_LOAD = 32,
  DEP_FLOAT = 64, DEP_SCORE = 128, DEP_QC = 256, DEP_KC = 512
};
const uint16_t *plan_deps(Plan *pl);     /* one entry per node of pl->pat */
void pattern_deps(const IrPattern *p, uint16_t *dep);   /* dep: p->nnodes entries */

/* int node builders on pl->pat; -1 (open) propagates; -2 on error */
int pn_const(Plan *pl, int64_t v, int line);
int pn_op(Plan *pl, IrOp op, int a, int b, int line, Diag *d);
bool pn_is_const(const Plan *pl, int n, int64_t *v);

/* the q-side interval of pattern node n over the current q tile:
   lo/hi PlanExprs, NULL = unbounded; bools as (must, may) */
typedef struct PeIval { const PlanExpr *lo, *hi; } PeIval;
PeIval plan_interval(Plan *pl, int node);
void plan_interval_reset(Plan *pl);

/* a node over h and constants only, as a PlanExpr (NULL if not possible) */
const PlanExpr *plan_ir_to_expr(Plan *pl, int node);

#endif
