/*
** test_api.c -- the public API end to end: contexts, specs from strings
** and files with -D overrides, the IR text, runtime inputs, the reference
** executor, errors as values (never a crash, also when allocations fail),
** and one context shared by several threads.
*/
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/testutil.h"
#include "attnc.h"

static const char *CAUSAL =
  "local a = require 'attnc'\n"
  "return a.pattern { mask = function(b, h, q, k) return k:le(q) end }\n";

static const char *WINDOW =
  "local a = require 'attnc'\n"
  "local w = a.param('window', 4)\n"
  "return a.pattern {\n"
  "  mask = function(b, h, q, k) local d = q - k; return d:ge(0) & d:lt(w) end,\n"
  "}\n";

static const char *DOC =
  "local a = require 'attnc'\n"
  "local doc = a.input('doc', 'i32', {'S'})\n"
  "return a.pattern { mask = function(b, h, q, k) return doc[q]:eq(doc[k]) end }\n";

/* ------------------------------------------------------------ tensors */

enum { B = 1, H = 2, S = 9, D = 4 };

typedef struct Io {
  float q[B][H][S][D], k[B][H][S][D], v[B][H][S][D], o[B][H][S][D], lse[B][H][S];
  int64_t s4[4], s3[3];
  DLTensor tq, tk, tv, to, tl;
  attnc_args args;
} Io;

static void io_init(Io *io, unsigned seed) {
  memset(io, 0, sizeof *io);
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++)
      for (int s = 0; s < S; s++)
        for (int d = 0; d < D; d++) {
          seed = seed * 1103515245u + 12345u;
          io->q[b][h][s][d] = (float)((seed >> 8) % 1000) / 500.0f - 1;
          io->k[b][h][s][d] = (float)((seed >> 4) % 1000) / 500.0f - 1;
          io->v[b][h][s][d] = (float)((seed >> 12) % 1000) / 500.0f - 1;
        }
  int64_t s4[4] = { B, H, S, D }, s3[3] = { B, H, S };
  memcpy(io->s4, s4, sizeof s4);
  memcpy(io->s3, s3, sizeof s3);
  DLDataType f32 = { kDLFloat, 32, 1 };
  DLDevice cpu = { kDLCPU, 0 };
  io->tq = (DLTensor){ io->q, cpu, 4, f32, io->s4, NULL, 0 };
  io->tk = (DLTensor){ io->k, cpu, 4, f32, io->s4, NULL, 0 };
  io->tv = (DLTensor){ io->v, cpu, 4, f32, io->s4, NULL, 0 };
  io->to = (DLTensor){ io->o, cpu, 4, f32, io->s4, NULL, 0 };
  io->tl = (DLTensor){ io->lse, cpu, 3, f32, io->s3, NULL, 0 };
  io->args = (attnc_args){ .q = &io->tq, .k = &io->tk, .v = &io->tv, .o = &io->to, .lse = &io->tl };
}

/* the largest error of io->o against softmax attention under allowed(q, k) */
static double io_error(const Io *io, bool (*allowed)(int q, int k, const void *ud), const void *ud) {
  double worst = 0;
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++)
      for (int q = 0; q < S; q++) {
        double den = 0, num[D] = { 0 };
        for (int k = 0; k < S; k++) {
          if (!allowed(q, k, ud)) continue;
          double s = 0;
          for (int d = 0; d < D; d++) s += (double)io->q[b][h][q][d] * io->k[b][h][k][d];
          double w = exp(s / sqrt((double)D));
          den += w;
          for (int d = 0; d < D; d++) num[d] += w * io->v[b][h][k][d];
        }
        for (int d = 0; d < D; d++) {
          double e = fabs(io->o[b][h][q][d] - (den > 0 ? num[d] / den : 0));
          if (e > worst) worst = e;
        }
        if (den > 0) {
          double e = fabs(io->lse[b][h][q] - log(den));
          if (e > worst) worst = e;
        } else if (!(isinf(io->lse[b][h][q]) && io->lse[b][h][q] < 0))
          worst = INFINITY;
      }
  return worst;
}

static bool a_causal(int q, int k, const void *ud) { return k <= q; }
static bool a_window(int q, int k, const void *ud) { int w = *(const int *)ud; return q - k >= 0 && q - k < w; }
static bool a_doc(int q, int k, const void *ud) { const int32_t *d = ud; return d[q] == d[k]; }

/* ------------------------------------------------------------ tests */

START_TEST(names) {
  ck_assert_str_eq(attnc_version(), "0.1.0");
  ck_assert_str_eq(attnc_status_name(ATTNC_OK), "ok");
  ck_assert_str_eq(attnc_status_name(ATTNC_ERR_SPEC), "spec error");
  ck_assert_str_eq(attnc_status_name((attnc_status)99), "unknown status");
  ck_assert_str_eq(attnc_target_name(ATTNC_TARGET_REF), "ref");
  ck_assert_str_eq(attnc_target_name(ATTNC_TARGET_CPU), "cpu");
  ck_assert_str_eq(attnc_target_name(ATTNC_TARGET_CUDA), "cuda");
}
END_TEST

