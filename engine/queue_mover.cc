#include "engine/queue_mover.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "engine/move_state.h"

namespace mbx::engine {

int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string MoverNameOfToken(const std::string& token) { return token.substr(0, token.find('#')); }

std::vector<Status> QueueMoves(Organization& org, const std::vector<PlannedMove>& plan, const MoveOptions& options,
                               const std::string& batch) {
  std::vector<Status> out;
  const std::string now = NowIso8601();
  for (const PlannedMove& p : plan) {
    if (!p.error.empty()) {
      out.push_back(Status::InvalidArgument(p.error));
      continue;
    }
    QueueEntry e;
    e.mailbox = p.task.user.mailbox;
    e.user = p.task.user.name;
    e.source = p.task.source.name;
    e.target = p.task.target.name;
    e.batch = batch;
    e.bad_item_limit = uint32_t(std::clamp<int64_t>(options.retry.bad_item_limit, 0, UINT32_MAX));
    e.keep_source = options.keep_source;
    e.queued = now;
    Status s = org.directory().AddQueueEntry(&e);
    if (s.code() == Status::Code::kAlreadyExists) {
      auto cur = org.directory().GetQueueEntry(e.mailbox);
      s = Status::AlreadyExists(
          "already queued" +
          (cur.ok() ? " (" + std::string(QueueStateName(cur->state)) + ", " + cur->source + " -> " + cur->target +
                          (cur->batch.empty() ? "" : ", batch " + cur->batch) + "); 'mbxmove queue remove' first"
                    : std::string()));
    }
    out.push_back(s);
  }
  return out;
}

namespace {

constexpr uint32_t kMaxAttempts = 5;  // claims of one entry before a transient failure is final

// One entry this mover holds, with the slots it took for it.
struct Claim {
  std::mutex mu;  // serialises the writes of the entry and its slots (renewals vs the worker)
  QueueEntry entry;         // GUARDED_BY(mu): as last written (its version)
  std::vector<Lease> slots;  // GUARDED_BY(mu)
  bool lost = false;        // GUARDED_BY(mu): no longer ours; write nothing more
  bool taken_over = false;  // claimed from an owner whose lease lapsed
  // Why the move is called off ("" while it is not); set once.
  std::mutex why_mu;
  std::string why;  // GUARDED_BY(why_mu)
  std::atomic<bool> off{false};
  // The lease as last renewed, less a margin: past it the move is called
  // off even if the renewer never answers (a hung directory call).
  std::atomic<int64_t> safe_until{0};

  void CallOff(const std::string& reason) {
    std::lock_guard<std::mutex> l(why_mu);
    if (why.empty()) why = reason;
    off.store(true, std::memory_order_release);
  }
  std::string Reason() {
    if (!off.load(std::memory_order_acquire)) {
      if (UnixMillis() <= safe_until.load(std::memory_order_relaxed)) return {};
      CallOff("its lease is about to lapse unrenewed");
    }
    std::lock_guard<std::mutex> l(why_mu);
    return why;
  }
};

const char* const kLostLease = "its mover lost its lease";
const char* const kToldToStop = "its mover was told to stop";

std::string SlotName(const std::string& kind, const std::string& what, int i) {
  return "slot." + kind + "." + what + "." + std::to_string(i);
}

bool Free(const Lease& l, int64_t now) { return l.owner.empty() || l.until_ms < now; }

}  // namespace

struct QueueMover::Impl {
  Organization& org;
  MoverOptions o;
  std::string token;
  MoveCounters counters;

  std::mutex self_mu;
  Lease self;  // GUARDED_BY(self_mu)

  std::mutex mu;  // claims, report, the stop state
  std::condition_variable cv;
  std::map<Guid, std::shared_ptr<Claim>> claims;  // GUARDED_BY(mu)
  MoverReport rep;                                 // GUARDED_BY(mu)
  bool drained = false;                            // GUARDED_BY(mu)
  bool workers_done = false;                       // GUARDED_BY(mu)
  std::atomic<bool> lost_self{false};
  std::string lost_self_why;  // GUARDED_BY(mu)
  std::mt19937_64 rng{std::random_device{}()};  // GUARDED_BY(mu)

