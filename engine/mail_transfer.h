// Real mail in and out: import Maildir++ trees and mbox files into mailboxes
// of a store, and export mailboxes as Maildir++ with their original bytes
// and flags.
//
// Import creates one mailbox (and its directory user, homeMDB = the store)
// per source. A Maildir++ root becomes the Inbox, ".A.B" becomes folder B
// under A (".INBOX.X" is X under the Inbox), empty folders included; an
// mbox file goes into the Inbox. Every message keeps its bytes exactly; its
// properties (subject, sender, recipients, date, Message-ID) are extracted
// with GMime, its flags come from the Maildir file name (new/ = Recent) or
// from the Status/X-Status headers of an mbox message. A message GMime
// cannot parse is imported as a raw item (no properties) with a warning;
// nothing is dropped silently. A mailbox is written hidden (moving-in); once
// all of it is durable its user is registered (the commit point) and it is
// made active. A failed import leaves nothing behind, and after a crash
// `recover` (engine/recovery.h) activates a registered mailbox and deletes
// an unregistered one.
//
// Export writes each mailbox as a Maildir++ tree: the Inbox is the root,
// every other folder ".Parent.Child" (children of the Inbox ".INBOX.Child"),
// each message file holding the item's bytes, named from the name it was
// imported with (so a round trip gives the same names) or, for generated
// items, "<received unix time>.I<item id>.mbxmove", with ":2,<flags>".
//
// Both run mailboxes in parallel (oneTBB), one thread per mailbox.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/mailio/mbox.h"
#include "store/organization.h"

namespace mbx::engine {

struct ImportSource {
  std::string user;     // the directory user to create (must not exist)
  std::string maildir;  // a Maildir++ root, or
  std::string mbox;     // an mbox file (its messages go into the Inbox)
};

struct ImportOptions {
  std::string store;  // must exist
  mail::MboxFormat mbox_format = mail::MboxFormat::kMboxrd;
  std::string smtp_domain = "example.com";  // users get USER@DOMAIN
  size_t batch_bytes = 4u << 20;            // per WriteBatch handed to the writer
  int threads = 0;                          // 0 = all cores
};

struct TransferProgress {
  std::atomic<uint64_t> mailboxes_done{0};
  std::atomic<uint64_t> messages{0};
  std::atomic<uint64_t> bytes{0};  // message bytes
};

struct ImportedMailbox {
  std::string user;
  std::string source;
  Guid guid;
  Status status;  // not OK: nothing of this mailbox was kept
  uint64_t folders = 0;
  uint64_t messages = 0;
  uint64_t bytes = 0;          // message bytes
  uint64_t stored_bytes = 0;   // record bytes in the store
  uint64_t raw_messages = 0;   // imported without properties (malformed)
  uint64_t skipped = 0;        // not imported at all (too large, unreadable, not a regular file, a symlink)
  std::vector<std::string> warnings;
};

struct ImportResult {
  std::vector<ImportedMailbox> mailboxes;  // in the order of the sources
  uint64_t messages = 0, bytes = 0, raw_messages = 0, skipped = 0, failed_mailboxes = 0;
  double seconds = 0;
};

// The sources of a --maildir-root: one user per subdirectory (sorted by
// name), named after it; its Maildir is the subdirectory itself, or its
// "Maildir" subfolder when it has one (a home directory layout). A user
// folder or Maildir subfolder that is a symbolic link is skipped, with a line
// in *warnings (when not null).
Result<std::vector<ImportSource>> SourcesFromMaildirRoot(const std::string& root,
                                                         std::vector<std::string>* warnings = nullptr);

// Fails before writing anything if a user already exists, a user name is
// given twice or is not a valid name, or the store is not registered.
Result<ImportResult> ImportMail(Organization& org, const std::vector<ImportSource>& sources,
                                const ImportOptions& options, TransferProgress* progress);

struct ExportOptions {
  int threads = 0;  // 0 = all cores
  // true: each mailbox into OUT/<user>/; false: the single mailbox into OUT.
  bool per_user_dirs = true;
  // fsync every message file and folder before reporting success (slow on
  // many small files); without it a machine crash may lose recent files.
  bool fsync = false;
};

struct ExportedMailbox {
  std::string user;
  std::string dir;
  Status status;  // not OK: the export of this mailbox stopped there
  uint64_t folders = 0;
  uint64_t messages = 0;
  uint64_t bytes = 0;
  std::vector<std::string> problems;  // items that could not be exported (corrupt records)
};

struct ExportResult {
  std::vector<ExportedMailbox> mailboxes;
  uint64_t messages = 0, bytes = 0, problems = 0, failed_mailboxes = 0;
  double seconds = 0;
};

// Exports the mailboxes of `users` (user names, SMTP addresses or mailbox
// GUIDs) from the stores their homeMDB names. `out` must not exist or be
// empty. Fails before writing anything when a user is unknown or its
// homeMDB names no registered store.
Result<ExportResult> ExportMaildir(Organization& org, const std::vector<std::string>& users,
                                   const std::string& out, const ExportOptions& options,
                                   TransferProgress* progress);

// The Maildir file name an item is exported under (see above).
std::string ExportFileName(const Item& item, uint64_t item_id);

}  // namespace mbx::engine
