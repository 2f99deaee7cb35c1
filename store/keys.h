// Fixed-width big-endian keys, so that LMDB's byte order is numeric order and
// a cursor walks one mailbox, then one folder, in id order:
//
//   mailboxes: guid(16)
//   folders:   guid(16) folder_id(BE32)
//   items:     guid(16) folder_id(BE32) item_id(BE64)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "store/coding.h"
#include "store/records.h"

namespace mbx::keys {

inline constexpr size_t kMailboxKeyBytes = 16;
inline constexpr size_t kFolderKeyBytes = 20;
inline constexpr size_t kItemKeyBytes = 28;

inline std::string Mailbox(const Guid& g) { return std::string(g.AsKey()); }
inline std::string Folder(const Guid& g, uint32_t folder_id) {
  std::string k(g.AsKey());
  PutBE32(&k, folder_id);
  return k;
}
inline std::string Item(const Guid& g, uint32_t folder_id, uint64_t item_id) {
  std::string k = Folder(g, folder_id);
  PutBE64(&k, item_id);
  return k;
}

// Parsers for keys of the exact widths above (callers check the size).
inline uint32_t FolderIdOf(std::string_view key) { return GetBE32(key.data() + 16); }
inline uint64_t ItemIdOf(std::string_view key) { return GetBE64(key.data() + 20); }

}  // namespace mbx::keys
