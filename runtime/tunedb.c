/*
** tunedb.c -- the tuning database (tunedb.h): a JSON file read and
** written with cJSON, consulted by attnc_kernel_compile.
*/
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "runtime/tunedb.h"
#ifdef ATTNC_HAVE_LLVM
#include "backend/cpu/cpu.h"
#endif
#ifdef ATTNC_HAVE_CUDA
#include "backend/cuda/cuda.h"
#endif

#define TUNEDB_VERSION 1

int64_t tunedb_pow2(int64_t x) {
  int64_t p = 1;
  while (p < x && p < ((int64_t)1 << 62)) p <<= 1;
  return p;
}

void tunedb_bucket(TuneKey *k, int64_t B, int64_t H, int64_t S, int64_t D) {
  k->s = S > 0 ? tunedb_pow2(S) : 0;
  k->d = D > 0 ? D : 0;
  k->bh = B > 0 && H > 0 ? tunedb_pow2(B * H) : 0;
}

void tunedb_hash_str(uint64_t h, char buf[17]) { snprintf(buf, 17, "%016" PRIx64, h); }

static atomic_int disabled;
void tunedb_enable(bool on) { atomic_store(&disabled, !on); }
bool tunedb_enabled(void) { return !atomic_load(&disabled); }

bool tunedb_path(char *buf, size_t len) {
  buf[0] = 0;
  const char *e = getenv("ATTNC_TUNE_DB");
  if (e) {
    if (!e[0] || strcmp(e, "off") == 0) return false;
    return (size_t)snprintf(buf, len, "%s", e) < len;
  }
  const char *x = getenv("XDG_CONFIG_HOME");
  int n;
  if (x && x[0] == '/') n = snprintf(buf, len, "%s/attnc/tune.json", x);
  else {
    const char *home = getenv("HOME");
    if (!home || !home[0]) return false;
    n = snprintf(buf, len, "%s/.config/attnc/tune.json", home);
  }
  if (n < 0 || (size_t)n >= len) { buf[0] = 0; return false; }
  return true;
}

void tunedb_arch(attnc_target t, const char *given, char *buf, size_t len) {
  buf[0] = 0;
  if (given && given[0]) { snprintf(buf, len, "%s", given); return; }
  if (t == ATTNC_TARGET_CPU) {
    struct utsname u;
    const char *m = uname(&u) == 0 ? u.machine : "cpu";
#ifdef ATTNC_HAVE_LLVM
    const CpuTarget *ct = cpu_target();
    if (ct && ct->cpu[0]) { snprintf(buf, len, "%s-%s", m, ct->cpu); return; }
#endif
    snprintf(buf, len, "%s", m);
    return;
  }
#ifdef ATTNC_HAVE_CUDA
  if (t == ATTNC_TARGET_CUDA) {
    CudaDriver *drv = NULL;
    Diag d = { 0 };
    if (cuda_driver_open(0, &drv, &d) == ATTNC_OK) {
      char nb[16];
      snprintf(buf, len, "%s", cuda_arch_name(cuda_driver_arch(drv), nb));
      cuda_driver_close(drv);
    }
  }
#endif
}

/* ------------------------------------------------------------- memory */

void tunedb_free(TuneDb *db) {
  free(db->e);
  db->e = NULL;
  db->n = db->cap = 0;
}

static bool key_eq(const TuneKey *a, const TuneKey *b) {
  return a->hash == b->hash && a->target == b->target && strcmp(a->arch, b->arch) == 0 &&
         a->s == b->s && a->d == b->d && a->bh == b->bh;
}

const TuneEntry *tunedb_find(const TuneDb *db, const TuneKey *k) {
  for (int i = 0; i < db->n; i++)
    if (key_eq(&db->e[i].key, k)) return &db->e[i];
  return NULL;
}

bool tunedb_put(TuneDb *db, const TuneEntry *e) {
  for (int i = 0; i < db->n; i++)
    if (key_eq(&db->e[i].key, &e->key)) { db->e[i] = *e; return true; }
  if (db->n == db->cap) {
    int cap = db->cap ? 2 * db->cap : 16;
    TuneEntry *ne = realloc(db->e, (size_t)cap * sizeof *ne);
    if (!ne) return false;
    db->e = ne;
    db->cap = cap;
  }
  db->e[db->n++] = *e;
  return true;
}

