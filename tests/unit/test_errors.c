/*
** test_errors.c -- the specs in tests/errors: specs that must fail. Each file
** opens with "-- error: <text>", a part of the one message it must
** produce (with its file:line), and may list "-- define: name=value"
** lines, passed as -D overrides. Every file is traced as
** "tests/errors/NAME.lua"; the trace must fail with ATTNC_ERR_SPEC and a
** one-line message that contains the text and starts with the file name.
*/
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "tests/unit/testutil.h"

enum { MAX_FILES = 256, MAX_DEFS = 8 };

static char *files[MAX_FILES];     /* "tests/errors/NAME.lua", sorted */
static int nfiles;

static int by_name(const void *x, const void *y) {
  return strcmp(*(char *const *)x, *(char *const *)y);
}

static void collect(void) {
  DIR *dir = opendir(tu_path("tests/errors"));
  if (!dir) return;
  struct dirent *e;
  while ((e = readdir(dir)) && nfiles < MAX_FILES) {
    size_t n = strlen(e->d_name);
    if (n > 4 && strcmp(e->d_name + n - 4, ".lua") == 0) {
      char *s = malloc(n + 16);
      snprintf(s, n + 16, "tests/errors/%s", e->d_name);
      files[nfiles++] = s;
    }
  }
  closedir(dir);
  qsort(files, (size_t)nfiles, sizeof files[0], by_name);
}

/* the text after prefix on the line at s, copied into out */
static bool header(const char *s, const char *prefix, char *out, size_t len) {
  size_t n = strlen(prefix);
  if (strncmp(s, prefix, n) != 0) return false;
  const char *end = strchr(s, '\n');
  size_t m = end ? (size_t)(end - s) - n : strlen(s + n);
  if (m >= len) m = len - 1;
  memcpy(out, s + n, m);
  out[m] = '\0';
  return true;
}

START_TEST(bad_spec) {
  const char *rel = files[_i];
  Arena a;
  arena_init(&a);
  Diag d = { 0 };
  size_t len;
  char *src = fe_read_file(&a, tu_path(rel), &len, &d);
  ck_assert_msg(src != NULL, "%s", d.msg);

  char want[512] = "", defbuf[MAX_DEFS][128];
  attnc_define defs[MAX_DEFS];
  int ndefs = 0;
  for (const char *s = src; s && *s; s = strchr(s, '\n') ? strchr(s, '\n') + 1 : NULL) {
    if (header(s, "-- error: ", want, sizeof want)) continue;
    if (ndefs < MAX_DEFS && header(s, "-- define: ", defbuf[ndefs], sizeof defbuf[0])) {
      char *eq = strchr(defbuf[ndefs], '=');
      ck_assert_msg(eq != NULL, "%s: bad define line", rel);
      *eq = '\0';
      defs[ndefs] = (attnc_define){ defbuf[ndefs], eq + 1 };
      ndefs++;
      continue;
    }
    if (strncmp(s, "--", 2) != 0) break;
  }
  ck_assert_msg(want[0], "%s: no '-- error: ' line", rel);

  IrPattern *p = NULL;
  attnc_status st = fe_trace(&a, rel, src, len, defs, ndefs, NULL, &p, &d);
  ck_assert_msg(st != ATTNC_OK, "%s: traced without error", rel);
  ck_assert_ptr_null(p);
  ck_assert_int_eq(d.status, st);
  ck_assert_msg(st == ATTNC_ERR_SPEC, "%s: status %d: %s", rel, st, d.msg);
  ck_assert_msg(strstr(d.msg, want) != NULL, "%s:\n  want: %s\n  got:  %s", rel, want, d.msg);
  ck_assert_msg(strncmp(d.msg, rel, strlen(rel)) == 0, "%s: message does not start with the file: %s",
                rel, d.msg);
  ck_assert_msg(strchr(d.msg, '\n') == NULL, "%s: message is not one line: %s", rel, d.msg);
  arena_free(&a);
}
END_TEST

START_TEST(enough_cases) {
  ck_assert_msg(nfiles >= 24, "tests/errors has %d specs, want at least 24", nfiles);
}
END_TEST

int main(void) {
  collect();
  Suite *s = suite_create("errors");
  TCase *tc = tcase_create("errors");
  tcase_set_timeout(tc, 120);        /* the endless loops run to their budget */
  tcase_add_test(tc, enough_cases);
  tcase_add_loop_test(tc, bad_spec, 0, nfiles);
  suite_add_tcase(s, tc);
  int rc = tu_run(s);
  for (int i = 0; i < nfiles; i++) free(files[i]);
  return rc;
}
