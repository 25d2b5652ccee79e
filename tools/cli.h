/*
** cli.h -- the attnc command line: verbs, option tables and the helpers
** they share (spec loading with -D, targets, runtime inputs, errors).
**
** Each verb lives in its own file tools/cmd_NAME.c and defines
**   const CliVerb cli_verb_NAME = { "NAME", summary, usage, about, opts, main };
** and is listed once in CLI_VERBS below; nothing else needs to change to
** add one. A verb's main parses its arguments with cli_next over its option
** table, prints at most one error line ("attnc: what is wrong") and returns
** an exit status:
**   0  success              1  a check failed (verify: FAIL)
**   2  a user error (bad spec, bad flag, bad or missing file, wrong shape)
**   3  an internal error (a bug in attnc, a backend compiler or device failure)
*/
#ifndef ATTNC_CLI_H
#define ATTNC_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "attnc.h"
#include "tools/npy.h"

/* the verbs, in the order attnc --help lists them */
#define CLI_VERBS(X) \
  X(compile)         \
  X(run)             \
  X(verify)          \
  X(bench)           \
  X(tune)            \
  X(explain)

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2, CLI_EXIT_BUG = 3 };

/*
** An option: --name VALUE (or --name=VALUE), and -L VALUE (or -LVALUE)
** when letter is set. arg is the value's placeholder in the help, NULL for
** a flag without a value. ids are the verb's own; the shared ones below
** keep one meaning in every verb.
*/
typedef struct CliOpt {
  const char *name;
  char letter;
  const char *arg;
  const char *help;
  int id;
} CliOpt;

enum {
  OPT_DEFINE = 1, OPT_TARGET, OPT_ARCH, OPT_EMIT, OPT_OUTPUT, OPT_Q, OPT_K, OPT_V, OPT_LSE,
  OPT_INPUT, OPT_SCALE, OPT_SHAPE, OPT_DTYPE, OPT_SEED, OPT_JSON, OPT_HKV,
  OPT_VERB = 100         /* a verb's own options start here */
};

/* the options several verbs share, for their tables */
#define CLI_OPT_DEFINE { "define", 'D', "NAME=VALUE", "set a spec param (repeatable)", OPT_DEFINE }
#define CLI_OPT_TARGET { "target", 0, "T", "ref, cpu or cuda (default ref)", OPT_TARGET }
#define CLI_OPT_INPUT  { "input", 0, "NAME=FILE.npy", "a runtime input the spec declares (repeatable)", OPT_INPUT }
#define CLI_OPT_END    { NULL, 0, NULL, NULL, 0 }
/* the random call of verify and bench (CliCall below) */
#define CLI_OPT_SHAPE  { "shape", 0, "B,H,S,D", "batch, query heads, tokens, head dim (default 1,2,S,D: S = the grid's tokens or 200, D = the spec's or 64)", OPT_SHAPE }
#define CLI_OPT_HKV    { "hkv", 0, "N", "key/value heads, dividing H (GQA, MQA; default H)", OPT_HKV }
#define CLI_OPT_KVHEADS { "kv-heads", 0, "N", "the same as --hkv", OPT_HKV }
#define CLI_OPT_DTYPE  { "dtype", 0, "D", "f32, bf16 or f16 (default f32; bf16 for --target cuda)", OPT_DTYPE }
#define CLI_OPT_SEED   { "seed", 0, "N", "random seed (default 1)", OPT_SEED }

typedef struct CliVerb {
  const char *name;
  const char *summary;   /* one line for attnc --help */
  const char *usage;     /* what follows "attnc NAME", e.g. "SPEC [options]" */
  const char *about;     /* a paragraph for attnc NAME --help */
  const CliOpt *opts;    /* ends with CLI_OPT_END; -h/--help is implied */
  int (*main)(const struct CliVerb *verb, int argc, char **argv);   /* argv[0] = NAME */
} CliVerb;

#define CLI_DECLARE(name) extern const CliVerb cli_verb_##name;
CLI_VERBS(CLI_DECLARE)
#undef CLI_DECLARE

/* ------------------------------------------------------------ parsing */

typedef struct CliParser {
  const CliVerb *verb;
  int argc;
  char **argv;
  int i;                 /* next argument */
  bool dashdash;         /* after "--": only positionals */
  unsigned long long seen[4];   /* option ids given, to refuse repeats */
} CliParser;

enum { CLI_POSITIONAL = -1, CLI_DONE = -2, CLI_ERROR = -3, CLI_HELP = -4 };

void cli_init(CliParser *ps, const CliVerb *verb, int argc, char **argv);
/*
** The next argument: an option id with its value in *val (NULL for a
** flag), CLI_POSITIONAL with the argument in *val, CLI_DONE at the end,
** CLI_HELP after printing the verb's help to stdout, or CLI_ERROR after
** printing the error. An option given twice is an error unless repeat.
*/
int cli_next(CliParser *ps, const char **val, bool (*repeat)(int id));
/* the usual repeatable options: -D and --input */
bool cli_repeatable(int id);
void cli_help(const CliVerb *verb, FILE *to);

