#include "engine/mail_transfer.h"

#include <sys/stat.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <cctype>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "engine/mailio/maildir.h"
#include "engine/mailio/mime_props.h"
#include "engine/move_engine.h"
#include "engine/recovery.h"
#include "store/crash_point.h"
#include "store/item_codec.h"
#include "store/tsan_annotations.h"

namespace mbx::engine {

static_assert(mail::kSeen == kFlagRead && mail::kFlagged == kFlagFlagged &&
                  mail::kAnswered == kFlagAnswered && mail::kDraft == kFlagDraft &&
                  mail::kPassed == kFlagPassed && mail::kTrashed == kFlagTrashed &&
                  mail::kRecent == kFlagRecent,
              "Maildir flag bits must be the item flag bits");

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return std::tolower(x) == std::tolower(y); });
}

// The kind a top-level folder gets from its name (the default folder set,
// with the names other clients use for the same folders).
FolderKind KindOfTopFolder(std::string_view name) {
  static const std::pair<std::string_view, FolderKind> kNames[] = {
      {"Sent Items", FolderKind::kSentItems}, {"Sent", FolderKind::kSentItems},
      {"Sent Messages", FolderKind::kSentItems}, {"Drafts", FolderKind::kDrafts},
      {"Deleted Items", FolderKind::kDeletedItems}, {"Trash", FolderKind::kDeletedItems},
      {"Calendar", FolderKind::kCalendar}, {"Contacts", FolderKind::kContacts},
      {"Tasks", FolderKind::kTasks}, {"Notes", FolderKind::kNotes}, {"Journal", FolderKind::kJournal}};
  for (const auto& [n, k] : kNames) {
    if (EqualsIgnoreCase(n, name)) return k;
  }
  return FolderKind::kUser;
}

Guid RandomGuid() {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}() ^ uint64_t(Clock::now().time_since_epoch().count())};
  Guid g;
  std::lock_guard<std::mutex> l(mu);
  for (int half = 0; half < 2; ++half) {
    const uint64_t v = rng();
    for (int b = 0; b < 8; ++b) g.bytes[size_t(half * 8 + b)] = uint8_t(v >> (8 * b));
  }
  g.bytes[6] = uint8_t((g.bytes[6] & 0x0f) | 0x40);  // RFC 4122 version 4
  g.bytes[8] = uint8_t((g.bytes[8] & 0x3f) | 0x80);
  return g;
}

// mbox flags, from the Status and X-Status headers: Status "R" read, "O"
// old (seen by a client: not Recent); X-Status "A" answered, "F" flagged,
// "D" deleted, "T" draft (mutt, Pine).
uint32_t MboxFlags(std::string_view status, std::string_view x_status) {
  uint32_t flags = 0;
  if (status.find('R') != std::string_view::npos) flags |= kFlagRead;
  if (x_status.find('A') != std::string_view::npos) flags |= kFlagAnswered;
  if (x_status.find('F') != std::string_view::npos) flags |= kFlagFlagged;
  if (x_status.find('D') != std::string_view::npos) flags |= kFlagTrashed;
  if (x_status.find('T') != std::string_view::npos) flags |= kFlagDraft;
  if (status.find('O') == std::string_view::npos && !(flags & kFlagRead)) flags |= kFlagRecent;
  return flags;
}

// Where a message comes from: what its properties cannot tell.
struct MessageOrigin {
  uint32_t flags = 0;        // from a Maildir file name (ignored for mbox)
  uint32_t keywords = 0;
  std::string source_name;   // the Maildir unique name
  Timestamp fallback_time;   // when the message has no usable Date
  std::string where;         // names it in warnings
  bool mbox = false;         // flags come from its Status/X-Status headers
};

// Writes one mailbox, hidden (moving-in): the header first, then folders and
// items in batches (at most two in flight, so reading and parsing overlap
// the commit of the previous ones), then the header with its final counts.
// ImportMail makes it active once its user is registered.
class MailboxWriter {
 public:
  MailboxWriter(Store* store, ImportedMailbox* box, const ImportOptions& o, TransferProgress* p)
      : store_(store), box_(box), opts_(o), progress_(p) {
    info_.guid = box->guid;
    info_.owner = box->user;
    info_.display_name = box->user;
    info_.state = MailboxState::kMovingIn;
    codec_.zstd_level = store->zstd_level();
    writes_.batch().PutMailbox(info_);
  }

