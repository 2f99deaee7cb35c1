// Tests of the deterministic mailbox generator: reproducibility, presets,
// plan and content distributions, folder structure, edge cases.
#include <gtest/gtest.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "datagen/mailbox_gen.h"
#include "datagen/random.h"
#include "datagen/text_gen.h"
#include "store/item_codec.h"

namespace mbx::datagen {
namespace {

struct ItemDigest {
  uint32_t folder_id = 0;
  uint64_t item_id = 0;
  uint64_t hash = 0;
  bool operator==(const ItemDigest&) const = default;
};

struct MailboxDigest {
  std::vector<FolderInfo> folders;
  std::vector<ItemDigest> items;
  uint64_t logical_bytes = 0;
  bool operator==(const MailboxDigest&) const = default;
};

// Records folders and item hashes; optionally keeps the items themselves.
class CollectSink : public FolderSink {
 public:
  explicit CollectSink(std::vector<std::pair<uint32_t, Item>>* keep = nullptr) : keep_(keep) {}
  Status OnFolder(const FolderInfo& folder) override {
    digest.folders.push_back(folder);
    return Status::Ok();
  }
  Status OnItem(uint32_t folder_id, uint64_t item_id, Item&& item) override {
    digest.items.push_back({folder_id, item_id, ContentHash(item)});
    digest.logical_bytes += item.LogicalSize();
    if (keep_ != nullptr) keep_->emplace_back(folder_id, std::move(item));
    return Status::Ok();
  }
  MailboxDigest digest;

 private:
  std::vector<std::pair<uint32_t, Item>>* keep_;
};

MailboxDigest Generate(const MailboxSpec& spec) {
  CollectSink sink;
  const Status st = GenerateMailbox(spec, &sink);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return sink.digest;
}

std::vector<MailboxDigest> GenerateAll(const std::vector<MailboxSpec>& plan) {
  std::vector<MailboxDigest> out;
  for (const MailboxSpec& spec : plan) out.push_back(Generate(spec));
  return out;
}

GenOptions TinyOptions(uint64_t seed = 1) {
  auto preset = FindPreset("tiny");
  EXPECT_TRUE(preset.ok());
  GenOptions o;
  o.seed = seed;
  o.mailboxes = preset->mailboxes;
  o.total_bytes = preset->total_bytes;
  return o;
}

bool IsDefaultKind(FolderKind k) { return k != FolderKind::kRoot && k != FolderKind::kUser; }

std::string_view ExpectedClass(FolderKind k) {
  switch (k) {
    case FolderKind::kCalendar: return message_class::kAppointment;
    case FolderKind::kContacts: return message_class::kContact;
    case FolderKind::kTasks: return message_class::kTask;
    case FolderKind::kNotes: return message_class::kStickyNote;
    case FolderKind::kJournal: return message_class::kJournal;
    default: return message_class::kNote;
  }
}

// ---------------------------------------------------------------------------
// Presets

TEST(DatagenPresets, FindKnownPresets) {
  uint64_t previous = 0;
  for (std::string_view name : {"tiny", "small", "medium", "large"}) {
    auto p = FindPreset(name);
    ASSERT_TRUE(p.ok()) << name << ": " << p.status().ToString();
    EXPECT_EQ(p->name, name);
    EXPECT_GT(p->mailboxes, 0u);
    EXPECT_GT(p->total_bytes, previous) << "presets grow";
    EXPECT_FALSE(p->description.empty());
    previous = p->total_bytes;
  }
  EXPECT_EQ(Presets().size(), 4u);
  auto tiny = FindPreset("tiny");
  EXPECT_GE(tiny->mailboxes, 8u);
  EXPECT_LE(tiny->mailboxes, 16u);
  EXPECT_LE(tiny->total_bytes, 16ull << 20);
  auto small = FindPreset("small");
  EXPECT_EQ(small->mailboxes, 100u);
  EXPECT_NEAR(double(small->total_bytes), 200e6, 20e6);
  auto medium = FindPreset("medium");
  EXPECT_NEAR(double(medium->total_bytes), 2e9, 0.2e9);
  auto large = FindPreset("large");
  EXPECT_NEAR(double(large->total_bytes), 20e9, 2e9);
}

TEST(DatagenPresets, UnknownPresetIsInvalidArgument) {
  for (std::string_view name : {"huge", "", "Tiny ", "smal"}) {
    auto p = FindPreset(name);
    ASSERT_FALSE(p.ok()) << name;
    EXPECT_EQ(p.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(p.status().message().find("tiny"), std::string::npos) << "lists the known presets";
  }
}

// ---------------------------------------------------------------------------
// Plans

TEST(DatagenPlan, DeterministicAndUnique) {
  GenOptions o;
  o.seed = 99;
  o.mailboxes = 300;
  o.total_bytes = 1ull << 30;
  const auto a = PlanMailboxes(o);
  const auto b = PlanMailboxes(o);
  ASSERT_EQ(a.size(), 300u);
  ASSERT_EQ(b.size(), 300u);
  std::set<std::string> users, smtps, guids;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].index, i);
    EXPECT_EQ(a[i].guid, b[i].guid);
    EXPECT_EQ(a[i].user_name, b[i].user_name);
    EXPECT_EQ(a[i].display_name, b[i].display_name);
    EXPECT_EQ(a[i].smtp, b[i].smtp);
    EXPECT_EQ(a[i].target_bytes, b[i].target_bytes);
    EXPECT_EQ(a[i].seed, b[i].seed);
    users.insert(a[i].user_name);
    smtps.insert(a[i].smtp);
    guids.insert(a[i].guid.ToString());
    EXPECT_EQ(a[i].guid.bytes[6] >> 4, 4) << "RFC 4122 version 4";
    EXPECT_EQ(a[i].guid.bytes[8] >> 6, 2) << "RFC 4122 variant";
    EXPECT_NE(a[i].display_name.find(' '), std::string::npos) << a[i].display_name;
    EXPECT_NE(a[i].smtp.find("@example.com"), std::string::npos) << a[i].smtp;
  }
  EXPECT_EQ(users.size(), a.size());
  EXPECT_EQ(smtps.size(), a.size());
  EXPECT_EQ(guids.size(), a.size());
  EXPECT_EQ(a[7].user_name, "user0007");
  EXPECT_EQ(a[7].smtp.substr(a[7].smtp.find('@') - 1), "7@example.com");
}

