// Moves across the network: the same engine, with one or both stores behind
// `mbxmove serve` (StoreServer, in this process, on 127.0.0.1 with a port
// the OS chose), reached through the remote StoreHandle over mutual TLS.
// Every case compares with the same move done locally on the same data.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>

#include "engine/batch_runner.h"
#include "engine/org_check.h"
#include "engine/recovery.h"

#include "net/certs.h"
#include "net/link_proxy.h"
#include "rpc/remote_store.h"
#include "rpc/rpc_status.h"
#include "rpc/tls.h"
#include "rpc/store_server.h"
#include "rpc/store_service.grpc.pb.h"
#include "store/keys.h"
#include "engine/client_load.h"
#include "tests/load_journal.h"
#include "tests/move_fixture.h"

namespace mbx::testing {
namespace {

std::string CertDir(const TempDir& t) {
  net::CertDirOptions o;
  o.out_dir = t / "certs";
  o.org_name = "Remote Test";
  o.servers = {"SERVER1", "SERVER2"};
  auto r = net::CreateCertDir(o);
  if (!r.ok()) {
    ADD_FAILURE() << r.status().ToString();
    return "";
  }
  return t / "certs";
}

// A client of the server's own calls, for requests the remote StoreHandle
// never makes (malformed, broken off); nullptr without the certificates.
// A folder made under the root by a client: a change of the mailbox.
Result<ClientOpResult> MakeFolder(StoreHandle* store, const Guid& mailbox, const std::string& name) {
  ClientOp op;
  op.kind = ClientOp::Kind::kCreateFolder;
  op.folder_id = kRootFolderId;
  op.name = name;
  return store->ApplyClientOp(mailbox, op);
}

// Every record a read stream gives, (item id, record) in order.
std::vector<std::pair<uint64_t, std::string>> AllRecords(MailboxReadStream* stream) {
  std::vector<std::pair<uint64_t, std::string>> out;
  ItemChunk c;
  while (stream->Next(1u << 20, &c).ok() && !c.items.empty()) {
    for (const ItemRef& r : c.items) out.emplace_back(r.item_id, std::string(r.record));
  }
  return out;
}

std::unique_ptr<rpc::StoreService::Stub> RawStub(const std::string& certs, const std::string& address,
                                                 const std::string& server) {
  auto creds = rpc::ClientTlsCredentials(certs);
  if (!creds.ok()) return nullptr;
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride(server);
  return rpc::StoreService::NewStub(grpc::CreateCustomChannel(address, *creds, args));
}

rpc::RemoteOptions ClientOptions(const std::string& certs) {
  rpc::RemoteOptions o;
  o.certs_dir = certs;
  o.connect_timeout = std::chrono::milliseconds(5000);
  o.call_timeout = std::chrono::milliseconds(20000);
  o.keepalive = std::chrono::milliseconds(500);
  return o;
}

// Per mailbox in a store: folder tree and per-folder sums, as verify sees them.
std::map<Guid, MailboxChecksums> Contents(Organization& org, const std::string& store) {
  std::map<Guid, MailboxChecksums> out;
  auto s = org.GetStore(store);
  if (!s.ok()) {
    ADD_FAILURE() << s.status().ToString();
    return out;
  }
  std::vector<MailboxInfo> boxes;
  EXPECT_OK((*s)->ListMailboxes(&boxes));
  for (const auto& m : boxes) {
    auto c = (*s)->Checksums(m.guid);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    if (c.ok()) out[m.guid] = *c;
  }
  return out;
}

bool SameContents(const std::map<Guid, MailboxChecksums>& a, const std::map<Guid, MailboxChecksums>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [g, c] : a) {
    auto it = b.find(g);
    if (it == b.end() || it->second.folders != c.folders || it->second.sums != c.sums) return false;
  }
  return true;
}

// Serves the servers named in `remote` from this process, records their
// addresses (through a link proxy when `link` is given) and makes `org`
// reach them remotely.
class Servers {
 public:
  Servers(Organization& org, const std::string& certs, std::vector<std::string> remote,
          const net::LinkOptions* link = nullptr, size_t max_message_bytes = 64u << 20) {
    for (const auto& name : remote) {
      rpc::ServeOptions so;
      so.server = name;
      so.certs_dir = certs;
      so.max_message_bytes = max_message_bytes;
      auto s = rpc::StoreServer::Start(org, so);
      if (!s.ok()) {
        ADD_FAILURE() << s.status().ToString();
        return;
      }
      int port = (*s)->port();
      if (link) {
        net::LinkOptions lo = *link;
        lo.to = {"127.0.0.1", uint16_t(port)};
        auto p = net::LinkProxy::Start(lo);
        if (!p.ok()) {
          ADD_FAILURE() << p.status().ToString();
          return;
        }
        port = (*p)->port();
        links_.push_back(std::move(*p));
      }
      EXPECT_OK(org.directory().PutServer({name, "127.0.0.1:" + std::to_string(port)}));
      servers_.push_back(std::move(*s));
    }
    rpc::InstallRemoteConnector(org, ClientOptions(certs));
  }
  rpc::StoreServer& operator[](size_t i) { return *servers_[i]; }

