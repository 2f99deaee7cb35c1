// The soak: moves mailboxes back and forth between two stores for a given
// time, with transient read faults, while deliveries keep arriving to the
// mailboxes that are not being moved; at the end every mailbox's content
// checksum must equal its checksum at the start (plus, for the ones that
// received mail, exactly the delivered items), and every mailbox must be
// active in exactly the store its homeMDB names.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "store/status.h"

namespace mbx::bench {

struct SoakOptions {
  double minutes = 10;
  std::string preset = "tiny";
  std::string out_dir = "out/soak";
  int concurrency = 4;
  double fault_rate = 0.05;  // transient: every faulted read succeeds on retry
  uint64_t seed = 1;
  bool quiet = false;
};

// Returns the figures (rounds, moves, bytes, deliveries, retries, checks);
// a broken check is reported in the result ("passed": false), not as an error.
Result<nlohmann::json> RunSoak(const SoakOptions& options);

}  // namespace mbx::bench
