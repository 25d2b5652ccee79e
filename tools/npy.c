/*
** npy.c -- a small, strict reader and writer of NumPy .npy files.
**
** The format (numpy.lib.format): the magic "\x93NUMPY", a major and minor
** version byte, the header length (2 bytes little-endian in 1.0, 4 bytes in
** 2.0 and 3.0), then the header, a Python dict literal such as
**   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 8, 64, 32), }
** padded with spaces and a newline, then the raw elements in C order.
*/
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/npy.h"
#include "tools/fsio.h"

static const struct { const char *descr, *name; size_t size; } dtypes[] = {
  [NPY_F32] = { "<f4", "float32", 4 },
  [NPY_F64] = { "<f8", "float64", 8 },
  [NPY_I32] = { "<i4", "int32", 4 },
};
#define NDTYPES ((int)(sizeof dtypes / sizeof dtypes[0]))

const char *npy_dtype_name(NpyDtype t) { return (int)t < NDTYPES ? dtypes[t].name : "?"; }
size_t npy_itemsize(NpyDtype t) { return (int)t < NDTYPES ? dtypes[t].size : 0; }

/* "float32", "float32 or float64", "float32, float64 or int32" for mask */
static void need_str(unsigned allowed, char *buf, size_t n) {
  size_t k = 0;
  int total = 0, seen = 0;
  buf[0] = 0;
  for (int i = 0; i < NDTYPES; i++) total += (allowed >> i) & 1;
  for (int i = 0; i < NDTYPES && k < n; i++)
    if (allowed & (1u << i)) {
      const char *sep = seen == 0 ? "" : seen == total - 1 ? " or " : ", ";
      k += (size_t)snprintf(buf + k, n - k, "%s%s", sep, dtypes[i].name);
      seen++;
    }
}

/* ------------------------------------------------------------ header */

/* a cursor over the header text */
typedef struct Hdr {
  const char *p, *end;
} Hdr;

static void skip_ws(Hdr *h) {
  while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r'))
    h->p++;
}

static bool accept(Hdr *h, char c) {
  skip_ws(h);
  if (h->p < h->end && *h->p == c) { h->p++; return true; }
  return false;
}

/* a quoted Python string without escapes, into buf */
static bool read_string(Hdr *h, char *buf, size_t n) {
  skip_ws(h);
  if (h->p >= h->end || (*h->p != '\'' && *h->p != '"')) return false;
  char q = *h->p++;
  size_t k = 0;
  while (h->p < h->end && *h->p != q) {
    if (*h->p == '\\' || k + 1 >= n) return false;
    buf[k++] = *h->p++;
  }
  if (h->p >= h->end) return false;
  h->p++;
  buf[k] = 0;
  return true;
}

static bool read_word(Hdr *h, const char *w) {
  skip_ws(h);
  size_t n = strlen(w);
  if ((size_t)(h->end - h->p) < n || memcmp(h->p, w, n) != 0) return false;
  h->p += n;
  return h->p >= h->end || !(isalnum((unsigned char)*h->p) || *h->p == '_');
}

/* a shape tuple: "()", "(5,)", "(2, 3)"; Python 2 files may write "3L" */
static bool read_shape(Hdr *h, NpyArray *a, char *why, size_t n) {
  if (!accept(h, '(')) { snprintf(why, n, "'shape' is not a tuple"); return false; }
  a->ndim = 0;
  for (;;) {
    if (accept(h, ')')) return true;
    skip_ws(h);
    if (h->p >= h->end || !isdigit((unsigned char)*h->p)) {
      snprintf(why, n, "'shape' holds something other than sizes");
      return false;
    }
    int64_t v = 0;
    while (h->p < h->end && isdigit((unsigned char)*h->p)) {
      if (v > (INT64_MAX - 9) / 10) { snprintf(why, n, "a size in 'shape' is too large"); return false; }
      v = v * 10 + (*h->p++ - '0');
    }
    if (h->p < h->end && *h->p == 'L') h->p++;
    if (a->ndim == NPY_MAXDIM) {
      snprintf(why, n, "more than %d dims", NPY_MAXDIM);
      return false;
    }
    a->shape[a->ndim++] = v;
    if (accept(h, ',')) continue;
    if (accept(h, ')') && a->ndim > 1) return true;
    snprintf(why, n, "'shape' is not a tuple");
    return false;
  }
}

