#include "rpc/store_server.h"

#include <grpcpp/grpcpp.h>

#include <map>

#include "rpc/rpc_status.h"
#include "rpc/store_service.grpc.pb.h"
#include "rpc/tls.h"
#include "rpc/write_pieces.h"
#include "store/item_codec.h"
#include "store/keys.h"

namespace mbx::rpc {

namespace {

Result<Guid> GuidOf(const std::string& bytes) {
  if (bytes.size() != keys::kMailboxKeyBytes) {
    return Status::InvalidArgument("a mailbox GUID is 16 bytes, not " + std::to_string(bytes.size()));
  }
  return Guid::FromKey(bytes);
}

Result<MailboxState> StateOf(uint32_t v) {
  if (v > uint32_t(MailboxState::kSoftDeleted)) {
    return Status::InvalidArgument("no mailbox state " + std::to_string(v));
  }
  return static_cast<MailboxState>(v);
}

// A state list as the initializer_list the store's calls take (at most the
// four states there are).
template <typename Fn>
Status WithStates(const google::protobuf::RepeatedField<uint32_t>& from, Fn fn) {
  if (from.empty() || from.size() > 4) return Status::InvalidArgument("a transition names 1 to 4 states to leave");
  MailboxState s[4];
  for (int i = 0; i < from.size(); ++i) {
    MBX_ASSIGN_OR_RETURN(s[i], StateOf(from[i]));
  }
  switch (from.size()) {
    case 1: return fn({s[0]});
    case 2: return fn({s[0], s[1]});
    case 3: return fn({s[0], s[1], s[2]});
    default: return fn({s[0], s[1], s[2], s[3]});
  }
}

// A transition as the request names it (Transition, and the lock a read
// asks for first: ReadRequest/ChangesRequest.lock_from): fn(from, to) once
// both are checked.
template <typename Fn>
Status WithTransition(const google::protobuf::RepeatedField<uint32_t>& from, uint32_t to, Fn fn) {
  MBX_ASSIGN_OR_RETURN(MailboxState state, StateOf(to));
  return WithStates(from, [&](std::initializer_list<MailboxState> f) { return fn(f, state); });
}
Status TransitionAsAsked(Store* s, const Guid& g, const google::protobuf::RepeatedField<uint32_t>& from, uint32_t to) {
  return WithTransition(from, to, [&](std::initializer_list<MailboxState> f, MailboxState state) {
    return s->TransitionMailbox(g, f, state);
  });
}

// The batch a remote writer may hand over: mailbox headers, folders and
// item records, each key of its own database's shape; item records must
// pass their checksum on arrival. Never the store's meta database. The
// batch borrows the values from `req`, which must outlive its write.
Result<WriteBatch> ToBatch(const WriteRequest& req) {
  WriteBatch b;
  for (const Mutation& m : req.mutations()) {
    if (m.op() < 1 || m.op() > 3) return Status::InvalidArgument("unknown mutation op " + std::to_string(m.op()));
    const auto op = static_cast<mbx::Mutation::Op>(m.op());
    size_t want = 0;
    switch (m.db()) {
      case uint32_t(Db::kMailboxes): want = keys::kMailboxKeyBytes; break;
      case uint32_t(Db::kFolders): want = keys::kFolderKeyBytes; break;
      case uint32_t(Db::kItems): want = keys::kItemKeyBytes; break;
      default: return Status::InvalidArgument("writes to database " + std::to_string(m.db()) + " are not accepted");
    }
    const Db db = static_cast<Db>(m.db());
    if (op == mbx::Mutation::Op::kDeletePrefix) {
      if (m.key().size() != keys::kMailboxKeyBytes) return Status::InvalidArgument("a prefix delete names one mailbox");
      b.DeletePrefix(db, m.key());
      continue;
    }
    if (m.key().size() != want) {
      return Status::InvalidArgument("a key of " + std::to_string(m.key().size()) + " bytes does not fit its database");
    }
    if (op == mbx::Mutation::Op::kDelete) {
      b.Delete(db, m.key());
      continue;
    }
    if (db == Db::kMailboxes) {
      MBX_RETURN_IF_ERROR(DecodeMailboxInfo(m.key(), m.value()).status().WithContext("mailbox header"));
    } else if (db == Db::kFolders) {
      MBX_RETURN_IF_ERROR(
          DecodeFolderInfo(keys::FolderIdOf(m.key()), m.value()).status().WithContext("folder record"));
    } else {
      auto info = InspectRecord(m.value());
      if (!info.ok()) {
        return Status::Corruption("item " + std::to_string(keys::ItemIdOf(m.key())) +
                                  " arrived damaged: " + info.status().message());
      }
    }
    b.PutBorrowed(db, m.key(), m.value());
  }
  return b;
}

// What a batch written in pieces may hold: a few of the largest items a
// mail system takes, in one batch.
constexpr uint64_t kMaxPiecedBatchBytes = 1ull << 30;

// A client operation as the wire carries it, checked before the store sees
// it: a known kind, a folder name of bounded size, and a delivered record
// that passes its checksum (the store checks the record again; the answer is
// the store's own). Fields the kind does not use are not copied.
constexpr size_t kMaxWireNameBytes = 1024;  // the store allows less (255); this bounds what is read

Result<ClientOp> ToClientOp(const ClientOpRequest& req) {
  using K = ClientOp::Kind;
  if (req.kind() < uint32_t(K::kDeliver) || req.kind() > uint32_t(K::kDeleteFolder)) {
    return Status::InvalidArgument("unknown client operation " + std::to_string(req.kind()));
  }
  ClientOp op;
  op.kind = static_cast<K>(req.kind());
  op.folder_id = req.folder_id();
  switch (op.kind) {
    case K::kDeliver: {
      auto info = InspectRecord(req.record());
      if (!info.ok()) {
        return Status::InvalidArgument("the delivered item is not a valid record: " + info.status().message());
      }
      op.record = req.record();
      break;
    }
    case K::kSetFlags:
      op.item_id = req.item_id();
      op.flags = req.flags();
      op.keywords = req.keywords();
      break;
    case K::kMoveItem:
      op.item_id = req.item_id();
      op.to_folder_id = req.to_folder_id();
      break;
    case K::kDeleteItem:
      op.item_id = req.item_id();
      break;
    case K::kCreateFolder:
    case K::kRenameFolder:
      if (req.name().size() > kMaxWireNameBytes) {
        return Status::InvalidArgument("a folder name of " + std::to_string(req.name().size()) +
                                       " bytes is refused");
      }
      op.name = req.name();
      break;
    case K::kDeleteFolder:
      break;
  }
  return op;
}

}  // namespace

class StoreServiceImpl final : public StoreService::Service {
 public:
  StoreServiceImpl(std::string server, std::map<std::string, Store*> stores, size_t max_chunk, size_t max_message)
      : server_(std::move(server)), stores_(std::move(stores)), max_chunk_(max_chunk), max_message_(max_message) {}

