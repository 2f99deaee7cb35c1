#include "store/directory.h"

#include <sys/stat.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "store/file_io.h"

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
  }
  return "unknown";
}

std::optional<MoveStep> ParseMoveStep(std::string_view name) {
  for (MoveStep s : {MoveStep::kLocked, MoveStep::kHierarchy, MoveStep::kCopying, MoveStep::kVerified,
                     MoveStep::kSwitched, MoveStep::kImporting}) {
    if (MoveStepName(s) == name) return s;
  }
  return std::nullopt;
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

Status Put(MDB_txn* txn, MDB_dbi dbi, std::string_view k, std::string_view v) {
  MDB_val mk = ToVal(k), mv = ToVal(v);
  return LmdbStatus(mdb_put(txn, dbi, &mk, &mv, 0), "writing directory");
}

Result<std::string> Get(MDB_env* env, MDB_dbi dbi, std::string_view k, std::string_view what) {
  LmdbTxn txn;
  MBX_RETURN_IF_ERROR(txn.Begin(env, MDB_RDONLY));
  MDB_val mk = ToVal(k), mv;
  int rc = mdb_get(txn.get(), dbi, &mk, &mv);
  if (rc == MDB_NOTFOUND) return Status::NotFound(std::string(what) + " '" + std::string(k) + "' is not in the directory");
  if (rc != 0) return LmdbStatus(rc, "reading directory");
  return std::string(FromVal(mv));
}

template <typename T, typename ParseFn>
Status List(MDB_env* env, MDB_dbi dbi, ParseFn parse, std::vector<T>* out) {
  out->clear();
  LmdbTxn txn;
  MBX_RETURN_IF_ERROR(txn.Begin(env, MDB_RDONLY));
  LmdbCursor cur;
  MBX_RETURN_IF_ERROR(cur.Open(txn.get(), dbi));
  MDB_val k, v;
  int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST);
  while (rc == 0) {
    MBX_ASSIGN_OR_RETURN(T item, parse(FromVal(v)));
    out->push_back(std::move(item));
    rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT);
  }
  if (rc != MDB_NOTFOUND) return LmdbStatus(rc, "listing directory");
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Directory>> Directory::Open(const std::string& dir, bool create) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    if (!create) return Status::NotFound("no directory at " + dir);
    if (::mkdir(dir.c_str(), kOwnerOnlyDirMode) != 0 && errno != EEXIST) {
      return PosixError("creating directory folder", dir, errno);
    }
  } else if (!create && ::access((dir + "/data.mdb").c_str(), F_OK) != 0) {
    return Status::NotFound("no directory at " + dir + " (no data.mdb)");
  }
  std::unique_ptr<Directory> d(new Directory());
  // NOMETASYNC: every commit syncs its data, the meta page follows with the
  // next commit; operations that must survive a machine crash at once (the
  // homeMDB switch, a move's lock record) sync the meta page too.
  MBX_RETURN_IF_ERROR(d->env_.Open(dir, MDB_NOMETASYNC, 8, 1ull << 30).WithContext("opening the directory"));
  LmdbTxn txn;
  MBX_RETURN_IF_ERROR(txn.Begin(d->env_.get(), create ? 0 : MDB_RDONLY));
  const unsigned flags = create ? MDB_CREATE : 0;
  struct { const char* name; MDB_dbi* dbi; } dbs[] = {
      {"users", &d->users_}, {"by_mbx", &d->by_mbx_}, {"stores", &d->stores_}, {"moves", &d->moves_},
      {"servers", &d->servers_}};
  for (auto& db : dbs) {
    int rc = mdb_dbi_open(txn.get(), db.name, flags, db.dbi);
    if (rc != 0) {
      return Status::Corruption(dir + " is not an mbxmove directory (database '" +
                                std::string(db.name) + "': " + mdb_strerror(rc) + ")");
    }
  }
  MBX_RETURN_IF_ERROR(txn.Commit());
  return d;
}

Status Directory::PutStore(const StoreRecord& s) {
  LmdbTxn txn;
  MBX_RETURN_IF_ERROR(txn.Begin(env_.get(), 0));
  MBX_RETURN_IF_ERROR(Put(txn.get(), stores_, s.name, ToJson(s).dump()));
  return txn.Commit();
}

Result<StoreRecord> Directory::GetStore(const std::string& name) {
  MBX_ASSIGN_OR_RETURN(std::string v, Get(env_.get(), stores_, name, "store"));
  return ParseStore(v);
}

Status Directory::ListStores(std::vector<StoreRecord>* out) {
  return List<StoreRecord>(env_.get(), stores_, ParseStore, out);
}

