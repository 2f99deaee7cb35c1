// The transaction log's on-disk format, shared by txlog_writer and
// txlog_reader.
//
// The log is one byte stream, numbered by LSN (log sequence number = byte
// offset since the store was created), cut into fixed-size files of
// `file_bytes` each: generation g (1-based) holds LSNs [(g-1)*file_bytes,
// g*file_bytes) and is named "E00" + 8 uppercase hex digits of g + ".log",
// as Exchange's ESE names its logs. A record may span files.
//
// One record per committed group (one LMDB transaction):
//
//   magic     fixed32  kLogRecordMagic
//   length    fixed32  payload bytes
//   lsn       fixed64  LSN of this record's first byte (detects misplaced data)
//   payload   `length` bytes: varint mutation count, then per mutation
//             u8 op, u8 db, length-prefixed key, length-prefixed value
//             (value only for puts) — the redo form of a WriteBatch
//   checksum  fixed64  XXH3-64 of every byte of the record before it
//
// A record whose checksum does not hold at the very end of the log is a torn
// write (a crash mid-append) and is cut off on open; anywhere else it is
// corruption and the store refuses to open.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "store/status.h"
#include "store/write_batch.h"

namespace mbx::txlog {

inline constexpr uint32_t kLogRecordMagic = 0x4C58424D;  // "MBXL"
inline constexpr size_t kHeaderBytes = 16;
inline constexpr size_t kTrailerBytes = 8;
inline constexpr size_t kRecordOverheadBytes = kHeaderBytes + kTrailerBytes;
inline constexpr uint64_t kMaxPayloadBytes = 1ull << 31;
// 4 MiB (Exchange 2000/2003 wrote 5 MiB files, later ESE 1 MiB): each file
// costs the log thread a creation and, once full, an fdatasync of its data
// and new size. With 1 MiB files a move spent a third of that thread's CPU
// creating files on a file system that skips recently freed inodes (ext4
// without a journal) and ran 7-10% slower (perf/README.md, writepath-logsize).
inline constexpr uint64_t kDefaultFileBytes = 4ull << 20;
inline constexpr uint64_t kMinFileBytes = 4096;

inline uint64_t GenerationOf(uint64_t lsn, uint64_t file_bytes) { return lsn / file_bytes + 1; }
std::string FileName(uint64_t generation);  // "E0000000001.log"
// Parses "E00XXXXXXXX.log"; returns 0 for any other name.
uint64_t ParseFileName(std::string_view name);
inline constexpr const char* kCheckpointFile = "E00.chk";
// Lines "FROM TO" (decimal LSNs): log records in [FROM, TO) that a machine
// crash took from the log after the database had applied them (see
// TxLogReader::lost_behind_checkpoint). No reader may roll forward across one.
inline constexpr const char* kGapFile = "E00.gap";

// Appends the payload form of these mutations to *out.
void EncodePayload(const std::vector<const WriteBatch*>& batches, std::string* out);
// The same payload as a gather list, without copying the large values: the
// framing (counts, ops, keys, lengths, small values) goes into *frame, and
// *pieces is the payload in order, each piece a view into *frame or into a
// mutation's value (valid while the batches and *frame are unchanged).
// Their concatenation is what EncodePayload appends.
void EncodePayloadPieces(const std::vector<const WriteBatch*>& batches, std::string* frame,
                         std::vector<std::string_view>* pieces);
// Values shorter than this are copied into the frame: a piece of its own
// would cost more (an iovec, a hash update) than the copy.
inline constexpr size_t kGatherMinValueBytes = 512;
// Frames a payload as a record starting at `lsn`.
void FrameRecord(uint64_t lsn, std::string_view payload, std::string* out);
// The same record as header + payload + trailer, without copying the
// payload, which may be given in pieces (EncodePayloadPieces).
void FrameHeader(uint64_t lsn, std::span<const std::string_view> payload, std::string* header,
                 std::string* trailer);
// Visits each mutation of a payload; Corruption if it does not parse.
template <typename Fn>
Status ForEachMutation(std::string_view payload, Fn&& fn);

// The checkpoint file's content: magic, LSN, checksum.
std::string EncodeCheckpoint(uint64_t lsn);
Result<uint64_t> DecodeCheckpoint(std::string_view data);

}  // namespace mbx::txlog

#include "store/coding.h"

namespace mbx::txlog {

template <typename Fn>
Status ForEachMutation(std::string_view payload, Fn&& fn) {
  ByteReader r(payload);
  uint64_t n = 0;
  if (!r.GetVarint64(&n)) return Status::Corruption("log record payload: bad mutation count");
  for (uint64_t i = 0; i < n; ++i) {
    uint8_t op = 0, db = 0;
    std::string_view key, value;
    r.GetU8(&op);
    r.GetU8(&db);
    r.GetLengthPrefixed(&key);
    if (op == uint8_t(Mutation::Op::kPut)) r.GetLengthPrefixed(&value);
    if (!r.ok() || db >= kNumDbs || op < 1 || op > 3) {
      return Status::Corruption("log record payload: damaged mutation " + std::to_string(i));
    }
    MBX_RETURN_IF_ERROR(fn(Mutation::Op(op), Db(db), key, value));
  }
  if (!r.empty()) return Status::Corruption("log record payload: trailing bytes");
  return Status::Ok();
}

}  // namespace mbx::txlog