  void AddFolder(const FolderInfo& f) {
    writes_.batch().PutFolder(info_.guid, f);
    ++info_.folder_count;
    ++box_->folders;
  }

  // Adds one message; its properties are read from its headers.
  Status AddMessage(uint32_t folder, std::string&& bytes, MessageOrigin origin) {
    Item item;
    item.message_class = std::string(message_class::kNote);
    item.flags = origin.mbox ? uint32_t(kFlagRecent) : origin.flags;
    item.keywords = origin.keywords;
    item.source_name = std::move(origin.source_name);
    item.received = origin.fallback_time;
    const std::string& where = origin.where;
    auto props = mail::ExtractProps(bytes);
    if (props.ok()) {
      if (origin.mbox) item.flags = MboxFlags(props->status, props->x_status);
      item.subject = std::move(props->subject);
      item.sender = std::move(props->sender);
      item.recipients = std::move(props->recipients);
      item.message_id = std::move(props->message_id);
      if (!props->message_class.empty() && props->message_class.size() <= 255) {
        item.message_class = std::move(props->message_class);
      }
      if (props->date_unix_us) item.received = Timestamp(std::chrono::microseconds(*props->date_unix_us));
    } else {
      ++box_->raw_messages;
      box_->warnings.push_back(where + ": imported as a raw item: " + props.status().message());
    }
    item.created = item.modified = item.received;
    const uint64_t size = bytes.size();
    item.mime = std::move(bytes);
    std::string rec;
    Status s = EncodeItem(item, codec_, &rec);
    if (!s.ok()) {
      ++box_->skipped;
      box_->warnings.push_back(where + ": not imported: " + s.message());
      return Status::Ok();
    }
    const uint64_t id = info_.next_item_id++;
    ++info_.item_count;
    info_.logical_bytes += item.LogicalSize();
    info_.stored_bytes += rec.size();
    ++box_->messages;
    box_->bytes += size;
    box_->stored_bytes += rec.size();
    if (progress_) {
      progress_->messages.fetch_add(1, std::memory_order_relaxed);
      progress_->bytes.fetch_add(size, std::memory_order_relaxed);
    }
    writes_.batch().PutItem(info_.guid, folder, id, std::move(rec));
    return writes_.MaybeFlush();
  }

  // Commits the rest (the header with its final counts, still moving-in)
  // and makes it durable.
  Status Finish() {
    writes_.batch().PutMailbox(info_);
    MBX_RETURN_IF_ERROR(writes_.Finish());
    return store_->Flush();
  }

  // After a failure: waits for what is in flight, then removes whatever of
  // the mailbox reached the store.
  void Abandon() {
    (void)writes_.Drain();
    Status s = store_->DeleteMailboxIn(info_.guid, {MailboxState::kMovingIn});
    if (!s.ok() && !s.IsNotFound()) {
      box_->warnings.push_back("could not remove the partial mailbox: " + s.ToString());
    }
  }

 private:
  Store* store_;
  ImportedMailbox* box_;
  const ImportOptions& opts_;
  TransferProgress* progress_;
  CodecOptions codec_;
  MailboxInfo info_;
  BatchWriter writes_{store_, opts_.batch_bytes};
};

Timestamp FileTime(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Timestamp{};
  return Timestamp(std::chrono::microseconds(int64_t(st.st_mtim.tv_sec) * 1000000 + st.st_mtim.tv_nsec / 1000));
}

// Every imported mailbox has the root and the Inbox; returns the Inbox's id.
uint32_t AddRootAndInbox(MailboxWriter& w) {
  constexpr uint32_t kInboxId = kRootFolderId + 1;
  w.AddFolder({kRootFolderId, 0, FolderKind::kRoot, "Top of Information Store"});
  w.AddFolder({kInboxId, kRootFolderId, FolderKind::kInbox, "Inbox"});
  return kInboxId;
}

