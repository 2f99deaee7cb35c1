// Store: one mailbox store = one folder holding an LMDB environment (named
// databases meta, mailboxes, folders, items) and its transaction log (logs/).
//
//   stores/NAME/data.mdb, lock.mdb   LMDB (readable by mdb_stat -a)
//   stores/NAME/LOCK                 held (flock) by the process that has it open
//   stores/NAME/logs/E00*.log        transaction log generations
//   stores/NAME/logs/E00.chk         checkpoint
//   stores/NAME/UNSYNCED             while open with --sync none: the boot it
//                                    was written in (see Store::Open)
//   stores/NAME/RESERVE              disk space held back for rollbacks
//                                    (see "Out of disk space" below)
//   stores/NAME/data.ckpt            while open with deferred data syncs:
//                                    data.mdb's last durable meta pages
//                                    (see "Data syncs" below)
//
// Writes go through one group-commit writer (group_commit.h): the group's
// redo record is appended to the log first, then one LMDB transaction applies
// it and stores the log checkpoint (the LSN just past that record) in the
// meta database. Opening a store replays the records after the checkpoint, so
// a crash between the log append and the commit loses nothing.
//
// Reads use snapshots (StoreReader = one LMDB read transaction).
//
// Data syncs. The log holds every committed group, so data.mdb needs to be
// durable only as far as the log's replay starts: the checkpoint. With
// OpenOptions::data_sync_bytes = 0 every commit syncs data.mdb's pages
// (MDB_NOMETASYNC: its meta page is synced by the next commit) and the
// checkpoint a machine crash leaves is the commit before the last. Otherwise
// (the default, sync full or batch) commits do not sync data.mdb at all
// (MDB_NOSYNC), and every data_sync_bytes of applied groups (or
// kDataCheckpointSeconds) the apply thread takes a data checkpoint
// (data_checkpoint.cc): it syncs data.mdb, saves its two meta pages in
// data.ckpt (written whole and renamed into place, the folder synced), and
// holds a read transaction on that snapshot so that LMDB reuses none of its
// pages until the next data checkpoint is saved. A machine crash can leave
// data.mdb's later pages and meta pages in any state; the next open writes
// the saved meta pages back before LMDB reads the file, which puts data.mdb
// at the data checkpoint (its pages untouched since it was synced), and
// replays the log from there. The log keeps every file after the data
// checkpoint (circular logging and the backup flush remove only before it).
// A clean close syncs data.mdb and removes data.ckpt.
//
// Out of disk space: an open store holds a disk reserve (disk_reserve.h,
// OpenOptions::disk_reserve_bytes). When a write fails because the file
// system is full (a log append or an LMDB commit: ENOSPC, EDQUOT), the store
// releases the reserve and runs "on its reserve": it takes only the batches
// that free space or change mailbox headers (WriteBatch::MayUseLogReserve:
// what rolling back a move or an import writes, and the source's lock and
// unlock), retrying such a batch once after releasing the reserve, and
// refuses every other batch with NoSpace ("store MS2 is out of disk space:
// ..."). It leaves that state when it is opened again with room on the
// file system for the reserve and as much again.
//
// Thread safety: a Store is safe for concurrent use from many threads.
// A thread must not call Write() while it holds a StoreReader of the same
// store: the writer may need every reader gone to grow the map.
//
// Where the code is, by concern:
//   store_open.cc      Create, Open (meta checks and log replay), ~Store
//   store_write.cc     the write path: Write/WriteAsync, the group-commit
//                      stages PrepareGroup/ApplyGroup, ApplyPayload, GrowMap,
//                      Flush
//   mailbox_ops.cc     TransitionMailbox(es), DeleteMailbox(es)In, Logon, Deliver
//   client_ops.cc      ApplyClientOp (what users do) and the change index
//                      (TrackChanges, ReadChanges)
//   store_reader.cc    BeginRead, StoreReader, the resize gate (Add/RemoveReader)
//   page_release.cc    ReleaseResidentPages
//   store_settings.cc  SetLogMode/SetLogQuota/SetSyncMode, GetLogInfo, stats
//   backup.cc          Backup (and restore, declared in backup.h)
//   store_internal.h   helpers the files above share (not for outside store/)
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/disk_reserve.h"
#include "store/file_io.h"
#include "store/item.h"
#include "store/group_commit.h"
#include "store/lmdb_env.h"
#include "store/mailbox_locks.h"
#include "store/records.h"
#include "store/status.h"
#include "store/store_handle.h"
#include "store/txlog_writer.h"
#include "store/write_batch.h"

