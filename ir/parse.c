/*
** parse.c -- read the text form of a pattern (docs/ir.md) back into IR.
**
** The reader is line based and never looks past the end of the current
** line, so any bytes at all give either a pattern or one error
** "name:line: message" naming what was expected (it is fuzzed). Nodes are
** rebuilt through the typed builder, so their types are derived again and
** must agree with the printed ones; the result passes ir_verify.
*/
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

enum { WORD_MAX = 64 };                 /* longest number or keyword */

/* where the reader is in the declaration order of the text */
typedef enum Phase { PH_HEADER, PH_DECLS, PH_NODES, PH_ROOTS } Phase;

typedef struct Parser {
  Arena *a;
  Diag *d;
  const char *name;        /* the text's name, for messages */
  const char *s, *eol;     /* the cursor and the end of the current line */
  int line;                /* the text's line number */
  IrPattern *p;
  const char *file;        /* the header's file: p->file once parsing ends */
  Phase phase;
  unsigned seen;           /* SEEN_* bits: grid, scale, dtypes, head_dims */
  int mask_line;           /* text line of "mask", for the score check */
} Parser;

enum { SEEN_GRID = 1, SEEN_SCALE = 2, SEEN_DTYPES = 4, SEEN_HEADDIMS = 8 };

/* ------------------------------------------------------------- errors */

static bool err(Parser *P, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 2, 3)))
#endif
  ;
static bool err(Parser *P, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_verror(P->d, ATTNC_ERR_SPEC, (Loc){ P->name, P->line }, fmt, ap);
  va_end(ap);
  return false;
}

static bool oom(Parser *P) {
  diag_error(P->d, ATTNC_ERR_NOMEM, (Loc){ P->name, P->line }, "out of memory");
  return false;
}

/* ------------------------------------------------------------- tokens */

static void skip_ws(Parser *P) {
  while (P->s < P->eol && (*P->s == ' ' || *P->s == '\t' || *P->s == '\r')) P->s++;
}

/* true at the end of the line or at a '#' comment */
static bool at_eol(Parser *P) {
  skip_ws(P);
  return P->s >= P->eol || *P->s == '#';
}

static bool is_delim(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\0' || strchr("\"%@:=[],/#", c);
}

/* a short description of what comes next, for "got ..." in messages */
static const char *next_desc(Parser *P, char buf[48]) {
  if (at_eol(P)) return "end of line";
  const char *e = P->s;
  if (is_delim(*e)) e++;
  else
    while (e < P->eol && !is_delim(*e) && e - P->s < 40) e++;
  snprintf(buf, 48, "'%.*s'", (int)(e - P->s), P->s);
  return buf;
}

static bool expected(Parser *P, const char *what) {
  char buf[48];
  return err(P, "expected %s, got %s", what, next_desc(P, buf));
}

/* read a word (a run of non-delimiters) if one of at most WORD_MAX - 1 bytes comes next */
static bool try_word(Parser *P, char buf[WORD_MAX]) {
  skip_ws(P);
  const char *e = P->s;
  while (e < P->eol && !is_delim(*e)) e++;
  if (e == P->s || e - P->s >= WORD_MAX) return false;
  memcpy(buf, P->s, (size_t)(e - P->s));
  buf[e - P->s] = '\0';
  P->s = e;
  return true;
}

/* a word, or an error naming what was expected */
static bool word(Parser *P, char buf[WORD_MAX], const char *what) {
  if (try_word(P, buf)) return true;
  if (P->s < P->eol && !is_delim(*P->s)) return err(P, "%s too long: '%.20s...'", what, P->s);
  return expected(P, what);
}

static bool accept(Parser *P, char c) {
  skip_ws(P);
  if (P->s < P->eol && *P->s == c) { P->s++; return true; }
  return false;
}

static bool expect_ch(Parser *P, char c, const char *what) {
  return accept(P, c) || expected(P, what);
}

