// Helpers for the tests: temporary folders, small items and organisations,
// and running the mbxmove program.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "store/item.h"
#include "store/item_codec.h"
#include "store/records.h"
#include "store/status.h"

extern "C" char** environ;

namespace mbx::testing {

namespace fs = std::filesystem;

// A fresh folder under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/mbxtest-XXXXXX";
    char* p = ::mkdtemp(tmpl.data());
    if (!p) std::abort();
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& sub) const { return path_ + "/" + sub; }

 private:
  std::string path_;
};

#define ASSERT_OK(expr)                                      \
  do {                                                       \
    ::mbx::Status _s = (expr);                               \
    ASSERT_TRUE(_s.ok()) << #expr << ": " << _s.ToString();  \
  } while (0)
#define EXPECT_OK(expr)                                      \
  do {                                                       \
    ::mbx::Status _s = (expr);                               \
    EXPECT_TRUE(_s.ok()) << #expr << ": " << _s.ToString();  \
  } while (0)

inline Guid TestGuid(uint8_t n) {
  Guid g;
  for (size_t i = 0; i < 16; ++i) g.bytes[i] = uint8_t(n * 31 + i);
  return g;
}

inline Item TestItem(uint64_t n, size_t body_bytes = 200) {
  Item it;
  it.message_class = std::string(message_class::kNote);
  it.subject = "subject " + std::to_string(n);
  it.sender = "Sender <s@example.com>";
  it.recipients = {"a@example.com", "b@example.com"};
  it.created = Timestamp(std::chrono::microseconds(1600000000000000LL + int64_t(n)));
  it.modified = it.created;
  it.received = it.created;
  std::string body;
  while (body.size() < body_bytes) body += "hello world " + std::to_string(n) + " ";
  it.mime = body.substr(0, body_bytes);
  return it;
}

inline std::string TestRecord(uint64_t n, size_t body_bytes = 200) {
  std::string rec;
  Status s = EncodeItem(TestItem(n, body_bytes), CodecOptions{}, &rec);
  if (!s.ok()) std::abort();
  return rec;
}

// A record whose body is incompressible (pseudo-random bytes from n).
inline std::string RandomRecord(uint64_t n, size_t body_bytes) {
  Item it = TestItem(n, 0);
  it.mime.resize(body_bytes);
  uint64_t x = n * 0x9e3779b97f4a7c15ull + 1;
  for (auto& c : it.mime) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = char(x);
  }
  std::string rec;
  if (!EncodeItem(it, CodecOptions{}, &rec).ok()) std::abort();
  return rec;
}

// Waits (bounded) until `pred` holds; false if it never did.
template <typename Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(60)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs a shell command line, capturing stdout and stderr.
// Runs `cmd` (through sh -c "exec ...", so the pid is the command's own),
// SIGKILLs it after `ms` milliseconds unless it ended, and reaps it. Returns
// true when it was killed.
inline bool RunAndKillAfter(const std::string& cmd, int ms) {
  const std::string line = "exec " + cmd + " >/dev/null 2>&1";
  const char* argv[] = {"/bin/sh", "-c", line.c_str(), nullptr};
  pid_t pid;
  if (posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ) != 0) return false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) return false;  // finished first
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);  // reaped: its files (and store locks) are closed
  return WIFSIGNALED(status);
}

// A process started with /bin/sh -c "exec CMD >out 2>err".
struct Child {
  pid_t pid = -1;
  std::string out, err;
  int exit_code = -1;

  static Child Spawn(const std::string& cmd, const std::string& out, const std::string& err) {
    Child c;
    c.out = out;
    c.err = err;
    const std::string line = "exec " + cmd + " >" + out + " 2>" + err;
    const char* argv[] = {"/bin/sh", "-c", line.c_str(), nullptr};
    if (posix_spawn(&c.pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ) != 0) c.pid = -1;
    return c;
  }
  bool Running() {
    if (pid < 0) return false;
    int st = 0;
    if (waitpid(pid, &st, WNOHANG) == 0) return true;
    exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    pid = -1;
    return false;
  }
  // Waits up to `limit`; then SIGKILL and -1.
  int Wait(std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (Running()) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid, SIGKILL);
        int st = 0;
        waitpid(pid, &st, 0);
        pid = -1;
        return exit_code = -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return exit_code;
  }
  void Kill() {
    if (pid < 0) return;
    kill(pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    pid = -1;
    exit_code = 137;
  }
  ~Child() { Kill(); }
  Child() = default;
  Child(Child&& o) noexcept : pid(o.pid), out(std::move(o.out)), err(std::move(o.err)), exit_code(o.exit_code) {
    o.pid = -1;
  }
};

inline CommandResult RunCommand(const std::string& cmdline) {
  TempDir t;
  std::string cmd = cmdline + " >" + t.path() + "/out 2>" + t.path() + "/err";
  int rc = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
  auto slurp = [](const std::string& p) {
    std::string s;
    if (FILE* f = std::fopen(p.c_str(), "rb")) {
      char buf[4096];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
      std::fclose(f);
    }
    return s;
  };
  r.out = slurp(t.path() + "/out");
  r.err = slurp(t.path() + "/err");
  return r;
}

#ifdef MBXMOVE_BIN
inline std::string Mbxmove() { return MBXMOVE_BIN; }

// Runs `mbxmove ARGS`, expects `expect_exit`, and parses its stdout as JSON.
inline nlohmann::json RunJson(const std::string& args, int expect_exit = 0) {
  auto r = RunCommand(Mbxmove() + " " + args);
  EXPECT_EQ(r.exit_code, expect_exit) << args << "\nstderr: " << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "not JSON: " << r.out;
  return j;
}
#endif

// Pages of the file `path` in the page cache (mincore over a mapping of it
// of our own); ~0 if it cannot be opened.
inline size_t CachedPages(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ~size_t{0};
  struct stat st {};
  size_t cached = 0;
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    void* m = ::mmap(nullptr, size_t(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
    if (m != MAP_FAILED) {
      const size_t page = size_t(::sysconf(_SC_PAGESIZE));
      std::vector<unsigned char> in((size_t(st.st_size) + page - 1) / page);
      if (::mincore(m, size_t(st.st_size), in.data()) == 0) {
        for (unsigned char c : in) cached += c & 1;
      }
      ::munmap(m, size_t(st.st_size));
    }
  }
  ::close(fd);
  return cached;
}

}  // namespace mbx::testing
