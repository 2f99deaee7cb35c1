// MailboxMover::MoveOnline: a move during which the mailbox stays in use
// (MoveOptions::online, `mbxmove move --online`).
//
//   syncing   the move record is created (guarded, as `locked` is for an
//             offline move) and the source's change index is started
//             (StoreHandle::TrackAndRead: before the snapshot, in one call
//             to a remote source); then the initial copy, from that
//             snapshot, as an offline move copies; then incremental passes,
//             each applying what changed since the last one (ReadChanges:
//             new items, flag changes, moves, deletes, the folder tree),
//             until a pass finds at most final_delta_items changed items or
//             max_passes ran
//   locked    recorded before the first pass that may lock: each pass of
//             the move's end asks the source to lock the mailbox if its
//             changes are that few (ReadChangesLockingIfFew: one call to a
//             remote source), and that pass, read again under the lock, is
//             the final delta; after max_passes the lock is taken as it is.
//             The source is locked (clients refused); the last delta is
//             applied; the target is verified against the source as it is
//             under the lock
//   verified, switched, clean-up: as for an offline move; the target is
//             activated first, which ends the lock window
//
// The source is never written by the move until the clean-up (only its
// header's tracking flag and change index), so a kill at any step before
// the switch is rolled back by `recover` (the partial target removed, the
// source unlocked, its change index dropped) and loses no client change.
#include <algorithm>
#include <chrono>
#include <future>
#include <map>
#include <optional>
#include <unordered_map>

#include "engine/mailbox_mover.h"
#include "engine/move_state.h"
#include "store/checksum.h"
#include "store/crash_point.h"
#include "store/item_codec.h"
#include "store/keys.h"

