#include "engine/batch_runner.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <string_view>
#include <thread>

#include "engine/queue_mover.h"

namespace mbx::engine {

namespace {

using Clock = std::chrono::steady_clock;

std::string HostPid() {
  char host[256] = "?";
  (void)gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(getpid());
}

std::string FormatMs(int64_t ms) {
  if (ms % 3600000 == 0 && ms >= 3600000) return std::to_string(ms / 3600000) + " h";
  if (ms % 60000 == 0 && ms >= 60000) return std::to_string(ms / 60000) + " min";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  return std::to_string(ms) + " ms";
}

bool Terminal(BatchState s) { return s == BatchState::kCompleted || s == BatchState::kStopped; }

// Re-reads the batch and applies `edit` until the guarded write goes
// through (another writer may come first: the runner, `batch complete`).
// `edit` returns a status to give up with (nothing written), or OK.
Status EditBatch(Directory& dir, const std::string& name, const std::function<Status(BatchRecord&)>& edit) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    MBX_ASSIGN_OR_RETURN(BatchRecord b, dir.GetBatch(name));
    MBX_RETURN_IF_ERROR(edit(b));
    Status s = dir.UpdateBatch(&b);
    if (s.code() != Status::Code::kConflict) return s;
  }
  return Status::Conflict("batch '" + name + "' kept changing under 50 attempts to write it");
}

}  // namespace

std::string BatchLeaseName(const std::string& batch) { return "batch." + batch; }

bool BatchRunnerLive(Organization& org, const std::string& batch) {
  auto l = org.directory().GetLease(BatchLeaseName(batch));
  return l.ok() && !l->owner.empty() && l->until_ms >= UnixMillis();
}

Result<int64_t> ParseDurationMs(const std::string& text, int64_t unit_ms) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == 0) return Status::InvalidArgument("duration '" + text + "' does not start with a number");
  double v = 0;
  try {
    size_t used = 0;
    v = std::stod(text.substr(0, i), &used);
    if (used != i) throw std::invalid_argument("x");
  } catch (...) {
    return Status::InvalidArgument("duration '" + text + "' is not a number");
  }
  const std::string unit = text.substr(i);
  double mult;
  if (unit.empty()) {
    mult = double(unit_ms);
  } else if (unit == "ms") {
    mult = 1;
  } else if (unit == "s") {
    mult = 1000;
  } else if (unit == "m" || unit == "min") {
    mult = 60000;
  } else if (unit == "h") {
    mult = 3600000;
  } else if (unit == "d") {
    mult = 86400000;
  } else {
    return Status::InvalidArgument("duration '" + text + "': unknown unit '" + unit + "' (ms, s, m, h or d)");
  }
  const double ms = v * mult;
  if (!(ms >= 0) || ms > 3.0e11) return Status::InvalidArgument("duration '" + text + "' is out of range");
  return int64_t(ms);
}

namespace {
bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}
}  // namespace

double InitialCopyFraction(const BatchMember& m) {
  if (m.bytes_total == 0 || m.state == MemberState::kFailed || m.state == MemberState::kStopped) return -1;
  if (m.state == MemberState::kQueued) return 0;
  if (m.state == MemberState::kSyncing) return std::min(1.0, double(m.bytes_copied) / double(m.bytes_total));
  return 1;
}

InitialCopyProgress InitialCopies(const BatchRecord& b, bool runner_live, int64_t now_ms) {
  InitialCopyProgress p;
  for (const BatchMember& m : b.members) {
    if (const double f = InitialCopyFraction(m); f >= 0) {
      p.total += m.bytes_total;
      p.done += uint64_t(f * double(m.bytes_total));
    }
  }
  const double elapsed = double(now_ms - b.started_ms) / 1000.0;
  if (runner_live && b.state == BatchState::kRunning && b.started_ms > 0 && elapsed > 0 && p.done > 0 &&
      p.done < p.total) {
    p.bytes_per_s = double(p.done) / elapsed;
    p.seconds_left = double(p.total - p.done) / p.bytes_per_s;
  }
  return p;
}

