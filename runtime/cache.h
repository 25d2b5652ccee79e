/*
** cache.h -- the kernel cache: compiled images by content, in memory and on
** disk, so that a second compile of the same kernel -- in this process or
** in a later one -- costs a file read instead of a compiler run.
**
** Keys are bytes that say everything an image depends on (for CUDA:
** cuda_cache_key = generated source + NVRTC options + NVRTC version + arch
** + image kind). Entries are found by a 128-bit hash of the key and
** compared with the whole key, so a hash collision can never return the
** wrong image.
**
** Disk: one file per entry, <dir>/<32 hex digits>.kc, holding a header
** (magic "ATTNCKC", format version, key and data lengths, a checksum of
** both), the key and the data. Writes go to a temporary file in the same
** directory and are renamed into place, so readers never see a partial
** entry and two processes writing the same entry both succeed (the last
** rename wins, with identical content). A truncated or corrupt entry is
** reported as a warning and treated as a miss; the rebuilt image replaces
** it. A directory that cannot be created or written (read-only, full)
** turns disk writes off with one warning; compiling goes on.
**
** The directory is $ATTNC_CACHE_DIR, else $XDG_CACHE_HOME/attnc, else
** $HOME/.cache/attnc; ATTNC_CACHE_DIR=off disables the disk.
**
** A KCache belongs to one attnc context; it is safe to use from many
** threads (one mutex) and holds no global state.
*/
#ifndef ATTNC_CACHE_H
#define ATTNC_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attnc.h"
#include "ir/ir.h"

typedef struct KCache KCache;

/* receives each warning, without the "attnc: warning: " prefix */
typedef void (*KCacheWarnFn)(void *ud, const char *msg);

typedef struct KCacheOptions {
  const char *dir;          /* NULL: from the environment (see above) */
  bool no_disk;             /* memory only */
  KCacheWarnFn warn;        /* NULL: print "attnc: warning: <msg>" on stderr */
  void *warn_ud;
} KCacheOptions;

KCache *kcache_new(const KCacheOptions *opt);   /* NULL only when out of memory */
void kcache_free(KCache *c);

/* the directory entries go to, or NULL when the disk is off */
const char *kcache_dir(const KCache *c);

typedef enum KCacheHit { KCACHE_MISS = 0, KCACHE_MEMORY, KCACHE_DISK } KCacheHit;
const char *kcache_hit_name(KCacheHit h);      /* "miss", "memory", "disk" */

/*
** Look up key. On a hit *data is a malloc'd copy (with a NUL byte after the
** len bytes, so PTX text can be used as a C string); free it with free().
** A disk hit is also kept in memory.
*/
KCacheHit kcache_get(KCache *c, const void *key, size_t keylen, void **data, size_t *len);

/*
** Store an entry in memory and, unless the disk is off, on disk. Disk
** errors never fail the call: the first one turns disk writes off with a
** warning. Returns false only when out of memory.
*/
bool kcache_put(KCache *c, const void *key, size_t keylen, const void *data, size_t len);

/* the entry file of a key (for tests and tools): "<dir>/<hash>.kc" into buf */
bool kcache_entry_path(const KCache *c, const void *key, size_t keylen, char *buf, size_t n);

/* counters since kcache_new */
typedef struct KCacheStats {
  long mem_hits, disk_hits, misses, puts, disk_writes, corrupt;
} KCacheStats;
KCacheStats kcache_stats(KCache *c);

#ifdef ATTNC_HAVE_CUDA
#include "backend/cuda/cuda.h"
/*
** A CUDA image for generated source src through the cache: the key is
** cuda_cache_key(src, arch, kind); on a miss NVRTC compiles and the image
** is stored. *hit says where it came from; out->compile_ms is the NVRTC
** time (0 on a hit).
*/
attnc_status kcache_cuda_image(KCache *c, const char *src, int arch, CudaImageKind kind,
                               CudaImage *out, KCacheHit *hit, Diag *d);
#endif

#endif
