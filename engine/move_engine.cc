#include "engine/move_engine.h"

#include <tbb/global_control.h>
#include <tbb/info.h>
#include <tbb/parallel_pipeline.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <optional>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "store/tsan_annotations.h"

namespace mbx::engine {

namespace {

Result<UserRecord> ResolveUser(Directory& dir, const std::vector<UserRecord>& users, const std::string& id) {
  auto u = dir.GetUser(id);
  if (u.ok() || !u.status().IsNotFound()) return u;
  if (auto g = Guid::Parse(id)) {
    auto by = dir.GetUserByMailbox(*g);
    if (by.ok() || !by.status().IsNotFound()) return by;
  }
  for (const auto& x : users) {
    if (x.smtp == id) return x;
  }
  return Status::NotFound("no user or mailbox '" + id + "' in the directory");
}

// Stored bytes of every mailbox of a store, by GUID.
Result<std::map<Guid, uint64_t>> ListSizes(Organization& org, const std::string& store) {
  MBX_ASSIGN_OR_RETURN(StoreHandle * h, org.GetHandle(store));
  std::vector<MailboxInfo> boxes;
  MBX_RETURN_IF_ERROR(h->ListMailboxes(&boxes));
  std::map<Guid, uint64_t> out;
  for (const auto& m : boxes) out[m.guid] = m.stored_bytes;
  return out;
}

}  // namespace

Result<UserRecord> FindUser(Directory& dir, const std::string& id) {
  auto u = dir.GetUser(id);
  if (u.ok() || !u.status().IsNotFound()) return u;
  std::vector<UserRecord> users;
  MBX_RETURN_IF_ERROR(dir.ListUsers(&users));
  return ResolveUser(dir, users, id);
}

Result<std::vector<PlannedMove>> PlanMoves(Organization& org, const MoveRequest& req) {
  Directory& dir = org.directory();
  auto target = dir.GetStore(req.options.target);
  if (!target.ok()) {
    if (target.status().IsNotFound()) {
      return Status::NotFound("target store '" + req.options.target + "' is not registered in " + org.dir() +
                              " (see 'mbxmove store list')");
    }
    return target.status();
  }
  if (req.options.concurrency < 1) return Status::InvalidArgument("--concurrency must be at least 1");
  if (req.options.retry.retries < 0) return Status::InvalidArgument("--retries must be 0 or more");
  if (req.options.retry.bad_item_limit < 0) return Status::InvalidArgument("--bad-item-limit must be 0 or more");
  std::vector<StoreRecord> stores;
  MBX_RETURN_IF_ERROR(dir.ListStores(&stores));
  std::map<std::string, StoreRecord> by_dn;
  for (const auto& s : stores) by_dn[s.dn] = s;
  std::vector<UserRecord> users;
  MBX_RETURN_IF_ERROR(dir.ListUsers(&users));

  std::vector<std::string> ids = req.mailboxes;
  if (!req.from_store.empty()) {
    auto from = dir.GetStore(req.from_store);
    if (!from.ok()) {
      return Status::NotFound("source store '" + req.from_store + "' is not registered in " + org.dir());
    }
    for (const auto& u : users) {
      if (u.home_mdb == from->dn) ids.push_back(u.name);
    }
  }
  std::vector<PlannedMove> plan;
  std::set<std::string> seen;
  std::map<std::string, Result<std::map<Guid, uint64_t>>> source_sizes;
  for (const std::string& id : ids) {
    PlannedMove p;
    p.task.target = *target;
    auto u = ResolveUser(dir, users, id);
    if (!u.ok()) {
      p.task.user.name = id;
      p.error = u.status().message();
      plan.push_back(std::move(p));
      continue;
    }
    if (!seen.insert(u->name).second) continue;  // named twice
    p.task.user = *u;
    auto home = by_dn.find(u->home_mdb);
    if (home == by_dn.end()) {
      p.error = "homeMDB of " + u->name + " names no registered store (" + u->home_mdb + ")";
    } else if (home->second.name == target->name) {
      p.task.source = home->second;
      p.error = "mailbox of " + u->name + " is already in store " + target->name;
    } else {
      p.task.source = home->second;
      // One listing per source store (one round trip for a remote one).
      auto it_sizes = source_sizes.find(home->second.name);
      if (it_sizes == source_sizes.end()) {
        it_sizes = source_sizes.emplace(home->second.name, ListSizes(org, home->second.name)).first;
      }
      const auto& sizes = it_sizes->second;
      if (!sizes.ok()) {
        p.error = sizes.status().message();
      } else if (auto it = sizes->find(u->mailbox); it == sizes->end()) {
        p.error = "mailbox of " + u->name + " is not in its home store " + home->second.name;
      } else {
        p.task.stored_bytes = it->second;
      }
    }
    plan.push_back(std::move(p));
  }
  auto size_of = [](const PlannedMove& p) { return p.task.stored_bytes; };
  if (req.options.order == MoveOptions::Order::kLargestFirst) {
    std::stable_sort(plan.begin(), plan.end(), [&](const auto& a, const auto& b) { return size_of(a) > size_of(b); });
  } else if (req.options.order == MoveOptions::Order::kSmallestFirst) {
    std::stable_sort(plan.begin(), plan.end(), [&](const auto& a, const auto& b) { return size_of(a) < size_of(b); });
  }
  return plan;
}

namespace {

// The clean-ups of switched moves, run off the movers' threads: a mover
// hands its mailbox over at the switch and starts its next one, and this
// thread finishes what has piled up since its last round together
// (FinishMoves: each store flushed once per round, not twice per mailbox).
// At C=1 the clean-up of one mailbox overlaps the copy of the next.
class Cleaner {
 public:
  Cleaner(Organization& org, MoveReport* report, size_t max_pending)
      : org_(org), report_(report), max_pending_(std::max<size_t>(1, max_pending)), thread_([this] { Run(); }) {}
  ~Cleaner() { Finish(); }

