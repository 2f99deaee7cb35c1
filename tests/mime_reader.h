// A strict reader of the RFC 5322 messages datagen's MIME renderer writes
// (datagen/mime_render.h), for the tests: header fields, folded lines, the
// body, multipart bodies split at their boundary, base64 in 76-column lines,
// dates; and CheckRendered, which checks a rendered message against its item.
#pragma once

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/item.h"

namespace mbx::testing {

// A strict reader of the messages the renderer writes: RFC 5322 header
// fields ("Name: value", folded lines starting with white space), a blank
// line, the body; MIME multipart bodies split at their boundary; base64.
// Line ends are "\n" (Maildir files), no line is longer than 998 octets.

inline constexpr size_t kMaxLineOctets = 998;  // RFC 5322, 2.1.1

struct Message {
  std::vector<std::pair<std::string, std::string>> fields;  // name, unfolded value
  std::string body;
  std::string problem;  // why it does not parse; "" if it does

  bool ok() const { return problem.empty(); }
  // The value of the only field named `name` (case-insensitive), if there
  // is exactly one.
  std::optional<std::string> Field(std::string_view name) const {
    std::optional<std::string> found;
    for (const auto& [n, v] : fields) {
      if (n.size() != name.size()) continue;
      bool same = true;
      for (size_t i = 0; i < n.size(); ++i) {
        same = same && std::tolower(static_cast<unsigned char>(n[i])) ==
                           std::tolower(static_cast<unsigned char>(name[i]));
      }
      if (!same) continue;
      if (found) return std::nullopt;  // more than one
      found = v;
    }
    return found;
  }
};

// The longest line of `text` (without its "\n").
inline size_t LongestLine(std::string_view text) {
  size_t longest = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    longest = std::max(longest, nl - start);
    start = nl + 1;
  }
  return longest;
}

inline Message ParseMessage(std::string_view text) {
  Message m;
  if (LongestLine(text) > kMaxLineOctets) {
    m.problem = "a line of " + std::to_string(LongestLine(text)) + " octets";
    return m;
  }
  size_t pos = 0;
  for (;;) {
    const size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) {
      m.problem = "no blank line after the header";
      return m;
    }
    const std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) break;
    if (line.find('\r') != std::string_view::npos || line.find('\0') != std::string_view::npos) {
      m.problem = "CR or NUL in the header";
      return m;
    }
    if (line[0] == ' ' || line[0] == '\t') {
      if (m.fields.empty()) {
        m.problem = "continuation line before any field";
        return m;
      }
      m.fields.back().second += line;  // unfolding removes the line break only
      continue;
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      m.problem = "not a header field: " + std::string(line.substr(0, 60));
      return m;
    }
    for (char c : line.substr(0, colon)) {
      if (c < 33 || c > 126) {
        m.problem = "bad field name: " + std::string(line.substr(0, colon));
        return m;
      }
    }
    std::string_view value = line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
    m.fields.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  }
  m.body = std::string(text.substr(pos));
  return m;
}

// The boundary parameter of a multipart Content-Type value, or "".
inline std::string BoundaryOf(std::string_view content_type) {
  const size_t at = content_type.find("boundary=\"");
  if (at == std::string_view::npos) return "";
  const size_t begin = at + 10;
  const size_t end = content_type.find('"', begin);
  if (end == std::string_view::npos) return "";
  return std::string(content_type.substr(begin, end - begin));
}

