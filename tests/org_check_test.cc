// The organisation survey and the move invariant (engine/org_check.h) alone:
// what a survey of a generated organisation holds, each kind of problem it
// finds (made by hand in the stores and the directory), corrupt items listed
// but not problems, and the violations MoveInvariantViolations names.
#include "engine/org_check.h"

#include <set>

#include "tests/move_fixture.h"

namespace mbx {
namespace {

using engine::MoveInvariantViolations;
using engine::OrgSurvey;
using engine::ProblemKind;
using testing::MoveFixture;

const std::vector<std::string> kNone;

// The kinds of the survey's problems, each with the mailbox or user it names.
std::multiset<std::pair<ProblemKind, std::string>> Problems(const OrgSurvey& s) {
  std::multiset<std::pair<ProblemKind, std::string>> out;
  for (const auto& p : s.problems) out.insert({p.kind, p.mailbox ? p.mailbox->ToString() : p.user});
  return out;
}

Guid FirstMailbox(MoveFixture& f) { return f.before().mailboxes.begin()->first; }

TEST(OrgCheckTest, SurveyOfAGeneratedOrganisation) {
  MoveFixture f(0, {}, 6, 1u << 20);
  const OrgSurvey& s = f.before();
  EXPECT_TRUE(s.clean()) << s.problems.front().ToString();
  EXPECT_EQ(s.stores.size(), 2u);
  EXPECT_EQ(s.users.size(), 6u);
  ASSERT_EQ(s.mailboxes.size(), 6u);
  EXPECT_EQ(s.items_checked, f.populated().items);
  EXPECT_TRUE(s.corrupt_items.empty());
  std::set<uint64_t> checksums;
  for (const auto& [g, m] : s.mailboxes) {
    ASSERT_EQ(m.copies.size(), 1u);
    const engine::MailboxCopy& c = m.copies[0];
    EXPECT_EQ(c.store, "MS1");
    EXPECT_EQ(c.info.guid, g);
    EXPECT_EQ(c.info.state, MailboxState::kActive);
    EXPECT_TRUE(c.digest_status.ok());
    EXPECT_EQ(c.digest.items, c.info.item_count);
    checksums.insert(c.digest.checksum);
    EXPECT_EQ(m.active(), &c);
    EXPECT_EQ(m.in("MS1"), &c);
    EXPECT_EQ(m.in("MS2"), nullptr);
    ASSERT_TRUE(m.user.has_value());
    EXPECT_EQ(m.user->mailbox, g);
    EXPECT_EQ(m.home_store, "MS1");
  }
  EXPECT_EQ(checksums.size(), 6u) << "two mailboxes with one checksum";
  // The same organisation surveyed again gives the same checksums.
  const OrgSurvey again = f.Snapshot();
  EXPECT_EQ(MoveInvariantViolations(s, again), kNone);
}

TEST(OrgCheckTest, CorruptItemsAreListedExactlyAndAreNotProblems) {
  MoveFixture f(0.05, {}, 6, 1u << 20);
  ASSERT_FALSE(f.populated().corrupted.empty());
  const OrgSurvey& s = f.before();
  EXPECT_TRUE(s.clean());
  std::set<std::pair<Guid, uint64_t>> want, got;
  for (const auto& c : f.populated().corrupted) want.insert({c.mailbox, c.item_id});
  for (const auto& c : s.corrupt_items) {
    got.insert({c.mailbox, c.item_id});
    EXPECT_EQ(c.store, "MS1");
    EXPECT_FALSE(c.reason.empty());
    EXPECT_FALSE(c.owner.empty());
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(s.items_checked, f.populated().items);
}

TEST(OrgCheckTest, AMailboxLeftLockedWithoutAMoveRecordIsAProblem) {
  MoveFixture f(0, {}, 4, 1u << 20);
  const Guid g = FirstMailbox(f);
  Store* ms1 = *f.org().GetStore("MS1");
  ASSERT_TRUE(ms1->TransitionMailbox(g, {MailboxState::kActive}, MailboxState::kMovingOut).ok());
  OrgSurvey s = f.Snapshot();
  EXPECT_EQ(Problems(s), (std::multiset<std::pair<ProblemKind, std::string>>{
                             {ProblemKind::kMailboxNotActive, g.ToString()},
                             {ProblemKind::kLeftInTransition, g.ToString()}}));
  // A move in flight holds its record: only homeMDB's copy not being active remains.
  MoveRecord rec;
  rec.mailbox = g;
  rec.user = s.mailboxes.at(g).user->name;
  rec.source = "MS1";
  rec.target = "MS2";
  rec.step = MoveStep::kCopying;
  ASSERT_TRUE(f.org().directory().PutMove(rec).ok());
  s = f.Snapshot();
  EXPECT_EQ(Problems(s), (std::multiset<std::pair<ProblemKind, std::string>>{
                             {ProblemKind::kMailboxNotActive, g.ToString()}}));
  EXPECT_EQ(s.problems[0].state, MailboxState::kMovingOut);
  EXPECT_EQ(s.problems[0].store, "MS1");
}

TEST(OrgCheckTest, HomeMdbThatDisagreesIsAProblem) {
  MoveFixture f(0, {}, 4, 1u << 20);
  std::vector<UserRecord> users;
  ASSERT_TRUE(f.org().directory().ListUsers(&users).ok());
  ASSERT_EQ(users.size(), 4u);
  auto ms2 = f.org().directory().GetStore("MS2");
  ASSERT_TRUE(ms2.ok());
  users[0].home_mdb = ms2->dn;  // names a store that does not hold it
  users[1].home_mdb = "CN=Nowhere,CN=InformationStore";
  ASSERT_TRUE(f.org().directory().PutUsers({users[0], users[1]}).ok());
  const OrgSurvey s = f.Snapshot();
  EXPECT_EQ(Problems(s), (std::multiset<std::pair<ProblemKind, std::string>>{
                             {ProblemKind::kMailboxMissing, users[0].mailbox.ToString()},
                             {ProblemKind::kHomeMdbUnknownStore, users[1].name}}));
  EXPECT_EQ(s.mailboxes.at(users[0].mailbox).home_store, "MS2");
  EXPECT_EQ(s.mailboxes.at(users[1].mailbox).home_store, "");
  for (const auto& p : s.problems) {
    if (p.kind == ProblemKind::kHomeMdbUnknownStore) {
      EXPECT_EQ(p.home_mdb, users[1].home_mdb);
    }
  }
  const auto bad = MoveInvariantViolations(f.before(), s);
  EXPECT_EQ(bad.size(), 4u);  // two problems, two mailboxes whose homeMDB names another store
  bool names_ms2 = false;
  for (const auto& v : bad) names_ms2 |= v.find("its homeMDB names MS2") != std::string::npos;
  EXPECT_TRUE(names_ms2) << ::testing::PrintToString(bad);
}

TEST(OrgCheckTest, ACopyActiveInTwoStoresOrOwnedByNoUserIsAProblem) {
  MoveFixture f(0, {}, 4, 1u << 20);
  const Guid g = FirstMailbox(f);
  // The same mailbox written into MS2 too, active: its header and folders.
  Store* ms1 = *f.org().GetStore("MS1");
  Store* ms2 = *f.org().GetStore("MS2");
  auto r = ms1->BeginRead();
  ASSERT_TRUE(r.ok());
  std::vector<MailboxInfo> ms;
  ASSERT_TRUE(r->ListMailboxes(&ms).ok());
  std::vector<FolderInfo> folders;
  ASSERT_TRUE(r->ListFolders(g, &folders).ok());
  WriteBatch b;
  for (const auto& m : ms) {
    if (m.guid == g) b.PutMailbox(m);
  }
  for (const auto& fo : folders) b.PutFolder(g, fo);
  // And a mailbox no user owns.
  MailboxInfo orphan;
  orphan.guid = testing::TestGuid(77);
  orphan.owner = "nobody";
  b.PutMailbox(orphan);
  b.PutFolder(orphan.guid, folders[0]);
  ASSERT_TRUE(ms2->Write(std::move(b)).ok());

  const OrgSurvey s = f.Snapshot();
  EXPECT_EQ(Problems(s), (std::multiset<std::pair<ProblemKind, std::string>>{
                             {ProblemKind::kActiveInSeveralStores, g.ToString()},
                             {ProblemKind::kMailboxWithoutUser, orphan.guid.ToString()}}));
  EXPECT_EQ(s.mailboxes.at(g).active_copies(), 2);
  EXPECT_EQ(s.mailboxes.at(g).active(), nullptr);
  const auto bad = MoveInvariantViolations(f.before(), s);
  const std::string all = ::testing::PrintToString(bad);
  EXPECT_NE(all.find(g.ToString() + " is active in 2 stores"), std::string::npos) << all;
  EXPECT_NE(all.find(orphan.guid.ToString() + " became active"), std::string::npos) << all;
}

TEST(OrgCheckTest, TheInvariantHoldsAfterAMoveAndNamesWhatChanged) {
  MoveFixture f(0, {}, 4, 1u << 20);
  const auto rep = f.MoveAll({});
  ASSERT_EQ(rep.Completed(), 4u);
  OrgSurvey after = f.Snapshot();
  EXPECT_EQ(MoveInvariantViolations(f.before(), after), kNone);
  for (const auto& [g, m] : after.mailboxes) {
    ASSERT_NE(m.active(), nullptr);
    EXPECT_EQ(m.active()->store, "MS2");
    EXPECT_EQ(m.home_store, "MS2");
  }
  // New mail in a moved mailbox: its content changed...
  const Guid g = FirstMailbox(f);
  Store* ms2 = *f.org().GetStore("MS2");
  uint32_t inbox = 0;
  for (const auto& [id, d] : after.mailboxes.at(g).active()->digest.by_folder) {
    if (d.kind == FolderKind::kInbox) inbox = id;
  }
  ASSERT_NE(inbox, 0u);
  ASSERT_TRUE(ms2->Deliver(g, inbox, testing::TestItem(5)).ok());
  after = f.Snapshot();
  const auto bad = MoveInvariantViolations(f.before(), after);
  ASSERT_EQ(bad.size(), 1u) << ::testing::PrintToString(bad);
  EXPECT_EQ(bad[0], g.ToString() + " changed content in MS2");
  // ...which is what the caller expects when it says so.
  std::map<Guid, uint64_t> expected = {{g, after.mailboxes.at(g).active()->digest.checksum}};
  EXPECT_EQ(MoveInvariantViolations(f.before(), after, expected), kNone);
  // A mailbox deleted from its store is active nowhere.
  ASSERT_TRUE(ms2->DeleteMailboxIn(g, {MailboxState::kActive}).ok());
  const auto gone = MoveInvariantViolations(f.before(), f.Snapshot());
  const std::string all = ::testing::PrintToString(gone);
  EXPECT_NE(all.find(g.ToString() + " is active nowhere"), std::string::npos) << all;
  EXPECT_NE(all.find("mailbox-missing"), std::string::npos) << all;
}

}  // namespace
}  // namespace mbx
