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
enum class MoveStep : uint8_t { kLocked, kHierarchy, kCopying, kVerified, kSwitched, kImporting };
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
  virtual Status Sync() = 0;  // makes every committed change durable

  // Operations sent to the directory since it was opened (an LMDB
  // transaction, an LDAP request): the move report's directory cost.
  uint64_t operations() const { return operations_.load(std::memory_order_relaxed); }

 protected:
  Directory() = default;
  void CountOperations(uint64_t n = 1) { operations_.fetch_add(n, std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> operations_{0};
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

}  // namespace mbx
