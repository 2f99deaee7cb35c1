// libFuzzer target: the item codec (record version 2) and the small store
// records.
//
// Inputs that start with the record magic "MXI1", or whose first byte is
// even, are item records; the others are mailbox and folder records. The
// record checksum would stop almost every mutated input at the door, so the
// harness first makes the envelope consistent (version 2, length field,
// trailing XXH3 checksum) and then lets the decoders face whatever structure
// is left. The seed corpus (corpus/item_codec) holds valid version-2 records
// as EncodeItem writes them, some damaged ones, and small-record inputs.
//
// Properties: no crash, no out-of-bounds access (ASan), the three decoders
// agree (DecodeItem succeeds iff VerifyRecordWithSize does, and then
// InspectRecord succeeds too, all with the same content hash and logical
// size), and a record that decodes re-encodes to an item with the same
// content hash.
#include <xxhash.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "store/coding.h"
#include "store/item_codec.h"
#include "store/records.h"

namespace {
constexpr uint8_t kRecordVersion = 2;  // the version item_codec.cc reads
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  if (!in.empty() && (in[0] & 1) && !in.starts_with("MXI1")) {
    // Small records: mailbox headers and folders.
    (void)mbx::DecodeMailboxInfo(std::string(16, 'k'), in);
    (void)mbx::DecodeFolderInfo(7, in);
    return 0;
  }
  std::string rec = in;
  if (rec.size() >= 26) {
    const std::string magic = "MXI1";
    std::memcpy(rec.data(), magic.data(), 4);
    rec[4] = char(kRecordVersion);
    const uint32_t len = uint32_t(rec.size());
    for (int i = 0; i < 4; ++i) rec[6 + i] = char(len >> (8 * i));
    const uint64_t sum = XXH3_64bits(rec.data(), rec.size() - 8);
    for (int i = 0; i < 8; ++i) rec[rec.size() - 8 + size_t(i)] = char(sum >> (8 * i));
  }
  auto info = mbx::InspectRecord(rec);
  auto verified = mbx::VerifyRecordWithSize(rec);
  auto item = mbx::DecodeItem(rec);
  if (item.ok() != verified.ok()) __builtin_trap();  // Decode and Verify must agree
  if (!item.ok()) return 0;
  const uint64_t hash = mbx::ContentHash(*item);
  if (!info.ok() || info->version != kRecordVersion || info->content_hash != hash ||
      info->logical_bytes != item->LogicalSize() || info->message_class != item->message_class ||
      info->subject != item->subject) {
    __builtin_trap();
  }
  if (verified->content_hash != hash || verified->logical_bytes != item->LogicalSize()) {
    __builtin_trap();
  }
  std::string again;
  if (!mbx::EncodeItem(*item, mbx::CodecOptions{1}, &again).ok()) return 0;
  auto back = mbx::VerifyRecord(again);
  if (!back.ok() || *back != hash) __builtin_trap();
  return 0;
}
