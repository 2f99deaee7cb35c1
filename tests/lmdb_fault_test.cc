// Disk faults under LMDB's own I/O: the Nth write, sync or read that
// liblmdb.so makes on a data.mdb fails (EIO once, or ENOSPC from then on),
// through the interposer of lmdb_fault_interpose.h. For every N up to the
// number of such calls in a small two-mailbox move, the move completes or
// fails with a clear error, and after reopening on a healthy disk and
// recovering, the invariant holds.
//
// Not built in the TSan configuration (see tests/CMakeLists.txt), so the
// TSan run's name filter in tools/dev.sh never selects these tests.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "store/directory.h"
#include "store/store.h"
#include "tests/disk_fault_util.h"
#include "tests/lmdb_fault_interpose.h"
#include "tests/report_figure.h"
#include "tests/test_util.h"

namespace mbx {
namespace {

using testing::JoinLines;
using testing::TempDir;
using testing::TestGuid;
using testing::TestRecord;
namespace lf = testing::lmdb_fault;

// The tests of a failed commit sync: each commit syncs data.mdb. (With
// deferred data syncs, the default, see DeferredDataSyncs* below.)
OpenOptions EveryCommitSynced() {
  OpenOptions oo;
  oo.data_sync_bytes = 0;
  return oo;
}

OpenOptions DataCheckpointEveryGroup() {
  OpenOptions oo;
  oo.data_sync_bytes = 1;
  return oo;
}

WriteBatch Item900(uint64_t id) {
  WriteBatch b;
  b.PutItem(TestGuid(1), 1, id, TestRecord(id, 900));
  return b;
}

// Reopens the store at `dir` (as after a failure), writes item `id` and
// returns the ids of the items it then holds, each checked whole.
std::vector<uint64_t> ReopenWriteAndList(const std::string& dir, uint64_t id) {
  std::vector<uint64_t> ids;
  auto s = Store::Open(dir);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (!s.ok()) return ids;
  EXPECT_OK((*s)->Write(Item900(id)));
  auto r = (*s)->BeginRead();
  EXPECT_TRUE(r.ok());
  if (!r.ok()) return ids;
  EXPECT_OK(r->ForEachItem(TestGuid(1), 1, [&](uint64_t item, std::string_view rec) {
    EXPECT_EQ(rec, TestRecord(item, 900));
    ids.push_back(item);
    return Status::Ok();
  }));
  return ids;
}

constexpr uint64_t kMaxPointsPerMode = 300;

// Call numbers to fail: every one of 1..total, or, when there are more than
// `max`, one drawn at random (fixed seed) from each of `max` equal slices.
std::vector<uint64_t> FaultPoints(uint64_t total, uint64_t max) {
  std::vector<uint64_t> out;
  if (total <= max) {
    for (uint64_t n = 1; n <= total; ++n) out.push_back(n);
    return out;
  }
  std::mt19937_64 rng(20261124);
  for (uint64_t i = 0; i < max; ++i) {
    const uint64_t lo = 1 + i * total / max, hi = (i + 1) * total / max;  // slice [lo, hi]
    out.push_back(lo + rng() % (hi - lo + 1));
  }
  return out;
}

TEST(LmdbFaultTest, EveryDataFileFaultDuringARelocationKeepsTheInvariant) {
  TempDir t;
  testing::Relocation relocation;
  ASSERT_OK(relocation.Create(t / "template"));

  // The healthy move: how many data.mdb calls it makes (and proof that the
  // interposer sees LMDB's calls at all).
  lf::Tally probe;
  {
    relocation.CopyTo(t / "probe");
    lf::Armed armed(t / "probe", lf::Plan{});
    const auto r = relocation.Run(t / "probe");
    probe = armed.Stop();
    ASSERT_EQ(r.completed, 2) << JoinLines(r.errors);
    const auto bad = relocation.InvariantViolations(t / "probe");
    ASSERT_TRUE(bad.empty()) << JoinLines(bad);
  }
  ASSERT_GT(probe.writes, 20u) << "the interposer does not see LMDB's writes";
  ASSERT_GT(probe.syncs, 10u) << "the interposer does not see LMDB's syncs";
  ASSERT_GT(probe.reads, 0u) << "the interposer does not see LMDB's reads";
  const std::vector<uint64_t> points = FaultPoints(probe.total(), kMaxPointsPerMode);

  int tried = 0, completed = 0, failed_cleanly = 0, not_reached = 0, held = 0;
  for (const bool sticky : {false, true}) {
    for (const uint64_t n : points) {
      const std::string dir = t / ("f" + std::to_string(tried));
      relocation.CopyTo(dir);
      const lf::Plan plan{n, sticky ? ENOSPC : EIO, sticky};
      const std::string ctx = std::string(sticky ? "ENOSPC from" : "EIO at") + " call " + std::to_string(n);
      testing::RelocationRun r;
      lf::Tally tally;
      {
        lf::Armed armed(dir, plan);
        r = relocation.Run(dir);
        tally = armed.Stop();
      }
      // The threads interleave differently from run to run: a point near the
      // end may not be reached.
      not_reached += tally.failed == 0;
      EXPECT_EQ(r.dropped, 0u) << ctx;
      bool clean = !r.errors.empty() || r.completed == 2;
      for (const auto& e : r.errors) clean = clean && !e.empty();
      EXPECT_TRUE(clean) << ctx << " (" << tally.first_failed << "): a move failed without a reason";
      if (r.completed == 2) {
        ++completed;
      } else if (clean) {
        ++failed_cleanly;
      }
      const auto bad = relocation.InvariantViolations(dir);
      EXPECT_TRUE(bad.empty()) << ctx << " (" << tally.first_failed << "): " << JoinLines(bad)
                               << "\nthe move said: " << JoinLines(r.errors);
      held += bad.empty();
      testing::fs::remove_all(dir);
      ++tried;
    }
  }
  testing::ReportFigure(
      "lmdb fault points: " + std::to_string(tried) + " tried (" + std::to_string(probe.total()) +
      " data.mdb calls in the move: writes " + std::to_string(probe.writes) + ", syncs " +
      std::to_string(probe.syncs) + ", reads " + std::to_string(probe.reads) + "; " +
      (probe.total() > kMaxPointsPerMode ? std::to_string(points.size()) + " sampled evenly" : "each") +
      " x EIO once/ENOSPC for good), moves completed " + std::to_string(completed) + ", failed cleanly " +
      std::to_string(failed_cleanly) + ", invariant held " + std::to_string(held) +
      (not_reached ? " (not reached: " + std::to_string(not_reached) + ")" : ""));
}

// Regression: Directory::SwitchHome commits and then syncs. When only the
// sync failed, the move used to roll back although homeMDB already named the
// target, leaving the user's homeMDB pointing at a store whose copy had just
// been deleted. Every directory call of the move (one mailbox at a time, so
// that they come in a fixed order) fails once here; two of them are the
// syncs of the switches, and the invariant must hold after recover.
TEST(LmdbFaultTest, FailedDirectorySyncAfterTheSwitchLeavesTheMoveToRecover) {
  TempDir t;
  testing::Relocation relocation;
  ASSERT_OK(relocation.Create(t / "template"));
  lf::Tally probe;
  {
    relocation.CopyTo(t / "probe");
    lf::Armed armed(t / "probe/directory", lf::Plan{});
    ASSERT_EQ(relocation.Run(t / "probe", {}, 1).completed, 2);
    probe = armed.Stop();
  }
  ASSERT_GT(probe.syncs, 4u);
  int left_to_recover = 0;
  for (uint64_t n = 1; n <= probe.total(); ++n) {
    const std::string dir = t / ("d" + std::to_string(n));
    relocation.CopyTo(dir);
    testing::RelocationRun r;
    lf::Tally tally;
    {
      lf::Armed armed(dir + "/directory", lf::Plan{n, EIO, false});
      r = relocation.Run(dir, {}, 1);
      tally = armed.Stop();
    }
    for (const auto& e : r.errors) left_to_recover += e.find("the switch may have happened") != std::string::npos;
    const auto bad = relocation.InvariantViolations(dir);
    EXPECT_TRUE(bad.empty()) << tally.first_failed << ": " << JoinLines(bad) << "\nthe move said: " << JoinLines(r.errors);
    testing::fs::remove_all(dir);
  }
  // The syncs of the two switches, and the writes of their meta pages (which
  // leave the directory unreadable until reopened), end that way.
  EXPECT_GE(left_to_recover, 2) << "the faults did not hit the syncs of the two homeMDB switches";
}

// Once writing a meta page fails, LMDB refuses every transaction of that
// environment (MDB_PANIC). The store then fails each write and read with a
// clear error, closes without hanging, and after reopening holds exactly the
// acknowledged writes: the failed batch, whose record the log took back, is
// not replayed.
TEST(LmdbFaultTest, AStoreWhoseMetaPageWriteFailedRefusesWritesUntilReopened) {
  TempDir t;
  ASSERT_OK(Store::Create(t / "probe", "S", StoreOptions{}));
  testing::fs::copy(t / "probe", t / "s", testing::fs::copy_options::recursive);
  auto batch = [](uint64_t id) {
    WriteBatch b;
    b.PutItem(TestGuid(1), 1, id, TestRecord(id, 900));
    return b;
  };
  // How many data.mdb calls the first commit makes; its last is the meta page.
  uint64_t calls = 0;
  {
    auto s = Store::Open(t / "probe", EveryCommitSynced());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    lf::Armed armed(t / "probe", lf::Plan{});
    ASSERT_OK((*s)->Write(batch(1)));
    calls = armed.Stop().total();
  }
  ASSERT_GE(calls, 3u);  // pages, fdatasync, meta page
  {
    auto s = Store::Open(t / "s", EveryCommitSynced());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    lf::Armed armed(t / "s", lf::Plan{calls, EIO, false});
    const Status first = (*s)->Write(batch(1));
    const lf::Tally tally = armed.Stop();
    ASSERT_EQ(tally.failed, 1u);
    EXPECT_EQ(tally.first_failed.rfind("pwrite", 0), 0u) << tally.first_failed;
    EXPECT_FALSE(first.ok());
    EXPECT_NE(first.message().find(std::strerror(EIO)), std::string::npos) << first.ToString();
    const Status second = (*s)->Write(batch(2));
    EXPECT_FALSE(second.ok());
    EXPECT_NE(second.message().find("reopen"), std::string::npos) << second.ToString();
    auto r = (*s)->BeginRead();
    EXPECT_FALSE(r.ok());
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("reopen"), std::string::npos) << r.status().ToString();
    }
  }
  EXPECT_EQ(ReopenWriteAndList(t / "s", 3), std::vector<uint64_t>{3}) << "a write reported as failed was applied";
}

