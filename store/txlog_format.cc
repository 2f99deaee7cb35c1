#include "store/txlog_format.h"

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include <cstdio>

namespace mbx::txlog {

std::string FileName(uint64_t generation) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "E00%08llX.log", static_cast<unsigned long long>(generation));
  return buf;
}

uint64_t ParseFileName(std::string_view name) {
  if (name.size() != 15 || name.substr(0, 3) != "E00" || name.substr(11) != ".log") return 0;
  uint64_t g = 0;
  for (char c : name.substr(3, 8)) {
    int v;
    if (c >= '0' && c <= '9') v = c - '0';
    else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    else return 0;
    g = g * 16 + uint64_t(v);
  }
  return g;
}

void EncodePayloadPieces(const std::vector<const WriteBatch*>& batches, std::string* frame,
                         std::vector<std::string_view>* pieces) {
  frame->clear();
  pieces->clear();
  // First the frame, noting where each large value goes in it (offsets: the
  // frame may move while it grows), then the list.
  struct Cut {
    size_t at;
    std::string_view value;
  };
  std::vector<Cut> cuts;
  uint64_t n = 0;
  for (const WriteBatch* b : batches) n += b->size();
  PutVarint64(frame, n);
  for (const WriteBatch* b : batches) {
    for (const Mutation& m : b->mutations()) {
      frame->push_back(char(m.op));
      frame->push_back(char(m.db));
      PutLengthPrefixed(frame, m.key);
      if (m.op != Mutation::Op::kPut) continue;
      const std::string_view v = m.bytes();
      if (v.size() < kGatherMinValueBytes) {
        PutLengthPrefixed(frame, v);
      } else {
        PutVarint64(frame, v.size());
        cuts.push_back(Cut{frame->size(), v});
      }
    }
  }
  pieces->reserve(2 * cuts.size() + 1);
  const std::string_view f(*frame);
  size_t from = 0;
  for (const Cut& c : cuts) {
    if (c.at > from) pieces->push_back(f.substr(from, c.at - from));
    pieces->push_back(c.value);
    from = c.at;
  }
  if (from < f.size()) pieces->push_back(f.substr(from));
}

void EncodePayload(const std::vector<const WriteBatch*>& batches, std::string* out) {
  std::string frame;
  std::vector<std::string_view> pieces;
  EncodePayloadPieces(batches, &frame, &pieces);
  for (std::string_view p : pieces) out->append(p);
}

void FrameRecord(uint64_t lsn, std::string_view payload, std::string* out) {
  size_t start = out->size();
  PutFixed32(out, kLogRecordMagic);
  PutFixed32(out, uint32_t(payload.size()));
  PutFixed64(out, lsn);
  out->append(payload.data(), payload.size());
  uint64_t sum = XXH3_64bits(out->data() + start, out->size() - start);
  PutFixed64(out, sum);
}

void FrameHeader(uint64_t lsn, std::span<const std::string_view> payload, std::string* header,
                 std::string* trailer) {
  uint64_t size = 0;
  for (std::string_view p : payload) size += p.size();
  header->clear();
  PutFixed32(header, kLogRecordMagic);
  PutFixed32(header, uint32_t(size));
  PutFixed64(header, lsn);
  XXH3_state_t st;
  XXH3_64bits_reset(&st);
  XXH3_64bits_update(&st, header->data(), header->size());
  for (std::string_view p : payload) XXH3_64bits_update(&st, p.data(), p.size());
  trailer->clear();
  PutFixed64(trailer, XXH3_64bits_digest(&st));
}

namespace {
constexpr char kChkMagic[8] = {'M', 'B', 'X', 'C', 'H', 'K', '0', '1'};
}

std::string EncodeCheckpoint(uint64_t lsn) {
  std::string s(kChkMagic, 8);
  PutFixed64(&s, lsn);
  PutFixed64(&s, XXH3_64bits(s.data(), s.size()));
  return s;
}

Result<uint64_t> DecodeCheckpoint(std::string_view d) {
  if (d.size() != 24 || d.substr(0, 8) != std::string_view(kChkMagic, 8) ||
      GetFixed64(d.data() + 16) != XXH3_64bits(d.data(), 16)) {
    return Status::Corruption("checkpoint file E00.chk is damaged");
  }
  return GetFixed64(d.data() + 8);
}

}  // namespace mbx::txlog
