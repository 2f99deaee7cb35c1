// The mbxmove program end to end: bad input gives a clear error, a non-zero
// exit and changes nothing; gen/stat/verify/logs/backup/restore work.
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/test_util.h"

namespace mbx {
namespace {

using json = nlohmann::json;
using testing::Mbxmove;
using testing::RunCommand;
using testing::RunJson;
using testing::TempDir;
namespace fs = std::filesystem;


std::map<std::string, std::string> Checksums(const std::string& org) {
  json j = RunJson("stat --org " + org + " --json");
  std::map<std::string, std::string> m;
  for (const auto& mb : j["mailboxes"]) m[mb["mailbox"].get<std::string>()] = mb["checksum"].get<std::string>();
  return m;
}

std::vector<std::string> Listing(const std::string& dir) {
  std::vector<std::string> v;
  for (const auto& e : fs::recursive_directory_iterator(dir)) v.push_back(e.path().string());
  std::sort(v.begin(), v.end());
  return v;
}

TEST(CliTest, UsageErrorsExitTwoWithAClearLine) {
  TempDir t;
  auto none = RunCommand(Mbxmove());
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("error"), std::string::npos);
  auto bogus = RunCommand(Mbxmove() + " gen --org " + t / "o" + " --store S --bogus");
  EXPECT_EQ(bogus.exit_code, 2);
  EXPECT_NE(bogus.err.find("--bogus"), std::string::npos) << bogus.err;
  auto preset = RunCommand(Mbxmove() + " gen --org " + t / "o" + " --store S --preset enormous");
  EXPECT_EQ(preset.exit_code, 2);
  EXPECT_NE(preset.err.find("enormous"), std::string::npos) << preset.err;
  auto rate = RunCommand(Mbxmove() + " gen --org " + t / "o" + " --store S --corrupt-rate 2");
  EXPECT_EQ(rate.exit_code, 2);
  auto sizebad = RunCommand(Mbxmove() + " gen --org " + t / "o" + " --store S --size 12parsecs");
  EXPECT_EQ(sizebad.exit_code, 2);
  auto name = RunCommand(Mbxmove() + " store create --org " + t / "o" + " --store ../evil");
  EXPECT_EQ(name.exit_code, 2);
  // None of these created anything.
  EXPECT_FALSE(fs::exists(t / "o"));
  auto help = RunCommand(Mbxmove() + " gen --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--corrupt-rate"), std::string::npos);
}

// A mistyped command is named as unknown, with the nearest command when one
// is close, and exits 2 - also when --help follows it (CLI11 alone would say
// "A subcommand is required", or print the main help and exit 0).
TEST(CliTest, UnknownCommandsSayWhichAndSuggestTheNearest) {
  struct Case {
    std::string args, unknown, suggestion;  // suggestion "": none is close; "*": not checked
  };
  const std::vector<Case> cases = {
      {"verfiy --org x", "verfiy", "verify"},  // two letters swapped
      {"improt --help", "improt", "import"},   // --help after it
      {"--help stats", "stats", "stat"},       // --help before it
      {"mvoe --org x --to MS2", "mvoe", "move"},
      {"store craete --org x --store S", "store craete", "store create"},  // under a command group
      {"sevre", "sevre", "*"},  // the example (no 'serve' command yet)
      {"sevre --help", "sevre", "*"},
      {"xyzzy", "xyzzy", ""},  // nothing close
      {"frobnicate --help", "frobnicate", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    auto r = RunCommand(Mbxmove() + " " + c.args);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.out, "") << "printed help or output for an unknown command";
    EXPECT_NE(r.err.find("mbxmove: error: unknown command '" + c.unknown + "'\n"), std::string::npos) << r.err;
    if (c.suggestion.empty()) {
      EXPECT_EQ(r.err.find("did you mean"), std::string::npos) << r.err;
    } else if (c.suggestion != "*") {
      EXPECT_NE(r.err.find("did you mean '" + c.suggestion + "'?"), std::string::npos) << r.err;
    }
    EXPECT_EQ(r.err.find("A subcommand is required"), std::string::npos) << r.err;
  }
  // Known commands are untouched: help still exits 0, a missing one still says so.
  auto help = RunCommand(Mbxmove() + " verify --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--org"), std::string::npos);
  auto group = RunCommand(Mbxmove() + " store --help");
  EXPECT_EQ(group.exit_code, 0);
  EXPECT_NE(group.out.find("create"), std::string::npos);
  auto none = RunCommand(Mbxmove() + " store");
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_EQ(none.err.find("unknown command"), std::string::npos) << none.err;
  // A value that looks like a command word is an option's value, not a command.
  TempDir t;
  auto value = RunCommand(Mbxmove() + " stat --org " + t / "sevre");
  EXPECT_EQ(value.exit_code, 1);
  EXPECT_EQ(value.err.find("unknown command"), std::string::npos) << value.err;
}

