#include "store/item_codec.h"

// xxHash is used header-only here: the XXH3 streaming state then lives on the
// stack (no allocation, no failure path) and the hash is inlined. The output
// is the same XXH3-64 as the shared library's.
#define XXH_INLINE_ALL
#include <xxhash.h>
#include <zstd.h>

#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "store/coding.h"

namespace mbx {
namespace {

// ---------------------------------------------------------------------------
// Layout constants (see item_codec.h).

constexpr char kMagic[4] = {'M', 'X', 'I', '1'};
constexpr uint8_t kVersion = 2;  // 1 (body + attachments) is no longer read
constexpr size_t kMagicOffset = 0;
constexpr size_t kVersionOffset = 4;
constexpr size_t kFlagsOffset = 5;
constexpr size_t kLengthOffset = 6;
constexpr size_t kContentHashOffset = 10;
constexpr size_t kHeaderBytes = 18;  // magic, version, flags, length, content
constexpr size_t kTrailerBytes = 8;  // checksum
// The smallest field section: empty message class (1), three one-byte
// timestamps (3), flags (1), keywords (1), empty subject (1) and sender (1),
// no recipients (1), empty message id (1) and source name (1), an empty
// message blob (raw size, codec, stored length: 3).
constexpr size_t kMinFieldBytes = 14;
constexpr size_t kMinRecordBytes = kHeaderBytes + kMinFieldBytes + kTrailerBytes;
// A recipient takes at least its length prefix.
constexpr size_t kMinRecipientBytes = 1;

constexpr uint8_t kCodecRaw = 0;
constexpr uint8_t kCodecZstd = 1;

Status Corrupt(std::string_view what) {
  std::string msg = "corrupt item record: ";
  msg.append(what);
  return Status::Corruption(std::move(msg));
}

uint64_t ZigZagEncode(int64_t v) { return (uint64_t(v) << 1) ^ uint64_t(v >> 63); }
int64_t ZigZagDecode(uint64_t u) { return int64_t((u >> 1) ^ (~(u & 1) + 1)); }

size_t VarintLength(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// Writes a varint at `dst` (which has room for it); returns its length.
size_t EncodeVarintAt(char* dst, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    dst[n++] = char((v & 0x7f) | 0x80);
    v >>= 7;
  }
  dst[n++] = char(v);
  return n;
}

// ---------------------------------------------------------------------------
// Per-thread zstd contexts, reused across calls (creating one costs more than
// compressing a small item).

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxDeleter {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

ZSTD_CCtx* ThreadCCtx() {
  thread_local std::unique_ptr<ZSTD_CCtx, CCtxDeleter> ctx(ZSTD_createCCtx());
  return ctx.get();
}

ZSTD_DCtx* ThreadDCtx() {
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxDeleter> ctx([] {
    ZSTD_DCtx* d = ZSTD_createDCtx();
    if (d != nullptr) {
      // Streaming decompression (VerifyRecord) refuses frames whose window is
      // above windowLogMax; one-shot decompression (DecodeItem) does not look
      // at it. Lift the limit so both accept exactly the same frames. Memory
      // stays bounded: zstd sizes its window buffer by min(window, content
      // size), and the content size was checked against kMaxBlobBytes.
      ZSTD_bounds b = ZSTD_dParam_getBounds(ZSTD_d_windowLogMax);
      if (!ZSTD_isError(b.error)) ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, b.upperBound);
    }
    return d;
  }());
  return ctx.get();
}

// Output buffer for streaming decompression in VerifyRecord.
char* ThreadChunk(size_t* size) {
  static const size_t kChunk = ZSTD_DStreamOutSize();
  thread_local std::unique_ptr<char[]> chunk(new (std::nothrow) char[kChunk]);
  *size = kChunk;
  return chunk.get();
}

// ---------------------------------------------------------------------------
// Content hashing: XXH3-64 over every field, each string/blob preceded by its
// length and each list by its count (all as 8-byte little-endian integers),
// in record order. Small fields are gathered in a local buffer; an item whose
// whole content fits in it is hashed in one shot. XXH3's streaming and
// one-shot forms give the same result for the same bytes, however split.

class Hasher {
 public:
  void U64(uint64_t v) {
    char b[8];
    for (int i = 0; i < 8; ++i) b[i] = char(v >> (8 * i));
    Bytes(b, 8);
  }
  void Str(std::string_view s) {
    U64(s.size());
    Bytes(s.data(), s.size());
  }
  void Bytes(const char* p, size_t n) {
    if (n <= kBuf - used_) {
      if (n != 0) std::memcpy(buf_ + used_, p, n);
      used_ += n;
      return;
    }
    Spill();
    if (n < kBuf) {
      std::memcpy(buf_, p, n);
      used_ = n;
    } else {
      XXH3_64bits_update(&state_, p, n);
    }
  }
  uint64_t Finish() {
    if (!streaming_) return XXH3_64bits(buf_, used_);
    Spill();
    return XXH3_64bits_digest(&state_);
  }

