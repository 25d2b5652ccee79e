/*
** jit.c -- from a generated module to running code: the host target, the
** optimisation pipeline (default<O3> through the new pass manager), ORC
** LLJIT for in-process kernels, and object / LLVM IR / assembly files plus
** a C header for ahead-of-time use.
**
** Each kernel owns a thread-safe LLVM context and an LLJIT instance, so
** compiles in different threads never share LLVM state. The host target is
** detected once (pthread_once) and never changes afterwards.
*/
#define CPU_INTERNAL
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "backend/cpu/cpu.h"

struct CpuKernel {
  LLVMOrcLLJITRef jit;
  CpuWorkFn work;
  CpuNworkFn nwork;
  CpuOptions o;
  char symbol[200];
  int bm, bn;
  double compile_ms;
  bool cached;
};

/* ------------------------------------------------------------ the target */

static pthread_once_t target_once = PTHREAD_ONCE_INIT;
static CpuTarget host;            /* written once, under target_once */
static bool host_ok;

static void detect_host(void) {
  if (LLVMInitializeNativeTarget() || LLVMInitializeNativeAsmPrinter()) return;
  char *triple = LLVMGetDefaultTargetTriple();
  char *cpu = LLVMGetHostCPUName();
  char *feat = LLVMGetHostCPUFeatures();
  snprintf(host.triple, sizeof host.triple, "%s", triple);
  snprintf(host.cpu, sizeof host.cpu, "%s", cpu);
  host.features = strdup(feat ? feat : "");
  LLVMDisposeMessage(triple);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(feat);
  if (!host.features) return;
  bool avx512 = strstr(host.features, "+avx512f") != NULL;
  bool avx = strstr(host.features, "+avx,") != NULL || strstr(host.features, "+avx2") != NULL;
  host.vec_width = avx512 ? 16 : avx ? 8 : 4;
  host.nregs = avx512 ? 32 : 16;
  /* ATTNC_CPU_VEC=4|8|16 sets the vector width (testing the other widths'
     code: LLVM splits vectors wider than the machine's) */
  const char *e = getenv("ATTNC_CPU_VEC");
  if (e) {
    int w = atoi(e);
    if (w == 4 || w == 8 || w == 16) host.vec_width = w;
  }
  host_ok = true;
}

const CpuTarget *cpu_target(void) {
  pthread_once(&target_once, detect_host);
  return host_ok ? &host : NULL;
}

static LLVMTargetMachineRef make_tm(LLVMRelocMode reloc, LLVMCodeModel cm, Diag *d) {
  const CpuTarget *t = cpu_target();
  LLVMTargetRef target;
  char *msg = NULL;
  if (!t || LLVMGetTargetFromTriple(t->triple, &target, &msg)) {
    diag_error(d, ATTNC_ERR_UNSUPPORTED, (Loc){ 0 }, "cpu: no LLVM target for this host%s%s",
               msg ? ": " : "", msg ? msg : "");
    LLVMDisposeMessage(msg);
    return NULL;
  }
  return LLVMCreateTargetMachine(target, t->triple, t->cpu, t->features, LLVMCodeGenLevelAggressive,
                                 reloc, cm);
}

static attnc_status error_of(LLVMErrorRef err, const char *what, Diag *d) {
  char *m = LLVMGetErrorMessage(err);
  diag_error(d, ATTNC_ERR_COMPILE, (Loc){ 0 }, "cpu: %s: %s", what, m);
  LLVMDisposeErrorMessage(m);
  return ATTNC_ERR_COMPILE;
}

static attnc_status check_options(const IrPattern *p, const CpuOptions *o, Diag *d) {
  if (o->dtype != DT_F32 && o->dtype != DT_BF16)
    return diag_error(d, ATTNC_ERR_UNSUPPORTED, (Loc){ 0 },
                      "the cpu target supports float32 and bfloat16 (got %s)", ir_dtype_name(o->dtype));
  if (o->D < 1 || o->D > 1024 || o->Dv < 1 || o->Dv > 1024)
    return diag_error(d, ATTNC_ERR_UNSUPPORTED, (Loc){ 0 },
                      "the cpu target supports head dims 1..1024 (got D = %d, Dv = %d)", o->D, o->Dv);
  return ATTNC_OK;
}