 private:
  std::vector<std::unique_ptr<rpc::StoreServer>> servers_;
  std::vector<std::unique_ptr<net::LinkProxy>> links_;
};

struct Case {
  const char* name;
  std::vector<std::string> remote;  // servers reached over the network
};

class RemoteMoveTest : public ::testing::TestWithParam<Case> {};

TEST_P(RemoteMoveTest, EndsExactlyAsTheLocalMove) {
  MoveFixture local;
  engine::MoveOptions o;
  o.concurrency = 3;
  auto want_report = local.MoveAll(o);
  ASSERT_EQ(want_report.Failed(), 0u);

  MoveFixture f;  // same seed, same data
  TempDir t;
  const std::string certs = CertDir(t);
  Servers servers(f.org(), certs, GetParam().remote);
  auto report = f.MoveAll(o);
  EXPECT_EQ(report.Failed(), 0u) << report.ToJson().dump(2);
  EXPECT_EQ(report.ItemsCopied(), want_report.ItemsCopied());
  EXPECT_EQ(report.BytesCopied(), want_report.BytesCopied());
  ASSERT_TRUE(report.target.has_value());
  EXPECT_GT(report.target->batches, 0u);
  // The target's write-path copies come across with its figures (served or
  // local alike): each record into LMDB's page once, plus the log's framing.
  EXPECT_GE(report.target->copied_bytes, report.BytesCopied());
  EXPECT_LT(report.target->copied_bytes, report.BytesCopied() + report.BytesCopied() / 10);
  EXPECT_TRUE(SameContents(Contents(f.org(), "MS2"), Contents(local.org(), "MS2")));
  EXPECT_TRUE(Contents(f.org(), "MS1").empty());
  const engine::OrgSurvey after = f.Snapshot();
  EXPECT_EQ(engine::MoveInvariantViolations(f.before(), after), std::vector<std::string>{});
  for (const auto& [g, m] : after.mailboxes) EXPECT_EQ(m.home_store, "MS2") << g.ToString();
  std::vector<MoveRecord> moves;
  ASSERT_OK(f.org().directory().ListMoves(&moves));
  EXPECT_TRUE(moves.empty());
}

TEST_P(RemoteMoveTest, SkipOnErrorDropsExactlyTheCorruptItems) {
  MoveFixture f(/*corrupt_rate=*/0.02);
  ASSERT_FALSE(f.populated().corrupted.empty());
  std::set<std::pair<Guid, uint64_t>> corrupt;
  for (const auto& c : f.populated().corrupted) corrupt.insert({c.mailbox, c.item_id});
  TempDir t;
  Servers servers(f.org(), CertDir(t), GetParam().remote);
  engine::MoveOptions o;
  o.concurrency = 2;
  o.retry.bad_item_limit = 1000;
  auto report = f.MoveAll(o);
  EXPECT_EQ(report.Failed(), 0u);
  std::set<std::pair<Guid, uint64_t>> dropped;
  for (const auto& m : report.mailboxes) {
    for (const auto& d : m.dropped) dropped.insert({m.mailbox, d.item_id});
  }
  EXPECT_EQ(dropped, corrupt);
}

TEST_P(RemoteMoveTest, BadItemLimitZeroLeavesThoseMailboxesOnTheSource) {
  MoveFixture f(/*corrupt_rate=*/0.02);
  std::set<Guid> damaged;
  for (const auto& c : f.populated().corrupted) damaged.insert(c.mailbox);
  ASSERT_FALSE(damaged.empty());
  TempDir t;
  Servers servers(f.org(), CertDir(t), GetParam().remote);
  engine::MoveOptions o;
  o.concurrency = 2;
  auto report = f.MoveAll(o);
  EXPECT_EQ(report.Failed(), damaged.size());
  // The invariant compares every mailbox's checksum with the one it had
  // before: those that failed are on the source exactly as they were.
  const engine::OrgSurvey after = f.Snapshot();
  EXPECT_EQ(engine::MoveInvariantViolations(f.before(), after), std::vector<std::string>{});
  for (const auto& [g, m] : after.mailboxes) {
    if (damaged.count(g)) {
      EXPECT_EQ(m.home_store, "MS1");
      EXPECT_EQ(m.in("MS2"), nullptr);  // no partial target
      ASSERT_NE(m.in("MS1"), nullptr);
      EXPECT_EQ(m.in("MS1")->info.state, MailboxState::kActive);
    } else {
      EXPECT_EQ(m.home_store, "MS2");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Directions, RemoteMoveTest,
                         ::testing::Values(Case{"LocalToRemote", {"SERVER2"}}, Case{"RemoteToLocal", {"SERVER1"}},
                                           Case{"RemoteToRemote", {"SERVER1", "SERVER2"}}),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

// --- TLS: who may talk to a server ---------------------------------------

class RemoteTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    certs_ = CertDir(t_);
    rpc::ServeOptions so;
    so.server = "SERVER2";
    so.certs_dir = certs_;
    auto s = rpc::StoreServer::Start(f_.org(), so);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
    address_ = "127.0.0.1:" + std::to_string(server_->port());
    auto fig = (*f_.org().GetStore("MS2"))->Figures();
    batches_before_ = fig->batches;
  }
  // A client folder with the real CA but the given client key and certificate.
  std::string ClientDir(const std::string& name, const net::KeyAndCert& client, const std::string& ca_pem) {
    const std::string d = t_ / name;
    std::filesystem::create_directories(d);
    EXPECT_OK(net::WritePrivateFile(d + "/ca.pem", ca_pem, true));
    EXPECT_OK(net::WritePrivateFile(d + "/client.pem", client.cert_pem, true));
    EXPECT_OK(net::WritePrivateFile(d + "/client.key", client.key_pem, true));
    return d;
  }
  std::string ReadText(const std::string& p) {
    std::ifstream f(p);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  void ExpectRefusedAndNothingChanged(const std::string& client_dir) {
    auto o = ClientOptions(client_dir);
    o.connect_timeout = std::chrono::milliseconds(3000);
    auto h = rpc::ConnectRemoteStore(address_, "SERVER2", "MS2", o);
    EXPECT_FALSE(h.ok());
    ExpectNothingChangedAndStillServing();
  }
  void ExpectNothingChangedAndStillServing() {
    EXPECT_EQ((*f_.org().GetStore("MS2"))->Figures()->batches, batches_before_);
    // The server still serves a proper client.
    auto good = rpc::ConnectRemoteStore(address_, "SERVER2", "MS2", ClientOptions(certs_));
    ASSERT_TRUE(good.ok()) << good.status().ToString();
    std::vector<MailboxInfo> boxes;
    EXPECT_OK((*good)->ListMailboxes(&boxes));
  }

  MoveFixture f_;
  TempDir t_;
  std::string certs_, address_;
  std::unique_ptr<rpc::StoreServer> server_;
  uint64_t batches_before_ = 0;
};

TEST_F(RemoteTlsTest, ProperClientIsServed) {
  auto h = rpc::ConnectRemoteStore(address_, "SERVER2", "MS2", ClientOptions(certs_));
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ((*h)->name(), "MS2");
}

TEST_F(RemoteTlsTest, ClientFromAnotherCaIsRefused) {
  net::CertDirOptions o;
  o.out_dir = t_ / "other";
  o.org_name = "Someone Else";
  o.servers = {"SERVER2"};
  ASSERT_TRUE(net::CreateCertDir(o).ok());
  // Trusts our CA (so the server is accepted) but presents a foreign client certificate.
  const std::string d = ClientDir("foreign", {ReadText(t_ / "other/client.key"), ReadText(t_ / "other/client.pem")},
                                  ReadText(certs_ + "/ca.pem"));
  ExpectRefusedAndNothingChanged(d);
}

TEST_F(RemoteTlsTest, ExpiredClientCertificateIsRefused) {
  net::KeyAndCert ca{ReadText(certs_ + "/ca.key"), ReadText(certs_ + "/ca.pem")};
  net::IssueOptions io;
  io.common_name = "mbxmove client";
  io.usage = net::CertUsage::kClient;
  io.validity.not_before = -std::chrono::hours(48);
  io.validity.not_after = -std::chrono::hours(24);
  auto expired = net::IssueCert(ca, io);
  ASSERT_TRUE(expired.ok()) << expired.status().ToString();
  ExpectRefusedAndNothingChanged(ClientDir("expired", *expired, ca.cert_pem));
}

TEST_F(RemoteTlsTest, ClientWithoutCertificateIsRefused) {
  grpc::SslCredentialsOptions so;
  so.pem_root_certs = ReadText(certs_ + "/ca.pem");
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("SERVER2");
  auto ch = grpc::CreateCustomChannel(address_, grpc::SslCredentials(so), args);
  auto stub = rpc::StoreService::NewStub(ch);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  rpc::StoreRef req;
  req.set_store("MS2");
  rpc::StoreInfo out;
  EXPECT_FALSE(stub->Open(&ctx, req, &out).ok());
  ExpectNothingChangedAndStillServing();
}

// --- Bad requests ----------------------------------------------------------

TEST_F(RemoteTlsTest, BadRequestsGetClearErrorsAndTheServerKeepsServing) {
  auto stub = RawStub(certs_, address_, "SERVER2");
  ASSERT_NE(stub, nullptr);
  auto call = [&](auto fn) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return rpc::FromGrpc(fn(&ctx), "server");
  };
  rpc::Empty empty;
  {  // a store this server does not serve
    rpc::StoreRef r;
    r.set_store("MS1");
    rpc::StoreInfo out;
    Status s = call([&](grpc::ClientContext* c) { return stub->Open(c, r, &out); });
    EXPECT_TRUE(s.IsNotFound()) << s.ToString();
    EXPECT_NE(s.message().find("not served by server SERVER2"), std::string::npos) << s.message();
  }
  {  // an unknown mailbox, and a GUID of the wrong size
    rpc::MailboxRef r;
    r.set_store("MS2");
    r.set_mailbox(std::string(16, '\x7f'));
    rpc::MailboxHeader out;
    EXPECT_TRUE(call([&](grpc::ClientContext* c) { return stub->GetMailbox(c, r, &out); }).IsNotFound());
    r.set_mailbox("short");
    EXPECT_EQ(call([&](grpc::ClientContext* c) { return stub->GetMailbox(c, r, &out); }).code(),
              Status::Code::kInvalidArgument);
  }
  {  // writes to the meta database, keys of the wrong shape, a damaged record
    rpc::WriteRequest w;
    w.set_store("MS2");
    auto* m = w.add_mutations();
    m->set_op(1);
    m->set_db(0);
    m->set_key("log.checkpoint");
    m->set_value("x");
    EXPECT_EQ(call([&](grpc::ClientContext* c) { return stub->Write(c, w, &empty); }).code(),
              Status::Code::kInvalidArgument);
    m->set_db(3);
    m->set_key("abc");
    EXPECT_EQ(call([&](grpc::ClientContext* c) { return stub->Write(c, w, &empty); }).code(),
              Status::Code::kInvalidArgument);
    m->set_key(std::string(28, '\1'));
    m->set_value("not an item record");
    EXPECT_TRUE(call([&](grpc::ClientContext* c) { return stub->Write(c, w, &empty); }).IsCorruption());
  }
  {  // a batch over the size limit (64 MiB)
    rpc::WriteRequest w;
    w.set_store("MS2");
    auto* m = w.add_mutations();
    m->set_op(1);
    m->set_db(3);
    m->set_key(std::string(28, '\1'));
    m->set_value(std::string(65u << 20, 'x'));
    Status s = call([&](grpc::ClientContext* c) { return stub->Write(c, w, &empty); });
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  }
  {  // garbage bytes on the socket
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(server_->port()));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    std::string junk(4096, '\0');
    for (size_t i = 0; i < junk.size(); ++i) junk[i] = char(i * 131 + 7);
    EXPECT_GT(::write(fd, junk.data(), junk.size()), 0);
    ::close(fd);
  }
  EXPECT_EQ((*f_.org().GetStore("MS2"))->Figures()->batches, batches_before_);
  // Everyone else is still served.
  auto good = rpc::ConnectRemoteStore(address_, "SERVER2", "MS2", ClientOptions(certs_));
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  std::vector<MailboxInfo> boxes;
  EXPECT_OK((*good)->ListMailboxes(&boxes));
}

// --- Client operations and change tracking over the wire -------------------

// What one run of client operations on a mailbox gave: each call's answer
// (or status code), and the change sets read after it, so that a run on a
// served store can be compared with the same run on a local one.
struct ClientOpRun {
  Guid mailbox;
  uint32_t inbox = 0, deleted_items = 0;  // default folders' ids
  uint64_t start = 0;                     // change number when tracking started
  uint64_t existing_item = 0;             // a generated item, deleted by the run
  uint32_t existing_folder = 0;
  std::vector<ClientOpResult> results;    // per op, in order (deliver .. delete folder)
  std::vector<Status::Code> errors;       // the refused calls' codes, in order
  ChangeSet all;                          // ReadChanges(start) after every op
  ChangeSet tail;                         // ReadChanges(start + 3)
  ChangeSet pruned;                       // ReadChanges(start + 4) after pruning through it
};

// The delivered item; its record as EncodeItem makes it at `zstd_level`.
Item DeliveredItem() {
  Item it = TestItem(4242, 600);
  it.subject = "delivered during the move";
  it.message_id = "4242@example.com";
  return it;
}

// On `h` (a store holding the fixture's generated mailboxes): tracks the
// first mailbox, applies one operation of each kind, reads the changes,
// and makes the calls a client or a sync gets refused. Fatal failures are
// reported with ADD_FAILURE and leave the run short.
ClientOpRun RunClientOps(StoreHandle& h) {
  ClientOpRun run;
  std::vector<MailboxInfo> boxes;
  EXPECT_OK(h.ListMailboxes(&boxes));
  if (boxes.size() < 2) {
    ADD_FAILURE() << "the fixture has " << boxes.size() << " mailboxes";
    return run;
  }
  const Guid g = run.mailbox = boxes[0].guid;
  const Guid other = boxes[1].guid;
  {  // the default folders, and an item of the generated data
    auto rs = h.ReadMailbox(g);
    if (!rs.ok()) {
      ADD_FAILURE() << rs.status().ToString();
      return run;
    }
    for (const FolderInfo& f : (*rs)->folders()) {
      if (f.kind == FolderKind::kInbox) run.inbox = f.id;
      if (f.kind == FolderKind::kDeletedItems) run.deleted_items = f.id;
    }
    ItemChunk c;
    EXPECT_OK((*rs)->Next(64u << 10, &c));
    if (c.items.empty() || run.inbox == 0 || run.deleted_items == 0) {
      ADD_FAILURE() << "the generated mailbox has no items or no inbox";
      return run;
    }
    run.existing_folder = c.items[0].folder_id;
    run.existing_item = c.items[0].item_id;
  }
  auto start = h.TrackChanges(g, 0);
  if (!start.ok()) {
    ADD_FAILURE() << start.status().ToString();
    return run;
  }
  run.start = *start;

  std::string record;
  EXPECT_OK(EncodeItem(DeliveredItem(), CodecOptions{h.zstd_level()}, &record));
  auto apply = [&](ClientOp op) {
    auto r = h.ApplyClientOp(g, op);
    EXPECT_TRUE(r.ok()) << ClientOpKindName(op.kind) << ": " << r.status().ToString();
    run.results.push_back(r.ok() ? *r : ClientOpResult{});
    return r.ok() ? r->id : 0;
  };
  using K = ClientOp::Kind;
  ClientOp op;
  op.kind = K::kDeliver;
  op.folder_id = run.inbox;
  op.record = record;
  const uint64_t delivered = apply(op);
  op = {};
  op.kind = K::kSetFlags;
  op.folder_id = run.inbox;
  op.item_id = delivered;
  op.flags = kFlagRead | kFlagFlagged;
  op.keywords = 0b101;
  apply(op);
  op = {};
  op.kind = K::kMoveItem;
  op.folder_id = run.inbox;
  op.item_id = delivered;
  op.to_folder_id = run.deleted_items;
  apply(op);
  op = {};
  op.kind = K::kDeleteItem;
  op.folder_id = run.existing_folder;
  op.item_id = run.existing_item;
  apply(op);
  op = {};
  op.kind = K::kCreateFolder;
  op.folder_id = kRootFolderId;
  op.name = "Projects";
  const uint32_t projects = uint32_t(apply(op));
  op = {};
  op.kind = K::kRenameFolder;
  op.folder_id = projects;
  op.name = "Projects 2026";
  apply(op);
  op = {};
  op.kind = K::kCreateFolder;
  op.folder_id = projects;
  op.name = "Scratch";
  const uint32_t scratch = uint32_t(apply(op));
  op = {};
  op.kind = K::kDeleteFolder;
  op.folder_id = scratch;
  apply(op);

  auto read = [&](uint64_t since, ChangeSet* out) {
    auto cs = h.ReadChanges(g, since);
    EXPECT_TRUE(cs.ok()) << "since " << since << ": " << cs.status().ToString();
    if (cs.ok()) *out = std::move(*cs);
  };
  read(run.start, &run.all);
  read(run.start + 3, &run.tail);

  // Refused: each answer's code, in order.
  auto refused = [&](Status s) {
    EXPECT_FALSE(s.ok());
    run.errors.push_back(s.code());
  };
  op = {};
  op.kind = K::kMoveItem;  // an item that is not there
  op.folder_id = run.inbox;
  op.item_id = 999999;
  op.to_folder_id = run.deleted_items;
  refused(h.ApplyClientOp(g, op).status());
  op = {};
  op.kind = K::kDeliver;  // a record that is not one
  op.folder_id = run.inbox;
  op.record = "not an item record";
  refused(h.ApplyClientOp(g, op).status());
  op.record = record;  // into a folder that is not there
  op.folder_id = 4000;
  refused(h.ApplyClientOp(g, op).status());
  op = {};
  op.kind = K::kRenameFolder;  // a default folder
  op.folder_id = run.inbox;
  op.name = "Mail";
  refused(h.ApplyClientOp(g, op).status());
  op.folder_id = projects;  // a name with a '/'
  op.name = "a/b";
  refused(h.ApplyClientOp(g, op).status());
  // Locked by a move: the client is refused.
  EXPECT_OK(h.TransitionMailbox(g, {MailboxState::kActive}, MailboxState::kMovingOut));
  op = {};
  op.kind = K::kDeliver;
  op.folder_id = run.inbox;
  op.record = record;
  refused(h.ApplyClientOp(g, op).status());
  EXPECT_OK(h.TransitionMailbox(g, {MailboxState::kMovingOut}, MailboxState::kActive));
  // Change tracking: another mailbox is not tracked; a mailbox that is not there.
  refused(h.ReadChanges(other, 0).status());
  refused(h.ReadChanges(TestGuid(200), 0).status());
  refused(h.TrackChanges(TestGuid(200), 0).status());
  refused(h.TrackChanges(g, run.start + 100).status());  // past the mailbox's change number
  // Pruning: entries through start + 4 are gone, so a sync from before is refused.
  auto now = h.TrackChanges(g, run.start + 4);
  EXPECT_TRUE(now.ok()) << now.status().ToString();
  if (now.ok()) {
    EXPECT_EQ(*now, run.start + 8);
  }
  refused(h.ReadChanges(g, run.start + 2).status());
  read(run.start + 4, &run.pruned);
  // Stopping: the mailbox is not tracked any more.
  now = h.TrackChanges(g, StoreHandle::kStopTracking);
  EXPECT_TRUE(now.ok()) << now.status().ToString();
  refused(h.ReadChanges(g, run.start + 8).status());
  return run;
}

class RemoteClientOpTest : public ::testing::Test {
 protected:
  // Two small generated mailboxes on MS1, which SERVER1 serves.
  RemoteClientOpTest() : f_(0, {}, /*mailboxes=*/2, /*bytes=*/256u << 10) {}
  void SetUp() override {
    certs_ = CertDir(t_);
    servers_ = std::make_unique<Servers>(f_.org(), certs_, std::vector<std::string>{"SERVER1"});
    address_ = "127.0.0.1:" + std::to_string((*servers_)[0].port());
    auto h = rpc::ConnectRemoteStore(address_, "SERVER1", "MS1", ClientOptions(certs_));
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    remote_ = std::move(*h);
  }

