/*
** nvrtc.c -- compiling emitted CUDA C++ with NVRTC (linked: CUDA::nvrtc).
**
** Options are few and fixed (cuda_nvrtc_options) so that the cache key is
** stable: the architecture (sm_90a, not sm_90, from Hopper on: wgmma and
** setmaxnreg need the 'a' target), -default-device (every function is a
** device function; the emitted text needs no CUDA headers), C++17. A
** compile error in generated code is a compiler bug; the message quotes
** the failing generated line so the bug report carries it.
*/
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nvrtc.h>

#include "backend/cuda/cuda.h"

#define CUDA_SOURCE_NAME "attnc_kernel.cu"

void cuda_image_free(CudaImage *img) {
  if (!img) return;
  free(img->data);
  img->data = NULL;
  img->size = 0;
}

/*
** A source with pre-passes (documents) is two programs, compiled on two
** threads at once: the attention kernel's NVVM and ptxas run beside the
** pre-passes' instead of after them. The cubins go into one container,
** CONTAINER_MAGIC, the two sizes (u64), then the cubins.
*/
#define CONTAINER_MAGIC "ATTNC\0M2"
#define CONTAINER_HEAD 24

int cuda_image_nparts(const char *src, CudaImageKind kind) {
  return kind == CUDA_IMAGE_CUBIN && strstr(src, "\n#ifndef " CUDA_PART_MACRO "\n") ? 2 : 1;
}

static bool is_elf(const unsigned char *p, uint64_t n) { return n >= 4 && memcmp(p, "\x7f" "ELF", 4) == 0; }

int cuda_image_parts(const CudaImage *img) {
  const unsigned char *p = img->data;
  if (!p || img->size == 0) return 0;
  if (img->size < 8 || memcmp(p, CONTAINER_MAGIC, 8) != 0) return 1;
  if (img->size < CONTAINER_HEAD) return 0;
  uint64_t n0, n1;
  memcpy(&n0, p + 8, 8);
  memcpy(&n1, p + 16, 8);
  if (n0 > img->size || n1 > img->size || CONTAINER_HEAD + n0 + n1 != img->size) return 0;
  return is_elf(p + CONTAINER_HEAD, n0) && is_elf(p + CONTAINER_HEAD + n0, n1) ? 2 : 0;
}

void cuda_image_part(const CudaImage *img, int i, const void **data, size_t *size) {
  const unsigned char *p = img->data;
  if (cuda_image_parts(img) != 2) { *data = p; *size = img->size; return; }
  uint64_t n0, n1;
  memcpy(&n0, p + 8, 8);
  memcpy(&n1, p + 16, 8);
  *data = p + CONTAINER_HEAD + (i ? n0 : 0);
  *size = (size_t)(i ? n1 : n0);
}

int cuda_nvrtc_options(int arch, CudaImageKind kind, char archbuf[32], const char **opts,
                       int max) {
  char an[16];
  cuda_arch_name(arch, an);               /* "sm_90a" */
  if (kind == CUDA_IMAGE_PTX) snprintf(archbuf, 32, "-arch=compute_%s", an + 3);
  else snprintf(archbuf, 32, "-arch=%s", an);
  const char *all[] = { archbuf, "-default-device", "-std=c++17", "-DATTNC_NVRTC=1" };
  int n = 0;
  for (size_t i = 0; i < sizeof all / sizeof all[0] && n < max; i++) opts[n++] = all[i];
  return n;
}

const char *cuda_nvrtc_version(char buf[32]) {
  int major = 0, minor = 0;
  if (nvrtcVersion(&major, &minor) != NVRTC_SUCCESS) snprintf(buf, 32, "nvrtc ?");
  else snprintf(buf, 32, "nvrtc %d.%d", major, minor);
  return buf;
}

attnc_status cuda_cache_key(const char *src, int arch, CudaImageKind kind, char **key,
                            size_t *len, Diag *d) {
  char archbuf[32], ver[32], an[16];
  const char *opts[16];
  int n = cuda_nvrtc_options(arch, kind, archbuf, opts, 16);
  size_t cap = strlen(src) + 512;
  char *k = malloc(cap);
  if (!k) return diag_error(d, ATTNC_ERR_NOMEM, (Loc){ NULL, 0 }, "out of memory");
  /* a source without parts compiles to the same cubin either way */
  const char *what = kind == CUDA_IMAGE_PTX ? "ptx" : cuda_image_nparts(src, kind) == 2 ? "cubins" : "cubin";
  size_t m = (size_t)snprintf(k, cap, "attnc cuda kernel\n%s\n%s\n%s\n", cuda_nvrtc_version(ver),
                              cuda_arch_name(arch, an), what);
  for (int i = 0; i < n && m < cap; i++) m += (size_t)snprintf(k + m, cap - m, "%s ", opts[i]);
  if (m < cap) m += (size_t)snprintf(k + m, cap - m, "\n");
  size_t sl = strlen(src);
  if (m + sl + 1 > cap) {
    char *k2 = realloc(k, m + sl + 1);
    if (!k2) { free(k); return diag_error(d, ATTNC_ERR_NOMEM, (Loc){ NULL, 0 }, "out of memory"); }
    k = k2;
  }
  memcpy(k + m, src, sl + 1);
  *key = k;
  *len = m + sl;
  return ATTNC_OK;
}

