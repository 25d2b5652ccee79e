/*
** print.c -- the canonical text form of a pattern, and its content hash.
**
** The text is a contract (docs/ir.md): ir_parse reads it back, golden
** tests compare it, and the kernel cache hashes it. It depends only on what
** the pattern means: the declarations, then the nodes reachable from mask
** and score numbered in depth-first post-order, so two patterns with the
** same DAG print alike whatever order their nodes were built in.
*/
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

/* ------------------------------------------------------------ the buffer */

/* a growing string in a scratch arena; failed once an allocation fails */
typedef struct Buf {
  Arena *a;
  char *s;
  size_t n, cap;
  bool failed;
} Buf;

static void put(Buf *b, const char *s, size_t n) {
  if (b->failed) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->n + n + 1) cap *= 2;
    char *t = arena_realloc(b->a, b->s, b->cap, cap);
    if (!t) { b->failed = true; return; }
    b->s = t;
    b->cap = cap;
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = '\0';
}

static void puts_(Buf *b, const char *s) { put(b, s, strlen(s)); }

/* formatted output of short items (numbers, keywords) */
static void putf(Buf *b, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 2, 3)))
#endif
  ;
static void putf(Buf *b, const char *fmt, ...) {
  char tmp[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof tmp) { b->failed = true; return; }
  put(b, tmp, (size_t)n);
}

/* ------------------------------------------------------------ the atoms */

static bool reads_back(const char *s, double v) {
  double r = strtod(s, NULL);
  return memcmp(&r, &v, sizeof r) == 0;
}

/*
** A double as the shortest decimal that reads back (strtod) to the same
** bits, in plain notation when its exponent is 0..15 ("30.0", not
** "3e+01"), with ".0" added to integral values so they read as floats;
** "inf", "-inf"; "nan" and "-nan" for the default quiet NaNs and
** "nan(0x<bits>)" for any other NaN, so every double round-trips exactly.
*/
static void fmt_float(double v, char out[48]) {
  uint64_t bits;
  memcpy(&bits, &v, sizeof bits);
  if (isnan(v)) {
    if (bits == UINT64_C(0x7ff8000000000000)) strcpy(out, "nan");
    else if (bits == UINT64_C(0xfff8000000000000)) strcpy(out, "-nan");
    else snprintf(out, 48, "nan(0x%016" PRIx64 ")", bits);
    return;
  }
  if (isinf(v)) { strcpy(out, v < 0 ? "-inf" : "inf"); return; }
  int prec = 1;
  for (; prec <= 17; prec++) {
    snprintf(out, 48, "%.*g", prec, v);
    if (reads_back(out, v)) break;
  }
  const char *e = strchr(out, 'e');
  int x = e ? atoi(e + 1) : -1;
  if (x >= prec && x < 16) {
    char plain[48];
    snprintf(plain, sizeof plain, "%.*g", x + 1, v);
    if (reads_back(plain, v)) strcpy(out, plain);
  }
  if (!strpbrk(out, ".e")) strcat(out, ".0");
}

static void put_float(Buf *b, double v) {
  char tmp[48];
  fmt_float(v, tmp);
  puts_(b, tmp);
}

/* an int param's value: an integer when it is one, else as a float */
static void put_intval(Buf *b, double v) {
  if (v == floor(v) && v >= -9223372036854775808.0 && v < 9223372036854775808.0)
    putf(b, "%lld", (long long)v);
  else
    put_float(b, v);
}

/* a string in double quotes; \" \\ \n \t \r and \xHH for other controls */
static void put_string(Buf *b, const char *s) {
  puts_(b, "\"");
  for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
    switch (*c) {
    case '"':  puts_(b, "\\\""); break;
    case '\\': puts_(b, "\\\\"); break;
    case '\n': puts_(b, "\\n"); break;
    case '\t': puts_(b, "\\t"); break;
    case '\r': puts_(b, "\\r"); break;
    default:
      if (*c < 0x20 || *c == 0x7f) putf(b, "\\x%02x", *c);
      else put(b, (const char *)c, 1);
    }
  }
  puts_(b, "\"");
}

