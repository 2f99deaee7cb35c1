#include "bench/baselines.h"

#include <chrono>
#include <filesystem>

#include "store/lmdb_env.h"

namespace mbx::bench {

namespace fs = std::filesystem;

namespace {
constexpr const char* kDbs[] = {"meta", "mailboxes", "folders", "items"};
constexpr size_t kTxnBytes = 64u << 20;
}  // namespace

Result<BaselineResult> RawLogicalCopy(const std::string& source_dir, const std::string& dest_dir) {
  std::error_code ec;
  fs::remove_all(dest_dir, ec);
  MBX_RETURN_IF_ERROR(CreateDirs(Env::Default(), dest_dir));
  LmdbEnv src, dst;
  MBX_RETURN_IF_ERROR(src.Open(source_dir, MDB_RDONLY, 8, 64ull << 30));
  MBX_RETURN_IF_ERROR(dst.Open(dest_dir, MDB_NOMETASYNC, 8, 64ull << 30));
  BaselineResult r;
  const auto t0 = std::chrono::steady_clock::now();
  LmdbTxn rt;
  MBX_RETURN_IF_ERROR(rt.Begin(src.get(), MDB_RDONLY));
  for (const char* name : kDbs) {
    MDB_dbi sdbi, ddbi;
    if (int rc = mdb_dbi_open(rt.get(), name, 0, &sdbi); rc != 0) return LmdbStatus(rc, "opening source db");
    LmdbTxn wt;
    MBX_RETURN_IF_ERROR(wt.Begin(dst.get(), 0));
    if (int rc = mdb_dbi_open(wt.get(), name, MDB_CREATE, &ddbi); rc != 0) return LmdbStatus(rc, "creating db");
    LmdbCursor cur;
    MBX_RETURN_IF_ERROR(cur.Open(rt.get(), sdbi));
    MDB_val k, v;
    size_t in_txn = 0;
    int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST);
    while (rc == 0) {
      if (int prc = mdb_put(wt.get(), ddbi, &k, &v, MDB_APPEND); prc != 0) return LmdbStatus(prc, "raw copy put");
      if (std::string_view(name) == "items") {
        r.bytes += v.mv_size;
        ++r.items;
      }
      in_txn += k.mv_size + v.mv_size;
      if (in_txn >= kTxnBytes) {
        MBX_RETURN_IF_ERROR(wt.Commit());
        MBX_RETURN_IF_ERROR(wt.Begin(dst.get(), 0));
        in_txn = 0;
      }
      rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT);
    }
    if (rc != MDB_NOTFOUND) return LmdbStatus(rc, "raw copy cursor");
    MBX_RETURN_IF_ERROR(wt.Commit());
  }
  mdb_env_sync(dst.get(), 1);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

Result<BaselineResult> PhysicalCopy(const std::string& source_dir, const std::string& dest_dir) {
  std::error_code ec;
  fs::remove_all(dest_dir, ec);
  MBX_RETURN_IF_ERROR(CreateDirs(Env::Default(), dest_dir));
  LmdbEnv src;
  MBX_RETURN_IF_ERROR(src.Open(source_dir, MDB_RDONLY, 8, 64ull << 30));
  BaselineResult r;
  const auto t0 = std::chrono::steady_clock::now();
  if (int rc = mdb_env_copy2(src.get(), dest_dir.c_str(), 0); rc != 0) return LmdbStatus(rc, "mdb_env_copy2");
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.bytes = fs::file_size(dest_dir + "/data.mdb", ec);
  return r;
}

}  // namespace mbx::bench
