// mbxmove store create | store list | store compact
#include <cstdio>
#include <memory>
#include <string>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "store/compact.h"
#include "store/organization.h"

namespace mbx::cli {

namespace {

struct CreateArgs {
  std::string org, store, server = "SERVER1";
  int zstd_level = 3;
  std::string log_mode = "backup-flush", log_file_size = "4MiB", log_quota = "0", sync = "batch";
  bool json = false;
};

int RunCreate(const CreateArgs& a) {
  StoreOptions so;
  so.zstd_level = a.zstd_level;
  auto mode = ParseLogMode(a.log_mode);
  if (!mode.ok()) return Fail(mode.status());
  so.log.mode = *mode;
  auto sync = ParseSyncMode(a.sync);
  if (!sync.ok()) return Fail(sync.status());
  so.log.sync = *sync;
  auto fb = ParseBytes(a.log_file_size);
  if (!fb.ok()) return Fail(fb.status());
  so.log.file_bytes = *fb;
  auto q = ParseBytes(a.log_quota);
  if (!q.ok()) return Fail(q.status());
  so.log.quota_bytes = *q;
  if (Status s = Organization::ValidateStoreName(a.store); !s.ok()) return Fail(s);
  if (so.log.file_bytes < 4096) return Fail("--log-file-size must be at least 4096 bytes", kExitUsage);
  auto org = Organization::OpenOrCreate(a.org);
  if (!org.ok()) return Fail(org.status());
  if (Status s = (*org)->CreateStore(a.store, a.server, so); !s.ok()) return Fail(s);
  auto rec = (*org)->directory().GetStore(a.store);
  if (!rec.ok()) return Fail(rec.status());
  if (a.json) {
    PrintJson({{"store", a.store}, {"server", rec->server}, {"dn", rec->dn}, {"zstd_level", so.zstd_level},
               {"log_mode", LogModeName(so.log.mode)}, {"log_file_bytes", so.log.file_bytes},
               {"log_quota_bytes", so.log.quota_bytes}, {"sync", SyncModeName(so.log.sync)}});
  } else {
    std::printf("created store %s (%s)\n  %s\n  log mode %s, log files of %s, quota %s, sync %s\n",
                a.store.c_str(), rec->server.c_str(), rec->dn.c_str(),
                std::string(LogModeName(so.log.mode)).c_str(), FormatBytes(double(so.log.file_bytes)).c_str(),
                so.log.quota_bytes ? FormatBytes(double(so.log.quota_bytes)).c_str() : "none",
                std::string(SyncModeName(so.log.sync)).c_str());
  }
  return kExitOk;
}

struct ListArgs {
  std::string org;
  bool json = false;
};

int RunList(const ListArgs& a) {
  auto org = Organization::Open(a.org);
  if (!org.ok()) return Fail(org.status());
  std::vector<StoreRecord> stores;
  if (Status s = (*org)->ListStores(&stores); !s.ok()) return Fail(s);
  json out = json::array();
  for (const auto& s : stores) {
    // A server with an address serves its stores over the network.
    auto server = (*org)->directory().GetServer(s.server);
    if (!server.ok() && !server.status().IsNotFound()) return Fail(server.status());
    const std::string address = server.ok() ? server->address : "";
    out.push_back({{"name", s.name}, {"server", s.server}, {"address", address}, {"dn", s.dn},
                   {"created", s.created}, {"path", (*org)->StorePath(s.name)}});
    if (!a.json) {
      std::printf("%-20s %-10s %-21s %s\n", s.name.c_str(), s.server.c_str(), address.empty() ? "local" : address.c_str(),
                  s.dn.c_str());
    }
  }
  if (a.json) PrintJson({{"stores", out}});
  return kExitOk;
}

struct CompactArgs {
  std::string org, store;
  bool json = false;
};

int RunCompact(const CompactArgs& a) {
  // The directory only: the store itself must not be opened here.
  auto org = Organization::Open(a.org);
  if (!org.ok()) return Fail(org.status());
  if (Status s = Organization::ValidateStoreName(a.store); !s.ok()) return Fail(s);
  auto rec = (*org)->directory().GetStore(a.store);
  if (!rec.ok()) {
    if (rec.status().IsNotFound()) {
      return Fail(Status::NotFound("store '" + a.store + "' is not registered in " + a.org + " (see 'mbxmove store list')"));
    }
    return Fail(rec.status());
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto r = CompactStore((*org)->StorePath(a.store));
  if (!r.ok()) return Fail(r.status());
  const double ratio = r->bytes_before ? double(r->bytes_after) / double(r->bytes_before) : 1.0;
  if (a.json) {
    PrintJson({{"store", a.store}, {"bytes_before", r->bytes_before}, {"bytes_after", r->bytes_after},
               {"ratio", ratio}, {"seconds", SecondsSince(t0)}});
  } else {
    std::printf("compacted store %s: data.mdb %s -> %s (%.1f%%)\n", a.store.c_str(),
                FormatBytes(double(r->bytes_before)).c_str(), FormatBytes(double(r->bytes_after)).c_str(),
                100.0 * ratio);
  }
  return kExitOk;
}

}  // namespace

void AddStoreCommands(CLI::App& app, int* exit_code) {
  CLI::App* store = app.add_subcommand("store", "Create, list and compact mailbox stores");
  store->require_subcommand(1);

  auto c = std::make_shared<CreateArgs>();
  CLI::App* create = store->add_subcommand("create", "Create an empty store and register it in the directory");
  create->add_option("--org", c->org, "Organisation folder (created if missing or empty)")->required();
  create->add_option("--store", c->store, "Store name: letters, digits, '.', '_', '-'")->required();
  create->add_option("--server", c->server, "Server that hosts the store")->capture_default_str();
  create->add_option("--zstd-level", c->zstd_level, "Compression level of item messages (0 = none)")
      ->check(CLI::Range(0, 19))->capture_default_str();
  create->add_option("--log-mode", c->log_mode,
                     "backup-flush (logs kept until a backup) or circular (logs behind the checkpoint deleted)")
      ->capture_default_str();
  create->add_option("--log-file-size", c->log_file_size, "Size of each transaction log file")->capture_default_str();
  create->add_option("--log-quota", c->log_quota,
                     "Bytes of log files allowed on disk; writes past it fail with 'log space exhausted' (0 = no quota)")
      ->capture_default_str();
  create->add_option("--sync", c->sync,
                     "full (fsync the log before every commit is acknowledged), batch (fsync at most every 50 ms), "
                     "none (never fsync: benchmarks only)")
      ->capture_default_str();
  create->add_flag("--json", c->json, "Print JSON");
  create->callback([c, exit_code] { *exit_code = RunCreate(*c); });

  auto l = std::make_shared<ListArgs>();
  CLI::App* list = store->add_subcommand("list", "List the stores registered in the directory");
  list->add_option("--org", l->org, "Organisation folder")->required();
  list->add_flag("--json", l->json, "Print JSON");
  list->callback([l, exit_code] { *exit_code = RunList(*l); });

  auto k = std::make_shared<CompactArgs>();
  CLI::App* compact = store->add_subcommand(
      "compact", "Offline defragmentation: rewrite the store's data.mdb without its free pages and swap it in "
                 "atomically (after moving mailboxes out). The store must not be open in another process");
  compact->add_option("--org", k->org, "Organisation folder")->required();
  compact->add_option("--store", k->store, "Store name")->required();
  compact->add_flag("--json", k->json, "Print JSON");
  compact->callback([k, exit_code] { *exit_code = RunCompact(*k); });
}

}  // namespace mbx::cli
