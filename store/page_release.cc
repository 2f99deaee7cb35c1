// Store::ReleaseResidentPages: drops data.mdb's mapped pages from the
// process's resident set; DropDeadPages: deleted records' pages from the
// page cache.
#include "store/store.h"

#include <fcntl.h>
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

std::pair<uintptr_t, size_t> Store::DataMapping() {
  MDB_envinfo info;
  if (mdb_env_info(env_.get(), &info) != 0) return {0, 0};
  // The map moves only when it grows: look it up once per map size.
  std::lock_guard<std::mutex> l(mapping_mu_);
  if (mapping_for_bytes_ != info.me_mapsize) {
    mapping_ = FindDataMapping(dir_);
    mapping_for_bytes_ = info.me_mapsize;
  }
  return mapping_;
}

// The ranges are the freed pages themselves, merged only where they touch.
// The page cache drops a folio (64 KiB here) only whole, so a folio that
// also holds a live page stays. With the values' overflow pages alone, the
// leaf pages among them kept about half of a 'medium' source's folios
// cached; the leaf pages are dead too (the delete copied each before
// changing it), and with them a mailbox's pages drop as whole folios.
// Merging across gaps instead dropped other mailboxes' records (mailboxes
// written at once interleave in the file), which their moves then read back
// from disk: 940 MB of page-ins per move, and slower.
void Store::DeadRecordsToRanges() {
  dead_ranges_.clear();
  if (dead_records_.empty()) return;
  MDB_stat st;
  const auto [base, len] = DataMapping();
  if (base == 0 || mdb_env_stat(env_.get(), &st) != 0) return;
  const uint64_t psize = st.ms_psize;
  for (std::string_view v : dead_records_) {
    const uintptr_t p = reinterpret_cast<uintptr_t>(v.data());
    // In the map: the file's page (a leaf page for a key or a small value;
    // a large value's overflow pages, the first starting with LMDB's page
    // header just before it). Outside: a page this transaction had already
    // copied, not the file's.
    if (v.empty() || p < base || p + v.size() > base + len) continue;
    const uint64_t off = p - base;
    dead_ranges_.emplace_back(off / psize * psize, (off + v.size() + psize - 1) / psize * psize);
  }
  dead_records_.clear();
  std::sort(dead_ranges_.begin(), dead_ranges_.end());
  size_t out = 0;
  for (size_t i = 0; i < dead_ranges_.size(); ++i) {
    if (out > 0 && dead_ranges_[i].first <= dead_ranges_[out - 1].second) {
      dead_ranges_[out - 1].second = std::max(dead_ranges_[out - 1].second, dead_ranges_[i].second);
    } else {
      dead_ranges_[out++] = dead_ranges_[i];
    }
  }
  dead_ranges_.resize(out);
}

void Store::DropDeadPages() {
  int fd = -1;
  if (dead_ranges_.empty() || mdb_env_get_fd(env_.get(), &fd) != 0) return;

  // The delete itself faulted some of the pages into this process's map
  // (LMDB reads an overflow run's first page to free it, and a fault can map
  // the whole folio around it): a mapped page cannot leave the page cache,
  // so they leave the map first, in runs (an madvise is an IPI to every
  // core running this process: one per record cost more than the drop
  // gained). (The map does not move meanwhile: only this thread grows it.)
  const uintptr_t base = DataMapping().first;
  if (base != 0) {
    MappedPageReleaser unmap;
    for (const auto& [b, e] : dead_ranges_) {
      unmap.Add(std::string_view(reinterpret_cast<const char*>(base + b), e - b));
    }
  }
  uint64_t bytes = 0;
  for (const auto& [b, e] : dead_ranges_) {
    if (::posix_fadvise(fd, off_t(b), off_t(e - b), POSIX_FADV_DONTNEED) == 0) bytes += e - b;
  }
  dead_ranges_.clear();
  dead_bytes_dropped_.fetch_add(bytes, std::memory_order_relaxed);
}

void Store::ReleaseResidentPages() {
  AddReader();  // no map resize meanwhile
  MDB_envinfo info;
  MDB_stat st;
  if (mdb_env_info(env_.get(), &info) == 0 && mdb_env_stat(env_.get(), &st) == 0) {
    const std::pair<uintptr_t, size_t> map = DataMapping();
    const size_t used = std::min(map.second, size_t(info.me_last_pgno + 1) * st.ms_psize);
    if (map.first != 0 && used > 0) ::madvise(reinterpret_cast<void*>(map.first), used, MADV_DONTNEED);
  }
  RemoveReader();
}

}  // namespace mbx
