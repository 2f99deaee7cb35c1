// The shared move queue (engine/queue_mover.h) through the program: movers
// as separate processes, stores behind their own `mbxmove serve`, the
// directory shared (embedded: one LMDB environment opened by every process
// of this host; LDAP: a private slapd).
//
//  - two and four movers on one queue: every request done once, the
//    per-store limit never exceeded (sampled from the move records);
//  - movers killed at random moments (a bounded campaign): their leases
//    lapse, the others take their requests over, the invariant holds;
//  - the directory gone for longer than the lease: the mover calls its
//    moves off and stops instead of going on without a lease; a mover
//    started once the directory is back finishes the queue;
//  - bad input: a request for a mailbox no user has, a damaged entry, a
//    mover name in use, a mailbox queued twice.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "bench/child_process.h"
#include "engine/org_check.h"
#include "engine/queue_mover.h"
#include "net/link_proxy.h"
#include "net/slapd.h"
#include "store/directory.h"
#include "store/ldap_directory.h"
#include "store/lmdb_env.h"
#include "store/organization.h"
#include "tests/report_figure.h"
#include "tests/test_util.h"

extern "C" char** environ;

namespace mbx {
namespace {

using nlohmann::json;
using testing::Mbxmove;
using testing::RunCommand;
using testing::TempDir;
namespace fs = std::filesystem;

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

using testing::Child;

class QueueTest : public ::testing::Test {
 protected:
  // The organisation every test starts from: the tiny preset's 12
  // mailboxes in MS1 (SERVER1), an empty MS2 (SERVER2), certificates.
  // `directory_flags` puts its directory in LDAP.
  void MakeOrg(const std::string& directory_flags = "") {
    org_ = t_ / "org";
    auto run = [](const std::string& args) {
      auto r = RunCommand(Mbxmove() + " " + args);
      ASSERT_EQ(r.exit_code, 0) << args << "\n" << r.err;
    };
    run("gen --org " + org_ + " --store MS1 --server SERVER1 --preset tiny --seed 9" + directory_flags);
    run("store create --org " + org_ + " --store MS2 --server SERVER2");
    run("certs create --out " + org_ + "/certs --org-name Queue --servers SERVER1,SERVER2");
    before_ = Survey();
  }

