/*
** symbolic.c -- symbolic values, inputs and params: the C core under the
** attnc Lua library.
**
** While a spec's mask and score functions run, b, h, q, k and s are
** symbolic values: full userdata holding an IR node index, with one
** metatable per IR type ("symbolic int", "symbolic float", "symbolic
** bool") whose metamethods build nodes: + - * / // % ^ and unary minus,
** and & | ~ as and/or/not (binary ~ as xor) on booleans. Comparisons are
** methods (q:le(k)), since Lua turns the result of < <= == into a
** boolean; those metamethods raise an error that names the method.
** Plain Lua numbers and booleans mixed in become constants (integer
** subtype -> int, float -> float).
**
** Runtime inputs are userdata too ("attnc input"): t[i] (rank 1),
** t(i, j, ...) and t:contains(i, ..., v) build load and contains nodes.
**
** fe_push_core builds the table of C functions that frontend/attnc.lua
** receives as its argument ("core"); the library is written on top of it
** and the spec never sees core itself.
*/
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "frontend/fe_local.h"

typedef struct FeSym { int node; } FeSym;
typedef struct FeInput { int index; } FeInput;

static const char *const sym_tname[] = {
  "symbolic void", "symbolic bool", "symbolic int", "symbolic float"
};
#define INPUT_TNAME "attnc input"

/* ------------------------------------------------------------- helpers */

/* an identifier of at most 64 characters (names reach file names and code) */
static bool valid_name(const char *s) {
  if (!s || strlen(s) > 64) return false;
  if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))) return false;
  for (; *s; s++)
    if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
          (*s >= '0' && *s <= '9')))
      return false;
  return true;
}

/* the node of the symbolic value at idx, or -1 */
static int tosym(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TUSERDATA) return -1;
  for (int t = IR_BOOL; t <= IR_FLOAT; t++) {
    FeSym *s = luaL_testudata(L, idx, sym_tname[t]);
    if (s) return s->node;
  }
  return -1;
}

static FeInput *toinput(lua_State *L, int idx) { return luaL_testudata(L, idx, INPUT_TNAME); }

static int nomem(lua_State *L) {
  FeCtx *c = fe_ctx(L);
  c->status = ATTNC_ERR_NOMEM;
  return fe_error(L, "out of memory");
}

/*
** The pattern's nodes live in the caller's arena, outside the Lua heap;
** they count against the same cap, so a loop that builds nodes stops.
*/
static void check_room(lua_State *L, FeCtx *c) {
  size_t ir = c->arena->used_bytes - c->arena_base;
  if (c->mem_used + ir > c->mem_limit) {
    char sz[32];
    fe_fmt_size(c->mem_limit, sz, sizeof sz);
    c->mem_hit = true;
    fe_error(L, "spec uses more than %s of memory", sz);
  }
}

/* raise the builder's error (already "file:line: ...") as a Lua error */
static int raise_diag(lua_State *L, Diag *d) {
  FeCtx *c = fe_ctx(L);
  if (d->status == ATTNC_OK) return nomem(L);
  if (d->status != ATTNC_ERR_SPEC) c->status = d->status;
  c->in_handler = true;
  lua_pushstring(L, d->msg);
  return lua_error(L);
}

/* build a node through the typed builder; type errors become Lua errors */
static int make(lua_State *L, IrOp op, const int *args, int nargs, int64_t imm, int line) {
  FeCtx *c = fe_ctx(L);
  check_room(L, c);
  Diag d = { 0 };
  int id = ir_node(c->pat, op, args, nargs, imm, line, &d);
  if (id < 0) raise_diag(L, &d);
  return id;
}

static void push_sym(lua_State *L, int node) {
  FeCtx *c = fe_ctx(L);
  IrType t = (IrType)c->pat->nodes[node].type;
  FeSym *s = lua_newuserdatauv(L, sizeof *s, 0);
  s->node = node;
  luaL_setmetatable(L, sym_tname[t <= IR_FLOAT ? t : IR_VOID]);
}

/*
** The node for the Lua value at idx: a symbolic value's own node, or a
** new constant for a number (integer or float subtype) or a boolean.
** Anything else is an error naming what (an operator or a function).
*/
static int tonode(lua_State *L, int idx, int line, const char *what) {
  FeCtx *c = fe_ctx(L);
  int id = tosym(L, idx);
  if (id >= 0) return id;
  switch (lua_type(L, idx)) {
  case LUA_TNUMBER:
    check_room(L, c);
    id = lua_isinteger(L, idx) ? ir_const_int(c->pat, lua_tointeger(L, idx), line)
                               : ir_const_float(c->pat, lua_tonumber(L, idx), line);
    break;
  case LUA_TBOOLEAN:
    check_room(L, c);
    id = ir_const_bool(c->pat, lua_toboolean(L, idx), line);
    break;
  default: {
    const char *got = fe_describe(L, idx);
    const char *hint = "";
    if (strstr(got, "attnc mask")) hint = " (a mask object gives its value when called: m(b, h, q, k))";
    else if (strstr(got, "attnc input")) hint = " (index an input: t[i] or t(i, j))";
    else if (lua_type(L, idx) == LUA_TSTRING) hint = " (strings are not numbers in specs)";
    return fe_error(L, "%s: expected a number, a boolean or a symbolic value, got %s%s", what,
                    got, hint);
  }
  }
  if (id < 0) nomem(L);
  return id;
}

/* ------------------------------------------------------ the metamethods */

static const char *op_symbol(IrOp op) {
  switch (op) {
  case IR_ADD: return "+";   case IR_SUB: return "-";   case IR_MUL: return "*";
  case IR_DIV: return "/";   case IR_IDIV: return "//"; case IR_MOD: return "%";
  case IR_POW: return "^";   case IR_NEG: return "unary -";
  case IR_AND: return "&";   case IR_OR: return "|";    case IR_NOT: return "~";
  case IR_NE: return "~ (xor)";
  default: return ir_op_name(op);
  }
}

