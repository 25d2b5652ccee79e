/*
** test_frontend.c -- the spec frontend: each building block traced to the
** expected IR; the masks against direct formulas at every (q, k); params
** and -D; the sandbox (no io/os, no other modules, no bytecode, the memory
** cap, the instruction budget); locations; every spec in specs/.
*/
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frontend/frontend.h"
#include "tests/unit/testutil.h"

/* ------------------------------------------------------------ helpers */

/* trace src as "t.lua"; NULL (and the message in d) on error */
static IrPattern *trace(Arena *a, const char *src, const attnc_define *defs, int ndefs,
                        const FeLimits *lim, Diag *d) {
  IrPattern *p = NULL;
  attnc_status st = fe_trace(a, "t.lua", src, strlen(src), defs, ndefs, lim, &p, d);
  ck_assert_int_eq(st, d->status);
  ck_assert(st == ATTNC_OK ? p != NULL : p == NULL);
  return p;
}

static IrPattern *trace_ok(Arena *a, const char *src) {
  Diag d = { 0 };
  IrPattern *p = trace(a, src, NULL, 0, NULL, &d);
  ck_assert_msg(p != NULL, "trace failed: %s\n--- spec:\n%s", d.msg, src);
  Diag v = { 0 };
  ck_assert_msg(ir_verify(p, &v) == ATTNC_OK, "verify: %s", v.msg);
  return p;
}

/* the trace of src must fail with status st and a message containing want */
static void fails_with(const char *src, const attnc_define *defs, int ndefs, const FeLimits *lim,
                       attnc_status st, const char *want) {
  Arena a;
  arena_init(&a);
  Diag d = { 0 };
  IrPattern *p = trace(&a, src, defs, ndefs, lim, &d);
  ck_assert_msg(p == NULL, "traced, but should fail with: %s\n--- spec:\n%s", want, src);
  ck_assert_msg(strstr(d.msg, want) != NULL, "\n  want: %s\n  got:  %s", want, d.msg);
  ck_assert_msg(d.status == st, "status %d, want %d: %s", d.status, st, d.msg);
  ck_assert_msg(strchr(d.msg, '\n') == NULL, "not one line: %s", d.msg);
  arena_free(&a);
}
#define FAILS(src, want) fails_with(src, NULL, 0, NULL, ATTNC_ERR_SPEC, want)

/* the printed pattern without its first line (pattern "t" file "t.lua") */
static const char *body(Arena *a, const IrPattern *p) {
  const char *t = ir_print(p, a);
  ck_assert_ptr_nonnull(t);
  const char *nl = strchr(t, '\n');
  return nl ? nl + 1 : t;
}

#define A "local a = require \"attnc\"\n"

/* ---------------------------------------------- building blocks as IR */