Status ImportMaildir(const std::string& root, MailboxWriter& w, ImportedMailbox* box) {
  MBX_ASSIGN_OR_RETURN(std::vector<mail::MaildirFolder> folders,
                       mail::ScanMaildir(root, &box->warnings, &box->skipped));
  MBX_ASSIGN_OR_RETURN(mail::MaildirFiles files, mail::MaildirFiles::Open(root));
  const uint32_t inbox = AddRootAndInbox(w);
  uint32_t next_id = inbox + 1;
  // Folder ids by path; "INBOX" as a first component is the Inbox itself.
  std::map<std::vector<std::string>, uint32_t> ids;
  auto folder_id = [&](std::vector<std::string> path) {
    if (!path.empty() && EqualsIgnoreCase(path[0], "INBOX")) path[0] = "INBOX";
    std::vector<std::string> prefix;
    uint32_t parent = kRootFolderId;
    for (size_t i = 0; i < path.size(); ++i) {
      prefix.push_back(path[i]);
      if (i == 0 && prefix[0] == "INBOX") {
        parent = inbox;
        continue;
      }
      auto it = ids.find(prefix);
      if (it == ids.end()) {
        const FolderKind kind = parent == kRootFolderId ? KindOfTopFolder(path[i]) : FolderKind::kUser;
        const uint32_t id = next_id++;
        w.AddFolder({id, parent, kind, path[i]});
        it = ids.emplace(prefix, id).first;
      }
      parent = it->second;
    }
    return path.empty() ? inbox : parent;
  };
  for (const mail::MaildirFolder& f : folders) {
    const uint32_t id = folder_id(f.path);
    for (const mail::MaildirMessage& m : f.messages) {
      auto bytes = files.Read(f, m);
      if (!bytes.ok()) {
        ++box->skipped;
        box->warnings.push_back(m.path + ": not imported: " + bytes.status().message());
        continue;
      }
      MessageOrigin origin{m.in_new ? uint32_t(kFlagRecent) : 0u, 0, m.file_name, FileTime(m.path), m.path};
      if (auto name = mail::ParseMaildirName(m.file_name); name.ok()) {
        origin.flags |= name->flags;
        origin.keywords = name->keywords;
        origin.source_name = std::move(name->unique);
      }
      MBX_RETURN_IF_ERROR(w.AddMessage(id, std::move(*bytes), std::move(origin)));
    }
  }
  return Status::Ok();
}

Status ImportMbox(const std::string& path, mail::MboxFormat format, MailboxWriter& w) {
  const uint32_t inbox = AddRootAndInbox(w);
  MBX_ASSIGN_OR_RETURN(mail::MboxReader reader, mail::MboxReader::Open(path, format));
  const Timestamp file_time = FileTime(path);
  mail::MboxMessage m;
  for (;;) {
    MBX_ASSIGN_OR_RETURN(bool more, reader.Next(&m));
    if (!more) break;
    MessageOrigin origin{0, 0, "", file_time, path + " at byte " + std::to_string(m.offset), /*mbox=*/true};
    MBX_RETURN_IF_ERROR(w.AddMessage(inbox, std::move(m.bytes), std::move(origin)));
  }
  return Status::Ok();
}

// --- export ---------------------------------------------------------------

// A unique name that comes back the same from the file name it makes (the
// Maildir parser decides), and leaves room for the flags within NAME_MAX.
bool UsableUnique(std::string_view s) {
  if (s.size() > 200) return false;
  auto parsed = mail::ParseMaildirName(mail::FormatMaildirName(s, 0, 0));
  return parsed.ok() && parsed->unique == s;
}

