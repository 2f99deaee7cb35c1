// GroupCommitWriter (store/group_commit.h) alone, with prepare and apply
// callbacks of the test's own instead of a store's log and LMDB: batches
// queued while a group is being committed go together into the next group,
// bounded by bytes and never mixing reserve-using batches with others; groups
// are applied in the order they were prepared, batches in the order they were
// submitted; a failed group fails every one of its batches and no other.
//
// Determinism without timing: the first group's prepare blocks on a gate
// until the test has queued the batches it wants grouped (Submit queues a
// batch before it returns), so the groups that follow are known exactly.
#include "store/group_commit.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace mbx {
namespace {

// A batch the test can recognise: one put whose key is "batch-NNNNNN", so
// every such batch has the same ApproximateBytes().
WriteBatch NumberedBatch(int n) {
  char key[16];
  std::snprintf(key, sizeof key, "batch-%06d", n);
  WriteBatch b;
  b.Put(Db::kItems, key, "v");
  return b;
}
const size_t kBatchBytes = NumberedBatch(0).ApproximateBytes();

// A batch that only deletes: it may use the log reserve (write_batch.h).
WriteBatch NumberedDelete(int n) {
  char key[16];
  std::snprintf(key, sizeof key, "batch-%06d", n);
  WriteBatch b;
  b.Delete(Db::kItems, key);
  return b;
}

int NumberOf(const WriteBatch* b) { return std::stoi(b->mutations().at(0).key.substr(6)); }

using Groups = std::vector<std::vector<int>>;  // each group's batch numbers, in order

// Records what prepare and apply are handed, holds the first group's prepare
// until Open(), and fails the groups that hold a chosen batch.
class Harness {
 public:
  explicit Harness(GroupCommitOptions options = {}) {
    writer_ = std::make_unique<GroupCommitWriter>(
        [this](const std::vector<const WriteBatch*>& batches, GroupCommitWriter::Token*) {
          return Prepare(batches);
        },
        [this](const std::vector<const WriteBatch*>& batches, const GroupCommitWriter::Token&) {
          return Apply(batches);
        },
        options);
  }

  GroupCommitWriter& writer() { return *writer_; }
  // Submits batch 0 and waits until its prepare runs (and blocks): every
  // batch submitted until Open() waits in the queue.
  std::future<Status> Hold() {
    auto f = writer_->Submit(NumberedBatch(0));
    held_.get_future().wait();
    return f;
  }
  void Open() { gate_.set_value(); }
  void FailPrepareOf(int batch) { fail_prepare_ = batch; }
  void FailApplyOf(int batch) { fail_apply_ = batch; }
  // Stops the writer (it commits what is queued first).
  void Close() { writer_.reset(); }

  Groups prepared() {
    std::lock_guard<std::mutex> l(mu_);
    return prepared_;
  }
  Groups applied() {
    std::lock_guard<std::mutex> l(mu_);
    return applied_;
  }

 private:
  static std::vector<int> Numbers(const std::vector<const WriteBatch*>& batches) {
    std::vector<int> v;
    for (const WriteBatch* b : batches) v.push_back(NumberOf(b));
    return v;
  }
  Status Prepare(const std::vector<const WriteBatch*>& batches) {  // log thread only
    const std::vector<int> numbers = Numbers(batches);
    {
      std::lock_guard<std::mutex> l(mu_);
      prepared_.push_back(numbers);
    }
    if (numbers.front() == 0) {
      held_.set_value();
      gate_.get_future().wait();
    }
    for (int n : numbers) {
      if (n == fail_prepare_) return Status::IOError("log append failed at batch " + std::to_string(n));
    }
    return Status::Ok();
  }
  Status Apply(const std::vector<const WriteBatch*>& batches) {  // apply thread only
    const std::vector<int> numbers = Numbers(batches);
    std::lock_guard<std::mutex> l(mu_);
    applied_.push_back(numbers);
    for (int n : numbers) {
      if (n == fail_apply_) return Status::IOError("commit failed at batch " + std::to_string(n));
    }
    return Status::Ok();
  }

