// LDIF: the writer and reader (RFC 2849: base64 values, folded lines,
// comments, CRLF), damaged input named by its line, and a whole directory
// exported and imported through the Directory interface with nothing lost.
#include "store/ldif.h"

#include <algorithm>

#include "store/directory_ldif.h"
#include "tests/test_util.h"

namespace mbx {
namespace {

using testing::TempDir;
using testing::TestGuid;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

TEST(LdifTest, Base64KnownVectorsAndDamage) {
  const std::vector<std::pair<std::string, std::string>> vectors = {
      {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, b64] : vectors) {
    EXPECT_EQ(Base64Encode(plain), b64);
    std::string back;
    ASSERT_TRUE(Base64Decode(b64, &back)) << b64;
    EXPECT_EQ(back, plain);
  }
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(char(c));
  std::string back;
  ASSERT_TRUE(Base64Decode(Base64Encode(all), &back));
  EXPECT_EQ(back, all);
  for (const char* bad : {"Zm9", "Zm=v", "Z===", "Zh==", "Zm9v!A==", "=Zm9", "Zm 9v"}) {
    EXPECT_FALSE(Base64Decode(bad, &back)) << bad;
  }
}

TEST(LdifTest, SafeStrings) {
  EXPECT_TRUE(LdifSafe(""));
  EXPECT_TRUE(LdifSafe("CN=MS1,CN=First Storage Group"));
  EXPECT_TRUE(LdifSafe("a: b"));  // a colon inside is fine
  EXPECT_FALSE(LdifSafe(" leading space"));
  EXPECT_FALSE(LdifSafe("trailing space "));
  EXPECT_FALSE(LdifSafe(":colon first"));
  EXPECT_FALSE(LdifSafe("<less-than first"));
  EXPECT_FALSE(LdifSafe("line\nbreak"));
  EXPECT_FALSE(LdifSafe("cr\r"));
  EXPECT_FALSE(LdifSafe(std::string("nul\0x", 5)));
  EXPECT_FALSE(LdifSafe("Zo\xc3\xab"));  // UTF-8: base64, as RFC 2849 asks
}

TEST(LdifTest, WriterFoldsAndEncodesAndReaderReadsBack) {
  LdifEntry e;
  e.dn = "cn=user0001,ou=users,ou=org1,dc=mbxmove,dc=test";
  std::string guid;
  for (int i = 0; i < 16; ++i) guid.push_back(char(i * 17));  // 0x00, '\x11', ..., 0xff
  e.Add("objectClass", "mbxUser");
  e.Add("msExchMailboxGuid", guid);
  std::string long_value;
  for (int i = 0; i < 40; ++i) long_value += "CN=part" + std::to_string(i) + ",";
  long_value += "DC=local";
  e.Add("homeMDB", long_value);
  e.Add("displayName", "Zo\xc3\xab Lovelace");
  e.Add("description", " leading and trailing ");
  e.Add("description", ":starts with a colon");
  e.Add("description", "<starts with less-than");
  e.Add("description", "two\nlines");
  e.Add("description", "");
  e.Add("userCertificate;binary", std::string(200, '\xee'));
  LdifEntry second;
  second.dn = "cn=\xc3\xa9t\xc3\xa9,ou=users,ou=org1,dc=mbxmove,dc=test";  // a DN that needs base64
  second.Add("cn", "\xc3\xa9t\xc3\xa9");
  const std::string text = WriteLdif({e, second}, "a comment\nof two lines\n" + std::string(200, 'c'));

  for (const auto& line : Lines(text)) EXPECT_LE(line.size(), 76u) << line;
  EXPECT_EQ(text.rfind("version: 1\n# a comment\n# of two lines\n", 0), 0u) << text;
  EXPECT_NE(text.find("msExchMailboxGuid:: " + Base64Encode(guid) + "\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\n "), std::string::npos) << "nothing was folded";
  EXPECT_NE(text.find("description:: IGxlYWRpbmcgYW5kIHRyYWlsaW5nIA==\n"), std::string::npos) << text;
  EXPECT_NE(text.find("description: \n"), std::string::npos) << text;
  EXPECT_NE(text.find("dn:: "), std::string::npos) << text;

  auto parsed = ParseLdif(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[0].dn, e.dn);
  EXPECT_EQ((*parsed)[0].attrs, e.attrs);
  EXPECT_EQ((*parsed)[0].line, 8u);  // after a long comment folded onto three lines
  EXPECT_EQ((*parsed)[1].dn, second.dn);
  EXPECT_EQ((*parsed)[1].attrs, second.attrs);
  EXPECT_EQ(*(*parsed)[0].One("HOMEMDB"), long_value);  // names compare case-insensitively
  EXPECT_EQ((*parsed)[0].Values("description").size(), 5u);
  EXPECT_FALSE((*parsed)[0].One("description").ok());
  auto none = (*parsed)[0].One("mail");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("line 8: entry " + e.dn + " has no mail"), std::string::npos)
      << none.status().message();
}

// What ldapsearch, slapcat and people write: CRLF, comments (folded too),
// several blank lines, folds anywhere, "dn::", spaces after the colon.
TEST(LdifTest, ReaderAcceptsOtherWriters) {
  const std::string text =
      "# a comment that is\r\n"
      "  folded onto a second line\r\n"
      "version: 1\r\n"
      "\r\n"
      "\r\n"
      "dn: ou=org1,dc=mbx\r\n"
      " move,dc=test\r\n"
      "objectClass: organizationalUnit\r\n"
      "ou:    org1\r\n"
      "\r\n"
      "# between entries\r\n"
      "dn:: Y249dXNlcjEsb3U9b3JnMSxkYz1tYnhtb3ZlLGRjPXRlc3Q=\r\n"
      "mail: a@exa\r\n"
      " mple.com\r\n"
      "msExchMailboxGuid:: AAECAwQFBgcICQoLDA0O\r\n"
      " Dw==\r\n";
  auto parsed = ParseLdif(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[0].dn, "ou=org1,dc=mbxmove,dc=test");
  EXPECT_EQ((*parsed)[0].line, 6u);
  EXPECT_EQ(*(*parsed)[0].One("ou"), "org1");
  EXPECT_EQ((*parsed)[1].dn, "cn=user1,ou=org1,dc=mbxmove,dc=test");
  EXPECT_EQ(*(*parsed)[1].One("mail"), "a@example.com");
  std::string guid;
  for (int i = 0; i < 16; ++i) guid.push_back(char(i));
  EXPECT_EQ(*(*parsed)[1].One("msExchMailboxGuid"), guid);
  auto empty = ParseLdif("version: 1\n\n# nothing else\n");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(LdifTest, DamagedInputNamesTheLine) {
  struct Case {
    std::string text;
    std::string expect;  // in the message
  };
  const std::vector<Case> cases = {
      {"version: 1\n\ndn: cn=a\ncn: a\nmsExchMailboxGuid:: AAEC!wQF\n", "line 5: the base64 value of msExchMailboxGuid is damaged"},
      {"version: 1\n\ndn: cn=a\nmsExchMailboxGuid:: AAECAwQ\n", "line 4: the base64 value"},
      {" continued\ndn: cn=a\n", "line 1: a continuation line"},
      {"dn: cn=a\n\n continued\n", "line 3: a continuation line"},
      {"dn: cn=a\nno colon here\n", "line 2: expected 'attribute: value'"},
      {"dn: cn=a\nchangetype: modify\n", "line 2: change records"},
      {"dn: cn=a\njpegPhoto:< file:///etc/passwd\n", "line 2: URL values"},
      {"version: 2\n\ndn: cn=a\n", "line 1: LDIF version '2'"},
      {"dn: cn=a\ncn: a\ndn: cn=b\n", "line 3: a second 'dn:'"},
      {"cn: a\n", "line 1: an entry must start with 'dn:'"},
      {"dn: cn=a\nbad name!: x\n", "line 2: 'bad name!' is not an attribute name"},
      {"dn: cn=a\ncn: a\rb\n", "line 2: a carriage return"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    auto r = ParseLdif(c.text);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos) << r.status().message();
  }
}

TEST(LdifTest, DnEscapingAndLegacyServerDns) {
  EXPECT_EQ(EscapeDnValue("user0001"), "user0001");
  EXPECT_EQ(EscapeDnValue("a,b+c"), "a\\,b\\+c");
  EXPECT_EQ(EscapeDnValue(" x "), "\\ x\\ ");
  EXPECT_EQ(EscapeDnValue("#1"), "\\#1");
  EXPECT_EQ(LegacyServerDn("SERVER1"), "/o=mbxmove/ou=First Administrative Group/cn=Configuration/cn=Servers/cn=SERVER1");
  EXPECT_EQ(ServerFromLegacyDn(LegacyServerDn("SERVER1")), "SERVER1");
  EXPECT_EQ(ServerFromLegacyDn("/o=Org/ou=Site/CN=Servers/CN=EX01"), "EX01");
  EXPECT_EQ(ServerFromLegacyDn("SERVER1"), std::nullopt);
  EXPECT_EQ(ServerFromLegacyDn("/o=mbxmove/cn="), std::nullopt);
}

// A directory with every kind of record and the awkward values.
DirectoryContents Sample() {
  DirectoryContents c;
  c.servers = {{"SERVER1", ""}, {"SERVER2", "127.0.0.1:7002"}};
  c.stores = {{"MS1", "SERVER1", StoreDistinguishedName("MS1", "SERVER1"), "2026-11-24T15:42:29Z"},
              {"MS2", "SERVER2", StoreDistinguishedName("MS2", "SERVER2"), ""}};
  for (uint8_t i = 0; i < 5; ++i) {
    UserRecord u;
    u.name = "user000" + std::to_string(i);
    u.display_name = i == 1 ? "Zo\xc3\xab L\xc3\xb6velace" : "User " + std::to_string(i);
    u.smtp = i == 2 ? "" : "user" + std::to_string(i) + "@example.com";
    u.mailbox = TestGuid(i);
    u.mailbox.bytes[0] = i == 3 ? 0x00 : u.mailbox.bytes[0];  // a GUID starting with NUL
    u.home_mdb = i == 4 ? "" : StoreDistinguishedName(i % 2 ? "MS2" : "MS1", i % 2 ? "SERVER2" : "SERVER1");
    u.home_server = i == 4 ? "" : (i % 2 ? "SERVER2" : "SERVER1");
    c.users.push_back(u);
  }
  MoveRecord m;
  m.mailbox = c.users[0].mailbox;
  m.user = c.users[0].name;
  m.source = "MS1";
  m.target = "MS2";
  m.step = MoveStep::kCopying;
  m.started = "2026-11-29T18:00:00Z";
  m.keep_source = true;
  MoveRecord imp;
  imp.mailbox = c.users[1].mailbox;
  imp.user = c.users[1].name;
  imp.target = "MS2";
  imp.step = MoveStep::kImporting;
  c.moves = {m, imp};
  std::sort(c.moves.begin(), c.moves.end(),
            [](const MoveRecord& a, const MoveRecord& b) { return a.mailbox.ToString() < b.mailbox.ToString(); });
  return c;
}

// Every record as its JSON text, for whole-directory comparisons.
std::vector<std::string> AsText(const DirectoryContents& c) {
  std::vector<std::string> out;
  for (const auto& s : c.servers) out.push_back(ServerToJson(s));
  for (const auto& s : c.stores) out.push_back(StoreToJson(s));
  for (const auto& u : c.users) out.push_back(UserToJson(u));
  for (const auto& m : c.moves) out.push_back(MoveToJson(m));
  return out;
}

void Fill(Directory& d, const DirectoryContents& c) {
  for (const auto& s : c.servers) ASSERT_OK(d.PutServer(s));
  for (const auto& s : c.stores) ASSERT_OK(d.PutStore(s));
  ASSERT_OK(d.PutUsers(c.users));
  for (const auto& m : c.moves) ASSERT_OK(d.PutMove(m));
}

std::string WithoutHeader(const std::string& ldif) {
  // The first comment (folded) names the source and the time.
  std::string out;
  bool in_header = false;
  for (const auto& l : Lines(ldif)) {
    if (l.rfind("# mbxmove directory export", 0) == 0) in_header = true;
    else if (in_header && l.rfind(' ', 0) == 0) continue;
    else in_header = false;
    if (!in_header) out += l + "\n";
  }
  return out;
}

TEST(DirectoryLdifTest, WholeDirectoryRoundTripsThroughLdif) {
  TempDir t;
  auto a = Directory::OpenLmdb(t / "a", true);
  ASSERT_TRUE(a.ok());
  Fill(**a, Sample());
  auto read = ReadDirectoryContents(**a);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(AsText(*read), AsText(Sample()));
  auto ldif = DirectoryToLdif(*read, "ou=org1,dc=mbxmove,dc=test", "test");
  ASSERT_TRUE(ldif.ok()) << ldif.status().ToString();
  // Entries in the schema's names, the GUIDs as 16 bytes in base64.
  for (const char* want : {"dn: ou=org1,dc=mbxmove,dc=test\nobjectClass: top\nobjectClass: organizationalUnit\nou: org1\n",
                           "dn: ou=users,ou=org1,dc=mbxmove,dc=test\n",
                           "dn: cn=user0000,ou=users,ou=org1,dc=mbxmove,dc=test\n", "objectClass: mbxUser\n",
                           "mailNickname: user0000\n", "msExchMailboxGuid:: ", "homeMDB: CN=MS1,CN=First Storage",
                           "msExchHomeServerName: /o=mbxmove/ou=First Administrative Group/cn=",
                           "mbxServerAddress: 127.0.0.1:7002\n", "mbxStoreDN: CN=MS2,", "mbxMoveStep: copying\n",
                           "mbxMoveKeepSource: TRUE\n", "displayName:: Wm/DqyBMw7Z2ZWxhY2U=\n",
                           "# end of mbxmove directory export: 16 entries\n"}) {
    EXPECT_NE(ldif->find(want), std::string::npos) << want << "\n" << *ldif;
  }
  for (const auto& line : Lines(*ldif)) EXPECT_LE(line.size(), 76u) << line;

  auto parsed = DirectoryFromLdif(*ldif);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(AsText(*parsed), AsText(Sample()));

  auto b = Directory::OpenLmdb(t / "b", true);
  ASSERT_TRUE(b.ok());
  auto sum = ImportDirectoryContents(**b, *parsed);
  ASSERT_TRUE(sum.ok()) << sum.status().ToString();
  EXPECT_EQ(sum->added, Sample().records());
  EXPECT_EQ(sum->unchanged, 0u);
  auto back = ReadDirectoryContents(**b);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(AsText(*back), AsText(Sample()));
  // The second directory exports the same file.
  auto again = DirectoryToLdif(*back, "ou=org1,dc=mbxmove,dc=test", "test");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(WithoutHeader(*again), WithoutHeader(*ldif));
  // Importing the same file again changes nothing and is no error (an
  // interrupted import is simply run again).
  auto twice = ImportDirectoryContents(**b, *parsed);
  ASSERT_TRUE(twice.ok()) << twice.status().ToString();
  EXPECT_EQ(twice->added, 0u);
  EXPECT_EQ(twice->unchanged, Sample().records());
  // Other base DNs: o= and dc= give their own object classes; others are refused.
  auto o = DirectoryToLdif(*back, "o=Example", "test");
  ASSERT_TRUE(o.ok());
  EXPECT_NE(o->find("dn: o=Example\nobjectClass: top\nobjectClass: organization\no: Example\n"), std::string::npos);
  auto dc = DirectoryToLdif(*back, "dc=org2,dc=test", "test");
  ASSERT_TRUE(dc.ok());
  EXPECT_NE(dc->find("objectClass: domain\ndc: org2\n"), std::string::npos);
  EXPECT_FALSE(DirectoryToLdif(*back, "cn=x,dc=test", "test").ok());
  EXPECT_FALSE(DirectoryToLdif(*back, "not a dn", "test").ok());
}

TEST(DirectoryLdifTest, ImportRefusesADirectoryThatHoldsOtherRecords) {
  TempDir t;
  auto d = Directory::OpenLmdb(t / "d", true);
  ASSERT_TRUE(d.ok());
  UserRecord other = Sample().users[2];
  other.display_name = "Someone Else";
  ASSERT_OK((*d)->PutUsers({other}));
  auto r = ImportDirectoryContents(**d, Sample());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kAlreadyExists);
  EXPECT_NE(r.status().message().find("user 'user0002', which the file holds differently"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("nothing was written"), std::string::npos);
  auto now = ReadDirectoryContents(**d);
  ASSERT_TRUE(now.ok());
  ASSERT_EQ(now->records(), 1u);
  EXPECT_EQ(now->users[0].display_name, "Someone Else");
  // A record the file does not hold at all.
  auto e = Directory::OpenLmdb(t / "e", true);
  ASSERT_TRUE(e.ok());
  ASSERT_OK((*e)->PutServer({"SERVER9", ""}));
  auto r2 = ImportDirectoryContents(**e, Sample());
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.status().message().find("server 'SERVER9', which the file does not hold"), std::string::npos)
      << r2.status().message();
}

// Damage anywhere in an export is refused before anything is written, with
// the line that shows it.
TEST(DirectoryLdifTest, DamagedExportsAreRefusedNamingTheLine) {
  auto ldif = DirectoryToLdif(Sample(), "ou=org1,dc=mbxmove,dc=test", "test");
  ASSERT_TRUE(ldif.ok());
  const std::string& good = *ldif;
  auto fails = [](const std::string& text, const std::string& expect) {
    auto r = DirectoryFromLdif(text);
    ASSERT_FALSE(r.ok()) << expect;
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find(expect), std::string::npos) << r.status().message();
  };
  // Cut short at every entry boundary, and in the middle of a line.
  size_t cuts = 0;
  for (size_t pos = good.find("\n\ndn:"); pos != std::string::npos; pos = good.find("\n\ndn:", pos + 1)) {
    fails(good.substr(0, pos + 2), "the file was cut short");
    ++cuts;
  }
  EXPECT_GE(cuts, 10u);
  const size_t guid = good.find("msExchMailboxGuid:: ");
  fails(good.substr(0, guid + 25), "the base64 value of msExchMailboxGuid is damaged");
  // One base64 character changed.
  std::string flipped = good;
  flipped[guid + 20] = '!';
  const size_t guid_line = size_t(std::count(good.begin(), good.begin() + guid, '\n')) + 1;
  fails(flipped, "line " + std::to_string(guid_line) + ": the base64 value of msExchMailboxGuid is damaged");
  // A GUID of the wrong length.
  std::string short_guid = good;
  const size_t eol = short_guid.find('\n', guid);
  short_guid.replace(guid, eol - guid, "msExchMailboxGuid:: AAEC");
  fails(short_guid, ": msExchMailboxGuid is 3 bytes, a mailbox GUID is 16");
  // An entry lost from the middle: the count in the closing line disagrees.
  const size_t user = good.find("dn: cn=user0003");
  const size_t next = good.find("\n\n", user);
  std::string lost = good;
  lost.erase(user, next + 2 - user);
  fails(lost, "entries were lost or added");
  // A record the schema does not know, a bad step, a duplicate user.
  std::string alien = good;
  alien.replace(alien.find("objectClass: mbxStore"), 21, "objectClass: person");
  fails(alien, "is no mbxmove record (objectClass top, person;");
  std::string step = good;
  step.replace(step.find("mbxMoveStep: copying"), 20, "mbxMoveStep: flying");
  fails(step, "mbxMoveStep 'flying' is not a move step");
  std::string dup = good;
  dup.replace(dup.find("mailNickname: user0001"), 22, "mailNickname: user0000");
  fails(dup, "a second user 'user0000' (the first is at line");
}

