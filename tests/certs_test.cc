// net/certs: the files `mbxmove certs create` writes, their permissions, and
// that OpenSSL accepts the chains it should and refuses the others (another
// CA, an expired certificate, the wrong purpose), in X509_verify_cert and in
// a real mutual-TLS handshake.
#include "net/certs.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "tests/test_util.h"

namespace mbx::net {
namespace {

using mbx::testing::TempDir;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

template <auto Fn>
struct Free {
  template <typename T>
  void operator()(T* p) const {
    Fn(p);
  }
};
using X509Ptr = std::unique_ptr<X509, Free<X509_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY_free>>;
using StorePtr = std::unique_ptr<X509_STORE, Free<X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Free<X509_STORE_CTX_free>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, Free<SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, Free<SSL_free>>;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

X509Ptr ParseCert(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), int(pem.size()));
  X509Ptr cert(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  return cert;
}

PkeyPtr ParseKey(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), int(pem.size()));
  PkeyPtr key(PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  return key;
}

// X509_verify_cert of `leaf` against the single trusted `ca`, for `purpose`
// (X509_PURPOSE_SSL_SERVER / _CLIENT); returns the X509_V_ code.
int VerifyChain(const std::string& ca_pem, const std::string& leaf_pem, int purpose) {
  X509Ptr ca = ParseCert(ca_pem), leaf = ParseCert(leaf_pem);
  if (!ca || !leaf) return -1;
  StorePtr store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca.get());
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), nullptr);
  X509_STORE_CTX_set_purpose(ctx.get(), purpose);
  int ok = X509_verify_cert(ctx.get());
  int err = X509_STORE_CTX_get_error(ctx.get());
  return ok == 1 ? X509_V_OK : (err == X509_V_OK ? -2 : err);
}

mode_t ModeOf(const fs::path& p) {
  struct stat st{};
  if (::stat(p.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

// Sets the umask for one scope, so the 0600/0700 modes are shown not to
// depend on it.
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t m) : old_(::umask(m)) {}
  ~ScopedUmask() { ::umask(old_); }

 private:
  mode_t old_;
};

TEST(CertsTest, CreateCertDirWritesEveryFilePrivately) {
  TempDir tmp;
  ScopedUmask umask(0);  // the most permissive: every mode below is set explicitly
  CertDirOptions o;
  o.out_dir = fs::path(tmp.path()) / "sub" / "certs";
  o.org_name = "Contoso";
  o.servers = {"S1", "S2"};
  auto files = CreateCertDir(o);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  std::vector<std::string> names;
  for (const auto& f : *files) names.push_back(f.filename().string());
  EXPECT_EQ(names, (std::vector<std::string>{"ca.pem", "ca.key", "server-S1.pem", "server-S1.key", "server-S2.pem",
                                             "server-S2.key", "client.pem", "client.key"}));
  EXPECT_EQ(ModeOf(o.out_dir), 0700u);
  for (const auto& f : *files) {
    EXPECT_TRUE(fs::is_regular_file(f)) << f;
    EXPECT_EQ(ModeOf(f), 0600u) << f;
    EXPECT_GT(fs::file_size(f), 100u) << f;
  }
  EXPECT_NE(ReadFile(o.out_dir / "ca.key").find("-----BEGIN PRIVATE KEY-----"), std::string::npos);
}

TEST(CertsTest, DefaultServerIsServer1) {
  TempDir tmp;
  CertDirOptions o;
  o.out_dir = fs::path(tmp.path()) / "certs";
  o.org_name = "Contoso";
  auto files = CreateCertDir(o);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  EXPECT_TRUE(fs::exists(o.out_dir / "server-SERVER1.pem"));
  EXPECT_TRUE(fs::exists(o.out_dir / "server-SERVER1.key"));
}

TEST(CertsTest, RefusesToOverwriteUnlessForced) {
  TempDir tmp;
  CertDirOptions o;
  o.out_dir = fs::path(tmp.path()) / "certs";
  o.org_name = "Contoso";
  ASSERT_TRUE(CreateCertDir(o).ok());
  const std::string ca_before = ReadFile(o.out_dir / "ca.pem");
  auto again = CreateCertDir(o);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Status::Code::kAlreadyExists);
  EXPECT_NE(again.status().message().find("ca.pem"), std::string::npos) << again.status().message();
  EXPECT_EQ(ReadFile(o.out_dir / "ca.pem"), ca_before);

  // Even one existing file stops everything before anything is written.
  fs::remove(o.out_dir / "ca.pem");
  again = CreateCertDir(o);
  ASSERT_FALSE(again.ok());
  EXPECT_FALSE(fs::exists(o.out_dir / "ca.pem"));

  // --force replaces, and resets a loosened mode.
  ::chmod((o.out_dir / "client.key").c_str(), 0644);
  o.force = true;
  ASSERT_TRUE(CreateCertDir(o).ok());
  EXPECT_NE(ReadFile(o.out_dir / "ca.pem"), ca_before);
  EXPECT_EQ(ModeOf(o.out_dir / "client.key"), 0600u);
}

