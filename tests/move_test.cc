// The move engine: whole-organisation moves, skip-on-error with the bad-item
// limit, retry of transient faults, persistent faults, concurrency levels,
// log quota, locks, and per-mailbox errors.
#include <functional>
#include <set>

#include "engine/fault_injector.h"
#include "engine/recovery.h"
#include "tests/interposed_directory.h"
#include "tests/move_fixture.h"

namespace mbx {
namespace {

using engine::MoveOptions;
using engine::Outcome;
using testing::Interpose;
using testing::InterposedDirectory;
using testing::MoveFixture;

std::set<std::pair<Guid, uint64_t>> DroppedSet(const engine::MoveReport& r) {
  std::set<std::pair<Guid, uint64_t>> s;
  for (const auto& m : r.mailboxes) {
    for (const auto& d : m.dropped) s.insert({m.mailbox, d.item_id});
  }
  return s;
}

// Every item of every source mailbox, as (mailbox, item id).
std::set<std::pair<Guid, uint64_t>> AllItems(MoveFixture& f) {
  std::set<std::pair<Guid, uint64_t>> s;
  auto st = f.org().GetStore("MS1");
  auto r = (*st)->BeginRead();
  std::vector<MailboxInfo> ms;
  EXPECT_TRUE(r->ListMailboxes(&ms).ok());
  for (const auto& m : ms) {
    std::vector<FolderInfo> fs;
    EXPECT_TRUE(r->ListFolders(m.guid, &fs).ok());
    for (const auto& fo : fs) {
      EXPECT_TRUE(r->ForEachItem(m.guid, fo.id, [&](uint64_t id, std::string_view) {
                      s.insert({m.guid, id});
                      return Status::Ok();
                    }).ok());
    }
  }
  return s;
}

// What the survey `s` knows of mailbox g (no copy and no user when nothing).
const engine::MailboxSurvey& In(const engine::OrgSurvey& s, const Guid& g) {
  static const engine::MailboxSurvey kNone;
  const auto it = s.mailboxes.find(g);
  return it == s.mailboxes.end() ? kNone : it->second;
}

// The content checksum mailbox g had in the source before anything moved.
uint64_t ChecksumBefore(const MoveFixture& f, const Guid& g) {
  const auto& copies = In(f.before(), g).copies;
  EXPECT_EQ(copies.size(), 1u) << g.ToString();
  return copies.empty() ? 0 : copies[0].digest.checksum;
}

// The move invariant between the fixture's start and now.
std::vector<std::string> Violations(MoveFixture& f) {
  return engine::MoveInvariantViolations(f.before(), f.Snapshot());
}
const std::vector<std::string> kNoViolations;

// The items of the source that this fault configuration faults.
std::set<std::pair<Guid, uint64_t>> FaultedItems(MoveFixture& f, const engine::FaultOptions& faults) {
  engine::FaultInjector fi(faults);
  std::set<std::pair<Guid, uint64_t>> want;
  for (const auto& it : AllItems(f)) {
    if (fi.IsFaulted(it.first, it.second)) want.insert(it);
  }
  return want;
}

TEST(MoveTest, WholeOrganisationMovesWithIdenticalContent) {
  MoveFixture f;
  auto rep = f.MoveAll({});
  ASSERT_EQ(rep.mailboxes.size(), 12u);
  EXPECT_EQ(rep.Completed(), 12u);
  EXPECT_EQ(rep.ItemsDropped(), 0u);
  EXPECT_EQ(rep.ItemsCopied(), f.populated().items);
  const auto after = f.Snapshot();
  EXPECT_EQ(engine::MoveInvariantViolations(f.before(), after), kNoViolations);
  ASSERT_EQ(f.before().mailboxes.size(), 12u);
  for (const auto& [g, was] : f.before().mailboxes) {
    const auto& now = In(after, g);
    ASSERT_EQ(now.copies.size(), 1u);
    EXPECT_EQ(now.copies[0].store, "MS2");
    EXPECT_EQ(now.copies[0].info.state, MailboxState::kActive);
    EXPECT_EQ(now.copies[0].digest.checksum, ChecksumBefore(f, g));
    EXPECT_EQ(now.home_store, "MS2");
  }
  std::vector<MoveRecord> moves;
  ASSERT_TRUE(f.org().directory().ListMoves(&moves).ok());
  EXPECT_TRUE(moves.empty());
  // The report carries phases and totals.
  auto j = rep.ToJson();
  EXPECT_EQ(j["totals"]["mailboxes_completed"], 12);
  EXPECT_TRUE(j["mailboxes"][0]["phase_seconds"].contains("copy"));
}

TEST(MoveTest, KeepSourceLeavesSoftDeletedCopiesAndLogonsFollowHomeMdb) {
  MoveFixture f;
  MoveOptions o;
  o.keep_source = true;
  auto rep = f.MoveAll(o);
  EXPECT_EQ(rep.Completed(), 12u);
  const auto after = f.Snapshot();
  EXPECT_EQ(engine::MoveInvariantViolations(f.before(), after), kNoViolations);
  auto ms1 = f.org().GetStore("MS1");
  auto ms2 = f.org().GetStore("MS2");
  ASSERT_EQ(after.mailboxes.size(), 12u);
  for (const auto& [g, now] : after.mailboxes) {
    ASSERT_EQ(now.copies.size(), 2u);
    for (const auto& w : now.copies) {
      EXPECT_EQ(w.info.state, w.store == "MS1" ? MailboxState::kSoftDeleted : MailboxState::kActive);
    }
    EXPECT_TRUE((*ms1)->Logon(g).IsNotFound());
    EXPECT_TRUE((*ms2)->Logon(g).ok());
  }
  // Moving back purges the soft-deleted copies on the way.
  engine::MoveRequest back;
  back.from_store = "MS2";
  back.options.target = "MS1";
  auto plan = engine::PlanMoves(f.org(), back);
  ASSERT_TRUE(plan.ok());
  engine::MoveCounters c;
  auto rep2 = engine::RunMoves(f.org(), *plan, back.options, &c);
  EXPECT_EQ(rep2.Completed(), 12u);
  EXPECT_EQ(Violations(f), kNoViolations);
  for (const auto& [g, now] : f.Snapshot().mailboxes) {
    ASSERT_EQ(now.copies.size(), 1u);
    EXPECT_EQ(now.copies[0].store, "MS1");
    EXPECT_EQ(now.copies[0].digest.checksum, ChecksumBefore(f, g));
  }
}

TEST(MoveTest, SkipOnErrorDropsExactlyTheCorruptItems) {
  MoveFixture f(0.03);
  ASSERT_GT(f.populated().corrupted.size(), 3u);
  std::set<std::pair<Guid, uint64_t>> corrupted;
  for (const auto& c : f.populated().corrupted) corrupted.insert({c.mailbox, c.item_id});
  MoveOptions o;
  o.retry.bad_item_limit = 1000000;
  auto rep = f.MoveAll(o);
  EXPECT_EQ(rep.Completed(), 12u);
  EXPECT_EQ(DroppedSet(rep), corrupted);
  for (const auto& m : rep.mailboxes) {
    EXPECT_EQ(m.outcome, m.dropped.empty() ? Outcome::kCompleted : Outcome::kCompletedWithDroppedItems);
    for (const auto& d : m.dropped) {
      EXPECT_FALSE(d.reason.empty());
      EXPECT_FALSE(d.folder_path.empty());
    }
  }
  EXPECT_EQ(rep.ItemsCopied() + rep.ItemsDropped(), f.populated().items);
}

TEST(MoveTest, BadItemLimitZeroKeepsMailboxesWithCorruptItemsOnTheSource) {
  MoveFixture f(0.03);
  std::set<Guid> with_corrupt;
  for (const auto& c : f.populated().corrupted) with_corrupt.insert(c.mailbox);
  ASSERT_FALSE(with_corrupt.empty());
  ASSERT_LT(with_corrupt.size(), 12u);
  auto rep = f.MoveAll({});  // B = 0
  EXPECT_EQ(rep.Failed(), with_corrupt.size());
  const auto after = f.Snapshot();
  EXPECT_EQ(engine::MoveInvariantViolations(f.before(), after), kNoViolations);
  for (const auto& m : rep.mailboxes) {
    const bool bad = with_corrupt.count(m.mailbox) > 0;
    EXPECT_EQ(m.outcome == Outcome::kFailed, bad) << m.user << ": " << m.reason;
    const auto& now = In(after, m.mailbox);
    ASSERT_EQ(now.copies.size(), 1u);
    const auto& w = now.copies[0];
    EXPECT_EQ(w.store, bad ? "MS1" : "MS2");
    EXPECT_EQ(w.info.state, MailboxState::kActive);
    EXPECT_EQ(w.digest.checksum, ChecksumBefore(f, m.mailbox));  // unchanged where it stayed
    EXPECT_EQ(now.home_store, w.store);
    if (bad) {
      EXPECT_NE(m.reason.find("bad-item limit"), std::string::npos) << m.reason;
    }
  }
}

TEST(MoveTest, TransientFaultsAreRetriedAndNeverDropped) {
  for (int retries : {1, 2, 3}) {
    SCOPED_TRACE(retries);
    MoveFixture f;
    MoveOptions o;
    o.retry.retries = retries;
    o.faults.rate = 0.4;
    o.faults.kind = engine::FaultOptions::Kind::kTransient;
    o.faults.seed = 5;
    auto rep = f.MoveAll(o);
    EXPECT_EQ(rep.Completed(), 12u);
    EXPECT_EQ(rep.ItemsDropped(), 0u);
    uint64_t retried = 0;
    for (const auto& m : rep.mailboxes) retried += m.retries;
    EXPECT_GT(retried, f.populated().items / 4);
    EXPECT_EQ(Violations(f), kNoViolations);
  }
}

TEST(MoveTest, WithoutRetriesTransientFaultsDropExactlyTheFaultedItems) {
  MoveFixture f;
  MoveOptions o;
  o.retry.retries = 0;
  o.retry.bad_item_limit = 1000000;
  o.faults = {0.05, engine::FaultOptions::Kind::kTransient, 9};
  const auto want = FaultedItems(f, o.faults);
  ASSERT_FALSE(want.empty());
  EXPECT_EQ(DroppedSet(f.MoveAll(o)), want);
}

TEST(MoveTest, PersistentFaultsDropExactlyTheFaultedItemsWhateverTheRetries) {
  for (int retries : {1, 3}) {
    SCOPED_TRACE(retries);
    MoveFixture f;
    MoveOptions o;
    o.retry.retries = retries;
    o.retry.bad_item_limit = 1000000;
    o.faults = {0.05, engine::FaultOptions::Kind::kPersistent, 21};
    const auto want = FaultedItems(f, o.faults);
    ASSERT_FALSE(want.empty());
    auto rep = f.MoveAll(o);
    EXPECT_EQ(DroppedSet(rep), want);
    uint64_t retried = 0;
    for (const auto& m : rep.mailboxes) retried += m.retries;
    EXPECT_EQ(retried, want.size() * uint64_t(retries));
  }
}

TEST(MoveTest, ConcurrencyLevelsGiveIdenticalEndStates) {
  std::map<Guid, std::vector<std::pair<std::string, uint64_t>>> first;  // mailbox -> (store, checksum) per copy
  for (int c : {1, 2, 8}) {
    SCOPED_TRACE(c);
    MoveFixture f(0.02);
    MoveOptions o;
    o.concurrency = c;
    o.retry.bad_item_limit = 3;
    o.batch_bytes = 64 << 10;  // many batches, so groups really interleave
    auto rep = f.MoveAll(o);
    EXPECT_EQ(rep.Completed() + rep.Failed(), 12u);
    const auto snap = f.Snapshot();
    EXPECT_EQ(engine::MoveInvariantViolations(f.before(), snap), kNoViolations);
    std::map<Guid, std::vector<std::pair<std::string, uint64_t>>> copies;
    for (const auto& [g, m] : snap.mailboxes) {
      for (const auto& copy : m.copies) copies[g].push_back({copy.store, copy.digest.checksum});
    }
    if (first.empty()) {
      first = copies;
      continue;
    }
    EXPECT_EQ(copies, first);
  }
}

TEST(MoveTest, RecompressionToAnotherLevelKeepsContent) {
  StoreOptions target;
  target.zstd_level = 9;
  MoveFixture f(0, target);
  auto rep = f.MoveAll({});
  EXPECT_EQ(rep.Completed(), 12u);
  EXPECT_GT(rep.time.recompress_s, 0.0);
  EXPECT_EQ(Violations(f), kNoViolations);
  for (const auto& [g, now] : f.Snapshot().mailboxes) {
    ASSERT_EQ(now.copies.size(), 1u);
    EXPECT_EQ(now.copies[0].store, "MS2");
    EXPECT_EQ(now.copies[0].digest.checksum, ChecksumBefore(f, g));
  }
}

TEST(MoveTest, LogQuotaOnTheTargetFailsMovesCleanly) {
  StoreOptions target;
  target.log.quota_bytes = 600u << 10;  // far less than the data
  target.log.file_bytes = 64u << 10;
  MoveFixture f(0, target);
  MoveOptions o;
  o.concurrency = 8;         // rollbacks happen while other moves still write,
  o.batch_bytes = 32 << 10;  // in many small batches: the writer must not group them
  auto rep = f.MoveAll(o);
  EXPECT_GT(rep.Failed(), 0u);
  bool quota_reason = false;
  for (const auto& m : rep.mailboxes) {
    if (m.outcome == Outcome::kFailed) quota_reason |= m.reason.find("log space exhausted") != std::string::npos;
  }
  EXPECT_TRUE(quota_reason);
  const auto after = f.Snapshot();
  EXPECT_EQ(engine::MoveInvariantViolations(f.before(), after), kNoViolations);
  for (const auto& [g, now] : after.mailboxes) {
    ASSERT_EQ(now.copies.size(), 1u) << "a partial copy was left behind";
    EXPECT_EQ(now.copies[0].info.state, MailboxState::kActive);
    EXPECT_EQ(now.copies[0].digest.checksum, ChecksumBefore(f, g));
    EXPECT_EQ(now.home_store, now.copies[0].store);
  }
}

TEST(MoveTest, LockedMailboxRefusesLogonsAndDeliveries) {
  MoveFixture f;
  auto ms1 = *f.org().GetStore("MS1");
  const Guid g = f.before().mailboxes.begin()->first;
  Item it = testing::TestItem(1);
  auto id = ms1->Deliver(g, 2, it);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  ASSERT_TRUE(ms1->TransitionMailbox(g, {MailboxState::kActive}, MailboxState::kMovingOut).ok());
  Status logon = ms1->Logon(g);
  EXPECT_TRUE(logon.IsBusy());
  EXPECT_NE(logon.message().find("move in progress"), std::string::npos);
  auto d = ms1->Deliver(g, 2, it);
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(d.status().IsBusy());
  EXPECT_NE(d.status().message().find("move in progress"), std::string::npos);
  // A second lock of the same mailbox is refused (no double moves).
  EXPECT_TRUE(ms1->TransitionMailbox(g, {MailboxState::kActive}, MailboxState::kMovingOut).IsBusy());
}

TEST(MoveTest, PerMailboxErrorsChangeNothing) {
  MoveFixture f;
  const Guid g = f.before().mailboxes.begin()->first;
  auto user = f.org().directory().GetUserByMailbox(g);
  ASSERT_TRUE(user.ok());
  // Not registered target: the whole request fails.
  engine::MoveRequest bad;
  bad.mailboxes = {user->name};
  bad.options.target = "MS9";
  EXPECT_TRUE(engine::PlanMoves(f.org(), bad).status().IsNotFound());
  // Unknown mailbox, and a mailbox already on the target.
  engine::MoveRequest req;
  req.mailboxes = {"nobody", user->name};
  req.options.target = "MS1";
  auto plan = engine::PlanMoves(f.org(), req);
  ASSERT_TRUE(plan.ok());
  engine::MoveCounters c;
  auto rep = engine::RunMoves(f.org(), *plan, req.options, &c);
  ASSERT_EQ(rep.mailboxes.size(), 2u);
  for (const auto& m : rep.mailboxes) EXPECT_EQ(m.outcome, Outcome::kFailed);
  std::string reasons = rep.mailboxes[0].reason + " | " + rep.mailboxes[1].reason;
  EXPECT_NE(reasons.find("no user or mailbox 'nobody'"), std::string::npos) << reasons;
  EXPECT_NE(reasons.find("already in store MS1"), std::string::npos) << reasons;
  const auto after = f.Snapshot();
  EXPECT_EQ(engine::MoveInvariantViolations(f.before(), after), kNoViolations);
  for (const auto& [gg, was] : f.before().mailboxes) {
    const auto& now = In(after, gg);
    ASSERT_EQ(now.copies.size(), 1u);
    EXPECT_EQ(now.copies[0].store, "MS1");
    EXPECT_EQ(now.copies[0].digest.checksum, ChecksumBefore(f, gg));
  }
  // By GUID and by SMTP address too.
  engine::MoveRequest by_guid;
  by_guid.mailboxes = {g.ToString()};
  by_guid.options.target = "MS2";
  auto p2 = engine::PlanMoves(f.org(), by_guid);
  ASSERT_TRUE(p2.ok());
  ASSERT_EQ(p2->size(), 1u);
  EXPECT_TRUE((*p2)[0].error.empty()) << (*p2)[0].error;
}

// A round of clean-ups (FinishMoves) activates every target mailbox of the
// round in one commit of the target and deletes every source in one commit
// of the source, then the records in one directory write: the move ends as
// if each had been finished alone.
TEST(MoveTest, ARoundOfCleanUpsCommitsOncePerStore) {
  MoveFixture f;
  MoveOptions o;
  o.target = "MS2";
  engine::MoveRequest req;
  req.from_store = "MS1";
  req.options = o;
  auto plan = engine::PlanMoves(f.org(), req);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->size(), 12u);
  engine::MoveCounters counters;
  engine::MailboxMover mover(f.org(), o, &counters);
  std::vector<MoveRecord> records;
  for (const engine::PlannedMove& p : *plan) {
    std::optional<MoveRecord> rec;
    const engine::MailboxReport rep = mover.Move(p.task, &rec);
    ASSERT_EQ(rep.outcome, Outcome::kCompleted) << rep.reason;
    ASSERT_TRUE(rec.has_value());
    records.push_back(*rec);
  }
  auto src = f.org().GetHandle("MS1");
  auto dst = f.org().GetHandle("MS2");
  ASSERT_TRUE(src.ok() && dst.ok());
  Store* ms1 = dynamic_cast<Store*>(*src);
  Store* ms2 = dynamic_cast<Store*>(*dst);
  ASSERT_TRUE(ms1 && ms2);
  for (const MoveRecord& r : records) {
    EXPECT_EQ(ms1->GetMailbox(r.mailbox)->state, MailboxState::kMovingOut);
    EXPECT_EQ(ms2->GetMailbox(r.mailbox)->state, MailboxState::kMovingIn);
  }
  const uint64_t src_groups = ms1->stats().writer.groups, dst_groups = ms2->stats().writer.groups;
  const std::vector<Status> done = engine::FinishMoves(f.org(), records);
  ASSERT_EQ(done.size(), records.size());
  for (const Status& s : done) EXPECT_OK(s);
  EXPECT_EQ(ms1->stats().writer.groups, src_groups + 1);
  EXPECT_EQ(ms2->stats().writer.groups, dst_groups + 1);
  const engine::OrgSurvey after = f.Snapshot();
  EXPECT_EQ(engine::MoveInvariantViolations(f.before(), after), std::vector<std::string>{});
  for (const auto& [g, m] : after.mailboxes) EXPECT_EQ(m.home_store, "MS2") << g.ToString();
  for (const MoveRecord& r : records) {
    EXPECT_TRUE(ms1->GetMailbox(r.mailbox).status().IsNotFound());
    EXPECT_EQ(ms2->GetMailbox(r.mailbox)->state, MailboxState::kActive);
    EXPECT_TRUE(f.org().directory().GetMove(r.mailbox).status().IsNotFound());
  }
  // Finishing them again finds nothing left to do.
  for (const Status& s : engine::FinishMoves(f.org(), records)) EXPECT_OK(s);
}

// The directory's share of a move is in the report: the requests it was sent
// per moved mailbox and the latency of the homeMDB switch.
// The write path's figures (what `bench` prints per level): the target's and
// the source's commit groups and syncs during the run. With sync batch every
// LMDB commit syncs data.mdb, and nothing else does: a flush (the source's
// lock before the switch, each round of clean-ups before its records go)
// syncs the log, which holds every commit.
TEST(MoveTest, ReportCountsTheStoresCommitsAndSyncs) {
  MoveFixture f;
  MoveOptions o;
  o.concurrency = 2;
  auto rep = f.MoveAll(o);
  ASSERT_EQ(rep.Completed(), 12u);
  ASSERT_TRUE(rep.target.has_value());
  ASSERT_TRUE(rep.source.has_value());
  const engine::TargetFigures& t = *rep.target;
  const engine::TargetFigures& s = *rep.source;
  EXPECT_EQ(s.store, "MS1");
  EXPECT_EQ(t.sync, "batch");
  // Every mailbox: a folder tree, item batches and a final header on the target.
  EXPECT_GE(t.groups, 12u);
  EXPECT_GT(t.log_syncs, 0u);
  // The source: a lock and a deletion per mailbox, grouped at most by two.
  EXPECT_GE(s.groups, 12u);
  EXPECT_LE(s.groups, 24u);
  // Deferred data syncs (the default): data.mdb is synced at data
  // checkpoints, one per 64 MiB of log, not by each commit.
  EXPECT_LE(s.data_syncs, 1u);
  EXPECT_LE(t.data_syncs, 1u);
  EXPECT_GT(s.log_syncs, 0u);
  const nlohmann::json j = rep.ToJson();
  ASSERT_TRUE(j.contains("source"));
  EXPECT_EQ(j["source"]["data_syncs"].get<uint64_t>(), s.data_syncs);
  EXPECT_EQ(j["target"]["data_syncs"].get<uint64_t>(), t.data_syncs);
  // Bytes copied in memory per byte moved: each record once, into LMDB's
  // page on the target; the mover hands the source's own bytes to the
  // target's writer, which logs them from there (a gathered write), so
  // only keys, headers, the log's framing and the source's writes add to it.
  EXPECT_EQ(rep.mover_copied_bytes, 0u);
  EXPECT_GE(t.copied_bytes, rep.BytesCopied());
  EXPECT_LT(t.copied_bytes, rep.BytesCopied() + rep.BytesCopied() / 10);
  EXPECT_GE(rep.MemoryCopiesPerByte(), 1.0);
  EXPECT_LT(rep.MemoryCopiesPerByte(), 1.1);
  EXPECT_EQ(j["totals"]["memory_copies_per_byte"].get<double>(), rep.MemoryCopiesPerByte());
  EXPECT_EQ(j["target"]["copied_bytes"].get<uint64_t>(), t.copied_bytes);
  // The source gave its moved mailboxes' record pages back to the page
  // cache; the target deleted nothing.
  EXPECT_GT(s.dead_bytes_dropped, 0u);
  EXPECT_EQ(t.dead_bytes_dropped, 0u);
  EXPECT_EQ(j["source"]["dead_bytes_dropped"].get<uint64_t>(), s.dead_bytes_dropped);
}

TEST(MoveTest, AMailboxThatFitsOneBatchCostsTheTargetTwoCommits) {
  // The folder tree goes with the first batch of items and the final header
  // with the last: a mailbox whose items fit one batch is one commit, its
  // activation after the switch the other (four, before the tree and the
  // header shared the items' batch). One mailbox per run, so that no two
  // mailboxes' batches or clean-ups can share a commit.
  MoveFixture f;
  MoveOptions o;
  o.concurrency = 1;
  o.batch_bytes = 64u << 20;
  o.target = "MS2";
  engine::MoveRequest req;
  req.from_store = "MS1";
  req.options = o;
  auto plan = engine::PlanMoves(f.org(), req);
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->size(), 12u);
  uint64_t copied = 0;
  for (const engine::PlannedMove& p : *plan) {
    engine::MoveCounters c;
    auto rep = engine::RunMoves(f.org(), {p}, o, &c);
    ASSERT_EQ(rep.Completed(), 1u);
    ASSERT_TRUE(rep.target.has_value());
    EXPECT_EQ(rep.target->groups, 2u) << p.task.user.name;
    EXPECT_EQ(rep.target->batches, 2u) << p.task.user.name;
    copied += rep.ItemsCopied();
  }
  // Every item arrived, with the header's counts, and the move verified.
  auto t = f.org().GetStore("MS2");
  ASSERT_TRUE(t.ok());
  std::vector<MailboxInfo> boxes;
  ASSERT_TRUE((*t)->ListMailboxes(&boxes).ok());
  ASSERT_EQ(boxes.size(), 12u);
  uint64_t items = 0;
  for (const MailboxInfo& m : boxes) {
    EXPECT_EQ(m.state, MailboxState::kActive);
    items += m.item_count;
  }
  EXPECT_EQ(items, copied);
}