// Exports the mailbox of `user`, held in store `home`.
Status ExportOne(Organization& org, const UserRecord& user, const std::string& home, const std::string& dir,
                 bool fsync, ExportedMailbox* box, TransferProgress* progress) {
  MBX_ASSIGN_OR_RETURN(Store * store, org.GetStore(home));
  MBX_ASSIGN_OR_RETURN(StoreReader reader, store->BeginRead());
  MBX_ASSIGN_OR_RETURN(MailboxInfo info, reader.GetMailbox(user.mailbox));
  if (info.state != MailboxState::kActive && info.state != MailboxState::kMovingOut) {
    return Status::Busy("mailbox of " + user.name + " in store " + home + " is " +
                        std::string(MailboxStateName(info.state)));
  }
  std::vector<FolderInfo> folders;
  MBX_RETURN_IF_ERROR(reader.ListFolders(user.mailbox, &folders));
  std::map<uint32_t, const FolderInfo*> by_id;
  for (const auto& f : folders) by_id[f.id] = &f;
  // Maildir++ path of each folder: the Inbox (a child of the root) is the
  // root of the tree and "INBOX" as the first component of its children.
  auto path_of = [&](const FolderInfo& f) -> Result<std::vector<std::string>> {
    std::vector<std::string> path;
    const FolderInfo* cur = &f;
    for (size_t depth = 0; cur->kind != FolderKind::kRoot; ++depth) {
      if (depth > folders.size()) return Status::Corruption("folder tree of " + user.name + " has a cycle");
      const bool inbox = cur->kind == FolderKind::kInbox && cur->parent_id == kRootFolderId;
      path.push_back(inbox ? "INBOX" : cur->name);
      auto p = by_id.find(cur->parent_id);
      if (p == by_id.end()) return Status::Corruption("folder '" + cur->name + "' of " + user.name + " has no parent");
      cur = p->second;
    }
    std::reverse(path.begin(), path.end());
    if (path.size() == 1 && path[0] == "INBOX") path.clear();  // the Inbox itself: the root
    return path;
  };
  MBX_ASSIGN_OR_RETURN(mail::MaildirWriter writer, mail::MaildirWriter::Create(dir));
  writer.set_durable(fsync);
  MBX_RETURN_IF_ERROR(writer.AddFolder({}));
  for (const FolderInfo& f : folders) {
    if (f.kind == FolderKind::kRoot) continue;
    MBX_ASSIGN_OR_RETURN(std::vector<std::string> path, path_of(f));
    MBX_RETURN_IF_ERROR(writer.AddFolder(path).WithContext("mailbox of " + user.name));
    ++box->folders;
    Status walked = reader.ForEachItem(user.mailbox, f.id, [&](uint64_t id, std::string_view rec) -> Status {
      auto item = DecodeItem(rec);
      if (!item.ok()) {
        box->problems.push_back("folder '" + f.name + "' item " + std::to_string(id) + ": " +
                                item.status().message());
        return Status::Ok();
      }
      const bool in_new = (item->flags & kFlagRecent) != 0;
      std::string name = ExportFileName(*item, id);
      Status s = writer.WriteMessage(path, name, in_new, item->mime);
      if (s.code() == Status::Code::kAlreadyExists) {
        // Two items imported under one name: keep both, the second with its id.
        Item renamed = std::move(*item);
        renamed.source_name += ".I" + std::to_string(id);
        s = writer.WriteMessage(path, ExportFileName(renamed, id), in_new, renamed.mime);
        item = std::move(renamed);
      }
      MBX_RETURN_IF_ERROR(s);
      ++box->messages;
      box->bytes += item->mime.size();
      if (progress) {
        progress->messages.fetch_add(1, std::memory_order_relaxed);
        progress->bytes.fetch_add(item->mime.size(), std::memory_order_relaxed);
      }
      return Status::Ok();
    });
    MBX_RETURN_IF_ERROR(walked);
  }
  return fsync ? writer.Sync() : Status::Ok();
}

// Imports one source into box->guid; box->status says how it went.
void ImportOne(Organization& org, Store& store, const StoreRecord& srec, const ImportSource& source,
               const ImportOptions& options, ImportedMailbox* box, TransferProgress* progress) {
  Directory& dir = org.directory();
  // The import's record (synced) comes first: after a crash, recovery finds
  // the store holding the partial mailbox from it.
  MoveRecord record{box->guid, box->user, "", options.store, MoveStep::kImporting, NowIso8601(), false};
  if (Status s = dir.CreateMove(record); !s.ok()) {
    box->status = s.WithContext("recording the import of " + box->user);
    return;
  }
  MailboxWriter w(&store, box, options, progress);
  Status s = source.maildir.empty() ? ImportMbox(source.mbox, options.mbox_format, w)
                                    : ImportMaildir(source.maildir, w, box);
  if (s.ok()) s = w.Finish();
  // The commit point: the user is registered once the whole mailbox is
  // durable, so recovery activates a registered one and deletes any other.
  // PutUsers can fail after its commit (syncing the directory): if the user
  // is visible, only recovery, from what the directory durably holds, may
  // decide; deleting the mailbox could leave homeMDB naming nothing.
  bool registered = false;
  if (s.ok()) {
    s = dir.PutUsers({{box->user, box->user, box->user + "@" + options.smtp_domain, box->guid, srec.dn,
                       srec.server}});
    registered = s.ok() || dir.GetUser(box->user).ok();
    if (!s.ok()) s = s.WithContext("registering the user");
  }
  if (!registered) {
    w.Abandon();
    box->status = s.WithContext("importing " + box->source + " for " + box->user);
  } else {
    if (s.ok()) {
      CrashPoint("import-registered");
      s = store.TransitionMailbox(box->guid, {MailboxState::kMovingIn}, MailboxState::kActive);
    }
    if (!s.ok()) {  // the record stays for recovery
      box->status = s.WithContext("finishing the import of " + box->user +
                                  " (registered: 'mbxmove recover' finishes it)");
      return;
    }
  }
  if (Status d = dir.DeleteMove(box->guid); !d.ok() && box->status.ok()) {
    box->status = d.WithContext("deleting the import record of " + box->user);
  }
}

}  // namespace