  MoveFixture f_;
  TempDir t_;
  std::string certs_, address_;
  std::unique_ptr<Servers> servers_;
  std::unique_ptr<StoreHandle> remote_;
};

TEST_F(RemoteClientOpTest, ClientOpsAndChangeTrackingOverTheWire) {
  const uint64_t trips_before = rpc::RemoteRoundTrips();
  const ClientOpRun run = RunClientOps(*remote_);
  ASSERT_EQ(run.results.size(), 8u);
  // Every call one round trip: list, read stream, track, 8 ops, 2 reads,
  // 12 refused, 2 transitions, prune, read, stop.
  EXPECT_EQ(rpc::RemoteRoundTrips() - trips_before, 1u + 1 + 1 + 8 + 2 + 12 + 2 + 1 + 1 + 1);
  const uint64_t s = run.start;
  EXPECT_EQ(s, 0u);  // generated data has no client changes
  for (size_t i = 0; i < run.results.size(); ++i) EXPECT_EQ(run.results[i].change_number, s + 1 + i) << i;
  const uint64_t delivered = run.results[0].id;
  const uint32_t projects = uint32_t(run.results[4].id);
  const uint32_t scratch = uint32_t(run.results[6].id);
  EXPECT_GT(delivered, run.existing_item);
  EXPECT_NE(projects, 0u);
  EXPECT_EQ(scratch, projects + 1);

  // Each entry once, in change-number order, with its kind and places.
  using E = ChangeEntry;
  using EK = ChangeEntry::Kind;
  const std::vector<E> want = {
      {s + 1, EK::kDeliver, delivered, 0, run.inbox},
      {s + 2, EK::kSetFlags, delivered, run.inbox, run.inbox},
      {s + 3, EK::kMoveItem, delivered, run.inbox, run.deleted_items},
      {s + 4, EK::kDeleteItem, run.existing_item, run.existing_folder, 0},
      {s + 5, EK::kCreateFolder, projects, 0, 0},
      {s + 6, EK::kRenameFolder, projects, 0, 0},
      {s + 7, EK::kCreateFolder, scratch, 0, 0},
      {s + 8, EK::kDeleteFolder, scratch, 0, 0},
  };
  EXPECT_EQ(run.all.entries, want);
  EXPECT_EQ(run.all.mailbox.guid, run.mailbox);
  EXPECT_EQ(run.all.mailbox.change_number, s + 8);
  EXPECT_TRUE(run.all.mailbox.tracked);
  EXPECT_EQ(run.all.mailbox.pruned_through, s);
  // The folder tree at the snapshot: the renamed folder, not the deleted one.
  int named = 0;
  for (const FolderInfo& f : run.all.folders) {
    EXPECT_NE(f.id, scratch);
    if (f.id == projects) {
      ++named;
      EXPECT_EQ(f.name, "Projects 2026");
      EXPECT_EQ(f.parent_id, kRootFolderId);
      EXPECT_EQ(f.kind, FolderKind::kUser);
    }
  }
  EXPECT_EQ(named, 1);
  // Items in id order: the generated one deleted (a tombstone), the
  // delivered one where it is now, with its flags, record and all.
  ASSERT_EQ(run.all.items.size(), 2u);
  EXPECT_EQ(run.all.items[0].item_id, run.existing_item);
  EXPECT_EQ(run.all.items[0].old_folder, run.existing_folder);
  EXPECT_EQ(run.all.items[0].new_folder, 0u);
  EXPECT_TRUE(run.all.items[0].record.empty());
  EXPECT_EQ(run.all.items[1].item_id, delivered);
  EXPECT_EQ(run.all.items[1].old_folder, 0u);
  EXPECT_EQ(run.all.items[1].new_folder, run.deleted_items);
  auto item = DecodeItem(run.all.items[1].record);
  ASSERT_TRUE(item.ok()) << item.status().ToString();
  Item want_item = DeliveredItem();
  want_item.flags = kFlagRead | kFlagFlagged;
  want_item.keywords = 0b101;
  EXPECT_EQ(*item, want_item);
  // The served store has that record in that folder.
  auto served = f_.org().GetStore("MS1");
  ASSERT_TRUE(served.ok());
  auto stored = (*served)->BeginRead();
  ASSERT_TRUE(stored.ok());
  auto rec = stored->GetItem(run.mailbox, run.deleted_items, delivered);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ(*rec, run.all.items[1].record);

  // From a later sync point: only what came after it.
  EXPECT_EQ(run.tail.entries, std::vector<E>(want.begin() + 3, want.end()));
  ASSERT_EQ(run.tail.items.size(), 1u);
  EXPECT_EQ(run.tail.items[0].item_id, run.existing_item);
  EXPECT_EQ(run.tail.items[0].new_folder, 0u);
  // After pruning through s + 4.
  EXPECT_EQ(run.pruned.entries, std::vector<E>(want.begin() + 4, want.end()));
  EXPECT_TRUE(run.pruned.items.empty());
  EXPECT_EQ(run.pruned.mailbox.pruned_through, s + 4);

  // The refusals, each with the store's own code across the wire.
  using C = Status::Code;
  EXPECT_EQ(run.errors, (std::vector<C>{
                            C::kNotFound,         // moving an item that is not there
                            C::kInvalidArgument,  // delivering a record that is not one
                            C::kNotFound,         // delivering into a folder that is not there
                            C::kInvalidArgument,  // renaming a default folder
                            C::kInvalidArgument,  // a name with '/'
                            C::kBusy,             // the mailbox locked by a move
                            C::kInvalidArgument,  // reading changes of an untracked mailbox
                            C::kNotFound,         // ... of a mailbox that is not there
                            C::kNotFound,         // tracking a mailbox that is not there
                            C::kInvalidArgument,  // pruning past the change number
                            C::kInvalidArgument,  // reading from a pruned sync point
                            C::kInvalidArgument,  // reading after tracking stopped
                        }));
}

// A round of clean-ups' transitions and deletes goes as calls in flight
// together (more than the 64 at once the client allows, here): a status for
// each, in the order asked, each as the store answers it alone.
TEST_F(RemoteClientOpTest, TransitionsAndDeletesOfManyMailboxesAnswerEachInOrder) {
  std::vector<MailboxInfo> boxes;
  ASSERT_TRUE(remote_->ListMailboxes(&boxes).ok());
  ASSERT_EQ(boxes.size(), 2u);
  const Guid a = boxes[0].guid, b = boxes[1].guid;
  Guid nobody;
  nobody.bytes.fill(0x5a);
  // a, nobody, b, then a 69 more times: a and b lock once each; every other
  // call finds its mailbox already moving out, or not there.
  std::vector<Guid> asked = {a, nobody, b};
  for (int i = 0; i < 69; ++i) asked.push_back(a);
  const uint64_t trips_before = rpc::RemoteRoundTrips();
  const std::vector<Status> got = remote_->TransitionMailboxes(asked, {MailboxState::kActive}, MailboxState::kMovingOut);
  EXPECT_EQ(rpc::RemoteRoundTrips() - trips_before, asked.size()) << "one call each";
  ASSERT_EQ(got.size(), asked.size());
  size_t a_locked = 0;
  for (size_t i = 0; i < asked.size(); ++i) {
    if (asked[i] == nobody) {
      EXPECT_TRUE(got[i].IsNotFound()) << i << ": " << got[i].ToString();
    } else if (asked[i] == b) {
      EXPECT_TRUE(got[i].ok()) << i << ": " << got[i].ToString();
    } else if (got[i].ok()) {
      ++a_locked;
    } else {
      EXPECT_EQ(got[i].code(), Status::Code::kBusy) << i << ": " << got[i].ToString();
    }
  }
  EXPECT_EQ(a_locked, 1u) << "calls in flight together, yet each a check-and-write of its own";
  EXPECT_EQ(remote_->GetMailbox(a)->state, MailboxState::kMovingOut);
  EXPECT_EQ(remote_->GetMailbox(b)->state, MailboxState::kMovingOut);

  // Deleted in one round: b, nobody, and a (moving out both).
  const std::vector<Status> del = remote_->DeleteMailboxesIn({b, nobody, a}, {MailboxState::kMovingOut});
  ASSERT_EQ(del.size(), 3u);
  EXPECT_TRUE(del[0].ok()) << del[0].ToString();
  EXPECT_TRUE(del[1].IsNotFound()) << del[1].ToString();
  EXPECT_TRUE(del[2].ok()) << del[2].ToString();
  EXPECT_TRUE(remote_->GetMailbox(a).status().IsNotFound());
  EXPECT_TRUE(remote_->GetMailbox(b).status().IsNotFound());
  EXPECT_TRUE(remote_->DeleteMailboxesIn({}, {MailboxState::kMovingOut}).empty());
}

// The change tracking of a round's kept sources stops in calls in flight
// together: a status each, in order, each as the single call answers.
TEST_F(RemoteClientOpTest, StopTrackingManyMailboxesAnswersEachInOrder) {
  std::vector<MailboxInfo> boxes;
  ASSERT_OK(remote_->ListMailboxes(&boxes));
  ASSERT_EQ(boxes.size(), 2u);
  const Guid a = boxes[0].guid, b = boxes[1].guid;
  auto since_a = remote_->TrackChanges(a, 0);
  auto since_b = remote_->TrackChanges(b, 0);
  ASSERT_TRUE(since_a.ok() && since_b.ok());
  Guid nobody;
  nobody.bytes.fill(0x5a);
  const Status alone = remote_->TrackChanges(nobody, StoreHandle::kStopTracking).status();
  std::vector<Guid> asked = {a, nobody, b};
  for (int i = 0; i < 70; ++i) asked.push_back(i % 2 ? a : nobody);  // more than 64 at once
  const uint64_t trips_before = rpc::RemoteRoundTrips();
  const std::vector<Status> got = remote_->StopTrackingChanges(asked);
  EXPECT_EQ(rpc::RemoteRoundTrips() - trips_before, asked.size()) << "one call each";
  ASSERT_EQ(got.size(), asked.size());
  for (size_t i = 0; i < asked.size(); ++i) {
    if (asked[i] == nobody) {
      EXPECT_EQ(got[i].code(), alone.code()) << i << ": " << got[i].ToString();
    } else {
      EXPECT_TRUE(got[i].ok()) << i << ": " << got[i].ToString();
    }
  }
  // Neither is tracked any more: reading their changes is refused.
  EXPECT_EQ(remote_->ReadChanges(a, *since_a).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(remote_->ReadChanges(b, *since_b).status().code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(remote_->StopTrackingChanges({}).empty());
}

// A move locks its source and reads it in one call: one round trip, a
// snapshot that sees the lock, and every refusal told apart from a lock
// that may have been made.
// An online move's start: the source's change tracking begun, then its
// snapshot, in one round trip; the snapshot already shows the mailbox
// tracked (taken after), its records are a plain read's, and a change made
// after it is in the index.
TEST_F(RemoteClientOpTest, TrackAndReadStartsTrackingThenReadsInOneRoundTrip) {
  std::vector<MailboxInfo> boxes;
  ASSERT_OK(remote_->ListMailboxes(&boxes));
  ASSERT_EQ(boxes.size(), 2u);
  const Guid a = boxes[0].guid;
  ASSERT_FALSE(boxes[0].tracked);
  std::vector<std::pair<uint64_t, std::string>> want;
  {
    auto plain = remote_->ReadMailbox(a);
    ASSERT_TRUE(plain.ok()) << plain.status().ToString();
    EXPECT_FALSE((*plain)->mailbox().tracked);
    want = AllRecords(plain->get());
  }
  ASSERT_FALSE(want.empty());

  const uint64_t trips_before = rpc::RemoteRoundTrips();
  auto read = remote_->TrackAndRead(a);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_TRUE((*read)->mailbox().tracked) << "the snapshot is taken after tracking began";
  const uint64_t since = (*read)->mailbox().change_number;
  const std::vector<std::pair<uint64_t, std::string>> got = AllRecords(read->get());
  EXPECT_EQ(got, want);
  EXPECT_EQ(rpc::RemoteRoundTrips() - trips_before, 1u) << "tracking and the read in one call";
  read->reset();

  auto made = MakeFolder(remote_.get(), a, "made after the snapshot");
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  auto cs = remote_->ReadChanges(a, since, ChangesPage{});
  ASSERT_TRUE(cs.ok()) << cs.status().ToString();
  ASSERT_FALSE(cs->entries.empty());
  EXPECT_EQ(cs->entries.back().change_number, made->change_number);

  // No such mailbox: refused, naming what failed.
  Guid nobody;
  nobody.bytes.fill(0x5a);
  read = remote_->TrackAndRead(nobody);
  EXPECT_TRUE(read.status().IsNotFound()) << read.status().ToString();
  // Locking and tracking in one read: refused before anything is done.
  auto stub = RawStub(certs_, address_, "SERVER1");
  ASSERT_NE(stub, nullptr);
  rpc::ReadRequest r;
  r.set_store("MS1");
  r.set_mailbox(std::string(boxes[1].guid.AsKey()));
  r.add_lock_from(uint32_t(MailboxState::kActive));
  r.set_lock_to(uint32_t(MailboxState::kMovingOut));
  r.set_track_changes(true);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto reader = stub->ReadMailbox(&ctx, r);
  rpc::ReadChunk first;
  EXPECT_FALSE(reader->Read(&first));
  EXPECT_EQ(rpc::FromGrpc(reader->Finish(), "server").code(), Status::Code::kInvalidArgument);
  auto b = remote_->GetMailbox(boxes[1].guid);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->state, MailboxState::kActive);
  EXPECT_FALSE(b->tracked);
}

TEST_F(RemoteClientOpTest, TransitionAndReadLocksThenReadsInOneRoundTrip) {
  std::vector<MailboxInfo> boxes;
  ASSERT_OK(remote_->ListMailboxes(&boxes));
  ASSERT_EQ(boxes.size(), 2u);
  const Guid a = boxes[0].guid;
  // What a plain read of it gives, before.
  std::vector<std::pair<uint64_t, std::string>> want;
  {
    auto plain = remote_->ReadMailbox(a);
    ASSERT_TRUE(plain.ok()) << plain.status().ToString();
    EXPECT_EQ((*plain)->mailbox().state, MailboxState::kActive);
    want = AllRecords(plain->get());
  }
  ASSERT_FALSE(want.empty());

  const uint64_t trips_before = rpc::RemoteRoundTrips();
  bool locked = false;
  auto read = remote_->TransitionAndRead(a, {MailboxState::kActive}, MailboxState::kMovingOut, &locked);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_TRUE(locked);
  EXPECT_EQ((*read)->mailbox().state, MailboxState::kMovingOut) << "the snapshot is taken after the lock";
  const std::vector<std::pair<uint64_t, std::string>> got = AllRecords(read->get());
  EXPECT_EQ(got, want);
  EXPECT_EQ(rpc::RemoteRoundTrips() - trips_before, 1u) << "the lock and the read in one call";
  read->reset();
  EXPECT_EQ(remote_->GetMailbox(a)->state, MailboxState::kMovingOut);

  // Locked already: the server's refusal, and no lock taken.
  locked = true;
  read = remote_->TransitionAndRead(a, {MailboxState::kActive}, MailboxState::kMovingOut, &locked);
  EXPECT_EQ(read.status().code(), Status::Code::kBusy) << read.status().ToString();
  EXPECT_FALSE(locked);
  // No such mailbox.
  Guid nobody;
  nobody.bytes.fill(0x5a);
  read = remote_->TransitionAndRead(nobody, {MailboxState::kActive}, MailboxState::kMovingOut, &locked);
  EXPECT_TRUE(read.status().IsNotFound()) << read.status().ToString();
  EXPECT_FALSE(locked);

  // Bad lock states straight on the stub: refused before anything is read
  // or written.
  auto stub = RawStub(certs_, address_, "SERVER1");
  ASSERT_NE(stub, nullptr);
  auto ask = [&](const std::vector<uint32_t>& from, uint32_t to) {
    rpc::ReadRequest r;
    r.set_store("MS1");
    r.set_mailbox(std::string(boxes[1].guid.AsKey()));
    for (uint32_t s : from) r.add_lock_from(s);
    r.set_lock_to(to);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto reader = stub->ReadMailbox(&ctx, r);
    rpc::ReadChunk first;
    const bool any = reader->Read(&first);
    const Status st = rpc::FromGrpc(reader->Finish(), "server");
    return std::make_pair(any, st);
  };
  for (auto [from, to] : std::vector<std::pair<std::vector<uint32_t>, uint32_t>>{
           {{99}, uint32_t(MailboxState::kMovingOut)},
           {{uint32_t(MailboxState::kActive)}, 99},
           {{0, 0, 0, 0, 0}, uint32_t(MailboxState::kMovingOut)}}) {
    auto [any, st] = ask(from, to);
    EXPECT_FALSE(any);
    EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << st.ToString();
  }
  EXPECT_EQ(remote_->GetMailbox(boxes[1].guid)->state, MailboxState::kActive);
}

// An online move's last pass and its lock in one call: the changes read,
// and the mailbox locked and read again only when they are few. The same
// answers from the local store (two calls at most) and over the wire (one).
void ExpectLockIfFew(StoreHandle& h, bool remote) {
  SCOPED_TRACE(remote ? "remote" : "local");
  std::vector<MailboxInfo> boxes;
  ASSERT_OK(h.ListMailboxes(&boxes));
  ASSERT_EQ(boxes.size(), 2u);
  const Guid a = boxes[0].guid;
  uint32_t inbox = 0;
  {
    auto rs = h.ReadMailbox(a);
    ASSERT_TRUE(rs.ok()) << rs.status().ToString();
    for (const FolderInfo& f : (*rs)->folders()) {
      if (f.kind == FolderKind::kInbox) inbox = f.id;
    }
  }
  ASSERT_NE(inbox, 0u);
  auto since = h.TrackChanges(a, 0);
  ASSERT_TRUE(since.ok()) << since.status().ToString();
  std::string record;
  ASSERT_OK(EncodeItem(DeliveredItem(), CodecOptions{h.zstd_level()}, &record));
  for (int n = 0; n < 3; ++n) {
    ClientOp op;
    op.kind = ClientOp::Kind::kDeliver;
    op.folder_id = inbox;
    op.record = record;
    ASSERT_TRUE(h.ApplyClientOp(a, op).ok());
  }
  const auto from = {MailboxState::kActive};
  // Three changed items, at most two asked: a plain pass, not locked.
  uint64_t trips = rpc::RemoteRoundTrips();
  bool locked = true;
  auto cs = h.ReadChangesLockingIfFew(a, *since, ChangesPage{}, 2, from, MailboxState::kMovingOut, &locked);
  ASSERT_TRUE(cs.ok()) << cs.status().ToString();
  EXPECT_FALSE(locked);
  EXPECT_EQ(cs->items.size(), 3u);
  EXPECT_EQ(cs->mailbox.state, MailboxState::kActive);
  if (remote) {
    EXPECT_EQ(rpc::RemoteRoundTrips() - trips, 1u);
  }
  EXPECT_EQ(h.GetMailbox(a)->state, MailboxState::kActive);
  // At most three: locked, and the page read after the lock.
  trips = rpc::RemoteRoundTrips();
  cs = h.ReadChangesLockingIfFew(a, *since, ChangesPage{}, 3, from, MailboxState::kMovingOut, &locked);
  ASSERT_TRUE(cs.ok()) << cs.status().ToString();
  EXPECT_TRUE(locked);
  EXPECT_EQ(cs->items.size(), 3u);
  EXPECT_EQ(cs->mailbox.state, MailboxState::kMovingOut) << "the page is read after the lock";
  if (remote) {
    EXPECT_EQ(rpc::RemoteRoundTrips() - trips, 1u) << "the pass and the lock in one call";
  }
  // Few, but locked already: the refusal, no lock taken.
  cs = h.ReadChangesLockingIfFew(a, *since, ChangesPage{}, 3, from, MailboxState::kMovingOut, &locked);
  EXPECT_EQ(cs.status().code(), Status::Code::kBusy) << cs.status().ToString();
  EXPECT_FALSE(locked);
  // An untracked mailbox: the read refused, no lock taken.
  cs = h.ReadChangesLockingIfFew(boxes[1].guid, 0, ChangesPage{}, 3, from, MailboxState::kMovingOut, &locked);
  EXPECT_EQ(cs.status().code(), Status::Code::kInvalidArgument) << cs.status().ToString();
  EXPECT_FALSE(locked);
  EXPECT_EQ(h.GetMailbox(boxes[1].guid)->state, MailboxState::kActive);
}

TEST_F(RemoteClientOpTest, ReadChangesLockingIfFewLocksOnlyWhenTheChangesAreFew) {
  ExpectLockIfFew(*remote_, true);
  MoveFixture local(0, {}, 2, 256u << 10);
  auto store = local.org().GetStore("MS1");
  ASSERT_TRUE(store.ok());
  ExpectLockIfFew(**store, false);
  // A conditional lock that names no transition: refused.
  auto stub = RawStub(certs_, address_, "SERVER1");
  ASSERT_NE(stub, nullptr);
  std::vector<MailboxInfo> boxes;
  ASSERT_OK(remote_->ListMailboxes(&boxes));
  rpc::ChangesRequest r;
  r.set_store("MS1");
  r.set_mailbox(std::string(boxes[0].guid.AsKey()));
  r.set_lock_if_items_at_most(5);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  rpc::Changes out;
  EXPECT_EQ(rpc::FromGrpc(stub->ReadChanges(&ctx, r, &out), "server").code(), Status::Code::kInvalidArgument);
}

// An online move's lock and its final delta's first page: one call, a page
// from after the lock, and the refusals as TransitionAndRead's.
TEST_F(RemoteClientOpTest, TransitionAndReadChangesLocksThenReadsThePageInOneRoundTrip) {
  std::vector<MailboxInfo> boxes;
  ASSERT_OK(remote_->ListMailboxes(&boxes));
  ASSERT_EQ(boxes.size(), 2u);
  const Guid a = boxes[0].guid;
  auto since = remote_->TrackChanges(a, 0);
  ASSERT_TRUE(since.ok()) << since.status().ToString();
  // A change after the sync point: the page must carry it.
  auto made = MakeFolder(remote_.get(), a, "made before the lock");
  ASSERT_TRUE(made.ok()) << made.status().ToString();

  const uint64_t trips_before = rpc::RemoteRoundTrips();
  bool locked = false;
  ChangesPage page;
  page.max_record_bytes = 1;
  auto cs = remote_->TransitionAndReadChanges(a, {MailboxState::kActive}, MailboxState::kMovingOut, *since, page,
                                              &locked);
  ASSERT_TRUE(cs.ok()) << cs.status().ToString();
  EXPECT_TRUE(locked);
  EXPECT_EQ(rpc::RemoteRoundTrips() - trips_before, 1u) << "the lock and the page in one call";
  EXPECT_EQ(cs->mailbox.state, MailboxState::kMovingOut) << "the page is read after the lock";
  EXPECT_EQ(cs->mailbox.change_number, made->change_number);
  ASSERT_FALSE(cs->entries.empty());
  EXPECT_EQ(cs->entries.back().change_number, made->change_number);
  // The same page read plainly now, under the lock: the same.
  auto again = remote_->ReadChanges(a, *since, page);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->entries, cs->entries);
  EXPECT_EQ(again->folders, cs->folders);

  // Locked already; an untracked mailbox (locked, then the page refused);
  // no such mailbox.
  cs = remote_->TransitionAndReadChanges(a, {MailboxState::kActive}, MailboxState::kMovingOut, *since, page, &locked);
  EXPECT_EQ(cs.status().code(), Status::Code::kBusy) << cs.status().ToString();
  EXPECT_FALSE(locked);
  const Guid b = boxes[1].guid;
  cs = remote_->TransitionAndReadChanges(b, {MailboxState::kActive}, MailboxState::kMovingOut, 0, page, &locked);
  EXPECT_EQ(cs.status().code(), Status::Code::kInvalidArgument) << cs.status().ToString();
  EXPECT_TRUE(locked) << "the transition was made before the page was refused";
  EXPECT_EQ(remote_->GetMailbox(b)->state, MailboxState::kMovingOut);
  Guid nobody;
  nobody.bytes.fill(0x5a);
  cs = remote_->TransitionAndReadChanges(nobody, {MailboxState::kActive}, MailboxState::kMovingOut, 0, page, &locked);
  EXPECT_TRUE(cs.status().IsNotFound()) << cs.status().ToString();
  EXPECT_FALSE(locked);
}

// A server whose read fails after the lock, or that ends the stream in ways
// a real one does not: what the client makes of each.
class LockThenFailService final : public rpc::StoreService::Service {
 public:
  enum class Mode {
    kLockedThenError,
    kCancelledBeforeAnything,
    kLockedUnasked,
    kLockedThenRecords,
    kHeaderWithoutLocked,  // a locking read answered as a plain one
    kOlderServer,          // does not say it locks (or tracks) on read: the client makes two calls
  };
  explicit LockThenFailService(Mode m) : mode_(m) {}
  grpc::Status Open(grpc::ServerContext*, const rpc::StoreRef*, rpc::StoreInfo* out) override {
    out->set_name("MS1");
    out->set_zstd_level(3);
    out->set_locks_on_read(mode_ != Mode::kOlderServer);
    out->set_tracks_on_read(mode_ != Mode::kOlderServer);
    out->set_locks_if_few(mode_ != Mode::kOlderServer);
    return grpc::Status::OK;
  }
  grpc::Status TrackChanges(grpc::ServerContext*, const rpc::TrackRequest*, rpc::TrackReply*) override {
    ++tracks_;
    return rpc::ToGrpc(Status::NotFound("no such mailbox"));
  }
  int tracks_ = 0;
  grpc::Status Transition(grpc::ServerContext*, const rpc::TransitionRequest*, rpc::Empty*) override {
    ++transitions_;
    return rpc::ToGrpc(Status::Busy("the mailbox is moving out"));
  }
  grpc::Status ReadChanges(grpc::ServerContext* ctx, const rpc::ChangesRequest* req, rpc::Changes*) override {
    asked_lock_ = req->lock_from_size() > 0;
    asked_if_few_ = req->has_lock_if_items_at_most();
    if (mode_ == Mode::kLockedThenError) {
      ctx->AddTrailingMetadata(rpc::kLockedMetadata, "1");
      return rpc::ToGrpc(Status::IOError("the disk went away"));
    }
    if (mode_ == Mode::kCancelledBeforeAnything) return grpc::Status(grpc::StatusCode::CANCELLED, "cut off");
    return grpc::Status::OK;  // an empty page, no lock said
  }
  int transitions_ = 0;
  grpc::Status ReadMailbox(grpc::ServerContext*, const rpc::ReadRequest* req,
                           grpc::ServerWriter<rpc::ReadChunk>* w) override {
    asked_lock_ = req->lock_from_size() > 0;
    asked_track_ = req->track_changes();
    rpc::ReadChunk m;
    switch (mode_) {
      case Mode::kLockedThenError:
        m.set_locked(true);
        w->Write(m);
        return rpc::ToGrpc(Status::IOError("the disk went away"));
      case Mode::kCancelledBeforeAnything:
        return grpc::Status(grpc::StatusCode::CANCELLED, "cut off");
      case Mode::kLockedUnasked:
      case Mode::kLockedThenRecords:
        m.set_locked(true);
        if (mode_ == Mode::kLockedThenRecords) m.add_records()->set_record("x");
        w->Write(m);
        return grpc::Status::OK;
      case Mode::kHeaderWithoutLocked:
      case Mode::kOlderServer:
        m.mutable_header()->set_mailbox(req->mailbox());
        w->Write(m);
        return grpc::Status::OK;
    }
    return grpc::Status::OK;
  }
  bool asked_lock_ = false;
  bool asked_track_ = false;
  bool asked_if_few_ = false;

