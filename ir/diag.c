/*
** diag.c -- errors as values. The first error of an operation is kept,
** formatted "file:line: message" when it has a location.
*/
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"

attnc_status diag_verror(Diag *d, attnc_status st, Loc loc, const char *fmt, va_list ap) {
  if (!d || d->status != ATTNC_OK) return d ? d->status : st;
  d->status = st;
  int n = 0;
  if (loc.file && loc.line > 0)
    n = snprintf(d->msg, sizeof d->msg, "%s:%d: ", loc.file, loc.line);
  else if (loc.file)
    n = snprintf(d->msg, sizeof d->msg, "%s: ", loc.file);
  if (n < 0 || (size_t)n >= sizeof d->msg) n = 0;
  if (st == ATTNC_ERR_INTERNAL)
    n += snprintf(d->msg + n, sizeof d->msg - n, "internal compiler error (a bug in attnc): ");
  if ((size_t)n < sizeof d->msg) vsnprintf(d->msg + n, sizeof d->msg - n, fmt, ap);
  return st;
}

attnc_status diag_error(Diag *d, attnc_status st, Loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_verror(d, st, loc, fmt, ap);
  va_end(ap);
  return d ? d->status : st;
}

void diag_to_error(const Diag *d, attnc_error *err) {
  if (!err) return;
  err->status = d->status;
  snprintf(err->message, sizeof err->message, "%s", d->status == ATTNC_OK ? "" : d->msg);
}
