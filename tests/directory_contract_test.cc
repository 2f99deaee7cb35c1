// The Directory contract (store/directory.h), the same cases against each
// backend: the embedded LMDB directory in a temporary folder, and LDAP
// against the test process's private slapd, each test under its own base.
#include <gtest/gtest.h>

#include <thread>

#include "store/directory.h"
#include "store/ldap_directory.h"
#include "tests/ldap_test_util.h"
#include "tests/test_util.h"

namespace mbx {
namespace {

using testing::TempDir;
using testing::TestGuid;

class DirectoryContractTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "ldap") {
      auto d = OpenLdapDirectory(testing::FreshLdapBase(), true);
      ASSERT_TRUE(d.ok()) << d.status().ToString();
      dir_ = std::move(d).value();
    } else {
      auto d = Directory::OpenLmdb(tmp_ / "directory", true);
      ASSERT_TRUE(d.ok()) << d.status().ToString();
      dir_ = std::move(d).value();
    }
  }

  static StoreRecord Store(const std::string& name, const std::string& server) {
    return StoreRecord{name, server, StoreDistinguishedName(name, server), "2026-11-29T10:00:00Z"};
  }
  static UserRecord User(int n, const StoreRecord& home) {
    UserRecord u;
    u.name = "user" + std::to_string(n);
    u.display_name = "User Number " + std::to_string(n);
    u.smtp = "user" + std::to_string(n) + "@example.com";
    u.mailbox = TestGuid(uint8_t(n));
    u.home_mdb = home.dn;
    u.home_server = home.server;
    return u;
  }
  static MoveRecord Move(const UserRecord& u, const std::string& source, const std::string& target, MoveStep step) {
    MoveRecord m;
    m.mailbox = u.mailbox;
    m.user = u.name;
    m.source = source;
    m.target = target;
    m.step = step;
    m.started = "2026-11-29T10:01:00Z";
    return m;
  }
  // Two stores, three users homed on MS1.
  void Populate() {
    ms1_ = Store("MS1", "SERVER1");
    ms2_ = Store("MS2", "SERVER2");
    ASSERT_OK(dir_->PutStore(ms1_));
    ASSERT_OK(dir_->PutStore(ms2_));
    for (int i = 1; i <= 3; ++i) users_.push_back(User(i, ms1_));
    ASSERT_OK(dir_->PutUsers(users_));
  }

  TempDir tmp_;
  std::unique_ptr<Directory> dir_;
  StoreRecord ms1_, ms2_;
  std::vector<UserRecord> users_;
};

void ExpectSameUser(const UserRecord& a, const UserRecord& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.display_name, b.display_name);
  EXPECT_EQ(a.smtp, b.smtp);
  EXPECT_EQ(a.mailbox, b.mailbox);
  EXPECT_EQ(a.home_mdb, b.home_mdb);
  EXPECT_EQ(a.home_server, b.home_server);
}

void ExpectSameMove(const MoveRecord& a, const MoveRecord& b) {
  EXPECT_EQ(a.mailbox, b.mailbox);
  EXPECT_EQ(a.user, b.user);
  EXPECT_EQ(a.source, b.source);
  EXPECT_EQ(a.target, b.target);
  EXPECT_EQ(MoveStepName(a.step), MoveStepName(b.step));
  EXPECT_EQ(a.started, b.started);
  EXPECT_EQ(a.keep_source, b.keep_source);
}

TEST_P(DirectoryContractTest, UsersRoundTripAndAreFoundByMailbox) {
  Populate();
  for (const auto& u : users_) {
    auto got = dir_->GetUser(u.name);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ExpectSameUser(*got, u);
    auto by = dir_->GetUserByMailbox(u.mailbox);
    ASSERT_TRUE(by.ok()) << by.status().ToString();
    EXPECT_EQ(by->name, u.name);
  }
  std::vector<UserRecord> all;
  ASSERT_OK(dir_->ListUsers(&all));
  ASSERT_EQ(all.size(), 3u);
  // Replacing a user changes it; empty optional fields come back empty.
  UserRecord changed = users_[1];
  changed.display_name = "";
  changed.smtp = "other@example.com";
  ASSERT_OK(dir_->PutUsers({changed}));
  auto got = dir_->GetUser(changed.name);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameUser(*got, changed);
  ASSERT_OK(dir_->ListUsers(&all));
  EXPECT_EQ(all.size(), 3u);
  EXPECT_TRUE(dir_->GetUser("nobody").status().IsNotFound());
  EXPECT_TRUE(dir_->GetUserByMailbox(TestGuid(99)).status().IsNotFound());
}

