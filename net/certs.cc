#include "net/certs.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <system_error>

namespace mbx::net {

namespace {

template <auto Fn>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    Fn(p);
  }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION_free>>;

// "<what>: <OpenSSL's reasons>" as an Internal error; drains the thread's
// OpenSSL error queue so the next call starts clean.
Status OpenSslError(std::string_view what) {
  std::string msg(what);
  std::string reasons;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!reasons.empty()) reasons += "; ";
    reasons += buf;
  }
  msg += ": ";
  msg += reasons.empty() ? "OpenSSL reported no reason" : reasons;
  return Status::Internal(std::move(msg));
}

Status CheckValidity(const Validity& v) {
  if (v.not_after <= v.not_before)
    return Status::InvalidArgument("certificate validity: not_after must be later than not_before");
  return Status::Ok();
}

// Characters allowed in a subjectAltName entry given to OpenSSL's config
// syntax (a comma would start a new entry) and in a file name.
bool IsSafeName(std::string_view s, bool allow_star) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '-' || c == '_' || (allow_star && c == '*');
    if (!ok) return false;
  }
  return true;
}

Result<PkeyPtr> NewP256Key() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return OpenSslError("generating an ECDSA P-256 key");
  return key;
}

Result<std::string> KeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return OpenSslError("writing a private key as PEM");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, size_t(n));
}

Result<std::string> CertToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return OpenSslError("writing a certificate as PEM");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, size_t(n));
}

Status AddNameEntry(X509_NAME* name, const char* field, std::string_view value) {
  if (value.empty()) return Status::Ok();
  if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(value.data()),
                                 int(value.size()), -1, 0) != 1)
    return OpenSslError(std::string("setting the subject ") + field + " '" + std::string(value) + "'");
  return Status::Ok();
}

Status AddExt(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str()));
  if (!ext) return OpenSslError(std::string("building the ") + OBJ_nid2sn(nid) + " extension '" + value + "'");
  if (X509_add_ext(cert, ext.get(), -1) != 1)
    return OpenSslError(std::string("adding the ") + OBJ_nid2sn(nid) + " extension");
  return Status::Ok();
}

// A certificate with a random 127-bit serial, the window, the subject and the
// public key of `key`; extensions and signature are the caller's.
Result<X509Ptr> NewCert(EVP_PKEY* key, const Validity& v, std::string_view org, std::string_view cn) {
  X509Ptr cert(X509_new());
  if (!cert) return OpenSslError("allocating a certificate");
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1) return OpenSslError("setting the certificate version");
  BnPtr serial(BN_new());
  if (!serial || BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())))
    return OpenSslError("choosing a serial number");
  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), long(v.not_before.count())) ||
      !X509_gmtime_adj(X509_getm_notAfter(cert.get()), long(v.not_after.count())))
    return OpenSslError("setting the validity window");
  if (X509_set_pubkey(cert.get(), key) != 1) return OpenSslError("setting the public key");
  X509_NAME* name = X509_get_subject_name(cert.get());
  MBX_RETURN_IF_ERROR(AddNameEntry(name, "O", org));
  MBX_RETURN_IF_ERROR(AddNameEntry(name, "CN", cn));
  return cert;
}

Status Sign(X509* cert, EVP_PKEY* signer) {
  if (X509_sign(cert, signer, EVP_sha256()) <= 0) return OpenSslError("signing the certificate");
  return Status::Ok();
}

}  // namespace

