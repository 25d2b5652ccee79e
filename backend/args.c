/*
** args.c -- checking the tensors of a call against a pattern, shared by
** every target. Each problem is one ATTNC_ERR_ARG message that names the
** tensor, the dim and both sizes; problems with runtime inputs point at
** the spec line that declared the input.
*/
#include <stdio.h>
#include <string.h>

#include "backend/backend.h"

/* the logical layout of the attention tensors, for messages */
static const char *const qkv_dims[] = { "B", "Hq", "Sq", "D" };
static const char *const k_dims[] = { "B", "Hkv", "Sk", "D" };
static const char *const v_dims[] = { "B", "Hkv", "Sk", "Dv" };
static const char *const o_dims[] = { "B", "Hq", "Sq", "Dv" };

static attnc_status arg_error(Diag *d, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 2, 3)))
#endif
  ;
static attnc_status arg_error(Diag *d, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_verror(d, ATTNC_ERR_ARG, (Loc){ NULL, 0 }, fmt, ap);
  va_end(ap);
  return ATTNC_ERR_ARG;
}

/* "float32", "bfloat16", "int32", ... into buf */
static const char *dl_name(DLDataType t, char *buf, size_t n) {
  const char *base = t.code == kDLFloat ? "float" : t.code == kDLBfloat ? "bfloat"
                   : t.code == kDLInt ? "int" : t.code == kDLUInt ? "uint" : "type";
  if (t.lanes != 1) snprintf(buf, n, "%s%dx%d", base, t.bits, t.lanes);
  else snprintf(buf, n, "%s%d", base, t.bits);
  return buf;
}

static bool dl_is(DLDataType t, uint8_t code, uint8_t bits) {
  return t.code == code && t.bits == bits && t.lanes == 1;
}

/* the IrDtype of a DLPack type, or -1 */
static int dl_dtype(DLDataType t) {
  if (dl_is(t, kDLInt, 32)) return DT_I32;
  if (dl_is(t, kDLFloat, 32)) return DT_F32;
  if (dl_is(t, kDLFloat, 64)) return DT_F64;
  if (dl_is(t, kDLFloat, 16)) return DT_F16;
  if (dl_is(t, kDLBfloat, 16)) return DT_BF16;
  return -1;
}

/* "[2, 4, 16, 8]" into buf */
static const char *shape_str(const int64_t *shape, int ndim, char *buf, size_t n) {
  size_t k = 0;
  k += (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < ndim && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

void args_strides(const DLTensor *t, int64_t *strides) {
  if (t->strides) {
    for (int i = 0; i < t->ndim; i++) strides[i] = t->strides[i];
    return;
  }
  int64_t s = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    strides[i] = s;
    s *= t->shape[i] > 0 ? t->shape[i] : 1;
  }
}

/* the element count of t, or -1 when it overflows */
static int64_t numel(const DLTensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) {
    if (t->shape[i] == 0) return 0;
    if (n > INT64_MAX / t->shape[i]) return -1;
    n *= t->shape[i];
  }
  return n;
}