static int64_t log2_dist(int64_t a, int64_t b) {
  if (!a || !b) return 0;                /* unknown matches anything */
  int la = 0, lb = 0;
  while ((INT64_C(1) << la) < a && la < 62) la++;
  while ((INT64_C(1) << lb) < b && lb < 62) lb++;
  return la > lb ? la - lb : lb - la;
}

const TuneEntry *tunedb_match(const TuneDb *db, const TuneKey *k) {
  const TuneEntry *best = NULL;
  int64_t best_score = 0;
  for (int i = 0; i < db->n; i++) {
    const TuneKey *e = &db->e[i].key;
    if (e->hash != k->hash || e->target != k->target) continue;
    if (k->arch[0] && strcmp(e->arch, k->arch) != 0) continue;
    if (k->d && e->d != k->d) continue;
    /* S matters more than B*H: 4 bh steps weigh as one s step */
    int64_t score = 4 * log2_dist(e->s, k->s) + log2_dist(e->bh, k->bh);
    if (!best || score < best_score) best = &db->e[i], best_score = score;
  }
  return best;
}

/* --------------------------------------------------------------- JSON */

static const char *target_str(attnc_target t) {
  return t == ATTNC_TARGET_CPU ? "cpu" : t == ATTNC_TARGET_CUDA ? "cuda" : "ref";
}

static bool target_parse(const char *s, attnc_target *t) {
  if (strcmp(s, "cpu") == 0) *t = ATTNC_TARGET_CPU;
  else if (strcmp(s, "cuda") == 0) *t = ATTNC_TARGET_CUDA;
  else if (strcmp(s, "ref") == 0) *t = ATTNC_TARGET_REF;
  else return false;
  return true;
}

static const char *get_str(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

/* a number field; def when absent; false when present but not a number */
static bool get_num(const cJSON *o, const char *name, double def, double *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  if (!v || cJSON_IsNull(v)) { *out = def; return true; }
  if (!cJSON_IsNumber(v)) return false;
  *out = v->valuedouble;
  return true;
}

static bool entry_from_json(const cJSON *o, TuneEntry *e, char *why, size_t wlen) {
  memset(e, 0, sizeof *e);
  if (!cJSON_IsObject(o)) { snprintf(why, wlen, "an entry is not an object"); return false; }
  const char *hash = get_str(o, "hash"), *target = get_str(o, "target"), *arch = get_str(o, "arch");
  char *end = NULL;
  if (!hash || !*hash || (e->key.hash = strtoull(hash, &end, 16), *end)) {
    snprintf(why, wlen, "an entry has no valid \"hash\"");
    return false;
  }
  if (!target || !target_parse(target, &e->key.target)) {
    snprintf(why, wlen, "an entry has no valid \"target\"");
    return false;
  }
  snprintf(e->key.arch, sizeof e->key.arch, "%s", arch ? arch : "");
  double s, d, bh, bm, bn, w, st, ord, ms, dms;
  if (!get_num(o, "s", 0, &s) || !get_num(o, "d", 0, &d) || !get_num(o, "bh", 0, &bh) ||
      !get_num(o, "block_m", 0, &bm) || !get_num(o, "block_n", 0, &bn) || !get_num(o, "warps", 0, &w) ||
      !get_num(o, "stages", 0, &st) || !get_num(o, "order", 0, &ord) || !get_num(o, "ms", -1, &ms) ||
      !get_num(o, "default_ms", -1, &dms)) {
    snprintf(why, wlen, "an entry has a field that should be a number");
    return false;
  }
  if (s < 0 || d < 0 || bh < 0 || bm < 0 || bn < 0 || w < 0 || st < 0 || ord < 0 || ord > 2 ||
      bm > 65536 || bn > 65536 || w > 64 || st > 64 || s > 1e18 || d > 1e9 || bh > 1e18) {
    snprintf(why, wlen, "an entry has a value out of range");
    return false;
  }
  e->key.s = (int64_t)s, e->key.d = (int64_t)d, e->key.bh = (int64_t)bh;
  e->sched = (attnc_schedule){ (int)bm, (int)bn, (int)w, (int)st, (int)ord };
  e->ms = ms, e->default_ms = dms;
  const char *x;
  if ((x = get_str(o, "spec"))) snprintf(e->spec, sizeof e->spec, "%s", x);
  if ((x = get_str(o, "params"))) snprintf(e->params, sizeof e->params, "%s", x);
  if ((x = get_str(o, "dtype"))) snprintf(e->dtype, sizeof e->dtype, "%s", x);
  if ((x = get_str(o, "time"))) snprintf(e->time, sizeof e->time, "%s", x);
  return true;
}

static char *read_all(FILE *f, size_t *len) {
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    size_t got = fread(buf + n, 1, cap - n - 1, f);
    n += got;
    if (n < cap - 1) break;
    if (cap > ((size_t)64 << 20)) { free(buf); return NULL; }   /* 64 MiB is no tuning database */
    char *nb = realloc(buf, cap * 2);
    if (!nb) { free(buf); return NULL; }
    buf = nb;
    cap *= 2;
  }
  if (buf) buf[n] = 0;
  *len = n;
  return buf;
}

