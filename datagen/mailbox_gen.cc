// Deterministic synthetic mailboxes (see mailbox_gen.h).
//
// Streams: a mailbox's identity and size come from DeriveSeed(options.seed,
// index, kTagIdentity); its seed is DeriveSeed(options.seed, index,
// kTagMailbox). From that seed come its people (kTagPeople), its folders
// (kTagFolders) and every item: item n draws only from DeriveSeed(mailbox
// seed, n, kTagItem). Generating item n needs the mailbox context (people,
// folders: computed once, read-only) and the number of bytes still wanted,
// nothing else, so items cost O(1) state and mailboxes can be generated in
// any order on any thread.
#include "datagen/mailbox_gen.h"
#include "datagen/mime_render.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <utility>

#include "datagen/random.h"
#include "datagen/text_gen.h"

namespace mbx::datagen {
namespace {

// ---------------------------------------------------------------------------
// Parameters

constexpr uint64_t kMinMailboxBytes = 16 << 10;    // every planned mailbox gets at least this
constexpr uint32_t kMaxPlanMailboxes = 1u << 20;   // larger requests are clamped (plan memory)
constexpr double kMailboxSizeSigma = 1.2;          // log-normal spread of mailbox sizes
constexpr uint64_t kMaxItemBytes = 8ull << 20;     // one item, all fields
constexpr uint64_t kMinItemBudget = 512;           // the last item of a mailbox is trimmed to no less
constexpr uint64_t kMaxBodyBytes = 512 << 10;
constexpr int kMaxFolderDepth = 4;                 // root = 0, Inbox = 1, ...

// Timestamps: up to four years before a fixed epoch (never the wall clock).
constexpr int64_t kEpochMicros = 1704067200ll * 1000000;  // 2024-01-01T00:00:00Z
constexpr int64_t kHistoryMicros = 4ll * 36525 * 864 * 1000000;  // 4 * 365.25 days

enum : uint64_t {
  kTagMailbox = 0x11,
  kTagIdentity = 0x12,
  kTagItem = 0x13,
  kTagFolders = 0x14,
  kTagPeople = 0x15,
  kTagDelivery = 0x16,
};

Timestamp FromMicros(int64_t us) { return Timestamp(std::chrono::microseconds(us)); }
constexpr int64_t kMinute = 60ll * 1000000;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;

// ---------------------------------------------------------------------------
// Presets

const std::vector<Preset>& PresetList() {
  static const std::vector<Preset>* const presets = new std::vector<Preset>{
      {"tiny", 12, 4ull << 20, "12 mailboxes, about 4 MiB in all: unit tests, smoke runs"},
      {"small", 100, 200ull << 20, "100 mailboxes, about 200 MiB: the demo default"},
      {"medium", 500, 2ull << 30, "500 mailboxes, about 2 GiB: a department"},
      {"large", 2000, 20ull << 30, "2000 mailboxes, about 20 GiB: a small company"},
  };
  return *presets;
}

// ---------------------------------------------------------------------------
// Mailbox context: who the owner talks to and which folders exist.

struct Person {
  std::string first;
  std::string display;
  std::string address;
  std::string full;       // "Display <address>"
  std::string signature;  // closing block, ends with '\n'
  bool external = false;
};

struct FolderSlot {
  FolderInfo info;
  int depth = 0;
  uint64_t weight = 0;  // relative share of the mailbox's items
};

std::string_view SplitFirst(std::string_view display) {
  const size_t sp = display.find(' ');
  return sp == std::string_view::npos ? display : display.substr(0, sp);
}
std::string_view SplitLast(std::string_view display) {
  const size_t sp = display.find(' ');
  return sp == std::string_view::npos ? std::string_view() : display.substr(sp + 1);
}

template <typename T>
const T& Pick(Rng& rng, std::span<const T> list) {
  return list[rng.Uniform(list.size())];
}

std::string MakePhone(Rng& rng) {
  std::string s = "+1 (";
  s += std::to_string(200 + rng.Uniform(800));
  s += ") 555-01";
  const uint64_t d = rng.Uniform(100);
  s.push_back(char('0' + d / 10));
  s.push_back(char('0' + d % 10));
  return s;
}

void FinishPerson(Rng& rng, std::string_view company, Person* p) {
  p->full = p->display + " <" + p->address + ">";
  p->signature = p->display;
  p->signature += '\n';
  p->signature += Pick(rng, JobTitles());
  p->signature += " | ";
  p->signature += company;
  p->signature += "\nPhone: ";
  p->signature += MakePhone(rng);
  p->signature += '\n';
  if (p->external) {
    p->signature += "www.";
    p->signature += CompanyDomain(company);
    p->signature += '\n';
  }
}

class MailboxContext {
 public:
  explicit MailboxContext(const MailboxSpec& spec) : spec_(spec) {
    BuildPeople();
    BuildFolders();
  }

  const MailboxSpec& spec() const { return spec_; }
  const Person& owner() const { return owner_; }
  const std::vector<FolderSlot>& folders() const { return folders_; }

  // A correspondent; low indexes are picked more often (u^2 skew).
  const Person& Correspondent(Rng& rng) const {
    const double u = rng.Uniform01();
    const size_t i = std::min(people_.size() - 1, size_t(u * u * double(people_.size())));
    return people_[i];
  }