/*
** Parse the header dict: exactly the keys descr, fortran_order and shape.
** Returns false with the reason in why (dtype problems set *bad_dtype).
*/
static bool parse_header(Hdr *h, NpyArray *a, unsigned allowed, char *why, size_t n,
                         bool *bad_dtype) {
  char key[32], descr[64] = "";
  bool have_descr = false, have_order = false, have_shape = false, fortran = false;
  if (!accept(h, '{')) { snprintf(why, n, "not a dict"); return false; }
  for (;;) {
    if (accept(h, '}')) break;
    if (!read_string(h, key, sizeof key)) { snprintf(why, n, "expected a key"); return false; }
    if (!accept(h, ':')) { snprintf(why, n, "expected ':' after '%s'", key); return false; }
    if (strcmp(key, "descr") == 0 && !have_descr) {
      skip_ws(h);
      if (h->p < h->end && *h->p == '[') {
        snprintf(why, n, "structured dtype not supported");
        *bad_dtype = true;
        return false;
      }
      if (!read_string(h, descr, sizeof descr)) { snprintf(why, n, "'descr' is not a string"); return false; }
      have_descr = true;
    } else if (strcmp(key, "fortran_order") == 0 && !have_order) {
      if (read_word(h, "True")) fortran = true;
      else if (read_word(h, "False")) fortran = false;
      else { snprintf(why, n, "'fortran_order' is not True or False"); return false; }
      have_order = true;
    } else if (strcmp(key, "shape") == 0 && !have_shape) {
      if (!read_shape(h, a, why, n)) return false;
      have_shape = true;
    } else {
      snprintf(why, n, "unexpected key '%s'", key);
      return false;
    }
    if (accept(h, ',')) continue;
    if (accept(h, '}')) break;
    snprintf(why, n, "expected ',' or '}' after '%s'", key);
    return false;
  }
  skip_ws(h);
  if (h->p != h->end) { snprintf(why, n, "text after the dict"); return false; }
  if (!have_descr || !have_order || !have_shape) {
    snprintf(why, n, "no '%s'", !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
    return false;
  }
  int t = -1;
  for (int i = 0; i < NDTYPES; i++)
    if (strcmp(descr, dtypes[i].descr) == 0) t = i;
  if (t < 0 || !(allowed & (1u << t))) {
    char need[64];
    need_str(allowed, need, sizeof need);
    snprintf(why, n, "dtype '%s' not supported (need %s)", descr, need);
    *bad_dtype = true;
    return false;
  }
  a->dtype = (NpyDtype)t;
  if (fortran && a->ndim > 1) {
    snprintf(why, n, "fortran_order True not supported (save a C-ordered array: np.ascontiguousarray)");
    *bad_dtype = true;
    return false;
  }
  return true;
}

/*
** Parse the image buf[0..len). With own, buf is malloc'd and becomes the
** array's data (moved to the front), so a large file is not held twice;
** it is freed on error.
*/
static bool parse(const char *name, unsigned char *buf, size_t len, bool own, unsigned allowed,
                  NpyArray *a, char *err, size_t errlen) {
  bool ok = false;
  memset(a, 0, sizeof *a);
  if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) {
    snprintf(err, errlen, "%s: not a .npy file", name);
    goto done;
  }
  int major = buf[6], minor = buf[7];
  if (major < 1 || major > 3 || minor != 0) {
    snprintf(err, errlen, "%s: .npy format version %d.%d not supported (need 1.0, 2.0 or 3.0)",
             name, major, minor);
    goto done;
  }
  size_t pre = major == 1 ? 10 : 12;
  if (len < pre) {
    snprintf(err, errlen, "%s: truncated header", name);
    goto done;
  }
  size_t hlen = major == 1 ? (size_t)buf[8] | (size_t)buf[9] << 8
              : (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
  if (hlen > len - pre) {
    snprintf(err, errlen, "%s: truncated header (%zu bytes promised, %zu present)", name, hlen,
             len - pre);
    goto done;
  }
  for (size_t i = 0; i < hlen; i++)
    if (buf[pre + i] == 0 || (buf[pre + i] >= 0x80 && major < 3)) {
      snprintf(err, errlen, "%s: bad header: not text", name);
      goto done;
    }
  Hdr h = { (const char *)buf + pre, (const char *)buf + pre + hlen };
  char why[160];
  bool bad_dtype = false;
  if (!parse_header(&h, a, allowed, why, sizeof why, &bad_dtype)) {
    snprintf(err, errlen, bad_dtype ? "%s: %s" : "%s: bad header: %s", name, why);
    goto done;
  }
  size_t item = npy_itemsize(a->dtype), count = 1;
  for (int i = 0; i < a->ndim; i++) {
    if (a->shape[i] != 0 && count > SIZE_MAX / item / (size_t)a->shape[i]) {
      snprintf(err, errlen, "%s: bad header: shape too large", name);
      goto done;
    }
    count *= (size_t)a->shape[i];
  }
  size_t nbytes = count * item, have = len - pre - hlen;
  if (have < nbytes) {
    snprintf(err, errlen, "%s: truncated data (%zu bytes for the shape, %zu in the file)", name,
             nbytes, have);
    goto done;
  }
  if (have > nbytes) {
    snprintf(err, errlen, "%s: %zu unexpected bytes after the data", name, have - nbytes);
    goto done;
  }
  if (own) {
    memmove(buf, buf + pre + hlen, nbytes);
    a->data = buf;
    buf = NULL;
  } else {
    a->data = malloc(nbytes ? nbytes : 1);
    if (!a->data) {
      snprintf(err, errlen, "%s: out of memory (%zu bytes)", name, nbytes);
      goto done;
    }
    memcpy(a->data, buf + pre + hlen, nbytes);
  }
  a->nbytes = nbytes;
  ok = true;
done:
  if (own) free(buf);
  return ok;
}

bool npy_parse(const char *name, const unsigned char *buf, size_t len, unsigned allowed,
               NpyArray *a, char *err, size_t errlen) {
  return parse(name, (unsigned char *)buf, len, false, allowed, a, err, errlen);
}


bool npy_read(const char *path, unsigned allowed, NpyArray *a, char *err, size_t errlen) {
  size_t len;
  memset(a, 0, sizeof *a);
  unsigned char *buf = fsio_read(path, &len, err, errlen);
  if (!buf) return false;
  return parse(path, buf, len, true, allowed, a, err, errlen);
}

bool npy_alloc(NpyArray *a, NpyDtype t, int ndim, const int64_t *shape) {
  memset(a, 0, sizeof *a);
  if (ndim < 0 || ndim > NPY_MAXDIM) return false;
  size_t item = npy_itemsize(t), count = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return false;
    if (shape[i] != 0 && count > SIZE_MAX / item / (size_t)shape[i]) return false;
    count *= (size_t)shape[i];
    a->shape[i] = shape[i];
  }
  a->dtype = t;
  a->ndim = ndim;
  a->nbytes = count * item;
  a->data = calloc(count ? count : 1, item);
  return a->data != NULL;
}

