/*
** target.c -- the cuda target behind attnc_kernel (TargetOps, see
** runtime/runtime.h): one specialisation per (dtype, D, Dv).
**
**   build  emit the kernel (with the passes' plan) and get its cubin through
**          the kernel cache, for the arch of --arch / opts.arch or of device
**          0; needs no GPU when the arch is given (attnc compile in CI)
**   run    open the driver and load the module on first use, then launch
**          on args->stream. Sequences of 2^24 tokens or more take a second
**          variant with 64-bit index math, built on demand; so does the
**          copy variant (cp.async instead of TMA, CudaConfig.no_tma) of a
**          kernel that loads by TMA, for a launch whose tensors have no
**          descriptor (cuda_launch says so before it launches). Host tensors
**          (the CLI's npy path) are staged through device memory and the
**          call is then synchronous.
** The driver and the cache belong to the specialisation for now; they move
** to attnc_ctx when it holds them (runtime/runtime.h).
**
** A build has two halves, both cached: the front half (the passes' plan
** and the emitted source, see "front half" below) and NVRTC (the image,
** by its source: kcache_cuda_image). A warm load reads both back and runs
** neither the passes nor the emitter.
*/
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda.h"
#include "runtime/cache.h"
#include "runtime/runtime.h"

typedef struct CudaVariant {
  bool built;
  CudaConfig cfg;
  CudaImage img;
  CudaModule *mod;
  char *src;                  /* in the impl's arena */
} CudaVariant;

typedef struct CudaImpl {
  pthread_mutex_t lock;       /* guards everything below */
  KernelKey key;
  int arch;
  CudaDriver *drv;
  KCache *cache;
  Arena arena;
  CudaVariant v[4];           /* bit 0: 64-bit index math; bit 1: the copy variant */
  attnc_schedule sched;
  int64_t seq_hint;
} CudaImpl;

static void impl_free(CudaImpl *m) {
  if (!m) return;
  for (int i = 0; i < 4; i++) {
    cuda_module_free(m->v[i].mod);
    cuda_image_free(&m->v[i].img);
  }
  cuda_driver_close(m->drv);
  kcache_free(m->cache);
  arena_free(&m->arena);
  pthread_mutex_destroy(&m->lock);
  free(m);
}

/* ------------------------------------------------------ front half */

/*
** The front half -- plan_build and the emitter, through cuda_build_source --
** is a function of the pattern, the config asked for, the ATTNC_CUDA_*
** environment (the emitter's knobs, ATTNC_CUDA_PLAN, ATTNC_CUDA_WARPS...)
** and the code of ir/, passes/ and backend/cuda/, whose version is a hash
** of those files taken at build time (attnc_cuda_front_version, from
** tools/srchash.cmake). Its result, the finished config and the source, is
** cached under a key holding exactly those, so a warm load skips the
** passes and the emitter. The key holds every field of the pattern,
** locations included: the source quotes them. A change to any of those
** files misses (and rebuilds) every record; the images, keyed by the
** source, are still found when the source comes out the same.
*/
extern const char attnc_cuda_front_version[];
extern char **environ;

#define FRONT_MAGIC "ATTNCFR1"       /* record: magic, CudaConfig bytes, source */

/* a growable byte string for the key */
typedef struct Bytes { char *p; size_t len, cap; bool oom; } Bytes;

static void bytes_add(Bytes *b, const void *data, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1) cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q) { b->oom = true; return; }
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, data, n);
  b->len += n;
  b->p[b->len] = 0;
}

static void bytes_printf(Bytes *b, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 2, 3)))
#endif
  ;
static void bytes_printf(Bytes *b, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof buf) { b->oom = true; return; }   /* fields are short */
  bytes_add(b, buf, (size_t)n);
}

