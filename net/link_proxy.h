// LinkProxy: a userspace TCP proxy that emulates a network link between an
// mbxmove client and a server (these machines have no kernel netem).
//
// For every accepted connection it connects to the target and pumps both
// directions independently. Each chunk read is stamped with a release time,
// read time + one-way delay (+ uniform jitter in [-jitter, +jitter], clamped
// so that chunks of one direction never overtake each other), and reading
// goes on meanwhile: up to max_buffered_bytes per direction are in flight, so
// a whole bandwidth-delay product fits. A token bucket (burst: 64 KiB or 5 ms
// of the rate, whichever is larger) limits each direction to rate_bytes_per_s.
//
// Faults, counted per connection over BOTH directions (bytes written to
// either side):
//   cut_after_bytes:   once that many bytes have been forwarded, both sockets
//                      are closed (the peers see EOF or a reset).
//   stall_after_bytes: once that many bytes have been forwarded, nothing more
//                      is written either way, and reading stops once the
//                      buffers are full; the sockets stay open (until both
//                      peers have closed their side, a peer resets, or the
//                      proxy stops).
//
// A half-close is passed on: EOF from one side becomes shutdown(SHUT_WR) on
// the other once everything read before it has been delivered.
//
// Threads: Start() runs one thread of its own with an Asio io_context; all
// connection state lives on that thread. port(), address() and the counters
// may be called from any thread. Stop() (or the destructor) closes the
// listener and every connection (delayed data not yet delivered is dropped)
// and joins the thread; call it from any thread but the proxy's own, and not
// from two threads at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "store/status.h"

namespace mbx::net {

struct HostPort {
  std::string host;   // a name or a numeric address, without [] for IPv6
  uint16_t port = 0;  // 0 when listening: the OS picks one
  std::string ToString() const;  // "127.0.0.1:5000", "[::1]:5000"
};

// "HOST:PORT", "[V6]:PORT", ":PORT" or "PORT" (host = default_host).
// InvalidArgument with the text for anything else.
Result<HostPort> ParseHostPort(std::string_view text, std::string_view default_host = "127.0.0.1");

// "25ms", "1s", "500us", "1.5ms", "0" (a bare number must be 0). Negative
// values are refused.
Result<std::chrono::microseconds> ParseDuration(std::string_view text);

// Link rate in bytes per second: bits with "bit"/"bps" units, powers of 1000
// ("100Mbit", "1Gbit", "64kbit", "8000bit"), or bytes as ParseBytes reads them
// ("10MB" = 10^7 B/s, "1MiB", "65536"). "0" means unlimited.
Result<uint64_t> ParseRate(std::string_view text);

struct LinkOptions {
  HostPort listen{"127.0.0.1", 0};
  HostPort to;
  std::chrono::microseconds delay{0};   // one way, each direction
  std::chrono::microseconds jitter{0};  // uniform +-jitter on top of delay
  uint64_t rate_bytes_per_s = 0;        // per direction; 0 = unlimited
  std::optional<uint64_t> cut_after_bytes;
  std::optional<uint64_t> stall_after_bytes;
  size_t max_buffered_bytes = 32u << 20;  // per direction: delayed, not yet written
};

class LinkProxy {
 public:
  // Resolves `to` and `listen`, binds and listens, and starts the proxy
  // thread. InvalidArgument for unresolvable names; IOError when the bind
  // fails (port in use, permission). The target is only connected when a
  // client arrives; if that connect fails, the client's socket is closed.
  static Result<std::unique_ptr<LinkProxy>> Start(const LinkOptions& options);

  ~LinkProxy();  // Stop()
  LinkProxy(const LinkProxy&) = delete;
  LinkProxy& operator=(const LinkProxy&) = delete;

  uint16_t port() const;           // the bound port (the OS's choice for port 0)
  const HostPort& address() const;  // the bound address

  // Idempotent; returns when the proxy thread has ended and every socket is closed.
  void Stop();

  uint64_t connections_accepted() const;
  uint64_t bytes_forwarded() const;  // both directions, all connections so far

  struct Impl;  // the io_context and its thread; in link_proxy.cc

 private:
  explicit LinkProxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mbx::net
