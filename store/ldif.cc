#include "store/ldif.h"

#include <array>
#include <cctype>

namespace mbx {

namespace {

constexpr size_t kLineBytes = 76;  // RFC 2849 suggests folding past 76 columns

bool EqualNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

// "attr: value" or "attr:: base64", folded.
void AppendLine(std::string_view attr, std::string_view value, std::string* out) {
  std::string line(attr);
  if (LdifSafe(value)) {
    line += ": ";
    line += value;
  } else {
    line += ":: ";
    line += Base64Encode(value);
  }
  size_t pos = 0;
  size_t width = kLineBytes;
  while (line.size() - pos > width) {
    out->append(line, pos, width);
    out->append("\n ");
    pos += width;
    width = kLineBytes - 1;  // after the continuation's leading space
  }
  out->append(line, pos, std::string::npos);
  out->push_back('\n');
}

Status LineError(size_t line, const std::string& what) {
  return Status::InvalidArgument("line " + std::to_string(line) + ": " + what);
}

// A logical line (folded lines joined) and where it began.
struct Logical {
  std::string text;
  size_t line = 0;
};

// Splits into logical lines; an empty Logical (text "") marks a blank line
// (a record separator). Comment lines and their continuations are dropped.
Result<std::vector<Logical>> Unfold(std::string_view text) {
  std::vector<Logical> out;
  size_t line_no = 0;
  bool in_comment = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    std::string_view line = text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    pos = end == std::string_view::npos ? text.size() : end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find('\r') != std::string_view::npos) return LineError(line_no, "a carriage return inside the line");
    if (line.empty()) {
      in_comment = false;
      out.push_back({"", line_no});
      continue;
    }
    if (line.front() == ' ') {
      if (in_comment) continue;
      if (out.empty() || out.back().text.empty()) {
        return LineError(line_no, "a continuation line (starting with a space) with no line before it to continue");
      }
      out.back().text.append(line.substr(1));
      continue;
    }
    if (line.front() == '#') {
      in_comment = true;
      continue;
    }
    in_comment = false;
    out.push_back({std::string(line), line_no});
  }
  return out;
}

bool ValidAttributeDescription(std::string_view d) {
  if (d.empty() || !std::isalnum(static_cast<unsigned char>(d.front()))) return false;
  for (char c : d) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != ';' && c != '.') return false;
  }
  return d.back() != ';';
}

// Splits "attr: value" / "attr:: base64" into the description and the value.
Status SplitLine(const Logical& l, std::string* attr, std::string* value) {
  const size_t colon = l.text.find(':');
  if (colon == std::string::npos) {
    std::string shown = l.text.substr(0, 40);
    return LineError(l.line, "expected 'attribute: value', found '" + shown + (l.text.size() > 40 ? "...'" : "'"));
  }
  *attr = l.text.substr(0, colon);
  if (!ValidAttributeDescription(*attr)) {
    return LineError(l.line, "'" + attr->substr(0, 40) + "' is not an attribute name");
  }
  size_t p = colon + 1;
  if (p < l.text.size() && l.text[p] == '<') {
    return LineError(l.line, "URL values ('" + *attr + ":<') are not supported; put the value in the file");
  }
  const bool b64 = p < l.text.size() && l.text[p] == ':';
  if (b64) ++p;
  while (p < l.text.size() && l.text[p] == ' ') ++p;
  std::string_view rest = std::string_view(l.text).substr(p);
  if (!b64) {
    *value = std::string(rest);
    return Status::Ok();
  }
  if (!Base64Decode(rest, value)) {
    return LineError(l.line, "the base64 value of " + *attr + " is damaged (not base64, or cut short)");
  }
  return Status::Ok();
}

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

}  // namespace

std::vector<std::string> LdifEntry::Values(std::string_view attr) const {
  std::vector<std::string> out;
  for (const auto& [a, v] : attrs) {
    if (EqualNoCase(a, attr)) out.push_back(v);
  }
  return out;
}

Result<std::string> LdifEntry::One(std::string_view attr) const {
  auto v = Values(attr);
  if (v.size() == 1) return v.front();
  const std::string where = line ? "line " + std::to_string(line) + ": " : "";
  if (v.empty()) return Status::InvalidArgument(where + "entry " + dn + " has no " + std::string(attr));
  return Status::InvalidArgument(where + "entry " + dn + " has " + std::to_string(v.size()) + " values of " +
                                 std::string(attr) + ", expected one");
}

bool LdifEntry::Has(std::string_view attr, std::string_view value) const {
  const bool no_case = EqualNoCase(attr, "objectClass");
  for (const auto& [a, v] : attrs) {
    if (EqualNoCase(a, attr) && (no_case ? EqualNoCase(v, value) : v == value)) return true;
  }
  return false;
}

