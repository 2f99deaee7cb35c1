// Migration batches (engine/batch_runner.h, `mbxmove batch`): members
// synced under client load and completed with every acknowledged operation;
// stop, --cancel-after and --complete-after; the batch's state surviving a
// kill -9 of its runner, recover putting the members back, a second start
// finishing them; bad input refused with nothing changed.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "engine/batch_runner.h"
#include "engine/client_load.h"
#include "engine/queue_mover.h"
#include "engine/recovery.h"
#include "tests/interposed_directory.h"
#include "tests/load_journal.h"
#include "tests/move_fixture.h"
#include "tests/test_util.h"

namespace mbx {
namespace {

using json = nlohmann::json;
using testing::Child;
using testing::Mbxmove;
using testing::RunCommand;
using testing::RunJson;
using testing::TempDir;
using testing::WaitFor;
using namespace testing::journal;
namespace fs = std::filesystem;

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::vector<engine::PlannedMove> PlanAll(Organization& org) {
  engine::MoveRequest req;
  req.from_store = "MS1";
  req.options.target = "MS2";
  auto plan = engine::PlanMoves(org, req);
  EXPECT_TRUE(plan.ok()) << plan.status().ToString();
  return plan.ok() ? *plan : std::vector<engine::PlannedMove>{};
}

engine::BatchRunOptions Named(const std::string& name) {
  engine::BatchRunOptions o;
  o.name = name;
  return o;
}

BatchRecord NewBatch(const std::string& name) {
  BatchRecord b;
  b.name = name;
  b.target = "MS2";
  b.concurrency = 3;
  b.sync_interval_ms = 40;
  return b;
}

// The batch's members (a copy: safe to loop over).
std::vector<BatchMember> Members(Directory& dir, const std::string& name) {
  auto b = dir.GetBatch(name);
  EXPECT_TRUE(b.ok()) << b.status().ToString();
  return b.ok() ? b->members : std::vector<BatchMember>{};
}

// Every member in `state` with at least `passes` passes.
bool AllMembers(Directory& dir, const std::string& name, MemberState state, uint32_t passes = 0) {
  auto b = dir.GetBatch(name);
  if (!b.ok()) return false;
  for (const auto& m : b->members) {
    if (m.state != state || m.passes < passes) return false;
  }
  return true;
}

// Every mailbox active, untracked and in MS1 only, as before the batch.
void ExpectAllInSource(Organization& org, size_t n) {
  auto ms1 = org.GetHandle("MS1");
  auto ms2 = org.GetHandle("MS2");
  ASSERT_TRUE(ms1.ok() && ms2.ok());
  std::vector<MailboxInfo> in1, in2;
  ASSERT_OK((*ms1)->ListMailboxes(&in1));
  ASSERT_OK((*ms2)->ListMailboxes(&in2));
  EXPECT_EQ(in1.size(), n);
  EXPECT_TRUE(in2.empty()) << in2.size() << " mailbox(es) left on the target";
  for (const auto& m : in1) {
    EXPECT_EQ(m.state, MailboxState::kActive);
    EXPECT_FALSE(m.tracked) << "change index left on " << m.guid.ToString();
  }
  std::vector<MoveRecord> moves;
  ASSERT_OK(org.directory().ListMoves(&moves));
  EXPECT_TRUE(moves.empty());
}

class BatchTest : public ::testing::Test {
 protected:
  BatchTest() : f_(0, {}, 6, 4u << 20) {}
  Directory& dir() { return f_.org().directory(); }
  // Runs the batch on a thread; Wait() joins it.
  void Start(const std::string& name, engine::BatchRunOptions o = {}) {
    o.name = name;
    o.poll_ms = 20;
    o.lease_ms = 3000;
    o.move.batch_bytes = 64u << 10;
    o.move.final_delta_items = 0;
    o.move.max_passes = 3;
    runner_ = std::thread([this, o] { result_ = engine::RunBatch(f_.org(), o, stop_); });
  }
  Result<engine::BatchRunReport> Wait() {
    if (runner_.joinable()) runner_.join();
    return result_;
  }
  ~BatchTest() override {
    stop_ = true;
    if (runner_.joinable()) runner_.join();
  }

