// Store: what clients do to a mailbox (ApplyClientOp) and the change index
// an online move syncs from (TrackChanges, ReadChanges).
//
// Every client operation is one WriteBatch (so logged and replayed like any
// other write) holding the changed records and the mailbox header with its
// change number bumped; while the mailbox is tracked, the batch also holds
// the operation's change-index entry under (guid, change number). The header
// is read and written under its header lock, as TransitionMailbox does, so an
// operation and a move's lock are ordered: an operation either commits
// before the lock (and a sync after the lock sees it) or is refused.
//
// Change-index value: kind u8, id varint, before fixed32, after fixed32.
#include <algorithm>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "store/coding.h"
#include "store/item_codec.h"
#include "store/keys.h"
#include "store/store.h"

namespace mbx {

namespace {

constexpr size_t kMaxFolderName = 255;

std::string ChangeKey(const Guid& g, uint64_t cn) {
  std::string k(g.AsKey());
  PutBE64(&k, cn);
  return k;
}

std::string EncodeChange(const ChangeEntry& e) {
  std::string v;
  v.push_back(char(e.kind));
  PutVarint64(&v, e.id);
  PutFixed32(&v, e.before_folder);
  PutFixed32(&v, e.after_folder);
  return v;
}

Result<ChangeEntry> DecodeChange(std::string_view key, std::string_view value) {
  if (key.size() != 24) return Status::Corruption("damaged change-index key");
  ChangeEntry e;
  e.change_number = GetBE64(key.data() + 16);
  ByteReader r(value);
  uint8_t kind = 0;
  r.GetU8(&kind);
  r.GetVarint64(&e.id);
  r.GetFixed32(&e.before_folder);
  r.GetFixed32(&e.after_folder);
  if (!r.ok() || !r.empty() || kind < 1 || kind > uint8_t(ChangeEntry::Kind::kDeleteFolder)) {
    return Status::Corruption("damaged change-index entry " + std::to_string(e.change_number));
  }
  e.kind = ChangeEntry::Kind(kind);
  return e;
}

Status CheckFolderName(std::string_view name) {
  if (name.empty()) return Status::InvalidArgument("a folder name must not be empty");
  if (name.size() > kMaxFolderName) {
    return Status::InvalidArgument("a folder name is at most " + std::to_string(kMaxFolderName) + " bytes");
  }
  for (char c : name) {
    if (c == '/' || static_cast<unsigned char>(c) < 0x20) {
      return Status::InvalidArgument("a folder name must not hold '/' or control characters");
    }
  }
  return Status::Ok();
}

}  // namespace

std::string_view ClientOpKindName(ClientOp::Kind k) {
  switch (k) {
    case ClientOp::Kind::kDeliver: return "deliver";
    case ClientOp::Kind::kSetFlags: return "flag";
    case ClientOp::Kind::kMoveItem: return "move";
    case ClientOp::Kind::kDeleteItem: return "delete";
    case ClientOp::Kind::kCreateFolder: return "folder-create";
    case ClientOp::Kind::kRenameFolder: return "folder-rename";
    case ClientOp::Kind::kDeleteFolder: return "folder-delete";
  }
  return "unknown";
}

std::string_view ChangeKindName(ChangeEntry::Kind k) {
  return ClientOpKindName(ClientOp::Kind(uint8_t(k)));
}

Status StoreReader::ForEachChange(const Guid& guid, uint64_t since,
                                  const std::function<Status(const ChangeEntry&)>& fn) const {
  LmdbCursor cur;
  MBX_RETURN_IF_ERROR(cur.Open(txn_.get(), store_->dbi_[int(Db::kChanges)]));
  const std::string start = ChangeKey(guid, since == ~uint64_t{0} ? since : since + 1);
  MDB_val k = ToVal(start), v;
  int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_SET_RANGE);
  while (rc == 0 && FromVal(k).substr(0, 16) == guid.AsKey()) {
    MBX_ASSIGN_OR_RETURN(ChangeEntry e, DecodeChange(FromVal(k), FromVal(v)));
    if (e.change_number > since) MBX_RETURN_IF_ERROR(fn(e));
    rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT);
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return LmdbStatus(rc, "reading the change index");
  return Status::Ok();
}

