/*
** test_cuda_gpu.c -- the GPU suite: every spec in specs/ run by the cuda
** target and compared with the reference executor (ref_run, double
** precision on the same rounded inputs), at fp16 and bf16, on shapes with
** ragged tails and GQA, BHSD and BSHD layouts, grid specs also on larger
** grids. Max abs error of O must be <= 2e-2 (LSE likewise); every output
** element must be written (O and LSE are poisoned with NaN first).
** Without a GPU or driver it says so and passes (skipped).
**
** Flow: the parent compiles every kernel with NVRTC on all cores into a
** disk cache (no CUDA driver in the parent), then each spec is one Check
** test in its own process (a crashed kernel fails only its spec) that
** opens the driver, takes its kernels from the cache and runs its cases.
** Environment:
**   ATTNC_GPU_SPECS=causal,document   only these specs
**   ATTNC_GPU_QUICK=1                 small shapes (for compute-sanitizer)
**   ATTNC_GPU_REPORT=FILE             append the table as markdown
**   ATTNC_CUDA_PLAN=0                 dense iteration (no passes' plan)
*/
/* built only when CMake found NVRTC (tests/CMakeLists.txt filters test_cuda*) */
#ifndef ATTNC_HAVE_CUDA
#define ATTNC_HAVE_CUDA 1
#endif
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/testutil.h"
#include "backend/cuda/cuda.h"
#include "runtime/cache.h"
#include "runtime/runtime.h"

#define MAX_SPECS 128
#define MAX_CASES 8
#define TOL 2e-2

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* ------------------------------------------------------------ cases */

typedef struct Case {
  int64_t B, Hq, Hkv, Sq, Sk, D;
  bool bshd;
  IrDtype dt;
  int big;              /* the spec loaded with larger grid params */
} Case;

typedef struct SpecInfo {
  char name[128], path[512];
  int ncases;
  Case cases[MAX_CASES];
} SpecInfo;

static SpecInfo specs[MAX_SPECS];
static int nspecs;
static char cache_dir[256];
static char results_path[300];
static bool quick;
static bool dry;           /* ATTNC_GPU_DRY=1: no GPU; reference and compile only */

/* larger grids for grid specs: params with these names, if the spec has them */
static const attnc_define big_defs[] = {
  { "depth", "6" }, { "height", "20" }, { "width", "28" }, { "frames", "12" }, { "tokens", "40" },
};

static attnc_status load(attnc_ctx *ctx, const SpecInfo *si, int big, attnc_spec **out, attnc_error *err) {
  if (!big) return attnc_spec_load_file(ctx, tu_path(si->path), NULL, 0, out, err);
  attnc_spec *plain;
  attnc_status st = attnc_spec_load_file(ctx, tu_path(si->path), NULL, 0, &plain, err);
  if (st) return st;
  attnc_define defs[8];
  int n = 0;
  for (size_t i = 0; i < sizeof big_defs / sizeof big_defs[0]; i++)
    if (ir_find_param(plain->pat, big_defs[i].name) >= 0) defs[n++] = big_defs[i];
  attnc_spec_free(plain);
  return attnc_spec_load_file(ctx, tu_path(si->path), defs, n, out, err);
}

static int head_dim(const IrPattern *p, int want) {
  if (p->nhead_dims == 0) return want;
  for (int i = 0; i < p->nhead_dims; i++)
    if (p->head_dims[i] == want) return want;
  return p->head_dims[0];
}

static bool dtype_ok(const IrPattern *p, IrDtype dt) { return !p->dtypes || (p->dtypes & (1u << dt)); }

static int64_t grid_tokens(const IrPattern *p) {
  int64_t n = 1;
  for (int i = 0; i < p->grid_rank; i++) n *= p->grid[i];
  return n;
}

static void add_case1(SpecInfo *si, const IrPattern *p, Case c) {
  if (dtype_ok(p, c.dt) && si->ncases < MAX_CASES) si->cases[si->ncases++] = c;
}

static void add_case(SpecInfo *si, const IrPattern *p, Case c) {
  for (int i = 0; i < 2; i++) {
    c.dt = i ? DT_BF16 : DT_F16;
    if (!dtype_ok(p, c.dt) || si->ncases >= MAX_CASES) continue;
    si->cases[si->ncases++] = c;
  }
}

static attnc_status kernel_source(const IrPattern *p, const Case *c, Arena *a, CudaConfig *cfg,
                                  char **src, int arch, bool no_tma, Diag *d);

/* whether the sm_90a kernel for case c is the persistent one */
static bool persistent_at(const IrPattern *p, const Case *c) {
  Arena a;
  arena_init(&a);
  CudaConfig cfg;
  char *src;
  Diag d = { 0 };
  bool on = kernel_source(p, c, &a, &cfg, &src, 90, false, &d) == ATTNC_OK && cfg.persist;
  arena_free(&a);
  return on;
}