/* run the O3 pipeline on m for tm */
static attnc_status optimise(LLVMModuleRef m, LLVMTargetMachineRef tm, Diag *d) {
  LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
  LLVMPassBuilderOptionsSetLoopVectorization(po, 1);
  LLVMPassBuilderOptionsSetSLPVectorization(po, 1);
  LLVMErrorRef err = LLVMRunPasses(m, "default<O3>", tm, po);
  LLVMDisposePassBuilderOptions(po);
  if (err) return error_of(err, "optimising", d);
  return ATTNC_OK;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ------------------------------------------------------------------ JIT */

/* append text to a malloc'd string */
static char *cat(char *s, const char *t) {
  size_t a = s ? strlen(s) : 0, b = strlen(t);
  char *r = realloc(s, a + b + 1);
  if (!r) { free(s); return NULL; }
  memcpy(r + a, t, b + 1);
  return r;
}

/*
** The cache key of a compile: everything the object depends on besides
** the generated IR (versions, target, features, options), then the IR
** itself, so a change in the generator can never return a stale object.
*/
char *cpu_cache_key(const CpuOptions *o, const char *ir) {
  const CpuTarget *t = cpu_target();
  char head[1024];
  unsigned maj, min, pat;
  LLVMGetVersion(&maj, &min, &pat);
  snprintf(head, sizeof head, "attnc-cpu-object 2\nattnc %s\nllvm %u.%u.%u\ntriple %s\ncpu %s\nwidth %d\n"
           "opt default<O3> reloc pic\nfeatures ",
           attnc_version(), maj, min, pat, t ? t->triple : "?", t ? t->cpu : "?", t ? t->vec_width : 0);
  char *k = cat(NULL, head);
  if (k && t) k = cat(k, t->features);
  if (k) k = cat(k, "\nir\n");
  if (k) k = cat(k, ir);
  return k;
}

/* the kernel as an object file in memory: from the cache, or compiled */
static LLVMMemoryBufferRef object_of(const IrPattern *p, const CpuOptions *o, bool *cached, Diag *d) {
  *cached = false;
  LLVMContextRef C = LLVMContextCreate();
  LLVMModuleRef m = cpu_build_module(C, p, o, d);
  LLVMMemoryBufferRef mb = NULL;
  char *key = NULL;
  if (m && o->cache) {
    char *ir = LLVMPrintModuleToString(m);
    key = cpu_cache_key(o, ir);
    LLVMDisposeMessage(ir);
  }
  if (key && o->cache->get) {
    void *data = NULL;
    size_t len = 0;
    if (o->cache->get(o->cache->ud, key, strlen(key), &data, &len) && data && len > 0) {
      mb = LLVMCreateMemoryBufferWithMemoryRangeCopy(data, len, "attnc-cpu-object");
      *cached = true;
    }
    free(data);
  }
  LLVMTargetMachineRef tm = m && !mb ? make_tm(LLVMRelocPIC, LLVMCodeModelDefault, d) : NULL;
  if (tm && optimise(m, tm, d) == ATTNC_OK) {
    if (getenv("ATTNC_CPU_DUMP")) {          /* the optimised IR, for tuning */
      char *s = LLVMPrintModuleToString(m);
      fputs(s, stderr);
      LLVMDisposeMessage(s);
    }
    char *msg = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(tm, m, LLVMObjectFile, &msg, &mb)) {
      diag_error(d, ATTNC_ERR_COMPILE, (Loc){ 0 }, "cpu: code generation failed: %s", msg ? msg : "?");
      mb = NULL;
    }
    LLVMDisposeMessage(msg);
    if (mb && key && o->cache->put)
      o->cache->put(o->cache->ud, key, strlen(key), LLVMGetBufferStart(mb), LLVMGetBufferSize(mb));
  }
  if (m) LLVMDisposeModule(m);
  if (tm) LLVMDisposeTargetMachine(tm);
  LLVMContextDispose(C);
  free(key);
  return mb;
}

static attnc_status lookup(CpuKernel *k, const char *suffix, LLVMOrcExecutorAddress *addr, Diag *d) {
  char name[256];
  snprintf(name, sizeof name, "%s_%s", k->symbol, suffix);
  LLVMErrorRef err = LLVMOrcLLJITLookup(k->jit, addr, name);
  return err ? error_of(err, "looking up the kernel", d) : ATTNC_OK;
}