namespace mbx {

inline constexpr uint32_t kStoreFormatVersion = 1;

// Chosen at creation and kept in the store's meta database.
struct StoreOptions {
  int zstd_level = 3;  // compression level of item messages (0 = none)
  LogOptions log;
};

// Chosen each time a store is opened.
struct OpenOptions {
  std::optional<SyncMode> sync_override;  // e.g. `move --sync none`
  size_t initial_map_bytes = 16ull << 30;  // virtual; grows when full
  GroupCommitOptions group_commit;
  Env* env = nullptr;  // nullptr = Env::Default()
  // Disk space held back so that moves failing on a full disk can still roll
  // back, and the store close cleanly (see "Out of disk space" above); 0 =
  // none. The default covers rolling back a few concurrent moves of mailboxes
  // of up to about 100,000 items each (LMDB copies every leaf page it deletes
  // from, and lists each freed page in its free list).
  uint64_t disk_reserve_bytes = kDefaultDiskReserveBytes;
  static constexpr uint64_t kDefaultDiskReserveBytes = 4u << 20;
  // data.mdb is synced at data checkpoints, one per this many bytes of
  // applied groups (see "Data syncs" above); 0 = at every commit. Sync mode
  // none syncs nothing either way.
  uint64_t data_sync_bytes = kDefaultDataSyncBytes;
  static constexpr uint64_t kDefaultDataSyncBytes = 64u << 20;
};

class Store;

// A read snapshot of a store. Must not outlive its Store. Use from one thread
// at a time (it may be handed between threads).
class StoreReader {
 public:
  StoreReader(StoreReader&&) noexcept;
  StoreReader& operator=(StoreReader&&) = delete;
  ~StoreReader();

  Result<MailboxInfo> GetMailbox(const Guid& guid) const;
  Status ListMailboxes(std::vector<MailboxInfo>* out) const;
  // Folders of a mailbox in id order.
  Status ListFolders(const Guid& guid, std::vector<FolderInfo>* out) const;
  // Visits the items of one folder in id order; the record view is valid
  // only during the call. `fn` returns OK to go on, anything else stops and
  // is returned (Status::Aborted("stop") is the conventional early stop).
  Status ForEachItem(const Guid& guid, uint32_t folder_id,
                     const std::function<Status(uint64_t item_id, std::string_view record)>& fn) const;
  // Visits items with id > after_id, at most `limit` of them; returns the
  // last id visited through *last_id (unchanged if none).
  Status ScanItems(const Guid& guid, uint32_t folder_id, uint64_t after_id, size_t limit,
                   const std::function<Status(uint64_t item_id, std::string_view record)>& fn,
                   uint64_t* last_id) const;
  // The record of one item; NotFound if absent. Valid while the reader lives.
  Result<std::string_view> GetItem(const Guid& guid, uint32_t folder_id, uint64_t item_id) const;
  Result<std::string> GetMeta(std::string_view key) const;
  // Visits the change-index entries of a mailbox after change number
  // `since`, in order (store_handle.h: ChangeEntry).
  Status ForEachChange(const Guid& guid, uint64_t since,
                       const std::function<Status(const ChangeEntry&)>& fn) const;

