/*
** cache.c -- the kernel cache (see cache.h): a list in memory under a
** mutex, and one file per entry on disk written by temp file + rename.
*/
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "runtime/cache.h"

#define KC_MAGIC "ATTNCKC"       /* 8 bytes with the NUL */
#define KC_VERSION 1u

typedef struct KcHeader {
  char magic[8];
  uint32_t version;
  uint32_t flags;
  uint64_t keylen, datalen;
  uint64_t checksum;             /* of key and data */
} KcHeader;

typedef struct Entry {
  struct Entry *next;
  uint64_t h[2];
  void *key, *data;
  size_t keylen, len;
} Entry;

struct KCache {
  pthread_mutex_t lock;
  Entry *entries;
  char *dir;                     /* NULL: no disk */
  bool disk_write;               /* false after a write failure */
  bool dir_made;
  KCacheWarnFn warn;
  void *warn_ud;
  unsigned long tmp_seq;
  KCacheStats stats;
};

/* ------------------------------------------------------------- hashing */

/* MurmurHash3 x64 128 (public domain, Austin Appleby) */
static uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static uint64_t fmix64(uint64_t k) {
  k ^= k >> 33; k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33; k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

static void hash128(const void *key, size_t len, uint64_t seed, uint64_t out[2]) {
  const uint8_t *data = key;
  size_t nblocks = len / 16;
  uint64_t h1 = seed, h2 = seed;
  const uint64_t c1 = 0x87c37b91114253d5ULL, c2 = 0x4cf5ad432745937fULL;
  for (size_t i = 0; i < nblocks; i++) {
    uint64_t k1, k2;
    memcpy(&k1, data + i * 16, 8);
    memcpy(&k2, data + i * 16 + 8, 8);
    k1 *= c1; k1 = rotl64(k1, 31); k1 *= c2; h1 ^= k1;
    h1 = rotl64(h1, 27); h1 += h2; h1 = h1 * 5 + 0x52dce729;
    k2 *= c2; k2 = rotl64(k2, 33); k2 *= c1; h2 ^= k2;
    h2 = rotl64(h2, 31); h2 += h1; h2 = h2 * 5 + 0x38495ab5;
  }
  const uint8_t *tail = data + nblocks * 16;
  uint64_t k1 = 0, k2 = 0;
  switch (len & 15) {
  case 15: k2 ^= (uint64_t)tail[14] << 48; /* fallthrough */
  case 14: k2 ^= (uint64_t)tail[13] << 40; /* fallthrough */
  case 13: k2 ^= (uint64_t)tail[12] << 32; /* fallthrough */
  case 12: k2 ^= (uint64_t)tail[11] << 24; /* fallthrough */
  case 11: k2 ^= (uint64_t)tail[10] << 16; /* fallthrough */
  case 10: k2 ^= (uint64_t)tail[9] << 8;   /* fallthrough */
  case 9:  k2 ^= (uint64_t)tail[8];
           k2 *= c2; k2 = rotl64(k2, 33); k2 *= c1; h2 ^= k2;   /* fallthrough */
  case 8:  k1 ^= (uint64_t)tail[7] << 56;  /* fallthrough */
  case 7:  k1 ^= (uint64_t)tail[6] << 48;  /* fallthrough */
  case 6:  k1 ^= (uint64_t)tail[5] << 40;  /* fallthrough */
  case 5:  k1 ^= (uint64_t)tail[4] << 32;  /* fallthrough */
  case 4:  k1 ^= (uint64_t)tail[3] << 24;  /* fallthrough */
  case 3:  k1 ^= (uint64_t)tail[2] << 16;  /* fallthrough */
  case 2:  k1 ^= (uint64_t)tail[1] << 8;   /* fallthrough */
  case 1:  k1 ^= (uint64_t)tail[0];
           k1 *= c1; k1 = rotl64(k1, 31); k1 *= c2; h1 ^= k1;
  }
  h1 ^= (uint64_t)len; h2 ^= (uint64_t)len;
  h1 += h2; h2 += h1;
  h1 = fmix64(h1); h2 = fmix64(h2);
  h1 += h2; h2 += h1;
  out[0] = h1;
  out[1] = h2;
}

static uint64_t checksum(const void *key, size_t keylen, const void *data, size_t len) {
  uint64_t a[2], b[2];
  hash128(key, keylen, 0x61747463ULL, a);
  hash128(data, len, 0x6b636163ULL, b);
  return a[0] ^ rotl64(b[0], 17) ^ b[1];
}

/* ------------------------------------------------------------ warnings */

static void default_warn(void *ud, const char *msg) {
  (void)ud;
  fprintf(stderr, "attnc: warning: %s\n", msg);
}

static void warnf(KCache *c, const char *fmt, ...) {
  char msg[1200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  c->warn(c->warn_ud, msg);
}

/* ---------------------------------------------------------- lifecycle */

static char *default_dir(void) {
  const char *env = getenv("ATTNC_CACHE_DIR");
  char buf[4096];
  if (env && *env) {
    if (strcmp(env, "off") == 0 || strcmp(env, "0") == 0) return NULL;
    return strdup(env);
  }
  const char *xdg = getenv("XDG_CACHE_HOME");
  if (xdg && *xdg) {
    snprintf(buf, sizeof buf, "%s/attnc", xdg);
    return strdup(buf);
  }
  const char *home = getenv("HOME");
  if (home && *home) {
    snprintf(buf, sizeof buf, "%s/.cache/attnc", home);
    return strdup(buf);
  }
  return NULL;
}

KCache *kcache_new(const KCacheOptions *opt) {
  KCache *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  if (pthread_mutex_init(&c->lock, NULL) != 0) { free(c); return NULL; }
  c->warn = opt && opt->warn ? opt->warn : default_warn;
  c->warn_ud = opt ? opt->warn_ud : NULL;
  if (!(opt && opt->no_disk)) {
    c->dir = opt && opt->dir ? strdup(opt->dir) : default_dir();
    c->disk_write = c->dir != NULL;
  }
  return c;
}

void kcache_free(KCache *c) {
  if (!c) return;
  for (Entry *e = c->entries, *n; e; e = n) {
    n = e->next;
    free(e->key);
    free(e->data);
    free(e);
  }
  free(c->dir);
  pthread_mutex_destroy(&c->lock);
  free(c);
}

const char *kcache_dir(const KCache *c) { return c->dir; }

const char *kcache_hit_name(KCacheHit h) {
  return h == KCACHE_MEMORY ? "memory" : h == KCACHE_DISK ? "disk" : "miss";
}

KCacheStats kcache_stats(KCache *c) {
  pthread_mutex_lock(&c->lock);
  KCacheStats s = c->stats;
  pthread_mutex_unlock(&c->lock);
  return s;
}

/* ------------------------------------------------------------- memory */

static Entry *mem_find(KCache *c, const uint64_t h[2], const void *key, size_t keylen) {
  for (Entry *e = c->entries; e; e = e->next)
    if (e->h[0] == h[0] && e->h[1] == h[1] && e->keylen == keylen &&
        memcmp(e->key, key, keylen) == 0)
      return e;
  return NULL;
}

/* a copy with a NUL after it */
static void *dup_nul(const void *data, size_t len) {
  char *p = malloc(len + 1);
  if (!p) return NULL;
  memcpy(p, data, len);
  p[len] = 0;
  return p;
}

/* insert (under the lock); false when out of memory */
static bool mem_insert(KCache *c, const uint64_t h[2], const void *key, size_t keylen,
                       const void *data, size_t len) {
  Entry *e = mem_find(c, h, key, keylen);
  if (e && e->len == len && memcmp(e->data, data, len) == 0) return true;
  if (e) {                        /* a new value (one that failed a check before) */
    void *nd = dup_nul(data, len);
    if (!nd) return false;
    free(e->data);
    e->data = nd;
    e->len = len;
    return true;
  }
  e = calloc(1, sizeof *e);
  if (!e) return false;
  e->key = dup_nul(key, keylen);
  e->data = dup_nul(data, len);
  if (!e->key || !e->data) {
    free(e->key);
    free(e->data);
    free(e);
    return false;
  }
  e->h[0] = h[0];
  e->h[1] = h[1];
  e->keylen = keylen;
  e->len = len;
  e->next = c->entries;
  c->entries = e;
  return true;
}

/* --------------------------------------------------------------- disk */

static void entry_path(const KCache *c, const uint64_t h[2], char *buf, size_t n) {
  snprintf(buf, n, "%s/%016llx%016llx.kc", c->dir, (unsigned long long)h[0],
           (unsigned long long)h[1]);
}

bool kcache_entry_path(const KCache *c, const void *key, size_t keylen, char *buf, size_t n) {
  if (!c->dir) return false;
  uint64_t h[2];
  hash128(key, keylen, 0, h);
  entry_path(c, h, buf, n);
  return true;
}

/* mkdir -p; 0 or errno */
static int make_dirs(const char *path) {
  char buf[4096];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof buf) return ENAMETOOLONG;
  memcpy(buf, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] == '/' || buf[i] == 0) {
      char ch = buf[i];
      buf[i] = 0;
      if (mkdir(buf, 0755) != 0 && errno != EEXIST) return errno;
      buf[i] = ch;
    }
  }
  struct stat st;
  if (stat(path, &st) != 0) return errno;
  if (!S_ISDIR(st.st_mode)) return ENOTDIR;
  return 0;
}

