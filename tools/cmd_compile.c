/*
** cmd_compile.c -- `attnc compile SPEC [-D NAME=VALUE]... [--target T]
** --emit KIND [-o FILE]`: trace a spec and write what a target makes of
** it. Now: the pattern IR as text (--emit ir). The CPU and CUDA issues add
** llvm, obj, cuda, ptx and cubin, and --arch and --json.
*/
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

static const CliOpt opts[] = {
  CLI_OPT_DEFINE,
  CLI_OPT_TARGET,
  { "emit", 0, "KIND", "what to write: ir (the pattern IR as text; the default)", OPT_EMIT },
  { "output", 'o', "FILE", "write to FILE (atomically) instead of standard output", OPT_OUTPUT },
  CLI_OPT_END
};

static int compile_main(const CliVerb *verb, int argc, char **argv) {
  CliParser ps;
  CliSpec cs = { 0 };
  attnc_target target = ATTNC_TARGET_REF;
  const char *emit = "ir", *out = NULL, *val;
  attnc_ctx *ctx = NULL;
  attnc_spec *spec = NULL;
  int rc = CLI_EXIT_OK, id;
  cli_init(&ps, verb, argc, argv);
  while (rc == CLI_EXIT_OK && (id = cli_next(&ps, &val, cli_repeatable)) != CLI_DONE) {
    switch (id) {
    case CLI_HELP: goto done;
    case CLI_ERROR: rc = CLI_EXIT_USAGE; break;
    case CLI_POSITIONAL: if (!cli_set_spec(&cs, verb, val)) rc = CLI_EXIT_USAGE; break;
    case OPT_DEFINE: if (!cli_add_define(&cs, val)) rc = CLI_EXIT_USAGE; break;
    case OPT_TARGET: if (!cli_parse_target(val, &target)) rc = CLI_EXIT_USAGE; break;
    case OPT_EMIT: emit = val; break;
    case OPT_OUTPUT: out = val; break;
    }
  }
  if (rc) goto done;
  (void)target;                     /* the IR is the same for every target */
  if (strcmp(emit, "ir") != 0) {
    rc = cli_error("unknown --emit '%s' (this build emits: ir)", emit);
    goto done;
  }
  if (!(ctx = attnc_ctx_new())) { rc = cli_error("out of memory"); goto done; }
  if ((rc = cli_load_spec(ctx, &cs, verb, &spec))) goto done;
  char *text = attnc_spec_ir(spec);
  if (!text) { rc = cli_error("out of memory printing the IR"); goto done; }
  rc = cli_write_text(out, text);
  free(text);
done:
  attnc_spec_free(spec);
  attnc_ctx_free(ctx);
  cli_free_spec(&cs);
  return rc;
}

const CliVerb cli_verb_compile = {
  "compile", "trace a spec and write its pattern IR (later: kernels)",
  "SPEC [-D NAME=VALUE]... [--target T] --emit ir [-o FILE]",
  "Trace the Lua spec SPEC with its params (defaults, or -D overrides) and\n"
  "write the result: with --emit ir, the pattern IR as text, the form the\n"
  "passes and golden tests read.",
  opts, compile_main
};