/* the cases of one spec: GQA and ragged tails; Sq != Sk where nothing forbids it */
static void make_cases(attnc_ctx *ctx, SpecInfo *si) {
  attnc_spec *s;
  attnc_error err;
  if (load(ctx, si, 0, &s, &err) != ATTNC_OK) {   /* verify_spec fails with no cases */
    fprintf(stderr, "test_cuda_gpu: %s: %s\n", si->path, err.message);
    return;
  }
  const IrPattern *p = s->pat;
  if (p->grid_rank > 0) {
    int64_t n = grid_tokens(p);
    add_case(si, p, (Case){ 2, 4, 2, n, n, head_dim(p, 64), false, 0, 0 });
    attnc_spec *b;
    if (!quick && load(ctx, si, 1, &b, &err) == ATTNC_OK) {
      /* D = 128: a producer loads the token boxes with TMA; 20 x 28 grids
         leave boxes past the edge (read as zero); a 3-D grid's heads and
         batches are one dim of the map, which BSHD with two batches cannot
         have (cp.async then) and BHSD can */
      int64_t nb = grid_tokens(b->pat);
      if (nb != n) {
        add_case(si, b->pat, (Case){ 2, 2, 1, nb, nb, head_dim(b->pat, 128), true, 0, 1 });
        add_case1(si, b->pat, (Case){ 2, 4, 2, nb, nb, head_dim(b->pat, 128), false, DT_BF16, 1 });
      }
      attnc_spec_free(b);
    }
  } else {
    int64_t S = quick ? 77 : 333;
    add_case(si, p, (Case){ 2, 4, 2, S, S, head_dim(p, 64), false, 0, 0 });
    if (!quick) {
      /* a ragged tail; even, so a dilated order's kv tiles come by TMA
         (dims tokens / d x d, which d must divide), where S = 333 above
         takes cp.async */
      int64_t sk = p->ninputs ? 200 : 260;
      add_case(si, p, (Case){ 1, 2, 1, 200, sk, head_dim(p, 128), true, 0, 0 });
      /* the other head dims, one per spec in turn, MQA (Hkv = 1) */
      static const int other[] = { 32, 96, 256 };
      static int turn;
      int D = head_dim(p, other[turn++ % 3]);
      add_case1(si, p, (Case){ 1, 3, 1, 150, 150, D, false, turn % 2 ? DT_F16 : DT_BF16, 0 });
      /* runtime inputs over more than one group of attnc_prep's summaries
         (32 kv tiles): data_narrow skips the groups before and after a q
         tile's documents */
      if (p->ninputs) add_case1(si, p, (Case){ 1, 2, 1, 4500, 4500, head_dim(p, 64), false, DT_BF16, 0 });
      /* where the kernel is the persistent one, several work items a CTA
         (9 q tiles x 16 heads x 2 batches: 288 items on 132 SMs), so the
         second Q buffer and the K slots running on across items are used */
      Case many = { 2, 16, 4, 1100, 1100, head_dim(p, 128), false, DT_BF16, 0 };
      if (persistent_at(p, &many)) add_case1(si, p, many);
    }
  }
  attnc_spec_free(s);
}

/* ------------------------------------------------------- compile all */

typedef struct CJob { SpecInfo *si; Case c; attnc_status st; char msg[1100]; double ms; } CJob;
typedef struct CPool { CJob *jobs; int n, next; pthread_mutex_t lock; KCache *cache; } CPool;

/* no_tma: the copy variant, which the runtime launches where the tensors
   have no TMA descriptor (cuda_launch) */
static attnc_status kernel_source(const IrPattern *p, const Case *c, Arena *a, CudaConfig *cfg,
                                  char **src, int arch, bool no_tma, Diag *d) {
  *cfg = (CudaConfig){ .dtype = c->dt, .head_dim = (int)c->D, .arch = arch,
                       .seq_bits = cuda_seq_bits_for(c->Sq, c->Sk), .no_tma = no_tma };
  return cuda_build_source(p, cfg, true, a, src, d);
}

static void *compile_worker(void *arg) {
  CPool *pool = arg;
  attnc_ctx *ctx = attnc_ctx_new();
  for (;;) {
    pthread_mutex_lock(&pool->lock);
    int i = pool->next++;
    pthread_mutex_unlock(&pool->lock);
    if (i >= pool->n) break;
    CJob *j = &pool->jobs[i];
    attnc_spec *s;
    attnc_error err;
    if ((j->st = load(ctx, j->si, j->c.big, &s, &err))) {
      snprintf(j->msg, sizeof j->msg, "%s", err.message);
      continue;
    }
    Arena a;
    arena_init(&a);
    Diag d = { 0 };
    CudaConfig cfg;
    char *src;
    int arch = atoi(getenv("ATTNC_GPU_ARCH"));
    j->st = kernel_source(s->pat, &j->c, &a, &cfg, &src, arch, false, &d);
    CudaImage img;
    KCacheHit hit;
    if (!j->st) j->st = kcache_cuda_image(pool->cache, src, arch, CUDA_IMAGE_CUBIN, &img, &hit, &d);
    if (!j->st) { j->ms = img.compile_ms; cuda_image_free(&img); }
    else snprintf(j->msg, sizeof j->msg, "%s", d.msg);
    arena_free(&a);
    attnc_spec_free(s);
  }
  attnc_ctx_free(ctx);
  return NULL;
}

static void compile_all(void) {
  int n = 0;
  for (int i = 0; i < nspecs; i++) n += specs[i].ncases;
  CJob *jobs = calloc((size_t)n, sizeof *jobs);
  int k = 0;
  for (int i = 0; i < nspecs; i++)
    for (int c = 0; c < specs[i].ncases; c++) jobs[k++] = (CJob){ .si = &specs[i], .c = specs[i].cases[c] };
  KCacheOptions opt = { .dir = cache_dir };
  CPool pool = { .jobs = jobs, .n = n, .cache = kcache_new(&opt) };
  pthread_mutex_init(&pool.lock, NULL);
  long nt = sysconf(_SC_NPROCESSORS_ONLN);
  if (nt < 1) nt = 1;
  if (nt > 32) nt = 32;
  pthread_t th[32];
  double t0 = now_ms();
  for (long t = 0; t < nt; t++) pthread_create(&th[t], NULL, compile_worker, &pool);
  for (long t = 0; t < nt; t++) pthread_join(th[t], NULL);
  double worst = 0, sum = 0;
  for (int i = 0; i < n; i++) {
    if (jobs[i].st) fprintf(stderr, "test_cuda_gpu: compile %s: %s\n", jobs[i].si->name, jobs[i].msg);
    if (jobs[i].ms > worst) worst = jobs[i].ms;
    sum += jobs[i].ms;
  }
  fprintf(stderr, "test_cuda_gpu: %d kernels compiled in %.0f ms on %ld threads (NVRTC mean %.0f ms, max %.0f ms)\n",
          n, now_ms() - t0, nt, n ? sum / n : 0, worst);
  kcache_free(pool.cache);
  free(jobs);
}