Result<ClientOpResult> Store::ApplyClientOp(const Guid& mailbox, const ClientOp& op) {
  using K = ClientOp::Kind;
  const std::string who = "mailbox " + mailbox.ToString();
  // Work that needs no header: a delivered record is checked before the lock.
  RecordInfo delivered;
  if (op.kind == K::kDeliver) {
    auto info = InspectRecord(op.record);
    if (!info.ok()) return Status::InvalidArgument("the delivered item is not a valid record: " + info.status().message());
    delivered = std::move(*info);
  }
  auto held = header_locks_.Lock(mailbox);
  MailboxInfo info;
  WriteBatch b;
  ClientOpResult result;
  ChangeEntry change;
  change.kind = ChangeEntry::Kind(uint8_t(op.kind));
  {
    MBX_ASSIGN_OR_RETURN(StoreReader r, BeginRead());
    MBX_ASSIGN_OR_RETURN(info, r.GetMailbox(mailbox));
    if (info.state == MailboxState::kMovingOut || info.state == MailboxState::kMovingIn) {
      return Status::Busy(who + ": move in progress, " + std::string(ClientOpKindName(op.kind)) + " refused");
    }
    if (info.state != MailboxState::kActive) return Status::NotFound(who + " is not active in store " + name_);
    std::vector<FolderInfo> folders;
    MBX_RETURN_IF_ERROR(r.ListFolders(mailbox, &folders));
    auto find = [&](uint32_t id) -> const FolderInfo* {
      for (const auto& f : folders) {
        if (f.id == id) return &f;
      }
      return nullptr;
    };
    auto need_folder = [&](uint32_t id) -> Result<const FolderInfo*> {
      const FolderInfo* f = find(id);
      if (f == nullptr) return Status::NotFound(who + " has no folder " + std::to_string(id));
      return f;
    };
    auto need_user_folder = [&](uint32_t id) -> Result<const FolderInfo*> {
      MBX_ASSIGN_OR_RETURN(const FolderInfo* f, need_folder(id));
      if (f->kind != FolderKind::kUser) {
        return Status::InvalidArgument("folder '" + f->name + "' is a default folder: it cannot be renamed or deleted");
      }
      return f;
    };
    auto sibling_named = [&](uint32_t parent, std::string_view name, uint32_t except) {
      for (const auto& f : folders) {
        if (f.parent_id == parent && f.id != except && f.name == name) return true;
      }
      return false;
    };
    if (info.change_number == std::numeric_limits<uint64_t>::max()) {
      return Status::InvalidArgument(who + "'s change number is at its limit");
    }
    switch (op.kind) {
      case K::kDeliver: {
        MBX_RETURN_IF_ERROR(need_folder(op.folder_id).status());
        if (info.next_item_id == std::numeric_limits<uint64_t>::max()) {
          return Status::InvalidArgument(who + " has no item id left");
        }
        const uint64_t id = info.next_item_id++;
        ++info.item_count;
        info.stored_bytes += op.record.size();
        info.logical_bytes += delivered.logical_bytes;
        b.PutItem(mailbox, op.folder_id, id, op.record);
        result.id = id;
        change.id = id;
        change.after_folder = op.folder_id;
        break;
      }
      case K::kSetFlags:
      case K::kMoveItem:
      case K::kDeleteItem: {
        MBX_RETURN_IF_ERROR(need_folder(op.folder_id).status());
        auto rec = r.GetItem(mailbox, op.folder_id, op.item_id);
        if (!rec.ok()) {
          if (rec.status().IsNotFound()) {
            return Status::NotFound(who + " has no item " + std::to_string(op.item_id) + " in folder " +
                                    std::to_string(op.folder_id));
          }
          return rec.status();
        }
        auto inspected = InspectRecord(*rec);
        if (!inspected.ok()) {
          return Status::Corruption("item " + std::to_string(op.item_id) + " is damaged: " +
                                    inspected.status().message());
        }
        const RecordInfo& ri = *inspected;
        change.id = op.item_id;
        change.before_folder = op.folder_id;
        if (op.kind == K::kSetFlags) {
          MBX_ASSIGN_OR_RETURN(Item item, DecodeItem(*rec));
          item.flags = op.flags;
          item.keywords = op.keywords;
          std::string out;
          MBX_RETURN_IF_ERROR(EncodeItem(item, CodecOptions{zstd_level_}, &out));
          info.stored_bytes = info.stored_bytes - rec->size() + out.size();
          info.logical_bytes = info.logical_bytes - ri.logical_bytes + item.LogicalSize();
          b.PutItem(mailbox, op.folder_id, op.item_id, std::move(out));
          change.after_folder = op.folder_id;
        } else if (op.kind == K::kMoveItem) {
          MBX_RETURN_IF_ERROR(need_folder(op.to_folder_id).status());
          if (op.to_folder_id == op.folder_id) return Status::InvalidArgument("the item is in that folder already");
          b.DeleteItem(mailbox, op.folder_id, op.item_id);
          b.PutItem(mailbox, op.to_folder_id, op.item_id, std::string(*rec));
          change.after_folder = op.to_folder_id;
        } else {
          b.DeleteItem(mailbox, op.folder_id, op.item_id);
          --info.item_count;
          info.stored_bytes -= std::min<uint64_t>(info.stored_bytes, rec->size());
          info.logical_bytes -= std::min<uint64_t>(info.logical_bytes, ri.logical_bytes);
        }
        break;
      }
      case K::kCreateFolder: {
        MBX_RETURN_IF_ERROR(CheckFolderName(op.name));
        MBX_RETURN_IF_ERROR(need_folder(op.folder_id).status());
        if (sibling_named(op.folder_id, op.name, 0)) {
          return Status::AlreadyExists("a folder named '" + op.name + "' is there already");
        }
        uint64_t next = 1;
        for (const auto& f : folders) next = std::max<uint64_t>(next, uint64_t(f.id) + 1);
        if (next > std::numeric_limits<uint32_t>::max()) {
          return Status::InvalidArgument(who + " has no folder id left (its highest is " +
                                         std::to_string(next - 1) + ")");
        }
        FolderInfo f;
        f.id = uint32_t(next);
        f.parent_id = op.folder_id;
        f.kind = FolderKind::kUser;
        f.name = op.name;
        b.PutFolder(mailbox, f);
        ++info.folder_count;
        result.id = f.id;
        change.id = f.id;
        break;
      }
      case K::kRenameFolder: {
        MBX_RETURN_IF_ERROR(CheckFolderName(op.name));
        MBX_ASSIGN_OR_RETURN(const FolderInfo* f, need_user_folder(op.folder_id));
        if (sibling_named(f->parent_id, op.name, f->id)) {
          return Status::AlreadyExists("a folder named '" + op.name + "' is there already");
        }
        FolderInfo renamed = *f;
        renamed.name = op.name;
        b.PutFolder(mailbox, renamed);
        change.id = f->id;
        break;
      }
      case K::kDeleteFolder: {
        MBX_ASSIGN_OR_RETURN(const FolderInfo* f, need_user_folder(op.folder_id));
        for (const auto& c : folders) {
          if (c.parent_id == f->id) return Status::InvalidArgument("folder '" + f->name + "' has subfolders");
        }
        uint64_t last = 0;
        bool has_items = false;
        MBX_RETURN_IF_ERROR(r.ScanItems(mailbox, f->id, 0, 1, [&](uint64_t, std::string_view) {
          has_items = true;
          return Status::Ok();
        }, &last));
        if (has_items) return Status::InvalidArgument("folder '" + f->name + "' is not empty");
        b.Delete(Db::kFolders, keys::Folder(mailbox, f->id));
        if (info.folder_count > 0) --info.folder_count;
        change.id = f->id;
        break;
      }
      default:
        return Status::InvalidArgument("unknown client operation " + std::to_string(int(op.kind)));
    }
  }
  change.change_number = ++info.change_number;
  if (info.tracked) b.Put(Db::kChanges, ChangeKey(mailbox, change.change_number), EncodeChange(change));
  b.PutMailbox(info);
  MBX_RETURN_IF_ERROR(Write(std::move(b)));
  result.change_number = info.change_number;
  return result;
}

