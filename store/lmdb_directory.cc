// The embedded directory: one LMDB environment (ORG/directory/) with the
// databases store/directory.h lists, records as JSON.
//
// Every write method is one write request (Write): a function run in a
// write transaction, which checks and writes in it, so LMDB's single writer
// makes the guarded ones (CreateMove, AdvanceMove, SwitchHome, the versioned
// records) compare-and-swap. Requests that arrive while another group
// commits are committed together (group commit: one transaction, one data
// sync, at most one meta sync), each in a nested transaction of its own, so
// that one that fails leaves no trace. PutUsers, SwitchHome, CreateMove,
// AdvanceMove(sync) and the versioned records are fully synced before they
// return; other writes sync their data and leave the meta page to the next.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>

#include "store/directory.h"
#include "store/file_io.h"
#include "store/lmdb_env.h"

namespace mbx {

namespace {

Status Put(MDB_txn* txn, MDB_dbi dbi, std::string_view k, std::string_view v) {
  MDB_val mk = ToVal(k), mv = ToVal(v);
  return LmdbStatus(mdb_put(txn, dbi, &mk, &mv, 0), "writing directory");
}

// The value under k in an open transaction; NotFound naming `what`.
Result<std::string> GetIn(MDB_txn* txn, MDB_dbi dbi, std::string_view k, std::string_view what,
                          std::string_view shown) {
  MDB_val mk = ToVal(k), mv;
  int rc = mdb_get(txn, dbi, &mk, &mv);
  if (rc == MDB_NOTFOUND) {
    return Status::NotFound(std::string(what) + " '" + std::string(shown) + "' is not in the directory");
  }
  if (rc != 0) return LmdbStatus(rc, "reading directory");
  return std::string(FromVal(mv));
}

template <typename T, typename ParseFn>
Status ListIn(MDB_txn* txn, MDB_dbi dbi, ParseFn parse, std::vector<T>* out) {
  out->clear();
  LmdbCursor cur;
  MBX_RETURN_IF_ERROR(cur.Open(txn, dbi));
  MDB_val k, v;
  int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST);
  while (rc == 0) {
    MBX_ASSIGN_OR_RETURN(T item, parse(FromVal(v)));
    out->push_back(std::move(item));
    rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT);
  }
  if (rc != MDB_NOTFOUND) return LmdbStatus(rc, "listing directory");
  return Status::Ok();
}

// Renders `rec` as JSON at the version given (what AddVersioned and
// ReplaceVersioned write).
template <typename T>
std::function<std::string(uint64_t)> AtVersion(const T& rec, std::string (*to_json)(const T&)) {
  return [&rec, to_json](uint64_t v) {
    T c = rec;
    c.version = v;
    return to_json(c);
  };
}

std::string Describe(const MoveRecord& m) {
  return m.source.empty() ? "an import into " + m.target + " (step " + std::string(MoveStepName(m.step)) + ")"
                          : "a move " + m.source + " -> " + m.target + " (step " +
                                std::string(MoveStepName(m.step)) + ")";
}

// Named databases this process may open in the directory: 8 in use (the
// five Open opens, and queue, leases and batches), the rest room to grow.
// A per-process limit, not kept on disk: any value opens any directory.
constexpr unsigned kMaxDbs = 16;

// NotFound for a batch, as every backend words it.
Status NoBatch(const Status& s, const std::string& name) {
  return s.IsNotFound() ? Status::NotFound("no batch named '" + name + "' in the directory") : s;
}

class LmdbDirectory final : public Directory {
 public:
  Status Open(const std::string& dir, bool create);
  std::string Describe() const override { return dir_; }

