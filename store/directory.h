// Directory: the organisation's single source of truth for where each
// mailbox lives, in its own LMDB environment (ORG/directory/).
//
//   users   user name -> UserRecord (JSON): display name, SMTP address,
//           mailbox GUID, homeMDB (distinguished name of the store holding the
//           mailbox), home server
//   by_mbx  mailbox GUID -> user name
//   stores  store name -> StoreRecord (JSON): DN, server, options summary
//   moves   mailbox GUID -> MoveRecord (JSON): the move state machine's
//           durable state
//   servers server name -> ServerRecord (JSON): its network address
//   queue   mailbox GUID -> QueueEntry (JSON), versioned
//   leases  lease name -> Lease (JSON), versioned
//   batches batch name -> BatchRecord (JSON), versioned
//   (the last three made on first use in a directory made without them)
//
// (The LDAP backend keeps the same records as entries; tools/ldap/mbxmove.schema.)
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "store/records.h"
#include "store/status.h"

namespace mbx {

struct UserRecord {
  std::string name;          // alias, unique: "user0007"
  std::string display_name;  // "Ada Lovelace"
  std::string smtp;          // "ada.lovelace7@example.com"
  Guid mailbox;
  std::string home_mdb;     // DN of the store that holds the mailbox
  std::string home_server;  // "SERVER1"
};

struct StoreRecord {
  std::string name;    // "SG1-MS1": also the folder name under stores/
  std::string server;  // "SERVER1"
  std::string dn;      // "CN=<name>,CN=First Storage Group,CN=InformationStore,CN=<server>,..."
  std::string created; // ISO 8601 UTC
};

// The distinguished name Exchange's directory gives a mailbox store.
std::string StoreDistinguishedName(const std::string& store, const std::string& server);

// A server that holds stores. With an address, its stores are reached over
// the network (`mbxmove serve` listens there); without, they are folders
// this process opens itself.
struct ServerRecord {
  std::string name;     // "SERVER1"
  std::string address;  // "127.0.0.1:7001", or "" for a local server
};

// The steps of a mailbox move (engine/move_state.h says what each means),
// and of an import, as kept in the move record.
// kSyncing: an online move (`move --online`) copying and syncing while the
// source stays active; it reaches kLocked for its final delta (recorded
// before the passes that may take the lock, so a source locked by one is
// never under a record that says syncing).
enum class MoveStep : uint8_t { kLocked, kHierarchy, kCopying, kVerified, kSwitched, kImporting, kSyncing };
std::string_view MoveStepName(MoveStep s);
std::optional<MoveStep> ParseMoveStep(std::string_view name);
// True for a move at or past its commit point (homeMDB switched).
inline bool PastSwitch(MoveStep s) { return s == MoveStep::kSwitched; }

// The durable state of one mailbox move or import.
struct MoveRecord {
  Guid mailbox;
  std::string user;
  std::string source;  // store names ("" for an import)
  std::string target;
  MoveStep step = MoveStep::kLocked;
  std::string started;       // ISO 8601 UTC
  bool keep_source = false;  // clean-up soft-deletes the source instead of deleting it
};

// A queued move request (`mbxmove move --queue`): one mailbox to move,
// claimed by a mover (`mbxmove mover`, engine/queue_mover.h) under a lease
// that the mover renews while it works; an entry whose lease has lapsed is
// taken over by another mover.
enum class QueueState : uint8_t { kQueued, kActive, kDone, kFailed };
std::string_view QueueStateName(QueueState s);
std::optional<QueueState> ParseQueueState(std::string_view name);

struct QueueEntry {
  Guid mailbox;
  std::string user;
  std::string source;  // store names
  std::string target;
  QueueState state = QueueState::kQueued;
  std::string owner;          // the claiming mover's token while active, else ""
  int64_t lease_until_ms = 0; // Unix milliseconds: the claim lapses after it
  uint32_t attempts = 0;      // claims so far (a takeover is a claim)
  std::string batch;          // a label given at submission ("" for none)
  uint32_t bad_item_limit = 0;
  bool keep_source = false;
  std::string queued;  // ISO 8601 UTC
  std::string result;  // done: what was moved; failed: why
  uint64_t version = 0;  // bumped by every write: the guard of UpdateQueueEntry
};

// A named lease: a mover's name ("mover.NAME") or one of the slots that
// bound the moves per store and per server ("slot.src-mdb.MS1.0", ...).
struct Lease {
  std::string name;  // 1-128 of [A-Za-z0-9._-]
  std::string owner;  // the holder's token; "" when free
  int64_t until_ms = 0;  // Unix milliseconds: the hold lapses after it
  std::string holds;  // what it is held for, for people ("host:pid", a mailbox GUID)
  uint64_t version = 0;  // bumped by every write: the guard of UpdateLease
};

// A migration batch (`mbxmove batch`, engine/batch_runner.h): mailboxes
// moved online to one target, kept in sync until the batch is completed.
// One runner at a time (lease "batch.NAME") writes its members' states;
// `batch complete` and `batch stop` write the batch's state. Every write is
// guarded by the record's version, as for queue entries.
enum class BatchState : uint8_t { kCreated, kRunning, kCompleting, kCompleted, kStopping, kStopped };
std::string_view BatchStateName(BatchState s);
std::optional<BatchState> ParseBatchState(std::string_view name);
// queued: not started (or started over after a kill); syncing: its initial
// copy; synced: incremental passes keep the target current; completing: its
// final delta and switch; completed: homeMDB names the target; failed: see
// result; stopped: `batch stop` or --cancel-after rolled it back.
enum class MemberState : uint8_t { kQueued, kSyncing, kSynced, kCompleting, kCompleted, kFailed, kStopped };
std::string_view MemberStateName(MemberState s);
std::optional<MemberState> ParseMemberState(std::string_view name);
inline bool MemberDone(MemberState s) {
  return s == MemberState::kCompleted || s == MemberState::kFailed || s == MemberState::kStopped;
}

struct BatchMember {
  Guid mailbox;
  std::string user;
  std::string source;  // store name at creation
  MemberState state = MemberState::kQueued;
  uint32_t passes = 0;          // incremental passes so far
  uint64_t items_copied = 0;    // records written to the target, every pass
  uint64_t bytes_copied = 0;
  // The source mailbox's stored bytes when the batch was made, and again
  // when its initial copy began (0: not known): what `batch status` measures
  // the initial copies' progress and the batch's time left against.
  uint64_t bytes_total = 0;
  uint64_t items_behind = 0;    // items the last pass found changed
  int64_t last_sync_ms = 0;     // Unix ms of the last pass (or the initial copy's end)
  double lock_ms = 0;           // completed: the lock window
  uint32_t dropped = 0;         // unreadable items dropped
  uint32_t attempts = 0;        // initial copies started (a restart after a kill is one more)
  std::string result;           // failed/stopped: why; completed: what was moved
};

struct BatchRecord {
  std::string name;    // 1-64 of [A-Za-z0-9._-]
  std::string target;  // store name
  BatchState state = BatchState::kCreated;
  uint32_t concurrency = 4;        // initial copies at once
  uint32_t bad_item_limit = 0;
  bool keep_source = false;
  int64_t sync_interval_ms = 300000;  // between incremental passes of a synced member
  int64_t complete_at_ms = 0;         // Unix ms: complete then (0: not set)
  int64_t complete_delay_ms = -1;     // complete this long after the start (-1: not set)
  int64_t cancel_after_ms = 0;        // stop the batch this long after the start (0: never)
  std::string created;                // ISO 8601 UTC
  int64_t started_ms = 0;             // Unix ms of the first `batch start` (0: not started)
  int64_t finished_ms = 0;            // Unix ms it reached completed or stopped
  std::string runner;                 // host:pid of the last runner, for people
  std::string result;                 // stopped: why
  std::vector<BatchMember> members;   // in the order given
  uint64_t version = 0;               // bumped by every write: the guard of UpdateBatch
};
// InvalidArgument unless `name` is 1-64 of [A-Za-z0-9._-].
Status ValidateBatchName(const std::string& name);

// The directory's interface. Two backends implement it: the embedded LMDB
// one (ORG/directory/, the default) and LDAP (an OpenLDAP server, see
// store/ldap_directory.h). Every backend gives the same guarantees:
//
//  - CreateMove, AdvanceMove and SwitchHome are guarded (compare-and-swap):
//    two movers can never both own one mailbox, and a homeMDB changed by
//    another writer during a move fails the switch with Conflict, nothing
//    changed;
//  - PutUsers, SwitchHome, CreateMove and AdvanceMove(sync = true) are
//    durable before they return;
//  - a damaged record is Corruption quoting it, never a crash.
//
// Thread safety: safe for concurrent use.
class Directory {
 public:
  virtual ~Directory() = default;

