#include "engine/mailio/mime_props.h"

#include <gmime/gmime.h>

#include <cstdlib>
#include <memory>
#include <mutex>
#include <vector>

namespace mbx::mail {

namespace {

struct GObjectUnref {
  void operator()(void* p) const {
    if (p) g_object_unref(p);
  }
};
template <typename T>
using GPtr = std::unique_ptr<T, GObjectUnref>;

Result<MessageProps> ParseProps(std::string_view rfc5322);

// A message that takes GMime through what ExtractProps uses: encoded words
// in two charsets, an address group, a date, a multipart with a base64
// attachment and an attached message.
constexpr std::string_view kWarmUp =
    "From: =?ISO-8859-1?Q?J=F6rg?= <j@example.org>\n"
    "To: a@example.com, Team: b@example.com, c@example.com;\n"
    "Cc: =?UTF-8?B?WsO2ZQ==?= <z@example.com>\nBcc: d@example.com\n"
    "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= and =?ISO-8859-1?Q?caf=E9?=\n"
    "Date: Tue, 10 Jan 2023 15:45:10 +0100\nMessage-ID: <w@example.com>\n"
    "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n"
    "--b\nContent-Type: text/plain; charset=utf-8\n\nhi\n"
    "--b\nContent-Type: application/octet-stream; name=\"x.bin\"\n"
    "Content-Disposition: attachment; filename=\"x.bin\"\nContent-Transfer-Encoding: base64\n\nAAECAw==\n"
    "--b\nContent-Type: message/rfc822\n\nFrom: e@example.com\nSubject: inner\n\nbody\n"
    "--b--\n";

// GMime (GLib) initialises its types, charset tables and allocator lazily,
// synchronised by GLib's own futex-based locks, which ThreadSanitizer does
// not see. So everything lazy is done here, once, under std::call_once
// (which it does see): GSlice is told to use malloc before GLib starts, and
// one representative message is parsed. Calls after this touch no GLib
// state for the first time.
void InitGMimeOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    ::setenv("G_SLICE", "always-malloc", /*overwrite=*/0);
    g_mime_init();
    (void)ParseProps(kWarmUp);
  });
}

// The first line is a header field: a name of printable ASCII characters
// other than ':', optional blanks (obsolete syntax), then ':'.
bool StartsWithHeaderField(std::string_view msg) {
  size_t i = 0;
  while (i < msg.size() && msg[i] > ' ' && msg[i] < 127 && msg[i] != ':') ++i;
  if (i == 0) return false;
  while (i < msg.size() && (msg[i] == ' ' || msg[i] == '\t')) ++i;
  return i < msg.size() && msg[i] == ':';
}

std::string_view OrEmpty(const char* s) { return s ? std::string_view(s) : std::string_view(); }

// GMime hands back UTF-8 (it converts raw 8-bit headers with its fallback
// charsets); this guarantees it, replacing invalid sequences with U+FFFD,
// because callers put these strings into JSON.
std::string Utf8(std::string_view s) {
  if (g_utf8_validate(s.data(), gssize(s.size()), nullptr)) return std::string(s);
  gchar* valid = g_utf8_make_valid(s.data(), gssize(s.size()));
  std::string out(valid);
  g_free(valid);
  return out;
}

// Calls fn(mailbox) for every mailbox of `list`, groups flattened (group
// members are mailboxes: RFC 5322 groups do not nest).
template <typename Fn>
void ForEachMailbox(InternetAddressList* list, Fn&& fn) {
  if (!list) return;
  const int n = internet_address_list_length(list);
  for (int i = 0; i < n; ++i) {
    InternetAddress* ia = internet_address_list_get_address(list, i);
    if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
      fn(INTERNET_ADDRESS_MAILBOX(ia));
    } else if (INTERNET_ADDRESS_IS_GROUP(ia)) {
      InternetAddressList* members = internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia));
      const int m = members ? internet_address_list_length(members) : 0;
      for (int j = 0; j < m; ++j) {
        InternetAddress* member = internet_address_list_get_address(members, j);
        if (INTERNET_ADDRESS_IS_MAILBOX(member)) fn(INTERNET_ADDRESS_MAILBOX(member));
      }
    }
  }
}

