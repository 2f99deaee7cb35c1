// libFuzzer target: the store server's request handling (rpc/store_server.cc)
// behind the transport: every call a client can make, with arbitrary
// request bytes, against a real store holding two generated mailboxes.
//
// Input: byte 0 picks the call, the rest is its protobuf request (inputs that
// do not parse are dropped, as gRPC would drop them). A one-byte mailbox
// field names one of the store's mailboxes by index, so the fuzzer reaches
// real mailboxes without guessing GUIDs. Properties: no crash, no
// out-of-bounds access, no leak; every answer is a status, never an
// exception; the store stays readable (its generated mailboxes' headers,
// checked every call).
//
// The store keeps what inputs write, so every kResetEvery executions it is
// built afresh: otherwise the mailboxes, items and log an hour of inputs
// leave behind slow every later execution (11.9k exec/s at the start of a
// 150-s run, 6.1k at its end, before the reset).
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include <google/protobuf/stubs/logging.h>

#include "datagen/populate.h"
#include "rpc/store_server.h"
#include "store/organization.h"

namespace {

struct Fixture {
  std::unique_ptr<mbx::Organization> org;
  mbx::Store* store = nullptr;
  std::unique_ptr<mbx::rpc::StoreService::Service> service;
  std::vector<std::string> guids;
  std::vector<mbx::Guid> boxes;
};

constexpr uint64_t kResetEvery = 20000;

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
  if (!f->store->ListMailboxes(&boxes).ok()) std::abort();
  for (const auto& m : boxes) {
    f->guids.emplace_back(m.guid.AsKey());
    f->boxes.push_back(m.guid);
  }
  f->service = mbx::rpc::MakeStoreService("SERVER1", {{"MS1", f->store}});
  return f;
}

// One-byte mailbox fields name a real mailbox.
template <typename Req>
void MapMailbox(const Fixture& f, Req* r) {
  if (r->mailbox().size() == 1 && !f.guids.empty()) {
    r->set_mailbox(f.guids[uint8_t(r->mailbox()[0]) % f.guids.size()]);
  }
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
  const uint8_t op = data[0] % 8;
  const void* body = data + 1;
  const int n = int(size - 1);
  grpc::ServerContext ctx;
  auto* svc = f->service.get();
  namespace r = mbx::rpc;
  switch (op) {
    case 0: {
      r::StoreRef q;
      r::StoreInfo out;
      if (q.ParseFromArray(body, n)) (void)svc->Open(&ctx, &q, &out);
      break;
    }
    case 1: {
      r::MailboxRef q;
      r::MailboxHeader out;
      if (!q.ParseFromArray(body, n)) break;
      MapMailbox(*f, &q);
      (void)svc->GetMailbox(&ctx, &q, &out);
      break;
    }
    case 2: {
      r::StoreRef q;
      r::MailboxList out;
      if (q.ParseFromArray(body, n)) (void)svc->ListMailboxes(&ctx, &q, &out);
      break;
    }
    case 3: {
      r::WriteRequest q;
      r::Empty out;
      if (q.ParseFromArray(body, n)) (void)svc->Write(&ctx, &q, &out);
      break;
    }
    case 4: {
      r::TransitionRequest q;
      r::Empty out;
      if (!q.ParseFromArray(body, n)) break;
      MapMailbox(*f, &q);
      (void)svc->Transition(&ctx, &q, &out);
      break;
    }
    case 5: {
      r::DeleteRequest q;
      r::Empty out;
      if (!q.ParseFromArray(body, n)) break;
      MapMailbox(*f, &q);
      (void)svc->DeleteMailbox(&ctx, &q, &out);
      break;
    }
    case 6: {
      r::MailboxRef q;
      r::Checksums out;
      if (!q.ParseFromArray(body, n)) break;
      MapMailbox(*f, &q);
      (void)svc->GetChecksums(&ctx, &q, &out);
      break;
    }
    default: {
      r::StoreRef q;
      r::Figures out;
      if (q.ParseFromArray(body, n)) (void)svc->GetFigures(&ctx, &q, &out);
      break;
    }
  }
  // The store is still readable: the generated mailboxes' headers (not a
  // listing: the store keeps what earlier inputs wrote, so a listing would
  // grow with the run and slow every execution down).
  for (const mbx::Guid& g : f->boxes) {
    auto m = f->store->GetMailbox(g);
    if (!m.ok() && !m.status().IsNotFound()) std::abort();  // (an input may delete it)
  }
  return 0;
}