TEST_P(DirectoryContractTest, NamesAndValuesNeedingEscapesRoundTrip) {
  // Characters that are special in DNs (RFC 4514) and filters (RFC 4515).
  StoreRecord s = Store("MS,1+x", "SERVER1");
  s.dn = "CN=MS\\,1\\+x,CN=InformationStore,DC=example";
  ASSERT_OK(dir_->PutStore(s));
  UserRecord u = User(7, s);
  u.name = " a=b,c;d\\e*(f)#";
  u.display_name = "Zoë \"Quoted\" <x>";
  ASSERT_OK(dir_->PutUsers({u}));
  auto got = dir_->GetUser(u.name);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameUser(*got, u);
  auto by = dir_->GetUserByMailbox(u.mailbox);
  ASSERT_TRUE(by.ok()) << by.status().ToString();
  EXPECT_EQ(by->name, u.name);
  auto gs = dir_->GetStore(s.name);
  ASSERT_TRUE(gs.ok()) << gs.status().ToString();
  EXPECT_EQ(gs->dn, s.dn);
}

TEST_P(DirectoryContractTest, StoresAndServersRoundTrip) {
  Populate();
  auto s = dir_->GetStore("MS2");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->name, "MS2");
  EXPECT_EQ(s->server, "SERVER2");
  EXPECT_EQ(s->dn, ms2_.dn);
  EXPECT_EQ(s->created, ms2_.created);
  std::vector<StoreRecord> stores;
  ASSERT_OK(dir_->ListStores(&stores));
  EXPECT_EQ(stores.size(), 2u);
  EXPECT_TRUE(dir_->GetStore("MS9").status().IsNotFound());

  ASSERT_OK(dir_->PutServer({"SERVER2", "127.0.0.1:7001"}));
  ASSERT_OK(dir_->PutServer({"SERVER3", ""}));
  auto srv = dir_->GetServer("SERVER2");
  ASSERT_TRUE(srv.ok()) << srv.status().ToString();
  EXPECT_EQ(srv->address, "127.0.0.1:7001");
  ASSERT_OK(dir_->PutServer({"SERVER2", ""}));  // replaced: now local
  srv = dir_->GetServer("SERVER2");
  ASSERT_TRUE(srv.ok()) << srv.status().ToString();
  EXPECT_EQ(srv->address, "");
  std::vector<ServerRecord> servers;
  ASSERT_OK(dir_->ListServers(&servers));
  EXPECT_EQ(servers.size(), 2u);
  EXPECT_TRUE(dir_->GetServer("SERVER1").status().IsNotFound());
}

