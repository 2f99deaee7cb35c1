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
#include "store/backup.h"
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
// every later one when `sticky` (a disk that stays broken). Reset() starts
// the count again (to fault only what a later step does).
class FaultyEnv final : public Env {
 public:
  FaultyEnv(int fail_at, int err, bool sticky) : fail_at_(fail_at), err_(err), sticky_(sticky) {}
  int calls() const { return calls_.load(); }
  void Reset(int fail_at, int err, bool sticky) {
    calls_ = 0;
    fail_at_ = fail_at;
    err_ = err;
    sticky_ = sticky;
  }

  bool Hit() {
    const int n = ++calls_;
    const int at = fail_at_.load();
    return at > 0 && (n == at || (sticky_.load() && n > at));
  }
  Status Fail(const char* what) { return PosixError(what, "(injected)", err_.load()); }

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

  class Reader final : public SequentialFile {
   public:
    Reader(FaultyEnv* env, std::unique_ptr<SequentialFile> f) : env_(env), f_(std::move(f)) {}
    Status Read(size_t n, std::string* out) override { return env_->Hit() ? env_->Fail("reading") : f_->Read(n, out); }

   private:
    FaultyEnv* env_;
    std::unique_ptr<SequentialFile> f_;
  };

  Result<std::unique_ptr<WritableFile>> OpenAppendable(const std::string& path) override {
    if (Hit()) return Fail("opening");
    MBX_ASSIGN_OR_RETURN(auto f, Default()->OpenAppendable(path));
    return std::unique_ptr<WritableFile>(std::make_unique<File>(this, std::move(f)));
  }
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    if (Hit()) return Fail("creating");
    MBX_ASSIGN_OR_RETURN(auto f, Default()->NewWritableFile(path));
    return std::unique_ptr<WritableFile>(std::make_unique<File>(this, std::move(f)));
  }
  Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& path) override {
    if (Hit()) return Fail("opening");
    MBX_ASSIGN_OR_RETURN(auto f, Default()->NewSequentialFile(path));
    return std::unique_ptr<SequentialFile>(std::make_unique<Reader>(this, std::move(f)));
  }
  Status ReadFile(const std::string& path, std::string* out) override {
    return Hit() ? Fail("reading") : Default()->ReadFile(path, out);
  }
  Status WriteFileAtomic(const std::string& path, std::string_view data, bool sync) override {
    return Hit() ? Fail("writing") : Default()->WriteFileAtomic(path, data, sync);
  }
  Status RemoveFile(const std::string& path) override {
    if (fail_removals_.load()) return Fail("removing");
    return Hit() ? Fail("removing") : Default()->RemoveFile(path);
  }
  // Every removal fails while set (and is not counted as a call).
  void FailRemovals(bool on) { fail_removals_ = on; }
  Status SyncDir(const std::string& dir) override { return Hit() ? Fail("syncing") : Default()->SyncDir(dir); }
  Status RenameFile(const std::string& from, const std::string& to) override {
    return Hit() ? Fail("renaming") : Default()->RenameFile(from, to);
  }
  Status CreateDir(const std::string& dir) override { return Hit() ? Fail("creating") : Default()->CreateDir(dir); }
  Result<uint64_t> GetFileSize(const std::string& path) override {
    if (Hit()) return Fail("reading size of");
    return Default()->GetFileSize(path);
  }
  Status GetChildren(const std::string& dir, std::vector<std::string>* names) override {
    return Hit() ? Fail("listing") : Default()->GetChildren(dir, names);
  }
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    if (Hit()) return Fail("locking");
    return Default()->LockFile(path);
  }

 private:
  std::atomic<int> calls_{0};
  std::atomic<int> fail_at_;
  std::atomic<int> err_;
  std::atomic<bool> sticky_;
  std::atomic<bool> fail_removals_{false};
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
      EXPECT_TRUE(st.code() == Status::Code::kIOError || st.code() == Status::Code::kAborted ||
                  st.code() == Status::Code::kNoSpace)
          << st.ToString();
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
TEST(DiskFaultTest, ALogFileThatCannotBeRemovedCostsSpaceNotWrites) {
  // Circular logging with removals failing (a file made immutable, say):
  // every write still goes through, the failure is reported, the removal is
  // tried once per new log file rather than before every append, and the
  // first try after the disk heals drops every file the checkpoint passed.
  TempDir t;
  const std::string dir = t.path() + "/s";
  StoreOptions so;
  so.log.file_bytes = 4096;
  so.log.mode = LogMode::kCircular;
  so.log.sync = SyncMode::kFull;
  ASSERT_TRUE(Store::Create(dir, "S", so).ok());
  FaultyEnv env(0, EPERM, false);
  env.FailRemovals(true);
  OpenOptions oo;
  oo.env = &env;
  oo.data_sync_bytes = 4096;  // a data checkpoint (which circular logging removes up to) per log file
  constexpr int kStuck = 80, kHealed = 40;  // about 12 log files, then 6
  std::vector<bool> acked(kBatches, false);
  {
    auto s = Store::Open(dir, oo);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    for (int b = 0; b < kStuck; ++b) {
      Status st = (*s)->Write(Batch(b));
      ASSERT_TRUE(st.ok()) << "batch " << b << ": " << st.ToString();
      if (b < kBatches) acked[size_t(b)] = true;
    }
    LogInfo stuck = (*s)->GetLogInfo();
    ASSERT_GE(stuck.newest_generation, 8u) << "the workload should span many log files";
    EXPECT_GE(stuck.remove_failures, stuck.newest_generation - 3);
    EXPECT_LE(stuck.remove_failures, stuck.newest_generation) << "tried once per log file at most";
    EXPECT_NE(stuck.remove_error.find("removing"), std::string::npos) << stuck.remove_error;
    EXPECT_NE(stuck.remove_error.find("(injected)"), std::string::npos) << stuck.remove_error;
    EXPECT_EQ(stuck.oldest_generation, 1u) << "files the checkpoint passed are kept";
    EXPECT_EQ(stuck.file_count, stuck.newest_generation);

    env.FailRemovals(false);
    for (int b = kStuck; b < kStuck + kHealed; ++b) {
      Status st = (*s)->Write(Batch(b));
      ASSERT_TRUE(st.ok()) << "batch " << b << ": " << st.ToString();
    }
    LogInfo healed = (*s)->GetLogInfo();
    EXPECT_EQ(healed.remove_error, "");
    EXPECT_EQ(healed.remove_failures, stuck.remove_failures);
    EXPECT_LE(healed.file_count, 3u) << "the first removal after healing drops what the checkpoint passed";
    EXPECT_GT(healed.oldest_generation, stuck.newest_generation - 1);
  }
  CheckAfterReopen(dir, acked, "removals failed, then healed");
  auto s = Store::Open(dir);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto r = (*s)->BeginRead();
  ASSERT_TRUE(r.ok());
  int items = 0;
  ASSERT_TRUE(r->ForEachItem(TestGuid(1), 1, [&](uint64_t id, std::string_view rec) {
                  EXPECT_EQ(rec, TestRecord(id, 900));
                  ++items;
                  return Status::Ok();
                }).ok());
  EXPECT_EQ(items, 3 * (kStuck + kHealed));
}

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