std::string ExportFileName(const Item& item, uint64_t item_id) {
  std::string unique = item.source_name;
  if (!UsableUnique(unique)) {
    const int64_t secs = std::max<int64_t>(0, item.received.time_since_epoch().count() / 1000000);
    unique = std::to_string(secs) + ".I" + std::to_string(item_id) + ".mbxmove";
  }
  const uint32_t flags = item.flags & ~uint32_t(kFlagRecent);
  if ((item.flags & kFlagRecent) && flags == 0 && item.keywords == 0) return unique;
  return mail::FormatMaildirName(unique, flags, item.keywords);
}

Result<std::vector<ImportSource>> SourcesFromMaildirRoot(const std::string& root,
                                                         std::vector<std::string>* warnings) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return Status::NotFound("--maildir-root " + root + " is not a folder");
  auto warn = [&](std::string w) {
    if (warnings) warnings->push_back(std::move(w));
  };
  std::vector<ImportSource> out;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    std::error_code entry_ec;  // a missing entry or Maildir/ is no listing error
    // A user folder (or its Maildir) that is a symlink may lead into another
    // user's mail or anywhere else: never followed.
    if (e.is_symlink(entry_ec)) {
      warn("skipped " + e.path().string() + ": it is a symbolic link (not followed out of the tree)");
      continue;
    }
    if (!e.is_directory(entry_ec)) continue;
    ImportSource s;
    s.user = name;
    const fs::path home_maildir = e.path() / "Maildir";
    if (fs::is_symlink(home_maildir, entry_ec)) {
      warn("skipped " + home_maildir.string() + ": it is a symbolic link (not followed out of the tree)");
      continue;
    }
    s.maildir = fs::is_directory(home_maildir, entry_ec) ? home_maildir.string() : e.path().string();
    out.push_back(std::move(s));
  }
  if (ec) return Status::IOError("cannot list " + root + ": " + ec.message());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.user < b.user; });
  if (out.empty()) return Status::NotFound("--maildir-root " + root + " holds no user folders");
  return out;
}

