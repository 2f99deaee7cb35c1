// Store: operations that read mailbox headers and write them back as one
// atomic step under the mailboxes' header locks (state transitions,
// conditional deletes, deliveries), and the logon check.
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
  return TransitionMailboxes({mailbox}, from, to).front();
}

Status Store::DeleteMailboxIn(const Guid& mailbox, std::initializer_list<MailboxState> from) {
  return DeleteMailboxesIn({mailbox}, from).front();
}

namespace {
// Checks each mailbox with `check` (its status, or OK having added its
// mutations to the caller's batch), then, if any passed, writes that batch
// once with `write`: its status goes to every mailbox that passed.
template <typename Check, typename Write>
std::vector<Status> CheckedTogether(const std::vector<Guid>& mailboxes, Check check, Write write) {
  std::vector<Status> out(mailboxes.size());
  std::vector<size_t> passed;
  for (size_t i = 0; i < mailboxes.size(); ++i) {
    out[i] = check(mailboxes[i]);
    if (out[i].ok()) passed.push_back(i);
  }
  if (passed.empty()) return out;
  const Status s = write();
  for (size_t i : passed) out[i] = s;
  return out;
}
}  // namespace

std::vector<Status> Store::TransitionMailboxes(const std::vector<Guid>& mailboxes,
                                               std::initializer_list<MailboxState> from, MailboxState to) {
  auto held = header_locks_.Lock(mailboxes);
  WriteBatch b;
  return CheckedTogether(
      mailboxes,
      [&](const Guid& g) -> Status {
        MBX_ASSIGN_OR_RETURN(MailboxInfo info, LockedHeader(g, from));
        info.state = to;
        b.PutMailbox(info);
        return Status::Ok();
      },
      [&] { return WriteHeaderBatch(b); });
}

std::vector<Status> Store::DeleteMailboxesIn(const std::vector<Guid>& mailboxes,
                                             std::initializer_list<MailboxState> from) {
  auto held = header_locks_.Lock(mailboxes);
  WriteBatch b;
  return CheckedTogether(
      mailboxes,
      [&](const Guid& g) -> Status {
        MBX_RETURN_IF_ERROR(LockedHeader(g, from).status());
        b.DeleteMailbox(g);
        return Status::Ok();
      },
      [&] { return WriteHeaderBatch(b); });
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
  ClientOp op;
  op.kind = ClientOp::Kind::kDeliver;
  op.folder_id = folder_id;
  MBX_RETURN_IF_ERROR(EncodeItem(item, CodecOptions{zstd_level_}, &op.record));
  MBX_ASSIGN_OR_RETURN(ClientOpResult r, ApplyClientOp(mailbox, op));
  return r.id;
}

}  // namespace mbx