  engine::OrgSurvey Survey() {
    auto org = Organization::Open(org_);
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

  // Serves both stores; `via` maps a server to a link proxy in front of it.
  void StartServers() {
    for (const char* server : {"SERVER1", "SERVER2"}) {
      auto s = bench::ServerChild::Start({Mbxmove(), "serve", "--org", org_, "--server", server},
                                         org_ + "/serve-" + server + ".log", std::chrono::seconds(30));
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      int port = (*s)->port();
      if (std::string(server) == "SERVER2" && link_delay_ms_ > 0) {
        net::LinkOptions lo;
        lo.to = net::HostPort{"127.0.0.1", uint16_t(port)};
        lo.delay = std::chrono::milliseconds(link_delay_ms_);
        auto p = net::LinkProxy::Start(lo);
        ASSERT_TRUE(p.ok()) << p.status().ToString();
        port = (*p)->port();
        proxy_ = std::move(*p);
      }
      servers_.push_back(std::move(*s));
      auto r = RunCommand(Mbxmove() + " server add --org " + org_ + " --server " + server +
                          " --address 127.0.0.1:" + std::to_string(port));
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
  }
  // Stops the servers and makes the stores local again, for the survey.
  void StopServers() {
    for (auto& s : servers_) EXPECT_EQ(s->Stop(), 0);
    servers_.clear();
    proxy_.reset();
    for (const char* server : {"SERVER1", "SERVER2"}) {
      auto r = RunCommand(Mbxmove() + " server add --org " + org_ + " --server " + server + " --address ''");
      EXPECT_EQ(r.exit_code, 0) << r.err;
    }
  }

  void QueueAll() {
    auto r = RunCommand(Mbxmove() + " move --org " + org_ + " --from MS1 --to MS2 --queue --label t");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_NE(r.out.find("queued 12 of 12"), std::string::npos) << r.out;
  }

  Child Mover(const std::string& name, const std::string& flags) {
    const std::string stem = t_ / ("mover-" + name + "-" + std::to_string(++spawned_));
    Child c = Child::Spawn(Mbxmove() + " mover --org " + org_ + " --name " + name + " --poll 0.05 " + flags,
                           stem + ".out", stem + ".err");
    EXPECT_GT(c.pid, 0);
    return c;
  }

  json QueueJson(const std::string& what = "list") {
    return testing::RunJson("queue " + what + " --org " + org_ + " --json");
  }

  // After the movers: every request done, nothing active, every mailbox in
  // MS2 with its content (the invariant), no move record left.
  void ExpectAllMoved() {
    json q = QueueJson();
    EXPECT_EQ(q["counts"]["done"], 12) << q.dump(1);
    for (const auto& e : q["entries"]) EXPECT_EQ(e["state"], "done") << e.dump();
    StopServers();
    const engine::OrgSurvey after = Survey();
    EXPECT_EQ(engine::MoveInvariantViolations(before_, after), std::vector<std::string>{});
    for (const auto& u : after.users) EXPECT_NE(u.home_mdb.find("CN=MS2,"), std::string::npos) << u.name;
    auto org = Organization::Open(org_);
    ASSERT_TRUE(org.ok());
    std::vector<MoveRecord> moves;
    ASSERT_TRUE((*org)->directory().ListMoves(&moves).ok());
    EXPECT_TRUE(moves.empty());
  }

  TempDir t_;
  std::string org_;
  engine::OrgSurvey before_;
  std::vector<std::unique_ptr<bench::ServerChild>> servers_;
  std::unique_ptr<net::LinkProxy> proxy_;
  int link_delay_ms_ = 0;
  int spawned_ = 0;
};

std::string MoversName(const ::testing::TestParamInfo<int>& p) { return std::to_string(p.param) + "movers"; }

// N movers drain one queue. Each mailbox is moved by exactly one of them
// (the movers' reports together hold one completed move per mailbox), and
// the moves into MS2 in flight at once, sampled from the move records every
// few milliseconds, never exceed --max-per-target-mdb.
class QueueMoversTest : public QueueTest, public ::testing::WithParamInterface<int> {};

TEST_P(QueueMoversTest, EveryRequestIsDoneOnceWithinThePerStoreLimit) {
  const int movers = GetParam();
  link_delay_ms_ = 2;  // moves overlap long enough for the sampler to see them
  MakeOrg();
  StartServers();
  QueueAll();
  std::atomic<bool> sampling{true};
  std::atomic<int> max_in_flight{0};
  std::atomic<int> samples{0};
  std::thread sampler([&] {
    auto dir = Directory::OpenLmdb(org_ + "/directory", false);
    ASSERT_TRUE(dir.ok()) << dir.status().ToString();
    while (sampling.load()) {
      std::vector<MoveRecord> moves;
      if ((*dir)->ListMoves(&moves).ok()) {
        int n = 0;
        for (const auto& m : moves) n += m.target == "MS2";
        max_in_flight = std::max(max_in_flight.load(), n);
        ++samples;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(3));
    }
  });
  std::vector<Child> children;
  for (int i = 0; i < movers; ++i) {
    children.push_back(
        Mover("m" + std::to_string(i), "--drain --concurrency 2 --lease 10 --max-per-target-mdb 2 --json"));
  }
  std::map<std::string, int> completed;  // user -> completed moves over all movers
  uint64_t done = 0, claimed = 0;
  for (auto& c : children) {
    EXPECT_EQ(c.Wait(std::chrono::seconds(180)), 0) << Slurp(c.err);
    json r = json::parse(Slurp(c.out), nullptr, false);
    ASSERT_FALSE(r.is_discarded()) << Slurp(c.out) << Slurp(c.err);
    done += r["done"].get<uint64_t>();
    claimed += r["claimed"].get<uint64_t>();
    for (const auto& m : r["mailboxes"]) {
      if (m["outcome"] != "failed") ++completed[m["user"].get<std::string>()];
    }
    EXPECT_EQ(r["lost"], 0);
    EXPECT_GT(r["directory_operations"].get<uint64_t>(), 0u);
  }
  sampling = false;
  sampler.join();
  EXPECT_EQ(done, 12u);
  EXPECT_EQ(claimed, 12u);
  EXPECT_EQ(completed.size(), 12u);
  for (const auto& [user, n] : completed) EXPECT_EQ(n, 1) << user << " was moved " << n << " times";
  EXPECT_LE(max_in_flight.load(), 2);
  EXPECT_GT(samples.load(), 0);
  ExpectAllMoved();
  testing::ReportFigure("queue: " + std::to_string(movers) + " movers, 12 requests done once each, at most " +
                        std::to_string(max_in_flight.load()) + " moves into MS2 at once (limit 2) in " +
                        std::to_string(samples.load()) + " samples");
}

INSTANTIATE_TEST_SUITE_P(Movers, QueueMoversTest, ::testing::Values(2, 4), MoversName);

// Movers killed at random moments: a killed mover's requests are taken
// over once its lease lapses, and the organisation ends with every mailbox
// moved once, its content intact.
TEST_F(QueueTest, MoversKilledAtRandomMomentsLeaveNothingLostOrDoubled) {
  const char* env = std::getenv("MBX_MOVER_KILL_RUNS");
  const int runs = env ? std::max(1, std::atoi(env)) : 3;
  link_delay_ms_ = 5;
  MakeOrg();
  const std::string tmpl = t_ / "template";
  fs::copy(org_, tmpl, fs::copy_options::recursive);
  const engine::OrgSurvey before = before_;
  const char* seed_env = std::getenv("MBX_CAMPAIGN_SEED");
  std::mt19937 rng(seed_env ? uint32_t(std::atoi(seed_env)) : 2027u);
  int killed_holding = 0, taken_over = 0;
  for (int run = 0; run < runs; ++run) {
    SCOPED_TRACE("run " + std::to_string(run));
    org_ = t_ / ("run" + std::to_string(run));
    fs::copy(tmpl, org_, fs::copy_options::recursive);
    before_ = before;
    StartServers();
    QueueAll();
    const std::string flags = "--concurrency 2 --lease 3 --max-per-target-mdb 0 --drain --json";
    Child a = Mover("a", flags), b = Mover("b", flags);
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(50, 600)(rng)));
    Child& victim = std::uniform_int_distribution<int>(0, 1)(rng) ? a : b;
    const std::string victim_name = &victim == &a ? "a" : "b";
    const bool was_running = victim.Running();
    victim.Kill();
    int held = 0;
    if (was_running) {
      json q = QueueJson();
      for (const auto& e : q["entries"]) held += e["state"] == "active" && e["owner"] == victim_name;
    }
    killed_holding += held;
    Child c = Mover("c", flags);
    Child& survivor = &victim == &a ? b : a;
    for (Child* m : {&survivor, &c}) {
      EXPECT_EQ(m->Wait(std::chrono::seconds(120)), 0) << Slurp(m->err);
      json r = json::parse(Slurp(m->out), nullptr, false);
      ASSERT_FALSE(r.is_discarded()) << Slurp(m->out);
      taken_over += r["taken_over"].get<int>();
    }
    ExpectAllMoved();
  }
  testing::ReportFigure("mover kills: " + std::to_string(runs) + " runs, " + std::to_string(killed_holding) +
                        " requests held by a killed mover, " + std::to_string(taken_over) +
                        " taken over; invariant held");
}

// The directory server killed for longer than the lease: the mover cannot
// renew, calls its moves off and stops (exit 1, saying why) instead of
// moving on without a lease. Once slapd is back, a new mover takes the
// requests over and the invariant holds.
TEST_F(QueueTest, AMoverThatCannotRenewItsLeaseStopsCleanly) {
  TempDir slapd_dir;
  auto slapd = Slapd::Start(slapd_dir / "slapd");
  ASSERT_TRUE(slapd.ok()) << slapd.status().ToString();
  Slapd& s = **slapd;
  // The largest mailbox (56 items, 800 KiB), in 4 KiB batches over a
  // 200 ms round trip: its copy lasts longer than the mover's 1 s lease.
  link_delay_ms_ = 100;
  MakeOrg(" --directory " + s.url() + "/ou=queue1," + std::string(Slapd::kSuffix) + " --bind-dn " +
          s.bind_dn() + " --password-file " + s.password_file());
  StartServers();
  {
    auto r = RunCommand(Mbxmove() + " move --org " + org_ + " --mailbox user0008 --to MS2 --queue");
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  Child m = Mover("solo", "--concurrency 1 --lease 1 --max-per-target-mdb 0 --drain --batch-bytes 4KiB");
  // Once its move is under way (the lock recorded), the directory goes away.
  {
    auto org = Organization::Open(org_);
    ASSERT_TRUE(org.ok()) << org.status().ToString();
    bool moving = false;
    testing::WaitFor([&] {
      std::vector<MoveRecord> moves;
      moving = (*org)->directory().ListMoves(&moves).ok() && !moves.empty();
      return moving || !m.Running();
    });
    ASSERT_TRUE(moving) << Slurp(m.err);
  }
  ASSERT_TRUE(s.Kill().ok());
  // It calls the move off and stops within a few leases, saying why.
  EXPECT_EQ(m.Wait(std::chrono::seconds(30)), 1) << Slurp(m.err);
  const std::string err = Slurp(m.err);
  EXPECT_NE(err.find("called off user0008"), std::string::npos) << err;
  EXPECT_NE(err.find("stopped: lost its name's lease"), std::string::npos) << err;
  // Back: a new mover takes the request over and moves the mailbox (what
  // the first left, its move record and partial copy, is rolled back by the
  // new mover's recovery at start, the lease having lapsed).
  ASSERT_TRUE(s.Restart().ok());
  Child again = Mover("again", "--concurrency 1 --lease 5 --drain --json");
  EXPECT_EQ(again.Wait(std::chrono::seconds(120)), 0) << Slurp(again.err);
  json r = json::parse(Slurp(again.out), nullptr, false);
  ASSERT_FALSE(r.is_discarded()) << Slurp(again.out);
  EXPECT_EQ(r["taken_over"], 1);
  EXPECT_EQ(r["done"], 1);
  StopServers();
  const engine::OrgSurvey after = Survey();
  EXPECT_EQ(engine::MoveInvariantViolations(before_, after), std::vector<std::string>{});
  for (const auto& u : after.users) {
    EXPECT_EQ(u.home_mdb.find("CN=MS2,") != std::string::npos, u.name == "user0008") << u.name;
  }
}

// SIGTERM while moves are in flight: they finish and the mover exits 0;
// twice: they are called off (rolled back) and handed back, queued for the
// next mover, which moves them.
TEST_F(QueueTest, SigtermFinishesTheMovesInFlightAndTwiceHandsThemBack) {
  link_delay_ms_ = 100;  // 4 KiB batches over a 200 ms round trip: moves last seconds
  MakeOrg();
  StartServers();
  QueueAll();
  auto started_moves = [&](Child& m) {
    testing::WaitFor([&] { return Slurp(m.err).find("claimed user") != std::string::npos || !m.Running(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  };
  const std::string flags = "--concurrency 2 --max-per-target-mdb 0 --batch-bytes 4KiB --json";
  {
    Child m = Mover("once", flags);
    started_moves(m);
    kill(m.pid, SIGTERM);
    EXPECT_EQ(m.Wait(std::chrono::seconds(120)), 0) << Slurp(m.err);
    json r = json::parse(Slurp(m.out), nullptr, false);
    ASSERT_FALSE(r.is_discarded()) << Slurp(m.out);
    EXPECT_GE(r["done"].get<int>(), 1);
    EXPECT_EQ(r["done"], r["claimed"]);  // what it held, it finished
    EXPECT_EQ(QueueJson()["counts"]["active"], 0);
  }
  {
    Child m = Mover("twice", flags);
    started_moves(m);
    kill(m.pid, SIGTERM);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    kill(m.pid, SIGTERM);
    m.Wait(std::chrono::seconds(120));
    json r = json::parse(Slurp(m.out), nullptr, false);
    ASSERT_FALSE(r.is_discarded()) << Slurp(m.out) << Slurp(m.err);
    EXPECT_GE(r["handed_back"].get<int>(), 1) << Slurp(m.err);
    json q = QueueJson();
    EXPECT_EQ(q["counts"]["active"], 0);
    EXPECT_GE(q["counts"]["queued"].get<int>(), 1);
  }
  Child rest = Mover("rest", "--concurrency 4 --max-per-target-mdb 0 --drain");
  EXPECT_EQ(rest.Wait(std::chrono::seconds(180)), 0) << Slurp(rest.err);
  ExpectAllMoved();
}

// Bad input: a request for a mailbox no user has fails with a clear reason,
// a damaged entry is skipped (and can be removed), a mailbox queued twice
// is refused, a mover name in use is refused; the other requests are done.
TEST_F(QueueTest, BadRequestsFailClearlyAndTheQueueGoesOn) {
  MakeOrg();
  StartServers();
  QueueAll();
  {
    auto r = RunCommand(Mbxmove() + " move --org " + org_ + " --mailbox user0001 --to MS2 --queue");
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_NE(r.err.find("already queued"), std::string::npos) << r.err;
  }
  const Guid ghost = testing::TestGuid(0xEE);
  const Guid broken = testing::TestGuid(0xEF);
  {
    auto org = Organization::Open(org_);
    ASSERT_TRUE(org.ok());
    QueueEntry e;
    e.mailbox = ghost;
    e.user = "ghost";
    e.source = "MS1";
    e.target = "MS2";
    e.queued = "2026-11-30T00:00:00Z";
    ASSERT_TRUE((*org)->directory().AddQueueEntry(&e).ok());
  }
  {
    // A damaged entry, written past the directory's own code.
    LmdbEnv env;
    ASSERT_TRUE(env.Open(org_ + "/directory", 0, 8, 1ull << 30).ok());
    LmdbTxn txn;
    ASSERT_TRUE(txn.Begin(env.get(), 0).ok());
    MDB_dbi dbi;
    ASSERT_EQ(mdb_dbi_open(txn.get(), "queue", 0, &dbi), 0);
    const std::string key(broken.AsKey());
    const std::string bad = "{\"mailbox\":\"" + broken.ToString() + "\",\"state\":\"flying\",\"version\":3}";
    MDB_val k = ToVal(key), v = ToVal(bad);
    ASSERT_EQ(mdb_put(txn.get(), dbi, &k, &v, 0), 0);
    ASSERT_TRUE(txn.Commit().ok());
  }
  // A mover that waits for work holds its name: a second one is refused.
  Child first = Mover("dup", "--concurrency 2 --max-per-target-mdb 0");
  {
    EXPECT_TRUE(testing::WaitFor([&] { return Slurp(first.err).find("started") != std::string::npos; },
                                 std::chrono::seconds(30)))
        << Slurp(first.err);
    auto r = RunCommand(Mbxmove() + " mover --org " + org_ + " --name dup --drain");
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("mover name 'dup' is taken"), std::string::npos) << r.err;
  }
  // The queue drains around the bad entries; SIGTERM stops the mover.
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        json q = QueueJson();
        return q["counts"]["done"].get<int>() + q["counts"]["failed"].get<int>() == 13;
      },
      std::chrono::seconds(120)));
  ASSERT_TRUE(first.Running());
  kill(first.pid, SIGTERM);
  EXPECT_EQ(first.Wait(std::chrono::seconds(60)), 3) << Slurp(first.err);  // one request failed
  const std::string err = Slurp(first.err);
  EXPECT_NE(err.find("skipping a damaged queue entry: " + broken.ToString()), std::string::npos) << err;
  json q = QueueJson();
  EXPECT_EQ(q["counts"]["done"], 12) << q.dump(1);
  EXPECT_EQ(q["counts"]["failed"], 1);
  ASSERT_EQ(q["damaged"].size(), 1u);
  for (const auto& e : q["entries"]) {
    if (e["mailbox"] == ghost.ToString()) {
      EXPECT_EQ(e["state"], "failed");
      EXPECT_NE(e["result"].get<std::string>().find("belongs to no user"), std::string::npos) << e.dump();
    }
  }
  // The damaged entry and the finished requests can be removed.
  EXPECT_EQ(RunCommand(Mbxmove() + " queue remove --org " + org_ + " --damaged").exit_code, 0);
  EXPECT_EQ(RunCommand(Mbxmove() + " queue remove --org " + org_ + " --finished").exit_code, 0);
  q = QueueJson();
  EXPECT_EQ(q["total"], 0) << q.dump(1);
  EXPECT_TRUE(q["damaged"].empty());
  StopServers();
  const engine::OrgSurvey after = Survey();
  EXPECT_EQ(engine::MoveInvariantViolations(before_, after), std::vector<std::string>{});
}

}  // namespace
}  // namespace mbx
