// Byte-level encoding helpers: fixed-width big-endian integers (for keys that
// must sort numerically under LMDB's memcmp order), little-endian fixed
// integers and LEB128 varints (for record bodies), and a bounds-checked
// reader that never reads past its input.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace mbx {

inline void PutBE32(std::string* dst, uint32_t v) {
  char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
  dst->append(b, 4);
}
inline void PutBE64(std::string* dst, uint64_t v) {
  PutBE32(dst, uint32_t(v >> 32));
  PutBE32(dst, uint32_t(v));
}
inline uint32_t GetBE32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t(u[0]) << 24) | (uint32_t(u[1]) << 16) | (uint32_t(u[2]) << 8) | uint32_t(u[3]);
}
inline uint64_t GetBE64(const char* p) { return (uint64_t(GetBE32(p)) << 32) | GetBE32(p + 4); }

inline void PutFixed32(std::string* dst, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = char(v >> (8 * i));
  dst->append(b, 4);
}
inline void PutFixed64(std::string* dst, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = char(v >> (8 * i));
  dst->append(b, 8);
}
inline uint32_t GetFixed32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | u[i];
  return v;
}
inline uint64_t GetFixed64(const char* p) {
  return uint64_t(GetFixed32(p)) | (uint64_t(GetFixed32(p + 4)) << 32);
}

inline void PutVarint64(std::string* dst, uint64_t v) {
  while (v >= 0x80) {
    dst->push_back(char((v & 0x7f) | 0x80));
    v >>= 7;
  }
  dst->push_back(char(v));
}
inline void PutLengthPrefixed(std::string* dst, std::string_view s) {
  PutVarint64(dst, s.size());
  dst->append(s.data(), s.size());
}

// Reads from a byte range; every getter returns false (and leaves the reader
// failed) instead of reading out of bounds. Callers check ok() once at the end
// or each call's result.
class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : p_(in.data()), end_(in.data() + in.size()) {}
  bool ok() const { return ok_; }
  size_t remaining() const { return size_t(end_ - p_); }
  bool empty() const { return p_ == end_; }

  bool GetU8(uint8_t* v) {
    if (!Need(1)) return false;
    *v = uint8_t(*p_++);
    return true;
  }
  bool GetFixed32(uint32_t* v) {
    if (!Need(4)) return false;
    *v = mbx::GetFixed32(p_);
    p_ += 4;
    return true;
  }
  bool GetFixed64(uint64_t* v) {
    if (!Need(8)) return false;
    *v = mbx::GetFixed64(p_);
    p_ += 8;
    return true;
  }
  bool GetVarint64(uint64_t* v) {
    uint64_t r = 0;
    for (int shift = 0; shift <= 63; shift += 7) {
      if (!Need(1)) return false;
      uint8_t b = uint8_t(*p_++);
      if (shift == 63 && b > 1) return Fail();
      r |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) {
        *v = r;
        return true;
      }
    }
    return Fail();
  }
  bool GetVarint32(uint32_t* v) {
    uint64_t x;
    if (!GetVarint64(&x)) return false;
    if (x > UINT32_MAX) return Fail();
    *v = uint32_t(x);
    return true;
  }
  bool GetBytes(size_t n, std::string_view* out) {
    if (!Need(n)) return false;
    *out = std::string_view(p_, n);
    p_ += n;
    return true;
  }
  bool GetLengthPrefixed(std::string_view* out) {
    uint64_t n;
    if (!GetVarint64(&n)) return false;
    if (n > remaining()) return Fail();
    return GetBytes(size_t(n), out);
  }

 private:
  bool Need(size_t n) {
    if (!ok_ || size_t(end_ - p_) < n) return Fail();
    return true;
  }
  bool Fail() {
    ok_ = false;
    return false;
  }
  const char* p_;
  const char* end_;
  bool ok_ = true;
};

}  // namespace mbx