 private:
  Mode mode_;
};

TEST(RemoteLockAndReadTest, TheClientTellsALockTakenFromOneThatMayHaveBeen) {
  TempDir t;
  const std::string certs = CertDir(t);
  using Mode = LockThenFailService::Mode;
  for (Mode mode : {Mode::kLockedThenError, Mode::kCancelledBeforeAnything, Mode::kLockedUnasked,
                    Mode::kLockedThenRecords, Mode::kHeaderWithoutLocked, Mode::kOlderServer}) {
    SCOPED_TRACE(int(mode));
    LockThenFailService svc(mode);
    auto creds = rpc::ServerTlsCredentials(certs, "SERVER1");
    ASSERT_TRUE(creds.ok()) << creds.status().ToString();
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", *creds, &port);
    b.RegisterService(&svc);
    std::unique_ptr<grpc::Server> server = b.BuildAndStart();
    ASSERT_NE(server, nullptr);
    ASSERT_GT(port, 0);
    auto h = rpc::ConnectRemoteStore("127.0.0.1:" + std::to_string(port), "SERVER1", "MS1", ClientOptions(certs));
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    Guid g;
    g.bytes.fill(0x11);
    bool locked = false;
    if (mode == Mode::kLockedUnasked) {
      auto r = (*h)->ReadMailbox(g);
      EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
      EXPECT_FALSE(svc.asked_lock_);
    } else if (mode == Mode::kOlderServer) {
      // The transition as a call of its own, refused: no read asked.
      auto r = (*h)->TransitionAndRead(g, {MailboxState::kActive}, MailboxState::kMovingOut, &locked);
      EXPECT_EQ(r.status().code(), Status::Code::kBusy) << r.status().ToString();
      auto c = (*h)->TransitionAndReadChanges(g, {MailboxState::kActive}, MailboxState::kMovingOut, 0, {}, &locked);
      EXPECT_EQ(c.status().code(), Status::Code::kBusy) << c.status().ToString();
      EXPECT_FALSE(locked);
      EXPECT_EQ(svc.transitions_, 2);
      EXPECT_FALSE(svc.asked_lock_);
      // Tracking as a call of its own too, refused: no read asked.
      auto tr = (*h)->TrackAndRead(g);
      EXPECT_TRUE(tr.status().IsNotFound()) << tr.status().ToString();
      EXPECT_NE(tr.status().message().find("tracking the mailbox's changes"), std::string::npos)
          << tr.status().ToString();
      EXPECT_EQ(svc.tracks_, 1);
      EXPECT_FALSE(svc.asked_track_);
      // No conditional lock asked of it: a plain read of the changes (this
      // server's page is not one), and no transition.
      auto few = (*h)->ReadChangesLockingIfFew(g, 0, {}, 5, {MailboxState::kActive}, MailboxState::kMovingOut, &locked);
      EXPECT_FALSE(few.ok());
      EXPECT_FALSE(locked);
      EXPECT_FALSE(svc.asked_lock_);
      EXPECT_FALSE(svc.asked_if_few_);
      EXPECT_EQ(svc.transitions_, 2);
    } else if (mode == Mode::kHeaderWithoutLocked) {
      // Whether it locked is not known: may be locked.
      auto r = (*h)->TransitionAndRead(g, {MailboxState::kActive}, MailboxState::kMovingOut, &locked);
      EXPECT_EQ(r.status().code(), Status::Code::kIOError) << r.status().ToString();
      EXPECT_FALSE(locked);
      auto c = (*h)->TransitionAndReadChanges(g, {MailboxState::kActive}, MailboxState::kMovingOut, 0, {}, &locked);
      EXPECT_EQ(c.status().code(), Status::Code::kIOError) << c.status().ToString();
      EXPECT_FALSE(locked);
      EXPECT_TRUE(svc.asked_lock_);
      EXPECT_EQ(svc.transitions_, 0);
      // A tracking read answered as a plain one: a copy from it could miss
      // changes, so it is refused.
      auto tr = (*h)->TrackAndRead(g);
      EXPECT_TRUE(tr.status().IsCorruption()) << tr.status().ToString();
      EXPECT_TRUE(svc.asked_track_);
      EXPECT_EQ(svc.tracks_, 0);
      // A conditional lock answered without saying whether it locked.
      locked = true;
      auto few = (*h)->ReadChangesLockingIfFew(g, 0, {}, 5, {MailboxState::kActive}, MailboxState::kMovingOut, &locked);
      EXPECT_EQ(few.status().code(), Status::Code::kIOError) << few.status().ToString();
      EXPECT_FALSE(locked);
      EXPECT_TRUE(svc.asked_if_few_);
    } else {
      if (mode != Mode::kLockedThenRecords) {
        // The changes' side first: the same outcome as the read's below.
        auto c = (*h)->TransitionAndReadChanges(g, {MailboxState::kActive}, MailboxState::kMovingOut, 0, {}, &locked);
        EXPECT_TRUE(svc.asked_lock_);
        ASSERT_FALSE(c.ok());
        EXPECT_EQ(c.status().code(), Status::Code::kIOError) << c.status().ToString();
        EXPECT_EQ(locked, mode == Mode::kLockedThenError);
        svc.asked_lock_ = false;
        // And the lock asked only if the changes are few: the same.
        locked = !locked;
        c = (*h)->ReadChangesLockingIfFew(g, 0, {}, 5, {MailboxState::kActive}, MailboxState::kMovingOut, &locked);
        EXPECT_TRUE(svc.asked_lock_);
        EXPECT_TRUE(svc.asked_if_few_);
        ASSERT_FALSE(c.ok());
        EXPECT_EQ(c.status().code(), Status::Code::kIOError) << c.status().ToString();
        EXPECT_EQ(locked, mode == Mode::kLockedThenError);
        svc.asked_lock_ = false;
      }
      auto r = (*h)->TransitionAndRead(g, {MailboxState::kActive}, MailboxState::kMovingOut, &locked);
      EXPECT_TRUE(svc.asked_lock_);
      ASSERT_FALSE(r.ok());
      switch (mode) {
        case Mode::kLockedThenError:  // locked, then the read's own error
          EXPECT_TRUE(locked);
          EXPECT_EQ(r.status().code(), Status::Code::kIOError);
          EXPECT_NE(r.status().message().find("the disk went away"), std::string::npos) << r.status().ToString();
          break;
        case Mode::kCancelledBeforeAnything:  // no answer: the lock may have been made
          EXPECT_FALSE(locked);
          EXPECT_EQ(r.status().code(), Status::Code::kIOError) << r.status().ToString();
          break;
        default:  // a lock, then records without a header
          EXPECT_TRUE(locked);
          EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
      }
    }
    h->reset();
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }
}

// The same run on a local store of the same data gives the same answers,
// the same change sets, byte for byte.
TEST_F(RemoteClientOpTest, AnswersExactlyAsTheLocalStore) {
  MoveFixture local(0, {}, 2, 256u << 10);
  auto store = local.org().GetStore("MS1");
  ASSERT_TRUE(store.ok());
  const ClientOpRun want = RunClientOps(**store);
  const ClientOpRun got = RunClientOps(*remote_);
  ASSERT_EQ(got.mailbox, want.mailbox);
  ASSERT_EQ(got.results.size(), want.results.size());
  for (size_t i = 0; i < got.results.size(); ++i) {
    EXPECT_EQ(got.results[i].id, want.results[i].id) << i;
    EXPECT_EQ(got.results[i].change_number, want.results[i].change_number) << i;
  }
  EXPECT_EQ(got.errors, want.errors);
  auto same = [](const ChangeSet& a, const ChangeSet& b, const char* what) {
    EXPECT_EQ(EncodeMailboxInfo(a.mailbox), EncodeMailboxInfo(b.mailbox)) << what;
    EXPECT_EQ(a.folders, b.folders) << what;
    EXPECT_EQ(a.entries, b.entries) << what;
    ASSERT_EQ(a.items.size(), b.items.size()) << what;
    for (size_t i = 0; i < a.items.size(); ++i) {
      EXPECT_EQ(a.items[i].item_id, b.items[i].item_id) << what;
      EXPECT_EQ(a.items[i].old_folder, b.items[i].old_folder) << what;
      EXPECT_EQ(a.items[i].new_folder, b.items[i].new_folder) << what;
      EXPECT_EQ(a.items[i].record, b.items[i].record) << what;
    }
  };
  same(got.all, want.all, "all");
  same(got.tail, want.tail, "tail");
  same(got.pruned, want.pruned, "pruned");
}

// Requests no RemoteStore sends, straight on the stub: each is refused with
// InvalidArgument (or the store's own answer), nothing is written, and the
// server goes on serving.
TEST_F(RemoteClientOpTest, BadClientOpRequestsAreRefused) {
  std::vector<MailboxInfo> boxes;
  ASSERT_OK(remote_->ListMailboxes(&boxes));
  ASSERT_FALSE(boxes.empty());
  const std::string g(boxes[0].guid.AsKey());
  auto served = f_.org().GetStore("MS1");
  ASSERT_TRUE(served.ok());
  const uint64_t batches_before = (*served)->Figures()->batches;

  auto stub = RawStub(certs_, address_, "SERVER1");
  ASSERT_NE(stub, nullptr);
  auto op = [&](const rpc::ClientOpRequest& r) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    rpc::ClientOpReply out;
    return rpc::FromGrpc(stub->ApplyClientOp(&ctx, r, &out), "server");
  };
  rpc::ClientOpRequest r;
  r.set_store("MS1");
  r.set_mailbox(g);
  r.set_folder_id(kRootFolderId);
  r.set_name("New");
  for (uint32_t kind : {0u, 8u, 255u, 0xffffffffu}) {  // kinds out of range
    r.set_kind(kind);
    Status s = op(r);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << kind << ": " << s.ToString();
  }
  r.set_kind(uint32_t(ClientOp::Kind::kCreateFolder));
  r.set_mailbox("short");  // a GUID of the wrong size
  EXPECT_EQ(op(r).code(), Status::Code::kInvalidArgument);
  r.set_mailbox(g);
  r.set_name(std::string(1u << 20, 'n'));  // a name far past any bound
  EXPECT_EQ(op(r).code(), Status::Code::kInvalidArgument);
  r.set_name("");
  EXPECT_EQ(op(r).code(), Status::Code::kInvalidArgument);
  r.set_kind(uint32_t(ClientOp::Kind::kDeliver));  // a damaged record
  r.set_folder_id(kRootFolderId);
  std::string rec = TestRecord(7);
  rec[rec.size() / 2] ^= 0x20;
  r.set_record(rec);
  EXPECT_EQ(op(r).code(), Status::Code::kInvalidArgument);
  r.set_record("");
  EXPECT_EQ(op(r).code(), Status::Code::kInvalidArgument);
  r.set_store("MS2");  // a store this server does not serve
  EXPECT_TRUE(op(r).IsNotFound());
  {
    rpc::TrackRequest t;
    t.set_store("MS1");
    t.set_mailbox(std::string(17, '\1'));
    rpc::TrackReply out;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    EXPECT_EQ(rpc::FromGrpc(stub->TrackChanges(&ctx, t, &out), "server").code(), Status::Code::kInvalidArgument);
  }
  {
    rpc::ChangesRequest c;
    c.set_store("MS1");
    c.set_mailbox("");
    rpc::Changes out;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    EXPECT_EQ(rpc::FromGrpc(stub->ReadChanges(&ctx, c, &out), "server").code(), Status::Code::kInvalidArgument);
  }
  EXPECT_EQ((*served)->Figures()->batches, batches_before);
  // Still served, and the mailbox as it was.
  auto m = remote_->GetMailbox(boxes[0].guid);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(EncodeMailboxInfo(*m), EncodeMailboxInfo(boxes[0]));
}