/* ------------------------------------------------------------ tensors */

static uint64_t rng_state;
static double urand(void) {           /* [0, 1) */
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (double)(rng_state >> 11) / 9007199254740992.0;
}

typedef struct HostT {
  float *data;        /* float32 or int32 bits */
  int64_t shape[4], strides[4];
  DLTensor t;
} HostT;

static void host_init(HostT *h, int nd, const int64_t *shape, DLDataType dt) {
  memset(h, 0, sizeof *h);
  int64_t n = 1;
  for (int i = nd - 1; i >= 0; i--) {
    h->shape[i] = shape[i];
    h->strides[i] = n;
    n *= shape[i];
  }
  h->data = calloc((size_t)(n ? n : 1), 4);
  h->t = (DLTensor){ .data = h->data, .device = { kDLCPU, 0 }, .ndim = nd, .dtype = dt,
                     .shape = h->shape, .strides = h->strides };
}

static int64_t numel(const HostT *h) {
  int64_t n = 1;
  for (int i = 0; i < h->t.ndim; i++) n *= h->shape[i];
  return n;
}

/* random values already rounded to dt, so the reference sees what the GPU sees */
static void fill_rounded(HostT *h, IrDtype dt, double lo, double hi) {
  for (int64_t i = 0; i < numel(h); i++) {
    float v = (float)(lo + (hi - lo) * urand());
    h->data[i] = dt == DT_F16 ? cuda_f16_to_f32(cuda_f32_to_f16(v)) : cuda_bf16_to_f32(cuda_f32_to_bf16(v));
  }
}

/*
** A device copy of a [B, H, S, D] host tensor in dtype dt, stored BHSD or
** BSHD (strides say which), or float32 / int32 as is for inputs.
*/
typedef struct DevT { CudaTensor ct; } DevT;

static attnc_status upload(CudaDriver *drv, const HostT *h, IrDtype dt, bool bshd, DevT *out, Diag *d) {
  CudaTensor *ct = &out->ct;
  memset(ct, 0, sizeof *ct);
  int nd = h->t.ndim;
  size_t eb = dt == DT_F16 || dt == DT_BF16 ? 2 : 4;
  int64_t n = numel(h);
  int perm[4] = { 0, 1, 2, 3 };
  if (bshd && nd == 4) { perm[1] = 2; perm[2] = 1; }
  /* memory order perm: strides of logical dims */
  int64_t st = 1;
  for (int j = nd - 1; j >= 0; j--) {
    ct->strides[perm[j]] = st;
    st *= h->shape[perm[j]];
  }
  for (int i = 0; i < nd; i++) ct->shape[i] = h->shape[i];
  char *buf = calloc((size_t)(n ? n : 1), eb);
  int64_t idx[4] = { 0 };
  for (int64_t i = 0; i < n; i++) {
    int64_t r = i, off = 0;
    for (int a = nd - 1; a >= 0; a--) { idx[a] = r % h->shape[a]; r /= h->shape[a]; }
    for (int a = 0; a < nd; a++) off += idx[a] * ct->strides[a];
    float v = h->data[i];
    if (dt == DT_F16) ((uint16_t *)buf)[off] = cuda_f32_to_f16(v);
    else if (dt == DT_BF16) ((uint16_t *)buf)[off] = cuda_f32_to_bf16(v);
    else memcpy(buf + off * 4, &h->data[i], 4);
  }
  void *dptr = NULL;
  attnc_status s = cuda_mem_alloc(drv, (size_t)(n ? n : 1) * eb, &dptr, d);
  if (!s) s = cuda_memcpy_htod(drv, dptr, buf, (size_t)n * eb, d);
  free(buf);
  ct->drv = drv;
  ct->t = (DLTensor){ .data = dptr, .device = { kDLCUDA, 0 }, .ndim = nd,
                      .dtype = dt == DT_F16 ? (DLDataType){ kDLFloat, 16, 1 }
                             : dt == DT_BF16 ? (DLDataType){ kDLBfloat, 16, 1 } : h->t.dtype,
                      .shape = ct->shape, .strides = ct->strides };
  return s;
}

/* read a device tensor (any strides, f16/bf16/f32) back into host float32 logical order */
static attnc_status download(CudaDriver *drv, const DevT *dv, HostT *h, Diag *d) {
  const CudaTensor *ct = &dv->ct;
  int nd = ct->t.ndim;
  int64_t n = numel(h), span = 1;
  for (int a = 0; a < nd; a++) span += (ct->shape[a] - 1) * ct->strides[a];
  size_t eb = ct->t.dtype.bits / 8;
  char *buf = malloc((size_t)span * eb);
  attnc_status s = cuda_memcpy_dtoh(drv, buf, ct->t.data, (size_t)span * eb, d);
  int64_t idx[4];
  for (int64_t i = 0; i < n && !s; i++) {
    int64_t r = i, off = 0;
    for (int a = nd - 1; a >= 0; a--) { idx[a] = r % ct->shape[a]; r /= ct->shape[a]; }
    for (int a = 0; a < nd; a++) off += idx[a] * ct->strides[a];
    if (eb == 4) memcpy(&h->data[i], buf + off * 4, 4);
    else if (ct->t.dtype.code == kDLBfloat) h->data[i] = cuda_bf16_to_f32(((uint16_t *)buf)[off]);
    else h->data[i] = cuda_f16_to_f32(((uint16_t *)buf)[off]);
  }
  free(buf);
  return s;
}

