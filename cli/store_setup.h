// One rule for the commands that write mailboxes into a store (gen, import):
// the organisation is created when its folder is missing or empty (a
// non-empty folder that is not an organisation is refused), and the store
// when it is not registered, with the options below. A store that exists
// keeps its own options.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "store/organization.h"

namespace mbx::cli {

// The options of a store such a command creates.
struct NewStoreArgs {
  int zstd_level = 3;
  std::string log_mode = "circular";  // a large dataset must not fill the disk with logs
  std::string server = "SERVER1";
};

// Registers --zstd-level, --log-mode and --server on `command`.
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
