#include "store/records.h"

#include "store/coding.h"

namespace mbx {

std::string Guid::ToString() const {
  static const char* kHex = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(kHex[bytes[i] >> 4]);
    s.push_back(kHex[bytes[i] & 15]);
  }
  return s;
}

std::optional<Guid> Guid::Parse(std::string_view s) {
  Guid g;
  size_t n = 0;
  int half = -1;
  for (char c : s) {
    if (c == '-') continue;
    int v;
    if (c >= '0' && c <= '9') v = c - '0';
    else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    else return std::nullopt;
    if (half < 0) {
      half = v;
    } else {
      if (n >= 16) return std::nullopt;
      g.bytes[n++] = uint8_t(half << 4 | v);
      half = -1;
    }
  }
  if (n != 16 || half >= 0) return std::nullopt;
  return g;
}

Guid Guid::FromKey(std::string_view k) {
  Guid g;
  for (size_t i = 0; i < 16 && i < k.size(); ++i) g.bytes[i] = uint8_t(k[i]);
  return g;
}

std::string_view MailboxStateName(MailboxState s) {
  switch (s) {
    case MailboxState::kActive: return "active";
    case MailboxState::kMovingOut: return "moving-out";
    case MailboxState::kMovingIn: return "moving-in";
    case MailboxState::kSoftDeleted: return "soft-deleted";
  }
  return "unknown";
}

std::string_view FolderKindName(FolderKind k) {
  switch (k) {
    case FolderKind::kRoot: return "root";
    case FolderKind::kInbox: return "inbox";
    case FolderKind::kSentItems: return "sent-items";
    case FolderKind::kDrafts: return "drafts";
    case FolderKind::kDeletedItems: return "deleted-items";
    case FolderKind::kCalendar: return "calendar";
    case FolderKind::kContacts: return "contacts";
    case FolderKind::kTasks: return "tasks";
    case FolderKind::kNotes: return "notes";
    case FolderKind::kJournal: return "journal";
    case FolderKind::kUser: return "user";
  }
  return "unknown";
}

namespace {
constexpr uint8_t kMailboxRecordVersion = 1;
constexpr uint8_t kFolderRecordVersion = 1;
}  // namespace

std::string EncodeMailboxInfo(const MailboxInfo& m) {
  std::string v;
  v.push_back(char(kMailboxRecordVersion));
  v.push_back(char(m.state));
  PutLengthPrefixed(&v, m.owner);
  PutLengthPrefixed(&v, m.display_name);
  PutVarint64(&v, m.folder_count);
  PutVarint64(&v, m.item_count);
  PutVarint64(&v, m.stored_bytes);
  PutVarint64(&v, m.logical_bytes);
  PutVarint64(&v, m.next_item_id);
  // Change tracking, only once a mailbox has changes (older records end
  // before it, and read back as zero).
  if (m.change_number != 0 || m.tracked || m.pruned_through != 0) {
    PutVarint64(&v, m.change_number);
    v.push_back(char(m.tracked ? 1 : 0));
    PutVarint64(&v, m.pruned_through);
  }
  return v;
}

Result<MailboxInfo> DecodeMailboxInfo(std::string_view key, std::string_view value) {
  if (key.size() != 16) return Status::Corruption("mailbox key is not 16 bytes");
  MailboxInfo m;
  m.guid = Guid::FromKey(key);
  ByteReader r(value);
  uint8_t ver = 0, state = 0;
  std::string_view owner, display;
  r.GetU8(&ver);
  r.GetU8(&state);
  r.GetLengthPrefixed(&owner);
  r.GetLengthPrefixed(&display);
  r.GetVarint64(&m.folder_count);
  r.GetVarint64(&m.item_count);
  r.GetVarint64(&m.stored_bytes);
  r.GetVarint64(&m.logical_bytes);
  r.GetVarint64(&m.next_item_id);
  uint8_t tracked = 0;
  if (r.ok() && !r.empty()) {
    r.GetVarint64(&m.change_number);
    r.GetU8(&tracked);
    r.GetVarint64(&m.pruned_through);
    if (!r.empty() || tracked > 1) return Status::Corruption("damaged mailbox record for " + m.guid.ToString());
  }
  m.tracked = tracked != 0;
  if (!r.ok() || ver != kMailboxRecordVersion || state > uint8_t(MailboxState::kSoftDeleted)) {
    return Status::Corruption("damaged mailbox record for " + m.guid.ToString());
  }
  m.state = MailboxState(state);
  m.owner = owner;
  m.display_name = display;
  return m;
}

std::string EncodeFolderInfo(const FolderInfo& f) {
  std::string v;
  v.push_back(char(kFolderRecordVersion));
  v.push_back(char(f.kind));
  PutFixed32(&v, f.parent_id);
  PutLengthPrefixed(&v, f.name);
  return v;
}

Result<FolderInfo> DecodeFolderInfo(uint32_t id, std::string_view value) {
  FolderInfo f;
  f.id = id;
  ByteReader r(value);
  uint8_t ver = 0, kind = 0;
  std::string_view name;
  r.GetU8(&ver);
  r.GetU8(&kind);
  r.GetFixed32(&f.parent_id);
  r.GetLengthPrefixed(&name);
  if (!r.ok() || ver != kFolderRecordVersion || kind > uint8_t(FolderKind::kUser)) {
    return Status::Corruption("damaged folder record " + std::to_string(id));
  }
  f.kind = FolderKind(kind);
  f.name = name;
  return f;
}

}  // namespace mbx
