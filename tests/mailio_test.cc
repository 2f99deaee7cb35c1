// Tests of engine/mailio: Maildir++ names, scanning and writing; mbox
// splitting (file reader and memory splitter), escaping and writing; message
// properties with GMime.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <random>
#include <thread>

#include "engine/mailio/maildir.h"
#include "engine/mailio/mbox.h"
#include "engine/mailio/mime_props.h"
#include "tests/test_util.h"

namespace mbx::mail {
namespace {

using mbx::testing::TempDir;
namespace fs = std::filesystem;

void WriteBytes(const std::string& path, std::string_view bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  ASSERT_TRUE(f.good()) << path;
}

void MakeMaildirDirs(const std::string& dir) {
  for (const char* sub : {"/cur", "/new", "/tmp"}) fs::create_directories(dir + sub);
}

// ---------------------------------------------------------------- names

TEST(MaildirName, ParsesFlagsAndKeywords) {
  auto n = ParseMaildirName("1700000000.M1P2.host,S=1234,W=1260:2,FRS");
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(n->unique, "1700000000.M1P2.host,S=1234,W=1260");
  EXPECT_EQ(n->flags, kFlagged | kAnswered | kSeen);
  EXPECT_EQ(n->keywords, 0u);
  EXPECT_TRUE(n->has_info);

  auto k = ParseMaildirName("u1:2,SaFzcD");  // unsorted, keywords mixed in
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->flags, kSeen | kFlagged | kDraft);
  EXPECT_EQ(k->keywords, (1u << 0) | (1u << 2) | (1u << 25));
  EXPECT_EQ(FormatMaildirName(k->unique, k->flags, k->keywords), "u1:2,DFSacz");

  auto all = ParseMaildirName("x:2,TSRPFD");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->flags, kDraft | kFlagged | kPassed | kAnswered | kSeen | kTrashed);
  EXPECT_EQ(FormatMaildirName("x", all->flags, 0), "x:2,DFPRST");
}

TEST(MaildirName, NoOrUnknownInfo) {
  auto plain = ParseMaildirName("1700000000.M1P2.host");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->unique, "1700000000.M1P2.host");
  EXPECT_FALSE(plain->has_info);
  EXPECT_EQ(plain->flags, 0u);

  auto experimental = ParseMaildirName("abc:1,something");
  ASSERT_TRUE(experimental.ok());
  EXPECT_EQ(experimental->unique, "abc");
  EXPECT_FALSE(experimental->has_info);
  EXPECT_EQ(experimental->flags, 0u);
  EXPECT_EQ(experimental->keywords, 0u);

  auto empty_flags = ParseMaildirName("abc:2,");
  ASSERT_TRUE(empty_flags.ok());
  EXPECT_TRUE(empty_flags->has_info);
  EXPECT_EQ(empty_flags->flags, 0u);
}

TEST(MaildirName, RejectsBadNames) {
  for (std::string_view bad : {std::string_view(""), std::string_view(".hidden:2,S"),
                               std::string_view("a/b:2,S"), std::string_view(":2,S"),
                               std::string_view("a\0b", 3)}) {
    auto r = ParseMaildirName(bad);
    EXPECT_FALSE(r.ok()) << "accepted \"" << bad << "\"";
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  }
}

TEST(MaildirName, FormatParseRoundTripEveryFlagSet) {
  const uint32_t keyword_sets[] = {0u, 1u, 1u << 25, 0x3ffffffu, 0x1234567u};
  for (uint32_t flags = 0; flags < 64; ++flags) {
    for (const uint32_t kw : keyword_sets) {
      const std::string name = FormatMaildirName("1.2.h", flags, kw);
      auto p = ParseMaildirName(name);
      ASSERT_TRUE(p.ok()) << name;
      EXPECT_EQ(p->unique, "1.2.h");
      EXPECT_EQ(p->flags, flags) << name;
      EXPECT_EQ(p->keywords, kw) << name;
      EXPECT_TRUE(p->has_info);
    }
  }
  // Recent is not a letter: it is where the file lives.
  EXPECT_EQ(FormatMaildirName("u", kRecent | kSeen, 0), "u:2,S");
}

// ---------------------------------------------------------------- scan

