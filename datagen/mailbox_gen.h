// Deterministic synthetic mailboxes.
//
// Same GenOptions (seed included) => the same mailboxes, folders and items,
// bit for bit, whatever the thread count or the order in which mailboxes are
// generated: every mailbox draws from its own random stream seeded from
// (options.seed, mailbox index), and every item from one seeded from
// (mailbox seed, item ordinal), so any mailbox can be generated alone.
//
// Thread safety: PlanMailboxes and GenerateMailbox are pure functions of
// their arguments; call them concurrently from any threads.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "store/item.h"
#include "store/records.h"
#include "store/status.h"

namespace mbx::datagen {

struct Preset {
  std::string name;
  uint32_t mailboxes = 0;
  uint64_t total_bytes = 0;  // target logical bytes of the whole dataset
  std::string description;
};
// tiny (a few MB, tests), small (~200 MB, demo), medium (~2 GB), large (~20 GB).
const std::vector<Preset>& Presets();
Result<Preset> FindPreset(std::string_view name);

struct GenOptions {
  uint64_t seed = 1;
  uint32_t mailboxes = 16;
  uint64_t total_bytes = 4ull << 20;  // target logical bytes, all mailboxes
};

struct MailboxSpec {
  uint32_t index = 0;        // 0-based position in the plan
  Guid guid;                 // derived from (seed, index)
  std::string user_name;     // "user0007" style alias, unique in the plan
  std::string display_name;  // "Ada Lovelace"
  std::string smtp;          // "ada.lovelace7@example.com"
  uint64_t target_bytes = 0; // logical bytes this mailbox should hold (approx.)
  uint64_t seed = 0;         // the mailbox's own stream seed
};

// Sizes follow a log-normal distribution (most mailboxes small, a few
// huge), scaled so that they sum to about options.total_bytes.
std::vector<MailboxSpec> PlanMailboxes(const GenOptions& options);

struct FolderSink {
  virtual ~FolderSink() = default;
  // Called for every folder, parents before children, root first.
  virtual Status OnFolder(const FolderInfo& folder) = 0;
  // Called for every item in generation order; item ids are 1, 2, 3, ...
  // within the mailbox. A non-OK status stops generation and is returned.
  virtual Status OnItem(uint32_t folder_id, uint64_t item_id, Item&& item) = 0;
};

// Generates one mailbox: the root, the default folders (Inbox, Sent Items,
// Drafts, Deleted Items, Calendar, Contacts, Tasks, Notes, Journal) holding
// items of the matching message class, plus nested user folders (up to four
// levels deep, some of them empty), with items whose logical sizes add up to
// about spec.target_bytes.
Status GenerateMailbox(const MailboxSpec& spec, FolderSink* sink);

// A new message arriving for the mailbox (`mbxmove load`'s deliveries), of
// about `bytes` logical bytes: deterministic in (spec, ordinal), and unlike
// every generated item (its message id starts with 'd').
Item GenerateDelivery(const MailboxSpec& spec, uint64_t ordinal, uint64_t bytes);

}  // namespace mbx::datagen
