/*
** test_cuda.c -- the CUDA backend without a GPU: emission (deterministic,
** every op, every spec), NVRTC compiles for sm_80 and sm_90a, NVRTC errors
** quoting the generated line, the kernel cache (memory, disk, a new process
** at least 20x faster, truncated entries rebuilt, two processes at once, an
** unwritable directory), and the no-driver message.
**
** ATTNC_TEST_SPECS=all compiles every spec in every test that loops over
** specs (default: every spec for both archs in compile_all_specs only).
*/
/* built only when CMake found NVRTC (tests/CMakeLists.txt filters test_cuda*) */
#ifndef ATTNC_HAVE_CUDA
#define ATTNC_HAVE_CUDA 1
#endif
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/testutil.h"
#include "backend/cuda/cuda.h"
#include "runtime/cache.h"
#include "runtime/runtime.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* ------------------------------------------------------ a built pattern */

/*
** A pattern exercising most ops, built with the IR builder (no frontend):
** causal within a window, a doc input compare, Lua // and % on possibly
** negative values, and a softcap score with an ALiBi-like slope input.
*/
static IrPattern *test_pattern(Arena *a, bool score, Diag *d) {
  IrPattern *p = ir_pattern_new(a, "tests/unit/test_cuda.c");
  p->name = "test_ops";
  IrInput doc = { .name = "doc", .dtype = DT_I32, .rank = 2, .dims = { { DIM_B, 1 }, { DIM_SQ, 1 } }, .line = 2 };
  IrInput slope = { .name = "slope", .dtype = DT_F32, .rank = 1, .dims = { { DIM_H, 1 } }, .line = 3 };
  IrInput route = { .name = "route", .dtype = DT_I32, .rank = 2, .dims = { { DIM_SQ, 64 }, { DIM_CONST, 4 } }, .line = 4 };
  ir_add_input(p, &doc);
  ir_add_input(p, &slope);
  ir_add_input(p, &route);
  int b = ir_leaf(p, IR_BATCH, 0, 5), h = ir_leaf(p, IR_HEAD, 0, 5);
  int q = ir_leaf(p, IR_Q, 0, 5), k = ir_leaf(p, IR_K, 0, 5);
  int qk[2] = { q, k };
  int ge = ir_node(p, IR_GE, qk, 2, 0, 6, d);
  int diff = ir_node(p, IR_SUB, qk, 2, 0, 7, d);
  int w = ir_const_int(p, 300, 7);
  int dw[2] = { diff, w };
  int le = ir_node(p, IR_LE, dw, 2, 0, 7, d);
  int c7 = ir_const_int(p, -7, 8);
  int dm[2] = { diff, c7 };
  int fdv = ir_node(p, IR_IDIV, dm, 2, 0, 8, d);             /* (q-k) // -7 */
  int fmd = ir_node(p, IR_MOD, dm, 2, 0, 8, d);              /* (q-k) % -7 */
  int fm[2] = { fdv, fmd };
  int ne = ir_node(p, IR_NE, fm, 2, 0, 8, d);
  int bq[2] = { b, q }, bk[2] = { b, k };
  int dq = ir_node(p, IR_LOAD, bq, 2, 0, 9, d), dk = ir_node(p, IR_LOAD, bk, 2, 0, 9, d);
  int dd[2] = { dq, dk };
  int same = ir_node(p, IR_EQ, dd, 2, 0, 9, d);
  int c64 = ir_const_int(p, 64, 10);
  int qb[2] = { q, c64 }, kb[2] = { k, c64 };
  int qblk = ir_node(p, IR_IDIV, qb, 2, 0, 10, d), kblk = ir_node(p, IR_IDIV, kb, 2, 0, 10, d);
  int ca[2] = { qblk, kblk };
  int routed = ir_node(p, IR_CONTAINS, ca, 2, 2, 10, d);
  int mul[2] = { q, k };
  int big = ir_node(p, IR_MUL, mul, 2, 0, 11, d);           /* needs i64 */
  int c0 = ir_const_int(p, 0, 11);
  int bg[2] = { big, c0 };
  int pos = ir_node(p, IR_GE, bg, 2, 0, 11, d);
  int t1[2] = { ge, le }, t2[2], t3[2], t4[2], t5[2];
  int m1 = ir_node(p, IR_AND, t1, 2, 0, 12, d);
  t2[0] = same; t2[1] = routed;
  int m2 = ir_node(p, IR_OR, t2, 2, 0, 12, d);
  t3[0] = m1; t3[1] = m2;
  int m3 = ir_node(p, IR_AND, t3, 2, 0, 12, d);
  t4[0] = ne; t4[1] = pos;
  int m4 = ir_node(p, IR_OR, t4, 2, 0, 12, d);
  t5[0] = m3; t5[1] = m4;
  p->mask = ir_node(p, IR_AND, t5, 2, 0, 12, d);
  if (score) {
    int s = ir_leaf(p, IR_SCORE, 0, 14);
    int cap = ir_const_float(p, 30.0, 14);
    int x[2] = { s, cap };
    int dv = ir_node(p, IR_DIV, x, 2, 0, 14, d);
    int th = ir_node(p, IR_TANH, &dv, 1, 0, 14, d);
    int y[2] = { th, cap };
    int capped = ir_node(p, IR_MUL, y, 2, 0, 14, d);
    int sl = ir_node(p, IR_LOAD, &h, 1, 1, 15, d);
    int kq[2] = { k, q };
    int dist = ir_node(p, IR_SUB, kq, 2, 0, 15, d);
    int sd[2] = { sl, dist };
    int bias = ir_node(p, IR_MUL, sd, 2, 0, 15, d);
    int z[2] = { capped, bias };
    p->score = ir_node(p, IR_ADD, z, 2, 0, 15, d);
  }
  return p;
}

START_TEST(emit_is_deterministic) {
  Arena a;
  arena_init(&a);
  Diag d = { 0 };
  IrPattern *p = test_pattern(&a, true, &d);
  ck_assert_msg(diag_ok(&d), "%s", d.msg);
  CudaConfig cfg = { .dtype = DT_BF16, .head_dim = 128, .arch = 90 };
  ck_assert_int_eq(cuda_config_finish(p, &cfg, &d), ATTNC_OK);
  char *s1, *s2;
  ck_assert_int_eq(cuda_emit(p, &cfg, &a, &s1, &d), ATTNC_OK);
  ck_assert_int_eq(cuda_emit(p, &cfg, &a, &s2, &d), ATTNC_OK);
  ck_assert_str_eq(s1, s2);
  /* floor semantics where C's differ, i64 where int could overflow, bounded loads */
  ck_assert_ptr_nonnull(strstr(s1, "attnc_floordiv("));
  ck_assert_ptr_nonnull(strstr(s1, "attnc_floormod("));
  ck_assert_ptr_nonnull(strstr(s1, "const i64 v"));
  ck_assert_ptr_nonnull(strstr(s1, "input2_route_contains(p"));
  ck_assert_ptr_nonnull(strstr(s1, "// tests/unit/test_cuda.c:9"));
  ck_assert_ptr_nonnull(strstr(s1, "fast_tanh("));   /* tanh.approx.f32 */
  arena_free(&a);
}
END_TEST

/* ------------------------------------------------------------- NVRTC */

START_TEST(compile_ops_pattern) {
  Arena a;
  arena_init(&a);
  Diag d = { 0 };
  IrPattern *p = test_pattern(&a, true, &d);
  static const int dims[] = { 32, 64, 96, 128, 256 };
  for (int i = 0; i < 5; i++) {
    CudaConfig cfg = { .dtype = i % 2 ? DT_F16 : DT_BF16, .head_dim = dims[i], .arch = i % 2 ? 80 : 90 };
    ck_assert_int_eq(cuda_config_finish(p, &cfg, &d), ATTNC_OK);
    char *src;
    ck_assert_msg(cuda_emit(p, &cfg, &a, &src, &d) == ATTNC_OK, "%s", d.msg);
    CudaImage img;
    attnc_status st = cuda_compile(src, cfg.arch, CUDA_IMAGE_CUBIN, &img, &d);
    ck_assert_msg(st == ATTNC_OK, "D=%d: %s", dims[i], d.msg);
    ck_assert_uint_gt(img.size, 1000);
    ck_assert_mem_eq(img.data, "\177ELF", 4);
    cuda_image_free(&img);
  }
  arena_free(&a);
}
END_TEST

START_TEST(compile_ptx) {
  /* sm_80: mma.sync with ldmatrix; sm_90a: wgmma from 128-byte-swizzled tiles */
  static const struct { int arch; const char *target, *want[3]; } archs[] = {
    { 80, ".target sm_80",
      { "mma.sync.aligned.m16n8k16", "ldmatrix.sync.aligned.m8n8.x4.trans", "cp.async.cg.shared.global" } },
    { 90, ".target sm_90a",
      { "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16", "mbarrier.try_wait.parity.shared::cta.b64",
        "cp.async.bulk.tensor" } },
    /* Blackwell has no wgmma: the mma.sync kernel */
    { 100, ".target sm_100a",
      { "mma.sync.aligned.m16n8k16", "ldmatrix.sync.aligned.m8n8.x4.trans", "cp.async.cg.shared.global" } },
  };
  for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++) {
    Arena a;
    arena_init(&a);
    Diag d = { 0 };
    IrPattern *p = test_pattern(&a, false, &d);
    CudaConfig cfg = { .dtype = DT_F16, .head_dim = 64, .arch = archs[i].arch, .block_m = 128, .block_n = 64 };
    ck_assert_int_eq(cuda_config_finish(p, &cfg, &d), ATTNC_OK);
    ck_assert_int_eq(cfg.wgmma, archs[i].arch == 90);
    char *src;
    ck_assert_int_eq(cuda_emit(p, &cfg, &a, &src, &d), ATTNC_OK);
    CudaImage img;
    ck_assert_msg(cuda_compile(src, archs[i].arch, CUDA_IMAGE_PTX, &img, &d) == ATTNC_OK, "%s", d.msg);
    ck_assert_ptr_nonnull(strstr(img.data, archs[i].target));
    for (int w = 0; w < 3; w++)
      ck_assert_msg(strstr(img.data, archs[i].want[w]), "sm_%d PTX lacks %s", archs[i].arch, archs[i].want[w]);
    ck_assert_ptr_nonnull(strstr(img.data, ".entry " CUDA_KERNEL_NAME));
    cuda_image_free(&img);
    arena_free(&a);
  }
}
END_TEST

