// Mutual TLS for the store server and its clients, from the files that
// `mbxmove certs create` writes into a certificate folder:
//   ca.pem                       the organisation's CA (both sides trust only it)
//   server-<SERVER>.pem / .key   a server's certificate and key
//   client.pem / client.key      the movers' client certificate and key
// A server requires and verifies a client certificate signed by the CA; a
// client verifies the server's certificate against the CA and its name
// against the server's name in the directory.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "store/status.h"

namespace mbx::rpc {

Result<std::shared_ptr<grpc::ServerCredentials>> ServerTlsCredentials(const std::string& certs_dir,
                                                                      const std::string& server);
Result<std::shared_ptr<grpc::ChannelCredentials>> ClientTlsCredentials(const std::string& certs_dir);

}  // namespace mbx::rpc