/*
** The checks every tensor passes on its own: present, the right rank,
** sizes >= 0, data present, a dtype allowed here (mask over IrDtype), on
** the host when host_only; an output must not have stride 0 over a dim of
** more than one element (two rows would share memory).
*/
static attnc_status check_tensor(const char *name, const DLTensor *t, int ndim,
                                 const char *const *dimnames, unsigned dtypes,
                                 bool output, bool host_only, Diag *d) {
  char b1[160], b2[64];
  if (!t) return arg_error(d, "missing tensor %s", name);
  if (t->ndim != ndim || !t->shape) {
    size_t k = 0;
    for (int i = 0; i < ndim; i++)
      k += (size_t)snprintf(b2 + k, sizeof b2 - k, "%s%s", i ? ", " : "", dimnames[i]);
    if (!t->shape || t->ndim < 0 || t->ndim > 16)
      return arg_error(d, "%s must have %d dims [%s] (got %d)", name, ndim, b2, (int)t->ndim);
    return arg_error(d, "%s must have %d dims [%s] (got %d: %s)", name, ndim, b2,
                     (int)t->ndim, shape_str(t->shape, t->ndim, b1, sizeof b1));
  }
  for (int i = 0; i < ndim; i++)
    if (t->shape[i] < 0)
      return arg_error(d, "%s has a negative size in dim %d (%s = %lld)", name, i, dimnames[i],
                       (long long)t->shape[i]);
  int dt = dl_dtype(t->dtype);
  if (dt < 0 || !(dtypes & (1u << dt))) {
    char want[96] = "";
    size_t k = 0;
    for (int i = 0; i <= DT_F64; i++)
      if (dtypes & (1u << i))
        k += (size_t)snprintf(want + k, sizeof want - k, "%s%s", k ? " or " : "",
                              i == DT_I32 ? "int32" : i == DT_F32 ? "float32" : i == DT_F16 ? "float16"
                              : i == DT_BF16 ? "bfloat16" : "float64");
    return arg_error(d, "%s has dtype %s (need %s)", name, dl_name(t->dtype, b2, sizeof b2), want);
  }
  if (host_only && t->device.device_type != kDLCPU && t->device.device_type != kDLCUDAHost)
    return arg_error(d, "%s is not in host memory (device type %d); this target reads tensors on the CPU",
                     name, (int)t->device.device_type);
  int64_t n = numel(t);
  if (n < 0)
    return arg_error(d, "%s is too large (%s)", name, shape_str(t->shape, ndim, b1, sizeof b1));
  if (n > 0 && !t->data) return arg_error(d, "%s has no data", name);
  if (output && t->strides)
    for (int i = 0; i < ndim; i++)
      if (t->strides[i] == 0 && t->shape[i] > 1)
        return arg_error(d, "%s has stride 0 in dim %d (%s = %lld): output elements would overlap",
                         name, i, dimnames[i], (long long)t->shape[i]);
  return ATTNC_OK;
}

/* size of dim i of tensor a must equal want (taken from tensor b) */
static attnc_status same(const char *a, const DLTensor *ta, int i, const char *dim,
                         const char *b, int64_t want, Diag *d) {
  if (ta->shape[i] == want) return ATTNC_OK;
  return arg_error(d, "%s has %s = %lld (dim %d) but %s has %s = %lld", a, dim,
                   (long long)ta->shape[i], i, b, dim, (long long)want);
}

int64_t args_dim_size(IrDim dm, const Shape *s) {
  int64_t div = dm.value >= 1 ? dm.value : 1;
  switch (dm.sym) {
  case DIM_CONST: return dm.value;
  case DIM_B: return s->B;
  case DIM_H: return s->Hq;
  case DIM_HKV: return s->Hkv;
  case DIM_SQ: return (s->Sq + div - 1) / div;
  case DIM_SK: return (s->Sk + div - 1) / div;
  }
  return -1;
}