TEST(CliTest, NotAnOrganisationOrMissingStoreChangesNothing) {
  TempDir t;
  fs::create_directories(t / "plain");
  { FILE* f = std::fopen((t / "plain/file.txt").c_str(), "w"); std::fputs("keep", f); std::fclose(f); }
  auto before = Listing(t / "plain");
  for (const std::string cmd : {"stat", "verify", "store list"}) {
    auto r = RunCommand(Mbxmove() + " " + cmd + " --org " + t / "plain");
    EXPECT_EQ(r.exit_code, 1) << cmd;
    EXPECT_NE(r.err.find("not an mbxmove organisation"), std::string::npos) << r.err;
  }
  auto gen = RunCommand(Mbxmove() + " gen --org " + t / "plain" + " --store S --preset tiny");
  EXPECT_NE(gen.exit_code, 0);
  EXPECT_NE(gen.err.find("not empty"), std::string::npos) << gen.err;
  EXPECT_EQ(Listing(t / "plain"), before);
  auto missing = RunCommand(Mbxmove() + " stat --org " + t / "nowhere");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_FALSE(fs::exists(t / "nowhere"));

  // A real organisation, asked about a store it does not have.
  ASSERT_EQ(RunCommand(Mbxmove() + " store create --org " + t / "org" + " --store MS1").exit_code, 0);
  auto org_before = Listing(t / "org");
  auto r = RunCommand(Mbxmove() + " stat --org " + t / "org" + " --store MS9");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("MS9"), std::string::npos);
  auto l = RunCommand(Mbxmove() + " logs --org " + t / "org" + " --store MS9");
  EXPECT_EQ(l.exit_code, 1);
  EXPECT_NE(l.err.find("not registered"), std::string::npos) << l.err;
  EXPECT_EQ(Listing(t / "org"), org_before);
}

TEST(CliTest, GenStatVerifyAndLmdbsOwnTool) {
  TempDir t;
  const std::string org = t / "org";
  json g = RunJson("gen --org " + org + " --store MS1 --preset tiny --seed 7 --json");
  EXPECT_EQ(g["mailboxes"].get<int>(), 12);
  EXPECT_GT(g["items"].get<int>(), 100);
  EXPECT_GT(g["bytes"].get<int64_t>(), 2 << 20);
  EXPECT_EQ(g["corrupted_items"].get<int>(), 0);

  json s = RunJson("stat --org " + org + " --json");
  ASSERT_EQ(s["mailboxes"].size(), 12u);
  EXPECT_EQ(s["totals"]["items"], g["items"]);
  for (const auto& mb : s["mailboxes"]) {
    EXPECT_EQ(mb["state"], "active");
    EXPECT_EQ(mb["checksum"].get<std::string>().size(), 16u);
  }
  json v = RunJson("verify --org " + org + " --json");
  EXPECT_TRUE(v["clean"].get<bool>());
  EXPECT_EQ(v["users"].get<int>(), 12);

  // Users point at the store's distinguished name.
  json stores = RunJson("store list --org " + org + " --json");
  ASSERT_EQ(stores["stores"].size(), 1u);
  EXPECT_NE(stores["stores"][0]["dn"].get<std::string>().find("CN=MS1,CN=First Storage Group"), std::string::npos);

  // A second gen of the same users into the same organisation is refused.
  auto again = RunCommand(Mbxmove() + " gen --org " + org + " --store MS2 --preset tiny --seed 7");
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("already exists"), std::string::npos) << again.err;

  // LMDB's own tool reads the store.
  auto m = RunCommand("mdb_stat -a " + org + "/stores/MS1");
  EXPECT_EQ(m.exit_code, 0) << m.err;
  EXPECT_NE(m.out.find("Status of items"), std::string::npos);
}