/* __add __sub __mul __div __idiv __mod __pow __unm: upvalue 1 is the op */
static int sym_arith(lua_State *L) {
  IrOp op = (IrOp)lua_tointeger(L, lua_upvalueindex(1));
  int line = fe_line(L), nargs = ir_op_arity(op), a[2];
  char what[32];
  snprintf(what, sizeof what, "'%s'", op_symbol(op));
  for (int i = 0; i < nargs; i++) a[i] = tonode(L, i + 1, line, what);
  push_sym(L, make(L, op, a, nargs, 0, line));
  return 1;
}

/* is the value at idx a boolean, plain or symbolic? */
static bool is_bool(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TBOOLEAN) return true;
  int id = tosym(L, idx);
  return id >= 0 && fe_ctx(L)->pat->nodes[id].type == IR_BOOL;
}

/* __band __bor __bxor __bnot: and, or, xor, not on booleans only */
static int sym_logic(lua_State *L) {
  IrOp op = (IrOp)lua_tointeger(L, lua_upvalueindex(1));
  int line = fe_line(L), nargs = op == IR_NOT ? 1 : 2, a[2];
  for (int i = 0; i < nargs; i++)
    if (!is_bool(L, i + 1)) {
      const char *got = fe_describe(L, i + 1);
      /* "m & k < q" reaches here as m & k: Lua applies & before < */
      if (nargs == 2 && is_bool(L, 2 - i))
        return fe_error(L, "'%s' combines booleans (conditions and masks), got %s; if a comparison "
                        "follows, Lua applies '%s' first: compare with a method, e.g. k:lt(q)",
                        op_symbol(op), got, op_symbol(op));
      return fe_error(L, "'%s' combines booleans (conditions and masks), got %s; "
                      "symbolic numbers have no bitwise operators", op_symbol(op), got);
    }
  for (int i = 0; i < nargs; i++) a[i] = tonode(L, i + 1, line, op_symbol(op));
  push_sym(L, make(L, op, a, nargs, 0, line));
  return 1;
}

static int sym_shift(lua_State *L) {
  return fe_error(L, "'%s' is not defined on symbolic values", lua_tostring(L, lua_upvalueindex(1)));
}

/* __lt __le __eq: Lua would turn the result into a boolean */
static int sym_order(lua_State *L) {
  const char *which = lua_tostring(L, lua_upvalueindex(1));
  if (strcmp(which, "lt") == 0)
    return fe_error(L, "cannot use '<' or '>' on symbolic values (Lua turns the result into a "
                    "boolean); use a:lt(b) or a:gt(b), or attnc.lt(a, b)");
  if (strcmp(which, "le") == 0)
    return fe_error(L, "cannot use '<=' or '>=' on symbolic values (Lua turns the result into "
                    "a boolean); use a:le(b) or a:ge(b), or attnc.le(a, b)");
  return fe_error(L, "cannot use '==' or '~=' on symbolic values (Lua turns the result into a "
                  "boolean); use a:eq(b) or a:ne(b), or attnc.eq(a, b)");
}

static int sym_misuse(lua_State *L) {
  const char *what = lua_tostring(L, lua_upvalueindex(1));
  const char *got = fe_describe(L, tosym(L, 1) < 0 && tosym(L, 2) >= 0 ? 2 : 1);
  return fe_error(L, "%s %s: a symbolic value has no value while the spec is traced", what, got);
}

/* the methods lt le gt ge eq ne: upvalue 1 is the op */
static int sym_cmp(lua_State *L) {
  IrOp op = (IrOp)lua_tointeger(L, lua_upvalueindex(1));
  if (lua_gettop(L) < 2)
    return fe_error(L, "%s needs two values: write a:%s(b), with a colon", ir_op_name(op),
                    ir_op_name(op));
  int line = fe_line(L);
  char what[32];
  snprintf(what, sizeof what, "'%s'", ir_op_name(op));
  int a[2] = { tonode(L, 1, line, what), tonode(L, 2, line, what) };
  push_sym(L, make(L, op, a, 2, 0, line));
  return 1;
}

/* q:coord(axis) and q.x q.y q.z: a coordinate of q or k on the grid */
static int push_coord(lua_State *L, int node, int axis, const char *name) {
  FeCtx *c = fe_ctx(L);
  IrPattern *p = c->pat;
  IrOp op = (IrOp)p->nodes[node].op;
  if (op != IR_Q && op != IR_K)
    return fe_error(L, "only q and k have coordinates (%s of %s)", name, fe_describe(L, 1));
  const char *who = op == IR_Q ? "q" : "k";
  if (p->grid_rank == 0)
    return fe_error(L, "%s.%s needs a grid: set grid = {...} in attnc.pattern", who, name);
  if (axis < 0 || axis >= p->grid_rank)
    return fe_error(L, "%s.%s needs a grid of more axes (this grid has %d: %s)", who, name,
                    p->grid_rank,
                    p->grid_rank == 1 ? "use .x" : p->grid_rank == 2 ? "use .y and .x"
                                                                     : "use .z, .y and .x");
  int line = fe_line(L);
  push_sym(L, make(L, op == IR_Q ? IR_QC : IR_KC, NULL, 0, axis, line));
  return 1;
}

