// Running a child process under the power-loss simulation
// (powerloss_preload.h): the environment that arms it, and what it counted.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace mbx::testing::powerloss {

struct Plan {
  std::string folder;        // the armed folder (an organisation)
  std::string at;            // "sync:N", "write:N", "event:N"; "" = count only
  std::string mode = "all";  // all, none, random, torn
  uint64_t seed = 1;
  bool after = false;        // lose power just after the N-th call instead of before it
  std::string count_file;    // where the child writes its counts
  bool fail_sync = false;    // the sync at `at` fails (EIO) and drops its file's unsynced writes; no power loss
};

// What the child counted (see MBX_POWERLOSS_COUNT_FILE).
struct Counts {
  uint64_t syncs = 0;
  uint64_t writes = 0;
  bool lost = false;  // the power went
  uint64_t unsynced_bytes = 0;
  uint64_t lost_bytes = 0;
  uint64_t failed_syncs = 0;
  bool read = false;  // the file was there and parsed
};

// The `VAR=value ...` prefix of a shell command line that runs the command
// under the simulation. `library` is the preload library's path. Under
// AddressSanitizer the sanitizer must be told not to insist on coming first
// in the library list (the preload library is not instrumented).
inline std::string EnvPrefix(const std::string& library, const Plan& p) {
  std::string asan = "verify_asan_link_order=0";
  if (const char* e = std::getenv("ASAN_OPTIONS"); e && *e) asan = std::string(e) + ":" + asan;
  std::string s = "ASAN_OPTIONS='" + asan + "' LD_PRELOAD=" + library + " MBX_POWERLOSS_DIR=" + p.folder +
                  " MBX_POWERLOSS_MODE=" + p.mode + " MBX_POWERLOSS_SEED=" + std::to_string(p.seed);
  if (!p.at.empty()) s += " MBX_POWERLOSS_AT=" + p.at;
  if (p.after) s += " MBX_POWERLOSS_WHEN=after";
  if (p.fail_sync) s += " MBX_POWERLOSS_FAIL_SYNC=1";
  if (!p.count_file.empty()) s += " MBX_POWERLOSS_COUNT_FILE=" + p.count_file;
  return s + " ";
}

inline Counts ReadCounts(const std::string& path) {
  Counts c;
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return c;
  unsigned long long s = 0, w = 0, u = 0, b = 0, fs = 0;
  int lost = 0;
  if (std::fscanf(f, "syncs %llu writes %llu lost %d unsynced_bytes %llu lost_bytes %llu failed_syncs %llu", &s, &w,
                  &lost, &u, &b, &fs) == 6) {
    c = Counts{s, w, lost != 0, u, b, fs, true};
  }
  std::fclose(f);
  return c;
}

}  // namespace mbx::testing::powerloss
