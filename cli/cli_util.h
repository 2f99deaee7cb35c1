// Helpers shared by the mbxmove subcommands: exit codes, error printing,
// size parsing, JSON output and the progress line.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "store/status.h"

namespace mbx::cli {

using json = nlohmann::json;

// Exit codes, the same for every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFatal = 1;    // the command could not do its job
inline constexpr int kExitUsage = 2;    // bad flags or arguments
inline constexpr int kExitPartial = 3;  // some mailboxes failed (move) / problems found (verify)

// Prints "mbxmove: error: <message>" on stderr and returns the exit code for it.
int Fail(const Status& s);
int Fail(const std::string& message, int code = kExitFatal);

// "4096", "64K", "1MiB", "200MB", "2G", "1.5GiB" -> bytes. K/M/G/T and KiB...
// are powers of 1024; KB/MB/GB/TB powers of 1000.
Result<uint64_t> ParseBytes(const std::string& text);
std::string FormatBytes(double bytes);  // "12.3 MiB"

void PrintJson(const json& j);

// A live progress line on stderr, redrawn in place a few times a second while
// the object lives; nothing when stderr is not a terminal or when quiet.
class Progress {
 public:
  using Render = std::function<std::string()>;
  Progress(bool quiet, Render render);
  ~Progress();  // stops and clears the line
  void Stop();

 private:
  void Run();
  bool quiet_;
  bool tty_;
  Render render_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

double SecondsSince(std::chrono::steady_clock::time_point t0);

}  // namespace mbx::cli