  // Opens the embedded directory in `dir` (ORG/directory); with create,
  // makes it if missing.
  static Result<std::unique_ptr<Directory>> OpenLmdb(const std::string& dir, bool create);

  // Where the directory is, for messages: "ORG/directory", "ldap://host:port/base".
  virtual std::string Describe() const = 0;

  virtual Status PutStore(const StoreRecord& s) = 0;
  virtual Result<StoreRecord> GetStore(const std::string& name) = 0;
  virtual Status ListStores(std::vector<StoreRecord>* out) = 0;

  // Adds or replaces a server's record.
  virtual Status PutServer(const ServerRecord& s) = 0;
  // NotFound for a server that has no record (a local server).
  virtual Result<ServerRecord> GetServer(const std::string& name) = 0;
  virtual Status ListServers(std::vector<ServerRecord>* out) = 0;

  // Adds or replaces users (one transaction where the backend has them).
  virtual Status PutUsers(const std::vector<UserRecord>& users) = 0;
  virtual Result<UserRecord> GetUser(const std::string& name) = 0;
  virtual Result<UserRecord> GetUserByMailbox(const Guid& mailbox) = 0;
  virtual Status ListUsers(std::vector<UserRecord>* out) = 0;

  // The commit point of a move: sets the user's homeMDB/home server to
  // `target` and the move record to `record` (whose step says "switched"),
  // provided homeMDB still names the store `record.source` (its DN) and the
  // move record is still this move's (same source and target, before the
  // switch). Otherwise Conflict, and nothing is changed.
  virtual Status SwitchHome(const Guid& mailbox, const StoreRecord& target, const MoveRecord& record) = 0;
  // Whether SwitchHome is one atomic write (LMDB: one transaction). Where it
  // is two (LDAP: homeMDB, then the record), a move records 'verified' first,
  // which is what lets recovery finish a switch cut between its writes; with
  // one write that step would only cost a commit per mailbox.
  virtual bool SwitchIsOneWrite() const = 0;

