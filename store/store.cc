#include "store/store.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <climits>
#include <cstdio>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>

#include "store/coding.h"
#include "store/crash_point.h"
#include "store/item_codec.h"
#include "store/keys.h"
#include "store/txlog_format.h"
#include "store/txlog_reader.h"

namespace mbx {

namespace {

constexpr const char* kDbNames[kNumDbs] = {"meta", "mailboxes", "folders", "items"};
constexpr size_t kMinMapBytes = 1u << 20;
constexpr size_t kReplayTxnBytes = 64u << 20;

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
std::string Fixed64String(uint64_t v) {
  std::string s;
  PutFixed64(&s, v);
  return s;
}

Status PutCheckpoint(MDB_txn* txn, MDB_dbi meta_dbi, uint64_t lsn, int* rc) {
  MDB_val k = ToVal(meta::kCheckpoint);
  std::string v = Fixed64String(lsn);
  MDB_val mv = ToVal(v);
  *rc = mdb_put(txn, meta_dbi, &k, &mv, 0);
  return LmdbStatus(*rc, "writing checkpoint");
}

// Applies one mutation; LMDB's rc comes back in *rc for MDB_MAP_FULL handling.
Status ApplyMutation(MDB_txn* txn, const MDB_dbi* dbis, Mutation::Op op, Db db,
                     std::string_view key, std::string_view value, int* rc) {
  MDB_dbi dbi = dbis[int(db)];
  MDB_val k = ToVal(key);
  switch (op) {
    case Mutation::Op::kPut: {
      MDB_val v = ToVal(value);
      *rc = mdb_put(txn, dbi, &k, &v, 0);
      return LmdbStatus(*rc, "writing record");
    }
    case Mutation::Op::kDelete: {
      *rc = mdb_del(txn, dbi, &k, nullptr);
      if (*rc == MDB_NOTFOUND) *rc = 0;
      return LmdbStatus(*rc, "deleting record");
    }
    case Mutation::Op::kDeletePrefix: {
      LmdbCursor cur;
      MBX_RETURN_IF_ERROR(cur.Open(txn, dbi));
      MDB_val ck = k, cv;
      *rc = mdb_cursor_get(cur.get(), &ck, &cv, MDB_SET_RANGE);
      while (*rc == 0 && FromVal(ck).substr(0, key.size()) == key) {
        *rc = mdb_cursor_del(cur.get(), 0);
        if (*rc != 0) break;
        *rc = mdb_cursor_get(cur.get(), &ck, &cv, MDB_NEXT);
      }
      if (*rc == MDB_NOTFOUND) *rc = 0;
      return LmdbStatus(*rc, "deleting records");
    }
  }
  return Status::Internal("unknown mutation");
}

}  // namespace

// ---------------------------------------------------------------- create/open

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
  return txn.Commit();
}

