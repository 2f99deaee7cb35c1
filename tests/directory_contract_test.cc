// The Directory contract (store/directory.h), the same cases against each
// backend: the embedded LMDB directory in a temporary folder, and LDAP
// against the test process's private slapd, each test under its own base.
#include <gtest/gtest.h>
#include <ldap.h>

#include <barrier>
#include <fstream>
#include <thread>

#include "store/directory.h"
#include "store/ldap_directory.h"
#include "store/lmdb_env.h"
#include "tests/ldap_test_util.h"
#include "tests/test_util.h"

namespace mbx {
namespace {

using testing::TempDir;
using testing::TestGuid;

// The admin's own connection to the tests' slapd, behind the directory's
// back: how an entry is damaged or a container removed.
class RawLdap {
 public:
  explicit RawLdap(const LdapConfig& c) {
    if (ldap_initialize(&ld_, c.url.c_str()) != LDAP_SUCCESS) {
      ld_ = nullptr;
      return;
    }
    int v3 = LDAP_VERSION3;
    ldap_set_option(ld_, LDAP_OPT_PROTOCOL_VERSION, &v3);
    std::ifstream f(c.password_file);
    std::string pw;
    std::getline(f, pw);
    berval cred{pw.size(), pw.data()};
    bind_rc_ = ldap_sasl_bind_s(ld_, c.bind_dn.c_str(), LDAP_SASL_SIMPLE, &cred, nullptr, nullptr, nullptr);
  }
  ~RawLdap() {
    if (ld_) ldap_unbind_ext_s(ld_, nullptr, nullptr);
  }
  RawLdap(const RawLdap&) = delete;
  RawLdap& operator=(const RawLdap&) = delete;
  bool ok() const { return ld_ && bind_rc_ == LDAP_SUCCESS; }
  // Replaces one attribute of an entry; the LDAP result code.
  int Replace(const std::string& dn, const std::string& attr, const std::string& value) {
    berval v{value.size(), const_cast<char*>(value.data())};
    berval* vals[] = {&v, nullptr};
    LDAPMod mod{};
    mod.mod_op = LDAP_MOD_REPLACE | LDAP_MOD_BVALUES;
    mod.mod_type = const_cast<char*>(attr.c_str());
    mod.mod_bvalues = vals;
    LDAPMod* mods[] = {&mod, nullptr};
    return ldap_modify_ext_s(ld_, dn.c_str(), mods, nullptr, nullptr);
  }
  int Delete(const std::string& dn) { return ldap_delete_ext_s(ld_, dn.c_str(), nullptr, nullptr); }
  // Replaces every value of a multi-valued attribute; the LDAP result code.
  int ReplaceAll(const std::string& dn, const std::string& attr, const std::vector<std::string>& values) {
    std::vector<berval> bvs;
    for (const std::string& v : values) bvs.push_back(berval{v.size(), const_cast<char*>(v.data())});
    std::vector<berval*> vals;
    for (berval& b : bvs) vals.push_back(&b);
    vals.push_back(nullptr);
    LDAPMod mod{};
    mod.mod_op = LDAP_MOD_REPLACE | LDAP_MOD_BVALUES;
    mod.mod_type = const_cast<char*>(attr.c_str());
    mod.mod_bvalues = vals.data();
    LDAPMod* mods[] = {&mod, nullptr};
    return ldap_modify_ext_s(ld_, dn.c_str(), mods, nullptr, nullptr);
  }

 private:
  LDAP* ld_ = nullptr;
  int bind_rc_ = LDAP_OTHER;
};

class DirectoryContractTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "ldap") {
      ldap_ = testing::FreshLdapBase();
      auto d = OpenLdapDirectory(ldap_, true);
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

  // A queue entry with every field set (n picks the mailbox and the values).
  static QueueEntry Queued(int n) {
    QueueEntry e;
    e.mailbox = TestGuid(uint8_t(n));
    e.user = "user" + std::to_string(n);
    e.source = "MS1";
    e.target = "MS2";
    e.state = QueueState::kQueued;
    e.owner = "";
    e.lease_until_ms = 0;
    e.attempts = 0;
    e.batch = "batch-" + std::to_string(n);
    e.bad_item_limit = uint32_t(n * 10);
    e.keep_source = n % 2 == 1;
    e.queued = "2026-11-29T10:0" + std::to_string(n % 10) + ":00Z";
    e.result = "";
    return e;
  }
  static Lease MakeLease(const std::string& name) {
    Lease l;
    l.name = name;
    l.owner = "host1:4242:" + name;
    l.until_ms = 1'790'000'000'123;
    l.holds = "host1:4242";
    return l;
  }
  // A member with every field set (n picks the mailbox and the values).
  static BatchMember Member(int n, MemberState state) {
    BatchMember m;
    m.mailbox = TestGuid(uint8_t(n));
    m.user = "user" + std::to_string(n);
    m.source = "MS1";
    m.state = state;
    m.passes = uint32_t(n * 3);
    m.items_copied = uint64_t(n) * 1000;
    m.bytes_copied = uint64_t(n) * 1'000'000'007;
    m.items_behind = uint64_t(n);
    m.last_sync_ms = 1'790'000'000'000 + n;
    m.lock_ms = 12.5 * n;
    m.dropped = uint32_t(n % 2);
    m.attempts = uint32_t(n % 3 + 1);
    m.result = "member " + std::to_string(n);
    return m;
  }
  // A batch with every field away from its default and three members.
  static BatchRecord MakeBatch(const std::string& name) {
    BatchRecord b;
    b.name = name;
    b.target = "MS2";
    b.state = BatchState::kRunning;
    b.concurrency = 6;
    b.bad_item_limit = 25;
    b.keep_source = true;
    b.sync_interval_ms = 60'000;
    b.complete_at_ms = 1'790'000'900'000;
    b.complete_delay_ms = 3'600'000;
    b.cancel_after_ms = 86'400'000;
    b.created = "2026-11-29T10:00:00Z";
    b.started_ms = 1'790'000'000'000;
    b.finished_ms = 0;
    b.runner = "host1:4242";
    b.result = "";
    b.members = {Member(1, MemberState::kQueued), Member(2, MemberState::kSyncing), Member(3, MemberState::kSynced)};
    return b;
  }
  // Directories for `n` concurrent writers: LDAP, one per writer, each its
  // own connection (as separate mover processes have); the embedded one,
  // which a process opens once, shared.
  std::vector<Directory*> Writers(int n) {
    std::vector<Directory*> out;
    for (int i = 0; i < n; ++i) {
      if (GetParam() != "ldap") {
        out.push_back(dir_.get());
        continue;
      }
      auto d = OpenLdapDirectory(ldap_, false);
      if (!d.ok()) {
        ADD_FAILURE() << d.status().ToString();
        return {};
      }
      writers_.push_back(std::move(d).value());
      out.push_back(writers_.back().get());
    }
    return out;
  }
  // Writes `json` as the raw record of `key` in the embedded directory's
  // database `db` (closing and reopening the directory around it).
  void RawLmdbPut(const std::string& db, std::string_view key, const std::string& json) {
    dir_.reset();
    {
      LmdbEnv env;
      ASSERT_OK(env.Open(tmp_ / "directory", 0, 8, 1ull << 30));
      LmdbTxn txn;
      ASSERT_OK(txn.Begin(env.get(), 0));
      MDB_dbi dbi;
      ASSERT_EQ(mdb_dbi_open(txn.get(), db.c_str(), MDB_CREATE, &dbi), 0);
      MDB_val k = ToVal(key), v = ToVal(json);
      ASSERT_EQ(mdb_put(txn.get(), dbi, &k, &v, 0), 0);
      ASSERT_OK(txn.Commit());
    }
    auto d = Directory::OpenLmdb(tmp_ / "directory", false);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    dir_ = std::move(d).value();
  }
  std::string QueueDn(const Guid& g) const { return "cn=" + g.ToString() + ",ou=queue," + ldap_.base_dn; }
  std::string LeaseDn(const std::string& n) const { return "cn=" + n + ",ou=leases," + ldap_.base_dn; }
  std::string BatchDn(const std::string& n) const { return "cn=" + n + ",ou=batches," + ldap_.base_dn; }