/* warp specialisation: on by default where kv tiles are consecutive tokens
   (the producer may use TMA) and at 192-row tiles; there a producer
   warpgroup with 32 registers, three compute warpgroups with 160 (512
   threads, one CTA an SM: 65536 = 128 * 32 + 384 * 160), mbarriers instead
   of CTA barriers; for kv tiles of token boxes only at D = 128 (their TMA
   map has 5 dims; cp.async alone loses), else thread 0 loads them by TMA */
START_TEST(compile_ws) {
  Arena a;
  arena_init(&a);
  Diag d = { 0 };
  IrPattern *p = test_pattern(&a, false, &d);
  unsetenv("ATTNC_CUDA_WS");
  CudaConfig boxes = { .dtype = DT_BF16, .head_dim = 64, .arch = 90, .block_m = 64, .block_n = 64,
                       .qord = { .rank = 2, .n = { 16, 16 }, .box = { 8, 8 }, .dil = { 1, 1 } },
                       .kord = { .rank = 2, .n = { 16, 16 }, .box = { 8, 8 }, .dil = { 1, 1 } } };
  ck_assert_int_eq(cuda_config_finish(p, &boxes, &d), ATTNC_OK);
  ck_assert(boxes.overlap && !boxes.ws && cuda_kv_tma(&boxes) && cuda_q_tma(&boxes));   /* from thread 0 */
  CudaConfig dq = boxes;                    /* q tiles of a dilated order are no box: Q by cp.async */
  dq.qord.dil[1] = 2;
  ck_assert(cuda_kv_tma(&dq) && !cuda_q_tma(&dq));
  CudaConfig dk = dq;                       /* kv tiles: TMA takes a 1-D dilated order, not a grid's */
  dk.kord.dil[1] = 2;
  ck_assert(!cuda_kv_tma(&dk));
  dk.kord = (CudaOrder){ .rank = 1, .box = { 64 }, .dil = { 4 } };
  ck_assert(cuda_kv_tma(&dk) && !cuda_q_tma(&dk));
  ck_assert_int_eq(cuda_threads(&boxes), 128);
  {  /* at D = 128 a producer loads the 8 x 8 token boxes with 5-d TMA, at
        D = 64 thread 0 of the kernel without one; neither serialises the wgmmas */
    CudaConfig g = boxes;
    g.head_dim = g.head_dim_v = 128;
    ck_assert_int_eq(cuda_config_finish(p, &g, &d), ATTNC_OK);
    ck_assert(g.ws && cuda_kv_tma(&g));
    const CudaConfig *gs[] = { &boxes, &g };
    for (int i = 0; i < 2; i++) {
      char *src;
      CudaImage img;
      ck_assert_int_eq(cuda_emit(p, gs[i], &a, &src, &d), ATTNC_OK);
      ck_assert_msg(cuda_compile(src, 90, CUDA_IMAGE_PTX, &img, &d) == ATTNC_OK, "%s", d.msg);
      ck_assert(strstr(img.data, "cp.async.bulk.tensor.5d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"));
      ck_assert(strstr(img.data, "mbarrier.try_wait.parity.shared::cta.b64"));
      cuda_image_free(&img);
      ck_assert_msg(cuda_compile(src, 90, CUDA_IMAGE_CUBIN, &img, &d) == ATTNC_OK, "%s", d.msg);
      ck_assert_msg(!img.wgmma_serial, "ptxas serialised the wgmmas of the grid kernel at D=%d", gs[i]->head_dim);
      cuda_image_free(&img);
    }
  }
  CudaConfig c128 = { .dtype = DT_BF16, .head_dim = 128, .arch = 90, .block_m = 128, .block_n = 128 };
  ck_assert_int_eq(cuda_config_finish(p, &c128, &d), ATTNC_OK);
  ck_assert(c128.ws && cuda_kv_tma(&c128) && cuda_q_tma(&c128));
  ck_assert_int_eq(cuda_threads(&c128), 384);
  CudaConfig cfg = { .dtype = DT_BF16, .head_dim = 64, .arch = 90, .block_m = 192, .block_n = 128 };
  ck_assert_int_eq(cuda_config_finish(p, &cfg, &d), ATTNC_OK);
  ck_assert(cfg.ws);
  ck_assert_int_eq(cuda_threads(&cfg), 512);
  const CudaConfig *cfgs[] = { &c128, &cfg };
  static const char *const want[2][7] = {
    { ".maxntid 384, 1, 1", "setmaxnreg.dec.sync.aligned.u32 40", "setmaxnreg.inc.sync.aligned.u32 232",
      "mbarrier.try_wait.parity.shared::cta.b64", "mbarrier.arrive.expect_tx.shared::cta.b64",
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes",
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16" },
    { ".maxntid 512, 1, 1", "setmaxnreg.dec.sync.aligned.u32 32", "setmaxnreg.inc.sync.aligned.u32 160",
      "mbarrier.try_wait.parity.shared::cta.b64", "mbarrier.arrive.shared::cta.b64",
      "cp.async.bulk.tensor.4d", "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16" },
  };
  for (int i = 0; i < 2; i++) {
    char *src;
    ck_assert_int_eq(cuda_emit(p, cfgs[i], &a, &src, &d), ATTNC_OK);
    CudaImage img;
    ck_assert_msg(cuda_compile(src, 90, CUDA_IMAGE_PTX, &img, &d) == ATTNC_OK, "%s", d.msg);
    for (size_t w = 0; w < 7; w++)
      ck_assert_msg(strstr(img.data, want[i][w]), "sm_90a PTX lacks %s", want[i][w]);
    /* TMA alone loads the tiles: the copies are the copy variant's */
    ck_assert_msg(!strstr(img.data, "cp.async.cg.shared.global"), "the TMA kernel copies with cp.async");
    cuda_image_free(&img);
    CudaConfig copy = *cfgs[i];
    copy.no_tma = true;
    ck_assert(!cuda_kv_tma(&copy) && !cuda_q_tma(&copy));
    char *csrc;
    ck_assert_int_eq(cuda_emit(p, &copy, &a, &csrc, &d), ATTNC_OK);
    ck_assert_msg(cuda_compile(csrc, 90, CUDA_IMAGE_PTX, &img, &d) == ATTNC_OK, "%s", d.msg);
    ck_assert(strstr(img.data, "cp.async.cg.shared.global") && !strstr(img.data, "cp.async.bulk.tensor"));
    cuda_image_free(&img);
    ck_assert_msg(cuda_compile(src, 90, CUDA_IMAGE_CUBIN, &img, &d) == ATTNC_OK, "%s", d.msg);
    ck_assert_msg(!img.wgmma_serial, "ptxas serialised the wgmmas of the %d-row kernel", cfgs[i]->block_m);
    cuda_image_free(&img);
    /* the check can fail: S = Q K^T issued on some steps only (its accumulators
       then written by no wgmma between issue and wait on the others) */
    const char *call = "    issue_qk(s, sQ, sK + sk * kStageK, warp);\n";
    char *at = strstr(src, call);
    ck_assert_ptr_nonnull(at);
    size_t pre = (size_t)(at - src);
    char *bad = malloc(strlen(src) + 64);
    memcpy(bad, src, pre);
    sprintf(bad + pre, "    if (cur.tile != 5) issue_qk(s, sQ, sK + sk * kStageK, warp);\n%s", at + strlen(call));
    ck_assert_msg(cuda_compile(bad, 90, CUDA_IMAGE_CUBIN, &img, &d) == ATTNC_OK, "%s", d.msg);
    ck_assert_msg(img.wgmma_serial, "a conditional wgmma issue went unnoticed");
    cuda_image_free(&img);
    free(bad);
  }
  setenv("ATTNC_CUDA_WS", "0", 1);
  CudaConfig off = { .dtype = DT_BF16, .head_dim = 64, .arch = 90, .block_m = 192, .block_n = 128 };
  ck_assert_int_eq(cuda_config_finish(p, &off, &d), ATTNC_OK);
  ck_assert(off.overlap && !off.ws && cuda_kv_tma(&off));
  setenv("ATTNC_CUDA_WS", "1", 1);
  ck_assert_int_eq(cuda_config_finish(p, &boxes, &d), ATTNC_OK);
  ck_assert(boxes.ws && cuda_kv_tma(&boxes));
  ck_assert_int_eq(cuda_threads(&boxes), 256);
  unsetenv("ATTNC_CUDA_WS");
  arena_free(&a);
}
END_TEST

/* the TMA descriptor geometry cuda_launch encodes (driver.c) */
START_TEST(kv_map_layout) {
  uint64_t dims[5], str[4];
  unsigned box[5];
  CudaOrder tok = { .rank = 1, .box = { 128 }, .dil = { 1 } };
  /* BHSD 2,4,1000,128: tokens 256 bytes apart, heads 256000, batches 1024000 */
  int64_t sh[4] = { 2, 4, 1000, 128 }, bhsd[4] = { 4 * 1000 * 128, 1000 * 128, 128, 1 };
  ck_assert_int_eq(cuda_tma_map_layout(&tok, sh, bhsd, 4096, dims, str, box), 4);
  ck_assert(dims[0] == 128 && dims[1] == 1000 && dims[2] == 4 && dims[3] == 2);
  ck_assert(str[0] == 256 && str[1] == 256000 && str[2] == 1024000);
  ck_assert(box[0] == 64 && box[1] == 128 && box[2] == 1 && box[3] == 1);
  /* BSHD: tokens H*D apart, heads D */
  int64_t bshd[4] = { 1000 * 4 * 128, 128, 4 * 128, 1 };
  ck_assert_int_eq(cuda_tma_map_layout(&tok, sh, bshd, 4096, dims, str, box), 4);
  ck_assert(str[0] == 1024 && str[1] == 256 && str[2] == 1024000);
  /* B = 1 and one kv head: any strides there, dense ones are used */
  int64_t sh1[4] = { 1, 1, 77, 64 }, odd[4] = { 0, 3, 64, 1 };
  ck_assert_int_eq(cuda_tma_map_layout(&tok, sh1, odd, 16, dims, str, box), 4);
  ck_assert(str[0] == 128 && str[1] == 128 * 77 && str[2] == 128 * 77);
  /* no TMA: unaligned data, a token stride not a multiple of 16 bytes, D strided, no tokens */
  ck_assert_int_eq(cuda_tma_map_layout(&tok, sh, bhsd, 4100, dims, str, box), 0);
  int64_t s4[4] = { 4 * 1000 * 132, 1000 * 132, 132, 1 };   /* tokens 264 bytes apart */
  ck_assert_int_eq(cuda_tma_map_layout(&tok, sh, s4, 4096, dims, str, box), 0);
  int64_t dstr[4] = { 4 * 1000 * 256, 1000 * 256, 256, 2 };
  ck_assert_int_eq(cuda_tma_map_layout(&tok, sh, dstr, 4096, dims, str, box), 0);
  int64_t sh0[4] = { 2, 4, 0, 128 };
  ck_assert_int_eq(cuda_tma_map_layout(&tok, sh0, bhsd, 4096, dims, str, box), 0);
  /* dilation 4 on 1000 tokens: columns, 4 residues a token apart, 250 rows 4
     tokens apart (boxes of one residue by 128 rows), heads, batches; not
     where 4 does not divide the tokens */
  CudaOrder dil = { .rank = 1, .box = { 128 }, .dil = { 4 } };
  ck_assert_int_eq(cuda_tma_map_layout(&dil, sh, bhsd, 4096, dims, str, box), 5);
  ck_assert(dims[0] == 128 && dims[1] == 4 && dims[2] == 250 && dims[3] == 4 && dims[4] == 2);
  ck_assert(str[0] == 256 && str[1] == 1024 && str[2] == 256000 && str[3] == 1024000);
  ck_assert(box[0] == 64 && box[1] == 1 && box[2] == 128 && box[3] == 1 && box[4] == 1);
  int64_t sh999[4] = { 2, 4, 999, 128 };
  ck_assert_int_eq(cuda_tma_map_layout(&dil, sh999, bhsd, 4096, dims, str, box), 0);
  /* a 2-D grid of 25 x 40 tokens in boxes of 8 x 16: columns, x, y, heads, batches */
  CudaOrder g2 = { .rank = 2, .n = { 25, 40 }, .box = { 8, 16 }, .dil = { 1, 1 } };
  ck_assert_int_eq(cuda_tma_map_layout(&g2, sh, bhsd, 4096, dims, str, box), 5);
  ck_assert(dims[1] == 40 && dims[2] == 25 && dims[3] == 4 && dims[4] == 2);
  ck_assert(str[0] == 256 && str[1] == 256 * 40 && str[2] == 256000 && str[3] == 1024000);
  ck_assert(box[1] == 16 && box[2] == 8 && box[3] == 1 && box[4] == 1);
  /* not the tokens (24 x 40 of 1000), or dilated: no TMA */
  CudaOrder g2s = { .rank = 2, .n = { 24, 40 }, .box = { 8, 16 }, .dil = { 1, 1 } };
  ck_assert_int_eq(cuda_tma_map_layout(&g2s, sh, bhsd, 4096, dims, str, box), 0);
  CudaOrder g2d = { .rank = 2, .n = { 25, 40 }, .box = { 8, 16 }, .dil = { 1, 2 } };
  ck_assert_int_eq(cuda_tma_map_layout(&g2d, sh, bhsd, 4096, dims, str, box), 0);
  /* a 3-D grid 10 x 10 x 10: heads and batches one dim, which BHSD allows and BSHD not */
  CudaOrder g3 = { .rank = 3, .n = { 10, 10, 10 }, .box = { 4, 4, 4 }, .dil = { 1, 1, 1 } };
  ck_assert_int_eq(cuda_tma_map_layout(&g3, sh, bhsd, 4096, dims, str, box), 5);
  ck_assert(dims[1] == 10 && dims[2] == 10 && dims[3] == 10 && dims[4] == 8);
  ck_assert(str[0] == 256 && str[1] == 2560 && str[2] == 25600 && str[3] == 256000);
  ck_assert_int_eq(cuda_tma_map_layout(&g3, sh, bshd, 4096, dims, str, box), 0);
  int64_t sh1b[4] = { 1, 4, 1000, 128 };    /* one batch: BSHD's heads alone */
  ck_assert_int_eq(cuda_tma_map_layout(&g3, sh1b, bshd, 4096, dims, str, box), 5);
  ck_assert(dims[4] == 4 && str[3] == 256);
}
END_TEST

START_TEST(nvrtc_error_quotes_line) {
  Diag d = { 0 };
  const char *src = "// line 1\n__global__ void f() {\n  int x = undefined_thing + 1;\n}\n";
  CudaImage img;
  attnc_status st = cuda_compile(src, 80, CUDA_IMAGE_CUBIN, &img, &d);
  ck_assert_int_eq(st, ATTNC_ERR_COMPILE);
  ck_assert_msg(strstr(d.msg, "generated CUDA line 3") != NULL, "%s", d.msg);
  ck_assert_msg(strstr(d.msg, "int x = undefined_thing + 1;") != NULL, "%s", d.msg);
  ck_assert_msg(strstr(d.msg, "compiler bug") != NULL, "%s", d.msg);
}
END_TEST

START_TEST(arch_names) {
  char b[16];
  int arch;
  ck_assert_str_eq(cuda_arch_name(90, b), "sm_90a");
  ck_assert_str_eq(cuda_arch_name(80, b), "sm_80");
  ck_assert(cuda_arch_parse("sm_90a", &arch) && arch == 90);
  ck_assert(cuda_arch_parse("sm_80", &arch) && arch == 80);
  ck_assert(cuda_arch_parse("8.6", &arch) && arch == 86);
  ck_assert(!cuda_arch_parse("sm_", &arch));
  ck_assert(!cuda_arch_parse("x86", &arch));
  ck_assert(cuda_arch_parse("sm_70", &arch) && arch == 70 && !cuda_arch_supported(arch));
  ck_assert(cuda_arch_supported(80) && cuda_arch_supported(100));
  /* an --arch: parsed and supported, else a message saying which */
  Diag d = { 0 };
  ck_assert_int_eq(cuda_arch_from("sm_90a", &arch, &d), ATTNC_OK);
  ck_assert_int_eq(arch, 90);
  ck_assert_int_eq(cuda_arch_from("sm_75", &arch, &d), ATTNC_ERR_ARG);
  ck_assert_msg(strstr(d.msg, "needs sm_80 or newer (--arch sm_75 is sm_75)"), "%s", d.msg);
  Diag d2 = { 0 };
  ck_assert_int_eq(cuda_arch_from("x86", &arch, &d2), ATTNC_ERR_ARG);
  ck_assert_msg(strstr(d2.msg, "unknown CUDA arch 'x86'"), "%s", d2.msg);
}
END_TEST

START_TEST(half_conversions) {
  float vals[] = { 0.0f, 1.0f, -2.5f, 65504.0f, 1e-7f, 3.14159f, -0.000061f };
  for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
    float h = cuda_f16_to_f32(cuda_f32_to_f16(vals[i]));
    float bf = cuda_bf16_to_f32(cuda_f32_to_bf16(vals[i]));
    ck_assert_msg(fabsf(h - vals[i]) <= fabsf(vals[i]) * 1e-3f + 6e-8f, "f16 %g -> %g", vals[i], h);
    ck_assert_msg(fabsf(bf - vals[i]) <= fabsf(vals[i]) * 8e-3f, "bf16 %g -> %g", vals[i], bf);
  }
  ck_assert_uint_eq(cuda_f32_to_f16(1.0f), 0x3c00);
  ck_assert_uint_eq(cuda_f32_to_bf16(1.0f), 0x3f80);
  ck_assert_uint_eq(cuda_f32_to_f16(1e6f), 0x7c00);
}
END_TEST

