// Text for synthetic mailboxes: a Zipf-distributed vocabulary, name lists,
// and a writer that emits sentences, paragraphs, numbers and dates straight
// into a std::string without per-word allocations.
//
// Everything is deterministic: the vocabulary and its sampling table are
// built once (thread-safe static) from fixed lists and a fixed seed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "datagen/random.h"
#include "store/item.h"

namespace mbx::datagen {

// Word ranks 0..size()-1 in decreasing frequency: a list of common English
// (and office) words first, then words built from syllables. Every word is
// 1..kMaxWordLength lowercase letters, stored in its own zero-padded 16-byte
// slot so that it can be copied with one fixed-size memcpy.
//
// Real prose repeats multi-word phrases ("let me know", "as soon as"), which
// is much of why it compresses 3-4x; random word sequences alone would not.
// So the vocabulary also holds phrases (2..5 words, built once from the word
// distribution, in 64-byte slots) with their own Zipf ranking, and a few
// stock sentences that e-mails are full of.
class Vocabulary {
 public:
  static constexpr size_t kSlot = 16;
  static constexpr size_t kMaxWordLength = 14;
  static constexpr size_t kTargetSize = 4096;
  static constexpr double kZipfExponent = 1.0;
  static constexpr size_t kPhraseSlot = 64;
  static constexpr size_t kPhrases = 2048;
  static constexpr double kPhraseZipfExponent = 0.9;

  static const Vocabulary& Get();

  size_t size() const { return lengths_.size(); }
  const char* Slot(uint32_t rank) const { return slots_.data() + kSlot * rank; }
  size_t Length(uint32_t rank) const { return lengths_[rank]; }
  std::string_view Word(uint32_t rank) const { return {Slot(rank), Length(rank)}; }
  double Probability(uint32_t rank) const { return zipf_.Probability(rank); }
  // Ranks below this are the common English words; the rest are made up.
  size_t common_count() const { return common_count_; }
  // Zipf-distributed word rank from 32 uniform random bits.
  uint32_t Sample(uint32_t u) const { return zipf_.Sample(u); }

  size_t phrase_count() const { return phrase_lengths_.size(); }
  const char* PhraseSlot(uint32_t rank) const { return phrase_slots_.data() + kPhraseSlot * rank; }
  size_t PhraseLength(uint32_t rank) const { return phrase_lengths_[rank]; }
  std::string_view Phrase(uint32_t rank) const { return {PhraseSlot(rank), PhraseLength(rank)}; }
  uint32_t SamplePhrase(uint32_t u) const { return phrase_zipf_.Sample(u); }

  // Stock sentences, capitalized and punctuated ("Thanks for the update.").
  std::span<const std::string_view> StockSentences() const;

 private:
  Vocabulary();
  std::vector<char> slots_;
  std::vector<uint8_t> lengths_;
  size_t common_count_ = 0;
  ZipfTable zipf_;
  std::vector<char> phrase_slots_;
  std::vector<uint8_t> phrase_lengths_;
  ZipfTable phrase_zipf_;
};

// Fixed name lists (ASCII).
std::span<const std::string_view> FirstNames();
std::span<const std::string_view> LastNames();
std::span<const std::string_view> Companies();  // "Contoso", "Fabrikam", ...
std::span<const std::string_view> JobTitles();
std::span<const std::string_view> Cities();     // "Springfield, IL"
std::span<const std::string_view> SubjectTopics();

// "Ada" + "Lovelace" -> "ada.lovelace" (letters only, lowercase).
std::string EmailLocalPart(std::string_view first, std::string_view last);
// "Northwind Traders" -> "northwindtraders.example".
std::string CompanyDomain(std::string_view company);

// Appends text to a string. Writes go straight into the string's buffer,
// which grows geometrically; Finish() (or the destructor) trims it to the
// bytes written.
class TextWriter {
 public:
  explicit TextWriter(std::string* out, size_t reserve = 0);
  ~TextWriter() { Finish(); }
  TextWriter(const TextWriter&) = delete;
  TextWriter& operator=(const TextWriter&) = delete;

  size_t size() const { return pos_; }  // bytes of *out written so far
  void Finish();

  void Append(std::string_view s);
  void Put(char c) {
    Ensure(1);
    (*out_)[pos_++] = c;
  }
  void Uint(uint64_t v);
  void UintPadded(uint64_t v, int width);  // zero-padded to `width` digits
  void Decimal(uint64_t hundredths);       // 1234 -> "12.34"
  void Word(Rng& rng, bool capitalize);    // one Zipf word
  void RareWord(Rng& rng, bool capitalize);  // a made-up word, uniformly (names of things)
  void FirstName(Rng& rng);

  // Dates: "2023-04-12", "2023-04-12 14:05:33", "Wed, 12 Apr 2023 14:05",
  // "Wednesday, April 12, 2023 2:05 PM".
  void IsoDate(Timestamp t);
  void IsoDateTime(Timestamp t);
  void MailDate(Timestamp t);
  // "Mon, 3 Jan 2022 10:00:05 +0000": an RFC 5322 date-time in UTC.
  void Rfc5322Date(Timestamp t);
  void LongDateTime(Timestamp t);

  // A sentence of `tokens` words or phrases (first capitalized, commas,
  // final '.', '?' or '!'), with an occasional number or first name.
  void Sentence(Rng& rng, uint32_t tokens);
  // Words separated by spaces, first one capitalized (subjects, titles).
  void Phrase(Rng& rng, uint32_t words);
  // Paragraphs of sentences until about `bytes` more bytes are written
  // (stops at the first sentence end past the mark). When `wrap` > 0, lines
  // are broken at about `wrap` columns and every line after the first starts
  // with `prefix` (e.g. "> " for quoted text).
  void Prose(Rng& rng, size_t bytes, std::string_view prefix = {}, size_t wrap = 0);
  // Starts a new line (with the current prose prefix, if any).
  void NewLine();

 private:
  void Ensure(size_t n) {
    if (pos_ + n > out_->size()) Grow(n);
  }
  void Grow(size_t n);
  void Space();

  // Sentence() token mix, out of 256: phrases, words, then numbers/names.
  static constexpr uint32_t kPhraseCut = 80;
  static constexpr uint32_t kSpecialCut = 252;
  static constexpr uint32_t kCommaCut = 16;  // commas after tokens, out of 256

  std::string* out_;
  size_t pos_;
  size_t line_start_;
  std::string_view prefix_;
  size_t wrap_ = 0;
  const Vocabulary& vocab_;
};

}  // namespace mbx::datagen
