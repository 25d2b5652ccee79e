/* testutil.c -- helpers shared by the Check suites. */
#include <stdio.h>
#include <stdlib.h>

#include "tests/unit/testutil.h"

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
