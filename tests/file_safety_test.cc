// What mbxmove reads and what it creates. Import reads nothing outside the
// tree it is given: message files and folders that are symlinks (to files
// outside, to other users' folders, loops), FIFOs and devices in cur/ and
// new/, and files replaced by one of those after the scan are skipped with a
// warning and counted, and no byte of what they point to reaches the store.
// Everything mbxmove creates (organisation, stores, logs, backups, directory,
// reports, exports) is owner-only (folders 0700, files 0600) under umask 022.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <set>

#include "engine/mailio/maildir.h"
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

void MakeFolder(const std::string& dir) {
  for (const char* d : {"cur", "new", "tmp"}) fs::create_directories(dir + "/" + d);
}

std::string Message(const std::string& subject) {
  return "From: a@example.com\nTo: b@example.com\nSubject: " + subject + "\nMessage-ID: <" + subject +
         "@example.com>\n\nbody of " + subject + "\n";
}

constexpr char kSecret[] = "root:SECRET-SHADOW-HASH:19000:0:99999:7:::\n";
constexpr char kOtherUser[] = "OTHER-USER-PRIVATE-MAIL";

// Every byte of every regular file under `dir`.
std::string AllBytes(const std::string& dir) {
  std::string all;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) all += ReadAll(e.path().string());
  }
  return all;
}

// A user's Maildir holding two ordinary messages and every kind of entry
// that leads outside it or is not a file; returns how many entries must be
// skipped. `outside` holds the secret file and another user's Maildir.
int BuildHostileMaildir(const std::string& root, const std::string& outside) {
  WriteFile(outside + "/shadow", kSecret);
  MakeFolder(outside + "/bob");
  MakeFolder(outside + "/bob/.Private");
  WriteFile(outside + "/bob/cur/1.bob:2,S", Message(kOtherUser));
  WriteFile(outside + "/bob/.Private/cur/2.bob:2,S", Message(kOtherUser));

  MakeFolder(root);
  WriteFile(root + "/cur/1.ok:2,S", Message("ordinary-one"));
  WriteFile(root + "/new/2.ok", Message("ordinary-two"));
  int skipped = 0;
  auto link = [&](const std::string& target, const std::string& at) {
    EXPECT_EQ(::symlink(target.c_str(), (root + "/" + at).c_str()), 0) << at << ": " << std::strerror(errno);
    ++skipped;
  };
  link(outside + "/shadow", "cur/5.link:2,S");                  // a file outside the tree
  link(outside + "/bob/cur/1.bob:2,S", "cur/6.other:2,S");      // another user's message
  link(outside + "/bob/.Private", ".Other");                     // another user's folder
  link(".", ".Loop");                                            // a loop back to the root
  link(root + "/.Loop", ".Loop2");                               // a chain into the loop
  MakeFolder(root + "/.Sub");
  fs::remove(root + "/.Sub/cur");
  link(outside + "/bob/cur", ".Sub/cur");                        // a folder's cur/ elsewhere
  EXPECT_EQ(::mkfifo((root + "/new/7.fifo").c_str(), 0600), 0);  // FIFOs must not block
  EXPECT_EQ(::mkfifo((root + "/cur/8.fifo:2,S").c_str(), 0600), 0);
  EXPECT_EQ(::mknod((root + "/cur/9.dev:2,S").c_str(), S_IFCHR | 0600, makedev(1, 5)), 0)  // /dev/zero
      << std::strerror(errno);
  skipped += 3;
  return skipped;
}

class FileSafetyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    old_umask_ = ::umask(022);  // the usual umask; children inherit it
    org_ = tmp_ / "org";
    RunJson("store create --org " + org_ + " --store S1 --json");
  }
  void TearDown() override { ::umask(old_umask_); }
  TempDir tmp_;
  std::string org_;
  mode_t old_umask_ = 0;
};

