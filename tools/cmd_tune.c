/*
** cmd_tune.c -- `attnc tune SPEC [-D NAME=v1,v2,...]... --target T
** [--shape B,H,S,D] [--hkv N] [--dtype D] [--seed N] [--iters N]
** [--warmup N] [--block-m LIST] [--block-n LIST] [--warps LIST]
** [--stages LIST] [--order LIST] [--input NAME=FILE.npy]... [--tol X] [--csv]
** [--db FILE] [--dry-run]`: sweep pattern params (the cartesian product of
** the -D lists) x schedules, check every candidate against the reference
** once on a small random call, time the ones that pass on the --shape call
** (median of --iters; its runtime inputs from --input where given, so a
** data-dependent pattern is tuned on the user's data), print a table, and
** store the fastest schedule of each param
** combination in the tuning database (runtime/tunedb.h, docs/tuning.md),
** which attnc_kernel_compile consults when no schedule is given.
**
** The heuristics' default (every schedule field 0) is always a candidate,
** so what is stored is at least as fast as the default on this machine.
** The database is not consulted while tuning (the default stays the
** heuristics'). Progress goes to stderr: a bar on a terminal, else lines.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tools/cli.h"
#include "tools/gen.h"
#include "runtime/runtime.h"
#include "runtime/tunedb.h"
#include "tools/timing.h"

enum {
  OPT_CSV = OPT_VERB, OPT_DB, OPT_ITERS, OPT_WARMUP, OPT_BM, OPT_BN, OPT_WARPS, OPT_STAGES,
  OPT_ORDER, OPT_TOL, OPT_DRY
};

static const CliOpt opts[] = {
  { "define", 'D', "NAME=V1,V2,...", "a spec param, or a list of values to sweep (repeatable)", OPT_DEFINE },
  CLI_OPT_TARGET,
  CLI_OPT_SHAPE,
  CLI_OPT_HKV,
  CLI_OPT_DTYPE,
  CLI_OPT_SEED,
  CLI_OPT_INPUT,
  { "iters", 0, "N", "timed calls per candidate; the median counts (default 7)", OPT_ITERS },
  { "warmup", 0, "N", "untimed calls first (default 1)", OPT_WARMUP },
  { "block-m", 0, "LIST", "q tiles to try, e.g. 32,64 (default: per target)", OPT_BM },
  { "block-n", 0, "LIST", "kv tiles to try (default: per target)", OPT_BN },
  { "warps", 0, "LIST", "warps to try (cuda; default: the target's)", OPT_WARPS },
  { "stages", 0, "LIST", "pipeline stages to try (cuda; default: the target's)", OPT_STAGES },
  { "order", 0, "LIST", "token orders to try: auto, raster, grid (default auto, and raster for grids)", OPT_ORDER },
  { "tol", 0, "X", "max abs error vs the reference (default 1e-4 for f32, 2e-2 for bf16, f16)", OPT_TOL },
  { "csv", 0, NULL, "print the table as CSV", OPT_CSV },
  { "db", 0, "FILE", "the tuning database (default $ATTNC_TUNE_DB, else ~/.config/attnc/tune.json)", OPT_DB },
  { "dry-run", 0, NULL, "do not write the database", OPT_DRY },
  CLI_OPT_END
};

#define MAX_SWEEP 32
#define MAX_VALS 64
#define MAX_COMBOS 1024
#define MAX_LIST 16
#define MAX_CANDS 512

static double abs_err(double x, double y) {
  if (isnan(x) || isnan(y)) return INFINITY;
  if (isinf(x) || isinf(y)) return x == y ? 0 : INFINITY;
  return fabs(x - y);
}

/* ------------------------------------------------------------- params */

typedef struct Sweep {
  char *name;              /* malloc'd "NAME=v1,v2" with '=' and ',' cut */
  const char *vals[MAX_VALS];
  int nvals;
} Sweep;