START_TEST(causal_string) {
  attnc_ctx *ctx = attnc_ctx_new();
  attnc_spec *spec = NULL;
  attnc_error err;
  ck_assert_int_eq(attnc_spec_load_string(ctx, "causal.lua", CAUSAL, NULL, 0, &spec, &err), ATTNC_OK);
  ck_assert_int_eq(err.status, ATTNC_OK);
  ck_assert_int_eq(attnc_spec_ninputs(spec), 0);
  ck_assert_ptr_null(attnc_spec_input_name(spec, 0));
  ck_assert_ptr_nonnull(attnc_spec_name(spec));
  char *ir = attnc_spec_ir(spec);
  ck_assert_ptr_nonnull(ir);
  ck_assert_ptr_nonnull(strstr(ir, "mask %"));
  ck_assert_ptr_nonnull(strstr(ir, "= le "));
  free(ir);
  static Io io;
  io_init(&io, 1);
  ck_assert_int_eq(attnc_run_reference(spec, &io.args, &err), ATTNC_OK);
  ck_assert_double_le(io_error(&io, a_causal, NULL), 1e-6);
  attnc_spec_free(spec);
  attnc_ctx_free(ctx);
}
END_TEST

START_TEST(defines) {
  attnc_ctx *ctx = attnc_ctx_new();
  attnc_spec *spec = NULL;
  attnc_error err;
  attnc_define defs[] = { { "window", "3" } };
  ck_assert_int_eq(attnc_spec_load_string(ctx, "w.lua", WINDOW, defs, 1, &spec, &err), ATTNC_OK);
  static Io io;
  io_init(&io, 2);
  ck_assert_int_eq(attnc_run_reference(spec, &io.args, &err), ATTNC_OK);
  int w = 3;
  ck_assert_double_le(io_error(&io, a_window, &w), 1e-6);
  attnc_spec_free(spec);

  /* an unknown -D is an error that names it */
  attnc_define bad[] = { { "windw", "3" } };
  ck_assert_int_eq(attnc_spec_load_string(ctx, "w.lua", WINDOW, bad, 1, &spec, &err), ATTNC_ERR_SPEC);
  ck_assert_ptr_null(spec);
  ck_assert_ptr_nonnull(strstr(err.message, "windw"));
  /* so is a value of the wrong type */
  attnc_define str[] = { { "window", "wide" } };
  ck_assert_int_ne(attnc_spec_load_string(ctx, "w.lua", WINDOW, str, 1, &spec, &err), ATTNC_OK);
  ck_assert_ptr_nonnull(strstr(err.message, "window"));
  attnc_ctx_free(ctx);
}
END_TEST

START_TEST(inputs) {
  attnc_ctx *ctx = attnc_ctx_new();
  attnc_spec *spec = NULL;
  attnc_error err;
  ck_assert_int_eq(attnc_spec_load_string(ctx, "doc.lua", DOC, NULL, 0, &spec, &err), ATTNC_OK);
  ck_assert_int_eq(attnc_spec_ninputs(spec), 1);
  ck_assert_str_eq(attnc_spec_input_name(spec, 0), "doc");
  static Io io;
  io_init(&io, 3);
  ck_assert_int_eq(attnc_run_reference(spec, &io.args, &err), ATTNC_ERR_ARG);
  ck_assert_str_eq(err.message, "doc.lua:2: missing runtime input 'doc' (i32 [Sq]): pass --input doc=FILE.npy");

  static const int32_t doc[S] = { 0, 0, 1, 1, 1, 1, 2, 3, 3 };
  DLTensor td = { (void *)doc, { kDLCPU, 0 }, 1, { kDLInt, 32, 1 }, (int64_t[]){ S }, NULL, 0 };
  attnc_named_tensor nt = { "doc", &td };
  io.args.inputs = &nt;
  io.args.ninputs = 1;
  ck_assert_int_eq(attnc_run_reference(spec, &io.args, &err), ATTNC_OK);
  ck_assert_double_le(io_error(&io, a_doc, doc), 1e-6);
  attnc_spec_free(spec);
  attnc_ctx_free(ctx);
}
END_TEST

START_TEST(files) {
  attnc_ctx *ctx = attnc_ctx_new();
  attnc_spec *spec = NULL;
  attnc_error err;
  ck_assert_int_eq(attnc_spec_load_file(ctx, "/nonexistent/x.lua", NULL, 0, &spec, &err), ATTNC_ERR_IO);
  ck_assert_ptr_nonnull(strstr(err.message, "/nonexistent/x.lua"));
  ck_assert_ptr_null(spec);
  if (attnc_spec_load_file(ctx, tu_path("specs/causal.lua"), NULL, 0, &spec, &err) == ATTNC_OK) {
    static Io io;
    io_init(&io, 4);
    ck_assert_int_eq(attnc_run_reference(spec, &io.args, &err), ATTNC_OK);
    ck_assert_double_le(io_error(&io, a_causal, NULL), 1e-6);
    attnc_spec_free(spec);
  } else
    ck_abort_msg("specs/causal.lua: %s", err.message);
  attnc_ctx_free(ctx);
}
END_TEST

