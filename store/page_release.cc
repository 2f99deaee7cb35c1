// Store::ReleaseResidentPages: drops data.mdb's mapped pages from the
// process's resident set.
#include "store/store.h"

#include <sys/mman.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>

namespace mbx {

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

}  // namespace mbx