TEST(DatagenPlan, SizesAreSkewedAndSumToTotal) {
  GenOptions o;
  o.seed = 5;
  o.mailboxes = 400;
  o.total_bytes = 4ull << 30;
  const auto plan = PlanMailboxes(o);
  ASSERT_EQ(plan.size(), 400u);
  std::array<uint64_t, 400> sizes{};
  uint64_t total = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    sizes[i] = plan[i].target_bytes;
    total += sizes[i];
    EXPECT_GE(sizes[i], 16u << 10);
  }
  std::sort(sizes.begin(), sizes.end());
  const double median = double(sizes[200]);
  const double mean = double(total) / 400.0;
  EXPECT_GT(double(sizes[399]), 5 * median);
  EXPECT_LT(median, mean);
  EXPECT_NEAR(double(total), double(o.total_bytes), 0.2 * double(o.total_bytes));
}

TEST(DatagenPlan, EdgeCases) {
  GenOptions o;
  o.mailboxes = 0;
  EXPECT_TRUE(PlanMailboxes(o).empty());

  // No bytes asked for: minimal mailboxes that still generate.
  o.mailboxes = 5;
  o.total_bytes = 0;
  auto plan = PlanMailboxes(o);
  ASSERT_EQ(plan.size(), 5u);
  for (const auto& m : plan) {
    EXPECT_GT(m.target_bytes, 0u);
    EXPECT_LE(m.target_bytes, 64u << 10);
    const MailboxDigest d = Generate(m);
    EXPECT_EQ(d.folders.size() >= 13, true);
    EXPECT_FALSE(d.items.empty());
  }

  // Absurd totals must not overflow or crash (nothing is generated here).
  o.mailboxes = 3;
  o.total_bytes = std::numeric_limits<uint64_t>::max();
  plan = PlanMailboxes(o);
  ASSERT_EQ(plan.size(), 3u);
  for (const auto& m : plan) EXPECT_GT(m.target_bytes, 16u << 10);

  o.mailboxes = 1;
  o.total_bytes = 1 << 20;
  plan = PlanMailboxes(o);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].target_bytes, 1u << 20);
}

