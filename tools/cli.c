/*
** cli.c -- what the verbs share: option parsing, help, error reporting,
** spec loading with -D, targets, runtime inputs and output files.
*/
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"
#include "tools/fsio.h"
#include "tools/gen.h"

/* ------------------------------------------------------------ errors */

int cli_error(const char *fmt, ...) {
  va_list ap;
  fputs("attnc: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return CLI_EXIT_USAGE;
}

int cli_exit_status(attnc_status st) {
  switch (st) {
  case ATTNC_OK: return CLI_EXIT_OK;
  case ATTNC_ERR_COMPILE: case ATTNC_ERR_RUNTIME: case ATTNC_ERR_INTERNAL: return CLI_EXIT_BUG;
  default: return CLI_EXIT_USAGE;     /* spec, argument, io, memory, unsupported, no device */
  }
}

int cli_fail(const attnc_error *err) {
  fprintf(stderr, "attnc: %s\n", err->message[0] ? err->message : attnc_status_name(err->status));
  return cli_exit_status(err->status);
}

/* ------------------------------------------------------------ parsing */

void cli_init(CliParser *ps, const CliVerb *verb, int argc, char **argv) {
  memset(ps, 0, sizeof *ps);
  ps->verb = verb;
  ps->argc = argc;
  ps->argv = argv;
  ps->i = 1;
}

bool cli_repeatable(int id) { return id == OPT_DEFINE || id == OPT_INPUT; }

/* "--name" or "-L" as the user would write the option */
static const char *opt_spelling(const CliOpt *o, char *buf, size_t n) {
  if (o->name) snprintf(buf, n, "--%s", o->name);
  else snprintf(buf, n, "-%c", o->letter);
  return buf;
}

void cli_help(const CliVerb *v, FILE *to) {
  fprintf(to, "usage: attnc %s %s\n\n%s\n\noptions:\n", v->name, v->usage, v->about);
  char col[96];
  int width = 0;
  for (int pass = 0; pass < 2; pass++) {
    for (const CliOpt *o = v->opts; o->name || o->letter; o++) {
      int n;
      if (o->letter && o->name)
        n = snprintf(col, sizeof col, "-%c, --%s%s%s", o->letter, o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
      else if (o->letter)
        n = snprintf(col, sizeof col, "-%c%s%s", o->letter, o->arg ? " " : "", o->arg ? o->arg : "");
      else
        n = snprintf(col, sizeof col, "    --%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
      if (pass == 0 && n > width) width = n;
      if (pass == 1) fprintf(to, "  %-*s  %s\n", width, col, o->help);
    }
    if (pass == 1) fprintf(to, "  %-*s  %s\n", width, "-h, --help", "show this help");
  }
}

static int unknown_opt(const CliParser *ps, const char *arg) {
  cli_error("unknown option '%s' (see 'attnc %s --help')", arg, ps->verb->name);
  return CLI_ERROR;
}

int cli_next(CliParser *ps, const char **val, bool (*repeat)(int id)) {
  *val = NULL;
  while (ps->i < ps->argc) {
    const char *arg = ps->argv[ps->i++];
    if (ps->dashdash || arg[0] != '-' || arg[1] == 0) {   /* "-" is a positional */
      *val = arg;
      return CLI_POSITIONAL;
    }
    if (strcmp(arg, "--") == 0) { ps->dashdash = true; continue; }
    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
      cli_help(ps->verb, stdout);
      return CLI_HELP;
    }
    const CliOpt *o = NULL;
    const char *inl = NULL;                  /* value in the same argument */
    if (arg[1] == '-') {
      const char *name = arg + 2, *eq = strchr(name, '=');
      size_t n = eq ? (size_t)(eq - name) : strlen(name);
      for (const CliOpt *c = ps->verb->opts; c->name || c->letter; c++)
        if (c->name && strlen(c->name) == n && strncmp(c->name, name, n) == 0) o = c;
      if (!o && n == 4 && strncmp(name, "help", 4) == 0)
        return cli_error("option '--help' takes no value"), CLI_ERROR;
      if (!o) {
        char shown[128];
        snprintf(shown, sizeof shown, "--%.*s", (int)(n < 100 ? n : 100), name);
        return unknown_opt(ps, shown);
      }
      if (eq) inl = eq + 1;
    } else {
      for (const CliOpt *c = ps->verb->opts; c->name || c->letter; c++)
        if (c->letter && c->letter == arg[1]) o = c;
      if (!o) {
        char shown[3] = { '-', arg[1], 0 };
        return unknown_opt(ps, shown);
      }
      if (arg[2]) {
        if (!o->arg) return unknown_opt(ps, arg);
        inl = arg + 2;
      }
    }
    char sp[64];
    opt_spelling(o, sp, sizeof sp);
    if (!o->arg && inl) return cli_error("option '%s' takes no value", sp), CLI_ERROR;
    if (o->arg) {
      if (inl) *val = inl;
      else if (ps->i < ps->argc) *val = ps->argv[ps->i++];
      else return cli_error("option '%s' needs a value (%s)", sp, o->arg), CLI_ERROR;
    }
    if (o->id >= 0 && o->id < 256) {
      unsigned long long bit = 1ull << (o->id % 64);
      if ((ps->seen[o->id / 64] & bit) && !(repeat && repeat(o->id)))
        return cli_error("option '%s' given twice", sp), CLI_ERROR;
      ps->seen[o->id / 64] |= bit;
    }
    return o->id;
  }
  return CLI_DONE;
}

/* ------------------------------------------------------------ specs */

bool cli_add_define(CliSpec *cs, const char *arg) {
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg) {
    cli_error("-D expects NAME=VALUE (got '%s')", arg);
    return false;
  }
  size_t n = (size_t)(eq - arg);
  for (int i = 0; i < cs->ndefs; i++)            /* a later -D of a name wins */
    if (strlen(cs->defs[i].name) == n && strncmp(cs->defs[i].name, arg, n) == 0) {
      cs->defs[i].value = eq + 1;
      return true;
    }
  int max = (int)(sizeof cs->defs / sizeof cs->defs[0]);
  if (cs->ndefs == max) {
    cli_error("too many -D (at most %d)", max);
    return false;
  }
  char *name = malloc(n + 1);
  if (!name) {
    cli_error("out of memory");
    return false;
  }
  memcpy(name, arg, n);
  name[n] = 0;
  cs->defs[cs->ndefs].name = name;
  cs->defs[cs->ndefs].value = eq + 1;
  cs->ndefs++;
  return true;
}

void cli_free_spec(CliSpec *cs) {
  for (int i = 0; i < cs->ndefs; i++) free((char *)cs->defs[i].name);
  cs->ndefs = 0;
}

bool cli_set_spec(CliSpec *cs, const CliVerb *verb, const char *arg) {
  if (cs->path) {
    cli_error("unexpected argument '%s' (one SPEC only; see 'attnc %s --help')", arg, verb->name);
    return false;
  }
  cs->path = arg;
  return true;
}

int cli_load_spec(attnc_ctx *ctx, const CliSpec *cs, const CliVerb *verb, attnc_spec **out) {
  *out = NULL;
  if (!cs->path) return cli_error("missing SPEC (see 'attnc %s --help')", verb->name);
  attnc_error err;
  if (attnc_spec_load_file(ctx, cs->path, cs->defs, cs->ndefs, out, &err) != ATTNC_OK)
    return cli_fail(&err);
  return CLI_EXIT_OK;
}

/* ------------------------------------------------------------ targets */

bool cli_parse_target(const char *name, attnc_target *t) {
  static const attnc_target all[] = { ATTNC_TARGET_REF, ATTNC_TARGET_CPU, ATTNC_TARGET_CUDA };
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    if (strcmp(name, attnc_target_name(all[i])) == 0) {
      if (!attnc_target_available(all[i])) {
        cli_error("target '%s' is not available in this build", name);
        return false;
      }
      *t = all[i];
      return true;
    }
  cli_error("unknown target '%s' (choose ref, cpu or cuda)", name);
  return false;
}

/* ------------------------------------------------------------ numbers */

bool cli_parse_double(const char *opt, const char *text, double *out) {
  char *end;
  errno = 0;
  double v = strtod(text, &end);
  if (end == text || *end || errno == ERANGE || !isfinite(v)) {
    cli_error("%s expects a finite number (got '%s')", opt, text);
    return false;
  }
  *out = v;
  return true;
}

bool cli_parse_int(const char *opt, const char *text, long long lo, long long hi, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (end == text || *end || errno == ERANGE || v < lo || v > hi) {
    cli_error("%s expects an integer in [%lld, %lld] (got '%s')", opt, lo, hi, text);
    return false;
  }
  *out = v;
  return true;
}

/* ------------------------------------------------------------ tensors */

void cli_tensor(NpyArray *a, DLTensor *t) {
  memset(t, 0, sizeof *t);
  t->data = a->data;
  t->device = (DLDevice){ kDLCPU, 0 };
  t->ndim = a->ndim;
  t->dtype = a->dtype == NPY_I32 ? (DLDataType){ kDLInt, 32, 1 }
           : a->dtype == NPY_F64 ? (DLDataType){ kDLFloat, 64, 1 } : (DLDataType){ kDLFloat, 32, 1 };
  t->shape = a->shape;
  t->strides = NULL;
}

int cli_read_npy(const char *path, unsigned allowed, NpyArray *a) {
  char err[512];
  if (!npy_read(path, allowed, a, err, sizeof err)) return cli_error("%s", err);
  return CLI_EXIT_OK;
}

bool cli_add_input(CliInputs *in, const char *arg) {
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg || !eq[1]) {
    cli_error("--input expects NAME=FILE.npy (got '%s')", arg);
    return false;
  }
  int max = (int)(sizeof in->names / sizeof in->names[0]);
  if (in->n == max) {
    cli_error("too many --input (at most %d)", max);
    return false;
  }
  size_t n = (size_t)(eq - arg);
  for (int i = 0; i < in->n; i++)
    if (strlen(in->names[i]) == n && strncmp(in->names[i], arg, n) == 0) {
      cli_error("--input '%.*s' given twice", (int)n, arg);
      return false;
    }
  char *name = malloc(n + 1);
  if (!name) {
    cli_error("out of memory");
    return false;
  }
  memcpy(name, arg, n);
  name[n] = 0;
  in->names[in->n] = name;
  in->paths[in->n] = eq + 1;
  in->n++;
  return true;
}

