// The I/O seam under the transaction log and the store's own files: every
// create, write, fsync, read, rename, remove, listing and lock that the log
// reader and writer, backup, restore and compact make goes through an Env,
// so a test can make the Nth call fail (EIO, ENOSPC) and check that nothing
// acknowledged is lost. (LMDB's own reads and writes of data.mdb are not
// here: tests/lmdb_fault_test interposes those.)
//
// Permissions: everything an Env creates is owner-only whatever the umask:
// files 0600, folders 0700 (a folder is chmod-ed after mkdir, so a umask
// cannot take the owner's bits away). Existing files keep their mode.
//
// Thread safety: PosixEnv is stateless and safe from any thread; a
// WritableFile or SequentialFile is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "store/status.h"

namespace mbx {

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual Status Append(std::string_view data) = 0;
  // Appends the pieces in order: one gathered write where the file can
  // (pwritev), else one Append each. A failure may leave a prefix written.
  virtual Status AppendV(std::span<const std::string_view> pieces) {
    for (std::string_view p : pieces) MBX_RETURN_IF_ERROR(Append(p));
    return Status::Ok();
  }
  virtual Status Sync() = 0;                    // fdatasync
  // A hint: the file's clean (synced) pages leave the page cache, for a file
  // written once and not read back soon (posix_fadvise DONTNEED). Dirty
  // pages stay. Nothing else changes; an Env that does not cache ignores it.
  virtual void DropCachedPages() {}
  // A hint: the kernel starts writing the file's dirty pages to disk now,
  // without waiting for it (sync_file_range WRITE), so that a later Sync
  // finds them written. Guarantees nothing: only Sync makes them durable.
  virtual void StartWriteback() {}
  virtual Status Truncate(uint64_t size) = 0;   // also moves the append point
  virtual uint64_t Size() const = 0;
};

// Reads a file from its start; one Read() call is one read(2).
class SequentialFile {
 public:
  virtual ~SequentialFile() = default;
  // Up to `n` bytes into *out (replacing its content); an empty *out at the
  // end of the file.
  virtual Status Read(size_t n, std::string* out) = 0;
};

// Held while it lives (flock, exclusive); released by the destructor.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

inline constexpr unsigned kOwnerOnlyFileMode = 0600;
inline constexpr unsigned kOwnerOnlyDirMode = 0700;

class Env {
 public:
  virtual ~Env() = default;
  // Opens for appending, creating if missing; appends go to the end.
  virtual Result<std::unique_ptr<WritableFile>> OpenAppendable(const std::string& path) = 0;
  // Creates `path`, or truncates it if it exists; writes go from offset 0.
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) = 0;
  // NotFound if `path` does not exist.
  virtual Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& path) = 0;
  virtual Status ReadFile(const std::string& path, std::string* out) = 0;
  // Writes `data` to path.tmp, fsyncs it (when `sync`), renames over `path`:
  // a reader sees the old content or the new, never a mix.
  virtual Status WriteFileAtomic(const std::string& path, std::string_view data, bool sync = true) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  virtual Status SyncDir(const std::string& dir) = 0;
  // rename(2): atomic replacement of `to` when it exists.
  virtual Status RenameFile(const std::string& from, const std::string& to) = 0;
  // Creates the folder (0700) if missing; OK if it is already a folder.
  virtual Status CreateDir(const std::string& dir) = 0;
  // Size in bytes of a file; NotFound if it does not exist.
  virtual Result<uint64_t> GetFileSize(const std::string& path) = 0;
  // Entry names of `dir` but "." and "..", sorted (see ListDir).
  virtual Status GetChildren(const std::string& dir, std::vector<std::string>* names) = 0;
  // Creates `path` if missing (0600) and takes an exclusive flock on it
  // without waiting: Busy if another open file description holds it (another
  // process, or another open of the same file in this one).
  virtual Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) = 0;

  // The process-wide default (POSIX).
  static Env* Default();
};

// Names (not paths) of the entries of `dir` but "." and "..", sorted; an
// error if it cannot be read.
Status ListDir(const std::string& dir, std::vector<std::string>* names);

// Copies file `from` to `to` through `env` (to is created or truncated) in
// chunks of 1 MiB, then fsyncs it. When `xxh3` is not null it receives the
// XXH3-64 of the bytes copied; `bytes` (if not null) their number.
Status CopyFile(Env* env, const std::string& from, const std::string& to, uint64_t* xxh3 = nullptr,
                uint64_t* bytes = nullptr);
// XXH3-64 and size of a whole file, read through `env`.
Status HashFile(Env* env, const std::string& path, uint64_t* xxh3, uint64_t* bytes);

// mkdir -p with owner-only folders: every missing component of `dir` is
// created 0700 (existing ones are left as they are).
Status CreateDirs(Env* env, const std::string& dir);

}  // namespace mbx