 private:
  void Spill() {
    if (!streaming_) {
      XXH3_64bits_reset(&state_);
      streaming_ = true;
    }
    if (used_ != 0) XXH3_64bits_update(&state_, buf_, used_);
    used_ = 0;
  }

  static constexpr size_t kBuf = 1024;
  XXH3_state_t state_;
  bool streaming_ = false;
  size_t used_ = 0;
  char buf_[kBuf];
};

// ---------------------------------------------------------------------------
// Field walking. A visitor receives the fields in record order:
//   MessageClass, Time x3 (created, modified, received), Flags, Keywords,
//   Subject, Sender, RecipientCount, Recipient xN, MessageId, SourceName,
//   Message.
// WalkFields() walks a stored field section, validating its structure;
// WalkItem() walks an in-memory Item (every blob "stored raw").

struct BlobRef {
  uint64_t raw_size = 0;
  uint8_t codec = kCodecRaw;
  std::string_view stored;
};

class FieldReader {
 public:
  explicit FieldReader(std::string_view fields) : r_(fields) {}

  Status String(const char* what, std::string_view* out) {
    if (!r_.GetLengthPrefixed(out)) return Bad("bad length for", what);
    return Status::Ok();
  }
  Status Time(const char* what, int64_t* out) {
    uint64_t u = 0;
    if (!r_.GetVarint64(&u)) return Bad("bad varint for", what);
    *out = ZigZagDecode(u);
    return Status::Ok();
  }
  Status Flags(const char* what, uint32_t* out) {
    if (!r_.GetVarint32(out)) return Bad("bad varint for", what);
    return Status::Ok();
  }
  // A count of entries that each take at least `min_entry_bytes`: a count
  // the rest of the record cannot hold is rejected before anything is sized
  // by it.
  Status Count(const char* what, size_t min_entry_bytes, uint64_t* n) {
    if (!r_.GetVarint64(n)) return Bad("bad varint for number of", what);
    if (*n > r_.remaining() / min_entry_bytes) {
      return Corrupt("number of " + std::string(what) + " (" + std::to_string(*n) +
                     ") does not fit in the record");
    }
    return Status::Ok();
  }
  // A blob: varint raw size, u8 codec, length-prefixed stored bytes. Checks
  // everything short of decompressing: the size limit, the codec, that raw
  // blobs have their declared size, and that compressed blobs are smaller
  // than their raw size and hold exactly one zstd frame whose header declares
  // the raw size.
  Status Blob(const char* what, BlobRef* b) {
    if (!r_.GetVarint64(&b->raw_size)) return Bad("bad raw size for", what);
    if (b->raw_size > kMaxBlobBytes) {
      return Corrupt(std::string(what) + " declares " + std::to_string(b->raw_size) +
                     " bytes, more than the limit of " + std::to_string(kMaxBlobBytes));
    }
    if (!r_.GetU8(&b->codec)) return Bad("missing codec for", what);
    if (!r_.GetLengthPrefixed(&b->stored)) return Bad("bad stored length for", what);
    const std::string_view s = b->stored;
    switch (b->codec) {
      case kCodecRaw:
        if (s.size() != b->raw_size) {
          return Corrupt(std::string(what) + " is stored raw with " + std::to_string(s.size()) +
                         " bytes but declares " + std::to_string(b->raw_size));
        }
        return Status::Ok();
      case kCodecZstd: {
        if (s.size() >= b->raw_size) {
          return Corrupt("compressed " + std::string(what) + " (" + std::to_string(s.size()) +
                         " bytes) is not smaller than its declared raw size " +
                         std::to_string(b->raw_size));
        }
        const unsigned long long content = ZSTD_getFrameContentSize(s.data(), s.size());
        if (content == ZSTD_CONTENTSIZE_ERROR || content == ZSTD_CONTENTSIZE_UNKNOWN) {
          return Corrupt(std::string(what) + " is not a zstd frame with a known size");
        }
        if (content != b->raw_size) {
          return Corrupt("zstd frame of " + std::string(what) + " holds " + std::to_string(content) +
                         " bytes but the record declares " + std::to_string(b->raw_size));
        }
        const size_t frame = ZSTD_findFrameCompressedSize(s.data(), s.size());
        if (ZSTD_isError(frame) || frame != s.size()) {
          return Corrupt("zstd frame of " + std::string(what) + " is truncated or followed by junk");
        }
        return Status::Ok();
      }
      default:
        return Corrupt("unknown codec " + std::to_string(b->codec) + " for " + what);
    }
  }
  Status Finish() {
    if (!r_.empty()) {
      return Corrupt(std::to_string(r_.remaining()) + " trailing bytes after the last field");
    }
    return Status::Ok();
  }

