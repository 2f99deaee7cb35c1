// Disk faults under the transaction log: through the Env seam, the Nth write,
// fsync, truncate or file creation fails (EIO or ENOSPC). For every N up to
// the number of I/O calls of a small workload, writes either succeed or fail
// with a clear error, and after reopening with a healthy disk every
// acknowledged write is there and every batch is whole or absent.
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>

#include "datagen/populate.h"
#include "engine/move_engine.h"
#include "engine/recovery.h"
#include "store/checksum.h"
#include "store/file_io.h"
#include "store/organization.h"
#include "store/store.h"
#include "tests/disk_fault_util.h"
#include "tests/report_figure.h"
#include "tests/test_util.h"

namespace mbx {
namespace {

using testing::TempDir;
using testing::TestGuid;
using testing::TestRecord;

// Counts every I/O call and fails the one numbered `fail_at` (1-based), and
// every later one when `sticky` (a disk that stays broken).
class FaultyEnv final : public Env {
 public:
  FaultyEnv(int fail_at, int err, bool sticky) : fail_at_(fail_at), err_(err), sticky_(sticky) {}
  int calls() const { return calls_.load(); }

  bool Hit() {
    const int n = ++calls_;
    return fail_at_ > 0 && (n == fail_at_ || (sticky_ && n > fail_at_));
  }
  Status Fail(const char* what) { return PosixError(what, "(injected)", err_); }

  class File final : public WritableFile {
   public:
    File(FaultyEnv* env, std::unique_ptr<WritableFile> f) : env_(env), f_(std::move(f)) {}
    Status Append(std::string_view d) override {
      if (env_->Hit()) {
        // A short write first, as a full disk does, then the error.
        (void)f_->Append(d.substr(0, d.size() / 2));
        return env_->Fail("writing");
      }
      return f_->Append(d);
    }
    Status Sync() override { return env_->Hit() ? env_->Fail("syncing") : f_->Sync(); }
    Status Truncate(uint64_t n) override { return env_->Hit() ? env_->Fail("truncating") : f_->Truncate(n); }
    uint64_t Size() const override { return f_->Size(); }

   private:
    FaultyEnv* env_;
    std::unique_ptr<WritableFile> f_;
  };

  Result<std::unique_ptr<WritableFile>> OpenAppendable(const std::string& path) override {
    if (Hit()) return Fail("opening");
    MBX_ASSIGN_OR_RETURN(auto f, Default()->OpenAppendable(path));
    return std::unique_ptr<WritableFile>(std::make_unique<File>(this, std::move(f)));
  }
  Status ReadFile(const std::string& path, std::string* out) override { return Default()->ReadFile(path, out); }
  Status WriteFileAtomic(const std::string& path, std::string_view data, bool sync) override {
    return Hit() ? Fail("writing") : Default()->WriteFileAtomic(path, data, sync);
  }
  Status RemoveFile(const std::string& path) override {
    return Hit() ? Fail("removing") : Default()->RemoveFile(path);
  }
  Status SyncDir(const std::string& dir) override { return Hit() ? Fail("syncing") : Default()->SyncDir(dir); }

