// The shared move queue: moves submitted as directory entries (`mbxmove
// move --queue`) and run by any number of movers (`mbxmove mover`), each on
// its own host, with the directory as the only shared state -- no
// coordinator of our own (issue 15; Exchange's Mailbox Replication Service
// works this way).
//
// Claims. A mover claims an entry with one guarded write (the entry's
// version, store/directory.h): state queued -> active, owner = the mover's
// token, lease_until = now + lease. Of two movers that read the same entry,
// one claim succeeds and the other is Conflict, so no two movers run one
// request. Before the claim the mover takes one slot of each limit the move
// is under -- moves out of its source store, into its target store, out of
// the source's server, into the target's server (MRS's defaults 5, 2, 50,
// 5) -- each slot a lease of its own ("slot.src-mdb.MS1.3"), claimed the
// same guarded way; with any limit full, the entry is left for later.
//
// Leases. The mover renews its name, its entries and its slots every third
// of the lease. An entry whose lease has lapsed (its mover was killed, or
// cut off from the directory) is claimed like a queued one; the new owner
// first finishes the old owner's move if the directory shows it past its
// switch, or rolls it back and moves it again. A mover that cannot renew
// in time (the directory unreachable, or another mover took the entry)
// calls the move off (MoveTask::called_off): it stops before its next
// batch and before its switch and is rolled back; a mover that loses its
// own name's lease calls every move off and stops. A mover
// stopped (SIGSTOP) for longer than its lease between its last check and
// the switch could still switch after a takeover; the switch's own guard
// (homeMDB must still name the source) then refuses one of the two.
//
// Clocks: leases compare Unix milliseconds across hosts; the movers' clocks
// must agree to well within the lease (NTP does).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/mailbox_mover.h"
#include "engine/move_engine.h"
#include "store/organization.h"

namespace mbx::engine {

// Unix time in milliseconds (wall clock: leases are compared across hosts).
int64_t UnixMillis();
// "mover1" from the token "mover1#9f3a12c4".
std::string MoverNameOfToken(const std::string& token);

// How many moves may run at once; 0 = no limit.
struct MoverLimits {
  int per_source_mdb = 5;      // MaxActiveMovesPerSourceMDB
  int per_target_mdb = 2;      // MaxActiveMovesPerTargetMDB
  int per_source_server = 50;  // MaxActiveMovesPerSourceServer
  int per_target_server = 5;   // MaxActiveMovesPerTargetServer
};

// Submits planned moves as queue entries (state queued). One status per
// planned move, in order: OK, the plan's own error (InvalidArgument), or
// AlreadyExists for a mailbox that has an entry already.
std::vector<Status> QueueMoves(Organization& org, const std::vector<PlannedMove>& plan, const MoveOptions& options,
                               const std::string& batch);

struct MoverOptions {
  std::string name;      // unique among running movers: [A-Za-z0-9._-], 1-64
  int concurrency = 4;   // moves this mover runs at once
  MoverLimits limits;
  int64_t lease_ms = 30000;
  int64_t poll_ms = 1000;  // how often an idle mover looks at the queue
  bool drain = false;      // exit once no entry is queued or active
  MoveOptions move;        // batch sizes, recompression, retries (target and bad-item limit come from each entry)
  std::function<void(const std::string&)> log;  // one line per event; may be empty
};

struct MoverReport {
  uint64_t claimed = 0, done = 0, failed = 0, handed_back = 0, lost = 0;
  uint64_t taken_over = 0;       // claims of an entry whose previous owner's lease had lapsed
  uint64_t finished_for_previous = 0, rolled_back_for_previous = 0;
  uint64_t claim_conflicts = 0;  // claims another mover won
  uint64_t directory_operations = 0, directory_writes = 0;
  uint64_t bytes_moved = 0, items_moved = 0;
  double seconds = 0;
  std::vector<MailboxReport> mailboxes;
  std::string stopped_because;  // "" for a drained queue or a requested stop
};

class QueueMover {
 public:
  QueueMover(Organization& org, MoverOptions options);
  ~QueueMover();
  QueueMover(const QueueMover&) = delete;
  QueueMover& operator=(const QueueMover&) = delete;

  // Takes the mover's name (Busy naming the holder if a live mover has
  // it) and works until `stop` turns true (moves in flight are
  // finished, then everything held is handed back), `abandon` turns true
  // (moves in flight are called off and rolled back, their entries handed
  // back), the queue drains (with drain), or the mover's own lease is lost.
  Result<MoverReport> Run(const std::atomic<bool>& stop, const std::atomic<bool>& abandon);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mbx::engine
