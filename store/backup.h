// Backup and restore of a store (Store::Backup is declared in store.h).
//
// A full backup folder holds data.mdb (a consistent LMDB copy made while the
// store stays online) and backup.json: the store name, the log position
// (LSN) the copy covers, the log file size and the time. An incremental
// backup folder holds the log files written since the previous backup and a
// backup.json with the LSN range they cover.
//
// Every file is written through the store's Env (file_io.h): data.mdb and
// the log files first, fsynced, and backup.json last, so a backup folder
// without backup.json is not a backup. The manifest records the size and
// XXH3-64 of every file it lists; restore checks them as it copies and
// refuses a backup that does not match: a backup is whole or refused.
//
// Restore puts a full backup's database back (after checking that doing so
// can succeed), copies in the log files of any incremental backups given,
// and opens the store, which rolls forward every log record present after the
// backup's LSN: up to the point of failure in backup-flush mode. In circular
// mode the logs after the backup are gone, the store comes back as it was at
// the backup, and the result says so.
#pragma once

#include <string>
#include <vector>

#include "store/status.h"
#include "store/txlog_writer.h"

namespace mbx {

struct BackupManifest {
  std::string store;
  std::string kind;  // "full" or "incremental"
  uint64_t lsn = 0;        // full: position covered; incremental: end of the copied logs
  uint64_t from_lsn = 0;   // incremental: start of the copied logs
  uint64_t file_bytes = 0;
  std::string log_mode;
  std::string created;
  // full: size and XXH3-64 of data.mdb
  uint64_t data_bytes = 0;
  uint64_t data_xxh3 = 0;
  // incremental: the log files copied
  struct LogFile {
    std::string name;
    uint64_t bytes = 0;
    uint64_t xxh3 = 0;
  };
  std::vector<LogFile> log_files;
};
Result<BackupManifest> ReadBackupManifest(const std::string& backup_dir, Env* env = nullptr);
Status WriteBackupManifest(const std::string& backup_dir, const BackupManifest& m, Env* env = nullptr);

struct RestoreResult {
  uint64_t backup_lsn = 0;      // where the backup stood
  uint64_t restored_lsn = 0;    // where the store stands after roll-forward
  uint64_t replayed_records = 0;
  bool rolled_forward = false;  // false in circular mode: later changes are lost
  std::string message;          // one paragraph for the user
};

// `store_dir` must not be open in any process (Busy otherwise). `backups`:
// one full backup folder, then optionally incremental ones in the order they
// were taken. Every file operation goes through `env` (nullptr =
// Env::Default()), also when the restored store is opened. If restore fails,
// the backup folders are unchanged and restoring again can succeed;
// data.mdb is replaced by one rename, so the store holds the old database or
// the restored one, never a part of either.
Result<RestoreResult> RestoreStore(const std::string& store_dir, const std::string& store_name,
                                   const std::vector<std::string>& backups, Env* env = nullptr);

}  // namespace mbx