// ---------------------------------------------------------------------------
// Generation: determinism

TEST(DatagenGenerate, SameSeedSameContent) {
  const auto plan = PlanMailboxes(TinyOptions());
  ASSERT_FALSE(plan.empty());
  const auto first = GenerateAll(plan);
  const auto second = GenerateAll(PlanMailboxes(TinyOptions()));
  ASSERT_EQ(first.size(), second.size());
  for (size_t i = 0; i < first.size(); ++i) {
    EXPECT_FALSE(first[i].items.empty());
    EXPECT_EQ(first[i], second[i]) << "mailbox " << i;
  }

  // Full items compare equal too, not only their hashes.
  std::vector<std::pair<uint32_t, Item>> a, b;
  CollectSink sa(&a), sb(&b);
  ASSERT_TRUE(GenerateMailbox(plan[3], &sa).ok());
  ASSERT_TRUE(GenerateMailbox(plan[3], &sb).ok());
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_TRUE(a[i].second == b[i].second) << "item " << i + 1;
  }
}

TEST(DatagenGenerate, OrderAndThreadsDoNotMatter) {
  const auto plan = PlanMailboxes(TinyOptions(77));
  const auto sequential = GenerateAll(plan);

  std::vector<MailboxDigest> reversed(plan.size());
  for (size_t i = plan.size(); i-- > 0;) reversed[i] = Generate(plan[i]);

  std::vector<MailboxDigest> threaded(plan.size());
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      // Thread 0 takes odd mailboxes from the back, thread 1 even ones.
      for (size_t i = plan.size(); i-- > 0;) {
        if (i % 2 != t) continue;
        CollectSink sink;
        if (GenerateMailbox(plan[i], &sink).ok()) threaded[i] = std::move(sink.digest);
      }
    });
  }
  for (auto& th : threads) th.join();

  for (size_t i = 0; i < plan.size(); ++i) {
    EXPECT_EQ(sequential[i], reversed[i]) << "mailbox " << i;
    EXPECT_EQ(sequential[i], threaded[i]) << "mailbox " << i;
  }

  // A mailbox generated alone, from a copy of its spec, is the same too.
  MailboxSpec copy = plan[plan.size() / 2];
  EXPECT_EQ(Generate(copy), sequential[plan.size() / 2]);
}

TEST(DatagenGenerate, DifferentSeedsDifferentContent) {
  const auto p1 = PlanMailboxes(TinyOptions(1));
  const auto p2 = PlanMailboxes(TinyOptions(2));
  ASSERT_EQ(p1.size(), p2.size());
  size_t same_guid = 0, same_name = 0;
  for (size_t i = 0; i < p1.size(); ++i) {
    same_guid += p1[i].guid == p2[i].guid;
    same_name += p1[i].display_name == p2[i].display_name;
    EXPECT_NE(p1[i].seed, p2[i].seed);
  }
  EXPECT_EQ(same_guid, 0u);
  EXPECT_LT(same_name, p1.size() / 2);

  std::set<uint64_t> h1;
  for (const auto& d : GenerateAll(p1))
    for (const auto& it : d.items) h1.insert(it.hash);
  size_t shared = 0, total = 0;
  for (const auto& d : GenerateAll(p2)) {
    for (const auto& it : d.items) {
      shared += h1.count(it.hash);
      ++total;
    }
  }
  EXPECT_GT(total, 0u);
  EXPECT_EQ(shared, 0u);
}

// ---------------------------------------------------------------------------
// Generation: structure and distributions

struct DatasetStats {
  size_t mailboxes = 0;
  size_t items = 0;
  size_t notes = 0;
  size_t notes_with_attachments = 0;
  size_t attachments = 0;
  size_t binary_attachments = 0;
  size_t text_attachments = 0;
  size_t nested_user_folders = 0;  // user folders whose parent is a user folder
  size_t empty_user_folders = 0;
  size_t user_folders = 0;
  uint64_t logical = 0;
  uint64_t max_item = 0;
  std::map<std::string, size_t> classes;
  std::string bodies;              // concatenated bodies
  uint64_t per_item_compressed = 0;  // sum of bodies compressed one by one
};

