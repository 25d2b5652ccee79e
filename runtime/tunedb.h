/*
** tunedb.h -- the tuning database: the best schedule `attnc tune` found
** per (spec hash, shape bucket, target, arch), kept as JSON (cJSON) in
**
**   $ATTNC_TUNE_DB                      when set ("" or "off": no database)
**   $XDG_CONFIG_HOME/attnc/tune.json    else
**   ~/.config/attnc/tune.json           else
**
** attnc_kernel_compile consults it for schedules the caller left 0. The
** file is written atomically (a temp file in the same folder, renamed); a
** file that does not parse is reported as a warning and treated as empty.
**
** The file: {"version": 1, "entries": [{"spec": "sliding_window",
** "hash": "0123456789abcdef", "target": "cpu", "arch": "x86_64-znver3",
** "s": 256, "d": 64, "bh": 4, "block_m": 32, "block_n": 64, "warps": 0,
** "stages": 0, "order": 0, "ms": 0.12, "default_ms": 0.15,
** "params": "window=64", "dtype": "f32", "time": "2025-01-01T00:00:00Z"}]}
*/
#ifndef ATTNC_TUNEDB_H
#define ATTNC_TUNEDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attnc.h"

/* the shape bucket: S and B*H rounded up to a power of two, D exact */
typedef struct TuneKey {
  uint64_t hash;              /* ir_hash of the spec (params folded in) */
  attnc_target target;
  char arch[64];              /* tunedb_arch */
  int64_t s, d, bh;
} TuneKey;

typedef struct TuneEntry {
  TuneKey key;
  attnc_schedule sched;
  double ms, default_ms;      /* median of the best, of the default (-1: unknown) */
  char spec[64];              /* the pattern's name, for people reading the file */
  char params[256];           /* "-D" values the entry was tuned with */
  char dtype[8];
  char time[32];              /* UTC, ISO 8601 */
} TuneEntry;

typedef struct TuneDb {
  TuneEntry *e;
  int n, cap;
} TuneDb;

/* powers of two, at least 1 */
int64_t tunedb_pow2(int64_t x);
/* fill the bucket fields of k from a call's sizes (0: unknown, kept 0) */
void tunedb_bucket(TuneKey *k, int64_t B, int64_t H, int64_t S, int64_t D);

/*
** The database path into buf; false (buf "") when disabled by
** ATTNC_TUNE_DB="" / "off" or when no home folder is known.
*/
bool tunedb_path(char *buf, size_t len);

/*
** The arch tuned for: given when not NULL/""; else, for cpu, the host
** ("x86_64-znver3"); for cuda the device's ("sm_90") or "" when none
** can be opened (then lookups match any arch); "" for ref.
*/
void tunedb_arch(attnc_target t, const char *given, char *buf, size_t len);

/*
** Load path into db (empty when the file does not exist). A file that
** cannot be read or parsed leaves db empty, returns false and puts the
** reason in warn (the caller warns and goes on).
*/
bool tunedb_load(const char *path, TuneDb *db, char *warn, size_t wlen);
/* write atomically (temp + rename), creating the folder; false with err */
bool tunedb_save(const char *path, const TuneDb *db, char *err, size_t elen);
void tunedb_free(TuneDb *db);

/* insert or replace the entry with the same key; false when out of memory */
bool tunedb_put(TuneDb *db, const TuneEntry *e);
/* the entry with exactly this key, or NULL */
const TuneEntry *tunedb_find(const TuneDb *db, const TuneKey *k);
/*
** The nearest entry for a compile: same hash and target; same arch unless
** k->arch is "" (any); same D unless k->d is 0; then the nearest S bucket
** and B*H bucket (log2 distance; unknown 0 matches any). NULL when none.
*/
const TuneEntry *tunedb_match(const TuneDb *db, const TuneKey *k);

/* "0123456789abcdef" */
void tunedb_hash_str(uint64_t h, char buf[17]);

/*
** Off switch for this process (attnc tune times the heuristics' default
** without the database's help). Defaults to on.
*/
void tunedb_enable(bool on);
bool tunedb_enabled(void);

/*
** What attnc_kernel_compile does: look up the database for pattern hash
** h and fill the zero fields of sched; true when an entry was used, with
** its file in path (may be NULL). arch is the caller's (NULL: tunedb_arch
** finds it, only when the database has entries). bh, s, d: the call's
** B*H, S and D (0: unknown). Warns once per process on stderr about a
** corrupt file.
*/
bool tunedb_lookup(uint64_t h, attnc_target t, const char *arch, int64_t bh, int64_t s, int64_t d,
                   attnc_schedule *sched, char *path, size_t plen, TuneEntry *found);

#endif
