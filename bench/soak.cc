#include "bench/soak.h"

#include "bench/sweep.h"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "datagen/populate.h"
#include "engine/move_engine.h"
#include "engine/org_check.h"
#include "store/checksum.h"
#include "store/item_codec.h"

namespace mbx::bench {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

Result<json> RunSoak(const SoakOptions& o) {
  MBX_RETURN_IF_ERROR(CheckReusable(o.out_dir));
  const std::string org_dir = o.out_dir + "/org";
  std::error_code ec;
  fs::remove_all(org_dir, ec);  // an earlier soak's organisation
  MBX_RETURN_IF_ERROR(CreateDirs(Env::Default(), o.out_dir).WithContext("creating " + o.out_dir));
  MBX_ASSIGN_OR_RETURN(auto org, Organization::OpenOrCreate(org_dir));
  StoreOptions so;
  so.log.mode = LogMode::kCircular;  // a long soak must not fill the disk with logs
  MBX_RETURN_IF_ERROR(org->CreateStore("A", "SERVER1", so));
  MBX_RETURN_IF_ERROR(org->CreateStore("B", "SERVER2", so));
  MBX_ASSIGN_OR_RETURN(datagen::Preset preset, datagen::FindPreset(o.preset));
  datagen::PopulateOptions po;
  po.gen.seed = o.seed;
  po.gen.mailboxes = preset.mailboxes;
  po.gen.total_bytes = preset.total_bytes;
  MBX_RETURN_IF_ERROR(datagen::Populate(*org, "A", po, nullptr).status());

  MBX_ASSIGN_OR_RETURN(engine::OrgSurvey start, engine::SurveyOrganization(*org));
  // Every third mailbox stays put and receives mail; the others travel.
  std::vector<std::string> movers;
  std::vector<std::pair<Guid, uint32_t>> stayers;  // mailbox, Inbox folder id
  {
    std::vector<UserRecord> users;
    MBX_RETURN_IF_ERROR(org->directory().ListUsers(&users));
    for (size_t i = 0; i < users.size(); ++i) {
      if (i % 3 == 2) {
        MBX_ASSIGN_OR_RETURN(Store * a, org->GetStore("A"));
        MBX_ASSIGN_OR_RETURN(StoreReader r, a->BeginRead());
        std::vector<FolderInfo> fs_;
        MBX_RETURN_IF_ERROR(r.ListFolders(users[i].mailbox, &fs_));
        uint32_t inbox = kRootFolderId;
        for (const auto& f : fs_) {
          if (f.kind == FolderKind::kInbox) inbox = f.id;
        }
        stayers.push_back({users[i].mailbox, inbox});
      } else {
        movers.push_back(users[i].name);
      }
    }
  }

  // Deliveries, on their own thread, into the stayers' store (A).
  std::atomic<bool> stop{false};
  std::mutex dmu;
  std::map<std::pair<Guid, uint32_t>, std::vector<uint64_t>> delivered;  // GUARDED_BY(dmu): content hashes
  std::atomic<uint64_t> deliveries{0}, delivery_failures{0};
  MBX_ASSIGN_OR_RETURN(Store * store_a, org->GetStore("A"));
  std::thread deliverer([&] {
    uint64_t n = 0;
    while (!stop.load() && !stayers.empty()) {
      const auto& [g, folder] = stayers[n % stayers.size()];
      Item it;
      it.message_class = "IPM.Note";
      it.subject = "soak delivery " + std::to_string(n);
      it.sender = "Soak <soak@example.com>";
      it.recipients = {"someone@example.com"};
      it.mime = std::string(2000 + (n % 7) * 300, char('a' + n % 26));
      it.created = it.modified = it.received = Timestamp(std::chrono::microseconds(1700000000000000LL + int64_t(n)));
      auto id = store_a->Deliver(g, folder, it);
      if (id.ok()) {
        std::lock_guard<std::mutex> l(dmu);
        delivered[{g, folder}].push_back(ContentHash(it));
        deliveries.fetch_add(1);
      } else {
        delivery_failures.fetch_add(1);
      }
      ++n;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });

  const auto t0 = Clock::now();
  const auto deadline = t0 + std::chrono::duration<double>(o.minutes * 60);
  uint64_t rounds = 0, moved = 0, failed = 0, bytes = 0, items = 0, retries = 0, dropped = 0;
  std::string to = "B";
  while (Clock::now() < deadline || rounds == 0) {
    engine::MoveRequest req;
    req.mailboxes = movers;
    req.options.target = to;
    req.options.concurrency = o.concurrency;
    req.options.retry.retries = 1;
    req.options.faults = {o.fault_rate, engine::FaultOptions::Kind::kTransient, o.seed + rounds};
    req.options.order = engine::MoveOptions::Order::kAsGiven;
    auto plan = engine::PlanMoves(*org, req);
    if (!plan.ok()) {
      stop = true;
      deliverer.join();
      return plan.status();
    }
    engine::MoveCounters counters;
    engine::MoveReport rep = engine::RunMoves(*org, *plan, req.options, &counters);
    moved += rep.Completed();
    failed += rep.Failed();
    bytes += rep.BytesCopied();
    items += rep.ItemsCopied();
    dropped += rep.ItemsDropped();
    for (const auto& m : rep.mailboxes) retries += m.retries;
    ++rounds;
    if (!o.quiet) {
      std::fprintf(stderr, "soak: round %llu to %s: %llu moved, %llu failed, %llu deliveries so far\n",
                   (unsigned long long)rounds, to.c_str(), (unsigned long long)rep.Completed(),
                   (unsigned long long)rep.Failed(), (unsigned long long)deliveries.load());
    }
    to = to == "B" ? "A" : "B";
  }
  stop = true;
  deliverer.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();

  // The checks: the move invariant, with each stayer's content grown by
  // exactly the items delivered to it.
  MBX_ASSIGN_OR_RETURN(engine::OrgSurvey end, engine::SurveyOrganization(*org));
  std::map<Guid, uint64_t> expected;
  for (const auto& [g, was] : start.mailboxes) {
    const engine::MailboxCopy* copy = was.active();
    if (!copy) continue;
    std::map<uint32_t, FolderDigest> want = copy->digest.by_folder;
    for (const auto& [key, hashes] : delivered) {
      if (key.first != g) continue;
      for (uint64_t h : hashes) {
        want[key.second].items += 1;
        want[key.second].item_hash_sum += MixItemHash(h);
      }
    }
    expected[g] = CombineFolderDigests(want);
  }
  json problems = json::array();
  for (const auto& p : engine::MoveInvariantViolations(start, end, expected)) problems.push_back(p);
  const uint64_t checked = start.mailboxes.size();
  return json{{"minutes", secs / 60},
              {"preset", o.preset},
              {"rounds", rounds},
              {"mailbox_moves", moved},
              {"failed_moves", failed},
              {"items_moved", items},
              {"bytes_moved", bytes},
              {"items_dropped", dropped},
              {"read_retries", retries},
              {"deliveries", deliveries.load()},
              {"deliveries_refused", delivery_failures.load()},
              {"mailboxes_checked", checked},
              {"problems", problems},
              {"passed", problems.empty() && failed == 0 && dropped == 0}};
}

}  // namespace mbx::bench