// Fails the fdatasync of data.mdb that the second write of a store opened
// with `oo` makes (its commit's, or its data checkpoint's), found by a probe
// of the same writes, and checks that the store refuses later writes, Flush
// and reads, naming the reopen (the disk works again: the store must not
// believe it). Returns the failed write's status.
Status FailTheSecondWritesDataSync(const TempDir& t, const OpenOptions& oo) {
  StoreOptions so;
  so.log.sync = SyncMode::kFull;
  EXPECT_OK(Store::Create(t / "probe", "S", so));
  testing::fs::copy(t / "probe", t / "s", testing::fs::copy_options::recursive);
  uint64_t sync_call = 0;
  {
    auto s = Store::Open(t / "probe", oo);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (!s.ok()) return s.status();
    EXPECT_OK((*s)->Write(Item900(1)));
    lf::Armed armed(t / "probe", lf::Plan{});
    EXPECT_OK((*s)->Write(Item900(2)));
    const lf::Tally tally = armed.Stop();
    EXPECT_EQ(tally.syncs, 1u);
    // Every commit synced: pages, fdatasync, meta page. A data checkpoint:
    // pages and meta page, fdatasync, then reads of the meta and root pages.
    sync_call = tally.reads > 0 ? tally.total() - tally.reads : tally.total() - 1;
  }
  auto s = Store::Open(t / "s", oo);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (!s.ok()) return s.status();
  EXPECT_OK((*s)->Write(Item900(1)));
  lf::Armed armed(t / "s", lf::Plan{sync_call, EIO, false});
  const Status second = (*s)->Write(Item900(2));
  const lf::Tally tally = armed.Stop();
  EXPECT_EQ(tally.failed, 1u);
  EXPECT_EQ(tally.first_failed.rfind("fdatasync", 0), 0u) << tally.first_failed;
  const Status next = (*s)->Write(Item900(3));
  EXPECT_FALSE(next.ok());
  EXPECT_NE(next.message().find("reopen"), std::string::npos) << next.ToString();
  const Status flush = (*s)->Flush();
  EXPECT_FALSE(flush.ok());
  EXPECT_NE(flush.message().find("reopen"), std::string::npos) << flush.ToString();
  // Nor read as if it held what it acknowledged (see Store::BeginRead).
  auto r = (*s)->BeginRead();
  EXPECT_FALSE(r.ok()) << "a read after a failed data sync was trusted";
  if (!r.ok()) {
    EXPECT_NE(r.status().message().find("reopen"), std::string::npos) << r.status().ToString();
  }
  return second;
}

