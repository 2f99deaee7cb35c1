// MoveEngine: plans a move request and runs it, C mailboxes at a time.
//
// Concurrency: a oneTBB parallel_pipeline over the planned mailboxes with C
// live tokens, run inside a task_arena of C threads. Each token is one
// mailbox in flight, moved by MailboxMover (whose own pipeline overlaps
// reading, verifying and writing). The arena gives every mailbox in flight a
// thread of its own even when C exceeds the cores, because a move spends much
// of its time waiting for the target's writer, as Exchange's one thread per
// move did; a pipeline's token limit, not a semaphore, bounds the mailboxes
// in flight.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "engine/mailbox_mover.h"
#include "engine/move_report.h"
#include "store/organization.h"

namespace mbx::engine {

struct MoveRequest {
  std::string from_store;              // move every mailbox homed in this store, or
  std::vector<std::string> mailboxes;  // these: user names, SMTP addresses or mailbox GUIDs
  MoveOptions options;
};

struct PlannedMove {
  MoveTask task;
  std::string error;  // non-empty: this mailbox cannot be moved (nothing is changed)
};

// The user `id` names: a user name, an SMTP address or a mailbox GUID.
Result<UserRecord> FindUser(Directory& dir, const std::string& id);

// Resolves the request into tasks, in the order they will start. Fails as a
// whole only when the target store is not registered (or unreadable).
Result<std::vector<PlannedMove>> PlanMoves(Organization& org, const MoveRequest& request);

// Runs planned moves. `counters` may be watched from another thread for
// progress.
MoveReport RunMoves(Organization& org, const std::vector<PlannedMove>& plan, const MoveOptions& options,
                    MoveCounters* counters);

}  // namespace mbx::engine
