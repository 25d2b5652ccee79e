/*
** cmd_explain.c -- `attnc explain SPEC [-D NAME=VALUE]... [--shape B,H,S,D]
** [--tile BMxBN] [--target T] [--json] [--png FILE] [--input NAME=FILE]...
** [--check] [--plan]`: what the passes make of a pattern.
**
** Prints the schedule, the iterator kind of each head variant (and why, if
** dense), the tiles total / visited / full / partial, the exact density of
** allowed pairs, the fraction of visited pairs that are allowed, the
** run-time metadata bytes and the most kv tiles a q tile visits. The
** numbers come from plan_stats (passes/); this file only prints them and
** draws the picture.
*/
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef ATTNC_HAVE_PNG
#include <png.h>
#endif

#include "tools/cli.h"
#include "passes/passes.h"
#include "runtime/runtime.h"
#include "runtime/tunedb.h"
#ifdef ATTNC_HAVE_CUDA
#include "backend/cuda/cuda.h"
#endif

enum { OPT_TILE = OPT_VERB, OPT_PNG, OPT_CHECK, OPT_PLAN };

static const CliOpt opts[] = {
  CLI_OPT_DEFINE,
  CLI_OPT_TARGET,
  { "shape", 0, "B,H,S,D", "the call's sizes (default 1,1,grid or 4096,64)", OPT_SHAPE },
  { "tile", 0, "BMxBN", "pin the q and kv tile sizes (e.g. 128x64)", OPT_TILE },
  { "arch", 0, "A", "cuda: the arch whose kernel to explain (default sm_90a)", OPT_ARCH },
  { "json", 0, NULL, "print one JSON object", OPT_JSON },
  { "png", 0, "FILE", "draw the mask and the visited tiles", OPT_PNG },
  CLI_OPT_INPUT,
  { "check", 0, NULL, "evaluate every pair: fail if a skipped tile holds an allowed pair", OPT_CHECK },
  { "plan", 0, NULL, "also print the plan (the scheduled kernel IR)", OPT_PLAN },
  CLI_OPT_END
};

/* ------------------------------------------------------------- inputs */

/* views of the --input files; those the mask and iterator read are required */
static bool views_from(const IrPattern *p, uint32_t needed, CliInputs *in, IrTensorView *views) {
  for (int i = 0; i < p->ninputs; i++) {
    int j = 0;
    while (j < in->n && strcmp(in->names[j], p->inputs[i].name) != 0) j++;
    if (j == in->n && !(i < 32 && (needed >> i & 1))) continue;
    if (j == in->n) {
      cli_error("'%s' reads the runtime input '%s': give it with --input %s=FILE.npy", p->name,
                p->inputs[i].name, p->inputs[i].name);
      return false;
    }
    NpyArray *a = &in->arrays[j];
    IrTensorView *v = &views[i];
    v->data = a->data;
    v->dtype = a->dtype == NPY_I32 ? DT_I32 : a->dtype == NPY_F32 ? DT_F32 : DT_F64;
    v->rank = a->ndim < IR_MAXDIMS ? a->ndim : IR_MAXDIMS;
    int64_t st = 1;
    for (int k = v->rank - 1; k >= 0; k--) {
      v->shape[k] = a->shape[k];
      v->strides[k] = st;
      st *= a->shape[k];
    }
  }
  return true;
}

/* ------------------------------------------------------------ picture */

enum { PNG_MAX = 1024 };

typedef struct Rgb { uint8_t r, g, b; } Rgb;
static const Rgb C_SKIP = { 255, 255, 255 };
static const Rgb C_PART = { 253, 236, 180 }, C_PART_ON = { 214, 120, 20 };
static const Rgb C_FULL = { 200, 0, 200 }, C_FULL_ON = { 20, 120, 70 };

#ifdef ATTNC_HAVE_PNG
static int write_png(const char *path, int w, int h, const uint8_t *rgb) {
  FILE *f = fopen(path, "wb");
  if (!f) return cli_error("cannot write %s", path);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!png || !info || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    fclose(f);
    return cli_error("cannot write %s (libpng failed)", path);
  }
  png_init_io(png, f);
  png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < h; y++) png_write_row(png, (png_const_bytep)(rgb + (size_t)y * w * 3));
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  if (fclose(f) != 0) return cli_error("cannot write %s", path);
  return CLI_EXIT_OK;
}
#endif

