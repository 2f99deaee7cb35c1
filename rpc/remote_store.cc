#include "rpc/remote_store.h"

#include <grpcpp/grpcpp.h>

#include "rpc/reply_decode.h"
#include "rpc/rpc_status.h"
#include "rpc/store_service.grpc.pb.h"
#include "rpc/tls.h"

namespace mbx::rpc {

namespace {

std::atomic<uint64_t> g_round_trips{0};

// What a mutation's framing (op, db, lengths, flags) costs in a message, at most.
constexpr uint64_t kMutationFramingBytes = 16;

std::chrono::system_clock::time_point In(std::chrono::milliseconds d) { return std::chrono::system_clock::now() + d; }

// A read that asks for the transition first (ReadRequest, ChangesRequest).
template <typename Request>
void AskLock(Request* req, const std::initializer_list<MailboxState>* from, MailboxState to) {
  if (from == nullptr) return;
  for (MailboxState st : *from) req->add_lock_from(uint32_t(st));
  req->set_lock_to(uint32_t(to));
}

// A locking read's failure `st` (from `g`) with no lock reported: a refusal
// only when the server itself gave it; otherwise (an answer too large for
// this client, a cancel) the transition may have been made.
Status LockUnknownUnlessRefused(const grpc::Status& g, Status st) {
  if (st.ok() || g.error_details().size() == 1 || st.code() == Status::Code::kIOError) return st;
  return Status::IOError(st.message() + " (the mailbox may have been locked)");
}

class RemoteReadStream final : public MailboxReadStream {
 public:
  const MailboxInfo& mailbox() const override { return info_; }
  const std::vector<FolderInfo>& folders() const override { return folders_; }

  Status Next(size_t /*max_bytes: the server's chunks*/, ItemChunk* out) override {
    out->items.clear();
    out->owner.reset();
    // Messages without records (the first may have none, a record's pieces
    // but the last add none) are read past.
    while (!done_ && out->items.empty()) {
      auto msg = std::make_shared<ReadChunk>();
      if (first_) {
        msg = std::move(first_);
      } else if (!reader_->Read(msg.get())) {
        done_ = true;
        Status st = FromGrpc(reader_->Finish(), peer_);
        if (st.ok()) st = records_.End();
        return st.WithContext("reading mailbox " + info_.guid.ToString());
      }
      if (Status s = records_.Take(std::move(msg), out); !s.ok()) {
        done_ = true;
        return s;
      }
    }
    return Status::Ok();
  }

  ~RemoteReadStream() override {
    if (!done_) ctx_.TryCancel();  // the mover stopped early: end the stream now
  }

  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<ReadChunk>> reader_;
  std::shared_ptr<ReadChunk> first_;
  MailboxInfo info_;
  std::vector<FolderInfo> folders_;
  std::string peer_;
  bool done_ = false;
  StreamRecords records_{""};  // named once the header is in (ReadMailbox)
};

class RemoteStore final : public StoreHandle {
 public:
  RemoteStore(std::shared_ptr<grpc::Channel> ch, std::string server, std::string address, std::string store,
              const RemoteOptions& o)
      : stub_(StoreService::NewStub(ch)),
        peer_("server " + server + " at " + address),
        store_(std::move(store)),
        o_(o) {}

  Status Connect() {
    StoreRef req;
    req.set_store(store_);
    StoreInfo info;
    grpc::ClientContext ctx;
    ctx.set_deadline(In(o_.connect_timeout));
    ctx.set_wait_for_ready(true);  // through the handshake, until the deadline
    ++g_round_trips;
    MBX_RETURN_IF_ERROR(FromGrpc(stub_->Open(&ctx, req, &info), peer_));
    name_ = info.name();
    zstd_level_ = info.zstd_level();
    server_max_message_ = info.max_message_bytes();
    locks_on_read_ = info.locks_on_read();
    tracks_on_read_ = info.tracks_on_read();
    locks_if_few_ = info.locks_if_few();
    return Status::Ok();
  }

  const std::string& name() const override { return name_; }
  int zstd_level() const override { return zstd_level_; }
  bool remote() const override { return true; }