bool LdifSafe(std::string_view v) {
  if (v.empty()) return true;
  const unsigned char first = static_cast<unsigned char>(v.front());
  if (first == ' ' || first == ':' || first == '<') return false;
  if (v.back() == ' ') return false;
  for (char ch : v) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c == 0 || c == '\n' || c == '\r' || c > 127) return false;
  }
  return true;
}

void AppendLdifEntry(const LdifEntry& e, std::string* out) {
  AppendLine("dn", e.dn, out);
  for (const auto& [a, v] : e.attrs) AppendLine(a, v, out);
  out->push_back('\n');
}

std::string WriteLdif(const std::vector<LdifEntry>& entries, std::string_view comment) {
  std::string out = "version: 1\n";
  size_t pos = 0;
  while (pos < comment.size()) {
    size_t end = comment.find('\n', pos);
    if (end == std::string_view::npos) end = comment.size();
    // Folded like any line: the continuation of a comment is comment too.
    std::string_view line = comment.substr(pos, end - pos);
    size_t width = kLineBytes - 2;  // after "# "
    out += "# ";
    while (line.size() > width) {
      out.append(line.substr(0, width));
      out += "\n ";
      line.remove_prefix(width);
      width = kLineBytes - 1;
    }
    out.append(line);
    out += "\n";
    pos = end + 1;
  }
  out += "\n";
  for (const auto& e : entries) AppendLdifEntry(e, &out);
  return out;
}

Result<std::vector<LdifEntry>> ParseLdif(std::string_view text) {
  MBX_ASSIGN_OR_RETURN(std::vector<Logical> lines, Unfold(text));
  std::vector<LdifEntry> out;
  size_t i = 0;
  auto skip_blank = [&] {
    while (i < lines.size() && lines[i].text.empty()) ++i;
  };
  skip_blank();
  if (i < lines.size() && lines[i].text.rfind("version:", 0) == 0) {
    std::string attr, value;
    MBX_RETURN_IF_ERROR(SplitLine(lines[i], &attr, &value));
    if (value != "1") return LineError(lines[i].line, "LDIF version '" + value + "' is not supported (only 1)");
    ++i;
  }
  while (true) {
    skip_blank();
    if (i >= lines.size()) break;
    LdifEntry e;
    e.line = lines[i].line;
    std::string attr, value;
    MBX_RETURN_IF_ERROR(SplitLine(lines[i], &attr, &value));
    if (!EqualNoCase(attr, "dn")) {
      return LineError(lines[i].line, "an entry must start with 'dn:', found '" + attr + ":'");
    }
    e.dn = std::move(value);
    ++i;
    for (; i < lines.size() && !lines[i].text.empty(); ++i) {
      MBX_RETURN_IF_ERROR(SplitLine(lines[i], &attr, &value));
      if (EqualNoCase(attr, "changetype") || EqualNoCase(attr, "control")) {
        return LineError(lines[i].line, "change records ('" + attr + ":') are not supported, only entries");
      }
      if (EqualNoCase(attr, "dn")) {
        return LineError(lines[i].line, "a second 'dn:' inside entry " + e.dn + " (a blank line is missing?)");
      }
      e.Add(std::move(attr), std::move(value));
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::string Base64Encode(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const uint32_t n = uint32_t(uint8_t(data[i])) << 16 | uint32_t(uint8_t(data[i + 1])) << 8 | uint8_t(data[i + 2]);
    out += kAlphabet[n >> 18];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i + 1 == data.size()) {
    const uint32_t n = uint32_t(uint8_t(data[i])) << 16;
    out += kAlphabet[n >> 18];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == data.size()) {
    const uint32_t n = uint32_t(uint8_t(data[i])) << 16 | uint32_t(uint8_t(data[i + 1])) << 8;
    out += kAlphabet[n >> 18];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

bool Base64Decode(std::string_view text, std::string* out) {
  static const std::array<int8_t, 256> kValue = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    for (size_t k = 0; k < kAlphabet.size(); ++k) t[uint8_t(kAlphabet[k])] = int8_t(k);
    return t;
  }();
  out->clear();
  if (text.size() % 4 != 0) return false;
  out->reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[i + k];
      if (c == '=' && last && k >= 2) {
        v[k] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) return false;  // '=' only at the very end
      v[k] = kValue[uint8_t(c)];
      if (v[k] < 0) return false;
    }
    const uint32_t n = uint32_t(v[0]) << 18 | uint32_t(v[1]) << 12 | uint32_t(v[2]) << 6 | uint32_t(v[3]);
    out->push_back(char(n >> 16));
    if (pad < 2) out->push_back(char((n >> 8) & 0xff));
    if (pad < 1) out->push_back(char(n & 0xff));
    // Non-canonical encodings (bits set in the padding) are damage.
    if ((pad == 1 && (n & 0xff) != 0) || (pad == 2 && (n & 0xffff) != 0)) return false;
  }
  return true;
}

}  // namespace mbx
