#include "net/link_proxy.h"

#include <algorithm>
#include <asio.hpp>
#include <atomic>
#include <cctype>
#include <cmath>
#include <deque>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

namespace mbx::net {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------- parsing

std::string HostPort::ToString() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Result<HostPort> ParseHostPort(std::string_view text, std::string_view default_host) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument("address '" + std::string(text) + "' " + std::string(why) +
                                   " (expected HOST:PORT, [IPV6]:PORT, :PORT or PORT)");
  };
  HostPort hp;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return bad("has an unterminated [IPv6] part or no port");
    hp.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      port_text = text;
    } else {
      if (text.substr(0, colon).find(':') != std::string_view::npos) return bad("has an IPv6 address without []");
      hp.host = std::string(text.substr(0, colon));
      port_text = text.substr(colon + 1);
    }
  }
  if (hp.host.empty()) hp.host = std::string(default_host);
  if (port_text.empty() || port_text.size() > 5) return bad("has no valid port");
  uint32_t port = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9') return bad("has a port that is not a number");
    port = port * 10 + uint32_t(c - '0');
  }
  if (port > 65535) return bad("has a port above 65535");
  hp.port = uint16_t(port);
  return hp;
}

namespace {

// Splits "12.5ms" into 12.5 and "ms" (unit lower-cased). False when the text
// does not start with a non-negative decimal number.
bool SplitNumber(std::string_view text, double* value, std::string* unit) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == 0) return false;
  std::string num(text.substr(0, i));
  if (std::count(num.begin(), num.end(), '.') > 1 || num == ".") return false;
  char* end = nullptr;
  *value = std::strtod(num.c_str(), &end);
  if (end != num.c_str() + num.size() || !std::isfinite(*value)) return false;
  unit->clear();
  for (char c : text.substr(i)) unit->push_back(char(std::tolower(static_cast<unsigned char>(c))));
  return true;
}

}  // namespace

Result<std::chrono::microseconds> ParseDuration(std::string_view text) {
  double v = 0;
  std::string unit;
  if (!SplitNumber(text, &v, &unit))
    return Status::InvalidArgument("duration '" + std::string(text) + "' does not start with a number (e.g. 25ms)");
  double us_per_unit;
  if (unit == "us") us_per_unit = 1;
  else if (unit == "ms") us_per_unit = 1e3;
  else if (unit == "s") us_per_unit = 1e6;
  else if (unit.empty() && v == 0) us_per_unit = 1;
  else if (unit.empty())
    return Status::InvalidArgument("duration '" + std::string(text) + "' needs a unit: us, ms or s");
  else
    return Status::InvalidArgument("duration '" + std::string(text) + "' has an unknown unit (use us, ms or s)");
  double us = v * us_per_unit;
  if (us > 3600e6) return Status::InvalidArgument("duration '" + std::string(text) + "' is longer than an hour");
  return std::chrono::microseconds(int64_t(std::llround(us)));
}