TEST(MaildirScan, FoldersMessagesAndIgnoredFiles) {
  TempDir t;
  const std::string root = t / "mail";
  MakeMaildirDirs(root);
  WriteBytes(root + "/cur/200.b:2,S", "b");
  WriteBytes(root + "/cur/100.a:2,RS", "a");
  WriteBytes(root + "/new/150.c", "c");
  WriteBytes(root + "/cur/.nfs0001", "hidden");
  WriteBytes(root + "/tmp/300.partial", "tmp");
  fs::create_directories(root + "/cur/subdir");  // not a regular file
  for (const char* f : {"dovecot-uidlist", "dovecot.index.log", "dovecot.index.cache",
                        "subscriptions", "maildirfolder", "dovecot-keywords"}) {
    WriteBytes(root + "/" + f, "x");
  }
  fs::create_directories(root + "/courierimapkeywords");
  MakeMaildirDirs(root + "/.Sent");
  WriteBytes(root + "/.Sent/maildirfolder", "");
  WriteBytes(root + "/.Sent/cur/1.s:2,S", "sent");
  MakeMaildirDirs(root + "/.Archive.2024");  // parent .Archive only implicit
  WriteBytes(root + "/.Archive.2024/new/9.z", "z");
  MakeMaildirDirs(root + "/.Empty");
  MakeMaildirDirs(root + "/.Bad..Name");
  fs::create_directories(root + "/.NoSubdirs");
  WriteBytes(root + "/.Dotfile", "a file, not a folder");

  std::vector<std::string> warnings;
  auto r = ScanMaildir(root, &warnings);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto& folders = *r;
  std::vector<std::vector<std::string>> paths;
  for (const auto& f : folders) paths.push_back(f.path);
  const std::vector<std::vector<std::string>> want = {
      {}, {"Archive"}, {"Archive", "2024"}, {"Empty"}, {"NoSubdirs"}, {"Sent"}};
  EXPECT_EQ(paths, want);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[0].find(".Bad..Name"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[1].find(".NoSubdirs"), std::string::npos) << warnings[1];

  const MaildirFolder& inbox = folders[0];
  EXPECT_EQ(inbox.dir, root);
  ASSERT_EQ(inbox.messages.size(), 3u);
  EXPECT_EQ(inbox.messages[0].file_name, "100.a:2,RS");
  EXPECT_EQ(inbox.messages[0].path, root + "/cur/100.a:2,RS");
  EXPECT_FALSE(inbox.messages[0].in_new);
  EXPECT_EQ(inbox.messages[1].file_name, "150.c");
  EXPECT_EQ(inbox.messages[1].path, root + "/new/150.c");
  EXPECT_TRUE(inbox.messages[1].in_new);
  EXPECT_EQ(inbox.messages[2].file_name, "200.b:2,S");

  EXPECT_EQ(folders[1].dir, "");  // implicit parent
  EXPECT_TRUE(folders[1].messages.empty());
  EXPECT_EQ(folders[2].dir, root + "/.Archive.2024");
  ASSERT_EQ(folders[2].messages.size(), 1u);
  EXPECT_TRUE(folders[2].messages[0].in_new);
  EXPECT_EQ(folders[3].dir, root + "/.Empty");
  EXPECT_TRUE(folders[3].messages.empty());
  EXPECT_TRUE(folders[4].messages.empty());
  ASSERT_EQ(folders[5].messages.size(), 1u);
  auto content = ReadFile(folders[5].messages[0].path);
  ASSERT_TRUE(content.ok());
  EXPECT_EQ(*content, "sent");
}