 private:
  friend class Store;
  explicit StoreReader(Store* s) : store_(s) {}
  Store* store_;
  LmdbTxn txn_;
};

struct LogInfo {
  LogMode mode = LogMode::kBackupFlush;
  SyncMode sync = SyncMode::kBatch;
  uint64_t file_bytes = 0;
  uint64_t quota_bytes = 0;
  uint64_t checkpoint_lsn = 0;  // end of the last record applied to the database
  uint64_t end_lsn = 0;         // = bytes of log written since the store was created
  uint64_t oldest_generation = 0;
  uint64_t newest_generation = 0;
  uint64_t file_count = 0;
  uint64_t disk_bytes = 0;
  uint64_t last_backup_lsn = 0;  // 0 = never backed up
  uint64_t syncs = 0;
  std::chrono::nanoseconds sync_time{0};
  uint64_t disk_reserve_bytes = 0;  // held now (0 while running on it)
  bool out_of_space = false;        // running on its reserve: only space-freeing writes are taken
  // Circular logging: failed removals of log files the checkpoint has passed
  // since open, and the last one's error while no removal has succeeded since.
  uint64_t remove_failures = 0;
  std::string remove_error;
};

struct StoreStats {
  GroupCommitStats writer;  // groups, batches, and the time in each commit stage
  uint64_t map_resizes = 0;
  // Syncs of data.mdb since open: each commit's, or (deferred data syncs,
  // the default) each data checkpoint's; none with sync none.
  uint64_t data_syncs = 0;
  uint64_t data_checkpoints = 0;          // saved since open (the open's own included)
  uint64_t data_checkpoint_failures = 0;  // saves that failed (the one before stood)
  // Bytes the write path copied in memory since open: each group's log
  // payload framing (keys, lengths, values under 512 bytes; larger values
  // are written to the log from the batches) and, at its commit, LMDB's
  // copy of each put key and value into its pages.
  uint64_t copied_bytes = 0;
  uint64_t replayed_records = 0;  // at open
  // Bytes of deleted records' pages the store asked the kernel to drop from
  // the page cache (see Store::DropDeadPages): a moved mailbox's source
  // pages, for instance. Asked, not dropped: a 64 KiB folio that also holds
  // a live page stays.
  uint64_t dead_bytes_dropped = 0;
  // Scans of a mailbox's change index by ReadChanges since open: one per
  // pass, however many pages it is read in (the later pages reuse it while
  // the mailbox has not changed; see Store::ChangeScan).
  uint64_t change_index_scans = 0;
};

// Store is the local StoreHandle: the store open in this process.
class Store final : public StoreHandle {
 public:
  // Creates an empty store in `dir` (which must not exist or be empty).
  static Status Create(const std::string& dir, const std::string& name, const StoreOptions& options);
  // Opens an existing store and replays its log after the checkpoint.
  //
  // A store open with sync mode none keeps an UNSYNCED file (boot id, pid)
  // in its folder from open until a clean close has synced everything. Open
  // refuses a store whose UNSYNCED file names another boot than this one
  // (/proc/sys/kernel/random/boot_id, or $MBX_BOOT_ID for tests): the
  // machine stopped while writes were unsynced, so the content cannot be
  // trusted; the error says to restore from backup. The same boot means only
  // the process died, and the page cache kept every write.
  static Result<std::unique_ptr<Store>> Open(const std::string& dir, const OpenOptions& options = {});
  ~Store() override;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& name() const override { return name_; }
  const std::string& dir() const { return dir_; }
  int zstd_level() const override { return zstd_level_; }

  // Group commit: blocks until this batch is durable per the sync mode.
  Status Write(WriteBatch batch);
  std::future<Status> WriteAsync(WriteBatch batch) override;

  // StoreHandle reads (store_handle.cc), each from a snapshot of its own.
  Result<MailboxInfo> GetMailbox(const Guid& mailbox) override;
  Status ListMailboxes(std::vector<MailboxInfo>* out) override;
  Result<std::unique_ptr<MailboxReadStream>> ReadMailbox(const Guid& mailbox) override;
  Result<MailboxChecksums> Checksums(const Guid& mailbox) override;
  Result<StoreFigures> Figures() override;

