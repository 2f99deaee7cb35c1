#include "store/lmdb_env.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <csetjmp>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

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
    case ENOSPC:
    case EDQUOT:
      // A write of the commit found the file system full. LMDB aborted the
      // transaction; the environment stays usable (the meta page, which
      // overwrites an allocated block, was not written).
      return Status::NoSpace(std::move(m));
    default: return Status::IOError(std::move(m));
  }
}

namespace {
// The whole pages `bytes` may give up: [*begin, *end), empty if none.
void ReleasablePages(std::string_view bytes, uintptr_t* begin, uintptr_t* end) {
  static const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
  // A value larger than half a page cannot fit in a leaf node (LMDB's node
  // limit is about half a page), so it lives in overflow pages that hold
  // nothing else (the first starts with a 16-byte page header): its pages can
  // be released whole, first and last included. A smaller one shares a leaf
  // page with other records: only pages wholly inside it (none) would go.
  const bool overflow = bytes.size() > page / 2;
  *begin = uintptr_t(bytes.data());
  *end = *begin + bytes.size();
  if (overflow) {
    *begin &= ~(page - 1);
    *end = (*end + page - 1) & ~(page - 1);
  } else {
    *begin = (*begin + page - 1) & ~(page - 1);
    *end &= ~(page - 1);
  }
  if (*end < *begin) *end = *begin;
}
}  // namespace

namespace {
// A fault reading the map while BytesOfPagesInUse reads the freelist (its
// pages past a truncated file's end are SIGBUS) jumps back there; any other
// SIGBUS, in any thread, stays fatal.
thread_local sigjmp_buf* t_bus_jump = nullptr;
void OnBusError(int sig) {
  if (t_bus_jump != nullptr) siglongjmp(*t_bus_jump, 1);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

// Reads every free page number at or after `first` into *out; false if a
// page of the freelist lies past the file's end (the read faulted).
bool ReadFreePagesFrom(MDB_cursor* cur, uint64_t first, std::vector<uint64_t>* out, Status* error) {
  struct sigaction bus {}, old {};
  bus.sa_handler = OnBusError;
  sigemptyset(&bus.sa_mask);
  ::sigaction(SIGBUS, &bus, &old);
  sigjmp_buf jump;
  bool faulted = false;
  if (sigsetjmp(jump, 1) == 0) {
    t_bus_jump = &jump;
    MDB_val k, v;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      // A freelist record: an ID list, its count first, then that many page
      // numbers (MDB_ID: size_t), not necessarily aligned in the page.
      const size_t ids = v.mv_size / sizeof(size_t);
      size_t count = 0;
      if (ids > 0) std::memcpy(&count, v.mv_data, sizeof(size_t));
      if (ids == 0 || count > ids - 1) {
        *error = Status::Corruption("LMDB's freelist holds a damaged record");
        break;
      }
      for (size_t i = 1; i <= count; ++i) {
        size_t pgno = 0;
        std::memcpy(&pgno, static_cast<const char*>(v.mv_data) + i * sizeof(size_t), sizeof(size_t));
        if (pgno >= first) out->push_back(pgno);
      }
    }
    if (error->ok() && rc != MDB_NOTFOUND) *error = LmdbStatus(rc, "reading LMDB's freelist");
  } else {
    faulted = true;
  }
  t_bus_jump = nullptr;
  ::sigaction(SIGBUS, &old, nullptr);
  return !faulted;
}
}  // namespace