TEST_P(DirectoryContractTest, MoveRecordLifecycle) {
  Populate();
  MoveRecord m = Move(users_[0], "MS1", "MS2", MoveStep::kLocked);
  m.keep_source = true;
  ASSERT_OK(dir_->CreateMove(m));
  auto got = dir_->GetMove(m.mailbox);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameMove(*got, m);
  for (MoveStep from : {MoveStep::kLocked, MoveStep::kHierarchy, MoveStep::kCopying}) {
    MoveRecord next = m;
    next.step = MoveStep(uint8_t(from) + 1);
    ASSERT_OK(dir_->AdvanceMove(next, from, from == MoveStep::kLocked));
    m = next;
  }
  got = dir_->GetMove(m.mailbox);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->step, MoveStep::kVerified);
  // An import (no source) beside it.
  MoveRecord imp = Move(users_[1], "", "MS2", MoveStep::kImporting);
  ASSERT_OK(dir_->CreateMove(imp));
  std::vector<MoveRecord> moves;
  ASSERT_OK(dir_->ListMoves(&moves));
  ASSERT_EQ(moves.size(), 2u);
  for (const auto& r : moves) ExpectSameMove(r, r.mailbox == m.mailbox ? m : imp);
  ASSERT_OK(dir_->DeleteMove(m.mailbox));
  EXPECT_TRUE(dir_->GetMove(m.mailbox).status().IsNotFound());
  ASSERT_OK(dir_->DeleteMove(m.mailbox));  // deleting what is gone is fine
  ASSERT_OK(dir_->ListMoves(&moves));
  ASSERT_EQ(moves.size(), 1u);
  ExpectSameMove(moves[0], imp);
  // PutMove replaces unguarded.
  imp.step = MoveStep::kLocked;
  ASSERT_OK(dir_->PutMove(imp));
  got = dir_->GetMove(imp.mailbox);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->step, MoveStep::kLocked);
  EXPECT_GT(dir_->operations(), 0u);
}

TEST_P(DirectoryContractTest, CreateMoveTwiceIsAlreadyExistsAndKeepsTheFirst) {
  Populate();
  MoveRecord first = Move(users_[0], "MS1", "MS2", MoveStep::kLocked);
  ASSERT_OK(dir_->CreateMove(first));
  MoveRecord second = Move(users_[0], "MS1", "MS3", MoveStep::kLocked);
  Status s = dir_->CreateMove(second);
  EXPECT_EQ(s.code(), Status::Code::kAlreadyExists) << s.ToString();
  EXPECT_NE(s.message().find("MS1 -> MS2"), std::string::npos) << s.message();
  auto got = dir_->GetMove(first.mailbox);
  ASSERT_TRUE(got.ok());
  ExpectSameMove(*got, first);
}

TEST_P(DirectoryContractTest, AdvanceMoveFromTheWrongStepIsConflictAndChangesNothing) {
  Populate();
  MoveRecord m = Move(users_[0], "MS1", "MS2", MoveStep::kLocked);
  ASSERT_OK(dir_->CreateMove(m));
  MoveRecord next = m;
  next.step = MoveStep::kCopying;
  Status s = dir_->AdvanceMove(next, MoveStep::kHierarchy, true);
  EXPECT_TRUE(s.IsConflict()) << s.ToString();
  // Same step, another target: not this move's record.
  MoveRecord other = m;
  other.target = "MS3";
  other.step = MoveStep::kHierarchy;
  s = dir_->AdvanceMove(other, MoveStep::kLocked, true);
  EXPECT_TRUE(s.IsConflict()) << s.ToString();
  auto got = dir_->GetMove(m.mailbox);
  ASSERT_TRUE(got.ok());
  ExpectSameMove(*got, m);
  MoveRecord none = Move(users_[2], "MS1", "MS2", MoveStep::kHierarchy);
  EXPECT_TRUE(dir_->AdvanceMove(none, MoveStep::kLocked, true).IsNotFound());
}

TEST_P(DirectoryContractTest, SwitchHomeMovesHomeMdbAndRecordsTheSwitch) {
  Populate();
  MoveRecord m = Move(users_[0], "MS1", "MS2", MoveStep::kVerified);
  ASSERT_OK(dir_->CreateMove(m));
  MoveRecord switched = m;
  switched.step = MoveStep::kSwitched;
  ASSERT_OK(dir_->SwitchHome(m.mailbox, ms2_, switched));
  auto u = dir_->GetUser(users_[0].name);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->home_mdb, ms2_.dn);
  EXPECT_EQ(u->home_server, "SERVER2");
  auto got = dir_->GetMove(m.mailbox);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->step, MoveStep::kSwitched);
  // A second switch finds the record past its switch.
  EXPECT_TRUE(dir_->SwitchHome(m.mailbox, ms2_, switched).IsConflict());
  // The other users did not move.
  auto u2 = dir_->GetUser(users_[1].name);
  ASSERT_TRUE(u2.ok());
  EXPECT_EQ(u2->home_mdb, ms1_.dn);
}