Status CreateBatch(Organization& org, BatchRecord* b, const std::vector<PlannedMove>& plan) {
  Directory& dir = org.directory();
  MBX_RETURN_IF_ERROR(ValidateBatchName(b->name));
  if (b->concurrency < 1 || b->concurrency > 256) {
    return Status::InvalidArgument("--concurrency must be between 1 and 256");
  }
  if (b->sync_interval_ms < 10) return Status::InvalidArgument("--sync-interval must be at least 10 ms");
  if (plan.empty()) return Status::InvalidArgument("the batch has no mailboxes");
  std::string errors;
  std::set<Guid> seen;
  b->members.clear();
  for (const PlannedMove& p : plan) {
    if (!p.error.empty()) {
      errors += "\n  " + p.task.user.name + ": " + p.error;
      continue;
    }
    if (!seen.insert(p.task.user.mailbox).second) continue;  // named twice
    BatchMember m;
    m.mailbox = p.task.user.mailbox;
    m.user = p.task.user.name;
    m.source = p.task.source.name;
    m.bytes_total = p.task.stored_bytes;
    b->members.push_back(std::move(m));
  }
  if (!errors.empty()) return Status::InvalidArgument("the batch cannot take these mailboxes:" + errors);
  // A mailbox belongs to one batch at a time, and a name (without regard to
  // case) to one batch. The check is made before the add and again after
  // it: a batch that finds, after its own add, another batch holding one of
  // its mailboxes or its name in another case takes itself back, so of two
  // batches created at once at least one gives way.
  auto clash = [&](bool after) -> std::string {
    std::vector<BatchRecord> all;
    std::vector<std::string> damaged;
    if (Status s = dir.ListBatches(&all, &damaged); !s.ok()) return "listing batches: " + s.message();
    for (const BatchRecord& other : all) {
      if (other.name == b->name) continue;
      if (EqualsIgnoringCase(other.name, b->name)) {
        // The LDAP directory compares names (cn) without case; the LMDB one
        // is made to refuse the same names, so a batch name means one batch
        // whichever backend holds it. (After the add: one created at the
        // same moment under the name in another case; this one gives way.)
        return "a batch named '" + other.name + "' exists" + (after ? " (created at the same moment as this one)" : "") +
               "; batch names are compared without regard to case";
      }
      for (const BatchMember& om : other.members) {
        if (seen.count(om.mailbox)) {
          return "mailbox of " + om.user + " is already in batch '" + other.name + "' (" +
                 std::string(MemberStateName(om.state)) + "); a mailbox is in one batch at a time: remove that " +
                 "batch first ('mbxmove batch remove --name " + other.name + "')" +
                 (after ? " (created at the same moment as this one)" : "");
        }
      }
    }
    return "";
  };
  if (std::string why = clash(false); !why.empty()) return Status::AlreadyExists(why);
  b->state = BatchState::kCreated;
  b->created = NowIso8601();
  MBX_RETURN_IF_ERROR(dir.AddBatch(b));
  if (std::string why = clash(true); !why.empty()) {
    (void)dir.DeleteBatch(b->name, b->version);
    return Status::AlreadyExists(why);
  }
  return Status::Ok();
}

Status RequestComplete(Organization& org, const std::string& name) {
  return EditBatch(org.directory(), name, [&](BatchRecord& b) -> Status {
    switch (b.state) {
      case BatchState::kCreated:
        return Status::Conflict("batch '" + name + "' has not been started: nothing is synced to complete "
                                "('mbxmove batch start --name " + name + "')");
      case BatchState::kCompleting: return Status::Conflict("batch '" + name + "' is already completing");
      case BatchState::kCompleted: return Status::Conflict("batch '" + name + "' is already completed");
      case BatchState::kStopping:
      case BatchState::kStopped:
        return Status::Conflict("batch '" + name + "' is " + std::string(BatchStateName(b.state)) +
                                "; a stopped batch cannot be completed");
      case BatchState::kRunning: break;
    }
    std::string behind;
    size_t n = 0;
    for (const BatchMember& m : b.members) {
      if (m.state == MemberState::kQueued || m.state == MemberState::kSyncing) {
        if (n++ < 5) behind += (behind.empty() ? "" : ", ") + m.user + " (" + std::string(MemberStateName(m.state)) + ")";
      }
    }
    if (n > 0) {
      return Status::Conflict("batch '" + name + "' is not synced: " + std::to_string(n) + " mailbox(es) still " +
                              "copying: " + behind + (n > 5 ? ", ..." : "") +
                              "; complete it once 'mbxmove batch status' shows every mailbox synced");
    }
    b.state = BatchState::kCompleting;
    return Status::Ok();
  });
}

bool KeptForResume(const BatchRecord& b, const BatchMember& m, const MoveRecord& rec) {
  return (b.state == BatchState::kRunning || b.state == BatchState::kCompleting) && m.state == MemberState::kSynced &&
         m.dropped == 0 && rec.step == MoveStep::kSyncing && rec.target == b.target;
}

