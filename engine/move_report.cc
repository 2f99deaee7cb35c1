#include "engine/move_report.h"

#include <algorithm>
#include <cmath>

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
                     {"switch_seconds", m.switch_seconds},
                     {"items_dropped", m.dropped.size()}, {"dropped", dropped}});
    if (m.online) {
      boxes.back()["online"] = {{"passes", m.passes}, {"items_per_pass", m.pass_items}, {"change_pages", m.change_pages}, {"lock_ms", m.lock_ms}};
    }
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
                 {"items_per_s", wall_seconds > 0 ? double(ItemsCopied()) / wall_seconds : 0.0},
                 {"memory_copies_per_byte", MemoryCopiesPerByte()}};
  json tj = {{"read_s", this->time.read_s}, {"verify_s", this->time.verify_s},
               {"recompress_s", this->time.recompress_s}, {"write_wait_s", this->time.write_wait_s},
               {"target_verify_s", this->time.target_verify_s}, {"directory_s", this->time.directory_s}};
  json out = {{"mailboxes", boxes}, {"totals", totals}, {"time", tj}, {"directory", directory.ToJson()}};
  // Online moves: the lock windows of the mailboxes that moved.
  std::vector<double> locks;
  bool online = false;
  for (const auto& m : mailboxes) {
    online = online || m.online;
    if (m.online && m.outcome != Outcome::kFailed) locks.push_back(m.lock_ms);
  }
  if (online) {
    out["totals"]["lock_ms"] = {
        {"p50", Percentile(locks, 0.5)}, {"p95", Percentile(locks, 0.95)}, {"max", Percentile(locks, 1.0)}};
  }
  if (target) out["target"] = target->ToJson();
  if (source) out["source"] = source->ToJson();
  return out;
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t rank = size_t(std::ceil(p * double(values.size())));
  rank = std::clamp<size_t>(rank, 1, values.size());
  return values[rank - 1];
}

DirectoryFigures DirectoryFigures::From(const std::string& where, const std::vector<MailboxReport>& mailboxes,
                                        uint64_t operations_before, uint64_t operations_after) {
  DirectoryFigures d;
  d.where = where;
  d.backend = where.rfind("ldap", 0) == 0 ? "ldap" : "lmdb";
  d.operations = operations_after >= operations_before ? operations_after - operations_before : 0;
  std::vector<double> ms;
  for (const auto& m : mailboxes) {
    if (m.outcome != Outcome::kFailed) ++d.mailboxes_moved;
    if (m.switch_seconds > 0) ms.push_back(m.switch_seconds * 1e3);
  }
  d.operations_per_mailbox = d.mailboxes_moved ? double(d.operations) / double(d.mailboxes_moved) : 0.0;
  d.switches = ms.size();
  d.switch_p50_ms = Percentile(ms, 0.50);
  d.switch_p95_ms = Percentile(ms, 0.95);
  d.switch_max_ms = Percentile(ms, 1.0);
  return d;
}

nlohmann::json DirectoryFigures::ToJson() const {
  return {{"backend", backend},
          {"where", where},
          {"operations", operations},
          {"mailboxes_moved", mailboxes_moved},
          {"operations_per_mailbox", operations_per_mailbox},
          {"switches", switches},
          {"switch_p50_ms", switch_p50_ms},
          {"switch_p95_ms", switch_p95_ms},
          {"switch_max_ms", switch_max_ms}};
}

Result<DirectoryFigures> DirectoryFigures::FromJson(const nlohmann::json& j) {
  DirectoryFigures d;
  try {
    d.backend = j.at("backend").get<std::string>();
    d.where = j.at("where").get<std::string>();
    d.operations = j.at("operations").get<uint64_t>();
    d.mailboxes_moved = j.at("mailboxes_moved").get<uint64_t>();
    d.operations_per_mailbox = j.at("operations_per_mailbox").get<double>();
    d.switches = j.at("switches").get<uint64_t>();
    d.switch_p50_ms = j.at("switch_p50_ms").get<double>();
    d.switch_p95_ms = j.at("switch_p95_ms").get<double>();
    d.switch_max_ms = j.at("switch_max_ms").get<double>();
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(std::string("a move report without the directory's figures: ") + e.what());
  }
  return d;
}

