#include "cli/cli_util.h"

#include <cmath>
#include <ctime>
#include <iostream>

namespace mbx::cli {

int Fail(const Status& s) {
  int code = s.code() == Status::Code::kInvalidArgument ? kExitUsage : kExitFatal;
  std::fprintf(stderr, "mbxmove: error: %s\n", s.message().c_str());
  return code;
}

std::string TimeStamp() {
  char buf[32];
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
  return buf;
}

StopSignals::StopSignals() {
  sigemptyset(&sigs_);
  sigaddset(&sigs_, SIGTERM);
  sigaddset(&sigs_, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs_, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

StopSignals::~StopSignals() { Stop(); }

void StopSignals::Stop() {
  done_ = true;
  if (thread_.joinable()) thread_.join();
}

void StopSignals::Watch(std::function<void(int, int)> on_signal) {
  thread_ = std::thread([this, on_signal = std::move(on_signal)] {
    const timespec tick{0, 200 * 1000 * 1000};
    int n = 0;
    while (!done_.load()) {
      siginfo_t info;
      const int sig = sigtimedwait(&sigs_, &info, &tick);
      if (sig > 0) on_signal(sig, ++n);
    }
  });
}

int Fail(const std::string& message, int code) {
  std::fprintf(stderr, "mbxmove: error: %s\n", message.c_str());
  return code;
}

Result<uint64_t> ParseChangesPageBytes(const std::string& text) {
  auto pb = ParseBytes(text);
  if (!pb.ok()) return Status::InvalidArgument("--changes-page-bytes: " + pb.status().message());
  if (*pb == 0) return Status::InvalidArgument("--changes-page-bytes must be more than 0");
  return pb;
}

Status ParseDataSyncEvery(const std::string& text, OpenOptions* options) {
  if (text.empty()) return Status::Ok();
  auto b = ParseBytes(text);
  if (!b.ok()) return Status::InvalidArgument("--data-sync-every: " + b.status().message());
  options->data_sync_bytes = *b;
  return Status::Ok();
}

Result<uint64_t> ParseBytes(const std::string& text) {
  if (text.empty()) return Status::InvalidArgument("empty size");
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == 0) return Status::InvalidArgument("size '" + text + "' does not start with a number");
  double v;
  try {
    size_t used = 0;
    v = std::stod(text.substr(0, i), &used);
    if (used != i) throw std::invalid_argument("x");
  } catch (...) {
    return Status::InvalidArgument("size '" + text + "' is not a number");
  }
  std::string unit = text.substr(i);
  for (auto& c : unit) c = char(std::toupper(static_cast<unsigned char>(c)));
  double mul = 1;
  if (unit.empty() || unit == "B") mul = 1;
  else if (unit == "K" || unit == "KIB") mul = 1024.0;
  else if (unit == "M" || unit == "MIB") mul = 1024.0 * 1024;
  else if (unit == "G" || unit == "GIB") mul = 1024.0 * 1024 * 1024;
  else if (unit == "T" || unit == "TIB") mul = 1024.0 * 1024 * 1024 * 1024;
  else if (unit == "KB") mul = 1e3;
  else if (unit == "MB") mul = 1e6;
  else if (unit == "GB") mul = 1e9;
  else if (unit == "TB") mul = 1e12;
  else return Status::InvalidArgument("size '" + text + "' has an unknown unit (use K, M, G, KiB, MB, ...)");
  double b = v * mul;
  if (!std::isfinite(b) || b < 0 || b > 1.8e19) return Status::InvalidArgument("size '" + text + "' is out of range");
  return uint64_t(std::llround(b));
}

std::string FormatBytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return buf;
}

void PrintJson(const json& j) { std::cout << j.dump(2) << std::endl; }

double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

Progress::Progress(bool quiet, Render render)
    : quiet_(quiet || ::isatty(2) != 1), tty_(::isatty(2) == 1), render_(std::move(render)) {
  if (!quiet_) thread_ = std::thread([this] { Run(); });
}

Progress::~Progress() { Stop(); }

void Progress::Stop() {
  if (stop_.exchange(true)) return;
  if (thread_.joinable()) thread_.join();
  if (!quiet_ && tty_) std::fprintf(stderr, "\r\033[K");
}

void Progress::Run() {
  using namespace std::chrono;
  auto last = steady_clock::now();
  while (!stop_.load()) {
    std::this_thread::sleep_for(milliseconds(100));
    if (stop_.load()) break;
    auto now = steady_clock::now();
    if (tty_ && now - last >= milliseconds(400)) {
      std::fprintf(stderr, "\r\033[K%s", render_().c_str());
      std::fflush(stderr);
      last = now;
    }
  }
}

}  // namespace mbx::cli
