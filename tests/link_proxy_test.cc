// net/link_proxy: an echo (or sink) server on 127.0.0.1 behind the proxy.
// Timing checks assert lower bounds only (a delay or a rate limit is a
// correctness property); the one upper bound, for pipelining, is generous
// (half of what a proxy that waits out each chunk before reading the next
// would need). Every socket is on 127.0.0.1 with a port the OS chose, every
// wait has a deadline, and every test stops what it started.
#include "net/link_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace mbx::net {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// Waits until fd is ready for `events` or the deadline passes.
bool WaitFor(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left < 0) return false;
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, int(std::min<long long>(left, 50)));
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return false;
  }
}

// Sends everything before the deadline; false on error or timeout.
bool SendAll(int fd, const char* data, size_t n, Clock::time_point deadline,
             const std::atomic<bool>* stop = nullptr) {
  size_t done = 0;
  while (done < n) {
    if (stop && stop->load()) return false;
    if (!WaitFor(fd, POLLOUT, std::min(deadline, Clock::now() + 50ms))) {
      if (Clock::now() >= deadline) return false;
      continue;
    }
    ssize_t w = ::send(fd, data + done, n - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (w <= 0) return false;
    done += size_t(w);
  }
  return true;
}

struct RecvResult {
  std::string data;
  bool eof = false;    // orderly close or reset
  bool error = false;  // reset
};

// Receives until `want` bytes, EOF/reset, or the deadline.
RecvResult RecvUpTo(int fd, size_t want, Clock::time_point deadline) {
  RecvResult r;
  char buf[65536];
  while (r.data.size() < want) {
    if (!WaitFor(fd, POLLIN, deadline)) break;
    ssize_t n = ::recv(fd, buf, std::min(sizeof buf, want - r.data.size()), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) {
      r.eof = true;
      r.error = n < 0;
      break;
    }
    r.data.append(buf, size_t(n));
  }
  return r;
}

int Connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// A TCP server on 127.0.0.1:0: echoes (kEcho) or counts and discards (kSink)
// what each connection sends. One thread per connection; Stop() (or the
// destructor) ends them all within about 50 ms.
class TestServer {
 public:
  enum class Mode { kEcho, kSink };
  explicit TestServer(Mode mode) : mode_(mode) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      std::abort();
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
  ~TestServer() { Stop(); }
  void Stop() {
    if (stop_.exchange(true)) return;
    acceptor_.join();
    ::close(fd_);
    std::lock_guard lock(mu_);
    for (auto& t : workers_) t.join();
  }
  uint16_t port() const { return port_; }
  uint64_t received() const { return received_.load(); }  // all connections
  bool peer_closed() const { return peer_closed_.load(); }  // some connection saw EOF/reset

 private:
  void AcceptLoop() {
    while (!stop_) {
      if (!WaitFor(fd_, POLLIN, Clock::now() + 50ms)) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      int one = 1;
      ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      std::lock_guard lock(mu_);
      workers_.emplace_back([this, c] { Serve(c); });
    }
  }
  void Serve(int c) {
    std::vector<char> buf(65536);
    while (!stop_) {
      if (!WaitFor(c, POLLIN, Clock::now() + 50ms)) continue;
      ssize_t n = ::recv(c, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n <= 0) {
        peer_closed_ = true;
        break;
      }
      received_ += uint64_t(n);
      if (mode_ == Mode::kEcho && !SendAll(c, buf.data(), size_t(n), Clock::now() + 30s, &stop_)) break;
    }
    ::close(c);
  }

  const Mode mode_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> received_{0};
  std::atomic<bool> peer_closed_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> workers_;  // guarded by mu_
};

std::unique_ptr<LinkProxy> StartProxy(uint16_t to_port, LinkOptions o = {}) {
  o.listen = {"127.0.0.1", 0};
  o.to = {"127.0.0.1", to_port};
  auto p = LinkProxy::Start(o);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  if (!p.ok()) return nullptr;
  EXPECT_NE((*p)->port(), 0);
  return std::move(p).value();
}

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    std::memcpy(&s[i], &v, std::min<size_t>(8, n - i));
  }
  return s;
}

