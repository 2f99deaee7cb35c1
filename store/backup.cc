#include "store/backup.h"

#include <cstdio>
#include <set>
#include <nlohmann/json.hpp>

#include "store/coding.h"
#include "store/lmdb_env.h"
#include "store/organization.h"
#include "store/store.h"
#include "store/txlog_format.h"

namespace mbx {

using json = nlohmann::json;

namespace {
Env* Or(Env* env) { return env ? env : Env::Default(); }
std::string Hex64(uint64_t v) {
  char b[17];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}
uint64_t ParseHex64(const std::string& s) {
  if (s.size() != 16 || s.find_first_not_of("0123456789abcdef") != std::string::npos) {
    throw json::other_error::create(0, "bad checksum", nullptr);
  }
  return std::stoull(s, nullptr, 16);
}
}  // namespace

Status WriteBackupManifest(const std::string& dir, const BackupManifest& m, Env* env) {
  json j = {{"store", m.store}, {"kind", m.kind}, {"lsn", m.lsn}, {"from_lsn", m.from_lsn},
            {"log_file_bytes", m.file_bytes}, {"log_mode", m.log_mode}, {"created", m.created},
            {"tool", "mbxmove"}};
  if (m.kind == "full") {
    j["data_bytes"] = m.data_bytes;
    j["data_xxh3"] = Hex64(m.data_xxh3);
  } else {
    json files = json::array();
    for (const auto& f : m.log_files) files.push_back({{"name", f.name}, {"bytes", f.bytes}, {"xxh3", Hex64(f.xxh3)}});
    j["log_files"] = files;
  }
  return Or(env)->WriteFileAtomic(dir + "/backup.json", j.dump(2) + "\n");
}

Result<BackupManifest> ReadBackupManifest(const std::string& dir, Env* env) {
  std::string text;
  Status s = Or(env)->ReadFile(dir + "/backup.json", &text);
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
    if (m.kind == "full") {
      m.data_bytes = j.at("data_bytes").get<uint64_t>();
      m.data_xxh3 = ParseHex64(j.at("data_xxh3").get<std::string>());
    } else if (m.kind == "incremental") {
      for (const auto& f : j.at("log_files")) {
        BackupManifest::LogFile lf;
        lf.name = f.at("name").get<std::string>();
        lf.bytes = f.at("bytes").get<uint64_t>();
        lf.xxh3 = ParseHex64(f.at("xxh3").get<std::string>());
        if (txlog::ParseFileName(lf.name) == 0) throw json::other_error::create(0, "bad log name", nullptr);
        m.log_files.push_back(std::move(lf));
      }
    }
  } catch (const json::exception&) {
    return Status::Corruption("backup manifest " + dir + "/backup.json is damaged");
  }
  if (m.kind != "full" && m.kind != "incremental") {
    return Status::Corruption("backup manifest " + dir + "/backup.json has unknown kind '" + m.kind + "'");
  }
  return m;
}