TEST(CertsTest, ChainsVerifyWithTheRightPurposeAndNames) {
  TempDir tmp;
  CertDirOptions o;
  o.out_dir = fs::path(tmp.path()) / "certs";
  o.org_name = "Contoso";
  o.servers = {"S1"};
  ASSERT_TRUE(CreateCertDir(o).ok());
  const std::string ca = ReadFile(o.out_dir / "ca.pem");
  const std::string server = ReadFile(o.out_dir / "server-S1.pem");
  const std::string client = ReadFile(o.out_dir / "client.pem");

  EXPECT_EQ(VerifyChain(ca, server, X509_PURPOSE_SSL_SERVER), X509_V_OK);
  EXPECT_EQ(VerifyChain(ca, client, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  EXPECT_EQ(VerifyChain(ca, ca, X509_PURPOSE_ANY), X509_V_OK);
  // A server certificate is no client certificate and the other way round.
  EXPECT_EQ(VerifyChain(ca, server, X509_PURPOSE_SSL_CLIENT), X509_V_ERR_INVALID_PURPOSE);
  EXPECT_EQ(VerifyChain(ca, client, X509_PURPOSE_SSL_SERVER), X509_V_ERR_INVALID_PURPOSE);

  X509Ptr s = ParseCert(server);
  ASSERT_TRUE(s);
  EXPECT_EQ(X509_check_host(s.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(s.get(), "S1", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(s.get(), "S2", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ip_asc(s.get(), "127.0.0.1", 0), 1);

  // Each key belongs to its certificate.
  for (std::string base : {"ca", "server-S1", "client"}) {
    X509Ptr cert = ParseCert(ReadFile(o.out_dir / (base + ".pem")));
    PkeyPtr key = ParseKey(ReadFile(o.out_dir / (base + ".key")));
    ASSERT_TRUE(cert && key) << base;
    EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1) << base;
  }
}

TEST(CertsTest, CertificateFromAnotherCaDoesNotVerify) {
  auto ca = MakeCa("Contoso");
  auto other = MakeCa("Fabrikam");
  ASSERT_TRUE(ca.ok() && other.ok());
  IssueOptions io;
  io.common_name = "mbxmove client";
  io.usage = CertUsage::kClient;
  auto stranger = IssueCert(*other, io);
  ASSERT_TRUE(stranger.ok()) << stranger.status().ToString();
  EXPECT_EQ(VerifyChain(other->cert_pem, stranger->cert_pem, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  EXPECT_EQ(VerifyChain(ca->cert_pem, stranger->cert_pem, X509_PURPOSE_SSL_CLIENT),
            X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
}

TEST(CertsTest, ExpiredCertificateFailsAsExpired) {
  auto ca = MakeCa("Contoso");
  ASSERT_TRUE(ca.ok());
  IssueOptions io;
  io.common_name = "mbxmove client";
  io.usage = CertUsage::kClient;
  io.validity.not_before = -48h;
  io.validity.not_after = -24h;
  auto expired = IssueCert(*ca, io);
  ASSERT_TRUE(expired.ok()) << expired.status().ToString();
  EXPECT_EQ(VerifyChain(ca->cert_pem, expired->cert_pem, X509_PURPOSE_SSL_CLIENT), X509_V_ERR_CERT_HAS_EXPIRED);

  io.validity.not_before = 24h;  // not valid yet
  io.validity.not_after = 48h;
  auto future = IssueCert(*ca, io);
  ASSERT_TRUE(future.ok());
  EXPECT_EQ(VerifyChain(ca->cert_pem, future->cert_pem, X509_PURPOSE_SSL_CLIENT), X509_V_ERR_CERT_NOT_YET_VALID);
}

TEST(CertsTest, BadArgumentsAreClearErrors) {
  TempDir tmp;
  CertDirOptions o;
  o.out_dir = fs::path(tmp.path()) / "certs";
  o.org_name = "Contoso";
  o.servers = {"S1", "bad/name"};
  auto r = CreateCertDir(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("bad/name"), std::string::npos);
  EXPECT_FALSE(fs::exists(o.out_dir));

  o.servers = {"S1", "S1"};
  EXPECT_EQ(CreateCertDir(o).status().code(), Status::Code::kInvalidArgument);
  o.servers = {};
  o.days = 0;
  EXPECT_EQ(CreateCertDir(o).status().code(), Status::Code::kInvalidArgument);
  o.days = 10;
  o.org_name = "";
  EXPECT_EQ(CreateCertDir(o).status().code(), Status::Code::kInvalidArgument);

  EXPECT_FALSE(MakeCa("").ok());
  Validity backwards;
  backwards.not_before = 1h;
  backwards.not_after = -1h;
  EXPECT_EQ(MakeCa("X", backwards).status().code(), Status::Code::kInvalidArgument);

  auto ca = MakeCa("Contoso");
  ASSERT_TRUE(ca.ok());
  IssueOptions io;
  io.common_name = "x";
  KeyAndCert garbage{"not a key", ca->cert_pem};
  auto bad = IssueCert(garbage, io);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("CA private key"), std::string::npos) << bad.status().message();
  auto other = MakeCa("Fabrikam");
  ASSERT_TRUE(other.ok());
  KeyAndCert mismatched{other->key_pem, ca->cert_pem};
  EXPECT_EQ(IssueCert(mismatched, io).status().code(), Status::Code::kInvalidArgument);
  io.ips = {"not-an-ip"};
  EXPECT_EQ(IssueCert(*ca, io).status().code(), Status::Code::kInvalidArgument);
  io.ips = {};
  io.dns_names = {"a,DNS:evil"};
  EXPECT_EQ(IssueCert(*ca, io).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ERR_peek_error(), 0u) << "the OpenSSL error queue is left clean";
}

// A mutual-TLS handshake over an in-memory BIO pair, the way `serve` will
// configure its server side: peer certificate required and verified against
// the CA. Returns true when both sides completed the handshake.
struct Party {
  std::string cert_pem, key_pem;  // empty cert: present none
};
bool MutualTlsHandshake(const std::string& ca_pem, const Party& server, const Party& client) {
  auto make_ctx = [&](bool is_server, const Party& me) -> SslCtxPtr {
    SslCtxPtr ctx(SSL_CTX_new(is_server ? TLS_server_method() : TLS_client_method()));
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    X509Ptr ca = ParseCert(ca_pem);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), ca.get());
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | (is_server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), nullptr);
    if (!me.cert_pem.empty()) {
      X509Ptr cert = ParseCert(me.cert_pem);
      PkeyPtr key = ParseKey(me.key_pem);
      SSL_CTX_use_certificate(ctx.get(), cert.get());
      SSL_CTX_use_PrivateKey(ctx.get(), key.get());
    }
    return ctx;
  };
  SslCtxPtr sctx = make_ctx(true, server), cctx = make_ctx(false, client);
  SslPtr s(SSL_new(sctx.get())), c(SSL_new(cctx.get()));
  SSL_set1_host(c.get(), "localhost");
  BIO *sbio = nullptr, *cbio = nullptr;
  BIO_new_bio_pair(&sbio, 0, &cbio, 0);
  SSL_set_bio(s.get(), sbio, sbio);
  SSL_set_bio(c.get(), cbio, cbio);
  SSL_set_accept_state(s.get());
  SSL_set_connect_state(c.get());
  bool s_done = false, c_done = false, failed = false;
  for (int round = 0; round < 50 && !(s_done && c_done) && !failed; ++round) {
    for (auto [ssl, done] : {std::pair{c.get(), &c_done}, std::pair{s.get(), &s_done}}) {
      if (*done) continue;
      int rc = SSL_do_handshake(ssl);
      if (rc == 1) *done = true;
      else {
        int e = SSL_get_error(ssl, rc);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) failed = true;
      }
    }
  }
  ERR_clear_error();
  return s_done && c_done && !failed;
}

TEST(CertsTest, MutualTlsHandshakeAcceptsOursAndRefusesStrangers) {
  TempDir tmp;
  CertDirOptions o;
  o.out_dir = fs::path(tmp.path()) / "certs";
  o.org_name = "Contoso";
  ASSERT_TRUE(CreateCertDir(o).ok());
  const std::string ca = ReadFile(o.out_dir / "ca.pem");
  Party server{ReadFile(o.out_dir / "server-SERVER1.pem"), ReadFile(o.out_dir / "server-SERVER1.key")};
  Party client{ReadFile(o.out_dir / "client.pem"), ReadFile(o.out_dir / "client.key")};
  EXPECT_TRUE(MutualTlsHandshake(ca, server, client));

  EXPECT_FALSE(MutualTlsHandshake(ca, server, Party{})) << "no client certificate";
  auto other = MakeCa("Fabrikam");
  ASSERT_TRUE(other.ok());
  IssueOptions io;
  io.common_name = "mbxmove client";
  io.usage = CertUsage::kClient;
  auto stranger = IssueCert(*other, io);
  ASSERT_TRUE(stranger.ok());
  EXPECT_FALSE(MutualTlsHandshake(ca, server, Party{stranger->cert_pem, stranger->key_pem})) << "other CA";
  KeyAndCert ours{ReadFile(o.out_dir / "ca.key"), ca};
  io.validity.not_before = -48h;
  io.validity.not_after = -24h;
  auto expired = IssueCert(ours, io);
  ASSERT_TRUE(expired.ok());
  EXPECT_FALSE(MutualTlsHandshake(ca, server, Party{expired->cert_pem, expired->key_pem})) << "expired";
  // A client certificate cannot serve.
  EXPECT_FALSE(MutualTlsHandshake(ca, client, client)) << "client certificate used by a server";
}

#ifdef MBXMOVE_BIN
int RunMbxmove(const std::string& args) {
  std::string cmd = std::string(MBXMOVE_BIN) + " " + args + " >/dev/null 2>&1";
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST(CertsTest, CliCreatesRefusesAndForces) {
  TempDir tmp;
  const std::string dir = tmp / "certs";
  EXPECT_EQ(RunMbxmove("certs create --out " + dir + " --org-name Contoso --servers S1,S2 --days 30"), 0);
  EXPECT_TRUE(fs::exists(dir + "/server-S1.pem"));
  EXPECT_TRUE(fs::exists(dir + "/server-S2.key"));
  EXPECT_EQ(ModeOf(dir), 0700u);
  EXPECT_EQ(ModeOf(dir + "/client.key"), 0600u);
  EXPECT_EQ(RunMbxmove("certs create --out " + dir + " --org-name Contoso --servers S1,S2"), 1);
  EXPECT_EQ(RunMbxmove("certs create --out " + dir + " --org-name Contoso --servers S1,S2 --force"), 0);
  EXPECT_EQ(RunMbxmove("certs create --out " + dir + "2 --org-name Contoso --servers 'a b'"), 2);
  EXPECT_EQ(RunMbxmove("certs create --out " + dir + "3 --org-name Contoso --days 0"), 2);
}
#endif

}  // namespace
}  // namespace mbx::net