  const FolderSlot& PickFolder(Rng& rng) const {
    uint64_t x = rng.Uniform(total_weight_);
    for (const FolderSlot& f : folders_) {
      if (x < f.weight) return f;
      x -= f.weight;
    }
    return folders_[1];  // unreachable: Inbox
  }

 private:
  void BuildPeople();
  void BuildFolders();
  void AddFolder(uint32_t parent, FolderKind kind, std::string name, int depth, uint64_t weight) {
    FolderSlot f;
    f.info.id = uint32_t(folders_.size() + 1);
    f.info.parent_id = parent;
    f.info.kind = kind;
    f.info.name = std::move(name);
    f.depth = depth;
    f.weight = weight;
    total_weight_ += weight;
    folders_.push_back(std::move(f));
  }
  bool SiblingNamed(uint32_t parent, std::string_view name) const {
    for (const FolderSlot& f : folders_)
      if (f.info.parent_id == parent && f.info.name == name) return true;
    return false;
  }

  const MailboxSpec& spec_;
  Person owner_;
  std::vector<Person> people_;
  std::vector<FolderSlot> folders_;
  uint64_t total_weight_ = 0;
};

void MailboxContext::BuildPeople() {
  Rng rng(DeriveSeed(spec_.seed, 0, kTagPeople));
  const std::string_view kOwnCompany = "Example Corp";

  std::string_view first = SplitFirst(spec_.display_name);
  std::string_view last = SplitLast(spec_.display_name);
  owner_.first = first.empty() ? std::string("User") : std::string(first);
  owner_.display = spec_.display_name.empty() ? owner_.first : spec_.display_name;
  if (!spec_.smtp.empty()) {
    owner_.address = spec_.smtp;
  } else {
    owner_.address = (spec_.user_name.empty() ? EmailLocalPart(first, last) : spec_.user_name) +
                     "@example.com";
  }
  FinishPerson(rng, kOwnCompany, &owner_);

  // More people for bigger mailboxes: 10 + sqrt(target / 4 KiB), at most 250.
  double n = 10;
  const double k = double(spec_.target_bytes / 4096);
  if (k > 0) n += std::sqrt(k);
  const size_t count = size_t(std::min(n, 250.0));
  people_.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    Person p;
    const std::string_view pf = Pick(rng, FirstNames());
    const std::string_view pl = Pick(rng, LastNames());
    p.first = std::string(pf);
    p.display = p.first + " " + std::string(pl);
    p.external = rng.PerMille(350);
    const std::string_view company = p.external ? Pick(rng, Companies()) : kOwnCompany;
    p.address = EmailLocalPart(pf, pl);
    if (rng.PerMille(200)) p.address += std::to_string(1 + rng.Uniform(99));
    p.address += '@';
    p.address += p.external ? CompanyDomain(company) : std::string("example.com");
    FinishPerson(rng, company, &p);
    people_.push_back(std::move(p));
  }
}

constexpr std::string_view kTopFolderNames[] = {
    "Projects", "Clients", "Archive", "Receipts", "Travel", "Newsletters", "Team", "HR",
    "Finance", "Personal", "Family", "Vendors", "Conferences", "Training", "Support", "Legal",
    "Recruiting", "Marketing", "Reports", "Events", "Invoices", "Board", "Partners", "Hiring"};
constexpr std::string_view kSubFolderNames[] = {
    "2019", "2020", "2021", "2022", "2023", "Q1", "Q2", "Q3", "Q4", "Old", "Important",
    "Follow up", "Done", "Waiting", "Drafts", "Misc", "Pending", "Approved", "North", "South",
    "East", "West", "Internal", "External"};

void MailboxContext::BuildFolders() {
  Rng rng(DeriveSeed(spec_.seed, 0, kTagFolders));
  // Item shares (per 10000) of the default folders; user folders share 2000.
  AddFolder(0, FolderKind::kRoot, "Top of Information Store", 0, 0);
  AddFolder(kRootFolderId, FolderKind::kInbox, "Inbox", 1, 4000);
  AddFolder(kRootFolderId, FolderKind::kSentItems, "Sent Items", 1, 1800);
  AddFolder(kRootFolderId, FolderKind::kDrafts, "Drafts", 1, 80);
  AddFolder(kRootFolderId, FolderKind::kDeletedItems, "Deleted Items", 1, 700);
  AddFolder(kRootFolderId, FolderKind::kCalendar, "Calendar", 1, 600);
  AddFolder(kRootFolderId, FolderKind::kContacts, "Contacts", 1, 300);
  AddFolder(kRootFolderId, FolderKind::kTasks, "Tasks", 1, 200);
  AddFolder(kRootFolderId, FolderKind::kNotes, "Notes", 1, 100);
  AddFolder(kRootFolderId, FolderKind::kJournal, "Journal", 1, 50);
  constexpr uint32_t kInboxId = 2;

  // 3..30 user folders, growing with the log of the mailbox size.
  int log2_size = 0;
  for (uint64_t b = spec_.target_bytes / (64 << 10); b > 1; b >>= 1) ++log2_size;
  const int user_count = std::clamp(3 + (5 * log2_size) / 2 + int(rng.Uniform(4)), 3, 30);

  const size_t first_user = folders_.size();
  std::vector<uint32_t> parents;
  for (int u = 0; u < user_count; ++u) {
    // Parent: the root or Inbox (weight 3 each), or an existing user folder
    // that still has room below it (weight 2 each).
    parents.clear();
    for (int w = 0; w < 3; ++w) {
      parents.push_back(kRootFolderId);
      parents.push_back(kInboxId);
    }
    for (size_t i = first_user; i < folders_.size(); ++i) {
      if (folders_[i].depth < kMaxFolderDepth) {
        parents.push_back(folders_[i].info.id);
        parents.push_back(folders_[i].info.id);
      }
    }
    const uint32_t parent = parents[rng.Uniform(parents.size())];
    const FolderSlot& pf = folders_[parent - 1];
    const bool top = pf.info.kind != FolderKind::kUser;
    std::string name(top ? kTopFolderNames[rng.Uniform(std::size(kTopFolderNames))]
                         : kSubFolderNames[rng.Uniform(std::size(kSubFolderNames))]);
    if (SiblingNamed(parent, name)) {
      const std::string base = name;
      for (int k = 2; SiblingNamed(parent, name); ++k) name = base + " (" + std::to_string(k) + ")";
    }
    AddFolder(parent, FolderKind::kUser, std::move(name), pf.depth + 1, 0);
  }

  // Item shares of user folders: 1/(rank+1), ranks shuffled; about a quarter
  // of them (at least one) stay empty on purpose.
  const size_t n = folders_.size() - first_user;
  std::vector<size_t> rank(n);
  for (size_t i = 0; i < n; ++i) rank[i] = i;
  for (size_t i = n; i > 1; --i) std::swap(rank[i - 1], rank[rng.Uniform(i)]);
  bool any_empty = false;
  std::vector<bool> empty(n);
  for (size_t i = 0; i < n; ++i) {
    empty[i] = rng.PerMille(250);
    any_empty = any_empty || empty[i];
  }
  if (!any_empty && n > 0) empty[rng.Uniform(n)] = true;
  double harmonic = 0;
  for (size_t i = 0; i < n; ++i)
    if (!empty[i]) harmonic += 1.0 / double(rank[i] + 1);
  for (size_t i = 0; i < n; ++i) {
    if (empty[i]) continue;
    const uint64_t w = std::max<uint64_t>(1, uint64_t(2000.0 / double(rank[i] + 1) / harmonic));
    folders_[first_user + i].weight = w;
    total_weight_ += w;
  }
}

// ---------------------------------------------------------------------------
// Items

// Plausible moment in the four years before the epoch, biased to recent.
int64_t PastMicros(Rng& rng) {
  const double u = rng.Uniform01();
  return kEpochMicros - int64_t(u * u * double(kHistoryMicros)) - int64_t(rng.Uniform(kMinute));
}

// A moment `delta` after t, but not past the epoch (unless t already is).
Timestamp Later(int64_t t, int64_t delta) {
  return FromMicros(std::min(t + delta, std::max(t, kEpochMicros)));
}

uint64_t HeaderBytes(const Item& item) {
  uint64_t n = item.message_class.size() + item.subject.size() + item.sender.size() + 32;
  for (const std::string& r : item.recipients) n += r.size();
  return n;
}

// Body size in bytes: log-normal, capped.
size_t BodyBytes(Rng& rng, double median, double sigma, uint64_t budget) {
  const uint64_t b = ClampToU64(rng.LogNormalMedian(median, sigma), 64, kMaxBodyBytes);
  return size_t(std::max<uint64_t>(std::min(b, budget), 32));
}

struct AttachmentKind {
  std::string_view ext;
  std::string_view content_type;
  std::string_view magic;  // leading bytes of binary kinds
  bool text;
  double median;
  double sigma;
  uint32_t weight;
};

constexpr AttachmentKind kAttachmentKinds[] = {
    {"jpg", "image/jpeg", std::string_view("\xFF\xD8\xFF\xE0\x00\x10JFIF\x00", 11), false, 60e3, 1.0, 22},
    {"png", "image/png", "\x89PNG\r\n\x1A\n", false, 25e3, 1.0, 8},
    {"pdf", "application/pdf", "%PDF-1.7\n%\xE2\xE3\xCF\xD3\n", false, 50e3, 1.2, 20},
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
     "PK\x03\x04\x14\x00\x06\x00", false, 25e3, 1.0, 10},
    {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
     "PK\x03\x04\x14\x00\x06\x00", false, 18e3, 1.0, 7},
    {"zip", "application/zip", "PK\x03\x04\x14\x00\x00\x00", false, 80e3, 1.4, 5},
    {"csv", "text/csv", "", true, 10e3, 1.2, 10},
    {"log", "text/plain", "", true, 16e3, 1.4, 7},
    {"txt", "text/plain", "", true, 4e3, 1.0, 8},
};

