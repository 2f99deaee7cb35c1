// Recovery: finishes or undoes the moves a crash interrupted, from the move
// records in the directory. A move at `switched` is finished (the commit
// point passed); any earlier move is rolled back. Moves whose stores are open
// in another mbxmove process are in progress there and are left alone.
//
// Imports (engine/mail_transfer.h) keep a record too, with step "importing":
// if the user is registered with homeMDB naming the store, the import had
// written all of the mailbox (users are registered only after that) and the
// mailbox is made active; otherwise the partial mailbox is deleted.
//
// A migration batch's member moves are left alone while the batch's runner
// holds its lease; once it has lapsed they are rolled back (or finished)
// like any other, and the batch's members are put back to queued (or
// completed) for the next `batch start`.
#pragma once

#include <string>
#include <vector>

#include "store/organization.h"

namespace mbx::engine {

struct RecoveredMove {
  MoveRecord record;
  std::string action;  // "finished", "rolled back", "kept: ..." (a batch resumes it), "skipped: ..." or "failed: ..."
};

struct RecoveredImport {
  std::string store;
  Guid mailbox;
  std::string owner;
  std::string action;  // "activated", "removed" or "failed: ..."
};

struct RecoveryReport {
  std::vector<RecoveredMove> moves;
  std::vector<RecoveredImport> imports;
  // Migration batches whose runner is gone (engine/batch_runner.h): one
  // line per member put back to queued (copied again at the next `batch
  // start`) or found completed; "failed: ..." when a batch could not be.
  std::vector<std::string> batches;
  bool all_done() const;
};

Result<RecoveryReport> Recover(Organization& org);

}  // namespace mbx::engine
