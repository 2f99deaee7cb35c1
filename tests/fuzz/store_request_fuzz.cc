// libFuzzer target: the store server's request handling (rpc/store_server.cc)
// behind the transport: every call a client can make, with arbitrary
// request bytes, against a real store holding two generated mailboxes.
//
// Input: byte 0 picks the call (modulo kCalls), the rest is its protobuf
// request (inputs that do not parse are dropped, as gRPC would drop them). A
// one-byte mailbox field names one of the store's mailboxes by index, so the
// fuzzer reaches real mailboxes without guessing GUIDs; likewise a one-byte
// record field of a client operation names one of the generated mailboxes'
// item records, so deliveries carry valid records as well as garbage.
// Properties: no crash, no out-of-bounds access, no leak; every answer is a
// status, never an exception (the server answers one as Internal); the
// store stays readable (its generated mailboxes' headers, checked every
// call); a generated mailbox's change number changes only by a raw Write of
// its header or by one for a client operation that succeeded, never going
// back; what TrackChanges and ReadChanges answer agrees with the header.
// One generated mailbox is tracked from the start, so that ReadChanges
// reaches a change index without an input starting one first.
//
// The named inputs of corpus/store_request are seeds made by hand: byte 0,
// then the request protoc encodes from text, e.g. (from the source tree)
//   { printf '\x09'; echo 'store: "MS1" mailbox: "\001" prune_through: 3' |
//     protoc -Irpc --encode=mbx.rpc.TrackRequest store_service.proto; } >track_prune_ahead
//
// The store keeps what inputs write, so every kResetEvery executions it is
// built afresh: otherwise the mailboxes, items and log an hour of inputs
// leave behind slow every later execution (11.9k exec/s at the start of a
// 150-s run, 6.1k at its end, before the reset).
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <google/protobuf/stubs/logging.h>

#include "datagen/populate.h"
#include "rpc/store_server.h"
#include "rpc/write_pieces.h"
#include "store/organization.h"

