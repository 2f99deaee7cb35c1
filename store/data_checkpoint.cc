// Store: deferred data syncs (see "Data syncs" in store.h). A data
// checkpoint syncs data.mdb, saves its two meta pages in data.ckpt and pins
// a read transaction on that snapshot; an open after a crash writes the
// saved meta pages back before LMDB reads the file.
//
// Why it is safe (LMDB 0.9): a commit writes only pages that are free in
// every snapshot a reader holds (it reuses a page freed by transaction F
// only when every reader's snapshot is at F or later), so while the pinned
// snapshot is held no page of it, or of any later snapshot's tree that was
// synced with it, is written again. Between checkpoints, commits write other
// pages and the two meta pages, unsynced: a machine crash may keep any subset
// of those writes (or tear one), and the meta pages may then name a tree
// whose pages never reached the disk. The saved meta pages name the synced
// tree, whole on disk; written back, LMDB opens at it, and the log (kept
// from the checkpoint the tree records) replays every group after it.
//
// data.ckpt: "MBXDCKP1", then fixed64 fields: the checkpoint LSN (the one
// the saved tree records), LMDB's transaction id, the XXH3-64 of the saved
// tree's two root pages (the free list's and the main database's, as the
// newer saved meta page names them), 0, the page size; then the two meta
// pages; then the XXH3-64 of all of it. Written whole under a temporary
// name, synced, renamed into place, the folder synced. The root pages are
// part of the pinned, synced tree, so they are in data.mdb as they were
// saved, also in a copy of the folder: a data.mdb whose root pages differ
// was replaced (restored, compacted, copied from elsewhere) and is not
// written to.
#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "store/coding.h"
#include "store/crash_point.h"
#include "store/store.h"
#include "store/store_internal.h"