Result<std::unique_ptr<Store>> Store::Open(const std::string& dir, const OpenOptions& options) {
  std::unique_ptr<Store> s(new Store());
  Status st = s->OpenImpl(dir, options);
  if (!st.ok()) return st;
  return s;
}

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
    return Status::Busy("store " + dir + " is open in another mbxmove process");
  }
  const uint64_t file = FileSize(data);
  map_bytes_ = std::max<uint64_t>({options.initial_map_bytes, kMinMapBytes, file + file / 2});
  MBX_RETURN_IF_ERROR(env_.Open(dir, MDB_NOMETASYNC, kNumDbs, map_bytes_).WithContext("opening store"));
  {
    // LMDB trusts the file to hold every page its meta page names; reading a
    // page past the end of a truncated file through the map is SIGBUS.
    MDB_envinfo info;
    MDB_stat st;
    if (mdb_env_info(env_.get(), &info) == 0 && mdb_env_stat(env_.get(), &st) == 0) {
      const uint64_t need = (uint64_t(info.me_last_pgno) + 1) * st.ms_psize;
      const uint64_t have = FileSize(data);
      if (have < need) {
        return Status::Corruption("store " + dir + ": data.mdb is truncated (" + std::to_string(have) +
                                  " bytes, its pages need " + std::to_string(need) + ")");
      }
    }
  }

  // Databases and meta.
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
    MDB_val bk = ToVal(meta::kLastBackup), bv;
    if (mdb_get(txn.get(), dbi_[0], &bk, &bv) == 0 && bv.mv_size == 8) {
      last_backup_lsn_ = GetFixed64(static_cast<const char*>(bv.mv_data));
    }
    // Committing (not aborting) keeps the database handles open.
    MBX_RETURN_IF_ERROR(txn.Commit());
  }
  if (lo.sync == SyncMode::kNone) {
    mdb_env_set_flags(env_.get(), MDB_NOMETASYNC, 0);
    mdb_env_set_flags(env_.get(), MDB_NOSYNC, 1);
  }
  // Replay the log after the checkpoint; a torn tail is cut off.
  // Records are applied in transactions of up to kReplayTxnBytes; if the map
  // fills up, the open transaction is dropped, the map grown, and reading
  // resumes from the last committed record.
  std::unique_ptr<TxLogReader> reader;
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
  MBX_ASSIGN_OR_RETURN(log_, TxLogWriter::Open(dir + "/logs", lo, reader->valid_end_lsn(), env_io_));
  if (replayed_records_.load() > 0 || reader->torn_tail()) {
    MBX_RETURN_IF_ERROR(mdb_env_sync(env_.get(), 1) == 0 ? Status::Ok()
                                                         : Status::IOError("syncing store after replay"));
  }
  writer_ = std::make_unique<GroupCommitWriter>(
      [this](const std::vector<const WriteBatch*>& b, GroupCommitWriter::Token* t) { return PrepareGroup(b, t); },
      [this](const std::vector<const WriteBatch*>& b, const GroupCommitWriter::Token& t) { return ApplyGroup(b, t); },
      options.group_commit);
  return Status::Ok();
}

Store::~Store() {
  writer_.reset();  // commits what is queued
  if (log_) {
    std::lock_guard<std::mutex> l(log_mu_);
    (void)log_->Sync();
    (void)log_->WriteCheckpointFile(checkpoint_lsn_);
    log_.reset();
  }
  if (env_.get()) mdb_env_sync(env_.get(), 1);
  env_.Close();
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

// ---------------------------------------------------------------- writes

Status Store::ApplyPayload(MDB_txn* txn, std::string_view payload, int* rc) {
  return txlog::ForEachMutation(payload, [&](Mutation::Op op, Db db, std::string_view k,
                                             std::string_view v) {
    return ApplyMutation(txn, dbi_, op, db, k, v, rc);
  });
}

Status Store::GrowMap() {
  const uint64_t next = std::max<uint64_t>(map_bytes_ * 2, map_bytes_ + (64u << 20));
  std::unique_lock<std::mutex> l(gate_mu_);
  resizing_ = true;
  gate_cv_.wait(l, [&] { return readers_ == 0; });
  int rc = mdb_env_set_mapsize(env_.get(), next);
  resizing_ = false;
  l.unlock();
  gate_cv_.notify_all();
  if (rc != 0) return LmdbStatus(rc, "growing the store map to " + std::to_string(next) + " bytes");
  map_bytes_ = next;
  map_resizes_.fetch_add(1);
  return Status::Ok();
}

Status Store::PrepareGroup(const std::vector<const WriteBatch*>& batches, GroupCommitWriter::Token* token) {
  // The buffer is kept across groups (log thread only): no fresh pages to
  // fault in and zero for every group.
  std::string& payload = payload_buffer_;
  payload.clear();
  size_t reserve = 16;
  for (const WriteBatch* b : batches) reserve += b->ApproximateBytes();
  payload.reserve(reserve);
  txlog::EncodePayload(batches, &payload);

  auto t0 = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> l(log_mu_);
    bool frees_space = true;
    for (const WriteBatch* b : batches) frees_space = frees_space && b->MayUseLogReserve();
    MBX_ASSIGN_OR_RETURN(LogPosition pos, log_->Append(payload, frees_space));
    token->a = pos.start_lsn;
    token->b = pos.end_lsn;
    token->c = log_epoch_;
  }
  log_append_ns_.fetch_add((std::chrono::steady_clock::now() - t0).count());
  CrashPoint("log-appended");
  if (payload.capacity() > (64u << 20)) std::string().swap(payload);  // do not hoard a huge one
  return Status::Ok();
}