  Impl(Organization& org_in, MoverOptions options) : org(org_in), o(std::move(options)) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(std::random_device{}()) << 32 ^
                                                  std::random_device{}());
    token = o.name + "#" + std::string(hex, 8);
  }

  void Log(const std::string& line) {
    if (o.log) o.log("mover " + o.name + ": " + line);
  }
  // The same, for a failure every worker meets on every poll while it
  // lasts (the directory unreachable): once, then again every 10 s.
  std::mutex quiet_mu;
  std::string quiet_last;  // GUARDED_BY(quiet_mu)
  int64_t quiet_at = 0;    // GUARDED_BY(quiet_mu)
  void LogRepeating(const std::string& line) {
    {
      std::lock_guard<std::mutex> l(quiet_mu);
      const int64_t now = UnixMillis();
      if (line == quiet_last && now - quiet_at < 10000) return;
      quiet_last = line;
      quiet_at = now;
    }
    Log(line);
  }

  Directory& dir() { return org.directory(); }

  Status TakeName();
  void ReleaseName();
  std::shared_ptr<Claim> TryClaim(bool* queue_idle);
  // The four limits a move is under: slot kind, the store or server it
  // counts, the limit (0: none). A store with no record has no server.
  struct Limit {
    std::string kind, what;
    int limit;
  };
  std::vector<Limit> Limits(const QueueEntry& e, const std::map<std::string, StoreRecord>& stores) const {
    auto server_of = [&](const std::string& store) {
      auto it = stores.find(store);
      return it == stores.end() ? std::string() : it->second.server;
    };
    std::vector<Limit> out = {{"src-mdb", e.source, o.limits.per_source_mdb},
                              {"dst-mdb", e.target, o.limits.per_target_mdb},
                              {"src-srv", server_of(e.source), o.limits.per_source_server},
                              {"dst-srv", server_of(e.target), o.limits.per_target_server}};
    std::erase_if(out, [](const Limit& l) { return l.limit <= 0 || l.what.empty(); });
    return out;
  }
  bool SlotsLookFree(const QueueEntry& e, const std::map<std::string, Lease>& leases,
                     const std::map<std::string, StoreRecord>& stores, int64_t now);
  Status TakeSlots(const QueueEntry& e, std::map<std::string, Lease>& leases,
                   const std::map<std::string, StoreRecord>& stores, std::vector<Lease>* taken);
  void ReleaseSlots(std::vector<Lease>* slots);
  void Work(const std::shared_ptr<Claim>& c);
  // Ends the claim: the entry to `state` (queued hands it back), owner and
  // lease cleared, slots released. False if the claim was lost meanwhile.
  bool End(Claim& c, QueueState state, const std::string& result);
  void WorkerLoop(const std::atomic<bool>& stop, const std::atomic<bool>& abandon);
  void RenewLoop();
  void RenewAll();
};

Status QueueMover::Impl::TakeName() {
  const std::string name = "mover." + o.name;
  char host[256] = "?";
  (void)gethostname(host, sizeof host - 1);
  Lease want;
  want.name = name;
  want.owner = token;
  want.until_ms = UnixMillis() + o.lease_ms;
  want.holds = std::string(host) + ":" + std::to_string(getpid());
  auto cur = dir().GetLease(name);
  if (!cur.ok() && !cur.status().IsNotFound()) return cur.status();
  if (cur.ok()) {
    if (!Free(*cur, UnixMillis())) {
      const int64_t left = cur->until_ms - UnixMillis();
      return Status::Busy("mover name '" + o.name + "' is taken: held by " + cur->holds +
                                     " for another " + std::to_string((left + 999) / 1000) +
                                     " s (a mover still running, or one stopped less than its lease ago)");
    }
    want.version = cur->version;
    Status s = dir().UpdateLease(&want);
    if (s.code() == Status::Code::kConflict) {
      return Status::Busy("mover name '" + o.name + "' is taken: another mover claimed it just now");
    }
    MBX_RETURN_IF_ERROR(s);
  } else {
    Status s = dir().AddLease(&want);
    if (s.code() == Status::Code::kAlreadyExists) {
      return Status::Busy("mover name '" + o.name + "' is taken: another mover claimed it just now");
    }
    MBX_RETURN_IF_ERROR(s);
  }
  std::lock_guard<std::mutex> l(self_mu);
  self = want;
  return Status::Ok();
}

