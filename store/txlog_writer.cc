#include "store/txlog_writer.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include "store/txlog_format.h"

namespace mbx {

std::string_view SyncModeName(SyncMode m) {
  switch (m) {
    case SyncMode::kFull: return "full";
    case SyncMode::kBatch: return "batch";
    case SyncMode::kNone: return "none";
  }
  return "unknown";
}

Result<SyncMode> ParseSyncMode(std::string_view s) {
  if (s == "full") return SyncMode::kFull;
  if (s == "batch") return SyncMode::kBatch;
  if (s == "none") return SyncMode::kNone;
  return Status::InvalidArgument("unknown sync mode '" + std::string(s) +
                                 "' (expected full, batch or none)");
}

std::string_view LogModeName(LogMode m) {
  switch (m) {
    case LogMode::kBackupFlush: return "backup-flush";
    case LogMode::kCircular: return "circular";
  }
  return "unknown";
}

Result<LogMode> ParseLogMode(std::string_view s) {
  if (s == "backup-flush") return LogMode::kBackupFlush;
  if (s == "circular") return LogMode::kCircular;
  return Status::InvalidArgument("unknown log mode '" + std::string(s) +
                                 "' (expected backup-flush or circular)");
}

std::string TxLogWriter::PathOf(uint64_t generation) const {
  return dir_ + "/" + txlog::FileName(generation);
}

TxLogWriter::~TxLogWriter() {
  (void)SyncRotated();
  if (current_ && unsynced_ && options_.sync != SyncMode::kNone) (void)current_->Sync();
}

Result<std::unique_ptr<TxLogWriter>> TxLogWriter::Open(const std::string& dir,
                                                       const LogOptions& options,
                                                       uint64_t end_lsn, Env* env) {
  if (options.file_bytes < txlog::kMinFileBytes) {
    return Status::InvalidArgument("log file size must be at least " +
                                   std::to_string(txlog::kMinFileBytes) + " bytes");
  }
  MBX_RETURN_IF_ERROR(env->CreateDir(dir).WithContext("creating the log folder"));
  std::unique_ptr<TxLogWriter> w(new TxLogWriter(dir, options, env));
  std::vector<std::string> names;
  MBX_RETURN_IF_ERROR(env->GetChildren(dir, &names));
  const uint64_t end_gen = txlog::GenerationOf(end_lsn, options.file_bytes);
  for (const std::string& n : names) {
    uint64_t g = txlog::ParseFileName(n);
    if (g == 0) continue;
    if (g > end_gen) {
      MBX_RETURN_IF_ERROR(env->RemoveFile(w->PathOf(g)));
      continue;
    }
    MBX_ASSIGN_OR_RETURN(w->files_[g], env->GetFileSize(w->PathOf(g)));
  }
  w->end_lsn_ = end_lsn;
  MBX_RETURN_IF_ERROR(w->OpenCurrent(end_gen));
  const uint64_t off = end_lsn % options.file_bytes;
  if (w->current_->Size() != off) MBX_RETURN_IF_ERROR(w->current_->Truncate(off));
  w->files_[end_gen] = off;
  w->synced_lsn_ = end_lsn;
  w->last_sync_ = std::chrono::steady_clock::now();
  return w;
}

Status TxLogWriter::OpenCurrent(uint64_t generation) {
  // One file at most waits for its sync: the one rotated out before goes
  // down now (its writeback, started then, is done by now as a rule).
  MBX_RETURN_IF_ERROR(SyncRotated());
  if (current_ && unsynced_ && options_.sync != SyncMode::kNone) {
    // The full file's tail is synced by the next Sync or rotation, not here:
    // the disk writes it meanwhile, and this thread goes on appending
    // instead of waiting for it. Sync covers it first, so nothing is
    // acknowledged as durable before it is.
    current_->StartWriteback();
    rotated_ = std::move(current_);
    unsynced_ = false;
  }
  // A full, synced log file is written once and read again only by a backup
  // or a recovery: its pages leave the page cache (see SyncRotated).
  if (current_ && !unsynced_) current_->DropCachedPages();
  current_.reset();
  bool existed = files_.count(generation) > 0;
  MBX_ASSIGN_OR_RETURN(current_, env_->OpenAppendable(PathOf(generation)));
  current_gen_ = generation;
  files_[generation] = current_->Size();
  if (!existed && options_.sync == SyncMode::kFull) MBX_RETURN_IF_ERROR(env_->SyncDir(dir_));
  return Status::Ok();
}

uint64_t TxLogWriter::disk_bytes() const {
  uint64_t b = 0;
  for (const auto& [g, n] : files_) b += n;
  return b;
}
uint64_t TxLogWriter::oldest_generation() const { return files_.empty() ? 0 : files_.begin()->first; }
uint64_t TxLogWriter::newest_generation() const { return files_.empty() ? 0 : files_.rbegin()->first; }

Status TxLogWriter::Fail(const Status& cause, uint64_t start_lsn) {
  // Take the partial record back out. If even that fails, the end of the log
  // holds bytes we cannot vouch for: refuse every further append (as ESE
  // dismounts a store whose log write failed); a reopen cuts them off.
  Status r = Rewind(start_lsn);
  if (!r.ok()) {
    broken_ = Status::IOError("transaction log of this store is unusable after a failed write (" +
                              cause.message() + "; then " + r.message() + "); reopen the store");
  }
  return cause;
}

Result<LogPosition> TxLogWriter::Append(std::string_view payload, bool use_reserve) {
  return Append(std::span<const std::string_view>(&payload, 1), use_reserve);
}

Result<LogPosition> TxLogWriter::Append(std::span<const std::string_view> payload, bool use_reserve) {
  if (!broken_.ok()) return broken_;
  uint64_t payload_bytes = 0;
  for (std::string_view p : payload) payload_bytes += p.size();
  if (payload_bytes > txlog::kMaxPayloadBytes) {
    return Status::InvalidArgument("log record too large: " + std::to_string(payload_bytes) + " bytes");
  }
  const uint64_t record_bytes = payload_bytes + txlog::kRecordOverheadBytes;
  const uint64_t limit = options_.quota_bytes + (use_reserve ? kReserveBytes : 0);
  if (options_.quota_bytes != 0 && disk_bytes() + record_bytes > limit) {
    return Status::QuotaExceeded(
        "log space exhausted: run a backup or switch to circular logging (log files hold " +
        std::to_string(disk_bytes()) + " bytes, quota " + std::to_string(options_.quota_bytes) +
        " bytes, this commit needs " + std::to_string(record_bytes) + " more)");
  }
  // The record is written as header, the payload's pieces, trailer: the
  // payload is never copied here. One gathered write per log file it touches.
  std::string header, trailer;
  txlog::FrameHeader(end_lsn_, payload, &header, &trailer);
  LogPosition pos{end_lsn_, end_lsn_ + record_bytes};
  std::vector<std::string_view>& all = pieces_;
  all.clear();
  all.reserve(payload.size() + 2);
  all.push_back(header);
  for (std::string_view p : payload) {
    if (!p.empty()) all.push_back(p);
  }
  all.push_back(trailer);
  std::vector<std::string_view>& segment = segment_;
  size_t i = 0;
  while (i < all.size()) {
    const uint64_t off = end_lsn_ % options_.file_bytes;
    const uint64_t gen = txlog::GenerationOf(end_lsn_, options_.file_bytes);
    if (gen != current_gen_ || !current_) {
      Status s = OpenCurrent(gen);
      if (!s.ok()) return Fail(s, pos.start_lsn);
    }
    // The pieces (or the part of one) that fit in this file.
    uint64_t room = options_.file_bytes - off, n = 0;
    segment.clear();
    while (i < all.size() && room > 0) {
      std::string_view& p = all[i];
      const size_t take = size_t(std::min<uint64_t>(p.size(), room));
      segment.push_back(p.substr(0, take));
      room -= take;
      n += take;
      p.remove_prefix(take);
      if (p.empty()) ++i;
    }
    Status s = current_->AppendV(segment);
    if (!s.ok()) return Fail(s, pos.start_lsn);
    files_[gen] = current_->Size();
    unsynced_ = true;
    end_lsn_ += n;
  }
  bool sync_now = options_.sync == SyncMode::kFull ||
                  (options_.sync == SyncMode::kBatch &&
                   std::chrono::steady_clock::now() - last_sync_ >= options_.sync_interval);
  if (sync_now) {
    Status s = Sync();
    if (!s.ok()) return Fail(s, pos.start_lsn);
  }
  return pos;
}

Status TxLogWriter::SyncRotated() {
  if (!rotated_) return Status::Ok();
  std::unique_ptr<WritableFile> f = std::move(rotated_);
  const auto t0 = std::chrono::steady_clock::now();
  if (Status s = f->Sync(); !s.ok()) {
    broken_ = Status::IOError("transaction log unusable: " + s.message() +
                              " (what it covered may not be on disk); reopen the store");
    return s;
  }
  sync_time_ += std::chrono::steady_clock::now() - t0;
  ++syncs_;
  // Written once, read again only by a backup or a recovery: once synced,
  // its pages leave the page cache, whose memory the next files and
  // data.mdb's writes then reuse. Kept, a move of 'medium' (1.4 GiB of log)
  // ran at a quarter of the speed on this project's virtual machine, its
  // writes slowed in the kernel's page-cache copy (perf/README.md,
  // writepath-log-cache).
  f->DropCachedPages();
  return Status::Ok();
}

Status TxLogWriter::Sync() {
  if (!broken_.ok()) return broken_;
  MBX_RETURN_IF_ERROR(SyncRotated());
  if (!current_ || !unsynced_) {
    synced_lsn_ = end_lsn_;  // (one file at most is ever rotated out unsynced)
    return Status::Ok();
  }
  auto t0 = std::chrono::steady_clock::now();
  if (Status s = current_->Sync(); !s.ok()) {
    // The kernel may have dropped the dirty pages this sync covered and
    // cleared the error, so a retry would "succeed" over lost records: no
    // append is trusted again until a reopen reads what is on disk.
    broken_ = Status::IOError("transaction log unusable: " + s.message() +
                              " (what it covered may not be on disk); reopen the store");
    return s;
  }
  last_sync_ = std::chrono::steady_clock::now();
  sync_time_ += last_sync_ - t0;
  ++syncs_;
  unsynced_ = false;
  synced_lsn_ = end_lsn_;
  return Status::Ok();
}

Status TxLogWriter::SyncTo(uint64_t lsn) {
  if (!broken_.ok()) return broken_;
  if (synced_lsn_ >= lsn) return Status::Ok();
  return Sync();
}

Status TxLogWriter::Rewind(uint64_t lsn) {
  if (lsn > end_lsn_) return Status::Internal("rewind past the end of the log");
  if (Status s = SyncRotated(); !s.ok()) return s;  // (the writer is broken then)
  const uint64_t gen = txlog::GenerationOf(lsn, options_.file_bytes);
  for (auto it = files_.upper_bound(gen); it != files_.end();) {
    if (it->first == current_gen_) current_.reset();
    MBX_RETURN_IF_ERROR(env_->RemoveFile(PathOf(it->first)));
    it = files_.erase(it);
  }
  if (gen != current_gen_ || !current_) {
    current_.reset();
    Status s = OpenCurrent(gen);
    if (!s.ok()) {
      broken_ = Status::IOError("transaction log unusable: " + s.message() + "; reopen the store");
      return s;
    }
  }
  Status s = current_->Truncate(lsn % options_.file_bytes);
  if (!s.ok()) {
    broken_ = Status::IOError("transaction log unusable: " + s.message() + "; reopen the store");
    return s;
  }
  files_[gen] = lsn % options_.file_bytes;
  end_lsn_ = lsn;
  synced_lsn_ = std::min(synced_lsn_, lsn);  // the LSNs after it will name other records
  return Status::Ok();
}

Result<int> TxLogWriter::RemoveBefore(uint64_t lsn) {
  int removed = 0;
  for (auto it = files_.begin(); it != files_.end();) {
    const uint64_t file_end = it->first * options_.file_bytes;  // LSN just past this file
    if (it->first == current_gen_ || file_end > lsn) break;
    MBX_RETURN_IF_ERROR(env_->RemoveFile(PathOf(it->first)));
    it = files_.erase(it);
    ++removed;
  }
  return removed;
}

Status TxLogWriter::WriteCheckpointFile(uint64_t lsn, bool sync) {
  return env_->WriteFileAtomic(dir_ + "/" + txlog::kCheckpointFile, txlog::EncodeCheckpoint(lsn), sync);
}

}  // namespace mbx
