#include "store/backup.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "store/coding.h"
#include "store/lmdb_env.h"
#include "store/organization.h"
#include "store/store.h"
#include "store/txlog_format.h"

namespace mbx {

namespace fs = std::filesystem;
using json = nlohmann::json;

Status WriteBackupManifest(const std::string& dir, const BackupManifest& m) {
  json j = {{"store", m.store}, {"kind", m.kind}, {"lsn", m.lsn}, {"from_lsn", m.from_lsn},
            {"log_file_bytes", m.file_bytes}, {"log_mode", m.log_mode}, {"created", m.created},
            {"tool", "mbxmove"}};
  return Env::Default()->WriteFileAtomic(dir + "/backup.json", j.dump(2) + "\n");
}

Result<BackupManifest> ReadBackupManifest(const std::string& dir) {
  std::string text;
  Status s = Env::Default()->ReadFile(dir + "/backup.json", &text);
  if (s.IsNotFound()) return Status::NotFound(dir + " is not an mbxmove backup (no backup.json)");
  MBX_RETURN_IF_ERROR(s);
  json j = json::parse(text, nullptr, false);
  BackupManifest m;
  try {
    if (j.is_discarded()) throw json::other_error::create(0, "bad", nullptr);
    m.store = j.at("store").get<std::string>();
    m.kind = j.at("kind").get<std::string>();
    m.lsn = j.at("lsn").get<uint64_t>();
    m.from_lsn = j.value("from_lsn", uint64_t(0));
    m.file_bytes = j.at("log_file_bytes").get<uint64_t>();
    m.log_mode = j.value("log_mode", "");
    m.created = j.value("created", "");
  } catch (const json::exception&) {
    return Status::Corruption("backup manifest " + dir + "/backup.json is damaged");
  }
  if (m.kind != "full" && m.kind != "incremental") {
    return Status::Corruption("backup manifest " + dir + "/backup.json has unknown kind '" + m.kind + "'");
  }
  return m;
}

namespace {

Status PrepareEmptyDir(const std::string& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec)) return Status::InvalidArgument(dir + " exists and is not a folder");
    if (!fs::is_empty(dir, ec)) return Status::AlreadyExists("backup folder " + dir + " is not empty");
  } else {
    fs::create_directories(dir, ec);
    if (ec) return Status::IOError("creating backup folder " + dir + ": " + ec.message());
  }
  return Status::Ok();
}

Status CopyFile(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) return Status::IOError("copying " + from + " to " + to + ": " + ec.message());
  int fd = ::open(to.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  return Status::Ok();
}

Result<uint64_t> ReadCheckpointOfCopy(const std::string& dir) {
  LmdbEnv env;
  MBX_RETURN_IF_ERROR(env.Open(dir, MDB_RDONLY, 8, 1u << 20));
  LmdbTxn txn;
  MBX_RETURN_IF_ERROR(txn.Begin(env.get(), MDB_RDONLY));
  MDB_dbi dbi;
  int rc = mdb_dbi_open(txn.get(), "meta", 0, &dbi);
  if (rc != 0) return LmdbStatus(rc, "opening meta of the backup copy");
  MDB_val k = ToVal(meta::kCheckpoint), v;
  rc = mdb_get(txn.get(), dbi, &k, &v);
  if (rc != 0 || v.mv_size != 8) return Status::Corruption("backup copy has no checkpoint");
  return GetFixed64(static_cast<const char*>(v.mv_data));
}

}  // namespace