void QueueMover::Impl::ReleaseName() {
  std::lock_guard<std::mutex> l(self_mu);
  if (lost_self.load()) return;
  (void)dir().DeleteLease(self.name, self.version);
}

bool QueueMover::Impl::SlotsLookFree(const QueueEntry& e, const std::map<std::string, Lease>& leases,
                                     const std::map<std::string, StoreRecord>& stores, int64_t now) {
  for (const Limit& lim : Limits(e, stores)) {
    const auto& [kind, what, limit] = lim;
    bool any = false;
    for (int i = 0; i < limit && !any; ++i) {
      auto it = leases.find(SlotName(kind, what, i));
      any = it == leases.end() || Free(it->second, now);
    }
    if (!any) return false;
  }
  return true;
}

Status QueueMover::Impl::TakeSlots(const QueueEntry& e, std::map<std::string, Lease>& leases,
                                   const std::map<std::string, StoreRecord>& stores, std::vector<Lease>* taken) {
  for (const Limit& lim : Limits(e, stores)) {
    const auto& [kind, what, limit] = lim;
    bool got = false;
    for (int i = 0; i < limit && !got; ++i) {
      const std::string name = SlotName(kind, what, i);
      const int64_t now = UnixMillis();
      auto it = leases.find(name);
      Lease l;
      Status s;
      if (it == leases.end()) {
        l.name = name;
        l.owner = token;
        l.until_ms = now + o.lease_ms;
        l.holds = e.mailbox.ToString();
        s = dir().AddLease(&l);
        if (s.code() == Status::Code::kAlreadyExists) continue;
      } else {
        if (!Free(it->second, now)) continue;
        l = it->second;
        l.owner = token;
        l.until_ms = now + o.lease_ms;
        l.holds = e.mailbox.ToString();
        s = dir().UpdateLease(&l);
        if (s.code() == Status::Code::kConflict || s.IsNotFound()) {
          leases.erase(name);  // changed under us: read again next pass
          continue;
        }
      }
      if (!s.ok()) {
        ReleaseSlots(taken);
        return s;
      }
      leases[name] = l;
      taken->push_back(l);
      got = true;
    }
    if (!got) {
      ReleaseSlots(taken);
      return Status::Busy("limit " + kind + " " + what + " (" + std::to_string(limit) + ") is full");
    }
  }
  return Status::Ok();
}

void QueueMover::Impl::ReleaseSlots(std::vector<Lease>* slots) {
  for (Lease& l : *slots) {
    l.owner.clear();
    l.until_ms = 0;
    l.holds.clear();
    (void)dir().UpdateLease(&l);  // a slot not released lapses with its lease
  }
  slots->clear();
}