  // Queues report->mailboxes[index]'s clean-up (its report is already
  // there); waits while max_pending are queued, so that sources wait for
  // their delete no longer than a round or two.
  void Add(size_t index, MoveRecord record) {
    std::unique_lock<std::mutex> l(mu_);
    space_.wait(l, [&] { return queue_.size() < max_pending_; });
    queue_.push_back({index, std::move(record), std::chrono::steady_clock::now()});
    work_.notify_one();
  }

  // Waits for every queued clean-up to be done.
  void Finish() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
      work_.notify_one();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  struct Job {
    size_t index;
    MoveRecord record;
    std::chrono::steady_clock::time_point queued;
  };

  void Run() {
    for (;;) {
      std::vector<Job> round;
      {
        std::unique_lock<std::mutex> l(mu_);
        work_.wait(l, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;
        round.swap(queue_);
        space_.notify_all();
      }
      std::vector<MoveRecord> records;
      for (const Job& j : round) records.push_back(j.record);
      const std::vector<Status> results = FinishMoves(org_, records);
      const auto done = std::chrono::steady_clock::now();
      for (size_t k = 0; k < round.size(); ++k) {
        MailboxReport& rep = report_->mailboxes[round[k].index];
        if (!results[k].ok()) NoteCleanupFailed(results[k], &rep);
        const double waited = std::chrono::duration<double>(done - round[k].queued).count();
        rep.phase_seconds["cleanup"] = waited;
        rep.seconds += waited;
      }
    }
  }

  Organization& org_;
  MoveReport* report_;
  const size_t max_pending_;
  std::mutex mu_;
  std::condition_variable work_, space_;
  std::vector<Job> queue_;  // GUARDED_BY(mu_)
  bool stop_ = false;       // GUARDED_BY(mu_)
  std::thread thread_;      // last: starts once the members above exist
};

}  // namespace

MoveReport RunMoves(Organization& org, const std::vector<PlannedMove>& plan, const MoveOptions& options,
                    MoveCounters* counters) {
  const auto start = std::chrono::steady_clock::now();
  MoveReport report;
  report.concurrency = options.concurrency;
  report.mailboxes.resize(plan.size());
  MailboxMover mover(org, options, counters);

  // The target's writer and log figures, before and after (typed, in the report).
  StoreHandle* target = nullptr;
  std::optional<StoreFigures> before;
  if (auto h = org.GetHandle(options.target); h.ok()) {
    target = *h;
    if (auto f = target->Figures(); f.ok()) before = *f;
  }
  // And the source's, when the run has one.
  StoreHandle* source = nullptr;
  std::optional<StoreFigures> source_before;
  if (!plan.empty() && std::all_of(plan.begin(), plan.end(), [&](const PlannedMove& p) {
        return p.task.source.name == plan.front().task.source.name;
      })) {
    if (auto h = org.GetHandle(plan.front().task.source.name); h.ok()) {
      source = *h;
      if (auto f = source->Figures(); f.ok()) source_before = *f;
    }
  }
  // The directory's requests from here on are the moves' own.
  const uint64_t directory_ops_before = org.directory().operations();
  const int c = std::max(1, options.concurrency);
  // Allow C threads even when C exceeds the cores (see the header).
  tbb::global_control allow(tbb::global_control::max_allowed_parallelism,
                            size_t(std::max(c, tbb::info::default_concurrency())));
  tbb::task_arena arena(c);
  Cleaner cleaner(org, &report, 2 * size_t(c));
  size_t next = 0;
  static TaskEdges edges;  // static: a task reaches it without reading a capture first
  edges.Release();
  arena.execute([&] {
    tbb::parallel_pipeline(
        size_t(c),
        tbb::make_filter<void, size_t>(tbb::filter_mode::serial_in_order,
                                       [&](tbb::flow_control& fc) -> size_t {
                                         TaskEdgeScope edge(edges);
                                         if (next >= plan.size()) {
                                           fc.stop();
                                           return 0;
                                         }
                                         return next++;
                                       }) &
            tbb::make_filter<size_t, void>(tbb::filter_mode::parallel, [&](size_t i) {
              TaskEdgeScope edge(edges);
              const PlannedMove& p = plan[i];
              if (!p.error.empty()) {
                MailboxReport r;
                r.mailbox = p.task.user.mailbox;
                r.user = p.task.user.name;
                r.display_name = p.task.user.display_name;
                r.source = p.task.source.name;
                r.target = p.task.target.name;
                r.outcome = Outcome::kFailed;
                r.reason = p.error;
                report.mailboxes[i] = std::move(r);
                counters->mailboxes_done.fetch_add(1);
                return;
              }
              std::optional<MoveRecord> cleanup;
              report.mailboxes[i] = mover.Move(p.task, &cleanup);
              if (cleanup) cleaner.Add(i, std::move(*cleanup));
            }));
  });
  edges.Acquire();
  cleaner.Finish();
  report.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  report.time.read_s = double(counters->read_ns.load()) / 1e9;
  report.time.verify_s = double(counters->verify_ns.load()) / 1e9;
  report.time.recompress_s = double(counters->recompress_ns.load()) / 1e9;
  report.time.write_wait_s = double(counters->write_wait_ns.load()) / 1e9;
  report.time.target_verify_s = double(counters->target_verify_ns.load()) / 1e9;
  report.time.directory_s = double(counters->directory_ns.load()) / 1e9;
  report.mover_copied_bytes = counters->copied_bytes.load();
  report.directory = DirectoryFigures::From(org.directory().Describe(), report.mailboxes, directory_ops_before,
                                            org.directory().operations());
  if (before) {
    if (auto after = target->Figures(); after.ok()) {
      report.target = TargetFigures::Between(options.target, *before, *after, report.BytesCopied());
    }
  }
  if (source_before) {
    if (auto after = source->Figures(); after.ok()) {
      report.source = TargetFigures::Between(plan.front().task.source.name, *source_before, *after, report.BytesCopied());
    }
  }
  return report;
}

}  // namespace mbx::engine
