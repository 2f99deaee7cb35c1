// StoreHandle: the one interface the engine uses to talk to a mailbox store,
// wherever the store is. Two implementations: `Store` itself (the store is
// open in this process) and the RPC client of a store served by
// `mbxmove serve` on another host (net/remote_store.h). The engine never
// knows which it has, and the tests run the same moves over both.
//
// Every call is mailbox-scoped or store-wide; nothing here exposes LMDB.
// Records travel as stored (compressed, checksummed): a reader gets the
// exact bytes of each item record and a writer hands over whole records.
//
// Thread safety: every implementation is safe for concurrent use from many
// threads. A MailboxReadStream is used from one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/records.h"
#include "store/status.h"
#include "store/write_batch.h"

namespace mbx {

// One item record of a read stream.
struct ItemRef {
  uint32_t folder_id = 0;
  uint64_t item_id = 0;
  std::string_view record;  // valid while the chunk (and its stream) lives
};

// A run of item records in (folder id, item id) order. `owner` keeps the
// bytes the views point into alive (nullptr when they point into the
// stream's own snapshot, which then must outlive the chunk).
struct ItemChunk {
  std::vector<ItemRef> items;
  std::shared_ptr<const void> owner;
  size_t bytes() const {
    size_t n = 0;
    for (const auto& r : items) n += r.record.size();
    return n;
  }
};

// A read of one mailbox from one snapshot: the header and the folder tree
// as of the snapshot, then every item record, folder by folder in id order.
// The snapshot is kept until the stream is destroyed.
class MailboxReadStream {
 public:
  virtual ~MailboxReadStream() = default;
  virtual const MailboxInfo& mailbox() const = 0;
  virtual const std::vector<FolderInfo>& folders() const = 0;  // in id order
  // The next records, about `max_bytes` of them (at least one record unless
  // the mailbox is exhausted). An empty chunk means the end.
  virtual Status Next(size_t max_bytes, ItemChunk* out) = 0;
  // Hints that the caller is done with a record's bytes (local stores drop
  // the mapped pages from the process's resident set). Optional.
  virtual void Release(std::string_view /*record*/) {}
};

// Per folder of a mailbox: how many items and the sum of MixItemHash over
// their content hashes (store/checksum.h), as a verify compares them.
struct FolderSum {
  uint64_t items = 0;
  uint64_t hash_sum = 0;
  bool operator==(const FolderSum&) const = default;
};
struct MailboxChecksums {
  std::vector<FolderInfo> folders;     // in id order
  std::map<uint32_t, FolderSum> sums;  // folder id -> sum (folders without items absent)
};

// What a store's writer and log have done since it was opened: a caller
// takes two readings and subtracts. Durations in nanoseconds.
struct StoreFigures {
  std::string sync;            // "full" | "batch" | "none"
  std::string log_mode;        // "backup-flush" | "circular"
  uint64_t log_end_lsn = 0;    // bytes of log written since creation
  uint64_t log_files = 0;      // log files on disk now
  uint64_t log_syncs = 0;
  int64_t log_sync_ns = 0;
  uint64_t groups = 0;         // writer commit groups
  uint64_t batches = 0;        // batches committed
  int64_t commit_ns = 0;       // LMDB commit time
  int64_t queue_wait_ns = 0;   // batches waiting for their group
  int64_t log_append_ns = 0;
  uint64_t map_resizes = 0;
  uint64_t data_syncs = 0;     // syncs of data.mdb (each commit's)
  uint64_t copied_bytes = 0;   // bytes the write path copied in memory (StoreStats::copied_bytes)
  uint64_t dead_bytes_dropped = 0;  // deleted records' pages asked out of the page cache (StoreStats)
};

// What a client (a user's mail program) does to a mailbox, as one request
// (ApplyClientOp): each is one atomic write that bumps the mailbox's change
// number. Refused with Busy ("move in progress") while a move has the
// mailbox locked (or is filling it on its target), as Exchange refuses a
// client; NotFound for a mailbox, folder or item that is not there.
struct ClientOp {
  enum class Kind : uint8_t {
    kDeliver = 1,   // a new item (`record`, an encoded item) into `folder_id`
    kSetFlags,      // item `item_id` in `folder_id`: flags and keywords become `flags`, `keywords`
    kMoveItem,      // item `item_id` from `folder_id` to `to_folder_id`
    kDeleteItem,    // item `item_id` in `folder_id`
    kCreateFolder,  // a user folder named `name` under `folder_id`
    kRenameFolder,  // user folder `folder_id` becomes `name`
    kDeleteFolder,  // user folder `folder_id` (empty, without subfolders)
  };
  Kind kind = Kind::kDeliver;
  uint32_t folder_id = 0;
  uint64_t item_id = 0;
  uint32_t to_folder_id = 0;
  uint32_t flags = 0;
  uint32_t keywords = 0;
  std::string name;
  std::string record;
};
std::string_view ClientOpKindName(ClientOp::Kind k);

struct ClientOpResult {
  uint64_t id = 0;             // the new item's (deliver) or folder's (create) id
  uint64_t change_number = 0;  // the mailbox's change number after the op
};

// One entry of a mailbox's change index: what changed, with where the item
// was before and after the change (0 = nowhere: not yet delivered, or gone).
// Folder entries name the folder in `id` and leave before/after 0.
struct ChangeEntry {
  enum class Kind : uint8_t {
    kDeliver = 1, kSetFlags, kMoveItem, kDeleteItem, kCreateFolder, kRenameFolder, kDeleteFolder,
  };
  uint64_t change_number = 0;
  Kind kind = Kind::kDeliver;
  uint64_t id = 0;  // item id, or folder id for folder entries
  uint32_t before_folder = 0;
  uint32_t after_folder = 0;
  bool operator==(const ChangeEntry&) const = default;
};
std::string_view ChangeKindName(ChangeEntry::Kind k);

// One item changed since a sync point, as a sync needs it: where the item
// was at the sync point (0 = not there) and where it is now (0 = gone, a
// tombstone), with its record as it is now. An item that came and went
// since the sync point is a tombstone with both 0: a paged pass may have
// copied it from a later page's snapshot (see ChangesPage).
struct ItemDelta {
  uint64_t item_id = 0;
  uint32_t old_folder = 0;
  uint32_t new_folder = 0;
  std::string record;  // when new_folder != 0
};

// What changed in a mailbox since change number `since`, read from one
// snapshot (like an ICS synchronisation: the header's change_number is the
// new sync point).
struct ChangeSet {
  MailboxInfo mailbox;              // the header at the snapshot
  // Paged (ChangesPage): more items changed after `next_after_item`; ask
  // again from there. (The pages may come from different snapshots: a sync
  // point is the first page's change number.)
  bool more = false;
  uint64_t next_after_item = 0;
  std::vector<FolderInfo> folders;  // the whole folder tree at the snapshot, in id order
  // Every change after `since`, in change-number order: on the first page
  // only (`after_item` 0); a later page carries none, so that a large index
  // (a user who flagged thousands of items) is not read and sent again with
  // every page.
  std::vector<ChangeEntry> entries;
  std::vector<ItemDelta> items;     // each item changed after `since`, in item-id order
  uint64_t record_bytes() const {
    uint64_t n = 0;
    for (const auto& d : items) n += d.record.size();
    return n;
  }
};

// A page of ReadChanges: the changed items after `after_item`, as many as
// fit in `max_record_bytes` of records (0: every item).
struct ChangesPage {
  uint64_t after_item = 0;
  uint64_t max_record_bytes = 0;
};

class StoreHandle {
 public:
  virtual ~StoreHandle() = default;

