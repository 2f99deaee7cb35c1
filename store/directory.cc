#include "store/directory.h"

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

Status ValidateLeaseName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 128;
  for (char c : name) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                c == '_' || c == '-');
  }
  return ok ? Status::Ok()
            : Status::InvalidArgument("lease name '" + name + "': 1-128 of letters, digits, '.', '_', '-'");
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

std::string UserToJson(const UserRecord& u) { return ToJson(u).dump(); }
std::string StoreToJson(const StoreRecord& s) { return ToJson(s).dump(); }
std::string MoveToJson(const MoveRecord& m) { return ToJson(m).dump(); }
std::string ServerToJson(const ServerRecord& s) { return ToJson(s).dump(); }
Result<UserRecord> ParseUserJson(std::string_view text) { return ParseUser(text); }
Result<StoreRecord> ParseStoreJson(std::string_view text) { return ParseStore(text); }
Result<MoveRecord> ParseMoveJson(std::string_view text) { return ParseMove(text); }
Result<ServerRecord> ParseServerJson(std::string_view text) { return ParseServer(text); }

}  // namespace mbx
