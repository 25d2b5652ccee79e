/*
** hello.c -- attnc as a library: compile an attention pattern given as a
** string (sliding window with attention sinks, plus a softcap on the
** scores), run it on random tensors on the CPU (the cpu target when this
** attnc has it, else the reference executor) and, where a GPU is present,
** on the GPU; compare each with the reference executor.
**
**   cc hello.c $(pkg-config --cflags --libs attnc) -o hello     (or CMake:
**   find_package(attnc) + target_link_libraries(hello attnc::attnc))
**   ./hello [S]          exit 0 when every result matches the reference
**
** Only include/attnc.h is used. Tensors are DLPack views of host memory;
** an application with its own GPU buffers passes kDLCUDA tensors and a
** stream instead (docs/api.md).
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <attnc.h>

static const char *SPEC =
  "local a = require 'attnc'\n"
  "local window = a.param('window', 32, { min = 1 })\n"
  "local sinks = a.param('sinks', 4, { min = 0 })\n"
  "return a.pattern {\n"
  "  mask = a.sliding_window(window) | (a.causal() & a.sinks(sinks)),\n"
  "  score = a.softcap(20.0),\n"
  "}\n";

enum { B = 1, H = 4, HKV = 2, D = 64 };

/* float32 -> bfloat16, round to nearest even (inputs are finite) */
static uint16_t to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  u += 0x7fff + ((u >> 16) & 1);
  return (uint16_t)(u >> 16);
}