START_TEST(spec_errors) {
  attnc_ctx *ctx = attnc_ctx_new();
  attnc_spec *spec = (attnc_spec *)&spec;
  attnc_error err;
  ck_assert_int_eq(attnc_spec_load_string(ctx, "bad.lua", "return {\n", NULL, 0, &spec, &err), ATTNC_ERR_SPEC);
  ck_assert_ptr_null(spec);
  ck_assert_msg(strncmp(err.message, "bad.lua:", 8) == 0, "%s", err.message);
  ck_assert_int_eq(attnc_spec_load_string(ctx, "lt.lua",
                   "local a = require 'attnc'\n"
                   "return a.pattern { mask = function(b, h, q, k) return k < q end }\n",
                   NULL, 0, &spec, &err), ATTNC_ERR_SPEC);
  ck_assert_msg(strncmp(err.message, "lt.lua:2:", 9) == 0, "%s", err.message);
  /* no crash on NULLs, and err may be NULL */
  ck_assert_int_eq(attnc_spec_load_string(NULL, "x", CAUSAL, NULL, 0, &spec, &err), ATTNC_ERR_ARG);
  ck_assert_int_eq(attnc_spec_load_string(ctx, "x", NULL, NULL, 0, &spec, &err), ATTNC_ERR_ARG);
  ck_assert_int_eq(attnc_spec_load_string(ctx, "x", CAUSAL, NULL, 0, NULL, NULL), ATTNC_ERR_ARG);
  ck_assert_int_eq(attnc_spec_load_file(ctx, NULL, NULL, 0, &spec, NULL), ATTNC_ERR_ARG);
  ck_assert_int_eq(attnc_spec_load_string(ctx, "x", CAUSAL, NULL, 2, &spec, &err), ATTNC_ERR_ARG);
  ck_assert_int_eq(attnc_run_reference(NULL, NULL, &err), ATTNC_ERR_ARG);
  ck_assert_ptr_null(attnc_spec_ir(NULL));
  ck_assert_ptr_null(attnc_spec_name(NULL));
  ck_assert_int_eq(attnc_spec_ninputs(NULL), 0);
  attnc_spec_free(NULL);
  attnc_ctx_free(NULL);
  attnc_ctx_free(ctx);
}
END_TEST

/* every allocation of a load in turn fails: an error, never a crash */
START_TEST(alloc_failures) {
  attnc_ctx *ctx = attnc_ctx_new();
  int failed = 0;
  for (long n = 0; n < 400; n++) {
    attnc_spec *spec = NULL;
    attnc_error err;
    arena_fail_after(n);
    attnc_status st = attnc_spec_load_string(ctx, "doc.lua", DOC, NULL, 0, &spec, &err);
    arena_fail_after(-1);
    if (st == ATTNC_OK) {
      char *ir = attnc_spec_ir(spec);
      ck_assert_ptr_nonnull(ir);
      free(ir);
      attnc_spec_free(spec);
      break;
    }
    failed++;
    ck_assert_ptr_null(spec);
    ck_assert_msg(err.message[0] != 0, "no message after allocation %ld failed", n);
  }
  ck_assert_int_gt(failed, 0);
  attnc_ctx_free(ctx);
}
END_TEST

/* one context, four threads, each loading and running its own spec */
typedef struct Job { attnc_ctx *ctx; int id; double error; attnc_status st; } Job;

static void *job(void *arg) {
  Job *j = arg;
  static const int w = 4;
  for (int rep = 0; rep < 5; rep++) {
    attnc_spec *spec = NULL;
    attnc_error err;
    const char *src = j->id % 2 ? WINDOW : CAUSAL;
    j->st = attnc_spec_load_string(j->ctx, "t.lua", src, NULL, 0, &spec, &err);
    if (j->st) return NULL;
    Io *io = malloc(sizeof *io);
    io_init(io, (unsigned)(j->id * 10 + rep));
    j->st = attnc_run_reference(spec, &io->args, &err);
    double e = io_error(io, j->id % 2 ? a_window : a_causal, &w);
    if (e > j->error) j->error = e;
    free(io);
    attnc_spec_free(spec);
    if (j->st) return NULL;
  }
  return NULL;
}

START_TEST(threads) {
  attnc_ctx *ctx = attnc_ctx_new();
  pthread_t t[4];
  Job jobs[4];
  for (int i = 0; i < 4; i++) {
    jobs[i] = (Job){ ctx, i, 0, ATTNC_OK };
    ck_assert_int_eq(pthread_create(&t[i], NULL, job, &jobs[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    ck_assert_int_eq(jobs[i].st, ATTNC_OK);
    ck_assert_double_le(jobs[i].error, 1e-6);
  }
  attnc_ctx_free(ctx);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("api");
  TCase *tc = tcase_create("api");
  tcase_add_test(tc, names);
  tcase_add_test(tc, causal_string);
  tcase_add_test(tc, defines);
  tcase_add_test(tc, inputs);
  tcase_add_test(tc, files);
  tcase_add_test(tc, spec_errors);
  tcase_add_test(tc, alloc_failures);
  tcase_add_test(tc, threads);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run(suite()); }