/* ---------------------------------------------------------- every spec */

typedef struct Job {
  char path[512];
  attnc_spec *spec;
  int arch;
  IrDtype dt;
  int hd;
  bool use_plan;
  bool no_tma;         /* the copy variant */
  attnc_status st;
  char msg[1100];
  double ms;
  size_t src_len;
  bool split;          /* partial tiles run mask_row/col/pair */
} Job;

static void run_job(Job *j) {
  Arena a;
  arena_init(&a);
  Diag d = { 0 };
  CudaConfig cfg = { .dtype = j->dt, .head_dim = j->hd, .arch = j->arch, .no_tma = j->no_tma };
  char *src = NULL;
  j->st = cuda_build_source(j->spec->pat, &cfg, j->use_plan, &a, &src, &d);
  if (!j->st) {
    j->src_len = strlen(src);
    j->split = strstr(src, "mask_pair0(p,") != NULL;
    CudaImage img;
    j->st = cuda_compile(src, j->arch, CUDA_IMAGE_CUBIN, &img, &d);
    if (!j->st) {
      j->ms = img.compile_ms;
      if (img.wgmma_serial) {   /* correct, but a slow kernel: an emitter bug */
        j->st = ATTNC_ERR_INTERNAL;
        snprintf(d.msg, sizeof d.msg, "ptxas serialised the wgmmas (accumulators touched "
                 "between issue and wait)");
      }
      cuda_image_free(&img);
    }
  }
  if (j->st) snprintf(j->msg, sizeof j->msg, "%s", d.msg);
  arena_free(&a);
}

static void job_fn(void *jobs, int i) { run_job(&((Job *)jobs)[i]); }

/* the .lua files of specs/, sorted, loaded through the API; returns the count */
static int load_specs(attnc_ctx *ctx, char paths[][512], attnc_spec **specs, int max) {
  DIR *dir = opendir(tu_path("specs"));
  if (!dir) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(dir)) && n < max) {
    size_t l = strlen(e->d_name);
    if (l > 4 && strcmp(e->d_name + l - 4, ".lua") == 0)
      snprintf(paths[n++], 512, "specs/%s", e->d_name);
  }
  closedir(dir);
  qsort(paths, (size_t)n, 512, (int (*)(const void *, const void *))strcmp);
  int m = 0;
  for (int i = 0; i < n; i++) {
    attnc_error err;
    attnc_spec *s = NULL;
    if (attnc_spec_load_file(ctx, tu_path(paths[i]), NULL, 0, &s, &err) != ATTNC_OK) {
      fprintf(stderr, "test_cuda: %s does not load: %s\n", paths[i], err.message);
      ck_abort_msg("%s does not load: %s", paths[i], err.message);
    }
    if (m != i) memcpy(paths[m], paths[i], 512);
    specs[m++] = s;
  }
  return m;
}

/* a head dim the spec allows, preferring want */
static int spec_head_dim(const IrPattern *p, int want) {
  if (p->nhead_dims == 0) return want;
  for (int i = 0; i < p->nhead_dims; i++)
    if (p->head_dims[i] == want) return want;
  return p->head_dims[0];
}

