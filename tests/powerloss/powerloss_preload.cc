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
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
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

// The counts line the test reads; its length, 0 when there is no count file.
int CountsLine(const State& s, char* line, size_t cap) {
  if (s.count_file.empty()) return 0;
  uint64_t unsynced = 0;
  for (const auto& [key, f] : s.files) {
    for (const Undo& u : f.undo) unsynced += u.durable ? 0 : u.len;
  }
  const int n = std::snprintf(line, cap, "syncs %llu writes %llu lost %d unsynced_bytes %llu lost_bytes %llu failed_syncs %llu\n",
                              (unsigned long long)s.syncs, (unsigned long long)s.writes, s.lost ? 1 : 0,
                              (unsigned long long)unsynced, (unsigned long long)s.lost_bytes,
                              (unsigned long long)s.failed_syncs);
  return n > 0 && size_t(n) < cap ? n : 0;
}

// Writes a counts line made by CountsLine (system calls only).
void WriteCountsLine(const char* path, const char* line, int n) {
  if (n <= 0 || path == nullptr || *path == '\0') return;
  const int fd = ::open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  if (RealWrite(fd, line, size_t(n)) != n) {
    static const char kMsg[] = "powerloss: could not write the counts file\n";
    (void)RealWrite(2, kMsg, sizeof kMsg - 1);
  }
  ::close(fd);
}

void WriteCounts(const State& s) {
  char line[256];
  const int n = CountsLine(s, line, sizeof line);
  WriteCountsLine(s.count_file.c_str(), line, n);
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

// What the undo of a power loss does to the files, planned first and run
// after: the planning allocates, and the running is done by a forked child
// of a multithreaded process, which must not (another thread may have held
// an allocator lock at the fork, and GCC 12's ASan does not guard fork: the
// child then hangs with the process stopped). Ops run in order.
struct UndoOp {
  enum Kind { kGrowTo, kWrite, kShrinkTo } kind;
  int fd;
  uint64_t off;              // the size (kGrowTo, kShrinkTo) or the write's offset
  const char* data = nullptr;  // kWrite: `len` bytes, owned by the State or the plan
  size_t len = 0;
};
struct UndoPlan {
  std::vector<UndoOp> ops;
  std::vector<std::unique_ptr<Undo>> owned;  // undos made while planning (a torn write's tail)
};

// Runs the plan: system calls only (the real ones, resolved before).
// False, with a line on stderr, when a call failed: the files are then not
// as the power loss left them.
bool RunUndo(const UndoPlan& plan) {
  for (const UndoOp& op : plan.ops) {
    struct stat st {};
    const uint64_t size = ::fstat(op.fd, &st) == 0 ? uint64_t(st.st_size) : 0;
    bool ok = true;
    switch (op.kind) {
      case UndoOp::kGrowTo: ok = size >= op.off || RealFtruncate(op.fd, off_t(op.off)) == 0; break;
      case UndoOp::kShrinkTo: ok = size <= op.off || RealFtruncate(op.fd, off_t(op.off)) == 0; break;
      case UndoOp::kWrite: ok = RealPwrite(op.fd, op.data, op.len, off_t(op.off)) == ssize_t(op.len); break;
    }
    if (!ok) {
      static const char kMsg[] = "powerloss: undoing an unsynced write failed\n";
      (void)RealWrite(2, kMsg, sizeof kMsg - 1);
      return false;
    }
  }
  return true;
}

// Plans writing `bytes` back at `off`, but not under the kept ranges.
void WriteOutside(UndoPlan* plan, int fd, const std::string& bytes, uint64_t off, const Ranges& kept) {
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
    plan->ops.push_back({UndoOp::kWrite, fd, x, bytes.data() + (x - off), size_t(y - x)});
  }
}

