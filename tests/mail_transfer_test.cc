// Real mail in and out, through the mbxmove program: Maildir++ and mbox
// import, Maildir++ export, byte-identical round trips, move-then-export,
// and Dovecot reading what we export.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <cstring>

#include "store/organization.h"
#include "test_util.h"

namespace mbx::testing {
namespace {

using json = nlohmann::json;

void WriteFile(const std::string& path, std::string_view bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  ASSERT_TRUE(f.good()) << path;
}

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// A Maildir++ folder as Dovecot creates it: cur/ new/ tmp/, and for a
// subfolder an empty maildirfolder file.
void MakeFolder(const std::string& dir, bool sub) {
  for (const char* d : {"cur", "new", "tmp"}) fs::create_directories(dir + "/" + d);
  if (sub) WriteFile(dir + "/maildirfolder", "");
}

std::string Message(const std::string& subject, const std::string& body, const std::string& extra_headers = "") {
  return "From: Alice Example <alice@example.com>\nTo: bob@example.com, Carol <carol@example.org>\n"
         "Subject: " + subject + "\nDate: Tue, 10 Jan 2023 15:45:10 +0000\nMessage-ID: <" + subject +
         "@example.com>\n" + extra_headers + "\n" + body;
}

std::string Base64(std::string_view data) {
  static constexpr char k[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t col = 0;
  for (size_t i = 0; i < data.size(); i += 3) {
    uint32_t v = uint32_t(uint8_t(data[i])) << 16;
    if (i + 1 < data.size()) v |= uint32_t(uint8_t(data[i + 1])) << 8;
    if (i + 2 < data.size()) v |= uint8_t(data[i + 2]);
    out += k[v >> 18];
    out += k[(v >> 12) & 63];
    out += i + 1 < data.size() ? k[(v >> 6) & 63] : '=';
    out += i + 2 < data.size() ? k[v & 63] : '=';
    if ((col += 4) == 76) {
      out += '\n';
      col = 0;
    }
  }
  return out + "\n";
}

// The fixture of the issue: nested folders (an implicit-free tree), flags
// and keywords, a message in new/, an empty folder, a message without a
// trailing newline, non-ASCII headers, a 10 MB attachment and a malformed
// message. Returns the message count per Dovecot mailbox name.
std::map<std::string, int> BuildFixture(const std::string& root) {
  MakeFolder(root, false);
  WriteFile(root + "/cur/1700000001.M1P1.host:2,S", Message("plain", "Hello.\n"));
  WriteFile(root + "/cur/1700000002.M2P1.host:2,FRS", Message("flagged", "Answered and flagged.\n"));
  WriteFile(root + "/cur/1700000003.M3P1.host:2,Sac", Message("keywords", "With keywords a and c.\n"));
  WriteFile(root + "/new/1700000004.M4P1.host", Message("fresh", "Not seen yet.\n"));
  WriteFile(root + "/cur/1700000005.M5P1.host:2,S", Message("no-newline", "The last line has no newline"));
  WriteFile(root + "/cur/1700000006.M6P1.host:2,S",
            "From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <jm@example.de>\nTo: zoe@example.com\n"
            "Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\nX-Raw: caf\xc3\xa9 \xe2\x82\xac\n"
            "Date: Wed, 11 Jan 2023 08:00:00 +0100\n\nNon-ASCII headers.\n");
  {
    std::mt19937_64 rng(42);
    std::string blob(10u << 20, '\0');
    for (size_t i = 0; i < blob.size(); i += 8) {
      const uint64_t v = rng();
      std::memcpy(&blob[i], &v, std::min<size_t>(8, blob.size() - i));
    }
    WriteFile(root + "/cur/1700000007.M7P1.host:2,S",
              Message("big", "",
                      "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n") +
                  "--b1\nContent-Type: text/plain\n\nSee attached.\n--b1\nContent-Type: application/octet-stream; "
                  "name=\"big.bin\"\nContent-Disposition: attachment; filename=\"big.bin\"\n"
                  "Content-Transfer-Encoding: base64\n\n" + Base64(blob) + "--b1--\n");
  }
  WriteFile(root + "/cur/1700000008.M8P1.host:2,S", std::string("\x00\x01\x02 not a message \xff\xfe", 20));
  MakeFolder(root + "/.Archive", true);
  WriteFile(root + "/.Archive/cur/1700000010.M10P1.host:2,S", Message("archived", "Old.\n"));
  MakeFolder(root + "/.Archive.2024", true);
  WriteFile(root + "/.Archive.2024/cur/1700000011.M11P1.host:2,DT", Message("draft-trashed", "Gone.\n"));
  WriteFile(root + "/.Archive.2024/cur/1700000012.M12P1.host:2,P", Message("passed", "Forwarded.\n"));
  MakeFolder(root + "/.Empty", true);
  MakeFolder(root + "/.Sent Items", true);
  WriteFile(root + "/.Sent Items/cur/1700000013.M13P1.host:2,S", Message("sent", "I wrote this.\n"));
  MakeFolder(root + "/.INBOX.Sub", true);
  WriteFile(root + "/.INBOX.Sub/new/1700000014.M14P1.host", Message("sub", "In a subfolder of the Inbox.\n"));
  return {{"INBOX", 8}, {"Archive", 1}, {"Archive.2024", 2}, {"Empty", 0}, {"Sent Items", 1}, {"INBOX.Sub", 1}};
}

// Every file and folder under `root`, relative, with the bytes of files.
std::map<std::string, std::string> Tree(const std::string& root) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    const std::string rel = fs::relative(e.path(), root).string();
    out[rel] = e.is_directory() ? "<dir>" : ReadAll(e.path().string());
  }
  return out;
}

// Compares two trees and names the first differences (not the bytes).
void ExpectSameTree(const std::string& a, const std::string& b) {
  const auto ta = Tree(a), tb = Tree(b);
  std::vector<std::string> only_a, only_b, differ;
  for (const auto& [k, v] : ta) {
    auto it = tb.find(k);
    if (it == tb.end()) only_a.push_back(k);
    else if (it->second != v) differ.push_back(k);
  }
  for (const auto& [k, v] : tb) {
    if (!ta.count(k)) only_b.push_back(k);
  }
  auto list = [](const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size() && i < 10; ++i) s += "\n  " + v[i];
    return s;
  };
  EXPECT_TRUE(only_a.empty()) << "only in " << a << ":" << list(only_a);
  EXPECT_TRUE(only_b.empty()) << "only in " << b << ":" << list(only_b);
  EXPECT_TRUE(differ.empty()) << "different bytes:" << list(differ);
  EXPECT_FALSE(ta.empty());
}

class MailTransferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    org_ = tmp_ / "org";
    RunJson("store create --org " + org_ + " --store S1 --json");
    RunJson("store create --org " + org_ + " --store S2 --json");
  }
  std::string Q(const std::string& p) { return "'" + p + "'"; }
  TempDir tmp_;
  std::string org_;
};

TEST_F(MailTransferTest, MaildirRoundTripIsByteIdentical) {
  const std::string src = tmp_ / "src";
  BuildFixture(src);
  json imp = RunJson("import --org " + org_ + " --store S1 --maildir " + Q(src) + " --user alice --json");
  ASSERT_EQ(imp["mailboxes"].size(), 1u);
  EXPECT_EQ(imp["messages"], 13);
  EXPECT_EQ(imp["raw_messages"], 1) << "the malformed message is kept as a raw item";
  EXPECT_EQ(imp["skipped"], 0);
  const auto warnings = imp["mailboxes"][0]["warnings"];
  ASSERT_EQ(warnings.size(), 1u) << warnings.dump();
  EXPECT_NE(warnings[0].get<std::string>().find("1700000008.M8P1.host"), std::string::npos) << warnings[0];
  uint64_t fixture_bytes = 0;
  for (const auto& [k, v] : Tree(src)) {
    if (k.find("/cur/") != std::string::npos || k.find("/new/") != std::string::npos ||
        k.rfind("cur/", 0) == 0 || k.rfind("new/", 0) == 0) {
      fixture_bytes += v.size();
    }
  }
  EXPECT_EQ(imp["bytes"].get<uint64_t>(), fixture_bytes);

  const std::string out = tmp_ / "out";
  json exp = RunJson("export --org " + org_ + " --mailbox alice --maildir " + Q(out) + " --json");
  EXPECT_EQ(exp["messages"], 13);
  ExpectSameTree(src, out);

  // An export never mixes into existing mail.
  auto again = RunCommand(Mbxmove() + " export --org " + org_ + " --mailbox alice --maildir " + Q(out));
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("not an empty folder"), std::string::npos) << again.err;
  // Importing the same user twice is refused, and changes nothing.
  auto twice = RunCommand(Mbxmove() + " import --org " + org_ + " --store S1 --maildir " + Q(src) + " --user alice");
  EXPECT_EQ(twice.exit_code, 1);
  EXPECT_NE(twice.err.find("already exists"), std::string::npos) << twice.err;
  json v = RunJson("verify --org " + org_ + " --json");
  EXPECT_EQ(v["problems"].size(), 0u) << v.dump();
}