  std::promise<void> held_, gate_;
  int fail_prepare_ = -1, fail_apply_ = -1;  // set before the batches are submitted
  std::mutex mu_;
  Groups prepared_, applied_;  // GUARDED_BY(mu_)
  std::unique_ptr<GroupCommitWriter> writer_;  // last: its threads use the members above
};

std::vector<std::future<Status>> SubmitRange(GroupCommitWriter& w, int first, int last) {
  std::vector<std::future<Status>> out;
  for (int n = first; n <= last; ++n) out.push_back(w.Submit(NumberedBatch(n)));
  return out;
}

// Batches first..last (futures[n - 1] is batch n) failed with an IOError
// saying `message`; every other batch committed.
void ExpectOnlyTheseFailed(std::vector<std::future<Status>>& futures, int first, int last,
                           const std::string& message) {
  for (int n = 1; n <= int(futures.size()); ++n) {
    const Status s = futures[size_t(n - 1)].get();
    if (n >= first && n <= last) {
      EXPECT_EQ(s.code(), Status::Code::kIOError) << n << ": " << s.ToString();
      EXPECT_NE(s.message().find(message), std::string::npos) << s.ToString();
    } else {
      EXPECT_TRUE(s.ok()) << n << ": " << s.ToString();
    }
  }
}

TEST(GroupCommitTest, BatchesQueuedDuringACommitFormOneGroupInSubmitOrder) {
  Harness h;
  auto first = h.Hold();
  auto rest = SubmitRange(h.writer(), 1, 9);
  h.Open();
  EXPECT_TRUE(first.get().ok());
  for (auto& f : rest) EXPECT_TRUE(f.get().ok());
  const Groups want = {{0}, {1, 2, 3, 4, 5, 6, 7, 8, 9}};
  EXPECT_EQ(h.prepared(), want);
  EXPECT_EQ(h.applied(), want);
  const GroupCommitStats st = h.writer().stats();
  EXPECT_EQ(st.groups, 2u);
  EXPECT_EQ(st.batches, 10u);
  EXPECT_EQ(st.failed_batches, 0u);
  EXPECT_EQ(st.max_group_batches, 9u);
  EXPECT_EQ(st.bytes, 10 * kBatchBytes);
}

TEST(GroupCommitTest, GroupsCloseAtMaxGroupBytes) {
  GroupCommitOptions o;
  o.max_group_bytes = 3 * kBatchBytes;  // three batches fit, a fourth does not
  Harness h(o);
  auto first = h.Hold();
  auto rest = SubmitRange(h.writer(), 1, 8);
  h.Open();
  for (auto& f : rest) EXPECT_TRUE(f.get().ok());
  EXPECT_TRUE(first.get().ok());
  const Groups want = {{0}, {1, 2, 3}, {4, 5, 6}, {7, 8}};
  EXPECT_EQ(h.prepared(), want);
  EXPECT_EQ(h.applied(), want);
  EXPECT_EQ(h.writer().stats().groups, 4u);
}

TEST(GroupCommitTest, ABatchLargerThanTheBoundsStillGoesAlone) {
  GroupCommitOptions o;
  o.max_group_bytes = kBatchBytes / 2;
  o.max_queue_bytes = kBatchBytes / 2;  // every batch is larger than the queue bound
  Harness h(o);
  auto first = h.Hold();
  h.Open();
  EXPECT_TRUE(first.get().ok());
  for (int n = 1; n <= 3; ++n) EXPECT_TRUE(h.writer().Write(NumberedBatch(n)).ok());
  EXPECT_EQ(h.applied(), (Groups{{0}, {1}, {2}, {3}}));
}

TEST(GroupCommitTest, BatchesThatMayUseTheLogReserveAreNeverGroupedWithOthers) {
  Harness h;
  auto first = h.Hold();
  std::vector<std::future<Status>> fs;
  fs.push_back(h.writer().Submit(NumberedBatch(1)));
  fs.push_back(h.writer().Submit(NumberedBatch(2)));
  fs.push_back(h.writer().Submit(NumberedDelete(3)));
  fs.push_back(h.writer().Submit(NumberedDelete(4)));
  fs.push_back(h.writer().Submit(NumberedBatch(5)));
  h.Open();
  EXPECT_TRUE(first.get().ok());
  for (auto& f : fs) EXPECT_TRUE(f.get().ok());
  EXPECT_EQ(h.applied(), (Groups{{0}, {1, 2}, {3, 4}, {5}}));
}

TEST(GroupCommitTest, AFailedPrepareFailsEveryBatchOfItsGroupAndNoOther) {
  GroupCommitOptions o;
  o.max_group_bytes = 3 * kBatchBytes;
  Harness h(o);
  h.FailPrepareOf(5);  // in the group {4, 5, 6}
  auto first = h.Hold();
  auto rest = SubmitRange(h.writer(), 1, 9);
  h.Open();
  EXPECT_TRUE(first.get().ok());
  ExpectOnlyTheseFailed(rest, 4, 6, "log append failed at batch 5");
  EXPECT_EQ(h.prepared(), (Groups{{0}, {1, 2, 3}, {4, 5, 6}, {7, 8, 9}}));
  EXPECT_EQ(h.applied(), (Groups{{0}, {1, 2, 3}, {7, 8, 9}})) << "a group whose prepare failed was applied";
  const GroupCommitStats st = h.writer().stats();
  EXPECT_EQ(st.groups, 3u);
  EXPECT_EQ(st.batches, 7u);
  EXPECT_EQ(st.failed_batches, 3u);
}

TEST(GroupCommitTest, AFailedApplyFailsEveryBatchOfItsGroupAndNoOther) {
  GroupCommitOptions o;
  o.max_group_bytes = 3 * kBatchBytes;
  Harness h(o);
  h.FailApplyOf(1);  // in the group {1, 2, 3}; {4, 5, 6} is prepared meanwhile
  auto first = h.Hold();
  auto rest = SubmitRange(h.writer(), 1, 6);
  h.Open();
  EXPECT_TRUE(first.get().ok());
  ExpectOnlyTheseFailed(rest, 1, 3, "commit failed at batch 1");
  EXPECT_EQ(h.applied(), (Groups{{0}, {1, 2, 3}, {4, 5, 6}}));
  EXPECT_EQ(h.writer().stats().failed_batches, 3u);
  // The writer goes on after a failed group.
  EXPECT_TRUE(h.writer().Write(NumberedBatch(7)).ok());
}

TEST(GroupCommitTest, ConcurrentSubmittersEachBatchOnceInPrepareOrder) {
  constexpr int kThreads = 8, kPerThread = 200;
  GroupCommitOptions o;
  o.max_group_bytes = 16 * kBatchBytes;
  o.max_queue_bytes = 32 * kBatchBytes;  // submitters also wait for queue space
  Harness h(o);
  auto first = h.Hold();
  h.Open();
  ASSERT_TRUE(first.get().ok());
  std::vector<std::thread> threads;
  std::vector<std::vector<Status>> results(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::future<Status>> fs;
      for (int i = 0; i < kPerThread; ++i) fs.push_back(h.writer().Submit(NumberedBatch(1 + t * kPerThread + i)));
      for (auto& f : fs) results[size_t(t)].push_back(f.get());
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& rs : results) {
    for (const Status& s : rs) EXPECT_TRUE(s.ok()) << s.ToString();
  }
  const Groups prepared = h.prepared();
  EXPECT_EQ(h.applied(), prepared) << "groups were applied in another order than prepared";
  // Every batch exactly once; each thread's batches in the order it submitted them.
  std::set<int> seen;
  std::vector<int> last(kThreads, 0);
  for (const auto& g : prepared) {
    EXPECT_LE(g.size() * kBatchBytes, o.max_group_bytes);
    for (int n : g) {
      EXPECT_TRUE(seen.insert(n).second) << "batch " << n << " committed twice";
      if (n == 0) continue;
      const int t = (n - 1) / kPerThread;
      EXPECT_GT(n, last[size_t(t)]) << "thread " << t << "'s batches out of order";
      last[size_t(t)] = n;
    }
  }
  EXPECT_EQ(seen.size(), size_t(kThreads * kPerThread + 1));
  EXPECT_EQ(h.writer().stats().batches, uint64_t(kThreads * kPerThread + 1));
}

TEST(GroupCommitTest, ClosingCommitsWhatIsQueued) {
  Harness h;
  auto first = h.Hold();
  auto rest = SubmitRange(h.writer(), 1, 5);
  std::thread closer([&] { h.Close(); });  // waits in the destructor for the held group
  h.Open();
  closer.join();
  EXPECT_TRUE(first.get().ok());
  for (auto& f : rest) EXPECT_TRUE(f.get().ok());
  EXPECT_EQ(h.applied(), (Groups{{0}, {1, 2, 3, 4, 5}}));
}

}  // namespace
}  // namespace mbx
