// Directory and organisation: stores, users with their homeMDB, the switch
// transaction, move records, damaged records.
#include <lmdb.h>

#include "store/directory.h"
#include "store/organization.h"
#include "tests/test_util.h"

namespace mbx {
namespace {

using testing::TempDir;
using testing::TestGuid;

UserRecord User(int n, const std::string& dn) {
  return UserRecord{"user" + std::to_string(n), "User " + std::to_string(n),
                    "user" + std::to_string(n) + "@example.com", TestGuid(uint8_t(n)), dn, "SERVER1"};
}

TEST(DirectoryTest, StoresAndUsersWithTheirHomeMdb) {
  TempDir t;
  auto org = Organization::OpenOrCreate(t / "org");
  ASSERT_TRUE(org.ok()) << org.status().ToString();
  ASSERT_OK((*org)->CreateStore("MS1", "SERVER1", {}));
  ASSERT_OK((*org)->CreateStore("MS2", "SERVER2", {}));
  EXPECT_EQ((*org)->CreateStore("MS1", "SERVER1", {}).code(), Status::Code::kAlreadyExists);
  EXPECT_EQ((*org)->CreateStore("bad/name", "SERVER1", {}).code(), Status::Code::kInvalidArgument);
  Directory& d = (*org)->directory();
  auto ms1 = d.GetStore("MS1");
  ASSERT_TRUE(ms1.ok());
  EXPECT_EQ(ms1->dn, StoreDistinguishedName("MS1", "SERVER1"));
  EXPECT_EQ(ms1->dn.rfind("CN=MS1,CN=First Storage Group,CN=InformationStore,CN=SERVER1,", 0), 0u);
  std::vector<StoreRecord> stores;
  ASSERT_OK(d.ListStores(&stores));
  EXPECT_EQ(stores.size(), 2u);

  ASSERT_OK(d.PutUsers({User(1, ms1->dn), User(2, ms1->dn)}));
  auto u = d.GetUser("user2");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->home_mdb, ms1->dn);
  EXPECT_EQ(u->mailbox, TestGuid(2));
  auto by = d.GetUserByMailbox(TestGuid(1));
  ASSERT_TRUE(by.ok());
  EXPECT_EQ(by->name, "user1");
  EXPECT_TRUE(d.GetUser("nobody").status().IsNotFound());
  EXPECT_TRUE(d.GetUserByMailbox(TestGuid(9)).status().IsNotFound());
}

TEST(DirectoryTest, SwitchHomeMovesTheUserAndRecordsTheMoveAtOnce) {
  TempDir t;
  auto org = Organization::OpenOrCreate(t / "org");
  ASSERT_TRUE(org.ok());
  ASSERT_OK((*org)->CreateStore("MS1", "SERVER1", {}));
  ASSERT_OK((*org)->CreateStore("MS2", "SERVER2", {}));
  Directory& d = (*org)->directory();
  ASSERT_OK(d.PutUsers({User(1, d.GetStore("MS1")->dn)}));
  MoveRecord m{TestGuid(1), "user1", "MS1", "MS2", MoveStep::kCopying, "2026-01-01T00:00:00Z", true};
  ASSERT_OK(d.PutMove(m));
  EXPECT_EQ(d.GetMove(TestGuid(1))->step, MoveStep::kCopying);
  EXPECT_TRUE(d.GetMove(TestGuid(1))->keep_source);
  m.step = MoveStep::kSwitched;
  ASSERT_OK(d.SwitchHome(TestGuid(1), *d.GetStore("MS2"), m));
  auto u = d.GetUser("user1");
  EXPECT_EQ(u->home_mdb, d.GetStore("MS2")->dn);
  EXPECT_EQ(u->home_server, "SERVER2");
  EXPECT_EQ(d.GetMove(TestGuid(1))->step, MoveStep::kSwitched);
  std::vector<MoveRecord> moves;
  ASSERT_OK(d.ListMoves(&moves));
  EXPECT_EQ(moves.size(), 1u);
  ASSERT_OK(d.DeleteMove(TestGuid(1)));
  EXPECT_TRUE(d.GetMove(TestGuid(1)).status().IsNotFound());
  // Switching a mailbox nobody owns fails and changes nothing.
  EXPECT_FALSE(d.SwitchHome(TestGuid(7), *d.GetStore("MS2"), m).ok());
}

TEST(DirectoryTest, SurvivesReopen) {
  TempDir t;
  {
    auto org = Organization::OpenOrCreate(t / "org");
    ASSERT_TRUE(org.ok());
    ASSERT_OK((*org)->CreateStore("MS1", "SERVER1", {}));
    ASSERT_OK((*org)->directory().PutUsers({User(3, "CN=x")}));
  }
  auto org = Organization::Open(t / "org");
  ASSERT_TRUE(org.ok()) << org.status().ToString();
  EXPECT_EQ((*org)->directory().GetUser("user3")->home_mdb, "CN=x");
  auto s = (*org)->GetStore("MS1");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE((*org)->GetStore("MS9").status().IsNotFound());
}

TEST(DirectoryTest, DamagedRecordIsCorruptionNotACrash) {
  TempDir t;
  {
    auto d = Directory::OpenLmdb(t / "dir", true);
    ASSERT_TRUE(d.ok());
    ASSERT_OK((*d)->PutUsers({User(1, "CN=x")}));
  }
  {
    // Overwrite the user record with garbage through LMDB itself.
    MDB_env* env;
    ASSERT_EQ(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    ASSERT_EQ(mdb_env_open(env, (t / "dir").c_str(), 0, 0644), 0);
    MDB_txn* txn;
    ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
    MDB_dbi dbi;
    ASSERT_EQ(mdb_dbi_open(txn, "users", 0, &dbi), 0);
    std::string k = "user1", v = "{\"name\": 12, garbage";
    MDB_val mk{k.size(), k.data()}, mv{v.size(), v.data()};
    ASSERT_EQ(mdb_put(txn, dbi, &mk, &mv, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
  }
  auto d = Directory::OpenLmdb(t / "dir", false);
  ASSERT_TRUE(d.ok());
  auto u = (*d)->GetUser("user1");
  ASSERT_FALSE(u.ok());
  EXPECT_TRUE(u.status().IsCorruption());
  std::vector<UserRecord> all;
  EXPECT_TRUE((*d)->ListUsers(&all).IsCorruption());
}

// A move record of an older shape (step among free strings, options in a
// JSON string) or with a step this version does not know is an error that
// names the record, never a crash or a guess.
TEST(DirectoryTest, MoveRecordThisVersionCannotReadIsAnErrorNamingIt) {
  TempDir t;
  { ASSERT_TRUE(Directory::OpenLmdb(t / "dir", true).ok()); }
  const std::string guid = TestGuid(7).ToString();
  for (std::string v : {R"({"mailbox":")" + guid + R"(","user":"u","source":"A","target":"B","step":"copying","extra":"{}"})",
                        R"({"mailbox":")" + guid + R"(","user":"u","source":"A","target":"B","step":"teleporting","keep_source":false})"}) {
    MDB_env* env;
    ASSERT_EQ(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    ASSERT_EQ(mdb_env_open(env, (t / "dir").c_str(), 0, 0600), 0);
    MDB_txn* txn;
    ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
    MDB_dbi dbi;
    ASSERT_EQ(mdb_dbi_open(txn, "moves", 0, &dbi), 0);
    std::string k(TestGuid(7).AsKey());
    MDB_val mk{k.size(), k.data()}, mv{v.size(), v.data()};
    ASSERT_EQ(mdb_put(txn, dbi, &mk, &mv, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    auto d = Directory::OpenLmdb(t / "dir", false);
    ASSERT_TRUE(d.ok());
    auto m = (*d)->GetMove(TestGuid(7));
    ASSERT_FALSE(m.ok());
    EXPECT_TRUE(m.status().IsCorruption());
    EXPECT_NE(m.status().message().find("move record"), std::string::npos) << m.status().message();
    EXPECT_NE(m.status().message().find(guid), std::string::npos) << m.status().message();
    std::vector<MoveRecord> all;
    EXPECT_TRUE((*d)->ListMoves(&all).IsCorruption());
  }
}

TEST(DirectoryTest, ServersKeepTheirAddress) {
  TempDir t;
  auto d = Directory::OpenLmdb(t / "dir", true);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE((*d)->GetServer("SERVER1").status().IsNotFound());
  ASSERT_OK((*d)->PutServer({"SERVER1", "127.0.0.1:7001"}));
  ASSERT_OK((*d)->PutServer({"SERVER2", ""}));
  EXPECT_EQ((*d)->GetServer("SERVER1")->address, "127.0.0.1:7001");
  std::vector<ServerRecord> all;
  ASSERT_OK((*d)->ListServers(&all));
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1].name, "SERVER2");
}

TEST(DirectoryTest, NotAnOrganisationIsRefusedAndNothingIsCreated) {
  TempDir t;
  EXPECT_TRUE(Organization::Open(t / "missing").status().IsNotFound());
  EXPECT_FALSE(testing::fs::exists(t / "missing"));
  testing::fs::create_directories(t / "other");
  { FILE* f = std::fopen((t / "other/notes.txt").c_str(), "w"); std::fputs("x", f); std::fclose(f); }
  auto o = Organization::Open(t / "other");
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("not an mbxmove organisation"), std::string::npos);
  EXPECT_FALSE(Organization::OpenOrCreate(t / "other").ok());
  EXPECT_FALSE(testing::fs::exists(t / "other/directory"));
}

}  // namespace
}  // namespace mbx
