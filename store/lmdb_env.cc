#include "store/lmdb_env.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

namespace mbx {

Status LmdbStatus(int rc, std::string_view what) {
  if (rc == MDB_SUCCESS) return Status::Ok();
  std::string m(what);
  m += ": ";
  m += mdb_strerror(rc);
  switch (rc) {
    case MDB_NOTFOUND: return Status::NotFound(std::move(m));
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH: return Status::Corruption(std::move(m));
    case MDB_PANIC:
      // LMDB marks the environment failed when writing a meta page fails
      // (and then refuses every transaction); nothing after the last good
      // commit was applied, and reopening the store or directory recovers.
      m += " (an earlier write to this database file failed; close and reopen it)";
      return Status::IOError(std::move(m));
    case MDB_MAP_FULL:
    case MDB_READERS_FULL:
    case MDB_TXN_FULL: return Status::IOError(std::move(m));
    default: return Status::IOError(std::move(m));
  }
}

void ReleaseMappedPages(std::string_view bytes) {
  static const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
  // A value larger than half a page cannot fit in a leaf node (LMDB's node
  // limit is about half a page), so it lives in overflow pages that hold
  // nothing else (the first starts with a 16-byte page header): its pages can
  // be released whole, first and last included. A smaller one shares a leaf
  // page with other records: only pages wholly inside it (none) would go.
  const bool overflow = bytes.size() > page / 2;
  uintptr_t begin = uintptr_t(bytes.data());
  uintptr_t end = begin + bytes.size();
  if (overflow) {
    begin &= ~(page - 1);
    end = (end + page - 1) & ~(page - 1);
  } else {
    begin = (begin + page - 1) & ~(page - 1);
    end &= ~(page - 1);
  }
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

Status LmdbEnv::Open(const std::string& dir, unsigned flags, unsigned max_dbs, size_t map_bytes) {
  Close();
  int rc = mdb_env_create(&env_);
  if (rc != 0) {
    env_ = nullptr;
    return LmdbStatus(rc, "creating LMDB environment");
  }
  rc = mdb_env_set_maxdbs(env_, max_dbs);
  if (rc == 0) rc = mdb_env_set_maxreaders(env_, 512);
  if (rc == 0) rc = mdb_env_set_mapsize(env_, map_bytes);
  if (rc == 0) rc = mdb_env_open(env_, dir.c_str(), flags | MDB_NOTLS, 0644);
  if (rc != 0) {
    Close();
    return LmdbStatus(rc, "opening LMDB environment in " + dir);
  }
  return Status::Ok();
}

void LmdbEnv::Close() {
  if (env_) mdb_env_close(env_);
  env_ = nullptr;
}

Status LmdbTxn::Begin(MDB_env* env, unsigned flags) {
  Abort();
  int rc = mdb_txn_begin(env, nullptr, flags, &txn_);
  if (rc != 0) {
    txn_ = nullptr;
    return LmdbStatus(rc, (flags & MDB_RDONLY) ? "beginning read transaction"
                                               : "beginning write transaction");
  }
  return Status::Ok();
}

Status LmdbTxn::Commit() {
  if (!txn_) return Status::Internal("commit of an inactive transaction");
  int rc = mdb_txn_commit(txn_);
  txn_ = nullptr;  // freed by LMDB whether or not the commit succeeded
  return LmdbStatus(rc, "committing transaction");
}

Status LmdbCursor::Open(MDB_txn* txn, MDB_dbi dbi) {
  Close();
  int rc = mdb_cursor_open(txn, dbi, &cur_);
  if (rc != 0) {
    cur_ = nullptr;
    return LmdbStatus(rc, "opening cursor");
  }
  return Status::Ok();
}

}  // namespace mbx