Result<Store::BackupResult> Store::Backup(const std::string& out_dir, bool incremental) {
  MBX_RETURN_IF_ERROR(PrepareEmptyDir(out_dir));
  BackupResult r;
  BackupManifest m;
  m.store = name_;
  m.created = NowIso8601();
  LogOptions lo;
  uint64_t truncate_before = 0;
  if (!incremental) {
    m.kind = "full";
    {
      // Hold the resize gate like a reader: mdb_env_copy2 reads the map.
      AddReader();
      int rc = mdb_env_copy2(env_.get(), out_dir.c_str(), 0);
      RemoveReader();
      if (rc != 0) return LmdbStatus(rc, "copying store " + name_ + " to " + out_dir);
    }
    // lock.mdb is not needed in a backup.
    std::error_code ec;
    fs::remove(out_dir + "/lock.mdb", ec);
    MBX_ASSIGN_OR_RETURN(r.lsn, ReadCheckpointOfCopy(out_dir));
    fs::remove(out_dir + "/lock.mdb", ec);
    r.bytes = fs::file_size(out_dir + "/data.mdb", ec);
    m.lsn = r.lsn;
    truncate_before = r.lsn;
  } else {
    m.kind = "incremental";
    std::lock_guard<std::mutex> l(log_mu_);
    if (last_backup_lsn_ == 0) {
      return Status::InvalidArgument("store " + name_ + " has no full backup yet; take one before an incremental backup");
    }
    MBX_RETURN_IF_ERROR(log_->Sync());
    lo = log_->options();
    m.from_lsn = last_backup_lsn_;
    m.lsn = checkpoint_lsn_;
    const uint64_t g0 = txlog::GenerationOf(m.from_lsn, lo.file_bytes);
    const uint64_t g1 = txlog::GenerationOf(m.lsn, lo.file_bytes);
    std::error_code ec;
    fs::create_directories(out_dir + "/logs", ec);
    for (uint64_t g = g0; g <= g1; ++g) {
      const std::string name = txlog::FileName(g);
      const std::string src = dir_ + "/logs/" + name;
      if (!fs::exists(src, ec)) continue;  // the file just past a boundary may not exist yet
      MBX_RETURN_IF_ERROR(CopyFile(src, out_dir + "/logs/" + name));
      r.bytes += fs::file_size(src, ec);
      ++r.log_files_copied;
    }
    r.lsn = m.lsn;
    truncate_before = m.lsn;
  }
  {
    std::lock_guard<std::mutex> l(log_mu_);
    lo = log_->options();
    m.file_bytes = lo.file_bytes;
    m.log_mode = std::string(LogModeName(lo.mode));
  }
  MBX_RETURN_IF_ERROR(WriteBackupManifest(out_dir, m));
  // Record the backup position (through the log, like any write), then drop
  // the log files the backup made unnecessary. Never drop what crash
  // recovery of the live store may still need.
  WriteBatch b;
  std::string v;
  PutFixed64(&v, r.lsn);
  b.Put(Db::kMeta, std::string(meta::kLastBackup), v);
  Status ws = Write(std::move(b));
  if (!ws.ok() && !ws.IsQuotaExceeded()) return ws;
  std::lock_guard<std::mutex> l(log_mu_);
  last_backup_lsn_ = r.lsn;
  MBX_ASSIGN_OR_RETURN(r.log_files_truncated,
                       log_->RemoveBefore(std::min(truncate_before, prev_checkpoint_lsn_)));
  return r;
}

