#include "cli/store_setup.h"

#include <sys/stat.h>

#include <filesystem>

#include "cli/commands.h"

namespace mbx::cli {

Result<std::optional<LdapConfig>> DirectoryArgs::Config() const {
  if (url.empty()) {
    if (!bind_dn.empty() || !password_file.empty()) {
      return Status::InvalidArgument("--bind-dn and --password-file go with --directory ldap://HOST:PORT/BASE-DN");
    }
    return std::optional<LdapConfig>();
  }
  if (bind_dn.empty() || password_file.empty()) {
    return Status::InvalidArgument("--directory " + url + " needs --bind-dn DN and --password-file FILE");
  }
  auto c = LdapConfig::FromUrl(url);
  if (!c.ok()) return c.status().WithContext("--directory " + url);
  c->bind_dn = bind_dn;
  std::error_code ec;
  c->password_file = std::filesystem::absolute(password_file, ec).string();
  if (ec) return Status::InvalidArgument("--password-file " + password_file + ": " + ec.message());
  return std::optional<LdapConfig>(std::move(*c));
}

void AddDirectoryOptions(CLI::App* c, DirectoryArgs* a) {
  c->add_option("--directory", a->url,
                "Keep a new organisation's directory in an LDAP server: ldap://HOST:PORT/BASE-DN, e.g. "
                "ldap://127.0.0.1:38911/ou=org1,dc=mbxmove,dc=test (the server needs tools/ldap/mbxmove.schema; "
                "'mbxmove dev slapd start DIR' runs one). Default: embedded, in ORG/directory");
  c->add_option("--bind-dn", a->bind_dn, "With --directory: the DN to bind as, e.g. cn=admin,dc=mbxmove,dc=test");
  c->add_option("--password-file", a->password_file,
                "With --directory: an owner-only file holding the bind password (its path is kept in "
                "ORG/directory.json, never the password)");
}

Result<std::unique_ptr<Organization>> OpenOrCreateOrg(const std::string& dir, const OpenOptions& options,
                                                      const LdapConfig* ldap) {
  struct stat st {};
  const bool existed = ::stat(dir.c_str(), &st) == 0;
  const bool stores_existed = ::stat((dir + "/stores").c_str(), &st) == 0;
  auto opened = Organization::OpenOrCreate(dir, options, ldap);
  if (!opened.ok()) {
    // A directory server that cannot be reached (or refuses the bind) fails
    // the creation after the folders were made: take them away again, so
    // that the command can simply be run again (rmdir removes only empty
    // folders).
    if (!stores_existed) ::rmdir((dir + "/stores").c_str());
    if (!existed) ::rmdir(dir.c_str());
    return opened.status();
  }
  std::unique_ptr<Organization> org = std::move(opened).value();
  if (ldap != nullptr && org->directory().Describe() != ldap->UrlWithBase()) {
    return Status::InvalidArgument(dir + " is already an organisation, with its directory in " +
                                   org->directory().Describe() +
                                   "; --directory only chooses where a new organisation's directory goes");
  }
  return org;
}

void AddNewStoreOptions(CLI::App* c, NewStoreArgs* a) {
  c->add_option("--zstd-level", a->zstd_level, "Compression level of a store created here (0-19)")
      ->check(CLI::Range(0, 19))->capture_default_str();
  c->add_option("--log-mode", a->log_mode, "Log mode of a store created here: circular or backup-flush")
      ->capture_default_str();
  c->add_option("--server", a->server, "Server name of a store created here")->capture_default_str();
  AddDirectoryOptions(c, &a->directory);
}

Status CheckNewStore(const std::string& store, const NewStoreArgs& a) {
  MBX_RETURN_IF_ERROR(ParseLogMode(a.log_mode).status());
  MBX_RETURN_IF_ERROR(a.directory.Config().status());
  return Organization::ValidateStoreName(store);
}

Result<std::unique_ptr<Organization>> OpenOrCreateWithStore(const std::string& dir, const std::string& store,
                                                            const NewStoreArgs& a, bool quiet) {
  MBX_ASSIGN_OR_RETURN(std::optional<LdapConfig> ldap, a.directory.Config());
  MBX_ASSIGN_OR_RETURN(auto org, OpenOrgRecovering(dir, {}, quiet, /*create=*/true, ldap ? &*ldap : nullptr));
  auto existing = org->directory().GetStore(store);
  if (existing.ok()) return org;
  if (!existing.status().IsNotFound()) return existing.status();
  StoreOptions so;
  so.zstd_level = a.zstd_level;
  MBX_ASSIGN_OR_RETURN(so.log.mode, ParseLogMode(a.log_mode));
  MBX_RETURN_IF_ERROR(org->CreateStore(store, a.server, so));
  return org;
}

}  // namespace mbx::cli
