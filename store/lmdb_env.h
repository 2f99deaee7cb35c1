// RAII wrappers for LMDB handles. A transaction that is neither committed nor
// aborted aborts in its destructor; a cursor closes in its destructor.
// Errors are turned into Status values with the LMDB message and a context.
#pragma once

#include <lmdb.h>

#include <cerrno>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "store/file_io.h"
#include "store/status.h"

namespace mbx {

// Turns an LMDB return code into a Status ("<what>: <mdb_strerror>").
// MDB_NOTFOUND becomes NotFound, MDB_CORRUPTED / MDB_PAGE_NOTFOUND /
// MDB_INVALID / MDB_VERSION_MISMATCH become Corruption, the rest IOError
// (MDB_PANIC, an environment failed by an earlier I/O error, says to reopen).
Status LmdbStatus(int rc, std::string_view what);

inline MDB_val ToVal(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}
inline std::string_view FromVal(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

// The bytes data.mdb must hold for every page in use. LMDB does not write a
// page that a transaction allocated and freed again before it committed (a
// "loose" page): such pages are on the freelist, and the file may end before
// them although the meta page counts them in its last page number. So when
// the file is shorter than that, the pages past its end are looked up in the
// freelist (read as mdb_stat -f does); the answer ends at the last page that
// is not free. Corruption if the freelist does not parse.
Result<uint64_t> BytesOfPagesInUse(MDB_env* env, uint64_t file_bytes);

// Drops the pages of records read from an LMDB map from this process's
// resident set, one madvise per run of them. The data stays in the page
// cache and the mapping stays valid: a later read faults the pages back in.
// Moves release the records a batch borrowed once it is written, and the
// target's records once verified, so that a move's RSS does not grow with
// the data it streams through (LMDB reads through mmap). Of a record, only
// whole pages go: all of an overflow value's, none of a small one's (it
// shares a leaf page).
//
// The pages of records that lie near one another in the map (a gap of at
// most 256 KiB between them) are gathered into one range, released when the
// range reaches 4 MiB, when a record lies far from it, and at Flush or
// destruction. A madvise per record is a system call and a TLB shootdown
// across the process's threads each (an IPI, which on a virtual machine is a
// VM exit): 8,757 of them in a move of the 'small' preset (10,421 items),
// 1,553 with the source's stream gathered in runs (C=2 MiB/s means over
// alternated runs: +7% and +10% in two, equal in a third), about 1,500 with
// the target's verification gathered too (CPU per move -10% at C >= 4; see
// perf/README.md). Pages of other records inside a range are
// dropped too: harmless, a read faults them back in from the page cache (the
// map is read-only). Not thread-safe; every range must be inside a map that
// stays where it is until Flush (hold a read transaction).
class MappedPageReleaser {
 public:
  MappedPageReleaser() = default;
  MappedPageReleaser(const MappedPageReleaser&) = delete;
  MappedPageReleaser& operator=(const MappedPageReleaser&) = delete;
  ~MappedPageReleaser() { Flush(); }
  void Add(std::string_view record);
  void Flush();
  uint64_t madvise_calls() const { return calls_; }

 private:
  uintptr_t lo_ = 0, hi_ = 0;  // the range gathered so far; empty when equal
  uint64_t calls_ = 0;
};

// Copies the environment `env` (one consistent snapshot: LMDB's own read
// transaction) into `out` through the Env seam: mdb_env_copyfd2 writes into a
// pipe from a helper thread and this thread appends what comes out to `out`
// in chunks of 1 MiB, so a faulty Env sees every write. `flags`: 0, or
// MDB_CP_COMPACT (free pages left out, pages renumbered: the file shrinks).
// `out` is not synced. `*bytes` / `*xxh3` (when not null): bytes written and
// their XXH3-64. `after_chunk` (when set) runs after each chunk is appended
// (crash points). The caller holds off map resizes meanwhile (the copy reads
// the map).
Status CopyEnvInto(MDB_env* env, unsigned flags, WritableFile* out, uint64_t* bytes = nullptr,
                   uint64_t* xxh3 = nullptr, const std::function<void()>& after_chunk = {});

// Owns an MDB_env.
class LmdbEnv {
 public:
  LmdbEnv() = default;
  ~LmdbEnv() { Close(); }
  LmdbEnv(const LmdbEnv&) = delete;
  LmdbEnv& operator=(const LmdbEnv&) = delete;

  // Opens the environment in folder `dir` (which must exist) with `flags`
  // (MDB_NOTLS is always added), `max_dbs` named databases and an initial
  // map of `map_bytes`.
  Status Open(const std::string& dir, unsigned flags, unsigned max_dbs, size_t map_bytes);
  void Close();
  MDB_env* get() const { return env_; }

 private:
  MDB_env* env_ = nullptr;
};

// Owns an MDB_txn; aborts on destruction unless committed.
class LmdbTxn {
 public:
  LmdbTxn() = default;
  ~LmdbTxn() { Abort(); }
  LmdbTxn(LmdbTxn&& o) noexcept : txn_(std::exchange(o.txn_, nullptr)) {}
  LmdbTxn& operator=(LmdbTxn&& o) noexcept {
    if (this != &o) {
      Abort();
      txn_ = std::exchange(o.txn_, nullptr);
    }
    return *this;
  }
  LmdbTxn(const LmdbTxn&) = delete;
  LmdbTxn& operator=(const LmdbTxn&) = delete;

  Status Begin(MDB_env* env, unsigned flags);  // flags: 0 or MDB_RDONLY
  Status Commit();
  // Commits and returns LMDB's return code (the handle is released either way).
  int CommitRc() {
    int rc = txn_ ? mdb_txn_commit(txn_) : EINVAL;
    txn_ = nullptr;
    return rc;
  }
  void Abort() {
    if (txn_) mdb_txn_abort(txn_);
    txn_ = nullptr;
  }
  MDB_txn* get() const { return txn_; }
  bool active() const { return txn_ != nullptr; }

 private:
  MDB_txn* txn_ = nullptr;
};

// Owns an MDB_cursor.
class LmdbCursor {
 public:
  LmdbCursor() = default;
  ~LmdbCursor() { Close(); }
  LmdbCursor(LmdbCursor&& o) noexcept : cur_(std::exchange(o.cur_, nullptr)) {}
  LmdbCursor& operator=(LmdbCursor&& o) noexcept {
    if (this != &o) {
      Close();
      cur_ = std::exchange(o.cur_, nullptr);
    }
    return *this;
  }
  LmdbCursor(const LmdbCursor&) = delete;
  LmdbCursor& operator=(const LmdbCursor&) = delete;

  Status Open(MDB_txn* txn, MDB_dbi dbi);
  void Close() {
    if (cur_) mdb_cursor_close(cur_);
    cur_ = nullptr;
  }
  MDB_cursor* get() const { return cur_; }

 private:
  MDB_cursor* cur_ = nullptr;
};

}  // namespace mbx