// Sends `payload` from a second thread while this one reads the echo back.
RecvResult EchoRoundTrip(int fd, const std::string& payload, Clock::time_point deadline) {
  std::atomic<bool> sent_ok{false};
  std::thread sender([&] { sent_ok = SendAll(fd, payload.data(), payload.size(), deadline); });
  RecvResult r = RecvUpTo(fd, payload.size(), deadline);
  sender.join();
  EXPECT_TRUE(sent_ok.load());
  return r;
}

TEST(LinkProxyTest, BytesArriveIntactAndInOrderBothWays) {
  TestServer echo(TestServer::Mode::kEcho);
  LinkOptions o;
  o.delay = 2ms;
  o.jitter = 1ms;  // jitter must never reorder
  auto proxy = StartProxy(echo.port(), o);
  ASSERT_TRUE(proxy);
  // Two connections at once, each with its own 4 MiB of random bytes.
  std::vector<std::string> payloads{RandomBytes(4 << 20, 1), RandomBytes(4 << 20, 2)};
  std::vector<RecvResult> results(2);
  std::vector<std::thread> clients;
  for (size_t i = 0; i < 2; ++i) {
    clients.emplace_back([&, i] {
      int fd = Connect(proxy->port());
      if (fd < 0) return;
      results[i] = EchoRoundTrip(fd, payloads[i], Clock::now() + 60s);
      ::close(fd);
    });
  }
  for (auto& t : clients) t.join();
  for (size_t i = 0; i < 2; ++i) {
    ASSERT_EQ(results[i].data.size(), payloads[i].size()) << "connection " << i;
    EXPECT_TRUE(results[i].data == payloads[i]) << "connection " << i << ": bytes differ";
  }
  EXPECT_EQ(proxy->connections_accepted(), 2u);
  // The proxy counts a chunk when its write completes, which can be just
  // after the peer has read it: wait (bounded) for the count to catch up.
  const uint64_t want = 4u * (4u << 20);
  for (const auto until = Clock::now() + 10s; proxy->bytes_forwarded() < want && Clock::now() < until;) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_GE(proxy->bytes_forwarded(), want);
  proxy->Stop();
}

TEST(LinkProxyTest, HalfCloseIsPassedOn) {
  TestServer sink(TestServer::Mode::kSink);
  auto proxy = StartProxy(sink.port());
  ASSERT_TRUE(proxy);
  int fd = Connect(proxy->port());
  ASSERT_GE(fd, 0);
  std::string data = RandomBytes(100000, 3);
  ASSERT_TRUE(SendAll(fd, data.data(), data.size(), Clock::now() + 10s));
  ::shutdown(fd, SHUT_WR);
  auto deadline = Clock::now() + 10s;
  while (!sink.peer_closed() && Clock::now() < deadline) std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(sink.peer_closed());
  EXPECT_EQ(sink.received(), data.size());
  ::close(fd);
}

TEST(LinkProxyTest, DelayIsAppliedEachWay) {
  TestServer echo(TestServer::Mode::kEcho);
  LinkOptions o;
  o.delay = 20ms;
  auto proxy = StartProxy(echo.port(), o);
  ASSERT_TRUE(proxy);
  int fd = Connect(proxy->port());
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 3; ++i) {
    auto t0 = Clock::now();
    ASSERT_TRUE(SendAll(fd, "x", 1, t0 + 5s));
    RecvResult r = RecvUpTo(fd, 1, t0 + 5s);
    double ms = MsSince(t0);
    ASSERT_EQ(r.data, "x");
    EXPECT_GE(ms, 40.0) << "round trip " << i << " took " << ms << " ms through 20 ms each way";
  }
  ::close(fd);
}