  grpc::Status Open(grpc::ServerContext*, const StoreRef* req, StoreInfo* out) override {
    return Serve([&]() -> Status {
      MBX_ASSIGN_OR_RETURN(Store * s, Find(req->store()));
      out->set_name(s->name());
      out->set_zstd_level(s->zstd_level());
      out->set_max_message_bytes(max_message_);
      out->set_locks_on_read(true);
      out->set_tracks_on_read(true);
      out->set_locks_if_few(true);
      return Status::Ok();
    });
  }

  grpc::Status GetMailbox(grpc::ServerContext*, const MailboxRef* req, MailboxHeader* out) override {
    return Serve([&]() -> Status {
      MBX_ASSIGN_OR_RETURN(Store * s, Find(req->store()));
      MBX_ASSIGN_OR_RETURN(Guid g, GuidOf(req->mailbox()));
      MBX_ASSIGN_OR_RETURN(MailboxInfo m, s->GetMailbox(g));
      out->set_mailbox(req->mailbox());
      out->set_value(EncodeMailboxInfo(m));
      return Status::Ok();
    });
  }

  grpc::Status ListMailboxes(grpc::ServerContext*, const StoreRef* req, MailboxList* out) override {
    return Serve([&]() -> Status {
      MBX_ASSIGN_OR_RETURN(Store * s, Find(req->store()));
      std::vector<MailboxInfo> boxes;
      MBX_RETURN_IF_ERROR(s->ListMailboxes(&boxes));
      for (const auto& m : boxes) {
        auto* h = out->add_mailboxes();
        h->set_mailbox(std::string(m.guid.AsKey()));
        h->set_value(EncodeMailboxInfo(m));
      }
      return Status::Ok();
    });
  }