static int64_t dim_size(IrDim dm, const Case *c) {
  int64_t div = dm.value >= 1 ? dm.value : 1;
  switch (dm.sym) {
  case DIM_CONST: return dm.value;
  case DIM_B: return c->B;
  case DIM_H: return c->Hq;
  case DIM_HKV: return c->Hkv;
  case DIM_SQ: return (c->Sq + div - 1) / div;
  case DIM_SK: return (c->Sk + div - 1) / div;
  }
  return 1;
}

/*
** Runtime inputs: int32 inputs whose last dim runs over tokens get
** sorted segment ids (documents, clusters: runs of random length); other
** int32 inputs small non-negative ints (block indices, bitmap bits);
** float32 inputs values in [-1, 1).
*/
static void make_input(const IrInput *in, const Case *c, HostT *h) {
  int64_t shape[4];
  for (int i = 0; i < in->rank; i++) shape[i] = dim_size(in->dims[i], c);
  bool i32 = in->dtype == DT_I32;
  host_init(h, in->rank, shape, i32 ? (DLDataType){ kDLInt, 32, 1 } : (DLDataType){ kDLFloat, 32, 1 });
  int64_t n = numel(h);
  IrDimSym last = in->rank ? in->dims[in->rank - 1].sym : DIM_CONST;
  bool tokens = i32 && (last == DIM_SQ || last == DIM_SK) && in->dims[in->rank - 1].value <= 1;
  int64_t row = in->rank ? shape[in->rank - 1] : 1;
  int32_t seg = 0;
  for (int64_t i = 0; i < n; i++) {
    if (tokens) {
      if (i % row == 0) seg = 0;
      else if (urand() < 0.02) seg++;
      ((int32_t *)h->data)[i] = seg;
    } else if (i32)
      ((int32_t *)h->data)[i] = (int32_t)(urand() * 8);
    else
      h->data[i] = (float)(urand() * 2 - 1);
  }
}

/* ------------------------------------------------------------ one spec */

typedef struct Result {
  double err_o, err_lse;
  bool nan, pass, copy;     /* copy: the copy variant ran (no TMA descriptor) */
  double run_ms;
  char note[1100];
} Result;

static void report(const SpecInfo *si, const Case *c, const CudaConfig *cfg, const Result *r) {
  char an[16];
  char line[2048];
  snprintf(line, sizeof line, "| %s | %s | B%lld Hq%lld Hkv%lld Sq%lld Sk%lld D%lld %s | %dx%d w%d%s | %.2e | %.2e | %.3f | %s%s%s |\n",
           si->name, c->dt == DT_F16 ? "fp16" : "bf16", (long long)c->B, (long long)c->Hq,
           (long long)c->Hkv, (long long)c->Sq, (long long)c->Sk, (long long)c->D,
           c->bshd ? "BSHD" : "BHSD", cfg ? cfg->block_m : 0, cfg ? cfg->block_n : 0,
           cfg ? cfg->warps : 0, !cfg ? "" : r->copy ? " copy" : cuda_kv_tma(cfg) ? " tma" : "", r->err_o, r->err_lse, r->run_ms, r->pass ? "PASS" : "FAIL",
           r->note[0] ? ": " : "", r->note);
  (void)an;
  FILE *f = fopen(results_path, "a");
  if (f) { fputs(line, f); fclose(f); }
  fputs(line, stderr);
}