static int sym_coord(lua_State *L) {
  int node = tosym(L, 1);
  if (node < 0) return fe_error(L, "coord: write q:coord(axis), with a colon");
  if (!lua_isinteger(L, 2)) {
    const char *got = fe_describe(L, 2);
    return fe_error(L, "coord: the axis must be an integer (got %s)", got);
  }
  lua_Integer axis = lua_tointeger(L, 2);
  char name[48];
  snprintf(name, sizeof name, "coord(%lld)", (long long)axis);
  return push_coord(L, node, axis < 0 || axis > 8 ? -1 : (int)axis, name);
}

/* __index: upvalue 1 is the methods table */
static int sym_index(lua_State *L) {
  int node = tosym(L, 1);
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char *key = lua_tostring(L, 2);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    if ((key[0] == 'x' || key[0] == 'y' || key[0] == 'z') && key[1] == '\0') {
      int rank = fe_ctx(L)->pat->grid_rank;
      return push_coord(L, node, rank - 1 - (key[0] - 'x'), key);
    }
    const char *got = fe_describe(L, 1);
    return fe_error(L, "%s has no field '%s' (it has lt le gt ge eq ne; q and k also x y z "
                    "and coord)", got, key);
  }
  const char *got = fe_describe(L, 1);
  return fe_error(L, "cannot index %s", got);
}

static void new_sym_metatables(lua_State *L) {
  static const struct { const char *event; IrOp op; } arith[] = {
    { "__add", IR_ADD }, { "__sub", IR_SUB }, { "__mul", IR_MUL }, { "__div", IR_DIV },
    { "__idiv", IR_IDIV }, { "__mod", IR_MOD }, { "__pow", IR_POW }, { "__unm", IR_NEG },
  };
  static const struct { const char *event; IrOp op; } logic[] = {
    { "__band", IR_AND }, { "__bor", IR_OR }, { "__bxor", IR_NE }, { "__bnot", IR_NOT },
  };
  static const struct { const char *event, *what; } misuse[] = {
    { "__concat", "cannot concatenate" }, { "__len", "cannot take the length (#) of" },
    { "__call", "cannot call" }, { "__tostring", "cannot turn into a string" },
    { "__newindex", "cannot assign fields of" },
  };
  static const IrOp cmps[] = { IR_LT, IR_LE, IR_GT, IR_GE, IR_EQ, IR_NE };

  lua_newtable(L);                                   /* the methods */
  for (size_t i = 0; i < sizeof cmps / sizeof cmps[0]; i++) {
    lua_pushinteger(L, cmps[i]);
    lua_pushcclosure(L, sym_cmp, 1);
    lua_setfield(L, -2, ir_op_name(cmps[i]));
  }
  lua_pushcfunction(L, sym_coord);
  lua_setfield(L, -2, "coord");
  int methods = lua_gettop(L);

  for (int t = IR_VOID; t <= IR_FLOAT; t++) {
    luaL_newmetatable(L, sym_tname[t]);              /* also sets __name */
    for (size_t i = 0; i < sizeof arith / sizeof arith[0]; i++) {
      lua_pushinteger(L, arith[i].op);
      lua_pushcclosure(L, sym_arith, 1);
      lua_setfield(L, -2, arith[i].event);
    }
    for (size_t i = 0; i < sizeof logic / sizeof logic[0]; i++) {
      lua_pushinteger(L, logic[i].op);
      lua_pushcclosure(L, sym_logic, 1);
      lua_setfield(L, -2, logic[i].event);
    }
    lua_pushliteral(L, "<<");
    lua_pushcclosure(L, sym_shift, 1);
    lua_setfield(L, -2, "__shl");
    lua_pushliteral(L, ">>");
    lua_pushcclosure(L, sym_shift, 1);
    lua_setfield(L, -2, "__shr");
    static const char *const order[] = { "lt", "le", "eq" };
    for (int i = 0; i < 3; i++) {
      lua_pushstring(L, order[i]);
      lua_pushcclosure(L, sym_order, 1);
      lua_pushfstring(L, "__%s", order[i]);
      lua_insert(L, -2);
      lua_settable(L, -3);
    }
    for (size_t i = 0; i < sizeof misuse / sizeof misuse[0]; i++) {
      lua_pushstring(L, misuse[i].what);
      lua_pushcclosure(L, sym_misuse, 1);
      lua_setfield(L, -2, misuse[i].event);
    }
    lua_pushvalue(L, methods);
    lua_pushcclosure(L, sym_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* ------------------------------------------------------------- inputs */

/* a load of input in with the n values from stack index first */
static int input_load(lua_State *L, const FeInput *in, int first, int n) {
  FeCtx *c = fe_ctx(L);
  const IrInput *d = &c->pat->inputs[in->index];
  int line = fe_line(L), a[IR_MAXARGS];
  if (n != d->rank)
    return fe_error(L, "input '%s' has %d dim%s but is indexed with %d%s", d->name, d->rank,
                    d->rank == 1 ? "" : "s", n,
                    n == 1 ? " (write t(i, j, ...) to give all its indices)" : "");
  char what[80];
  snprintf(what, sizeof what, "index of input '%s'", d->name);
  for (int i = 0; i < n; i++) a[i] = tonode(L, first + i, line, what);
  push_sym(L, make(L, IR_LOAD, a, n, in->index, line));
  return 1;
}

/* t:contains(i, ..., v): exists j, t[i, ..., j] == v */
static int input_contains(lua_State *L) {
  FeInput *in = toinput(L, 1);
  if (!in) return fe_error(L, "contains: write t:contains(i, ..., value), with a colon");
  FeCtx *c = fe_ctx(L);
  const IrInput *d = &c->pat->inputs[in->index];
  int n = lua_gettop(L) - 1, line = fe_line(L), a[IR_MAXARGS];
  if (n != d->rank)
    return fe_error(L, "%s:contains needs %d values (%d indices, then the value searched for "
                    "along the last dim), got %d", d->name, d->rank, d->rank - 1, n);
  char what[80];
  snprintf(what, sizeof what, "%s:contains", d->name);
  for (int i = 0; i < n; i++) a[i] = tonode(L, 2 + i, line, what);
  push_sym(L, make(L, IR_CONTAINS, a, n, in->index, line));
  return 1;
}

static int input_index(lua_State *L) {
  FeInput *in = toinput(L, 1);
  const IrInput *d = &fe_ctx(L)->pat->inputs[in->index];
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char *key = lua_tostring(L, 2);
    if (strcmp(key, "contains") == 0) { lua_pushcfunction(L, input_contains); return 1; }
    if (strcmp(key, "name") == 0) { lua_pushstring(L, d->name); return 1; }
    if (strcmp(key, "rank") == 0) { lua_pushinteger(L, d->rank); return 1; }
    if (strcmp(key, "dtype") == 0) { lua_pushstring(L, ir_dtype_name(d->dtype)); return 1; }
    return fe_error(L, "input '%s' has no field '%s' (index it: %s[i] or %s(i, j, ...), or "
                    "%s:contains(..., value))", d->name, key, d->name, d->name, d->name);
  }
  if (d->rank != 1)
    return fe_error(L, "%s[i] gives one index, but input '%s' has %d dims: write %s(i, j, ...)",
                    d->name, d->name, d->rank, d->name);
  return input_load(L, in, 2, 1);
}

static int input_call(lua_State *L) {
  return input_load(L, toinput(L, 1), 2, lua_gettop(L) - 1);
}

static int input_tostring(lua_State *L) {
  const IrInput *d = &fe_ctx(L)->pat->inputs[toinput(L, 1)->index];
  lua_pushfstring(L, "attnc input '%s' (%s, %d dims)", d->name, ir_dtype_name(d->dtype), d->rank);
  return 1;
}

static int input_misuse(lua_State *L) {
  const IrInput *d = &fe_ctx(L)->pat->inputs[toinput(L, 1)->index];
  return fe_error(L, "%s input '%s': its contents are only known at run time",
                  lua_tostring(L, lua_upvalueindex(1)), d->name);
}

static void new_input_metatable(lua_State *L) {
  luaL_newmetatable(L, INPUT_TNAME);
  lua_pushcfunction(L, input_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, input_call);
  lua_setfield(L, -2, "__call");
  lua_pushcfunction(L, input_tostring);
  lua_setfield(L, -2, "__tostring");
  static const struct { const char *event, *what; } misuse[] = {
    { "__len", "cannot take the length (#) of" }, { "__concat", "cannot concatenate" },
    { "__newindex", "cannot assign into" }, { "__add", "cannot do arithmetic on" },
    { "__sub", "cannot do arithmetic on" }, { "__mul", "cannot do arithmetic on" },
    { "__lt", "cannot compare" }, { "__le", "cannot compare" },
  };
  for (size_t i = 0; i < sizeof misuse / sizeof misuse[0]; i++) {
    lua_pushstring(L, misuse[i].what);
    lua_pushcclosure(L, input_misuse, 1);
    lua_setfield(L, -2, misuse[i].event);
  }
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
}

/* ------------------------------------------------------------- params */

/* a number for messages: integers exactly, floats with %.14g */
static void fmt_num(double v, bool is_int, char *buf, size_t len) {
  if (is_int && v == floor(v) && fabs(v) < 9.2e18) snprintf(buf, len, "%lld", (long long)v);
  else snprintf(buf, len, "%.14g", v);
}

/* the -D value for name, last one wins; marks every -D of that name used */
static const char *define_for(FeCtx *c, const char *name) {
  const char *v = NULL;
  for (int i = 0; i < c->ndefs; i++)
    if (c->defs[i].name && strcmp(c->defs[i].name, name) == 0) {
      v = c->defs[i].value ? c->defs[i].value : "";
      c->def_used[i] = true;
    }
  return v;
}

static bool parse_int(const char *s, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end != '\0' || *s == ' ' || *s == '\t') return false;
  *out = v;
  return true;
}

static bool parse_float(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end != '\0' || *s == ' ' || *s == '\t' || !isfinite(v)) return false;
  *out = v;
  return true;
}

