// Moves across the network: the same engine, with one or both stores behind
// `mbxmove serve` (StoreServer, in this process, on 127.0.0.1 with a port
// the OS chose), reached through the remote StoreHandle over mutual TLS.
// Every case compares with the same move done locally on the same data.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include <fstream>
#include <sstream>

#include "engine/org_check.h"
#include "engine/recovery.h"

#include "net/certs.h"
#include "net/link_proxy.h"
#include "rpc/remote_store.h"
#include "rpc/rpc_status.h"
#include "rpc/tls.h"
#include "rpc/store_server.h"
#include "rpc/store_service.grpc.pb.h"
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
  // The target's write-path copies come across with its figures (served or local alike).
  EXPECT_GE(report.target->copied_bytes, 2 * report.BytesCopied());
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
  auto creds = rpc::ClientTlsCredentials(certs_);
  ASSERT_TRUE(creds.ok());
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("SERVER2");
  auto stub = rpc::StoreService::NewStub(grpc::CreateCustomChannel(address_, *creds, args));
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

}  // namespace
}  // namespace mbx::testing