static void run_case(CudaDriver *drv, KCache *cache, attnc_ctx *ctx, const SpecInfo *si,
                     const Case *c, Result *r) {
  memset(r, 0, sizeof *r);
  r->err_o = r->err_lse = NAN;
  attnc_spec *s;
  attnc_error err;
  if (load(ctx, si, c->big, &s, &err)) { snprintf(r->note, sizeof r->note, "%s", err.message); report(si, c, NULL, r); return; }
  const IrPattern *p = s->pat;
  Arena a;
  arena_init(&a);
  Diag d = { 0 };
  CudaConfig cfg;
  char *src;
  int arch = drv ? cuda_driver_arch(drv) : atoi(getenv("ATTNC_GPU_ARCH"));
  CudaImage img = { 0 };
  CudaModule *m = NULL;
  KCacheHit hit;
  attnc_status st = kernel_source(p, c, &a, &cfg, &src, arch, false, &d);
  if (!st) st = kcache_cuda_image(cache, src, arch, CUDA_IMAGE_CUBIN, &img, &hit, &d);
  if (!st && drv) st = cuda_module_load(drv, &img, &cfg, &m, &d);
  cuda_image_free(&img);

  rng_state = 0x9E3779B97F4A7C15ull ^ (uint64_t)(c->Sq * 131 + c->D * 7 + c->dt);
  HostT q, k, v, o, lse, go, glse;
  int64_t qs[4] = { c->B, c->Hq, c->Sq, c->D }, ks[4] = { c->B, c->Hkv, c->Sk, c->D };
  int64_t os[4] = { c->B, c->Hq, c->Sq, c->D }, ls[3] = { c->B, c->Hq, c->Sq };
  DLDataType f32 = { kDLFloat, 32, 1 };
  host_init(&q, 4, qs, f32);
  host_init(&k, 4, ks, f32);
  host_init(&v, 4, ks, f32);
  host_init(&o, 4, os, f32);
  host_init(&go, 4, os, f32);
  host_init(&lse, 3, ls, f32);
  host_init(&glse, 3, ls, f32);
  fill_rounded(&q, c->dt, -1, 1);
  fill_rounded(&k, c->dt, -1, 1);
  fill_rounded(&v, c->dt, -1, 1);
  HostT ins[16];
  attnc_named_tensor named[16], dnamed[16];
  DevT dins[16];
  memset(dins, 0, sizeof dins);
  int nin = p->ninputs < 16 ? p->ninputs : 16;
  for (int i = 0; i < nin; i++) {
    make_input(&p->inputs[i], c, &ins[i]);
    named[i] = (attnc_named_tensor){ p->inputs[i].name, &ins[i].t };
  }
  /* the reference */
  attnc_args ra = { .q = &q.t, .k = &k.t, .v = &v.t, .o = &o.t, .lse = &lse.t, .inputs = named, .ninputs = nin };
  Diag rd = { 0 };
  if (!st && ref_run(p, &ra, &rd)) {
    st = rd.status;
    snprintf(d.msg, sizeof d.msg, "reference: %.1000s", rd.msg);
  }
  /* the GPU */
  DevT dq = { 0 }, dk = { 0 }, dv = { 0 }, dout = { 0 }, dl = { 0 };
  if (!drv) {                          /* dry run: reference and compile only */
    r->pass = !st;
    snprintf(r->note, sizeof r->note, "%s", st ? d.msg : "dry run (no GPU)");
    report(si, c, &cfg, r);
    goto done;
  }
  if (!st) st = upload(drv, &q, c->dt, c->bshd, &dq, &d);
  if (!st) st = upload(drv, &k, c->dt, c->bshd, &dk, &d);
  if (!st) st = upload(drv, &v, c->dt, c->bshd, &dv, &d);
  if (!st) st = upload(drv, &o, c->dt, c->bshd, &dout, &d);
  if (!st) st = upload(drv, &lse, DT_F32, false, &dl, &d);
  for (int i = 0; i < nin && !st; i++) {
    st = upload(drv, &ins[i], p->inputs[i].dtype, false, &dins[i], &d);
    dnamed[i] = (attnc_named_tensor){ p->inputs[i].name, &dins[i].ct.t };
  }
  /* poison the outputs: every element must be written */
  if (!st) st = cuda_memset8(drv, dout.ct.t.data, 0xff, (size_t)numel(&o) * 2, &d);
  if (!st) st = cuda_memset8(drv, dl.ct.t.data, 0xff, (size_t)numel(&lse) * 4, &d);
  attnc_args ga = { .q = &dq.ct.t, .k = &dk.ct.t, .v = &dv.ct.t, .o = &dout.ct.t, .lse = &dl.ct.t,
                    .inputs = dnamed, .ninputs = nin };
  double t0 = now_ms();
  bool copy = false;
  if (!st) st = cuda_launch(m, p, &ga, &copy, &d);
  if (!st && copy) {                   /* no descriptor for these tensors: as the runtime does */
    cuda_module_free(m);
    m = NULL;
    r->copy = true;
    st = kernel_source(p, c, &a, &cfg, &src, arch, true, &d);
    if (!st) st = kcache_cuda_image(cache, src, arch, CUDA_IMAGE_CUBIN, &img, &hit, &d);
    if (!st) st = cuda_module_load(drv, &img, &cfg, &m, &d);
    cuda_image_free(&img);
    if (!st) st = cuda_launch(m, p, &ga, NULL, &d);
  }
  if (!st) st = cuda_sync(drv, NULL, &d);
  r->run_ms = now_ms() - t0;
  if (!st) st = download(drv, &dout, &go, &d);
  if (!st) st = download(drv, &dl, &glse, &d);
  if (st) snprintf(r->note, sizeof r->note, "%s", d.msg);
  else {
    double eo = 0, el = 0;
    int64_t bad_lse = 0;
    for (int64_t i = 0; i < numel(&o); i++) {
      double e = fabs((double)go.data[i] - o.data[i]);
      if (isnan(go.data[i])) r->nan = true;
      else if (e > eo) eo = e;
    }
    for (int64_t i = 0; i < numel(&lse); i++) {
      float g = glse.data[i], w = lse.data[i];
      if (isnan(g)) { r->nan = true; continue; }
      if (isinf(w) || isinf(g)) { if (g != w) bad_lse++; continue; }
      double e = fabs((double)g - w);
      if (e > el) el = e;
    }
    r->err_o = eo;
    r->err_lse = el;
    r->pass = !r->nan && bad_lse == 0 && eo <= TOL && el <= TOL;
    if (r->nan) snprintf(r->note, sizeof r->note, "NaN or unwritten output");
    else if (bad_lse) snprintf(r->note, sizeof r->note, "%lld LSE values -inf on one side only", (long long)bad_lse);
  }
  report(si, c, m ? &cfg : NULL, r);
done:
  cuda_tensor_free(&dq.ct); cuda_tensor_free(&dk.ct); cuda_tensor_free(&dv.ct);
  cuda_tensor_free(&dout.ct); cuda_tensor_free(&dl.ct);
  for (int i = 0; i < nin; i++) { cuda_tensor_free(&dins[i].ct); free(ins[i].data); }
  free(q.data); free(k.data); free(v.data); free(o.data); free(go.data); free(lse.data); free(glse.data);
  cuda_module_free(m);
  arena_free(&a);
  attnc_spec_free(s);
}

START_TEST(verify_spec) {
  SpecInfo *si = &specs[_i];
  CudaDriver *drv = NULL;
  Diag d = { 0 };
  if (!dry) ck_assert_msg(cuda_driver_open(0, &drv, &d) == ATTNC_OK, "%s", d.msg);
  KCacheOptions opt = { .dir = cache_dir };
  KCache *cache = kcache_new(&opt);
  attnc_ctx *ctx = attnc_ctx_new();
  int failed = 0;
  for (int i = 0; i < si->ncases; i++) {
    Result r;
    run_case(drv, cache, ctx, si, &si->cases[i], &r);
    failed += !r.pass;
  }
  attnc_ctx_free(ctx);
  kcache_free(cache);
  cuda_driver_close(drv);
  ck_assert_msg(si->ncases > 0, "%s: no cases (the spec does not load)", si->name);
  ck_assert_msg(failed == 0, "%s: %d of %d cases failed", si->name, failed, si->ncases);
}
END_TEST