  Result<MailboxInfo> GetMailbox(const Guid& mailbox) override {
    MailboxRef req = Ref(mailbox);
    MailboxHeader out;
    MBX_RETURN_IF_ERROR(Call([&](grpc::ClientContext* c) { return stub_->GetMailbox(c, req, &out); }));
    return DecodeHeader(out);
  }

  Status ListMailboxes(std::vector<MailboxInfo>* out) override {
    StoreRef req;
    req.set_store(store_);
    MailboxList list;
    MBX_RETURN_IF_ERROR(Call([&](grpc::ClientContext* c) { return stub_->ListMailboxes(c, req, &list); }));
    out->clear();
    for (const auto& h : list.mailboxes()) {
      MBX_ASSIGN_OR_RETURN(MailboxInfo m, DecodeHeader(h));
      out->push_back(std::move(m));
    }
    return Status::Ok();
  }

  Result<std::unique_ptr<MailboxReadStream>> ReadMailbox(const Guid& mailbox) override {
    return OpenRead(mailbox, nullptr, MailboxState::kActive, nullptr);
  }

  Result<std::unique_ptr<MailboxReadStream>> TransitionAndRead(const Guid& mailbox,
                                                               std::initializer_list<MailboxState> from,
                                                               MailboxState to, bool* transitioned) override {
    if (!locks_on_read_) return StoreHandle::TransitionAndRead(mailbox, from, to, transitioned);
    *transitioned = false;
    return OpenRead(mailbox, &from, to, transitioned);
  }

  Result<std::unique_ptr<MailboxReadStream>> TrackAndRead(const Guid& mailbox) override {
    if (!tracks_on_read_) return StoreHandle::TrackAndRead(mailbox);
    return OpenRead(mailbox, nullptr, MailboxState::kActive, nullptr, /*track=*/true);
  }

  // A read, the transition first when `from` is given, or the start of the
  // mailbox's change tracking when `track` is (see ReadRequest).
  Result<std::unique_ptr<MailboxReadStream>> OpenRead(const Guid& mailbox,
                                                      const std::initializer_list<MailboxState>* from,
                                                      MailboxState to, bool* transitioned, bool track = false) {
    auto s = std::make_unique<RemoteReadStream>();
    s->peer_ = peer_;
    s->ctx_.set_deadline(In(o_.stream_timeout));
    ReadRequest req;
    req.set_store(store_);
    req.set_mailbox(std::string(mailbox.AsKey()));
    req.set_chunk_bytes(uint32_t(o_.read_chunk_bytes));
    AskLock(&req, from, to);
    req.set_track_changes(track);
    ++g_round_trips;
    s->reader_ = stub_->ReadMailbox(&s->ctx_, req);
    // The stream's end before its header: the server's answer, or (for a
    // transition) one whose outcome is unknown unless the server gave it.
    auto ended = [&]() -> Status {
      s->done_ = true;
      const grpc::Status g = s->reader_->Finish();
      Status st = FromGrpc(g, peer_);
      if (st.ok()) return Status::Corruption("the server ended the read of " + mailbox.ToString() + " without its header");
      return from != nullptr && !*transitioned ? LockUnknownUnlessRefused(g, st) : st;
    };
    auto first = std::make_shared<ReadChunk>();
    if (!s->reader_->Read(first.get())) return ended();
    if (first->locked()) {
      if (from == nullptr) return Status::Corruption(peer_ + " reported a lock the read did not ask for");
      *transitioned = true;
    } else if (from != nullptr) {
      // A server that went against its word (StoreInfo.locks_on_read):
      // whether it locked is not known.
      return Status::IOError(peer_ + " began a locking read of " + mailbox.ToString() +
                             " without saying whether it locked (the mailbox may have been locked)");
    }
    if (first->tracking() != track) {
      // A server that went against its word (StoreInfo.tracks_on_read): a
      // copy from this snapshot could miss the changes made during it.
      return Status::Corruption(peer_ + (track ? " began a tracking read of " + mailbox.ToString() +
                                                     " without saying it started the mailbox's change tracking"
                                               : " reported change tracking the read did not ask for"));
    }
    if (!first->has_header()) {
      // The lock alone: the read failed to open after it, and the error
      // follows.
      if (!first->locked() || first->folders_size() > 0 || first->records_size() > 0 || s->reader_->Read(first.get())) {
        return Status::Corruption(peer_ + " began the read of " + mailbox.ToString() + " without its header");
      }
      return ended();
    }
    MBX_ASSIGN_OR_RETURN(s->info_, DecodeHeader(first->header()));
    s->records_ = StreamRecords("reading mailbox " + s->info_.guid.ToString() + " from " + peer_);
    MBX_RETURN_IF_ERROR(DecodeFolders(first->folders(), &s->folders_));
    s->first_ = std::move(first);
    return std::unique_ptr<MailboxReadStream>(std::move(s));
  }

