/*
** test_threads.c -- one context used from 4 threads at once through the
** kernel API: each thread loads a different spec, compiles it and runs it
** (twice: the second run takes the kernel's specialisation), and compares
** with attnc_run_reference on the same tensors. Then 4 threads share one
** kernel compiled without a dtype or head dim, so that they race to build
** its specialisations (two head dims). The target is cpu when this build
** has it, else ref; the threads start together at a barrier.
*/
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/testutil.h"
#include "attnc.h"

#define NTHREADS 4
#define TOL 1e-4

typedef struct Job {
  const char *spec;                 /* under specs/ */
  attnc_define defs[3];
  int ndefs;
  int64_t B, H, Hkv, S, D;
  attnc_kernel *shared;             /* run this kernel instead of compiling one */
  unsigned seed;
  /* results */
  double err;
  char msg[1200];
} Job;

static attnc_ctx *ctx;
static pthread_barrier_t start;
static attnc_target target;

static float frand(unsigned *s) {
  *s = *s * 1103515245u + 12345u;
  return (float)((*s >> 8) % 20000) / 10000.0f - 1;
}

static DLTensor tensor(void *data, int ndim, int64_t *shape, DLDataType dt) {
  return (DLTensor){ data, { kDLCPU, 0 }, ndim, dt, shape, NULL, 0 };
}

/*
** One thread's work: random q, k, v (and doc segment ids when the spec
** declares "doc"), the kernel twice, the reference once; j->err is the
** max abs difference of O and LSE, j->msg an error if any.
*/
static void *worker(void *arg) {
  Job *j = arg;
  attnc_error err;
  attnc_spec *spec = NULL;
  attnc_kernel *kern = j->shared;
  size_t nq = (size_t)(j->B * j->H * j->S * j->D), nk = (size_t)(j->B * j->Hkv * j->S * j->D);
  size_t nl = (size_t)(j->B * j->H * j->S);
  float *q = malloc(nq * 4), *k = malloc(nk * 4), *v = malloc(nk * 4), *o = malloc(nq * 4);
  float *lse = malloc(nl * 4), *lse_ref = malloc(nl * 4);
  double *o_ref = malloc(nq * 8);
  int32_t *doc = malloc((size_t)j->S * 4);
  j->err = INFINITY;
  pthread_barrier_wait(&start);
  if (!q || !k || !v || !o || !lse || !lse_ref || !o_ref || !doc) {
    snprintf(j->msg, sizeof j->msg, "out of memory");
    goto out;
  }
  unsigned s = j->seed;
  for (size_t i = 0; i < nq; i++) q[i] = frand(&s);
  for (size_t i = 0; i < nk; i++) k[i] = frand(&s), v[i] = frand(&s);
  for (int64_t i = 0, id = 0; i < j->S; i++) {      /* documents of 1 .. 24 tokens */
    if (i > 0 && (s = s * 1103515245u + 12345u) % 24 == 0) id++;
    doc[i] = (int32_t)id;
  }
  if (attnc_spec_load_file(ctx, tu_path(j->spec), j->defs, j->ndefs, &spec, &err)) {
    snprintf(j->msg, sizeof j->msg, "load: %s", err.message);
    goto out;
  }
  attnc_compile_options co = { .target = target, .dtype = ATTNC_DTYPE_F32, .head_dim = (int)j->D,
                               .seq_hint = j->S };
  if (!kern && attnc_kernel_compile(ctx, spec, &co, &kern, &err)) {
    snprintf(j->msg, sizeof j->msg, "compile: %s", err.message);
    goto out;
  }
  int64_t qs[4] = { j->B, j->H, j->S, j->D }, ks[4] = { j->B, j->Hkv, j->S, j->D };
  int64_t ls[3] = { j->B, j->H, j->S }, ds[1] = { j->S };
  DLDataType f32 = { kDLFloat, 32, 1 }, f64 = { kDLFloat, 64, 1 }, i32 = { kDLInt, 32, 1 };
  DLTensor tq = tensor(q, 4, qs, f32), tk = tensor(k, 4, ks, f32), tv = tensor(v, 4, ks, f32);
  DLTensor to = tensor(o, 4, qs, f32), tl = tensor(lse, 3, ls, f32), td = tensor(doc, 1, ds, i32);
  DLTensor tor = tensor(o_ref, 4, qs, f64), tlr = tensor(lse_ref, 3, ls, f32);
  attnc_named_tensor in = { "doc", &td };
  int nin = attnc_spec_ninputs(spec);
  attnc_args a = { .q = &tq, .k = &tk, .v = &tv, .o = &to, .lse = &tl, .inputs = &in, .ninputs = nin };
  attnc_args r = a;
  r.o = &tor, r.lse = &tlr;
  for (int rep = 0; rep < 2; rep++) {
    memset(o, 0xff, nq * 4);                          /* NaN: unwritten shows */
    if (attnc_kernel_run(kern, &a, &err)) {
      snprintf(j->msg, sizeof j->msg, "run %d: %s", rep, err.message);
      goto out;
    }
  }
  if (attnc_run_reference(spec, &r, &err)) {
    snprintf(j->msg, sizeof j->msg, "reference: %s", err.message);
    goto out;
  }
  double e = 0;
  for (size_t i = 0; i < nq; i++) {
    double d = isnan(o[i]) ? INFINITY : fabs(o[i] - o_ref[i]);
    if (d > e) e = d;
  }
  for (size_t i = 0; i < nl; i++) {
    double d = isinf(lse_ref[i]) ? (lse[i] == lse_ref[i] ? 0 : INFINITY)
             : isnan(lse[i]) ? INFINITY : fabs(lse[i] - lse_ref[i]);
    if (d > e) e = d;
  }
  j->err = e;
out:
  if (kern != j->shared) attnc_kernel_free(kern);
  attnc_spec_free(spec);
  free(q), free(k), free(v), free(o), free(lse), free(lse_ref), free(o_ref), free(doc);
  return NULL;
}