 private:
  static Status Bad(const char* problem, const char* what) {
    return Corrupt(std::string(problem) + " " + what);
  }
  ByteReader r_;
};

template <class Visitor>
Status WalkFields(std::string_view fields, Visitor& v) {
  FieldReader r(fields);
  std::string_view s;
  MBX_RETURN_IF_ERROR(r.String("message class", &s));
  v.MessageClass(s);
  static constexpr const char* kTimeNames[3] = {"created time", "modified time", "received time"};
  for (int i = 0; i < 3; ++i) {
    int64_t t = 0;
    MBX_RETURN_IF_ERROR(r.Time(kTimeNames[i], &t));
    v.Time(i, t);
  }
  uint32_t flags = 0;
  MBX_RETURN_IF_ERROR(r.Flags("item flags", &flags));
  v.Flags(flags);
  MBX_RETURN_IF_ERROR(r.Flags("keywords", &flags));
  v.Keywords(flags);
  MBX_RETURN_IF_ERROR(r.String("subject", &s));
  v.Subject(s);
  MBX_RETURN_IF_ERROR(r.String("sender", &s));
  v.Sender(s);
  uint64_t n = 0;
  MBX_RETURN_IF_ERROR(r.Count("recipients", kMinRecipientBytes, &n));
  v.RecipientCount(n);
  for (uint64_t i = 0; i < n; ++i) {
    MBX_RETURN_IF_ERROR(r.String("recipient", &s));
    v.Recipient(s);
  }
  MBX_RETURN_IF_ERROR(r.String("message id", &s));
  v.MessageId(s);
  MBX_RETURN_IF_ERROR(r.String("source name", &s));
  v.SourceName(s);
  BlobRef blob;
  MBX_RETURN_IF_ERROR(r.Blob("message", &blob));
  MBX_RETURN_IF_ERROR(v.Message(blob));
  return r.Finish();
}

BlobRef RawBlob(std::string_view data) { return BlobRef{data.size(), kCodecRaw, data}; }

template <class Visitor>
Status WalkItem(const Item& item, Visitor& v) {
  v.MessageClass(item.message_class);
  v.Time(0, item.created.time_since_epoch().count());
  v.Time(1, item.modified.time_since_epoch().count());
  v.Time(2, item.received.time_since_epoch().count());
  v.Flags(item.flags);
  v.Keywords(item.keywords);
  v.Subject(item.subject);
  v.Sender(item.sender);
  v.RecipientCount(item.recipients.size());
  for (const std::string& r : item.recipients) v.Recipient(r);
  v.MessageId(item.message_id);
  v.SourceName(item.source_name);
  return v.Message(RawBlob(item.mime));
}

// Structure pass and InspectRecord: keeps views of the message class and
// subject and adds up the logical size (as Item::LogicalSize()).
struct InspectVisitor {
  std::string_view message_class;
  std::string_view subject;
  uint64_t logical_bytes = 5 * 8;  // three timestamps, flags, keywords

