// MailboxMover: moves one mailbox from its source store to a target store
// through the state machine of move_state.h, with retry-then-drop on item
// reads, and produces its MailboxReport.
//
// Inside one mailbox the copy is a oneTBB parallel_pipeline: a serial stage
// walks the source snapshot (LMDB cursor) into chunks; a parallel stage
// verifies (decodes and checks) every record, retries failed reads, drops
// what stays unreadable and recompresses when the target asks for another
// level; a serial stage hands each chunk as one WriteBatch to the target's
// group-commit writer, keeping a few batches in flight so reading, verifying
// and committing overlap.
//
// Thread safety: one MailboxMover may run Move() for several mailboxes at
// once from different threads (it holds only immutable options and atomic
// counters).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/fault_injector.h"
#include "engine/move_report.h"
#include "engine/retry_policy.h"
#include "store/organization.h"

namespace mbx::engine {

struct MoveOptions {
  std::string target;            // target store name
  int concurrency = 4;           // mailboxes in flight (Exchange 2003 SP1: 4)
  RetryPolicy retry;             // R = 1, B = 0
  enum class Order { kLargestFirst, kSmallestFirst, kAsGiven } order = Order::kLargestFirst;
  bool keep_source = false;      // source mailbox -> soft-deleted instead of deleted
  std::optional<int> recompress_level;  // recode items to this zstd level (default: target's level)
  FaultOptions faults;
  size_t batch_bytes = 1u << 20;        // bytes per WriteBatch to the target
  size_t inflight_batches = 4;          // per mailbox, batches handed to the writer not yet committed
  // Online moves (`move --online`, engine/online_move.cc): the source stays
  // active; an initial copy, then incremental passes until one finds at
  // most `final_delta_items` changed items (or `max_passes` ran), then the
  // source is locked for the last delta only (the pass that finds so few
  // takes the lock and is read again under it: it is the last delta).
  bool online = false;
  uint64_t final_delta_items = 50;
  int max_passes = 10;
  // A pass reads the source's changes in pages of at most this many bytes
  // of records (one item at least), so that a pass of any size fits the
  // server's messages and this process's memory.
  uint64_t changes_page_bytes = 16u << 20;
  // Tests: called with the source locked, the final delta not yet read.
  std::function<void(const Guid&)> on_locked_for_test;
};

// Counters summed over every mailbox of a run, in nanoseconds / units.
struct MoveCounters {
  std::atomic<int64_t> read_ns{0}, verify_ns{0}, recompress_ns{0}, write_wait_ns{0};
  std::atomic<int64_t> target_verify_ns{0}, directory_ns{0};
  std::atomic<uint64_t> bytes_done{0};   // source stored bytes processed
  std::atomic<uint64_t> copied_bytes{0};  // record bytes copied into write batches (an online move's passes)
  std::atomic<uint64_t> items_done{0};
  std::atomic<uint64_t> mailboxes_done{0};
};

struct MoveTask {
  UserRecord user;
  StoreRecord source;
  StoreRecord target;
  uint64_t stored_bytes = 0;  // size of the source mailbox, for ordering and ETA
  // When set and it returns a reason, the move is called off: it stops
  // before its next batch and before its switch, and is rolled back (a
  // queue mover that lost its lease, engine/queue_mover.h). Called from the
  // move's threads; must be thread-safe and cheap.
  std::function<std::string()> called_off;
};


class MailboxMover {
 public:
  MailboxMover(Organization& org, const MoveOptions& options, MoveCounters* counters);
  // Moves one mailbox. Never throws; failures are in the report (outcome
  // failed, reason), with the source left exactly as it was. Once a write to
  // the target has failed for lack of disk space, moves not yet started are
  // not started (failed, "not started: <why>"): they would only lock their
  // sources to be refused by a store running on its disk reserve.
  //
  // With `cleanup`, a move that reaches the switch is returned with its clean
  // up (target activated, source deleted, record deleted) left to the
  // caller: *cleanup is its record, for FinishMoves. The report is then
  // complete but for its "cleanup" phase and any clean-up failure.
  MailboxReport Move(const MoveTask& task, std::optional<MoveRecord>* cleanup = nullptr);

