// Store: read snapshots (StoreReader, one LMDB read transaction each) and the
// resize gate that readers count themselves in through.
#include "store/store.h"

#include <cstdint>
#include <utility>

#include "store/keys.h"

namespace mbx {

void Store::AddReader() {
  std::unique_lock<std::mutex> l(gate_mu_);
  gate_cv_.wait(l, [&] { return !resizing_; });
  ++readers_;
}

void Store::RemoveReader() {
  std::lock_guard<std::mutex> l(gate_mu_);
  if (--readers_ == 0) gate_cv_.notify_all();
}

Result<StoreReader> Store::BeginRead() {
  if (data_broken_.load(std::memory_order_acquire)) {
    // A failed data sync may have dropped the last commit's meta page, and
    // LMDB's readers pick the meta page by the last transaction's number:
    // they would read an older state than the store acknowledged (or than a
    // reopen finds). No read is trusted until the store is reopened.
    std::lock_guard<std::mutex> l(log_mu_);
    return broken_;
  }
  AddReader();
  StoreReader r(this);
  Status s = r.txn_.Begin(env_.get(), MDB_RDONLY);
  if (!s.ok()) {
    r.store_ = nullptr;
    RemoveReader();
    return s.WithContext("store " + name_);
  }
  return r;
}

StoreReader::StoreReader(StoreReader&& o) noexcept
    : store_(std::exchange(o.store_, nullptr)), txn_(std::move(o.txn_)) {}

StoreReader::~StoreReader() {
  txn_.Abort();
  if (store_) store_->RemoveReader();
}

Result<MailboxInfo> StoreReader::GetMailbox(const Guid& guid) const {
  std::string k = keys::Mailbox(guid);
  MDB_val mk = ToVal(k), mv;
  int rc = mdb_get(txn_.get(), store_->dbi_[int(Db::kMailboxes)], &mk, &mv);
  if (rc == MDB_NOTFOUND) {
    return Status::NotFound("mailbox " + guid.ToString() + " is not in store " + store_->name_);
  }
  if (rc != 0) return LmdbStatus(rc, "reading mailbox " + guid.ToString());
  return DecodeMailboxInfo(k, FromVal(mv));
}

Status StoreReader::ListMailboxes(std::vector<MailboxInfo>* out) const {
  out->clear();
  LmdbCursor cur;
  MBX_RETURN_IF_ERROR(cur.Open(txn_.get(), store_->dbi_[int(Db::kMailboxes)]));
  MDB_val k, v;
  int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST);
  while (rc == 0) {
    MBX_ASSIGN_OR_RETURN(MailboxInfo m, DecodeMailboxInfo(FromVal(k), FromVal(v)));
    out->push_back(std::move(m));
    rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT);
  }
  if (rc != MDB_NOTFOUND) return LmdbStatus(rc, "listing mailboxes");
  return Status::Ok();
}

Status StoreReader::ListFolders(const Guid& guid, std::vector<FolderInfo>* out) const {
  out->clear();
  LmdbCursor cur;
  MBX_RETURN_IF_ERROR(cur.Open(txn_.get(), store_->dbi_[int(Db::kFolders)]));
  std::string prefix = keys::Mailbox(guid);
  MDB_val k = ToVal(prefix), v;
  int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_SET_RANGE);
  while (rc == 0 && FromVal(k).substr(0, 16) == prefix) {
    if (k.mv_size != keys::kFolderKeyBytes) return Status::Corruption("damaged folder key");
    MBX_ASSIGN_OR_RETURN(FolderInfo f, DecodeFolderInfo(keys::FolderIdOf(FromVal(k)), FromVal(v)));
    out->push_back(std::move(f));
    rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT);
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return LmdbStatus(rc, "listing folders");
  return Status::Ok();
}

Status StoreReader::ScanItems(const Guid& guid, uint32_t folder_id, uint64_t after_id, size_t limit,
                              const std::function<Status(uint64_t, std::string_view)>& fn,
                              uint64_t* last_id) const {
  LmdbCursor cur;
  MBX_RETURN_IF_ERROR(cur.Open(txn_.get(), store_->dbi_[int(Db::kItems)]));
  const std::string prefix = keys::Folder(guid, folder_id);
  const std::string start = keys::Item(guid, folder_id, after_id);
  MDB_val k = ToVal(start), v;
  int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_SET_RANGE);
  size_t n = 0;
  while (rc == 0 && n < limit && FromVal(k).substr(0, prefix.size()) == prefix) {
    if (k.mv_size != keys::kItemKeyBytes) return Status::Corruption("damaged item key");
    const uint64_t id = keys::ItemIdOf(FromVal(k));
    if (id > after_id || (after_id == 0 && id == 0)) {
      MBX_RETURN_IF_ERROR(fn(id, FromVal(v)));
      *last_id = id;
      ++n;
    }
    rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT);
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return LmdbStatus(rc, "reading items");
  return Status::Ok();
}

Status StoreReader::ForEachItem(const Guid& guid, uint32_t folder_id,
                                const std::function<Status(uint64_t, std::string_view)>& fn) const {
  uint64_t last = 0;
  return ScanItems(guid, folder_id, 0, SIZE_MAX, fn, &last);
}

Result<std::string_view> StoreReader::GetItem(const Guid& guid, uint32_t folder_id,
                                              uint64_t item_id) const {
  std::string k = keys::Item(guid, folder_id, item_id);
  MDB_val mk = ToVal(k), mv;
  int rc = mdb_get(txn_.get(), store_->dbi_[int(Db::kItems)], &mk, &mv);
  if (rc == MDB_NOTFOUND) return Status::NotFound("item " + std::to_string(item_id) + " not found");
  if (rc != 0) return LmdbStatus(rc, "reading item");
  return FromVal(mv);
}

Result<std::string> StoreReader::GetMeta(std::string_view key) const {
  MDB_val mk = ToVal(key), mv;
  int rc = mdb_get(txn_.get(), store_->dbi_[0], &mk, &mv);
  if (rc == MDB_NOTFOUND) return Status::NotFound("no meta key " + std::string(key));
  if (rc != 0) return LmdbStatus(rc, "reading meta");
  return std::string(FromVal(mv));
}

}  // namespace mbx
