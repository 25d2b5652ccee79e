/*
** test_tunedb.c -- the tuning database (runtime/tunedb.h): bucket keys,
** a save / load round trip, nearest-entry matching, corrupt files (a
** warning, never a crash), atomic writes (no temp file left, an old file
** kept when a write fails) and attnc_kernel_compile picking an entry up.
*/
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/testutil.h"
#include "attnc.h"
#include "runtime/runtime.h"
#include "runtime/tunedb.h"

static const char *CAUSAL =
  "local a = require 'attnc'\n"
  "return a.pattern { mask = function(b, h, q, k) return k:le(q) end }\n";

static char dir[256];

static void make_dir(void) {
  snprintf(dir, sizeof dir, "/tmp/attnc_tunedb_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void rm_tree(const char *d) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
  ck_assert_int_eq(system(cmd), 0);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

/* files in folder d whose name contains s */
static int count_files(const char *d, const char *s) {
  DIR *dp = opendir(d);
  ck_assert_ptr_nonnull(dp);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(dp)))
    if (strstr(e->d_name, s)) n++;
  closedir(dp);
  return n;
}

static TuneEntry entry(uint64_t h, attnc_target t, const char *arch, int64_t s, int64_t d, int64_t bh,
                       int bm, int bn) {
  TuneEntry e;
  memset(&e, 0, sizeof e);
  e.key.hash = h;
  e.key.target = t;
  snprintf(e.key.arch, sizeof e.key.arch, "%s", arch);
  e.key.s = s, e.key.d = d, e.key.bh = bh;
  e.sched = (attnc_schedule){ bm, bn, 0, 0, 0 };
  e.ms = 0.5, e.default_ms = 0.75;
  snprintf(e.spec, sizeof e.spec, "causal");
  snprintf(e.params, sizeof e.params, "window=16 \"quoted\"");
  snprintf(e.dtype, sizeof e.dtype, "f32");
  return e;
}

START_TEST(buckets) {
  ck_assert_int_eq(tunedb_pow2(0), 1);
  ck_assert_int_eq(tunedb_pow2(1), 1);
  ck_assert_int_eq(tunedb_pow2(200), 256);
  ck_assert_int_eq(tunedb_pow2(256), 256);
  ck_assert_int_eq(tunedb_pow2(257), 512);
  TuneKey k;
  memset(&k, 0, sizeof k);
  tunedb_bucket(&k, 2, 3, 1000, 64);
  ck_assert_int_eq(k.s, 1024);
  ck_assert_int_eq(k.d, 64);
  ck_assert_int_eq(k.bh, 8);
  tunedb_bucket(&k, 0, 0, 0, 0);
  ck_assert_int_eq(k.s, 0);
  ck_assert_int_eq(k.bh, 0);
  char h[17];
  tunedb_hash_str(UINT64_C(0xfedcba9876543210), h);
  ck_assert_str_eq(h, "fedcba9876543210");
}
END_TEST

START_TEST(paths) {
  char p[512];
  setenv("ATTNC_TUNE_DB", "/x/y.json", 1);
  ck_assert(tunedb_path(p, sizeof p));
  ck_assert_str_eq(p, "/x/y.json");
  setenv("ATTNC_TUNE_DB", "off", 1);
  ck_assert(!tunedb_path(p, sizeof p));
  setenv("ATTNC_TUNE_DB", "", 1);
  ck_assert(!tunedb_path(p, sizeof p));
  unsetenv("ATTNC_TUNE_DB");
  setenv("XDG_CONFIG_HOME", "/cfg", 1);
  ck_assert(tunedb_path(p, sizeof p));
  ck_assert_str_eq(p, "/cfg/attnc/tune.json");
  unsetenv("XDG_CONFIG_HOME");
  setenv("HOME", "/home/u", 1);
  ck_assert(tunedb_path(p, sizeof p));
  ck_assert_str_eq(p, "/home/u/.config/attnc/tune.json");
}
END_TEST

