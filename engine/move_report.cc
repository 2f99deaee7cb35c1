#include "engine/move_report.h"

namespace mbx::engine {

std::string_view OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kCompleted: return "completed";
    case Outcome::kCompletedWithDroppedItems: return "completed-with-dropped-items";
    case Outcome::kFailed: return "failed";
  }
  return "unknown";
}

uint64_t MoveReport::Completed() const {
  uint64_t n = 0;
  for (const auto& m : mailboxes) n += m.outcome != Outcome::kFailed;
  return n;
}
uint64_t MoveReport::Failed() const { return mailboxes.size() - Completed(); }
uint64_t MoveReport::ItemsCopied() const {
  uint64_t n = 0;
  for (const auto& m : mailboxes) n += m.outcome != Outcome::kFailed ? m.items_copied : 0;
  return n;
}
uint64_t MoveReport::ItemsDropped() const {
  uint64_t n = 0;
  for (const auto& m : mailboxes) n += m.outcome != Outcome::kFailed ? m.dropped.size() : 0;
  return n;
}
uint64_t MoveReport::BytesCopied() const {
  uint64_t n = 0;
  for (const auto& m : mailboxes) n += m.outcome != Outcome::kFailed ? m.bytes_copied : 0;
  return n;
}
uint64_t MoveReport::LogicalBytes() const {
  uint64_t n = 0;
  for (const auto& m : mailboxes) n += m.outcome != Outcome::kFailed ? m.logical_bytes : 0;
  return n;
}

nlohmann::json MoveReport::ToJson() const {
  using json = nlohmann::json;
  json boxes = json::array();
  for (const auto& m : mailboxes) {
    json dropped = json::array();
    for (const auto& d : m.dropped) {
      dropped.push_back({{"folder", d.folder_path}, {"folder_id", d.folder_id}, {"item_id", d.item_id},
                         {"subject", d.subject}, {"reason", d.reason}});
    }
    boxes.push_back({{"mailbox", m.mailbox.ToString()}, {"user", m.user}, {"display_name", m.display_name},
                     {"source", m.source}, {"target", m.target}, {"outcome", OutcomeName(m.outcome)},
                     {"reason", m.reason}, {"phase_seconds", m.phase_seconds}, {"seconds", m.seconds},
                     {"folders", m.folders}, {"items_copied", m.items_copied}, {"bytes_copied", m.bytes_copied},
                     {"logical_bytes", m.logical_bytes}, {"retries", m.retries},
                     {"items_dropped", m.dropped.size()}, {"dropped", dropped}});
  }
  const double mib = double(BytesCopied()) / 1048576.0;
  json totals = {{"mailboxes", mailboxes.size()},
                 {"mailboxes_completed", Completed()},
                 {"mailboxes_failed", Failed()},
                 {"items_copied", ItemsCopied()},
                 {"items_dropped", ItemsDropped()},
                 {"bytes_copied", BytesCopied()},
                 {"logical_bytes", LogicalBytes()},
                 {"seconds", wall_seconds},
                 {"concurrency", concurrency},
                 {"mib_per_s", wall_seconds > 0 ? mib / wall_seconds : 0.0},
                 {"items_per_s", wall_seconds > 0 ? double(ItemsCopied()) / wall_seconds : 0.0}};
  json tj = {{"read_s", this->time.read_s}, {"verify_s", this->time.verify_s},
               {"recompress_s", this->time.recompress_s}, {"write_wait_s", this->time.write_wait_s},
               {"target_verify_s", this->time.target_verify_s}, {"directory_s", this->time.directory_s}};
  return {{"mailboxes", boxes}, {"totals", totals}, {"time", tj}};
}

}  // namespace mbx::engine
