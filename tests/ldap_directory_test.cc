// The LDAP backend's own cases: what a user gets wrong (URL, password, its
// file's mode, a server without the schema, a base that is not there), a
// damaged entry, the reconcile rule of the two-write switch, a slapd killed
// and restarted, and organisations that name their directory in
// directory.json.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <ldap.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <fstream>

#include "net/slapd.h"
#include "store/ldap_directory.h"
#include "store/organization.h"
#include "tests/ldap_test_util.h"
#include "tests/test_util.h"

namespace mbx {
namespace {

using testing::FreshLdapBase;
using testing::SharedSlapd;
using testing::TempDir;
using testing::TestGuid;

// A port on 127.0.0.1 nothing listens on (the OS chose it, then it was let go).
int UnusedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    std::abort();
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

void WriteFile(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  ::chmod(path.c_str(), mode);
}

// Replaces one attribute of an entry behind the directory's back, with the
// admin's bind: how a damaged entry is made.
void RawReplace(const LdapConfig& c, const std::string& dn, const std::string& attr, const std::string& value) {
  LDAP* ld = nullptr;
  ASSERT_EQ(ldap_initialize(&ld, c.url.c_str()), LDAP_SUCCESS);
  int v3 = LDAP_VERSION3;
  ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
  std::ifstream f(c.password_file);
  std::string pw;
  std::getline(f, pw);
  berval cred{pw.size(), pw.data()};
  ASSERT_EQ(ldap_sasl_bind_s(ld, c.bind_dn.c_str(), LDAP_SASL_SIMPLE, &cred, nullptr, nullptr, nullptr), LDAP_SUCCESS);
  berval v{value.size(), const_cast<char*>(value.data())};
  berval* vals[] = {&v, nullptr};
  LDAPMod mod{};
  mod.mod_op = LDAP_MOD_REPLACE | LDAP_MOD_BVALUES;
  mod.mod_type = const_cast<char*>(attr.c_str());
  mod.mod_bvalues = vals;
  LDAPMod* mods[] = {&mod, nullptr};
  int rc = ldap_modify_ext_s(ld, dn.c_str(), mods, nullptr, nullptr);
  ldap_unbind_ext_s(ld, nullptr, nullptr);
  ASSERT_EQ(rc, LDAP_SUCCESS) << ldap_err2string(rc) << " replacing " << attr << " of " << dn;
}

std::unique_ptr<Directory> MustOpen(const LdapConfig& c, bool create = true) {
  auto d = OpenLdapDirectory(c, create);
  if (!d.ok()) {
    ADD_FAILURE() << d.status().ToString();
    return nullptr;
  }
  return std::move(d).value();
}

TEST(LdapDirectoryConfigTest, FromUrlSplitsServerAndBaseAndRoundTrips) {
  auto c = LdapConfig::FromUrl("ldap://127.0.0.1:38911/ou=org1,dc=mbxmove,dc=test");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->url, "ldap://127.0.0.1:38911");
  EXPECT_EQ(c->base_dn, "ou=org1,dc=mbxmove,dc=test");
  EXPECT_EQ(c->UrlWithBase(), "ldap://127.0.0.1:38911/ou=org1,dc=mbxmove,dc=test");
  auto esc = LdapConfig::FromUrl("ldap://localhost:389/ou=a%20b%3F,dc=x");
  ASSERT_TRUE(esc.ok()) << esc.status().ToString();
  EXPECT_EQ(esc->base_dn, "ou=a b?,dc=x");
  auto back = LdapConfig::FromUrl(esc->UrlWithBase());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->base_dn, esc->base_dn);
  for (const char* bad : {"http://host/dc=x", "ldap://host:389", "ldap://host:389/", "no url at all", "ldap:///dc=x"}) {
    auto r = LdapConfig::FromUrl(bad);
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << bad << ": " << r.status().ToString();
  }
}

