// Recovery: finishes or undoes the moves a crash interrupted, from the move
// records in the directory. A move at `switched` is finished (the commit
// point passed); any earlier move is rolled back. Moves whose stores are open
// in another mbxmove process are in progress there and are left alone.
#pragma once

#include <string>
#include <vector>

#include "store/organization.h"

namespace mbx::engine {

struct RecoveredMove {
  MoveRecord record;
  std::string action;  // "finished", "rolled back", "skipped: ..." or "failed: ..."
};

struct RecoveryReport {
  std::vector<RecoveredMove> moves;
  bool all_done() const;
};

Result<RecoveryReport> Recover(Organization& org);

}  // namespace mbx::engine
