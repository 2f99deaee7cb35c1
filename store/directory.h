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
//
// Every method is one LMDB transaction. PutUsers, SwitchHome (the commit
// point of a move) and PutMove(sync = true) are fully synced before they
// return; other commits sync their data and leave the meta page to the next.
//
// Thread safety: safe for concurrent use (LMDB serialises writers).
#pragma once

#include <functional>
#include <memory>
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

// The durable state of one mailbox move (engine/ defines the steps).
struct MoveRecord {
  Guid mailbox;
  std::string user;
  std::string source;  // store names
  std::string target;
  std::string step;    // "locked", "hierarchy", "copying", "verified", "switched", ...
  std::string started; // ISO 8601 UTC
  std::string extra;   // engine-defined JSON (options, dropped items so far)
};

class Directory {
 public:
  // Opens ORG/directory; with create, makes it if missing.
  static Result<std::unique_ptr<Directory>> Open(const std::string& dir, bool create);

  Status PutStore(const StoreRecord& s);
  Result<StoreRecord> GetStore(const std::string& name);
  Status ListStores(std::vector<StoreRecord>* out);

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
  MDB_dbi users_ = 0, by_mbx_ = 0, stores_ = 0, moves_ = 0;
};

}  // namespace mbx
