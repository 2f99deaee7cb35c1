// Offline compaction of a store: the step Exchange's KB328810 asks for after
// mailboxes have been moved out ("run an offline defragmentation of the
// store"). LMDB reuses freed pages but never shrinks data.mdb; compaction
// rewrites it with LMDB's compacting copy (free pages left out, pages
// renumbered) and swaps the copy in.
//
// Order, every step through the Env (file_io.h):
//   1. take the store's LOCK (flock): Busy if the store is open elsewhere;
//   2. copy the database with MDB_CP_COMPACT into data.mdb.compact in the
//      store folder, fsync it;
//   3. rename it over data.mdb (atomic), fsync the folder;
//   4. remove lock.mdb (its reader table described the old file).
// A kill at any moment leaves data.mdb whole: the old file until the rename,
// the new one after it (a leftover data.mdb.compact is ignored by the store
// and overwritten by the next compaction).
//
// The log checkpoint lives in the meta database, so the copy carries it
// unchanged, and the logs are not touched: the new file holds the same
// records as the old one, so replaying the log after the checkpoint (after a
// crash of the process that last had the store open) does exactly what it
// would have done on the old file.
#pragma once

#include <cstdint>
#include <string>

#include "store/file_io.h"
#include "store/status.h"

namespace mbx {

struct CompactResult {
  uint64_t bytes_before = 0;  // size of data.mdb before
  uint64_t bytes_after = 0;   // and after
};

// Compacts the store in folder `store_dir`, which must not be open in any
// process (Busy, naming the folder, if it is). `env`: nullptr =
// Env::Default(). On failure data.mdb is the old file, unchanged.
Result<CompactResult> CompactStore(const std::string& store_dir, Env* env = nullptr);

}  // namespace mbx