  Result<StoreReader> BeginRead();

  // Changes a mailbox's state from one of `from` to `to`, keeping the rest
  // of its header. NotFound if the mailbox is absent; Busy (with the state in
  // the message) if it is in none of the `from` states.
  //
  // Mailbox states change only through these calls and Deliver, which hold
  // the mailbox's header lock (header_locks_) from the read of the state
  // until the write is applied: a check and its write are one atomic step
  // (one process holds a store, by its LOCK file). Steps on different
  // mailboxes do not wait for each other, and their batches commit together.
  Status TransitionMailbox(const Guid& mailbox, std::initializer_list<MailboxState> from,
                           MailboxState to) override;
  // Deletes a mailbox (header, folders, items) if it is in one of `from`.
  Status DeleteMailboxIn(const Guid& mailbox, std::initializer_list<MailboxState> from) override;
  // Each mailbox checked as above; those that pass written in one batch (one
  // commit): all of them, or none if the write fails (each gets its
  // failure). A mailbox that does not pass gets its own status.
  std::vector<Status> TransitionMailboxes(const std::vector<Guid>& mailboxes,
                                          std::initializer_list<MailboxState> from, MailboxState to) override;
  std::vector<Status> DeleteMailboxesIn(const std::vector<Guid>& mailboxes,
                                        std::initializer_list<MailboxState> from) override;

  // A client logon: OK for an active mailbox; Busy ("move in progress") for
  // one locked by a move; NotFound otherwise (absent, hidden or soft-deleted).
  Status Logon(const Guid& mailbox);
  // Delivers an item into a folder of an active mailbox and returns its id.
  // Refused with Busy ("move in progress") while the mailbox is locked by a
  // move; NotFound if the mailbox or folder does not exist.
  Result<uint64_t> Deliver(const Guid& mailbox, uint32_t folder_id, const Item& item);

  // Client operations and change tracking (client_ops.cc; see StoreHandle).
  Result<ClientOpResult> ApplyClientOp(const Guid& mailbox, const ClientOp& op) override;
  Result<uint64_t> TrackChanges(const Guid& mailbox, uint64_t prune_through) override;
  Result<ChangeSet> ReadChanges(const Guid& mailbox, uint64_t since, const ChangesPage& page = {}) override;

  // Drops this store's mapped pages from the process's resident set (the
  // page cache keeps them; readers fault them back in). LMDB touches every
  // overflow page of a record it deletes, so a move calls this after deleting
  // a source mailbox: its RSS then does not grow with the data moved.
  void ReleaseResidentPages() override;

  // Makes every acknowledged write durable now (a log fsync: the log holds
  // every committed group, and a reopen replays what data.mdb lacks),
  // whatever the sync mode except `none`. A move calls this before its
  // switch, so the commit point never runs ahead of the data.
  Status Flush() override;

  LogInfo GetLogInfo();
  Status SetLogMode(LogMode mode);    // persistent
  Status SetLogQuota(uint64_t bytes); // persistent; 0 = none
  Status SetSyncMode(SyncMode mode);  // persistent
  StoreStats stats() const;

  // Full backup: a consistent copy of the database into `out_dir` (created;
  // must be empty) plus a manifest with the log position it covers; then the
  // logs before that position are deleted. Safe while writes go on.
  // Defined in backup.cc, next to restore (backup.h).
  struct BackupResult {
    uint64_t lsn = 0;
    uint64_t bytes = 0;
    int log_files_truncated = 0;
    int log_files_copied = 0;
  };
  Result<BackupResult> Backup(const std::string& out_dir, bool incremental);

  // Used by backup.cc and tests.
  MDB_env* env() const { return env_.get(); }

