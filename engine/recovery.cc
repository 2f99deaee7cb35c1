#include "engine/recovery.h"

#include "engine/mailbox_mover.h"
#include "engine/move_state.h"

namespace mbx::engine {

bool RecoveryReport::all_done() const {
  for (const auto& m : moves) {
    if (m.action != "finished" && m.action != "rolled back") return false;
  }
  return true;
}

Result<RecoveryReport> Recover(Organization& org) {
  RecoveryReport rep;
  std::vector<MoveRecord> records;
  MBX_RETURN_IF_ERROR(org.directory().ListMoves(&records));
  for (const MoveRecord& r : records) {
    RecoveredMove m;
    m.record = r;
    // Stores held by another process: that process is moving this mailbox.
    auto src = org.GetStore(r.source);
    auto dst = org.GetStore(r.target);
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
  return rep;
}

}  // namespace mbx::engine
