/*
** frontend.h -- specs: sandboxed Lua 5.4 files traced into the pattern IR.
**
** A spec is a Lua chunk that returns attnc.pattern{...}. It runs in a fresh
** Lua state with a counting allocator (mem_bytes cap), an instruction
** budget (a count hook), and only the safe standard libraries (no io, os,
** debug, load/loadfile/dofile or bytecode); require "attnc" gives the
** building-block library (frontend/attnc.lua, embedded at build time).
** Mask and score functions are called once with symbolic values; what they
** compute becomes IR nodes that carry the spec line they came from.
*/
#ifndef ATTNC_FRONTEND_H
#define ATTNC_FRONTEND_H

#include "ir/ir.h"

typedef struct FeLimits {
  size_t mem_bytes;       /* Lua heap cap; 0 = FE_DEFAULT_MEM */
  long instructions;      /* VM instruction budget; 0 = FE_DEFAULT_INSNS */
} FeLimits;

#define FE_DEFAULT_MEM   ((size_t)256 << 20)
#define FE_DEFAULT_INSNS 200000000L

/*
** Trace a spec into a new pattern allocated in arena a. chunkname is the
** name used in locations (the file path as the user gave it). defs
** override params by name; an unknown name, or a value of the wrong type
** or out of the param's range, is an error naming the -D and the param's
** line. On error returns the status, fills d and sets *out = NULL.
*/
attnc_status fe_trace(Arena *a, const char *chunkname, const char *src, size_t len,
                      const attnc_define *defs, int ndefs, const FeLimits *lim,
                      IrPattern **out, Diag *d);

/* read a whole file into the arena (NUL-terminated); IO errors name the path */
char *fe_read_file(Arena *a, const char *path, size_t *len, Diag *d);

#endif
