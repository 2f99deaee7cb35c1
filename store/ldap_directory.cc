// The directory in an OpenLDAP server, through libldap's synchronous API.
// See store/ldap_directory.h for the layout and tools/ldap/mbxmove.schema for
// the attributes.
//
// One connection, guarded by a mutex: requests from every thread of the
// process are serialised on it (slapd answers each in well under a
// millisecond on a local link; a pool is the next step if the directory
// ever shows in a move's profile).
//
// Failures of the connection. Before each request an idle connection that
// the server has closed (a restarted slapd) is noticed without a round trip
// and replaced. A request whose connection fails while it is in flight is
// retried once on a new connection when repeating it cannot do harm: reads,
// and the unguarded writes that replace a record with the same content. A
// guarded write (CreateMove, AdvanceMove, SwitchHome, and every write of a
// queue entry, lease or batch) is not repeated: its outcome is unknown, and
// it is an IOError naming the server; the engine's recovery re-reads the
// directory.
//
// Durability: slapd's back-mdb commits each write durably before it answers
// (unless configured with dbnosync, which the private slapd of net/slapd.h
// is not), so Sync() has nothing to do.
#include "store/ldap_directory.h"

#include <ldap.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>

#include "store/file_io.h"

namespace mbx {

namespace {

constexpr int kTimeoutSeconds = 10;

// --- escaping --------------------------------------------------------------

std::string Hex2(unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  return {kHex[c >> 4], kHex[c & 15]};
}

// An attribute value in a DN (RFC 4514 section 2.4).
std::string EscapeDnValue(std::string_view v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(v[i]);
    const bool special = c == ',' || c == '+' || c == '"' || c == '\\' || c == '<' || c == '>' || c == ';' ||
                         c == '=';
    const bool edge = (i == 0 && (c == ' ' || c == '#')) || (i + 1 == v.size() && c == ' ');
    if (c == 0 || c < 0x20 || c == 0x7f) {
      out += "\\" + Hex2(c);
    } else if (special || edge) {
      out += '\\';
      out += char(c);
    } else {
      out += char(c);
    }
  }
  return out;
}

// An assertion value in a search filter (RFC 4515 section 3); every byte
// outside printable ASCII is escaped too, so binary values are safe.
std::string EscapeFilterValue(std::string_view v) {
  std::string out;
  for (unsigned char c : v) {
    if (c == '*' || c == '(' || c == ')' || c == '\\' || c < 0x20 || c >= 0x7f) {
      out += "\\" + Hex2(c);
    } else {
      out += char(c);
    }
  }
  return out;
}

// A DN-syntax value as mbxmove writes DNs (StoreDistinguishedName):
// attribute types in upper case, values escaped as RFC 4514 section 2.4
// says with a backslash before the character. slapd returns DN values in
// its own pretty form (types lower case, some characters as \XX), which
// names the same entry; this gives back the form the value was written in
// when it was written in this one, so the directory's DNs compare equal as
// strings, as the embedded directory's do. An unparsable value is returned
// unchanged.
std::string CanonicalDn(const std::string& dn) {
  LDAPDN parsed = nullptr;
  if (ldap_str2dn(dn.c_str(), &parsed, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS || !parsed) return dn;
  std::string out;
  for (int i = 0; parsed[i]; ++i) {
    if (i) out += ',';
    for (int j = 0; parsed[i][j]; ++j) {
      const LDAPAVA* ava = parsed[i][j];
      if (j) out += '+';
      for (ber_len_t k = 0; k < ava->la_attr.bv_len; ++k) {
        out += char(std::toupper(static_cast<unsigned char>(ava->la_attr.bv_val[k])));
      }
      out += '=';
      const std::string_view v(ava->la_value.bv_val, ava->la_value.bv_len);
      if (ava->la_flags & LDAP_AVA_BINARY) {
        out += '#';
        for (unsigned char c : v) out += Hex2(c);
      } else {
        out += EscapeDnValue(v);
      }
    }
  }
  ldap_dnfree(parsed);
  return out;
}

// Percent-escapes a DN for the path of an LDAP URL (RFC 4516).
std::string EscapeUrlDn(std::string_view dn) {
  std::string out;
  for (unsigned char c : dn) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == ',' || c == '=') {
      out += char(c);
    } else {
      out += "%" + Hex2(c);
    }
  }
  return out;
}

// --- entries ---------------------------------------------------------------

using Values = std::vector<std::string>;
// Attribute name (lower case) -> values, as read back.
struct Entry {
  std::string dn;
  std::map<std::string, Values> attrs;
};

std::string Lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

using AttrList = std::vector<std::pair<std::string, Values>>;

// The LDAPMod array of a set of attributes, owning every buffer it points to
// (a copy of the attributes).
class Mods {
 public:
  // op: LDAP_MOD_ADD or LDAP_MOD_REPLACE (an attribute with no values is then
  // removed; in an add it is left out).
  Mods(AttrList attrs, int op) : attrs_(std::move(attrs)) {
    const size_t n = attrs_.size();
    mods_.reserve(n);
    vals_.reserve(n);
    ptrs_.reserve(n);
    for (const auto& [type, values] : attrs_) {
      if (op == LDAP_MOD_ADD && values.empty()) continue;
      auto& bv = vals_.emplace_back();
      bv.reserve(values.size());
      for (const std::string& v : values) bv.push_back(berval{v.size(), const_cast<char*>(v.data())});
      auto& p = ptrs_.emplace_back();
      for (berval& b : bv) p.push_back(&b);
      p.push_back(nullptr);
      LDAPMod m{};
      m.mod_op = op | LDAP_MOD_BVALUES;
      m.mod_type = const_cast<char*>(type.c_str());
      m.mod_bvalues = p.data();
      mods_.push_back(m);
    }
    for (LDAPMod& m : mods_) list_.push_back(&m);
    list_.push_back(nullptr);
  }
  Mods(const Mods&) = delete;
  Mods& operator=(const Mods&) = delete;
  LDAPMod** get() { return list_.data(); }

 private:
  const AttrList attrs_;
  std::vector<LDAPMod> mods_;
  std::vector<std::vector<berval>> vals_;
  std::vector<std::vector<berval*>> ptrs_;
  std::vector<LDAPMod*> list_;
};


Values Opt(const std::string& v) { return v.empty() ? Values{} : Values{v}; }

constexpr std::string_view kLegacyServerPrefix =
    "/o=mbxmove/ou=First Administrative Group/cn=Configuration/cn=Servers/cn=";
std::string LegacyServerDn(const std::string& server) {
  return server.empty() ? "" : std::string(kLegacyServerPrefix) + server;
}

