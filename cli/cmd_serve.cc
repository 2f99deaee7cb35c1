// mbxmove serve | server add | server list
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "rpc/remote_store.h"
#include "rpc/store_server.h"
#include "store/organization.h"

namespace mbx::cli {

rpc::RemoteOptions DefaultRemoteOptions(const std::string& org_dir) {
  rpc::RemoteOptions o;
  const char* env = std::getenv("MBX_CERTS");
  o.certs_dir = env && *env ? env : org_dir + "/certs";
  return o;
}

namespace {

struct ServeArgs {
  std::string org, server, listen = "127.0.0.1:0", certs, sync, data_sync_every;
  int grace_ms = 10000;
};

int RunServe(const ServeArgs& a) {
  // SIGTERM and SIGINT are taken by sigwait below, in this thread only: block
  // them before gRPC starts its threads, which inherit the mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  ::signal(SIGPIPE, SIG_IGN);  // a reader of our stdout that went away is no reason to stop serving

  SetLockHolderRole("mbxmove serve");
  OpenOptions oo;
  if (!a.sync.empty()) {
    auto s = ParseSyncMode(a.sync);
    if (!s.ok()) return Fail(s.status());
    oo.sync_override = *s;
  }
  if (Status d = ParseDataSyncEvery(a.data_sync_every, &oo); !d.ok()) return Fail(d.message(), kExitUsage);
  auto org = Organization::Open(a.org, oo);
  if (!org.ok()) return Fail(org.status());
  rpc::ServeOptions so;
  so.server = a.server;
  so.listen = a.listen;
  so.certs_dir = a.certs.empty() ? a.org + "/certs" : a.certs;
  auto srv = rpc::StoreServer::Start(**org, so);
  if (!srv.ok()) return Fail(srv.status());
  const auto colon = a.listen.rfind(':');
  const std::string host = colon == std::string::npos ? a.listen : a.listen.substr(0, colon);
  std::string names;
  for (const auto& n : (*srv)->stores()) names += (names.empty() ? "" : ", ") + n;
  // The first line is for scripts: they read the port from it.
  std::printf("listening on %s:%d\n", host.c_str(), (*srv)->port());
  std::fflush(stdout);
  std::fprintf(stderr, "mbxmove serve: serving %s for server %s (pid %d); SIGTERM drains and stops\n",
               names.c_str(), a.server.c_str(), int(::getpid()));
  int sig = 0;
  sigwait(&sigs, &sig);
  std::fprintf(stderr, "mbxmove serve: %s: draining requests in flight (up to %d ms), then closing the stores\n",
               sig == SIGTERM ? "SIGTERM" : "SIGINT", a.grace_ms);
  (*srv)->Shutdown(std::chrono::milliseconds(a.grace_ms));
  srv->reset();
  org->reset();
  std::fprintf(stderr, "mbxmove serve: stopped\n");
  return kExitOk;
}

struct ServerArgs {
  std::string org, server, address;
  bool json = false;
};

int RunServerAdd(const ServerArgs& a) {
  if (Status s = Organization::ValidateName("server name", a.server); !s.ok()) return Fail(s.message(), kExitUsage);
  if (!a.address.empty()) {
    const auto colon = a.address.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == a.address.size() ||
        a.address.find_first_not_of("0123456789", colon + 1) != std::string::npos) {
      return Fail("--address must be HOST:PORT, e.g. 127.0.0.1:7001 (got '" + a.address + "')", kExitUsage);
    }
  }
  auto org = Organization::Open(a.org);
  if (!org.ok()) return Fail(org.status());
  if (Status s = (*org)->directory().PutServer({a.server, a.address}); !s.ok()) return Fail(s);
  if (a.json) {
    PrintJson({{"server", a.server}, {"address", a.address}});
  } else if (a.address.empty()) {
    std::printf("server %s: local (its stores are opened by each mbxmove process)\n", a.server.c_str());
  } else {
    std::printf("server %s: at %s (its stores are reached through 'mbxmove serve' there)\n", a.server.c_str(),
                a.address.c_str());
  }
  return kExitOk;
}

int RunServerList(const ServerArgs& a) {
  auto org = Organization::Open(a.org);
  if (!org.ok()) return Fail(org.status());
  std::vector<ServerRecord> servers;
  if (Status s = (*org)->directory().ListServers(&servers); !s.ok()) return Fail(s);
  json out = json::array();
  for (const auto& s : servers) {
    out.push_back({{"server", s.name}, {"address", s.address}});
    if (!a.json) std::printf("%-12s %s\n", s.name.c_str(), s.address.empty() ? "local" : s.address.c_str());
  }
  if (a.json) PrintJson({{"servers", out}});
  return kExitOk;
}

}  // namespace

void AddServeCommands(CLI::App& app, int* exit_code) {
  auto s = std::make_shared<ServeArgs>();
  CLI::App* serve = app.add_subcommand(
      "serve",
      "Serve the stores of one server to movers over the network (gRPC, mutual TLS).\n"
      "Opens every store registered to --server and holds them until SIGTERM, which\n"
      "drains the requests in flight and closes the stores cleanly. Register the\n"
      "address movers should use with 'mbxmove server add'.");
  serve->add_option("--org", s->org, "Organisation folder")->required();
  serve->add_option("--server", s->server, "Server name (its stores are served)")->required();
  serve->add_option("--listen", s->listen, "HOST:PORT to listen on; port 0 = chosen by the OS (printed)")
      ->capture_default_str();
  serve->add_option("--certs", s->certs,
                    "Certificate folder from 'mbxmove certs create' (ca.pem, server-NAME.pem/.key); default ORG/certs");
  serve->add_option("--sync", s->sync, "Override the stores' sync mode while served: full, batch or none");
  serve->add_option("--data-sync-every", s->data_sync_every, std::string(kDataSyncEveryHelp) + " (default 64MiB)")
      ->type_name("SIZE");
  serve->add_option("--drain-ms", s->grace_ms, "On SIGTERM, how long requests in flight may take to finish")
      ->capture_default_str();
  serve->callback([s, exit_code] { *exit_code = RunServe(*s); });

  CLI::App* server = app.add_subcommand("server", "Record where servers listen (their stores are then reached remotely)");
  server->require_subcommand(1);
  auto ad = std::make_shared<ServerArgs>();
  CLI::App* add = server->add_subcommand(
      "add", "Record a server's address; an empty --address makes it local again (stores opened in-process)");
  add->add_option("--org", ad->org, "Organisation folder")->required();
  add->add_option("--server", ad->server, "Server name, as stores are registered to it")->required();
  add->add_option("--address", ad->address, "HOST:PORT where 'mbxmove serve' (or a link in front of it) listens")
      ->required();
  add->add_flag("--json", ad->json, "Print JSON");
  add->callback([ad, exit_code] { *exit_code = RunServerAdd(*ad); });
  auto ls = std::make_shared<ServerArgs>();
  CLI::App* list = server->add_subcommand("list", "List the servers with a recorded address");
  list->add_option("--org", ls->org, "Organisation folder")->required();
  list->add_flag("--json", ls->json, "Print JSON");
  list->callback([ls, exit_code] { *exit_code = RunServerList(*ls); });
}

}  // namespace mbx::cli