static float from_bf16(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static double max_abs_diff(const float *x, const double *ref, size_t n) {
  double e = 0;
  for (size_t i = 0; i < n; i++) {
    double d = isnan(x[i]) ? INFINITY : fabs(x[i] - ref[i]);
    if (d > e) e = d;
  }
  return e;
}

int main(int argc, char **argv) {
  int64_t S = argc > 1 ? atoll(argv[1]) : 300;
  if (S < 1 || S > 1 << 20) { fprintf(stderr, "hello: S must be in [1, 2^20]\n"); return 2; }
  printf("attnc %s\n", attnc_version());

  /* 1. a context and a spec from a string, with one param overridden */
  attnc_error err;
  attnc_ctx *ctx = attnc_ctx_new();
  attnc_spec *spec = NULL;
  attnc_define defs[] = { { "window", "64" } };
  if (!ctx || attnc_spec_load_string(ctx, "hello.lua", SPEC, defs, 1, &spec, &err)) {
    fprintf(stderr, "hello: %s\n", ctx ? err.message : "out of memory");
    return 1;
  }

  /* 2. random q, k, v [B, H, S, D] (k and v with HKV heads: GQA), BHSD */
  size_t nq = (size_t)(B * H * S * D), nk = (size_t)(B * HKV * S * D), nl = (size_t)(B * H * S);
  float *q = malloc(nq * 4), *k = malloc(nk * 4), *v = malloc(nk * 4), *o = malloc(nq * 4);
  float *lse = malloc(nl * 4), *lse_ref = malloc(nl * 4);
  double *o_ref = malloc(nq * 8);
  uint16_t *q16 = malloc(nq * 2), *k16 = malloc(nk * 2), *v16 = malloc(nk * 2), *o16 = malloc(nq * 2);
  if (!q || !k || !v || !o || !lse || !lse_ref || !o_ref || !q16 || !k16 || !v16 || !o16) {
    fprintf(stderr, "hello: out of memory\n");
    return 1;
  }
  srand(7);
  for (size_t i = 0; i < nq; i++) q[i] = (float)rand() / RAND_MAX * 2 - 1;
  for (size_t i = 0; i < nk; i++) k[i] = (float)rand() / RAND_MAX * 2 - 1;
  for (size_t i = 0; i < nk; i++) v[i] = (float)rand() / RAND_MAX * 2 - 1;

  int64_t qshape[4] = { B, H, S, D }, kshape[4] = { B, HKV, S, D }, lshape[3] = { B, H, S };
  DLDevice cpu = { kDLCPU, 0 };
  DLDataType f32 = { kDLFloat, 32, 1 }, f64 = { kDLFloat, 64, 1 }, bf16 = { kDLBfloat, 16, 1 };
  DLTensor tq = { q, cpu, 4, f32, qshape, NULL, 0 }, tk = { k, cpu, 4, f32, kshape, NULL, 0 };
  DLTensor tv = { v, cpu, 4, f32, kshape, NULL, 0 }, to = { o, cpu, 4, f32, qshape, NULL, 0 };
  DLTensor tl = { lse, cpu, 3, f32, lshape, NULL, 0 };
  DLTensor to_ref = { o_ref, cpu, 4, f64, qshape, NULL, 0 }, tl_ref = { lse_ref, cpu, 3, f32, lshape, NULL, 0 };

  /* 3. the reference: double precision, straight from the pattern */
  attnc_args ref = { .q = &tq, .k = &tk, .v = &tv, .o = &to_ref, .lse = &tl_ref };
  if (attnc_run_reference(spec, &ref, &err)) {
    fprintf(stderr, "hello: reference: %s\n", err.message);
    return 1;
  }

  /* 4. the CPU: compile once for (f32, D), run */
  int failed = 0;
  attnc_target cpu_target = attnc_target_available(ATTNC_TARGET_CPU) ? ATTNC_TARGET_CPU : ATTNC_TARGET_REF;
  attnc_compile_options co = { .target = cpu_target, .dtype = ATTNC_DTYPE_F32, .head_dim = D };
  attnc_kernel *kern = NULL;
  attnc_args args = { .q = &tq, .k = &tk, .v = &tv, .o = &to, .lse = &tl };
  if (attnc_kernel_compile(ctx, spec, &co, &kern, &err) || attnc_kernel_run(kern, &args, &err)) {
    fprintf(stderr, "hello: %s: %s\n", attnc_target_name(cpu_target), err.message);
    failed = 1;
  } else {
    double e = max_abs_diff(o, o_ref, nq);
    printf("%s: O [%d, %d, %lld, %d], max abs error vs reference %.3g: %s\n",
           attnc_target_name(cpu_target), B, H, (long long)S, D, e, e <= 1e-4 ? "ok" : "WRONG");
    failed |= !(e <= 1e-4);
  }
  attnc_kernel_free(kern);

  /* 5. the GPU, where this attnc has the cuda target and a device is
     present: bf16 tensors (host memory here: the target copies them) */
  if (attnc_target_available(ATTNC_TARGET_CUDA)) {
    for (size_t i = 0; i < nq; i++) q16[i] = to_bf16(q[i]), q[i] = from_bf16(q16[i]);
    for (size_t i = 0; i < nk; i++) k16[i] = to_bf16(k[i]), k[i] = from_bf16(k16[i]);
    for (size_t i = 0; i < nk; i++) v16[i] = to_bf16(v[i]), v[i] = from_bf16(v16[i]);
    if (attnc_run_reference(spec, &ref, &err)) {      /* on the same rounded values */
      fprintf(stderr, "hello: reference: %s\n", err.message);
      return 1;
    }
    DLTensor gq = { q16, cpu, 4, bf16, qshape, NULL, 0 }, gk = { k16, cpu, 4, bf16, kshape, NULL, 0 };
    DLTensor gv = { v16, cpu, 4, bf16, kshape, NULL, 0 }, go = { o16, cpu, 4, bf16, qshape, NULL, 0 };
    attnc_args ga = { .q = &gq, .k = &gk, .v = &gv, .o = &go };
    attnc_compile_options gco = { .target = ATTNC_TARGET_CUDA, .dtype = ATTNC_DTYPE_BF16, .head_dim = D };
    attnc_status st = attnc_kernel_compile(ctx, spec, &gco, &kern, &err);
    if (!st) st = attnc_kernel_run(kern, &ga, &err);
    if (st == ATTNC_ERR_NODEVICE)
      printf("cuda: skipped (%s)\n", err.message);
    else if (st) {
      fprintf(stderr, "hello: cuda: %s\n", err.message);
      failed = 1;
    } else {
      for (size_t i = 0; i < nq; i++) o[i] = from_bf16(o16[i]);
      double e = max_abs_diff(o, o_ref, nq);    /* bf16 output: a looser check */
      printf("cuda: max abs error vs reference %.3g: %s\n", e, e <= 2e-2 ? "ok" : "WRONG");
      failed |= !(e <= 2e-2);
    }
    attnc_kernel_free(kern);
  }

  attnc_spec_free(spec);          /* kernels first, then specs, then the context */
  attnc_ctx_free(ctx);
  free(q), free(k), free(v), free(o), free(lse), free(lse_ref), free(o_ref);
  free(q16), free(k16), free(v16), free(o16);
  return failed;
}
