#include "datagen/mime_render.h"

#include "datagen/text_gen.h"

namespace mbx::datagen {
namespace {

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void AppendHex(uint64_t v, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int shift = 60; shift >= 0; shift -= 4) out->push_back(kHex[(v >> shift) & 0xf]);
}

void Header(std::string* out, std::string_view name, std::string_view value) {
  out->append(name);
  out->append(": ");
  out->append(value);
  out->push_back('\n');
}

// A header whose value is a list, folded after each comma so no line runs
// past the 998-character limit of RFC 5322 however many entries there are.
void ListHeader(std::string* out, std::string_view name, const std::vector<std::string>& values) {
  out->append(name);
  out->append(": ");
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out->append(",\n ");
    out->append(values[i]);
  }
  out->push_back('\n');
}

// Appends a text body. RFC 5322 (2.1.1) and the 8bit transfer encoding
// (RFC 2045, 2.8) allow no line longer than 998 octets; generated prose can
// run a paragraph past that, so such a line is broken at its last space
// within the limit (or, if it has none, at the limit, before any UTF-8
// sequence the limit would split).
void AppendText(std::string_view text, std::string* out) {
  constexpr size_t kMaxLine = 998;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    const size_t line = nl == std::string_view::npos ? text.size() : nl;
    if (line <= kMaxLine) {
      const size_t n = nl == std::string_view::npos ? text.size() : nl + 1;
      out->append(text.substr(0, n));
      text.remove_prefix(n);
      continue;
    }
    const size_t space = text.rfind(' ', kMaxLine);
    const bool at_space = space != std::string_view::npos && space > 0;
    size_t cut = at_space ? space : kMaxLine;
    // Not inside a UTF-8 sequence (continuation bytes are 10xxxxxx).
    while (!at_space && cut > 1 && (uint8_t(text[cut]) & 0xC0) == 0x80) --cut;
    out->append(text.substr(0, cut));
    out->push_back('\n');
    text.remove_prefix(at_space ? cut + 1 : cut);
  }
}

}  // namespace

void AppendBase64Lines(std::string_view data, std::string* out) {
  constexpr size_t kLineChars = 76;  // 57 input bytes a line
  out->reserve(out->size() + (data.size() + 2) / 3 * 4 + data.size() / 57 + 2);
  size_t col = 0;
  auto put = [&](char c) {
    out->push_back(c);
    if (++col == kLineChars) {
      out->push_back('\n');
      col = 0;
    }
  };
  size_t i = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  for (; i + 3 <= data.size(); i += 3) {
    const uint32_t v = uint32_t(p[i]) << 16 | uint32_t(p[i + 1]) << 8 | p[i + 2];
    put(kBase64[v >> 18]);
    put(kBase64[(v >> 12) & 63]);
    put(kBase64[(v >> 6) & 63]);
    put(kBase64[v & 63]);
  }
  if (i < data.size()) {
    const bool two = i + 1 < data.size();
    const uint32_t v = uint32_t(p[i]) << 16 | (two ? uint32_t(p[i + 1]) << 8 : 0);
    put(kBase64[v >> 18]);
    put(kBase64[(v >> 12) & 63]);
    put(two ? kBase64[(v >> 6) & 63] : '=');
    put('=');
  }
  if (col != 0) out->push_back('\n');
}

void RenderMime(const Item& item, std::string_view body, const std::vector<Attachment>& attachments,
                uint64_t boundary_seed, std::string* out) {
  out->clear();
  size_t need = body.size() + 512 + item.subject.size() + item.sender.size();
  for (const auto& r : item.recipients) need += r.size() + 3;
  for (const auto& a : attachments) need += a.data.size() / 3 * 4 + a.data.size() / 57 + 256;
  out->reserve(need);
  {
    std::string date;
    {
      TextWriter w(&date, 40);
      w.Rfc5322Date(item.received);
    }
    Header(out, "Date", date);
  }
  Header(out, "From", item.sender);
  if (!item.recipients.empty()) ListHeader(out, "To", item.recipients);
  Header(out, "Subject", item.subject);
  if (!item.message_id.empty()) Header(out, "Message-ID", "<" + item.message_id + ">");
  if (item.message_class != message_class::kNote) {
    Header(out, "X-MS-Message-Class", item.message_class);
  }
  Header(out, "MIME-Version", "1.0");
  if (attachments.empty()) {
    Header(out, "Content-Type", "text/plain; charset=utf-8");
    Header(out, "Content-Transfer-Encoding", "8bit");
    out->push_back('\n');
    AppendText(body, out);
    return;
  }
  std::string boundary = "=_mbx_";
  AppendHex(boundary_seed, &boundary);
  Header(out, "Content-Type", "multipart/mixed; boundary=\"" + boundary + "\"");
  out->append("\nThis is a multi-part message in MIME format.\n\n--");
  out->append(boundary);
  out->append("\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n");
  AppendText(body, out);
  if (!body.empty() && body.back() != '\n') out->push_back('\n');
  for (const Attachment& a : attachments) {
    out->append("\n--");
    out->append(boundary);
    out->append("\nContent-Type: ");
    out->append(a.content_type);
    out->append("; name=\"");
    out->append(a.name);
    out->append("\"\nContent-Disposition: attachment; filename=\"");
    out->append(a.name);
    out->append("\"\nContent-Transfer-Encoding: base64\n\n");
    AppendBase64Lines(a.data, out);
  }
  out->append("\n--");
  out->append(boundary);
  out->append("--\n");
}

}  // namespace mbx::datagen