  TempDir tmp_;
  LdapConfig ldap_;  // the "ldap" backend's base
  std::unique_ptr<Directory> dir_;
  std::vector<std::unique_ptr<Directory>> writers_;
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

TEST_P(DirectoryContractTest, DeleteMovesDeletesEachAndSkipsTheMissing) {
  Populate();
  ASSERT_OK(dir_->CreateMove(Move(users_[0], "MS1", "MS2", MoveStep::kSwitched)));
  ASSERT_OK(dir_->CreateMove(Move(users_[2], "MS1", "MS2", MoveStep::kLocked)));
  const std::vector<Status> out = dir_->DeleteMoves({users_[0].mailbox, users_[1].mailbox, users_[2].mailbox});
  ASSERT_EQ(out.size(), 3u);
  for (const Status& s : out) EXPECT_OK(s);
  std::vector<MoveRecord> moves;
  ASSERT_OK(dir_->ListMoves(&moves));
  EXPECT_TRUE(moves.empty());
  EXPECT_TRUE(dir_->DeleteMoves({}).empty());
}

// Writers at once (the embedded directory commits them in groups): each
// gets its own outcome, and a refused one leaves no trace beside the
// others' writes.
TEST_P(DirectoryContractTest, ConcurrentMovesOfDifferentMailboxesEachGetTheirOwnOutcome) {
  Populate();
  constexpr int kThreads = 3;  // one per user
  constexpr int kRounds = 8;
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const UserRecord& u = users_[size_t(t)];
      auto fail = [&](const std::string& what, const Status& s) {
        if (failures[size_t(t)].empty()) failures[size_t(t)] = what + ": " + s.ToString();
      };
      for (int r = 0; r < kRounds; ++r) {
        // Back and forth: MS1 -> MS2 on even rounds, MS2 -> MS1 on odd ones.
        const bool out = r % 2 == 0;
        MoveRecord m = Move(u, out ? "MS1" : "MS2", out ? "MS2" : "MS1", MoveStep::kLocked);
        if (Status s = dir_->CreateMove(m); !s.ok()) return fail("create", s);
        if (Status s = dir_->CreateMove(m); s.code() != Status::Code::kAlreadyExists) return fail("create again", s);
        MoveRecord wrong = m;
        wrong.step = MoveStep::kCopying;
        if (Status s = dir_->AdvanceMove(wrong, MoveStep::kHierarchy, true); !s.IsConflict()) {
          return fail("advance from the wrong step", s);
        }
        MoveRecord verified = m;
        verified.step = MoveStep::kVerified;
        if (Status s = dir_->AdvanceMove(verified, MoveStep::kLocked, r % 3 == 0); !s.ok()) return fail("advance", s);
        MoveRecord switched = verified;
        switched.step = MoveStep::kSwitched;
        if (Status s = dir_->SwitchHome(u.mailbox, out ? ms2_ : ms1_, switched); !s.ok()) return fail("switch", s);
        if (Status s = dir_->SwitchHome(u.mailbox, out ? ms2_ : ms1_, switched); !s.IsConflict()) {
          return fail("switch again", s);
        }
        if (Status s = dir_->DeleteMove(u.mailbox); !s.ok()) return fail("delete", s);
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[size_t(t)], "") << "thread " << t;
  std::vector<MoveRecord> moves;
  ASSERT_OK(dir_->ListMoves(&moves));
  EXPECT_TRUE(moves.empty());
  for (const UserRecord& u : users_) {
    auto got = dir_->GetUser(u.name);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->home_mdb, ms1_.dn) << u.name;  // an even number of moves: back home
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

void ExpectSameEntry(const QueueEntry& a, const QueueEntry& b) {
  EXPECT_EQ(a.mailbox, b.mailbox);
  EXPECT_EQ(a.user, b.user);
  EXPECT_EQ(a.source, b.source);
  EXPECT_EQ(a.target, b.target);
  EXPECT_EQ(QueueStateName(a.state), QueueStateName(b.state));
  EXPECT_EQ(a.owner, b.owner);
  EXPECT_EQ(a.lease_until_ms, b.lease_until_ms);
  EXPECT_EQ(a.attempts, b.attempts);
  EXPECT_EQ(a.batch, b.batch);
  EXPECT_EQ(a.bad_item_limit, b.bad_item_limit);
  EXPECT_EQ(a.keep_source, b.keep_source);
  EXPECT_EQ(a.queued, b.queued);
  EXPECT_EQ(a.result, b.result);
  EXPECT_EQ(a.version, b.version);
}

void ExpectSameLease(const Lease& a, const Lease& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.owner, b.owner);
  EXPECT_EQ(a.until_ms, b.until_ms);
  EXPECT_EQ(a.holds, b.holds);
  EXPECT_EQ(a.version, b.version);
}

TEST_P(DirectoryContractTest, QueueEntriesRoundTripEveryField) {
  std::vector<QueueEntry> all;
  ASSERT_OK(dir_->ListQueue(&all));
  EXPECT_TRUE(all.empty());
  EXPECT_TRUE(dir_->GetQueueEntry(TestGuid(1)).status().IsNotFound());
  // Every field away from its default, at the edges of its type.
  QueueEntry busy = Queued(3);
  busy.state = QueueState::kActive;
  busy.owner = "mover.host1:4242";
  busy.lease_until_ms = 1'790'000'000'123;
  busy.attempts = 4'294'967'295u;
  busy.bad_item_limit = 4'294'967'295u;
  busy.result = "failed: Zoë's \"items\" (3)\nsecond line, * and = and ,";
  QueueEntry negative = Queued(2);
  negative.state = QueueState::kFailed;
  negative.lease_until_ms = -5;
  // Every optional field empty, an import-like entry without a source.
  QueueEntry bare = Queued(1);
  bare.user = bare.source = bare.batch = bare.queued = "";
  bare.state = QueueState::kDone;
  bare.keep_source = false;
  bare.bad_item_limit = 0;
  for (QueueEntry* e : {&busy, &negative, &bare}) {
    e->version = 77;  // ignored: an add is at version 1
    ASSERT_OK(dir_->AddQueueEntry(e));
    EXPECT_EQ(e->version, 1u);
  }
  for (const QueueEntry* e : {&busy, &negative, &bare}) {
    auto got = dir_->GetQueueEntry(e->mailbox);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ExpectSameEntry(*got, *e);
  }
  ASSERT_OK(dir_->ListQueue(&all));
  ASSERT_EQ(all.size(), 3u);
  // In mailbox order, on both backends.
  EXPECT_TRUE(all[0].mailbox < all[1].mailbox && all[1].mailbox < all[2].mailbox);
  for (const QueueEntry& got : all) {
    ExpectSameEntry(got, got.mailbox == busy.mailbox ? busy : got.mailbox == negative.mailbox ? negative : bare);
  }
  std::vector<std::string> damaged;
  ASSERT_OK(dir_->ListQueue(&all, &damaged));
  EXPECT_EQ(all.size(), 3u);
  EXPECT_TRUE(damaged.empty());
}

TEST_P(DirectoryContractTest, AddQueueEntryTwiceIsAlreadyExistsAndKeepsTheFirst) {
  QueueEntry first = Queued(1);
  ASSERT_OK(dir_->AddQueueEntry(&first));
  QueueEntry second = Queued(1);
  second.target = "MS9";
  Status s = dir_->AddQueueEntry(&second);
  EXPECT_EQ(s.code(), Status::Code::kAlreadyExists) << s.ToString();
  EXPECT_NE(s.message().find(first.mailbox.ToString()), std::string::npos) << s.message();
  auto got = dir_->GetQueueEntry(first.mailbox);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameEntry(*got, first);
}

TEST_P(DirectoryContractTest, UpdateQueueEntryIsCompareAndSwap) {
  QueueEntry e = Queued(1);
  ASSERT_OK(dir_->AddQueueEntry(&e));
  const QueueEntry stale = e;
  // A claim: the right version succeeds and bumps it.
  e.state = QueueState::kActive;
  e.owner = "mover.a";
  e.lease_until_ms = 1'790'000'000'000;
  e.attempts = 1;
  ASSERT_OK(dir_->UpdateQueueEntry(&e));
  EXPECT_EQ(e.version, 2u);
  auto got = dir_->GetQueueEntry(e.mailbox);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameEntry(*got, e);
  // A writer that read before the claim comes second: Conflict, nothing
  // changed, its version left as it was.
  QueueEntry late = stale;
  late.state = QueueState::kActive;
  late.owner = "mover.b";
  Status s = dir_->UpdateQueueEntry(&late);
  EXPECT_TRUE(s.IsConflict()) << s.ToString();
  EXPECT_NE(s.message().find("another writer came first"), std::string::npos) << s.message();
  EXPECT_EQ(late.version, 1u);
  got = dir_->GetQueueEntry(e.mailbox);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameEntry(*got, e);
  // Fields emptied by an update come back empty.
  e.state = QueueState::kDone;
  e.owner = "";
  e.lease_until_ms = 0;
  e.batch = "";
  e.result = "moved 12 items";
  ASSERT_OK(dir_->UpdateQueueEntry(&e));
  EXPECT_EQ(e.version, 3u);
  got = dir_->GetQueueEntry(e.mailbox);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameEntry(*got, e);
  // No entry: NotFound.
  QueueEntry none = Queued(9);
  none.version = 1;
  EXPECT_TRUE(dir_->UpdateQueueEntry(&none).IsNotFound());
  EXPECT_EQ(none.version, 1u);
}

TEST_P(DirectoryContractTest, DeleteQueueEntryIsGuardedByTheVersion) {
  QueueEntry a = Queued(1), b = Queued(2);
  ASSERT_OK(dir_->AddQueueEntry(&a));
  ASSERT_OK(dir_->AddQueueEntry(&b));
  a.attempts = 1;
  ASSERT_OK(dir_->UpdateQueueEntry(&a));  // now version 2
  Status s = dir_->DeleteQueueEntry(a.mailbox, 1);
  EXPECT_TRUE(s.IsConflict()) << s.ToString();
  ASSERT_TRUE(dir_->GetQueueEntry(a.mailbox).ok());
  ASSERT_OK(dir_->DeleteQueueEntry(a.mailbox, 2));
  EXPECT_TRUE(dir_->GetQueueEntry(a.mailbox).status().IsNotFound());
  EXPECT_TRUE(dir_->DeleteQueueEntry(a.mailbox, 2).IsNotFound());
  // Version 0: whatever is there.
  ASSERT_OK(dir_->DeleteQueueEntry(b.mailbox, 0));
  EXPECT_TRUE(dir_->GetQueueEntry(b.mailbox).status().IsNotFound());
  EXPECT_TRUE(dir_->DeleteQueueEntry(b.mailbox, 0).IsNotFound());
  std::vector<QueueEntry> all;
  ASSERT_OK(dir_->ListQueue(&all));
  EXPECT_TRUE(all.empty());
  // Gone, the mailbox can be queued again, at version 1.
  QueueEntry again = Queued(1);
  ASSERT_OK(dir_->AddQueueEntry(&again));
  EXPECT_EQ(again.version, 1u);
}

TEST_P(DirectoryContractTest, ConcurrentClaimsOfAQueueEntryHaveExactlyOneWinner) {
  constexpr int kThreads = 6;
  std::vector<Directory*> movers = Writers(kThreads);
  ASSERT_EQ(movers.size(), size_t(kThreads));
  for (int round = 0; round < 3; ++round) {
    QueueEntry e = Queued(round + 1);
    ASSERT_OK(dir_->AddQueueEntry(&e));
    std::vector<Status> results(kThreads);
    std::barrier all_read(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        // Every mover reads the entry queued, then all try to claim it.
        auto cur = movers[size_t(t)]->GetQueueEntry(e.mailbox);
        all_read.arrive_and_wait();
        if (!cur.ok()) {
          results[size_t(t)] = cur.status();
          return;
        }
        QueueEntry claim = *cur;
        claim.state = QueueState::kActive;
        claim.owner = "mover." + std::to_string(t);
        claim.lease_until_ms = 1'790'000'000'000 + t;
        ++claim.attempts;
        results[size_t(t)] = movers[size_t(t)]->UpdateQueueEntry(&claim);
      });
    }
    for (auto& th : threads) th.join();
    int winners = 0, winner = -1;
    for (int t = 0; t < kThreads; ++t) {
      if (results[size_t(t)].ok()) {
        ++winners;
        winner = t;
      } else {
        EXPECT_TRUE(results[size_t(t)].IsConflict()) << results[size_t(t)].ToString();
      }
    }
    ASSERT_EQ(winners, 1);
    auto got = dir_->GetQueueEntry(e.mailbox);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->owner, "mover." + std::to_string(winner));
    EXPECT_EQ(got->state, QueueState::kActive);
    EXPECT_EQ(got->attempts, 1u);
    EXPECT_EQ(got->version, 2u);
  }
}