static bool add_sweep(Sweep *sw, int *n, const char *arg) {
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg) { cli_error("-D expects NAME=VALUE or NAME=V1,V2,... (got '%s')", arg); return false; }
  size_t nl = (size_t)(eq - arg);
  int i = 0;
  while (i < *n && !(strlen(sw[i].name) == nl && strncmp(sw[i].name, arg, nl) == 0)) i++;
  if (i == MAX_SWEEP) { cli_error("too many -D (at most %d)", MAX_SWEEP); return false; }
  char *s = strdup(arg);
  if (!s) { cli_error("out of memory"); return false; }
  if (i < *n) free(sw[i].name);     /* a later -D of a name wins */
  else (*n)++;
  sw[i].name = s;
  sw[i].nvals = 0;
  s[nl] = 0;
  for (char *v = s + nl + 1;;) {
    char *c = strchr(v, ',');
    if (c) *c = 0;
    if (!*v) { cli_error("-D %s: empty value in '%s'", s, arg); return false; }
    if (sw[i].nvals == MAX_VALS) { cli_error("-D %s: at most %d values", s, MAX_VALS); return false; }
    sw[i].vals[sw[i].nvals++] = v;
    if (!c) break;
    v = c + 1;
  }
  return true;
}

/* a list of small ints ("16,32,64"); order also takes auto/raster/grid */
static bool parse_list(const char *opt, const char *text, bool order, int *out, int *n) {
  *n = 0;
  char buf[256];
  if (snprintf(buf, sizeof buf, "%s", text) >= (int)sizeof buf) return cli_error("%s: list too long", opt), false;
  for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    if (*n == MAX_LIST) return cli_error("%s: at most %d values", opt, MAX_LIST), false;
    long long v;
    if (order && strcmp(t, "auto") == 0) v = 0;
    else if (order && strcmp(t, "raster") == 0) v = 1;
    else if (order && strcmp(t, "grid") == 0) v = 2;
    else if (!cli_parse_int(opt, t, 0, order ? 2 : 4096, &v)) return false;
    out[(*n)++] = (int)v;
  }
  if (!*n) return cli_error("%s: empty list", opt), false;
  return true;
}

static const char *order_name(int o) { return o == 1 ? "raster" : o == 2 ? "grid" : "auto"; }

/* ------------------------------------------------------------- timing */


/* median ms of iters calls after warmup; false with msg on failure */
static bool time_kernel(attnc_kernel *k, attnc_target t, const attnc_args *host, void *dev,
                        long long warmup, long long iters, double *ms_out, char *msg, size_t mlen) {
  attnc_error err;
#ifdef ATTNC_HAVE_CUDA
  if (t == ATTNC_TARGET_CUDA) {
    DevCall *dc = dev;
    Diag d = { 0 };
    attnc_status st = devcall_time(dc, k, warmup, iters, ms_out, &d);
    if (st) snprintf(msg, mlen, "%.199s", d.msg);
    return !st;
  }
#endif
  (void)dev;
  if (timing_host(k, host, warmup, iters, ms_out, NULL, &err)) {
    snprintf(msg, mlen, "%.199s", err.message);
    return false;
  }
  return true;
}

/* ----------------------------------------------------------- progress */

typedef struct Progress { bool tty; int done, total; double t0; } Progress;

static void progress(Progress *pg, const char *params, const attnc_schedule *s, const char *result) {
  char what[160];
  if (!s->block_m && !s->block_n && !s->warps && !s->stages && !s->order)
    snprintf(what, sizeof what, "%s default", params);
  else
    snprintf(what, sizeof what, "%s %dx%d%s%s", params, s->block_m, s->block_n,
             s->order ? " " : "", s->order ? order_name(s->order) : "");
  if (pg->tty) {
    int w = 30, fill = pg->total ? pg->done * w / pg->total : w;
    char bar[64];
    for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
    bar[w] = 0;
    fprintf(stderr, "\r\033[K[%s] %d/%d %.60s %s", bar, pg->done, pg->total, what, result ? result : "");
    if (pg->done == pg->total && result) fprintf(stderr, "\r\033[K");
  } else if (result) {
    fprintf(stderr, "tune: [%d/%d] %s: %s\n", pg->done, pg->total, what, result);
  }
  fflush(stderr);
}

/* --------------------------------------------------------------- rows */

enum { ROW_OK, ROW_WRONG, ROW_ERROR };

typedef struct Row {
  int combo;
  attnc_schedule s;
  int status;
  double ms, err;
  char msg[200];
} Row;

static bool is_default(const attnc_schedule *s) {
  return !s->block_m && !s->block_n && !s->warps && !s->stages && !s->order;
}