namespace {

// Creates `dir` (and missing parents, 0700) or accepts an empty folder.
Status PrepareEmptyDir(Env* env, const std::string& dir) {
  MBX_RETURN_IF_ERROR(CreateDirs(env, dir).WithContext("creating backup folder " + dir));
  std::vector<std::string> names;
  MBX_RETURN_IF_ERROR(env->GetChildren(dir, &names));
  if (!names.empty()) return Status::AlreadyExists("backup folder " + dir + " is not empty");
  return Status::Ok();
}

// The parent folder of `path` ("." for a bare name).
std::string ParentOf(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const size_t slash = p.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : p.substr(0, slash);
}

// The checkpoint stored in the copy in `dir` (opened read-only, without a
// lock file: nothing else uses it yet).
Result<uint64_t> ReadCheckpointOfCopy(const std::string& dir) {
  LmdbEnv env;
  MBX_RETURN_IF_ERROR(env.Open(dir, MDB_RDONLY | MDB_NOLOCK, 8, 1u << 20));
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
  Env* env = env_io_;
  MBX_RETURN_IF_ERROR(PrepareEmptyDir(env, out_dir));
  BackupResult r;
  BackupManifest m;
  m.store = name_;
  m.created = NowIso8601();
  LogOptions lo;
  uint64_t truncate_before = 0;
  if (!incremental) {
    m.kind = "full";
    const std::string data = out_dir + "/data.mdb";
    {
      MBX_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> out, env->NewWritableFile(data));
      // Hold the resize gate like a reader: the copy reads the map.
      AddReader();
      Status cs = CopyEnvInto(env_.get(), 0, out.get(), &m.data_bytes, &m.data_xxh3);
      RemoveReader();
      MBX_RETURN_IF_ERROR(cs.WithContext("copying store " + name_ + " to " + out_dir));
      MBX_RETURN_IF_ERROR(out->Sync());
    }
    MBX_ASSIGN_OR_RETURN(r.lsn, ReadCheckpointOfCopy(out_dir));
    r.bytes = m.data_bytes;
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
    m.lsn = Checkpoints().first;
    const uint64_t g0 = txlog::GenerationOf(m.from_lsn, lo.file_bytes);
    const uint64_t g1 = txlog::GenerationOf(m.lsn, lo.file_bytes);
    MBX_RETURN_IF_ERROR(env->CreateDir(out_dir + "/logs"));
    for (uint64_t g = g0; g <= g1; ++g) {
      BackupManifest::LogFile f;
      f.name = txlog::FileName(g);
      const std::string src = dir_ + "/logs/" + f.name;
      auto present = env->GetFileSize(src);
      if (present.status().IsNotFound()) continue;  // the file just past a boundary may not exist yet
      MBX_RETURN_IF_ERROR(present.status());
      MBX_RETURN_IF_ERROR(CopyFile(env, src, out_dir + "/logs/" + f.name, &f.xxh3, &f.bytes));
      r.bytes += f.bytes;
      ++r.log_files_copied;
      m.log_files.push_back(std::move(f));
    }
    MBX_RETURN_IF_ERROR(env->SyncDir(out_dir + "/logs"));
    r.lsn = m.lsn;
    truncate_before = m.lsn;
  }
  {
    std::lock_guard<std::mutex> l(log_mu_);
    lo = log_->options();
    m.file_bytes = lo.file_bytes;
    m.log_mode = std::string(LogModeName(lo.mode));
  }
  // The manifest last: a folder without it is not a backup.
  MBX_RETURN_IF_ERROR(env->SyncDir(out_dir));
  MBX_RETURN_IF_ERROR(WriteBackupManifest(out_dir, m, env));
  MBX_RETURN_IF_ERROR(env->SyncDir(out_dir));
  MBX_RETURN_IF_ERROR(env->SyncDir(ParentOf(out_dir)));
  // Record the backup position (through the log, like any write), then drop
  // the log files the backup made unnecessary. Never drop what crash
  // recovery of the live store may still need.
  WriteBatch b;
  std::string v;
  PutFixed64(&v, r.lsn);
  b.Put(Db::kMeta, std::string(meta::kLastBackup), v);
  Status ws = Write(std::move(b));
  if (!ws.ok() && !ws.IsQuotaExceeded()) return ws;
  // With deferred data syncs the log is kept from the data checkpoint: one
  // now lets the backup drop what it covers.
  MBX_RETURN_IF_ERROR(DataCheckpointNow());
  std::lock_guard<std::mutex> l(log_mu_);
  last_backup_lsn_ = r.lsn;
  MBX_ASSIGN_OR_RETURN(r.log_files_truncated,
                       log_->RemoveBefore(std::min(truncate_before, Checkpoints().second)));
  return r;
}