  testing::MoveFixture f_;
  std::atomic<bool> stop_{false};
  std::thread runner_;
  Result<engine::BatchRunReport> result_ = Status::Internal("not run");
};

// The initial copies' progress `batch status` shows: bytes copied of the
// sizes of the members it knows (a member past its copy whole, a failed or
// stopped one and one of unknown size not at all), and the time left at the
// rate since the start only while a runner works on a running batch.
TEST(BatchProgressTest, InitialCopiesCountKnownSizesAndEstimateTheTimeLeft) {
  BatchRecord b;
  b.state = BatchState::kRunning;
  const int64_t now = 1'790'000'000'000;
  b.started_ms = now - 10'000;
  auto member = [&](MemberState st, uint64_t total, uint64_t copied) {
    BatchMember m;
    m.state = st;
    m.bytes_total = total;
    m.bytes_copied = copied;
    b.members.push_back(m);
  };
  member(MemberState::kQueued, 100, 0);
  member(MemberState::kSyncing, 100, 30);
  member(MemberState::kSyncing, 100, 250);  // grew while copied: counts whole, no more
  member(MemberState::kSynced, 100, 140);
  member(MemberState::kCompleted, 100, 100);
  member(MemberState::kFailed, 100, 50);
  member(MemberState::kSyncing, 0, 70);  // size not known
  EXPECT_EQ(engine::InitialCopyFraction(b.members[1]), 0.3);
  EXPECT_EQ(engine::InitialCopyFraction(b.members[5]), -1);
  EXPECT_EQ(engine::InitialCopyFraction(b.members[6]), -1);
  engine::InitialCopyProgress p = engine::InitialCopies(b, true, now);
  EXPECT_EQ(p.total, 500u);
  EXPECT_EQ(p.done, 330u);
  EXPECT_DOUBLE_EQ(p.bytes_per_s, 33.0);
  EXPECT_NEAR(p.seconds_left, 170.0 / 33.0, 1e-9);
  // No estimate without a live runner, before the start, once stopping,
  // or with nothing copied or nothing left.
  EXPECT_EQ(engine::InitialCopies(b, false, now).seconds_left, -1);
  EXPECT_EQ(engine::InitialCopies(b, false, now).done, 330u);
  BatchRecord c = b;
  c.state = BatchState::kStopping;
  EXPECT_EQ(engine::InitialCopies(c, true, now).seconds_left, -1);
  c = b;
  c.started_ms = 0;
  EXPECT_EQ(engine::InitialCopies(c, true, now).seconds_left, -1);
  c = b;
  for (auto& m : c.members) m.state = MemberState::kQueued;
  EXPECT_EQ(engine::InitialCopies(c, true, now).seconds_left, -1);
  c = b;
  for (auto& m : c.members) m.state = MemberState::kSynced;
  EXPECT_EQ(engine::InitialCopies(c, true, now).done, 600u);
  EXPECT_EQ(engine::InitialCopies(c, true, now).seconds_left, -1);
}

TEST_F(BatchTest, UnderLoadMembersSyncThenCompleteWithEveryAcknowledgedOperation) {
  const auto before = ContentOf(f_.org(), "MS1");
  ASSERT_EQ(before.size(), 6u);
  TempDir t;
  engine::LoadOptions lo = LoadOnEveryMailbox(f_.org(), 300, 9, t / "journal");
  lo.threads = 2;
  lo.pause = std::chrono::milliseconds(5);
  engine::ClientLoad load(f_.org(), lo);
  ASSERT_OK(load.Prepare());
  std::atomic<bool> load_stop{false};
  engine::LoadReport lr;
  std::thread lt([&] { lr = load.Run(&load_stop); });

  BatchRecord b = NewBatch("wave1");
  ASSERT_OK(engine::CreateBatch(f_.org(), &b, PlanAll(f_.org())));
  EXPECT_EQ(b.members.size(), 6u);
  Start("wave1");
  // Synced, and kept current by several passes while clients work.
  ASSERT_TRUE(WaitFor([&] { return AllMembers(dir(), "wave1", MemberState::kSynced, 3); }))
      << BatchToJson(*dir().GetBatch("wave1"));
  EXPECT_EQ(dir().GetBatch("wave1")->state, BatchState::kRunning);
  EXPECT_TRUE(engine::BatchRunnerLive(f_.org(), "wave1"));
  // Nothing switched yet: homeMDB still names the source.
  for (const auto& m : Members(dir(), "wave1")) {
    EXPECT_EQ(dir().GetUserByMailbox(m.mailbox)->home_mdb, dir().GetStore("MS1")->dn);
  }
  ASSERT_OK(engine::RequestComplete(f_.org(), "wave1"));
  auto rep = Wait();
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_EQ(rep->ended, "completed");
  EXPECT_EQ(rep->moves.Completed(), 6u);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // load goes on at the target
  load_stop = true;
  lt.join();
  EXPECT_EQ(lr.total.failed, 0u) << lr.ToJson().dump(2);

  auto done = dir().GetBatch("wave1");
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state, BatchState::kCompleted);
  EXPECT_GT(done->finished_ms, 0);
  EXPECT_FALSE(engine::BatchRunnerLive(f_.org(), "wave1"));
  for (const auto& m : done->members) {
    EXPECT_EQ(m.state, MemberState::kCompleted) << m.user << ": " << m.result;
    EXPECT_GE(m.passes, 3u);
    EXPECT_GT(m.lock_ms, 0);
    EXPECT_EQ(dir().GetUserByMailbox(m.mailbox)->home_mdb, dir().GetStore("MS2")->dn);
  }
  // The invariant: every acknowledged operation is on the target.
  const auto expected = ReplayJournal(lo.journal, before);
  const auto now = ReadAll(f_.org());
  ASSERT_EQ(now.size(), 6u);
  for (const auto& [g, c] : now) {
    EXPECT_FALSE(expected.at(g).pending);
    ExpectContent(g, c, expected.at(g));
  }
  EXPECT_TRUE(f_.Snapshot().problems.empty());
  // A completed batch runs no more; removed, its mailboxes are free again.
  EXPECT_EQ(engine::RunBatch(f_.org(), Named("wave1"), stop_).status().code(), Status::Code::kConflict);
  ASSERT_OK(engine::RemoveBatch(f_.org(), "wave1"));
  EXPECT_TRUE(dir().GetBatch("wave1").status().IsNotFound());
}

// Passes read the source's changes in pages of one item each (the
// smallest): what clients changed between the sync and the completion
// reaches the target whole.
TEST_F(BatchTest, PassesReadOneItemPerPageCarryEveryChange) {
  BatchRecord b = NewBatch("paged");
  ASSERT_OK(engine::CreateBatch(f_.org(), &b, PlanAll(f_.org())));
  engine::BatchRunOptions o;
  o.move.changes_page_bytes = 1;
  Start("paged", o);
  ASSERT_TRUE(WaitFor([&] { return AllMembers(dir(), "paged", MemberState::kSynced, 1); }))
      << BatchToJson(*dir().GetBatch("paged"));
  auto src = f_.org().GetStore("MS1");
  ASSERT_TRUE(src.ok());
  std::vector<MailboxInfo> boxes;
  ASSERT_OK((*src)->ListMailboxes(&boxes));
  ASSERT_EQ(boxes.size(), 6u);
  constexpr int kDeliveries = 8;
  for (const MailboxInfo& m : boxes) {
    uint32_t inbox = 0;
    {
      auto r = (*src)->BeginRead();
      ASSERT_TRUE(r.ok());
      std::vector<FolderInfo> folders;
      ASSERT_OK(r->ListFolders(m.guid, &folders));
      for (const auto& fo : folders) {
        if (fo.kind == FolderKind::kInbox) inbox = fo.id;
      }
    }
    ASSERT_NE(inbox, 0u);
    std::vector<uint64_t> ids;
    for (int i = 0; i < kDeliveries; ++i) {
      ClientOp d;
      d.kind = ClientOp::Kind::kDeliver;
      d.folder_id = inbox;
      d.record = testing::TestRecord(7000 + uint64_t(i), 2000);
      auto r = (*src)->ApplyClientOp(m.guid, d);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ids.push_back(r->id);
    }
    ClientOp fl;
    fl.kind = ClientOp::Kind::kSetFlags;
    fl.folder_id = inbox;
    fl.item_id = ids[1];
    fl.flags = kFlagFlagged;
    ASSERT_TRUE((*src)->ApplyClientOp(m.guid, fl).ok());
    ClientOp del;
    del.kind = ClientOp::Kind::kDeleteItem;
    del.folder_id = inbox;
    del.item_id = ids[2];
    ASSERT_TRUE((*src)->ApplyClientOp(m.guid, del).ok());
  }
  const auto expected = ContentOf(f_.org(), "MS1");
  ASSERT_OK(engine::RequestComplete(f_.org(), "paged"));
  auto rep = Wait();
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_EQ(rep->ended, "completed");
  EXPECT_EQ(rep->moves.Completed(), 6u) << rep->moves.ToJson().dump(1) << BatchToJson(rep->batch);
  uint64_t pages = 0;
  for (const auto& m : rep->moves.mailboxes) pages += m.change_pages;
  EXPECT_GE(pages, 6u * (kDeliveries - 1)) << "a page per changed item";
  const auto now = ReadAll(f_.org());
  ASSERT_EQ(now.size(), 6u);
  for (const auto& [g, c] : now) EXPECT_TRUE(c == expected.at(g)) << g;
  EXPECT_TRUE(f_.Snapshot().problems.empty());
}

TEST_F(BatchTest, StopRollsBackEveryMemberAndLeavesTheSourcesAsTheyWere) {
  BatchRecord b = NewBatch("wave2");
  b.concurrency = 2;
  ASSERT_OK(engine::CreateBatch(f_.org(), &b, PlanAll(f_.org())));
  Start("wave2");
  ASSERT_TRUE(WaitFor([&] {
    auto r = dir().GetBatch("wave2");
    return r.ok() && std::any_of(r->members.begin(), r->members.end(),
                                 [](const BatchMember& m) { return m.state == MemberState::kSynced; });
  }));
  ASSERT_OK(engine::StopBatch(f_.org(), "wave2", "stopped: test"));
  auto rep = Wait();
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_EQ(rep->ended.rfind("stopped", 0), 0u) << rep->ended;
  auto s = dir().GetBatch("wave2");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->state, BatchState::kStopped);
  for (const auto& m : s->members) EXPECT_EQ(m.state, MemberState::kStopped) << m.user;
  ExpectAllInSource(f_.org(), 6);
  EXPECT_TRUE(f_.Snapshot().problems.empty());
  // A stopped batch cannot be completed, stopped again or run.
  EXPECT_EQ(engine::RequestComplete(f_.org(), "wave2").code(), Status::Code::kConflict);
  EXPECT_EQ(engine::StopBatch(f_.org(), "wave2", "again").code(), Status::Code::kConflict);
  EXPECT_EQ(engine::RunBatch(f_.org(), Named("wave2"), stop_).status().code(), Status::Code::kConflict);
}