namespace mbx {

namespace {

constexpr std::string_view kMagic = "MBXDCKP1";
constexpr const char* kFile = "data.ckpt";
constexpr size_t kHeaderBytes = 8 + 5 * 8;
// LMDB 0.9's meta page: a 16-byte page header, then MDB_meta (mm_magic,
// mm_version, mm_address, mm_mapsize, mm_dbs[2] of 48 bytes each with
// md_root at 40, mm_last_pg, mm_txnid). The save checks the transaction id
// it reads there against mdb_env_info's, so a different layout is caught.
constexpr uint32_t kLmdbMetaMagic = 0xBEEFC0DE;
constexpr size_t kMetaMagicOffset = 16;
constexpr size_t kFreeRootOffset = 16 + 24 + 40;
constexpr size_t kMainRootOffset = 16 + 24 + 48 + 40;
constexpr size_t kTxnidOffset = 16 + 24 + 96 + 8;
constexpr uint64_t kNoPage = ~uint64_t(0);

struct Saved {
  uint64_t lsn = 0, txnid = 0, roots_hash = 0, reserved = 0, psize = 0;
  std::string metas;  // 2 * psize bytes
};

uint64_t Field64(const std::string& metas, size_t page, size_t offset, uint64_t psize) {
  uint64_t v = 0;
  std::memcpy(&v, metas.data() + page * psize + offset, sizeof v);
  return v;
}

// The newer of the two meta pages (0 or 1).
size_t NewerMeta(const std::string& metas, uint64_t psize) {
  return Field64(metas, 1, kTxnidOffset, psize) > Field64(metas, 0, kTxnidOffset, psize) ? 1 : 0;
}

std::string Encode(const Saved& s) {
  std::string out(kMagic);
  for (uint64_t v : {s.lsn, s.txnid, s.roots_hash, s.reserved, s.psize}) PutFixed64(&out, v);
  out += s.metas;
  PutFixed64(&out, XXH3_64bits(out.data(), out.size()));
  return out;
}

bool LooksLikeMetaPage(const char* page) {
  uint32_t magic = 0;
  std::memcpy(&magic, page + kMetaMagicOffset, sizeof magic);
  return magic == kLmdbMetaMagic;
}

Result<Saved> Decode(const std::string& in, const std::string& path) {
  const Status damaged = Status::Corruption(
      path + " is damaged (it holds data.mdb's last synced meta pages, written whole and renamed into place, so "
             "the disk or something other than mbxmove changed it): restore the store from backup (mbxmove "
             "restore)");
  if (in.size() < kHeaderBytes + 8 || in.compare(0, kMagic.size(), kMagic) != 0) return damaged;
  if (GetFixed64(in.data() + in.size() - 8) != XXH3_64bits(in.data(), in.size() - 8)) return damaged;
  Saved s;
  const char* p = in.data() + kMagic.size();
  for (uint64_t* v : {&s.lsn, &s.txnid, &s.roots_hash, &s.reserved, &s.psize}) {
    *v = GetFixed64(p);
    p += 8;
  }
  if (s.psize < 512 || s.psize > (1u << 16) || in.size() != kHeaderBytes + 2 * s.psize + 8) return damaged;
  s.metas = in.substr(kHeaderBytes, 2 * s.psize);
  if (!LooksLikeMetaPage(s.metas.data()) || !LooksLikeMetaPage(s.metas.data() + s.psize)) return damaged;
  return s;
}

Status PreadAll(int fd, char* buf, size_t n, uint64_t off, const std::string& path) {
  while (n > 0) {
    const ssize_t r = ::pread(fd, buf, n, off_t(off));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return PosixError("reading", path, errno);
    if (r == 0) return Status::Corruption(path + " is shorter than its two meta pages");
    buf += r;
    n -= size_t(r);
    off += uint64_t(r);
  }
  return Status::Ok();
}

Status PwriteAll(int fd, const char* buf, size_t n, uint64_t off, const std::string& path) {
  while (n > 0) {
    const ssize_t r = ::pwrite(fd, buf, n, off_t(off));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return PosixError("writing", path, errno);
    buf += r;
    n -= size_t(r);
    off += uint64_t(r);
  }
  return Status::Ok();
}

// The XXH3-64 of the root pages the newer of `metas` names, as `fd` holds them.
Result<uint64_t> RootsHash(int fd, const std::string& metas, uint64_t psize, const std::string& path) {
  const size_t m = NewerMeta(metas, psize);
  std::string pages;
  for (size_t off : {kFreeRootOffset, kMainRootOffset}) {
    const uint64_t pgno = Field64(metas, m, off, psize);
    if (pgno == kNoPage) continue;
    if (pgno > (uint64_t(1) << 40)) return Status::Corruption(path + ": a saved meta page names page " + std::to_string(pgno));
    std::string page(psize, '\0');
    MBX_RETURN_IF_ERROR(PreadAll(fd, page.data(), page.size(), pgno * psize, path));
    pages += page;
  }
  return XXH3_64bits(pages.data(), pages.size());
}

}  // namespace

Status Store::RestoreDataCheckpoint(uint64_t* lsn) {
  *lsn = 0;
  const std::string path = dir_ + "/" + kFile, data = dir_ + "/data.mdb";
  std::string text;
  if (Status r = env_io_->ReadFile(path, &text); !r.ok()) {
    return r.IsNotFound() ? Status::Ok() : r.WithContext("reading store " + dir_ + "'s data checkpoint");
  }
  MBX_ASSIGN_OR_RETURN(Saved saved, Decode(text, path));
  const int fd = ::open(data.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return PosixError("opening", data, errno);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  // A short file reads as not holding the pages (PreadAll: Corruption).
  const Result<uint64_t> roots = RootsHash(fd, saved.metas, saved.psize, data);
  if (!roots.ok() || *roots != saved.roots_hash) {
    return Status::Corruption(
        "store " + dir_ + " was not closed cleanly, and its data.mdb does not hold the pages its data checkpoint (" +
        path + ") names: data.mdb was replaced since, or damaged. If it came whole from a cleanly closed store, "
        "remove " + path + " and open the store again; otherwise restore the store from backup (mbxmove restore)");
  }
  std::string now(saved.metas.size(), '\0');
  MBX_RETURN_IF_ERROR(PreadAll(fd, now.data(), now.size(), 0, data));
  if (now != saved.metas) {
    // The meta pages of later commits, which a machine crash may have left
    // naming pages that never reached the disk: back to the synced ones.
    MBX_RETURN_IF_ERROR(PwriteAll(fd, saved.metas.data(), saved.metas.size(), 0, data));
    if (::fdatasync(fd) != 0) return PosixError("syncing", data, errno);
  }
  *lsn = saved.lsn;
  return Status::Ok();
}

Status Store::DataCheckpointNow() {
  if (!deferred_data_sync_) return Status::Ok();
  Status c;
  {
    std::lock_guard<std::mutex> sync_lock(lmdb_sync_mu_);
    c = TakeDataCheckpointLocked();
  }
  if (!c.ok()) {
    std::lock_guard<std::mutex> l(log_mu_);
    MarkBroken(c);
  }
  return c;
}

void Store::MaybeTakeDataCheckpoint(uint64_t applied_bytes) {
  Status c;
  {
    std::lock_guard<std::mutex> sync_lock(lmdb_sync_mu_);
    bytes_since_data_checkpoint_ += applied_bytes;
    if (bytes_since_data_checkpoint_ < data_sync_threshold_.load(std::memory_order_relaxed) &&
        std::chrono::steady_clock::now() - data_checkpoint_time_ < kDataCheckpointInterval) {
      return;
    }
    c = TakeDataCheckpointLocked();
  }
  // The group that called for it is committed and logged: a failure stops
  // the store for the groups after it, and the reopen replays it from the log.
  if (!c.ok()) {
    std::lock_guard<std::mutex> l(log_mu_);
    MarkBroken(c);
  }
}

Status Store::TakeDataCheckpointLocked() {
  bytes_since_data_checkpoint_ = 0;
  data_checkpoint_time_ = std::chrono::steady_clock::now();
  // The snapshot to sync, save and pin: the newest (no commit runs while
  // lmdb_sync_mu_ is held). Its LSN is the one its tree records (the apply
  // thread sets checkpoint_lsn_ only after its commit lets go of the lock).
  // Until the new data.ckpt is durable the old one stands, and its snapshot
  // stays pinned (with every later tree: see the top of this file). A store
  // that cannot take or save the new one goes on from the old one, which the
  // log is kept from, and tries again at the next checkpoint.
  MDB_txn* snap = nullptr;
  auto not_taken = [&](const Status& why) {
    if (snap != nullptr) mdb_txn_abort(snap);
    data_checkpoint_error_ = why.WithContext("saving store " + name_ + "'s data checkpoint");
    data_checkpoint_failures_.fetch_add(1, std::memory_order_relaxed);
    return Status::Ok();
  };
  Saved s;
  {
    int rc = mdb_txn_begin(env_.get(), nullptr, MDB_RDONLY, &snap);
    if (rc != 0) {
      snap = nullptr;
      return not_taken(LmdbStatus(rc, "pinning a snapshot"));
    }
    MDB_val k = ToVal(meta::kCheckpoint), v;
    rc = mdb_get(snap, dbi_[0], &k, &v);
    if (rc != 0 || v.mv_size != 8) return not_taken(Status::Corruption("the snapshot records no checkpoint"));
    s.lsn = GetFixed64(static_cast<const char*>(v.mv_data));
    s.txnid = mdb_txn_id(snap);
  }
  CrashPoint("data-checkpoint");
  if (const int rc = mdb_env_sync(env_.get(), 1); rc != 0) {
    mdb_txn_abort(snap);
    return LmdbStatus(rc, "syncing data.mdb at a data checkpoint");
  }
  data_syncs_.fetch_add(1, std::memory_order_relaxed);
  CrashPoint("data-checkpoint-synced");
  auto save = [&]() -> Status {
    MDB_stat stat;
    int fd = -1;
    int rc = 0;
    if ((rc = mdb_env_stat(env_.get(), &stat)) != 0 || (rc = mdb_env_get_fd(env_.get(), &fd)) != 0) {
      return LmdbStatus(rc, "reading data.mdb's state");
    }
    s.psize = stat.ms_psize;
    // The meta pages as the sync left them (the page cache holds what it
    // wrote back).
    s.metas.resize(2 * s.psize);
    MBX_RETURN_IF_ERROR(PreadAll(fd, s.metas.data(), s.metas.size(), 0, dir_ + "/data.mdb"));
    if (!LooksLikeMetaPage(s.metas.data()) || !LooksLikeMetaPage(s.metas.data() + s.psize) ||
        Field64(s.metas, NewerMeta(s.metas, s.psize), kTxnidOffset, s.psize) != s.txnid) {
      return Status::Internal("data.mdb's meta pages are not laid out as this mbxmove expects of LMDB 0.9");
    }
    MBX_ASSIGN_OR_RETURN(s.roots_hash, RootsHash(fd, s.metas, s.psize, dir_ + "/data.mdb"));
    MBX_RETURN_IF_ERROR(env_io_->WriteFileAtomic(dir_ + "/" + kFile, Encode(s), /*sync=*/true));
    return env_io_->SyncDir(dir_);
  };
  if (Status saved = save(); !saved.ok()) return not_taken(saved);
  CrashPoint("data-checkpoint-saved");
  if (pinned_snapshot_ != nullptr) mdb_txn_abort(pinned_snapshot_);
  pinned_snapshot_ = snap;
  data_checkpoint_error_ = Status::Ok();
  data_checkpoints_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> l(ckpt_mu_);
  prev_checkpoint_lsn_ = s.lsn;
  return Status::Ok();
}

void Store::SetDataSyncThreshold(uint64_t log_quota) {
  uint64_t t = data_sync_bytes_;
  if (log_quota != 0) t = std::min(t, std::max<uint64_t>(log_quota / 4, 64u << 10));
  data_sync_threshold_.store(t, std::memory_order_relaxed);
}

Status Store::EndDataCheckpoints() {
  if (pinned_snapshot_ != nullptr) mdb_txn_abort(pinned_snapshot_);
  pinned_snapshot_ = nullptr;
  if (data_broken_.load()) return broken_;  // data.ckpt stays: the reopen starts from it
  if (const int rc = mdb_env_sync(env_.get(), 1); rc != 0) return LmdbStatus(rc, "syncing data.mdb at the close");
  data_syncs_.fetch_add(1, std::memory_order_relaxed);
  MBX_RETURN_IF_ERROR(env_io_->RemoveFile(dir_ + "/" + kFile));
  MBX_RETURN_IF_ERROR(env_io_->SyncDir(dir_));
  std::lock_guard<std::mutex> l(ckpt_mu_);
  prev_checkpoint_lsn_ = checkpoint_lsn_;
  return Status::Ok();
}

}  // namespace mbx
