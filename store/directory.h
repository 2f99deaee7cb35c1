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
// Every method is one LMDB transaction. PutUsers, SwitchHome (the commit
// point of a move) and PutMove(sync = true) are fully synced before they
// return; other commits sync their data and leave the meta page to the next.
//
// Thread safety: safe for concurrent use (LMDB serialises writers).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "store/lmdb_env.h"
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

class Directory {
 public:
  // Opens ORG/directory; with create, makes it if missing.
  static Result<std::unique_ptr<Directory>> Open(const std::string& dir, bool create);

  Status PutStore(const StoreRecord& s);
  Result<StoreRecord> GetStore(const std::string& name);
  Status ListStores(std::vector<StoreRecord>* out);

  // Adds or replaces a server's record.
  Status PutServer(const ServerRecord& s);
  // NotFound for a server that has no record (a local server).
  Result<ServerRecord> GetServer(const std::string& name);
  Status ListServers(std::vector<ServerRecord>* out);

  // Adds or replaces users, all in one transaction.
  Status PutUsers(const std::vector<UserRecord>& users);
  Result<UserRecord> GetUser(const std::string& name);
  Result<UserRecord> GetUserByMailbox(const Guid& mailbox);
  Status ListUsers(std::vector<UserRecord>* out);

  // The commit point of a move: in one transaction, sets the user's
  // homeMDB/home server to `target` and replaces the move record with
  // `record` (whose step says "switched").
  Status SwitchHome(const Guid& mailbox, const StoreRecord& target, const MoveRecord& record);

  // With `sync`, the record survives a machine crash once this returns;
  // without, only a process crash (the next synced commit covers it).
  Status PutMove(const MoveRecord& m, bool sync = true);
  Result<MoveRecord> GetMove(const Guid& mailbox);
  Status ListMoves(std::vector<MoveRecord>* out);
  Status DeleteMove(const Guid& mailbox);
  Status Sync();  // makes every committed change durable

 private:
  Directory() = default;
  LmdbEnv env_;
  MDB_dbi users_ = 0, by_mbx_ = 0, stores_ = 0, moves_ = 0, servers_ = 0;
};

}  // namespace mbx
