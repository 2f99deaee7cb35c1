// mbxmove stat | verify
#include <cstdio>
#include <memory>
#include <string>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "engine/org_check.h"
#include "store/checksum.h"
#include "store/item_codec.h"
#include "store/organization.h"

namespace mbx::cli {

namespace {

std::string Hex64(uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)v);
  return buf;
}

struct StatArgs {
  std::string org, store;
  bool json = false;
};

int RunStat(const StatArgs& a) {
  auto org = OpenOrgRecovering(a.org, {}, a.json);
  if (!org.ok()) return Fail(org.status());
  std::vector<StoreRecord> stores;
  if (Status s = (*org)->ListStores(&stores); !s.ok()) return Fail(s);
  if (!a.store.empty()) {
    auto rec = (*org)->directory().GetStore(a.store);
    if (!rec.ok()) return Fail(Status::NotFound("store '" + a.store + "' is not registered in " + a.org));
    stores = {*rec};
  }
  json jstores = json::array(), jmailboxes = json::array();
  uint64_t t_mbx = 0, t_items = 0, t_stored = 0, t_logical = 0, t_corrupt = 0, t_folders = 0;
  for (const auto& sr : stores) {
    auto store = (*org)->GetStore(sr.name);
    if (!store.ok()) return Fail(store.status());
    auto reader = (*store)->BeginRead();
    if (!reader.ok()) return Fail(reader.status());
    std::vector<MailboxInfo> mbxs;
    if (Status s = reader->ListMailboxes(&mbxs); !s.ok()) return Fail(s);
    uint64_t s_items = 0, s_stored = 0, s_logical = 0;
    if (!a.json) {
      std::printf("store %s (%s): %zu mailboxes\n", sr.name.c_str(), sr.server.c_str(), mbxs.size());
      std::printf("  %-36s %-10s %-13s %7s %8s %11s %16s\n", "mailbox", "owner", "state", "folders",
                  "items", "bytes", "checksum");
    }
    for (const auto& m : mbxs) {
      auto d = DigestMailbox(*reader, m.guid);
      if (!d.ok()) return Fail(d.status().WithContext("mailbox " + m.guid.ToString()));
      jmailboxes.push_back({{"mailbox", m.guid.ToString()}, {"store", sr.name}, {"owner", m.owner},
                            {"display_name", m.display_name}, {"state", MailboxStateName(m.state)},
                            {"folders", d->folders}, {"items", d->items}, {"corrupt_items", d->corrupt_items},
                            {"stored_bytes", d->stored_bytes}, {"logical_bytes", d->logical_bytes},
                            {"checksum", Hex64(d->checksum)}});
      if (!a.json) {
        std::printf("  %-36s %-10s %-13s %7llu %8llu %11s %16s%s\n", m.guid.ToString().c_str(),
                    m.owner.c_str(), std::string(MailboxStateName(m.state)).c_str(),
                    (unsigned long long)d->folders, (unsigned long long)d->items,
                    FormatBytes(double(d->logical_bytes)).c_str(), Hex64(d->checksum).c_str(),
                    d->corrupt_items ? (" (" + std::to_string(d->corrupt_items) + " corrupt)").c_str() : "");
      }
      s_items += d->items;
      s_stored += d->stored_bytes;
      s_logical += d->logical_bytes;
      t_corrupt += d->corrupt_items;
      t_folders += d->folders;
    }
    jstores.push_back({{"name", sr.name}, {"server", sr.server}, {"dn", sr.dn}, {"mailboxes", mbxs.size()},
                       {"items", s_items}, {"stored_bytes", s_stored}, {"logical_bytes", s_logical}});
    t_mbx += mbxs.size();
    t_items += s_items;
    t_stored += s_stored;
    t_logical += s_logical;
  }
  json totals = {{"stores", stores.size()}, {"mailboxes", t_mbx}, {"folders", t_folders}, {"items", t_items},
                 {"corrupt_items", t_corrupt}, {"stored_bytes", t_stored}, {"logical_bytes", t_logical}};
  if (a.json) {
    PrintJson({{"stores", jstores}, {"mailboxes", jmailboxes}, {"totals", totals}});
  } else {
    std::printf("total: %llu stores, %llu mailboxes, %llu items, %s logical, %s stored, %llu corrupt items\n",
                (unsigned long long)stores.size(), (unsigned long long)t_mbx, (unsigned long long)t_items,
                FormatBytes(double(t_logical)).c_str(), FormatBytes(double(t_stored)).c_str(),
                (unsigned long long)t_corrupt);
  }
  return kExitOk;
}