  Status PutStore(const StoreRecord& s) override;
  Result<StoreRecord> GetStore(const std::string& name) override;
  Status ListStores(std::vector<StoreRecord>* out) override;
  Status PutServer(const ServerRecord& s) override;
  Result<ServerRecord> GetServer(const std::string& name) override;
  Status ListServers(std::vector<ServerRecord>* out) override;
  Status PutUsers(const std::vector<UserRecord>& users) override;
  Result<UserRecord> GetUser(const std::string& name) override;
  Result<UserRecord> GetUserByMailbox(const Guid& mailbox) override;
  Status ListUsers(std::vector<UserRecord>* out) override;
  Status SwitchHome(const Guid& mailbox, const StoreRecord& target, const MoveRecord& record) override;
  Status CreateMove(const MoveRecord& m) override;
  Status AdvanceMove(const MoveRecord& m, MoveStep from, bool sync) override;
  bool SwitchIsOneWrite() const override { return true; }
  Status PutMove(const MoveRecord& m, bool sync) override;
  Result<MoveRecord> GetMove(const Guid& mailbox) override;
  Status ListMoves(std::vector<MoveRecord>* out) override;
  Status DeleteMove(const Guid& mailbox) override;
  std::vector<Status> DeleteMoves(const std::vector<Guid>& mailboxes) override;
  Status Sync() override;
  Status AddQueueEntry(QueueEntry* e) override;
  Result<QueueEntry> GetQueueEntry(const Guid& mailbox) override;
  Status ListQueue(std::vector<QueueEntry>* out, std::vector<std::string>* damaged) override;
  Status UpdateQueueEntry(QueueEntry* e) override;
  Status DeleteQueueEntry(const Guid& mailbox, uint64_t version) override;
  Status AddLease(Lease* l) override;
  Result<Lease> GetLease(const std::string& name) override;
  Status ListLeases(std::vector<Lease>* out) override;
  Status UpdateLease(Lease* l) override;
  Status DeleteLease(const std::string& name, uint64_t version) override;
  Status AddBatch(BatchRecord* b) override;
  Result<BatchRecord> GetBatch(const std::string& name) override;
  Status ListBatches(std::vector<BatchRecord>* out, std::vector<std::string>* damaged) override;
  Status UpdateBatch(BatchRecord* b) override;
  Status DeleteBatch(const std::string& name, uint64_t version) override;

 private:
  // The versioned records (queue entries, leases, batches): add at version
  // 1, or replace / delete when the stored version is `expected` -- one
  // write transaction each, so LMDB's single writer makes it
  // compare-and-swap. `to_json` renders the record at the version given.
  Status AddVersioned(MDB_dbi dbi, std::string_view key, std::string_view what, const std::string& shown,
                      const std::function<std::string(uint64_t)>& to_json);
  Status ReplaceVersioned(MDB_dbi dbi, std::string_view key, std::string_view what, const std::string& shown,
                          uint64_t expected, const std::function<std::string(uint64_t)>* to_json);
  // The queue, lease and batch databases, created on first use in a
  // directory made by a version without them.
  Status OpenVersionedDbs();
  // Every record of versioned database `dbi`, parsed, in key order. A
  // damaged one fails the list (`what` names it), or with `damaged` is
  // described there ("<key as `key_text` shows it>: why") and skipped.
  template <typename T>
  Status ListVersioned(MDB_dbi dbi, const char* what, Result<T> (*parse)(std::string_view),
                       std::string (*key_text)(std::string_view), std::vector<T>* out,
                       std::vector<std::string>* damaged);
  Result<std::string> Get(MDB_dbi dbi, std::string_view k, std::string_view what, std::string_view shown);
  // Begins a write transaction, unless a sync failed (see Sync).
  Status BeginWrite(LmdbTxn& txn);
  // One write request: `body` runs in a write transaction and either
  // writes in it or fails (then it leaves no trace). Requests handed in
  // while a group is committing form the next group: its first request's
  // thread runs every body in one transaction (each in a nested one when
  // there are several), commits once and syncs the meta page once if any
  // request is `durable`. Returns the request's own outcome, or the
  // group's commit failure.
  Status Write(const std::function<Status(MDB_txn*)>& body, bool durable);
  struct Request {
    const std::function<Status(MDB_txn*)>* body;
    bool durable;
    Status status;
    bool done = false;
    std::condition_variable cv;
  };
  void CommitGroup(const std::vector<Request*>& group);
  static constexpr size_t kMaxGroup = 64;
  std::mutex group_mu_;
  std::deque<Request*> requests_;  // GUARDED_BY(group_mu_): the front one leads
  // Reads are refused too once a sync failed: the dropped page may be the
  // last commit's meta page, and LMDB's readers pick the meta page by the
  // last committed transaction's number (kept in lock.mdb), so they would
  // read the meta page of two commits back, an older state than any reopen
  // finds, and a decision taken on it (did the switch happen?) could be
  // wrong. Recover reopens and reads what is on disk.
  Status BeginRead(LmdbTxn& txn);
  // Every record of `dbi`, in a read transaction of its own.
  template <typename T, typename ParseFn>
  Status List(MDB_dbi dbi, ParseFn parse, std::vector<T>* out) {
    LmdbTxn txn;
    MBX_RETURN_IF_ERROR(BeginRead(txn));
    return ListIn<T>(txn.get(), dbi, parse, out);
  }
  // Commits one; a commit that fails with EIO (its fdatasync, which also
  // covers the previous commit's meta page) breaks the directory as a
  // failed Sync does.
  Status CommitWrite(LmdbTxn& txn);
  std::string dir_;
  // Not OK once a sync of data.mdb failed: the kernel may have dropped the
  // pages it covered (a homeMDB switch among them), so no write or read is
  // trusted again in this process; reopening (recover) reads what is on disk.
  // Held across each commit and sync, so that no sync can succeed between a
  // failed one and broken_ being set (the kernel reports a writeback error
  // once: a later fsync "succeeds" over the dropped pages).
  std::mutex broken_mu_;
  Status broken_;  // GUARDED_BY(broken_mu_)
  std::atomic<bool> is_broken_{false};  // set (after broken_) when it is
  LmdbEnv env_;
  MDB_dbi users_ = 0, by_mbx_ = 0, stores_ = 0, moves_ = 0, servers_ = 0;
  std::mutex versioned_dbs_mu_;
  std::atomic<bool> versioned_dbs_open_{false};
  MDB_dbi queue_ = 0, leases_ = 0, batches_ = 0;  // valid once versioned_dbs_open_
};

