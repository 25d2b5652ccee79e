/*
** cmd_compile.c -- `attnc compile SPEC [-D NAME=VALUE]... [--target T]
** --emit KIND [--arch A] [--dtype D] [--head-dim N] [--seq S] [--json] [-o FILE]`:
** trace a spec and write what a target makes of it: the pattern IR as text
** (--emit ir, any target), or a compiled kernel through
** attnc_kernel_artifact -- for --target cuda the generated CUDA C++ (cuda),
** PTX (ptx) or a cubin (cubin); for --target cpu an object file (obj),
** assembly (asm), LLVM IR (llvm) or the C header of the object (h). --json
** prints one object with the keys cached (the kernel came from the memory
** or disk cache) and compile_ms instead of writing standard output.
** --seq S picks the tiles as for calls of about S tokens (the API's
** seq_hint), so the kernel is the one an application's first call makes.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/fsio.h"

#include "tools/cli.h"
#include "runtime/runtime.h"

/* the kernel artifacts each compiled target writes, and their files' extensions */
static const struct { const char *kind; attnc_target target; const char *ext; } kinds[] = {
  { "cuda", ATTNC_TARGET_CUDA, ".cu" }, { "ptx", ATTNC_TARGET_CUDA, ".ptx" },
  { "cubin", ATTNC_TARGET_CUDA, ".cubin" }, { "obj", ATTNC_TARGET_CPU, ".o" },
  { "asm", ATTNC_TARGET_CPU, ".s" }, { "llvm", ATTNC_TARGET_CPU, ".ll" }, { "h", ATTNC_TARGET_CPU, ".h" },
};

/* the kind a file name's extension asks for (-o k.cubin: cubin); NULL if none */
static const char *kind_of_file(const char *path) {
  const char *dot = path ? strrchr(path, '.') : NULL;
  if (!dot || strchr(dot, '/')) return NULL;
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    if (strcmp(kinds[i].ext, dot) == 0) return kinds[i].kind;
  return NULL;
}

/* the target that writes artifact kind; false if none does */
static bool kind_target(const char *kind, attnc_target *t) {
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    if (strcmp(kinds[i].kind, kind) == 0) {
      *t = kinds[i].target;
      return true;
    }
  return false;
}

static const CliOpt opts[] = {
  CLI_OPT_DEFINE,
  CLI_OPT_TARGET,
  { "emit", 0, "KIND", "ir (the pattern IR, the default); cuda: cuda, ptx, cubin; cpu: obj, asm, llvm, h"
                         " (without --emit, -o's extension picks: .cu .ptx .cubin .o .s .ll .h)", OPT_EMIT },
  { "output", 'o', "FILE", "write to FILE (atomically) instead of standard output", OPT_OUTPUT },
  { "arch", 0, "A", "cuda: sm_80, sm_90a, ... (default: the GPU's)", OPT_ARCH },
  { "dtype", 0, "D", "the kernel's dtype: f32, bf16, f16 (default f32; cuda: bf16)", OPT_DTYPE },
  { "head-dim", 0, "N", "head dim D (default: the spec's first, else 64)", OPT_VERB },
  { "seq", 0, "S", "tiles as for sequences of about S tokens (the API's seq_hint)", OPT_VERB + 1 },
  { "json", 0, NULL, "print {\"cached\": .., \"compile_ms\": ..} (with -o, or --emit ir)", OPT_JSON },
  CLI_OPT_END
};

/* --emit cuda|ptx|cubin for a compiled target (attnc_kernel_artifact) */
static int emit_kernel(attnc_ctx *ctx, const attnc_spec *spec, attnc_target target,
                       const char *emit, const char *arch, attnc_dtype dt, int hd,
                       long long seq, const char *out, bool json) {
  attnc_compile_options co = { .target = target, .arch = arch, .dtype = dt, .head_dim = hd,
                               .seq_hint = seq };
  attnc_kernel *k = NULL;
  attnc_error err;
  if (attnc_kernel_compile(ctx, spec, &co, &k, &err)) return cli_fail_target(&err, target);
  attnc_kernel_info info;
  attnc_kernel_info_get(k, &info);
  void *data = NULL;
  size_t len = 0;
  int rc = CLI_EXIT_OK;
  if (attnc_kernel_artifact(k, emit, &data, &len, &err)) rc = cli_fail(&err);
  else if (out) {
    char msg[512];
    const void *bufs[1] = { data };
    if (!fsio_write(out, bufs, &len, 1, msg, sizeof msg)) rc = cli_error("%s", msg);
  } else if (!json && fwrite(data, 1, len, stdout) != len)
    rc = cli_error("cannot write to standard output");
  if (!rc && json) {
    printf("{\"spec\": ");
    cli_json_string(stdout, attnc_spec_name(spec));
    printf(", \"target\": \"%s\", \"emit\": ", attnc_target_name(target));
    cli_json_string(stdout, emit);
    printf(", \"dtype\": \"%s\", \"head_dim\": %d, \"bytes\": %zu, \"cached\": %s, \"compile_ms\": %.3f}\n",
           dt == ATTNC_DTYPE_F32 ? "f32" : dt == ATTNC_DTYPE_F16 ? "f16" : "bf16", hd, len,
           info.cached ? "true" : "false", info.compile_ms);
  }
  free(data);
  attnc_kernel_free(k);
  return rc;
}

