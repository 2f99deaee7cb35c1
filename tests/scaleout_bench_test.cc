// `mbxmove bench --scale-out` end to end on the tiny preset: a private
// slapd, three servers behind 2 ms links, one and two movers draining the
// queue, the kill run and the directory capacity; and its bad flags.
#include <filesystem>

#include "tests/report_figure.h"
#include "tests/test_util.h"

namespace mbx {
namespace {

using json = nlohmann::json;
using testing::Mbxmove;
using testing::RunCommand;
using testing::TempDir;
namespace fs = std::filesystem;

TEST(ScaleOutBenchTest, EveryRunDrainsEveryRequestAndTheKillRunKeepsTheInvariant) {
  TempDir t;
  const std::string out = t / "bench";
  auto r = RunCommand(Mbxmove() + " bench --scale-out --preset tiny --movers 1,2 --servers 3 --rtt 2 --lease 3 "
                                  "--capacity-seconds 0.5 --out " + out + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");  // --json: no progress lines
  const json j = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["benchmark"], "scale-out");
  EXPECT_EQ(j["servers"], 3);
  EXPECT_EQ(j["rtt_ms"], 2);
  EXPECT_EQ(j["concurrency"], 4);
  EXPECT_FALSE(j["machine"]["git_commit"].get<std::string>().empty());
  const json& ds = j["dataset"];
  EXPECT_EQ(ds["mailboxes_moved"], 12);
  EXPECT_EQ(ds["target_stores"], json({"TARGET2", "TARGET3"}));
  const uint64_t bytes = ds["stored_bytes_moved"].get<uint64_t>();
  EXPECT_GT(bytes, 0u);

  ASSERT_EQ(j["rows"].size(), 2u);
  int movers = 0;
  for (const auto& row : j["rows"]) {
    SCOPED_TRACE(row.dump());
    EXPECT_EQ(row["movers"], ++movers);
    EXPECT_EQ(row["mailboxes"], 12);
    EXPECT_EQ(row["bytes"].get<uint64_t>(), bytes);  // every stored byte of every mailbox, once
    EXPECT_EQ(row["items"], ds["items_moved"]);
    EXPECT_GT(row["mib_per_s"].get<double>(), 0);
    EXPECT_GT(row["mailboxes_per_s"].get<double>(), 0);
    EXPECT_GT(row["seconds"].get<double>(), 0);
    EXPECT_GT(row["directory_operations_per_mailbox"].get<double>(),
              row["directory_writes_per_mailbox"].get<double>());
    EXPECT_GT(row["directory_writes_per_mailbox"].get<double>(), 0);
    EXPECT_GE(row["claim_conflicts"].get<double>(), 0);
    EXPECT_EQ(row["taken_over"], 0);
    ASSERT_EQ(row["per_mover"].size(), size_t(movers));
    uint64_t done = 0;
    for (const auto& m : row["per_mover"]) done += m["done"].get<uint64_t>();
    EXPECT_EQ(done, 12u);
  }
  EXPECT_DOUBLE_EQ(j["rows"][0]["x_one_mover"].get<double>(), 1.0);
  EXPECT_GT(j["rows"][1]["x_one_mover"].get<double>(), 0);

  const json& k = j["kill_run"];
  SCOPED_TRACE(k.dump());
  EXPECT_EQ(k["completed"], true);
  EXPECT_EQ(k["invariant_held"], true);
  EXPECT_EQ(k["movers"], 2);
  EXPECT_EQ(k["requests"], 12);
  EXPECT_EQ(k["mailboxes_checked"], 12);
  EXPECT_GE(k["killed_when_done"].get<int>(), 4);  // a third of 12
  EXPECT_LT(k["killed_when_done"].get<int>(), 12);
  EXPECT_GE(k["held_when_killed"].get<int>(), 1);
  EXPECT_GE(k["taken_over"].get<int>(), k["held_when_killed"].get<int>());

  const json& c = j["directory_capacity"];
  ASSERT_EQ(c["levels"].size(), 3u);
  const std::vector<int> threads = {1, 4, 16};
  for (size_t i = 0; i < threads.size(); ++i) {
    const json& l = c["levels"][i];
    EXPECT_EQ(l["threads"], threads[i]);
    EXPECT_GT(l["writes"].get<uint64_t>(), 0u);
    EXPECT_GT(l["writes_per_s"].get<double>(), 0);
    EXPECT_EQ(l["conflicts"], 0);
    EXPECT_GT(l["renewal_p50_ms"].get<double>(), 0);
  }
  EXPECT_GT(c["best_writes_per_s"].get<double>(), 0);
  EXPECT_GT(c["queue_load_writes_per_s"].get<double>(), 0);

  for (const char* f : {"results.json", "results.csv"}) EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
  EXPECT_FALSE(fs::exists(out + "/scratch"));  // slapd, runs and logs cleaned up
  testing::ReportFigure("scale-out bench (tiny, RTT 2 ms): 1 mover " +
                        std::to_string(j["rows"][0]["mib_per_s"].get<double>()).substr(0, 5) + " MiB/s, 2 movers x" +
                        std::to_string(j["rows"][1]["x_one_mover"].get<double>()).substr(0, 4) + "; kill run: " +
                        k["taken_over"].dump() + " taken over, invariant held; slapd " +
                        std::to_string(int(c["best_writes_per_s"].get<double>())) + " lease writes/s at best");
}

TEST(ScaleOutBenchTest, BadFlagsAreRefusedBeforeAnythingStarts) {
  TempDir t;
  const std::string out = t / "bench";
  struct Case {
    std::string flags, message;
  };
  const Case cases[] = {
      {"--movers 0", "--movers takes numbers 1..64"},
      {"--movers 1,x", "--movers takes numbers 1..64"},
      {"--movers 2,2", "--movers lists 2 twice"},
      {"--servers 1", "--servers must be 2..16"},
      {"--rtt 10,20", "--rtt takes one value with --scale-out"},
      {"--concurrency 0", "--concurrency takes numbers 1..256"},
      {"--lease 0.1", "--lease must be 0.3..3600 seconds"},
      {"--capacity-threads 0", "--capacity-threads takes numbers 1..256"},
      {"--capacity-seconds 0", "--capacity-seconds must be 0.1..600"},
      {"--remote", "--scale-out takes --preset or --org, not --remote"},
      {"--from MS1", "--from goes with --org"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.flags);
    auto r = RunCommand(Mbxmove() + " bench --scale-out --preset tiny --out " + out + " " + c.flags);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("mbxmove: error: " + c.message), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(out)) << "nothing is written for bad flags";
  }
  // Not an organisation.
  auto r = RunCommand(Mbxmove() + " bench --scale-out --org " + t.path() + " --out " + out);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("is not an mbxmove organisation"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace mbx
