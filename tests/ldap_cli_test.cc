// LDAP-backed organisations through the mbxmove program: org create / gen
// with --directory, clear errors for a bad URL, an unreachable server and a
// wrong password; an organisation moved LMDB -> LDIF -> LDAP -> LDIF -> LMDB
// with identical `stat --json` and `verify --json`, the LDIF also loadable
// with ldapadd; directory import refusing damage and other records; and the
// detached `dev slapd start/stop`.
//
// One private slapd per test process (a gtest Environment), on 127.0.0.1 on
// a port the OS chose, stopped when the tests end, also when one fails.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "net/slapd.h"
#include "tests/test_util.h"

namespace mbx {
namespace {

using json = nlohmann::json;
using testing::Mbxmove;
using testing::RunCommand;
using testing::RunJson;
using testing::TempDir;
namespace fs = std::filesystem;

class SlapdEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    auto s = Slapd::Start(dir_ / "slapd");
    ASSERT_TRUE(s.ok()) << "cannot start the tests' slapd: " << s.status().ToString();
    slapd_ = std::move(s).value();
  }
  void TearDown() override { slapd_.reset(); }  // stops it
  static Slapd& Server() { return *slapd_; }

 private:
  TempDir dir_;
  static inline std::unique_ptr<Slapd> slapd_;
};

::testing::Environment* const kSlapd = ::testing::AddGlobalTestEnvironment(new SlapdEnvironment());

// A base DN under the suffix that no other test of this process uses.
std::string FreshBase() {
  static int n = 0;
  return "ou=t" + std::to_string(n++) + "," + Slapd::kSuffix;
}

// The three options of an organisation whose directory is at `base`.
std::string DirectoryFlags(const std::string& base, const std::string& password_file = "") {
  Slapd& s = SlapdEnvironment::Server();
  return " --directory " + s.url() + "/" + base + " --bind-dn " + s.bind_dn() + " --password-file " +
         (password_file.empty() ? s.password_file() : password_file);
}

void RunOk(const std::string& args) {
  auto r = RunCommand(Mbxmove() + " " + args);
  ASSERT_EQ(r.exit_code, 0) << args << "\n" << r.err << r.out;
}

// The store folders of one organisation into another (its LOCK files left
// behind, as a copy of a closed store would be).
void CopyStores(const std::string& from, const std::string& to) {
  fs::create_directories(to + "/stores");
  for (const auto& e : fs::directory_iterator(from + "/stores")) {
    const std::string dest = to + "/stores/" + e.path().filename().string();
    fs::copy(e.path(), dest, fs::copy_options::recursive);
    fs::remove(dest + "/LOCK");
  }
}

std::string Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// An export without its first comment (folded; it names the source and the time).
std::string Body(const std::string& ldif) {
  std::string out;
  std::stringstream ss(ldif);
  std::string line;
  bool in_header = false;
  while (std::getline(ss, line)) {
    if (line.rfind("# mbxmove directory export", 0) == 0) in_header = true;
    else if (in_header && line.rfind(' ', 0) == 0) continue;
    else in_header = false;
    if (!in_header) out += line + "\n";
  }
  return out;
}

// A port nothing listens on (bound and released).
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