TEST(LdapDirectoryErrorTest, BadUrlIsInvalidArgument) {
  LdapConfig c = FreshLdapBase();
  c.url = "ldap//127.0.0.1";
  auto d = OpenLdapDirectory(c, true);
  EXPECT_EQ(d.status().code(), Status::Code::kInvalidArgument) << d.status().ToString();
  EXPECT_NE(d.status().message().find("ldap//127.0.0.1"), std::string::npos);
  c = FreshLdapBase();
  c.base_dn = "this is not a dn";
  d = OpenLdapDirectory(c, true);
  EXPECT_EQ(d.status().code(), Status::Code::kInvalidArgument) << d.status().ToString();
}

TEST(LdapDirectoryErrorTest, UnreachableServerIsIOErrorNamingIt) {
  LdapConfig c = FreshLdapBase();
  c.url = "ldap://127.0.0.1:" + std::to_string(UnusedPort());
  auto d = OpenLdapDirectory(c, true);
  EXPECT_EQ(d.status().code(), Status::Code::kIOError) << d.status().ToString();
  EXPECT_NE(d.status().message().find("cannot reach the directory server " + c.url), std::string::npos)
      << d.status().message();
}

TEST(LdapDirectoryErrorTest, WrongPasswordIsRefusedNamingTheBindDn) {
  TempDir t;
  LdapConfig c = FreshLdapBase();
  c.password_file = t / "pw";
  WriteFile(c.password_file, "not-the-password\n", 0600);
  auto d = OpenLdapDirectory(c, true);
  EXPECT_EQ(d.status().code(), Status::Code::kInvalidArgument) << d.status().ToString();
  EXPECT_NE(d.status().message().find("wrong password"), std::string::npos) << d.status().message();
  EXPECT_NE(d.status().message().find(c.bind_dn), std::string::npos) << d.status().message();
}

TEST(LdapDirectoryErrorTest, PasswordFileReadableByOthersIsRefused) {
  TempDir t;
  LdapConfig c = FreshLdapBase();
  std::ifstream f(c.password_file);
  std::string pw;
  std::getline(f, pw);
  c.password_file = t / "pw";
  WriteFile(c.password_file, pw + "\n", 0640);
  auto d = OpenLdapDirectory(c, true);
  EXPECT_EQ(d.status().code(), Status::Code::kInvalidArgument) << d.status().ToString();
  EXPECT_NE(d.status().message().find(c.password_file), std::string::npos) << d.status().message();
  // The right mode with the same password is accepted, and the base was not
  // created by the refused attempt.
  ::chmod(c.password_file.c_str(), 0600);
  EXPECT_TRUE(OpenLdapDirectory(c, false).status().IsNotFound());
  EXPECT_TRUE(OpenLdapDirectory(c, true).ok());
}