static const struct { const char *name, *src, *ir; } blocks[] = {
  { "causal",
    "local a = require \"attnc\"\n"
    "return a.pattern { mask = a.causal() }\n",
    "%0 = k : int @2\n"
    "%1 = q : int @2\n"
    "%2 = le %0 %1 : bool @2\n"
    "mask %2\n" },
  { "window",
    "local a = require \"attnc\"\n"
    "return a.pattern { mask = a.window(3) }\n",
    "%0 = q : int @2\n"
    "%1 = k : int @2\n"
    "%2 = sub %0 %1 : int @2\n"
    "%3 = abs %2 : int @2\n"
    "%4 = const 3 : int @2\n"
    "%5 = le %3 %4 : bool @2\n"
    "mask %5\n" },
  { "sliding",
    "local a = require \"attnc\"\n"
    "return a.pattern { mask = a.sliding_window(4) }\n",
    "%0 = q : int @2\n"
    "%1 = k : int @2\n"
    "%2 = sub %0 %1 : int @2\n"
    "%3 = const 0 : int @2\n"
    "%4 = ge %2 %3 : bool @2\n"
    "%5 = const 4 : int @2\n"
    "%6 = lt %2 %5 : bool @2\n"
    "%7 = and %4 %6 : bool @2\n"
    "mask %7\n" },
  { "dilated",
    "local a = require \"attnc\"\n"
    "return a.pattern { mask = a.dilated(2, 3) }\n",
    "%0 = q : int @2\n"
    "%1 = k : int @2\n"
    "%2 = sub %0 %1 : int @2\n"
    "%3 = abs %2 : int @2\n"
    "%4 = const 6 : int @2\n"
    "%5 = le %3 %4 : bool @2\n"
    "%6 = const 3 : int @2\n"
    "%7 = mod %2 %6 : int @2\n"
    "%8 = const 0 : int @2\n"
    "%9 = eq %7 %8 : bool @2\n"
    "%10 = and %5 %9 : bool @2\n"
    "mask %10\n" },
  { "sinks",
    "local a = require \"attnc\"\n"
    "return a.pattern { mask = a.sinks(4) }\n",
    "%0 = k : int @2\n"
    "%1 = const 4 : int @2\n"
    "%2 = lt %0 %1 : bool @2\n"
    "mask %2\n" },
  { "global",
    "local a = require \"attnc\"\n"
    "return a.pattern { mask = a.global_tokens(2) }\n",
    "%0 = q : int @2\n"
    "%1 = const 2 : int @2\n"
    "%2 = lt %0 %1 : bool @2\n"
    "%3 = k : int @2\n"
    "%4 = lt %3 %1 : bool @2\n"
    "%5 = or %2 %4 : bool @2\n"
    "mask %5\n" },
  { "prefix",
    "local a = require \"attnc\"\n"
    "return a.pattern { mask = a.prefix(5) }\n",
    "%0 = k : int @2\n"
    "%1 = const 5 : int @2\n"
    "%2 = lt %0 %1 : bool @2\n"
    "mask %2\n" },
  { "combine",
    "local a = require \"attnc\"\n"
    "local m = a.causal() & ~a.sinks(2) | a.window(1)\n"
    "return a.pattern { mask = m }\n",
    "%0 = k : int @3\n"
    "%1 = q : int @3\n"
    "%2 = le %0 %1 : bool @2\n"
    "%3 = const 2 : int @2\n"
    "%4 = lt %0 %3 : bool @2\n"
    "%5 = not %4 : bool @2\n"
    "%6 = and %2 %5 : bool @2\n"
    "%7 = sub %1 %0 : int @2\n"
    "%8 = abs %7 : int @2\n"
    "%9 = const 1 : int @2\n"
    "%10 = le %8 %9 : bool @2\n"
    "%11 = or %6 %10 : bool @2\n"
    "mask %11\n" },
  { "nb",
    "local a = require \"attnc\"\n"
    "return a.pattern { grid = { 6, 8 }, mask = a.neighborhood { kernel = 3, dilation = { 1, 2 } } }\n",
    "grid 6 8\n"
    "%0 = kc 0 : int @2\n"
    "%1 = qc 0 : int @2\n"
    "%2 = const 1 : int @2\n"
    "%3 = max %1 %2 : int @2\n"
    "%4 = const 4 : int @2\n"
    "%5 = min %3 %4 : int @2\n"
    "%6 = sub %0 %5 : int @2\n"
    "%7 = abs %6 : int @2\n"
    "%8 = le %7 %2 : bool @2\n"
    "%9 = qc 1 : int @2\n"
    "%10 = const 2 : int @2\n"
    "%11 = mod %9 %10 : int @2\n"
    "%12 = kc 1 : int @2\n"
    "%13 = mod %12 %10 : int @2\n"
    "%14 = eq %11 %13 : bool @2\n"
    "%15 = idiv %12 %10 : int @2\n"
    "%16 = idiv %9 %10 : int @2\n"
    "%17 = max %16 %2 : int @2\n"
    "%18 = min %17 %10 : int @2\n"
    "%19 = sub %15 %18 : int @2\n"
    "%20 = abs %19 : int @2\n"
    "%21 = le %20 %2 : bool @2\n"
    "%22 = and %14 %21 : bool @2\n"
    "%23 = and %8 %22 : bool @2\n"
    "mask %23\n" },
  { "nbc",
    "local a = require \"attnc\"\n"
    "return a.pattern { grid = { 4, 5 }, mask = a.neighborhood { kernel = { 3, 5 }, causal = { true, false } } }\n",
    "grid 4 5\n"
    "%0 = qc 0 : int @2\n"
    "%1 = kc 0 : int @2\n"
    "%2 = sub %0 %1 : int @2\n"
    "%3 = const 0 : int @2\n"
    "%4 = ge %2 %3 : bool @2\n"
    "%5 = const 3 : int @2\n"
    "%6 = lt %2 %5 : bool @2\n"
    "%7 = and %4 %6 : bool @2\n"
    "%8 = kc 1 : int @2\n"
    "%9 = qc 1 : int @2\n"
    "%10 = const 2 : int @2\n"
    "%11 = max %9 %10 : int @2\n"
    "%12 = min %11 %10 : int @2\n"
    "%13 = sub %8 %12 : int @2\n"
    "%14 = abs %13 : int @2\n"
    "%15 = le %14 %10 : bool @2\n"
    "%16 = and %7 %15 : bool @2\n"
    "mask %16\n" },
  { "swin",
    "local a = require \"attnc\"\n"
    "return a.pattern { grid = { 8, 8 }, mask = a.swin { window = 4, shift = { 2, 0 }, seam = false } }\n",
    "grid 8 8\n"
    "%0 = qc 0 : int @2\n"
    "%1 = const 2 : int @2\n"
    "%2 = sub %0 %1 : int @2\n"
    "%3 = const 8 : int @2\n"
    "%4 = mod %2 %3 : int @2\n"
    "%5 = const 4 : int @2\n"
    "%6 = idiv %4 %5 : int @2\n"
    "%7 = kc 0 : int @2\n"
    "%8 = sub %7 %1 : int @2\n"
    "%9 = mod %8 %3 : int @2\n"
    "%10 = idiv %9 %5 : int @2\n"
    "%11 = eq %6 %10 : bool @2\n"
    "%12 = qc 1 : int @2\n"
    "%13 = idiv %12 %5 : int @2\n"
    "%14 = kc 1 : int @2\n"
    "%15 = idiv %14 %5 : int @2\n"
    "%16 = eq %13 %15 : bool @2\n"
    "%17 = and %11 %16 : bool @2\n"
    "mask %17\n" },
  { "overlap",
    "local a = require \"attnc\"\n"
    "return a.pattern { grid = { 8 }, mask = a.overlapping { window = 4, overlap = 0.5 } }\n",
    "grid 8\n"
    "%0 = kc 0 : int @2\n"
    "%1 = qc 0 : int @2\n"
    "%2 = const 4 : int @2\n"
    "%3 = idiv %1 %2 : int @2\n"
    "%4 = mul %3 %2 : int @2\n"
    "%5 = const 1 : int @2\n"
    "%6 = sub %4 %5 : int @2\n"
    "%7 = ge %0 %6 : bool @2\n"
    "%8 = const 6 : int @2\n"
    "%9 = add %6 %8 : int @2\n"
    "%10 = lt %0 %9 : bool @2\n"
    "%11 = and %7 %10 : bool @2\n"
    "mask %11\n" },
  { "temporal",
    "local a = require \"attnc\"\n"
    "return a.pattern { grid = { 4, 4 }, mask = a.temporal { radius = 1 } }\n",
    "grid 4 4\n"
    "%0 = qc 0 : int @2\n"
    "%1 = kc 0 : int @2\n"
    "%2 = sub %0 %1 : int @2\n"
    "%3 = abs %2 : int @2\n"
    "%4 = const 1 : int @2\n"
    "%5 = le %3 %4 : bool @2\n"
    "mask %5\n" },
  { "docs",
    "local a = require \"attnc\"\n"
    "local doc = a.input(\"doc\", \"i32\", { \"S\" })\n"
    "return a.pattern { mask = a.documents(doc, { causal = true }) }\n",
    "input doc i32 [Sq] line 2\n"
    "%0 = q : int @3\n"
    "%1 = load doc %0 : int @3\n"
    "%2 = k : int @3\n"
    "%3 = load doc %2 : int @3\n"
    "%4 = eq %1 %3 : bool @3\n"
    "%5 = le %2 %0 : bool @3\n"
    "%6 = and %4 %5 : bool @3\n"
    "mask %6\n" },
  { "clusters",
    "local a = require \"attnc\"\n"
    "local c = a.input(\"c\", \"i32\", { \"B\", \"H\", \"S\" })\n"
    "return a.pattern { mask = a.clusters(c) }\n",
    "input c i32 [B, H, Sq] line 2\n"
    "%0 = batch : int @3\n"
    "%1 = head : int @3\n"
    "%2 = q : int @3\n"
    "%3 = load c %0 %1 %2 : int @3\n"
    "%4 = k : int @3\n"
    "%5 = load c %0 %1 %4 : int @3\n"
    "%6 = eq %3 %5 : bool @3\n"
    "mask %6\n" },
  { "routed",
    "local a = require \"attnc\"\n"
    "local r = a.input(\"route\", \"i32\", { \"B\", \"H\", \"S/4\", 2 })\n"
    "return a.pattern { mask = a.routed { route = r, region = 4 } }\n",
    "input route i32 [B, H, Sq/4, 2] line 2\n"
    "%0 = batch : int @3\n"
    "%1 = head : int @3\n"
    "%2 = q : int @3\n"
    "%3 = const 4 : int @3\n"
    "%4 = idiv %2 %3 : int @3\n"
    "%5 = k : int @3\n"
    "%6 = idiv %5 %3 : int @3\n"
    "%7 = contains route %0 %1 %4 %6 : bool @3\n"
    "%8 = eq %4 %6 : bool @3\n"
    "%9 = or %7 %8 : bool @3\n"
    "mask %9\n" },
  { "bitmap",
    "local a = require \"attnc\"\n"
    "local m = a.input(\"blocks\", \"i32\", { \"B\", \"H\", \"S/4\", \"S/4\" })\n"
    "return a.pattern { mask = a.block_bitmap(m, 4) }\n",
    "input blocks i32 [B, H, Sq/4, Sq/4] line 2\n"
    "%0 = batch : int @3\n"
    "%1 = head : int @3\n"
    "%2 = q : int @3\n"
    "%3 = const 4 : int @3\n"
    "%4 = idiv %2 %3 : int @3\n"
    "%5 = k : int @3\n"
    "%6 = idiv %5 %3 : int @3\n"
    "%7 = load blocks %0 %1 %4 %6 : int @3\n"
    "%8 = const 0 : int @3\n"
    "%9 = ne %7 %8 : bool @3\n"
    "mask %9\n" },
  { "perhead",
    "local a = require \"attnc\"\n"
    "return a.pattern { mask = a.per_head(2, a.causal(), a.window(1)) }\n",
    "%0 = head : int @2\n"
    "%1 = const 2 : int @2\n"
    "%2 = lt %0 %1 : bool @2\n"
    "%3 = k : int @2\n"
    "%4 = q : int @2\n"
    "%5 = le %3 %4 : bool @2\n"
    "%6 = sub %4 %3 : int @2\n"
    "%7 = abs %6 : int @2\n"
    "%8 = const 1 : int @2\n"
    "%9 = le %7 %8 : bool @2\n"
    "%10 = select %2 %5 %9 : bool @2\n"
    "mask %10\n" },
  { "alibi",
    "local a = require \"attnc\"\n"
    "return a.pattern { score = a.alibi(4) }\n",
    "%0 = score : float @2\n"
    "%1 = const 2.0 : float @2\n"
    "%2 = const -8 : int @2\n"
    "%3 = head : int @2\n"
    "%4 = const 1 : int @2\n"
    "%5 = add %3 %4 : int @2\n"
    "%6 = mul %2 %5 : int @2\n"
    "%7 = tofloat %6 : float @2\n"
    "%8 = const 4.0 : float @2\n"
    "%9 = div %7 %8 : float @2\n"
    "%10 = pow %1 %9 : float @2\n"
    "%11 = k : int @2\n"
    "%12 = q : int @2\n"
    "%13 = sub %11 %12 : int @2\n"
    "%14 = tofloat %13 : float @2\n"
    "%15 = mul %10 %14 : float @2\n"
    "%16 = add %0 %15 : float @2\n"
    "score %16\n" },
  { "alibi_in",
    "local a = require \"attnc\"\n"
    "local sl = a.input(\"slopes\", \"f32\", { \"H\" })\n"
    "return a.pattern { score = a.alibi(sl) }\n",
    "input slopes f32 [H] line 2\n"
    "%0 = score : float @3\n"
    "%1 = head : int @3\n"
    "%2 = load slopes %1 : float @3\n"
    "%3 = k : int @3\n"
    "%4 = q : int @3\n"
    "%5 = sub %3 %4 : int @3\n"
    "%6 = tofloat %5 : float @3\n"
    "%7 = mul %2 %6 : float @3\n"
    "%8 = add %0 %7 : float @3\n"
    "score %8\n" },
  { "softcap",
    "local a = require \"attnc\"\n"
    "return a.pattern { score = a.softcap(20) }\n",
    "%0 = const 20.0 : float @2\n"
    "%1 = score : float @2\n"
    "%2 = div %1 %0 : float @2\n"
    "%3 = tanh %2 : float @2\n"
    "%4 = mul %0 %3 : float @2\n"
    "score %4\n" },
  { "bias",
    "local a = require \"attnc\"\n"
    "local t = a.input(\"bias\", \"f32\", { \"H\", 3, 5 })\n"
    "return a.pattern { grid = { 4, 4 }, score = a.bias_table(t) }\n",
    "input bias f32 [H, 3, 5] line 2\n"
    "grid 4 4\n"
    "%0 = score : float @3\n"
    "%1 = head : int @3\n"
    "%2 = qc 0 : int @3\n"
    "%3 = kc 0 : int @3\n"
    "%4 = sub %2 %3 : int @3\n"
    "%5 = const -1 : int @3\n"
    "%6 = max %4 %5 : int @3\n"
    "%7 = const 1 : int @3\n"
    "%8 = min %6 %7 : int @3\n"
    "%9 = add %8 %7 : int @3\n"
    "%10 = qc 1 : int @3\n"
    "%11 = kc 1 : int @3\n"
    "%12 = sub %10 %11 : int @3\n"
    "%13 = const -2 : int @3\n"
    "%14 = max %12 %13 : int @3\n"
    "%15 = const 2 : int @3\n"
    "%16 = min %14 %15 : int @3\n"
    "%17 = add %16 %15 : int @3\n"
    "%18 = load bias %1 %9 %17 : float @3\n"
    "%19 = add %0 %18 : float @3\n"
    "score %19\n" },
  { "logit",
    "local a = require \"attnc\"\n"
    "return a.pattern { score = a.logit_scale(function(q) return a.log(q + 2) end) }\n",
    "%0 = score : float @2\n"
    "%1 = q : int @2\n"
    "%2 = const 2 : int @2\n"
    "%3 = add %1 %2 : int @2\n"
    "%4 = tofloat %3 : float @2\n"
    "%5 = log %4 : float @2\n"
    "%6 = mul %0 %5 : float @2\n"
    "score %6\n" },
  { "sinkcal",
    "local a = require \"attnc\"\n"
    "local d = a.input(\"delta\", \"f32\", { \"H\" })\n"
    "return a.pattern { score = a.sink_calibration(4, d) }\n",
    "input delta f32 [H] line 2\n"
    "%0 = score : float @3\n"
    "%1 = k : int @3\n"
    "%2 = const 4 : int @3\n"
    "%3 = lt %1 %2 : bool @3\n"
    "%4 = head : int @3\n"
    "%5 = load delta %4 : float @3\n"
    "%6 = const 0.0 : float @3\n"
    "%7 = select %3 %5 %6 : float @3\n"
    "%8 = sub %0 %7 : float @3\n"
    "score %8\n" },
  { "scores",
    "local a = require \"attnc\"\n"
    "return a.pattern { score = { function(s) return s * 2 end, a.softcap(10) } }\n",
    "%0 = const 10.0 : float @2\n"
    "%1 = score : float @2\n"
    "%2 = const 2.0 : float @2\n"
    "%3 = mul %1 %2 : float @2\n"
    "%4 = div %3 %0 : float @2\n"
    "%5 = tanh %4 : float @2\n"
    "%6 = mul %0 %5 : float @2\n"
    "score %6\n" },
  { "lastk",
    "local a = require \"attnc\"\n"
    "return a.pattern { mask = function(b, h, q, k) return k:ge(a.Sk - 4) | q:ge(a.Sq - 1) end }\n",
    "%0 = k : int @2\n"
    "%1 = seqk : int @2\n"
    "%2 = const 4 : int @2\n"
    "%3 = sub %1 %2 : int @2\n"
    "%4 = ge %0 %3 : bool @2\n"
    "%5 = q : int @2\n"
    "%6 = seqq : int @2\n"
    "%7 = const 1 : int @2\n"
    "%8 = sub %6 %7 : int @2\n"
    "%9 = ge %5 %8 : bool @2\n"
    "%10 = or %4 %9 : bool @2\n"
    "mask %10\n" },
};

