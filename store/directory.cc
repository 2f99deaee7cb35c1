#include "store/directory.h"

#include <cmath>
#include <limits>
#include <type_traits>

#include <nlohmann/json.hpp>

namespace mbx {

using json = nlohmann::json;

std::string StoreDistinguishedName(const std::string& store, const std::string& server) {
  return "CN=" + store + ",CN=First Storage Group,CN=InformationStore,CN=" + server +
         ",CN=Servers,CN=First Administrative Group,CN=Administrative Groups,CN=mbxmove,"
         "CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=mbxmove,DC=local";
}

std::string_view MoveStepName(MoveStep s) {
  switch (s) {
    case MoveStep::kLocked: return "locked";
    case MoveStep::kHierarchy: return "hierarchy";
    case MoveStep::kCopying: return "copying";
    case MoveStep::kVerified: return "verified";
    case MoveStep::kSwitched: return "switched";
    case MoveStep::kImporting: return "importing";
    case MoveStep::kSyncing: return "syncing";
  }
  return "unknown";
}

std::optional<MoveStep> ParseMoveStep(std::string_view name) {
  for (MoveStep s : {MoveStep::kLocked, MoveStep::kHierarchy, MoveStep::kCopying, MoveStep::kVerified,
                     MoveStep::kSwitched, MoveStep::kImporting, MoveStep::kSyncing}) {
    if (MoveStepName(s) == name) return s;
  }
  return std::nullopt;
}

std::string_view QueueStateName(QueueState s) {
  switch (s) {
    case QueueState::kQueued: return "queued";
    case QueueState::kActive: return "active";
    case QueueState::kDone: return "done";
    case QueueState::kFailed: return "failed";
  }
  return "unknown";
}

std::optional<QueueState> ParseQueueState(std::string_view name) {
  for (QueueState s : {QueueState::kQueued, QueueState::kActive, QueueState::kDone, QueueState::kFailed}) {
    if (QueueStateName(s) == name) return s;
  }
  return std::nullopt;
}

std::string_view BatchStateName(BatchState s) {
  switch (s) {
    case BatchState::kCreated: return "created";
    case BatchState::kRunning: return "running";
    case BatchState::kCompleting: return "completing";
    case BatchState::kCompleted: return "completed";
    case BatchState::kStopping: return "stopping";
    case BatchState::kStopped: return "stopped";
  }
  return "unknown";
}

std::optional<BatchState> ParseBatchState(std::string_view name) {
  for (BatchState s : {BatchState::kCreated, BatchState::kRunning, BatchState::kCompleting, BatchState::kCompleted,
                       BatchState::kStopping, BatchState::kStopped}) {
    if (BatchStateName(s) == name) return s;
  }
  return std::nullopt;
}

std::string_view MemberStateName(MemberState s) {
  switch (s) {
    case MemberState::kQueued: return "queued";
    case MemberState::kSyncing: return "syncing";
    case MemberState::kSynced: return "synced";
    case MemberState::kCompleting: return "completing";
    case MemberState::kCompleted: return "completed";
    case MemberState::kFailed: return "failed";
    case MemberState::kStopped: return "stopped";
  }
  return "unknown";
}

std::optional<MemberState> ParseMemberState(std::string_view name) {
  for (MemberState s : {MemberState::kQueued, MemberState::kSyncing, MemberState::kSynced, MemberState::kCompleting,
                        MemberState::kCompleted, MemberState::kFailed, MemberState::kStopped}) {
    if (MemberStateName(s) == name) return s;
  }
  return std::nullopt;
}

namespace {

// True if `name` is 1-`max_bytes` of [A-Za-z0-9._-].
bool IsRecordName(const std::string& name, size_t max_bytes) {
  bool ok = !name.empty() && name.size() <= max_bytes;
  for (char c : name) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                c == '_' || c == '-');
  }
  return ok;
}

}  // namespace

Status ValidateLeaseName(const std::string& name) {
  return IsRecordName(name, 128)
             ? Status::Ok()
             : Status::InvalidArgument("lease name '" + name + "': 1-128 of letters, digits, '.', '_', '-'");
}

Status ValidateBatchName(const std::string& name) {
  return IsRecordName(name, 64)
             ? Status::Ok()
             : Status::InvalidArgument("batch name '" + name + "': 1-64 of letters, digits, '.', '_', '-'");
}

