// The interposed I/O calls: see lmdb_fault_interpose.h.
//
// Each wrapper is a C function with glibc's name and prototype. The test
// executable exports them (tests/CMakeLists.txt passes
// --export-dynamic-symbol for each), so liblmdb.so's references bind here.
#undef _FORTIFY_SOURCE  // fortified pread/pwrite are inline wrappers that a definition would clash with
#include "tests/lmdb_fault_interpose.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string_view>

namespace mbx::testing::lmdb_fault {
#include "tests/preload_next.h"

namespace {

enum class Kind { kWrite, kSync, kRead };

// Fast path: nothing is looked at while disarmed.
std::atomic<bool> g_armed{false};
std::mutex g_mu;
std::string g_folder;  // GUARDED_BY(g_mu): canonical, ends with '/'
Plan g_plan;           // GUARDED_BY(g_mu)
Tally g_tally;         // GUARDED_BY(g_mu)

// The next definition of `name` after this executable's: glibc's (or the
// sanitizer runtime's interceptor, which forwards to glibc's).
template <typename Fn>
Fn Next(const char* name) {
  return mbx::testing::NextSymbol<Fn>("lmdb_fault", name);
}

// Counts a call on `path` if it is watched; returns the errno to fail it
// with, or 0 to let it through.
int Count(Kind kind, const char* fn, std::string_view path) {
  static constexpr std::string_view kData = "/data.mdb";
  std::lock_guard<std::mutex> l(g_mu);
  if (!g_armed.load(std::memory_order_relaxed)) return 0;
  if (path.size() <= kData.size() || path.substr(path.size() - kData.size()) != kData) return 0;
  if (path.substr(0, g_folder.size()) != g_folder) return 0;
  switch (kind) {
    case Kind::kWrite: ++g_tally.writes; break;
    case Kind::kSync: ++g_tally.syncs; break;
    case Kind::kRead: ++g_tally.reads; break;
  }
  const uint64_t n = g_tally.total();
  const bool fail = g_plan.fail_at > 0 && (n == g_plan.fail_at || (g_plan.sticky && n > g_plan.fail_at));
  if (!fail) return 0;
  if (g_tally.failed++ == 0) {
    g_tally.first_failed = std::string(fn) + " (call " + std::to_string(n) + ") on " + std::string(path);
  }
  return g_plan.error;
}

// The same for a call on file descriptor `fd`.
int InterceptFd(Kind kind, const char* fn, int fd) {
  if (!g_armed.load(std::memory_order_acquire)) return 0;
  char link[64];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  char path[PATH_MAX];
  const ssize_t n = ::readlink(link, path, sizeof path);
  if (n <= 0 || size_t(n) >= sizeof path) return 0;
  return Count(kind, fn, std::string_view(path, size_t(n)));
}

// The same for msync of the mapping holding `addr` (from /proc/self/maps).
int InterceptMapped(const char* fn, const void* addr) {
  if (!g_armed.load(std::memory_order_acquire)) return 0;
  FILE* f = std::fopen("/proc/self/maps", "r");
  if (f == nullptr) return 0;
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
  return path.empty() ? 0 : Count(Kind::kSync, fn, path);
}

// Runs `call` unless the interceptor says to fail; errno is the caller's
// again before the real call, so that a successful call leaves it alone.
template <typename Call>
auto Guarded(int fail_errno, int saved_errno, Call call) -> decltype(call()) {
  if (fail_errno != 0) {
    errno = fail_errno;
    return -1;
  }
  errno = saved_errno;
  return call();
}

}  // namespace

void Arm(const std::string& folder, const Plan& plan) {
  char real[PATH_MAX];
  std::string canonical = ::realpath(folder.c_str(), real) ? real : folder;
  if (canonical.empty() || canonical.back() != '/') canonical += '/';
  std::lock_guard<std::mutex> l(g_mu);
  g_folder = std::move(canonical);
  g_plan = plan;
  g_tally = Tally{};
  g_armed.store(true, std::memory_order_release);
}

Tally Disarm() {
  std::lock_guard<std::mutex> l(g_mu);
  g_armed.store(false, std::memory_order_release);
  return g_tally;
}

}  // namespace mbx::testing::lmdb_fault

using mbx::testing::lmdb_fault::Guarded;
using mbx::testing::lmdb_fault::InterceptFd;
using mbx::testing::lmdb_fault::InterceptMapped;
using mbx::testing::lmdb_fault::Kind;
using mbx::testing::lmdb_fault::Next;

// One wrapper per function: count (and maybe fail), else forward.
#define MBX_FD_WRAPPER(ret, name, kind, params, args)                               \
  extern "C" ret name params {                                                      \
    static const auto real = Next<decltype(&::name)>(#name);                        \
    const int saved = errno;                                                        \
    return Guarded(InterceptFd(kind, #name, fd), saved, [&] { return real args; }); \
  }

MBX_FD_WRAPPER(ssize_t, pwrite, Kind::kWrite, (int fd, const void* buf, size_t n, off_t off), (fd, buf, n, off))
MBX_FD_WRAPPER(ssize_t, pwrite64, Kind::kWrite, (int fd, const void* buf, size_t n, off64_t off), (fd, buf, n, off))
MBX_FD_WRAPPER(ssize_t, pwritev, Kind::kWrite, (int fd, const struct iovec* iov, int cnt, off_t off),
               (fd, iov, cnt, off))
MBX_FD_WRAPPER(ssize_t, writev, Kind::kWrite, (int fd, const struct iovec* iov, int cnt), (fd, iov, cnt))
MBX_FD_WRAPPER(ssize_t, write, Kind::kWrite, (int fd, const void* buf, size_t n), (fd, buf, n))
MBX_FD_WRAPPER(int, fdatasync, Kind::kSync, (int fd), (fd))
MBX_FD_WRAPPER(int, fsync, Kind::kSync, (int fd), (fd))
MBX_FD_WRAPPER(ssize_t, pread, Kind::kRead, (int fd, void* buf, size_t n, off_t off), (fd, buf, n, off))
MBX_FD_WRAPPER(ssize_t, pread64, Kind::kRead, (int fd, void* buf, size_t n, off64_t off), (fd, buf, n, off))

extern "C" int msync(void* addr, size_t len, int flags) {
  static const auto real = Next<decltype(&::msync)>("msync");
  const int saved = errno;
  return Guarded(InterceptMapped("msync", addr), saved, [&] { return real(addr, len, flags); });
}