TEST(MaildirScan, RefusesWhatIsNotAMaildir) {
  TempDir t;
  auto missing = ScanMaildir(t / "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.status().IsNotFound());
  EXPECT_NE(missing.status().message().find(t / "nope"), std::string::npos);

  fs::create_directories(t / "plain/cur");  // no new/
  auto plain = ScanMaildir(t / "plain");
  ASSERT_FALSE(plain.ok());
  EXPECT_EQ(plain.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(plain.status().message().find(t / "plain"), std::string::npos);
  EXPECT_NE(plain.status().message().find("cur/ and new/"), std::string::npos);

  WriteBytes(t / "file", "x");
  EXPECT_FALSE(ScanMaildir(t / "file").ok());
}

// ---------------------------------------------------------------- writer

TEST(MaildirWriter, RefusesNonEmptyRoot) {
  TempDir t;
  WriteBytes(t / "full/existing", "mail");
  auto w = MaildirWriter::Create(t / "full");
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(w.status().message().find(t / "full"), std::string::npos);
  EXPECT_NE(w.status().message().find("not empty"), std::string::npos);

  WriteBytes(t / "afile", "x");
  EXPECT_FALSE(MaildirWriter::Create(t / "afile").ok());

  fs::create_directories(t / "empty");
  EXPECT_TRUE(MaildirWriter::Create(t / "empty").ok());
  EXPECT_TRUE(MaildirWriter::Create(t / "new/deeper").ok());
  EXPECT_TRUE(fs::is_directory(t / "new/deeper"));
}

TEST(MaildirWriter, RefusesFolderNamesMaildirCannotStore) {
  TempDir t;
  auto w = MaildirWriter::Create(t / "m");
  ASSERT_TRUE(w.ok());
  for (const std::vector<std::string>& bad : std::vector<std::vector<std::string>>{
           {"a.b"}, {"Parent", "v1.2"}, {".hidden"}, {"x/y"}, {""}}) {
    Status s = w->AddFolder(bad);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << bad.back();
    EXPECT_NE(s.message().find("\"" + bad.back() + "\""), std::string::npos) << s.message();
  }
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(t / "m")) names.push_back(e.path().filename());
  EXPECT_TRUE(names.empty()) << "a refused folder left " << names[0];
}

TEST(MaildirWriter, CreatesFoldersLikeDovecot) {
  TempDir t;
  auto w = MaildirWriter::Create(t / "m");
  ASSERT_TRUE(w.ok());
  ASSERT_OK(w->AddFolder({}));
  ASSERT_OK(w->AddFolder({"Archive", "2024"}));
  ASSERT_OK(w->AddFolder({"Archive", "2024"}));  // twice is fine
  for (const char* sub : {"cur", "new", "tmp"}) {
    EXPECT_TRUE(fs::is_directory(t / "m/" + sub));
    EXPECT_TRUE(fs::is_directory(t / "m/.Archive.2024/" + sub));
  }
  EXPECT_FALSE(fs::exists(t / "m/maildirfolder"));
  EXPECT_TRUE(fs::is_regular_file(t / "m/.Archive.2024/maildirfolder"));
  EXPECT_EQ(fs::file_size(t / "m/.Archive.2024/maildirfolder"), 0u);
  EXPECT_EQ(w->FolderDir({"Archive", "2024"}), t / "m/.Archive.2024");
}

TEST(MaildirWriter, WritesExactBytesAndNeverOverwrites) {
  TempDir t;
  auto w = MaildirWriter::Create(t / "m");
  ASSERT_TRUE(w.ok());
  static const char kBytes[] = "Subject: x\r\n\r\nbinary \0\xff\x01 end\n";
  const std::string bytes(kBytes, sizeof kBytes - 1);
  ASSERT_EQ(bytes.size(), 29u);
  const std::string name = FormatMaildirName("1.M1.host", kSeen | kFlagged, 1u << 3);
  ASSERT_OK(w->WriteMessage({}, name, false, bytes));
  ASSERT_OK(w->WriteMessage({}, "2.M2.host", true, "new mail\n"));
  ASSERT_OK(w->WriteMessage({"Sent"}, "3.M3.host:2,S", false, ""));

  auto got = ReadFile(t / "m/cur/" + name);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, bytes);
  EXPECT_TRUE(fs::is_empty(t / "m/tmp"));
  EXPECT_TRUE(fs::is_regular_file(t / "m/new/2.M2.host"));

  Status again = w->WriteMessage({}, name, false, "other bytes");
  EXPECT_EQ(again.code(), Status::Code::kAlreadyExists) << again.ToString();
  got = ReadFile(t / "m/cur/" + name);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, bytes);
  EXPECT_TRUE(fs::is_empty(t / "m/tmp"));

  EXPECT_EQ(w->WriteMessage({}, ".dot", false, "x").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(w->WriteMessage({}, "a/b", false, "x").code(), Status::Code::kInvalidArgument);
  ASSERT_OK(w->Sync());

  // What the writer wrote, the scanner reads back.
  auto scan = ScanMaildir(t / "m");
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  ASSERT_EQ(scan->size(), 2u);
  ASSERT_EQ((*scan)[0].messages.size(), 2u);
  EXPECT_EQ((*scan)[0].messages[0].file_name, name);
  EXPECT_FALSE((*scan)[0].messages[0].in_new);
  EXPECT_TRUE((*scan)[0].messages[1].in_new);
  EXPECT_EQ((*scan)[1].path, std::vector<std::string>{"Sent"});
  ASSERT_EQ((*scan)[1].messages.size(), 1u);

  EXPECT_FALSE(ReadFile(t / "m/cur/missing").ok());
}

