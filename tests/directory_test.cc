// Directory and organisation: stores, users with their homeMDB, the switch
// transaction, move records, damaged records.
#include <lmdb.h>

#include <functional>
#include <limits>
#include <optional>

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

BatchRecord FullBatch() {
  BatchRecord b;
  b.name = "wave-1";
  b.target = "MS2";
  b.state = BatchState::kCompleting;
  b.concurrency = 8;
  b.bad_item_limit = 3;
  b.keep_source = true;
  b.sync_interval_ms = 30'000;
  b.complete_at_ms = 1'790'000'900'000;
  b.complete_delay_ms = -1;
  b.cancel_after_ms = 7'200'000;
  b.created = "2026-11-29T10:00:00Z";
  b.started_ms = 1'790'000'000'000;
  b.finished_ms = 1'790'000'999'000;
  b.runner = "host1:4242";
  b.result = "stopped: \"why\"\n";
  for (int i = 1; i <= 3; ++i) {
    BatchMember m;
    m.mailbox = TestGuid(uint8_t(i));
    m.user = "user" + std::to_string(i);
    m.source = "MS1";
    m.state = i == 1 ? MemberState::kSynced : i == 2 ? MemberState::kFailed : MemberState::kCompleted;
    m.passes = uint32_t(i);
    m.items_copied = 18'446'744'073'709'551'615u;
    m.bytes_copied = uint64_t(i) << 40;
    m.bytes_total = (uint64_t(i) << 40) + 1;
    m.items_behind = uint64_t(i);
    m.last_sync_ms = -int64_t(i);
    m.lock_ms = 1.0 / 3.0 * i;
    m.dropped = 4'294'967'295u;
    m.attempts = uint32_t(i + 1);
    m.result = "member " + std::to_string(i);
    b.members.push_back(m);
  }
  b.version = 9;
  return b;
}

void ExpectSameBatch(const BatchRecord& a, const BatchRecord& b) {
  EXPECT_EQ(BatchToJson(a), BatchToJson(b));  // every field, members in order
  EXPECT_EQ(a.version, b.version);
}

TEST(DirectoryTest, BatchRecordJsonRoundTripsEveryField) {
  const BatchRecord b = FullBatch();
  const std::string text = BatchToJson(b);
  auto got = ParseBatchJson(text);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameBatch(*got, b);
  ASSERT_EQ(got->members.size(), 3u);
  EXPECT_EQ(got->members[2].mailbox, TestGuid(3));
  EXPECT_EQ(got->members[1].lock_ms, b.members[1].lock_ms);
  EXPECT_EQ(got->complete_delay_ms, -1);
  EXPECT_EQ(RecordVersionJson(text), std::optional<uint64_t>(9));
  // Every state name parses back to its state; nothing else does.
  for (BatchState s : {BatchState::kCreated, BatchState::kRunning, BatchState::kCompleting, BatchState::kCompleted,
                       BatchState::kStopping, BatchState::kStopped}) {
    EXPECT_EQ(ParseBatchState(BatchStateName(s)), s);
  }
  for (MemberState s : {MemberState::kQueued, MemberState::kSyncing, MemberState::kSynced, MemberState::kCompleting,
                        MemberState::kCompleted, MemberState::kFailed, MemberState::kStopped}) {
    EXPECT_EQ(ParseMemberState(MemberStateName(s)), s);
  }
  // A record written before members kept their size reads as size unknown;
  // a size of the wrong type is refused.
  {
    nlohmann::json j = nlohmann::json::parse(text);
    for (auto& m : j["members"]) m.erase("bytes_total");
    auto old = ParseBatchJson(j.dump());
    ASSERT_TRUE(old.ok()) << old.status().ToString();
    EXPECT_EQ(old->members[0].bytes_total, 0u);
    j["members"][0]["bytes_total"] = -1;
    EXPECT_FALSE(ParseBatchJson(j.dump()).ok());
  }
  EXPECT_FALSE(ParseBatchState("Running").has_value());
  EXPECT_FALSE(ParseMemberState("").has_value());
  // One member as the LDAP backend keeps it, with its index.
  size_t index = 0;
  auto m = ParseBatchMemberJson(BatchMemberToJson(b.members[1], 7), &index);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(index, 7u);
  EXPECT_EQ(m->mailbox, TestGuid(2));
  EXPECT_EQ(m->result, "member 2");
  // Text that is not UTF-8 is written (replaced), never thrown over; a
  // lock window that is not a number is written as 0.
  BatchRecord odd = FullBatch();
  odd.result = std::string("bad \xff\xfe bytes");
  odd.members[0].lock_ms = std::numeric_limits<double>::quiet_NaN();
  got = ParseBatchJson(BatchToJson(odd));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->members[0].lock_ms, 0.0);
  EXPECT_EQ(got->result.rfind("bad ", 0), 0u);
}