  std::future<Status> WriteAsync(WriteBatch batch) override {
    struct Pending {
      grpc::ClientContext ctx;
      WriteRequest req;
      Empty resp;
      std::promise<Status> done;
    };

    // A batch larger than half of what either end reads in one message (an
    // item of tens of MiB) goes in pieces on a stream of its own.
    uint64_t limit = o_.max_message_bytes;
    if (server_max_message_ != 0) limit = std::min<uint64_t>(limit, server_max_message_);
    const uint64_t piece = std::max<uint64_t>(limit / 2, 4096);
    uint64_t total = 0;
    for (const auto& m : batch.mutations()) total += m.key.size() + m.bytes().size() + kMutationFramingBytes;
    if (total > piece) {
      std::promise<Status> done;
      done.set_value(WriteInPieces(batch, piece));
      return done.get_future();
    }
    auto p = std::make_shared<Pending>();
    p->req.set_store(store_);
    for (auto& m : batch.mutable_mutations()) {
      auto* o = p->req.add_mutations();
      o->set_op(uint32_t(m.op));
      o->set_db(uint32_t(m.db));
      o->set_key(std::move(m.key));
      if (m.borrows) {
        o->set_value(m.borrowed.data(), m.borrowed.size());  // the request owns what it sends
      } else {
        o->set_value(std::move(m.value));
      }
    }
    p->ctx.set_deadline(In(o_.call_timeout));
    auto fut = p->done.get_future();
    ++g_round_trips;
    // The callback runs on one of gRPC's threads, handed there through
    // synchronisation ThreadSanitizer cannot see (libgrpc is not
    // instrumented); tools/tsan-suppressions.txt names this lambda, which
    // only reads its captures and sets the promise.
    stub_->async()->Write(&p->ctx, &p->req, &p->resp, [p, peer = peer_](grpc::Status s) {
      p->done.set_value(FromGrpc(s, peer));
    });
    return fut;
  }

  // The batch in messages of at most `piece` bytes of keys and values, a
  // value split across messages where it must be; the server writes the
  // whole batch once the last piece is in, or none of it.
  Status WriteInPieces(const WriteBatch& batch, uint64_t piece) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(o_.stream_timeout));
    Empty resp;
    ++g_round_trips;
    std::unique_ptr<grpc::ClientWriter<WriteRequest>> w = stub_->WriteInPieces(&ctx, &resp);
    WriteRequest req;
    uint64_t room = piece;
    auto send = [&](bool last) {
      req.set_store(store_);
      req.set_last_piece(last);
      const bool sent = w->Write(req);
      req.Clear();
      room = piece;
      return sent;
    };
    // A failed send ends the stream: Finish says why.
    bool sent = true;
    for (size_t i = 0; sent && i < batch.mutations().size(); ++i) {
      const mbx::Mutation& m = batch.mutations()[i];
      const uint64_t framing = m.key.size() + kMutationFramingBytes;
      std::string_view value = m.bytes();
      for (;;) {
        // A mutation starts a piece of its own rather than leave a sliver
        // of its value (under a quarter of a piece) at the end of this one.
        if (room < framing + std::min<uint64_t>(value.size(), piece / 4) && !(sent = send(false))) break;
        const uint64_t take = std::min<uint64_t>(value.size(), room - framing);
        auto* o = req.add_mutations();
        o->set_op(uint32_t(m.op));
        o->set_db(uint32_t(m.db));
        o->set_key(m.key);
        o->set_value(value.data(), take);
        value.remove_prefix(take);
        room -= framing + take;
        if (value.empty()) break;
        o->set_value_continues(true);
        if (!(sent = send(false))) break;
      }
    }
    if (sent && send(true)) w->WritesDone();
    return FromGrpc(w->Finish(), peer_).WithContext("writing a batch in pieces");
  }

