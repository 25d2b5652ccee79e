/* testutil.c -- helpers shared by the Check suites. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/testutil.h"

long long tu_source_int(const char *src, const char *name) {
  const char *at = src ? strstr(src, name) : NULL;
  return at ? atoll(at + strlen(name)) : -1;
}

const char *tu_path(const char *rel) {
  static _Thread_local char buf[4096];
  const char *root = getenv("ATTNC_SOURCE_DIR");
  snprintf(buf, sizeof buf, "%s/%s", root ? root : ATTNC_SOURCE_DIR, rel);
  return buf;
}

char *tu_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
  if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1))) {
    if (fread(buf, 1, (size_t)n, f) == (size_t)n) buf[n] = 0;
    else { free(buf); buf = NULL; }
  }
  fclose(f);
  if (len) *len = buf ? (size_t)n : 0;
  return buf;
}

int tu_run(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* ---------------------------------------------------- random masks */

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"   /* depth-bounded strings */
#endif
unsigned tu_rnd(TuRng *r, unsigned n) {
  r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL;
  return (unsigned)(r->s >> 33) % n;
}

static void gen_int(TuRng *r, char *out, size_t n, int depth, bool grid) {
  char a[512], b[512];
  /* h now and then: values of neither q nor k (per-head bounds) */
  static const char *leaves[] = { "q", "k", "q", "k", "q", "k", "h" };
  static const char *gleaves[] = { "q:coord(0)", "k:coord(0)", "q:coord(1)", "k:coord(1)", "h" };
  unsigned pick = depth <= 0 ? tu_rnd(r, 3) : tu_rnd(r, 11);
  switch (pick) {
  case 0: case 1:
    snprintf(out, n, "%s", grid ? gleaves[tu_rnd(r, 5)] : leaves[tu_rnd(r, 7)]);
    return;
  case 2: snprintf(out, n, "%d", (int)tu_rnd(r, 60) - 20); return;
  case 3: gen_int(r, a, sizeof a, depth - 1, grid); gen_int(r, b, sizeof b, depth - 1, grid);
    snprintf(out, n, "(%s + %s)", a, b); return;
  case 4: gen_int(r, a, sizeof a, depth - 1, grid); gen_int(r, b, sizeof b, depth - 1, grid);
    snprintf(out, n, "(%s - %s)", a, b); return;
  case 5: gen_int(r, a, sizeof a, depth - 1, grid);
    snprintf(out, n, "(%s * %d)", a, (int)tu_rnd(r, 7) - 3); return;
  case 6: gen_int(r, a, sizeof a, depth - 1, grid);
    snprintf(out, n, "(%s // %d)", a, (int)tu_rnd(r, 9) + 1); return;
  case 7: gen_int(r, a, sizeof a, depth - 1, grid);
    snprintf(out, n, "(%s %% %d)", a, (int)tu_rnd(r, 9) + 1); return;
  case 8: gen_int(r, a, sizeof a, depth - 1, grid);
    snprintf(out, n, "a.abs(%s)", a); return;
  case 9: gen_int(r, a, sizeof a, depth - 1, grid); gen_int(r, b, sizeof b, depth - 1, grid);
    snprintf(out, n, "a.min(%s, %s)", a, b); return;
  default: gen_int(r, a, sizeof a, depth - 1, grid); gen_int(r, b, sizeof b, depth - 1, grid);
    snprintf(out, n, "a.max(%s, %s)", a, b); return;
  }
}

void tu_gen_mask(TuRng *r, char *out, size_t n, int depth, bool grid) {
  char a[1024], b[1024];
  static const char *cmps[] = { "lt", "le", "gt", "ge", "eq", "ne" };
  unsigned pick = depth <= 0 ? 0 : tu_rnd(r, 5);
  switch (pick) {
  case 0: case 1:
    gen_int(r, a, sizeof a, 2, grid);
    gen_int(r, b, sizeof b, 2, grid);
    snprintf(out, n, "(%s):%s(%s)", a, cmps[tu_rnd(r, 6)], b);
    return;
  case 2: tu_gen_mask(r, a, sizeof a, depth - 1, grid); tu_gen_mask(r, b, sizeof b, depth - 1, grid);
    snprintf(out, n, "(%s & %s)", a, b); return;
  case 3: tu_gen_mask(r, a, sizeof a, depth - 1, grid); tu_gen_mask(r, b, sizeof b, depth - 1, grid);
    snprintf(out, n, "(%s | %s)", a, b); return;
  default: tu_gen_mask(r, a, sizeof a, depth - 1, grid);
    snprintf(out, n, "~(%s)", a); return;
  }
}

void tu_gen_spec(TuRng *r, bool grid, char mask[TU_MASK_MAX], char src[TU_SPEC_MAX]) {
  tu_gen_mask(r, mask, TU_MASK_MAX, 2, grid);
  snprintf(src, TU_SPEC_MAX, "local a = require 'attnc'\nreturn a.pattern { %s mask = a.mask(function(b, h, q, k) return %s end) }",
           grid ? "grid = {9, 13}," : "", mask);
}

int tu_random_specs(attnc_ctx *ctx, uint64_t seed, int n, attnc_spec **specs,
                    char (*masks)[TU_MASK_MAX]) {
  TuRng r = { seed };
  int m = 0;
  for (int tries = 0; m < n && tries < 25 * n; tries++) {
    char mask[TU_MASK_MAX], src[TU_SPEC_MAX];
    tu_gen_spec(&r, m % 2 == 1, mask, src);
    attnc_error err;
    if (attnc_spec_load_string(ctx, "fuzz.lua", src, NULL, 0, &specs[m], &err) != ATTNC_OK) continue;
    if (masks) memcpy(masks[m], mask, TU_MASK_MAX);
    m++;
  }
  return m;
}

/* ------------------------------------------------------------- threads */

int tu_nthreads(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > 8 ? 8 : (int)n;
}

typedef struct TuPool {
  void (*fn)(void *ud, int i);
  void *ud;
  int n, next;
  pthread_mutex_t lock;
} TuPool;

static void *tu_worker(void *arg) {
  TuPool *p = arg;
  for (;;) {
    pthread_mutex_lock(&p->lock);
    int i = p->next++;
    pthread_mutex_unlock(&p->lock);
    if (i >= p->n) return NULL;
    p->fn(p->ud, i);
  }
}

void tu_parallel(int n, void (*fn)(void *ud, int i), void *ud) {
  TuPool pool = { .fn = fn, .ud = ud, .n = n };
  pthread_mutex_init(&pool.lock, NULL);
  int nt = tu_nthreads();
  pthread_t th[8];
  for (int t = 0; t < nt; t++) pthread_create(&th[t], NULL, tu_worker, &pool);
  for (int t = 0; t < nt; t++) pthread_join(th[t], NULL);
  pthread_mutex_destroy(&pool.lock);
}
