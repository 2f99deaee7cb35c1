// The small records a store keeps beside items: mailbox headers and folders,
// with their binary encodings, and the GUID type that names a mailbox.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "store/status.h"

namespace mbx {

// A 128-bit mailbox identifier, printed as 32 lowercase hex digits in the
// 8-4-4-4-12 form of Exchange's mailbox GUIDs.
struct Guid {
  std::array<uint8_t, 16> bytes{};
  std::string ToString() const;
  static std::optional<Guid> Parse(std::string_view s);  // accepts with or without dashes
  std::string_view AsKey() const {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  static Guid FromKey(std::string_view k);  // k.size() must be >= 16
  auto operator<=>(const Guid&) const = default;
};

enum class MailboxState : uint8_t {
  kActive = 0,
  kMovingOut = 1,    // locked by a move: logons and deliveries refused
  kMovingIn = 2,     // hidden, being filled by a move
  kSoftDeleted = 3,  // source kept after a move (--keep-source)
};
std::string_view MailboxStateName(MailboxState s);

struct MailboxInfo {
  Guid guid;
  std::string owner;         // user name (directory key)
  std::string display_name;  // "Ada Lovelace"
  MailboxState state = MailboxState::kActive;
  uint64_t folder_count = 0;
  uint64_t item_count = 0;
  uint64_t stored_bytes = 0;   // sum of encoded record sizes
  uint64_t logical_bytes = 0;  // sum of Item::LogicalSize()
  uint64_t next_item_id = 1;   // next free item id in this mailbox
  // Change tracking (store_handle.h: ClientOp, TrackChanges): the number of
  // the mailbox's last change (every client operation bumps it), whether a
  // sync keeps its change index, and up to which change number the index
  // was pruned (entries after it are all there while tracked).
  uint64_t change_number = 0;
  bool tracked = false;
  uint64_t pruned_through = 0;
};

// Well-known folder kinds (the default folder set); kUser is any other folder.
enum class FolderKind : uint8_t {
  kRoot = 0,  // "Top of Information Store": id 1, parent 0
  kInbox,
  kSentItems,
  kDrafts,
  kDeletedItems,
  kCalendar,
  kContacts,
  kTasks,
  kNotes,
  kJournal,
  kUser,
};
std::string_view FolderKindName(FolderKind k);
inline constexpr uint32_t kRootFolderId = 1;

struct FolderInfo {
  uint32_t id = 0;
  uint32_t parent_id = 0;  // 0 only for the root folder
  FolderKind kind = FolderKind::kUser;
  std::string name;
  bool operator==(const FolderInfo&) const = default;
};

std::string EncodeMailboxInfo(const MailboxInfo& m);
Result<MailboxInfo> DecodeMailboxInfo(std::string_view key, std::string_view value);
std::string EncodeFolderInfo(const FolderInfo& f);
Result<FolderInfo> DecodeFolderInfo(uint32_t id, std::string_view value);

}  // namespace mbx