AttrList UserAttrs(const UserRecord& u) {
  return {{"objectClass", {"top", "mbxUser"}},
          {"cn", {u.name}},
          {"mailNickname", {u.name}},
          {"msExchMailboxGuid", {std::string(u.mailbox.AsKey())}},
          {"homeMDB", Opt(u.home_mdb)},
          {"msExchHomeServerName", Opt(LegacyServerDn(u.home_server))},
          {"mail", Opt(u.smtp)},
          {"displayName", Opt(u.display_name)}};
}
AttrList StoreAttrs(const StoreRecord& s) {
  return {{"objectClass", {"top", "mbxStore"}},
          {"cn", {s.name}},
          {"mbxStoreDN", {s.dn}},
          {"mbxServerName", {s.server}},
          {"mbxCreated", Opt(s.created)}};
}
AttrList ServerAttrs(const ServerRecord& s) {
  return {{"objectClass", {"top", "mbxServer"}}, {"cn", {s.name}}, {"mbxServerAddress", Opt(s.address)}};
}
AttrList MoveAttrs(const MoveRecord& m) {
  return {{"objectClass", {"top", "mbxMove"}},
          {"cn", {m.mailbox.ToString()}},
          {"msExchMailboxGuid", {std::string(m.mailbox.AsKey())}},
          {"mbxMoveUser", Opt(m.user)},
          {"mbxMoveSource", Opt(m.source)},
          {"mbxMoveTarget", {m.target}},
          {"mbxMoveStep", {std::string(MoveStepName(m.step))}},
          {"mbxMoveStarted", Opt(m.started)},
          {"mbxMoveKeepSource", {m.keep_source ? "TRUE" : "FALSE"}}};
}
// A queue entry at `version` (the version it will have once written).
AttrList QueueAttrs(const QueueEntry& e, uint64_t version) {
  return {{"objectClass", {"top", "mbxQueueEntry"}},
          {"cn", {e.mailbox.ToString()}},
          {"msExchMailboxGuid", {std::string(e.mailbox.AsKey())}},
          {"mbxMoveUser", Opt(e.user)},
          {"mbxMoveSource", Opt(e.source)},
          {"mbxMoveTarget", Opt(e.target)},
          {"mbxQueueState", {std::string(QueueStateName(e.state))}},
          {"mbxOwner", Opt(e.owner)},
          {"mbxLeaseUntil", {std::to_string(e.lease_until_ms)}},
          {"mbxQueueAttempts", {std::to_string(e.attempts)}},
          {"mbxQueueBatch", Opt(e.batch)},
          {"mbxQueueBadItemLimit", {std::to_string(e.bad_item_limit)}},
          {"mbxMoveKeepSource", {e.keep_source ? "TRUE" : "FALSE"}},
          {"mbxQueued", Opt(e.queued)},
          {"mbxQueueResult", Opt(e.result)},
          {"mbxVersion", {std::to_string(version)}}};
}
AttrList LeaseAttrs(const Lease& l, uint64_t version) {
  return {{"objectClass", {"top", "mbxLease"}},
          {"cn", {l.name}},
          {"mbxOwner", Opt(l.owner)},
          {"mbxLeaseUntil", {std::to_string(l.until_ms)}},
          {"mbxLeaseHolds", Opt(l.holds)},
          {"mbxVersion", {std::to_string(version)}}};
}
// A batch at `version`. The target, keep-source and creation time reuse
// the move record's and the store's attributes; each member is one value
// of mbxBatchMember (BatchMemberToJson, with its index).
AttrList BatchAttrs(const BatchRecord& b, uint64_t version) {
  Values members;
  members.reserve(b.members.size());
  for (size_t i = 0; i < b.members.size(); ++i) members.push_back(BatchMemberToJson(b.members[i], i));
  return {{"objectClass", {"top", "mbxBatch"}},
          {"cn", {b.name}},
          {"mbxMoveTarget", Opt(b.target)},
          {"mbxBatchState", {std::string(BatchStateName(b.state))}},
          {"mbxBatchConcurrency", {std::to_string(b.concurrency)}},
          {"mbxBatchBadItemLimit", {std::to_string(b.bad_item_limit)}},
          {"mbxMoveKeepSource", {b.keep_source ? "TRUE" : "FALSE"}},
          {"mbxBatchSyncInterval", {std::to_string(b.sync_interval_ms)}},
          {"mbxBatchCompleteAt", {std::to_string(b.complete_at_ms)}},
          {"mbxBatchCompleteDelay", {std::to_string(b.complete_delay_ms)}},
          {"mbxBatchCancelAfter", {std::to_string(b.cancel_after_ms)}},
          {"mbxCreated", Opt(b.created)},
          {"mbxBatchStarted", {std::to_string(b.started_ms)}},
          {"mbxBatchFinished", {std::to_string(b.finished_ms)}},
          {"mbxBatchRunner", Opt(b.runner)},
          {"mbxBatchResult", Opt(b.result)},
          {"mbxBatchMember", std::move(members)},
          {"mbxVersion", {std::to_string(version)}}};
}
// The assertion that a versioned entry is still at `version`.
std::string VersionAssertion(uint64_t version) { return "(mbxVersion=" + std::to_string(version) + ")"; }

// The attributes a replace sets (all but the naming ones).
AttrList ForReplace(AttrList a) {
  std::erase_if(a, [](const auto& p) { return p.first == "objectClass" || p.first == "cn"; });
  return a;
}

// Reads validated attributes of one entry; the first problem becomes
// Corruption quoting the entry and the attribute.
class Reader {
 public:
  explicit Reader(const Entry& e) : e_(e) {}
  // A single-valued attribute; "" when absent and optional.
  std::string One(const std::string& attr, bool required) {
    auto it = e_.attrs.find(Lower(attr));
    if (it == e_.attrs.end() || it->second.empty()) {
      if (required) Fail(attr, "is missing");
      return "";
    }
    if (it->second.size() != 1) Fail(attr, "holds " + std::to_string(it->second.size()) + " values, not one");
    return it->second[0];
  }
  // Every value of a multi-valued attribute; none when absent.
  const Values& All(const std::string& attr) {
    static const Values kNone;
    auto it = e_.attrs.find(Lower(attr));
    return it == e_.attrs.end() ? kNone : it->second;
  }
  Guid GuidOf(const std::string& attr) {
    const std::string v = One(attr, true);
    Guid g;
    if (!status_.ok()) return g;
    if (v.size() != 16) {
      Fail(attr, "holds " + std::to_string(v.size()) + " bytes, not a 16-byte GUID");
    } else {
      std::memcpy(g.bytes.data(), v.data(), 16);
    }
    return g;
  }
  // A single-valued INTEGER attribute that fits T; 0 when absent and optional.
  template <typename T>
  T Number(const std::string& attr, bool required) {
    const std::string v = One(attr, required);
    T n{};
    if (!status_.ok() || v.empty()) return n;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || end != v.data() + v.size()) {
      Fail(attr, "('" + v + "') is not a number this version can read");
    }
    return n;
  }
  // A single-valued Boolean attribute (TRUE or FALSE); false when absent and
  // optional.
  bool Boolean(const std::string& attr, bool required) {
    const std::string v = One(attr, required);
    if (v == "TRUE") return true;
    if (!v.empty() && v != "FALSE") Fail(attr, "is not TRUE or FALSE");
    return false;
  }
  void Fail(const std::string& attr, const std::string& why) {
    if (status_.ok()) {
      status_ = Status::Corruption("damaged directory entry " + e_.dn + ": attribute " + attr + " " + why);
    }
  }
  const Status& status() const { return status_; }

 private:
  const Entry& e_;
  Status status_;
};

Result<UserRecord> ToUser(const Entry& e) {
  Reader r(e);
  UserRecord u;
  u.name = r.One("mailNickname", true);
  u.mailbox = r.GuidOf("msExchMailboxGuid");
  u.home_mdb = CanonicalDn(r.One("homeMDB", false));
  u.smtp = r.One("mail", false);
  u.display_name = r.One("displayName", false);
  const std::string server = r.One("msExchHomeServerName", false);
  if (!server.empty()) {
    const size_t at = server.rfind("/cn=");
    if (at == std::string::npos || at + 4 >= server.size()) {
      r.Fail("msExchHomeServerName", "is not a legacy server DN ('" + server + "')");
    } else {
      u.home_server = server.substr(at + 4);
    }
  }
  if (!r.status().ok()) return r.status();
  return u;
}

Result<StoreRecord> ToStore(const Entry& e) {
  Reader r(e);
  StoreRecord s;
  s.name = r.One("cn", true);
  s.dn = CanonicalDn(r.One("mbxStoreDN", true));
  s.server = r.One("mbxServerName", true);
  s.created = r.One("mbxCreated", false);
  if (!r.status().ok()) return r.status();
  return s;
}

Result<ServerRecord> ToServer(const Entry& e) {
  Reader r(e);
  ServerRecord s;
  s.name = r.One("cn", true);
  s.address = r.One("mbxServerAddress", false);
  if (!r.status().ok()) return r.status();
  return s;
}

Result<MoveRecord> ToMove(const Entry& e) {
  Reader r(e);
  MoveRecord m;
  m.mailbox = r.GuidOf("msExchMailboxGuid");
  const std::string cn = r.One("cn", true);
  if (r.status().ok()) {
    auto g = Guid::Parse(cn);
    if (!g || *g != m.mailbox) r.Fail("cn", "('" + cn + "') is not the GUID msExchMailboxGuid holds");
  }
  m.user = r.One("mbxMoveUser", false);
  m.source = r.One("mbxMoveSource", false);
  m.target = r.One("mbxMoveTarget", true);
  const std::string step = r.One("mbxMoveStep", true);
  if (r.status().ok()) {
    auto s = ParseMoveStep(step);
    if (!s) {
      r.Fail("mbxMoveStep", "holds an unknown step '" + step + "'");
    } else {
      m.step = *s;
    }
  }
  m.started = r.One("mbxMoveStarted", false);
  const std::string keep = r.One("mbxMoveKeepSource", false);
  if (keep == "TRUE") {
    m.keep_source = true;
  } else if (!keep.empty() && keep != "FALSE") {
    r.Fail("mbxMoveKeepSource", "is not TRUE or FALSE");
  }
  if (!r.status().ok()) return r.status();
  return m;
}