  virtual const std::string& name() const = 0;
  // The zstd level items are stored at (0 = none).
  virtual int zstd_level() const = 0;

  // The mailbox's header as now; NotFound if absent.
  virtual Result<MailboxInfo> GetMailbox(const Guid& mailbox) = 0;
  virtual Status ListMailboxes(std::vector<MailboxInfo>* out) = 0;
  // Opens a read of the mailbox from one snapshot; NotFound if absent.
  virtual Result<std::unique_ptr<MailboxReadStream>> ReadMailbox(const Guid& mailbox) = 0;

  // Group commit: resolves when the batch is durable per the store's sync
  // mode. Batches submitted from one thread are applied in order.
  virtual std::future<Status> WriteAsync(WriteBatch batch) = 0;
  Status Write(WriteBatch batch) { return WriteAsync(std::move(batch)).get(); }

  // State changes, each one atomic check-and-write (see Store).
  virtual Status TransitionMailbox(const Guid& mailbox, std::initializer_list<MailboxState> from,
                                   MailboxState to) = 0;
  virtual Status DeleteMailboxIn(const Guid& mailbox, std::initializer_list<MailboxState> from) = 0;
  // TransitionMailbox, then ReadMailbox from a snapshot that sees the new
  // state: how a move locks its source and reads it. One round trip on a
  // remote store, where the two calls cost two. *transitioned says whether
  // the transition was made; with an IOError and *transitioned false, it
  // may have been (the answer was lost).
  virtual Result<std::unique_ptr<MailboxReadStream>> TransitionAndRead(const Guid& mailbox,
                                                                       std::initializer_list<MailboxState> from,
                                                                       MailboxState to, bool* transitioned) {
    *transitioned = false;
    MBX_RETURN_IF_ERROR(TransitionMailbox(mailbox, from, to));
    *transitioned = true;
    return ReadMailbox(mailbox);
  }
  // The same for several mailboxes, a status each (in order): a store may
  // check them all and write them together (the local store: one commit,
  // one sync); these defaults take them one at a time.
  virtual std::vector<Status> TransitionMailboxes(const std::vector<Guid>& mailboxes,
                                                  std::initializer_list<MailboxState> from, MailboxState to) {
    std::vector<Status> out;
    for (const Guid& g : mailboxes) out.push_back(TransitionMailbox(g, from, to));
    return out;
  }
  virtual std::vector<Status> DeleteMailboxesIn(const std::vector<Guid>& mailboxes,
                                                std::initializer_list<MailboxState> from) {
    std::vector<Status> out;
    for (const Guid& g : mailboxes) out.push_back(DeleteMailboxIn(g, from));
    return out;
  }

