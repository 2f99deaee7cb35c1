// The mbxmove subcommands. Each Add*Command registers its options on `app`
// and arranges for its exit code to be stored in *exit_code when it runs.
#pragma once

#include <CLI/CLI.hpp>
#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

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

// The load report as a table (load, move --load, batch start --load).
void PrintLoadTable(const engine::LoadReport& r);

// Client load run in this process on the mailboxes a command moves (`move
// --online --load`, `batch start --load`): local stores are open in one
// process at a time, so load beside a move on them must come from the
// moving process.
struct LoadFlags {
  double rate = 0;  // operations/s; 0: no load
  std::string mix = "deliver:60,flag:25,move:10,delete:5";
  uint64_t seed = 1;
  std::string journal;
};
// --load, --load-mix, --load-seed, --load-journal on `c`; `what` names the
// mailboxes loaded ("the moving mailboxes while they move").
void AddLoadFlags(CLI::App* c, LoadFlags* f, const std::string& what);
class BackgroundLoad {
 public:
  ~BackgroundLoad();  // stops it
  // Checks the flags (InvalidArgument saying which); an error before anything runs.
  static Status Check(const LoadFlags& f);
  // Starts the load on `mailboxes` (no-op when f.rate is 0).
  Status Start(Organization& org, const std::vector<Guid>& mailboxes, const LoadFlags& f);
  bool running() const { return load_ != nullptr; }
  // Stops it; its report as JSON (with the rate and mix); null if it never ran.
  nlohmann::json Stop();
  const engine::LoadReport& report() const { return report_; }

 private:
  LoadFlags flags_;
  std::unique_ptr<engine::ClientLoad> load_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  engine::LoadReport report_;
};

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
// The same, quietly, for a long-running command (mover, batch start) with
// its --sync flag ("" for the stores' own durability).
Result<std::unique_ptr<Organization>> OpenOrgForRunner(const std::string& dir, const std::string& sync);

}  // namespace mbx::cli
