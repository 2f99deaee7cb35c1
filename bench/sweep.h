// The concurrency sweep: the product's main job.
//
// For each dataset: generate it once (or take --org), time the baselines,
// then for each concurrency level and repeat run a whole move of every
// mailbox into a fresh target store, each run in its own `mbxmove move`
// child process so that its CPU time and peak RSS are its own (wait4). Report
// medians with min/max, every row as a ratio to the raw logical copy.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/status.h"

namespace mbx::bench {

struct SweepOptions {
  std::vector<std::string> presets = {"small"};
  std::string org;                   // use this organisation (read, never changed) instead of generating
  std::string source_store;          // with org: the store to move from (default: the one holding most mailboxes)
  std::vector<int> levels = {1, 2, 4, 8, 16};
  int repeat = 3;
  std::string sync = "batch";
  std::string log_mode = "backup-flush";
  int recompress = -1;               // -1: no recompression
  uint64_t seed = 1;
  std::string out_dir = "out/bench";
  bool quiet = false;                // no progress on stderr
  std::string self_exe;              // path of mbxmove, for the child runs
  // --online: each run is followed by the same move online (`move --online`)
  // with `load` operations/s of client load on the moving mailboxes; each
  // level then reports the online throughput, its ratio to the offline one
  // of the same repeats, and the lock windows (p50/p95/max over every
  // mailbox of every repeat).
  bool online = false;
  double load = 200;
  std::string load_mix = "deliver:60,flag:25,move:10,delete:5";
};

// Output folders the benchmark may clear and reuse: a folder that does not
// exist, an empty one, or one holding only what an earlier `mbxmove bench`
// wrote there (an mbxmove organisation, or its scratch and result files).
// Anything else is refused, so that a mistyped --out never deletes user data.
Status CheckReusable(const std::string& dir);

// The CPU's model name from /proc/cpuinfo ("unknown" if it has none), for
// the benchmarks' machine records.
std::string CpuModel();

// Runs the sweep, writes results.json, results.csv and throughput.png (when
// gnuplot is installed) into out_dir, and returns the results document.
Result<nlohmann::json> RunSweep(const SweepOptions& options);

// The terminal table of a results document.
std::string FormatTable(const nlohmann::json& results);

}  // namespace mbx::bench
