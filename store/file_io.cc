#include "store/file_io.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace mbx {

namespace {

class PosixWritableFile final : public WritableFile {
  static constexpr int kMaxIov = 1024;  // IOV_MAX on Linux

 public:
  PosixWritableFile(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }
  Status Append(std::string_view data) override { return AppendV(std::span<const std::string_view>(&data, 1)); }
  Status AppendV(std::span<const std::string_view> pieces) override {
    // Up to IOV_MAX pieces a call; a short write resumes mid-piece.
    iovec iov[kMaxIov];
    size_t next = 0;      // first piece not wholly written
    size_t done_in = 0;   // bytes of pieces[next] already written
    while (next < pieces.size()) {
      int n = 0;
      for (size_t i = next; i < pieces.size() && n < kMaxIov; ++i) {
        const std::string_view p = i == next ? pieces[i].substr(done_in) : pieces[i];
        if (p.empty()) continue;
        iov[n].iov_base = const_cast<char*>(p.data());
        iov[n].iov_len = p.size();
        ++n;
      }
      if (n == 0) break;
      ssize_t w = ::pwritev(fd_, iov, n, off_t(size_));
      if (w < 0) {
        if (errno == EINTR) continue;
        return PosixError("writing", path_, errno);
      }
      if (w == 0) return PosixError("writing", path_, EIO);  // no progress: never loop on it
      size_ += uint64_t(w);
      size_t left = size_t(w);
      while (next < pieces.size() && left >= pieces[next].size() - done_in) {
        left -= pieces[next].size() - done_in;
        ++next;
        done_in = 0;
      }
      done_in += left;
    }
    return Status::Ok();
  }
  Status Sync() override {
    if (::fdatasync(fd_) != 0) return PosixError("syncing", path_, errno);
    return Status::Ok();
  }
  void DropCachedPages() override { (void)::posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED); }
  void StartWriteback() override { (void)::sync_file_range(fd_, 0, 0, SYNC_FILE_RANGE_WRITE); }
  Status Truncate(uint64_t size) override {
    if (::ftruncate(fd_, off_t(size)) != 0) return PosixError("truncating", path_, errno);
    size_ = size;
    return Status::Ok();
  }
  uint64_t Size() const override { return size_; }

 private:
  std::string path_;
  int fd_;
  uint64_t size_;
};

class PosixSequentialFile final : public SequentialFile {
 public:
  PosixSequentialFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixSequentialFile() override { ::close(fd_); }
  Status Read(size_t n, std::string* out) override {
    out->resize(n);
    for (;;) {
      ssize_t got = ::read(fd_, out->data(), n);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) {
        out->clear();
        return PosixError("reading", path_, errno);
      }
      out->resize(size_t(got));
      return Status::Ok();
    }
  }

 private:
  std::string path_;
  int fd_;
};

class PosixFileLock final : public FileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  ~PosixFileLock() override { ::close(fd_); }  // closing releases the flock

 private:
  int fd_;
};

