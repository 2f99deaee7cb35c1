// Store: the write path. Every write is a WriteBatch handed to the store's
// group-commit writer, whose two stages are PrepareGroup (log thread: append
// the group's redo record to the log) and ApplyGroup (apply thread: apply it
// to LMDB in one transaction with the new checkpoint). Also: growing the map
// when it is full, and Flush. (BatchWriter, which keeps batches in
// flight for a caller, is in store_handle.cc.)
#include "store/store.h"

#include <algorithm>
#include <cerrno>

#include "store/crash_point.h"
#include "store/store_internal.h"
#include "store/txlog_format.h"

namespace mbx {

namespace store_internal {

Status PutCheckpoint(MDB_txn* txn, MDB_dbi meta_dbi, uint64_t lsn, int* rc) {
  MDB_val k = ToVal(meta::kCheckpoint);
  std::string v = Fixed64String(lsn);
  MDB_val mv = ToVal(v);
  *rc = mdb_put(txn, meta_dbi, &k, &mv, 0);
  return LmdbStatus(*rc, "writing checkpoint");
}

// Applies one mutation; LMDB's rc comes back in *rc for MDB_MAP_FULL handling.
Status ApplyMutation(MDB_txn* txn, const MDB_dbi* dbis, Mutation::Op op, Db db,
                     std::string_view key, std::string_view value, int* rc,
                     std::vector<std::string_view>* deleted) {
  MDB_dbi dbi = dbis[int(db)];
  MDB_val k = ToVal(key);
  switch (op) {
    case Mutation::Op::kPut: {
      MDB_val v = ToVal(value);
      *rc = mdb_put(txn, dbi, &k, &v, 0);
      return LmdbStatus(*rc, "writing record");
    }
    case Mutation::Op::kDelete: {
      *rc = mdb_del(txn, dbi, &k, nullptr);
      if (*rc == MDB_NOTFOUND) *rc = 0;
      return LmdbStatus(*rc, "deleting record");
    }
    case Mutation::Op::kDeletePrefix: {
      LmdbCursor cur;
      MBX_RETURN_IF_ERROR(cur.Open(txn, dbi));
      MDB_val ck = k, cv;
      if (deleted) {
        // The records as they lie in the map, before the delete changes a
        // page: a delete rebalances, which copies the next leaf page before
        // the cursor reaches it.
        *rc = mdb_cursor_get(cur.get(), &ck, &cv, MDB_SET_RANGE);
        while (*rc == 0 && FromVal(ck).substr(0, key.size()) == key) {
          deleted->push_back(FromVal(ck));
          deleted->push_back(FromVal(cv));
          *rc = mdb_cursor_get(cur.get(), &ck, &cv, MDB_NEXT);
        }
        if (*rc != 0 && *rc != MDB_NOTFOUND) return LmdbStatus(*rc, "reading the records to delete");
        ck = k;
      }
      *rc = mdb_cursor_get(cur.get(), &ck, &cv, MDB_SET_RANGE);
      while (*rc == 0 && FromVal(ck).substr(0, key.size()) == key) {
        *rc = mdb_cursor_del(cur.get(), 0);
        if (*rc != 0) break;
        *rc = mdb_cursor_get(cur.get(), &ck, &cv, MDB_NEXT);
      }
      if (*rc == MDB_NOTFOUND) *rc = 0;
      return LmdbStatus(*rc, "deleting records");
    }
  }
  return Status::Internal("unknown mutation");
}

}  // namespace store_internal

using store_internal::ApplyMutation;
using store_internal::PutCheckpoint;

namespace {

// A group the store takes while running on its reserve (see store.h).
bool FreesSpace(const std::vector<const WriteBatch*>& batches) {
  for (const WriteBatch* b : batches) {
    if (!b->MayUseLogReserve()) return false;
  }
  return true;
}

}  // namespace

Status Store::ApplyPayload(MDB_txn* txn, std::string_view payload, int* rc) {
  return txlog::ForEachMutation(payload, [&](Mutation::Op op, Db db, std::string_view k,
                                             std::string_view v) {
    return ApplyMutation(txn, dbi_, op, db, k, v, rc);
  });
}

Status Store::GrowMap() {
  const uint64_t next = std::max<uint64_t>(map_bytes_ * 2, map_bytes_ + (64u << 20));
  std::unique_lock<std::mutex> l(gate_mu_);
  resizing_ = true;
  gate_cv_.wait(l, [&] { return readers_ == 0; });
  int rc = mdb_env_set_mapsize(env_.get(), next);
  resizing_ = false;
  l.unlock();
  gate_cv_.notify_all();
  if (rc != 0) return LmdbStatus(rc, "growing the store map to " + std::to_string(next) + " bytes");
  map_bytes_ = next;
  map_resizes_.fetch_add(1);
  return Status::Ok();
}

Status Store::PrepareGroup(const std::vector<const WriteBatch*>& batches, GroupCommitWriter::Token* token) {
  // The payload as a gather list: its framing (and small values) copied
  // into a buffer kept across groups (log thread only), the large values
  // written to the log from where the batches hold them.
  std::string& frame = payload_buffer_;
  txlog::EncodePayloadPieces(batches, &frame, &payload_pieces_);
  copied_bytes_.fetch_add(frame.size(), std::memory_order_relaxed);

  {
    std::lock_guard<std::mutex> l(log_mu_);
    if (!broken_.ok()) return broken_;
    LogHousekeeping();
    const bool frees_space = FreesSpace(batches);
    // Running on the reserve: until the store is reopened with room for it
    // again. (Holding it again here would let one store take back the
    // space another store on the same disk just gave up for its rollbacks.)
    if (!frees_space && !out_of_space_.ok()) return out_of_space_;
    Result<LogPosition> appended = log_->Append(payload_pieces_, frees_space);
    if (!appended.ok() && appended.status().IsNoSpace()) {
      // The failed append was cut back out of the log. A space-freeing
      // group goes again, into the space the reserve gave back.
      const Status full = RunOnReserve(appended.status());
      if (!frees_space) return full;
      appended = log_->Append(payload_pieces_, frees_space);
    }
    MBX_ASSIGN_OR_RETURN(LogPosition pos, std::move(appended));
    token->start_lsn = pos.start_lsn;
    token->end_lsn = pos.end_lsn;
    token->log_epoch = log_epoch_;
  }
  CrashPoint("log-appended");
  if (frame.capacity() > (64u << 20)) std::string().swap(frame);  // do not hoard a huge one
  return Status::Ok();
}

void Store::LogHousekeeping() {
  const auto [checkpoint, prev] = Checkpoints();
  if (log_->options().mode == LogMode::kCircular && log_->newest_generation() >= log_remove_retry_gen_) {
    // Everything before `prev` is in the database durably (the data
    // checkpoint's, or the previous commit's, whose data was synced with the
    // next one's), so whole log files before it can go. A file that cannot be removed is kept (it
    // costs space, which the log quota and the disk reserve account for) and
    // reported in LogInfo; the next try comes with the next log file.
    if (auto removed = log_->RemoveBefore(prev); !removed.ok()) {
      log_remove_error_ = removed.status();
      ++log_remove_failures_;
      log_remove_retry_gen_ = log_->newest_generation() + 1;
    } else {
      log_remove_error_ = Status::Ok();
      log_remove_retry_gen_ = 0;
    }
  }
  // E00.chk is what an administrator reads (the database holds the
  // authoritative checkpoint, and the close writes it last): refreshed once
  // the checkpoint has entered another log file, at most once a second.
  // Each write creates and renames a file, which cost this thread about a
  // millisecond when it came with every log file.
  const uint64_t gen = txlog::GenerationOf(checkpoint, log_->options().file_bytes);
  const auto now = std::chrono::steady_clock::now();
  if (gen != checkpoint_file_gen_ && now - checkpoint_file_written_ >= std::chrono::seconds(1)) {
    (void)log_->WriteCheckpointFile(prev, /*sync=*/false);
    checkpoint_file_gen_ = gen;
    checkpoint_file_written_ = now;
  }
}

std::pair<uint64_t, uint64_t> Store::Checkpoints() {
  std::lock_guard<std::mutex> l(ckpt_mu_);
  return {checkpoint_lsn_, prev_checkpoint_lsn_};
}

Status Store::ApplyGroup(const std::vector<const WriteBatch*>& batches, const GroupCommitWriter::Token& token) {
  const LogPosition pos{token.start_lsn, token.end_lsn};
  const bool frees_space = FreesSpace(batches);
  bool retried_on_reserve = false;
  Status s;
  for (int attempt = 0;; ++attempt) {
    // log_epoch_ and broken_ change only on this thread (below, after a
    // failed commit), so they are read here without log_mu_: the apply
    // thread never waits for the log thread, which holds log_mu_ across its
    // appends, rotations and syncs.
    if (token.log_epoch != log_epoch_ || data_broken_.load(std::memory_order_relaxed)) {
      std::lock_guard<std::mutex> l(log_mu_);
      if (token.log_epoch != log_epoch_) {
        // An earlier group failed to commit and the log was cut back before
        // this group's record: it was never applied and will never be replayed.
        return store_internal::NotAppliedAfterFailedCommit(name_);
      }
      // A data sync failed after this group was logged: the database may
      // have lost its last commits (the kernel dropped their pages), and a
      // commit now would build on that and record a checkpoint past them.
      // Take this group (and any logged after it) back out of the log; the
      // reopen replays what was acknowledged.
      ++log_epoch_;
      Status r = log_->Rewind(pos.start_lsn);
      if (!r.ok()) return Status::IOError(broken_.message() + "; the log could not be rewound (" + r.message() + ")");
      return broken_;
    }
    std::unique_lock<std::mutex> sync_lock(lmdb_sync_mu_);
    LmdbTxn txn;
    s = txn.Begin(env_.get(), 0);
    int rc = 0;
    uint64_t put_bytes = 0;  // what mdb_put copies into the pages
    dead_records_.clear();
    if (s.ok()) {
      for (const WriteBatch* b : batches) {
        for (const Mutation& m : b->mutations()) {
          s = ApplyMutation(txn.get(), dbi_, m.op, m.db, m.key, m.bytes(), &rc, &dead_records_);
          if (!s.ok()) break;
          if (m.op == Mutation::Op::kPut) put_bytes += m.key.size() + m.bytes().size();
        }
        if (!s.ok()) break;
      }
    }
    if (s.ok()) s = PutCheckpoint(txn.get(), dbi_[0], pos.end_lsn, &rc);
    if (s.ok()) DeadRecordsToRanges();  // while the views into the map hold
    if (s.ok()) {
      rc = txn.CommitRc();
      s = LmdbStatus(rc, "committing to store " + name_);
    }
    if (s.ok()) {
      unsigned flags = 0;
      if (mdb_env_get_flags(env_.get(), &flags) == 0 && !(flags & MDB_NOSYNC)) data_syncs_.fetch_add(1);
      copied_bytes_.fetch_add(put_bytes, std::memory_order_relaxed);
      break;
    }
    txn.Abort();
    sync_lock.unlock();
    if (rc == MDB_MAP_FULL && attempt < 40) {
      Status g = GrowMap();
      if (g.ok()) continue;
      s = g;
    }
    if (s.IsNoSpace() && frees_space && !retried_on_reserve) {
      // LMDB aborted the transaction and the environment is as it was (a
      // failed page write is not fatal to it; only a failed meta page write
      // would be, and that overwrites allocated blocks). The group's record
      // stays logged; apply it again into the space the reserve gives back.
      std::lock_guard<std::mutex> l(log_mu_);
      (void)RunOnReserve(s);
      retried_on_reserve = true;
      continue;
    }
    // Nothing was applied: take the record (and any logged after it) back
    // out of the log so that a replay can never apply a group we report as
    // failed; the groups logged after it fail by their epoch.
    std::lock_guard<std::mutex> l(log_mu_);
    ++log_epoch_;
    if (rc == EIO) MarkBroken(s);
    if (s.IsNoSpace()) s = RunOnReserve(s);
    Status r = log_->Rewind(pos.start_lsn);
    if (!r.ok()) {
      // The record may still be in the log, and a replay would apply it:
      // an I/O error, whatever the cause was (callers treat only that as
      // "may have happened").
      return Status::IOError("store " + name_ + ": " + s.message() + ", and the log could not be rewound (" +
                             r.message() + ")");
    }
    return s.IsNoSpace() ? s : s.WithContext("store " + name_);  // the out-of-space message names the store
  }
  CrashPoint("lmdb-committed");

  {
    // What the log's files may now drop (circular logging) and E00.chk are
    // the log thread's to act on, before its next append (LogHousekeeping).
    // With deferred data syncs that is the data checkpoint's, set by it.
    std::lock_guard<std::mutex> l(ckpt_mu_);
    if (!deferred_data_sync_) prev_checkpoint_lsn_ = checkpoint_lsn_;
    checkpoint_lsn_ = pos.end_lsn;
  }
  DropDeadPages();
  if (deferred_data_sync_) MaybeTakeDataCheckpoint(pos.end_lsn - pos.start_lsn);
  return Status::Ok();
}

// The log holds every committed group, so syncing it makes every
// acknowledged write durable: data.mdb needs no sync of its own here. A
// machine that stops comes back with data.mdb at its data checkpoint
// (deferred data syncs, see store.h) or, when each commit syncs its pages
// (MDB_NOMETASYNC, leaving its meta page to the next commit's sync), at the
// commit before the last; either is at or before the lost commits' records,
// so the reopen replays them from the synced log.
//
// What must be durable is what was acknowledged: the groups applied, the
// log up to the checkpoint. A flusher whose checkpoint a sync since then
// covered (another mover's flush, the batch timer) returns without syncing
// again for the groups logged after it: with several moves in flight most
// flushes were such repeats, each an fdatasync that held up the log thread.
Status Store::Flush() {
  const uint64_t acknowledged = Checkpoints().first;
  std::lock_guard<std::mutex> l(log_mu_);
  if (log_->options().sync == SyncMode::kNone) return Status::Ok();
  if (!broken_.ok()) return broken_;
  return log_->SyncTo(acknowledged);
}

void Store::MarkBroken(const Status& cause) {
  if (!broken_.ok()) return;
  broken_ = Status::IOError("store " + name_ + " refuses reads and writes after an I/O error on data.mdb (" +
                            cause.message() +
                            "): what it covered may not be on disk; reopen the store, which recovers from the "
                            "transaction log");
  data_broken_.store(true, std::memory_order_release);
}

Status Store::RunOnReserve(const Status& cause) {
  const bool released = reserve_ != nullptr && reserve_->held();
  if (released) (void)reserve_->Release();  // if even removing it fails, there is nothing more to give
  if (!out_of_space_.ok() && !released) return out_of_space_;
  const std::string mib = std::to_string(reserve_ ? reserve_->bytes() >> 20 : 0);
  out_of_space_ = Status::NoSpace(
      "store " + name_ + " is out of disk space (" + cause.message() + "): running on its reserve, it takes only "
      "what rolls moves and imports back, and refuses new moves and imports; free space on its file system, then "
      "run them again (it takes them once it is opened with room for its " + mib +
      " MiB reserve and as much again, e.g. by 'mbxmove recover')");
  return out_of_space_;
}

Status Store::Write(WriteBatch batch) { return writer_->Write(std::move(batch)); }

Status Store::WriteHeaderBatch(const WriteBatch& batch) {
  for (int attempt = 0;; ++attempt) {
    Status s = Write(batch);
    if (attempt < 3 && store_internal::IsNotAppliedAfterFailedCommit(s)) continue;
    return s;
  }
}
std::future<Status> Store::WriteAsync(WriteBatch batch) { return writer_->Submit(std::move(batch)); }

}  // namespace mbx