std::shared_ptr<Claim> QueueMover::Impl::TryClaim(bool* queue_idle) {
  *queue_idle = false;
  std::vector<QueueEntry> entries;
  std::vector<std::string> damaged;
  if (Status s = dir().ListQueue(&entries, &damaged); !s.ok()) {
    LogRepeating("cannot read the queue: " + s.message());
    return nullptr;
  }
  for (const auto& d : damaged) LogRepeating("skipping a damaged queue entry: " + d);
  const int64_t now = UnixMillis();
  std::vector<QueueEntry> takeovers, queued;
  bool busy = false;
  for (auto& e : entries) {
    if (e.state == QueueState::kQueued) {
      queued.push_back(e);
    } else if (e.state == QueueState::kActive) {
      busy = true;
      if (e.lease_until_ms < now) takeovers.push_back(e);
    }
  }
  if (queued.empty() && !busy) {
    *queue_idle = true;
    return nullptr;
  }
  if (queued.empty() && takeovers.empty()) return nullptr;
  // Oldest first, but each mover starts at a random place among the first
  // few, so that movers polling together do not all race for one entry.
  std::stable_sort(queued.begin(), queued.end(),
                   [](const QueueEntry& a, const QueueEntry& b) { return a.queued < b.queued; });
  if (queued.size() > 1) {
    std::lock_guard<std::mutex> l(mu);
    const size_t window = std::min<size_t>(queued.size(), size_t(4 * o.concurrency));
    std::rotate(queued.begin(), queued.begin() + std::uniform_int_distribution<size_t>(0, window - 1)(rng),
                queued.begin() + window);
  }
  std::vector<QueueEntry> order = std::move(takeovers);
  order.insert(order.end(), queued.begin(), queued.end());

  std::vector<Lease> lease_list;
  std::map<std::string, Lease> leases;
  if (Status s = dir().ListLeases(&lease_list); !s.ok()) {
    LogRepeating("cannot read the leases: " + s.message());
    return nullptr;
  }
  for (auto& l : lease_list) leases[l.name] = std::move(l);
  std::vector<StoreRecord> store_list;
  if (Status s = dir().ListStores(&store_list); !s.ok()) {
    LogRepeating("cannot read the stores: " + s.message());
    return nullptr;
  }
  std::map<std::string, StoreRecord> stores;
  for (auto& s : store_list) stores[s.name] = std::move(s);

  for (const QueueEntry& e : order) {
    if (!SlotsLookFree(e, leases, stores, UnixMillis())) continue;
    QueueEntry want = e;
    want.state = QueueState::kActive;
    want.owner = token;
    want.lease_until_ms = UnixMillis() + o.lease_ms;
    ++want.attempts;
    Status s = dir().UpdateQueueEntry(&want);
    if (s.code() == Status::Code::kConflict || s.IsNotFound()) {
      std::lock_guard<std::mutex> l(mu);
      ++rep.claim_conflicts;
      continue;
    }
    if (!s.ok()) {
      Log("cannot claim " + e.user + ": " + s.message());
      return nullptr;
    }
    auto c = std::make_shared<Claim>();
    c->entry = want;
    c->safe_until = want.lease_until_ms - o.lease_ms / 4;
    c->taken_over = e.state == QueueState::kActive;
    {
      std::lock_guard<std::mutex> l(mu);
      claims[e.mailbox] = c;
    }
    std::vector<Lease> slots;
    s = TakeSlots(want, leases, stores, &slots);
    if (!s.ok()) {
      // A limit filled since the listing (or the directory failed): hand
      // the entry back as it was and try another.
      {
        std::lock_guard<std::mutex> l(c->mu);
        QueueEntry back = c->entry;
        back.state = e.state;
        back.owner = e.owner;
        back.lease_until_ms = e.lease_until_ms;
        back.attempts = e.attempts;
        if (dir().UpdateQueueEntry(&back).ok()) c->entry = back;
      }
      std::lock_guard<std::mutex> l(mu);
      claims.erase(e.mailbox);
      continue;
    }
    {
      std::lock_guard<std::mutex> l(c->mu);
      c->slots = std::move(slots);
    }
    std::lock_guard<std::mutex> l(mu);
    ++rep.claimed;
    if (c->taken_over) ++rep.taken_over;
    return c;
  }
  return nullptr;
}

