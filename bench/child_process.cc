#include "bench/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace mbx::bench {

using json = nlohmann::json;

Result<ChildResult> RunChild(const std::vector<std::string>& args, const std::string& scratch,
                             std::chrono::milliseconds limit) {
  const std::string out_path = scratch + "/child.out", err_path = scratch + "/child.err";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid;
  const auto t0 = std::chrono::steady_clock::now();
  int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return Status::IOError("cannot start " + args[0] + ": " + std::strerror(rc));
  int status = 0;
  struct rusage ru {};
  if (limit.count() <= 0) {
    if (wait4(pid, &status, 0, &ru) < 0) return Status::IOError("waiting for " + args[0]);
  } else {
    const auto deadline = t0 + limit;
    for (;;) {
      const pid_t w = wait4(pid, &status, WNOHANG, &ru);
      if (w < 0) return Status::IOError("waiting for " + args[0]);
      if (w == pid) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        ::kill(pid, SIGKILL);
        wait4(pid, &status, 0, &ru);
        std::string cmd;
        for (size_t i = 0; i < args.size() && i < 6; ++i) cmd += (i ? " " : "") + args[i];
        return Status::Internal("'" + cmd + " ...' did not finish within " + std::to_string(limit.count() / 1000) +
                                " s (killed)");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  ChildResult r;
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.cpu_s = double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  r.peak_rss_mib = double(ru.ru_maxrss) / 1024.0;
  auto slurp = [](const std::string& p) {
    std::ifstream f(p);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  return r;
}

Result<json> RunJsonChild(const std::vector<std::string>& args, const std::string& scratch, ChildResult* cr,
                          std::chrono::milliseconds limit) {
  MBX_ASSIGN_OR_RETURN(*cr, RunChild(args, scratch, limit));
  json j = json::parse(cr->out, nullptr, false);
  if (j.is_discarded()) {
    std::string cmd;
    for (const auto& a : args) cmd += a + " ";
    std::string err = cr->err.substr(0, 400);
    return Status::Internal("'" + cmd + "' exited " + std::to_string(cr->exit_code) + ": " + err);
  }
  return j;
}


double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}


Result<std::unique_ptr<ServerChild>> ServerChild::Start(const std::vector<std::string>& args,
                                                        const std::string& log_path,
                                                        std::chrono::milliseconds ready_within) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Status::IOError(std::string("pipe: ") + std::strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::unique_ptr<ServerChild> c(new ServerChild());
  int rc = posix_spawn(&c->pid_, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    c->pid_ = -1;
    return Status::IOError("cannot start " + args[0] + ": " + std::strerror(rc));
  }
  // Read the first line, bounded in time.
  const auto deadline = std::chrono::steady_clock::now() + ready_within;
  std::string line;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, int(left.count())) <= 0) break;
    char ch;
    if (::read(fds[0], &ch, 1) != 1) break;
    if (ch == '\n') {
      c->first_line_ = line;
      break;
    }
    line += ch;
  }
  ::close(fds[0]);  // later output goes nowhere; the server ignores SIGPIPE? it prints only at start and stop
  if (c->first_line_.empty()) {
    c->Stop(std::chrono::milliseconds(2000));
    std::ifstream f(log_path);
    std::stringstream ss;
    ss << f.rdbuf();
    return Status::IOError("server '" + args[0] + " " + (args.size() > 1 ? args[1] : "") +
                           "' did not start: " + ss.str().substr(0, 400));
  }
  return c;
}

int ServerChild::port() const {
  const auto colon = first_line_.rfind(':');
  if (first_line_.rfind("listening on ", 0) != 0 || colon == std::string::npos) return 0;
  return std::atoi(first_line_.c_str() + colon + 1);
}

int ServerChild::Stop(std::chrono::milliseconds grace) {
  if (pid_ < 0) return exit_code_;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (r < 0) {
      status = 0;
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  pid_ = -1;
  return exit_code_;
}

void ServerChild::Kill() {
  if (pid_ < 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  exit_code_ = 128 + SIGKILL;
  pid_ = -1;
}

ServerChild::~ServerChild() { Stop(); }

}  // namespace mbx::bench