TEST_P(DirectoryContractTest, SwitchHomeAfterAnotherWriterChangedHomeMdbIsConflictAndChangesNothing) {
  Populate();
  StoreRecord ms3 = Store("MS3", "SERVER3");
  ASSERT_OK(dir_->PutStore(ms3));
  MoveRecord m = Move(users_[0], "MS1", "MS2", MoveStep::kVerified);
  ASSERT_OK(dir_->CreateMove(m));
  UserRecord other = users_[0];
  other.home_mdb = ms3.dn;
  other.home_server = "SERVER3";
  ASSERT_OK(dir_->PutUsers({other}));
  MoveRecord switched = m;
  switched.step = MoveStep::kSwitched;
  Status s = dir_->SwitchHome(m.mailbox, ms2_, switched);
  EXPECT_TRUE(s.IsConflict()) << s.ToString();
  EXPECT_NE(s.message().find(ms3.dn), std::string::npos) << s.message();
  auto u = dir_->GetUser(other.name);
  ASSERT_TRUE(u.ok());
  ExpectSameUser(*u, other);
  auto got = dir_->GetMove(m.mailbox);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->step, MoveStep::kVerified);
}

TEST_P(DirectoryContractTest, SwitchHomeOfAnotherMovesRecordIsConflictAndChangesNothing) {
  Populate();
  MoveRecord theirs = Move(users_[0], "MS1", "MS3", MoveStep::kVerified);
  ASSERT_OK(dir_->CreateMove(theirs));
  MoveRecord mine = Move(users_[0], "MS1", "MS2", MoveStep::kSwitched);
  EXPECT_TRUE(dir_->SwitchHome(mine.mailbox, ms2_, mine).IsConflict());
  ASSERT_OK(dir_->DeleteMove(theirs.mailbox));
  EXPECT_TRUE(dir_->SwitchHome(mine.mailbox, ms2_, mine).IsConflict());  // no record at all
  auto u = dir_->GetUser(users_[0].name);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->home_mdb, ms1_.dn);
}

TEST_P(DirectoryContractTest, ConcurrentCreateMoveHasExactlyOneWinner) {
  Populate();
  constexpr int kThreads = 6;
  for (int round = 0; round < 3; ++round) {
    const UserRecord& u = users_[size_t(round)];
    std::vector<Status> results(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        results[size_t(t)] = dir_->CreateMove(Move(u, "MS1", "T" + std::to_string(t), MoveStep::kLocked));
      });
    }
    for (auto& th : threads) th.join();
    int winners = 0, winner = -1;
    for (int t = 0; t < kThreads; ++t) {
      if (results[size_t(t)].ok()) {
        ++winners;
        winner = t;
      } else {
        EXPECT_EQ(results[size_t(t)].code(), Status::Code::kAlreadyExists) << results[size_t(t)].ToString();
      }
    }
    ASSERT_EQ(winners, 1);
    auto got = dir_->GetMove(u.mailbox);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->target, "T" + std::to_string(winner));
  }
}

TEST_P(DirectoryContractTest, ConcurrentAdvanceMoveHasExactlyOneWinner) {
  Populate();
  MoveRecord m = Move(users_[0], "MS1", "MS2", MoveStep::kLocked);
  ASSERT_OK(dir_->CreateMove(m));
  constexpr int kThreads = 6;
  std::vector<Status> results(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      MoveRecord next = m;
      next.step = MoveStep::kHierarchy;
      next.started = "T" + std::to_string(t);
      results[size_t(t)] = dir_->AdvanceMove(next, MoveStep::kLocked, true);
    });
  }
  for (auto& th : threads) th.join();
  int winners = 0;
  for (const auto& s : results) {
    if (s.ok()) {
      ++winners;
    } else {
      EXPECT_TRUE(s.IsConflict()) << s.ToString();
    }
  }
  EXPECT_EQ(winners, 1);
}

INSTANTIATE_TEST_SUITE_P(Backends, DirectoryContractTest, ::testing::Values("lmdb", "ldap"),
                         [](const auto& param_info) { return param_info.param; });

}  // namespace
}  // namespace mbx