TEST(LdapCliTest, OrganisationMovesFromLmdbToLdapAndBackWithNothingLost) {
  TempDir t;
  const std::string a = t / "a", b = t / "b", c = t / "c";
  RunOk("gen --org " + a + " --store MS1 --preset tiny --mailboxes 6 --json");
  RunOk("store create --org " + a + " --store MS2 --server SERVER2");
  RunOk("server add --org " + a + " --server SERVER3 --address 127.0.0.1:7003");
  json stat_a = RunJson("stat --org " + a + " --json");
  ASSERT_EQ(stat_a["mailboxes"].size(), 6u);
  const std::string u0 = stat_a["mailboxes"][0]["owner"], u1 = stat_a["mailboxes"][1]["owner"],
                    u2 = stat_a["mailboxes"][2]["owner"];
  // Some mailboxes elsewhere, soft-deleted copies left behind.
  RunOk("move --org " + a + " --to MS2 --mailbox " + u0 + " --mailbox " + u1 + " --keep-source --json");
  stat_a = RunJson("stat --org " + a + " --json");
  const json verify_a = RunJson("verify --org " + a + " --json");
  ASSERT_TRUE(verify_a["clean"].get<bool>()) << verify_a.dump(2);

  // LMDB -> LDIF: owner-only.
  const std::string base_b = FreshBase();
  RunOk("directory export --org " + a + " --ldif " + t / "a.ldif" + " --base-dn " + base_b);
  struct stat st {};
  ASSERT_EQ(::stat((t / "a.ldif").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string a_ldif = Slurp(t / "a.ldif");
  EXPECT_NE(a_ldif.find("msExchMailboxGuid:: "), std::string::npos);
  EXPECT_NE(a_ldif.find("mbxServerAddress: 127.0.0.1:7003\n"), std::string::npos);

  // LDIF -> an organisation in LDAP.
  RunOk("org create --org " + b + DirectoryFlags(base_b));
  json show = RunJson("org show --org " + b + " --json");
  EXPECT_EQ(show["backend"], "ldap");
  EXPECT_EQ(show["users"], 0);
  CopyStores(a, b);
  json imported = RunJson("directory import --org " + b + " --ldif " + t / "a.ldif" + " --json");
  EXPECT_EQ(imported["users"], 6);
  EXPECT_EQ(imported["stores"], 2);
  EXPECT_EQ(imported["servers"], 1);
  EXPECT_EQ(imported["added"], 9);
  EXPECT_EQ(RunJson("stat --org " + b + " --json"), stat_a);
  EXPECT_EQ(RunJson("verify --org " + b + " --json"), verify_a);

  // Every command works on it: the same move in both gives the same result.
  json move_b = RunJson("move --org " + b + " --to MS2 --mailbox " + u2 + " --json");
  RunOk("move --org " + a + " --to MS2 --mailbox " + u2 + " --json");
  EXPECT_EQ(move_b["totals"]["mailboxes_completed"], 1);
  EXPECT_EQ(move_b["directory"]["backend"], "ldap");
  const double ops = move_b["directory"]["operations_per_mailbox"].get<double>();
  EXPECT_GT(ops, 0.0);
  EXPECT_LE(ops, 60.0);
  EXPECT_GT(move_b["directory"]["switch_p50_ms"].get<double>(), 0.0);
  stat_a = RunJson("stat --org " + a + " --json");
  EXPECT_EQ(RunJson("stat --org " + b + " --json"), stat_a);

  // LDAP -> LDIF: the same file as the embedded directory's.
  RunOk("directory export --org " + b + " --ldif " + t / "b.ldif");
  RunOk("directory export --org " + a + " --ldif " + t / "a2.ldif" + " --base-dn " + base_b);
  EXPECT_EQ(Body(Slurp(t / "b.ldif")), Body(Slurp(t / "a2.ldif")));

  // LDIF -> an embedded directory again (the import creates the organisation).
  RunOk("directory import --org " + c + " --ldif " + t / "b.ldif");
  CopyStores(b, c);
  EXPECT_EQ(RunJson("org show --org " + c + " --json")["backend"], "lmdb");
  EXPECT_EQ(RunJson("stat --org " + c + " --json"), stat_a);
  EXPECT_EQ(RunJson("verify --org " + c + " --json"), RunJson("verify --org " + a + " --json"));

  // The file is LDIF that ldapadd loads: an organisation opened on what it added.
  if (std::system("command -v ldapadd >/dev/null 2>&1") == 0) {
    const std::string base_d = FreshBase(), d = t / "d";
    RunOk("directory export --org " + c + " --ldif " + t / "d.ldif" + " --base-dn " + base_d);
    Slapd& s = SlapdEnvironment::Server();
    auto add = RunCommand("ldapadd -x -H " + s.url() + " -D " + s.bind_dn() + " -w \"$(cat " + s.password_file() +
                          ")\" -f " + t / "d.ldif");
    ASSERT_EQ(add.exit_code, 0) << add.err << add.out;
    RunOk("org create --org " + d + DirectoryFlags(base_d));
    CopyStores(c, d);
    EXPECT_EQ(RunJson("stat --org " + d + " --json"), stat_a);
    EXPECT_TRUE(RunJson("verify --org " + d + " --json")["clean"].get<bool>());
  }
}

TEST(LdapCliTest, BadDirectoryOptionsFailClearlyAndCreateNothing) {
  TempDir t;
  const std::string org = t / "o";
  Slapd& s = SlapdEnvironment::Server();
  const std::string base = FreshBase();
  {
    std::ofstream(t / "wrong") << "not-the-password\n";
    std::ofstream(t / "open") << "not-the-password\n";
  }
  fs::permissions(t / "wrong", fs::perms::owner_read | fs::perms::owner_write);
  fs::permissions(t / "open", fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read);
  struct Case {
    std::string args;
    int exit_code;
    std::string expect;
  };
  const std::string tail = " --bind-dn " + s.bind_dn() + " --password-file " + s.password_file();
  const int free_port = FreePort();
  const std::vector<Case> cases = {
      {" --directory http://127.0.0.1:1/" + base + tail, 2, "--directory http://127.0.0.1:1/"},
      {" --directory " + s.url() + tail, 2, "--directory " + s.url()},
      {" --directory " + s.url() + "/" + base, 2, "needs --bind-dn DN and --password-file FILE"},
      {" --bind-dn " + s.bind_dn(), 2, "--bind-dn and --password-file go with --directory"},
      {" --directory ldap://127.0.0.1:" + std::to_string(free_port) + "/" + base + tail, 1,
       "cannot reach the directory server ldap://127.0.0.1:" + std::to_string(free_port)},
      {DirectoryFlags(base, t / "wrong"), 2, "refused the bind as cn=admin,dc=mbxmove,dc=test: wrong password?"},
      {DirectoryFlags(base, t / "missing-file"), 1, "missing-file"},
      {DirectoryFlags(base, t / "open"), 2, "chmod 600"},
  };
  for (const auto& c : cases) {
    for (const std::string& cmd : {"org create --org " + org, "gen --org " + org + " --store MS1 --preset tiny"}) {
      SCOPED_TRACE(cmd + c.args);
      auto r = RunCommand(Mbxmove() + " " + cmd + c.args);
      EXPECT_EQ(r.exit_code, c.exit_code) << r.err;
      EXPECT_EQ(r.err.rfind("mbxmove: error: ", 0), 0u) << r.err;
      EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
      EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;  // one line
      EXPECT_FALSE(fs::exists(org)) << "a failed creation left " << org;
    }
  }
  // With the right options it works, and a second --directory elsewhere is refused.
  RunOk("gen --org " + org + " --store MS1 --preset tiny --mailboxes 3" + DirectoryFlags(base));
  EXPECT_FALSE(fs::exists(org + "/directory"));
  EXPECT_TRUE(fs::exists(org + "/directory.json"));
  EXPECT_TRUE(RunJson("verify --org " + org + " --json")["clean"].get<bool>());
  RunOk("import --org " + org + " --store MS2 --mbox /dev/null --user empty" + DirectoryFlags(base));
  json show = RunJson("org show --org " + org + " --json");
  EXPECT_EQ(show["users"], 4);
  EXPECT_EQ(show["stores"], 2);
  auto other = RunCommand(Mbxmove() + " gen --org " + org + " --store MS3 --preset tiny" + DirectoryFlags(FreshBase()));
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_NE(other.err.find("is already an organisation, with its directory in " + s.url() + "/" + base),
            std::string::npos)
      << other.err;
  auto again = RunCommand(Mbxmove() + " org create --org " + org);
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("is already an organisation"), std::string::npos) << again.err;
}

TEST(LdapCliTest, DirectoryImportRefusesDamageAndOtherRecordsChangingNothing) {
  TempDir t;
  const std::string a = t / "a", f = t / "f";
  RunOk("gen --org " + a + " --store MS1 --preset tiny --mailboxes 4");
  RunOk("directory export --org " + a + " --ldif " + t / "a.ldif");
  const std::string good = Slurp(t / "a.ldif");
  // Another organisation's directory in LDAP.
  RunOk("gen --org " + f + " --store MS1 --preset tiny --mailboxes 3 --seed 7" + DirectoryFlags(FreshBase()));
  RunOk("directory export --org " + f + " --ldif " + t / "f-before.ldif");
  auto r = RunCommand(Mbxmove() + " directory import --org " + f + " --ldif " + t / "a.ldif");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("already holds"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("nothing was written"), std::string::npos) << r.err;
  RunOk("directory export --org " + f + " --ldif " + t / "f-after.ldif");
  EXPECT_EQ(Body(Slurp(t / "f-before.ldif")), Body(Slurp(t / "f-after.ldif")));

  // Damaged files: refused naming the line, before anything is created.
  const size_t guid = good.find("msExchMailboxGuid:: ");
  ASSERT_NE(guid, std::string::npos);
  std::string flipped = good;
  flipped[guid + 21] = '*';
  const std::vector<std::pair<std::string, std::string>> damaged = {
      {good.substr(0, good.size() / 2), "line "},
      {good.substr(0, good.rfind("\n\ndn:") + 2), "the file was cut short"},
      {flipped, "line " + std::to_string(std::count(good.begin(), good.begin() + guid, '\n') + 1) +
                    ": the base64 value of msExchMailboxGuid is damaged"},
  };
  for (const auto& [text, expect] : damaged) {
    std::ofstream(t / "bad.ldif", std::ios::binary | std::ios::trunc) << text;
    for (const std::string& org : {t / "new", f}) {
      SCOPED_TRACE(org + ": " + expect);
      auto d = RunCommand(Mbxmove() + " directory import --org " + org + " --ldif " + t / "bad.ldif" +
                          DirectoryFlags(FreshBase()));
      EXPECT_EQ(d.exit_code, 1);
      EXPECT_NE(d.err.find(t / "bad.ldif: "), std::string::npos) << d.err;
      EXPECT_NE(d.err.find(expect), std::string::npos) << d.err;
    }
    EXPECT_FALSE(fs::exists(t / "new"));
  }
  RunOk("directory export --org " + f + " --ldif " + t / "f-after.ldif");
  EXPECT_EQ(Body(Slurp(t / "f-before.ldif")), Body(Slurp(t / "f-after.ldif")));
  // The same file into the organisation it came from: nothing to add, no error.
  json same = RunJson("directory import --org " + a + " --ldif " + t / "a.ldif" + " --json");
  EXPECT_EQ(same["added"], 0);
  EXPECT_EQ(same["unchanged"], 5);
}

// True while `pid` is a live slapd (a zombie is not).
bool SlapdAlive(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return false;
  const size_t close = line.rfind(')');
  return line.find("(slapd)") != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

TEST(LdapCliTest, DevSlapdStartsDetachedAndStops) {
  TempDir t;
  const std::string dir = t / "slapd";
  // Stopped even when an assertion below fails.
  struct Stopper {
    std::string dir;
    ~Stopper() { (void)Slapd::StopIn(dir); }
  } stopper{dir};
  auto start = RunCommand(Mbxmove() + " dev slapd start " + dir);
  ASSERT_EQ(start.exit_code, 0) << start.err;
  for (const char* want : {"url            ldap://127.0.0.1:", "bind DN        cn=admin,dc=mbxmove,dc=test",
                           "password file  ", "--directory ldap://127.0.0.1:"}) {
    EXPECT_NE(start.out.find(want), std::string::npos) << want << "\n" << start.out;
  }
  json info = RunJson("dev slapd start " + dir + " --json");
  EXPECT_TRUE(info["already_running"].get<bool>());
  const int pid = info["pid"].get<int>();
  EXPECT_TRUE(SlapdAlive(pid)) << "slapd did not outlive 'dev slapd start'";
  struct stat st {};
  ASSERT_EQ(::stat(info["password_file"].get<std::string>().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // An organisation in it.
  const std::string base = std::string("ou=dev,") + Slapd::kSuffix;
  RunOk("org create --org " + t / "o" + " --directory " + info["url"].get<std::string>() + "/" + base +
        " --bind-dn " + info["bind_dn"].get<std::string>() + " --password-file " +
        info["password_file"].get<std::string>());
  EXPECT_EQ(RunJson("org show --org " + t / "o" + " --json")["backend"], "ldap");
  auto stop = RunCommand(Mbxmove() + " dev slapd stop " + dir);
  EXPECT_EQ(stop.exit_code, 0) << stop.err;
  for (int i = 0; i < 500 && SlapdAlive(pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(SlapdAlive(pid));
  auto again = RunCommand(Mbxmove() + " dev slapd stop " + dir);
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("no slapd running in " + dir), std::string::npos) << again.err;
  // The organisation now names a server that is gone: a clear error.
  auto gone = RunCommand(Mbxmove() + " stat --org " + t / "o");
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_NE(gone.err.find(info["url"].get<std::string>().substr(7)), std::string::npos) << gone.err;
}

// The new commands are listed and explained, and a mistyped one is named
// with the nearest, as for every other command.
TEST(LdapCliTest, HelpListsTheCommandsAndMistypesAreNamed) {
  auto help = RunCommand(Mbxmove() + " --help");
  EXPECT_EQ(help.exit_code, 0);
  for (const char* cmd : {"org", "directory", "dev"}) EXPECT_NE(help.out.find(cmd), std::string::npos) << cmd;
  auto create = RunCommand(Mbxmove() + " org create --help");
  EXPECT_EQ(create.exit_code, 0);
  for (const char* opt : {"--directory", "--bind-dn", "--password-file", "ldap://"}) {
    EXPECT_NE(create.out.find(opt), std::string::npos) << opt;
  }
  for (const char* cmd : {"gen --help", "import --help", "directory import --help"}) {
    auto r = RunCommand(Mbxmove() + " " + cmd);
    EXPECT_NE(r.out.find("--directory"), std::string::npos) << cmd;
  }
  auto bench = RunCommand(Mbxmove() + " bench --help");
  EXPECT_NE(bench.out.find("--directory"), std::string::npos);
  const std::vector<std::pair<std::string, std::string>> typos = {
      {"dev slapd strat /tmp/x", "unknown command 'dev slapd strat'\ndid you mean 'dev slapd start'?"},
      {"directory exprot --org x", "unknown command 'directory exprot'\ndid you mean 'directory export'?"},
      {"org craete --org x", "unknown command 'org craete'\ndid you mean 'org create'?"},
  };
  for (const auto& [args, expect] : typos) {
    auto r = RunCommand(Mbxmove() + " " + args);
    EXPECT_EQ(r.exit_code, 2) << args;
    EXPECT_NE(r.err.find(expect), std::string::npos) << r.err;
  }
  auto bad = RunCommand(Mbxmove() + " bench --directory openldap");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--directory must be lmdb or ldap"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace mbx