Status LmdbDirectory::Open(const std::string& dir, bool create) {
  dir_ = dir;
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    if (!create) return Status::NotFound("no directory at " + dir);
    if (::mkdir(dir.c_str(), kOwnerOnlyDirMode) != 0 && errno != EEXIST) {
      return PosixError("creating directory folder", dir, errno);
    }
  } else if (!create && ::access((dir + "/data.mdb").c_str(), F_OK) != 0) {
    return Status::NotFound("no directory at " + dir + " (no data.mdb)");
  }
  // NOMETASYNC: every commit syncs its data, the meta page follows with the
  // next commit; operations that must survive a machine crash at once (the
  // homeMDB switch, a move's lock record) sync the meta page too.
  MBX_RETURN_IF_ERROR(
      env_.Open(dir, MDB_NOMETASYNC, kMaxDbs, 1ull << 30).WithContext("opening the directory"));
  LmdbTxn txn;
  MBX_RETURN_IF_ERROR(txn.Begin(env_.get(), create ? 0 : MDB_RDONLY));
  const unsigned flags = create ? MDB_CREATE : 0;
  struct { const char* name; MDB_dbi* dbi; } dbs[] = {
      {"users", &users_}, {"by_mbx", &by_mbx_}, {"stores", &stores_}, {"moves", &moves_},
      {"servers", &servers_}};
  for (auto& db : dbs) {
    int rc = mdb_dbi_open(txn.get(), db.name, flags, db.dbi);
    if (rc != 0) {
      return Status::Corruption(dir + " is not an mbxmove directory (database '" +
                                std::string(db.name) + "': " + mdb_strerror(rc) + ")");
    }
  }
  return txn.Commit();
}

Result<std::string> LmdbDirectory::Get(MDB_dbi dbi, std::string_view k, std::string_view what,
                                       std::string_view shown) {
  CountOperations();
  LmdbTxn txn;
  MBX_RETURN_IF_ERROR(BeginRead(txn));
  return GetIn(txn.get(), dbi, k, what, shown);
}

Status LmdbDirectory::PutStore(const StoreRecord& s) {
  CountOperations();
  return Write(
      [&](MDB_txn* txn) -> Status {
        return Put(txn, stores_, s.name, StoreToJson(s));
      },
      false);
}

Result<StoreRecord> LmdbDirectory::GetStore(const std::string& name) {
  MBX_ASSIGN_OR_RETURN(std::string v, Get(stores_, name, "store", name));
  return ParseStoreJson(v);
}

Status LmdbDirectory::ListStores(std::vector<StoreRecord>* out) {
  CountOperations();
  return List<StoreRecord>(stores_, ParseStoreJson, out);
}

Status LmdbDirectory::PutServer(const ServerRecord& s) {
  CountOperations();
  return Write(
      [&](MDB_txn* txn) -> Status {
        return Put(txn, servers_, s.name, ServerToJson(s));
      },
      true);
}

Result<ServerRecord> LmdbDirectory::GetServer(const std::string& name) {
  MBX_ASSIGN_OR_RETURN(std::string v, Get(servers_, name, "server", name));
  return ParseServerJson(v);
}

Status LmdbDirectory::ListServers(std::vector<ServerRecord>* out) {
  CountOperations();
  return List<ServerRecord>(servers_, ParseServerJson, out);
}

