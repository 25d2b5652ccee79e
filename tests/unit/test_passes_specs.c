/*
** test_passes_specs.c -- every spec in specs/ through the passes.
**
**   specs_brute   each spec with its defaults and with each int param
**                 halved (when the spec accepts it), on the spec's grid or
**                 S in {256, 1000}, with chosen and pinned tiles: the
**                 iterator against brute force over every pair (grids
**                 above 4096 tokens: every 5th q tile)
**   specs_golden  the plan after each pass, compared with
**                 tests/golden/passes/SPEC.plan; ATTNC_REGEN_GOLDEN=1
**                 rewrites the files (review the diff)
*/
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/testutil.h"
#include "frontend/frontend.h"
#include "passes/passes.h"

enum { MAX_SPECS = 128 };

static int list_specs(char names[][256]) {
  DIR *dir = opendir(tu_path("specs"));
  int n = 0;
  if (!dir) return 0;
  struct dirent *e;
  while ((e = readdir(dir)) && n < MAX_SPECS) {
    size_t len = strlen(e->d_name);
    if (len > 4 && strcmp(e->d_name + len - 4, ".lua") == 0) snprintf(names[n++], 256, "%s", e->d_name);
  }
  closedir(dir);
  /* sorted, so output and goldens are stable */
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
      char t[256];
      memcpy(t, names[j], 256); memcpy(names[j], names[j - 1], 256); memcpy(names[j - 1], t, 256);
    }
  return n;
}

static IrPattern *trace_file(Arena *a, const char *name, const attnc_define *defs, int ndefs, Diag *d) {
  char rel[300];
  snprintf(rel, sizeof rel, "specs/%s", name);
  size_t len;
  char *src = tu_read_file(tu_path(rel), &len);
  if (!src) return NULL;
  IrPattern *p = NULL;
  fe_trace(a, rel, src, len, defs, ndefs, NULL, &p, d);
  free(src);
  return p;
}

/* random inputs: sorted ids for [.., S] i32 tensors, small ints otherwise */
typedef struct Inputs { IrTensorView v[8]; void *data[8]; int n; } Inputs;

static void make_inputs(const IrPattern *p, int64_t B, int64_t H, int64_t S, Inputs *in) {
  memset(in, 0, sizeof *in);
  srand(11);
  for (int i = 0; i < p->ninputs && i < 8; i++) {
    const IrInput *d = &p->inputs[i];
    IrTensorView *v = &in->v[i];
    int64_t n = 1;
    v->rank = d->rank;
    v->dtype = d->dtype;
    for (int j = 0; j < d->rank; j++) {
      int64_t sz = d->dims[j].value;
      switch (d->dims[j].sym) {
      case DIM_B: sz = B; break;
      case DIM_H: case DIM_HKV: sz = H; break;
      case DIM_SQ: case DIM_SK: sz = (S + d->dims[j].value - 1) / d->dims[j].value; break;
      default: break;
      }
      v->shape[j] = sz;
      n *= sz;
    }
    for (int j = d->rank - 1, st = 1; j >= 0; j--) { v->strides[j] = st; st *= (int)v->shape[j]; }
    int64_t last = d->rank ? v->shape[d->rank - 1] : 1;
    const IrDim *ld = d->rank ? &d->dims[d->rank - 1] : NULL;
    bool ids = ld && (ld->sym == DIM_SQ || ld->sym == DIM_SK) && ld->value == 1;
    int64_t rows = d->rank >= 2 ? v->shape[d->rank - 2] : 1;
    if (d->dtype == DT_I32) {
      int32_t *x = calloc((size_t)n, sizeof *x);
      for (int64_t e = 0; e < n; e++) {
        int64_t pos = e % last;
        if (ids) x[e] = pos == 0 ? 0 : x[e - 1] + (rand() % 37 == 0);
        else x[e] = (int32_t)(rand() % (rows + 1)) - (rand() % 23 == 0);
      }
      v->data = x;
    } else {
      float *x = calloc((size_t)n, sizeof *x);
      for (int64_t e = 0; e < n; e++) x[e] = (float)(rand() % 4 == 0);
      v->data = x;
    }
    in->data[i] = (void *)v->data;
    in->n++;
  }
}