Result<uint64_t> ParseRate(std::string_view text) {
  double v = 0;
  std::string unit;
  if (!SplitNumber(text, &v, &unit))
    return Status::InvalidArgument("rate '" + std::string(text) + "' does not start with a number (e.g. 100Mbit)");
  if (unit.size() > 2 && unit.compare(unit.size() - 2, 2, "/s") == 0) unit.resize(unit.size() - 2);
  double bytes_per_s;
  auto ends_with = [&](std::string_view suffix) {
    return unit.size() >= suffix.size() && unit.compare(unit.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends_with("bit") || ends_with("bps")) {
    std::string prefix = unit.substr(0, unit.size() - 3);
    double mul;
    if (prefix.empty()) mul = 1;
    else if (prefix == "k") mul = 1e3;
    else if (prefix == "m") mul = 1e6;
    else if (prefix == "g") mul = 1e9;
    else if (prefix == "t") mul = 1e12;
    else return Status::InvalidArgument("rate '" + std::string(text) + "' has an unknown unit (use kbit, Mbit, Gbit)");
    bytes_per_s = v * mul / 8;
  } else {
    double mul;
    if (unit.empty() || unit == "b") mul = 1;
    else if (unit == "k" || unit == "kib") mul = 1024.0;
    else if (unit == "m" || unit == "mib") mul = 1024.0 * 1024;
    else if (unit == "g" || unit == "gib") mul = 1024.0 * 1024 * 1024;
    else if (unit == "kb") mul = 1e3;
    else if (unit == "mb") mul = 1e6;
    else if (unit == "gb") mul = 1e9;
    else
      return Status::InvalidArgument("rate '" + std::string(text) +
                                     "' has an unknown unit (bits: kbit, Mbit, Gbit; bytes: KB, MB, GB, KiB, MiB)");
    bytes_per_s = v * mul;
  }
  if (bytes_per_s > 1e13) return Status::InvalidArgument("rate '" + std::string(text) + "' is out of range");
  if (v > 0 && bytes_per_s < 1) return Status::InvalidArgument("rate '" + std::string(text) + "' is below 1 byte/s");
  return uint64_t(std::llround(bytes_per_s));
}

// ---------------------------------------------------------------- the proxy

namespace {

constexpr size_t kReadChunkBytes = 64 * 1024;
constexpr size_t kMinBurstBytes = 64 * 1024;

class Session;

}  // namespace

struct LinkProxy::Impl {
  explicit Impl(const LinkOptions& o) : opt(o) {}

  void Accept();
  void StopOnProxyThread();

  const LinkOptions opt;
  // Declared first: destroyed last, after everything that uses it.
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io};
  tcp::resolver::results_type targets;
  HostPort bound;
  std::thread thread;
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> forwarded{0};

  // Proxy thread only.
  bool stopping = false;
  uint64_t next_session = 0;
  std::unordered_map<uint64_t, std::weak_ptr<Session>> sessions;
};

namespace {

// One accepted connection and its upstream. Lives on the proxy thread only;
// every handler holds a shared_ptr to it, so it dies with its last handler.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(LinkProxy::Impl* proxy, uint64_t id, tcp::socket client)
      : proxy_(proxy),
        id_(id),
        client_(std::move(client)),
        upstream_(proxy->io),
        up_(proxy->io, &client_, &upstream_),
        down_(proxy->io, &upstream_, &client_),
        rng_(std::random_device{}()) {
    const auto& o = proxy_->opt;
    if (o.cut_after_bytes && (!o.stall_after_bytes || *o.cut_after_bytes <= *o.stall_after_bytes)) {
      fault_at_ = o.cut_after_bytes;
      fault_is_cut_ = true;
    } else if (o.stall_after_bytes) {
      fault_at_ = o.stall_after_bytes;
    }
    if (o.rate_bytes_per_s > 0)
      burst_ = std::max<double>(kMinBurstBytes, double(o.rate_bytes_per_s) * 0.005);
    up_.tokens = down_.tokens = burst_;
  }

  void Start() {
    asio::async_connect(upstream_, proxy_->targets, [self = shared_from_this()](std::error_code ec, const tcp::endpoint&) {
      if (self->closed_) return;
      if (ec) {
        self->Close();
        return;
      }
      std::error_code ignored;
      self->client_.set_option(tcp::no_delay(true), ignored);
      self->upstream_.set_option(tcp::no_delay(true), ignored);
      if (self->fault_at_ && *self->fault_at_ == 0) {
        self->ApplyFault();
        if (self->closed_) return;
      }
      self->Read(self->up_);
      self->Read(self->down_);
    });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    std::error_code ignored;
    client_.close(ignored);
    upstream_.close(ignored);
    up_.timer.cancel();
    down_.timer.cancel();
    proxy_->sessions.erase(id_);
  }

 private:
  struct Chunk {
    Clock::time_point release;
    std::vector<char> data;
    size_t offset = 0;  // bytes of data already written
  };
  // One direction: reads `from`, writes `to`.
  struct Pump {
    Pump(asio::io_context& io, tcp::socket* f, tcp::socket* t) : from(f), to(t), scratch(kReadChunkBytes), timer(io) {}
    tcp::socket* from;
    tcp::socket* to;
    std::vector<char> scratch;
    std::deque<Chunk> queue;  // read, not yet (fully) written, in release order
    size_t queued_bytes = 0;
    Clock::time_point last_release{};
    bool reading = false;  // a read is outstanding
    bool writing = false;  // a write or a timer wait is outstanding
    bool eof = false;      // `from` sent FIN
    bool shut = false;     // FIN passed on to `to`
    asio::steady_timer timer;
    double tokens = 0;  // token bucket, bytes
    Clock::time_point refilled = Clock::now();
  };