int cli_load_inputs(CliInputs *in) {
  for (int i = 0; i < in->n; i++) {
    int rc = cli_read_npy(in->paths[i], NPY_ANY, &in->arrays[i]);
    if (rc) return rc;
    cli_tensor(&in->arrays[i], &in->tensors[i]);
    in->named[i].name = in->names[i];
    in->named[i].tensor = &in->tensors[i];
  }
  return CLI_EXIT_OK;
}

void cli_free_inputs(CliInputs *in) {
  for (int i = 0; i < in->n; i++) {
    npy_free(&in->arrays[i]);
    free((char *)in->names[i]);
  }
  in->n = 0;
}

int cli_write_text(const char *path, const char *text) {
  char err[512];
  if (!path) {
    fputs(text, stdout);
    if (fflush(stdout) != 0 || ferror(stdout))
      return cli_error("cannot write to standard output: %s", strerror(errno));
    return CLI_EXIT_OK;
  }
  const void *bufs[1] = { text };
  size_t lens[1] = { strlen(text) };
  if (!fsio_write(path, bufs, lens, 1, err, sizeof err)) return cli_error("%s", err);
  return CLI_EXIT_OK;
}

void cli_json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
    else if (*p == '\n') fputs("\\n", f);
    else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
    else fputc(*p, f);
  }
  fputc('"', f);
}