START_TEST(block_ir) {
  Arena a;
  arena_init(&a);
  IrPattern *p = trace_ok(&a, blocks[_i].src);
  const char *got = body(&a, p);
  ck_assert_msg(strcmp(got, blocks[_i].ir) == 0, "block %s:\n--- want:\n%s--- got:\n%s",
                blocks[_i].name, blocks[_i].ir, got);
  /* the text parses back to the same text */
  Diag d = { 0 };
  const char *t1 = ir_print(p, &a);
  IrPattern *q = ir_parse(&a, t1, "t.ir", &d);
  ck_assert_msg(q != NULL, "parse: %s", d.msg);
  ck_assert_str_eq(t1, ir_print(q, &a));
  arena_free(&a);
}
END_TEST

/* ------------------------------------------- masks against formulas */

typedef struct Case {
  int64_t grid[3];
  int rank;
  int64_t S;                  /* tokens when there is no grid */
  int64_t K[3], dil[3], win[3], shift[3];
  bool causal[3];
  double overlap;
} Case;

typedef bool (*RefMask)(const Case *c, const int64_t *qc, const int64_t *kc, int64_t q, int64_t k);

static int64_t fmod_(int64_t a, int64_t b) { return ir_floormod(a, b); }

/*
** NATTEN per axis, written as a window start (not the library's clamp):
** group of residue r has n = ceil((N - r) / d) tokens; start =
** clamp(q' - K/2, 0, n - K); k' in [start, start + K). Causal: k' in
** (q' - K, q'].
*/
static bool ref_natten_axis(int64_t N, int64_t K, int64_t d, bool causal, int64_t q, int64_t k) {
  if (q % d != k % d) return false;
  int64_t r = q % d, n = (N - r + d - 1) / d, qq = q / d, kk = k / d;
  if (causal) return kk <= qq && qq - kk < K;
  int64_t start = qq - K / 2;
  if (start > n - K) start = n - K;
  if (start < 0) start = 0;
  return kk >= start && kk < start + K;
}

static bool ref_neighborhood(const Case *c, const int64_t *qc, const int64_t *kc, int64_t q,
                             int64_t k) {
  if (c->rank == 0) return ref_natten_axis(c->S, c->K[0], c->dil[0], c->causal[0], q, k);
  for (int i = 0; i < c->rank; i++)
    if (!ref_natten_axis(c->grid[i], c->K[i], c->dil[i], c->causal[i], qc[i], kc[i])) return false;
  return true;
}

/* Swin's mask: the same window after the roll, and (seam) pixels rolled round
   from the start of an axis (x < s) kept apart from the others */
static bool ref_swin(const Case *c, const int64_t *qc, const int64_t *kc, int64_t q, int64_t k) {
  for (int i = 0; i < c->rank; i++) {
    int64_t N = c->grid[i], M = c->win[i], s = c->shift[i];
    if (fmod_(qc[i] - s, N) / M != fmod_(kc[i] - s, N) / M) return false;
    if (s > 0 && (qc[i] < s) != (kc[i] < s)) return false;
  }
  return true;
}

static bool ref_overlap(const Case *c, const int64_t *qc, const int64_t *kc, int64_t q, int64_t k) {
  for (int i = 0; i < c->rank; i++) {
    int64_t M = c->win[i], Mo = M + (int64_t)floor((double)M * c->overlap);
    int64_t lo = qc[i] / M * M - (Mo - M) / 2;
    if (kc[i] < lo || kc[i] >= lo + Mo) return false;
  }
  return true;
}

static bool ref_temporal(const Case *c, const int64_t *qc, const int64_t *kc, int64_t q, int64_t k) {
  return llabs(qc[0] - kc[0]) <= c->win[0];
}

