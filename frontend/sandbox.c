/*
** sandbox.c -- the Lua state a spec runs in.
**
** A spec is code from anywhere, so it gets a fresh state with:
**   - a counting allocator with a cap (FeLimits.mem_bytes);
**   - an instruction budget, checked by a count hook every FE_HOOK_STEP
**     instructions; once it is spent every instruction raises, so a spec
**     that catches the error with pcall still unwinds;
**   - only base, string, table, math and utf8; no dofile, loadfile, load,
**     string.dump (no bytecode, no other files), require only for "attnc";
**     the C loops that a hook cannot stop (string patterns, table.insert,
**     remove and move over a forged __len, string.rep of "") are removed or
**     replaced by Lua versions, and __gc finalizers (which run with hooks
**     off) are refused;
**   - strict globals: reading an unknown name or assigning a global is an
**     error.
** Errors are located at the spec's own line: fe_line walks the stack to the
** innermost frame of the spec chunk, or to the line of the building block
** being traced (see core.with_line in symbolic.c).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "frontend/fe_local.h"

/* ------------------------------------------------------------ the context */

FeCtx *fe_ctx(lua_State *L) {
  void *ud = NULL;
  lua_getallocf(L, &ud);
  return ud;
}

/*
** The allocator: realloc with a count of the bytes held. The cap is soft
** first: the count hook sees the heap past mem_limit within FE_HOOK_STEP
** instructions and raises an error at the spec line. Growth past the hard
** cap (mem_limit plus an eighth, plus FE_MEM_SLACK while a message handler
** formats an error) is refused, and Lua raises a memory error; shrinking
** never fails.
*/
static void *fe_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  FeCtx *c = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    c->mem_used -= old;
    return NULL;
  }
  if (nsize > old) {
    size_t limit = c->mem_limit + c->mem_limit / 8 + (c->in_handler ? FE_MEM_SLACK : 0);
    size_t held = c->mem_used - old;
    if (nsize > limit || held > limit - nsize) {
      c->mem_hit = true;
      return NULL;
    }
  }
  void *p = realloc(ptr, nsize);
  if (!p) {
    if (nsize > old) c->oom = true;
    return NULL;
  }
  c->mem_used = c->mem_used - old + nsize;
  return p;
}

lua_State *fe_newstate(FeCtx *c) { return lua_newstate(fe_alloc, c); }

/* ----------------------------------------------------------- locations */

static int stack_depth(lua_State *L) {
  lua_Debug ar;
  int n = 0;
  while (lua_getstack(L, n, &ar)) n++;
  return n;
}

/*
** The spec line that what runs now belongs to: the current line of the
** innermost frame of the spec chunk, unless a building block's line
** override was set (core.with_line) at a frame below it; 0 if none.
*/
int fe_line(lua_State *L) {
  FeCtx *c = fe_ctx(L);
  const FeOverride *o = c->nover > 0 ? &c->over[c->nover - 1] : NULL;
  int depth = o ? stack_depth(L) : 0;
  lua_Debug ar;
  for (int lv = 0; lua_getstack(L, lv, &ar); lv++) {
    if (o && depth - lv <= o->depth) return o->line;
    if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0 && strcmp(ar.source, c->source) == 0)
      return ar.currentline;
  }
  return o ? o->line : 0;
}

/* "16 MiB", "64 KiB", "1000 bytes" */
void fe_fmt_size(size_t n, char *buf, size_t len) {
  if (n >= ((size_t)1 << 20) && n % ((size_t)1 << 20) == 0)
    snprintf(buf, len, "%zu MiB", n >> 20);
  else if (n >= 1024 && n % 1024 == 0)
    snprintf(buf, len, "%zu KiB", n >> 10);
  else
    snprintf(buf, len, "%zu bytes", n);
}

/* push "file:line: " (or "file: " without a line) */
static void push_where(lua_State *L, FeCtx *c, int line) {
  if (line > 0) lua_pushfstring(L, "%s:%d: ", c->file, line);
  else lua_pushfstring(L, "%s: ", c->file);
}