/* ------------------------------------------------------ random calls */

bool cli_parse_dtype(const char *text, attnc_dtype *dt) {
  if (strcmp(text, "f32") == 0 || strcmp(text, "float32") == 0) *dt = ATTNC_DTYPE_F32;
  else if (strcmp(text, "bf16") == 0 || strcmp(text, "bfloat16") == 0) *dt = ATTNC_DTYPE_BF16;
  else if (strcmp(text, "f16") == 0 || strcmp(text, "float16") == 0) *dt = ATTNC_DTYPE_F16;
  else {
    cli_error("--dtype expects f32, bf16 or f16 (got '%s')", text);
    return false;
  }
  return true;
}

/* "B,H,S,D": four positive integers */
static bool parse_shape(const char *text, CliCall *c) {
  static const long long max[4] = { 1 << 16, 1 << 16, 1 << 28, 1024 };
  long long v[4];
  const char *p = text;
  for (int i = 0; i < 4; i++) {
    char *end;
    errno = 0;
    v[i] = strtoll(p, &end, 10);
    if (end == p || errno == ERANGE || v[i] < 1 || v[i] > max[i] || *end != (i < 3 ? ',' : 0)) {
      cli_error("--shape expects B,H,S,D: four positive integers (got '%s')", text);
      return false;
    }
    p = end + 1;
  }
  c->shape_given = true;
  c->B = v[0], c->H = v[1], c->S = v[2], c->D = v[3];
  return true;
}

