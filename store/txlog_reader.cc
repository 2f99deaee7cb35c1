#include "store/txlog_reader.h"

#include <xxhash.h>

#include <algorithm>
#include <sstream>
#include <vector>

#include "store/coding.h"
#include "store/file_io.h"
#include "store/txlog_format.h"

namespace mbx {

TxLogReader::TxLogReader(std::string dir, uint64_t file_bytes, uint64_t from_lsn, Env* env)
    : dir_(std::move(dir)), env_(env ? env : Env::Default()), file_bytes_(file_bytes), next_lsn_(from_lsn), buf_lsn_(from_lsn),
      next_gen_(txlog::GenerationOf(from_lsn, file_bytes)) {}

void TxLogReader::EndAtRotatedTail(uint64_t gen, uint64_t size) {
  // Short with one file after it: the file the writer rotated out and had
  // not synced when the machine stopped (TxLogWriter::rotated_). Nothing in
  // the next file was synced (the writer syncs this one first), so the log
  // ends within this one: a torn tail.
  if (size < file_bytes_ && last_gen_ == gen + 1) last_gen_ = gen;
}

Result<bool> TxLogReader::LoadNextFile() {
  if (next_gen_ > last_gen_) return false;
  const std::string path = dir_ + "/" + txlog::FileName(next_gen_);
  std::string data;
  Status s = env_->ReadFile(path, &data);
  if (s.IsNotFound()) {
    return Status::Corruption("transaction log generation " + txlog::FileName(next_gen_) +
                              " is missing but later generations exist");
  }
  MBX_RETURN_IF_ERROR(s);
  const uint64_t file_start = (next_gen_ - 1) * file_bytes_;
  uint64_t skip = 0;
  if (buf_lsn_ + buf_.size() > file_start) skip = buf_lsn_ + buf_.size() - file_start;
  if (data.size() > file_bytes_) {
    return Status::Corruption("transaction log file " + path + " is larger than the log file size");
  }
  if (next_gen_ + 1 < last_gen_ && data.size() != file_bytes_) {
    return Status::Corruption("transaction log file " + path + " is short (" +
                              std::to_string(data.size()) + " of " + std::to_string(file_bytes_) +
                              " bytes) but later generations exist");
  }
  if (skip < data.size()) buf_.append(data, size_t(skip), std::string::npos);
  EndAtRotatedTail(next_gen_, data.size());
  ++next_gen_;
  return true;
}

Result<bool> TxLogReader::EndOfLog() const {
  for (const auto& [from, to] : gaps_) {
    if (next_lsn_ >= from && next_lsn_ < to) {
      return Status::Corruption("the transaction log lost its records from position " + std::to_string(from) +
                                " to " + std::to_string(to) + " in a crash of the machine (" + txlog::kGapFile +
                                "; the database had them): it cannot be rolled forward from before position " +
                                std::to_string(from) + "; restore a full backup taken after it");
    }
  }
  return false;
}

Result<bool> TxLogReader::Ensure(size_t n) {
  while (buf_.size() - pos_ < n) {
    // Drop consumed bytes so memory stays bounded.
    if (pos_ > (1u << 20)) {
      buf_.erase(0, pos_);
      buf_lsn_ += pos_;
      pos_ = 0;
    }
    MBX_ASSIGN_OR_RETURN(bool loaded, LoadNextFile());
    if (!loaded) return false;
  }
  return true;
}

Result<bool> TxLogReader::Next(LogRecord* rec) {
  if (!started_) {
    started_ = true;
    std::vector<std::string> names;
    Status s = env_->GetChildren(dir_, &names);
    if (!s.ok()) return s;
    for (const auto& n : names) last_gen_ = std::max(last_gen_, txlog::ParseFileName(n));
    if (std::find(names.begin(), names.end(), txlog::kGapFile) != names.end()) {
      std::string text;
      MBX_RETURN_IF_ERROR(env_->ReadFile(dir_ + "/" + txlog::kGapFile, &text));
      std::istringstream in(text);
      uint64_t from = 0, to = 0;
      while (in >> from >> to) gaps_.emplace_back(from, to);
    }
    // The file holding from_lsn must exist unless the log simply ends there.
    const uint64_t want = next_gen_;
    if (last_gen_ >= want) {
      std::string first;
      Status fs = env_->ReadFile(dir_ + "/" + txlog::FileName(want), &first);
      if (fs.IsNotFound() && next_lsn_ % file_bytes_ != 0) {
        return Status::Corruption("transaction log generation " + txlog::FileName(want) +
                                  " holding the checkpoint is missing");
      }
      if (fs.IsNotFound()) {
        return Status::Corruption("transaction log generation " + txlog::FileName(want) +
                                  " is missing but later generations exist");
      }
      MBX_RETURN_IF_ERROR(fs);
      const uint64_t off = next_lsn_ % file_bytes_;
      // The file ends before from_lsn: the machine stopped before the log's
      // tail reached the disk. Where it is the newest file, that tail was
      // never synced. Where one file follows it, it is the file the writer
      // rotated out and had not synced yet: the writer syncs it before any
      // sync of the next one and before opening the one after, so nothing in
      // the next file was ever synced either, and the log ends here.
      if (first.size() < off && (last_gen_ == want || last_gen_ == want + 1)) {
        behind_ = true;
        lost_from_ = (want - 1) * file_bytes_ + first.size();
        return false;
      }
      if (first.size() < off) {
        return Status::Corruption("transaction log " + txlog::FileName(want) +
                                  " ends before the checkpoint but later generations exist");
      }
      buf_.assign(first, size_t(off), std::string::npos);
      buf_lsn_ = next_lsn_;
      EndAtRotatedTail(want, first.size());
      ++next_gen_;
    }
  }
  MBX_ASSIGN_OR_RETURN(bool have_header, Ensure(txlog::kHeaderBytes));
  if (!have_header) {
    torn_ = buf_.size() > pos_;
    return EndOfLog();
  }
  const char* h = buf_.data() + pos_;
  const uint32_t magic = GetFixed32(h);
  const uint32_t len = GetFixed32(h + 4);
  const uint64_t lsn = GetFixed64(h + 8);
  const uint64_t gen_here = txlog::GenerationOf(next_lsn_, file_bytes_);
  auto bad = [&](const std::string& what) -> Result<bool> {
    // At the end of the log (the newest file, or a record running into it)
    // this is a torn write; elsewhere it is damage we must not paper over.
    if (gen_here + 1 >= last_gen_ || last_gen_ == 0) {
      torn_ = true;
      return EndOfLog();
    }
    return Status::Corruption("transaction log damaged at generation " +
                              txlog::FileName(gen_here) + " offset " +
                              std::to_string(next_lsn_ % file_bytes_) + ": " + what);
  };
  if (magic != txlog::kLogRecordMagic) return bad("bad record magic");
  if (lsn != next_lsn_) return bad("record position mismatch");
  if (len > txlog::kMaxPayloadBytes) return bad("impossible record length");
  const size_t total = txlog::kHeaderBytes + len + txlog::kTrailerBytes;
  MBX_ASSIGN_OR_RETURN(bool have_all, Ensure(total));
  if (!have_all) {
    torn_ = true;
    return EndOfLog();
  }
  h = buf_.data() + pos_;
  const uint64_t want_sum = GetFixed64(h + txlog::kHeaderBytes + len);
  if (XXH3_64bits(h, txlog::kHeaderBytes + len) != want_sum) {
    if (txlog::GenerationOf(next_lsn_ + total - 1, file_bytes_) >= last_gen_) {
      torn_ = true;  // the record runs into the newest file: a torn append
      return EndOfLog();
    }
    return bad("checksum mismatch");
  }
  rec->start_lsn = next_lsn_;
  rec->end_lsn = next_lsn_ + total;
  rec->payload.assign(h + txlog::kHeaderBytes, len);
  pos_ += total;
  next_lsn_ += total;
  return true;
}

}  // namespace mbx