static int compile_main(const CliVerb *verb, int argc, char **argv) {
  CliParser ps;
  CliSpec cs = { 0 };
  attnc_target target = ATTNC_TARGET_REF;
  const char *emit = NULL, *out = NULL, *val, *arch = NULL;
  attnc_dtype dt = ATTNC_DTYPE_AUTO;
  long long hd = 0, seq = 0;
  bool json = false;
  attnc_ctx *ctx = NULL;
  attnc_spec *spec = NULL;
  int rc = CLI_EXIT_OK, id;
  cli_init(&ps, verb, argc, argv);
  const CliCommon common_opts = { .spec = &cs, .target = &target };
  while ((id = cli_next_own(&ps, verb, &common_opts, &val, &rc)) != CLI_DONE) {
    switch (id) {
    case CLI_HELP: goto done;
    case OPT_EMIT: emit = val; break;
    case OPT_OUTPUT: out = val; break;
    case OPT_ARCH: arch = val; break;
    case OPT_JSON: json = true; break;
    case OPT_VERB: if (!cli_parse_int("--head-dim", val, 1, 1024, &hd)) rc = CLI_EXIT_USAGE; break;
    case OPT_VERB + 1: if (!cli_parse_int("--seq", val, 1, 1LL << 31, &seq)) rc = CLI_EXIT_USAGE; break;
    case OPT_DTYPE: if (!cli_parse_dtype(val, &dt)) rc = CLI_EXIT_USAGE; break;
    }
  }
  if (rc) goto done;
  const char *guess = emit ? NULL : kind_of_file(out);   /* -o's extension, without --emit */
  bool inferred = guess != NULL;
  if (!emit) emit = inferred ? guess : "ir";
  bool kernel = strcmp(emit, "ir") != 0;
  attnc_target want;
  if (kernel && !kind_target(emit, &want)) {
    rc = cli_error("unknown --emit '%s' (choose ir; cuda, ptx or cubin with --target cuda; "
                   "obj, asm, llvm or h with --target cpu)", emit);
    goto done;
  }
  if (kernel && want != target && inferred) {
    rc = cli_error("-o %s: %s files are what --target %s writes: add --target %s, or --emit ir for the IR",
                   out, emit, attnc_target_name(want), attnc_target_name(want));
    goto done;
  }
  if (kernel && want != target) {
    rc = cli_error("--emit %s needs --target %s", emit, attnc_target_name(want));
    goto done;
  }
  if (!(ctx = attnc_ctx_new())) { rc = cli_error("out of memory"); goto done; }
  if ((rc = cli_load_spec(ctx, &cs, verb, &spec))) goto done;
  if (kernel) {
    if (!hd) hd = spec->pat->nhead_dims > 0 ? spec->pat->head_dims[0] : 64;
    if (dt == ATTNC_DTYPE_AUTO) dt = target == ATTNC_TARGET_CUDA ? ATTNC_DTYPE_BF16 : ATTNC_DTYPE_F32;
    rc = emit_kernel(ctx, spec, target, emit, arch, dt, (int)hd, seq, out, json);
    goto done;
  }
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
  "compile", "trace a spec and write its pattern IR or a kernel",
  "SPEC [-D NAME=VALUE]... [--target T] --emit KIND [--arch A] [--dtype D]\n"
  "                     [--head-dim N] [--seq S] [--json] [-o FILE]",
  "Trace the Lua spec SPEC with its params (defaults, or -D overrides) and\n"
  "write the result: with --emit ir, the pattern IR as text, the form the\n"
  "passes and golden tests read; with --target cuda, the generated CUDA C++\n"
  "(cuda), PTX (ptx) or a cubin (cubin) for --arch (default: the GPU's);\n"
  "with --target cpu, an object file (obj), assembly (asm), LLVM IR (llvm)\n"
  "or the C header that goes with the object (h). Kernels go through the\n"
  "kernel cache ($ATTNC_CACHE_DIR); --json prints whether the kernel came\n"
  "from the cache and the compile time. --seq S picks the tiles as the\n"
  "library does for calls of about S tokens.",
  opts, compile_main
};
