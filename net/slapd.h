// A private OpenLDAP server for tests, the demo and benchmarks: slapd from
// Debian's package, started by this process (never a system service) with
// back-mdb, the core/cosine/inetorgperson schemas and the project's own
// (tools/ldap/mbxmove.schema, compiled into the program), a generated admin
// password in an owner-only file, listening on 127.0.0.1 on a port the OS
// chose. Everything lives in one owner-only folder:
//
//   DIR/slapd.conf  DIR/mbxmove.schema  DIR/db/  DIR/password (0600)
//   DIR/slapd.pid   DIR/slapd.log (its stderr)
//   DIR/slapd.json  {"url", "suffix", "bind_dn", "password_file", "pid"}
//
// slapd runs in the foreground (-d 0) as this process's child, so its pid is
// the one fork returned; on Linux it is also killed when the thread that
// started it exits (PR_SET_PDEATHSIG), so a crashed test leaves no server.
// The suffix entry (kSuffix, a 'domain') exists once Start returns.
// The destructor stops the server (SIGTERM, then SIGKILL after a grace
// period), so a failing test still stops it.
//
// Thread safety: one thread at a time per Slapd (the tests' fixture thread).
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

  static constexpr const char* kBinary = "/usr/sbin/slapd";

  struct Options {
    // Load tools/ldap/mbxmove.schema. Off only for tests of the "schema not
    // loaded" error.
    bool project_schema = true;
    // Not tied to this process (`mbxmove dev slapd start`): no
    // PR_SET_PDEATHSIG, a session of its own (setsid), so it outlives the
    // program that started it; call Release() before the Slapd is destroyed
    // and stop it later with StopIn(dir).
    bool detached = false;
  };

  // Creates DIR (owner-only) if needed and starts slapd there on a port the
  // OS chose; ready (answers a bind as the admin) when this returns, within
  // about 10 s, or an error quoting slapd's stderr. An existing DIR/db and
  // DIR/password are kept (a restart). IOError "slapd not installed" when
  // /usr/sbin/slapd is missing.
  static Result<std::unique_ptr<Slapd>> Start(const std::string& dir, const Options& options);
  static Result<std::unique_ptr<Slapd>> Start(const std::string& dir) { return Start(dir, Options{}); }
  ~Slapd();

  std::string url() const;       // "ldap://127.0.0.1:PORT"
  const std::string& dir() const { return dir_; }
  std::string bind_dn() const;   // "cn=admin," + kSuffix
  std::string password_file() const { return dir_ + "/password"; }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }  // -1 when stopped
  bool running() const { return pid_ > 0; }
  // A configuration for an organisation under `base` (e.g. "ou=org1," + kSuffix).
  LdapConfig ConfigFor(const std::string& base) const;

  // Leaves the server running: this object forgets it (the destructor then
  // does nothing). For a detached server; StopIn(dir) stops it.
  void Release() { pid_ = -1; }

  Status Stop();     // SIGTERM, wait; SIGKILL after 10 s
  Status Kill();     // SIGKILL, wait (a crash)
  // Starts again on the same port and data (after Stop or Kill); ready when
  // it returns, like Start.
  Status Restart();

  // For `tools/dev.sh slapd stop DIR`: stops the server whose pid file is in DIR.
  // The pid file must name a running slapd (checked in /proc), so a stale
  // file never kills another program.
  static Status StopIn(const std::string& dir);

 private:
  Slapd() = default;
  // Writes the configuration files (keeping DIR/password if present).
  Status WriteConfig();
  // fork/exec slapd on port_ and waits until it answers a bind; Busy when
  // slapd could not listen on port_ (another process took it meanwhile), so
  // Start can choose another.
  Status Launch();
  Status WaitReady();
  Status EnsureSuffix();
  std::string dir_;
  Options options_;
  std::string password_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace mbx