/* a string as <length>:<bytes> (NULL as -) */
static void bytes_str(Bytes *b, const char *s) {
  if (!s) { bytes_add(b, "- ", 2); return; }
  bytes_printf(b, "%zu:", strlen(s));
  bytes_add(b, s, strlen(s));
  bytes_add(b, " ", 1);
}

static void bytes_hex(Bytes *b, const void *data, size_t n) {
  static const char digits[] = "0123456789abcdef";
  const unsigned char *u = data;
  for (size_t i = 0; i < n; i++) {
    char two[2] = { digits[u[i] >> 4], digits[u[i] & 15] };
    bytes_add(b, two, 2);
  }
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* every field of the pattern, in a fixed order */
static void key_pattern(Bytes *b, const IrPattern *p) {
  bytes_add(b, "pattern ", 8);
  bytes_str(b, p->file);
  bytes_str(b, p->name);
  bytes_printf(b, "\ngrid %d", p->grid_rank);
  for (int a = 0; a < IR_MAXGRID; a++) bytes_printf(b, " %" PRId64, p->grid[a]);
  bytes_printf(b, "\nscale %a dtypes %u head_dims", p->scale, p->dtypes);
  for (int i = 0; i < p->nhead_dims; i++) bytes_printf(b, " %d", p->head_dims[i]);
  for (int i = 0; i < p->nparams; i++) {
    const IrParam *q = &p->params[i];
    bytes_add(b, "\nparam ", 7);
    bytes_str(b, q->name);
    bytes_printf(b, "%d %a %a %d %d", (int)q->type, q->value, q->def, (int)q->overridden, q->line);
  }
  for (int i = 0; i < p->ninputs; i++) {
    const IrInput *in = &p->inputs[i];
    bytes_add(b, "\ninput ", 7);
    bytes_str(b, in->name);
    bytes_printf(b, "%d %d %d", (int)in->dtype, in->rank, in->line);
    for (int j = 0; j < in->rank && j < IR_MAXDIMS; j++)
      bytes_printf(b, " %d/%" PRId64, (int)in->dims[j].sym, in->dims[j].value);
  }
  for (int i = 0; i < p->nnodes; i++) {
    const IrNode *nd = &p->nodes[i];
    bytes_printf(b, "\n%d %d %d %d", (int)nd->op, (int)nd->type, nd->line, (int)nd->nargs);
    for (int j = 0; j < nd->nargs && j < IR_MAXARGS; j++) bytes_printf(b, " %d", nd->args[j]);
    bytes_printf(b, " #%" PRId64, nd->imm.i);      /* the union's bits, int or double */
  }
  bytes_printf(b, "\nmask %d score %d\n", p->mask, p->score);
}

/*
** The front half's key: the code version, the config asked for (its bytes:
** CudaConfig is plain values, zeroed with its padding before it is filled),
** use_plan, the ATTNC_CUDA_* variables (sorted) and the pattern.
*/
static attnc_status front_key(const IrPattern *p, const CudaConfig *asked, bool use_plan, Bytes *b,
                              Diag *d) {
  bytes_printf(b, "attnc cuda front\n%s\nconfig %zu ", attnc_cuda_front_version, sizeof *asked);
  bytes_hex(b, asked, sizeof *asked);
  bytes_printf(b, "\nplan %d\n", (int)use_plan);
  size_t n = 0;
  for (char **e = environ; e && *e; e++) n += strncmp(*e, "ATTNC_CUDA_", 11) == 0;
  const char **vars = malloc(sizeof *vars * (n ? n : 1));
  if (!vars) b->oom = true;
  else {
    n = 0;
    for (char **e = environ; *e; e++)
      if (strncmp(*e, "ATTNC_CUDA_", 11) == 0) vars[n++] = *e;
    qsort(vars, n, sizeof *vars, cmp_str);
    for (size_t i = 0; i < n; i++) { bytes_add(b, "env ", 4); bytes_str(b, vars[i]); bytes_add(b, "\n", 1); }
    free(vars);
  }
  key_pattern(b, p);
  if (b->oom) return diag_error(d, ATTNC_ERR_NOMEM, (Loc){ NULL, 0 }, "out of memory");
  return ATTNC_OK;
}

/* the cached config and source for key, the source copied into arena a */
static bool front_get(KCache *c, const Bytes *key, CudaConfig *cfg, Arena *a, char **src) {
  void *data = NULL;
  size_t len = 0, head = sizeof FRONT_MAGIC - 1 + sizeof *cfg;
  if (kcache_get(c, key->p, key->len, &data, &len) == KCACHE_MISS) return false;
  const char *r = data;
  bool ok = len > head && memcmp(r, FRONT_MAGIC, sizeof FRONT_MAGIC - 1) == 0 &&
            memchr(r + head, 0, len - head) == NULL;             /* one NUL: the one kcache adds */
  if (ok && (*src = arena_alloc(a, len - head + 1))) {
    memcpy(cfg, r + sizeof FRONT_MAGIC - 1, sizeof *cfg);
    memcpy(*src, r + head, len - head + 1);
  } else
    ok = false;
  free(data);
  return ok;
}

static void front_put(KCache *c, const Bytes *key, const CudaConfig *cfg, const char *src) {
  Bytes rec = { 0 };
  bytes_add(&rec, FRONT_MAGIC, sizeof FRONT_MAGIC - 1);
  bytes_add(&rec, cfg, sizeof *cfg);
  bytes_add(&rec, src, strlen(src));
  if (!rec.oom) kcache_put(c, key->p, key->len, rec.p, rec.len);   /* best effort */
  free(rec.p);
}

/* the config and source of a variant: from the cache, else plan and emit */
static attnc_status front_half(KCache *c, const IrPattern *p, CudaConfig *cfg, Arena *a, char **src,
                               Diag *d) {
  Bytes key = { 0 };
  attnc_status st = front_key(p, cfg, true, &key, d);
  if (!st && !front_get(c, &key, cfg, a, src)) {
    st = cuda_build_source(p, cfg, true, a, src, d);
    if (!st) front_put(c, &key, cfg, *src);
  }
  free(key.p);
  return st;
}

/* ------------------------------------------------------------ variants */

/* plan, emit and compile variant i, each half through the cache (called with the lock held) */
static attnc_status build_variant(attnc_kernel *k, CudaImpl *m, int i, Diag *d) {
  CudaVariant *v = &m->v[i];
  memset(&v->cfg, 0, sizeof v->cfg);          /* padding too: its bytes are in a key */
  v->cfg.dtype = m->key.dtype;
  v->cfg.head_dim = (int)m->key.D;
  v->cfg.head_dim_v = (int)m->key.Dv;
  v->cfg.arch = m->arch;
  v->cfg.seq_bits = i & 1 ? CUDA_SEQ_BITS_LARGE : CUDA_SEQ_BITS_SMALL;
  v->cfg.no_tma = (i & 2) != 0;
  v->cfg.block_m = m->sched.block_m;
  v->cfg.block_n = m->sched.block_n;
  v->cfg.raster = m->sched.order == 1;
  v->cfg.seq_hint = m->seq_hint;
  attnc_status st = front_half(m->cache, k->spec->pat, &v->cfg, &m->arena, &v->src, d);
  KCacheHit hit = KCACHE_MISS;
  if (!st) st = kcache_cuda_image(m->cache, v->src, m->arch, CUDA_IMAGE_CUBIN, &v->img, &hit, d);
  if (st) return st;
  v->built = true;
  k->info.cached = hit != KCACHE_MISS;
  return ATTNC_OK;
}

static attnc_status cuda_build(attnc_kernel *k, const KernelKey *key, void **impl, Diag *d) {
  *impl = NULL;
  if (key->dtype != DT_F16 && key->dtype != DT_BF16)
    return diag_error(d, ATTNC_ERR_UNSUPPORTED, (Loc){ NULL, 0 },
                      "the cuda target runs float16 and bfloat16 tensors (got %s)",
                      ir_dtype_name(key->dtype));
  CudaImpl *m = calloc(1, sizeof *m);
  if (!m) return diag_error(d, ATTNC_ERR_NOMEM, (Loc){ NULL, 0 }, "out of memory");
  pthread_mutex_init(&m->lock, NULL);
  arena_init(&m->arena);
  m->key = *key;
  m->sched = k->opts.schedule;
  m->seq_hint = k->opts.seq_hint;
  attnc_status st = ATTNC_OK;
  if (k->opts.arch && k->opts.arch[0]) {
    st = cuda_arch_from(k->opts.arch, &m->arch, d);
  } else if (!(st = cuda_driver_open(0, &m->drv, d)))
    m->arch = cuda_driver_arch(m->drv);
  if (!st && !(m->cache = kcache_new(NULL)))
    st = diag_error(d, ATTNC_ERR_NOMEM, (Loc){ NULL, 0 }, "out of memory");
  if (!st) st = build_variant(k, m, 0, d);
  if (st) { impl_free(m); return st; }
  *impl = m;
  return ATTNC_OK;
}

/* ---------------------------------------------------- host tensors */

/*
** Tensors in host memory (the CLI's npy path) are staged: copied into
** compact device buffers of the same dtype, and outputs copied back into
** the host tensors' own strides after the kernel finishes.
*/
typedef struct Stage {
  const DLTensor *host;
  DLTensor t;
  int64_t shape[8], strides[8];
  char *buf;                  /* compact host copy */
  size_t bytes;
} Stage;

static bool on_host(const DLTensor *t) {
  return t && (t->device.device_type == kDLCPU || t->device.device_type == kDLCUDAHost);
}

/* gather (to_compact) or scatter between a strided host tensor and s->buf */
static void host_copy(Stage *s, bool to_compact) {
  const DLTensor *h = s->host;
  size_t es = (size_t)(h->dtype.bits / 8) * (h->dtype.lanes ? h->dtype.lanes : 1);
  int nd = h->ndim;
  int64_t n = 1, st[8];
  for (int a = nd - 1; a >= 0; a--) {
    st[a] = h->strides ? h->strides[a] : n;
    n *= h->shape[a];
  }
  char *base = (char *)h->data + h->byte_offset;
  for (int64_t i = 0; i < n; i++) {
    int64_t r = i, off = 0;
    for (int a = nd - 1; a >= 0; a--) {
      off += (r % h->shape[a]) * st[a];
      r /= h->shape[a];
    }
    if (to_compact) memcpy(s->buf + (size_t)i * es, base + off * (int64_t)es, es);
    else memcpy(base + off * (int64_t)es, s->buf + (size_t)i * es, es);
  }
}

static attnc_status stage_in(CudaDriver *drv, const DLTensor *h, bool upload, Stage *s, Diag *d) {
  memset(s, 0, sizeof *s);
  s->host = h;
  s->t = *h;
  size_t es = (size_t)(h->dtype.bits / 8) * (h->dtype.lanes ? h->dtype.lanes : 1);
  int64_t n = 1;
  for (int a = h->ndim - 1; a >= 0 && a < 8; a--) {
    s->shape[a] = h->shape[a];
    s->strides[a] = n;
    n *= h->shape[a];
  }
  s->bytes = (size_t)n * es;
  s->buf = malloc(s->bytes ? s->bytes : 1);
  if (!s->buf) return diag_error(d, ATTNC_ERR_NOMEM, (Loc){ NULL, 0 }, "out of memory");
  void *dptr = NULL;
  attnc_status st = cuda_mem_alloc(drv, s->bytes, &dptr, d);
  if (st) return st;
  s->t.data = dptr;
  s->t.byte_offset = 0;
  s->t.device = (DLDevice){ kDLCUDA, 0 };
  s->t.shape = s->shape;
  s->t.strides = s->strides;
  if (!upload) return ATTNC_OK;
  host_copy(s, true);
  return cuda_memcpy_htod(drv, dptr, s->buf, s->bytes, d);
}

static attnc_status stage_out(CudaDriver *drv, Stage *s, Diag *d) {
  attnc_status st = cuda_memcpy_dtoh(drv, s->buf, s->t.data, s->bytes, d);
  if (!st) host_copy(s, false);
  return st;
}

static void stage_free(CudaDriver *drv, Stage *s) {
  if (s->host && s->t.data) cuda_mem_free(drv, s->t.data);
  free(s->buf);
  memset(s, 0, sizeof *s);
}

/* run with host tensors staged through device memory; synchronous (*copy:
   as cuda_launch, nothing ran) */
static attnc_status staged_launch(CudaDriver *drv, CudaModule *mod, const IrPattern *p,
                                  const attnc_args *args, bool *copy, Diag *d) {
  enum { NIN = 32 };
  Stage sq = { 0 }, sk = { 0 }, sv = { 0 }, so = { 0 }, sl = { 0 }, sin[NIN];
  attnc_named_tensor named[NIN];
  memset(sin, 0, sizeof sin);
  attnc_args a = *args;
  attnc_status st = ATTNC_OK;
  int nin = args->ninputs < NIN ? args->ninputs : NIN;
  if (on_host(args->q) && !(st = stage_in(drv, args->q, true, &sq, d))) a.q = &sq.t;
  if (!st && on_host(args->k) && !(st = stage_in(drv, args->k, true, &sk, d))) a.k = &sk.t;
  if (!st && on_host(args->v) && !(st = stage_in(drv, args->v, true, &sv, d))) a.v = &sv.t;
  if (!st && on_host(args->o) && !(st = stage_in(drv, args->o, false, &so, d))) a.o = &so.t;
  if (!st && on_host(args->lse) && !(st = stage_in(drv, args->lse, false, &sl, d))) a.lse = &sl.t;
  for (int i = 0; i < nin && !st; i++) {
    named[i] = args->inputs[i];
    if (on_host(args->inputs[i].tensor) && !(st = stage_in(drv, args->inputs[i].tensor, true, &sin[i], d)))
      named[i].tensor = &sin[i].t;
  }
  a.inputs = named;
  if (!st) st = cuda_launch(mod, p, &a, copy, d);
  bool ran = !st && !*copy;
  if (ran) st = cuda_sync(drv, args->stream, d);
  if (ran && !st && so.host) st = stage_out(drv, &so, d);
  if (ran && !st && sl.host) st = stage_out(drv, &sl, d);
  stage_free(drv, &sq); stage_free(drv, &sk); stage_free(drv, &sv);
  stage_free(drv, &so); stage_free(drv, &sl);
  for (int i = 0; i < nin; i++) stage_free(drv, &sin[i]);
  return st;
}

/* variant i's module: built (plan, emit, NVRTC, each through the cache) and loaded on first use */
static attnc_status variant_module(attnc_kernel *k, CudaImpl *m, int i, CudaModule **mod, Diag *d) {
  attnc_status st = ATTNC_OK;
  pthread_mutex_lock(&m->lock);
  if (!m->drv) st = cuda_driver_open(0, &m->drv, d);
  if (!st && cuda_driver_arch(m->drv) != m->arch) {
    char a1[16], a2[16];
    st = diag_error(d, ATTNC_ERR_ARG, (Loc){ NULL, 0 },
                    "the kernel was compiled for %s but %s is %s", cuda_arch_name(m->arch, a1),
                    cuda_driver_device_name(m->drv), cuda_arch_name(cuda_driver_arch(m->drv), a2));
  }
  if (!st && !m->v[i].built) st = build_variant(k, m, i, d);
  if (!st && !m->v[i].mod) st = cuda_module_load(m->drv, &m->v[i].img, &m->v[i].cfg, &m->v[i].mod, d);
  *mod = m->v[i].mod;
  pthread_mutex_unlock(&m->lock);
  return st;
}

static attnc_status cuda_run(attnc_kernel *k, void *impl, const attnc_args *args,
                             const Shape *shape, const IrTensorView *views, Diag *d) {
  CudaImpl *m = impl;
  (void)views;
  bool host = on_host(args->q) || on_host(args->k) || on_host(args->v) || on_host(args->o) ||
              on_host(args->lse);
  for (int i = 0; i < args->ninputs; i++) host = host || on_host(args->inputs[i].tensor);
  /* the TMA kernel first; where it cannot run on these tensors, its copy
     variant (which never asks for another) */
  int i = cuda_seq_bits_for(shape->Sq, shape->Sk) > CUDA_SEQ_BITS_SMALL;
  for (;;) {
    CudaModule *mod;
    bool copy = false;
    attnc_status st = variant_module(k, m, i, &mod, d);
    if (!st) st = host ? staged_launch(m->drv, mod, k->spec->pat, args, &copy, d)
                       : cuda_launch(mod, k->spec->pat, args, &copy, d);
    if (st || !copy) return st;
    if (i & 2) return diag_error(d, ATTNC_ERR_INTERNAL, (Loc){ NULL, 0 }, "the copy variant asked for TMA");
    i |= 2;
  }
}

static void cuda_release(void *impl) { impl_free(impl); }
attnc_status cuda_target_artifact(void *impl, const char *kind, void **data, size_t *len, Diag *d);

const TargetOps cuda_target_ops = { "cuda", cuda_build, cuda_run, cuda_release,
                                    cuda_target_artifact };

/*
** What `attnc compile --target cuda --emit cuda|ptx|cubin` writes, for a
** built specialisation: the generated source, PTX (compiled now, through
** the cache), or the cubin (where the runtime's image is two, one of all
** the kernels, compiled now through the cache). *data is malloc'd.
*/
attnc_status cuda_target_artifact(void *impl, const char *kind, void **data, size_t *len, Diag *d) {
  CudaImpl *m = impl;
  *data = NULL;
  *len = 0;
  pthread_mutex_lock(&m->lock);
  CudaVariant *v = &m->v[0];
  attnc_status st = ATTNC_OK;
  const void *src = NULL;
  size_t n = 0;
  CudaImage ptx = { 0 };
  if (strcmp(kind, "cuda") == 0) { src = v->src; n = strlen(v->src); }
  else if (strcmp(kind, "cubin") == 0 && cuda_image_parts(&v->img) == 1) { src = v->img.data; n = v->img.size; }
  else if (strcmp(kind, "cubin") == 0) {   /* the image is two: one cubin of all the kernels */
    KCacheHit hit;
    st = kcache_cuda_image(m->cache, v->src, m->arch, CUDA_IMAGE_CUBIN_ONE, &ptx, &hit, d);
    src = ptx.data;
    n = ptx.size;
  }
  else if (strcmp(kind, "ptx") == 0) {
    KCacheHit hit;
    st = kcache_cuda_image(m->cache, v->src, m->arch, CUDA_IMAGE_PTX, &ptx, &hit, d);
    src = ptx.data;
    n = ptx.size;
  } else
    st = diag_error(d, ATTNC_ERR_ARG, (Loc){ NULL, 0 },
                    "the cuda target emits cuda, ptx or cubin (not '%s')", kind);
  if (!st) {
    *data = malloc(n + 1);
    if (!*data) st = diag_error(d, ATTNC_ERR_NOMEM, (Loc){ NULL, 0 }, "out of memory");
    else {
      memcpy(*data, src, n);
      ((char *)*data)[n] = 0;
      *len = n;
    }
  }
  cuda_image_free(&ptx);
  pthread_mutex_unlock(&m->lock);
  return st;
}
