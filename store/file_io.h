// The I/O seam under the transaction log and the store's own files: every
// write, fsync, read, rename and remove that the log and backup code makes
// goes through an Env, so a test can make the Nth call fail (EIO, ENOSPC)
// and check that nothing acknowledged is lost.
//
// Thread safety: PosixEnv is stateless and safe from any thread; a
// WritableFile is used by one thread at a time (the store's writer).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/status.h"

namespace mbx {

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual Status Append(std::string_view data) = 0;
  virtual Status Sync() = 0;                    // fdatasync
  virtual Status Truncate(uint64_t size) = 0;   // also moves the append point
  virtual uint64_t Size() const = 0;
};

class Env {
 public:
  virtual ~Env() = default;
  // Opens for appending, creating if missing; appends go to the end.
  virtual Result<std::unique_ptr<WritableFile>> OpenAppendable(const std::string& path) = 0;
  virtual Status ReadFile(const std::string& path, std::string* out) = 0;
  // Writes `data` to path.tmp, fsyncs it (when `sync`), renames over `path`:
  // a reader sees the old content or the new, never a mix.
  virtual Status WriteFileAtomic(const std::string& path, std::string_view data, bool sync = true) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  virtual Status SyncDir(const std::string& dir) = 0;

  // The process-wide default (POSIX).
  static Env* Default();
};

// Names (not paths) of the entries of `dir` but "." and "..", sorted; an
// error if it cannot be read.
Status ListDir(const std::string& dir, std::vector<std::string>* names);

}  // namespace mbx