Result<QueueEntry> ToQueueEntry(const Entry& e) {
  Reader r(e);
  QueueEntry q;
  q.mailbox = r.GuidOf("msExchMailboxGuid");
  const std::string cn = r.One("cn", true);
  if (r.status().ok()) {
    auto g = Guid::Parse(cn);
    if (!g || *g != q.mailbox) r.Fail("cn", "('" + cn + "') is not the GUID msExchMailboxGuid holds");
  }
  q.user = r.One("mbxMoveUser", false);
  q.source = r.One("mbxMoveSource", false);
  q.target = r.One("mbxMoveTarget", false);
  const std::string state = r.One("mbxQueueState", true);
  if (r.status().ok()) {
    auto st = ParseQueueState(state);
    if (!st) {
      r.Fail("mbxQueueState", "holds an unknown state '" + state + "'");
    } else {
      q.state = *st;
    }
  }
  q.owner = r.One("mbxOwner", false);
  q.lease_until_ms = r.Number<int64_t>("mbxLeaseUntil", true);
  q.attempts = r.Number<uint32_t>("mbxQueueAttempts", true);
  q.batch = r.One("mbxQueueBatch", false);
  q.bad_item_limit = r.Number<uint32_t>("mbxQueueBadItemLimit", true);
  q.keep_source = r.Boolean("mbxMoveKeepSource", true);
  q.queued = r.One("mbxQueued", false);
  q.result = r.One("mbxQueueResult", false);
  q.version = r.Number<uint64_t>("mbxVersion", true);
  if (r.status().ok() && q.version == 0) r.Fail("mbxVersion", "is 0 (versions start at 1)");
  if (!r.status().ok()) return r.status();
  return q;
}

Result<Lease> ToLease(const Entry& e) {
  Reader r(e);
  Lease l;
  l.name = r.One("cn", true);
  if (r.status().ok() && !ValidateLeaseName(l.name).ok()) {
    r.Fail("cn", "('" + l.name + "') is not a lease name (1-128 of letters, digits, '.', '_', '-')");
  }
  l.owner = r.One("mbxOwner", false);
  l.until_ms = r.Number<int64_t>("mbxLeaseUntil", true);
  l.holds = r.One("mbxLeaseHolds", false);
  l.version = r.Number<uint64_t>("mbxVersion", true);
  if (r.status().ok() && l.version == 0) r.Fail("mbxVersion", "is 0 (versions start at 1)");
  if (!r.status().ok()) return r.status();
  return l;
}

Result<BatchRecord> ToBatch(const Entry& e) {
  Reader r(e);
  BatchRecord b;
  b.name = r.One("cn", true);
  if (r.status().ok() && !ValidateBatchName(b.name).ok()) {
    r.Fail("cn", "('" + b.name + "') is not a batch name (1-64 of letters, digits, '.', '_', '-')");
  }
  b.target = r.One("mbxMoveTarget", false);
  const std::string state = r.One("mbxBatchState", true);
  if (r.status().ok()) {
    auto st = ParseBatchState(state);
    if (!st) {
      r.Fail("mbxBatchState", "holds an unknown state '" + state + "'");
    } else {
      b.state = *st;
    }
  }
  b.concurrency = r.Number<uint32_t>("mbxBatchConcurrency", true);
  b.bad_item_limit = r.Number<uint32_t>("mbxBatchBadItemLimit", true);
  b.keep_source = r.Boolean("mbxMoveKeepSource", true);
  b.sync_interval_ms = r.Number<int64_t>("mbxBatchSyncInterval", true);
  b.complete_at_ms = r.Number<int64_t>("mbxBatchCompleteAt", true);
  b.complete_delay_ms = r.Number<int64_t>("mbxBatchCompleteDelay", true);
  b.cancel_after_ms = r.Number<int64_t>("mbxBatchCancelAfter", true);
  b.created = r.One("mbxCreated", false);
  b.started_ms = r.Number<int64_t>("mbxBatchStarted", true);
  b.finished_ms = r.Number<int64_t>("mbxBatchFinished", true);
  b.runner = r.One("mbxBatchRunner", false);
  b.result = r.One("mbxBatchResult", false);
  // The members, in the order of their indexes, which must be 0..n-1.
  const Values& values = r.All("mbxBatchMember");
  std::vector<std::optional<BatchMember>> members(values.size());
  for (const std::string& v : values) {
    if (!r.status().ok()) break;
    size_t index = 0;
    auto m = ParseBatchMemberJson(v, &index);
    if (!m.ok()) {
      r.Fail("mbxBatchMember", "holds a value this version cannot read (" + m.status().message() + ")");
    } else if (index >= members.size() || members[index].has_value()) {
      r.Fail("mbxBatchMember", "holds index " + std::to_string(index) + " twice or out of 0-" +
                                   std::to_string(members.size() - 1));
    } else {
      members[index] = std::move(m).value();
    }
  }
  if (r.status().ok()) {
    b.members.reserve(members.size());
    for (auto& m : members) b.members.push_back(std::move(*m));
  }
  b.version = r.Number<uint64_t>("mbxVersion", true);
  if (r.status().ok() && b.version == 0) r.Fail("mbxVersion", "is 0 (versions start at 1)");
  if (!r.status().ok()) return r.status();
  return b;
}

// NotFound for a batch, as every backend words it.
Status NoBatch(const Status& s, const std::string& name) {
  return s.IsNotFound() ? Status::NotFound("no batch named '" + name + "' in the directory") : s;
}

// How a listing names an entry it skips as damaged: its cn (for a queue
// entry, the mailbox GUID), else its DN.
std::string NameOf(const Entry& e) {
  auto it = e.attrs.find("cn");
  return it != e.attrs.end() && it->second.size() == 1 ? it->second[0] : e.dn;
}

std::string DescribeMove(const MoveRecord& m) {
  return m.source.empty() ? "an import into " + m.target + " (step " + std::string(MoveStepName(m.step)) + ")"
                          : "a move " + m.source + " -> " + m.target + " (step " +
                                std::string(MoveStepName(m.step)) + ")";
}

bool ConnectionLost(int rc) { return rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_TIMEOUT; }

// The assertion that a move record is at `from` with m's source and target.
std::string MoveAssertion(const MoveRecord& m, MoveStep from) {
  const std::string source =
      m.source.empty() ? "(!(mbxMoveSource=*))" : "(mbxMoveSource=" + EscapeFilterValue(m.source) + ")";
  return "(&(mbxMoveStep=" + std::string(MoveStepName(from)) + ")" + source +
         "(mbxMoveTarget=" + EscapeFilterValue(m.target) + "))";
}

// --- the backend -------------------------------------------------------------

class LdapDirectory final : public Directory {
 public:
  ~LdapDirectory() override {
    if (ld_) ldap_unbind_ext_s(ld_, nullptr, nullptr);
  }
  Status Open(const LdapConfig& config, bool create);
  std::string Describe() const override { return config_.UrlWithBase(); }

  Status PutStore(const StoreRecord& s) override {
    return Put(StoreDn(s.name), StoreAttrs(s));
  }
  Result<StoreRecord> GetStore(const std::string& name) override;
  Status ListStores(std::vector<StoreRecord>* out) override;
  Status PutServer(const ServerRecord& s) override { return Put(ServerDn(s.name), ServerAttrs(s)); }
  Result<ServerRecord> GetServer(const std::string& name) override;
  Status ListServers(std::vector<ServerRecord>* out) override;
  Status PutUsers(const std::vector<UserRecord>& users) override;
  Result<UserRecord> GetUser(const std::string& name) override;
  Result<UserRecord> GetUserByMailbox(const Guid& mailbox) override;
  Status ListUsers(std::vector<UserRecord>* out) override;
  Status SwitchHome(const Guid& mailbox, const StoreRecord& target, const MoveRecord& record) override;
  bool SwitchIsOneWrite() const override { return false; }  // homeMDB, then the record: see the file's head
  Status CreateMove(const MoveRecord& m) override;
  Status AdvanceMove(const MoveRecord& m, MoveStep from, bool sync) override;
  Status PutMove(const MoveRecord& m, bool sync) override;
  Result<MoveRecord> GetMove(const Guid& mailbox) override;
  Status ListMoves(std::vector<MoveRecord>* out) override;
  Status DeleteMove(const Guid& mailbox) override;
  Status Sync() override { return Status::Ok(); }
  Status AddQueueEntry(QueueEntry* e) override;
  Result<QueueEntry> GetQueueEntry(const Guid& mailbox) override;
  Status ListQueue(std::vector<QueueEntry>* out, std::vector<std::string>* damaged) override;
  Status UpdateQueueEntry(QueueEntry* e) override;
  Status DeleteQueueEntry(const Guid& mailbox, uint64_t version) override;
  Status AddLease(Lease* l) override;
  Result<Lease> GetLease(const std::string& name) override;
  Status ListLeases(std::vector<Lease>* out) override;
  Status UpdateLease(Lease* l) override;
  Status DeleteLease(const std::string& name, uint64_t version) override;
  Status AddBatch(BatchRecord* b) override;
  Result<BatchRecord> GetBatch(const std::string& name) override;
  Status ListBatches(std::vector<BatchRecord>* out, std::vector<std::string>* damaged) override;
  Status UpdateBatch(BatchRecord* b) override;
  Status DeleteBatch(const std::string& name, uint64_t version) override;