/*
** Compile (or fetch from the cache) the kernel's object and link it into
** a fresh LLJIT; look up the entry points. The plan is used only here.
*/
attnc_status cpu_compile(const IrPattern *p, const CpuOptions *o, CpuKernel **out, Diag *d) {
  *out = NULL;
  attnc_status st = check_options(p, o, d);
  if (st) return st;
  if (!cpu_target())
    return diag_error(d, ATTNC_ERR_UNSUPPORTED, (Loc){ 0 }, "cpu: the host target is not supported by LLVM");
  double t0 = now_ms();
  CpuKernel *k = calloc(1, sizeof *k);
  if (!k) return diag_error(d, ATTNC_ERR_NOMEM, (Loc){ 0 }, "out of memory");
  k->o = *o;
  cpu_symbol(p, o, k->symbol, sizeof k->symbol);
  k->o.symbol = k->symbol;
  cpu_tiles(cpu_target(), &k->o, &k->bm, &k->bn);
  bool cached;
  LLVMMemoryBufferRef obj = object_of(p, &k->o, &cached, d);
  k->o.plan = NULL;                  /* not kept: the code is self-contained */
  k->o.cache = NULL;
  k->cached = cached;
  if (!obj) {
    free(k);
    return d->status ? d->status : diag_error(d, ATTNC_ERR_COMPILE, (Loc){ 0 }, "cpu: no object");
  }
  LLVMOrcLLJITBuilderRef jb = LLVMOrcCreateLLJITBuilder();
  LLVMOrcJITTargetMachineBuilderRef jtmb;
  LLVMErrorRef err = LLVMOrcJITTargetMachineBuilderDetectHost(&jtmb);
  if (err) {
    LLVMOrcDisposeLLJITBuilder(jb);
    LLVMDisposeMemoryBuffer(obj);
    free(k);
    return error_of(err, "detecting the host", d);
  }
  LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(jb, jtmb);
  if ((err = LLVMOrcCreateLLJIT(&k->jit, jb))) {
    LLVMDisposeMemoryBuffer(obj);
    free(k);
    return error_of(err, "creating the JIT", d);
  }
  LLVMOrcDefinitionGeneratorRef gen;
  err = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(k->jit), NULL, NULL);
  if (!err) LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(k->jit), gen);
  else LLVMConsumeError(err);
  if ((err = LLVMOrcLLJITAddObjectFile(k->jit, LLVMOrcLLJITGetMainJITDylib(k->jit), obj))) {
    cpu_kernel_free(k);
    return error_of(err, "adding the object", d);
  }
  LLVMOrcExecutorAddress w = 0, n = 0;
  if ((st = lookup(k, "work", &w, d)) || (st = lookup(k, "nwork", &n, d))) {
    cpu_kernel_free(k);
    return st;
  }
  k->work = (CpuWorkFn)(uintptr_t)w;
  k->nwork = (CpuNworkFn)(uintptr_t)n;
  k->compile_ms = now_ms() - t0;
  *out = k;
  return ATTNC_OK;
}

void cpu_kernel_free(CpuKernel *k) {
  if (!k) return;
  if (k->jit) LLVMOrcDisposeLLJIT(k->jit);
  free(k);
}

const char *cpu_kernel_symbol(const CpuKernel *k) { return k->symbol; }
void cpu_kernel_tiles(const CpuKernel *k, int *bm, int *bn) { *bm = k->bm; *bn = k->bn; }
CpuWorkFn cpu_kernel_work(const CpuKernel *k) { return k->work; }
CpuNworkFn cpu_kernel_nwork(const CpuKernel *k) { return k->nwork; }
double cpu_kernel_compile_ms(const CpuKernel *k) { return k->compile_ms; }
const CpuOptions *cpu_kernel_options(const CpuKernel *k) { return &k->o; }
bool cpu_kernel_cached(const CpuKernel *k) { return k->cached; }

/* -------------------------------------------------------- ahead of time */