  Status TransitionMailbox(const Guid& mailbox, std::initializer_list<MailboxState> from, MailboxState to) override {
    TransitionRequest req;
    req.set_store(store_);
    req.set_mailbox(std::string(mailbox.AsKey()));
    for (MailboxState s : from) req.add_from(uint32_t(s));
    req.set_to(uint32_t(to));
    Empty out;
    return Call([&](grpc::ClientContext* c) { return stub_->Transition(c, req, &out); });
  }

  Status DeleteMailboxIn(const Guid& mailbox, std::initializer_list<MailboxState> from) override {
    DeleteRequest req;
    req.set_store(store_);
    req.set_mailbox(std::string(mailbox.AsKey()));
    for (MailboxState s : from) req.add_from(uint32_t(s));
    Empty out;
    return Call([&](grpc::ClientContext* c) { return stub_->DeleteMailbox(c, req, &out); });
  }

  // Several mailboxes (a round of clean-ups): their calls in flight together,
  // a round trip for all of them rather than one each.
  std::vector<Status> TransitionMailboxes(const std::vector<Guid>& mailboxes, std::initializer_list<MailboxState> from,
                                          MailboxState to) override {
    std::vector<TransitionRequest> reqs(mailboxes.size());
    for (size_t i = 0; i < mailboxes.size(); ++i) {
      reqs[i].set_store(store_);
      reqs[i].set_mailbox(std::string(mailboxes[i].AsKey()));
      for (MailboxState s : from) reqs[i].add_from(uint32_t(s));
      reqs[i].set_to(uint32_t(to));
    }
    return Together(reqs.size(), [&](grpc::ClientContext* c, size_t i, grpc::CompletionQueue* cq) {
      return stub_->PrepareAsyncTransition(c, reqs[i], cq);
    });
  }
  std::vector<Status> DeleteMailboxesIn(const std::vector<Guid>& mailboxes,
                                        std::initializer_list<MailboxState> from) override {
    std::vector<DeleteRequest> reqs(mailboxes.size());
    for (size_t i = 0; i < mailboxes.size(); ++i) {
      reqs[i].set_store(store_);
      reqs[i].set_mailbox(std::string(mailboxes[i].AsKey()));
      for (MailboxState s : from) reqs[i].add_from(uint32_t(s));
    }
    return Together(reqs.size(), [&](grpc::ClientContext* c, size_t i, grpc::CompletionQueue* cq) {
      return stub_->PrepareAsyncDeleteMailbox(c, reqs[i], cq);
    });
  }

  Result<MailboxChecksums> Checksums(const Guid& mailbox) override {
    MailboxRef req = Ref(mailbox);
    rpc::Checksums got;
    MBX_RETURN_IF_ERROR(Call([&](grpc::ClientContext* c) { return stub_->GetChecksums(c, req, &got); }));
    MailboxChecksums out;
    MBX_RETURN_IF_ERROR(DecodeFolders(got.folders(), &out.folders));
    for (const auto& s : got.sums()) out.sums[s.folder_id()] = {s.items(), s.hash_sum()};
    return out;
  }

  Status Flush() override {
    StoreRef req;
    req.set_store(store_);
    Empty out;
    return Call([&](grpc::ClientContext* c) { return stub_->Flush(c, req, &out); });
  }