// --- backup and restore ---------------------------------------------------

// Every item of item folder 1 of mailbox TestGuid(1), read with a healthy disk.
std::map<uint64_t, std::string> ItemsOf(const std::string& dir, std::string* error) {
  std::map<uint64_t, std::string> items;
  auto s = Store::Open(dir);
  if (!s.ok()) {
    *error = "opening " + dir + ": " + s.status().ToString();
    return items;
  }
  auto r = (*s)->BeginRead();
  if (!r.ok()) {
    *error = r.status().ToString();
    return items;
  }
  Status st = r->ForEachItem(TestGuid(1), 1, [&](uint64_t id, std::string_view rec) {
    items[id] = std::string(rec);
    return Status::Ok();
  });
  if (!st.ok()) *error = st.ToString();
  return items;
}

// A store in backup-flush mode with small log files in t/tpl/s, a full
// backup of it in t/tpl/full after `kBatches / 2` batches, then the other
// batches (kept in the log, the newest ones past an incremental backup in
// t/tpl/inc when `with_incremental`), all taken with a healthy disk.
void MakeBackupTemplate(const std::string& tpl, bool with_incremental) {
  StoreOptions so;
  so.log.file_bytes = 4096;
  so.log.sync = SyncMode::kFull;
  testing::fs::create_directories(tpl);
  ASSERT_OK(Store::Create(tpl + "/s", "S", so));
  auto s = Store::Open(tpl + "/s");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  for (int b = 0; b < kBatches / 2; ++b) ASSERT_OK((*s)->Write(Batch(b)));
  ASSERT_TRUE((*s)->Backup(tpl + "/full", false).ok());
  for (int b = kBatches / 2; b < kBatches; ++b) ASSERT_OK((*s)->Write(Batch(b)));
  if (with_incremental) {
    auto inc = (*s)->Backup(tpl + "/inc", true);
    ASSERT_TRUE(inc.ok()) << inc.status().ToString();
    ASSERT_GT(inc->log_files_copied, 0);
  }
}

