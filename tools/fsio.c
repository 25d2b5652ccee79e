/*
** fsio.c -- whole-file reads and atomic writes for the command line.
*/
#define _XOPEN_SOURCE 700         /* realpath */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/fsio.h"

unsigned char *fsio_read(const char *path, size_t *len, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "%s: is a directory", path);
    close(fd);
    return NULL;
  }
  size_t cap = (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
             ? (size_t)st.st_size + 1 : 65536;
  size_t n = 0;
  unsigned char *buf = malloc(cap);
  for (;;) {
    if (!buf) {
      snprintf(err, errlen, "%s: out of memory reading the file", path);
      close(fd);
      return NULL;
    }
    if (n == cap) {                          /* grew while reading, or a pipe */
      unsigned char *nb = cap < SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
      if (!nb) free(buf);
      buf = nb;
      cap *= 2;
      continue;
    }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
      free(buf);
      close(fd);
      return NULL;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  close(fd);
  if (n == cap) {                            /* room for the NUL */
    unsigned char *nb = realloc(buf, cap + 1);
    if (!nb) {
      free(buf);
      snprintf(err, errlen, "%s: out of memory reading the file", path);
      return NULL;
    }
    buf = nb;
  }
  buf[n] = 0;
  *len = n;
  return buf;
}

/* write all bytes, retrying short writes; false with errno set */
static bool write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return false;
    if (w == 0) { errno = EIO; return false; }
    p += w;
    len -= (size_t)w;
  }
  return true;
}

static bool write_bufs(int fd, const void *const *bufs, const size_t *lens, int n) {
  for (int i = 0; i < n; i++)
    if (!write_all(fd, bufs[i], lens[i])) return false;
  return true;
}

bool fsio_write(const char *path, const void *const *bufs, const size_t *lens, int n,
                char *err, size_t errlen) {
  struct stat st;
  char *real = NULL;
  const char *target = path;
  if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {     /* replace the link's target */
    real = realpath(path, NULL);
    if (real) target = real;
  }
  bool exists = stat(target, &st) == 0;
  if (exists && S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "%s: cannot write: is a directory", path);
    free(real);
    return false;
  }
  if (exists && !S_ISREG(st.st_mode)) {                    /* /dev/null, a pipe: in place */
    int fd = open(target, O_WRONLY);
    bool ok = fd >= 0 && write_bufs(fd, bufs, lens, n);
    int e = errno;
    if (fd >= 0 && close(fd) != 0 && ok) { ok = false; e = errno; }
    if (!ok) snprintf(err, errlen, "%s: cannot write: %s", path, strerror(e));
    free(real);
    return ok;
  }

  size_t tl = strlen(target);
  char *tmp = malloc(tl + 16);
  if (!tmp) {
    snprintf(err, errlen, "%s: cannot write: out of memory", path);
    free(real);
    return false;
  }
  memcpy(tmp, target, tl);
  memcpy(tmp + tl, ".tmp.XXXXXX", 12);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
    free(tmp);
    free(real);
    return false;
  }
  /* mkstemp makes the file 0600; give it the mode a new or the old file has */
  mode_t mask = umask(0);
  umask(mask);
  mode_t mode = exists ? (st.st_mode & 07777) : (0666 & ~mask);
  bool ok = fchmod(fd, mode) == 0 && write_bufs(fd, bufs, lens, n) && fsync(fd) == 0;
  int e = errno;
  if (close(fd) != 0 && ok) { ok = false; e = errno; }
  if (ok && rename(tmp, target) != 0) { ok = false; e = errno; }
  if (!ok) {
    unlink(tmp);
    snprintf(err, errlen, "%s: cannot write: %s", path, strerror(e));
  }
  free(tmp);
  free(real);
  return ok;
}
