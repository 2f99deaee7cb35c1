// The in-run baselines that make every move figure a ratio:
//
//  raw logical copy: a cursor over each named database of the source store,
//    written with MDB_APPEND in large transactions into a fresh environment:
//    no log, no verification, no per-mailbox work. LMDB's own ceiling for
//    moving these records.
//  physical copy: mdb_env_copy2 of the whole environment (what mdb_copy does).
#pragma once

#include <cstdint>
#include <string>

#include "store/status.h"

namespace mbx::bench {

struct BaselineResult {
  double seconds = 0;
  uint64_t bytes = 0;   // stored bytes of item records moved (raw copy) / file bytes (physical)
  uint64_t items = 0;   // item records (raw copy)
};

// `source_dir` is a store folder that no process has open.
Result<BaselineResult> RawLogicalCopy(const std::string& source_dir, const std::string& dest_dir);
Result<BaselineResult> PhysicalCopy(const std::string& source_dir, const std::string& dest_dir);

}  // namespace mbx::bench