  // Creates the move record of a mailbox; AlreadyExists (naming the move
  // that holds it) if the mailbox already has one. Durable on return.
  virtual Status CreateMove(const MoveRecord& m) = 0;
  // Replaces the move record if its step is still `from` (and its source
  // and target are m's); Conflict otherwise, NotFound if there is none.
  // With `sync`, durable on return; without, only a process crash is
  // survived (the next synced change covers it).
  virtual Status AdvanceMove(const MoveRecord& m, MoveStep from, bool sync) = 0;
  // Adds or replaces a move record unguarded (tests, directory import).
  virtual Status PutMove(const MoveRecord& m, bool sync = true) = 0;
  virtual Result<MoveRecord> GetMove(const Guid& mailbox) = 0;
  virtual Status ListMoves(std::vector<MoveRecord>* out) = 0;
  virtual Status DeleteMove(const Guid& mailbox) = 0;
  // DeleteMove of each, an outcome each (the clean-up of several moves at
  // once). The embedded directory deletes them in one write.
  virtual std::vector<Status> DeleteMoves(const std::vector<Guid>& mailboxes);
  virtual Status Sync() = 0;  // makes every committed change durable

  // The move queue and leases (issue 15). Every write is guarded by the
  // record's version (compare-and-swap, one entry at a time) and durable
  // on return.
  //
  // Adds an entry at version 1 (e->version is set); AlreadyExists naming
  // the entry if the mailbox has one.
  virtual Status AddQueueEntry(QueueEntry* e) = 0;
  virtual Result<QueueEntry> GetQueueEntry(const Guid& mailbox) = 0;
  // Every entry. A damaged one is Corruption, unless `damaged` is given:
  // then it is described there and skipped, so one bad entry cannot stop
  // the queue.
  virtual Status ListQueue(std::vector<QueueEntry>* out, std::vector<std::string>* damaged = nullptr) = 0;
  // Replaces the entry if its stored version is still e->version, and sets
  // e->version to the new one; Conflict (nothing changed) if another writer
  // came first, NotFound if there is none.
  virtual Status UpdateQueueEntry(QueueEntry* e) = 0;
  // Deletes the entry if its version is still `version`; Conflict, NotFound.
  // Version 0 deletes whatever is there (a damaged entry has no version).
  virtual Status DeleteQueueEntry(const Guid& mailbox, uint64_t version) = 0;

