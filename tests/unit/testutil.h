/* testutil.h -- helpers shared by the Check suites. */
#ifndef ATTNC_TESTUTIL_H
#define ATTNC_TESTUTIL_H

#include <check.h>
#include "attnc.h"
#include "ir/ir.h"

/* path of a file in the source tree (ATTNC_SOURCE_DIR), static buffer */
const char *tu_path(const char *rel);
/* a file's bytes, NUL-terminated (malloc'd; free it), and its length in
   *len when len is not NULL; NULL when it cannot be read */
char *tu_read_file(const char *path, size_t *len);
/* the integer after the first `name` in a kernel's source ("kBlockN = "),
   -1 when the source or the name is missing */
long long tu_source_int(const char *src, const char *name);
/* run a suite, print results, return the exit status for main */
int tu_run(Suite *s);

/*
** Random masks for fuzzing: a Lua boolean expression over q, k (or, with
** grid, the coordinates of a 2-D grid), constants, + - * // %, abs, min,
** max, comparisons and & | ~, nested to about `depth`. A tiny LCG keeps
** it deterministic for a seed.
*/
typedef struct TuRng { uint64_t s; } TuRng;
unsigned tu_rnd(TuRng *r, unsigned n);                 /* in 0..n-1 */
void tu_gen_mask(TuRng *r, char *out, size_t n, int depth, bool grid);
/* a whole spec around a random mask of depth 2 (grid: a 9 x 13 grid) */
#define TU_MASK_MAX 4096
#define TU_SPEC_MAX 4400
void tu_gen_spec(TuRng *r, bool grid, char mask[TU_MASK_MAX], char src[TU_SPEC_MAX]);
/* n random-mask specs (every other one on a grid) from seed, loaded into
   specs[]; masks (NULL or n strings of TU_MASK_MAX) gets their masks.
   Masks the frontend refuses (e.g. constant) are skipped; returns how many
   were loaded (n unless the generator keeps making such masks). */
int tu_random_specs(attnc_ctx *ctx, uint64_t seed, int n, attnc_spec **specs,
                    char (*masks)[TU_MASK_MAX]);

/* fn(ud, i) for i in 0..n-1 on up to 8 threads (the CPU count) */
void tu_parallel(int n, void (*fn)(void *ud, int i), void *ud);
int tu_nthreads(void);

#endif
