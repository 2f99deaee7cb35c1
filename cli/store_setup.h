// One rule for the commands that create organisations (org create, gen,
// import, directory import) and stores (gen, import): the organisation is
// created when its folder is missing or empty (a non-empty folder that is not
// an organisation is refused), with its directory embedded or, with
// --directory, in an LDAP server; the store when it is not registered, with
// the options below. An organisation or store that exists keeps its own
// settings.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>

#include "store/ldap_directory.h"
#include "store/organization.h"

namespace mbx::cli {

// Where a new organisation keeps its directory: --directory
// ldap://HOST:PORT/BASE-DN with --bind-dn and --password-file, or, with none
// of them, embedded in ORG/directory.
struct DirectoryArgs {
  std::string url;            // "" = embedded
  std::string bind_dn;
  std::string password_file;  // made absolute

  // nullopt for the embedded directory; InvalidArgument (a usage error) for
  // a bad URL, or --bind-dn/--password-file without --directory or the other
  // way round.
  Result<std::optional<LdapConfig>> Config() const;
};

// Registers --directory, --bind-dn and --password-file on `command`.
void AddDirectoryOptions(CLI::App* command, DirectoryArgs* args);

// Opens the organisation in `dir`, creating it when missing or empty with
// the directory `ldap` names (nullptr: embedded). With `ldap`, an existing
// organisation must keep its directory there (InvalidArgument otherwise:
// --directory does not move an organisation's directory). No recovery.
Result<std::unique_ptr<Organization>> OpenOrCreateOrg(const std::string& dir, const OpenOptions& options,
                                                      const LdapConfig* ldap);

// The options of a store such a command creates, and of the organisation.
struct NewStoreArgs {
  int zstd_level = 3;
  std::string log_mode = "circular";  // a large dataset must not fill the disk with logs
  std::string server = "SERVER1";
  DirectoryArgs directory;  // of the organisation, when this creates it
};

// Registers --zstd-level, --log-mode and --server, and the directory options, on `command`.
void AddNewStoreOptions(CLI::App* command, NewStoreArgs* args);

// Checks the store name and `args` (InvalidArgument: a usage error), before
// anything is created.
Status CheckNewStore(const std::string& store, const NewStoreArgs& args);

// Opens the organisation in `dir`, creating it when missing or empty,
// finishes or rolls back interrupted moves and imports (reported on stderr
// unless quiet), and creates `store` with `args` when it is not registered.
// Call CheckNewStore first.
Result<std::unique_ptr<Organization>> OpenOrCreateWithStore(const std::string& dir, const std::string& store,
                                                            const NewStoreArgs& args, bool quiet);

}  // namespace mbx::cli
