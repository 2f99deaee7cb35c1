// Retry-then-drop for item reads: a failed read is retried `retries` times;
// if every attempt fails the item is dropped and recorded. When more than
// `bad_item_limit` items of one mailbox are dropped, its move is abandoned.
// Defaults follow the Move Mailbox wizard: one retry, and a mailbox with any
// unreadable item is not moved.
#pragma once

#include <cstdint>

namespace mbx::engine {

struct RetryPolicy {
  int retries = 1;              // extra attempts after the first
  int64_t bad_item_limit = 0;   // dropped items a mailbox may lose and still move
  int attempts() const { return retries + 1; }
  bool Exceeded(int64_t dropped) const { return dropped > bad_item_limit; }
};

}  // namespace mbx::engine
