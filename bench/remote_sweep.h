// The remote benchmark (`mbxmove bench --remote`): what concurrency is for.
//
// The dataset is generated once into a source store on SERVER1. Each run
// copies it, creates an empty target store on SERVER2, starts one
// `mbxmove serve` per server (child processes, 127.0.0.1, ports chosen by
// the OS), puts a link proxy (net/link_proxy.h) in front of each with half
// the round-trip time as its one-way delay (and the rate limit, if any),
// records the proxies' addresses in the directory, and moves every mailbox
// with `mbxmove move` in a child process. Every RTT x concurrency pair is
// run, and in the same run every concurrency level of the same move with
// both stores local, as the reference. Servers are always stopped, also
// when a run fails.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/status.h"

namespace mbx::bench {

struct RemoteSweepOptions {
  std::string preset = "small";
  std::vector<int> rtt_ms = {0, 1, 10, 50};  // round trip, through both links
  std::vector<int> levels = {1, 2, 4, 8, 16};
  int repeat = 1;
  uint64_t rate_bytes_per_s = 0;  // per link direction; 0 = unlimited
  std::string sync = "batch";
  uint64_t seed = 1;
  std::string out_dir = "out/bench-remote";
  bool quiet = false;
  std::string self_exe;
};

// Runs the sweep; writes results.json, results.csv and throughput.png
// (one curve per RTT) into out_dir and returns the results document.
Result<nlohmann::json> RunRemoteSweep(const RemoteSweepOptions& options);

// The terminal table: MiB/s, items/s and round trips per item for each RTT
// and concurrency, the ratio to the local move, the best level per RTT.
std::string FormatRemoteTable(const nlohmann::json& results);

}  // namespace mbx::bench