// A backup (full, then incremental) whose every I/O call in turn fails once,
// or from then on: the backup either succeeds or fails with a message; the
// store it was taken from is unchanged after reopening on a healthy disk;
// and the backup either restores to exactly that content or is refused at
// restore: never half a backup restored.
TEST(DiskFaultTest, EveryFaultDuringABackupLeavesTheStoreWholeAndTheBackupWholeOrRefused) {
  for (bool incremental : {false, true}) {
    SCOPED_TRACE(incremental ? "incremental" : "full");
    TempDir t;
    const std::string tpl = t / "tpl";
    // The incremental case starts from a store with a full backup and later
    // writes; the full case from the same store.
    MakeBackupTemplate(tpl, /*with_incremental=*/false);
    std::string error;
    const auto expected = ItemsOf(tpl + "/s", &error);
    ASSERT_TRUE(error.empty()) << error;
    ASSERT_EQ(expected.size(), size_t(kBatches) * 3);
    int backup_calls = 0;
    auto run = [&](const std::string& dir, FaultyEnv* env, int fail_at, int err, bool sticky) {
      testing::fs::copy(tpl, dir, testing::fs::copy_options::recursive);
      OpenOptions oo;
      oo.env = env;
      auto s = Store::Open(dir + "/s", oo);
      EXPECT_TRUE(s.ok()) << s.status().ToString();
      if (!s.ok()) return Status::Internal("open");
      env->Reset(fail_at, err, sticky);  // fault the backup only
      auto b = (*s)->Backup(dir + "/out", incremental);
      backup_calls = env->calls();
      env->Reset(0, 0, false);
      if (!b.ok()) {
        EXPECT_FALSE(b.status().message().empty());
      }
      return b.status();
    };
    int total = 0;
    {
      FaultyEnv healthy(0, 0, false);
      ASSERT_OK(run(t / "probe", &healthy, 0, 0, false));
      total = backup_calls;
    }
    ASSERT_GT(total, 8);
    int points = 0, refused = 0;
    for (int err : {EIO, ENOSPC}) {
      for (bool sticky : {false, true}) {
        for (int n = 1; n <= total + 1; ++n) {
          const std::string ctx = std::string(std::strerror(err)) + (sticky ? " from" : " at") + " call " +
                                  std::to_string(n);
          SCOPED_TRACE(ctx);
          const std::string dir = t / ("p" + std::to_string(points++));
          FaultyEnv env(0, 0, false);
          const Status backup = run(dir, &env, n, err, sticky);
          // The store backed up is unchanged.
          std::string e;
          EXPECT_EQ(ItemsOf(dir + "/s", &e), expected);
          EXPECT_TRUE(e.empty()) << e;
          // The backup restores whole, or is refused.
          std::vector<std::string> backups = {dir + "/out"};
          if (incremental) backups.insert(backups.begin(), dir + "/full");
          auto r = RestoreStore(dir + "/restored", "S", backups);
          if (backup.ok()) {
            EXPECT_TRUE(r.ok()) << "a backup reported whole does not restore: " << r.status().ToString();
          }
          if (r.ok()) {
            std::string re;
            EXPECT_EQ(ItemsOf(dir + "/restored", &re), expected) << "a restored backup differs from the store";
            EXPECT_TRUE(re.empty()) << re;
          } else {
            ++refused;
            EXPECT_FALSE(r.status().message().empty());
          }
          testing::fs::remove_all(dir);
        }
      }
    }
    testing::ReportFigure(std::string("backup disk fault points tried (") + (incremental ? "incremental" : "full") +
                          "): " + std::to_string(points) + " (" + std::to_string(total) +
                          " I/O calls x EIO/ENOSPC x once/sticky), backups refused at restore: " +
                          std::to_string(refused));
  }
}