Result<RestoreResult> RestoreStore(const std::string& store_dir, const std::string& store_name,
                                   const std::vector<std::string>& backups) {
  if (backups.empty()) return Status::InvalidArgument("restore needs a backup folder");
  MBX_ASSIGN_OR_RETURN(BackupManifest full, ReadBackupManifest(backups[0]));
  if (full.kind != "full") return Status::InvalidArgument(backups[0] + " is an incremental backup; give the full backup first");
  if (full.store != store_name) {
    return Status::InvalidArgument(backups[0] + " is a backup of store '" + full.store + "', not '" + store_name + "'");
  }
  std::error_code ec;
  if (!fs::exists(backups[0] + "/data.mdb", ec)) {
    return Status::Corruption(backups[0] + " lacks data.mdb");
  }
  std::vector<BackupManifest> incs;
  uint64_t expect = full.lsn;
  for (size_t i = 1; i < backups.size(); ++i) {
    MBX_ASSIGN_OR_RETURN(BackupManifest m, ReadBackupManifest(backups[i]));
    if (m.kind != "incremental" || m.store != store_name || m.file_bytes != full.file_bytes) {
      return Status::InvalidArgument(backups[i] + " is not an incremental backup of store '" + store_name + "'");
    }
    if (m.from_lsn > expect) {
      return Status::InvalidArgument(backups[i] + " starts at log position " + std::to_string(m.from_lsn) +
                                     " but the backups before it end at " + std::to_string(expect) +
                                     ": an incremental backup is missing");
    }
    expect = std::max(expect, m.lsn);
    incs.push_back(m);
  }
  if (::mkdir(store_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return PosixError("creating store folder", store_dir, errno);
  }
  int lock_fd = ::open((store_dir + "/LOCK").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) return PosixError("opening lock file in", store_dir, errno);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{lock_fd};
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    return Status::Busy("store " + store_dir + " is open in another mbxmove process; stop it before restoring");
  }
  const std::string logs = store_dir + "/logs";
  fs::create_directories(logs, ec);
  // Copy in the incremental backups' log files that the store no longer has.
  for (size_t i = 0; i < incs.size(); ++i) {
    for (const auto& e : fs::directory_iterator(backups[i + 1] + "/logs", ec)) {
      const std::string name = e.path().filename().string();
      if (txlog::ParseFileName(name) == 0) continue;
      if (!fs::exists(logs + "/" + name, ec)) MBX_RETURN_IF_ERROR(CopyFile(e.path().string(), logs + "/" + name));
    }
  }
  // Can the logs roll forward from the backup? The file holding its LSN must
  // be present, unless the log ends exactly there.
  uint64_t newest = 0, oldest = UINT64_MAX;
  for (const auto& e : fs::directory_iterator(logs, ec)) {
    uint64_t g = txlog::ParseFileName(e.path().filename().string());
    if (g) {
      newest = std::max(newest, g);
      oldest = std::min(oldest, g);
    }
  }
  const uint64_t need = txlog::GenerationOf(full.lsn, full.file_bytes);
  const bool circular = full.log_mode == "circular";
  bool roll = newest >= need && oldest <= need;
  RestoreResult r;
  r.backup_lsn = full.lsn;
  if (!roll) {
    if (!circular && newest != 0 && oldest > need) {
      return Status::InvalidArgument(
          "the transaction logs needed to roll forward from this backup (generation " + txlog::FileName(need) +
          ") were removed by a later backup; restore the latest full backup instead");
    }
    // Circular logging (or no logs at all): restore to the backup point only.
    for (const auto& e : fs::directory_iterator(logs, ec)) fs::remove(e.path(), ec);
  }
  // Put the database back: copy, sync, rename over the old one.
  MBX_RETURN_IF_ERROR(CopyFile(backups[0] + "/data.mdb", store_dir + "/data.mdb.restore"));
  fs::rename(store_dir + "/data.mdb.restore", store_dir + "/data.mdb", ec);
  if (ec) return Status::IOError("replacing " + store_dir + "/data.mdb: " + ec.message());
  fs::remove(store_dir + "/lock.mdb", ec);
  ::close(lock_fd);
  closer.fd = -1;
  // Opening replays the logs after the backup's checkpoint.
  OpenOptions oo;
  oo.initial_map_bytes = 1ull << 30;
  MBX_ASSIGN_OR_RETURN(std::unique_ptr<Store> s, Store::Open(store_dir, oo));
  r.replayed_records = s->stats().replayed_records;
  r.restored_lsn = s->GetLogInfo().checkpoint_lsn;
  r.rolled_forward = roll;
  if (roll) {
    r.message = "restored the backup of " + full.created + " and rolled forward " +
                std::to_string(r.replayed_records) + " log records, to log position " +
                std::to_string(r.restored_lsn) + " (the last committed change)";
  } else {
    r.message = "restored the backup of " + full.created +
                "; changes made after it cannot be recovered" +
                (circular ? " (circular logging keeps no logs behind the checkpoint)" : " (no logs present)");
  }
  return r;
}

}  // namespace mbx