// The properties the store indexes are read from the headers (GMime):
// decoded, with the flags and keywords of the file name.
TEST_F(MailTransferTest, ImportedItemsCarryTheirProperties) {
  const std::string src = tmp_ / "src";
  BuildFixture(src);
  RunJson("import --org " + org_ + " --store S1 --maildir " + Q(src) + " --user alice --json");
  auto org = Organization::Open(org_);
  ASSERT_TRUE(org.ok()) << org.status().ToString();
  auto user = (*org)->directory().GetUser("alice");
  ASSERT_TRUE(user.ok());
  EXPECT_EQ(user->smtp, "alice@example.com");
  auto store = (*org)->GetStore("S1");
  ASSERT_TRUE(store.ok());
  EXPECT_NE(user->home_mdb.find("CN=S1"), std::string::npos) << user->home_mdb;
  auto reader = (*store)->BeginRead();
  ASSERT_TRUE(reader.ok());
  auto box = reader->GetMailbox(user->mailbox);
  ASSERT_TRUE(box.ok());
  EXPECT_EQ(box->state, MailboxState::kActive);
  EXPECT_EQ(box->item_count, 13u);
  std::vector<FolderInfo> folders;
  ASSERT_OK(reader->ListFolders(user->mailbox, &folders));
  std::map<std::string, Item> by_source;
  std::map<std::string, std::string> folder_of;
  for (const auto& f : folders) {
    ASSERT_OK(reader->ForEachItem(user->mailbox, f.id, [&](uint64_t, std::string_view rec) {
      auto item = DecodeItem(rec);
      if (!item.ok()) return item.status();
      folder_of[item->source_name] = f.name;
      by_source[item->source_name] = std::move(*item);
      return Status::Ok();
    }));
  }
  ASSERT_EQ(by_source.size(), 13u);
  const Item& plain = by_source.at("1700000001.M1P1.host");
  EXPECT_EQ(plain.subject, "plain");
  EXPECT_EQ(plain.sender, "Alice Example <alice@example.com>");
  EXPECT_EQ(plain.recipients, (std::vector<std::string>{"bob@example.com", "carol@example.org"}));
  EXPECT_EQ(plain.message_id, "plain@example.com");
  EXPECT_EQ(plain.flags, uint32_t(kFlagRead));
  EXPECT_EQ(plain.received.time_since_epoch().count(), 1673365510LL * 1000000);
  EXPECT_EQ(plain.message_class, "IPM.Note");
  EXPECT_EQ(folder_of["1700000001.M1P1.host"], "Inbox");
  EXPECT_EQ(by_source.at("1700000002.M2P1.host").flags, uint32_t(kFlagFlagged | kFlagAnswered | kFlagRead));
  EXPECT_EQ(by_source.at("1700000003.M3P1.host").keywords, (1u << 0) | (1u << 2));
  EXPECT_EQ(by_source.at("1700000004.M4P1.host").flags, uint32_t(kFlagRecent));
  EXPECT_EQ(by_source.at("1700000011.M11P1.host").flags, uint32_t(kFlagDraft | kFlagTrashed));
  EXPECT_EQ(by_source.at("1700000012.M12P1.host").flags, uint32_t(kFlagPassed));
  const Item& intl = by_source.at("1700000006.M6P1.host");
  EXPECT_EQ(intl.subject, "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln");
  EXPECT_EQ(intl.sender, "J\xc3\xbcrgen M\xc3\xbcller <jm@example.de>");
  EXPECT_EQ(intl.received.time_since_epoch().count(), 1673420400LL * 1000000) << "08:00 +0100 is 07:00 UTC";
  const Item& raw = by_source.at("1700000008.M8P1.host");
  EXPECT_TRUE(raw.subject.empty() && raw.sender.empty()) << "a raw item has no properties";
  EXPECT_EQ(raw.mime.size(), 20u);
  EXPECT_GT(by_source.at("1700000007.M7P1.host").mime.size(), 10u << 20);
  EXPECT_EQ(folder_of["1700000011.M11P1.host"], "2024");
  EXPECT_EQ(folder_of["1700000014.M14P1.host"], "Sub");
}