  Result<StoreFigures> Figures() override {
    StoreRef req;
    req.set_store(store_);
    rpc::Figures f;
    MBX_RETURN_IF_ERROR(Call([&](grpc::ClientContext* c) { return stub_->GetFigures(c, req, &f); }));
    StoreFigures o;
    o.sync = f.sync();
    o.log_mode = f.log_mode();
    o.log_end_lsn = f.log_end_lsn();
    o.log_files = f.log_files();
    o.log_syncs = f.log_syncs();
    o.log_sync_ns = f.log_sync_ns();
    o.groups = f.groups();
    o.batches = f.batches();
    o.commit_ns = f.commit_ns();
    o.queue_wait_ns = f.queue_wait_ns();
    o.log_append_ns = f.log_append_ns();
    o.map_resizes = f.map_resizes();
    o.data_syncs = f.data_syncs();
    o.copied_bytes = f.copied_bytes();
    o.dead_bytes_dropped = f.dead_bytes_dropped();
    return o;
  }

  Result<ClientOpResult> ApplyClientOp(const Guid& mailbox, const ClientOp& op) override {
    ClientOpRequest req;
    req.set_store(store_);
    req.set_mailbox(std::string(mailbox.AsKey()));
    req.set_kind(uint32_t(op.kind));
    req.set_folder_id(op.folder_id);
    req.set_item_id(op.item_id);
    req.set_to_folder_id(op.to_folder_id);
    req.set_flags(op.flags);
    req.set_keywords(op.keywords);
    req.set_name(op.name);
    req.set_record(op.record);
    ClientOpReply out;
    MBX_RETURN_IF_ERROR(Call([&](grpc::ClientContext* c) { return stub_->ApplyClientOp(c, req, &out); }));
    ClientOpResult r;
    r.id = out.id();
    r.change_number = out.change_number();
    return r;
  }

  std::vector<Status> StopTrackingChanges(const std::vector<Guid>& mailboxes) override {
    std::vector<TrackRequest> reqs(mailboxes.size());
    for (size_t i = 0; i < mailboxes.size(); ++i) {
      reqs[i].set_store(store_);
      reqs[i].set_mailbox(std::string(mailboxes[i].AsKey()));
      reqs[i].set_prune_through(kStopTracking);
    }
    return Together<TrackReply>(reqs.size(), [&](grpc::ClientContext* c, size_t i, grpc::CompletionQueue* cq) {
      return stub_->PrepareAsyncTrackChanges(c, reqs[i], cq);
    });
  }

  Result<uint64_t> TrackChanges(const Guid& mailbox, uint64_t prune_through) override {
    TrackRequest req;
    req.set_store(store_);
    req.set_mailbox(std::string(mailbox.AsKey()));
    req.set_prune_through(prune_through);
    TrackReply out;
    MBX_RETURN_IF_ERROR(Call([&](grpc::ClientContext* c) { return stub_->TrackChanges(c, req, &out); }));
    return out.change_number();
  }

  // (mbx::ChangeSet: rpc::Changes is the wire's.)
  Result<mbx::ChangeSet> ReadChanges(const Guid& mailbox, uint64_t since, const ChangesPage& page = {}) override {
    // A record the page sent apart (too large for its message) is read
    // after the page, as it is then; if its folder no longer holds it (the
    // user moved or deleted it meanwhile), the page is read again, which
    // then says where it went.
    return ReadChangesLocking(mailbox, nullptr, MailboxState::kActive, since, page, nullptr);
  }

  Result<mbx::ChangeSet> TransitionAndReadChanges(const Guid& mailbox, std::initializer_list<MailboxState> from,
                                                  MailboxState to, uint64_t since, const ChangesPage& page,
                                                  bool* transitioned) override {
    if (!locks_on_read_) return StoreHandle::TransitionAndReadChanges(mailbox, from, to, since, page, transitioned);
    *transitioned = false;
    return ReadChangesLocking(mailbox, &from, to, since, page, transitioned);
  }

  Result<mbx::ChangeSet> ReadChangesLockingIfFew(const Guid& mailbox, uint64_t since, const ChangesPage& page,
                                                 uint64_t max_items, std::initializer_list<MailboxState> from,
                                                 MailboxState to, bool* transitioned) override {
    if (!locks_if_few_) return StoreHandle::ReadChangesLockingIfFew(mailbox, since, page, max_items, from, to, transitioned);
    *transitioned = false;
    return ReadChangesLocking(mailbox, &from, to, since, page, transitioned, &max_items);
  }

