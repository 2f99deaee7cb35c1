// mbxmove move | recover
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <thread>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/store_setup.h"
#include "rpc/remote_store.h"
#include "engine/move_engine.h"
#include "engine/queue_mover.h"
#include "engine/recovery.h"
#include "store/organization.h"

namespace mbx::cli {

Result<std::unique_ptr<Organization>> OpenOrgRecovering(const std::string& dir, const OpenOptions& options,
                                                        bool quiet, bool create, const LdapConfig* ldap) {
  auto org = create ? OpenOrCreateOrg(dir, options, ldap) : Organization::Open(dir, options);
  if (!org.ok()) return org.status();
  // Stores on servers with an address are reached through their server.
  rpc::InstallRemoteConnector(**org, DefaultRemoteOptions(dir));
  auto rec = engine::Recover(**org);
  if (!rec.ok()) return rec.status().WithContext("recovering interrupted moves");
  for (const auto& m : rec->moves) {
    if (!quiet || m.action.rfind("failed", 0) == 0) {
      std::fprintf(stderr, "mbxmove: recovery: %s move of %s (%s -> %s, was at step '%s')\n", m.action.c_str(),
                   m.record.user.c_str(), m.record.source.c_str(), m.record.target.c_str(), std::string(MoveStepName(m.record.step)).c_str());
    }
  }
  for (const auto& b : rec->batches) {
    if (!quiet || b.rfind("failed", 0) == 0) std::fprintf(stderr, "mbxmove: recovery: %s\n", b.c_str());
  }
  for (const auto& i : rec->imports) {
    if (!quiet || i.action.rfind("failed", 0) == 0) {
      std::fprintf(stderr, "mbxmove: recovery: %s the interrupted import of %s's mailbox %s in store %s\n",
                   i.action.c_str(), i.owner.c_str(), i.mailbox.ToString().c_str(), i.store.c_str());
    }
  }
  return org;
}

Result<std::unique_ptr<Organization>> OpenOrgForRunner(const std::string& dir, const std::string& sync) {
  OpenOptions oo;
  if (!sync.empty()) {
    auto s = ParseSyncMode(sync);
    if (!s.ok()) return s.status();
    oo.sync_override = *s;
  }
  return OpenOrgRecovering(dir, oo, /*quiet=*/true);
}

namespace {

struct MoveArgs {
  std::string org, to, from, order = "largest-first", sync, report, fault_kind = "transient", batch = "1MiB";
  std::string data_sync_every;
  std::vector<std::string> mailboxes;
  int concurrency = 4, retries = 1;
  int64_t bad_item_limit = 0;
  bool keep_source = false, json = false, queue = false;
  std::string label;
  double fault_rate = 0;
  uint64_t fault_seed = 1;
  int recompress = -1;
  bool online = false;
  uint64_t final_delta_items = 50;
  int max_passes = 10;
  std::string changes_page;  // empty: the default
  LoadFlags load;
};

// move --queue: the planned moves become queue entries for the movers.
int QueueMoves(Organization& org, const std::vector<engine::PlannedMove>& plan, const engine::MoveOptions& o,
               const MoveArgs& a) {
  if (a.online || a.load.rate > 0) {
    return Fail("--queue does not take --online or --load (the movers run offline moves)", kExitUsage);
  }
  if (a.fault_rate > 0 || a.recompress >= 0 || !a.sync.empty() || !a.report.empty()) {
    return Fail("--queue takes the move's target, source, bad-item limit, --keep-source and --label; "
                "set faults, recompression and sync on the movers",
                kExitUsage);
  }
  std::vector<Status> st = engine::QueueMoves(org, plan, o, a.label);
  json j = json::array();
  size_t queued = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    const auto& p = plan[i];
    if (st[i].ok()) ++queued;
    j.push_back({{"user", p.task.user.name},
                 {"mailbox", p.task.user.mailbox.ToString()},
                 {"source", p.task.source.name},
                 {"target", p.task.target.name},
                 {"queued", st[i].ok()},
                 {"error", st[i].ok() ? "" : st[i].message()}});
    if (!a.json && !st[i].ok()) {
      std::fprintf(stderr, "mbxmove: not queued: %s: %s\n", p.task.user.name.c_str(), st[i].message().c_str());
    }
  }
  if (a.json) {
    PrintJson({{"queued", queued}, {"requests", j}});
  } else {
    std::printf("queued %zu of %zu move(s) to %s%s; start movers with 'mbxmove mover --org %s --name NAME'\n",
                queued, plan.size(), o.target.c_str(), a.label.empty() ? "" : (" (label " + a.label + ")").c_str(),
                a.org.c_str());
  }
  return queued == plan.size() ? kExitOk : kExitPartial;
}

int RunMove(const MoveArgs& a) {
  if (a.from.empty() == a.mailboxes.empty()) {
    return Fail("give either --from STORE or --mailbox ID (one or more), not both", kExitUsage);
  }
  engine::MoveRequest req;
  req.from_store = a.from;
  req.mailboxes = a.mailboxes;
  engine::MoveOptions& o = req.options;
  o.target = a.to;
  o.concurrency = a.concurrency;
  o.retry.retries = a.retries;
  o.retry.bad_item_limit = a.bad_item_limit;
  o.keep_source = a.keep_source;
  if (a.order == "largest-first") o.order = engine::MoveOptions::Order::kLargestFirst;
  else if (a.order == "smallest-first") o.order = engine::MoveOptions::Order::kSmallestFirst;
  else if (a.order == "as-given") o.order = engine::MoveOptions::Order::kAsGiven;
  else return Fail("--order must be largest-first, smallest-first or as-given", kExitUsage);
  if (a.fault_rate < 0 || a.fault_rate > 1) return Fail("--fault-rate must be between 0 and 1", kExitUsage);
  o.faults.rate = a.fault_rate;
  o.faults.seed = a.fault_seed;
  auto kind = engine::ParseFaultKind(a.fault_kind);
  if (!kind.ok()) return Fail(kind.status());
  o.faults.kind = *kind;
  if (a.recompress >= 0) o.recompress_level = a.recompress;
  auto bb = ParseBytes(a.batch);
  if (!bb.ok()) return Fail(bb.status());
  if (*bb < 4096) return Fail("--batch-bytes must be at least 4 KiB", kExitUsage);
  o.batch_bytes = *bb;
  o.online = a.online;
  o.final_delta_items = a.final_delta_items;
  o.max_passes = a.max_passes;
  if (!a.online && (a.final_delta_items != 50 || a.max_passes != 10 || !a.changes_page.empty())) {
    return Fail("--final-delta-items, --max-passes and --changes-page-bytes are for --online moves", kExitUsage);
  }
  if (!a.changes_page.empty()) {
    auto pb = ParseChangesPageBytes(a.changes_page);
    if (!pb.ok()) return Fail(pb.status().message(), kExitUsage);
    o.changes_page_bytes = *pb;
  }
  if (Status s = BackgroundLoad::Check(a.load); !s.ok()) return Fail(s);
  if (!a.report.empty()) {
    // Checked now, not after the moves: a report that cannot be written
    // would otherwise be found out only when the work is done.
    std::error_code ec;
    const std::filesystem::path rp(a.report);
    const std::filesystem::path dir = rp.has_parent_path() ? rp.parent_path() : std::filesystem::path(".");
    if (std::filesystem::is_directory(rp, ec)) return Fail("--report " + a.report + " is a folder", kExitUsage);
    if (!std::filesystem::is_directory(dir, ec) || ::access(dir.c_str(), W_OK) != 0) {
      return Fail("--report " + a.report + ": folder " + dir.string() + " does not exist or is not writable",
                  kExitUsage);
    }
  }
  OpenOptions oo;
  if (!a.sync.empty()) {
    auto s = ParseSyncMode(a.sync);
    if (!s.ok()) return Fail(s.status());
    oo.sync_override = *s;
  }
  if (Status d = ParseDataSyncEvery(a.data_sync_every, &oo); !d.ok()) return Fail(d.message(), kExitUsage);
  auto org = OpenOrgRecovering(a.org, oo, a.json);
  if (!org.ok()) return Fail(org.status());
  auto plan = engine::PlanMoves(**org, req);
  if (!plan.ok()) return Fail(plan.status());
  if (plan->empty()) return Fail("nothing to move: store '" + a.from + "' holds no mailboxes", kExitFatal);
  if (a.queue) return QueueMoves(**org, *plan, req.options, a);

  uint64_t total_bytes = 0;
  for (const auto& p : *plan) total_bytes += p.task.stored_bytes;
  // The target must open (or answer, when remote) before anything moves.
  if (auto target = (*org)->GetHandle(a.to); !target.ok()) return Fail(target.status());
  engine::MoveCounters counters;
  const auto t0 = std::chrono::steady_clock::now();
  Progress line(a.json, [&] {
    const double secs = SecondsSince(t0);
    const double done = double(counters.bytes_done.load());
    const double rate = secs > 0 ? done / secs : 0;
    const double eta = rate > 0 ? (double(total_bytes) - done) / rate : 0;
    char buf[200];
    std::snprintf(buf, sizeof buf, "move: %llu/%zu mailboxes, %s of %s, %.1f MiB/s, ETA %.0f s",
                  (unsigned long long)counters.mailboxes_done.load(), plan->size(), FormatBytes(done).c_str(),
                  FormatBytes(double(total_bytes)).c_str(), rate / 1048576.0, eta > 0 ? eta : 0.0);
    return std::string(buf);
  });
  // Client load on the moving mailboxes, in this process, while they move.
  BackgroundLoad load;
  {
    std::vector<Guid> boxes;
    for (const auto& p : *plan) boxes.push_back(p.task.user.mailbox);
    if (Status s = load.Start(**org, boxes, a.load); !s.ok()) return Fail(s);
  }
  const bool loaded = load.running();
  engine::MoveReport report = engine::RunMoves(**org, *plan, req.options, &counters);
  json load_json = load.Stop();
  line.Stop();
  json j = report.ToJson();
  if (loaded) j["load"] = load_json;
  // Calls to remote stores (0 when every store is local): what latency costs.
  j["rpc"] = {{"round_trips", rpc::RemoteRoundTrips()}};
  {
    // This process's own peak RSS (VmHWM). A parent's wait4() figure would
    // include the parent's peak too when it started us with posix_spawn.
    std::ifstream st("/proc/self/status");
    std::string status_line;
    while (std::getline(st, status_line)) {
      if (status_line.rfind("VmHWM:", 0) == 0) {
        j["process"] = {{"peak_rss_mib", std::stod(status_line.substr(6)) / 1024.0}};
      }
    }
  }
  if (!a.report.empty()) {
    // Owner-only (0600), like everything mbxmove creates.
    if (Status s = Env::Default()->WriteFileAtomic(a.report, j.dump(2) + "\n"); !s.ok()) {
      return Fail(s.WithContext("cannot write the report to " + a.report));
    }
  }
  if (a.json) {
    PrintJson(j);
  } else {
    for (const auto& m : report.mailboxes) {
      if (m.outcome == engine::Outcome::kFailed) {
        std::printf("FAILED  %-10s %s -> %s: %s\n", m.user.c_str(), m.source.c_str(), m.target.c_str(),
                    m.reason.c_str());
      } else if (!m.dropped.empty()) {
        std::printf("moved   %-10s %s -> %s with %zu dropped item(s)\n", m.user.c_str(), m.source.c_str(),
                    m.target.c_str(), m.dropped.size());
      }
    }
    const auto& t = j["totals"];
    std::printf("moved %llu of %zu mailboxes to %s in %.2f s (%d at a time): %llu items, %s, %.1f MiB/s, %.0f items/s\n",
                (unsigned long long)report.Completed(), report.mailboxes.size(), a.to.c_str(), report.wall_seconds,
                a.concurrency, (unsigned long long)report.ItemsCopied(), FormatBytes(double(report.BytesCopied())).c_str(),
                t["mib_per_s"].get<double>(), t["items_per_s"].get<double>());
    const engine::DirectoryFigures& d = report.directory;
    std::printf("  directory (%s, %s): %.1f operations per moved mailbox (%llu in all), homeMDB switch "
                "p50 %.2f ms, p95 %.2f ms\n",
                d.backend.c_str(), d.where.c_str(), d.operations_per_mailbox, (unsigned long long)d.operations,
                d.switch_p50_ms, d.switch_p95_ms);
    if (report.target) {
      const engine::TargetFigures& tf = *report.target;
      std::printf("  write path (target %s, sync %s): %llu commit groups, %llu log syncs, %llu data.mdb syncs; "
                  "%.2f bytes copied in memory per byte moved\n",
                  tf.store.c_str(), tf.sync.c_str(), (unsigned long long)tf.groups, (unsigned long long)tf.log_syncs,
                  (unsigned long long)tf.data_syncs, report.MemoryCopiesPerByte());
    }
    if (a.online) {
      const auto& l = j["totals"]["lock_ms"];
      std::printf("  online: lock window p50 %.1f ms, p95 %.1f ms, max %.1f ms (clients refused only then)\n",
                  l["p50"].get<double>(), l["p95"].get<double>(), l["max"].get<double>());
    }
    if (loaded) {
      std::printf("  client load during the moves:\n");
      PrintLoadTable(load.report());
    }
    if (report.ItemsDropped() || report.Failed()) {
      std::printf("  %llu items dropped, %llu mailboxes failed%s\n", (unsigned long long)report.ItemsDropped(),
                  (unsigned long long)report.Failed(), a.report.empty() ? " (details: --report FILE)" : "");
    }
  }
  return report.Failed() ? kExitPartial : kExitOk;
}

struct RecoverArgs {
  std::string org;
  bool json = false;
};

int RunRecover(const RecoverArgs& a) {
  auto org = Organization::Open(a.org);
  if (!org.ok()) return Fail(org.status());
  rpc::InstallRemoteConnector(**org, DefaultRemoteOptions(a.org));
  auto rec = engine::Recover(**org);
  if (!rec.ok()) return Fail(rec.status());
  if (a.json) {
    json moves = json::array();
    for (const auto& m : rec->moves) {
      moves.push_back({{"mailbox", m.record.mailbox.ToString()}, {"user", m.record.user},
                       {"source", m.record.source}, {"target", m.record.target}, {"step", MoveStepName(m.record.step)},
                       {"action", m.action}});
    }
    json imports = json::array();
    for (const auto& i : rec->imports) {
      imports.push_back({{"store", i.store}, {"mailbox", i.mailbox.ToString()}, {"owner", i.owner},
                         {"action", i.action}});
    }
    PrintJson({{"moves", moves}, {"imports", imports}, {"batches", rec->batches}, {"all_done", rec->all_done()}});
  } else {
    for (const auto& m : rec->moves) {
      std::printf("%s: move of %s (%s -> %s, was at step '%s')\n", m.action.c_str(), m.record.user.c_str(),
                  m.record.source.c_str(), m.record.target.c_str(), std::string(MoveStepName(m.record.step)).c_str());
    }
    for (const auto& i : rec->imports) {
      std::printf("%s: interrupted import of %s's mailbox %s in store %s\n", i.action.c_str(), i.owner.c_str(),
                  i.mailbox.ToString().c_str(), i.store.c_str());
    }
    for (const auto& b : rec->batches) std::printf("%s\n", b.c_str());
    std::printf("recover: %zu interrupted move(s), %zu interrupted import(s), %zu batch member(s) handled\n",
                rec->moves.size(), rec->imports.size(), rec->batches.size());
  }
  return rec->all_done() ? kExitOk : kExitFatal;
}

}  // namespace

