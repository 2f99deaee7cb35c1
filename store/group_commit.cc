#include "store/group_commit.h"

namespace mbx {

GroupCommitWriter::GroupCommitWriter(PrepareFn prepare, ApplyFn apply, const GroupCommitOptions& options)
    : prepare_(std::move(prepare)), apply_(std::move(apply)), options_(options) {
  if (options_.max_logged_groups == 0) options_.max_logged_groups = 1;
  apply_thread_ = std::thread([this] { ApplyLoop(); });
  log_thread_ = std::thread([this] { LogLoop(); });
}

GroupCommitWriter::~GroupCommitWriter() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  space_cv_.notify_all();
  log_thread_.join();
  apply_thread_.join();
}

std::future<Status> GroupCommitWriter::Submit(WriteBatch batch) {
  auto p = std::make_unique<Pending>();
  p->batch = std::move(batch);
  std::future<Status> f = p->done.get_future();
  const size_t bytes = p->batch.ApproximateBytes();
  {
    std::unique_lock<std::mutex> l(mu_);
    // A batch larger than the whole queue bound still goes in once the queue
    // is empty, so no batch waits forever.
    space_cv_.wait(l, [&] {
      return stop_ || queue_.empty() || queued_bytes_ + bytes <= options_.max_queue_bytes;
    });
    if (stop_) {
      p->done.set_value(Status::Aborted("store is closing"));
      return f;
    }
    p->submitted = std::chrono::steady_clock::now();
    queued_bytes_ += bytes;
    queue_.push_back(std::move(p));
  }
  work_cv_.notify_one();
  return f;
}

GroupCommitStats GroupCommitWriter::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

void GroupCommitWriter::Finish(Group& g, const Status& s) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (s.ok()) {
      ++stats_.groups;
      stats_.batches += g.members.size();
      stats_.bytes += g.bytes;
    } else {
      stats_.failed_batches += g.members.size();
    }
    stats_.max_group_batches = std::max<uint64_t>(stats_.max_group_batches, g.members.size());
  }
  for (auto& p : g.members) p->done.set_value(s);
}

void GroupCommitWriter::LogLoop() {
  for (;;) {
    auto g = std::make_unique<Group>();
    {
      std::unique_lock<std::mutex> l(mu_);
      work_cv_.wait(l, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) break;  // stop_ and nothing left to commit
      // Batches that may use the log reserve (deletes, header updates: what
      // a rollback writes) are never grouped with others, so that a group
      // refused by the log quota never takes a rollback down with it.
      const bool reserve = queue_.front()->batch.MayUseLogReserve();
      while (!queue_.empty() &&
             (g->members.empty() || g->bytes + queue_.front()->batch.ApproximateBytes() <= options_.max_group_bytes)) {
        if (queue_.front()->batch.MayUseLogReserve() != reserve) break;
        g->bytes += queue_.front()->batch.ApproximateBytes();
        g->members.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queued_bytes_ -= g->bytes;
    }
    space_cv_.notify_all();
    {
      std::unique_lock<std::mutex> l(mu_);  // room in the logged queue
      logged_cv_.wait(l, [&] { return logged_.size() < options_.max_logged_groups; });
    }
    const auto start = std::chrono::steady_clock::now();
    std::chrono::nanoseconds waited{0};
    for (auto& p : g->members) {
      g->batches.push_back(&p->batch);
      waited += start - p->submitted;
    }
    g->status = prepare_(g->batches, &g->token);
    {
      std::lock_guard<std::mutex> l(mu_);
      stats_.log_time += std::chrono::steady_clock::now() - start;
      stats_.queue_wait_time += waited;
      logged_.push_back(std::move(g));
    }
    logged_cv_.notify_all();
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    log_done_ = true;
  }
  logged_cv_.notify_all();
}

void GroupCommitWriter::ApplyLoop() {
  for (;;) {
    std::unique_ptr<Group> g;
    {
      std::unique_lock<std::mutex> l(mu_);
      logged_cv_.wait(l, [&] { return log_done_ || !logged_.empty(); });
      if (logged_.empty()) return;  // the log thread has exited and all is applied
      g = std::move(logged_.front());
      logged_.pop_front();
    }
    logged_cv_.notify_all();  // room for the log thread
    Status s = g->status;
    if (s.ok()) {
      const auto start = std::chrono::steady_clock::now();
      s = apply_(g->batches, g->token);
      std::lock_guard<std::mutex> l(mu_);
      stats_.commit_time += std::chrono::steady_clock::now() - start;
    }
    Finish(*g, s);
  }
}

}  // namespace mbx
