// Small, fast, bit-reproducible random numbers for the data generator.
//
// Everything here is defined by integer arithmetic and IEEE-754 basic
// operations (+ - * / sqrt, frexp/ldexp/floor, which are exact), so a given
// seed yields the same values with any compiler, standard library or libm:
// no std:: distributions (their algorithms are implementation-defined) and
// no std::exp/std::log (libm results may differ in the last bit between
// versions). DetLog/DetExp below are accurate to a few ulps, which is plenty
// for sampling sizes.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace mbx::datagen {

// SplitMix64 finalizer: a bijective 64-bit mixer.
inline uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Derives an independent stream seed from a parent seed and an index (and an
// optional domain tag so that different uses of the same index differ).
inline uint64_t DeriveSeed(uint64_t parent, uint64_t index, uint64_t tag = 0) {
  return Mix64(Mix64(parent ^ Mix64(tag)) + index * 0xd1b54a32d192ed03ull);
}

inline constexpr double kLn2 = 0.6931471805599453094172321;

// Natural logarithm from basic operations only. Returns -inf for x <= 0.
inline double DetLog(double x) {
  if (!(x > 0)) return -std::numeric_limits<double>::infinity();
  if (x == std::numeric_limits<double>::infinity()) return x;
  int e = 0;
  double m = std::frexp(x, &e);  // x = m * 2^e, m in [0.5, 1)
  if (m < 0.70710678118654752440) {
    m *= 2;
    --e;
  }
  // log(m) = 2 atanh(s), s = (m-1)/(m+1), |s| < 0.1716.
  const double s = (m - 1) / (m + 1);
  const double s2 = s * s;
  double term = s;
  double sum = 0;
  for (int k = 0; k < 12; ++k) {
    sum += term / double(2 * k + 1);
    term *= s2;
  }
  return 2 * sum + double(e) * kLn2;
}

// e^x from basic operations only; saturates outside about [-700, 700].
inline double DetExp(double x) {
  if (x != x) return x;
  if (x > 700) x = 700;
  if (x < -700) return 0;
  const double k = std::floor(x / kLn2 + 0.5);
  // Two-part ln 2 keeps the reduction accurate: r = x - k ln2, |r| <= 0.35.
  const double r = (x - k * 0.693145751953125) - k * 1.42860682030941723212e-6;
  double p = 1;
  for (int n = 20; n >= 1; --n) p = 1 + p * r / double(n);
  return std::ldexp(p, int(k));
}

__extension__ typedef unsigned __int128 U128;  // __extension__: quiet -Wpedantic

// xoshiro256** (Blackman & Vigna), seeded through SplitMix64.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    uint64_t x = seed;
    for (auto& w : s_) {
      x += 0x9e3779b97f4a7c15ull;
      uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      w = z ^ (z >> 31);
    }
  }

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  uint32_t Next32() { return uint32_t(Next() >> 32); }

  // Uniform integer in [0, n) (n == 0 gives 0), by Lemire's multiply-shift;
  // the bias (< n / 2^64) is irrelevant here and keeps one draw per call.
  uint64_t Uniform(uint64_t n) {
    return uint64_t((static_cast<U128>(Next()) * n) >> 64);
  }
  // Uniform integer in [lo, hi] (inclusive; hi < lo gives lo).
  uint64_t Range(uint64_t lo, uint64_t hi) { return hi <= lo ? lo : lo + Uniform(hi - lo + 1); }
  // true with probability per_mille / 1000.
  bool PerMille(uint32_t per_mille) { return Uniform(1000) < per_mille; }

  // Uniform double in [0, 1).
  double Uniform01() { return double(Next() >> 11) * 0x1.0p-53; }
  // Uniform double in (0, 1].
  double UniformOpen01() { return double((Next() >> 11) + 1) * 0x1.0p-53; }

  // Standard normal (Marsaglia's polar form of Box–Muller: no trigonometry).
  double Normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u, v, s;
    do {
      u = 2 * Uniform01() - 1;
      v = 2 * Uniform01() - 1;
      s = u * u + v * v;
    } while (s >= 1 || s == 0);
    const double m = std::sqrt(-2 * DetLog(s) / s);
    spare_ = v * m;
    has_spare_ = true;
    return u * m;
  }
  double Normal(double mean, double stddev) { return mean + stddev * Normal(); }
  // exp(N(mu, sigma^2)); `median` = e^mu.
  double LogNormalMedian(double median, double sigma) { return median * DetExp(sigma * Normal()); }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
  double spare_ = 0;
  bool has_spare_ = false;
};

// Clamps a non-negative double to [lo, hi] and converts it without UB.
inline uint64_t ClampToU64(double v, uint64_t lo, uint64_t hi) {
  if (!(v >= double(lo))) return lo;  // also catches NaN
  if (v >= double(hi)) return hi;
  return uint64_t(v);
}

// Zipf distribution over ranks 0..n-1, P(k) proportional to (k+1)^-s: an
// inverse-CDF lookup in a 32-bit fixed-point table, started from a guide
// table indexed by the top bits of the draw (O(1) expected steps, where a
// binary search over a few thousand ranks costs a dozen unpredictable
// branches).
class ZipfTable {
 public:
  ZipfTable() = default;
  ZipfTable(size_t n, double s) {
    if (n == 0) n = 1;
    std::vector<double> weight(n);
    double total = 0;
    for (size_t i = 0; i < n; ++i) {
      weight[i] = DetExp(-s * DetLog(double(i + 1)));
      total += weight[i];
    }
    cdf_.resize(n);
    double acc = 0;
    for (size_t i = 0; i < n; ++i) {
      acc += weight[i];
      cdf_[i] = ClampToU64(acc / total * 4294967296.0, 0, 1ull << 32);
    }
    cdf_[n - 1] = 1ull << 32;
    guide_.resize(size_t(1) << kGuideBits);
    uint32_t i = 0;
    for (size_t b = 0; b < guide_.size(); ++b) {
      const uint64_t lo = uint64_t(b) << (32 - kGuideBits);
      while (cdf_[i] <= lo) ++i;
      guide_[b] = i;
    }
  }

  size_t size() const { return cdf_.size(); }
  // Rank from 32 uniform random bits.
  uint32_t Sample(uint32_t u) const {
    uint32_t i = guide_[u >> (32 - kGuideBits)];
    while (cdf_[i] <= u) ++i;
    return i;
  }
  // Probability of `rank` as represented in the table.
  double Probability(size_t rank) const {
    if (rank >= cdf_.size()) return 0;
    const uint64_t lo = rank == 0 ? 0 : cdf_[rank - 1];
    return double(cdf_[rank] - lo) / 4294967296.0;
  }

 private:
  static constexpr int kGuideBits = 12;
  std::vector<uint64_t> cdf_;  // cdf_[i] = 2^32 * P(rank <= i), rounded down; last = 2^32
  std::vector<uint32_t> guide_;  // guide_[b] = first rank whose cdf_ exceeds b << 20
};

}  // namespace mbx::datagen