static IrDtype spec_dtype(const IrPattern *p, IrDtype want) {
  if (!p->dtypes || (p->dtypes & (1u << want))) return want;
  return want == DT_F16 ? DT_BF16 : DT_F16;
}

/* every spec x {sm_80, sm_90a, sm_90a's copy variant at the other head
   dim}: emitted with its plan and compiled to a cubin */
START_TEST(compile_all_specs) {
  attnc_ctx *ctx = attnc_ctx_new();
  static char paths[256][512];
  static attnc_spec *specs[256];
  int n = load_specs(ctx, paths, specs, 256);
  if (n == 0) {
    fprintf(stderr, "test_cuda: no specs in specs/ yet; nothing to compile\n");
    attnc_ctx_free(ctx);
    return;
  }
  Job *jobs = calloc((size_t)n * 3, sizeof *jobs);
  for (int i = 0; i < n; i++)
    for (int a = 0; a < 3; a++) {
      Job *j = &jobs[i * 3 + a];
      snprintf(j->path, sizeof j->path, "%s", paths[i]);
      j->spec = specs[i];
      j->arch = a ? 90 : 80;
      j->dt = spec_dtype(specs[i]->pat, (i + a) % 2 ? DT_F16 : DT_BF16);
      j->hd = spec_head_dim(specs[i]->pat, (i + (a == 2)) % 2 ? 64 : 128);
      j->use_plan = true;
      j->no_tma = a == 2;
    }
  double t0 = now_ms();
  tu_parallel(n * 3, job_fn, jobs);
  double t1 = now_ms();
  int failed = 0;
  double worst = 0;
  for (int i = 0; i < n * 3; i++) {
    Job *j = &jobs[i];
    char an[16];
    if (j->st) {
      fprintf(stderr, "test_cuda: %s %s%s %s D=%d: %s\n", j->path, cuda_arch_name(j->arch, an),
              j->no_tma ? " (copy variant)" : "", ir_dtype_name(j->dt), j->hd, j->msg);
      failed++;
    } else if (j->ms > worst)
      worst = j->ms;
  }
  fprintf(stderr, "test_cuda: %d specs x 3 (sm_80, sm_90a, its copy variant) compiled in %.0f ms on %d threads "
          "(slowest NVRTC %.0f ms)\n", n, t1 - t0, tu_nthreads(), worst);
  ck_assert_msg(failed == 0, "%d of %d compiles failed (see stderr)", failed, n * 3);
  for (int i = 0; i < n; i++) attnc_spec_free(specs[i]);
  free(jobs);
  attnc_ctx_free(ctx);
}
END_TEST

/*
** Random masks (tu_gen_mask), half of them on a grid, emitted for sm_90a
** with the plan (partial tiles run the mask split into row, column and
** pair parts) and compiled: whatever DAG the tracer makes, the emitted
** code must compile. $ATTNC_FUZZ_NVRTC sets how many (default 8).
*/
START_TEST(fuzz_masks_compile) {
  int n = getenv("ATTNC_FUZZ_NVRTC") ? atoi(getenv("ATTNC_FUZZ_NVRTC")) : 8;
  if (n < 1) n = 1;
  attnc_ctx *ctx = attnc_ctx_new();
  Job *jobs = calloc((size_t)n, sizeof *jobs);
  attnc_spec **specs = calloc((size_t)n, sizeof *specs);
  char (*masks)[TU_MASK_MAX] = calloc((size_t)n, TU_MASK_MAX);
  int m = tu_random_specs(ctx, 4242, n, specs, masks);
  for (int i = 0; i < m; i++) {
    Job *j = &jobs[i];
    snprintf(j->path, sizeof j->path, "%.500s", masks[i]);
    j->spec = specs[i];
    j->arch = 90;
    j->dt = i % 2 ? DT_BF16 : DT_F16;
    j->hd = i % 3 == 2 ? 128 : 64;
    j->use_plan = true;
  }
  tu_parallel(m, job_fn, jobs);
  int failed = 0, split = 0;
  for (int i = 0; i < m; i++) {
    if (jobs[i].st) {
      fprintf(stderr, "test_cuda: fuzz mask %s: %s\n", jobs[i].path, jobs[i].msg);
      failed++;
    }
    split += jobs[i].split;
    attnc_spec_free(jobs[i].spec);
  }
  fprintf(stderr, "test_cuda: %d random masks compiled for sm_90a, %d with the split mask\n", m - failed, split);
  ck_assert_int_eq(m, n);
  ck_assert_int_ge(split, m / 2);
  free(specs);
  free(masks);
  ck_assert_msg(failed == 0, "%d of %d random masks did not compile (see stderr)", failed, m);
  free(jobs);
  attnc_ctx_free(ctx);
}
END_TEST

/* emit twice from a fresh load: byte-identical, with and without the plan */
START_TEST(specs_emit_deterministic) {
  attnc_ctx *ctx = attnc_ctx_new();
  static char paths[256][512];
  static attnc_spec *specs[256];
  int n = load_specs(ctx, paths, specs, 256);
  for (int i = 0; i < n; i++)
    for (int plan = 0; plan < 2; plan++) {
      Arena a;
      arena_init(&a);
      Diag d = { 0 };
      char *s1 = NULL, *s2 = NULL;
      CudaConfig c1 = { .dtype = spec_dtype(specs[i]->pat, DT_BF16), .head_dim = spec_head_dim(specs[i]->pat, 64), .arch = 90 };
      CudaConfig c2 = c1;
      attnc_status st = cuda_build_source(specs[i]->pat, &c1, plan, &a, &s1, &d);
      ck_assert_msg(st == ATTNC_OK, "%s (plan %d): %s", paths[i], plan, d.msg);
      attnc_spec *again = NULL;
      attnc_error err;
      ck_assert_int_eq(attnc_spec_load_file(ctx, tu_path(paths[i]), NULL, 0, &again, &err), ATTNC_OK);
      st = cuda_build_source(again->pat, &c2, plan, &a, &s2, &d);
      ck_assert_msg(st == ATTNC_OK, "%s: %s", paths[i], d.msg);
      ck_assert_msg(strcmp(s1, s2) == 0, "%s: two emissions differ", paths[i]);
      attnc_spec_free(again);
      arena_free(&a);
    }
  for (int i = 0; i < n; i++) attnc_spec_free(specs[i]);
  attnc_ctx_free(ctx);
}
END_TEST

/* the sm_90a bf16 kernel source of a spec at its default params, in a */
static char *spec_kernel(attnc_ctx *ctx, const char *spec, int head_dim, Arena *a) {
  attnc_spec *s;
  attnc_error err;
  ck_assert_msg(attnc_spec_load_file(ctx, tu_path(spec), NULL, 0, &s, &err) == ATTNC_OK, "%s: %s", spec,
                err.message);
  Diag d = { 0 };
  CudaConfig cfg = { .dtype = DT_BF16, .head_dim = head_dim, .arch = 90 };
  char *src;
  ck_assert_msg(cuda_build_source(s->pat, &cfg, true, a, &src, &d) == ATTNC_OK, "%s: %s", spec, d.msg);
  attnc_spec_free(s);
  return src;
}

/* the score split (emit.c): s plus terms of q, of k and c * (k - q) is one
   FMA an element with the row's part added to the LSE; other scores keep
   pattern_score an element */
/* a two-argument IR node at line 20 */
static int bin(IrPattern *p, IrOp op, int x, int y, Diag *d) {
  int xy[2] = { x, y };
  return ir_node(p, op, xy, 2, 0, 20, d);
}

/* the sm_90a kernel at D = 128 of a pattern built by hand */
static const char *score_kernel(IrPattern *p, Arena *a, Diag *d) {
  ck_assert_msg(diag_ok(d), "%s", d->msg);
  CudaConfig cfg = { .dtype = DT_BF16, .head_dim = 128, .arch = 90 };
  ck_assert_int_eq(cuda_config_finish(p, &cfg, d), ATTNC_OK);
  char *src;
  ck_assert_int_eq(cuda_emit(p, &cfg, a, &src, d), ATTNC_OK);
  return src;
}

START_TEST(score_split_terms) {
  static const struct { const char *spec; bool split, col; } want[] = {
    { "specs/alibi.lua", true, false },
    { "tests/gpu/specs/score_terms.lua", true, true },
    { "tests/gpu/specs/temperature.lua", true, false },    /* s / g(h): the FMA's factor */
    { "specs/logit_scaling.lua", true, false },            /* s * g(q): a factor per row */
    { "specs/softcap.lua", false, false },           /* s inside tanh */
    { "specs/relative_bias.lua", false, false },     /* a table of the pair */
  };
  attnc_ctx *ctx = attnc_ctx_new();
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    Arena a;
    arena_init(&a);
    const char *src = spec_kernel(ctx, want[i].spec, 64, &a);
    bool split = strstr(src, "s[mi][ni][e] = fmaf(s[mi][ni][e], sscale[mi][0], col);") != NULL;
    ck_assert_msg(split == want[i].split, "%s: split %d", want[i].spec, split);
    ck_assert_msg((strstr(src, "= pattern_score(p, s[mi][ni][e] * scale") != NULL) == !want[i].split,
                  "%s: pattern_score an element", want[i].spec);
    ck_assert_msg((strstr(src, "col += score_col(p, b, h, kv_token(") != NULL) == want[i].col,
                  "%s: column terms", want[i].spec);
    ck_assert_msg((strstr(src, "return score_row(p, b, h, q, seq_q, seq_k)") != NULL) == want[i].split,
                  "%s: score_lse", want[i].spec);
    arena_free(&a);
  }
  attnc_ctx_free(ctx);
  /* s times a constant (a temperature) plus a distance term splits, with
     the constant in the FMA's factor; s times a value of k does not */
  for (int byk = 0; byk < 2; byk++) {
    Arena a;
    arena_init(&a);
    Diag d = { 0 };
    IrPattern *p = test_pattern(&a, true, &d);
    ck_assert_msg(diag_ok(&d), "%s", d.msg);
    int sc = ir_leaf(p, IR_SCORE, 0, 20), q = ir_leaf(p, IR_Q, 0, 20), k = ir_leaf(p, IR_K, 0, 20);
    int g = byk ? ir_node(p, IR_TOFLOAT, &k, 1, 0, 20, &d) : ir_const_float(p, 2.0, 20);
    int dist = bin(p, IR_SUB, k, q, &d);
    p->score = bin(p, IR_ADD, bin(p, IR_MUL, sc, g, &d), ir_node(p, IR_TOFLOAT, &dist, 1, 0, 20, &d), &d);
    const char *src = score_kernel(p, &a, &d);
    ck_assert_msg((strstr(src, "score_coef(") != NULL) == !byk, "s * %s: split %d", byk ? "k" : "2",
                  strstr(src, "score_coef(") != NULL);
    if (!byk) ck_assert_msg(strstr(src, "  return 2.0f;\n") != NULL, "score_gain is not 2");
    arena_free(&a);
  }
}
END_TEST