  grpc::Status ReadMailbox(grpc::ServerContext* ctx, const ReadRequest* req,
                           grpc::ServerWriter<ReadChunk>* writer) override {
    return Serve([&]() -> Status {
      MBX_ASSIGN_OR_RETURN(Store * s, Find(req->store()));
      MBX_ASSIGN_OR_RETURN(Guid g, GuidOf(req->mailbox()));
      const size_t chunk = std::clamp<size_t>(req->chunk_bytes() ? req->chunk_bytes() : (1u << 20), 16u << 10, max_chunk_);
      const bool locked = !req->lock_from().empty();
      const bool track = req->track_changes();
      if (locked && track) return Status::InvalidArgument("a read locks its mailbox or starts its tracking, not both");
      if (locked) MBX_RETURN_IF_ERROR(TransitionAsAsked(s, g, req->lock_from(), req->lock_to()));
      Result<std::unique_ptr<MailboxReadStream>> opened = track ? s->TrackAndRead(g) : s->ReadMailbox(g);
      if (!opened.ok()) {
        if (locked) {
          ReadChunk only;
          only.set_locked(true);
          (void)writer->Write(only);
        }
        return opened.status();
      }
      std::unique_ptr<MailboxReadStream> stream = std::move(*opened);
      ReadChunk first;
      first.set_locked(locked);
      first.set_tracking(track);
      first.mutable_header()->set_mailbox(req->mailbox());
      first.mutable_header()->set_value(EncodeMailboxInfo(stream->mailbox()));
      for (const FolderInfo& f : stream->folders()) {
        auto* fo = first.add_folders();
        fo->set_id(f.id);
        fo->set_value(EncodeFolderInfo(f));
      }
      // Write blocks while the client's flow-control window is full: the
      // stream holds at most a window of records in this process.
      if (!writer->Write(first)) return Status::Aborted("the client went away");
      // A store chunk is one message, as the client's batches follow the
      // messages; but a chunk may run past the size asked for (it reads a
      // folder in steps of items), so one that would pass half a message is
      // cut there. A record larger than half a message goes in pieces of
      // that size, each a message of its own (Record.continues): an item of
      // any size crosses, however small the messages. (Cutting every
      // message at the chunk size asked for instead made more, smaller
      // batches: a remote move 5-12% slower.)
      const size_t piece = PieceBytes();
      ReadChunk msg;
      size_t msg_bytes = 0;
      auto flush = [&] {
        if (msg.records_size() == 0) return true;
        const bool sent = writer->Write(msg);
        msg.Clear();
        msg_bytes = 0;
        return sent;
      };
      ItemChunk c;
      for (;;) {
        if (ctx->IsCancelled()) return Status::Aborted("the client cancelled the read");
        MBX_RETURN_IF_ERROR(stream->Next(chunk, &c));
        if (c.items.empty()) break;
        for (const ItemRef& r : c.items) {
          if (r.record.size() > piece) {
            if (!flush()) return Status::Aborted("the client went away");
            Status sent = ForEachPiece(r.record, [&](std::string_view bytes, bool continues) {
              ReadChunk one;
              SetPiece(one.add_records(), r.folder_id, r.item_id, bytes, continues);
              return writer->Write(one);
            });
            MBX_RETURN_IF_ERROR(sent);
            stream->Release(r.record);
            continue;
          }
          if (msg_bytes + r.record.size() > piece && !flush()) return Status::Aborted("the client went away");
          auto* rec = msg.add_records();
          rec->set_folder_id(r.folder_id);
          rec->set_item_id(r.item_id);
          rec->set_record(r.record.data(), r.record.size());
          msg_bytes += r.record.size();
          stream->Release(r.record);
        }
        if (!flush()) return Status::Aborted("the client went away");
      }
      return Status::Ok();
    });
  }

