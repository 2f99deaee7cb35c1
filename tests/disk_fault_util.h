// A small relocation for the disk-fault campaigns (disk_fault_test: faults
// under the transaction log, through the Env seam; lmdb_fault_test: faults
// under LMDB's data files, by interposition): a template organisation whose
// first two users' mailboxes move from MS1 to MS2, a run of that move in a
// copy of the template, and the invariant checked after reopening (stores
// replay their logs) and recovering.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "datagen/populate.h"
#include "engine/move_engine.h"
#include "engine/org_check.h"
#include "engine/recovery.h"
#include "store/organization.h"
#include "tests/test_util.h"

namespace mbx::testing {

// How one run of the relocation ended.
struct RelocationRun {
  bool started = false;  // the organisation opened and the moves were planned
  int completed = 0;     // mailbox moves that completed (no item is dropped in this data)
  int failed = 0;        // mailbox moves that failed
  uint64_t dropped = 0;  // items the moves dropped
  std::vector<std::string> errors;  // why: the open/plan error, or each failed move's reason
};

class Relocation {
 public:
  // Builds the template organisation in `dir`: MS1 (circular logging) holds
  // four generated mailboxes, MS2 (16 KiB log files, full sync) is empty.
  Status Create(const std::string& dir) {
    template_ = dir;
    MBX_ASSIGN_OR_RETURN(auto org, Organization::OpenOrCreate(dir));
    StoreOptions src;
    src.log.mode = LogMode::kCircular;
    MBX_RETURN_IF_ERROR(org->CreateStore("MS1", "SERVER1", src));
    StoreOptions dst;
    dst.log.file_bytes = 16384;
    dst.log.sync = SyncMode::kFull;
    MBX_RETURN_IF_ERROR(org->CreateStore("MS2", "SERVER2", dst));
    datagen::PopulateOptions po;
    po.gen.seed = 3;
    po.gen.mailboxes = 4;
    po.gen.total_bytes = 400 << 10;
    MBX_RETURN_IF_ERROR(datagen::Populate(*org, "MS1", po, nullptr).status());
    MBX_ASSIGN_OR_RETURN(before_, engine::SurveyOrganization(*org));
    if (!before_.clean()) return Status::Internal("template: " + before_.problems.front().ToString());
    std::vector<UserRecord> us;
    MBX_RETURN_IF_ERROR(org->directory().ListUsers(&us));
    if (us.size() < 2) return Status::Internal("template: fewer than two users");
    users_ = {us[0].name, us[1].name};
    return Status::Ok();
  }

  // A fresh copy of the template in `dir`.
  void CopyTo(const std::string& dir) const { fs::copy(template_, dir, fs::copy_options::recursive); }

  // Opens the organisation in `dir` with `options` and moves the two
  // mailboxes to MS2 (`concurrency` at a time, 16 KiB batches); closes it on
  // return. At concurrency 1 the directory's calls come in a fixed order.
  RelocationRun Run(const std::string& dir, const OpenOptions& options = {}, int concurrency = 2) const {
    RelocationRun out;
    auto org = Organization::Open(dir, options);
    if (!org.ok()) {
      out.errors.push_back(org.status().ToString());
      return out;
    }
    engine::MoveRequest req;
    req.mailboxes = users_;
    req.options.target = "MS2";
    req.options.concurrency = concurrency;
    req.options.batch_bytes = 16 << 10;
    auto plan = engine::PlanMoves(**org, req);
    if (!plan.ok()) {
      out.errors.push_back(plan.status().ToString());
      return out;
    }
    out.started = true;
    engine::MoveCounters c;
    const engine::MoveReport rep = engine::RunMoves(**org, *plan, req.options, &c);
    for (const auto& m : rep.mailboxes) {
      out.dropped += m.dropped.size();
      if (m.outcome == engine::Outcome::kFailed) {
        ++out.failed;
        out.errors.push_back(m.reason);
      } else {
        ++out.completed;
      }
    }
    return out;
  }

  // Reopens `dir` on a healthy disk (each store replays its log), recovers,
  // and checks the move invariant (engine/org_check.h): every mailbox of the
  // template is active in exactly one store, the one its homeMDB names, with
  // the content it had; no move record, locked, partial or soft-deleted
  // mailbox is left; every store reads. Returns what does not hold (empty:
  // the invariant held).
  std::vector<std::string> InvariantViolations(const std::string& dir) const {
    std::vector<std::string> bad;
    auto org = Organization::Open(dir);
    if (!org.ok()) return {"reopening: " + org.status().ToString()};
    auto rec = engine::Recover(**org);
    if (!rec.ok()) return {"recovering: " + rec.status().ToString()};
    for (const auto& m : rec->moves) {
      if (m.action != "finished" && m.action != "rolled back") {
        bad.push_back("recovery of " + m.record.mailbox.ToString() + ": " + m.action);
      }
    }
    std::vector<MoveRecord> left;
    if (Status s = (*org)->directory().ListMoves(&left); !s.ok()) bad.push_back("listing moves: " + s.ToString());
    if (!left.empty()) bad.push_back(std::to_string(left.size()) + " move record(s) left after recovery");
    auto after = engine::SurveyOrganization(**org);
    if (!after.ok()) {
      bad.push_back("surveying: " + after.status().ToString());
      return bad;
    }
    for (auto& v : engine::MoveInvariantViolations(before_, *after)) bad.push_back(std::move(v));
    // These moves keep no source: every copy left is the active one.
    for (const auto& [g, m] : after->mailboxes) {
      for (const auto& c : m.copies) {
        if (c.info.state != MailboxState::kActive) {
          bad.push_back(g.ToString() + " is left " + std::string(MailboxStateName(c.info.state)) + " in " + c.store);
        }
      }
    }
    return bad;
  }

  const engine::OrgSurvey& before() const { return before_; }

 private:
  std::string template_;
  engine::OrgSurvey before_;
  std::vector<std::string> users_;
};

// "a; b; c"
inline std::string JoinLines(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : "; ") + s;
  return out;
}

}  // namespace mbx::testing