/* the value of opts[key], a plain number, or false when absent */
static bool opt_number(lua_State *L, int opts, const char *pname, const char *key, double *out) {
  if (opts == 0) return false;
  int t = lua_getfield(L, opts, key);
  if (t == LUA_TNIL) { lua_pop(L, 1); return false; }
  if (t != LUA_TNUMBER) {
    const char *got = fe_describe(L, -1);
    fe_error(L, "param %s: %s must be a number (got %s)", pname, key, got);
  }
  *out = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return true;
}

/*
** core.param(name, default, opts) -> the value, a plain Lua number: the
** default or the -D override, of the default's subtype (integer default:
** int param). opts = { min =, max =, doc = }. Records the declaration.
*/
static int core_param(lua_State *L) {
  FeCtx *c = fe_ctx(L);
  IrPattern *p = c->pat;
  if (lua_type(L, 1) != LUA_TSTRING || !valid_name(lua_tostring(L, 1))) {
    const char *got = fe_describe(L, 1);
    return fe_error(L, "attnc.param: the name must be an identifier of up to 64 characters (got %s)", got);
  }
  const char *name = lua_tostring(L, 1);
  int prev = ir_find_param(p, name);
  if (prev >= 0)
    return fe_error(L, "param %s is declared twice (first at line %d)", name, p->params[prev].line);
  if (lua_type(L, 2) != LUA_TNUMBER) {
    const char *got = fe_describe(L, 2);
    return fe_error(L, "param %s: the default must be a number (got %s)", name, got);
  }
  bool is_int = lua_isinteger(L, 2);
  double def = lua_tonumber(L, 2);
  if (!is_int && !isfinite(def))
    return fe_error(L, "param %s: the default must be a finite number", name);
  int opts = 0;
  const char *doc = NULL;
  if (!lua_isnoneornil(L, 3)) {
    if (!lua_istable(L, 3)) {
      const char *got = fe_describe(L, 3);
      return fe_error(L, "param %s: options must be a table {min=, max=, doc=} (got %s)", name, got);
    }
    opts = 3;
    lua_pushnil(L);                                  /* unknown options, smallest name first */
    const char *bad = NULL;
    while (lua_next(L, opts)) {
      lua_pop(L, 1);
      const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
      if (strcmp(k, "min") && strcmp(k, "max") && strcmp(k, "doc") && (!bad || strcmp(k, bad) < 0))
        bad = k;
    }
    if (bad) return fe_error(L, "param %s: unknown option '%s' (known: min, max, doc)", name, bad);
    int t = lua_getfield(L, opts, "doc");
    if (t != LUA_TNIL && t != LUA_TSTRING)
      return fe_error(L, "param %s: doc must be a string", name);
    if (t == LUA_TSTRING) {
      doc = lua_tostring(L, -1);          /* stays alive: the options table holds it */
      if (strlen(doc) > 200 || strchr(doc, '\n'))
        return fe_error(L, "param %s: doc must be one line of at most 200 characters", name);
    }
    lua_pop(L, 1);
  }
  double lo = 0, hi = 0;
  bool has_lo = opt_number(L, opts, name, "min", &lo);
  bool has_hi = opt_number(L, opts, name, "max", &hi);

  double value = def;
  long long ivalue = is_int ? (long long)lua_tointeger(L, 2) : 0;
  const char *dv = define_for(c, name);
  char from[256] = "";
  if (dv) {
    snprintf(from, sizeof from, ", from -D %s=%s", name, dv);
    if (is_int) {
      if (!parse_int(dv, &ivalue))
        return fe_error(L, "-D %s=%s: param %s takes an integer", name, dv, name);
      value = (double)ivalue;
    } else if (!parse_float(dv, &value))
      return fe_error(L, "-D %s=%s: param %s takes a number", name, dv, name);
  }
  char got[64], bound[64];
  fmt_num(value, is_int, got, sizeof got);
  if (has_lo && value < lo) {
    fmt_num(lo, is_int, bound, sizeof bound);
    return fe_error(L, "param %s must be >= %s (got %s%s)", name, bound, got, from);
  }
  if (has_hi && value > hi) {
    fmt_num(hi, is_int, bound, sizeof bound);
    return fe_error(L, "param %s must be <= %s (got %s%s)", name, bound, got, from);
  }
  IrParam prm = { .name = name, .type = is_int ? IR_INT : IR_FLOAT, .value = value, .def = def,
                  .overridden = dv != NULL, .doc = doc, .line = fe_line(L) };
  check_room(L, c);
  if (ir_add_param(p, &prm) < 0) return nomem(L);
  if (is_int) lua_pushinteger(L, (lua_Integer)ivalue);
  else lua_pushnumber(L, value);
  return 1;
}