  // Folder tree and per-folder item checksums of the mailbox as stored now;
  // Corruption if a record does not decode.
  virtual Result<MailboxChecksums> Checksums(const Guid& mailbox) = 0;

  // Makes every acknowledged write durable now (sync mode `none` excepted).
  virtual Status Flush() = 0;
  virtual Result<StoreFigures> Figures() = 0;
  // Hint after a mailbox was deleted: the caller no longer needs its pages.
  virtual void ReleaseResidentPages() {}
  // Reached over the network, so that each call costs a round trip: a mover
  // then makes the calls that do not wait for each other at once.
  virtual bool remote() const { return false; }

  // A client's operation on a mailbox (see ClientOp).
  virtual Result<ClientOpResult> ApplyClientOp(const Guid& mailbox, const ClientOp& op) = 0;

  // Change tracking. A mailbox keeps its change index only while a sync
  // (an online move) tracks it: TrackChanges(mailbox, n) starts tracking (if
  // off) and prunes the entries up to change number n, which that sync has
  // copied; kStopTracking stops tracking and drops every entry. Returns the
  // mailbox's change number now.
  static constexpr uint64_t kStopTracking = ~uint64_t{0};
  virtual Result<uint64_t> TrackChanges(const Guid& mailbox, uint64_t prune_through) = 0;
  // TrackChanges(mailbox, 0), then ReadMailbox: an online move's start. The
  // snapshot is taken after tracking began, so every change it lacks is in
  // the index. One round trip on a remote store (ReadRequest.track_changes).
  // A read that fails after tracking began leaves it on: the move's
  // rollback stops it.
  virtual Result<std::unique_ptr<MailboxReadStream>> TrackAndRead(const Guid& mailbox) {
    if (auto tr = TrackChanges(mailbox, 0); !tr.ok()) return tr.status().WithContext("tracking the mailbox's changes");
    return ReadMailbox(mailbox);
  }
  // TrackChanges(m, kStopTracking) for each, a status each (in order): a
  // remote store sends them together (a clean-up round's sources kept).
  virtual std::vector<Status> StopTrackingChanges(const std::vector<Guid>& mailboxes) {
    std::vector<Status> out;
    for (const Guid& g : mailboxes) out.push_back(TrackChanges(g, kStopTracking).status());
    return out;
  }
  // What changed after change number `since`, from one snapshot.
  // InvalidArgument if the mailbox is not tracked or entries after `since`
  // were pruned (the sync must start over with a full copy). With a page,
  // only the changed items after `page.after_item`, as many as fit in
  // `page.max_record_bytes` of records (one at least); `more` says whether
  // others follow (the header, folders and entries come with every page).
  virtual Result<ChangeSet> ReadChanges(const Guid& mailbox, uint64_t since, const ChangesPage& page = {}) = 0;
  // TransitionMailbox, then ReadChanges from a snapshot that sees the new
  // state: an online move's lock and its final delta's first page, one
  // round trip on a remote store. *transitioned as for TransitionAndRead.
  virtual Result<ChangeSet> TransitionAndReadChanges(const Guid& mailbox, std::initializer_list<MailboxState> from,
                                                     MailboxState to, uint64_t since, const ChangesPage& page,
                                                     bool* transitioned) {
    *transitioned = false;
    MBX_RETURN_IF_ERROR(TransitionMailbox(mailbox, from, to));
    *transitioned = true;
    return ReadChanges(mailbox, since, page);
  }
  // An online move's last pass and its lock in one: the changes after
  // `since` (a page, as ReadChanges); if they are one page of at most
  // `max_items` items, the mailbox is then taken from `from` to `to` and
  // the page read again after it (as TransitionAndReadChanges), so that
  // it is the final delta's. *transitioned says which page it is. One
  // round trip on a remote store (ChangesRequest.lock_if_items_at_most).
  virtual Result<ChangeSet> ReadChangesLockingIfFew(const Guid& mailbox, uint64_t since, const ChangesPage& page,
                                                    uint64_t max_items, std::initializer_list<MailboxState> from,
                                                    MailboxState to, bool* transitioned) {
    *transitioned = false;
    MBX_ASSIGN_OR_RETURN(ChangeSet cs, ReadChanges(mailbox, since, page));
    if (cs.more || cs.items.size() > max_items) return cs;
    return TransitionAndReadChanges(mailbox, from, to, since, page, transitioned);
  }
};

// Fills WriteBatches up to `batch_bytes` and hands each to a store's writer
// without waiting, keeping at most `depth` in flight, so the caller prepares
// the next batch while earlier ones commit. Batches are applied in the order
// submitted; the first failure is returned by the call that finds it and by
// Finish(). Use from one thread; the destructor waits for what is in flight.
class BatchWriter {
 public:
  BatchWriter(StoreHandle* store, size_t batch_bytes, size_t depth = 2)
      : store_(store), batch_bytes_(batch_bytes), depth_(depth) {}
  BatchWriter(const BatchWriter&) = delete;
  BatchWriter& operator=(const BatchWriter&) = delete;
  ~BatchWriter() { (void)Drain(); }

  // The batch being filled.
  WriteBatch& batch() { return batch_; }
  // Submits the batch being filled once it holds `batch_bytes`.
  Status MaybeFlush() { return batch_.ApproximateBytes() >= batch_bytes_ ? Flush() : Status::Ok(); }
  // Submits the batch being filled now (nothing if empty).
  Status Flush();
  // Submits a batch the caller built (after the one being filled, if any).
  // `done`, if given, runs once the batch has been written or has failed
  // (in a later Submit, Drain or the destructor, on the caller's thread):
  // e.g. to let go of the bytes the batch borrowed.
  Status Submit(WriteBatch batch, std::function<void()> done = {});
  // Flush, then wait for every batch in flight: the first failure of all.
  Status Finish();
  // Waits for every batch in flight; the first failure among them. The
  // batch being filled stays.
  Status Drain();
  size_t in_flight() const { return inflight_.size(); }

 private:
  StoreHandle* store_;
  size_t batch_bytes_;
  size_t depth_;
  WriteBatch batch_;
  struct InFlight {
    std::future<Status> result;
    std::function<void()> done;
  };
  std::vector<InFlight> inflight_;  // oldest first
  Status first_error_;
};

}  // namespace mbx