  void MessageClass(std::string_view s) {
    message_class = s;
    logical_bytes += s.size();
  }
  void Time(int, int64_t) {}
  void Flags(uint32_t) {}
  void Keywords(uint32_t) {}
  void Subject(std::string_view s) {
    subject = s;
    logical_bytes += s.size();
  }
  void Sender(std::string_view s) { logical_bytes += s.size(); }
  void RecipientCount(uint64_t) {}
  void Recipient(std::string_view s) { logical_bytes += s.size(); }
  void MessageId(std::string_view s) { logical_bytes += s.size(); }
  void SourceName(std::string_view s) { logical_bytes += s.size(); }
  Status Message(const BlobRef& b) {
    logical_bytes += b.raw_size;
    return Status::Ok();
  }
};

// Hashes the logical content. Raw blobs are hashed in place; zstd blobs (only
// in records that passed the structure pass) are decompressed a chunk at a
// time into a per-thread buffer and hashed as they come, so verifying an item
// allocates nothing however large it is.
class HashVisitor {
 public:
  void MessageClass(std::string_view s) { h_.Str(s); }
  void Time(int, int64_t t) { h_.U64(uint64_t(t)); }
  void Flags(uint32_t f) { h_.U64(f); }
  void Keywords(uint32_t k) { h_.U64(k); }
  void Subject(std::string_view s) { h_.Str(s); }
  void Sender(std::string_view s) { h_.Str(s); }
  void RecipientCount(uint64_t n) { h_.U64(n); }
  void Recipient(std::string_view s) { h_.Str(s); }
  void MessageId(std::string_view s) { h_.Str(s); }
  void SourceName(std::string_view s) { h_.Str(s); }
  Status Message(const BlobRef& b) { return Blob("message", b); }
  uint64_t Finish() { return h_.Finish(); }

 private:
  Status Blob(const char* what, const BlobRef& b) {
    h_.U64(b.raw_size);
    if (b.codec == kCodecRaw) {
      h_.Bytes(b.stored.data(), b.stored.size());
      return Status::Ok();
    }
    ZSTD_DCtx* dctx = ThreadDCtx();
    size_t chunk_size = 0;
    char* chunk = ThreadChunk(&chunk_size);
    if (dctx == nullptr || chunk == nullptr) {
      return Status::Internal("out of memory: cannot allocate a zstd decompression context");
    }
    ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
    ZSTD_inBuffer in{b.stored.data(), b.stored.size(), 0};
    uint64_t produced = 0;
    for (;;) {
      ZSTD_outBuffer out{chunk, chunk_size, 0};
      const size_t ret = ZSTD_decompressStream(dctx, &out, &in);
      if (ZSTD_isError(ret)) {
        return Corrupt("cannot decompress " + std::string(what) + ": " + ZSTD_getErrorName(ret));
      }
      produced += out.pos;
      if (produced > b.raw_size) {
        return Corrupt(std::string(what) + " decompresses to more than its declared " +
                       std::to_string(b.raw_size) + " bytes");
      }
      h_.Bytes(chunk, out.pos);
      if (ret == 0) break;  // frame complete and flushed
      if (in.pos == in.size && out.pos < out.size) {
        return Corrupt("zstd frame of " + std::string(what) + " is truncated");
      }
    }
    if (in.pos != in.size || produced != b.raw_size) {
      return Corrupt(std::string(what) + " decompresses to " + std::to_string(produced) +
                     " bytes instead of the declared " + std::to_string(b.raw_size));
    }
    return Status::Ok();
  }