Status LmdbDirectory::PutUsers(const std::vector<UserRecord>& users) {
  CountOperations();
  return Write(
      [&](MDB_txn* txn) -> Status {
        for (const UserRecord& u : users) {
          MBX_RETURN_IF_ERROR(Put(txn, users_, u.name, UserToJson(u)));
          MBX_RETURN_IF_ERROR(Put(txn, by_mbx_, u.mailbox.AsKey(), u.name));
        }
        return Status::Ok();
      },
      true);
}

Result<UserRecord> LmdbDirectory::GetUser(const std::string& name) {
  MBX_ASSIGN_OR_RETURN(std::string v, Get(users_, name, "user", name));
  return ParseUserJson(v);
}

Result<UserRecord> LmdbDirectory::GetUserByMailbox(const Guid& mailbox) {
  CountOperations();
  LmdbTxn txn;
  MBX_RETURN_IF_ERROR(BeginRead(txn));
  auto name = GetIn(txn.get(), by_mbx_, mailbox.AsKey(), "mailbox", mailbox.ToString());
  if (!name.ok()) {
    if (name.status().IsNotFound()) {
      return Status::NotFound("mailbox " + mailbox.ToString() + " belongs to no user in the directory");
    }
    return name.status();
  }
  MBX_ASSIGN_OR_RETURN(std::string v, GetIn(txn.get(), users_, *name, "user", *name));
  return ParseUserJson(v);
}

Status LmdbDirectory::ListUsers(std::vector<UserRecord>* out) {
  CountOperations();
  return List<UserRecord>(users_, ParseUserJson, out);
}

Status LmdbDirectory::SwitchHome(const Guid& mailbox, const StoreRecord& target, const MoveRecord& record) {
  CountOperations();
  return Write(
      [&](MDB_txn* txn) -> Status {
        MBX_ASSIGN_OR_RETURN(std::string user, GetIn(txn, by_mbx_, mailbox.AsKey(), "mailbox", mailbox.ToString()));
        MBX_ASSIGN_OR_RETURN(std::string uv, GetIn(txn, users_, user, "user", user));
        MBX_ASSIGN_OR_RETURN(UserRecord u, ParseUserJson(uv));
        // The guard: homeMDB still names the source, and the move is still ours.
        MBX_ASSIGN_OR_RETURN(std::string sv, GetIn(txn, stores_, record.source, "store", record.source));
        MBX_ASSIGN_OR_RETURN(StoreRecord source, ParseStoreJson(sv));
        if (u.home_mdb != source.dn) {
          return Status::Conflict("homeMDB of " + u.name + " no longer names the source store " + record.source +
                                  " (another writer set it to " + u.home_mdb + "); the move did not switch");
        }
        auto mv = GetIn(txn, moves_, mailbox.AsKey(), "move", mailbox.ToString());
        if (!mv.ok()) {
          if (mv.status().IsNotFound()) {
            return Status::Conflict("the move record of " + mailbox.ToString() + " is gone; the move did not switch");
          }
          return mv.status();
        }
        MBX_ASSIGN_OR_RETURN(MoveRecord current, ParseMoveJson(*mv));
        if (current.source != record.source || current.target != record.target || PastSwitch(current.step)) {
          return Status::Conflict("the move record of " + mailbox.ToString() + " is now " + mbx::Describe(current) +
                                  "; the move did not switch");
        }
        u.home_mdb = target.dn;
        u.home_server = target.server;
        MBX_RETURN_IF_ERROR(Put(txn, users_, u.name, UserToJson(u)));
        MBX_RETURN_IF_ERROR(Put(txn, moves_, mailbox.AsKey(), MoveToJson(record)));
        return Status::Ok();
      },
      true);
}

Status LmdbDirectory::BeginRead(LmdbTxn& txn) {
  // (The flag, not broken_mu_, which a commit holds across its sync.) A
  // caller that decides on a read after a failed write saw the failure after
  // broken_ was set, so it sees the flag.
  if (is_broken_.load(std::memory_order_acquire)) {
    std::lock_guard<std::mutex> l(broken_mu_);
    return broken_;
  }
  return txn.Begin(env_.get(), MDB_RDONLY);
}

Status LmdbDirectory::BeginWrite(LmdbTxn& txn) {
  {
    std::lock_guard<std::mutex> l(broken_mu_);
    if (!broken_.ok()) return broken_;
  }
  CountWrites();
  return txn.Begin(env_.get(), 0);
}

