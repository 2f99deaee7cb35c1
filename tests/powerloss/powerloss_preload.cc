// The power-loss simulation: see powerloss_preload.h. Built as a shared
// library without sanitizers and preloaded into a child process.
#undef _FORTIFY_SOURCE  // fortified pwrite/pread are inline wrappers that a definition would clash with
#include "tests/powerloss/powerloss_preload.h"

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/preload_next.h"

namespace {

template <typename Fn>
Fn Next(const char* name) {
  return mbx::testing::NextSymbol<Fn>("powerloss", name);
}

#define MBX_REAL(name) static const auto real_##name = Next<decltype(&::name)>(#name)

// The real calls the undo uses (resolved once, on first use).
ssize_t RealPwrite(int fd, const void* buf, size_t n, off_t off) {
  MBX_REAL(pwrite);
  return real_pwrite(fd, buf, n, off);
}
int RealFtruncate(int fd, off_t len) {
  MBX_REAL(ftruncate);
  return real_ftruncate(fd, len);
}
ssize_t RealWrite(int fd, const void* buf, size_t n) {
  MBX_REAL(write);
  return real_write(fd, buf, n);
}

enum class Kind { kWrite, kSync };
enum class Mode { kAll, kNone, kRandom, kTorn };

// One write (or ftruncate) since the file's last sync, and how to undo it.
struct Undo {
  uint64_t seq = 0;      // global order of the writes
  uint64_t off = 0;      // where the write started (ftruncate: the new length)
  uint64_t len = 0;      // bytes written (ftruncate: 0)
  std::string old;       // the bytes at [off, off + old.size()) before it
  uint64_t old_size = 0; // the file's size before it
  bool durable = false;  // made through an O_DSYNC/O_SYNC descriptor and returned: on disk,
                         // never undone, and no older write is undone under it
};

struct File {
  int fd = -1;  // our own O_RDWR descriptor of the file (through /proc/self/fd)
  std::string path;
  std::vector<Undo> undo;
};

struct State {
  bool configured = false;
  std::string folder;  // canonical, ends with '/'; empty = disarmed
  Kind at_kind = Kind::kSync;
  bool at_any = false;  // `event`: writes and syncs both count
  uint64_t at = 0;      // 0 = count only
  bool after = false;
  Mode mode = Mode::kAll;
  uint64_t seed = 1;
  bool fail_sync = false;  // MBX_POWERLOSS_FAIL_SYNC: the chosen sync fails instead
  std::string count_file;