/* line `line` (1-based) of src into buf, trimmed */
static void source_line(const char *src, int line, char *buf, size_t n) {
  buf[0] = 0;
  for (int l = 1; l < line && *src; src++)
    if (*src == '\n') l++;
  while (*src == ' ') src++;
  size_t k = 0;
  while (src[k] && src[k] != '\n' && k + 1 < n) { buf[k] = src[k]; k++; }
  buf[k] = 0;
}

/*
** One error from NVRTC's log: the first "error" line, as
** "generated CUDA line N: error: ...", then the generated line itself.
*/
static attnc_status log_error(const char *src, const char *log, int arch, Diag *d) {
  const char *e = strstr(log, ": error");
  if (!e) e = strstr(log, "error");
  const char *start = e ? e : log;
  while (start > log && start[-1] != '\n') start--;
  char first[400];
  size_t k = 0;
  while (start[k] && start[k] != '\n' && k + 1 < sizeof first) { first[k] = start[k]; k++; }
  first[k] = 0;
  int line = 0;
  const char *paren = strstr(first, CUDA_SOURCE_NAME "(");
  if (paren) line = atoi(paren + strlen(CUDA_SOURCE_NAME) + 1);
  const char *msg = strstr(first, "error");
  char an[16];
  if (line > 0) {
    char code[300];
    source_line(src, line, code, sizeof code);
    return diag_error(d, ATTNC_ERR_COMPILE, (Loc){ NULL, 0 },
                      "NVRTC failed on the generated kernel for %s (a compiler bug): generated CUDA "
                      "line %d: %s\n    %d | %s", cuda_arch_name(arch, an), line,
                      msg ? msg : first, line, code);
  }
  return diag_error(d, ATTNC_ERR_COMPILE, (Loc){ NULL, 0 },
                    "NVRTC failed on the generated kernel for %s (a compiler bug): %s",
                    cuda_arch_name(arch, an), first[0] ? first : "(no log)");
}

/* NVRTC's log of prog, NUL-terminated and malloc'd; NULL if it cannot be read */
static char *program_log(nvrtcProgram prog) {
  size_t ls = 0;
  char *log = NULL;
  if (nvrtcGetProgramLogSize(prog, &ls) == NVRTC_SUCCESS && (log = malloc(ls + 1))) {
    if (nvrtcGetProgramLog(prog, log) != NVRTC_SUCCESS) log[0] = 0;
    log[ls] = 0;
  }
  return log;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* is arch in NVRTC's list? (a clear error instead of NVRTC's option message) */
static bool arch_supported(int arch) {
  int n = 0;
  if (nvrtcGetNumSupportedArchs(&n) != NVRTC_SUCCESS || n <= 0 || n > 256) return true;
  int archs[256];
  if (nvrtcGetSupportedArchs(archs) != NVRTC_SUCCESS) return true;
  for (int i = 0; i < n; i++)
    if (archs[i] == arch) return true;
  return false;
}