/* core.param_value(name) -> the value of a declared param, or nil */
static int core_param_value(lua_State *L) {
  FeCtx *c = fe_ctx(L);
  int i = ir_find_param(c->pat, luaL_checkstring(L, 1));
  if (i < 0) return 0;
  const IrParam *prm = &c->pat->params[i];
  if (prm->type == IR_INT) lua_pushinteger(L, (lua_Integer)prm->value);
  else lua_pushnumber(L, prm->value);
  return 1;
}

/* ------------------------------------------------------ input decls */

static bool dim_symbol(const char *s, size_t n, IrDimSym *out) {
  static const struct { const char *name; IrDimSym sym; } syms[] = {
    { "B", DIM_B }, { "H", DIM_H }, { "Hkv", DIM_HKV }, { "S", DIM_SQ }, { "Sq", DIM_SQ },
    { "Sk", DIM_SK },
  };
  for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++)
    if (strlen(syms[i].name) == n && strncmp(syms[i].name, s, n) == 0) {
      *out = syms[i].sym;
      return true;
    }
  return false;
}

/* a constant size: an integer literal or the name of an int param */
static bool dim_const(FeCtx *c, const char *s, size_t n, int64_t *out) {
  char buf[128];
  if (n == 0 || n >= sizeof buf) return false;
  memcpy(buf, s, n);
  buf[n] = '\0';
  long long v;
  if (parse_int(buf, &v)) { *out = v; return true; }
  int i = ir_find_param(c->pat, buf);
  if (i >= 0 && c->pat->params[i].type == IR_INT) { *out = (int64_t)c->pat->params[i].value; return true; }
  return false;
}

