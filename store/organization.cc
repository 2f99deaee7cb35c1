#include "store/organization.h"

#include <sys/stat.h>

#include <cerrno>
#include <ctime>

#include <nlohmann/json.hpp>

#include "store/file_io.h"
#include "store/ldap_directory.h"

namespace mbx {

std::string NowIso8601() {
  std::time_t t = std::time(nullptr);
  std::tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

namespace {
bool IsDir(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
bool Exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

// ORG/directory.json: where an organisation's directory is when it is not
// the embedded one.
Result<LdapConfig> ReadDirectoryJson(const std::string& path) {
  std::string text;
  MBX_RETURN_IF_ERROR(Env::Default()->ReadFile(path, &text));
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto str = [&](const char* k) -> std::string {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : "";
  };
  if (j.is_discarded() || !j.is_object()) return Status::Corruption(path + " is damaged: not a JSON object");
  if (str("backend") != "ldap") {
    return Status::Corruption(path + " is damaged: \"backend\" must be \"ldap\" (got " +
                              (j.contains("backend") ? j["backend"].dump() : std::string("nothing")) + ")");
  }
  LdapConfig c;
  c.url = str("url");
  c.base_dn = str("base_dn");
  c.bind_dn = str("bind_dn");
  c.password_file = str("password_file");
  for (const auto& [k, v] : {std::pair<const char*, const std::string*>{"url", &c.url}, {"base_dn", &c.base_dn},
                             {"bind_dn", &c.bind_dn}, {"password_file", &c.password_file}}) {
    if (v->empty()) return Status::Corruption(path + " is damaged: no \"" + k + "\" string");
  }
  return c;
}

Status WriteDirectoryJson(const std::string& path, const LdapConfig& c) {
  nlohmann::json j = {{"backend", "ldap"},
                      {"url", c.url},
                      {"base_dn", c.base_dn},
                      {"bind_dn", c.bind_dn},
                      {"password_file", c.password_file}};
  return Env::Default()->WriteFileAtomic(path, j.dump(2) + "\n");
}
}  // namespace

Result<std::unique_ptr<Organization>> Organization::Open(const std::string& dir,
                                                         const OpenOptions& store_options) {
  if (!IsDir(dir)) return Status::NotFound("no organisation at " + dir + " (no such folder)");
  if (Exists(dir + "/directory.json")) {
    MBX_ASSIGN_OR_RETURN(LdapConfig c, ReadDirectoryJson(dir + "/directory.json"));
    std::unique_ptr<Organization> o(new Organization());
    o->dir_ = dir;
    o->store_options_ = store_options;
    MBX_ASSIGN_OR_RETURN(o->directory_, OpenLdapDirectory(c, false));
    return o;
  }
  if (!Exists(dir + "/directory/data.mdb")) {
    return Status::NotFound(dir + " is not an mbxmove organisation (no directory/ inside; create one with 'mbxmove gen' or 'mbxmove store create')");
  }
  std::unique_ptr<Organization> o(new Organization());
  o->dir_ = dir;
  o->store_options_ = store_options;
  MBX_ASSIGN_OR_RETURN(o->directory_, Directory::OpenLmdb(dir + "/directory", false));
  return o;
}

Result<std::unique_ptr<Organization>> Organization::OpenOrCreate(const std::string& dir,
                                                                 const OpenOptions& store_options,
                                                                 const LdapConfig* ldap) {
  if (Exists(dir + "/directory/data.mdb") || Exists(dir + "/directory.json")) return Open(dir, store_options);
  if (Exists(dir)) {
    if (!IsDir(dir)) return Status::InvalidArgument(dir + " exists and is not a folder");
    std::vector<std::string> names;
    MBX_RETURN_IF_ERROR(ListDir(dir, &names));
    if (!names.empty()) {
      return Status::InvalidArgument(dir + " is not empty and is not an mbxmove organisation; refusing to create one there");
    }
  }
  std::unique_ptr<Organization> o(new Organization());
  o->dir_ = dir;
  o->store_options_ = store_options;
  // An LDAP directory is reached before anything is created here: a bad
  // URL, an unreachable server or a refused bind leaves no folder behind to
  // block the next attempt.
  if (ldap) {
    MBX_ASSIGN_OR_RETURN(o->directory_, OpenLdapDirectory(*ldap, true));
  }
  if (!Exists(dir) && ::mkdir(dir.c_str(), kOwnerOnlyDirMode) != 0) {
    return PosixError("creating organisation folder", dir, errno);
  }
  if (::mkdir((dir + "/stores").c_str(), kOwnerOnlyDirMode) != 0 && errno != EEXIST) {
    return PosixError("creating", dir + "/stores", errno);
  }
  if (ldap) {
    // Then the file that points at it: a failure leaves no organisation
    // that names a directory it cannot open.
    MBX_RETURN_IF_ERROR(WriteDirectoryJson(dir + "/directory.json", *ldap));
    return o;
  }
  MBX_ASSIGN_OR_RETURN(o->directory_, Directory::OpenLmdb(dir + "/directory", true));
  return o;
}

Status Organization::ValidateName(std::string_view what, const std::string& name) {
  if (name.empty() || name.size() > 64 || name == "." || name == "..") {
    return Status::InvalidArgument(std::string(what) + " '" + name + "' must be 1 to 64 characters");
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) {
      return Status::InvalidArgument(std::string(what) + " '" + name +
                                     "' may hold only letters, digits, '.', '_' and '-'");
    }
  }
  return Status::Ok();
}

Status Organization::ValidateStoreName(const std::string& name) { return ValidateName("store name", name); }

Status Organization::CreateStore(const std::string& name, const std::string& server,
                                 const StoreOptions& options) {
  MBX_RETURN_IF_ERROR(ValidateStoreName(name));
  auto existing = directory_->GetStore(name);
  if (existing.ok()) return Status::AlreadyExists("store '" + name + "' already exists");
  if (!existing.status().IsNotFound()) return existing.status();
  if (::mkdir((dir_ + "/stores").c_str(), kOwnerOnlyDirMode) != 0 && errno != EEXIST) {
    return PosixError("creating", dir_ + "/stores", errno);
  }
  MBX_RETURN_IF_ERROR(Store::Create(StorePath(name), name, options));
  StoreRecord r;
  r.name = name;
  r.server = server;
  r.dn = StoreDistinguishedName(name, server);
  r.created = NowIso8601();
  return directory_->PutStore(r);
}

Result<StoreRecord> Organization::Registered(const std::string& name) {
  auto rec = directory_->GetStore(name);
  if (!rec.ok() && rec.status().IsNotFound()) {
    return Status::NotFound("store '" + name + "' is not registered in " + dir_ + " (see 'mbxmove store list')");
  }
  return rec;
}

Result<Store*> Organization::GetStore(const std::string& name) {
  MBX_RETURN_IF_ERROR(ValidateStoreName(name));
  std::lock_guard<std::mutex> l(mu_);
  auto it = stores_.find(name);
  if (it != stores_.end()) return it->second.get();
  MBX_RETURN_IF_ERROR(Registered(name).status());
  MBX_ASSIGN_OR_RETURN(std::unique_ptr<Store> s, Store::Open(StorePath(name), store_options_));
  Store* p = s.get();
  stores_[name] = std::move(s);
  return p;
}

void Organization::CloseStore(const std::string& name) {
  std::lock_guard<std::mutex> l(mu_);
  handles_.erase(name);
  stores_.erase(name);
  remotes_.erase(name);
}

void Organization::SetRemoteConnector(RemoteConnector connector) {
  std::lock_guard<std::mutex> l(mu_);
  connector_ = std::move(connector);
  handles_.clear();  // a store resolved as local may now be reachable remotely
}

Result<StoreHandle*> Organization::GetHandle(const std::string& name) {
  MBX_RETURN_IF_ERROR(ValidateStoreName(name));
  {
    // Resolved before: where a store lives is looked up in the directory
    // once per Organization, not once per mailbox (two directory requests).
    std::lock_guard<std::mutex> l(mu_);
    auto it = handles_.find(name);
    if (it != handles_.end()) return it->second;
  }
  MBX_ASSIGN_OR_RETURN(StoreRecord rec, Registered(name));
  auto server = directory_->GetServer(rec.server);
  if (!server.ok() && !server.status().IsNotFound()) return server.status();
  if (!server.ok() || server->address.empty()) {
    MBX_ASSIGN_OR_RETURN(Store * s, GetStore(name));
    std::lock_guard<std::mutex> l(mu_);
    if (stores_.count(name) != 0) handles_[name] = s;  // not closed meanwhile
    return static_cast<StoreHandle*>(s);
  }
  std::lock_guard<std::mutex> l(mu_);
  auto it = remotes_.find(name);
  if (it != remotes_.end()) {
    handles_[name] = it->second.get();
    return it->second.get();
  }
  if (!connector_) {
    return Status::InvalidArgument("store '" + name + "' is on server " + server->name + " at " +
                                   server->address + ", and this program cannot reach remote stores");
  }
  auto h = connector_(rec, *server);
  if (!h.ok()) return h.status().WithContext("reaching store '" + name + "' on " + server->address);
  StoreHandle* p = h->get();
  remotes_[name] = std::move(*h);
  handles_[name] = p;
  return p;
}

}  // namespace mbx
