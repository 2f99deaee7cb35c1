// mbxmove certs create | link
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "net/certs.h"
#include "net/link_proxy.h"

namespace mbx::cli {

namespace {

struct CertsArgs {
  std::string out, org_name;
  std::vector<std::string> servers;
  int days = 825;
  bool force = false;
  bool json = false;
};

int RunCertsCreate(const CertsArgs& a) {
  net::CertDirOptions o;
  o.out_dir = a.out;
  o.org_name = a.org_name;
  o.servers = a.servers;
  o.days = a.days;
  o.force = a.force;
  auto files = net::CreateCertDir(o);
  if (!files.ok()) return Fail(files.status().WithContext("certs create"));
  if (a.json) {
    json j = json::array();
    for (const auto& f : *files) j.push_back(f.string());
    PrintJson({{"out", a.out}, {"org_name", a.org_name}, {"days", a.days}, {"files", j}});
  } else {
    for (const auto& f : *files) std::printf("wrote %s\n", f.c_str());
  }
  return kExitOk;
}

struct LinkArgs {
  std::string listen = "127.0.0.1:0", to;
  std::string delay = "0", jitter = "0", rate = "0";
  std::string cut_after, stall_after;
};

int RunLink(const LinkArgs& a) {
  net::LinkOptions o;
  auto listen = net::ParseHostPort(a.listen);
  if (!listen.ok()) return Fail(listen.status().WithContext("--listen"));
  o.listen = *listen;
  auto to = net::ParseHostPort(a.to);
  if (!to.ok()) return Fail(to.status().WithContext("--to"));
  if (to->port == 0) return Fail(Status::InvalidArgument("--to: the target port must not be 0"));
  o.to = *to;
  auto delay = net::ParseDuration(a.delay);
  if (!delay.ok()) return Fail(delay.status().WithContext("--delay"));
  o.delay = *delay;
  auto jitter = net::ParseDuration(a.jitter);
  if (!jitter.ok()) return Fail(jitter.status().WithContext("--jitter"));
  o.jitter = *jitter;
  auto rate = net::ParseRate(a.rate);
  if (!rate.ok()) return Fail(rate.status().WithContext("--rate"));
  o.rate_bytes_per_s = *rate;
  if (!a.cut_after.empty()) {
    auto b = ParseBytes(a.cut_after);
    if (!b.ok()) return Fail(b.status().WithContext("--cut-after"));
    o.cut_after_bytes = *b;
  }
  if (!a.stall_after.empty()) {
    auto b = ParseBytes(a.stall_after);
    if (!b.ok()) return Fail(b.status().WithContext("--stall-after"));
    o.stall_after_bytes = *b;
  }

  // SIGINT/SIGTERM are blocked before the proxy thread starts (it inherits
  // the mask), so only this thread receives them, in sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto proxy = net::LinkProxy::Start(o);
  if (!proxy.ok()) {
    pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);
    return Fail(proxy.status());
  }
  std::printf("listening on %s\n", (*proxy)->address().ToString().c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "link %s -> %s: delay %s, jitter %s, rate %s%s%s\n",
               (*proxy)->address().ToString().c_str(), o.to.ToString().c_str(), a.delay.c_str(),
               a.jitter.c_str(), o.rate_bytes_per_s ? a.rate.c_str() : "unlimited",
               o.cut_after_bytes ? (", cut after " + a.cut_after).c_str() : "",
               o.stall_after_bytes ? (", stall after " + a.stall_after).c_str() : "");
  int sig = 0;
  sigwait(&stop_signals, &sig);
  (*proxy)->Stop();
  std::fprintf(stderr, "link stopped by %s: %llu connections, %llu bytes forwarded\n",
               sig == SIGINT ? "SIGINT" : "SIGTERM", (unsigned long long)(*proxy)->connections_accepted(),
               (unsigned long long)(*proxy)->bytes_forwarded());
  return kExitOk;
}

}  // namespace

void AddNetCommands(CLI::App& app, int* exit_code) {
  CLI::App* certs = app.add_subcommand("certs", "Certificates for mutual TLS between mbxmove processes");
  certs->require_subcommand(1);
  auto c = std::make_shared<CertsArgs>();
  CLI::App* create = certs->add_subcommand(
      "create",
      "Make a CA (ca.pem, ca.key), a server certificate per server (server-NAME.pem/.key: serverAuth, "
      "DNS:localhost, IP:127.0.0.1, DNS:NAME) and a client certificate (client.pem/.key), ECDSA P-256. "
      "The folder is created 0700, every file is 0600");
  create->add_option("--out", c->out, "Folder for the certificates and keys")->required();
  create->add_option("--org-name", c->org_name, "Organisation name (subject O of every certificate)")->required();
  create->add_option("--servers", c->servers, "Server names, comma separated (default: SERVER1)")->delimiter(',');
  create->add_option("--days", c->days, "Validity of every certificate, in days")
      ->check(CLI::Range(1, 36500))->capture_default_str();
  create->add_flag("--force", c->force, "Replace existing certificate and key files");
  create->add_flag("--json", c->json, "Print JSON");
  create->callback([c, exit_code] { *exit_code = RunCertsCreate(*c); });

  auto l = std::make_shared<LinkArgs>();
  CLI::App* link = app.add_subcommand(
      "link",
      "Emulate a network link: a TCP proxy adding one-way delay, jitter, a rate limit and faults. "
      "Prints 'listening on HOST:PORT' on stdout; stops on SIGINT/SIGTERM");
  link->add_option("--listen", l->listen, "HOST:PORT to listen on (port 0: the OS picks one)")->capture_default_str();
  link->add_option("--to", l->to, "HOST:PORT to forward every connection to")->required();
  link->add_option("--delay", l->delay, "One-way delay in each direction: 25ms, 1s, 500us")->capture_default_str();
  link->add_option("--jitter", l->jitter, "Uniform +- jitter on the delay (never reorders)")->capture_default_str();
  link->add_option("--rate", l->rate, "Rate per direction: 100Mbit, 1Gbit (bits) or 10MB, 1MiB (bytes); 0 = unlimited")
      ->capture_default_str();
  link->add_option("--cut-after", l->cut_after,
                   "Close both sockets after this many bytes forwarded, per connection, both directions counted");
  link->add_option("--stall-after", l->stall_after,
                   "Stop forwarding silently (sockets stay open) after this many bytes, per connection, both "
                   "directions counted");
  link->callback([l, exit_code] { *exit_code = RunLink(*l); });
}

}  // namespace mbx::cli