 private:
  friend class StoreReader;
  Store() = default;
  Status OpenImpl(const std::string& dir, const OpenOptions& options);  // and replays the log
  // The two stages of a group commit (see group_commit.h): log, then apply.
  Status PrepareGroup(const std::vector<const WriteBatch*>& batches, GroupCommitWriter::Token* token);
  Status ApplyGroup(const std::vector<const WriteBatch*>& batches, const GroupCommitWriter::Token& token);
  // Applies mutations to `txn`; MDB_MAP_FULL comes back as its rc in *rc.
  Status ApplyPayload(MDB_txn* txn, std::string_view payload, int* rc);
  Status GrowMap();
  void AddReader();
  void RemoveReader();
  Status PutMetaDirect(std::string_view key, std::string_view value);
  // The header of `mailbox` if its state is one of `from`; call holding its header lock.
  Result<MailboxInfo> LockedHeader(const Guid& mailbox, std::initializer_list<MailboxState> from);

  // The UNSYNCED file (see Open): refuses a store it names another boot in;
  // writes it (synced) before the first unsynced write.
  Status CheckUnsyncedMarker(const std::string& dir);
  Status WriteUnsyncedMarker();

  // Deferred data syncs (see "Data syncs" above; data_checkpoint.cc).
  // Before LMDB opens the file: a data.ckpt left by a store that was not
  // closed puts its meta pages back into data.mdb. *lsn = its checkpoint
  // (0 = there was none).
  Status RestoreDataCheckpoint(uint64_t* lsn);
  // Pins the newest snapshot, syncs data.mdb, saves its meta pages, lets go
  // of the old pin; under lmdb_sync_mu_, so that no commit runs meanwhile.
  // An error is a failed sync: the caller stops the store (MarkBroken, once
  // it has let go of lmdb_sync_mu_), as what the sync covered may be lost. A
  // checkpoint that could not be pinned or saved is no error: the old one
  // stands, and data_checkpoint_error_ says why.
  Status TakeDataCheckpointLocked();
  // The apply thread, after each commit: adds the group's bytes and takes a
  // data checkpoint when they (or the time since the last) call for one.
  void MaybeTakeDataCheckpoint(uint64_t applied_bytes);
  // A data checkpoint now (with deferred data syncs; else nothing), e.g.
  // before a backup drops log files: any thread but the writer's.
  Status DataCheckpointNow();
  // The clean close's end of it: data.mdb synced, data.ckpt removed.
  Status EndDataCheckpoints();
  bool deferred_data_sync_ = false;
  uint64_t data_sync_bytes_ = 0;
  // Applied bytes between data checkpoints: data_sync_bytes_, or a quarter
  // of the log quota when that is less (the log is kept from the data
  // checkpoint, and a quota it reached would refuse writes). Set at open and
  // by SetLogQuota; read by the apply thread.
  std::atomic<uint64_t> data_sync_threshold_{0};
  void SetDataSyncThreshold(uint64_t log_quota);
  MDB_txn* pinned_snapshot_ = nullptr;        // GUARDED_BY(lmdb_sync_mu_) (and open, close)
  uint64_t bytes_since_data_checkpoint_ = 0;  // GUARDED_BY(lmdb_sync_mu_)
  std::chrono::steady_clock::time_point data_checkpoint_time_{};  // GUARDED_BY(lmdb_sync_mu_)
  std::atomic<uint64_t> data_checkpoints_{0};
  Status data_checkpoint_error_;  // GUARDED_BY(lmdb_sync_mu_): the last failed save, until one succeeds
  std::atomic<uint64_t> data_checkpoint_failures_{0};
  static constexpr auto kDataCheckpointInterval = std::chrono::seconds(30);

  std::string dir_;
  std::string name_;
  bool unsynced_marker_ = false;
  // Set (under log_mu_) when a commit or sync of data.mdb failed with EIO:
  // the kernel may have dropped the pages it covered (and the meta page of
  // the commit before, which NOMETASYNC leaves to the next commit's sync),
  // so every later write, read and Flush fails with it until the store is
  // reopened. ENOSPC and the like are not fatal: nothing was dropped.
  Status broken_;
  void MarkBroken(const Status& cause);  // the apply thread only, under log_mu_

