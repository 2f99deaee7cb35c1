// RemoteStore: the StoreHandle of a store served by `mbxmove serve` on
// another host, over one gRPC channel with mutual TLS.
//
// Latency is what this is built around: a mailbox read is one server stream
// (flow-controlled: the server sends as fast as the window the client
// grants), and writes are asynchronous calls of a whole batch each, so the
// mover keeps several batches (a bandwidth-delay product) in flight and a
// mailbox costs a handful of round trips, not one per item.
//
// Failure: every call has a deadline; keepalive pings find a link that
// stalled silently; a failed call is an IOError naming the server, so the
// move fails cleanly (or recovery finishes it past its switch).
//
// Ordering: batches in flight at the same time may be applied in any order
// (each is a call of its own); one submitted after another was answered is
// applied after it. A move writes disjoint items in parallel and its header
// only after all of them, so that is all it needs.
//
// Thread safety: safe for concurrent use; a read stream from one thread at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "store/organization.h"
#include "store/store_handle.h"

namespace mbx::rpc {

struct RemoteOptions {
  std::string certs_dir;                               // ca.pem, client.pem, client.key
  std::chrono::milliseconds connect_timeout{10000};    // first call, TLS handshake included
  std::chrono::milliseconds call_timeout{60000};       // each unary call (a write waits for durability)
  std::chrono::milliseconds stream_timeout{3600000};   // a whole mailbox read
  std::chrono::milliseconds keepalive{2000};           // ping interval; a stall is found within ~2x
  size_t read_chunk_bytes = 1u << 20;                  // records per read-stream message
  size_t max_message_bytes = 64u << 20;
};

// Round trips made by remote calls in this process (unary calls and read
// streams opened), for the benchmark's "round trips per item".
uint64_t RemoteRoundTrips();

// Connects to store `store` on server `server` at `address` and checks
// that the server serves it; the TLS handshake happens here, so a refused
// certificate is an error now, before any request.
Result<std::unique_ptr<StoreHandle>> ConnectRemoteStore(const std::string& address, const std::string& server,
                                                        const std::string& store, const RemoteOptions& options);

// Makes `org` reach stores on servers with an address through ConnectRemoteStore.
void InstallRemoteConnector(Organization& org, const RemoteOptions& options);

}  // namespace mbx::rpc
