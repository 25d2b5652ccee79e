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

int tu_run(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