  grpc::Status Write(grpc::ServerContext*, const WriteRequest* req, Empty*) override {
    return Serve([&]() -> Status {
      MBX_ASSIGN_OR_RETURN(Store * s, Find(req->store()));
      MBX_ASSIGN_OR_RETURN(WriteBatch b, ToBatch(*req));
      return s->Write(std::move(b));  // waits for the write: *req outlives what the batch borrows
    });
  }

  grpc::Status WriteInPieces(grpc::ServerContext*, grpc::ServerReader<WriteRequest>* reader, Empty*) override {
    return Serve([&]() -> Status {
      // The pieces are put back together into one request, then written as
      // Write writes one: all of the batch or none of it. What one batch
      // may hold in this process is bounded.
      PieceJoiner join(kMaxPiecedBatchBytes);
      WriteRequest piece;
      while (reader->Read(&piece)) MBX_RETURN_IF_ERROR(join.Add(&piece));
      MBX_ASSIGN_OR_RETURN(WriteRequest whole, join.Finish());
      MBX_ASSIGN_OR_RETURN(Store * s, Find(whole.store()));
      MBX_ASSIGN_OR_RETURN(WriteBatch b, ToBatch(whole));
      return s->Write(std::move(b));
    });
  }

  grpc::Status Transition(grpc::ServerContext*, const TransitionRequest* req, Empty*) override {
    return Serve([&]() -> Status {
      MBX_ASSIGN_OR_RETURN(Store * s, Find(req->store()));
      MBX_ASSIGN_OR_RETURN(Guid g, GuidOf(req->mailbox()));
      return TransitionAsAsked(s, g, req->from(), req->to());
    });
  }

  grpc::Status DeleteMailbox(grpc::ServerContext*, const DeleteRequest* req, Empty*) override {
    return Serve([&]() -> Status {
      MBX_ASSIGN_OR_RETURN(Store * s, Find(req->store()));
      MBX_ASSIGN_OR_RETURN(Guid g, GuidOf(req->mailbox()));
      Status st = WithStates(req->from(), [&](std::initializer_list<MailboxState> from) {
        return s->DeleteMailboxIn(g, from);
      });
      if (st.ok()) s->ReleaseResidentPages();
      return st;
    });
  }

  grpc::Status GetChecksums(grpc::ServerContext*, const MailboxRef* req, Checksums* out) override {
    return Serve([&]() -> Status {
      MBX_ASSIGN_OR_RETURN(Store * s, Find(req->store()));
      MBX_ASSIGN_OR_RETURN(Guid g, GuidOf(req->mailbox()));
      MBX_ASSIGN_OR_RETURN(MailboxChecksums c, s->Checksums(g));
      for (const FolderInfo& f : c.folders) {
        auto* fo = out->add_folders();
        fo->set_id(f.id);
        fo->set_value(EncodeFolderInfo(f));
      }
      for (const auto& [id, sum] : c.sums) {
        auto* su = out->add_sums();
        su->set_folder_id(id);
        su->set_items(sum.items);
        su->set_hash_sum(sum.hash_sum);
      }
      return Status::Ok();
    });
  }

  grpc::Status Flush(grpc::ServerContext*, const StoreRef* req, Empty*) override {
    return Serve([&]() -> Status {
      MBX_ASSIGN_OR_RETURN(Store * s, Find(req->store()));
      return s->Flush();
    });
  }

