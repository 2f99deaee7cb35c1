#include "engine/mailio/maildir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <utility>

#include "store/file_io.h"
#include "store/item.h"

namespace mbx::mail {

static_assert(kSeen == kFlagRead && kFlagged == kFlagFlagged && kAnswered == kFlagAnswered &&
                  kDraft == kFlagDraft && kPassed == kFlagPassed && kTrashed == kFlagTrashed &&
                  kRecent == kFlagRecent,
              "mbx::mail flag bits must match mbx::ItemFlags");

namespace {

// The flag letters in ASCII order, which is the order Maildir writes them.
struct FlagLetter {
  char letter;
  uint32_t bit;
};
constexpr FlagLetter kFlagLetters[] = {
    {'D', kDraft}, {'F', kFlagged}, {'P', kPassed}, {'R', kAnswered}, {'S', kSeen}, {'T', kTrashed},
};

Status Errno(std::string_view what, const std::string& path, int err) { return PosixError(what, path, err); }

enum class Kind { kMissing, kDir, kFile, kSymlink, kOther };

Kind KindOfMode(mode_t m) {
  if (S_ISDIR(m)) return Kind::kDir;
  if (S_ISREG(m)) return Kind::kFile;
  if (S_ISLNK(m)) return Kind::kSymlink;
  return Kind::kOther;
}

// What `path` is, following symlinks. IOError for anything but "missing".
Result<Kind> KindOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return Kind::kMissing;
    return Errno("cannot stat", path, errno);
  }
  return KindOfMode(st.st_mode);
}

// What `path` itself is: a symlink is kSymlink, not what it points to.
Result<Kind> KindOfNoFollow(const std::string& path, mode_t* mode = nullptr) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return Kind::kMissing;
    return Errno("cannot stat", path, errno);
  }
  if (mode) *mode = st.st_mode;
  return KindOfMode(st.st_mode);
}

const char* FileTypeName(mode_t m) {
  if (S_ISLNK(m)) return "a symbolic link";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISDIR(m)) return "a folder";
  return "not a regular file";
}

// Appends the messages of dir/cur and dir/new to `out`; false in *found when
// neither exists. Nothing outside the tree is looked at: a cur/ or new/ that
// is a symlink, and a message entry that is neither a regular file nor a
// folder (symlink, FIFO, device, socket), are skipped with a warning and
// counted. Folders in cur/ and new/ are no messages and are ignored.
Status ScanMessages(const std::string& dir, std::vector<MaildirMessage>* out, bool* found,
                    const std::function<void(std::string)>& skip) {
  *found = false;
  std::vector<std::string> names;
  for (const bool in_new : {false, true}) {
    const std::string sub = dir + (in_new ? "/new" : "/cur");
    MBX_ASSIGN_OR_RETURN(Kind k, KindOfNoFollow(sub));
    if (k == Kind::kSymlink) {
      skip("skipped " + sub + ": it is a symbolic link (not followed out of the tree)");
      continue;
    }
    if (k != Kind::kDir) continue;
    *found = true;
    MBX_RETURN_IF_ERROR(ListDir(sub, &names));
    for (std::string& n : names) {
      if (n[0] == '.') continue;
      std::string path = sub + "/" + n;
      mode_t mode = 0;
      MBX_ASSIGN_OR_RETURN(Kind fk, KindOfNoFollow(path, &mode));
      if (fk == Kind::kMissing || fk == Kind::kDir) continue;  // gone since the listing; not a message
      if (fk != Kind::kFile) {
        skip(path + ": not imported: it is " + FileTypeName(mode));
        continue;
      }
      out->push_back(MaildirMessage{std::move(path), std::move(n), in_new});
    }
  }
  std::sort(out->begin(), out->end(), [](const MaildirMessage& a, const MaildirMessage& b) {
    return a.file_name != b.file_name ? a.file_name < b.file_name : a.in_new < b.in_new;
  });
  return Status::Ok();
}

// ".A.B" -> {"A", "B"}; false when a component is empty.
bool SplitFolderName(std::string_view name, std::vector<std::string>* path) {
  path->clear();
  name.remove_prefix(1);
  while (true) {
    const size_t dot = name.find('.');
    std::string_view part = name.substr(0, dot);
    if (part.empty()) return false;
    path->emplace_back(part);
    if (dot == std::string_view::npos) return true;
    name.remove_prefix(dot + 1);
  }
}