TEST(MoveTest, ReportCarriesTheDirectorysFigures) {
  MoveFixture f;
  MoveOptions o;
  o.concurrency = 3;
  auto rep = f.MoveAll(o);
  ASSERT_EQ(rep.Completed(), 12u);
  const engine::DirectoryFigures& d = rep.directory;
  EXPECT_EQ(d.where, f.org().directory().Describe());
  EXPECT_EQ(d.mailboxes_moved, 12u);
  EXPECT_EQ(d.switches, 12u);
  if (d.where.rfind("ldap", 0) == 0) {  // the fixture's directory in slapd (MBX_TEST_DIRECTORY=ldap)
    EXPECT_EQ(d.backend, "ldap");
    // Create, advance to 'verified', the switch (read the record, the
    // asserted homeMDB modify, the record's step) and the deletion: 6, plus
    // the first look-ups of the source store (cached after).
    EXPECT_GE(d.operations_per_mailbox, 6.0);
    EXPECT_LE(d.operations_per_mailbox, 7.0);
  } else {
    EXPECT_EQ(d.backend, "lmdb");
    // The embedded directory, per mailbox: the record's creation, the
    // switch and the record's deletion (3; no 'verified' step: its switch is
    // one transaction). Where a store lives is looked up once per
    // organisation (two requests, by each of the 3 workers at most if they
    // race to it).
    EXPECT_GE(d.operations, 12u * 3u);
    EXPECT_LE(d.operations, 12u * 3u + 3u * 2u);
  }
  EXPECT_GT(d.switch_p50_ms, 0.0);
  EXPECT_LE(d.switch_p50_ms, d.switch_p95_ms);
  EXPECT_LE(d.switch_p95_ms, d.switch_max_ms);
  for (const auto& m : rep.mailboxes) {
    EXPECT_GT(m.switch_seconds, 0.0) << m.user;
    EXPECT_LE(m.switch_seconds, m.phase_seconds.at("switch")) << m.user;
  }
  // In the JSON report, and read back.
  auto j = rep.ToJson();
  ASSERT_TRUE(j.contains("directory"));
  auto back = engine::DirectoryFigures::FromJson(j["directory"]);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->operations, d.operations);
  EXPECT_EQ(back->switch_p95_ms, d.switch_p95_ms);
  EXPECT_FALSE(engine::DirectoryFigures::FromJson(nlohmann::json::object()).ok());
}

