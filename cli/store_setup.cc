#include "cli/store_setup.h"

#include "cli/commands.h"

namespace mbx::cli {

void AddNewStoreOptions(CLI::App* c, NewStoreArgs* a) {
  c->add_option("--zstd-level", a->zstd_level, "Compression level of a store created here (0-19)")
      ->check(CLI::Range(0, 19))->capture_default_str();
  c->add_option("--log-mode", a->log_mode, "Log mode of a store created here: circular or backup-flush")
      ->capture_default_str();
  c->add_option("--server", a->server, "Server name of a store created here")->capture_default_str();
}

Status CheckNewStore(const std::string& store, const NewStoreArgs& a) {
  MBX_RETURN_IF_ERROR(ParseLogMode(a.log_mode).status());
  return Organization::ValidateStoreName(store);
}

Result<std::unique_ptr<Organization>> OpenOrCreateWithStore(const std::string& dir, const std::string& store,
                                                            const NewStoreArgs& a, bool quiet) {
  MBX_ASSIGN_OR_RETURN(auto org, OpenOrgRecovering(dir, {}, quiet, /*create=*/true));
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
