// Populate: writes generated mailboxes into a store of an organisation and
// registers their users in the directory, in parallel (oneTBB), through the
// store's group-commit writer.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "datagen/mailbox_gen.h"
#include "store/organization.h"

namespace mbx::datagen {

struct PopulateOptions {
  GenOptions gen;
  double corrupt_rate = 0.0;         // fraction of items written as damaged records
  size_t batch_bytes = 4u << 20;     // bytes per WriteBatch handed to the writer
  int threads = 0;                   // 0 = all cores
};

struct CorruptedItem {
  Guid mailbox;
  std::string user;
  std::string folder_path;
  uint32_t folder_id = 0;
  uint64_t item_id = 0;
};

struct PopulateProgress {
  std::atomic<uint64_t> mailboxes_done{0};
  std::atomic<uint64_t> items{0};
  std::atomic<uint64_t> logical_bytes{0};
};

struct PopulateResult {
  uint64_t mailboxes = 0;
  uint64_t folders = 0;
  uint64_t items = 0;
  uint64_t stored_bytes = 0;
  uint64_t logical_bytes = 0;
  std::vector<CorruptedItem> corrupted;  // sorted by (mailbox index, item id)
  double seconds = 0;
};

// True when the item (mailbox `index`, `item_id`) of a dataset with `seed` is
// one that --corrupt-rate `rate` damages: a pure function, so tests can
// predict the set.
bool IsCorruptedItem(uint64_t seed, uint32_t index, uint64_t item_id, double rate);

// Fails before writing anything if a planned user already exists in the
// directory or the store does not exist.
Result<PopulateResult> Populate(Organization& org, const std::string& store_name,
                                const PopulateOptions& options, PopulateProgress* progress);

}  // namespace mbx::datagen