TEST_F(BatchTest, CancelAfterStopsABatchStillRunning) {
  BatchRecord b = NewBatch("wave3");
  b.cancel_after_ms = 400;  // manual completion never comes
  ASSERT_OK(engine::CreateBatch(f_.org(), &b, PlanAll(f_.org())));
  Start("wave3");
  auto rep = Wait();
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_NE(rep->ended.find("--cancel-after"), std::string::npos) << rep->ended;
  auto s = dir().GetBatch("wave3");
  EXPECT_EQ(s->state, BatchState::kStopped);
  for (const auto& m : s->members) EXPECT_EQ(m.state, MemberState::kStopped);
  ExpectAllInSource(f_.org(), 6);
}

TEST_F(BatchTest, CompleteAfterCompletesByItself) {
  BatchRecord b = NewBatch("wave4");
  b.complete_delay_ms = 300;
  ASSERT_OK(engine::CreateBatch(f_.org(), &b, PlanAll(f_.org())));
  Start("wave4");
  auto rep = Wait();
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_EQ(rep->ended, "completed");
  for (const auto& m : Members(dir(), "wave4")) EXPECT_EQ(m.state, MemberState::kCompleted) << m.result;
  EXPECT_TRUE(f_.Snapshot().problems.empty());
}

TEST_F(BatchTest, BadInputIsRefusedAndChangesNothing) {
  const auto plan = PlanAll(f_.org());
  // Unknown batch.
  EXPECT_TRUE(engine::RequestComplete(f_.org(), "nope").IsNotFound());
  EXPECT_TRUE(engine::StopBatch(f_.org(), "nope", "x").IsNotFound());
  EXPECT_TRUE(engine::RemoveBatch(f_.org(), "nope").IsNotFound());
  EXPECT_TRUE(engine::RunBatch(f_.org(), Named("nope"), stop_).status().IsNotFound());
  // Bad names and settings.
  BatchRecord bad = NewBatch("has space");
  EXPECT_EQ(engine::CreateBatch(f_.org(), &bad, plan).code(), Status::Code::kInvalidArgument);
  bad = NewBatch("ok");
  bad.concurrency = 0;
  EXPECT_EQ(engine::CreateBatch(f_.org(), &bad, plan).code(), Status::Code::kInvalidArgument);
  bad = NewBatch("ok");
  EXPECT_EQ(engine::CreateBatch(f_.org(), &bad, {}).code(), Status::Code::kInvalidArgument);
  std::vector<BatchRecord> all;
  ASSERT_OK(dir().ListBatches(&all));
  EXPECT_TRUE(all.empty());

  // A batch of three; a second one claiming one of them is refused.
  BatchRecord a = NewBatch("first");
  ASSERT_OK(engine::CreateBatch(f_.org(), &a, {plan.begin(), plan.begin() + 3}));
  BatchRecord second = NewBatch("second");
  Status clash = engine::CreateBatch(f_.org(), &second, {plan.begin() + 2, plan.end()});
  EXPECT_EQ(clash.code(), Status::Code::kAlreadyExists) << clash.ToString();
  EXPECT_NE(clash.message().find("already in batch 'first'"), std::string::npos) << clash.ToString();
  BatchRecord dup = NewBatch("first");
  EXPECT_EQ(engine::CreateBatch(f_.org(), &dup, {plan.begin() + 3, plan.end()}).code(), Status::Code::kAlreadyExists);
  // Names are compared without case, in both backends (LDAP's cn is).
  BatchRecord upper = NewBatch("FIRST");
  Status cased = engine::CreateBatch(f_.org(), &upper, {plan.begin() + 3, plan.end()});
  EXPECT_EQ(cased.code(), Status::Code::kAlreadyExists) << cased.ToString();
  EXPECT_NE(cased.message().find("batch named 'first' exists"), std::string::npos) << cased.ToString();
  all.clear();
  ASSERT_OK(dir().ListBatches(&all));
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].members.size(), 3u);
  // The rest may form a batch of their own.
  BatchRecord rest = NewBatch("rest");
  ASSERT_OK(engine::CreateBatch(f_.org(), &rest, {plan.begin() + 3, plan.end()}));

  // Completing a batch not started, or not synced.
  Status c = engine::RequestComplete(f_.org(), "first");
  EXPECT_EQ(c.code(), Status::Code::kConflict);
  EXPECT_NE(c.message().find("not been started"), std::string::npos) << c.ToString();
  auto cur = dir().GetBatch("first");
  ASSERT_TRUE(cur.ok());
  cur->state = BatchState::kRunning;
  cur->members[0].state = MemberState::kSynced;
  cur->members[1].state = MemberState::kSyncing;
  ASSERT_OK(dir().UpdateBatch(&*cur));
  const uint64_t version = cur->version;
  c = engine::RequestComplete(f_.org(), "first");
  EXPECT_EQ(c.code(), Status::Code::kConflict);
  EXPECT_NE(c.message().find("not synced"), std::string::npos) << c.ToString();
  EXPECT_NE(c.message().find(cur->members[1].user + " (syncing)"), std::string::npos) << c.ToString();
  EXPECT_EQ(dir().GetBatch("first")->version, version) << "a refused complete wrote the batch";
  // A running batch is not removed.
  EXPECT_EQ(engine::RemoveBatch(f_.org(), "first").code(), Status::Code::kConflict);
  EXPECT_EQ(dir().GetBatch("first")->version, version);

  // One runner per batch.
  Lease held;
  held.name = engine::BatchLeaseName("rest");
  held.owner = "someone";
  held.holds = "otherhost:1";
  held.until_ms = engine::UnixMillis() + 60000;
  ASSERT_OK(dir().AddLease(&held));
  auto busy = engine::RunBatch(f_.org(), Named("rest"), stop_);
  EXPECT_TRUE(busy.status().IsBusy()) << busy.status().ToString();
  EXPECT_NE(busy.status().message().find("otherhost:1"), std::string::npos);
  EXPECT_EQ(dir().GetBatch("rest")->state, BatchState::kCreated);
  ExpectAllInSource(f_.org(), 6);
}