/* the keyword kw; the cursor stays put when something else comes */
static bool accept_kw(Parser *P, const char *kw) {
  char buf[WORD_MAX];
  const char *save = P->s;
  if (try_word(P, buf) && strcmp(buf, kw) == 0) return true;
  P->s = save;
  return false;
}

static bool expect_kw(Parser *P, const char *kw) {
  char what[48];
  snprintf(what, sizeof what, "'%s'", kw);
  return accept_kw(P, kw) || expected(P, what);
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/*
** A double-quoted string with the escapes \" \\ \n \t \r \xHH (not \x00),
** copied into the arena.
*/
static bool string(Parser *P, const char **out, const char *what) {
  skip_ws(P);
  if (P->s >= P->eol || *P->s != '"') return expected(P, what);
  const char *c = ++P->s;
  char *buf = arena_alloc(P->a, (size_t)(P->eol - c) + 1);
  if (!buf) return oom(P);
  size_t n = 0;
  for (; c < P->eol && *c != '"'; c++) {
    if (*c != '\\') { buf[n++] = *c; continue; }
    if (++c >= P->eol) break;
    switch (*c) {
    case '"': case '\\': buf[n++] = *c; break;
    case 'n': buf[n++] = '\n'; break;
    case 't': buf[n++] = '\t'; break;
    case 'r': buf[n++] = '\r'; break;
    case 'x': {
      int hi = c + 1 < P->eol ? hexval(c[1]) : -1, lo = c + 2 < P->eol ? hexval(c[2]) : -1;
      if (hi < 0 || lo < 0) { P->s = c; return err(P, "expected two hex digits after \\x"); }
      if (hi == 0 && lo == 0) { P->s = c; return err(P, "\\x00 is not allowed in a string"); }
      buf[n++] = (char)(hi * 16 + lo);
      c += 2;
      break;
    }
    default:
      P->s = c;
      return err(P, "unknown escape '\\%c' in string (use \\\" \\\\ \\n \\t \\r or \\xHH)",
                 (*c > 0x20 && *c < 0x7f) ? *c : '?');
    }
  }
  P->s = c;
  if (c >= P->eol) return err(P, "unterminated string (a '\"' must close it on this line)");
  buf[n] = '\0';
  P->s++;
  *out = buf;
  return true;
}

static bool is_ident(const char *s) {
  if (!(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))) return false;
  for (; *s; s++)
    if (!(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
          (*s >= '0' && *s <= '9')))
      return false;
  return true;
}

/* a name: an identifier, or any string in quotes */
static bool name(Parser *P, const char **out, const char *what) {
  skip_ws(P);
  if (P->s < P->eol && *P->s == '"') return string(P, out, what);
  char buf[WORD_MAX];
  if (!word(P, buf, what)) return false;
  if (!is_ident(buf))
    return err(P, "expected %s (an identifier or a quoted string), got '%s'", what, buf);
  if (!(*out = arena_strdup(P->a, buf))) return oom(P);
  return true;
}

/* a whole word as a decimal int64: 0, or -1 when not one, 1 when out of range */
static int read_int(const char *s, int64_t *v) {
  if (!(s[0] == '-' || s[0] == '+' || (s[0] >= '0' && s[0] <= '9'))) return -1;
  char *end;
  errno = 0;
  long long x = strtoll(s, &end, 10);
  if (*end) return -1;
  *v = x;
  return errno == ERANGE;
}

/* a decimal integer in [lo, hi] */
static bool integer(Parser *P, int64_t *v, int64_t lo, int64_t hi, const char *what) {
  char buf[WORD_MAX];
  if (!word(P, buf, what)) return false;
  int64_t x = 0;
  int r = read_int(buf, &x);
  if (r < 0) return err(P, "expected %s (an integer), got '%s'", what, buf);
  if (r > 0 || x < lo || x > hi)
    return err(P, "%s out of range: %s (must be %lld to %lld)", what, buf, (long long)lo,
               (long long)hi);
  *v = x;
  return true;
}

static bool int32(Parser *P, int *v, int lo, const char *what) {
  int64_t x;
  if (!integer(P, &x, lo, INT_MAX, what)) return false;
  *v = (int)x;
  return true;
}

