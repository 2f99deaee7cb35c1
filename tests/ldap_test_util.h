// The tests' LDAP server: one private slapd per test process (net/slapd.h),
// started on first use and stopped when the process exits (and killed with
// it if it crashes, PR_SET_PDEATHSIG), and a fresh base DN for each
// organisation or test that asks.
//
// MBX_TEST_DIRECTORY=ldap makes the engine fixtures (tests/move_fixture.h,
// the crash tests) keep their organisations' directories there; ctest
// registers those binaries a second time with it (label 'ldap').
#pragma once

#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>

#include "net/slapd.h"
#include "store/directory.h"
#include "store/organization.h"
#include "tests/test_util.h"

namespace mbx::testing {

inline bool UseLdapDirectory() {
  const char* v = std::getenv("MBX_TEST_DIRECTORY");
  return v && std::string(v) == "ldap";
}

// The process's slapd; aborts the test program, quoting why, when it cannot
// start (no slapd installed: tools/dev.sh deps).
inline Slapd& SharedSlapd() {
  struct Server {
    TempDir dir;  // destroyed after the server
    std::unique_ptr<Slapd> slapd;
  };
  static Server* server = [] {
    auto* s = new Server();
    auto r = Slapd::Start(s->dir / "slapd");
    if (!r.ok()) {
      std::fprintf(stderr, "cannot start the tests' slapd: %s\n", r.status().ToString().c_str());
      std::abort();
    }
    s->slapd = std::move(r).value();
    // Stopped at exit: the process's static destructors run this.
    static std::unique_ptr<Server> owner(s);
    return s;
  }();
  return *server->slapd;
}

// A base DN under the shared slapd that nothing else in this process uses.
inline LdapConfig FreshLdapBase(const std::string& prefix = "t") {
  static std::atomic<int> n{0};
  return SharedSlapd().ConfigFor("ou=" + prefix + std::to_string(n.fetch_add(1)) + "," + Slapd::kSuffix);
}

// An organisation in `dir` whose directory is LDAP (under MBX_TEST_DIRECTORY=ldap)
// or embedded.
inline Result<std::unique_ptr<Organization>> CreateTestOrganization(const std::string& dir) {
  if (!UseLdapDirectory()) return Organization::OpenOrCreate(dir);
  const LdapConfig c = FreshLdapBase("org");
  return Organization::OpenOrCreate(dir, {}, &c);
}

// Copies every record of one directory into another (a template
// organisation's directory into a copy of its folder).
inline Status CopyDirectoryRecords(Directory& from, Directory& to) {
  std::vector<StoreRecord> stores;
  MBX_RETURN_IF_ERROR(from.ListStores(&stores));
  for (const auto& s : stores) MBX_RETURN_IF_ERROR(to.PutStore(s));
  std::vector<ServerRecord> servers;
  MBX_RETURN_IF_ERROR(from.ListServers(&servers));
  for (const auto& s : servers) MBX_RETURN_IF_ERROR(to.PutServer(s));
  std::vector<UserRecord> users;
  MBX_RETURN_IF_ERROR(from.ListUsers(&users));
  MBX_RETURN_IF_ERROR(to.PutUsers(users));
  std::vector<MoveRecord> moves;
  MBX_RETURN_IF_ERROR(from.ListMoves(&moves));
  for (const auto& m : moves) MBX_RETURN_IF_ERROR(to.PutMove(m));
  return Status::Ok();
}

}  // namespace mbx::testing