// mkdir that accepts an existing directory. A new one is owner-only (0700),
// as a mail server makes them.
Status MakeDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), kOwnerOnlyDirMode) == 0) return Status::Ok();
  const int err = errno;
  if (err == EEXIST) {
    MBX_ASSIGN_OR_RETURN(Kind k, KindOf(dir));
    if (k == Kind::kDir) return Status::Ok();
    return Status::InvalidArgument("cannot create folder " + dir + ": a file of that name exists");
  }
  return Errno("cannot create folder", dir, err);
}

Status WriteAll(int fd, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("cannot write", path, errno);
    }
    bytes.remove_prefix(size_t(n));
  }
  return Status::Ok();
}

}  // namespace

Result<MaildirName> ParseMaildirName(std::string_view file_name) {
  if (file_name.empty()) return Status::InvalidArgument("empty Maildir file name");
  if (file_name.find('/') != std::string_view::npos ||
      file_name.find('\0') != std::string_view::npos || file_name[0] == '.') {
    return Status::InvalidArgument("not a Maildir file name: \"" + std::string(file_name) + "\"");
  }
  MaildirName out;
  const size_t colon = file_name.rfind(':');
  out.unique = std::string(file_name.substr(0, colon));
  if (out.unique.empty()) {
    return Status::InvalidArgument("Maildir file name without a unique part: \"" +
                                   std::string(file_name) + "\"");
  }
  if (colon == std::string_view::npos) return out;
  const std::string_view info = file_name.substr(colon + 1);
  if (info.substr(0, 2) != "2,") return out;  // experimental or unknown info: no flags
  out.has_info = true;
  for (const char c : info.substr(2)) {
    if (c >= 'a' && c <= 'z') {
      out.keywords |= 1u << (c - 'a');
      continue;
    }
    for (const FlagLetter& f : kFlagLetters) {
      if (f.letter == c) out.flags |= f.bit;
    }
  }
  return out;
}

std::string FormatMaildirName(std::string_view unique, uint32_t flags, uint32_t keywords) {
  std::string out(unique);
  out += ":2,";
  for (const FlagLetter& f : kFlagLetters) {
    if (flags & f.bit) out += f.letter;
  }
  for (int i = 0; i < 26; ++i) {
    if (keywords & (1u << i)) out += char('a' + i);
  }
  return out;
}

Result<std::vector<MaildirFolder>> ScanMaildir(const std::string& root,
                                               std::vector<std::string>* warnings, uint64_t* skipped) {
  MBX_ASSIGN_OR_RETURN(Kind rk, KindOf(root));
  if (rk == Kind::kMissing) return Status::NotFound("Maildir " + root + " does not exist");
  if (rk != Kind::kDir) return Status::InvalidArgument("not a Maildir: " + root + " is not a folder");
  MBX_ASSIGN_OR_RETURN(Kind cur, KindOf(root + "/cur"));
  MBX_ASSIGN_OR_RETURN(Kind nw, KindOf(root + "/new"));
  if (cur != Kind::kDir || nw != Kind::kDir) {
    return Status::InvalidArgument("not a Maildir: " + root + " has no cur/ and new/ folders");
  }
  auto warn = [warnings](std::string w) {
    if (warnings) warnings->push_back(std::move(w));
  };
  auto skip = [&](std::string w) {
    if (skipped) ++*skipped;
    warn(std::move(w));
  };

  std::map<std::vector<std::string>, MaildirFolder> folders;
  MaildirFolder inbox;
  inbox.dir = root;
  bool found = false;
  MBX_RETURN_IF_ERROR(ScanMessages(root, &inbox.messages, &found, skip));
  folders.emplace(std::vector<std::string>{}, std::move(inbox));

  std::vector<std::string> names;
  MBX_RETURN_IF_ERROR(ListDir(root, &names));
  std::vector<std::string> path;
  for (const std::string& name : names) {
    if (name[0] != '.') continue;  // cur, new, tmp, dovecot-uidlist, ...
    const std::string dir = root + "/" + name;
    MBX_ASSIGN_OR_RETURN(Kind k, KindOfNoFollow(dir));
    if (k == Kind::kSymlink) {
      skip("skipped folder " + dir + ": it is a symbolic link (not followed out of the tree)");
      continue;
    }
    if (k != Kind::kDir) continue;
    if (!SplitFolderName(name, &path)) {
      warn("skipped folder " + dir + ": its name has an empty component");
      continue;
    }
    MaildirFolder f;
    f.path = path;
    f.dir = dir;
    MBX_RETURN_IF_ERROR(ScanMessages(dir, &f.messages, &found, skip));
    if (!found) warn("folder " + dir + " has no cur/ or new/: imported as an empty folder");
    folders.insert_or_assign(path, std::move(f));
  }

  // Parents that exist only implicitly (".A.B" without ".A").
  std::vector<std::vector<std::string>> parents;
  for (const auto& [p, f] : folders) {
    for (size_t n = 1; n < p.size(); ++n) parents.emplace_back(p.begin(), p.begin() + long(n));
  }
  for (auto& p : parents) {
    if (folders.count(p)) continue;
    MaildirFolder f;
    f.path = p;
    folders.emplace(std::move(p), std::move(f));
  }

  std::vector<MaildirFolder> out;
  out.reserve(folders.size());
  for (auto& [p, f] : folders) out.push_back(std::move(f));
  return out;
}