namespace {

// Members left syncing, synced or completing by a runner that is gone: the
// move finished if it passed its switch, rolled back if not; the member then
// completed (homeMDB names the target) or queued. With keep_synced, a synced
// member whose move is still at `syncing` is left for the next runner to
// resume (KeptForResume). True if any changed.
Result<bool> ResetMembers(Organization& org, BatchRecord* b, bool keep_synced,
                          const std::function<void(const std::string&)>& note) {
  Directory& dir = org.directory();
  MBX_ASSIGN_OR_RETURN(StoreRecord target, dir.GetStore(b->target));
  bool changed = false;
  for (BatchMember& m : b->members) {
    if (m.state != MemberState::kSyncing && m.state != MemberState::kSynced && m.state != MemberState::kCompleting) {
      continue;
    }
    auto rec = dir.GetMove(m.mailbox);
    if (rec.ok() && rec->target != b->target) {
      // Not the batch's move: another one holds the mailbox.
      const MemberState was = m.state;
      m.state = MemberState::kFailed;
      m.result = "the mailbox has another move recorded (" + rec->source + " -> " + rec->target + ", step " +
                 std::string(MoveStepName(rec->step)) + ")";
      changed = true;
      if (note) note(m.user + ": " + std::string(MemberStateName(was)) + " -> failed: " + m.result);
      continue;
    }
    if (rec.ok() && keep_synced && KeptForResume(*b, m, *rec)) continue;
    if (rec.ok()) {
      Status s = PastSwitch(rec->step) ? FinishMove(org, *rec) : RollBackMove(org, *rec);
      MBX_RETURN_IF_ERROR(s.WithContext((PastSwitch(rec->step) ? "finishing" : "rolling back") +
                                        std::string(" the move of ") + m.user));
    } else if (!rec.status().IsNotFound()) {
      return rec.status();
    }
    MBX_ASSIGN_OR_RETURN(UserRecord user, dir.GetUserByMailbox(m.mailbox));
    const MemberState was = m.state;
    if (user.home_mdb == target.dn) {
      m.state = MemberState::kCompleted;
      m.result = "moved (its clean-up finished after its runner stopped)";
    } else {
      m.state = MemberState::kQueued;
      m.result = "its runner stopped while it was " + std::string(MemberStateName(was)) +
                 "; copied again at the next start";
    }
    changed = true;
    if (note) note(m.user + ": " + std::string(MemberStateName(was)) + " -> " + std::string(MemberStateName(m.state)));
  }
  return changed;
}

}  // namespace

Status ReconcileBatch(Organization& org, const std::string& name, std::vector<std::string>* notes) {
  Directory& dir = org.directory();
  if (BatchRunnerLive(org, name)) return Status::Ok();
  MBX_ASSIGN_OR_RETURN(BatchRecord b, dir.GetBatch(name));
  MBX_ASSIGN_OR_RETURN(bool changed, ResetMembers(org, &b, /*keep_synced=*/true, [&](const std::string& line) {
    if (notes != nullptr) notes->push_back("batch " + name + ": " + line);
  }));
  if (!changed) return Status::Ok();
  // Guarded: a runner that started meanwhile wins, and resets them itself.
  Status s = dir.UpdateBatch(&b);
  return s.code() == Status::Code::kConflict ? Status::Ok() : s;
}

Status StopBatch(Organization& org, const std::string& name, const std::string& why) {
  Directory& dir = org.directory();
  MBX_ASSIGN_OR_RETURN(BatchRecord b, dir.GetBatch(name));
  if (Terminal(b.state)) {
    return Status::Conflict("batch '" + name + "' is already " + std::string(BatchStateName(b.state)));
  }
  const bool live = BatchRunnerLive(org, name);
  MBX_RETURN_IF_ERROR(EditBatch(dir, name, [&](BatchRecord& r) -> Status {
    if (Terminal(r.state)) return Status::Conflict("batch '" + name + "' is already " + std::string(BatchStateName(r.state)));
    r.state = BatchState::kStopping;
    r.result = why;
    return Status::Ok();
  }));
  if (live) return Status::Ok();  // the runner rolls its members back and ends the batch
  // No runner: what a dead one left is rolled back here, then every member
  // not completed is stopped.
  MBX_RETURN_IF_ERROR(ReconcileBatch(org, name, nullptr));
  return EditBatch(dir, name, [&](BatchRecord& r) -> Status {
    if (r.state != BatchState::kStopping) return Status::Ok();
    for (BatchMember& m : r.members) {
      if (!MemberDone(m.state)) {
        m.state = MemberState::kStopped;
        m.result = why;
      }
    }
    r.state = BatchState::kStopped;
    r.finished_ms = UnixMillis();
    return Status::Ok();
  });
}

Status RemoveBatch(Organization& org, const std::string& name) {
  Directory& dir = org.directory();
  MBX_ASSIGN_OR_RETURN(BatchRecord b, dir.GetBatch(name));
  if (b.state != BatchState::kCreated && !Terminal(b.state)) {
    return Status::Conflict("batch '" + name + "' is " + std::string(BatchStateName(b.state)) +
                            "; stop it first ('mbxmove batch stop --name " + name + "')");
  }
  Status s = dir.DeleteBatch(name, b.version);
  if (s.code() == Status::Code::kConflict) return Status::Conflict("batch '" + name + "' changed meanwhile; try again");
  return s;
}