  void Read(Pump& p) {
    if (closed_ || p.reading || p.eof || p.queued_bytes >= proxy_->opt.max_buffered_bytes) return;
    p.reading = true;
    p.from->async_read_some(asio::buffer(p.scratch), [self = shared_from_this(), &p](std::error_code ec, size_t n) {
      p.reading = false;
      if (self->closed_) return;
      if (ec == asio::error::eof) {
        p.eof = true;
        if (self->stalled_ && self->up_.eof && self->down_.eof) self->Close();
        else self->Write(p);
        return;
      }
      if (ec) {
        self->Close();
        return;
      }
      self->Enqueue(p, n);
      self->Write(p);
      self->Read(p);
    });
  }

  void Enqueue(Pump& p, size_t n) {
    const auto& o = proxy_->opt;
    auto delay = std::chrono::duration_cast<Clock::duration>(o.delay);
    if (o.jitter.count() > 0) {
      std::uniform_int_distribution<int64_t> jit(-o.jitter.count(), o.jitter.count());
      delay += std::chrono::duration_cast<Clock::duration>(std::chrono::microseconds(jit(rng_)));
      if (delay < Clock::duration::zero()) delay = Clock::duration::zero();
    }
    Chunk c;
    c.release = std::max(Clock::now() + delay, p.last_release);  // never overtake an earlier chunk
    p.last_release = c.release;
    c.data.assign(p.scratch.begin(), p.scratch.begin() + ptrdiff_t(n));
    p.queue.push_back(std::move(c));
    p.queued_bytes += n;
  }

  void WaitThenWrite(Pump& p, Clock::time_point when) {
    p.writing = true;
    p.timer.expires_at(when);
    p.timer.async_wait([self = shared_from_this(), &p](std::error_code) {
      p.writing = false;
      if (self->closed_) return;
      self->Write(p);
    });
  }

  void Write(Pump& p) {
    if (closed_ || p.writing || stalled_) return;
    if (p.queue.empty()) {
      if (p.eof && !p.shut) {
        p.shut = true;
        std::error_code ignored;
        p.to->shutdown(tcp::socket::shutdown_send, ignored);
        if (up_.shut && down_.shut) Close();
      }
      return;
    }
    Chunk& c = p.queue.front();
    const auto now = Clock::now();
    if (c.release > now) return WaitThenWrite(p, c.release);
    size_t n = c.data.size() - c.offset;
    if (fault_at_) {
      uint64_t left = *fault_at_ - forwarded_;
      if (left == 0) return ApplyFault();
      n = size_t(std::min<uint64_t>(n, left));
    }
    if (const uint64_t rate = proxy_->opt.rate_bytes_per_s; rate > 0) {
      double elapsed_s = std::chrono::duration<double>(now - p.refilled).count();
      p.tokens = std::min(burst_, p.tokens + elapsed_s * double(rate));
      p.refilled = now;
      n = std::min(n, size_t(burst_));
      if (p.tokens < double(n)) {
        auto wait = std::chrono::duration<double>((double(n) - p.tokens) / double(rate));
        return WaitThenWrite(p, now + std::chrono::duration_cast<Clock::duration>(wait) + std::chrono::microseconds(1));
      }
      p.tokens -= double(n);
    }
    p.writing = true;
    asio::async_write(*p.to, asio::buffer(c.data.data() + c.offset, n),
                      [self = shared_from_this(), &p](std::error_code ec, size_t written) {
                        p.writing = false;
                        if (self->closed_) return;
                        if (ec) {
                          self->Close();
                          return;
                        }
                        self->Written(p, written);
                      });
  }

  void Written(Pump& p, size_t n) {
    Chunk& c = p.queue.front();
    c.offset += n;
    if (c.offset == c.data.size()) p.queue.pop_front();
    p.queued_bytes -= n;
    forwarded_ += n;
    proxy_->forwarded.fetch_add(n, std::memory_order_relaxed);
    if (fault_at_ && forwarded_ >= *fault_at_) return ApplyFault();
    Read(p);  // resumes a read paused by a full buffer
    Write(p);
  }

  void ApplyFault() {
    if (fault_is_cut_) return Close();
    stalled_ = true;  // writes stop; reads go on until the buffers are full
  }