// A change set larger than the server may send comes in pages that each
// fit a message (the client asks again after `next_after_item`); one record
// too large for any message comes apart from its page (ReadItem, in
// pieces), and the client hands it on with the page, whole.
TEST(RemoteClientOpLimitTest, ChangeSetOverTheMessageLimitComesInPagesAndAnOversizedItemApart) {
  MoveFixture f(0, {}, 2, 256u << 10);
  TempDir t;
  const std::string certs = CertDir(t);
  Servers servers(f.org(), certs, {"SERVER1"}, nullptr, /*max_message_bytes=*/256u << 10);
  auto h = rpc::ConnectRemoteStore("127.0.0.1:" + std::to_string(servers[0].port()), "SERVER1", "MS1",
                                   ClientOptions(certs));
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  std::vector<MailboxInfo> boxes;
  ASSERT_OK((*h)->ListMailboxes(&boxes));
  ASSERT_FALSE(boxes.empty());
  const Guid g = boxes[0].guid;
  auto start = (*h)->TrackChanges(g, 0);
  ASSERT_TRUE(start.ok()) << start.status().ToString();
  ClientOp op;
  op.kind = ClientOp::Kind::kDeliver;
  op.folder_id = kRootFolderId;
  std::vector<std::string> records;
  for (int i = 0; i < 4; ++i) {  // 4 x 100 KiB, incompressible: 400 KiB, more than a message
    op.record = RandomRecord(100 + i, 100u << 10);
    records.push_back(op.record);
    auto r = (*h)->ApplyClientOp(g, op);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  std::vector<std::string> got;
  ChangesPage page;
  int pages = 0;
  for (;;) {
    auto cs = (*h)->ReadChanges(g, *start, page);
    ASSERT_TRUE(cs.ok()) << cs.status().ToString();
    ASSERT_LE(++pages, 8);
    EXPECT_EQ(cs->entries.size(), page.after_item == 0 ? 4u : 0u);  // the first page's alone
    for (const auto& d : cs->items) got.push_back(d.record);
    if (!cs->more) break;
    page.after_item = cs->next_after_item;
  }
  EXPECT_GE(pages, 2) << "400 KiB of records do not fit one 256 KiB message";
  EXPECT_EQ(got, records);
  // The client's own smaller pages are kept to.
  ChangesPage small;
  small.max_record_bytes = 1;
  auto one = (*h)->ReadChanges(g, *start, small);
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(one->items.size(), 1u);
  EXPECT_TRUE(one->more);

  // One record larger than any message (delivered to the store where it
  // is): its page comes without it, and the client reads it apart.
  const uint64_t before_big = *(*h)->TrackChanges(g, *start);
  op.record = RandomRecord(200, 600u << 10);
  auto local = f.org().GetStore("MS1");
  ASSERT_TRUE(local.ok());
  ASSERT_TRUE((*local)->ApplyClientOp(g, op).ok());
  const uint64_t rounds = rpc::RemoteRoundTrips();
  auto all = (*h)->ReadChanges(g, before_big);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(rpc::RemoteRoundTrips() - rounds, 2u) << "the page, then the record apart";
  ASSERT_EQ(all->items.size(), 1u);
  EXPECT_EQ(all->items[0].new_folder, kRootFolderId);
  EXPECT_EQ(all->items[0].record, op.record);
  EXPECT_FALSE(all->more);
  ClientOp fl;
  fl.kind = ClientOp::Kind::kCreateFolder;
  fl.folder_id = kRootFolderId;
  fl.name = "after";
  ASSERT_TRUE((*h)->ApplyClientOp(g, fl).ok());
  auto last = (*h)->ReadChanges(g, before_big + 1);
  ASSERT_TRUE(last.ok()) << last.status().ToString();
  EXPECT_EQ(last->entries.size(), 1u);
  EXPECT_TRUE(last->items.empty());
}

// A change index larger than the room a page keeps beside its records (a
// user who flagged hundreds of items since the sync point): the first page
// takes fewer records so that it fits, the later pages carry no entries,
// and the whole change set arrives. (Each page used to carry every entry,
// and each was refused as more than one message.)
TEST(RemoteClientOpLimitTest, AChangeIndexLargerThanAPagesRoomStillComesInPages) {
  constexpr size_t kMessage = 32u << 10;  // room for records 24 KiB, for the rest 8 KiB
  MoveFixture f(0, {}, 2, 256u << 10);
  TempDir t;
  const std::string certs = CertDir(t);
  Servers servers(f.org(), certs, {"SERVER1"}, nullptr, kMessage);
  auto h = rpc::ConnectRemoteStore("127.0.0.1:" + std::to_string(servers[0].port()), "SERVER1", "MS1",
                                   ClientOptions(certs));
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  auto local = f.org().GetStore("MS1");
  ASSERT_TRUE(local.ok());
  std::vector<MailboxInfo> boxes;
  ASSERT_OK((*local)->ListMailboxes(&boxes));
  ASSERT_FALSE(boxes.empty());
  const Guid g = boxes[0].guid;
  auto start = (*local)->TrackChanges(g, 0);
  ASSERT_TRUE(start.ok()) << start.status().ToString();
  // Three incompressible 10 KiB deliveries (30 KiB of records: two pages at
  // least), then 700 flag changes on the first of them (700 entries, about
  // 11 KiB on the wire: more than the 8 KiB kept for them).
  ClientOp op;
  op.kind = ClientOp::Kind::kDeliver;
  op.folder_id = kRootFolderId;
  std::vector<uint64_t> delivered;
  for (int i = 0; i < 3; ++i) {
    op.record = RandomRecord(300 + i, 10u << 10);
    auto r = (*local)->ApplyClientOp(g, op);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    delivered.push_back(r->id);
  }
  ClientOp flag;
  flag.kind = ClientOp::Kind::kSetFlags;
  flag.folder_id = kRootFolderId;
  flag.item_id = delivered[0];
  for (int i = 0; i < 700; ++i) {
    flag.flags = (i % 2) != 0 ? uint32_t(kFlagRead) : 0u;
    auto r = (*local)->ApplyClientOp(g, flag);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  auto whole = (*local)->ReadChanges(g, *start);
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  ASSERT_EQ(whole->entries.size(), 703u);
  ASSERT_EQ(whole->items.size(), 3u);

  std::vector<ItemDelta> got;
  ChangesPage page;
  int pages = 0;
  for (;;) {
    auto cs = (*h)->ReadChanges(g, *start, page);
    ASSERT_TRUE(cs.ok()) << cs.status().ToString();
    ASSERT_LE(++pages, 8);
    if (page.after_item == 0) {
      EXPECT_EQ(cs->entries, whole->entries);
    } else {
      EXPECT_TRUE(cs->entries.empty()) << cs->entries.size();
    }
    for (auto& d : cs->items) got.push_back(std::move(d));
    if (!cs->more) break;
    page.after_item = cs->next_after_item;
  }
  EXPECT_GE(pages, 2);
  ASSERT_EQ(got.size(), whole->items.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].item_id, whole->items[i].item_id);
    EXPECT_EQ(got[i].new_folder, whole->items[i].new_folder);
    EXPECT_EQ(got[i].record, whole->items[i].record);
  }
}