/* raise "file:line: msg" at line (0: the spec line of what runs now) */
int fe_raise_at(lua_State *L, int line, const char *msg) {
  FeCtx *c = fe_ctx(L);
  c->in_handler = true;                   /* room to format the message */
  push_where(L, c, line > 0 ? line : fe_line(L));
  lua_pushstring(L, msg);
  lua_concat(L, 2);
  return lua_error(L);
}

int fe_error(lua_State *L, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return fe_raise_at(L, 0, msg);
}

/* a short description of a Lua value for messages; pushed and returned */
const char *fe_describe(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
  case LUA_TNONE:
  case LUA_TNIL: return lua_pushliteral(L, "nil");
  case LUA_TBOOLEAN: return lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false");
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) return lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, idx));
    else {
      char buf[64];
      snprintf(buf, sizeof buf, "%.14g", (double)lua_tonumber(L, idx));
      if (!strpbrk(buf, ".eEni")) strcat(buf, ".0");
      return lua_pushstring(L, buf);
    }
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    return n <= 40 ? lua_pushfstring(L, "the string \"%s\"", s)
                   : lua_pushfstring(L, "a string of %d bytes", (int)n);
  }
  default: {
    int t = luaL_getmetafield(L, idx, "__name");   /* "symbolic int", "attnc mask" */
    if (t == LUA_TSTRING) {
      const char *name = lua_tostring(L, -1);
      const char *s = lua_pushfstring(L, "%s %s", strchr("aeiou", name[0]) ? "an" : "a", name);
      lua_remove(L, -2);
      return s;
    }
    if (t != LUA_TNIL) lua_pop(L, 1);
    const char *tn = luaL_typename(L, idx);
    return lua_pushfstring(L, "%s %s", strchr("aeiou", tn[0]) ? "an" : "a", tn);
  }
  }
}

/*
** Locate the message on top of the stack at line: keep it when it already
** names the spec; put the full chunk name back where Lua abbreviated it;
** drop the library's own location "(attnc):N: " and prefix the spec line.
*/
void fe_locate(lua_State *L, int line) {
  FeCtx *c = fe_ctx(L);
  const char *msg = lua_tostring(L, -1);
  size_t nf = strlen(c->file), ns = strlen(c->short_src), nl = strlen(FE_LIBSRC);
  if (strncmp(msg, c->file, nf) == 0 && msg[nf] == ':') return;
  if (ns > 0 && strncmp(msg, c->short_src, ns) == 0 && msg[ns] == ':') {
    lua_pushfstring(L, "%s%s", c->file, msg + ns);
    lua_remove(L, -2);
    return;
  }
  if (strncmp(msg, FE_LIBSRC, nl) == 0 && msg[nl] == ':') {
    msg += nl + 1;
    msg += strspn(msg, "0123456789");
    if (*msg == ':') msg++;
    if (*msg == ' ') msg++;
  }
  push_where(L, c, line);
  lua_pushstring(L, msg);
  lua_concat(L, 2);
  lua_remove(L, -2);
}

/*
** The message handler of every protected call into the spec: turn the
** error object into one located string. Runs before the stack unwinds,
** so fe_line still sees where the error happened.
*/
int fe_msgh(lua_State *L) {
  FeCtx *c = fe_ctx(L);
  c->in_handler = true;
  if (lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER) {
    lua_pushstring(L, lua_tostring(L, 1));
  } else {
    const char *what = fe_describe(L, 1);
    lua_pushfstring(L, "error raised with %s instead of a message", what);
    lua_remove(L, -2);
  }
  fe_locate(L, fe_line(L));
  return 1;
}

/* ------------------------------------------------------------ the budget */

static void fe_hook(lua_State *L, lua_Debug *ar) {
  FeCtx *c = fe_ctx(L);
  (void)ar;
  c->in_handler = false;                 /* Lua code runs: no handler does */
  if (c->mem_used > c->mem_limit) {
    char sz[32];
    fe_fmt_size(c->mem_limit, sz, sizeof sz);
    c->mem_hit = true;
    fe_error(L, "spec uses more than %s of memory", sz);
  }
  c->insns += c->hook_step;
  if (c->insns >= c->insn_limit) {
    if (c->hook_step != 1) {             /* from now on: every instruction */
      c->hook_step = 1;
      lua_sethook(L, fe_hook, LUA_MASKCOUNT, 1);
    }
    fe_error(L, "spec ran past its instruction budget (%ld instructions): an endless loop?",
             c->insn_limit);
  }
}