  grpc::Status GetFigures(grpc::ServerContext*, const StoreRef* req, Figures* out) override {
    return Serve([&]() -> Status {
      MBX_ASSIGN_OR_RETURN(Store * s, Find(req->store()));
      MBX_ASSIGN_OR_RETURN(StoreFigures f, s->Figures());
      out->set_sync(f.sync);
      out->set_log_mode(f.log_mode);
      out->set_log_end_lsn(f.log_end_lsn);
      out->set_log_files(f.log_files);
      out->set_log_syncs(f.log_syncs);
      out->set_log_sync_ns(f.log_sync_ns);
      out->set_groups(f.groups);
      out->set_batches(f.batches);
      out->set_commit_ns(f.commit_ns);
      out->set_queue_wait_ns(f.queue_wait_ns);
      out->set_log_append_ns(f.log_append_ns);
      out->set_map_resizes(f.map_resizes);
      out->set_data_syncs(f.data_syncs);
      out->set_copied_bytes(f.copied_bytes);
      out->set_dead_bytes_dropped(f.dead_bytes_dropped);
      return Status::Ok();
    });
  }

  grpc::Status ApplyClientOp(grpc::ServerContext*, const ClientOpRequest* req, ClientOpReply* out) override {
    return Serve([&]() -> Status {
      MBX_ASSIGN_OR_RETURN(Store * s, Find(req->store()));
      MBX_ASSIGN_OR_RETURN(Guid g, GuidOf(req->mailbox()));
      MBX_ASSIGN_OR_RETURN(ClientOp op, ToClientOp(*req));
      MBX_ASSIGN_OR_RETURN(ClientOpResult r, s->ApplyClientOp(g, op));
      out->set_id(r.id);
      out->set_change_number(r.change_number);
      return Status::Ok();
    });
  }

  grpc::Status TrackChanges(grpc::ServerContext*, const TrackRequest* req, TrackReply* out) override {
    return Serve([&]() -> Status {
      MBX_ASSIGN_OR_RETURN(Store * s, Find(req->store()));
      MBX_ASSIGN_OR_RETURN(Guid g, GuidOf(req->mailbox()));
      MBX_ASSIGN_OR_RETURN(uint64_t cn, s->TrackChanges(g, req->prune_through()));
      out->set_change_number(cn);
      return Status::Ok();
    });
  }

  grpc::Status ReadItem(grpc::ServerContext*, const ItemRequest* req, grpc::ServerWriter<Record>* writer) override {
    return Serve([&]() -> Status {
      MBX_ASSIGN_OR_RETURN(Store * s, Find(req->store()));
      MBX_ASSIGN_OR_RETURN(Guid g, GuidOf(req->mailbox()));
      // Copied out of the snapshot, which then ends: no read transaction is
      // held while the client takes the pieces at its pace.
      std::string rec;
      {
        MBX_ASSIGN_OR_RETURN(StoreReader r, s->BeginRead());
        MBX_ASSIGN_OR_RETURN(std::string_view v, r.GetItem(g, req->folder_id(), req->item_id()));
        rec.assign(v);
      }
      return ForEachPiece(rec, [&](std::string_view bytes, bool continues) {
        Record one;
        SetPiece(&one, req->folder_id(), req->item_id(), bytes, continues);
        return writer->Write(one);
      });
    });
  }

