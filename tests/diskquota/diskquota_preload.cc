// The pretend small file system: see diskquota_preload.h. Built as a shared
// library without sanitizers and preloaded into a child process.
#undef _FORTIFY_SOURCE  // fortified pwrite is an inline wrapper that a definition would clash with
#include "tests/diskquota/diskquota_preload.h"

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>

#include "tests/preload_next.h"

namespace {

template <typename Fn>
Fn Next(const char* name) {
  return mbx::testing::NextSymbol<Fn>("diskquota", name);
}

constexpr uint64_t kBlock = 4096;
uint64_t RoundUp(uint64_t n) { return (n + kBlock - 1) / kBlock * kBlock; }

struct State {
  bool configured = false;
  std::string folder;  // canonical, ends with '/'; empty = disarmed
  uint64_t limit = 0;
};

// Held across the check and the real call of every tracked call.
std::recursive_mutex g_mu;
State g_state;  // GUARDED_BY(g_mu)

void Configure(State& s) {
  if (s.configured) return;
  s.configured = true;
  const char* dir = std::getenv("MBX_DISKQUOTA_DIR");
  const char* bytes = std::getenv("MBX_DISKQUOTA_BYTES");
  if (dir == nullptr || *dir == '\0' || bytes == nullptr) return;
  char real[PATH_MAX];
  s.folder = ::realpath(dir, real) ? real : dir;
  if (s.folder.back() != '/') s.folder += '/';
  s.limit = std::strtoull(bytes, nullptr, 10);
}

bool Under(const State& s, std::string_view path) {
  return !s.folder.empty() && (path.substr(0, s.folder.size()) == s.folder || std::string(path) + "/" == s.folder);
}

// Blocks allocated under `dir` (regular files, recursively), in bytes.
uint64_t Allocated(const std::string& dir) {
  uint64_t sum = 0;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return 0;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    const std::string path = dir + "/" + e->d_name;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) sum += Allocated(path);
    if (S_ISREG(st.st_mode)) sum += uint64_t(st.st_blocks) * 512;
  }
  ::closedir(d);
  return sum;
}

uint64_t Used(const State& s) { return Allocated(s.folder.substr(0, s.folder.size() - 1)); }

// The tracked regular file behind `fd`: its stat, or false.
bool Tracked(const State& s, int fd, struct stat* st) {
  if (s.folder.empty() || fd < 0) return false;
  if (::fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) return false;
  char link[64];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  char path[PATH_MAX];
  const ssize_t n = ::readlink(link, path, sizeof path);
  if (n <= 0 || size_t(n) >= sizeof path) return false;
  return Under(s, std::string_view(path, size_t(n)));
}

// Whether a call that makes `fd`'s file hold [0, end) fits; errno ENOSPC
// when not. Call under g_mu.
bool Fits(int fd, uint64_t end) {
  State& s = g_state;
  Configure(s);
  struct stat st {};
  if (!Tracked(s, fd, &st)) return true;
  const uint64_t held = std::max(uint64_t(st.st_blocks) * 512, RoundUp(uint64_t(st.st_size)));
  if (end <= uint64_t(st.st_size) || RoundUp(end) <= held) return true;
  if (Used(s) + (RoundUp(end) - held) <= s.limit) return true;
  errno = ENOSPC;
  return false;
}

uint64_t IovBytes(const struct iovec* iov, int cnt) {
  uint64_t n = 0;
  for (int i = 0; i < cnt; ++i) n += iov[i].iov_len;
  return n;
}

// The current offset of `fd` (where write/writev write), or the size for O_APPEND.
uint64_t WriteOffset(int fd) {
  const int fl = ::fcntl(fd, F_GETFL);
  if (fl >= 0 && (fl & O_APPEND)) {
    struct stat st {};
    return ::fstat(fd, &st) == 0 ? uint64_t(st.st_size) : 0;
  }
  const off_t off = ::lseek(fd, 0, SEEK_CUR);
  return off < 0 ? 0 : uint64_t(off);
}

// Free space as the pretend file system reports it, in `frsize` units.
void Report(const std::string& path, unsigned long frsize, fsblkcnt_t* bavail, fsblkcnt_t* bfree) {
  State& s = g_state;
  Configure(s);
  char real[PATH_MAX];
  const std::string canonical = ::realpath(path.c_str(), real) ? real : path;
  if (!Under(s, canonical) || frsize == 0) return;
  const uint64_t used = Used(s);
  const uint64_t free_blocks = (used >= s.limit ? 0 : s.limit - used) / frsize;
  *bavail = std::min<fsblkcnt_t>(*bavail, fsblkcnt_t(free_blocks));
  *bfree = std::min<fsblkcnt_t>(*bfree, fsblkcnt_t(free_blocks));
}