Status Store::ApplyGroup(const std::vector<const WriteBatch*>& batches, const GroupCommitWriter::Token& token) {
  const LogPosition pos{token.a, token.b};
  {
    std::lock_guard<std::mutex> l(log_mu_);
    if (token.c != log_epoch_) {
      // An earlier group failed to commit and the log was cut back before
      // this group's record: it was never applied and will never be replayed.
      return Status::Aborted("store " + name_ + ": an earlier commit failed; this write was not applied");
    }
  }
  const auto t1 = std::chrono::steady_clock::now();
  Status s;
  for (int attempt = 0;; ++attempt) {
    LmdbTxn txn;
    s = txn.Begin(env_.get(), 0);
    int rc = 0;
    if (s.ok()) {
      for (const WriteBatch* b : batches) {
        for (const Mutation& m : b->mutations()) {
          s = ApplyMutation(txn.get(), dbi_, m.op, m.db, m.key, m.value, &rc);
          if (!s.ok()) break;
        }
        if (!s.ok()) break;
      }
    }
    if (s.ok()) s = PutCheckpoint(txn.get(), dbi_[0], pos.end_lsn, &rc);
    if (s.ok()) {
      rc = txn.CommitRc();
      s = LmdbStatus(rc, "committing to store " + name_);
    }
    if (s.ok()) break;
    txn.Abort();
    if (rc == MDB_MAP_FULL && attempt < 40) {
      Status g = GrowMap();
      if (g.ok()) continue;
      s = g;
    }
    // Nothing was applied: take the record (and any logged after it) back
    // out of the log so that a replay can never apply a group we report as
    // failed; the groups logged after it fail by their epoch.
    std::lock_guard<std::mutex> l(log_mu_);
    ++log_epoch_;
    Status r = log_->Rewind(pos.start_lsn);
    if (!r.ok()) return s.WithContext("and the log could not be rewound (" + r.message() + ")");
    return s.WithContext("store " + name_);
  }
  lmdb_commit_ns_.fetch_add((std::chrono::steady_clock::now() - t1).count());
  CrashPoint("lmdb-committed");

  std::lock_guard<std::mutex> l(log_mu_);
  const uint64_t old_gen = txlog::GenerationOf(checkpoint_lsn_, log_->options().file_bytes);
  prev_checkpoint_lsn_ = checkpoint_lsn_;
  checkpoint_lsn_ = pos.end_lsn;
  if (log_->options().mode == LogMode::kCircular) {
    // Everything before the previous commit's checkpoint is in the database
    // durably (that commit's data was synced with this one's), so whole log
    // files before it can go.
    auto removed = log_->RemoveBefore(prev_checkpoint_lsn_);
    if (!removed.ok()) return removed.status();
  }
  if (txlog::GenerationOf(checkpoint_lsn_, log_->options().file_bytes) != old_gen) {
    (void)log_->WriteCheckpointFile(prev_checkpoint_lsn_, /*sync=*/false);
  }
  return Status::Ok();
}

Result<MailboxInfo> Store::LockedHeader(const Guid& mailbox, std::initializer_list<MailboxState> from) {
  MBX_ASSIGN_OR_RETURN(StoreReader r, BeginRead());
  MBX_ASSIGN_OR_RETURN(MailboxInfo info, r.GetMailbox(mailbox));
  for (MailboxState s : from) {
    if (info.state == s) return info;
  }
  if (info.state == MailboxState::kMovingOut) {
    return Status::Busy("mailbox " + mailbox.ToString() + " in store " + name_ + ": move in progress");
  }
  return Status::Busy("mailbox " + mailbox.ToString() + " in store " + name_ + " is " +
                      std::string(MailboxStateName(info.state)));
}

Status Store::TransitionMailbox(const Guid& mailbox, std::initializer_list<MailboxState> from,
                                MailboxState to) {
  std::lock_guard<std::mutex> l(header_mu_);
  MBX_ASSIGN_OR_RETURN(MailboxInfo info, LockedHeader(mailbox, from));
  info.state = to;
  WriteBatch b;
  b.PutMailbox(info);
  return Write(std::move(b));
}