TEST_P(DirectoryContractTest, LeaseLifecycle) {
  std::vector<Lease> all;
  ASSERT_OK(dir_->ListLeases(&all));
  EXPECT_TRUE(all.empty());
  EXPECT_TRUE(dir_->GetLease("mover.a").status().IsNotFound());
  Lease mover = MakeLease("mover.a");
  Lease slot = MakeLease("slot.src-mdb.MS1.0");
  slot.owner = "";
  slot.holds = "";
  slot.until_ms = 0;
  ASSERT_OK(dir_->AddLease(&mover));
  ASSERT_OK(dir_->AddLease(&slot));
  EXPECT_EQ(mover.version, 1u);
  for (const Lease* l : {&mover, &slot}) {
    auto got = dir_->GetLease(l->name);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ExpectSameLease(*got, *l);
  }
  ASSERT_OK(dir_->ListLeases(&all));
  ASSERT_EQ(all.size(), 2u);
  ExpectSameLease(all[0], mover);  // by name
  ExpectSameLease(all[1], slot);
  // Added twice: AlreadyExists, the first kept.
  Lease twice = MakeLease("mover.a");
  twice.owner = "someone else";
  Status s = dir_->AddLease(&twice);
  EXPECT_EQ(s.code(), Status::Code::kAlreadyExists) << s.ToString();
  EXPECT_NE(s.message().find("mover.a"), std::string::npos) << s.message();
  // Taken: the right version succeeds and bumps it; a stale one conflicts.
  const Lease stale = slot;
  slot.owner = "mover.a";
  slot.holds = TestGuid(1).ToString();
  slot.until_ms = 1'790'000'000'999;
  ASSERT_OK(dir_->UpdateLease(&slot));
  EXPECT_EQ(slot.version, 2u);
  Lease late = stale;
  late.owner = "mover.b";
  s = dir_->UpdateLease(&late);
  EXPECT_TRUE(s.IsConflict()) << s.ToString();
  EXPECT_EQ(late.version, 1u);
  auto got = dir_->GetLease(slot.name);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameLease(*got, slot);
  // Released: owner and holds emptied.
  slot.owner = "";
  slot.holds = "";
  slot.until_ms = 0;
  ASSERT_OK(dir_->UpdateLease(&slot));
  got = dir_->GetLease(slot.name);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameLease(*got, slot);
  // Deleted: guarded, then unguarded; gone is NotFound.
  s = dir_->DeleteLease(slot.name, 1);
  EXPECT_TRUE(s.IsConflict()) << s.ToString();
  ASSERT_OK(dir_->DeleteLease(slot.name, slot.version));
  EXPECT_TRUE(dir_->GetLease(slot.name).status().IsNotFound());
  EXPECT_TRUE(dir_->DeleteLease(slot.name, slot.version).IsNotFound());
  ASSERT_OK(dir_->DeleteLease(mover.name, 0));
  EXPECT_TRUE(dir_->DeleteLease(mover.name, 0).IsNotFound());
  Lease none = MakeLease("mover.none");
  none.version = 1;
  EXPECT_TRUE(dir_->UpdateLease(&none).IsNotFound());
  ASSERT_OK(dir_->ListLeases(&all));
  EXPECT_TRUE(all.empty());
}

