// Store: creating a store, opening it (which replays its transaction log
// after the checkpoint), and closing it.
#include "store/store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>

#include "store/coding.h"
#include "store/store_internal.h"
#include "store/txlog_format.h"
#include "store/txlog_reader.h"

namespace mbx {

using store_internal::Fixed64String;
using store_internal::PutCheckpoint;

namespace {

constexpr const char* kDbNames[kNumDbs] = {"meta", "mailboxes", "folders", "items", "changes"};
constexpr size_t kMinMapBytes = 1u << 20;
constexpr size_t kReplayTxnBytes = 64u << 20;
constexpr const char* kUnsyncedMarker = "UNSYNCED";
constexpr const char* kReserveFile = "RESERVE";

bool IsDir(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
uint64_t FileSize(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? uint64_t(st.st_size) : 0;
}
Result<uint64_t> ParseU64(std::string_view s, std::string_view what) {
  uint64_t v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) {
    return Status::Corruption("store meta value " + std::string(what) + " is not a number");
  }
  return v;
}

// This boot of the machine.
std::string BootId() {
  if (const char* e = std::getenv("MBX_BOOT_ID"); e != nullptr && *e != '\0') return e;
  char buf[64] = {};
  FILE* f = std::fopen("/proc/sys/kernel/random/boot_id", "r");
  if (f == nullptr) return "unknown";
  const bool got = std::fgets(buf, sizeof buf, f) != nullptr;
  std::fclose(f);
  std::string id = got ? buf : "unknown";
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id;
}

}  // namespace

Status Store::CheckUnsyncedMarker(const std::string& dir) {
  std::string content;
  Status s = env_io_->ReadFile(dir + "/" + kUnsyncedMarker, &content);
  if (s.IsNotFound()) return Status::Ok();
  MBX_RETURN_IF_ERROR(s.WithContext("reading the unsynced-writes marker of " + dir));
  const std::string boot = content.substr(0, content.find(' '));
  const std::string now = BootId();
  if (boot == now) return Status::Ok();  // only the process stopped: the page cache kept every write
  return Status::Corruption(
      "store " + dir + " was open with --sync none when the machine stopped (boot " + boot + ", now " + now +
      "): writes that were never synced may be lost, so its content cannot be trusted; restore it from "
      "backup (mbxmove restore), or, if the machine did not lose power, remove " + dir + "/" + kUnsyncedMarker);
}

Status Store::WriteUnsyncedMarker() {
  if (unsynced_marker_) return Status::Ok();
  const std::string content = BootId() + " " + std::to_string(::getpid()) + "\n";
  MBX_RETURN_IF_ERROR(env_io_->WriteFileAtomic(dir_ + "/" + kUnsyncedMarker, content, /*sync=*/true));
  MBX_RETURN_IF_ERROR(env_io_->SyncDir(dir_));
  unsynced_marker_ = true;
  return Status::Ok();
}

Status Store::Create(const std::string& dir, const std::string& name, const StoreOptions& options) {
  if (options.zstd_level < 0 || options.zstd_level > 19) {
    return Status::InvalidArgument("compression level must be 0..19");
  }
  if (options.log.file_bytes < txlog::kMinFileBytes) {
    return Status::InvalidArgument("log file size must be at least " +
                                   std::to_string(txlog::kMinFileBytes) + " bytes");
  }
  if (::mkdir(dir.c_str(), kOwnerOnlyDirMode) != 0) {
    if (errno != EEXIST) return PosixError("creating store folder", dir, errno);
    std::vector<std::string> names;
    MBX_RETURN_IF_ERROR(ListDir(dir, &names));
    if (!names.empty()) return Status::AlreadyExists("store folder " + dir + " is not empty");
  }
  if (::mkdir((dir + "/logs").c_str(), kOwnerOnlyDirMode) != 0 && errno != EEXIST) {
    return PosixError("creating log folder", dir + "/logs", errno);
  }
  LmdbEnv env;
  MBX_RETURN_IF_ERROR(env.Open(dir, 0, kNumDbs, 64u << 20));
  LmdbTxn txn;
  MBX_RETURN_IF_ERROR(txn.Begin(env.get(), 0));
  MDB_dbi dbis[kNumDbs];
  for (int i = 0; i < kNumDbs; ++i) {
    int rc = mdb_dbi_open(txn.get(), kDbNames[i], MDB_CREATE, &dbis[i]);
    if (rc != 0) return LmdbStatus(rc, "creating database " + std::string(kDbNames[i]));
  }
  auto put = [&](std::string_view k, std::string_view v) {
    MDB_val mk = ToVal(k), mv = ToVal(v);
    return LmdbStatus(mdb_put(txn.get(), dbis[0], &mk, &mv, 0), "writing store meta");
  };
  MBX_RETURN_IF_ERROR(put(meta::kFormat, std::to_string(kStoreFormatVersion)));
  MBX_RETURN_IF_ERROR(put(meta::kName, name));
  MBX_RETURN_IF_ERROR(put(meta::kZstdLevel, std::to_string(options.zstd_level)));
  MBX_RETURN_IF_ERROR(put(meta::kLogFileBytes, std::to_string(options.log.file_bytes)));
  MBX_RETURN_IF_ERROR(put(meta::kLogMode, LogModeName(options.log.mode)));
  MBX_RETURN_IF_ERROR(put(meta::kLogQuota, std::to_string(options.log.quota_bytes)));
  MBX_RETURN_IF_ERROR(put(meta::kSyncMode, SyncModeName(options.log.sync)));
  MBX_RETURN_IF_ERROR(put(meta::kCheckpoint, Fixed64String(0)));
  MBX_RETURN_IF_ERROR(txn.Commit());
  // A store comes with its disk reserve; on a disk already too full for it,
  // the store opens running on it (see Open).
  Status r = DiskReserve(dir + "/" + kReserveFile, OpenOptions::kDefaultDiskReserveBytes).Acquire();
  return r.IsNoSpace() ? Status::Ok() : r;
}

Result<std::unique_ptr<Store>> Store::Open(const std::string& dir, const OpenOptions& options) {
  std::unique_ptr<Store> s(new Store());
  Status st = s->OpenImpl(dir, options);
  if (!st.ok()) return st;
  return s;
}

namespace {
std::atomic<const char*> g_lock_role{"mbxmove"};
}  // namespace

void SetLockHolderRole(const char* role) { g_lock_role.store(role); }
std::string LockHolderRole() { return g_lock_role.load(); }

Status Store::OpenImpl(const std::string& dir, const OpenOptions& options) {
  dir_ = dir;
  env_io_ = options.env ? options.env : Env::Default();
  if (!IsDir(dir)) return Status::NotFound("no store at " + dir + " (no such folder)");
  const std::string data = dir + "/data.mdb";
  if (::access(data.c_str(), F_OK) != 0) {
    return Status::NotFound("no store at " + dir + " (no data.mdb)");
  }
  lock_fd_ = ::open((dir + "/LOCK").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, kOwnerOnlyFileMode);
  if (lock_fd_ < 0) return PosixError("opening lock file in", dir, errno);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    // The holder wrote who it is into the lock file (see SetLockHolderRole).
    char buf[128] = {};
    const ssize_t n = ::pread(lock_fd_, buf, sizeof buf - 1, 0);
    std::string who = n > 0 ? std::string(buf, size_t(n)) : "";
    while (!who.empty() && (who.back() == '\n' || who.back() == '\0')) who.pop_back();
    const auto sp = who.find(' ');
    if (sp != std::string::npos && sp > 0) {
      const std::string pid = who.substr(0, sp), role = who.substr(sp + 1);
      if (role == "mbxmove serve") {
        return Status::Busy("store " + dir + " is served by mbxmove serve, pid " + pid +
                            " (reach it through that server, or stop it first)");
      }
      return Status::Busy("store " + dir + " is open in another mbxmove process (" + role + ", pid " + pid + ")");
    }
    return Status::Busy("store " + dir + " is open in another mbxmove process");
  }
  // A store left with unsynced writes by a machine that stopped is refused
  // before LMDB reads a page of it.
  MBX_RETURN_IF_ERROR(CheckUnsyncedMarker(dir));
  // A store that was open with deferred data syncs and not closed: data.mdb
  // back at its data checkpoint, before LMDB reads it.
  uint64_t restored_lsn = 0;
  MBX_RETURN_IF_ERROR(RestoreDataCheckpoint(&restored_lsn));
  {
    // Say who holds the store, for the message above in other processes.
    const std::string who = std::to_string(::getpid()) + " " + LockHolderRole() + "\n";
    if (::ftruncate(lock_fd_, 0) != 0 || ::pwrite(lock_fd_, who.data(), who.size(), 0) < 0) {
      return PosixError("writing lock file in", dir, errno);
    }
  }
  const uint64_t file = FileSize(data);
  map_bytes_ = std::max<uint64_t>({options.initial_map_bytes, kMinMapBytes, file + file / 2});
  MBX_RETURN_IF_ERROR(env_.Open(dir, MDB_NOMETASYNC, kNumDbs, map_bytes_).WithContext("opening store"));
  {
    // LMDB trusts the file to hold every page in use; reading a page past
    // the end of a truncated file through the map is SIGBUS.
    const uint64_t have = FileSize(data);
    const Result<uint64_t> need = BytesOfPagesInUse(env_.get(), have);
    if (!need.ok()) return need.status().WithContext("store " + dir + ": checking data.mdb's size");
    if (have < *need) {
      return Status::Corruption("store " + dir + ": data.mdb is truncated (" + std::to_string(have) +
                                " bytes, its pages need " + std::to_string(*need) + ")");
    }
  }

