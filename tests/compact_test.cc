// `store compact`: LMDB's compacting copy swapped in for data.mdb. After every
// mailbox has moved out, the file shrinks below a tenth of its size; the store
// verifies and takes writes; the log checkpoint stays valid (records after it
// replay onto the compacted file); a store open elsewhere is refused; and a
// crash at any step leaves the old file or the new one, never neither.
#include <nlohmann/json.hpp>

#include <map>

#include "store/compact.h"
#include "store/crash_point.h"
#include "store/store.h"
#include "tests/report_figure.h"
#include "tests/test_util.h"

namespace mbx {
namespace {

using json = nlohmann::json;
using testing::Mbxmove;
using testing::RunCommand;
using testing::RunJson;
using testing::TempDir;
using testing::TestGuid;
using testing::TestRecord;
namespace fs = std::filesystem;

// mailbox GUID -> content checksum, from `stat --json`.
std::map<std::string, std::string> Checksums(const std::string& org) {
  std::map<std::string, std::string> out;
  const json stat = RunJson("stat --org " + org + " --json");
  for (const auto& m : stat["mailboxes"]) out[m["mailbox"].get<std::string>()] = m["checksum"].get<std::string>();
  return out;
}

void ExpectClean(const std::string& org) {
  const json v = RunJson("verify --org " + org + " --json");
  EXPECT_TRUE(v["clean"].get<bool>()) << v["problems"].dump();
}

TEST(CompactTest, AfterMovingEveryMailboxOutTheFileShrinksBelowATenthAndTheStoreStaysUsable) {
  TempDir t;
  const std::string org = t / "org";
  ASSERT_EQ(RunCommand(Mbxmove() + " gen --org " + org + " --store MS1 --preset tiny --seed 7").exit_code, 0);
  ASSERT_EQ(RunCommand(Mbxmove() + " store create --org " + org + " --store MS2").exit_code, 0);
  const auto before_move = Checksums(org);
  ASSERT_EQ(before_move.size(), 12u);
  RunJson("move --org " + org + " --from MS1 --to MS2 --json");
  const json c = RunJson("store compact --org " + org + " --store MS1 --json");
  const uint64_t before = c["bytes_before"].get<uint64_t>(), after = c["bytes_after"].get<uint64_t>();
  EXPECT_EQ(fs::file_size(org + "/stores/MS1/data.mdb"), after);
  EXPECT_LT(after * 10, before) << before << " -> " << after;
  EXPECT_FALSE(fs::exists(org + "/stores/MS1/data.mdb.compact"));
  ExpectClean(org);
  EXPECT_EQ(Checksums(org), before_move);
  // The compacted store takes the mailboxes back, and still verifies.
  RunJson("move --org " + org + " --from MS2 --to MS1 --json");
  ExpectClean(org);
  EXPECT_EQ(Checksums(org), before_move);
  const json stat = RunJson("stat --org " + org + " --json");
  for (const auto& m : stat["mailboxes"]) EXPECT_EQ(m["store"].get<std::string>(), "MS1") << m.dump();
  // The human form names both sizes.
  RunJson("move --org " + org + " --from MS1 --to MS2 --json");
  auto human = RunCommand(Mbxmove() + " store compact --org " + org + " --store MS1");
  EXPECT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("->"), std::string::npos) << human.out;
  testing::ReportFigure("compact after moving 12 tiny mailboxes out: data.mdb " + std::to_string(before) + " -> " +
                        std::to_string(after) + " bytes");
}

TEST(CompactTest, AStoreOpenElsewhereIsRefused) {
  TempDir t;
  ASSERT_OK(Store::Create(t / "s", "S", StoreOptions{}));
  auto s = Store::Open(t / "s");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const uint64_t size = fs::file_size(t / "s/data.mdb");
  auto r = CompactStore(t / "s");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsBusy()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("open in another mbxmove process"), std::string::npos) << r.status().ToString();
  EXPECT_EQ(fs::file_size(t / "s/data.mdb"), size);
  EXPECT_FALSE(fs::exists(t / "s/data.mdb.compact"));
  s->reset();
  auto ok = CompactStore(t / "s");
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
  // And through the command: an organisation whose store another process holds.
  const std::string org = t / "org";
  ASSERT_EQ(RunCommand(Mbxmove() + " store create --org " + org + " --store MS1").exit_code, 0);
  auto held = Store::Open(org + "/stores/MS1");
  ASSERT_TRUE(held.ok());
  auto cli = RunCommand(Mbxmove() + " store compact --org " + org + " --store MS1");
  EXPECT_NE(cli.exit_code, 0);
  EXPECT_NE(cli.err.find("open in another mbxmove process"), std::string::npos) << cli.err;
}