bool QueueMover::Impl::End(Claim& c, QueueState state, const std::string& result) {
  bool ok = false;
  Guid mailbox;
  {
    std::lock_guard<std::mutex> l(c.mu);
    mailbox = c.entry.mailbox;
    if (!c.lost) {
      QueueEntry e = c.entry;
      e.state = state;
      e.owner.clear();
      e.lease_until_ms = 0;
      e.result = result;
      Status s = dir().UpdateQueueEntry(&e);
      if (s.ok()) {
        c.entry = e;
        ok = true;
      } else {
        c.lost = true;
        Log("could not record " + std::string(QueueStateName(state)) + " for " + c.entry.user + ": " + s.message());
      }
    }
    ReleaseSlots(&c.slots);
  }
  std::lock_guard<std::mutex> l(mu);
  claims.erase(mailbox);
  if (!ok) {
    ++rep.lost;
  } else if (state == QueueState::kDone) {
    ++rep.done;
  } else if (state == QueueState::kFailed) {
    ++rep.failed;
  } else {
    ++rep.handed_back;
  }
  return ok;
}

void QueueMover::Impl::Work(const std::shared_ptr<Claim>& c) {
  QueueEntry e;
  {
    std::lock_guard<std::mutex> l(c->mu);
    e = c->entry;
  }
  // A transient failure hands the entry back for another claim, until it
  // has had kMaxAttempts; then it is failed.
  auto transient = [&](const std::string& why) {
    if (e.attempts >= kMaxAttempts) {
      End(*c, QueueState::kFailed, why + " (after " + std::to_string(e.attempts) + " attempts)");
    } else {
      Log("handing back " + e.user + ": " + why);
      End(*c, QueueState::kQueued, why);
    }
  };
  Log((c->taken_over ? "took over " : "claimed ") + e.user + " (" + e.source + " -> " + e.target + ", attempt " +
      std::to_string(e.attempts) + ")");

  // 1. What a previous owner left: finish its move past the switch, roll
  // back one before it.
  auto rec = dir().GetMove(e.mailbox);
  if (rec.ok()) {
    if (rec->source != e.source || rec->target != e.target) {
      End(*c, QueueState::kFailed,
          "the mailbox has another move recorded (" + rec->source + " -> " + rec->target + ", step " +
              std::string(MoveStepName(rec->step)) + "); run 'mbxmove recover', then queue it again");
      return;
    }
    if (PastSwitch(rec->step)) {
      Status s = FinishMove(org, *rec);
      if (!s.ok()) return transient("finishing the previous owner's switched move: " + s.message());
      {
        std::lock_guard<std::mutex> l(mu);
        ++rep.finished_for_previous;
      }
      End(*c, QueueState::kDone, "moved (a previous mover switched it; this one finished its clean-up)");
      return;
    }
    Status s = RollBackMove(org, *rec);
    if (!s.ok()) return transient("rolling back the previous owner's move: " + s.message());
    std::lock_guard<std::mutex> l(mu);
    ++rep.rolled_back_for_previous;
  } else if (!rec.status().IsNotFound()) {
    return transient("reading the move record: " + rec.status().message());
  }

  // 2. Where the mailbox is now.
  auto user = dir().GetUserByMailbox(e.mailbox);
  if (!user.ok()) {
    if (user.status().IsNotFound() || user.status().IsCorruption()) {
      End(*c, QueueState::kFailed, user.status().message());
      return;
    }
    return transient(user.status().message());
  }
  auto src = dir().GetStore(e.source);
  auto dst = dir().GetStore(e.target);
  for (auto* r : {&src, &dst}) {
    if (!r->ok()) {
      if (r->status().IsNotFound()) {
        End(*c, QueueState::kFailed, r->status().message());
        return;
      }
      return transient(r->status().message());
    }
  }
  if (user->home_mdb == dst->dn) {
    End(*c, QueueState::kDone, "moved (found in " + e.target + ")");
    return;
  }
  if (user->home_mdb != src->dn) {
    End(*c, QueueState::kFailed, "homeMDB of " + user->name + " names " + user->home_mdb + ", not the source store " +
                                     e.source);
    return;
  }

  // 3. The move.
  MoveOptions mo = o.move;
  mo.target = e.target;
  mo.concurrency = 1;
  mo.keep_source = e.keep_source;
  mo.retry.bad_item_limit = int(e.bad_item_limit);
  MoveTask task;
  task.user = *user;
  task.source = *src;
  task.target = *dst;
  task.called_off = [c] { return c->Reason(); };
  MailboxMover mover(org, mo, &counters);
  MailboxReport r = mover.Move(task);
  const bool moved = r.outcome != Outcome::kFailed;
  {
    std::lock_guard<std::mutex> l(mu);
    if (moved) {
      rep.bytes_moved += r.bytes_copied;
      rep.items_moved += r.items_copied;
    }
    rep.mailboxes.push_back(r);
  }
  if (moved) {
    std::string result = "moved " + std::to_string(r.items_copied) + " item(s) in " +
                         std::to_string(int64_t(r.seconds * 1000)) + " ms";
    if (!r.dropped.empty()) result += ", " + std::to_string(r.dropped.size()) + " dropped";
    if (!r.reason.empty()) result += "; " + r.reason;
    if (End(*c, QueueState::kDone, result)) Log("moved " + e.user + ": " + result);
    return;
  }
  const std::string why = c->Reason();
  if (why == kToldToStop) {
    End(*c, QueueState::kQueued, "handed back: " + r.reason);
    return;
  }
  if (!why.empty()) {
    Log("called off " + e.user + ": " + r.reason);
    End(*c, QueueState::kQueued, r.reason);  // writes nothing if the claim is lost
    return;
  }
  // Failures that may pass: not started (a full target), a store or the
  // directory unreachable or not answering.
  if (r.reason.rfind("not started", 0) == 0 || r.reason.find("cannot reach") != std::string::npos ||
      r.reason.find("did not answer") != std::string::npos) {
    return transient(r.reason);
  }
  Log("failed " + e.user + ": " + r.reason);
  End(*c, QueueState::kFailed, r.reason);
}