/* evaluate p's mask at every (q, k) and compare with ref */
static void check_mask(const IrPattern *p, const Case *c, RefMask ref) {
  int64_t S = 1;
  if (c->rank == 0) S = c->S;
  for (int i = 0; i < c->rank; i++) S *= c->grid[i];
  double *vals = malloc(sizeof(double) * (size_t)(p->nnodes + 1));
  IrEnv env = { .sq = S, .sk = S };
  int wrong = 0;
  for (int64_t q = 0; q < S; q++)
    for (int64_t k = 0; k < S; k++) {
      env.q = q;
      env.k = k;
      ir_env_coords(p, &env);
      Diag d = { 0 };
      bool got = p->mask < 0 ? true : ir_eval(p, p->mask, &env, vals, &d) != 0;
      ck_assert_msg(diag_ok(&d), "eval: %s", d.msg);
      bool want = ref(c, env.qc, env.kc, q, k);
      if (got != want && wrong++ < 3)
        fprintf(stderr, "q=%lld k=%lld: got %d want %d\n", (long long)q, (long long)k, got, want);
    }
  free(vals);
  ck_assert_msg(wrong == 0, "%d pairs differ", wrong);
}

static void list3(char *buf, size_t n, const int64_t *v, int rank) {
  if (rank <= 1) { snprintf(buf, n, "%lld", (long long)v[0]); return; }
  snprintf(buf, n, "{ %lld, %lld%s", (long long)v[0], (long long)v[1], rank == 2 ? " }" : "");
  if (rank == 3) snprintf(buf + strlen(buf), n - strlen(buf), ", %lld }", (long long)v[2]);
}

static void grid_src(char *buf, size_t n, const Case *c) {
  char g[64];
  list3(g, sizeof g, c->grid, c->rank);
  if (c->rank == 0) buf[0] = '\0';
  else if (c->rank == 1) snprintf(buf, n, "grid = { %s }, ", g);
  else snprintf(buf, n, "grid = %s, ", g);
}

START_TEST(neighborhood_semantics) {
  static const Case cases[] = {
    { .rank = 0, .S = 13, .K = { 5 }, .dil = { 1 } },
    { .rank = 0, .S = 14, .K = { 3 }, .dil = { 3 } },
    { .rank = 1, .grid = { 11 }, .K = { 3 }, .dil = { 2 } },
    { .rank = 1, .grid = { 9 }, .K = { 3 }, .dil = { 1 }, .causal = { true } },
    { .rank = 2, .grid = { 7, 6 }, .K = { 3, 5 }, .dil = { 2, 1 } },
    { .rank = 2, .grid = { 8, 7 }, .K = { 3, 3 }, .dil = { 1, 2 }, .causal = { false, true } },
    { .rank = 2, .grid = { 9, 9 }, .K = { 3, 3 }, .dil = { 3, 3 } },
    { .rank = 3, .grid = { 4, 5, 6 }, .K = { 3, 3, 3 }, .dil = { 1, 1, 2 }, .causal = { true, false, false } },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const Case *c = &cases[i];
    int r = c->rank ? c->rank : 1;
    char src[1024], g[128], K[64], dl[64], cz[64];
    grid_src(g, sizeof g, c);
    list3(K, sizeof K, c->K, r);
    list3(dl, sizeof dl, c->dil, r);
    snprintf(cz, sizeof cz, r == 1 ? "%s" : r == 2 ? "{ %s, %s }" : "{ %s, %s, %s }",
             c->causal[0] ? "true" : "false", c->causal[1] ? "true" : "false",
             c->causal[2] ? "true" : "false");
    snprintf(src, sizeof src,
             A "return a.pattern { %smask = a.neighborhood { kernel = %s, dilation = %s, causal = %s } }\n",
             g, K, dl, cz);
    Arena a;
    arena_init(&a);
    check_mask(trace_ok(&a, src), c, ref_neighborhood);
    arena_free(&a);
  }
}
END_TEST

START_TEST(grid_semantics) {
  static const Case swins[] = {
    { .rank = 2, .grid = { 8, 8 }, .win = { 4, 4 }, .shift = { 2, 2 } },
    { .rank = 2, .grid = { 6, 9 }, .win = { 3, 4 }, .shift = { 1, 0 } },
    { .rank = 3, .grid = { 4, 4, 6 }, .win = { 2, 2, 3 }, .shift = { 1, 0, 2 } },
    { .rank = 2, .grid = { 10, 14 }, .win = { 4, 6 }, .shift = { 2, 3 } },   /* M does not divide n */
    { .rank = 1, .grid = { 16 }, .win = { 4 }, .shift = { 6 } },             /* s > M */
  };
  for (size_t i = 0; i < sizeof swins / sizeof swins[0]; i++) {
    const Case *c = &swins[i];
    char src[512], g[128], w[64], s[64];
    grid_src(g, sizeof g, c);
    list3(w, sizeof w, c->win, c->rank);
    list3(s, sizeof s, c->shift, c->rank);
    snprintf(src, sizeof src, A "return a.pattern { %smask = a.swin { window = %s, shift = %s } }\n",
             g, w, s);
    Arena a;
    arena_init(&a);
    check_mask(trace_ok(&a, src), c, ref_swin);
    arena_free(&a);
  }
  static const Case overlaps[] = {
    { .rank = 2, .grid = { 8, 8 }, .win = { 4, 4 }, .overlap = 0.5 },
    { .rank = 1, .grid = { 12 }, .win = { 4 }, .overlap = 1.0 },
    { .rank = 2, .grid = { 6, 9 }, .win = { 3, 3 }, .overlap = 0.34 },
  };
  for (size_t i = 0; i < sizeof overlaps / sizeof overlaps[0]; i++) {
    const Case *c = &overlaps[i];
    char src[512], g[128], w[64];
    grid_src(g, sizeof g, c);
    list3(w, sizeof w, c->win, c->rank);
    snprintf(src, sizeof src,
             A "return a.pattern { %smask = a.overlapping { window = %s, overlap = %.17g } }\n", g, w,
             c->overlap);
    Arena a;
    arena_init(&a);
    check_mask(trace_ok(&a, src), c, ref_overlap);
    arena_free(&a);
  }
  Case t = { .rank = 2, .grid = { 6, 3 }, .win = { 2 } };
  Arena a;
  arena_init(&a);
  check_mask(trace_ok(&a, A "return a.pattern { grid = { 6, 3 }, mask = a.temporal { radius = 2 } }"),
             &t, ref_temporal);
  arena_free(&a);
}
END_TEST

/* the 1-D masks at every (q, k) of a 20-token sequence */
static bool ref_1d(const Case *c, const int64_t *qc, const int64_t *kc, int64_t q, int64_t k) {
  int64_t W = 5, d = 3, n = 3, G = 2, P = 7;
  switch (c->K[0]) {
  case 0: return k <= q;                                       /* causal */
  case 1: return llabs(q - k) <= W;                            /* window */
  case 2: return q - k >= 0 && q - k < W;                      /* sliding */
  case 3: return llabs(q - k) <= W * d && (q - k) % d == 0;    /* dilated */
  case 4: return k <= q && (q - k < W || k < n);               /* sinks */
  case 5: return llabs(q - k) <= W || q < G || k < G;          /* global */
  case 6: return k < P || k <= q;                              /* prefix lm */
  case 7: return !(k <= q) || q - k >= W;                      /* negation */
  case 8: return k >= c->S - 4 || q == c->S - 1;               /* last tokens */
  default: return false;
  }
}

START_TEST(sequence_semantics) {
  static const char *const masks[] = {
    "a.causal()",
    "a.window(5)",
    "a.sliding_window(5)",
    "a.dilated(5, 3)",
    "a.sliding_window(5) | (a.causal() & a.sinks(3))",
    "a.window(5) | a.global_tokens(2)",
    "a.prefix(7) | a.causal()",
    "~a.sliding_window(5)",
    "function(b, h, q, k) return k:ge(a.Sk - 4) | q:eq(a.Sq - 1) end",
  };
  for (size_t i = 0; i < sizeof masks / sizeof masks[0]; i++) {
    char src[512];
    snprintf(src, sizeof src, A "return a.pattern { mask = %s }\n", masks[i]);
    Case c = { .rank = 0, .S = 20, .K = { (int64_t)i } };
    Arena a;
    arena_init(&a);
    check_mask(trace_ok(&a, src), &c, ref_1d);
    arena_free(&a);
  }
}
END_TEST