/* a divisor the same over a tile becomes a reciprocal; one of k stays a division */
START_TEST(uniform_divisor_reciprocal) {
  Arena a;
  arena_init(&a);
  Diag d = { 0 };
  IrPattern *p = test_pattern(&a, true, &d);
  ck_assert_msg(diag_ok(&d), "%s", d.msg);
  int sc = ir_leaf(p, IR_SCORE, 0, 20), c = ir_const_float(p, 30.0, 20), k = ir_leaf(p, IR_K, 0, 20);
  int kf = ir_node(p, IR_TOFLOAT, &k, 1, 0, 20, &d);
  p->score = bin(p, IR_ADD, bin(p, IR_DIV, sc, c, &d), bin(p, IR_DIV, sc, kf, &d), &d);
  const char *src = score_kernel(p, &a, &d);
  ck_assert_msg(strstr(src, "s * (1.0f / 30.0f)") != NULL, "no reciprocal of the constant divisor");
  const char *fn = strstr(src, "ATTNC_DEVICE float pattern_score(");
  ck_assert_ptr_nonnull(fn);
  const char *end = strstr(fn, "\n}\n");
  ck_assert_ptr_nonnull(end);
  const char *div = strstr(fn, "s / ");
  ck_assert_msg(div && div < end, "the division by k's value is gone:\n%.*s", (int)(end - fn), fn);
  arena_free(&a);
}
END_TEST

/* the grid launches causal's heavy q tiles first; work that stops growing keeps its order */
START_TEST(q_tiles_heavy_first) {
  static const struct { const char *spec; bool rev; } want[] = {
    { "specs/causal.lua", true },
    { "specs/prefix_lm.lua", true },
    { "specs/sliding_window.lua", false }, /* grows over its first tiles only */
    { "specs/neighborhood2d.lua", false },
    { "specs/document.lua", false },     /* runtime inputs: unknown */
  };
  attnc_ctx *ctx = attnc_ctx_new();
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    Arena a;
    arena_init(&a);
    const char *src = spec_kernel(ctx, want[i].spec, 128, &a);
    ck_assert_msg((strstr(src, "kQTileRev = true;") != NULL) == want[i].rev, "%s: kQTileRev", want[i].spec);
    arena_free(&a);
  }
  attnc_ctx_free(ctx);
}
END_TEST

/* an input the score alone reads leaves the tiles known at compile time:
   the sink-calibrated window's partial tiles (30 %) run the unrolled mask,
   as the plain window's do; documents' inputs choose their tiles */
START_TEST(score_input_tiles_counted) {
  static const struct { const char *spec; bool unrolled; } want[] = {
    { "specs/sink_calibration.lua", true },
    { "specs/sinks.lua", true },
    { "specs/relative_bias.lua", true },
  };
  attnc_ctx *ctx = attnc_ctx_new();
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    Arena a;
    arena_init(&a);
    const char *src = spec_kernel(ctx, want[i].spec, 128, &a);
    ck_assert_msg((strstr(src, "ATTNC_DEVICE void mask_tile0") != NULL) == want[i].unrolled,
                  "%s: the mask %s", want[i].spec, want[i].unrolled ? "is not unrolled" : "is unrolled");
    arena_free(&a);
  }
  attnc_ctx_free(ctx);
}
END_TEST

/* warp-specialised kernels sum the softmax's rows by P V over a chunk of
   ones (N = Dv + 8) and drop the FADDs; the others keep them */
START_TEST(row_sums_by_mma) {
  static const struct { const char *spec; int d; bool on; const char *pv; } want[] = {
    { "specs/causal.lua", 128, true, "m64n136k16" },
    { "specs/sliding_window.lua", 128, true, "m64n136k16" },
    { "specs/neighborhood2d.lua", 64, false, "m64n64k16" },   /* no producer warpgroup */
  };
  attnc_ctx *ctx = attnc_ctx_new();
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    Arena a;
    arena_init(&a);
    const char *src = spec_kernel(ctx, want[i].spec, want[i].d, &a);
    ck_assert_msg((strstr(src, "kSumMma = true;") != NULL) == want[i].on, "%s: kSumMma", want[i].spec);
    ck_assert_msg(strstr(src, want[i].pv) != NULL, "%s: no %s", want[i].spec, want[i].pv);
    arena_free(&a);
  }
  attnc_ctx_free(ctx);
}
END_TEST

/* the persistent grid where every q tile carries about the same work, known
   at compile time, on 128-row tiles: the sink-calibrated window; not the
   short windows' 64-row tiles (two CTAs an SM), not causal (its heavy q tiles go
   first on a grid of q tiles), not documents (tiles from an input), not
   kernels without a producer warpgroup */
START_TEST(persistent_where_even) {
  static const struct { const char *spec; int d; bool on; } want[] = {
    { "specs/sliding_window.lua", 128, false },    /* window 16: 64 x 64 tiles */
    { "specs/sinks.lua", 128, false },
    { "specs/sink_calibration.lua", 128, true },
    { "specs/causal.lua", 128, false },
    { "specs/document.lua", 128, false },
    { "specs/neighborhood2d.lua", 64, false },
  };
  unsetenv("ATTNC_CUDA_PERSIST");
  attnc_ctx *ctx = attnc_ctx_new();
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    Arena a;
    arena_init(&a);
    const char *src = spec_kernel(ctx, want[i].spec, want[i].d, &a);
    ck_assert_msg((strstr(src, "kPersist = true;") != NULL) == want[i].on, "%s: kPersist", want[i].spec);
    ck_assert_msg((strstr(src, "the kernel, persistent") != NULL) == want[i].on, "%s: the kernel", want[i].spec);
    arena_free(&a);
  }
  attnc_ctx_free(ctx);
}
END_TEST

/* `attnc explain` sizes p.meta from the plan (cuda_plan_prep,
   cuda_meta_bytes of cuda_plan's config): for every spec its predicate says
   what the emitted kernel has (attnc_prep and attnc_prep_q), and its bytes
   are those of the layout the kernel's data_meta_* helpers index (from the
   source's own constants: its tiles, kDataGroup, kDataQRec), which
   cuda_launch allocates with the built kernel's config; no kv tiles need no
   buffer */
static int64_t source_int(const char *src, const char *name) {
  long long v = tu_source_int(src, name);
  ck_assert_msg(v >= 0, "no %s in the source", name);
  return v;
}

/* score splits whose column terms vanish on some kv tiles leave those
   tiles' scores alone (kScoreRaw, emit_score_raw): the sink-calibrated
   window's k < sinks, key_bias's key ranges, and with no column terms
   every tile where the rows' gains are positive (log-n scaling, a
   temperature); not where the terms may be nonzero on every tile (k % 2),
   with a distance term (ALiBi), a negated s or no split (a relative bias
   table) */
START_TEST(score_raw_where_keys_bounded) {
  static const struct { const char *name, *src; bool raw; const char *support; } want[] = {
    { "sinks", "local a = require 'attnc'\n"
               "return a.pattern { mask = a.causal(), score = a.score(function(s, b, h, q, k)\n"
               "  return s - a.select(k:lt(4), 0.5, 0.0) end) }\n", true, "k0 < 4" },
    { "range", "local a = require 'attnc'\n"
               "return a.pattern { mask = a.causal(), score = a.score(function(s, b, h, q, k)\n"
               "  return s + a.select(a.negate(a.any(k:lt(100), k:ge(200))), 0.7, 0.0) end) }\n",
      true, "(k1 >= 100 && k0 < 200)" },
    { "scaled", "local a = require 'attnc'\n"
                "return a.pattern { mask = a.causal(), score = a.score(function(s, b, h, q, k)\n"
                "  return s + 0.5 * a.select(k:lt(8), 1.0, 0.0) end) }\n", true, "return k0 < 8;" },
    { "product", "local a = require 'attnc'\n"   /* 0 * an input may be NaN: nonzero where either is */
                 "local t = a.input('t', 'f32', { 'H' })\n"
                 "return a.pattern { mask = a.causal(), score = a.score(function(s, b, h, q, k)\n"
                 "  return s + a.select(k:lt(8), 1.0, 0.0) * t[h] end) }\n", false, NULL },
    { "even", "local a = require 'attnc'\n"
              "return a.pattern { mask = a.causal(), score = a.score(function(s, b, h, q, k)\n"
              "  return s + a.select((k % 2):eq(0), 0.7, 0.0) end) }\n", false, NULL },
    /* a factor per row (or per head) folds into the softmax where it is
       positive (row_gain checks at run time); one known to be negative not */
    { "temperature", "local a = require 'attnc'\n"
                     "local t = a.input('t', 'f32', { 'H' })\n"
                     "return a.pattern { mask = a.causal(), score = a.score(function(s, b, h, q, k)\n"
                     "  return s / t[h] end) }\n", true, "return false;" },
    { "negated", "local a = require 'attnc'\n"
                 "return a.pattern { mask = a.causal(), score = a.score(function(s, b, h, q, k)\n"
                 "  return -s end) }\n", false, NULL },
    { "alibi", NULL, false, NULL },
    { "logit_scaling", NULL, true, "return false;" },
    { "relative_bias", NULL, false, NULL },
    { "sink_calibration", NULL, true, "k0 < 4" },
  };
  attnc_ctx *ctx = attnc_ctx_new();
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    attnc_spec *s;
    attnc_error err;
    char path[256];
    snprintf(path, sizeof path, "specs/%s.lua", want[i].name);
    attnc_status st = want[i].src ? attnc_spec_load_string(ctx, want[i].name, want[i].src, NULL, 0, &s, &err)
                                  : attnc_spec_load_file(ctx, tu_path(path), NULL, 0, &s, &err);
    ck_assert_msg(st == ATTNC_OK, "%s: %s", want[i].name, err.message);
    Arena a;
    arena_init(&a);
    Diag d = { 0 };
    CudaConfig cfg = { .dtype = DT_BF16, .head_dim = 128, .arch = 90 };
    char *src;
    ck_assert_msg(cuda_build_source(s->pat, &cfg, true, &a, &src, &d) == ATTNC_OK, "%s: %s", want[i].name, d.msg);
    ck_assert_msg((strstr(src, "kScoreRaw = true;") != NULL) == want[i].raw, "%s: kScoreRaw", want[i].name);
    ck_assert_msg(strstr(src, "kScoreRaw = ") != NULL, "%s: no kScoreRaw", want[i].name);
    if (want[i].support) {
      const char *f = strstr(src, "bool score_col_may(");
      ck_assert_msg(f && strstr(f, want[i].support), "%s: support %s", want[i].name, want[i].support);
      ck_assert(strstr(src, "if (!raw) {") && strstr(src, "const bool raw = rg.raw && tile_raw(p, b, h, cur.tile);"));
      ck_assert(strstr(src, "rg.raw = __all_sync(0xffffffffu, pos);") != NULL);
    }
    arena_free(&a);
    attnc_spec_free(s);
  }
  attnc_ctx_free(ctx);
}
END_TEST

