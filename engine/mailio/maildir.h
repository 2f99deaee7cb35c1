// Maildir++ folders on disk: file-name info (flags and keywords), scanning a
// Maildir++ tree into folders and messages, and writing one with Maildir
// delivery (tmp/ then a link into cur/ or new/).
//
// Layout (as Dovecot and Courier write it): the root is INBOX and holds cur/,
// new/ and tmp/; every other folder is a subdirectory of the root named
// "." + its path joined with '.' (".Archive.2024" is Archive/2024) holding
// its own cur/, new/, tmp/ and an empty `maildirfolder` file. A message is
// one file; its name is "<unique>:2,<flags>" where the flags are the letters
// D F P R S T and the keyword letters a..z. A message in new/ has not been
// seen by any client yet (the Recent flag) and normally has no info part.
// Folder names are returned and written as they are on disk (Dovecot may
// store them in modified UTF-7; no decoding happens here).
//
// Thread safety: the free functions keep no state and are safe from any
// thread. A MaildirWriter is used by one thread at a time.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "store/status.h"

namespace mbx::mail {

// Item flags, the same bits as mbx::ItemFlags in store/item.h (checked in
// maildir.cc). kRecent has no letter: it means the file lives in new/.
inline constexpr uint32_t kSeen = 1;       // S
inline constexpr uint32_t kFlagged = 2;    // F
inline constexpr uint32_t kAnswered = 4;   // R
inline constexpr uint32_t kDraft = 8;      // D
inline constexpr uint32_t kPassed = 16;    // P
inline constexpr uint32_t kTrashed = 32;   // T
inline constexpr uint32_t kRecent = 64;    // in new/

// A Maildir file name taken apart. `keywords` is a bit set: bit i is the
// keyword letter 'a' + i (Dovecot's dovecot-keywords maps letters to names).
struct MaildirName {
  std::string unique;     // everything before the last ':' (the whole name without one)
  uint32_t flags = 0;     // kSeen, kFlagged, ... (never kRecent)
  uint32_t keywords = 0;  // bit i = letter 'a' + i
  bool has_info = false;  // the name carries a ":2," info part
  bool operator==(const MaildirName&) const = default;
};

// Parses "unique:2,FLAGS". Flags may come in any order; characters other
// than D F P R S T and a..z are ignored. A name without ':' or whose info is
// not "2," (e.g. the experimental "1,...") gives no flags and has_info false.
// InvalidArgument for an empty name, a name containing '/' or NUL, a name
// starting with '.', or an empty unique part.
Result<MaildirName> ParseMaildirName(std::string_view file_name);

// "unique:2,<flags>": the flag letters in ASCII order (D F P R S T), then the
// keyword letters a..z. kRecent and unknown bits are not written.
std::string FormatMaildirName(std::string_view unique, uint32_t flags, uint32_t keywords);

struct MaildirMessage {
  std::string path;       // full path of the file
  std::string file_name;  // its name in cur/ or new/
  bool in_new = false;    // in new/ (Recent) rather than cur/
};

struct MaildirFolder {
  std::vector<std::string> path;  // empty = INBOX (the root)
  // The folder's directory; empty for a folder that exists only as the
  // parent of another (".A.B" present without ".A").
  std::string dir;
  std::vector<MaildirMessage> messages;  // sorted by file name, then cur/ before new/
};

// Scans the Maildir++ tree at `root`. The root must be a directory holding
// cur/ and new/ (NotFound / InvalidArgument naming the path otherwise); the
// root itself may be reached through a symlink (it is the path given).
// Returns INBOX first, then every folder sorted by path, implicit parents
// included. Ignored: tmp/, files at the root (dovecot-uidlist, dovecot.index*,
// subscriptions, ...), directories not starting with '.', and files whose
// name starts with '.'. Reported with a line in `*warnings` (when not null):
// folder names with an empty component (".A..B", ".A."), which are skipped,
// and folders without cur/ and new/, which are kept with no messages.
// Nothing outside the tree is followed: a folder, cur/ or new/ that is a
// symbolic link, and a message entry that is a symlink, FIFO, device or
// socket, are skipped with a warning and counted in *skipped (when not null);
// folders inside cur/ and new/ are ignored. IOError when a directory cannot
// be read.
Result<std::vector<MaildirFolder>> ScanMaildir(const std::string& root,
                                               std::vector<std::string>* warnings = nullptr,
                                               uint64_t* skipped = nullptr);

// Reads the message files of one scanned tree without leaving it: each file
// is opened relative to its folder's descriptor (root, then ".A.B", then cur/
// or new/, opened without following symlinks) with O_NOFOLLOW and
// O_NONBLOCK, and must be a regular file by fstat. So a message or folder
// replaced by a symlink, a FIFO or a device after the scan is refused
// (InvalidArgument naming it), a FIFO never blocks, and a file renamed over
// while being read is read whole as it was opened. Use from one thread.
class MaildirFiles {
 public:
  static Result<MaildirFiles> Open(const std::string& root);  // the root ScanMaildir was given
  MaildirFiles(MaildirFiles&& o) noexcept;
  MaildirFiles& operator=(MaildirFiles&&) = delete;
  ~MaildirFiles();
  // The bytes of message `m` of `folder` (both from ScanMaildir of this root).
  Result<std::string> Read(const MaildirFolder& folder, const MaildirMessage& m);