namespace {

json ToJson(const UserRecord& u) {
  return {{"name", u.name}, {"display_name", u.display_name}, {"smtp", u.smtp},
          {"mailbox", u.mailbox.ToString()}, {"homeMDB", u.home_mdb}, {"home_server", u.home_server}};
}
json ToJson(const StoreRecord& s) {
  return {{"name", s.name}, {"server", s.server}, {"dn", s.dn}, {"created", s.created}};
}
json ToJson(const MoveRecord& m) {
  return {{"mailbox", m.mailbox.ToString()}, {"user", m.user},       {"source", m.source},
          {"target", m.target},              {"step", MoveStepName(m.step)}, {"started", m.started},
          {"keep_source", m.keep_source}};
}
json ToJson(const ServerRecord& s) { return {{"name", s.name}, {"address", s.address}}; }
json ToJson(const QueueEntry& e) {
  return {{"mailbox", e.mailbox.ToString()}, {"user", e.user},     {"source", e.source},
          {"target", e.target},              {"state", QueueStateName(e.state)},
          {"owner", e.owner},                {"lease_until_ms", e.lease_until_ms},
          {"attempts", e.attempts},          {"batch", e.batch},   {"bad_item_limit", e.bad_item_limit},
          {"keep_source", e.keep_source},    {"queued", e.queued}, {"result", e.result},
          {"version", e.version}};
}
json ToJson(const Lease& l) {
  return {{"name", l.name}, {"owner", l.owner}, {"until_ms", l.until_ms}, {"holds", l.holds}, {"version", l.version}};
}
json ToJson(const BatchMember& m) {
  // A NaN or infinite lock window would be written as null, which no
  // reader accepts: it is recorded as 0 instead.
  const double lock_ms = std::isfinite(m.lock_ms) ? m.lock_ms : 0.0;
  return {{"mailbox", m.mailbox.ToString()},
          {"user", m.user},
          {"source", m.source},
          {"state", MemberStateName(m.state)},
          {"passes", m.passes},
          {"items_copied", m.items_copied},
          {"bytes_copied", m.bytes_copied},
          {"bytes_total", m.bytes_total},
          {"items_behind", m.items_behind},
          {"last_sync_ms", m.last_sync_ms},
          {"lock_ms", lock_ms},
          {"dropped", m.dropped},
          {"attempts", m.attempts},
          {"result", m.result}};
}
json ToJson(const BatchRecord& b) {
  json members = json::array();
  for (const BatchMember& m : b.members) members.push_back(ToJson(m));
  return {{"name", b.name},
          {"target", b.target},
          {"state", BatchStateName(b.state)},
          {"concurrency", b.concurrency},
          {"bad_item_limit", b.bad_item_limit},
          {"keep_source", b.keep_source},
          {"sync_interval_ms", b.sync_interval_ms},
          {"complete_at_ms", b.complete_at_ms},
          {"complete_delay_ms", b.complete_delay_ms},
          {"cancel_after_ms", b.cancel_after_ms},
          {"created", b.created},
          {"started_ms", b.started_ms},
          {"finished_ms", b.finished_ms},
          {"runner", b.runner},
          {"result", b.result},
          {"members", std::move(members)},
          {"version", b.version}};
}
// Batch records hold text from outside (a member's result quotes an
// error): bytes that are not UTF-8 are written as U+FFFD rather than make
// dump() throw.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// A number field that holds a value of T exactly: false for a string, a
// fraction, or a value out of T's range (which get<T>() would wrap), so a
// damaged number is Corruption.
template <typename T>
bool ReadNumber(const json& j, const char* key, T* out) {
  const json& v = j.at(key);
  if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number()) return false;
    *out = v.get<T>();
    return std::isfinite(*out);
  } else if constexpr (std::is_unsigned_v<T>) {
    if (!v.is_number_unsigned()) return false;  // a non-negative integer parses as unsigned
    const uint64_t u = v.get<uint64_t>();
    if (u > std::numeric_limits<T>::max()) return false;
    *out = static_cast<T>(u);
    return true;
  } else {
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<T>::max())) return false;
      *out = static_cast<T>(u);
      return true;
    }
    if (!v.is_number_integer()) return false;
    const int64_t i = v.get<int64_t>();
    if (i < std::numeric_limits<T>::min() || i > std::numeric_limits<T>::max()) return false;
    *out = static_cast<T>(i);
    return true;
  }
}

// Parses a directory record; any damage is Corruption naming the record
// (its JSON text, shortened), never an exception.
template <typename T, typename Fill>
Result<T> Parse(std::string_view text, std::string_view what, Fill fill) {
  auto damaged = [&](std::string_view why) {
    std::string shown(text.substr(0, 120));
    for (char& c : shown) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
    }
    return Status::Corruption("damaged directory " + std::string(what) + " record (" + std::string(why) +
                              "): " + shown + (text.size() > 120 ? "..." : ""));
  };
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return damaged("not a JSON object");
  T out;
  try {
    if (!fill(j, &out)) return damaged("a field holds a value this version cannot read");
  } catch (const json::exception& e) {
    return damaged(e.what());
  }
  return out;
}

