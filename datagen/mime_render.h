// Renders a generated item as the RFC 5322 / MIME message a mail client
// would receive, so generated items are the same kind of thing as imported
// ones (store/item.h: an item keeps its message as RFC 5322 bytes).
//
//   Date, From, To, Subject, Message-ID, MIME-Version headers;
//   X-MS-Message-Class for items that are not IPM.Note (appointments,
//   contacts, ...), as Exchange marks them when it exports MIME;
//   a text/plain body (UTF-8, 8bit, "\n" line ends as Maildir files have),
//   or multipart/mixed with the text first and every attachment base64-
//   encoded in 76-column lines.
//
// Deterministic: the output depends only on the arguments.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "store/item.h"

namespace mbx::datagen {

struct Attachment {
  std::string name;          // file name, e.g. "report.pdf"
  std::string content_type;  // MIME type, e.g. "application/pdf"
  std::string data;          // raw bytes
};

// Appends base64 of `data` to *out in lines of 76 characters, each ended
// by "\n" (RFC 2045).
void AppendBase64Lines(std::string_view data, std::string* out);

// Writes the message of `item` (its properties: dates, sender, recipients,
// subject, message id, message class) with `body` and `attachments` into
// *out, replacing its contents. `boundary_seed` makes the multipart
// boundary unique per item.
void RenderMime(const Item& item, std::string_view body, const std::vector<Attachment>& attachments,
                uint64_t boundary_seed, std::string* out);

}  // namespace mbx::datagen
