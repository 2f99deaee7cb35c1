#include "engine/org_check.h"

#include <set>

namespace mbx::engine {

std::string_view ProblemKindName(ProblemKind k) {
  switch (k) {
    case ProblemKind::kStoreUnreadable: return "store-unreadable";
    case ProblemKind::kFolderTree: return "folder-tree";
    case ProblemKind::kHomeMdbUnknownStore: return "homeMDB-unknown-store";
    case ProblemKind::kMailboxMissing: return "mailbox-missing";
    case ProblemKind::kMailboxNotActive: return "mailbox-not-active";
    case ProblemKind::kActiveInSeveralStores: return "active-in-several-stores";
    case ProblemKind::kMailboxWithoutUser: return "mailbox-without-user";
    case ProblemKind::kLeftInTransition: return "left-in-transition";
  }
  return "unknown";
}

std::string OrgProblem::ToString() const {
  std::string s(ProblemKindName(kind));
  auto add = [&](const char* what, const std::string& v) {
    if (!v.empty()) s += std::string(" ") + what + "=" + v;
  };
  add("user", user);
  if (mailbox) add("mailbox", mailbox->ToString());
  add("store", store);
  std::string list;
  for (const auto& st : stores) list += (list.empty() ? "" : ",") + st;
  add("stores", list);
  add("homeMDB", home_mdb);
  if (state) add("state", std::string(MailboxStateName(*state)));
  if (!detail.empty()) s += ": " + detail;
  return s;
}

int MailboxSurvey::active_copies() const {
  int n = 0;
  for (const auto& c : copies) n += c.info.state == MailboxState::kActive;
  return n;
}

const MailboxCopy* MailboxSurvey::active() const {
  const MailboxCopy* found = nullptr;
  for (const auto& c : copies) {
    if (c.info.state != MailboxState::kActive) continue;
    if (found) return nullptr;
    found = &c;
  }
  return found;
}

const MailboxCopy* MailboxSurvey::in(std::string_view store) const {
  for (const auto& c : copies) {
    if (c.store == store) return &c;
  }
  return nullptr;
}

namespace {

// Appends a problem of `kind` to the survey; the caller fills in what applies.
OrgProblem& AddProblem(OrgSurvey* out, ProblemKind kind) {
  out->problems.emplace_back();
  out->problems.back().kind = kind;
  return out->problems.back();
}

// Reads one store's mailboxes into *out. A failure to open or read the store
// comes back as its error (the caller records it as a problem).
Status SurveyStore(Organization& org, const std::string& name, OrgSurvey* out) {
  MBX_ASSIGN_OR_RETURN(Store * store, org.GetStore(name));
  MBX_ASSIGN_OR_RETURN(StoreReader reader, store->BeginRead());
  std::vector<MailboxInfo> mbxs;
  MBX_RETURN_IF_ERROR(reader.ListMailboxes(&mbxs));
  for (const auto& m : mbxs) {
    MailboxCopy copy;
    copy.store = name;
    copy.info = m;
    std::vector<FolderInfo> folders;
    MBX_RETURN_IF_ERROR(reader.ListFolders(m.guid, &folders));
    auto paths = FolderPaths(folders);
    if (!paths.ok()) {
      copy.digest_status = paths.status();
      OrgProblem& p = AddProblem(out, ProblemKind::kFolderTree);
      p.mailbox = m.guid;
      p.store = name;
      p.detail = paths.status().message();
    } else {
      auto digest = DigestMailbox(reader, m.guid, [&](uint32_t folder, uint64_t id, const Status& why) {
        out->corrupt_items.push_back({name, m.guid, m.owner, (*paths)[folder], id, why.message()});
      });
      if (!digest.ok()) return digest.status().WithContext("mailbox " + m.guid.ToString());
      copy.digest = std::move(*digest);
      out->items_checked += copy.digest.items + copy.digest.corrupt_items;
    }
    out->mailboxes[m.guid].copies.push_back(std::move(copy));
  }
  return Status::Ok();
}

}  // namespace

Result<OrgSurvey> SurveyOrganization(Organization& org) {
  OrgSurvey out;
  MBX_RETURN_IF_ERROR(org.ListStores(&out.stores));
  MBX_RETURN_IF_ERROR(org.directory().ListUsers(&out.users));
  std::vector<MoveRecord> moves;  // moves and imports in flight (or left for recovery)
  MBX_RETURN_IF_ERROR(org.directory().ListMoves(&moves));

  for (const auto& sr : out.stores) {
    if (Status s = SurveyStore(org, sr.name, &out); !s.ok()) {
      OrgProblem& p = AddProblem(&out, ProblemKind::kStoreUnreadable);
      p.store = sr.name;
      p.detail = s.message();
    }
  }

  std::map<std::string, std::string> store_by_dn;
  for (const auto& s : out.stores) store_by_dn[s.dn] = s.name;
  for (const auto& u : out.users) {
    MailboxSurvey& m = out.mailboxes[u.mailbox];
    m.user = u;
    auto it = store_by_dn.find(u.home_mdb);
    if (it == store_by_dn.end()) {
      OrgProblem& p = AddProblem(&out, ProblemKind::kHomeMdbUnknownStore);
      p.user = u.name;
      p.home_mdb = u.home_mdb;
      continue;
    }
    m.home_store = it->second;
    const MailboxCopy* home = m.in(m.home_store);
    if (!home || home->info.state != MailboxState::kActive) {
      OrgProblem& p = AddProblem(&out, home ? ProblemKind::kMailboxNotActive : ProblemKind::kMailboxMissing);
      p.user = u.name;
      p.mailbox = u.mailbox;
      p.store = m.home_store;
      if (home) p.state = home->info.state;
    }
  }

  std::set<Guid> in_flight;
  for (const auto& mv : moves) in_flight.insert(mv.mailbox);
  for (const auto& [g, m] : out.mailboxes) {
    std::vector<std::string> active_in;
    for (const auto& c : m.copies) {
      if (c.info.state == MailboxState::kActive) active_in.push_back(c.store);
      const bool transitional =
          c.info.state == MailboxState::kMovingIn || c.info.state == MailboxState::kMovingOut;
      if (transitional && !in_flight.count(g)) {
        OrgProblem& p = AddProblem(&out, ProblemKind::kLeftInTransition);
        p.mailbox = g;
        p.store = c.store;
        p.state = c.info.state;
      }
    }
    if (active_in.size() > 1) {
      OrgProblem& p = AddProblem(&out, ProblemKind::kActiveInSeveralStores);
      p.mailbox = g;
      p.stores = active_in;
    }
    if (!active_in.empty() && !m.user) {
      OrgProblem& p = AddProblem(&out, ProblemKind::kMailboxWithoutUser);
      p.mailbox = g;
      p.stores = active_in;
    }
  }
  return out;
}

std::vector<std::string> MoveInvariantViolations(const OrgSurvey& before, const OrgSurvey& after,
                                                 const std::map<Guid, uint64_t>& expected_checksums) {
  std::vector<std::string> bad;
  for (const auto& p : after.problems) bad.push_back(p.ToString());
  for (const auto& [g, was] : before.mailboxes) {
    const MailboxCopy* from = was.active();
    if (!from) continue;  // not active (in exactly one store) before: nothing to keep
    const std::string id = g.ToString();
    const auto it = after.mailboxes.find(g);
    const int copies = it == after.mailboxes.end() ? 0 : it->second.active_copies();
    if (copies == 0) {
      bad.push_back(id + " is active nowhere");
      continue;
    }
    if (copies > 1) {
      bad.push_back(id + " is active in " + std::to_string(copies) + " stores");
      continue;
    }
    const MailboxSurvey& now = it->second;
    const MailboxCopy& to = *now.active();
    if (!to.digest_status.ok()) {
      bad.push_back(id + " in " + to.store + " cannot be read: " + to.digest_status.ToString());
    } else {
      const auto want = expected_checksums.find(g);
      const uint64_t sum = want == expected_checksums.end() ? from->digest.checksum : want->second;
      if (to.digest.checksum != sum) bad.push_back(id + " changed content in " + to.store);
    }
    if (now.home_store != to.store) {
      bad.push_back(id + " is active in " + to.store + " but its homeMDB names " +
                    (now.home_store.empty() ? std::string("no store") : now.home_store));
    }
  }
  for (const auto& [g, now] : after.mailboxes) {
    if (now.active_copies() == 0) continue;
    const auto it = before.mailboxes.find(g);
    if (it == before.mailboxes.end() || !it->second.active()) {
      bad.push_back(g.ToString() + " became active though it was not before");
    }
  }
  return bad;
}

}  // namespace mbx::engine