/* score mods evaluated at a point against their formulas */
START_TEST(score_semantics) {
  Arena a;
  arena_init(&a);
  double vals[256];
  IrEnv env = { .b = 0, .h = 3, .q = 9, .k = 4, .sq = 16, .sk = 16, .s = 1.25 };

  IrPattern *p = trace_ok(&a, A "return a.pattern { score = { a.alibi(8), a.softcap(2.5) } }");
  Diag d = { 0 };
  double slope = pow(2.0, -8.0 * 4 / 8), s1 = 1.25 + slope * (4 - 9);
  ck_assert_double_eq_tol(ir_eval(p, p->score, &env, vals, &d), 2.5 * tanh(s1 / 2.5), 1e-12);

  /* a bias table [H, 3, 5] on a 4 x 4 grid: s + bias[h, dy + 1, dx + 2], clamped */
  p = trace_ok(&a, A "local t = a.input('bias', 'f32', { 'H', 3, 5 })\n"
                   "return a.pattern { grid = { 4, 4 }, score = a.bias_table(t) }");
  float table[4][3][5];
  for (int h = 0; h < 4; h++)
    for (int y = 0; y < 3; y++)
      for (int x = 0; x < 5; x++) table[h][y][x] = (float)(100 * h + 10 * y + x);
  IrTensorView view = { .data = table, .dtype = DT_F32, .rank = 3, .shape = { 4, 3, 5 },
                        .strides = { 15, 5, 1 } };
  env.inputs = &view;
  for (int64_t q = 0; q < 16; q++)
    for (int64_t k = 0; k < 16; k++) {
      env.q = q;
      env.k = k;
      ir_env_coords(p, &env);
      int64_t dy = env.qc[0] - env.kc[0], dx = env.qc[1] - env.kc[1];
      dy = dy < -1 ? -1 : dy > 1 ? 1 : dy;
      dx = dx < -2 ? -2 : dx > 2 ? 2 : dx;
      double want = 1.25 + table[3][dy + 1][dx + 2];
      ck_assert_double_eq_tol(ir_eval(p, p->score, &env, vals, &d), want, 1e-12);
    }
  ck_assert_msg(diag_ok(&d), "%s", d.msg);
  arena_free(&a);
}
END_TEST

/* ------------------------------------------------------------- params */

START_TEST(params_and_defines) {
  Arena a;
  arena_init(&a);
  const char *src = A
    "local W = a.param('window', 16, { min = 1, max = 64, doc = 'tokens' })\n"
    "local cap = a.param('cap', 30.0)\n"
    "assert(math.type(W) == 'integer' and math.type(cap) == 'float')\n"
    "local r = a.min(W, 100) * 2 + a.abs(-3) + a.clamp(10, 0, 5) + a.select(true, 1, 2)\n"
    "assert(math.type(r) == 'integer', 'plain arithmetic stays plain')\n"
    "assert(a.max(1, 2.5) == 2.5 and a.exp(0) == 1.0 and a.tanh(0) == 0 and a.lt(1, 2))\n"
    "assert(a.all(true, a.le(1, 1)) == true and a.any(false, false) == false and a.negate(false))\n"
    "assert(a.float(3) == 3.0 and math.type(a.float(3)) == 'float' and a.sqrt(4) == 2.0)\n"
    "return a.pattern { mask = a.sliding_window(r), score = a.softcap(cap) }\n";
  Diag d = { 0 };
  IrPattern *p = trace(&a, src, NULL, 0, NULL, &d);
  ck_assert_msg(p != NULL, "%s", d.msg);
  ck_assert_int_eq(p->nparams, 2);
  ck_assert_str_eq(p->params[0].name, "window");
  ck_assert_int_eq(p->params[0].type, IR_INT);
  ck_assert_double_eq(p->params[0].value, 16);
  ck_assert_double_eq(p->params[0].def, 16);
  ck_assert(!p->params[0].overridden);
  ck_assert_int_eq(p->params[0].line, 2);
  ck_assert_int_eq(p->params[1].type, IR_FLOAT);
  ck_assert_int_eq(p->params[1].line, 3);
  ck_assert_str_eq(p->name, "t");

  attnc_define defs[] = { { "window", "8" }, { "cap", "2" }, { "window", "4" } };
  p = trace(&a, src, defs, 3, NULL, &d);
  ck_assert_msg(p != NULL, "%s", d.msg);
  ck_assert_double_eq(p->params[0].value, 4);              /* the last -D wins */
  ck_assert(p->params[0].overridden);
  ck_assert_double_eq(p->params[0].def, 16);
  ck_assert_double_eq(p->params[1].value, 2.0);
  ck_assert_str_eq(p->params[0].doc, "tokens");             /* doc = is kept */
  ck_assert_ptr_null(p->params[1].doc);
  ck_assert(strstr(ir_print(p, &a), "param window int 4 default 16 overridden doc \"tokens\" line 2") != NULL);
  arena_free(&a);

  attnc_define bad_int[] = { { "window", "0x10" } };
  fails_with(src, bad_int, 1, NULL, ATTNC_ERR_SPEC, "t.lua:2: -D window=0x10: param window takes an integer");
  attnc_define high[] = { { "window", "65" } };
  fails_with(src, high, 1, NULL, ATTNC_ERR_SPEC,
             "t.lua:2: param window must be <= 64 (got 65, from -D window=65)");
  attnc_define nan[] = { { "cap", "nan" } };
  fails_with(src, nan, 1, NULL, ATTNC_ERR_SPEC, "t.lua:3: -D cap=nan: param cap takes a number");
  attnc_define unknown[] = { { "windw", "8" } };
  fails_with(src, unknown, 1, NULL, ATTNC_ERR_SPEC,
             "t.lua: -D windw: the spec has no param named 'windw' (its params: window, cap)");
  fails_with(A "return a.pattern { mask = a.causal() }", unknown, 1, NULL, ATTNC_ERR_SPEC,
             "t.lua: -D windw: the spec has no param named 'windw' (it declares no params)");
  FAILS(A "local x = a.param('w', 1, { mni = 0 })", "t.lua:2: param w: unknown option 'mni' (known: min, max, doc)");
  FAILS(A "local x = a.param('2w', 1)", "t.lua:2: attnc.param: the name must be an identifier of up to 64 characters");
  FAILS(A "local x = a.param('w', true)", "t.lua:2: param w: the default must be a number (got true)");
  FAILS(A "local x = a.param('w', 1.5, { min = 2 })", "t.lua:2: param w must be >= 2 (got 1.5)");
}
END_TEST

START_TEST(inputs) {
  Arena a;
  arena_init(&a);
  IrPattern *p = trace_ok(&a, A
    "local n = a.param('n', 4)\n"
    "local t = a.input('t', 'f32', { 'B', 'Hkv', 'Sk/n', 'S/3' })\n"
    "local u = a.input('u', 'i32', { 7, 'n', 'n/3', 'Sq' })\n"
    "assert(t.name == 't' and t.rank == 4 and t.dtype == 'f32')\n"
    "assert(tostring(u) == \"attnc input 'u' (i32, 4 dims)\")\n"
    "return a.pattern { mask = function(b, h, q, k) return u(1, 2, 0, q):eq(k) & t(b, h, k // n, q // 3):gt(0) end }\n");
  ck_assert_int_eq(p->ninputs, 2);
  const IrInput *t = &p->inputs[0], *u = &p->inputs[1];
  ck_assert_int_eq(t->rank, 4);
  ck_assert_int_eq(t->dims[0].sym, DIM_B);
  ck_assert_int_eq(t->dims[1].sym, DIM_HKV);
  ck_assert(t->dims[2].sym == DIM_SK && t->dims[2].value == 4);
  ck_assert(t->dims[3].sym == DIM_SQ && t->dims[3].value == 3);
  ck_assert(u->dims[0].sym == DIM_CONST && u->dims[0].value == 7);
  ck_assert(u->dims[1].sym == DIM_CONST && u->dims[1].value == 4);
  ck_assert(u->dims[2].sym == DIM_CONST && u->dims[2].value == 2);   /* ceil(4 / 3) */
  ck_assert_int_eq(u->line, 4);
  arena_free(&a);

  FAILS(A "local t = a.input('t', 'f32', {})", "t.lua:2: input 't' must have 1 to 4 dims (got 0)");
  FAILS(A "local t = a.input('t', 'f32', { 'S', 0 })", "t.lua:2: input 't' dim 2 must be >= 1 (got 0)");
  FAILS(A "local t = a.input('t', 'f32', { 'S' })\nlocal u = a.input('t', 'i32', { 'S' })",
        "t.lua:3: input 't' is declared twice (first at line 2)");
  FAILS(A "local t = a.input('t', 'f32', { 'S' })\n"
          "return a.pattern { mask = function(b, h, q, k) return t:contains(k) end }",
        "contains needs an i32 input ('t' is f32)");
  FAILS(A "local t = a.input('t', 'i32', { 'S' })\n"
          "return a.pattern { mask = function(b, h, q, k) return t[q / 2]:eq(0) end }",
        "t.lua:3: input 't' index 1 must be an integer (got float)");
  FAILS(A "local t = a.input('t', 'i32', { 'S' })\nlocal n = #t",
        "t.lua:3: cannot take the length (#) of input 't'");
}
END_TEST

