#include "store/compact.h"

#include <memory>

#include "store/crash_point.h"
#include "store/lmdb_env.h"
#include "store/store.h"

namespace mbx {

Result<CompactResult> CompactStore(const std::string& store_dir, Env* env) {
  if (!env) env = Env::Default();
  const std::string data = store_dir + "/data.mdb";
  CompactResult r;
  {
    auto size = env->GetFileSize(data);
    if (size.status().IsNotFound()) return Status::NotFound("no store at " + store_dir + " (no data.mdb)");
    MBX_RETURN_IF_ERROR(size.status());
    r.bytes_before = *size;
  }
  auto lock = env->LockFile(store_dir + "/LOCK");
  if (lock.status().IsBusy()) {
    return Status::Busy("store " + store_dir +
                        " is open in another mbxmove process (its LOCK file is held); stop that process "
                        "before compacting");
  }
  MBX_RETURN_IF_ERROR(lock.status());
  // A store that was not closed: data.mdb's meta pages may name pages a
  // machine crash lost, until an open puts back the saved ones (store.h,
  // "Data syncs") and replays its log.
  if (auto ckpt = env->GetFileSize(store_dir + "/data.ckpt"); ckpt.ok() || !ckpt.status().IsNotFound()) {
    return Status::InvalidArgument("store " + store_dir +
                                   " was not closed cleanly (it has a data.ckpt): open it once to recover it "
                                   "(e.g. mbxmove recover), then compact it");
  }
  const std::string staged = store_dir + "/data.mdb.compact";
  {
    LmdbEnv lmdb;
    // Read-only, without lock.mdb (our LOCK keeps every other mbxmove out):
    // nothing is written to the old files.
    MBX_RETURN_IF_ERROR(lmdb.Open(store_dir, MDB_RDONLY | MDB_NOLOCK, kNumDbs, size_t(r.bytes_before) + (1u << 20))
                            .WithContext("opening store " + store_dir + " to compact it"));
    MBX_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> out, env->NewWritableFile(staged));
    Status s = CopyEnvInto(lmdb.get(), MDB_CP_COMPACT, out.get(), &r.bytes_after, nullptr,
                           [] { CrashPoint("compact-writing"); });
    if (s.ok()) s = out->Sync();
    out.reset();
    if (!s.ok()) {
      (void)env->RemoveFile(staged);
      return s.WithContext("compacting " + data);
    }
  }
  CrashPoint("compact-copied");
  if (Status s = env->RenameFile(staged, data); !s.ok()) {
    (void)env->RemoveFile(staged);
    return s;
  }
  CrashPoint("compact-renamed");
  MBX_RETURN_IF_ERROR(env->SyncDir(store_dir));
  MBX_RETURN_IF_ERROR(env->RemoveFile(store_dir + "/lock.mdb"));
  return r;
}

}  // namespace mbx
