/*
** ir.h -- the pattern IR: what an attention variant computes.
**
** A pattern is a set of declarations (params, runtime inputs, token grid,
** dtypes, head dims) plus two expression DAGs over symbolic values:
**   mask(b, h, q, k)        -> bool   (which pairs attend; absent = all)
**   score(s, b, h, q, k)    -> float  (the score modification; absent = s)
** Nodes live in one array per pattern, in topological order: every argument
** index is smaller than the node's own index. Each node remembers the spec
** line it came from. Params are resolved to constants when the spec is
** traced; the pattern keeps their declarations and values for printing,
** hashing and explain.
**
** This is the base layer: frontend/, passes/, backend/ and runtime/ include
** it; it includes only the public header.
*/
#ifndef ATTNC_IR_H
#define ATTNC_IR_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdbool.h>

#include "attnc.h"

/* ---------------------------------------------------------------- arena */

/*
** An arena per compilation: everything one compile allocates comes from it
** and goes at once with arena_free. Allocation failure returns NULL (and
** sets a.failed); callers report ATTNC_ERR_NOMEM.
*/
typedef struct ArenaChunk ArenaChunk;
typedef struct Arena {
  ArenaChunk *head;
  size_t used_bytes;   /* total bytes handed out */
  size_t limit_bytes;  /* 0 = unlimited */
  bool failed;
} Arena;

void  arena_init(Arena *a);
void  arena_free(Arena *a);
void *arena_alloc(Arena *a, size_t n);            /* zeroed, 16-aligned */
void *arena_realloc(Arena *a, void *p, size_t old, size_t n);
char *arena_strdup(Arena *a, const char *s);
char *arena_printf(Arena *a, const char *fmt, ...);

/* test hook: make the n-th allocation from now fail (-1 = never) */
void arena_fail_after(long n);

/* ---------------------------------------------------------- diagnostics */

/*
** Errors are values. A Diag collects the first error (and optional notes)
** of one operation; it is turned into an attnc_error at the API boundary.
** User errors carry the spec location; internal errors say they are bugs.
*/
typedef struct Loc {
  const char *file;    /* spec chunk name, e.g. "specs/causal.lua" (arena) */
  int line;            /* 1-based, 0 = unknown */
} Loc;

typedef struct Diag {
  attnc_status status; /* ATTNC_OK while no error */
  char msg[1024];      /* "file:line: message" (or "message" without loc) */
} Diag;

/* record an error (the first one wins); returns the status for chaining */
attnc_status diag_error(Diag *d, attnc_status st, Loc loc, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 4, 5)))
#endif
  ;
attnc_status diag_verror(Diag *d, attnc_status st, Loc loc, const char *fmt, va_list ap);
static inline bool diag_ok(const Diag *d) { return d->status == ATTNC_OK; }
void diag_to_error(const Diag *d, attnc_error *err);

/* ------------------------------------------------------------------ ops */

/* value types of nodes */
typedef enum IrType { IR_VOID = 0, IR_BOOL, IR_INT, IR_FLOAT } IrType;
const char *ir_type_name(IrType t);