bool tunedb_load(const char *path, TuneDb *db, char *warn, size_t wlen) {
  memset(db, 0, sizeof *db);
  if (warn && wlen) warn[0] = 0;
  char dummy[8];
  if (!warn) warn = dummy, wlen = sizeof dummy;
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (errno == ENOENT) return true;
    snprintf(warn, wlen, "cannot read the tuning database %s: %s", path, strerror(errno));
    return false;
  }
  size_t len = 0;
  char *text = read_all(f, &len);
  bool ioerr = ferror(f);
  fclose(f);
  if (!text || ioerr) {
    free(text);
    snprintf(warn, wlen, "cannot read the tuning database %s", path);
    return false;
  }
  cJSON *root = cJSON_ParseWithLength(text, len);
  free(text);
  char why[160] = "not valid JSON";
  bool ok = false;
  if (root) {
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "entries");
    if (!cJSON_IsObject(root)) snprintf(why, sizeof why, "not a JSON object");
    else if (!cJSON_IsNumber(ver) || ver->valuedouble != TUNEDB_VERSION)
      snprintf(why, sizeof why, "no \"version\": %d", TUNEDB_VERSION);
    else if (!cJSON_IsArray(arr)) snprintf(why, sizeof why, "no \"entries\" array");
    else {
      ok = true;
      const cJSON *it;
      cJSON_ArrayForEach(it, arr) {
        TuneEntry e;
        if (!entry_from_json(it, &e, why, sizeof why)) { ok = false; break; }
        if (!tunedb_put(db, &e)) { snprintf(why, sizeof why, "out of memory"); ok = false; break; }
      }
    }
    cJSON_Delete(root);
  }
  if (!ok) {
    tunedb_free(db);
    snprintf(warn, wlen, "the tuning database %s is corrupt (%s); ignoring it", path, why);
  }
  return ok;
}

/* mkdir -p of the folder holding path */
static bool make_parent(const char *path, char *err, size_t elen) {
  char dir[4096];
  if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir) {
    snprintf(err, elen, "path too long: %s", path);
    return false;
  }
  char *slash = strrchr(dir, '/');
  if (!slash || slash == dir) return true;
  *slash = 0;
  for (char *p = dir + 1; ; p++) {
    if (*p == '/' || *p == 0) {
      char c = *p;
      *p = 0;
      if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        snprintf(err, elen, "cannot create %s: %s", dir, strerror(errno));
        return false;
      }
      *p = c;
      if (!c) break;
    }
  }
  return true;
}

static cJSON *entry_to_json(const TuneEntry *e) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  char h[17];
  tunedb_hash_str(e->key.hash, h);
  bool ok = cJSON_AddStringToObject(o, "spec", e->spec) && cJSON_AddStringToObject(o, "hash", h) &&
            cJSON_AddStringToObject(o, "target", target_str(e->key.target)) &&
            cJSON_AddStringToObject(o, "arch", e->key.arch) &&
            cJSON_AddNumberToObject(o, "s", (double)e->key.s) &&
            cJSON_AddNumberToObject(o, "d", (double)e->key.d) &&
            cJSON_AddNumberToObject(o, "bh", (double)e->key.bh) &&
            cJSON_AddNumberToObject(o, "block_m", e->sched.block_m) &&
            cJSON_AddNumberToObject(o, "block_n", e->sched.block_n) &&
            cJSON_AddNumberToObject(o, "warps", e->sched.warps) &&
            cJSON_AddNumberToObject(o, "stages", e->sched.stages) &&
            cJSON_AddNumberToObject(o, "order", e->sched.order) &&
            cJSON_AddNumberToObject(o, "ms", e->ms) &&
            cJSON_AddNumberToObject(o, "default_ms", e->default_ms) &&
            cJSON_AddStringToObject(o, "params", e->params) &&
            cJSON_AddStringToObject(o, "dtype", e->dtype) &&
            cJSON_AddStringToObject(o, "time", e->time);
  if (!ok) { cJSON_Delete(o); return NULL; }
  return o;
}

