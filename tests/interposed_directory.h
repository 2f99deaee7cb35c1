// InterposedDirectory: a Directory for tests that forwards every call to
// the real one, running a hook before each write: another writer, or a
// directory server dying, at an exact moment. Interpose() installs one in a
// MoveFixture's organisation.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "store/directory.h"
#include "tests/move_fixture.h"

namespace mbx::testing {

// A directory that forwards every call to the real one, after running a hook
// given the call's name and how many calls of that name came before it:
// another writer, or a directory server dying, at an exact moment.
class InterposedDirectory final : public Directory {
 public:
  using Hook = std::function<void(std::string_view call, int n, Directory& inner)>;
  InterposedDirectory(std::unique_ptr<Directory> inner, Hook hook) : inner_(std::move(inner)), hook_(std::move(hook)) {}

  std::string Describe() const override { return inner_->Describe(); }
  Status PutStore(const StoreRecord& s) override { return Before("PutStore").PutStore(s); }
  Result<StoreRecord> GetStore(const std::string& n) override { return inner_->GetStore(n); }
  Status ListStores(std::vector<StoreRecord>* o) override { return inner_->ListStores(o); }
  Status PutServer(const ServerRecord& s) override { return Before("PutServer").PutServer(s); }
  Result<ServerRecord> GetServer(const std::string& n) override { return inner_->GetServer(n); }
  Status ListServers(std::vector<ServerRecord>* o) override { return inner_->ListServers(o); }
  Status PutUsers(const std::vector<UserRecord>& u) override { return Before("PutUsers").PutUsers(u); }
  Result<UserRecord> GetUser(const std::string& n) override { return inner_->GetUser(n); }
  Result<UserRecord> GetUserByMailbox(const Guid& g) override { return inner_->GetUserByMailbox(g); }
  Status ListUsers(std::vector<UserRecord>* o) override { return inner_->ListUsers(o); }
  Status SwitchHome(const Guid& g, const StoreRecord& t, const MoveRecord& r) override {
    return Before("SwitchHome").SwitchHome(g, t, r);
  }
  bool SwitchIsOneWrite() const override { return inner_->SwitchIsOneWrite(); }
  Status CreateMove(const MoveRecord& m) override { return Before("CreateMove").CreateMove(m); }
  Status AdvanceMove(const MoveRecord& m, MoveStep from, bool sync) override {
    return Before("AdvanceMove").AdvanceMove(m, from, sync);
  }
  Status PutMove(const MoveRecord& m, bool sync) override { return Before("PutMove").PutMove(m, sync); }
  Result<MoveRecord> GetMove(const Guid& g) override { return inner_->GetMove(g); }
  Status ListMoves(std::vector<MoveRecord>* o) override { return inner_->ListMoves(o); }
  Status DeleteMove(const Guid& g) override { return Before("DeleteMove").DeleteMove(g); }
  Status Sync() override { return inner_->Sync(); }
  Status AddQueueEntry(QueueEntry* e) override { return inner_->AddQueueEntry(e); }
  Result<QueueEntry> GetQueueEntry(const Guid& g) override { return inner_->GetQueueEntry(g); }
  Status ListQueue(std::vector<QueueEntry>* o, std::vector<std::string>* d) override {
    return inner_->ListQueue(o, d);
  }
  Status UpdateQueueEntry(QueueEntry* e) override { return inner_->UpdateQueueEntry(e); }
  Status DeleteQueueEntry(const Guid& g, uint64_t v) override { return inner_->DeleteQueueEntry(g, v); }
  Status AddLease(Lease* l) override { return inner_->AddLease(l); }
  Result<Lease> GetLease(const std::string& n) override { return inner_->GetLease(n); }
  Status ListLeases(std::vector<Lease>* o) override { return inner_->ListLeases(o); }
  Status UpdateLease(Lease* l) override { return inner_->UpdateLease(l); }
  Status DeleteLease(const std::string& n, uint64_t v) override { return inner_->DeleteLease(n, v); }
  Status AddBatch(BatchRecord* b) override { return Before("AddBatch").AddBatch(b); }
  Result<BatchRecord> GetBatch(const std::string& n) override { return inner_->GetBatch(n); }
  Status ListBatches(std::vector<BatchRecord>* o, std::vector<std::string>* d) override {
    return inner_->ListBatches(o, d);
  }
  Status UpdateBatch(BatchRecord* b) override { return inner_->UpdateBatch(b); }
  Status DeleteBatch(const std::string& n, uint64_t v) override { return inner_->DeleteBatch(n, v); }

 private:
  Directory& Before(std::string_view call) {
    int n;
    {
      std::lock_guard<std::mutex> l(mu_);
      n = counts_[std::string(call)]++;
    }
    hook_(call, n, *inner_);
    return *inner_;
  }
  std::unique_ptr<Directory> inner_;
  Hook hook_;
  std::mutex mu_;
  std::map<std::string, int> counts_;  // GUARDED_BY(mu_)
};

inline void Interpose(MoveFixture& f, InterposedDirectory::Hook hook) {
  f.org().WrapDirectory([&](std::unique_ptr<Directory> d) {
    return std::make_unique<InterposedDirectory>(std::move(d), std::move(hook));
  });
}

}  // namespace mbx::testing