// Two batches named alike but for case, created at the same moment: each
// passes the check before its add, so the check after it must catch the
// other (the embedded directory's keys are case-sensitive), and the later
// one gives way. The other creator is a hook run just before this add.
TEST_F(BatchTest, ABatchNamedAlikeCreatedAtTheSameMomentGivesWay) {
  const auto plan = PlanAll(f_.org());
  testing::Interpose(f_, [&](std::string_view call, int n, Directory& inner) {
    if (call != "AddBatch" || n != 0) return;
    BatchRecord other = NewBatch("WAVE1");
    other.state = BatchState::kCreated;
    ASSERT_OK(inner.AddBatch(&other));
  });
  BatchRecord mine = NewBatch("wave1");
  Status s = engine::CreateBatch(f_.org(), &mine, {plan.begin(), plan.begin() + 2});
  EXPECT_EQ(s.code(), Status::Code::kAlreadyExists) << s.ToString();
  // The embedded directory takes the add and the check after it finds the
  // other; the LDAP one refuses the add itself (cn ignores case).
  const bool embedded = dir().SwitchIsOneWrite();
  EXPECT_NE(s.message().find(embedded ? "batch named 'WAVE1' exists (created at the same moment"
                                      : "batch 'wave1' is already in the directory"),
            std::string::npos)
      << s.ToString();
  std::vector<BatchRecord> all;
  ASSERT_OK(dir().ListBatches(&all));
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].name, "WAVE1");
  // Its mailboxes are free for a batch of another name.
  BatchRecord next = NewBatch("wave2");
  ASSERT_OK(engine::CreateBatch(f_.org(), &next, {plan.begin(), plan.begin() + 2}));
}

// A client's delivery of test record `seed` into the mailbox's inbox.
Status DeliverToInbox(StoreHandle* store, const Guid& mailbox, int seed) {
  auto stream = store->ReadMailbox(mailbox);
  if (!stream.ok()) return stream.status();
  ClientOp d;
  d.kind = ClientOp::Kind::kDeliver;
  for (const auto& fo : (*stream)->folders()) {
    if (fo.kind == FolderKind::kInbox) d.folder_id = fo.id;
  }
  if (d.folder_id == 0) return Status::NotFound("no inbox");
  d.record = testing::TestRecord(seed);
  return store->ApplyClientOp(mailbox, d).status();
}