TEST_F(FileSafetyTest, ImportReadsNothingOutsideTheTreeAndCountsWhatItSkipped) {
  const std::string src = tmp_ / "alice", outside = tmp_ / "outside";
  const int expect_skipped = BuildHostileMaildir(src, outside);
  // `timeout` only guards the run: an import that blocked on a FIFO or read
  // /dev/zero forever would end with 124 and fail here.
  auto r = RunCommand("timeout 120 " + Mbxmove() + " import --org " + org_ + " --store S1 --maildir " + src +
                      " --user alice --json");
  ASSERT_EQ(r.exit_code, 3) << "some entries are skipped: exit 3\n" << r.err;
  const json imp = json::parse(r.out);
  EXPECT_EQ(imp["messages"], 2);
  EXPECT_EQ(imp["skipped"], expect_skipped);
  const auto& warnings = imp["mailboxes"][0]["warnings"];
  std::string all_warnings;
  for (const auto& w : warnings) all_warnings += w.get<std::string>() + "\n";
  for (const char* name : {"5.link", "6.other", ".Other", ".Loop", ".Loop2", ".Sub/cur", "7.fifo", "8.fifo",
                           "9.dev"}) {
    EXPECT_NE(all_warnings.find(name), std::string::npos) << name << " not reported:\n" << all_warnings;
  }
  EXPECT_NE(all_warnings.find("symbolic link"), std::string::npos) << all_warnings;
  EXPECT_NE(all_warnings.find("a FIFO"), std::string::npos) << all_warnings;
  EXPECT_NE(all_warnings.find("a character device"), std::string::npos) << all_warnings;
  // Nothing from outside reached the store: the export holds the two
  // ordinary messages only.
  const std::string out = tmp_ / "out";
  const json exp = RunJson("export --org " + org_ + " --mailbox alice --maildir " + out + " --json");
  EXPECT_EQ(exp["messages"], 2);
  const std::string bytes = AllBytes(out);
  EXPECT_EQ(bytes.find("SECRET-SHADOW"), std::string::npos);
  EXPECT_EQ(bytes.find(kOtherUser), std::string::npos);
  EXPECT_NE(bytes.find("ordinary-one"), std::string::npos);
  EXPECT_NE(bytes.find("ordinary-two"), std::string::npos);
  // The store's own files hold none of it either (zstd or not, the subject
  // line of the other user's message would be stored verbatim in the index).
  const std::string store_bytes = AllBytes(org_ + "/stores/S1");
  EXPECT_EQ(store_bytes.find("SECRET-SHADOW"), std::string::npos);
  EXPECT_EQ(store_bytes.find(kOtherUser), std::string::npos);
}

