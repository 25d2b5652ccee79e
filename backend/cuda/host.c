/*
** host.c -- host-side helpers of the cuda target for the CLI and tests:
** float <-> fp16 / bf16 conversion (round to nearest even) and tensors
** copied to and from the device with conversion.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda.h"

static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

uint16_t cuda_f32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);   /* NaN stays NaN */
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

float cuda_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t cuda_f32_to_f16(float f) {
  uint32_t u = f32_bits(f);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);                 /* NaN */
  if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);                /* overflow -> inf */
  if (a < 0x38800000u) {                                                  /* subnormal or zero */
    /* value = a as float; f16 subnormal unit is 2^-24 */
    float v = bits_f32(a);
    float scaled = v * 16777216.0f;                                       /* / 2^-24 */
    uint32_t m = (uint32_t)scaled;
    float rem = scaled - (float)m;
    if (rem > 0.5f || (rem == 0.5f && (m & 1u))) m++;
    return (uint16_t)(sign | m);
  }
  uint32_t e = ((a >> 23) - 127 + 15) << 10;
  uint32_t mant = a & 0x7fffffu;
  uint32_t h = e | (mant >> 13);
  uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;
  return (uint16_t)(sign | h);
}

float cuda_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0) {
    float v = (float)m * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  if (e == 31) return bits_f32(sign | 0x7f800000u | (m << 13));
  return bits_f32(sign | ((e - 15 + 127) << 23) | (m << 13));
}

static size_t dt_bytes(IrDtype t) {
  return t == DT_F16 || t == DT_BF16 ? 2 : t == DT_F64 ? 8 : 4;
}

static DLDataType dl_of(IrDtype t) {
  switch (t) {
  case DT_F16: return (DLDataType){ kDLFloat, 16, 1 };
  case DT_BF16: return (DLDataType){ kDLBfloat, 16, 1 };
  case DT_F32: return (DLDataType){ kDLFloat, 32, 1 };
  case DT_F64: return (DLDataType){ kDLFloat, 64, 1 };
  default: return (DLDataType){ kDLInt, 32, 1 };
  }
}

static int64_t numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  return n;
}

attnc_status cuda_tensor_alloc(CudaDriver *drv, int ndim, const int64_t *shape, IrDtype dt,
                               CudaTensor *dev, Diag *d) {
  memset(dev, 0, sizeof *dev);
  if (ndim < 0 || ndim > IR_MAXDIMS + 1)
    return diag_error(d, ATTNC_ERR_ARG, (Loc){ NULL, 0 }, "tensor rank %d", ndim);
  dev->drv = drv;
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    dev->shape[i] = shape[i];
    dev->strides[i] = s;
    s *= shape[i];
  }
  dev->t.ndim = ndim;
  dev->t.shape = dev->shape;
  dev->t.strides = dev->strides;
  dev->t.dtype = dl_of(dt);
  dev->t.device = (DLDevice){ kDLCUDA, 0 };
  void *p = NULL;
  attnc_status st = cuda_mem_alloc(drv, (size_t)numel(ndim, shape) * dt_bytes(dt), &p, d);
  dev->t.data = p;
  return st;
}

void cuda_tensor_free(CudaTensor *dev) {
  if (dev && dev->drv) cuda_mem_free(dev->drv, dev->t.data);
  if (dev) dev->t.data = NULL;
}