/* ------------------------------------------------------------ errors */

/* print "attnc: <message>" on stderr; returns CLI_EXIT_USAGE */
int cli_error(const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 1, 2)))
#endif
  ;
/* print a library error; returns the exit status for its status */
int cli_fail(const attnc_error *err);
int cli_exit_status(attnc_status st);

/* ------------------------------------------------------------ helpers */

/* a spec file and its -D overrides */
typedef struct CliSpec {
  const char *path;
  attnc_define defs[64];
  int ndefs;
} CliSpec;

/* -D NAME=VALUE; prints an error and returns false when malformed */
bool cli_add_define(CliSpec *cs, const char *arg);
void cli_free_spec(CliSpec *cs);
/* the one SPEC positional; false (error printed) on a second */
bool cli_set_spec(CliSpec *cs, const CliVerb *verb, const char *arg);
/* load it; returns 0 or the exit status after printing the error */
int cli_load_spec(attnc_ctx *ctx, const CliSpec *cs, const CliVerb *verb, attnc_spec **out);

/*
** --target NAME: parsed and checked against this build. Returns false
** after printing "unknown target" or "target 'cuda' is not available in
** this build".
*/
bool cli_parse_target(const char *name, attnc_target *t);

/* strict numbers: the whole text, in range; false with an error printed */
bool cli_parse_double(const char *opt, const char *text, double *out);
bool cli_parse_int(const char *opt, const char *text, long long lo, long long hi, long long *out);

/* runtime inputs given with --input NAME=FILE.npy */
typedef struct CliInputs {
  int n;
  const char *names[32];
  const char *paths[32];
  NpyArray arrays[32];
  DLTensor tensors[32];
  attnc_named_tensor named[32];
} CliInputs;

bool cli_add_input(CliInputs *in, const char *arg);
/* read the files (int32, float32 or float64); 0 or the exit status */
int cli_load_inputs(CliInputs *in);
void cli_free_inputs(CliInputs *in);

/* a DLTensor over a host array (shape points into a) */
void cli_tensor(NpyArray *a, DLTensor *t);

/* read a .npy file of one of the allowed dtypes; 0 or the exit status */
int cli_read_npy(const char *path, unsigned allowed, NpyArray *a);

/* write text to path atomically, or to stdout when path is NULL */
int cli_write_text(const char *path, const char *text);

/* s as a JSON string (quoted, escaped) on f */
void cli_json_string(FILE *f, const char *s);

/* --dtype f32|bf16|f16; false with an error printed */
bool cli_parse_dtype(const char *text, attnc_dtype *dt);

/*
** The random call verify and bench make: --shape, --hkv, --dtype, --seed
** as given (0 / ATTNC_DTYPE_AUTO where not); tools/gen.h makes it.
*/
typedef struct CliCall {
  bool shape_given;
  long long B, H, S, D;
  long long hkv;              /* 0: H */
  attnc_dtype dtype;          /* AUTO: f32, or bf16 for the cuda target */
  long long seed;             /* default 1 */
} CliCall;

/* take one of those options; false with an error printed */
bool cli_call_option(CliCall *c, int id, const char *val);

/*
** The options the spec verbs share, for their parse loops: the SPEC
** positional and -D (spec), --input (inputs), --target (target, and
** target_given when not NULL) and the call's --shape, --hkv, --dtype,
** --seed (call). A NULL field: the verb handles that option itself or
** takes none. Returns 1 when id was one of these and was taken, -1 when its
** value was bad (error printed), 0 when id is the verb's own.
*/
typedef struct CliCommon {
  CliSpec *spec;
  CliInputs *inputs;
  attnc_target *target;
  bool *target_given;
  CliCall *call;
} CliCommon;
int cli_common_option(const CliVerb *verb, const CliCommon *co, int id, const char *val);
/*
** The spec verbs' parse loop: the next option the verb handles itself
** (cli_next, with the shared ones taken by cli_common_option). CLI_DONE at
** the end, and once *rc is not CLI_EXIT_OK (a bad option or value sets it
** to CLI_EXIT_USAGE); CLI_HELP after printing the help.
*/
int cli_next_own(CliParser *ps, const CliVerb *verb, const CliCommon *co, const char **val, int *rc);

/*
** The generator's shape (tools/gen.h) for pattern p and target t: the
** spec's defaults where nothing was given; the ref target keeps float32
** tensors. 0 or the exit status after printing the error.
*/
struct GenShape;
struct IrPattern;
int cli_call_shape(const CliCall *c, const struct IrPattern *p, attnc_target t, struct GenShape *gs);

/* the message for a target that cannot run here (no GPU or driver) */
int cli_fail_target(const attnc_error *err, attnc_target t);

#endif