/* a name: bare when it is an identifier, else a quoted string */
static void put_name(Buf *b, const char *s) {
  bool ident = s && (*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'));
  for (const char *c = s; ident && *c; c++)
    ident = *c == '_' || (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
            (*c >= '0' && *c <= '9');
  if (ident) puts_(b, s);
  else put_string(b, s);
}

/* ------------------------------------------------------- declarations */

static void put_header(Buf *b, const IrPattern *p) {
  puts_(b, "pattern ");
  put_string(b, p->name);
  puts_(b, " file ");
  put_string(b, p->file);
  puts_(b, "\n");
}

static void put_param(Buf *b, const IrParam *prm) {
  puts_(b, "param ");
  put_name(b, prm->name);
  putf(b, " %s ", ir_type_name(prm->type));
  if (prm->type == IR_INT) put_intval(b, prm->value); else put_float(b, prm->value);
  puts_(b, " default ");
  if (prm->type == IR_INT) put_intval(b, prm->def); else put_float(b, prm->def);
  if (prm->overridden) puts_(b, " overridden");
  if (prm->doc) {
    puts_(b, " doc ");
    put_string(b, prm->doc);
  }
  putf(b, " line %d\n", prm->line);
}

/* "[B, H, Sq/64, 4]": constants as integers, runtime sizes by symbol */
static void put_input(Buf *b, const IrInput *in) {
  puts_(b, "input ");
  put_name(b, in->name);
  putf(b, " %s [", ir_dtype_name(in->dtype));
  for (int i = 0; i < in->rank && i < IR_MAXDIMS; i++) {
    const IrDim *dm = &in->dims[i];
    if (i) puts_(b, ", ");
    if (dm->sym == DIM_CONST) putf(b, "%" PRId64, dm->value);
    else {
      puts_(b, ir_dimsym_name(dm->sym));
      if (dm->value != 1) putf(b, "/%" PRId64, dm->value);
    }
  }
  putf(b, "] line %d\n", in->line);
}

/* grid, scale, dtypes and head_dims: one line each, only when set */
static void put_shape_decls(Buf *b, const IrPattern *p) {
  if (p->grid_rank > 0) {
    puts_(b, "grid");
    for (int i = 0; i < p->grid_rank && i < IR_MAXGRID; i++) putf(b, " %" PRId64, p->grid[i]);
    puts_(b, "\n");
  }
  uint64_t sbits;
  memcpy(&sbits, &p->scale, sizeof sbits);
  if (sbits != 0) {
    puts_(b, "scale ");
    put_float(b, p->scale);
    puts_(b, "\n");
  }
  if (p->dtypes) {
    puts_(b, "dtypes");
    for (unsigned t = 0; t < 32; t++)
      if (p->dtypes & (1u << t)) putf(b, " %s", ir_dtype_name((IrDtype)t));
    puts_(b, "\n");
  }
  if (p->nhead_dims > 0) {
    puts_(b, "head_dims");
    for (int i = 0; i < p->nhead_dims && i < 8; i++) putf(b, " %d", p->head_dims[i]);
    puts_(b, "\n");
  }
}

/* ---------------------------------------------------------------- nodes */

/* the args of node i that are followed: in range and earlier than i */
static bool arg_ok(int i, int a) { return a >= 0 && a < i; }

/*
** Number the nodes reachable from mask and score in depth-first
** post-order (mask first, arguments left to right). newid[old] gets the
** new number (-1: unreachable), order[new] the old index; returns the
** count, or -1 when out of memory. The numbering depends only on the
** DAG's shape. Arguments that are out of range or not earlier than their
** user are not followed (the verifier reports them; here they print %?).
*/
static int number_nodes(const IrPattern *p, Arena *a, int *newid, int *order) {
  int n = p->nnodes, count = 0, sp = 0;
  int *stack = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
  int *cur = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
  if (!stack || !cur) return -1;
  for (int i = 0; i < n; i++) newid[i] = -1;           /* -1 new, -2 on stack */
  int roots[2] = { p->mask, p->score };
  for (int r = 0; r < 2; r++) {
    if (roots[r] < 0 || roots[r] >= n || newid[roots[r]] != -1) continue;
    stack[sp++] = roots[r];
    newid[roots[r]] = -2;
    while (sp > 0) {
      int t = stack[sp - 1];
      const IrNode *nd = &p->nodes[t];
      int nargs = nd->nargs < IR_MAXARGS ? nd->nargs : IR_MAXARGS;
      if (cur[t] < nargs) {
        int x = nd->args[cur[t]++];
        if (arg_ok(t, x) && newid[x] == -1) { newid[x] = -2; stack[sp++] = x; }
      } else {
        sp--;
        newid[t] = count;
        order[count++] = t;
      }
    }
  }
  return count;
}

static bool has_imm(IrOp op) {
  return op == IR_CONST || op == IR_QC || op == IR_KC || op == IR_LOAD || op == IR_CONTAINS;
}

/* the immediate of node nd, after its op name */
static void put_imm(Buf *b, const IrPattern *p, const IrNode *nd) {
  if (nd->op == IR_CONST) {
    puts_(b, " ");
    if (nd->type == IR_FLOAT) put_float(b, nd->imm.f);
    else if (nd->type == IR_BOOL) puts_(b, nd->imm.i ? "true" : "false");
    else putf(b, "%" PRId64, nd->imm.i);
  } else if (nd->op == IR_QC || nd->op == IR_KC) {
    putf(b, " %" PRId64, nd->imm.i);
  } else {                                             /* load, contains */
    puts_(b, " ");
    if (nd->imm.i >= 0 && nd->imm.i < p->ninputs) put_name(b, p->inputs[nd->imm.i].name);
    else putf(b, "?%" PRId64, nd->imm.i);
  }
}

/* "%N = op [imm] %a %b : type @line" */
static void put_node(Buf *b, const IrPattern *p, int old, const int *newid) {
  const IrNode *nd = &p->nodes[old];
  putf(b, "%%%d = %s", newid[old], ir_op_name((IrOp)nd->op));
  if (nd->op < IR_NOPS && has_imm((IrOp)nd->op)) put_imm(b, p, nd);
  int nargs = nd->nargs < IR_MAXARGS ? nd->nargs : IR_MAXARGS;
  for (int j = 0; j < nargs; j++) {
    int x = nd->args[j];
    if (arg_ok(old, x) && newid[x] >= 0) putf(b, " %%%d", newid[x]);
    else puts_(b, " %?");
  }
  putf(b, " : %s @%d\n", ir_type_name((IrType)nd->type), nd->line);
}

static void put_root(Buf *b, const IrPattern *p, const char *what, int root, const int *newid) {
  if (root == -1) return;
  if (root >= 0 && root < p->nnodes && newid[root] >= 0) putf(b, "%s %%%d\n", what, newid[root]);
  else putf(b, "%s %%?\n", what);
}

/*
** The canonical text of p, NUL-terminated, in arena out (one allocation);
** NULL when out of memory. Broken IR prints too (bad references as %?),
** so the verifier's failures can be dumped, but only valid IR parses back.
*/
char *ir_print(const IrPattern *p, Arena *out) {
  Arena scratch;
  arena_init(&scratch);
  Buf b = { .a = &scratch };
  int n = p->nnodes > 0 && p->nodes ? p->nnodes : 0;
  int *newid = arena_alloc(&scratch, sizeof(int) * (size_t)(n + 1));
  int *order = arena_alloc(&scratch, sizeof(int) * (size_t)(n + 1));
  int count = newid && order ? number_nodes(p, &scratch, newid, order) : -1;
  char *text = NULL;
  if (count >= 0) {
    put_header(&b, p);
    for (int i = 0; i < p->nparams; i++) put_param(&b, &p->params[i]);
    for (int i = 0; i < p->ninputs; i++) put_input(&b, &p->inputs[i]);
    put_shape_decls(&b, p);
    for (int i = 0; i < count; i++) put_node(&b, p, order[i], newid);
    put_root(&b, p, "mask", p->mask, newid);
    put_root(&b, p, "score", p->score, newid);
    if (!b.failed) {
      text = arena_alloc(out, b.n + 1);
      if (text) memcpy(text, b.s, b.n + 1);
    }
  }
  arena_free(&scratch);
  return text;
}

/* 64-bit FNV-1a of the printed text; 0 when out of memory */
uint64_t ir_hash(const IrPattern *p) {
  Arena a;
  arena_init(&a);
  const char *s = ir_print(p, &a);
  uint64_t h = 0;
  if (s) {
    h = UINT64_C(0xcbf29ce484222325);
    for (; *s; s++) {
      h ^= (unsigned char)*s;
      h *= UINT64_C(0x100000001b3);
    }
  }
  arena_free(&a);
  return h;
}
