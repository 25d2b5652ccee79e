/*
** api.c -- the public API of include/attnc.h over the internal layers:
** contexts, specs (traced, checked, folded), the reference executor, and
** the names of versions, statuses and targets.
**
** No global mutable state: a spec owns its arena, a context only its
** settings, so contexts and specs in different threads never interfere.
** Every error is turned into an attnc_error at this boundary.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"

#define STR_(x) #x
#define STR(x) STR_(x)

const char *attnc_version(void) {
  return STR(ATTNC_VERSION_MAJOR) "." STR(ATTNC_VERSION_MINOR) "." STR(ATTNC_VERSION_PATCH);
}

const char *attnc_status_name(attnc_status s) {
  switch (s) {
  case ATTNC_OK: return "ok";
  case ATTNC_ERR_SPEC: return "spec error";
  case ATTNC_ERR_ARG: return "bad argument";
  case ATTNC_ERR_IO: return "i/o error";
  case ATTNC_ERR_NOMEM: return "out of memory";
  case ATTNC_ERR_UNSUPPORTED: return "unsupported";
  case ATTNC_ERR_NODEVICE: return "no device";
  case ATTNC_ERR_COMPILE: return "compile error";
  case ATTNC_ERR_RUNTIME: return "runtime error";
  case ATTNC_ERR_INTERNAL: return "internal error";
  }
  return "unknown status";
}

const char *attnc_target_name(attnc_target t) {
  switch (t) {
  case ATTNC_TARGET_REF: return "ref";
  case ATTNC_TARGET_CPU: return "cpu";
  case ATTNC_TARGET_CUDA: return "cuda";
  }
  return "?";
}

/* fill err (when given) with one message and return its status */
static attnc_status fail(attnc_error *err, attnc_status st, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 3, 4)))
#endif
  ;
static attnc_status fail(attnc_error *err, attnc_status st, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    err->status = st;
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
  }
  return st;
}

/* ------------------------------------------------------------ contexts */

attnc_ctx *attnc_ctx_new(void) {
  attnc_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx) return NULL;
  if (pthread_mutex_init(&ctx->lock, NULL) != 0) {
    free(ctx);
    return NULL;
  }
  return ctx;
}

void attnc_ctx_free(attnc_ctx *ctx) {
  if (!ctx) return;
  pthread_mutex_destroy(&ctx->lock);
  free(ctx);
}

/* ------------------------------------------------------------- specs */

/*
** Trace src into a new spec: fe_trace (which leaves the pattern folded
** and shared), then the verifier (a failure there is a bug).
** The spec's arena holds everything; on error it is freed and *out = NULL.
*/
static attnc_status load(attnc_ctx *ctx, const char *name, const char *path, const char *src,
                         const attnc_define *defs, int ndefs, attnc_spec **out,
                         attnc_error *err) {
  if (out) *out = NULL;
  if (!ctx) return fail(err, ATTNC_ERR_ARG, "no context (attnc_ctx is NULL)");
  if (!out) return fail(err, ATTNC_ERR_ARG, "no place for the spec (out is NULL)");
  if (ndefs < 0 || (ndefs > 0 && !defs))
    return fail(err, ATTNC_ERR_ARG, "bad param overrides (defs is NULL)");
  for (int i = 0; i < ndefs; i++)
    if (!defs[i].name || !defs[i].value)
      return fail(err, ATTNC_ERR_ARG, "param override %d has no name or value", i);
  attnc_spec *spec = calloc(1, sizeof *spec);
  if (!spec) return fail(err, ATTNC_ERR_NOMEM, "out of memory");
  spec->ctx = ctx;
  arena_init(&spec->arena);

  pthread_mutex_lock(&ctx->lock);
  FeLimits lim = ctx->limits;
  pthread_mutex_unlock(&ctx->lock);

  Diag d = { 0 };
  size_t len = 0;
  if (path) {
    name = path;
    src = fe_read_file(&spec->arena, path, &len, &d);
  } else if (src)
    len = strlen(src);
  else
    diag_error(&d, ATTNC_ERR_ARG, (Loc){ NULL, 0 }, "no spec source (source is NULL)");
  if (diag_ok(&d) && fe_trace(&spec->arena, name, src, len, defs, ndefs, &lim, &spec->pat, &d) == ATTNC_OK)
    ir_verify(spec->pat, &d);
  if (diag_ok(&d) && !spec->pat)
    diag_error(&d, ATTNC_ERR_INTERNAL, (Loc){ name, 0 }, "the frontend returned no pattern");
  if (!diag_ok(&d)) {
    diag_to_error(&d, err);
    arena_free(&spec->arena);
    free(spec);
    return d.status;
  }
  if (err) { err->status = ATTNC_OK; err->message[0] = 0; }
  *out = spec;
  return ATTNC_OK;
}

attnc_status attnc_spec_load_file(attnc_ctx *ctx, const char *path, const attnc_define *defs,
                                  int ndefs, attnc_spec **out, attnc_error *err) {
  if (!path) {
    if (out) *out = NULL;
    return fail(err, ATTNC_ERR_ARG, "no spec path (path is NULL)");
  }
  return load(ctx, path, path, NULL, defs, ndefs, out, err);
}

attnc_status attnc_spec_load_string(attnc_ctx *ctx, const char *name, const char *source,
                                    const attnc_define *defs, int ndefs, attnc_spec **out,
                                    attnc_error *err) {
  return load(ctx, name ? name : "<string>", NULL, source, defs, ndefs, out, err);
}

void attnc_spec_free(attnc_spec *spec) {
  if (!spec) return;
  arena_free(&spec->arena);
  free(spec);
}

char *attnc_spec_ir(const attnc_spec *spec) {
  if (!spec || !spec->pat) return NULL;
  Arena a;
  arena_init(&a);
  char *text = ir_print(spec->pat, &a);
  char *copy = text ? malloc(strlen(text) + 1) : NULL;
  if (copy) strcpy(copy, text);
  arena_free(&a);
  return copy;
}

const char *attnc_spec_name(const attnc_spec *spec) {
  return spec && spec->pat ? spec->pat->name : NULL;
}

int attnc_spec_ninputs(const attnc_spec *spec) {
  return spec && spec->pat ? spec->pat->ninputs : 0;
}

const char *attnc_spec_input_name(const attnc_spec *spec, int i) {
  if (!spec || !spec->pat || i < 0 || i >= spec->pat->ninputs) return NULL;
  return spec->pat->inputs[i].name;
}

/* ----------------------------------------------------------- running */

attnc_status attnc_run_reference(const attnc_spec *spec, const attnc_args *args,
                                 attnc_error *err) {
  if (!spec || !spec->pat) return fail(err, ATTNC_ERR_ARG, "no spec (spec is NULL)");
  if (!args) return fail(err, ATTNC_ERR_ARG, "no arguments (args is NULL)");
  Diag d = { 0 };
  ref_run(spec->pat, args, &d);
  diag_to_error(&d, err);
  return d.status;
}
