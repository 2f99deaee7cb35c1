// A small organisation for engine tests: a generated source store and an
// empty target, with helpers to snapshot and check the end state.
#pragma once

#include <map>
#include <set>
#include <string>

#include "datagen/populate.h"
#include "engine/move_engine.h"
#include "store/checksum.h"
#include "tests/test_util.h"

namespace mbx::testing {

struct MailboxState2 {
  std::string store;
  MailboxState state;
  uint64_t checksum;
};

class MoveFixture {
 public:
  explicit MoveFixture(double corrupt_rate = 0, StoreOptions target_options = {}, uint32_t mailboxes = 12,
                       uint64_t bytes = 3u << 20) {
    auto o = Organization::OpenOrCreate(dir_ / "org");
    if (!o.ok()) std::abort();
    org_ = std::move(o).value();
    StoreOptions so;
    so.log.mode = LogMode::kCircular;
    if (!org_->CreateStore("MS1", "SERVER1", so).ok()) std::abort();
    if (!org_->CreateStore("MS2", "SERVER2", target_options).ok()) std::abort();
    datagen::PopulateOptions po;
    po.gen.seed = 11;
    po.gen.mailboxes = mailboxes;
    po.gen.total_bytes = bytes;
    po.corrupt_rate = corrupt_rate;
    auto r = datagen::Populate(*org_, "MS1", po, nullptr);
    if (!r.ok()) std::abort();
    populated_ = *r;
    before_ = Snapshot();
  }

  Organization& org() { return *org_; }
  const std::string& dir() const { return dir_.path(); }
  const datagen::PopulateResult& populated() const { return populated_; }

  // mailbox -> every store holding it, with state and checksum.
  std::map<Guid, std::vector<MailboxState2>> Snapshot() {
    std::map<Guid, std::vector<MailboxState2>> out;
    for (const std::string name : {"MS1", "MS2"}) {
      auto s = org_->GetStore(name);
      if (!s.ok()) std::abort();
      auto r = (*s)->BeginRead();
      std::vector<MailboxInfo> m;
      if (!r->ListMailboxes(&m).ok()) std::abort();
      for (const auto& mi : m) {
        auto d = DigestMailbox(*r, mi.guid);
        out[mi.guid].push_back({name, mi.state, d.ok() ? d->checksum : 0});
      }
    }
    return out;
  }
  const std::map<Guid, std::vector<MailboxState2>>& before() const { return before_; }

  std::string HomeStore(const Guid& g) {
    auto u = org_->directory().GetUserByMailbox(g);
    if (!u.ok()) return "";
    std::vector<StoreRecord> stores;
    (void)org_->directory().ListStores(&stores);
    for (const auto& s : stores) {
      if (s.dn == u->home_mdb) return s.name;
    }
    return "?";
  }

  engine::MoveReport MoveAll(engine::MoveOptions o) {
    engine::MoveRequest req;
    req.from_store = "MS1";
    o.target = "MS2";
    req.options = o;
    auto plan = engine::PlanMoves(*org_, req);
    if (!plan.ok()) std::abort();
    engine::MoveCounters c;
    return engine::RunMoves(*org_, *plan, o, &c);
  }

 private:
  TempDir dir_;
  std::unique_ptr<Organization> org_;
  datagen::PopulateResult populated_;
  std::map<Guid, std::vector<MailboxState2>> before_;
};

}  // namespace mbx::testing
