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

// Item flags (bit set). The first six are the Maildir/IMAP flags; kFlagRecent
// marks a message no client has seen yet (Maildir new/, IMAP \Recent).
enum ItemFlags : uint32_t {
  kFlagRead = 1u << 0,      // Maildir S, IMAP \Seen
  kFlagFlagged = 1u << 1,   // F, \Flagged
  kFlagAnswered = 1u << 2,  // R, \Answered
  kFlagDraft = 1u << 3,     // D, \Draft
  kFlagPassed = 1u << 4,    // P (forwarded)
  kFlagTrashed = 1u << 5,   // T, \Deleted
  kFlagRecent = 1u << 6,    // in new/: not yet seen by any client
};

// An item keeps its message as RFC 5322 bytes (`mime`, exactly as delivered,
// generated or imported) together with the properties the store indexes,
// which are extracted from those bytes when the item is created. Non-mail
// items (appointments, contacts, ...) are MIME messages too, as Exchange
// exports them.
struct Item {
  std::string message_class;  // e.g. "IPM.Note"; any non-empty string is valid
  Timestamp created{};
  Timestamp modified{};
  Timestamp received{};  // delivery time; for non-mail items equal to created
  uint32_t flags = 0;    // ItemFlags
  uint32_t keywords = 0; // Maildir keyword letters: bit i = 'a' + i
  std::string subject;   // decoded (UTF-8)
  std::string sender;                   // "Name <addr@example.com>"
  std::vector<std::string> recipients;  // one address per entry
  std::string message_id;               // without the angle brackets
  // The message's name where it came from (a Maildir file's unique part),
  // so an export writes the same file names back; empty for generated and
  // delivered items.
  std::string source_name;
  std::string mime;  // the message: RFC 5322 bytes (uncompressed)

  // Sum of the sizes of every field: what a client would see, before
  // compression. Used for "logical bytes" figures.
  uint64_t LogicalSize() const;
  bool operator==(const Item&) const = default;
};

}  // namespace mbx