// ---------------------------------------------------------------- mbox

std::vector<MboxMessage> Split(std::string_view data, MboxFormat format) {
  std::vector<MboxMessage> out;
  Status s = SplitMbox(data, format, [&](MboxMessage&& m) {
    out.push_back(std::move(m));
    return Status::Ok();
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

TEST(Mbox, SplitsAtFromLinesAfterBlankLines) {
  const std::string data =
      "From alice@example.com Mon Jan  1 00:00:00 2024\n"
      "Subject: one\n"
      "\n"
      "body one\n"
      "From here on this is still body: no blank line before it\n"
      "\n"
      "\n"
      "From bob@example.com Tue Jan  2 00:00:00 2024\n"
      "Subject: two\n"
      "\n"
      "body two\n"
      "\n";
  auto msgs = Split(data, MboxFormat::kMboxrd);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].from_line, "alice@example.com Mon Jan  1 00:00:00 2024");
  EXPECT_EQ(msgs[0].offset, 0u);
  // Two blank lines before the From_ line: one is the separator.
  EXPECT_EQ(msgs[0].bytes,
            "Subject: one\n\nbody one\nFrom here on this is still body: no blank line before it\n\n");
  EXPECT_EQ(msgs[1].from_line, "bob@example.com Tue Jan  2 00:00:00 2024");
  EXPECT_EQ(msgs[1].offset, data.find("From bob"));
  EXPECT_EQ(msgs[1].bytes, "Subject: two\n\nbody two\n");  // final separator dropped
}

TEST(Mbox, UnescapesMboxrdAndMboxo) {
  const std::string data =
      "From a\n"
      "Subject: s\n"
      "\n"
      ">From one\n"
      ">>From two\n"
      ">>>From three\n"
      "> From not escaped\n"
      ">Fromage\n"
      "From inside a paragraph\n"
      "\n";
  auto rd = Split(data, MboxFormat::kMboxrd);
  ASSERT_EQ(rd.size(), 1u);
  EXPECT_EQ(rd[0].bytes,
            "Subject: s\n\nFrom one\n>From two\n>>From three\n> From not escaped\n>Fromage\n"
            "From inside a paragraph\n");
  auto o = Split(data, MboxFormat::kMboxo);
  ASSERT_EQ(o.size(), 1u);
  EXPECT_EQ(o[0].bytes,
            "Subject: s\n\nFrom one\n>>From two\n>>>From three\n> From not escaped\n>Fromage\n"
            "From inside a paragraph\n");
}

TEST(Mbox, LastMessageWithoutNewlineEmptyMessagesAndCrlf) {
  auto last = Split("From a\nX: 1\n\nno newline at the end", MboxFormat::kMboxrd);
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last[0].bytes, "X: 1\n\nno newline at the end");

  auto empty = Split("From a\n\nFrom b\nFrom c", MboxFormat::kMboxrd);
  ASSERT_EQ(empty.size(), 2u);
  EXPECT_EQ(empty[0].bytes, "");
  EXPECT_EQ(empty[1].from_line, "b");
  EXPECT_EQ(empty[1].bytes, "From c");  // no blank line before it: body

  const std::string crlf =
      "From a Mon Jan  1 00:00:00 2024\r\nX: 1\r\n\r\nbody\r\n\r\n"
      "From b Mon Jan  1 00:00:00 2024\r\nY: 2\r\n\r\n>From q\r\n\r\n";
  auto c = Split(crlf, MboxFormat::kMboxrd);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].from_line, "a Mon Jan  1 00:00:00 2024");
  EXPECT_EQ(c[0].bytes, "X: 1\r\n\r\nbody\r\n");
  EXPECT_EQ(c[1].offset, crlf.find("From b"));
  EXPECT_EQ(c[1].bytes, "Y: 2\r\n\r\nFrom q\r\n");
}

