/*
** ref.c -- the reference executor: attention straight from the pattern
** IR, one query at a time, in double precision. It is the oracle every
** backend is tested against, so it is written to be read, not to be fast:
**
**   for each b, h, q:
**     for each k with mask(b, h, q, k):   s[k] = score(scale * <Q[q], K[k]>)
**     m = max s;  l = sum exp(s - m);  O[q] = sum exp(s - m) V[k] / l;  LSE = m + log l
**
** A query with no allowed key (or whose allowed scores are all -inf) gets
** O = 0 and LSE = -inf, never NaN. Query head h reads kv head h / (Hq/Hkv).
*/
#include <math.h>
#include <stdlib.h>

#include "backend/backend.h"

/* a host tensor as the executor reads it: base pointer, dtype, strides */
typedef struct Tens {
  char *base;
  bool f64;                 /* float64, else float32 */
  int64_t st[4];
} Tens;

static Tens tens(const DLTensor *t) {
  Tens r = { (char *)t->data + t->byte_offset, t->dtype.bits == 64, { 0 } };
  args_strides(t, r.st);
  return r;
}

/* element [i0, i1, i2, i3] (trailing indices 0 for lower ranks) */
static int64_t off4(const Tens *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
  return i0 * t->st[0] + i1 * t->st[1] + i2 * t->st[2] + i3 * t->st[3];
}

static double get(const Tens *t, int64_t off) {
  return t->f64 ? ((const double *)t->base)[off] : (double)((const float *)t->base)[off];
}

static void put(const Tens *t, int64_t off, double x) {
  if (t->f64) ((double *)t->base)[off] = x;
  else ((float *)t->base)[off] = (float)x;
}

/*
** Run the pattern on the host tensors of args. Checks the arguments
** (args_check, host only), then computes every output row. Runtime faults
** of the mask or score (an input index out of range, an integer division
** by zero) stop the run with ATTNC_ERR_ARG at the spec line.
*/
attnc_status ref_run(const IrPattern *p, const attnc_args *args, Diag *d) {
  Shape sh;
  IrTensorView *views = calloc((size_t)p->ninputs + 1, sizeof *views);
  double *vals = malloc(sizeof(double) * ((size_t)p->nnodes + 1));
  double *s = NULL, *acc = NULL;
  attnc_status st = ATTNC_OK;
  if (!views || !vals) {
    st = diag_error(d, ATTNC_ERR_NOMEM, ir_loc(p, 0), "out of memory");
    goto done;
  }
  if ((st = args_check(p, args, true, &sh, views, d))) goto done;
  if (sh.B == 0 || sh.Hq == 0 || sh.Sq == 0) goto done;          /* nothing to write */
  if ((uint64_t)sh.Sk > SIZE_MAX / sizeof(double) / 2 ||
      (uint64_t)sh.Dv > SIZE_MAX / sizeof(double) / 2 ||
      !(s = malloc(sizeof(double) * ((size_t)sh.Sk + 1))) ||
      !(acc = malloc(sizeof(double) * ((size_t)sh.Dv + 1)))) {
    st = diag_error(d, ATTNC_ERR_NOMEM, ir_loc(p, 0), "out of memory (Sk = %lld, Dv = %lld)",
                    (long long)sh.Sk, (long long)sh.Dv);
    goto done;
  }

  double scale = args->scale != 0 ? args->scale
               : p->scale != 0 ? p->scale : 1.0 / sqrt((double)sh.D);
  Tens Q = tens(args->q), K = tens(args->k), V = tens(args->v), O = tens(args->o);
  Tens L = { 0 };
  if (args->lse) L = tens(args->lse);
  int64_t group = sh.Hq / sh.Hkv;                 /* query heads per kv head */
  IrEnv env = { .sq = sh.Sq, .sk = sh.Sk, .inputs = views };

  for (int64_t b = 0; b < sh.B; b++)
    for (int64_t h = 0; h < sh.Hq; h++) {
      int64_t hk = h / group;
      for (int64_t q = 0; q < sh.Sq; q++) {
        /* scores of the allowed keys; -inf marks a masked key */
        double m = -INFINITY;
        for (int64_t k = 0; k < sh.Sk; k++) {
          env.b = b, env.h = h, env.q = q, env.k = k, env.s = 0;
          ir_env_coords(p, &env);
          s[k] = -INFINITY;
          if (p->mask >= 0) {
            double allowed = ir_eval(p, p->mask, &env, vals, d);
            if (!diag_ok(d)) { st = d->status; goto done; }
            if (allowed == 0) continue;
          }
          double dot = 0;
          for (int64_t i = 0; i < sh.D; i++)
            dot += get(&Q, off4(&Q, b, h, q, i)) * get(&K, off4(&K, b, hk, k, i));
          env.s = scale * dot;
          s[k] = p->score >= 0 ? ir_eval(p, p->score, &env, vals, d) : env.s;
          if (!diag_ok(d)) { st = d->status; goto done; }
          if (s[k] > m) m = s[k];
        }
        /* softmax and the weighted sum of V; m = -inf: no key counts */
        double l = 0;
        for (int64_t j = 0; j < sh.Dv; j++) acc[j] = 0;
        if (m > -INFINITY)
          for (int64_t k = 0; k < sh.Sk; k++) {
            if (s[k] == -INFINITY) continue;
            double w = exp(s[k] - m);
            l += w;
            for (int64_t j = 0; j < sh.Dv; j++) acc[j] += w * get(&V, off4(&V, b, hk, k, j));
          }
        for (int64_t j = 0; j < sh.Dv; j++)
          put(&O, off4(&O, b, h, q, j), l > 0 ? acc[j] / l : 0.0);
        if (args->lse)
          put(&L, off4(&L, b, h, q, 0), l > 0 ? m + log(l) : -INFINITY);
      }
    }
done:
  free(views);
  free(vals);
  free(s);
  free(acc);
  return st;
}
