#include "engine/fault_injector.h"

#include <xxhash.h>

#include <cstring>

namespace mbx::engine {

std::string_view FaultKindName(FaultOptions::Kind k) {
  return k == FaultOptions::Kind::kTransient ? "transient" : "persistent";
}

Result<FaultOptions::Kind> ParseFaultKind(std::string_view s) {
  if (s == "transient") return FaultOptions::Kind::kTransient;
  if (s == "persistent") return FaultOptions::Kind::kPersistent;
  return Status::InvalidArgument("unknown fault kind '" + std::string(s) + "' (expected transient or persistent)");
}

bool FaultInjector::IsFaulted(const Guid& mailbox, uint64_t item_id) const {
  if (o_.rate <= 0) return false;
  if (o_.rate >= 1) return true;
  unsigned char buf[24];
  std::memcpy(buf, mailbox.bytes.data(), 16);
  std::memcpy(buf + 16, &item_id, 8);
  const uint64_t h = XXH3_64bits_withSeed(buf, sizeof buf, o_.seed);
  return double(h >> 11) * 0x1.0p-53 < o_.rate;
}

bool FaultInjector::FailsRead(const Guid& mailbox, uint64_t item_id, int attempt) const {
  if (!IsFaulted(mailbox, item_id)) return false;
  return o_.kind == FaultOptions::Kind::kPersistent || attempt == 0;
}

}  // namespace mbx::engine