std::string FdPath(int fd) {
  char link[64];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  return link;
}

}  // namespace

#define MBX_REAL(name) static const auto real = Next<decltype(&::name)>(#name)

extern "C" ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  MBX_REAL(pwrite);
  std::lock_guard<std::recursive_mutex> l(g_mu);
  if (!Fits(fd, uint64_t(off) + n)) return -1;
  return real(fd, buf, n, off);
}
extern "C" ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t off) {
  MBX_REAL(pwrite64);
  std::lock_guard<std::recursive_mutex> l(g_mu);
  if (!Fits(fd, uint64_t(off) + n)) return -1;
  return real(fd, buf, n, off);
}
extern "C" ssize_t write(int fd, const void* buf, size_t n) {
  MBX_REAL(write);
  std::lock_guard<std::recursive_mutex> l(g_mu);
  struct stat st {};
  Configure(g_state);
  if (Tracked(g_state, fd, &st) && !Fits(fd, WriteOffset(fd) + n)) return -1;
  return real(fd, buf, n);
}
extern "C" ssize_t writev(int fd, const struct iovec* iov, int cnt) {
  MBX_REAL(writev);
  std::lock_guard<std::recursive_mutex> l(g_mu);
  struct stat st {};
  Configure(g_state);
  if (Tracked(g_state, fd, &st) && !Fits(fd, WriteOffset(fd) + IovBytes(iov, cnt))) return -1;
  return real(fd, iov, cnt);
}
extern "C" ssize_t pwritev(int fd, const struct iovec* iov, int cnt, off_t off) {
  MBX_REAL(pwritev);
  std::lock_guard<std::recursive_mutex> l(g_mu);
  if (!Fits(fd, uint64_t(off) + IovBytes(iov, cnt))) return -1;
  return real(fd, iov, cnt, off);
}
extern "C" int fallocate(int fd, int mode, off_t off, off_t len) {
  MBX_REAL(fallocate);
  std::lock_guard<std::recursive_mutex> l(g_mu);
  if (mode == 0 && !Fits(fd, uint64_t(off) + uint64_t(len))) return -1;
  return real(fd, mode, off, len);
}
extern "C" int fallocate64(int fd, int mode, off64_t off, off64_t len) {
  MBX_REAL(fallocate64);
  std::lock_guard<std::recursive_mutex> l(g_mu);
  if (mode == 0 && !Fits(fd, uint64_t(off) + uint64_t(len))) return -1;
  return real(fd, mode, off, len);
}
extern "C" int posix_fallocate(int fd, off_t off, off_t len) {
  MBX_REAL(posix_fallocate);
  std::lock_guard<std::recursive_mutex> l(g_mu);
  if (!Fits(fd, uint64_t(off) + uint64_t(len))) return ENOSPC;
  return real(fd, off, len);
}
extern "C" int posix_fallocate64(int fd, off64_t off, off64_t len) {
  MBX_REAL(posix_fallocate64);
  std::lock_guard<std::recursive_mutex> l(g_mu);
  if (!Fits(fd, uint64_t(off) + uint64_t(len))) return ENOSPC;
  return real(fd, off, len);
}
extern "C" int statvfs(const char* path, struct statvfs* buf) {
  MBX_REAL(statvfs);
  const int rc = real(path, buf);
  if (rc != 0) return rc;
  std::lock_guard<std::recursive_mutex> l(g_mu);
  Report(path, buf->f_frsize, &buf->f_bavail, &buf->f_bfree);
  return 0;
}
extern "C" int statvfs64(const char* path, struct statvfs64* buf) {
  MBX_REAL(statvfs64);
  const int rc = real(path, buf);
  if (rc != 0) return rc;
  std::lock_guard<std::recursive_mutex> l(g_mu);
  Report(path, buf->f_frsize, &buf->f_bavail, &buf->f_bfree);
  return 0;
}
extern "C" int fstatvfs(int fd, struct statvfs* buf) {
  MBX_REAL(fstatvfs);
  const int rc = real(fd, buf);
  if (rc != 0) return rc;
  std::lock_guard<std::recursive_mutex> l(g_mu);
  Report(FdPath(fd), buf->f_frsize, &buf->f_bavail, &buf->f_bfree);
  return 0;
}