// Percentiles are nearest-rank over the mailboxes that reached the switch;
// failed mailboxes count operations but are not moved mailboxes.
TEST(MoveTest, DirectoryFiguresPercentilesAndDivisor) {
  std::vector<engine::MailboxReport> boxes(22);
  for (size_t i = 0; i < 20; ++i) {
    boxes[i].outcome = Outcome::kCompleted;
    boxes[i].switch_seconds = double(i + 1) / 1000.0;  // 1..20 ms
  }
  boxes[20].outcome = Outcome::kFailed;  // never switched
  boxes[21].outcome = Outcome::kFailed;
  auto d = engine::DirectoryFigures::From("ldap://127.0.0.1:1/ou=x", boxes, 1000, 1300);
  EXPECT_EQ(d.backend, "ldap");
  EXPECT_EQ(d.operations, 300u);
  EXPECT_EQ(d.mailboxes_moved, 20u);
  EXPECT_DOUBLE_EQ(d.operations_per_mailbox, 15.0);
  EXPECT_EQ(d.switches, 20u);
  EXPECT_NEAR(d.switch_p50_ms, 10.0, 1e-9);
  EXPECT_NEAR(d.switch_p95_ms, 19.0, 1e-9);
  EXPECT_NEAR(d.switch_max_ms, 20.0, 1e-9);
  auto none = engine::DirectoryFigures::From("/o/directory", {}, 5, 5);
  EXPECT_EQ(none.backend, "lmdb");
  EXPECT_EQ(none.operations_per_mailbox, 0.0);
  EXPECT_EQ(none.switch_p95_ms, 0.0);
}