Result<std::string> ReadFile(const std::string& path) {
  std::string out;
  MBX_RETURN_IF_ERROR(Env::Default()->ReadFile(path, &out));
  return out;
}

// ---------------------------------------------------------------- MaildirFiles

namespace {

// openat that names what failed; a symlink met with O_NOFOLLOW (ELOOP, or
// ENOTDIR for O_DIRECTORY on a symlink) says so.
Result<int> OpenAt(int dir_fd, const std::string& name, int flags, const std::string& path) {
  const int fd = ::openat(dir_fd, name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) return fd;
  const int err = errno;
  if (err == ELOOP || err == ENOTDIR) {
    struct stat st;
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
      return Status::InvalidArgument(path + " is a symbolic link: not followed out of the tree");
    }
  }
  if (err == ENOENT) return Status::NotFound(path + " no longer exists");
  return Errno("cannot open", path, err);
}

}  // namespace

MaildirFiles::~MaildirFiles() { Close(); }

void MaildirFiles::Close() {
  if (sub_fd_ >= 0) ::close(sub_fd_);
  if (root_fd_ >= 0) ::close(root_fd_);
  sub_fd_ = root_fd_ = -1;
}

MaildirFiles::MaildirFiles(MaildirFiles&& o) noexcept
    : root_(std::move(o.root_)), root_fd_(std::exchange(o.root_fd_, -1)), sub_fd_(std::exchange(o.sub_fd_, -1)),
      sub_dir_(std::move(o.sub_dir_)), sub_new_(o.sub_new_) {}

Result<MaildirFiles> MaildirFiles::Open(const std::string& root) {
  const int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open Maildir", root, errno);
  MaildirFiles f;
  f.root_ = root;
  f.root_fd_ = fd;
  return f;
}

Result<std::string> MaildirFiles::Read(const MaildirFolder& folder, const MaildirMessage& m) {
  if (folder.dir.empty()) return Status::InvalidArgument("folder has no directory");
  if (sub_fd_ < 0 || sub_dir_ != folder.dir || sub_new_ != m.in_new) {
    if (sub_fd_ >= 0) ::close(sub_fd_);
    sub_fd_ = -1;
    int folder_fd = root_fd_;
    if (folder.dir != root_) {
      // A folder of the tree is one component below the root: ".A.B".
      const std::string name = folder.dir.substr(folder.dir.rfind('/') + 1);
      if (folder.dir != root_ + "/" + name || name.empty() || name[0] != '.') {
        return Status::InvalidArgument(folder.dir + " is not a folder of the Maildir " + root_);
      }
      MBX_ASSIGN_OR_RETURN(folder_fd, OpenAt(root_fd_, name, O_RDONLY | O_DIRECTORY, folder.dir));
    }
    const std::string sub = m.in_new ? "new" : "cur";
    auto sub_fd = OpenAt(folder_fd, sub, O_RDONLY | O_DIRECTORY, folder.dir + "/" + sub);
    if (folder_fd != root_fd_) ::close(folder_fd);
    MBX_RETURN_IF_ERROR(sub_fd.status());
    sub_fd_ = *sub_fd;
    sub_dir_ = folder.dir;
    sub_new_ = m.in_new;
  }
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused
  // below, by its type, without reading).
  MBX_ASSIGN_OR_RETURN(int fd, OpenAt(sub_fd_, m.file_name, O_RDONLY | O_NONBLOCK | O_NOCTTY, m.path));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) return Errno("cannot stat", m.path, errno);
  if (!S_ISREG(st.st_mode)) return Status::InvalidArgument(m.path + " is " + FileTypeName(st.st_mode));
  std::string out;
  if (st.st_size > 0) out.reserve(size_t(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("cannot read", m.path, errno);
    }
    if (n == 0) break;
    out.append(buf, size_t(n));
  }
  return out;
}

