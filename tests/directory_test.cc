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
  MoveRecord m{TestGuid(1), "user1", "MS1", "MS2", "copying", "2026-01-01T00:00:00Z", "{}"};
  ASSERT_OK(d.PutMove(m));
  EXPECT_EQ(d.GetMove(TestGuid(1))->step, "copying");
  m.step = "switched";
  ASSERT_OK(d.SwitchHome(TestGuid(1), *d.GetStore("MS2"), m));
  auto u = d.GetUser("user1");
  EXPECT_EQ(u->home_mdb, d.GetStore("MS2")->dn);
  EXPECT_EQ(u->home_server, "SERVER2");
  EXPECT_EQ(d.GetMove(TestGuid(1))->step, "switched");
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
    auto d = Directory::Open(t / "dir", true);
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
  auto d = Directory::Open(t / "dir", false);
  ASSERT_TRUE(d.ok());
  auto u = (*d)->GetUser("user1");
  ASSERT_FALSE(u.ok());
  EXPECT_TRUE(u.status().IsCorruption());
  std::vector<UserRecord> all;
  EXPECT_TRUE((*d)->ListUsers(&all).IsCorruption());
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