  Hasher h_;
};

// Builds the Item (DecodeItem). Blobs are decompressed one-shot into their
// final strings, sized by the declared (and already checked) raw size.
class BuildVisitor {
 public:
  explicit BuildVisitor(Item* item) : item_(item) {}
  void MessageClass(std::string_view s) { item_->message_class.assign(s); }
  void Time(int i, int64_t t) {
    const Timestamp ts{std::chrono::microseconds(t)};
    if (i == 0) item_->created = ts;
    else if (i == 1) item_->modified = ts;
    else item_->received = ts;
  }
  void Flags(uint32_t f) { item_->flags = f; }
  void Keywords(uint32_t k) { item_->keywords = k; }
  void Subject(std::string_view s) { item_->subject.assign(s); }
  void Sender(std::string_view s) { item_->sender.assign(s); }
  void RecipientCount(uint64_t n) { item_->recipients.reserve(size_t(n)); }
  void Recipient(std::string_view s) { item_->recipients.emplace_back(s); }
  void MessageId(std::string_view s) { item_->message_id.assign(s); }
  void SourceName(std::string_view s) { item_->source_name.assign(s); }
  Status Message(const BlobRef& b) { return Materialize("message", b, &item_->mime); }

 private:
  static Status Materialize(const char* what, const BlobRef& b, std::string* out) {
    if (b.codec == kCodecRaw) {
      out->assign(b.stored);
      return Status::Ok();
    }
    ZSTD_DCtx* dctx = ThreadDCtx();
    if (dctx == nullptr) {
      return Status::Internal("out of memory: cannot allocate a zstd decompression context");
    }
    out->resize(size_t(b.raw_size));
    const size_t n =
        ZSTD_decompressDCtx(dctx, out->data(), out->size(), b.stored.data(), b.stored.size());
    if (ZSTD_isError(n)) {
      return Corrupt("cannot decompress " + std::string(what) + ": " + ZSTD_getErrorName(n));
    }
    if (n != b.raw_size) {
      return Corrupt(std::string(what) + " decompresses to " + std::to_string(n) +
                     " bytes instead of the declared " + std::to_string(b.raw_size));
    }
    return Status::Ok();
  }