TEST(LdapDirectoryErrorTest, ServerWithoutTheSchemaIsRefusedNamingTheSchemaFile) {
  TempDir t;
  Slapd::Options o;
  o.project_schema = false;
  auto s = Slapd::Start(t / "slapd", o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto d = OpenLdapDirectory((*s)->ConfigFor(std::string("ou=x,") + Slapd::kSuffix), true);
  EXPECT_EQ(d.status().code(), Status::Code::kInvalidArgument) << d.status().ToString();
  EXPECT_NE(d.status().message().find("tools/ldap/mbxmove.schema"), std::string::npos) << d.status().message();
}

TEST(LdapDirectoryErrorTest, MissingBaseWithoutCreateIsNotFoundAndCreatesNothing) {
  LdapConfig c = FreshLdapBase();
  auto d = OpenLdapDirectory(c, false);
  EXPECT_TRUE(d.status().IsNotFound()) << d.status().ToString();
  EXPECT_NE(d.status().message().find(c.base_dn), std::string::npos) << d.status().message();
  EXPECT_TRUE(OpenLdapDirectory(c, false).status().IsNotFound()) << "the failed open created the base";
  // A base whose parent is missing cannot be created.
  c.base_dn = std::string("ou=child,ou=nowhere,") + Slapd::kSuffix;
  EXPECT_TRUE(OpenLdapDirectory(c, true).status().IsNotFound());
}

TEST(LdapDirectoryDamageTest, DamagedAttributesAreCorruptionQuotingEntryAndAttribute) {
  LdapConfig c = FreshLdapBase();
  auto d = MustOpen(c);
  ASSERT_TRUE(d);
  StoreRecord ms1{"MS1", "SERVER1", StoreDistinguishedName("MS1", "SERVER1"), ""};
  ASSERT_OK(d->PutStore(ms1));
  UserRecord u{"user1", "User One", "u1@example.com", TestGuid(1), ms1.dn, "SERVER1"};
  ASSERT_OK(d->PutUsers({u}));
  MoveRecord m{TestGuid(1), "user1", "MS1", "MS2", MoveStep::kCopying, "", false};
  ASSERT_OK(d->CreateMove(m));
  const std::string move_dn = "cn=" + m.mailbox.ToString() + ",ou=moves," + c.base_dn;
  const std::string user_dn = "cn=user1,ou=users," + c.base_dn;

  struct Case {
    std::string dn, attr, value;
  };
  const Case cases[] = {
      {move_dn, "msExchMailboxGuid", "abc"},
      {move_dn, "mbxMoveStep", "flying"},
      {move_dn, "mbxMoveKeepSource", "TRUE"},  // fine: a control case, restored below
      {user_dn, "msExchHomeServerName", "SERVER1"},
      {user_dn, "msExchMailboxGuid", std::string(17, 'x')},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.attr + "=" + k.value);
    RawReplace(c, k.dn, k.attr, k.value);
    if (k.attr == "mbxMoveKeepSource") {
      auto got = d->GetMove(m.mailbox);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      EXPECT_TRUE(got->keep_source);
      continue;
    }
    Status s = k.dn == move_dn ? d->GetMove(m.mailbox).status() : d->GetUser("user1").status();
    EXPECT_TRUE(s.IsCorruption()) << s.ToString();
    EXPECT_NE(s.message().find(k.dn), std::string::npos) << s.message();
    EXPECT_NE(s.message().find(k.attr), std::string::npos) << s.message();
    std::vector<MoveRecord> moves;
    std::vector<UserRecord> users;
    Status l = k.dn == move_dn ? d->ListMoves(&moves) : d->ListUsers(&users);
    EXPECT_TRUE(l.IsCorruption()) << l.ToString();
    // Repaired through the directory, it reads again.
    if (k.dn == move_dn) {
      ASSERT_OK(d->PutMove(m));
    } else {
      ASSERT_OK(d->PutUsers({u}));
    }
  }
  auto got = d->GetMove(m.mailbox);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->step, MoveStep::kCopying);
}

TEST(LdapDirectoryReconcileTest, VerifiedRecordWhoseHomeMdbNamesTheTargetReadsAsSwitched) {
  auto d = MustOpen(FreshLdapBase());
  ASSERT_TRUE(d);
  StoreRecord ms1{"MS1", "SERVER1", StoreDistinguishedName("MS1", "SERVER1"), ""};
  StoreRecord ms2{"MS2", "SERVER2", StoreDistinguishedName("MS2", "SERVER2"), ""};
  ASSERT_OK(d->PutStore(ms1));
  ASSERT_OK(d->PutStore(ms2));
  UserRecord u{"user1", "User One", "u1@example.com", TestGuid(1), ms1.dn, "SERVER1"};
  ASSERT_OK(d->PutUsers({u}));
  MoveRecord m{TestGuid(1), "user1", "MS1", "MS2", MoveStep::kVerified, "", false};
  ASSERT_OK(d->CreateMove(m));
  auto got = d->GetMove(m.mailbox);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->step, MoveStep::kVerified);
  // The switch's first write (the commit point) happened, its second did not.
  u.home_mdb = ms2.dn;
  u.home_server = "SERVER2";
  ASSERT_OK(d->PutUsers({u}));
  got = d->GetMove(m.mailbox);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->step, MoveStep::kSwitched);
  std::vector<MoveRecord> moves;
  ASSERT_OK(d->ListMoves(&moves));
  ASSERT_EQ(moves.size(), 1u);
  EXPECT_EQ(moves[0].step, MoveStep::kSwitched);
  // Only a record at 'verified' is read so: before it, the move has not
  // reached its switch whatever homeMDB says.
  m.step = MoveStep::kCopying;
  ASSERT_OK(d->PutMove(m));
  got = d->GetMove(m.mailbox);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->step, MoveStep::kCopying);
}

