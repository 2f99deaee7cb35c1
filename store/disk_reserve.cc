#include "store/disk_reserve.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "store/file_io.h"

namespace mbx {

namespace {

std::string FolderOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Allocates [0, bytes) of `fd`: fallocate, or zeros where the file system
// does not support it (the blocks must be really held either way).
int Allocate(int fd, uint64_t bytes) {
  if (::fallocate(fd, 0, 0, off_t(bytes)) == 0) return 0;
  if (errno != EOPNOTSUPP && errno != ENOSYS) return errno;
  static const std::string zeros(64u << 10, '\0');
  for (uint64_t off = 0; off < bytes;) {
    const size_t n = size_t(std::min<uint64_t>(zeros.size(), bytes - off));
    const ssize_t w = ::pwrite(fd, zeros.data(), n, off_t(off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return w < 0 ? errno : EIO;
    off += uint64_t(w);
  }
  return ::fdatasync(fd) == 0 ? 0 : errno;
}

}  // namespace

Status DiskReserve::Acquire() {
  if (bytes_ == 0) return Status::Ok();
  struct stat st {};
  uint64_t have = 0;
  if (::stat(path_.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode)) return Status::IOError("disk reserve " + path_ + " is not a regular file");
    have = uint64_t(st.st_blocks) * 512;
    if (have >= bytes_ && uint64_t(st.st_size) >= bytes_) {
      held_ = true;
      return Status::Ok();
    }
  } else if (errno != ENOENT) {
    return PosixError("reading disk reserve", path_, errno);
  }
  struct statvfs fs {};
  if (::statvfs(FolderOf(path_).c_str(), &fs) != 0) return PosixError("reading free space of", FolderOf(path_), errno);
  const uint64_t free_bytes = uint64_t(fs.f_bavail) * fs.f_frsize + have;
  if (free_bytes < 2 * bytes_) {
    (void)::unlink(path_.c_str());
    return Status::NoSpace("disk reserve " + path_ + ": " + std::to_string(free_bytes) +
                           " bytes free on its file system, fewer than the reserve (" + std::to_string(bytes_) +
                           " bytes) and as much again");
  }
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, kOwnerOnlyFileMode);
  if (fd < 0) return PosixError("creating disk reserve", path_, errno);
  (void)::fchmod(fd, kOwnerOnlyFileMode);
  const int err = Allocate(fd, bytes_);
  ::close(fd);
  if (err != 0) {
    (void)::unlink(path_.c_str());  // a half-allocated reserve would hold space for nothing
    return PosixError("allocating disk reserve", path_, err);
  }
  held_ = true;
  return Status::Ok();
}

Status DiskReserve::Release() {
  held_ = false;
  if (::unlink(path_.c_str()) != 0 && errno != ENOENT) return PosixError("removing disk reserve", path_, errno);
  return Status::Ok();
}

}  // namespace mbx
