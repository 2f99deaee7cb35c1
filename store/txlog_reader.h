// TxLogReader: reads a transaction log's records in LSN order, from a given
// LSN, for replay after a crash and for roll-forward after a restore.
//
// Memory stays bounded by the largest record plus one log file, whatever the
// length of the log. Not thread-safe; one user at a time.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "store/file_io.h"
#include "store/status.h"

namespace mbx {

struct LogRecord {
  uint64_t start_lsn = 0;
  uint64_t end_lsn = 0;
  std::string payload;
};

class TxLogReader {
 public:
  // Reads the log in folder `dir` made of files of `file_bytes`, starting at
  // `from_lsn` (which must be a record boundary, e.g. a checkpoint), through
  // `env` (nullptr = Env::Default(); not owned, must outlive the reader).
  TxLogReader(std::string dir, uint64_t file_bytes, uint64_t from_lsn, Env* env = nullptr);

  // Reads the next record into *rec. Returns true with a record, false at
  // the end of the valid log, or Corruption when a record that is not at the
  // end of the log is damaged, or when the file that should hold from_lsn is
  // missing while later files exist (a gap), or when the log ends inside a
  // range E00.gap lists (records lost in a machine crash: rolling forward
  // across them would silently drop what follows).
  Result<bool> Next(LogRecord* rec);

  // After Next() returned false: the LSN just past the last valid record,
  // and whether the log ended in a torn (partial or unverifiable) record.
  uint64_t valid_end_lsn() const { return next_lsn_; }
  bool torn_tail() const { return torn_; }
  // After Next() returned false at once: the newest log file ends before
  // from_lsn. The database holds every record before its checkpoint (it is
  // written in the transaction that applies them), so this is no loss for
  // the store: a machine crash kept the database's synced commit but not the
  // log's unsynced tail (sync batch or none). The records in
  // [lost_from_lsn(), from_lsn) are gone from the log; the store notes that
  // in E00.gap so that no roll-forward crosses them.
  bool lost_behind_checkpoint() const { return behind_; }
  uint64_t lost_from_lsn() const { return lost_from_; }

 private:
  // Makes at least n bytes available from pos_; false if the log ends first.
  Result<bool> Ensure(size_t n);
  Result<bool> LoadNextFile();
  // Generation `gen` (`size` bytes) ends the log if it is a rotated file
  // that lost its tail: sets last_gen_ to it.
  void EndAtRotatedTail(uint64_t gen, uint64_t size);
  // false at the end of the valid log, unless that end is inside a gap.
  Result<bool> EndOfLog() const;

  std::string dir_;
  Env* env_;
  uint64_t file_bytes_;
  uint64_t next_lsn_;      // LSN of the next record to read
  std::string buf_;        // bytes of the log starting at buf_lsn_
  uint64_t buf_lsn_;
  size_t pos_ = 0;         // offset in buf_ of next_lsn_
  uint64_t next_gen_;      // next generation file to load
  uint64_t last_gen_ = 0;  // newest generation present in the folder
  bool started_ = false;
  bool torn_ = false;
  bool behind_ = false;
  uint64_t lost_from_ = 0;
  std::vector<std::pair<uint64_t, uint64_t>> gaps_;  // from E00.gap
};

}  // namespace mbx
