/*
** driver.c -- times attnc's CPU kernels for bench/cpu/bench.py.
**
**   driver PATTERN B H S D DTYPE THREADS REPS [DIR|-] [NAME=VALUE...]
**
** PATTERN is dense, causal, window:W (sliding, causal, W keys) or a spec
** file (.lua) with params NAME=VALUE. With DIR, q, k, v are read from
** DIR/{q,k,v}.bin (float32, BHSD) and O is written to DIR/o.bin; otherwise
** (or "-") inputs are random. The kernel follows the cpu plan (passes/)
** unless ATTNC_CPU_NOPLAN is set. Prints one JSON line: compile and
** per-call times, and GFLOP/s (4*D per allowed pair per head) for the
** built-in patterns, whose allowed pairs are known in closed form.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "backend/cpu/cpu.h"
#include "runtime/pool.h"
#include "runtime/runtime.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint16_t to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  u += 0x7fff + ((u >> 16) & 1);
  return (uint16_t)(u >> 16);
}

static float *read_or_random(const char *dir, const char *name, size_t n) {
  float *x = malloc(n * sizeof *x);
  if (dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f || fread(x, sizeof *x, n, f) != n) { fprintf(stderr, "driver: cannot read %s\n", path); exit(2); }
    fclose(f);
  } else {
    uint64_t s = 0x9e3779b97f4a7c15ull ^ (uint64_t)name[0];
    for (size_t i = 0; i < n; i++) {
      s ^= s << 13; s ^= s >> 7; s ^= s << 17;
      x[i] = (float)((double)(s >> 11) / (double)(1ull << 53) * 2 - 1);
    }
  }
  return x;
}

int main(int argc, char **argv) {
  if (argc < 9) {
    fprintf(stderr, "usage: driver PATTERN B H S D DTYPE THREADS REPS [DIR]\n");
    return 2;
  }
  const char *pat = argv[1];
  int64_t B = atoll(argv[2]), H = atoll(argv[3]), S = atoll(argv[4]), D = atoll(argv[5]);
  IrDtype dt = strcmp(argv[6], "bf16") == 0 ? DT_BF16 : DT_F32;
  int threads = atoi(argv[7]), reps = atoi(argv[8]);
  const char *dir = argc > 9 && strcmp(argv[9], "-") != 0 ? argv[9] : NULL;
  attnc_define defs[16];
  int ndefs = 0;
  for (int i = 10; i < argc && ndefs < 16; i++) {
    char *eq = strchr(argv[i], '=');
    if (!eq) continue;
    *eq = 0;
    defs[ndefs++] = (attnc_define){ argv[i], eq + 1 };
  }

  Arena arena;
  arena_init(&arena);
  Diag d = { 0 };
  IrPattern *p = NULL;
  attnc_ctx *ctx = NULL;
  attnc_spec *spec = NULL;
  double pairs = (double)S * (double)S;
  if (strstr(pat, ".lua")) {
    ctx = attnc_ctx_new();
    attnc_error err;
    if (attnc_spec_load_file(ctx, pat, defs, ndefs, &spec, &err)) { fprintf(stderr, "driver: %s\n", err.message); return 2; }
    p = spec->pat;
    pairs = -1;
  } else {
    p = ir_pattern_new(&arena, "bench");
    p->name = "bench";
    p->score = -1;
    p->mask = -1;
    int q = ir_leaf(p, IR_Q, 0, 1), k = ir_leaf(p, IR_K, 0, 1);
    if (strcmp(pat, "causal") == 0) {
      p->mask = ir_node(p, IR_LE, (int[]){ k, q }, 2, 0, 1, &d);
      pairs = (double)S * (double)(S + 1) / 2;
    } else if (strncmp(pat, "window:", 7) == 0) {
      int64_t W = atoll(pat + 7);
      int diff = ir_node(p, IR_SUB, (int[]){ q, k }, 2, 0, 1, &d);
      int a = ir_node(p, IR_GE, (int[]){ diff, ir_const_int(p, 0, 1) }, 2, 0, 1, &d);
      int b = ir_node(p, IR_LT, (int[]){ diff, ir_const_int(p, W, 1) }, 2, 0, 1, &d);
      p->mask = ir_node(p, IR_AND, (int[]){ a, b }, 2, 0, 1, &d);
      pairs = 0;
      for (int64_t i = 0; i < S; i++) pairs += (double)(i + 1 < W ? i + 1 : W);
    }
  }
  size_t n = (size_t)(B * H * S * D);
  float *qf = read_or_random(dir, "q", n), *kf = read_or_random(dir, "k", n), *vf = read_or_random(dir, "v", n);
  void *q = qf, *k = kf, *v = vf, *o;
  size_t es = dt == DT_BF16 ? 2 : 4;
  if (dt == DT_BF16) {
    uint16_t *qb = malloc(n * 2), *kb = malloc(n * 2), *vb = malloc(n * 2);
    for (size_t i = 0; i < n; i++) { qb[i] = to_bf16(qf[i]); kb[i] = to_bf16(kf[i]); vb[i] = to_bf16(vf[i]); }
    q = qb; k = kb; v = vb;
  }
  o = calloc(n, es);
  int64_t shape[4] = { B, H, S, D };
  DLDataType dl = dt == DT_BF16 ? (DLDataType){ kDLBfloat, 16, 1 } : (DLDataType){ kDLFloat, 32, 1 };
  DLTensor tq = { q, { kDLCPU, 0 }, 4, dl, shape, NULL, 0 }, tk = tq, tv = tq, to = tq;
  tk.data = k; tv.data = v; to.data = o;
  attnc_args args = { .q = &tq, .k = &tk, .v = &tv, .o = &to };

  CpuOptions opt = { .dtype = dt, .D = (int)D, .Dv = (int)D };
  Plan *plan = NULL;
  if (!getenv("ATTNC_CPU_NOPLAN") && cpu_plan(&arena, p, B, H, S, S, D, NULL, &plan, &d)) {
    fprintf(stderr, "driver: %s\n", d.msg);
    return 3;
  }
  opt.plan = plan;
  CpuKernel *kern = NULL;
  if (cpu_compile(p, &opt, &kern, &d)) { fprintf(stderr, "driver: %s\n", d.msg); return 3; }
  Pool *pool = pool_new(threads);
  CpuExecutor ex = { pool_parallel_for, pool };
  if (cpu_run(kern, p, &args, &ex, &d)) { fprintf(stderr, "driver: %s\n", d.msg); return 3; }
  double best = 1e30, total = 0;
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    cpu_run(kern, p, &args, &ex, &d);
    double t = now() - t0;
    total += t;
    if (t < best) best = t;
  }
  if (dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/o.bin", dir);
    FILE *f = fopen(path, "wb");
    float *of = malloc(n * sizeof *of);
    for (size_t i = 0; i < n; i++) {
      if (dt == DT_BF16) { uint32_t u = (uint32_t)((uint16_t *)o)[i] << 16; memcpy(&of[i], &u, 4); }
      else of[i] = ((float *)o)[i];
    }
    fwrite(of, sizeof *of, n, f);
    fclose(f);
    free(of);
  }
  double flops = pairs >= 0 ? 4.0 * (double)D * pairs * (double)(B * H) : -1;
  int bm, bn;
  cpu_kernel_tiles(kern, &bm, &bn);
  printf("{\"pattern\": \"%s\", \"B\": %lld, \"H\": %lld, \"S\": %lld, \"D\": %lld, \"dtype\": \"%s\", "
         "\"threads\": %d, \"tile\": [%d, %d], \"compile_ms\": %.1f, \"best_ms\": %.3f, \"mean_ms\": %.3f, "
         "\"gflops\": %.2f, \"iterator\": \"%s\"}\n",
         pat, (long long)B, (long long)H, (long long)S, (long long)D, ir_dtype_name(dt), pool_size(pool), bm, bn,
         cpu_kernel_compile_ms(kern), best * 1e3, total / reps * 1e3, flops > 0 ? flops / best * 1e-9 : -1.0,
         plan ? plan_iter_name(plan->variants[0].it.kind) : "dense (no plan)");
  cpu_kernel_free(kern);
  pool_free(pool);
  arena_free(&arena);
  if (spec) attnc_spec_free(spec);
  if (ctx) attnc_ctx_free(ctx);
  return 0;
}