Result<UserRecord> ParseUser(std::string_view t) {
  return Parse<UserRecord>(t, "user", [](const json& j, UserRecord* u) {
    u->name = j.at("name").get<std::string>();
    u->display_name = j.at("display_name").get<std::string>();
    u->smtp = j.at("smtp").get<std::string>();
    auto g = Guid::Parse(j.at("mailbox").get<std::string>());
    if (!g) return false;
    u->mailbox = *g;
    u->home_mdb = j.at("homeMDB").get<std::string>();
    u->home_server = j.at("home_server").get<std::string>();
    return true;
  });
}
Result<StoreRecord> ParseStore(std::string_view t) {
  return Parse<StoreRecord>(t, "store", [](const json& j, StoreRecord* s) {
    s->name = j.at("name").get<std::string>();
    s->server = j.at("server").get<std::string>();
    s->dn = j.at("dn").get<std::string>();
    s->created = j.value("created", "");
    return true;
  });
}
Result<MoveRecord> ParseMove(std::string_view t) {
  return Parse<MoveRecord>(t, "move", [](const json& j, MoveRecord* m) {
    auto g = Guid::Parse(j.at("mailbox").get<std::string>());
    if (!g) return false;
    m->mailbox = *g;
    m->user = j.at("user").get<std::string>();
    m->source = j.at("source").get<std::string>();
    m->target = j.at("target").get<std::string>();
    auto step = ParseMoveStep(j.at("step").get<std::string>());
    if (!step) return false;
    m->step = *step;
    m->started = j.value("started", "");
    m->keep_source = j.at("keep_source").get<bool>();
    return true;
  });
}
Result<ServerRecord> ParseServer(std::string_view t) {
  return Parse<ServerRecord>(t, "server", [](const json& j, ServerRecord* s) {
    s->name = j.at("name").get<std::string>();
    s->address = j.at("address").get<std::string>();
    return true;
  });
}

Result<QueueEntry> ParseQueueEntry(std::string_view t) {
  return Parse<QueueEntry>(t, "queue", [](const json& j, QueueEntry* e) {
    auto g = Guid::Parse(j.at("mailbox").get<std::string>());
    if (!g) return false;
    e->mailbox = *g;
    e->user = j.at("user").get<std::string>();
    e->source = j.at("source").get<std::string>();
    e->target = j.at("target").get<std::string>();
    auto st = ParseQueueState(j.at("state").get<std::string>());
    if (!st) return false;
    e->state = *st;
    e->owner = j.at("owner").get<std::string>();
    e->lease_until_ms = j.at("lease_until_ms").get<int64_t>();
    e->attempts = j.at("attempts").get<uint32_t>();
    e->batch = j.at("batch").get<std::string>();
    e->bad_item_limit = j.at("bad_item_limit").get<uint32_t>();
    e->keep_source = j.at("keep_source").get<bool>();
    e->queued = j.at("queued").get<std::string>();
    e->result = j.at("result").get<std::string>();
    e->version = j.at("version").get<uint64_t>();
    return e->version > 0;
  });
}
Result<Lease> ParseLease(std::string_view t) {
  return Parse<Lease>(t, "lease", [](const json& j, Lease* l) {
    l->name = j.at("name").get<std::string>();
    l->owner = j.at("owner").get<std::string>();
    l->until_ms = j.at("until_ms").get<int64_t>();
    l->holds = j.at("holds").get<std::string>();
    l->version = j.at("version").get<uint64_t>();
    return l->version > 0 && ValidateLeaseName(l->name).ok();
  });
}

// One member object; false when a field holds a value this version cannot
// read (json::exception for a missing field or a wrong type).
bool FillMember(const json& j, BatchMember* m) {
  if (!j.is_object()) return false;
  auto g = Guid::Parse(j.at("mailbox").get<std::string>());
  if (!g) return false;
  m->mailbox = *g;
  m->user = j.at("user").get<std::string>();
  m->source = j.at("source").get<std::string>();
  auto st = ParseMemberState(j.at("state").get<std::string>());
  if (!st) return false;
  m->state = *st;
  m->result = j.at("result").get<std::string>();
  // (A record written before bytes_total was kept has none: unknown.)
  if (j.contains("bytes_total") && !ReadNumber(j, "bytes_total", &m->bytes_total)) return false;
  return ReadNumber(j, "passes", &m->passes) && ReadNumber(j, "items_copied", &m->items_copied) &&
         ReadNumber(j, "bytes_copied", &m->bytes_copied) && ReadNumber(j, "items_behind", &m->items_behind) &&
         ReadNumber(j, "last_sync_ms", &m->last_sync_ms) && ReadNumber(j, "lock_ms", &m->lock_ms) &&
         ReadNumber(j, "dropped", &m->dropped) && ReadNumber(j, "attempts", &m->attempts);
}