Result<uint64_t> Store::TrackChanges(const Guid& mailbox, uint64_t prune_through) {
  auto held = header_locks_.Lock(mailbox);
  MailboxInfo info;
  std::vector<std::string> prune;
  {
    MBX_ASSIGN_OR_RETURN(StoreReader r, BeginRead());
    MBX_ASSIGN_OR_RETURN(info, r.GetMailbox(mailbox));
    if (prune_through == kStopTracking) {
      if (!info.tracked) return info.change_number;
    } else {
      if (prune_through > info.change_number) {
        return Status::InvalidArgument("cannot prune through change " + std::to_string(prune_through) + ": mailbox " +
                                       mailbox.ToString() + " is at change " + std::to_string(info.change_number));
      }
      Status s = r.ForEachChange(mailbox, 0, [&](const ChangeEntry& e) {
        if (e.change_number > prune_through) return Status::Aborted("stop");
        prune.push_back(ChangeKey(mailbox, e.change_number));
        return Status::Ok();
      });
      if (!s.ok() && s.code() != Status::Code::kAborted) return s;
      // Nothing to prune: no write (pruned_through bounds what was removed,
      // and nothing was).
      if (info.tracked && prune.empty()) return info.change_number;
    }
  }
  WriteBatch b;
  if (prune_through == kStopTracking) {
    b.DeletePrefix(Db::kChanges, keys::Mailbox(mailbox));
    info.tracked = false;
    info.pruned_through = info.change_number;
  } else {
    for (auto& k : prune) b.Delete(Db::kChanges, std::move(k));
    if (!info.tracked) {
      // Starting: nothing before now is kept.
      info.tracked = true;
      info.pruned_through = info.change_number;
    } else {
      info.pruned_through = std::max(info.pruned_through, prune_through);
    }
  }
  b.PutMailbox(info);
  MBX_RETURN_IF_ERROR(WriteHeaderBatch(b));
  return info.change_number;
}