 private:
  std::string Container(const char* ou) const { return std::string("ou=") + ou + "," + config_.base_dn; }
  std::string UserDn(const std::string& n) const { return "cn=" + EscapeDnValue(n) + "," + Container("users"); }
  std::string StoreDn(const std::string& n) const { return "cn=" + EscapeDnValue(n) + "," + Container("stores"); }
  std::string ServerDn(const std::string& n) const { return "cn=" + EscapeDnValue(n) + "," + Container("servers"); }
  std::string MoveDn(const Guid& g) const { return "cn=" + g.ToString() + "," + Container("moves"); }
  std::string QueueDn(const Guid& g) const { return "cn=" + g.ToString() + "," + Container("queue"); }
  std::string LeaseDn(const std::string& n) const { return "cn=" + EscapeDnValue(n) + "," + Container("leases"); }
  std::string BatchDn(const std::string& n) const { return "cn=" + EscapeDnValue(n) + "," + Container("batches"); }

  // Connects and binds (mu_ held).
  Status ConnectLocked();
  // Runs op(ld) on a live connection (mu_ held by the caller of Call), with
  // one retry on a new connection when `retry` and the connection failed.
  template <typename Op>
  int Call(Op op, bool retry, bool write = true);
  Status ServerError(int rc, const std::string& what) const;

  // dn's entry (base scope) or every entry one level under dn matching filter.
  Status Search(const std::string& dn, int scope, const std::string& filter, std::vector<Entry>* out);
  Result<Entry> Read(const std::string& dn, std::string_view what, std::string_view shown);
  // Adds the entry, or replaces its attributes when it exists.
  Status Put(const std::string& dn, const AttrList& attrs);
  // A modify carrying a critical Assertion control; returns the LDAP code.
  int GuardedModify(const std::string& dn, const AttrList& attrs, const std::string& assertion);
  // A delete carrying a critical Assertion control (none when `assertion` is
  // empty); returns the LDAP code. Not repeated when the connection fails.
  int GuardedDelete(const std::string& dn, const std::string& assertion);
  // Adds the entry unless it exists (creating a container, the base); any
  // request repeated on a new connection, which cannot do harm.
  Status AddIfMissing(const std::string& dn, const AttrList& attrs);
  Status AddContainer(const char* ou);
  // Every entry one level under container `ou` matching filter; none when
  // the container is missing (a base made by a version without it).
  Status SearchContainer(const char* ou, const std::string& filter, std::vector<Entry>* out);
  // The versioned entries (queue entries, leases, batches), the
  // compare-and-swap of the embedded backend's AddVersioned/ReplaceVersioned:
  // an add at version 1 (AlreadyExists if present), creating container `ou`
  // if a base made by an older version lacks it; and a replace (attrs) or
  // delete (null) that asserts (mbxVersion=expected) -- Conflict when another
  // writer came first, NotFound when the entry is gone. A delete at version 0
  // asserts nothing. Guarded, so never repeated: a connection lost in flight
  // is IOError, the write may or may not have happened.
  Status AddVersioned(const char* ou, const std::string& dn, const std::string& what, const std::string& shown,
                      const AttrList& attrs);
  Status ReplaceVersioned(const std::string& dn, const std::string& what, const std::string& shown, uint64_t expected,
                          const AttrList* attrs);
  Result<MoveRecord> RawMove(const Guid& mailbox);
  // The reconcile rule: a record at 'verified' (the target holds the whole
  // copy, checked) whose user's homeMDB already names the target store
  // passed the commit point (the switch's second write, the record's step,
  // did not happen).
  Status Reconcile(MoveRecord* m);
  // The store's record, read once per directory: SwitchHome asserts homeMDB
  // against the source's DN, and a stale DN fails that assertion (Conflict,
  // nothing changed) rather than switching wrongly.
  Result<StoreRecord> CachedStore(const std::string& name);
  Status CheckSchema();
  Status CreateBase();

  LdapConfig config_;
  std::string password_;
  std::mutex cache_mu_;
  std::map<std::string, StoreRecord> store_cache_;  // GUARDED_BY(cache_mu_)
  std::mutex mu_;
  LDAP* ld_ = nullptr;  // GUARDED_BY(mu_)
};

Status LdapDirectory::ServerError(int rc, const std::string& what) const {
  std::string msg = what + " at " + config_.url + ": " + ldap_err2string(rc);
  if (ConnectionLost(rc)) return Status::IOError("cannot reach the directory server " + config_.url + " (" + msg + ")");
  if (rc == LDAP_UNDEFINED_TYPE || rc == LDAP_OBJECT_CLASS_VIOLATION) {
    return Status::InvalidArgument(msg + " (is tools/ldap/mbxmove.schema loaded in that server?)");
  }
  if (rc == LDAP_INSUFFICIENT_ACCESS || rc == LDAP_INAPPROPRIATE_AUTH) {
    return Status::InvalidArgument(msg + " (" + config_.bind_dn + " may not do this)");
  }
  return Status::IOError(msg);
}

Status LdapDirectory::ConnectLocked() {
  if (ld_) {
    ldap_unbind_ext_s(ld_, nullptr, nullptr);
    ld_ = nullptr;
  }
  LDAP* ld = nullptr;
  int rc = ldap_initialize(&ld, config_.url.c_str());
  if (rc != LDAP_SUCCESS) {
    if (ld) ldap_unbind_ext_s(ld, nullptr, nullptr);
    return Status::InvalidArgument("bad directory URL '" + config_.url + "': " + ldap_err2string(rc));
  }
  int v3 = LDAP_VERSION3;
  timeval tv{kTimeoutSeconds, 0};
  ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
  ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
  ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
  ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
  ldap_set_option(ld, LDAP_OPT_RESTART, LDAP_OPT_ON);
  berval cred{password_.size(), password_.data()};
  CountOperations();
  rc = ldap_sasl_bind_s(ld, config_.bind_dn.c_str(), LDAP_SASL_SIMPLE, &cred, nullptr, nullptr, nullptr);
  if (rc != LDAP_SUCCESS) {
    ldap_unbind_ext_s(ld, nullptr, nullptr);
    if (rc == LDAP_INVALID_CREDENTIALS) {
      return Status::InvalidArgument("the directory server " + config_.url + " refused the bind as " +
                                     config_.bind_dn + ": wrong password? (" + config_.password_file + ")");
    }
    if (rc == LDAP_INVALID_DN_SYNTAX) {
      return Status::InvalidArgument("bind DN '" + config_.bind_dn + "' is not a valid DN");
    }
    if (ConnectionLost(rc)) {
      return Status::IOError("cannot reach the directory server " + config_.url + ": " + ldap_err2string(rc));
    }
    return ServerError(rc, "binding as " + config_.bind_dn);
  }
  ld_ = ld;
  return Status::Ok();
}

// True when an idle connection's socket shows the server has closed it (or
// sent something unasked, such as a notice of disconnection).
bool IdleConnectionDead(LDAP* ld) {
  int fd = -1;
  if (ldap_get_option(ld, LDAP_OPT_DESC, &fd) != LDAP_OPT_SUCCESS || fd < 0) return true;
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  int n = ::poll(&p, 1, 0);
  return n != 0;
}

template <typename Op>
int LdapDirectory::Call(Op op, bool retry, bool write) {
  if (!ld_ || IdleConnectionDead(ld_)) {
    if (!ConnectLocked().ok()) return LDAP_SERVER_DOWN;
  }
  CountOperations();
  if (write) CountWrites();
  int rc = op(ld_);
  if (ConnectionLost(rc) && retry) {
    if (!ConnectLocked().ok()) return rc;
    CountOperations();
    if (write) CountWrites();
    rc = op(ld_);
  }
  if (ConnectionLost(rc) && ld_) {
    ldap_unbind_ext_s(ld_, nullptr, nullptr);
    ld_ = nullptr;
  }
  return rc;
}