TEST_P(DirectoryContractTest, InvalidLeaseNamesAreInvalidArgument) {
  for (const std::string& name : {std::string(), std::string("a b"), std::string("x/y"), std::string("cn=x,ou=y"),
                                  std::string("ümlaut"), std::string(129, 'a')}) {
    SCOPED_TRACE("'" + name + "'");
    Lease l = MakeLease(name);
    EXPECT_EQ(dir_->AddLease(&l).code(), Status::Code::kInvalidArgument);
    EXPECT_EQ(dir_->GetLease(name).status().code(), Status::Code::kInvalidArgument);
    l.version = 1;
    EXPECT_EQ(dir_->UpdateLease(&l).code(), Status::Code::kInvalidArgument);
    EXPECT_EQ(dir_->DeleteLease(name, 1).code(), Status::Code::kInvalidArgument);
  }
  Lease longest = MakeLease(std::string(128, 'z'));
  ASSERT_OK(dir_->AddLease(&longest));
  auto got = dir_->GetLease(longest.name);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameLease(*got, longest);
}

TEST_P(DirectoryContractTest, ConcurrentLeaseTakesHaveExactlyOneWinner) {
  constexpr int kThreads = 6;
  std::vector<Directory*> movers = Writers(kThreads);
  ASSERT_EQ(movers.size(), size_t(kThreads));
  // Adding the same lease: one add wins.
  std::vector<Status> added(kThreads);
  {
    std::barrier start(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        Lease l = MakeLease("slot.dst-server.SERVER2.0");
        l.owner = "mover." + std::to_string(t);
        start.arrive_and_wait();
        added[size_t(t)] = movers[size_t(t)]->AddLease(&l);
      });
    }
    for (auto& th : threads) th.join();
  }
  int winners = 0;
  for (const Status& s : added) {
    if (s.ok()) {
      ++winners;
    } else {
      EXPECT_EQ(s.code(), Status::Code::kAlreadyExists) << s.ToString();
    }
  }
  ASSERT_EQ(winners, 1);
  // Taking it over from the version every mover read: one update wins.
  std::vector<Status> taken(kThreads);
  {
    std::barrier all_read(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        auto cur = movers[size_t(t)]->GetLease("slot.dst-server.SERVER2.0");
        all_read.arrive_and_wait();
        if (!cur.ok()) {
          taken[size_t(t)] = cur.status();
          return;
        }
        Lease l = *cur;
        l.owner = "taker." + std::to_string(t);
        taken[size_t(t)] = movers[size_t(t)]->UpdateLease(&l);
      });
    }
    for (auto& th : threads) th.join();
  }
  winners = 0;
  int winner = -1;
  for (int t = 0; t < kThreads; ++t) {
    if (taken[size_t(t)].ok()) {
      ++winners;
      winner = t;
    } else {
      EXPECT_TRUE(taken[size_t(t)].IsConflict()) << taken[size_t(t)].ToString();
    }
  }
  ASSERT_EQ(winners, 1);
  auto got = dir_->GetLease("slot.dst-server.SERVER2.0");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->owner, "taker." + std::to_string(winner));
  EXPECT_EQ(got->version, 2u);
}

