// Damaged stores and directories, and bad command lines, through the
// program: every one gives a clear one-line error and a non-zero exit, never
// a signal, and leaves the damaged files as they were. Damage the store can
// repair from what it still has (a lost checkpoint file, a lost or scribbled
// log generation that the database already holds) is repaired instead, with
// every mailbox's content unchanged.
#include <lmdb.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>

#include "tests/report_figure.h"
#include "store/store.h"
#include "tests/test_util.h"

namespace mbx {
namespace {

using testing::Mbxmove;
using testing::RunCommand;
using testing::TempDir;
namespace fs = std::filesystem;

std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> m;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file() || e.path().filename() == "LOCK" || e.path().filename() == "lock.mdb") continue;
    std::ifstream f(e.path(), std::ios::binary);
    m[e.path().string()] = std::string(std::istreambuf_iterator<char>(f), {});
  }
  return m;
}

void Overwrite(const std::string& path, size_t offset, size_t n, uint32_t seed) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f.good()) << path;
  f.seekp(std::streamoff(offset));
  std::mt19937 rng(seed);
  for (size_t i = 0; i < n; ++i) f.put(char(rng()));
}

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    good_ = tmp_ / "good";
    ASSERT_EQ(RunCommand(Mbxmove() + " gen --org " + good_ + " --store MS1 --preset tiny").exit_code, 0);
  }
  std::string Copy(const std::string& name) {
    const std::string d = tmp_ / name;
    fs::copy(good_, d, fs::copy_options::recursive);
    return d;
  }
  // Runs commands against a damaged organisation: clear error, no signal,
  // nothing changed.
  void ExpectCleanFailure(const std::string& org, const std::string& what) {
    SCOPED_TRACE(what);
    const auto before = Snapshot(org);
    for (const std::string& cmd : {"stat --org " + org, "logs --org " + org + " --store MS1",
                                  "move --org " + org + " --from MS1 --to MS1"}) {
      auto r = RunCommand(Mbxmove() + " " + cmd);
      EXPECT_NE(r.exit_code, 0) << cmd;
      EXPECT_LT(r.exit_code, 128) << cmd << " died by a signal";
      EXPECT_NE(r.err.find("mbxmove: error: "), std::string::npos) << cmd << ": " << r.err;
    }
    // verify reports a damaged store as a problem (exit 3) unless the
    // directory itself cannot be read (exit 1).
    auto v = RunCommand(Mbxmove() + " verify --org " + org);
    EXPECT_TRUE(v.exit_code == 3 || v.exit_code == 1) << v.exit_code << ": " << v.out << v.err;
    EXPECT_TRUE(v.out.find("store-unreadable") != std::string::npos ||
                v.err.find("mbxmove: error: ") != std::string::npos)
        << v.out << v.err;
    EXPECT_TRUE(Snapshot(org) == before) << "a failed command changed the damaged files";
    ++cases_;
  }
  TempDir tmp_;
  std::string good_;
  static int cases_;
};
int BadInputTest::cases_ = 0;

