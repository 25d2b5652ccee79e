/*
** test_passes_count.c -- plan_count_tiles (the tile pass's cost input, in
** closed form per axis where the iterator allows) against a plan_visit
** walk over every q tile: every spec in specs/ whose iterator needs no
** runtime data, with its defaults and a larger grid, 1-D sequences of
** two lengths, every power-of-two box pinned for the tile sizes 64 and
** 128, several heads.
*/
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/testutil.h"
#include "frontend/frontend.h"
#include "passes/passes.h"

typedef struct Walk { int64_t visited, full; } Walk;

static void walk_fn(void *ud, int64_t u, bool full) {
  Walk *w = ud;
  (void)u;
  w->visited++;
  w->full += full;
}

/* plan_count_tiles == the walk, for a few heads; returns the plans checked */
static int check_plan(const Plan *pl, int64_t S, const char *what) {
  PlanRun r = { .B = 1, .H = 16, .Sq = S, .Sk = S };
  int64_t nqt = plan_order_ntiles(&pl->qord, S);
  static const int64_t heads[] = { 0, 3 };   /* per_head: both variants */
  for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
    Diag d = { 0 };
    Walk w = { 0, 0 };
    for (int64_t t = 0; t < nqt; t++)
      ck_assert_msg(plan_visit(pl, &r, 0, heads[i], t, walk_fn, &w, &d) == ATTNC_OK, "%s", d.msg);
    int64_t visited = -1, full = -1;
    ck_assert_msg(plan_count_tiles(pl, &r, 0, heads[i], &visited, &full, &d) == ATTNC_OK, "%s", d.msg);
    ck_assert_msg(visited == w.visited && full == w.full,
                  "%s, h %lld: counted %lld visited / %lld full, walked %lld / %lld", what,
                  (long long)heads[i], (long long)visited, (long long)full, (long long)w.visited,
                  (long long)w.full);
  }
  return 1;
}

/* power-of-two boxes with product size over rank axes, each within the grid's hull */
static int boxes(const IrPattern *p, int64_t size, int64_t out[][IR_MAXGRID], int max) {
  int n = 0, rank = p->grid_rank;
  int64_t lim[IR_MAXGRID] = { 1, 1, 1 };
  for (int a = 0; a < rank; a++)
    while (lim[a] < p->grid[a]) lim[a] *= 2;
  for (int64_t b0 = 1; b0 <= size; b0 *= 2)
    for (int64_t b1 = 1; b1 <= (rank > 1 ? size : 1); b1 *= 2)
      for (int64_t b2 = 1; b2 <= (rank > 2 ? size : 1); b2 *= 2) {
        int64_t b[IR_MAXGRID] = { b0, b1, b2 };
        if (b0 * b1 * b2 != size || n == max) continue;
        bool ok = true;
        for (int a = 0; a < rank; a++) ok = ok && b[a] <= lim[a];
        if (ok) memcpy(out[n++], b, sizeof b);
      }
  return n;
}

/* every pinned schedule of one traced pattern; returns the plans checked */
static int check_pattern(const IrPattern *p, const char *name) {
  int checked = 0;
  int64_t grid = 1;
  for (int a = 0; a < p->grid_rank; a++) grid *= p->grid[a];
  static const int64_t lens[] = { 256, 1000 };
  int nlens = p->grid_rank ? 1 : 2;
  for (int64_t bm = 64; bm <= 128; bm *= 2)
    for (int64_t bn = 64; bn <= 128; bn *= 2) {
      int64_t qb[64][IR_MAXGRID], kb[64][IR_MAXGRID];
      int nq = p->grid_rank ? boxes(p, bm, qb, 64) : 1, nk = p->grid_rank ? boxes(p, bn, kb, 64) : 1;
      for (int i = 0; i < nq; i++)
        for (int j = 0; j < nk; j++)
          for (int l = 0; l < nlens; l++) {
            int64_t S = p->grid_rank ? grid : lens[l];
            PlanOptions opt = { .target = ATTNC_TARGET_REF, .H = 16, .Sq = S, .Sk = S };
            opt.pin.bm = bm;
            opt.pin.bn = bn;
            opt.pin.pin_tile = true;
            if (p->grid_rank) {
              memcpy(opt.pin.qbox, qb[i], sizeof qb[i]);
              memcpy(opt.pin.kbox, kb[j], sizeof kb[j]);
              opt.pin.pin_box = true;
            }
            Arena a;
            arena_init(&a);
            Plan *pl = NULL;
            Diag d = { 0 };
            if (plan_build(&a, p, &opt, NULL, &pl, &d) == ATTNC_OK) {
              char what[400];
              snprintf(what, sizeof what, "%s %lldx%lld boxes %lldx%lldx%lld / %lldx%lldx%lld S %lld",
                       name, (long long)bm, (long long)bn, (long long)qb[i][0], (long long)qb[i][1],
                       (long long)qb[i][2], (long long)kb[j][0], (long long)kb[j][1],
                       (long long)kb[j][2], (long long)S);
              checked += check_plan(pl, S, what);
            }
            arena_free(&a);
          }
    }
  return checked;
}

static bool reads_inputs(const IrPattern *p) { return p->ninputs > 0; }

START_TEST(count_matches_walk) {
  DIR *dir = opendir(tu_path("specs"));
  ck_assert_ptr_nonnull(dir);
  struct dirent *e;
  int specs = 0, plans = 0;
  while ((e = readdir(dir))) {
    size_t n = strlen(e->d_name);
    if (n < 5 || strcmp(e->d_name + n - 4, ".lua") != 0) continue;
    char rel[300];
    snprintf(rel, sizeof rel, "specs/%s", e->d_name);
    size_t len;
    char *src = tu_read_file(tu_path(rel), &len);
    ck_assert_ptr_nonnull(src);
    /* the defaults, then a larger grid where the spec has one */
    static const attnc_define sizes[] = { { "height", "24" }, { "width", "40" }, { "depth", "6" } };
    attnc_define larger[3];
    int nlarger = 0;
    for (int pass = 0; pass < 2; pass++) {
      Arena a;
      arena_init(&a);
      Diag d = { 0 };
      IrPattern *p = NULL;
      fe_trace(&a, rel, src, len, larger, pass ? nlarger : 0, NULL, &p, &d);
      if (p && !reads_inputs(p) && (pass == 0 || nlarger > 0)) {
        plans += check_pattern(p, rel);
        specs += pass == 0;
      }
      for (int i = 0; p && pass == 0 && i < 3; i++)
        if (ir_find_param(p, sizes[i].name) >= 0) larger[nlarger++] = sizes[i];
      arena_free(&a);
    }
    free(src);
  }
  closedir(dir);
  fprintf(stderr, "test_passes_count: %d specs, %d plans, counted = walked\n", specs, plans);
  ck_assert_int_gt(specs, 10);
}
END_TEST

int main(void) {
  Suite *s = suite_create("passes_count");
  TCase *tc = tcase_create("count");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, count_matches_walk);
  suite_add_tcase(s, tc);
  return tu_run(s);
}