bool tunedb_save(const char *path, const TuneDb *db, char *err, size_t elen) {
  cJSON *root = cJSON_CreateObject(), *arr = NULL;
  bool ok = root && cJSON_AddNumberToObject(root, "version", TUNEDB_VERSION) &&
            (arr = cJSON_AddArrayToObject(root, "entries"));
  for (int i = 0; ok && i < db->n; i++) {
    cJSON *o = entry_to_json(&db->e[i]);
    ok = o && cJSON_AddItemToArray(arr, o);
  }
  char *text = ok ? cJSON_Print(root) : NULL;
  cJSON_Delete(root);
  if (!text) { snprintf(err, elen, "out of memory writing the tuning database"); return false; }
  if (!make_parent(path, err, elen)) { free(text); return false; }
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 16);
  if (!tmp) { free(text); snprintf(err, elen, "out of memory"); return false; }
  snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    snprintf(err, elen, "cannot write %s: %s", tmp, strerror(errno));
    free(tmp); free(text);
    return false;
  }
  size_t n = strlen(text), off = 0;
  text[n] = 0;
  ok = true;
  while (off < n) {
    ssize_t w = write(fd, text + off, n - off);
    if (w < 0) { if (errno == EINTR) continue; ok = false; break; }
    off += (size_t)w;
  }
  if (ok) ok = write(fd, "\n", 1) == 1;
  fchmod(fd, 0644);
  if (ok && fsync(fd) != 0) ok = false;
  if (close(fd) != 0) ok = false;
  if (ok && rename(tmp, path) != 0) ok = false;
  if (!ok) {
    snprintf(err, elen, "cannot write %s: %s", path, strerror(errno));
    unlink(tmp);
  }
  free(tmp);
  free(text);
  return ok;
}

/* ------------------------------------------------------------- lookup */

static pthread_mutex_t warn_lock = PTHREAD_MUTEX_INITIALIZER;
static char warned[4096];

bool tunedb_lookup(uint64_t h, attnc_target t, const char *arch, int64_t bh, int64_t s, int64_t d,
                   attnc_schedule *sched, char *path, size_t plen, TuneEntry *found) {
  if (!tunedb_enabled()) return false;
  char p[4096];
  if (!tunedb_path(p, sizeof p)) return false;
  TuneDb db;
  char warn[4300];
  if (!tunedb_load(p, &db, warn, sizeof warn)) {
    pthread_mutex_lock(&warn_lock);        /* once per file and process */
    if (strcmp(warned, p) != 0) {
      fprintf(stderr, "attnc: warning: %s\n", warn);
      snprintf(warned, sizeof warned, "%s", p);
    }
    pthread_mutex_unlock(&warn_lock);
    return false;
  }
  if (db.n == 0) { tunedb_free(&db); return false; }
  TuneKey k = { .hash = h, .target = t };
  tunedb_arch(t, arch, k.arch, sizeof k.arch);    /* only now: cuda opens the driver */
  k.bh = bh > 0 ? tunedb_pow2(bh) : 0;
  k.s = s > 0 ? tunedb_pow2(s) : 0;
  k.d = d > 0 ? d : 0;
  const TuneEntry *e = tunedb_match(&db, &k);
  if (e) {
    if (!sched->block_m) sched->block_m = e->sched.block_m;
    if (!sched->block_n) sched->block_n = e->sched.block_n;
    if (!sched->warps) sched->warps = e->sched.warps;
    if (!sched->stages) sched->stages = e->sched.stages;
    if (!sched->order) sched->order = e->sched.order;
    if (path && plen) snprintf(path, plen, "%s", p);
    if (found) *found = *e;
  }
  tunedb_free(&db);
  return e != NULL;
}