// The body parts of a multipart body (RFC 2046, 5.1.1): each delimiter is a
// line "--boundary" (the line break before it belongs to it), the last one
// "--boundary--". Sets *problem if the structure is wrong.
inline std::vector<Message> SplitMultipart(std::string_view body, std::string_view boundary,
                                    std::string* problem) {
  std::vector<Message> parts;
  const std::string delimiter = "--" + std::string(boundary);
  std::vector<size_t> starts;  // offsets of delimiter lines
  size_t pos = 0;
  bool closed = false;
  while (pos < body.size()) {
    size_t nl = body.find('\n', pos);
    if (nl == std::string_view::npos) nl = body.size();
    const std::string_view line = body.substr(pos, nl - pos);
    if (line == delimiter || line == delimiter + "--") {
      if (closed) {
        *problem = "a delimiter after the closing one";
        return {};
      }
      starts.push_back(pos);
      closed = line.size() > delimiter.size();
    }
    pos = nl + 1;
  }
  if (starts.size() < 2 || !closed) {
    *problem = "fewer than one part, or no closing delimiter";
    return {};
  }
  for (size_t i = 0; i + 1 < starts.size(); ++i) {
    const size_t begin = body.find('\n', starts[i]) + 1;
    const size_t end = starts[i + 1] - 1;  // the "\n" before the next delimiter
    if (end < begin) {
      *problem = "an empty part";
      return {};
    }
    parts.push_back(ParseMessage(body.substr(begin, end - begin)));
    if (!parts.back().ok()) {
      *problem = "part " + std::to_string(i) + ": " + parts.back().problem;
      return {};
    }
  }
  return parts;
}

// Decodes base64 written in lines of 76 characters (the last may be
// shorter), padding only at the end. nullopt if it is not that.
inline std::optional<std::string> DecodeBase64Lines(std::string_view text) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string chars;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) return std::nullopt;  // every line ends with "\n"
    const std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.size() > 76 || line.empty() || line.size() % 4 != 0) return std::nullopt;
    if (line.size() < 76 && pos < text.size()) return std::nullopt;  // a short line, not last
    chars += line;
  }
  std::string out;
  for (size_t i = 0; i < chars.size(); i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (size_t j = 0; j < 4; ++j) {
      const char c = chars[i + j];
      if (c == '=') {
        if (i + 4 != chars.size() || j < 2) return std::nullopt;
        ++pad;
        v <<= 6;
        continue;
      }
      if (pad > 0) return std::nullopt;
      const size_t k = kAlphabet.find(c);
      if (k == std::string::npos) return std::nullopt;
      v = v << 6 | uint32_t(k);
    }
    out.push_back(char(v >> 16));
    if (pad < 2) out.push_back(char(v >> 8));
    if (pad < 1) out.push_back(char(v));
  }
  return out;
}

// Parses an RFC 5322 date-time as the renderer writes it ("Mon, 3 Jan 2022
// 10:00:05 +0000"), checking that the day of the week is right.
inline std::optional<Timestamp> ParseDate(const std::string& s) {
  static constexpr std::string_view kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char wday[4] = {}, mon[4] = {}, zone[6] = {};
  int day = 0, year = 0, hh = 0, mm = 0, ss = 0, used = 0;
  if (std::sscanf(s.c_str(), "%3[A-Za-z], %d %3[A-Za-z] %d %2d:%2d:%2d %5[+0-9]%n", wday, &day,
                  mon, &year, &hh, &mm, &ss, zone, &used) != 8 ||
      size_t(used) != s.size() || std::string_view(zone) != "+0000" || s[3] != ',') {
    return std::nullopt;
  }
  const auto month = std::find(std::begin(kMonths), std::end(kMonths), std::string_view(mon));
  if (month == std::end(kMonths) || hh > 23 || mm > 59 || ss > 60) return std::nullopt;
  const std::chrono::year_month_day ymd{std::chrono::year(year),
                                        std::chrono::month(unsigned(month - kMonths) + 1),
                                        std::chrono::day(unsigned(day))};
  if (!ymd.ok()) return std::nullopt;
  const std::chrono::sys_days days(ymd);
  if (std::string_view(wday, 3) != kDays[std::chrono::weekday(days).c_encoding()]) {
    return std::nullopt;
  }
  return Timestamp(days) + std::chrono::hours(hh) + std::chrono::minutes(mm) +
         std::chrono::seconds(ss);
}