// Generated mailboxes exported and imported into another organisation:
// the same folders, and every item keeps its message class (from the
// X-MS-Message-Class header the generator writes for non-mail items), its
// subject, sender and bytes.
TEST_F(MailTransferTest, GeneratedMailboxesSurviveExportAndImport) {
  RunJson("gen --org " + org_ + " --store S1 --preset tiny --mailboxes 3 --json");
  const std::string md = tmp_ / "md";
  RunJson("export --org " + org_ + " --all --maildir " + Q(md) + " --json");
  const std::string org2 = tmp_ / "org2";
  RunJson("store create --org " + org2 + " --store T --json");
  json imp = RunJson("import --org " + org2 + " --store T --maildir-root " + Q(md) + " --json");
  EXPECT_EQ(imp["raw_messages"], 0);
  // (folder path, class, subject, sender, bytes) of every item of a user.
  auto items_of = [](const std::string& org, const std::string& user) {
    std::multiset<std::string> out;
    auto o = Organization::Open(org);
    EXPECT_TRUE(o.ok());
    if (!o.ok()) return out;
    auto u = (*o)->directory().GetUser(user);
    EXPECT_TRUE(u.ok()) << user;
    if (!u.ok()) return out;
    std::vector<StoreRecord> stores;
    EXPECT_OK((*o)->ListStores(&stores));
    for (const auto& sr : stores) {
      if (sr.dn != u->home_mdb) continue;
      auto st = (*o)->GetStore(sr.name);
      auto r = (*st)->BeginRead();
      std::vector<FolderInfo> folders;
      EXPECT_OK(r->ListFolders(u->mailbox, &folders));
      std::map<uint32_t, FolderInfo> by_id;
      for (const auto& f : folders) by_id[f.id] = f;
      for (const auto& f : folders) {
        std::string path;
        for (uint32_t id = f.id; id != 0 && by_id.count(id); id = by_id[id].parent_id) path = by_id[id].name + "/" + path;
        out.insert("folder " + path);
        EXPECT_OK(r->ForEachItem(u->mailbox, f.id, [&](uint64_t, std::string_view rec) {
          auto it = DecodeItem(rec);
          if (!it.ok()) return it.status();
          out.insert(path + "|" + it->message_class + "|" + it->subject + "|" + it->sender + "|" +
                     std::to_string(it->flags) + "|" + it->mime);
          return Status::Ok();
        }));
      }
    }
    return out;
  };
  int classes = 0;
  for (const char* user : {"user0000", "user0001", "user0002"}) {
    const auto a = items_of(org_, user), b = items_of(org2, user);
    EXPECT_EQ(a.size(), b.size()) << user;
    EXPECT_TRUE(a == b) << user << ": items differ after export and import";
    for (const auto& x : a) classes += x.find("|IPM.Appointment|") != std::string::npos;
  }
  EXPECT_GT(classes, 0) << "the dataset has calendar items";
}