/*
** The op table. X(ENUM, "name", arity, kind) with arity -1 for variadic
** (LOAD, CONTAINS). kind: LEAF (no args), ARITH (int/float -> same),
** CMP (-> bool), LOGIC (bool -> bool), FMATH (float -> float), OTHER.
**
**   const      imm.i / imm.f / imm.i (bool)       type from node
**   batch head  the batch index b, the query head h (0..Hq-1)
**   q k         token indices (row-major over the grid)
**   qc kc       coordinate imm.i (0 = first, slowest grid axis) of q / k
**   seqq seqk   runtime sequence lengths Sq / Skv
**   score       the raw score s (only in the score DAG)
**   load        input imm.i indexed by args (one per dim)
**   contains    exists j: input imm.i [args[0..n-2], j] == args[n-1]
*/
#define IR_OPS(X) \
  X(CONST,    "const",    0, LEAF)  \
  X(BATCH,    "batch",    0, LEAF)  \
  X(HEAD,     "head",     0, LEAF)  \
  X(Q,        "q",        0, LEAF)  \
  X(K,        "k",        0, LEAF)  \
  X(QC,       "qc",       0, LEAF)  \
  X(KC,       "kc",       0, LEAF)  \
  X(SEQQ,     "seqq",     0, LEAF)  \
  X(SEQK,     "seqk",     0, LEAF)  \
  X(SCORE,    "score",    0, LEAF)  \
  X(ADD,      "add",      2, ARITH) \
  X(SUB,      "sub",      2, ARITH) \
  X(MUL,      "mul",      2, ARITH) \
  X(DIV,      "div",      2, FMATH) \
  X(IDIV,     "idiv",     2, ARITH) \
  X(MOD,      "mod",      2, ARITH) \
  X(POW,      "pow",      2, FMATH) \
  X(NEG,      "neg",      1, ARITH) \
  X(ABS,      "abs",      1, ARITH) \
  X(MIN,      "min",      2, ARITH) \
  X(MAX,      "max",      2, ARITH) \
  X(EXP,      "exp",      1, FMATH) \
  X(LOG,      "log",      1, FMATH) \
  X(TANH,     "tanh",     1, FMATH) \
  X(SQRT,     "sqrt",     1, FMATH) \
  X(TOFLOAT,  "tofloat",  1, OTHER) \
  X(LT,       "lt",       2, CMP)   \
  X(LE,       "le",       2, CMP)   \
  X(GT,       "gt",       2, CMP)   \
  X(GE,       "ge",       2, CMP)   \
  X(EQ,       "eq",       2, CMP)   \
  X(NE,       "ne",       2, CMP)   \
  X(AND,      "and",      2, LOGIC) \
  X(OR,       "or",       2, LOGIC) \
  X(NOT,      "not",      1, LOGIC) \
  X(SELECT,   "select",   3, OTHER) \
  X(LOAD,     "load",    -1, OTHER) \
  X(CONTAINS, "contains",-1, OTHER)

typedef enum IrOp {
#define X(e, n, a, k) IR_##e,
  IR_OPS(X)
#undef X
  IR_NOPS
} IrOp;

typedef enum IrKind { IRK_LEAF, IRK_ARITH, IRK_CMP, IRK_LOGIC, IRK_FMATH, IRK_OTHER } IrKind;

const char *ir_op_name(IrOp op);
int ir_op_arity(IrOp op);          /* -1: variadic */
IrKind ir_op_kind(IrOp op);
bool ir_op_from_name(const char *name, IrOp *out);
/* comparisons: not (a op b) is a ir_cmp_negate(op) b; a op b is b
   ir_cmp_swap(op) a (other ops come back as they are) */
IrOp ir_cmp_negate(IrOp op);
IrOp ir_cmp_swap(IrOp op);

#define IR_MAXARGS 6

typedef struct IrNode {
  uint8_t op;          /* IrOp */
  uint8_t type;        /* IrType */
  uint8_t nargs;
  int32_t args[IR_MAXARGS];
  union { int64_t i; double f; } imm;
  int line;            /* spec line (file is the pattern's) */
} IrNode;

/* ---------------------------------------------------------- declarations */

typedef struct IrParam {
  const char *name;
  IrType type;         /* IR_INT or IR_FLOAT */
  double value;        /* as used (exact for |int| < 2^53) */
  double def;          /* the spec's default */
  bool overridden;     /* set with -D */
  const char *doc;     /* the spec's doc = "...", or NULL */
  int line;
} IrParam;

/* a tensor dim: a constant, or a runtime size divided (ceiling) by a constant */
typedef enum IrDimSym { DIM_CONST = 0, DIM_B, DIM_H, DIM_HKV, DIM_SQ, DIM_SK } IrDimSym;
typedef struct IrDim {
  IrDimSym sym;
  int64_t value;       /* DIM_CONST: the size; otherwise the divisor (>= 1) */
} IrDim;
const char *ir_dimsym_name(IrDimSym s);

typedef enum IrDtype { DT_I32 = 0, DT_F32, DT_F16, DT_BF16, DT_F64 } IrDtype;
const char *ir_dtype_name(IrDtype t);
bool ir_dtype_from_name(const char *name, IrDtype *out);

#define IR_MAXDIMS 4
typedef struct IrInput {
  const char *name;
  IrDtype dtype;       /* DT_I32 or DT_F32 */
  int rank;
  IrDim dims[IR_MAXDIMS];
  int line;
} IrInput;

#define IR_MAXGRID 3

/*
** The whole pattern. Lists are arena arrays. mask/score are node indices
** or -1 when absent. dtypes and head_dims are the sets the spec allows
** (a bitmask over IrDtype; 0 = any), head_dims an allow list (n = 0: any).
*/
typedef struct IrPattern {
  Arena *arena;
  const char *file;           /* spec chunk name used in locations */
  const char *name;           /* pattern name (file stem unless given) */
  IrParam *params;  int nparams;
  IrInput *inputs;  int ninputs;
  int grid_rank;              /* 0 = plain 1-D sequence */
  int64_t grid[IR_MAXGRID];   /* sizes, slowest axis first */
  double scale;               /* 0 = default 1/sqrt(D) */
  unsigned dtypes;            /* bit (1 << IrDtype); 0 = any */
  int head_dims[8]; int nhead_dims;
  IrNode *nodes;    int nnodes, cap;
  int mask;                   /* bool node, or -1 = all pairs */
  int score;                  /* float node, or -1 = s unchanged */
} IrPattern;