TEST_P(DirectoryContractTest, DamagedQueueEntryIsSkippedAndReportedWhileTheOthersList) {
  QueueEntry a = Queued(1), bad = Queued(2), c = Queued(3);
  for (QueueEntry* e : {&a, &bad, &c}) ASSERT_OK(dir_->AddQueueEntry(e));
  if (GetParam() == "ldap") {
    RawLdap raw(ldap_);
    ASSERT_TRUE(raw.ok());
    ASSERT_EQ(raw.Replace(QueueDn(bad.mailbox), "mbxQueueState", "flying"), LDAP_SUCCESS);
  } else {
    RawLmdbPut("queue", bad.mailbox.AsKey(), "{\"mailbox\":\"not a guid\",\"version\":1}");
  }
  Status s = dir_->GetQueueEntry(bad.mailbox).status();
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  if (GetParam() == "ldap") {
    EXPECT_NE(s.message().find(QueueDn(bad.mailbox)), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("mbxQueueState"), std::string::npos) << s.message();
  }
  std::vector<QueueEntry> all;
  s = dir_->ListQueue(&all);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  std::vector<std::string> damaged;
  ASSERT_OK(dir_->ListQueue(&all, &damaged));
  ASSERT_EQ(all.size(), 2u);
  ExpectSameEntry(all[0], a);
  ExpectSameEntry(all[1], c);
  ASSERT_EQ(damaged.size(), 1u);
  EXPECT_EQ(damaged[0].rfind(bad.mailbox.ToString() + ": ", 0), 0u) << damaged[0];
  // The good entries still take writes; the damaged one is removed unguarded.
  ASSERT_OK(dir_->UpdateQueueEntry(&a));
  ASSERT_OK(dir_->DeleteQueueEntry(bad.mailbox, 0));
  damaged.clear();
  ASSERT_OK(dir_->ListQueue(&all, &damaged));
  EXPECT_EQ(all.size(), 2u);
  EXPECT_TRUE(damaged.empty());
  ASSERT_OK(dir_->ListQueue(&all));
}

TEST_P(DirectoryContractTest, DamagedLeaseIsCorruption) {
  Lease good = MakeLease("mover.a"), bad = MakeLease("mover.b");
  ASSERT_OK(dir_->AddLease(&good));
  ASSERT_OK(dir_->AddLease(&bad));
  if (GetParam() == "ldap") {
    RawLdap raw(ldap_);
    ASSERT_TRUE(raw.ok());
    // An INTEGER, but not one a lease's time fits in.
    ASSERT_EQ(raw.Replace(LeaseDn(bad.name), "mbxLeaseUntil", "99999999999999999999999"), LDAP_SUCCESS);
  } else {
    RawLmdbPut("leases", bad.name, "{\"name\":\"mover.b\",\"version\":1}");
  }
  Status s = dir_->GetLease(bad.name).status();
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  if (GetParam() == "ldap") {
    EXPECT_NE(s.message().find(LeaseDn(bad.name)), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("mbxLeaseUntil"), std::string::npos) << s.message();
  }
  std::vector<Lease> all;
  s = dir_->ListLeases(&all);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  ASSERT_OK(dir_->DeleteLease(bad.name, 0));
  ASSERT_OK(dir_->ListLeases(&all));
  ASSERT_EQ(all.size(), 1u);
  ExpectSameLease(all[0], good);
}

// A directory made before the queue existed: the embedded one lacks the
// queue and leases databases, an LDAP base the ou=queue and ou=leases
// containers. Reads find nothing; the first add makes what is missing.
TEST_P(DirectoryContractTest, QueueAndLeasesWorkOnADirectoryMadeWithoutThem) {
  if (GetParam() == "ldap") {
    RawLdap raw(ldap_);
    ASSERT_TRUE(raw.ok());
    ASSERT_EQ(raw.Delete("ou=queue," + ldap_.base_dn), LDAP_SUCCESS);
    ASSERT_EQ(raw.Delete("ou=leases," + ldap_.base_dn), LDAP_SUCCESS);
    // Opening it again is fine.
    auto again = OpenLdapDirectory(ldap_, false);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
  }
  std::vector<QueueEntry> entries;
  std::vector<std::string> damaged;
  ASSERT_OK(dir_->ListQueue(&entries, &damaged));
  EXPECT_TRUE(entries.empty());
  std::vector<Lease> leases;
  ASSERT_OK(dir_->ListLeases(&leases));
  EXPECT_TRUE(leases.empty());
  EXPECT_TRUE(dir_->GetQueueEntry(TestGuid(1)).status().IsNotFound());
  EXPECT_TRUE(dir_->GetLease("mover.a").status().IsNotFound());
  QueueEntry e = Queued(1);
  e.version = 1;
  EXPECT_TRUE(dir_->UpdateQueueEntry(&e).IsNotFound());
  EXPECT_TRUE(dir_->DeleteQueueEntry(e.mailbox, 1).IsNotFound());
  EXPECT_TRUE(dir_->DeleteLease("mover.a", 0).IsNotFound());
  ASSERT_OK(dir_->AddQueueEntry(&e));
  Lease l = MakeLease("mover.a");
  ASSERT_OK(dir_->AddLease(&l));
  auto got = dir_->GetQueueEntry(e.mailbox);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameEntry(*got, e);
  ASSERT_OK(dir_->ListLeases(&leases));
  ASSERT_EQ(leases.size(), 1u);
  ExpectSameLease(leases[0], l);
}

TEST_P(DirectoryContractTest, EachQueueAndLeaseCallIsOneDirectoryOperation) {
  auto one = [&](const char* what, const std::function<Status()>& call) {
    const uint64_t before = dir_->operations();
    EXPECT_OK(call());
    EXPECT_EQ(dir_->operations() - before, 1u) << what;
  };
  // (The embedded directory's first queue call also opens its databases.)
  std::vector<QueueEntry> entries;
  ASSERT_OK(dir_->ListQueue(&entries));
  QueueEntry e = Queued(1);
  one("AddQueueEntry", [&] { return dir_->AddQueueEntry(&e); });
  one("GetQueueEntry", [&] { return dir_->GetQueueEntry(e.mailbox).status(); });
  one("ListQueue", [&] { return dir_->ListQueue(&entries); });
  one("UpdateQueueEntry", [&] { return dir_->UpdateQueueEntry(&e); });
  one("DeleteQueueEntry", [&] { return dir_->DeleteQueueEntry(e.mailbox, e.version); });
  Lease l = MakeLease("mover.a");
  std::vector<Lease> leases;
  one("AddLease", [&] { return dir_->AddLease(&l); });
  one("GetLease", [&] { return dir_->GetLease(l.name).status(); });
  one("ListLeases", [&] { return dir_->ListLeases(&leases); });
  one("UpdateLease", [&] { return dir_->UpdateLease(&l); });
  one("DeleteLease", [&] { return dir_->DeleteLease(l.name, l.version); });
}

void ExpectSameMember(const BatchMember& a, const BatchMember& b) {
  EXPECT_EQ(a.mailbox, b.mailbox);
  EXPECT_EQ(a.user, b.user);
  EXPECT_EQ(a.source, b.source);
  EXPECT_EQ(MemberStateName(a.state), MemberStateName(b.state));
  EXPECT_EQ(a.passes, b.passes);
  EXPECT_EQ(a.items_copied, b.items_copied);
  EXPECT_EQ(a.bytes_copied, b.bytes_copied);
  EXPECT_EQ(a.items_behind, b.items_behind);
  EXPECT_EQ(a.last_sync_ms, b.last_sync_ms);
  EXPECT_EQ(a.lock_ms, b.lock_ms);  // exactly: JSON keeps every bit of a double
  EXPECT_EQ(a.dropped, b.dropped);
  EXPECT_EQ(a.attempts, b.attempts);
  EXPECT_EQ(a.result, b.result);
}