// --- Items larger than a message ------------------------------------------

// A migration batch of every mailbox of MS1 to MS2, created (not started).
Status CreateBatchOfMS1(MoveFixture& f, const std::string& name, uint32_t concurrency, int64_t sync_interval_ms,
                        BatchRecord* b) {
  engine::MoveRequest req;
  req.from_store = "MS1";
  req.options.target = "MS2";
  MBX_ASSIGN_OR_RETURN(auto plan, engine::PlanMoves(f.org(), req));
  b->name = name;
  b->target = "MS2";
  b->concurrency = concurrency;
  b->sync_interval_ms = sync_interval_ms;
  return engine::CreateBatch(f.org(), b, plan);
}


// An item larger than any message either server reads or sends (a mail with
// a large attachment, over servers whose messages are 256 KiB here, 64 MiB
// by default) crosses in pieces: read in pieces from the source's server,
// written in pieces to the target's, and the mailbox moves whole.
TEST(RemoteMoveLimitTest, AnItemLargerThanAMessageMovesInPieces) {
  MoveFixture f(0, {}, 2, 256u << 10);
  auto ms1 = f.org().GetStore("MS1");
  ASSERT_TRUE(ms1.ok());
  std::vector<MailboxInfo> boxes;
  ASSERT_OK((*ms1)->ListMailboxes(&boxes));
  ASSERT_FALSE(boxes.empty());
  ClientOp op;
  op.kind = ClientOp::Kind::kDeliver;
  op.folder_id = kRootFolderId;
  for (size_t kib : {300, 700, 1300}) {  // incompressible: a piece, three, six
    op.record = RandomRecord(kib, kib << 10);
    ASSERT_TRUE((*ms1)->ApplyClientOp(boxes[0].guid, op).ok());
  }
  const auto want = Contents(f.org(), "MS1");
  TempDir t;
  const std::string certs = CertDir(t);
  Servers servers(f.org(), certs, {"SERVER1", "SERVER2"}, nullptr, /*max_message_bytes=*/256u << 10);
  engine::MoveOptions o;
  o.concurrency = 2;
  auto report = f.MoveAll(o);
  EXPECT_EQ(report.Failed(), 0u) << report.ToJson().dump(2);
  EXPECT_TRUE(SameContents(Contents(f.org(), "MS2"), want));
  EXPECT_TRUE(Contents(f.org(), "MS1").empty());
}

