#include "engine/recovery.h"

#include <map>

#include "engine/batch_runner.h"
#include "engine/mailbox_mover.h"
#include "engine/move_state.h"
#include "engine/queue_mover.h"

namespace mbx::engine {

bool RecoveryReport::all_done() const {
  for (const auto& m : moves) {
    if (m.action != "finished" && m.action != "rolled back" && m.action.rfind("kept:", 0) != 0) return false;
  }
  for (const auto& i : imports) {
    if (i.action != "activated" && i.action != "removed") return false;
  }
  for (const auto& b : batches) {
    if (b.rfind("failed", 0) == 0) return false;
  }
  return true;
}

namespace {

// An import's record names the store it writes (see mail_transfer.h).
Status RecoverImport(Organization& org, const MoveRecord& r, StoreHandle* store, RecoveredImport* imp) {
  auto target = org.directory().GetStore(r.target);
  if (!target.ok()) return target.status();
  auto user = org.directory().GetUserByMailbox(r.mailbox);
  if (!user.ok() && !user.status().IsNotFound()) return user.status();
  if (user.ok() && user->home_mdb == target->dn) {
    Status s = store->TransitionMailbox(r.mailbox, {MailboxState::kMovingIn}, MailboxState::kActive);
    if (!s.ok() && !s.IsBusy()) return s;  // Busy: already active
    imp->action = "activated";
  } else {
    Status s = store->DeleteMailboxIn(r.mailbox, {MailboxState::kMovingIn});
    if (!s.ok() && !s.IsNotFound()) return s;
    imp->action = "removed";
  }
  MBX_RETURN_IF_ERROR(store->Flush());  // durable before the record goes
  return org.directory().DeleteMove(r.mailbox);
}

}  // namespace

Result<RecoveryReport> Recover(Organization& org) {
  RecoveryReport rep;
  std::vector<MoveRecord> records;
  MBX_RETURN_IF_ERROR(org.directory().ListMoves(&records));
  // The batches with members in flight, and which mailbox is whose.
  std::vector<BatchRecord> batches;
  std::vector<std::string> damaged;
  MBX_RETURN_IF_ERROR(org.directory().ListBatches(&batches, &damaged));
  std::map<Guid, std::pair<const BatchRecord*, const BatchMember*>> batch_of;
  std::vector<std::string> unsettled;
  for (const BatchRecord& b : batches) {
    bool any = false;
    for (const BatchMember& m : b.members) {
      if (m.state == MemberState::kSyncing || m.state == MemberState::kSynced || m.state == MemberState::kCompleting) {
        batch_of[m.mailbox] = {&b, &m};
        any = true;
      }
    }
    if (any) unsettled.push_back(b.name);
  }
  for (const MoveRecord& r : records) {
    if (r.step == MoveStep::kImporting) {
      RecoveredImport imp{r.target, r.mailbox, r.user, ""};
      auto store = org.GetHandle(r.target);
      if (!store.ok()) {
        imp.action = store.status().IsBusy() ? "skipped: its store is open in another mbxmove process"
                                             : "failed: " + store.status().message();
      } else if (Status s = RecoverImport(org, r, *store, &imp); !s.ok()) {
        imp.action = "failed: " + s.message();
      }
      rep.imports.push_back(std::move(imp));
      continue;
    }
    RecoveredMove m;
    m.record = r;
    // A queued move a mover holds under a live lease is that mover's to
    // finish (engine/queue_mover.h); once the lease lapses, the mover that
    // takes the entry over finishes or rolls it back, or this does.
    if (auto q = org.directory().GetQueueEntry(r.mailbox);
        q.ok() && q->state == QueueState::kActive && q->lease_until_ms > UnixMillis()) {
      m.action = "skipped: mover " + MoverNameOfToken(q->owner) + " holds it under a lease";
      rep.moves.push_back(std::move(m));
      continue;
    }
    if (auto b = batch_of.find(r.mailbox); b != batch_of.end()) {
      const BatchRecord& batch = *b->second.first;
      if (BatchRunnerLive(org, batch.name)) {
        m.action = "skipped: the runner of batch " + batch.name + " holds it under a lease";
        rep.moves.push_back(std::move(m));
        continue;
      }
      if (KeptForResume(batch, *b->second.second, r)) {
        m.action = "kept: batch " + batch.name + "'s next runner resumes it";
        rep.moves.push_back(std::move(m));
        continue;
      }
    }
    // Stores held by another process: that process is moving this mailbox.
    auto src = org.GetHandle(r.source);
    auto dst = org.GetHandle(r.target);
    if ((!src.ok() && src.status().IsBusy()) || (!dst.ok() && dst.status().IsBusy())) {
      m.action = "skipped: its stores are open in another mbxmove process";
      rep.moves.push_back(std::move(m));
      continue;
    }
    const bool finish = PastSwitch(r.step);
    Status s = finish ? FinishMove(org, r) : RollBackMove(org, r);
    m.action = s.ok() ? (finish ? "finished" : "rolled back") : "failed: " + s.message();
    rep.moves.push_back(std::move(m));
  }
  for (const std::string& name : unsettled) {
    if (Status s = ReconcileBatch(org, name, &rep.batches); !s.ok()) {
      rep.batches.push_back("failed: batch " + name + ": " + s.message());
    }
  }
  return rep;
}

}  // namespace mbx::engine