TEST(LinkProxyTest, DelayPipelinesChunksInFlight) {
  TestServer echo(TestServer::Mode::kEcho);
  LinkOptions o;
  o.delay = 20ms;  // RTT 40 ms
  auto proxy = StartProxy(echo.port(), o);
  ASSERT_TRUE(proxy);
  int fd = Connect(proxy->port());
  ASSERT_GE(fd, 0);
  constexpr int kChunks = 20;
  const double rtt_ms = 40;
  std::string chunk(100, 'c');
  auto t0 = Clock::now();
  // Separate segments (TCP_NODELAY, 2 ms apart), each its own read in the
  // proxy: a proxy that delayed each before reading the next would need
  // kChunks x 20 ms one way.
  for (int i = 0; i < kChunks; ++i) {
    chunk[0] = char('a' + i);
    ASSERT_TRUE(SendAll(fd, chunk.data(), chunk.size(), t0 + 5s));
    std::this_thread::sleep_for(2ms);
  }
  RecvResult r = RecvUpTo(fd, kChunks * chunk.size(), t0 + 10s);
  double ms = MsSince(t0);
  ASSERT_EQ(r.data.size(), kChunks * chunk.size());
  for (int i = 0; i < kChunks; ++i) EXPECT_EQ(r.data[size_t(i) * chunk.size()], char('a' + i));
  EXPECT_GE(ms, rtt_ms);
  EXPECT_LT(ms, kChunks * rtt_ms / 2) << kChunks << " chunks took " << ms << " ms at RTT " << rtt_ms << " ms";
  ::close(fd);
}

TEST(LinkProxyTest, RateLimitHoldsBothWays) {
  TestServer echo(TestServer::Mode::kEcho);
  LinkOptions o;
  auto rate = ParseRate("8Mbit");
  ASSERT_TRUE(rate.ok());
  o.rate_bytes_per_s = *rate;
  ASSERT_EQ(o.rate_bytes_per_s, 1000000u);
  auto proxy = StartProxy(echo.port(), o);
  ASSERT_TRUE(proxy);
  int fd = Connect(proxy->port());
  ASSERT_GE(fd, 0);
  std::string payload = RandomBytes(2000000, 4);
  auto t0 = Clock::now();
  RecvResult r = EchoRoundTrip(fd, payload, t0 + 30s);
  double s = MsSince(t0) / 1000;
  ASSERT_EQ(r.data.size(), payload.size());
  EXPECT_TRUE(r.data == payload);
  EXPECT_GE(s, 1.5) << "2 MB at 8 Mbit took " << s << " s";
  ::close(fd);
}

TEST(LinkProxyTest, CutAfterClosesAtExactlyThatManyBytes) {
  TestServer sink(TestServer::Mode::kSink);
  LinkOptions o;
  o.cut_after_bytes = 100000;
  auto proxy = StartProxy(sink.port(), o);
  ASSERT_TRUE(proxy);
  int fd = Connect(proxy->port());
  ASSERT_GE(fd, 0);
  std::string payload = RandomBytes(1 << 20, 5);
  auto deadline = Clock::now() + 10s;
  // The send fails part way (reset) or completes into the buffers; either way
  // the client then sees the connection end.
  (void)SendAll(fd, payload.data(), payload.size(), deadline);
  RecvResult r = RecvUpTo(fd, 1, deadline);
  EXPECT_TRUE(r.eof) << "the client connection is closed";
  EXPECT_TRUE(r.data.empty());
  while (!sink.peer_closed() && Clock::now() < deadline) std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(sink.peer_closed()) << "the server connection is closed";
  EXPECT_EQ(sink.received(), 100000u);
  EXPECT_EQ(proxy->bytes_forwarded(), 100000u);
  ::close(fd);
}

TEST(LinkProxyTest, CutAfterCountsBothDirections) {
  TestServer echo(TestServer::Mode::kEcho);
  LinkOptions o;
  o.cut_after_bytes = 10000;
  auto proxy = StartProxy(echo.port(), o);
  ASSERT_TRUE(proxy);
  int fd = Connect(proxy->port());
  ASSERT_GE(fd, 0);
  std::string payload = RandomBytes(8000, 6);
  auto deadline = Clock::now() + 10s;
  ASSERT_TRUE(SendAll(fd, payload.data(), payload.size(), deadline));
  RecvResult r = RecvUpTo(fd, payload.size(), deadline);
  EXPECT_TRUE(r.eof);
  EXPECT_LT(r.data.size(), payload.size()) << "8000 up + 8000 back is past the 10000-byte cut";
  EXPECT_EQ(r.data, payload.substr(0, r.data.size()));
  EXPECT_EQ(proxy->bytes_forwarded(), 10000u);
  ::close(fd);
}