/* build and optimise a module in a fresh context (freed by the caller) */
static LLVMModuleRef build_aot(const IrPattern *p, const CpuOptions *o, bool opt, LLVMContextRef *C,
                               LLVMTargetMachineRef *tm, Diag *d) {
  *C = NULL;
  *tm = NULL;
  if (check_options(p, o, d)) return NULL;
  *C = LLVMContextCreate();
  LLVMModuleRef m = cpu_build_module(*C, p, o, d);
  if (!m) return NULL;
  *tm = make_tm(LLVMRelocPIC, LLVMCodeModelDefault, d);
  if (!*tm || (opt && optimise(m, *tm, d))) {
    LLVMDisposeModule(m);
    return NULL;
  }
  return m;
}

static void free_aot(LLVMModuleRef m, LLVMContextRef C, LLVMTargetMachineRef tm) {
  if (m) LLVMDisposeModule(m);
  if (tm) LLVMDisposeTargetMachine(tm);
  if (C) LLVMContextDispose(C);
}

attnc_status cpu_emit_file(const IrPattern *p, const CpuOptions *o, CpuEmitKind kind,
                           const char *path, Diag *d) {
  LLVMContextRef C;
  LLVMTargetMachineRef tm;
  LLVMModuleRef m = build_aot(p, o, true, &C, &tm, d);
  if (!m) {
    free_aot(NULL, C, tm);
    return d->status ? d->status : ATTNC_ERR_COMPILE;
  }
  char *msg = NULL;
  LLVMBool bad;
  if (kind == CPU_EMIT_LLVM) bad = LLVMPrintModuleToFile(m, path, &msg);
  else bad = LLVMTargetMachineEmitToFile(tm, m, (char *)path, kind == CPU_EMIT_OBJ ? LLVMObjectFile : LLVMAssemblyFile, &msg);
  if (bad) diag_error(d, ATTNC_ERR_IO, (Loc){ 0 }, "cannot write %s: %s", path, msg ? msg : "?");
  LLVMDisposeMessage(msg);
  free_aot(m, C, tm);
  return bad ? ATTNC_ERR_IO : ATTNC_OK;
}

char *cpu_emit_llvm(const IrPattern *p, const CpuOptions *o, bool optimised, Diag *d) {
  LLVMContextRef C;
  LLVMTargetMachineRef tm;
  LLVMModuleRef m = build_aot(p, o, optimised, &C, &tm, d);
  char *r = NULL;
  if (m) {
    char *s = LLVMPrintModuleToString(m);
    r = strdup(s);
    LLVMDisposeMessage(s);
    if (!r) diag_error(d, ATTNC_ERR_NOMEM, (Loc){ 0 }, "out of memory");
  }
  free_aot(m, C, tm);
  return r;
}

/* growing string for the header */
typedef struct Buf { char *s; size_t n, cap; bool oom; } Buf;

static void bprintf(Buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char tmp[2048];
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0 || b->oom) return;
  if (b->n + (size_t)n + 1 > b->cap) {
    size_t cap = (b->cap + (size_t)n + 1) * 2;
    char *s = realloc(b->s, cap);
    if (!s) { b->oom = true; return; }
    b->s = s;
    b->cap = cap;
  }
  memcpy(b->s + b->n, tmp, (size_t)n + 1);
  b->n += (size_t)n;
}

static const char *dim_name(IrDim dm, char *buf, size_t n) {
  if (dm.sym == DIM_CONST) snprintf(buf, n, "%lld", (long long)dm.value);
  else if (dm.value > 1) snprintf(buf, n, "ceil(%s/%lld)", ir_dimsym_name(dm.sym), (long long)dm.value);
  else snprintf(buf, n, "%s", ir_dimsym_name(dm.sym));
  return buf;
}

