// libFuzzer target: what a store server answers, as the client checks and
// decodes it (rpc/reply_decode.h): a ReadMailbox stream's messages (records
// whole or in pieces), ReadItem's pieces, and a ReadChanges page with its
// records sent apart. A server is another process on the network: whatever
// it sends must end in a decoded answer or an error, never a crash.
//
// Input: byte 0 picks the answer (modulo 3); the rest drives
// FuzzedDataProvider, which builds the messages field by field (small ranges
// for folder and item ids, so that order and piece rules are met and broken
// often), and now and then a message from raw protobuf bytes instead.
// Properties: no crash, no out-of-bounds access or use after free (every
// record handed on is read through after the message that carried it was
// let go), no leak; and of every answer taken:
//   stream  records come out in (folder, item) order, each once; a record
//           in pieces comes out once its last piece came, equal to its
//           pieces joined, and a stream that ends inside one is refused;
//   item    the record is its pieces joined, and only when the last came;
//   changes items after the page's start in id order, a record exactly
//           with an item still there, a page that says more follow ends at
//           its last item, every entry of a known kind.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>

#include <google/protobuf/stubs/logging.h>

#include "rpc/reply_decode.h"
#include "store/records.h"

namespace {

namespace r = mbx::rpc;

enum Answer : uint8_t { kStream, kItem, kChanges, kAnswers };

// Reads every byte of a view (ASan reports a view into freed memory).
uint64_t Touch(std::string_view v) {
  uint64_t h = 0;
  for (char c : v) h = h * 131 + uint8_t(c);
  return h;
}

void FillRecord(FuzzedDataProvider& p, r::Record* rec, uint64_t item_base) {
  rec->set_folder_id(p.ConsumeIntegralInRange<uint32_t>(0, 3));
  rec->set_item_id(item_base + p.ConsumeIntegralInRange<uint64_t>(0, 3));
  rec->set_continues(p.ConsumeBool());
  rec->set_record(p.ConsumeRandomLengthString(48));
}

void Stream(FuzzedDataProvider& p) {
  r::StreamRecords records("fuzz stream");
  std::pair<uint32_t, uint64_t> last{0, 0};
  bool any = false;
  std::string pending;  // the pieces of the record under way, joined
  bool in_piece = false;
  const int messages = p.ConsumeIntegralInRange(0, 12);
  for (int m = 0; m < messages; ++m) {
    auto msg = std::make_shared<r::ReadChunk>();
    if (p.ConsumeIntegralInRange(0, 15) == 0) {
      if (!msg->ParseFromString(p.ConsumeRandomLengthString(256))) continue;
    } else {
      const int n = p.ConsumeIntegralInRange(0, 3);
      const uint64_t base = uint64_t(m) * 2;  // ids rise with the messages, mostly
      for (int i = 0; i < n; ++i) FillRecord(p, msg->add_records(), base);
    }
    // What a correct stream's record in pieces would join to, if this
    // message goes on with it.
    std::string joined;
    if (msg->records_size() == 1) joined = pending + msg->records(0).record();
    const bool one = msg->records_size() == 1;
    const bool continues = one && msg->records(0).continues();
    const int given = msg->records_size();
    mbx::ItemChunk out;
    if (!records.Take(std::move(msg), &out).ok()) return;  // refused: the stream is over
    if (!out.items.empty() && out.owner == nullptr) std::abort();
    if (given == 0) {
      if (!out.items.empty()) std::abort();
      continue;  // a message without records changes nothing
    }
    for (const mbx::ItemRef& i : out.items) {
      (void)Touch(i.record);  // the message itself is gone: the chunk keeps the bytes
      const std::pair<uint32_t, uint64_t> at{i.folder_id, i.item_id};
      if (any && at <= last) std::abort();  // out of order, or twice
      any = true;
      last = at;
    }
    if (in_piece || continues) {
      // Within a record in pieces: a message of its one piece.
      if (!one) std::abort();
      if (continues) {
        if (!out.items.empty()) std::abort();  // not before its last piece
        pending = std::move(joined);
        in_piece = true;
      } else {
        if (out.items.size() != 1 || out.items[0].record != joined) std::abort();
        pending.clear();
        in_piece = false;
      }
    } else if (int(out.items.size()) != given) {
      std::abort();
    }
  }
  if (records.End().ok() == in_piece) std::abort();  // refused exactly inside a record
}

void Item(FuzzedDataProvider& p) {
  r::ItemPieces pieces(1, 5, "fuzz item");
  std::string joined;
  bool last = false;
  const int n = p.ConsumeIntegralInRange(0, 8);
  for (int i = 0; i < n; ++i) {
    r::Record rec;
    rec.set_folder_id(p.ConsumeIntegralInRange<uint32_t>(0, 2));
    rec.set_item_id(p.ConsumeIntegralInRange<uint64_t>(4, 6));
    rec.set_continues(p.ConsumeBool());
    rec.set_record(p.ConsumeRandomLengthString(48));
    const bool ok = pieces.Add(rec).ok();
    if (ok != (!last && rec.folder_id() == 1 && rec.item_id() == 5)) std::abort();
    if (!ok) return;
    joined += rec.record();
    last = !rec.continues();
  }
  auto whole = pieces.Finish();
  if (whole.ok() != last) std::abort();
  if (whole.ok() && *whole != joined) std::abort();
}

mbx::Guid GuidOf(uint8_t b) {
  mbx::Guid g;
  g.bytes.fill(b);
  return g;
}

void Changes(FuzzedDataProvider& p) {
  const mbx::Guid mailbox = GuidOf(7);
  r::Changes got;
  if (p.ConsumeIntegralInRange(0, 15) == 0) {
    if (!got.ParseFromString(p.ConsumeRandomLengthString(512))) return;
  } else {
    // The header: the mailbox asked about, another, or bytes.
    mbx::MailboxInfo m;
    m.guid = p.ConsumeIntegralInRange(0, 7) == 0 ? GuidOf(8) : mailbox;
    m.owner = p.ConsumeRandomLengthString(8);
    m.change_number = p.ConsumeIntegral<uint64_t>();
    m.tracked = p.ConsumeBool();
    got.mutable_header()->set_mailbox(std::string(m.guid.AsKey()));
    got.mutable_header()->set_value(p.ConsumeIntegralInRange(0, 7) == 0 ? p.ConsumeRandomLengthString(32)
                                                                          : mbx::EncodeMailboxInfo(m));
    const int folders = p.ConsumeIntegralInRange(0, 3);
    for (int i = 0; i < folders; ++i) {
      mbx::FolderInfo fi;
      fi.id = p.ConsumeIntegralInRange<uint32_t>(1, 4);
      fi.parent_id = fi.id == 1 ? 0 : 1;
      fi.kind = fi.id == 1 ? mbx::FolderKind::kRoot : mbx::FolderKind::kUser;
      fi.name = p.ConsumeRandomLengthString(8);
      auto* f = got.add_folders();
      f->set_id(fi.id);
      f->set_value(p.ConsumeIntegralInRange(0, 7) == 0 ? p.ConsumeRandomLengthString(16) : mbx::EncodeFolderInfo(fi));
    }
    const int entries = p.ConsumeIntegralInRange(0, 4);
    for (int i = 0; i < entries; ++i) {
      auto* e = got.add_entries();
      e->set_change_number(p.ConsumeIntegralInRange<uint64_t>(0, 9));
      e->set_kind(p.ConsumeIntegralInRange<uint32_t>(0, 9));
      e->set_id(p.ConsumeIntegralInRange<uint64_t>(0, 9));
      e->set_before_folder(p.ConsumeIntegralInRange<uint32_t>(0, 4));
      e->set_after_folder(p.ConsumeIntegralInRange<uint32_t>(0, 4));
    }
    const int items = p.ConsumeIntegralInRange(0, 4);
    for (int i = 0; i < items; ++i) {
      auto* it = got.add_items();
      it->set_item_id(p.ConsumeIntegralInRange<uint64_t>(0, 9));
      it->set_old_folder(p.ConsumeIntegralInRange<uint32_t>(0, 4));
      it->set_new_folder(p.ConsumeIntegralInRange<uint32_t>(0, 4));
      it->set_record(p.ConsumeRandomLengthString(32));
      it->set_record_apart(p.ConsumeIntegralInRange(0, 3) == 0);
    }
    got.set_more(p.ConsumeBool());
    got.set_next_after_item(p.ConsumeIntegralInRange<uint64_t>(0, 9));
  }
  mbx::ChangesPage page;
  page.after_item = p.ConsumeIntegralInRange<uint64_t>(0, 5);
  page.max_record_bytes = p.ConsumeIntegralInRange<uint64_t>(0, 1u << 20);
  int apart_reads = 0;
  auto read_apart = [&](uint32_t folder, uint64_t item) -> mbx::Result<std::string> {
    ++apart_reads;
    if (folder == 0) std::abort();  // only an item still there is read
    switch (p.ConsumeIntegralInRange(0, 3)) {
      case 0: return mbx::Status::NotFound("item " + std::to_string(item) + " moved on");
      case 1: return mbx::Status::Corruption("a broken piece");
      default: return p.ConsumeRandomLengthString(64);
    }
  };
  auto cs = r::DecodeChangesPage(got, mailbox, page, "fuzz changes", read_apart);
  if (apart_reads > 1) std::abort();  // a page's one item, at most
  if (!cs.ok()) return;
  if (cs->mailbox.guid != mailbox) std::abort();
  uint64_t after = page.after_item;
  for (const mbx::ItemDelta& d : cs->items) {
    if (d.item_id <= after) std::abort();
    after = d.item_id;
    if ((d.new_folder != 0) == d.record.empty()) std::abort();
    (void)Touch(d.record);
  }
  for (const mbx::ChangeEntry& e : cs->entries) {
    if (e.kind < mbx::ChangeEntry::Kind::kDeliver || e.kind > mbx::ChangeEntry::Kind::kDeleteFolder) std::abort();
  }
  if (cs->more && (cs->items.empty() || cs->next_after_item != cs->items.back().item_id)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool quiet = [] {
    google::protobuf::SetLogHandler(nullptr);  // raw messages that do not parse would each log a line
    return true;
  }();
  (void)quiet;
  if (size == 0) return 0;
  FuzzedDataProvider p(data + 1, size - 1);
  switch (Answer(data[0] % kAnswers)) {
    case kStream: Stream(p); break;
    case kItem: Item(p); break;
    case kChanges: Changes(p); break;
    case kAnswers: break;
  }
  return 0;
}