static int64_t grid_size(const IrPattern *p) {
  int64_t s = 1;
  for (int i = 0; i < p->grid_rank; i++) s *= p->grid[i];
  return p->grid_rank ? s : 0;
}

static int64_t edge_tiles_checked;   /* over every brute() run: the edge check is not vacuous */

static void brute(const char *spec, const IrPattern *p, int64_t S, int64_t bm, int64_t bn, const char *params) {
  Arena a;
  arena_init(&a);
  Diag d = { 0 };
  PlanOptions opt = { .target = ATTNC_TARGET_CUDA, .B = 2, .H = 3, .Sq = S, .Sk = S };
  if (bm) { opt.pin.pin_tile = true; opt.pin.bm = bm; opt.pin.bn = bn; }
  Plan *pl = NULL;
  ck_assert_msg(plan_build(&a, p, &opt, NULL, &pl, &d) == ATTNC_OK, "%s %s: %s", spec, params, d.msg);
  Inputs in;
  make_inputs(p, 2, 3, S, &in);
  PlanRun r = { .B = 2, .H = 3, .Sq = S, .Sk = S, .inputs = in.v, .qstride = S > 4096 ? 5 : 1 };
  PlanStats st;
  ck_assert_msg(plan_stats(pl, &r, COUNT_ALL, &st, &d) == ATTNC_OK, "%s %s: %s", spec, params, d.msg);
  const char *where = arena_printf(&a, "%s [%s] S=%lld tile %lldx%lld", spec, params, (long long)S,
                                   (long long)pl->sched.bm, (long long)pl->sched.bn);
  ck_assert_msg(st.skipped_allowed == 0, "%s: %lld allowed pairs skipped\n%s", where,
                (long long)st.skipped_allowed, plan_print(pl, &a));
  ck_assert_msg(st.full_violations == 0, "%s: %lld tiles wrongly full\n%s", where,
                (long long)st.full_violations, plan_print(pl, &a));
  edge_tiles_checked += st.tiles_edge;
  ck_assert_msg(st.edge_violations == 0, "%s: %lld of %lld tiles past one edge differ from that edge's bounds\n%s",
                where, (long long)st.edge_violations, (long long)st.tiles_edge, plan_print(pl, &a));
  bool dense = false;
  for (int v = 0; v < pl->nvariants; v++) dense = dense || pl->variants[v].it.kind == ITER_DENSE;
  if (!pl->inputs_iter && !dense)
    ck_assert_msg(st.tiles_visited <= st.tiles_with_allowed + st.tiles_with_allowed / 20 + 1,
                  "%s: visits %lld tiles, %lld hold allowed pairs\n%s", where, (long long)st.tiles_visited,
                  (long long)st.tiles_with_allowed, plan_print(pl, &a));
  if (!p->ninputs) ck_assert_int_eq(st.metadata_bytes, 0);
  for (int i = 0; i < in.n; i++) free(in.data[i]);
  arena_free(&a);
}

static void run_spec(const char *spec, const attnc_define *defs, int ndefs, const char *params) {
  Arena a;
  arena_init(&a);
  Diag d = { 0 };
  IrPattern *p = trace_file(&a, spec, defs, ndefs, &d);
  if (!p) {
    ck_assert_msg(ndefs > 0, "%s: %s", spec, d.msg);  /* a halved param may be refused */
    arena_free(&a);
    return;
  }
  int64_t g = grid_size(p);
  if (g) {
    if (g <= 16384) {
      brute(spec, p, g, 0, 0, params);
      brute(spec, p, g, 64, 64, params);
    }
  } else {
    brute(spec, p, 256, 64, 64, params);
    brute(spec, p, 1000, 0, 0, params);
  }
  arena_free(&a);
}

