// ClientLoad: a deterministic load generator acting as the users of some
// mailboxes (`mbxmove load`): deliveries of generated messages, flag
// changes, moves between folders, deletes and folder changes, at a fixed
// rate, against whatever store holds each mailbox now (it follows homeMDB,
// as a client follows the directory's referral after a move).
//
// While a move has a mailbox locked, its operations are refused ("move in
// progress"); the generator pauses and retries them, as a client would, and
// reports what it did: operations done, refused answers and retried
// operations, and the latency of each kind (from the first attempt to the
// acknowledgement, pauses included).
//
// Deterministic: each mailbox has its own random stream from (seed, its
// position in the list), and its operations run in order on one thread, so
// the same seed against the same mailboxes issues the same operations.
//
// The generator keeps a model of each mailbox built from what the store
// acknowledged (items and their folders, flags it set, folders): tests
// compare a mailbox after a move with it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/organization.h"
#include "store/store_handle.h"

namespace mbx::engine {

// Weights of each kind of operation (any non-negative integers, not all 0).
struct LoadMix {
  std::map<std::string, int> weights{{"deliver", 60}, {"flag", 25}, {"move", 10}, {"delete", 5}};
  // "deliver:60,flag:25,move:10,delete:5,folder:2" (folder = create, rename
  // or delete a user folder).
  static Result<LoadMix> Parse(std::string_view text);
  std::string ToString() const;
};

struct LoadOptions {
  std::vector<Guid> mailboxes;  // the users' mailboxes (in this order: the seed's streams)
  double rate = 50;             // operations per second, over all mailboxes
  double duration_s = 10;
  LoadMix mix;
  uint64_t seed = 1;
  int threads = 4;              // mailboxes are shared out among them
  std::chrono::milliseconds pause{20};       // after a refusal, before the retry
  std::chrono::milliseconds give_up{60000};  // an operation refused this long fails
  uint64_t delivery_bytes = 4096;            // logical size of a delivered message
  // When set, every operation is appended to this file before it is sent
  // ("P mailbox kind folder item to-folder flags keywords name") and again
  // once acknowledged ("A mailbox new-id change-number"), each line written
  // through at once: after a crash of this process, what the stores must
  // hold is every acknowledged operation, and at most the one pending
  // operation of each mailbox besides (tests/online_move_test.cc).
  std::string journal;
};

struct KindFigures {
  uint64_t done = 0;      // acknowledged
  uint64_t refused = 0;   // "move in progress" answers
  uint64_t retried = 0;   // operations acknowledged after at least one refusal
  uint64_t failed = 0;    // other errors, or refused past give_up
  double p50_ms = 0, p95_ms = 0, max_ms = 0;
  // What a client saw of moves: the longest time an operation was refused,
  // from its first refusal to its acknowledgement (0 when none was).
  double lockout_max_ms = 0;
};

struct LoadReport {
  std::map<std::string, KindFigures> kinds;
  KindFigures total;
  double seconds = 0;
  double achieved_rate = 0;          // acknowledged operations per second
  std::vector<std::string> errors;   // the first few failures, with the mailbox
  nlohmann::json ToJson() const;
};

// What the generator knows of a mailbox from the acknowledgements.
struct MailboxModel {
  std::map<uint64_t, uint32_t> items;  // item id -> folder
  std::map<uint64_t, std::pair<uint32_t, uint32_t>> flags;  // item id -> flags, keywords it set
  std::map<uint32_t, FolderInfo> folders;
  uint64_t deliveries = 0;
};

class ClientLoad {
 public:
  ClientLoad(Organization& org, LoadOptions options);
  ~ClientLoad();
  // Reads each mailbox as it is now (its folders and item ids) from the
  // store homeMDB names.
  Status Prepare();
  // Runs for the duration (or until *stop). Thread-safe against moves.
  LoadReport Run(const std::atomic<bool>* stop = nullptr);
  const std::map<Guid, MailboxModel>& models() const { return models_; }

 private:
  struct Worker;
  Result<StoreHandle*> HomeOf(const Guid& mailbox);

  Organization& org_;
  LoadOptions options_;
  std::mutex stores_mu_;
  std::map<std::string, std::string> store_by_dn_;  // GUARDED_BY(stores_mu_): store DN -> name
  std::FILE* journal_ = nullptr;
  std::mutex journal_mu_;
  void Journal(const std::string& line);
  std::map<Guid, UserRecord> users_;
  std::map<Guid, MailboxModel> models_;
};

}  // namespace mbx::engine
