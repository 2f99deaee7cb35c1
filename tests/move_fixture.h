// A small organisation for engine tests: a generated source store and an
// empty target, surveyed (engine/org_check.h) before anything moves. Under
// MBX_TEST_DIRECTORY=ldap its directory is in the test process's slapd
// (tests/ldap_test_util.h), under a base of its own.
#pragma once

#include <string>

#include "datagen/populate.h"
#include "engine/move_engine.h"
#include "engine/org_check.h"
#include "tests/ldap_test_util.h"
#include "tests/test_util.h"

namespace mbx::testing {

class MoveFixture {
 public:
  explicit MoveFixture(double corrupt_rate = 0, StoreOptions target_options = {}, uint32_t mailboxes = 12,
                       uint64_t bytes = 3u << 20) {
    auto o = CreateTestOrganization(dir_ / "org");
    if (!o.ok()) {
      std::fprintf(stderr, "creating the test organisation: %s\n", o.status().ToString().c_str());
      std::abort();
    }
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

  // The organisation as it is now: every copy of every mailbox, its state
  // and checksum, and the store its homeMDB names.
  engine::OrgSurvey Snapshot() {
    auto s = engine::SurveyOrganization(*org_);
    if (!s.ok()) std::abort();
    return std::move(s).value();
  }
  // The survey taken right after the source was populated.
  const engine::OrgSurvey& before() const { return before_; }

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
  engine::OrgSurvey before_;
};

}  // namespace mbx::testing