// The same across an online move's passes: an item larger than a message,
// delivered while a batch keeps its members synced, comes apart from its
// change page and is on the target when the batch completes.
TEST(RemoteMoveLimitTest, AnItemLargerThanAMessageDeliveredDuringABatchArrives) {
  MoveFixture f(0, {}, 2, 256u << 10);
  TempDir t;
  const std::string certs = CertDir(t);
  Servers servers(f.org(), certs, {"SERVER1", "SERVER2"}, nullptr, /*max_message_bytes=*/256u << 10);
  BatchRecord b;
  ASSERT_OK(CreateBatchOfMS1(f, "large-items", 2, 20, &b));
  engine::BatchRunOptions o;
  o.name = b.name;
  o.poll_ms = 10;
  std::atomic<bool> runner_stop{false};
  std::optional<Result<engine::BatchRunReport>> rep;
  std::thread runner([&] { rep.emplace(engine::RunBatch(f.org(), o, runner_stop)); });
  auto all_synced = [&](uint64_t passes) {
    return testing::WaitFor([&] {
      auto cur = f.org().directory().GetBatch(b.name);
      return cur.ok() && std::all_of(cur->members.begin(), cur->members.end(), [&](const BatchMember& m) {
               return m.state == MemberState::kSynced && m.passes >= passes;
             });
    });
  };
  bool delivered = false;
  if (all_synced(1)) {
    auto ms1 = f.org().GetStore("MS1");
    std::vector<MailboxInfo> boxes;
    if (ms1.ok() && (*ms1)->ListMailboxes(&boxes).ok() && !boxes.empty()) {
      ClientOp op;
      op.kind = ClientOp::Kind::kDeliver;
      op.folder_id = kRootFolderId;
      op.record = RandomRecord(77, 700u << 10);  // three pieces of 128 KiB at least
      delivered = (*ms1)->ApplyClientOp(boxes[0].guid, op).ok();
    }
  }
  EXPECT_TRUE(delivered);
  const auto want = Contents(f.org(), "MS1");
  // A pass of their own after the delivery, then the last one under the lock.
  EXPECT_TRUE(all_synced(3));
  Status asked = engine::RequestComplete(f.org(), b.name);
  EXPECT_OK(asked);
  if (!asked.ok()) runner_stop = true;
  runner.join();
  ASSERT_TRUE(rep.has_value());
  ASSERT_TRUE(rep->ok()) << rep->status().ToString();
  EXPECT_EQ((*rep)->ended, "completed");
  EXPECT_EQ((*rep)->moves.Completed(), 2u) << (*rep)->moves.ToJson().dump(2);
  // By the passes: no initial copy had to start again (a pass that failed
  // on the item would have sent its member back to one).
  for (const auto& m : (*rep)->batch.members) EXPECT_EQ(m.attempts, 1u) << m.user << ": " << m.result;
  EXPECT_TRUE(SameContents(Contents(f.org(), "MS2"), want));
}