TEST_F(BadInputTest, DamagedStoresAndDirectories) {
  const std::string data = "/stores/MS1/data.mdb";
  {
    const std::string o = Copy("truncated");
    fs::resize_file(o + data, fs::file_size(o + data) / 2);
    ExpectCleanFailure(o, "data.mdb truncated to half");
  }
  {
    const std::string o = Copy("tiny");
    fs::resize_file(o + data, 100);
    ExpectCleanFailure(o, "data.mdb truncated to 100 bytes");
  }
  {
    const std::string o = Copy("header");
    Overwrite(o + data, 0, 8192, 1);
    ExpectCleanFailure(o, "random bytes over the meta pages");
  }
  {
    const std::string o = Copy("random");
    const auto n = fs::file_size(o + data);
    fs::remove(o + data);
    { std::ofstream f(o + data, std::ios::binary); }
    Overwrite(o + data, 0, size_t(n), 2);
    ExpectCleanFailure(o, "data.mdb replaced by random bytes");
  }
  {
    const std::string o = Copy("nodata");
    fs::remove(o + data);
    ExpectCleanFailure(o, "data.mdb missing");
  }
  {
    const std::string o = Copy("dir");
    Overwrite(o + "/directory/data.mdb", 0, 8192, 3);
    ExpectCleanFailure(o, "directory damaged");
  }
  {
    const std::string o = Copy("notafolder");
    fs::remove_all(o + "/stores/MS1");
    { std::ofstream f(o + "/stores/MS1"); f << "not a store"; }
    ExpectCleanFailure(o, "store folder replaced by a file");
  }
  {
    // A store written by a newer mbxmove.
    const std::string o = Copy("newer");
    {
      auto st = Store::Open(o + "/stores/MS1");
      ASSERT_TRUE(st.ok()) << st.status().ToString();
      WriteBatch b;
      b.Put(Db::kMeta, std::string(meta::kFormat), "99");
      ASSERT_TRUE((*st)->Write(std::move(b)).ok());
    }
    ExpectCleanFailure(o, "a store of a newer format version");
    auto r = RunCommand(Mbxmove() + " stat --org " + o);
    EXPECT_NE(r.err.find("newer"), std::string::npos) << r.err;
  }
  {
    // Garbage as a log generation the store never wrote, after a gap.
    const std::string o = Copy("loggarbage");
    {
      std::ofstream f(o + "/stores/MS1/logs/E0000000FFF.log", std::ios::binary);
      f << std::string(4096, 'x');
    }
    Overwrite(o + "/stores/MS1/logs/E0000000FFF.log", 0, 4096, 4);
    ExpectCleanFailure(o, "a log generation full of garbage after a gap");
  }
  {
    // A directory whose user record is not JSON.
    const std::string o = Copy("baduser");
    MDB_env* env = nullptr;
    ASSERT_EQ(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    ASSERT_EQ(mdb_env_open(env, (o + "/directory").c_str(), 0, 0644), 0);
    MDB_txn* txn = nullptr;
    ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
    MDB_dbi users;
    ASSERT_EQ(mdb_dbi_open(txn, "users", 0, &users), 0);
    std::string k = "user0003", v = "{\"name\": \"user0003\", \"mailbox\": [1, 2";
    MDB_val key{k.size(), k.data()}, val{v.size(), v.data()};
    ASSERT_EQ(mdb_put(txn, users, &key, &val, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    SCOPED_TRACE("a user record that is not JSON");
    const auto before = Snapshot(o);
    // (stat lists stores, not users: it has no reason to fail.)
    for (const std::string& cmd : {"verify --org " + o, "move --org " + o + " --from MS1 --to MS1",
                                  "export --org " + o + " --all --maildir " + (tmp_ / "x")}) {
      auto r = RunCommand(Mbxmove() + " " + cmd);
      EXPECT_NE(r.exit_code, 0) << cmd;
      EXPECT_LT(r.exit_code, 128) << cmd << " died by a signal";
      EXPECT_NE(r.err.find("mbxmove: error: "), std::string::npos) << cmd << ": " << r.err;
    }
    EXPECT_TRUE(Snapshot(o) == before);
    ++cases_;
  }
  testing::ReportFigure("bad inputs tried: " + std::to_string(cases_) + ", each a clear error with nothing changed");
}

// Damage the store repairs from what it still has: the database holds the
// checkpoint, and the log before it is no longer needed.
TEST_F(BadInputTest, RepairableLogDamageIsRepaired) {
  const std::string logs = "/stores/MS1/logs/";
  auto checksums = [](const std::string& org) {
    auto r = RunCommand(Mbxmove() + " stat --org " + org + " --json");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::map<std::string, std::string> m;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (j.is_discarded()) return m;
    for (const auto& x : j["mailboxes"]) m[x["mailbox"].get<std::string>()] = x["checksum"].get<std::string>();
    return m;
  };
  const auto want = checksums(good_);
  ASSERT_FALSE(want.empty());
  std::string current;
  for (const auto& e : fs::directory_iterator(good_ + logs)) {
    const std::string n = e.path().filename().string();
    if (n.size() == 15 && n.rfind("E00", 0) == 0 && n > current) current = n;
  }
  ASSERT_FALSE(current.empty());
  struct Damage {
    const char* what;
    std::function<void(const std::string&)> apply;
  };
  const std::vector<Damage> damages = {
      {"checkpoint file missing", [&](const std::string& o) { fs::remove(o + logs + "E00.chk"); }},
      {"checkpoint file garbage", [&](const std::string& o) { Overwrite(o + logs + "E00.chk", 0, 64, 5); }},
      {"current log generation missing", [&](const std::string& o) { fs::remove(o + logs + current); }},
      {"checkpointed log records scribbled over",
       [&](const std::string& o) { Overwrite(o + logs + current, 0, 4096, 6); }},
  };
  int repaired = 0;
  for (const auto& d : damages) {
    SCOPED_TRACE(d.what);
    const std::string o = Copy(std::string("repair-") + std::to_string(repaired));
    d.apply(o);
    EXPECT_EQ(checksums(o), want);
    auto v = RunCommand(Mbxmove() + " verify --org " + o);
    EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
    // And the store takes writes again: a move out and back.
    RunCommand(Mbxmove() + " store create --org " + o + " --store MS2");
    auto m = RunCommand(Mbxmove() + " move --org " + o + " --from MS1 --to MS2");
    EXPECT_EQ(m.exit_code, 0) << m.err;
    auto back = RunCommand(Mbxmove() + " move --org " + o + " --from MS2 --to MS1");
    EXPECT_EQ(back.exit_code, 0) << back.err;
    EXPECT_EQ(checksums(o), want);
    ++repaired;
  }
  testing::ReportFigure("repairable log damage: " + std::to_string(repaired) +
                        " cases repaired with every mailbox unchanged");
}

// Bad command lines: usage errors exit 2 with one clear line and create
// nothing.
TEST_F(BadInputTest, BadCommandLines) {
  const std::string org = good_;
  const std::string fresh = tmp_ / "nothing-here";
  const std::vector<std::string> lines = {
      "",
      "frobnicate",
      "gen --org " + fresh,
      "gen --org " + fresh + " --store S --preset enormous",
      "gen --org " + fresh + " --store S --corrupt-rate 2",
      "gen --org " + fresh + " --store S --size lots",
      "gen --org " + fresh + " --store 'bad/name'",
      "move --org " + org + " --to MS1 --concurrency 0",
      "move --org " + org + " --to MS1 --concurrency many",
      "move --org " + org + " --to MS1 --retries -1",
      "move --org " + org + " --to MS1 --fault-rate 1.5",
      "move --org " + org + " --to MS1 --order random",
      "move --org " + org + " --to MS1 --sync sometimes",
      "move --org " + org + " --from MS1",
      "move --org " + org + " --from MS1 --to MS1 --report " + fresh + "/sub/report.json",
      "logs --org " + org + " --store MS1 --set-mode sometimes",
      "logs --org " + org + " --store MS1 --set-quota -5",
      "bench --concurrency 1,x --out " + fresh,
      "bench --repeat 0 --out " + fresh,
      "import --org " + org + " --store MS1 --user u",
      "import --org " + org + " --store MS1 --maildir " + fresh + " --mbox " + fresh + " --user u",
      "import --org " + org + " --store MS1 --mbox " + fresh + " --user u --mbox-format mboxq",
      "export --org " + org + " --maildir " + fresh,
      "export --org " + org + " --all --mailbox user0001 --maildir " + fresh,
      "export --org " + org + " --all --threads -1 --maildir " + fresh,
      "import --org " + org + " --store MS1 --mbox " + fresh + " --user u --threads -2",
      "stat --org",
  };
  const auto before = Snapshot(org);
  int refused = 0;
  for (const auto& l : lines) {
    auto r = RunCommand(Mbxmove() + " " + l);
    EXPECT_EQ(r.exit_code, 2) << l << "\n" << r.err;
    EXPECT_NE(r.err.find("mbxmove: error: "), std::string::npos) << l << ": " << r.err;
    EXPECT_FALSE(fs::exists(fresh)) << l << " created " << fresh;
    refused += r.exit_code == 2;
  }
  EXPECT_TRUE(Snapshot(org) == before);
  testing::ReportFigure("bad command lines tried: " + std::to_string(lines.size()) + ", refused with exit 2: " +
                        std::to_string(refused));
}

}  // namespace
}  // namespace mbx