class DatagenDataset : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    GenOptions o;
    o.seed = 2024;
    o.mailboxes = 24;
    o.total_bytes = 48ull << 20;
    options_ = o;
    plan_ = PlanMailboxes(o);
    stats_ = new DatasetStats();
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    std::string buf;
    for (const auto& spec : plan_) {
      std::vector<std::pair<uint32_t, Item>> items;
      CollectSink sink(&items);
      const Status st = GenerateMailbox(spec, &sink);
      ASSERT_TRUE(st.ok()) << st.ToString();
      CheckMailbox(spec, sink.digest, items, cctx, &buf);
    }
    ZSTD_freeCCtx(cctx);
  }
  static void TearDownTestSuite() {
    delete stats_;
    stats_ = nullptr;
  }

  static void CheckMailbox(const MailboxSpec& spec, const MailboxDigest& d,
                           const std::vector<std::pair<uint32_t, Item>>& items, ZSTD_CCtx* cctx,
                           std::string* buf) {
    DatasetStats& s = *stats_;
    ++s.mailboxes;
    // Folders: root first, ids sequential from 1, parents before children.
    ASSERT_GE(d.folders.size(), 13u);
    const FolderInfo& root = d.folders[0];
    EXPECT_EQ(root.id, kRootFolderId);
    EXPECT_EQ(root.parent_id, 0u);
    EXPECT_EQ(root.kind, FolderKind::kRoot);
    EXPECT_EQ(root.name, "Top of Information Store");
    const std::pair<FolderKind, std::string_view> defaults[] = {
        {FolderKind::kInbox, "Inbox"},       {FolderKind::kSentItems, "Sent Items"},
        {FolderKind::kDrafts, "Drafts"},     {FolderKind::kDeletedItems, "Deleted Items"},
        {FolderKind::kCalendar, "Calendar"}, {FolderKind::kContacts, "Contacts"},
        {FolderKind::kTasks, "Tasks"},       {FolderKind::kNotes, "Notes"},
        {FolderKind::kJournal, "Journal"}};
    for (size_t i = 0; i < 9; ++i) {
      const FolderInfo& f = d.folders[i + 1];
      EXPECT_EQ(f.kind, defaults[i].first) << f.name;
      EXPECT_EQ(f.name, defaults[i].second);
      EXPECT_EQ(f.parent_id, kRootFolderId);
    }
    std::map<uint32_t, const FolderInfo*> by_id;
    std::map<uint32_t, int> depth;
    std::set<std::pair<uint32_t, std::string>> sibling_names;
    size_t user = 0;
    for (size_t i = 0; i < d.folders.size(); ++i) {
      const FolderInfo& f = d.folders[i];
      EXPECT_EQ(f.id, i + 1);
      EXPECT_FALSE(f.name.empty());
      EXPECT_TRUE(sibling_names.emplace(f.parent_id, f.name).second) << "duplicate " << f.name;
      if (i > 0) {
        ASSERT_TRUE(by_id.count(f.parent_id)) << "parent " << f.parent_id << " of " << f.id;
        depth[f.id] = depth[f.parent_id] + 1;
        EXPECT_LE(depth[f.id], 4);
      } else {
        depth[f.id] = 0;
      }
      if (i >= 10) {
        EXPECT_EQ(f.kind, FolderKind::kUser);
        ++user;
        if (by_id[f.parent_id]->kind == FolderKind::kUser) ++s.nested_user_folders;
      } else if (i > 0) {
        EXPECT_TRUE(IsDefaultKind(f.kind));
      }
      by_id[f.id] = &f;
    }
    EXPECT_GE(user, 3u);
    EXPECT_LE(user, 30u);
    s.user_folders += user;

    // Items: ids 1..n, classes match folders, sizes add up.
    ASSERT_EQ(items.size(), d.items.size());
    std::map<uint32_t, size_t> per_folder;
    uint64_t logical = 0;
    const auto lo = Timestamp(std::chrono::seconds(1704067200ll - 5ll * 366 * 86400));
    const auto hi = Timestamp(std::chrono::seconds(1704067200ll));  // the fixed epoch
    for (size_t i = 0; i < items.size(); ++i) {
      EXPECT_EQ(d.items[i].item_id, i + 1);
      const uint32_t fid = items[i].first;
      const Item& item = items[i].second;
      ASSERT_TRUE(by_id.count(fid)) << fid;
      const FolderKind kind = by_id[fid]->kind;
      EXPECT_NE(kind, FolderKind::kRoot) << "no items in the root";
      EXPECT_EQ(item.message_class, ExpectedClass(kind)) << by_id[fid]->name;
      ++per_folder[fid];
      ++s.classes[item.message_class];
      EXPECT_FALSE(item.subject.empty());
      EXPECT_FALSE(item.body.empty());
      EXPECT_GE(item.created, lo);
      EXPECT_LE(item.created, hi);
      EXPECT_GE(item.modified, item.created);
      EXPECT_LE(item.modified, hi);
      const uint64_t size = item.LogicalSize();
      logical += size;
      s.max_item = std::max(s.max_item, size);
      EXPECT_LE(size, 8ull << 20);
      if (item.message_class == message_class::kNote) {
        ++s.notes;
        EXPECT_NE(item.sender.find('@'), std::string::npos) << item.sender;
        EXPECT_FALSE(item.recipients.empty());
        for (const auto& r : item.recipients) EXPECT_NE(r.find('@'), std::string::npos) << r;
        if (kind == FolderKind::kDrafts) {
          EXPECT_TRUE(item.flags & kFlagDraft);
        }
        if (!item.attachments.empty()) ++s.notes_with_attachments;
        EXPECT_LE(item.attachments.size(), 3u);
        for (const auto& a : item.attachments) {
          ++s.attachments;
          EXPECT_NE(a.name.find('.'), std::string::npos) << a.name;
          EXPECT_NE(a.content_type.find('/'), std::string::npos) << a.content_type;
          EXPECT_FALSE(a.data.empty());
          if (a.content_type.starts_with("text/")) ++s.text_attachments;
          else ++s.binary_attachments;
        }
      } else {
        EXPECT_TRUE(item.attachments.empty());
      }
      s.bodies += item.body;
      buf->resize(ZSTD_compressBound(item.body.size()));
      const size_t c = ZSTD_compressCCtx(cctx, buf->data(), buf->size(), item.body.data(),
                                         item.body.size(), 3);
      ASSERT_FALSE(ZSTD_isError(c));
      s.per_item_compressed += c;
    }
    EXPECT_EQ(logical, d.logical_bytes);
    s.logical += logical;
    s.items += items.size();
    // Close to the mailbox's target: at most one (trimmed) item over.
    EXPECT_GE(logical, spec.target_bytes);
    EXPECT_LE(logical, spec.target_bytes + 64 * 1024 + spec.target_bytes / 10);
    for (size_t i = 10; i < d.folders.size(); ++i)
      if (per_folder[d.folders[i].id] == 0) ++s.empty_user_folders;
    EXPECT_GT(per_folder[2], 0u) << "Inbox has mail";
  }

  static GenOptions options_;
  static std::vector<MailboxSpec> plan_;
  static DatasetStats* stats_;
};
GenOptions DatagenDataset::options_;
std::vector<MailboxSpec> DatagenDataset::plan_;
DatasetStats* DatagenDataset::stats_ = nullptr;