struct VerifyArgs {
  std::string org;
  bool json = false;
};

// A problem as the JSON object verify prints: its kind and the fields that apply.
json ProblemJson(const engine::OrgProblem& p) {
  json j = {{"kind", engine::ProblemKindName(p.kind)}};
  if (!p.user.empty()) j["user"] = p.user;
  if (p.mailbox) j["mailbox"] = p.mailbox->ToString();
  if (!p.store.empty()) j["store"] = p.store;
  if (!p.stores.empty()) j["stores"] = p.stores;
  if (!p.home_mdb.empty()) j["homeMDB"] = p.home_mdb;
  if (p.state) j["state"] = MailboxStateName(*p.state);
  if (!p.detail.empty()) j["detail"] = p.detail;
  return j;
}

int RunVerify(const VerifyArgs& a) {
  auto org = OpenOrgRecovering(a.org, {}, a.json);
  if (!org.ok()) return Fail(org.status());
  auto survey = engine::SurveyOrganization(**org);
  if (!survey.ok()) return Fail(survey.status());
  json problems = json::array(), corrupt = json::array();
  for (const auto& p : survey->problems) problems.push_back(ProblemJson(p));
  for (const auto& c : survey->corrupt_items) {
    corrupt.push_back({{"store", c.store}, {"mailbox", c.mailbox.ToString()}, {"owner", c.owner},
                       {"folder", c.folder}, {"item_id", c.item_id}, {"reason", c.reason}});
  }
  const bool clean = survey->clean();
  if (a.json) {
    PrintJson({{"clean", clean}, {"users", survey->users.size()}, {"stores", survey->stores.size()},
               {"items_checked", survey->items_checked}, {"problems", problems}, {"corrupt_items", corrupt}});
  } else {
    for (const auto& p : problems) std::printf("problem: %s\n", p.dump().c_str());
    for (const auto& c : corrupt) std::printf("corrupt item: %s\n", c.dump().c_str());
    std::printf("verify: %zu users, %zu stores, %llu items checked, %zu problems, %zu corrupt items\n",
                survey->users.size(), survey->stores.size(), (unsigned long long)survey->items_checked,
                problems.size(), corrupt.size());
  }
  return clean ? kExitOk : kExitPartial;
}

}  // namespace

void AddStatCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<StatArgs>();
  CLI::App* c = app.add_subcommand(
      "stat", "Stores and mailboxes: owner, state, folders, items, bytes and content checksum "
              "(independent of store and item ids: a moved mailbox keeps its checksum)");
  c->add_option("--org", a->org, "Organisation folder")->required();
  c->add_option("--store", a->store, "Only this store");
  c->add_flag("--json", a->json, "Print JSON: stores, mailboxes (each with 'checksum'), totals");
  c->callback([a, exit_code] { *exit_code = RunStat(*a); });
}

void AddVerifyCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<VerifyArgs>();
  CLI::App* c = app.add_subcommand(
      "verify", "Check the organisation: every user's homeMDB names a store holding that mailbox active, "
                "no mailbox is active in two stores or without a user, none is left moving-in or moving-out by a move that "
                "no longer runs, every item record decodes (corrupt items are listed, not fatal). Exit 0 when "
                "consistent, 3 when problems are found");
  c->add_option("--org", a->org, "Organisation folder")->required();
  c->add_flag("--json", a->json, "Print JSON");
  c->callback([a, exit_code] { *exit_code = RunVerify(*a); });
}

}  // namespace mbx::cli