/* ------------------------------------------------------- symbolic misuse */

START_TEST(symbolic_misuse) {
  static const struct { const char *body, *want; } cases[] = {
    { "return q < k", "t.lua:3: cannot use '<' or '>' on symbolic values" },
    { "return k <= 3", "t.lua:3: cannot use '<=' or '>=' on symbolic values" },
    { "return q == k", "t.lua:3: cannot use '==' or '~=' on symbolic values" },
    { "return #q", "t.lua:3: cannot take the length (#) of a symbolic int" },
    { "return q()", "t.lua:3: cannot call a symbolic int" },
    { "return tostring(q)", "t.lua:3: cannot turn into a string a symbolic int" },
    { "return 'q' .. q", "t.lua:3: cannot concatenate a symbolic int" },
    { "return q.foo", "t.lua:3: a symbolic int has no field 'foo'" },
    { "return q[1]", "t.lua:3: cannot index a symbolic int" },
    { "q.x = 1 return true", "t.lua:3: cannot assign fields of a symbolic int" },
    { "return (q - k).x:eq(0)", "t.lua:3: only q and k have coordinates" },
    { "return q:coord(0):eq(0)", "t.lua:3: q.coord(0) needs a grid" },
    { "return q.lt(k)", "t.lua:3: lt needs two values: write a:lt(b), with a colon" },
    { "return (q << 1):eq(0)", "t.lua:3: '<<' is not defined on symbolic values" },
    { "return ~q", "t.lua:3: '~' combines booleans" },
    { "return q:le(k) + 1", "t.lua:3: 'add' expects numbers, got bool" },
    { "return q:le('1')", "t.lua:3: 'le': expected a number, a boolean or a symbolic value, got the string \"1\"" },
    { "return q:le({})", "t.lua:3: 'le': expected a number, a boolean or a symbolic value, got a table" },
    { "return a.select(q, 1, 2):eq(1)", "t.lua:3: attnc.select: the condition must be a boolean" },
    { "return a.exp(q:le(k))", "t.lua:3: attnc.exp: expected a number, got a symbolic bool" },
    { "return a.clamp(q, 5, 1):eq(0)", "t.lua:3: attnc.clamp: lo (5) is greater than hi (1)" },
    { "return a.min(q)", "t.lua:3: attnc.min needs at least two values" },
    { "return a.causal() & q:le(k)", "t.lua:3: '&' on masks: expected a mask" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char src[512];
    snprintf(src, sizeof src, A "return a.pattern { mask = function(b, h, q, k)\n%s\nend }\n",
             cases[i].body);
    FAILS(src, cases[i].want);
  }
  /* documented: == between a symbolic value and a number is plain Lua: false */
  Arena a;
  arena_init(&a);
  trace_ok(&a, A "return a.pattern { mask = function(b, h, q, k)\n"
                 "  assert(not (q == 3) and q ~= nil)\n  return k:le(q)\nend }\n");
  arena_free(&a);
}
END_TEST

START_TEST(pattern_fields) {
  Arena a;
  arena_init(&a);
  IrPattern *p = trace_ok(&a, A "return a.pattern { name = 'mine', grid = { 2, 3, 4 }, scale = 0.125,\n"
                              "  dtypes = { 'f16', 'bf16' }, head_dims = { 64, 128 }, mask = true }\n");
  ck_assert_str_eq(p->name, "mine");
  ck_assert_int_eq(p->grid_rank, 3);
  ck_assert(p->grid[0] == 2 && p->grid[1] == 3 && p->grid[2] == 4);
  ck_assert_double_eq(p->scale, 0.125);
  ck_assert_uint_eq(p->dtypes, (1u << DT_F16) | (1u << DT_BF16));
  ck_assert(p->nhead_dims == 2 && p->head_dims[0] == 64 && p->head_dims[1] == 128);
  ck_assert_int_eq(p->mask, -1);
  ck_assert_int_eq(p->score, -1);
  /* a score that returns s unchanged is no score; a mask of false keeps a constant */
  p = trace_ok(&a, A "return a.pattern { mask = false, score = function(s) return s end }");
  ck_assert_int_eq(p->score, -1);
  ck_assert(p->mask >= 0 && p->nodes[p->mask].op == IR_CONST && p->nodes[p->mask].imm.i == 0);
  /* an int score becomes float */
  p = trace_ok(&a, A "return a.pattern { score = function(s, b, h, q, k) return q - k end }");
  ck_assert_int_eq(p->nodes[p->score].type, IR_FLOAT);
  arena_free(&a);

  FAILS(A "return a.pattern { grid = { 4, 4, 4, 4 } }", "t.lua:2: grid must list 1 to 3 values (got 4)");
  FAILS(A "return a.pattern { scale = -1 }", "t.lua:2: scale must be a positive number (got -1)");
  FAILS(A "return a.pattern { dtypes = { 'i32' } }", "t.lua:2: dtypes: entry 1 must be");
  FAILS(A "return a.pattern { head_dims = { 0 } }", "t.lua:2: head_dims: entry 1 must be an integer from 1 to 1024");
  FAILS(A "return a.pattern { name = 'a b' }", "t.lua:2: name must be an identifier of up to 64 characters");
  FAILS(A "return a.pattern 'x'", "t.lua:2: attnc.pattern takes a table");
  FAILS(A "return a.pattern { mask = 3 }", "t.lua:2: mask: expected a mask");
  FAILS(A "return a.pattern { score = a.causal() }", "(a mask belongs in mask = ...)");
  FAILS(A "return a.pattern { score = { a.softcap(3), 7 } }", "t.lua:2: score[2]: expected a score mod");
  FAILS(A "return a.pattern {\n  score = function(s) return s:gt(0) end }",
        "t.lua:3: score must return a number, got a symbolic bool");
}
END_TEST

/* ------------------------------------------------------------ locations */

START_TEST(lines) {
  Arena a;
  arena_init(&a);
  IrPattern *p = trace_ok(&a, A
    "local m = a.sliding_window(8)\n"          /* 2 */
    "return a.pattern {\n"                      /* 3 */
    "  mask = m | a.mask(function(b, h, q, k)\n"
    "    local d = q + k\n"                     /* 5 */
    "    return d:eq(100)\n"                    /* 6 */
    "  end),\n"
    "}\n");
  const char *t = body(&a, p);
  ck_assert_msg(strstr(t, "%0 = q : int @3\n"), "%s", t);               /* the pattern's line */
  ck_assert_msg(strstr(t, "%2 = sub %0 %1 : int @2\n"), "%s", t);       /* the block's line */
  ck_assert_msg(strstr(t, "%6 = lt %2 %5 : bool @2\n"), "%s", t);
  ck_assert_msg(strstr(t, "%8 = add %0 %1 : int @5\n"), "%s", t);       /* the function's lines */
  ck_assert_msg(strstr(t, "%10 = eq %8 %9 : bool @6\n"), "%s", t);
  ck_assert_msg(strstr(t, "%11 = or %7 %10 : bool @4\n"), "%s", t);     /* where | was applied */
  arena_free(&a);

  /* errors inside a building block name the line that made it */
  FAILS(A "local m = a.neighborhood { kernel = 5 }\n\nreturn a.pattern { grid = { 4, 8 }, mask = m }",
        "t.lua:2: neighborhood: axis 0 has 4 tokens, fewer than kernel * dilation = 5");
  /* ... unless the spec's own function, called from it, is at fault */
  FAILS(A "local m = a.per_head(function(h)\n  return h + 1\nend, true, false)\n"
          "return a.pattern { mask = m }",
        "t.lua:2: per_head split(h): expected a boolean");
  FAILS(A "local m = a.per_head(function(h)\n  return h < 1\nend, true, false)\n"
          "return a.pattern { mask = m }",
        "t.lua:3: cannot use '<' or '>' on symbolic values");
  /* a chunk name longer than Lua's abbreviation stays whole */
  const char *longname = "a/very/long/path/to/a/directory/of/specs/that/goes/on/and/on/spec.lua";
  Diag d = { 0 };
  IrPattern *q = NULL;
  const char *src = "local x = 1\nlocal y = x.field\n";
  fe_trace(&a, longname, src, strlen(src), NULL, 0, NULL, &q, &d);
  char want[256];
  snprintf(want, sizeof want, "%s:2: attempt to index a number value", longname);
  ck_assert_msg(strncmp(d.msg, want, strlen(want)) == 0, "got: %s", d.msg);
  d = (Diag){ 0 };
  fe_trace(&a, longname, "x = = 1", 7, NULL, 0, NULL, &q, &d);
  snprintf(want, sizeof want, "%s:1: unexpected symbol near '='", longname);
  ck_assert_msg(strncmp(d.msg, want, strlen(want)) == 0, "got: %s", d.msg);
  arena_free(&a);
}
END_TEST

/* -------------------------------------------------------------- sandbox */

START_TEST(sandbox_names) {
  static const char *const absent[] = { "io", "os", "debug", "package", "dofile", "loadfile",
                                        "load", "loadstring", "coroutine", "module" };
  for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++) {
    char src[128], want[128];
    snprintf(src, sizeof src, "local x = %s\n", absent[i]);
    snprintf(want, sizeof want, "t.lua:1: unknown name '%s'", absent[i]);
    FAILS(src, want);
  }
  FAILS("local os = require 'os'", "t.lua:1: require: only \"attnc\" is available in specs");
  FAILS("local x = string.dump(print)", "t.lua:1: string.dump is not available in specs");
  FAILS("local x = ('abc'):gsub('a', 'b')", "t.lua:1: string.gsub is not available in specs");
  FAILS("x = 1", "t.lua:1: cannot set global 'x'");
  FAILS("setmetatable(_G, nil)", "cannot change a protected metatable");
  FAILS(A "a.causal = 1", "t.lua:2: the attnc library is read-only (cannot set 'causal')");
  FAILS("local t = setmetatable({}, { __gc = print })", "t.lua:1: __gc metamethods are not allowed in specs");
  /* what stays: base, string, table, math, utf8, a deterministic random */
  Arena a;
  arena_init(&a);
  trace_ok(&a, A "assert(require('attnc') == a and collectgarbage('count') > 0)\n"
                 "assert(('x'):rep(3, ',') == 'x,x,x' and ('').rep('', 1 << 60) == '')\n"
                 "local t = { 3, 1, 2 }; table.sort(t); table.insert(t, 1, 0); table.remove(t)\n"
                 "assert(table.concat(table.move(t, 1, 3, 2, {}), ' ', 2, 4) == '0 1 2')\n"
                 "assert(utf8.char(72) == 'H' and math.floor(2.5) == 2 and select('#', 1, 2) == 2)\n"
                 "math.randomseed(7); local r = math.random(1000); math.randomseed(7)\n"
                 "assert(r == math.random(1000) and pcall(error, 'x') == false)\n"
                 "return a.pattern { mask = a.causal() }\n");
  arena_free(&a);
}
END_TEST