static void run_jobs(Job *jobs) {
  pthread_t th[NTHREADS];
  ck_assert_int_eq(pthread_barrier_init(&start, NULL, NTHREADS), 0);
  for (int i = 0; i < NTHREADS; i++) ck_assert_int_eq(pthread_create(&th[i], NULL, worker, &jobs[i]), 0);
  for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
  pthread_barrier_destroy(&start);
  for (int i = 0; i < NTHREADS; i++)
    ck_assert_msg(jobs[i].msg[0] == 0 && jobs[i].err <= TOL, "%s on %s (thread %d): %s (max abs error %g)",
                  jobs[i].spec, attnc_target_name(target), i, jobs[i].msg, jobs[i].err);
}

static void setup(void) {
  target = attnc_target_available(ATTNC_TARGET_CPU) ? ATTNC_TARGET_CPU : ATTNC_TARGET_REF;
  ctx = attnc_ctx_new();
  ck_assert_ptr_nonnull(ctx);
}

static void teardown(void) { attnc_ctx_free(ctx); }

/* four specs at once: 1-D range, window, 2-D grid box, runtime data (GQA, ragged S) */
START_TEST(different_specs) {
  Job jobs[NTHREADS] = {
    { .spec = "specs/causal.lua", .B = 1, .H = 2, .Hkv = 1, .S = 150, .D = 32, .seed = 1 },
    { .spec = "specs/sliding_window.lua", .defs = { { "window", "24" } }, .ndefs = 1,
      .B = 2, .H = 2, .Hkv = 2, .S = 97, .D = 64, .seed = 2 },
    { .spec = "specs/neighborhood2d.lua", .defs = { { "height", "8" }, { "width", "12" }, { "kernel", "5" } },
      .ndefs = 3, .B = 1, .H = 4, .Hkv = 2, .S = 96, .D = 32, .seed = 3 },
    { .spec = "specs/document.lua", .B = 1, .H = 2, .Hkv = 2, .S = 130, .D = 32, .seed = 4 },
  };
  run_jobs(jobs);
}
END_TEST

/* one kernel, no dtype or head dim given: four threads race to specialise it */
START_TEST(shared_kernel) {
  attnc_spec *spec;
  attnc_kernel *kern;
  attnc_error err;
  ck_assert_msg(attnc_spec_load_file(ctx, tu_path("specs/sinks.lua"), NULL, 0, &spec, &err) == ATTNC_OK,
                "%s", err.message);
  attnc_compile_options co = { .target = target };
  ck_assert_msg(attnc_kernel_compile(ctx, spec, &co, &kern, &err) == ATTNC_OK, "%s", err.message);
  Job jobs[NTHREADS];
  for (int i = 0; i < NTHREADS; i++)
    jobs[i] = (Job){ .spec = "specs/sinks.lua", .B = 1, .H = 2, .Hkv = 1, .S = 70 + 10 * i,
                     .D = i % 2 ? 64 : 32, .shared = kern, .seed = 10u + (unsigned)i };
  run_jobs(jobs);
  attnc_kernel_info info;
  attnc_kernel_info_get(kern, &info);
  ck_assert_int_eq(info.nspecialisations, 2);        /* D = 32 and 64, built once each */
  attnc_kernel_free(kern);
  attnc_spec_free(spec);
}
END_TEST

int main(void) {
  Suite *s = suite_create("threads");
  TCase *tc = tcase_create("one context, four threads");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, different_specs);
  tcase_add_test(tc, shared_kernel);
  suite_add_tcase(s, tc);
  return tu_run(s);
}