TEST_F(DatagenDataset, TotalNearTarget) {
  ASSERT_EQ(stats_->mailboxes, plan_.size());
  EXPECT_NEAR(double(stats_->logical), double(options_.total_bytes), 0.2 * double(options_.total_bytes));
  EXPECT_GT(stats_->items, 500u);
  std::cout << "items: " << stats_->items << ", logical bytes: " << stats_->logical
            << ", mean item: " << stats_->logical / std::max<size_t>(1, stats_->items)
            << ", largest item: " << stats_->max_item << "\n";
}

TEST_F(DatagenDataset, FolderShapes) {
  EXPECT_GT(stats_->nested_user_folders, 0u) << "user folders nested at depth >= 2";
  EXPECT_GT(stats_->empty_user_folders, 0u) << "some user folders left empty";
  EXPECT_LT(stats_->empty_user_folders, stats_->user_folders);
}

TEST_F(DatagenDataset, MessageClassMix) {
  auto& c = stats_->classes;
  const double notes = double(c[std::string(message_class::kNote)]);
  EXPECT_GT(notes, 0.6 * double(stats_->items));
  for (std::string_view cls : {message_class::kAppointment, message_class::kContact,
                               message_class::kTask, message_class::kStickyNote}) {
    EXPECT_GT(c[std::string(cls)], 0u) << cls;
  }
}

