#include "rpc/tls.h"

#include <fstream>
#include <sstream>

namespace mbx::rpc {

namespace {

Result<std::string> ReadPem(const std::string& path, const std::string& what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    return Status::NotFound("no " + what + " at " + path + " (make one with 'mbxmove certs create')");
  }
  std::ostringstream ss;
  ss << f.rdbuf();
  if (ss.str().find("-----BEGIN ") == std::string::npos) {
    return Status::InvalidArgument(path + " is not a PEM file (" + what + ")");
  }
  return ss.str();
}

}  // namespace

Result<std::shared_ptr<grpc::ServerCredentials>> ServerTlsCredentials(const std::string& dir,
                                                                      const std::string& server) {
  MBX_ASSIGN_OR_RETURN(std::string ca, ReadPem(dir + "/ca.pem", "CA certificate"));
  MBX_ASSIGN_OR_RETURN(std::string cert, ReadPem(dir + "/server-" + server + ".pem", "server certificate"));
  MBX_ASSIGN_OR_RETURN(std::string key, ReadPem(dir + "/server-" + server + ".key", "server key"));
  grpc::SslServerCredentialsOptions o(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  o.pem_root_certs = ca;
  o.pem_key_cert_pairs.push_back({key, cert});
  return grpc::SslServerCredentials(o);
}

Result<std::shared_ptr<grpc::ChannelCredentials>> ClientTlsCredentials(const std::string& dir) {
  grpc::SslCredentialsOptions o;
  MBX_ASSIGN_OR_RETURN(o.pem_root_certs, ReadPem(dir + "/ca.pem", "CA certificate"));
  MBX_ASSIGN_OR_RETURN(o.pem_cert_chain, ReadPem(dir + "/client.pem", "client certificate"));
  MBX_ASSIGN_OR_RETURN(o.pem_private_key, ReadPem(dir + "/client.key", "client key"));
  return grpc::SslCredentials(o);
}

}  // namespace mbx::rpc