Status LmdbDirectory::CommitWrite(LmdbTxn& txn) {
  std::lock_guard<std::mutex> l(broken_mu_);
  if (!broken_.ok()) return broken_;
  const int rc = txn.CommitRc();
  if (rc == 0) return Status::Ok();
  Status s = LmdbStatus(rc, "committing transaction");
  if (rc == EIO) {
    broken_ = Status::IOError("the directory refuses reads and writes after a failed commit (" + s.message() +
                              "): what it covered may not be on disk; reopen it ('mbxmove recover')");
    is_broken_.store(true, std::memory_order_release);
  }
  return s;
}

Status LmdbDirectory::Write(const std::function<Status(MDB_txn*)>& body, bool durable) {
  Request me;
  me.body = &body;
  me.durable = durable;
  std::unique_lock<std::mutex> l(group_mu_);
  requests_.push_back(&me);
  me.cv.wait(l, [&] { return me.done || requests_.front() == &me; });
  if (me.done) return me.status;  // a leader committed it
  // This thread leads: it commits the requests waiting now, its own first.
  const std::vector<Request*> group(requests_.begin(),
                                    requests_.begin() + std::ptrdiff_t(std::min(requests_.size(), kMaxGroup)));
  l.unlock();
  CommitGroup(group);
  l.lock();
  requests_.erase(requests_.begin(), requests_.begin() + std::ptrdiff_t(group.size()));
  for (Request* r : group) {
    if (r == &me) continue;
    r->done = true;
    r->cv.notify_one();
  }
  if (!requests_.empty()) requests_.front()->cv.notify_one();  // the next group's leader
  return me.status;
}

void LmdbDirectory::CommitGroup(const std::vector<Request*>& group) {
  LmdbTxn txn;
  if (Status s = BeginWrite(txn); !s.ok()) {
    for (Request* r : group) r->status = s;
    return;
  }
  bool durable = false;
  size_t written = 0;
  if (group.size() == 1) {
    // Alone: in the transaction itself, with no nested one to set up (a
    // failure aborts it below).
    group[0]->status = (*group[0]->body)(txn.get());
    if (group[0]->status.ok()) {
      durable = group[0]->durable;
      written = 1;
    }
  } else {
    for (Request* r : group) {
      MDB_txn* child = nullptr;
      int rc = mdb_txn_begin(env_.get(), txn.get(), 0, &child);
      if (rc != 0) {
        r->status = LmdbStatus(rc, "beginning a directory write");
        continue;
      }
      r->status = (*r->body)(child);
      if (!r->status.ok()) {
        mdb_txn_abort(child);  // leaves the group's transaction as it was
        continue;
      }
      rc = mdb_txn_commit(child);  // into the group's transaction
      if (rc != 0) {
        r->status = LmdbStatus(rc, "writing to the directory");
        continue;
      }
      durable = durable || r->durable;
      ++written;
    }
  }
  if (written == 0) return;  // nothing to commit: the transaction is aborted
  Status s = CommitWrite(txn);
  if (s.ok() && durable) s = Sync();
  for (Request* r : group) {
    if (r->status.ok()) r->status = s;
  }
}

Status LmdbDirectory::Sync() {
  std::lock_guard<std::mutex> l(broken_mu_);
  if (!broken_.ok()) return broken_;
  int rc = mdb_env_sync(env_.get(), 1);
  if (rc == 0) return Status::Ok();
  Status s = LmdbStatus(rc, "syncing the directory");
  broken_ = Status::IOError("the directory refuses reads and writes after a failed sync (" + s.message() +
                            "): what it covered may not be on disk; reopen it ('mbxmove recover')");
  is_broken_.store(true, std::memory_order_release);
  return s;
}

Status LmdbDirectory::CreateMove(const MoveRecord& m) {
  CountOperations();
  return Write(
      [&](MDB_txn* txn) -> Status {
        auto existing = GetIn(txn, moves_, m.mailbox.AsKey(), "move", m.mailbox.ToString());
        if (existing.ok()) {
          auto cur = ParseMoveJson(*existing);
          return Status::AlreadyExists("mailbox " + m.mailbox.ToString() + " already has " +
                                       (cur.ok() ? mbx::Describe(*cur) : std::string("a move record")) +
                                       " recorded in the directory");
        }
        if (!existing.status().IsNotFound()) return existing.status();
        MBX_RETURN_IF_ERROR(Put(txn, moves_, m.mailbox.AsKey(), MoveToJson(m)));
        return Status::Ok();
      },
      true);
}

