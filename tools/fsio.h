/*
** fsio.h -- whole-file reads and atomic writes for the command line.
*/
#ifndef ATTNC_FSIO_H
#define ATTNC_FSIO_H

#include <stdbool.h>
#include <stddef.h>

/*
** Read the whole file at path into a malloc'd buffer (NUL-terminated,
** *len bytes without the NUL). On error returns NULL with "path: what" in
** err (no such file, a directory, unreadable, out of memory).
*/
unsigned char *fsio_read(const char *path, size_t *len, char *err, size_t errlen);

/*
** Write the concatenation of n buffers to path: into a temporary file in
** the same directory, flushed to disk, then renamed over path, so readers
** never see a half-written file. Special files (/dev/null, pipes) are
** written in place. On error (unwritable directory, full disk) the
** temporary file is removed and err holds "path: cannot write: why".
*/
bool fsio_write(const char *path, const void *const *bufs, const size_t *lens, int n,
                char *err, size_t errlen);

#endif
