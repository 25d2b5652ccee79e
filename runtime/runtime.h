/*
** runtime.h -- the objects behind the public handles.
*/
#ifndef ATTNC_RUNTIME_H
#define ATTNC_RUNTIME_H

#include <pthread.h>

#include "frontend/frontend.h"
#include "backend/backend.h"

struct attnc_ctx {
  pthread_mutex_t lock;   /* guards the fields below */
  FeLimits limits;        /* for specs loaded through this context */
};

/* a traced, folded pattern; owns its arena */
struct attnc_spec {
  attnc_ctx *ctx;
  Arena arena;
  IrPattern *pat;
};


/*
** A target behind attnc_kernel: build a specialisation for one (dtype, D,
** Dv) and run it. Backends define one TargetOps each (cpu_target,
** cuda_target); runtime/kernel.c picks by attnc_target and caches the
** specialisations per kernel. Shapes and views come checked (args_check).
*/
typedef struct KernelKey {
  IrDtype dtype;
  int64_t D, Dv;
} KernelKey;

typedef struct TargetOps {
  const char *name;
  attnc_status (*build)(attnc_kernel *k, const KernelKey *key, void **impl, Diag *d);
  attnc_status (*run)(attnc_kernel *k, void *impl, const attnc_args *args, const Shape *shape,
                      const IrTensorView *views, Diag *d);
  void (*release)(void *impl);
  /* what `attnc compile --emit KIND` writes for a specialisation (NULL: none) */
  attnc_status (*artifact)(void *impl, const char *kind, void **data, size_t *len, Diag *d);
} TargetOps;

/* the target's operations, or NULL when it is not built in (targets.c) */
const TargetOps *target_ops(attnc_target t);

#define KERNEL_MAX_SPECS 8

struct attnc_kernel {
  attnc_ctx *ctx;
  const attnc_spec *spec;
  attnc_compile_options opts;  /* arch copied into arch_buf */
  char arch_buf[32];
  const TargetOps *ops;
  pthread_mutex_t lock;        /* guards specs and info */
  struct { KernelKey key; void *impl; } specs[KERNEL_MAX_SPECS];
  int nspecs;
  attnc_kernel_info info;      /* backends set cached / compile_ms in build */
};

#endif
