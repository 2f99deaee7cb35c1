// Mailbox content checksums: a digest of a mailbox's folder tree and of every
// item's logical content, independent of the store, the item ids, the
// compression level and the physical layout, so the same mailbox has the same
// checksum in any store. Moves verify with these; `stat` prints them.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "store/store.h"

namespace mbx {

struct FolderDigest {
  std::string path;  // "Inbox/Projects/2024" (names from the root, '/'-joined)
  FolderKind kind = FolderKind::kUser;
  uint64_t items = 0;          // readable items
  uint64_t item_hash_sum = 0;  // order-independent sum of mixed content hashes
  uint64_t corrupt_items = 0;  // records that failed verification (not in the sum)
  uint64_t stored_bytes = 0;
  uint64_t logical_bytes = 0;
};

struct MailboxDigest {
  uint64_t checksum = 0;  // over the sorted folder digests
  uint64_t folders = 0;
  uint64_t items = 0;
  uint64_t corrupt_items = 0;
  uint64_t stored_bytes = 0;
  uint64_t logical_bytes = 0;
  std::map<uint32_t, FolderDigest> by_folder;  // folder id -> digest
};

// Mixes one item's content hash into a folder's sum (so sums of different
// item sets do not cancel).
uint64_t MixItemHash(uint64_t content_hash);

// Folder id -> '/'-joined path from the root (the root itself is "").
// Corruption if a parent is missing or the tree has a cycle.
Result<std::map<uint32_t, std::string>> FolderPaths(const std::vector<FolderInfo>& folders);

// Called for each record that does not verify: its folder, its item id and
// why (the record is counted in corrupt_items, not in the checksum).
using CorruptRecordFn = std::function<void(uint32_t folder_id, uint64_t item_id, const Status& why)>;

// Reads and verifies every item of the mailbox in `reader`'s snapshot;
// `on_corrupt`, when given, hears of every record that does not verify.
// Corruption when the folder tree is broken; a failed read is its error.
Result<MailboxDigest> DigestMailbox(const StoreReader& reader, const Guid& mailbox,
                                    const CorruptRecordFn& on_corrupt = {});

// Combines folder digests into the mailbox checksum.
uint64_t CombineFolderDigests(const std::map<uint32_t, FolderDigest>& folders);

}  // namespace mbx
