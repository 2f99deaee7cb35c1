// Store: the persistent log settings (mode, quota, sync mode, kept in the
// meta database) and what the store reports about its log and its writer.
#include "store/store.h"

namespace mbx {

Status Store::PutMetaDirect(std::string_view key, std::string_view value) {
  WriteBatch b;
  b.Put(Db::kMeta, std::string(key), std::string(value));
  return Write(std::move(b));
}

Status Store::SetLogMode(LogMode mode) {
  MBX_RETURN_IF_ERROR(PutMetaDirect(meta::kLogMode, LogModeName(mode)));
  if (mode == LogMode::kCircular) MBX_RETURN_IF_ERROR(DataCheckpointNow());  // lets the log drop what it can now
  std::lock_guard<std::mutex> l(log_mu_);
  log_->set_mode(mode);
  if (mode == LogMode::kCircular) {
    auto r = log_->RemoveBefore(Checkpoints().second);
    if (!r.ok()) return r.status();
  }
  return Status::Ok();
}

Status Store::SetLogQuota(uint64_t bytes) {
  {
    // Lift the quota first so that the write recording it can go through.
    std::lock_guard<std::mutex> l(log_mu_);
    log_->set_quota(0);
  }
  Status s = PutMetaDirect(meta::kLogQuota, std::to_string(bytes));
  std::lock_guard<std::mutex> l(log_mu_);
  log_->set_quota(bytes);
  SetDataSyncThreshold(bytes);
  return s;
}

Status Store::SetSyncMode(SyncMode mode) {
  MBX_RETURN_IF_ERROR(PutMetaDirect(meta::kSyncMode, SyncModeName(mode)));
  std::lock_guard<std::mutex> l(log_mu_);
  // The log stops syncing now (LMDB keeps the flags it was opened with).
  if (mode == SyncMode::kNone) MBX_RETURN_IF_ERROR(WriteUnsyncedMarker());
  log_->set_sync(mode);
  return Status::Ok();
}

LogInfo Store::GetLogInfo() {
  std::lock_guard<std::mutex> l(log_mu_);
  LogInfo i;
  i.mode = log_->options().mode;
  i.sync = log_->options().sync;
  i.file_bytes = log_->options().file_bytes;
  i.quota_bytes = log_->options().quota_bytes;
  i.checkpoint_lsn = Checkpoints().first;
  i.end_lsn = log_->end_lsn();
  i.oldest_generation = log_->oldest_generation();
  i.newest_generation = log_->newest_generation();
  i.file_count = log_->file_count();
  i.disk_bytes = log_->disk_bytes();
  i.last_backup_lsn = last_backup_lsn_;
  i.syncs = log_->syncs();
  i.sync_time = log_->sync_time();
  i.disk_reserve_bytes = reserve_ != nullptr && reserve_->held() ? reserve_->bytes() : 0;
  i.out_of_space = !out_of_space_.ok();
  i.remove_failures = log_remove_failures_;
  if (!log_remove_error_.ok()) i.remove_error = log_remove_error_.message();
  return i;
}

StoreStats Store::stats() const {
  StoreStats s;
  s.writer = writer_->stats();
  s.map_resizes = map_resizes_.load();
  s.data_syncs = data_syncs_.load();
  s.data_checkpoints = data_checkpoints_.load();
  s.data_checkpoint_failures = data_checkpoint_failures_.load();
  s.copied_bytes = copied_bytes_.load();
  s.replayed_records = replayed_records_.load();
  s.dead_bytes_dropped = dead_bytes_dropped_.load();
  s.change_index_scans = change_index_scans_.load();
  return s;
}

}  // namespace mbx