START_TEST(sandbox_bytecode) {
  static const char bc[] = "\x1bLua\x54\x00\x19\x93\r\n\x1a\n\x04\x08\x08";
  Arena a;
  arena_init(&a);
  Diag d = { 0 };
  IrPattern *p = NULL;
  ck_assert_int_eq(fe_trace(&a, "t.luac", bc, sizeof bc - 1, NULL, 0, NULL, &p, &d), ATTNC_ERR_SPEC);
  ck_assert_str_eq(d.msg, "t.luac: the spec is precompiled Lua bytecode; attnc loads only source text");
  arena_free(&a);
}
END_TEST

START_TEST(sandbox_memory) {
  FeLimits lim = { .mem_bytes = 4 << 20 };
  /* a growing table: the soft cap stops it at its line */
  fails_with("local t = {}\nfor i = 1, 1e8 do t[i] = 'x' .. i end\n", NULL, 0, &lim, ATTNC_ERR_SPEC,
             "t.lua:2: spec uses more than 4 MiB of memory");
  /* one huge allocation: the hard cap refuses it */
  fails_with("local s = ('x'):rep(1 << 30)\n", NULL, 0, &lim, ATTNC_ERR_SPEC,
             "spec uses more than 4 MiB of memory");
  /* nodes count too */
  fails_with(A "return a.pattern { mask = function(b, h, q, k)\n"
               "  local x = q\n  for i = 1, 1e7 do x = x + 1 end\n  return x:ge(k)\nend }\n",
             NULL, 0, &lim, ATTNC_ERR_SPEC, "t.lua:4: spec uses more than 4 MiB of memory");
  /* a cap too small for the library itself is reported, not a crash */
  FeLimits tiny = { .mem_bytes = 4096 };
  Arena a;
  arena_init(&a);
  Diag d = { 0 };
  ck_assert(trace(&a, "return 1", NULL, 0, &tiny, &d) == NULL);
  ck_assert_int_eq(d.status, ATTNC_ERR_NOMEM);
  arena_free(&a);
}
END_TEST

static double seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

START_TEST(sandbox_budget) {
  FeLimits lim = { .instructions = 1000000 };
  fails_with("local a = 1\nwhile true do end\n", NULL, 0, &lim, ATTNC_ERR_SPEC,
             "t.lua:2: spec ran past its instruction budget (1000000 instructions): an endless loop?");
  /* pcall cannot catch its way out */
  fails_with("while true do pcall(function() while true do end end) end", NULL, 0, &lim,
             ATTNC_ERR_SPEC, "spec ran past its instruction budget");
  /* the C loops a hook cannot see are gone or bounded */
  fails_with("table.move({}, 1, math.maxinteger - 2, 2)", NULL, 0, &lim, ATTNC_ERR_SPEC,
             "spec ran past its instruction budget");
  fails_with("local t = setmetatable({}, { __len = function() return 1 << 60 end })\n"
             "table.insert(t, 1, 0)", NULL, 0, &lim, ATTNC_ERR_SPEC,
             "spec ran past its instruction budget");
  /* with the default budget, an endless loop stops within seconds */
  double t0 = seconds();
  fails_with("while true do end", NULL, 0, NULL, ATTNC_ERR_SPEC, "an endless loop?");
  double dt = seconds() - t0;
  fprintf(stderr, "default budget: an endless loop stopped after %.2f s\n", dt);
  ck_assert_msg(dt < 30, "took %.1f s", dt);
}
END_TEST

/* ---------------------------------------------------------- specs/ */

static const char *const spec_names[] = {
  "causal", "sliding_window", "sinks", "dilated", "global_tokens", "prefix_lm",
  "fixed_sparse", "neighborhood1d", "neighborhood2d", "neighborhood3d", "swin2d", "swin3d", "axial2d",
  "overlapping_windows", "temporal_window", "per_head", "document", "clustered", "routed",
  "block_sparse", "alibi", "softcap", "relative_bias", "logit_scaling", "sink_calibration",
};
enum { NSPECS = sizeof spec_names / sizeof spec_names[0] };