// What a rendered message holds, as far as the tests look.
struct Rendered {
  std::string problem;  // "" if the message is well-formed and matches its item
  bool multipart = false;
  std::string text;  // the text/plain body (part)
  struct Part {
    std::string name;
    std::string content_type;
    std::string data;  // decoded
  };
  std::vector<Part> attachments;
};

// Parses `item.mime` and checks it against the item's properties.
inline Rendered CheckRendered(const Item& item) {
  Rendered r;
  const Message m = ParseMessage(item.mime);
  if (!m.ok()) {
    r.problem = m.problem;
    return r;
  }
  auto expect = [&](std::string_view name, const std::optional<std::string>& want) {
    const std::optional<std::string> got = m.Field(name);
    if (got != want && r.problem.empty()) {
      r.problem = std::string(name) + ": '" + got.value_or("(missing or repeated)") +
                  "', expected '" + want.value_or("(none)") + "'";
    }
  };
  const std::optional<std::string> date = m.Field("Date");
  const std::optional<Timestamp> when = date ? ParseDate(*date) : std::nullopt;
  if (!when || *when != std::chrono::floor<std::chrono::seconds>(item.received)) {
    r.problem = "Date '" + date.value_or("(missing)") + "' is not the received time";
    return r;
  }
  expect("From", item.sender);
  std::string to;
  for (const std::string& rcpt : item.recipients) to += (to.empty() ? "" : ", ") + rcpt;
  expect("To", item.recipients.empty() ? std::nullopt : std::optional<std::string>(to));
  expect("Subject", item.subject);
  expect("Message-ID", "<" + item.message_id + ">");
  expect("MIME-Version", "1.0");
  expect("X-MS-Message-Class", item.message_class == message_class::kNote
                                   ? std::nullopt
                                   : std::optional<std::string>(item.message_class));
  if (!r.problem.empty()) return r;
  const std::string type = m.Field("Content-Type").value_or("");
  if (type == "text/plain; charset=utf-8") {
    expect("Content-Transfer-Encoding", "8bit");
    r.text = m.body;
    return r;
  }
  const std::string boundary = BoundaryOf(type);
  if (!type.starts_with("multipart/mixed; ") || boundary.empty()) {
    r.problem = "Content-Type: " + type;
    return r;
  }
  r.multipart = true;
  if (m.body.find(boundary) < m.body.find("--" + boundary)) {
    r.problem = "the boundary occurs in the preamble";
    return r;
  }
  std::vector<Message> parts = SplitMultipart(m.body, boundary, &r.problem);
  if (!r.problem.empty()) return r;
  if (parts[0].Field("Content-Type") != "text/plain; charset=utf-8" ||
      parts[0].Field("Content-Transfer-Encoding") != "8bit") {
    r.problem = "the first part is not the text";
    return r;
  }
  r.text = parts[0].body;
  if (parts.size() < 2) r.problem = "multipart without attachments";
  for (size_t i = 1; i < parts.size() && r.problem.empty(); ++i) {
    const Message& p = parts[i];
    Rendered::Part a;
    const std::string ptype = p.Field("Content-Type").value_or("");
    const std::string disposition = p.Field("Content-Disposition").value_or("");
    const size_t semi = ptype.find("; name=\"");
    if (semi == std::string::npos || !disposition.starts_with("attachment; filename=\"") ||
        p.Field("Content-Transfer-Encoding") != "base64") {
      r.problem = "attachment part headers: " + ptype + " / " + disposition;
      break;
    }
    a.content_type = ptype.substr(0, semi);
    a.name = disposition.substr(22, disposition.size() - 23);
    if (ptype.substr(semi + 8) != a.name + "\"") {
      r.problem = "name and filename differ: " + ptype + " / " + disposition;
      break;
    }
    std::optional<std::string> data = DecodeBase64Lines(p.body);
    if (!data) {
      r.problem = "attachment " + a.name + " is not base64 in 76-column lines";
      break;
    }
    a.data = std::move(*data);
    r.attachments.push_back(std::move(a));
  }
  return r;
}

}  // namespace mbx::testing
