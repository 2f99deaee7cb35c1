// `mbxmove bench --online` on the tiny preset: every level carries the online
// run's throughput, its ratio to the offline runs, the lock windows and what
// the client load did, in results.json and the table; bad combinations of
// flags are refused before anything runs.
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/test_util.h"

namespace mbx {
namespace {

using json = nlohmann::json;
using testing::Mbxmove;
using testing::RunCommand;
using testing::TempDir;

TEST(LockWindowBenchTest, EveryLevelReportsTheOnlineRunBesideTheOfflineOne) {
  TempDir t;
  const std::string out = t / "bench";
  auto r = RunCommand(Mbxmove() + " bench --preset tiny --concurrency 1,3 --repeat 1 --online --load 150 " +
                      "--load-mix deliver:50,flag:30,move:10,delete:10 --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("online (move --online under client load)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("lock p95 ms"), std::string::npos);
  std::ifstream in(out + "/results.json");
  json j = json::parse(in);
  EXPECT_TRUE(j["settings"]["online"].get<bool>());
  EXPECT_EQ(j["settings"]["load"].get<double>(), 150);
  const json& levels = j["datasets"][0]["levels"];
  ASSERT_EQ(levels.size(), 2u);
  for (const auto& l : levels) {
    SCOPED_TRACE(l["concurrency"].dump());
    ASSERT_TRUE(l.contains("online")) << l.dump();
    const json& on = l["online"];
    EXPECT_GT(on["mib_per_s"].get<double>(), 0);
    EXPECT_GT(on["ratio_to_offline"].get<double>(), 0);
    EXPECT_GT(on["lock_p50_ms"].get<double>(), 0);
    EXPECT_LE(on["lock_p50_ms"].get<double>(), on["lock_p95_ms"].get<double>());
    EXPECT_LE(on["lock_p95_ms"].get<double>(), on["lock_max_ms"].get<double>());
    EXPECT_GT(on["largest_mailbox_lock_ms"].get<double>(), 0);
    EXPECT_LE(on["largest_mailbox_lock_ms"].get<double>(), on["lock_max_ms"].get<double>());
    EXPECT_EQ(on["mailboxes_failed"].get<int>(), 0);
    EXPECT_EQ(on["load_failed"].get<int>(), 0);
    EXPECT_GT(on["load_done"].get<int>(), 0);
    // The offline run of the same level is there too.
    EXPECT_GT(l["mib_per_s"].get<double>(), 0);
  }
}

TEST(LockWindowBenchTest, BadFlagsAreRefusedBeforeAnythingRuns) {
  TempDir t;
  const std::string out = t / "bench";
  for (const std::string args : {" bench --preset tiny --load 100 --out ",
                                 " bench --preset tiny --online --load-mix fly:3 --out ",
                                 " bench --preset tiny --online --remote --out ",
                                 " bench --online --scale-out --preset tiny --out "}) {
    auto r = RunCommand(Mbxmove() + args + out);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.err;
    EXPECT_FALSE(testing::fs::exists(out + "/results.json")) << args;
  }
}

}  // namespace
}  // namespace mbx