// A hand-written file (no export header or closing line) is read as it is.
TEST(DirectoryLdifTest, HandWrittenLdifWithoutTheExportLines) {
  const std::string text =
      "dn: cn=alice,ou=users,o=Example\n"
      "objectClass: mbxUser\n"
      "cn: alice\n"
      "mailNickname: alice\n"
      "msExchMailboxGuid:: AAECAwQFBgcICQoLDA0ODw==\n"
      "homeMDB: CN=MS1,CN=First Storage Group\n"
      "\n"
      "dn: cn=bob,ou=users,o=Example\n"
      "objectClass: mbxUser\n"
      "cn: bob\n"
      "msExchMailboxGuid:: AAECAwQFBgcICQoLDA0ODw==\n";
  auto r = DirectoryFromLdif(text);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("line 8: entry cn=bob,ou=users,o=Example has no mailNickname"),
            std::string::npos)
      << r.status().message();
  auto ok = DirectoryFromLdif(text.substr(0, text.find("\n\n") + 1));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  ASSERT_EQ(ok->users.size(), 1u);
  EXPECT_EQ(ok->users[0].name, "alice");
  EXPECT_EQ(ok->users[0].smtp, "");
  EXPECT_EQ(ok->users[0].home_mdb, "CN=MS1,CN=First Storage Group");
}

}  // namespace
}  // namespace mbx