TargetFigures TargetFigures::Between(const std::string& store, const StoreFigures& a, const StoreFigures& b,
                                     uint64_t moved_bytes) {
  constexpr double kNs = 1e-9;
  TargetFigures t;
  t.store = store;
  t.sync = b.sync;
  t.log_mode = b.log_mode;
  t.log_bytes = b.log_end_lsn - a.log_end_lsn;
  t.log_bytes_per_moved_byte = moved_bytes ? double(t.log_bytes) / double(moved_bytes) : 0.0;
  t.log_files_on_disk = b.log_files;
  t.log_syncs = b.log_syncs - a.log_syncs;
  t.log_sync_s = double(b.log_sync_ns - a.log_sync_ns) * kNs;
  t.groups = b.groups - a.groups;
  t.batches = b.batches - a.batches;
  t.batches_per_group = t.groups ? double(t.batches) / double(t.groups) : 0.0;
  t.commit_s = double(b.commit_ns - a.commit_ns) * kNs;
  t.queue_wait_s = double(b.queue_wait_ns - a.queue_wait_ns) * kNs;
  t.log_append_s = double(b.log_append_ns - a.log_append_ns) * kNs;
  t.map_resizes = b.map_resizes - a.map_resizes;
  t.data_syncs = b.data_syncs - a.data_syncs;
  t.copied_bytes = b.copied_bytes - a.copied_bytes;
  t.dead_bytes_dropped = b.dead_bytes_dropped - a.dead_bytes_dropped;
  return t;
}

double MoveReport::MemoryCopiesPerByte() const {
  const uint64_t moved = BytesCopied();
  if (!target || moved == 0) return 0.0;
  const uint64_t copied = mover_copied_bytes + target->copied_bytes + (source ? source->copied_bytes : 0);
  return double(copied) / double(moved);
}

nlohmann::json TargetFigures::ToJson() const {
  return {{"store", store},
          {"sync", sync},
          {"log_mode", log_mode},
          {"log_bytes", log_bytes},
          {"log_bytes_per_moved_byte", log_bytes_per_moved_byte},
          {"log_files_on_disk", log_files_on_disk},
          {"log_syncs", log_syncs},
          {"log_sync_s", log_sync_s},
          {"groups", groups},
          {"batches", batches},
          {"batches_per_group", batches_per_group},
          {"commit_s", commit_s},
          {"queue_wait_s", queue_wait_s},
          {"log_append_s", log_append_s},
          {"map_resizes", map_resizes},
          {"data_syncs", data_syncs},
          {"copied_bytes", copied_bytes},
          {"dead_bytes_dropped", dead_bytes_dropped}};
}

Result<TargetFigures> TargetFigures::FromJson(const nlohmann::json& j) {
  TargetFigures t;
  try {
    t.store = j.at("store").get<std::string>();
    t.sync = j.at("sync").get<std::string>();
    t.log_mode = j.at("log_mode").get<std::string>();
    t.log_bytes = j.at("log_bytes").get<uint64_t>();
    t.log_bytes_per_moved_byte = j.at("log_bytes_per_moved_byte").get<double>();
    t.log_files_on_disk = j.at("log_files_on_disk").get<uint64_t>();
    t.log_syncs = j.at("log_syncs").get<uint64_t>();
    t.log_sync_s = j.at("log_sync_s").get<double>();
    t.groups = j.at("groups").get<uint64_t>();
    t.batches = j.at("batches").get<uint64_t>();
    t.batches_per_group = j.at("batches_per_group").get<double>();
    t.commit_s = j.at("commit_s").get<double>();
    t.queue_wait_s = j.at("queue_wait_s").get<double>();
    t.log_append_s = j.at("log_append_s").get<double>();
    t.map_resizes = j.at("map_resizes").get<uint64_t>();
    t.data_syncs = j.at("data_syncs").get<uint64_t>();
    t.copied_bytes = j.at("copied_bytes").get<uint64_t>();
    t.dead_bytes_dropped = j.at("dead_bytes_dropped").get<uint64_t>();
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(std::string("a move report without the target's figures: ") + e.what());
  }
  return t;
}

}  // namespace mbx::engine