// ---------------------------------------------------------------------------
// The runner.

namespace {

struct Runner {
  Organization& org;
  BatchRunOptions o;
  const std::atomic<bool>& stop;
  std::string token;
  // Each member's moves have a mover of their own, so that its counters
  // are the member's progress (the initial copy's items and bytes so far).
  // Kept until the runner ends: a session refers to its mover.
  struct MemberMover {
    MoveCounters counters;
    std::unique_ptr<MailboxMover> mover;
  };
  MoveOptions move_options;
  std::map<size_t, std::unique_ptr<MemberMover>> movers;  // GUARDED_BY(mu); a MemberMover is the member's job's
  MailboxMover* MoverFor(size_t i) {
    std::lock_guard<std::mutex> l(mu);
    auto& mm = movers[i];
    if (mm == nullptr) {
      mm = std::make_unique<MemberMover>();
      mm->mover = std::make_unique<MailboxMover>(org, move_options, &mm->counters);
    }
    return mm->mover.get();
  }

  std::mutex lease_mu;
  Lease lease;  // GUARDED_BY(lease_mu)
  std::atomic<bool> lease_lost{false};

  std::mutex mu;
  std::condition_variable cv;
  BatchRecord rec;                                          // GUARDED_BY(mu): members are this runner's
  std::map<size_t, MailboxMover::OnlineSessionPtr> sessions;  // GUARDED_BY(mu) unless the member is busy
  std::set<size_t> busy;                                    // GUARDED_BY(mu): members with a job in flight
  std::string stop_reason;                                  // GUARDED_BY(mu)
  bool resumable_stop = false;                              // GUARDED_BY(mu)
  std::vector<MailboxReport> reports;                       // GUARDED_BY(mu)
  uint64_t passes = 0;                                      // GUARDED_BY(mu)
  std::vector<std::thread> threads;                         // the main thread's

  Runner(Organization& org_in, const BatchRunOptions& options, const std::atomic<bool>& stop_in)
      : org(org_in), o(options), stop(stop_in) {
    token = "batch-runner:" + HostPid() + "#" + std::to_string(UnixMillis());
  }

  Directory& dir() { return org.directory(); }
  void Log(const std::string& line) {
    if (o.log) o.log("batch " + o.name + ": " + line);
  }

  std::string CalledOff() {
    std::lock_guard<std::mutex> l(mu);
    return stop_reason;
  }

  Status TakeLease() {
    Lease want;
    want.name = BatchLeaseName(o.name);
    want.owner = token;
    want.until_ms = UnixMillis() + o.lease_ms;
    want.holds = HostPid();
    auto cur = dir().GetLease(want.name);
    if (!cur.ok() && !cur.status().IsNotFound()) return cur.status();
    const std::string taken = "batch '" + o.name + "' has a runner already";
    if (cur.ok()) {
      if (!cur->owner.empty() && cur->until_ms >= UnixMillis()) {
        return Status::Busy(taken + ": " + cur->holds + ", its lease good for another " +
                            std::to_string((cur->until_ms - UnixMillis() + 999) / 1000) +
                            " s (a runner still running, or one killed less than its lease ago)");
      }
      want.version = cur->version;
      Status s = dir().UpdateLease(&want);
      if (s.code() == Status::Code::kConflict) return Status::Busy(taken + " (it started just now)");
      MBX_RETURN_IF_ERROR(s);
    } else {
      Status s = dir().AddLease(&want);
      if (s.code() == Status::Code::kAlreadyExists) return Status::Busy(taken + " (it started just now)");
      MBX_RETURN_IF_ERROR(s);
    }
    std::lock_guard<std::mutex> l(lease_mu);
    lease = want;
    return Status::Ok();
  }

