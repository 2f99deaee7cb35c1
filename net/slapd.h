// A private OpenLDAP server for tests, the demo and benchmarks: slapd from
// Debian's package, started by this process (never a system service) with
// back-mdb, the core/cosine/inetorgperson schemas and the project's own
// (tools/ldap/mbxmove.schema, compiled into the program), a generated admin
// password in an owner-only file, listening on 127.0.0.1 on a port the OS
// chose. Everything lives in one owner-only folder:
//
//   DIR/slapd.conf  DIR/db/  DIR/password  DIR/slapd.pid  DIR/slapd.json (url, suffix, bind DN)
//
// The destructor stops the server (SIGTERM, then SIGKILL after a grace
// period), so a failing test still stops it.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "store/ldap_directory.h"
#include "store/status.h"

namespace mbx {

class Slapd {
 public:
  static constexpr const char* kSuffix = "dc=mbxmove,dc=test";

  // Creates DIR if needed and starts slapd there; ready (answers a bind)
  // when this returns. An existing DIR/db is kept (a restart).
  static Result<std::unique_ptr<Slapd>> Start(const std::string& dir);
  ~Slapd();

  std::string url() const;       // "ldap://127.0.0.1:PORT"
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // A configuration for an organisation under `base` (e.g. "ou=org1," + kSuffix).
  LdapConfig ConfigFor(const std::string& base) const;

  Status Stop();     // SIGTERM, wait; SIGKILL after 10 s
  Status Kill();     // SIGKILL, wait (a crash)
  Status Restart();  // start again on the same port and data (after Stop or Kill)

  // For `tools/dev.sh slapd stop DIR`: stops the server whose pid file is in DIR.
  static Status StopIn(const std::string& dir);

 private:
  Slapd() = default;
  Status Launch();
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace mbx