  // An online move taken a step at a time (migration batches,
  // engine/batch_runner.h); Move with options.online runs the same steps
  // back to back. The session keeps what the move knows of the target
  // between steps (in memory: a process that dies leaves a move record at
  // `syncing`, which recover rolls back).
  struct OnlineSession;
  struct OnlineSessionDeleter {
    void operator()(OnlineSession* s) const;
  };
  using OnlineSessionPtr = std::unique_ptr<OnlineSession, OnlineSessionDeleter>;
  // The record (step syncing), the source's change index, the initial copy.
  // On failure (rolled back) nullptr, and *failed is the report.
  OnlineSessionPtr StartOnline(const MoveTask& task, MailboxReport* failed);
  // Takes up an online move a process that died left at `syncing` (its
  // record `record`), from what its target holds: the target's header
  // names the source's change number its last pass reached, and the
  // target's items (read and verified, not copied) rebuild what the move
  // knows of them. Refused, and rolled back, unless the target holds
  // exactly what its header counts (a pass or the initial copy cut short
  // does not), the source is active and still tracked from at most that
  // change number. nullptr and *failed then.
  OnlineSessionPtr ResumeOnline(const MoveTask& task, const MoveRecord& record, MailboxReport* failed);
  // One incremental pass, the source still in use. Returns the number of
  // items it found changed; on failure the move is rolled back and the
  // status says why (the session has ended: it must then only be
  // destroyed). Called off (MoveTask::called_off) before the pass starts:
  // Aborted, nothing written and the session as it was (not ended), for the
  // caller to roll back (AbortOnline) or to leave at `syncing`.
  Result<uint64_t> SyncOnline(OnlineSession* session);
  // Whether the move has ended (completed, failed or rolled back).
  static bool Ended(const OnlineSession& session);
  // Passes until one finds at most final_delta_items (or max_passes ran),
  // then the lock, the final delta, the verification and the switch; the
  // clean-up as for Move. The report of the whole move.
  MailboxReport CompleteOnline(OnlineSession* session, std::optional<MoveRecord>* cleanup = nullptr);
  // Rolls the move back (the target removed, the source untracked); the
  // report says `why`.
  MailboxReport AbortOnline(OnlineSession* session, const std::string& why);
  struct OnlineProgress {
    uint32_t passes = 0;
    uint64_t items_copied = 0, bytes_copied = 0;  // records written to the target, every pass
    uint64_t last_pass_items = 0;                 // items the last pass (or the initial copy) found
    size_t dropped = 0;
  };
  static OnlineProgress Progress(const OnlineSession& session);

 private:
  struct FolderExpect {
    uint64_t items = 0;
    uint64_t hash_sum = 0;
  };
  // What an online move knows of each item it put on the target.
  struct ModelItem {
    uint32_t folder = 0;
    uint64_t mixed_hash = 0;
    uint64_t stored = 0;
    uint64_t logical = 0;
  };
  struct CopyResult {
    bool keep_items = false;  // online moves: fill `kept`
    std::vector<std::pair<uint64_t, ModelItem>> kept;
    std::map<uint32_t, FolderExpect> expect;
    std::vector<DroppedItem> dropped;
    uint64_t items = 0, stored_out = 0, logical = 0, source_bytes = 0, retries = 0;
    bool over_limit = false;
  };
  struct OnlineState;
  // One mailbox's move under way (Move and MoveOnline alike): the report it
  // fills, its stores and its record, and the ways it ends early.
  struct Run {
    MailboxMover* mover = nullptr;
    const MoveTask* task = nullptr;
    std::chrono::steady_clock::time_point start;
    MailboxReport rep;
    MoveRecord rec;
    StoreHandle* src = nullptr;
    StoreHandle* dst = nullptr;