void QueueMover::Impl::RenewAll() {
  const int64_t now = UnixMillis();
  const int64_t until = now + o.lease_ms;
  // The claim is kept only while a renewal is sure to land before it
  // lapses: a renewal that fails with half the lease or less left gives it
  // up (with renewals every third of the lease: the second failure).
  auto must_give_up = [&](int64_t held_until) { return held_until - now <= o.lease_ms / 2; };
  {
    std::lock_guard<std::mutex> l(self_mu);
    if (!lost_self.load()) {
      Lease want = self;
      want.until_ms = until;
      Status s = dir().UpdateLease(&want);
      if (s.ok()) {
        self = want;
      } else if (s.code() == Status::Code::kConflict || s.IsNotFound() || must_give_up(self.until_ms)) {
        std::lock_guard<std::mutex> g(mu);
        lost_self_why = "lost its name's lease: " + s.message();
        lost_self.store(true);
      }
    }
  }
  std::vector<std::shared_ptr<Claim>> held;
  {
    std::lock_guard<std::mutex> l(mu);
    for (auto& [g, c] : claims) held.push_back(c);
  }
  for (auto& c : held) {
    std::lock_guard<std::mutex> l(c->mu);
    if (c->lost) continue;
    bool give_up = lost_self.load();
    std::string why = give_up ? "the mover lost its own lease" : "";
    QueueEntry e = c->entry;
    e.lease_until_ms = until;
    if (!give_up) {
      Status s = dir().UpdateQueueEntry(&e);
      if (s.ok()) {
        c->entry = e;
      } else if (s.code() == Status::Code::kConflict || s.IsNotFound() || must_give_up(c->entry.lease_until_ms)) {
        give_up = true;
        why = s.message();
      }
    }
    for (Lease& sl : c->slots) {
      if (give_up) break;
      Lease w = sl;
      w.until_ms = until;
      Status s = dir().UpdateLease(&w);
      if (s.ok()) {
        sl = w;
      } else if (s.code() == Status::Code::kConflict || s.IsNotFound() || must_give_up(sl.until_ms)) {
        give_up = true;
        why = "slot " + sl.name + ": " + s.message();
      }
    }
    if (!give_up) {
      int64_t earliest = c->entry.lease_until_ms;
      for (const Lease& sl : c->slots) earliest = std::min(earliest, sl.until_ms);
      c->safe_until = earliest - o.lease_ms / 4;
    }
    if (give_up) {
      c->lost = true;
      c->CallOff(kLostLease);
      Log("lost the lease on " + c->entry.user + " (" + why + "); calling its move off");
    }
  }
}