void AddMoveCommands(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<MoveArgs>();
  CLI::App* c = app.add_subcommand(
      "move",
      "Move mailboxes to another store, C at a time: lock the source, recreate the folder tree, copy the items "
      "(every record verified; a failed read retried R times, then the item dropped), verify, switch homeMDB "
      "(the commit point), clean up. A mailbox with more than B dropped items is not moved and its source is "
      "left as it was. Exit 0 when every mailbox moved, 3 when some failed.");
  c->add_option("--org", a->org, "Organisation folder")->required();
  c->add_option("--to", a->to, "Target store")->required();
  c->add_option("--from", a->from, "Move every mailbox homed in this store");
  c->add_option("--mailbox", a->mailboxes, "Mailbox to move: user name, SMTP address or mailbox GUID (repeatable)");
  c->add_option("--concurrency", a->concurrency, "Mailboxes moved at once (Exchange 2003 SP1 moved 4)")
      ->check(CLI::Range(1, 256))->capture_default_str();
  c->add_option("--retries", a->retries, "Retries of a failed item read before the item is dropped")
      ->check(CLI::Range(0, 100))->capture_default_str();
  c->add_option("--bad-item-limit", a->bad_item_limit,
                "Dropped items a mailbox may lose and still move (0: a mailbox with an unreadable item is not moved)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  c->add_option("--order", a->order, "largest-first, smallest-first or as-given")->capture_default_str();
  c->add_flag("--keep-source", a->keep_source, "Keep the source mailbox as soft-deleted instead of deleting it");
  c->add_option("--sync", a->sync, "Durability for this run: full, batch or none (default: each store's own)");
  c->add_option("--data-sync-every", a->data_sync_every, std::string(kDataSyncEveryHelp) + " (default 64MiB)")
      ->type_name("SIZE");
  c->add_option("--recompress", a->recompress, "Recompress items at this zstd level (default: the target store's level)")
      ->check(CLI::Range(0, 19));
  c->add_option("--batch-bytes", a->batch, "Bytes per write batch handed to the target's writer")->capture_default_str();
  c->add_option("--report", a->report, "Write the JSON report to FILE");
  c->add_option("--fault-rate", a->fault_rate, "Fault injection: fraction of items whose reads fail")->capture_default_str();
  c->add_option("--fault-kind", a->fault_kind, "transient (a retry succeeds) or persistent (every read fails)")
      ->capture_default_str();
  c->add_option("--fault-seed", a->fault_seed, "Fault injection seed")->capture_default_str();
  c->add_flag("--json", a->json, "Print the JSON report instead of the summary (no progress line)");
  c->add_flag("--queue", a->queue,
              "Queue the moves in the directory instead of running them: 'mbxmove mover' processes, on any "
              "host, claim and run them ('mbxmove queue status' shows them)");
  c->add_option("--label", a->label, "With --queue: a label the queue shows for these requests");
  c->add_flag("--online", a->online,
              "Online move: the mailbox stays in use; an initial copy, then incremental passes of what clients "
              "changed, then the source is locked for the last delta only (the lock window the report gives)");
  c->add_option("--final-delta-items", a->final_delta_items,
                "With --online: lock once a pass finds at most this many changed items")
      ->capture_default_str();
  c->add_option("--max-passes", a->max_passes, "With --online: incremental passes before locking regardless")
      ->check(CLI::Range(0, 1000))->capture_default_str();
  c->add_option("--changes-page-bytes", a->changes_page,
                "With --online: a pass reads the source's changes in pages of at most this many bytes of items "
                "(one item at least; default 16MiB), so that a pass of any size fits a server's messages and "
                "this process's memory");
  AddLoadFlags(c, &a->load, "the moving mailboxes while they move");
  c->callback([a, exit_code] { *exit_code = RunMove(*a); });

  auto r = std::make_shared<RecoverArgs>();
  CLI::App* rc = app.add_subcommand(
      "recover", "Finish the moves an interruption left past their switch, roll back the others "
                 "(every other command that opens an organisation does this first)");
  rc->add_option("--org", r->org, "Organisation folder")->required();
  rc->add_flag("--json", r->json, "Print JSON");
  rc->callback([r, exit_code] { *exit_code = RunRecover(*r); });
}

}  // namespace mbx::cli
