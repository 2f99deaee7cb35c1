// Helpers shared by the store's source files (store_open.cc replays the log
// with them, store_write.cc commits groups with them). Not part of the
// store's interface: include only from store/*.cc.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "store/coding.h"
#include "store/lmdb_env.h"
#include "store/status.h"
#include "store/write_batch.h"

namespace mbx::store_internal {

// `v` as 8 bytes (PutFixed64), the form of the checkpoint in the meta database.
inline std::string Fixed64String(uint64_t v) {
  std::string s;
  PutFixed64(&s, v);
  return s;
}

// Stores `lsn` as the checkpoint (meta::kCheckpoint) in `txn`; LMDB's rc
// comes back in *rc for MDB_MAP_FULL handling.
Status PutCheckpoint(MDB_txn* txn, MDB_dbi meta_dbi, uint64_t lsn, int* rc);

// Applies one mutation to database `db` (dbis indexed by Db); LMDB's rc comes
// back in *rc for MDB_MAP_FULL handling. When `deleted` is not null, a prefix
// delete adds the key and the value of each record it deletes, as LMDB
// returned them just before: views into the map (the pages the commit frees:
// a large value's overflow pages, and the leaf page, which the delete copies
// before changing it), or into a page this transaction had already dirtied.
Status ApplyMutation(MDB_txn* txn, const MDB_dbi* dbis, Mutation::Op op, Db db,
                     std::string_view key, std::string_view value, int* rc,
                     std::vector<std::string_view>* deleted = nullptr);

// A group logged after one whose commit failed: the failed group's record
// was cut back out of the log, taking this one with it, so it was neither
// applied nor kept in the log, and submitting it again is safe.
inline Status NotAppliedAfterFailedCommit(const std::string& store) {
  return Status::Aborted("store " + store + ": an earlier commit failed; this write was not applied");
}
inline bool IsNotAppliedAfterFailedCommit(const Status& s) {
  static constexpr std::string_view kTail = ": an earlier commit failed; this write was not applied";
  return s.code() == Status::Code::kAborted && s.message().size() >= kTail.size() &&
         std::string_view(s.message()).substr(s.message().size() - kTail.size()) == kTail;
}

}  // namespace mbx::store_internal
