#include "store/group_commit.h"

namespace mbx {

GroupCommitWriter::GroupCommitWriter(CommitFn commit, const GroupCommitOptions& options)
    : commit_(std::move(commit)), options_(options) {
  thread_ = std::thread([this] { Run(); });
}

GroupCommitWriter::~GroupCommitWriter() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  thread_.join();
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

void GroupCommitWriter::Run() {
  std::vector<std::unique_ptr<Pending>> group;
  std::vector<const WriteBatch*> batches;
  for (;;) {
    group.clear();
    batches.clear();
    {
      std::unique_lock<std::mutex> l(mu_);
      work_cv_.wait(l, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_ and nothing left to commit
      size_t bytes = 0;
      // A conditional batch is committed alone, so that its condition is
      // checked against exactly the state it will be applied to.
      while (!queue_.empty() &&
             (group.empty() || bytes + queue_.front()->batch.ApproximateBytes() <=
                                   options_.max_group_bytes)) {
        const bool conditional = queue_.front()->batch.precondition().has_value();
        if (conditional && !group.empty()) break;
        bytes += queue_.front()->batch.ApproximateBytes();
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
        if (conditional) break;
      }
      queued_bytes_ -= bytes;
    }
    space_cv_.notify_all();

    const auto start = std::chrono::steady_clock::now();
    std::chrono::nanoseconds waited{0};
    for (auto& p : group) {
      batches.push_back(&p->batch);
      waited += start - p->submitted;
    }
    Status s = commit_(batches);
    const auto end = std::chrono::steady_clock::now();
    uint64_t bytes = 0;
    for (auto& p : group) bytes += p->batch.ApproximateBytes();
    {
      std::lock_guard<std::mutex> l(mu_);
      if (s.ok()) {
        ++stats_.groups;
        stats_.batches += group.size();
        stats_.bytes += bytes;
      } else {
        stats_.failed_batches += group.size();
      }
      stats_.max_group_batches = std::max<uint64_t>(stats_.max_group_batches, group.size());
      stats_.commit_time += end - start;
      stats_.queue_wait_time += waited;
    }
    for (auto& p : group) p->done.set_value(s);
  }
}

}  // namespace mbx