const AttachmentKind& PickAttachmentKind(Rng& rng) {
  uint32_t total = 0;
  for (const auto& k : kAttachmentKinds) total += k.weight;
  uint32_t x = uint32_t(rng.Uniform(total));
  for (const auto& k : kAttachmentKinds) {
    if (x < k.weight) return k;
    x -= k.weight;
  }
  return kAttachmentKinds[0];
}

void AttachmentName(Rng& rng, const AttachmentKind& kind, Timestamp when, std::string* out) {
  TextWriter w(out);
  const std::string_view ext = kind.ext;
  if (ext == "jpg") {
    w.Append("IMG_");
    w.UintPadded(rng.Uniform(10000), 4);
  } else if (ext == "png") {
    w.Append("Screenshot ");
    w.IsoDate(when);
  } else if (ext == "pdf") {
    switch (rng.Uniform(3)) {
      case 0: w.Append("scan_"); w.IsoDate(when); break;
      case 1: w.Append("Invoice-"); w.Uint(10000 + rng.Uniform(90000)); break;
      default: w.RareWord(rng, true); w.Put('-'); w.RareWord(rng, false); break;
    }
  } else if (ext == "docx" || ext == "xlsx") {
    w.Append(Pick(rng, SubjectTopics()));
    if (rng.PerMille(400)) {
      w.Append(" v");
      w.Uint(1 + rng.Uniform(9));
    }
  } else if (ext == "zip") {
    w.RareWord(rng, false);
    w.Append("-files");
  } else if (ext == "csv") {
    w.Append("export_");
    w.IsoDate(when);
  } else if (ext == "log") {
    w.RareWord(rng, false);
    w.Append("-server");
  } else {
    w.Append(rng.PerMille(500) ? "notes" : "readme");
  }
  w.Put('.');
  w.Append(ext);
}