START_TEST(round_trip) {
  make_dir();
  char path[400];
  snprintf(path, sizeof path, "%s/a/b/tune.json", dir);     /* folders made on save */
  TuneDb db = { 0 };
  TuneEntry e1 = entry(UINT64_C(0xffffffffffffff01), ATTNC_TARGET_CPU, "x86_64-znver3", 512, 64, 4, 32, 64);
  TuneEntry e2 = entry(42, ATTNC_TARGET_CUDA, "sm_90", 4096, 128, 16, 128, 64);
  e2.sched.order = 1;
  e2.sched.warps = 4;
  e2.sched.stages = 2;
  ck_assert(tunedb_put(&db, &e1));
  ck_assert(tunedb_put(&db, &e2));
  TuneEntry e1b = e1;
  e1b.sched.block_m = 16;
  ck_assert(tunedb_put(&db, &e1b));                          /* same key: replaced */
  ck_assert_int_eq(db.n, 2);
  char err[512];
  ck_assert_msg(tunedb_save(path, &db, err, sizeof err), "%s", err);
  tunedb_free(&db);

  TuneDb back;
  char warn[512];
  ck_assert(tunedb_load(path, &back, warn, sizeof warn));
  ck_assert_int_eq(back.n, 2);
  const TuneEntry *f = tunedb_find(&back, &e1.key);
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(f->key.hash, UINT64_C(0xffffffffffffff01));
  ck_assert_str_eq(f->key.arch, "x86_64-znver3");
  ck_assert_int_eq(f->sched.block_m, 16);
  ck_assert_int_eq(f->sched.block_n, 64);
  ck_assert_str_eq(f->params, "window=16 \"quoted\"");
  ck_assert_str_eq(f->spec, "causal");
  ck_assert(f->ms == 0.5 && f->default_ms == 0.75);
  f = tunedb_find(&back, &e2.key);
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(f->key.target, ATTNC_TARGET_CUDA);
  ck_assert_int_eq(f->sched.order, 1);
  ck_assert_int_eq(f->sched.warps, 4);
  ck_assert_int_eq(f->sched.stages, 2);
  ck_assert_int_eq(f->key.s, 4096);
  ck_assert_int_eq(f->key.bh, 16);
  tunedb_free(&back);

  /* a missing file is an empty database, not an error */
  char missing[400];
  snprintf(missing, sizeof missing, "%s/none.json", dir);
  ck_assert(tunedb_load(missing, &back, warn, sizeof warn));
  ck_assert_int_eq(back.n, 0);
  rm_tree(dir);
}
END_TEST

START_TEST(matching) {
  TuneDb db = { 0 };
  TuneEntry a = entry(7, ATTNC_TARGET_CPU, "x", 256, 64, 2, 16, 16);
  TuneEntry b = entry(7, ATTNC_TARGET_CPU, "x", 4096, 64, 2, 64, 64);
  TuneEntry c = entry(7, ATTNC_TARGET_CPU, "x", 1024, 128, 2, 32, 32);
  ck_assert(tunedb_put(&db, &a) && tunedb_put(&db, &b) && tunedb_put(&db, &c));
  TuneKey k = { .hash = 7, .target = ATTNC_TARGET_CPU };
  snprintf(k.arch, sizeof k.arch, "x");
  k.s = 512, k.d = 64;
  ck_assert_int_eq(tunedb_match(&db, &k)->sched.block_m, 16);   /* nearest S */
  k.s = 2048;
  ck_assert_int_eq(tunedb_match(&db, &k)->sched.block_m, 64);
  k.d = 128;
  ck_assert_int_eq(tunedb_match(&db, &k)->sched.block_m, 32);   /* D must match */
  k.d = 256;
  ck_assert_ptr_null(tunedb_match(&db, &k));
  k.d = 64;
  snprintf(k.arch, sizeof k.arch, "y");
  ck_assert_ptr_null(tunedb_match(&db, &k));                    /* another arch */
  k.arch[0] = 0;
  ck_assert_ptr_nonnull(tunedb_match(&db, &k));                 /* "" matches any */
  k.target = ATTNC_TARGET_CUDA;
  ck_assert_ptr_null(tunedb_match(&db, &k));
  k.target = ATTNC_TARGET_CPU;
  k.hash = 8;
  ck_assert_ptr_null(tunedb_match(&db, &k));
  tunedb_free(&db);
}
END_TEST