Status LdapDirectory::Search(const std::string& dn, int scope, const std::string& filter, std::vector<Entry>* out) {
  out->clear();
  std::lock_guard<std::mutex> l(mu_);
  LDAPMessage* res = nullptr;
  int rc = Call(
      [&](LDAP* ld) {
        if (res) {
          ldap_msgfree(res);
          res = nullptr;
        }
        return ldap_search_ext_s(ld, dn.c_str(), scope, filter.c_str(), nullptr, 0, nullptr, nullptr, nullptr, 0,
                                 &res);
      },
      true, /*write=*/false);
  if (rc != LDAP_SUCCESS) {
    if (res) ldap_msgfree(res);
    if (rc == LDAP_NO_SUCH_OBJECT) return Status::NotFound(dn + " does not exist");
    return ServerError(rc, "searching " + dn);
  }
  for (LDAPMessage* e = ldap_first_entry(ld_, res); e; e = ldap_next_entry(ld_, e)) {
    Entry entry;
    if (char* d = ldap_get_dn(ld_, e)) {
      entry.dn = d;
      ldap_memfree(d);
    }
    BerElement* ber = nullptr;
    for (char* a = ldap_first_attribute(ld_, e, &ber); a; a = ldap_next_attribute(ld_, e, ber)) {
      Values& vs = entry.attrs[Lower(a)];
      if (berval** bv = ldap_get_values_len(ld_, e, a)) {
        for (berval** p = bv; *p; ++p) vs.emplace_back((*p)->bv_val, (*p)->bv_len);
        ldap_value_free_len(bv);
      }
      ldap_memfree(a);
    }
    if (ber) ber_free(ber, 0);
    out->push_back(std::move(entry));
  }
  ldap_msgfree(res);
  return Status::Ok();
}

Result<Entry> LdapDirectory::Read(const std::string& dn, std::string_view what, std::string_view shown) {
  std::vector<Entry> es;
  Status s = Search(dn, LDAP_SCOPE_BASE, "(objectClass=*)", &es);
  if (s.IsNotFound() || (s.ok() && es.empty())) {
    return Status::NotFound(std::string(what) + " '" + std::string(shown) + "' is not in the directory");
  }
  if (!s.ok()) return s;
  return std::move(es[0]);
}

Status LdapDirectory::Put(const std::string& dn, const AttrList& attrs) {
  // Add, or replace: each repeated with the same content on a new connection
  // if the first one was lost in flight, which cannot do harm.
  std::lock_guard<std::mutex> l(mu_);
  Mods add(attrs, LDAP_MOD_ADD);
  int rc = Call([&](LDAP* ld) { return ldap_add_ext_s(ld, dn.c_str(), add.get(), nullptr, nullptr); }, true);
  if (rc == LDAP_ALREADY_EXISTS) {
    Mods rep(ForReplace(attrs), LDAP_MOD_REPLACE);
    rc = Call([&](LDAP* ld) { return ldap_modify_ext_s(ld, dn.c_str(), rep.get(), nullptr, nullptr); }, true);
  }
  if (rc != LDAP_SUCCESS) return ServerError(rc, "writing " + dn);
  return Status::Ok();
}

int LdapDirectory::GuardedModify(const std::string& dn, const AttrList& attrs, const std::string& assertion) {
  std::lock_guard<std::mutex> l(mu_);
  Mods rep(attrs, LDAP_MOD_REPLACE);
  return Call(
      [&](LDAP* ld) {
        LDAPControl* ctrl = nullptr;
        int rc = ldap_create_assertion_control(ld, const_cast<char*>(assertion.c_str()), 1, &ctrl);
        if (rc != LDAP_SUCCESS) return rc;
        LDAPControl* ctrls[] = {ctrl, nullptr};
        rc = ldap_modify_ext_s(ld, dn.c_str(), rep.get(), ctrls, nullptr);
        ldap_control_free(ctrl);
        return rc;
      },
      false);
}

Result<StoreRecord> LdapDirectory::GetStore(const std::string& name) {
  MBX_ASSIGN_OR_RETURN(Entry e, Read(StoreDn(name), "store", name));
  return ToStore(e);
}

Result<StoreRecord> LdapDirectory::CachedStore(const std::string& name) {
  {
    std::lock_guard<std::mutex> l(cache_mu_);
    auto it = store_cache_.find(name);
    if (it != store_cache_.end()) return it->second;
  }
  MBX_ASSIGN_OR_RETURN(StoreRecord r, GetStore(name));
  std::lock_guard<std::mutex> l(cache_mu_);
  store_cache_[name] = r;
  return r;
}

Result<ServerRecord> LdapDirectory::GetServer(const std::string& name) {
  MBX_ASSIGN_OR_RETURN(Entry e, Read(ServerDn(name), "server", name));
  return ToServer(e);
}

Result<UserRecord> LdapDirectory::GetUser(const std::string& name) {
  MBX_ASSIGN_OR_RETURN(Entry e, Read(UserDn(name), "user", name));
  return ToUser(e);
}

template <typename T, typename Fn>
Status ListOf(const std::vector<Entry>& es, Fn to, std::vector<T>* out) {
  out->clear();
  for (const Entry& e : es) {
    MBX_ASSIGN_OR_RETURN(T t, to(e));
    out->push_back(std::move(t));
  }
  return Status::Ok();
}

Status LdapDirectory::ListStores(std::vector<StoreRecord>* out) {
  std::vector<Entry> es;
  MBX_RETURN_IF_ERROR(Search(Container("stores"), LDAP_SCOPE_ONELEVEL, "(objectClass=mbxStore)", &es));
  return ListOf(es, ToStore, out);
}

Status LdapDirectory::ListServers(std::vector<ServerRecord>* out) {
  std::vector<Entry> es;
  MBX_RETURN_IF_ERROR(Search(Container("servers"), LDAP_SCOPE_ONELEVEL, "(objectClass=mbxServer)", &es));
  return ListOf(es, ToServer, out);
}

Status LdapDirectory::ListUsers(std::vector<UserRecord>* out) {
  std::vector<Entry> es;
  MBX_RETURN_IF_ERROR(Search(Container("users"), LDAP_SCOPE_ONELEVEL, "(objectClass=mbxUser)", &es));
  return ListOf(es, ToUser, out);
}

Status LdapDirectory::PutUsers(const std::vector<UserRecord>& users) {
  // LDAP has no multi-entry transaction: users are written one by one, each
  // durable when its request returns. A failure part-way leaves the users
  // before it written; the call is idempotent, so repeating it completes it.
  for (const UserRecord& u : users) MBX_RETURN_IF_ERROR(Put(UserDn(u.name), UserAttrs(u)));
  return Status::Ok();
}

Result<UserRecord> LdapDirectory::GetUserByMailbox(const Guid& mailbox) {
  std::vector<Entry> es;
  MBX_RETURN_IF_ERROR(Search(Container("users"), LDAP_SCOPE_ONELEVEL,
                             "(&(objectClass=mbxUser)(msExchMailboxGuid=" + EscapeFilterValue(mailbox.AsKey()) + "))",
                             &es));
  if (es.empty()) return Status::NotFound("mailbox " + mailbox.ToString() + " belongs to no user in the directory");
  if (es.size() > 1) {
    return Status::Corruption("mailbox " + mailbox.ToString() + " belongs to two users in the directory: " + es[0].dn +
                              " and " + es[1].dn);
  }
  return ToUser(es[0]);
}

Result<MoveRecord> LdapDirectory::RawMove(const Guid& mailbox) {
  auto e = Read(MoveDn(mailbox), "move", mailbox.ToString());
  if (!e.ok()) {
    if (e.status().IsNotFound()) return Status::NotFound("no move record for " + mailbox.ToString());
    return e.status();
  }
  return ToMove(*e);
}

Status LdapDirectory::Reconcile(MoveRecord* m) {
  if (m->step != MoveStep::kVerified || m->source.empty()) return Status::Ok();
  auto target = GetStore(m->target);
  if (!target.ok()) return target.status().IsNotFound() ? Status::Ok() : target.status();
  auto user = GetUserByMailbox(m->mailbox);
  if (!user.ok()) return user.status().IsNotFound() ? Status::Ok() : user.status();
  if (!user->home_mdb.empty()) {
    // distinguishedNameMatch: compare normalised forms.
    auto norm = [](const std::string& dn) {
      char* out = nullptr;
      std::string r = Lower(dn);
      if (ldap_dn_normalize(dn.c_str(), LDAP_DN_FORMAT_LDAPV3, &out, LDAP_DN_FORMAT_LDAPV3) == LDAP_SUCCESS && out) {
        r = Lower(out);
        ldap_memfree(out);
      }
      return r;
    };
    if (norm(user->home_mdb) == norm(target->dn)) m->step = MoveStep::kSwitched;
  }
  return Status::Ok();
}

Result<MoveRecord> LdapDirectory::GetMove(const Guid& mailbox) {
  MBX_ASSIGN_OR_RETURN(MoveRecord m, RawMove(mailbox));
  MBX_RETURN_IF_ERROR(Reconcile(&m));
  return m;
}