// A write in pieces is all or nothing: a stream that ends before its last
// piece, or whose pieces do not join up, writes nothing.
TEST(RemoteMoveLimitTest, AWriteInPiecesThatBreaksOffWritesNothing) {
  MoveFixture f(0, {}, 1, 64u << 10);
  TempDir t;
  const std::string certs = CertDir(t);
  Servers servers(f.org(), certs, {"SERVER2"}, nullptr, /*max_message_bytes=*/256u << 10);
  auto served = f.org().GetStore("MS2");
  ASSERT_TRUE(served.ok());
  const uint64_t batches_before = (*served)->Figures()->batches;
  auto srv = f.org().directory().GetServer("SERVER2");
  ASSERT_TRUE(srv.ok()) << srv.status().ToString();
  auto stub = RawStub(certs, srv->address, "SERVER2");
  ASSERT_NE(stub, nullptr);
  Guid g;
  g.bytes.fill(0x5a);
  MailboxInfo m;
  m.guid = g;
  m.state = MailboxState::kMovingIn;
  const std::string key(keys::Mailbox(g));
  auto send = [&](const std::vector<rpc::WriteRequest>& pieces) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    rpc::Empty resp;
    auto w = stub->WriteInPieces(&ctx, &resp);
    for (const auto& p : pieces) EXPECT_TRUE(w->Write(p));
    w->WritesDone();
    return rpc::FromGrpc(w->Finish(), "server");
  };
  auto piece = [&](const std::string& value, bool continues, bool last, const std::string& k) {
    rpc::WriteRequest r;
    r.set_store("MS2");
    r.set_last_piece(last);
    auto* mu = r.add_mutations();
    mu->set_op(uint32_t(Mutation::Op::kPut));
    mu->set_db(uint32_t(Db::kMailboxes));
    mu->set_key(k);
    mu->set_value(value);
    mu->set_value_continues(continues);
    return r;
  };
  const std::string header = EncodeMailboxInfo(m);
  const std::string a = header.substr(0, header.size() / 2), b = header.substr(header.size() / 2);
  // No last piece: nothing.
  EXPECT_EQ(send({piece(a, true, false, key), piece(b, false, false, key)}).code(), Status::Code::kAborted);
  // A value that goes on into another key: refused.
  std::string other = key;
  other.back() ^= 1;
  EXPECT_EQ(send({piece(a, true, false, key), piece(b, false, true, other)}).code(),
            Status::Code::kInvalidArgument);
  // Ending inside a value: nothing.
  EXPECT_EQ(send({piece(a, true, true, key)}).code(), Status::Code::kAborted);
  // A client that goes away mid-batch (its call cancelled after a piece):
  // nothing.
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    rpc::Empty resp;
    auto w = stub->WriteInPieces(&ctx, &resp);
    EXPECT_TRUE(w->Write(piece(a, true, false, key)));
    ctx.TryCancel();
    EXPECT_FALSE(w->Finish().ok());
  }
  // A piece after the last one: refused.
  EXPECT_EQ(send({piece(a, true, false, key), piece(b, false, true, key), piece(header, false, true, key)}).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ((*served)->Figures()->batches, batches_before);
  EXPECT_TRUE((*served)->GetMailbox(g).status().IsNotFound());
  // Whole, the same pieces write the header once.
  ASSERT_OK(send({piece(a, true, false, key), piece(b, false, true, key)}));
  EXPECT_EQ((*served)->Figures()->batches, batches_before + 1);
  auto got = (*served)->GetMailbox(g);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(EncodeMailboxInfo(*got), header);
}

// --- Links that fail -------------------------------------------------------

// After a cut or a stalled link, each mailbox either moved or is back on the
// source as it was; after recovery, nothing is locked and nothing is lost.
void ExpectInvariantAfterRecovery(MoveFixture& f) {
  auto rec = engine::Recover(f.org());
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_TRUE(rec->all_done());
  EXPECT_EQ(engine::MoveInvariantViolations(f.before(), f.Snapshot()), std::vector<std::string>{});
}

TEST(RemoteLinkTest, CutConnectionsFailCleanlyOrComplete) {
  MoveFixture f;
  TempDir t;
  net::LinkOptions lo;
  lo.cut_after_bytes = 3u << 20;  // each connection dies after 3 MiB
  Servers servers(f.org(), CertDir(t), {"SERVER2"}, &lo);
  engine::MoveOptions o;
  o.concurrency = 2;
  auto report = f.MoveAll(o);
  ExpectInvariantAfterRecovery(f);
}

TEST(RemoteLinkTest, StalledLinkFailsWithinTheDeadline) {
  MoveFixture f;
  TempDir t;
  net::LinkOptions lo;
  lo.stall_after_bytes = 2u << 20;  // then silence, the connection left open
  Servers servers(f.org(), CertDir(t), {"SERVER2"}, &lo);
  engine::MoveOptions o;
  o.concurrency = 2;
  auto report = f.MoveAll(o);  // returns: keepalive finds the stall
  EXPECT_GT(report.Failed(), 0u);
  ExpectInvariantAfterRecovery(f);
}


// An online move between two served stores, each behind a 5 ms link, while
// a client load works on the moving mailboxes through the same servers: the
// change index, the passes and the lock all cross the network; afterwards
// every mailbox is on the target holding every acknowledged operation.
TEST(RemoteOnlineTest, OnlineMoveAcrossServersUnderLoadKeepsEveryAcknowledgedOperation) {
  MoveFixture f(0, {}, 6, 3u << 20);
  const auto before = journal::ContentOf(f.org(), "MS1");
  TempDir t;
  const std::string certs = CertDir(t);
  net::LinkOptions link;
  link.delay = std::chrono::microseconds(2500);
  Servers servers(f.org(), certs, {"SERVER1", "SERVER2"}, &link);
  const uint64_t trips_before = rpc::RemoteRoundTrips();
  engine::LoadOptions lo = journal::LoadOnEveryMailbox(f.org(), 150, 9, t / "journal");
  lo.pause = std::chrono::milliseconds(10);
  engine::ClientLoad load(f.org(), lo);
  ASSERT_OK(load.Prepare());
  std::atomic<bool> stop{false};
  engine::LoadReport lr;
  std::thread th([&] { lr = load.Run(&stop); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  engine::MoveOptions o;
  o.online = true;
  o.concurrency = 3;
  o.final_delta_items = 1;
  o.max_passes = 3;
  engine::MoveReport rep = f.MoveAll(o);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  stop = true;
  th.join();
  EXPECT_EQ(rep.Completed(), 6u) << rep.ToJson().dump(2);
  EXPECT_EQ(lr.total.failed, 0u) << lr.ToJson().dump(2);
  EXPECT_GT(lr.total.done, 20u);
  EXPECT_GT(rpc::RemoteRoundTrips(), trips_before);
  for (const auto& m : rep.mailboxes) {
    EXPECT_TRUE(m.online);
    EXPECT_GT(m.lock_ms, 0);
  }
  const auto expected = journal::ReplayJournal(lo.journal, before);
  const auto now = journal::ReadAll(f.org());
  ASSERT_EQ(now.size(), 6u);
  for (const auto& [g, c] : now) journal::ExpectContent(g, c, expected.at(g));
  auto src = f.org().GetStore("MS1");
  ASSERT_TRUE(src.ok());
  std::vector<MailboxInfo> left;
  ASSERT_OK((*src)->ListMailboxes(&left));
  EXPECT_TRUE(left.empty());
}

// Online moves across servers that keep their sources: each source is left
// soft-deleted and no longer tracked (the clean-up round stops the tracking
// of all of them together).
TEST(RemoteOnlineTest, KeptSourcesAcrossServersAreSoftDeletedAndNoLongerTracked) {
  MoveFixture f(0, {}, 5, 1u << 20);
  TempDir t;
  const std::string certs = CertDir(t);
  Servers servers(f.org(), certs, {"SERVER1", "SERVER2"});
  engine::MoveOptions o;
  o.online = true;
  o.keep_source = true;
  o.concurrency = 5;
  engine::MoveReport rep = f.MoveAll(o);
  ASSERT_EQ(rep.Completed(), 5u) << rep.ToJson().dump(2);
  auto src = f.org().GetStore("MS1");
  ASSERT_TRUE(src.ok());
  std::vector<MailboxInfo> left;
  ASSERT_OK((*src)->ListMailboxes(&left));
  ASSERT_EQ(left.size(), 5u);
  for (const MailboxInfo& m : left) {
    EXPECT_EQ(m.state, MailboxState::kSoftDeleted);
    EXPECT_EQ((*src)->ReadChanges(m.guid, 0).status().code(), Status::Code::kInvalidArgument)
        << "the source's change tracking stopped";
  }
  EXPECT_TRUE(f.Snapshot().problems.empty());
}

// A migration batch whose stores are served across an emulated link: synced
// by passes under load, completed by itself, every acknowledged operation
// on the target.
TEST(RemoteOnlineTest, BatchAcrossServersSyncsAndCompletesUnderLoad) {
  MoveFixture f(0, {}, 5, 2u << 20);
  const auto before = journal::ContentOf(f.org(), "MS1");
  TempDir t;
  const std::string certs = CertDir(t);
  net::LinkOptions link;
  link.delay = std::chrono::microseconds(2500);
  Servers servers(f.org(), certs, {"SERVER1", "SERVER2"}, &link);
  engine::LoadOptions lo = journal::LoadOnEveryMailbox(f.org(), 100, 4, t / "journal");
  lo.pause = std::chrono::milliseconds(10);
  engine::ClientLoad load(f.org(), lo);
  ASSERT_OK(load.Prepare());
  std::atomic<bool> stop{false};
  engine::LoadReport lr;
  std::thread th([&] { lr = load.Run(&stop); });
  BatchRecord b;
  ASSERT_OK(CreateBatchOfMS1(f, "remote-wave", 3, 50, &b));
  engine::BatchRunOptions o;
  o.name = b.name;
  o.poll_ms = 20;
  o.move.final_delta_items = 1;
  o.move.max_passes = 3;
  std::atomic<bool> runner_stop{false};
  std::optional<Result<engine::BatchRunReport>> rep;
  std::thread runner([&] { rep.emplace(engine::RunBatch(f.org(), o, runner_stop)); });
  // Completed once every member is synced and has run a pass of its own
  // under the load (a --complete-after raced the initial copies under TSan).
  const bool passed = testing::WaitFor([&] {
    auto cur = f.org().directory().GetBatch(b.name);
    return cur.ok() && std::all_of(cur->members.begin(), cur->members.end(), [](const BatchMember& m) {
             return m.state == MemberState::kSynced && m.passes >= 2;
           });
  });
  EXPECT_TRUE(passed) << "not every member synced with a pass of its own within 60 s";
  Status asked = engine::RequestComplete(f.org(), b.name);
  EXPECT_OK(asked);
  if (!asked.ok()) runner_stop = true;
  runner.join();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  stop = true;
  th.join();
  ASSERT_TRUE(rep.has_value());
  ASSERT_TRUE(rep->ok()) << rep->status().ToString();
  EXPECT_EQ((*rep)->ended, "completed");
  EXPECT_EQ((*rep)->moves.Completed(), 5u);
  EXPECT_EQ(lr.total.failed, 0u) << lr.ToJson().dump(2);
  for (const auto& m : (*rep)->batch.members) {
    EXPECT_EQ(m.state, MemberState::kCompleted) << m.user << ": " << m.result;
    EXPECT_GE(m.passes, 2u);
  }
  const auto expected = journal::ReplayJournal(lo.journal, before);
  const auto now = journal::ReadAll(f.org());
  ASSERT_EQ(now.size(), 5u);
  for (const auto& [g, c] : now) journal::ExpectContent(g, c, expected.at(g));
}

}  // namespace
}  // namespace mbx::testing
