// TxLogWriter: appends redo records to a store's transaction log.
//
// Used only by the store's group-commit writer thread (and by store open and
// restore before that thread starts): not thread-safe, one owner at a time.
//
// Contract with the store: Append() a group's record, then commit the LMDB
// transaction that applies it (with the record's end LSN as the store's
// checkpoint). If the commit fails, Rewind() to the record's start so that
// replay can never apply a group that was reported as failed.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "store/file_io.h"
#include "store/status.h"
#include "store/txlog_format.h"

namespace mbx {

enum class SyncMode : uint8_t {
  kFull = 0,   // fdatasync the log before each group commit is acknowledged
  kBatch = 1,  // fdatasync at most every sync_interval (a crash of the OS may
               // lose the last interval's acknowledged commits; a crash of
               // the process loses nothing)
  kNone = 2,   // never fdatasync: benchmarks only
};
std::string_view SyncModeName(SyncMode m);
Result<SyncMode> ParseSyncMode(std::string_view s);

enum class LogMode : uint8_t {
  kBackupFlush = 0,  // logs accumulate until a backup truncates them
  kCircular = 1,     // logs behind the checkpoint are deleted
};
std::string_view LogModeName(LogMode m);
Result<LogMode> ParseLogMode(std::string_view s);

struct LogOptions {
  uint64_t file_bytes = txlog::kDefaultFileBytes;  // size of each log file (generation)
  LogMode mode = LogMode::kBackupFlush;
  uint64_t quota_bytes = 0;  // bytes of log files on disk allowed; 0 = no quota
  SyncMode sync = SyncMode::kBatch;
  std::chrono::milliseconds sync_interval{50};  // kBatch: max time between syncs
};

struct LogPosition {
  uint64_t start_lsn = 0;
  uint64_t end_lsn = 0;
};

class TxLogWriter {
 public:
  // Opens the log folder `dir` (created if missing) to append at `end_lsn`:
  // files beyond end_lsn are removed and the file holding it is cut there.
  static Result<std::unique_ptr<TxLogWriter>> Open(const std::string& dir,
                                                   const LogOptions& options,
                                                   uint64_t end_lsn, Env* env);
  ~TxLogWriter();

  // Appends one record holding `payload`. Fails with QuotaExceeded, before
  // writing anything, if the log files would then pass the quota. Syncs
  // according to the sync mode (kFull: before returning). A failed append is
  // taken back out of the log; if that fails too, the writer refuses every
  // later append (the store must be reopened, which cuts the torn tail).
  // `use_reserve` lets a space-freeing record (deletes only) pass the quota
  // by up to kReserveBytes.
  Result<LogPosition> Append(std::string_view payload, bool use_reserve = false);
  // The same, for a payload given as pieces (txlog::EncodePayloadPieces),
  // written without gathering them into one buffer first.
  Result<LogPosition> Append(std::span<const std::string_view> payload, bool use_reserve = false);
  static constexpr uint64_t kReserveBytes = 1u << 20;

  // Syncs now whatever was appended and not yet synced. A failed sync is
  // fatal to the writer (as a failed append that cannot be taken back is):
  // the kernel may have dropped what it covered, so every later Append and
  // Sync fails with "reopen the store", and reopening reads what is on disk.
  Status Sync();
  // Syncs only if the log up to `lsn` is not yet synced: a caller whose
  // records an earlier sync covered (another flusher's, the batch timer's)
  // does not sync again for the records appended since.
  Status SyncTo(uint64_t lsn);
  // Cuts the log back to `lsn` (>= the oldest file present, <= end_lsn()).
  Status Rewind(uint64_t lsn);
  // Deletes every log file that lies wholly before `lsn` (never the file
  // being appended to). Returns the number of files deleted.
  Result<int> RemoveBefore(uint64_t lsn);
  // Writes E00.chk holding `lsn` (atomically; fsynced when `sync`). The
  // authoritative checkpoint is the one in the database; E00.chk is what an
  // administrator (and `mbxmove logs`) reads.
  Status WriteCheckpointFile(uint64_t lsn, bool sync = true);

  uint64_t end_lsn() const { return end_lsn_; }
  uint64_t synced_lsn() const { return synced_lsn_; }  // the log before it is on disk
  uint64_t disk_bytes() const;           // bytes of the log files present
  uint64_t oldest_generation() const;    // 0 if none
  uint64_t newest_generation() const;    // 0 if none
  size_t file_count() const { return files_.size(); }
  const LogOptions& options() const { return options_; }
  void set_mode(LogMode m) { options_.mode = m; }
  void set_quota(uint64_t q) { options_.quota_bytes = q; }
  void set_sync(SyncMode s) { options_.sync = s; }
  const std::string& dir() const { return dir_; }
  uint64_t syncs() const { return syncs_; }
  std::chrono::nanoseconds sync_time() const { return sync_time_; }

 private:
  TxLogWriter(std::string dir, const LogOptions& o, Env* env) : dir_(std::move(dir)), options_(o), env_(env) {}
  Status OpenCurrent(uint64_t generation);
  // Rewinds after a failed append; marks the log broken if that fails too.
  Status Fail(const Status& cause, uint64_t start_lsn);
  std::string PathOf(uint64_t generation) const;

  std::string dir_;
  LogOptions options_;
  Env* env_;
  uint64_t end_lsn_ = 0;
  std::map<uint64_t, uint64_t> files_;  // generation -> bytes in that file
  uint64_t current_gen_ = 0;
  std::unique_ptr<WritableFile> current_;
  bool unsynced_ = false;  // current_ holds appends not yet synced
  // Every record before it was synced (the log found on disk at open counts
  // as synced, as unsynced_ says of it); cut back with a rewind.
  uint64_t synced_lsn_ = 0;
  // The file rotated out last while it held unsynced appends, its writeback
  // started: synced (and dropped from the page cache) by the next Sync,
  // rotation, rewind or the close, so its fdatasync rarely waits for the disk.
  std::unique_ptr<WritableFile> rotated_;
  Status SyncRotated();
  std::chrono::steady_clock::time_point last_sync_{};
  Status broken_;  // not OK once the log could not be put back in order or a sync failed
  uint64_t syncs_ = 0;
  std::chrono::nanoseconds sync_time_{0};
  std::vector<std::string_view> pieces_, segment_;  // Append's, kept across calls
};

}  // namespace mbx
