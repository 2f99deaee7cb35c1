// StoreServer: `mbxmove serve`, an information-store server. It opens the
// stores registered to one server name in an organisation's directory (and
// holds them: no other process can open them while it runs) and answers
// rpc/store_service.proto for them, over mutual TLS only.
//
// Logging, sync modes, quotas and crash recovery are the store's own: a
// write is answered when the store's group-commit writer made it durable by
// the store's sync mode, exactly as for a local caller.
//
// Thread safety: gRPC's threads serve requests concurrently; every store is
// safe for that (store.h).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "rpc/store_service.grpc.pb.h"
#include "store/organization.h"
#include "store/status.h"

namespace grpc {
class Server;
}

namespace mbx::rpc {

struct ServeOptions {
  std::string server;                     // server name in the directory ("SERVER1")
  std::string listen = "127.0.0.1:0";     // port 0: the OS picks one (see port())
  std::string certs_dir;                  // ca.pem, server-<server>.pem/.key
  size_t max_message_bytes = 64u << 20;   // larger requests are refused, not read
  size_t max_read_chunk_bytes = 4u << 20; // bound on records per read-stream message
};

class StoreServiceImpl;

// The service alone, answering for `stores` (named as in the directory),
// without listening anywhere: what StoreServer serves, for the fuzzer and
// tests. The stores must outlive it. `max_message_bytes` bounds an answer
// (ReadChanges pages its items to fit and refuses only one item larger than
// a message), as ServeOptions does.
std::unique_ptr<StoreService::Service> MakeStoreService(const std::string& server,
                                                        std::map<std::string, Store*> stores,
                                                        size_t max_read_chunk_bytes = 4u << 20,
                                                        size_t max_message_bytes = 64u << 20);

class StoreServer {
 public:
  // Opens every store of `options.server` (refused if there is none, or if
  // one is open in another process) and starts listening. `org` must
  // outlive the server.
  static Result<std::unique_ptr<StoreServer>> Start(Organization& org, const ServeOptions& options);
  ~StoreServer();

  int port() const { return port_; }
  const std::vector<std::string>& stores() const { return stores_; }

  // Stops taking requests, lets those in flight finish for up to `grace`,
  // cancels the rest, and makes every store's acknowledged writes durable.
  void Shutdown(std::chrono::milliseconds grace);

 private:
  StoreServer() = default;
  Organization* org_ = nullptr;
  std::unique_ptr<StoreServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::vector<std::string> stores_;
  bool shut_down_ = false;
};

}  // namespace mbx::rpc
