// The fault-injection seam under item reads.
//
// An item is "faulted" when a hash of (seed, mailbox, item id) falls below
// the rate: a pure function, so a test knows exactly which items a run will
// fault. A transient fault fails only the first read attempt of the item (a
// retry succeeds); a persistent fault fails every attempt (the item is
// dropped). Thread safety: immutable after construction; call from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "store/records.h"
#include "store/status.h"

namespace mbx::engine {

struct FaultOptions {
  enum class Kind { kTransient, kPersistent };
  double rate = 0.0;  // fraction of items faulted, 0..1
  Kind kind = Kind::kTransient;
  uint64_t seed = 1;
};
std::string_view FaultKindName(FaultOptions::Kind k);
Result<FaultOptions::Kind> ParseFaultKind(std::string_view s);

class FaultInjector {
 public:
  explicit FaultInjector(const FaultOptions& o) : o_(o) {}
  bool enabled() const { return o_.rate > 0; }
  // Whether this item is one the run faults (on some attempt).
  bool IsFaulted(const Guid& mailbox, uint64_t item_id) const;
  // Whether read attempt `attempt` (0 = first) of this item fails.
  bool FailsRead(const Guid& mailbox, uint64_t item_id, int attempt) const;
  const FaultOptions& options() const { return o_; }

 private:
  FaultOptions o_;
};

}  // namespace mbx::engine