void ExpectSameBatch(const BatchRecord& a, const BatchRecord& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.target, b.target);
  EXPECT_EQ(BatchStateName(a.state), BatchStateName(b.state));
  EXPECT_EQ(a.concurrency, b.concurrency);
  EXPECT_EQ(a.bad_item_limit, b.bad_item_limit);
  EXPECT_EQ(a.keep_source, b.keep_source);
  EXPECT_EQ(a.sync_interval_ms, b.sync_interval_ms);
  EXPECT_EQ(a.complete_at_ms, b.complete_at_ms);
  EXPECT_EQ(a.complete_delay_ms, b.complete_delay_ms);
  EXPECT_EQ(a.cancel_after_ms, b.cancel_after_ms);
  EXPECT_EQ(a.created, b.created);
  EXPECT_EQ(a.started_ms, b.started_ms);
  EXPECT_EQ(a.finished_ms, b.finished_ms);
  EXPECT_EQ(a.runner, b.runner);
  EXPECT_EQ(a.result, b.result);
  EXPECT_EQ(a.version, b.version);
  ASSERT_EQ(a.members.size(), b.members.size()) << a.name;
  for (size_t i = 0; i < a.members.size(); ++i) {
    SCOPED_TRACE(a.name + " member " + std::to_string(i));
    ExpectSameMember(a.members[i], b.members[i]);
  }
}

TEST_P(DirectoryContractTest, BatchesRoundTripEveryField) {
  std::vector<BatchRecord> all;
  ASSERT_OK(dir_->ListBatches(&all));
  EXPECT_TRUE(all.empty());
  Status s = dir_->GetBatch("wave1").status();
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.message().find("no batch named 'wave1'"), std::string::npos) << s.message();
  // Every field away from its default, at the edges of its type.
  BatchRecord full = MakeBatch("wave-1.2026_11");
  full.concurrency = 4'294'967'295u;
  full.bad_item_limit = 4'294'967'295u;
  full.sync_interval_ms = 9'223'372'036'854'775'807;
  full.complete_delay_ms = -9'223'372'036'854'775'807 - 1;
  full.finished_ms = 1'790'000'999'999;
  full.result = "stopped: Zoë's \"batch\" (3)\nsecond line, * and = and , and {\"json\": [1]}";
  full.members[0].items_copied = 18'446'744'073'709'551'615u;
  full.members[0].bytes_copied = 18'446'744'073'709'551'615u;
  full.members[0].last_sync_ms = -1;
  full.members[0].lock_ms = 0.1 + 0.2;  // not a short decimal
  full.members[1].result = "failed: \"item\" 7 of Zoë,\n\t* = ( ) \\";
  full.members[1].passes = 4'294'967'295u;
  full.members[2].user = full.members[2].source = full.members[2].result = "";
  // Members in an order that is not the GUIDs' order.
  std::swap(full.members[0], full.members[2]);
  // Every optional field empty, no members, the defaults (complete_delay_ms
  // -1: not set).
  BatchRecord bare;
  bare.name = "b";
  // The other member states, and a name that sorts before both.
  BatchRecord late = MakeBatch("Zed");
  late.state = BatchState::kCompleting;
  late.members = {Member(7, MemberState::kCompleting), Member(8, MemberState::kCompleted),
                  Member(9, MemberState::kFailed), Member(10, MemberState::kStopped)};
  for (BatchRecord* b : {&full, &bare, &late}) {
    b->version = 77;  // ignored: an add is at version 1
    ASSERT_OK(dir_->AddBatch(b));
    EXPECT_EQ(b->version, 1u);
  }
  for (const BatchRecord* b : {&full, &bare, &late}) {
    auto got = dir_->GetBatch(b->name);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ExpectSameBatch(*got, *b);
  }
  // By name (bytewise), on both backends.
  std::vector<std::string> damaged;
  ASSERT_OK(dir_->ListBatches(&all, &damaged));
  EXPECT_TRUE(damaged.empty());
  ASSERT_EQ(all.size(), 3u);
  ExpectSameBatch(all[0], late);
  ExpectSameBatch(all[1], bare);
  ExpectSameBatch(all[2], full);
  // Every batch state and every member state, written by updates.
  const BatchState batch_states[] = {BatchState::kCreated,   BatchState::kRunning,  BatchState::kCompleting,
                                     BatchState::kCompleted, BatchState::kStopping, BatchState::kStopped};
  const MemberState member_states[] = {MemberState::kQueued,     MemberState::kSyncing,   MemberState::kSynced,
                                       MemberState::kCompleting, MemberState::kCompleted, MemberState::kFailed,
                                       MemberState::kStopped};
  for (size_t i = 0; i < 7; ++i) {
    full.state = batch_states[i % 6];
    full.members[i % 3].state = member_states[i];
    ++full.members[i % 3].passes;
    ASSERT_OK(dir_->UpdateBatch(&full));
    EXPECT_EQ(full.version, i + 2);
    auto got = dir_->GetBatch(full.name);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ExpectSameBatch(*got, full);
  }
}

TEST_P(DirectoryContractTest, AddBatchTwiceIsAlreadyExistsAndKeepsTheFirst) {
  BatchRecord first = MakeBatch("wave1");
  ASSERT_OK(dir_->AddBatch(&first));
  BatchRecord second = MakeBatch("wave1");
  second.target = "MS9";
  second.members.pop_back();
  Status s = dir_->AddBatch(&second);
  EXPECT_EQ(s.code(), Status::Code::kAlreadyExists) << s.ToString();
  EXPECT_NE(s.message().find("wave1"), std::string::npos) << s.message();
  auto got = dir_->GetBatch("wave1");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameBatch(*got, first);
}