  // ReadChanges, the transition first on the first page's call when `from`
  // is given (only if the changes are at most *if_few items, when given).
  Result<mbx::ChangeSet> ReadChangesLocking(const Guid& mailbox, const std::initializer_list<MailboxState>* from,
                                            MailboxState to, uint64_t since, const ChangesPage& page,
                                            bool* transitioned, const uint64_t* if_few = nullptr) {
    for (int attempt = 0;; ++attempt) {
      bool moved_on = false;
      auto cs = ReadChangesPage(mailbox, since, page, attempt == 0 ? from : nullptr, to, transitioned, &moved_on,
                                attempt == 0 ? if_few : nullptr);
      if (!moved_on) return cs;
      if (attempt == 3) {
        return Status::Aborted("the changes of mailbox " + mailbox.ToString() + " from " + peer_ +
                               ": an item too large for a page kept moving while it was read; try again");
      }
    }
  }

  // One page, its records sent apart read in pieces. *moved_on: such a
  // record was no longer where the page said (the result is then not used).
  // With `from`, the transition first (if the changes are at most *if_few
  // items, when given); *transitioned then says whether the server made it
  // (unknown, and false, when the call went unanswered: an IOError).
  Result<mbx::ChangeSet> ReadChangesPage(const Guid& mailbox, uint64_t since, const ChangesPage& page,
                                         const std::initializer_list<MailboxState>* from, MailboxState to,
                                         bool* transitioned, bool* moved_on, const uint64_t* if_few = nullptr) {
    ChangesRequest req;
    req.set_store(store_);
    req.set_mailbox(std::string(mailbox.AsKey()));
    req.set_since(since);
    req.set_after_item(page.after_item);
    req.set_max_record_bytes(page.max_record_bytes);
    AskLock(&req, from, to);
    if (from != nullptr && if_few != nullptr) req.set_lock_if_items_at_most(*if_few);
    Changes got;
    {
      grpc::ClientContext ctx;
      ctx.set_deadline(In(o_.call_timeout));
      ++g_round_trips;
      const grpc::Status g = stub_->ReadChanges(&ctx, req, &got);
      // A conditional lock's "0": the server did not lock (the page, if
      // any, is a plain pass's).
      bool not_locked = false;
      if (from != nullptr) {
        const auto& trailers = ctx.GetServerTrailingMetadata();
        auto it = trailers.find(kLockedMetadata);
        *transitioned = it != trailers.end() && it->second == "1";
        not_locked = if_few != nullptr && it != trailers.end() && it->second == "0";
      }
      Status st = FromGrpc(g, peer_);
      const bool unknown = from != nullptr && !*transitioned && !not_locked;
      MBX_RETURN_IF_ERROR(unknown ? LockUnknownUnlessRefused(g, st) : st);
      if (unknown) {
        return Status::IOError(peer_ + " answered a locking read of changes without saying whether it locked (the "
                               "mailbox may have been locked)");
      }
    }
    const std::string what = "the changes of mailbox " + mailbox.ToString() + " from " + peer_;
    return DecodeChangesPage(got, mailbox, page, what, [&](uint32_t folder, uint64_t item) -> Result<std::string> {
      auto rec = ReadItemRecord(mailbox, folder, item);
      if (rec.status().IsNotFound()) *moved_on = true;
      return rec;
    });
  }

 private:
  // One item record, as it is now, gathered from its pieces.
  Result<std::string> ReadItemRecord(const Guid& mailbox, uint32_t folder, uint64_t item) {
    ItemRequest req;
    req.set_store(store_);
    req.set_mailbox(std::string(mailbox.AsKey()));
    req.set_folder_id(folder);
    req.set_item_id(item);
    grpc::ClientContext ctx;
    ctx.set_deadline(In(o_.stream_timeout));
    ++g_round_trips;
    std::unique_ptr<grpc::ClientReader<Record>> r = stub_->ReadItem(&ctx, req);
    ItemPieces pieces(folder, item, "item " + std::to_string(item) + " from " + peer_);
    Record piece;
    while (r->Read(&piece)) {
      if (Status s = pieces.Add(piece); !s.ok()) {
        ctx.TryCancel();
        (void)r->Finish();
        return s;
      }
    }
    MBX_RETURN_IF_ERROR(FromGrpc(r->Finish(), peer_).WithContext("reading item " + std::to_string(item)));
    return pieces.Finish();
  }

