// mbxmove load: client load on mailboxes (engine/client_load.h).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "engine/client_load.h"
#include "engine/move_engine.h"

namespace mbx::cli {

void AddLoadFlags(CLI::App* c, LoadFlags* f, const std::string& what) {
  c->add_option("--load", f->rate, "Put client load (mbxmove load) of OPS operations/s on " + what)
      ->check(CLI::NonNegativeNumber);
  c->add_option("--load-mix", f->mix, "With --load: weights of deliver, flag, move, delete, folder")
      ->capture_default_str();
  c->add_option("--load-seed", f->seed, "With --load: seed of the operations")->capture_default_str();
  c->add_option("--load-journal", f->journal, "With --load: append every operation and acknowledgement to FILE");
}

Status BackgroundLoad::Check(const LoadFlags& f) {
  auto mix = engine::LoadMix::Parse(f.mix);
  if (!mix.ok()) return Status::InvalidArgument(mix.status().message());
  if (f.rate < 0 || f.rate > 100000) return Status::InvalidArgument("--load must be from 0 to 100000 operations/s");
  if (!f.journal.empty() && f.rate == 0) return Status::InvalidArgument("--load-journal needs --load OPS");
  return Status::Ok();
}

Status BackgroundLoad::Start(Organization& org, const std::vector<Guid>& mailboxes, const LoadFlags& f) {
  MBX_RETURN_IF_ERROR(Check(f));
  if (f.rate == 0) return Status::Ok();
  flags_ = f;
  engine::LoadOptions lo;
  lo.mailboxes = mailboxes;
  lo.rate = f.rate;
  lo.duration_s = 86400 * 30;  // until stopped
  lo.mix = *engine::LoadMix::Parse(f.mix);
  lo.seed = f.seed;
  lo.journal = f.journal;
  auto load = std::make_unique<engine::ClientLoad>(org, lo);
  MBX_RETURN_IF_ERROR(load->Prepare().WithContext("preparing the client load"));
  load_ = std::move(load);
  thread_ = std::thread([this] { report_ = load_->Run(&stop_); });
  return Status::Ok();
}

nlohmann::json BackgroundLoad::Stop() {
  if (load_ == nullptr) return nullptr;
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  load_.reset();
  nlohmann::json j = report_.ToJson();
  j["rate"] = flags_.rate;
  j["mix"] = engine::LoadMix::Parse(flags_.mix)->ToString();
  return j;
}

BackgroundLoad::~BackgroundLoad() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

namespace {

struct LoadArgs {
  std::string org, mix = "deliver:60,flag:25,move:10,delete:5", journal;
  std::vector<std::string> mailboxes;
  bool all = false, json = false;
  double rate = 50, duration = 10;
  uint64_t seed = 1;
  int threads = 4;
};

int RunLoad(const LoadArgs& a) {
  if (a.all == !a.mailboxes.empty()) return Fail("give either --all or --mailbox ID (one or more)", kExitUsage);
  if (!(a.rate > 0) || a.rate > 100000) return Fail("--rate must be more than 0 and at most 100000", kExitUsage);
  if (!(a.duration > 0) || a.duration > 86400) return Fail("--duration must be more than 0 and at most 86400 s", kExitUsage);
  auto mix = engine::LoadMix::Parse(a.mix);
  if (!mix.ok()) return Fail(mix.status().message(), kExitUsage);
  // No recovery first: a load may run beside a move in another process (on
  // served stores), whose records are not this process's to roll back.
  auto org = Organization::Open(a.org);
  if (!org.ok()) return Fail(org.status());
  rpc::InstallRemoteConnector(**org, DefaultRemoteOptions(a.org));
  engine::LoadOptions o;
  o.rate = a.rate;
  o.duration_s = a.duration;
  o.mix = *mix;
  o.seed = a.seed;
  o.threads = a.threads;
  o.journal = a.journal;
  if (a.all) {
    std::vector<UserRecord> users;
    if (Status s = (*org)->directory().ListUsers(&users); !s.ok()) return Fail(s);
    for (const auto& u : users) o.mailboxes.push_back(u.mailbox);
    if (o.mailboxes.empty()) return Fail("the organisation has no mailboxes", kExitFatal);
  } else {
    for (const auto& id : a.mailboxes) {
      auto u = engine::FindUser((*org)->directory(), id);
      if (!u.ok()) return Fail(u.status());
      o.mailboxes.push_back(u->mailbox);
    }
  }
  engine::ClientLoad load(**org, o);
  if (Status s = load.Prepare(); !s.ok()) return Fail(s);
  const auto t0 = std::chrono::steady_clock::now();
  Progress line(a.json, [&] {
    char buf[120];
    std::snprintf(buf, sizeof buf, "load: %.0f of %.0f s at %.0f operations/s on %zu mailbox(es)",
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), a.duration, a.rate,
                  o.mailboxes.size());
    return std::string(buf);
  });
  engine::LoadReport r = load.Run();
  line.Stop();
  if (a.json) {
    json j = r.ToJson();
    j["rate"] = a.rate;
    j["mix"] = mix->ToString();
    j["seed"] = a.seed;
    j["mailboxes"] = o.mailboxes.size();
    PrintJson(j);
  } else {
    PrintLoadTable(r);
  }
  return r.total.failed == 0 ? kExitOk : kExitPartial;
}

}  // namespace