/*
** A double from its printed form: what strtod reads (decimal, hex, inf),
** plus "nan", "-nan" (the default quiet NaNs) and "nan(0x<16 hex>)" for a
** NaN with those exact bits. Returns false when s is none of these.
*/
static bool parse_double(const char *s, double *v) {
  const char *t = s + (*s == '-' || *s == '+');
  if ((t[0] | 32) == 'n' && (t[1] | 32) == 'a' && (t[2] | 32) == 'n') {
    uint64_t bits;
    if (t[3] == '\0') bits = *s == '-' ? UINT64_C(0xfff8000000000000) : UINT64_C(0x7ff8000000000000);
    else {
      if (t != s || strncmp(t + 3, "(0x", 3) != 0 || strlen(t) != 23 || t[22] != ')') return false;
      bits = 0;
      for (int i = 6; i < 22; i++) {
        int h = hexval(t[i]);
        if (h < 0) return false;
        bits = bits << 4 | (uint64_t)h;
      }
      if ((bits & UINT64_C(0x7ff0000000000000)) != UINT64_C(0x7ff0000000000000) ||
          (bits & UINT64_C(0x000fffffffffffff)) == 0)
        return false;                                 /* not a NaN */
    }
    memcpy(v, &bits, sizeof *v);
    return true;
  }
  if (!(*t == '.' || (*t >= '0' && *t <= '9') || (*t | 32) == 'i')) return false;
  char *end;
  errno = 0;
  *v = strtod(s, &end);
  if (*end) return false;
  return !(errno == ERANGE && isinf(*v));              /* overflow */
}

static bool number(Parser *P, double *v, const char *what) {
  char buf[WORD_MAX];
  if (!word(P, buf, what)) return false;
  if (!parse_double(buf, v)) return err(P, "expected %s (a number), got '%s'", what, buf);
  return true;
}

/* "%N" (no space after %), N an earlier node */
static bool ref(Parser *P, int *v, const char *what) {
  skip_ws(P);
  if (P->s >= P->eol || *P->s != '%') return expected(P, what);
  P->s++;
  if (P->s >= P->eol || *P->s < '0' || *P->s > '9') return expected(P, "a node number after '%'");
  int64_t x;
  if (!integer(P, &x, 0, INT_MAX, "node number")) return false;
  *v = (int)x;
  return true;
}

/* "@N" or "line N": a spec line */
static bool at_line(Parser *P, int *line) {
  skip_ws(P);
  if (P->s >= P->eol || *P->s != '@') return expected(P, "'@' and the spec line");
  P->s++;
  if (P->s >= P->eol || *P->s < '0' || *P->s > '9') return expected(P, "a spec line after '@'");
  return int32(P, line, 0, "spec line");
}

static bool kw_line(Parser *P, int *line) {
  return expect_kw(P, "line") && int32(P, line, 0, "spec line");
}

/* ------------------------------------------------------- declarations */

/* pattern "NAME" file "FILE" */
static bool parse_header(Parser *P) {
  const char *nm;
  if (!string(P, &nm, "the pattern name in quotes") || !expect_kw(P, "file") ||
      !string(P, &P->file, "the spec file name in quotes"))
    return false;
  P->p->name = nm;
  return true;
}

static bool param_type(Parser *P, IrType *t) {
  char buf[WORD_MAX];
  if (!word(P, buf, "a param type (int or float)")) return false;
  if (strcmp(buf, "int") == 0) *t = IR_INT;
  else if (strcmp(buf, "float") == 0) *t = IR_FLOAT;
  else return err(P, "expected a param type (int or float), got '%s'", buf);
  return true;
}

static bool check_intval(Parser *P, const IrParam *prm, double v, const char *what) {
  if (prm->type == IR_INT && !(isfinite(v) && v == floor(v)))
    return err(P, "int param '%s' has a %s that is not an integer", prm->name, what);
  return true;
}