/* read element i (row-major logical index) of a host tensor as double */
static double host_get(const DLTensor *t, int64_t i) {
  int64_t off = 0;
  int64_t st[8];
  int64_t s = 1;
  for (int a = t->ndim - 1; a >= 0; a--) {
    st[a] = t->strides ? t->strides[a] : s;
    s *= t->shape[a];
  }
  for (int a = t->ndim - 1; a >= 0; a--) {
    off += (i % t->shape[a]) * st[a];
    i /= t->shape[a];
  }
  const char *base = (const char *)t->data + t->byte_offset;
  if (t->dtype.code == kDLFloat && t->dtype.bits == 32) return ((const float *)base)[off];
  if (t->dtype.code == kDLFloat && t->dtype.bits == 64) return ((const double *)base)[off];
  if (t->dtype.code == kDLInt && t->dtype.bits == 32) return ((const int32_t *)base)[off];
  if (t->dtype.code == kDLFloat && t->dtype.bits == 16) return cuda_f16_to_f32(((const uint16_t *)base)[off]);
  if (t->dtype.code == kDLBfloat && t->dtype.bits == 16) return cuda_bf16_to_f32(((const uint16_t *)base)[off]);
  return 0;
}

attnc_status cuda_tensor_upload(CudaDriver *drv, const DLTensor *host, IrDtype to, CudaTensor *dev,
                                Diag *d) {
  attnc_status st = cuda_tensor_alloc(drv, host->ndim, host->shape, to, dev, d);
  if (st) return st;
  int64_t n = numel(host->ndim, host->shape);
  size_t eb = dt_bytes(to);
  char *buf = malloc((size_t)(n > 0 ? n : 1) * eb);
  if (!buf) { cuda_tensor_free(dev); return diag_error(d, ATTNC_ERR_NOMEM, (Loc){ NULL, 0 }, "out of memory"); }
  for (int64_t i = 0; i < n; i++) {
    double v = host_get(host, i);
    switch (to) {
    case DT_F16: ((uint16_t *)buf)[i] = cuda_f32_to_f16((float)v); break;
    case DT_BF16: ((uint16_t *)buf)[i] = cuda_f32_to_bf16((float)v); break;
    case DT_F32: ((float *)buf)[i] = (float)v; break;
    case DT_F64: ((double *)buf)[i] = v; break;
    default: ((int32_t *)buf)[i] = (int32_t)v; break;
    }
  }
  st = cuda_memcpy_htod(drv, dev->t.data, buf, (size_t)n * eb, d);
  free(buf);
  if (st) cuda_tensor_free(dev);
  return st;
}

attnc_status cuda_tensor_download(CudaDriver *drv, const CudaTensor *dev, DLTensor *host, Diag *d) {
  int64_t n = numel(dev->t.ndim, dev->t.shape);
  size_t eb = dev->t.dtype.bits / 8;
  char *buf = malloc((size_t)(n > 0 ? n : 1) * eb);
  if (!buf) return diag_error(d, ATTNC_ERR_NOMEM, (Loc){ NULL, 0 }, "out of memory");
  attnc_status st = cuda_memcpy_dtoh(drv, buf, dev->t.data, (size_t)n * eb, d);
  if (!st) {
    int64_t hst[8], s = 1;
    for (int a = host->ndim - 1; a >= 0; a--) {
      hst[a] = host->strides ? host->strides[a] : s;
      s *= host->shape[a];
    }
    char *hb = (char *)host->data + host->byte_offset;
    for (int64_t i = 0; i < n; i++) {
      double v;
      if (dev->t.dtype.code == kDLFloat && eb == 2) v = cuda_f16_to_f32(((uint16_t *)buf)[i]);
      else if (dev->t.dtype.code == kDLBfloat) v = cuda_bf16_to_f32(((uint16_t *)buf)[i]);
      else if (dev->t.dtype.code == kDLFloat && eb == 4) v = ((float *)buf)[i];
      else if (dev->t.dtype.code == kDLFloat && eb == 8) v = ((double *)buf)[i];
      else v = ((int32_t *)buf)[i];
      int64_t off = 0, j = i;
      for (int a = host->ndim - 1; a >= 0; a--) {
        off += (j % host->shape[a]) * hst[a];
        j /= host->shape[a];
      }
      if (host->dtype.bits == 64) ((double *)hb)[off] = v;
      else ((float *)hb)[off] = (float)v;
    }
  }
  free(buf);
  return st;
}