/* one program of src (part: 0 all of it, else CUDA_PART_MACRO=part) */
static attnc_status compile_one(const char *src, int arch, CudaImageKind kind, int part,
                                CudaImage *out, Diag *d) {
  memset(out, 0, sizeof *out);
  char archbuf[32], partbuf[32];
  const char *opts[16];
  int nopts = cuda_nvrtc_options(arch, kind, archbuf, opts, 16);
  if (part) {
    snprintf(partbuf, sizeof partbuf, "-D" CUDA_PART_MACRO "=%d", part);
    opts[nopts++] = partbuf;
  }
  nvrtcProgram prog;
  nvrtcResult r = nvrtcCreateProgram(&prog, src, CUDA_SOURCE_NAME, 0, NULL, NULL);
  if (r != NVRTC_SUCCESS)
    return diag_error(d, r == NVRTC_ERROR_OUT_OF_MEMORY ? ATTNC_ERR_NOMEM : ATTNC_ERR_COMPILE,
                      (Loc){ NULL, 0 }, "NVRTC: %s", nvrtcGetErrorString(r));
  /* ATTNC_NVRTC_TIME=FILE: NVRTC writes its phases' times there (front
     end, NVVM, ptxas; tools/compile_time.py). Not in the cache key: it
     changes no code */
  char timebuf[600];
  const char *tf = getenv("ATTNC_NVRTC_TIME");
  if (tf && *tf && nopts < 16 && strlen(tf) < sizeof timebuf - 16) {   /* part 2: FILE.2 */
    snprintf(timebuf, sizeof timebuf, part == 2 ? "-time=%s.2" : "-time=%s", tf);
    opts[nopts++] = timebuf;
  }
  double t0 = now_ms();
  r = nvrtcCompileProgram(prog, nopts, opts);
  double t1 = now_ms();
  attnc_status st = ATTNC_OK;
  if (r != NVRTC_SUCCESS) {
    char *log = program_log(prog);
    if (r == NVRTC_ERROR_COMPILATION && log) st = log_error(src, log, arch, d);
    else
      st = diag_error(d, ATTNC_ERR_COMPILE, (Loc){ NULL, 0 }, "NVRTC: %s%s%s",
                      nvrtcGetErrorString(r), log && log[0] ? ": " : "", log ? log : "");
    free(log);
    nvrtcDestroyProgram(&prog);
    return st;
  }
  /* ptxas reports on the cubin in the log: wgmmas it had to serialise
     (accumulators touched between issue and wait) */
  bool serial = false;
  if (kind == CUDA_IMAGE_CUBIN) {
    char *log = program_log(prog);
    serial = log && strstr(log, "wgmma.mma_async instructions are serialized") != NULL;
    free(log);
  }
  size_t size = 0;
  if (kind == CUDA_IMAGE_CUBIN) r = nvrtcGetCUBINSize(prog, &size);
  else r = nvrtcGetPTXSize(prog, &size);
  if (r == NVRTC_SUCCESS && size > 0) {
    out->data = malloc(size);
    if (!out->data) st = diag_error(d, ATTNC_ERR_NOMEM, (Loc){ NULL, 0 }, "out of memory");
    else if (kind == CUDA_IMAGE_CUBIN) r = nvrtcGetCUBIN(prog, out->data);
    else r = nvrtcGetPTX(prog, out->data);
  }
  if (!st && (r != NVRTC_SUCCESS || size == 0))
    st = diag_error(d, ATTNC_ERR_COMPILE, (Loc){ NULL, 0 }, "NVRTC produced no %s: %s",
                    kind == CUDA_IMAGE_PTX ? "PTX" : "cubin", nvrtcGetErrorString(r));
  nvrtcDestroyProgram(&prog);
  if (st) { cuda_image_free(out); return st; }
  out->size = kind == CUDA_IMAGE_PTX && size > 0 ? size - 1 : size;   /* PTX: drop the NUL */
  out->kind = kind;
  out->compile_ms = t1 - t0;
  out->wgmma_serial = serial;
  return ATTNC_OK;
}

typedef struct PartJob {
  const char *src;
  int arch;
  CudaImage img;
  Diag d;
  attnc_status st;
} PartJob;

static void *part2_main(void *arg) {
  PartJob *j = arg;
  j->st = compile_one(j->src, j->arch, CUDA_IMAGE_CUBIN, 2, &j->img, &j->d);
  return NULL;
}

/* the two parts at once (the second on a thread of its own, or after the
   first where no thread can start), into one container */
static attnc_status compile_parts(const char *src, int arch, CudaImage *out, Diag *d) {
  PartJob j = { .src = src, .arch = arch };
  double t0 = now_ms();
  pthread_t th;
  bool threaded = pthread_create(&th, NULL, part2_main, &j) == 0;
  CudaImage a;
  attnc_status st = compile_one(src, arch, CUDA_IMAGE_CUBIN, 1, &a, d);
  if (threaded) pthread_join(th, NULL);
  else part2_main(&j);
  double t1 = now_ms();
  if (!st && j.st) st = diag_error(d, j.st, (Loc){ NULL, 0 }, "%s", j.d.msg);
  if (!st) {
    uint64_t n0 = a.size, n1 = j.img.size;
    out->data = malloc(CONTAINER_HEAD + a.size + j.img.size);
    if (!out->data) st = diag_error(d, ATTNC_ERR_NOMEM, (Loc){ NULL, 0 }, "out of memory");
    else {
      unsigned char *p = out->data;
      memcpy(p, CONTAINER_MAGIC, 8);
      memcpy(p + 8, &n0, 8);
      memcpy(p + 16, &n1, 8);
      memcpy(p + CONTAINER_HEAD, a.data, a.size);
      memcpy(p + CONTAINER_HEAD + a.size, j.img.data, j.img.size);
      out->size = CONTAINER_HEAD + a.size + j.img.size;
      out->kind = CUDA_IMAGE_CUBIN;
      out->compile_ms = t1 - t0;
      out->wgmma_serial = a.wgmma_serial || j.img.wgmma_serial;
    }
  }
  cuda_image_free(&a);
  cuda_image_free(&j.img);
  return st;
}

attnc_status cuda_compile(const char *src, int arch, CudaImageKind kind, CudaImage *out, Diag *d) {
  memset(out, 0, sizeof *out);
  char ver[32], an[16];
  if (!arch_supported(arch))
    return diag_error(d, ATTNC_ERR_UNSUPPORTED, (Loc){ NULL, 0 }, "%s cannot compile for %s",
                      cuda_nvrtc_version(ver), cuda_arch_name(arch, an));
  if (cuda_image_nparts(src, kind) == 2) return compile_parts(src, arch, out, d);
  attnc_status st = compile_one(src, arch, kind == CUDA_IMAGE_CUBIN_ONE ? CUDA_IMAGE_CUBIN : kind, 0, out, d);
  if (!st) out->kind = kind;
  return st;
}