// Records logged after the checkpoint (a process died between its log append
// and its commit) replay onto the compacted file exactly as onto the old one.
TEST(CompactTest, RecordsAfterTheCheckpointReplayOntoTheCompactedFile) {
  TempDir t;
  const std::string dir = t / "s";
  StoreOptions so;
  so.log.file_bytes = 4096;
  ASSERT_OK(Store::Create(dir, "S", so));
  auto write = [&](uint64_t from, uint64_t to) {
    auto s = Store::Open(dir);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    for (uint64_t id = from; id <= to; ++id) {
      WriteBatch b;
      b.PutItem(TestGuid(1), 1, id, TestRecord(id, 3000));
      ASSERT_OK((*s)->Write(std::move(b)));
    }
  };
  write(1, 40);
  // The database as it stood with the checkpoint after item 40 ...
  fs::copy_file(dir + "/data.mdb", t / "old.mdb");
  write(41, 80);
  // ... put back under the logs that hold items 41..80 after that checkpoint:
  // the state a crash between log append and commit leaves.
  fs::copy_file(t / "old.mdb", dir + "/data.mdb", fs::copy_options::overwrite_existing);
  fs::remove(dir + "/lock.mdb");
  auto r = CompactStore(dir);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto s = Store::Open(dir);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_GT((*s)->stats().replayed_records, 0u);
  auto reader = (*s)->BeginRead();
  ASSERT_TRUE(reader.ok());
  std::vector<uint64_t> ids;
  ASSERT_OK(reader->ForEachItem(TestGuid(1), 1, [&](uint64_t id, std::string_view rec) {
    EXPECT_EQ(rec, TestRecord(id, 3000));
    ids.push_back(id);
    return Status::Ok();
  }));
  ASSERT_EQ(ids.size(), 80u);
  EXPECT_EQ(ids.front(), 1u);
  EXPECT_EQ(ids.back(), 80u);
}

// A compaction killed at each of its steps (while writing the copy, after
// the copy is synced, after the rename): data.mdb is whole, the old file or
// the new one; the store verifies with the content it had; a second
// compaction then succeeds.
TEST(CompactTest, ACrashAtAnyStepLeavesTheOldFileOrTheNewOne) {
  TempDir t;
  const std::string tpl = t / "tpl";
  ASSERT_EQ(RunCommand(Mbxmove() + " gen --org " + tpl + " --store MS1 --preset tiny --seed 9").exit_code, 0);
  ASSERT_EQ(RunCommand(Mbxmove() + " store create --org " + tpl + " --store MS2").exit_code, 0);
  // Half the mailboxes move out, so the copy is smaller and several chunks long.
  const json stat = RunJson("stat --org " + tpl + " --json");
  std::string some;
  int n = 0;
  for (const auto& m : stat["mailboxes"]) {
    if (n++ % 2 == 0) some += " --mailbox " + m["mailbox"].get<std::string>();
  }
  RunJson("move --org " + tpl + " --to MS2" + some + " --json");
  const auto expected = Checksums(tpl);
  const uint64_t original = fs::file_size(tpl + "/stores/MS1/data.mdb");
  int crashes = 0;
  for (const std::string point : {"compact-writing:1", "compact-writing:2", "compact-copied:1", "compact-renamed:1"}) {
    SCOPED_TRACE(point);
    const std::string org = t / ("c" + std::to_string(crashes));
    fs::copy(tpl, org, fs::copy_options::recursive);
    auto r = RunCommand("MBX_CRASH_AT=" + point + " " + Mbxmove() + " store compact --org " + org + " --store MS1");
    ASSERT_EQ(r.exit_code, kCrashExitCode) << r.out << r.err;
    ++crashes;
    const uint64_t size = fs::file_size(org + "/stores/MS1/data.mdb");
    if (point == "compact-renamed:1") {
      EXPECT_LT(size, original);
    } else {
      EXPECT_EQ(size, original);
    }
    ExpectClean(org);
    EXPECT_EQ(Checksums(org), expected);
    const json again = RunJson("store compact --org " + org + " --store MS1 --json");
    EXPECT_FALSE(fs::exists(org + "/stores/MS1/data.mdb.compact"));
    ExpectClean(org);
    EXPECT_EQ(Checksums(org), expected);
    RunJson("move --org " + org + " --from MS2 --to MS1 --json");  // writable
    ExpectClean(org);
  }
  EXPECT_EQ(crashes, 4);
}

}  // namespace
}  // namespace mbx