TEST(LdapDirectoryRestartTest, KilledServerIsIOErrorThenReconnectsAfterRestart) {
  TempDir t;
  auto s = Slapd::Start(t / "slapd");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Slapd& slapd = **s;
  auto d = MustOpen(slapd.ConfigFor(std::string("ou=r,") + Slapd::kSuffix));
  ASSERT_TRUE(d);
  StoreRecord ms1{"MS1", "SERVER1", StoreDistinguishedName("MS1", "SERVER1"), ""};
  ASSERT_OK(d->PutStore(ms1));
  ASSERT_OK(slapd.Kill());
  Status down = d->GetStore("MS1").status();
  EXPECT_EQ(down.code(), Status::Code::kIOError) << down.ToString();
  EXPECT_NE(down.message().find(slapd.url()), std::string::npos) << down.message();
  MoveRecord m{TestGuid(1), "user1", "MS1", "MS2", MoveStep::kLocked, "", false};
  EXPECT_EQ(d->CreateMove(m).code(), Status::Code::kIOError);
  ASSERT_OK(slapd.Restart());
  auto got = d->GetStore("MS1");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->dn, ms1.dn);
  ASSERT_OK(d->CreateMove(m));
  // A clean stop and start: the idle connection is replaced before a guarded
  // write is sent on it.
  ASSERT_OK(slapd.Stop());
  ASSERT_OK(slapd.Restart());
  MoveRecord next = m;
  next.step = MoveStep::kHierarchy;
  ASSERT_OK(d->AdvanceMove(next, MoveStep::kLocked, true));
  EXPECT_EQ(d->GetMove(m.mailbox)->step, MoveStep::kHierarchy);
}

// A directory that cannot be reached (here: a wrong password) creates no
// organisation folder, so the next attempt is not refused as "not empty".
TEST(LdapDirectoryOrganizationTest, AFailedCreationLeavesNothingBehind) {
  TempDir t;
  LdapConfig c = FreshLdapBase("orgfail");
  const std::string bad = t / "wrong-password";
  {
    std::ofstream f(bad);
    f << "not-the-password";
  }
  ::chmod(bad.c_str(), 0600);
  c.password_file = bad;
  auto o = Organization::OpenOrCreate(t / "org", {}, &c);
  ASSERT_FALSE(o.ok());
  EXPECT_FALSE(std::filesystem::exists(t / "org"));
}

TEST(LdapDirectoryOrganizationTest, DirectoryJsonSelectsTheLdapBackend) {
  TempDir t;
  const LdapConfig c = FreshLdapBase("org");
  {
    auto o = Organization::OpenOrCreate(t / "org", {}, &c);
    ASSERT_TRUE(o.ok()) << o.status().ToString();
    ASSERT_OK((*o)->CreateStore("MS1", "SERVER1", {}));
  }
  struct stat st {};
  ASSERT_EQ(::stat((t / "org/directory.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u);
  EXPECT_FALSE(std::filesystem::exists(t / "org/directory"));
  {
    auto o = Organization::Open(t / "org");
    ASSERT_TRUE(o.ok()) << o.status().ToString();
    EXPECT_NE((*o)->directory().Describe().find(c.url), std::string::npos);
    auto s = (*o)->directory().GetStore("MS1");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    // OpenOrCreate opens it as it is.
    auto again = Organization::OpenOrCreate(t / "org");
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_TRUE((*again)->directory().GetStore("MS1").ok());
  }
  // Damaged: not JSON, another backend, a field missing.
  for (const char* text : {"{not json", "{\"backend\":\"x500\"}", "{\"backend\":\"ldap\",\"url\":\"ldap://h:1\"}"}) {
    WriteFile(t / "org/directory.json", text, 0600);
    auto o = Organization::Open(t / "org");
    EXPECT_TRUE(o.status().IsCorruption()) << text << ": " << o.status().ToString();
    EXPECT_NE(o.status().message().find("directory.json"), std::string::npos) << o.status().message();
  }
}

}  // namespace
}  // namespace mbx
