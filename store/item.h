// An item: one message, appointment, contact, task, note or journal entry in
// a mailbox folder, in its logical (decoded) form. The stored form is produced
// by item_codec.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mbx {

using Timestamp = std::chrono::sys_time<std::chrono::microseconds>;

// Message classes of the default folders (MAPI PR_MESSAGE_CLASS values).
namespace message_class {
inline constexpr std::string_view kNote = "IPM.Note";
inline constexpr std::string_view kAppointment = "IPM.Appointment";
inline constexpr std::string_view kContact = "IPM.Contact";
inline constexpr std::string_view kTask = "IPM.Task";
inline constexpr std::string_view kStickyNote = "IPM.StickyNote";
inline constexpr std::string_view kJournal = "IPM.Activity";
}  // namespace message_class

struct Attachment {
  std::string name;          // file name, e.g. "report.pdf"
  std::string content_type;  // MIME type, e.g. "application/pdf"
  std::string data;          // raw bytes (uncompressed)
  bool operator==(const Attachment&) const = default;
};

// Item flags (bit set).
enum ItemFlags : uint32_t {
  kFlagRead = 1u << 0,
  kFlagFlagged = 1u << 1,
  kFlagAnswered = 1u << 2,
  kFlagDraft = 1u << 3,
};

struct Item {
  std::string message_class;  // e.g. "IPM.Note"; any non-empty string is valid
  Timestamp created{};
  Timestamp modified{};
  Timestamp received{};  // delivery time; for non-mail items equal to created
  uint32_t flags = 0;    // ItemFlags
  std::string subject;
  std::string sender;                   // "Name <addr@example.com>"
  std::vector<std::string> recipients;  // one address per entry
  std::string body;                     // text body (uncompressed)
  std::vector<Attachment> attachments;

  // Sum of the sizes of every field: what a client would see, before
  // compression. Used for "logical bytes" figures.
  uint64_t LogicalSize() const;
  bool operator==(const Item&) const = default;
};

}  // namespace mbx