Result<BatchRecord> ParseBatch(std::string_view t) {
  return Parse<BatchRecord>(t, "batch", [](const json& j, BatchRecord* b) {
    b->name = j.at("name").get<std::string>();
    if (!ValidateBatchName(b->name).ok()) return false;
    b->target = j.at("target").get<std::string>();
    auto st = ParseBatchState(j.at("state").get<std::string>());
    if (!st) return false;
    b->state = *st;
    b->keep_source = j.at("keep_source").get<bool>();
    b->created = j.at("created").get<std::string>();
    b->runner = j.at("runner").get<std::string>();
    b->result = j.at("result").get<std::string>();
    if (!(ReadNumber(j, "concurrency", &b->concurrency) && ReadNumber(j, "bad_item_limit", &b->bad_item_limit) &&
          ReadNumber(j, "sync_interval_ms", &b->sync_interval_ms) &&
          ReadNumber(j, "complete_at_ms", &b->complete_at_ms) &&
          ReadNumber(j, "complete_delay_ms", &b->complete_delay_ms) &&
          ReadNumber(j, "cancel_after_ms", &b->cancel_after_ms) && ReadNumber(j, "started_ms", &b->started_ms) &&
          ReadNumber(j, "finished_ms", &b->finished_ms) && ReadNumber(j, "version", &b->version))) {
      return false;
    }
    const json& members = j.at("members");
    if (!members.is_array()) return false;
    b->members.reserve(members.size());
    for (const json& m : members) {
      if (!FillMember(m, &b->members.emplace_back())) return false;
    }
    return b->version > 0;
  });
}

}  // namespace

std::optional<uint64_t> RecordVersionJson(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto it = j.find("version");
  if (it == j.end() || !it->is_number_unsigned()) return std::nullopt;
  return it->get<uint64_t>();
}

std::string QueueEntryToJson(const QueueEntry& e) { return ToJson(e).dump(); }
std::string LeaseToJson(const Lease& l) { return ToJson(l).dump(); }
Result<QueueEntry> ParseQueueEntryJson(std::string_view text) { return ParseQueueEntry(text); }
Result<Lease> ParseLeaseJson(std::string_view text) { return ParseLease(text); }
std::string BatchToJson(const BatchRecord& b) { return Dump(ToJson(b)); }
Result<BatchRecord> ParseBatchJson(std::string_view text) { return ParseBatch(text); }

std::string BatchMemberToJson(const BatchMember& m, size_t index) {
  json j = ToJson(m);
  j["index"] = index;
  return Dump(j);
}

Result<BatchMember> ParseBatchMemberJson(std::string_view text, size_t* index) {
  return Parse<BatchMember>(text, "batch member", [index](const json& j, BatchMember* m) {
    uint64_t i = 0;
    if (!ReadNumber(j, "index", &i) || i > std::numeric_limits<size_t>::max()) return false;
    *index = static_cast<size_t>(i);
    return FillMember(j, m);
  });
}

std::string UserToJson(const UserRecord& u) { return ToJson(u).dump(); }
std::string StoreToJson(const StoreRecord& s) { return ToJson(s).dump(); }
std::string MoveToJson(const MoveRecord& m) { return ToJson(m).dump(); }
std::string ServerToJson(const ServerRecord& s) { return ToJson(s).dump(); }
Result<UserRecord> ParseUserJson(std::string_view text) { return ParseUser(text); }
Result<StoreRecord> ParseStoreJson(std::string_view text) { return ParseStore(text); }
Result<MoveRecord> ParseMoveJson(std::string_view text) { return ParseMove(text); }
Result<ServerRecord> ParseServerJson(std::string_view text) { return ParseServer(text); }

std::vector<Status> Directory::DeleteMoves(const std::vector<Guid>& mailboxes) {
  std::vector<Status> out;
  out.reserve(mailboxes.size());
  for (const Guid& g : mailboxes) out.push_back(DeleteMove(g));
  return out;
}

}  // namespace mbx