TEST(CliTest, SameSeedSameChecksumsWhateverTheThreadCount) {
  TempDir t;
  RunJson("gen --org " + t / "a" + " --store X --preset tiny --seed 3 --threads 1 --json");
  RunJson("gen --org " + t / "b" + " --store Y --preset tiny --seed 3 --threads 2 --zstd-level 9 --json");
  RunJson("gen --org " + t / "c" + " --store X --preset tiny --seed 4 --json");
  auto a = Checksums(t / "a"), b = Checksums(t / "b"), c = Checksums(t / "c");
  EXPECT_EQ(a.size(), 12u);
  EXPECT_EQ(a, b);  // other store, other compression level, other thread count
  EXPECT_NE(a, c);
}

TEST(CliTest, CorruptRateIsReportedExactlyAndVerifyListsThem) {
  TempDir t;
  const std::string org = t / "org";
  json g = RunJson("gen --org " + org + " --store MS1 --preset tiny --corrupt-rate 0.05 --json");
  const int n = g["corrupted_items"].get<int>();
  EXPECT_GT(n, 0);
  EXPECT_EQ(g["corrupted"].size(), size_t(n));
  json v = RunJson("verify --org " + org + " --json");
  EXPECT_TRUE(v["clean"].get<bool>());  // corrupt items are listed, not fatal
  ASSERT_EQ(v["corrupt_items"].size(), size_t(n));
  std::set<std::pair<std::string, int64_t>> want, got;
  for (const auto& c : g["corrupted"]) {
    want.insert({c["mailbox"].get<std::string>(), c["item_id"].get<int64_t>()});
  }
  for (const auto& c : v["corrupt_items"]) {
    got.insert({c["mailbox"].get<std::string>(), c["item_id"].get<int64_t>()});
  }
  EXPECT_EQ(want, got);
  json s = RunJson("stat --org " + org + " --json");
  EXPECT_EQ(s["totals"]["corrupt_items"].get<int>(), n);
}

TEST(CliTest, LogsBackupAndRestoreFromTheCommandLine) {
  TempDir t;
  const std::string org = t / "org";
  ASSERT_EQ(RunCommand(Mbxmove() + " store create --org " + org + " --store MS1 --log-file-size 64K").exit_code, 0);
  json l = RunJson("logs --org " + org + " --store MS1 --json");
  EXPECT_EQ(l["mode"], "backup-flush");
  EXPECT_EQ(l["log_file_bytes"].get<int>(), 65536);
  // Without the flag a store gets 4 MiB log files (a creation and a full
  // file's sync per 4 MiB of log, not per MiB), and a gen that creates its
  // store likewise.
  ASSERT_EQ(RunCommand(Mbxmove() + " store create --org " + org + " --store MS2").exit_code, 0);
  EXPECT_EQ(RunJson("logs --org " + org + " --store MS2 --json")["log_file_bytes"].get<int>(), 4 << 20);
  RunJson("gen --org " + t / "org2" + " --store G1 --preset tiny --json");
  EXPECT_EQ(RunJson("logs --org " + t / "org2" + " --store G1 --json")["log_file_bytes"].get<int>(), 4 << 20);
  RunJson("gen --org " + org + " --store MS1 --preset tiny --json");
  l = RunJson("logs --org " + org + " --store MS1 --json");
  EXPECT_GT(l["files"].get<int>(), 10);  // backup-flush keeps them
  const auto before = Checksums(org);
  json b = RunJson("backup --org " + org + " --store MS1 --out " + t / "bk" + " --json");
  EXPECT_GT(b["log_files_truncated"].get<int>(), 10);
  fs::remove(org + "/stores/MS1/data.mdb");
  auto broken = RunCommand(Mbxmove() + " stat --org " + org);
  EXPECT_NE(broken.exit_code, 0);
  json r = RunJson("restore --org " + org + " --store MS1 --from " + t / "bk" + " --json");
  EXPECT_TRUE(r["rolled_forward"].get<bool>());
  EXPECT_EQ(Checksums(org), before);
  json c = RunJson("logs --org " + org + " --store MS1 --set-mode circular --json");
  EXPECT_EQ(c["mode"], "circular");
  auto bad = RunCommand(Mbxmove() + " logs --org " + org + " --store MS1 --set-mode sometimes");
  EXPECT_EQ(bad.exit_code, 2);
}