  Item* item_;
};

// ---------------------------------------------------------------------------
// Envelope: header and trailer.

struct Envelope {
  uint8_t version = 0;
  uint64_t content_hash = 0;
  std::string_view fields;
};

// Checks, in order: minimum size, magic, version, (reserved) flags, length,
// checksum.
Status OpenEnvelope(std::string_view record, Envelope* env) {
  if (record.size() < kMinRecordBytes) {
    return Corrupt("record too short (" + std::to_string(record.size()) + " bytes, minimum " +
                   std::to_string(kMinRecordBytes) + ")");
  }
  if (std::memcmp(record.data() + kMagicOffset, kMagic, sizeof(kMagic)) != 0) {
    return Corrupt("bad magic (not an item record)");
  }
  const uint8_t version = uint8_t(record[kVersionOffset]);
  if (version != kVersion) return Corrupt("unsupported version " + std::to_string(version));
  const uint8_t flags = uint8_t(record[kFlagsOffset]);
  if (flags != 0) return Corrupt("unknown record flags " + std::to_string(flags));
  const uint32_t length = GetFixed32(record.data() + kLengthOffset);
  if (length != record.size()) {
    return Corrupt("length field says " + std::to_string(length) + " bytes but the record has " +
                   std::to_string(record.size()));
  }
  const size_t body_end = record.size() - kTrailerBytes;
  if (GetFixed64(record.data() + body_end) != XXH3_64bits(record.data(), body_end)) {
    return Corrupt("checksum mismatch");
  }
  env->version = version;
  env->content_hash = GetFixed64(record.data() + kContentHashOffset);
  env->fields = record.substr(kHeaderBytes, body_end - kHeaderBytes);
  return Status::Ok();
}

Status ContentHashMismatch() { return Corrupt("content hash mismatch"); }

// ---------------------------------------------------------------------------
// Encoding.

// Appends a blob. With a compression context, zstd compresses straight into
// `out` with room for raw.size() - 1 bytes only, so an incompressible blob
// fails fast (and is then stored raw) and a compressible one needs no copy
// beyond shifting it over if its length prefix came out shorter than the
// room reserved for it.
void PutBlob(std::string* out, std::string_view raw, ZSTD_CCtx* cctx, int level) {
  PutVarint64(out, raw.size());
  if (cctx != nullptr && raw.size() > 1) {
    const size_t limit = raw.size() - 1;
    const size_t prefix_room = VarintLength(limit);
    const size_t codec_pos = out->size();
    out->resize(codec_pos + 1 + prefix_room + limit);
    char* dst = out->data() + codec_pos + 1 + prefix_room;
    const size_t c = ZSTD_compressCCtx(cctx, dst, limit, raw.data(), raw.size(), level);
    if (!ZSTD_isError(c) && c < raw.size()) {
      char* p = out->data() + codec_pos;
      p[0] = char(kCodecZstd);
      const size_t prefix = EncodeVarintAt(p + 1, c);
      if (prefix < prefix_room) std::memmove(p + 1 + prefix, dst, c);
      out->resize(codec_pos + 1 + prefix + c);
      return;
    }
    out->resize(codec_pos);  // incompressible (or zstd failed): store raw
  }
  out->push_back(char(kCodecRaw));
  PutLengthPrefixed(out, raw);
}

Status EncodeImpl(const Item& item, const CodecOptions& options, std::string* out) {
  const int level = options.zstd_level;
  if (level < 0 || level > ZSTD_maxCLevel()) {
    return Status::InvalidArgument("zstd level " + std::to_string(level) + " out of range 0.." +
                                   std::to_string(ZSTD_maxCLevel()));
  }
  if (item.mime.size() > kMaxBlobBytes) {
    return Status::InvalidArgument("message is " + std::to_string(item.mime.size()) +
                                   " bytes, more than the limit of " +
                                   std::to_string(kMaxBlobBytes));
  }
  ZSTD_CCtx* cctx = nullptr;
  if (level > 0) {
    cctx = ThreadCCtx();
    if (cctx == nullptr) {
      return Status::Internal("out of memory: cannot allocate a zstd compression context");
    }
  }

  // Room for the worst case (everything stored raw), so compressing in place
  // never reallocates. If that made us allocate far more than the record
  // needed, the excess is given back at the end.
  const uint64_t worst = kHeaderBytes + kTrailerBytes + item.LogicalSize() +
                         10 * (14 + item.recipients.size());
  const bool we_allocate = out->capacity() < worst;
  out->reserve(size_t(worst));

  out->append(kMagic, sizeof(kMagic));
  out->push_back(char(kVersion));
  out->push_back(0);     // reserved flags
  PutFixed32(out, 0);    // length, patched below
  PutFixed64(out, ContentHash(item));
  PutLengthPrefixed(out, item.message_class);
  PutVarint64(out, ZigZagEncode(item.created.time_since_epoch().count()));
  PutVarint64(out, ZigZagEncode(item.modified.time_since_epoch().count()));
  PutVarint64(out, ZigZagEncode(item.received.time_since_epoch().count()));
  PutVarint64(out, item.flags);
  PutVarint64(out, item.keywords);
  PutLengthPrefixed(out, item.subject);
  PutLengthPrefixed(out, item.sender);
  PutVarint64(out, item.recipients.size());
  for (const std::string& r : item.recipients) PutLengthPrefixed(out, r);
  PutLengthPrefixed(out, item.message_id);
  PutLengthPrefixed(out, item.source_name);
  PutBlob(out, item.mime, cctx, level);

  const uint64_t total = uint64_t(out->size()) + kTrailerBytes;
  if (total > UINT32_MAX) {
    out->clear();
    return Status::InvalidArgument("item too large: its record would be " + std::to_string(total) +
                                   " bytes, more than the 4 GiB a record can hold");
  }
  for (int i = 0; i < 4; ++i) (*out)[kLengthOffset + i] = char(total >> (8 * i));
  PutFixed64(out, XXH3_64bits(out->data(), out->size()));

  if (we_allocate && out->capacity() - out->size() > (64u << 10) &&
      out->capacity() - out->size() > out->size() / 4) {
    out->shrink_to_fit();
  }
  return Status::Ok();
}

}  // namespace

// ---------------------------------------------------------------------------

uint64_t ContentHash(const Item& item) {
  HashVisitor v;
  // Every blob of an in-memory item is "raw": hashing it cannot fail.
  (void)WalkItem(item, v);
  return v.Finish();
}

Status EncodeItem(const Item& item, const CodecOptions& options, std::string* out) {
  out->clear();
  try {
    return EncodeImpl(item, options, out);
  } catch (const std::bad_alloc&) {
    out->clear();
    return Status::Internal("out of memory encoding an item");
  }
}

Result<Item> DecodeItem(std::string_view record) {
  Envelope env;
  MBX_RETURN_IF_ERROR(OpenEnvelope(record, &env));
  InspectVisitor structure;  // validate the whole structure before sizing anything
  MBX_RETURN_IF_ERROR(WalkFields(env.fields, structure));
  try {
    Item item;
    BuildVisitor build(&item);
    MBX_RETURN_IF_ERROR(WalkFields(env.fields, build));
    if (ContentHash(item) != env.content_hash) return ContentHashMismatch();
    return item;
  } catch (const std::bad_alloc&) {
    return Status::Internal("out of memory decoding an item of " +
                            std::to_string(structure.logical_bytes) + " bytes");
  }
}

Result<RecordInfo> InspectRecord(std::string_view record) {
  Envelope env;
  MBX_RETURN_IF_ERROR(OpenEnvelope(record, &env));
  InspectVisitor v;
  MBX_RETURN_IF_ERROR(WalkFields(env.fields, v));
  RecordInfo info;
  info.version = env.version;
  info.content_hash = env.content_hash;
  info.logical_bytes = v.logical_bytes;
  info.message_class.assign(v.message_class);
  info.subject.assign(v.subject);
  return info;
}

Result<uint64_t> VerifyRecord(std::string_view record) {
  auto v = VerifyRecordWithSize(record);
  if (!v.ok()) return v.status();
  return v->content_hash;
}

Result<VerifiedRecord> VerifyRecordWithSize(std::string_view record) {
  Envelope env;
  MBX_RETURN_IF_ERROR(OpenEnvelope(record, &env));
  InspectVisitor structure;
  MBX_RETURN_IF_ERROR(WalkFields(env.fields, structure));
  HashVisitor hash;
  MBX_RETURN_IF_ERROR(WalkFields(env.fields, hash));
  const uint64_t h = hash.Finish();
  if (h != env.content_hash) return ContentHashMismatch();
  return VerifiedRecord{h, structure.logical_bytes};
}

Status RecodeItem(std::string_view record, const CodecOptions& options, std::string* out) {
  // The item is decoded in full before `out` is touched, so `record` may view
  // `*out`.
  MBX_ASSIGN_OR_RETURN(Item item, DecodeItem(record));
  return EncodeItem(item, options, out);
}

}  // namespace mbx
