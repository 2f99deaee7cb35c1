// BatchWriter, and Store's side of the StoreHandle interface (the local
// implementation: the store is open in this process).
#include "store/store_handle.h"

#include <mutex>

#include "store/checksum.h"
#include "store/item_codec.h"
#include "store/lmdb_env.h"
#include "store/store.h"

namespace mbx {

Status BatchWriter::Flush() {
  if (batch_.empty()) return first_error_;
  WriteBatch b = std::move(batch_);
  batch_.Clear();
  return Submit(std::move(b));
}

Status BatchWriter::Submit(WriteBatch batch, std::function<void()> done) {
  if (!first_error_.ok() || batch.empty()) {
    batch.Clear();
    if (done) done();
    return first_error_;
  }
  inflight_.push_back(InFlight{store_->WriteAsync(std::move(batch)), std::move(done)});
  while (inflight_.size() > depth_) {
    Status s = inflight_.front().result.get();
    if (inflight_.front().done) inflight_.front().done();
    inflight_.erase(inflight_.begin());
    if (!s.ok() && first_error_.ok()) first_error_ = s;
  }
  return first_error_;
}

Status BatchWriter::Drain() {
  for (auto& f : inflight_) {
    Status s = f.result.get();
    if (f.done) f.done();
    if (!s.ok() && first_error_.ok()) first_error_ = s;
  }
  inflight_.clear();
  return first_error_;
}

Status BatchWriter::Finish() {
  Status s = Flush();
  Status d = Drain();
  return s.ok() ? d : s;
}

namespace {

// A read of one mailbox from one LMDB snapshot: the records are views into
// the map, valid while the stream (its read transaction) lives.
class LocalReadStream final : public MailboxReadStream {
 public:
  LocalReadStream(StoreReader reader, MailboxInfo info, std::vector<FolderInfo> folders)
      : reader_(std::move(reader)), info_(std::move(info)), folders_(std::move(folders)) {}

  const MailboxInfo& mailbox() const override { return info_; }
  const std::vector<FolderInfo>& folders() const override { return folders_; }

  Status Next(size_t max_bytes, ItemChunk* out) override {
    out->items.clear();
    out->owner.reset();
    size_t bytes = 0;
    while (fi_ < folders_.size() && (bytes < max_bytes || out->items.empty())) {
      const uint32_t fid = folders_[fi_].id;
      size_t seen = 0;
      constexpr size_t kStep = 64;
      MBX_RETURN_IF_ERROR(reader_.ScanItems(info_.guid, fid, last_id_, kStep,
                                            [&](uint64_t id, std::string_view rec) {
                                              out->items.push_back({fid, id, rec});
                                              bytes += rec.size();
                                              ++seen;
                                              return Status::Ok();
                                            },
                                            &last_id_));
      if (seen < kStep) {
        ++fi_;
        last_id_ = 0;
      }
    }
    return Status::Ok();
  }

  // Called by the copy's transform threads at once: one lock around the
  // gathering (a madvise per record cost more than the lock does).
  void Release(std::string_view record) override {
    std::lock_guard<std::mutex> l(release_mu_);
    release_.Add(record);
  }

 private:
  StoreReader reader_;
  MailboxInfo info_;
  std::vector<FolderInfo> folders_;
  size_t fi_ = 0;         // folder being read
  uint64_t last_id_ = 0;  // last item id read in it
  std::mutex release_mu_;
  MappedPageReleaser release_;  // declared after reader_: flushed while its snapshot holds the map
};

}  // namespace

Result<MailboxInfo> Store::GetMailbox(const Guid& mailbox) {
  MBX_ASSIGN_OR_RETURN(StoreReader r, BeginRead());
  return r.GetMailbox(mailbox);
}

Status Store::ListMailboxes(std::vector<MailboxInfo>* out) {
  MBX_ASSIGN_OR_RETURN(StoreReader r, BeginRead());
  return r.ListMailboxes(out);
}

Result<std::unique_ptr<MailboxReadStream>> Store::ReadMailbox(const Guid& mailbox) {
  MBX_ASSIGN_OR_RETURN(StoreReader r, BeginRead());
  MBX_ASSIGN_OR_RETURN(MailboxInfo info, r.GetMailbox(mailbox));
  std::vector<FolderInfo> folders;
  MBX_RETURN_IF_ERROR(r.ListFolders(mailbox, &folders));
  return std::unique_ptr<MailboxReadStream>(
      std::make_unique<LocalReadStream>(std::move(r), std::move(info), std::move(folders)));
}

Result<MailboxChecksums> Store::Checksums(const Guid& mailbox) {
  MBX_ASSIGN_OR_RETURN(StoreReader r, BeginRead());
  MailboxChecksums out;
  // The target's pages are let go once read, gathered into runs: a
  // madvise per record (one TLB shootdown each, a VM exit per IPI on a
  // virtual machine) cost the move of `small` at C=8 about a tenth of its
  // throughput; runs of at most 4 MiB keep the resident set where it was.
  MappedPageReleaser release;
  MBX_RETURN_IF_ERROR(r.ListFolders(mailbox, &out.folders));
  for (const FolderInfo& f : out.folders) {
    FolderSum sum;
    MBX_RETURN_IF_ERROR(r.ForEachItem(mailbox, f.id, [&](uint64_t id, std::string_view rec) {
      auto info = InspectRecord(rec);
      release.Add(rec);
      if (!info.ok()) {
        return Status::Corruption("item " + std::to_string(id) + " of folder '" + f.name +
                                  "' is damaged: " + info.status().message());
      }
      ++sum.items;
      sum.hash_sum += MixItemHash(info->content_hash);
      return Status::Ok();
    }));
    if (sum.items > 0) out.sums[f.id] = sum;
  }
  return out;
}

Result<StoreFigures> Store::Figures() {
  const LogInfo log = GetLogInfo();
  const StoreStats st = stats();
  StoreFigures f;
  f.sync = std::string(SyncModeName(log.sync));
  f.log_mode = std::string(LogModeName(log.mode));
  f.log_end_lsn = log.end_lsn;
  f.log_files = log.file_count;
  f.log_syncs = log.syncs;
  f.log_sync_ns = log.sync_time.count();
  f.groups = st.writer.groups;
  f.batches = st.writer.batches;
  f.commit_ns = st.writer.commit_time.count();
  f.queue_wait_ns = st.writer.queue_wait_time.count();
  f.log_append_ns = st.writer.log_time.count();
  f.map_resizes = st.map_resizes;
  f.data_syncs = st.data_syncs;
  f.copied_bytes = st.copied_bytes;
  f.dead_bytes_dropped = st.dead_bytes_dropped;
  return f;
}

}  // namespace mbx