TEST_F(MailTransferTest, MoveThenExportEqualsExportBeforeTheMove) {
  const std::string src = tmp_ / "src";
  BuildFixture(src);
  RunJson("import --org " + org_ + " --store S1 --maildir " + Q(src) + " --user alice --json");
  // And generated mailboxes: rendered MIME, exported under synthesized names.
  RunJson("gen --org " + org_ + " --store S1 --preset tiny --mailboxes 3 --json");
  const std::string before = tmp_ / "before", after = tmp_ / "after";
  json e1 = RunJson("export --org " + org_ + " --all --maildir " + Q(before) + " --json");
  EXPECT_EQ(e1["mailboxes"].size(), 4u);
  EXPECT_GT(e1["messages"].get<int>(), 13);
  json mv = RunJson("move --org " + org_ + " --from S1 --to S2 --json");
  json e2 = RunJson("export --org " + org_ + " --all --maildir " + Q(after) + " --json");
  EXPECT_EQ(e1["messages"], e2["messages"]);
  ExpectSameTree(before, after);
  ExpectSameTree(src, before + "/alice");
}

TEST_F(MailTransferTest, MboxImportUnescapesFromLinesExactly) {
  // Messages as they are, and the mboxrd file that holds them.
  const std::vector<std::string> messages = {
      Message("one", "Body line.\n\nFrom the start of a line after a blank line.\n"),
      Message("two", ">From already quoted\n>>From twice\nFrom inside a paragraph\n"),
      Message("three", "Last one, with a blank line at its end.\n\n"),
  };
  std::string mbox;
  for (const auto& m : messages) {
    mbox += "From alice@example.com Tue Jan 10 15:45:10 2023\n";
    size_t pos = 0;
    while (pos < m.size()) {
      size_t eol = m.find('\n', pos);
      std::string line = m.substr(pos, eol == std::string::npos ? std::string::npos : eol + 1 - pos);
      size_t gt = line.find_first_not_of('>');
      if (line.compare(gt == std::string::npos ? line.size() : gt, 5, "From ") == 0) line = ">" + line;
      mbox += line;
      pos = eol == std::string::npos ? m.size() : eol + 1;
    }
    mbox += "\n";
  }
  const std::string path = tmp_ / "mail.mbox";
  WriteFile(path, mbox);
  json imp = RunJson("import --org " + org_ + " --store S1 --mbox " + path + " --user bob --json");
  EXPECT_EQ(imp["messages"], 3);
  uint64_t bytes = 0;
  for (const auto& m : messages) bytes += m.size();
  EXPECT_EQ(imp["bytes"].get<uint64_t>(), bytes);
  EXPECT_EQ(imp["raw_messages"], 0);

  const std::string out = tmp_ / "out";
  RunJson("export --org " + org_ + " --mailbox bob --maildir " + Q(out) + " --json");
  std::multiset<std::string> got, want(messages.begin(), messages.end());
  for (const auto& e : fs::directory_iterator(out + "/new")) got.insert(ReadAll(e.path().string()));
  EXPECT_EQ(got, want) << "no Status header: the messages are new (Recent)";

  // Flags kept by mbox readers: Status R(ead) O(ld), X-Status A(nswered)
  // F(lagged); an unread old message is neither Seen nor Recent.
  WriteFile(tmp_ / "flags.mbox", "From a@b Tue Jan 10 15:45:10 2023\n" +
                                     Message("read", "x\n", "Status: RO\nX-Status: AF\n") +
                                     "\nFrom a@b Tue Jan 10 15:45:11 2023\n" +
                                     Message("old", "y\n", "Status: O\n") + "\n");
  RunJson("import --org " + org_ + " --store S1 --mbox " + (tmp_ / "flags.mbox") + " --user eve --json");
  RunJson("export --org " + org_ + " --mailbox eve --maildir " + (tmp_ / "eve") + " --json");
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(tmp_ / "eve/cur")) names.insert(e.path().filename().string());
  const std::set<std::string> want_names = {"1673365510.I1.mbxmove:2,FRS", "1673365510.I2.mbxmove:2,"};
  EXPECT_EQ(names, want_names);

  // Not an mbox: a clear error, nothing created.
  WriteFile(tmp_ / "junk", "Subject: not an mbox\n\nhello\n");
  auto bad = RunCommand(Mbxmove() + " import --org " + org_ + " --store S1 --mbox " + (tmp_ / "junk") + " --user carol");
  EXPECT_EQ(bad.exit_code, 3) << bad.err;
  EXPECT_NE(bad.err.find("not an mbox"), std::string::npos) << bad.err;
  auto users = RunCommand(Mbxmove() + " export --org " + org_ + " --mailbox carol --maildir " + (tmp_ / "c"));
  EXPECT_EQ(users.exit_code, 1) << "the failed import registered no user";
}