// A pass called off before it starts (a runner told to stop) writes
// nothing and leaves the move as it was, synced, for the runner to keep or
// roll back: the next pass, once no longer called off, catches up.
TEST_F(BatchTest, APassCalledOffWritesNothingAndLeavesTheMoveSynced) {
  engine::MoveOptions mo;
  mo.target = "MS2";
  mo.online = true;
  engine::MoveCounters counters;
  engine::MailboxMover mover(f_.org(), mo, &counters);
  auto plan = PlanAll(f_.org());
  std::atomic<bool> off{false};
  engine::MoveTask task = plan[0].task;
  task.called_off = [&off] { return off.load() ? std::string("told to stop") : std::string(); };
  const Guid g = task.user.mailbox;
  engine::MailboxReport failed;
  auto s = mover.StartOnline(task, &failed);
  ASSERT_NE(s, nullptr) << failed.reason;
  auto ms1 = f_.org().GetHandle("MS1");
  auto ms2 = f_.org().GetHandle("MS2");
  ASSERT_TRUE(ms1.ok() && ms2.ok());
  const uint64_t copied = (*ms2)->GetMailbox(g)->item_count;
  ASSERT_OK(DeliverToInbox(*ms1, g, 777));

  off = true;
  auto n = mover.SyncOnline(s.get());
  EXPECT_EQ(n.status().code(), Status::Code::kAborted) << n.status().ToString();
  EXPECT_FALSE(engine::MailboxMover::Ended(*s));
  EXPECT_EQ((*ms2)->GetMailbox(g)->item_count, copied) << "a pass called off wrote to the target";
  auto rec = dir().GetMove(g);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->step, MoveStep::kSyncing);
  EXPECT_EQ((*ms1)->GetMailbox(g)->state, MailboxState::kActive);

  off = false;
  n = mover.SyncOnline(s.get());
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ((*ms2)->GetMailbox(g)->item_count, copied + 1);
  // Rolled back by its owner: nothing left on the target, no record.
  engine::MailboxReport r = mover.AbortOnline(s.get(), "stopped: test");
  EXPECT_TRUE(engine::MailboxMover::Ended(*s));
  EXPECT_TRUE((*ms2)->GetMailbox(g).status().IsNotFound());
  EXPECT_TRUE(dir().GetMove(g).status().IsNotFound());
  EXPECT_EQ((*ms1)->GetMailbox(g)->state, MailboxState::kActive);
}

// A runner that dies (no clean-up at all) leaves its synced members' moves
// at `syncing`. recover leaves them alone (while the runner's lease is live,
// and after it, for the next runner); it rolls back an initial copy cut
// short. The next runner resumes the synced members from their targets
// (catching up with what clients did meanwhile), copies again the one whose
// target does not hold what its header counts, and completes.
TEST_F(BatchTest, ADeadRunnersSyncedMembersAreResumedByTheNextRunner) {
  BatchRecord b = NewBatch("wave5");
  ASSERT_OK(engine::CreateBatch(f_.org(), &b, PlanAll(f_.org())));
  // What a dead runner leaves, made with the engine's own steps: three
  // members with their initial copies done and their moves at `syncing`.
  engine::MoveOptions mo;
  mo.target = "MS2";
  mo.online = true;
  engine::MoveCounters counters;
  engine::MailboxMover mover(f_.org(), mo, &counters);
  std::vector<engine::MailboxMover::OnlineSessionPtr> leaked;
  std::vector<BatchMember> members = Members(dir(), "wave5");
  auto plan = PlanAll(f_.org());
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(plan[i].task.user.mailbox, members[i].mailbox);
    engine::MailboxReport failed;
    auto s = mover.StartOnline(plan[i].task, &failed);
    ASSERT_NE(s, nullptr) << failed.reason;
    ASSERT_TRUE(mover.SyncOnline(s.get()).ok());
    leaked.push_back(std::move(s));  // never completed nor aborted: as if the process died
  }
  auto cur = dir().GetBatch("wave5");
  cur->state = BatchState::kRunning;
  cur->started_ms = engine::UnixMillis();
  cur->members[0].state = MemberState::kSynced;
  cur->members[1].state = MemberState::kSynced;
  cur->members[2].state = MemberState::kSyncing;  // (its runner died before recording it synced)
  for (int i = 0; i < 3; ++i) cur->members[i].attempts = 1;
  ASSERT_OK(dir().UpdateBatch(&*cur));
  Lease dead;
  dead.name = engine::BatchLeaseName("wave5");
  dead.owner = "dead-runner";
  dead.holds = "gone:1";
  dead.until_ms = engine::UnixMillis() + 60000;
  ASSERT_OK(dir().AddLease(&dead));
  // While the lease is live, recover leaves every member's move alone.
  auto r1 = engine::Recover(f_.org());
  ASSERT_TRUE(r1.ok());
  ASSERT_EQ(r1->moves.size(), 3u);
  for (const auto& m : r1->moves) EXPECT_EQ(m.action.rfind("skipped: the runner of batch wave5", 0), 0u) << m.action;
  EXPECT_TRUE(r1->batches.empty());
  // Lapsed: the synced members' moves are kept; the other is rolled back.
  dead.until_ms = engine::UnixMillis() - 1;
  ASSERT_OK(dir().UpdateLease(&dead));
  auto r2 = engine::Recover(f_.org());
  ASSERT_TRUE(r2.ok());
  EXPECT_TRUE(r2->all_done());
  ASSERT_EQ(r2->moves.size(), 3u);
  int kept = 0;
  for (const auto& m : r2->moves) kept += m.action.rfind("kept: batch wave5", 0) == 0;
  EXPECT_EQ(kept, 2);
  ASSERT_EQ(r2->batches.size(), 1u);
  members = Members(dir(), "wave5");
  EXPECT_EQ(members[0].state, MemberState::kSynced);
  EXPECT_EQ(members[1].state, MemberState::kSynced);
  EXPECT_EQ(members[2].state, MemberState::kQueued);
  EXPECT_EQ(dir().GetBatch("wave5")->state, BatchState::kRunning) << "the batch's own state survives";
  leaked.clear();  // (destroying a session does nothing to the stores)
  // Meanwhile a client works on member 0, and member 1's target loses an
  // item (so it holds less than its header counts: not resumable).
  auto ms1 = f_.org().GetHandle("MS1");
  auto ms2 = f_.org().GetHandle("MS2");
  ASSERT_TRUE(ms1.ok() && ms2.ok());
  ASSERT_OK(DeliverToInbox(*ms1, members[0].mailbox, 4242));
  const uint64_t want0 = (*ms1)->GetMailbox(members[0].mailbox)->item_count;
  {
    auto stream = (*ms2)->ReadMailbox(members[1].mailbox);
    ASSERT_TRUE(stream.ok());
    ItemChunk chunk;
    ASSERT_OK((*stream)->Next(1 << 20, &chunk));
    ASSERT_FALSE(chunk.items.empty());
    WriteBatch wb;
    wb.DeleteItem(members[1].mailbox, chunk.items[0].folder_id, chunk.items[0].item_id);
    ASSERT_OK((*ms2)->WriteAsync(std::move(wb)).get());
  }
  // The next runner: members 0 resumed, 1 and 2 copied again; completed.
  cur = dir().GetBatch("wave5");
  cur->complete_delay_ms = 0;
  ASSERT_OK(dir().UpdateBatch(&*cur));
  Start("wave5");
  auto rep = Wait();
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_EQ(rep->ended, "completed");
  members = Members(dir(), "wave5");
  for (const auto& m : members) EXPECT_EQ(m.state, MemberState::kCompleted) << m.result;
  EXPECT_EQ(members[0].attempts, 1u) << "resumed, not copied again";
  EXPECT_EQ(members[1].attempts, 2u) << "its target was short: copied again";
  EXPECT_EQ(members[2].attempts, 2u) << "its initial copy was rolled back: copied again";
  EXPECT_EQ((*ms2)->GetMailbox(members[0].mailbox)->item_count, want0) << "the resumed pass caught up";
  EXPECT_TRUE(f_.Snapshot().problems.empty());
}