/* param NAME TYPE VALUE default VALUE [overridden] [doc "TEXT"] line N */
static bool parse_param(Parser *P) {
  IrParam prm = { 0 };
  if (!name(P, &prm.name, "a param name") || !param_type(P, &prm.type) ||
      !number(P, &prm.value, "the param's value") || !expect_kw(P, "default") ||
      !number(P, &prm.def, "the param's default"))
    return false;
  prm.overridden = accept_kw(P, "overridden");
  if (accept_kw(P, "doc") && !string(P, &prm.doc, "the param's doc string")) return false;
  if (!kw_line(P, &prm.line)) return false;
  if (!prm.name[0]) return err(P, "a param needs a name");
  if (ir_find_param(P->p, prm.name) >= 0) return err(P, "param '%s' declared twice", prm.name);
  if (!check_intval(P, &prm, prm.value, "value") || !check_intval(P, &prm, prm.def, "default"))
    return false;
  return ir_add_param(P->p, &prm) >= 0 || oom(P);
}

/* a dim: N >= 1, or B H Hkv Sq Sk optionally followed by /DIVISOR */
static bool parse_dim(Parser *P, IrDim *dm) {
  skip_ws(P);
  if (P->s < P->eol && (*P->s == '-' || (*P->s >= '0' && *P->s <= '9'))) {
    dm->sym = DIM_CONST;
    return integer(P, &dm->value, 1, INT64_MAX, "a dim size");
  }
  char buf[WORD_MAX];
  if (!word(P, buf, "a dim (a size, or B, H, Hkv, Sq, Sk)")) return false;
  int s = DIM_B;
  while (s <= DIM_SK && strcmp(ir_dimsym_name((IrDimSym)s), buf) != 0) s++;
  if (s > DIM_SK) return err(P, "expected a dim (a size, or B, H, Hkv, Sq, Sk), got '%s'", buf);
  dm->sym = (IrDimSym)s;
  dm->value = 1;
  if (accept(P, '/')) return integer(P, &dm->value, 1, INT64_MAX, "a divisor");
  return true;
}

/* [DIM, DIM, ...] */
static bool parse_dims(Parser *P, IrInput *in) {
  if (!expect_ch(P, '[', "'[' and the input's dims")) return false;
  if (accept(P, ']')) return true;
  do {
    if (in->rank == IR_MAXDIMS) return err(P, "input '%s' has more than %d dims", in->name, IR_MAXDIMS);
    if (!parse_dim(P, &in->dims[in->rank++])) return false;
  } while (accept(P, ','));
  return expect_ch(P, ']', "',' or ']' after a dim");
}

/* input NAME DTYPE [DIMS] line N */
static bool parse_input(Parser *P) {
  IrInput in = { 0 };
  char buf[WORD_MAX];
  if (!name(P, &in.name, "an input name") || !word(P, buf, "an input dtype (i32 or f32)"))
    return false;
  if (!ir_dtype_from_name(buf, &in.dtype) || (in.dtype != DT_I32 && in.dtype != DT_F32))
    return err(P, "expected an input dtype (i32 or f32), got '%s'", buf);
  if (!parse_dims(P, &in) || !kw_line(P, &in.line)) return false;
  if (!in.name[0]) return err(P, "an input needs a name");
  if (ir_find_input(P->p, in.name) >= 0) return err(P, "input '%s' declared twice", in.name);
  return ir_add_input(P->p, &in) >= 0 || oom(P);
}

static bool once(Parser *P, unsigned bit, const char *kw) {
  if (P->seen & bit) return err(P, "'%s' given twice", kw);
  P->seen |= bit;
  return true;
}

/* grid N [N [N]] */
static bool parse_grid(Parser *P) {
  if (!once(P, SEEN_GRID, "grid")) return false;
  do {
    if (P->p->grid_rank == IR_MAXGRID) return err(P, "a grid has at most %d axes", IR_MAXGRID);
    if (!integer(P, &P->p->grid[P->p->grid_rank++], 1, INT64_MAX, "a grid size")) return false;
  } while (!at_eol(P));
  return true;
}

