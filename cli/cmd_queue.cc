// mbxmove mover | queue status | queue list | queue remove | queue retry
#include <signal.h>
#include <unistd.h>

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
#include "engine/move_engine.h"
#include "engine/queue_mover.h"
#include "store/organization.h"

namespace mbx::cli {

namespace {

struct MoverArgs {
  std::string org, name, sync, batch = "1MiB";
  int concurrency = 4, retries = 1, recompress = -1;
  engine::MoverLimits limits;
  double lease_s = 30, poll_s = 1;
  bool drain = false, json = false, quiet = false;
};

int RunMover(const MoverArgs& a) {
  if (a.lease_s < 0.3 || a.lease_s > 3600) return Fail("--lease must be between 0.3 and 3600 seconds", kExitUsage);
  if (a.poll_s < 0.01 || a.poll_s > 600) return Fail("--poll must be between 0.01 and 600 seconds", kExitUsage);
  auto bb = ParseBytes(a.batch);
  if (!bb.ok()) return Fail(bb.status());
  if (*bb < 4096) return Fail("--batch-bytes must be at least 4 KiB", kExitUsage);
  // SIGTERM/SIGINT are taken by the watcher's thread: blocked before any
  // thread starts, so every thread inherits the mask.
  StopSignals signals;

  auto org = OpenOrgForRunner(a.org, a.sync);
  if (!org.ok()) return Fail(org.status());

  engine::MoverOptions o;
  o.name = a.name;
  o.concurrency = a.concurrency;
  o.limits = a.limits;
  o.lease_ms = int64_t(a.lease_s * 1000);
  o.poll_ms = int64_t(a.poll_s * 1000);
  o.drain = a.drain;
  o.move.retry.retries = a.retries;
  o.move.batch_bytes = *bb;
  if (a.recompress >= 0) o.move.recompress_level = a.recompress;
  std::mutex log_mu;
  if (!a.quiet) {
    o.log = [&log_mu](const std::string& line) {
      std::lock_guard<std::mutex> l(log_mu);
      std::fprintf(stderr, "%s %s\n", TimeStamp().c_str(), line.c_str());
    };
  }
  std::atomic<bool> stop{false}, abandon{false};
  signals.Watch([&](int sig, int n) {
    std::lock_guard<std::mutex> l(log_mu);
    if (n == 1) {
      stop = true;
      std::fprintf(stderr,
                   "%s mover %s: %s: finishing the moves in flight, then handing back what it holds "
                   "(send it again to call them off now)\n",
                   TimeStamp().c_str(), a.name.c_str(), sig == SIGTERM ? "SIGTERM" : "SIGINT");
    } else if (n == 2) {
      abandon = true;
      std::fprintf(stderr, "%s mover %s: calling the moves in flight off (they roll back) and stopping\n",
                   TimeStamp().c_str(), a.name.c_str());
    }
  });
  engine::QueueMover mover(**org, o);
  auto rep = mover.Run(stop, abandon);
  signals.Stop();
  if (!rep.ok()) return Fail(rep.status());
  const engine::MoverReport& r = *rep;
  if (a.json) {
    json mbx = json::array();
    for (const auto& m : r.mailboxes) {
      mbx.push_back({{"user", m.user},
                     {"source", m.source},
                     {"target", m.target},
                     {"outcome", engine::OutcomeName(m.outcome)},
                     {"reason", m.reason},
                     {"seconds", m.seconds},
                     {"items", m.items_copied},
                     {"bytes", m.bytes_copied}});
    }
    PrintJson({{"mover", a.name},
               {"claimed", r.claimed},
               {"done", r.done},
               {"failed", r.failed},
               {"handed_back", r.handed_back},
               {"lost", r.lost},
               {"taken_over", r.taken_over},
               {"finished_for_previous_owner", r.finished_for_previous},
               {"rolled_back_for_previous_owner", r.rolled_back_for_previous},
               {"claim_conflicts", r.claim_conflicts},
               {"directory_operations", r.directory_operations},
               {"directory_writes", r.directory_writes},
               {"items_moved", r.items_moved},
               {"bytes_moved", r.bytes_moved},
               {"seconds", r.seconds},
               {"stopped_because", r.stopped_because},
               {"mailboxes", mbx}});
  } else {
    std::printf(
        "mover %s: %llu claimed (%llu taken over), %llu done, %llu failed, %llu handed back, %llu lost; "
        "%s in %.1f s; %llu directory operations (%.1f per claim, %llu writes)\n",
        a.name.c_str(), (unsigned long long)r.claimed, (unsigned long long)r.taken_over,
        (unsigned long long)r.done, (unsigned long long)r.failed, (unsigned long long)r.handed_back,
        (unsigned long long)r.lost, FormatBytes(double(r.bytes_moved)).c_str(), r.seconds,
        (unsigned long long)r.directory_operations,
        r.claimed ? double(r.directory_operations) / double(r.claimed) : 0.0,
        (unsigned long long)r.directory_writes);
  }
  if (!r.stopped_because.empty()) return Fail("mover " + a.name + " stopped: " + r.stopped_because);
  // A claim lost to another mover is not a failure: that mover has the
  // request now.
  return r.failed == 0 ? kExitOk : kExitPartial;
}

struct QueueArgs {
  std::string org, label;
  std::vector<std::string> mailboxes;
  bool json = false, finished = false, all = false, damaged = false;
};

std::string LeaseLeft(int64_t until_ms, int64_t now) {
  if (until_ms <= 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, until_ms < now ? "lapsed %.1fs" : "%.1fs", double(std::llabs(until_ms - now)) / 1000);
  return buf;
}

json EntryJson(const QueueEntry& e, int64_t now, const std::string& step) {
  return {{"mailbox", e.mailbox.ToString()},
          {"user", e.user},
          {"source", e.source},
          {"target", e.target},
          {"state", QueueStateName(e.state)},
          {"owner", e.owner.empty() ? "" : engine::MoverNameOfToken(e.owner)},
          {"lease_ms_left", e.state == QueueState::kActive ? e.lease_until_ms - now : 0},
          {"attempts", e.attempts},
          {"label", e.batch},
          {"queued", e.queued},
          {"step", step},
          {"result", e.result}};
}

// Opens the organisation without recovering: a queue command must not
// touch moves in flight.
Result<std::unique_ptr<Organization>> OpenForQueue(const std::string& dir) { return Organization::Open(dir); }

int RunQueueShow(const QueueArgs& a, bool status_view) {
  auto org = OpenForQueue(a.org);
  if (!org.ok()) return Fail(org.status());
  Directory& dir = (*org)->directory();
  std::vector<QueueEntry> entries;
  std::vector<std::string> damaged;
  if (Status s = dir.ListQueue(&entries, &damaged); !s.ok()) return Fail(s);
  if (!a.label.empty()) std::erase_if(entries, [&](const QueueEntry& e) { return e.batch != a.label; });
  std::vector<Lease> leases;
  if (Status s = dir.ListLeases(&leases); !s.ok()) return Fail(s);
  std::map<Guid, std::string> steps;
  {
    std::vector<MoveRecord> moves;
    if (dir.ListMoves(&moves).ok()) {
      for (const auto& m : moves) steps[m.mailbox] = std::string(MoveStepName(m.step));
    }
  }
  const int64_t now = engine::UnixMillis();
  std::map<std::string, size_t> by_state;
  std::map<std::string, std::vector<std::string>> claims_of;  // mover -> users
  for (const auto& e : entries) {
    ++by_state[std::string(QueueStateName(e.state))];
    if (e.state == QueueState::kActive) claims_of[engine::MoverNameOfToken(e.owner)].push_back(e.user);
  }
  size_t slots_held = 0;
  json movers = json::array();
  for (const auto& l : leases) {
    const bool live = !l.owner.empty() && l.until_ms >= now;
    if (l.name.rfind("mover.", 0) == 0) {
      const std::string name = l.name.substr(6);
      movers.push_back({{"name", name},
                        {"holder", l.holds},
                        {"live", live},
                        {"lease_ms_left", l.until_ms - now},
                        {"claims", claims_of[name]}});
    } else if (live) {
      ++slots_held;
    }
  }
  if (a.json) {
    json es = json::array();
    for (const auto& e : entries) {
      if (status_view && e.state != QueueState::kActive) continue;
      es.push_back(EntryJson(e, now, steps.count(e.mailbox) ? steps[e.mailbox] : ""));
    }
    json counts = json::object();
    for (const char* st : {"queued", "active", "done", "failed"}) counts[st] = by_state[st];
    PrintJson({{"total", entries.size()},
               {"counts", counts},
               {"movers", movers},
               {"slots_held", slots_held},
               {"damaged", damaged},
               {"entries", es}});
    return kExitOk;
  }
  if (status_view) {
    const size_t finished = by_state["done"] + by_state["failed"];
    std::printf("queue of %s: %zu request(s): %zu queued, %zu active, %zu done, %zu failed (%.0f%% finished)\n",
                a.org.c_str(), entries.size(), by_state["queued"], by_state["active"], by_state["done"],
                by_state["failed"], entries.empty() ? 100.0 : 100.0 * double(finished) / double(entries.size()));
    std::printf("movers: %zu; limit slots held: %zu\n", movers.size(), slots_held);
    for (const auto& m : movers) {
      std::string users;
      for (const auto& u : m["claims"]) users += (users.empty() ? "" : " ") + u.get<std::string>();
      std::printf("  %-16s %-24s %-8s %2zu claim(s) %s\n", m["name"].get<std::string>().c_str(),
                  m["holder"].get<std::string>().c_str(),
                  m["live"].get<bool>() ? LeaseLeft(m["lease_ms_left"].get<int64_t>() + now, now).c_str() : "stopped",
                  m["claims"].size(), users.c_str());
    }
  }
  std::printf("%-12s %-8s %-10s %-10s %-12s %-12s %-4s %-10s %s\n", "USER", "STATE", "SOURCE", "TARGET", "OWNER",
              "LEASE", "TRY", "STEP", "RESULT");
  for (const auto& e : entries) {
    if (status_view && e.state != QueueState::kActive) continue;
    std::printf("%-12s %-8s %-10s %-10s %-12s %-12s %-4u %-10s %s\n", e.user.c_str(),
                std::string(QueueStateName(e.state)).c_str(), e.source.c_str(), e.target.c_str(),
                e.owner.empty() ? "-" : engine::MoverNameOfToken(e.owner).c_str(),
                e.state == QueueState::kActive ? LeaseLeft(e.lease_until_ms, now).c_str() : "-", e.attempts,
                steps.count(e.mailbox) ? steps[e.mailbox].c_str() : "-", e.result.c_str());
  }
  for (const auto& d : damaged) std::printf("damaged entry: %s\n", d.c_str());
  return kExitOk;
}

// The entries --mailbox names (user, SMTP address or GUID), or an error.
Result<std::vector<Guid>> NamedMailboxes(Organization& org, const std::vector<std::string>& ids) {
  std::vector<Guid> out;
  for (const auto& id : ids) {
    if (auto g = Guid::Parse(id)) {
      out.push_back(*g);
      continue;
    }
    auto u = engine::FindUser(org.directory(), id);
    if (!u.ok()) return u.status();
    out.push_back(u->mailbox);
  }
  return out;
}

int RunQueueRemove(const QueueArgs& a) {
  if (int(!a.mailboxes.empty()) + int(a.finished) + int(a.all) + int(a.damaged) != 1) {
    return Fail("give one of --mailbox ID..., --finished, --all or --damaged", kExitUsage);
  }
  auto org = OpenForQueue(a.org);
  if (!org.ok()) return Fail(org.status());
  Directory& dir = (*org)->directory();
  std::vector<QueueEntry> entries;
  std::vector<std::string> damaged;
  if (Status s = dir.ListQueue(&entries, &damaged); !s.ok()) return Fail(s);
  size_t removed = 0, refused = 0;
  if (a.damaged) {
    for (const auto& d : damaged) {
      auto g = Guid::Parse(d.substr(0, d.find(':')));
      if (g && dir.DeleteQueueEntry(*g, 0).ok()) ++removed;
    }
    std::printf("removed %zu damaged entr%s\n", removed, removed == 1 ? "y" : "ies");
    return kExitOk;
  }
  std::vector<Guid> named;
  if (!a.mailboxes.empty()) {
    auto n = NamedMailboxes(**org, a.mailboxes);
    if (!n.ok()) return Fail(n.status());
    named = *n;
    for (const Guid& g : named) {
      if (std::none_of(entries.begin(), entries.end(), [&](const QueueEntry& e) { return e.mailbox == g; })) {
        return Fail("mailbox " + g.ToString() + " has no queue entry; nothing removed", kExitUsage);
      }
    }
  }
  const int64_t now = engine::UnixMillis();
  for (const auto& e : entries) {
    if (!a.label.empty() && e.batch != a.label) continue;
    const bool finished = e.state == QueueState::kDone || e.state == QueueState::kFailed;
    const bool want = a.all || (a.finished && finished) ||
                      std::find(named.begin(), named.end(), e.mailbox) != named.end();
    if (!want) continue;
    if (e.state == QueueState::kActive && e.lease_until_ms >= now) {
      std::fprintf(stderr, "mbxmove: not removed: %s is being moved by mover %s\n", e.user.c_str(),
                   engine::MoverNameOfToken(e.owner).c_str());
      ++refused;
      continue;
    }
    Status s = dir.DeleteQueueEntry(e.mailbox, e.version);
    if (s.ok()) {
      ++removed;
    } else {
      std::fprintf(stderr, "mbxmove: not removed: %s: %s\n", e.user.c_str(), s.message().c_str());
      ++refused;
    }
  }
  std::printf("removed %zu entr%s%s\n", removed, removed == 1 ? "y" : "ies",
              refused ? (", " + std::to_string(refused) + " refused").c_str() : "");
  return refused == 0 ? kExitOk : kExitPartial;
}

int RunQueueRetry(const QueueArgs& a) {
  auto org = OpenForQueue(a.org);
  if (!org.ok()) return Fail(org.status());
  Directory& dir = (*org)->directory();
  std::vector<QueueEntry> entries;
  std::vector<std::string> damaged;  // skipped: 'queue remove --damaged' removes them
  if (Status s = dir.ListQueue(&entries, &damaged); !s.ok()) return Fail(s);
  std::vector<Guid> named;
  if (!a.mailboxes.empty()) {
    auto n = NamedMailboxes(**org, a.mailboxes);
    if (!n.ok()) return Fail(n.status());
    named = *n;
  }
  size_t requeued = 0;
  for (auto e : entries) {
    if (e.state != QueueState::kFailed) continue;
    if (!named.empty() && std::find(named.begin(), named.end(), e.mailbox) == named.end()) continue;
    if (!a.label.empty() && e.batch != a.label) continue;
    e.state = QueueState::kQueued;
    e.attempts = 0;
    e.result = "retried after: " + e.result;
    if (Status s = dir.UpdateQueueEntry(&e); s.ok()) ++requeued;
  }
  std::printf("queued %zu failed request(s) again\n", requeued);
  return kExitOk;
}

}  // namespace

void AddQueueCommands(CLI::App& app, int* exit_code) {
  auto m = std::make_shared<MoverArgs>();
  CLI::App* mc = app.add_subcommand(
      "mover",
      "Run queued moves ('mbxmove move --queue'): claim requests from the directory under a lease, C at a "
      "time, within per-store and per-server limits, on as many hosts as you like. A mover killed or cut off "
      "loses its lease; another takes its requests over (finishing a move past its switch, rolling back and "
      "repeating one before it). SIGTERM finishes the moves in flight and hands back the rest; a second "
      "SIGTERM calls them off. Exit 0 unless a request failed (3) or the mover lost its own lease (1).");
  mc->add_option("--org", m->org, "Organisation folder")->required();
  mc->add_option("--name", m->name, "This mover's name, unique among running movers")->required();
  mc->add_option("--concurrency", m->concurrency, "Moves this mover runs at once")
      ->check(CLI::Range(1, 256))->capture_default_str();
  mc->add_option("--max-per-source-mdb", m->limits.per_source_mdb,
                 "Moves out of one store at once, over all movers (0: no limit)")
      ->check(CLI::Range(0, 1000))->capture_default_str();
  mc->add_option("--max-per-target-mdb", m->limits.per_target_mdb, "Moves into one store at once (0: no limit)")
      ->check(CLI::Range(0, 1000))->capture_default_str();
  mc->add_option("--max-per-source-server", m->limits.per_source_server,
                 "Moves out of one server at once (0: no limit)")
      ->check(CLI::Range(0, 1000))->capture_default_str();
  mc->add_option("--max-per-target-server", m->limits.per_target_server,
                 "Moves into one server at once (0: no limit)")
      ->check(CLI::Range(0, 1000))->capture_default_str();
  mc->add_option("--lease", m->lease_s,
                 "Seconds a claim lasts unless renewed (renewed every third); a dead mover's requests wait this "
                 "long before another takes them")
      ->capture_default_str();
  mc->add_option("--poll", m->poll_s, "Seconds between looks at the queue while idle")->capture_default_str();
  mc->add_flag("--drain", m->drain, "Exit once no request is queued or active (default: wait for more)");
  mc->add_option("--retries", m->retries, "Retries of a failed item read before the item is dropped")
      ->check(CLI::Range(0, 100))->capture_default_str();
  mc->add_option("--recompress", m->recompress, "Recompress items at this zstd level")->check(CLI::Range(0, 19));
  mc->add_option("--batch-bytes", m->batch, "Bytes per write batch handed to the target's writer")
      ->capture_default_str();
  mc->add_option("--sync", m->sync, "Durability of local stores: full, batch or none");
  mc->add_flag("--json", m->json, "Print the final report as JSON");
  mc->add_flag("--quiet", m->quiet, "No event lines on stderr");
  mc->callback([m, exit_code] { *exit_code = RunMover(*m); });

  CLI::App* q = app.add_subcommand("queue", "The shared move queue: status, list, remove, retry");
  q->require_subcommand(1);
  auto add_common = [](CLI::App* c, QueueArgs* a) {
    c->add_option("--org", a->org, "Organisation folder")->required();
    c->add_option("--label", a->label, "Only the requests queued with this label");
  };
  auto st = std::make_shared<QueueArgs>();
  CLI::App* sc = q->add_subcommand("status", "Counts per state, the movers and their claims, the active requests");
  add_common(sc, st.get());
  sc->add_flag("--json", st->json, "Print JSON");
  sc->callback([st, exit_code] { *exit_code = RunQueueShow(*st, true); });
  auto ls = std::make_shared<QueueArgs>();
  CLI::App* lc = q->add_subcommand("list", "Every request: state, owner, lease, attempts, step, result");
  add_common(lc, ls.get());
  lc->add_flag("--json", ls->json, "Print JSON");
  lc->callback([ls, exit_code] { *exit_code = RunQueueShow(*ls, false); });
  auto rm = std::make_shared<QueueArgs>();
  CLI::App* rc = q->add_subcommand("remove", "Remove requests (not one a live mover holds)");
  add_common(rc, rm.get());
  rc->add_option("--mailbox", rm->mailboxes, "The request of this mailbox (user, SMTP address or GUID)");
  rc->add_flag("--finished", rm->finished, "Every done or failed request");
  rc->add_flag("--all", rm->all, "Every request not held by a live mover");
  rc->add_flag("--damaged", rm->damaged, "Every entry too damaged to read");
  rc->callback([rm, exit_code] { *exit_code = RunQueueRemove(*rm); });
  auto rt = std::make_shared<QueueArgs>();
  CLI::App* tc = q->add_subcommand("retry", "Queue failed requests again");
  add_common(tc, rt.get());
  tc->add_option("--mailbox", rt->mailboxes, "Only these mailboxes");
  tc->callback([rt, exit_code] { *exit_code = RunQueueRetry(*rt); });
}

}  // namespace mbx::cli
