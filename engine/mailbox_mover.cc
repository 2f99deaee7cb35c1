#include "engine/mailbox_mover.h"

#include <tbb/parallel_pipeline.h>
#include <tbb/task_arena.h>

#include <chrono>
#include <deque>
#include <map>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>

#include "engine/move_state.h"
#include "store/checksum.h"
#include "store/crash_point.h"
#include "store/item_codec.h"
#include "store/tsan_annotations.h"

namespace mbx::engine {

namespace {

using Clock = std::chrono::steady_clock;

int64_t NsSince(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
}
double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Ignores the "already done" answers that make undo/finish idempotent.
Status IgnoreGone(const Status& s) {
  if (s.ok() || s.IsNotFound() || s.IsBusy()) return Status::Ok();
  return s;
}

}  // namespace


MailboxMover::MailboxMover(Organization& org, const MoveOptions& options, MoveCounters* counters)
    : org_(org), options_(options), faults_(options.faults), counters_(counters) {}

Status MailboxMover::CopyItems(MailboxReadStream& stream, StoreHandle* target, const MoveTask& task,
                               const std::map<uint32_t, std::string>& paths, int target_level, bool recode,
                               WriteBatch tree, const MailboxInfo& header, CopyResult* out) {
  const Guid guid = task.user.mailbox;
  struct Chunk {
    ItemChunk in;  // records as read from the source
    WriteBatch batch;
    std::map<uint32_t, FolderExpect> expect;
    std::vector<DroppedItem> dropped;
    std::vector<std::pair<uint64_t, ModelItem>> kept;
    uint64_t items = 0, stored_out = 0, logical = 0, source_bytes = 0, retries = 0;
    Status error;
  };
  // A plain pointer: TBB copies tokens inside uninstrumented code, which a
  // shared_ptr's reference count would make TSan report. Owned by the output stage.
  using ChunkPtr = Chunk*;

  std::atomic<bool> stop{false};
  Status read_error, write_error;
  BatchWriter writes(target, options_.batch_bytes, options_.inflight_batches);
  // The batch not yet submitted: the tree, then each chunk's batch in turn,
  // held until the next chunk arrives, so that the last one can take the
  // final header. The first batch submitted before that carries the header
  // with zero counts (moving-in: what a roll-back finds the copy by).
  // (The output stage's alone.)
  WriteBatch held = std::move(tree);
  // What lets go of the source pages a batch borrows once it is written
  // (local stores: drops them from the resident set; the bytes stay
  // readable, so this is only a hint).
  auto release_when_written = [&stream](const WriteBatch& b) {
    return [&stream, records = b.BorrowedValues()] {
      for (std::string_view r : records) stream.Release(r);
    };
  };
  bool held_has_chunk = false;
  bool header_written = false;
  auto moving_in = [&](uint64_t items, uint64_t stored, uint64_t logical) {
    MailboxInfo ti = header;
    ti.state = MailboxState::kMovingIn;
    ti.item_count = items;
    ti.stored_bytes = stored;
    ti.logical_bytes = logical;
    return ti;
  };
  const int attempts = options_.retry.attempts();

  static TaskEdges edges;  // static: a task reaches it without reading a capture first
  auto input = [&](tbb::flow_control& fc) -> ChunkPtr {
    TaskEdgeScope edge(edges);
    if (stop.load()) {
      fc.stop();
      return nullptr;
    }
    if (task.called_off) {
      if (std::string why = task.called_off(); !why.empty()) {
        read_error = Status::Aborted("the move was called off: " + why);
        stop = true;
        fc.stop();
        return nullptr;
      }
    }
    const auto t0 = Clock::now();
    auto c = std::make_unique<Chunk>();
    Status s = stream.Next(options_.batch_bytes, &c->in);
    counters_->read_ns.fetch_add(NsSince(t0), std::memory_order_relaxed);
    if (!s.ok()) {
      read_error = s;
      stop = true;
    }
    if (!s.ok() || c->in.items.empty()) {
      fc.stop();
      return nullptr;
    }
    return c.release();
  };

  auto transform = [&](ChunkPtr c) -> ChunkPtr {
    TaskEdgeScope edge(edges);
    if (!c) return c;
    for (const ItemRef& r : c->in.items) {
      Status last = Status::Ok();
      Result<VerifiedRecord> v = Status::Corruption("not read");
      for (int a = 0; a < attempts; ++a) {
        if (a > 0) ++c->retries;
        if (faults_.FailsRead(guid, r.item_id, a)) {
          last = Status::IOError("injected read fault");
          continue;
        }
        const auto t0 = Clock::now();
        v = VerifyRecordWithSize(r.record);
        counters_->verify_ns.fetch_add(NsSince(t0), std::memory_order_relaxed);
        if (v.ok()) break;
        last = v.status();
      }
      c->source_bytes += r.record.size();
      if (!v.ok()) {
        DroppedItem d;
        d.folder_id = r.folder_id;
        auto p = paths.find(r.folder_id);
        d.folder_path = p == paths.end() ? "" : p->second;
        d.item_id = r.item_id;
        auto info = InspectRecord(r.record);
        if (info.ok()) d.subject = info->subject;
        d.reason = last.message();
        c->dropped.push_back(std::move(d));
        continue;
      }
      size_t stored = 0;
      if (recode) {
        std::string value;
        const auto t0 = Clock::now();
        Status s = RecodeItem(r.record, CodecOptions{target_level}, &value);
        counters_->recompress_ns.fetch_add(NsSince(t0), std::memory_order_relaxed);
        if (!s.ok()) {
          c->error = s.WithContext("recompressing item " + std::to_string(r.item_id));
          return c;
        }
        stored = value.size();
        stream.Release(r.record);  // the batch has its own bytes
        c->batch.PutItem(guid, r.folder_id, r.item_id, std::move(value));
      } else {
        // Not copied: the target's writer logs and stores the source's own
        // bytes (the chunk's owner, or the stream's snapshot, which outlives
        // every batch of this copy), and their pages are let go once the
        // batch is written.
        stored = r.record.size();
        c->batch.PutItemBorrowed(guid, r.folder_id, r.item_id, r.record);
      }
      FolderExpect& e = c->expect[r.folder_id];
      ++e.items;
      e.hash_sum += MixItemHash(v->content_hash);
      ++c->items;
      c->stored_out += stored;
      c->logical += v->logical_bytes;
      if (out->keep_items) {
        c->kept.emplace_back(r.item_id, ModelItem{r.folder_id, MixItemHash(v->content_hash), stored,
                                                  v->logical_bytes});
      }
    }
    c->batch.KeepAlive(std::move(c->in.owner));  // what the borrowed records point into, if not the snapshot
    c->in = ItemChunk{};
    return c;
  };

  auto output = [&](ChunkPtr c) {
    TaskEdgeScope edge(edges);
    std::unique_ptr<Chunk> owned(c);
    if (!c) return;
    if (!c->error.ok()) {
      if (write_error.ok()) write_error = c->error;
      stop = true;
      return;
    }
    for (auto& [fid, e] : c->expect) {
      out->expect[fid].items += e.items;
      out->expect[fid].hash_sum += e.hash_sum;
    }
    for (auto& d : c->dropped) out->dropped.push_back(std::move(d));
    for (auto& k : c->kept) out->kept.push_back(k);
    out->items += c->items;
    out->stored_out += c->stored_out;
    out->logical += c->logical;
    out->source_bytes += c->source_bytes;
    out->retries += c->retries;
    counters_->bytes_done.fetch_add(c->source_bytes, std::memory_order_relaxed);
    counters_->items_done.fetch_add(c->items + c->dropped.size(), std::memory_order_relaxed);
    if (options_.retry.Exceeded(int64_t(out->dropped.size()))) {
      out->over_limit = true;
      stop = true;
      return;
    }
    Status s = Status::Ok();
    if (held_has_chunk) {
      if (!header_written) held.PutMailbox(moving_in(0, 0, 0));
      header_written = true;
      const auto t0 = Clock::now();
      auto release = release_when_written(held);
      s = writes.Submit(std::move(held), std::move(release));
      CrashPoint("move-copy-batch");
      counters_->write_wait_ns.fetch_add(NsSince(t0), std::memory_order_relaxed);
      held = WriteBatch();
    }
    held.Append(std::move(c->batch));
    held_has_chunk = true;
    if (!s.ok() && write_error.ok()) {
      write_error = s;
      stop = true;
    }
  };

  // Isolated, so that while this thread waits for the pipeline it runs only
  // this mailbox's work, never another mailbox's move.
  edges.Release();
  tbb::this_task_arena::isolate([&] {
    tbb::parallel_pipeline(
        4, tbb::make_filter<void, ChunkPtr>(tbb::filter_mode::serial_in_order, input) &
               tbb::make_filter<ChunkPtr, ChunkPtr>(tbb::filter_mode::parallel, transform) &
               tbb::make_filter<ChunkPtr, void>(tbb::filter_mode::serial_in_order, output));
  });
  edges.Acquire();
  const auto t0 = Clock::now();
  if (read_error.ok() && write_error.ok() && !out->over_limit) {
    // The last batch (or the tree alone, for a mailbox without items) with
    // the header's final counts; still moving-in.
    held.PutMailbox(moving_in(out->items, out->stored_out, out->logical));
    auto release = release_when_written(held);
    write_error = writes.Submit(std::move(held), std::move(release));
    if (held_has_chunk) CrashPoint("move-copy-batch");
  }
  if (Status s = writes.Drain(); !s.ok() && write_error.ok()) write_error = s;
  counters_->write_wait_ns.fetch_add(NsSince(t0), std::memory_order_relaxed);
  if (!read_error.ok()) return read_error.WithContext("reading the source");
  if (!write_error.ok()) return write_error.WithContext("writing the target");
  return Status::Ok();
}

Status MailboxMover::VerifyTarget(StoreHandle* target, const Guid& mailbox,
                                  const std::vector<FolderInfo>& folders,
                                  const std::map<uint32_t, FolderExpect>& expect) {
  auto got = target->Checksums(mailbox);
  if (!got.ok()) return got.status().WithContext("verify");
  if (got->folders != folders) {
    return Status::Corruption("verify: the target's folder tree differs from the source's (" +
                              std::to_string(got->folders.size()) + " folders instead of " +
                              std::to_string(folders.size()) + ")");
  }
  for (const FolderInfo& f : folders) {
    FolderSum seen, want;
    if (auto it = got->sums.find(f.id); it != got->sums.end()) seen = it->second;
    if (auto it = expect.find(f.id); it != expect.end()) want = {it->second.items, it->second.hash_sum};
    if (seen != want) {
      return Status::Corruption("verify: folder '" + f.name + "' holds " + std::to_string(seen.items) +
                                " items on the target, expected " + std::to_string(want.items) +
                                (seen.items == want.items ? " (content differs)" : ""));
    }
  }
  return Status::Ok();
}

void MailboxMover::NoteTargetFull(const Status& s) {
  if (!s.IsNoSpace()) return;
  std::lock_guard<std::mutex> l(full_mu_);
  if (target_full_.empty()) target_full_ = s.message();
}

std::string MailboxMover::TargetFull() {
  std::lock_guard<std::mutex> l(full_mu_);
  return target_full_;
}

bool MailboxMover::Begin(const MoveTask& task, Run* run) {
  run->mover = this;
  run->task = &task;
  run->start = Clock::now();
  MailboxReport& rep = run->rep;
  rep.mailbox = task.user.mailbox;
  rep.user = task.user.name;
  rep.display_name = task.user.display_name;
  rep.source = task.source.name;
  rep.target = task.target.name;
  MoveRecord& rec = run->rec;
  rec.mailbox = task.user.mailbox;
  rec.user = task.user.name;
  rec.source = task.source.name;
  rec.target = task.target.name;
  rec.started = NowIso8601();
  rec.keep_source = options_.keep_source;
  auto src = org_.GetHandle(task.source.name);
  if (!src.ok()) return (run->Fail(src.status().message()), false);
  auto dst = org_.GetHandle(task.target.name);
  if (!dst.ok()) return (run->Fail(dst.status().message()), false);
  run->src = *src;
  run->dst = *dst;
  if (std::string full = TargetFull(); !full.empty()) return (run->Fail("not started: " + full), false);
  if (std::string off = run->CalledOff(); !off.empty()) return (run->Fail("not started: " + off), false);
  return true;
}

MailboxReport MailboxMover::Run::Fail(const std::string& why) {
  rep.outcome = Outcome::kFailed;
  rep.reason = why;
  rep.seconds = SecondsSince(start);
  mover->counters_->mailboxes_done.fetch_add(1);
  return rep;
}

MailboxReport MailboxMover::Run::Abandon(const std::string& why) {
  Status u = RollBackMove(mover->org_, rec);
  return Fail(u.ok() ? why : why + "; rolling back also failed: " + u.message());
}

MailboxReport MailboxMover::Run::AbandonWrite(const Status& s, const std::string& what) {
  mover->NoteTargetFull(s);
  return Abandon(what + s.message());
}

std::string MailboxMover::Run::CalledOff() const {
  const std::string why = task->called_off ? task->called_off() : std::string();
  return why.empty() ? why : "the move was called off: " + why;
}

Status MailboxMover::Run::Step(MoveStep step, bool create) {
  const MoveStep from = rec.step;
  rec.step = step;
  const auto t0 = Clock::now();
  Directory& dir = mover->org_.directory();
  Status s = create ? dir.CreateMove(rec) : dir.AdvanceMove(rec, from, false);
  mover->counters_->directory_ns.fetch_add(NsSince(t0), std::memory_order_relaxed);
  return s.ok() ? s : s.WithContext("recording step '" + std::string(MoveStepName(step)) + "' in the directory");
}

Status MailboxMover::Run::StepVerified() {
  // Only a switch made of two writes needs it on record (Directory::
  // SwitchIsOneWrite); elsewhere recovery rolls back every step before the
  // switch alike, and the step would cost a directory commit per mailbox.
  if (mover->org_.directory().SwitchIsOneWrite()) return Status::Ok();
  return Step(MoveStep::kVerified, false);
}

std::string MailboxMover::Run::Guard(MoveStep step) {
  // Creating the record is the guard: it fails if any move or import holds
  // the mailbox, whichever mover or host recorded it.
  Status s = Step(step, true);
  if (s.ok()) return "";
  if (s.code() == Status::Code::kAlreadyExists) {
    return "an unfinished move of this mailbox is recorded: " + s.message() + "; run 'mbxmove recover' first";
  }
  return s.message();
}

std::optional<MailboxReport> MailboxMover::Run::Switch() {
  // A move called off (its mover lost its lease: another mover may take it
  // over) must not pass the commit point.
  if (std::string off = CalledOff(); !off.empty()) return Abandon(off);
  rec.step = MoveStep::kSwitched;
  Directory& dir = mover->org_.directory();
  const auto t0 = Clock::now();
  Status s = dir.SwitchHome(task->user.mailbox, task->target, rec);
  const int64_t switch_ns = NsSince(t0);
  mover->counters_->directory_ns.fetch_add(switch_ns, std::memory_order_relaxed);
  if (s.ok()) {
    rep.switch_seconds = double(switch_ns) / 1e9;
    return std::nullopt;
  }
  // SwitchHome is one transaction, but it can fail after its commit: when
  // the directory cannot be synced, the switch is visible and may yet reach
  // the disk, and rolling back would leave homeMDB naming a target we
  // deleted. Roll back only when the directory still shows the move before
  // its switch; otherwise (switched, or unreadable) leave the mailbox locked
  // for 'mbxmove recover', which finishes or rolls back from what the
  // directory durably holds.
  auto now = dir.GetMove(task->user.mailbox);
  if (now.ok() && !PastSwitch(now->step)) return Abandon("switching homeMDB: " + s.message());
  return Fail("switching homeMDB: " + s.message() +
              "; the switch may have happened: run 'mbxmove recover' to finish or roll back the move");
}

MailboxReport MailboxMover::Move(const MoveTask& task, std::optional<MoveRecord>* cleanup) {
  if (options_.online) return MoveOnline(task, cleanup);
  Run run;
  if (!Begin(task, &run)) return run.rep;
  MailboxReport& rep = run.rep;
  MoveRecord& rec = run.rec;
  StoreHandle* src = run.src;
  StoreHandle* dst = run.dst;
  const Guid guid = task.user.mailbox;
  Directory& dir = org_.directory();
  auto fail = [&](const std::string& why) { return run.Fail(why); };
  auto abandon = [&](const std::string& why) { return run.Abandon(why); };
  auto abandon_write = [&](const Status& s, const std::string& what) { return run.AbandonWrite(s, what); };

  // Calls to different stores that do not wait for each other are made at
  // once when a store is remote (each call a round trip); on local stores
  // one after the other, as they cost no more than the thread would.
  const std::launch overlap = src->remote() || dst->remote() ? std::launch::async : std::launch::deferred;

  // 1. lock
  auto t = Clock::now();
  // The lock record is created (guarded: no other move may hold the
  // mailbox) and durable before the source is locked; later steps before
  // the switch are guarded advances that only inform (recovery rolls back
  // either way).
  if (std::string why = run.Guard(MoveStep::kLocked); !why.empty()) return fail(why);
  // What the target holds of the mailbox (a soft-deleted copy an earlier
  // move left, or nothing), asked while the source is locked and opened: the
  // move record now held means no other move changes it meanwhile.
  std::future<Result<MailboxInfo>> there = std::async(overlap, [dst, guid] { return dst->GetMailbox(guid); });
  // The source is locked and read from a snapshot taken after the lock, in
  // one call (one round trip to a remote source): the snapshot the whole
  // copy reads, with every change made before the lock.
  bool locked = false;
  Result<std::unique_ptr<MailboxReadStream>> stream =
      src->TransitionAndRead(guid, {MailboxState::kActive}, MailboxState::kMovingOut, &locked);
  if (!stream.ok() && !locked) {
    const Status& s = stream.status();
    if (s.code() == Status::Code::kIOError) {
      // The lock's log record may be on disk (written, then neither synced
      // nor taken back): a reopen could replay it. Keep the record, so that
      // recover unlocks the source if it is locked.
      return fail("cannot lock the source mailbox: " + s.message() +
                  "; it may be locked: run 'mbxmove recover'");
    }
    (void)dir.DeleteMove(guid);
    return fail("cannot lock the source mailbox: " + s.message());
  }
  if (!stream.ok()) return abandon(stream.status().message());
  rep.phase_seconds["lock"] = SecondsSince(t);
  CrashPoint("move-locked");

  // 2. hierarchy
  // (The directory is told only of the lock, the verified copy and the
  // switch: each record update is a directory round trip, and recovery rolls
  // back every step before the switch alike. 'verified' says the target
  // holds the whole copy: the LDAP directory's two-write switch relies on
  // it, see store/ldap_directory.h; the embedded one, whose switch is one
  // transaction, goes without.)
  t = Clock::now();
  MailboxInfo info;
  std::vector<FolderInfo> folders;
  std::map<uint32_t, std::string> paths;
  CopyResult copy;
  {
    info = (*stream)->mailbox();
    folders = (*stream)->folders();
    auto p = FolderPaths(folders);
    if (!p.ok()) return abandon("source folder tree: " + p.status().message());
    paths = *p;
    {
      // A soft-deleted copy left on the target by an earlier move is purged;
      // anything else there is a conflict.
      const Result<MailboxInfo> held = there.get();
      if (!held.ok() && !held.status().IsNotFound()) return abandon(held.status().message());
      if (held.ok()) {
        if (held->state != MailboxState::kSoftDeleted) {
          return abandon("the target store already holds this mailbox (" +
                         std::string(MailboxStateName(held->state)) + ")");
        }
        if (Status s = dst->DeleteMailboxIn(guid, {MailboxState::kSoftDeleted}); !s.ok()) {
          return abandon(s.message());
        }
      }
    }
    // The target's folder tree (and its moving-in header, see CopyItems)
    // go with the first batch of items; a crash before it commits leaves
    // nothing there.
    WriteBatch h;
    for (const auto& f : folders) h.PutFolder(guid, f);
    rep.folders = folders.size();
    rep.phase_seconds["hierarchy"] = SecondsSince(t);
    CrashPoint("move-hierarchy");

    // 3. copy
    t = Clock::now();
    const int level = options_.recompress_level.value_or(dst->zstd_level());
    const bool recode = level != src->zstd_level() || options_.recompress_level.has_value();
    Status s = CopyItems(**stream, dst, task, paths, level, recode, std::move(h), info, &copy);
    rep.phase_seconds["copy"] = SecondsSince(t);
    rep.retries = copy.retries;
    rep.dropped = copy.dropped;
    rep.source_bytes = copy.source_bytes;
    if (!s.ok()) return abandon_write(s, "");
    if (copy.over_limit) {
      return abandon(std::to_string(copy.dropped.size()) + " item(s) could not be read, more than the bad-item limit of " +
                     std::to_string(options_.retry.bad_item_limit));
    }
    stream->reset();  // the source snapshot ends here
  }

  // 4. verify: the target's sums, and both stores flushed: the copy, and
  // the source's lock too (with sync batch it may still be unsynced, and a
  // machine crash after the switch would bring the source back active next
  // to the active target). Three calls that wait for none of each other.
  t = Clock::now();
  {
    std::future<Status> dst_flush = std::async(overlap, [dst] { return dst->Flush(); });
    std::future<Status> src_flush = std::async(overlap, [src] { return src->Flush(); });
    const auto t0 = Clock::now();
    Status s = VerifyTarget(dst, guid, folders, copy.expect);
    counters_->target_verify_ns.fetch_add(NsSince(t0), std::memory_order_relaxed);
    const Status dst_flushed = dst_flush.get();
    const Status src_flushed = src_flush.get();
    if (!s.ok()) return abandon(s.message());
    if (!dst_flushed.ok()) return abandon_write(dst_flushed, "");
    if (!src_flushed.ok()) return abandon(src_flushed.message());
  }
  if (Status s = run.StepVerified(); !s.ok()) return abandon(s.message());
  rep.phase_seconds["verify"] = SecondsSince(t);
  CrashPoint("move-verified");

  // 5. switch: the commit point.
  t = Clock::now();
  if (auto failed = run.Switch()) return *failed;
  rep.phase_seconds["switch"] = SecondsSince(t);
  CrashPoint("move-switched");

  // 6. clean up. Past the switch the move has happened; a failure here is
  // finished by 'mbxmove recover'.
  t = Clock::now();
  rep.items_copied = copy.items;
  rep.bytes_copied = copy.stored_out;
  rep.logical_bytes = copy.logical;
  rep.outcome = copy.dropped.empty() ? Outcome::kCompleted : Outcome::kCompletedWithDroppedItems;
  if (cleanup != nullptr) {
    // The caller finishes it, together with other mailboxes' clean-ups.
    *cleanup = rec;
  } else {
    if (Status s = FinishMove(org_, rec); !s.ok()) NoteCleanupFailed(s, &rep);
    rep.phase_seconds["cleanup"] = SecondsSince(t);
  }
  rep.seconds = SecondsSince(run.start);
  counters_->mailboxes_done.fetch_add(1);
  return rep;
}

void NoteCleanupFailed(const Status& s, MailboxReport* rep) {
  rep->reason = "moved; clean-up incomplete (run 'mbxmove recover'): " + s.message();
}

Status RollBackMove(Organization& org, const MoveRecord& record) {
  auto dst = org.GetHandle(record.target);
  if (dst.ok()) {
    MBX_RETURN_IF_ERROR(IgnoreGone((*dst)->DeleteMailboxIn(record.mailbox, {MailboxState::kMovingIn}))
                            .WithContext("removing the partial target"));
  } else if (!dst.status().IsNotFound()) {
    return dst.status();
  }
  MBX_ASSIGN_OR_RETURN(StoreHandle * src, org.GetHandle(record.source));
  MBX_RETURN_IF_ERROR(IgnoreGone(src->TransitionMailbox(record.mailbox, {MailboxState::kMovingOut},
                                                        MailboxState::kActive))
                          .WithContext("unlocking the source"));
  // An online move tracked the source's changes: the index goes with it.
  MBX_RETURN_IF_ERROR(IgnoreGone(src->TrackChanges(record.mailbox, StoreHandle::kStopTracking).status())
                          .WithContext("stopping the source's change tracking"));
  // The record goes only once what it guards is durable (sync batch
  // acknowledges before syncing; a machine crash must not leave the
  // mailbox locked or half there with no record to recover it by).
  if (dst.ok()) MBX_RETURN_IF_ERROR((*dst)->Flush().WithContext("flushing the target"));
  MBX_RETURN_IF_ERROR(src->Flush().WithContext("flushing the source"));
  CrashPoint("move-rolled-back");
  return org.directory().DeleteMove(record.mailbox).WithContext("deleting the move record");
}

std::vector<Status> FinishMoves(Organization& org, const std::vector<MoveRecord>& records) {
  std::vector<Status> results(records.size());
  std::map<std::string, StoreHandle*> touched;
  // Runs `step` for the records still OK, grouped by the store `store_of`
  // names: one call (one commit, for a local store) per store. A record
  // keeps the first failure it meets.
  auto per_store = [&](auto store_of, auto keep, auto step) {
    std::map<std::string, std::vector<size_t>> by_store;
    for (size_t i = 0; i < records.size(); ++i) {
      if (results[i].ok() && keep(records[i])) by_store[store_of(records[i])].push_back(i);
    }
    for (const auto& [name, idx] : by_store) {
      Result<StoreHandle*> h = org.GetHandle(name);
      if (!h.ok()) {
        for (size_t i : idx) results[i] = h.status();
        continue;
      }
      touched.emplace(name, *h);
      std::vector<Guid> mailboxes;
      for (size_t i : idx) mailboxes.push_back(records[i].mailbox);
      const std::vector<Status> got = step(*h, mailboxes);
      for (size_t k = 0; k < idx.size(); ++k) results[idx[k]] = got[k];
    }
  };
  auto target_of = [](const MoveRecord& r) { return r.target; };
  auto source_of = [](const MoveRecord& r) { return r.source; };
  auto all = [](const MoveRecord&) { return true; };
  auto ignore_gone = [](std::vector<Status> v, const char* what) {
    for (Status& s : v) s = IgnoreGone(s).WithContext(what);
    return v;
  };
  // Every target active first, then every source gone (or soft-deleted),
  // each store's mailboxes of the round in one commit ...
  per_store(target_of, all, [&](StoreHandle* dst, const std::vector<Guid>& m) {
    return ignore_gone(dst->TransitionMailboxes(m, {MailboxState::kMovingIn}, MailboxState::kActive),
                       "activating the target");
  });
  per_store(source_of, [](const MoveRecord& r) { return !r.keep_source; },
            [&](StoreHandle* src, const std::vector<Guid>& m) {
              std::vector<Status> v =
                  ignore_gone(src->DeleteMailboxesIn(m, {MailboxState::kMovingOut}), "deleting the source");
              src->ReleaseResidentPages();
              return v;
            });
  per_store(source_of, [](const MoveRecord& r) { return r.keep_source; },
            [&](StoreHandle* src, const std::vector<Guid>& m) {
              std::vector<Status> v = ignore_gone(
                  src->TransitionMailboxes(m, {MailboxState::kMovingOut}, MailboxState::kSoftDeleted),
                  "soft-deleting the source");
              std::vector<Guid> kept;  // (the ones soft-deleted)
              std::vector<size_t> at;
              for (size_t k = 0; k < m.size(); ++k) {
                if (!v[k].ok()) continue;
                kept.push_back(m[k]);
                at.push_back(k);
              }
              const std::vector<Status> stopped =
                  ignore_gone(src->StopTrackingChanges(kept), "stopping the source's change tracking");
              for (size_t k = 0; k < at.size(); ++k) v[at[k]] = stopped[k];
              return v;
            });
  // ... then each store they touched flushed once: as in RollBackMove,
  // durable before a record goes ...
  // (Remote stores' flushes in flight together: a round trip for all.)
  std::map<std::string, std::future<Status>> flushing;
  for (const auto& [name, store] : touched) {
    flushing.emplace(name, std::async(store->remote() ? std::launch::async : std::launch::deferred,
                                      [store = store, name = name] {
                                        return store->Flush().WithContext("flushing store " + name);
                                      }));
  }
  std::map<std::string, Status> flushed;
  for (auto& [name, f] : flushing) flushed[name] = f.get();
  // ... then the records, in one directory write.
  std::vector<size_t> done;
  std::vector<Guid> mailboxes;
  for (size_t i = 0; i < records.size(); ++i) {
    if (!results[i].ok()) continue;
    for (const std::string* store : {&records[i].target, &records[i].source}) {
      if (Status f = flushed.at(*store); !f.ok()) {
        results[i] = f;
        break;
      }
    }
    if (!results[i].ok()) continue;
    CrashPoint("move-cleaned");
    done.push_back(i);
    mailboxes.push_back(records[i].mailbox);
  }
  if (mailboxes.empty()) return results;
  const std::vector<Status> deleted = org.directory().DeleteMoves(mailboxes);
  for (size_t k = 0; k < done.size(); ++k) {
    results[done[k]] = deleted[k].WithContext("deleting the move record");
  }
  return results;
}

Status FinishMove(Organization& org, const MoveRecord& record) { return FinishMoves(org, {record}).front(); }

}  // namespace mbx::engine