  grpc::Status ReadChanges(grpc::ServerContext* ctx, const ChangesRequest* req, Changes* out) override {
    return Serve([&]() -> Status {
      MBX_ASSIGN_OR_RETURN(Store * s, Find(req->store()));
      MBX_ASSIGN_OR_RETURN(Guid g, GuidOf(req->mailbox()));
      // The lock only if the changes are few: decided with the first read
      // below, and said either way.
      const bool if_few = req->has_lock_if_items_at_most();
      if (if_few && req->lock_from().empty()) {
        return Status::InvalidArgument("lock_if_items_at_most names no transition (lock_from)");
      }
      if (!req->lock_from().empty() && !if_few) {
        MBX_RETURN_IF_ERROR(TransitionAsAsked(s, g, req->lock_from(), req->lock_to()));
        ctx->AddTrailingMetadata(kLockedMetadata, "1");
      }
      // A page's records fit in a message, with room for the rest of it
      // (header, folders, entries: checked below).
      ChangesPage page;
      page.after_item = req->after_item();
      const uint64_t room = max_message_ - std::min<uint64_t>(max_message_ / 4, 1u << 20);
      page.max_record_bytes = req->max_record_bytes() == 0 ? room : std::min<uint64_t>(req->max_record_bytes(), room);
      // The rest of the page (its entries above all: a user who flagged
      // thousands of items) may take more than that room: the same page is
      // then read again with fewer records, a few times at most.
      auto read = [&](int attempt) -> Result<mbx::ChangeSet> {
        if (attempt > 0 || !if_few) return s->ReadChanges(g, req->since(), page);
        bool locked = false;
        Result<mbx::ChangeSet> got = Status::Internal("not read");
        const Status asked = WithTransition(req->lock_from(), req->lock_to(),
                                            [&](std::initializer_list<MailboxState> from, MailboxState to) {
          got = s->ReadChangesLockingIfFew(g, req->since(), page, req->lock_if_items_at_most(), from, to, &locked);
          return got.status();
        });
        ctx->AddTrailingMetadata(kLockedMetadata, locked ? "1" : "0");
        MBX_RETURN_IF_ERROR(asked);
        return got;
      };
      for (int attempt = 0;; ++attempt) {
        MBX_ASSIGN_OR_RETURN(mbx::ChangeSet cs, read(attempt));
        const uint64_t record_bytes = cs.record_bytes();
        const size_t items = cs.items.size();
        out->set_more(cs.more);
        out->set_next_after_item(cs.next_after_item);
        out->mutable_header()->set_mailbox(req->mailbox());
        out->mutable_header()->set_value(EncodeMailboxInfo(cs.mailbox));
        for (const FolderInfo& f : cs.folders) {
          auto* fo = out->add_folders();
          fo->set_id(f.id);
          fo->set_value(EncodeFolderInfo(f));
        }
        for (const mbx::ChangeEntry& e : cs.entries) {
          auto* c = out->add_entries();
          c->set_change_number(e.change_number);
          c->set_kind(uint32_t(e.kind));
          c->set_id(e.id);
          c->set_before_folder(e.before_folder);
          c->set_after_folder(e.after_folder);
        }
        for (mbx::ItemDelta& d : cs.items) {
          auto* i = out->add_items();
          i->set_item_id(d.item_id);
          i->set_old_folder(d.old_folder);
          i->set_new_folder(d.new_folder);
          i->set_record(std::move(d.record));
        }
        size_t bytes = out->ByteSizeLong();
        if (bytes > max_message_ && items == 1 && out->items(0).new_folder() != 0) {
          // The page's one record does not fit: it goes apart, and the
          // client reads it with ReadItem, in pieces.
          out->mutable_items(0)->clear_record();
          out->mutable_items(0)->set_record_apart(true);
          bytes = out->ByteSizeLong();
        }
        if (bytes <= max_message_) return Status::Ok();
        out->Clear();
        if (items <= 1 || attempt == 3) {
          // Larger than a message even so (the folder tree and the change
          // index of the first page): refused as a pruned change set is.
          return Status::InvalidArgument("the changes of mailbox " + g.ToString() + " after " +
                                         std::to_string(req->since()) + " are " + std::to_string(bytes) +
                                         " bytes without their records, more than one message may carry (" +
                                         std::to_string(max_message_) + ")");
        }
        // Fewer records by what was over, and a margin for their framing.
        const uint64_t over = bytes - max_message_ + (16u << 10) + 64 * items;
        page.max_record_bytes = record_bytes > over ? record_bytes - over : 1;
      }
    });
  }

