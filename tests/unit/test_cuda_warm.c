/*
** test_cuda_warm.c -- the warm load of a CUDA kernel (issue 7): a second
** `attnc compile` of the same spec, in a new process, reads the plan's
** result (config and source) and the cubin back from the disk cache and
** runs neither the passes nor the emitter nor NVRTC. Checked without
** timing: ATTNC_DUMP=all prints the plan after every pass that runs, so a
** warm load must print nothing. And the cached front half must never be
** stale: anything the source depends on (a param, ATTNC_CUDA_* knobs, the
** dtype) gives the source a fresh build gives, and a corrupt record is
** rebuilt.
*/
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static char root[256];

static void make_root(void) {
  snprintf(root, sizeof root, "/tmp/attnc-test-cuda-warm-%ld-XXXXXX", (long)getpid());
  ck_assert_ptr_nonnull(mkdtemp(root));
}

static void remove_root(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  ck_assert_int_eq(system(cmd), 0);
}

/* run a shell command, stdout and stderr into out; returns the exit status */
static int run(const char *cmd, char *out, size_t n) {
  char full[4096];
  snprintf(full, sizeof full, "%s 2>&1", cmd);
  FILE *f = popen(full, "r");
  if (!f) return -1;
  size_t k = fread(out, 1, n - 1, f);
  out[k] = 0;
  int st = pclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
** attnc compile SPEC ARGS --target cuda --arch sm_90a --emit cuda, with
** ATTNC_DUMP=all, the cache in `cache` ("off": none) and the environment
** prefix env; the source into root/out.cu, returned malloc'd. *planned:
** whether the passes ran (the dump printed a plan).
*/
static char *compile(const char *env, const char *cache, const char *args, bool *planned) {
  const char *cli = getenv("ATTNC_CLI");
  char cmd[2048], out[1 << 16], path[300];
  snprintf(path, sizeof path, "%s/out.cu", root);
  snprintf(cmd, sizeof cmd,
           "%s ATTNC_DUMP=all ATTNC_CACHE_DIR=%s %s compile %s --target cuda --arch sm_90a "
           "--emit cuda -o %s --json", env, cache, cli, args, path);
  ck_assert_msg(run(cmd, out, sizeof out) == 0, "%s:\n%s", cmd, out);
  ck_assert_msg(strstr(out, "\"compile_ms\""), "%s", out);
  *planned = strstr(out, "=== plan after tile ===") != NULL;
  char *src = tu_read_file(path, NULL);
  ck_assert_ptr_nonnull(src);
  return src;
}

/* the cache's front-half record (the file whose key says so); "" if none */
static void find_record(char *path, size_t n) {
  path[0] = 0;
  DIR *dir = opendir(root);
  ck_assert_ptr_nonnull(dir);
  struct dirent *e;
  while ((e = readdir(dir)) && !path[0]) {
    if (!strstr(e->d_name, ".kc")) continue;
    char p[600];
    snprintf(p, sizeof p, "%s/%s", root, e->d_name);
    size_t len;
    char *text = tu_read_file(p, &len);
    static const char tag[] = "attnc cuda front";     /* the key's start, after the header */
    for (size_t i = 0; text && i + sizeof tag - 1 <= len && i < 200 && !path[0]; i++)
      if (memcmp(text + i, tag, sizeof tag - 1) == 0) snprintf(path, n, "%s", p);
    free(text);
  }
  closedir(dir);
}

#define NB2D "-D height=64 -D width=64 -D kernel=7"

START_TEST(warm_load_runs_no_pass) {
  if (!getenv("ATTNC_CLI")) { fprintf(stderr, "test_cuda_warm: ATTNC_CLI unset; skipped\n"); return; }
  make_root();
  char cache[300];
  snprintf(cache, sizeof cache, "%s/cache", root);
  char args[512];
  snprintf(args, sizeof args, "%s %s", tu_path("specs/neighborhood2d.lua"), NB2D);
  bool planned;
  char *fresh = compile("", "off", args, &planned);
  ck_assert(planned);
  char *cold = compile("", cache, args, &planned);
  ck_assert(planned);
  ck_assert_str_eq(cold, fresh);
  char *warm = compile("", cache, args, &planned);
  ck_assert_msg(!planned, "the warm load ran the passes");
  ck_assert_str_eq(warm, fresh);
  free(fresh); free(cold); free(warm);
  remove_root();
}
END_TEST

/* a change of anything the source depends on misses the cached front half */
START_TEST(front_half_never_stale) {
  if (!getenv("ATTNC_CLI")) { fprintf(stderr, "test_cuda_warm: ATTNC_CLI unset; skipped\n"); return; }
  make_root();
  char cache[300];
  snprintf(cache, sizeof cache, "%s/cache", root);
  static const struct { const char *env, *args; } cases[] = {
    { "", NB2D },
    { "", "-D height=64 -D width=64 -D kernel=5" },        /* a param */
    { "ATTNC_CUDA_PLAN=0", NB2D },                          /* an emitter knob */
    { "", NB2D " --dtype f16" },                            /* the config */
  };
  char *src[4];
  for (int i = 0; i < 4; i++) {
    char args[512];
    bool planned;
    snprintf(args, sizeof args, "%s %s", tu_path("specs/neighborhood2d.lua"), cases[i].args);
    char *fresh = compile(cases[i].env, "off", args, &planned);
    src[i] = compile(cases[i].env, cache, args, &planned);
    ck_assert_msg(planned || strstr(cases[i].env, "PLAN=0"), "case %d came from the cache", i);
    ck_assert_str_eq(src[i], fresh);
    for (int j = 0; j < i; j++) ck_assert_msg(strcmp(src[i], src[j]) != 0, "cases %d and %d", i, j);
    free(fresh);
  }
  for (int i = 0; i < 4; i++) free(src[i]);
  remove_root();
}
END_TEST

START_TEST(corrupt_record_rebuilt) {
  if (!getenv("ATTNC_CLI")) { fprintf(stderr, "test_cuda_warm: ATTNC_CLI unset; skipped\n"); return; }
  make_root();
  bool planned;
  char args[512], rec[700];
  snprintf(args, sizeof args, "%s %s", tu_path("specs/neighborhood2d.lua"), NB2D);
  char *cold = compile("", root, args, &planned);
  find_record(rec, sizeof rec);
  ck_assert_msg(rec[0], "no front-half record in %s", root);
  ck_assert_int_eq(truncate(rec, 100), 0);
  char *again = compile("", root, args, &planned);
  ck_assert_msg(planned, "a truncated record was used");
  ck_assert_str_eq(again, cold);
  char *warm = compile("", root, args, &planned);
  ck_assert_msg(!planned, "the rebuilt record was not stored");
  ck_assert_str_eq(warm, cold);
  free(cold); free(again); free(warm);
  remove_root();
}
END_TEST

int main(void) {
  Suite *s = suite_create("cuda_warm");
  TCase *tc = tcase_create("warm");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, warm_load_runs_no_pass);
  tcase_add_test(tc, front_half_never_stale);
  tcase_add_test(tc, corrupt_record_rebuilt);
  suite_add_tcase(s, tc);
  return tu_run(s);
}
