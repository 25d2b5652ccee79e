/*
** test_cuda_host.c -- the integer half of every generated kernel, run on the
** host (CI, no GPU). The mask functions (pattern_mask<v>, and the split
** mask_row0 / mask_col0 / mask_pair0 that partial tiles run), the runtime
** input accessors, the token orders (q_tile_begin, q_token, kv_token) and
** the kv iterators (kv_begin, kv_next; not the data iterator, whose fill
** runs on many threads through shared memory) are plain C++; they are cut
** out of the emitted source between its section markers, compiled with the
** host's c++ behind a few shims, and run over every (b, h, q, k) of a small
** shape. Every pair must agree with the IR evaluator (ir_eval), every tile
** position with the plan's order (plan_order_token), and every q tile's kv
** tiles, full or partial, with plan_visit. The harness itself then runs
** score_tile on every (q tile, kv tile) for every lane of every warp, so the
** unrolled mask of whole tiles (mask_tile) and the loop of ragged ones must
** set -inf exactly on the masked pairs, and checks kv_tile_whole and the
** first-token-plus-offset tokens load_kv copies whole tiles from. Every spec
** of specs/ and a few random masks.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/testutil.h"
#include "backend/cuda/cuda.h"
#include "passes/passes.h"
#include "runtime/runtime.h"

enum { B = 1, H = 2, SEQ = 150 };

typedef struct Job {
  char name[600];
  const IrPattern *pat;
  int64_t seq;            /* tokens (0: SEQ) */
  int ok;                 /* 1: agreed, 0: failed (msg), -1: no c++ */
  char msg[1200];
} Job;

/* the bytes of src from the line starting with `from` up to the one starting with `to` */
static const char *section(const char *src, const char *from, const char *to, size_t *len) {
  const char *a = strstr(src, from), *b = a ? strstr(a, to) : NULL;
  if (!a || !b) return NULL;
  *len = (size_t)(b - a);
  return a;
}

static int64_t dim_size(IrDim d, int64_t S) {
  int64_t base = d.sym == DIM_B ? B : d.sym == DIM_H || d.sym == DIM_HKV ? H : S;
  return d.sym == DIM_CONST ? d.value : (base + d.value - 1) / d.value;
}

typedef struct Inputs {
  IrTensorView v[8];
  void *data[8];
  int n;
} Inputs;