  // Leases: the same, by name.
  virtual Status AddLease(Lease* l) = 0;
  virtual Result<Lease> GetLease(const std::string& name) = 0;
  virtual Status ListLeases(std::vector<Lease>* out) = 0;
  virtual Status UpdateLease(Lease* l) = 0;
  virtual Status DeleteLease(const std::string& name, uint64_t version) = 0;

  // Migration batches: the same, by name. ListBatches skips and describes
  // damaged records when `damaged` is given, as ListQueue does.
  virtual Status AddBatch(BatchRecord* b) = 0;
  virtual Result<BatchRecord> GetBatch(const std::string& name) = 0;
  virtual Status ListBatches(std::vector<BatchRecord>* out, std::vector<std::string>* damaged = nullptr) = 0;
  virtual Status UpdateBatch(BatchRecord* b) = 0;
  virtual Status DeleteBatch(const std::string& name, uint64_t version) = 0;

  // Operations sent to the directory since it was opened (an LMDB
  // transaction, an LDAP request): the move report's directory cost.
  uint64_t operations() const { return operations_.load(std::memory_order_relaxed); }
  // Of those, the writes (LMDB write transactions, LDAP add/modify/delete).
  uint64_t write_operations() const { return writes_.load(std::memory_order_relaxed); }

 protected:
  Directory() = default;
  void CountOperations(uint64_t n = 1) { operations_.fetch_add(n, std::memory_order_relaxed); }
  void CountWrites(uint64_t n = 1) { writes_.fetch_add(n, std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> operations_{0};
  std::atomic<uint64_t> writes_{0};
};

// The record formats the LMDB backend stores, also used by `directory
// export` and import. Parse* give Corruption quoting a damaged record.
std::string UserToJson(const UserRecord& u);
std::string StoreToJson(const StoreRecord& s);
std::string MoveToJson(const MoveRecord& m);
std::string ServerToJson(const ServerRecord& s);
Result<UserRecord> ParseUserJson(std::string_view text);
Result<StoreRecord> ParseStoreJson(std::string_view text);
Result<MoveRecord> ParseMoveJson(std::string_view text);
Result<ServerRecord> ParseServerJson(std::string_view text);
std::string QueueEntryToJson(const QueueEntry& e);
std::string LeaseToJson(const Lease& l);
Result<QueueEntry> ParseQueueEntryJson(std::string_view text);
Result<Lease> ParseLeaseJson(std::string_view text);
std::string BatchToJson(const BatchRecord& b);
Result<BatchRecord> ParseBatchJson(std::string_view text);
// One member of a batch as the LDAP backend keeps it (a value of
// mbxBatchMember): BatchToJson's member object plus "index", its position
// in BatchRecord::members (LDAP keeps no order among an attribute's values).
std::string BatchMemberToJson(const BatchMember& m, size_t index);
Result<BatchMember> ParseBatchMemberJson(std::string_view text, size_t* index);
// The "version" of a queue entry, lease or batch record, read even when the
// rest of the record is damaged; nullopt when it has none.
std::optional<uint64_t> RecordVersionJson(std::string_view text);
// InvalidArgument unless `name` is 1-128 of [A-Za-z0-9._-].
Status ValidateLeaseName(const std::string& name);

}  // namespace mbx