/* trace specs/NAME.lua; the printed text in the arena */
static const char *spec_text(Arena *a, const char *name, const attnc_define *defs, int ndefs) {
  char rel[128];
  snprintf(rel, sizeof rel, "specs/%s.lua", name);
  Diag d = { 0 };
  size_t len;
  const char *src = fe_read_file(a, tu_path(rel), &len, &d);
  ck_assert_msg(src != NULL, "%s", d.msg);
  IrPattern *p = NULL;
  ck_assert_msg(fe_trace(a, rel, src, len, defs, ndefs, NULL, &p, &d) == ATTNC_OK, "%s", d.msg);
  ck_assert_msg(ir_verify(p, &d) == ATTNC_OK, "%s: verify: %s", rel, d.msg);
  ck_assert_str_eq(p->name, name);
  return ir_print(p, a);
}

START_TEST(spec_files) {
  const char *name = spec_names[_i];
  Arena a;
  arena_init(&a);
  char rel[128], head[64];
  snprintf(rel, sizeof rel, "specs/%s.lua", name);
  Diag d = { 0 };
  size_t len;
  const char *src = fe_read_file(&a, tu_path(rel), &len, &d);
  ck_assert_msg(src != NULL, "%s", d.msg);
  snprintf(head, sizeof head, "-- %s.lua: ", name);
  ck_assert_msg(strncmp(src, head, strlen(head)) == 0, "%s must open with '%s'", rel, head);
  ck_assert_msg(strstr(src, "Used by") && strstr(src, "Params:"), "%s: say where it is used and its params", rel);

  const char *t1 = spec_text(&a, name, NULL, 0);
  ck_assert_str_eq(t1, spec_text(&a, name, NULL, 0));          /* deterministic */
  IrPattern *q = ir_parse(&a, t1, rel, &d);                    /* round trip */
  ck_assert_msg(q != NULL, "%s: parse: %s", rel, d.msg);
  ck_assert_str_eq(t1, ir_print(q, &a));
  arena_free(&a);
}
END_TEST

START_TEST(spec_library_complete) {
  DIR *dir = opendir(tu_path("specs"));
  ck_assert_ptr_nonnull(dir);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(dir))) {
    size_t len = strlen(e->d_name);
    if (len < 5 || strcmp(e->d_name + len - 4, ".lua") != 0) continue;
    bool known = false;
    for (int i = 0; i < NSPECS; i++)
      known |= strlen(spec_names[i]) == len - 4 && strncmp(spec_names[i], e->d_name, len - 4) == 0;
    ck_assert_msg(known, "specs/%s is not in the list of specs", e->d_name);
    n++;
  }
  closedir(dir);
  ck_assert_int_eq(n, NSPECS);
}
END_TEST

/* the names the issue fixes, so scripts can drive the specs alike */
START_TEST(spec_param_names) {
  static const struct { const char *spec; attnc_define defs[4]; const char *want; } cases[] = {
    { "sliding_window", { { "window", "8" } }, "param window int 8 default 16 overridden" },
    { "sinks", { { "window", "8" }, { "sinks", "2" } }, "param sinks int 2 default 4 overridden" },
    { "dilated", { { "window", "3" }, { "dilation", "3" } }, "param dilation int 3 default 2" },
    { "neighborhood2d",
      { { "height", "6" }, { "width", "9" }, { "kernel", "5" }, { "dilation", "1" } }, "grid 6 9\n" },
    { "swin2d", { { "height", "8" }, { "width", "12" }, { "window", "4" }, { "shift", "1" } },
      "grid 8 12\n" },
    { "document", { { NULL, NULL } }, "input doc i32 [Sq] line" },
    { "routed", { { "region", "4" }, { "topk", "3" } }, "input route i32 [B, H, Sq/4, 3] line" },
    { "block_sparse", { { "block", "8" } }, "input blocks i32 [B, H, Sq/8, Sq/8] line" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    Arena a;
    arena_init(&a);
    int n = 0;
    while (n < 4 && cases[i].defs[n].name) n++;
    const char *t = spec_text(&a, cases[i].spec, cases[i].defs, n);
    ck_assert_msg(strstr(t, cases[i].want) != NULL, "%s: want '%s' in\n%s", cases[i].spec,
                  cases[i].want, t);
    arena_free(&a);
  }
}
END_TEST

/* ------------------------------------------------ threads and failures */

static void *trace_all(void *arg) {
  char **out = arg;
  for (int i = 0; i < NSPECS; i++) {
    Arena a;
    arena_init(&a);
    char rel[128];
    snprintf(rel, sizeof rel, "specs/%s.lua", spec_names[i]);
    Diag d = { 0 };
    size_t len;
    const char *src = fe_read_file(&a, tu_path(rel), &len, &d);
    IrPattern *p = NULL;
    if (src) fe_trace(&a, rel, src, len, NULL, 0, NULL, &p, &d);
    const char *t = p ? ir_print(p, &a) : d.msg;
    out[i] = strdup(t ? t : "?");
    arena_free(&a);
  }
  return NULL;
}

START_TEST(threads) {
  enum { NT = 4 };
  static char *texts[NT + 1][NSPECS];
  trace_all(texts[NT]);
  pthread_t th[NT];
  for (int t = 0; t < NT; t++) ck_assert_int_eq(pthread_create(&th[t], NULL, trace_all, texts[t]), 0);
  for (int t = 0; t < NT; t++) pthread_join(th[t], NULL);
  for (int t = 0; t < NT; t++)
    for (int i = 0; i < NSPECS; i++) {
      ck_assert_str_eq(texts[t][i], texts[NT][i]);
      free(texts[t][i]);
    }
  for (int i = 0; i < NSPECS; i++) free(texts[NT][i]);
}
END_TEST

/* every arena allocation of a trace, failed in turn: an error, never a crash */
START_TEST(alloc_failures) {
  const char *src = A "local W = a.param('window', 8)\nlocal d = a.input('doc', 'i32', { 'S' })\n"
                      "return a.pattern { mask = a.documents(d) & a.sliding_window(W), "
                      "score = a.softcap(5) }\n";
  int ok_at = -1;
  for (long n = 0; n < 10000 && ok_at < 0; n++) {
    Arena a;
    arena_init(&a);
    Diag d = { 0 };
    IrPattern *p = NULL;
    arena_fail_after(n);
    attnc_status st = fe_trace(&a, "t.lua", src, strlen(src), NULL, 0, NULL, &p, &d);
    arena_fail_after(-1);
    if (st == ATTNC_OK) ok_at = (int)n;
    else ck_assert_msg(d.status == ATTNC_ERR_NOMEM && p == NULL, "n=%ld: %d %s", n, d.status, d.msg);
    arena_free(&a);
  }
  ck_assert_int_gt(ok_at, 0);
}
END_TEST

START_TEST(read_file) {
  Arena a;
  arena_init(&a);
  Diag d = { 0 };
  size_t len = 99;
  ck_assert_ptr_null(fe_read_file(&a, "no/such/spec.lua", &len, &d));
  ck_assert_int_eq(d.status, ATTNC_ERR_IO);
  ck_assert_str_eq(d.msg, "no/such/spec.lua: cannot open the spec: No such file or directory");
  ck_assert_uint_eq(len, 0);
  d = (Diag){ 0 };
  const char *s = fe_read_file(&a, tu_path("specs/causal.lua"), &len, &d);
  ck_assert_ptr_nonnull(s);
  ck_assert_uint_eq(strlen(s), len);
  arena_free(&a);
}
END_TEST

int main(void) {
  Suite *s = suite_create("frontend");
  TCase *tc = tcase_create("frontend");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, block_ir, 0, sizeof blocks / sizeof blocks[0]);
  tcase_add_test(tc, neighborhood_semantics);
  tcase_add_test(tc, grid_semantics);
  tcase_add_test(tc, sequence_semantics);
  tcase_add_test(tc, score_semantics);
  tcase_add_test(tc, params_and_defines);
  tcase_add_test(tc, inputs);
  tcase_add_test(tc, symbolic_misuse);
  tcase_add_test(tc, pattern_fields);
  tcase_add_test(tc, lines);
  tcase_add_test(tc, sandbox_names);
  tcase_add_test(tc, sandbox_bytecode);
  tcase_add_test(tc, sandbox_memory);
  tcase_add_test(tc, sandbox_budget);
  tcase_add_loop_test(tc, spec_files, 0, NSPECS);
  tcase_add_test(tc, spec_library_complete);
  tcase_add_test(tc, spec_param_names);
  tcase_add_test(tc, threads);
  tcase_add_test(tc, alloc_failures);
  tcase_add_test(tc, read_file);
  suite_add_tcase(s, tc);
  return tu_run(s);
}