/* ------------------------------------------------- the target ops */

extern const TargetOps cuda_target_ops;

/* a host f16 copy of a float32 host tensor, stored BSHD when bshd */
static void host_half(const HostT *f, bool bshd, uint16_t **buf, DLTensor *t, int64_t *strides) {
  int64_t n = numel(f);
  *buf = calloc((size_t)n, 2);
  int perm[4] = { 0, bshd ? 2 : 1, bshd ? 1 : 2, 3 };
  int64_t st = 1;
  for (int j = 3; j >= 0; j--) { strides[perm[j]] = st; st *= f->shape[perm[j]]; }
  for (int64_t i = 0; i < n; i++) {
    int64_t r = i, idx[4], off = 0;
    for (int a = 3; a >= 0; a--) { idx[a] = r % f->shape[a]; r /= f->shape[a]; }
    for (int a = 0; a < 4; a++) off += idx[a] * strides[a];
    (*buf)[off] = cuda_f32_to_f16(f->data[i]);
  }
  *t = (DLTensor){ .data = *buf, .device = { kDLCPU, 0 }, .ndim = 4, .dtype = { kDLFloat, 16, 1 },
                   .shape = (int64_t *)f->shape, .strides = strides };
}

/* cuda_target_ops through an attnc_kernel, with host tensors (the CLI's path) */
START_TEST(target_ops_host_tensors) {
  if (dry) return;
  attnc_ctx *ctx = attnc_ctx_new();
  attnc_spec *spec;
  attnc_error err;
  ck_assert_int_eq(attnc_spec_load_file(ctx, tu_path("specs/causal.lua"), NULL, 0, &spec, &err), ATTNC_OK);
  attnc_kernel k;
  memset(&k, 0, sizeof k);
  k.ctx = ctx;
  k.spec = spec;
  k.opts.target = ATTNC_TARGET_CUDA;
  k.ops = &cuda_target_ops;
  pthread_mutex_init(&k.lock, NULL);
  KernelKey key = { DT_F16, 64, 64 };
  void *impl = NULL;
  Diag d = { 0 };
  ck_assert_msg(cuda_target_ops.build(&k, &key, &impl, &d) == ATTNC_OK, "%s", d.msg);
  void *art;
  size_t len;
  ck_assert_int_eq(cuda_target_artifact(impl, "cuda", &art, &len, &d), ATTNC_OK);
  ck_assert_ptr_nonnull(strstr(art, "attnc_fwd"));
  free(art);
  ck_assert_int_eq(cuda_target_artifact(impl, "ptx", &art, &len, &d), ATTNC_OK);
  ck_assert_ptr_nonnull(strstr(art, ".entry attnc_fwd"));
  free(art);
  Case c = { 2, 4, 2, 99, 99, 64, true, DT_F16, 0 };
  rng_state = 12345;
  HostT q, kk, v, o, lse, go;
  int64_t qs[4] = { c.B, c.Hq, c.Sq, c.D }, ks[4] = { c.B, c.Hkv, c.Sk, c.D }, ls[3] = { c.B, c.Hq, c.Sq };
  DLDataType f32 = { kDLFloat, 32, 1 };
  host_init(&q, 4, qs, f32); host_init(&kk, 4, ks, f32); host_init(&v, 4, ks, f32);
  host_init(&o, 4, qs, f32); host_init(&go, 4, qs, f32); host_init(&lse, 3, ls, f32);
  fill_rounded(&q, DT_F16, -1, 1); fill_rounded(&kk, DT_F16, -1, 1); fill_rounded(&v, DT_F16, -1, 1);
  attnc_args ra = { .q = &q.t, .k = &kk.t, .v = &v.t, .o = &o.t, .lse = &lse.t };
  ck_assert_int_eq(ref_run(spec->pat, &ra, &d), ATTNC_OK);
  uint16_t *hq, *hk, *hv, *ho;
  DLTensor tq, tk, tv, to;
  int64_t sq[4], sk[4], sv[4], so[4];
  host_half(&q, true, &hq, &tq, sq);
  host_half(&kk, true, &hk, &tk, sk);
  host_half(&v, false, &hv, &tv, sv);
  host_half(&go, true, &ho, &to, so);
  HostT glse;
  host_init(&glse, 3, ls, f32);
  attnc_args ga = { .q = &tq, .k = &tk, .v = &tv, .o = &to, .lse = &glse.t };
  Shape shape = { c.B, c.Hq, c.Hkv, c.Sq, c.Sk, c.D, c.D };
  ck_assert_msg(cuda_target_ops.run(&k, impl, &ga, &shape, NULL, &d) == ATTNC_OK, "%s", d.msg);
  double eo = 0, el = 0;
  for (int64_t i = 0; i < numel(&o); i++) {
    int64_t r = i, idx[4], off = 0;
    for (int a = 3; a >= 0; a--) { idx[a] = r % o.shape[a]; r /= o.shape[a]; }
    for (int a = 0; a < 4; a++) off += idx[a] * so[a];
    double e = fabs(cuda_f16_to_f32(ho[off]) - o.data[i]);
    if (!(e <= eo)) eo = e;
  }
  for (int64_t i = 0; i < numel(&lse); i++) {
    double e = fabs((double)glse.data[i] - lse.data[i]);
    if (!(e <= el)) el = e;
  }
  fprintf(stderr, "test_cuda_gpu: target ops, host tensors (BSHD): max err O %.2e, LSE %.2e\n", eo, el);
  ck_assert_msg(eo <= TOL && el <= TOL, "O %g LSE %g", eo, el);
  cuda_target_ops.release(impl);
  free(hq); free(hk); free(hv); free(ho);
  free(q.data); free(kk.data); free(v.data); free(o.data); free(go.data); free(lse.data); free(glse.data);
  attnc_spec_free(spec);
  attnc_ctx_free(ctx);
}
END_TEST