/*
** The mask of (b = 0, h = 0) in the kernel's token order: row y is q slot
** y (q tile y / bm, position y % bm), column x kv slot x, so the tiles are
** the blocks of the picture (for a 1-D raster order, slots are tokens).
** One pixel per pair up to PNG_MAX slots, else per block of slots, drawn
** allowed if any of its samples is. Colours: skipped tiles white; partial
** tiles light yellow with allowed pairs orange; full tiles green; padding
** grey. Skipped tiles are not evaluated (--check does that).
*/
static const Rgb C_PAD = { 190, 190, 190 };

static int draw(const Plan *pl, const PlanRun *r, const char *path) {
#ifndef ATTNC_HAVE_PNG
  (void)pl; (void)r; (void)C_PAD;
  return cli_error("this build has no libpng: --png %s is not available", path);
#else
  const IrPattern *p = pl->pat;
  int64_t nqt = plan_order_ntiles(&pl->qord, r->Sq), nkt = plan_order_ntiles(&pl->kord, r->Sk);
  int64_t bm = pl->qord.tile, bn = pl->kord.tile;
  int64_t nq = nqt * bm, nk = nkt * bn;
  int64_t fq = (nq + PNG_MAX - 1) / PNG_MAX, fk = (nk + PNG_MAX - 1) / PNG_MAX;
  int w = (int)((nk + fk - 1) / fk), h = (int)((nq + fq - 1) / fq);
  int sq = fq < 4 ? (int)fq : 4, sk = fk < 4 ? (int)fk : 4;
  uint8_t *cls = malloc((size_t)(nqt * nkt));
  uint8_t *rgb = malloc((size_t)w * h * 3);
  double *vals = malloc(sizeof(double) * (size_t)(p->nnodes + 1));
  Diag d = { 0 };
  int rc = CLI_EXIT_OK;
  if (!cls || !rgb || !vals) { rc = cli_error("out of memory drawing %s", path); goto done; }
  if (plan_tile_map(pl, r, 0, 0, cls, &d) != ATTNC_OK) { rc = cli_error("%s", d.msg); goto done; }
  IrEnv env;
  memset(&env, 0, sizeof env);
  env.sq = r->Sq;
  env.sk = r->Sk;
  env.inputs = r->inputs;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      int64_t qs = y * fq, ks = x * fk;
      uint8_t c = cls[(qs / bm) * nkt + ks / bn];
      int on = -1;                                  /* -1: padding only */
      for (int i = 0; i < sq && on != 1; i++)
        for (int j = 0; j < sk && on != 1; j++) {
          int64_t a = qs + i * fq / sq, b = ks + j * fk / sk;
          if (a >= nq || b >= nk) continue;
          int64_t q = plan_order_token(&pl->qord, r->Sq, a / bm, a % bm);
          int64_t k = plan_order_token(&pl->kord, r->Sk, b / bn, b % bn);
          if (q < 0 || k < 0) continue;
          if (c == 2 || p->mask < 0) { on = 1; break; }
          if (c == 0) { on = 0; continue; }         /* skipped: --check looks there */
          env.q = q;
          env.k = k;
          ir_env_coords(p, &env);
          double v = ir_eval(p, p->mask, &env, vals, &d);
          if (!diag_ok(&d)) { rc = cli_error("%s", d.msg); goto done; }
          on = v != 0;
        }
      Rgb px = on < 0 ? C_PAD : c == 0 ? C_SKIP : c == 1 ? (on ? C_PART_ON : C_PART)
             : (on ? C_FULL_ON : C_FULL);
      uint8_t *o = rgb + ((size_t)y * w + x) * 3;
      o[0] = px.r; o[1] = px.g; o[2] = px.b;
    }
  rc = write_png(path, w, h, rgb);
done:
  free(cls); free(rgb); free(vals);
  return rc;
#endif
}

/* --------------------------------------------------------------- main */

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; s && *s; s++) {
    if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
    else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
    else fputc(*s, f);
  }
  fputc('"', f);
}