/* D = 128, where most 128 x 128 tiles are partial: 64 x 64 tiles only where
   they visit at most 0.73 of the pairs (keep_small_tiles): the sliding
   window 256 keeps 128 x 128 (0.83), the 2-D neighborhood (kernel 13 on
   128 x 128, 0.59) and the window 64 (0.50) take 64 x 64; at D = 64 the
   window 1024 takes them from 192 x 128 as before */
START_TEST(small_tiles_where_fewer_pairs) {
  static const struct { const char *spec; attnc_define defs[3]; int ndefs, d, seq, bm; } want[] = {
    { "specs/sliding_window.lua", { { "window", "256" } }, 1, 128, 8192, 128 },
    { "specs/sliding_window.lua", { { "window", "64" } }, 1, 128, 8192, 64 },
    { "specs/neighborhood2d.lua", { { "height", "128" }, { "width", "128" }, { "kernel", "13" } }, 3, 128, 16384, 64 },
    { "specs/sliding_window.lua", { { "window", "1024" } }, 1, 64, 8192, 64 },
  };
  attnc_ctx *ctx = attnc_ctx_new();
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    attnc_spec *s;
    attnc_error err;
    ck_assert_msg(attnc_spec_load_file(ctx, tu_path(want[i].spec), want[i].defs, want[i].ndefs, &s, &err) ==
                  ATTNC_OK, "%s: %s", want[i].spec, err.message);
    Arena a;
    arena_init(&a);
    Diag d = { 0 };
    CudaConfig cfg = { .dtype = DT_BF16, .head_dim = want[i].d, .arch = 90, .seq_hint = want[i].seq };
    Plan *pl = NULL;
    ck_assert_msg(cuda_plan(s->pat, &cfg, &a, &pl, &d) == ATTNC_OK, "%s: %s", want[i].spec, d.msg);
    ck_assert_msg(pl->sched.bm == want[i].bm, "%s %s=%s D=%d: q tile %d, want %d", want[i].spec,
                  want[i].defs[0].name, want[i].defs[0].value, want[i].d, (int)pl->sched.bm, want[i].bm);
    arena_free(&a);
    attnc_spec_free(s);
  }
  attnc_ctx_free(ctx);
}
END_TEST

START_TEST(meta_bytes_where_prep) {
  attnc_ctx *ctx = attnc_ctx_new();
  char paths[256][512];
  attnc_spec *specs[256];
  int n = load_specs(ctx, paths, specs, 256), with = 0;
  for (int i = 0; i < n; i++) {
    Arena a;
    arena_init(&a);
    Diag d = { 0 };
    CudaConfig cc = { .dtype = DT_BF16, .head_dim = 128, .arch = 90 };
    Plan *pl = NULL;
    ck_assert_msg(cuda_plan(specs[i]->pat, &cc, &a, &pl, &d) == ATTNC_OK, "%s: %s", paths[i], d.msg);
    bool prep = cuda_plan_prep(pl);
    CudaConfig cfg = { .dtype = DT_BF16, .head_dim = 128, .arch = 90 };
    char *src;
    ck_assert_msg(cuda_build_source(specs[i]->pat, &cfg, true, &a, &src, &d) == ATTNC_OK, "%s: %s", paths[i], d.msg);
    ck_assert_msg(prep == (strstr(src, " " CUDA_PREPQ_NAME "(const __grid_constant__ Params p)") != NULL) &&
                  prep == (strstr(src, "kDataMeta = true;") != NULL), "%s: cuda_plan_prep %d", paths[i], prep);
    if (prep) {         /* data iterators walk 1-D orders: tiles of kBlockM / kBlockN tokens */
      with++;
      const int64_t Sq = 1000, Sk = 5000, bm = source_int(src, "kBlockM = "), bn = source_int(src, "kBlockN = ");
      const int64_t kt = (Sk + bn - 1) / bn, qt = (Sq + bm - 1) / bm, g = source_int(src, "kDataGroup = ");
      const int64_t want = 2 * 3 * ((kt + (kt + g - 1) / g) * 2 + qt * source_int(src, "kDataQRec = ")) * 8;
      ck_assert_int_eq(cuda_meta_bytes(&cc, 2, 3, Sq, Sk), want);    /* explain's */
      ck_assert_int_eq(cuda_meta_bytes(&cfg, 2, 3, Sq, Sk), want);   /* cuda_launch's */
      ck_assert_int_eq(cuda_meta_bytes(&cc, 2, 3, Sq, 0), 0);
      /* attnc_prep_q's block is the threads that iterate (its launch bounds,
         and iter_tid counts from the block's end) */
      const int64_t pw = source_int(src, "kProducerWarps = ");
      ck_assert(strstr(src, "__launch_bounds__(32 * kIterWarps) " CUDA_PREPQ_NAME "(") != NULL);
      ck_assert_int_eq(cuda_prep_q_threads(&cfg), 32 * (pw ? pw : source_int(src, "kWarps = ")));
      /* sm_90 kernels wait for the pass before where they read its output
         (the launch lets them start early); sm_80 has no griddepcontrol */
      ck_assert(strstr(src, "kPrepOverlap = kDataMeta && true;") != NULL && cuda_prep_overlap(&cfg));
      CudaConfig c80 = { .dtype = DT_BF16, .head_dim = 128, .arch = 80 };
      char *src80;
      ck_assert_msg(cuda_build_source(specs[i]->pat, &c80, true, &a, &src80, &d) == ATTNC_OK, "%s: %s", paths[i], d.msg);
      ck_assert(strstr(src80, "kPrepOverlap = kDataMeta && false;") != NULL && !cuda_prep_overlap(&c80));
    }
    arena_free(&a);
  }
  ck_assert_msg(with >= 2, "%d specs with the data iterator's pre-pass", with);   /* documents, clusters */
  for (int i = 0; i < n; i++) attnc_spec_free(specs[i]);
  attnc_ctx_free(ctx);
}
END_TEST

/* the plan's iterators are walked, not replaced by a dense loop */
START_TEST(specs_iterators_walked) {
  static const struct { const char *spec, *needle; } want[] = {
    { "specs/causal.lua", "box_step(it.u, it.wlo[0]" },
    { "specs/neighborhood2d.lua", "box_step(it.u, it.wlo[0]" },
    { "specs/routed.lua", "list_elem0(" },
    { "specs/block_sparse.lua", "list_elem0(" },
    { "specs/document.lua", "data_krange0(" },
  };
  attnc_ctx *ctx = attnc_ctx_new();
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    if (access(tu_path(want[i].spec), R_OK) != 0) continue;
    Arena a;
    arena_init(&a);
    const char *src = spec_kernel(ctx, want[i].spec, 64, &a);
    ck_assert_msg(strstr(src, want[i].needle) != NULL, "%s: no '%s' in the kernel", want[i].spec, want[i].needle);
    ck_assert_msg(strstr(src, "walked densely") == NULL, "%s: iterator walked densely", want[i].spec);
    /* only the data iterator has the pre-pass kernel, and narrows its walk
       to the groups the pre-pass summarised */
    bool data = strstr(want[i].needle, "data_") != NULL;
    ck_assert_msg((strstr(src, "void __launch_bounds__(32 * kDataGroup) " CUDA_PREP_NAME "(") != NULL) == data,
                  "%s: pre-pass %s", want[i].spec, data ? "missing" : "unexpected");
    ck_assert_msg((strstr(src, "data_narrow0(it, p, b, h);") != NULL) == data, "%s: narrowing", want[i].spec);
    /* at D = 128 (a producer warpgroup), its V copies lag its K copies where
       runtime inputs pick the tiles */
    src = spec_kernel(ctx, want[i].spec, 128, &a);
    ck_assert_msg(strstr(src, "kProducerWarps = 4;") != NULL, "%s: no producer at D=128", want[i].spec);
    bool lag = data || strstr(want[i].needle, "list_") != NULL;
    ck_assert_msg((strstr(src, "kVLag = true;") != NULL) == lag, "%s: kVLag should be %s", want[i].spec,
                  lag ? "true" : "false");
    /* and its producer stages the document ids of a partial tile's keys */
    ck_assert_msg((strstr(src, "kColStage = true;") != NULL) == data, "%s: column staging %s", want[i].spec,
                  data ? "missing" : "unexpected");
    arena_free(&a);
  }
  attnc_ctx_free(ctx);
}
END_TEST

/* --------------------------------------------------------------- cache */

static char cache_root[256];

static void make_cache_root(void) {
  snprintf(cache_root, sizeof cache_root, "/tmp/attnc-test-cuda-%ld-XXXXXX", (long)getpid());
  ck_assert_ptr_nonnull(mkdtemp(cache_root));
}

typedef struct Warns { int n; char last[1200]; } Warns;
static void count_warn(void *ud, const char *msg) {
  Warns *w = ud;
  w->n++;
  snprintf(w->last, sizeof w->last, "%s", msg);
}

/* emit the ops pattern and get its cubin through a cache in dir */
static attnc_status cached_compile(const char *dir, Warns *w, KCacheHit *hit, double *ms,
                                   size_t *size, Diag *d) {
  KCacheOptions opt = { .dir = dir, .warn = w ? count_warn : NULL, .warn_ud = w };
  KCache *c = kcache_new(&opt);
  Arena a;
  arena_init(&a);
  IrPattern *p = test_pattern(&a, true, d);
  CudaConfig cfg = { .dtype = DT_F16, .head_dim = 64, .arch = 90 };
  char *src;
  double t0 = now_ms();
  attnc_status st = cuda_config_finish(p, &cfg, d);
  if (!st) st = cuda_emit(p, &cfg, &a, &src, d);
  CudaImage img = { 0 };
  if (!st) st = kcache_cuda_image(c, src, 90, CUDA_IMAGE_CUBIN, &img, hit, d);
  *ms = now_ms() - t0;
  if (size) *size = img.size;
  if (!st && memcmp(img.data, "\177ELF", 4) != 0)
    st = diag_error(d, ATTNC_ERR_INTERNAL, (Loc){ NULL, 0 }, "not a cubin");
  cuda_image_free(&img);
  arena_free(&a);
  kcache_free(c);
  return st;
}