START_TEST(corrupt) {
  make_dir();
  char path[400];
  snprintf(path, sizeof path, "%s/tune.json", dir);
  static const char *bad[] = {
    "", "{", "not json", "[]", "{\"version\": 2, \"entries\": []}", "{\"version\": 1}",
    "{\"version\": 1, \"entries\": {}}",
    "{\"version\": 1, \"entries\": [1]}",
    "{\"version\": 1, \"entries\": [{\"target\": \"cpu\"}]}",
    "{\"version\": 1, \"entries\": [{\"hash\": \"zz\", \"target\": \"cpu\"}]}",
    "{\"version\": 1, \"entries\": [{\"hash\": \"12\", \"target\": \"tpu\"}]}",
    "{\"version\": 1, \"entries\": [{\"hash\": \"12\", \"target\": \"cpu\", \"block_m\": \"64\"}]}",
    "{\"version\": 1, \"entries\": [{\"hash\": \"12\", \"target\": \"cpu\", \"block_m\": -4}]}",
    "{\"version\": 1, \"entries\": [{\"hash\": \"12\", \"target\": \"cpu\", \"order\": 9}]}",
    "\x01\x02\xff\xfe",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    write_file(path, bad[i]);
    TuneDb db;
    char warn[512];
    ck_assert_msg(!tunedb_load(path, &db, warn, sizeof warn), "case %zu loaded", i);
    ck_assert_int_eq(db.n, 0);
    ck_assert_msg(strstr(warn, "corrupt") != NULL, "case %zu: %s", i, warn);
    tunedb_free(&db);
  }
  /* a good one with a minimal entry */
  write_file(path, "{\"version\": 1, \"entries\": [{\"hash\": \"12\", \"target\": \"cpu\", \"block_m\": 32}]}");
  TuneDb db;
  ck_assert(tunedb_load(path, &db, NULL, 0));
  ck_assert_int_eq(db.n, 1);
  ck_assert_int_eq(db.e[0].sched.block_m, 32);
  ck_assert_uint_eq(db.e[0].key.hash, 0x12);
  tunedb_free(&db);

  /* a compile with a corrupt database warns and uses the heuristics */
  write_file(path, "{\"version\": 1, \"entries\": [");
  setenv("ATTNC_TUNE_DB", path, 1);
  attnc_ctx *ctx = attnc_ctx_new();
  attnc_spec *spec = NULL;
  attnc_kernel *k = NULL;
  attnc_error err;
  ck_assert_int_eq(attnc_spec_load_string(ctx, "causal.lua", CAUSAL, NULL, 0, &spec, &err), ATTNC_OK);
  attnc_compile_options co = { .target = ATTNC_TARGET_REF };
  ck_assert_int_eq(attnc_kernel_compile(ctx, spec, &co, &k, &err), ATTNC_OK);
  attnc_kernel_info info;
  attnc_kernel_info_get(k, &info);
  ck_assert_int_eq(info.schedule_source, ATTNC_SCHEDULE_HEURISTIC);
  attnc_kernel_free(k);
  attnc_spec_free(spec);
  attnc_ctx_free(ctx);
  unsetenv("ATTNC_TUNE_DB");
  rm_tree(dir);
}
END_TEST

START_TEST(atomic_write) {
  make_dir();
  char path[400];
  snprintf(path, sizeof path, "%s/tune.json", dir);
  TuneDb db = { 0 };
  char err[512], warn[512];
  for (int i = 0; i < 20; i++) {        /* rewrites replace the file whole */
    TuneEntry e = entry((uint64_t)i + 1, ATTNC_TARGET_CPU, "x", 256, 64, 1, 16, 16);
    ck_assert(tunedb_put(&db, &e));
    ck_assert_msg(tunedb_save(path, &db, err, sizeof err), "%s", err);
    TuneDb back;
    ck_assert(tunedb_load(path, &back, warn, sizeof warn));
    ck_assert_int_eq(back.n, i + 1);
    tunedb_free(&back);
  }
  ck_assert_int_eq(count_files(dir, ".tmp"), 0);
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0644);

  /* a failed write (the target is a folder) leaves no temp file behind */
  char sub[420];
  snprintf(sub, sizeof sub, "%s/isdir.json", dir);
  ck_assert_int_eq(mkdir(sub, 0755), 0);
  ck_assert(!tunedb_save(sub, &db, err, sizeof err));
  ck_assert(strlen(err) > 0);
  ck_assert_int_eq(count_files(dir, ".tmp"), 0);
  /* an unwritable folder: fails cleanly, the old file is kept */
  if (geteuid() != 0) {
    ck_assert_int_eq(chmod(dir, 0555), 0);
    TuneEntry e = entry(999, ATTNC_TARGET_CPU, "x", 256, 64, 1, 16, 16);
    ck_assert(tunedb_put(&db, &e));
    ck_assert(!tunedb_save(path, &db, err, sizeof err));
    chmod(dir, 0755);
    TuneDb back;
    ck_assert(tunedb_load(path, &back, warn, sizeof warn));
    ck_assert_int_eq(back.n, 20);
    tunedb_free(&back);
  }
  tunedb_free(&db);
  rm_tree(dir);
}
END_TEST