TEST(Mbox, EmptyInputAndNotAnMbox) {
  EXPECT_TRUE(Split("", MboxFormat::kMboxrd).empty());
  for (std::string_view bad : {"Subject: hi\n\nFrom x\n", "\nFrom x\n", "Fro", "from x\n"}) {
    Status s = SplitMbox(bad, MboxFormat::kMboxrd,
                         [](MboxMessage&&) { return Status::Internal("must not be called"); });
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("not an mbox file"), std::string::npos) << s.message();
  }
  TempDir t;
  WriteBytes(t / "empty.mbox", "");
  auto r = MboxReader::Open(t / "empty.mbox", MboxFormat::kMboxrd);
  ASSERT_TRUE(r.ok());
  MboxMessage m;
  auto n = r->Next(&m);
  ASSERT_TRUE(n.ok());
  EXPECT_FALSE(*n);

  WriteBytes(t / "notes.txt", "Dear diary\nFrom today on\n");
  auto bad = MboxReader::Open(t / "notes.txt", MboxFormat::kMboxrd);
  ASSERT_TRUE(bad.ok());
  auto e = bad->Next(&m);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().message(),
            "not an mbox file: " + (t / "notes.txt") + " does not start with a From_ line");
  auto after = bad->Next(&m);  // finished after an error
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(*after);

  auto missing = MboxReader::Open(t / "missing.mbox", MboxFormat::kMboxrd);
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.status().IsNotFound());
}

TEST(Mbox, CallbackErrorStopsTheSplit) {
  int calls = 0;
  Status s = SplitMbox("From a\nx\n\nFrom b\ny\n\nFrom c\nz\n", MboxFormat::kMboxrd,
                       [&](MboxMessage&&) {
                         ++calls;
                         return Status::Aborted("enough");
                       });
  EXPECT_EQ(s.code(), Status::Code::kAborted);
  EXPECT_EQ(calls, 1);
}

TEST(Mbox, WriterEscapesBothFormats) {
  const std::string msg = "Subject: s\n\nFrom a\n>From b\nplain\nno newline";
  std::string rd;
  AppendMboxMessage(&rd, "sender@example.com Mon Jan  1 00:00:00 2024", msg, MboxFormat::kMboxrd);
  EXPECT_EQ(rd,
            "From sender@example.com Mon Jan  1 00:00:00 2024\n"
            "Subject: s\n\n>From a\n>>From b\nplain\nno newline\n\n");
  std::string o;
  AppendMboxMessage(&o, "x\ny", msg, MboxFormat::kMboxo);
  EXPECT_EQ(o, "From x y\nSubject: s\n\n>From a\n>From b\nplain\nno newline\n\n");
  auto back = Split(o, MboxFormat::kMboxo);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].bytes, "Subject: s\n\nFrom a\nFrom b\nplain\nno newline\n");  // mboxo is lossy
}

// A message body made of lines that exercise escaping and separators.
std::string RandomMessage(std::mt19937_64& rng, size_t max_lines) {
  static const char* kLines[] = {"From x\n", ">From y\n",  ">>From z\n", "\n",     "\r\n",
                                 "text\n",   "From\n",     ">\n",        "text\r\n", "From  \n",
                                 "> From\n", "Subject: s\n"};
  std::string m;
  const size_t n = rng() % (max_lines + 1);
  for (size_t i = 0; i < n; ++i) m += kLines[rng() % std::size(kLines)];
  return m;
}

TEST(Mbox, MboxrdRoundTripIsExact) {
  std::mt19937_64 rng(42);
  std::vector<std::string> msgs;
  std::string data;
  for (int i = 0; i < 2000; ++i) {
    msgs.push_back(RandomMessage(rng, 12));
    AppendMboxMessage(&data, "u" + std::to_string(i) + " date", msgs.back(), MboxFormat::kMboxrd);
  }
  auto back = Split(data, MboxFormat::kMboxrd);
  ASSERT_EQ(back.size(), msgs.size());
  for (size_t i = 0; i < msgs.size(); ++i) {
    EXPECT_EQ(back[i].bytes, msgs[i]) << i;
    EXPECT_EQ(back[i].from_line, "u" + std::to_string(i) + " date");
  }
}

