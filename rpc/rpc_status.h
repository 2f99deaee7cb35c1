// Status <-> grpc::Status: a store's failure crosses the wire as itself
// (the mbxmove code rides in the grpc status's binary details); a failure of
// the transport (server gone, link cut or stalled, TLS refused, deadline)
// becomes an IOError that says which server and what happened.
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>

#include "store/status.h"

namespace mbx::rpc {

grpc::Status ToGrpc(const Status& s);
// `peer` names the other side in transport errors ("server SERVER1 at 127.0.0.1:7001").
Status FromGrpc(const grpc::Status& s, const std::string& peer);

// Trailing metadata of a ReadChanges that asked for a transition first: it
// was made (see ChangesRequest.lock_from).
inline constexpr char kLockedMetadata[] = "mbx-locked";

}  // namespace mbx::rpc