Status LdapDirectory::ListMoves(std::vector<MoveRecord>* out) {
  std::vector<Entry> es;
  MBX_RETURN_IF_ERROR(Search(Container("moves"), LDAP_SCOPE_ONELEVEL, "(objectClass=mbxMove)", &es));
  MBX_RETURN_IF_ERROR(ListOf(es, ToMove, out));
  for (MoveRecord& m : *out) MBX_RETURN_IF_ERROR(Reconcile(&m));
  return Status::Ok();
}

Status LdapDirectory::CreateMove(const MoveRecord& m) {
  const std::string dn = MoveDn(m.mailbox);
  int rc;
  {
    std::lock_guard<std::mutex> l(mu_);
    Mods add(MoveAttrs(m), LDAP_MOD_ADD);
    rc = Call([&](LDAP* ld) { return ldap_add_ext_s(ld, dn.c_str(), add.get(), nullptr, nullptr); }, false);
  }
  if (rc == LDAP_SUCCESS) return Status::Ok();
  if (rc == LDAP_ALREADY_EXISTS) {
    auto cur = RawMove(m.mailbox);
    return Status::AlreadyExists("mailbox " + m.mailbox.ToString() + " already has " +
                                 (cur.ok() ? DescribeMove(*cur) : std::string("a move record")) +
                                 " recorded in the directory (" + dn + ")");
  }
  if (ConnectionLost(rc)) {
    return Status::IOError("creating the move record " + dn + ": the directory server " + config_.url +
                           " did not answer (" + ldap_err2string(rc) + "); the record may or may not exist");
  }
  return ServerError(rc, "creating the move record " + dn);
}

Status LdapDirectory::AdvanceMove(const MoveRecord& m, MoveStep from, bool /*sync: every write is durable*/) {
  const std::string dn = MoveDn(m.mailbox);
  int rc = GuardedModify(dn, ForReplace(MoveAttrs(m)), MoveAssertion(m, from));
  if (rc == LDAP_SUCCESS) return Status::Ok();
  if (rc == LDAP_NO_SUCH_OBJECT) {
    return Status::NotFound("no move record for " + m.mailbox.ToString() + " (another mover removed it)");
  }
  if (rc == LDAP_ASSERTION_FAILED) {
    auto cur = RawMove(m.mailbox);
    return Status::Conflict("the move record of " + m.mailbox.ToString() + " is now " +
                            (cur.ok() ? DescribeMove(*cur) : cur.status().ToString()) + ", not at step '" +
                            std::string(MoveStepName(from)) + "' as this move expected");
  }
  if (ConnectionLost(rc)) {
    return Status::IOError("advancing the move record " + dn + ": the directory server " + config_.url +
                           " did not answer (" + ldap_err2string(rc) + "); the step may or may not have changed");
  }
  return ServerError(rc, "advancing the move record " + dn);
}

Status LdapDirectory::PutMove(const MoveRecord& m, bool /*sync*/) { return Put(MoveDn(m.mailbox), MoveAttrs(m)); }

Status LdapDirectory::DeleteMove(const Guid& mailbox) {
  const std::string dn = MoveDn(mailbox);
  std::lock_guard<std::mutex> l(mu_);
  int rc = Call([&](LDAP* ld) { return ldap_delete_ext_s(ld, dn.c_str(), nullptr, nullptr); }, true);
  if (rc == LDAP_SUCCESS || rc == LDAP_NO_SUCH_OBJECT) return Status::Ok();
  return ServerError(rc, "deleting the move record " + dn);
}

Status LdapDirectory::SwitchHome(const Guid& mailbox, const StoreRecord& target, const MoveRecord& record) {
  // The move record must still be this move's, before the switch. (Read,
  // then written last: between the two only this move's owner -- the one
  // whose CreateMove succeeded -- writes the record.)
  auto cur = RawMove(mailbox);
  if (!cur.ok()) {
    if (cur.status().IsNotFound()) {
      return Status::Conflict("the move record of " + mailbox.ToString() + " is gone; the move did not switch");
    }
    return cur.status();
  }
  if (cur->source != record.source || cur->target != record.target || PastSwitch(cur->step)) {
    return Status::Conflict("the move record of " + mailbox.ToString() + " is now " + DescribeMove(*cur) +
                            "; the move did not switch");
  }
  MBX_ASSIGN_OR_RETURN(StoreRecord source, CachedStore(record.source));
  // The user's entry is named by the record (a search by mailbox GUID only
  // when the record does not name it).
  UserRecord user;
  if (!record.user.empty()) {
    user.name = record.user;
  } else {
    MBX_ASSIGN_OR_RETURN(user, GetUserByMailbox(mailbox));
  }
  // The commit point: one modify of the user's entry, asserting homeMDB
  // still names the source.
  const std::string user_dn = UserDn(user.name);
  int rc = GuardedModify(user_dn,
                         {{"homeMDB", {target.dn}}, {"msExchHomeServerName", Opt(LegacyServerDn(target.server))}},
                         "(homeMDB=" + EscapeFilterValue(source.dn) + ")");
  if (rc == LDAP_ASSERTION_FAILED) {
    auto now = GetUser(user.name);
    return Status::Conflict("homeMDB of " + user.name + " no longer names the source store " + record.source +
                            " (another writer set it to " + (now.ok() ? now->home_mdb : now.status().ToString()) +
                            "); the move did not switch");
  }
  if (rc == LDAP_NO_SUCH_OBJECT) {
    return Status::Conflict("user " + user.name + " was removed from the directory; the move did not switch");
  }
  if (ConnectionLost(rc)) {
    return Status::IOError("switching homeMDB of " + user.name + ": the directory server " + config_.url +
                           " did not answer (" + ldap_err2string(rc) + "); the switch may or may not have happened");
  }
  if (rc != LDAP_SUCCESS) return ServerError(rc, "switching homeMDB of " + user.name);
  // Past the commit point. The record's step follows; if that write is lost,
  // the reconcile rule (GetMove, ListMoves) reads the record as switched all
  // the same, because the record is at 'verified' and homeMDB names the
  // target: so the switch has happened either way.
  rc = GuardedModify(MoveDn(mailbox), ForReplace(MoveAttrs(record)), MoveAssertion(*cur, cur->step));
  if (rc == LDAP_SUCCESS || cur->step == MoveStep::kVerified) return Status::Ok();
  return Status::IOError("homeMDB of " + user.name + " was switched, but recording step 'switched' in " +
                         MoveDn(mailbox) + " failed: " + ldap_err2string(rc) + "; run 'mbxmove recover'");
}

// --- the queue, leases and batches ------------------------------------------

int LdapDirectory::GuardedDelete(const std::string& dn, const std::string& assertion) {
  std::lock_guard<std::mutex> l(mu_);
  return Call(
      [&](LDAP* ld) {
        if (assertion.empty()) return ldap_delete_ext_s(ld, dn.c_str(), nullptr, nullptr);
        LDAPControl* ctrl = nullptr;
        int rc = ldap_create_assertion_control(ld, const_cast<char*>(assertion.c_str()), 1, &ctrl);
        if (rc != LDAP_SUCCESS) return rc;
        LDAPControl* ctrls[] = {ctrl, nullptr};
        rc = ldap_delete_ext_s(ld, dn.c_str(), ctrls, nullptr);
        ldap_control_free(ctrl);
        return rc;
      },
      false);
}

Status LdapDirectory::SearchContainer(const char* ou, const std::string& filter, std::vector<Entry>* out) {
  Status s = Search(Container(ou), LDAP_SCOPE_ONELEVEL, filter, out);
  if (s.IsNotFound()) {
    out->clear();
    return Status::Ok();
  }
  return s;
}

Status LdapDirectory::AddVersioned(const char* ou, const std::string& dn, const std::string& what,
                                   const std::string& shown, const AttrList& attrs) {
  int rc = LDAP_SUCCESS;
  for (int attempt = 0; attempt < 2; ++attempt) {
    {
      std::lock_guard<std::mutex> l(mu_);
      Mods add(attrs, LDAP_MOD_ADD);
      rc = Call([&](LDAP* ld) { return ldap_add_ext_s(ld, dn.c_str(), add.get(), nullptr, nullptr); }, false);
    }
    // No such object on an add: the parent is missing, a base made by a
    // version without this container. Made, and the add tried once more.
    if (rc != LDAP_NO_SUCH_OBJECT || attempt > 0) break;
    MBX_RETURN_IF_ERROR(AddContainer(ou));
  }
  if (rc == LDAP_SUCCESS) return Status::Ok();
  if (rc == LDAP_ALREADY_EXISTS) {
    return Status::AlreadyExists(what + " '" + shown + "' is already in the directory (" + dn + ")");
  }
  if (ConnectionLost(rc)) {
    return Status::IOError("adding the " + what + " " + dn + ": the directory server " + config_.url +
                           " did not answer (" + ldap_err2string(rc) + "); the entry may or may not have been added");
  }
  return ServerError(rc, "adding the " + what + " " + dn);
}

