// mbxmove logs | backup | restore
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "store/backup.h"
#include "store/organization.h"
#include "store/txlog_format.h"

namespace mbx::cli {

namespace {

json LogInfoJson(const std::string& store, const LogInfo& i) {
  return {{"store", store},
          {"mode", LogModeName(i.mode)},
          {"sync", SyncModeName(i.sync)},
          {"log_file_bytes", i.file_bytes},
          {"quota_bytes", i.quota_bytes},
          {"checkpoint_lsn", i.checkpoint_lsn},
          {"end_lsn", i.end_lsn},
          {"bytes_written", i.end_lsn},
          {"oldest_generation", i.oldest_generation},
          {"newest_generation", i.newest_generation},
          {"oldest_file", i.oldest_generation ? txlog::FileName(i.oldest_generation) : ""},
          {"newest_file", i.newest_generation ? txlog::FileName(i.newest_generation) : ""},
          {"files", i.file_count},
          {"disk_bytes", i.disk_bytes},
          {"last_backup_lsn", i.last_backup_lsn},
          {"disk_reserve_bytes", i.disk_reserve_bytes},
          {"out_of_space", i.out_of_space},
          {"remove_failures", i.remove_failures},
          {"remove_error", i.remove_error}};
}

struct LogsArgs {
  std::string org, store, set_mode, set_quota, set_sync;
  bool json = false;
};

int RunLogs(const LogsArgs& a) {
  auto org = OpenOrgRecovering(a.org, {}, a.json);
  if (!org.ok()) return Fail(org.status());
  auto store = (*org)->GetStore(a.store);
  if (!store.ok()) return Fail(store.status());
  if (!a.set_mode.empty()) {
    auto m = ParseLogMode(a.set_mode);
    if (!m.ok()) return Fail(m.status());
    if (Status s = (*store)->SetLogMode(*m); !s.ok()) return Fail(s);
  }
  if (!a.set_quota.empty()) {
    auto q = ParseBytes(a.set_quota);
    if (!q.ok()) return Fail(q.status());
    if (Status s = (*store)->SetLogQuota(*q); !s.ok()) return Fail(s);
  }
  if (!a.set_sync.empty()) {
    auto m = ParseSyncMode(a.set_sync);
    if (!m.ok()) return Fail(m.status());
    if (Status s = (*store)->SetSyncMode(*m); !s.ok()) return Fail(s);
  }
  LogInfo i = (*store)->GetLogInfo();
  if (a.json) {
    PrintJson(LogInfoJson(a.store, i));
    return kExitOk;
  }
  std::printf("store %s: %s logging, sync %s%s\n", a.store.c_str(), std::string(LogModeName(i.mode)).c_str(),
              std::string(SyncModeName(i.sync)).c_str(),
              i.sync == SyncMode::kNone ? " (no fsync: benchmarks only, a crash of the machine can lose data)" : "");
  if (i.file_count) {
    std::printf("  generations %s .. %s (%llu files, %s on disk, files of %s)\n",
                txlog::FileName(i.oldest_generation).c_str(), txlog::FileName(i.newest_generation).c_str(),
                (unsigned long long)i.file_count, FormatBytes(double(i.disk_bytes)).c_str(),
                FormatBytes(double(i.file_bytes)).c_str());
  }
  std::printf("  checkpoint at %llu, log end at %llu (%s written since creation)\n",
              (unsigned long long)i.checkpoint_lsn, (unsigned long long)i.end_lsn,
              FormatBytes(double(i.end_lsn)).c_str());
  std::printf("  quota %s, last backup %s\n", i.quota_bytes ? FormatBytes(double(i.quota_bytes)).c_str() : "none",
              i.last_backup_lsn ? ("at " + std::to_string(i.last_backup_lsn)).c_str() : "never");
  if (i.out_of_space) {
    std::printf("  disk reserve released: out of disk space, only rollbacks are taken until space is freed\n");
  } else {
    std::printf("  disk reserve %s\n", FormatBytes(double(i.disk_reserve_bytes)).c_str());
  }
  if (!i.remove_error.empty()) {
    std::printf("  log files the checkpoint has passed could not be removed (%llu tries failed; retried with each "
                "new log file): %s\n",
                (unsigned long long)i.remove_failures, i.remove_error.c_str());
  }
  return kExitOk;
}

struct BackupArgs {
  std::string org, store, out;
  bool incremental = false, json = false;
};

int RunBackup(const BackupArgs& a) {
  auto org = OpenOrgRecovering(a.org, {}, a.json);
  if (!org.ok()) return Fail(org.status());
  auto store = (*org)->GetStore(a.store);
  if (!store.ok()) return Fail(store.status());
  const auto t0 = std::chrono::steady_clock::now();
  auto r = (*store)->Backup(a.out, a.incremental);
  if (!r.ok()) return Fail(r.status());
  LogInfo i = (*store)->GetLogInfo();
  if (a.json) {
    PrintJson({{"store", a.store}, {"out", a.out}, {"kind", a.incremental ? "incremental" : "full"},
               {"lsn", r->lsn}, {"bytes", r->bytes}, {"log_files_truncated", r->log_files_truncated},
               {"log_files_copied", r->log_files_copied}, {"seconds", SecondsSince(t0)}, {"logs", LogInfoJson(a.store, i)}});
  } else {
    std::printf("%s backup of store %s in %s: %s, covers log position %llu\n",
                a.incremental ? "incremental" : "full", a.store.c_str(), a.out.c_str(),
                FormatBytes(double(r->bytes)).c_str(), (unsigned long long)r->lsn);
    std::printf("  %d log files truncated; %llu log files (%s) remain\n", r->log_files_truncated,
                (unsigned long long)i.file_count, FormatBytes(double(i.disk_bytes)).c_str());
  }
  return kExitOk;
}

struct RestoreArgs {
  std::string org, store;
  std::vector<std::string> from;
  bool json = false;
};

int RunRestore(const RestoreArgs& a) {
  auto org = Organization::Open(a.org);
  if (!org.ok()) return Fail(org.status());
  auto rec = (*org)->directory().GetStore(a.store);
  if (!rec.ok()) return Fail(Status::NotFound("store '" + a.store + "' is not registered in " + a.org));
  auto r = RestoreStore((*org)->StorePath(a.store), a.store, a.from);
  if (!r.ok()) return Fail(r.status());
  if (a.json) {
    PrintJson({{"store", a.store}, {"backup_lsn", r->backup_lsn}, {"restored_lsn", r->restored_lsn},
               {"replayed_records", r->replayed_records}, {"rolled_forward", r->rolled_forward},
               {"message", r->message}});
  } else {
    std::printf("store %s: %s\n", a.store.c_str(), r->message.c_str());
  }
  return kExitOk;
}

}  // namespace

void AddLogCommands(CLI::App& app, int* exit_code) {
  auto l = std::make_shared<LogsArgs>();
  CLI::App* logs = app.add_subcommand(
      "logs", "Show (and change) a store's transaction logging: mode, generations, checkpoint, bytes, quota");
  logs->add_option("--org", l->org, "Organisation folder")->required();
  logs->add_option("--store", l->store, "Store name")->required();
  logs->add_option("--set-mode", l->set_mode, "Change the log mode: backup-flush or circular");
  logs->add_option("--set-quota", l->set_quota, "Change the log quota (bytes, e.g. 512MiB; 0 = none)");
  logs->add_option("--set-sync", l->set_sync, "Change the durability mode: full, batch or none");
  logs->add_flag("--json", l->json, "Print JSON");
  logs->callback([l, exit_code] { *exit_code = RunLogs(*l); });

  auto b = std::make_shared<BackupArgs>();
  CLI::App* backup = app.add_subcommand(
      "backup", "Back up a store while it stays online. Full: a consistent copy of the database and the log "
                "position it covers, then the logs before it are truncated. Incremental: copies the logs "
                "written since the last backup, then truncates them");
  backup->add_option("--org", b->org, "Organisation folder")->required();
  backup->add_option("--store", b->store, "Store name")->required();
  backup->add_option("--out", b->out, "Backup folder (created; must be empty)")->required();
  backup->add_flag("--incremental", b->incremental, "Copy only the logs since the last backup");
  backup->add_flag("--json", b->json, "Print JSON");
  backup->callback([b, exit_code] { *exit_code = RunBackup(*b); });

  auto r = std::make_shared<RestoreArgs>();
  CLI::App* restore = app.add_subcommand(
      "restore", "Restore a store from a full backup (and any incremental backups after it), then roll "
                 "forward every transaction log record still present: up to the point of failure with "
                 "backup-flush logging; with circular logging only to the backup, as the output says");
  restore->add_option("--org", r->org, "Organisation folder")->required();
  restore->add_option("--store", r->store, "Store name")->required();
  restore->add_option("--from", r->from, "Backup folder: the full backup first, then incremental ones in order")
      ->required();
  restore->add_flag("--json", r->json, "Print JSON");
  restore->callback([r, exit_code] { *exit_code = RunRestore(*r); });
}

}  // namespace mbx::cli