static bool parse_scale(Parser *P) {
  if (!once(P, SEEN_SCALE, "scale") || !number(P, &P->p->scale, "the scale")) return false;
  if (!isfinite(P->p->scale) || P->p->scale < 0)
    return err(P, "the scale must be finite and >= 0 (0 = 1/sqrt(D))");
  return true;
}

/* dtypes NAME... */
static bool parse_dtypes(Parser *P) {
  if (!once(P, SEEN_DTYPES, "dtypes")) return false;
  do {
    char buf[WORD_MAX];
    IrDtype t;
    if (!word(P, buf, "a dtype (i32, f32, f16, bf16, f64)")) return false;
    if (!ir_dtype_from_name(buf, &t))
      return err(P, "expected a dtype (i32, f32, f16, bf16, f64), got '%s'", buf);
    if (P->p->dtypes & (1u << t)) return err(P, "dtype %s listed twice", buf);
    P->p->dtypes |= 1u << t;
  } while (!at_eol(P));
  return true;
}

/* head_dims N... */
static bool parse_head_dims(Parser *P) {
  if (!once(P, SEEN_HEADDIMS, "head_dims")) return false;
  IrPattern *p = P->p;
  do {
    if (p->nhead_dims == 8) return err(P, "at most 8 head_dims");
    if (!int32(P, &p->head_dims[p->nhead_dims++], 1, "a head dim")) return false;
  } while (!at_eol(P));
  return true;
}

/* ---------------------------------------------------------------- nodes */

static bool node_type(Parser *P, IrType *t) {
  char buf[WORD_MAX];
  if (!word(P, buf, "a type (bool, int or float)")) return false;
  if (strcmp(buf, "bool") == 0) *t = IR_BOOL;
  else if (strcmp(buf, "int") == 0) *t = IR_INT;
  else if (strcmp(buf, "float") == 0) *t = IR_FLOAT;
  else return err(P, "expected a type (bool, int or float), got '%s'", buf);
  return true;
}

/* a constant's value, read as the printed type says */
static int build_const(Parser *P, const char *val, IrType t, int line) {
  IrPattern *p = P->p;
  if (t == IR_BOOL) {
    if (strcmp(val, "true") && strcmp(val, "false"))
      return err(P, "expected true or false for a bool const, got '%s'", val), -1;
    return ir_const_bool(p, val[0] == 't', line);
  }
  if (t == IR_INT) {
    int64_t x = 0;
    int r = read_int(val, &x);
    if (r < 0) return err(P, "expected an integer for an int const, got '%s'", val), -1;
    if (r > 0) return err(P, "int const out of range: %s", val), -1;
    return ir_const_int(p, x, line);
  }
  double f;
  if (!parse_double(val, &f)) return err(P, "expected a number for a float const, got '%s'", val), -1;
  return ir_const_float(p, f, line);
}

/*
** Build a non-const node with the builder. The text spells out every
** conversion, so the builder must add exactly this one node; its errors
** are reported at the text's line.
*/
static int build_node(Parser *P, IrOp op, const int *args, int nargs, int64_t imm, int line) {
  IrPattern *p = P->p;
  int arity = ir_op_arity(op);
  if (arity >= 0 && nargs != arity)
    return err(P, "'%s' takes %d argument%s, got %d", ir_op_name(op), arity, arity == 1 ? "" : "s",
               nargs), -1;
  if (op == IR_QC || op == IR_KC) {
    int rank = p->grid_rank > 0 ? p->grid_rank : 1;
    if (imm < 0 || imm >= rank)
      return err(P, "'%s' axis %lld out of range (the grid has %d ax%s)", ir_op_name(op),
                 (long long)imm, rank, rank == 1 ? "is" : "es"), -1;
  }
  if (op == IR_CONTAINS && nargs < 1)
    return err(P, "'contains' needs an input with at least one dim"), -1;
  Diag bd = { 0 };
  int before = p->nnodes;
  int id = ir_node(p, op, args, nargs, imm, line, &bd);  /* p->file is NULL: bare messages */
  if (id < 0) {
    if (bd.status == ATTNC_ERR_NOMEM) return oom(P), -1;
    return err(P, "%s", bd.msg), -1;
  }
  if (id != before || p->nnodes != before + 1) {
    if (op == IR_TOFLOAT) return err(P, "'tofloat' expects an int, got float"), -1;
    return err(P, "the arguments of '%s' mix int and float; convert with tofloat first",
               ir_op_name(op)), -1;
  }
  return id;
}