  LinkProxy::Impl* const proxy_;
  const uint64_t id_;
  tcp::socket client_;
  tcp::socket upstream_;
  Pump up_;    // client -> upstream
  Pump down_;  // upstream -> client
  std::mt19937_64 rng_;
  double burst_ = 0;                 // token bucket size, bytes (0: no rate limit)
  std::optional<uint64_t> fault_at_;  // forwarded-bytes count of the first fault
  bool fault_is_cut_ = false;
  uint64_t forwarded_ = 0;  // both directions
  bool closed_ = false;
  bool stalled_ = false;
};

}  // namespace

void LinkProxy::Impl::Accept() {
  acceptor.async_accept([this](std::error_code ec, tcp::socket socket) {
    if (stopping) return;
    if (ec) {
      // Out of descriptors and the like: try again shortly instead of spinning.
      accept_retry.expires_after(std::chrono::milliseconds(50));
      accept_retry.async_wait([this](std::error_code wait_ec) {
        if (!wait_ec && !stopping) Accept();
      });
      return;
    }
    accepted.fetch_add(1, std::memory_order_relaxed);
    uint64_t id = next_session++;
    auto session = std::make_shared<Session>(this, id, std::move(socket));
    sessions.emplace(id, session);
    session->Start();
    Accept();
  });
}

void LinkProxy::Impl::StopOnProxyThread() {
  stopping = true;
  std::error_code ignored;
  acceptor.close(ignored);
  accept_retry.cancel();
  std::vector<std::shared_ptr<Session>> live;
  for (auto& [id, weak] : sessions)
    if (auto s = weak.lock()) live.push_back(std::move(s));
  for (auto& s : live) s->Close();
  sessions.clear();
  work.reset();  // run() returns once the cancelled handlers have run
}

Result<std::unique_ptr<LinkProxy>> LinkProxy::Start(const LinkOptions& options) {
  if (options.to.host.empty() || options.to.port == 0)
    return Status::InvalidArgument("the link target needs a host and a port other than 0");
  if (options.max_buffered_bytes == 0) return Status::InvalidArgument("max_buffered_bytes must be positive");
  auto impl = std::make_unique<Impl>(options);
  std::error_code ec;
  tcp::resolver resolver(impl->io);
  impl->targets = resolver.resolve(options.to.host, std::to_string(options.to.port), ec);
  if (ec || impl->targets.empty())
    return Status::InvalidArgument("cannot resolve link target " + options.to.ToString() + ": " + ec.message());
  auto listen = resolver.resolve(options.listen.host, std::to_string(options.listen.port),
                                 tcp::resolver::passive, ec);
  if (ec || listen.empty())
    return Status::InvalidArgument("cannot resolve listen address " + options.listen.ToString() + ": " + ec.message());
  tcp::endpoint ep = listen.begin()->endpoint();
  const std::string where = "listen address " + options.listen.ToString();
  if (impl->acceptor.open(ep.protocol(), ec); ec) return Status::IOError("opening a socket for " + where + ": " + ec.message());
  if (impl->acceptor.set_option(tcp::acceptor::reuse_address(true), ec); ec)
    return Status::IOError("setting SO_REUSEADDR on " + where + ": " + ec.message());
  if (impl->acceptor.bind(ep, ec); ec) return Status::IOError("binding " + where + ": " + ec.message());
  if (impl->acceptor.listen(asio::socket_base::max_listen_connections, ec); ec)
    return Status::IOError("listening on " + where + ": " + ec.message());
  tcp::endpoint local = impl->acceptor.local_endpoint(ec);
  if (ec) return Status::IOError("reading the bound address of " + where + ": " + ec.message());
  impl->bound = HostPort{local.address().to_string(), local.port()};
  impl->Accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<LinkProxy>(new LinkProxy(std::move(impl)));
}

LinkProxy::LinkProxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

LinkProxy::~LinkProxy() { Stop(); }

uint16_t LinkProxy::port() const { return impl_->bound.port; }
const HostPort& LinkProxy::address() const { return impl_->bound; }
uint64_t LinkProxy::connections_accepted() const { return impl_->accepted.load(); }
uint64_t LinkProxy::bytes_forwarded() const { return impl_->forwarded.load(); }

void LinkProxy::Stop() {
  if (!impl_->thread.joinable()) return;
  Impl* raw = impl_.get();
  asio::post(impl_->io, [raw] { raw->StopOnProxyThread(); });
  impl_->thread.join();
}

}  // namespace mbx::net