// Another writer sets a user's homeMDB between the move's verify and its
// switch: the switch's guard fails, the move fails cleanly, the target copy
// is rolled back, the source stays active and whole, and homeMDB stays as
// the other writer left it. (Both directory backends: the .ldap run too.)
TEST(MoveTest, HomeMdbChangedByAnotherWriterFailsTheMoveCleanly) {
  MoveFixture f(0, {}, 4, 1u << 20);
  const std::string elsewhere = StoreDistinguishedName("MS9", "SERVER9");
  std::string victim;
  Interpose(f, [&](std::string_view call, int n, Directory& d) {
    if (call != "SwitchHome" || n != 1) return;
    // The second mailbox to switch: another writer got there first.
    std::vector<MoveRecord> moves;
    ASSERT_OK(d.ListMoves(&moves));
    for (const auto& m : moves) {
      if (PastSwitch(m.step)) continue;  // (an earlier mailbox's, awaiting its clean-up)
      auto u = d.GetUserByMailbox(m.mailbox);
      ASSERT_TRUE(u.ok());
      UserRecord changed = *u;
      changed.home_mdb = elsewhere;
      changed.home_server = "SERVER9";
      ASSERT_OK(d.PutUsers({changed}));
      victim = u->name;
      return;
    }
  });
  MoveOptions o;
  o.concurrency = 1;
  const auto rep = f.MoveAll(o);
  ASSERT_FALSE(victim.empty());
  ASSERT_EQ(rep.mailboxes.size(), 4u);
  int failed = 0;
  for (const auto& m : rep.mailboxes) {
    if (m.user != victim) {
      EXPECT_NE(m.outcome, Outcome::kFailed) << m.user << ": " << m.reason;
      continue;
    }
    ++failed;
    EXPECT_EQ(m.outcome, Outcome::kFailed);
    EXPECT_NE(m.reason.find("homeMDB"), std::string::npos) << m.reason;
    const auto after = f.Snapshot();
    const auto& now = In(after, m.mailbox);
    ASSERT_EQ(now.copies.size(), 1u) << "the target copy was not rolled back";
    EXPECT_EQ(now.copies[0].store, "MS1");
    EXPECT_EQ(now.copies[0].info.state, MailboxState::kActive);
    EXPECT_EQ(now.copies[0].digest.checksum, ChecksumBefore(f, m.mailbox));
    auto u = f.org().directory().GetUser(victim);
    ASSERT_TRUE(u.ok());
    EXPECT_EQ(u->home_mdb, elsewhere);
    EXPECT_TRUE(f.org().directory().GetMove(m.mailbox).status().IsNotFound()) << "move record left behind";
  }
  EXPECT_EQ(failed, 1);
}

