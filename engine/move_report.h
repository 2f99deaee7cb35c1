// The report of a move request: per mailbox and for the batch (JSON).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "store/records.h"

namespace mbx::engine {

struct DroppedItem {
  std::string folder_path;
  uint32_t folder_id = 0;
  uint64_t item_id = 0;
  std::string subject;  // when the record is readable enough to tell
  std::string reason;
};

enum class Outcome { kCompleted, kCompletedWithDroppedItems, kFailed };
std::string_view OutcomeName(Outcome o);

struct MailboxReport {
  Guid mailbox;
  std::string user;
  std::string display_name;
  std::string source;
  std::string target;
  Outcome outcome = Outcome::kFailed;
  std::string reason;                     // why it failed, or "" when completed
  std::map<std::string, double> phase_seconds;  // lock, hierarchy, copy, verify, switch, cleanup
  double seconds = 0;
  uint64_t folders = 0;
  uint64_t items_copied = 0;
  uint64_t bytes_copied = 0;    // stored bytes written to the target
  uint64_t logical_bytes = 0;   // logical bytes of the copied items
  uint64_t source_bytes = 0;    // stored bytes read from the source
  uint64_t retries = 0;         // read attempts after a failed one
  std::vector<DroppedItem> dropped;
};

// Where the time of a whole run went (sums over all mailboxes and threads).
struct TimeBreakdown {
  double read_s = 0;        // cursor walks over the source
  double verify_s = 0;      // verify/decode of every record
  double recompress_s = 0;  // recoding for another compression level
  double write_wait_s = 0;  // movers waiting for the target's writer
  double target_verify_s = 0;
  double directory_s = 0;   // move-record and switch transactions
};

struct MoveReport {
  std::vector<MailboxReport> mailboxes;
  double wall_seconds = 0;
  int concurrency = 0;
  TimeBreakdown time;

  uint64_t Completed() const;
  uint64_t Failed() const;
  uint64_t ItemsCopied() const;
  uint64_t ItemsDropped() const;
  uint64_t BytesCopied() const;
  uint64_t LogicalBytes() const;
  nlohmann::json ToJson() const;
};

}  // namespace mbx::engine