Status LmdbDirectory::AdvanceMove(const MoveRecord& m, MoveStep from, bool sync) {
  CountOperations();
  return Write(
      [&](MDB_txn* txn) -> Status {
        auto existing = GetIn(txn, moves_, m.mailbox.AsKey(), "move", m.mailbox.ToString());
        if (!existing.ok()) {
          if (existing.status().IsNotFound()) {
            return Status::NotFound("no move record for " + m.mailbox.ToString() + " (another mover removed it)");
          }
          return existing.status();
        }
        MBX_ASSIGN_OR_RETURN(MoveRecord cur, ParseMoveJson(*existing));
        if (cur.step != from || cur.source != m.source || cur.target != m.target) {
          return Status::Conflict("the move record of " + m.mailbox.ToString() + " is now " + mbx::Describe(cur) +
                                  ", not at step '" + std::string(MoveStepName(from)) + "' as this move expected");
        }
        MBX_RETURN_IF_ERROR(Put(txn, moves_, m.mailbox.AsKey(), MoveToJson(m)));
        return Status::Ok();
      },
      sync);
}

Status LmdbDirectory::PutMove(const MoveRecord& m, bool sync) {
  CountOperations();
  return Write(
      [&](MDB_txn* txn) -> Status {
        MBX_RETURN_IF_ERROR(Put(txn, moves_, m.mailbox.AsKey(), MoveToJson(m)));
        return Status::Ok();
      },
      sync);
}

Result<MoveRecord> LmdbDirectory::GetMove(const Guid& mailbox) {
  auto v = Get(moves_, mailbox.AsKey(), "move", mailbox.ToString());
  if (!v.ok()) {
    if (v.status().IsNotFound()) return Status::NotFound("no move record for " + mailbox.ToString());
    return v.status();
  }
  return ParseMoveJson(*v);
}

Status LmdbDirectory::ListMoves(std::vector<MoveRecord>* out) {
  CountOperations();
  return List<MoveRecord>(moves_, ParseMoveJson, out);
}

Status LmdbDirectory::DeleteMove(const Guid& mailbox) { return DeleteMoves({mailbox}).front(); }

std::vector<Status> LmdbDirectory::DeleteMoves(const std::vector<Guid>& mailboxes) {
  if (mailboxes.empty()) return {};  // no write, no sync
  CountOperations(mailboxes.size());
  const Status s = Write(
      [&](MDB_txn* txn) -> Status {
        for (const Guid& g : mailboxes) {
          MDB_val k = ToVal(g.AsKey());
          int rc = mdb_del(txn, moves_, &k, nullptr);
          if (rc != 0 && rc != MDB_NOTFOUND) return LmdbStatus(rc, "deleting move record");
        }
        return Status::Ok();
      },
      false);
  return std::vector<Status>(mailboxes.size(), s);
}

Status LmdbDirectory::OpenVersionedDbs() {
  if (versioned_dbs_open_.load(std::memory_order_acquire)) return Status::Ok();
  std::lock_guard<std::mutex> l(versioned_dbs_mu_);
  if (versioned_dbs_open_.load(std::memory_order_relaxed)) return Status::Ok();
  LmdbTxn txn;
  MBX_RETURN_IF_ERROR(BeginWrite(txn));
  for (auto [name, dbi] :
       {std::pair{"queue", &queue_}, std::pair{"leases", &leases_}, std::pair{"batches", &batches_}}) {
    int rc = mdb_dbi_open(txn.get(), name, MDB_CREATE, dbi);
    if (rc != 0) return LmdbStatus(rc, std::string("opening the directory's ") + name + " database");
  }
  MBX_RETURN_IF_ERROR(CommitWrite(txn));
  versioned_dbs_open_.store(true, std::memory_order_release);
  return Status::Ok();
}

Status LmdbDirectory::AddVersioned(MDB_dbi dbi, std::string_view key, std::string_view what,
                                   const std::string& shown, const std::function<std::string(uint64_t)>& to_json) {
  CountOperations();
  return Write(
      [&](MDB_txn* txn) -> Status {
        auto existing = GetIn(txn, dbi, key, what, shown);
        if (existing.ok()) {
          return Status::AlreadyExists(std::string(what) + " '" + shown + "' is already in the directory");
        }
        if (!existing.status().IsNotFound()) return existing.status();
        MBX_RETURN_IF_ERROR(Put(txn, dbi, key, to_json(1)));
        return Status::Ok();
      },
      true);
}