void RandomBytes(Rng& rng, size_t n, std::string* out) {
  const size_t start = out->size();
  out->resize(start + n);
  char* d = out->data() + start;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint64_t v = rng.Next();
    std::memcpy(d + i, &v, 8);
  }
  if (i < n) {
    const uint64_t v = rng.Next();
    std::memcpy(d + i, &v, n - i);
  }
}

constexpr std::string_view kRegions[] = {"North", "South", "East", "West", "Central", "EMEA", "APAC"};
constexpr std::string_view kLogLevels[] = {"INFO", "INFO", "INFO", "INFO", "DEBUG", "DEBUG", "WARN", "ERROR"};

void CsvContent(Rng& rng, size_t n, Timestamp when, std::string* out) {
  TextWriter w(out, n + 256);
  w.Append("date,region,product,units,unit_price,total,sales_rep\n");
  int64_t t = when.time_since_epoch().count() - 90 * kDay;
  while (w.size() < n) {
    t += int64_t(rng.Uniform(2 * kDay));
    w.IsoDate(FromMicros(t));
    w.Put(',');
    w.Append(kRegions[rng.Uniform(std::size(kRegions))]);
    w.Put(',');
    w.RareWord(rng, true);
    w.Put(',');
    const uint64_t units = 1 + rng.Uniform(500);
    const uint64_t price = 199 + rng.Uniform(50000);
    w.Uint(units);
    w.Put(',');
    w.Decimal(price);
    w.Put(',');
    w.Decimal(units * price);
    w.Put(',');
    w.FirstName(rng);
    w.Put('\n');
  }
}

void LogContent(Rng& rng, size_t n, Timestamp when, std::string* out) {
  TextWriter w(out, n + 256);
  int64_t t = when.time_since_epoch().count() - kDay;
  while (w.size() < n) {
    t += int64_t(rng.Uniform(5 * 1000000));
    w.IsoDateTime(FromMicros(t));
    w.Put('.');
    w.UintPadded(uint64_t(t / 1000 % 1000), 3);
    w.Put(' ');
    w.Append(kLogLevels[rng.Uniform(std::size(kLogLevels))]);
    w.Append(" [worker-");
    w.Uint(rng.Uniform(16));
    w.Append("] ");
    w.RareWord(rng, false);
    w.Append(": ");
    w.Phrase(rng, 3 + uint32_t(rng.Uniform(6)));
    w.Append(" (request=");
    w.Uint(rng.Uniform(1000000));
    w.Append(", ");
    w.Uint(rng.Uniform(2000));
    w.Append(" ms)\n");
  }
}

// An item being generated: its properties, and the text body and attachments
// that RenderMime() turns into its RFC 5322 message once they are complete.
struct Draft : Item {
  std::string body;
  std::vector<Attachment> attachments;
};

// Adds up to `count` attachments within `budget` bytes (name, type and data).
void AddAttachments(Rng& rng, int count, uint64_t budget, Timestamp when, Draft* item) {
  for (int i = 0; i < count; ++i) {
    const AttachmentKind& kind = PickAttachmentKind(rng);
    Attachment a;
    AttachmentName(rng, kind, when, &a.name);
    a.content_type = std::string(kind.content_type);
    // The message holds an attachment base64-encoded in 76-column lines
    // (78 bytes for every 57) after about 150 bytes of part headers, so that
    // is what it costs of the budget.
    const uint64_t overhead = 2 * a.name.size() + a.content_type.size() + 150;
    if (budget < overhead + 360) return;
    const uint64_t room = (budget - overhead) * 57 / 78;
    const size_t size = size_t(std::min(room, ClampToU64(rng.LogNormalMedian(kind.median, kind.sigma),
                                                         256, kMaxItemBytes)));
    if (kind.text) {
      if (kind.ext == "csv") {
        CsvContent(rng, size, when, &a.data);
      } else if (kind.ext == "log") {
        LogContent(rng, size, when, &a.data);
      } else {
        TextWriter w(&a.data, size + 64);
        w.Prose(rng, size);
      }
      if (a.data.size() > size) a.data.resize(size);  // stay within the budget
    } else {
      a.data.reserve(size);
      a.data.assign(kind.magic.substr(0, std::min<size_t>(kind.magic.size(), size)));
      RandomBytes(rng, size - a.data.size(), &a.data);
    }
    budget -= std::min(budget, overhead + (a.data.size() + 56) / 57 * 78);
    item->attachments.push_back(std::move(a));
  }
}