Result<MaildirWriter> MaildirWriter::Create(const std::string& root) {
  if (root.empty()) return Status::InvalidArgument("empty Maildir path");
  std::string dir = root;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  MBX_ASSIGN_OR_RETURN(Kind k, KindOf(dir));
  if (k == Kind::kMissing) {
    MBX_RETURN_IF_ERROR(CreateDirs(Env::Default(), dir).WithContext("cannot create folder " + dir));
  } else if (k != Kind::kDir) {
    return Status::InvalidArgument("refusing to write a Maildir at " + root +
                                   ": it exists and is not a folder");
  } else {
    std::vector<std::string> names;
    MBX_RETURN_IF_ERROR(ListDir(dir, &names));
    if (!names.empty()) {
      return Status::InvalidArgument("refusing to write a Maildir into " + root +
                                     ": the folder is not empty");
    }
  }
  return MaildirWriter(std::move(dir));
}

std::string MaildirWriter::FolderDir(const std::vector<std::string>& path) const {
  if (path.empty()) return root_;
  std::string dir = root_ + "/";
  for (const std::string& c : path) dir += "." + c;
  return dir;
}

Status MaildirWriter::AddFolder(const std::vector<std::string>& path) {
  for (const std::string& c : path) {
    const char* why = c.empty()                                  ? "it is empty"
                      : c.find('.') != std::string::npos         ? "it contains '.'"
                      : c.find('/') != std::string::npos         ? "it contains '/'"
                      : c.find('\0') != std::string::npos        ? "it contains a NUL byte"
                                                                 : nullptr;
    if (why) {
      std::string full;
      for (const std::string& p : path) full += (full.empty() ? "" : "/") + p;
      return Status::InvalidArgument("folder name \"" + c + "\" (in \"" + full +
                                     "\") cannot be stored in Maildir++: " + why);
    }
  }
  const std::string dir = FolderDir(path);
  if (folders_.count(dir)) return Status::Ok();
  MBX_RETURN_IF_ERROR(MakeDir(dir));
  for (const char* sub : {"/cur", "/new", "/tmp"}) MBX_RETURN_IF_ERROR(MakeDir(dir + sub));
  if (!path.empty()) {
    const std::string marker = dir + "/maildirfolder";
    const int fd = ::open(marker.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, kOwnerOnlyFileMode);
    if (fd < 0) return Errno("cannot create", marker, errno);
    ::close(fd);
  }
  folders_.insert(dir);
  return Status::Ok();
}

Status MaildirWriter::WriteMessage(const std::vector<std::string>& folder,
                                   std::string_view file_name, bool in_new,
                                   std::string_view bytes) {
  MBX_RETURN_IF_ERROR(ParseMaildirName(file_name).status());
  MBX_RETURN_IF_ERROR(AddFolder(folder));
  const std::string dir = FolderDir(folder);
  const std::string name(file_name);
  const std::string tmp = dir + "/tmp/" + name;
  const std::string dest = dir + (in_new ? "/new/" : "/cur/") + name;

  // Owner-only, as a mail server delivers them: an export never makes a
  // message readable by more users than the store did.
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, kOwnerOnlyFileMode);
  if (fd < 0) {
    if (errno == EEXIST) return Status::AlreadyExists("message file " + tmp + " already exists");
    return Errno("cannot create", tmp, errno);
  }
  Status st = WriteAll(fd, bytes, tmp);
  if (st.ok() && durable_ && ::fsync(fd) != 0) st = Errno("cannot fsync", tmp, errno);
  if (::close(fd) != 0 && st.ok()) st = Errno("cannot write", tmp, errno);
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  // A rename that refuses to replace: one metadata operation. File systems
  // without it (EINVAL) get the classic link, then unlink.
  int err = ::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dest.c_str(), RENAME_NOREPLACE) == 0 ? 0 : errno;
  if (err == 0) return Status::Ok();
  if (err == EINVAL || err == ENOSYS) err = ::link(tmp.c_str(), dest.c_str()) == 0 ? 0 : errno;
  ::unlink(tmp.c_str());
  if (err == 0) return Status::Ok();
  return err == EEXIST ? Status::AlreadyExists("message file " + dest + " already exists")
                       : Errno("cannot deliver to", dest, err);
}

Status MaildirWriter::Sync() {
  for (const std::string& dir : folders_) {
    MBX_RETURN_IF_ERROR(Env::Default()->SyncDir(dir + "/cur"));
    MBX_RETURN_IF_ERROR(Env::Default()->SyncDir(dir + "/new"));
    MBX_RETURN_IF_ERROR(Env::Default()->SyncDir(dir));
  }
  MBX_RETURN_IF_ERROR(Env::Default()->SyncDir(root_));
  const std::string parent = std::filesystem::path(root_).parent_path().string();
  return Env::Default()->SyncDir(parent.empty() ? "." : parent);
}

}  // namespace mbx::mail