// A file this process just created gets exactly 0600, whatever the umask.
void OwnerOnly(int fd) { (void)::fchmod(fd, kOwnerOnlyFileMode); }

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<WritableFile>> OpenAppendable(const std::string& path) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, kOwnerOnlyFileMode);
    if (fd < 0) return PosixError("opening", path, errno);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      int e = errno;
      ::close(fd);
      return PosixError("reading size of", path, e);
    }
    return std::unique_ptr<WritableFile>(
        std::make_unique<PosixWritableFile>(path, fd, uint64_t(st.st_size)));
  }

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, kOwnerOnlyFileMode);
    if (fd < 0) return PosixError("creating", path, errno);
    OwnerOnly(fd);
    return std::unique_ptr<WritableFile>(std::make_unique<PosixWritableFile>(path, fd, 0));
  }

  Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return Status::NotFound("no such file " + path);
      return PosixError("opening", path, errno);
    }
    return std::unique_ptr<SequentialFile>(std::make_unique<PosixSequentialFile>(path, fd));
  }

  Status ReadFile(const std::string& path, std::string* out) override {
    out->clear();
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return Status::NotFound("no such file " + path);
      return PosixError("opening", path, errno);
    }
    struct stat st;
    if (::fstat(fd, &st) == 0 && st.st_size > 0) out->reserve(size_t(st.st_size));
    char buf[1 << 16];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        int e = errno;
        ::close(fd);
        return PosixError("reading", path, e);
      }
      if (n == 0) break;
      out->append(buf, size_t(n));
    }
    ::close(fd);
    return Status::Ok();
  }

  Status WriteFileAtomic(const std::string& path, std::string_view data, bool sync) override {
    std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, kOwnerOnlyFileMode);
    if (fd < 0) return PosixError("creating", tmp, errno);
    OwnerOnly(fd);
    const char* p = data.data();
    size_t left = data.size();
    while (left > 0) {
      ssize_t n = ::write(fd, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        int e = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        return PosixError("writing", tmp, e);
      }
      p += n;
      left -= size_t(n);
    }
    if (sync && ::fdatasync(fd) != 0) {
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return PosixError("syncing", tmp, e);
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      int e = errno;
      ::unlink(tmp.c_str());
      return PosixError("renaming to", path, e);
    }
    return Status::Ok();
  }

  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return PosixError("removing", path, errno);
    return Status::Ok();
  }

  Status SyncDir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return PosixError("opening folder", dir, errno);
    int rc = ::fsync(fd);
    int e = errno;
    ::close(fd);
    if (rc != 0) return PosixError("syncing folder", dir, e);
    return Status::Ok();
  }

  Status RenameFile(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return PosixError("renaming " + from + " to", to, errno);
    return Status::Ok();
  }

  Status CreateDir(const std::string& dir) override {
    if (::mkdir(dir.c_str(), kOwnerOnlyDirMode) == 0) {
      // mkdir's mode passes through the umask; make it exactly 0700.
      if (::chmod(dir.c_str(), kOwnerOnlyDirMode) != 0) return PosixError("setting the mode of", dir, errno);
      return Status::Ok();
    }
    const int err = errno;
    struct stat st {};
    if (err == EEXIST && ::stat(dir.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) return Status::Ok();
      return Status::InvalidArgument(dir + " exists and is not a folder");
    }
    return PosixError("creating folder", dir, err);
  }

  Result<uint64_t> GetFileSize(const std::string& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) return Status::NotFound("no such file " + path);
      return PosixError("reading size of", path, errno);
    }
    return uint64_t(st.st_size);
  }

  Status GetChildren(const std::string& dir, std::vector<std::string>* names) override {
    return ListDir(dir, names);
  }

  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, kOwnerOnlyFileMode);
    if (fd < 0) return PosixError("opening lock file", path, errno);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int e = errno;
      ::close(fd);
      if (e == EWOULDBLOCK) return Status::Busy(path + " is locked by another process");
      return PosixError("locking", path, e);
    }
    return std::unique_ptr<FileLock>(std::make_unique<PosixFileLock>(fd));
  }
};

}  // namespace

Env* Env::Default() {
  static PosixEnv env;
  return &env;
}

Status ListDir(const std::string& dir, std::vector<std::string>* names) {
  names->clear();
  DIR* d = ::opendir(dir.c_str());
  if (!d) return PosixError("listing", dir, errno);
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names->push_back(std::move(n));
    errno = 0;
  }
  const int err = errno;
  ::closedir(d);
  if (err != 0) return PosixError("reading folder", dir, err);
  std::sort(names->begin(), names->end());
  return Status::Ok();
}

namespace {
constexpr size_t kCopyChunkBytes = 1u << 20;
}  // namespace

Status CopyFile(Env* env, const std::string& from, const std::string& to, uint64_t* xxh3, uint64_t* bytes) {
  MBX_ASSIGN_OR_RETURN(std::unique_ptr<SequentialFile> in, env->NewSequentialFile(from));
  MBX_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> out, env->NewWritableFile(to));
  XXH3_state_t* h = XXH3_createState();
  XXH3_64bits_reset(h);
  std::string chunk;
  uint64_t n = 0;
  Status s;
  for (;;) {
    s = in->Read(kCopyChunkBytes, &chunk);
    if (!s.ok() || chunk.empty()) break;
    XXH3_64bits_update(h, chunk.data(), chunk.size());
    n += chunk.size();
    s = out->Append(chunk);
    if (!s.ok()) break;
  }
  if (s.ok()) s = out->Sync();
  if (xxh3) *xxh3 = XXH3_64bits_digest(h);
  if (bytes) *bytes = n;
  XXH3_freeState(h);
  return s;
}

Status HashFile(Env* env, const std::string& path, uint64_t* xxh3, uint64_t* bytes) {
  MBX_ASSIGN_OR_RETURN(std::unique_ptr<SequentialFile> in, env->NewSequentialFile(path));
  XXH3_state_t* h = XXH3_createState();
  XXH3_64bits_reset(h);
  std::string chunk;
  uint64_t n = 0;
  Status s;
  for (;;) {
    s = in->Read(kCopyChunkBytes, &chunk);
    if (!s.ok() || chunk.empty()) break;
    XXH3_64bits_update(h, chunk.data(), chunk.size());
    n += chunk.size();
  }
  *xxh3 = XXH3_64bits_digest(h);
  *bytes = n;
  XXH3_freeState(h);
  return s;
}

Status CreateDirs(Env* env, const std::string& dir) {
  if (dir.empty()) return Status::InvalidArgument("empty folder path");
  // Create each missing prefix in turn, from the top.
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i != dir.size() && dir[i] != '/') continue;
    if (dir[i - 1] == '/') continue;
    const std::string prefix = dir.substr(0, i);
    struct stat st {};
    if (::stat(prefix.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
    MBX_RETURN_IF_ERROR(env->CreateDir(prefix));
  }
  return Status::Ok();
}

}  // namespace mbx