/*
** One document over all S tokens is dense attention. At these lengths a q
** tile's kv tiles span more than one chunk of the data iterator's tests
** (kDataChunk tiles): the first chunk comes from attnc_prep_q's record,
** the rest are tested in the kernel. The documents kernel's output is
** compared with the dense kernel's on the same inputs (host tensors, the
** CLI's path; both kernels are checked against the reference above on
** shapes the reference can afford).
*/
START_TEST(one_document_is_dense) {
  if (dry) return;
  static const struct { int64_t S, D; } cs[] = { { 17000, 64 }, { 33000, 128 } };
  attnc_ctx *ctx = attnc_ctx_new();
  attnc_error err;
  attnc_spec *doc, *dense;
  attnc_define whole = { "causal", "0" };
  ck_assert_msg(attnc_spec_load_file(ctx, tu_path("specs/document.lua"), &whole, 1, &doc, &err) == ATTNC_OK,
                "%s", err.message);
  ck_assert_msg(attnc_spec_load_string(ctx, "dense", "local a = require \"attnc\"\nreturn a.pattern {}\n",
                                       NULL, 0, &dense, &err) == ATTNC_OK, "%s", err.message);
  for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++) {
    const int64_t S = cs[ci].S, D = cs[ci].D;
    attnc_compile_options opts = { .target = ATTNC_TARGET_CUDA, .dtype = ATTNC_DTYPE_F16,
                                   .head_dim = (int)D, .seq_hint = S };
    attnc_kernel *kd, *kn;
    ck_assert_msg(attnc_kernel_compile(ctx, doc, &opts, &kd, &err) == ATTNC_OK, "%s", err.message);
    ck_assert_msg(attnc_kernel_compile(ctx, dense, &opts, &kn, &err) == ATTNC_OK, "%s", err.message);
    /* the walk must reach a second chunk, or this tests nothing new */
    void *src;
    size_t len;
    ck_assert_int_eq(attnc_kernel_artifact(kd, "cuda", &src, &len, &err), ATTNC_OK);
    int bn = (int)tu_source_int(src, "kBlockN = "), rec = (int)tu_source_int(src, "kDataQRec = ");
    free(src);
    ck_assert_msg(bn > 0 && rec > 3 && (S + bn - 1) / bn > (int64_t)(rec - 3) * 32,
                  "S %lld: kBlockN %d, kDataQRec %d: one chunk", (long long)S, bn, rec);

    rng_state = 777 + ci;
    HostT q, k, v, od, on, ld, ln;
    int64_t qs[4] = { 1, 1, S, D }, ls[3] = { 1, 1, S };
    DLDataType f32 = { kDLFloat, 32, 1 };
    host_init(&q, 4, qs, f32); host_init(&k, 4, qs, f32); host_init(&v, 4, qs, f32);
    host_init(&od, 4, qs, f32); host_init(&on, 4, qs, f32);
    host_init(&ld, 3, ls, f32); host_init(&ln, 3, ls, f32);
    fill_rounded(&q, DT_F16, -1, 1); fill_rounded(&k, DT_F16, -1, 1); fill_rounded(&v, DT_F16, -1, 1);
    uint16_t *hq, *hk, *hv, *hod, *hon;
    DLTensor tq, tk, tv, tod, ton;
    int64_t sq[4], sk[4], sv[4], sod[4], son[4];
    host_half(&q, false, &hq, &tq, sq);
    host_half(&k, false, &hk, &tk, sk);
    host_half(&v, false, &hv, &tv, sv);
    host_half(&od, false, &hod, &tod, sod);
    host_half(&on, false, &hon, &ton, son);
    int32_t *ids = calloc((size_t)S, sizeof *ids);      /* document 0 throughout */
    int64_t ids_shape[1] = { S };
    DLTensor tids = { .data = ids, .device = { kDLCPU, 0 }, .ndim = 1, .dtype = { kDLInt, 32, 1 },
                      .shape = ids_shape };
    attnc_named_tensor in = { "doc", &tids };
    attnc_args ad = { .q = &tq, .k = &tk, .v = &tv, .o = &tod, .lse = &ld.t, .inputs = &in, .ninputs = 1 };
    attnc_args an = { .q = &tq, .k = &tk, .v = &tv, .o = &ton, .lse = &ln.t };
    ck_assert_msg(attnc_kernel_run(kd, &ad, &err) == ATTNC_OK, "%s", err.message);
    ck_assert_msg(attnc_kernel_run(kn, &an, &err) == ATTNC_OK, "%s", err.message);
    double eo = 0, el = 0;
    for (int64_t i = 0; i < numel(&od); i++) {
      double e = fabs(cuda_f16_to_f32(hod[i]) - cuda_f16_to_f32(hon[i]));
      if (!(e <= eo)) eo = e;
    }
    for (int64_t i = 0; i < S; i++) {
      double e = fabs((double)ld.data[i] - ln.data[i]);
      if (!(e <= el)) el = e;
    }
    fprintf(stderr, "test_cuda_gpu: one document of %lld tokens, D=%lld (%lld kv tiles, chunks of %d): "
            "max diff against dense O %.2e, LSE %.2e\n", (long long)S, (long long)D,
            (long long)((S + bn - 1) / bn), (rec - 3) * 32, eo, el);
    ck_assert_msg(eo <= TOL && el <= TOL, "S %lld D %lld: O %g LSE %g", (long long)S, (long long)D, eo, el);
    free(hq); free(hk); free(hv); free(hod); free(hon); free(ids);
    free(q.data); free(k.data); free(v.data); free(od.data); free(on.data); free(ld.data); free(ln.data);
    attnc_kernel_free(kd);
    attnc_kernel_free(kn);
  }
  attnc_spec_free(doc);
  attnc_spec_free(dense);
  attnc_ctx_free(ctx);
}
END_TEST