// A restore (a full and an incremental backup, over the store's folder whose
// database was lost) whose every I/O call in turn fails once, or from then
// on: it succeeds with the whole content or fails with a message; the backup
// folders are unchanged, and a restore on a healthy disk then succeeds.
TEST(DiskFaultTest, EveryFaultDuringARestoreFailsCleanlyAndARetrySucceeds) {
  TempDir t;
  const std::string tpl = t / "tpl";
  MakeBackupTemplate(tpl, /*with_incremental=*/true);
  std::string error;
  const auto expected = ItemsOf(tpl + "/s", &error);
  ASSERT_TRUE(error.empty()) << error;
  testing::fs::remove(tpl + "/s/data.mdb");  // the disaster restore repairs
  auto backup_digest = [](const std::string& dir) {
    std::map<std::string, uint64_t> sums;
    for (const auto& e : testing::fs::recursive_directory_iterator(dir)) {
      if (!e.is_regular_file()) continue;
      uint64_t sum = 0, bytes = 0;
      EXPECT_OK(HashFile(Env::Default(), e.path().string(), &sum, &bytes));
      sums[e.path().string().substr(dir.size())] = sum;
    }
    return sums;
  };
  auto run = [&](const std::string& dir, Env* env) {
    testing::fs::copy(tpl, dir, testing::fs::copy_options::recursive);
    return RestoreStore(dir + "/s", "S", {dir + "/full", dir + "/inc"}, env);
  };
  int total = 0;
  {
    FaultyEnv healthy(0, 0, false);
    auto r = run(t / "probe", &healthy);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_TRUE(r->rolled_forward);
    std::string e;
    ASSERT_EQ(ItemsOf(t / "probe/s", &e), expected) << e;
    total = healthy.calls();
  }
  ASSERT_GT(total, 10);
  int points = 0, failed = 0;
  for (int err : {EIO, ENOSPC}) {
    for (bool sticky : {false, true}) {
      for (int n = 1; n <= total + 1; ++n) {
        SCOPED_TRACE(std::string(std::strerror(err)) + (sticky ? " from" : " at") + " call " + std::to_string(n));
        const std::string dir = t / ("p" + std::to_string(points++));
        const auto full_before = backup_digest(tpl + "/full");
        const auto inc_before = backup_digest(tpl + "/inc");
        FaultyEnv env(n, err, sticky);
        auto r = run(dir, &env);
        if (r.ok()) {
          std::string e;
          EXPECT_EQ(ItemsOf(dir + "/s", &e), expected);
          EXPECT_TRUE(e.empty()) << e;
        } else {
          ++failed;
          EXPECT_FALSE(r.status().message().empty());
        }
        EXPECT_EQ(backup_digest(dir + "/full"), full_before) << "restore changed the full backup";
        EXPECT_EQ(backup_digest(dir + "/inc"), inc_before) << "restore changed the incremental backup";
        auto again = RestoreStore(dir + "/s", "S", {dir + "/full", dir + "/inc"});
        EXPECT_TRUE(again.ok()) << "a restore after a failed one: " << again.status().ToString();
        std::string e;
        EXPECT_EQ(ItemsOf(dir + "/s", &e), expected);
        EXPECT_TRUE(e.empty()) << e;
        testing::fs::remove_all(dir);
      }
    }
  }
  testing::ReportFigure("restore disk fault points tried: " + std::to_string(points) + " (" + std::to_string(total) +
                        " I/O calls x EIO/ENOSPC x once/sticky), restores that failed cleanly: " +
                        std::to_string(failed));
}

}  // namespace
}  // namespace mbx