Status LdapDirectory::ReplaceVersioned(const std::string& dn, const std::string& what, const std::string& shown,
                                       uint64_t expected, const AttrList* attrs) {
  const char* doing = attrs ? "updating" : "deleting";
  int rc = attrs ? GuardedModify(dn, ForReplace(*attrs), VersionAssertion(expected))
                 : GuardedDelete(dn, expected == 0 ? std::string() : VersionAssertion(expected));
  if (rc == LDAP_SUCCESS) return Status::Ok();
  if (rc == LDAP_NO_SUCH_OBJECT) return Status::NotFound(what + " '" + shown + "' is not in the directory");
  if (rc == LDAP_ASSERTION_FAILED) {
    // For the message only: the version another writer left.
    std::string now = "now unreadable";
    auto cur = Read(dn, what, shown);
    if (cur.ok()) {
      auto it = cur->attrs.find("mbxversion");
      if (it != cur->attrs.end() && it->second.size() == 1) now = "version " + it->second[0];
    } else if (cur.status().IsNotFound()) {
      now = "now removed";
    }
    return Status::Conflict(what + " '" + shown + "' changed (" + now + ", expected " + std::to_string(expected) +
                            "): another writer came first");
  }
  if (ConnectionLost(rc)) {
    return Status::IOError(std::string(doing) + " the " + what + " " + dn + ": the directory server " + config_.url +
                           " did not answer (" + ldap_err2string(rc) + "); the " + (attrs ? "update" : "delete") +
                           " may or may not have happened");
  }
  return ServerError(rc, std::string(doing) + " the " + what + " " + dn);
}

Status LdapDirectory::AddQueueEntry(QueueEntry* e) {
  MBX_RETURN_IF_ERROR(
      AddVersioned("queue", QueueDn(e->mailbox), "queue entry", e->mailbox.ToString(), QueueAttrs(*e, 1)));
  e->version = 1;
  return Status::Ok();
}

Result<QueueEntry> LdapDirectory::GetQueueEntry(const Guid& mailbox) {
  MBX_ASSIGN_OR_RETURN(Entry e, Read(QueueDn(mailbox), "queue entry", mailbox.ToString()));
  return ToQueueEntry(e);
}

Status LdapDirectory::ListQueue(std::vector<QueueEntry>* out, std::vector<std::string>* damaged) {
  out->clear();
  std::vector<Entry> es;
  MBX_RETURN_IF_ERROR(SearchContainer("queue", "(objectClass=mbxQueueEntry)", &es));
  for (const Entry& e : es) {
    auto q = ToQueueEntry(e);
    if (!q.ok()) {
      if (damaged == nullptr) return q.status();
      damaged->push_back(NameOf(e) + ": " + q.status().message());
      continue;
    }
    out->push_back(std::move(q).value());
  }
  // The embedded backend's order (by mailbox GUID bytes), not the server's.
  std::sort(out->begin(), out->end(), [](const QueueEntry& a, const QueueEntry& b) { return a.mailbox < b.mailbox; });
  return Status::Ok();
}

Status LdapDirectory::UpdateQueueEntry(QueueEntry* e) {
  const AttrList attrs = QueueAttrs(*e, e->version + 1);
  MBX_RETURN_IF_ERROR(
      ReplaceVersioned(QueueDn(e->mailbox), "queue entry", e->mailbox.ToString(), e->version, &attrs));
  ++e->version;
  return Status::Ok();
}

Status LdapDirectory::DeleteQueueEntry(const Guid& mailbox, uint64_t version) {
  return ReplaceVersioned(QueueDn(mailbox), "queue entry", mailbox.ToString(), version, nullptr);
}

Status LdapDirectory::AddLease(Lease* l) {
  MBX_RETURN_IF_ERROR(ValidateLeaseName(l->name));
  MBX_RETURN_IF_ERROR(AddVersioned("leases", LeaseDn(l->name), "lease", l->name, LeaseAttrs(*l, 1)));
  l->version = 1;
  return Status::Ok();
}

Result<Lease> LdapDirectory::GetLease(const std::string& name) {
  MBX_RETURN_IF_ERROR(ValidateLeaseName(name));
  MBX_ASSIGN_OR_RETURN(Entry e, Read(LeaseDn(name), "lease", name));
  return ToLease(e);
}

Status LdapDirectory::ListLeases(std::vector<Lease>* out) {
  std::vector<Entry> es;
  MBX_RETURN_IF_ERROR(SearchContainer("leases", "(objectClass=mbxLease)", &es));
  MBX_RETURN_IF_ERROR(ListOf(es, ToLease, out));
  std::sort(out->begin(), out->end(), [](const Lease& a, const Lease& b) { return a.name < b.name; });
  return Status::Ok();
}

Status LdapDirectory::UpdateLease(Lease* l) {
  MBX_RETURN_IF_ERROR(ValidateLeaseName(l->name));
  const AttrList attrs = LeaseAttrs(*l, l->version + 1);
  MBX_RETURN_IF_ERROR(ReplaceVersioned(LeaseDn(l->name), "lease", l->name, l->version, &attrs));
  ++l->version;
  return Status::Ok();
}

Status LdapDirectory::DeleteLease(const std::string& name, uint64_t version) {
  MBX_RETURN_IF_ERROR(ValidateLeaseName(name));
  return ReplaceVersioned(LeaseDn(name), "lease", name, version, nullptr);
}

Status LdapDirectory::AddBatch(BatchRecord* b) {
  MBX_RETURN_IF_ERROR(ValidateBatchName(b->name));
  MBX_RETURN_IF_ERROR(AddVersioned("batches", BatchDn(b->name), "batch", b->name, BatchAttrs(*b, 1)));
  b->version = 1;
  return Status::Ok();
}

Result<BatchRecord> LdapDirectory::GetBatch(const std::string& name) {
  MBX_RETURN_IF_ERROR(ValidateBatchName(name));
  auto e = Read(BatchDn(name), "batch", name);
  if (!e.ok()) return NoBatch(e.status(), name);
  return ToBatch(*e);
}

Status LdapDirectory::ListBatches(std::vector<BatchRecord>* out, std::vector<std::string>* damaged) {
  out->clear();
  std::vector<Entry> es;
  MBX_RETURN_IF_ERROR(SearchContainer("batches", "(objectClass=mbxBatch)", &es));
  for (const Entry& e : es) {
    auto b = ToBatch(e);
    if (!b.ok()) {
      if (damaged == nullptr) return b.status();
      damaged->push_back(NameOf(e) + ": " + b.status().message());
      continue;
    }
    out->push_back(std::move(b).value());
  }
  // The embedded backend's order (by name), not the server's.
  std::sort(out->begin(), out->end(), [](const BatchRecord& a, const BatchRecord& b) { return a.name < b.name; });
  return Status::Ok();
}

Status LdapDirectory::UpdateBatch(BatchRecord* b) {
  MBX_RETURN_IF_ERROR(ValidateBatchName(b->name));
  const AttrList attrs = BatchAttrs(*b, b->version + 1);
  MBX_RETURN_IF_ERROR(NoBatch(ReplaceVersioned(BatchDn(b->name), "batch", b->name, b->version, &attrs), b->name));
  ++b->version;
  return Status::Ok();
}

Status LdapDirectory::DeleteBatch(const std::string& name, uint64_t version) {
  MBX_RETURN_IF_ERROR(ValidateBatchName(name));
  return NoBatch(ReplaceVersioned(BatchDn(name), "batch", name, version, nullptr), name);
}

