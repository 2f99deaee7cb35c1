// GroupCommitWriter: the single writer of a store.
//
// LMDB allows one write transaction per environment at a time. Instead of a
// lock around mdb_txn_begin, every thread that wants to write hands a
// WriteBatch to this writer; a dedicated thread takes every batch waiting in
// the queue (up to max_group_bytes), and commits them together: one log
// append, one LMDB transaction, one fsync for the whole group. This is what
// lets store throughput grow with the number of moves in flight (the model is
// LevelDB's DBImpl::Write writer queue).
//
// The writer runs on its own std::thread rather than a oneTBB task: it
// blocks in fsync and LMDB commits, and a blocked TBB worker would take a
// core away from the moves.
//
// Thread safety: Submit/Write/stats may be called from any thread. The
// commit function runs only on the writer thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "store/status.h"
#include "store/write_batch.h"

namespace mbx {

struct GroupCommitOptions {
  size_t max_group_bytes = 16u << 20;   // a group closes when it holds this many bytes
  size_t max_queue_bytes = 64u << 20;   // Submit blocks while this many bytes wait
};

struct GroupCommitStats {
  uint64_t groups = 0;           // LMDB transactions committed
  uint64_t batches = 0;          // WriteBatches committed
  uint64_t failed_batches = 0;   // WriteBatches whose commit failed
  uint64_t bytes = 0;            // ApproximateBytes() of committed batches
  uint64_t max_group_batches = 0;
  std::chrono::nanoseconds commit_time{0};      // time inside the commit function
  std::chrono::nanoseconds queue_wait_time{0};  // sum over batches: submit -> group start
};

class GroupCommitWriter {
 public:
  // Commits a group atomically; returns OK or the reason every batch in it failed.
  using CommitFn = std::function<Status(const std::vector<const WriteBatch*>&)>;

  GroupCommitWriter(CommitFn commit, const GroupCommitOptions& options);
  // Commits what is queued, then stops the thread.
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
  void Run();

  CommitFn commit_;
  GroupCommitOptions options_;
  mutable std::mutex mu_;
  std::condition_variable work_cv_;   // writer waits for work
  std::condition_variable space_cv_;  // submitters wait for queue space
  std::deque<std::unique_ptr<Pending>> queue_;  // GUARDED_BY(mu_)
  size_t queued_bytes_ = 0;                     // GUARDED_BY(mu_)
  bool stop_ = false;                           // GUARDED_BY(mu_)
  GroupCommitStats stats_;                      // GUARDED_BY(mu_)
  std::thread thread_;  // started last, after every member above is ready
};

}  // namespace mbx