bool cli_call_option(CliCall *c, int id, const char *val) {
  switch (id) {
  case OPT_SHAPE: return parse_shape(val, c);
  case OPT_HKV: return cli_parse_int("--hkv", val, 1, 1 << 16, &c->hkv);
  case OPT_DTYPE: return cli_parse_dtype(val, &c->dtype);
  case OPT_SEED: return cli_parse_int("--seed", val, 0, (long long)1 << 62, &c->seed);
  }
  return true;
}

int cli_next_own(CliParser *ps, const CliVerb *verb, const CliCommon *co, const char **val, int *rc) {
  while (*rc == CLI_EXIT_OK) {
    int id = cli_next(ps, val, cli_repeatable);
    if (id == CLI_DONE || id == CLI_HELP) return id;
    if (id == CLI_ERROR) {
      *rc = CLI_EXIT_USAGE;
      break;
    }
    int common = cli_common_option(verb, co, id, *val);
    if (!common) return id;
    if (common < 0) *rc = CLI_EXIT_USAGE;
  }
  return CLI_DONE;
}

int cli_common_option(const CliVerb *verb, const CliCommon *co, int id, const char *val) {
  bool ok;
  switch (id) {
  case CLI_POSITIONAL:
    if (!co->spec) return 0;
    ok = cli_set_spec(co->spec, verb, val);
    break;
  case OPT_DEFINE:
    if (!co->spec) return 0;
    ok = cli_add_define(co->spec, val);
    break;
  case OPT_INPUT:
    if (!co->inputs) return 0;
    ok = cli_add_input(co->inputs, val);
    break;
  case OPT_TARGET:
    if (!co->target) return 0;
    ok = cli_parse_target(val, co->target);
    if (co->target_given) *co->target_given = true;
    break;
  case OPT_SHAPE: case OPT_HKV: case OPT_DTYPE: case OPT_SEED:
    if (!co->call) return 0;
    ok = cli_call_option(co->call, id, val);
    break;
  default:
    return 0;
  }
  return ok ? 1 : -1;
}

int cli_fail_target(const attnc_error *err, attnc_target t) {
  if (err->status != ATTNC_ERR_NODEVICE) return cli_fail(err);
  fprintf(stderr, "attnc: %s: no device: --target %s cannot run on this machine\n",
          err->message[0] ? err->message : "no device", attnc_target_name(t));
  return CLI_EXIT_USAGE;
}

int cli_call_shape(const CliCall *c, const IrPattern *p, attnc_target t, GenShape *gs) {
  gen_default_shape(p, gs);
  if (c->shape_given) gs->B = c->B, gs->Hq = c->H, gs->S = c->S, gs->D = c->D;
  gs->Hkv = c->hkv ? c->hkv : gs->Hq;
  if (gs->Hq % gs->Hkv)
    return cli_error("--hkv %lld must divide the %lld query heads", (long long)gs->Hkv, (long long)gs->Hq);
  switch (c->dtype) {
  case ATTNC_DTYPE_BF16: gs->dtype = DT_BF16; break;
  case ATTNC_DTYPE_F16: gs->dtype = DT_F16; break;
  case ATTNC_DTYPE_F32: gs->dtype = DT_F32; break;
  default: gs->dtype = t == ATTNC_TARGET_CUDA ? DT_BF16 : DT_F32; break;
  }
  gs->store_f32 = t == ATTNC_TARGET_REF;    /* the reference reads float32 tensors */
  gs->seed = gen_seed((uint64_t)c->seed);
  double n = (double)gs->B * (double)gs->Hq * (double)gs->S * (double)gs->D;
  if (n > 2e9) return cli_error("--shape is too large for random inputs (%.3g elements in q)", n);
  return CLI_EXIT_OK;
}