constexpr std::string_view kGreetings[] = {"Hi ", "Hello ", "Dear ", "Hey ", "Good morning "};
constexpr std::string_view kClosings[] = {"Thanks,", "Best regards,", "Kind regards,", "Cheers,",
                                          "Thank you,", "Best,", "Regards,"};
constexpr std::string_view kDisclaimer =
    "CONFIDENTIALITY NOTICE: This e-mail message, including any attachments, is for the sole use "
    "of the intended recipient(s) and may contain confidential and privileged information. Any "
    "unauthorized review, use, disclosure or distribution is prohibited. If you are not the "
    "intended recipient, please contact the sender by reply e-mail and destroy all copies of the "
    "original message.\n";

void Subject(Rng& rng, std::string* out) {
  TextWriter w(out);
  switch (rng.Uniform(4)) {
    case 0:
      w.Phrase(rng, 2 + uint32_t(rng.Uniform(5)));
      break;
    case 1:
      w.Append(Pick(rng, SubjectTopics()));
      w.Append(" - ");
      w.Phrase(rng, 1 + uint32_t(rng.Uniform(3)));
      break;
    default:
      w.Append(Pick(rng, SubjectTopics()));
      if (rng.PerMille(300)) {
        w.Append(" #");
        w.Uint(1000 + rng.Uniform(9000));
      }
      break;
  }
}

// IPM.Note in Inbox, Sent Items, Drafts, Deleted Items or a user folder.
void MakeMessage(const MailboxContext& ctx, FolderKind kind, Rng& rng, uint64_t budget, Draft* item) {
  item->message_class = std::string(message_class::kNote);
  const Person& me = ctx.owner();
  const bool outgoing = kind == FolderKind::kSentItems || kind == FolderKind::kDrafts ||
                        (kind == FolderKind::kDeletedItems && rng.PerMille(300)) ||
                        (kind == FolderKind::kUser && rng.PerMille(150));
  const Person& other = ctx.Correspondent(rng);
  const Person& from = outgoing ? me : other;

  // Recipients: 1 (60%), 2-3 (25%) or 4-10 (15%).
  const uint64_t r = rng.Uniform(100);
  const size_t nrcpt = r < 60 ? 1 : (r < 85 ? 2 + rng.Uniform(2) : 4 + rng.Uniform(7));
  item->recipients.reserve(nrcpt);
  item->recipients.push_back(outgoing ? other.full : me.full);
  while (item->recipients.size() < nrcpt) item->recipients.push_back(ctx.Correspondent(rng).full);
  item->sender = from.full;

  const uint64_t kindr = rng.Uniform(1000);
  const bool reply = kindr < 350;
  const bool forward = !reply && kindr < 430;
  if (reply) item->subject = "RE: ";
  if (forward) item->subject = "FW: ";
  Subject(rng, &item->subject);

  const int64_t t = PastMicros(rng);
  item->created = item->received = FromMicros(t);
  if (kind == FolderKind::kDrafts) {
    item->flags = kFlagDraft | kFlagRead;
    item->modified = Later(t, int64_t(rng.Uniform(2 * kDay)));
  } else if (outgoing) {
    item->flags = kFlagRead;
    item->modified = item->created;
  } else {
    if (rng.PerMille(kind == FolderKind::kDeletedItems ? 950 : 850)) item->flags |= kFlagRead;
    if (rng.PerMille(40)) item->flags |= kFlagFlagged;
    if (rng.PerMille(180)) item->flags |= kFlagAnswered;
    item->modified = (item->flags & kFlagRead) ? Later(t, int64_t(rng.Uniform(3 * kDay)))
                                                : item->created;
  }

  // Attachments are decided first so that the body leaves them room.
  int attachments = 0;
  if (rng.PerMille(150)) {
    const uint64_t a = rng.Uniform(100);
    attachments = a < 65 ? 1 : (a < 90 ? 2 : 3);
  }

  const uint64_t header = HeaderBytes(*item);
  const uint64_t room = budget > header ? budget - header : 0;
  const size_t body = BodyBytes(rng, 2200, 0.9, attachments > 0 ? std::max<uint64_t>(room / 4, 256) : room);
  {
    TextWriter w(&item->body, body + 512);
    const size_t end = body;
    const uint64_t g = rng.Uniform(10);
    if (g < 8) {
      w.Append(kGreetings[g % std::size(kGreetings)]);
      w.Append(outgoing ? other.first : me.first);
      w.Append(",\n\n");
    }
    const bool quoted = (reply || forward) && end > 600;
    const size_t fresh = quoted ? end * (2 + rng.Uniform(4)) / 10 : (end > 250 ? end - 200 : 48);
    w.Prose(rng, fresh);
    w.Append("\n\n");
    w.Append(kClosings[rng.Uniform(std::size(kClosings))]);
    w.Put('\n');
    w.Append(from.signature);
    if (from.external && rng.PerMille(300)) {
      w.Put('\n');
      w.Append(kDisclaimer);
    }
    if (quoted && w.size() + 100 < end) {
      const Person& earlier = outgoing ? other : (rng.PerMille(700) ? me : ctx.Correspondent(rng));
      const Timestamp before = FromMicros(t - int64_t(rng.Uniform(5 * kDay)) - kHour);
      if (reply) {
        w.Append("\nOn ");
        w.MailDate(before);
        w.Append(", ");
        w.Append(earlier.full);
        w.Append(" wrote:\n> ");
        w.Prose(rng, end - w.size(), "> ", 76);
      } else {
        w.Append("\n-----Original Message-----\nFrom: ");
        w.Append(earlier.full);
        w.Append("\nSent: ");
        w.LongDateTime(before);
        w.Append("\nTo: ");
        w.Append(outgoing ? me.full : other.full);
        w.Append("\nSubject: ");
        w.Append(std::string_view(item->subject).substr(4));
        w.Append("\n\n");
        w.Prose(rng, end - w.size());
      }
    }
    w.Put('\n');
  }

  if (attachments > 0) {
    const uint64_t used = header + item->body.size();
    if (budget > used) AddAttachments(rng, attachments, budget - used, item->created, item);
  }
}