TEST(Mbox, FileReaderMatchesMemorySplitterOnALargeFile) {
  std::mt19937_64 rng(7);
  std::string data;
  std::vector<std::string> msgs;
  while (data.size() < 6u << 20) {
    std::string m = "Subject: message " + std::to_string(msgs.size()) + "\n\n" + RandomMessage(rng, 40);
    const size_t filler = rng() % 4096;
    m += std::string(filler, 'x') + "\n";
    if (msgs.size() == 100) m += std::string(700 * 1024, 'L') + "\n";  // longer than a read
    msgs.push_back(m);
    AppendMboxMessage(&data, "sender" + std::to_string(msgs.size()) + " date", m,
                      MboxFormat::kMboxrd);
  }
  data += "From last\nSubject: last\n\nno newline";  // last line without "\n"

  TempDir t;
  const std::string path = t / "big.mbox";
  WriteBytes(path, data);
  auto mem = Split(data, MboxFormat::kMboxrd);
  ASSERT_EQ(mem.size(), msgs.size() + 1);
  auto reader = MboxReader::Open(path, MboxFormat::kMboxrd);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  size_t i = 0;
  MboxMessage m;
  while (true) {
    auto more = reader->Next(&m);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    ASSERT_LT(i, mem.size());
    EXPECT_EQ(m.from_line, mem[i].from_line) << i;
    EXPECT_EQ(m.offset, mem[i].offset) << i;
    ASSERT_EQ(m.bytes, mem[i].bytes) << i;
    if (i < msgs.size()) {
      ASSERT_EQ(m.bytes, msgs[i]) << i;
    }
    ++i;
  }
  EXPECT_EQ(i, mem.size());
  EXPECT_EQ(mem.back().bytes, "Subject: last\n\nno newline");
  EXPECT_EQ(reader->bytes_read(), data.size());
  // A moved reader keeps its state.
  MboxReader moved = std::move(*reader);
  auto end = moved.Next(&m);
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(*end);
}

TEST(Mbox, ReaderHandlesAFinalFromLineWithoutNewline) {
  TempDir t;
  const std::string data = "From a\nbody\n\nFrom b";
  WriteBytes(t / "x.mbox", data);
  auto r = MboxReader::Open(t / "x.mbox", MboxFormat::kMboxo);
  ASSERT_TRUE(r.ok());
  std::vector<MboxMessage> got;
  MboxMessage m;
  while (true) {
    auto more = r->Next(&m);
    ASSERT_TRUE(more.ok());
    if (!*more) break;
    got.push_back(m);
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].bytes, "body\n");
  EXPECT_EQ(got[1].from_line, "b");
  EXPECT_EQ(got[1].bytes, "");
  EXPECT_EQ(got[1].offset, 13u);
}

// ---------------------------------------------------------------- props

const char kSimple[] =
    "From: Alice Example <alice@example.com>\n"
    "To: bob@example.com, \"Carol C.\" <carol@example.com>\n"
    "Subject: Quarterly report\n"
    "Date: Tue, 01 Oct 2024 12:34:56 +0200\n"
    "Message-ID: <abc.123@example.com>\n"
    "\n"
    "Hello Bob,\nhere it is.\n";

TEST(MimeProps, SimpleMessage) {
  auto p = ExtractProps(kSimple);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->subject, "Quarterly report");
  EXPECT_EQ(p->sender, "Alice Example <alice@example.com>");
  EXPECT_EQ(p->recipients, (std::vector<std::string>{"bob@example.com", "carol@example.com"}));
  ASSERT_TRUE(p->date_unix_us.has_value());
  EXPECT_EQ(*p->date_unix_us, int64_t(1727778896) * 1000000);
  EXPECT_EQ(p->message_id, "abc.123@example.com");
  EXPECT_FALSE(p->multipart);
  EXPECT_EQ(p->attachment_count, 0u);
}

TEST(MimeProps, EncodedWordsAndBareAddresses) {
  auto p = ExtractProps(
      "From: bob@example.com\n"
      "Subject: =?UTF-8?B?w4lsw6h2ZSDinJMgY2Fmw6k=?=\n"
      "\n"
      "x\n");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->subject, "\xc3\x89l\xc3\xa8ve \xe2\x9c\x93 caf\xc3\xa9");  // Élève ✓ café
  EXPECT_EQ(p->sender, "bob@example.com");
  EXPECT_TRUE(p->recipients.empty());
  EXPECT_FALSE(p->date_unix_us.has_value());
  EXPECT_EQ(p->message_id, "");

  auto q = ExtractProps(
      "From: =?ISO-8859-1?Q?Andr=E9?= <andre@example.com>\n"
      "Subject: =?ISO-8859-1?Q?caf=E9?= au lait\n"
      "\n");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->subject, "caf\xc3\xa9 au lait");
  EXPECT_EQ(q->sender, "Andr\xc3\xa9 <andre@example.com>");
}

bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    }
    i += n;
  }
  return true;
}

TEST(MimeProps, RawEightBitHeadersComeBackAsUtf8) {
  auto p = ExtractProps("From: J\xf6rg <j@example.com>\nSubject: caf\xe9 \xff\xfe\n\nx\n");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_TRUE(IsValidUtf8(p->subject)) << p->subject;
  EXPECT_EQ(p->subject.substr(0, 3), "caf");
  EXPECT_TRUE(IsValidUtf8(p->sender)) << p->sender;
  EXPECT_NE(p->sender.find("<j@example.com>"), std::string::npos);
}

TEST(MimeProps, RecipientsAcrossToCcBccAndGroups) {
  auto p = ExtractProps(
      "From: a@example.com\n"
      "To: one@example.com, \"Two\" <two@example.com>\n"
      "Cc: team: three@example.com, four@example.com;, five@example.com\n"
      "Bcc: six@example.com\n"
      "Subject: s\n"
      "\n"
      "b\n");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->recipients,
            (std::vector<std::string>{"one@example.com", "two@example.com", "three@example.com",
                                      "four@example.com", "five@example.com", "six@example.com"}));
}

TEST(MimeProps, MultipartWithBase64Attachment) {
  auto p = ExtractProps(
      "From: a@example.com\n"
      "To: b@example.com\n"
      "Subject: report attached\n"
      "MIME-Version: 1.0\n"
      "Content-Type: multipart/mixed; boundary=\"XYZ\"\n"
      "\n"
      "preamble\n"
      "--XYZ\n"
      "Content-Type: text/plain; charset=utf-8\n"
      "\n"
      "See attached.\n"
      "--XYZ\n"
      "Content-Type: application/pdf; name=\"report.pdf\"\n"
      "Content-Disposition: attachment; filename=\"report.pdf\"\n"
      "Content-Transfer-Encoding: base64\n"
      "\n"
      "JVBERi0xLjQgZmFrZSBwZGYgYnl0ZXMKJVBERi0xLjQgZmFrZSBwZGYgYnl0ZXMKJVBERi0xLjQgZmFrZSBwZGYgYnl0ZXMK\n"
      "--XYZ--\n");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_TRUE(p->multipart);
  EXPECT_EQ(p->attachment_count, 1u);
  EXPECT_EQ(p->subject, "report attached");
}

TEST(MimeProps, NotAMessageIsAnErrorNotACrash) {
  for (std::string_view bad :
       {std::string_view(""), std::string_view("\n\nbody only"),
        std::string_view("no colon on this first line\nX: y\n"), std::string_view(": empty name\n"),
        std::string_view("\x00\x01\x02\xff\xfe garbage", 10)}) {
    auto r = ExtractProps(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_TRUE(r.status().IsCorruption());
    EXPECT_NE(r.status().message().find("no header block"), std::string::npos);
  }
  // Random bytes behind a valid first line: parsed or refused, never a crash.
  std::mt19937_64 rng(1);
  for (int i = 0; i < 500; ++i) {
    std::string junk = "X-Junk: 1\n";
    const size_t n = rng() % 2000;
    for (size_t j = 0; j < n; ++j) junk += char(rng() % 256);
    auto r = ExtractProps(junk);
    EXPECT_TRUE(r.ok() || r.status().IsCorruption()) << r.status().ToString();
  }
  auto header_only = ExtractProps("Subject: only a header");
  ASSERT_TRUE(header_only.ok());
  EXPECT_EQ(header_only->subject, "only a header");
}

TEST(MimeProps, SafeFromManyThreads) {
  // The threads make the process's first calls (ctest runs each test in its
  // own process), so GMime's one-time initialisation races too.
  MessageProps want;
  want.subject = "Quarterly report";
  want.recipients = {"bob@example.com", "carol@example.com"};
  want.date_unix_us = int64_t(1727778896) * 1000000;
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 300; ++i) {
        auto p = ExtractProps(kSimple);
        if (!p.ok() || p->subject != want.subject || p->recipients != want.recipients ||
            p->date_unix_us != want.date_unix_us) {
          ++mismatches;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace mbx::mail
