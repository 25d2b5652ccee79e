/*
** gen.h -- random calls for `attnc verify` and `attnc bench`: q, k and v
** of one dtype (with float32 copies of the same rounded values, so the
** reference sees exactly what the target sees), an output poisoned with
** NaN (an element a kernel forgets to write shows up as an error), and a
** random value for every runtime input the spec declares, made from the
** input's declaration:
**
**   i32, last two dims the same token dim   a 0/1 bitmap, diagonal set
**     (blocks [B, H, S/block, S/block])
**   i32, last dim the tokens                non-decreasing segment ids of
**     (doc [S], cluster [B, H, S])          random lengths, per row
**   i32, last dim a constant count after    distinct indices in [0, n),
**     a token dim (route [B, H, S/r, topk])  n the size of that token dim
**   other i32                               integers in [0, 4)
**   f32                                     uniform in [-0.5, 0.5)
**
** The rules are in docs/cli.md; `--input NAME=FILE.npy` replaces one.
*/
#ifndef ATTNC_GEN_H
#define ATTNC_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attnc.h"
#include "ir/ir.h"

#define GEN_MAX_INPUTS 32

typedef struct GenShape {
  int64_t B, Hq, Hkv, S, D;
  IrDtype dtype;         /* DT_F32, DT_BF16 or DT_F16: q, k, v rounded to it */
  bool store_f32;        /* keep q, k, v, o in float32 anyway (the ref target) */
  uint64_t seed;
} GenShape;

/* how a runtime input is made (see above) */
typedef enum GenRule { GEN_UNIFORM, GEN_SMALL_INT, GEN_SEGMENTS, GEN_INDICES, GEN_BITMAP, GEN_GIVEN } GenRule;
const char *gen_rule_name(GenRule r);     /* "bitmap", "segment ids", ... */

typedef struct GenCall {
  GenShape s;
  void *q, *k, *v, *o;           /* the target's tensors (o poisoned with NaN) */
  float *qr, *kr, *vr;           /* float32 copies of the rounded values */
  float *lse;                    /* poisoned with NaN */
  int64_t qshape[4], kshape[4], lshape[3];
  DLTensor tq, tk, tv, to, tl;   /* over q, k, v, o, lse */
  DLTensor rq, rk, rv;           /* over the float32 copies */
  int ninputs;                   /* given ones first, then generated */
  attnc_named_tensor named[GEN_MAX_INPUTS];
  GenRule rule[GEN_MAX_INPUTS];
  void *in_data[GEN_MAX_INPUTS]; /* generated data (NULL for given) */
  int64_t in_shape[GEN_MAX_INPUTS][IR_MAXDIMS];
  DLTensor in_t[GEN_MAX_INPUTS];
} GenCall;

/*
** The default shape for a spec: B = 1, Hq = Hkv = 2, S = the grid's token
** count (200 without a grid), D = the spec's first allowed head dim (64
** when any), f32; the seed of --seed 1.
*/
void gen_default_shape(const IrPattern *p, GenShape *s);
uint64_t gen_seed(uint64_t user_seed);

/*
** Make the call. given: inputs the user passed (name -> tensor), kept as
** they are; every other declared input is generated. false with a message
** in err when out of memory or there are too many inputs.
*/
bool gen_call_init(GenCall *c, const IrPattern *p, const GenShape *s,
                   const attnc_named_tensor *given, int ngiven, char *err, size_t errlen);
void gen_call_free(GenCall *c);

/* the target's arguments (q, k, v, o in the call's dtype; lse) */
attnc_args gen_args(GenCall *c);
/* the reference's: the float32 copies in, o (float64) and lse given */
attnc_args gen_ref_args(GenCall *c, DLTensor *o64, double *o, DLTensor *lse, float *l);
/* the target's output element i as a double */
double gen_out(const GenCall *c, size_t i);
/* rewind the poison: o and lse back to NaN */
void gen_poison(GenCall *c);

/* float32 <-> float16 / bfloat16, round to nearest even */
uint16_t gen_to_half(float f, IrDtype dt);
float gen_from_half(uint16_t h, IrDtype dt);

/* the dtype of the target's tensors, for attnc_compile_options */
attnc_dtype gen_api_dtype(const GenShape *s);

/* "f32", "bf16", "f16" -> dtype; false if none of these */
bool gen_parse_dtype(const char *s, IrDtype *dt);
const char *gen_dtype_name(IrDtype dt);

/*
** Allowed (b, h, q, k) pairs of a call: the passes' plan with the mask
** evaluated inside visited partial tiles (exact: plans never skip an
** allowed pair), else brute force when B*H*Sq*Sk <= 2^26; -1 when
** neither worked. args: host tensors of one dtype (the target's call).
*/
int64_t gen_allowed_pairs(const IrPattern *p, attnc_target t, const attnc_args *args);

#endif