/*
** One dim of an input declaration: an integer, "B", "H", "Hkv", "S" (= Sq),
** "Sq", "Sk", an int param's name, or "X/Y" (ceiling division) with X one
** of those and Y an integer or an int param's name.
*/
static void parse_dim(lua_State *L, FeCtx *c, const char *iname, int k, int idx, IrDim *dim) {
  if (lua_isinteger(L, idx)) {
    lua_Integer v = lua_tointeger(L, idx);
    if (v < 1) fe_error(L, "input '%s' dim %d must be >= 1 (got %lld)", iname, k, (long long)v);
    *dim = (IrDim){ DIM_CONST, v };
    return;
  }
  if (lua_type(L, idx) != LUA_TSTRING) {
    const char *got = fe_describe(L, idx);
    fe_error(L, "input '%s' dim %d must be an integer or a size name such as \"S\" (got %s)",
             iname, k, got);
  }
  const char *s = lua_tostring(L, idx), *slash = strchr(s, '/');
  size_t nx = slash ? (size_t)(slash - s) : strlen(s);
  int64_t div = 1, x;
  if (slash && !dim_const(c, slash + 1, strlen(slash + 1), &div))
    fe_error(L, "input '%s' dim %d \"%s\": unknown divisor '%s' (use an integer or an int "
             "param's name)", iname, k, s, slash + 1);
  if (div < 1)
    fe_error(L, "input '%s' dim %d \"%s\": the divisor must be >= 1", iname, k, s);
  IrDimSym sym;
  if (dim_symbol(s, nx, &sym)) *dim = (IrDim){ sym, div };
  else if (dim_const(c, s, nx, &x)) {
    if (x < 1) fe_error(L, "input '%s' dim %d \"%s\" is %lld, not a positive size", iname, k, s,
                        (long long)x);
    *dim = (IrDim){ DIM_CONST, (x + div - 1) / div };
  } else
    fe_error(L, "input '%s' dim %d: unknown size \"%s\" (use an integer, B, H, Hkv, S, Sq, Sk, "
             "an int param's name, or X/N)", iname, k, s);
}

/* core.input(name, dtype, dims) -> an input object */
static int core_input(lua_State *L) {
  FeCtx *c = fe_ctx(L);
  IrPattern *p = c->pat;
  if (lua_type(L, 1) != LUA_TSTRING || !valid_name(lua_tostring(L, 1))) {
    const char *got = fe_describe(L, 1);
    return fe_error(L, "attnc.input: the name must be an identifier of up to 64 characters (got %s)", got);
  }
  const char *name = lua_tostring(L, 1);
  int prev = ir_find_input(p, name);
  if (prev >= 0)
    return fe_error(L, "input '%s' is declared twice (first at line %d)", name, p->inputs[prev].line);
  IrInput in = { .name = name, .line = fe_line(L) };
  const char *dt = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
  if (!dt || !ir_dtype_from_name(dt, &in.dtype) || (in.dtype != DT_I32 && in.dtype != DT_F32)) {
    const char *got = fe_describe(L, 2);
    return fe_error(L, "input '%s': the dtype must be \"i32\" or \"f32\" (got %s)", name, got);
  }
  if (!lua_istable(L, 3)) {
    const char *got = fe_describe(L, 3);
    return fe_error(L, "input '%s': dims must be a list such as {\"B\", \"H\", \"S\"} (got %s)",
                    name, got);
  }
  lua_Integer n = (lua_Integer)lua_rawlen(L, 3);
  if (n < 1 || n > IR_MAXDIMS)
    return fe_error(L, "input '%s' must have 1 to %d dims (got %lld)", name, IR_MAXDIMS,
                    (long long)n);
  in.rank = (int)n;
  for (int k = 1; k <= in.rank; k++) {
    lua_rawgeti(L, 3, k);
    parse_dim(L, c, name, k, lua_gettop(L), &in.dims[k - 1]);
    lua_pop(L, 1);
  }
  check_room(L, c);
  int index = ir_add_input(p, &in);
  if (index < 0) return nomem(L);
  FeInput *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->index = index;
  luaL_setmetatable(L, INPUT_TNAME);
  return 1;
}

/* core.input_info(x) -> {name=, dtype=, rank=, dims={...}} or nil */
static int core_input_info(lua_State *L) {
  FeInput *in = toinput(L, 1);
  if (!in) return 0;
  const IrInput *d = &fe_ctx(L)->pat->inputs[in->index];
  lua_createtable(L, 0, 4);
  lua_pushstring(L, d->name);
  lua_setfield(L, -2, "name");
  lua_pushstring(L, ir_dtype_name(d->dtype));
  lua_setfield(L, -2, "dtype");
  lua_pushinteger(L, d->rank);
  lua_setfield(L, -2, "rank");
  lua_createtable(L, d->rank, 0);
  for (int i = 0; i < d->rank; i++) {
    const IrDim *dm = &d->dims[i];
    if (dm->sym == DIM_CONST) lua_pushinteger(L, (lua_Integer)dm->value);
    else if (dm->value == 1) lua_pushstring(L, ir_dimsym_name(dm->sym));
    else lua_pushfstring(L, "%s/%I", ir_dimsym_name(dm->sym), (LUAI_UACINT)dm->value);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "dims");
  return 1;
}

/* ------------------------------------------------------ the rest of core */

/* core.leaf(name [, imm]) -> a symbolic leaf: batch head q k qc kc seqq seqk score */
static int core_leaf(lua_State *L) {
  IrOp op;
  if (!ir_op_from_name(luaL_checkstring(L, 1), &op) || ir_op_kind(op) != IRK_LEAF || op == IR_CONST)
    return luaL_error(L, "core.leaf: bad leaf '%s'", lua_tostring(L, 1));
  push_sym(L, make(L, op, NULL, 0, (int64_t)luaL_optinteger(L, 2, 0), fe_line(L)));
  return 1;
}

/* core.op(name, ...) -> the node op(...) over symbolic values and plain values */
static int core_op(lua_State *L) {
  IrOp op;
  const char *name = luaL_checkstring(L, 1);
  int n = lua_gettop(L) - 1, a[IR_MAXARGS];
  if (!ir_op_from_name(name, &op) || ir_op_kind(op) == IRK_LEAF || op == IR_LOAD ||
      op == IR_CONTAINS || n != ir_op_arity(op)) {
    fe_ctx(L)->status = ATTNC_ERR_INTERNAL;
    return fe_error(L, "core.op('%s') with %d args", name, n);
  }
  int line = fe_line(L);
  char what[32];
  snprintf(what, sizeof what, "'%s'", name);
  for (int i = 0; i < n; i++) a[i] = tonode(L, 2 + i, line, what);
  push_sym(L, make(L, op, a, n, 0, line));
  return 1;
}