// Plans putting back what `u` replaced, but not under a kept later write,
// and never cutting the file below `kept_end`. (`u.old` must outlive the
// plan's run.)
void Apply(UndoPlan* plan, State& s, const File& f, const Undo& u, const Ranges& kept, uint64_t kept_end) {
  plan->ops.push_back({UndoOp::kGrowTo, f.fd, u.old_size});
  WriteOutside(plan, f.fd, u.old, u.off, kept);
  plan->ops.push_back({UndoOp::kShrinkTo, f.fd, std::max(u.old_size, kept_end)});
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

// Appends `text` to `buf` (of `cap` bytes, NUL-terminated); no allocation.
void Append(char* buf, size_t cap, const char* text) {
  size_t n = std::strlen(buf);
  while (*text != '\0' && n + 1 < cap) buf[n++] = *text++;
  buf[n] = '\0';
}

// Waits until every thread of the process whose task folder is `tasks`
// (/proc/PID/task) is stopped (SIGSTOP). Runs in the forked child: system
// calls and stack buffers only.
void WaitStopped(const char* tasks) {
  for (int i = 0; i < 50000; ++i) {
    bool all = true;
    const int dir = ::open(tasks, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
      alignas(8) char ents[4096];
      for (;;) {
        const long n = ::syscall(SYS_getdents64, dir, ents, sizeof ents);
        if (n <= 0) break;
        for (long at = 0; at < n;) {
          const auto* e = reinterpret_cast<const struct dirent64*>(ents + at);
          at += e->d_reclen;
          if (e->d_name[0] == '.') continue;
          char path[128] = {};
          Append(path, sizeof path, tasks);
          Append(path, sizeof path, "/");
          Append(path, sizeof path, e->d_name);
          Append(path, sizeof path, "/stat");
          char buf[512] = {};
          const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
          if (fd < 0) continue;  // the thread ended
          const ssize_t r = ::read(fd, buf, sizeof buf - 1);
          ::close(fd);
          const char* paren = r > 0 ? std::strrchr(buf, ')') : nullptr;
          if (paren != nullptr && paren[1] == ' ' && paren[2] != 'T' && paren[2] != 't') all = false;
        }
      }
      ::close(dir);
    }
    if (all) return;
    ::usleep(100);
  }
}

void PlanUndo(State& s, UndoPlan* plan);

// Loses power: a child stops this whole process (every thread at once, so
// none reads a file being cut back or writes after the power is "off"),
// undoes the chosen unsynced writes, and SIGKILLs it. The child is done
// before anyone can see this process end.
[[noreturn]] void LosePower(State& s) {
  s.lost = true;
  // Everything the child needs is made here (see UndoPlan).
  UndoPlan plan;
  PlanUndo(s, &plan);
  char counts[256];
  const int counts_len = CountsLine(s, counts, sizeof counts);
  (void)RealPwrite(-1, nullptr, 0, 0);  // resolve the real calls now, not in the child
  (void)RealFtruncate(-1, 0);
  (void)RealWrite(-1, nullptr, 0);
  const pid_t self = ::getpid();
  char tasks[64];
  std::snprintf(tasks, sizeof tasks, "/proc/%d/task", int(self));
  const pid_t child = ::fork();
  if (child == 0) {
    ::kill(self, SIGSTOP);
    WaitStopped(tasks);
    // A failed undo writes no counts: the test says so, instead of checking
    // files the loss did not leave.
    const bool undone = RunUndo(plan);
    if (undone) WriteCountsLine(s.count_file.c_str(), counts, counts_len);
    ::kill(self, SIGKILL);
    ::_exit(undone ? 0 : 1);
  }
  if (child < 0) {  // no child: undo in place, racing the other threads
    if (RunUndo(plan)) WriteCountsLine(s.count_file.c_str(), counts, counts_len);
    ::kill(self, SIGKILL);
  }
  for (;;) ::pause();
}

void PlanUndo(State& s, UndoPlan* plan) {
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
          plan->owned.push_back(std::make_unique<Undo>(std::move(tail)));  // its bytes outlive the run
          Apply(plan, s, *f, *plan->owned.back(), ranges, kept_end);
          ranges.emplace_back(u.off, cut);
          kept_end = std::max(kept_end, cut);
          continue;
        }
        lose = false;
        break;
    }
    if (lose) {
      Apply(plan, s, *f, u, ranges, kept_end);
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
      UndoPlan plan;
      for (auto u = f.undo.rbegin(); u != f.undo.rend(); ++u) {
        if (u->durable) {
          Keep(*u, &kept, &kept_end);
        } else {
          Apply(&plan, s, f, *u, kept, kept_end);
        }
      }
      if (!RunUndo(plan)) std::abort();  // in place: the process goes on
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