TEST_P(DirectoryContractTest, UpdateBatchIsCompareAndSwap) {
  BatchRecord b = MakeBatch("wave1");
  ASSERT_OK(dir_->AddBatch(&b));
  const BatchRecord stale = b;
  // The runner advances a member: the right version succeeds and bumps it.
  b.members[0].state = MemberState::kSyncing;
  b.members[0].attempts = 2;
  ASSERT_OK(dir_->UpdateBatch(&b));
  EXPECT_EQ(b.version, 2u);
  auto got = dir_->GetBatch(b.name);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameBatch(*got, b);
  // `batch stop` read before it: Conflict, nothing changed, its version
  // left as it was.
  BatchRecord late = stale;
  late.state = BatchState::kStopping;
  late.result = "stopped by admin";
  Status s = dir_->UpdateBatch(&late);
  EXPECT_TRUE(s.IsConflict()) << s.ToString();
  EXPECT_NE(s.message().find("another writer came first"), std::string::npos) << s.message();
  EXPECT_EQ(late.version, 1u);
  got = dir_->GetBatch(b.name);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameBatch(*got, b);
  // Fields emptied by an update come back empty, members too.
  b.target = b.runner = b.created = "";
  b.members.clear();
  b.result = "";
  ASSERT_OK(dir_->UpdateBatch(&b));
  EXPECT_EQ(b.version, 3u);
  got = dir_->GetBatch(b.name);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameBatch(*got, b);
  // And members added back.
  b.members = {Member(5, MemberState::kQueued)};
  ASSERT_OK(dir_->UpdateBatch(&b));
  got = dir_->GetBatch(b.name);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameBatch(*got, b);
  // No batch: NotFound, naming it.
  BatchRecord none = MakeBatch("none");
  none.version = 1;
  s = dir_->UpdateBatch(&none);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.message().find("no batch named 'none'"), std::string::npos) << s.message();
  EXPECT_EQ(none.version, 1u);
}

TEST_P(DirectoryContractTest, DeleteBatchIsGuardedByTheVersion) {
  BatchRecord a = MakeBatch("wave1"), b = MakeBatch("wave2");
  ASSERT_OK(dir_->AddBatch(&a));
  ASSERT_OK(dir_->AddBatch(&b));
  a.state = BatchState::kCompleted;
  ASSERT_OK(dir_->UpdateBatch(&a));  // now version 2
  Status s = dir_->DeleteBatch(a.name, 1);
  EXPECT_TRUE(s.IsConflict()) << s.ToString();
  auto got = dir_->GetBatch(a.name);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameBatch(*got, a);
  ASSERT_OK(dir_->DeleteBatch(a.name, 2));
  EXPECT_TRUE(dir_->GetBatch(a.name).status().IsNotFound());
  s = dir_->DeleteBatch(a.name, 2);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.message().find("no batch named 'wave1'"), std::string::npos) << s.message();
  // Version 0: whatever is there.
  ASSERT_OK(dir_->DeleteBatch(b.name, 0));
  EXPECT_TRUE(dir_->GetBatch(b.name).status().IsNotFound());
  EXPECT_TRUE(dir_->DeleteBatch(b.name, 0).IsNotFound());
  EXPECT_TRUE(dir_->DeleteBatch("never", 0).IsNotFound());
  std::vector<BatchRecord> all;
  ASSERT_OK(dir_->ListBatches(&all));
  EXPECT_TRUE(all.empty());
  // Gone, the name can be used again, at version 1.
  BatchRecord again = MakeBatch("wave1");
  ASSERT_OK(dir_->AddBatch(&again));
  EXPECT_EQ(again.version, 1u);
}

TEST_P(DirectoryContractTest, InvalidBatchNamesAreInvalidArgument) {
  for (const std::string& name : {std::string(), std::string("a b"), std::string("x/y"), std::string("cn=x,ou=y"),
                                  std::string("ümlaut"), std::string("tab\t"), std::string(65, 'a')}) {
    SCOPED_TRACE("'" + name + "'");
    BatchRecord b = MakeBatch(name);
    EXPECT_EQ(dir_->AddBatch(&b).code(), Status::Code::kInvalidArgument);
    EXPECT_EQ(b.version, 0u);
    EXPECT_EQ(dir_->GetBatch(name).status().code(), Status::Code::kInvalidArgument);
    b.version = 1;
    EXPECT_EQ(dir_->UpdateBatch(&b).code(), Status::Code::kInvalidArgument);
    EXPECT_EQ(dir_->DeleteBatch(name, 1).code(), Status::Code::kInvalidArgument);
    EXPECT_EQ(dir_->DeleteBatch(name, 0).code(), Status::Code::kInvalidArgument);
  }
  EXPECT_NE(ValidateBatchName("a b").message().find("1-64"), std::string::npos);
  std::vector<BatchRecord> all;
  ASSERT_OK(dir_->ListBatches(&all));
  EXPECT_TRUE(all.empty());
  BatchRecord longest = MakeBatch(std::string(64, 'z'));
  ASSERT_OK(dir_->AddBatch(&longest));
  auto got = dir_->GetBatch(longest.name);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameBatch(*got, longest);
}

TEST_P(DirectoryContractTest, ConcurrentBatchUpdatesHaveExactlyOneWinner) {
  constexpr int kThreads = 2;
  std::vector<Directory*> writers = Writers(kThreads);
  ASSERT_EQ(writers.size(), size_t(kThreads));
  BatchRecord b = MakeBatch("wave1");
  ASSERT_OK(dir_->AddBatch(&b));
  for (int round = 0; round < 10; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::vector<Status> results(kThreads);
    std::barrier all_read(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        // Both read the same version (a runner, `batch stop`), then both
        // write it.
        auto cur = writers[size_t(t)]->GetBatch("wave1");
        all_read.arrive_and_wait();
        if (!cur.ok()) {
          results[size_t(t)] = cur.status();
          return;
        }
        BatchRecord next = *cur;
        next.runner = "writer." + std::to_string(t);
        next.members[size_t(t)].passes += 1;
        results[size_t(t)] = writers[size_t(t)]->UpdateBatch(&next);
      });
    }
    for (auto& th : threads) th.join();
    int winners = 0, winner = -1;
    for (int t = 0; t < kThreads; ++t) {
      if (results[size_t(t)].ok()) {
        ++winners;
        winner = t;
      } else {
        EXPECT_TRUE(results[size_t(t)].IsConflict()) << results[size_t(t)].ToString();
      }
    }
    ASSERT_EQ(winners, 1);
    b.runner = "writer." + std::to_string(winner);
    b.members[size_t(winner)].passes += 1;
    ++b.version;
    auto got = dir_->GetBatch("wave1");
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ExpectSameBatch(*got, b);  // the winner's write, whole; nothing of the loser's
  }
}