static void sched_cells(const attnc_schedule *s, char cell[5][16]) {
  if (is_default(s)) {
    snprintf(cell[0], 16, "default");
    for (int i = 1; i < 5; i++) snprintf(cell[i], 16, "-");
    return;
  }
  snprintf(cell[0], 16, "%d", s->block_m);
  snprintf(cell[1], 16, "%d", s->block_n);
  if (s->warps) snprintf(cell[2], 16, "%d", s->warps); else snprintf(cell[2], 16, "-");
  if (s->stages) snprintf(cell[3], 16, "%d", s->stages); else snprintf(cell[3], 16, "-");
  snprintf(cell[4], 16, "%s", order_name(s->order));
}

static void csv_field(const char *s) {
  bool q = strpbrk(s, ",\"\n") != NULL;
  if (!q) { fputs(s, stdout); return; }
  putchar('"');
  for (; *s; s++) { if (*s == '"') putchar('"'); putchar(*s); }
  putchar('"');
}

/* ------------------------------------------------------------- main */

static int tune_main(const CliVerb *verb, int argc, char **argv) {
  CliParser ps;
  CliCall cc = { .seed = 1 };
  CliInputs in = { 0 };
  Sweep sw[MAX_SWEEP];
  int nsw = 0;
  memset(sw, 0, sizeof sw);
  const char *path = NULL, *db_opt = NULL, *val;
  attnc_target target = ATTNC_TARGET_REF;
  bool target_given = false, csv = false, dry = false;
  long long iters = 7, warmup = 1;
  double tol = -1;
  int lbm[MAX_LIST], lbn[MAX_LIST], lw[MAX_LIST], lst[MAX_LIST], lord[MAX_LIST];
  int nbm = 0, nbn = 0, nw = 0, nst = 0, nord = 0;
  attnc_ctx *ctx = NULL;
  Row *rows = NULL;
  char **combo_params = NULL;
  uint64_t *combo_hash = NULL;
  int ncombos = 1, nrows = 0;
  int rc = CLI_EXIT_OK, id;
  cli_init(&ps, verb, argc, argv);
  const CliCommon common_opts = { .inputs = &in, .target = &target, .target_given = &target_given, .call = &cc };
  while ((id = cli_next_own(&ps, verb, &common_opts, &val, &rc)) != CLI_DONE) {
    switch (id) {
    case CLI_HELP: goto done;
    case CLI_POSITIONAL:
      if (path) rc = cli_error("unexpected argument '%s' (one SPEC only; see 'attnc tune --help')", val);
      path = val;
      break;
    case OPT_DEFINE: if (!add_sweep(sw, &nsw, val)) rc = CLI_EXIT_USAGE; break;
    case OPT_ITERS: if (!cli_parse_int("--iters", val, 1, 100000, &iters)) rc = CLI_EXIT_USAGE; break;
    case OPT_WARMUP: if (!cli_parse_int("--warmup", val, 0, 100000, &warmup)) rc = CLI_EXIT_USAGE; break;
    case OPT_BM: if (!parse_list("--block-m", val, false, lbm, &nbm)) rc = CLI_EXIT_USAGE; break;
    case OPT_BN: if (!parse_list("--block-n", val, false, lbn, &nbn)) rc = CLI_EXIT_USAGE; break;
    case OPT_WARPS: if (!parse_list("--warps", val, false, lw, &nw)) rc = CLI_EXIT_USAGE; break;
    case OPT_STAGES: if (!parse_list("--stages", val, false, lst, &nst)) rc = CLI_EXIT_USAGE; break;
    case OPT_ORDER: if (!parse_list("--order", val, true, lord, &nord)) rc = CLI_EXIT_USAGE; break;
    case OPT_TOL:
      if (!cli_parse_double("--tol", val, &tol)) rc = CLI_EXIT_USAGE;
      else if (tol < 0) rc = cli_error("--tol must not be negative (got %s)", val);
      break;
    case OPT_CSV: csv = true; break;
    case OPT_DB: db_opt = val; break;
    case OPT_DRY: dry = true; break;
    }
  }
  if (rc) goto done;
  if (!path) { rc = cli_error("missing SPEC (see 'attnc tune --help')"); goto done; }
  if (!target_given) { rc = cli_error("missing --target (ref, cpu or cuda)"); goto done; }
  if ((rc = cli_load_inputs(&in))) goto done;
  for (int i = 0; i < nsw; i++) {
    if (ncombos * sw[i].nvals > MAX_COMBOS) {
      rc = cli_error("too many param combinations (more than %d)", MAX_COMBOS);
      goto done;
    }
    ncombos *= sw[i].nvals;
  }
  char dbpath[4096];
  if (db_opt) snprintf(dbpath, sizeof dbpath, "%s", db_opt);
  else if (!tunedb_path(dbpath, sizeof dbpath) && !dry) {
    rc = cli_error("no tuning database: ATTNC_TUNE_DB is off (or no HOME); give --db FILE or --dry-run");
    goto done;
  }
  tunedb_enable(false);      /* the default candidate is the heuristics', not the database's */

  /* the schedule lists: the user's, else the target's */
  if (!nw) lw[nw++] = 0;
  if (!nst) lst[nst++] = 0;
  bool order_given = nord > 0;
  if (!nbm && target == ATTNC_TARGET_CPU) { int v[] = { 16, 32, 64, 128 }; for (int i = 0; i < 4; i++) lbm[nbm++] = v[i]; }
  if (!nbn && target == ATTNC_TARGET_CPU) { int v[] = { 16, 32, 64, 128 }; for (int i = 0; i < 4; i++) lbn[nbn++] = v[i]; }
  if (!nbm && target == ATTNC_TARGET_CUDA) { int v[] = { 64, 128 }; for (int i = 0; i < 2; i++) lbm[nbm++] = v[i]; }
  if (!nbn && target == ATTNC_TARGET_CUDA) { int v[] = { 32, 64, 128 }; for (int i = 0; i < 3; i++) lbn[nbn++] = v[i]; }

  rows = calloc((size_t)ncombos * MAX_CANDS, sizeof *rows);
  combo_params = calloc((size_t)ncombos, sizeof *combo_params);
  combo_hash = calloc((size_t)ncombos, sizeof *combo_hash);
  if (!rows || !combo_params || !combo_hash || !(ctx = attnc_ctx_new())) { rc = cli_error("out of memory"); goto done; }

  char arch[64];
  tunedb_arch(target, NULL, arch, sizeof arch);
  Progress pg = { .tty = isatty(2) == 1, .t0 = timing_now_ms() };
  GenShape tshape = { 0 };
  const char *dtname = "f32";
  TuneDb db = { 0 };
  int stored = 0;
  if (!dry) {
    char warn[4300];
    if (!tunedb_load(dbpath, &db, warn, sizeof warn)) fprintf(stderr, "attnc: warning: %s\n", warn);
  }

  for (int ci = 0; ci < ncombos && !rc; ci++) {
    /* this combination's -D values */
    attnc_define defs[MAX_SWEEP];
    char params[256] = "";
    size_t pl = 0;
    for (int i = 0, r = ci; i < nsw; i++) {
      defs[i].name = sw[i].name;
      defs[i].value = sw[i].vals[r % sw[i].nvals];
      r /= sw[i].nvals;
      pl += (size_t)snprintf(params + pl, pl < sizeof params ? sizeof params - pl : 0, "%s%s=%s",
                             i ? " " : "", defs[i].name, defs[i].value);
      if (pl >= sizeof params) pl = sizeof params - 1;
    }
    combo_params[ci] = strdup(nsw ? params : "-");
    if (!combo_params[ci]) { rc = cli_error("out of memory"); break; }
    attnc_spec *spec = NULL;
    attnc_error err;
    if (attnc_spec_load_file(ctx, path, defs, nsw, &spec, &err)) { rc = cli_fail(&err); break; }
    const IrPattern *p = spec->pat;
    combo_hash[ci] = ir_hash(p);

    /* the candidates: the default first, then the lists' product */
    attnc_schedule cand[MAX_CANDS];
    int ncand = 0;
    cand[ncand++] = (attnc_schedule){ 0 };
    int ords[MAX_LIST], nords = 0;
    if (order_given) memcpy(ords, lord, sizeof ords), nords = nord;
    else if (target != ATTNC_TARGET_REF) {
      ords[nords++] = 0;
      if (p->grid_rank > 0) ords[nords++] = 1;
    }
    for (int a = 0; a < nbm; a++)
      for (int b = 0; b < nbn; b++)
        for (int w = 0; w < nw; w++)
          for (int s = 0; s < nst; s++)
            for (int o = 0; o < nords && ncand < MAX_CANDS; o++) {
              attnc_schedule c = { lbm[a], lbn[b], lw[w], lst[s], ords[o] };
              if (!is_default(&c)) cand[ncand++] = c;
            }
    if (ci == 0) pg.total = ncand * ncombos;

    /* the timed call (the --input tensors, checked against the spec by
       gen_call_init, the rest made up) and the small checked call (all made
       up: the given inputs fit the timed shape) */
    GenShape gs, vs;
    if ((rc = cli_call_shape(&cc, p, target, &gs))) { attnc_spec_free(spec); break; }
    if (ci == 0) tshape = gs, dtname = gen_dtype_name(gs.dtype);
    /* the check needs few rows: one batch, one kv head with at most two
       query heads (GQA still checked), 256 tokens; a grid keeps its tokens,
       so it keeps one head (the reference visits every pair) */
    vs = gs;
    vs.B = 1;
    vs.Hq = gs.Hq / gs.Hkv > 1 && p->grid_rank == 0 ? 2 : 1;
    vs.Hkv = 1;
    if (p->grid_rank == 0 && vs.S > 256) vs.S = 256;
    double ctol = tol >= 0 ? tol : gs.dtype == DT_F32 ? 1e-4 : 2e-2;
    GenCall tc, vc;
    memset(&tc, 0, sizeof tc);
    memset(&vc, 0, sizeof vc);
    char msg[256];
    double *oref = NULL;
    float *lref = NULL;
    if (!gen_call_init(&tc, p, &gs, in.named, in.n, msg, sizeof msg) ||
        !gen_call_init(&vc, p, &vs, NULL, 0, msg, sizeof msg)) {
      rc = cli_error("%s", msg);
      goto combo_done;
    }
    size_t no = (size_t)(vs.B * vs.Hq * vs.S * vs.D), nl = (size_t)(vs.B * vs.Hq * vs.S);
    oref = calloc(no ? no : 1, sizeof *oref);
    lref = calloc(nl ? nl : 1, sizeof *lref);
    if (!oref || !lref) { rc = cli_error("out of memory for the reference output"); goto combo_done; }
    DLTensor to, tl;
    attnc_args ra = gen_ref_args(&vc, &to, oref, &tl, lref);
    if (attnc_run_reference(spec, &ra, &err)) { rc = cli_fail(&err); goto combo_done; }
    void *dev = NULL;
#ifdef ATTNC_HAVE_CUDA
    DevCall dc;
    memset(&dc, 0, sizeof dc);
    if (target == ATTNC_TARGET_CUDA) {
      Diag d = { 0 };
      if (devcall_setup(&dc, &tc, &d)) {
        attnc_error e = { .status = d.status };
        snprintf(e.message, sizeof e.message, "%s", d.msg);
        devcall_free(&dc);
        rc = cli_fail_target(&e, target);
        goto combo_done;
      }
      dev = &dc;
    }
#endif
    attnc_args targs = gen_args(&tc), vargs = gen_args(&vc);
    for (int k = 0; k < ncand; k++) {
      Row *r = &rows[nrows++];
      r->combo = ci;
      r->s = cand[k];
      r->ms = -1;
      pg.done++;
      progress(&pg, combo_params[ci], &r->s, NULL);
      attnc_compile_options co = {
        .target = target, .head_dim = (int)gs.D, .seq_hint = gs.S, .dtype = gen_api_dtype(&gs),
        .schedule = cand[k],
      };
      attnc_kernel *kern = NULL;
      if (attnc_kernel_compile(ctx, spec, &co, &kern, &err) || attnc_kernel_run(kern, &vargs, &err)) {
        if (err.status == ATTNC_ERR_NODEVICE) {
          attnc_kernel_free(kern);
          nrows--;
          rc = cli_fail_target(&err, target);
          break;
        }
        r->status = ROW_ERROR;
        snprintf(r->msg, sizeof r->msg, "%.199s", err.message);
        attnc_kernel_free(kern);
        progress(&pg, combo_params[ci], &r->s, "error");
        continue;
      }
      double e = 0;
      for (size_t i = 0; i < no; i++) { double x = abs_err(gen_out(&vc, i), oref[i]); if (x > e) e = x; }
      for (size_t i = 0; i < nl; i++) { double x = abs_err(vc.lse[i], lref[i]); if (x > e) e = x; }
      gen_poison(&vc);
      r->err = e;
      if (!(e <= ctol)) {
        r->status = ROW_WRONG;
        snprintf(r->msg, sizeof r->msg, "max error %.3g > %.3g", e, ctol);
      } else if (!time_kernel(kern, target, &targs, dev, warmup, iters, &r->ms, r->msg, sizeof r->msg)) {
        r->status = ROW_ERROR;
      }
      attnc_kernel_free(kern);
      char res[64];
      if (r->status == ROW_OK) snprintf(res, sizeof res, "%.4g ms", r->ms);
      else snprintf(res, sizeof res, "%s", r->status == ROW_WRONG ? "WRONG" : "error");
      progress(&pg, combo_params[ci], &r->s, res);
    }
#ifdef ATTNC_HAVE_CUDA
    if (dev) devcall_free(&dc);
#endif

    /* the best of this combination goes to the database */
    if (!rc) {
      const Row *best = NULL;
      double def_ms = -1;
      for (int i = 0; i < nrows; i++) {
        const Row *r = &rows[i];
        if (r->combo != ci || r->status != ROW_OK) continue;
        if (is_default(&r->s)) def_ms = r->ms;
        if (!best || r->ms < best->ms) best = r;
      }
      if (best && !dry) {
        TuneEntry te;
        memset(&te, 0, sizeof te);
        te.key.hash = combo_hash[ci];
        te.key.target = target;
        snprintf(te.key.arch, sizeof te.key.arch, "%s", arch);
        tunedb_bucket(&te.key, gs.B, gs.Hq, gs.S, gs.D);
        te.sched = best->s;
        te.ms = best->ms;
        te.default_ms = def_ms;
        snprintf(te.spec, sizeof te.spec, "%s", p->name);
        snprintf(te.params, sizeof te.params, "%s", nsw ? params : "");
        snprintf(te.dtype, sizeof te.dtype, "%s", gen_dtype_name(gs.dtype));
        time_t now = time(NULL);
        struct tm tmv;
        gmtime_r(&now, &tmv);
        strftime(te.time, sizeof te.time, "%Y-%m-%dT%H:%M:%SZ", &tmv);
        if (!tunedb_put(&db, &te)) { rc = cli_error("out of memory"); }
        else stored++;
      }
    }
  combo_done:
    free(oref);
    free(lref);
    gen_call_free(&tc);
    gen_call_free(&vc);
    attnc_spec_free(spec);
  }
  if (pg.tty) fprintf(stderr, "\r\033[K");
  if (rc) { tunedb_free(&db); goto done; }

  /* the table */
  const Row *overall = NULL;
  for (int i = 0; i < nrows; i++)
    if (rows[i].status == ROW_OK && (!overall || rows[i].ms < overall->ms)) overall = &rows[i];
  if (csv)
    printf("params,block_m,block_n,warps,stages,order,median_ms,speedup,max_err,status,best\n");
  else {
    printf("tune %s: target %s (%s), B=%lld H=%lld Hkv=%lld S=%lld D=%lld %s, median of %lld\n", path,
           attnc_target_name(target), arch[0] ? arch : "-", (long long)tshape.B, (long long)tshape.Hq,
           (long long)tshape.Hkv, (long long)tshape.S, (long long)tshape.D, dtname, iters);
    printf("%-24s %7s %7s %5s %6s %6s %10s %8s  %s\n", "params", "block_m", "block_n", "warps",
           "stages", "order", "median_ms", "speedup", "check");
  }
  for (int ci = 0; ci < ncombos; ci++) {
    double def_ms = -1;
    const Row *best = NULL;
    for (int i = 0; i < nrows; i++)
      if (rows[i].combo == ci && rows[i].status == ROW_OK) {
        if (is_default(&rows[i].s)) def_ms = rows[i].ms;
        if (!best || rows[i].ms < best->ms) best = &rows[i];
      }
    for (int i = 0; i < nrows; i++) {
      const Row *r = &rows[i];
      if (r->combo != ci) continue;
      char cell[5][16], ms[32] = "-", sp[32] = "-", chk[220];
      sched_cells(&r->s, cell);
      if (r->status == ROW_OK) {
        snprintf(ms, sizeof ms, "%.4f", r->ms);
        if (def_ms > 0) snprintf(sp, sizeof sp, "%.2fx", def_ms / r->ms);
      }
      if (r->status == ROW_OK) snprintf(chk, sizeof chk, "ok");
      else snprintf(chk, sizeof chk, "%s: %s", r->status == ROW_WRONG ? "WRONG" : "error", r->msg);
      if (csv) {
        csv_field(combo_params[ci]);
        printf(",%s,%s,%s,%s,%s,%s,%s,", is_default(&r->s) ? "" : cell[0], is_default(&r->s) ? "" : cell[1],
               r->s.warps ? cell[2] : "", r->s.stages ? cell[3] : "", is_default(&r->s) ? "default" : cell[4],
               r->status == ROW_OK ? ms : "", r->status == ROW_OK && def_ms > 0 ? sp : "");
        if (r->status != ROW_ERROR && isfinite(r->err)) printf("%.3g", r->err);
        printf(",");
        csv_field(chk);
        printf(",%d\n", r == best);
      } else {
        printf("%-24.24s %7s %7s %5s %6s %6s %10s %8s  %s%s\n", combo_params[ci], cell[0], cell[1], cell[2],
               cell[3], cell[4], ms, sp, r == best ? "ok  *best" : "", r == best ? "" : chk);
      }
    }
  }
  if (!csv) {
    if (overall) {
      double def_ms = -1;
      for (int i = 0; i < nrows; i++)
        if (rows[i].combo == overall->combo && rows[i].status == ROW_OK && is_default(&rows[i].s)) def_ms = rows[i].ms;
      char cell[5][16];
      sched_cells(&overall->s, cell);
      printf("best: %s, ", combo_params[overall->combo]);
      if (is_default(&overall->s)) printf("the default schedule");
      else printf("block_m %s block_n %s order %s", cell[0], cell[1], cell[4]);
      printf(": %.4f ms", overall->ms);
      if (def_ms > 0) printf(" (default %.4f ms, %.2fx)", def_ms, def_ms / overall->ms);
      printf("\n");
    } else {
      printf("best: none (no candidate passed the check)\n");
    }
  }
  if (!dry && stored) {
    char e[4400];
    if (!tunedb_save(dbpath, &db, e, sizeof e)) rc = cli_error("%s", e);
    else fprintf(csv ? stderr : stdout, "stored %d schedule%s in %s\n", stored, stored == 1 ? "" : "s", dbpath);
  }
  tunedb_free(&db);
  if (!rc && !overall) rc = CLI_EXIT_FAIL;
done:
  if (combo_params)
    for (int i = 0; i < ncombos; i++) free(combo_params[i]);
  free(combo_params);
  free(combo_hash);
  free(rows);
  attnc_ctx_free(ctx);
  for (int i = 0; i < nsw; i++) free(sw[i].name);
  cli_free_inputs(&in);
  return rc;
}