TEST(CliTest, BenchRefusesAnOutputFolderHoldingOtherFiles) {
  TempDir t;
  fs::create_directories(t / "mine");
  { FILE* f = std::fopen((t / "mine/thesis.txt").c_str(), "w"); std::fputs("keep", f); std::fclose(f); }
  for (const std::string args : {" bench --soak 0.01 --out ", " bench --preset tiny --repeat 1 --concurrency 1 --out "}) {
    auto r = RunCommand(Mbxmove() + args + t / "mine");
    EXPECT_EQ(r.exit_code, 2) << args << r.err;
    EXPECT_NE(r.err.find("did not write"), std::string::npos) << r.err;
    EXPECT_TRUE(fs::exists(t / "mine/thesis.txt"));
  }
}

// `bench --org` sweeps an organisation of the user's own: the table names
// its source store's mailboxes, items and logical size (it printed "?"), and
// the organisation itself is left as it was.
TEST(CliTest, BenchOnAGivenOrganisationReportsItsFigures) {
  TempDir t;
  const std::string org = t / "org";
  ASSERT_EQ(RunCommand(Mbxmove() + " gen --org " + org + " --store MS1 --preset tiny --seed 2").exit_code, 0);
  json st = RunJson("stat --org " + org + " --json");
  const json& ms1 = st["stores"][0];
  auto r = RunCommand(Mbxmove() + " bench --org " + org + " --repeat 1 --concurrency 1 --out " + t / "b");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string want = "dataset (given organisation): " + ms1["mailboxes"].dump() + " mailboxes, " +
                           ms1["items"].dump() + " items";
  EXPECT_NE(r.out.find(want), std::string::npos) << r.out;
  std::ifstream in(t / "b/results.json");
  json j = json::parse(in);
  const json& d = j["datasets"][0]["dataset"];
  EXPECT_EQ(d["store"], "MS1");
  EXPECT_EQ(d["bytes"], ms1["logical_bytes"]);
  EXPECT_EQ(d["items"], ms1["items"]);
  // Each level is compared with the raw copy timed beside its own runs.
  for (const json& l : j["datasets"][0]["levels"]) {
    ASSERT_GT(l["raw_copy_mib_per_s"].get<double>(), 0.0);
    EXPECT_NEAR(l["ratio_to_raw_copy"].get<double>(),
                l["mib_per_s"].get<double>() / l["raw_copy_mib_per_s"].get<double>(), 1e-9);
  }
  EXPECT_NE(r.out.find("raw MiB/s"), std::string::npos) << r.out;
  // The given organisation is not moved: every mailbox still in MS1.
  json after = RunJson("stat --org " + org + " --json");
  EXPECT_EQ(after["stores"][0]["mailboxes"], ms1["mailboxes"]);
  // A store it does not have is refused.
  auto bad = RunCommand(Mbxmove() + " bench --org " + org + " --from NOPE --repeat 1 --concurrency 1 --out " + t / "c");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("NOPE"), std::string::npos) << bad.err;
}

TEST(CliTest, ShortSoakKeepsEveryMailboxWhole) {
  TempDir t;
  // A few seconds of moves back and forth with faults and deliveries.
  json j = RunJson("bench --soak 0.03 --preset tiny --out " + t / "soak" + " --json");
  EXPECT_TRUE(j["passed"].get<bool>()) << j.dump();
  EXPECT_GE(j["rounds"].get<int>(), 1);
  EXPECT_GT(j["mailbox_moves"].get<int>(), 0);
  EXPECT_EQ(j["failed_moves"].get<int>(), 0);
  EXPECT_EQ(j["mailboxes_checked"].get<int>(), 12);
  EXPECT_TRUE(j["problems"].empty());
}

}  // namespace
}  // namespace mbx