// A damaged batch record -- garbage, a field of the wrong type, a number
// out of its field's range, an unknown state, a bad GUID -- is Corruption
// quoting it, never a crash, an exception or a wrapped number.
TEST(DirectoryTest, DamagedBatchRecordJsonIsCorruption) {
  const nlohmann::json good = nlohmann::json::parse(BatchToJson(FullBatch()));
  auto with = [&](const std::function<void(nlohmann::json&)>& change) {
    nlohmann::json j = good;
    change(j);
    return j.dump();
  };
  const std::vector<std::string> damaged = {
      "",
      "not json",
      "[]",
      "{}",
      "null",
      "{\"name\":\"wave-1\",\"version\":1}",
      std::string("{\"name\":\"w\0ave\"}", 15),
      with([](auto& j) { j["name"] = "bad name"; }),
      with([](auto& j) { j["name"] = ""; }),
      with([](auto& j) { j["state"] = "flying"; }),
      with([](auto& j) { j["state"] = 2; }),
      with([](auto& j) { j["concurrency"] = -1; }),
      with([](auto& j) { j["concurrency"] = 4'294'967'296u; }),
      with([](auto& j) { j["concurrency"] = "4"; }),
      with([](auto& j) { j["bad_item_limit"] = 1.5; }),
      with([](auto& j) { j["keep_source"] = "true"; }),
      with([](auto& j) { j["sync_interval_ms"] = 9'223'372'036'854'775'808u; }),
      with([](auto& j) { j["complete_delay_ms"] = nullptr; }),
      with([](auto& j) { j["started_ms"] = 1e300; }),
      with([](auto& j) { j["version"] = 0; }),
      with([](auto& j) { j["version"] = -3; }),
      with([](auto& j) { j.erase("finished_ms"); }),
      with([](auto& j) { j.erase("members"); }),
      with([](auto& j) { j["members"] = nlohmann::json::object(); }),
      with([](auto& j) { j["members"][0] = "a member"; }),
      with([](auto& j) { j["members"][1]["mailbox"] = "not a guid"; }),
      with([](auto& j) { j["members"][1]["mailbox"] = 7; }),
      with([](auto& j) { j["members"][2]["state"] = "teleported"; }),
      with([](auto& j) { j["members"][2]["passes"] = -1; }),
      with([](auto& j) { j["members"][0]["dropped"] = 4'294'967'296u; }),
      with([](auto& j) { j["members"][0]["items_copied"] = -1; }),
      with([](auto& j) { j["members"][0]["lock_ms"] = "fast"; }),
      with([](auto& j) { j["members"][0]["last_sync_ms"] = 0.5; }),
      with([](auto& j) { j["members"][0].erase("result"); }),
  };
  for (const std::string& text : damaged) {
    SCOPED_TRACE(text);
    auto b = ParseBatchJson(text);
    ASSERT_FALSE(b.ok());
    EXPECT_TRUE(b.status().IsCorruption()) << b.status().ToString();
    EXPECT_NE(b.status().message().find("damaged directory batch record"), std::string::npos)
        << b.status().message();
  }
  // A number written too large for JSON's double: refused, not read as inf.
  std::string huge = good.dump();
  const size_t at = huge.find("\"started_ms\":") + 13;
  huge.replace(at, huge.find(',', at) - at, "1e400");
  EXPECT_TRUE(ParseBatchJson(huge).status().IsCorruption());
  // Every prefix of a good record, and every byte of it flipped: parsed or
  // Corruption, nothing else.
  const std::string text = good.dump();
  for (size_t n = 0; n < text.size(); ++n) {
    EXPECT_TRUE(ParseBatchJson(text.substr(0, n)).status().IsCorruption()) << n;
    std::string flipped = text;
    flipped[n] = char(flipped[n] ^ 0x5a);
    auto b = ParseBatchJson(flipped);
    EXPECT_TRUE(b.ok() || b.status().IsCorruption()) << b.status().ToString();
  }
  // A member value (LDAP) without its index, or with a negative one.
  size_t index = 0;
  nlohmann::json member = good["members"][0];
  EXPECT_TRUE(ParseBatchMemberJson(member.dump(), &index).status().IsCorruption());
  member["index"] = -1;
  EXPECT_TRUE(ParseBatchMemberJson(member.dump(), &index).status().IsCorruption());
  EXPECT_TRUE(ParseBatchMemberJson("{\"index\":0", &index).status().IsCorruption());
}

}  // namespace
}  // namespace mbx