  // The disk reserve (see "Out of disk space"); both under log_mu_.
  std::unique_ptr<DiskReserve> reserve_;  // GUARDED_BY(log_mu_)
  Status out_of_space_;                   // GUARDED_BY(log_mu_): not OK while running on the reserve
  // A write failed with `cause` for lack of space: releases the reserve and
  // returns the error every refused write gets. Under log_mu_.
  Status RunOnReserve(const Status& cause);
  // Write() for the header and delete batches of TransitionMailbox and
  // DeleteMailboxIn: such a batch that was refused only because an earlier
  // group failed (it was neither applied nor logged) is submitted again.
  Status WriteHeaderBatch(const WriteBatch& batch);
  int zstd_level_ = 3;
  Env* env_io_ = nullptr;
  int lock_fd_ = -1;
  LmdbEnv env_;
  MDB_dbi dbi_[kNumDbs] = {};
  uint64_t map_bytes_ = 0;  // writer thread (and open) only
  std::string payload_buffer_;  // log thread only: the framing of the group's redo payload
  std::vector<std::string_view> payload_pieces_;  // log thread only: that payload as a gather list
  // Where data.mdb is mapped (address, length), found once per map size.
  std::pair<uintptr_t, size_t> DataMapping();
  // The pages a group's prefix deletes free: gathered while it applies (the
  // deleted keys and values as LMDB returned them, dead_records_), turned
  // into file ranges before its commit (dead_ranges_), dropped from the page
  // cache after it. Apply thread only. A deleted record's overflow pages,
  // and the old copy of every leaf page the delete changed (LMDB copies a
  // page before changing it and frees the original), are LMDB's free pages
  // from that commit on: nothing reads them again, and LMDB rewrites a page
  // it reuses whole, never reading it first. Dropped, the kernel hands their
  // memory to the next writes (the target's pages, in a move) at once.
  void DeadRecordsToRanges();
  void DropDeadPages();
  std::vector<std::string_view> dead_records_;
  std::vector<std::pair<uint64_t, uint64_t>> dead_ranges_;  // [begin, end) in data.mdb, page-aligned
  std::atomic<uint64_t> dead_bytes_dropped_{0};
  // Where data.mdb is mapped, for ReleaseResidentPages, and the map size it
  // was found for.
  std::mutex mapping_mu_;
  std::pair<uintptr_t, size_t> mapping_{0, 0};  // GUARDED_BY(mapping_mu_)
  size_t mapping_for_bytes_ = 0;                // GUARDED_BY(mapping_mu_)

  // The resize gate: readers count themselves in; the writer waits for zero
  // readers (and holds new ones off) while it grows the map.
  std::mutex gate_mu_;
  std::condition_variable gate_cv_;
  int readers_ = 0;        // GUARDED_BY(gate_mu_)
  bool resizing_ = false;  // GUARDED_BY(gate_mu_)