 private:
  // A record larger than half a message is sent in pieces of that size.
  size_t PieceBytes() const { return std::max<size_t>(max_message_ / 2, 4096); }
  // Calls send(piece, more follow) for each piece of `record`; Aborted when
  // a send fails (the client went away).
  template <typename Send>
  Status ForEachPiece(std::string_view record, Send send) const {
    const size_t piece = PieceBytes();
    size_t off = 0;
    do {
      const size_t n = std::min(piece, record.size() - off);
      if (!send(record.substr(off, n), off + n < record.size())) return Status::Aborted("the client went away");
      off += n;
    } while (off < record.size());
    return Status::Ok();
  }
  static void SetPiece(Record* out, uint32_t folder, uint64_t item, std::string_view bytes, bool continues) {
    out->set_folder_id(folder);
    out->set_item_id(item);
    out->set_record(bytes.data(), bytes.size());
    out->set_continues(continues);
  }

  // Runs one request: its Status becomes the answer; nothing a request
  // holds can throw past here (an exception is a bug, answered as Internal).
  template <typename Fn>
  grpc::Status Serve(Fn fn) {
    try {
      return ToGrpc(fn());
    } catch (const std::exception& e) {
      return ToGrpc(Status::Internal(std::string("server error: ") + e.what()));
    }
  }

  Result<Store*> Find(const std::string& name) {
    auto it = stores_.find(name);
    if (it != stores_.end()) return it->second;
    std::string have;
    for (const auto& [n, s] : stores_) have += (have.empty() ? "" : ", ") + n;
    return Status::NotFound("store '" + name + "' is not served by server " + server_ + " (it serves " + have + ")");
  }

  std::string server_;
  std::map<std::string, Store*> stores_;  // immutable after construction
  size_t max_chunk_;
  size_t max_message_;  // bound on an answer (the server's send limit)
};

std::unique_ptr<StoreService::Service> MakeStoreService(const std::string& server,
                                                        std::map<std::string, Store*> stores,
                                                        size_t max_read_chunk_bytes, size_t max_message_bytes) {
  return std::make_unique<StoreServiceImpl>(server, std::move(stores), max_read_chunk_bytes, max_message_bytes);
}

Result<std::unique_ptr<StoreServer>> StoreServer::Start(Organization& org, const ServeOptions& o) {
  if (o.server.empty()) return Status::InvalidArgument("serve needs --server NAME");
  std::vector<StoreRecord> all;
  MBX_RETURN_IF_ERROR(org.ListStores(&all));
  std::unique_ptr<StoreServer> srv(new StoreServer());
  srv->org_ = &org;
  std::map<std::string, Store*> stores;
  for (const StoreRecord& r : all) {
    if (r.server != o.server) continue;
    MBX_ASSIGN_OR_RETURN(Store * s, org.GetStore(r.name));
    stores[r.name] = s;
    srv->stores_.push_back(r.name);
  }
  if (stores.empty()) {
    return Status::NotFound("no store is registered to server " + o.server + " in " + org.dir() +
                            " (see 'mbxmove store list')");
  }
  MBX_ASSIGN_OR_RETURN(auto creds, ServerTlsCredentials(o.certs_dir, o.server));
  srv->service_ = std::make_unique<StoreServiceImpl>(o.server, std::move(stores), o.max_read_chunk_bytes,
                                                      o.max_message_bytes);
  grpc::ServerBuilder b;
  b.AddListeningPort(o.listen, creds, &srv->port_);
  b.RegisterService(srv->service_.get());
  b.SetMaxReceiveMessageSize(int(o.max_message_bytes));
  b.SetMaxSendMessageSize(int(o.max_message_bytes));
  // Clients ping every few seconds so that a stalled link is found; allow it.
  b.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 500);
  b.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  srv->server_ = b.BuildAndStart();
  if (!srv->server_ || srv->port_ == 0) {
    return Status::IOError("cannot listen on " + o.listen + " (address in use, or not an address of this host)");
  }
  return srv;
}

void StoreServer::Shutdown(std::chrono::milliseconds grace) {
  if (shut_down_) return;
  shut_down_ = true;
  server_->Shutdown(std::chrono::system_clock::now() + grace);
  server_->Wait();
  for (const std::string& name : stores_) {
    if (auto s = org_->GetStore(name); s.ok()) (void)(*s)->Flush();
  }
}

StoreServer::~StoreServer() {
  if (server_) Shutdown(std::chrono::milliseconds(0));
}

}  // namespace mbx::rpc