Result<ImportResult> ImportMail(Organization& org, const std::vector<ImportSource>& sources,
                                const ImportOptions& options, TransferProgress* progress) {
  const auto t0 = Clock::now();
  if (sources.empty()) return Status::InvalidArgument("nothing to import");
  auto srec = org.directory().GetStore(options.store);
  if (!srec.ok()) {
    if (srec.status().IsNotFound()) {
      return Status::NotFound("store '" + options.store + "' is not registered in " + org.dir() +
                              " (create it with 'mbxmove store create')");
    }
    return srec.status();
  }
  MBX_ASSIGN_OR_RETURN(Store * store, org.GetStore(options.store));
  std::set<std::string> names;
  for (const auto& s : sources) {
    MBX_RETURN_IF_ERROR(Organization::ValidateName("user name", s.user));
    if (!names.insert(s.user).second) return Status::InvalidArgument("user " + s.user + " is given twice");
    if ((s.maildir.empty()) == (s.mbox.empty())) {
      return Status::InvalidArgument("import of " + s.user + ": give a Maildir or an mbox file");
    }
    auto u = org.directory().GetUser(s.user);
    if (u.ok()) {
      return Status::AlreadyExists("user " + s.user + " already exists in the directory: import creates new mailboxes");
    }
    if (!u.status().IsNotFound()) return u.status();
  }

  ImportResult r;
  r.mailboxes.resize(sources.size());
  for (size_t i = 0; i < sources.size(); ++i) {
    r.mailboxes[i].user = sources[i].user;
    r.mailboxes[i].source = sources[i].maildir.empty() ? sources[i].mbox : sources[i].maildir;
    r.mailboxes[i].guid = RandomGuid();
  }
  std::unique_ptr<tbb::global_control> limit;
  if (options.threads > 0) {
    limit = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                  size_t(options.threads));
  }
  static TaskEdges import_edges;  // static: see tsan_annotations.h
  import_edges.Release();
  tbb::parallel_for(size_t(0), sources.size(), size_t(1), [&](size_t i) {
    TaskEdgeScope edge(import_edges);
    ImportOne(org, *store, *srec, sources[i], options, &r.mailboxes[i], progress);
    if (progress) progress->mailboxes_done.fetch_add(1, std::memory_order_relaxed);
  });
  import_edges.Acquire();

  for (const auto& box : r.mailboxes) {
    if (!box.status.ok()) {
      ++r.failed_mailboxes;
      continue;
    }
    r.messages += box.messages;
    r.bytes += box.bytes;
    r.raw_messages += box.raw_messages;
    r.skipped += box.skipped;
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return r;
}

Result<ExportResult> ExportMaildir(Organization& org, const std::vector<std::string>& ids, const std::string& out,
                                   const ExportOptions& options, TransferProgress* progress) {
  const auto t0 = Clock::now();
  if (ids.empty()) return Status::InvalidArgument("nothing to export");
  if (!options.per_user_dirs && ids.size() != 1) {
    return Status::InvalidArgument("exporting several mailboxes needs one folder per user");
  }
  std::vector<StoreRecord> stores;
  MBX_RETURN_IF_ERROR(org.ListStores(&stores));
  std::map<std::string, std::string> store_by_dn;
  for (const auto& sr : stores) store_by_dn[sr.dn] = sr.name;
  std::vector<UserRecord> users;
  std::vector<std::string> homes;
  std::set<std::string> seen;
  for (const auto& id : ids) {
    MBX_ASSIGN_OR_RETURN(UserRecord u, FindUser(org.directory(), id));
    if (!seen.insert(u.name).second) continue;
    auto home = store_by_dn.find(u.home_mdb);
    if (home == store_by_dn.end()) {
      return Status::NotFound("homeMDB of " + u.name + " names no registered store (" + u.home_mdb + ")");
    }
    homes.push_back(home->second);
    users.push_back(std::move(u));
  }
  std::error_code ec;
  if (fs::exists(out, ec) && !(fs::is_directory(out, ec) && fs::is_empty(out, ec))) {
    return Status::InvalidArgument("export folder " + out +
                                   " exists and is not an empty folder: an export never mixes into existing mail");
  }
  MBX_RETURN_IF_ERROR(CreateDirs(Env::Default(), out).WithContext("cannot create " + out));

  ExportResult r;
  r.mailboxes.resize(users.size());
  std::unique_ptr<tbb::global_control> limit;
  if (options.threads > 0) {
    limit = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                  size_t(options.threads));
  }
  static TaskEdges export_edges;
  export_edges.Release();
  tbb::parallel_for(size_t(0), users.size(), size_t(1), [&](size_t i) {
    TaskEdgeScope edge(export_edges);
    ExportedMailbox& box = r.mailboxes[i];
    box.user = users[i].name;
    box.dir = options.per_user_dirs ? (fs::path(out) / users[i].name).string() : out;
    box.status = ExportOne(org, users[i], homes[i], box.dir, options.fsync, &box, progress);
    if (progress) progress->mailboxes_done.fetch_add(1, std::memory_order_relaxed);
  });
  export_edges.Acquire();
  for (const auto& box : r.mailboxes) {
    if (!box.status.ok()) ++r.failed_mailboxes;
    r.messages += box.messages;
    r.bytes += box.bytes;
    r.problems += box.problems.size();
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return r;
}

}  // namespace mbx::engine