/* ------------------------------------------------------------- main */

/* probe for a GPU in a child, so the parent never initialises CUDA before forking */
static bool probe_gpu(char *msg, size_t n, int *arch, char *name, size_t nn) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    CudaDriver *drv;
    Diag d = { 0 };
    char out[1400];
    if (cuda_driver_open(0, &drv, &d) == ATTNC_OK)
      snprintf(out, sizeof out, "ok %d %s", cuda_driver_arch(drv), cuda_driver_device_name(drv));
    else
      snprintf(out, sizeof out, "no %s", d.msg);
    if (write(fds[1], out, strlen(out) + 1) < 0) _exit(2);
    _exit(0);
  }
  close(fds[1]);
  char buf[1400] = "";
  ssize_t got = read(fds[0], buf, sizeof buf - 1);
  close(fds[0]);
  waitpid(pid, NULL, 0);
  if (got <= 0) { snprintf(msg, n, "GPU probe failed"); return false; }
  buf[got] = 0;
  if (strncmp(buf, "ok ", 3) != 0) { snprintf(msg, n, "%s", buf + 3); return false; }
  char *sp = strchr(buf + 3, ' ');
  *arch = atoi(buf + 3);
  snprintf(name, nn, "%s", sp ? sp + 1 : "?");
  return true;
}

static bool wanted(const char *name) {
  const char *list = getenv("ATTNC_GPU_SPECS");
  if (!list || !*list) return true;
  size_t n = strlen(name);
  for (const char *p = list; *p;) {
    const char *e = strchr(p, ',');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    if (l == n && strncmp(p, name, n) == 0) return true;
    if (!e) break;
    p = e + 1;
  }
  return false;
}

static int name_cmp(const void *a, const void *b) {
  return strcmp(((const SpecInfo *)a)->name, ((const SpecInfo *)b)->name);
}

int main(void) {
  char msg[1400], name[300];
  int arch = 0;
  dry = getenv("ATTNC_GPU_DRY") && strcmp(getenv("ATTNC_GPU_DRY"), "0") != 0;
  if (dry) {
    arch = 90;
    snprintf(name, sizeof name, "no GPU (dry run)");
  } else if (!probe_gpu(msg, sizeof msg, &arch, name, sizeof name)) {
    printf("test_cuda_gpu: skipped: %s\n", msg);
    return 0;
  }
  quick = getenv("ATTNC_GPU_QUICK") && strcmp(getenv("ATTNC_GPU_QUICK"), "0") != 0;
  char archs[16];
  snprintf(archs, sizeof archs, "%d", arch);
  setenv("ATTNC_GPU_ARCH", archs, 1);
  const char *env_cache = getenv("ATTNC_CACHE_DIR");
  if (env_cache && *env_cache) snprintf(cache_dir, sizeof cache_dir, "%s", env_cache);
  else {
    snprintf(cache_dir, sizeof cache_dir, "/tmp/attnc-gpu-cache-XXXXXX");
    if (!mkdtemp(cache_dir)) { perror("mkdtemp"); return 1; }
  }
  const char *rep = getenv("ATTNC_GPU_REPORT");
  snprintf(results_path, sizeof results_path, "%s", rep && *rep ? rep : "/dev/null");

  DIR *dir = opendir(tu_path("specs"));
  struct dirent *e;
  while (dir && (e = readdir(dir)) && nspecs < MAX_SPECS) {
    size_t l = strlen(e->d_name);
    if (l <= 4 || strcmp(e->d_name + l - 4, ".lua") != 0) continue;
    SpecInfo *si = &specs[nspecs];
    snprintf(si->name, sizeof si->name, "%.*s", (int)(l - 4), e->d_name);
    if (!wanted(si->name)) continue;
    snprintf(si->path, sizeof si->path, "specs/%s", e->d_name);
    nspecs++;
  }
  if (dir) closedir(dir);
  qsort(specs, (size_t)nspecs, sizeof specs[0], name_cmp);
  attnc_ctx *ctx = attnc_ctx_new();
  for (int i = 0; i < nspecs; i++) make_cases(ctx, &specs[i]);
  attnc_ctx_free(ctx);
  FILE *f = fopen(results_path, "a");
  if (f) {
    fprintf(f, "\n### %s (sm_%d), plan %s\n\n| spec | dtype | shape | tiles | max err O | max err LSE | run ms | result |\n|---|---|---|---|---|---|---|---|\n",
            name, arch, getenv("ATTNC_CUDA_PLAN") && strcmp(getenv("ATTNC_CUDA_PLAN"), "0") == 0 ? "off (dense)" : "on");
    fclose(f);
  }
  fprintf(stderr, "test_cuda_gpu: %s (sm_%d), %d specs\n", name, arch, nspecs);
  /* NVRTC in a child too: a parent that touched CUDA libraries can leave its
     forked children unable to cuInit (seen: CUDA_ERROR_NOT_INITIALIZED) */
  pid_t pid = fork();
  if (pid == 0) {
    compile_all();
    _exit(0);
  }
  waitpid(pid, NULL, 0);

  Suite *s = suite_create("cuda_gpu");
  TCase *tc = tcase_create("verify");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, verify_spec, 0, nspecs);
  if (!getenv("ATTNC_GPU_SPECS")) tcase_add_test(tc, target_ops_host_tensors);
  if (wanted("document")) tcase_add_test(tc, one_document_is_dense);
  suite_add_tcase(s, tc);
  return tu_run(s);
}