// A failed fdatasync of data.mdb is fatal to what it covered: the kernel may
// have dropped those pages (and the previous commit's meta page, which
// NOMETASYNC leaves to this sync) and cleared the error, so a retry would
// "succeed" over lost data. The store refuses every later write, naming the
// reopen, until it is reopened; the reopened store recovers from the log and
// holds exactly the acknowledged writes.
TEST(LmdbFaultTest, AStoreWhoseDataSyncFailedRefusesWritesUntilReopened) {
  TempDir t;
  const Status failed = FailTheSecondWritesDataSync(t, EveryCommitSynced());
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(ReopenWriteAndList(t / "s", 4), (std::vector<uint64_t>{1, 4}))
      << "a write reported as failed was applied, or one acknowledged was lost";
}

// With deferred data syncs a failed sync of data.mdb at a data checkpoint is
// as fatal: the kernel may have dropped every page written since the last
// one. The store refuses later writes, Flush and reads, naming the reopen;
// the reopen puts data.mdb back at the last saved data checkpoint and
// replays the log, so it holds every write the log took (the group that
// called for the checkpoint was committed and logged first).
TEST(LmdbFaultTest, AStoreWhoseDataCheckpointSyncFailedRefusesWritesUntilReopened) {
  TempDir t;
  const Status logged = FailTheSecondWritesDataSync(t, DataCheckpointEveryGroup());
  EXPECT_OK(logged);  // committed and logged before the checkpoint
  EXPECT_TRUE(testing::fs::exists(t / "s/data.ckpt")) << "the close of a broken store keeps its data checkpoint";
  EXPECT_EQ(ReopenWriteAndList(t / "s", 4), (std::vector<uint64_t>{1, 2, 4}))
      << "a refused write was applied, or a logged one lost";
}

