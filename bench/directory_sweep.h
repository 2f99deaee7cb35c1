// The directory benchmark (`mbxmove bench --directory ldap`): what keeping
// the directory in OpenLDAP costs a move.
//
// The dataset is generated once (embedded directory) and its directory
// exported to LDIF. A private slapd (net/slapd.h) is started in the output's
// scratch folder. Then for every concurrency level and repeat, the same
// move of every mailbox into a fresh target store runs twice, each in its
// own `mbxmove move` child: once in a copy of the organisation as generated
// (LMDB directory), once in an organisation whose directory is in the slapd
// under a fresh base DN (`org create --directory`, the store folders copied,
// `directory import` of the LDIF). Each row gives both throughputs, their
// ratio, and the directory's figures from the move report (operations per
// moved mailbox, homeMDB switch p50/p95). The slapd is always stopped, also
// when a run fails.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/status.h"

namespace mbx::bench {

struct DirectorySweepOptions {
  std::string preset = "small";
  std::vector<int> levels = {1, 2, 4, 8, 16};
  int repeat = 3;
  std::string sync = "batch";
  uint64_t seed = 1;
  std::string out_dir = "out/bench-ldap";
  bool quiet = false;
  std::string self_exe;
};

// Runs the comparison; writes results.json and results.csv into out_dir and
// returns the results document.
Result<nlohmann::json> RunDirectorySweep(const DirectorySweepOptions& options);

// The terminal table: per level MiB/s with each directory, the ratio, and
// both directories' operations per mailbox and switch p50/p95.
std::string FormatDirectoryTable(const nlohmann::json& results);

}  // namespace mbx::bench
