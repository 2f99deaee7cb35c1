// Item codec: the stored, versioned form of an Item.
//
// Record layout (version 2), all integers little-endian unless noted:
//
//   magic      "MXI1"                         4 bytes
//   version    u8 (= 2)
//   flags      u8 (reserved, 0)
//   length     fixed32: total record length in bytes, trailer included
//   content    fixed64: ContentHash() of the logical item (see below)
//   fields     message class, timestamps (varint µs since epoch, zig-zag),
//              item flags, keywords, subject, sender, recipients, message id,
//              source name (the indexed properties, see item.h), then the
//              message (RFC 5322 bytes) as a "blob": varint raw size, u8
//              codec (0 = stored raw, 1 = zstd), length-prefixed stored
//              bytes. The blob is zstd-compressed at the store's level
//              unless the compressed form is not smaller.
//   checksum   fixed64: XXH3-64 of every byte before it           8 bytes
//
// Version 1 (body and attachments as separate blobs, before items kept their
// RFC 5322 form) is not read: no store of it was ever released.
//
// Decoding checks, in order: minimum size, magic, version, length, record
// checksum, field structure (every length within bounds), zstd frames (the
// decompressed size must equal the declared raw size, capped at
// kMaxBlobBytes), and finally that the decoded item hashes to `content`.
// Any failure is Status::Corruption with a message naming what failed; no
// input, however damaged, makes a decoder read out of bounds or crash.
//
// Thread safety: all functions are safe to call concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "store/item.h"
#include "store/status.h"

namespace mbx {

inline constexpr uint64_t kMaxBlobBytes = 256ull << 20;  // 256 MiB per message
inline constexpr int kDefaultZstdLevel = 3;

struct CodecOptions {
  int zstd_level = kDefaultZstdLevel;  // 1..19; 0 means "store raw, no compression"
};

// Hash of the logical content of an item (every field, uncompressed),
// independent of compression level and codec version: two records decode to
// equal items iff (with overwhelming probability) their ContentHash()es match.
uint64_t ContentHash(const Item& item);

// Encodes `item` into `*out` (replacing its contents).
// Fails with InvalidArgument if a blob is larger than kMaxBlobBytes.
Status EncodeItem(const Item& item, const CodecOptions& options, std::string* out);

// Decodes and fully verifies a record (see the checks above).
Result<Item> DecodeItem(std::string_view record);

// What can be learned from a record without decompressing it. The record
// checksum and header are verified; fields are parsed but blobs are not
// decompressed, so a record that passes Inspect may still fail Decode.
struct RecordInfo {
  uint8_t version = 0;
  uint64_t content_hash = 0;
  uint64_t logical_bytes = 0;  // Item::LogicalSize() of the decoded item
  std::string message_class;
  std::string subject;
};
Result<RecordInfo> InspectRecord(std::string_view record);

// Fully verifies a record (as DecodeItem) and returns its content hash,
// without keeping the decoded item. This is what a move runs on every item.
Result<uint64_t> VerifyRecord(std::string_view record);

// As VerifyRecord, also returning the logical size (what a move needs to
// account for an item it copies, in the same pass).
struct VerifiedRecord {
  uint64_t content_hash = 0;
  uint64_t logical_bytes = 0;
};
Result<VerifiedRecord> VerifyRecordWithSize(std::string_view record);

// Decodes and re-encodes at another compression level. The content hash is
// unchanged.
Status RecodeItem(std::string_view record, const CodecOptions& options, std::string* out);

}  // namespace mbx