  MailboxRef Ref(const Guid& g) const {
    MailboxRef r;
    r.set_store(store_);
    r.set_mailbox(std::string(g.AsKey()));
    return r;
  }
  // `n` unary calls answered with a Resp (its fields unused), at most kMaxTogether in flight at
  // once on this thread's completion queue: prepare(ctx, i, cq) prepares
  // call i. A status per call, in order.
  static constexpr size_t kMaxTogether = 64;
  template <typename Resp = Empty, typename Prepare>
  std::vector<Status> Together(size_t n, Prepare prepare) {
    struct One {
      grpc::ClientContext ctx;
      Resp resp;
      grpc::Status status;
      std::unique_ptr<grpc::ClientAsyncResponseReader<Resp>> rpc;
    };
    std::vector<Status> out(n);
    std::vector<std::unique_ptr<One>> calls(n);
    grpc::CompletionQueue cq;
    size_t started = 0, done = 0;
    auto start = [&](size_t i) {
      calls[i] = std::make_unique<One>();
      One& c = *calls[i];
      c.ctx.set_deadline(In(o_.call_timeout));
      ++g_round_trips;
      c.rpc = prepare(&c.ctx, i, &cq);
      c.rpc->StartCall();
      c.rpc->Finish(&c.resp, &c.status, reinterpret_cast<void*>(i));
    };
    while (started < n && started < kMaxTogether) start(started++);
    void* tag = nullptr;
    bool ok = false;
    while (done < n && cq.Next(&tag, &ok)) {
      const size_t i = reinterpret_cast<size_t>(tag);
      out[i] = FromGrpc(calls[i]->status, peer_);
      calls[i].reset();
      ++done;
      if (started < n) start(started++);
    }
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
    return out;
  }

  template <typename Fn>
  Status Call(Fn fn) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(o_.call_timeout));
    ++g_round_trips;
    return FromGrpc(fn(&ctx), peer_);
  }

  std::unique_ptr<StoreService::Stub> stub_;
  std::string peer_;
  std::string store_;
  RemoteOptions o_;
  std::string name_;
  int zstd_level_ = 0;
  uint64_t server_max_message_ = 0;  // 0: the server did not say
  bool locks_on_read_ = false;        // see StoreInfo.locks_on_read
  bool tracks_on_read_ = false;       // see StoreInfo.tracks_on_read
  bool locks_if_few_ = false;         // see StoreInfo.locks_if_few
};

}  // namespace

uint64_t RemoteRoundTrips() { return g_round_trips.load(); }

Result<std::unique_ptr<StoreHandle>> ConnectRemoteStore(const std::string& address, const std::string& server,
                                                        const std::string& store, const RemoteOptions& o) {
  MBX_ASSIGN_OR_RETURN(auto creds, ClientTlsCredentials(o.certs_dir));
  grpc::ChannelArguments args;
  // The server's certificate must name the server as the directory knows it.
  args.SetSslTargetNameOverride(server);
  args.SetMaxReceiveMessageSize(int(o.max_message_bytes));
  args.SetMaxSendMessageSize(int(o.max_message_bytes));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, int(o.keepalive.count()));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, int(o.keepalive.count()));
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // A connection of its own per store handle, not one shared by every
  // channel to the same address.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto ch = grpc::CreateCustomChannel(address, creds, args);
  auto rs = std::make_unique<RemoteStore>(ch, server, address, store, o);
  MBX_RETURN_IF_ERROR(rs->Connect());
  return std::unique_ptr<StoreHandle>(std::move(rs));
}

void InstallRemoteConnector(Organization& org, const RemoteOptions& o) {
  org.SetRemoteConnector([o](const StoreRecord& store, const ServerRecord& server) {
    return ConnectRemoteStore(server.address, server.name, store.name, o);
  });
}

}  // namespace mbx::rpc