/* whether the bytes [data, data + n) hold name as a symbol ("name\0") */
static bool names(const void *data, size_t n, const char *name) {
  size_t k = strlen(name) + 1;
  for (size_t i = 0; i + k <= n; i++)
    if (memcmp((const char *)data + i, name, k) == 0) return true;
  return false;
}

/* a kernel with pre-passes (documents) compiles as two programs at once:
   the runtime's image holds the attention kernel's cubin and the
   pre-passes', the CLI's cubin all three; a kernel without them one
   cubin; a container that does not hold together is no image, and one in
   the cache is compiled again */
START_TEST(documents_two_programs) {
  attnc_ctx *ctx = attnc_ctx_new();
  const char *specs[] = { "specs/document.lua", "specs/causal.lua" };
  for (int i = 0; i < 2; i++) {
    attnc_spec *s;
    attnc_error err;
    ck_assert_msg(attnc_spec_load_file(ctx, tu_path(specs[i]), NULL, 0, &s, &err) == ATTNC_OK, "%s", err.message);
    Arena a;
    arena_init(&a);
    Diag d = { 0 };
    CudaConfig cfg = { .dtype = DT_BF16, .head_dim = 128, .arch = 90 };
    char *src;
    ck_assert_msg(cuda_build_source(s->pat, &cfg, true, &a, &src, &d) == ATTNC_OK, "%s", d.msg);
    ck_assert_int_eq(cuda_image_nparts(src, CUDA_IMAGE_CUBIN), i == 0 ? 2 : 1);
    ck_assert_int_eq(cuda_image_nparts(src, CUDA_IMAGE_CUBIN_ONE), 1);
    CudaImage img, one;
    ck_assert_msg(cuda_compile(src, 90, CUDA_IMAGE_CUBIN, &img, &d) == ATTNC_OK, "%s", d.msg);
    ck_assert_msg(cuda_compile(src, 90, CUDA_IMAGE_CUBIN_ONE, &one, &d) == ATTNC_OK, "%s", d.msg);
    ck_assert_int_eq(cuda_image_parts(&one), 1);
    ck_assert(names(one.data, one.size, CUDA_KERNEL_NAME));
    ck_assert(names(one.data, one.size, CUDA_PREP_NAME) == (i == 0));
    ck_assert_int_eq(cuda_image_parts(&img), i == 0 ? 2 : 1);
    const void *part;
    size_t n;
    cuda_image_part(&img, 0, &part, &n);
    ck_assert(names(part, n, CUDA_KERNEL_NAME) && !names(part, n, CUDA_PREP_NAME));
    if (i == 0) {
      cuda_image_part(&img, 1, &part, &n);
      ck_assert(!names(part, n, CUDA_KERNEL_NAME));
      ck_assert(names(part, n, CUDA_PREP_NAME) && names(part, n, CUDA_PREPQ_NAME));
      /* damaged containers: a size past the end, a part that is no ELF */
      unsigned char *bad = malloc(img.size);
      memcpy(bad, img.data, img.size);
      CudaImage b = { .data = bad, .size = img.size - 1 };
      ck_assert_int_eq(cuda_image_parts(&b), 0);
      b.size = img.size;
      bad[24] = 0;
      ck_assert_int_eq(cuda_image_parts(&b), 0);
      /* such an entry in the cache (its checksum right): compiled again */
      make_cache_root();
      KCacheOptions opt = { .dir = cache_root };
      KCache *c = kcache_new(&opt);
      char *key;
      size_t keylen;
      ck_assert_int_eq(cuda_cache_key(src, 90, CUDA_IMAGE_CUBIN, &key, &keylen, &d), ATTNC_OK);
      ck_assert(kcache_put(c, key, keylen, bad, img.size));
      CudaImage again;
      KCacheHit hit;
      ck_assert_msg(kcache_cuda_image(c, src, 90, CUDA_IMAGE_CUBIN, &again, &hit, &d) == ATTNC_OK, "%s", d.msg);
      ck_assert_int_eq(hit, KCACHE_MISS);
      ck_assert_int_eq(cuda_image_parts(&again), 2);
      cuda_image_free(&again);
      ck_assert_msg(kcache_cuda_image(c, src, 90, CUDA_IMAGE_CUBIN, &again, &hit, &d) == ATTNC_OK, "%s", d.msg);
      ck_assert_int_ne(hit, KCACHE_MISS);        /* the good one replaced it */
      ck_assert_int_eq(cuda_image_parts(&again), 2);
      cuda_image_free(&again);
      /* the one cubin of all kernels has its own entry, one part, and comes
         back from it (a new cache: from the disk) */
      for (int round = 0; round < 2; round++) {
        KCache *c1 = kcache_new(&opt);
        ck_assert_msg(kcache_cuda_image(c1, src, 90, CUDA_IMAGE_CUBIN_ONE, &again, &hit, &d) == ATTNC_OK,
                      "%s", d.msg);
        ck_assert_int_eq(hit, round == 0 ? KCACHE_MISS : KCACHE_DISK);
        ck_assert_int_eq(cuda_image_parts(&again), 1);
        ck_assert(names(again.data, again.size, CUDA_KERNEL_NAME) && names(again.data, again.size, CUDA_PREPQ_NAME));
        cuda_image_free(&again);
        kcache_free(c1);
      }
      free(key);
      free(bad);
      kcache_free(c);
    }
    cuda_image_free(&img);
    cuda_image_free(&one);
    arena_free(&a);
    attnc_spec_free(s);
  }
  attnc_ctx_free(ctx);
}
END_TEST

/* run cached_compile in a child process; returns its status, fills hit and ms */
static int child_compile(const char *dir, KCacheHit *hit, double *ms) {
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    Diag d = { 0 };
    struct { int st; int hit; double ms; } r;
    KCacheHit h = KCACHE_MISS;
    r.st = cached_compile(dir, NULL, &h, &r.ms, NULL, &d);
    r.hit = (int)h;
    if (r.st) fprintf(stderr, "child: %s\n", d.msg);
    if (write(fds[1], &r, sizeof r) != (ssize_t)sizeof r) _exit(3);
    _exit(r.st ? 1 : 0);
  }
  close(fds[1]);
  struct { int st; int hit; double ms; } r = { -1, 0, 0 };
  ssize_t got = read(fds[0], &r, sizeof r);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (got != (ssize_t)sizeof r) return -1;
  *hit = (KCacheHit)r.hit;
  *ms = r.ms;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

START_TEST(cache_new_process_hit) {
  make_cache_root();
  KCacheHit h1, h2;
  double cold, warm;
  ck_assert_int_eq(child_compile(cache_root, &h1, &cold), 0);
  ck_assert_int_eq(child_compile(cache_root, &h2, &warm), 0);
  ck_assert_int_eq(h1, KCACHE_MISS);
  ck_assert_int_eq(h2, KCACHE_DISK);
  fprintf(stderr, "test_cuda: cold compile %.1f ms, disk-cache hit in a new process %.2f ms (%.0fx)\n",
          cold, warm, cold / (warm > 0.001 ? warm : 0.001));
  ck_assert_msg(cold >= 20 * warm, "cold %.1f ms vs warm %.2f ms: less than 20x", cold, warm);
}
END_TEST

START_TEST(cache_memory_hit) {
  KCacheOptions opt = { .no_disk = true };
  KCache *c = kcache_new(&opt);
  ck_assert_ptr_null(kcache_dir(c));
  void *data;
  size_t len;
  ck_assert_int_eq(kcache_get(c, "key", 3, &data, &len), KCACHE_MISS);
  ck_assert(kcache_put(c, "key", 3, "value", 5));
  ck_assert_int_eq(kcache_get(c, "key", 3, &data, &len), KCACHE_MEMORY);
  ck_assert_uint_eq(len, 5);
  ck_assert_str_eq(data, "value");            /* NUL-terminated copy */
  free(data);
  ck_assert_int_eq(kcache_get(c, "kez", 3, &data, &len), KCACHE_MISS);
  KCacheStats s = kcache_stats(c);
  ck_assert_int_eq(s.mem_hits, 1);
  ck_assert_int_eq(s.misses, 2);
  kcache_free(c);
}
END_TEST

START_TEST(cache_truncated_entry_rebuilt) {
  make_cache_root();
  Diag d = { 0 };
  KCacheHit hit;
  double ms;
  size_t size;
  ck_assert_int_eq(cached_compile(cache_root, NULL, &hit, &ms, &size, &d), ATTNC_OK);
  ck_assert_int_eq(hit, KCACHE_MISS);
  /* find the entry file and cut it in half */
  DIR *dir = opendir(cache_root);
  struct dirent *e;
  char path[600] = "";
  int entries = 0;
  while ((e = readdir(dir)))
    if (strstr(e->d_name, ".kc") && e->d_name[0] != '.') {
      snprintf(path, sizeof path, "%s/%s", cache_root, e->d_name);
      entries++;
    }
  closedir(dir);
  ck_assert_int_eq(entries, 1);                /* no temp files left behind */
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_int_eq(truncate(path, st.st_size / 2), 0);
  Warns w = { 0 };
  ck_assert_int_eq(cached_compile(cache_root, &w, &hit, &ms, &size, &d), ATTNC_OK);
  ck_assert_int_eq(hit, KCACHE_MISS);          /* detected, rebuilt */
  ck_assert_int_eq(w.n, 1);
  ck_assert_msg(strstr(w.last, "corrupt") && strstr(w.last, "truncated"), "%s", w.last);
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_int_gt(st.st_size, (off_t)size);   /* the whole entry again */
  w.n = 0;
  ck_assert_int_eq(cached_compile(cache_root, &w, &hit, &ms, &size, &d), ATTNC_OK);
  ck_assert_int_eq(hit, KCACHE_DISK);
  ck_assert_int_eq(w.n, 0);
  /* a flipped byte in the payload: checksum mismatch */
  int fd = open(path, O_RDWR);
  char byte;
  ck_assert_int_eq(pread(fd, &byte, 1, st.st_size - 10), 1);
  byte ^= 0x55;
  ck_assert_int_eq(pwrite(fd, &byte, 1, st.st_size - 10), 1);
  close(fd);
  ck_assert_int_eq(cached_compile(cache_root, &w, &hit, &ms, &size, &d), ATTNC_OK);
  ck_assert_int_eq(hit, KCACHE_MISS);
  ck_assert_msg(strstr(w.last, "checksum"), "%s", w.last);
}
END_TEST

