// Helpers for the item codec tests (tests/item_codec_test.cc): test data
// (deterministic random and text-like bytes, MIME messages, sample items),
// records built by hand from the layout documented in store/item_codec.h,
// and checks that every decoder agrees on a record.
#pragma once

#include <gtest/gtest.h>
#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL  // the tests link no xxhash library
#endif
#include <xxhash.h>
#include <zstd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "store/coding.h"
#include "store/item.h"
#include "store/item_codec.h"

namespace mbx::testing {

// ---------------------------------------------------------------------------
// Test data.

class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t Next() {  // splitmix64
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

 private:
  uint64_t s_;
};

inline std::string RandomBytes(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng.Next();
    for (size_t j = i; j < n && j < i + 8; ++j, v >>= 8) s[j] = char(v);
  }
  return s;
}

inline std::string TextLike(size_t n, uint64_t seed) {
  static constexpr const char* kWords[] = {
      "the",     "mailbox", "move",     "quarterly", "report", "meeting", "please",
      "review",  "the",     "attached", "budget",    "and",    "project", "schedule",
      "for",     "monday",  "thanks",   "regards",   "update", "status",  "team",
      "invoice", "a",       "of",       "to",        "is",     "we",      "customer"};
  constexpr size_t kCount = sizeof(kWords) / sizeof(kWords[0]);
  Rng rng(seed);
  std::string s;
  s.reserve(n + 16);
  while (s.size() < n) {
    const uint64_t r = rng.Next();
    s += kWords[r % kCount];
    s.push_back((r >> 32) % 13 == 0 ? '\n' : ' ');
  }
  s.resize(n);
  return s;
}

inline Timestamp At(int64_t us) { return Timestamp{std::chrono::microseconds{us}}; }

inline const std::vector<std::string_view>& AllMessageClasses() {
  static const std::vector<std::string_view> kClasses = {
      message_class::kNote,       message_class::kAppointment, message_class::kContact,
      message_class::kTask,       message_class::kStickyNote,  message_class::kJournal};
  return kClasses;
}

// Base64 in 76-character lines, as MIME bodies carry attachments.
inline std::string Base64(std::string_view data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t col = 0;
  auto put = [&](char c) {
    out.push_back(c);
    if (++col == 76) {
      out.push_back('\n');
      col = 0;
    }
  };
  for (size_t i = 0; i < data.size(); i += 3) {
    const size_t n = std::min<size_t>(3, data.size() - i);
    uint32_t v = 0;
    for (size_t j = 0; j < 3; ++j) v = v << 8 | (j < n ? uint32_t(uint8_t(data[i + j])) : 0u);
    put(kAlphabet[v >> 18]);
    put(kAlphabet[(v >> 12) & 63]);
    put(n > 1 ? kAlphabet[(v >> 6) & 63] : '=');
    put(n > 2 ? kAlphabet[v & 63] : '=');
  }
  if (col != 0) out.push_back('\n');
  return out;
}

struct TestAttachment {
  std::string name;
  std::string type;
  std::string data;
};

// An RFC 5322 message carrying `it`'s properties in its header, with `body`
// as text/plain or, with attachments, multipart/mixed with base64 parts (the
// shape datagen renders and imports store).
inline std::string MimeMessage(const Item& it, std::string_view body,
                        const std::vector<TestAttachment>& attachments = {}, uint64_t seed = 0) {
  std::string m = "Date: Tue, 14 Nov 2023 22:13:20 +0000\nFrom: " + it.sender + "\n";
  for (size_t i = 0; i < it.recipients.size(); ++i) {
    m += (i == 0 ? "To: " : ",\n ") + it.recipients[i];
  }
  if (!it.recipients.empty()) m += "\n";
  m += "Subject: " + it.subject + "\n";
  if (!it.message_id.empty()) m += "Message-ID: <" + it.message_id + ">\n";
  if (it.message_class != message_class::kNote) {
    m += "X-MS-Message-Class: " + it.message_class + "\n";
  }
  m += "MIME-Version: 1.0\n";
  if (attachments.empty()) {
    m += "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n";
    m += body;
    return m;
  }
  const std::string boundary = "=_test_" + std::to_string(seed);
  m += "Content-Type: multipart/mixed; boundary=\"" + boundary + "\"\n\n--" + boundary +
       "\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n";
  m += body;
  for (const TestAttachment& a : attachments) {
    m += "\n--" + boundary + "\nContent-Type: " + a.type + "; name=\"" + a.name +
         "\"\nContent-Disposition: attachment; filename=\"" + a.name +
         "\"\nContent-Transfer-Encoding: base64\n\n" + Base64(a.data);
  }
  m += "\n--" + boundary + "--\n";
  return m;
}

