// Child processes of the benchmarks: runs of `mbxmove` whose CPU time and
// peak RSS are their own (RunChild), and servers that run beside them
// (ServerChild: `mbxmove serve`, stopped with SIGTERM, killed if it will
// not stop, and always reaped, also when the benchmark fails).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/status.h"

namespace mbx::bench {

struct ChildResult {
  int exit_code = -1;
  double wall_s = 0;
  double cpu_s = 0;  // user + sys
  double peak_rss_mib = 0;
  std::string out;
  std::string err;
};

// Runs `args` (argv[0] a path) to its end, stdout/stderr captured in files
// under `scratch`. With a `limit` (> 0), a child still running after it is
// killed (SIGKILL) and the result is an error naming the command.
Result<ChildResult> RunChild(const std::vector<std::string>& args, const std::string& scratch,
                             std::chrono::milliseconds limit = std::chrono::milliseconds(0));
// As RunChild, stdout parsed as JSON (an error quoting stderr when it is not).
Result<nlohmann::json> RunJsonChild(const std::vector<std::string>& args, const std::string& scratch,
                                    ChildResult* cr, std::chrono::milliseconds limit = std::chrono::milliseconds(0));

double Median(std::vector<double> v);

// A server started in the background. Start() waits (up to `ready_within`)
// for its first stdout line, e.g. "listening on 127.0.0.1:40123".
class ServerChild {
 public:
  static Result<std::unique_ptr<ServerChild>> Start(const std::vector<std::string>& args,
                                                    const std::string& log_path,
                                                    std::chrono::milliseconds ready_within);
  ~ServerChild();  // Stop()
  const std::string& first_line() const { return first_line_; }
  // The port of a "listening on HOST:PORT" first line; 0 if it has none.
  int port() const;
  pid_t pid() const { return pid_; }
  // SIGTERM, then SIGKILL after `grace`; reaps it. Returns its exit code
  // (128 + signal when killed). Idempotent.
  int Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(15000));
  // SIGKILL now (a crash), and reap.
  void Kill();

 private:
  ServerChild() = default;
  pid_t pid_ = -1;
  int exit_code_ = -1;
  std::string first_line_;
};

}  // namespace mbx::bench