Status LmdbDirectory::ReplaceVersioned(MDB_dbi dbi, std::string_view key, std::string_view what,
                                       const std::string& shown, uint64_t expected,
                                       const std::function<std::string(uint64_t)>* to_json) {
  CountOperations();
  return Write(
      [&](MDB_txn* txn) -> Status {
        MBX_ASSIGN_OR_RETURN(std::string cur, GetIn(txn, dbi, key, what, shown));
        // Only the version is read: a damaged record can still be replaced or
        // deleted by a writer that read its version (queue remove).
        auto j = RecordVersionJson(cur);
        if (expected == 0 && to_json == nullptr) j = 0;  // an unguarded delete (of a damaged record)
        if (!j.has_value()) {
          return Status::Corruption("damaged directory " + std::string(what) + " record '" + shown + "' (no version)");
        }
        if (*j != expected) {
          return Status::Conflict(std::string(what) + " '" + shown + "' changed (version " + std::to_string(*j) +
                                  ", expected " + std::to_string(expected) + "): another writer came first");
        }
        if (to_json == nullptr) {
          MDB_val k = ToVal(key);
          int rc = mdb_del(txn, dbi, &k, nullptr);
          if (rc != 0) return LmdbStatus(rc, "deleting directory record");
        } else {
          MBX_RETURN_IF_ERROR(Put(txn, dbi, key, (*to_json)(expected + 1)));
        }
        return Status::Ok();
      },
      true);
}

Status LmdbDirectory::AddQueueEntry(QueueEntry* e) {
  MBX_RETURN_IF_ERROR(OpenVersionedDbs());
  const std::function<std::string(uint64_t)> js = AtVersion(*e, QueueEntryToJson);
  MBX_RETURN_IF_ERROR(AddVersioned(queue_, e->mailbox.AsKey(), "queue entry", e->mailbox.ToString(), js));
  e->version = 1;
  return Status::Ok();
}

Result<QueueEntry> LmdbDirectory::GetQueueEntry(const Guid& mailbox) {
  MBX_RETURN_IF_ERROR(OpenVersionedDbs());
  MBX_ASSIGN_OR_RETURN(std::string v, Get(queue_, mailbox.AsKey(), "queue entry", mailbox.ToString()));
  return ParseQueueEntryJson(v);
}

template <typename T>
Status LmdbDirectory::ListVersioned(MDB_dbi dbi, const char* what, Result<T> (*parse)(std::string_view),
                                    std::string (*key_text)(std::string_view), std::vector<T>* out,
                                    std::vector<std::string>* damaged) {
  // (The caller opened the databases: `dbi` is one of them.)
  CountOperations();
  out->clear();
  LmdbTxn txn;
  MBX_RETURN_IF_ERROR(BeginRead(txn));
  LmdbCursor cur;
  MBX_RETURN_IF_ERROR(cur.Open(txn.get(), dbi));
  MDB_val k, v;
  int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST);
  for (; rc == 0; rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
    auto e = parse(FromVal(v));
    if (!e.ok()) {
      if (damaged == nullptr) return e.status();
      damaged->push_back(key_text(FromVal(k)) + ": " + e.status().message());
      continue;
    }
    out->push_back(std::move(e).value());
  }
  if (rc != MDB_NOTFOUND) return LmdbStatus(rc, std::string("listing the ") + what);
  return Status::Ok();
}

Status LmdbDirectory::ListQueue(std::vector<QueueEntry>* out, std::vector<std::string>* damaged) {
  MBX_RETURN_IF_ERROR(OpenVersionedDbs());
  return ListVersioned<QueueEntry>(
      queue_, "queue", ParseQueueEntryJson,
      [](std::string_view key) { return key.size() == 16 ? Guid::FromKey(key).ToString() : std::string("?"); }, out,
      damaged);
}

Status LmdbDirectory::UpdateQueueEntry(QueueEntry* e) {
  MBX_RETURN_IF_ERROR(OpenVersionedDbs());
  const std::function<std::string(uint64_t)> js = AtVersion(*e, QueueEntryToJson);
  MBX_RETURN_IF_ERROR(ReplaceVersioned(queue_, e->mailbox.AsKey(), "queue entry", e->mailbox.ToString(),
                                       e->version, &js));
  ++e->version;
  return Status::Ok();
}

Status LmdbDirectory::DeleteQueueEntry(const Guid& mailbox, uint64_t version) {
  MBX_RETURN_IF_ERROR(OpenVersionedDbs());
  return ReplaceVersioned(queue_, mailbox.AsKey(), "queue entry", mailbox.ToString(), version, nullptr);
}