/* the immediate of op: a const's value (kept as text), an axis, an input */
static bool parse_imm(Parser *P, IrOp op, char val[WORD_MAX], int64_t *imm) {
  if (op == IR_CONST) return word(P, val, "the const's value");
  if (op == IR_QC || op == IR_KC) return integer(P, imm, 0, IR_MAXGRID - 1, "a grid axis");
  if (op == IR_LOAD || op == IR_CONTAINS) {
    const char *in;
    if (!name(P, &in, "an input name")) return false;
    if ((*imm = ir_find_input(P->p, in)) < 0) return err(P, "unknown input '%s'", in);
  }
  return true;
}

/* %N = OP [IMM] %A... : TYPE @LINE */
static bool parse_node(Parser *P) {
  IrPattern *p = P->p;
  int id, args[IR_MAXARGS], nargs = 0, line = 0;
  if (!ref(P, &id, "a node '%N'")) return false;
  if (id != p->nnodes)
    return err(P, "expected node %%%d (nodes are numbered in order), got %%%d", p->nnodes, id);
  char opname[WORD_MAX], val[WORD_MAX] = "";
  IrOp op;
  int64_t imm = 0;
  if (!expect_ch(P, '=', "'=' after the node number") || !word(P, opname, "an op")) return false;
  if (!ir_op_from_name(opname, &op)) return err(P, "unknown op '%s'", opname);
  if (!parse_imm(P, op, val, &imm)) return false;
  skip_ws(P);
  while (P->s < P->eol && *P->s == '%') {
    int a;
    if (nargs == IR_MAXARGS) return err(P, "too many arguments (at most %d)", IR_MAXARGS);
    if (!ref(P, &a, "an argument")) return false;
    if (a >= id) return err(P, "argument %%%d of %%%d is not defined before it", a, id);
    args[nargs++] = a;
    skip_ws(P);
  }
  IrType t = IR_VOID;
  if (!expect_ch(P, ':', "an argument '%N' or ':' and the type") || !node_type(P, &t) ||
      !at_line(P, &line))
    return false;
  if (op == IR_CONST && nargs) return err(P, "'const' takes no arguments, got %d", nargs);
  int got = op == IR_CONST ? build_const(P, val, t, line) : build_node(P, op, args, nargs, imm, line);
  if (got < 0) return diag_ok(P->d) ? oom(P) : false;
  if (p->nodes[got].type != t)
    return err(P, "'%s' gives %s here, but the text says %s", opname,
               ir_type_name((IrType)p->nodes[got].type), ir_type_name(t));
  return true;
}

/* mask %N / score %N */
static bool parse_root(Parser *P, bool is_mask) {
  IrPattern *p = P->p;
  int *root = is_mask ? &p->mask : &p->score, n;
  const char *what = is_mask ? "mask" : "score";
  if (*root >= 0) return err(P, "'%s' given twice", what);
  if (!ref(P, &n, "a node '%N'")) return false;
  if (n >= p->nnodes) return err(P, "%s %%%d is not a node (there are %d)", what, n, p->nnodes);
  IrType want = is_mask ? IR_BOOL : IR_FLOAT;
  if (p->nodes[n].type != want)
    return err(P, "%s must be %s, but %%%d is %s", what, ir_type_name(want), n,
               ir_type_name((IrType)p->nodes[n].type));
  if (is_mask) P->mask_line = P->line;
  *root = n;
  return true;
}

/* -------------------------------------------------------------- lines */