/*
** Write a version 1.0 file: the header padded with spaces so that the data
** starts at a multiple of 64 bytes, as numpy writes it.
*/
bool npy_write(const char *path, const NpyArray *a, char *err, size_t errlen) {
  char hdr[512];
  int n = snprintf(hdr + 10, sizeof hdr - 10, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                   dtypes[a->dtype].descr);
  for (int i = 0; i < a->ndim; i++)
    n += snprintf(hdr + 10 + n, sizeof hdr - 10 - (size_t)n, "%lld%s", (long long)a->shape[i],
                  a->ndim == 1 ? "," : i + 1 < a->ndim ? ", " : "");
  n += snprintf(hdr + 10 + n, sizeof hdr - 10 - (size_t)n, "), }");
  size_t total = ((size_t)10 + (size_t)n + 1 + 63) / 64 * 64;     /* + '\n' */
  memset(hdr + 10 + n, ' ', total - 10 - (size_t)n);
  hdr[total - 1] = '\n';
  memcpy(hdr, "\x93NUMPY\x01\x00", 8);
  hdr[8] = (char)((total - 10) & 0xff);
  hdr[9] = (char)((total - 10) >> 8);
  const void *bufs[2] = { hdr, a->data };
  size_t lens[2] = { total, a->nbytes };
  return fsio_write(path, bufs, lens, 2, err, errlen);
}

void npy_free(NpyArray *a) {
  free(a->data);
  a->data = NULL;
}
