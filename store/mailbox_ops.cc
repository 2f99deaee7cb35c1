// Store: operations on one mailbox that read its header and write it back as
// one atomic step under header_mu_ (state transitions, conditional deletes,
// deliveries), and the logon check.
#include "store/store.h"

#include "store/item_codec.h"

namespace mbx {

Result<MailboxInfo> Store::LockedHeader(const Guid& mailbox, std::initializer_list<MailboxState> from) {
  MBX_ASSIGN_OR_RETURN(StoreReader r, BeginRead());
  MBX_ASSIGN_OR_RETURN(MailboxInfo info, r.GetMailbox(mailbox));
  for (MailboxState s : from) {
    if (info.state == s) return info;
  }
  if (info.state == MailboxState::kMovingOut) {
    return Status::Busy("mailbox " + mailbox.ToString() + " in store " + name_ + ": move in progress");
  }
  return Status::Busy("mailbox " + mailbox.ToString() + " in store " + name_ + " is " +
                      std::string(MailboxStateName(info.state)));
}

Status Store::TransitionMailbox(const Guid& mailbox, std::initializer_list<MailboxState> from,
                                MailboxState to) {
  std::lock_guard<std::mutex> l(header_mu_);
  MBX_ASSIGN_OR_RETURN(MailboxInfo info, LockedHeader(mailbox, from));
  info.state = to;
  WriteBatch b;
  b.PutMailbox(info);
  return WriteHeaderBatch(b);
}

Status Store::DeleteMailboxIn(const Guid& mailbox, std::initializer_list<MailboxState> from) {
  std::lock_guard<std::mutex> l(header_mu_);
  MBX_RETURN_IF_ERROR(LockedHeader(mailbox, from).status());
  WriteBatch b;
  b.DeleteMailbox(mailbox);
  return WriteHeaderBatch(b);
}

Status Store::Logon(const Guid& mailbox) {
  MBX_ASSIGN_OR_RETURN(StoreReader r, BeginRead());
  MBX_ASSIGN_OR_RETURN(MailboxInfo m, r.GetMailbox(mailbox));
  switch (m.state) {
    case MailboxState::kActive: return Status::Ok();
    case MailboxState::kMovingOut:
      return Status::Busy("mailbox " + mailbox.ToString() + ": move in progress, logon refused");
    default:
      return Status::NotFound("mailbox " + mailbox.ToString() + " is not active in store " + name_);
  }
}

Result<uint64_t> Store::Deliver(const Guid& mailbox, uint32_t folder_id, const Item& item) {
  std::string rec;
  MBX_RETURN_IF_ERROR(EncodeItem(item, CodecOptions{zstd_level_}, &rec));
  std::lock_guard<std::mutex> l(header_mu_);
  MailboxInfo info;
  {
    MBX_ASSIGN_OR_RETURN(StoreReader r, BeginRead());
    MBX_ASSIGN_OR_RETURN(info, r.GetMailbox(mailbox));
    if (info.state == MailboxState::kMovingOut) {
      return Status::Busy("mailbox " + mailbox.ToString() + ": move in progress, delivery refused");
    }
    if (info.state != MailboxState::kActive) {
      return Status::NotFound("mailbox " + mailbox.ToString() + " is not active in store " + name_);
    }
    std::vector<FolderInfo> folders;
    MBX_RETURN_IF_ERROR(r.ListFolders(mailbox, &folders));
    bool found = false;
    for (const auto& f : folders) found = found || f.id == folder_id;
    if (!found) return Status::NotFound("mailbox " + mailbox.ToString() + " has no folder " + std::to_string(folder_id));
  }
  const uint64_t id = info.next_item_id++;
  ++info.item_count;
  info.stored_bytes += rec.size();
  info.logical_bytes += item.LogicalSize();
  WriteBatch b;
  b.PutItem(mailbox, folder_id, id, std::move(rec));
  b.PutMailbox(info);
  MBX_RETURN_IF_ERROR(Write(std::move(b)));
  return id;
}

}  // namespace mbx