// A change index's net effect after `since`, per item in id order: where
// the item was at `since` (its first entry's before) and where it is now
// (its last entry's after). Read once per pass and kept for the pass's later
// pages: it holds for every snapshot whose header says the same change number
// and pruning point, because the index changes only with them (a client
// operation adds the entry of the change number it takes; a prune or a stop
// moves the pruning point). A page that finds the mailbox changed reads the
// index again, as every page used to.
struct Store::ChangeScan {
  struct Item {
    uint64_t id;
    uint32_t before, after;
  };
  Guid mailbox;
  uint64_t since = 0, change_number = 0, pruned_through = 0;
  std::vector<Item> items;
};

std::shared_ptr<const Store::ChangeScan> Store::FindChangeScan(const Guid& mailbox, uint64_t since,
                                                               const MailboxInfo& now) {
  std::lock_guard<std::mutex> l(change_scans_mu_);
  for (const auto& c : change_scans_) {
    if (c->mailbox == mailbox && c->since == since && c->change_number == now.change_number &&
        c->pruned_through == now.pruned_through) {
      return c;
    }
  }
  return nullptr;
}

void Store::KeepChangeScan(std::shared_ptr<const ChangeScan> scan, bool more) {
  std::lock_guard<std::mutex> l(change_scans_mu_);
  for (auto it = change_scans_.begin(); it != change_scans_.end();) {
    if ((*it)->mailbox == scan->mailbox && (*it)->since == scan->since) {
      change_scans_items_ -= (*it)->items.size();
      it = change_scans_.erase(it);
    } else {
      ++it;
    }
  }
  // The pass's last page keeps nothing; a scan larger than all that may be
  // kept is not kept (its pages read the index again, as before).
  if (!more || scan->items.size() > kMaxChangeScanItems) return;
  change_scans_items_ += scan->items.size();
  change_scans_.push_back(std::move(scan));
  while (change_scans_.size() > kMaxChangeScans || change_scans_items_ > kMaxChangeScanItems) {
    change_scans_items_ -= change_scans_.front()->items.size();
    change_scans_.pop_front();
  }
}