void MakeAppointment(const MailboxContext& ctx, Rng& rng, uint64_t budget, Draft* item) {
  item->message_class = std::string(message_class::kAppointment);
  const bool mine = rng.PerMille(500);
  item->sender = mine ? ctx.owner().full : ctx.Correspondent(rng).full;
  const size_t attendees = 1 + rng.Uniform(8);
  for (size_t i = 0; i < attendees; ++i) item->recipients.push_back(ctx.Correspondent(rng).full);
  if (rng.PerMille(300)) item->subject = "Meeting: ";
  item->subject += Pick(rng, SubjectTopics());
  const int64_t t = PastMicros(rng);
  item->created = item->received = FromMicros(t);
  item->modified = Later(t, int64_t(rng.Uniform(7 * kDay)));
  item->flags = kFlagRead;

  const uint64_t header = HeaderBytes(*item);
  const size_t body = BodyBytes(rng, 900, 0.8, budget > header ? budget - header : 0);
  TextWriter w(&item->body, body + 256);
  // Starts at the next half hour, 1..14 days after creation.
  const int64_t start = (t + int64_t(1 + rng.Uniform(14)) * kDay) / (30 * kMinute) * (30 * kMinute);
  w.Append("When: ");
  w.LongDateTime(FromMicros(start));
  w.Append(" - ");
  w.LongDateTime(FromMicros(start + int64_t(1 + rng.Uniform(4)) * 30 * kMinute));
  w.Append("\nWhere: ");
  if (rng.PerMille(500)) {
    w.Append("Online meeting https://meet.example.com/j/");
    w.Uint(1000000000 + rng.Uniform(9000000000ull));
  } else {
    w.Append("Conference Room ");
    w.Uint(1 + rng.Uniform(40));
    w.Put(char('A' + rng.Uniform(4)));
  }
  w.Append("\n\nAgenda:\n");
  const uint64_t points = 1 + rng.Uniform(5);
  for (uint64_t i = 1; i <= points; ++i) {
    w.Uint(i);
    w.Append(". ");
    w.Phrase(rng, 2 + uint32_t(rng.Uniform(6)));
    w.Put('\n');
  }
  w.Put('\n');
  if (w.size() < body) w.Prose(rng, body - w.size());
  w.Put('\n');
}

void MakeContact(const MailboxContext& ctx, Rng& rng, uint64_t budget, Draft* item) {
  item->message_class = std::string(message_class::kContact);
  const Person& p = ctx.Correspondent(rng);
  item->subject = p.display;
  item->recipients.push_back(p.address);
  const int64_t t = PastMicros(rng);
  item->created = item->received = FromMicros(t);
  item->modified = Later(t, int64_t(rng.Uniform(90 * kDay)));
  item->flags = kFlagRead;

  const uint64_t header = HeaderBytes(*item);
  const size_t body = BodyBytes(rng, 500, 0.6, budget > header ? budget - header : 0);
  TextWriter w(&item->body, body + 512);
  w.Append("Full name: ");
  w.Append(p.display);
  w.Append("\nE-mail: ");
  w.Append(p.address);
  w.Append("\nBusiness phone: ");
  w.Append(MakePhone(rng));
  w.Append("\nMobile phone: ");
  w.Append(MakePhone(rng));
  w.Append("\nBusiness address: ");
  w.Uint(1 + rng.Uniform(9999));
  w.Put(' ');
  w.RareWord(rng, true);
  w.Append(" Street\n");
  w.Append(Pick(rng, Cities()));
  w.Append("\nJob title: ");
  w.Append(Pick(rng, JobTitles()));
  w.Append("\nBirthday: ");
  w.IsoDate(FromMicros(kEpochMicros - int64_t(20 + rng.Uniform(45)) * 365 * kDay -
                       int64_t(rng.Uniform(365)) * kDay));
  w.Append("\n\nNotes:\n");
  if (w.size() < body) w.Prose(rng, body - w.size());
  w.Put('\n');
}

