#include "rpc/reply_decode.h"

#include <utility>

namespace mbx::rpc {

Result<MailboxInfo> DecodeHeader(const MailboxHeader& h) {
  if (h.mailbox().size() != 16) return Status::Corruption("the server sent a mailbox header without its GUID");
  return DecodeMailboxInfo(h.mailbox(), h.value());
}

Status DecodeFolders(const google::protobuf::RepeatedPtrField<Folder>& in, std::vector<FolderInfo>* out) {
  out->clear();
  for (const Folder& f : in) {
    MBX_ASSIGN_OR_RETURN(FolderInfo fi, DecodeFolderInfo(f.id(), f.value()));
    out->push_back(std::move(fi));
  }
  return Status::Ok();
}

Status StreamRecords::Take(std::shared_ptr<ReadChunk> msg, ItemChunk* out) {
  out->items.clear();
  out->owner.reset();
  auto refuse = [&](const std::string& why) {
    out->items.clear();
    out->owner.reset();
    return Status::Corruption(what_ + ": " + why);
  };
  for (const Record& r : msg->records()) {
    const std::pair<uint32_t, uint64_t> at{r.folder_id(), r.item_id()};
    if (in_piece_) {
      // The next piece of the record under way: alone in its message, of
      // the same item.
      if (msg->records_size() != 1 || at != *last_) {
        return refuse("a record sent in pieces shares a message or broke off before its last piece");
      }
    } else {
      // Records come folder by folder, each item once, in id order.
      if (last_ && at <= *last_) {
        return refuse("item " + std::to_string(at.second) + " of folder " + std::to_string(at.first) +
                      " came out of order (after item " + std::to_string(last_->second) + " of folder " +
                      std::to_string(last_->first) + ")");
      }
      last_ = at;
      if (r.continues()) {
        if (msg->records_size() != 1) return refuse("a record sent in pieces shares a message");
        in_piece_ = true;
        piece_.clear();
      }
    }
    if (in_piece_) {
      if (piece_.size() + r.record().size() > kMaxPiecedRecordBytes) {
        return refuse("a record sent in pieces runs past " + std::to_string(kMaxPiecedRecordBytes >> 20) + " MiB");
      }
      piece_.append(r.record());
      if (r.continues()) continue;
      // The last piece: the record, whole, owned by its chunk.
      in_piece_ = false;
      auto whole = std::make_shared<std::string>(std::move(piece_));
      piece_.clear();
      out->items.push_back({last_->first, last_->second, *whole});
      out->owner = std::move(whole);
      continue;
    }
    out->items.push_back({r.folder_id(), r.item_id(), r.record()});
  }
  if (!out->items.empty() && out->owner == nullptr) out->owner = std::move(msg);
  return Status::Ok();
}

Status StreamRecords::End() const {
  if (in_piece_) return Status::Corruption(what_ + ": the stream ended inside a record sent in pieces");
  return Status::Ok();
}

Status ItemPieces::Add(const Record& piece) {
  if (last_ || piece.folder_id() != folder_ || piece.item_id() != item_) {
    return Status::Corruption(what_ + " came with pieces of another, or after its last");
  }
  if (out_.size() + piece.record().size() > kMaxPiecedRecordBytes) {
    return Status::Corruption(what_ + " runs past " + std::to_string(kMaxPiecedRecordBytes >> 20) + " MiB");
  }
  out_.append(piece.record());
  last_ = !piece.continues();
  return Status::Ok();
}

Result<std::string> ItemPieces::Finish() {
  if (!last_) return Status::Corruption(what_ + " ended before its last piece");
  return std::move(out_);
}

Result<ChangeSet> DecodeChangesPage(Changes& got, const Guid& mailbox, const ChangesPage& page,
                                    const std::string& what, const ReadApartFn& read_apart) {
  ChangeSet out;
  MBX_ASSIGN_OR_RETURN(out.mailbox, DecodeHeader(got.header()));
  if (out.mailbox.guid != mailbox) return Status::Corruption(what + " came with another mailbox's header");
  MBX_RETURN_IF_ERROR(DecodeFolders(got.folders(), &out.folders));
  out.more = got.more();
  out.next_after_item = got.next_after_item();
  out.entries.reserve(size_t(got.entries_size()));
  for (const Change& c : got.entries()) {
    if (c.kind() < uint32_t(ChangeEntry::Kind::kDeliver) || c.kind() > uint32_t(ChangeEntry::Kind::kDeleteFolder)) {
      return Status::Corruption(what + " hold an entry of unknown kind " + std::to_string(c.kind()));
    }
    ChangeEntry e;
    e.change_number = c.change_number();
    e.kind = static_cast<ChangeEntry::Kind>(c.kind());
    e.id = c.id();
    e.before_folder = c.before_folder();
    e.after_folder = c.after_folder();
    out.entries.push_back(e);
  }
  out.items.reserve(size_t(got.items_size()));
  for (ItemChange& i : *got.mutable_items()) {
    // A record comes with an item that is still there, and only then (or
    // apart from the page, for a record too large for it).
    if (i.record_apart() && (i.new_folder() == 0 || !i.record().empty() || got.items_size() != 1)) {
      return Status::Corruption(what + " hold item " + std::to_string(i.item_id()) +
                                " with its record apart, which only a page's one item still there may have");
    }
    if (!i.record_apart() && (i.new_folder() != 0) == i.record().empty()) {
      return Status::Corruption(what + " hold item " + std::to_string(i.item_id()) +
                                (i.new_folder() != 0 ? " without its record" : " gone, yet with a record"));
    }
    // Items after the page's start, each once, in id order.
    const uint64_t after = out.items.empty() ? page.after_item : out.items.back().item_id;
    if (i.item_id() <= after) {
      return Status::Corruption(what + " hold item " + std::to_string(i.item_id()) +
                                (out.items.empty() ? ", not after item " + std::to_string(page.after_item) + " as asked"
                                                   : " out of order, after item " + std::to_string(after)));
    }
    if (i.record_apart()) {
      MBX_ASSIGN_OR_RETURN(std::string rec, read_apart(i.new_folder(), i.item_id()));
      if (rec.empty()) return Status::Corruption(what + ": item " + std::to_string(i.item_id()) + " came back empty");
      *i.mutable_record() = std::move(rec);
    }
    ItemDelta d;
    d.item_id = i.item_id();
    d.old_folder = i.old_folder();
    d.new_folder = i.new_folder();
    d.record = std::move(*i.mutable_record());
    out.items.push_back(std::move(d));
  }
  // A page that says more follow ends at its last item (so that asking
  // again from there moves on).
  if (out.more && (out.items.empty() || out.next_after_item != out.items.back().item_id)) {
    return Status::Corruption(what + " say more follow after item " + std::to_string(out.next_after_item) +
                              ", which is not the page's last");
  }
  return out;
}

}  // namespace mbx::rpc