void fe_sethook(lua_State *L) {
  FeCtx *c = fe_ctx(L);
  c->hook_step = c->insn_limit < FE_HOOK_STEP ? (int)(c->insn_limit > 0 ? c->insn_limit : 1)
                                              : FE_HOOK_STEP;
  lua_sethook(L, fe_hook, LUA_MASKCOUNT, c->hook_step);
}

/* ------------------------------------------------------- the safe globals */

/* print writes to stderr, never to the embedding program's stdout */
static int fe_print(lua_State *L) {
  FeCtx *c = fe_ctx(L);
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    if (i > 1) luaL_addchar(&b, '\t');
    luaL_tolstring(L, i, NULL);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  fprintf(stderr, "%s:%d: %s\n", c->file, fe_line(L), lua_tostring(L, -1));
  fflush(stderr);
  return 0;
}

static int fe_require(lua_State *L) {
  const char *name = lua_type(L, 1) == LUA_TSTRING ? lua_tostring(L, 1) : NULL;
  if (name && strcmp(name, "attnc") == 0) {
    lua_getfield(L, LUA_REGISTRYINDEX, "attnc.module");
    return 1;
  }
  return fe_error(L, "require: only \"attnc\" is available in specs (not %s)", fe_describe(L, 1));
}

/* the string functions that are gone: upvalue 1 is the name */
static int fe_unavailable(lua_State *L) {
  return fe_error(L, "%s is not available in specs%s", lua_tostring(L, lua_upvalueindex(1)),
                  lua_tostring(L, lua_upvalueindex(2)));
}

static int strict_index(lua_State *L) {
  if (lua_type(L, 2) == LUA_TSTRING) return fe_error(L, "unknown name '%s'", lua_tostring(L, 2));
  return fe_error(L, "unknown global %s", fe_describe(L, 2));
}

static int strict_newindex(lua_State *L) {
  if (lua_type(L, 2) == LUA_TSTRING)
    return fe_error(L, "cannot set global '%s': specs have no globals of their own "
                    "(write `local %s = ...`)", lua_tostring(L, 2), lua_tostring(L, 2));
  return fe_error(L, "cannot set a global");
}

/*
** Lua versions of what the C library would loop over without the hook
** seeing it, and the guard on finalizers. Runs once, before the library.
*/
static const char prelude[] =
  "local error, type, rawget, rawequal, select, mtype, tonumber =\n"
  "      error, type, rawget, rawequal, select, math.type, tonumber\n"
  "local setmt, rep = setmetatable, string.rep\n"
  "local function int(x, i, f)\n"
  "  if mtype(x) ~= 'integer' then\n"
  "    error(\"bad argument #\" .. i .. \" to '\" .. f .. \"' (integer expected)\", 3)\n"
  "  end\n"
  "  return x\n"
  "end\n"
  "function table.insert(t, ...)\n"
  "  local n, e = select('#', ...), #t + 1\n"
  "  if n == 1 then t[e] = ...; return end\n"
  "  if n ~= 2 then error(\"wrong number of arguments to 'insert'\", 2) end\n"
  "  local pos, v = ...\n"
  "  int(pos, 2, 'insert')\n"
  "  if pos < 1 or pos > e then error(\"bad argument #2 to 'insert' (position out of bounds)\", 2) end\n"
  "  for i = e, pos + 1, -1 do t[i] = t[i - 1] end\n"
  "  t[pos] = v\n"
  "end\n"
  "function table.remove(t, pos)\n"
  "  local size = #t\n"
  "  if pos == nil then pos = size else int(pos, 2, 'remove') end\n"
  "  if pos ~= size and (pos < 1 or pos > size + 1) then\n"
  "    error(\"bad argument #2 to 'remove' (position out of bounds)\", 2)\n"
  "  end\n"
  "  local v = t[pos]\n"
  "  while pos < size do t[pos] = t[pos + 1]; pos = pos + 1 end\n"
  "  t[pos] = nil\n"
  "  return v\n"
  "end\n"
  "function table.move(a1, f, e, t, a2)\n"
  "  if a2 == nil then a2 = a1 end\n"
  "  int(f, 2, 'move'); int(e, 3, 'move'); int(t, 4, 'move')\n"
  "  if e >= f then\n"
  "    if t > e or t <= f or not rawequal(a1, a2) then\n"
  "      for i = 0, e - f do a2[t + i] = a1[f + i] end\n"
  "    else\n"
  "      for i = e - f, 0, -1 do a2[t + i] = a1[f + i] end\n"
  "    end\n"
  "  end\n"
  "  return a2\n"
  "end\n"
  "function string.rep(s, n, sep)\n"
  "  if s == '' and (sep == nil or sep == '') then\n"
  "    local k = tonumber(n)\n"
  "    if k and k > 1 then n = 1 end\n"
  "  end\n"
  "  return rep(s, n, sep)\n"
  "end\n"
  "function setmetatable(t, mt)\n"
  "  if type(mt) == 'table' and rawget(mt, '__gc') ~= nil then\n"
  "    error('__gc metamethods are not allowed in specs', 2)\n"
  "  end\n"
  "  return setmt(t, mt)\n"
  "end\n";