TEST_F(MailTransferTest, MaildirRootImportsEveryUserInParallel) {
  for (const char* u : {"ann", "ben", "cat"}) BuildFixture(tmp_ / ("root/" + std::string(u)));
  // A home-directory layout: the user's Maildir/ subfolder.
  BuildFixture(tmp_ / "root/dan/Maildir");
  json imp = RunJson("import --org " + org_ + " --store S2 --maildir-root " + (tmp_ / "root") + " --json");
  ASSERT_EQ(imp["mailboxes"].size(), 4u);
  EXPECT_EQ(imp["messages"], 4 * 13);
  EXPECT_EQ(imp["mailboxes"][3]["user"], "dan");
  const std::string out = tmp_ / "out";
  RunJson("export --org " + org_ + " --all --maildir " + Q(out) + " --json");
  ExpectSameTree(tmp_ / "root/ann", out + "/ann");
  ExpectSameTree(tmp_ / "root/dan/Maildir", out + "/dan");
}

// An import killed at any commit of its store, or between registering the
// user and activating the mailbox: recovery leaves either the whole mailbox
// (registered and active, exporting byte-identical) or nothing, and the
// organisation verifies clean.
TEST_F(MailTransferTest, InterruptedImportsRecoverToAllOrNothing) {
  const std::string root = tmp_ / "root";
  for (const char* u : {"ann", "ben"}) BuildFixture(root + "/" + u);
  struct Crash {
    std::string point;
    int n;
  };
  std::vector<Crash> crashes = {{"import-registered", 1}, {"import-registered", 2}};
  for (int n = 1; n <= 12; n += 2) crashes.push_back({"log-appended", n});
  int whole = 0, nothing = 0;
  for (const auto& c : crashes) {
    SCOPED_TRACE(c.point + ":" + std::to_string(c.n));
    TempDir t;
    const std::string org = t / "org";
    RunJson("store create --org " + org + " --store S1 --json");
    auto r = RunCommand("MBX_CRASH_AT=" + c.point + ":" + std::to_string(c.n) + " " + Mbxmove() +
                        " import --org " + org + " --store S1 --threads 1 --maildir-root " + root);
    if (r.exit_code == 0) continue;  // finished before the crash point
    ASSERT_EQ(r.exit_code, 86) << r.err;
    json rec = RunJson("recover --org " + org + " --json");
    EXPECT_TRUE(rec["all_done"].get<bool>()) << rec.dump();
    json v = RunJson("verify --org " + org + " --json");
    EXPECT_EQ(v["problems"].size(), 0u) << v.dump();
    for (const char* u : {"ann", "ben"}) {
      const std::string out = t / (std::string("out-") + u);
      auto e = RunCommand(Mbxmove() + " export --org " + org + " --mailbox " + u + " --maildir " + out);
      if (e.exit_code == 0) {
        ExpectSameTree(root + "/" + u, out);
        ++whole;
      } else {
        EXPECT_NE(e.err.find("no user"), std::string::npos) << e.err;
        ++nothing;
        // Not registered: importing it again works.
        RunJson("import --org " + org + " --store S1 --maildir " + root + "/" + u + " --user " + u + " --json");
      }
    }
    json v2 = RunJson("verify --org " + org + " --json");
    EXPECT_EQ(v2["problems"].size(), 0u) << v2.dump();
  }
  EXPECT_GT(whole, 0);
  EXPECT_GT(nothing, 0);
}

