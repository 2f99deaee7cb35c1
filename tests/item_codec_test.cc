// Tests of the item codec (store/item_codec.h, record version 2) and
// Item::LogicalSize().
//
// Besides round trips, these check that damaged records are reported as
// Status::Corruption: every single-byte change, every truncation, appended
// bytes, and records whose structure is wrong but whose checksum was
// recomputed (built by hand from the documented layout). A replacement
// operator new records the largest single allocation so the tests can assert
// that no damaged record makes a decoder allocate more than it should.

#include "store/item_codec.h"

#include <gtest/gtest.h>
#define XXH_INLINE_ALL
#include <xxhash.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <new>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/coding.h"
#include "store/item.h"
#include "tests/codec_test_util.h"

// ---------------------------------------------------------------------------
// Allocation tracking.

namespace {
std::atomic<bool> g_track_allocations{false};
std::atomic<size_t> g_largest_allocation{0};

void NoteAllocation(size_t n) {
  if (!g_track_allocations.load(std::memory_order_relaxed)) return;
  size_t cur = g_largest_allocation.load(std::memory_order_relaxed);
  while (n > cur && !g_largest_allocation.compare_exchange_weak(cur, n)) {
  }
}
}  // namespace

// The replacements are not inlined, so the compiler does not pair a visible
// malloc()/free() with operator delete/new (-Wmismatched-new-delete).
__attribute__((noinline)) void* operator new(std::size_t n) {
  NoteAllocation(n);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
__attribute__((noinline)) void operator delete(void* p) noexcept { std::free(p); }
__attribute__((noinline)) void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace mbx {
namespace {

using namespace mbx::testing;  // NOLINT: the codec test helpers
using std::chrono::microseconds;

// Records the largest single operator-new request while alive.
class AllocationWatch {
 public:
  AllocationWatch() {
    g_largest_allocation.store(0);
    g_track_allocations.store(true);
  }
  ~AllocationWatch() { g_track_allocations.store(false); }
  size_t largest() const { return g_largest_allocation.load(); }
};

constexpr size_t kMiB = size_t(1) << 20;


// ---------------------------------------------------------------------------
// Item::LogicalSize

TEST(ItemTest, LogicalSizeCountsEveryFieldPlus8BytesPerTimestampFlagsAndKeywords) {
  Item it;
  EXPECT_EQ(it.LogicalSize(), 40u);
  it.flags = std::numeric_limits<uint32_t>::max();
  it.keywords = std::numeric_limits<uint32_t>::max();
  it.created = it.modified = it.received = At(std::numeric_limits<int64_t>::max());
  EXPECT_EQ(it.LogicalSize(), 40u) << "fixed-size fields count 8 bytes whatever their value";
  it.message_class = "IPM.Note";                        // 8
  it.subject = "hello";                                 // 5
  it.sender = "a@b.c";                                  // 5
  it.recipients = {"x@y.z", "", "longer@example.com"};  // 5 + 0 + 18
  it.message_id = "id@x";                               // 4
  it.source_name = "1700.M1P2.host";                    // 14
  it.mime = std::string(1000, 'm');                     // 1000
  EXPECT_EQ(it.LogicalSize(), 40u + 8 + 5 + 5 + 23 + 4 + 14 + 1000);
}

// ---------------------------------------------------------------------------
// Round trips

TEST(ItemCodecRoundTripTest, EveryMessageClassAtEveryLevel) {
  uint64_t seed = 1;
  for (std::string_view cls : AllMessageClasses()) {
    for (int copy = 0; copy < 2; ++copy) {  // odd and even seeds: with and without a source name
      const Item item = SampleItem(cls, seed++);
      for (int level : {0, 1, 3, 19}) ExpectRoundTrip(item, level);
    }
  }
}

TEST(ItemCodecRoundTripTest, EmptyFields) {
  Item empty;  // everything empty or zero, even the message class
  Item empty_parts = SampleItem(message_class::kTask, 7);
  empty_parts.subject.clear();
  empty_parts.sender.clear();
  empty_parts.message_id.clear();
  empty_parts.source_name.clear();
  empty_parts.mime.clear();
  empty_parts.recipients = {"", "", ""};
  Item message_only;
  message_only.mime = "x";
  Item extremes = SampleItem(message_class::kJournal, 8);
  extremes.created = At(std::numeric_limits<int64_t>::min());
  extremes.modified = At(std::numeric_limits<int64_t>::max());
  extremes.received = At(-1);
  extremes.flags = std::numeric_limits<uint32_t>::max();
  extremes.keywords = std::numeric_limits<uint32_t>::max();
  for (int level : {0, 1, 3, 19}) {
    ExpectRoundTrip(empty, level);
    ExpectRoundTrip(empty_parts, level);
    ExpectRoundTrip(message_only, level);
    ExpectRoundTrip(extremes, level);
  }
}

TEST(ItemCodecRoundTripTest, ManyRecipients) {
  Item item = SampleItem(message_class::kNote, 11);
  item.recipients.clear();
  for (int i = 0; i < 20000; ++i) {
    item.recipients.push_back("user" + std::to_string(i) + "@dept" + std::to_string(i % 97) +
                              ".example.com");
  }
  for (int level : {0, 1, 3, 19}) ExpectRoundTrip(item, level);
}

TEST(ItemCodecRoundTripTest, HugeMessage) {
  Item item = SampleItem(message_class::kNote, 12);
  item.mime = MimeMessage(item, TextLike(20 * kMiB, 12));
  for (int level : {0, 1, 3}) {
    const std::string rec = ExpectRoundTrip(item, level);
    if (level == 0) {
      EXPECT_EQ(MessageCodec(rec), 0) << "level 0 stores raw";
      EXPECT_GT(rec.size(), item.mime.size());
    } else {
      EXPECT_EQ(MessageCodec(rec), 1) << "a text message is compressed";
      EXPECT_LT(rec.size(), item.mime.size() / 2);
    }
  }
}

// Messages the encoder must store raw at every level (zstd would not make
// them smaller) and messages it must compress at levels >= 1, with
// `large` or small versions of the sizable ones.
struct MessageCase {
  std::string name;
  std::string mime;
  uint8_t codec;  // at levels >= 1
};
std::vector<MessageCase> MessageMix(bool large) {
  const size_t k = large ? 1 : 0;
  const Item props = SampleItem(message_class::kNote, 13);
  return {
      {"random bytes", RandomBytes(k ? kMiB + 3 : 5000, 131), 0},
      {"text", TextLike(k ? 512 * 1024 : 8000, 132), 1},
      {"empty", "", 0},
      {"one byte", "1", 0},
      {"two bytes", "ab", 0},
      {"zeros", std::string(k ? 300000 : 3000, '\0'), 1},
      {"tiny random", RandomBytes(40, 133), 0},
      {"multipart, base64 of random bytes",
       MimeMessage(props, "see attached\n",
                   {{"random.bin", "application/octet-stream",
                     RandomBytes(k ? 256 * 1024 : 6000, 134)}}),
       1},
      {"multipart, base64 of text",
       MimeMessage(props, TextLike(k ? 4000 : 400, 135),
                   {{"minutes.txt", "text/plain", TextLike(k ? 300000 : 5000, 136)}}),
       1},
  };
}

TEST(ItemCodecRoundTripTest, IncompressibleAndCompressibleMessages) {
  for (bool large : {true, false}) {
    for (const MessageCase& c : MessageMix(large)) {
      Item item = SampleItem(message_class::kNote, 13);
      item.mime = c.mime;
      const std::vector<int> levels = large ? std::vector<int>{0, 1, 3} : std::vector<int>{19};
      for (int level : levels) {
        SCOPED_TRACE(c.name + (large ? ", large" : ", small") + ", level " + std::to_string(level));
        const std::string rec = ExpectRoundTrip(item, level);
        const uint8_t expected = level == 0 ? 0 : c.codec;
        EXPECT_EQ(MessageCodec(rec), expected);
        // Stored raw, the record is the message plus the properties and
        // framing; compressed, it is smaller than that.
        const size_t raw_record = Seal(HandFields(item), 0).size();
        if (expected == 0) {
          EXPECT_EQ(rec.size(), raw_record);
        } else {
          EXPECT_LT(rec.size(), raw_record);
        }
      }
    }
  }
  // base64 carries 6 bits a character: zstd takes back most of the 4/3.
  Item b64 = SampleItem(message_class::kNote, 13);
  b64.mime = MessageMix(true)[7].mime;
  std::string rec;
  ASSERT_TRUE(EncodeItem(b64, CodecOptions{3}, &rec).ok());
  EXPECT_LT(double(rec.size()), 0.85 * double(b64.mime.size()));
}

TEST(ItemCodecRoundTripTest, EncodeReplacesOutputContents) {
  const Item item = SmallItem();
  std::string rec = "previous contents";
  ASSERT_TRUE(EncodeItem(item, CodecOptions{3}, &rec).ok());
  std::string fresh;
  ASSERT_TRUE(EncodeItem(item, CodecOptions{3}, &fresh).ok());
  EXPECT_EQ(rec, fresh);
}

TEST(ItemCodecRoundTripTest, ConcurrentUseFromSeveralThreads) {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &failures] {
      std::string rec;
      for (int i = 0; i < 60; ++i) {
        const Item item =
            SampleItem(AllMessageClasses()[size_t(i) % AllMessageClasses().size()], t * 1000 + i);
        const int level = (i % 3) * 2;  // 0, 2, 4
        if (!EncodeItem(item, CodecOptions{level}, &rec).ok()) ++failures;
        Result<Item> d = DecodeItem(rec);
        if (!d.ok() || !(*d == item)) ++failures;
        Result<uint64_t> v = VerifyRecord(rec);
        if (!v.ok() || *v != ContentHash(item)) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

// ---------------------------------------------------------------------------
// Layout conformance

TEST(ItemCodecLayoutTest, EncodeWritesTheDocumentedLayout) {
  for (std::string_view cls : AllMessageClasses()) {
    for (uint64_t seed : {21, 22}) {
      const Item item = SampleItem(cls, seed);
      std::string rec;
      ASSERT_TRUE(EncodeItem(item, CodecOptions{0}, &rec).ok());
      EXPECT_EQ(rec, Seal(HandFields(item), ContentHash(item))) << cls << " at level 0";

      // At level 3, the message is a zstd frame as ZSTD_compress makes it,
      // unless that is not smaller than the message.
      const BlobFn zstd3 = [](std::string_view d) {
        if (d.size() > 1) {
          const std::string frame = ZstdFrame(d, 3);
          if (frame.size() < d.size()) return HandBlob(d.size(), 1, frame);
        }
        return RawBlob(d);
      };
      ASSERT_TRUE(EncodeItem(item, CodecOptions{3}, &rec).ok());
      EXPECT_EQ(rec, Seal(HandFields(item, zstd3), ContentHash(item))) << cls << " at level 3";
    }
  }
}

TEST(ItemCodecLayoutTest, HandBuiltRecordDecodes) {
  for (uint64_t seed : {22, 23}) {
    const Item item = SampleItem(message_class::kAppointment, seed);
    const std::string rec = Seal(HandFields(item), ContentHash(item));
    Result<Item> d = DecodeItem(rec);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_TRUE(*d == item);
  }
}

TEST(ItemCodecLayoutTest, SmallestRecordIsAnEmptyItem) {
  // kMinFieldBytes: an empty item's field section is 14 bytes, all zero.
  const std::string zeros(14, '\0');
  EXPECT_EQ(Seal(zeros, ContentHash(Item{})).size(), 18u + 14 + 8);
  std::string rec;
  ASSERT_TRUE(EncodeItem(Item{}, CodecOptions{3}, &rec).ok());
  EXPECT_EQ(rec, Seal(zeros, ContentHash(Item{})));
  Result<Item> d = DecodeItem(rec);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_TRUE(*d == Item{});
  // One byte fewer is too short for any record; one more is a trailing byte.
  const std::string shorter = Seal(zeros.substr(1), ContentHash(Item{}));
  EXPECT_EQ(CorruptionProblems(shorter), "");
  EXPECT_NE(DecodeItem(shorter).status().message().find("too short"), std::string::npos);
  EXPECT_EQ(CorruptionProblems(Seal(zeros + '\0', ContentHash(Item{}))), "");
}

TEST(ItemCodecLayoutTest, RejectsBadLevelAndOversizedMessages) {
  const Item item = SmallItem();
  std::string rec;
  EXPECT_EQ(EncodeItem(item, CodecOptions{-1}, &rec).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(EncodeItem(item, CodecOptions{ZSTD_maxCLevel() + 1}, &rec).code(),
            Status::Code::kInvalidArgument);

  Item big = SmallItem();
  big.mime.assign(kMaxBlobBytes + 1, 'x');
  for (int level : {0, 3}) {
    const Status s = EncodeItem(big, CodecOptions{level}, &rec);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << "level " << level;
    EXPECT_NE(s.message().find("message"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("limit"), std::string::npos) << s.message();
  }
  // Exactly at the limit is accepted (level 1 makes a small record of it),
  // and verifies without allocating it.
  big.mime.pop_back();
  ASSERT_TRUE(EncodeItem(big, CodecOptions{1}, &rec).ok());
  EXPECT_LT(rec.size(), kMiB);
  EXPECT_EQ(MessageCodec(rec), 1);
  big.mime.clear();
  big.mime.shrink_to_fit();
  AllocationWatch watch;
  Result<VerifiedRecord> v = VerifyRecordWithSize(rec);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->logical_bytes, big.LogicalSize() + kMaxBlobBytes);
  EXPECT_LT(watch.largest(), kMiB);
}

// ---------------------------------------------------------------------------
// Content hash

TEST(ContentHashTest, SameAcrossLevelsAndRecode) {
  for (std::string_view cls : AllMessageClasses()) {
    const Item item = SampleItem(cls, 31);
    const uint64_t hash = ContentHash(item);
    std::string rec;
    for (int level : {0, 1, 3, 19}) {
      ASSERT_TRUE(EncodeItem(item, CodecOptions{level}, &rec).ok());
      Result<uint64_t> v = VerifyRecord(rec);
      ASSERT_TRUE(v.ok()) << v.status().ToString();
      EXPECT_EQ(*v, hash) << "level " << level;
    }
    // Recode through several levels, in place (the record views the output).
    ASSERT_TRUE(EncodeItem(item, CodecOptions{3}, &rec).ok());
    for (int level : {0, 19, 1, 3}) {
      ASSERT_TRUE(RecodeItem(rec, CodecOptions{level}, &rec).ok()) << "level " << level;
      Result<uint64_t> v = VerifyRecord(rec);
      ASSERT_TRUE(v.ok()) << v.status().ToString();
      EXPECT_EQ(*v, hash);
      std::string direct;
      ASSERT_TRUE(EncodeItem(item, CodecOptions{level}, &direct).ok());
      EXPECT_EQ(rec, direct) << "recoded record differs from a direct encode";
    }
  }
}

TEST(ContentHashTest, RecodeRejectsCorruptInput) {
  std::string rec;
  ASSERT_TRUE(EncodeItem(SmallItem(), CodecOptions{3}, &rec).ok());
  rec[rec.size() / 2] ^= 1;
  std::string out = "untouched";
  EXPECT_TRUE(RecodeItem(rec, CodecOptions{1}, &out).IsCorruption());
}

TEST(ContentHashTest, ChangesWhenAnySingleFieldChanges) {
  const Item base = SampleItem(message_class::kNote, 42);
  ASSERT_FALSE(base.source_name.empty());
  ASSERT_NE(base.flags, base.keywords);
  const uint64_t base_hash = ContentHash(base);
  EXPECT_EQ(ContentHash(base), base_hash) << "deterministic";

  const std::vector<std::pair<const char*, std::function<void(Item&)>>> mutations = {
      {"message class", [](Item& i) { i.message_class = "IPM.Note.Signed"; }},
      {"created", [](Item& i) { i.created += microseconds(1); }},
      {"modified", [](Item& i) { i.modified -= microseconds(1); }},
      {"received", [](Item& i) { i.received += microseconds(1); }},
      {"created<->modified", [](Item& i) { std::swap(i.created, i.modified); }},
      {"flags", [](Item& i) { i.flags ^= kFlagDraft; }},
      {"flags recent", [](Item& i) { i.flags |= kFlagRecent; }},
      {"keywords", [](Item& i) { i.keywords ^= 1u << 25; }},
      {"keywords cleared", [](Item& i) { i.keywords = 0; }},
      {"flags<->keywords", [](Item& i) { std::swap(i.flags, i.keywords); }},
      {"subject", [](Item& i) { i.subject += "!"; }},
      {"subject empty", [](Item& i) { i.subject.clear(); }},
      {"sender", [](Item& i) { i.sender[0] = 'B'; }},
      {"recipient changed", [](Item& i) { i.recipients[1].back() = 'X'; }},
      {"recipient added", [](Item& i) { i.recipients.push_back("dave@example.com"); }},
      {"empty recipient added", [](Item& i) { i.recipients.push_back(""); }},
      {"recipient removed", [](Item& i) { i.recipients.pop_back(); }},
      {"recipients reordered", [](Item& i) { std::swap(i.recipients[0], i.recipients[1]); }},
      {"message id", [](Item& i) { i.message_id[0] ^= 1; }},
      {"message id empty", [](Item& i) { i.message_id.clear(); }},
      {"source name", [](Item& i) { i.source_name.back() ^= 1; }},
      {"source name empty", [](Item& i) { i.source_name.clear(); }},
      {"message id<->source name", [](Item& i) { std::swap(i.message_id, i.source_name); }},
      {"message one byte", [](Item& i) { i.mime[i.mime.size() / 2] ^= 0x20; }},
      {"message first byte", [](Item& i) { i.mime[0] ^= 1; }},
      {"message last byte", [](Item& i) { i.mime.back() ^= 1; }},
      {"message longer", [](Item& i) { i.mime.push_back(' '); }},
      {"message shorter", [](Item& i) { i.mime.pop_back(); }},
      {"message empty", [](Item& i) { i.mime.clear(); }},
  };
  std::set<uint64_t> hashes = {base_hash};
  for (const auto& [name, mutate] : mutations) {
    Item changed = base;
    mutate(changed);
    ASSERT_FALSE(changed == base) << name;
    const uint64_t h = ContentHash(changed);
    EXPECT_NE(h, base_hash) << name;
    EXPECT_TRUE(hashes.insert(h).second) << name << ": same hash as another mutation";
  }
}

TEST(ContentHashTest, LengthPrefixesKeepFieldBoundaries) {
  Item a;
  a.subject = "ab";
  a.sender = "c";
  Item b = a;
  b.subject = "a";
  b.sender = "bc";
  EXPECT_NE(ContentHash(a), ContentHash(b)) << "subject/sender boundary";

  a = Item{};
  b = Item{};
  a.recipients = {"ab", "c"};
  b.recipients = {"a", "bc"};
  EXPECT_NE(ContentHash(a), ContentHash(b)) << "recipient boundary";

  a = Item{};
  b = Item{};
  a.recipients = {"x"};
  a.message_id = "";
  b.recipients = {};
  b.message_id = "x";
  EXPECT_NE(ContentHash(a), ContentHash(b)) << "recipient vs message id";

  a = Item{};
  b = Item{};
  a.recipients = {"ab"};
  a.message_id = "c";
  b.recipients = {"a"};
  b.message_id = "bc";
  EXPECT_NE(ContentHash(a), ContentHash(b)) << "recipient/message id boundary";

  a = Item{};
  b = Item{};
  a.message_id = "ab";
  a.source_name = "c";
  b.message_id = "a";
  b.source_name = "bc";
  EXPECT_NE(ContentHash(a), ContentHash(b)) << "message id/source name boundary";

  a = Item{};
  b = Item{};
  a.message_id = "x";
  b.source_name = "x";
  EXPECT_NE(ContentHash(a), ContentHash(b)) << "message id vs source name";

  a = Item{};
  b = Item{};
  a.source_name = "ab";
  a.mime = "c";
  b.source_name = "a";
  b.mime = "bc";
  EXPECT_NE(ContentHash(a), ContentHash(b)) << "source name/message boundary";

  a = Item{};
  b = Item{};
  a.flags = 1;
  b.keywords = 1;
  EXPECT_NE(ContentHash(a), ContentHash(b)) << "flags vs keywords";

  // Pairs whose hashed bytes would be the same if the first field's length
  // were left out: "s\x01" then the next length (8 bytes of zeros), against
  // "s" then the next length 1 (\x01 and 7 zeros) and a zero byte.
  a = Item{};
  b = Item{};
  a.source_name = std::string("s\x01");
  b.source_name = "s";
  b.mime = std::string(1, '\0');
  EXPECT_NE(ContentHash(a), ContentHash(b)) << "source name length";
  a = Item{};
  b = Item{};
  a.message_id = std::string("s\x01");
  b.message_id = "s";
  b.source_name = std::string(1, '\0');
  EXPECT_NE(ContentHash(a), ContentHash(b)) << "message id length";
  a = Item{};
  b = Item{};
  a.recipients = {std::string("s\x01")};
  b.recipients = {"s"};
  b.message_id = std::string(1, '\0');
  EXPECT_NE(ContentHash(a), ContentHash(b)) << "recipient length";
}

// The content hash is stored in every record and compared across stores, so
// its definition is part of the format: XXH3-64 over every field in record
// order, strings and the message preceded by their length, the recipients by
// their count, and every integer as 8 bytes little-endian.
TEST(ContentHashTest, IsXxh3OfTheFieldsInRecordOrder) {
  for (const Item& item : {Item{}, SmallItem(), SampleItem(message_class::kContact, 71),
                           SampleItem(message_class::kNote, 72)}) {
    std::string h;
    auto str = [&h](std::string_view s) {
      PutFixed64(&h, s.size());
      h.append(s);
    };
    str(item.message_class);
    for (Timestamp t : {item.created, item.modified, item.received}) {
      PutFixed64(&h, uint64_t(t.time_since_epoch().count()));
    }
    PutFixed64(&h, item.flags);
    PutFixed64(&h, item.keywords);
    str(item.subject);
    str(item.sender);
    PutFixed64(&h, item.recipients.size());
    for (const std::string& r : item.recipients) str(r);
    str(item.message_id);
    str(item.source_name);
    str(item.mime);
    EXPECT_EQ(ContentHash(item), XXH3_64bits(h.data(), h.size())) << item.subject;
  }
}

// ---------------------------------------------------------------------------
// InspectRecord

TEST(InspectRecordTest, ReportsClassSubjectHashAndLogicalSize) {
  uint64_t seed = 51;
  for (std::string_view cls : AllMessageClasses()) {
    const Item item = SampleItem(cls, seed++);
    for (int level : {0, 3}) {
      std::string rec;
      ASSERT_TRUE(EncodeItem(item, CodecOptions{level}, &rec).ok());
      Result<RecordInfo> info = InspectRecord(rec);
      ASSERT_TRUE(info.ok()) << info.status().ToString();
      EXPECT_EQ(info->version, 2);
      EXPECT_EQ(info->message_class, cls);
      EXPECT_EQ(info->subject, item.subject);
      EXPECT_EQ(info->content_hash, ContentHash(item));
      EXPECT_EQ(info->logical_bytes, item.LogicalSize());
    }
  }
}

TEST(InspectRecordTest, DoesNotDecompress) {
  // A record whose compressed message decodes to other bytes, checksum fixed
  // up: Inspect (which does not decompress) accepts it, Decode and Verify
  // do not.
  const Item item = SmallItem();
  Item other = item;
  other.mime[10] ^= 1;
  const std::string frame = ZstdFrame(other.mime);
  ASSERT_LT(frame.size(), other.mime.size());
  const BlobFn blob = [&](std::string_view d) { return HandBlob(d.size(), 1, frame); };
  const std::string rec = Seal(HandFields(item, blob), ContentHash(item));
  EXPECT_TRUE(InspectRecord(rec).ok());
  EXPECT_EQ(CorruptionProblems(rec, /*inspect=*/false), "");
  EXPECT_NE(DecodeItem(rec).status().message().find("content hash mismatch"), std::string::npos);
}

// ---------------------------------------------------------------------------
// Corruption: damage the checksum catches

class CorruptionTest : public ::testing::TestWithParam<int> {
 protected:
  std::string SmallRecord() {
    std::string rec;
    EXPECT_TRUE(EncodeItem(SmallItem(), CodecOptions{GetParam()}, &rec).ok());
    EXPECT_GT(rec.size(), 150u);
    EXPECT_LT(rec.size(), 600u);
    return rec;
  }
};

INSTANTIATE_TEST_SUITE_P(Levels, CorruptionTest, ::testing::Values(0, 3),
                         [](const ::testing::TestParamInfo<int>& p) { return "Level" + std::to_string(p.param); });

TEST_P(CorruptionTest, SmallRecordIsValid) {
  const std::string rec = SmallRecord();
  EXPECT_TRUE(DecodeItem(rec).ok());
  EXPECT_TRUE(VerifyRecord(rec).ok());
  EXPECT_TRUE(InspectRecord(rec).ok());
  EXPECT_EQ(MessageCodec(rec), GetParam() > 0 ? 1 : 0) << "the message must be compressed at level > 0";
}
TEST_P(CorruptionTest, EverySingleByteFlipIsDetected) {
  const std::string rec = SmallRecord();
  AllocationWatch watch;
  for (size_t pos = 0; pos < rec.size(); ++pos) {
    for (uint8_t mask : {0x01, 0xFF}) {
      std::string bad = rec;
      bad[pos] = char(uint8_t(bad[pos]) ^ mask);
      const std::string problems = CorruptionProblems(bad);
      EXPECT_EQ(problems, "") << "byte " << pos << " ^ " << int(mask);
    }
  }
  EXPECT_LT(watch.largest(), kMiB);
}

TEST_P(CorruptionTest, EveryTruncationIsDetected) {
  const std::string rec = SmallRecord();
  AllocationWatch watch;
  for (size_t len = 0; len < rec.size(); ++len) {
    EXPECT_EQ(CorruptionProblems(std::string_view(rec).substr(0, len)), "") << "length " << len;
  }
  EXPECT_LT(watch.largest(), kMiB);
}

TEST_P(CorruptionTest, AppendedBytesAreDetected) {
  const std::string rec = SmallRecord();
  for (std::string_view extra : {std::string_view("\0", 1), std::string_view("x"),
                                 std::string_view("12345678"), std::string_view(rec)}) {
    EXPECT_EQ(CorruptionProblems(rec + std::string(extra)), "") << extra.size() << " bytes";
  }
}

// Damage behind a recomputed checksum: every byte of a record (but the
// checksum) flipped and the checksum fixed up. DecodeItem and VerifyRecord
// must report Corruption (the content hash covers what the structure checks
// do not) -- with one exception: a zstd frame can hold bits its decoder
// ignores, and flipping one of those leaves the content intact. Such a record
// must then decode to exactly the original item, and that may happen only
// inside the zstd frame. InspectRecord must not crash, and must reject any
// damage to the header before the content hash.
TEST_P(CorruptionTest, EveryByteFlipBehindAValidChecksumIsDetectedOrHarmless) {
  const std::string rec = SmallRecord();
  const Item original = SmallItem();
  // Where the message's zstd frame lies (none at level 0).
  size_t frame_begin = rec.find("\x28\xb5\x2f\xfd");
  size_t frame_end = frame_begin;
  if (frame_begin != std::string::npos) {
    const size_t n = ZSTD_findFrameCompressedSize(rec.data() + frame_begin, rec.size() - frame_begin);
    ASSERT_FALSE(ZSTD_isError(n));
    frame_end = frame_begin + n;
  }
  ASSERT_EQ(frame_begin == std::string::npos, GetParam() == 0);

  AllocationWatch watch;
  int harmless = 0;
  for (size_t pos = 0; pos + 8 < rec.size(); ++pos) {
    for (uint8_t mask : {0x01, 0xFF}) {
      std::string bad = rec;
      bad[pos] = char(uint8_t(bad[pos]) ^ mask);
      Reseal(&bad);
      const Result<Item> decoded = DecodeItem(bad);
      const Result<uint64_t> verified = VerifyRecord(bad);
      if (decoded.ok() || verified.ok()) {
        ++harmless;
        EXPECT_TRUE(pos >= frame_begin && pos < frame_end)
            << "byte " << pos << " ^ " << int(mask) << " accepted outside the zstd frame";
        EXPECT_TRUE(decoded.ok() && *decoded == original)
            << "byte " << pos << " ^ " << int(mask) << ": " << Describe(decoded.status());
        EXPECT_TRUE(verified.ok() && *verified == ContentHash(original))
            << "byte " << pos << " ^ " << int(mask) << ": " << Describe(verified.status());
      } else {
        EXPECT_EQ(CorruptionProblems(bad, /*inspect=*/pos < kContentOffset), "")
            << "byte " << pos << " ^ " << int(mask);
      }
      const Status s = InspectRecord(bad).status();
      EXPECT_TRUE(s.ok() || IsCorruptionWithMessage(s)) << s.ToString();
    }
  }
  EXPECT_LT(watch.largest(), kMiB);
  if (GetParam() == 0) {
    EXPECT_EQ(harmless, 0);
  }
  EXPECT_LT(harmless, 10) << "the zstd frame should have few ignored bits";
}

// ---------------------------------------------------------------------------
// Corruption: wrong structure behind a valid checksum, built by hand

struct Tampered {
  std::string name;
  std::string record;
  // False when the structure is valid and only the content is wrong: then
  // InspectRecord (which does not check content) may accept it.
  bool structural = true;
};

// Checks that every record is a well-formed Corruption for all three
// decoders, with no allocation of a megabyte or more.
void ExpectAllCorrupt(const std::vector<Tampered>& cases) {
  for (const Tampered& t : cases) {
    AllocationWatch watch;
    EXPECT_EQ(CorruptionProblems(t.record, /*inspect=*/t.structural), "") << t.name;
    EXPECT_LT(watch.largest(), kMiB) << t.name;
  }
}

TEST(StructureCorruptionTest, HeaderFieldsWithValidChecksum) {
  const Item item = SmallItem();
  const std::string fields = HandFields(item);
  const uint64_t hash = ContentHash(item);
  ASSERT_TRUE(DecodeItem(Seal(fields, hash)).ok());

  std::vector<Tampered> cases = {
      {"version 0", Seal(fields, hash, 0)},
      {"version 1", Seal(fields, hash, 1)},
      {"version 1 layout", V1Record(item)},
      {"version 3", Seal(fields, hash, 3)},
      {"reserved flags", Seal(fields, hash, 2, 0x80)},
      {"magic", Seal(fields, hash, 2, 0, "MXI2")},
  };
  for (int64_t delta : {-1, 1, 1000, -100000}) {
    std::string r = Seal(fields, hash);
    SetLengthField(&r, uint32_t(int64_t(r.size()) + delta));
    Reseal(&r);
    cases.push_back({"length field " + std::to_string(delta), r});
  }
  {
    std::string r = Seal(fields, hash);
    SetLengthField(&r, 0xFFFFFFFFu);
    Reseal(&r);
    cases.push_back({"length field max", r});
  }
  ExpectAllCorrupt(cases);

  // A wrong content hash is found by the decoders that check content.
  const std::string wrong_hash = Seal(fields, hash ^ 1);
  EXPECT_EQ(CorruptionProblems(wrong_hash, /*inspect=*/false), "");
  EXPECT_NE(VerifyRecord(wrong_hash).status().message().find("content hash"), std::string::npos);
}

TEST(StructureCorruptionTest, Version1RecordsAreNotRead) {
  // Records of the previous layout, whether their fields are of that layout
  // or (as a half-migrated writer might make them) of this one.
  const Item item = SmallItem();
  for (const std::string& rec : {V1Record(item), Seal(HandFields(item), ContentHash(item), 1)}) {
    EXPECT_EQ(CorruptionProblems(rec), "");
    EXPECT_NE(DecodeItem(rec).status().message().find("unsupported version 1"), std::string::npos)
        << DecodeItem(rec).status().message();
    EXPECT_NE(VerifyRecord(rec).status().message().find("unsupported version 1"),
              std::string::npos);
    EXPECT_NE(InspectRecord(rec).status().message().find("unsupported version 1"),
              std::string::npos);
  }
}

TEST(StructureCorruptionTest, FieldLengthsAndCountsWithValidChecksum) {
  const Item item = SmallItem();
  const uint64_t hash = ContentHash(item);
  const std::string good = HandFields(item);

  const std::string prefix = FieldsBeforeRecipients(item);
  ASSERT_EQ(good.compare(0, prefix.size(), prefix), 0);
  const std::string after_prefix = good.substr(prefix.size());

  std::vector<Tampered> cases;
  auto add = [&](std::string name, const std::string& fields, bool structural = true) {
    cases.push_back({std::move(name), Seal(fields, hash), structural});
  };

  // Message class length prefix too large, huge, and an overlong varint.
  for (uint64_t len : {uint64_t(good.size()), uint64_t(1) << 40,
                       std::numeric_limits<uint64_t>::max()}) {
    std::string f;
    PutVarint64(&f, len);
    f += good.substr(1);
    add("message class length " + std::to_string(len), f);
  }
  // One byte longer: the class swallows the first byte of the created time
  // and the rest still parses, so only the content is wrong.
  add("message class one byte longer", char(item.message_class.size() + 1) + good.substr(1),
      /*structural=*/false);
  add("overlong varint", std::string(11, '\xFF') + good);
  add("unterminated varint", std::string(good.size(), '\x80'));

  // Flags, then keywords, beyond 32 bits.
  for (const char* which : {"flags", "keywords"}) {
    const bool flags = std::string_view(which) == "flags";
    std::string f;
    PutLengthPrefixed(&f, item.message_class);
    for (int i = 0; i < 3; ++i) PutVarint64(&f, 0);
    PutVarint64(&f, flags ? uint64_t(1) << 32 : item.flags);
    PutVarint64(&f, flags ? item.keywords : uint64_t(1) << 32);
    PutLengthPrefixed(&f, item.subject);
    PutLengthPrefixed(&f, item.sender);
    add(std::string(which) + " > 32 bits", f + after_prefix);
  }

  // Recipient counts the record cannot hold.
  for (uint64_t n : {uint64_t(item.recipients.size() + 1), uint64_t(after_prefix.size()),
                     uint64_t(1) << 62, std::numeric_limits<uint64_t>::max()}) {
    std::string f = prefix;
    PutVarint64(&f, n);
    f += after_prefix.substr(1);
    add("recipient count " + std::to_string(n), f);
  }

  // The fields after the recipients: message id, source name, message.
  {
    std::string head = prefix;
    PutVarint64(&head, item.recipients.size());
    for (const auto& r : item.recipients) PutLengthPrefixed(&head, r);
    std::string id, source;
    PutLengthPrefixed(&id, item.message_id);
    PutLengthPrefixed(&source, item.source_name);
    const std::string message = RawBlob(item.mime);
    ASSERT_EQ(good, head + id + source + message);
    // Lengths that run past the end of the record.
    const size_t rest = id.size() + source.size() + message.size();
    for (uint64_t len : {uint64_t(rest), uint64_t(1) << 40, std::numeric_limits<uint64_t>::max()}) {
      std::string f = head;
      PutVarint64(&f, len);
      add("message id length " + std::to_string(len), f + id.substr(1) + source + message);
      f = head + id;
      PutVarint64(&f, len);
      add("source name length " + std::to_string(len), f + source.substr(1) + message);
    }
    add("empty message but trailing bytes", head + id + source + RawBlob("") + message);
    add("trailing byte after the last field", good + std::string(1, '\0'));
    add("trailing bytes after the last field", good + "junk");
    add("fields cut after the recipients", head);
    add("fields cut in the message id", head + id.substr(0, id.size() - 1));
    add("fields cut after the message id", head + id);
    add("fields cut short (no message)", head + id + source);
    add("fields cut in the message", head + id + source + message.substr(0, message.size() - 3));
  }
  add("empty field section", "");
  // The smallest valid field section (an empty item) under another item's
  // content hash, and one byte short of it.
  add("field section of zeros", std::string(14, '\0'), /*structural=*/false);
  add("field section of 13 zeros", std::string(13, '\0'));

  ExpectAllCorrupt(cases);
}

TEST(StructureCorruptionTest, BlobSizesAndCodecsWithValidChecksum) {
  const Item item = SmallItem();
  const uint64_t hash = ContentHash(item);
  const std::string frame = ZstdFrame(item.mime);
  const uint64_t raw = item.mime.size();
  ASSERT_LT(frame.size(), raw);
  // Sanity: the hand-built compressed record is valid.
  {
    const BlobFn ok_blob = [&](std::string_view) { return HandBlob(raw, 1, frame); };
    const std::string rec = Seal(HandFields(item, ok_blob), hash);
    ASSERT_TRUE(DecodeItem(rec).ok()) << DecodeItem(rec).status().ToString();
    ASSERT_TRUE(VerifyRecord(rec).ok());
  }

  std::vector<Tampered> cases;
  // Builds a record whose message blob is `message_blob`.
  auto add = [&](std::string name, std::string message_blob) {
    const BlobFn blob = [&](std::string_view) { return message_blob; };
    cases.push_back({std::move(name), Seal(HandFields(item, blob), hash)});
  };

  // Raw blobs whose declared size disagrees with the stored bytes.
  for (uint64_t declared : {raw - 1, raw + 1, uint64_t(0), kMaxBlobBytes, kMaxBlobBytes + 1,
                            uint64_t(1) << 40, std::numeric_limits<uint64_t>::max()}) {
    add("raw message declared " + std::to_string(declared), HandBlob(declared, 0, item.mime));
  }
  // zstd blobs whose declared raw size disagrees with the frame.
  for (uint64_t declared : {raw - 1, raw + 1, raw * 2, uint64_t(frame.size()), kMaxBlobBytes,
                            kMaxBlobBytes + 1, uint64_t(1) << 40,
                            std::numeric_limits<uint64_t>::max()}) {
    add("zstd message declared " + std::to_string(declared), HandBlob(declared, 1, frame));
  }
  // Unknown codecs.
  for (uint8_t codec : {2, 3, 0x80, 0xFF}) {
    add("codec " + std::to_string(codec), HandBlob(raw, codec, frame));
    add("codec " + std::to_string(codec) + " raw", HandBlob(raw, codec, item.mime));
  }
  // zstd blob that is not smaller than its raw size, or not zstd at all.
  add("zstd not smaller", HandBlob(frame.size(), 1, frame));
  {
    // A valid frame of the right size that is not smaller than the data:
    // the encoder stores such blobs raw, so the decoder refuses it.
    const std::string message8 = item.mime.substr(0, 8);
    const std::string incompressible = ZstdFrame(message8);
    ASSERT_GE(incompressible.size(), 8u);
    Item short_message = item;
    short_message.mime = message8;
    const BlobFn blob = [&](std::string_view) { return HandBlob(8, 1, incompressible); };
    cases.push_back({"valid zstd frame not smaller than its data",
                     Seal(HandFields(short_message, blob), ContentHash(short_message))});
  }
  {
    // A valid frame exactly as large as its data (17 bytes of RLE frame for
    // 17 bytes): still not smaller, still refused.
    const std::string z17(17, 'z');
    const std::string rle17 = RleFrame(17, 'z');
    ASSERT_EQ(rle17.size(), 17u);
    Item same_size = item;
    same_size.mime = z17;
    const BlobFn blob = [&](std::string_view) { return HandBlob(17, 1, rle17); };
    cases.push_back({"valid zstd frame as large as its data",
                     Seal(HandFields(same_size, blob), ContentHash(same_size))});
    // One byte more of data, and the same kind of frame is accepted.
    same_size.mime.push_back('z');
    const std::string rle18 = RleFrame(18, 'z');
    ASSERT_EQ(rle18.size(), 17u);
    const BlobFn smaller = [&](std::string_view) { return HandBlob(18, 1, rle18); };
    const std::string ok = Seal(HandFields(same_size, smaller), ContentHash(same_size));
    Result<Item> d = DecodeItem(ok);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_TRUE(*d == same_size);
  }
  add("zstd codec on raw text", HandBlob(raw + 1, 1, item.mime));
  add("zstd codec, empty", HandBlob(0, 1, ""));
  add("zstd codec, garbage", HandBlob(raw, 1, std::string(20, 'g')));
  // Frame truncated, frame followed by junk, two frames.
  add("zstd frame truncated", HandBlob(raw, 1, frame.substr(0, frame.size() - 1)));
  add("zstd frame header only", HandBlob(raw, 1, frame.substr(0, 6)));
  add("zstd frame + junk", HandBlob(raw, 1, frame + "j"));
  {
    const std::string half1 = item.mime.substr(0, raw / 2);
    const std::string two = ZstdFrame(half1) + ZstdFrame(item.mime.substr(raw / 2));
    ASSERT_LT(two.size(), raw) << "two frames must pass the size check to reach the frame check";
    add("two zstd frames", HandBlob(raw, 1, two));
    // The whole message in the first frame, a second frame after it.
    const std::string second = ZstdFrame("x");
    ASSERT_LT(frame.size() + second.size(), raw);
    add("a whole frame, then another", HandBlob(raw, 1, frame + second));
  }
  {
    // A frame that does not declare its content size.
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    ASSERT_NE(cctx, nullptr);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
    std::string unsized(ZSTD_compressBound(raw), '\0');
    const size_t n = ZSTD_compress2(cctx, unsized.data(), unsized.size(), item.mime.data(), raw);
    ZSTD_freeCCtx(cctx);
    ASSERT_FALSE(ZSTD_isError(n));
    unsized.resize(n);
    ASSERT_EQ(ZSTD_getFrameContentSize(unsized.data(), unsized.size()), ZSTD_CONTENTSIZE_UNKNOWN);
    ASSERT_LT(unsized.size(), raw);
    add("zstd frame without a content size", HandBlob(raw, 1, unsized));
  }
  // Stored length prefix that runs past the record.
  {
    std::string b;
    PutVarint64(&b, raw);
    b.push_back(1);
    PutVarint64(&b, frame.size() + 1000);
    b += frame;
    add("stored length past the end", b);
  }
  // Blob fields missing entirely.
  add("blob with no codec", [&] {
    std::string b;
    PutVarint64(&b, raw);
    return b;
  }());
  add("blob with no stored length", [&] {
    std::string b;
    PutVarint64(&b, raw);
    b.push_back(1);
    return b;
  }());
  add("no blob at all", "");

  // A frame that claims 64 MiB but is cut short, declared as 64 MiB: rejected
  // before anything is allocated for it.
  const std::string big_zeros(64 * kMiB, '\0');
  const std::string big_frame = ZstdFrame(big_zeros, 1);
  ASSERT_LT(big_frame.size(), kMiB / 4);
  add("64 MiB frame truncated", HandBlob(big_zeros.size(), 1,
                                         big_frame.substr(0, big_frame.size() / 2)));
  // A complete 64 MiB frame declared as a small message (not smaller than
  // that), declared just above its own size (its header disagrees), and a
  // small frame declared as 64 MiB.
  add("64 MiB frame declared small", HandBlob(raw, 1, big_frame));
  add("64 MiB frame declared just above its size", HandBlob(big_frame.size() + 1, 1, big_frame));
  add("small frame declared 64 MiB", HandBlob(big_zeros.size(), 1, frame));

  // A well-formed frame just over the blob limit, declared as such: rejected
  // before anything is allocated for it.
  {
    const std::string small_rle = RleFrame(300000, 'z');
    std::string check(300000, '\0');
    ASSERT_EQ(ZSTD_decompress(check.data(), check.size(), small_rle.data(), small_rle.size()),
              check.size());
    ASSERT_EQ(check, std::string(300000, 'z')) << "RleFrame makes valid frames";
  }
  const std::string over_limit = RleFrame(kMaxBlobBytes + 1, 'z');
  ASSERT_EQ(ZSTD_getFrameContentSize(over_limit.data(), over_limit.size()), kMaxBlobBytes + 1);
  ASSERT_EQ(ZSTD_findFrameCompressedSize(over_limit.data(), over_limit.size()), over_limit.size());
  add("frame over the blob limit", HandBlob(kMaxBlobBytes + 1, 1, over_limit));

  ExpectAllCorrupt(cases);

  // Finally a structurally valid record with a 64 MiB zstd message and the
  // wrong content: DecodeItem may allocate the declared 64 MiB (no more), and
  // VerifyRecord streams it without any large allocation.
  Item zeros = item;
  zeros.mime = big_zeros;
  zeros.mime[12345] = 1;  // differs from what the frame holds
  const BlobFn big_blob = [&](std::string_view d) { return HandBlob(d.size(), 1, big_frame); };
  const std::string rec = Seal(HandFields(zeros, big_blob), ContentHash(zeros));
  {
    AllocationWatch watch;
    EXPECT_TRUE(IsCorruptionWithMessage(DecodeItem(rec).status()));
    EXPECT_LE(watch.largest(), big_zeros.size() + 64);
  }
  {
    AllocationWatch watch;
    Status s = VerifyRecord(rec).status();
    EXPECT_TRUE(IsCorruptionWithMessage(s)) << s.ToString();
    EXPECT_NE(s.message().find("content hash"), std::string::npos) << s.message();
    EXPECT_LT(watch.largest(), kMiB);
  }
  EXPECT_TRUE(InspectRecord(rec).ok()) << "structure is valid";
}

TEST(StructureCorruptionTest, MessagesSayWhatFailed) {
  const Item item = SmallItem();
  const uint64_t hash = ContentHash(item);
  const std::string fields = HandFields(item);
  std::string good = Seal(fields, hash);
  auto message = [](std::string_view rec) { return DecodeItem(rec).status().message(); };
  auto contains = [](const std::string& msg, std::string_view what) {
    return msg.find(what) != std::string::npos;
  };

  EXPECT_PRED2(contains, message(good.substr(0, 20)), "too short");
  EXPECT_PRED2(contains, message(Seal(fields, hash, 2, 0, "MXJ1")), "magic");
  EXPECT_PRED2(contains, message(Seal(fields, hash, 7)), "version 7");
  EXPECT_PRED2(contains, message(V1Record(item)), "unsupported version 1");
  EXPECT_PRED2(contains, message(good + "x"), "length");
  std::string bad = good;
  bad[kHeaderBytes + 3] ^= 0x10;
  EXPECT_PRED2(contains, message(bad), "checksum mismatch");
  EXPECT_PRED2(contains, message(Seal(fields + "zz", hash)), "trailing bytes");
  EXPECT_PRED2(contains, message(Seal(fields, hash + 1)), "content hash mismatch");
  const BlobFn codec9 = [&](std::string_view d) { return HandBlob(d.size(), 9, d); };
  EXPECT_PRED2(contains, message(Seal(HandFields(item, codec9), hash)),
               "unknown codec 9 for message");
  const std::string frame = ZstdFrame(item.mime);
  const BlobFn junk = [&](std::string_view d) { return HandBlob(d.size(), 1, frame + "j"); };
  EXPECT_PRED2(contains, message(Seal(HandFields(item, junk), hash)), "followed by junk");
  const BlobFn unsized = [&](std::string_view d) {
    ZSTD_CCtx* cctx = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
    std::string f(ZSTD_compressBound(d.size()), '\0');
    f.resize(ZSTD_compress2(cctx, f.data(), f.size(), d.data(), d.size()));
    ZSTD_freeCCtx(cctx);
    return HandBlob(d.size(), 1, f);
  };
  EXPECT_PRED2(contains, message(Seal(HandFields(item, unsized), hash)), "known size");
  const BlobFn too_big = [&](std::string_view d) { return HandBlob(kMaxBlobBytes + 1, 0, d); };
  EXPECT_PRED2(contains, message(Seal(HandFields(item, too_big), hash)), "more than the limit");
  std::string many = FieldsBeforeRecipients(item);
  ASSERT_EQ(fields.compare(0, many.size(), many), 0);
  PutVarint64(&many, 1000000);
  EXPECT_PRED2(contains, message(Seal(many + "abc", hash)), "number of recipients");
  // Cut after the recipients, then after the message id, then before the
  // message's codec.
  std::string head = FieldsBeforeRecipients(item);
  PutVarint64(&head, 0);
  EXPECT_PRED2(contains, message(Seal(head, hash)), "bad length for message id");
  PutLengthPrefixed(&head, item.message_id);
  EXPECT_PRED2(contains, message(Seal(head, hash)), "bad length for source name");
  PutLengthPrefixed(&head, item.source_name);
  PutVarint64(&head, 5);
  EXPECT_PRED2(contains, message(Seal(head, hash)), "missing codec for message");
  // Keywords beyond 32 bits.
  std::string kw;
  PutLengthPrefixed(&kw, item.message_class);
  for (int i = 0; i < 4; ++i) PutVarint64(&kw, 0);
  PutVarint64(&kw, uint64_t(1) << 32);
  PutLengthPrefixed(&kw, item.subject);
  PutLengthPrefixed(&kw, item.sender);
  kw += fields.substr(FieldsBeforeRecipients(item).size());
  EXPECT_PRED2(contains, message(Seal(kw, hash)), "bad varint for keywords");
}

TEST(StructureCorruptionTest, VerifyOfALargeValidItemAllocatesLittle) {
  Item item = SampleItem(message_class::kNote, 61);
  item.mime = MimeMessage(item, TextLike(8 * kMiB, 61),
                          {{"big.txt", "text/plain", TextLike(3 * kMiB, 62)}}, 61);
  std::string rec;
  ASSERT_TRUE(EncodeItem(item, CodecOptions{1}, &rec).ok());
  AllocationWatch watch;
  Result<uint64_t> v = VerifyRecord(rec);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, ContentHash(item));
  EXPECT_LT(watch.largest(), kMiB);
}

}  // namespace
}  // namespace mbx