  // Databases and meta. The change index came after the first stores: one
  // made before it gets it, empty, now.
  {
    LmdbTxn txn;
    MBX_RETURN_IF_ERROR(txn.Begin(env_.get(), MDB_RDONLY));
    MDB_dbi probe;
    const int rc = mdb_dbi_open(txn.get(), kDbNames[int(Db::kChanges)], 0, &probe);
    txn.Abort();
    if (rc == MDB_NOTFOUND) {
      MBX_RETURN_IF_ERROR(txn.Begin(env_.get(), 0));
      int crc = mdb_dbi_open(txn.get(), kDbNames[int(Db::kChanges)], MDB_CREATE, &probe);
      if (crc != 0) return LmdbStatus(crc, "creating database changes in " + dir);
      MBX_RETURN_IF_ERROR(txn.Commit());
    }
  }
  LogOptions lo;
  {
    LmdbTxn txn;
    MBX_RETURN_IF_ERROR(txn.Begin(env_.get(), MDB_RDONLY));
    for (int i = 0; i < kNumDbs; ++i) {
      int rc = mdb_dbi_open(txn.get(), kDbNames[i], 0, &dbi_[i]);
      if (rc != 0) {
        return Status::Corruption(dir + " is not an mbxmove store (database '" +
                                  kDbNames[i] + "': " + mdb_strerror(rc) + ")");
      }
    }
    auto get = [&](std::string_view k) -> Result<std::string> {
      MDB_val mk = ToVal(k), mv;
      int rc = mdb_get(txn.get(), dbi_[0], &mk, &mv);
      if (rc == MDB_NOTFOUND) return Status::Corruption("store meta lacks '" + std::string(k) + "'");
      if (rc != 0) return LmdbStatus(rc, "reading store meta");
      return std::string(FromVal(mv));
    };
    MBX_ASSIGN_OR_RETURN(std::string fmt, get(meta::kFormat));
    MBX_ASSIGN_OR_RETURN(uint64_t version, ParseU64(fmt, meta::kFormat));
    if (version > kStoreFormatVersion) {
      return Status::InvalidArgument("store " + dir + " has format version " + fmt +
                                     ", newer than this mbxmove supports (" +
                                     std::to_string(kStoreFormatVersion) + ")");
    }
    MBX_ASSIGN_OR_RETURN(name_, get(meta::kName));
    MBX_ASSIGN_OR_RETURN(std::string z, get(meta::kZstdLevel));
    MBX_ASSIGN_OR_RETURN(uint64_t zl, ParseU64(z, meta::kZstdLevel));
    if (zl > 19) return Status::Corruption("store compression level out of range");
    zstd_level_ = int(zl);
    MBX_ASSIGN_OR_RETURN(std::string fb, get(meta::kLogFileBytes));
    MBX_ASSIGN_OR_RETURN(lo.file_bytes, ParseU64(fb, meta::kLogFileBytes));
    if (lo.file_bytes < txlog::kMinFileBytes) return Status::Corruption("store log file size too small");
    MBX_ASSIGN_OR_RETURN(std::string lm, get(meta::kLogMode));
    auto mode = ParseLogMode(lm);
    if (!mode.ok()) return Status::Corruption("store log mode: " + mode.status().message());
    lo.mode = *mode;
    MBX_ASSIGN_OR_RETURN(std::string q, get(meta::kLogQuota));
    MBX_ASSIGN_OR_RETURN(lo.quota_bytes, ParseU64(q, meta::kLogQuota));
    MBX_ASSIGN_OR_RETURN(std::string sm, get(meta::kSyncMode));
    auto sync = ParseSyncMode(sm);
    if (!sync.ok()) return Status::Corruption("store sync mode: " + sync.status().message());
    lo.sync = options.sync_override.value_or(*sync);
    MBX_ASSIGN_OR_RETURN(std::string cp, get(meta::kCheckpoint));
    if (cp.size() != 8) return Status::Corruption("store checkpoint record is damaged");
    checkpoint_lsn_ = GetFixed64(cp.data());
    if (restored_lsn != 0 && checkpoint_lsn_ != restored_lsn) {
      return Status::Corruption("store " + dir + ": data.mdb did not come back at its data checkpoint (it records LSN " +
                                std::to_string(checkpoint_lsn_) + ", data.ckpt " + std::to_string(restored_lsn) +
                                "): restore the store from backup (mbxmove restore)");
    }
    MDB_val bk = ToVal(meta::kLastBackup), bv;
    if (mdb_get(txn.get(), dbi_[0], &bk, &bv) == 0 && bv.mv_size == 8) {
      last_backup_lsn_ = GetFixed64(static_cast<const char*>(bv.mv_data));
    }
    // Committing (not aborting) keeps the database handles open.
    MBX_RETURN_IF_ERROR(txn.Commit());
  }
  if (lo.sync == SyncMode::kNone) {
    // Nothing is synced from here until a clean close: say so on disk first.
    MBX_RETURN_IF_ERROR(WriteUnsyncedMarker());
    mdb_env_set_flags(env_.get(), MDB_NOMETASYNC, 0);
    mdb_env_set_flags(env_.get(), MDB_NOSYNC, 1);
  }
  // Replay the log after the checkpoint; a torn tail is cut off.
  // Records are applied in transactions of up to kReplayTxnBytes; if the map
  // fills up, the open transaction is dropped, the map grown, and reading
  // resumes from the last committed record.
  std::unique_ptr<TxLogReader> reader;
  const uint64_t recovery_start_lsn = checkpoint_lsn_;
  for (int attempt = 0;; ++attempt) {
    reader = std::make_unique<TxLogReader>(dir + "/logs", lo.file_bytes, checkpoint_lsn_, env_io_);
    LmdbTxn txn;
    size_t txn_bytes = 0;
    uint64_t applied_lsn = checkpoint_lsn_;
    uint64_t applied_records = 0;
    LogRecord rec;
    int rc = 0;
    Status s;
    for (;;) {
      auto more = reader->Next(&rec);
      if (!more.ok()) return more.status().WithContext("replaying the transaction log of " + dir);
      if (!*more) break;
      if (!txn.active()) MBX_RETURN_IF_ERROR(txn.Begin(env_.get(), 0));
      s = ApplyPayload(txn.get(), rec.payload, &rc);
      if (!s.ok()) break;
      applied_lsn = rec.end_lsn;
      ++applied_records;
      txn_bytes += rec.payload.size();
      if (txn_bytes >= kReplayTxnBytes) {
        s = PutCheckpoint(txn.get(), dbi_[0], applied_lsn, &rc);
        if (s.ok()) s = LmdbStatus(rc = txn.CommitRc(), "committing replayed records");
        if (!s.ok()) break;
        checkpoint_lsn_ = applied_lsn;
        replayed_records_.fetch_add(applied_records);
        applied_records = 0;
        txn_bytes = 0;
      }
    }
    if (s.ok() && txn.active()) {
      s = PutCheckpoint(txn.get(), dbi_[0], applied_lsn, &rc);
      if (s.ok()) s = LmdbStatus(rc = txn.CommitRc(), "committing replayed records");
    }
    if (s.ok()) {
      checkpoint_lsn_ = applied_lsn;
      replayed_records_.fetch_add(applied_records);
      break;
    }
    txn.Abort();
    if (rc != MDB_MAP_FULL || attempt >= 40) return s.WithContext("replaying the transaction log of " + dir);
    MBX_RETURN_IF_ERROR(GrowMap());
  }
  prev_checkpoint_lsn_ = checkpoint_lsn_;
  checkpoint_file_gen_ = txlog::GenerationOf(checkpoint_lsn_, lo.file_bytes);
  // Where the log lost records the database had applied, the gap is noted
  // (durably, before the writer fills it with zeros up to the checkpoint) so
  // that no roll-forward from an older backup crosses it.
  std::vector<std::pair<uint64_t, uint64_t>> lost;
  if (reader->lost_behind_checkpoint()) lost.emplace_back(reader->lost_from_lsn(), checkpoint_lsn_);
  if (const uint64_t g = txlog::GenerationOf(recovery_start_lsn, lo.file_bytes); g > 1) {
    // Every log file but the newest is written whole before the next is
    // opened, but its tail is synced after that (see TxLogWriter::rotated_):
    // the file before the one recovery started in is short when the machine
    // stopped first. The database holds its records; the log lost them.
    // (Circular logging may have removed it: then there is nothing to note.)
    auto size = env_io_->GetFileSize(dir + "/logs/" + txlog::FileName(g - 1));
    if (!size.ok() && !size.status().IsNotFound()) return size.status().WithContext("opening store " + dir);
    if (size.ok() && *size < lo.file_bytes) lost.emplace_back((g - 2) * lo.file_bytes + *size, (g - 1) * lo.file_bytes);
  }
  if (!lost.empty()) {
    const std::string gaps = dir + "/logs/" + txlog::kGapFile;
    std::string text;
    if (Status r = env_io_->ReadFile(gaps, &text); !r.ok() && !r.IsNotFound()) return r;
    const size_t before = text.size();
    for (const auto& [from, to] : lost) {
      const std::string line = std::to_string(from) + " " + std::to_string(to) + "\n";
      if (("\n" + text).find("\n" + line) == std::string::npos) text += line;
    }
    if (text.size() != before) {
      MBX_RETURN_IF_ERROR(env_io_->WriteFileAtomic(gaps, text, /*sync=*/true));
      MBX_RETURN_IF_ERROR(env_io_->SyncDir(dir + "/logs"));
    }
  }
  MBX_ASSIGN_OR_RETURN(log_, TxLogWriter::Open(dir + "/logs", lo, reader->valid_end_lsn(), env_io_));
  // The disk reserve, re-created if a full disk made the store give it up
  // and there is room again; if not, the store opens running on it (it can
  // still roll moves back and close cleanly).
  reserve_ = std::make_unique<DiskReserve>(dir + "/" + kReserveFile, options.disk_reserve_bytes);
  if (Status r = reserve_->Acquire(); !r.ok()) {
    if (!r.IsNoSpace()) return r.WithContext("opening store " + dir);
    std::lock_guard<std::mutex> l(log_mu_);
    (void)RunOnReserve(r);
  }
  if (replayed_records_.load() > 0 || reader->torn_tail()) {
    MBX_RETURN_IF_ERROR(mdb_env_sync(env_.get(), 1) == 0 ? Status::Ok()
                                                         : Status::IOError("syncing store after replay"));
  }
  // Deferred data syncs (see "Data syncs" in store.h) start from a data
  // checkpoint of the store as opened. Without them (asked for, or the first
  // data.ckpt could not be saved) a data.ckpt left from before goes: nothing
  // pins its snapshot from here on. (data.mdb is synced: it came back at that
  // snapshot, or was synced above, or closed cleanly.)
  bool deferred = lo.sync != SyncMode::kNone && options.data_sync_bytes > 0;
  if (deferred) {
    data_sync_bytes_ = options.data_sync_bytes;
    SetDataSyncThreshold(lo.quota_bytes);
    std::lock_guard<std::mutex> sync_lock(lmdb_sync_mu_);
    MBX_RETURN_IF_ERROR(TakeDataCheckpointLocked().WithContext("opening store " + dir));
    deferred = pinned_snapshot_ != nullptr;
  }
  if (deferred) {
    mdb_env_set_flags(env_.get(), MDB_NOSYNC, 1);
  } else if (Status r = env_io_->RemoveFile(dir + "/data.ckpt"); r.ok()) {
    MBX_RETURN_IF_ERROR(env_io_->SyncDir(dir).WithContext("opening store " + dir));
  } else if (!r.IsNotFound()) {
    return r.WithContext("opening store " + dir);
  }
  deferred_data_sync_ = deferred;
  writer_ = std::make_unique<GroupCommitWriter>(
      [this](const std::vector<const WriteBatch*>& b, GroupCommitWriter::Token* t) { return PrepareGroup(b, t); },
      [this](const std::vector<const WriteBatch*>& b, const GroupCommitWriter::Token& t) { return ApplyGroup(b, t); },
      options.group_commit);
  return Status::Ok();
}

Store::~Store() {
  writer_.reset();  // commits what is queued
  bool synced = true;
  // Deferred data syncs: data.mdb synced and data.ckpt removed before the
  // log may drop what came after the data checkpoint.
  if (deferred_data_sync_ && !EndDataCheckpoints().ok()) synced = false;
  if (pinned_snapshot_ != nullptr) mdb_txn_abort(pinned_snapshot_);
  if (log_) {
    std::lock_guard<std::mutex> l(log_mu_);
    synced = log_->Sync().ok();
    // What the log thread would have done before its next append: a store
    // closed with circular logging leaves no file its database has passed.
    if (log_->options().mode == LogMode::kCircular) (void)log_->RemoveBefore(prev_checkpoint_lsn_);
    (void)log_->WriteCheckpointFile(checkpoint_lsn_);
    log_.reset();
  }
  if (env_.get() && mdb_env_sync(env_.get(), 1) != 0) synced = false;
  env_.Close();
  // Everything is on disk now (or a sync failed and the marker stays).
  if (unsynced_marker_ && synced && env_io_->RemoveFile(dir_ + "/" + kUnsyncedMarker).ok()) {
    (void)env_io_->SyncDir(dir_);
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

}  // namespace mbx