/* core.kind(x) -> "int", "float", "bool" for a symbolic value, else nil */
static int core_kind(lua_State *L) {
  int id = tosym(L, 1);
  if (id < 0) return 0;
  lua_pushstring(L, ir_type_name((IrType)fe_ctx(L)->pat->nodes[id].type));
  return 1;
}

/* core.leafop(x) -> the op name of a symbolic value's node ("q", "add") */
static int core_leafop(lua_State *L) {
  int id = tosym(L, 1);
  if (id < 0) return 0;
  lua_pushstring(L, ir_op_name((IrOp)fe_ctx(L)->pat->nodes[id].op));
  return 1;
}

static int core_line(lua_State *L) {
  lua_pushinteger(L, fe_line(L));
  return 1;
}

/*
** core.with_line(line, f, ...) -> f(...), where nodes and errors that no
** deeper spec frame claims get line: the line where the spec created the
** building block that f implements. A protected call with fe_msgh, so
** the override is popped on errors too and the message keeps its place.
*/
static int core_with_line(lua_State *L) {
  FeCtx *c = fe_ctx(L);
  int line = (int)luaL_checkinteger(L, 1);
  int nargs = lua_gettop(L) - 2;
  if (c->nover == FE_MAXOVER) {                      /* too deep: keep the outer line */
    lua_call(L, nargs, LUA_MULTRET);
    return lua_gettop(L) - 1;
  }
  int depth = 0;
  lua_Debug ar;
  while (lua_getstack(L, depth, &ar)) depth++;
  c->over[c->nover++] = (FeOverride){ line, depth };
  lua_pushcfunction(L, fe_msgh);
  lua_insert(L, 2);                                  /* [line, msgh, f, args...] */
  int st = lua_pcall(L, nargs, LUA_MULTRET, 2);
  c->nover--;
  if (st != LUA_OK) {
    c->in_handler = false;
    return lua_error(L);
  }
  return lua_gettop(L) - 2;
}

/* core.grid() -> the grid sizes as a list, or nil */
static int core_grid(lua_State *L) {
  IrPattern *p = fe_ctx(L)->pat;
  if (p->grid_rank == 0) return 0;
  lua_createtable(L, p->grid_rank, 0);
  for (int i = 0; i < p->grid_rank; i++) {
    lua_pushinteger(L, (lua_Integer)p->grid[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* a list of positive integers at idx into out[max]; returns the count */
static int int_list(lua_State *L, int idx, const char *what, int64_t lo, int64_t hi, int max,
                    int64_t *out) {
  if (!lua_istable(L, idx)) {
    const char *got = fe_describe(L, idx);
    return fe_error(L, "%s must be a list of integers (got %s)", what, got);
  }
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  if (n < 1 || n > max)
    return fe_error(L, "%s must list 1 to %d values (got %lld)", what, max, (long long)n);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, idx, i + 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < lo || lua_tointeger(L, -1) > hi) {
      const char *got = fe_describe(L, -1);
      return fe_error(L, "%s: entry %d must be an integer from %lld to %lld (got %s)", what, i + 1,
                      (long long)lo, (long long)hi, got);
    }
    out[i] = lua_tointeger(L, -1);
    lua_pop(L, 1);
  }
  return (int)n;
}

static int core_set_grid(lua_State *L) {
  IrPattern *p = fe_ctx(L)->pat;
  int64_t g[IR_MAXGRID];
  int n = int_list(L, 1, "grid", 1, (int64_t)1 << 31, IR_MAXGRID, g);
  int64_t prod = 1;
  for (int i = 0; i < n; i++) {
    prod *= g[i];
    if (prod > ((int64_t)1 << 40)) return fe_error(L, "grid has too many tokens");
  }
  p->grid_rank = n;
  for (int i = 0; i < n; i++) p->grid[i] = g[i];
  return 0;
}

static int core_set_name(lua_State *L) {
  FeCtx *c = fe_ctx(L);
  const char *s = lua_tostring(L, 1);
  if (lua_type(L, 1) != LUA_TSTRING || !valid_name(s)) {
    const char *got = fe_describe(L, 1);
    return fe_error(L, "name must be an identifier of up to 64 characters (got %s)", got);
  }
  check_room(L, c);
  if (!(c->pat->name = arena_strdup(c->arena, s))) return nomem(L);
  return 0;
}

static int core_set_scale(lua_State *L) {
  if (lua_type(L, 1) != LUA_TNUMBER || !(lua_tonumber(L, 1) > 0) || !isfinite(lua_tonumber(L, 1))) {
    const char *got = fe_describe(L, 1);
    return fe_error(L, "scale must be a positive number (got %s)", got);
  }
  fe_ctx(L)->pat->scale = lua_tonumber(L, 1);
  return 0;
}

static int core_set_dtypes(lua_State *L) {
  IrPattern *p = fe_ctx(L)->pat;
  if (!lua_istable(L, 1) || lua_rawlen(L, 1) < 1) {
    const char *got = fe_describe(L, 1);
    return fe_error(L, "dtypes must be a list such as {\"f16\", \"bf16\"} (got %s)", got);
  }
  unsigned bits = 0;
  for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, 1); i++) {
    lua_rawgeti(L, 1, i);
    IrDtype t;
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    if (!s || !ir_dtype_from_name(s, &t) || t == DT_I32) {
      const char *got = fe_describe(L, -1);
      return fe_error(L, "dtypes: entry %lld must be \"f16\", \"bf16\", \"f32\" or \"f64\" (got %s)",
                      (long long)i, got);
    }
    bits |= 1u << t;
    lua_pop(L, 1);
  }
  p->dtypes = bits;
  return 0;
}

