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
  std::printf("disk fault points tried: %d (%d I/O calls x EIO/ENOSPC x once/sticky)\n", points, total);
}

// mailbox -> (store where it is active, checksum); "" when active nowhere,
// "*" when active in two stores.
std::map<Guid, std::pair<std::string, uint64_t>> ActiveCopies(Organization& org) {
  std::map<Guid, std::pair<std::string, uint64_t>> out;
  for (const std::string name : {"MS1", "MS2"}) {
    auto s = org.GetStore(name);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (!s.ok()) continue;
    auto r = (*s)->BeginRead();
    std::vector<MailboxInfo> ms;
    EXPECT_TRUE(r->ListMailboxes(&ms).ok());
    for (const auto& m : ms) {
      if (m.state != MailboxState::kActive) continue;
      auto d = DigestMailbox(*r, m.guid);
      auto& slot = out[m.guid];
      slot = {slot.first.empty() ? name : "*", d.ok() ? d->checksum : 0};
    }
  }
  return out;
}

// A whole move of two mailboxes whose stores' logs fail at their Nth I/O call:
// the move completes or fails cleanly, and after reopening on a healthy disk
// and recovering, every mailbox is active in exactly the store its homeMDB
// names, with the content it had.
TEST(DiskFaultTest, EveryLogFaultDuringARelocationKeepsTheInvariant) {
  TempDir t;
  const std::string tmpl = t / "template";
  std::map<Guid, std::pair<std::string, uint64_t>> before;
  std::vector<std::string> users;
  {
    auto org = Organization::OpenOrCreate(tmpl);
    ASSERT_TRUE(org.ok());
    StoreOptions src;
    src.log.mode = LogMode::kCircular;
    ASSERT_OK((*org)->CreateStore("MS1", "SERVER1", src));
    StoreOptions dst;
    dst.log.file_bytes = 16384;
    dst.log.sync = SyncMode::kFull;
    ASSERT_OK((*org)->CreateStore("MS2", "SERVER2", dst));
    datagen::PopulateOptions po;
    po.gen.seed = 3;
    po.gen.mailboxes = 4;
    po.gen.total_bytes = 400 << 10;
    ASSERT_TRUE(datagen::Populate(**org, "MS1", po, nullptr).ok());
    before = ActiveCopies(**org);
    std::vector<UserRecord> us;
    ASSERT_OK((*org)->directory().ListUsers(&us));
    users = {us[0].name, us[1].name};
  }
  auto run = [&](const std::string& dir, Env* env) {
    OpenOptions oo;
    oo.env = env;
    auto org = Organization::Open(dir, oo);
    if (!org.ok()) return;
    engine::MoveRequest req;
    req.mailboxes = users;
    req.options.target = "MS2";
    req.options.concurrency = 2;
    req.options.batch_bytes = 16 << 10;
    auto plan = engine::PlanMoves(**org, req);
    if (!plan.ok()) return;
    engine::MoveCounters c;
    (void)engine::RunMoves(**org, *plan, req.options, &c);
  };
  int total = 0;
  {
    testing::fs::copy(tmpl, t / "probe", testing::fs::copy_options::recursive);
    FaultyEnv healthy(0, 0, false);
    run(t / "probe", &healthy);
    total = healthy.calls();
  }
  ASSERT_GT(total, 10);
  int points = 0;
  for (bool sticky : {false, true}) {
    for (int n = 1; n <= total; ++n) {
      const std::string dir = t / ("f" + std::to_string(points));
      testing::fs::copy(tmpl, dir, testing::fs::copy_options::recursive);
      {
        FaultyEnv env(n, EIO, sticky);
        run(dir, &env);
      }
      SCOPED_TRACE(std::string(sticky ? "EIO from" : "EIO at") + " call " + std::to_string(n));
      auto org = Organization::Open(dir);
      ASSERT_TRUE(org.ok()) << org.status().ToString();
      auto rec = engine::Recover(**org);
      ASSERT_TRUE(rec.ok()) << rec.status().ToString();
      EXPECT_TRUE(rec->all_done());
      auto after = ActiveCopies(**org);
      ASSERT_EQ(after.size(), before.size());
      for (const auto& [g, w] : before) {
        EXPECT_NE(after[g].first, "") << g.ToString() << " is active nowhere";
        EXPECT_NE(after[g].first, "*") << g.ToString() << " is active twice";
        EXPECT_EQ(after[g].second, w.second) << g.ToString() << " changed";
        auto u = (*org)->directory().GetUserByMailbox(g);
        ASSERT_TRUE(u.ok());
        EXPECT_EQ(u->home_mdb, (*org)->directory().GetStore(after[g].first)->dn);
      }
      testing::fs::remove_all(dir);
      ++points;
    }
  }
  std::printf("move disk fault points tried: %d (%d I/O calls of the stores' logs x once/sticky)\n", points, total);
}

}  // namespace
}  // namespace mbx
