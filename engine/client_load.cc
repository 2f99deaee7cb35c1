#include "engine/client_load.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include "datagen/mailbox_gen.h"
#include "engine/move_report.h"
#include "store/item_codec.h"

namespace mbx::engine {

namespace {

using Clock = std::chrono::steady_clock;

const char* const kKinds[] = {"deliver", "flag", "move", "delete", "folder"};

uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

Result<LoadMix> LoadMix::Parse(std::string_view text) {
  LoadMix m;
  m.weights.clear();
  int total = 0;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view part = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const size_t colon = part.find(':');
    if (colon == std::string_view::npos) {
      return Status::InvalidArgument("--mix: '" + std::string(part) + "' is not KIND:WEIGHT");
    }
    const std::string kind(part.substr(0, colon));
    if (std::find(std::begin(kKinds), std::end(kKinds), kind) == std::end(kKinds)) {
      return Status::InvalidArgument("--mix: unknown kind '" + kind + "' (deliver, flag, move, delete, folder)");
    }
    const std::string w(part.substr(colon + 1));
    if (w.empty() || w.size() > 6 || w.find_first_not_of("0123456789") != std::string::npos) {
      return Status::InvalidArgument("--mix: the weight of '" + kind + "' is not a number from 0 to 999999");
    }
    if (m.weights.count(kind)) return Status::InvalidArgument("--mix: '" + kind + "' is given twice");
    m.weights[kind] = std::stoi(w);
    total += m.weights[kind];
  }
  if (total == 0) return Status::InvalidArgument("--mix: the weights add up to 0");
  return m;
}

std::string LoadMix::ToString() const {
  std::string s;
  for (const char* k : kKinds) {
    auto it = weights.find(k);
    if (it == weights.end()) continue;
    if (!s.empty()) s += ",";
    s += std::string(k) + ":" + std::to_string(it->second);
  }
  return s;
}

nlohmann::json LoadReport::ToJson() const {
  auto fig = [](const KindFigures& f) {
    return nlohmann::json{{"done", f.done},       {"refused", f.refused}, {"retried", f.retried},
                          {"failed", f.failed},   {"p50_ms", f.p50_ms},   {"p95_ms", f.p95_ms},
                          {"max_ms", f.max_ms},   {"lockout_max_ms", f.lockout_max_ms}};
  };
  nlohmann::json k = nlohmann::json::object();
  for (const auto& [name, f] : kinds) k[name] = fig(f);
  return {{"seconds", seconds}, {"achieved_rate", achieved_rate}, {"total", fig(total)}, {"kinds", k},
          {"errors", errors}};
}

ClientLoad::ClientLoad(Organization& org, LoadOptions options) : org_(org), options_(std::move(options)) {}

ClientLoad::~ClientLoad() {
  if (journal_ != nullptr) std::fclose(journal_);
}

void ClientLoad::Journal(const std::string& line) {
  if (journal_ == nullptr) return;
  std::lock_guard<std::mutex> l(journal_mu_);
  std::fputs(line.c_str(), journal_);
  std::fputc('\n', journal_);
  std::fflush(journal_);  // in the kernel's hands: survives the process
}

Result<StoreHandle*> ClientLoad::HomeOf(const Guid& mailbox) {
  MBX_ASSIGN_OR_RETURN(UserRecord u, org_.directory().GetUserByMailbox(mailbox));
  std::string name;
  {
    // Store DNs change only when stores are registered: the list is read
    // again only for a DN it does not hold.
    std::lock_guard<std::mutex> l(stores_mu_);
    if (!store_by_dn_.count(u.home_mdb)) {
      std::vector<StoreRecord> stores;
      MBX_RETURN_IF_ERROR(org_.ListStores(&stores));
      store_by_dn_.clear();
      for (const auto& s : stores) store_by_dn_[s.dn] = s.name;
    }
    auto it = store_by_dn_.find(u.home_mdb);
    if (it == store_by_dn_.end()) {
      return Status::NotFound("homeMDB of " + u.name + " names no registered store (" + u.home_mdb + ")");
    }
    name = it->second;
  }
  return org_.GetHandle(name);
}

Status ClientLoad::Prepare() {
  if (options_.mailboxes.empty()) return Status::InvalidArgument("no mailboxes to put load on");
  if (!(options_.rate > 0)) return Status::InvalidArgument("the rate must be more than 0 operations per second");
  if (!options_.journal.empty() && journal_ == nullptr) {
    const int fd = ::open(options_.journal.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return Status::IOError("cannot create the journal " + options_.journal + ": " + std::strerror(errno));
    journal_ = ::fdopen(fd, "w");
    if (journal_ == nullptr) {
      ::close(fd);
      return Status::IOError("cannot open the journal " + options_.journal);
    }
  }
  for (const Guid& g : options_.mailboxes) {
    if (models_.count(g)) return Status::InvalidArgument("mailbox " + g.ToString() + " is named twice");
    MBX_ASSIGN_OR_RETURN(UserRecord u, org_.directory().GetUserByMailbox(g));
    MBX_ASSIGN_OR_RETURN(StoreHandle * h, HomeOf(g));
    auto stream = h->ReadMailbox(g);
    if (!stream.ok()) return stream.status().WithContext("reading mailbox of " + u.name);
    MailboxModel m;
    for (const auto& f : (*stream)->folders()) m.folders[f.id] = f;
    ItemChunk c;
    for (;;) {
      MBX_RETURN_IF_ERROR((*stream)->Next(1u << 20, &c));
      if (c.items.empty()) break;
      for (const auto& r : c.items) m.items[r.item_id] = r.folder_id;
    }
    users_[g] = u;
    models_[g] = std::move(m);
  }
  return Status::Ok();
}

struct ClientLoad::Worker {
  struct Box {
    Guid guid;
    size_t index = 0;
    MailboxModel* model = nullptr;
    datagen::MailboxSpec spec;
    std::mt19937_64 rng;
    StoreHandle* home = nullptr;
    uint32_t inbox = 0;
    uint64_t folders_made = 0;
    // The model's item ids, in no order, and where each is in it: an item
    // to flag, move or delete is picked in O(1), not by walking the map.
    std::vector<uint64_t> ids;
    std::unordered_map<uint64_t, size_t> slot;
    void Add(uint64_t id) {
      if (slot.emplace(id, ids.size()).second) ids.push_back(id);
    }
    void Remove(uint64_t id) {
      auto it = slot.find(id);
      if (it == slot.end()) return;
      const size_t i = it->second;
      slot.erase(it);
      if (i + 1 != ids.size()) {
        ids[i] = ids.back();
        slot[ids[i]] = i;
      }
      ids.pop_back();
    }
  };
  std::vector<Box> boxes;
  std::map<std::string, KindFigures> kinds;
  std::map<std::string, std::vector<double>> latency;
  std::vector<std::string> errors;
};

LoadReport ClientLoad::Run(const std::atomic<bool>* stop) {
  const size_t n = options_.mailboxes.size();
  const int threads = std::max(1, std::min<int>(options_.threads, int(n)));
  std::vector<Worker> workers(threads);
  for (size_t i = 0; i < n; ++i) {
    const Guid& g = options_.mailboxes[i];
    Worker::Box b;
    b.guid = g;
    b.index = i;
    b.model = &models_.at(g);
    const UserRecord& u = users_.at(g);
    b.spec.index = uint32_t(i);
    b.spec.guid = g;
    b.spec.user_name = u.name;
    b.spec.display_name = u.display_name;
    b.spec.smtp = u.smtp;
    b.spec.seed = Mix64(options_.seed ^ Mix64(i + 1));
    b.rng.seed(b.spec.seed);
    for (const auto& [id, f] : b.model->folders) {
      if (f.kind == FolderKind::kInbox) b.inbox = id;
    }
    if (b.inbox == 0) b.inbox = kRootFolderId;
    for (const auto& [id, folder] : b.model->items) b.Add(id);
    workers[i % threads].boxes.push_back(std::move(b));
  }
  const uint64_t total_ops = uint64_t(options_.rate * options_.duration_s);
  int weight_sum = 0;
  for (const auto& [k, w] : options_.mix.weights) weight_sum += w;
  const auto start = Clock::now();


  // Op k of the run is due at start + k / rate and belongs to mailbox k % n.
  auto work = [&](Worker& w) {
    for (uint64_t k = 0; k < total_ops; ++k) {
      const size_t mi = size_t(k % n);
      if (mi % size_t(threads) != size_t(&w - workers.data())) continue;
      if (stop != nullptr && stop->load()) break;
      Worker::Box& b = w.boxes[mi / size_t(threads)];
      const auto due = start + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(double(k) / options_.rate));
      std::this_thread::sleep_until(due);
      // Choose the operation from the model.
      int roll = std::uniform_int_distribution<int>(0, weight_sum - 1)(b.rng);
      std::string kind;
      for (const auto& [name, weight] : options_.mix.weights) {
        if (roll < weight) {
          kind = name;
          break;
        }
        roll -= weight;
      }
      MailboxModel& m = *b.model;
      if (kind != "deliver" && kind != "folder" && m.items.empty()) kind = "deliver";
      std::vector<uint32_t> targets;  // folders an item may move to
      for (const auto& [id, f] : m.folders) {
        if (id != kRootFolderId) targets.push_back(id);
      }
      if (kind == "move" && targets.size() < 2) kind = "flag";
      ClientOp op;
      std::string sub = kind;
      if (kind == "deliver") {
        op.kind = ClientOp::Kind::kDeliver;
        op.folder_id = b.inbox;
      } else if (kind == "flag" || kind == "move" || kind == "delete") {
        op.item_id = b.ids[std::uniform_int_distribution<size_t>(0, b.ids.size() - 1)(b.rng)];
        op.folder_id = m.items.at(op.item_id);
        if (kind == "flag") {
          op.kind = ClientOp::Kind::kSetFlags;
          op.flags = uint32_t(b.rng() & (kFlagRead | kFlagFlagged | kFlagAnswered));
          op.keywords = uint32_t(b.rng() & 0x7);
        } else if (kind == "move") {
          op.kind = ClientOp::Kind::kMoveItem;
          do {
            op.to_folder_id = targets[std::uniform_int_distribution<size_t>(0, targets.size() - 1)(b.rng)];
          } while (op.to_folder_id == op.folder_id);
        } else {
          op.kind = ClientOp::Kind::kDeleteItem;
        }
      } else {
        // Folder changes touch only folders this generator made (it knows
        // they are empty): delete one, rename one, or make one.
        std::vector<uint32_t> mine;
        for (const auto& [id, f] : m.folders) {
          if (f.kind == FolderKind::kUser && f.name.rfind("load-", 0) == 0) mine.push_back(id);
        }
        const int choice = int(b.rng() % 3);
        if (!mine.empty() && choice == 0) {
          op.kind = ClientOp::Kind::kDeleteFolder;
          op.folder_id = mine[b.rng() % mine.size()];
          // Not if an item was moved into it.
          for (const auto& [id, f] : m.items) {
            if (f == op.folder_id) op.kind = ClientOp::Kind::kRenameFolder;
          }
        } else if (!mine.empty() && choice == 1) {
          op.kind = ClientOp::Kind::kRenameFolder;
          op.folder_id = mine[b.rng() % mine.size()];
        } else {
          op.kind = ClientOp::Kind::kCreateFolder;
          op.folder_id = b.inbox;
        }
        if (op.kind == ClientOp::Kind::kRenameFolder) {
          op.name = "load-" + std::to_string(b.index) + "-" + std::to_string(++b.folders_made) + "r";
        } else if (op.kind == ClientOp::Kind::kCreateFolder) {
          op.name = "load-" + std::to_string(b.index) + "-" + std::to_string(++b.folders_made);
        }
      }
      // Run it, following homeMDB, retrying while the mailbox is locked.
      KindFigures& f = w.kinds[kind];
      const auto t0 = Clock::now();
      Clock::time_point first_refusal{};
      bool refused = false;
      Result<ClientOpResult> r = Status::Aborted("not run");
      for (;;) {
        if (b.home == nullptr) {
          auto h = HomeOf(b.guid);
          if (!h.ok()) {
            r = h.status();
            break;
          }
          b.home = *h;
        }
        if (op.kind == ClientOp::Kind::kDeliver && op.record.empty()) {
          Item item = datagen::GenerateDelivery(b.spec, m.deliveries + 1, options_.delivery_bytes);
          if (Status s = EncodeItem(item, CodecOptions{b.home->zstd_level()}, &op.record); !s.ok()) {
            r = s;
            break;
          }
        }
        if (journal_ != nullptr) {
          Journal("P " + b.guid.ToString() + " " + std::string(ClientOpKindName(op.kind)) + " " +
                  std::to_string(op.folder_id) + " " + std::to_string(op.item_id) + " " +
                  std::to_string(op.to_folder_id) + " " + std::to_string(op.flags) + " " +
                  std::to_string(op.keywords) + " " + (op.name.empty() ? "-" : op.name));
        }
        r = b.home->ApplyClientOp(b.guid, op);
        if (r.ok()) {
          if (journal_ != nullptr) {
            Journal("A " + b.guid.ToString() + " " + std::to_string(r->id) + " " + std::to_string(r->change_number));
          }
          break;
        }
        const Status& s = r.status();
        if (s.IsNotFound()) {
          // Moved since: the directory names another store now.
          auto h = HomeOf(b.guid);
          if (h.ok() && *h != b.home) {
            b.home = *h;
            continue;
          }
          break;
        }
        if (s.IsBusy()) {
          // Locked by a move: pause, ask the directory again, retry.
          ++f.refused;
          if (!refused) first_refusal = Clock::now();
          refused = true;
          if (Clock::now() - t0 > options_.give_up) break;
          if (stop != nullptr && stop->load()) break;
          std::this_thread::sleep_for(options_.pause);
          b.home = nullptr;
          continue;
        }
        break;
      }
      if (!r.ok()) {
        ++f.failed;
        if (w.errors.size() < 10) {
          w.errors.push_back(users_.at(b.guid).name + ": " + std::string(ClientOpKindName(op.kind)) + ": " +
                             r.status().message());
        }
        continue;
      }
      ++f.done;
      if (refused) {
        ++f.retried;
        f.lockout_max_ms = std::max(
            f.lockout_max_ms, std::chrono::duration<double, std::milli>(Clock::now() - first_refusal).count());
      }
      w.latency[kind].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      switch (op.kind) {
        case ClientOp::Kind::kDeliver:
          m.items[r->id] = op.folder_id;
          b.Add(r->id);
          ++m.deliveries;
          break;
        case ClientOp::Kind::kSetFlags: m.flags[op.item_id] = {op.flags, op.keywords}; break;
        case ClientOp::Kind::kMoveItem: m.items[op.item_id] = op.to_folder_id; break;
        case ClientOp::Kind::kDeleteItem:
          m.items.erase(op.item_id);
          b.Remove(op.item_id);
          m.flags.erase(op.item_id);
          break;
        case ClientOp::Kind::kCreateFolder:
          m.folders[uint32_t(r->id)] = FolderInfo{uint32_t(r->id), op.folder_id, FolderKind::kUser, op.name};
          break;
        case ClientOp::Kind::kRenameFolder: m.folders[op.folder_id].name = op.name; break;
        case ClientOp::Kind::kDeleteFolder: m.folders.erase(op.folder_id); break;
      }
    }
  };
  std::vector<std::thread> ts;
  for (auto& w : workers) ts.emplace_back(work, std::ref(w));
  for (auto& t : ts) t.join();

  LoadReport rep;
  rep.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::map<std::string, std::vector<double>> lat;
  std::vector<double> all;
  for (auto& w : workers) {
    for (auto& [k, f] : w.kinds) {
      KindFigures& t = rep.kinds[k];
      t.done += f.done;
      t.refused += f.refused;
      t.retried += f.retried;
      t.failed += f.failed;
      t.lockout_max_ms = std::max(t.lockout_max_ms, f.lockout_max_ms);
    }
    for (auto& [k, v] : w.latency) {
      lat[k].insert(lat[k].end(), v.begin(), v.end());
      all.insert(all.end(), v.begin(), v.end());
    }
    for (auto& e : w.errors) {
      if (rep.errors.size() < 10) rep.errors.push_back(e);
    }
  }
  for (auto& [k, t] : rep.kinds) {
    auto& v = lat[k];
    t.p50_ms = Percentile(v, 0.5);
    t.p95_ms = Percentile(v, 0.95);
    t.max_ms = Percentile(v, 1.0);
    rep.total.done += t.done;
    rep.total.refused += t.refused;
    rep.total.retried += t.retried;
    rep.total.failed += t.failed;
    rep.total.lockout_max_ms = std::max(rep.total.lockout_max_ms, t.lockout_max_ms);
  }
  rep.total.p50_ms = Percentile(all, 0.5);
  rep.total.p95_ms = Percentile(all, 0.95);
  rep.total.max_ms = Percentile(all, 1.0);
  rep.achieved_rate = rep.seconds > 0 ? double(rep.total.done) / rep.seconds : 0;
  return rep;
}

}  // namespace mbx::engine
