/*
** npy.h -- a small, strict reader and writer of NumPy .npy files.
**
** Reads format versions 1.0, 2.0 and 3.0 with a little-endian dtype of
** '<f4', '<f8' or '<i4', C order (fortran_order False), and exactly the
** bytes the header promises. Anything else is an error message naming the
** file and what is wrong ("Q.npy: dtype '<f2' not supported (need
** float32)"). Writes version 1.0 files atomically (temporary file, then
** rename). Assumes a little-endian host, like every machine attnc targets.
*/
#ifndef ATTNC_NPY_H
#define ATTNC_NPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum NpyDtype { NPY_F32 = 0, NPY_F64, NPY_I32 } NpyDtype;

#define NPY_MAXDIM 8
#define NPY_ANY ((1u << NPY_F32) | (1u << NPY_F64) | (1u << NPY_I32))

typedef struct NpyArray {
  NpyDtype dtype;
  int ndim;
  int64_t shape[NPY_MAXDIM];
  void *data;          /* malloc'd, C order; free with npy_free */
  size_t nbytes;
} NpyArray;

const char *npy_dtype_name(NpyDtype t);   /* "float32", "float64", "int32" */
size_t npy_itemsize(NpyDtype t);

/*
** Read path into *a. allowed is a mask of (1 << NpyDtype) the caller
** accepts. On error returns false and writes "path: what" into err.
*/
bool npy_read(const char *path, unsigned allowed, NpyArray *a, char *err, size_t errlen);

/* parse a .npy image already in memory (name used in messages) */
bool npy_parse(const char *name, const unsigned char *buf, size_t len, unsigned allowed,
               NpyArray *a, char *err, size_t errlen);

/* allocate a zeroed array of the given dtype and shape; false if no memory */
bool npy_alloc(NpyArray *a, NpyDtype t, int ndim, const int64_t *shape);

/* write a to path atomically; false with "path: what" in err */
bool npy_write(const char *path, const NpyArray *a, char *err, size_t errlen);

void npy_free(NpyArray *a);

#endif
