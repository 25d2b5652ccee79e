/*
** targets.c -- the table of targets built into this library. A backend
** defines one TargetOps (runtime/runtime.h) and is listed here under the
** CMake switch that builds it.
*/
#include "runtime/runtime.h"

extern const TargetOps ref_target_ops;
#ifdef ATTNC_HAVE_CUDA
extern const TargetOps cuda_target_ops;
#endif
#ifdef ATTNC_HAVE_LLVM
extern const TargetOps cpu_target_ops;      /* backend/cpu/target.c */
#endif

const TargetOps *target_ops(attnc_target t) {
  switch (t) {
  case ATTNC_TARGET_REF: return &ref_target_ops;
#ifdef ATTNC_HAVE_CUDA
  case ATTNC_TARGET_CUDA: return &cuda_target_ops;
#endif
#ifdef ATTNC_HAVE_LLVM
  case ATTNC_TARGET_CPU: return &cpu_target_ops;
#endif
  default: return NULL;
  }
}