void QueueMover::Impl::RenewLoop() {
  const auto period = std::chrono::milliseconds(std::max<int64_t>(50, o.lease_ms / 3));
  std::unique_lock<std::mutex> l(mu);
  while (!workers_done) {
    if (cv.wait_for(l, period, [&] { return workers_done; })) break;
    l.unlock();
    RenewAll();
    l.lock();
  }
}

void QueueMover::Impl::WorkerLoop(const std::atomic<bool>& stop, const std::atomic<bool>& abandon) {
  while (!stop.load() && !abandon.load() && !lost_self.load()) {
    {
      std::lock_guard<std::mutex> l(mu);
      if (drained) return;
    }
    bool idle = false;
    auto c = TryClaim(&idle);
    if (c) {
      Work(c);
      continue;
    }
    std::unique_lock<std::mutex> l(mu);
    if (o.drain && idle && claims.empty()) {
      drained = true;
      cv.notify_all();
      return;
    }
    cv.wait_for(l, std::chrono::milliseconds(o.poll_ms), [&] { return drained || workers_done; });
  }
}

QueueMover::QueueMover(Organization& org, MoverOptions options)
    : impl_(std::make_unique<Impl>(org, std::move(options))) {}
QueueMover::~QueueMover() = default;

Result<MoverReport> QueueMover::Run(const std::atomic<bool>& stop, const std::atomic<bool>& abandon) {
  Impl& m = *impl_;
  if (m.o.concurrency < 1) return Status::InvalidArgument("--concurrency must be at least 1");
  if (m.o.lease_ms < 300) return Status::InvalidArgument("--lease must be at least 300 ms");
  if (Status s = Organization::ValidateName("mover name", m.o.name); !s.ok()) return s;
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t ops0 = m.dir().operations(), writes0 = m.dir().write_operations();
  MBX_RETURN_IF_ERROR(m.TakeName());
  m.Log("started (token " + m.token + ", " + std::to_string(m.o.concurrency) + " at a time, lease " +
        std::to_string(m.o.lease_ms) + " ms)");
  std::thread renewer([&m] { m.RenewLoop(); });
  // Calls the moves in flight off when told to abandon, or when the
  // mover's own lease is gone.
  std::thread watcher([&m, &abandon] {
    std::unique_lock<std::mutex> l(m.mu);
    while (!m.workers_done) {
      if (abandon.load() || m.lost_self.load()) {
        for (auto& [g, c] : m.claims) c->CallOff(m.lost_self.load() ? kLostLease : kToldToStop);
      }
      m.cv.wait_for(l, std::chrono::milliseconds(100), [&] { return m.workers_done; });
    }
  });
  std::vector<std::thread> workers;
  for (int i = 0; i < m.o.concurrency; ++i) {
    workers.emplace_back([&m, &stop, &abandon] { m.WorkerLoop(stop, abandon); });
  }
  for (auto& w : workers) w.join();
  {
    std::lock_guard<std::mutex> l(m.mu);
    m.workers_done = true;
  }
  m.cv.notify_all();
  renewer.join();
  watcher.join();
  m.ReleaseName();
  std::lock_guard<std::mutex> l(m.mu);
  MoverReport rep = m.rep;
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rep.directory_operations = m.dir().operations() - ops0;
  rep.directory_writes = m.dir().write_operations() - writes0;
  if (m.lost_self.load()) rep.stopped_because = m.lost_self_why;
  return rep;
}

}  // namespace mbx::engine