Result<KeyAndCert> MakeCa(std::string_view org_name, const Validity& validity) {
  if (org_name.empty()) return Status::InvalidArgument("the organisation name of a CA must not be empty");
  MBX_RETURN_IF_ERROR(CheckValidity(validity));
  ERR_clear_error();
  MBX_ASSIGN_OR_RETURN(PkeyPtr key, NewP256Key());
  std::string cn = std::string(org_name) + " mbxmove CA";
  MBX_ASSIGN_OR_RETURN(X509Ptr cert, NewCert(key.get(), validity, org_name, cn));
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get())) != 1)
    return OpenSslError("setting the CA's issuer name");
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  MBX_RETURN_IF_ERROR(AddExt(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE"));
  MBX_RETURN_IF_ERROR(AddExt(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"));
  MBX_RETURN_IF_ERROR(AddExt(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  MBX_RETURN_IF_ERROR(Sign(cert.get(), key.get()));
  KeyAndCert out;
  MBX_ASSIGN_OR_RETURN(out.key_pem, KeyToPem(key.get()));
  MBX_ASSIGN_OR_RETURN(out.cert_pem, CertToPem(cert.get()));
  return out;
}

Result<KeyAndCert> IssueCert(const KeyAndCert& ca, const IssueOptions& o) {
  if (o.common_name.empty()) return Status::InvalidArgument("a certificate needs a common name");
  MBX_RETURN_IF_ERROR(CheckValidity(o.validity));
  std::string san;
  for (const auto& d : o.dns_names) {
    if (!IsSafeName(d, /*allow_star=*/true))
      return Status::InvalidArgument("subjectAltName DNS name '" + d + "' is empty or has characters other than " +
                                     "letters, digits, '.', '-', '_', '*'");
    san += (san.empty() ? "DNS:" : ",DNS:") + d;
  }
  for (const auto& ip : o.ips) {
    unsigned char buf[16];
    if (inet_pton(AF_INET, ip.c_str(), buf) != 1 && inet_pton(AF_INET6, ip.c_str(), buf) != 1)
      return Status::InvalidArgument("subjectAltName IP '" + ip + "' is not an IPv4 or IPv6 address");
    san += (san.empty() ? "IP:" : ",IP:") + ip;
  }
  ERR_clear_error();
  BioPtr kbio(BIO_new_mem_buf(ca.key_pem.data(), int(ca.key_pem.size())));
  PkeyPtr ca_key(kbio ? PEM_read_bio_PrivateKey(kbio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!ca_key) return Status::InvalidArgument(OpenSslError("reading the CA private key").message());
  BioPtr cbio(BIO_new_mem_buf(ca.cert_pem.data(), int(ca.cert_pem.size())));
  X509Ptr ca_cert(cbio ? PEM_read_bio_X509(cbio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!ca_cert) return Status::InvalidArgument(OpenSslError("reading the CA certificate").message());
  if (X509_check_private_key(ca_cert.get(), ca_key.get()) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument("the CA private key does not belong to the CA certificate");
  }

  MBX_ASSIGN_OR_RETURN(PkeyPtr key, NewP256Key());
  MBX_ASSIGN_OR_RETURN(X509Ptr cert, NewCert(key.get(), o.validity, o.org_name, o.common_name));
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert.get())) != 1)
    return OpenSslError("setting the issuer name");
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, ca_cert.get(), cert.get(), nullptr, nullptr, 0);
  MBX_RETURN_IF_ERROR(AddExt(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE"));
  MBX_RETURN_IF_ERROR(AddExt(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature"));
  MBX_RETURN_IF_ERROR(AddExt(cert.get(), &ctx, NID_ext_key_usage,
                             o.usage == CertUsage::kServer ? "serverAuth" : "clientAuth"));
  MBX_RETURN_IF_ERROR(AddExt(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  MBX_RETURN_IF_ERROR(AddExt(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always"));
  if (!san.empty()) MBX_RETURN_IF_ERROR(AddExt(cert.get(), &ctx, NID_subject_alt_name, san));
  MBX_RETURN_IF_ERROR(Sign(cert.get(), ca_key.get()));
  KeyAndCert out;
  MBX_ASSIGN_OR_RETURN(out.key_pem, KeyToPem(key.get()));
  MBX_ASSIGN_OR_RETURN(out.cert_pem, CertToPem(cert.get()));
  return out;
}

Status WritePrivateFile(const std::filesystem::path& path, std::string_view content, bool overwrite) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (overwrite ? O_TRUNC : O_EXCL);
  int fd = ::open(path.c_str(), flags, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return Status::AlreadyExists(path.string() + " already exists (use --force to replace it)");
    return PosixError("creating", path.string(), errno);
  }
  // The mode given to open() is masked by the umask, and an existing file
  // keeps its mode: set it explicitly, before any secret is written.
  Status st;
  if (::fchmod(fd, 0600) != 0) st = PosixError("chmod 0600", path.string(), errno);
  size_t done = 0;
  while (st.ok() && done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) st = PosixError("writing", path.string(), errno);
    else done += size_t(n);
  }
  if (st.ok() && ::fsync(fd) != 0) st = PosixError("fsync", path.string(), errno);
  if (::close(fd) != 0 && st.ok()) st = PosixError("closing", path.string(), errno);
  return st;
}

Result<std::vector<std::filesystem::path>> CreateCertDir(const CertDirOptions& o) {
  namespace fs = std::filesystem;
  if (o.out_dir.empty()) return Status::InvalidArgument("no output folder given");
  if (o.org_name.empty()) return Status::InvalidArgument("the organisation name must not be empty");
  if (o.days < 1 || o.days > 36500) return Status::InvalidArgument("--days must be between 1 and 36500");
  std::vector<std::string> servers = o.servers.empty() ? std::vector<std::string>{"SERVER1"} : o.servers;
  for (size_t i = 0; i < servers.size(); ++i) {
    const auto& s = servers[i];
    if (s.size() > 64 || !IsSafeName(s, /*allow_star=*/false))
      return Status::InvalidArgument("server name '" + s + "' must be 1-64 letters, digits, '.', '-' or '_'");
    for (size_t j = 0; j < i; ++j)
      if (servers[j] == s) return Status::InvalidArgument("server name '" + s + "' is given twice");
  }

  std::vector<fs::path> files{o.out_dir / "ca.pem", o.out_dir / "ca.key"};
  for (const auto& s : servers) {
    files.push_back(o.out_dir / ("server-" + s + ".pem"));
    files.push_back(o.out_dir / ("server-" + s + ".key"));
  }
  files.push_back(o.out_dir / "client.pem");
  files.push_back(o.out_dir / "client.key");

  std::error_code ec;
  if (fs::exists(o.out_dir, ec)) {
    if (!fs::is_directory(o.out_dir, ec)) return Status::InvalidArgument(o.out_dir.string() + " is not a folder");
    if (!o.force) {
      for (const auto& f : files)
        if (fs::exists(fs::symlink_status(f, ec)))
          return Status::AlreadyExists(f.string() + " already exists (use --force to replace the certificates)");
    }
  } else {
    if (o.out_dir.has_parent_path() && !o.out_dir.parent_path().empty()) {
      fs::create_directories(o.out_dir.parent_path(), ec);
      if (ec) return Status::IOError("creating " + o.out_dir.parent_path().string() + ": " + ec.message());
    }
    if (::mkdir(o.out_dir.c_str(), 0700) != 0) return PosixError("creating folder", o.out_dir.string(), errno);
    // mkdir's mode is masked by the umask: set it.
    if (::chmod(o.out_dir.c_str(), 0700) != 0) return PosixError("chmod 0700", o.out_dir.string(), errno);
  }

  // Everything is made in memory first, so an OpenSSL failure writes nothing.
  Validity validity;
  validity.not_after = std::chrono::hours(24) * o.days;
  MBX_ASSIGN_OR_RETURN(KeyAndCert ca, MakeCa(o.org_name, validity));
  std::vector<std::string> contents{ca.cert_pem, ca.key_pem};
  for (const auto& s : servers) {
    IssueOptions io;
    io.common_name = s;
    io.org_name = o.org_name;
    io.usage = CertUsage::kServer;
    io.dns_names = {"localhost", s};
    io.ips = {"127.0.0.1"};
    io.validity = validity;
    MBX_ASSIGN_OR_RETURN(KeyAndCert kc, IssueCert(ca, io));
    contents.push_back(std::move(kc.cert_pem));
    contents.push_back(std::move(kc.key_pem));
  }
  IssueOptions co;
  co.common_name = "mbxmove client";
  co.org_name = o.org_name;
  co.usage = CertUsage::kClient;
  co.validity = validity;
  MBX_ASSIGN_OR_RETURN(KeyAndCert client, IssueCert(ca, co));
  contents.push_back(std::move(client.cert_pem));
  contents.push_back(std::move(client.key_pem));

  for (size_t i = 0; i < files.size(); ++i) MBX_RETURN_IF_ERROR(WritePrivateFile(files[i], contents[i], o.force));
  return files;
}

}  // namespace mbx::net