 private:
  MaildirFiles() = default;
  void Close();
  std::string root_;
  int root_fd_ = -1;
  int sub_fd_ = -1;       // cur/ or new/ of sub_dir_
  std::string sub_dir_;
  bool sub_new_ = false;
};

// The whole content of a file (Env::Default()->ReadFile as a Result: NotFound
// or IOError naming the path).
Result<std::string> ReadFile(const std::string& path);

// Writes a Maildir++ tree. Nothing is fsynced per message unless durable is
// set (set_durable); call Sync() once
// at the end to make the folders' directory entries durable.
class MaildirWriter {
 public:
  // `root` must not exist (it is created, with its parents) or be an empty
  // directory: the writer never mixes its messages into existing mail
  // (InvalidArgument otherwise). The root itself becomes INBOX only when
  // AddFolder({}) is called (WriteMessage calls it as needed).
  static Result<MaildirWriter> Create(const std::string& root);

  // Creates the folder's directory with cur/, new/, tmp/ and, for a folder
  // other than INBOX, an empty `maildirfolder` file. Adding a folder twice is
  // fine. Parents are not created (Maildir++ does not need them).
  // InvalidArgument, naming the component, for an empty component or one
  // that contains '.', '/' or NUL: Maildir++ cannot store such a name.
  Status AddFolder(const std::vector<std::string>& path);

  // Delivers `bytes` as <folder>/{cur|new}/<file_name>: written to tmp/ then
  // linked into place, so a reader never sees a partial file. Adds the folder
  // first if needed. AlreadyExists if the target name is taken (nothing is
  // overwritten); InvalidArgument for a file name that ParseMaildirName
  // rejects.
  Status WriteMessage(const std::vector<std::string>& folder, std::string_view file_name,
                      bool in_new, std::string_view bytes);

  // fsyncs the directories of every folder added (cur/, new/, the folder,
  // the root), so the delivered names survive a crash.
  Status Sync();

  // With durable set, WriteMessage fsyncs each file before delivering it;
  // with Sync() at the end the whole tree then survives a machine crash.
  void set_durable(bool durable) { durable_ = durable; }

  const std::string& root() const { return root_; }
  // The directory of a folder: root or root/.A.B.
  std::string FolderDir(const std::vector<std::string>& path) const;

 private:
  explicit MaildirWriter(std::string root) : root_(std::move(root)) {}
  std::string root_;
  std::set<std::string> folders_;  // directories created by AddFolder
  bool durable_ = false;
};

}  // namespace mbx::mail
