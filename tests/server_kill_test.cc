// A store server killed mid-move: `mbxmove serve` holds the target store
// (SERVER2); a `mbxmove move` child moves every mailbox to it; the server is
// SIGKILLed at a random moment, restarted, and `mbxmove recover` runs. The
// move invariant must then hold: every mailbox active in exactly the store
// its homeMDB names, with the content it had before (engine/org_check.h).
//
// MBX_SERVER_KILL_RUNS=N runs N kills (default 4, bounded in time: every
// child is waited for at most 60 s, then killed).
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <random>
#include <thread>

#include "bench/child_process.h"
#include "engine/org_check.h"
#include "tests/report_figure.h"
#include "tests/test_util.h"

extern "C" char** environ;

namespace mbx {
namespace {

using testing::Mbxmove;
using testing::RunCommand;
using testing::TempDir;

engine::OrgSurvey Survey(const std::string& org_dir) {
  auto org = Organization::Open(org_dir);
  if (!org.ok()) {
    ADD_FAILURE() << org.status().ToString();
    return {};
  }
  auto s = engine::SurveyOrganization(**org);
  if (!s.ok()) {
    ADD_FAILURE() << s.status().ToString();
    return {};
  }
  return *s;
}

std::unique_ptr<bench::ServerChild> StartServer(const std::string& org, const std::string& log) {
  auto s = bench::ServerChild::Start({Mbxmove(), "serve", "--org", org, "--server", "SERVER2"}, log,
                                     std::chrono::seconds(30));
  if (!s.ok()) {
    ADD_FAILURE() << s.status().ToString();
    return nullptr;
  }
  EXPECT_EQ(RunCommand(Mbxmove() + " server add --org " + org + " --server SERVER2 --address 127.0.0.1:" +
                       std::to_string((*s)->port()))
                .exit_code,
            0);
  return std::move(*s);
}

TEST(ServerKillTest, AServerKilledMidMoveThenRecoverKeepsTheInvariant) {
  const char* env = std::getenv("MBX_SERVER_KILL_RUNS");
  const int runs = env ? std::max(1, std::atoi(env)) : 4;
  TempDir t;
  const std::string tmpl = t / "template";
  ASSERT_EQ(RunCommand(Mbxmove() + " gen --org " + tmpl + " --store MS1 --preset tiny --seed 9").exit_code, 0);
  ASSERT_EQ(RunCommand(Mbxmove() + " store create --org " + tmpl + " --store MS2 --server SERVER2 --sync full")
                .exit_code,
            0);
  ASSERT_EQ(RunCommand(Mbxmove() + " certs create --out " + tmpl + "/certs --org-name Kill --servers SERVER2")
                .exit_code,
            0);
  const engine::OrgSurvey before = Survey(tmpl);
  ASSERT_TRUE(before.clean());
  std::mt19937 rng(2026);
  int killed_mid_move = 0;
  for (int run = 0; run < runs; ++run) {
    SCOPED_TRACE("run " + std::to_string(run));
    const std::string org = t / ("run" + std::to_string(run));
    std::filesystem::copy(tmpl, org, std::filesystem::copy_options::recursive);
    auto server = StartServer(org, org + "/serve.log");
    ASSERT_NE(server, nullptr);
    // The move, in the background.
    const std::string line = "exec " + Mbxmove() + " move --org " + org +
                             " --from MS1 --to MS2 --concurrency 2 >/dev/null 2>&1";
    const char* argv[] = {"/bin/sh", "-c", line.c_str(), nullptr};
    pid_t pid;
    ASSERT_EQ(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(10, 350)(rng)));
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == 0) ++killed_mid_move;
    server->Kill();
    // The mover finds the server gone: it fails its calls and exits.
    if (!testing::WaitFor([&] { return waitpid(pid, &status, WNOHANG) != 0; })) {
      ADD_FAILURE() << "the mover did not end within 60 s of the server's death";
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
    }
    // Restart the server (the store replays its log) and recover.
    server = StartServer(org, org + "/serve2.log");
    ASSERT_NE(server, nullptr);
    auto rec = RunCommand(Mbxmove() + " recover --org " + org);
    EXPECT_EQ(rec.exit_code, 0) << rec.err;
    EXPECT_EQ(server->Stop(), 0);  // SIGTERM: drains and closes cleanly
    // Without the server, the organisation is surveyed locally.
    ASSERT_EQ(RunCommand(Mbxmove() + " server add --org " + org + " --server SERVER2 --address ''").exit_code, 0);
    const engine::OrgSurvey after = Survey(org);
    EXPECT_EQ(engine::MoveInvariantViolations(before, after), std::vector<std::string>{});
  }
  testing::ReportFigure("server kills mid-move: " + std::to_string(runs) + " runs, " +
                        std::to_string(killed_mid_move) + " while the move ran; invariant held after recover");
}

// While a server holds a store, a local command on it says who holds it
// instead of waiting; SIGTERM then closes the store cleanly, and the same
// command works.
TEST(ServerKillTest, ALocalCommandOnAServedStoreSaysWhoServesIt) {
  TempDir t;
  const std::string org = t / "org";
  ASSERT_EQ(RunCommand(Mbxmove() + " gen --org " + org + " --store MS1 --preset tiny --seed 2").exit_code, 0);
  ASSERT_EQ(RunCommand(Mbxmove() + " store create --org " + org + " --store MS2 --server SERVER2").exit_code, 0);
  ASSERT_EQ(RunCommand(Mbxmove() + " certs create --out " + org + "/certs --org-name T --servers SERVER2").exit_code,
            0);
  auto server = StartServer(org, org + "/serve.log");
  ASSERT_NE(server, nullptr);
  auto r = RunCommand(Mbxmove() + " logs --org " + org + " --store MS2");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("served by mbxmove serve, pid " + std::to_string(server->pid())), std::string::npos) << r.err;
  // The mover reaches it through the server: every mailbox moves.
  auto mv = RunCommand(Mbxmove() + " move --org " + org + " --from MS1 --to MS2 --concurrency 4");
  EXPECT_EQ(mv.exit_code, 0) << mv.err;
  EXPECT_EQ(server->Stop(), 0);
  EXPECT_EQ(RunCommand(Mbxmove() + " logs --org " + org + " --store MS2").exit_code, 0);
  ASSERT_EQ(RunCommand(Mbxmove() + " server add --org " + org + " --server SERVER2 --address ''").exit_code, 0);
  auto v = RunCommand(Mbxmove() + " verify --org " + org);
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
}

}  // namespace
}  // namespace mbx