void MakeTask(const MailboxContext& ctx, Rng& rng, uint64_t budget, Draft* item) {
  static constexpr std::string_view kVerbs[] = {"Follow up: ", "Prepare ", "Review ", "Send ", "Finish "};
  static constexpr std::string_view kStatus[] = {"Not started", "In progress", "Completed",
                                                 "Waiting on someone else", "Deferred"};
  static constexpr std::string_view kPriority[] = {"Low", "Normal", "Normal", "High"};
  item->message_class = std::string(message_class::kTask);
  item->subject = std::string(Pick(rng, std::span<const std::string_view>(kVerbs)));
  item->subject += Pick(rng, SubjectTopics());
  item->sender = ctx.owner().full;
  const int64_t t = PastMicros(rng);
  item->created = item->received = FromMicros(t);
  item->modified = Later(t, int64_t(rng.Uniform(30 * kDay)));
  const uint64_t status = rng.Uniform(std::size(kStatus));
  item->flags = kFlagRead | (rng.PerMille(200) ? kFlagFlagged : 0u);

  const uint64_t header = HeaderBytes(*item);
  const size_t body = BodyBytes(rng, 600, 0.8, budget > header ? budget - header : 0);
  TextWriter w(&item->body, body + 256);
  w.Append("Status: ");
  w.Append(kStatus[status]);
  w.Append("\nPriority: ");
  w.Append(kPriority[rng.Uniform(std::size(kPriority))]);
  w.Append("\nDue date: ");
  w.IsoDate(FromMicros(t + int64_t(1 + rng.Uniform(30)) * kDay));
  w.Append("\n% Complete: ");
  w.Uint(status == 2 ? 100 : (status == 0 ? 0 : rng.Uniform(10) * 10));
  w.Append("\n\n");
  if (w.size() < body) w.Prose(rng, body - w.size());
  w.Put('\n');
}

void MakeStickyNote(const MailboxContext& ctx, Rng& rng, uint64_t budget, Draft* item) {
  item->message_class = std::string(message_class::kStickyNote);
  item->sender = ctx.owner().full;
  const int64_t t = PastMicros(rng);
  item->created = item->received = FromMicros(t);
  item->modified = Later(t, int64_t(rng.Uniform(10 * kDay)));
  item->flags = kFlagRead;
  const size_t body = BodyBytes(rng, 250, 0.9, budget > 200 ? budget - 200 : 0);
  {
    TextWriter w(&item->body, body + 256);
    w.Prose(rng, body);
    w.Put('\n');
  }
  // Outlook shows the first line as the subject.
  const size_t cut = std::min<size_t>(item->body.find_first_of(".?!\n"), 60);
  item->subject = item->body.substr(0, cut);
  if (item->subject.empty()) item->subject = "Note";
}

void MakeJournal(const MailboxContext& ctx, Rng& rng, uint64_t budget, Draft* item) {
  static constexpr std::string_view kEntryTypes[] = {"Phone call", "Meeting", "Conversation",
                                                     "E-mail message", "Task"};
  item->message_class = std::string(message_class::kJournal);
  const Person& p = ctx.Correspondent(rng);
  const std::string_view type = kEntryTypes[rng.Uniform(std::size(kEntryTypes))];
  item->subject = std::string(type) + ": " + p.display;
  item->sender = ctx.owner().full;
  item->recipients.push_back(p.full);
  const int64_t t = PastMicros(rng);
  item->created = item->received = item->modified = FromMicros(t);
  item->flags = kFlagRead;

  const uint64_t header = HeaderBytes(*item);
  const size_t body = BodyBytes(rng, 500, 0.8, budget > header ? budget - header : 0);
  TextWriter w(&item->body, body + 256);
  w.Append("Entry type: ");
  w.Append(type);
  w.Append("\nStart: ");
  w.LongDateTime(item->created);
  w.Append("\nDuration: ");
  w.Uint(5 + rng.Uniform(85));
  w.Append(" minutes\nContact: ");
  w.Append(p.full);
  w.Append("\n\n");
  if (w.size() < body) w.Prose(rng, body - w.size());
  w.Put('\n');
}

// Item `ordinal` of the mailbox, at most about `remaining` logical bytes
// (never less than kMinItemBudget, never more than kMaxItemBytes).
uint32_t GenerateItem(const MailboxContext& ctx, uint64_t ordinal, uint64_t remaining, Item* item) {
  const uint64_t seed = DeriveSeed(ctx.spec().seed, ordinal, kTagItem);
  Rng rng(seed);
  const FolderSlot& folder = ctx.PickFolder(rng);
  const uint64_t budget = std::clamp(remaining, kMinItemBudget, kMaxItemBytes);
  Draft d;
  switch (folder.info.kind) {
    case FolderKind::kCalendar: MakeAppointment(ctx, rng, budget, &d); break;
    case FolderKind::kContacts: MakeContact(ctx, rng, budget, &d); break;
    case FolderKind::kTasks: MakeTask(ctx, rng, budget, &d); break;
    case FolderKind::kNotes: MakeStickyNote(ctx, rng, budget, &d); break;
    case FolderKind::kJournal: MakeJournal(ctx, rng, budget, &d); break;
    default: MakeMessage(ctx, folder.info.kind, rng, budget, &d); break;
  }
  // Unique per item of a dataset: the item's seed derives from the dataset
  // seed, the mailbox and the ordinal.
  d.message_id = std::to_string(ordinal) + ".";
  for (int shift = 60; shift >= 0; shift -= 4) d.message_id.push_back("0123456789abcdef"[(seed >> shift) & 0xf]);
  d.message_id += "@mbxmove.example.com";
  RenderMime(d, d.body, d.attachments, seed, &d.mime);
  *item = std::move(static_cast<Item&>(d));
  return folder.info.id;
}

}  // namespace