/* the declaration keyword kw, allowed before the first node */
static bool parse_decl(Parser *P, const char *kw) {
  static const struct { const char *kw; bool (*fn)(Parser *); } decls[] = {
    { "param", parse_param }, { "input", parse_input }, { "grid", parse_grid },
    { "scale", parse_scale }, { "dtypes", parse_dtypes }, { "head_dims", parse_head_dims },
  };
  for (size_t i = 0; i < sizeof decls / sizeof decls[0]; i++)
    if (strcmp(kw, decls[i].kw) == 0) {
      if (P->phase > PH_DECLS) return err(P, "'%s' after the nodes: declarations come first", kw);
      return decls[i].fn(P);
    }
  if (strcmp(kw, "pattern") == 0) return err(P, "'pattern' given twice (it is the first line only)");
  return err(P, "unknown line '%s': expected a declaration (param, input, grid, scale, dtypes, "
                "head_dims), a node '%%N = ...', mask or score", kw);
}

/* one non-blank line, dispatched on its first token */
static bool parse_line(Parser *P) {
  char kw[WORD_MAX];
  skip_ws(P);
  if (P->phase == PH_HEADER) {
    if (!expect_kw(P, "pattern")) return false;
    P->phase = PH_DECLS;
    return parse_header(P);
  }
  if (*P->s == '%') {
    if (P->phase == PH_ROOTS) return err(P, "a node after mask/score: nodes come first");
    P->phase = PH_NODES;
    return parse_node(P);
  }
  if (!word(P, kw, "a declaration, a node '%N = ...', mask or score")) return false;
  if (strcmp(kw, "mask") == 0 || strcmp(kw, "score") == 0) {
    P->phase = PH_ROOTS;
    return parse_root(P, kw[0] == 'm');
  }
  return parse_decl(P, kw);
}

/* the raw score may only feed the score DAG */
static bool check_mask_score(Parser *P) {
  IrPattern *p = P->p;
  if (p->mask < 0) return true;
  char *live = arena_alloc(P->a, (size_t)p->nnodes);
  if (!live) return oom(P);
  live[p->mask] = 1;
  for (int i = p->mask; i >= 0; i--) {
    if (!live[i]) continue;
    if (p->nodes[i].op == IR_SCORE) {
      P->line = P->mask_line;
      return err(P, "mask %%%d uses the raw score (%%%d); score is only for the score DAG",
                 p->mask, i);
    }
    for (int j = 0; j < p->nodes[i].nargs; j++) live[p->nodes[i].args[j]] = 1;
  }
  return true;
}

/* checks after the last line, then the verifier as a safety net */
static bool finish(Parser *P) {
  if (P->phase == PH_HEADER)
    return err(P, "expected 'pattern \"NAME\" file \"FILE\"', got an empty text");
  if (!check_mask_score(P)) return false;
  P->p->file = P->file;
  Diag vd = { 0 };
  if (ir_verify(P->p, &vd) == ATTNC_ERR_NOMEM) return oom(P);
  if (vd.status != ATTNC_OK) return err(P, "the IR does not verify: %s", vd.msg);
  return true;
}

/*
** Parse text (named name in messages) into a new pattern in arena a.
** Returns NULL with the error in d: ATTNC_ERR_SPEC "name:line: ..." for
** malformed text, ATTNC_ERR_NOMEM when the arena fails.
*/
IrPattern *ir_parse(Arena *a, const char *text, const char *name, Diag *d) {
  Parser P = { .a = a, .d = d, .name = name ? name : "<ir>" };
  if (!text) { err(&P, "no text"); return NULL; }
  if (!(P.p = ir_pattern_new(a, NULL))) { oom(&P); return NULL; }
  P.p->file = NULL;                     /* builder messages come without a location */
  const char *s = text;
  bool ok = true;
  while (ok && s) {
    const char *e = s;
    while (*e && *e != '\n') e++;
    P.s = s;
    P.eol = e;
    P.line++;
    if (!at_eol(&P)) ok = parse_line(&P) && (at_eol(&P) || expected(&P, "the end of the line"));
    s = *e == '\n' ? e + 1 : NULL;
  }
  if (ok) ok = finish(&P);
  return ok ? P.p : NULL;
}