// The directory server dies during the moves (killed at a guarded write) and
// comes back: 'recover' finishes or rolls back every move, and the
// invariant holds. LDAP only (MBX_TEST_DIRECTORY=ldap).
TEST(MoveTest, DirectoryServerKilledDuringMovesThenRecover) {
  // Registered only with MBX_TEST_DIRECTORY=ldap (tests/CMakeLists.txt).
  ASSERT_TRUE(testing::UseLdapDirectory()) << "run with MBX_TEST_DIRECTORY=ldap";
  struct Point {
    const char* call;
    int n;
  };
  for (const Point p : {Point{"CreateMove", 3}, Point{"AdvanceMove", 5}, Point{"SwitchHome", 1},
                        Point{"DeleteMove", 2}}) {
    SCOPED_TRACE(std::string(p.call) + " #" + std::to_string(p.n));
    MoveFixture f(0, {}, 6, 1u << 20);
    Slapd& slapd = testing::SharedSlapd();
    bool killed = false;
    Interpose(f, [&](std::string_view call, int n, Directory&) {
      if (call == p.call && n == p.n) {
        EXPECT_OK(slapd.Kill());
        killed = true;
      }
    });
    MoveOptions o;
    o.concurrency = 2;
    const auto rep = f.MoveAll(o);
    ASSERT_TRUE(killed);
    // A move failed, or (killed at a clean-up's DeleteMove, which may run
    // after every mailbox switched) a clean-up was left for recover.
    size_t noticed = rep.Failed();
    for (const auto& m : rep.mailboxes) noticed += m.reason.find("clean-up incomplete") != std::string::npos ? 1 : 0;
    EXPECT_GT(noticed, 0u) << "no move noticed the directory server was gone";
    ASSERT_OK(slapd.Restart());
    auto rec = engine::Recover(f.org());
    ASSERT_TRUE(rec.ok()) << rec.status().ToString();
    EXPECT_TRUE(rec->all_done());
    EXPECT_EQ(Violations(f), kNoViolations);
    std::vector<MoveRecord> left;
    ASSERT_OK(f.org().directory().ListMoves(&left));
    EXPECT_TRUE(left.empty());
  }
}

}  // namespace
}  // namespace mbx
