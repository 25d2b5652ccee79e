/*
** arena.c -- the per-compilation bump allocator.
** Chunks are malloc'd and chained; arena_free releases them all at once.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

struct ArenaChunk {
  ArenaChunk *next;
  size_t size, used;
  _Alignas(16) unsigned char data[];
};

enum { CHUNK_MIN = 64 * 1024 };

static _Thread_local long fail_countdown = -1;   /* test hook, per thread */

void arena_fail_after(long n) { fail_countdown = n; }

void arena_init(Arena *a) { memset(a, 0, sizeof *a); }

void arena_free(Arena *a) {
  ArenaChunk *c = a->head;
  while (c) {
    ArenaChunk *next = c->next;
    free(c);
    c = next;
  }
  a->head = NULL;
  a->used_bytes = 0;
}

/*
** Allocate n zeroed bytes aligned to 16. Returns NULL (and marks the arena
** failed) when malloc fails, the limit is reached, or the test hook fires.
*/
void *arena_alloc(Arena *a, size_t n) {
  size_t need = (n + 15) & ~(size_t)15;
  if (need < n) { a->failed = true; return NULL; }     /* overflow */
  if (fail_countdown >= 0 && fail_countdown-- == 0) { a->failed = true; return NULL; }
  if (a->limit_bytes && a->used_bytes + need > a->limit_bytes) { a->failed = true; return NULL; }
  ArenaChunk *c = a->head;
  if (!c || c->size - c->used < need) {
    size_t size = need > CHUNK_MIN ? need : CHUNK_MIN;
    c = malloc(sizeof *c + size);
    if (!c) { a->failed = true; return NULL; }
    c->size = size;
    c->used = 0;
    c->next = a->head;
    a->head = c;
  }
  void *p = c->data + c->used;
  c->used += need;
  a->used_bytes += need;
  memset(p, 0, need);
  return p;
}

void *arena_realloc(Arena *a, void *p, size_t old, size_t n) {
  if (n <= old) return p;
  void *q = arena_alloc(a, n);
  if (q && p && old) memcpy(q, p, old);
  return q;
}

char *arena_strdup(Arena *a, const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s) + 1;
  char *d = arena_alloc(a, n);
  if (d) memcpy(d, s, n);
  return d;
}

char *arena_printf(Arena *a, const char *fmt, ...) {
  va_list ap, aq;
  va_start(ap, fmt);
  va_copy(aq, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *s = n >= 0 ? arena_alloc(a, (size_t)n + 1) : NULL;
  if (s) vsnprintf(s, (size_t)n + 1, fmt, aq);
  va_end(aq);
  return s;
}