TEST(LinkProxyTest, StallAfterStopsDeliveryButKeepsTheConnection) {
  TestServer echo(TestServer::Mode::kEcho);
  LinkOptions o;
  o.stall_after_bytes = 10000;
  auto proxy = StartProxy(echo.port(), o);
  ASSERT_TRUE(proxy);
  int fd = Connect(proxy->port());
  ASSERT_GE(fd, 0);
  std::string payload = RandomBytes(5000, 7);
  auto deadline = Clock::now() + 10s;
  RecvResult r = EchoRoundTrip(fd, payload, deadline);  // 5000 up + 5000 back: the stall point
  ASSERT_EQ(r.data.size(), payload.size());
  ASSERT_TRUE(SendAll(fd, payload.data(), 1000, deadline));
  auto t0 = Clock::now();
  r = RecvUpTo(fd, 1, t0 + 300ms);
  EXPECT_GE(MsSince(t0), 300.0);
  EXPECT_TRUE(r.data.empty()) << "nothing is delivered after the stall";
  EXPECT_FALSE(r.eof) << "the connection stays open";
  char c;
  EXPECT_EQ(::recv(fd, &c, 1, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_EQ(echo.received(), 5000u);
  EXPECT_EQ(proxy->bytes_forwarded(), 10000u);
  proxy->Stop();  // the stop closes the stalled connection
  r = RecvUpTo(fd, 1, Clock::now() + 5s);
  EXPECT_TRUE(r.eof);
  ::close(fd);
}

TEST(LinkProxyTest, UnreachableTargetClosesTheClient) {
  // A port that was free a moment ago: nothing listens there.
  int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::getsockname(probe, reinterpret_cast<sockaddr*>(&a), &len), 0);
  uint16_t dead_port = ntohs(a.sin_port);
  ::close(probe);
  auto proxy = StartProxy(dead_port);
  ASSERT_TRUE(proxy);
  int fd = Connect(proxy->port());
  ASSERT_GE(fd, 0);
  RecvResult r = RecvUpTo(fd, 1, Clock::now() + 5s);
  EXPECT_TRUE(r.eof);
  ::close(fd);
}

TEST(LinkProxyTest, StopClosesOpenConnectionsAndIsIdempotent) {
  TestServer echo(TestServer::Mode::kEcho);
  LinkOptions o;
  o.delay = 1s;  // data sits in the proxy when it stops
  auto proxy = StartProxy(echo.port(), o);
  ASSERT_TRUE(proxy);
  int fd = Connect(proxy->port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, "hello", 5, Clock::now() + 5s));
  std::this_thread::sleep_for(20ms);
  auto t0 = Clock::now();
  proxy->Stop();
  proxy->Stop();
  EXPECT_LT(MsSince(t0), 900.0) << "Stop does not wait for delayed data";
  RecvResult r = RecvUpTo(fd, 1, Clock::now() + 5s);
  EXPECT_TRUE(r.eof);
  ::close(fd);
  EXPECT_LT(Connect(proxy->port()), 0) << "nothing listens after Stop";
}

TEST(LinkProxyTest, ParsesUnits) {
  EXPECT_EQ(ParseDuration("25ms").value(), 25ms);
  EXPECT_EQ(ParseDuration("1s").value(), 1s);
  EXPECT_EQ(ParseDuration("500us").value(), 500us);
  EXPECT_EQ(ParseDuration("1.5ms").value(), 1500us);
  EXPECT_EQ(ParseDuration("0").value(), 0us);
  EXPECT_FALSE(ParseDuration("25").ok());
  EXPECT_FALSE(ParseDuration("-1ms").ok());
  EXPECT_FALSE(ParseDuration("5min").ok());
  EXPECT_FALSE(ParseDuration("").ok());

  EXPECT_EQ(ParseRate("100Mbit").value(), 12500000u);
  EXPECT_EQ(ParseRate("1Gbit").value(), 125000000u);
  EXPECT_EQ(ParseRate("64kbit").value(), 8000u);
  EXPECT_EQ(ParseRate("10MB").value(), 10000000u);
  EXPECT_EQ(ParseRate("1MiB").value(), 1048576u);
  EXPECT_EQ(ParseRate("65536").value(), 65536u);
  EXPECT_EQ(ParseRate("0").value(), 0u);
  EXPECT_FALSE(ParseRate("fast").ok());
  EXPECT_FALSE(ParseRate("10Xbit").ok());
  EXPECT_FALSE(ParseRate("1bit").ok());

  auto hp = ParseHostPort("10.0.0.1:443");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "10.0.0.1");
  EXPECT_EQ(hp->port, 443);
  EXPECT_EQ(ParseHostPort(":0")->host, "127.0.0.1");
  EXPECT_EQ(ParseHostPort("5000")->port, 5000);
  EXPECT_EQ(ParseHostPort("[::1]:7")->host, "::1");
  EXPECT_EQ(ParseHostPort("[::1]:7")->ToString(), "[::1]:7");
  EXPECT_FALSE(ParseHostPort("host:").ok());
  EXPECT_FALSE(ParseHostPort("host:70000").ok());
  EXPECT_FALSE(ParseHostPort("::1:5").ok());
  EXPECT_FALSE(ParseHostPort("host:port").ok());
}