START_TEST(cache_two_processes_at_once) {
  make_cache_root();
  int fds[2][2];
  pid_t pids[2];
  for (int i = 0; i < 2; i++) {
    ck_assert_int_eq(pipe(fds[i]), 0);
    pids[i] = fork();
    ck_assert_int_ge(pids[i], 0);
    if (pids[i] == 0) {
      /* wait for the go byte so that both compile at the same time */
      char go;
      close(fds[i][1]);
      if (read(fds[i][0], &go, 1) != 1) _exit(4);
      Diag d = { 0 };
      KCacheHit h;
      double ms;
      attnc_status st = cached_compile(cache_root, NULL, &h, &ms, NULL, &d);
      if (st) fprintf(stderr, "child %d: %s\n", i, d.msg);
      _exit(st ? 1 : 0);
    }
    close(fds[i][0]);
  }
  for (int i = 0; i < 2; i++) {
    ck_assert_int_eq(write(fds[i][1], "g", 1), 1);
    close(fds[i][1]);
  }
  for (int i = 0; i < 2; i++) {
    int status = 0;
    waitpid(pids[i], &status, 0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "process %d failed", i);
  }
  Diag d = { 0 };
  KCacheHit hit;
  double ms;
  Warns w = { 0 };
  ck_assert_int_eq(cached_compile(cache_root, &w, &hit, &ms, NULL, &d), ATTNC_OK);
  ck_assert_int_eq(hit, KCACHE_DISK);
  ck_assert_int_eq(w.n, 0);
}
END_TEST

START_TEST(cache_unwritable_dir) {
  make_cache_root();
  char file[400], dir[500];
  snprintf(file, sizeof file, "%s/not-a-dir", cache_root);
  FILE *f = fopen(file, "w");
  fputs("x", f);
  fclose(f);
  snprintf(dir, sizeof dir, "%s/cache", file);    /* under a file: cannot be created */
  Warns w = { 0 };
  Diag d = { 0 };
  KCacheHit hit;
  double ms;
  ck_assert_int_eq(cached_compile(dir, &w, &hit, &ms, NULL, &d), ATTNC_OK);
  ck_assert_int_eq(hit, KCACHE_MISS);
  ck_assert_int_eq(w.n, 1);
  ck_assert_msg(strstr(w.last, "without the disk cache"), "%s", w.last);
  /* one cache, many puts: still one warning */
  KCacheOptions opt = { .dir = dir, .warn = count_warn, .warn_ud = &w };
  KCache *c = kcache_new(&opt);
  w.n = 0;
  kcache_put(c, "a", 1, "1", 1);
  kcache_put(c, "b", 1, "2", 1);
  ck_assert_int_eq(w.n, 1);
  void *data;
  size_t len;
  ck_assert_int_eq(kcache_get(c, "b", 1, &data, &len), KCACHE_MEMORY);
  free(data);
  kcache_free(c);
}
END_TEST

typedef struct ThreadArg { KCache *c; int id; int bad; } ThreadArg;

static void *cache_thread(void *arg) {
  ThreadArg *t = arg;
  for (int i = 0; i < 200; i++) {
    char key[32], val[32];
    int k = (i * 7 + t->id) % 16;
    snprintf(key, sizeof key, "key-%d", k);
    snprintf(val, sizeof val, "value-%d", k);
    void *data;
    size_t len;
    if (kcache_get(t->c, key, strlen(key), &data, &len) != KCACHE_MISS) {
      if (len != strlen(val) || memcmp(data, val, len) != 0) t->bad++;
      free(data);
    } else
      kcache_put(t->c, key, strlen(key), val, strlen(val));
  }
  return NULL;
}

/* threads sharing one cache: every hit returns the value stored for its key */
START_TEST(cache_threads) {
  make_cache_root();
  KCacheOptions opt = { .dir = cache_root };
  KCache *c = kcache_new(&opt);
  enum { NT = 8 };
  pthread_t th[NT];
  ThreadArg args[NT];
  for (int i = 0; i < NT; i++) {
    args[i] = (ThreadArg){ c, i, 0 };
    pthread_create(&th[i], NULL, cache_thread, &args[i]);
  }
  for (int i = 0; i < NT; i++) {
    pthread_join(th[i], NULL);
    ck_assert_int_eq(args[i].bad, 0);
  }
  KCacheStats st = kcache_stats(c);
  ck_assert_int_eq(st.corrupt, 0);
  ck_assert_int_le(st.disk_writes, st.puts);
  kcache_free(c);
}
END_TEST

/* ---------------------------------------------------------------- CLI */

/* run a shell command, capture its stdout; returns the exit status */
static int run_cmd(const char *cmd, char *out, size_t n, double *ms) {
  double t0 = now_ms();
  FILE *f = popen(cmd, "r");
  if (!f) return -1;
  size_t k = fread(out, 1, n - 1, f);
  out[k] = 0;
  int st = pclose(f);
  *ms = now_ms() - t0;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
** attnc compile --target cuda --emit cubin --json, in new processes: the
** second comes from the disk cache ("cached": true), and its compile_ms
** (what --json reports: building the kernel, cache lookup included) is at
** least 20x below the first's. Whole-process times are printed only: they
** include process start and tracing, which a loaded machine stretches.
*/
static double json_compile_ms(const char *out) {
  const char *p = strstr(out, "\"compile_ms\": ");
  ck_assert_msg(p != NULL, "no compile_ms in: %s", out);
  return strtod(p + strlen("\"compile_ms\": "), NULL);
}

START_TEST(cli_compile_json_cache) {
  const char *cli = getenv("ATTNC_CLI");
  char out[4096], cmd[2048];
  double wall1, wall2;
  if (!cli) { fprintf(stderr, "test_cuda: ATTNC_CLI unset; CLI test skipped\n"); return; }
  make_cache_root();
  snprintf(cmd, sizeof cmd,
           "ATTNC_CACHE_DIR=%s %s compile %s --target cuda --arch sm_90a --emit cubin -o %s/k.cubin --json",
           cache_root, cli, tu_path("specs/causal.lua"), cache_root);
  ck_assert_int_eq(run_cmd(cmd, out, sizeof out, &wall1), 0);
  ck_assert_msg(strstr(out, "\"cached\": false"), "%s", out);
  double cold = json_compile_ms(out);
  ck_assert_int_eq(run_cmd(cmd, out, sizeof out, &wall2), 0);
  ck_assert_msg(strstr(out, "\"cached\": true"), "%s", out);
  double warm = json_compile_ms(out);
  fprintf(stderr, "test_cuda: attnc compile --emit cubin: compile_ms %.1f cold, %.2f from the disk cache "
          "(%.0fx); whole process %.0f ms and %.0f ms\n", cold, warm, cold / (warm > 0 ? warm : 1e-3),
          wall1, wall2);
  ck_assert_msg(cold >= 20 * warm, "compile_ms %.1f cold, %.2f cached: less than 20x", cold, warm);
}
END_TEST

/* ------------------------------------------------------------- driver */

START_TEST(no_driver_message) {
  setenv("ATTNC_CUDA_DRIVER", "/nonexistent/libcuda.so.1", 1);
  CudaDriver *drv = NULL;
  Diag d = { 0 };
  attnc_status st = cuda_driver_open(0, &drv, &d);
  unsetenv("ATTNC_CUDA_DRIVER");
  ck_assert_int_eq(st, ATTNC_ERR_NODEVICE);
  ck_assert_ptr_null(drv);
  ck_assert_str_eq(d.msg, "no CUDA driver (/nonexistent/libcuda.so.1 not found)");
}
END_TEST

int main(void) {
  Suite *s = suite_create("cuda");
  TCase *emit = tcase_create("emit");
  tcase_add_test(emit, emit_is_deterministic);
  tcase_add_test(emit, arch_names);
  tcase_add_test(emit, half_conversions);
  suite_add_tcase(s, emit);
  TCase *nv = tcase_create("nvrtc");
  tcase_set_timeout(nv, 300);
  tcase_add_test(nv, compile_ops_pattern);
  tcase_add_test(nv, compile_ptx);
  tcase_add_test(nv, compile_ws);
  tcase_add_test(nv, kv_map_layout);
  tcase_add_test(nv, nvrtc_error_quotes_line);
  suite_add_tcase(s, nv);
  TCase *specs = tcase_create("specs");
  tcase_set_timeout(specs, 900);
  tcase_add_test(specs, specs_emit_deterministic);
  tcase_add_test(specs, specs_iterators_walked);
  tcase_add_test(specs, meta_bytes_where_prep);
  tcase_add_test(specs, score_split_terms);
  tcase_add_test(specs, uniform_divisor_reciprocal);
  tcase_add_test(specs, q_tiles_heavy_first);
  tcase_add_test(specs, row_sums_by_mma);
  tcase_add_test(specs, persistent_where_even);
  tcase_add_test(specs, small_tiles_where_fewer_pairs);
  tcase_add_test(specs, score_raw_where_keys_bounded);
  tcase_add_test(specs, score_input_tiles_counted);
  tcase_add_test(specs, compile_all_specs);
  tcase_add_test(specs, fuzz_masks_compile);
  suite_add_tcase(s, specs);
  TCase *cache = tcase_create("cache");
  tcase_set_timeout(cache, 300);
  tcase_add_test(cache, cache_memory_hit);
  tcase_add_test(cache, cache_new_process_hit);
  tcase_add_test(cache, cache_truncated_entry_rebuilt);
  tcase_add_test(cache, documents_two_programs);
  tcase_add_test(cache, cache_two_processes_at_once);
  tcase_add_test(cache, cache_unwritable_dir);
  tcase_add_test(cache, cache_threads);
  suite_add_tcase(s, cache);
  TCase *cli = tcase_create("cli");
  tcase_set_timeout(cli, 120);
  tcase_add_test(cli, cli_compile_json_cache);
  suite_add_tcase(s, cli);
  TCase *drv = tcase_create("driver");
  tcase_add_test(drv, no_driver_message);
  suite_add_tcase(s, drv);
  return tu_run(s);
}