/*
** Read and verify the entry file for key. Returns 1 on a valid hit, 0 on a
** miss (no file, another key with this hash), -1 on a corrupt entry (warned).
*/
static int disk_read(KCache *c, const uint64_t h[2], const void *key, size_t keylen,
                     void **data, size_t *len) {
  char path[4200];
  entry_path(c, h, path, sizeof path);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return 0;
  struct stat st;
  int result = -1;
  char why[160] = "unreadable";
  char *buf = NULL;
  if (fstat(fd, &st) != 0) goto done;
  size_t size = (size_t)st.st_size;
  KcHeader hd;
  if (size < sizeof hd) {
    snprintf(why, sizeof why, "truncated: %zu bytes, shorter than the header", size);
    goto done;
  }
  buf = malloc(size + 1);
  if (!buf) { result = 0; goto done; }
  size_t got = 0;
  while (got < size) {
    ssize_t r = read(fd, buf + got, size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  if (got != size) { snprintf(why, sizeof why, "read %zu of %zu bytes", got, size); goto done; }
  memcpy(&hd, buf, sizeof hd);
  if (memcmp(hd.magic, KC_MAGIC, 8) != 0) { snprintf(why, sizeof why, "not an attnc cache entry"); goto done; }
  if (hd.version != KC_VERSION) { result = 0; goto done; }     /* another format: just rebuild */
  uint64_t want = sizeof hd + hd.keylen + hd.datalen;
  if (hd.keylen > size || hd.datalen > size || want != size) {
    snprintf(why, sizeof why, "truncated: %zu of %llu bytes", size, (unsigned long long)want);
    goto done;
  }
  const char *k = buf + sizeof hd, *dat = k + hd.keylen;
  if (checksum(k, hd.keylen, dat, hd.datalen) != hd.checksum) {
    snprintf(why, sizeof why, "checksum mismatch");
    goto done;
  }
  if (hd.keylen != keylen || memcmp(k, key, keylen) != 0) { result = 0; goto done; }   /* a collision */
  *data = dup_nul(dat, hd.datalen);
  if (!*data) { result = 0; goto done; }
  *len = hd.datalen;
  result = 1;
done:
  close(fd);
  free(buf);
  if (result < 0) {
    c->stats.corrupt++;
    warnf(c, "kernel cache entry %s is corrupt (%s); rebuilding it", path, why);
  }
  return result;
}

static bool write_all(int fd, const void *p, size_t n) {
  const char *b = p;
  while (n > 0) {
    ssize_t r = write(fd, b, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) { if (r == 0) errno = ENOSPC; return false; }
    b += r;
    n -= (size_t)r;
  }
  return true;
}

/* write the entry (called with the lock held); failures turn writes off */
static void disk_write(KCache *c, const uint64_t h[2], const void *key, size_t keylen,
                       const void *data, size_t len) {
  int err;
  if (!c->dir_made) {
    if ((err = make_dirs(c->dir)) != 0) {
      c->disk_write = false;
      warnf(c, "cannot create the kernel cache directory %s (%s); compiling without the disk cache",
            c->dir, strerror(err));
      return;
    }
    c->dir_made = true;
  }
  char path[4200], tmp[4300];
  entry_path(c, h, path, sizeof path);
  int fd = -1;
  for (int tries = 0; tries < 8 && fd < 0; tries++) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(tmp, sizeof tmp, "%s/.tmp-%ld-%lu-%ld.kc", c->dir, (long)getpid(), ++c->tmp_seq,
             (long)ts.tv_nsec);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    err = errno;
    c->disk_write = false;
    warnf(c, "cannot write to the kernel cache directory %s (%s); compiling without the disk cache",
          c->dir, strerror(err));
    return;
  }
  KcHeader hd;
  memset(&hd, 0, sizeof hd);
  memcpy(hd.magic, KC_MAGIC, 8);
  hd.version = KC_VERSION;
  hd.keylen = keylen;
  hd.datalen = len;
  hd.checksum = checksum(key, keylen, data, len);
  bool ok = write_all(fd, &hd, sizeof hd) && write_all(fd, key, keylen) && write_all(fd, data, len);
  err = errno;
  if (close(fd) != 0 && ok) { ok = false; err = errno; }
  if (ok && rename(tmp, path) != 0) { ok = false; err = errno; }
  if (!ok) {
    unlink(tmp);
    c->disk_write = false;
    warnf(c, "cannot write the kernel cache entry %s (%s); compiling without the disk cache",
          path, strerror(err));
    return;
  }
  c->stats.disk_writes++;
}

/* ------------------------------------------------------------- get/put */

KCacheHit kcache_get(KCache *c, const void *key, size_t keylen, void **data, size_t *len) {
  *data = NULL;
  *len = 0;
  uint64_t h[2];
  hash128(key, keylen, 0, h);
  pthread_mutex_lock(&c->lock);
  KCacheHit hit = KCACHE_MISS;
  Entry *e = mem_find(c, h, key, keylen);
  if (e) {
    if ((*data = dup_nul(e->data, e->len))) {
      *len = e->len;
      hit = KCACHE_MEMORY;
      c->stats.mem_hits++;
    }
  } else if (c->dir && disk_read(c, h, key, keylen, data, len) == 1) {
    hit = KCACHE_DISK;
    c->stats.disk_hits++;
    mem_insert(c, h, key, keylen, *data, *len);
  }
  if (hit == KCACHE_MISS) c->stats.misses++;
  pthread_mutex_unlock(&c->lock);
  return hit;
}

bool kcache_put(KCache *c, const void *key, size_t keylen, const void *data, size_t len) {
  uint64_t h[2];
  hash128(key, keylen, 0, h);
  pthread_mutex_lock(&c->lock);
  bool ok = mem_insert(c, h, key, keylen, data, len);
  c->stats.puts++;
  if (c->dir && c->disk_write) disk_write(c, h, key, keylen, data, len);
  pthread_mutex_unlock(&c->lock);
  return ok;
}

/* --------------------------------------------------------------- cuda */

#ifdef ATTNC_HAVE_CUDA
attnc_status kcache_cuda_image(KCache *c, const char *src, int arch, CudaImageKind kind,
                               CudaImage *out, KCacheHit *hit, Diag *d) {
  memset(out, 0, sizeof *out);
  *hit = KCACHE_MISS;
  char *key = NULL;
  size_t keylen = 0;
  attnc_status st = cuda_cache_key(src, arch, kind, &key, &keylen, d);
  if (st) return st;
  void *data = NULL;
  size_t len = 0;
  if (c && (*hit = kcache_get(c, key, keylen, &data, &len)) != KCACHE_MISS) {
    out->data = data;
    out->size = len;
    out->kind = kind;
    /* a cubin container must hold together (else: compile again, below) */
    if (kind == CUDA_IMAGE_PTX || cuda_image_parts(out) == cuda_image_nparts(src, kind)) {
      free(key);
      return ATTNC_OK;
    }
    cuda_image_free(out);
    *hit = KCACHE_MISS;
  }
  st = cuda_compile(src, arch, kind, out, d);
  if (!st && c && !kcache_put(c, key, keylen, out->data, out->size))
    st = diag_error(d, ATTNC_ERR_NOMEM, (Loc){ NULL, 0 }, "out of memory");
  free(key);
  return st;
}
#endif