Status LmdbDirectory::AddLease(Lease* l) {
  MBX_RETURN_IF_ERROR(ValidateLeaseName(l->name));
  MBX_RETURN_IF_ERROR(OpenVersionedDbs());
  const std::function<std::string(uint64_t)> js = AtVersion(*l, LeaseToJson);
  MBX_RETURN_IF_ERROR(AddVersioned(leases_, l->name, "lease", l->name, js));
  l->version = 1;
  return Status::Ok();
}

Result<Lease> LmdbDirectory::GetLease(const std::string& name) {
  MBX_RETURN_IF_ERROR(ValidateLeaseName(name));
  MBX_RETURN_IF_ERROR(OpenVersionedDbs());
  MBX_ASSIGN_OR_RETURN(std::string v, Get(leases_, name, "lease", name));
  return ParseLeaseJson(v);
}

Status LmdbDirectory::ListLeases(std::vector<Lease>* out) {
  MBX_RETURN_IF_ERROR(OpenVersionedDbs());
  CountOperations();
  return List<Lease>(leases_, ParseLeaseJson, out);
}

Status LmdbDirectory::UpdateLease(Lease* l) {
  MBX_RETURN_IF_ERROR(ValidateLeaseName(l->name));
  MBX_RETURN_IF_ERROR(OpenVersionedDbs());
  const std::function<std::string(uint64_t)> js = AtVersion(*l, LeaseToJson);
  MBX_RETURN_IF_ERROR(ReplaceVersioned(leases_, l->name, "lease", l->name, l->version, &js));
  ++l->version;
  return Status::Ok();
}

Status LmdbDirectory::DeleteLease(const std::string& name, uint64_t version) {
  MBX_RETURN_IF_ERROR(ValidateLeaseName(name));
  MBX_RETURN_IF_ERROR(OpenVersionedDbs());
  return ReplaceVersioned(leases_, name, "lease", name, version, nullptr);
}

Status LmdbDirectory::AddBatch(BatchRecord* b) {
  MBX_RETURN_IF_ERROR(ValidateBatchName(b->name));
  MBX_RETURN_IF_ERROR(OpenVersionedDbs());
  const std::function<std::string(uint64_t)> js = AtVersion(*b, BatchToJson);
  MBX_RETURN_IF_ERROR(AddVersioned(batches_, b->name, "batch", b->name, js));
  b->version = 1;
  return Status::Ok();
}

Result<BatchRecord> LmdbDirectory::GetBatch(const std::string& name) {
  MBX_RETURN_IF_ERROR(ValidateBatchName(name));
  MBX_RETURN_IF_ERROR(OpenVersionedDbs());
  auto v = Get(batches_, name, "batch", name);
  if (!v.ok()) return NoBatch(v.status(), name);
  return ParseBatchJson(*v);
}

Status LmdbDirectory::ListBatches(std::vector<BatchRecord>* out, std::vector<std::string>* damaged) {
  MBX_RETURN_IF_ERROR(OpenVersionedDbs());
  return ListVersioned<BatchRecord>(
      batches_, "batches", ParseBatchJson,
      [](std::string_view key) {
        // The key is the batch's name; shown printable whatever it holds.
        std::string name(key.substr(0, 64));
        for (char& c : name) {
          if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
        }
        return name;
      },
      out, damaged);
}

Status LmdbDirectory::UpdateBatch(BatchRecord* b) {
  MBX_RETURN_IF_ERROR(ValidateBatchName(b->name));
  MBX_RETURN_IF_ERROR(OpenVersionedDbs());
  const std::function<std::string(uint64_t)> js = AtVersion(*b, BatchToJson);
  MBX_RETURN_IF_ERROR(NoBatch(ReplaceVersioned(batches_, b->name, "batch", b->name, b->version, &js), b->name));
  ++b->version;
  return Status::Ok();
}

Status LmdbDirectory::DeleteBatch(const std::string& name, uint64_t version) {
  MBX_RETURN_IF_ERROR(ValidateBatchName(name));
  MBX_RETURN_IF_ERROR(OpenVersionedDbs());
  return NoBatch(ReplaceVersioned(batches_, name, "batch", name, version, nullptr), name);
}

}  // namespace

Result<std::unique_ptr<Directory>> Directory::OpenLmdb(const std::string& dir, bool create) {
  auto d = std::make_unique<LmdbDirectory>();
  MBX_RETURN_IF_ERROR(d->Open(dir, create));
  return std::unique_ptr<Directory>(std::move(d));
}

}  // namespace mbx