namespace mbx::engine {

namespace {

using Clock = std::chrono::steady_clock;

// A pass prunes the source's change index when it copied at least this many
// entries.
constexpr size_t kPruneEntries = 1024;

double SecondsSince(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

// What the move knows of the target: each item it put there, the folder
// tree it wrote and the header's totals.
struct MailboxMover::OnlineState {
  std::unordered_map<uint64_t, ModelItem> items;
  std::vector<FolderInfo> folders;
  uint64_t stored = 0, logical = 0;
  uint64_t copied_items = 0, copied_bytes = 0;  // records written, over every pass
  std::string header;  // the target's header as last written (EncodeMailboxInfo)

  void Add(uint64_t id, const ModelItem& m) {
    items[id] = m;
    stored += m.stored;
    logical += m.logical;
  }
  void Remove(uint64_t id) {
    auto it = items.find(id);
    if (it == items.end()) return;
    stored -= it->second.stored;
    logical -= it->second.logical;
    items.erase(it);
  }
  std::map<uint32_t, FolderExpect> Expect() const {
    std::map<uint32_t, FolderExpect> e;
    for (const auto& [id, m] : items) {
      ++e[m.folder].items;
      e[m.folder].hash_sum += m.mixed_hash;
    }
    return e;
  }
};

Status MailboxMover::ApplyDelta(const ChangeSet& cs, StoreHandle* target, int target_level, bool recode,
                                OnlineState* st, std::vector<DroppedItem>* dropped, bool last_page,
                                uint64_t header_change_number) {
  const Guid guid = cs.mailbox.guid;
  BatchWriter writes(target, options_.batch_bytes, options_.inflight_batches);
  const int attempts = options_.retry.attempts();
  std::optional<Result<std::map<uint32_t, std::string>>> paths;
  for (const ItemDelta& d : cs.items) {
    if (auto it = st->items.find(d.item_id); it != st->items.end()) {
      // The target holds it where the last pass put it: gone or elsewhere
      // now, or its record changed (flags): the old key goes.
      if (d.new_folder == 0 || it->second.folder != d.new_folder) {
        writes.batch().DeleteItem(guid, it->second.folder, d.item_id);
      }
      st->Remove(d.item_id);
    }
    if (d.new_folder == 0) continue;
    Result<VerifiedRecord> v = Status::Corruption("not read");
    for (int a = 0; a < attempts; ++a) {
      if (faults_.FailsRead(guid, d.item_id, a)) {
        v = Status::IOError("injected read fault");
        continue;
      }
      v = VerifyRecordWithSize(d.record);
      if (v.ok()) break;
    }
    if (!v.ok()) {
      // Unreadable now: not on the target (the key it may have had there is
      // deleted above only when it moved, so delete it here too).
      writes.batch().DeleteItem(guid, d.new_folder, d.item_id);
      DroppedItem di;
      di.folder_id = d.new_folder;
      if (!paths) paths = FolderPaths(cs.folders);  // once a pass, when an item is dropped
      if (paths->ok() && (*paths)->count(d.new_folder)) di.folder_path = (*paths)->at(d.new_folder);
      di.item_id = d.item_id;
      if (auto info = InspectRecord(d.record); info.ok()) di.subject = info->subject;
      di.reason = v.status().message();
      dropped->push_back(std::move(di));
      continue;
    }
    std::string value;
    if (recode) {
      MBX_RETURN_IF_ERROR(RecodeItem(d.record, CodecOptions{target_level}, &value)
                              .WithContext("recompressing item " + std::to_string(d.item_id)));
    } else {
      value = d.record;  // an incremental pass copies (the initial copy's batches borrow)
      counters_->copied_bytes.fetch_add(value.size(), std::memory_order_relaxed);
    }
    st->Add(d.item_id, ModelItem{d.new_folder, MixItemHash(v->content_hash), value.size(), v->logical_bytes});
    ++st->copied_items;
    st->copied_bytes += value.size();
    counters_->items_done.fetch_add(1, std::memory_order_relaxed);
    counters_->bytes_done.fetch_add(d.record.size(), std::memory_order_relaxed);
    writes.batch().PutItem(guid, d.new_folder, d.item_id, std::move(value));
    MBX_RETURN_IF_ERROR(writes.MaybeFlush());
  }
  // The folder tree: every folder as the source has it now; the ones it no
  // longer has deleted (their items moved or deleted above) with the last
  // page of a pass, when every item has left them: before, they are kept.
  bool folders_changed = false;
  std::vector<FolderInfo> tree = cs.folders;  // what the target holds after this page
  {
    std::unordered_map<uint32_t, const FolderInfo*> now;  // by id: a pass is linear in the folders
    for (const FolderInfo& n : cs.folders) now.emplace(n.id, &n);
    std::unordered_map<uint32_t, const FolderInfo*> before;
    for (const FolderInfo& o : st->folders) {
      before.emplace(o.id, &o);
      if (now.count(o.id) != 0) continue;
      if (last_page) {
        writes.batch().Delete(Db::kFolders, keys::Folder(guid, o.id));
        folders_changed = true;
      } else {
        tree.push_back(o);
      }
    }
    for (const FolderInfo& f : cs.folders) {
      auto o = before.find(f.id);
      if (o != before.end() && *o->second == f) continue;
      writes.batch().PutFolder(guid, f);
      folders_changed = true;
    }
  }
  if (tree.size() != cs.folders.size()) {
    std::sort(tree.begin(), tree.end(), [](const FolderInfo& a, const FolderInfo& b) { return a.id < b.id; });
  }
  st->folders = std::move(tree);
  // The header last, still moving-in, with the source's ids and change
  // number and the totals of what the target holds; a pass that found
  // nothing changes nothing.
  MailboxInfo h = cs.mailbox;
  h.state = MailboxState::kMovingIn;
  h.tracked = false;
  h.change_number = header_change_number;
  h.pruned_through = h.change_number;
  h.item_count = st->items.size();
  h.stored_bytes = st->stored;
  h.logical_bytes = st->logical;
  std::string header = EncodeMailboxInfo(h);
  if (header != st->header || !cs.items.empty() || folders_changed) {
    writes.batch().PutMailbox(h);
    st->header = std::move(header);
  }
  return writes.Finish();
}

struct MailboxMover::OnlineSession {
  MoveTask task;
  Run run;
  OnlineState st;
  std::vector<DroppedItem> dropped;
  int level = 0;
  bool recode = false;
  uint64_t synced = 0;  // the source's change number the target holds
  bool ended = false;   // rolled back, failed or switched: nothing more to do
};

MailboxReport MailboxMover::MoveOnline(const MoveTask& task, std::optional<MoveRecord>* cleanup) {
  MailboxReport rep;
  auto session = StartOnline(task, &rep);
  if (session == nullptr) return rep;
  return CompleteOnline(session.get(), cleanup);
}

void MailboxMover::OnlineSessionDeleter::operator()(OnlineSession* s) const { delete s; }

bool MailboxMover::Ended(const OnlineSession& session) { return session.ended; }

MailboxMover::OnlineSessionPtr MailboxMover::NewOnlineSession(const MoveTask& task, MailboxReport* failed) {
  OnlineSessionPtr session(new OnlineSession);
  session->task = task;
  session->run.rep.online = true;
  if (!Begin(session->task, &session->run)) {
    *failed = session->run.rep;
    return nullptr;
  }
  return session;
}

MailboxMover::OnlineSessionPtr MailboxMover::StartOnline(const MoveTask& task, MailboxReport* failed) {
  OnlineSessionPtr session = NewOnlineSession(task, failed);
  if (session == nullptr) return nullptr;
  Run& run = session->run;
  MailboxReport& rep = run.rep;
  StoreHandle* src = run.src;
  StoreHandle* dst = run.dst;
  OnlineState& st = session->st;
  const Guid guid = task.user.mailbox;
  auto fail = [&](const std::string& why) {
    *failed = run.Fail(why);
    return nullptr;
  };
  auto abandon = [&](const std::string& why) {
    *failed = run.Abandon(why);
    return nullptr;
  };

  // The record (the guard against any other move of the mailbox), then the
  // change index, then the initial copy from one snapshot.
  auto t = Clock::now();
  if (std::string why = run.Guard(MoveStep::kSyncing); !why.empty()) return fail(why);
  // What the target holds of the mailbox, asked beside the source's calls
  // (a round trip of its own to a remote target): the record now held means
  // no other move changes it meanwhile.
  const std::launch overlap = src->remote() || dst->remote() ? std::launch::async : std::launch::deferred;
  std::future<Result<MailboxInfo>> there_f = std::async(overlap, [dst, guid] { return dst->GetMailbox(guid); });
  session->level = options_.recompress_level.value_or(dst->zstd_level());
  session->recode = session->level != src->zstd_level() || options_.recompress_level.has_value();
  // Tracking, then the snapshot (one call to a remote source).
  auto stream = src->TrackAndRead(guid);
  if (!stream.ok()) return abandon(stream.status().message());
  CrashPoint("move-online-tracking");
  MailboxInfo info = (*stream)->mailbox();
  if (info.state != MailboxState::kActive) {
    return abandon("the source mailbox is " + std::string(MailboxStateName(info.state)) + ", not active");
  }
  st.folders = (*stream)->folders();
  auto paths = FolderPaths(st.folders);
  if (!paths.ok()) return abandon("source folder tree: " + paths.status().message());
  Result<MailboxInfo> there = there_f.get();
  if (!there.ok() && !there.status().IsNotFound()) return abandon(there.status().message());
  if (there.ok()) {
    if (there->state != MailboxState::kSoftDeleted) {
      return abandon("the target store already holds this mailbox (" + std::string(MailboxStateName(there->state)) +
                     ")");
    }
    if (Status s = dst->DeleteMailboxIn(guid, {MailboxState::kSoftDeleted}); !s.ok()) return abandon(s.message());
  }
  WriteBatch tree;
  for (const auto& f : st.folders) tree.PutFolder(guid, f);
  session->synced = info.change_number;
  info.tracked = false;
  info.pruned_through = info.change_number;
  CopyResult copy;
  copy.keep_items = true;
  Status s = CopyItems(**stream, dst, session->task, *paths, session->level, session->recode, std::move(tree), info,
                       &copy);
  stream->reset();  // the snapshot is not held between passes
  rep.retries = copy.retries;
  rep.source_bytes = copy.source_bytes;
  session->dropped = copy.dropped;
  if (!s.ok()) {
    *failed = run.AbandonWrite(s);
    return nullptr;
  }
  if (copy.over_limit) {
    rep.dropped = session->dropped;
    return abandon(std::to_string(session->dropped.size()) +
                   " item(s) could not be read, more than the bad-item limit of " +
                   std::to_string(options_.retry.bad_item_limit));
  }
  for (const auto& [id, m] : copy.kept) st.Add(id, m);
  {
    // The header CopyItems wrote last.
    MailboxInfo h = info;
    h.state = MailboxState::kMovingIn;
    h.item_count = copy.items;
    h.stored_bytes = copy.stored_out;
    h.logical_bytes = copy.logical;
    st.header = EncodeMailboxInfo(h);
  }
  st.copied_items = copy.items;
  st.copied_bytes = copy.stored_out;
  rep.pass_items.push_back(copy.items);
  rep.folders = st.folders.size();
  rep.phase_seconds["copy"] = SecondsSince(t);
  CrashPoint("move-online-copied");
  return session;
}

MailboxMover::OnlineSessionPtr MailboxMover::ResumeOnline(const MoveTask& task, const MoveRecord& record,
                                                          MailboxReport* failed) {
  OnlineSessionPtr session = NewOnlineSession(task, failed);
  if (session == nullptr) return nullptr;
  Run& run = session->run;
  run.rec = record;
  MailboxReport& rep = run.rep;
  StoreHandle* src = run.src;
  StoreHandle* dst = run.dst;
  OnlineState& st = session->st;
  const Guid guid = task.user.mailbox;
  auto abandon = [&](const std::string& why) {
    *failed = run.Abandon("cannot resume the move: " + why);
    return nullptr;
  };
  if (record.step != MoveStep::kSyncing || record.source != task.source.name || record.target != task.target.name) {
    *failed = run.Fail("cannot resume the move: its record is another move's (" + record.source + " -> " +
                       record.target + ", step " + std::string(MoveStepName(record.step)) + ")");
    return nullptr;
  }
  const auto t = Clock::now();
  auto from = src->GetMailbox(guid);
  if (!from.ok()) return abandon("the source: " + from.status().message());
  auto stream = dst->ReadMailbox(guid);
  if (!stream.ok()) return abandon("the target: " + stream.status().message());
  const MailboxInfo h = (*stream)->mailbox();
  if (h.state != MailboxState::kMovingIn) {
    return abandon("the target mailbox is " + std::string(MailboxStateName(h.state)) + ", not moving in");
  }
  if (from->state != MailboxState::kActive || !from->tracked || from->pruned_through > h.change_number ||
      from->change_number < h.change_number) {
    return abandon("the source's change index does not reach back to the target's change number " +
                   std::to_string(h.change_number));
  }
  st.folders = (*stream)->folders();
  ItemChunk chunk;
  for (;;) {
    if (Status s = (*stream)->Next(options_.batch_bytes, &chunk); !s.ok()) return abandon("the target: " + s.message());
    if (chunk.items.empty()) break;
    for (const ItemRef& r : chunk.items) {
      auto v = VerifyRecordWithSize(r.record);
      if (!v.ok()) return abandon("the target's item " + std::to_string(r.item_id) + ": " + v.status().message());
      st.Add(r.item_id, ModelItem{r.folder_id, MixItemHash(v->content_hash), r.record.size(), v->logical_bytes});
      (*stream)->Release(r.record);
    }
  }
  if (st.items.size() != h.item_count || st.stored != h.stored_bytes || st.logical != h.logical_bytes) {
    return abandon("the target holds " + std::to_string(st.items.size()) + " items, its header counts " +
                   std::to_string(h.item_count) + " (a pass or the initial copy was cut short)");
  }
  stream->reset();
  session->level = options_.recompress_level.value_or(dst->zstd_level());
  session->recode = session->level != src->zstd_level() || options_.recompress_level.has_value();
  session->synced = h.change_number;
  st.header = EncodeMailboxInfo(h);
  st.copied_items = st.items.size();
  st.copied_bytes = st.stored;
  rep.folders = st.folders.size();
  rep.phase_seconds["resume"] = SecondsSince(t);
  return session;
}

// One pass: what changed on the source since the last one, onto the target.
// Under the lock the source is moving-out and nothing changes any more.
ChangesPage MailboxMover::PassPage() const {
  ChangesPage page;
  page.max_record_bytes = std::max<uint64_t>(1, options_.changes_page_bytes);
  return page;
}

Status MailboxMover::OnlinePass(OnlineSession* session, bool under_lock, std::optional<ChangeSet> first_page) {
  StoreHandle* src = session->run.src;
  const Guid guid = session->task.user.mailbox;
  MailboxReport& rep = session->run.rep;
  // In pages of at most changes_page_bytes of records, so that a pass of
  // any size fits the server's messages and this process's memory. The
  // pages may come from different snapshots (the user keeps working): the
  // pass's sync point is the first page's change number, so the next pass
  // reads again whatever changed after it, the later pages' items included.
  ChangesPage page = PassPage();
  uint64_t sync_point = 0;
  size_t items = 0, entries = 0;
  for (bool first = true;; first = false) {
    // (The first page may have come with the lock.)
    Result<ChangeSet> cs = first && first_page ? Result<ChangeSet>(std::move(*first_page))
                                               : src->ReadChanges(guid, session->synced, page);
    if (!cs.ok()) return cs.status().WithContext("reading the source's changes");
    if (first) {
      if (!under_lock && cs->mailbox.state != MailboxState::kActive) {
        return Status::Busy("the source mailbox is " + std::string(MailboxStateName(cs->mailbox.state)) +
                            ", not active");
      }
      sync_point = cs->mailbox.change_number;
      entries = cs->entries.size();
    }
    if (cs->more && cs->next_after_item <= page.after_item) {
      return Status::Corruption("reading the source's changes: a page after item " + std::to_string(page.after_item) +
                                " says more follow after item " + std::to_string(cs->next_after_item));
    }
    if (Status s = ApplyDelta(*cs, session->run.dst, session->level, session->recode, &session->st,
                              &session->dropped, !cs->more, cs->more ? session->synced : sync_point);
        !s.ok()) {
      NoteTargetFull(s);
      return s.WithContext("writing the target");
    }
    items += cs->items.size();
    ++rep.change_pages;
    if (!cs->more) break;
    page.after_item = cs->next_after_item;
    CrashPoint("move-online-page");
  }
  rep.pass_items.push_back(items);
  session->synced = sync_point;
  // What the target now has, the source's index need not keep; it is
  // pruned once it holds enough to matter (each prune is a source commit,
  // and the whole index goes with the clean-up anyway).
  if (!under_lock && entries >= kPruneEntries) {
    if (auto p = src->TrackChanges(guid, session->synced); !p.ok()) {
      return p.status().WithContext("pruning the change index");
    }
  }
  if (options_.retry.Exceeded(int64_t(session->dropped.size()))) {
    return Status::Aborted(std::to_string(session->dropped.size()) +
                           " item(s) could not be read, more than the bad-item limit of " +
                           std::to_string(options_.retry.bad_item_limit));
  }
  return Status::Ok();
}

Result<uint64_t> MailboxMover::SyncOnline(OnlineSession* session) {
  if (session->ended) return Status::InvalidArgument("the online move has ended");
  Run& run = session->run;
  // Called off before the pass: nothing written, the session as it was; its
  // owner rolls it back or leaves it at `syncing` for another runner.
  if (std::string off = run.CalledOff(); !off.empty()) return Status::Aborted(off);
  const auto t = Clock::now();
  if (Status s = OnlinePass(session, false); !s.ok()) {
    session->ended = true;
    run.rep.dropped = session->dropped;
    run.Abandon(s.message());
    return s;
  }
  ++run.rep.passes;
  run.rep.phase_seconds["sync"] += SecondsSince(t);
  CrashPoint("move-online-pass");
  return run.rep.pass_items.back();
}

MailboxMover::OnlineProgress MailboxMover::Progress(const OnlineSession& session) {
  OnlineProgress p;
  p.passes = session.run.rep.passes;
  p.items_copied = session.st.copied_items;
  p.bytes_copied = session.st.copied_bytes;
  p.last_pass_items = session.run.rep.pass_items.empty() ? 0 : session.run.rep.pass_items.back();
  p.dropped = session.dropped.size();
  return p;
}

MailboxReport MailboxMover::AbortOnline(OnlineSession* session, const std::string& why) {
  if (session->ended) return session->run.rep;
  session->ended = true;
  session->run.rep.dropped = session->dropped;
  return session->run.Abandon(why);
}

MailboxReport MailboxMover::CompleteOnline(OnlineSession* session, std::optional<MoveRecord>* cleanup) {
  Run& run = session->run;
  if (session->ended) return run.rep;
  session->ended = true;
  MailboxReport& rep = run.rep;
  MoveRecord& rec = run.rec;
  StoreHandle* src = run.src;
  StoreHandle* dst = run.dst;
  OnlineState& st = session->st;
  std::vector<DroppedItem>& dropped = session->dropped;
  const Guid guid = session->task.user.mailbox;
  auto fail = [&](const std::string& why) { return run.Fail(why); };
  auto abandon = [&](const std::string& why) { return run.Abandon(why); };
  auto abandon_write = [&](const Status& s) { return run.AbandonWrite(s); };

  // Incremental passes while clients go on, until one finds little; each
  // asks the source to lock the mailbox if it finds little (one call: the
  // last pass is then the final delta, read under the lock). The record
  // says `locked` from before the first call that may lock.
  auto t = Clock::now();
  const bool small = !rep.pass_items.empty() && rep.passes > 0 && rep.pass_items.back() <= options_.final_delta_items;
  bool recorded = false;
  auto record_lock = [&]() -> Status {
    if (recorded) return Status::Ok();
    recorded = true;
    return run.Step(MoveStep::kLocked, false);
  };
  bool locked = false;
  auto lock_start = Clock::now();
  // The final delta's first page, read from a snapshot that sees the lock.
  Result<ChangeSet> first_page = Status::Aborted("not read");
  auto lock_failed = [&](const Status& s) {
    if (s.code() == Status::Code::kIOError) {
      return fail("cannot lock the source mailbox: " + s.message() + "; it may be locked: run 'mbxmove recover'");
    }
    return abandon("cannot lock the source mailbox: " + s.message());
  };
  for (int pass = 1; pass <= options_.max_passes && !small; ++pass) {
    if (std::string off = run.CalledOff(); !off.empty()) return abandon(off);
    if (Status s = record_lock(); !s.ok()) return abandon(s.message());
    lock_start = Clock::now();
    Result<ChangeSet> page = src->ReadChangesLockingIfFew(guid, session->synced, PassPage(), options_.final_delta_items,
                                                          {MailboxState::kActive}, MailboxState::kMovingOut, &locked);
    if (locked) {
      first_page = std::move(page);
      break;
    }
    if (!page.ok() && page.status().code() == Status::Code::kIOError) return lock_failed(page.status());
    const Status s =
        page.ok() ? OnlinePass(session, false, std::move(*page)) : page.status().WithContext("reading the source's changes");
    if (!s.ok()) {
      rep.dropped = dropped;
      return abandon(s.message());
    }
    ++rep.passes;
    CrashPoint("move-online-pass");
    if (rep.pass_items.back() <= options_.final_delta_items) break;  // (few, after all: the lock below)
  }
  rep.phase_seconds["sync"] += SecondsSince(t);

  // The lock (unless a pass took it): the final delta, then verify against
  // the source as it is now.
  t = Clock::now();
  if (!locked) {
    if (std::string off = run.CalledOff(); !off.empty()) return abandon(off);
    if (Status s = record_lock(); !s.ok()) return abandon(s.message());
    lock_start = Clock::now();
    // The lock and the final delta's first page: one call (one round trip
    // to a remote source).
    first_page = src->TransitionAndReadChanges(guid, {MailboxState::kActive}, MailboxState::kMovingOut,
                                               session->synced, PassPage(), &locked);
    if (!first_page.ok() && !locked) return lock_failed(first_page.status());
  }
  CrashPoint("move-online-locked");
  if (options_.on_locked_for_test) options_.on_locked_for_test(guid);
  if (!first_page.ok()) return abandon(first_page.status().WithContext("reading the source's changes").message());
  if (Status s = OnlinePass(session, true, std::move(*first_page)); !s.ok()) {
    rep.dropped = dropped;
    return abandon(s.message());
  }
  CrashPoint("move-online-final-delta");
  {
    // The target against what the move put there, and the source (locked:
    // this is its content at the lock) against the same, read in parallel.
    // Both stores are flushed meanwhile (the final delta on the target, the
    // lock on the source): the lock window waits for the longest of the
    // four, not for their sum.
    const auto expect = st.Expect();
    auto src_sums = std::async(std::launch::async, [&] { return src->Checksums(guid); });
    auto dst_flush = std::async(std::launch::async, [dst] { return dst->Flush(); });
    auto src_flush = std::async(std::launch::async, [src] { return src->Flush(); });
    Status s = VerifyTarget(dst, guid, st.folders, expect);
    auto got = src_sums.get();
    const Status dst_flushed = dst_flush.get();
    const Status src_flushed = src_flush.get();
    if (!s.ok()) return abandon(s.message());
    if (dropped.empty()) {
      // (With dropped items the source holds records that do not read, and
      // the offline check, target against the copy, is what remains.)
      if (!got.ok()) return abandon("verify: reading the source: " + got.status().message());
      if (got->folders != st.folders) return abandon("verify: the source's folder tree changed under the lock");
      for (const FolderInfo& f : st.folders) {
        FolderSum want;
        if (auto it = expect.find(f.id); it != expect.end()) want = {it->second.items, it->second.hash_sum};
        FolderSum have;
        if (auto it = got->sums.find(f.id); it != got->sums.end()) have = it->second;
        if (have != want) {
          return abandon("verify: folder '" + f.name + "' holds " + std::to_string(have.items) +
                         " items on the source under the lock, the target " + std::to_string(want.items) +
                         (have.items == want.items ? " (content differs)" : ""));
        }
      }
    }
    if (!dst_flushed.ok()) return abandon_write(dst_flushed);
    if (!src_flushed.ok()) return abandon(src_flushed.message());
  }
  if (Status s = run.StepVerified(); !s.ok()) return abandon(s.message());
  rep.phase_seconds["verify"] = SecondsSince(t);
  CrashPoint("move-verified");

  // 4. switch, then the target activated at once: the lock window ends.
  t = Clock::now();
  if (auto failed = run.Switch()) return *failed;
  CrashPoint("move-switched");
  Status activated = dst->TransitionMailbox(guid, {MailboxState::kMovingIn}, MailboxState::kActive);
  rep.lock_ms = std::chrono::duration<double, std::milli>(Clock::now() - lock_start).count();
  rep.phase_seconds["switch"] = SecondsSince(t);

  t = Clock::now();
  rep.items_copied = st.copied_items;
  rep.bytes_copied = st.copied_bytes;
  rep.logical_bytes = st.logical;
  rep.dropped = dropped;
  rep.outcome = dropped.empty() ? Outcome::kCompleted : Outcome::kCompletedWithDroppedItems;
  if (!activated.ok()) {
    // FinishMove activates it again (or recover does).
    NoteCleanupFailed(activated, &rep);
  }
  if (cleanup != nullptr) {
    *cleanup = rec;
  } else {
    if (Status s = FinishMove(org_, rec); !s.ok()) NoteCleanupFailed(s, &rep);
    rep.phase_seconds["cleanup"] = SecondsSince(t);
  }
  rep.seconds = SecondsSince(run.start);
  counters_->mailboxes_done.fetch_add(1);
  return rep;
}

}  // namespace mbx::engine