  // Renews the lease every third of it; gives up (calling everything off)
  // once a renewal fails with half the lease or less left.
  void RenewLoop(const std::atomic<bool>& done) {
    int64_t next = UnixMillis() + o.lease_ms / 3;
    while (!done.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::max<int64_t>(5, std::min<int64_t>(50, o.lease_ms / 10))));
      if (UnixMillis() < next) continue;
      std::lock_guard<std::mutex> l(lease_mu);
      Lease want = lease;
      want.until_ms = UnixMillis() + o.lease_ms;
      Status s = dir().UpdateLease(&want);
      if (s.ok()) {
        lease = want;
        next = UnixMillis() + o.lease_ms / 3;
      } else if (s.code() == Status::Code::kConflict || s.IsNotFound() || lease.until_ms - UnixMillis() <= o.lease_ms / 2) {
        lease_lost = true;
        std::lock_guard<std::mutex> m(mu);
        if (stop_reason.empty()) stop_reason = "the runner lost the batch's lease (" + s.message() + ")";
        resumable_stop = true;
        cv.notify_all();
        return;
      } else {
        next = UnixMillis() + 200;
      }
    }
  }

  void ReleaseLease() {
    std::lock_guard<std::mutex> l(lease_mu);
    if (!lease_lost) (void)dir().DeleteLease(lease.name, lease.version);
  }

  // Writes the runner's members (and `state_edit` of the batch's own
  // state) guarded; on a conflict re-reads the batch, keeps its state and
  // settings, puts the members back, and tries again. Called with mu held.
  Status SaveLocked(const std::function<void(BatchRecord&)>& state_edit = nullptr) {
    BatchRecord want = rec;
    if (state_edit) state_edit(want);
    for (int attempt = 0; attempt < 50; ++attempt) {
      Status s = dir().UpdateBatch(&want);
      if (s.ok()) {
        rec = want;
        return s;
      }
      if (s.code() != Status::Code::kConflict) return s;
      MBX_ASSIGN_OR_RETURN(BatchRecord fresh, dir().GetBatch(o.name));
      fresh.members = rec.members;
      fresh.runner = rec.runner;
      fresh.started_ms = rec.started_ms;
      want = fresh;
      if (state_edit) state_edit(want);
    }
    return Status::Conflict("batch '" + o.name + "' kept changing under 50 attempts to write it");
  }

  // (rec is not read here: the caller copied what it needs under mu.)
  MoveTask TaskFor(const BatchMember& m, const std::string& target, std::string* why) {
    MoveTask t;
    auto user = dir().GetUserByMailbox(m.mailbox);
    if (!user.ok()) {
      *why = user.status().message();
      return t;
    }
    auto dst = dir().GetStore(target);
    if (!dst.ok()) {
      *why = dst.status().message();
      return t;
    }
    std::vector<StoreRecord> stores;
    if (Status s = dir().ListStores(&stores); !s.ok()) {
      *why = s.message();
      return t;
    }
    const StoreRecord* src = nullptr;
    for (const auto& s : stores) {
      if (s.dn == user->home_mdb) src = &s;
    }
    if (user->home_mdb == dst->dn) {
      *why = "already in " + target;
    } else if (src == nullptr) {
      *why = "homeMDB of " + user->name + " names no registered store (" + user->home_mdb + ")";
    } else {
      t.user = *user;
      t.source = *src;
      t.target = *dst;
    }
    t.called_off = [this] { return CalledOff(); };
    return t;
  }

  static void Note(const MailboxMover::OnlineSession& s, BatchMember& m) {
    const auto p = MailboxMover::Progress(s);
    m.passes = p.passes;
    m.items_copied = p.items_copied;
    m.bytes_copied = p.bytes_copied;
    m.items_behind = p.last_pass_items;
    m.dropped = uint32_t(p.dropped);
    m.last_sync_ms = UnixMillis();
  }

  // A member's failure: a failed pass is copied again (up to 3 initial
  // copies in all); anything else fails the member.
  void Failed(size_t i, const std::string& why, bool retry, const MailboxReport* r) {
    std::lock_guard<std::mutex> l(mu);
    sessions.erase(i);
    BatchMember& m = rec.members[i];
    if (!stop_reason.empty()) {
      m.state = resumable_stop ? MemberState::kQueued : MemberState::kStopped;
      m.result = stop_reason;
    } else if (retry && m.attempts < 3) {
      m.state = MemberState::kQueued;
      m.result = "copied again after: " + why;
      Log(m.user + ": " + why + "; copying it again");
    } else {
      m.state = MemberState::kFailed;
      m.result = why;
      Log(m.user + " failed: " + why);
      if (r != nullptr) reports.push_back(*r);
    }
    (void)SaveLocked();
  }

  void Initial(size_t i) {
    BatchMember m;
    std::string target;
    {
      std::lock_guard<std::mutex> l(mu);
      target = rec.target;
      BatchMember& rm = rec.members[i];
      rm.state = MemberState::kSyncing;
      ++rm.attempts;
      rm.result.clear();
      m = rm;
      (void)SaveLocked();
    }
    std::string why;
    MoveTask task = TaskFor(m, target, &why);
    if (!why.empty()) {
      if (why.rfind("already in ", 0) == 0) {
        std::lock_guard<std::mutex> l(mu);
        rec.members[i].state = MemberState::kCompleted;
        rec.members[i].result = "moved (found in " + rec.target + ")";
        (void)SaveLocked();
        return;
      }
      return Failed(i, why, false, nullptr);
    }
    // Its size now (it may have grown since the batch was made), for the
    // progress `batch status` shows.
    if (auto src = org.GetHandle(task.source.name); src.ok()) {
      if (auto h = (*src)->GetMailbox(m.mailbox); h.ok()) {
        std::lock_guard<std::mutex> l(mu);
        rec.members[i].bytes_total = h->stored_bytes;
      }
    }
    Log(m.user + ": initial copy (" + task.source.name + " -> " + task.target.name + ")");
    MailboxReport failed;
    {
      // A copy started again (after a failed one) counts its progress from
      // zero: the member keeps its mover, and the counters of the copy before.
      std::lock_guard<std::mutex> l(mu);
      if (auto it = movers.find(i); it != movers.end()) {
        it->second->counters.items_done.store(0, std::memory_order_relaxed);
        it->second->counters.bytes_done.store(0, std::memory_order_relaxed);
      }
    }
    MailboxMover* mover = MoverFor(i);
    auto session = mover->StartOnline(task, &failed);
    if (session == nullptr) return Failed(i, failed.reason, false, &failed);
    // The changes made during the copy, at once (unless the runner is
    // stopping: the copy is whole, its header last, so it is kept as synced
    // like any other, for the next runner or the roll-back of a stop).
    auto n = mover->SyncOnline(session.get());
    if (!n.ok() && MailboxMover::Ended(*session)) return Failed(i, n.status().message(), true, nullptr);
    std::lock_guard<std::mutex> l(mu);
    if (n.ok()) ++passes;
    BatchMember& rm = rec.members[i];
    Note(*session, rm);
    rm.state = MemberState::kSynced;
    Log(rm.user + ": synced (" + std::to_string(rm.items_copied) + " items; " +
        (n.ok() ? "the first pass found " + std::to_string(rm.items_behind) + " changed)"
                : "no first pass: " + n.status().message() + ")"));
    sessions[i] = std::move(session);
    (void)SaveLocked();
  }

  void Pass(size_t i, MailboxMover::OnlineSession* s) {
    auto n = MoverFor(i)->SyncOnline(s);
    // Called off before the pass: the member stays synced, its move as it
    // was (the runner's exit keeps or rolls back every such move).
    if (!n.ok() && !MailboxMover::Ended(*s)) return;
    if (!n.ok()) return Failed(i, n.status().message(), true, nullptr);
    std::lock_guard<std::mutex> l(mu);
    ++passes;
    Note(*s, rec.members[i]);
    (void)SaveLocked();
  }

  void Complete(size_t i, MailboxMover::OnlineSession* s) {
    {
      std::lock_guard<std::mutex> l(mu);
      rec.members[i].state = MemberState::kCompleting;
      (void)SaveLocked();
    }
    MailboxReport r = MoverFor(i)->CompleteOnline(s);
    if (r.outcome == Outcome::kFailed) return Failed(i, r.reason, false, &r);
    std::lock_guard<std::mutex> l(mu);
    BatchMember& m = rec.members[i];
    Note(*s, m);
    sessions.erase(i);
    m.state = MemberState::kCompleted;
    m.lock_ms = r.lock_ms;
    m.dropped = uint32_t(r.dropped.size());
    char buf[160];
    std::snprintf(buf, sizeof buf, "moved %llu item(s) in %u pass(es); lock window %.1f ms",
                  (unsigned long long)r.items_copied, unsigned(r.passes), r.lock_ms);
    m.result = buf;
    if (!r.dropped.empty()) m.result += "; " + std::to_string(r.dropped.size()) + " item(s) dropped";
    if (!r.reason.empty()) m.result += "; " + r.reason;
    Log(m.user + ": completed, " + m.result);
    reports.push_back(std::move(r));
    (void)SaveLocked();
  }

  void Launch(size_t i, std::function<void()> job) {
    busy.insert(i);
    threads.emplace_back([this, i, job = std::move(job)] {
      job();
      std::lock_guard<std::mutex> l(mu);
      busy.erase(i);
      cv.notify_all();
    });
  }

  Result<BatchRunReport> Run();
};