Result<ChangeSet> Store::ReadChanges(const Guid& mailbox, uint64_t since, const ChangesPage& page) {
  MBX_ASSIGN_OR_RETURN(StoreReader r, BeginRead());
  ChangeSet out;
  MBX_ASSIGN_OR_RETURN(out.mailbox, r.GetMailbox(mailbox));
  const MailboxInfo& m = out.mailbox;
  if (!m.tracked) return Status::InvalidArgument("mailbox " + mailbox.ToString() + " is not tracked for changes");
  if (since < m.pruned_through) {
    return Status::InvalidArgument("the changes of mailbox " + mailbox.ToString() + " up to " +
                                   std::to_string(m.pruned_through) + " were pruned; cannot sync from " +
                                   std::to_string(since));
  }
  if (since > m.change_number) {
    return Status::InvalidArgument("mailbox " + mailbox.ToString() + " is at change " +
                                   std::to_string(m.change_number) + ", not past " + std::to_string(since));
  }
  MBX_RETURN_IF_ERROR(r.ListFolders(mailbox, &out.folders));
  // The first page carries the entries, so it always reads the index; a
  // later page reuses the pass's scan while the mailbox is as it was.
  const bool first_page = page.after_item == 0;
  std::shared_ptr<const ChangeScan> scan;
  if (!first_page) scan = FindChangeScan(mailbox, since, m);
  if (scan == nullptr) {
    std::map<uint64_t, std::pair<uint32_t, uint32_t>> items;
    MBX_RETURN_IF_ERROR(r.ForEachChange(mailbox, since, [&](const ChangeEntry& e) {
      if (first_page) out.entries.push_back(e);
      if (e.kind >= ChangeEntry::Kind::kCreateFolder) return Status::Ok();
      auto [it, fresh] = items.try_emplace(e.id, e.before_folder, e.after_folder);
      if (!fresh) it->second.second = e.after_folder;
      return Status::Ok();
    }));
    change_index_scans_.fetch_add(1, std::memory_order_relaxed);
    auto fresh = std::make_shared<ChangeScan>();
    fresh->mailbox = mailbox;
    fresh->since = since;
    fresh->change_number = m.change_number;
    fresh->pruned_through = m.pruned_through;
    fresh->items.reserve(items.size());
    for (const auto& [id, where] : items) fresh->items.push_back({id, where.first, where.second});
    scan = std::move(fresh);
  }
  uint64_t record_bytes = 0;
  auto it = std::upper_bound(scan->items.begin(), scan->items.end(), page.after_item,
                             [](uint64_t id, const ChangeScan::Item& i) { return id < i.id; });
  for (; it != scan->items.end(); ++it) {
    ItemDelta d;
    d.item_id = it->id;
    d.old_folder = it->before;
    d.new_folder = it->after;
    // An item that came and went after `since` is a tombstone too: a paged
    // pass may have copied it from a later snapshot than its sync point
    // (see ChangesPage), so the target may hold it.
    if (d.new_folder != 0) {
      auto rec = r.GetItem(mailbox, d.new_folder, d.item_id);
      if (!rec.ok()) {
        return Status::Corruption("the change index of mailbox " + mailbox.ToString() + " names item " +
                                  std::to_string(d.item_id) + " in folder " + std::to_string(d.new_folder) +
                                  ", which does not hold it: " + rec.status().message());
      }
      if (page.max_record_bytes != 0 && !out.items.empty() && record_bytes + rec->size() > page.max_record_bytes) {
        out.more = true;  // this one starts the next page
        out.next_after_item = out.items.back().item_id;
        break;
      }
      d.record.assign(*rec);
      record_bytes += d.record.size();
    }
    out.items.push_back(std::move(d));
  }
  KeepChangeScan(std::move(scan), out.more);
  return out;
}

}  // namespace mbx