 private:
  std::atomic<int> calls_{0};
  int fail_at_;
  int err_;
  bool sticky_;
};

constexpr int kBatches = 24;

WriteBatch Batch(int b) {
  // Three items per batch, so a half-applied batch would show.
  WriteBatch w;
  for (int i = 0; i < 3; ++i) {
    const uint64_t id = uint64_t(b) * 10 + uint64_t(i);
    w.PutItem(TestGuid(1), 1, id, TestRecord(id, 900));
  }
  return w;
}

// Runs the workload on a fresh store whose log fails at call `fail_at`;
// returns which batches were acknowledged.
std::vector<bool> Workload(const std::string& dir, FaultyEnv* env) {
  StoreOptions so;
  so.log.file_bytes = 4096;  // many files: creations, rollovers, removals
  so.log.mode = LogMode::kCircular;
  so.log.sync = SyncMode::kFull;
  EXPECT_TRUE(Store::Create(dir, "S", so).ok());
  std::vector<bool> acked(kBatches, false);
  OpenOptions oo;
  oo.env = env;
  auto s = Store::Open(dir, oo);
  if (!s.ok()) return acked;  // the fault hit while opening: nothing acknowledged
  for (int b = 0; b < kBatches; ++b) {
    Status st = (*s)->Write(Batch(b));
    acked[size_t(b)] = st.ok();
    if (!st.ok()) {
      EXPECT_FALSE(st.message().empty());
      EXPECT_TRUE(st.code() == Status::Code::kIOError || st.code() == Status::Code::kAborted) << st.ToString();
    }
  }
  return acked;
}

void CheckAfterReopen(const std::string& dir, const std::vector<bool>& acked, const std::string& ctx) {
  SCOPED_TRACE(ctx);
  auto s = Store::Open(dir);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto r = (*s)->BeginRead();
  ASSERT_TRUE(r.ok());
  std::map<uint64_t, std::string> items;
  ASSERT_TRUE(r->ForEachItem(TestGuid(1), 1, [&](uint64_t id, std::string_view rec) {
                  items[id] = std::string(rec);
                  return Status::Ok();
                }).ok());
  for (int b = 0; b < kBatches; ++b) {
    int present = 0;
    for (int i = 0; i < 3; ++i) {
      const uint64_t id = uint64_t(b) * 10 + uint64_t(i);
      auto it = items.find(id);
      if (it != items.end()) {
        EXPECT_EQ(it->second, TestRecord(id, 900));
        ++present;
      }
    }
    EXPECT_TRUE(present == 0 || present == 3) << "batch " << b << " is half there";
    if (acked[size_t(b)]) {
      EXPECT_EQ(present, 3) << "acknowledged batch " << b << " lost";
    }
  }
}

TEST(DiskFaultTest, EveryFaultPointLosesNothingAcknowledged) {
  // How many I/O calls the healthy workload makes.
  int total = 0;
  {
    TempDir t;
    FaultyEnv healthy(0, 0, false);
    auto acked = Workload(t / "s", &healthy);
    for (bool a : acked) ASSERT_TRUE(a);
    total = healthy.calls();
    CheckAfterReopen(t / "s", acked, "no fault");
  }
  ASSERT_GT(total, 30);
  int points = 0;
  for (int err : {EIO, ENOSPC}) {
    for (bool sticky : {false, true}) {
      for (int n = 1; n <= total; ++n) {
        TempDir t;
        FaultyEnv env(n, err, sticky);
        auto acked = Workload(t / "s", &env);
        CheckAfterReopen(t / "s", acked,
                         std::string(std::strerror(err)) + (sticky ? " from" : " at") + " call " + std::to_string(n));
        ++points;
      }
    }
  }
  testing::ReportFigure("disk fault points tried: " + std::to_string(points) + " (" + std::to_string(total) +
                        " I/O calls x EIO/ENOSPC x once/sticky)");
}

// A whole move of two mailboxes whose stores' logs fail at their Nth I/O call:
// the move completes or fails cleanly, and after reopening on a healthy disk
// and recovering, every mailbox is active in exactly the store its homeMDB
// names, with the content it had.
TEST(DiskFaultTest, EveryLogFaultDuringARelocationKeepsTheInvariant) {
  TempDir t;
  testing::Relocation relocation;
  ASSERT_OK(relocation.Create(t / "template"));
  auto run = [&](const std::string& dir, Env* env) {
    OpenOptions oo;
    oo.env = env;
    return relocation.Run(dir, oo);
  };
  int total = 0;
  {
    relocation.CopyTo(t / "probe");
    FaultyEnv healthy(0, 0, false);
    const auto r = run(t / "probe", &healthy);
    ASSERT_EQ(r.completed, 2) << testing::JoinLines(r.errors);
    total = healthy.calls();
  }
  ASSERT_GT(total, 10);
  int points = 0, held = 0;
  for (bool sticky : {false, true}) {
    for (int n = 1; n <= total; ++n) {
      const std::string dir = t / ("f" + std::to_string(points));
      relocation.CopyTo(dir);
      {
        FaultyEnv env(n, EIO, sticky);
        const auto r = run(dir, &env);
        for (const auto& e : r.errors) EXPECT_FALSE(e.empty()) << "a move failed without a reason";
      }
      const auto bad = relocation.InvariantViolations(dir);
      EXPECT_TRUE(bad.empty()) << (sticky ? "EIO from" : "EIO at") << " call " << n << ": "
                               << testing::JoinLines(bad);
      held += bad.empty();
      testing::fs::remove_all(dir);
      ++points;
    }
  }
  testing::ReportFigure("move disk fault points tried: " + std::to_string(points) + " (" + std::to_string(total) +
                        " I/O calls of the stores' logs x once/sticky), invariant held: " + std::to_string(held));
}

}  // namespace
}  // namespace mbx
