#include "store/keys.h"
#include "store/write_batch.h"

namespace mbx {

void WriteBatch::Put(Db db, std::string key, std::string value) {
  bytes_ += key.size() + value.size() + 16;
  ops_.push_back(Mutation{Mutation::Op::kPut, db, std::move(key), std::move(value)});
}

void WriteBatch::PutBorrowed(Db db, std::string key, std::string_view value) {
  bytes_ += key.size() + value.size() + 16;
  Mutation m{Mutation::Op::kPut, db, std::move(key), {}};
  m.borrowed = value;
  m.borrows = true;
  ops_.push_back(std::move(m));
}

void WriteBatch::Delete(Db db, std::string key) {
  bytes_ += key.size() + 16;
  ops_.push_back(Mutation{Mutation::Op::kDelete, db, std::move(key), {}});
}

void WriteBatch::DeletePrefix(Db db, std::string prefix) {
  bytes_ += prefix.size() + 16;
  ops_.push_back(Mutation{Mutation::Op::kDeletePrefix, db, std::move(prefix), {}});
}

void WriteBatch::Append(WriteBatch&& other) {
  if (ops_.empty()) {
    ops_ = std::move(other.ops_);
  } else {
    ops_.reserve(ops_.size() + other.ops_.size());
    for (Mutation& m : other.ops_) ops_.push_back(std::move(m));
  }
  for (auto& k : other.keep_) keep_.push_back(std::move(k));
  bytes_ += other.bytes_;
  other.Clear();
}

void WriteBatch::PutMailbox(const MailboxInfo& info) {
  Put(Db::kMailboxes, keys::Mailbox(info.guid), EncodeMailboxInfo(info));
}

void WriteBatch::PutFolder(const Guid& mailbox, const FolderInfo& folder) {
  Put(Db::kFolders, keys::Folder(mailbox, folder.id), EncodeFolderInfo(folder));
}

void WriteBatch::PutItem(const Guid& mailbox, uint32_t folder_id, uint64_t item_id,
                         std::string record) {
  Put(Db::kItems, keys::Item(mailbox, folder_id, item_id), std::move(record));
}

void WriteBatch::PutItemBorrowed(const Guid& mailbox, uint32_t folder_id, uint64_t item_id,
                                 std::string_view record) {
  PutBorrowed(Db::kItems, keys::Item(mailbox, folder_id, item_id), record);
}

void WriteBatch::DeleteItem(const Guid& mailbox, uint32_t folder_id, uint64_t item_id) {
  Delete(Db::kItems, keys::Item(mailbox, folder_id, item_id));
}

void WriteBatch::DeleteMailbox(const Guid& mailbox) {
  DeletePrefix(Db::kItems, keys::Mailbox(mailbox));
  DeletePrefix(Db::kFolders, keys::Mailbox(mailbox));
  DeletePrefix(Db::kChanges, keys::Mailbox(mailbox));
  Delete(Db::kMailboxes, keys::Mailbox(mailbox));
}

}  // namespace mbx
