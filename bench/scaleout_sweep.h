// The scale-out benchmark (`mbxmove bench --scale-out`): what more movers
// on one shared queue (engine/queue_mover.h) buy.
//
// One private slapd (net/slapd.h) runs for the whole benchmark in the
// output's scratch folder, stopped at the end, also when a run fails. The
// dataset is generated once into a pristine organisation with the embedded
// directory (or read from --org: its directory exported, its stores copied;
// the given organisation is never changed), and its directory exported to
// LDIF. Each run gets a fresh organisation whose directory is a fresh base
// in the slapd: `org create --directory`, the pristine store folders
// copied, `directory import` of the LDIF (about 1.4 s for the small preset
// against 4.4 s for generating it again with --directory; not counted).
//
// In each run, SERVER1 holds the source store, and SERVER2..SERVERn hold one
// empty target store each (TARGET2, TARGET3, ...). The mailboxes, largest
// first, are given round-robin to the targets and queued with `move --queue
// --mailbox ... --label scale-out`, in rounds of a few mailboxes per target,
// so that the queue's order (oldest request first) interleaves the targets.
// Every server is an `mbxmove serve` child behind a link proxy with half the
// RTT each way; the proxies' addresses are recorded with `server add`. Then
// M `mbxmove mover --drain --json` children (limits off: every --max-per-*
// 0) drain the queue; the wall time runs from the first mover's start to the
// last one's exit. A run counts only if every mover exits 0 and `queue
// status` shows every request done.
//
// One more run at the largest mover count kills a mover (SIGKILL) once a
// third of the requests are done, while it holds some; the others must take
// its requests over when its lease lapses and finish the batch. The servers
// are then stopped, their addresses cleared, and the organisation surveyed:
// the move invariant (engine/org_check.h) against the survey taken before
// the run must hold.
//
// Last, the directory's capacity for this queue's own load: T threads, each
// with its own connection to the slapd, renew their own lease entries
// (GetLease, then UpdateLease: the compare-and-swap a mover's renewal is)
// for a bounded time; writes/s per level.
//
// Servers, links, movers and the slapd are always stopped, also when a run
// fails; every wait is bounded in time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/status.h"

namespace mbx::bench {

struct ScaleOutOptions {
  std::string preset = "small";
  std::string org;           // use this organisation's data instead (read, never changed)
  std::string source_store;  // with org: the store to move from (default: the one most users are homed in)
  std::vector<int> movers = {1, 2, 4};
  int servers = 3;           // one source server + servers-1 target servers
  int rtt_ms = 20;           // round trip through each link
  uint64_t rate_bytes_per_s = 0;  // per link direction; 0 = unlimited
  int concurrency = 4;       // moves per mover
  int repeat = 1;
  double lease_s = 5;
  bool kill_run = true;
  std::vector<int> capacity_threads = {1, 4, 16};
  double capacity_seconds = 3;     // per level
  uint64_t capacity_max_renewals = 200000;  // per level, all threads together
  std::string sync = "batch";      // the target stores' sync mode
  uint64_t seed = 1;
  std::string out_dir = "out/bench-scaleout";
  bool quiet = false;
  std::string self_exe;
};

// Checks the options (InvalidArgument naming the flag).
Status ValidateScaleOutOptions(const ScaleOutOptions& options);

// Runs the benchmark; writes results.json, results.csv and throughput.png
// (when gnuplot is installed) into out_dir and returns the results document.
Result<nlohmann::json> RunScaleOut(const ScaleOutOptions& options);

// The terminal table (movers, MiB/s, mailboxes/s, x one mover, directory
// operations and writes per mailbox, claim conflicts), then the kill run's
// line and the directory capacity's lines.
std::string FormatScaleOutTable(const nlohmann::json& results);

}  // namespace mbx::bench