/*
** The C header of an AOT object. The structs are the CpuArgs / CpuInput
** layout of cpu.h under public names (tests/unit/test_cpu.c compiles a
** program against this header and checks its results).
*/
char *cpu_header(const IrPattern *p, const CpuOptions *o) {
  char sym[200], guard[220];
  cpu_symbol(p, o, sym, sizeof sym);
  int bm = 0, bn = 0;
  const CpuTarget *t = cpu_target();
  if (t) cpu_tiles(t, o, &bm, &bn);
  snprintf(guard, sizeof guard, "%s_H", sym);
  for (char *c = guard; *c; c++) if (*c >= 'a' && *c <= 'z') *c = (char)(*c - 'a' + 'A');
  Buf b = { 0 };
  bprintf(&b, "/*\n** %s_run / _nwork / _work -- generated by attnc %s: an ahead-of-time CPU\n** attention kernel.\n", sym, attnc_version());
  bprintf(&b, "**   pattern  %s (%s)\n", p->name ? p->name : "?", p->file ? p->file : "?");
  bprintf(&b, "**   dtype    %s for q, k, v and o (lse is float32)\n", ir_dtype_name(o->dtype));
  bprintf(&b, "**   head dim D = %d, Dv = %d; tiles %d x %d; target %s (%s)\n", o->D, o->Dv, bm, bn,
          t ? t->cpu : "?", t ? t->triple : "?");
  for (int i = 0; i < p->nparams; i++)
    bprintf(&b, "**   param    %s = %.17g\n", p->params[i].name, p->params[i].value);
  bprintf(&b, "** Link the object with -lm. The kernel runs on CPUs with the features of\n"
              "** the one it was compiled on.\n*/\n");
  bprintf(&b, "#ifndef %s\n#define %s\n\n#include <stdint.h>\n\n", guard, guard);
  bprintf(&b,
    "#ifndef ATTNC_CPU_ARGS_DEFINED\n#define ATTNC_CPU_ARGS_DEFINED\n"
    "/* a runtime input: data, sizes and strides (in elements) per dim */\n"
    "typedef struct attnc_cpu_input {\n  const void *data;\n  int64_t shape[4];\n  int64_t strides[4];\n} attnc_cpu_input;\n\n"
    "/*\n** One call. Q [B, Hq, Sq, D], K [B, Hkv, Sk, D], V [B, Hkv, Sk, Dv],\n"
    "** O [B, Hq, Sq, Dv], LSE [B, Hq, Sq] (optional, natural log). Strides in\n"
    "** elements for (batch, head, token); the head-dim stride must be 1.\n"
    "** Hq a multiple of Hkv. scale multiplies Q K^T (e.g. 1/sqrt(D)).\n*/\n"
    "typedef struct attnc_cpu_args {\n"
    "  const void *q, *k, *v;\n  void *o;\n  float *lse;               /* NULL: not written */\n"
    "  const attnc_cpu_input *inputs; /* the runtime inputs below, in order */\n"
    "  int64_t B, Hq, Hkv, Sq, Sk;\n"
    "  int64_t q_strides[3], k_strides[3], v_strides[3], o_strides[3], lse_strides[3];\n"
    "  float scale;\n} attnc_cpu_args;\n#endif\n\n");
  char up[200];
  snprintf(up, sizeof up, "%s", sym);
  for (char *c = up; *c; c++) if (*c >= 'a' && *c <= 'z') *c = (char)(*c - 'a' + 'A');
  bprintf(&b, "#define %s_D %d\n#define %s_DV %d\n", up, o->D, up, o->Dv);
  bprintf(&b, "#define %s_NINPUTS %d\n", up, p->ninputs);
  for (int i = 0; i < p->ninputs; i++) {
    const IrInput *in = &p->inputs[i];
    bprintf(&b, "/* input %d: %s, %s [", i, in->name, ir_dtype_name(in->dtype));
    for (int k = 0; k < in->rank; k++) {
      char nb[64];
      bprintf(&b, "%s%s", k ? ", " : "", dim_name(in->dims[k], nb, sizeof nb));
    }
    bprintf(&b, "] */\n");
  }
  if (p->grid_rank > 0) {
    bprintf(&b, "/* tokens are a grid [");
    for (int i = 0; i < p->grid_rank; i++) bprintf(&b, "%s%lld", i ? ", " : "", (long long)p->grid[i]);
    bprintf(&b, "] in row-major order */\n");
  }
  bprintf(&b, "\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n");
  bprintf(&b, "/* all of the attention, on the calling thread */\nvoid %s_run(const attnc_cpu_args *a);\n", sym);
  bprintf(&b, "/* the work items (q tile, batch, head) for splitting across threads */\n"
              "int64_t %s_nwork(const attnc_cpu_args *a);\n", sym);
  bprintf(&b, "/* work items [w0, w1): any disjoint ranges, from any threads */\n"
              "void %s_work(const attnc_cpu_args *a, int64_t w0, int64_t w1);\n", sym);
  bprintf(&b, "#ifdef __cplusplus\n}\n#endif\n\n#endif\n");
  if (b.oom) { free(b.s); return NULL; }
  return b.s;
}

