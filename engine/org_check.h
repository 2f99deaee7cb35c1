// OrgCheck: one survey of an organisation, and the move invariant checked on
// it. Which store holds each mailbox and in which state, each copy's content
// checksum, whether the directory's homeMDB names the store that holds the
// mailbox active, and which records do not verify.
//
// `mbxmove verify`, the soak and the tests all check an organisation with
// this module, so they agree on what "consistent" means; the CLI only
// formats what it finds.
//
// Thread safety: a survey reads each store in one read snapshot and the
// directory as it is; it may run while moves are in flight (it then sees
// their move records and does not call their locked or partial mailboxes a
// problem), but a survey taken then is not one instant of the organisation.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/checksum.h"
#include "store/organization.h"

namespace mbx::engine {

// One mailbox record in one store.
struct MailboxCopy {
  std::string store;
  MailboxInfo info;       // owner, display name, state, header counts
  MailboxDigest digest;   // content; all zero when digest_status is not OK
  Status digest_status;   // why the content could not be read
};

// A record that does not verify. Listed, not a problem: a move drops it.
struct CorruptItem {
  std::string store;
  Guid mailbox;
  std::string owner;
  std::string folder;  // '/'-joined path from the root
  uint64_t item_id = 0;
  std::string reason;
};

enum class ProblemKind {
  kStoreUnreadable,        // a registered store cannot be opened or read
  kFolderTree,             // a mailbox's folder tree is broken (missing parent, cycle)
  kHomeMdbUnknownStore,    // a user's homeMDB names no registered store
  kMailboxMissing,         // the store homeMDB names does not hold the user's mailbox
  kMailboxNotActive,       // ... holds it, but not active
  kActiveInSeveralStores,  // a mailbox is active in more than one store
  kMailboxWithoutUser,     // an active mailbox no user owns
  kLeftInTransition,       // moving-in or moving-out with no move or import record
};
// "store-unreadable", "folder-tree", "homeMDB-unknown-store", "mailbox-missing",
// "mailbox-not-active", "active-in-several-stores", "mailbox-without-user",
// "left-in-transition".
std::string_view ProblemKindName(ProblemKind k);

// What does not hold. Fields that do not apply to the kind stay empty.
struct OrgProblem {
  ProblemKind kind = ProblemKind::kStoreUnreadable;
  std::string user;
  std::optional<Guid> mailbox;
  std::string store;
  std::vector<std::string> stores;     // kActiveInSeveralStores, kMailboxWithoutUser
  std::string home_mdb;                // kHomeMdbUnknownStore
  std::optional<MailboxState> state;   // kMailboxNotActive, kLeftInTransition
  std::string detail;                  // the error behind it, when there is one
  std::string ToString() const;        // one line, for messages
};

// Everything known about one mailbox.
struct MailboxSurvey {
  std::vector<MailboxCopy> copies;  // every store holding a record of it, in store order
  std::optional<UserRecord> user;   // the user that owns it, if any
  std::string home_store;           // the store the user's homeMDB names; "" when none does

  int active_copies() const;
  // The one active copy; nullptr when it is active nowhere or in several stores.
  const MailboxCopy* active() const;
  // Its copy in `store`; nullptr if that store holds none.
  const MailboxCopy* in(std::string_view store) const;
};

struct OrgSurvey {
  std::vector<StoreRecord> stores;
  std::vector<UserRecord> users;
  // Every mailbox a store holds in any state, and every mailbox a user names.
  std::map<Guid, MailboxSurvey> mailboxes;
  std::vector<OrgProblem> problems;
  std::vector<CorruptItem> corrupt_items;
  uint64_t items_checked = 0;  // records read, corrupt ones included

  // No problem: every user's homeMDB names a store holding that mailbox
  // active, no mailbox is active in two stores or without a user, none is
  // left locked or partial by a move that no longer runs. Corrupt items do
  // not make a survey unclean.
  bool clean() const { return problems.empty(); }
};

// Surveys every store registered in `org` and its directory. A store that
// cannot be opened or read, and a broken folder tree, are problems in the
// survey; only a directory that cannot be read is an error.
Result<OrgSurvey> SurveyOrganization(Organization& org);

// The move invariant (DESIGN.md, "Engine"), between a survey taken before
// some moves and one taken after them, once none is in flight: every mailbox
// active in `before` is active in exactly one store in `after`, the store
// its homeMDB names, with the checksum it had in `before` (or, for a mailbox
// in `expected_checksums`, that checksum: e.g. its content plus what was
// delivered to it meanwhile); no other mailbox became active; and `after`
// has no problem. Returns one line per violation; empty when it holds.
std::vector<std::string> MoveInvariantViolations(const OrgSurvey& before, const OrgSurvey& after,
                                                 const std::map<Guid, uint64_t>& expected_checksums = {});

}  // namespace mbx::engine