Status LdapDirectory::CheckSchema() {
  std::vector<Entry> root;
  MBX_RETURN_IF_ERROR(Search("", LDAP_SCOPE_BASE, "(objectClass=*)", &root));
  std::string subschema = "cn=Subschema";
  if (!root.empty()) {
    auto it = root[0].attrs.find("subschemasubentry");
    if (it != root[0].attrs.end() && !it->second.empty()) subschema = it->second[0];
  }
  // Operational attributes must be asked for by name.
  std::lock_guard<std::mutex> l(mu_);
  LDAPMessage* res = nullptr;
  char oc[] = "objectClasses";
  char* attrs[] = {oc, nullptr};
  int rc = Call(
      [&](LDAP* ld) {
        if (res) {
          ldap_msgfree(res);
          res = nullptr;
        }
        return ldap_search_ext_s(ld, subschema.c_str(), LDAP_SCOPE_BASE, "(objectClass=subschema)", attrs, 0,
                                 nullptr, nullptr, nullptr, 0, &res);
      },
      true, /*write=*/false);
  if (rc != LDAP_SUCCESS) {
    if (res) ldap_msgfree(res);
    return ServerError(rc, "reading the schema (" + subschema + ")");
  }
  std::string all;
  for (LDAPMessage* e = ldap_first_entry(ld_, res); e; e = ldap_next_entry(ld_, e)) {
    if (berval** bv = ldap_get_values_len(ld_, e, oc)) {
      for (berval** p = bv; *p; ++p) all.append((*p)->bv_val, (*p)->bv_len).append("\n");
      ldap_value_free_len(bv);
    }
  }
  ldap_msgfree(res);
  for (const char* name : {"'mbxUser'", "'mbxStore'", "'mbxServer'", "'mbxMove'"}) {
    if (all.find(name) == std::string::npos) {
      return Status::InvalidArgument("the directory server " + config_.url +
                                     " does not have mbxmove's schema (no object class " + name +
                                     "): load tools/ldap/mbxmove.schema into it");
    }
  }
  // The queue's and the batches' classes came later: a server with an older
  // copy of the schema is told to load this version's.
  for (const char* name : {"'mbxQueueEntry'", "'mbxLease'", "'mbxBatch'"}) {
    if (all.find(name) == std::string::npos) {
      return Status::InvalidArgument("the directory server " + config_.url +
                                     " has an older version of mbxmove's schema (no object class " + name +
                                     "): load this version's tools/ldap/mbxmove.schema into it");
    }
  }
  return Status::Ok();
}

Status LdapDirectory::CreateBase() {
  // The base entry: its class follows its RDN's attribute.
  LDAPDN parsed = nullptr;
  if (ldap_str2dn(config_.base_dn.c_str(), &parsed, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS || !parsed || !parsed[0]) {
    if (parsed) ldap_dnfree(parsed);
    return Status::InvalidArgument("base DN '" + config_.base_dn + "' is not a DN");
  }
  LDAPAVA* ava = parsed[0][0];
  const std::string type = Lower(std::string(ava->la_attr.bv_val, ava->la_attr.bv_len));
  const std::string value(ava->la_value.bv_val, ava->la_value.bv_len);
  const bool multi = parsed[0][1] != nullptr;
  ldap_dnfree(parsed);
  std::string cls;
  if (type == "ou") cls = "organizationalUnit";
  if (type == "o") cls = "organization";
  if (type == "dc") cls = "domain";
  if (cls.empty() || multi) {
    return Status::InvalidArgument("base DN '" + config_.base_dn +
                                   "' must start with ou=, o= or dc= for mbxmove to create it");
  }
  MBX_RETURN_IF_ERROR(AddIfMissing(config_.base_dn, {{"objectClass", {"top", cls}}, {type, {value}}}));
  for (const char* ou : {"users", "stores", "servers", "moves", "queue", "leases", "batches"}) {
    MBX_RETURN_IF_ERROR(AddContainer(ou));
  }
  return Status::Ok();
}

Status LdapDirectory::AddIfMissing(const std::string& dn, const AttrList& attrs) {
  std::lock_guard<std::mutex> l(mu_);
  Mods m(attrs, LDAP_MOD_ADD);
  int rc = Call([&](LDAP* ld) { return ldap_add_ext_s(ld, dn.c_str(), m.get(), nullptr, nullptr); }, true);
  if (rc == LDAP_SUCCESS || rc == LDAP_ALREADY_EXISTS) return Status::Ok();
  if (rc == LDAP_NO_SUCH_OBJECT) {
    return Status::NotFound("cannot create " + dn + " on " + config_.url + ": its parent entry does not exist");
  }
  return ServerError(rc, "creating " + dn);
}

Status LdapDirectory::AddContainer(const char* ou) {
  return AddIfMissing(Container(ou), {{"objectClass", {"top", "organizationalUnit"}}, {"ou", {ou}}});
}

Status LdapDirectory::Open(const LdapConfig& config, bool create) {
  config_ = config;
  if (config_.url.empty()) return Status::InvalidArgument("no directory URL given");
  {
    LDAPURLDesc* lud = nullptr;
    if (ldap_url_parse(config_.url.c_str(), &lud) != LDAP_URL_SUCCESS) {
      return Status::InvalidArgument("bad directory URL '" + config_.url + "' (expected ldap://HOST:PORT)");
    }
    ldap_free_urldesc(lud);
  }
  if (config_.base_dn.empty()) return Status::InvalidArgument("no base DN given for " + config_.url);
  {
    LDAPDN parsed = nullptr;
    if (ldap_str2dn(config_.base_dn.c_str(), &parsed, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS) {
      return Status::InvalidArgument("base DN '" + config_.base_dn + "' is not a DN (RFC 4514)");
    }
    if (parsed) ldap_dnfree(parsed);
  }
  if (config_.bind_dn.empty()) return Status::InvalidArgument("no bind DN given for " + config_.url);
  if (config_.password_file.empty()) return Status::InvalidArgument("no password file given for " + config_.url);
  struct stat st {};
  if (::stat(config_.password_file.c_str(), &st) != 0) {
    return PosixError("reading the directory password file", config_.password_file, errno);
  }
  if (st.st_mode & 077) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", unsigned(st.st_mode & 07777));
    return Status::InvalidArgument("the directory password file " + config_.password_file +
                                   " is readable by group or others (mode " + mode + "); chmod 600 it");
  }
  MBX_RETURN_IF_ERROR(Env::Default()->ReadFile(config_.password_file, &password_));
  while (!password_.empty() && (password_.back() == '\n' || password_.back() == '\r')) password_.pop_back();
  // A server that goes away mid-request must not kill the process with
  // SIGPIPE; libldap writes to its socket with plain write(2).
  struct sigaction sa {};
  if (::sigaction(SIGPIPE, nullptr, &sa) == 0 && sa.sa_handler == SIG_DFL) ::signal(SIGPIPE, SIG_IGN);
  {
    std::lock_guard<std::mutex> l(mu_);
    MBX_RETURN_IF_ERROR(ConnectLocked());
  }
  MBX_RETURN_IF_ERROR(CheckSchema());
  auto base = Read(config_.base_dn, "base", config_.base_dn);
  if (!base.ok()) {
    if (!base.status().IsNotFound()) return base.status();
    if (!create) {
      return Status::NotFound("the directory's base " + config_.base_dn + " does not exist on " + config_.url +
                              " (create the organisation first)");
    }
  }
  if (create) return CreateBase();
  for (const char* ou : {"users", "stores", "servers", "moves"}) {
    auto c = Read(Container(ou), "container", Container(ou));
    if (!c.ok()) {
      return c.status().IsNotFound()
                 ? Status::Corruption("the directory at " + config_.UrlWithBase() + " lacks " + Container(ou))
                 : c.status();
    }
  }
  return Status::Ok();
}

}  // namespace

Result<LdapConfig> LdapConfig::FromUrl(std::string_view url_with_base) {
  const std::string u(url_with_base);
  LDAPURLDesc* lud = nullptr;
  int rc = ldap_url_parse(u.c_str(), &lud);
  if (rc != LDAP_URL_SUCCESS || !lud) {
    return Status::InvalidArgument("'" + u + "' is not an LDAP URL (expected ldap://HOST:PORT/BASE-DN)");
  }
  LdapConfig c;
  const std::string scheme = lud->lud_scheme ? lud->lud_scheme : "";
  const std::string host = lud->lud_host ? lud->lud_host : "";
  const int port = lud->lud_port;
  c.base_dn = lud->lud_dn ? lud->lud_dn : "";
  ldap_free_urldesc(lud);
  if (scheme != "ldap" && scheme != "ldaps") {
    return Status::InvalidArgument("'" + u + "': only ldap:// and ldaps:// URLs are supported");
  }
  if (host.empty()) return Status::InvalidArgument("'" + u + "' names no host");
  if (c.base_dn.empty()) return Status::InvalidArgument("'" + u + "' names no base DN (ldap://HOST:PORT/BASE-DN)");
  c.url = scheme + "://" + host + (port > 0 ? ":" + std::to_string(port) : "");
  return c;
}

std::string LdapConfig::UrlWithBase() const { return url + "/" + EscapeUrlDn(base_dn); }

Result<std::unique_ptr<Directory>> OpenLdapDirectory(const LdapConfig& config, bool create) {
  auto d = std::make_unique<LdapDirectory>();
  MBX_RETURN_IF_ERROR(d->Open(config, create));
  return std::unique_ptr<Directory>(std::move(d));
}

}  // namespace mbx