/* "i32 [B, H, Sq/16, 2]" into buf */
static const char *decl_str(const IrInput *in, char *buf, size_t n) {
  size_t k = (size_t)snprintf(buf, n, "%s [", ir_dtype_name(in->dtype));
  for (int i = 0; i < in->rank && k < n; i++) {
    IrDim dm = in->dims[i];
    const char *sep = i ? ", " : "";
    if (dm.sym == DIM_CONST)
      k += (size_t)snprintf(buf + k, n - k, "%s%lld", sep, (long long)dm.value);
    else if (dm.value > 1)
      k += (size_t)snprintf(buf + k, n - k, "%s%s/%lld", sep, ir_dimsym_name(dm.sym),
                            (long long)dm.value);
    else
      k += (size_t)snprintf(buf + k, n - k, "%s%s", sep, ir_dimsym_name(dm.sym));
  }
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

/*
** Check the runtime inputs: no unknown or repeated names, every declared
** input present with its dtype and shape. Fills views in declaration order.
*/
static attnc_status check_inputs(const IrPattern *p, const attnc_args *args, bool host_only,
                                 const Shape *s, IrTensorView *views, Diag *d) {
  char b1[160], b2[160];
  if (args->ninputs < 0 || (args->ninputs > 0 && !args->inputs))
    return arg_error(d, "bad runtime input list (%d inputs)", args->ninputs);
  for (int i = 0; i < args->ninputs; i++) {
    const attnc_named_tensor *nt = &args->inputs[i];
    if (!nt->name) return arg_error(d, "runtime input %d has no name", i);
    if (ir_find_input(p, nt->name) < 0) {
      size_t k = 0;
      b1[0] = 0;
      for (int j = 0; j < p->ninputs && k < sizeof b1; j++)
        k += (size_t)snprintf(b1 + k, sizeof b1 - k, "%s'%s'", j ? ", " : "", p->inputs[j].name);
      if (p->ninputs == 0)
        return arg_error(d, "unknown runtime input '%s' (the spec declares no inputs)", nt->name);
      return arg_error(d, "unknown runtime input '%s' (the spec declares %s)", nt->name, b1);
    }
    for (int j = 0; j < i; j++)
      if (strcmp(args->inputs[j].name, nt->name) == 0)
        return arg_error(d, "runtime input '%s' given twice", nt->name);
  }
  for (int i = 0; i < p->ninputs; i++) {
    const IrInput *in = &p->inputs[i];
    Loc loc = ir_loc(p, in->line);
    const DLTensor *t = NULL;
    for (int j = 0; j < args->ninputs; j++)
      if (strcmp(args->inputs[j].name, in->name) == 0) t = args->inputs[j].tensor;
    decl_str(in, b2, sizeof b2);
    if (!t)
      return diag_error(d, ATTNC_ERR_ARG, loc,
                        "missing runtime input '%s' (%s): pass --input %s=FILE.npy",
                        in->name, b2, in->name);
    if (t->ndim != in->rank || !t->shape) {
      if (!t->shape || t->ndim < 0 || t->ndim > 16)
        return diag_error(d, ATTNC_ERR_ARG, loc, "runtime input '%s' has %d dims but the spec declares %s",
                          in->name, (int)t->ndim, b2);
      return diag_error(d, ATTNC_ERR_ARG, loc,
                        "runtime input '%s' has %d dims %s but the spec declares %s", in->name,
                        (int)t->ndim, shape_str(t->shape, t->ndim, b1, sizeof b1), b2);
    }
    int dt = dl_dtype(t->dtype);
    bool ok = dt == (int)in->dtype || (host_only && in->dtype == DT_F32 && dt == DT_F64);
    if (!ok)
      return diag_error(d, ATTNC_ERR_ARG, loc, "runtime input '%s' has dtype %s but the spec declares %s",
                        in->name, dl_name(t->dtype, b1, sizeof b1), b2);
    int64_t want[IR_MAXDIMS];
    for (int k = 0; k < in->rank; k++) want[k] = args_dim_size(in->dims[k], s);
    for (int k = 0; k < in->rank; k++)
      if (t->shape[k] != want[k]) {
        char b3[160];
        return diag_error(d, ATTNC_ERR_ARG, loc,
                          "runtime input '%s' has shape %s but the spec declares %s = %s here",
                          in->name, shape_str(t->shape, t->ndim, b1, sizeof b1), b2,
                          shape_str(want, in->rank, b3, sizeof b3));
      }
    if (host_only && t->device.device_type != kDLCPU && t->device.device_type != kDLCUDAHost)
      return diag_error(d, ATTNC_ERR_ARG, loc, "runtime input '%s' is not in host memory", in->name);
    int64_t n = numel(t);
    if (n != 0 && !t->data)
      return diag_error(d, ATTNC_ERR_ARG, loc, "runtime input '%s' has no data", in->name);
    IrTensorView *v = &views[i];
    memset(v, 0, sizeof *v);
    v->data = t->data ? (const char *)t->data + t->byte_offset : NULL;
    v->dtype = (IrDtype)dt;
    v->rank = in->rank;
    args_strides(t, v->strides);
    for (int k = 0; k < in->rank; k++) v->shape[k] = t->shape[k];
  }
  return ATTNC_OK;
}

/*
** Check a call's tensors against pattern p (see backend.h). The reference
** (host_only) reads float32 and float64 tensors on the host, each in its
** own dtype; compiled targets take q, k, v and o of one dtype, which must
** be one the spec allows, and a head dim from the spec's list.
*/
attnc_status args_check(const IrPattern *p, const attnc_args *args, bool host_only,
                        Shape *shape, IrTensorView *views, Diag *d) {
  if (!args) return arg_error(d, "no arguments (attnc_args is NULL)");
  unsigned fl = (1u << DT_F32) | (1u << DT_F64);
  if (!host_only) fl |= (1u << DT_F16) | (1u << DT_BF16);
  const DLTensor *q = args->q, *k = args->k, *v = args->v, *o = args->o, *lse = args->lse;
  attnc_status st;
  if ((st = check_tensor("q", q, 4, qkv_dims, fl, false, host_only, d)) ||
      (st = check_tensor("k", k, 4, k_dims, fl, false, host_only, d)) ||
      (st = check_tensor("v", v, 4, v_dims, fl, false, host_only, d)) ||
      (st = check_tensor("o", o, 4, o_dims, fl, true, host_only, d)))
    return st;
  static const char *const lse_dims[] = { "B", "Hq", "Sq" };
  if (lse && (st = check_tensor("lse", lse, 3, lse_dims, 1u << DT_F32, true, host_only, d)))
    return st;

  Shape s = { .B = q->shape[0], .Hq = q->shape[1], .Hkv = k->shape[1], .Sq = q->shape[2],
              .Sk = k->shape[2], .D = q->shape[3], .Dv = v->shape[3] };
  if ((st = same("k", k, 0, "B", "q", s.B, d)) || (st = same("v", v, 0, "B", "q", s.B, d)) ||
      (st = same("o", o, 0, "B", "q", s.B, d)) ||
      (st = same("v", v, 1, "Hkv", "k", s.Hkv, d)) || (st = same("o", o, 1, "Hq", "q", s.Hq, d)) ||
      (st = same("v", v, 2, "Sk", "k", s.Sk, d)) || (st = same("o", o, 2, "Sq", "q", s.Sq, d)) ||
      (st = same("k", k, 3, "D", "q", s.D, d)) || (st = same("o", o, 3, "Dv", "v", s.Dv, d)))
    return st;
  if (lse && ((st = same("lse", lse, 0, "B", "q", s.B, d)) ||
              (st = same("lse", lse, 1, "Hq", "q", s.Hq, d)) ||
              (st = same("lse", lse, 2, "Sq", "q", s.Sq, d))))
    return st;
  if (s.Hkv < 1) return arg_error(d, "k has no heads (Hkv = 0)");
  if (s.Hq % s.Hkv != 0)
    return arg_error(d, "q has %lld heads, not a multiple of the %lld heads of k and v (Hq must be a multiple of Hkv)",
                     (long long)s.Hq, (long long)s.Hkv);
  if (s.D < 1) return arg_error(d, "q and k have head dim D = 0 (need at least 1)");

  if (!host_only) {
    char b1[32], b2[32];
    const DLTensor *ts[] = { k, v, o };
    const char *names[] = { "k", "v", "o" };
    for (int i = 0; i < 3; i++)
      if (dl_dtype(ts[i]->dtype) != dl_dtype(q->dtype))
        return arg_error(d, "%s has dtype %s but q has %s (this target needs one dtype)", names[i],
                         dl_name(ts[i]->dtype, b1, sizeof b1), dl_name(q->dtype, b2, sizeof b2));
    int dt = dl_dtype(q->dtype);
    if (p->dtypes && !(p->dtypes & (1u << dt)))
      return diag_error(d, ATTNC_ERR_ARG, ir_loc(p, 0), "the spec does not allow dtype %s",
                        ir_dtype_name((IrDtype)dt));
    if (p->nhead_dims > 0) {
      bool ok = false;
      for (int i = 0; i < p->nhead_dims; i++) ok |= p->head_dims[i] == s.D;
      if (!ok)
        return diag_error(d, ATTNC_ERR_ARG, ir_loc(p, 0), "the spec does not allow head dim %lld",
                          (long long)s.D);
    }
  }

  if (p->grid_rank > 0) {
    int64_t tokens = 1;
    char g[96];
    size_t n = 0;
    for (int i = 0; i < p->grid_rank; i++) {
      tokens *= p->grid[i];
      n += (size_t)snprintf(g + n, sizeof g - n, "%s%lld", i ? "x" : "", (long long)p->grid[i]);
    }
    if (s.Sq != tokens)
      return diag_error(d, ATTNC_ERR_ARG, ir_loc(p, 0), "spec grid %s has %lld tokens but Sq = %lld",
                        g, (long long)tokens, (long long)s.Sq);
    if (s.Sk != tokens)
      return diag_error(d, ATTNC_ERR_ARG, ir_loc(p, 0), "spec grid %s has %lld tokens but Sk = %lld",
                        g, (long long)tokens, (long long)s.Sk);
  }
  if ((st = check_inputs(p, args, host_only, &s, views, d))) return st;
  if (shape) *shape = s;
  return ATTNC_OK;
}