TEST_F(FileSafetyTest, AMaildirRootNeverFollowsAUserFolderSymlink) {
  const std::string root = tmp_ / "root", outside = tmp_ / "outside";
  MakeFolder(root + "/ann");
  WriteFile(root + "/ann/cur/1.ann:2,S", Message("ann-mail"));
  MakeFolder(outside + "/bob");
  WriteFile(outside + "/bob/cur/1.bob:2,S", Message(kOtherUser));
  ASSERT_EQ(::symlink((outside + "/bob").c_str(), (root + "/mallory").c_str()), 0);
  fs::create_directories(root + "/eve");
  ASSERT_EQ(::symlink((outside + "/bob").c_str(), (root + "/eve/Maildir").c_str()), 0);
  auto r = RunCommand(Mbxmove() + " import --org " + org_ + " --store S1 --maildir-root " + root + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json imp = json::parse(r.out);
  ASSERT_EQ(imp["mailboxes"].size(), 1u) << imp.dump();
  EXPECT_EQ(imp["mailboxes"][0]["user"], "ann");
  EXPECT_NE(r.err.find(root + "/mallory"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(root + "/eve/Maildir"), std::string::npos) << r.err;
  EXPECT_EQ(AllBytes(org_ + "/stores/S1").find(kOtherUser), std::string::npos);
}

// Between the scan and the read a message is replaced by a symlink to a
// secret, by a FIFO, and a folder's cur/ by a symlink to another user's:
// each read is refused and reads nothing from outside.
TEST_F(FileSafetyTest, AFileReplacedAfterTheScanIsRefused) {
  const std::string root = tmp_ / "m", outside = tmp_ / "outside";
  WriteFile(outside + "/shadow", kSecret);
  MakeFolder(outside + "/bob");
  WriteFile(outside + "/bob/cur/3.x:2,S", Message(kOtherUser));
  MakeFolder(root);
  MakeFolder(root + "/.Work");
  WriteFile(root + "/cur/1.x:2,S", Message("one"));
  WriteFile(root + "/cur/2.x:2,S", Message("two"));
  WriteFile(root + "/.Work/cur/3.x:2,S", Message("three"));
  std::vector<std::string> warnings;
  auto folders = mail::ScanMaildir(root, &warnings);
  ASSERT_TRUE(folders.ok()) << folders.status().ToString();
  ASSERT_EQ(folders->size(), 2u);
  const mail::MaildirFolder& inbox = (*folders)[0];
  const mail::MaildirFolder& work = (*folders)[1];
  ASSERT_EQ(inbox.messages.size(), 2u);
  ASSERT_EQ(work.messages.size(), 1u);
  auto files = mail::MaildirFiles::Open(root);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  // Unchanged files read whole.
  auto one = files->Read(inbox, inbox.messages[0]);
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(*one, Message("one"));
  // 2.x becomes a symlink to the secret.
  fs::remove(inbox.messages[1].path);
  ASSERT_EQ(::symlink((outside + "/shadow").c_str(), inbox.messages[1].path.c_str()), 0);
  auto two = files->Read(inbox, inbox.messages[1]);
  ASSERT_FALSE(two.ok());
  EXPECT_NE(two.status().message().find("symbolic link"), std::string::npos) << two.status().ToString();
  // Then a FIFO: refused at once, never waited on.
  fs::remove(inbox.messages[1].path);
  ASSERT_EQ(::mkfifo(inbox.messages[1].path.c_str(), 0600), 0);
  auto fifo = files->Read(inbox, inbox.messages[1]);
  ASSERT_FALSE(fifo.ok());
  EXPECT_NE(fifo.status().message().find("FIFO"), std::string::npos) << fifo.status().ToString();
  // .Work/cur becomes a symlink to another user's cur/ holding the same name.
  fs::remove_all(root + "/.Work/cur");
  ASSERT_EQ(::symlink((outside + "/bob/cur").c_str(), (root + "/.Work/cur").c_str()), 0);
  auto three = files->Read(work, work.messages[0]);
  ASSERT_FALSE(three.ok());
  EXPECT_NE(three.status().message().find("symbolic link"), std::string::npos) << three.status().ToString();
  // And the folder itself replaced by a symlink.
  fs::remove_all(root + "/.Work");
  ASSERT_EQ(::symlink((outside + "/bob").c_str(), (root + "/.Work").c_str()), 0);
  auto files2 = mail::MaildirFiles::Open(root);
  ASSERT_TRUE(files2.ok());
  auto three_again = files2->Read(work, work.messages[0]);
  ASSERT_FALSE(three_again.ok());
  EXPECT_NE(three_again.status().message().find("symbolic link"), std::string::npos)
      << three_again.status().ToString();
}

// Folders 0700 and files 0600 below `dir` (and `dir` itself when a folder);
// what is not.
std::vector<std::string> NotOwnerOnly(const std::string& dir) {
  std::vector<std::string> bad;
  auto check = [&](const fs::path& p) {
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) return;
    const mode_t m = st.st_mode & 07777;
    if (S_ISDIR(st.st_mode) && m != 0700) bad.push_back(p.string() + " is a folder of mode " + std::to_string(m));
    if (S_ISREG(st.st_mode) && m != 0600) bad.push_back(p.string() + " is a file of mode " + std::to_string(m));
  };
  check(dir);
  if (fs::is_directory(dir)) {
    for (const auto& e : fs::recursive_directory_iterator(dir)) check(e.path());
  }
  return bad;
}

TEST_F(FileSafetyTest, EverythingMbxmoveCreatesIsOwnerOnlyUnderUmask022) {
  ASSERT_EQ(::mkdir((tmp_ / "made").c_str(), 0700), 0);
  const std::string org = tmp_ / "made/org";
  ASSERT_EQ(RunCommand(Mbxmove() + " gen --org " + org + " --store MS1 --preset tiny --seed 3").exit_code, 0);
  ASSERT_EQ(RunCommand(Mbxmove() + " store create --org " + org + " --store MS2").exit_code, 0);
  RunJson("move --org " + org + " --from MS1 --to MS2 --report " + (tmp_ / "made/report.json") + " --json");
  RunJson("backup --org " + org + " --store MS2 --out " + (tmp_ / "made/backups/full") + " --json");
  RunJson("move --org " + org + " --from MS2 --to MS1 --json");
  RunJson("backup --org " + org + " --store MS2 --out " + (tmp_ / "made/backups/inc") + " --incremental --json");
  RunJson("store compact --org " + org + " --store MS2 --json");
  RunJson("export --org " + org + " --all --maildir " + (tmp_ / "made/export") + " --json");
  RunJson("restore --org " + org + " --store MS2 --from " + (tmp_ / "made/backups/full") + " --from " +
          (tmp_ / "made/backups/inc") + " --json");
  // An import's mailbox too.
  fs::create_directories(tmp_ / "src/cur");
  fs::create_directories(tmp_ / "src/new");
  WriteFile(tmp_ / "src/cur/1.x:2,S", Message("mine"));
  RunJson("import --org " + org + " --store MS1 --maildir " + (tmp_ / "src") + " --user zed --json");
  std::set<std::string> seen;
  for (const auto& e : fs::recursive_directory_iterator(tmp_ / "made")) seen.insert(e.path().filename().string());
  for (const char* f : {"data.mdb", "lock.mdb", "LOCK", "E00.chk", "backup.json", "report.json", "maildirfolder"}) {
    EXPECT_TRUE(seen.count(f)) << f << " was not created, so not checked";
  }
  std::string bad;
  for (const auto& b : NotOwnerOnly(tmp_ / "made")) bad += "\n  " + b;
  EXPECT_TRUE(bad.empty()) << "not owner-only:" << bad;
}

}  // namespace
}  // namespace mbx::testing