Result<BatchRunReport> Runner::Run() {
  MBX_RETURN_IF_ERROR(ValidateBatchName(o.name));
  {
    MBX_ASSIGN_OR_RETURN(BatchRecord b, dir().GetBatch(o.name));
    if (Terminal(b.state)) {
      return Status::Conflict("batch '" + o.name + "' is " + std::string(BatchStateName(b.state)) +
                              ": there is nothing to run");
    }
  }
  MBX_RETURN_IF_ERROR(TakeLease());
  std::atomic<bool> done{false};
  std::thread renewer([&] { RenewLoop(done); });
  struct Join {
    Runner* r;
    std::atomic<bool>* done;
    std::thread* renewer;
    ~Join() {
      for (auto& t : r->threads) t.join();
      done->store(true);
      renewer->join();
      r->ReleaseLease();
    }
  } join{this, &done, &renewer};

  // What an earlier runner left, then the batch as this runner's.
  {
    MBX_ASSIGN_OR_RETURN(BatchRecord b, dir().GetBatch(o.name));
    MBX_ASSIGN_OR_RETURN(bool changed, ResetMembers(org, &b, /*keep_synced=*/true, [this](const std::string& line) {
      Log("left by an earlier runner: " + line);
    }));
    (void)changed;
    std::lock_guard<std::mutex> l(mu);
    rec = b;
    rec.runner = HostPid();
    if (rec.started_ms == 0) rec.started_ms = UnixMillis();
  }
  MoveOptions mo = o.move;
  mo.target = rec.target;
  mo.concurrency = 1;
  mo.online = true;
  mo.keep_source = rec.keep_source;
  mo.retry.bad_item_limit = int(rec.bad_item_limit);
  move_options = mo;
  // Synced members whose moves an earlier runner left at `syncing`: taken up
  // from what their targets hold, instead of copied again.
  for (size_t i = 0; i < rec.members.size(); ++i) {
    BatchMember& m = rec.members[i];
    if (m.state != MemberState::kSynced) continue;
    auto mr = dir().GetMove(m.mailbox);
    std::string why;
    MoveTask task;
    if (mr.ok()) task = TaskFor(m, rec.target, &why);
    MailboxMover::OnlineSessionPtr session;
    if (!mr.ok()) {
      why = mr.status().message();
    } else if (why.empty()) {
      MailboxReport failed;
      session = MoverFor(i)->ResumeOnline(task, *mr, &failed);
      if (session == nullptr) why = failed.reason;
    }
    if (session == nullptr) {
      Log(m.user + ": not resumed (" + why + "); copied again");
      m.state = MemberState::kQueued;
      m.result = "not resumed after its runner stopped: " + why;
      continue;
    }
    Log(m.user + ": resumed from its target (" + std::to_string(MailboxMover::Progress(*session).items_copied) +
        " items there)");
    m.last_sync_ms = 0;  // a pass at once
    m.result.clear();
    std::lock_guard<std::mutex> l(mu);
    sessions[i] = std::move(session);
  }
  {
    std::lock_guard<std::mutex> l(mu);
    MBX_RETURN_IF_ERROR(SaveLocked([](BatchRecord& r) {
      if (r.state == BatchState::kCreated) r.state = BatchState::kRunning;
    }));
  }
  Log("running: " + std::to_string(rec.members.size()) + " mailbox(es) to " + rec.target + ", " +
      std::to_string(rec.concurrency) + " at a time, a pass every " + FormatMs(rec.sync_interval_ms));
  const auto t0 = Clock::now();
  const uint64_t ops0 = dir().operations();

  std::unique_lock<std::mutex> l(mu);
  int64_t last_read = 0;
  for (;;) {
    const int64_t now = UnixMillis();
    // The batch's own state (batch complete/stop write it).
    if (now - last_read >= o.poll_ms) {
      last_read = now;
      l.unlock();
      auto fresh = dir().GetBatch(o.name);
      l.lock();
      if (fresh.ok()) {
        rec.state = fresh->state;
        rec.result = fresh->result;
        rec.version = fresh->version;
      } else if (fresh.status().IsNotFound()) {
        if (stop_reason.empty()) stop_reason = "the batch was removed";
      } else {
        Log("cannot read the batch: " + fresh.status().message());
      }
      // The initial copies' progress, for `batch status`.
      bool progressed = false;
      for (size_t i : busy) {
        BatchMember& m = rec.members[i];
        auto it = movers.find(i);
        if (m.state != MemberState::kSyncing || it == movers.end()) continue;
        const uint64_t items = it->second->counters.items_done.load(std::memory_order_relaxed);
        if (items != m.items_copied) {
          m.items_copied = items;
          m.bytes_copied = it->second->counters.bytes_done.load(std::memory_order_relaxed);
          progressed = true;
        }
      }
      if (progressed) (void)SaveLocked();
    }
    if (stop_reason.empty()) {
      if (stop.load()) {
        stop_reason = "the runner was told to stop";
        resumable_stop = true;
      } else if (rec.state == BatchState::kStopping) {
        stop_reason = rec.result.empty() ? "stopped by 'mbxmove batch stop'" : rec.result;
      } else if (rec.cancel_after_ms > 0 && now >= rec.started_ms + rec.cancel_after_ms) {
        stop_reason = "cancelled: still running " + FormatMs(rec.cancel_after_ms) + " after its start (--cancel-after)";
      }
      if (!stop_reason.empty()) Log("stopping: " + stop_reason);
    }
    if (!stop_reason.empty()) {
      // Called off: the jobs in flight see it before their next batch and
      // before their switch.
      cv.wait(l, [&] { return busy.empty(); });
      l.unlock();
      for (auto& t : threads) t.join();
      threads.clear();
      l.lock();
      // Told to stop (or the lease lost): the synced members' moves stay at
      // `syncing` for the next runner to resume. Stopped: rolled back.
      if (!resumable_stop) {
        for (auto& [i, s] : sessions) {
          l.unlock();
          MoverFor(i)->AbortOnline(s.get(), stop_reason);
          l.lock();
          rec.members[i].state = MemberState::kStopped;
          rec.members[i].result = stop_reason;
        }
      }
      sessions.clear();
      if (!resumable_stop) {
        for (BatchMember& m : rec.members) {
          if (!MemberDone(m.state)) {
            m.state = MemberState::kStopped;
            m.result = stop_reason;
          }
        }
      }
      break;
    }
    // Completion: asked for, or its time has come.
    const bool due = (rec.complete_at_ms > 0 && now >= rec.complete_at_ms) ||
                     (rec.complete_delay_ms >= 0 && now >= rec.started_ms + rec.complete_delay_ms);
    if (due && rec.state == BatchState::kRunning) {
      Log("completing (--complete-after)");
      (void)SaveLocked([](BatchRecord& r) {
        if (r.state == BatchState::kRunning) r.state = BatchState::kCompleting;
      });
    }
    const bool completing = rec.state == BatchState::kCompleting;
    // Work, at most `concurrency` jobs at once: completions first, then
    // passes that are due, then initial copies.
    int64_t next_due = now + o.poll_ms;
    for (int kind = 0; kind < 3; ++kind) {
      for (size_t i = 0; i < rec.members.size() && busy.size() < rec.concurrency; ++i) {
        if (busy.count(i)) continue;
        BatchMember& m = rec.members[i];
        auto s = sessions.find(i);
        if (kind == 0 && s == sessions.end() &&
            (m.state == MemberState::kSyncing || m.state == MemberState::kSynced ||
             m.state == MemberState::kCompleting)) {
          // (Cannot happen: such a member has a job or a session. Were it
          // so, it would wait for ever; copied again instead.)
          Log(m.user + ": " + std::string(MemberStateName(m.state)) + " with no move in this runner; copied again");
          m.state = MemberState::kQueued;
        }
        if (kind == 0 && completing && m.state == MemberState::kSynced && s != sessions.end()) {
          Launch(i, [this, i, p = s->second.get()] { Complete(i, p); });
        } else if (kind == 1 && m.state == MemberState::kSynced && s != sessions.end() && !completing) {
          if (now >= m.last_sync_ms + rec.sync_interval_ms) {
            Launch(i, [this, i, p = s->second.get()] { Pass(i, p); });
          } else {
            next_due = std::min(next_due, m.last_sync_ms + rec.sync_interval_ms);
          }
        } else if (kind == 2 && m.state == MemberState::kQueued) {
          Launch(i, [this, i] { Initial(i); });
        }
      }
    }
    bool all_done = busy.empty();
    for (const BatchMember& m : rec.members) all_done = all_done && MemberDone(m.state);
    if (all_done) break;
    if (rec.complete_at_ms > 0) next_due = std::min(next_due, std::max(now + 1, rec.complete_at_ms));
    cv.wait_for(l, std::chrono::milliseconds(std::max<int64_t>(1, next_due - now)));
    // Joins what ended.
    if (busy.empty() && !threads.empty()) {
      l.unlock();
      for (auto& t : threads) t.join();
      threads.clear();
      l.lock();
    }
  }

  BatchRunReport out;
  if (!stop_reason.empty() && resumable_stop) {
    out.ended = "interrupted: " + stop_reason;
    (void)SaveLocked();
  } else if (!stop_reason.empty()) {
    out.ended = "stopped: " + stop_reason;
    const std::string why = stop_reason;
    (void)SaveLocked([why](BatchRecord& r) {
      r.state = BatchState::kStopped;
      if (r.result.empty()) r.result = why;
      r.finished_ms = UnixMillis();
    });
  } else {
    out.ended = "completed";
    (void)SaveLocked([](BatchRecord& r) {
      r.state = BatchState::kCompleted;
      r.finished_ms = UnixMillis();
    });
  }
  out.batch = rec;
  out.passes = passes;
  out.moves.mailboxes = reports;
  out.moves.concurrency = int(rec.concurrency);
  out.moves.wall_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  out.moves.directory = DirectoryFigures::From(dir().Describe(), reports, ops0, dir().operations());
  Log(out.ended);
  return out;
}

}  // namespace

Result<BatchRunReport> RunBatch(Organization& org, const BatchRunOptions& options, const std::atomic<bool>& stop) {
  Runner r(org, options, stop);
  return r.Run();
}

}  // namespace mbx::engine
