// Tests of the deterministic mailbox generator: reproducibility, presets,
// plan and content distributions, folder structure, edge cases; and of the
// MIME renderer (datagen/mime_render.h) that turns every generated item into
// its RFC 5322 message.
#include <gtest/gtest.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "datagen/mailbox_gen.h"
#include "datagen/mime_render.h"
#include "datagen/random.h"
#include "datagen/text_gen.h"
#include "store/item_codec.h"
#include "tests/mime_reader.h"

namespace mbx::datagen {
namespace {

using namespace mbx::testing;  // NOLINT: the MIME reader

struct ItemDigest {
  uint32_t folder_id = 0;
  uint64_t item_id = 0;
  uint64_t hash = 0;  // ContentHash: every property and the message bytes
  std::string message_id;
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
    digest.items.push_back({folder_id, item_id, ContentHash(item), item.message_id});
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

  for (size_t thread_count : {2, 3, 4}) {
    std::vector<MailboxDigest> threaded(plan.size());
    std::vector<std::thread> threads;
    for (size_t t = 0; t < thread_count; ++t) {
      threads.emplace_back([&, t] {
        // Thread t takes mailboxes i with i % thread_count == t, from the back.
        for (size_t i = plan.size(); i-- > 0;) {
          if (i % thread_count != t) continue;
          CollectSink sink;
          if (GenerateMailbox(plan[i], &sink).ok()) threaded[i] = std::move(sink.digest);
        }
      });
    }
    for (auto& th : threads) th.join();
    for (size_t i = 0; i < plan.size(); ++i) {
      EXPECT_EQ(sequential[i], threaded[i]) << "mailbox " << i << ", " << thread_count << " threads";
    }
  }

  for (size_t i = 0; i < plan.size(); ++i) {
    EXPECT_EQ(sequential[i], reversed[i]) << "mailbox " << i;
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

  // Message-IDs differ across datasets too.
  std::set<std::string> ids1;
  for (const auto& d : GenerateAll(p1))
    for (const auto& it : d.items) ids1.insert(it.message_id);
  size_t shared_ids = 0;
  for (const auto& d : GenerateAll(p2))
    for (const auto& it : d.items) shared_ids += ids1.count(it.message_id);
  EXPECT_EQ(shared_ids, 0u);
}

// ---------------------------------------------------------------------------
// Generation: structure and distributions

struct DatasetStats {
  size_t mailboxes = 0;
  size_t items = 0;
  size_t notes = 0;
  size_t notes_with_attachments = 0;
  size_t inbox_sent_notes = 0;  // IPM.Note items in Inbox and Sent Items
  size_t inbox_sent_notes_with_attachments = 0;
  size_t attachments = 0;
  size_t binary_attachments = 0;
  size_t text_attachments = 0;
  size_t nested_user_folders = 0;  // user folders whose parent is a user folder
  size_t empty_user_folders = 0;
  size_t user_folders = 0;
  uint64_t logical = 0;
  uint64_t max_item = 0;
  double max_item_over_budget = 0;  // largest LogicalSize() / budget, budgets >= 64 KiB
  std::map<std::string, size_t> classes;
  std::set<std::string> message_ids;
  std::string text_messages;             // concatenated messages without attachments
  uint64_t text_compressed = 0;          // the same compressed one by one
  uint64_t message_bytes = 0;            // every message
  uint64_t message_compressed = 0;       // every message compressed one by one
  uint64_t binary_bytes = 0;             // decoded binary attachments
  uint64_t binary_compressed = 0;
  uint64_t text_attachment_bytes = 0;    // decoded text attachments
  uint64_t text_attachment_compressed = 0;
};

// zstd level 3, as the store compresses messages.
size_t Zstd3(ZSTD_CCtx* cctx, std::string_view data, std::string* buf) {
  buf->resize(ZSTD_compressBound(data.size()));
  const size_t c = ZSTD_compressCCtx(cctx, buf->data(), buf->size(), data.data(), data.size(), 3);
  EXPECT_FALSE(ZSTD_isError(c));
  return c;
}

// Leading bytes every binary attachment of a content type starts with.
std::string_view MagicOf(std::string_view content_type) {
  if (content_type == "image/jpeg") return "\xFF\xD8\xFF";
  if (content_type == "image/png") return "\x89PNG\r\n\x1A\n";
  if (content_type == "application/pdf") return "%PDF-";
  return "PK\x03\x04";  // docx, xlsx, zip
}

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
      EXPECT_GE(item.created, lo);
      EXPECT_LE(item.created, hi);
      EXPECT_GE(item.modified, item.created);
      EXPECT_LE(item.modified, hi);
      EXPECT_EQ(item.keywords, 0u) << "generated items have no Maildir keywords";
      EXPECT_EQ(item.flags & ~uint32_t(kFlagRead | kFlagFlagged | kFlagAnswered | kFlagDraft), 0u);
      EXPECT_TRUE(item.source_name.empty()) << "generated items were not imported";
      EXPECT_TRUE(item.message_id.ends_with("@mbxmove.example.com")) << item.message_id;
      EXPECT_TRUE(s.message_ids.insert(item.message_id).second)
          << "Message-ID " << item.message_id << " used twice";