Result<uint64_t> BytesOfPagesInUse(MDB_env* env, uint64_t file_bytes) {
  MDB_envinfo info;
  MDB_stat st;
  if (int rc = mdb_env_info(env, &info); rc != 0) return LmdbStatus(rc, "reading the environment's info");
  if (int rc = mdb_env_stat(env, &st); rc != 0) return LmdbStatus(rc, "reading the environment's page size");
  const uint64_t psize = st.ms_psize;
  const uint64_t all = (uint64_t(info.me_last_pgno) + 1) * psize;
  if (all <= file_bytes) return all;
  // Pages [first_missing, last] are not wholly in the file: each must be free.
  const uint64_t first_missing = file_bytes / psize;
  std::vector<uint64_t> free_beyond;
  LmdbTxn txn;
  MBX_RETURN_IF_ERROR(txn.Begin(env, MDB_RDONLY));
  LmdbCursor cur;
  MBX_RETURN_IF_ERROR(cur.Open(txn.get(), 0));  // 0: LMDB's freelist (FREE_DBI)
  Status error;
  // The freelist itself cut off: then nothing past the end is known to be free.
  if (!ReadFreePagesFrom(cur.get(), first_missing, &free_beyond, &error)) return all;
  MBX_RETURN_IF_ERROR(error);
  std::sort(free_beyond.begin(), free_beyond.end());
  uint64_t top = info.me_last_pgno;
  while (top >= first_missing && std::binary_search(free_beyond.begin(), free_beyond.end(), top)) {
    if (top == 0) return uint64_t(0);
    --top;
  }
  return (top + 1) * psize;
}

void MappedPageReleaser::Add(std::string_view record) {
  constexpr uintptr_t kGap = 256u << 10, kRun = 4u << 20;
  uintptr_t begin, end;
  ReleasablePages(record, &begin, &end);
  if (end == begin) return;
  if (hi_ == lo_) {
    lo_ = begin;
    hi_ = end;
  } else if (begin <= hi_ + kGap && end + kGap >= lo_) {
    lo_ = std::min(lo_, begin);
    hi_ = std::max(hi_, end);
  } else {
    Flush();
    lo_ = begin;
    hi_ = end;
  }
  if (hi_ - lo_ >= kRun) Flush();
}

void MappedPageReleaser::Flush() {
  if (hi_ > lo_) {
    ::madvise(reinterpret_cast<void*>(lo_), hi_ - lo_, MADV_DONTNEED);
    ++calls_;
  }
  lo_ = hi_ = 0;
}

Status CopyEnvInto(MDB_env* env, unsigned flags, WritableFile* out, uint64_t* bytes, uint64_t* xxh3,
                   const std::function<void()>& after_chunk) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return PosixError("creating a pipe for", "the database copy", errno);
  int copy_rc = 0;
  std::thread copier([&] {
    // A write to a pipe whose reader is gone fails with EPIPE instead of
    // killing the process.
    sigset_t pipe_sig;
    sigemptyset(&pipe_sig);
    sigaddset(&pipe_sig, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_sig, nullptr);
    copy_rc = mdb_env_copyfd2(env, fds[1], flags);
    ::close(fds[1]);
  });
  constexpr size_t kChunk = 1u << 20;
  std::string chunk;
  chunk.reserve(kChunk);
  char buf[1 << 16];
  uint64_t n = 0;
  XXH3_state_t* h = XXH3_createState();
  XXH3_64bits_reset(h);
  Status s;
  auto flush = [&] {
    if (chunk.empty()) return;
    if (s.ok()) {
      XXH3_64bits_update(h, chunk.data(), chunk.size());
      n += chunk.size();
      s = out->Append(chunk);
      if (s.ok() && after_chunk) after_chunk();
    }
    chunk.clear();
  };
  // Read to the end even after a failed append: the copier must never block
  // on (or be killed by SIGPIPE from) a pipe nobody reads.
  for (;;) {
    ssize_t got = ::read(fds[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      if (s.ok()) s = PosixError("reading", "the database copy pipe", errno);
      break;  // closing our end below makes the copier fail with EPIPE
    }
    if (got == 0) break;
    size_t off = 0;
    while (off < size_t(got)) {
      const size_t take = std::min(size_t(got) - off, kChunk - chunk.size());
      chunk.append(buf + off, take);
      off += take;
      if (chunk.size() == kChunk) flush();
    }
  }
  flush();
  ::close(fds[0]);
  copier.join();
  if (bytes) *bytes = n;
  if (xxh3) *xxh3 = XXH3_64bits_digest(h);
  XXH3_freeState(h);
  if (copy_rc != 0) return LmdbStatus(copy_rc, "copying the database");
  return s;
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
  if (rc == 0) rc = mdb_env_open(env_, dir.c_str(), flags | MDB_NOTLS, 0600);
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
