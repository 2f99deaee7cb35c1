// Migration batches (`mbxmove batch`): mailboxes moved online to one
// target store and kept in sync until the batch is completed, as Office
// 365's cutover migration batches are.
//
//   create    the batch record (store/directory.h, BatchRecord) with its
//             members queued; a mailbox belongs to one batch at a time
//   start     a runner (RunBatch) takes the batch's lease "batch.NAME" and
//             works until the batch ends: each queued member gets its
//             initial copy (at most `concurrency` at once), then an
//             incremental pass every sync interval keeps it synced; once
//             the batch is completing (`batch complete`, or the
//             --complete-after time) each synced member gets its final
//             delta and switch; at `batch stop` or --cancel-after every
//             member not completed is rolled back and stopped
//   status, list, complete, stop, remove
//
// The runner keeps what each synced member's move knows of its target in
// memory (MailboxMover::OnlineSession). A runner that stops (SIGTERM, a kill,
// a crash) leaves its synced members' moves at `syncing`; the next runner
// resumes them from what their targets hold (MailboxMover::ResumeOnline:
// the target's items are read and verified, not copied) and its first pass
// catches up with what changed meanwhile. `recover`, which every command
// runs first, leaves those moves alone while the batch is running; it rolls
// back what cannot be resumed (an initial copy cut short, a member in its
// final delta: the source is unlocked) and puts those members back to
// queued. The batch's own state and its completed members survive.
//
// Clocks: lease and schedule times are Unix milliseconds (wall clock).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/mailbox_mover.h"
#include "engine/move_engine.h"
#include "engine/move_report.h"
#include "store/organization.h"

namespace mbx::engine {

// Creates the batch `b` (name, target, settings; members from `plan`, in
// order). Refused, nothing changed: an invalid name or setting, a planned
// move that cannot be made, a mailbox already in another batch
// (AlreadyExists naming it), a batch of that name (AlreadyExists).
Status CreateBatch(Organization& org, BatchRecord* b, const std::vector<PlannedMove>& plan);

// `batch complete`: the batch to completing. Refused, nothing changed
// (FailedPrecondition saying why): a batch not started, one already
// completing, completed, stopping or stopped, or one with members not yet
// synced (named). NotFound for an unknown batch.
Status RequestComplete(Organization& org, const std::string& name);

// `batch stop`: with a live runner, the batch to stopping (the runner rolls
// its members back and marks them stopped); with none, that is done here.
// Refused for a completed or stopped batch.
Status StopBatch(Organization& org, const std::string& name, const std::string& why);

// `batch remove`: deletes a batch that is not running (created, completed
// or stopped; a running batch must be stopped first). Its members' mailboxes
// may then join another batch.
Status RemoveBatch(Organization& org, const std::string& name);

// Members whose runner is gone (lease lapsed or never taken): a member move
// past its switch is finished (completed), one before it rolled back
// (queued again) unless KeptForResume; a member with no move record is
// completed if homeMDB names the target, else queued. Writes the batch when anything changed.
// `notes` gets one line per member changed. Does nothing while a runner's
// lease is live.
Status ReconcileBatch(Organization& org, const std::string& name, std::vector<std::string>* notes);

// True when the move `rec` of member `m` is left for the batch's next runner
// to resume: a running batch, a synced member without dropped items, its
// move at `syncing` into the batch's target.
bool KeptForResume(const BatchRecord& b, const BatchMember& m, const MoveRecord& rec);

// How far a member's initial copy is, of its size (bytes_total): 0..1 (a
// member past its copy counts whole), or -1 when its size is not known or
// it failed or was stopped.
double InitialCopyFraction(const BatchMember& m);
// The initial copies of a batch: bytes copied of the sizes of the members
// InitialCopyFraction knows, and, while a runner works on a running batch
// that has copied something and has more to copy, the rate since its first
// start (copied bytes over the time since) and the seconds left at that
// rate; otherwise both -1.
struct InitialCopyProgress {
  uint64_t done = 0, total = 0;
  double bytes_per_s = -1, seconds_left = -1;
};
InitialCopyProgress InitialCopies(const BatchRecord& b, bool runner_live, int64_t now_ms);

// The lease name of a batch's runner.
std::string BatchLeaseName(const std::string& batch);
// True while a runner holds the batch (its lease has not lapsed).
bool BatchRunnerLive(Organization& org, const std::string& batch);

struct BatchRunOptions {
  std::string name;
  // Batch sizes, recompression, retries, final_delta_items, max_passes;
  // the target, concurrency and bad-item limit come from the batch record.
  MoveOptions move;
  int64_t lease_ms = 30000;
  int64_t poll_ms = 1000;  // how often the runner reads the batch's state
  std::function<void(const std::string&)> log;  // one line per event; may be empty
};

struct BatchRunReport {
  BatchRecord batch;     // as the runner left it
  MoveReport moves;      // the members this run completed or failed
  std::string ended;     // "completed", "stopped: <why>", or "interrupted: <why>" (resumable)
  uint64_t passes = 0;   // incremental passes this run
};

// Runs the batch until it is completed or stopped, or `stop` turns true
// (SIGTERM: the members in flight are rolled back and queued again, the
// batch stays running for the next start). Busy if another runner holds it;
// FailedPrecondition for a batch already completed or stopped.
Result<BatchRunReport> RunBatch(Organization& org, const BatchRunOptions& options, const std::atomic<bool>& stop);

// Parses "90s", "5m", "2h", "1d", "250ms" or a plain number of `unit_ms`.
Result<int64_t> ParseDurationMs(const std::string& text, int64_t unit_ms);

}  // namespace mbx::engine
