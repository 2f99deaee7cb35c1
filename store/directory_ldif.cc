#include "store/directory_ldif.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "store/ldif.h"
#include "store/organization.h"

namespace mbx {

namespace {

constexpr std::string_view kHeader = "mbxmove directory export";
constexpr std::string_view kTrailer = "end of mbxmove directory export: ";
constexpr std::string_view kLegacyPrefix = "/o=mbxmove/ou=First Administrative Group/cn=Configuration/cn=Servers/cn=";

bool EqualNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool Same(const ServerRecord& a, const ServerRecord& b) { return a.name == b.name && a.address == b.address; }
bool Same(const StoreRecord& a, const StoreRecord& b) {
  return a.name == b.name && a.server == b.server && a.dn == b.dn && a.created == b.created;
}
bool Same(const UserRecord& a, const UserRecord& b) {
  return a.name == b.name && a.display_name == b.display_name && a.smtp == b.smtp && a.mailbox == b.mailbox &&
         a.home_mdb == b.home_mdb && a.home_server == b.home_server;
}
bool Same(const MoveRecord& a, const MoveRecord& b) {
  return a.mailbox == b.mailbox && a.user == b.user && a.source == b.source && a.target == b.target &&
         a.step == b.step && a.started == b.started && a.keep_source == b.keep_source;
}

std::string KeyOf(const ServerRecord& r) { return r.name; }
std::string KeyOf(const StoreRecord& r) { return r.name; }
std::string KeyOf(const UserRecord& r) { return r.name; }
std::string KeyOf(const MoveRecord& r) { return r.mailbox.ToString(); }

template <typename T>
void SortByKey(std::vector<T>* v) {
  std::sort(v->begin(), v->end(), [](const T& a, const T& b) { return KeyOf(a) < KeyOf(b); });
}

void AddIf(LdifEntry* e, const char* attr, const std::string& value) {
  if (!value.empty()) e->Add(attr, value);
}

std::string GuidBytes(const Guid& g) { return std::string(g.AsKey()); }

std::string Where(const LdifEntry& e) { return "line " + std::to_string(e.line) + ": entry " + e.dn; }

// The value of an attribute that may be absent ("" then); more than one is an error.
Result<std::string> Optional(const LdifEntry& e, std::string_view attr) {
  auto v = e.Values(attr);
  if (v.size() > 1) {
    return Status::InvalidArgument(Where(e) + " has " + std::to_string(v.size()) + " values of " + std::string(attr) +
                                   ", expected at most one");
  }
  return v.empty() ? std::string() : v.front();
}

Result<Guid> GuidOf(const LdifEntry& e) {
  MBX_ASSIGN_OR_RETURN(std::string bytes, e.One("msExchMailboxGuid"));
  if (bytes.size() != 16) {
    return Status::InvalidArgument(Where(e) + ": msExchMailboxGuid is " + std::to_string(bytes.size()) +
                                   " bytes, a mailbox GUID is 16");
  }
  return Guid::FromKey(bytes);
}

// Splits a DN's first RDN "attr=value" off; the value unescaped (RFC 4514).
Status FirstRdn(const std::string& dn, std::string* attr, std::string* value) {
  const size_t eq = dn.find('=');
  if (dn.empty() || eq == std::string::npos || eq == 0) {
    return Status::InvalidArgument("'" + dn + "' is not a distinguished name (expected e.g. ou=org1,dc=mbxmove,dc=test)");
  }
  *attr = dn.substr(0, eq);
  while (!attr->empty() && attr->back() == ' ') attr->pop_back();
  value->clear();
  for (size_t i = eq + 1; i < dn.size(); ++i) {
    const char c = dn[i];
    if (c == ',') break;
    if (c == '+') return Status::InvalidArgument("base DN '" + dn + "': a multi-valued first RDN is not supported");
    if (c != '\\') {
      value->push_back(c);
      continue;
    }
    if (i + 1 >= dn.size()) return Status::InvalidArgument("base DN '" + dn + "' ends with a lone '\\'");
    auto hex = [](char h) { return std::isxdigit(static_cast<unsigned char>(h)) != 0; };
    if (i + 2 < dn.size() && hex(dn[i + 1]) && hex(dn[i + 2])) {
      value->push_back(char(std::stoi(dn.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      value->push_back(dn[++i]);
    }
  }
  if (value->empty()) return Status::InvalidArgument("base DN '" + dn + "' has an empty first RDN value");
  return Status::Ok();
}

// Checks the header/trailer pair of an export: a file that starts as an
// export must end with the trailer naming the number of entries.
Status CheckComplete(std::string_view text, size_t entries) {
  // The header is among the first lines (after "version: 1").
  size_t pos = 0;
  bool header = false;
  for (int k = 0; k < 3 && pos < text.size(); ++k) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (line.rfind("# " + std::string(kHeader), 0) == 0) header = true;
    pos = end + 1;
  }
  if (!header) return Status::Ok();
  // The last non-blank line.
  size_t end = text.size();
  size_t line_no = size_t(std::count(text.begin(), text.end(), '\n')) + 1;
  while (end > 0) {
    size_t start = text.rfind('\n', end - 1);
    start = start == std::string_view::npos ? 0 : start + 1;
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) {
      const std::string want = "# " + std::string(kTrailer);
      if (line.rfind(want, 0) != 0) {
        return Status::InvalidArgument("line " + std::to_string(line_no) +
                                       ": the export ends without its closing line '# " + std::string(kTrailer) +
                                       "N entries': the file was cut short");
      }
      std::string_view count = line.substr(want.size());
      const std::string expect = std::to_string(entries) + " entries";
      if (count != expect) {
        return Status::InvalidArgument("line " + std::to_string(line_no) + ": the export's closing line says " +
                                       std::string(count) + " but the file holds " + expect +
                                       ": entries were lost or added");
      }
      return Status::Ok();
    }
    end = start == 0 ? 0 : start - 1;
    --line_no;
  }
  return Status::InvalidArgument("the export holds nothing after its first lines: the file was cut short");
}

// The first record of `have` that `want` does not hold identically.
template <typename T>
std::optional<std::string> FirstDifference(const std::vector<T>& have, const std::vector<T>& want,
                                           const char* kind) {
  std::map<std::string, const T*> by_key;
  for (const auto& w : want) by_key[KeyOf(w)] = &w;
  for (const auto& h : have) {
    auto it = by_key.find(KeyOf(h));
    if (it == by_key.end()) return std::string(kind) + " '" + KeyOf(h) + "', which the file does not hold";
    if (!Same(h, *it->second)) return std::string(kind) + " '" + KeyOf(h) + "', which the file holds differently";
  }
  return std::nullopt;
}

template <typename T>
std::vector<const T*> Missing(const std::vector<T>& have, const std::vector<T>& want) {
  std::map<std::string, bool> present;
  for (const auto& h : have) present[KeyOf(h)] = true;
  std::vector<const T*> out;
  for (const auto& w : want) {
    if (!present.count(KeyOf(w))) out.push_back(&w);
  }
  return out;
}

}  // namespace

std::string EscapeDnValue(std::string_view v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    const char c = v[i];
    const bool special = c == ',' || c == '+' || c == '"' || c == '\\' || c == '<' || c == '>' || c == ';' ||
                         c == '=' || (i == 0 && (c == '#' || c == ' ')) || (i + 1 == v.size() && c == ' ');
    if (c == '\0') {
      out += "\\00";
    } else {
      if (special) out.push_back('\\');
      out.push_back(c);
    }
  }
  return out;
}

std::string LegacyServerDn(const std::string& server) { return std::string(kLegacyPrefix) + server; }

std::optional<std::string> ServerFromLegacyDn(std::string_view legacy) {
  // The last "/cn=" (any case) starts the server's name.
  if (legacy.empty() || legacy.front() != '/') return std::nullopt;
  for (size_t pos = legacy.size(); pos-- > 0;) {
    if (legacy[pos] == '/' && EqualNoCase(legacy.substr(pos + 1, 3), "cn=")) {
      std::string name(legacy.substr(pos + 4));
      if (name.empty() || name.find('/') != std::string::npos) return std::nullopt;
      return name;
    }
  }
  return std::nullopt;
}

Result<DirectoryContents> ReadDirectoryContents(Directory& dir) {
  DirectoryContents c;
  MBX_RETURN_IF_ERROR(dir.ListServers(&c.servers));
  MBX_RETURN_IF_ERROR(dir.ListStores(&c.stores));
  MBX_RETURN_IF_ERROR(dir.ListUsers(&c.users));
  MBX_RETURN_IF_ERROR(dir.ListMoves(&c.moves));
  SortByKey(&c.servers);
  SortByKey(&c.stores);
  SortByKey(&c.users);
  SortByKey(&c.moves);
  return c;
}

Result<std::string> DirectoryToLdif(const DirectoryContents& c, const std::string& base,
                                    std::string_view source) {
  std::string rdn_attr, rdn_value;
  MBX_RETURN_IF_ERROR(FirstRdn(base, &rdn_attr, &rdn_value));
  std::vector<LdifEntry> entries;
  LdifEntry top;
  top.dn = base;
  top.Add("objectClass", "top");
  if (EqualNoCase(rdn_attr, "ou")) {
    top.Add("objectClass", "organizationalUnit");
    top.Add("ou", rdn_value);
  } else if (EqualNoCase(rdn_attr, "o")) {
    top.Add("objectClass", "organization");
    top.Add("o", rdn_value);
  } else if (EqualNoCase(rdn_attr, "dc")) {
    top.Add("objectClass", "domain");
    top.Add("dc", rdn_value);
  } else {
    return Status::InvalidArgument("base DN '" + base + "' must start with ou=, o= or dc=");
  }
  entries.push_back(std::move(top));
  for (const char* ou : {"servers", "stores", "users", "moves"}) {
    LdifEntry e;
    e.dn = std::string("ou=") + ou + "," + base;
    e.Add("objectClass", "top");
    e.Add("objectClass", "organizationalUnit");
    e.Add("ou", ou);
    entries.push_back(std::move(e));
  }
  for (const auto& s : c.servers) {
    LdifEntry e;
    e.dn = "cn=" + EscapeDnValue(s.name) + ",ou=servers," + base;
    e.Add("objectClass", "top");
    e.Add("objectClass", "mbxServer");
    e.Add("cn", s.name);
    AddIf(&e, "mbxServerAddress", s.address);
    entries.push_back(std::move(e));
  }
  for (const auto& s : c.stores) {
    LdifEntry e;
    e.dn = "cn=" + EscapeDnValue(s.name) + ",ou=stores," + base;
    e.Add("objectClass", "top");
    e.Add("objectClass", "mbxStore");
    e.Add("cn", s.name);
    e.Add("mbxStoreDN", s.dn);
    e.Add("mbxServerName", s.server);
    AddIf(&e, "mbxCreated", s.created);
    entries.push_back(std::move(e));
  }
  for (const auto& u : c.users) {
    LdifEntry e;
    e.dn = "cn=" + EscapeDnValue(u.name) + ",ou=users," + base;
    e.Add("objectClass", "top");
    e.Add("objectClass", "mbxUser");
    e.Add("cn", u.name);
    e.Add("mailNickname", u.name);
    e.Add("msExchMailboxGuid", GuidBytes(u.mailbox));
    AddIf(&e, "homeMDB", u.home_mdb);
    if (!u.home_server.empty()) e.Add("msExchHomeServerName", LegacyServerDn(u.home_server));
    AddIf(&e, "mail", u.smtp);
    AddIf(&e, "displayName", u.display_name);
    entries.push_back(std::move(e));
  }
  for (const auto& m : c.moves) {
    LdifEntry e;
    e.dn = "cn=" + m.mailbox.ToString() + ",ou=moves," + base;
    e.Add("objectClass", "top");
    e.Add("objectClass", "mbxMove");
    e.Add("cn", m.mailbox.ToString());
    e.Add("msExchMailboxGuid", GuidBytes(m.mailbox));
    AddIf(&e, "mbxMoveUser", m.user);
    AddIf(&e, "mbxMoveSource", m.source);
    e.Add("mbxMoveTarget", m.target);
    e.Add("mbxMoveStep", std::string(MoveStepName(m.step)));
    AddIf(&e, "mbxMoveStarted", m.started);
    e.Add("mbxMoveKeepSource", m.keep_source ? "TRUE" : "FALSE");
    entries.push_back(std::move(e));
  }
  const std::string header = std::string(kHeader) + " of " + std::string(source) + " at " + NowIso8601() + ": " +
                             std::to_string(c.servers.size()) + " servers, " + std::to_string(c.stores.size()) +
                             " stores, " + std::to_string(c.users.size()) + " users, " +
                             std::to_string(c.moves.size()) + " move records";
  std::string out = WriteLdif(entries, header);
  out += "# " + std::string(kTrailer) + std::to_string(entries.size()) + " entries\n";
  return out;
}

Result<DirectoryContents> DirectoryFromLdif(std::string_view text) {
  MBX_ASSIGN_OR_RETURN(std::vector<LdifEntry> entries, ParseLdif(text));
  MBX_RETURN_IF_ERROR(CheckComplete(text, entries.size()));
  DirectoryContents c;
  // key -> line of its first entry, per kind, for duplicate messages
  std::map<std::string, size_t> servers, stores, users, mailboxes, moves;
  auto once = [](std::map<std::string, size_t>* seen, const std::string& key, const LdifEntry& e,
                 const char* kind) -> Status {
    auto [it, fresh] = seen->emplace(key, e.line);
    if (fresh) return Status::Ok();
    return Status::InvalidArgument("line " + std::to_string(e.line) + ": a second " + kind + " '" + key +
                                   "' (the first is at line " + std::to_string(it->second) + ")");
  };
  auto named = [](const Status& s, const LdifEntry& e) {
    return s.ok() ? s : Status::InvalidArgument("line " + std::to_string(e.line) + ": " + s.message());
  };
  for (const LdifEntry& e : entries) {
    if (e.Has("objectClass", "mbxServer")) {
      ServerRecord s;
      MBX_ASSIGN_OR_RETURN(s.name, e.One("cn"));
      if (s.name.empty()) return Status::InvalidArgument(Where(e) + ": an empty server name");
      MBX_ASSIGN_OR_RETURN(s.address, Optional(e, "mbxServerAddress"));
      MBX_RETURN_IF_ERROR(once(&servers, s.name, e, "server"));
      c.servers.push_back(std::move(s));
    } else if (e.Has("objectClass", "mbxStore")) {
      StoreRecord s;
      MBX_ASSIGN_OR_RETURN(s.name, e.One("cn"));
      MBX_RETURN_IF_ERROR(named(Organization::ValidateStoreName(s.name), e));
      MBX_ASSIGN_OR_RETURN(s.dn, e.One("mbxStoreDN"));
      MBX_ASSIGN_OR_RETURN(s.server, e.One("mbxServerName"));
      MBX_ASSIGN_OR_RETURN(s.created, Optional(e, "mbxCreated"));
      MBX_RETURN_IF_ERROR(once(&stores, s.name, e, "store"));
      c.stores.push_back(std::move(s));
    } else if (e.Has("objectClass", "mbxUser")) {
      UserRecord u;
      MBX_ASSIGN_OR_RETURN(u.name, e.One("mailNickname"));
      MBX_RETURN_IF_ERROR(named(Organization::ValidateName("user name", u.name), e));
      MBX_ASSIGN_OR_RETURN(u.mailbox, GuidOf(e));
      MBX_ASSIGN_OR_RETURN(u.home_mdb, Optional(e, "homeMDB"));
      MBX_ASSIGN_OR_RETURN(std::string legacy, Optional(e, "msExchHomeServerName"));
      if (!legacy.empty()) {
        auto server = ServerFromLegacyDn(legacy);
        if (!server) {
          return Status::InvalidArgument(Where(e) + ": msExchHomeServerName '" + legacy +
                                         "' is not a legacy server DN (/o=.../cn=Servers/cn=NAME)");
        }
        u.home_server = *server;
      }
      MBX_ASSIGN_OR_RETURN(u.smtp, Optional(e, "mail"));
      MBX_ASSIGN_OR_RETURN(u.display_name, Optional(e, "displayName"));
      MBX_RETURN_IF_ERROR(once(&users, u.name, e, "user"));
      MBX_RETURN_IF_ERROR(once(&mailboxes, u.mailbox.ToString(), e, "user with mailbox"));
      c.users.push_back(std::move(u));
    } else if (e.Has("objectClass", "mbxMove")) {
      MoveRecord m;
      MBX_ASSIGN_OR_RETURN(m.mailbox, GuidOf(e));
      MBX_ASSIGN_OR_RETURN(m.user, Optional(e, "mbxMoveUser"));
      MBX_ASSIGN_OR_RETURN(m.source, Optional(e, "mbxMoveSource"));
      MBX_ASSIGN_OR_RETURN(m.target, e.One("mbxMoveTarget"));
      MBX_ASSIGN_OR_RETURN(std::string step, e.One("mbxMoveStep"));
      auto parsed = ParseMoveStep(step);
      if (!parsed) return Status::InvalidArgument(Where(e) + ": mbxMoveStep '" + step + "' is not a move step");
      m.step = *parsed;
      MBX_ASSIGN_OR_RETURN(m.started, Optional(e, "mbxMoveStarted"));
      MBX_ASSIGN_OR_RETURN(std::string keep, Optional(e, "mbxMoveKeepSource"));
      if (keep != "" && keep != "TRUE" && keep != "FALSE") {
        return Status::InvalidArgument(Where(e) + ": mbxMoveKeepSource '" + keep + "' is neither TRUE nor FALSE");
      }
      m.keep_source = keep == "TRUE";
      MBX_RETURN_IF_ERROR(once(&moves, m.mailbox.ToString(), e, "move record of mailbox"));
      c.moves.push_back(std::move(m));
    } else if (e.Has("objectClass", "organizationalUnit") || e.Has("objectClass", "organization") ||
               e.Has("objectClass", "domain") || e.Has("objectClass", "dcObject")) {
      continue;  // the base entry and its containers
    } else {
      auto classes = e.Values("objectClass");
      std::string shown;
      for (const auto& k : classes) shown += (shown.empty() ? "" : ", ") + k;
      return Status::InvalidArgument(Where(e) + " is no mbxmove record (objectClass " +
                                     (shown.empty() ? std::string("missing") : shown) +
                                     "; expected mbxUser, mbxStore, mbxServer, mbxMove or a container)");
    }
  }
  SortByKey(&c.servers);
  SortByKey(&c.stores);
  SortByKey(&c.users);
  SortByKey(&c.moves);
  return c;
}

Result<DirectoryImportSummary> ImportDirectoryContents(Directory& dir, const DirectoryContents& want) {
  MBX_ASSIGN_OR_RETURN(DirectoryContents have, ReadDirectoryContents(dir));
  std::optional<std::string> diff = FirstDifference(have.servers, want.servers, "server");
  if (!diff) diff = FirstDifference(have.stores, want.stores, "store");
  if (!diff) diff = FirstDifference(have.users, want.users, "user");
  if (!diff) diff = FirstDifference(have.moves, want.moves, "move record of mailbox");
  if (diff) {
    return Status::AlreadyExists("the directory " + dir.Describe() + " already holds " + *diff +
                                 "; import only into an empty directory (nothing was written)");
  }
  DirectoryImportSummary sum;
  sum.unchanged = have.records();
  for (const ServerRecord* s : Missing(have.servers, want.servers)) {
    MBX_RETURN_IF_ERROR(dir.PutServer(*s).WithContext("importing server " + s->name));
    ++sum.added;
  }
  for (const StoreRecord* s : Missing(have.stores, want.stores)) {
    MBX_RETURN_IF_ERROR(dir.PutStore(*s).WithContext("importing store " + s->name));
    ++sum.added;
  }
  std::vector<UserRecord> users;
  for (const UserRecord* u : Missing(have.users, want.users)) users.push_back(*u);
  if (!users.empty()) {
    MBX_RETURN_IF_ERROR(dir.PutUsers(users).WithContext("importing " + std::to_string(users.size()) + " users"));
    sum.added += users.size();
  }
  for (const MoveRecord* m : Missing(have.moves, want.moves)) {
    MBX_RETURN_IF_ERROR(dir.PutMove(*m, /*sync=*/false).WithContext("importing the move record of " + m->user));
    ++sum.added;
  }
  MBX_RETURN_IF_ERROR(dir.Sync());
  return sum;
}

}  // namespace mbx