Status Store::DeleteMailboxIn(const Guid& mailbox, std::initializer_list<MailboxState> from) {
  std::lock_guard<std::mutex> l(header_mu_);
  MBX_RETURN_IF_ERROR(LockedHeader(mailbox, from).status());
  WriteBatch b;
  b.DeleteMailbox(mailbox);
  return Write(std::move(b));
}

Status Store::Logon(const Guid& mailbox) {
  MBX_ASSIGN_OR_RETURN(StoreReader r, BeginRead());
  MBX_ASSIGN_OR_RETURN(MailboxInfo m, r.GetMailbox(mailbox));
  switch (m.state) {
    case MailboxState::kActive: return Status::Ok();
    case MailboxState::kMovingOut:
      return Status::Busy("mailbox " + mailbox.ToString() + ": move in progress, logon refused");
    default:
      return Status::NotFound("mailbox " + mailbox.ToString() + " is not active in store " + name_);
  }
}

Result<uint64_t> Store::Deliver(const Guid& mailbox, uint32_t folder_id, const Item& item) {
  std::string rec;
  MBX_RETURN_IF_ERROR(EncodeItem(item, CodecOptions{zstd_level_}, &rec));
  std::lock_guard<std::mutex> l(header_mu_);
  MailboxInfo info;
  {
    MBX_ASSIGN_OR_RETURN(StoreReader r, BeginRead());
    MBX_ASSIGN_OR_RETURN(info, r.GetMailbox(mailbox));
    if (info.state == MailboxState::kMovingOut) {
      return Status::Busy("mailbox " + mailbox.ToString() + ": move in progress, delivery refused");
    }
    if (info.state != MailboxState::kActive) {
      return Status::NotFound("mailbox " + mailbox.ToString() + " is not active in store " + name_);
    }
    std::vector<FolderInfo> folders;
    MBX_RETURN_IF_ERROR(r.ListFolders(mailbox, &folders));
    bool found = false;
    for (const auto& f : folders) found = found || f.id == folder_id;
    if (!found) return Status::NotFound("mailbox " + mailbox.ToString() + " has no folder " + std::to_string(folder_id));
  }
  const uint64_t id = info.next_item_id++;
  ++info.item_count;
  info.stored_bytes += rec.size();
  info.logical_bytes += item.LogicalSize();
  WriteBatch b;
  b.PutItem(mailbox, folder_id, id, std::move(rec));
  b.PutMailbox(info);
  MBX_RETURN_IF_ERROR(Write(std::move(b)));
  return id;
}

// Where data.mdb is mapped in this process, from /proc/self/maps (LMDB does
// not expose its map address unless MDB_FIXEDMAP is used).
static std::pair<uintptr_t, size_t> FindDataMapping(const std::string& dir) {
  char real[PATH_MAX];
  if (!::realpath((dir + "/data.mdb").c_str(), real)) return {0, 0};
  FILE* f = std::fopen("/proc/self/maps", "r");
  if (!f) return {0, 0};
  char line[PATH_MAX + 256];
  std::pair<uintptr_t, size_t> best{0, 0};
  while (std::fgets(line, sizeof line, f)) {
    unsigned long lo = 0, hi = 0;
    int path_at = 0;
    if (std::sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &path_at) < 2 || path_at == 0) continue;
    std::string path(line + path_at);
    while (!path.empty() && (path.back() == '\n' || path.back() == ' ')) path.pop_back();
    if (path == real && hi - lo > best.second) best = {uintptr_t(lo), size_t(hi - lo)};
  }
  std::fclose(f);
  return best;
}

void Store::ReleaseResidentPages() {
  AddReader();  // no map resize meanwhile
  MDB_envinfo info;
  MDB_stat st;
  if (mdb_env_info(env_.get(), &info) == 0 && mdb_env_stat(env_.get(), &st) == 0) {
    std::pair<uintptr_t, size_t> map;
    {
      // The map moves only when it grows: look it up once per map size.
      std::lock_guard<std::mutex> l(mapping_mu_);
      if (mapping_for_bytes_ != info.me_mapsize) {
        mapping_ = FindDataMapping(dir_);
        mapping_for_bytes_ = info.me_mapsize;
      }
      map = mapping_;
    }
    const size_t used = std::min(map.second, size_t(info.me_last_pgno + 1) * st.ms_psize);
    if (map.first != 0 && used > 0) ::madvise(reinterpret_cast<void*>(map.first), used, MADV_DONTNEED);
  }
  RemoveReader();
}

