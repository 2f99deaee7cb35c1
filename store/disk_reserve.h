// DiskReserve: disk space a store holds back for the writes that undo work,
// as ESE keeps res1.log/res2.log.
//
// When the file system fills up during a move, rolling the move back still
// has to write: the log records and the database pages (copy-on-write) of
// deleting the partial target and unlocking the source, the move record in
// the directory, and the checkpoint at shutdown. A store therefore keeps a
// file of `bytes` whose blocks are really allocated (fallocate, or zeros
// where the file system cannot), and gives those blocks back to the file
// system (removes the file) when one of its writes fails for lack of space;
// from then on it takes only space-freeing writes (see Store) until the
// reserve can be held again.
//
// The released space is the file system's, not the store's: another process
// writing to the same file system can take it first. What this guards
// against is the move itself having filled the disk.
//
// Thread safety: none; the store calls it under its log mutex.
#pragma once

#include <cstdint>
#include <string>

#include "store/status.h"

namespace mbx {

class DiskReserve {
 public:
  // `path`: the reserve file (its folder must exist); `bytes`: its size.
  DiskReserve(std::string path, uint64_t bytes) : path_(std::move(path)), bytes_(bytes) {}

  // Holds the reserve: keeps the file when its blocks are all allocated,
  // else creates it (0600) and allocates them -- but only when the file
  // system has room for the reserve and as much again beside it, so that a
  // disk that just ran out is not refilled by its own reserve. NoSpace when
  // there is not that much room (no partial file is left behind); IOError
  // for anything else.
  Status Acquire();
  // Gives the space back: removes the file. OK if it was not there.
  Status Release();

  bool held() const { return held_; }
  uint64_t bytes() const { return bytes_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  uint64_t bytes_;
  bool held_ = false;
};

}  // namespace mbx