// ---------------------------------------------------------------------------
// The commands, with a kill -9 of the runner

class BatchCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    org_ = tmp_ / "o";
    ASSERT_EQ(RunCommand(Mbxmove() + " gen --org " + org_ + " --store MS1 --preset tiny --seed 5").exit_code, 0);
    ASSERT_EQ(RunCommand(Mbxmove() + " store create --org " + org_ + " --store MS2").exit_code, 0);
  }
  json Status(const std::string& name) { return RunJson("batch status --org " + org_ + " --name " + name + " --json"); }
  bool AllIn(const json& st, const std::string& state) {
    if (!st.contains("members")) return false;
    for (const auto& m : st["members"]) {
      if (m["state"] != state) return false;
    }
    return true;
  }
  Child StartRunner(const std::string& name, const std::string& tag) {
    return Child::Spawn(Mbxmove() + " batch start --org " + org_ + " --name " + name +
                            " --lease 1 --poll 0.05 --max-passes 3 --final-delta-items 0",
                        tmp_ / (tag + ".out"), tmp_ / (tag + ".err"));
  }
  TempDir tmp_;
  std::string org_;
};

TEST_F(BatchCliTest, StateSurvivesKillNineAndTheNextRunnerResumesTheBatch) {
  json created = RunJson("batch create --org " + org_ + " --name wave --to MS2 --from MS1 --sync-interval 100ms "
                         "--manual --concurrency 3 --json");
  EXPECT_EQ(created["state"], "created");
  EXPECT_EQ(created["members"].size(), 12u);
  // Each member's size is known from the start; nothing copied, no estimate.
  {
    json st0 = Status("wave");
    uint64_t sizes = 0;
    for (const auto& m : st0["members"]) {
      EXPECT_GT(m["bytes_total"].get<uint64_t>(), 0u) << m.dump();
      sizes += m["bytes_total"].get<uint64_t>();
    }
    EXPECT_EQ(st0["totals"]["copy_bytes_total"].get<uint64_t>(), sizes);
    EXPECT_EQ(st0["totals"]["copy_bytes_done"].get<uint64_t>(), 0u);
    EXPECT_TRUE(st0["totals"]["copy_seconds_left"].is_null());
  }
  {
    Child c = StartRunner("wave", "r1");
    ASSERT_TRUE(WaitFor([&] { return AllIn(Status("wave"), "synced"); })) << Status("wave").dump(2);
    c.Kill();  // kill -9: no clean-up at all
  }
  // The batch's state survived the kill.
  json st = Status("wave");
  EXPECT_EQ(st["state"], "running");
  EXPECT_TRUE(AllIn(st, "synced"));
  EXPECT_GT(st["totals"]["copy_bytes_total"].get<uint64_t>(), 0u);
  EXPECT_EQ(st["totals"]["copy_bytes_done"], st["totals"]["copy_bytes_total"]) << st["totals"].dump();
  EXPECT_TRUE(st["totals"]["copy_seconds_left"].is_null()) << "nothing left to copy";
  // Once the runner's lease (1 s) has lapsed, recover keeps the synced
  // members' moves for the next runner (the sources stay in use meanwhile).
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  json rec = RunJson("recover --org " + org_ + " --json");
  EXPECT_TRUE(rec["all_done"].get<bool>()) << rec.dump(2);
  ASSERT_EQ(rec["moves"].size(), 12u);
  for (const auto& m : rec["moves"]) {
    EXPECT_EQ(m["action"].get<std::string>().rfind("kept: batch wave", 0), 0u) << m.dump();
  }
  st = Status("wave");
  EXPECT_EQ(st["state"], "running");
  EXPECT_TRUE(AllIn(st, "synced")) << st.dump(2);
  EXPECT_FALSE(st["runner_live"].get<bool>());
  json v = RunJson("verify --org " + org_ + " --json");
  EXPECT_TRUE(v["clean"].get<bool>()) << v["problems"].dump();
  // Completed while no runner holds it: the next runner resumes every
  // member from its target (no copy again) and completes them.
  auto r = RunCommand(Mbxmove() + " batch complete --org " + org_ + " --name wave");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("no runner holds it now"), std::string::npos) << r.out;
  Child c2 = StartRunner("wave", "r2");
  EXPECT_EQ(c2.Wait(std::chrono::seconds(120)), 0) << Slurp(tmp_ / "r2.err");
  EXPECT_NE(Slurp(tmp_ / "r2.err").find("resumed from its target"), std::string::npos) << Slurp(tmp_ / "r2.err");
  st = Status("wave");
  EXPECT_EQ(st["state"], "completed");
  EXPECT_TRUE(AllIn(st, "completed")) << st.dump(2);
  uint64_t items = 0, passes = 0;
  double lock_max = 0;
  for (const auto& m : st["members"]) {
    EXPECT_GT(m["lock_ms"].get<double>(), 0);
    EXPECT_EQ(m["attempts"], 1) << "copied again instead of resumed: " << m.dump();
    items += m["items_copied"].get<uint64_t>();
    passes += m["passes"].get<uint64_t>();
    lock_max = std::max(lock_max, m["lock_ms"].get<double>());
  }
  // The totals are the members' figures summed.
  EXPECT_GT(items, 0u);
  EXPECT_EQ(st["totals"]["items_copied"].get<uint64_t>(), items) << st["totals"].dump();
  EXPECT_EQ(st["totals"]["passes"].get<uint64_t>(), passes) << st["totals"].dump();
  EXPECT_EQ(st["totals"]["completed"].get<size_t>(), 12u) << st["totals"].dump();
  EXPECT_DOUBLE_EQ(st["totals"]["lock_ms_max"].get<double>(), lock_max) << st["totals"].dump();
  EXPECT_LE(st["totals"]["lock_ms_p50"].get<double>(), lock_max) << st["totals"].dump();
  v = RunJson("verify --org " + org_ + " --json");
  EXPECT_TRUE(v["clean"].get<bool>()) << v["problems"].dump();
  json stat = RunJson("stat --org " + org_ + " --json");
  for (const auto& m : stat["mailboxes"]) EXPECT_EQ(m["store"], "MS2") << m.dump();
  // The human table and the list.
  auto human = RunCommand(Mbxmove() + " batch status --org " + org_ + " --name wave");
  EXPECT_EQ(human.exit_code, 0);
  EXPECT_NE(human.out.find("batch wave: completed, 12 mailbox(es) to MS2"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("initial copies 100% of"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("totals: " + std::to_string(items) + " items ("), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("over 12 completed"), std::string::npos) << human.out;
  auto list = RunCommand(Mbxmove() + " batch list --org " + org_);
  EXPECT_NE(list.out.find("wave"), std::string::npos) << list.out;
}

TEST_F(BatchCliTest, SigtermLeavesTheBatchForTheNextStart) {
  ASSERT_EQ(RunCommand(Mbxmove() + " batch create --org " + org_ + " --name w --to MS2 --from MS1 "
                       "--sync-interval 50ms --manual")
                .exit_code,
            0);
  // Completed by hand after the signal: a --complete-after here would race
  // the wait for "all synced" on a slow machine (it did under TSan in CI).
  Child c = StartRunner("w", "t1");
  ASSERT_TRUE(WaitFor([&] { return AllIn(Status("w"), "synced"); })) << Status("w").dump(2);
  kill(c.pid, SIGTERM);
  EXPECT_EQ(c.Wait(std::chrono::seconds(60)), 1) << "interrupted: " << Slurp(tmp_ / "t1.err");
  json st = Status("w");
  EXPECT_EQ(st["state"], "running");
  EXPECT_FALSE(st["runner_live"].get<bool>()) << "the lease was released";
  // Nothing was completing, so a pass the signal cut short leaves its
  // member synced: the next runner takes every move up from its target.
  EXPECT_TRUE(AllIn(st, "synced")) << st.dump(2);
  auto done = RunCommand(Mbxmove() + " batch complete --org " + org_ + " --name w");
  ASSERT_EQ(done.exit_code, 0) << done.err;
  Child c2 = StartRunner("w", "t2");
  EXPECT_EQ(c2.Wait(std::chrono::seconds(120)), 0) << Slurp(tmp_ / "t2.err");
  EXPECT_TRUE(AllIn(Status("w"), "completed")) << Status("w").dump(2);
  json v = RunJson("verify --org " + org_ + " --json");
  EXPECT_TRUE(v["clean"].get<bool>()) << v["problems"].dump();
}

TEST_F(BatchCliTest, StartWithLoadKeepsEveryAcknowledgedOperation) {
  std::map<std::string, Content> before;
  {
    auto o = Organization::Open(org_);
    ASSERT_TRUE(o.ok());
    before = ContentOf(**o, "MS1");
  }
  ASSERT_EQ(RunCommand(Mbxmove() + " batch create --org " + org_ + " --name l --to MS2 --from MS1 "
                       "--sync-interval 100ms --complete-after 1500ms")
                .exit_code,
            0);
  const std::string journal = tmp_ / "journal";
  json r = RunJson("batch start --org " + org_ + " --name l --quiet --json --load 150 --load-seed 3 "
                   "--load-mix deliver:40,flag:25,move:15,delete:10,folder:10 --load-journal " + journal);
  EXPECT_EQ(r["ended"], "completed");
  EXPECT_EQ(r["report"]["totals"]["mailboxes_completed"], 12);
  EXPECT_GT(r["load"]["total"]["done"].get<int>(), 50);
  EXPECT_EQ(r["load"]["total"]["failed"], 0);
  EXPECT_GT(r["report"]["totals"]["lock_ms"]["max"].get<double>(), 0);
  auto o = Organization::Open(org_);
  ASSERT_TRUE(o.ok());
  const auto expected = ReplayJournal(journal, before);
  const auto now = ReadAll(**o);
  ASSERT_EQ(now.size(), 12u);
  for (const auto& [g, c] : now) {
    EXPECT_FALSE(expected.at(g).pending);
    ExpectContent(g, c, expected.at(g));
  }
}

// `batch start --load` killed at random moments (initial copies, passes,
// completions): after recover and a second start, every mailbox is where
// homeMDB says, once, holding every acknowledged operation (and at most
// the one each had in flight at the kill).
TEST_F(BatchCliTest, KilledAtRandomMomentsThenResumedKeepsEveryAcknowledgedOperation) {
  int runs = 4;
  if (const char* e = std::getenv("MBX_BATCH_KILL_RUNS")) runs = std::max(1, std::atoi(e));
  std::map<std::string, Content> before;
  {
    auto o = Organization::Open(org_);
    ASSERT_TRUE(o.ok());
    before = ContentOf(**o, "MS1");
  }
  std::mt19937 rng(11);
  int killed = 0;
  for (int i = 0; i < runs; ++i) {
    const std::string org = tmp_ / ("k" + std::to_string(i));
    fs::copy(org_, org, fs::copy_options::recursive);
    const std::string journal = org + "/journal";
    ASSERT_EQ(RunCommand(Mbxmove() + " batch create --org " + org + " --name k --to MS2 --from MS1 "
                         "--sync-interval 50ms --complete-after 400ms --concurrency 3")
                  .exit_code,
              0);
    const int ms = 30 + int(rng() % 450);
    SCOPED_TRACE("killed after " + std::to_string(ms) + " ms");
    if (testing::RunAndKillAfter(Mbxmove() + " batch start --org " + org + " --name k --lease 0.5 --poll 0.02 " +
                                     "--max-passes 3 --final-delta-items 0 --load 200 --load-seed " +
                                     std::to_string(i + 1) + " --load-journal " + journal,
                                 ms)) {
      ++killed;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(600));  // the runner's lease lapses
    json rec = RunJson("recover --org " + org + " --json");
    EXPECT_TRUE(rec["all_done"].get<bool>()) << rec.dump(2);
    json v = RunJson("verify --org " + org + " --json");
    EXPECT_TRUE(v["clean"].get<bool>()) << v["problems"].dump();
    // A second runner finishes it (its completion time has passed), unless
    // the first finished before the kill.
    json st = RunJson("batch status --org " + org + " --name k --json");
    if (st["state"] != "completed") {
      auto r = RunCommand(Mbxmove() + " batch start --org " + org + " --name k --quiet --max-passes 3");
      EXPECT_EQ(r.exit_code, 0) << r.err;
      st = RunJson("batch status --org " + org + " --name k --json");
    }
    EXPECT_EQ(st["state"], "completed");
    for (const auto& m : st["members"]) EXPECT_EQ(m["state"], "completed") << m.dump();
    v = RunJson("verify --org " + org + " --json");
    EXPECT_TRUE(v["clean"].get<bool>()) << v["problems"].dump();
    auto o = Organization::Open(org);
    ASSERT_TRUE(o.ok());
    std::map<std::string, int> copies;
    for (const char* name : {"MS1", "MS2"}) {
      auto h = (*o)->GetHandle(name);
      ASSERT_TRUE(h.ok());
      std::vector<MailboxInfo> boxes;
      ASSERT_OK((*h)->ListMailboxes(&boxes));
      for (const auto& m : boxes) {
        EXPECT_EQ(std::string(name), "MS2") << m.guid.ToString() << " left in " << name;
        EXPECT_EQ(m.state, MailboxState::kActive);
        EXPECT_FALSE(m.tracked);
        ++copies[m.guid.ToString()];
      }
    }
    for (const auto& [g, c] : before) EXPECT_EQ(copies[g], 1) << g;
    const auto expected = ReplayJournal(journal, before);
    for (const auto& [g, c] : ReadAll(**o)) ExpectContent(g, c, expected.at(g));
  }
  EXPECT_GT(killed, 0) << "no run was killed before it finished";
}

TEST_F(BatchCliTest, BadInputIsRefusedWithClearErrorsAndChangesNothing) {
  auto expect = [&](const std::string& args, int code, const std::string& words) {
    auto r = RunCommand(Mbxmove() + " " + args);
    EXPECT_EQ(r.exit_code, code) << args << "\n" << r.out << r.err;
    EXPECT_NE((r.out + r.err).find(words), std::string::npos) << args << "\n" << r.out << r.err;
  };
  const std::string o = " --org " + org_;
  expect("batch status" + o + " --name nope", 1, "nope");
  expect("batch complete" + o + " --name nope", 1, "nope");
  expect("batch stop" + o + " --name nope", 1, "nope");
  expect("batch start" + o + " --name nope", 1, "nope");
  expect("batch create" + o + " --name a --to MS2", 2, "--from STORE or --mailbox");
  expect("batch create" + o + " --name 'a b' --to MS2 --from MS1", 2, "name");
  expect("batch create" + o + " --name a --to MS2 --from MS1 --sync-interval 5x", 2, "unknown unit");
  expect("batch create" + o + " --name a --to MS2 --from MS1 --complete-after tomorrow", 2, "--complete-after");
  expect("batch create" + o + " --name a --to MS2 --from MS1 --manual --complete-after 1h", 2, "exclude");
  expect("batch create" + o + " --name a --to MS9 --from MS1", 1, "MS9");
  expect("batch create" + o + " --name a --to MS2 --mailbox nobody", 2, "nobody");
  json none = RunJson("batch list" + o + " --json");
  EXPECT_TRUE(none["batches"].empty());
  ASSERT_EQ(RunCommand(Mbxmove() + " batch create" + o + " --name a --to MS2 --mailbox user0001 --mailbox user0002")
                .exit_code,
            0);
  expect("batch create" + o + " --name b --to MS2 --from MS1", 1, "already in batch 'a'");
  expect("batch create" + o + " --name a --to MS2 --mailbox user0003", 1, "already");
  expect("batch complete" + o + " --name a", 1, "not been started");
  json list = RunJson("batch list" + o + " --json");
  ASSERT_EQ(list["batches"].size(), 1u);
  EXPECT_EQ(list["batches"][0]["members"].size(), 2u);
  EXPECT_EQ(list["batches"][0]["state"], "created");
  // A created batch may be removed; a stopped one too.
  expect("batch stop" + o + " --name a", 0, "stopped");
  expect("batch remove" + o + " --name a", 0, "removed");
  EXPECT_TRUE(RunJson("batch list" + o + " --json")["batches"].empty());
}

}  // namespace
}  // namespace mbx
