// A WriteBatch: the unit a caller hands to a store's group-commit writer.
// Every mutation in a batch is applied atomically (all in one LMDB
// transaction, all in one transaction-log record) or not at all.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/records.h"

namespace mbx {

// The named databases of a store.
// kChanges is the change index of tracked mailboxes (store_handle.h:
// TrackChanges): guid(16) change_number(BE64) -> EncodeChangeEntry.
enum class Db : uint8_t { kMeta = 0, kMailboxes = 1, kFolders = 2, kItems = 3, kChanges = 4 };
inline constexpr int kNumDbs = 5;

struct Mutation {
  enum class Op : uint8_t { kPut = 1, kDelete = 2, kDeletePrefix = 3 };
  Op op;
  Db db;
  std::string key;    // for kDeletePrefix: every key starting with this is deleted
  std::string value;  // kPut only: the value, unless `borrowed`
  // kPut of bytes the batch does not own (WriteBatch::PutBorrowed): `value`
  // is empty and these are the value's bytes.
  std::string_view borrowed{};
  bool borrows = false;

  // The value's bytes, owned or borrowed: what the log and the database get.
  std::string_view bytes() const { return borrows ? borrowed : std::string_view(value); }
};

class WriteBatch {
 public:
  void Put(Db db, std::string key, std::string value);
  // A put of bytes the batch does not copy: they must stay valid, unchanged,
  // until the batch has been written (its future is ready) or dropped. The
  // store's writer hands them to the log and to LMDB without copying them
  // first (a move's item records: views into the source's snapshot).
  void PutBorrowed(Db db, std::string key, std::string_view value);
  // Keeps `owner` alive as long as the batch (e.g. the buffer that borrowed
  // values point into).
  void KeepAlive(std::shared_ptr<const void> owner) {
    if (owner) keep_.push_back(std::move(owner));
  }
  void Delete(Db db, std::string key);
  void DeletePrefix(Db db, std::string prefix);
  // Moves every mutation of `other` to the end of this batch (applied after
  // this batch's own, in the same transaction).
  void Append(WriteBatch&& other);

  // Mailbox-level helpers.
  void PutMailbox(const MailboxInfo& info);
  void PutFolder(const Guid& mailbox, const FolderInfo& folder);
  void PutItem(const Guid& mailbox, uint32_t folder_id, uint64_t item_id, std::string record);
  void PutItemBorrowed(const Guid& mailbox, uint32_t folder_id, uint64_t item_id, std::string_view record);
  void DeleteItem(const Guid& mailbox, uint32_t folder_id, uint64_t item_id);
  // Removes the mailbox header, every folder and every item of the mailbox.
  void DeleteMailbox(const Guid& mailbox);

  // True when the batch only deletes records and rewrites mailbox headers:
  // such a batch may use the log's reserve past the quota, so that a move
  // that hit the quota can still be rolled back and its source unlocked
  // (ESE keeps reserve log files for the same reason).
  bool MayUseLogReserve() const {
    for (const auto& m : ops_) {
      if (m.op == Mutation::Op::kPut && m.db != Db::kMailboxes) return false;
    }
    return !ops_.empty();
  }
  // The values of its borrowed puts, in order.
  std::vector<std::string_view> BorrowedValues() const {
    std::vector<std::string_view> out;
    for (const Mutation& m : ops_) {
      if (m.borrows) out.push_back(m.borrowed);
    }
    return out;
  }
  const std::vector<Mutation>& mutations() const { return ops_; }
  std::vector<Mutation>& mutable_mutations() { return ops_; }
  size_t size() const { return ops_.size(); }
  bool empty() const { return ops_.empty(); }
  // Bytes of keys and values: what the group-commit writer bounds groups by.
  size_t ApproximateBytes() const { return bytes_; }
  void Clear() {
    ops_.clear();
    keep_.clear();
    bytes_ = 0;
  }

 private:
  std::vector<Mutation> ops_;
  std::vector<std::shared_ptr<const void>> keep_;
  size_t bytes_ = 0;
};

}  // namespace mbx