IrPattern *ir_pattern_new(Arena *a, const char *file);
Loc ir_loc(const IrPattern *p, int line);
Loc ir_node_loc(const IrPattern *p, int node);

/*
** Builder. Each returns the new node index, or -1 with an error in d
** (type errors name the spec line). Ints are promoted to float where an
** op mixes them (add/sub/mul/min/max/select, compares); div, pow and the
** float functions always give float. The builder does not fold or share.
*/
int ir_const_int(IrPattern *p, int64_t v, int line);
int ir_const_float(IrPattern *p, double v, int line);
int ir_const_bool(IrPattern *p, bool v, int line);
int ir_leaf(IrPattern *p, IrOp op, int64_t imm, int line);   /* batch..score */
int ir_node(IrPattern *p, IrOp op, const int *args, int nargs, int64_t imm,
            int line, Diag *d);

int ir_add_param(IrPattern *p, const IrParam *prm);           /* index */
int ir_add_input(IrPattern *p, const IrInput *in);            /* index */
int ir_find_param(const IrPattern *p, const char *name);      /* -1 if none */
int ir_find_input(const IrPattern *p, const char *name);

/* -------------------------------------------------------- text and checks */

/*
** ir_print writes the canonical text form; ir_parse reads it back. Only
** nodes reachable from mask and score are printed, renumbered in order, so
** parse(print(p)) prints identically. Example:
**
**   pattern "sliding_window" file "specs/sliding_window.lua"
**   param window int 1024 default 1024 line 5
**   %0 = q : int @7
**   %1 = k : int @7
**   %2 = sub %0 %1 : int @7
**   ...
**   mask %5
*/
char *ir_print(const IrPattern *p, Arena *out);    /* NUL-terminated text */
IrPattern *ir_parse(Arena *a, const char *text, const char *name, Diag *d);

/* structural checks: types, arity, order, ranges. Internal-error status. */
attnc_status ir_verify(const IrPattern *p, Diag *d);

/* fold constants (exact integer semantics, Lua floor div/mod) in place;
   division by a constant zero is a user error at the node's line */
attnc_status ir_fold(IrPattern *p, Diag *d);
/* share identical subexpressions and drop unreachable nodes */
attnc_status ir_cse(IrPattern *p, Diag *d);

/* 64-bit FNV-1a content hash of the printed form (for caches) */
uint64_t ir_hash(const IrPattern *p);


/* ------------------------------------------------------------ evaluation */

/* a host view of a runtime input tensor (strides in elements) */
typedef struct IrTensorView {
  const void *data;
  IrDtype dtype;               /* DT_I32 or DT_F32 (or DT_F64) */
  int rank;
  int64_t shape[IR_MAXDIMS];
  int64_t strides[IR_MAXDIMS];
} IrTensorView;

/* the point at which an expression is evaluated */
typedef struct IrEnv {
  int64_t b, h, q, k;          /* h is the query head */
  int64_t sq, sk;              /* sequence lengths */
  int64_t qc[IR_MAXGRID], kc[IR_MAXGRID];  /* grid coordinates of q, k */
  double s;                    /* the raw score (score DAG only) */
  const IrTensorView *inputs;  /* p->ninputs views, in declaration order */
} IrEnv;

/* fill env->qc / env->kc from env->q / env->k and the pattern's grid */
void ir_env_coords(const IrPattern *p, IrEnv *env);

/*
** Evaluate nodes 0..root in double precision (ints exact as int64) into
** vals (p->nnodes entries, caller-provided scratch). Returns the root's
** value as a double (bools as 0/1). Runtime faults (integer division by
** zero, an input index out of range) are user errors at the node's line.
*/
double ir_eval(const IrPattern *p, int root, const IrEnv *env, double *vals, Diag *d);

/* Lua's floor division and modulo on integers (b != 0) */
static inline int64_t ir_floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
  return q;
}
static inline int64_t ir_floormod(int64_t a, int64_t b) {
  int64_t m = a % b;
  if (m != 0 && ((m ^ b) < 0)) m += b;
  return m;
}

#endif
