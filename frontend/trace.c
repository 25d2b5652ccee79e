/*
** trace.c -- fe_trace: run a spec in the sandbox and keep the pattern it
** describes; fe_read_file.
**
** The steps, in order:
**   1. a fresh Lua state (sandbox.c) with the attnc library loaded;
**   2. the spec loaded as text only, under the chunk name "@file", so that
**      Lua's own messages read "file:line: ...";
**   3. the spec run in protected mode under the instruction budget, with
**      fe_msgh locating every error at the spec line; attnc.pattern traces
**      mask and score into the IrPattern as it runs;
**   4. checks that need the whole run: the chunk returned the pattern, and
**      every -D named a declared param;
**   5. ir_fold and ir_cse, so the pattern leaves here canonical.
** Every Lua error becomes one Diag; nothing longjmps out of fe_trace.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "frontend/fe_local.h"

enum { FE_MAX_FILE = 64 << 20 };     /* a spec larger than this is not a spec */

/* the line in a located message "file:N: ...", or 0 */
static int msg_line(const FeCtx *c, const char *msg) {
  size_t nf = strlen(c->file);
  if (!msg || strncmp(msg, c->file, nf) != 0 || msg[nf] != ':') return 0;
  return atoi(msg + nf + 1);
}

static bool ends_with(const char *s, const char *tail) {
  size_t n = s ? strlen(s) : 0, m = strlen(tail);
  return n >= m && strcmp(s + n - m, tail) == 0;
}

/*
** Turn the failed protected call's status st and message (on top of L)
** into the diagnostic: the cap and malloc failures get their own words,
** everything else is already "file:line: message".
*/
static attnc_status lua_failure(FeCtx *c, lua_State *L, int st, Diag *d) {
  const char *msg = lua_tostring(L, -1);
  Loc where = { c->file, msg_line(c, msg) };
  if (c->mem_hit && (st == LUA_ERRMEM || ends_with(msg, "not enough memory") ||
                     (msg && strstr(msg, "of memory")))) {
    char sz[32];
    fe_fmt_size(c->mem_limit, sz, sizeof sz);
    return diag_error(d, ATTNC_ERR_SPEC, where, "spec uses more than %s of memory", sz);
  }
  if (st == LUA_ERRMEM)
    return diag_error(d, ATTNC_ERR_NOMEM, where, "out of memory while running the spec");
  if (st == LUA_ERRERR)
    return diag_error(d, ATTNC_ERR_SPEC, where,
                      "error while reporting an error (does the spec recurse without end?)");
  if (!msg) return diag_error(d, ATTNC_ERR_SPEC, where, "the spec failed");
  return diag_error(d, c->status != ATTNC_OK ? c->status : ATTNC_ERR_SPEC, (Loc){ NULL, 0 },
                    "%s", msg);
}

/* "specs/causal.lua" -> "causal" (in the arena) */
static const char *file_stem(Arena *a, const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  const char *dot = strrchr(base, '.');
  size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
  char *s = arena_alloc(a, n + 1);
  if (s) memcpy(s, base, n);
  return s;
}

/*
** After a successful run: the chunk's result must be the pattern, and
** every -D must have named a declared param.
*/
static attnc_status check_run(FeCtx *c, lua_State *L, Diag *d) {
  Loc file = { c->file, 0 };
  bool ok = false;
  if (c->pattern_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->pattern_ref);
    ok = lua_rawequal(L, -1, -2);
    lua_pop(L, 1);
  }
  if (!ok) {
    const char *got = fe_describe(L, -1);
    return diag_error(d, ATTNC_ERR_SPEC, file, "spec must return attnc.pattern{...} (got %s)%s",
                      got, c->pattern_ref != LUA_NOREF ? ": write `return a.pattern{...}`" : "");
  }
  for (int i = 0; i < c->ndefs; i++) {
    if (c->def_used[i]) continue;
    char list[512] = "";
    size_t n = 0;
    for (int j = 0; j < c->pat->nparams && n < sizeof list - 1; j++)
      n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", j ? ", " : "", c->pat->params[j].name);
    if (n >= sizeof list) n = sizeof list - 1;
    return diag_error(d, ATTNC_ERR_SPEC, file, "-D %s: the spec has no param named '%s' (%s%s)",
                      c->defs[i].name, c->defs[i].name,
                      c->pat->nparams ? "its params: " : "it declares no params", list);
  }
  return ATTNC_OK;
}

/* steps 1 to 4 in the state L; the pattern is filled as a side effect */
static attnc_status run(FeCtx *c, lua_State *L, const char *src, size_t len, Diag *d) {
  Loc file = { c->file, 0 };
  lua_pushcfunction(L, fe_setup);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    if (c->mem_hit) {
      char sz[32];
      fe_fmt_size(c->mem_limit, sz, sizeof sz);
      return diag_error(d, ATTNC_ERR_NOMEM, file, "the memory cap (%s) is too small for the attnc "
                        "library", sz);
    }
    return diag_error(d, c->oom ? ATTNC_ERR_NOMEM : ATTNC_ERR_INTERNAL, file,
                      "cannot set up the spec sandbox: %s",
                      lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
  }

  lua_Debug ar;                                  /* how Lua abbreviates the name */
  if (luaL_loadbufferx(L, "", 0, c->source, "t") == LUA_OK && lua_getinfo(L, ">S", &ar))
    snprintf(c->short_src, sizeof c->short_src, "%s", ar.short_src);
  lua_settop(L, 0);

  if (len >= 3 && memcmp(src, "\xEF\xBB\xBF", 3) == 0) { src += 3; len -= 3; }
  if (len > 0 && src[0] == LUA_SIGNATURE[0])
    return diag_error(d, ATTNC_ERR_SPEC, file,
                      "the spec is precompiled Lua bytecode; attnc loads only source text");

  lua_pushcfunction(L, fe_msgh);
  int st = luaL_loadbufferx(L, src, len, c->source, "t");
  if (st == LUA_OK) {
    fe_sethook(L);
    st = lua_pcall(L, 0, 1, 1);
    lua_sethook(L, NULL, 0, 0);
  } else if (st == LUA_ERRSYNTAX && lua_type(L, -1) == LUA_TSTRING)
    fe_locate(L, 0);
  c->in_handler = false;
  if (st != LUA_OK) return lua_failure(c, L, st, d);
  return check_run(c, L, d);
}