// One rule for where mail is written, the same as gen's: import creates the
// organisation (a missing or empty folder) and the store (not registered)
// with the store options gen takes; an existing store keeps its own; a
// folder that is something else is refused and left as it was.
TEST_F(MailTransferTest, ImportCreatesTheOrganisationAndStoreWhenMissingAsGenDoes) {
  const std::string src = tmp_ / "src";
  MakeFolder(src, false);
  WriteFile(src + "/cur/1700000001.M1P1.host:2,S", Message("one", "First.\n"));
  WriteFile(src + "/cur/1700000002.M2P1.host:2,S", Message("two", "Second.\n"));
  auto log_mode = [](const std::string& org, const std::string& store) {
    return RunJson("logs --org " + org + " --store " + store + " --json")["mode"].get<std::string>();
  };

  // A folder that does not exist, with gen's store options.
  const std::string fresh = tmp_ / "fresh";
  json imp = RunJson("import --org " + fresh + " --store NEW --maildir " + Q(src) +
                     " --user alice --log-mode backup-flush --zstd-level 9 --server SERVER7 --json");
  EXPECT_EQ(imp["messages"], 2);
  json stores = RunJson("store list --org " + fresh + " --json");
  ASSERT_EQ(stores["stores"].size(), 1u);
  EXPECT_EQ(stores["stores"][0]["name"], "NEW");
  EXPECT_EQ(stores["stores"][0]["server"], "SERVER7");
  EXPECT_EQ(log_mode(fresh, "NEW"), "backup-flush");
  json v = RunJson("verify --org " + fresh + " --json");
  EXPECT_TRUE(v["clean"].get<bool>()) << v.dump();
  EXPECT_EQ(v["users"], 1);
  EXPECT_EQ(v["items_checked"], 2);

  // An empty folder, default options: those of a store gen creates.
  const std::string empty = tmp_ / "empty";
  fs::create_directories(empty);
  RunJson("import --org " + empty + " --store S --maildir " + Q(src) + " --user bob --json");
  RunJson("gen --org " + (tmp_ / "generated") + " --store S --preset tiny --json");
  EXPECT_EQ(log_mode(empty, "S"), "circular");
  EXPECT_EQ(log_mode(empty, "S"), log_mode(tmp_ / "generated", "S"));
  EXPECT_EQ(RunJson("store list --org " + empty + " --json")["stores"][0]["server"],
            RunJson("store list --org " + (tmp_ / "generated") + " --json")["stores"][0]["server"]);

  // An existing organisation gets the store it lacks; an existing store
  // keeps its options (S1 was created backup-flush by SetUp).
  RunJson("import --org " + org_ + " --store S9 --maildir " + Q(src) + " --user carol --json");
  RunJson("import --org " + org_ + " --store S1 --maildir " + Q(src) + " --user dave --log-mode circular --json");
  EXPECT_EQ(RunJson("store list --org " + org_ + " --json")["stores"].size(), 3u);
  EXPECT_EQ(log_mode(org_, "S9"), "circular");
  EXPECT_EQ(log_mode(org_, "S1"), "backup-flush");
  v = RunJson("verify --org " + org_ + " --json");
  EXPECT_TRUE(v["clean"].get<bool>()) << v.dump();
  EXPECT_EQ(v["users"], 2);

  // A non-empty folder that is not an organisation is refused, untouched.
  const std::string plain = tmp_ / "plain";
  WriteFile(plain + "/notes.txt", "keep me");
  const auto before = Tree(plain);
  auto r = RunCommand(Mbxmove() + " import --org " + plain + " --store S --maildir " + Q(src) + " --user erin");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("is not empty and is not an mbxmove organisation"), std::string::npos) << r.err;
  EXPECT_EQ(Tree(plain), before);
}