  // The log writer: used by the writer's two threads, and by
  // Backup/GetLogInfo/Set* from other threads, always under log_mu_.
  std::mutex log_mu_;
  std::unique_ptr<TxLogWriter> log_;  // GUARDED_BY(log_mu_)
  // The last commit's checkpoint and the last that is surely durable in
  // data.mdb (the data checkpoint's, or the commit's before: see Flush). Set by the apply thread; read under ckpt_mu_
  // (taken after log_mu_ when both are held), never waiting for the log.
  std::mutex ckpt_mu_;
  uint64_t checkpoint_lsn_ = 0;       // GUARDED_BY(ckpt_mu_)
  uint64_t prev_checkpoint_lsn_ = 0;  // GUARDED_BY(ckpt_mu_)
  std::pair<uint64_t, uint64_t> Checkpoints();  // {checkpoint, previous}
  // Log thread (under log_mu_), before each append: drops the log files the
  // checkpoint has passed (circular logging) and refreshes E00.chk. Neither
  // fails the append: a log file that could not be removed is only space,
  // and the removal is tried again once the log has entered another file.
  void LogHousekeeping();
  Status log_remove_error_;              // GUARDED_BY(log_mu_): the last failed removal, until one succeeds
  uint64_t log_remove_failures_ = 0;     // GUARDED_BY(log_mu_)
  uint64_t log_remove_retry_gen_ = 0;    // GUARDED_BY(log_mu_): no retry before the log reaches this file
  uint64_t checkpoint_file_gen_ = 0;  // GUARDED_BY(log_mu_): the log file of E00.chk's last checkpoint
  std::chrono::steady_clock::time_point checkpoint_file_written_{};  // GUARDED_BY(log_mu_)
  uint64_t last_backup_lsn_ = 0;      // GUARDED_BY(log_mu_)
  // Bumped (under log_mu_, by the apply thread only) when a failed commit
  // rewinds the log; the apply thread reads it without the lock.
  uint64_t log_epoch_ = 0;
  std::atomic<bool> data_broken_{false};  // set by MarkBroken (after broken_): reads are refused too
  // Held across each LMDB write transaction (its own data sync included), so
  // that a sync that fails can only drop what finished commits wrote, never
  // the pages of a commit in flight (whose own sync would then succeed over
  // them: the kernel reports a writeback error once). Taken after log_mu_
  // when both are held.
  std::mutex lmdb_sync_mu_;
  std::atomic<uint64_t> map_resizes_{0};
  std::atomic<uint64_t> data_syncs_{0};
  std::atomic<uint64_t> copied_bytes_{0};
  std::atomic<uint64_t> replayed_records_{0};

  // ReadChanges' scans of change indexes kept for the pages of their passes
  // still to come (client_ops.cc): the newest, up to kMaxChangeScans of them
  // (a migration batch keeps many mailboxes syncing) holding at most
  // kMaxChangeScanItems items together (16 bytes each: 128 MiB), each
  // dropped once its last page is read.
  struct ChangeScan;
  static constexpr size_t kMaxChangeScans = 64;
  static constexpr size_t kMaxChangeScanItems = size_t(8) << 20;
  std::shared_ptr<const ChangeScan> FindChangeScan(const Guid& mailbox, uint64_t since, const MailboxInfo& now);
  void KeepChangeScan(std::shared_ptr<const ChangeScan> scan, bool more);
  std::mutex change_scans_mu_;
  std::deque<std::shared_ptr<const ChangeScan>> change_scans_;  // GUARDED_BY(change_scans_mu_): oldest first
  size_t change_scans_items_ = 0;                                // GUARDED_BY(change_scans_mu_)
  std::atomic<uint64_t> change_index_scans_{0};

  // Serialises read-modify-write of a mailbox's header (deliveries, state
  // transitions, conditional deletes) against others on the same mailbox;
  // steps on different mailboxes run, and commit, together.
  MailboxLocks header_locks_;

  std::unique_ptr<GroupCommitWriter> writer_;  // last: stopped first
};

// What this process says it is in the LOCK file of every store it opens
// ("mbxmove serve" for a store server; default "mbxmove"), so that another
// process refused the store can say who holds it. `role` must be a string
// literal (it is kept, not copied).
void SetLockHolderRole(const char* role);
std::string LockHolderRole();

// Meta keys.
namespace meta {
inline constexpr std::string_view kFormat = "format";
inline constexpr std::string_view kName = "name";
inline constexpr std::string_view kZstdLevel = "zstd_level";
inline constexpr std::string_view kLogFileBytes = "log.file_bytes";
inline constexpr std::string_view kLogMode = "log.mode";
inline constexpr std::string_view kLogQuota = "log.quota_bytes";
inline constexpr std::string_view kSyncMode = "log.sync";
inline constexpr std::string_view kCheckpoint = "log.checkpoint";
inline constexpr std::string_view kLastBackup = "backup.lsn";
}  // namespace meta

}  // namespace mbx