START_TEST(specs_brute) {
  static char names[MAX_SPECS][256];
  int n = list_specs(names);
  for (int i = 0; i < n; i++) {
    run_spec(names[i], NULL, 0, "defaults");
    /* each int param halved */
    Arena a;
    arena_init(&a);
    Diag d = { 0 };
    IrPattern *p = trace_file(&a, names[i], NULL, 0, &d);
    ck_assert_msg(p != NULL, "%s: %s", names[i], d.msg);
    for (int j = 0; j < p->nparams; j++) {
      const IrParam *prm = &p->params[j];
      if (prm->type != IR_INT || prm->value < 4) continue;
      char val[64], what[128];
      long long v = (long long)prm->value / 2;
      if (((long long)prm->value & 1) && !(v & 1)) v++;      /* keep odd values odd */
      snprintf(val, sizeof val, "%lld", v);
      snprintf(what, sizeof what, "%s=%s", prm->name, val);
      attnc_define def = { prm->name, val };
      run_spec(names[i], &def, 1, what);
    }
    arena_free(&a);
  }
  ck_assert_msg(edge_tiles_checked > 0, "no partial tile past one edge was checked");
}
END_TEST

/* the plan after each pass, as one text per spec */
static char *golden_text(const IrPattern *p, Arena *a) {
  char *out = arena_strdup(a, "");
  for (const Pass *ps = plan_pipeline; ps->name; ps++) {
    Diag d = { 0 };
    Plan *pl = NULL;
    PlanOptions opt = { .target = ATTNC_TARGET_CUDA, .B = 1, .H = 4, .Sq = 4096, .Sk = 4096, .D = 64 };
    ck_assert_msg(plan_build(a, p, &opt, ps->name, &pl, &d) == ATTNC_OK, "%s", d.msg);
    out = arena_printf(a, "%s=== after %s ===\n%s", out, ps->name, plan_print(pl, a));
  }
  return out;
}

START_TEST(specs_golden) {
  static char names[MAX_SPECS][256];
  int n = list_specs(names);
  bool regen = getenv("ATTNC_REGEN_GOLDEN") && strcmp(getenv("ATTNC_REGEN_GOLDEN"), "1") == 0;
  for (int i = 0; i < n; i++) {
    Arena a;
    arena_init(&a);
    Diag d = { 0 };
    IrPattern *p = trace_file(&a, names[i], NULL, 0, &d);
    ck_assert_msg(p != NULL, "%s: %s", names[i], d.msg);
    char *text = golden_text(p, &a);
    char rel[300];
    snprintf(rel, sizeof rel, "tests/golden/passes/%.*s.plan", (int)(strlen(names[i]) - 4), names[i]);
    if (regen) {
      FILE *f = fopen(tu_path(rel), "wb");
      ck_assert_msg(f != NULL, "cannot write %s", rel);
      fputs(text, f);
      fclose(f);
    } else {
      char *want = tu_read_file(tu_path(rel), NULL);
      ck_assert_msg(want != NULL, "%s is missing: run with ATTNC_REGEN_GOLDEN=1 and review it", rel);
      if (strcmp(want, text) != 0) {
        size_t k = 0;
        while (want[k] && want[k] == text[k]) k++;
        size_t from = k > 200 ? k - 200 : 0;
        ck_abort_msg("%s differs (ATTNC_REGEN_GOLDEN=1 rewrites it) near:\n--- want\n%.400s\n--- got\n%.400s", rel,
                     want + from, text + from);
      }
      free(want);
    }
    arena_free(&a);
  }
}
END_TEST

Suite *specs_suite(void) {
  Suite *s = suite_create("passes_specs");
  TCase *tc = tcase_create("specs");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, specs_brute);
  tcase_add_test(tc, specs_golden);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run(specs_suite()); }