Result<RestoreResult> RestoreStore(const std::string& store_dir, const std::string& store_name,
                                   const std::vector<std::string>& backups, Env* env_or_null) {
  Env* env = Or(env_or_null);
  if (backups.empty()) return Status::InvalidArgument("restore needs a backup folder");
  // 1. Check everything that can be checked before touching the store.
  MBX_ASSIGN_OR_RETURN(BackupManifest full, ReadBackupManifest(backups[0], env));
  if (full.kind != "full") return Status::InvalidArgument(backups[0] + " is an incremental backup; give the full backup first");
  if (full.store != store_name) {
    return Status::InvalidArgument(backups[0] + " is a backup of store '" + full.store + "', not '" + store_name + "'");
  }
  {
    auto size = env->GetFileSize(backups[0] + "/data.mdb");
    if (size.status().IsNotFound()) return Status::Corruption(backups[0] + " lacks data.mdb");
    MBX_RETURN_IF_ERROR(size.status());
    if (*size != full.data_bytes) {
      return Status::Corruption(backups[0] + "/data.mdb holds " + std::to_string(*size) + " bytes but the backup wrote " +
                                std::to_string(full.data_bytes) + ": the backup is damaged; use another one");
    }
  }
  std::vector<BackupManifest> incs;
  uint64_t expect = full.lsn;
  for (size_t i = 1; i < backups.size(); ++i) {
    MBX_ASSIGN_OR_RETURN(BackupManifest m, ReadBackupManifest(backups[i], env));
    if (m.kind != "incremental" || m.store != store_name || m.file_bytes != full.file_bytes) {
      return Status::InvalidArgument(backups[i] + " is not an incremental backup of store '" + store_name + "'");
    }
    if (m.from_lsn > expect) {
      return Status::InvalidArgument(backups[i] + " starts at log position " + std::to_string(m.from_lsn) +
                                     " but the backups before it end at " + std::to_string(expect) +
                                     ": an incremental backup is missing");
    }
    for (const auto& f : m.log_files) {
      uint64_t sum = 0, bytes = 0;
      Status hs = HashFile(env, backups[i] + "/logs/" + f.name, &sum, &bytes);
      if (hs.IsNotFound() || (hs.ok() && (sum != f.xxh3 || bytes != f.bytes))) {
        return Status::Corruption(backups[i] + "/logs/" + f.name +
                                  (hs.ok() ? " does not match the backup's manifest" : " is missing") +
                                  ": the backup is damaged; use another one");
      }
      MBX_RETURN_IF_ERROR(hs);
    }
    expect = std::max(expect, m.lsn);
    incs.push_back(m);
  }
  // 2. Hold the store: nobody may open it while its files change.
  MBX_RETURN_IF_ERROR(env->CreateDir(store_dir).WithContext("creating the store folder"));
  auto lock = env->LockFile(store_dir + "/LOCK");
  if (lock.status().IsBusy()) {
    return Status::Busy("store " + store_dir + " is open in another mbxmove process; stop it before restoring");
  }
  MBX_RETURN_IF_ERROR(lock.status());
  const std::string logs = store_dir + "/logs";
  MBX_RETURN_IF_ERROR(env->CreateDir(logs));
  // 3. Can the logs roll forward from the backup? The file holding its LSN
  // must be present (in the store or an incremental backup), unless the log
  // ends exactly there.
  std::vector<std::string> present;
  MBX_RETURN_IF_ERROR(env->GetChildren(logs, &present));
  std::set<std::string> have(present.begin(), present.end());
  uint64_t newest = 0, oldest = UINT64_MAX;
  auto count = [&](const std::string& name) {
    if (uint64_t g = txlog::ParseFileName(name)) {
      newest = std::max(newest, g);
      oldest = std::min(oldest, g);
    }
  };
  for (const auto& n : present) count(n);
  for (const auto& m : incs) {
    for (const auto& f : m.log_files) count(f.name);
  }
  const uint64_t need = txlog::GenerationOf(full.lsn, full.file_bytes);
  const bool circular = full.log_mode == "circular";
  const bool roll = newest >= need && oldest <= need;
  if (!roll && !circular && newest != 0 && oldest > need) {
    return Status::InvalidArgument(
        "the transaction logs needed to roll forward from this backup (generation " + txlog::FileName(need) +
        ") were removed by a later backup; restore the latest full backup instead");
  }
  // 4. The database, beside the old one, checked against the manifest.
  const std::string staged = store_dir + "/data.mdb.restore";
  {
    uint64_t sum = 0, bytes = 0;
    Status cs = CopyFile(env, backups[0] + "/data.mdb", staged, &sum, &bytes);
    if (cs.ok() && (sum != full.data_xxh3 || bytes != full.data_bytes)) {
      cs = Status::Corruption(backups[0] + "/data.mdb does not match the backup's manifest: the backup is damaged; "
                              "use another one");
    }
    if (!cs.ok()) {
      (void)env->RemoveFile(staged);
      return cs;
    }
  }
  // 5. The logs: the incremental backups' files the store lacks, or none at
  // all when restoring to the backup point only.
  if (roll) {
    // A generation file only grows: the store's own copy wins unless it is
    // shorter than the backup's. Each file is copied under a temporary name
    // and renamed, so a failed restore never leaves half a log file.
    for (size_t i = 0; i < incs.size(); ++i) {
      for (const auto& f : incs[i].log_files) {
        const std::string dest = logs + "/" + f.name;
        if (have.count(f.name)) {
          MBX_ASSIGN_OR_RETURN(uint64_t size, env->GetFileSize(dest));
          if (size >= f.bytes) continue;
        }
        MBX_RETURN_IF_ERROR(CopyFile(env, backups[i + 1] + "/logs/" + f.name, dest + ".restore"));
        MBX_RETURN_IF_ERROR(env->RenameFile(dest + ".restore", dest));
        have.insert(f.name);
      }
    }
  } else {
    for (const auto& n : present) {
      if (txlog::ParseFileName(n) != 0 || n == txlog::kCheckpointFile || n == txlog::kGapFile) {
        MBX_RETURN_IF_ERROR(env->RemoveFile(logs + "/" + n));
      }
    }
  }
  MBX_RETURN_IF_ERROR(env->SyncDir(logs));
  // 6. One rename puts the database in place: the old one or the new one.
  // The old one's data checkpoint (store.h, "Data syncs") goes first: it
  // names the old file's pages.
  if (Status rm = env->RemoveFile(store_dir + "/data.ckpt"); !rm.ok() && !rm.IsNotFound()) return rm;
  MBX_RETURN_IF_ERROR(env->SyncDir(store_dir));
  MBX_RETURN_IF_ERROR(env->RenameFile(staged, store_dir + "/data.mdb"));
  // The database that a machine crash left unsynced (see Store::Open) is gone.
  if (Status rm = env->RemoveFile(store_dir + "/UNSYNCED"); !rm.ok() && !rm.IsNotFound()) return rm;
  MBX_RETURN_IF_ERROR(env->SyncDir(store_dir));
  MBX_RETURN_IF_ERROR(env->RemoveFile(store_dir + "/lock.mdb"));
  lock->reset();
  // 7. Opening replays the logs after the backup's checkpoint.
  RestoreResult r;
  r.backup_lsn = full.lsn;
  OpenOptions oo;
  oo.initial_map_bytes = 1ull << 30;
  oo.env = env;
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
