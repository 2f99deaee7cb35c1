// The indexed properties of an RFC 5322 message (subject, sender,
// recipients, date, Message-ID, MIME structure), extracted with GMime 3.
//
// Import uses these to fill an Item's fields; a message GMime cannot make
// sense of is imported as a raw item (its bytes only) with a warning.
//
// Thread safety: ExtractProps may be called from many threads at once. Each
// call builds and frees its own GMime stream, parser and message (GMime's
// objects are not shared between threads; its charset and iconv helpers are
// thread-safe), and g_mime_init() runs exactly once per process, on the first
// call. g_mime_shutdown() is never called.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/status.h"

namespace mbx::mail {

struct MessageProps {
  std::string subject;  // RFC 2047 decoded, UTF-8; empty when there is none
  // The first From address: "Name <addr>", or "addr" when it has no name.
  std::string sender;
  // The addr-specs of To, Cc and Bcc in that order (groups flattened).
  std::vector<std::string> recipients;
  std::optional<int64_t> date_unix_us;  // Date header, microseconds since 1970 UTC
  std::string message_id;               // without the angle brackets
  // X-MS-Message-Class (as Exchange marks items that are not mail when it
  // exports MIME: "IPM.Appointment", ...); empty when absent.
  std::string message_class;
  // Status and X-Status, where mbox readers (mutt, Pine) keep a message's
  // flags; empty when absent.
  std::string status;
  std::string x_status;
  bool multipart = false;               // the top-level body is a multipart
  // Leaf parts with Content-Disposition: attachment or a file name, plus
  // attached messages (message/rfc822, counted once, not looked into).
  size_t attachment_count = 0;
};

// Parses `rfc5322` (a message's bytes: header block, empty line, body).
// Corruption, with the reason, when it is not a message: "no header block"
// (empty input, or a first line that is not a header field "Name: value"),
// or "GMime could not parse the message".
Result<MessageProps> ExtractProps(std::string_view rfc5322);

}  // namespace mbx::mail
