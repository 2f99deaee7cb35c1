// The mbxmove subcommands. Each Add*Command registers its options on `app`
// and arranges for its exit code to be stored in *exit_code when it runs.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "engine/client_load.h"
#include "rpc/remote_store.h"
#include "store/ldap_directory.h"
#include "store/organization.h"

namespace mbx::cli {

void AddGenCommand(CLI::App& app, int* exit_code);
void AddStoreCommands(CLI::App& app, int* exit_code);  // store create/list
void AddStatCommand(CLI::App& app, int* exit_code);
void AddVerifyCommand(CLI::App& app, int* exit_code);
void AddLogCommands(CLI::App& app, int* exit_code);    // logs, backup, restore
void AddMoveCommands(CLI::App& app, int* exit_code);   // move, recover
void AddBenchCommand(CLI::App& app, int* exit_code);
void AddMailCommands(CLI::App& app, int* exit_code);  // import, export
void AddServeCommands(CLI::App& app, int* exit_code);  // serve, server add/list
void AddNetCommands(CLI::App& app, int* exit_code);   // certs create, link
void AddOrgCommands(CLI::App& app, int* exit_code);   // org create, org show
void AddDirectoryCommands(CLI::App& app, int* exit_code);  // directory export, directory import
void AddDevCommands(CLI::App& app, int* exit_code);   // dev slapd start/stop
void AddQueueCommands(CLI::App& app, int* exit_code);  // mover, queue status/list/remove/retry
void AddLoadCommand(CLI::App& app, int* exit_code);    // load
void AddBatchCommands(CLI::App& app, int* exit_code);  // batch create/start/status/list/complete/stop/remove

// The load report as a table (load, move --load).
void PrintLoadTable(const engine::LoadReport& r);

// How this program reaches remote stores: client certificates from
// $MBX_CERTS, else ORG/certs.
rpc::RemoteOptions DefaultRemoteOptions(const std::string& org_dir);

// Opens an organisation (with create, creates it when `dir` is missing or
// empty, its directory in the LDAP server `ldap` names or, nullptr,
// embedded: cli/store_setup.h OpenOrCreateOrg), installs the remote-store
// connector, and first finishes or rolls back interrupted moves (reported on
// stderr unless quiet and successful).
Result<std::unique_ptr<Organization>> OpenOrgRecovering(const std::string& dir, const OpenOptions& options,
                                                        bool quiet, bool create = false,
                                                        const LdapConfig* ldap = nullptr);

}  // namespace mbx::cli
