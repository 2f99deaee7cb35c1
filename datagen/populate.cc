#include "datagen/populate.h"

#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <numeric>

#include "store/checksum.h"
#include "store/item_codec.h"
#include "store/tsan_annotations.h"

namespace mbx::datagen {

bool IsCorruptedItem(uint64_t seed, uint32_t index, uint64_t item_id, double rate) {
  if (rate <= 0) return false;
  if (rate >= 1) return true;
  uint64_t in[3] = {seed, index, item_id};
  uint64_t h = XXH3_64bits_withSeed(in, sizeof in, 0xc0ffee);
  return double(h >> 11) * 0x1.0p-53 < rate;
}

namespace {

// Damages a record deterministically: flips one byte chosen by a hash.
void Damage(std::string* record, uint64_t salt) {
  if (record->empty()) return;
  uint64_t h = XXH3_64bits_withSeed(record->data(), std::min<size_t>(record->size(), 64), salt);
  (*record)[h % record->size()] ^= char(0x5a);
}

class StoreSink final : public FolderSink {
 public:
  StoreSink(Store* store, const MailboxSpec& spec, const PopulateOptions& o, PopulateProgress* p)
      : store_(store), spec_(spec), opts_(o), progress_(p) {
    info_.guid = spec.guid;
    info_.owner = spec.user_name;
    info_.display_name = spec.display_name;
    info_.state = MailboxState::kActive;
    codec_.zstd_level = store->zstd_level();
  }

  Status OnFolder(const FolderInfo& f) override {
    writes_.batch().PutFolder(spec_.guid, f);
    folders_[f.id] = f;
    ++info_.folder_count;
    return Status::Ok();
  }

  Status OnItem(uint32_t folder_id, uint64_t item_id, Item&& item) override {
    std::string rec;
    MBX_RETURN_IF_ERROR(EncodeItem(item, codec_, &rec));
    info_.logical_bytes += item.LogicalSize();
    if (IsCorruptedItem(opts_.gen.seed, spec_.index, item_id, opts_.corrupt_rate)) {
      Damage(&rec, item_id);
      corrupted_.push_back({spec_.guid, spec_.user_name, "", folder_id, item_id});
    }
    info_.stored_bytes += rec.size();
    ++info_.item_count;
    info_.next_item_id = std::max(info_.next_item_id, item_id + 1);
    if (progress_) {
      progress_->items.fetch_add(1, std::memory_order_relaxed);
      progress_->logical_bytes.fetch_add(item.LogicalSize(), std::memory_order_relaxed);
    }
    writes_.batch().PutItem(spec_.guid, folder_id, item_id, std::move(rec));
    return writes_.MaybeFlush();
  }

  Status Finish() {
    writes_.batch().PutMailbox(info_);
    MBX_RETURN_IF_ERROR(writes_.Finish());
    std::vector<FolderInfo> fv;
    for (auto& [id, f] : folders_) fv.push_back(f);
    auto paths = FolderPaths(fv);
    if (paths.ok()) {
      for (auto& c : corrupted_) c.folder_path = (*paths)[c.folder_id];
    }
    return Status::Ok();
  }

  const MailboxInfo& info() const { return info_; }
  std::vector<CorruptedItem>& corrupted() { return corrupted_; }

 private:
  Store* store_;
  const MailboxSpec& spec_;
  const PopulateOptions& opts_;
  PopulateProgress* progress_;
  CodecOptions codec_;
  MailboxInfo info_;
  // At most two batches in flight, so generation overlaps the commit of the
  // previous batch.
  BatchWriter writes_{store_, opts_.batch_bytes};
  std::map<uint32_t, FolderInfo> folders_;
  std::vector<CorruptedItem> corrupted_;
};

}  // namespace

Result<PopulateResult> Populate(Organization& org, const std::string& store_name,
                                const PopulateOptions& options, PopulateProgress* progress) {
  if (options.corrupt_rate < 0 || options.corrupt_rate > 1) {
    return Status::InvalidArgument("corrupt rate must be between 0 and 1");
  }
  const auto t0 = std::chrono::steady_clock::now();
  MBX_ASSIGN_OR_RETURN(StoreRecord srec, org.directory().GetStore(store_name));
  MBX_ASSIGN_OR_RETURN(Store * store, org.GetStore(store_name));
  std::vector<MailboxSpec> plan = PlanMailboxes(options.gen);
  for (const auto& spec : plan) {
    auto u = org.directory().GetUser(spec.user_name);
    if (u.ok()) {
      return Status::AlreadyExists("user " + spec.user_name +
                                   " already exists in the directory; generate into a new organisation or use another --seed");
    }
    if (!u.status().IsNotFound()) return u.status();
  }

  // Largest first, so one huge mailbox does not finish alone at the end.
  std::vector<size_t> order(plan.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return plan[a].target_bytes > plan[b].target_bytes; });

  std::vector<MailboxInfo> infos(plan.size());
  std::vector<std::vector<CorruptedItem>> corrupted(plan.size());
  std::mutex err_mu;
  Status first_error;
  std::unique_ptr<tbb::global_control> limit;
  if (options.threads > 0) {
    limit = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                  size_t(options.threads));
  }
  static TaskEdges edges;  // static: a task reaches it without reading a capture first
  edges.Release();
  tbb::parallel_for(size_t(0), order.size(), size_t(1), [&](size_t k) {
    TaskEdgeScope edge(edges);
    const MailboxSpec& spec = plan[order[k]];
    {
      std::lock_guard<std::mutex> l(err_mu);
      if (!first_error.ok()) return;
    }
    StoreSink sink(store, spec, options, progress);
    Status s = GenerateMailbox(spec, &sink);
    Status f = sink.Finish();
    if (s.ok()) s = f;
    if (!s.ok()) {
      std::lock_guard<std::mutex> l(err_mu);
      if (first_error.ok()) first_error = s.WithContext("generating mailbox of " + spec.user_name);
      return;
    }
    infos[order[k]] = sink.info();
    corrupted[order[k]] = std::move(sink.corrupted());
    if (progress) progress->mailboxes_done.fetch_add(1, std::memory_order_relaxed);
  });
  edges.Acquire();
  if (!first_error.ok()) return first_error;

  std::vector<UserRecord> users;
  PopulateResult r;
  for (size_t i = 0; i < plan.size(); ++i) {
    const MailboxSpec& spec = plan[i];
    users.push_back({spec.user_name, spec.display_name, spec.smtp, spec.guid, srec.dn, srec.server});
    r.mailboxes++;
    r.folders += infos[i].folder_count;
    r.items += infos[i].item_count;
    r.stored_bytes += infos[i].stored_bytes;
    r.logical_bytes += infos[i].logical_bytes;
    for (auto& c : corrupted[i]) r.corrupted.push_back(std::move(c));
  }
  MBX_RETURN_IF_ERROR(org.directory().PutUsers(users));
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace mbx::datagen