/*
** Trace a spec into a new pattern in arena a (see frontend.h). The Lua
** state lives only during the call; the pattern holds nothing of it.
*/
attnc_status fe_trace(Arena *a, const char *chunkname, const char *src, size_t len,
                      const attnc_define *defs, int ndefs, const FeLimits *lim,
                      IrPattern **out, Diag *d) {
  if (out) *out = NULL;
  if (!chunkname || !*chunkname) chunkname = "spec";
  if (!a || !out)
    return diag_error(d, ATTNC_ERR_INTERNAL, (Loc){ chunkname, 0 }, "fe_trace without arena or out");
  if (!src)
    return diag_error(d, ATTNC_ERR_ARG, (Loc){ chunkname, 0 }, "no spec source");
  if (ndefs < 0 || (ndefs > 0 && !defs))
    return diag_error(d, ATTNC_ERR_ARG, (Loc){ chunkname, 0 }, "bad param overrides");
  for (int i = 0; i < ndefs; i++)
    if (!defs[i].name || !defs[i].value)
      return diag_error(d, ATTNC_ERR_ARG, (Loc){ chunkname, 0 }, "-D number %d has no name or value",
                        i + 1);

  FeCtx c;
  memset(&c, 0, sizeof c);
  c.arena = a;
  c.arena_base = a->used_bytes;
  c.file = arena_strdup(a, chunkname);
  c.source = arena_printf(a, "@%s", chunkname);
  c.pat = ir_pattern_new(a, chunkname);
  c.def_used = arena_alloc(a, sizeof(bool) * (size_t)(ndefs + 1));
  if (!c.file || !c.source || !c.pat || !c.def_used)
    return diag_error(d, ATTNC_ERR_NOMEM, (Loc){ chunkname, 0 }, "out of memory");
  c.mem_limit = lim && lim->mem_bytes ? lim->mem_bytes : FE_DEFAULT_MEM;
  c.insn_limit = lim && lim->instructions > 0 ? lim->instructions : FE_DEFAULT_INSNS;
  c.defs = defs;
  c.ndefs = ndefs;
  c.pattern_ref = LUA_NOREF;

  lua_State *L = fe_newstate(&c);
  if (!L) {
    if (c.mem_hit)
      return diag_error(d, ATTNC_ERR_NOMEM, (Loc){ c.file, 0 }, "the memory cap is too small for Lua");
    return diag_error(d, ATTNC_ERR_NOMEM, (Loc){ c.file, 0 }, "out of memory (no Lua state)");
  }
  attnc_status st = run(&c, L, src, len, d);
  lua_close(L);
  if (st != ATTNC_OK) return st;

  IrPattern *p = c.pat;
  if (p->name == p->file && !(p->name = file_stem(a, c.file)))
    return diag_error(d, ATTNC_ERR_NOMEM, (Loc){ c.file, 0 }, "out of memory");
  if ((st = ir_fold(p, d)) != ATTNC_OK || (st = ir_cse(p, d)) != ATTNC_OK) return st;
  *out = p;
  return ATTNC_OK;
}

/* read a whole file into the arena, NUL-terminated; errors name the path */
char *fe_read_file(Arena *a, const char *path, size_t *len, Diag *d) {
  Loc where = { path, 0 };
  if (len) *len = 0;
  if (!path) {
    diag_error(d, ATTNC_ERR_ARG, (Loc){ NULL, 0 }, "no spec path");
    return NULL;
  }
  FILE *f = fopen(path, "rb");
  if (!f) {
    diag_error(d, ATTNC_ERR_IO, where, "cannot open the spec: %s", strerror(errno));
    return NULL;
  }
  size_t n = 0, cap = 4096;
  char *buf = malloc(cap), *s = NULL;
  for (size_t got = 1; buf && got > 0 && n <= FE_MAX_FILE;) {
    if (n == cap) {                              /* grow by doubling */
      char *nb = realloc(buf, cap * 2);
      if (!nb) { free(buf); buf = NULL; break; }
      buf = nb;
      cap *= 2;
    }
    got = fread(buf + n, 1, cap - n, f);
    n += got;
  }
  int err = ferror(f) ? errno : 0;
  fclose(f);
  if (!buf) diag_error(d, ATTNC_ERR_NOMEM, where, "out of memory reading the spec");
  else if (err) diag_error(d, ATTNC_ERR_IO, where, "cannot read the spec: %s", strerror(err));
  else if (n > FE_MAX_FILE) diag_error(d, ATTNC_ERR_IO, where, "the spec is larger than %d MiB",
                                       FE_MAX_FILE >> 20);
  else if (!(s = arena_alloc(a, n + 1))) diag_error(d, ATTNC_ERR_NOMEM, where, "out of memory");
  else {
    memcpy(s, buf, n);
    s[n] = '\0';
    if (len) *len = n;
  }
  free(buf);
  return s;
}