TEST_P(DirectoryContractTest, DamagedBatchIsSkippedAndReportedWhileTheOthersList) {
  BatchRecord a = MakeBatch("wave1"), bad = MakeBatch("wave2"), c = MakeBatch("wave3");
  for (BatchRecord* b : {&a, &bad, &c}) ASSERT_OK(dir_->AddBatch(b));
  if (GetParam() == "ldap") {
    RawLdap raw(ldap_);
    ASSERT_TRUE(raw.ok());
    ASSERT_EQ(raw.ReplaceAll(BatchDn(bad.name), "mbxBatchMember", {"{\"index\":0,\"mailbox\":", "[1,2]"}),
              LDAP_SUCCESS);
  } else {
    RawLmdbPut("batches", bad.name, "{\"name\":\"wave2\",\"members\":[{\"mailbox\":\"not a guid\"}],\"version\":1}");
  }
  Status s = dir_->GetBatch(bad.name).status();
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  if (GetParam() == "ldap") {
    EXPECT_NE(s.message().find(BatchDn(bad.name)), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("mbxBatchMember"), std::string::npos) << s.message();
  } else {
    EXPECT_NE(s.message().find("damaged directory batch record"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("not a guid"), std::string::npos) << s.message();
  }
  std::vector<BatchRecord> all;
  s = dir_->ListBatches(&all);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  std::vector<std::string> damaged;
  ASSERT_OK(dir_->ListBatches(&all, &damaged));
  ASSERT_EQ(all.size(), 2u);
  ExpectSameBatch(all[0], a);
  ExpectSameBatch(all[1], c);
  ASSERT_EQ(damaged.size(), 1u);
  EXPECT_EQ(damaged[0].rfind("wave2: ", 0), 0u) << damaged[0];
  // The good batches still take writes; the damaged one (whose version is
  // still readable) is replaced by a guarded write, or removed unguarded.
  ASSERT_OK(dir_->UpdateBatch(&a));
  BatchRecord repaired = MakeBatch("wave2");
  repaired.version = 1;
  ASSERT_OK(dir_->UpdateBatch(&repaired));
  auto got = dir_->GetBatch("wave2");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameBatch(*got, repaired);
  if (GetParam() == "ldap") {
    RawLdap raw(ldap_);
    ASSERT_TRUE(raw.ok());
    ASSERT_EQ(raw.Replace(BatchDn(bad.name), "mbxBatchState", "flying"), LDAP_SUCCESS);
  } else {
    RawLmdbPut("batches", bad.name, "not json at all");
  }
  s = dir_->GetBatch(bad.name).status();
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  ASSERT_OK(dir_->DeleteBatch(bad.name, 0));
  damaged.clear();
  ASSERT_OK(dir_->ListBatches(&all, &damaged));
  EXPECT_EQ(all.size(), 2u);
  EXPECT_TRUE(damaged.empty());
  ASSERT_OK(dir_->ListBatches(&all));
}

// LDAP keeps the members as values of one attribute, in no order: they are
// read back in the order of their indexes, and indexes that do not number
// the members 0..n-1 are a damaged entry.
TEST_P(DirectoryContractTest, BatchMembersComeBackInTheirOrder) {
  BatchRecord b = MakeBatch("wave1");
  b.members.clear();
  for (int i = 0; i < 20; ++i) b.members.push_back(Member(40 - i, MemberState::kSynced));
  ASSERT_OK(dir_->AddBatch(&b));
  auto got = dir_->GetBatch(b.name);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameBatch(*got, b);
  if (GetParam() != "ldap") return;
  RawLdap raw(ldap_);
  ASSERT_TRUE(raw.ok());
  // Written in reverse: read in index order all the same.
  std::vector<std::string> values;
  for (size_t i = b.members.size(); i-- > 0;) values.push_back(BatchMemberToJson(b.members[i], i));
  ASSERT_EQ(raw.ReplaceAll(BatchDn(b.name), "mbxBatchMember", values), LDAP_SUCCESS);
  got = dir_->GetBatch(b.name);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameBatch(*got, b);
  // An index twice (a member lost), or one past the end.
  const std::vector<std::vector<std::string>> damaged = {
      {BatchMemberToJson(b.members[0], 0), BatchMemberToJson(b.members[1], 0)},
      {BatchMemberToJson(b.members[0], 0), BatchMemberToJson(b.members[1], 2)},
      {BatchMemberToJson(b.members[0], 1)}};
  for (const auto& vs : damaged) {
    ASSERT_EQ(raw.ReplaceAll(BatchDn(b.name), "mbxBatchMember", vs), LDAP_SUCCESS);
    Status s = dir_->GetBatch(b.name).status();
    EXPECT_TRUE(s.IsCorruption()) << s.ToString();
    EXPECT_NE(s.message().find("mbxBatchMember"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("index"), std::string::npos) << s.message();
  }
}

// A directory made before batches existed: the embedded one lacks the
// batches database, an LDAP base the ou=batches container. Reads find
// nothing; the first add makes what is missing.
TEST_P(DirectoryContractTest, BatchesWorkOnADirectoryMadeWithoutThem) {
  if (GetParam() == "ldap") {
    RawLdap raw(ldap_);
    ASSERT_TRUE(raw.ok());
    ASSERT_EQ(raw.Delete("ou=batches," + ldap_.base_dn), LDAP_SUCCESS);
    auto again = OpenLdapDirectory(ldap_, false);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
  } else {
    // The queue and leases databases made as an older version made them,
    // without batches.
    dir_.reset();
    {
      LmdbEnv env;
      ASSERT_OK(env.Open(tmp_ / "directory", 0, 8, 1ull << 30));
      LmdbTxn txn;
      ASSERT_OK(txn.Begin(env.get(), 0));
      MDB_dbi dbi;
      ASSERT_EQ(mdb_dbi_open(txn.get(), "batches", 0, &dbi), MDB_NOTFOUND);
      for (const char* db : {"queue", "leases"}) ASSERT_EQ(mdb_dbi_open(txn.get(), db, MDB_CREATE, &dbi), 0);
      ASSERT_OK(txn.Commit());
    }
    auto d = Directory::OpenLmdb(tmp_ / "directory", false);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    dir_ = std::move(d).value();
  }
  std::vector<BatchRecord> all;
  std::vector<std::string> damaged;
  ASSERT_OK(dir_->ListBatches(&all, &damaged));
  EXPECT_TRUE(all.empty());
  EXPECT_TRUE(dir_->GetBatch("wave1").status().IsNotFound());
  BatchRecord b = MakeBatch("wave1");
  b.version = 1;
  EXPECT_TRUE(dir_->UpdateBatch(&b).IsNotFound());
  EXPECT_TRUE(dir_->DeleteBatch(b.name, 1).IsNotFound());
  EXPECT_TRUE(dir_->DeleteBatch(b.name, 0).IsNotFound());
  ASSERT_OK(dir_->AddBatch(&b));
  auto got = dir_->GetBatch(b.name);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameBatch(*got, b);
}

TEST_P(DirectoryContractTest, EachBatchCallIsOneDirectoryOperation) {
  auto one = [&](const char* what, const std::function<Status()>& call) {
    const uint64_t before = dir_->operations();
    EXPECT_OK(call());
    EXPECT_EQ(dir_->operations() - before, 1u) << what;
  };
  // (The embedded directory's first such call also opens its databases.)
  std::vector<BatchRecord> all;
  ASSERT_OK(dir_->ListBatches(&all));
  BatchRecord b = MakeBatch("wave1");
  one("AddBatch", [&] { return dir_->AddBatch(&b); });
  one("GetBatch", [&] { return dir_->GetBatch(b.name).status(); });
  one("ListBatches", [&] { return dir_->ListBatches(&all); });
  one("UpdateBatch", [&] { return dir_->UpdateBatch(&b); });
  one("DeleteBatch", [&] { return dir_->DeleteBatch(b.name, b.version); });
}

INSTANTIATE_TEST_SUITE_P(Backends, DirectoryContractTest, ::testing::Values("lmdb", "ldap"),
                         [](const auto& param_info) { return param_info.param; });

}  // namespace
}  // namespace mbx