TEST_F(MailTransferTest, BadArgumentsAreClearErrors) {
  auto none = RunCommand(Mbxmove() + " import --org " + org_ + " --store S1 --user x");
  EXPECT_EQ(none.exit_code, 2) << none.err;
  auto missing = RunCommand(Mbxmove() + " import --org " + org_ + " --store S1 --maildir " + (tmp_ / "nope") +
                            " --user x");
  EXPECT_EQ(missing.exit_code, 3) << missing.err;
  EXPECT_NE(missing.err.find("nope"), std::string::npos) << missing.err;
  auto badmode = RunCommand(Mbxmove() + " import --org " + org_ + " --store S9 --mbox /dev/null --user x "
                            "--log-mode sometimes");
  EXPECT_EQ(badmode.exit_code, 2);
  EXPECT_NE(badmode.err.find("sometimes"), std::string::npos) << badmode.err;
  EXPECT_EQ(RunJson("store list --org " + org_ + " --json")["stores"].size(), 2u) << "a store was created";
  auto baduser = RunCommand(Mbxmove() + " import --org " + org_ + " --store S1 --mbox /dev/null --user 'a/b'");
  EXPECT_EQ(baduser.exit_code, 2);
  EXPECT_NE(baduser.err.find("user name"), std::string::npos) << baduser.err;
  auto nobody = RunCommand(Mbxmove() + " export --org " + org_ + " --mailbox ghost --maildir " + (tmp_ / "g"));
  EXPECT_EQ(nobody.exit_code, 1);
  EXPECT_NE(nobody.err.find("ghost"), std::string::npos) << nobody.err;
  EXPECT_FALSE(fs::exists(tmp_ / "g")) << "nothing is written for an unknown user";
}

// Dovecot (doveadm, installed by the test command) reads our export: same
// folders, same message counts. No server runs: doveadm opens the folder.
TEST_F(MailTransferTest, DovecotReadsTheExport) {
  ASSERT_EQ(RunCommand("command -v doveadm").exit_code, 0)
      << "doveadm is missing: the test command installs dovecot-core";
  const std::string src = tmp_ / "src";
  const auto expected = BuildFixture(src);
  RunJson("import --org " + org_ + " --store S1 --maildir " + Q(src) + " --user alice --json");
  // doveadm refuses to run mail commands as root: as root, it reads a copy
  // owned by nobody.
  const std::string home = tmp_ / "dove";
  RunJson("export --org " + org_ + " --mailbox alice --maildir " + Q(home + "/Maildir") + " --json");
  std::string conf = "mail_location = maildir:" + home + "/Maildir:INDEX=MEMORY\n";
  if (::geteuid() == 0) {
    conf += "mail_uid = 65534\nmail_gid = 65534\n";
    ::chmod(tmp_.path().c_str(), 0755);
    ASSERT_EQ(RunCommand("chown -R 65534:65534 " + Q(home)).exit_code, 0);
  }
  WriteFile(tmp_ / "dovecot.conf", conf);
  const std::string env = "HOME=" + Q(home) + " USER=" + (::geteuid() == 0 ? "nobody" : "$(id -un)");
  auto r = RunCommand(env + " doveadm -c " + (tmp_ / "dovecot.conf") + " mailbox status messages '*'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::map<std::string, int> got;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    const size_t at = line.rfind(" messages=");
    if (at != std::string::npos) got[line.substr(0, at)] = std::stoi(line.substr(at + 10));
  }
  EXPECT_EQ(got, expected) << r.out;
  auto flags = RunCommand(env + " doveadm -c " + (tmp_ / "dovecot.conf") +
                          " fetch flags mailbox Archive.2024 all");
  ASSERT_EQ(flags.exit_code, 0) << flags.err;
  EXPECT_NE(flags.out.find("\\Draft"), std::string::npos) << flags.out;
  EXPECT_NE(flags.out.find("\\Deleted"), std::string::npos) << flags.out;
}

}  // namespace
}  // namespace mbx::testing