static int explain_main(const CliVerb *verb, int argc, char **argv) {
  CliParser ps;
  CliSpec cs = { 0 };
  CliInputs in = { 0 };
  attnc_target target = ATTNC_TARGET_CUDA;
  const char *val, *png = NULL, *shape = NULL, *tile = NULL, *arch = NULL;
  bool json = false, check = false, show_plan = false;
  attnc_ctx *ctx = NULL;
  attnc_spec *spec = NULL;
  Arena arena;
  arena_init(&arena);
  int rc = CLI_EXIT_OK, id;
  cli_init(&ps, verb, argc, argv);
  const CliCommon common_opts = { .spec = &cs, .inputs = &in, .target = &target };
  while ((id = cli_next_own(&ps, verb, &common_opts, &val, &rc)) != CLI_DONE) {
    switch (id) {
    case CLI_HELP: goto done;
    case OPT_SHAPE: shape = val; break;
    case OPT_TILE: tile = val; break;
    case OPT_ARCH: arch = val; break;
    case OPT_JSON: json = true; break;
    case OPT_PNG: png = val; break;
    case OPT_CHECK: check = true; break;
    case OPT_PLAN: show_plan = true; break;
    }
  }
  if (rc) goto done;
  if (!cs.path) { rc = cli_error("explain needs a SPEC file (see attnc explain --help)"); goto done; }
  long long B = 1, H = 1, S = 0, D = 64, bm = 0, bn = 0;
  if (shape) {
    char extra;
    if (sscanf(shape, "%lld,%lld,%lld,%lld%c", &B, &H, &S, &D, &extra) != 4 || B < 1 || H < 1 || S < 1 ||
        D < 1) {
      rc = cli_error("--shape wants four positive sizes B,H,S,D (got '%s')", shape);
      goto done;
    }
  }
  if (tile) {
    char extra;
    if (sscanf(tile, "%lldx%lld%c", &bm, &bn, &extra) != 2 || bm < 1 || bn < 1 || bm > 4096 || bn > 4096) {
      rc = cli_error("--tile wants BMxBN, e.g. 128x64 (got '%s')", tile);
      goto done;
    }
  }
  if (!(ctx = attnc_ctx_new())) { rc = cli_error("out of memory"); goto done; }
  if ((rc = cli_load_spec(ctx, &cs, verb, &spec))) goto done;
  if ((rc = cli_load_inputs(&in))) goto done;
  const IrPattern *p = spec->pat;
  int64_t grid = 0;
  if (p->grid_rank > 0) {
    grid = 1;
    for (int i = 0; i < p->grid_rank; i++) grid *= p->grid[i];
    if (S && S != grid) {
      rc = cli_error("--shape: S is %lld but the spec's grid has %lld tokens", S, (long long)grid);
      goto done;
    }
    S = grid;
  }
  if (!S) S = 4096;

  PlanOptions opt = { .target = target, .B = B, .H = H, .Sq = S, .Sk = S, .D = D };
  if (bm) { opt.pin.pin_tile = true; opt.pin.bm = bm; opt.pin.bn = bn; }
  /* where the schedule comes from: --tile, the tuning database (as a
     compile without a schedule would look it up), or the heuristics */
  attnc_schedule tuned = { 0 };
  TuneEntry te;
  char tdb[4096] = "";
  bool from_db = !bm && tunedb_lookup(ir_hash(p), target, NULL, B * H, S, D, &tuned, tdb, sizeof tdb, &te);
  if (from_db) {
    if (tuned.block_m > 0 && tuned.block_n > 0) {
      opt.pin.pin_tile = true;
      opt.pin.bm = tuned.block_m;
      opt.pin.bn = tuned.block_n;
    }
    if (tuned.order) { opt.pin.pin_order = true; opt.pin.raster = tuned.order == 1; }
    if (tuned.warps) { opt.pin.pin_warps = true; opt.pin.warps = tuned.warps; }
    if (tuned.stages) { opt.pin.pin_stages = true; opt.pin.stages = tuned.stages; }
  }
  char why[4600];
  if (bm) snprintf(why, sizeof why, "--tile %lldx%lld", bm, bn);
  else if (from_db)
    snprintf(why, sizeof why, "from tuning database %s (tuned %s%s%s for S<=%lld D=%lld B*H<=%lld on %s%s%s)", tdb,
             te.spec, te.params[0] ? " " : "", te.params, (long long)te.key.s, (long long)te.key.d,
             (long long)te.key.bh, attnc_target_name(te.key.target), te.key.arch[0] ? " " : "", te.key.arch);
  else snprintf(why, sizeof why, "heuristics (no tuning database entry)");
  Diag d = { 0 };
  Plan *pl = NULL;
  attnc_status pst;
  char kernel[512] = "", mask_code[512] = "", score_code[512] = "";  /* whole sentences, never cut */
  int64_t gpu_meta = -1;            /* cuda: p.meta a launch allocates (-1: not the cuda target) */
#ifdef ATTNC_HAVE_CUDA
  if (target == ATTNC_TARGET_CUDA) {
    /* the plan the cuda backend builds: its tile table, refined by the plan */
    CudaConfig cc = { .dtype = DT_BF16, .head_dim = (int)D, .seq_hint = S, .arch = 90 };
    if (opt.pin.pin_tile) cc.block_m = (int)opt.pin.bm, cc.block_n = (int)opt.pin.bn;
    cc.raster = opt.pin.pin_order && opt.pin.raster;
    pst = arch ? cuda_arch_from(arch, &cc.arch, &d) : ATTNC_OK;
    if (pst == ATTNC_OK) pst = cuda_plan(p, &cc, &arena, &pl, &d);
    if (pst == ATTNC_OK) {
      /* the schedule as the kernel runs it: its warps, its K/V buffers */
      pl->sched.warps = cc.warps;
      pl->sched.stages = cc.overlap ? 2 : 1;
      /* a TMA kernel on tensors of this shape (BHSD) the launch cannot make
         descriptors for runs its copy variant (cuda_launch) */
      int64_t shape[4] = { B, H, S, D }, st[4] = { H * S * D, S * D, D, 1 };
      uint64_t dims[5], strides[4];
      unsigned box[5];
      bool tma = cuda_kv_tma(&cc) && cuda_tma_map_layout(&cc.kord, shape, st, 4096, dims, strides, box) &&
                 (!cuda_q_tma(&cc) || cuda_tma_map_layout(&cc.qord, shape, st, 4096, dims, strides, box));
      bool copy = cuda_kv_tma(&cc) && !tma;
      char an[16];
      snprintf(kernel, sizeof kernel, "%s, %s%s%s, %d warps, %d KiB shared memory%s",
               cuda_arch_name(cc.arch, an),
               cc.ws ? (tma ? "wgmma, overlapped, warp-specialised (a producer warpgroup, K/V by TMA, two buffers)"
                            : "wgmma, overlapped, warp-specialised (a producer warpgroup, K/V by cp.async, two buffers)")
               : cc.overlap ? (tma ? "wgmma, overlapped (two K/V buffers, loaded by TMA from thread 0)"
                                   : "wgmma, overlapped (two K/V buffers, loaded by cp.async)")
               : cc.wgmma ? "wgmma" : "mma.sync",
               cc.sum_mma ? ", row sums by the MMA" : "",
               cc.persist && tma ? ", persistent (the CTAs the SMs hold walk the q tiles)" : "",
               cuda_threads(&cc) / 32, (cuda_smem_bytes(&cc) + 1023) / 1024,
               copy ? "; the copy variant: TMA cannot read tensors of this shape" : "");
      gpu_meta = cuda_plan_prep(pl) ? cuda_meta_bytes(&cc, B, H, S, S) : 0;
      pst = cuda_mask_summary(p, pl, &cc, mask_code, sizeof mask_code, &d);
      cuda_score_summary(p, score_code, sizeof score_code);
    }
  } else
#endif
    pst = plan_build(&arena, p, &opt, NULL, &pl, &d);
  if (pst != ATTNC_OK) {
    attnc_error e;
    diag_to_error(&d, &e);
    rc = cli_fail(&e);
    goto done;
  }
  IrTensorView views[32];
  memset(views, 0, sizeof views);
  if (p->ninputs && !views_from(p, pl->inputs_mask | pl->inputs_iter, &in, views)) { rc = CLI_EXIT_USAGE; goto done; }
  PlanRun run = { .B = B, .H = H, .Sq = S, .Sk = S, .inputs = views };
  int64_t mbytes = plan_metadata_bytes(pl, &run);
  if (mbytes > 0) {                 /* the pre-pass a kernel launch would run */
    int32_t *meta = arena_alloc(&arena, (size_t)mbytes);
    if (!meta) { rc = cli_error("out of memory for %lld bytes of metadata", (long long)mbytes); goto done; }
    if (plan_prepass(pl, &run, meta, &d) != ATTNC_OK) {
      attnc_error e;
      diag_to_error(&d, &e);
      rc = cli_fail(&e);
      goto done;
    }
    run.meta = meta;
  }
  PlanStats st;
  if (plan_stats(pl, &run, check ? COUNT_ALL : COUNT_VISITED, &st, &d) != ATTNC_OK) {
    attnc_error e;
    diag_to_error(&d, &e);
    rc = cli_fail(&e);
    goto done;
  }
  const Schedule *s = &pl->sched;
  const PlanIter *it0 = &pl->variants[0].it;
  if (json) {
    printf("{\"spec\": ");
    json_str(stdout, p->name);
    printf(", \"params\": [");
    for (int i = 0; i < p->nparams; i++) {
      const IrParam *prm = &p->params[i];
      printf("%s{\"name\": ", i ? ", " : "");
      json_str(stdout, prm->name);
      printf(", \"value\": %.17g, \"default\": %.17g, \"overridden\": %s, \"doc\": ", prm->value,
             prm->def, prm->overridden ? "true" : "false");
      if (prm->doc) json_str(stdout, prm->doc);
      else printf("null");
      printf(", \"line\": %d}", prm->line);
    }
    printf("]");
    printf(", \"shape\": [%lld, %lld, %lld, %lld], \"schedule\": {\"bm\": %" PRId64 ", \"bn\": %" PRId64
           ", \"order\": \"%s\", \"qbox\": [", B, H, S, D, s->bm, s->bn, s->grid ? "grid" : "raster");
    for (int a = 0; a < s->rank; a++) printf("%s%" PRId64, a ? ", " : "", s->qbox[a]);
    printf("], \"kbox\": [");
    for (int a = 0; a < s->rank; a++) printf("%s%" PRId64, a ? ", " : "", s->kbox[a]);
    printf("], \"dilation\": [");
    for (int a = 0; a < s->rank; a++) printf("%s%" PRId64, a ? ", " : "", s->dil[a]);
    printf("], \"warps\": %d, \"stages\": %d}, \"schedule_source\": \"%s\", \"schedule_why\": ", s->warps,
           s->stages, bm ? "user" : from_db ? "tuned" : "heuristics");
    json_str(stdout, why);
    printf(", \"tune_db\": ");
    if (from_db) json_str(stdout, tdb);
    else printf("null");
    if (from_db)
      printf(", \"tuned\": {\"block_m\": %d, \"block_n\": %d, \"warps\": %d, \"stages\": %d, \"order\": %d}",
             tuned.block_m, tuned.block_n, tuned.warps, tuned.stages, tuned.order);
    if (kernel[0]) {
      printf(", \"kernel\": ");
      json_str(stdout, kernel);
    }
    if (mask_code[0]) {
      printf(", \"mask_code\": ");
      json_str(stdout, mask_code);
    }
    if (score_code[0]) {
      printf(", \"score_code\": ");
      json_str(stdout, score_code);
    }
    printf(", \"iterator\": \"%s\", \"reason\": ", plan_iter_name(it0->kind));
    if (it0->reason) json_str(stdout, it0->reason);
    else printf("null");
    printf(", \"variants\": [");
    for (int v = 0; v < pl->nvariants; v++) {
      printf("%s{\"heads\": ", v ? ", " : "");
      if (pl->variants[v].heads) json_str(stdout, plan_expr_str(&arena, pl->variants[v].heads));
      else printf("\"rest\"");
      printf(", \"iterator\": \"%s\"}", plan_iter_name(pl->variants[v].it.kind));
    }
    printf("], \"tiles_total\": %" PRId64 ", \"tiles_visited\": %" PRId64 ", \"tiles_full\": %" PRId64
           ", \"tiles_partial\": %" PRId64 ", \"density\": %.6f, \"visited_allowed_fraction\": %.6f"
           ", \"kv_tiles_per_q_tile_max\": %" PRId64 ", \"metadata_bytes\": %" PRId64,
           st.tiles_total, st.tiles_visited, st.tiles_full, st.tiles_partial, st.density,
           st.visited_allowed_fraction, st.kv_tiles_per_q_tile_max, st.metadata_bytes);
    if (gpu_meta >= 0) printf(", \"cuda_metadata_bytes\": %" PRId64, gpu_meta);
    if (check)
      printf(", \"skipped_allowed\": %" PRId64 ", \"full_violations\": %" PRId64, st.skipped_allowed,
             st.full_violations);
    printf("}\n");
  } else {
    printf("pattern    %s (%s)\n", p->name, p->file);
    for (int i = 0; i < p->nparams; i++) {   /* params: value, where it came from, doc */
      const IrParam *prm = &p->params[i];
      printf("%s%s = %.17g", i ? "           " : "params     ", prm->name, prm->value);
      if (prm->overridden) printf(" (-D; default %.17g)", prm->def);
      if (prm->doc) printf("  -- %s", prm->doc);
      printf("\n");
    }
    printf("shape      B=%lld H=%lld S=%lld D=%lld\n", B, H, S, D);
    printf("schedule   q tile %" PRId64 ", kv tile %" PRId64 ", %s order", s->bm, s->bn, s->grid ? "grid" : "raster");
    if (s->grid || s->dil[0] > 1) {
      printf(" (q box");
      for (int a = 0; a < s->rank; a++) printf("%s%" PRId64, a ? "x" : " ", s->qbox[a]);
      printf(", kv box");
      for (int a = 0; a < s->rank; a++) printf("%s%" PRId64, a ? "x" : " ", s->kbox[a]);
      bool dil = false;
      for (int a = 0; a < s->rank; a++) dil = dil || s->dil[a] > 1;
      if (dil) {
        printf(", grouped by residue mod");
        for (int a = 0; a < s->rank; a++) printf("%s%" PRId64, a ? "x" : " ", s->dil[a]);
      }
      printf(")");
    }
    if (kernel[0]) printf("\nkernel     %s\n", kernel);
    else printf(", %d warps, %d stages\n", s->warps, s->stages);
    if (mask_code[0]) printf("mask code  %s\n", mask_code);
    if (score_code[0]) printf("score code %s\n", score_code);
    printf("chosen by  %s\n", why);
    for (int v = 0; v < pl->nvariants; v++) {
      const PlanIter *it = &pl->variants[v].it;
      printf("iterator   %s", plan_iter_name(it->kind));
      if (pl->nvariants > 1)
        printf(" for heads %s", pl->variants[v].heads ? plan_expr_str(&arena, pl->variants[v].heads) : "(the rest)");
      if (it->reason) printf(": %s", it->reason);
      printf("\n");
    }
    printf("tiles      %" PRId64 " total, %" PRId64 " visited (%.1f%%): %" PRId64 " full, %" PRId64 " partial\n",
           st.tiles_total, st.tiles_visited,
           st.tiles_total ? 100.0 * (double)st.tiles_visited / (double)st.tiles_total : 0.0, st.tiles_full,
           st.tiles_partial);
    printf("kv tiles   at most %" PRId64 " per q tile\n", st.kv_tiles_per_q_tile_max);
    printf("density    %.4f of all pairs allowed\n", st.density);
    printf("visited    %.4f of the pairs in visited tiles allowed\n", st.visited_allowed_fraction);
    if (gpu_meta > 0)       /* the kernel's pre-passes, not the plan's (which the ref and cpu run) */
      printf("metadata   %" PRId64 " bytes a launch (attnc_prep and attnc_prep_q write them)\n", gpu_meta);
    else
      printf("metadata   %" PRId64 " bytes at run time\n", gpu_meta == 0 ? 0 : st.metadata_bytes);
    if (check)
      printf("check      %s (%" PRId64 " allowed pairs skipped, %" PRId64 " tiles wrongly full)\n",
             st.skipped_allowed || st.full_violations ? "FAIL" : "ok", st.skipped_allowed, st.full_violations);
    if (show_plan) {
      char *text = plan_print(pl, &arena);
      if (text) fputs(text, stdout);
    }
  }
  if (png && (rc = draw(pl, &run, png))) goto done;
  if (check && (st.skipped_allowed || st.full_violations)) rc = CLI_EXIT_FAIL;
done:
  arena_free(&arena);
  attnc_spec_free(spec);
  attnc_ctx_free(ctx);
  cli_free_inputs(&in);
  cli_free_spec(&cs);
  return rc;
}

const CliVerb cli_verb_explain = {
  "explain", "show how a pattern is scheduled: iterator, tiles visited, density",
  "SPEC [-D NAME=VALUE]... [--target T] [--arch A] [--shape B,H,S,D] [--tile BMxBN] [--json] "
  "[--png FILE] [--input NAME=FILE.npy]...",
  "Build the plan of SPEC for one call shape and report it: the schedule\n"
  "(tile sizes, token order), the kv iterator of each head variant (and why,\n"
  "when it is dense), how many tiles are visited, full (no mask code) or\n"
  "partial, the exact density of allowed pairs and the fraction of visited\n"
  "pairs that are allowed, and the metadata a run needs. --png draws the\n"
  "mask (white: skipped, orange/light: partial tiles, green: full tiles).\n"
  "Specs that read runtime data need their inputs (--input NAME=FILE.npy).\n"
  "With --target cuda the plan is the one the cuda backend builds for --arch\n"
  "(its tile table, refined by the plan), and a 'kernel' line says which\n"
  "kernel runs it (wgmma or mma.sync, warps, shared memory), a 'mask code'\n"
  "line what its partial tiles run for the mask and, with a score\n"
  "modification, a 'score code' line how the score is computed.",
  opts, explain_main
};
