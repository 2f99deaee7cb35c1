// GroupCommitWriter: the single writer of a store.
//
// LMDB allows one write transaction per environment at a time. Instead of a
// lock around mdb_txn_begin, every thread that wants to write hands a
// WriteBatch to this writer, which takes every batch waiting in the queue (up
// to max_group_bytes) and commits them together: one log append, one LMDB
// transaction, one fsync for the whole group. This is what lets store
// throughput grow with the number of moves in flight (the model is LevelDB's
// DBImpl::Write writer queue).
//
// The commit of a group is two stages on two threads, so that they overlap
// across groups:
//   log stage   (log thread):   `prepare` — appends the group's redo record
//                               to the transaction log;
//   apply stage (apply thread): `apply` — applies the group to LMDB in one
//                               transaction and commits it; then the batches'
//                               futures are made ready.
// While group N is applied, group N+1 is already being logged. Groups are
// applied in the order they were logged.
//
// Both stages run on dedicated std::threads rather than oneTBB tasks: they
// block in fsync and LMDB commits, and a blocked TBB worker would take a core
// away from the moves.
//
// Thread safety: Submit/Write/stats may be called from any thread. `prepare`
// runs only on the log thread, `apply` only on the apply thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "store/status.h"
#include "store/write_batch.h"

namespace mbx {

struct GroupCommitOptions {
  size_t max_group_bytes = 16u << 20;   // a group closes when it holds this many bytes
  size_t max_queue_bytes = 64u << 20;   // Submit blocks while this many bytes wait
  size_t max_logged_groups = 2;         // groups logged and waiting to be applied
};

struct GroupCommitStats {
  uint64_t groups = 0;           // LMDB transactions committed
  uint64_t batches = 0;          // WriteBatches committed
  uint64_t failed_batches = 0;   // WriteBatches whose commit failed
  uint64_t bytes = 0;            // ApproximateBytes() of committed batches
  uint64_t max_group_batches = 0;
  std::chrono::nanoseconds log_time{0};         // inside `prepare`
  std::chrono::nanoseconds commit_time{0};      // inside `apply`
  std::chrono::nanoseconds queue_wait_time{0};  // sum over batches: submit -> group start
};

class GroupCommitWriter {
 public:
  // Per-group state that `prepare` fills in and `apply` receives: where the
  // group's redo record lies in the transaction log (LSNs are byte offsets
  // into the log since the store was created).
  struct Token {
    uint64_t start_lsn = 0;  // first byte of the group's log record
    uint64_t end_lsn = 0;    // just past the record: the checkpoint once applied
    // The store's log epoch when the record was appended. A failed commit
    // rewinds the log and bumps the epoch, so `apply` refuses every group
    // logged under an older epoch (its record was cut off the log).
    uint64_t log_epoch = 0;
  };
  using PrepareFn = std::function<Status(const std::vector<const WriteBatch*>&, Token*)>;
  using ApplyFn = std::function<Status(const std::vector<const WriteBatch*>&, const Token&)>;

  GroupCommitWriter(PrepareFn prepare, ApplyFn apply, const GroupCommitOptions& options);
  // Commits what is queued, then stops both threads.
  ~GroupCommitWriter();
  GroupCommitWriter(const GroupCommitWriter&) = delete;
  GroupCommitWriter& operator=(const GroupCommitWriter&) = delete;

  // Queues a batch; the future becomes ready when it is committed (or failed).
  // Blocks while more than max_queue_bytes are waiting (back-pressure).
  std::future<Status> Submit(WriteBatch batch);
  // Submit and wait.
  Status Write(WriteBatch batch) { return Submit(std::move(batch)).get(); }

  GroupCommitStats stats() const;

 private:
  struct Pending {
    WriteBatch batch;
    std::promise<Status> done;
    std::chrono::steady_clock::time_point submitted;
  };
  struct Group {
    std::vector<std::unique_ptr<Pending>> members;
    std::vector<const WriteBatch*> batches;
    Token token;
    Status status;  // from prepare; apply is skipped when not OK
    uint64_t bytes = 0;
  };
  void LogLoop();
  void ApplyLoop();
  void Finish(Group& g, const Status& s);

  PrepareFn prepare_;
  ApplyFn apply_;
  GroupCommitOptions options_;
  mutable std::mutex mu_;
  std::condition_variable work_cv_;     // log thread waits for batches
  std::condition_variable space_cv_;    // submitters wait for queue space
  std::condition_variable logged_cv_;   // apply thread waits for logged groups; log thread for room/drain
  std::deque<std::unique_ptr<Pending>> queue_;       // GUARDED_BY(mu_)
  size_t queued_bytes_ = 0;                          // GUARDED_BY(mu_)
  std::deque<std::unique_ptr<Group>> logged_;        // GUARDED_BY(mu_)
  bool stop_ = false;                                // GUARDED_BY(mu_)
  bool log_done_ = false;                            // GUARDED_BY(mu_): log thread exited
  GroupCommitStats stats_;                           // GUARDED_BY(mu_)
  std::thread log_thread_;    // started last, after every member above is ready
  std::thread apply_thread_;
};

}  // namespace mbx