  uint64_t syncs = 0, writes = 0, seq = 0;
  uint64_t lost_bytes = 0;
  uint64_t failed_syncs = 0;
  bool lost = false;
  std::map<std::pair<dev_t, ino_t>, File> files;
};

std::mutex g_mu;
State g_state;  // GUARDED_BY(g_mu)

void Configure(State& s) {
  if (s.configured) return;
  s.configured = true;
  const char* dir = std::getenv("MBX_POWERLOSS_DIR");
  if (dir == nullptr || *dir == '\0') return;
  char real[PATH_MAX];
  s.folder = ::realpath(dir, real) ? real : dir;
  if (s.folder.back() != '/') s.folder += '/';
  if (const char* at = std::getenv("MBX_POWERLOSS_AT"); at && *at) {
    std::string_view v(at);
    const size_t colon = v.find(':');
    const std::string_view kind = v.substr(0, colon);
    s.at = colon == std::string_view::npos ? 0 : std::strtoull(at + colon + 1, nullptr, 10);
    if (kind == "sync") {
      s.at_kind = Kind::kSync;
    } else if (kind == "write") {
      s.at_kind = Kind::kWrite;
    } else if (kind == "event") {
      s.at_any = true;
    } else {
      std::fprintf(stderr, "powerloss: bad MBX_POWERLOSS_AT '%s' (sync:N, write:N or event:N)\n", at);
      std::abort();
    }
  }
  if (const char* w = std::getenv("MBX_POWERLOSS_WHEN")) s.after = std::string_view(w) == "after";
  if (const char* m = std::getenv("MBX_POWERLOSS_MODE"); m && *m) {
    const std::string_view v(m);
    if (v == "all") s.mode = Mode::kAll;
    else if (v == "none") s.mode = Mode::kNone;
    else if (v == "random") s.mode = Mode::kRandom;
    else if (v == "torn") s.mode = Mode::kTorn;
    else {
      std::fprintf(stderr, "powerloss: bad MBX_POWERLOSS_MODE '%s'\n", m);
      std::abort();
    }
  }
  if (const char* e = std::getenv("MBX_POWERLOSS_SEED")) s.seed = std::strtoull(e, nullptr, 10);
  if (const char* e = std::getenv("MBX_POWERLOSS_COUNT_FILE")) s.count_file = e;
  if (const char* e = std::getenv("MBX_POWERLOSS_FAIL_SYNC")) s.fail_sync = std::string_view(e) == "1";
}

void WriteCounts(const State& s) {
  if (s.count_file.empty()) return;
  uint64_t unsynced = 0;
  for (const auto& [key, f] : s.files) {
    for (const Undo& u : f.undo) unsynced += u.durable ? 0 : u.len;
  }
  char line[256];
  const int n = std::snprintf(line, sizeof line, "syncs %llu writes %llu lost %d unsynced_bytes %llu lost_bytes %llu failed_syncs %llu\n",
                              (unsigned long long)s.syncs, (unsigned long long)s.writes, s.lost ? 1 : 0,
                              (unsigned long long)unsynced, (unsigned long long)s.lost_bytes,
                              (unsigned long long)s.failed_syncs);
  const int fd = ::open(s.count_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  if (RealWrite(fd, line, size_t(n)) != n) std::fprintf(stderr, "powerloss: could not write %s\n", s.count_file.c_str());
  ::close(fd);
}

// The tracked file behind `fd`, or nullptr when it is not one.
struct Target {
  std::pair<dev_t, ino_t> key;
  std::string path;
};
bool Tracked(const State& s, int fd, Target* t) {
  if (s.folder.empty() || fd < 0) return false;
  char link[64];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  char path[PATH_MAX];
  const ssize_t n = ::readlink(link, path, sizeof path);
  if (n <= 0 || size_t(n) >= sizeof path) return false;
  const std::string_view p(path, size_t(n));
  if (p.substr(0, s.folder.size()) != s.folder) return false;
  const size_t slash = p.rfind('/');
  const std::string_view base = p.substr(slash + 1);
  if (base == "lock.mdb" || base == "LOCK") return false;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return false;
  t->key = {st.st_dev, st.st_ino};
  t->path = std::string(p);
  return true;
}

uint64_t SizeOf(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? uint64_t(st.st_size) : 0;
}

File& FileFor(State& s, int fd, const Target& t) {
  File& f = s.files[t.key];
  if (f.fd < 0) {
    char link[64];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    f.fd = ::open(link, O_RDWR | O_CLOEXEC);
    if (f.fd < 0) {
      std::fprintf(stderr, "powerloss: cannot reopen %s for undo: %s\n", t.path.c_str(), std::strerror(errno));
      std::abort();
    }
    f.path = t.path;
  }
  return f;
}

// Records the undo of a write of `len` bytes at `off` (or, with `truncate`,
// of ftruncate to `off`).
void Record(State& s, File& f, uint64_t off, uint64_t len, bool truncate) {
  Undo u;
  u.seq = ++s.seq;
  u.off = off;
  u.len = truncate ? 0 : len;
  u.old_size = SizeOf(f.fd);
  // The bytes that the call will replace (a shrinking ftruncate: the tail).
  const uint64_t end = truncate ? u.old_size : std::min(off + len, u.old_size);
  if (end > off) {
    u.old.resize(end - off);
    size_t got = 0;
    while (got < u.old.size()) {
      const ssize_t r = ::pread(f.fd, u.old.data() + got, u.old.size() - got, off_t(off + got));
      if (r <= 0) break;
      got += size_t(r);
    }
    u.old.resize(got);
  }
  f.undo.push_back(std::move(u));
}

// Byte ranges [first, second) that a kept later write holds.
using Ranges = std::vector<std::pair<uint64_t, uint64_t>>;

void WriteOutside(int fd, const std::string& bytes, uint64_t off, const Ranges& kept) {
  // Split [off, off + size) around the kept ranges.
  std::vector<std::pair<uint64_t, uint64_t>> parts = {{off, off + bytes.size()}};
  for (const auto& [a, b] : kept) {
    std::vector<std::pair<uint64_t, uint64_t>> next;
    for (const auto& [x, y] : parts) {
      if (b <= x || a >= y) {
        next.emplace_back(x, y);
        continue;
      }
      if (x < a) next.emplace_back(x, a);
      if (b < y) next.emplace_back(b, y);
    }
    parts.swap(next);
  }
  for (const auto& [x, y] : parts) {
    if (RealPwrite(fd, bytes.data() + (x - off), y - x, off_t(x)) != ssize_t(y - x)) {
      std::fprintf(stderr, "powerloss: undo write failed: %s\n", std::strerror(errno));
      std::abort();
    }
  }
}

// Puts back what `u` replaced, but not under a kept later write, and never
// cuts the file below `kept_end`.
void Apply(State& s, const File& f, const Undo& u, const Ranges& kept, uint64_t kept_end) {
  if (SizeOf(f.fd) < u.old_size && RealFtruncate(f.fd, off_t(u.old_size)) != 0) std::abort();
  WriteOutside(f.fd, u.old, u.off, kept);
  const uint64_t size = std::max(u.old_size, kept_end);
  if (SizeOf(f.fd) > size && RealFtruncate(f.fd, off_t(size)) != 0) std::abort();
  s.lost_bytes += u.len;
}

// Notes that `u` stays: no older write is undone under it.
void Keep(const Undo& u, Ranges* kept, uint64_t* kept_end) {
  if (u.len > 0) {
    kept->emplace_back(u.off, u.off + u.len);
    *kept_end = std::max(*kept_end, u.off + u.len);
  } else {
    *kept_end = std::max(*kept_end, u.off);  // a kept ftruncate
  }
}

// Waits until every thread of process `pid` is stopped (SIGSTOP).
void WaitStopped(pid_t pid) {
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  for (int i = 0; i < 50000; ++i) {
    bool all = true;
    if (DIR* d = ::opendir(tasks.c_str())) {
      while (struct dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        char buf[512] = {};
        const int fd = ::open((tasks + "/" + e->d_name + "/stat").c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;  // the thread ended
        const ssize_t n = ::read(fd, buf, sizeof buf - 1);
        ::close(fd);
        const char* paren = n > 0 ? std::strrchr(buf, ')') : nullptr;
        if (paren != nullptr && paren[1] == ' ' && paren[2] != 'T' && paren[2] != 't') all = false;
      }
      ::closedir(d);
    }
    if (all) return;
    ::usleep(100);
  }
}

void UndoSome(State& s);

// Loses power: a child stops this whole process (every thread at once, so
// none reads a file being cut back or writes after the power is "off"),
// undoes the chosen unsynced writes, and SIGKILLs it. The child is done
// before anyone can see this process end.
[[noreturn]] void LosePower(State& s) {
  s.lost = true;
  const pid_t self = ::getpid();
  const pid_t child = ::fork();
  if (child == 0) {
    ::kill(self, SIGSTOP);
    WaitStopped(self);
    UndoSome(s);
    WriteCounts(s);
    ::kill(self, SIGKILL);
    ::_exit(0);
  }
  if (child < 0) {  // no child: undo in place, racing the other threads
    UndoSome(s);
    WriteCounts(s);
    ::kill(self, SIGKILL);
  }
  for (;;) ::pause();
}

void UndoSome(State& s) {
  std::mt19937_64 rng(s.seed);
  // Newest first, across files.
  std::vector<std::pair<uint64_t, std::pair<File*, const Undo*>>> all;
  for (auto& [key, f] : s.files) {
    for (const Undo& u : f.undo) all.push_back({u.seq, {&f, &u}});
  }
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::map<const File*, std::pair<Ranges, uint64_t>> kept;  // per file: kept ranges, kept end
  bool newest = true;  // the newest write that could be lost (`torn` tears it)
  for (size_t i = 0; i < all.size(); ++i) {
    File* f = all[i].second.first;
    const Undo& u = *all[i].second.second;
    auto& [ranges, kept_end] = kept[f];
    if (u.durable) {
      Keep(u, &ranges, &kept_end);
      continue;
    }
    const bool first = newest;
    newest = false;
    bool lose = false;
    switch (s.mode) {
      case Mode::kAll: lose = true; break;
      case Mode::kNone: lose = false; break;
      case Mode::kRandom: lose = (rng() & 1) != 0; break;
      case Mode::kTorn:
        if (first && u.len > 0) {
          // Keep the newest write up to a sector boundary inside it (or not
          // at all): the rest of it is lost.
          std::vector<uint64_t> cuts = {u.off};
          for (uint64_t b = (u.off / 512 + 1) * 512; b < u.off + u.len; b += 512) cuts.push_back(b);
          const uint64_t cut = cuts[rng() % cuts.size()];
          Undo tail;
          tail.off = cut;
          tail.len = u.off + u.len - cut;
          tail.old = cut - u.off < u.old.size() ? u.old.substr(cut - u.off) : std::string();
          tail.old_size = std::max(u.old_size, cut);
          Apply(s, *f, tail, ranges, kept_end);
          ranges.emplace_back(u.off, cut);
          kept_end = std::max(kept_end, cut);
          continue;
        }
        lose = false;
        break;
    }
    if (lose) {
      Apply(s, *f, u, ranges, kept_end);
    } else {
      Keep(u, &ranges, &kept_end);
    }
  }
}

void ClearFile(File& f) {
  f.undo.clear();
  if (f.fd >= 0) ::close(f.fd);
  f.fd = -1;
}

// Counts an event; returns true when the power goes now (before the call).
// With `after`, *after_call is set instead and the caller loses power once
// the call is made.
bool Event(State& s, Kind kind, bool* after_call) {
  uint64_t n = 0;
  if (kind == Kind::kSync) n = ++s.syncs;
  if (kind == Kind::kWrite) n = ++s.writes;
  if (s.at == 0) return false;
  if (s.at_any) {
    n = s.syncs + s.writes;
  } else if (kind != s.at_kind) {
    return false;
  }
  if (n != s.at) return false;
  if (s.after) {
    *after_call = true;
    return false;
  }
  return true;
}

// A write of `len` bytes at `off` (or an ftruncate to `off`) on `fd`.
template <typename Call>
auto InterceptWrite(int fd, Call call, uint64_t len, int64_t off, bool truncate) -> decltype(call()) {
  const int saved = errno;
  std::unique_lock<std::mutex> l(g_mu);
  State& s = g_state;
  Configure(s);
  Target t;
  if (!Tracked(s, fd, &t)) {
    l.unlock();
    errno = saved;
    return call();
  }
  bool after = false;
  if (Event(s, Kind::kWrite, &after)) LosePower(s);
  File& f = FileFor(s, fd, t);
  uint64_t at = 0;
  if (off >= 0) {
    at = uint64_t(off);
  } else {
    const int flags = ::fcntl(fd, F_GETFL);
    at = (flags >= 0 && (flags & O_APPEND)) ? SizeOf(f.fd) : uint64_t(::lseek(fd, 0, SEEK_CUR));
  }
  Record(s, f, at, len, truncate);
  // A write through a descriptor opened with O_DSYNC or O_SYNC (LMDB writes
  // its meta page so) is on disk when it returns.
  const int fl = ::fcntl(fd, F_GETFL);
  const bool dsync = fl >= 0 && (fl & O_DSYNC) == O_DSYNC;
  errno = saved;
  auto r = call();
  const int err = errno;
  if (dsync && r >= 0) f.undo.back().durable = true;  // (a short write: the call says how much; all of it counted)
  if (after) LosePower(s);
  errno = err;
  return r;
}

// A sync of `fd` (or, when `all`, of everything).
template <typename Call>
int InterceptSync(int fd, bool all, Call call) {
  const int saved = errno;
  std::unique_lock<std::mutex> l(g_mu);
  State& s = g_state;
  Configure(s);
  Target t;
  if (!all && !Tracked(s, fd, &t)) {
    l.unlock();
    errno = saved;
    return call();
  }
  if (s.folder.empty()) {
    l.unlock();
    errno = saved;
    return call();
  }
  bool after = false;
  if (Event(s, Kind::kSync, &after)) {
    if (!s.fail_sync) LosePower(s);
    // The sync fails and the kernel drops the dirty pages it covered: the
    // file holds what was last synced, and the process goes on.
    for (auto& [key, f] : s.files) {
      if (!all && key != t.key) continue;
      Ranges kept;
      uint64_t kept_end = 0;
      for (auto u = f.undo.rbegin(); u != f.undo.rend(); ++u) {
        if (u->durable) {
          Keep(*u, &kept, &kept_end);
        } else {
          Apply(s, f, *u, kept, kept_end);
        }
      }
      ClearFile(f);
    }
    ++s.failed_syncs;
    WriteCounts(s);
    errno = EIO;
    return -1;
  }
  errno = saved;
  const int r = call();
  const int err = errno;
  if (r == 0) {
    // Durable now. (A failed sync leaves the records: the data may be lost.)
    if (all) {
      for (auto& [key, f] : s.files) ClearFile(f);
    } else if (auto it = s.files.find(t.key); it != s.files.end()) {
      ClearFile(it->second);
    }
  }
  if (after) LosePower(s);
  errno = err;
  return r;
}

// The file mapped at `addr` (from /proc/self/maps), for msync.
int FdOfMapping(const void* addr) {
  FILE* f = std::fopen("/proc/self/maps", "r");
  if (f == nullptr) return -1;
  const auto a = reinterpret_cast<uintptr_t>(addr);
  char line[PATH_MAX + 256];
  std::string path;
  while (std::fgets(line, sizeof line, f)) {
    unsigned long lo = 0, hi = 0;
    int at = 0;
    if (std::sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &at) < 2 || at == 0) continue;
    if (a < lo || a >= hi) continue;
    path = line + at;
    while (!path.empty() && (path.back() == '\n' || path.back() == ' ')) path.pop_back();
    break;
  }
  std::fclose(f);
  return path.empty() ? -1 : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
}

uint64_t IovBytes(const struct iovec* iov, int cnt) {
  uint64_t n = 0;
  for (int i = 0; i < cnt; ++i) n += iov[i].iov_len;
  return n;
}

struct CountAtExit {
  ~CountAtExit() {
    std::lock_guard<std::mutex> l(g_mu);
    if (!g_state.lost) WriteCounts(g_state);
  }
} g_count_at_exit;

}  // namespace

extern "C" {

ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  MBX_REAL(pwrite);
  return InterceptWrite(fd, [&] { return real_pwrite(fd, buf, n, off); }, n, off, false);
}
ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t off) {
  MBX_REAL(pwrite64);
  return InterceptWrite(fd, [&] { return real_pwrite64(fd, buf, n, off); }, n, off, false);
}
ssize_t pwritev(int fd, const struct iovec* iov, int cnt, off_t off) {
  MBX_REAL(pwritev);
  return InterceptWrite(fd, [&] { return real_pwritev(fd, iov, cnt, off); }, IovBytes(iov, cnt), off, false);
}
ssize_t writev(int fd, const struct iovec* iov, int cnt) {
  MBX_REAL(writev);
  return InterceptWrite(fd, [&] { return real_writev(fd, iov, cnt); }, IovBytes(iov, cnt), -1, false);
}
ssize_t write(int fd, const void* buf, size_t n) {
  MBX_REAL(write);
  return InterceptWrite(fd, [&] { return real_write(fd, buf, n); }, n, -1, false);
}
int ftruncate(int fd, off_t len) {
  MBX_REAL(ftruncate);
  return InterceptWrite(fd, [&] { return real_ftruncate(fd, len); }, 0, len, true);
}
int ftruncate64(int fd, off64_t len) {
  MBX_REAL(ftruncate64);
  return InterceptWrite(fd, [&] { return real_ftruncate64(fd, len); }, 0, len, true);
}
int fdatasync(int fd) {
  MBX_REAL(fdatasync);
  return InterceptSync(fd, false, [&] { return real_fdatasync(fd); });
}
int fsync(int fd) {
  MBX_REAL(fsync);
  return InterceptSync(fd, false, [&] { return real_fsync(fd); });
}
int syncfs(int fd) {
  MBX_REAL(syncfs);
  return InterceptSync(fd, true, [&] { return real_syncfs(fd); });
}
void sync(void) {
  MBX_REAL(sync);
  InterceptSync(-1, true, [&] {
    real_sync();
    return 0;
  });
}
int msync(void* addr, size_t len, int flags) {
  MBX_REAL(msync);
  if (!(flags & MS_SYNC)) return real_msync(addr, len, flags);  // MS_ASYNC only schedules
  const int fd = FdOfMapping(addr);
  const int r = InterceptSync(fd, false, [&] { return real_msync(addr, len, flags); });
  if (fd >= 0) ::close(fd);
  return r;
}

}  // extern "C"