const CliVerb cli_verb_tune = {
  "tune", "find the fastest schedule (and params) and store it for later compiles",
  "SPEC [-D NAME=V1,V2,...]... --target T [--shape B,H,S,D] [--hkv N] [--dtype D]\n"
  "                  [--iters N] [--block-m LIST] [--block-n LIST] [--warps LIST] [--stages LIST]\n"
  "                  [--order LIST] [--input NAME=FILE.npy]... [--tol X] [--csv] [--db FILE] [--dry-run]",
  "Sweep the param values given as comma lists (every combination) and the\n"
  "schedules of target T: tile sizes, warps, stages, token order (the target's\n"
  "candidates unless given), always with the heuristics' default among them.\n"
  "Each candidate is checked once against the reference on a small random call\n"
  "and timed on the --shape call (median of --iters), whose runtime inputs\n"
  "(document ids, routes) are made up from their declarations unless given\n"
  "with --input: tune a data-dependent pattern on your data, as the best tiles\n"
  "follow it (short documents favour small ones). Prints a table (--csv for\n"
  "CSV) and stores the fastest schedule of each param combination in the\n"
  "tuning database, keyed by the pattern's hash, the shape bucket (S and B*H\n"
  "rounded up to a power of two, D), the target and the arch; a later compile\n"
  "without a schedule uses it (see 'attnc explain'). The database is --db,\n"
  "else $ATTNC_TUNE_DB, else $XDG_CONFIG_HOME/attnc/tune.json, else\n"
  "~/.config/attnc/tune.json (docs/tuning.md). Exit 1 when no candidate passed.",
  opts, tune_main
};