      // An item is at most one budget's worth of bytes (what was still
      // wanted, within the generator's bounds): attachments are budgeted at
      // their base64 size; a few KiB of slack covers the MIME header, which
      // repeats the properties.
      const uint64_t size = item.LogicalSize();
      const uint64_t budget = std::clamp<uint64_t>(
          spec.target_bytes > logical ? spec.target_bytes - logical : 0, 512, 8ull << 20);
      if (budget >= 64 * 1024) {
        s.max_item_over_budget = std::max(s.max_item_over_budget, double(size) / double(budget));
      }
      EXPECT_LE(size, budget + 4096) << "item " << i + 1 << " of budget " << budget;
      logical += size;
      s.max_item = std::max(s.max_item, size);
      EXPECT_LE(size, 8ull << 20);

      // The message: RFC 5322, its header carrying the item's properties.
      const Rendered r = CheckRendered(item);
      ASSERT_EQ(r.problem, "") << "item " << i + 1 << " of mailbox " << spec.index << ":\n"
                               << item.mime.substr(0, 2000);
      EXPECT_FALSE(r.text.empty());
      EXPECT_EQ(r.text.back(), '\n');
      if (item.message_class == message_class::kNote) {
        ++s.notes;
        EXPECT_NE(item.sender.find('@'), std::string::npos) << item.sender;
        EXPECT_FALSE(item.recipients.empty());
        for (const auto& rcpt : item.recipients) EXPECT_NE(rcpt.find('@'), std::string::npos) << rcpt;
        if (kind == FolderKind::kDrafts) {
          EXPECT_TRUE(item.flags & kFlagDraft);
        }
        if (r.multipart) ++s.notes_with_attachments;
        if (kind == FolderKind::kInbox || kind == FolderKind::kSentItems) {
          ++s.inbox_sent_notes;
          if (r.multipart) ++s.inbox_sent_notes_with_attachments;
        }
        EXPECT_LE(r.attachments.size(), 3u);
        for (const auto& a : r.attachments) {
          ++s.attachments;
          const size_t dot = a.name.rfind('.');
          ASSERT_NE(dot, std::string::npos) << a.name;
          const std::string_view ext = std::string_view(a.name).substr(dot + 1);
          EXPECT_NE(a.content_type.find('/'), std::string::npos) << a.content_type;
          // Decoded sizes: at least the generator's minimum, at most one item.
          EXPECT_GE(a.data.size(), 256u) << a.name;
          EXPECT_LE(a.data.size(), 8u << 20) << a.name;
          if (a.content_type.starts_with("text/")) {
            ++s.text_attachments;
            EXPECT_TRUE(ext == "txt" || ext == "log" || ext == "csv") << a.name;
            EXPECT_EQ(a.content_type == "text/csv", ext == "csv") << a.name;
            EXPECT_EQ(a.data.find('\0'), std::string::npos) << a.name << " is not text";
            s.text_attachment_bytes += a.data.size();
            s.text_attachment_compressed += Zstd3(cctx, a.data, buf);
          } else {
            ++s.binary_attachments;
            EXPECT_TRUE(a.data.starts_with(MagicOf(a.content_type)))
                << a.name << " (" << a.content_type << ") does not start like one";
            s.binary_bytes += a.data.size();
            s.binary_compressed += Zstd3(cctx, a.data, buf);
          }
        }
      } else {
        EXPECT_FALSE(r.multipart) << item.message_class << " items have no attachments";
      }
      const size_t c = Zstd3(cctx, item.mime, buf);
      s.message_bytes += item.mime.size();
      s.message_compressed += c;
      if (!r.multipart) {
        s.text_messages += item.mime;
        s.text_compressed += c;
      }
    }
    EXPECT_EQ(logical, d.logical_bytes);
    s.logical += logical;
    s.items += items.size();
    // Close to the mailbox's target: at most one item over, and the total
    // within 10% + 64 KiB of it.
    EXPECT_GE(logical, spec.target_bytes);
    EXPECT_LE(logical, spec.target_bytes + spec.target_bytes / 10 + (64u << 10));
    if (!items.empty()) {
      EXPECT_LT(logical - items.back().second.LogicalSize(), spec.target_bytes);
    }
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
  const double inbox_sent =
      double(stats_->inbox_sent_notes_with_attachments) / double(stats_->inbox_sent_notes);
  std::cout << "IPM.Note items with attachments (multipart/mixed): " << fraction * 100
            << "%, in Inbox and Sent Items: " << inbox_sent * 100 << "% of "
            << stats_->inbox_sent_notes << "; attachments: " << stats_->attachments << " ("
            << stats_->text_attachments << " text, " << stats_->binary_attachments << " binary)\n";
  EXPECT_GE(fraction, 0.08);
  EXPECT_LE(fraction, 0.25);
  ASSERT_GT(stats_->inbox_sent_notes, 300u);
  EXPECT_GE(inbox_sent, 0.10);
  EXPECT_LE(inbox_sent, 0.20);
  EXPECT_GT(stats_->text_attachments, 0u);
  EXPECT_GT(stats_->binary_attachments, 0u);
  EXPECT_GT(stats_->binary_attachments, stats_->text_attachments) << "images and documents lead";
}

TEST_F(DatagenDataset, MessageIdsAreUnique) {
  EXPECT_EQ(stats_->message_ids.size(), stats_->items);
}

TEST_F(DatagenDataset, MessagesCompressLikeMail) {
  // Messages without attachments are text and headers: they compress like
  // text, much better together (repeated names, headers, phrases) than one
  // by one as the store compresses them.
  const std::string& text = stats_->text_messages;
  ASSERT_GT(text.size(), 1u << 20);
  std::string out(ZSTD_compressBound(text.size()), '\0');
  const size_t c = ZSTD_compress(out.data(), out.size(), text.data(), text.size(), 3);
  ASSERT_FALSE(ZSTD_isError(c));
  const double together = double(text.size()) / double(c);
  const double one_by_one = double(text.size()) / double(stats_->text_compressed);
  // With attachments: binary ones are incompressible (random bytes behind a
  // file signature), base64 gives back at most its 4/3, text ones compress.
  const double all = double(stats_->message_bytes) / double(stats_->message_compressed);
  const double binary = double(stats_->binary_bytes) / double(stats_->binary_compressed);
  const double text_attachments =
      double(stats_->text_attachment_bytes) / double(stats_->text_attachment_compressed);
  std::cout << "zstd-3 ratios: text-only messages together " << together << ", one by one "
            << one_by_one << "; every message one by one " << all << "; attachments: binary "
            << binary << ", text " << text_attachments << "\n";
  EXPECT_GE(together, 3.0);
  EXPECT_LE(together, 5.0);
  EXPECT_GE(one_by_one, 1.6);
  EXPECT_LE(one_by_one, 2.6);
  EXPECT_GE(all, 1.2);
  EXPECT_LE(all, 1.8);
  EXPECT_LE(binary, 1.02);
  EXPECT_GE(text_attachments, 2.0);
}

TEST_F(DatagenDataset, ItemsStayNearTheirBudget) {
  // Attachments are budgeted at their base64 size in the message, so even
  // the large items (where attachments dominate) stay within their budget.
  std::cout << "largest item (budget >= 64 KiB) over its budget: x"
            << stats_->max_item_over_budget << "\n";
  EXPECT_GT(stats_->max_item_over_budget, 0.5);
  EXPECT_LE(stats_->max_item_over_budget, 1.02);
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

// ---------------------------------------------------------------------------
// MIME rendering

Item RenderItem(std::string_view cls) {
  Item it;
  it.message_class = std::string(cls);
  it.received = Timestamp(std::chrono::seconds(1641204005));  // Mon, 3 Jan 2022 10:00:05
  it.created = it.modified = it.received;
  it.subject = "Quarterly budget review";
  it.sender = "Ada Lovelace <ada.lovelace@example.com>";
  it.recipients = {"Bob <bob@example.com>", "carol@example.org"};
  it.message_id = "42.00000000000000ff@mbxmove.example.com";
  return it;
}

// The reader the dataset checks rely on refuses what is not a message.
TEST(MimeReader, RefusesMalformedMessages) {
  Item it = RenderItem(message_class::kNote);
  RenderMime(it, "body\n", {{"a.bin", "application/octet-stream", std::string(300, 'a')}}, 1,
             &it.mime);
  ASSERT_EQ(CheckRendered(it).problem, "");
  const std::string good = it.mime;
  auto problem = [&](std::string mime) {
    it.mime = std::move(mime);
    return CheckRendered(it).problem;
  };
  auto replaced = [&](std::string_view from, std::string_view to) {
    std::string m = good;
    const size_t at = m.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return at == std::string::npos ? m : m.replace(at, from.size(), to);
  };
  EXPECT_NE(problem(good.substr(0, good.find("\n\n"))), "") << "no blank line";
  EXPECT_NE(problem(" folded\n" + good), "") << "continuation first";
  EXPECT_NE(problem("Bad Name: x\n" + good), "") << "space in a field name";
  EXPECT_NE(problem(std::string(999, 'x') + ": y\n" + good), "") << "999-octet line";
  EXPECT_NE(problem(replaced("Mon, 3 Jan", "Tue, 3 Jan")), "") << "wrong weekday";
  EXPECT_NE(problem(replaced("10:00:05", "10:00:06")), "") << "not the received time";
  EXPECT_NE(problem(replaced("MIME-Version: 1.0\n", "")), "") << "no MIME-Version";
  EXPECT_NE(problem(replaced("Subject:", "Subject: Re:")), "") << "other subject";
  EXPECT_NE(problem(replaced("Date:", "Subject: twice\nDate:")), "") << "two subjects";
  EXPECT_NE(problem(replaced("--\n", "\n")), "") << "no closing delimiter";
  EXPECT_NE(problem(replaced("YWFh\n", "YWF\n")), "") << "base64 line not a multiple of 4";
  EXPECT_NE(problem(replaced("base64", "quoted-printable")), "") << "not base64";
  it.message_class = std::string(message_class::kTask);
  EXPECT_NE(problem(good), "") << "X-MS-Message-Class missing";
}

std::string Base64(std::string_view data, std::string prefix = "") {
  AppendBase64Lines(data, &prefix);
  return prefix;
}

TEST(MimeRender, Base64Rfc4648Vectors) {
  EXPECT_EQ(Base64(""), "");
  EXPECT_EQ(Base64("f"), "Zg==\n");
  EXPECT_EQ(Base64("fo"), "Zm8=\n");
  EXPECT_EQ(Base64("foo"), "Zm9v\n");
  EXPECT_EQ(Base64("foob"), "Zm9vYg==\n");
  EXPECT_EQ(Base64("fooba"), "Zm9vYmE=\n");
  EXPECT_EQ(Base64("foobar"), "Zm9vYmFy\n");
  EXPECT_EQ(Base64("foobar", "prefix:"), "prefix:Zm9vYmFy\n") << "appends";
  EXPECT_EQ(Base64(std::string_view("\0\xff\xfe", 3)), "AP/+\n");
}

TEST(MimeRender, Base64LinesOf76Characters) {
  // 57 bytes make exactly one full line.
  const std::string b57 = Base64(std::string(57, 'a'));
  EXPECT_EQ(b57.size(), 77u);
  EXPECT_EQ(b57.find('\n'), 76u);
  const std::string b58 = Base64(std::string(58, 'a'));
  EXPECT_EQ(b58, b57 + "YQ==\n");
  EXPECT_EQ(Base64(std::string(171, 'a')), b57 + b57 + b57);

  // Every byte value, every length near a line and a group boundary.
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(char(i));
  for (int rep = 0; rep < 3; ++rep) all += all;
  Rng rng(5);
  for (size_t n : {size_t(1), size_t(2), size_t(3), size_t(56), size_t(57), size_t(58),
                   size_t(113), size_t(114), size_t(115), size_t(1000), all.size()}) {
    const std::string data = n == all.size() ? all : all.substr(rng.Uniform(all.size() - n), n);
    const std::string b = Base64(data);
    EXPECT_EQ(b.size(), (n + 2) / 3 * 4 + (n + 56) / 57) << n;
    size_t start = 0;
    while (start < b.size()) {
      const size_t nl = b.find('\n', start);
      ASSERT_NE(nl, std::string::npos);
      if (nl + 1 < b.size()) {
        EXPECT_EQ(nl - start, 76u) << "every line but the last is full, n = " << n;
      } else {
        EXPECT_LE(nl - start, 76u);
      }
      start = nl + 1;
    }
    EXPECT_EQ(DecodeBase64Lines(b), data) << n;
  }
}

TEST(MimeRender, TextMessageHeadersAndBody) {
  Item it = RenderItem(message_class::kNote);
  const std::string body = "Hi Bob,\n\nSee you on Monday.\n";
  RenderMime(it, body, {}, 7, &it.mime);
  EXPECT_EQ(it.mime,
            "Date: Mon, 3 Jan 2022 10:00:05 +0000\n"
            "From: Ada Lovelace <ada.lovelace@example.com>\n"
            "To: Bob <bob@example.com>,\n carol@example.org\n"
            "Subject: Quarterly budget review\n"
            "Message-ID: <42.00000000000000ff@mbxmove.example.com>\n"
            "MIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=utf-8\n"
            "Content-Transfer-Encoding: 8bit\n"
            "\n" +
                body);
  const Rendered r = CheckRendered(it);
  EXPECT_EQ(r.problem, "");
  EXPECT_FALSE(r.multipart);
  EXPECT_EQ(r.text, body);

  // Replaces what *out held; the same arguments give the same bytes.
  std::string again = "old contents";
  RenderMime(it, body, {}, 7, &again);
  EXPECT_EQ(again, it.mime);
}

TEST(MimeRender, MessageClassHeaderOnlyForNonNotes) {
  for (std::string_view cls : {message_class::kNote, message_class::kAppointment,
                               message_class::kContact, message_class::kTask,
                               message_class::kStickyNote, message_class::kJournal,
                               std::string_view("IPM.Note.Custom")}) {
    Item it = RenderItem(cls);
    RenderMime(it, "text\n", {}, 1, &it.mime);
    const Message m = ParseMessage(it.mime);
    ASSERT_TRUE(m.ok()) << m.problem;
    if (cls == message_class::kNote) {
      EXPECT_EQ(it.mime.find("X-MS-Message-Class"), std::string::npos);
    } else {
      EXPECT_EQ(m.Field("X-MS-Message-Class"), std::string(cls)) << cls;
    }
    EXPECT_EQ(CheckRendered(it).problem, "") << cls;
  }
}

TEST(MimeRender, OptionalHeadersAreLeftOut) {
  Item it = RenderItem(message_class::kStickyNote);
  it.recipients.clear();
  it.message_id.clear();
  RenderMime(it, "note\n", {}, 1, &it.mime);
  const Message m = ParseMessage(it.mime);
  ASSERT_TRUE(m.ok()) << m.problem;
  EXPECT_FALSE(m.Field("To").has_value());
  EXPECT_EQ(it.mime.find("Message-ID"), std::string::npos);
  EXPECT_EQ(m.Field("From"), it.sender);
  EXPECT_EQ(m.body, "note\n");
}

TEST(MimeRender, ManyRecipientsFoldTheHeader) {
  Item it = RenderItem(message_class::kAppointment);
  it.recipients.clear();
  for (int i = 0; i < 500; ++i) {
    it.recipients.push_back("Attendee Number" + std::to_string(i) + " <attendee.number" +
                            std::to_string(i) + "@conference.example.com>");
  }
  RenderMime(it, "Agenda\n", {}, 3, &it.mime);
  const size_t header_end = it.mime.find("\n\n");
  ASSERT_NE(header_end, std::string::npos);
  ASSERT_GT(header_end, 500u * 60);
  EXPECT_LE(LongestLine(std::string_view(it.mime).substr(0, header_end)), 998u);
  EXPECT_EQ(CheckRendered(it).problem, "") << "To unfolds to the recipients";
}

TEST(MimeRender, LongBodyLinesAreBroken) {
  // RFC 5322 and 8bit: at most 998 octets a line. Long lines are broken at a
  // space (which the line break replaces), or at the limit if they have none.
  Rng rng(9);
  std::string prose;
  while (prose.size() < 5000) {
    prose += "word" + std::to_string(rng.Uniform(1000));
    prose += ' ';
  }
  prose += "end\nshort line\n";
  const std::string solid(2500, 'x');
  for (bool multipart : {false, true}) {
    std::vector<Attachment> attachments;
    if (multipart) attachments.push_back({"a.txt", "text/plain", "attached\n"});
    Item it = RenderItem(message_class::kNote);
    RenderMime(it, prose, attachments, 11, &it.mime);
    Rendered r = CheckRendered(it);
    ASSERT_EQ(r.problem, "");
    EXPECT_EQ(r.multipart, multipart);
    EXPECT_LE(LongestLine(r.text), 998u);
    EXPECT_GT(LongestLine(r.text), 900u) << "broken near the limit, not before";
    std::string joined = r.text;
    std::replace(joined.begin(), joined.end() - 12, '\n', ' ');  // up to "\nshort line\n"
    EXPECT_EQ(joined, prose);

    RenderMime(it, solid, attachments, 11, &it.mime);
    r = CheckRendered(it);
    ASSERT_EQ(r.problem, "");
    const std::string broken = solid.substr(0, 998) + "\n" + solid.substr(998, 998) + "\n" +
                               solid.substr(1996) + (multipart ? "\n" : "");
    EXPECT_TRUE(r.text == broken) << "lines of " << LongestLine(r.text) << " octets";
  }
}

TEST(MimeRender, MultipartWithBase64Attachments) {
  Item it = RenderItem(message_class::kNote);
  std::string binary = "%PDF-1.7\n";
  Rng rng(3);
  while (binary.size() < 10000) binary.push_back(char(rng.Next()));
  const std::vector<Attachment> attachments = {
      {"report.pdf", "application/pdf", binary},
      {"notes.txt", "text/plain", "line one\nline two\n"},
      {"empty.dat", "application/octet-stream", ""},
  };
  const std::string body = "Please see the attached files.";  // no final line break
  RenderMime(it, body, attachments, 0xabcdef, &it.mime);
  const Message m = ParseMessage(it.mime);
  ASSERT_TRUE(m.ok()) << m.problem;
  const std::string boundary = BoundaryOf(m.Field("Content-Type").value_or(""));
  EXPECT_EQ(boundary, "=_mbx_0000000000abcdef");
  EXPECT_EQ(m.Field("Content-Transfer-Encoding"), std::nullopt) << "only on the parts";
  std::string problem;
  const std::vector<Message> parts = SplitMultipart(m.body, boundary, &problem);
  ASSERT_EQ(problem, "");
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_EQ(parts[0].body, body + "\n");
  for (size_t i = 0; i < attachments.size(); ++i) {
    const Message& p = parts[i + 1];
    EXPECT_EQ(p.Field("Content-Type"),
              attachments[i].content_type + "; name=\"" + attachments[i].name + "\"");
    EXPECT_EQ(p.Field("Content-Disposition"),
              "attachment; filename=\"" + attachments[i].name + "\"");
    EXPECT_EQ(p.Field("Content-Transfer-Encoding"), "base64");
    if (attachments[i].data.empty()) {
      EXPECT_EQ(p.body, "");
    } else {
      EXPECT_EQ(DecodeBase64Lines(p.body), attachments[i].data) << attachments[i].name;
    }
  }
  const Rendered r = CheckRendered(it);
  ASSERT_EQ(r.problem, "");
  ASSERT_EQ(r.attachments.size(), 3u);
  for (size_t i = 0; i < attachments.size(); ++i) {
    EXPECT_EQ(r.attachments[i].name, attachments[i].name);
    EXPECT_EQ(r.attachments[i].content_type, attachments[i].content_type);
    EXPECT_EQ(r.attachments[i].data, attachments[i].data);
  }

  // Another seed, another boundary; nothing else changes.
  std::string other;
  RenderMime(it, body, attachments, 0xabcdee, &other);
  EXPECT_NE(other, it.mime);
  std::string same = other;
  size_t at = 0;
  while ((at = same.find("0000000000abcdee", at)) != std::string::npos) {
    same.replace(at, 16, "0000000000abcdef");
  }
  EXPECT_EQ(same, it.mime);
}

}  // namespace
}  // namespace mbx::datagen