TEST_F(DatagenDataset, AttachmentFraction) {
  ASSERT_GT(stats_->notes, 300u);
  const double fraction = double(stats_->notes_with_attachments) / double(stats_->notes);
  std::cout << "IPM.Note items with attachments: " << fraction * 100 << "%, attachments: "
            << stats_->attachments << " (" << stats_->text_attachments << " text, "
            << stats_->binary_attachments << " binary)\n";
  EXPECT_GE(fraction, 0.08);
  EXPECT_LE(fraction, 0.25);
  EXPECT_GT(stats_->text_attachments, 0u);
  EXPECT_GT(stats_->binary_attachments, 0u);
}

TEST_F(DatagenDataset, BodiesCompressLikeText) {
  const std::string& bodies = stats_->bodies;
  ASSERT_GT(bodies.size(), 1u << 20);
  std::string out(ZSTD_compressBound(bodies.size()), '\0');
  const size_t c = ZSTD_compress(out.data(), out.size(), bodies.data(), bodies.size(), 3);
  ASSERT_FALSE(ZSTD_isError(c));
  const double ratio = double(bodies.size()) / double(c);
  const double per_item = double(bodies.size()) / double(stats_->per_item_compressed);
  std::cout << "zstd-3 ratio of bodies: concatenated " << ratio << ", one by one " << per_item << "\n";
  EXPECT_GE(ratio, 2.5);
  EXPECT_LE(ratio, 5.5);
  EXPECT_GE(per_item, 1.6);
  EXPECT_LE(per_item, 5.5);
}

// ---------------------------------------------------------------------------
// Sinks and odd specs

class FailingSink : public FolderSink {
 public:
  Status OnFolder(const FolderInfo&) override { return Status::Ok(); }
  Status OnItem(uint32_t, uint64_t item_id, Item&&) override {
    ++calls;
    if (item_id == 3) return Status::IOError("disk full");
    return Status::Ok();
  }
  int calls = 0;
};

TEST(DatagenGenerate, SinkErrorStopsGeneration) {
  const auto plan = PlanMailboxes(TinyOptions());
  FailingSink sink;
  const Status st = GenerateMailbox(plan[0], &sink);
  EXPECT_EQ(st.code(), Status::Code::kIOError);
  EXPECT_EQ(sink.calls, 3);
  EXPECT_EQ(GenerateMailbox(plan[0], nullptr).code(), Status::Code::kInvalidArgument);
}

TEST(DatagenGenerate, OddSpecsDoNotCrash) {
  MailboxSpec empty;  // no names, no bytes
  MailboxDigest d = Generate(empty);
  EXPECT_GE(d.folders.size(), 13u);
  EXPECT_TRUE(d.items.empty());

  MailboxSpec one;
  one.target_bytes = 1;
  d = Generate(one);
  EXPECT_EQ(d.items.size(), 1u);

  MailboxSpec odd;
  odd.display_name = "Cher";
  odd.target_bytes = 100 << 10;
  odd.seed = 12345;
  d = Generate(odd);
  EXPECT_FALSE(d.items.empty());
}

// ---------------------------------------------------------------------------
// Building blocks

TEST(DatagenRandom, DeterministicMathIsAccurate) {
  for (double x : {1e-300, 1e-9, 0.001, 0.3, 0.7071, 1.0, 1.5, 2.0, 10.0, 12345.678, 1e200}) {
    EXPECT_NEAR(DetLog(x), std::log(x), 4e-15 * std::max(1.0, std::fabs(std::log(x)))) << x;
  }
  for (double x : {-50.0, -3.3, -1.0, -1e-6, 0.0, 0.5, 1.0, 2.71, 10.0, 100.0, 600.0}) {
    EXPECT_NEAR(DetExp(x) / std::exp(x), 1.0, 1e-14) << x;
  }
  EXPECT_EQ(DetExp(-1000), 0.0);
  EXPECT_TRUE(std::isfinite(DetExp(1000)));
  EXPECT_TRUE(std::isinf(DetLog(0)));
}

