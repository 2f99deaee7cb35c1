// mbxmove batch create | start | status | list | complete | stop | remove
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "engine/batch_runner.h"
#include "engine/move_engine.h"
#include "engine/move_report.h"
#include "engine/queue_mover.h"
#include "store/organization.h"

namespace mbx::cli {

namespace {

struct BatchArgs {
  std::string org, name, to, from, sync_interval = "5m", complete_after, cancel_after;
  std::vector<std::string> mailboxes;
  int concurrency = 4;
  int64_t bad_item_limit = 0;
  bool manual = false, keep_source = false, json = false, quiet = false;
  // start
  double lease_s = 30, poll_s = 1;
  uint64_t final_delta_items = 50;
  int max_passes = 10, retries = 1, recompress = -1;
  std::string batch_bytes = "1MiB", changes_page = "16MiB", sync, report, why;
  LoadFlags load;
};

std::string Clock(int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  char buf[32];
  std::time_t t = std::time_t(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Ago(int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  const int64_t s = std::max<int64_t>(0, (engine::UnixMillis() - unix_ms) / 1000);
  if (s < 120) return std::to_string(s) + " s ago";
  if (s < 7200) return std::to_string(s / 60) + " min ago";
  return std::to_string(s / 3600) + " h ago";
}

// "2026-12-01T18:00:00Z" (UTC) -> Unix ms; nullopt if it is not one.
std::optional<int64_t> ParseUtc(const std::string& text) {
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return int64_t(timegm(&tm)) * 1000;
}

std::string Settings(const BatchRecord& b) {
  char every[32];
  std::snprintf(every, sizeof every, "%g s", double(b.sync_interval_ms) / 1000.0);
  std::string s = std::to_string(b.concurrency) + " at a time, a pass every " + every;
  if (b.complete_at_ms > 0) {
    s += ", completes at " + Clock(b.complete_at_ms);
  } else if (b.complete_delay_ms >= 0) {
    s += ", completes " + std::to_string(b.complete_delay_ms / 1000) + " s after its start";
  } else {
    s += ", completed by 'batch complete'";
  }
  if (b.cancel_after_ms > 0) s += ", cancelled if still running " + std::to_string(b.cancel_after_ms / 1000) + " s after its start";
  if (b.bad_item_limit > 0) s += ", bad-item limit " + std::to_string(b.bad_item_limit);
  if (b.keep_source) s += ", sources kept (soft-deleted)";
  return s;
}

std::map<MemberState, size_t> Counts(const BatchRecord& b) {
  std::map<MemberState, size_t> c;
  for (const auto& m : b.members) ++c[m.state];
  return c;
}

std::string CountLine(const BatchRecord& b) {
  std::string s;
  for (const auto& [st, n] : Counts(b)) {
    s += (s.empty() ? "" : ", ") + std::to_string(n) + " " + std::string(MemberStateName(st));
  }
  return s;
}

// The batch's figures summed over its mailboxes (what status prints
// below its header, and "totals" in --json).
struct BatchTotals {
  uint64_t items_copied = 0, bytes_copied = 0, items_behind = 0, passes = 0, dropped = 0;
  size_t completed = 0;
  double lock_ms_p50 = 0, lock_ms_max = 0;  // over the completed mailboxes
  // The initial copies: bytes copied of the mailboxes' sizes (members of a
  // known size, not failed or stopped; a member past its copy counts whole).
  uint64_t copy_done = 0, copy_total = 0;
};

BatchTotals Totals(const BatchRecord& b) {
  BatchTotals t;
  std::vector<double> locks;
  for (const BatchMember& m : b.members) {
    t.items_copied += m.items_copied;
    t.bytes_copied += m.bytes_copied;
    t.items_behind += m.items_behind;
    t.passes += m.passes;
    t.dropped += m.dropped;
    if (m.state == MemberState::kCompleted) locks.push_back(m.lock_ms);
  }
  const engine::InitialCopyProgress p = engine::InitialCopies(b, false, 0);
  t.copy_done = p.done;
  t.copy_total = p.total;
  t.completed = locks.size();
  t.lock_ms_p50 = engine::Percentile(locks, 0.5);
  t.lock_ms_max = engine::Percentile(locks, 1.0);
  return t;
}

std::string Duration(double s) {
  char buf[48];
  if (s < 90) {
    std::snprintf(buf, sizeof buf, "%.0f s", s);
  } else if (s < 5400) {
    std::snprintf(buf, sizeof buf, "%.0f min", s / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f h", s / 3600);
  }
  return buf;
}

std::string TotalsLine(const BatchRecord& b) {
  const BatchTotals t = Totals(b);
  char buf[320];
  std::snprintf(buf, sizeof buf, "totals: %llu items (%s) copied, %llu passes, %llu behind at the last passes, %llu dropped",
                static_cast<unsigned long long>(t.items_copied), FormatBytes(double(t.bytes_copied)).c_str(),
                static_cast<unsigned long long>(t.passes), static_cast<unsigned long long>(t.items_behind),
                static_cast<unsigned long long>(t.dropped));
  std::string line = buf;
  if (t.copy_total > 0) {
    std::snprintf(buf, sizeof buf, "; initial copies %.0f%% of %s", 100.0 * double(t.copy_done) / double(t.copy_total),
                  FormatBytes(double(t.copy_total)).c_str());
    line += buf;
  }
  if (t.completed > 0) {
    std::snprintf(buf, sizeof buf, "; lock window p50 %.1f ms, max %.1f ms over %zu completed", t.lock_ms_p50,
                  t.lock_ms_max, t.completed);
    line += buf;
  }
  return line;
}

json BatchJson(Organization& org, const BatchRecord& b) {
  json j = json::parse(BatchToJson(b));
  j["runner_live"] = engine::BatchRunnerLive(org, b.name);
  json counts = json::object();
  for (const auto& [st, n] : Counts(b)) counts[std::string(MemberStateName(st))] = n;
  j["counts"] = counts;
  const BatchTotals t = Totals(b);
  j["totals"] = {{"items_copied", t.items_copied}, {"bytes_copied", t.bytes_copied},
                 {"items_behind", t.items_behind},   {"passes", t.passes},
                 {"dropped", t.dropped},             {"completed", t.completed},
                 {"lock_ms_p50", t.lock_ms_p50},     {"lock_ms_max", t.lock_ms_max},
                 {"copy_bytes_done", t.copy_done},   {"copy_bytes_total", t.copy_total}};
  const engine::InitialCopyProgress p = engine::InitialCopies(b, j["runner_live"].get<bool>(), engine::UnixMillis());
  j["totals"]["copy_seconds_left"] = p.seconds_left >= 0 ? json(p.seconds_left) : json(nullptr);
  return j;
}

Result<std::unique_ptr<Organization>> OpenQuiet(const std::string& dir) { return Organization::Open(dir); }

int RunCreate(const BatchArgs& a) {
  if (a.from.empty() == a.mailboxes.empty()) return Fail("give either --from STORE or --mailbox ID...", kExitUsage);
  if (a.manual && !a.complete_after.empty()) return Fail("--manual and --complete-after exclude each other", kExitUsage);
  BatchRecord b;
  b.name = a.name;
  b.target = a.to;
  b.concurrency = uint32_t(a.concurrency);
  b.bad_item_limit = uint32_t(a.bad_item_limit);
  b.keep_source = a.keep_source;
  auto interval = engine::ParseDurationMs(a.sync_interval, 1000);
  if (!interval.ok()) return Fail(interval.status().WithContext("--sync-interval"));
  b.sync_interval_ms = *interval;
  if (!a.complete_after.empty()) {
    if (auto at = ParseUtc(a.complete_after)) {
      b.complete_at_ms = *at;
    } else {
      auto d = engine::ParseDurationMs(a.complete_after, 3600000);
      if (!d.ok()) {
        return Fail("--complete-after takes a UTC time (2026-12-01T18:00:00Z) or a time after the start (90m, 2h): " +
                        d.status().message(),
                    kExitUsage);
      }
      b.complete_delay_ms = *d;
    }
  }
  if (!a.cancel_after.empty()) {
    auto d = engine::ParseDurationMs(a.cancel_after, 3600000);
    if (!d.ok()) return Fail(d.status().WithContext("--cancel-after"));
    if (*d <= 0) return Fail("--cancel-after must be more than 0", kExitUsage);
    b.cancel_after_ms = *d;
  }
  if (Status s = ValidateBatchName(b.name); !s.ok()) return Fail(s);
  auto org = OpenOrgRecovering(a.org, {}, /*quiet=*/true);
  if (!org.ok()) return Fail(org.status());
  engine::MoveRequest req;
  req.from_store = a.from;
  req.mailboxes = a.mailboxes;
  req.options.target = a.to;
  req.options.concurrency = a.concurrency;
  req.options.retry.bad_item_limit = int(a.bad_item_limit);
  auto plan = engine::PlanMoves(**org, req);
  if (!plan.ok()) return Fail(plan.status());
  if (plan->empty()) return Fail("nothing to move: store '" + a.from + "' holds no mailboxes", kExitFatal);
  if (Status s = engine::CreateBatch(**org, &b, *plan); !s.ok()) return Fail(s);
  if (a.json) {
    PrintJson(BatchJson(**org, b));
  } else {
    std::printf("batch %s created: %zu mailbox(es) to %s; %s\n", b.name.c_str(), b.members.size(), b.target.c_str(),
                Settings(b).c_str());
    std::printf("start it with: mbxmove batch start --org %s --name %s\n", a.org.c_str(), b.name.c_str());
  }
  return kExitOk;
}

void PrintMembers(const BatchRecord& b) {
  std::printf("%-12s %-10s %-10s %6s %9s %6s %7s %-14s %8s  %s\n", "mailbox", "source", "state", "passes", "items",
              "copied", "behind", "last sync", "lock ms", "result");
  for (const auto& m : b.members) {
    char lock[32] = "-";
    if (m.state == MemberState::kCompleted && m.lock_ms > 0) std::snprintf(lock, sizeof lock, "%.1f", m.lock_ms);
    char copied[16] = "-";
    if (const double f = engine::InitialCopyFraction(m); f >= 0) std::snprintf(copied, sizeof copied, "%.0f%%", 100 * f);
    std::printf("%-12s %-10s %-10s %6u %9llu %6s %7llu %-14s %8s  %s\n", m.user.c_str(), m.source.c_str(),
                std::string(MemberStateName(m.state)).c_str(), m.passes, (unsigned long long)m.items_copied, copied,
                (unsigned long long)m.items_behind, Ago(m.last_sync_ms).c_str(), lock, m.result.c_str());
  }
}

int RunStatus(const BatchArgs& a) {
  auto org = OpenQuiet(a.org);
  if (!org.ok()) return Fail(org.status());
  auto b = (*org)->directory().GetBatch(a.name);
  if (!b.ok()) return Fail(b.status());
  const bool live = engine::BatchRunnerLive(**org, a.name);
  if (a.json) {
    PrintJson(BatchJson(**org, *b));
    return kExitOk;
  }
  std::printf("batch %s: %s, %zu mailbox(es) to %s (%s)\n", b->name.c_str(),
              std::string(BatchStateName(b->state)).c_str(), b->members.size(), b->target.c_str(), CountLine(*b).c_str());
  std::printf("  %s\n", Settings(*b).c_str());
  std::printf("  created %s, started %s, finished %s; runner %s\n", b->created.c_str(), Clock(b->started_ms).c_str(),
              Clock(b->finished_ms).c_str(),
              live ? (b->runner + " (running)").c_str()
                   : (b->state == BatchState::kRunning || b->state == BatchState::kCompleting ||
                              b->state == BatchState::kStopping
                          ? "none (start one: mbxmove batch start --name " + b->name + ")"
                          : std::string("none"))
                         .c_str());
  if (!b->result.empty()) std::printf("  %s\n", b->result.c_str());
  std::printf("  %s\n", TotalsLine(*b).c_str());
  if (const auto p = engine::InitialCopies(*b, live, engine::UnixMillis()); p.seconds_left >= 0) {
    std::printf("  initial copies: about %s left at the batch's rate since it started (%s/s)\n",
                Duration(p.seconds_left).c_str(), FormatBytes(p.bytes_per_s).c_str());
  }
  PrintMembers(*b);
  return kExitOk;
}

int RunList(const BatchArgs& a) {
  auto org = OpenQuiet(a.org);
  if (!org.ok()) return Fail(org.status());
  std::vector<BatchRecord> all;
  std::vector<std::string> damaged;
  if (Status s = (*org)->directory().ListBatches(&all, &damaged); !s.ok()) return Fail(s);
  if (a.json) {
    json j = json::array();
    for (const auto& b : all) j.push_back(BatchJson(**org, b));
    PrintJson({{"batches", j}, {"damaged", damaged}});
    return kExitOk;
  }
  if (all.empty() && damaged.empty()) std::printf("no batches\n");
  for (const auto& b : all) {
    std::printf("%-16s %-10s to %-10s %3zu mailbox(es): %s%s\n", b.name.c_str(),
                std::string(BatchStateName(b.state)).c_str(), b.target.c_str(), b.members.size(), CountLine(b).c_str(),
                engine::BatchRunnerLive(**org, b.name) ? " [runner live]" : "");
  }
  for (const auto& d : damaged) std::fprintf(stderr, "mbxmove: damaged batch record skipped: %s\n", d.c_str());
  return damaged.empty() ? kExitOk : kExitPartial;
}

int RunComplete(const BatchArgs& a) {
  auto org = OpenQuiet(a.org);
  if (!org.ok()) return Fail(org.status());
  if (Status s = engine::RequestComplete(**org, a.name); !s.ok()) return Fail(s);
  std::printf("batch %s: completing; the runner locks each synced mailbox for its final delta and switches it\n",
              a.name.c_str());
  if (!engine::BatchRunnerLive(**org, a.name)) {
    std::printf("no runner holds it now: start one with 'mbxmove batch start --org %s --name %s'\n", a.org.c_str(),
                a.name.c_str());
  }
  return kExitOk;
}

int RunStop(const BatchArgs& a) {
  auto org = OpenOrgRecovering(a.org, {}, /*quiet=*/true);
  if (!org.ok()) return Fail(org.status());
  const bool live = engine::BatchRunnerLive(**org, a.name);
  const std::string why = a.why.empty() ? "stopped by 'mbxmove batch stop'" : "stopped: " + a.why;
  if (Status s = engine::StopBatch(**org, a.name, why); !s.ok()) return Fail(s);
  if (live) {
    std::printf("batch %s: stopping; its runner rolls back every mailbox not completed\n", a.name.c_str());
  } else {
    std::printf("batch %s: stopped; every mailbox not completed was rolled back\n", a.name.c_str());
  }
  return kExitOk;
}

int RunRemove(const BatchArgs& a) {
  auto org = OpenOrgRecovering(a.org, {}, /*quiet=*/true);
  if (!org.ok()) return Fail(org.status());
  if (Status s = engine::RemoveBatch(**org, a.name); !s.ok()) return Fail(s);
  std::printf("batch %s removed\n", a.name.c_str());
  return kExitOk;
}

int RunStart(const BatchArgs& a) {
  if (a.lease_s < 0.3 || a.lease_s > 3600) return Fail("--lease must be between 0.3 and 3600 seconds", kExitUsage);
  if (a.poll_s < 0.01 || a.poll_s > 600) return Fail("--poll must be between 0.01 and 600 seconds", kExitUsage);
  auto bb = ParseBytes(a.batch_bytes);
  if (!bb.ok()) return Fail(bb.status());
  if (*bb < 4096) return Fail("--batch-bytes must be at least 4 KiB", kExitUsage);
  auto pb = ParseChangesPageBytes(a.changes_page);
  if (!pb.ok()) return Fail(pb.status().message(), kExitUsage);
  if (Status s = BackgroundLoad::Check(a.load); !s.ok()) return Fail(s);
  StopSignals signals;  // before any thread starts
  auto org = OpenOrgForRunner(a.org, a.sync);
  if (!org.ok()) return Fail(org.status());
  engine::BatchRunOptions o;
  o.name = a.name;
  o.lease_ms = int64_t(a.lease_s * 1000);
  o.poll_ms = int64_t(a.poll_s * 1000);
  o.move.retry.retries = a.retries;
  o.move.batch_bytes = *bb;
  o.move.final_delta_items = a.final_delta_items;
  o.move.max_passes = a.max_passes;
  o.move.changes_page_bytes = *pb;
  if (a.recompress >= 0) o.move.recompress_level = a.recompress;
  std::mutex log_mu;
  if (!a.quiet) {
    o.log = [&log_mu](const std::string& line) {
      std::lock_guard<std::mutex> l(log_mu);
      std::fprintf(stderr, "%s %s\n", TimeStamp().c_str(), line.c_str());
    };
  }
  std::atomic<bool> stop{false};
  signals.Watch([&](int, int n) {
    if (n != 1) return;
    stop = true;
    std::lock_guard<std::mutex> l(log_mu);
    std::fprintf(stderr,
                 "%s batch %s: told to stop: copies and completions in flight are rolled back; synced mailboxes are "
                 "left for the next 'batch start' to resume\n",
                 TimeStamp().c_str(), a.name.c_str());
  });
  // Client load on the batch's mailboxes, in this process, while it runs.
  BackgroundLoad load;
  if (a.load.rate > 0) {
    auto b = (*org)->directory().GetBatch(a.name);
    if (!b.ok()) return Fail(b.status());
    std::vector<Guid> boxes;
    for (const auto& m : b->members) boxes.push_back(m.mailbox);
    if (Status s = load.Start(**org, boxes, a.load); !s.ok()) return Fail(s);
  }
  auto rep = engine::RunBatch(**org, o, stop);
  const bool loaded = load.running();
  json load_json = load.Stop();
  signals.Stop();
  if (!rep.ok()) return Fail(rep.status());
  const BatchRecord& b = rep->batch;
  json report = rep->moves.ToJson();
  if (!a.report.empty()) {
    json j = {{"batch", BatchJson(**org, b)}, {"ended", rep->ended}, {"passes", rep->passes}, {"report", report}};
    if (loaded) j["load"] = load_json;
    if (Status s = Env::Default()->WriteFileAtomic(a.report, j.dump(2) + "\n"); !s.ok()) {
      return Fail(s.WithContext("cannot write the report to " + a.report));
    }
  }
  if (a.json) {
    json j = {{"batch", BatchJson(**org, b)}, {"ended", rep->ended}, {"passes", rep->passes}, {"report", report}};
    if (loaded) j["load"] = load_json;
    PrintJson(j);
  } else {
    std::printf("batch %s %s: %s\n", b.name.c_str(), rep->ended.c_str(), CountLine(b).c_str());
    PrintMembers(b);
    if (!rep->moves.mailboxes.empty()) {
      const auto& l = report["totals"]["lock_ms"];
      std::printf("this run: %llu mailbox(es) switched, %llu items copied, %llu passes; lock window p50 %.1f ms, "
                  "p95 %.1f ms, max %.1f ms\n",
                  (unsigned long long)rep->moves.Completed(), (unsigned long long)rep->moves.ItemsCopied(),
                  (unsigned long long)rep->passes, l.value("p50", 0.0), l.value("p95", 0.0), l.value("max", 0.0));
    }
    if (loaded) {
      std::printf("client load during the batch:\n");
      PrintLoadTable(load.report());
    }
  }
  if (rep->ended.rfind("interrupted", 0) == 0) return kExitFatal;
  for (const auto& m : b.members) {
    if (m.state != MemberState::kCompleted) return kExitPartial;
  }
  return kExitOk;
}

}  // namespace

void AddBatchCommands(CLI::App& app, int* exit_code) {
  CLI::App* g = app.add_subcommand(
      "batch",
      "Migration batches: mailboxes moved online to one store and kept in sync (an incremental pass every "
      "--sync-interval) while their users work, until the batch is completed (each mailbox locked only for its "
      "final delta, then switched). create, start (runs the batch; Ctrl-C leaves it resumable), status, list, "
      "complete, stop (rolls back every mailbox not completed), remove.");
  g->require_subcommand(1);
  auto org_name = [](CLI::App* c, BatchArgs* a) {
    c->add_option("--org", a->org, "Organisation folder")->required();
    c->add_option("--name", a->name, "The batch's name (1-64 of A-Z a-z 0-9 . _ -)")->required();
  };

  auto cr = std::make_shared<BatchArgs>();
  CLI::App* c = g->add_subcommand("create", "Create a batch (state created; nothing moves until 'batch start')");
  org_name(c, cr.get());
  c->add_option("--to", cr->to, "Target store")->required();
  c->add_option("--from", cr->from, "Every mailbox homed in this store");
  c->add_option("--mailbox", cr->mailboxes, "These mailboxes: user names, SMTP addresses or GUIDs");
  c->add_option("--concurrency", cr->concurrency, "Mailboxes copied or completed at once")
      ->check(CLI::Range(1, 256))->capture_default_str();
  c->add_option("--bad-item-limit", cr->bad_item_limit,
                "Unreadable items a mailbox may drop; with more it fails and stays where it is")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 30))->capture_default_str();
  c->add_option("--sync-interval", cr->sync_interval,
                "Time between incremental passes of a synced mailbox (250ms, 30s, 5m, 1h)")->capture_default_str();
  c->add_option("--complete-after", cr->complete_after,
                "Complete by itself at this UTC time (2026-12-01T18:00:00Z) or this long after the start (90m, 2h; "
                "a plain number is hours)");
  c->add_flag("--manual", cr->manual, "Complete only at 'mbxmove batch complete' (the default)");
  c->add_option("--cancel-after", cr->cancel_after,
                "Stop the batch (every mailbox not completed rolled back) if it is still running this long after "
                "its start (hours, or 90m, 30s)");
  c->add_flag("--keep-source", cr->keep_source, "Soft-delete each source mailbox instead of deleting it");
  c->add_flag("--json", cr->json, "Print the batch as JSON");
  c->callback([cr, exit_code] { *exit_code = RunCreate(*cr); });

  auto st = std::make_shared<BatchArgs>();
  CLI::App* s = g->add_subcommand(
      "start",
      "Run the batch in this process until it is completed or stopped: initial copies (C at a time), a pass "
      "per mailbox every sync interval, the final delta and switch once completing. One runner per batch (a "
      "lease in the directory). SIGTERM/Ctrl-C stops it: synced mailboxes are left for the next start to resume, "
      "copies and completions in flight are rolled back. Exit 0 when every mailbox completed, 3 when some failed or were stopped, 1 if interrupted.");
  org_name(s, st.get());
  s->add_option("--final-delta-items", st->final_delta_items,
                "At completion, passes run until one finds at most this many changed items; then the lock")
      ->capture_default_str();
  s->add_option("--max-passes", st->max_passes, "At completion, passes before the lock at most")
      ->check(CLI::Range(0, 1000))->capture_default_str();
  s->add_option("--changes-page-bytes", st->changes_page,
                "A pass reads the source's changes in pages of at most this many bytes of items (one item at "
                "least), so that a pass of any size fits a server's messages and this process's memory")
      ->capture_default_str();
  s->add_option("--retries", st->retries, "Retries of a failed item read before the item is dropped")
      ->check(CLI::Range(0, 100))->capture_default_str();
  s->add_option("--recompress", st->recompress, "Recompress items at this zstd level")->check(CLI::Range(0, 19));
  s->add_option("--batch-bytes", st->batch_bytes, "Bytes per write batch handed to the target's writer")
      ->capture_default_str();
  s->add_option("--sync", st->sync, "Durability of local stores: full, batch or none");
  s->add_option("--lease", st->lease_s,
                "Seconds the runner's hold lasts unless renewed; after a kill, another start waits this long")
      ->capture_default_str();
  s->add_option("--poll", st->poll_s, "Seconds between reads of the batch's state ('batch complete', 'batch stop')")
      ->capture_default_str();
  AddLoadFlags(s, &st->load, "the batch's mailboxes while it runs (local stores are open in one process at a time)");
  s->add_option("--report", st->report, "Write the final report (JSON) to this file");
  s->add_flag("--json", st->json, "Print the final report as JSON");
  s->add_flag("--quiet", st->quiet, "No event lines on stderr");
  s->callback([st, exit_code] { *exit_code = RunStart(*st); });

  auto ss = std::make_shared<BatchArgs>();
  CLI::App* sc = g->add_subcommand("status", "The batch's state, settings and runner, and each mailbox's progress");
  org_name(sc, ss.get());
  sc->add_flag("--json", ss->json, "Print JSON");
  sc->callback([ss, exit_code] { *exit_code = RunStatus(*ss); });

  auto ls = std::make_shared<BatchArgs>();
  CLI::App* lc = g->add_subcommand("list", "Every batch, a line each");
  lc->add_option("--org", ls->org, "Organisation folder")->required();
  lc->add_flag("--json", ls->json, "Print JSON");
  lc->callback([ls, exit_code] { *exit_code = RunList(*ls); });

  auto cp = std::make_shared<BatchArgs>();
  CLI::App* cc = g->add_subcommand(
      "complete", "Complete a running batch whose mailboxes are all synced (or done): its runner locks each for its "
                  "final delta and switches it");
  org_name(cc, cp.get());
  cc->callback([cp, exit_code] { *exit_code = RunComplete(*cp); });

  auto sp = std::make_shared<BatchArgs>();
  CLI::App* pc = g->add_subcommand("stop", "Stop a batch: every mailbox not completed is rolled back and stopped");
  org_name(pc, sp.get());
  pc->add_option("--why", sp->why, "A reason, kept in the batch");
  pc->callback([sp, exit_code] { *exit_code = RunStop(*sp); });

  auto rm = std::make_shared<BatchArgs>();
  CLI::App* rc = g->add_subcommand("remove", "Delete a batch that is not running (created, completed or stopped)");
  org_name(rc, rm.get());
  rc->callback([rm, exit_code] { *exit_code = RunRemove(*rm); });
}

}  // namespace mbx::cli