/* attnc_kernel_compile fills a zero schedule from the database */
START_TEST(compile_uses_db) {
  make_dir();
  char path[400];
  snprintf(path, sizeof path, "%s/tune.json", dir);
  attnc_ctx *ctx = attnc_ctx_new();
  attnc_spec *spec = NULL;
  attnc_error err;
  ck_assert_int_eq(attnc_spec_load_string(ctx, "causal.lua", CAUSAL, NULL, 0, &spec, &err), ATTNC_OK);
  /* the reference has no schedule, so it never consults the database */
  if (!attnc_target_available(ATTNC_TARGET_CPU)) {
    fprintf(stderr, "test_tunedb: compile_uses_db skipped (no cpu target in this build)\n");
    attnc_spec_free(spec);
    attnc_ctx_free(ctx);
    rm_tree(dir);
    return;
  }
  attnc_target t = ATTNC_TARGET_CPU;
  char arch[64];
  tunedb_arch(t, NULL, arch, sizeof arch);
  TuneDb db = { 0 };
  TuneEntry e = entry(ir_hash(spec->pat), t, arch, 256, 64, 2, 32, 16);
  ck_assert(tunedb_put(&db, &e));
  char msg[512];
  ck_assert_msg(tunedb_save(path, &db, msg, sizeof msg), "%s", msg);
  tunedb_free(&db);
  setenv("ATTNC_TUNE_DB", path, 1);

  attnc_compile_options co = { .target = t, .dtype = ATTNC_DTYPE_F32, .head_dim = 64, .seq_hint = 200 };
  attnc_kernel *k = NULL;
  ck_assert_int_eq(attnc_kernel_compile(ctx, spec, &co, &k, &err), ATTNC_OK);
  attnc_kernel_info info;
  attnc_kernel_info_get(k, &info);
  ck_assert_int_eq(info.schedule_source, ATTNC_SCHEDULE_TUNED);
  ck_assert_int_eq(info.schedule.block_m, 32);
  ck_assert_int_eq(info.schedule.block_n, 16);
  ck_assert_str_eq(info.tune_db, path);
  attnc_kernel_free(k);

  /* another head dim: no entry */
  co.head_dim = 32;
  ck_assert_int_eq(attnc_kernel_compile(ctx, spec, &co, &k, &err), ATTNC_OK);
  attnc_kernel_info_get(k, &info);
  ck_assert_int_eq(info.schedule_source, ATTNC_SCHEDULE_HEURISTIC);
  attnc_kernel_free(k);

  /* the caller's schedule wins */
  co.head_dim = 64;
  co.schedule.block_m = 64;
  ck_assert_int_eq(attnc_kernel_compile(ctx, spec, &co, &k, &err), ATTNC_OK);
  attnc_kernel_info_get(k, &info);
  ck_assert_int_eq(info.schedule_source, ATTNC_SCHEDULE_CALLER);
  ck_assert_int_eq(info.schedule.block_m, 64);
  ck_assert_int_eq(info.schedule.block_n, 0);
  attnc_kernel_free(k);

  /* switched off */
  co.schedule.block_m = 0;
  setenv("ATTNC_TUNE_DB", "off", 1);
  ck_assert_int_eq(attnc_kernel_compile(ctx, spec, &co, &k, &err), ATTNC_OK);
  attnc_kernel_info_get(k, &info);
  ck_assert_int_eq(info.schedule_source, ATTNC_SCHEDULE_HEURISTIC);
  attnc_kernel_free(k);
  setenv("ATTNC_TUNE_DB", path, 1);
  tunedb_enable(false);
  ck_assert_int_eq(attnc_kernel_compile(ctx, spec, &co, &k, &err), ATTNC_OK);
  attnc_kernel_info_get(k, &info);
  ck_assert_int_eq(info.schedule_source, ATTNC_SCHEDULE_HEURISTIC);
  attnc_kernel_free(k);
  tunedb_enable(true);
  unsetenv("ATTNC_TUNE_DB");

  attnc_spec_free(spec);
  attnc_ctx_free(ctx);
  rm_tree(dir);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("tunedb");
  TCase *tc = tcase_create("tunedb");
  tcase_add_test(tc, buckets);
  tcase_add_test(tc, paths);
  tcase_add_test(tc, round_trip);
  tcase_add_test(tc, matching);
  tcase_add_test(tc, corrupt);
  tcase_add_test(tc, atomic_write);
  tcase_add_test(tc, compile_uses_db);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run(suite()); }