size_t CountAttachments(GMimeObject* top) {
  size_t count = 0;
  std::vector<GMimeObject*> stack;
  if (top) stack.push_back(top);
  while (!stack.empty()) {
    GMimeObject* obj = stack.back();
    stack.pop_back();
    if (GMIME_IS_MULTIPART(obj)) {
      GMimeMultipart* mp = GMIME_MULTIPART(obj);
      for (int i = g_mime_multipart_get_count(mp) - 1; i >= 0; --i) {
        if (GMimeObject* child = g_mime_multipart_get_part(mp, i)) stack.push_back(child);
      }
    } else if (GMIME_IS_MESSAGE_PART(obj)) {
      ++count;
    } else if (GMIME_IS_PART(obj)) {
      GMimePart* part = GMIME_PART(obj);
      if (g_mime_part_is_attachment(part) || g_mime_part_get_filename(part)) ++count;
    }
  }
  return count;
}

}  // namespace

Result<MessageProps> ExtractProps(std::string_view rfc5322) {
  if (!StartsWithHeaderField(rfc5322)) {
    return Status::Corruption("not a message: no header block");
  }
  InitGMimeOnce();
  return ParseProps(rfc5322);
}

namespace {

// A header's value without surrounding blanks; empty when absent.
std::string Header(GMimeMessage* msg, const char* name) {
  std::string_view v = OrEmpty(g_mime_object_get_header(GMIME_OBJECT(msg), name));
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r')) v.remove_suffix(1);
  return Utf8(v);
}

Result<MessageProps> ParseProps(std::string_view rfc5322) {
  GPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(rfc5322.data(), rfc5322.size()));
  GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  GPtr<GMimeMessage> msg(g_mime_parser_construct_message(parser.get(), nullptr));
  if (!msg) return Status::Corruption("not a message: GMime could not parse the message");

  MessageProps props;
  props.subject = Utf8(OrEmpty(g_mime_message_get_subject(msg.get())));

  bool have_sender = false;
  ForEachMailbox(g_mime_message_get_from(msg.get()), [&](InternetAddressMailbox* mb) {
    if (have_sender) return;
    const std::string name = Utf8(OrEmpty(internet_address_get_name(INTERNET_ADDRESS(mb))));
    const std::string addr = Utf8(OrEmpty(internet_address_mailbox_get_addr(mb)));
    if (name.empty() && addr.empty()) return;
    have_sender = true;
    if (name.empty()) {
      props.sender = addr;
    } else if (addr.empty()) {
      props.sender = name;
    } else {
      props.sender.assign(name).append(" <").append(addr).append(">");
    }
  });

  for (const GMimeAddressType type :
       {GMIME_ADDRESS_TYPE_TO, GMIME_ADDRESS_TYPE_CC, GMIME_ADDRESS_TYPE_BCC}) {
    ForEachMailbox(g_mime_message_get_addresses(msg.get(), type), [&](InternetAddressMailbox* mb) {
      std::string addr = Utf8(OrEmpty(internet_address_mailbox_get_addr(mb)));
      if (!addr.empty()) props.recipients.push_back(std::move(addr));
    });
  }

  if (GDateTime* date = g_mime_message_get_date(msg.get())) {
    props.date_unix_us =
        int64_t(g_date_time_to_unix(date)) * 1000000 + int64_t(g_date_time_get_microsecond(date));
  }

  std::string_view id = OrEmpty(g_mime_message_get_message_id(msg.get()));
  if (id.size() >= 2 && id.front() == '<' && id.back() == '>') id = id.substr(1, id.size() - 2);
  props.message_id = Utf8(id);
  props.message_class = Header(msg.get(), "X-MS-Message-Class");
  props.status = Header(msg.get(), "Status");
  props.x_status = Header(msg.get(), "X-Status");

  GMimeObject* body = g_mime_message_get_mime_part(msg.get());
  props.multipart = body && GMIME_IS_MULTIPART(body);
  props.attachment_count = CountAttachments(body);
  return props;
}

}  // namespace

}  // namespace mbx::mail