Status Store::Flush() {
  std::lock_guard<std::mutex> l(log_mu_);
  if (log_->options().sync == SyncMode::kNone) return Status::Ok();
  MBX_RETURN_IF_ERROR(log_->Sync());
  if (int rc = mdb_env_sync(env_.get(), 1); rc != 0) return LmdbStatus(rc, "syncing store " + name_);
  return Status::Ok();
}

Status Store::Write(WriteBatch batch) { return writer_->Write(std::move(batch)); }
std::future<Status> Store::WriteAsync(WriteBatch batch) { return writer_->Submit(std::move(batch)); }

Status Store::PutMetaDirect(std::string_view key, std::string_view value) {
  WriteBatch b;
  b.Put(Db::kMeta, std::string(key), std::string(value));
  return Write(std::move(b));
}

Status Store::SetLogMode(LogMode mode) {
  MBX_RETURN_IF_ERROR(PutMetaDirect(meta::kLogMode, LogModeName(mode)));
  std::lock_guard<std::mutex> l(log_mu_);
  log_->set_mode(mode);
  if (mode == LogMode::kCircular) {
    auto r = log_->RemoveBefore(prev_checkpoint_lsn_);
    if (!r.ok()) return r.status();
  }
  return Status::Ok();
}

Status Store::SetLogQuota(uint64_t bytes) {
  {
    // Lift the quota first so that the write recording it can go through.
    std::lock_guard<std::mutex> l(log_mu_);
    log_->set_quota(0);
  }
  Status s = PutMetaDirect(meta::kLogQuota, std::to_string(bytes));
  std::lock_guard<std::mutex> l(log_mu_);
  log_->set_quota(bytes);
  return s;
}

Status Store::SetSyncMode(SyncMode mode) {
  MBX_RETURN_IF_ERROR(PutMetaDirect(meta::kSyncMode, SyncModeName(mode)));
  std::lock_guard<std::mutex> l(log_mu_);
  log_->set_sync(mode);
  return Status::Ok();
}

LogInfo Store::GetLogInfo() {
  std::lock_guard<std::mutex> l(log_mu_);
  LogInfo i;
  i.mode = log_->options().mode;
  i.sync = log_->options().sync;
  i.file_bytes = log_->options().file_bytes;
  i.quota_bytes = log_->options().quota_bytes;
  i.checkpoint_lsn = checkpoint_lsn_;
  i.end_lsn = log_->end_lsn();
  i.oldest_generation = log_->oldest_generation();
  i.newest_generation = log_->newest_generation();
  i.file_count = log_->file_count();
  i.disk_bytes = log_->disk_bytes();
  i.last_backup_lsn = last_backup_lsn_;
  i.syncs = log_->syncs();
  i.sync_time = log_->sync_time();
  return i;
}

StoreStats Store::stats() const {
  StoreStats s;
  s.writer = writer_->stats();
  s.map_resizes = map_resizes_.load();
  s.replayed_records = replayed_records_.load();
  s.log_append_time = std::chrono::nanoseconds(log_append_ns_.load());
  s.lmdb_commit_time = std::chrono::nanoseconds(lmdb_commit_ns_.load());
  return s;
}

// ---------------------------------------------------------------- reads

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

Status PipelinedWriter::Submit(WriteBatch batch) {
  if (!batch.empty()) inflight_.push_back(store_->WriteAsync(std::move(batch)));
  while (inflight_.size() > depth_) {
    Status s = inflight_.front().get();
    inflight_.pop_front();
    MBX_RETURN_IF_ERROR(s);
  }
  return Status::Ok();
}

Status PipelinedWriter::Drain() {
  Status first;
  while (!inflight_.empty()) {
    Status s = inflight_.front().get();
    inflight_.pop_front();
    if (first.ok() && !s.ok()) first = s;
  }
  return first;
}

}  // namespace mbx