// A failed sync of the directory's data.mdb may have dropped the previous
// commit's meta page (NOMETASYNC leaves it to this sync), and LMDB's readers
// pick the meta page by the last committed transaction's number, so they
// would read the state of two commits back: older than what a reopen finds.
// A mover deciding on such a read whether its homeMDB switch happened rolled
// back a switched move (found by the power-loss campaign: FailedSyncTest).
// So once a commit's sync fails, reads are refused too, naming the reopen;
// the reopened directory holds what was synced, and is read and written again.
TEST(LmdbFaultTest, ADirectoryWhoseSyncFailedRefusesReadsUntilReopened) {
  TempDir t;
  auto record = [](uint8_t n) {
    MoveRecord m;
    m.mailbox = TestGuid(n);
    m.user = "user" + std::to_string(n);
    m.source = "MS1";
    m.target = "MS2";
    return m;
  };
  // Which data.mdb call of a CreateMove is its last: the sync that makes the
  // record durable (after its pages, the commit's sync and its meta page).
  uint64_t sync_call = 0;
  {
    auto d = Directory::OpenLmdb(t / "probe", true);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    ASSERT_OK((*d)->CreateMove(record(1)));
    lf::Armed armed(t / "probe", lf::Plan{});
    ASSERT_OK((*d)->CreateMove(record(2)));
    const lf::Tally tally = armed.Stop();
    ASSERT_EQ(tally.syncs, 2u);
    sync_call = tally.total();
  }
  {
    auto d = Directory::OpenLmdb(t / "dir", true);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    ASSERT_OK((*d)->CreateMove(record(1)));
    lf::Armed armed(t / "dir", lf::Plan{sync_call, EIO, false});
    const Status failed = (*d)->CreateMove(record(2));
    const lf::Tally tally = armed.Stop();
    ASSERT_EQ(tally.failed, 1u);
    EXPECT_EQ(tally.first_failed.rfind("fdatasync", 0), 0u) << tally.first_failed;
    EXPECT_FALSE(failed.ok());
    // The disk works again; the directory must not be read as if it did.
    auto got = (*d)->GetMove(TestGuid(1));
    EXPECT_FALSE(got.ok()) << "a read after a failed sync was trusted";
    if (!got.ok()) {
      EXPECT_NE(got.status().message().find("reopen"), std::string::npos) << got.status().ToString();
    }
    std::vector<MoveRecord> moves;
    const Status listed = (*d)->ListMoves(&moves);
    EXPECT_FALSE(listed.ok());
    EXPECT_FALSE((*d)->CreateMove(record(3)).ok());
  }
  auto d = Directory::OpenLmdb(t / "dir", false);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  auto got = (*d)->GetMove(TestGuid(1));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->user, "user1");
  // (The second record may be there or not: its commit went through, its sync failed.)
  auto second = (*d)->GetMove(TestGuid(2));
  EXPECT_TRUE(second.ok() || second.status().IsNotFound()) << second.status().ToString();
  EXPECT_OK((*d)->CreateMove(record(3)));
}

}  // namespace
}  // namespace mbx