/* deterministic contents: ints in 0..7, floats in [-1, 1) */
static void make_inputs(const IrPattern *p, int64_t S, Inputs *in) {
  memset(in, 0, sizeof *in);
  uint64_t s = 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < p->ninputs && i < 8; i++) {
    const IrInput *pi = &p->inputs[i];
    IrTensorView *v = &in->v[i];
    v->dtype = pi->dtype == DT_I32 ? DT_I32 : DT_F32;
    v->rank = pi->rank;
    int64_t n = 1;
    for (int d = pi->rank - 1; d >= 0; d--) {
      v->shape[d] = dim_size(pi->dims[d], S);
      v->strides[d] = n;
      n *= v->shape[d];
    }
    in->data[i] = malloc((size_t)(n > 0 ? n : 1) * 4);
    for (int64_t e = 0; e < n; e++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      if (v->dtype == DT_I32) ((int32_t *)in->data[i])[e] = (int32_t)((s >> 33) % 8);
      else ((float *)in->data[i])[e] = (float)((double)(s >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
    }
    v->data = in->data[i];
    in->n = i + 1;
  }
}

static void free_inputs(Inputs *in) {
  for (int i = 0; i < in->n; i++) free(in->data[i]);
}

static const char host_prelude[] =
  "#include <cmath>\n#include <cstdio>\n#include <cstring>\n"
  "#define __device__\n#define __forceinline__ inline\n"
  "static inline float __int_as_float(int x) { float f; std::memcpy(&f, &x, 4); return f; }\n"
  "static inline float fast_tanh(float x) { return tanhf(x); }\n"
  "static inline float fast_exp2(float x) { return exp2f(x); }\n"
  "static inline bool __all_sync(unsigned, bool v) { return v; }   // one lane at a time\n";

/* the harness: sections of src, the inputs as arrays, a main that prints masks and orders */
static bool write_harness(FILE *f, const char *src, const IrPattern *p, const Plan *pl, const CudaConfig *cfg, int64_t S,
                          const Inputs *in, int64_t nq, int64_t nkv, int bm, int bn, bool iters) {
  size_t l1 = 0, l2 = 0, l3 = 0;
  const char *head = section(src, "typedef unsigned short u16;", "// ---- PTX helpers", &l1);
  const char *body = section(src, "// ---- integer helpers", "// ---- kv iteration", &l2);
  const char *iter = iters ? section(src, "// ---- kv iteration", "// ---- wgmma helpers", &l3) : NULL;
  if (!head || !body || (iters && !iter)) return false;
  fputs(host_prelude, f);
  fwrite(head, 1, l1, f);
  fwrite(body, 1, l2, f);
  if (iter) fwrite(iter, 1, l3, f);
  for (int i = 0; i < in->n; i++) {
    const IrTensorView *v = &in->v[i];
    int64_t n = 1;
    for (int d = 0; d < v->rank; d++) n *= v->shape[d];
    fprintf(f, "static const %s in%d_data[] = {", v->dtype == DT_I32 ? "int" : "float", i);
    for (int64_t e = 0; e < n; e++) {
      if (v->dtype == DT_I32) fprintf(f, "%s%d", e ? "," : "", ((const int32_t *)v->data)[e]);
      else fprintf(f, "%s%.9gf", e ? "," : "", (double)((const float *)v->data)[e]);
    }
    fprintf(f, "%s};\n", n ? "" : "0");
  }
  bool split = strstr(src, "struct MaskRow0") != NULL;
  int nv = pl->nvariants;
  fputs("static bool mask_of(const Params &p, int v, int b, int h, int q, int k, int s) {\n  switch (v) {\n", f);
  for (int v = 0; v < nv; v++)
    fprintf(f, "  case %d: return pattern_mask%d(p, b, h, q, k, s, s);\n", v, v);
  fputs("  default: return false;\n  }\n}\n", f);
  /* the orders' geometry as the driver gives it to the TMA maps (cfg), for
     the box checks below: box and dilation per axis, and the q order's sizes
     and token strides (row-major) */
  const CudaOrder *ko = &cfg->kord, *qo = &cfg->qord;
  fputs("static const int kv_box[] = {", f);
  for (int a = 0; a < ko->rank; a++) fprintf(f, "%s%lld", a ? ", " : "", (long long)ko->box[a]);
  fputs("}, kv_dil[] = {", f);
  for (int a = 0; a < ko->rank; a++) fprintf(f, "%s%lld", a ? ", " : "", (long long)ko->dil[a]);
  fputs("};\nstatic const long long q_box[] = {", f);
  for (int a = 0; a < qo->rank; a++) fprintf(f, "%s%lld", a ? ", " : "", (long long)qo->box[a]);
  fputs("}, q_dil[] = {", f);
  for (int a = 0; a < qo->rank; a++) fprintf(f, "%s%lld", a ? ", " : "", (long long)qo->dil[a]);
  fputs("}, q_n[] = {", f);
  for (int a = 0; a < qo->rank; a++) fprintf(f, "%s%lld", a ? ", " : "", (long long)qo->n[a]);
  fputs("}, q_stride[] = {", f);
  for (int a = 0; a < qo->rank; a++) {
    long long st = 1;
    for (int j = a + 1; j < qo->rank; j++) st *= (long long)qo->n[j];
    fprintf(f, "%s%lld", a ? ", " : "", st);
  }
  fputs("};\n", f);
  fprintf(f, "int main() {\n  static Params p;\n  const int S = %lld;\n", (long long)S);
  fprintf(f, "  p.batch = %d; p.heads_q = %d; p.heads_kv = %d; p.seq_q = S; p.seq_k = S;\n", B, H, H);
  for (int i = 0; i < in->n; i++) {
    fprintf(f, "  p.in%d = in%d_data;\n", i, i);
    for (int d = 0; d < in->v[i].rank; d++)
      fprintf(f, "  p.in%d_shape[%d] = %lld; p.in%d_stride[%d] = %lld;\n", i, d,
              (long long)in->v[i].shape[d], i, d, (long long)in->v[i].strides[d]);
  }
  fputs("  static const int variant_of[] = {", f);
  for (int h = 0; h < H; h++) fprintf(f, "%s%d", h ? ", " : "", plan_variant_of(pl, h));
  fputs("};\n", f);
  fputs("  for (int b = 0; b < p.batch; ++b)\n    for (int h = 0; h < p.heads_q; ++h)\n"
        "      for (int q = 0; q < S; ++q) {\n        for (int k = 0; k < S; ++k) {\n"
        "          const bool m = mask_of(p, variant_of[h], b, h, q, k, S);\n", f);
  if (split && nv == 1) {
    /* mask_col0 takes k's coordinates on the kv order's axes, which it reads
       where they are the grid's: row-major over the grid, as kv_place has them */
    const char *kcp = strstr(src, "const int (&kc)[");
    int rank = kcp ? atoi(kcp + strlen("const int (&kc)[")) : 1;
    fprintf(f, "          int kc[%d] = { 0 }, t = k;\n", rank);
    if (rank == p->grid_rank)
      for (int a = rank - 1; a >= 0; a--)
        fprintf(f, "          kc[%d] = t %% %lld; t /= %lld;\n", a, (long long)p->grid[a], (long long)p->grid[a]);
    fputs("          (void)t;\n"
          "          const bool s = mask_pair0(p, b, h, q, k, S, S, mask_row0(p, b, h, q, S, S), mask_col0(p, b, h, k, kc, S, S));\n", f);
  }
  else
    fputs("          const bool s = m;\n", f);
  fputs("          putchar('0' + m + 2 * s);\n        }\n        putchar('\\n');\n      }\n", f);
  fprintf(f, "  for (int t = 0; t < %lld; ++t) {\n    QTile qt;\n"
             "    if (!q_tile_begin(qt, p, 0, 0, t)) { printf(\"-\\n\"); continue; }\n"
             "    for (int i = 0; i < %d; ++i) printf(\"%%d \", q_token(qt, i));\n    printf(\"\\n\");\n  }\n",
          (long long)nq, bm);
  fprintf(f, "  for (int u = 0; u < %lld; ++u) {\n"
             "    for (int i = 0; i < %d; ++i) printf(\"%%d \", kv_token(u, i, S));\n    printf(\"\\n\");\n  }\n",
          (long long)nkv, bn);
  if (iters)   /* per (b, h, q tile): the kv tiles kv_next yields, as (tile*4 + edge)*2 + full */
    fprintf(f, "  for (int b = 0; b < p.batch; ++b)\n    for (int h = 0; h < p.heads_q; ++h)\n"
               "      for (int t = 0; t < %lld; ++t) {\n        QTile qt;\n"
               "        if (q_tile_begin(qt, p, b, h, t)) {\n          KvIter it;\n"
               "          kv_begin(it, p, qt, b, h);\n          KvTile kt;\n"
               "          while (kv_next(it, p, qt, b, h, kt)) printf(\"%%d \", (kt.tile * 4 + (kt.full ? 0 : kt.edge & 3)) * 2 + (kt.full ? 1 : 0));\n"
               "        }\n        printf(\"\\n\");\n      }\n", (long long)nq);
  if (iters)   /* score_tile's mask, on every lane of every warp, and what load_kv assumes */
    fprintf(f,
      "  long long bad = 0;\n  char first[300] = \"\";\n"
      "  auto fail = [&](const char *what, int b, int h, int t, int u, int q, int k) {\n"
      "    if (!bad++) snprintf(first, sizeof first, \"%%s: b %%d h %%d q tile %%d kv tile %%d q %%d k %%d\", what, b, h, t, u, q, k);\n"
      "  };\n"
      "  for (int u = 0; u < %lld; ++u) {\n"
      "    bool all = true;\n"
      "    for (int i = 0; i < kBlockN; ++i) all = all && kv_token(u, i, S) >= 0;\n"
      "    if (kv_tile_whole(u, S) != all) fail(\"kv_tile_whole\", 0, 0, -1, u, -1, -1);\n"
      "    for (int i = 0; all && i < kBlockN; ++i)   // a whole tile: first token plus a tile-free offset\n"
      "      if (kv_token<true>(u, 0, S) + kv_token<true>(0, i, S) != kv_token(u, i, S)) fail(\"kv_token offset\", 0, 0, -1, u, -1, i);\n"
      "    // what a TMA box reads: from kv_origin, positions row-major over the order's\n"
      "    // box (last axis fastest), dil apart on each axis\n"
      "    int org[kKvRank];\n"
      "    kv_origin(u, S, org);\n"
      "    for (int i = 0; i < kBlockN; ++i) {\n"
      "      int tok, c[kKvRank], r = i;\n"
      "      kv_place(u, i, S, tok, c);\n"
      "      for (int a = kKvRank - 1; a >= 0; --a) {\n"
      "        if (c[a] != org[a] + kv_dil[a] * (r %% kv_box[a])) fail(\"kv_origin box\", 0, 0, -1, u, a, i);\n"
      "        r /= kv_box[a];\n"
      "      }\n"
      "    }\n"
      "  }\n"
      "  for (int t = 0; t < %lld; ++t) {   // the same for tma_q, from the q tile's first coordinates\n"
      "    QTile qt;\n"
      "    if (!q_tile_begin(qt, p, 0, 0, t)) continue;\n"
      "    for (int i = 0; i < kBlockM; ++i) {\n"
      "      long long tok = 0;\n      bool ok = true;\n      int r = i;\n"
      "      for (int a = kQRank - 1; a >= 0; --a) {\n"
      "        const long long c = qt.lo[a] + q_dil[a] * (r %% q_box[a]);\n"
      "        r /= q_box[a];\n"
      "        ok = ok && c < (kQRank == 1 ? S : q_n[a]);\n"
      "        tok += c * q_stride[a];\n"
      "      }\n"
      "      if (q_token(qt, i) != (ok ? tok : -1)) fail(\"tma_q box\", 0, 0, t, -1, i, -1);\n"
      "    }\n"
      "  }\n"
      "  for (int b = 0; b < p.batch; ++b)\n    for (int h = 0; h < p.heads_q; ++h)\n"
      "      for (int t = 0; t < %lld; ++t) {\n        QTile qt;\n"
      "        if (!q_tile_begin(qt, p, b, h, t)) continue;\n"
      "        static unsigned char edge_of[%lld];   // kv_next's edge tag (3: the whole mask)\n"
      "        memset(edge_of, 3, sizeof edge_of);\n"
      "        {\n          KvIter it;\n          KvTile kt{};\n          kv_begin(it, p, qt, b, h);\n"
      "          while (kv_next(it, p, qt, b, h, kt)) if (!kt.full) edge_of[kt.tile] = kt.edge;\n        }\n"
      "        for (int u = 0; u < %lld; ++u)\n"
      "          for (int w = 0; w < kWarps; ++w)\n"
      "            for (int lane = 0; lane < 32; ++lane) {\n"
      "              int q_tok[kAtomsM][2];\n"
      "              for (int mi = 0; mi < kAtomsM; ++mi)\n"
      "                for (int r = 0; r < 2; ++r) q_tok[mi][r] = q_token(qt, w * kWarpM + mi * 16 + r * 8 + lane / 4);\n"
      "              float s[kAtomsM][kAtomsN][4] = {};\n"
      "              KvTile kt;\n              kt.tile = u;\n              kt.full = false;\n              kt.edge = edge_of[u];\n"
      "              const RowGain rg = row_gain(p, b, h, q_tok, 1.0f);   // as the kernel's loop\n"
      "              score_tile(s, p, qt, kt, q_tok, b, h, lane, 1.0f, rg, rg.raw && tile_raw(p, b, h, u));\n"
      "              for (int mi = 0; mi < kAtomsM; ++mi)\n"
      "                for (int ni = 0; ni < kAtomsN; ++ni)\n"
      "                  for (int e = 0; e < 4; ++e) {\n"
      "                    const int q = q_tok[mi][e / 2], k = kv_token(u, ni * 8 + (lane %% 4) * 2 + e %% 2, S);\n"
      "                    if (q < 0) continue;   // a padding row is never stored\n"
      "                    const bool allowed = k >= 0 && mask_of(p, variant_of[h], b, h, q, k, S);\n"
      "                    if (allowed == (s[mi][ni][e] == -kInf)) fail(\"score_tile\", b, h, t, u, q, k);\n"
      "                  }\n"
      "            }\n"
      "      }\n"
      "  printf(\"%%lld %%s\\n\", bad, first);\n", (long long)nkv, (long long)nq, (long long)nq, (long long)nkv,
      (long long)nkv);
  fputs("  return 0;\n}\n", f);
  (void)p;
  return true;
}

/* kv tiles visited, as (tile * 4 + edge) * 2 + full (edge: plan_tile_edge of
   a partial tile, 0 for a full one; -1 until filled in) */
typedef struct Visits { int64_t *v; int n, cap; } Visits;

static void visit_add(void *ud, int64_t tile, bool full) {
  Visits *vs = ud;
  if (vs->n == vs->cap) {
    vs->cap = vs->cap ? 2 * vs->cap : 64;
    vs->v = realloc(vs->v, (size_t)vs->cap * sizeof *vs->v);
  }
  vs->v[vs->n++] = tile * 8 + (full ? 1 : 0);
}

static int cmp64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* NULL when both list the same tiles, each once, with the same full flag
   and, where the plan tags edges (an edge of want below 3), the same edge */
static const char *visits_differ(Visits *want, Visits *got) {
  qsort(want->v, (size_t)want->n, sizeof *want->v, cmp64);
  qsort(got->v, (size_t)got->n, sizeof *got->v, cmp64);
  for (int i = 1; i < got->n; i++)
    if (got->v[i] / 8 == got->v[i - 1] / 8) return "yields a tile twice, unlike";
  if (got->n != want->n) return "yields other tiles than";
  for (int i = 0; i < got->n; i++) {
    int64_t g = got->v[i], w = want->v[i];
    if (g / 8 != w / 8) return "yields other tiles than";
    if (g % 2 != w % 2) return "marks full differently from";
    if (w / 2 % 4 != 3 && g / 2 % 4 != w / 2 % 4) return "tags an edge differently from";
  }
  return NULL;
}

static bool have_cxx(void) { return system("command -v c++ >/dev/null 2>&1") == 0; }

static void run_job(Job *j) {
  const IrPattern *p = j->pat;
  Arena a;
  arena_init(&a);
  Diag d = { 0 };
  CudaConfig cfg = { .dtype = DT_BF16, .head_dim = p->nhead_dims ? p->head_dims[0] : 64, .arch = 90 };
  if (p->dtypes && !(p->dtypes & (1u << DT_BF16))) cfg.dtype = DT_F16;
  Plan *pl = NULL;
  char *src = NULL;
  int64_t S = j->seq > 0 ? j->seq : SEQ;
  if (p->grid_rank > 0) {
    S = 1;
    for (int i = 0; i < p->grid_rank; i++) S *= p->grid[i];
  }
  cfg.seq_hint = S;
  j->ok = 0;
  if (cuda_plan(p, &cfg, &a, &pl, &d) || cuda_emit_plan(p, pl, &cfg, &a, &src, &d)) {
    snprintf(j->msg, sizeof j->msg, "emit: %s", d.msg);
    arena_free(&a);
    return;
  }
  Inputs in;
  make_inputs(p, S, &in);
  /* the harness and its program in a fresh directory (mkdtemp replaces the Xs) */
  char dir[] = "/tmp/attnc-host-XXXXXX", cpp[64], exe[64], cmd[256];
  bool have_dir = mkdtemp(dir) != NULL;
  snprintf(cpp, sizeof cpp, "%s/harness.cpp", dir);
  snprintf(exe, sizeof exe, "%s/harness", dir);
  FILE *f = have_dir ? fopen(cpp, "w") : NULL;
  int64_t nq = plan_order_ntiles(&pl->qord, S), nkv = plan_order_ntiles(&pl->kord, S);
  bool iters = true;                /* the data iterator's fill needs many threads */
  for (int v = 0; v < pl->nvariants; v++) iters = iters && pl->variants[v].it.kind != ITER_DATA;
  bool wrote = f && write_harness(f, src, p, pl, &cfg, S, &in, nq, nkv, cfg.block_m, cfg.block_n, iters);
  if (f) fclose(f);
  if (!wrote) {
    snprintf(j->msg, sizeof j->msg, have_dir ? "no harness (section markers missing?)"
                                             : "cannot make a directory under /tmp");
    goto out;
  }
  snprintf(cmd, sizeof cmd, "c++ -std=c++17 -O1 -w -o %s %s 2>&1", exe, cpp);
  FILE *pc = popen(cmd, "r");
  char err[1000] = "";
  size_t ne = pc ? fread(err, 1, sizeof err - 1, pc) : 0;
  err[ne] = 0;
  if (!pc || pclose(pc) != 0) {
    snprintf(j->msg, sizeof j->msg, "c++ failed on %s: %.900s", cpp, err);
    goto out;
  }
  FILE *po = popen(exe, "r");
  if (!po) { snprintf(j->msg, sizeof j->msg, "cannot run %s", exe); goto out; }
  double *vals = calloc((size_t)p->nnodes + 1, sizeof *vals);
  char *line = malloc((size_t)S * 16 + 64);
  int bad = 0;
  for (int b = 0; b < B && !bad; b++)
    for (int h = 0; h < H && !bad; h++)
      for (int64_t q = 0; q < S && !bad; q++) {
        if (!fgets(line, (int)S * 16 + 64, po)) { bad = 1; snprintf(j->msg, sizeof j->msg, "short output"); break; }
        for (int64_t k = 0; k < S && !bad; k++) {
          IrEnv env = { .b = b, .h = h, .q = q, .k = k, .sq = S, .sk = S, .inputs = in.v };
          ir_env_coords(p, &env);
          Diag de = { 0 };
          int want = p->mask < 0 ? 1 : ir_eval(p, p->mask, &env, vals, &de) != 0;
          if (!diag_ok(&de)) continue;           /* a fault the accessors read as 0 */
          if (line[k] != '0' + 3 * want) {
            bad = 1;
            snprintf(j->msg, sizeof j->msg, "b %d h %d q %lld k %lld: ir_eval %d, pattern_mask %d, split %d",
                     b, h, (long long)q, (long long)k, want, (line[k] - '0') & 1, (line[k] - '0') >> 1);
          }
        }
      }
  for (int64_t t = 0; t < nq && !bad; t++) {
    if (!fgets(line, (int)S * 16 + 64, po)) { bad = 1; snprintf(j->msg, sizeof j->msg, "short output"); break; }
    char *c = line;
    bool none = line[0] == '-';
    for (int i = 0; i < cfg.block_m && !bad; i++) {
      long long want = plan_order_token(&pl->qord, S, t, i), got = none ? -1 : strtoll(c, &c, 10);
      if (got != want) {
        bad = 1;
        snprintf(j->msg, sizeof j->msg, "q tile %lld position %d: q_token %lld, plan %lld", (long long)t, i, got, want);
      }
    }
  }
  for (int64_t u = 0; u < nkv && !bad; u++) {
    if (!fgets(line, (int)S * 16 + 64, po)) { bad = 1; snprintf(j->msg, sizeof j->msg, "short output"); break; }
    char *c = line;
    for (int i = 0; i < cfg.block_n && !bad; i++) {
      long long want = plan_order_token(&pl->kord, S, u, i), got = strtoll(c, &c, 10);
      if (got != want) {
        bad = 1;
        snprintf(j->msg, sizeof j->msg, "kv tile %lld position %d: kv_token %lld, plan %lld", (long long)u, i, got, want);
      }
    }
  }
  /* the kv tiles of every q tile: the same set as plan_visit's, each once, full alike */
  PlanRun run = { .B = B, .H = H, .Sq = S, .Sk = S, .inputs = in.v };
  for (int b = 0; b < B && iters && !bad; b++)
    for (int h = 0; h < H && !bad; h++)
      for (int64_t t = 0; t < nq && !bad; t++) {
        if (!fgets(line, (int)S * 16 + 64, po)) { bad = 1; snprintf(j->msg, sizeof j->msg, "short output"); break; }
        Visits want = { 0 }, got = { 0 };
        Diag dv = { 0 };
        plan_visit(pl, &run, b, h, t, visit_add, &want, &dv);
        for (int i = 0; i < want.n; i++)
          if (want.v[i] % 2 == 0) want.v[i] += 2 * plan_tile_edge(pl, &run, b, h, t, want.v[i] / 8);
        for (char *c = line, *e; ; c = e) {
          long long x = strtoll(c, &e, 10);
          if (e == c) break;
          if (got.n == got.cap) {
            got.cap = got.cap ? 2 * got.cap : 64;
            got.v = realloc(got.v, (size_t)got.cap * sizeof *got.v);
          }
          got.v[got.n++] = x;
        }
        const char *why = visits_differ(&want, &got);
        if (why) {
          bad = 1;
          snprintf(j->msg, sizeof j->msg, "b %d h %d q tile %lld: kv_next %s plan_visit (%d tiles against %d)",
                   b, h, (long long)t, why, got.n, want.n);
        }
        free(want.v);
        free(got.v);
      }
  /* the harness's own check of score_tile (both mask forms), kv_tile_whole and
     the offsets load_kv adds: the number of disagreements, then the first */
  if (iters && !bad) {
    if (!fgets(line, (int)S * 16 + 64, po)) { bad = 1; snprintf(j->msg, sizeof j->msg, "short output"); }
    else if (strtoll(line, NULL, 10) != 0) {
      bad = 1;
      line[strcspn(line, "\n")] = 0;
      snprintf(j->msg, sizeof j->msg, "%.1100s (disagreements, then the first)", line);
    }
  }
  while (fgets(line, (int)S * 16 + 64, po)) {}
  if (pclose(po) != 0 && !bad) { bad = 1; snprintf(j->msg, sizeof j->msg, "%s exited with an error", exe); }
  free(vals);
  free(line);
  j->ok = !bad;
out:
  free_inputs(&in);
  if (j->ok) { unlink(cpp); unlink(exe); rmdir(dir); }   /* a failure keeps its harness */
  arena_free(&a);
}

static void job_fn(void *jobs, int i) { run_job(&((Job *)jobs)[i]); }

/* specs[i] (named names[i]) through run_job on every thread; the specs are
   freed; returns how many disagree, each reported on stderr */
static int check_specs(attnc_spec **specs, char (*names)[600], int n) {
  ck_assert_msg(have_cxx(), "no c++ on PATH: test_cuda_host compiles the generated kernels' "
                "integer code with it (install g++)");
  Job *jobs = calloc((size_t)(n > 0 ? n : 1), sizeof *jobs);
  for (int i = 0; i < n; i++) {
    snprintf(jobs[i].name, sizeof jobs[i].name, "%s", names[i]);
    const char *sq = strstr(names[i], " S=");    /* "specs/x.lua S=600": that many tokens */
    jobs[i].seq = sq ? atoll(sq + 3) : 0;
    jobs[i].pat = specs[i]->pat;
  }
  tu_parallel(n, job_fn, jobs);
  int failed = 0;
  for (int i = 0; i < n; i++) {
    if (!jobs[i].ok) {
      fprintf(stderr, "test_cuda_host: %s: %s\n", jobs[i].name, jobs[i].msg);
      failed++;
    }
    attnc_spec_free(specs[i]);
  }
  free(jobs);
  return failed;
}

START_TEST(specs_on_host) {
  static const char *files[] = {
    "alibi", "block_sparse", "causal", "clustered", "dilated", "document", "global_tokens",
    "neighborhood1d", "neighborhood2d", "neighborhood3d", "overlapping_windows", "per_head",
    "prefix_lm", "relative_bias", "routed", "sinks", "sliding_window", "softcap", "swin2d",
    "swin3d", "temporal_window", "axial2d",
    "fixed_sparse block=256 summary=24 S=700",   /* blocks wider than a kv tile: a periodic filter */
  };
  enum { N = sizeof files / sizeof files[0] };
  attnc_ctx *ctx = attnc_ctx_new();
  attnc_spec *specs[N];
  static char names[N][600];
  for (int i = 0; i < N; i++) {
    /* "name p=v ...": the spec with those params */
    char buf[256], *save = NULL;
    snprintf(buf, sizeof buf, "%s", files[i]);
    char *tok = strtok_r(buf, " ", &save);
    char path[300];
    snprintf(path, sizeof path, "specs/%s.lua", tok);
    snprintf(names[i], sizeof names[i], "%s", path);
    attnc_define defs[8];                     /* pointing into buf, used before the next spec */
    int nd = 0;
    while ((tok = strtok_r(NULL, " ", &save)) && nd < 8) {
      char *eq = strchr(tok, '=');
      ck_assert_ptr_nonnull(eq);
      if (!strncmp(tok, "S=", 2)) {             /* the token count, not a param */
        size_t k = strlen(names[i]);
        snprintf(names[i] + k, sizeof names[i] - k, " %s", tok);
        continue;
      }
      *eq = 0;
      defs[nd++] = (attnc_define){ tok, eq + 1 };
    }
    attnc_error err;
    ck_assert_msg(attnc_spec_load_file(ctx, tu_path(path), defs, nd, &specs[i], &err) == ATTNC_OK,
                  "%s: %s", names[i], err.message);
  }
  int failed = check_specs(specs, names, N);
  fprintf(stderr, "test_cuda_host: %d specs' masks, orders and iterators run on the host, %d disagree\n",
          N, failed);
  attnc_ctx_free(ctx);
  ck_assert_msg(failed == 0, "%d of %d specs disagree with ir_eval or the plan (see stderr)", failed, N);
}
END_TEST

/*
** Values of neither q nor k (of b, h, the lengths) are computed in every
** part of the split that reads them: a bound of k by the head (once broke
** NVRTC: the column code read a value only the row code had), a mask of
** the head alone, one of the lengths, a per-head table entry that pairs
** read (computed once a row and handed to the pair code).
*/
START_TEST(shared_values_on_host) {
  static const char *masks[] = {
    "k:ge(h * 2) & q:ge(h + 1) & k:le(q)",
    "h:lt(1) | k:le(q)",
    "k:lt(a.Sk - 7 * (b + 1)) & (q - k):le(a.Sq // 3)",
    "(q - k):le(win[h] * 9) & k:le(q) & k:ge(h * 3)",
  };
  enum { N = sizeof masks / sizeof masks[0] };
  attnc_ctx *ctx = attnc_ctx_new();
  attnc_spec *specs[N];
  static char names[N][600];
  for (int i = 0; i < N; i++) {
    char src[512];
    snprintf(src, sizeof src, "local a = require 'attnc'\nlocal win = a.input('win', 'i32', { 'H' })\n"
             "return a.pattern { mask = a.mask(function(b, h, q, k) return %s end) }", masks[i]);
    attnc_error err;
    ck_assert_msg(attnc_spec_load_string(ctx, "shared.lua", src, NULL, 0, &specs[i], &err) == ATTNC_OK,
                  "%s: %s", masks[i], err.message);
    snprintf(names[i], sizeof names[i], "mask %s", masks[i]);
  }
  int failed = check_specs(specs, names, N);
  attnc_ctx_free(ctx);
  ck_assert_msg(failed == 0, "%d of %d masks disagree (see stderr)", failed, N);
}
END_TEST

/* $ATTNC_FUZZ_HOST random masks (default 8), from seed $ATTNC_FUZZ_SEED (default 777) */
START_TEST(random_masks_on_host) {
  int n = getenv("ATTNC_FUZZ_HOST") ? atoi(getenv("ATTNC_FUZZ_HOST")) : 8;
  if (n < 1) n = 1;
  uint64_t seed = getenv("ATTNC_FUZZ_SEED") ? strtoull(getenv("ATTNC_FUZZ_SEED"), NULL, 10) : 777;
  attnc_ctx *ctx = attnc_ctx_new();
  attnc_spec **specs = calloc((size_t)n, sizeof *specs);
  char (*masks)[TU_MASK_MAX] = calloc((size_t)n, TU_MASK_MAX);
  char (*names)[600] = calloc((size_t)n, 600);
  int m = tu_random_specs(ctx, seed, n, specs, masks);
  for (int i = 0; i < m; i++) snprintf(names[i], 600, "random mask %.500s", masks[i]);
  int failed = check_specs(specs, names, m);
  free(specs);
  free(masks);
  free(names);
  attnc_ctx_free(ctx);
  ck_assert_int_eq(m, n);
  ck_assert_msg(failed == 0, "%d of %d random masks disagree (see stderr)", failed, m);
}
END_TEST

int main(void) {
  Suite *s = suite_create("cuda_host");
  TCase *tc = tcase_create("host");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, specs_on_host);
  tcase_add_test(tc, shared_values_on_host);
  tcase_add_test(tc, random_masks_on_host);
  suite_add_tcase(s, tc);
  return tu_run(s);
}