TEST(DatagenRandom, StreamsAndDistributions) {
  Rng a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) {
    const uint64_t va = a.Next();
    EXPECT_EQ(va, b.Next());
    EXPECT_NE(va, c.Next());
  }
  EXPECT_NE(DeriveSeed(1, 2), DeriveSeed(2, 1));
  EXPECT_NE(DeriveSeed(1, 2, 3), DeriveSeed(1, 2, 4));

  Rng r(7);
  const int n = 200000;
  double sum = 0, sum2 = 0;
  for (int i = 0; i < n; ++i) {
    const double z = r.Normal();
    sum += z;
    sum2 += z * z;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.02);
  EXPECT_NEAR(sum2 / n, 1.0, 0.02);
  uint64_t hist[10] = {};
  for (int i = 0; i < n; ++i) ++hist[r.Uniform(10)];
  for (uint64_t h : hist) EXPECT_NEAR(double(h), n / 10.0, n / 100.0);
  EXPECT_EQ(r.Uniform(0), 0u);
  EXPECT_EQ(r.Range(5, 5), 5u);
  EXPECT_EQ(ClampToU64(-1.0, 3, 9), 3u);
  EXPECT_EQ(ClampToU64(1e30, 3, 9), 9u);
  EXPECT_EQ(ClampToU64(std::nan(""), 3, 9), 3u);
}

TEST(DatagenText, VocabularyAndZipf) {
  const Vocabulary& v = Vocabulary::Get();
  ASSERT_EQ(v.size(), Vocabulary::kTargetSize);
  std::set<std::string_view> words;
  for (uint32_t i = 0; i < v.size(); ++i) {
    const std::string_view w = v.Word(i);
    ASSERT_FALSE(w.empty());
    ASSERT_LE(w.size(), Vocabulary::kMaxWordLength);
    for (char ch : w) ASSERT_TRUE(ch >= 'a' && ch <= 'z') << w;
    words.insert(w);
  }
  EXPECT_EQ(words.size(), v.size()) << "words are unique";
  EXPECT_EQ(v.Word(0), "the");

  Rng r(3);
  std::vector<uint64_t> hist(v.size());
  const int n = 400000;
  for (int i = 0; i < n; ++i) ++hist[v.Sample(r.Next32())];
  for (uint32_t rank : {0u, 1u, 10u, 100u}) {
    const double expected = v.Probability(rank) * n;
    EXPECT_NEAR(double(hist[rank]), expected, 5 * std::sqrt(expected) + 1) << rank;
  }
  EXPECT_GT(hist[0], 10 * hist[100]);
  EXPECT_EQ(v.Sample(0), 0u);
  EXPECT_LT(v.Sample(0xffffffffu), v.size());
}

TEST(DatagenText, WriterProducesText) {
  std::string s = "prefix:";
  {
    TextWriter w(&s, 16);
    Rng r(1);
    w.Prose(r, 5000, "> ", 76);
    w.Put('|');
    w.Uint(0);
    w.Put('|');
    w.UintPadded(7, 3);
    w.Put('|');
    w.Decimal(1205);
    w.Put('|');
    w.IsoDate(Timestamp(std::chrono::seconds(1704067200)));
  }
  EXPECT_TRUE(s.starts_with("prefix:"));
  EXPECT_TRUE(s.ends_with("|0|007|12.05|2024-01-01")) << s.substr(s.size() - 40);
  EXPECT_GE(s.size(), 5000u);
  EXPECT_LT(s.size(), 5000u + 600u);
  // Wrapped lines: every line after the first starts with the prefix and
  // none is much longer than the wrap column.
  size_t start = 0, lines = 0;
  while (start < s.size()) {
    size_t nl = s.find('\n', start);
    if (nl == std::string::npos) nl = s.size();
    if (start > 0) {
      EXPECT_TRUE(s.compare(start, 2, "> ") == 0) << s.substr(start, 20);
    }
    if (nl < s.size()) {
      EXPECT_LE(nl - start, 76u + Vocabulary::kSlot + 4);
    }
    ++lines;
    start = nl + 1;
  }
  EXPECT_GT(lines, 50u);
}

}  // namespace
}  // namespace mbx::datagen