attnc_status cpu_aot(const IrPattern *p, IrDtype dtype, int D, int Dv, const char *symbol,
                     CpuEmitKind kind, const char *path, const char *header_path, Diag *d) {
  Arena a;
  arena_init(&a);
  Plan *plan = NULL;
  CpuOptions o = { .dtype = dtype, .D = D, .Dv = Dv, .symbol = symbol };
  attnc_status st = cpu_plan(&a, p, 0, 0, 0, 0, D, NULL, &plan, d);
  o.plan = plan;
  if (!st) st = cpu_emit_file(p, &o, kind, path, d);
  if (!st && kind == CPU_EMIT_OBJ) {
    char hp[4096];
    if (header_path) snprintf(hp, sizeof hp, "%s", header_path);
    else {
      snprintf(hp, sizeof hp, "%s", path);
      char *dot = strrchr(hp, '.'), *slash = strrchr(hp, '/');
      if (dot && (!slash || dot > slash)) *dot = 0;
      strncat(hp, ".h", sizeof hp - strlen(hp) - 1);
    }
    char *h = cpu_header(p, &o);
    FILE *f = h ? fopen(hp, "w") : NULL;
    if (!h) st = diag_error(d, ATTNC_ERR_NOMEM, (Loc){ 0 }, "out of memory");
    else if (!f || fputs(h, f) < 0) st = diag_error(d, ATTNC_ERR_IO, (Loc){ 0 }, "cannot write %s", hp);
    if (f && fclose(f) != 0 && !st) st = diag_error(d, ATTNC_ERR_IO, (Loc){ 0 }, "cannot write %s", hp);
    free(h);
  }
  arena_free(&a);
  return st;
}

/* a malloc'd, NUL-terminated copy of n bytes */
static void *dup_bytes(const void *src, size_t n) {
  char *r = malloc(n + 1);
  if (r) {
    memcpy(r, src, n);
    r[n] = 0;
  }
  return r;
}

attnc_status cpu_emit_mem(const IrPattern *p, const CpuOptions *o, const char *kind, void **data, size_t *len,
                          Diag *d) {
  *data = NULL;
  *len = 0;
  bool obj = strcmp(kind, "obj") == 0, as = strcmp(kind, "asm") == 0, ll = strcmp(kind, "llvm") == 0;
  if (strcmp(kind, "h") == 0) {
    char *h = cpu_header(p, o);
    if (!h) return diag_error(d, ATTNC_ERR_NOMEM, (Loc){ 0 }, "out of memory");
    *len = strlen(h);
    *data = h;
    return ATTNC_OK;
  }
  if (!obj && !as && !ll)
    return diag_error(d, ATTNC_ERR_ARG, (Loc){ 0 }, "the cpu target emits obj, asm, llvm or h (not '%s')", kind);
  LLVMContextRef C;
  LLVMTargetMachineRef tm;
  LLVMModuleRef m = build_aot(p, o, true, &C, &tm, d);
  attnc_status st = ATTNC_OK;
  if (!m) st = d->status ? d->status : ATTNC_ERR_COMPILE;
  else if (ll) {
    char *t = LLVMPrintModuleToString(m);
    *len = strlen(t);
    *data = dup_bytes(t, *len);
    LLVMDisposeMessage(t);
  } else {
    LLVMMemoryBufferRef mb = NULL;
    char *msg = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(tm, m, obj ? LLVMObjectFile : LLVMAssemblyFile, &msg, &mb))
      st = diag_error(d, ATTNC_ERR_COMPILE, (Loc){ 0 }, "cpu: code generation failed: %s", msg ? msg : "?");
    else {
      *len = LLVMGetBufferSize(mb);
      *data = dup_bytes(LLVMGetBufferStart(mb), *len);
      LLVMDisposeMemoryBuffer(mb);
    }
    LLVMDisposeMessage(msg);
  }
  if (!st && !*data) st = diag_error(d, ATTNC_ERR_NOMEM, (Loc){ 0 }, "out of memory");
  free_aot(m, C, tm);
  return st;
}
