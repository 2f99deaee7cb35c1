// The report of a move request: per mailbox and for the batch (JSON).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "store/records.h"
#include "store/store_handle.h"

namespace mbx::engine {

struct DroppedItem {
  std::string folder_path;
  uint32_t folder_id = 0;
  uint64_t item_id = 0;
  std::string subject;  // when the record is readable enough to tell
  std::string reason;
};

enum class Outcome { kCompleted, kCompletedWithDroppedItems, kFailed };

// Nearest-rank percentile (p in [0, 1]) of `values`, in any order; 0 for none.
double Percentile(std::vector<double> values, double p);
std::string_view OutcomeName(Outcome o);

struct MailboxReport {
  Guid mailbox;
  std::string user;
  std::string display_name;
  std::string source;
  std::string target;
  Outcome outcome = Outcome::kFailed;
  std::string reason;                     // why it failed, or "" when completed
  std::map<std::string, double> phase_seconds;  // lock, hierarchy, copy, verify, switch, cleanup
  double seconds = 0;
  uint64_t folders = 0;
  uint64_t items_copied = 0;
  uint64_t bytes_copied = 0;    // stored bytes written to the target
  uint64_t logical_bytes = 0;   // logical bytes of the copied items
  uint64_t source_bytes = 0;    // stored bytes read from the source
  uint64_t retries = 0;         // read attempts after a failed one
  double switch_seconds = 0;    // the homeMDB switch (Directory::SwitchHome) alone; 0 if not reached
  // Online moves: the items each pass copied (the initial copy first, the
  // final delta under the lock last), the incremental passes before the
  // lock, and the lock window: from the source's lock to the target's
  // activation, the time clients were refused.
  bool online = false;
  std::vector<uint64_t> pass_items;
  uint64_t change_pages = 0;  // online: pages the passes read the source's changes in (see changes_page_bytes)
  int passes = 0;
  double lock_ms = 0;
  std::vector<DroppedItem> dropped;
};

// Where the time of a whole run went (sums over all mailboxes and threads).
struct TimeBreakdown {
  double read_s = 0;        // cursor walks over the source
  double verify_s = 0;      // verify/decode of every record
  double recompress_s = 0;  // recoding for another compression level
  double write_wait_s = 0;  // movers waiting for the target's writer
  double target_verify_s = 0;
  double directory_s = 0;   // move-record and switch transactions
};

// What the target store's writer and log did during a run: the difference
// of two StoreFigures readings (store/store_handle.h), taken by RunMoves.
struct TargetFigures {
  std::string store;
  std::string sync;      // "full" | "batch" | "none"
  std::string log_mode;  // "backup-flush" | "circular"
  uint64_t log_bytes = 0;
  double log_bytes_per_moved_byte = 0;
  uint64_t log_files_on_disk = 0;  // after the run
  uint64_t log_syncs = 0;
  double log_sync_s = 0;
  uint64_t groups = 0;   // writer commit groups
  uint64_t batches = 0;  // batches committed
  double batches_per_group = 0;
  double commit_s = 0;      // LMDB transactions (apply stage)
  double queue_wait_s = 0;  // batches waiting for their group
  double log_append_s = 0;  // log stage
  uint64_t map_resizes = 0;
  uint64_t data_syncs = 0;  // of data.mdb: each commit's (but with sync none)
  uint64_t copied_bytes = 0;  // copied in memory by the store's write path (log payload, LMDB pages)
  uint64_t dead_bytes_dropped = 0;  // deleted records' pages asked out of the page cache (a source's moved mailboxes)

  // From two readings; `moved_bytes` = bytes copied by the run.
  static TargetFigures Between(const std::string& store, const StoreFigures& before, const StoreFigures& after,
                               uint64_t moved_bytes);
  nlohmann::json ToJson() const;
  // Reads what ToJson wrote (the sweep reads a child's report); a report
  // without these fields is an error that says so.
  static Result<TargetFigures> FromJson(const nlohmann::json& j);
};

// The directory's own share of a run, computed by RunMoves: the requests it
// was sent while the mailboxes moved (Directory::operations() before and
// after; planning is not included) and how long the commit point took.
struct DirectoryFigures {
  std::string backend;  // "lmdb" | "ldap"
  std::string where;    // Directory::Describe(): "ORG/directory", "ldap://host:port/base"
  uint64_t operations = 0;
  uint64_t mailboxes_moved = 0;         // completed moves, the divisor below
  double operations_per_mailbox = 0;    // operations / mailboxes_moved (0 when none moved)
  uint64_t switches = 0;                // SwitchHome calls timed
  double switch_p50_ms = 0;             // SwitchHome latency percentiles (nearest rank), ms
  double switch_p95_ms = 0;
  double switch_max_ms = 0;

  // From the per-mailbox reports and two operations() readings.
  static DirectoryFigures From(const std::string& where, const std::vector<MailboxReport>& mailboxes,
                               uint64_t operations_before, uint64_t operations_after);
  nlohmann::json ToJson() const;
  // Reads what ToJson wrote; an error that says so when fields are missing.
  static Result<DirectoryFigures> FromJson(const nlohmann::json& j);
};

struct MoveReport {
  std::vector<MailboxReport> mailboxes;
  double wall_seconds = 0;
  int concurrency = 0;
  TimeBreakdown time;
  std::optional<TargetFigures> target;  // absent when the target could not be read
  // The same figures for the source store, when every move of the run reads
  // one (its lock and delete commits, and their syncs).
  std::optional<TargetFigures> source;
  DirectoryFigures directory;
  // Item bytes the movers copied in memory: an online move's incremental
  // passes copy each changed record into a write batch; a copy's batches
  // borrow the source's records, and a recompressed record is written by
  // the encoder, not copied.
  uint64_t mover_copied_bytes = 0;

  // Bytes copied in memory on the way from the source's pages to the
  // target's, per byte moved: the movers' copies and the target's and the
  // source's write paths (StoreStats::copied_bytes). 0 when the target's
  // figures are missing. A remote target's RPC copies are not counted.
  double MemoryCopiesPerByte() const;
  uint64_t Completed() const;
  uint64_t Failed() const;
  uint64_t ItemsCopied() const;
  uint64_t ItemsDropped() const;
  uint64_t BytesCopied() const;
  uint64_t LogicalBytes() const;
  // With online moves, totals.lock_ms holds the lock windows' p50/p95/max.
  nlohmann::json ToJson() const;
};

}  // namespace mbx::engine