// ---------------------------------------------------------------------------
// Public API

const std::vector<Preset>& Presets() { return PresetList(); }

Result<Preset> FindPreset(std::string_view name) {
  for (const Preset& p : PresetList())
    if (p.name == name) return p;
  std::string known;
  for (const Preset& p : PresetList()) {
    if (!known.empty()) known += ", ";
    known += p.name;
  }
  return Status::InvalidArgument("unknown preset '" + std::string(name) + "' (expected one of: " +
                                 known + ")");
}

std::vector<MailboxSpec> PlanMailboxes(const GenOptions& options) {
  const uint32_t n = std::min(options.mailboxes, kMaxPlanMailboxes);
  std::vector<MailboxSpec> plan(n);
  std::vector<double> weight(n);
  double sum = 0;
  const auto first_names = FirstNames();
  const auto last_names = LastNames();
  for (uint32_t i = 0; i < n; ++i) {
    MailboxSpec& m = plan[i];
    Rng rng(DeriveSeed(options.seed, i, kTagIdentity));
    m.index = i;
    for (int half = 0; half < 2; ++half) {
      const uint64_t v = rng.Next();
      for (int b = 0; b < 8; ++b) m.guid.bytes[size_t(half * 8 + b)] = uint8_t(v >> (8 * b));
    }
    m.guid.bytes[6] = uint8_t((m.guid.bytes[6] & 0x0f) | 0x40);  // RFC 4122 version 4
    m.guid.bytes[8] = uint8_t((m.guid.bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
    const std::string_view first = first_names[rng.Uniform(first_names.size())];
    const std::string_view last = last_names[rng.Uniform(last_names.size())];
    m.display_name = std::string(first) + " " + std::string(last);
    std::string num = std::to_string(i);
    m.user_name = "user" + std::string(num.size() < 4 ? 4 - num.size() : 0, '0') + num;
    m.smtp = EmailLocalPart(first, last) + num + "@example.com";
    m.seed = DeriveSeed(options.seed, i, kTagMailbox);
    weight[i] = DetExp(kMailboxSizeSigma * rng.Normal());
    sum += weight[i];
  }

  // Every mailbox gets the minimum; the rest is shared by weight.
  const uint64_t floor_total = uint64_t(n) * kMinMailboxBytes;
  const double extra = options.total_bytes > floor_total ? double(options.total_bytes - floor_total) : 0;
  const uint64_t max_share = std::numeric_limits<uint64_t>::max() / 2;
  for (uint32_t i = 0; i < n; ++i) {
    plan[i].target_bytes = kMinMailboxBytes + (sum > 0 ? ClampToU64(extra * (weight[i] / sum), 0, max_share) : 0);
  }
  return plan;
}

Status GenerateMailbox(const MailboxSpec& spec, FolderSink* sink) {
  if (sink == nullptr) return Status::InvalidArgument("GenerateMailbox: no sink");
  const MailboxContext ctx(spec);
  for (const FolderSlot& f : ctx.folders()) MBX_RETURN_IF_ERROR(sink->OnFolder(f.info));
  uint64_t logical = 0;
  for (uint64_t ordinal = 1; logical < spec.target_bytes; ++ordinal) {
    Item item;
    const uint32_t folder_id = GenerateItem(ctx, ordinal, spec.target_bytes - logical, &item);
    logical += std::max<uint64_t>(1, item.LogicalSize());
    MBX_RETURN_IF_ERROR(sink->OnItem(folder_id, ordinal, std::move(item)));
  }
  return Status::Ok();
}

Item GenerateDelivery(const MailboxSpec& spec, uint64_t ordinal, uint64_t bytes) {
  const MailboxContext ctx(spec);
  const uint64_t seed = DeriveSeed(spec.seed, ordinal, kTagDelivery);
  Rng rng(seed);
  Draft d;
  MakeMessage(ctx, FolderKind::kInbox, rng, std::clamp(bytes, kMinItemBudget, kMaxItemBytes), &d);
  d.flags = kFlagRecent;
  d.message_id = "d" + std::to_string(ordinal) + ".";
  for (int shift = 60; shift >= 0; shift -= 4) d.message_id.push_back("0123456789abcdef"[(seed >> shift) & 0xf]);
  d.message_id += "@mbxmove.example.com";
  RenderMime(d, d.body, d.attachments, seed, &d.mime);
  return std::move(static_cast<Item&>(d));
}

}  // namespace mbx::datagen
