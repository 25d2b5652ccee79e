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

#endif