namespace {

namespace r = mbx::rpc;

// The calls byte 0 picks (all but ReadMailbox and ReadItem, whose answers
// are streams, and Flush; WriteInPieces, whose request is a stream, through
// the joining its server does, then Write). The inputs kept in the corpus
// before the last three were added (when byte 0 picked modulo 8) have a
// byte 0 below 8, so they keep theirs.
enum Call : uint8_t {
  kOpen,
  kGetMailbox,
  kListMailboxes,
  kWrite,
  kTransition,
  kDeleteMailbox,
  kGetChecksums,
  kGetFigures,
  kApplyClientOp,
  kTrackChanges,
  kReadChanges,
  // WriteInPieces' joining (rpc/write_pieces.h), then the joined request
  // written as the server writes it. The body is the pieces, each a
  // little-endian u16 length and that many bytes of a WriteRequest.
  kWriteInPieces,
  kCalls,
};

struct Fixture {
  std::unique_ptr<mbx::Organization> org;
  mbx::Store* store = nullptr;
  std::unique_ptr<r::StoreService::Service> service;
  std::vector<std::string> guids;
  std::vector<mbx::Guid> boxes;
  // Each generated mailbox's change number after the previous call (none:
  // an input deleted it).
  std::vector<std::optional<uint64_t>> change_numbers;
  std::vector<std::string> records;  // valid item records, for deliveries
};

constexpr uint64_t kResetEvery = 20000;
// The server's message limit, small here so that inputs reach ReadChanges'
// pages whose one record goes apart, and its refusal of a change set larger
// than a message (the generated mailboxes hold 100 KiB each).
constexpr size_t kMaxMessageBytes = 64u << 10;
// Deliveries' records: the first generated mailbox's first records of at
// most kMaxRecordBytes.
constexpr size_t kRecords = 16;
constexpr size_t kMaxRecordBytes = 8u << 10;

Fixture* Setup() {
  auto* f = new Fixture();
  const std::string dir = "/tmp/mbx-rpc-fuzz-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  auto org = mbx::Organization::OpenOrCreate(dir);
  if (!org.ok()) std::abort();
  f->org = std::move(*org);
  mbx::StoreOptions so;
  so.log.mode = mbx::LogMode::kCircular;
  so.log.sync = mbx::SyncMode::kNone;
  if (!f->org->CreateStore("MS1", "SERVER1", so).ok()) std::abort();
  mbx::datagen::PopulateOptions po;
  po.gen.seed = 3;
  po.gen.mailboxes = 2;
  po.gen.total_bytes = 200u << 10;
  if (!mbx::datagen::Populate(*f->org, "MS1", po, nullptr).ok()) std::abort();
  f->store = *f->org->GetStore("MS1");
  std::vector<mbx::MailboxInfo> boxes;
  if (!f->store->ListMailboxes(&boxes).ok() || boxes.empty()) std::abort();
  for (const auto& m : boxes) {
    f->guids.emplace_back(m.guid.AsKey());
    f->boxes.push_back(m.guid);
    f->change_numbers.emplace_back(m.change_number);
  }
  // The last mailbox's changes are tracked from the start (see above); the
  // others start untracked.
  if (!f->store->TrackChanges(f->boxes.back(), 0).ok()) std::abort();
  auto stream = f->store->ReadMailbox(f->boxes[0]);
  if (!stream.ok()) std::abort();
  mbx::ItemChunk c;
  while (f->records.size() < kRecords) {
    if (!(*stream)->Next(64u << 10, &c).ok()) std::abort();
    if (c.items.empty()) break;
    for (const mbx::ItemRef& i : c.items) {
      if (f->records.size() < kRecords && i.record.size() <= kMaxRecordBytes) f->records.emplace_back(i.record);
    }
  }
  if (f->records.empty()) std::abort();
  f->service = r::MakeStoreService("SERVER1", {{"MS1", f->store}}, 4u << 20, kMaxMessageBytes);
  return f;
}

// One-byte mailbox fields name a real mailbox.
template <typename Req>
void MapMailbox(const Fixture& f, Req* q) {
  if (q->mailbox().size() == 1 && !f.guids.empty()) {
    q->set_mailbox(f.guids[uint8_t(q->mailbox()[0]) % f.guids.size()]);
  }
}

// A one-byte record field names a valid record.
void MapRecord(const Fixture& f, r::ClientOpRequest* q) {
  if (q->record().size() == 1) q->set_record(f.records[uint8_t(q->record()[0]) % f.records.size()]);
}

// The generated mailbox a request names: its index, or -1.
int BoxOf(const Fixture& f, const std::string& mailbox) {
  for (size_t i = 0; i < f.guids.size(); ++i) {
    if (f.guids[i] == mailbox) return int(i);
  }
  return -1;
}

// ReadChanges' answer as the protocol describes it: the header of the
// mailbox asked about, tracked and with `since` between its prune point and
// its change number; the entries after `since` in change-number order (on
// the first page only); the
// items in id order after the page's start, each with its record exactly
// when it is still there; a page that says more follow ends at its last
// item; no larger than a message. Returns the header's change number.
uint64_t CheckChanges(const r::ChangesRequest& q, const r::Changes& c) {
  if (c.header().mailbox() != q.mailbox()) std::abort();
  auto m = mbx::DecodeMailboxInfo(c.header().mailbox(), c.header().value());
  if (!m.ok() || !m->tracked || q.since() < m->pruned_through || q.since() > m->change_number) std::abort();
  uint64_t last = q.since();
  if (q.after_item() != 0 && c.entries_size() != 0) std::abort();  // the first page's alone
  for (const r::Change& e : c.entries()) {
    if (e.change_number() <= last) std::abort();
    last = e.change_number();
  }
  uint64_t id = 0;
  for (int i = 0; i < c.items_size(); ++i) {
    const r::ItemChange& d = c.items(i);
    // A record comes with an item still there, or apart from a page whose
    // one item it is (too large for the message), and only then.
    const bool apart_ok = d.record_apart() && d.new_folder() != 0 && d.record().empty() && c.items_size() == 1;
    if ((i > 0 && d.item_id() <= id) || d.item_id() <= q.after_item() ||
        (d.record_apart() ? !apart_ok : (d.new_folder() == 0) != d.record().empty())) {
      std::abort();
    }
    id = d.item_id();
  }
  // A page that says more follow ends at its last item.
  if (c.more() && (c.items_size() == 0 || c.next_after_item() != id)) std::abort();
  if (c.ByteSizeLong() > kMaxMessageBytes) std::abort();
  return m->change_number;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* f = nullptr;
  static uint64_t runs = 0;
  if (f == nullptr) {
    // Requests that do not parse are dropped (see above); protobuf's line on
    // stderr for each would be most of what a run prints.
    google::protobuf::SetLogHandler(nullptr);
  }
  if (f == nullptr || ++runs % kResetEvery == 0) {
    delete f;  // (the service first, then the organization that owns the store)
    f = Setup();
  }
  if (size < 1) return 0;
  const Call call = static_cast<Call>(data[0] % kCalls);
  const void* body = data + 1;
  const int n = int(size - 1);
  grpc::ServerContext ctx;
  auto* svc = f->service.get();
  grpc::Status st;
  // What a change-tracking call answered: the generated mailbox it named
  // (-1: another, or none) and the change number it gave; TrackChanges'
  // tracking after it.
  int box = -1;
  uint64_t change_number = 0;
  bool tracked = false;
  switch (call) {
    case kOpen: {
      r::StoreRef q;
      r::StoreInfo out;
      if (q.ParseFromArray(body, n)) st = svc->Open(&ctx, &q, &out);
      break;
    }
    case kGetMailbox: {
      r::MailboxRef q;
      r::MailboxHeader out;
      if (!q.ParseFromArray(body, n)) break;
      MapMailbox(*f, &q);
      st = svc->GetMailbox(&ctx, &q, &out);
      break;
    }
    case kListMailboxes: {
      r::StoreRef q;
      r::MailboxList out;
      if (q.ParseFromArray(body, n)) st = svc->ListMailboxes(&ctx, &q, &out);
      break;
    }
    case kWrite: {
      r::WriteRequest q;
      r::Empty out;
      if (q.ParseFromArray(body, n)) st = svc->Write(&ctx, &q, &out);
      break;
    }
    case kTransition: {
      r::TransitionRequest q;
      r::Empty out;
      if (!q.ParseFromArray(body, n)) break;
      MapMailbox(*f, &q);
      st = svc->Transition(&ctx, &q, &out);
      break;
    }
    case kDeleteMailbox: {
      r::DeleteRequest q;
      r::Empty out;
      if (!q.ParseFromArray(body, n)) break;
      MapMailbox(*f, &q);
      st = svc->DeleteMailbox(&ctx, &q, &out);
      break;
    }
    case kGetChecksums: {
      r::MailboxRef q;
      r::Checksums out;
      if (!q.ParseFromArray(body, n)) break;
      MapMailbox(*f, &q);
      st = svc->GetChecksums(&ctx, &q, &out);
      break;
    }
    case kGetFigures: {
      r::StoreRef q;
      r::Figures out;
      if (q.ParseFromArray(body, n)) st = svc->GetFigures(&ctx, &q, &out);
      break;
    }
    case kApplyClientOp: {
      r::ClientOpRequest q;
      r::ClientOpReply out;
      if (!q.ParseFromArray(body, n)) break;
      MapMailbox(*f, &q);
      MapRecord(*f, &q);
      st = svc->ApplyClientOp(&ctx, &q, &out);
      box = BoxOf(*f, q.mailbox());
      change_number = out.change_number();
      break;
    }
    case kTrackChanges: {
      r::TrackRequest q;
      r::TrackReply out;
      if (!q.ParseFromArray(body, n)) break;
      MapMailbox(*f, &q);
      st = svc->TrackChanges(&ctx, &q, &out);
      box = BoxOf(*f, q.mailbox());
      change_number = out.change_number();
      tracked = q.prune_through() != mbx::StoreHandle::kStopTracking;
      break;
    }
    case kReadChanges: {
      r::ChangesRequest q;
      r::Changes out;
      if (!q.ParseFromArray(body, n)) break;
      MapMailbox(*f, &q);
      st = svc->ReadChanges(&ctx, &q, &out);
      box = BoxOf(*f, q.mailbox());
      if (st.ok()) change_number = CheckChanges(q, out);
      break;
    }
    case kWriteInPieces: {
      r::PieceJoiner join(1u << 20);
      const auto* p = static_cast<const uint8_t*>(body);
      size_t left = size_t(n);
      bool parsed = true, added = true;
      while (left >= 2 && parsed && added) {
        const size_t len = std::min<size_t>(left - 2, size_t(p[0]) | size_t(p[1]) << 8);
        r::WriteRequest piece;
        parsed = piece.ParseFromArray(p + 2, int(len));
        if (parsed) added = join.Add(&piece).ok();
        p += 2 + len;
        left -= 2 + len;
      }
      if (!parsed) break;
      auto whole = join.Finish();
      if (!added && whole.ok()) std::abort();  // a refused piece joins nothing
      if (!whole.ok()) break;
      // Joined, nothing is left in pieces.
      for (const auto& m : whole->mutations()) {
        if (m.value_continues()) std::abort();
      }
      r::Empty out;
      st = svc->Write(&ctx, &*whole, &out);
      break;
    }
    case kCalls:
      std::abort();
  }
  // A failure is the store's own Status, never an exception the server
  // caught (answered as Internal; so is nothing else a request can cause).
  if (st.error_details() == std::string(1, char(mbx::Status::Code::kInternal))) std::abort();
  // The store is still readable: the generated mailboxes' headers (not a
  // listing: the store keeps what earlier inputs wrote, so a listing would
  // grow with the run and slow every execution down).
  for (size_t i = 0; i < f->boxes.size(); ++i) {
    auto m = f->store->GetMailbox(f->boxes[i]);
    if (!m.ok()) {
      if (!m.status().IsNotFound()) std::abort();  // (an input may delete it)
      f->change_numbers[i].reset();
      continue;
    }
    const bool named = st.ok() && box == int(i);
    if (named && (change_number != m->change_number || (call == kTrackChanges && m->tracked != tracked))) {
      std::abort();
    }
    // Only a raw Write may set a header's change number (or bring back a
    // deleted mailbox); a client operation adds one when it succeeds.
    if (const auto& before = f->change_numbers[i]; before && call != kWrite && call != kWriteInPieces) {
      const uint64_t want = *before + (named && call == kApplyClientOp ? 1 : 0);
      if (m->change_number < *before || m->change_number != want) std::abort();
    }
    f->change_numbers[i] = m->change_number;
  }
  return 0;
}
