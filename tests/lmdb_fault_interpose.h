// Disk faults under LMDB's own I/O, by symbol interposition.
//
// The Env seam (store/file_io.h) covers the transaction log; LMDB writes its
// data.mdb itself, inside liblmdb.so. Debian's liblmdb 0.9.24 imports, for
// that file: pwrite (pages and meta pages), lseek + writev (runs of pages),
// write (environment copies), fdatasync (commits, mdb_env_sync), fsync
// (copies), msync (MDB_WRITEMAP only) and pread (meta pages at open); see
// `objdump -T /usr/lib/x86_64-linux-gnu/liblmdb.so.0`. Everything else it
// reads through its memory map, which no wrapper can fail (a failed mapped
// read is SIGBUS; bad_input_test covers short and damaged files instead).
//
// lmdb_fault_interpose.cc defines those functions (and pwrite64, pwritev,
// pread64) with C linkage in the test executable that links it. The
// executable heads the dynamic linker's global lookup scope, so liblmdb's
// calls land there first; each wrapper counts the call when it is on a file
// named data.mdb under the armed folder, fails it when the plan says so
// (returns -1 with errno set; nothing is written or read), and otherwise
// forwards to the next definition (dlsym(RTLD_NEXT): glibc's, or under ASan
// the sanitizer's interceptor, which then calls glibc's). Link the file into
// one test executable only: it replaces these calls for the whole process.
//
// Thread safety: Arm/Disarm/Tally from the test's thread; the wrappers may be
// called from any thread, and counted calls are numbered in one total order.
#pragma once

#include <cerrno>
#include <cstdint>
#include <string>

namespace mbx::testing::lmdb_fault {

struct Plan {
  uint64_t fail_at = 0;  // 1-based number of the counted call to fail; 0 = only count
  int error = EIO;       // errno of the failed calls (EIO, ENOSPC)
  bool sticky = false;   // fail every counted call after it too (a disk that stays broken)
};

struct Tally {
  uint64_t writes = 0;  // pwrite, pwrite64, pwritev, writev, write
  uint64_t syncs = 0;   // fdatasync, fsync, msync
  uint64_t reads = 0;   // pread, pread64
  uint64_t failed = 0;  // counted calls that were made to fail
  std::string first_failed;  // "fdatasync (call 37) on /tmp/.../stores/MS2/data.mdb"
  uint64_t total() const { return writes + syncs + reads; }
};

// Starts counting (and, per `plan`, failing) calls on files named data.mdb
// whose path starts with `folder` (made canonical first). Resets the tally.
void Arm(const std::string& folder, const Plan& plan);
// Stops counting and failing; returns what was counted since Arm.
Tally Disarm();

// Arms for its lifetime.
class Armed {
 public:
  Armed(const std::string& folder, const Plan& plan) { Arm(folder, plan); }
  ~Armed() {
    if (armed_) Disarm();
  }
  Armed(const Armed&) = delete;
  Armed& operator=(const Armed&) = delete;
  Tally Stop() {
    armed_ = false;
    return Disarm();
  }

 private:
  bool armed_ = true;
};

}  // namespace mbx::testing::lmdb_fault