static int core_set_head_dims(lua_State *L) {
  IrPattern *p = fe_ctx(L)->pat;
  int64_t v[8];
  int n = int_list(L, 1, "head_dims", 1, 1024, 8, v);
  p->nhead_dims = n;
  for (int i = 0; i < n; i++) p->head_dims[i] = (int)v[i];
  return 0;
}

/* core.set_mask(x): a symbolic bool, or a plain boolean (true: all pairs) */
static int core_set_mask(lua_State *L) {
  IrPattern *p = fe_ctx(L)->pat;
  int line = fe_line(L);
  if (lua_type(L, 1) == LUA_TBOOLEAN) {
    p->mask = lua_toboolean(L, 1) ? -1 : tonode(L, 1, line, "mask");
    return 0;
  }
  int id = tosym(L, 1);
  if (id < 0 || p->nodes[id].type != IR_BOOL) {
    const char *got = fe_describe(L, 1);
    return fe_error(L, "mask must give a boolean (got %s)", got);
  }
  p->mask = id;
  return 0;
}

/* core.set_score(x): a number (plain or symbolic), as float; nil: s as is */
static int core_set_score(lua_State *L) {
  IrPattern *p = fe_ctx(L)->pat;
  int line = fe_line(L);
  int id = tosym(L, 1);
  if (lua_type(L, 1) == LUA_TNUMBER) id = tonode(L, 1, line, "score");
  if (id < 0 || p->nodes[id].type == IR_BOOL || p->nodes[id].type == IR_VOID) {
    const char *got = fe_describe(L, 1);
    return fe_error(L, "score must give a number (got %s)", got);
  }
  if (p->nodes[id].op == IR_SCORE) { p->score = -1; return 0; }   /* unchanged */
  if (p->nodes[id].type == IR_INT) id = make(L, IR_TOFLOAT, &id, 1, 0, line);
  p->score = id;
  return 0;
}

/* core.claim(desc): desc is the spec's pattern; only one per spec */
static int core_claim(lua_State *L) {
  FeCtx *c = fe_ctx(L);
  if (c->pattern_ref != LUA_NOREF)
    return fe_error(L, "attnc.pattern is called twice: a spec describes one pattern");
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_pushvalue(L, 1);
  c->pattern_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

/* core.describe(x) -> the description used in messages ("a table", "-3") */
static int core_describe(lua_State *L) {
  luaL_checkany(L, 1);
  fe_describe(L, 1);
  return 1;
}

/* core.fail(msg [, line]): raise msg at line, or at the spec line of now */
static int core_fail(lua_State *L) {
  const char *msg = luaL_checkstring(L, 1);
  return fe_raise_at(L, (int)luaL_optinteger(L, 2, 0), msg);
}

/* core.funcline(f) -> the line where the spec defines function f, or nil */
static int core_funcline(lua_State *L) {
  FeCtx *c = fe_ctx(L);
  lua_Debug ar;
  if (lua_type(L, 1) != LUA_TFUNCTION) return 0;
  lua_pushvalue(L, 1);
  if (!lua_getinfo(L, ">S", &ar) || strcmp(ar.source, c->source) != 0 || ar.linedefined <= 0)
    return 0;
  lua_pushinteger(L, ar.linedefined);
  return 1;
}

/* core.funcparams(f) -> the parameter names of a function the spec defines
   (a list; "..." last when it takes varargs), or nil */
static int core_funcparams(lua_State *L) {
  FeCtx *c = fe_ctx(L);
  lua_Debug ar;
  if (lua_type(L, 1) != LUA_TFUNCTION) return 0;
  lua_pushvalue(L, 1);
  if (!lua_getinfo(L, ">Su", &ar) || strcmp(ar.source, c->source) != 0) return 0;
  lua_createtable(L, ar.nparams + 1, 0);
  lua_pushvalue(L, 1);                          /* lua_getlocal(NULL) reads the top */
  for (int i = 1; i <= ar.nparams; i++) {
    const char *n = lua_getlocal(L, NULL, i);
    lua_pushstring(L, n ? n : "?");
    lua_rawseti(L, -3, i);
  }
  lua_pop(L, 1);
  if (ar.isvararg) {
    lua_pushliteral(L, "...");
    lua_rawseti(L, -2, ar.nparams + 1);
  }
  return 1;
}

/* the C trampoline around a library function: upvalue 1 is the function */
static int wrapped_call(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/*
** core.wrap(f) -> a C function calling f. The library hands specs its Lua
** functions wrapped: `return a.min(x, y)` is a tail call, which would
** drop the spec's frame (and line) for a Lua callee, but not for a C one.
*/
static int core_wrap(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_pushcclosure(L, wrapped_call, 1);
  return 1;
}

void fe_push_core(lua_State *L) {
  static const luaL_Reg fns[] = {
    { "leaf", core_leaf },           { "op", core_op },
    { "kind", core_kind },           { "leafop", core_leafop },
    { "line", core_line },           { "with_line", core_with_line },
    { "param", core_param },         { "param_value", core_param_value },
    { "input", core_input },         { "input_info", core_input_info },
    { "grid", core_grid },           { "set_grid", core_set_grid },
    { "set_name", core_set_name },   { "set_scale", core_set_scale },
    { "set_dtypes", core_set_dtypes }, { "set_head_dims", core_set_head_dims },
    { "set_mask", core_set_mask },   { "set_score", core_set_score },
    { "claim", core_claim },         { "describe", core_describe },
    { "fail", core_fail },           { "funcline", core_funcline },
    { "funcparams", core_funcparams },
    { "wrap", core_wrap },
    { NULL, NULL }
  };
  new_sym_metatables(L);
  new_input_metatable(L);
  luaL_newlib(L, fns);
}