void PrintLoadTable(const engine::LoadReport& r) {
  std::printf("%-14s %8s %8s %8s %7s %9s %9s %9s %11s\n", "operation", "done", "refused", "retried", "failed",
              "p50 ms", "p95 ms", "max ms", "lockout ms");
  auto row = [](const std::string& name, const engine::KindFigures& f) {
    std::printf("%-14s %8llu %8llu %8llu %7llu %9.2f %9.2f %9.2f %11.2f\n", name.c_str(), (unsigned long long)f.done,
                (unsigned long long)f.refused, (unsigned long long)f.retried, (unsigned long long)f.failed, f.p50_ms,
                f.p95_ms, f.max_ms, f.lockout_max_ms);
  };
  for (const auto& [k, f] : r.kinds) row(k, f);
  row("all", r.total);
  std::printf("%.1f operations/s acknowledged over %.1f s (lockout: the longest an operation was refused, first "
              "refusal to acknowledgement)\n",
              r.achieved_rate, r.seconds);
  for (const auto& e : r.errors) std::printf("  error: %s\n", e.c_str());
}

void AddLoadCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<LoadArgs>();
  CLI::App* c = app.add_subcommand(
      "load",
      "Act as the users of some mailboxes: deliver generated messages, change flags, move and delete items, "
      "make, rename and delete folders, at a fixed rate, on whatever store homeMDB names for each mailbox now. "
      "An operation refused because a move has the mailbox locked is retried after a pause, as a client "
      "would. Deterministic for a seed. Stores open in another process (a running 'move') are reachable only "
      "when served ('mbxmove serve'); for load beside a move on local stores use 'move --online --load OPS'. "
      "Exit 0 when every operation was acknowledged, 3 when some failed.");
  c->add_option("--org", a->org, "Organisation folder")->required();
  c->add_option("--mailbox", a->mailboxes, "Mailbox: user name, SMTP address or mailbox GUID (repeatable)");
  c->add_flag("--all", a->all, "Every mailbox of the organisation");
  c->add_option("--rate", a->rate, "Operations per second, over all the mailboxes")->capture_default_str();
  c->add_option("--duration", a->duration, "Seconds to run")->capture_default_str();
  c->add_option("--mix", a->mix, "Weights of deliver, flag, move, delete and folder (create/rename/delete)")
      ->capture_default_str();
  c->add_option("--seed", a->seed, "Seed of the operations")->capture_default_str();
  c->add_option("--threads", a->threads, "Client threads (each mailbox's operations run in order on one)")
      ->check(CLI::Range(1, 64))->capture_default_str();
  c->add_option("--journal", a->journal,
                "Append every operation and its acknowledgement to FILE (what a crash test checks the stores "
                "against)");
  c->add_flag("--json", a->json, "Print the report as JSON");
  c->callback([a, exit_code] { *exit_code = RunLoad(*a); });
}

}  // namespace mbx::cli