TEST(LinkProxyTest, StartReportsBadTargetsAndBusyPorts) {
  LinkOptions o;
  o.to = {"127.0.0.1", 0};
  EXPECT_EQ(LinkProxy::Start(o).status().code(), Status::Code::kInvalidArgument);
  TestServer echo(TestServer::Mode::kEcho);
  o.to = {"127.0.0.1", echo.port()};
  o.listen = {"127.0.0.1", echo.port()};  // taken
  auto busy = LinkProxy::Start(o);
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.status().code(), Status::Code::kIOError);
  EXPECT_NE(busy.status().message().find(std::to_string(echo.port())), std::string::npos);
}

#ifdef MBXMOVE_BIN
// `mbxmove link` as a script uses it: read the port from the first stdout
// line, use the link, stop it with SIGTERM.
TEST(LinkProxyTest, CliPrintsItsPortAndStopsOnSigterm) {
  TestServer echo(TestServer::Mode::kEcho);
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  const std::string to = "127.0.0.1:" + std::to_string(echo.port());
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::execl(MBXMOVE_BIN, MBXMOVE_BIN, "link", "--listen", "127.0.0.1:0", "--to", to.c_str(), "--delay", "5ms",
            "--rate", "100Mbit", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  std::string line;
  auto deadline = Clock::now() + 10s;
  while (line.find('\n') == std::string::npos && WaitFor(out[0], POLLIN, deadline)) {
    char buf[256];
    ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    line.append(buf, size_t(n));
  }
  ::close(out[0]);
  const std::string prefix = "listening on 127.0.0.1:";
  uint16_t port = 0;
  if (line.rfind(prefix, 0) == 0) port = uint16_t(std::stoi(line.substr(prefix.size())));
  EXPECT_NE(port, 0) << "first line: " << line;
  if (port != 0) {
    int fd = Connect(port);
    EXPECT_GE(fd, 0);
    if (fd >= 0) {
      std::string payload = RandomBytes(100000, 8);
      RecvResult r = EchoRoundTrip(fd, payload, Clock::now() + 10s);
      EXPECT_TRUE(r.data == payload);
      ::close(fd);
    }
  }
  ::kill(pid, SIGTERM);
  int status = 0;
  pid_t done = 0;
  for (int i = 0; i < 200 && done == 0; ++i) {  // up to 10 s
    done = ::waitpid(pid, &status, WNOHANG);
    if (done == 0) std::this_thread::sleep_for(50ms);
  }
  if (done == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    FAIL() << "mbxmove link did not stop on SIGTERM";
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
}

TEST(LinkProxyTest, CliRejectsBadValuesWithExit2) {
  for (const char* args : {"--delay 25", "--delay 5min", "--rate fast", "--jitter -1ms", "--cut-after 10Q",
                           "--listen host:99999"}) {
    std::string cmd = std::string(MBXMOVE_BIN) + " link --to 127.0.0.1:9 " + args + " >/dev/null 2>&1";
    int rc = std::system(cmd.c_str());
    EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 2) << args << ": status " << rc;
  }
}
#endif

}  // namespace
}  // namespace mbx::net