    // The report of a move that failed, as things stand.
    MailboxReport Fail(const std::string& why);
    // Rolls back what the move did, then Fail.
    MailboxReport Abandon(const std::string& why);
    // The same for a failed write to the target (which may have found the disk full).
    MailboxReport AbandonWrite(const Status& s, const std::string& what = "");
    // Why the move is called off (MoveTask::called_off), or "".
    std::string CalledOff() const;
    // Records `step` in the directory: `create` for the first step (guarded:
    // no other move may hold the mailbox), a guarded advance otherwise.
    Status Step(MoveStep step, bool create);
    // Records 'verified' where the directory's switch needs it (see
    // Directory::SwitchIsOneWrite).
    Status StepVerified();
    // Creates the record at `step`: "" when done, else why not.
    std::string Guard(MoveStep step);
    // The commit point: homeMDB to the target. nullopt when switched; else
    // the report of the failure (rolled back if the switch did not happen).
    std::optional<MailboxReport> Switch();
  };
  // Starts a run: false (and run->rep the failure) when the stores cannot
  // be had, an earlier target write found the disk full, or the move is
  // called off before it starts.
  bool Begin(const MoveTask& task, Run* run);
  MailboxReport MoveOnline(const MoveTask& task, std::optional<MoveRecord>* cleanup);
  // A session with its stores (Begin); nullptr and *failed when they cannot be had.
  OnlineSessionPtr NewOnlineSession(const MoveTask& task, MailboxReport* failed);
  // One incremental pass of an online move (under_lock: the final delta).
  // `first_page`: the pass's first page, already read (with the lock).
  Status OnlinePass(OnlineSession* session, bool under_lock, std::optional<ChangeSet> first_page = std::nullopt);
  ChangesPage PassPage() const;  // a pass's page size
  // Applies one ChangeSet, or one page of it, to the target (online moves).
  // The target's header records `header_change_number` as its sync point:
  // the pass's sync point with its last page, the previous one before
  // (folders the source no longer has go with the last page only).
  Status ApplyDelta(const ChangeSet& cs, StoreHandle* target, int target_level, bool recode, OnlineState* st,
                    std::vector<DroppedItem>* dropped, bool last_page, uint64_t header_change_number);
  // Copies the items. `tree` (the target's folder tree) goes in the first
  // batch with a moving-in header made from `header`, and the header with
  // the copy's final counts in the last: one target commit, with one header,
  // for a mailbox that fits one batch, instead of three.
  Status CopyItems(MailboxReadStream& stream, StoreHandle* target, const MoveTask& task,
                   const std::map<uint32_t, std::string>& paths, int target_level, bool recode,
                   WriteBatch tree, const MailboxInfo& header, CopyResult* out);
  Status VerifyTarget(StoreHandle* target, const Guid& mailbox, const std::vector<FolderInfo>& folders,
                      const std::map<uint32_t, FolderExpect>& expect);

  // The out-of-space failure of a target write, remembered for the moves
  // not yet started; empty while there was none.
  void NoteTargetFull(const Status& s);
  std::string TargetFull();

  Organization& org_;
  MoveOptions options_;
  std::mutex full_mu_;
  std::string target_full_;  // GUARDED_BY(full_mu_)
  FaultInjector faults_;
  MoveCounters* counters_;
};

// Undoes a move that did not reach the switch: removes the partial target
// (if it is still moving-in), puts the source back to active, deletes the
// move record. Idempotent.
Status RollBackMove(Organization& org, const MoveRecord& record);
// Finishes a move past the switch: target active, source deleted (or
// soft-deleted), move record deleted. Idempotent.
Status FinishMove(Organization& org, const MoveRecord& record);
// Finishes several moves past the switch at once: every target activated
// and every source deleted, then each store involved flushed once (instead
// of twice per mailbox), then the records deleted. One status per record,
// in order; a record whose step failed is kept for 'mbxmove recover'.
std::vector<Status> FinishMoves(Organization& org, const std::vector<MoveRecord>& records);
// The report's reason for a move whose clean-up failed.
void NoteCleanupFailed(const Status& s, MailboxReport* rep);

}  // namespace mbx::engine