// A plausible small item of the given class: every property set (the source
// name for even seeds only, as only imported items have one), its message a
// text or multipart MIME message.
inline Item SampleItem(std::string_view cls, uint64_t seed) {
  Item it;
  it.message_class = std::string(cls);
  it.created = At(1'700'000'000'000'000 + int64_t(seed) * 1'000'003);
  it.modified = it.created + std::chrono::hours(2);
  it.received = cls == message_class::kNote ? it.created + std::chrono::seconds(5) : it.created;
  it.flags = kFlagRead | (seed % 2 ? uint32_t{kFlagFlagged} : 0u) |
             (seed % 3 == 0 ? uint32_t{kFlagPassed} : 0u);
  it.keywords = seed % 5 == 0 ? 0u : (1u << (seed % 26)) | 1u;
  it.subject = std::string(cls) + " subject #" + std::to_string(seed);
  it.sender = "Alice Example <alice@example.com>";
  it.recipients = {"bob@example.com", "Carol <carol@example.org>"};
  it.message_id = std::to_string(seed) + "." + std::string(cls) + "@example.com";
  if (seed % 2 == 0) {
    it.source_name = "1700000000.M" + std::to_string(seed) + "P4242.mail.example.com";
  }
  const std::string body = TextLike(1500 + seed % 700, seed);
  std::vector<TestAttachment> attachments;
  if (cls == message_class::kNote || cls == message_class::kAppointment) {
    attachments.push_back({"notes.txt", "text/plain", TextLike(2000, seed + 1)});
    attachments.push_back({"photo.jpg", "image/jpeg", RandomBytes(1200, seed + 2)});
  } else if (cls == message_class::kContact) {
    attachments.push_back({"card.vcf", "text/vcard", "BEGIN:VCARD\nFN:Bob\nEND:VCARD\n"});
  }
  it.mime = MimeMessage(it, body, attachments, seed);
  return it;
}

// A small item whose record is a few hundred bytes, with a compressible
// message (so that a zstd frame is part of the record at level >= 1).
inline Item SmallItem() {
  Item it;
  it.message_class = std::string(message_class::kNote);
  it.created = At(1'690'000'000'123'456);
  it.modified = At(1'690'000'100'000'000);
  it.received = At(1'690'000'000'200'000);
  it.flags = kFlagRead | kFlagAnswered;
  it.keywords = 0b101;  // Maildir keywords 'a' and 'c'
  it.subject = "Re: budget";
  it.sender = "Dan <dan@example.com>";
  it.recipients = {"erin@example.com", "frank@example.com"};
  it.message_id = "b1.dan@example.com";
  it.source_name = "1690000000.M1P2.host";
  it.mime = "Subject: Re: budget\nMessage-ID: <b1.dan@example.com>\n\n"
            "Hi all, the budget review is on Monday. The budget review is on Monday. "
            "The budget review is on Monday; please bring the budget. The budget review "
            "is on Monday. Thanks, Dan\n";
  return it;
}

// ---------------------------------------------------------------------------
// Hand-built records, following the layout in item_codec.h.

inline constexpr size_t kHeaderBytes = 18;
inline constexpr size_t kLengthOffset = 6;
inline constexpr size_t kContentOffset = 10;

inline std::string HandBlob(uint64_t raw_size, uint8_t codec, std::string_view stored) {
  std::string s;
  PutVarint64(&s, raw_size);
  s.push_back(char(codec));
  PutLengthPrefixed(&s, stored);
  return s;
}
inline std::string RawBlob(std::string_view data) { return HandBlob(data.size(), 0, data); }

inline uint64_t ZigZag(int64_t v) { return (uint64_t(v) << 1) ^ uint64_t(v >> 63); }

// The field section of `item` up to (not including) the recipients count.
inline std::string FieldsBeforeRecipients(const Item& item) {
  std::string f;
  PutLengthPrefixed(&f, item.message_class);
  for (Timestamp t : {item.created, item.modified, item.received}) {
    PutVarint64(&f, ZigZag(t.time_since_epoch().count()));
  }
  PutVarint64(&f, item.flags);
  PutVarint64(&f, item.keywords);
  PutLengthPrefixed(&f, item.subject);
  PutLengthPrefixed(&f, item.sender);
  return f;
}

using BlobFn = std::function<std::string(std::string_view)>;

// The field section of `item`, its message blob written by `blob`.
inline std::string HandFields(const Item& item, const BlobFn& blob = RawBlob) {
  std::string f;
  PutLengthPrefixed(&f, item.message_class);
  PutVarint64(&f, ZigZag(item.created.time_since_epoch().count()));
  PutVarint64(&f, ZigZag(item.modified.time_since_epoch().count()));
  PutVarint64(&f, ZigZag(item.received.time_since_epoch().count()));
  PutVarint64(&f, item.flags);
  PutVarint64(&f, item.keywords);
  PutLengthPrefixed(&f, item.subject);
  PutLengthPrefixed(&f, item.sender);
  PutVarint64(&f, item.recipients.size());
  for (const auto& r : item.recipients) PutLengthPrefixed(&f, r);
  PutLengthPrefixed(&f, item.message_id);
  PutLengthPrefixed(&f, item.source_name);
  f += blob(item.mime);
  return f;
}

inline void Reseal(std::string* rec) {
  const size_t n = rec->size() - 8;
  const uint64_t sum = XXH3_64bits(rec->data(), n);
  for (int i = 0; i < 8; ++i) (*rec)[n + i] = char(sum >> (8 * i));
}

inline void SetLengthField(std::string* rec, uint32_t len) {
  for (int i = 0; i < 4; ++i) (*rec)[kLengthOffset + i] = char(len >> (8 * i));
}

// A complete record around `fields`, with a correct length and checksum.
inline std::string Seal(std::string_view fields, uint64_t content_hash, uint8_t version = 2,
                 uint8_t flags = 0, std::string_view magic = "MXI1") {
  std::string r(magic);
  r.push_back(char(version));
  r.push_back(char(flags));
  PutFixed32(&r, 0);
  PutFixed64(&r, content_hash);
  r.append(fields);
  PutFixed64(&r, 0);
  SetLengthField(&r, uint32_t(r.size()));
  Reseal(&r);
  return r;
}

// A record in the version-1 layout, which version 2 replaced: no keywords,
// message id or source name; a body blob and a list of attachments (name,
// content type, data blob) where version 2 has the message blob.
inline std::string V1Record(const Item& item) {
  std::string f;
  PutLengthPrefixed(&f, item.message_class);
  for (Timestamp t : {item.created, item.modified, item.received}) {
    PutVarint64(&f, ZigZag(t.time_since_epoch().count()));
  }
  PutVarint64(&f, item.flags);
  PutLengthPrefixed(&f, item.subject);
  PutLengthPrefixed(&f, item.sender);
  PutVarint64(&f, item.recipients.size());
  for (const auto& r : item.recipients) PutLengthPrefixed(&f, r);
  f += RawBlob("Hi all, the budget review is on Monday.\n");  // body
  PutVarint64(&f, 1);                                        // one attachment
  PutLengthPrefixed(&f, "a.txt");
  PutLengthPrefixed(&f, "text/plain");
  f += RawBlob("short attachment");
  return Seal(f, ContentHash(item), /*version=*/1);
}

inline std::string ZstdFrame(std::string_view data, int level = 3) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  const size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), level);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

// A zstd frame made by hand: single segment, 8-byte content size, RLE blocks
// of `byte`. A few KB however large `size` is.
inline std::string RleFrame(uint64_t size, char byte) {
  std::string f = "\x28\xb5\x2f\xfd";
  f.push_back(char(0xE0));  // FCS field 8 bytes, single segment, no checksum
  PutFixed64(&f, size);
  constexpr uint64_t kBlockMax = 128 * 1024;
  do {
    const uint64_t n = size < kBlockMax ? size : kBlockMax;
    size -= n;
    const uint32_t header = uint32_t(size == 0) | (1u << 1) | uint32_t(n << 3);  // RLE
    f.push_back(char(header));
    f.push_back(char(header >> 8));
    f.push_back(char(header >> 16));
    f.push_back(byte);
  } while (size > 0);
  return f;
}

// Codec byte of the message blob of a record (0 raw, 1 zstd), found by
// walking the documented layout.
inline uint8_t MessageCodec(std::string_view record) {
  ByteReader r(record.substr(kHeaderBytes, record.size() - kHeaderBytes - 8));
  std::string_view s;
  uint64_t v = 0, n = 0;
  uint8_t codec = 0xEE;
  r.GetLengthPrefixed(&s);                        // message class
  for (int i = 0; i < 5; ++i) r.GetVarint64(&v);  // timestamps, flags, keywords
  r.GetLengthPrefixed(&s);                        // subject
  r.GetLengthPrefixed(&s);                        // sender
  r.GetVarint64(&n);
  for (uint64_t i = 0; i < n && r.ok(); ++i) r.GetLengthPrefixed(&s);
  r.GetLengthPrefixed(&s);  // message id
  r.GetLengthPrefixed(&s);  // source name
  r.GetVarint64(&v);        // raw size
  r.GetU8(&codec);
  r.GetLengthPrefixed(&s);  // stored bytes
  EXPECT_TRUE(r.ok() && r.empty()) << "test parser disagrees with the record";
  return codec;
}

// ---------------------------------------------------------------------------
// Checking helpers.

inline std::string Describe(const Status& s) { return s.ok() ? "ok" : s.ToString(); }

inline bool IsCorruptionWithMessage(const Status& s) {
  return s.IsCorruption() && s.message().rfind("corrupt item record: ", 0) == 0;
}

// "" if DecodeItem, VerifyRecord (and InspectRecord, if `inspect`) all report
// a well-formed Corruption for `rec`; otherwise what went wrong.
inline std::string CorruptionProblems(std::string_view rec, bool inspect = true) {
  std::string problems;
  if (Status s = DecodeItem(rec).status(); !IsCorruptionWithMessage(s)) {
    problems += " DecodeItem=" + Describe(s);
  }
  if (Status s = VerifyRecord(rec).status(); !IsCorruptionWithMessage(s)) {
    problems += " VerifyRecord=" + Describe(s);
  }
  if (inspect) {
    if (Status s = InspectRecord(rec).status(); !IsCorruptionWithMessage(s)) {
      problems += " InspectRecord=" + Describe(s);
    }
  }
  return problems;
}

// Encodes at `level`, checks that all decoders agree with `item`, returns the
// record.
inline std::string ExpectRoundTrip(const Item& item, int level) {
  SCOPED_TRACE("zstd level " + std::to_string(level) + ", class " + item.message_class);
  std::string rec;
  Status s = EncodeItem(item, CodecOptions{level}, &rec);
  EXPECT_TRUE(s.ok()) << s.ToString();
  if (!s.ok()) return rec;

  Result<Item> decoded = DecodeItem(rec);
  EXPECT_TRUE(decoded.ok()) << decoded.status().ToString();
  if (decoded.ok()) {
    EXPECT_TRUE(*decoded == item) << "decoded item differs";
  }

  const uint64_t hash = ContentHash(item);
  Result<uint64_t> verified = VerifyRecord(rec);
  EXPECT_TRUE(verified.ok()) << verified.status().ToString();
  if (verified.ok()) {
    EXPECT_EQ(*verified, hash);
  }
  Result<VerifiedRecord> sized = VerifyRecordWithSize(rec);
  EXPECT_TRUE(sized.ok()) << sized.status().ToString();
  if (sized.ok()) {
    EXPECT_EQ(sized->content_hash, hash);
    EXPECT_EQ(sized->logical_bytes, item.LogicalSize());
  }

  Result<RecordInfo> info = InspectRecord(rec);
  EXPECT_TRUE(info.ok()) << info.status().ToString();
  if (info.ok()) {
    EXPECT_EQ(info->version, 2);
    EXPECT_EQ(info->message_class, item.message_class);
    EXPECT_EQ(info->subject, item.subject);
    EXPECT_EQ(info->content_hash, hash);
    EXPECT_EQ(info->logical_bytes, item.LogicalSize());
  }
  return rec;
}

}  // namespace mbx::testing
