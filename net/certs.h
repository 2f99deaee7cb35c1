// Certificates for mutual TLS between mbxmove processes (serve, the remote
// store client): one organisation CA, a server certificate per server, one
// client certificate. ECDSA P-256 keys, SHA-256 signatures, made with
// OpenSSL 3's libcrypto.
//
// Two layers: MakeCa/IssueCert build PEM text in memory with any validity
// window (tests make expired certificates and certificates from another CA
// with them); CreateCertDir writes the standard set of files to a folder.
//
// Every function is safe to call from several threads at once (OpenSSL 3
// initialises itself; no shared state here). Failures are values: OpenSSL's
// error queue is turned into the Status message and cleared.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "store/status.h"

namespace mbx::net {

// A private key and its certificate, both PEM text. The key is PKCS#8
// ("-----BEGIN PRIVATE KEY-----"), unencrypted: the file permissions (0600)
// protect it.
struct KeyAndCert {
  std::string key_pem;
  std::string cert_pem;
};

// The validity window, relative to the moment of issue. The defaults give a
// certificate valid from one hour ago (tolerates clock skew between hosts)
// for 825 days. An expired certificate for tests: not_before = -48h,
// not_after = -24h.
struct Validity {
  std::chrono::seconds not_before{-std::chrono::hours(1)};
  std::chrono::seconds not_after{std::chrono::hours(24 * 825)};
};

// A self-signed CA certificate (basicConstraints critical CA:TRUE,
// keyUsage keyCertSign+cRLSign) with subject O=<org_name>,
// CN=<org_name> mbxmove CA. InvalidArgument for an empty name or a window
// whose not_after is not after not_before; Internal for an OpenSSL failure.
Result<KeyAndCert> MakeCa(std::string_view org_name, const Validity& validity = {});

enum class CertUsage {
  kServer,  // extendedKeyUsage serverAuth
  kClient,  // extendedKeyUsage clientAuth
};

struct IssueOptions {
  std::string common_name;             // subject CN, e.g. the server name; required
  std::string org_name;                // subject O; may be empty
  CertUsage usage = CertUsage::kServer;
  std::vector<std::string> dns_names;  // subjectAltName DNS: entries
  std::vector<std::string> ips;        // subjectAltName IP: entries ("127.0.0.1", "::1")
  Validity validity;
};

// A new key and a leaf certificate (basicConstraints CA:FALSE, keyUsage
// digitalSignature) signed by `ca`. InvalidArgument when ca's PEM does not
// parse, when the CA key does not match its certificate, or for bad options.
Result<KeyAndCert> IssueCert(const KeyAndCert& ca, const IssueOptions& options);

// What `mbxmove certs create` writes.
struct CertDirOptions {
  std::filesystem::path out_dir;
  std::string org_name;
  // One server certificate each; empty means {"SERVER1"}, the default server
  // of `store create`. A name is 1-64 of [A-Za-z0-9._-] (it becomes a file
  // name and a DNS name).
  std::vector<std::string> servers;
  int days = 825;      // validity of every certificate, 1..36500
  bool force = false;  // replace existing files instead of refusing
};

// Writes, into out_dir (created with mode 0700 if missing, parents too):
//   ca.pem, ca.key                    the CA
//   server-<NAME>.pem, server-<NAME>.key  per server: serverAuth, SAN
//                                     DNS:localhost, IP:127.0.0.1, DNS:<NAME>
//   client.pem, client.key            clientAuth, CN=mbxmove client
// Every file has mode 0600 whatever the umask. Without force, nothing is
// written if any of these files already exists (AlreadyExists names it).
// Returns the paths written, in the order above.
Result<std::vector<std::filesystem::path>> CreateCertDir(const CertDirOptions& options);

// Writes `content` to `path` with mode 0600 (fchmod after open, so the umask
// does not matter), fsynced. Without overwrite, AlreadyExists if the file exists.
Status WritePrivateFile(const std::filesystem::path& path, std::string_view content, bool overwrite);

}  // namespace mbx::net
