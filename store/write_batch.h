// A WriteBatch: the unit a caller hands to a store's group-commit writer.
// Every mutation in a batch is applied atomically (all in one LMDB
// transaction, all in one transaction-log record) or not at all.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/records.h"

namespace mbx {

// The named databases of a store.
enum class Db : uint8_t { kMeta = 0, kMailboxes = 1, kFolders = 2, kItems = 3 };
inline constexpr int kNumDbs = 4;

struct Mutation {
  enum class Op : uint8_t { kPut = 1, kDelete = 2, kDeletePrefix = 3 };
  Op op;
  Db db;
  std::string key;    // for kDeletePrefix: every key starting with this is deleted
  std::string value;  // kPut only
};

// A condition the writer checks, inside the commit, before applying a batch:
// the mailbox exists and its state is one of `allowed_states` (a bit per
// MailboxState). A batch with a precondition is committed in a group of its
// own; if the condition fails, nothing of the batch is applied and it fails
// with NotFound or Busy.
struct MailboxPrecondition {
  Guid mailbox;
  uint32_t allowed_states = 0;
};

class WriteBatch {
 public:
  // Makes this batch conditional on the mailbox's state (see above).
  void RequireMailboxState(const Guid& mailbox, std::initializer_list<MailboxState> states) {
    MailboxPrecondition p{mailbox, 0};
    for (MailboxState s : states) p.allowed_states |= 1u << unsigned(s);
    precondition_ = p;
  }
  const std::optional<MailboxPrecondition>& precondition() const { return precondition_; }

  void Put(Db db, std::string key, std::string value);
  void Delete(Db db, std::string key);
  void DeletePrefix(Db db, std::string prefix);

  // Mailbox-level helpers.
  void PutMailbox(const MailboxInfo& info);
  void PutFolder(const Guid& mailbox, const FolderInfo& folder);
  void PutItem(const Guid& mailbox, uint32_t folder_id, uint64_t item_id, std::string record);
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
  const std::vector<Mutation>& mutations() const { return ops_; }
  std::vector<Mutation>& mutable_mutations() { return ops_; }
  size_t size() const { return ops_.size(); }
  bool empty() const { return ops_.empty(); }
  // Bytes of keys and values: what the group-commit writer bounds groups by.
  size_t ApproximateBytes() const { return bytes_; }
  void Clear() {
    ops_.clear();
    bytes_ = 0;
    precondition_.reset();
  }

 private:
  std::optional<MailboxPrecondition> precondition_;
  std::vector<Mutation> ops_;
  size_t bytes_ = 0;
};

}  // namespace mbx