extern const char attnc_lualib[];
extern const size_t attnc_lualib_len;

/*
** Build the sandbox in L (a lua_CFunction, so that memory errors while
** building are caught): the safe libraries, the replacements above, the
** attnc library (registry "attnc.module"), then strict globals.
*/
int fe_setup(lua_State *L) {
  static const luaL_Reg libs[] = {
    { LUA_GNAME, luaopen_base },       { LUA_STRLIBNAME, luaopen_string },
    { LUA_TABLIBNAME, luaopen_table }, { LUA_MATHLIBNAME, luaopen_math },
    { LUA_UTF8LIBNAME, luaopen_utf8 }, { NULL, NULL }
  };
  for (const luaL_Reg *l = libs; l->name; l++) {
    luaL_requiref(L, l->name, l->func, 1);
    lua_pop(L, 1);
  }
  lua_pushglobaltable(L);
  static const char *const removed[] = { "dofile", "loadfile", "load", "loadstring", NULL };
  for (int i = 0; removed[i]; i++) {
    lua_pushnil(L);
    lua_setfield(L, -2, removed[i]);
  }
  lua_pushcfunction(L, fe_print);
  lua_setfield(L, -2, "print");
  lua_pushcfunction(L, fe_require);
  lua_setfield(L, -2, "require");

  lua_getfield(L, -1, LUA_STRLIBNAME);
  static const char *const strfns[] = { "find", "match", "gmatch", "gsub", "dump", NULL };
  for (int i = 0; strfns[i]; i++) {
    lua_pushfstring(L, "string.%s", strfns[i]);
    lua_pushstring(L, i < 4 ? " (Lua patterns can run for unbounded time)"
                            : " (no bytecode in specs)");
    lua_pushcclosure(L, fe_unavailable, 2);
    lua_setfield(L, -2, strfns[i]);
  }
  lua_pop(L, 1);

  lua_getfield(L, -1, LUA_MATHLIBNAME);          /* the same spec, the same numbers */
  lua_getfield(L, -1, "randomseed");
  lua_pushinteger(L, 0);
  lua_call(L, 1, 0);
  lua_pop(L, 1);

  if (luaL_loadbufferx(L, prelude, sizeof prelude - 1, FE_LIBCHUNK, "t") != LUA_OK)
    return lua_error(L);
  lua_call(L, 0, 0);

  lua_newtable(L);                               /* strict globals */
  lua_pushcfunction(L, strict_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, strict_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_pop(L, 1);

  if (luaL_loadbufferx(L, attnc_lualib, attnc_lualib_len, FE_LIBCHUNK, "t") != LUA_OK)
    return lua_error(L);
  fe_push_core(L);
  lua_call(L, 1, 1);
  if (!lua_istable(L, -1)) return luaL_error(L, "attnc.lua did not return its module table");
  lua_setfield(L, LUA_REGISTRYINDEX, "attnc.module");
  return 0;
}
