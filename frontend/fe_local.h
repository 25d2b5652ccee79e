/*
** fe_local.h -- what the frontend's own files share; nothing outside
** frontend/ includes it.
**
**   sandbox.c   the Lua state: capped allocator, instruction budget, safe
**               libraries, strict globals, error locations
**   symbolic.c  symbolic values, inputs, params: the C core under attnc.lua
**   trace.c     fe_trace and fe_read_file: the driver
**
** One FeCtx per trace, on fe_trace's stack. The Lua state finds it as the
** user data of its allocator (lua_getallocf), so nothing is global and two
** traces in two threads never meet.
*/
#ifndef ATTNC_FE_LOCAL_H
#define ATTNC_FE_LOCAL_H

#include <lua.h>

#include "frontend/frontend.h"

#define FE_MAXOVER    64               /* nesting of building-block lines */
#define FE_HOOK_STEP  1000             /* VM instructions between budget checks */
#define FE_MEM_SLACK  ((size_t)1 << 20) /* extra heap for the message handler */
#define FE_LIBCHUNK   "=(attnc)"       /* chunk name of the embedded Lua */
#define FE_LIBSRC     "(attnc)"        /* ... as Lua abbreviates it */

/* a building block's line, valid for frames deeper than depth */
typedef struct FeOverride { int line, depth; } FeOverride;

typedef struct FeCtx {
  /* memory: every byte the Lua state holds, against a cap */
  size_t mem_used, mem_limit;
  bool in_handler;           /* a message handler runs: FE_MEM_SLACK more */
  bool mem_hit;              /* the cap refused an allocation */
  bool oom;                  /* malloc itself failed */
  /* the instruction budget */
  long insns, insn_limit;
  int hook_step;             /* the count the hook is set to */
  /* the spec */
  const char *file;          /* the chunk name as the user gave it */
  const char *source;        /* "@" file: source of the spec's functions */
  char short_src[LUA_IDSIZE]; /* the name as Lua abbreviates it */
  IrPattern *pat;
  Arena *arena;
  size_t arena_base;         /* a->used_bytes before the trace */
  const attnc_define *defs;
  int ndefs;
  bool *def_used;            /* ndefs flags: the -D named a param */
  FeOverride over[FE_MAXOVER];
  int nover;
  attnc_status status;       /* of the error being raised, when not SPEC */
  int pattern_ref;           /* registry ref of attnc.pattern's result */
} FeCtx;

/* sandbox.c */
FeCtx *fe_ctx(lua_State *L);
lua_State *fe_newstate(FeCtx *c);
int fe_setup(lua_State *L);              /* lua_CFunction: run protected */
int fe_msgh(lua_State *L);               /* message handler for lua_pcall */
void fe_sethook(lua_State *L);
int fe_line(lua_State *L);               /* the spec line of what runs now */
int fe_error(lua_State *L, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 2, 3)))
#endif
  ;
int fe_raise_at(lua_State *L, int line, const char *msg);  /* never returns */
const char *fe_describe(lua_State *L, int idx);   /* "a table", "nil", "-3" */
void fe_locate(lua_State *L, int line);  /* relocate the message on top */
void fe_fmt_size(size_t n, char *buf, size_t len);  /* "16 MiB" */

/* symbolic.c */
void fe_push_core(lua_State *L);         /* the table attnc.lua receives */

#endif