Status Directory::PutServer(const ServerRecord& s) {
  LmdbTxn txn;
  MBX_RETURN_IF_ERROR(txn.Begin(env_.get(), 0));
  MBX_RETURN_IF_ERROR(Put(txn.get(), servers_, s.name, ToJson(s).dump()));
  MBX_RETURN_IF_ERROR(txn.Commit());
  return Sync();
}

Result<ServerRecord> Directory::GetServer(const std::string& name) {
  MBX_ASSIGN_OR_RETURN(std::string v, Get(env_.get(), servers_, name, "server"));
  return ParseServer(v);
}

Status Directory::ListServers(std::vector<ServerRecord>* out) {
  return List<ServerRecord>(env_.get(), servers_, ParseServer, out);
}

Status Directory::PutUsers(const std::vector<UserRecord>& users) {
  LmdbTxn txn;
  MBX_RETURN_IF_ERROR(txn.Begin(env_.get(), 0));
  for (const UserRecord& u : users) {
    MBX_RETURN_IF_ERROR(Put(txn.get(), users_, u.name, ToJson(u).dump()));
    MBX_RETURN_IF_ERROR(Put(txn.get(), by_mbx_, u.mailbox.AsKey(), u.name));
  }
  MBX_RETURN_IF_ERROR(txn.Commit());
  return Sync();
}

Result<UserRecord> Directory::GetUser(const std::string& name) {
  MBX_ASSIGN_OR_RETURN(std::string v, Get(env_.get(), users_, name, "user"));
  return ParseUser(v);
}

Result<UserRecord> Directory::GetUserByMailbox(const Guid& mailbox) {
  auto name = Get(env_.get(), by_mbx_, mailbox.AsKey(), "mailbox");
  if (!name.ok()) {
    if (name.status().IsNotFound()) {
      return Status::NotFound("mailbox " + mailbox.ToString() + " belongs to no user in the directory");
    }
    return name.status();
  }
  return GetUser(*name);
}

Status Directory::ListUsers(std::vector<UserRecord>* out) {
  return List<UserRecord>(env_.get(), users_, ParseUser, out);
}

Status Directory::SwitchHome(const Guid& mailbox, const StoreRecord& target, const MoveRecord& record) {
  LmdbTxn txn;
  MBX_RETURN_IF_ERROR(txn.Begin(env_.get(), 0));
  MDB_val k = ToVal(mailbox.AsKey()), v;
  int rc = mdb_get(txn.get(), by_mbx_, &k, &v);
  if (rc != 0) return LmdbStatus(rc, "finding the user of mailbox " + mailbox.ToString());
  std::string user(FromVal(v));
  MDB_val uk = ToVal(user), uv;
  rc = mdb_get(txn.get(), users_, &uk, &uv);
  if (rc != 0) return LmdbStatus(rc, "reading user " + user);
  MBX_ASSIGN_OR_RETURN(UserRecord u, ParseUser(FromVal(uv)));
  u.home_mdb = target.dn;
  u.home_server = target.server;
  MBX_RETURN_IF_ERROR(Put(txn.get(), users_, u.name, ToJson(u).dump()));
  MBX_RETURN_IF_ERROR(Put(txn.get(), moves_, mailbox.AsKey(), ToJson(record).dump()));
  MBX_RETURN_IF_ERROR(txn.Commit());
  return Sync();
}

Status Directory::Sync() {
  int rc = mdb_env_sync(env_.get(), 1);
  return LmdbStatus(rc, "syncing the directory");
}

Status Directory::PutMove(const MoveRecord& m, bool sync) {
  LmdbTxn txn;
  MBX_RETURN_IF_ERROR(txn.Begin(env_.get(), 0));
  MBX_RETURN_IF_ERROR(Put(txn.get(), moves_, m.mailbox.AsKey(), ToJson(m).dump()));
  MBX_RETURN_IF_ERROR(txn.Commit());
  return sync ? Sync() : Status::Ok();
}

Result<MoveRecord> Directory::GetMove(const Guid& mailbox) {
  auto v = Get(env_.get(), moves_, mailbox.AsKey(), "move");
  if (!v.ok()) {
    if (v.status().IsNotFound()) return Status::NotFound("no move record for " + mailbox.ToString());
    return v.status();
  }
  return ParseMove(*v);
}

Status Directory::ListMoves(std::vector<MoveRecord>* out) {
  return List<MoveRecord>(env_.get(), moves_, ParseMove, out);
}

Status Directory::DeleteMove(const Guid& mailbox) {
  LmdbTxn txn;
  MBX_RETURN_IF_ERROR(txn.Begin(env_.get(), 0));
  MDB_val k = ToVal(mailbox.AsKey());
  int rc = mdb_del(txn.get(), moves_, &k, nullptr);
  if (rc != 0 && rc != MDB_NOTFOUND) return LmdbStatus(rc, "deleting move record");
  return txn.Commit();
}

}  // namespace mbx
