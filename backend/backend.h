/*
** backend.h -- what every target shares: argument checking against a
** pattern, and the reference executor (the oracle of every test).
*/
#ifndef ATTNC_BACKEND_H
#define ATTNC_BACKEND_H

#include "ir/ir.h"

/* the sizes of one call, taken from the tensors */
typedef struct Shape {
  int64_t B, Hq, Hkv, Sq, Sk, D, Dv;
} Shape;

/*
** Check the tensors of a call against the pattern: ranks, matching sizes,
** Hq a multiple of Hkv, the grid's token count equal to Sq and Sk, every
** declared runtime input present with the declared dtype and shape (and no
** unknown ones), supported dtypes. Fills *shape and views[p->ninputs].
** Errors are ATTNC_ERR_ARG naming the tensor, the dim and both sizes.
*/
attnc_status args_check(const IrPattern *p, const attnc_args *args, bool host_only,
                        Shape *shape, IrTensorView *views, Diag *d);

/* the size a declared dim of a runtime input takes for a call of shape s */
int64_t args_dim_size(IrDim dm, const Shape *s);

/* the strides of t in elements: t->strides, or compact row-major if NULL */
void args_strides(const DLTensor *t, int64_t *strides);

/* the reference executor: double precision, straight from the IR */
attnc_status ref_run(const IrPattern *p, const attnc_args *args, Diag *d);

#endif
